//! What both kinds of child process need: their stderr kept in memory (read on
//! a thread, so a chatty child never blocks on a full pipe) and a private
//! directory that is removed with them.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lines kept per child; older ones are dropped so a long bench run stays
/// bounded.
const MAX_LINES: usize = 10_000;

/// The last [`MAX_LINES`] lines a child wrote to a pipe.
pub(crate) struct CapturedLines {
    lines: Arc<Mutex<VecDeque<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl CapturedLines {
    /// Reads `pipe` to its end on a thread. Bytes that are not UTF-8 are
    /// replaced, not a reason to stop reading.
    pub(crate) fn start(pipe: impl Read + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match pipe.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_string();
                        let mut lines = sink.lock().unwrap_or_else(|e| e.into_inner());
                        if lines.len() == MAX_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                }
            }
        });
        Self {
            lines,
            reader: Some(reader),
        }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }

    pub(crate) fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let skip = lines.len().saturating_sub(n);
        let tail: Vec<&str> = lines.iter().skip(skip).map(String::as_str).collect();
        tail.join("\n")
    }

    /// Waits until the pipe reached its end (call after the child exited, so
    /// every line it wrote is in [`Self::lines`]).
    pub(crate) fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A new empty directory under the system temp dir, named after `name`, this
/// process and a counter (unique within and across test binaries).
pub(crate) fn temp_dir(name: &str) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "patrol-{name}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Sends `signal` to `pid`. Only for children that have not been waited for,
/// so the pid cannot have been reused.
pub(crate) fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The last `n` lines of a file (a redis-server log), or why it can't be read.
pub(crate) fn file_tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(err) => format!("({}: {err})", path.display()),
    }
}
