//! The longest Redis stall during checkpoints: patrold on its own
//! redis-server with a checkpoint due every `interval_ms`, every unit kept
//! moving (so each checkpoint writes about every unit's record), and a probe
//! sending `PING` to the redis-server every millisecond on its own connection
//! ([`crate::redis_probe`]). Redis runs one command at a time, so the probe's
//! worst round trip is the longest time Redis served nobody else.
//!
//! The units are loaded through a first patrold whose checkpoints are never
//! due, which is then stopped; the measured patrold starts from the region's
//! log (replaying every registration and position), so its checkpoints write
//! the whole state from the first one on, and loading is not slowed or
//! failed by the stalls being measured.
//!
//! Checkpoints are counted three ways: the script runs Redis itself logged
//! (`SLOWLOG`, every command over 100 ms, with its duration), patrold's
//! `/metrics` (`patrol_checkpoint_seconds` count and sum: checkpoints patrold
//! saw succeed; `patrol_redis_errors_total{op="checkpoint"}`: ones it saw
//! fail, e.g. time out, although Redis may have run them), and the records
//! each successful one wrote, from patrold's debug line `checkpoint ...
//! units=N`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;
use tracing::info;

use crate::city::City;
use crate::flood::{Flood, FloodOutcome, FloodSpec};
use crate::load::{register_units, send_positions};
use crate::redis_probe::{Probe, ProbeOutcome};
use crate::report::{Report, count_label};
use crate::server::{Launcher, Patrold, metric_sum, redis_toml};

/// How the phase runs.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointSpec {
    /// The measured window (after loading).
    pub duration: Duration,
    /// The server's `redis.checkpoint_interval_ms`.
    pub interval_ms: u64,
    /// The server's `redis.keep_ms`: short, so each checkpoint trims the log.
    pub keep_ms: u64,
    /// Ingest callers and pings per call.
    pub clients: usize,
    pub batch: usize,
    pub seed: u64,
}

/// Probes are sent this often.
pub const PROBE_EVERY: Duration = Duration::from_millis(1);
/// Redis's slow log records commands slower than this, microseconds.
const SLOWLOG_THRESHOLD_US: u64 = 100_000;
/// The loading patrold's checkpoint settings: never due.
const NEVER: u64 = 1 << 50;

/// patrold's checkpoint counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    written: f64,
    seconds: f64,
    errors: f64,
}

impl Counters {
    async fn read(server: &Patrold) -> Option<Counters> {
        let text = server.metrics().await.ok()?;
        let get = |name, label| metric_sum(&text, name, label).unwrap_or(0.0);
        Some(Counters {
            written: get("patrol_checkpoint_seconds_count", ""),
            seconds: get("patrol_checkpoint_seconds_sum", ""),
            errors: get("patrol_redis_errors_total", "op=\"checkpoint\""),
        })
    }

    fn since(self, before: Counters) -> Counters {
        Counters {
            written: self.written - before.written,
            seconds: self.seconds - before.seconds,
            errors: self.errors - before.errors,
        }
    }
}

pub async fn run(
    launcher: &Launcher,
    city: &mut City,
    spec: &CheckpointSpec,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(city.units.len());
    let redis = launcher.redis().await?;
    let mut con = redis.connection().await?;
    load(launcher, &redis.url(), city).await?;
    let settings = [
        ("checkpoint_interval_ms", spec.interval_ms),
        ("keep_ms", spec.keep_ms),
    ];
    let server = launcher
        .patrold_logging(
            "checkpoint-stall",
            &redis_toml(&redis.url(), &settings),
            "warn,patrol_services=debug",
        )
        .await?;
    info!("checkpoint_stall: measured patrold caught up with the log");
    let log_from = server.log_text().len();
    let before = Counters::read(&server).await;
    reset_slowlog(&mut con).await?;
    let ingest = server.channels(spec.clients).await?;
    let flood_spec = FloodSpec {
        workers: spec.clients,
        batch: spec.batch,
        seed: spec.seed,
        record_acks: false,
    };
    let probe = Probe::start(SocketAddr::from(([127, 0, 0, 1], redis.port)), PROBE_EVERY)?;
    let units = std::mem::take(&mut city.units);
    let flood = Flood::start(&ingest, units, city.spec.region, flood_spec);
    tokio::time::sleep(spec.duration).await;
    let probed = probe.stop();
    let flood = flood.stop().await?;
    let probed = probed?;
    let counters = match (before, Counters::read(&server).await) {
        (Some(b), Some(a)) => Some(a.since(b)),
        _ => None,
    };
    let log = server.log_text();
    let sizes = checkpoint_sizes(log.get(log_from..).unwrap_or_default());
    let scripts = slow_scripts(&mut con).await?;
    let measured = Measured {
        label: &label,
        spec,
        probed: &probed,
        flood: &flood,
        counters,
        sizes: &sizes,
        scripts: &scripts,
    };
    measured.record(report);
    city.units = flood.units;
    Ok(())
}

