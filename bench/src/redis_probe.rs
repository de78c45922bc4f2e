//! A `PING` probe on its own connection to a redis-server: one command every
//! `every` (1 ms) from a dedicated OS thread with a blocking socket, so the
//! load generator's tokio workers cannot delay it; each round trip is timed.
//! Redis runs commands one at a time, so a long command (a checkpoint's Lua
//! script) shows as one long round trip and the probes queued behind it.
//!
//! A script running longer than Redis's `busy-reply-threshold` (5 s) makes
//! Redis answer every other command with `-BUSY` instead of queuing it. The
//! probe then asks again (every `every`) and its round trip runs from the
//! first `PING` to the `PONG`: the time the probe was not served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::report::Latencies;

/// Round trips above these count as stalls.
pub const STALL_10MS: Duration = Duration::from_millis(10);
pub const STALL_100MS: Duration = Duration::from_millis(100);

/// What the probe saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeOutcome {
    pub rtt: Latencies,
    pub over_10ms: u64,
    pub over_100ms: u64,
    /// `-BUSY` replies (a script ran past the busy threshold); asked again.
    pub busy_replies: u64,
    /// How long the probe ran.
    pub elapsed: Duration,
    /// The longest round trips: (when it was sent, since the start; how long).
    pub longest: Vec<(Duration, Duration)>,
}

/// How many of the longest round trips are kept.
const KEEP_LONGEST: usize = 10;

impl ProbeOutcome {
    fn record(&mut self, sent_at: Duration, rtt: Duration) {
        self.rtt.record(rtt);
        self.over_10ms += u64::from(rtt > STALL_10MS);
        self.over_100ms += u64::from(rtt > STALL_100MS);
        if self.longest.len() < KEEP_LONGEST || rtt > self.longest[KEEP_LONGEST - 1].1 {
            self.longest.push((sent_at, rtt));
            self.longest.sort_by_key(|l| std::cmp::Reverse(l.1));
            self.longest.truncate(KEEP_LONGEST);
        }
    }
}

/// A running probe.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<ProbeOutcome>>,
}

impl Probe {
    /// Connects to `addr` and starts probing every `every`.
    pub fn start(addr: SocketAddr, every: Duration) -> Result<Probe> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("probe connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("redis-probe".into())
            .spawn(move || probe(stream, every, &flag))?;
        Ok(Probe { stop, thread })
    }

    /// Stops after the probe in flight and returns what it saw.
    pub fn stop(self) -> Result<ProbeOutcome> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(outcome) => outcome,
            Err(_) => bail!("the redis probe thread panicked"),
        }
    }
}

fn probe(mut stream: TcpStream, every: Duration, stop: &AtomicBool) -> Result<ProbeOutcome> {
    let mut out = ProbeOutcome::default();
    let start = Instant::now();
    let mut next = start;
    let mut reply = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        let sent = Instant::now();
        loop {
            stream.write_all(b"PING\r\n").context("probe write")?;
            match read_line(&mut stream, &mut reply)? {
                Reply::Pong => break,
                Reply::Busy => {
                    out.busy_replies += 1;
                    std::thread::sleep(every);
                }
            }
        }
        let rtt = sent.elapsed();
        out.record(sent - start, rtt);
        // The next probe one period after this one was sent; after a stall,
        // one period after it ended (no burst to catch up).
        next = (sent + every).max(Instant::now());
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// What Redis answered a `PING`.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Pong,
    /// `-BUSY Redis is busy running a script...`
    Busy,
}

/// Reads one reply line: `+PONG` (any simple string), or a `-BUSY` error.
fn read_line(stream: &mut TcpStream, buf: &mut [u8]) -> Result<Reply> {
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).context("probe read")?;
        if n == 0 {
            bail!("redis closed the probe connection");
        }
        len += n;
        if buf[..len].ends_with(b"\r\n") {
            return match &buf[..len] {
                [b'+', ..] => Ok(Reply::Pong),
                line if line.starts_with(b"-BUSY") => Ok(Reply::Busy),
                line => bail!(
                    "redis answered the probe with {:?}",
                    String::from_utf8_lossy(line)
                ),
            };
        }
        if len == buf.len() {
            // A long error line: keep its start, read on to its end.
            len = 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A fake Redis answering `+PONG`, the `slow`-th reply after 30 ms, and
    /// `-BUSY` to the `busy` requests after it.
    fn fake_redis(slow: usize, busy: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            let mut i = 0;
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                i += 1;
                if i == slow {
                    std::thread::sleep(Duration::from_millis(30));
                }
                let reply: &[u8] = if i > slow && i <= slow + busy {
                    b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
                } else {
                    b"+PONG\r\n"
                };
                if writer.write_all(reply).is_err() {
                    break;
                }
                line.clear();
            }
        });
        addr
    }

    #[test]
    fn a_slow_reply_is_a_stall() {
        let probe = Probe::start(fake_redis(3, 0), Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = probe.stop().unwrap();
        assert!(out.rtt.len() >= 3, "{}", out.rtt.len());
        assert!(out.over_10ms >= 1);
        assert!(out.longest[0].1 >= Duration::from_millis(30));
        assert!(out.longest.windows(2).all(|w| w[0].1 >= w[1].1));
        assert_eq!(out.busy_replies, 0);
    }

    #[test]
    fn busy_replies_are_asked_again_and_the_wait_counts() {
        // 20 BUSY replies, each followed by a 1 ms pause: one probe waits
        // at least 20 ms for its PONG.
        let probe = Probe::start(fake_redis(0, 20), Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let out = probe.stop().unwrap();
        assert_eq!(out.busy_replies, 20);
        assert!(
            out.longest[0].1 >= Duration::from_millis(20),
            "{:?}",
            out.longest
        );
    }

    #[test]
    fn the_longest_are_kept_in_order() {
        let mut out = ProbeOutcome::default();
        for i in 0..50u64 {
            out.record(
                Duration::from_millis(i),
                Duration::from_micros((i * 37) % 101),
            );
        }
        assert_eq!(out.longest.len(), KEEP_LONGEST);
        assert_eq!(out.longest[0].1, Duration::from_micros(100));
        assert!(out.longest.windows(2).all(|w| w[0].1 >= w[1].1));
        assert_eq!(out.rtt.len(), 50);
        assert_eq!(out.over_10ms, 0);
    }
}
