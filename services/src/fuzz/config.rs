//! Config files: the example `deploy/patrold.toml` (plus the sections it
//! leaves at their defaults) with values replaced, lines deleted, doubled or
//! inserted, or the text cut short → TOML → `Config` → `validate` → the
//! start-up parts that read it (core, hub, a Watch subscriber's queue, the
//! Frigate bridge). A config that validates must start.

use proptest::prelude::*;

use super::{cases, hostile_string};
use crate::Config;

const EXAMPLE: &str = include_str!("../../../deploy/patrold.toml");

/// Sections the example leaves out, with their default values.
const MORE: &str = "
[trust]
relocate_after_fixes = 3
assumed_accuracy_m = 10.0
confidence_radius_m = 50.0
stale_after_ms = 60000
[trust.car]
max_speed_mps = 70.0
flag_accuracy_m = 50.0
reject_accuracy_m = 500.0
offline_after_ms = 120000
hold_stationary = true
still_speed_mps = 0.5
drift_radius_m = 15.0
[dispatch]
ack_timeout_ms = 60000
en_route_max_ms = 1800000
on_scene_max_ms = 7200000
auto_dispatch_max_priority = 0
[network]
max_snap_m = 200.0
detour_factor = 1.4
[network.off_network_speed_mps]
car = 10.0
foot = 1.4
e_bike = 5.0
motorcycle = 10.0
";

/// The example with TLS off (it has no certificate files to point at), so
/// that it validates and mutations test the other settings too.
fn base() -> String {
    let example = EXAMPLE.replace("plaintext = false", "plaintext = true");
    format!("{example}\n{MORE}")
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "0", "-1", "1", "16", "65536", "1e308", "-1e308", "nan", "inf", "-inf", "0.0", "-0.0",
            "1.5", "18446744073709551615", "18446744073709551616", "9223372036854775807",
            "-9223372036854775808", "4611686018427387904", "2305843009213693951", "\"\"",
            "\"x\"", "\"127.0.0.1:0\"", "\"[::1]:1\"", "\"mqtt://h:99999\"", "\"mqtt://\"",
            "[]", "[1, \"a\"]", "{}", "{ a = 1 }", "true", "1979-05-27T07:32:00Z", "'''",
            "\"\\u0000\"",
        ])
        .prop_map(str::to_string),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => any::<u64>().prop_map(|v| v.to_string()),
        1 => any::<f64>().prop_map(|v| format!("{v:?}")),
        1 => hostile_string().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    /// The value of the n-th `key = value` line.
    Value(prop::sample::Index, String),
    Delete(prop::sample::Index),
    Double(prop::sample::Index),
    Insert(prop::sample::Index, String),
    Cut(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = || any::<prop::sample::Index>();
    prop_oneof![
        8 => (line(), value()).prop_map(|(i, v)| Edit::Value(i, v)),
        1 => line().prop_map(Edit::Delete),
        1 => line().prop_map(Edit::Double),
        1 => (line(), prop_oneof![
            Just("[watch]".to_string()), Just("[[response.plans]]".to_string()),
            Just("[frigate.cameras]\nfront = \"\"".to_string()),
            Just("[frigate]\nmqtt_url = \"mqtt://127.0.0.1\"".to_string()),
            "[a-z_]{1,8} = [0-9]{1,3}", any::<String>(),
        ]).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => line().prop_map(Edit::Cut),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        let n = lines.len().max(1);
        match edit {
            Edit::Value(i, v) => {
                let keyed: Vec<usize> = (0..lines.len())
                    .filter(|&l| !lines[l].starts_with(['#', '[']) && lines[l].contains(" = "))
                    .collect();
                if keyed.is_empty() {
                    continue;
                }
                let l = keyed[i.index(keyed.len())];
                let key = lines[l].split(" = ").next().unwrap_or_default().to_string();
                lines[l] = format!("{key} = {v}");
            }
            Edit::Delete(i) if !lines.is_empty() => {
                lines.remove(i.index(n));
            }
            Edit::Double(i) if !lines.is_empty() => {
                let l = i.index(n);
                lines.insert(l, lines[l].clone());
            }
            Edit::Insert(i, s) => lines.insert(i.index(n + 1).min(lines.len()), s.clone()),
            Edit::Cut(i) => lines.truncate(i.index(n)),
            _ => {}
        }
    }
    lines.join("\n")
}

/// What `start` builds from a config, short of binding sockets.
fn start_parts(config: &Config) {
    let hub = crate::hub::Hub::in_memory(config.clone(), config.dispatcher());
    let _ = hub.name();
    let _ = config.position_interval();
    let _ = config.map_path();
    // Each Watch call makes its subscriber's queue this big.
    let (_tx, _rx) = tokio::sync::mpsc::channel::<()>(config.watch.subscriber_buffer);
    let _ = crate::frigate::Bridge::new(config.frigate.clone(), config.units.future_tolerance_ms);
}

fn check(text: &str) {
    let Ok(config) = toml::from_str::<Config>(text) else {
        return;
    };
    match config.validate() {
        Ok(()) => start_parts(&config),
        Err(e) => {
            // The refusal names the setting: a dotted key or `version`.
            let message = format!("{e:#}");
            assert!(
                message.contains('.') || message.contains("version") || message.contains("node_id"),
                "refusal names no setting: {message}"
            );
        }
    }
}

#[test]
fn the_fuzzed_base_config_is_valid() {
    let config: Config = toml::from_str(&base()).unwrap();
    config.validate().unwrap();
    start_parts(&config);
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn fuzz_config_files(edits in prop::collection::vec(edit(), 1..4)) {
        check(&apply(&base(), &edits));
    }
}

/// Found by `fuzz_config_files`: a queue size past tokio's semaphore limit
/// validated, then panicked in every Watch call (and Redis in-flight bounds
/// at start).
#[test]
fn queue_sizes_past_tokio_limits_are_refused() {
    for (section, line) in [
        ("[watch]", "subscriber_buffer = 2305843009213693952"),
        ("[redis]", "max_in_flight = 4611686018427387904"),
        ("[redis]", "urgent_max_in_flight = 18446744073709551615"),
    ] {
        let config: Config = toml::from_str(&format!("{section}\n{line}\n")).unwrap();
        let e = config.validate().unwrap_err().to_string();
        let key = line.split(" = ").next().unwrap();
        assert!(e.contains(key), "{e}");
    }
}
