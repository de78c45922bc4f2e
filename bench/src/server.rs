//! The patrold under test: spawned as a child process on free ports (found next
//! to this executable, or given with `--patrold`), or an already running one
//! given with `--server`. Also makes gRPC channels to it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use patrol_proto::v1 as pb;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::proc_stats::{self, ProcSample};
use crate::redis_alt::RedisServer;

/// Largest message the bench accepts (snapshots and position batches of a
/// million units are several megabytes).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// How to reach the server.
#[derive(Debug, Clone)]
pub enum ServerSource {
    /// Spawn this binary.
    Spawn {
        patrold: PathBuf,
        config: Option<PathBuf>,
    },
    /// Use a running server; its pid (if given) lets the bench read CPU and RSS.
    Connect { url: String, pid: Option<u32> },
}

/// Settings written to the spawned server's config file.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Watch coalescing interval, milliseconds.
    pub position_interval_ms: u64,
    /// Offline age, milliseconds: long, so that units registered early in a
    /// 1M-unit run are still available when it is queried.
    pub offline_after_ms: u64,
    /// An OpenStreetMap extract to route over (`map`), if any.
    pub map: Option<std::path::PathBuf>,
}

/// A running patrold.
#[derive(Debug)]
pub struct Patrold {
    pub url: String,
    pub pid: Option<u32>,
    /// `127.0.0.1:PORT` of its HTTP side (`/metrics`), when the bench spawned it.
    pub http: Option<String>,
    child: Option<Child>,
    log: Option<PathBuf>,
    /// How to reach a server that serves TLS (`None`: plaintext).
    tls: Option<ClientTlsConfig>,
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `patrold` next to this executable (`target/<profile>/`).
pub fn default_patrold() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("executable has no directory"))?;
    // `cargo test` runs from target/<profile>/deps
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let p = d.join("patrold");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no patrold next to {} (build it with `cargo build --release -p patrol-services`, or pass --patrold PATH or --server URL)",
        exe.display()
    )
}

/// A spawned server's log filter: `PATROLD_LOG`, or warnings only.
fn default_log_filter() -> String {
    std::env::var("PATROLD_LOG").unwrap_or_else(|_| "warn".into())
}

/// The config file for a spawned server: [`service_toml`] with auth off.
pub fn config_toml(s: &ServerSettings) -> String {
    format!(
        "{}\n[auth]\n# These phases measure the service; the `secure` phase measures what\n# credentials (and TLS) cost.\nrequired = false\n",
        service_toml(s)
    )
}

/// Everything of a spawned server's config but `[auth]` and `[tls]`: the
/// Watch interval, the offline age, the map, and per-caller limits off.
pub fn service_toml(s: &ServerSettings) -> String {
    let map = match &s.map {
        Some(path) => format!("map = {:?}\n\n", path.display().to_string()),
        None => String::new(),
    };
    format!(
        "{map}[watch]\nposition_interval_ms = {}\nmax_subscribers = 1000000\n\n[units]\noffline_after_ms = {}\n# The load moves units by synthetic jumps.\ntrust_positions = false\n\n# The load is one caller far above any fleet's quota: measured is the\n# server, not its per-caller limits.\n[limits]\npings_per_second_per_caller = 0\nmax_streams_per_caller = 1000000\n",
        s.position_interval_ms, s.offline_after_ms
    )
}

impl Patrold {
    /// Starts (or reaches) the server and waits until it answers a gRPC call.
    pub async fn start(
        source: &ServerSource,
        settings: &ServerSettings,
        workdir: &Path,
    ) -> Result<Patrold> {
        match source {
            ServerSource::Connect { url, pid } => {
                let mut server = Patrold {
                    url: url.clone(),
                    pid: *pid,
                    http: None,
                    child: None,
                    log: None,
                    tls: None,
                };
                server.wait_ready(None).await?;
                Ok(server)
            }
            ServerSource::Spawn { patrold, config } => {
                let config = match config {
                    Some(c) => c.clone(),
                    None => {
                        let p = workdir.join("patrold.toml");
                        std::fs::write(&p, config_toml(settings))?;
                        p
                    }
                };
                Self::spawn(patrold, &config, workdir, &default_log_filter()).await
            }
        }
    }

    /// Spawns `binary` with `config` on free ports, its log (at `log_filter`)
    /// in `workdir`, and waits until it answers a gRPC call.
    pub async fn spawn(
        binary: &Path,
        config: &Path,
        workdir: &Path,
        log_filter: &str,
    ) -> Result<Patrold> {
        Self::spawn_secure(binary, config, workdir, log_filter, None).await
    }

