//! `patrold` as a child process: spawned with `--ready-file`, ready when that
//! file appears (patrold writes it atomically once it serves, after any
//! rebuild from Redis), stopped with SIGTERM or SIGKILL.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::child::{self, CapturedLines};

/// How often the ready file is looked for while the child starts.
const READY_POLL: Duration = Duration::from_millis(10);

/// Lines of stderr quoted in a start-up error.
const ERROR_TAIL_LINES: usize = 40;

/// A running `patrold` child. Dropping it kills it (SIGKILL) and removes its
/// ready-file directory.
pub struct Patrold {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    stderr: CapturedLines,
    dir: PathBuf,
    ready_file: PathBuf,
    exit: Option<ExitStatus>,
}

impl Patrold {
    /// How long [`Patrold::spawn`] waits for the ready file: a node rebuilding
    /// a large region from Redis takes a while.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

    /// Starts `binary` with `args` plus `--ready-file PATH` and returns once
    /// it is serving. Pass `--grpc 127.0.0.1:0 --http 127.0.0.1:0` for ports
    /// of its own choosing; [`Patrold::grpc_addr`] tells which it got. patrold
    /// refuses to start without TLS files unless given `--plaintext`.
    pub fn spawn<I, S>(binary: impl AsRef<Path>, args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(binary.as_ref());
        command.args(args);
        Self::spawn_command(command, Self::READY_TIMEOUT)
    }

    /// Like [`Patrold::spawn`] for a command the caller built (environment,
    /// working directory). Its stdin and stdout are set to null and stderr is
    /// captured (see [`Patrold::stderr_lines`]); `--ready-file PATH` is
    /// appended to its arguments.
    pub fn spawn_command(mut command: Command, timeout: Duration) -> Result<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let dir = child::temp_dir("patrold").context("creating the ready-file directory")?;
        let ready_file = dir.join("ready.json");
        let mut child = command
            .arg("--ready-file")
            .arg(&ready_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {program}"))?;
        let stderr = CapturedLines::start(child.stderr.take().expect("stderr is piped"));
        let mut starting = Starting {
            child: Some(child),
            stderr: Some(stderr),
            dir: dir.clone(),
        };
        let ready = starting.wait_for(&ready_file, timeout, &program)?;
        let (child, stderr) = starting.into_parts();
        Ok(Self {
            child,
            grpc: ready.grpc,
            http: ready.http,
            stderr,
            dir,
            ready_file,
            exit: None,
        })
    }

    /// The gRPC address it bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The HTTP address (`/metrics`, `/healthz`) it bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// `http://` URL of the gRPC endpoint, for clients.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Where it was told to write its ready file (patrold removes it when
    /// shutdown starts).
    pub fn ready_file(&self) -> &Path {
        &self.ready_file
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM: patrold turns NOT_SERVING, drains and exits. Use
    /// [`Patrold::wait`] for the exit status.
    pub fn terminate(&self) -> Result<()> {
        if self.exit.is_some() {
            bail!("patrold {} already exited", self.pid());
        }
        child::signal(self.pid(), libc::SIGTERM)
            .with_context(|| format!("SIGTERM to patrold {}", self.pid()))
    }

    /// SIGSTOP: the process is frozen (its sockets stay open, it reads and
    /// writes nothing) until [`Patrold::resume`]; how a test makes a node fall
    /// behind.
    pub fn pause(&self) -> Result<()> {
        child::signal(self.pid(), libc::SIGSTOP)
            .with_context(|| format!("SIGSTOP to patrold {}", self.pid()))
    }

    /// SIGCONT after [`Patrold::pause`].
    pub fn resume(&self) -> Result<()> {
        child::signal(self.pid(), libc::SIGCONT)
            .with_context(|| format!("SIGCONT to patrold {}", self.pid()))
    }

    /// SIGKILL: no graceful anything. Returns once the process is gone.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if self.exit.is_none() {
            // Fails only if it already exited; wait() collects that status.
            let _ = self.child.kill();
        }
        self.wait()
    }

    /// Waits for the process to exit; after it returns, [`Patrold::stderr_lines`]
    /// holds everything the process wrote.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = self.child.wait().context("waiting for patrold")?;
        self.stderr.finish();
        self.exit = Some(status);
        Ok(status)
    }

    /// Everything it wrote to stderr so far (its log), oldest first; the
    /// newest 10 000 lines in a long run.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// The last `n` lines of its stderr, joined with newlines.
    pub fn stderr_tail(&self, n: usize) -> String {
        self.stderr.tail(n)
    }
}

impl Drop for Patrold {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What patrold writes to its ready file.
#[derive(Debug, PartialEq)]
struct Ready {
    grpc: SocketAddr,
    http: SocketAddr,
    pid: u32,
}

impl Ready {
    fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        let addr = |field: &str| -> Result<SocketAddr> {
            let text = value[field]
                .as_str()
                .ok_or_else(|| anyhow!("no string field {field:?}"))?;
            text.parse()
                .with_context(|| format!("{field} = {text:?} is not an address"))
        };
        let pid = value["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .ok_or_else(|| anyhow!("no integer field \"pid\""))?;
        Ok(Self {
            grpc: addr("grpc")?,
            http: addr("http")?,
            pid,
        })
    }
}

