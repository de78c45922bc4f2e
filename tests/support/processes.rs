//! Real Redis for the tests: `redis-server` processes on free loopback ports,
//! each with its own directory and AOF on (as `deploy/redis.conf`), that a test
//! can kill -9 and restart; a 3-shard Redis Cluster built with CLUSTER
//! commands; and `patrold` itself as a child process, for kill -9.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A port nothing listens on now (nor on `port + 10000`, a cluster bus port).
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patrol-test-{name}-{}-{}",
        std::process::id(),
        super::now_ms()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One `redis-server`, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    fn start_with(cluster: bool) -> Self {
        let port = free_port();
        let mut server = Self {
            port,
            dir: temp_dir(&format!("redis-{port}")),
            cluster,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .arg("--cluster-config-file")
                .arg(self.dir.join("nodes.conf"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (installed by .ci/run)");
        self.child = Some(child);
        wait_for_redis(self.port);
    }

    /// kill -9: no shutdown, no final fsync.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory (it reloads its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until a PING on `port` answers PONG (it answers LOADING while it
/// reads its AOF).
fn wait_for_redis(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    loop {
        if let Ok(mut conn) = client.get_connection()
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on {port} never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three masters, slots split in three, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let nodes: Vec<_> = (0..3).map(|_| RedisServer::start_with(true)).collect();
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (from, to)) in nodes.iter().zip(ranges) {
            let mut conn = node.client().get_connection().unwrap();
            redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(from)
                .arg(to)
                .query::<()>(&mut conn)
                .expect("assign slots");
        }
        let mut first = nodes[0].client().get_connection().unwrap();
        for node in &nodes[1..] {
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port)
                .query::<()>(&mut first)
                .expect("meet");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            let mut conn = node.client().get_connection().unwrap();
            loop {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster never became ok: {info}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node that owns `key`'s slot.
    pub fn owner_of(&self, key: &str) -> usize {
        let mut conn = self.nodes[0].client().get_connection().unwrap();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .unwrap();
        match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        }
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
    child: Child,
    pub grpc_url: String,
    _logs: mpsc::Receiver<String>,
}

impl PatroldProcess {
    /// Starts patrold with `args` after the listen flags and waits until it
    /// serves (after rebuilding from Redis).
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(patrold_binary())
            .args([
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--log",
                "info",
            ])
            .args(["--position-interval-ms", "20"])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("patrold starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let grpc = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("patrold logs that it is serving");
            if line.contains("patrold serving") {
                let plain: String = line
                    .split('\u{1b}')
                    .map(|part| part.split_once('m').map_or(part, |(_, rest)| rest))
                    .collect();
                break plain
                    .split("grpc=")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .expect("grpc= field")
                    .to_string();
            }
        };
        Self {
            child,
            grpc_url: format!("http://{grpc}"),
            _logs: rx,
        }
    }

    /// SIGKILL: no graceful anything.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PatroldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