    /// [`Patrold::spawn`], serving TLS as `config`'s `[tls]` says when `tls`
    /// (how the bench's clients reach it) is given; without, `--plaintext`.
    /// A server that requires credentials counts as ready when it refuses
    /// the bench's uncredentialed call as unauthenticated.
    pub async fn spawn_secure(
        binary: &Path,
        config: &Path,
        workdir: &Path,
        log_filter: &str,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Patrold> {
        let grpc = free_port()?;
        let http = free_port()?;
        let log = workdir.join(format!("patrold-{grpc}.log"));
        let mut command = Command::new(binary);
        command
            .arg("--grpc")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--http")
            .arg(format!("127.0.0.1:{http}"))
            .arg("--config")
            .arg(config);
        if tls.is_none() {
            // The bench talks to its own patrold over loopback.
            command.arg("--plaintext");
        }
        let child = command
            .env("PATROL_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut server = Patrold {
            url: format!("{scheme}://127.0.0.1:{grpc}"),
            pid: Some(child.id()),
            http: Some(format!("127.0.0.1:{http}")),
            child: Some(child),
            log: Some(log),
            tls,
        };
        // A durable node serves once it has replayed the region's log, which
        // for a million units takes a while.
        server.wait_ready(Some(Duration::from_secs(300))).await?;
        Ok(server)
    }

    /// The server's `/metrics` page (Prometheus text).
    pub async fn metrics(&self) -> Result<String> {
        let addr = self
            .http
            .as_deref()
            .context("the server's HTTP address is not known (not spawned by the bench)")?;
        http_get(addr, "/metrics").await
    }

    /// The whole log of the spawned server.
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    async fn wait_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        let deadline = Instant::now() + timeout.unwrap_or(Duration::from_secs(10));
        let mut last_err = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child_exit() {
                bail!(
                    "patrold exited with {status} during start-up; log:\n{}",
                    self.log_tail()
                );
            }
            match self.channel().await {
                Ok(ch) => {
                    let mut units = pb::unit_service_client::UnitServiceClient::new(ch);
                    match units
                        .list_units(pb::ListUnitsRequest {
                            limit: 1,
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(_) => return Ok(()),
                        // It answered: it only wants a credential.
                        Err(e) if e.code() == tonic::Code::Unauthenticated => return Ok(()),
                        Err(e) => last_err = e.to_string(),
                    }
                }
                Err(e) => last_err = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "patrold at {} not ready: {last_err}; log:\n{}",
            self.url,
            self.log_tail()
        )
    }

    fn child_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The last lines of the spawned server's log.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return "(not spawned by the bench)".into();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A new HTTP/2 connection to the server.
    pub async fn channel(&self) -> Result<Channel> {
        connect_tls(&self.url, self.tls.clone()).await
    }

    /// `n` separate connections.
    pub async fn channels(&self, n: usize) -> Result<Vec<Channel>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.channel().await?);
        }
        Ok(out)
    }

    /// CPU and memory of the server process, when the bench knows its pid.
    pub fn sample(&self) -> Option<ProcSample> {
        proc_stats::sample(self.pid?)
    }

    /// Stops a spawned server (a connected one is left running).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Patrold {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a phase that starts its own servers needs: the binaries, a directory
/// for their files, and the settings every spawned patrold gets.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub patrold: PathBuf,
    pub redis_server: PathBuf,
    pub workdir: PathBuf,
    pub settings: ServerSettings,
}

impl Launcher {
    /// A patrold with the bench's settings plus `extra` (TOML, e.g. from
    /// [`redis_toml`]), its config written to `<name>.toml` in the workdir.
    pub async fn patrold(&self, name: &str, extra: &str) -> Result<Patrold> {
        self.patrold_logging(name, extra, &default_log_filter())
            .await
    }

    /// [`Launcher::patrold`] with its log at `log_filter`.
    pub async fn patrold_logging(
        &self,
        name: &str,
        extra: &str,
        log_filter: &str,
    ) -> Result<Patrold> {
        let config = self.workdir.join(format!("{name}.toml"));
        std::fs::write(&config, format!("{}{extra}", config_toml(&self.settings)))?;
        Patrold::spawn(&self.patrold, &config, &self.workdir, log_filter)
            .await
            .with_context(|| format!("patrold for {name}"))
    }

    /// A patrold with the bench's [`service_toml`] plus `security` (its
    /// `[auth]` and `[tls]` sections), reached over `tls` when given (see
    /// [`Patrold::spawn_secure`]).
    pub async fn patrold_secure(
        &self,
        name: &str,
        security: &str,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Patrold> {
        let config = self.workdir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!("{}{security}", service_toml(&self.settings)),
        )?;
        Patrold::spawn_secure(
            &self.patrold,
            &config,
            &self.workdir,
            &default_log_filter(),
            tls,
        )
        .await
        .with_context(|| format!("patrold for {name}"))
    }

