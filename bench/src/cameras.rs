//! Cameras over gRPC: `CamerasSeeing` latency and throughput at each camera
//! count, and what follow mode costs under a moving unit load.
//!
//! Per camera count a fresh patrold (in memory) gets `n` cameras placed the
//! way units are (the dense centre's share in the centre, the rest uniform
//! over the 40 x 40 km region), 75 % fixed (40-100 deg, 30-150 m) and 25 %
//! PTZ (30-60 deg, 100-300 m, continuous pan), registered by concurrent
//! `RegisterCamera` calls. Then `CamerasSeeing` (limit 20) one at a time at
//! points placed the same way and at uniform points (p50/p99), and with
//! `in_flight` requests in flight (queries/s and the server's CPU per query).
//!
//! Follow mode: a fresh patrold with `follow_units` units moving flat out
//! (the [`crate::flood`] load) and, for each of `follows` units, four PTZ
//! cameras registered around its start. The same load is measured for
//! `window` without follows and again after `FollowUnit` for each of those
//! units with its four cameras: ingest rate, the server's CPU, and the
//! non-position events per second on one `Watch` stream (the camera turns).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream;
use patrol_proto::v1 as pb;
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;
use tonic::transport::Channel;
use tracing::info;

use crate::city::{City, CitySpec, Region};
use crate::flood::{self, Flood, FloodSpec};
use crate::load::{register_units, send_positions};
use crate::report::{Latencies, Report, Row, count_label};
use crate::server::{Launcher, Patrold};
use crate::watch_scan::{self, WatchFrame};

/// How the phase runs.
#[derive(Debug, Clone)]
pub struct CameraSpec {
    /// Registered camera counts.
    pub counts: Vec<usize>,
    /// Sequential `CamerasSeeing` queries per kind of point.
    pub queries: usize,
    /// Requests in flight for the throughput figure.
    pub in_flight: usize,
    /// How long the throughput pass runs.
    pub throughput_time: Duration,
    /// Moving units during the follow measurement.
    pub follow_units: usize,
    /// Units followed.
    pub follows: usize,
    /// Each measured follow window (without, then with).
    pub window: Duration,
    pub clients: usize,
    pub batch: usize,
    pub seed: u64,
}

/// `RegisterCamera` calls in flight while loading.
const REGISTER_IN_FLIGHT: usize = 256;
/// PTZ cameras registered around each followed unit.
const CAMERAS_PER_FOLLOW: usize = 4;
/// Cameras asked for per `CamerasSeeing`.
const LIMIT: u32 = 20;

pub async fn run(launcher: &Launcher, spec: &CameraSpec, report: &mut Report) -> Result<()> {
    for &n in &spec.counts {
        seeing_at(launcher, spec, n, report)
            .await
            .with_context(|| format!("cameras at {}", count_label(n)))?;
    }
    if spec.follows > 0 {
        follow(launcher, spec, report)
            .await
            .context("follow mode")?;
    }
    Ok(())
}

/// The `i`-th camera of a bench city: fixed or PTZ, at `(lon, lat)`.
pub fn camera(i: usize, lon: f64, lat: f64, rng: &mut Xoshiro256PlusPlus) -> pb::Camera {
    let ptz = rng.random_range(0..4) == 0;
    let heading = rng.random_range(0.0..360.0);
    let (fov, range) = if ptz {
        (rng.random_range(30.0..60.0), rng.random_range(100.0..300.0))
    } else {
        (rng.random_range(40.0..100.0), rng.random_range(30.0..150.0))
    };
    pb::Camera {
        id: format!("cam-{i}"),
        name: String::new(),
        lon,
        lat,
        mount_height_m: rng.random_range(3.0..10.0),
        heading_deg: heading,
        fov_deg: fov,
        range_m: range,
        ptz,
        vertical_fov_deg: 0.0,
        ptz_head: ptz.then(|| ptz_head(heading)),
        last_seen_unix_ms: 0,
        online: true,
    }
}

/// A continuous-pan head with its zero pan at `zero_deg`.
fn ptz_head(zero_deg: f64) -> pb::PtzHead {
    pb::PtzHead {
        zero_pan_azimuth_deg: zero_deg,
        pan_min_deg: -180.0,
        pan_max_deg: 180.0,
        tilt_min_deg: 0.0,
        tilt_max_deg: 90.0,
        pose: Some(pb::PtzPose::default()),
    }
}

