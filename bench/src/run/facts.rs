//! What the report says about the run itself: the machine, the settings, the
//! commit, the machine load at start and end, and the notes under the tables.

use std::time::Instant;

use serde_json::json;

use super::options::Options;
use crate::city::Centre;
use crate::proc_stats;
use crate::recommend;
use crate::report::{Report, count_label};

fn machine_facts() -> serde_json::Map<String, serde_json::Value> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| proc_stats::parse_status_kb(&s, "MemTotal"))
        .unwrap_or(0);
    let mut m = serde_json::Map::new();
    m.insert("loadavg_start".into(), json!(loadavg()));
    m.insert(
        "cpus".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        ),
    );
    m.insert("cpu_model".into(), json!(cpu));
    m.insert("memory_bytes".into(), json!(mem));
    m
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The checked-out commit, when run inside the repository.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The report's `run` facts at the start: machine, mode, settings, commit.
pub(super) fn record_start(report: &mut Report, opts: &Options) {
    let mut run = machine_facts();
    run.insert(
        "mode".into(),
        json!(if opts.quick { "quick" } else { "full" }),
    );
    run.insert("seed".into(), json!(opts.seed));
    run.insert("units".into(), json!(opts.units));
    run.insert("clients".into(), json!(opts.clients));
    run.insert("batch".into(), json!(opts.batch));
    run.insert("phase_seconds".into(), json!(opts.phase_time.as_secs_f64()));
    run.insert("position_interval_ms".into(), json!(opts.interval_ms));
    if let Some(commit) = git_commit() {
        run.insert("git_commit".into(), json!(commit));
    }
    run.insert(
        "helsinki".into(),
        json!(matches!(opts.centre, Centre::Network(_))),
    );
    report.run = run;
}

/// The notes under the tables and the `run` facts at the end.
pub(super) fn record_end(report: &mut Report, opts: &Options, started: Instant) {
    let centre = match &opts.centre {
        Centre::Gaussian { sigma_m } => {
            format!("a Gaussian centre (sigma {:.1} km)", sigma_m / 1000.0)
        }
        Centre::Network(_) => {
            "random points on central Helsinki's street network (OpenStreetMap, ODbL)".to_string()
        }
    };
    report.note(format!(
        "city: 70% of units at {centre}, the rest uniform over 40 x 40 km around 60.17 N 24.94 E; 40% busy; queries uniform over the region; seed {}",
        opts.seed
    ));
    report.note(format!(
        "freshness: {} pings/s into {} units, Watch coalescing interval {} ms; ingest: {} streams x batches of {}; recommend: k = {}, one query at a time for p50/p99, {} in flight for queries/s; core nearest query: Dispatcher::nearest in-process (the search alone; with explanation: Dispatcher::recommend)",
        opts.freshness_rate,
        count_label(opts.fresh_units()),
        opts.interval_ms,
        opts.clients,
        opts.batch,
        recommend::K,
        opts.recommend_tasks
    ));
    report.note("ratios: how many times better patrol is (throughput: patrol/redis; latency and cost: redis/patrol)");
    report.note("redis ingest: one GEOADD per ping into one GEO set, pipelined; redis memory: RSS growth for the positions set plus the available-only set");
    report.note("memory: patrold RSS growth from an empty server to one holding every unit registered, positioned and 40% busy, divided by the unit count");
    report.run.insert("loadavg_end".into(), json!(loadavg()));
    report
        .run
        .insert("elapsed_s".into(), json!(started.elapsed().as_secs_f64()));
    report.note(format!(
        "machine load (1/5/15 min averages) at start: {}, at end: {}; other processes compete for the same cores",
        report.run["loadavg_start"].as_str().unwrap_or("?"),
        loadavg()
    ));
}
