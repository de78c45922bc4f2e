//! The `patrolctl` binary against a real patrold on 127.0.0.1:0: the operator's
//! walk-through from the README, command by command.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The admin token the walk-through runs with (set once the server is up).
static TOKEN: OnceLock<String> = OnceLock::new();

/// A home of the test's own, so no saved session or demo credentials of
/// this machine's user are picked up.
fn home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patrolctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// patrolctl with no `--token`, in the test's home.
fn bare(server: &str, args: &[&str]) -> Output {
    let home = home();
    Command::new(env!("CARGO_BIN_EXE_patrolctl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("PATROL_TOKEN")
        .env_remove("PATROL_SECRET")
        .output()
        .expect("patrolctl runs")
}

fn ctl(server: &str, args: &[&str]) -> Output {
    let mut all = vec!["--token", TOKEN.get().map_or("", String::as_str)];
    all.extend_from_slice(args);
    bare(server, &all)
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

fn ok_bare(server: &str, args: &[&str]) -> String {
    let out = bare(server, args);
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
    let (_, _, admin) = runtime
        .block_on(server.credentials().issue(
            "root",
            patrol_services::auth::Role::Admin,
            vec![],
            patrol_services::auth::Kind::Key,
            "test".into(),
            0,
            None,
            0,
        ))
        .unwrap();
    TOKEN.set(admin).unwrap();
    let anonymous = bare(s, &["units"]);
    assert!(!anonymous.status.success());
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("Unauthenticated"),
        "a call without a credential is refused"
    );

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

    // credentials: an admin issues a login, the operator logs in and later
    // calls carry the saved session; revoked, it is refused
    let issued = ok(
        s,
        &[
            "auth",
            "issue",
            "olivia",
            "--role",
            "operator",
            "--kind",
            "login",
            "--secret",
            "correct horse battery",
        ],
    );
    assert!(
        issued.contains("olivia") && issued.contains("operator"),
        "{issued}"
    );
    let logged_in = ok_bare(s, &["login", "olivia", "--secret", "correct horse battery"]);
    assert!(
        logged_in.contains("logged in as olivia (operator)"),
        "{logged_in}"
    );
    let who = ok_bare(s, &["whoami"]);
    assert!(who.contains("olivia operator via session"), "{who}");
    let refused = bare(
        s,
        &[
            "register-unit",
            "car-8",
            "--call-sign",
            "Car 8",
            "--kind",
            "car",
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    let listed = ok(s, &["auth", "list", "--identity", "olivia"]);
    assert!(
        listed.contains("login") && listed.contains("session"),
        "{listed}"
    );
    let audit = ok(s, &["audit", "--identity", "olivia"]);
    assert!(audit.contains("login"), "{audit}");
    let revoked = ok(s, &["auth", "revoke", "--identity", "olivia"]);
    assert!(revoked.contains("2 revoked"), "{revoked}");
    let after = bare(s, &["whoami"]);
    assert!(String::from_utf8_lossy(&after.stderr).contains("revoked"));

    // an unreachable server is a clear error
    let down = ctl("http://127.0.0.1:1", &["units"]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach patrold"));

    runtime.block_on(server.shutdown()).unwrap();
}
