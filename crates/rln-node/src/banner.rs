//! The lines `rln-node run` prints on standard output once it listens, and their parsers: the
//! devnet and the tests start nodes as processes and read their addresses from these lines.

/// Before each libp2p listen address (with `/p2p/<peer id>`).
pub const LISTENING: &str = "listening ";
/// Before the REST API's base URL.
pub const REST_API: &str = "REST API  ";

/// The listen address a `listening` line announces.
pub fn listen_addr(line: &str) -> Option<&str> {
    line.strip_prefix(LISTENING).map(str::trim)
}

/// The REST base URL (`http://host:port`) a `REST API` line announces.
pub fn rest_url(line: &str) -> Option<&str> {
    line.strip_prefix(REST_API)?.split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back() {
        let addr = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW";
        assert_eq!(listen_addr(&format!("{LISTENING}{addr}")), Some(addr));
        assert_eq!(
            rest_url(&format!(
                "{REST_API}http://127.0.0.1:8645  (health: /health)"
            )),
            Some("http://127.0.0.1:8645")
        );
        assert_eq!(listen_addr("peer id   x"), None);
        assert_eq!(rest_url("listening /ip4/1.2.3.4"), None);
    }
}