    /// The bench's own redis-server on a free port, persistence off.
    pub async fn redis(&self) -> Result<RedisServer> {
        RedisServer::start(&self.redis_server, &self.workdir)
            .await
            .with_context(|| redis_hint(&self.redis_server))
    }

    /// One with AOF on, `appendfsync everysec` (as `deploy/redis.conf`).
    pub async fn durable_redis(&self) -> Result<RedisServer> {
        RedisServer::start_durable(&self.redis_server, &self.workdir)
            .await
            .with_context(|| redis_hint(&self.redis_server))
    }
}

fn redis_hint(binary: &Path) -> String {
    format!(
        "starting {} (install redis-server or pass --redis-server PATH)",
        binary.display()
    )
}

/// A `[redis]` section: `urls = [url]` (what `patrold --redis URL` sets) and
/// `settings` (e.g. `("max_in_flight", 8)`).
pub fn redis_toml(url: &str, settings: &[(&str, u64)]) -> String {
    let mut out = format!("\n[redis]\nurls = [\"{url}\"]\n");
    for (key, value) in settings {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// `GET path` over HTTP/1.0 from `addr`; the body of a 200 response.
pub async fn http_get(addr: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP header in the reply to GET {path}"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET {path} from {addr}: {status}");
    }
    Ok(body.to_string())
}

/// The sum over every series of `name` in Prometheus text whose labels
/// contain `label` (e.g. `op="checkpoint"`; "" for all); `None` when no series
/// of that name is there (a histogram never recorded is not listed).
pub fn metric_sum(text: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        if !labels.contains(label) {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A channel with windows large enough that HTTP/2 flow control does not cap a
/// fast stream on loopback.
pub async fn connect(url: &str) -> Result<Channel> {
    connect_tls(url, None).await
}

/// [`connect`] over TLS when `tls` is given (an `https://` URL).
pub async fn connect_tls(url: &str, tls: Option<ClientTlsConfig>) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .with_context(|| format!("TLS settings for {url}"))?;
    }
    endpoint
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .initial_stream_window_size(Some(8 * 1024 * 1024))
        .initial_connection_window_size(Some(32 * 1024 * 1024))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    #[test]
    fn redis_section() {
        assert_eq!(
            redis_toml(
                "redis://127.0.0.1:7",
                &[("max_in_flight", 8), ("queue_wait_ms", 50)]
            ),
            "\n[redis]\nurls = [\"redis://127.0.0.1:7\"]\nmax_in_flight = 8\nqueue_wait_ms = 50\n"
        );
    }

    #[test]
    fn metric_sums_over_matching_series() {
        let text = "# HELP patrol_redis_errors_total failed\n\
            patrol_redis_errors_total{op=\"checkpoint\"} 2\n\
            patrol_redis_errors_total{op=\"append\"} 5\n\
            patrol_checkpoint_seconds_count 7\n\
            patrol_checkpoint_seconds_sum 10.5\n\
            patrol_checkpoint_seconds_bucket{le=\"1\"} 3\n";
        assert_eq!(metric_sum(text, "patrol_redis_errors_total", ""), Some(7.0));
        assert_eq!(
            metric_sum(text, "patrol_redis_errors_total", "op=\"checkpoint\""),
            Some(2.0)
        );
        assert_eq!(
            metric_sum(text, "patrol_checkpoint_seconds_count", ""),
            Some(7.0)
        );
        assert_eq!(metric_sum(text, "patrol_checkpoint_seconds", ""), None);
        assert_eq!(metric_sum(text, "patrol_pings_accepted_total", ""), None);
    }

    #[test]
    fn config_file_has_the_interval() {
        let toml = config_toml(&ServerSettings {
            position_interval_ms: 250,
            offline_after_ms: 3_600_000,
            map: None,
        });
        assert!(toml.contains("[watch]\nposition_interval_ms = 250"));
        assert!(toml.contains("[units]\noffline_after_ms = 3600000"));
        // the other phases measure the service without credentials or
        // per-caller limits
        assert!(toml.ends_with("\n[auth]\n# These phases measure the service; the `secure` phase measures what\n# credentials (and TLS) cost.\nrequired = false\n"));
        let settings = ServerSettings {
            position_interval_ms: 250,
            offline_after_ms: 3_600_000,
            map: None,
        };
        let service = service_toml(&settings);
        assert!(toml.starts_with(&service));
        assert!(service.contains("[limits]\npings_per_second_per_caller = 0\n"));
        assert!(!service.contains("[auth]") && !service.contains("[tls]"));
    }
}
