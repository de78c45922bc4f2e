//! `patrol-bench`: parses the command line, runs the benchmark, prints the
//! table (stdout, or stderr with `--json`) and the JSON object (stdout).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use patrol_bench::cameras::CameraSpec;
use patrol_bench::checkpoint_stall::CheckpointSpec;
use patrol_bench::city::Centre;
use patrol_bench::connect_storm::StormSpec;
use patrol_bench::report::Report;
use patrol_bench::run::{Options, Phases, run};
use patrol_bench::secure::{SecureSpec, Security};
use patrol_bench::server::{ServerSource, default_patrold};
use patrol_bench::urgent::UrgentSpec;

/// Counts live heap bytes, for the in-process core's memory per unit.
#[global_allocator]
static ALLOC: patrol_bench::heap::CountingAlloc = patrol_bench::heap::CountingAlloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Ingest,
    Freshness,
    Recommend,
    Dispatch,
    Redis,
    /// Ingest and ping-to-stream latency, in memory vs with Redis on.
    Durability,
    /// CreateIncident and Dispatch latency under a ping flood, Redis on, vs
    /// without the flood (slow: not in the default list).
    Urgent,
    /// Ingest while Watch screens connect at once, in memory (not in the
    /// default list).
    #[value(name = "connect_storm", alias = "connect-storm")]
    ConnectStorm,
    /// The longest Redis stall while checkpoints are written, Redis on (slow:
    /// not in the default list).
    #[value(name = "checkpoint_stall", alias = "checkpoint-stall")]
    CheckpointStall,
    /// CamerasSeeing at 10k/100k/1M cameras and the cost of follow mode,
    /// in memory (not in the default list).
    Cameras,
    /// Ingest and Recommend on plaintext without auth, with bearer tokens,
    /// TLS and mutual TLS, a fresh server each (not in the default list).
    Secure,
}

