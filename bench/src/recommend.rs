//! Recommend: the k = 5 nearest available units to points anywhere in the
//! region, over gRPC (one query at a time for latency, many in flight for
//! throughput) and in-process through the core's `Dispatcher::recommend`
//! alone, without gRPC.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use patrol_dispatcher::{
    Dispatcher, DispatcherConfig, LonLat, Ping, Target, UnitIndexConfig, UnitProfile, UnitQuery,
    UnitStatus,
};
use patrol_proto::v1 as pb;
use pb::incident_service_client::IncidentServiceClient;
use tonic::transport::Channel;

use crate::city::SimUnit;
use crate::report::Latencies;
use crate::server::MAX_MESSAGE_BYTES;

/// Units per recommendation.
pub const K: usize = 5;

fn incident_client(ch: &Channel) -> IncidentServiceClient<Channel> {
    IncidentServiceClient::new(ch.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

fn request(lon: f64, lat: f64) -> pb::RecommendRequest {
    pb::RecommendRequest {
        target: Some(pb::recommend_request::Target::Point(pb::LonLat {
            lon,
            lat,
        })),
        k: K as u32,
        ..Default::default()
    }
}

/// What one pass of queries found.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub latencies: Latencies,
    /// Each query's nearest unit id, in query order.
    pub top: Vec<Option<String>>,
    /// Queries that returned fewer than k units.
    pub short: usize,
}

/// One query at a time on one connection.
pub async fn grpc_sequential(channel: &Channel, points: &[(f64, f64)]) -> Result<Pass> {
    let mut client = incident_client(channel);
    for &(lon, lat) in points.iter().take(100) {
        client.recommend(request(lon, lat)).await?;
    }
    let mut pass = Pass::default();
    for &(lon, lat) in points {
        let t = Instant::now();
        let resp = client
            .recommend(request(lon, lat))
            .await
            .context("Recommend")?
            .into_inner();
        pass.latencies.record(t.elapsed());
        if resp.units.len() < K {
            pass.short += 1;
        }
        pass.top.push(
            resp.units
                .first()
                .and_then(|u| u.unit.as_ref())
                .map(|u| u.id.clone()),
        );
    }
    Ok(pass)
}

/// The floor under any unary call on this machine: `GetUnit` for one unit,
/// one call at a time (HTTP/2 framing, two task wake-ups per side, loopback).
pub async fn grpc_floor(channel: &Channel, unit_id: &str, calls: usize) -> Result<Latencies> {
    let mut client = crate::load::unit_client(channel);
    let mut lat = Latencies::new();
    for i in 0..calls + 50 {
        let t = Instant::now();
        client
            .get_unit(pb::GetUnitRequest {
                id: unit_id.to_string(),
            })
            .await
            .context("GetUnit")?;
        if i >= 50 {
            lat.record(t.elapsed());
        }
    }
    Ok(lat)
}

/// `tasks` closed-loop clients over the channels for `duration`: queries per
/// second and latency under load.
pub async fn grpc_concurrent(
    channels: &[Channel],
    points: &[(f64, f64)],
    tasks: usize,
    duration: Duration,
) -> Result<(f64, Latencies)> {
    let points = Arc::new(points.to_vec());
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for t in 0..tasks.max(1) {
        let mut client = incident_client(&channels[t % channels.len()]);
        let points = points.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            let mut i = t * 7919;
            while Instant::now() < deadline {
                let (lon, la) = points[i % points.len()];
                i += 1;
                let q = Instant::now();
                client.recommend(request(lon, la)).await?;
                lat.record(q.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Latencies::new();
    for h in handles {
        all.merge(&h.await??);
    }
    Ok((all.len() as f64 / start.elapsed().as_secs_f64(), all))
}

/// A core holding the city as the server does: every unit registered with its
/// current position, the busy ones busy.
pub fn build_core(units: &[SimUnit], now: i64) -> Result<Dispatcher> {
    Ok(build_core_measured(units, now)?.0)
}

/// Live heap bytes (see [`crate::heap`]) after each step of building the core:
/// empty, every unit registered, every unit positioned, the busy ones busy.
pub type HeapSteps = [usize; 4];

/// [`build_core`], noting the heap after each step.
pub fn build_core_measured(units: &[SimUnit], now: i64) -> Result<(Dispatcher, HeapSteps)> {
    let mut steps = [0; 4];
    let mut d = Dispatcher::new(DispatcherConfig {
        units: UnitIndexConfig {
            offline_after_ms: 24 * 3_600_000,
            ..Default::default()
        },
        ..Default::default()
    });
    steps[0] = crate::heap::live_bytes();
    for (i, u) in units.iter().enumerate() {
        d.register_unit(
            UnitProfile {
                id: u.id.clone(),
                call_sign: format!("P-{}", &u.id[5..]),
                kind: u.kind.to_core(),
                capabilities: Vec::new(),
            },
            now,
        )?;
        if i % 10_000 == 0 {
            d.take_events();
        }
    }
    d.take_events();
    steps[1] = crate::heap::live_bytes();
    for (i, u) in units.iter().enumerate() {
        let ping = Ping {
            unit_id: &u.id,
            time: now,
            at: LonLat::new(u.lon, u.lat),
            speed_mps: Some(u.last_step_m as f32),
            heading_deg: Some(u.heading_deg as f32),
            accuracy_m: Some(5.0),
        };
        if let Err(e) = d.apply_ping(&ping, now) {
            bail!("core refused a ping for {}: {e:?}", u.id);
        }
        if i % 10_000 == 0 {
            d.take_events();
        }
    }
    d.take_events();
    d.take_moved();
    steps[2] = crate::heap::live_bytes();
    for u in units.iter().filter(|u| u.busy) {
        d.update_unit_status(
            &u.id,
            UnitStatus::Busy,
            &patrol_dispatcher::Actor::system("bench"),
            now,
        )?;
    }
    d.take_events();
    steps[3] = crate::heap::live_bytes();
    Ok((d, steps))
}

/// Times `Dispatcher::recommend` (search plus explanation: distances, ETAs,
/// reasons, exclusions) for each point, after a warm-up pass.
pub fn core_recommend_pass(core: &Dispatcher, points: &[(f64, f64)], now: i64) -> Result<Pass> {
    let query = UnitQuery {
        k: K,
        ..Default::default()
    };
    for &(lon, lat) in points.iter().take(1_000) {
        black_box(core.recommend(&Target::Point(LonLat::new(lon, lat)), &query, now)?);
    }
    let mut pass = Pass::default();
    for &(lon, lat) in points {
        let target = Target::Point(LonLat::new(lon, lat));
        let t = Instant::now();
        let rec = black_box(core.recommend(black_box(&target), &query, now)?);
        pass.latencies.record(t.elapsed());
        if rec.units.len() < K {
            pass.short += 1;
        }
        pass.top
            .push(rec.units.first().map(|u| u.unit.profile.id.clone()));
    }
    Ok(pass)
}

/// Times `Dispatcher::nearest` alone, the spatial search without the
/// explanation (after a warm-up pass). `top` stays empty: the search returns
/// slots, not ids.
pub fn core_nearest_pass(core: &Dispatcher, points: &[(f64, f64)], now: i64) -> Result<Pass> {
    let query = UnitQuery {
        k: K,
        ..Default::default()
    };
    for &(lon, lat) in points.iter().take(1_000) {
        black_box(core.nearest(&Target::Point(LonLat::new(lon, lat)), &query, now)?);
    }
    let mut pass = Pass::default();
    for &(lon, lat) in points {
        let target = Target::Point(LonLat::new(lon, lat));
        let t = Instant::now();
        let found = black_box(core.nearest(black_box(&target), &query, now)?);
        pass.latencies.record(t.elapsed());
        if found.len() < K {
            pass.short += 1;
        }
    }
    Ok(pass)
}

/// Share of queries where both answers name the same nearest unit.
pub fn agreement(a: &[Option<String>], b: &[Option<String>]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::{City, CitySpec};

    #[test]
    fn core_answers_with_the_nearest_available_unit() {
        let city = City::generate(CitySpec::new(11, 3_000));
        let core = build_core(&city.units, 1_000_000).unwrap();
        let points = city.query_points(50);
        let pass = core_recommend_pass(&core, &points, 1_000_000).unwrap();
        let search = core_nearest_pass(&core, &points, 1_000_000).unwrap();
        assert_eq!((search.latencies.len(), search.short), (50, 0));
        assert_eq!(pass.latencies.len(), 50);
        assert_eq!(pass.short, 0);
        // brute force over available units, great-circle metres
        for (&(lon, lat), top) in points.iter().zip(&pass.top) {
            let q = LonLat::new(lon, lat);
            let best = city
                .available()
                .min_by(|a, b| {
                    let d = |u: &SimUnit| LonLat::new(u.lon, u.lat).distance_m(&q);
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            assert_eq!(top.as_deref(), Some(best.id.as_str()));
        }
    }

    #[test]
    fn agreement_counts_equal_answers() {
        let a = vec![
            Some("x".to_string()),
            Some("y".into()),
            None,
            Some("z".into()),
        ];
        let b = vec![
            Some("x".to_string()),
            Some("q".into()),
            None,
            Some("z".into()),
        ];
        assert_eq!(agreement(&a, &b), 0.75);
        assert_eq!(agreement(&[], &b), 0.0);
    }
}
