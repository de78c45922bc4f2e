//! Freshness: how long after a ping is sent its position reaches `Watch`
//! subscribers, while ingest runs at a fixed rate.
//!
//! Each subscriber has its own connection and reads with the scanning codec
//! ([`crate::watch_scan`]). Once every subscriber has its snapshot, ingest
//! starts; each position in a `PositionBatch` whose fix time is at or after the
//! start counts as one sample: arrival wall clock minus the ping's fix time,
//! which the generator sets to the wall clock (ms) when it builds the batch. The
//! ms truncation overstates latency by at most 1 ms. The server coalesces to one
//! batch per interval, so a ping waits up to one interval by design: the target
//! is about what comes on top of that.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use patrol_proto::v1 as pb;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use crate::city::{Region, SimUnit};
use crate::ingest::{self, IngestOutcome, IngestSpec};
use crate::load::{unix_ms, unix_us};
use crate::report::Latencies;
use crate::watch_scan::{self, WatchFrame};
use crate::{proc_stats, profile};

/// What the subscribers saw.
#[derive(Debug, Clone, Default)]
pub struct FreshnessOutcome {
    pub subscribers: usize,
    pub latencies: Latencies,
    /// Positions received by all subscribers during the measurement.
    pub positions: u64,
    pub resyncs: u64,
    pub ingest: IngestOutcome,
    /// CPU cores the server and the bench used while measuring (after every
    /// subscriber had its snapshot).
    pub server_cores: Option<f64>,
    pub loadgen_cores: Option<f64>,
    /// CPU cores everything else on the machine used meanwhile.
    pub other_cores: Option<f64>,
}

/// The server process, for CPU figures and an optional profile of the
/// measured window.
#[derive(Debug, Clone, Copy)]
pub struct Observe<'a> {
    pub server_pid: Option<u32>,
    /// Directory and file stem for a `perf record` of the window.
    pub profile: Option<(&'a std::path::Path, &'a str)>,
}

#[derive(Debug, Default)]
struct SubscriberTally {
    latencies: Latencies,
    positions: u64,
    resyncs: u64,
}

/// Arrival (Unix microseconds) minus fix time (Unix ms), in nanoseconds.
fn latency_ns(now_us: i64, fix_ms: i64) -> u64 {
    ((now_us - fix_ms * 1000).max(0) as u64) * 1000
}

/// Reads one Watch stream until told to stop. Reports on `ready` when its
/// snapshot is complete; records positions whose fix time is at or after
/// `measure_from` (Unix ms; 0 = not measuring yet).
async fn subscriber(
    channel: Channel,
    ready: mpsc::Sender<()>,
    measure_from: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> Result<SubscriberTally> {
    let mut stream = watch_scan::watch(channel, pb::WatchRequest::default()).await?;
    let mut tally = SubscriberTally::default();
    let mut announced = false;
    loop {
        let frame = tokio::select! {
            f = stream.message() => f?,
            _ = stop.changed() => break,
        };
        let Some(frame) = frame else {
            bail!("Watch stream ended")
        };
        match frame {
            WatchFrame::SnapshotEnd { .. } if !announced => {
                announced = true;
                let _ = ready.send(()).await;
            }
            WatchFrame::Positions { fix_times_ms, .. } => {
                let from = measure_from.load(Ordering::Relaxed);
                if from == 0 {
                    continue;
                }
                let now_us = unix_us();
                // Positions from one ingest batch share a fix time: record
                // runs of equal times at once.
                let mut run: Option<(i64, u64)> = None;
                for t in fix_times_ms.into_iter().filter(|&t| t >= from) {
                    tally.positions += 1;
                    match &mut run {
                        Some((rt, n)) if *rt == t => *n += 1,
                        _ => {
                            if let Some((rt, n)) = run.replace((t, 1)) {
                                tally.latencies.record_ns_n(latency_ns(now_us, rt), n);
                            }
                        }
                    }
                }
                if let Some((rt, n)) = run {
                    tally.latencies.record_ns_n(latency_ns(now_us, rt), n);
                }
            }
            WatchFrame::Resync { .. } => tally.resyncs += 1,
            _ => {}
        }
    }
    Ok(tally)
}

/// Opens `subscribers` Watch streams, waits for their snapshots, then runs the
/// paced ingest and measures.
pub async fn run(
    subscriber_channels: Vec<Channel>,
    ingest_channels: &[Channel],
    units: &mut Vec<SimUnit>,
    region: Region,
    spec: &IngestSpec,
    interval_ms: u64,
    observe: Observe<'_>,
) -> Result<FreshnessOutcome> {
    let subscribers = subscriber_channels.len();
    let (ready_tx, mut ready_rx) = mpsc::channel(subscribers.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let measure_from = Arc::new(AtomicI64::new(0));
    let tasks: Vec<_> = subscriber_channels
        .into_iter()
        .map(|ch| {
            tokio::spawn(subscriber(
                ch,
                ready_tx.clone(),
                measure_from.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let snapshot_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for got in 0..subscribers {
        match tokio::time::timeout_at(snapshot_deadline, ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => {
                let _ = stop_tx.send(true);
                for t in tasks {
                    if let Ok(Err(e)) = t.await {
                        return Err(e).context(format!(
                            "Watch subscriber failed ({got} of {subscribers} had their snapshot)"
                        ));
                    }
                }
                bail!("only {got} of {subscribers} Watch subscribers received their snapshot");
            }
        }
    }
    let rec = match observe.profile {
        Some((dir, name)) => profile::maybe_start(Some(dir), name, observe.server_pid).await?,
        None => None,
    };
    let server_before = observe.server_pid.and_then(proc_stats::sample);
    let me_before = proc_stats::sample_self();
    let all_before = proc_stats::machine_busy_s();
    measure_from.store(unix_ms(), Ordering::Relaxed);
    let ingest = ingest::run(ingest_channels, units, region, spec).await;
    // The last pings reach subscribers within one interval.
    tokio::time::sleep(Duration::from_millis(interval_ms + 500)).await;
    let _ = stop_tx.send(true);
    let server_after = observe.server_pid.and_then(proc_stats::sample);
    let me_after = proc_stats::sample_self();
    let all_after = proc_stats::machine_busy_s();
    profile::maybe_stop(rec)?;
    let other_cores = match (
        server_before,
        server_after,
        me_before,
        me_after,
        all_before,
        all_after,
    ) {
        (Some(sb), Some(sa), Some(mb), Some(ma), Some(tb), Some(ta)) => {
            let wall = ma.at.duration_since(mb.at).as_secs_f64().max(1e-9);
            Some((((ta - tb) - sb.cpu_s_until(&sa) - mb.cpu_s_until(&ma)) / wall).max(0.0))
        }
        _ => None,
    };
    let mut out = FreshnessOutcome {
        subscribers,
        ingest: ingest?,
        server_cores: server_before
            .zip(server_after)
            .map(|(b, a)| b.cores_until(&a)),
        loadgen_cores: me_before.zip(me_after).map(|(b, a)| b.cores_until(&a)),
        other_cores,
        ..Default::default()
    };
    for t in tasks {
        let tally = t.await.context("Watch subscriber task")??;
        out.latencies.merge(&tally.latencies);
        out.positions += tally.positions;
        out.resyncs += tally.resyncs;
    }
    Ok(out)
}
