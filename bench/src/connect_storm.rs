//! A connect storm: while a steady ping load runs (in memory, no Redis),
//! `subscribers` command-room screens open `Watch` at once, and each reads
//! its snapshot to the end (`SnapshotEnd`). Measured: ingest before the storm
//! and while the snapshots are being served, the worst 100 ms of ingest, and
//! how long until every screen had its snapshot.
//!
//! Ingest is the [`crate::flood`] load (one batch per `ReportPositions` call)
//! so every reply says when its pings were accepted: accepted pings are
//! bucketed by reply time. Screens keep reading (and discarding) the stream
//! after their snapshot, as screens do, until the storm is over; the Watch
//! connections are opened before the storm, so it is the `Watch` calls and
//! their snapshots, not TCP set-up, that the server serves at once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use patrol_proto::v1 as pb;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;
use tracing::info;

use crate::city::City;
use crate::flood::{self, Flood, FloodSpec};
use crate::load::{register_units, send_positions};
use crate::proc_stats::{self, ProcSample};
use crate::report::{Latencies, Report, Row, count_label};
use crate::server::{Launcher, Patrold};
use crate::watch_scan::{self, WatchFrame};

/// How the phase runs.
#[derive(Debug, Clone, Copy)]
pub struct StormSpec {
    pub subscribers: usize,
    /// Steady ingest measured before the storm.
    pub steady: Duration,
    /// Ingest callers and pings per call.
    pub clients: usize,
    pub batch: usize,
    pub seed: u64,
}

/// Ingest windows are this wide.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Ingest runs this long before the steady window starts.
const WARM_UP: Duration = Duration::from_secs(1);
/// Every screen must have its snapshot within this.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(180);

/// When things happened, as times since the ingest load started.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    steady_from: Duration,
    storm_at: Duration,
    all_done: Duration,
}

pub async fn run(
    launcher: &Launcher,
    city: &mut City,
    spec: &StormSpec,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(city.units.len());
    let server = launcher.patrold("connect-storm", "").await?;
    let load = server.channels(4).await?;
    register_units(&load, &city.units).await?;
    send_positions(&load, &mut city.units, 1_000).await?;
    let screens = server.channels(spec.subscribers).await?;
    let ingest = server.channels(spec.clients).await?;
    let flood_spec = FloodSpec {
        workers: spec.clients,
        batch: spec.batch,
        seed: spec.seed,
        record_acks: true,
    };
    let flood = Flood::start(
        &ingest,
        std::mem::take(&mut city.units),
        city.spec.region,
        flood_spec,
    );
    tokio::time::sleep(WARM_UP).await;
    let steady_from = flood.elapsed();
    tokio::time::sleep(spec.steady).await;
    let storm_at = flood.elapsed();
    let cpu_before = Cpu::sample(&server);
    let storm = storm(screens, &flood).await;
    let cpu_after = Cpu::sample(&server);
    let out = flood.stop().await?;
    city.units = out.units;
    let (snapshots, all_done) = storm?;
    let timeline = Timeline {
        steady_from,
        storm_at,
        all_done,
    };
    let measured = Measured {
        label: &label,
        spec,
        timeline,
        acks: &out.tally.acks,
        snapshots: &snapshots,
        cores: cpu_before.cores_until(&cpu_after),
        failed_calls: out.tally.failed(),
    };
    measured.record(report);
    Ok(())
}

/// CPU time of the server, this process and the whole machine at one instant.
struct Cpu {
    server: Option<ProcSample>,
    me: Option<ProcSample>,
    machine_busy_s: Option<f64>,
}

impl Cpu {
    fn sample(server: &Patrold) -> Self {
        Self {
            server: server.sample(),
            me: proc_stats::sample_self(),
            machine_busy_s: proc_stats::machine_busy_s(),
        }
    }

    /// Cores used until `after`: (who, cores) for the server, the load
    /// generator and every other process, where known.
    fn cores_until(&self, after: &Cpu) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if let (Some(b), Some(a)) = (self.server, after.server) {
            out.push(("server", b.cores_until(&a)));
        }
        if let (Some(b), Some(a)) = (self.me, after.me) {
            out.push(("loadgen", b.cores_until(&a)));
        }
        if let (Some(sb), Some(sa), Some(mb), Some(ma), Some(tb), Some(ta)) = (
            self.server,
            after.server,
            self.me,
            after.me,
            self.machine_busy_s,
            after.machine_busy_s,
        ) {
            let wall = ma.at.duration_since(mb.at).as_secs_f64().max(1e-9);
            let other = (ta - tb) - sb.cpu_s_until(&sa) - mb.cpu_s_until(&ma);
            out.push(("other_processes", (other / wall).max(0.0)));
        }
        out
    }
}

/// Opens every screen's `Watch` at once; returns when each has read its
/// snapshot to the end: the time from the storm to each `SnapshotEnd`, and
/// when (in flood time) the last one came.
async fn storm(screens: Vec<Channel>, flood: &Flood) -> Result<(Latencies, Duration)> {
    let storm_at = flood.elapsed();
    let n = screens.len();
    let (done_tx, mut done_rx) = mpsc::channel(n.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Instant::now();
    let tasks: Vec<_> = screens
        .into_iter()
        .map(|ch| tokio::spawn(screen(ch, done_tx.clone(), stop_rx.clone())))
        .collect();
    drop(done_tx);
    let mut snapshots = Latencies::new();
    let mut last_at = storm_at;
    let deadline = tokio::time::Instant::now() + SNAPSHOT_TIMEOUT;
    while snapshots.len() < n as u64 {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(at)) => {
                snapshots.record(at.saturating_duration_since(opened));
                last_at = flood.elapsed();
            }
            _ => break,
        }
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await.context("Watch screen task")??;
    }
    let got = snapshots.len();
    if got < n as u64 {
        bail!("only {got} of {n} Watch screens read their snapshot within {SNAPSHOT_TIMEOUT:?}");
    }
    info!(
        screens = n,
        all_ms = snapshots.summary().max_ms(),
        storm_at_s = storm_at.as_secs_f64(),
        "connect storm: every snapshot read"
    );
    Ok((snapshots, last_at))
}

