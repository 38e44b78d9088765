//! The HTTP client every RPC connection uses: plain `http://`, or `https://` over rustls with
//! the ring provider. Servers are checked against the platform's trust store, plus the
//! certificates of an optional PEM file (`chain.ca_file`) for endpoints behind a private CA.

use std::path::Path;

use crate::error::ChainError;

/// Makes ring rustls's process-wide provider, once. Another provider installed first (by
/// an embedding application) is kept. [`client`] calls it; code that builds an HTTP client
/// of its own (alloy's `connect_http`, `reqwest::Client::new`) must call it first, or
/// reqwest panics on finding no provider.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: there is one then.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A client for JSON-RPC over HTTP(S) that also trusts the certificates in `ca_file`.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, ChainError> {
    install_provider();
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            ChainError::Config(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ChainError::Config(format!(
                "{} is not a PEM certificate bundle: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(ChainError::Config(format!(
                "{} holds no PEM certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| ChainError::Config(format!("cannot set up the HTTP client: {e}")))
}

/// Checks that `url` is an `http://` or `https://` URL and parses it.
pub fn parse_url(url: &str) -> Result<reqwest::Url, ChainError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ChainError::Config(format!(
            "the RPC endpoint {} is not an http:// or https:// URL",
            crate::redact_url(url)
        )));
    }
    url.parse().map_err(|e| {
        ChainError::Config(format!(
            "the RPC endpoint {} is not a valid URL: {e}",
            crate::redact_url(url)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https_and_bad_ca_files_are_refused() {
        assert!(parse_url("https://rpc.example.org/v2/KEY").is_ok());
        assert!(parse_url("http://127.0.0.1:8545").is_ok());
        let err = parse_url("ws://rpc.example.org/v2/SECRETKEY")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an http:// or https://"), "{err}");
        assert!(!err.contains("SECRETKEY"), "{err}");

        assert!(client(None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(client(Some(&missing))
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(client(Some(&empty)).is_err());
    }
}
