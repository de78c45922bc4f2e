//! The `patrolctl` binary against a real patrold on 127.0.0.1:0: the operator's
//! walk-through from the README, command by command.

use std::process::{Command, Output};

fn ctl(server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patrolctl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .output()
        .expect("patrolctl runs")
}

fn ok(server: &str, args: &[&str]) -> String {
    let out = ctl(server, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "patrolctl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn operator_walk_through() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = patrol_services::Config {
        grpc: "127.0.0.1:0".parse().unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.tls.plaintext = true;
    let server = runtime.block_on(patrol_services::start(config)).unwrap();
    let url = server.grpc_url();
    let s = url.as_str();

    ok(
        s,
        &[
            "register-unit",
            "car-7",
            "--call-sign",
            "Car 7",
            "--kind",
            "car",
        ],
    );
    ok(
        s,
        &[
            "register-unit",
            "foot-3",
            "--call-sign",
            "Foot 3",
            "--kind",
            "foot",
            "--capability",
            "medic",
        ],
    );
    ok(
        s,
        &["ping", "car-7", "--lon", "24.9450", "--lat", "60.1700"],
    );
    ok(
        s,
        &["ping", "foot-3", "--lon", "24.9420", "--lat", "60.1690"],
    );
    let units = ok(s, &["units"]);
    assert!(
        units.contains("Car 7") && units.contains("Foot 3"),
        "{units}"
    );

    let incident = ok(
        s,
        &[
            "create-incident",
            "--lon",
            "24.9421",
            "--lat",
            "60.1691",
            "--type",
            "fight",
            "--priority",
            "1",
        ],
    )
    .trim()
    .to_string();
    assert!(incident.starts_with("inc-"), "{incident}");
    let rec = ok(s, &["recommend", "--incident", &incident, "-k", "2"]);
    let first_row = rec
        .lines()
        .find(|l| l.contains("Foot 3") || l.contains("Car 7"))
        .unwrap_or_default();
    assert!(
        first_row.contains("Foot 3"),
        "the foot officer next door is first:\n{rec}"
    );

    let dispatched = ok(
        s,
        &[
            "dispatch",
            &incident,
            "foot-3",
            "--note",
            "suspect in red jacket",
        ],
    );
    assert!(dispatched.contains("foot-3"), "{dispatched}");
    // a busy unit cannot be sent twice: a clear error and exit 1
    let other = ok(
        s,
        &[
            "create-incident",
            "--lon",
            "24.95",
            "--lat",
            "60.17",
            "--type",
            "theft",
        ],
    )
    .trim()
    .to_string();
    let refused = ctl(s, &["dispatch", &other, "foot-3"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("FailedPrecondition") && stderr.contains("foot-3"),
        "{stderr}"
    );

    ok(s, &["close", &incident, "--note", "resolved on site"]);
    let shown = ok(s, &["incident", &incident]);
    assert!(shown.contains("closed"), "{shown}");

    // the command-room log shows the snapshot and then nothing is missing
    let log = ok(s, &["watch", "--log", "--count", "4"]);
    assert!(log.contains("snapshot_end"), "{log}");
    let once = ok(s, &["watch", "--once"]);
    assert!(once.contains("Car 7") && once.contains(&other), "{once}");

    // an unreachable server is a clear error
    let down = ctl("http://127.0.0.1:1", &["units"]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach patrold"));

    runtime.block_on(server.shutdown()).unwrap();
}
