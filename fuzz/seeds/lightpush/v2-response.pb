
p2why