/// Registers every unit and sends its position through a patrold whose
/// checkpoints are never due, then stops it: the units are in the log.
async fn load(launcher: &Launcher, redis_url: &str, city: &mut City) -> Result<()> {
    let never = [
        ("checkpoint_interval_ms", NEVER),
        ("checkpoint_entries", NEVER),
    ];
    let loader = launcher
        .patrold("checkpoint-stall-load", &redis_toml(redis_url, &never))
        .await?;
    let channels = loader.channels(4).await?;
    let took = register_units(&channels, &city.units).await?;
    info!(
        units = city.units.len(),
        secs = took.as_secs_f64(),
        "checkpoint_stall: units registered"
    );
    send_positions(&channels, &mut city.units, 1_000).await?;
    Ok(())
}

/// Logs every command slower than [`SLOWLOG_THRESHOLD_US`] from now on.
async fn reset_slowlog(con: &mut MultiplexedConnection) -> Result<()> {
    let settings = [
        ("slowlog-log-slower-than", SLOWLOG_THRESHOLD_US),
        ("slowlog-max-len", 10_000),
    ];
    for (key, value) in settings {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(key)
            .arg(value)
            .query_async::<()>(con)
            .await
            .with_context(|| format!("CONFIG SET {key}"))?;
    }
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(con)
        .await
        .context("SLOWLOG RESET")?;
    Ok(())
}

/// The durations of the scripts (`EVALSHA`/`EVAL`) in Redis's slow log.
async fn slow_scripts(con: &mut MultiplexedConnection) -> Result<Vec<Duration>> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(10_000)
        .query_async(con)
        .await
        .context("SLOWLOG GET")?;
    Ok(entries.iter().filter_map(script_duration).collect())
}

/// A slow-log entry `[id, time, duration_us, [command, args...], ...]`'s
/// duration, when its command is a script.
fn script_duration(entry: &redis::Value) -> Option<Duration> {
    use redis::Value;
    let Value::Array(fields) = entry else {
        return None;
    };
    let (Some(Value::Int(us)), Some(Value::Array(args))) = (fields.get(2), fields.get(3)) else {
        return None;
    };
    let command = match args.first() {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).to_ascii_uppercase(),
        _ => return None,
    };
    command
        .starts_with("EVAL")
        .then(|| Duration::from_micros(u64::try_from(*us).unwrap_or(0)))
}