/// Benchmarks patrold through its gRPC API against Redis GEO on the same
/// machine, in the same run.
#[derive(Debug, Parser)]
#[command(name = "patrol-bench", version)]
struct Args {
    /// A reduced run (10k units, short phases) that finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object (metric -> {value, unit}) on stdout; the table
    /// goes to stderr.
    #[arg(long)]
    json: bool,
    /// Use a running patrold at this URL (e.g. http://127.0.0.1:50051)
    /// instead of spawning one. A fresh server per unit count gives cleaner
    /// memory figures.
    #[arg(long)]
    server: Option<String>,
    /// The pid of the server given with --server, to read its CPU and memory.
    #[arg(long, requires = "server")]
    server_pid: Option<u32>,
    /// The patrold binary to spawn (default: next to this executable).
    #[arg(long, conflicts_with = "server")]
    patrold: Option<PathBuf>,
    /// A config file for the spawned patrold (default: one the bench writes,
    /// setting the coalescing interval and a long offline age).
    #[arg(long, conflicts_with = "server")]
    patrold_config: Option<PathBuf>,
    /// Skip everything that needs patrold: only the core's nearest query and
    /// the Redis side run.
    #[arg(long, conflicts_with_all = ["server", "patrold"])]
    no_patrold: bool,
    /// The redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Registered unit counts (default 10000,100000,1000000; quick: 10000).
    #[arg(long, value_delimiter = ',')]
    units: Option<Vec<usize>>,
    /// Unit counts for the core's nearest query (default: the --units, plus
    /// 100000 in quick mode).
    #[arg(long, value_delimiter = ',')]
    core_units: Option<Vec<usize>>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Concurrent ingest streams (and Redis connections).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Pings per batch (and GEOADDs per pipeline).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Phases to run.
    #[arg(long, value_delimiter = ',', default_values = ["ingest", "freshness", "recommend", "dispatch", "redis", "durability"])]
    phases: Vec<Phase>,
    /// Seconds per timed phase (default 10; quick: 2).
    #[arg(long)]
    seconds: Option<f64>,
    /// The server's Watch coalescing interval, ms (written to the spawned
    /// server's config).
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Unit count for freshness and dispatch (default 100000; quick: 10000);
    /// the nearest of --units is used.
    #[arg(long)]
    freshness_units: Option<usize>,
    /// Ingest rate during freshness, pings/s.
    #[arg(long, default_value_t = 100_000.0)]
    freshness_rate: f64,
    /// Watch subscriber counts for freshness.
    #[arg(long, value_delimiter = ',', default_values = ["1", "100"])]
    subscribers: Vec<usize>,
    /// Recommend query points per pass (default 5000; quick: 2000).
    #[arg(long)]
    queries: Option<usize>,
    /// Recommend requests in flight for the throughput figure.
    #[arg(long, default_value_t = 32)]
    recommend_tasks: usize,
    /// Start the dense centre's units on central Helsinki's real street network
    /// (OpenStreetMap) instead of a Gaussian cloud.
    #[arg(long)]
    helsinki: bool,
    /// The OpenStreetMap extract for --helsinki [default data/helsinki.osm.pbf].
    #[arg(long, requires = "helsinki")]
    helsinki_map: Option<PathBuf>,
    /// The spawned patrold routes over the --helsinki map (`map` in its
    /// config): Recommend ranks by network ETA. Recommend's query points
    /// are then placed where the units are (the centre's share on the
    /// street network), not uniform over the region.
    #[arg(long, requires = "helsinki")]
    network: bool,
    /// Extra ingest runs as CLIENTSxBATCH pairs, both systems, at
    /// --sweep-units (default 1x100,4x100,16x100,1x1000,4x1000,16x1000; quick:
    /// none; "none" for none).
    #[arg(long, value_delimiter = ',')]
    sweep: Option<Vec<String>>,
    /// Unit count for the sweep; the nearest of --units is used.
    #[arg(long, default_value_t = 100_000)]
    sweep_units: usize,
    /// Seconds per sweep point.
    #[arg(long, default_value_t = 3.0)]
    sweep_seconds: f64,
    /// Run everything this many times and report each figure's median.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Also write the tables as GitHub markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Record the server with `perf record` during each measured phase
    /// (ingest, recommend, freshness) into this directory.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Dispatch round trips (default 500; quick: 100).
    #[arg(long)]
    dispatch_rounds: Option<usize>,
    /// Registered units for `urgent` (default 100000; quick: 10000).
    #[arg(long, help_heading = "urgent")]
    urgent_units: Option<usize>,
    /// CreateIncident calls per second, issued on a fixed schedule.
    #[arg(long, default_value_t = 20.0, help_heading = "urgent")]
    urgent_rate: f64,
    /// Dispatch an available unit to every Nth incident (0: none).
    #[arg(long, default_value_t = 2, help_heading = "urgent")]
    urgent_dispatch_every: usize,
    /// Seconds of incidents without the flood, and again with it (default 10;
    /// quick: 3).
    #[arg(long, help_heading = "urgent")]
    urgent_seconds: Option<f64>,
    /// Concurrent flood callers, one ReportPositions call in flight each.
    #[arg(long, default_value_t = 256, help_heading = "urgent")]
    urgent_flood_callers: usize,
    /// Connections the flood callers share.
    #[arg(long, default_value_t = 16, help_heading = "urgent")]
    urgent_flood_connections: usize,
    /// Pings per flood call.
    #[arg(long, default_value_t = 100, help_heading = "urgent")]
    urgent_flood_batch: usize,
    /// The server's redis.max_in_flight: low, so the flood reaches refusal.
    #[arg(long, default_value_t = 16, help_heading = "urgent")]
    urgent_max_in_flight: u64,
    /// The server's redis.queue_wait_ms.
    #[arg(long, default_value_t = 50, help_heading = "urgent")]
    urgent_queue_wait_ms: u64,
    /// Registered units for `connect_storm` (default 100000; quick: 10000).
    #[arg(long, help_heading = "connect_storm")]
    storm_units: Option<usize>,
    /// Watch screens that connect at once.
    #[arg(long, default_value_t = 100, help_heading = "connect_storm")]
    storm_subscribers: usize,
    /// Seconds of steady ingest measured before the storm (default 3; quick: 2).
    #[arg(long, help_heading = "connect_storm")]
    storm_seconds: Option<f64>,
    /// Registered camera counts for `cameras` (default 10000,100000,1000000;
    /// quick: 10000).
    #[arg(long, value_delimiter = ',', help_heading = "cameras")]
    camera_counts: Option<Vec<usize>>,
    /// CamerasSeeing queries one at a time, per kind of point (default 2000;
    /// quick: 500).
    #[arg(long, help_heading = "cameras")]
    camera_queries: Option<usize>,
    /// CamerasSeeing requests in flight for the throughput figure.
    #[arg(long, default_value_t = 32, help_heading = "cameras")]
    camera_in_flight: usize,
    /// Seconds of the throughput pass (default 5; quick: 2).
    #[arg(long, help_heading = "cameras")]
    camera_seconds: Option<f64>,
    /// Moving units during the follow measurement (default 10000).
    #[arg(long, help_heading = "cameras")]
    follow_units: Option<usize>,
    /// Units followed (0: no follow measurement).
    #[arg(long, default_value_t = 100, help_heading = "cameras")]
    follows: usize,
    /// Seconds of each follow window, without and with (default 5; quick: 2).
    #[arg(long, help_heading = "cameras")]
    follow_seconds: Option<f64>,
    /// Registered units for `checkpoint_stall` (default 1000000; quick: 100000).
    #[arg(long, help_heading = "checkpoint_stall")]
    checkpoint_units: Option<usize>,
    /// Seconds measured after loading (default 40; quick: 15).
    #[arg(long, help_heading = "checkpoint_stall")]
    checkpoint_seconds: Option<f64>,
    /// The server's redis.checkpoint_interval_ms (default 5000; quick: 2000).
    #[arg(long, help_heading = "checkpoint_stall")]
    checkpoint_interval_ms: Option<u64>,
    /// The server's redis.keep_ms: short, so every checkpoint trims the log.
    #[arg(long, default_value_t = 10_000, help_heading = "checkpoint_stall")]
    checkpoint_keep_ms: u64,
    /// Registered units for `secure` (default 10000).
    #[arg(long, default_value_t = 10_000, help_heading = "secure")]
    secure_units: usize,
    /// The security settings `secure` measures, in order; the first is the
    /// baseline of the ratios.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["plaintext", "bearer", "tls", "mtls"], help_heading = "secure")]
    secure_configs: Vec<Security>,
    /// Seconds of ingest per setting (default 5; quick: 2).
    #[arg(long, help_heading = "secure")]
    secure_seconds: Option<f64>,
    /// Measured Recommend calls per setting (default 5000; quick: 1000).
    #[arg(long, help_heading = "secure")]
    secure_calls: Option<usize>,
    /// Concurrent Recommend callers, one call at a time each.
    #[arg(long, default_value_t = 4, help_heading = "secure")]
    secure_callers: usize,
}

