//! Real processes for the tests, from `patrol-testkit`: `redis-server`
//! processes on free loopback ports (own directory, AOF on, as
//! `deploy/redis.conf`) that a test can kill -9 and restart; a 3-shard Redis
//! Cluster; and `patrold` itself as a child process, for kill -9. This module
//! only adds what the tests want on top: `redis::Client`s, the test listen
//! flags, and panics instead of errors. Also a `mosquitto` MQTT broker on a
//! free port, for the Frigate bridge.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;

use patrol_testkit as kit;

pub use kit::free_port;

/// One `redis-server`, killed when dropped.
pub struct RedisServer(kit::RedisServer);

impl RedisServer {
    pub fn start() -> Self {
        Self(kit::RedisServer::start().expect("redis-server starts (installed by scripts/test)"))
    }

    /// Starts again on the same port and directory (it reloads its AOF).
    pub fn restart(&mut self) {
        self.0.restart().expect("redis-server restarts");
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }
}

impl Deref for RedisServer {
    type Target = kit::RedisServer;

    fn deref(&self) -> &kit::RedisServer {
        &self.0
    }
}

impl DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut kit::RedisServer {
        &mut self.0
    }
}

/// Three masters, slots split in three, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let kit::RedisCluster { nodes } = kit::RedisCluster::start().expect("redis cluster starts");
        Self {
            nodes: nodes.into_iter().map(RedisServer).collect(),
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.url()).collect()
    }

    /// The node that owns `key`'s slot.
    pub fn owner_of(&self, key: &str) -> usize {
        let slot = self.nodes[0]
            .command(&["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT")
            .integer()
            .expect("a slot number");
        kit::RedisCluster::node_of_slot(u16::try_from(slot).expect("slot in range"))
    }
}

/// The `patrold` binary built beside this test binary.
pub fn patrold_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/patrold
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("patrold{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "patrol-services", "--bin", "patrold"])
            .status()
            .expect("cargo build patrold");
        assert!(status.success(), "building patrold");
    }
    bin
}

/// `patrold` as a child process (so a test can kill -9 it).
pub struct PatroldProcess {
    node: kit::Patrold,
    pub grpc_url: String,
}

impl PatroldProcess {
    /// Starts patrold with `args` after the listen flags and waits until it
    /// serves (after rebuilding from Redis): until it wrote its ready file.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(patrold_binary());
        command
            .args([
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--plaintext",
            ])
            .args(["--log", "info", "--position-interval-ms", "20"])
            .args(args)
            .env("NO_COLOR", "1")
            // Synthetic jumps, as in `test_config`.
            .env("PATROL_TRUST_POSITIONS", "false")
            // As in `test_config`: the tests of credentials turn it on.
            .env("PATROL_NO_AUTH", "true")
            .env_remove("RUST_LOG");
        let node = kit::Patrold::spawn_command(command, kit::Patrold::READY_TIMEOUT)
            .unwrap_or_else(|err| panic!("patrold starts: {err:#}"));
        Self {
            grpc_url: node.grpc_url(),
            node,
        }
    }

    /// Its HTTP address (`/metrics`, `/healthz`).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.node.http_addr()
    }

    /// Freezes the process (SIGSTOP) until [`PatroldProcess::resume`].
    pub fn pause(&self) {
        self.node.pause().expect("SIGSTOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.node.resume().expect("SIGCONT");
    }

    /// The last lines it logged.
    pub fn log_tail(&self, n: usize) -> String {
        self.node.stderr_tail(n)
    }

    /// SIGKILL: no graceful anything.
    pub fn kill_9(mut self) {
        self.node.kill().expect("patrold is killed");
    }
}

/// One `mosquitto` MQTT broker on a free loopback port (its own directory
/// and config: `listener PORT 127.0.0.1`, anonymous clients, no
/// persistence), killed when dropped. The Debian package `mosquitto` is
/// installed by `scripts/test`.
pub struct MosquittoServer {
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl MosquittoServer {
    /// How long the broker may take to accept connections.
    const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port().expect("a free port");
            let dir = std::env::temp_dir()
                .join(format!("patrol-mosquitto-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("mosquitto directory");
            let mut server = Self {
                port,
                dir,
                child: None,
            };
            if server.spawn() {
                return server;
            }
            // Another process took the port between free_port and bind.
            assert!(
                server.log().contains("in use"),
                "mosquitto did not start:\n{}",
                server.log()
            );
        }
        panic!("mosquitto found no free port in 5 tries");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// SIGKILL; returns once it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "mosquitto restarts:\n{}", self.log());
    }

    /// Its log (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Spawns it and waits until it accepts a connection; false if it
    /// exited first.
    fn spawn(&mut self) -> bool {
        let config = self.dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n",
                self.port
            ),
        )
        .expect("mosquitto.conf");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .expect("mosquitto log file");
        let program = ["mosquitto", "/usr/sbin/mosquitto"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .arg("-h")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok()
            })
            .expect("mosquitto is installed (scripts/test installs it)");
        let child = Command::new(program)
            .arg("-c")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawning mosquitto");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Self::READY_TIMEOUT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            let child = self.child.as_mut().expect("spawned");
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return false;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto on port {} not accepting connections after {:?}:\n{}",
                self.port,
                Self::READY_TIMEOUT,
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for MosquittoServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
