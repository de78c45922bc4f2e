//! The `patrold` binary as an operator runs it: flags, logs, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts patrold with `args` and waits for its "serving" log line; returns the
/// child, the gRPC address it bound and a receiver of its later log lines.
fn spawn_patrold(args: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patrold"))
        .args([
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .args(args)
        .env("NO_COLOR", "1")
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
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("patrold logs that it is serving");
        if line.contains("patrold serving") {
            let plain = strip_ansi(&line);
            let addr = plain
                .split("grpc=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .expect("grpc= field")
                .to_string();
            break addr;
        }
    };
    (child, addr, rx)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn sigterm_stops_patrold_gracefully() {
    let (mut child, addr, rx) = spawn_patrold(&[]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    sigterm(&child);
    let status = child.wait().expect("patrold exits");
    assert!(status.success(), "exit status {status:?}");
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
}

#[test]
fn a_bad_flag_value_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_patrold"))
        .args(["--grpc", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--grpc") && stderr.contains("not-an-address"),
        "{stderr}"
    );
}
