//! `redis-server` children: one per test that needs Redis, on a free loopback
//! port with its own directory, AOF on and `appendfsync everysec` (as
//! `deploy/redis.conf`), and three of them as a Redis Cluster.
//!
//! Start-up is awaited on redis' systemd notification: with
//! `--supervised systemd` it sends `READY=1` to the datagram socket named by
//! `NOTIFY_SOCKET` once it has loaded its AOF and accepts connections.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::child;

/// How long a start (or a restart that reloads the AOF) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a cluster may take to agree that all slots are served.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports tried when another process took the free port first.
const PORT_ATTEMPTS: usize = 3;

/// One `redis-server`, killed (SIGKILL) and its directory removed when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// A standalone server on a free port; returns once it accepts commands.
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    fn start_with(cluster: bool) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = crate::free_port().context("finding a free port")?;
            let mut server = Self {
                port,
                dir: child::temp_dir(&format!("redis-{port}")).context("redis directory")?,
                cluster,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                // Another process took the port between free_port and bind.
                Err(_) if attempt < PORT_ATTEMPTS && server.log().contains("already in use") => {}
                Err(err) => return Err(err),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its `--dir`: the AOF, and `redis.log` (its stdout and stderr).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILL: no shutdown, no final fsync. Returns once it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory; returns once it has
    /// reloaded its AOF.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// Sends one command and reads its reply; a Redis error reply is an `Err`
    /// with its text. Enough RESP for setting up and checking a test server,
    /// not a client library.
    pub fn command(&self, args: &[&str]) -> Result<Reply> {
        let what = || format!("{} on redis {}", args.join(" "), self.port);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).with_context(what)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .with_context(what)?;
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        stream.write_all(&request).with_context(what)?;
        match Reply::read(&mut BufReader::new(stream)).with_context(what)? {
            Reply::Error(message) => Err(anyhow!("{}: {message}", what())),
            reply => Ok(reply),
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        child::file_tail(&self.log_path(), n)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<()> {
        let notify_path = self.dir.join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path)
            .with_context(|| format!("binding {}", notify_path.display()))?;
        notify.set_read_timeout(Some(Duration::from_millis(100)))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("redis log file")?;
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(["--supervised", "systemd"])
            .env("NOTIFY_SOCKET", &notify_path);
        if self.cluster {
            command
                .args(["--cluster-enabled", "yes"])
                .arg("--cluster-config-file")
                .arg(self.dir.join("nodes.conf"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context(
                "spawning redis-server (scripts/test installs it: Debian package redis-server)",
            )?;
        self.child = Some(child);
        let ready = self.wait_ready(&notify);
        let _ = std::fs::remove_file(&notify_path);
        if ready.is_err() {
            self.kill();
        }
        ready
    }

    fn wait_ready(&mut self, notify: &UnixDatagram) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut message = [0u8; 4096];
        loop {
            match notify.recv(&mut message) {
                Ok(n) if message[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(err) => return Err(err).context("reading redis-server's notify socket"),
            }
            let child = self.child.as_mut().expect("spawned");
            if let Some(status) = child.try_wait()? {
                bail!(
                    "redis-server on port {} exited with {status} before it was ready; its log ends:\n{}",
                    self.port,
                    self.log_tail(20)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "redis-server on port {} was not ready within {READY_TIMEOUT:?}; its log ends:\n{}",
                    self.port,
                    self.log_tail(20)
                );
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reply in the Redis protocol (RESP2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    /// `None` is the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None` is the null array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a status or bulk reply.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }

    pub fn integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            _ => None,
        }
    }

    fn read(input: &mut impl BufRead) -> Result<Self> {
        let mut line = Vec::new();
        input.read_until(b'\n', &mut line)?;
        let Some(body) = line.strip_suffix(b"\r\n") else {
            bail!(
                "reply line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            );
        };
        let (kind, rest) = body
            .split_first()
            .ok_or_else(|| anyhow!("empty reply line"))?;
        let rest = std::str::from_utf8(rest).context("reply header is not UTF-8")?;
        let length =
            || -> Result<i64> { rest.parse().with_context(|| format!("bad length {rest:?}")) };
        Ok(match kind {
            b'+' => Reply::Status(rest.to_string()),
            b'-' => Reply::Error(rest.to_string()),
            b':' => Reply::Integer(length()?),
            b'$' => match usize::try_from(length()?) {
                Err(_) => Reply::Bulk(None),
                Ok(n) => {
                    let mut bytes = vec![0; n + 2];
                    input.read_exact(&mut bytes)?;
                    bytes.truncate(n);
                    Reply::Bulk(Some(bytes))
                }
            },
            b'*' => match usize::try_from(length()?) {
                Err(_) => Reply::Array(None),
                Ok(n) => Reply::Array(Some(
                    (0..n).map(|_| Reply::read(input)).collect::<Result<_>>()?,
                )),
            },
            other => bail!("unknown reply type {:?}", *other as char),
        })
    }
}

/// Three masters, slots split in three ([`RedisCluster::SLOTS`]), no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// The slots each node serves, in node order.
    pub const SLOTS: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

    /// Starts three cluster-enabled servers, assigns the slots, introduces
    /// them and returns once every node reports `cluster_state:ok` with three
    /// known nodes.
    pub fn start() -> Result<Self> {
        let nodes = (0..Self::SLOTS.len())
            .map(|_| RedisServer::start_with(true))
            .collect::<Result<Vec<_>>>()?;
        for (node, (from, to)) in nodes.iter().zip(Self::SLOTS) {
            node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &from.to_string(),
                &to.to_string(),
            ])?;
        }
        for node in &nodes[1..] {
            nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &node.port.to_string()])?;
        }
        // Gossip has no completion signal: ask until all three agree.
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        for node in &nodes {
            loop {
                let info = node
                    .command(&["CLUSTER", "INFO"])?
                    .text()
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("the cluster was not ok within {CLUSTER_TIMEOUT:?}: {info}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(Self { nodes })
    }

    /// Every node's `redis://` URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The index of the node that serves `key`'s slot.
    pub fn owner_of(&self, key: &str) -> Result<usize> {
        let slot = self.nodes[0]
            .command(&["CLUSTER", "KEYSLOT", key])?
            .integer()
            .ok_or_else(|| anyhow!("CLUSTER KEYSLOT did not answer an integer"))?;
        let slot = u16::try_from(slot).context("slot out of range")?;
        Ok(Self::node_of_slot(slot))
    }

    /// The index of the node that serves `slot`.
    pub fn node_of_slot(slot: u16) -> usize {
        Self::SLOTS
            .iter()
            .position(|&(from, to)| (from..=to).contains(&slot))
            .unwrap_or(Self::SLOTS.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(server: &RedisServer, args: &[&str]) -> Option<String> {
        server.command(args).unwrap().text()
    }

    #[test]
    fn a_killed_server_restarts_with_what_it_acknowledged() {
        let mut redis = RedisServer::start().unwrap();
        assert_eq!(
            text(&redis, &["SET", "unit", "car-1"]).as_deref(),
            Some("OK")
        );
        let aof = redis.dir().join("appendonlydir");
        assert!(aof.is_dir(), "AOF is on: {}", aof.display());
        redis.kill();
        assert!(
            redis.command(&["PING"]).is_err(),
            "killed means not answering"
        );
        redis.restart().unwrap();
        assert_eq!(text(&redis, &["GET", "unit"]).as_deref(), Some("car-1"));
    }

    #[test]
    fn an_error_reply_is_an_error_with_its_text() {
        let redis = RedisServer::start().unwrap();
        let err = redis.command(&["NOSUCHCOMMAND"]).unwrap_err();
        assert!(format!("{err:#}").contains("unknown command"), "{err:#}");
    }

    #[test]
    fn a_cluster_serves_each_slot_on_one_node() {
        let cluster = RedisCluster::start().unwrap();
        let owner = cluster.owner_of("patrol:{helsinki}:log").unwrap();
        assert_eq!(cluster.owner_of("patrol:{helsinki}:meta").unwrap(), owner);
        let key = "patrol:{helsinki}:log";
        assert_eq!(
            text(&cluster.nodes[owner], &["SET", key, "1"]).as_deref(),
            Some("OK")
        );
        let other = (owner + 1) % cluster.nodes.len();
        let err = cluster.nodes[other]
            .command(&["SET", key, "1"])
            .unwrap_err();
        assert!(format!("{err:#}").contains("MOVED"), "{err:#}");
    }

    #[test]
    fn replies_parse() {
        let mut input: &[u8] = b"*3\r\n+OK\r\n:-2\r\n$-1\r\n";
        assert_eq!(
            Reply::read(&mut input).unwrap(),
            Reply::Array(Some(vec![
                Reply::Status("OK".into()),
                Reply::Integer(-2),
                Reply::Bulk(None)
            ]))
        );
        let mut input: &[u8] = b"$5\r\nab\r\nc\r\n";
        assert_eq!(
            Reply::read(&mut input).unwrap(),
            Reply::Bulk(Some(b"ab\r\nc".to_vec()))
        );
        assert_eq!(RedisCluster::node_of_slot(5460), 0);
        assert_eq!(RedisCluster::node_of_slot(5461), 1);
        assert_eq!(RedisCluster::node_of_slot(16383), 2);
    }
}
