//! A ping flood: many workers, each calling `ReportPositions` with one batch
//! per call as fast as the server answers, for as long as it runs.
//!
//! One batch per call because the API acknowledges a `ReportPositions`
//! stream only when it ends, and a refusal (`ResourceExhausted`) ends the
//! whole stream: with one batch per call every reply tells exactly which
//! pings were accepted and which were refused, and when. A refused or failed
//! call does not stop the worker; it sends its next batch at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use patrol_proto::v1 as pb;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::city::{Region, SimUnit};
use crate::ingest::{Mover, split_units};
use crate::load::{unit_client, unix_ms};
use crate::report::code_key;

/// How to flood.
#[derive(Debug, Clone, Copy)]
pub struct FloodSpec {
    /// Concurrent callers, each with one call in flight.
    pub workers: usize,
    /// Pings per call.
    pub batch: usize,
    pub seed: u64,
    /// Keep (time, accepted) of every reply, for per-window rates.
    pub record_acks: bool,
}

/// What the server said to the flood.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FloodTally {
    pub calls: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Calls refused with `ResourceExhausted`, and their pings (not stored).
    pub refused_calls: u64,
    pub refused_pings: u64,
    /// Calls that failed otherwise, by gRPC code (`deadline_exceeded`, ...);
    /// their pings may or may not have been stored.
    pub failed_calls: BTreeMap<String, u64>,
    pub failed_pings: u64,
    /// Per accepted call: when its reply came (since the flood started) and
    /// how many pings it accepted. Only with `record_acks`.
    pub acks: Vec<(Duration, u64)>,
}

impl FloodTally {
    /// Counts one call's outcome.
    pub fn record(
        &mut self,
        pings: u64,
        at: Duration,
        result: Result<pb::ReportPositionsResponse, Status>,
    ) {
        self.calls += 1;
        match result {
            Ok(r) => {
                self.accepted += r.accepted;
                self.duplicates += r.duplicates;
                self.rejected += r.rejected;
                self.acks.push((at, r.accepted));
            }
            Err(s) if s.code() == Code::ResourceExhausted => {
                self.refused_calls += 1;
                self.refused_pings += pings;
            }
            Err(s) => {
                *self.failed_calls.entry(code_key(s.code())).or_default() += 1;
                self.failed_pings += pings;
            }
        }
    }

    pub fn merge(&mut self, other: FloodTally) {
        self.calls += other.calls;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.refused_calls += other.refused_calls;
        self.refused_pings += other.refused_pings;
        for (code, n) in other.failed_calls {
            *self.failed_calls.entry(code).or_default() += n;
        }
        self.failed_pings += other.failed_pings;
        self.acks.extend(other.acks);
    }

    pub fn failed(&self) -> u64 {
        self.failed_calls.values().sum()
    }
}

/// A running flood.
pub struct Flood {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<(Vec<SimUnit>, FloodTally)>>,
    started: Instant,
}

/// What a stopped flood did, with the units back in their original order.
#[derive(Debug)]
pub struct FloodOutcome {
    pub units: Vec<SimUnit>,
    pub tally: FloodTally,
    pub elapsed: Duration,
}

impl FloodOutcome {
    /// Accepted pings per second over the whole flood.
    pub fn rate(&self) -> f64 {
        self.tally.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Flood {
    /// Starts the workers over `channels` (round-robin), each with its own
    /// share of `units`.
    pub fn start(
        channels: &[Channel],
        units: Vec<SimUnit>,
        region: Region,
        spec: FloodSpec,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let workers = split_units(units, spec.workers.max(1))
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let worker = Worker {
                    client: unit_client(&channels[i % channels.len()]),
                    mover: Mover::new(part, region, spec.seed ^ (i as u64 + 1)),
                    batch: spec.batch,
                    record_acks: spec.record_acks,
                };
                tokio::spawn(worker.run(stop.clone(), started))
            })
            .collect();
        Flood {
            stop,
            workers,
            started,
        }
    }