/// `n` cameras placed the way units are, from their own seed.
pub fn cameras(n: usize, seed: u64) -> Vec<pb::Camera> {
    let places = City::generate(CitySpec::new(seed ^ 0xca3e_7a5e_0000_0001, n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xca3e_7a5e_0000_0002);
    places
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| camera(i, u.lon, u.lat, &mut rng))
        .collect()
}

/// Registers every camera over `channels`, `REGISTER_IN_FLIGHT` at a time.
async fn register(channels: &[Channel], cameras: Vec<pb::Camera>) -> Result<Duration> {
    let started = Instant::now();
    let clients: Vec<_> = channels
        .iter()
        .map(|c| CameraServiceClient::new(c.clone()))
        .collect();
    let mut results = stream::iter(cameras.into_iter().enumerate())
        .map(|(i, camera)| {
            let mut client = clients[i % clients.len()].clone();
            async move {
                client
                    .register_camera(pb::RegisterCameraRequest {
                        camera: Some(camera),
                    })
                    .await
            }
        })
        .buffer_unordered(REGISTER_IN_FLIGHT);
    while let Some(r) = results.next().await {
        r.context("RegisterCamera")?;
    }
    Ok(started.elapsed())
}

fn seeing_request(lon: f64, lat: f64) -> pb::CamerasSeeingRequest {
    pb::CamerasSeeingRequest {
        target: Some(pb::CameraTarget {
            target: Some(pb::camera_target::Target::Point(pb::LonLat { lon, lat })),
        }),
        limit: LIMIT,
    }
}

/// One query at a time: latencies and the mean number of cameras answered.
async fn sequential(channel: &Channel, points: &[(f64, f64)]) -> Result<(Latencies, f64)> {
    let mut client = CameraServiceClient::new(channel.clone());
    let mut latencies = Latencies::new();
    let mut answers = 0usize;
    for &(lon, lat) in points {
        let t = Instant::now();
        let r = client.cameras_seeing(seeing_request(lon, lat)).await?;
        latencies.record(t.elapsed());
        answers += r.into_inner().cameras.len();
    }
    Ok((latencies, answers as f64 / points.len().max(1) as f64))
}

