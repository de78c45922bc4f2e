//! The alternative a command centre would build on Redis, run on the same
//! machine in the same run: positions in a GEO set updated with pipelined
//! `GEOADD`, and "nearest available" answered from a second GEO set that holds
//! only available units (kept up to date on status changes, which favours
//! Redis: no filtering at query time) with
//! `GEOSEARCH key FROMLONLAT lon lat BYRADIUS r m ASC COUNT 5`, starting at
//! r = 250 m and doubling until 5 are found.
//!
//! The bench starts its own `redis-server` on a free port (never the system
//! one) with persistence off, and kills it when done.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::city::{Region, SimUnit};
use crate::ingest::{IngestSpec, split_units};
use crate::proc_stats::{self, ProcSample};
use crate::report::Latencies;
use crate::server::free_port;

/// Every unit's latest position.
pub const POSITIONS_KEY: &str = "patrol:positions";
/// Available units only.
pub const AVAILABLE_KEY: &str = "patrol:available";
/// First search radius, metres.
pub const START_RADIUS_M: f64 = 250.0;
/// The search gives up (returning fewer than k) past this radius, metres: far
/// beyond the 40 km region's diagonal.
pub const MAX_RADIUS_M: f64 = 128_000.0;

/// A `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` on a free port with persistence off and waits for
    /// it to answer PING.
    pub async fn start(binary: &Path, workdir: &Path) -> Result<RedisServer> {
        Self::start_with(binary, workdir, false).await
    }

    /// Starts one with AOF on, `appendfsync everysec`, in its own directory
    /// (what `deploy/redis.conf` sets), for patrold's durable mode.
    pub async fn start_durable(binary: &Path, workdir: &Path) -> Result<RedisServer> {
        Self::start_with(binary, workdir, true).await
    }

    async fn start_with(binary: &Path, workdir: &Path, aof: bool) -> Result<RedisServer> {
        let port = free_port()?;
        let dir = if aof {
            let dir = workdir.join(format!("redis-aof-{port}"));
            std::fs::create_dir_all(&dir)?;
            dir
        } else {
            workdir.to_path_buf()
        };
        let log = workdir.join(format!("redis-{port}.log"));
        let child = Command::new(binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if aof { "yes" } else { "no" }])
            .args(["--appendfsync", "everysec"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut server = RedisServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "redis-server exited with {status}: {}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            if let Ok(mut con) = server.connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("redis-server on port {port} did not answer PING");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection (its own TCP connection).
    pub async fn connection(&self) -> Result<MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(60)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    pub fn sample(&self) -> Option<ProcSample> {
        proc_stats::sample(self.pid())
    }

    /// `used_memory` from INFO memory, bytes.
    pub async fn used_memory(&self) -> Result<u64> {
        let mut con = self.connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut con)
            .await?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no used_memory in INFO memory")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds units to a GEO set, many members per `GEOADD`, pipelined.
pub async fn bulk_geoadd<'a>(
    con: &mut MultiplexedConnection,
    key: &str,
    units: impl Iterator<Item = &'a SimUnit>,
) -> Result<()> {
    let units: Vec<&SimUnit> = units.collect();
    for chunk in units.chunks(50_000) {
        let mut pipe = redis::pipe();
        for cmd_units in chunk.chunks(1_000) {
            let cmd = pipe.cmd("GEOADD").arg(key);
            for u in cmd_units {
                cmd.arg(u.lon).arg(u.lat).arg(&u.id);
            }
            pipe.ignore();
        }
        pipe.query_async::<()>(con).await?;
    }
    Ok(())
}

/// Loads the query state: every unit in the positions set, and the available
/// set as status changes would leave it (all added, then the busy ones
/// removed with `ZREM`).
pub async fn load_state(con: &mut MultiplexedConnection, units: &[SimUnit]) -> Result<()> {
    redis::cmd("DEL")
        .arg(POSITIONS_KEY)
        .arg(AVAILABLE_KEY)
        .query_async::<()>(con)
        .await?;
    bulk_geoadd(con, POSITIONS_KEY, units.iter()).await?;
    bulk_geoadd(con, AVAILABLE_KEY, units.iter()).await?;
    let busy: Vec<&SimUnit> = units.iter().filter(|u| u.busy).collect();
    for chunk in busy.chunks(50_000) {
        let mut pipe = redis::pipe();
        for c in chunk.chunks(1_000) {
            let cmd = pipe.cmd("ZREM").arg(AVAILABLE_KEY);
            for u in c {
                cmd.arg(&u.id);
            }
            pipe.ignore();
        }
        pipe.query_async::<()>(con).await?;
    }
    Ok(())
}

/// What the Redis ingest did.
#[derive(Debug, Clone, Default)]
pub struct RedisIngestOutcome {
    /// GEOADD commands executed (one per ping).
    pub commands: u64,
    pub elapsed: Duration,
}

impl RedisIngestOutcome {
    pub fn rate(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How pings become Redis commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoaddStyle {
    /// One `GEOADD positions lon lat id` per ping, `batch` of them pipelined:
    /// what the issue compares against.
    PipelinedPerPing,
    /// One `GEOADD positions lon lat id lon lat id ...` per batch: Redis's
    /// cheapest way to take the same load, shown for context.
    MultiMember,
}

/// The same position load as patrol's ingest: `clients` connections, each
/// moving its share of the units and sending `batch` pings at a time (one
/// round trip in flight per connection) for the same time.
pub async fn ingest(
    server: &RedisServer,
    units: &mut Vec<SimUnit>,
    region: Region,
    spec: &IngestSpec,
    style: GeoaddStyle,
) -> Result<RedisIngestOutcome> {
    let clients = spec.clients.max(1).min(units.len().max(1));
    let parts = split_units(std::mem::take(units), clients);
    let mut conns = Vec::new();
    for _ in 0..parts.len() {
        conns.push(server.connection().await?);
    }
    let start = Instant::now();
    let deadline = start + spec.duration;
    let batch = spec.batch.max(1);
    let mut tasks = Vec::new();
    for (i, (mut part, mut con)) in parts.into_iter().zip(conns).enumerate() {
        let seed = spec.seed ^ (i as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut cursor = 0usize;
            let mut sent = 0u64;
            let mut result = Ok(());
            while Instant::now() < deadline && !part.is_empty() {
                let mut pipe = redis::pipe();
                let len = part.len();
                if style == GeoaddStyle::MultiMember {
                    pipe.cmd("GEOADD").arg(POSITIONS_KEY);
                }
                for _ in 0..batch {
                    let u = &mut part[cursor];
                    cursor = (cursor + 1) % len;
                    u.step(&mut rng, &region);
                    if style == GeoaddStyle::PipelinedPerPing {
                        pipe.cmd("GEOADD").arg(POSITIONS_KEY);
                    }
                    pipe.arg(u.lon).arg(u.lat).arg(&u.id);
                    if style == GeoaddStyle::PipelinedPerPing {
                        pipe.ignore();
                    }
                }
                if style == GeoaddStyle::MultiMember {
                    pipe.ignore();
                }
                if let Err(e) = pipe.query_async::<()>(&mut con).await {
                    result = Err(e);
                    break;
                }
                sent += batch as u64;
            }
            (part, sent, result, Instant::now())
        }));
    }
    let mut out = RedisIngestOutcome::default();
    let mut end = start;
    let mut back = Vec::new();
    let mut first_err = None;
    for t in tasks {
        let (part, sent, result, at) = t.await?;
        back.push(part);
        out.commands += sent;
        end = end.max(at);
        if let Err(e) = result {
            first_err.get_or_insert(e);
        }
    }
    *units = back.into_iter().flatten().collect();
    if let Some(e) = first_err {
        return Err(e).context("pipelined GEOADD failed");
    }
    out.elapsed = end - start;
    Ok(out)
}

/// The radii a search tries: 250 m, doubling, up to [`MAX_RADIUS_M`].
pub fn radii() -> impl Iterator<Item = f64> {
    std::iter::successors(Some(START_RADIUS_M), |r| Some(r * 2.0))
        .take_while(|r| *r <= MAX_RADIUS_M)
}

/// The `k` nearest available units the way a Redis user must find them:
/// `GEOSEARCH ... BYRADIUS r m ASC COUNT k` with r doubling from 250 m until k
/// are found. Returns the ids, nearest first, and how many searches it took.
pub async fn nearest_available(
    con: &mut MultiplexedConnection,
    lon: f64,
    lat: f64,
    k: usize,
) -> Result<(Vec<String>, u32)> {
    let mut rounds = 0;
    let mut found = Vec::new();
    for r in radii() {
        rounds += 1;
        found = redis::cmd("GEOSEARCH")
            .arg(AVAILABLE_KEY)
            .arg("FROMLONLAT")
            .arg(lon)
            .arg(lat)
            .arg("BYRADIUS")
            .arg(r)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(k)
            .query_async(con)
            .await?;
        if found.len() >= k {
            break;
        }
    }
    Ok((found, rounds))
}

/// The floor under any Redis call on this machine: `PING`, one at a time.
pub async fn ping_floor(server: &RedisServer, calls: usize) -> Result<Latencies> {
    let mut con = server.connection().await?;
    let mut lat = Latencies::new();
    for i in 0..calls + 50 {
        let t = Instant::now();
        redis::cmd("PING").query_async::<String>(&mut con).await?;
        if i >= 50 {
            lat.record(t.elapsed());
        }
    }
    Ok(lat)
}

/// Queries one after another on one connection: latency, each query's nearest
/// unit, and the mean number of searches per query.
pub async fn sequential(
    server: &RedisServer,
    points: &[(f64, f64)],
    k: usize,
) -> Result<(Latencies, Vec<Option<String>>, f64)> {
    let mut con = server.connection().await?;
    let mut lat = Latencies::new();
    let mut top = Vec::with_capacity(points.len());
    let mut rounds = 0u64;
    // warm-up
    for &(lon, la) in points.iter().take(100) {
        nearest_available(&mut con, lon, la, k).await?;
    }
    for &(lon, la) in points {
        let t = Instant::now();
        let (ids, r) = nearest_available(&mut con, lon, la, k).await?;
        lat.record(t.elapsed());
        rounds += u64::from(r);
        top.push(ids.into_iter().next());
    }
    Ok((lat, top, rounds as f64 / points.len().max(1) as f64))
}

/// `tasks` closed-loop clients over `connections` connections for `duration`:
/// queries per second and their latency under load.
pub async fn concurrent(
    server: &RedisServer,
    points: &[(f64, f64)],
    k: usize,
    tasks: usize,
    connections: usize,
    duration: Duration,
) -> Result<(f64, Latencies)> {
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        conns.push(server.connection().await?);
    }
    let points = std::sync::Arc::new(points.to_vec());
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for t in 0..tasks.max(1) {
        let mut con = conns[t % conns.len()].clone();
        let points = points.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            let mut i = t * 7919;
            while Instant::now() < deadline {
                let (lon, la) = points[i % points.len()];
                i += 1;
                let q = Instant::now();
                nearest_available(&mut con, lon, la, k).await?;
                lat.record(q.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Latencies::new();
    for h in handles {
        all.merge(&h.await??);
    }
    let qps = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((qps, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::{City, CitySpec, Kind};

    #[test]
    fn radius_schedule_doubles_from_250_m() {
        let r: Vec<f64> = radii().collect();
        assert_eq!(r[..4], [250.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(*r.last().unwrap(), 128_000.0);
    }

    fn unit(id: &str, region: &Region, east_m: f64, busy: bool) -> SimUnit {
        let (lon, lat) = region.offset(east_m, 0.0);
        SimUnit {
            id: id.into(),
            kind: Kind::Car,
            lon,
            lat,
            heading_deg: 0.0,
            last_step_m: 0.0,
            last_fix_ms: 0,
            busy,
        }
    }

    fn redis_binary() -> Option<PathBuf> {
        let p = PathBuf::from("/usr/bin/redis-server");
        p.is_file().then_some(p)
    }

    #[tokio::test]
    async fn doubling_search_finds_the_nearest_available_against_a_real_redis() {
        let Some(bin) = redis_binary() else {
            eprintln!("skipping: no redis-server");
            return;
        };
        let dir = std::env::temp_dir().join(format!("patrol-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let server = RedisServer::start(&bin, &dir).await.unwrap();
        let region = Region::HELSINKI;
        // East of the centre: 100 m busy, 300 m, 700 m, 1.5 km, 3 km, 3.1 km,
        // 9 km available.
        let units = vec![
            unit("busy-100", &region, 100.0, true),
            unit("a-300", &region, 300.0, false),
            unit("a-700", &region, 700.0, false),
            unit("a-1500", &region, 1_500.0, false),
            unit("a-3000", &region, 3_000.0, false),
            unit("a-3100", &region, 3_100.0, false),
            unit("a-9000", &region, 9_000.0, false),
        ];
        let mut con = server.connection().await.unwrap();
        load_state(&mut con, &units).await.unwrap();
        let (ids, rounds) = nearest_available(&mut con, region.centre_lon, region.centre_lat, 5)
            .await
            .unwrap();
        assert_eq!(ids, ["a-300", "a-700", "a-1500", "a-3000", "a-3100"]);
        // 250 (0), 500 (1), 1000 (2), 2000 (3), 4000 (5)
        assert_eq!(rounds, 5);
        let (ids, rounds) = nearest_available(&mut con, region.centre_lon, region.centre_lat, 1)
            .await
            .unwrap();
        assert_eq!((ids, rounds), (vec!["a-300".to_string()], 2));
        // Fewer than k in the whole set: gives up at the largest radius.
        let (ids, rounds) = nearest_available(&mut con, region.centre_lon, region.centre_lat, 10)
            .await
            .unwrap();
        assert_eq!(ids.len(), 6);
        assert_eq!(rounds as usize, radii().count());

        // The ingest writes one GEOADD per ping and returns every unit.
        let mut city = City::generate(CitySpec::new(4, 50));
        let spec = IngestSpec {
            clients: 3,
            batch: 10,
            duration: Duration::from_millis(50),
            rate: None,
            seed: 1,
        };
        let out = ingest(
            &server,
            &mut city.units,
            region,
            &spec,
            GeoaddStyle::PipelinedPerPing,
        )
        .await
        .unwrap();
        assert!(out.commands > 0 && out.commands % 10 == 0);
        assert_eq!(city.units.len(), 50);
        let n: u64 = redis::cmd("ZCARD")
            .arg(POSITIONS_KEY)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(n > 7 && n <= 57, "{n}");
        let before = city.units.clone();
        let out = ingest(
            &server,
            &mut city.units,
            region,
            &spec,
            GeoaddStyle::MultiMember,
        )
        .await
        .unwrap();
        assert!(out.commands > 0 && out.commands % 10 == 0);
        // Redis holds the last position sent for a unit.
        let moved = city
            .units
            .iter()
            .zip(&before)
            .find(|(a, b)| a.lon != b.lon)
            .map(|(a, _)| a.clone())
            .expect("some unit moved");
        let pos: Vec<Option<(f64, f64)>> = redis::cmd("GEOPOS")
            .arg(POSITIONS_KEY)
            .arg(&moved.id)
            .query_async(&mut con)
            .await
            .unwrap();
        let (lon, lat) = pos[0].expect("unit is in the set");
        assert!((lon - moved.lon).abs() < 1e-5 && (lat - moved.lat).abs() < 1e-5);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
