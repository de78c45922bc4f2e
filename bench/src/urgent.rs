//! Urgent commands under a ping flood, Redis on: `CreateIncident` (and
//! `Dispatch` of an available unit for some of the incidents) at a steady rate,
//! first alone (the baseline), then while a ping flood from many concurrent
//! `ReportPositions` callers fills the server's queue for Redis until it
//! refuses pings (`ResourceExhausted`: "changes are already waiting for
//! Redis").
//!
//! The server is started with a small `redis.max_in_flight` and
//! `queue_wait_ms` (recorded in the report) so that this machine's flood
//! reaches refusal. Incidents are issued on a fixed schedule whatever the
//! earlier ones are doing (open loop), so a slow answer cannot hide the ones
//! that would have waited behind it. Whatever happens is reported: latency of
//! the calls that succeeded, and the failed ones counted by gRPC code.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use patrol_proto::v1 as pb;
use pb::incident_service_client::IncidentServiceClient;
use tokio::task::JoinSet;
use tonic::Status;
use tonic::transport::Channel;
use tracing::info;

use crate::city::City;
use crate::flood::{Flood, FloodOutcome, FloodSpec};
use crate::load::{mark_busy_with, register_units_with, send_positions};
use crate::report::{Latencies, Report, code_key, count_label};
use crate::server::{Launcher, Patrold, metric_sum, redis_toml};

/// How the phase runs.
#[derive(Debug, Clone, Copy)]
pub struct UrgentSpec {
    /// `CreateIncident` calls per second.
    pub rate: f64,
    /// Every `dispatch_every`-th incident gets a `Dispatch` (0: none).
    pub dispatch_every: usize,
    /// Length of the baseline and of the flood window.
    pub duration: Duration,
    /// Concurrent flood callers, one call in flight each.
    pub flood_workers: usize,
    /// Connections the flood callers share.
    pub flood_connections: usize,
    /// Pings per flood call.
    pub flood_batch: usize,
    /// The server's `redis.max_in_flight` and `redis.queue_wait_ms`.
    pub max_in_flight: u64,
    pub queue_wait_ms: u64,
    pub seed: u64,
}

/// Latency of the calls that succeeded, and the others by gRPC code.
#[derive(Debug, Clone, Default)]
pub struct CallTally {
    pub ok: Latencies,
    pub errors: BTreeMap<String, u64>,
}

impl CallTally {
    pub fn record<T>(&mut self, took: Duration, result: &Result<T, Status>) {
        match result {
            Ok(_) => self.ok.record(took),
            Err(s) => *self.errors.entry(code_key(s.code())).or_default() += 1,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: &CallTally) {
        self.ok.merge(&other.ok);
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }
}

/// What one window of incidents saw.
#[derive(Debug, Clone, Default)]
struct Window {
    create: CallTally,
    dispatch: CallTally,
}

/// A unit that is available, to place an incident next to and dispatch.
#[derive(Debug, Clone)]
struct Target {
    unit_id: String,
    lon: f64,
    lat: f64,
}

/// A client's timeout per call: far beyond the server's own.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(
    launcher: &Launcher,
    city: &mut City,
    spec: &UrgentSpec,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(city.units.len());
    let redis = launcher.redis().await?;
    let settings = [
        ("max_in_flight", spec.max_in_flight),
        ("queue_wait_ms", spec.queue_wait_ms),
    ];
    let server = launcher
        .patrold("urgent", &redis_toml(&redis.url(), &settings))
        .await?;
    load(&server, city, spec).await?;
    let targets: Vec<Target> = city
        .available()
        .map(|u| Target {
            unit_id: u.id.clone(),
            lon: u.lon,
            lat: u.lat,
        })
        .collect();
    // The schedule's first tick is at once: one more than rate x duration,
    // and a margin, so no unit is dispatched twice.
    let per_window = (spec.rate * spec.duration.as_secs_f64() * 1.1).ceil() as usize + 2;
    let (first, second) = targets.split_at(per_window.min(targets.len()));
    let channel = server.channel().await?;
    let baseline = incidents(&channel, first, spec).await?;
    info!(
        ok = baseline.create.ok.len(),
        errors = baseline.create.error_count(),
        "urgent baseline done"
    );
    let refused_before = queue_full(&server).await;
    let flood_channels = server.channels(spec.flood_connections.max(1)).await?;
    let flood_spec = FloodSpec {
        workers: spec.flood_workers,
        batch: spec.flood_batch,
        seed: spec.seed,
        record_acks: false,
    };
    let flood = Flood::start(
        &flood_channels,
        std::mem::take(&mut city.units),
        city.spec.region,
        flood_spec,
    );
    // Let the flood fill the queue before the first incident.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flooded = incidents(&channel, second, spec).await;
    let flood = flood.stop().await?;
    let flooded = flooded?;
    let server_refusals = match (refused_before, queue_full(&server).await) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    info!(
        ok = flooded.create.ok.len(),
        errors = flooded.create.error_count(),
        flood_accepted = flood.tally.accepted,
        flood_refused = flood.tally.refused_pings,
        "urgent flood done"
    );
    let measured = Measured {
        label: &label,
        spec,
        baseline: &baseline,
        flooded: &flooded,
        flood: &flood,
        server_refusals,
    };
    measured.record(report);
    city.units = flood.units;
    Ok(())
}

