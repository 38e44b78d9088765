//! A PostgreSQL server of the test's own: `initdb` into a temporary directory, the server on
//! a free loopback port with trust authentication, stopped (immediate shutdown) when the
//! fixture is dropped. The binaries are Debian's (`make test` installs the `postgresql`
//! package); `RLN_PG_BIN` names another directory. PostgreSQL refuses to run as root, so a
//! root test process runs it as the `postgres` account the package creates.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL server.
pub struct PgServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The directory of PostgreSQL's server binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RLN_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL's server is not installed (make test installs Debian's postgresql)")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` with `args`, as the `postgres` account when this process is root (`setpriv`
/// executes it in place, so the child is the server itself).
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Starts the server of the cluster in `dir/data` on `port`, logging to `dir/server.log`.
fn spawn(bin: &Path, dir: &Path, port: u16, root: bool) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    command(&bin.join("postgres"), root)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Runs `f` on a thread of its own: the synchronous PostgreSQL client starts a runtime,
/// which tokio forbids on a thread that runs async tasks (an async test's).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

impl PgServer {
    /// Initialises a cluster and starts its server; returns once it accepts connections.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("rln-pg-")
            .tempdir()
            .unwrap();
        let root = running_as_root();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the PostgreSQL directory");
        }
        let data = dir.path().join("data");
        let out = command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "rln",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::chain::free_port();
        let child = spawn(&bin, dir.path(), port, root);
        let server = Self { child, port, dir };
        server.wait_ready();
        server
    }

    /// Starts the server again on its files and port, after [`Self::kill`].
    pub fn restart(&mut self) {
        self.child = spawn(&bin_dir(), self.dir.path(), self.port, running_as_root());
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = off_runtime(|| {
                postgres::Client::connect(&self.url("postgres"), postgres::NoTls).map(drop)
            });
            match attempt {
                Ok(()) => return,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "PostgreSQL did not start: {e}\n{}",
                        std::fs::read_to_string(self.dir.path().join("server.log"))
                            .unwrap_or_default()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://rln@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; returns its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("rln_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        off_runtime(|| {
            let mut client =
                postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
        });
        self.url(&name)
    }

    /// Stops the server at once (as a crash would), keeping its files: for tests of an
    /// archive whose server goes away.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}
