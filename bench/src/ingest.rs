//! Ingest: `clients` concurrent `ReportPositions` streams, each on its own
//! connection, each sending batches of `batch` pings for its share of the units
//! for a fixed time, as fast as the server takes them or at a fixed total rate.
//!
//! Every client has a producer task that moves its units a few metres and
//! builds the next batch (fix time = wall clock when built), feeding the gRPC
//! stream through a small bounded channel, so a slow server pushes back on the
//! producer instead of piling up batches.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use patrol_proto::v1 as pb;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::city::{Region, SimUnit};
use crate::load::{Link, unix_ms};

/// How to drive the server.
#[derive(Debug, Clone, Copy)]
pub struct IngestSpec {
    pub clients: usize,
    pub batch: usize,
    pub duration: Duration,
    /// Total pings per second across all clients; `None`: as fast as possible.
    pub rate: Option<f64>,
    pub seed: u64,
}

/// What the server said about the pings.
#[derive(Debug, Clone, Default)]
pub struct IngestOutcome {
    pub sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// From the first ping built to the last stream's reply.
    pub elapsed: Duration,
    pub first_rejection: Option<String>,
}

impl IngestOutcome {
    /// Accepted pings per second.
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Splits `units` into `parts` contiguous chunks (the last ones may be shorter).
pub fn split_units(units: Vec<SimUnit>, parts: usize) -> Vec<Vec<SimUnit>> {
    let per = units.len().div_ceil(parts.max(1)).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut it = units.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(per).collect());
    }
    out
}

/// Seconds between batches for one client, to hold `rate` pings/s in total.
pub fn batch_period(rate: f64, clients: usize, batch: usize) -> Duration {
    Duration::from_secs_f64(batch as f64 * clients as f64 / rate)
}

/// A client's share of the units, moved round-robin a few metres per ping.
#[derive(Debug)]
pub struct Mover {
    pub units: Vec<SimUnit>,
    region: Region,
    rng: Xoshiro256PlusPlus,
    cursor: usize,
}

impl Mover {
    pub fn new(units: Vec<SimUnit>, region: Region, seed: u64) -> Self {
        Self {
            units,
            region,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            cursor: 0,
        }
    }

    /// The next `batch` units in turn, each moved and pinged at `now_ms` (fix
    /// times strictly increase per unit). Empty when there are no units.
    pub fn next_batch(&mut self, batch: usize, now_ms: i64) -> pb::ReportPositionsRequest {
        let len = self.units.len();
        let mut pings = Vec::with_capacity(if len == 0 { 0 } else { batch });
        if len > 0 {
            for _ in 0..batch {
                let u = &mut self.units[self.cursor];
                self.cursor += 1;
                if self.cursor == len {
                    self.cursor = 0;
                }
                u.step(&mut self.rng, &self.region);
                pings.push(u.ping(now_ms));
            }
        }
        pb::ReportPositionsRequest { pings }
    }
}

/// A producer: moves units and sends batches until the deadline. Returns the
/// units (with their new positions and fix times) and how many pings it sent.
#[allow(clippy::too_many_arguments)]
pub async fn produce(
    units: Vec<SimUnit>,
    region: Region,
    batch: usize,
    deadline: Instant,
    period: Option<Duration>,
    seed: u64,
    tx: mpsc::Sender<pb::ReportPositionsRequest>,
) -> (Vec<SimUnit>, u64) {
    let mut mover = Mover::new(units, region, seed);
    let mut sent = 0u64;
    let mut next = tokio::time::Instant::now();
    if mover.units.is_empty() {
        return (mover.units, 0);
    }
    loop {
        if let Some(p) = period {
            tokio::time::sleep_until(next).await;
            next += p;
        }
        if Instant::now() >= deadline {
            break;
        }
        let request = mover.next_batch(batch, unix_ms());
        sent += request.pings.len() as u64;
        if tx.send(request).await.is_err() {
            break;
        }
    }
    (mover.units, sent)
}

/// Runs the ingest load; the units come back in their original order with
/// their final positions.
pub async fn run(
    channels: &[impl Link],
    units: &mut Vec<SimUnit>,
    region: Region,
    spec: &IngestSpec,
) -> Result<IngestOutcome> {
    let clients = spec.clients.max(1).min(units.len().max(1));
    let parts = split_units(std::mem::take(units), clients);
    let period = spec.rate.map(|r| batch_period(r, parts.len(), spec.batch));
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut tasks = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(4);
        let producer = tokio::spawn(produce(
            part,
            region,
            spec.batch,
            deadline,
            period,
            spec.seed ^ (i as u64 + 1),
            tx,
        ));
        let mut client = channels[i % channels.len()].units();
        let stream = tokio::spawn(async move {
            let resp = client.report_positions(ReceiverStream::new(rx)).await;
            (resp, Instant::now())
        });
        tasks.push((producer, stream));
    }
    let mut out = IngestOutcome::default();
    let mut end = start;
    let mut back = Vec::new();
    let mut first_err = None;
    for (producer, stream) in tasks {
        let (resp, at) = stream.await.context("ingest stream task")?;
        let (part, sent) = producer.await.context("ingest producer task")?;
        back.push(part);
        out.sent += sent;
        end = end.max(at);
        match resp {
            Ok(r) => {
                let r = r.into_inner();
                out.accepted += r.accepted;
                out.duplicates += r.duplicates;
                out.rejected += r.rejected;
                if out.first_rejection.is_none() {
                    out.first_rejection = r
                        .rejections
                        .first()
                        .map(|r| format!("{}: {}", r.unit_id, r.message));
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    *units = back.into_iter().flatten().collect();
    if let Some(e) = first_err {
        return Err(e).context("ReportPositions failed");
    }
    out.elapsed = end - start;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::{City, CitySpec};

    #[test]
    fn split_keeps_order_and_everything() {
        let city = City::generate(CitySpec::new(1, 10));
        let parts = split_units(city.units.clone(), 3);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let back: Vec<_> = parts.into_iter().flatten().collect();
        assert_eq!(back, city.units);
        assert_eq!(split_units(Vec::new(), 4).len(), 0);
    }

    #[test]
    fn pacing_period() {
        // 100k pings/s, 4 clients, batches of 100: each client sends 250
        // batches a second.
        assert_eq!(batch_period(100_000.0, 4, 100), Duration::from_millis(4));
    }

    #[tokio::test]
    async fn producer_moves_units_and_stops_at_the_deadline() {
        let city = City::generate(CitySpec::new(2, 10));
        let before = city.units.clone();
        let (tx, mut rx) = mpsc::channel(1024);
        let deadline = Instant::now() + Duration::from_millis(30);
        let producer = tokio::spawn(produce(
            city.units,
            city.spec.region,
            4,
            deadline,
            Some(Duration::from_millis(1)),
            9,
            tx,
        ));
        let mut got = Vec::new();
        while let Some(r) = rx.recv().await {
            got.extend(r.pings);
        }
        let (after, sent) = producer.await.unwrap();
        assert_eq!(sent as usize, got.len());
        assert!(sent > 0 && sent % 4 == 0);
        // every unit's fix times strictly increase
        for u in &before {
            let times: Vec<i64> = got
                .iter()
                .filter(|p| p.unit_id == u.id)
                .map(|p| p.fix_time_unix_ms)
                .collect();
            assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
        }
        assert_eq!(after.len(), before.len());
    }
}
