//! Nodes on loopback: in-process configurations and `rln-node run` child processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rln_node::banner;
use rln_node::config::MembershipConfig;
use rln_node::NodeConfig;

use crate::chain::TestChain;
use crate::member::{TestMember, PASSWORD};

/// A node for `chain` in `dir`: loopback only, ephemeral ports, quick polling and heartbeats,
/// `epoch_secs`-long epochs, publishing as `member` when given.
pub fn loopback_config(
    chain: &TestChain,
    dir: &Path,
    member: Option<&TestMember>,
    epoch_secs: u64,
) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: dir.join("node"),
        ..NodeConfig::default()
    };
    c.chain.rpc = vec![chain.rpc()];
    c.chain.contract = chain.contract.to_string();
    c.chain.poll_interval_ms = 200;
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.heartbeat_ms = 300;
    c.rln.epoch_secs = epoch_secs;
    c.validation.workers = 2;
    c.rest.listen = Some(([127, 0, 0, 1], 0).into());
    c.membership = member.map(|m| MembershipConfig {
        keystore: m.keystore.clone(),
        password: PASSWORD.into(),
        id: None,
    });
    c
}

/// A node configuration that needs no chain to start: the chain id is given, so the node
/// starts while its RPC endpoint (a closed port) is down, and sync keeps retrying in the
/// background. For tests of everything but sync.
pub fn offline_config(dir: &Path) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: dir.join("node"),
        ..NodeConfig::default()
    };
    // Port 9 (discard) on loopback: nothing listens there.
    c.chain.rpc = vec!["http://127.0.0.1:9".into()];
    c.chain.chain_id = Some(31_337);
    c.chain.contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3".into();
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.validation.workers = 1;
    c.rest.listen = None;
    c
}

/// Runs a command to completion; returns whether it succeeded and its stdout and stderr.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the command starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.success(), text)
}

/// An `rln-node run` child process, killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// Its first libp2p address (with `/p2p/<peer id>`).
    pub p2p: String,
    /// Every libp2p address it printed, in order (TCP and WebSocket ones).
    pub addrs: Vec<String>,
    /// Its REST base URL, when the API is on.
    pub rest: Option<String>,
}

impl NodeProcess {
    /// Starts `binary run <args>` and waits for the lines announcing its addresses.
    pub fn start(binary: &Path, args: &[&str]) -> Self {
        Self::start_logged(binary, args, None)
    }

    /// [`Self::start`] with the node's log (stderr) written to `log`.
    pub fn start_logged(binary: &Path, args: &[&str], log: Option<PathBuf>) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("the log file opens")),
            None => Stdio::null(),
        };
        let mut child = Command::new(binary)
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("rln-node starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut p2p, mut rest, mut addrs) = (None, None, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        // The listen address comes first, then the REST line (absent with --no-rest), then
        // the publishing line: read up to the publishing line.
        for line in lines.by_ref() {
            let line = line.expect("stdout is text");
            if let Some(addr) = banner::listen_addr(&line) {
                p2p.get_or_insert_with(|| addr.to_string());
                addrs.push(addr.to_string());
            }
            if let Some(url) = banner::rest_url(&line) {
                rest = Some(url.to_string());
            }
            if line.starts_with("publishing") || line.starts_with("relay only") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node took over 60 s to start"
            );
        }
        // Keep reading so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let p2p = p2p.expect("the node printed a listen address before it exited");
        Self {
            child,
            p2p,
            addrs,
            rest,
        }
    }

    /// Starts `binary run --config <dir>/config.toml` with `config` written there, its log
    /// in `<dir>/node.log`.
    pub fn start_with_config(binary: &Path, config: &NodeConfig, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("the node directory is created");
        let file = dir.join("config.toml");
        let text = toml::to_string(config).expect("the configuration serialises");
        std::fs::write(&file, text).expect("the configuration is written");
        let file = file.to_str().expect("a UTF-8 path");
        Self::start_logged(binary, &["--config", file], Some(dir.join("node.log")))
    }

    /// Waits (up to 60 s) until its `/health` says it is synced; needs the REST API.
    pub async fn wait_synced(&self) {
        let url = format!(
            "{}/health",
            self.rest.as_deref().expect("the REST API is on")
        );
        rln_chain::http::install_provider();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{url} not synced after 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The sum of the samples of `metric` whose labels contain `label` (a `key="value"`
    /// pair, or empty for all), from its `/metrics`; 0 when absent.
    pub async fn metric(&self, metric: &str, label: &str) -> f64 {
        let url = format!(
            "{}/metrics",
            self.rest.as_deref().expect("the REST API is on")
        );
        rln_chain::http::install_provider();
        let text = reqwest::get(&url)
            .await
            .expect("the metrics answer")
            .text()
            .await
            .expect("the metrics are text");
        sum_samples(&text, metric, label)
    }

    /// The mean of a histogram on its `/metrics` (its `_sum` over its `_count`; 0 when empty).
    pub async fn histogram_mean(&self, histogram: &str) -> f64 {
        let sum = self.metric(&format!("{histogram}_sum"), "").await;
        let count = self.metric(&format!("{histogram}_count"), "").await;
        if count > 0.0 {
            sum / count
        } else {
            0.0
        }
    }

    /// Its first WebSocket address (`…/ws/p2p/<peer id>`), the one light clients dial.
    pub fn ws_addr(&self) -> Option<&str> {
        self.addrs
            .iter()
            .map(String::as_str)
            .find(|a| a.contains("/ws/"))
    }

    /// The most resident memory the process has held so far (Linux's `VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        self.status_bytes("VmHWM:")
    }

    /// The resident memory the process holds now (Linux's `VmRSS`), in bytes.
    pub fn rss(&self) -> Option<u64> {
        self.status_bytes("VmRSS:")
    }

    /// A size field of its `/proc/<pid>/status` (given in KiB there), in bytes.
    fn status_bytes(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Stops the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sum of the samples of `metric` (with or without labels) in a Prometheus text
/// exposition whose labels contain `label`.
pub fn sum_samples(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let name = name_labels.split('{').next()?;
            (name == metric && name_labels.contains(label))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::sum_samples;

    #[test]
    fn samples_are_summed_by_name_and_label() {
        let text = "# HELP x_total X\n\
                    x_total{reason=\"a\"} 2\n\
                    x_total{reason=\"b\"} 3.5\n\
                    x_total_more 100\n\
                    y 7\n";
        assert_eq!(sum_samples(text, "x_total", ""), 5.5);
        assert_eq!(sum_samples(text, "x_total", "reason=\"b\""), 3.5);
        assert_eq!(sum_samples(text, "y", ""), 7.0);
        assert_eq!(sum_samples(text, "z", ""), 0.0);
    }
}
