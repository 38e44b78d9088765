//! `rln-node publish`, `rln-node subscribe` and `rln-node history`: clients of a running
//! node's REST API.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Args;
use rln_node::rest::store::RestStoreResponse;
use rln_node::rest::RestMessage;
use rln_relay::wire::payload::{self, DecryptionKey, PayloadKey};

/// Which node.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestTarget {
    /// REST address of the node.
    #[arg(
        long = "node",
        env = "RLN_NODE_REST",
        default_value = "http://127.0.0.1:8645"
    )]
    pub(crate) url: String,
    /// Pubsub topic.
    #[arg(long = "pubsub-topic", default_value = rln_node::config::defaults::PUBSUB_TOPIC)]
    pub(crate) topic: String,
    /// The node's REST token, when it requires one (`rest.token`).
    #[arg(long = "token", env = "RLN_REST_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

impl RestTarget {
    /// `request` with the token, when one is given.
    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token.trim()),
            None => request,
        }
    }
}

/// `rln-node publish`.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    pub(crate) target: RestTarget,
    /// Content topic of the message.
    #[arg(long, default_value = "/rln-node/1/chat/proto")]
    pub(crate) content_topic: String,
    /// The payload (UTF-8 text).
    pub(crate) payload: String,
    /// Encrypt the payload with this 32-byte symmetric key (hex; AES-256-GCM, Waku payload
    /// version 1, as js-waku's symmetric encoder).
    #[arg(long, env = "RLN_PAYLOAD_SYMMETRIC_KEY", conflicts_with = "public_key")]
    pub(crate) symmetric_key: Option<String>,
    /// Encrypt the payload to this secp256k1 public key (hex, 33 or 65 bytes; ECIES, as
    /// js-waku's ecies encoder).
    #[arg(long)]
    pub(crate) public_key: Option<String>,
    /// Sign the encrypted payload with this secp256k1 private key (hex).
    #[arg(long, env = "RLN_PAYLOAD_SIGNING_KEY", hide_env_values = true)]
    pub(crate) sign_key: Option<String>,
}

/// `rln-node subscribe`.
#[derive(Debug, Args)]
pub(crate) struct SubscribeArgs {
    #[command(flatten)]
    pub(crate) target: RestTarget,
    /// Exit after this many messages.
    #[arg(long)]
    pub(crate) count: Option<usize>,
    /// Exit after this many seconds.
    #[arg(long)]
    pub(crate) timeout: Option<u64>,
    /// Decrypt version-1 payloads with this symmetric key (hex); repeatable.
    #[arg(long, env = "RLN_PAYLOAD_SYMMETRIC_KEY", value_delimiter = ',')]
    pub(crate) symmetric_key: Vec<String>,
    /// Decrypt version-1 payloads encrypted to this secp256k1 private key (hex).
    #[arg(long, env = "RLN_PAYLOAD_PRIVATE_KEY", hide_env_values = true)]
    pub(crate) private_key: Option<String>,
}

/// `rln-node history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) target: RestTarget,
    /// Content topic to read; repeatable (at most 10).
    #[arg(long = "content-topic", required = true)]
    pub(crate) content_topics: Vec<String>,
    /// Earliest message: an age (`90s`, `15m`, `2h`, `3d`) or Unix nanoseconds.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Latest message (exclusive): an age or Unix nanoseconds.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Ask this store node (multiaddress with /p2p/<id>) through the node, instead of the
    /// node's own archive.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Option<String>,
    /// Messages per request (at most 100).
    #[arg(long, default_value_t = 100)]
    pub(crate) page_size: u32,
    /// Decrypt version-1 payloads with this symmetric key (hex); repeatable.
    #[arg(long, env = "RLN_PAYLOAD_SYMMETRIC_KEY", value_delimiter = ',')]
    pub(crate) symmetric_key: Vec<String>,
    /// Decrypt version-1 payloads encrypted to this secp256k1 private key (hex).
    #[arg(long, env = "RLN_PAYLOAD_PRIVATE_KEY", hide_env_values = true)]
    pub(crate) private_key: Option<String>,
}

