//! Optional `perf record` of the server around one measured phase, so a
//! profile shows that phase and not the loading before it. Used with
//! `--profile DIR`; each phase leaves `DIR/<phase>.perf.data`, readable with
//! `perf report -i DIR/<phase>.perf.data --no-children --sort symbol`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use tracing::{info, warn};

/// A running `perf record -p PID`.
#[derive(Debug)]
pub struct Recording {
    child: Child,
    pub output: PathBuf,
}

impl Recording {
    /// Starts sampling `pid` (with DWARF call graphs) into `dir/<name>.perf.data`.
    pub async fn start(dir: &Path, name: &str, pid: u32) -> Result<Recording> {
        std::fs::create_dir_all(dir)?;
        let output = dir.join(format!("{name}.perf.data"));
        let child = Command::new("perf")
            .args(["record", "-F", "999", "--call-graph", "dwarf,16384", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf record (install linux-perf)")?;
        // perf needs a moment to attach
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Recording { child, output })
    }

    /// Stops sampling (SIGINT, as Ctrl-C would) and waits for perf to write.
    pub fn stop(mut self) -> Result<PathBuf> {
        let status = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            warn!("could not signal perf; killing it");
            let _ = self.child.kill();
        }
        self.child.wait()?;
        info!(file = %self.output.display(), "profile written");
        Ok(self.output.clone())
    }
}

/// Starts a recording when a profile directory and a pid are known.
pub async fn maybe_start(
    dir: Option<&Path>,
    name: &str,
    pid: Option<u32>,
) -> Result<Option<Recording>> {
    match (dir, pid) {
        (Some(dir), Some(pid)) => Ok(Some(Recording::start(dir, name, pid).await?)),
        (Some(_), None) => {
            warn!("--profile needs the server's pid (spawned server, or --server-pid)");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Stops a recording started by [`maybe_start`].
pub fn maybe_stop(rec: Option<Recording>) -> Result<()> {
    if let Some(r) = rec {
        r.stop()?;
    }
    Ok(())
}
