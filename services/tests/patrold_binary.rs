//! The `patrold` binary as an operator runs it: flags, logs, the ready file,
//! SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use patrol_testkit::Patrold;

/// Starts patrold with `args` after the listen flags (ephemeral ports, info
/// logs) and returns once it wrote its ready file.
fn spawn_patrold(args: &[&str]) -> Patrold {
    let mut command = Command::new(env!("CARGO_BIN_EXE_patrold"));
    command
        .args([
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--plaintext",
        ])
        .args(["--log", "info"])
        .args(args)
        .env("NO_COLOR", "1");
    Patrold::spawn_command(command, Patrold::READY_TIMEOUT)
        .unwrap_or_else(|err| panic!("patrold starts: {err:#}"))
}

#[test]
fn sigterm_stops_patrold_gracefully() {
    let mut node = spawn_patrold(&[]);
    let addr = node.grpc_addr().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    node.terminate().expect("SIGTERM sent");
    let status = node.wait().expect("patrold exits");
    assert!(status.success(), "exit status {status:?}");
    let logs = node.stderr_lines();
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
}

#[test]
fn the_ready_file_names_the_ports_it_serves_on_until_shutdown() {
    let mut node = spawn_patrold(&[]);
    let healthz = http_get(node.http_addr(), "/healthz");
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
    assert!(healthz.ends_with("ok\n"), "{healthz}");
    TcpStream::connect(node.grpc_addr()).expect("gRPC port accepts");
    let path = node.ready_file().to_path_buf();
    let text = std::fs::read_to_string(&path).expect("ready file while serving");
    let expected = format!(
        r#"{{"grpc":"{}","http":"{}","pid":{}}}"#,
        node.grpc_addr(),
        node.http_addr(),
        node.pid()
    );
    assert_eq!(text.trim_end(), expected);

    node.terminate().unwrap();
    assert!(node.wait().unwrap().success());
    assert!(!path.exists(), "{} removed on shutdown", path.display());
    let dir = path.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(
        left.is_empty(),
        "no temp file left in {}: {left:?}",
        dir.display()
    );
}

/// One HTTP/1.1 GET; the whole response as text.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("HTTP port accepts");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
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