/// One screen: opens `Watch`, reports when its `SnapshotEnd` arrives, then
/// keeps reading until told to stop.
async fn screen(
    channel: Channel,
    done: mpsc::Sender<Instant>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut stream = watch_scan::watch(channel, pb::WatchRequest::default()).await?;
    let mut announced = false;
    loop {
        let frame = tokio::select! {
            f = stream.message() => f?,
            _ = stop.changed() => return Ok(()),
        };
        match frame {
            Some(WatchFrame::SnapshotEnd { .. }) if !announced => {
                announced = true;
                let _ = done.send(Instant::now()).await;
            }
            Some(_) => {}
            None => bail!("Watch stream ended"),
        }
    }
}

/// Everything the phase measured, for the report.
struct Measured<'a> {
    label: &'a str,
    spec: &'a StormSpec,
    timeline: Timeline,
    acks: &'a [(Duration, u64)],
    snapshots: &'a Latencies,
    /// (who, CPU cores) during the storm.
    cores: Vec<(&'static str, f64)>,
    failed_calls: u64,
}

/// Ingest before and during the storm.
struct Ingest {
    before: f64,
    during: f64,
    /// The fewest pings accepted in one window.
    worst_before: u64,
    worst_during: u64,
}

impl Measured<'_> {
    fn ingest(&self) -> Ingest {
        let Timeline {
            steady_from,
            storm_at,
            all_done,
        } = self.timeline;
        let worst = |from, to| {
            let windows = flood::windows(self.acks, from, to, WINDOW);
            windows.iter().copied().min().unwrap_or(0)
        };
        Ingest {
            before: flood::rate_between(self.acks, steady_from, storm_at),
            during: flood::rate_between(self.acks, storm_at, all_done),
            worst_before: worst(steady_from, storm_at),
            // At least one whole window, however short the storm.
            worst_during: worst(storm_at, all_done.max(storm_at + WINDOW)),
        }
    }

    fn record(&self, report: &mut Report) {
        let ingest = self.ingest();
        self.record_rows(report, &ingest);
        self.record_context(report, &ingest);
        report.note(format!(
            "connect_storm: {} units in memory; ingest {} callers x {} pings per ReportPositions call, flat out, accepted pings bucketed by reply time in {} ms windows; {} Watch streams opened at once on pre-opened connections",
            self.label,
            self.spec.clients,
            self.spec.batch,
            WINDOW.as_millis(),
            self.spec.subscribers
        ));
    }

    fn record_rows(&self, report: &mut Report, ingest: &Ingest) {
        let what = format!("{}, {} screens connect", self.label, self.spec.subscribers);
        let rates = [
            (
                "before_pings_per_s",
                "ingest before the storm",
                ingest.before,
                "1/s",
            ),
            (
                "during_pings_per_s",
                "ingest while snapshots are served",
                ingest.during,
                "1/s",
            ),
            (
                "during_vs_before",
                "ingest during / before the storm",
                ingest.during / ingest.before.max(1e-9),
                "x",
            ),
        ];
        for (key, text, value, unit) in rates {
            report.push(Row::higher(
                format!("connect_storm_ingest_{key}"),
                format!("{text} ({what})"),
                unit,
                value,
            ));
        }
        report.push(Row::higher(
            "connect_storm_worst_100ms_pings",
            format!("worst 100 ms of ingest during the storm, pings ({what})"),
            "count",
            ingest.worst_during as f64,
        ));
        report.push(Row::lower(
            "connect_storm_all_snapshots_ms",
            format!("until every screen had its snapshot ({what})"),
            "ms",
            self.snapshots.summary().max_ms(),
        ));
    }

    fn record_context(&self, report: &mut Report, ingest: &Ingest) {
        let Timeline {
            steady_from,
            storm_at,
            all_done,
        } = self.timeline;
        let s = self.snapshots.summary();
        let first_ms = self.snapshots.min_ns() as f64 / 1e6;
        let extras = [
            (
                "worst_100ms_pings_before",
                ingest.worst_before as f64,
                "count",
            ),
            ("first_snapshot_ms", first_ms, "ms"),
            ("snapshot_p50_ms", s.p50_ms(), "ms"),
            ("snapshots_completed", s.count as f64, "count"),
            ("subscribers", self.spec.subscribers as f64, "count"),
            (
                "steady_seconds",
                (storm_at - steady_from).as_secs_f64(),
                "s",
            ),
            ("storm_seconds", (all_done - storm_at).as_secs_f64(), "s"),
            ("ingest_failed_calls", self.failed_calls as f64, "count"),
        ];
        for (key, value, unit) in extras {
            report.extra(format!("connect_storm_{key}"), value, unit);
        }
        for (who, c) in &self.cores {
            report.extra(format!("connect_storm_{who}_cpu_cores_during"), *c, "cores");
        }
    }
}