    /// Time since the flood started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops every worker after its call in flight and gathers the outcome.
    pub async fn stop(self) -> Result<FloodOutcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut units = Vec::new();
        let mut tally = FloodTally::default();
        for worker in self.workers {
            let (part, t) = worker.await.context("flood worker")?;
            units.extend(part);
            tally.merge(t);
        }
        tally.acks.sort_by_key(|a| a.0);
        Ok(FloodOutcome {
            units,
            tally,
            elapsed: self.started.elapsed(),
        })
    }
}

/// One caller: its client, its units and how it calls.
struct Worker {
    client: UnitServiceClient<Channel>,
    mover: Mover,
    batch: usize,
    record_acks: bool,
}

impl Worker {
    /// Calls until `stop`; returns the units and what the server said.
    async fn run(mut self, stop: Arc<AtomicBool>, started: Instant) -> (Vec<SimUnit>, FloodTally) {
        let mut tally = FloodTally::default();
        while !stop.load(Ordering::Relaxed) && !self.mover.units.is_empty() {
            let request = self.mover.next_batch(self.batch, unix_ms());
            let pings = request.pings.len() as u64;
            let result = self
                .client
                .report_positions(futures_util::stream::iter([request]))
                .await
                .map(tonic::Response::into_inner);
            let transport_down = matches!(&result, Err(s) if s.code() == Code::Unavailable);
            tally.record(pings, started.elapsed(), result);
            if transport_down {
                // Do not spin while the connection is re-established.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if !self.record_acks {
            tally.acks = Vec::new();
        }
        (self.mover.units, tally)
    }
}

/// Accepted pings in each whole `width` window from `from` to `to` (times
/// since the flood started), by reply time.
pub fn windows(
    acks: &[(Duration, u64)],
    from: Duration,
    to: Duration,
    width: Duration,
) -> Vec<u64> {
    let n = if to > from {
        ((to - from).as_nanos() / width.as_nanos().max(1)) as usize
    } else {
        0
    };
    let mut out = vec![0; n];
    for &(at, accepted) in acks {
        if at < from {
            continue;
        }
        let i = ((at - from).as_nanos() / width.as_nanos().max(1)) as usize;
        if let Some(w) = out.get_mut(i) {
            *w += accepted;
        }
    }
    out
}

/// Accepted pings per second whose replies came in `[from, to)`.
pub fn rate_between(acks: &[(Duration, u64)], from: Duration, to: Duration) -> f64 {
    let accepted: u64 = acks
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(_, n)| n)
        .sum();
    accepted as f64 / to.saturating_sub(from).as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn every_outcome_is_counted_where_it_belongs() {
        let mut t = FloodTally::default();
        let ok = pb::ReportPositionsResponse {
            accepted: 90,
            duplicates: 6,
            rejected: 4,
            ..Default::default()
        };
        t.record(100, ms(5), Ok(ok));
        t.record(100, ms(6), Err(Status::resource_exhausted("full")));
        t.record(100, ms(7), Err(Status::deadline_exceeded("slow")));
        t.record(100, ms(8), Err(Status::deadline_exceeded("slow")));
        assert_eq!(t.calls, 4);
        assert_eq!((t.accepted, t.duplicates, t.rejected), (90, 6, 4));
        assert_eq!((t.refused_calls, t.refused_pings), (1, 100));
        assert_eq!(t.failed_calls["deadline_exceeded"], 2);
        assert_eq!((t.failed(), t.failed_pings), (2, 200));
        assert_eq!(t.acks, [(ms(5), 90)]);
        let mut all = FloodTally::default();
        all.merge(t.clone());
        all.merge(t);
        assert_eq!(all.failed_calls["deadline_exceeded"], 4);
        assert_eq!(all.accepted, 180);
    }

    #[test]
    fn windows_bucket_replies_and_leave_out_partial_ones() {
        let acks = [
            (ms(5), 1),
            (ms(99), 2),
            (ms(100), 4),
            (ms(250), 8),
            (ms(310), 16),
        ];
        assert_eq!(windows(&acks, ms(0), ms(300), ms(100)), [3, 4, 8]);
        assert_eq!(windows(&acks, ms(100), ms(250), ms(100)), [4]);
        assert!(windows(&acks, ms(300), ms(200), ms(100)).is_empty());
        assert_eq!(rate_between(&acks, ms(0), ms(500)), 62.0);
        assert_eq!(rate_between(&acks, ms(100), ms(300)), 60.0);
    }
}
