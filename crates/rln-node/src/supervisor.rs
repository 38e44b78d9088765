//! The node's background tasks and threads, supervised: each runs until the node stops, and a
//! task that panics or ends on its own is logged and stops the whole node cleanly (the others
//! are told to stop, the state is flushed), instead of leaving a node that looks alive but no
//! longer syncs, relays or validates.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::NodeError;

/// The first failure, kept for [`Supervisor::shutdown`] to report.
type Failure = Arc<Mutex<Option<(&'static str, String)>>>;

/// Owns the node's tasks and the shutdown signal they watch.
#[derive(Debug)]
pub(crate) struct Supervisor {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    failure: Failure,
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".into())
}

impl Supervisor {
    pub(crate) fn new() -> Self {
        Self {
            shutdown: watch::channel(false).0,
            tasks: Vec::new(),
            failure: Arc::default(),
        }
    }

    /// What tasks watch: it turns `true` when the node stops.
    pub(crate) fn signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Runs `task` until the node stops; if it panics or returns before that, the node stops.
    pub(crate) fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        self.tasks.push(tokio::spawn(async move {
            let ended = AssertUnwindSafe(task).catch_unwind().await;
            report(
                name,
                ended.map_err(|p| panic_text(&*p)),
                &shutdown,
                &failure,
            );
        }));
    }

    /// Watches a worker thread the same way: a panic in it stops the node.
    pub(crate) fn watch_thread(&mut self, name: &'static str, thread: std::thread::JoinHandle<()>) {
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        self.tasks.push(tokio::spawn(async move {
            let ended = match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(joined) => joined.map_err(|p| panic_text(&*p)),
                Err(e) => Err(format!("could not be joined: {e}")),
            };
            report(name, ended, &shutdown, &failure);
        }));
    }

    /// Resolves once the node is stopping (asked to, or because a task failed).
    pub(crate) fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut signal = self.signal();
        async move {
            // An error means the sender is gone, which happens only once the node is gone.
            let _ = signal.wait_for(|stop| *stop).await;
        }
    }

    /// Stops every task, waits for them, and returns the first failure, if any.
    pub(crate) async fn shutdown(self) -> Result<(), NodeError> {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            // Each task catches its own panic and reports it; a join error here means the
            // runtime is going away, and there is nothing left to stop.
            if let Err(e) = task.await {
                tracing::debug!("a supervised task could not be joined: {e}");
            }
        }
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failure {
            Some((task, problem)) => Err(NodeError::TaskFailed { task, problem }),
            None => Ok(()),
        }
    }
}

fn report(
    name: &'static str,
    ended: Result<(), String>,
    shutdown: &watch::Sender<bool>,
    failure: &Failure,
) {
    let problem = match ended {
        Err(panic) => format!("panicked: {panic}"),
        Ok(()) if *shutdown.borrow() => return,
        Ok(()) => "ended on its own".to_string(),
    };
    tracing::error!(task = name, "{problem}; stopping the node");
    failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert((name, problem));
    shutdown.send_replace(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panicking_task_stops_the_others_and_is_reported() {
        let mut s = Supervisor::new();
        let mut signal = s.signal();
        s.spawn("steady", async move {
            let _ = signal.wait_for(|stop| *stop).await;
        });
        s.spawn("faulty", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("boom");
        });
        tokio::time::timeout(Duration::from_secs(5), s.stopping())
            .await
            .expect("a panic stops the node");
        match s.shutdown().await {
            Err(NodeError::TaskFailed { task, problem }) => {
                assert_eq!(task, "faulty");
                assert!(problem.contains("boom"), "{problem}");
            }
            other => panic!("expected the failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_task_ending_early_stops_the_node_but_not_at_shutdown() {
        let mut s = Supervisor::new();
        s.spawn("short", async {});
        tokio::time::timeout(Duration::from_secs(5), s.stopping())
            .await
            .expect("an early end stops the node");
        assert!(matches!(
            s.shutdown().await,
            Err(NodeError::TaskFailed { task: "short", .. })
        ));
    }

    #[tokio::test]
    async fn a_panicking_worker_thread_stops_the_node() {
        let mut s = Supervisor::new();
        s.watch_thread("worker", std::thread::spawn(|| panic!("worker bug")));
        // Generous: with RUST_BACKTRACE set, the panic first symbolises a backtrace of this
        // large debug binary, which took more than 5 s on a loaded CI machine.
        tokio::time::timeout(Duration::from_secs(120), s.stopping())
            .await
            .expect("a worker's panic stops the node");
        match s.shutdown().await {
            Err(NodeError::TaskFailed { task, problem }) => {
                assert_eq!(task, "worker");
                assert!(problem.contains("worker bug"), "{problem}");
            }
            other => panic!("expected the failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_clean_shutdown_reports_nothing() {
        let mut s = Supervisor::new();
        let mut signal = s.signal();
        s.spawn("steady", async move {
            let _ = signal.wait_for(|stop| *stop).await;
        });
        assert!(s.shutdown().await.is_ok());
    }
}
