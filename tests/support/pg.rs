//! A throw-away PostgreSQL cluster: `initdb` in a temp dir, `postgres` on a free loopback port,
//! stopped by PID when the guard drops (also when the test panics).
//!
//! initdb and postgres refuse to run as root; as root they run as the `postgres` system user
//! (created by Debian's `postgresql` package) through `setpriv`, which execs in place so the
//! child's PID is the postmaster's own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Longest wait for the server to accept connections: a hang guard, not a speed requirement.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running cluster; dropping it stops the server and removes its files.
pub struct PgServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BIFRONS_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not installed ({root:?}: {e}); run scripts/install-deps (scripts/deps/storage.apt)")
        })
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `(uid, gid)` of the `postgres` system user.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "no `postgres` system user: install the postgresql package"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

/// A command that runs `program` as the postgres user when we are root.
fn as_cluster_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl PgServer {
    /// Initialises and starts a cluster tuned for tests (no fsync: the data is thrown away).
    pub fn start() -> PgServer {
        Self::start_with(false)
    }

    /// Initialises and starts a cluster; `durable` keeps PostgreSQL's default fsync settings
    /// (for throughput figures that mean something).
    pub fn start_with(durable: bool) -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("bifrons-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let data = dir.path().join("data");
        let out = as_cluster_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        let mut cmd = as_cluster_owner(&bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "max_connections=40"]);
        if !durable {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        let mut server = PgServer { child, port, dir };
        server.wait_ready();
        server
    }

    /// URL of the `postgres` database as superuser `postgres` over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// PID of the postmaster.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = self.dir.path().join("data/postmaster.pid");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "postgres exited during start-up ({status}):\n{}",
                    self.log()
                );
            }
            // The postmaster writes "ready" into postmaster.pid's status line once it accepts
            // connections.
            let status = std::fs::read_to_string(&ready).unwrap_or_default();
            if status.lines().any(|l| l.trim() == "ready")
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SIGINT is PostgreSQL's "fast shutdown": roll back sessions and exit cleanly.
        // SAFETY: kill on the PID of a child we spawned and have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
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
