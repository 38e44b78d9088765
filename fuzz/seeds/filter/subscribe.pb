
f1R/waku/2/rs/1/0Z/a/1/b/protoZ/a/1/c/proto