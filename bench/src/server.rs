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
use tonic::transport::{Channel, Endpoint};

use crate::proc_stats::{self, ProcSample};

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
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// Watch coalescing interval, milliseconds.
    pub position_interval_ms: u64,
    /// Offline age, milliseconds: long, so that units registered early in a
    /// 1M-unit run are still available when it is queried.
    pub offline_after_ms: u64,
}

/// A running patrold.
#[derive(Debug)]
pub struct Patrold {
    pub url: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    log: Option<PathBuf>,
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

/// The config file for a spawned server.
pub fn config_toml(s: &ServerSettings) -> String {
    format!(
        "[watch]\nposition_interval_ms = {}\n\n[units]\noffline_after_ms = {}\n",
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
                    child: None,
                    log: None,
                };
                server.wait_ready(None).await?;
                Ok(server)
            }
            ServerSource::Spawn { patrold, config } => {
                let grpc = free_port()?;
                let http = free_port()?;
                let config = match config {
                    Some(c) => c.clone(),
                    None => {
                        let p = workdir.join("patrold.toml");
                        std::fs::write(&p, config_toml(settings))?;
                        p
                    }
                };
                let log = workdir.join(format!("patrold-{grpc}.log"));
                let child = Command::new(patrold)
                    .arg("--grpc")
                    .arg(format!("127.0.0.1:{grpc}"))
                    .arg("--http")
                    .arg(format!("127.0.0.1:{http}"))
                    .arg("--config")
                    .arg(&config)
                    .env(
                        "PATROL_LOG",
                        std::env::var("PATROLD_LOG").unwrap_or_else(|_| "warn".into()),
                    )
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(File::create(&log)?)
                    .spawn()
                    .with_context(|| format!("spawning {}", patrold.display()))?;
                let mut server = Patrold {
                    url: format!("http://127.0.0.1:{grpc}"),
                    pid: Some(child.id()),
                    child: Some(child),
                    log: Some(log),
                };
                server.wait_ready(Some(Duration::from_secs(60))).await?;
                Ok(server)
            }
        }
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
        connect(&self.url).await
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

/// A channel with windows large enough that HTTP/2 flow control does not cap a
/// fast stream on loopback.
pub async fn connect(url: &str) -> Result<Channel> {
    Endpoint::from_shared(url.to_string())?
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
    fn config_file_has_the_interval() {
        let toml = config_toml(&ServerSettings {
            position_interval_ms: 250,
            offline_after_ms: 3_600_000,
        });
        assert!(toml.contains("[watch]\nposition_interval_ms = 250"));
        assert!(toml.contains("[units]\noffline_after_ms = 3600000"));
    }
}
