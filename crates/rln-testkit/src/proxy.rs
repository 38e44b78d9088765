//! A TCP proxy in front of a chain endpoint that a test can cut and restore, for RPC outages.
//!
//! Cutting it closes every open connection (HTTP clients keep them alive, so refusing only
//! new ones would not be an outage) and refuses new ones until it is restored.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy on loopback forwarding to one address.
#[derive(Debug)]
pub struct RpcProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    target: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

impl RpcProxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `target` (an `http://host:port` URL or a
    /// `host:port` address; see [`Self::set_target`]). Must run inside a tokio runtime.
    pub async fn start(target: &str) -> Self {
        let target = Arc::new(Mutex::new(host_port(target)));
        let shared = target.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    continue; // dropped: connection refused in effect
                }
                let target = shared.lock().unwrap().clone();
                let mut down = rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            target,
            task,
        }
    }

    /// Forwards new connections to `target` from now on.
    pub fn set_target(&self, target: &str) {
        *self.target.lock().unwrap() = host_port(target);
    }

    /// The URL to give a node instead of the chain's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