/// The `units=N` of every written `checkpoint` line of patrold's debug log.
pub fn checkpoint_sizes(log: &str) -> Vec<u64> {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains(" checkpoint ") && l.contains("written=true"))
        .filter_map(|l| {
            let rest = &l[l.find(" units=")? + " units=".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
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

/// Everything the phase measured, for the report.
struct Measured<'a> {
    label: &'a str,
    spec: &'a CheckpointSpec,
    probed: &'a ProbeOutcome,
    flood: &'a FloodOutcome,
    counters: Option<Counters>,
    sizes: &'a [u64],
    scripts: &'a [Duration],
}

impl Measured<'_> {
    fn record(&self, report: &mut Report) {
        let s = self.probed.rtt.summary();
        report.push_ms_percentiles(
            "checkpoint_stall_redis_ping",
            &format!(
                "Redis PING round trip, checkpoint every {} ms ({}, all moving)",
                self.spec.interval_ms, self.label
            ),
            &s,
        );
        let mut put = |key: &str, value: f64, unit: &'static str| {
            report.extra(format!("checkpoint_stall_{key}"), value, unit);
        };
        self.probe_figures(&mut put);
        self.checkpoint_figures(&mut put);
        self.ingest_figures(&mut put);
        self.record_note(report);
    }

    fn probe_figures(&self, put: &mut impl FnMut(&str, f64, &'static str)) {
        let p = self.probed;
        let count = p.rtt.len() as f64;
        put("probes", count, "count");
        put(
            "probes_per_s",
            count / p.elapsed.as_secs_f64().max(1e-9),
            "1/s",
        );
        put("probes_over_10ms", p.over_10ms as f64, "count");
        put("probes_over_100ms", p.over_100ms as f64, "count");
        put("probe_busy_replies", p.busy_replies as f64, "count");
        put("seconds", p.elapsed.as_secs_f64(), "s");
    }

    fn checkpoint_figures(&self, put: &mut impl FnMut(&str, f64, &'static str)) {
        put("interval_ms", self.spec.interval_ms as f64, "ms");
        put("keep_ms", self.spec.keep_ms as f64, "ms");
        let scripts: Vec<f64> = self.scripts.iter().map(Duration::as_secs_f64).collect();
        put("redis_scripts_over_100ms", scripts.len() as f64, "count");
        if let Some(max) = scripts.iter().copied().reduce(f64::max) {
            put("redis_script_max_s", max, "s");
            let mean = scripts.iter().sum::<f64>() / scripts.len() as f64;
            put("redis_script_mean_s", mean, "s");
        }
        if let Some(c) = self.counters {
            put("checkpoints", c.written, "count");
            put("checkpoint_errors", c.errors, "count");
            if c.written > 0.0 {
                put("checkpoint_mean_s", c.seconds / c.written, "s");
            }
        }
        if let (Some(min), Some(max)) = (self.sizes.iter().min(), self.sizes.iter().max()) {
            put("checkpoint_units_min", *min as f64, "count");
            put("checkpoint_units_max", *max as f64, "count");
        }
    }

    fn ingest_figures(&self, put: &mut impl FnMut(&str, f64, &'static str)) {
        let t = &self.flood.tally;
        put("ingest_pings_per_s", self.flood.rate(), "1/s");
        put("ingest_seconds", self.flood.elapsed.as_secs_f64(), "s");
        put("ingest_calls", t.calls as f64, "count");
        put("ingest_calls_refused", t.refused_calls as f64, "count");
        put("ingest_calls_failed", t.failed() as f64, "count");
        for (code, n) in &t.failed_calls {
            put(&format!("ingest_calls_failed_{code}"), *n as f64, "count");
        }
    }

    fn record_note(&self, report: &mut Report) {
        let spec = self.spec;
        let longest: Vec<String> = self
            .probed
            .longest
            .iter()
            .take(5)
            .map(|(at, rtt)| {
                format!(
                    "{:.0} ms at {:.1} s",
                    rtt.as_secs_f64() * 1e3,
                    at.as_secs_f64()
                )
            })
            .collect();
        report.note(format!(
            "checkpoint_stall: {} units on their own redis-server (persistence off), redis.checkpoint_interval_ms = {} and keep_ms = {}, loaded through a patrold without checkpoints and replayed by the measured one; every unit kept moving by {} callers x {} pings per ReportPositions call; a PING every {} ms on its own connection; longest round trips: {}",
            self.label,
            spec.interval_ms,
            spec.keep_ms,
            spec.clients,
            spec.batch,
            PROBE_EVERY.as_millis(),
            longest.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_durations_from_the_slow_log() {
        use redis::Value;
        let entry = |us: i64, command: &str| {
            Value::Array(vec![
                Value::Int(1),
                Value::Int(1_700_000_000),
                Value::Int(us),
                Value::Array(vec![Value::BulkString(command.as_bytes().to_vec())]),
            ])
        };
        assert_eq!(
            script_duration(&entry(7_250_000, "evalsha")),
            Some(Duration::from_micros(7_250_000))
        );
        assert_eq!(script_duration(&entry(150_000, "XADD")), None);
        assert_eq!(script_duration(&Value::Nil), None);
    }

    #[test]
    fn checkpoint_sizes_from_the_debug_log() {
        let log = "\
2025-01-01T00:00:00.1Z DEBUG patrol_services::durable::checkpoint: checkpoint checkpoint=1-0 written=true units=1000000 incidents=0
2025-01-01T00:00:01.1Z  WARN patrol_services::durable::checkpoint: checkpoint not written; will retry error=timed out
2025-01-01T00:00:05.1Z DEBUG patrol_services::durable::checkpoint: checkpoint checkpoint=2-0 written=false units=12 incidents=0
2025-01-01T00:00:09.1Z DEBUG patrol_services::durable::checkpoint: checkpoint checkpoint=3-0 written=true units=999 incidents=2
";
        assert_eq!(checkpoint_sizes(log), [1_000_000, 999]);
        let coloured = "\x1b[2m2025\x1b[0m \x1b[34mDEBUG\x1b[0m \x1b[2mpatrol_services::durable::checkpoint\x1b[0m\x1b[2m:\x1b[0m checkpoint \x1b[3mwritten\x1b[0m\x1b[2m=\x1b[0mtrue \x1b[3munits\x1b[0m\x1b[2m=\x1b[0m42";
        assert_eq!(checkpoint_sizes(coloured), [42]);
        assert!(checkpoint_sizes("").is_empty());
    }
}