/// A point in time given as an age before now (`90s`, `15m`, `2h`, `3d`) or Unix
/// nanoseconds.
fn parse_moment(text: &str, now_ns: i64) -> Result<i64> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .context("empty time")?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .with_context(|| format!("`{text}` is neither an age like 2h nor Unix nanoseconds"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => bail!("`{text}`: an age ends in s, m, h or d"),
    };
    Ok(now_ns.saturating_sub(secs.saturating_mul(1_000_000_000)))
}

/// Reads every stored message of the content topics in the range, oldest first, page by
/// page.
pub(crate) async fn history(args: HistoryArgs) -> Result<()> {
    let keys = keys_of(&args.symmetric_key, args.private_key.as_deref())?;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let since = args
        .since
        .as_deref()
        .map(|s| parse_moment(s, now_ns))
        .transpose()
        .context("--since")?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_moment(s, now_ns))
        .transpose()
        .context("--until")?;
    let client = rln_chain::http::client(None)?;
    let base = args.target.url.trim_end_matches('/').to_string();
    let mut cursor: Option<String> = None;
    let (mut pages, mut shown) = (0usize, 0usize);
    loop {
        let mut query: Vec<(&str, String)> = vec![
            ("includeData", "true".into()),
            ("pubsubTopic", args.target.topic.clone()),
            ("contentTopics", args.content_topics.join(",")),
            ("ascending", "true".into()),
            ("pageSize", args.page_size.to_string()),
        ];
        if let Some(t) = since {
            query.push(("startTime", t.to_string()));
        }
        if let Some(t) = until {
            query.push(("endTime", t.to_string()));
        }
        if let Some(peer) = &args.peer {
            query.push(("peerAddr", peer.clone()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_topic(v)))
            .collect();
        let response = args
            .target
            .auth(client.get(format!("{base}/store/v3/messages?{}", query.join("&"))))
            .send()
            .await
            .map_err(|e| unreachable(&base, e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let page: RestStoreResponse = match serde_json::from_str(&body) {
            Ok(page) if status.is_success() => page,
            Ok(page) => bail!(
                "the store answered {} ({status}): {}",
                page.status_code,
                page.status_desc
            ),
            Err(_) => {
                let reason = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                    .unwrap_or(body);
                bail!("the node answered {status}: {reason}")
            }
        };
        pages += 1;
        for entry in &page.messages {
            let Some(m) = &entry.message else { continue };
            let bytes = B64.decode(&m.payload).unwrap_or_default();
            let Some(text) = shown_payload(bytes, m.version, &keys) else {
                continue;
            };
            println!("{} {} {}", m.timestamp.unwrap_or(0), m.content_topic, text);
            shown += 1;
        }
        match page.pagination_cursor {
            Some(next) if !page.messages.is_empty() => {
                cursor = Some(next);
                if pages % 10 == 0 {
                    eprintln!("… {pages} pages, {shown} messages so far");
                }
            }
            _ => break,
        }
    }
    eprintln!("{shown} messages in {pages} page(s)");
    Ok(())
}

/// The payload as it goes on the wire: encrypted (version 1) when a key is given.
fn outgoing_payload(args: &PublishArgs) -> Result<(Vec<u8>, Option<u32>)> {
    let key = match (&args.symmetric_key, &args.public_key) {
        (Some(k), _) => {
            PayloadKey::Symmetric(payload::parse_symmetric_key(k).context("--symmetric-key")?)
        }
        (None, Some(k)) => {
            PayloadKey::Asymmetric(payload::parse_public_key(k).context("--public-key")?)
        }
        (None, None) => {
            if args.sign_key.is_some() {
                bail!(
                    "--sign-key signs encrypted payloads; give --symmetric-key or --public-key too"
                );
            }
            return Ok((args.payload.as_bytes().to_vec(), None));
        }
    };
    let signer = args
        .sign_key
        .as_deref()
        .map(payload::parse_secret_key)
        .transpose()
        .context("--sign-key")?;
    let data = payload::encrypt(
        args.payload.as_bytes(),
        &key,
        signer.as_ref(),
        &mut rand::rngs::OsRng,
    )
    .context("encrypting the payload")?;
    Ok((data, Some(payload::ENCRYPTED_VERSION)))
}

/// The keys `subscribe` and `history` try on encrypted payloads.
fn keys_of(symmetric: &[String], private: Option<&str>) -> Result<Vec<DecryptionKey>> {
    let mut keys = Vec::new();
    for k in symmetric {
        keys.push(DecryptionKey::Symmetric(
            payload::parse_symmetric_key(k).context("--symmetric-key")?,
        ));
    }
    if let Some(k) = private {
        keys.push(DecryptionKey::Private(
            payload::parse_secret_key(k).context("--private-key")?,
        ));
    }
    Ok(keys)
}

/// How `subscribe` prints a payload: the text, decrypted when it is encrypted and a key
/// opens it (with the signer, if signed); `None` for an encrypted payload no key opens.
fn shown_payload(bytes: Vec<u8>, version: Option<u32>, keys: &[DecryptionKey]) -> Option<String> {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap_or_else(|e| B64.encode(e.as_bytes()));
    if version != Some(payload::ENCRYPTED_VERSION) || keys.is_empty() {
        return Some(text(bytes));
    }
    keys.iter().find_map(|key| {
        let opened = payload::decrypt(&bytes, key).ok()?;
        let signer = opened
            .signer
            .map(|pk| format!(" [signed by {}]", payload::public_hex(&pk)))
            .unwrap_or_default();
        Some(format!("{}{signer}", text(opened.payload)))
    })
}

/// Percent-encodes a path segment or query value.
fn encode_topic(topic: &str) -> String {
    topic
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn error_text(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(body);
    format!("the node answered {status}: {reason}")
}

fn unreachable(url: &str, e: reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot reach the node's REST API at {url} ({e}); is `rln-node run` running, and is --node right?")
}

/// Publishes one message through the node, which proves it.
pub(crate) async fn publish(args: PublishArgs) -> Result<()> {
    let client = rln_chain::http::client(None)?;
    let url = format!(
        "{}/relay/v1/messages/{}",
        args.target.url.trim_end_matches('/'),
        encode_topic(&args.target.topic)
    );
    let (bytes, version) = outgoing_payload(&args)?;
    let message = RestMessage {
        payload: B64.encode(bytes),
        content_topic: args.content_topic,
        version,
        ..Default::default()
    };
    let response = args
        .target
        .auth(client.post(&url))
        .json(&message)
        .send()
        .await
        .map_err(|e| unreachable(&args.target.url, e))?;
    if !response.status().is_success() {
        bail!(error_text(response).await);
    }
    let body: serde_json::Value = response
        .json()
        .await
        .context("the node's answer is not JSON")?;
    println!(
        "published {}",
        body.get("messageHash")
            .and_then(|h| h.as_str())
            .unwrap_or("?")
    );
    Ok(())
}

/// Subscribes and prints messages as they arrive.
pub(crate) async fn subscribe(args: SubscribeArgs) -> Result<()> {
    let keys = keys_of(&args.symmetric_key, args.private_key.as_deref())?;
    let client = rln_chain::http::client(None)?;
    let base = args.target.url.trim_end_matches('/').to_string();
    let response = args
        .target
        .auth(client.post(format!("{base}/relay/v1/subscriptions")))
        .json(&vec![args.target.topic.clone()])
        .send()
        .await
        .map_err(|e| unreachable(&base, e))?;
    if !response.status().is_success() {
        bail!(error_text(response).await);
    }
    eprintln!(
        "subscribed to {}; waiting for messages (Ctrl-C to stop)",
        args.target.topic
    );
    let started = Instant::now();
    let mut seen = 0usize;
    let url = format!(
        "{base}/relay/v1/messages/{}",
        encode_topic(&args.target.topic)
    );
    loop {
        if args
            .timeout
            .is_some_and(|t| started.elapsed() >= Duration::from_secs(t))
        {
            break;
        }
        let response = args
            .target
            .auth(client.get(&url))
            .send()
            .await
            .map_err(|e| unreachable(&base, e))?;
        if !response.status().is_success() {
            bail!(error_text(response).await);
        }
        let messages: Vec<RestMessage> = response
            .json()
            .await
            .context("the node's answer is not a message list")?;
        for m in messages {
            let bytes = B64.decode(&m.payload).unwrap_or_default();
            // An encrypted message that none of the keys opens is someone else's.
            let Some(text) = shown_payload(bytes, m.version, &keys) else {
                continue;
            };
            println!("{} {} {}", m.timestamp.unwrap_or(0), m.content_topic, text);
            seen += 1;
            if args.count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