/// "4x500" -> (4, 500).
fn parse_sweep_point(p: &str) -> Result<(usize, usize)> {
    let (c, b) = p
        .split_once('x')
        .with_context(|| format!("sweep point {p:?}: expected CLIENTSxBATCH, e.g. 4x500"))?;
    let c: usize = c
        .trim()
        .parse()
        .with_context(|| format!("sweep point {p:?}: clients"))?;
    let b: usize = b
        .trim()
        .parse()
        .with_context(|| format!("sweep point {p:?}: batch"))?;
    anyhow::ensure!(
        c > 0 && b > 0,
        "sweep point {p:?}: clients and batch must be positive"
    );
    Ok((c, b))
}

fn options(args: &Args) -> Result<Options> {
    let q = args.quick;
    let units = args.units.clone().unwrap_or_else(|| {
        if q {
            vec![10_000]
        } else {
            vec![10_000, 100_000, 1_000_000]
        }
    });
    let core_units = args.core_units.clone().unwrap_or_else(|| {
        let mut c = units.clone();
        if q && !c.contains(&100_000) {
            c.push(100_000);
        }
        c
    });
    let has = |p| args.phases.contains(&p);
    let phases = Phases {
        ingest: has(Phase::Ingest),
        freshness: has(Phase::Freshness),
        recommend: has(Phase::Recommend),
        dispatch: has(Phase::Dispatch),
        redis: has(Phase::Redis),
        durability: has(Phase::Durability),
        urgent: has(Phase::Urgent),
        connect_storm: has(Phase::ConnectStorm),
        checkpoint_stall: has(Phase::CheckpointStall),
        cameras: has(Phase::Cameras),
        secure: has(Phase::Secure),
    };
    let needs_patrold = !args.no_patrold
        && (phases.ingest
            || phases.recommend
            || phases.freshness
            || phases.dispatch
            || phases.durability
            || phases.urgent
            || phases.connect_storm
            || phases.checkpoint_stall
            || phases.cameras
            || phases.secure);
    let server = match &args.server {
        Some(url) => ServerSource::Connect {
            url: url.clone(),
            pid: args.server_pid,
        },
        None => ServerSource::Spawn {
            patrold: match &args.patrold {
                Some(p) => p.clone(),
                None if needs_patrold => default_patrold()?,
                None => PathBuf::from("patrold"),
            },
            config: args.patrold_config.clone(),
        },
    };
    let map_path = args
        .helsinki_map
        .clone()
        .unwrap_or_else(patrol_sim::default_map_path);
    let network_map = args.network.then(|| map_path.clone());
    let centre = if args.helsinki {
        let path = map_path.clone();
        let map = patrol_sim::osm::CityMap::load(&path)
            .with_context(|| format!("loading {}", path.display()))?;
        Centre::Network(Arc::new(map))
    } else {
        Centre::Gaussian { sigma_m: 1_500.0 }
    };
    let sweep = match &args.sweep {
        Some(points) => points
            .iter()
            .filter(|p| p.as_str() != "none")
            .map(|p| parse_sweep_point(p))
            .collect::<Result<Vec<_>>>()?,
        None if q => Vec::new(),
        None => vec![
            (1, 100),
            (4, 100),
            (16, 100),
            (1, 1000),
            (4, 1000),
            (16, 1000),
        ],
    };
    let workdir = std::env::temp_dir().join(format!("patrol-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    Ok(Options {
        quick: q,
        units,
        core_units,
        seed: args.seed,
        clients: args.clients.max(1),
        batch: args.batch.max(1),
        phases,
        server,
        use_patrold: needs_patrold,
        redis_server: args.redis_server.clone(),
        phase_time: Duration::from_secs_f64(args.seconds.unwrap_or(if q { 2.0 } else { 10.0 })),
        interval_ms: args.interval_ms,
        freshness_units: args
            .freshness_units
            .unwrap_or(if q { 10_000 } else { 100_000 }),
        freshness_rate: args.freshness_rate,
        subscribers: args.subscribers.clone(),
        queries: args.queries.unwrap_or(if q { 2_000 } else { 5_000 }),
        recommend_tasks: args.recommend_tasks.max(1),
        dispatch_rounds: args.dispatch_rounds.unwrap_or(if q { 100 } else { 500 }),
        workdir,
        centre,
        network_map,
        sweep,
        profile: args.profile.clone(),
        sweep_units: args.sweep_units,
        sweep_time: Duration::from_secs_f64(args.sweep_seconds),
        urgent_units: args
            .urgent_units
            .unwrap_or(if q { 10_000 } else { 100_000 }),
        urgent: UrgentSpec {
            rate: args.urgent_rate,
            dispatch_every: args.urgent_dispatch_every,
            duration: secs(args.urgent_seconds, if q { 3.0 } else { 10.0 }),
            flood_workers: args.urgent_flood_callers.max(1),
            flood_connections: args.urgent_flood_connections.max(1),
            flood_batch: args.urgent_flood_batch.max(1),
            max_in_flight: args.urgent_max_in_flight.max(1),
            queue_wait_ms: args.urgent_queue_wait_ms,
            seed: args.seed,
        },
        storm_units: args.storm_units.unwrap_or(if q { 10_000 } else { 100_000 }),
        storm: StormSpec {
            subscribers: args.storm_subscribers,
            steady: secs(args.storm_seconds, if q { 2.0 } else { 3.0 }),
            clients: args.clients.max(1),
            batch: args.batch.max(1),
            seed: args.seed,
        },
        checkpoint_units: args
            .checkpoint_units
            .unwrap_or(if q { 100_000 } else { 1_000_000 }),
        checkpoint: CheckpointSpec {
            duration: secs(args.checkpoint_seconds, if q { 15.0 } else { 40.0 }),
            interval_ms: args
                .checkpoint_interval_ms
                .unwrap_or(if q { 2_000 } else { 5_000 }),
            keep_ms: args.checkpoint_keep_ms,
            clients: args.clients.max(1),
            batch: args.batch.max(1),
            seed: args.seed,
        },
        cameras: CameraSpec {
            counts: args.camera_counts.clone().unwrap_or_else(|| {
                if q {
                    vec![10_000]
                } else {
                    vec![10_000, 100_000, 1_000_000]
                }
            }),
            queries: args.camera_queries.unwrap_or(if q { 500 } else { 2_000 }),
            in_flight: args.camera_in_flight.max(1),
            throughput_time: secs(args.camera_seconds, if q { 2.0 } else { 5.0 }),
            follow_units: args.follow_units.unwrap_or(10_000),
            follows: args.follows,
            window: secs(args.follow_seconds, if q { 2.0 } else { 5.0 }),
            clients: args.clients.max(1),
            batch: args.batch.max(1),
            seed: args.seed,
        },
        secure_units: args.secure_units.max(1),
        secure: SecureSpec {
            configs: args.secure_configs.clone(),
            clients: args.clients.max(1),
            batch: args.batch.max(1),
            duration: secs(args.secure_seconds, if q { 2.0 } else { 5.0 }),
            calls: args.secure_calls.unwrap_or(if q { 1_000 } else { 5_000 }),
            callers: args.secure_callers.max(1),
            seed: args.seed,
        },
    })
}

/// `given` seconds, or `default`.
fn secs(given: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(given.unwrap_or(default).max(0.001))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let opts = options(&args)?;
    let mut runs = Vec::new();
    for i in 0..args.runs.max(1) {
        if args.runs > 1 {
            tracing::info!(run = i + 1, of = args.runs, "benchmark run");
        }
        let result = run(&opts).await;
        if result.is_err() {
            eprintln!("logs kept in {}", opts.workdir.display());
        }
        runs.push(result?);
    }
    let _ = std::fs::remove_dir_all(&opts.workdir);
    let report = if runs.len() == 1 {
        runs.remove(0)
    } else {
        Report::median(&runs)
    };
    if let Some(path) = &args.markdown {
        std::fs::write(path, report.markdown())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        eprint!("{}", report.table());
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