/// A child that has not announced itself yet: killed and cleaned up if
/// start-up fails.
struct Starting {
    child: Option<Child>,
    stderr: Option<CapturedLines>,
    dir: PathBuf,
}

impl Starting {
    fn wait_for(&mut self, ready_file: &Path, timeout: Duration, program: &str) -> Result<Ready> {
        let child = self.child.as_mut().expect("child until into_parts");
        let deadline = Instant::now() + timeout;
        loop {
            match std::fs::read_to_string(ready_file) {
                Ok(text) => {
                    let ready = Ready::parse(&text).with_context(|| {
                        format!(
                            "{program}: bad ready file {}: {text:?}",
                            ready_file.display()
                        )
                    })?;
                    if ready.pid != child.id() {
                        bail!(
                            "{program}: the ready file {} names pid {}, but the child is {}",
                            ready_file.display(),
                            ready.pid,
                            child.id()
                        );
                    }
                    return Ok(ready);
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", ready_file.display()));
                }
            }
            if let Some(status) = child.try_wait().context("checking on patrold")? {
                let stderr = self.stderr.as_mut().expect("stderr until into_parts");
                stderr.finish();
                bail!(
                    "{program} exited with {status} before it was ready; its stderr ends:\n{}",
                    stderr.tail(ERROR_TAIL_LINES)
                );
            }
            if Instant::now() >= deadline {
                let tail = self.stderr.as_ref().map(|s| s.tail(ERROR_TAIL_LINES));
                bail!(
                    "{program} did not write its ready file {} within {timeout:?}; its stderr ends:\n{}",
                    ready_file.display(),
                    tail.unwrap_or_default()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn into_parts(mut self) -> (Child, CapturedLines) {
        let child = self.child.take().expect("child");
        let stderr = self.stderr.take().expect("stderr");
        (child, stderr)
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c SCRIPT sh --ready-file PATH`: in SCRIPT, `$2` is the path.
    fn fake_patrold(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script, "sh"]);
        command
    }

    #[test]
    fn the_ready_file_gives_the_addresses() {
        let fake = fake_patrold(
            r#"printf '{"grpc":"127.0.0.1:4001","http":"127.0.0.1:4002","pid":%d}' $$ > "$2.tmp"
               mv "$2.tmp" "$2"
               exec sleep 600"#,
        );
        let mut node = Patrold::spawn_command(fake, Duration::from_secs(30)).unwrap();
        assert_eq!(node.grpc_addr(), "127.0.0.1:4001".parse().unwrap());
        assert_eq!(node.http_addr(), "127.0.0.1:4002".parse().unwrap());
        assert_eq!(node.grpc_url(), "http://127.0.0.1:4001");
        let status = node.kill().unwrap();
        assert!(!status.success(), "{status:?}");
    }

    #[test]
    fn sigterm_reaches_the_child() {
        let fake = fake_patrold(
            r#"trap 'echo got term >&2; exit 7' TERM
               printf '{"grpc":"127.0.0.1:1","http":"127.0.0.1:2","pid":%d}' $$ > "$2.tmp"
               mv "$2.tmp" "$2"
               while :; do sleep 1; done"#,
        );
        let mut node = Patrold::spawn_command(fake, Duration::from_secs(30)).unwrap();
        node.terminate().unwrap();
        let status = node.wait().unwrap();
        assert_eq!(status.code(), Some(7));
        assert_eq!(node.stderr_lines(), ["got term"]);
    }

    #[test]
    fn an_early_exit_is_an_error_with_the_stderr_tail() {
        let fake = fake_patrold("echo 'error: address already in use' >&2; exit 3");
        let err = Patrold::spawn_command(fake, Duration::from_secs(30))
            .err()
            .expect("start-up fails");
        let text = format!("{err:#}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("address already in use"), "{text}");
    }

    #[test]
    fn no_ready_file_in_time_is_an_error_with_the_stderr_tail() {
        let fake = fake_patrold("echo 'loading the map' >&2; exec sleep 600");
        let err = Patrold::spawn_command(fake, Duration::from_millis(300))
            .err()
            .expect("start-up times out");
        let text = format!("{err:#}");
        assert!(text.contains("did not write its ready file"), "{text}");
        assert!(text.contains("loading the map"), "{text}");
    }

    #[test]
    fn a_ready_file_of_another_process_is_refused() {
        let fake = fake_patrold(
            r#"printf '{"grpc":"127.0.0.1:1","http":"127.0.0.1:2","pid":1}' > "$2.tmp"
               mv "$2.tmp" "$2"
               exec sleep 600"#,
        );
        let err = Patrold::spawn_command(fake, Duration::from_secs(30))
            .err()
            .expect("pid mismatch");
        assert!(format!("{err:#}").contains("names pid 1"), "{err:#}");
    }

    #[test]
    fn ready_json_parses_and_rejects_missing_fields() {
        let ready = Ready::parse(r#"{"grpc":"127.0.0.1:5","http":"[::1]:6","pid":42}"#).unwrap();
        assert_eq!(
            ready,
            Ready {
                grpc: "127.0.0.1:5".parse().unwrap(),
                http: "[::1]:6".parse().unwrap(),
                pid: 42
            }
        );
        let err = Ready::parse(r#"{"grpc":"127.0.0.1:5","pid":42}"#).unwrap_err();
        assert!(format!("{err:#}").contains("http"), "{err:#}");
    }
}