/// `in_flight` callers for `time`, cycling over `points`: queries answered.
async fn concurrent(
    channels: &[Channel],
    points: &Arc<Vec<(f64, f64)>>,
    in_flight: usize,
    time: Duration,
) -> Result<(u64, Duration)> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + time;
    let tasks: Vec<_> = (0..in_flight)
        .map(|t| {
            let mut client = CameraServiceClient::new(channels[t % channels.len()].clone());
            let points = points.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = t;
                while Instant::now() < deadline {
                    let (lon, lat) = points[i % points.len()];
                    client.cameras_seeing(seeing_request(lon, lat)).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += in_flight;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.context("CamerasSeeing task")??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

async fn seeing_at(
    launcher: &Launcher,
    spec: &CameraSpec,
    n: usize,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(n);
    let server = launcher.patrold(&format!("cameras-{label}"), "").await?;
    let channels = server.channels(8).await?;
    let before = server.sample();
    let took = register(&channels, cameras(n, spec.seed)).await?;
    let loaded = server.sample();
    info!(cameras = n, secs = took.as_secs_f64(), "cameras registered");
    report.extra(
        format!("cameras_register_{label}_per_s"),
        n as f64 / took.as_secs_f64().max(1e-9),
        "1/s",
    );
    if let (Some(b), Some(a)) = (before, loaded) {
        report.extra(
            format!("cameras_{label}_rss_bytes_per_camera"),
            a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / n.max(1) as f64,
            "B",
        );
    }
    let city = City::generate(CitySpec::new(spec.seed, 0));
    let where_people = city.centre_weighted_points(spec.queries);
    let uniform = city.query_points(spec.queries);
    // Warm the connection and the server's caches.
    sequential(&channels[0], &where_people[..where_people.len().min(200)]).await?;
    for (kind, points) in [("centre", &where_people), ("uniform", &uniform)] {
        let (lat, answers) = sequential(&channels[0], points).await?;
        let s = lat.summary();
        report.push(Row::lower(
            format!("cameras_seeing_{kind}_{label}_p50_us"),
            format!("CamerasSeeing p50, one at a time, {kind} points ({label} cameras)"),
            "us",
            s.p50_us(),
        ));
        report.push(Row::lower(
            format!("cameras_seeing_{kind}_{label}_p99_us"),
            format!("CamerasSeeing p99, one at a time, {kind} points ({label} cameras)"),
            "us",
            s.p99_us(),
        ));
        report.extra(
            format!("cameras_seeing_{kind}_{label}_answers"),
            answers,
            "count",
        );
        info!(
            cameras = n,
            kind,
            p50_us = s.p50_us(),
            p99_us = s.p99_us(),
            answers,
            "CamerasSeeing one at a time"
        );
    }
    let points = Arc::new(where_people);
    let cpu_before = server.sample();
    let (queries, wall) =
        concurrent(&channels, &points, spec.in_flight, spec.throughput_time).await?;
    let cpu_after = server.sample();
    let qps = queries as f64 / wall.as_secs_f64().max(1e-9);
    report.push(Row::higher(
        format!("cameras_seeing_{label}_qps"),
        format!(
            "CamerasSeeing/s, {} in flight, centre points ({label} cameras)",
            spec.in_flight
        ),
        "1/s",
        qps,
    ));
    if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
        let per_query_us = b.cpu_s_until(&a) / queries.max(1) as f64 * 1e6;
        report.extra(
            format!("cameras_seeing_{label}_server_cpu_us_per_query"),
            per_query_us,
            "us",
        );
        report.extra(
            format!("cameras_seeing_{label}_server_cores"),
            b.cores_until(&a),
            "cores",
        );
        info!(cameras = n, qps, per_query_us, "CamerasSeeing in flight");
    }
    Ok(())
}

/// Counts the non-position events of one `Watch` stream until stopped.
async fn count_events(
    channel: Channel,
    events: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut stream = watch_scan::watch(channel, pb::WatchRequest::default()).await?;
    let mut live = false;
    loop {
        let frame = tokio::select! {
            f = stream.message() => f?,
            _ = stop.changed() => return Ok(()),
        };
        match frame {
            Some(WatchFrame::SnapshotEnd { .. }) => live = true,
            Some(WatchFrame::Other { .. }) if live => {
                events.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
            None => bail!("Watch stream ended"),
        }
    }
}

/// One measured window of the flood: pings accepted/s, server cores, Watch
/// non-position events/s.
struct Window {
    ingest: f64,
    cores: f64,
    events_per_s: f64,
}

async fn window(
    server: &Patrold,
    flood: &Flood,
    events: &AtomicU64,
    length: Duration,
) -> (Duration, Duration, Option<f64>, f64) {
    let from = flood.elapsed();
    let e0 = events.load(Ordering::Relaxed);
    let s0 = server.sample();
    tokio::time::sleep(length).await;
    let s1 = server.sample();
    let e1 = events.load(Ordering::Relaxed);
    let to = flood.elapsed();
    let cores = s0.zip(s1).map(|(a, b)| a.cores_until(&b));
    (
        from,
        to,
        cores,
        (e1 - e0) as f64 / (to - from).as_secs_f64().max(1e-9),
    )
}

async fn follow(launcher: &Launcher, spec: &CameraSpec, report: &mut Report) -> Result<()> {
    let units_label = count_label(spec.follow_units);
    let server = launcher.patrold("cameras-follow", "").await?;
    let load = server.channels(4).await?;
    let mut city = City::generate(CitySpec::new(spec.seed, spec.follow_units));
    register_units(&load, &city.units).await?;
    send_positions(&load, &mut city.units, 1_000).await?;
    // Four PTZ cameras 20-60 m around each followed unit's start.
    let region: Region = city.spec.region;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed ^ 0xf011_0000);
    let followed: Vec<(String, Vec<String>)> = city
        .units
        .iter()
        .take(spec.follows)
        .enumerate()
        .map(|(f, u)| {
            let ids = (0..CAMERAS_PER_FOLLOW)
                .map(|c| format!("follow-{f}-{c}"))
                .collect();
            (u.id.clone(), ids)
        })
        .collect();
    let mut follow_cameras = Vec::new();
    for (f, u) in city.units.iter().take(spec.follows).enumerate() {
        let (x, y) = region.local_m(u.lon, u.lat);
        for c in 0..CAMERAS_PER_FOLLOW {
            let angle = (c as f64 * 90.0 + rng.random_range(0.0..90.0)).to_radians();
            let r = rng.random_range(20.0..60.0);
            let (lon, lat) = region.offset(x + r * angle.sin(), y + r * angle.cos());
            let mut cam = camera(0, lon, lat, &mut rng);
            cam.id = format!("follow-{f}-{c}");
            cam.ptz = true;
            cam.range_m = 300.0;
            cam.fov_deg = 45.0;
            cam.ptz_head = Some(ptz_head(cam.heading_deg));
            follow_cameras.push(cam);
        }
    }
    register(&load, follow_cameras).await?;

    let events = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let screen = tokio::spawn(count_events(
        server.channel().await?,
        events.clone(),
        stop_rx,
    ));
    let ingest = server.channels(spec.clients).await?;
    let flood = Flood::start(
        &ingest,
        std::mem::take(&mut city.units),
        region,
        FloodSpec {
            workers: spec.clients,
            batch: spec.batch,
            seed: spec.seed,
            record_acks: true,
        },
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let without = window(&server, &flood, &events, spec.window).await;
    let mut client = CameraServiceClient::new(load[0].clone());
    for (unit_id, camera_ids) in &followed {
        let r = client
            .follow_unit(pb::FollowUnitRequest {
                unit_id: unit_id.clone(),
                camera_ids: camera_ids.clone(),
                stop: false,
            })
            .await
            .context("FollowUnit")?
            .into_inner();
        if !r.following {
            bail!("{unit_id} is not followed");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with = window(&server, &flood, &events, spec.window).await;
    let out = flood.stop().await?;
    let _ = stop_tx.send(true);
    screen.await.context("Watch task")??;
    let acks = &out.tally.acks;
    let measured = |w: (Duration, Duration, Option<f64>, f64)| Window {
        ingest: flood::rate_between(acks, w.0, w.1),
        cores: w.2.unwrap_or(f64::NAN),
        events_per_s: w.3,
    };
    let (without, with) = (measured(without), measured(with));
    let what = format!("{units_label} units moving, {} followed", spec.follows);
    for (key, w) in [("without", &without), ("with", &with)] {
        report.push(Row::higher(
            format!("cameras_follow_{key}_ingest_pings_per_s"),
            format!("ingest {key} follows ({what})"),
            "1/s",
            w.ingest,
        ));
        report.push(Row::lower(
            format!("cameras_follow_{key}_server_cores"),
            format!("server CPU {key} follows ({what})"),
            "cores",
            w.cores,
        ));
        report.push(Row::higher(
            format!("cameras_follow_{key}_watch_events_per_s"),
            format!("non-position Watch events/s {key} follows ({what})"),
            "1/s",
            w.events_per_s,
        ));
        info!(
            key,
            ingest = w.ingest,
            cores = w.cores,
            events_per_s = w.events_per_s,
            "follow window"
        );
    }
    report.extra(
        "cameras_follow_ingest_failed_calls",
        out.tally.failed() as f64,
        "count",
    );
    report.note(format!(
        "cameras: follow mode with {what}, {} PTZ cameras per followed unit, {} callers x {} pings per call flat out, {} s windows",
        CAMERAS_PER_FOLLOW,
        spec.clients,
        spec.batch,
        spec.window.as_secs_f64()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_cameras_are_ptz_with_heads() {
        let cams = cameras(4_000, 42);
        assert_eq!(cams.len(), 4_000);
        let ptz = cams.iter().filter(|c| c.ptz).count();
        assert!((800..1_200).contains(&ptz), "{ptz} PTZ");
        for c in &cams {
            assert_eq!(c.ptz, c.ptz_head.is_some(), "{}", c.id);
            assert!(c.fov_deg > 0.0 && c.fov_deg <= 100.0);
            assert!(c.range_m >= 30.0 && c.range_m <= 300.0);
            assert!(Region::HELSINKI.contains(c.lon, c.lat), "{}", c.id);
        }
        // Placed like units: most of them in the dense centre.
        let central = cams
            .iter()
            .filter(|c| {
                let (x, y) = Region::HELSINKI.local_m(c.lon, c.lat);
                x.hypot(y) < 5_000.0
            })
            .count();
        assert!(central > 2_400, "{central} central");
        assert_eq!(cameras(10, 42), cameras(10, 42));
        assert_ne!(cameras(10, 42), cameras(10, 43));
    }
}