/// The server's count of changes refused for a full queue, if it says.
async fn queue_full(server: &Patrold) -> Option<f64> {
    let text = server.metrics().await.ok()?;
    Some(metric_sum(&text, "patrol_redis_queue_full_total", "").unwrap_or(0.0))
}

/// Registers every unit, sends its position and marks the busy ones busy,
/// with fewer requests in flight than the server admits.
async fn load(server: &Patrold, city: &mut City, spec: &UrgentSpec) -> Result<()> {
    let concurrency = (spec.max_in_flight as usize / 2).max(1);
    let channels = server.channels(4).await?;
    let took = register_units_with(&channels, &city.units, concurrency).await?;
    info!(
        units = city.units.len(),
        secs = took.as_secs_f64(),
        "urgent: units registered"
    );
    send_positions(&channels[..concurrency.min(4)], &mut city.units, 1_000).await?;
    mark_busy_with(&channels, &city.units, concurrency).await?;
    Ok(())
}

/// One incident per 1/rate seconds for the spec's duration, each on its own
/// task; every `dispatch_every`-th also dispatches its unit.
async fn incidents(channel: &Channel, targets: &[Target], spec: &UrgentSpec) -> Result<Window> {
    if targets.is_empty() {
        return Err(anyhow!(
            "no available units left to place incidents next to"
        ));
    }
    let period = Duration::from_secs_f64(1.0 / spec.rate.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + spec.duration;
    let mut calls = JoinSet::new();
    let mut i = 0usize;
    while Instant::now() < deadline && i < targets.len() {
        ticker.tick().await;
        let target = targets[i].clone();
        let dispatch = spec.dispatch_every > 0 && i.is_multiple_of(spec.dispatch_every);
        let client = IncidentServiceClient::new(channel.clone());
        calls.spawn(incident(client, target, dispatch, i));
        i += 1;
    }
    let mut window = Window::default();
    while let Some(done) = calls.join_next().await {
        let w = done.map_err(|e| anyhow!("incident task: {e}"))?;
        window.create.merge(&w.create);
        window.dispatch.merge(&w.dispatch);
    }
    Ok(window)
}

/// `CreateIncident` next to `target`, then (if asked) `Dispatch` of it.
async fn incident(
    mut client: IncidentServiceClient<Channel>,
    target: Target,
    dispatch: bool,
    i: usize,
) -> Window {
    let mut w = Window::default();
    let request = pb::CreateIncidentRequest {
        request_id: Default::default(),
        r#type: "assault".into(),
        priority: 1,
        location: Some(pb::LonLat {
            lon: target.lon + 0.000_5,
            lat: target.lat,
        }),
        source: pb::IncidentSource::Call as i32,
        description: format!("bench urgent {i}"),
    };
    let started = Instant::now();
    let created = timed(client.create_incident(request)).await;
    w.create.record(started.elapsed(), &created);
    let Ok(created) = created else { return w };
    let Some(incident) = created.into_inner().incident else {
        return w;
    };
    if dispatch {
        let request = pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: incident.id,
            unit_ids: vec![target.unit_id],
            note: String::new(),
            intercept: Default::default(),
        };
        let started = Instant::now();
        let dispatched = timed(client.dispatch(request)).await;
        w.dispatch.record(started.elapsed(), &dispatched);
    }
    w
}

/// A call bounded by [`CALL_TIMEOUT`] (a client-side `DeadlineExceeded`).
async fn timed<T>(call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(Status::deadline_exceeded(
                "no answer within the bench's 30 s",
            ))
        })
}

/// Everything the phase measured, for the report.
struct Measured<'a> {
    label: &'a str,
    spec: &'a UrgentSpec,
    baseline: &'a Window,
    flooded: &'a Window,
    flood: &'a FloodOutcome,
    /// The server's own count of refusals for a full queue during the flood.
    server_refusals: Option<f64>,
}

