//! Real processes for the tests, from `patrol-testkit`: `redis-server`
//! processes on free loopback ports (own directory, AOF on, as
//! `deploy/redis.conf`) that a test can kill -9 and restart; a 3-shard Redis
//! Cluster; and `patrold` itself as a child process, for kill -9. This module
//! only adds what the tests want on top: `redis::Client`s, the test listen
//! flags, and panics instead of errors.

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
            .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--log", "info", "--position-interval-ms", "20"])
            .args(args)
            .env("NO_COLOR", "1")
            // Synthetic jumps, as in `test_config`.
            .env("PATROL_TRUST_POSITIONS", "false")
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
