//! RPC URLs without their secrets, for logs, errors and `/health`.
//!
//! Hosted endpoints carry API keys in the path (`/v3/<key>`), the query (`?apikey=…`) or the
//! user part (`user:password@`). A redacted URL keeps the scheme, host and port, which is
//! enough to tell endpoints apart, and replaces the rest with `…`.

/// `url` with everything after the host and port (and any user part) replaced by `…`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "…".into(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hidden = authority.contains('@') || !rest[end..].trim_matches('/').is_empty();
    if hidden {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// `text` with each of `urls` replaced by its redacted form (transport errors quote the URL).
pub fn redact_in(text: &str, urls: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first, so a URL that extends another is replaced whole.
    let mut sorted: Vec<&String> = urls.iter().collect();
    sorted.sort_by_key(|u| std::cmp::Reverse(u.len()));
    for url in sorted {
        if !url.is_empty() {
            out = out.replace(url.as_str(), &redact_url(url));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_paths_queries_and_user_parts_are_hidden() {
        let cases = [
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
            (
                "https://mainnet.infura.io/v3/0123456789abcdef",
                "https://mainnet.infura.io/…",
            ),
            (
                "https://eth.example.org:443?apikey=SECRET",
                "https://eth.example.org:443/…",
            ),
            (
                "https://user:SECRET@rpc.example.org",
                "https://rpc.example.org/…",
            ),
            ("not a url SECRET", "…"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
            assert!(!redact_url(url).contains("SECRET"));
        }
    }

    #[test]
    fn urls_quoted_in_error_text_are_redacted() {
        let urls = vec!["https://rpc.example.org/v2/SECRET".to_string()];
        let text = "error sending request for url (https://rpc.example.org/v2/SECRET): timed out";
        let out = redact_in(text, &urls);
        assert!(!out.contains("SECRET"), "{out}");
        assert!(out.contains("https://rpc.example.org/…"), "{out}");
    }
}