impl Measured<'_> {
    fn record(&self, report: &mut Report) {
        let label = self.label;
        let calls = [
            (
                "create_incident_baseline",
                "CreateIncident, no flood",
                &self.baseline.create,
            ),
            (
                "create_incident_flood",
                "CreateIncident under a ping flood",
                &self.flooded.create,
            ),
            (
                "dispatch_baseline",
                "Dispatch, no flood",
                &self.baseline.dispatch,
            ),
            (
                "dispatch_flood",
                "Dispatch under a ping flood",
                &self.flooded.dispatch,
            ),
        ];
        for (key, what, tally) in calls {
            let what = format!("{what} ({label}, Redis on)");
            calls_figures(report, &format!("urgent_{key}"), &what, tally);
        }
        self.record_flood(report);
        self.record_note(report);
    }

    /// What the flood got, and the settings that shaped it.
    fn record_flood(&self, report: &mut Report) {
        let (t, spec) = (&self.flood.tally, self.spec);
        let flood = [
            (
                "urgent_flood_accepted_pings_per_s",
                self.flood.rate(),
                "1/s",
            ),
            ("urgent_flood_pings_accepted", t.accepted as f64, "count"),
            (
                "urgent_flood_pings_refused",
                t.refused_pings as f64,
                "count",
            ),
            ("urgent_flood_calls", t.calls as f64, "count"),
            (
                "urgent_flood_calls_refused",
                t.refused_calls as f64,
                "count",
            ),
            (
                "urgent_flood_calls_failed_other",
                t.failed() as f64,
                "count",
            ),
            (
                "urgent_flood_seconds",
                self.flood.elapsed.as_secs_f64(),
                "s",
            ),
            ("urgent_flood_workers", spec.flood_workers as f64, "count"),
            ("urgent_flood_batch", spec.flood_batch as f64, "count"),
            (
                "urgent_redis_max_in_flight",
                spec.max_in_flight as f64,
                "count",
            ),
            (
                "urgent_redis_queue_wait_ms",
                spec.queue_wait_ms as f64,
                "ms",
            ),
            ("urgent_incidents_per_s", spec.rate, "1/s"),
        ];
        for (key, value, unit) in flood {
            report.extra(key, value, unit);
        }
        for (code, n) in &t.failed_calls {
            report.extra(
                format!("urgent_flood_calls_failed_{code}"),
                *n as f64,
                "count",
            );
        }
        if let Some(n) = self.server_refusals {
            report.extra("urgent_server_queue_full_refusals", n, "count");
        }
    }

    fn record_note(&self, report: &mut Report) {
        let spec = self.spec;
        let secs = spec.duration.as_secs_f64();
        report.note(format!(
            "urgent: {} units, patrold on its own redis-server (persistence off) with redis.max_in_flight = {} and queue_wait_ms = {}; CreateIncident at {}/s (open loop), every {} dispatched, {secs:.0} s without and {secs:.0} s with a flood of {} callers x {} pings per ReportPositions call over {} connections",
            self.label,
            spec.max_in_flight,
            spec.queue_wait_ms,
            spec.rate,
            spec.dispatch_every,
            spec.flood_workers,
            spec.flood_batch,
            spec.flood_connections
        ));
    }
}

/// p50/p99/max of the calls that succeeded (no rows when none did), and the
/// ok and error counts, errors also by code.
fn calls_figures(report: &mut Report, key: &str, what: &str, tally: &CallTally) {
    let s = tally.ok.summary();
    if s.count > 0 {
        report.push_ms_percentiles(key, what, &s);
    }
    report.extra(format!("{key}_ok"), s.count as f64, "count");
    report.extra(format!("{key}_errors"), tally.error_count() as f64, "count");
    for (code, n) in &tally.errors {
        report.extra(format!("{key}_errors_{code}"), *n as f64, "count");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_tallied_by_outcome() {
        let mut t = CallTally::default();
        t.record(Duration::from_millis(2), &Ok::<(), Status>(()));
        t.record::<()>(
            Duration::from_millis(2_000),
            &Err(Status::resource_exhausted("full")),
        );
        t.record::<()>(
            Duration::from_millis(2_000),
            &Err(Status::resource_exhausted("full")),
        );
        t.record::<()>(Duration::from_millis(10), &Err(Status::unavailable("down")));
        assert_eq!(t.ok.len(), 1);
        assert_eq!(t.error_count(), 3);
        assert_eq!(t.errors["resource_exhausted"], 2);
        let mut r = Report::default();
        calls_figures(&mut r, "urgent_x", "x", &t);
        assert_eq!(
            r.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["urgent_x_p50_ms", "urgent_x_p99_ms", "urgent_x_max_ms"]
        );
        let extras: Vec<(&str, f64)> = r.extras.iter().map(|(k, v, _)| (k.as_str(), *v)).collect();
        assert_eq!(
            extras,
            [
                ("urgent_x_ok", 1.0),
                ("urgent_x_errors", 3.0),
                ("urgent_x_errors_resource_exhausted", 2.0),
                ("urgent_x_errors_unavailable", 1.0)
            ]
        );
    }

    #[test]
    fn no_latency_rows_when_every_call_failed() {
        let mut t = CallTally::default();
        t.record::<()>(
            Duration::from_millis(5),
            &Err(Status::resource_exhausted("full")),
        );
        let mut r = Report::default();
        calls_figures(&mut r, "urgent_y", "y", &t);
        assert!(r.rows.is_empty());
        assert_eq!(r.extras[0], ("urgent_y_ok".to_string(), 0.0, "count"));
    }
}
