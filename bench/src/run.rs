//! The run: for each unit count, a fresh patrold and a fresh redis-server get
//! the same city; every phase measures both sides and the report pairs them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tracing::{info, warn};

use crate::city::{Centre, City, CitySpec, SimUnit};
use crate::ingest::IngestSpec;
use crate::load::{mark_busy, register_units, send_positions, unix_ms};
use crate::proc_stats::{self, ProcSample};
use crate::redis_alt::{self, GeoaddStyle, RedisServer};
use crate::report::{Better, Goal, On, Report, Row, Target, count_label};
use crate::server::{Patrold, ServerSettings, ServerSource};
use crate::{dispatch, durability, freshness, heap, ingest, profile, recommend};

/// Which parts of the benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub ingest: bool,
    pub freshness: bool,
    pub recommend: bool,
    pub dispatch: bool,
    pub redis: bool,
    pub durability: bool,
}

impl Phases {
    pub const ALL: Phases = Phases {
        ingest: true,
        freshness: true,
        recommend: true,
        dispatch: true,
        redis: true,
        durability: true,
    };
}

/// Everything a run needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Registered unit counts for ingest, memory, recommend and Redis.
    pub units: Vec<usize>,
    /// Unit counts for the core-only nearest query.
    pub core_units: Vec<usize>,
    pub seed: u64,
    pub clients: usize,
    pub batch: usize,
    pub phases: Phases,
    pub server: ServerSource,
    /// False: skip everything that needs patrold (core and Redis only).
    pub use_patrold: bool,
    pub redis_server: PathBuf,
    /// Length of each timed phase (ingest, throughput, freshness).
    pub phase_time: Duration,
    /// Watch coalescing interval the server is configured with, ms.
    pub interval_ms: u64,
    /// Unit count at which freshness and dispatch run.
    pub freshness_units: usize,
    /// Ingest rate during freshness, pings/s.
    pub freshness_rate: f64,
    /// Watch subscriber counts.
    pub subscribers: Vec<usize>,
    /// Recommend query points per pass.
    pub queries: usize,
    /// Recommend requests in flight for throughput.
    pub recommend_tasks: usize,
    pub dispatch_rounds: usize,
    pub workdir: PathBuf,
    /// Where the dense centre's units start.
    pub centre: Centre,
    /// Extra ingest runs (clients, batch) at `sweep_units`, both systems.
    pub sweep: Vec<(usize, usize)>,
    pub sweep_units: usize,
    /// Length of each sweep point.
    pub sweep_time: Duration,
    /// Where to write `perf record` profiles of the server per phase.
    pub profile: Option<PathBuf>,
}

/// Whether the ingest sweep runs at this unit count: the one of `--units`
/// nearest to `sweep_units`.
fn sweep_here(opts: &Options, n: usize) -> bool {
    !opts.sweep.is_empty() && nearest(&opts.units, opts.sweep_units) == n
}

fn nearest(units: &[usize], want: usize) -> usize {
    units
        .iter()
        .copied()
        .min_by_key(|&n| n.abs_diff(want))
        .unwrap_or(want)
}

impl Options {
    /// The unpaced ingest load of the timed phases.
    fn ingest_spec(&self) -> IngestSpec {
        IngestSpec {
            clients: self.clients,
            batch: self.batch,
            duration: self.phase_time,
            rate: None,
            seed: self.seed,
        }
    }

    fn city(&self, units: usize) -> City {
        let mut spec = CitySpec::new(self.seed, units);
        spec.centre = self.centre.clone();
        City::generate(spec)
    }
}

/// Patrol's and Redis's figures for one unit count.
#[derive(Debug, Default)]
struct Figures {
    ingest_rate: Option<f64>,
    ingest_cpu_us: Option<f64>,
    bytes_per_unit: Option<f64>,
    grpc_p50_us: Option<f64>,
    grpc_p99_us: Option<f64>,
    grpc_qps: Option<f64>,
    grpc_top: Option<Vec<Option<String>>>,
    /// Server CPU per Recommend under load, microseconds.
    grpc_cpu_us: Option<f64>,
    redis_ingest_rate: Option<f64>,
    redis_cpu_us: Option<f64>,
    redis_bytes_per_unit: Option<f64>,
    redis_p50_us: Option<f64>,
    redis_p99_us: Option<f64>,
    redis_qps: Option<f64>,
    redis_top: Option<Vec<Option<String>>>,
    /// redis-server CPU per nearest-available query (all its GEOSEARCHes).
    redis_query_cpu_us: Option<f64>,
    /// Recommend p50, p99 (us) for queries placed like the units (dense
    /// centre), patrol and Redis.
    grpc_weighted: Option<(f64, f64)>,
    redis_weighted: Option<(f64, f64)>,
    /// Ingest rate by (clients, batch): (patrol, Redis).
    sweep: BTreeMap<(usize, usize), (Option<f64>, Option<f64>)>,
}

fn bytes_per_unit(before: Option<ProcSample>, after: Option<ProcSample>, n: usize) -> Option<f64> {
    Some((after?.rss_bytes as f64 - before?.rss_bytes as f64) / n.max(1) as f64)
}

fn cpu_us_per_op(before: Option<ProcSample>, after: Option<ProcSample>, ops: u64) -> Option<f64> {
    Some(before?.cpu_s_until(&after?) * 1e6 / ops.max(1) as f64)
}

/// The targets from the issue.
pub fn targets(max_units: usize) -> Vec<Target> {
    let t = |key: &str, text: &str, row: String, on, goal, hint: &str| Target {
        key: key.into(),
        text: text.into(),
        row_key: row,
        on,
        goal,
        unmeasured_hint: hint.into(),
    };
    let max = count_label(max_units);
    vec![
        t(
            "target_ingest_100k_vs_redis",
            "ingest at 100k units vs pipelined GEOADD",
            "ingest_100k_pings_per_s".into(),
            On::Ratio,
            Goal::AtLeast(2.5),
            "needs --units 100000 and the ingest and redis phases",
        ),
        t(
            "target_core_recommend_100k_p99",
            "core nearest query at 100k units, p99",
            "recommend_100k_core_p99_us".into(),
            On::Ours,
            Goal::Below(5.0),
            "needs 100000 in the core unit counts",
        ),
        t(
            "target_grpc_recommend_1m_p99",
            "Recommend over gRPC at 1M units, p99",
            "recommend_1m_grpc_p99_us".into(),
            On::Ours,
            Goal::Below(1_000.0),
            "needs --units 1000000",
        ),
        t(
            "target_grpc_recommend_1m_vs_redis",
            "Recommend over gRPC at 1M units, p99 vs the Redis way",
            "recommend_1m_grpc_p99_us".into(),
            On::Ratio,
            Goal::AtLeast(10.0),
            "needs --units 1000000 and the redis phase",
        ),
        t(
            "target_freshness_100_subscribers",
            "freshness with 100 subscribers, p99 beyond the coalescing interval",
            "freshness_100_subscribers_p99_beyond_interval_ms".into(),
            On::Ours,
            Goal::Below(50.0),
            "needs --subscribers 100 and the freshness phase",
        ),
        t(
            "target_memory_per_unit",
            &format!("server memory per unit held at {max} units, all indexes"),
            format!("memory_{max}_bytes_per_unit"),
            On::Ours,
            Goal::Below(300.0),
            "needs a patrol phase and the server's pid",
        ),
    ]
}

fn machine_facts() -> serde_json::Map<String, serde_json::Value> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| proc_stats::parse_status_kb(&s, "MemTotal"))
        .unwrap_or(0);
    let mut m = serde_json::Map::new();
    m.insert("loadavg_start".into(), json!(loadavg()));
    m.insert(
        "cpus".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        ),
    );
    m.insert("cpu_model".into(), json!(cpu));
    m.insert("memory_bytes".into(), json!(mem));
    m
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The checked-out commit, when run inside the repository.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs every selected phase and returns the report.
pub async fn run(opts: &Options) -> Result<Report> {
    let mut report = Report::default();
    let mut run = machine_facts();
    run.insert(
        "mode".into(),
        json!(if opts.quick { "quick" } else { "full" }),
    );
    run.insert("seed".into(), json!(opts.seed));
    run.insert("units".into(), json!(opts.units));
    run.insert("clients".into(), json!(opts.clients));
    run.insert("batch".into(), json!(opts.batch));
    run.insert("phase_seconds".into(), json!(opts.phase_time.as_secs_f64()));
    run.insert("position_interval_ms".into(), json!(opts.interval_ms));
    if let Some(commit) = git_commit() {
        run.insert("git_commit".into(), json!(commit));
    }
    run.insert(
        "helsinki".into(),
        json!(matches!(opts.centre, Centre::Network(_))),
    );
    report.run = run;
    let max_units = opts.units.iter().copied().max().unwrap_or(0);
    report.targets = targets(max_units);
    let settings = ServerSettings {
        position_interval_ms: opts.interval_ms,
        offline_after_ms: 24 * 3_600_000,
    };
    let fresh_n = nearest(&opts.units, opts.freshness_units);
    let started = Instant::now();
    // (units, RSS bytes per unit) of each patrol server, for the marginal cost.
    let mut held: Vec<(usize, f64)> = Vec::new();
    for &n in &opts.units {
        let label = count_label(n);
        let mut city = opts.city(n);
        let points = city.query_points(opts.queries);
        let home = city.positions();
        let mut fig = Figures::default();
        let spec = opts.ingest_spec();
        let patrol_phase = opts.use_patrold
            && (opts.phases.ingest
                || opts.phases.recommend
                || (n == fresh_n && (opts.phases.freshness || opts.phases.dispatch)));
        if patrol_phase {
            let server = Patrold::start(&opts.server, &settings, &opts.workdir).await?;
            let result = patrol_phases(
                opts,
                &server,
                n,
                fresh_n,
                &mut city,
                &home,
                &points,
                &spec,
                &mut fig,
                &mut report,
            )
            .await;
            if let Err(e) = result {
                return Err(e.context(format!(
                    "patrol at {label} units; server log tail:\n{}",
                    server.log_tail()
                )));
            }
        }
        if opts.phases.recommend && opts.core_units.contains(&n) {
            core_phase(&city, &home, &points, &label, &mut report)?;
        }
        if opts.phases.redis {
            redis_phase(
                opts,
                &mut city,
                &home,
                &points,
                &spec,
                &mut fig,
                &label,
                &mut report,
            )
            .await?;
        }
        emit_rows(&mut report, &label, &fig);
        if let Some(b) = fig.bytes_per_unit {
            held.push((n, b));
        }
        info!(
            units = n,
            elapsed_s = started.elapsed().as_secs(),
            "unit count done"
        );
    }
    if opts.phases.recommend {
        for &n in opts.core_units.iter().filter(|n| !opts.units.contains(n)) {
            let city = opts.city(n);
            let points = city.query_points(opts.queries);
            core_phase(
                &city,
                &city.positions(),
                &points,
                &count_label(n),
                &mut report,
            )?;
        }
    }
    if opts.phases.durability {
        match &opts.server {
            ServerSource::Spawn { patrold, .. } => {
                let mut city = opts.city(fresh_n);
                let spec = opts.ingest_spec();
                durability::run(
                    patrold,
                    &opts.redis_server,
                    &opts.workdir,
                    &settings,
                    &mut city,
                    &spec,
                    opts.freshness_rate,
                    &mut report,
                )
                .await
                .context("durability phase")?;
            }
            ServerSource::Connect { .. } => {
                warn!("durability phase skipped: it spawns its own servers (not with --server)")
            }
        }
    }
    held.sort_by_key(|h| h.0);
    if let [.., (n1, b1), (n2, b2)] = held[..] {
        // What one more unit costs, without the fixed part (runtime, buffers,
        // event history) that small unit counts are charged for.
        let marginal = (b2 * n2 as f64 - b1 * n1 as f64) / (n2 - n1) as f64;
        report.extra(
            format!(
                "memory_marginal_{}_to_{}_bytes_per_unit",
                count_label(n1),
                count_label(n2)
            ),
            marginal,
            "B",
        );
    }
    let centre = match &opts.centre {
        Centre::Gaussian { sigma_m } => {
            format!("a Gaussian centre (sigma {:.1} km)", sigma_m / 1000.0)
        }
        Centre::Network(_) => {
            "random points on central Helsinki's street network (OpenStreetMap, ODbL)".to_string()
        }
    };
    report.note(format!(
        "city: 70% of units at {centre}, the rest uniform over 40 x 40 km around 60.17 N 24.94 E; 40% busy; queries uniform over the region; seed {}",
        opts.seed
    ));
    report.note(format!(
        "freshness: {} pings/s into {} units, Watch coalescing interval {} ms; ingest: {} streams x batches of {}; recommend: k = {}, one query at a time for p50/p99, {} in flight for queries/s; core nearest query: Dispatcher::nearest in-process (the search alone; with explanation: Dispatcher::recommend)",
        opts.freshness_rate,
        count_label(fresh_n),
        opts.interval_ms,
        opts.clients,
        opts.batch,
        recommend::K,
        opts.recommend_tasks
    ));
    report.note("ratios: how many times better patrol is (throughput: patrol/redis; latency and cost: redis/patrol)");
    report.note("redis ingest: one GEOADD per ping into one GEO set, pipelined; redis memory: RSS growth for the positions set plus the available-only set");
    report.note("memory: patrold RSS growth from an empty server to one holding every unit registered, positioned and 40% busy, divided by the unit count");
    report.run.insert("loadavg_end".into(), json!(loadavg()));
    report
        .run
        .insert("elapsed_s".into(), json!(started.elapsed().as_secs_f64()));
    report.note(format!(
        "machine load (1/5/15 min averages) at start: {}, at end: {}; other processes compete for the same cores",
        report.run["loadavg_start"].as_str().unwrap_or("?"),
        loadavg()
    ));
    info!(elapsed_s = started.elapsed().as_secs(), "run done");
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn patrol_phases(
    opts: &Options,
    server: &Patrold,
    n: usize,
    fresh_n: usize,
    city: &mut City,
    home: &[(f64, f64)],
    points: &[(f64, f64)],
    spec: &IngestSpec,
    fig: &mut Figures,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(n);
    let region = city.spec.region;
    let empty = server.sample();
    let load_channels = server.channels(4).await?;
    let took = register_units(&load_channels, &city.units).await?;
    report.extra(
        format!("register_{label}_units_per_s"),
        n as f64 / took.as_secs_f64(),
        "1/s",
    );
    info!(units = n, secs = took.as_secs_f64(), "units registered");
    send_positions(&load_channels, &mut city.units, 1_000).await?;
    let took = mark_busy(&load_channels, &city.units).await?;
    info!(units = n, secs = took.as_secs_f64(), "busy units marked");
    let loaded = server.sample();
    fig.bytes_per_unit = bytes_per_unit(empty, loaded, n);
    if opts.phases.ingest {
        let channels = server.channels(opts.clients).await?;
        let rec = profile::maybe_start(
            opts.profile.as_deref(),
            &format!("ingest-{label}"),
            server.pid,
        )
        .await?;
        let (before, me_before, all_before) = (
            server.sample(),
            proc_stats::sample_self(),
            proc_stats::machine_busy_s(),
        );
        let out = ingest::run(&channels, &mut city.units, region, spec).await?;
        let (after, me_after, all_after) = (
            server.sample(),
            proc_stats::sample_self(),
            proc_stats::machine_busy_s(),
        );
        if let (Some(b), Some(a), Some(mb), Some(ma), Some(tb), Some(ta)) =
            (before, after, me_before, me_after, all_before, all_after)
        {
            let wall = a.at.duration_since(b.at).as_secs_f64();
            let other = (ta - tb) - b.cpu_s_until(&a) - mb.cpu_s_until(&ma);
            report.extra(
                format!("ingest_{label}_other_processes_cpu_cores"),
                (other / wall).max(0.0),
                "cores",
            );
        }
        profile::maybe_stop(rec)?;
        if out.rejected > 0 || out.duplicates > 0 {
            warn!(rejected = out.rejected, duplicates = out.duplicates, first = ?out.first_rejection, "pings not accepted");
        }
        info!(
            units = n,
            rate = out.rate() as u64,
            accepted = out.accepted,
            "patrol ingest done"
        );
        fig.ingest_rate = Some(out.rate());
        fig.ingest_cpu_us = cpu_us_per_op(before, after, out.accepted);
        if let (Some(b), Some(a)) = (before, after) {
            report.extra(
                format!("ingest_{label}_server_cpu_cores"),
                b.cores_until(&a),
                "cores",
            );
            report.extra(
                format!("memory_{label}_bytes_per_unit_after_ingest"),
                bytes_per_unit(empty, Some(a), n).unwrap_or(0.0),
                "B",
            );
        }
        if let (Some(b), Some(a)) = (me_before, me_after) {
            report.extra(
                format!("ingest_{label}_loadgen_cpu_cores"),
                b.cores_until(&a),
                "cores",
            );
        }
        if sweep_here(opts, n) {
            for &(clients, batch) in &opts.sweep {
                let channels = server.channels(clients).await?;
                let spec = IngestSpec {
                    clients,
                    batch,
                    duration: opts.sweep_time,
                    ..*spec
                };
                let out = ingest::run(&channels, &mut city.units, region, &spec).await?;
                fig.sweep.entry((clients, batch)).or_default().0 = Some(out.rate());
                info!(
                    clients,
                    batch,
                    rate = out.rate() as u64,
                    "patrol ingest sweep point"
                );
            }
        }
    }
    // Queries see the units at their home positions, as the core and Redis do.
    city.restore_positions(home);
    send_positions(&load_channels, &mut city.units, 1_000).await?;
    if opts.phases.recommend {
        let floor = recommend::grpc_floor(&load_channels[0], &city.units[0].id, 1_000)
            .await?
            .summary();
        report.extra(
            format!("grpc_{label}_unary_floor_p50_us"),
            floor.p50_us(),
            "us",
        );
        report.extra(
            format!("grpc_{label}_unary_floor_p99_us"),
            floor.p99_us(),
            "us",
        );
        let rec = profile::maybe_start(
            opts.profile.as_deref(),
            &format!("recommend-{label}"),
            server.pid,
        )
        .await?;
        let pass = recommend::grpc_sequential(&load_channels[0], points).await?;
        let s = pass.latencies.summary();
        if pass.short > 0 {
            warn!(
                short = pass.short,
                "recommendations with fewer than k units"
            );
        }
        fig.grpc_p50_us = Some(s.p50_us());
        fig.grpc_p99_us = Some(s.p99_us());
        fig.grpc_top = Some(pass.top);
        let weighted = city.centre_weighted_points(opts.queries.min(2_000));
        let w = recommend::grpc_sequential(&load_channels[0], &weighted)
            .await?
            .latencies
            .summary();
        fig.grpc_weighted = Some((w.p50_us(), w.p99_us()));
        let before = server.sample();
        let (qps, under_load) = recommend::grpc_concurrent(
            &load_channels,
            points,
            opts.recommend_tasks,
            opts.phase_time,
        )
        .await?;
        fig.grpc_qps = Some(qps);
        fig.grpc_cpu_us = cpu_us_per_op(before, server.sample(), under_load.len());
        profile::maybe_stop(rec)?;
        report.extra(
            format!("recommend_{label}_grpc_p99_us_under_load"),
            under_load.summary().p99_us(),
            "us",
        );
        info!(
            units = n,
            p50_us = s.p50_us(),
            p99_us = s.p99_us(),
            qps = qps as u64,
            "patrol recommend done"
        );
    }
    if n == fresh_n && opts.phases.dispatch {
        let out = dispatch::run(&load_channels[0], &city.units, opts.dispatch_rounds).await?;
        let rt = out.round_trip.summary();
        report.push(Row::new(
            "dispatch_round_trip_p50_ms",
            format!("dispatch round trip p50 ({label})"),
            "ms",
            rt.p50_ms(),
            Better::Lower,
        ));
        report.push(Row::new(
            "dispatch_round_trip_p99_ms",
            format!("dispatch round trip p99 ({label})"),
            "ms",
            rt.p99_ms(),
            Better::Lower,
        ));
        report.extra("dispatch_rpc_p50_ms", out.rpc.summary().p50_ms(), "ms");
        info!(p50_ms = rt.p50_ms(), p99_ms = rt.p99_ms(), "dispatch done");
    }
    if n == fresh_n && opts.phases.freshness {
        let ingest_channels = server.channels(opts.clients).await?;
        for &subs in &opts.subscribers {
            let sub_channels = server.channels(subs).await?;
            let spec = IngestSpec {
                rate: Some(opts.freshness_rate),
                batch: opts.batch.min(100),
                ..*spec
            };
            let name = format!("freshness-{label}-{subs}");
            let observe = freshness::Observe {
                server_pid: server.pid,
                profile: opts.profile.as_deref().map(|d| (d, name.as_str())),
            };
            let out = freshness::run(
                sub_channels,
                &ingest_channels,
                &mut city.units,
                region,
                &spec,
                opts.interval_ms,
                observe,
            )
            .await?;
            let s = out.latencies.summary();
            let key = format!("freshness_{subs}_subscribers");
            let what = format!(
                "freshness, {subs} sub{} ({label})",
                if subs == 1 { "" } else { "s" }
            );
            report.push(Row::new(
                format!("{key}_p50_ms"),
                format!("{what} p50"),
                "ms",
                s.p50_ms(),
                Better::Lower,
            ));
            report.push(Row::new(
                format!("{key}_p99_ms"),
                format!("{what} p99"),
                "ms",
                s.p99_ms(),
                Better::Lower,
            ));
            report.push(Row::new(
                format!("{key}_max_ms"),
                format!("{what} max"),
                "ms",
                s.max_ms(),
                Better::Lower,
            ));
            report.push(Row::new(
                format!("{key}_p99_beyond_interval_ms"),
                format!("{what} p99 - interval"),
                "ms",
                s.p99_ms() - opts.interval_ms as f64,
                Better::Lower,
            ));
            report.extra(
                format!("{key}_ingest_pings_per_s"),
                out.ingest.rate(),
                "1/s",
            );
            report.extra(
                format!("{key}_positions_received"),
                out.positions as f64,
                "count",
            );
            report.extra(format!("{key}_resyncs"), out.resyncs as f64, "count");
            if let Some(c) = out.server_cores {
                report.extra(format!("{key}_server_cpu_cores"), c, "cores");
            }
            if let Some(c) = out.loadgen_cores {
                report.extra(format!("{key}_loadgen_cpu_cores"), c, "cores");
            }
            if let Some(c) = out.other_cores {
                report.extra(format!("{key}_other_processes_cpu_cores"), c, "cores");
            }
            info!(
                subscribers = subs,
                p50_ms = s.p50_ms(),
                p99_ms = s.p99_ms(),
                max_ms = s.max_ms(),
                resyncs = out.resyncs,
                "freshness done"
            );
        }
    }
    Ok(())
}

fn core_phase(
    city: &City,
    home: &[(f64, f64)],
    points: &[(f64, f64)],
    label: &str,
    report: &mut Report,
) -> Result<()> {
    let now = unix_ms();
    let mut units: Vec<SimUnit> = city.units.clone();
    for (u, &(lon, lat)) in units.iter_mut().zip(home) {
        (u.lon, u.lat) = (lon, lat);
    }
    let t = Instant::now();
    let heap_before = heap::live_bytes();
    let (core, steps) =
        recommend::build_core_measured(&units, now).context("building the in-process core")?;
    if steps[3] > 0 {
        // The dispatcher core alone, exact heap bytes: what the server's RSS
        // figure is made of, minus the server around it and fragmentation;
        // and what registering, positioning and marking busy each add.
        let per = |a: usize, b: usize| (b as f64 - a as f64) / units.len().max(1) as f64;
        report.extra(
            format!("memory_{label}_core_heap_bytes_per_unit"),
            per(heap_before, steps[3]),
            "B",
        );
        report.extra(
            format!("memory_{label}_core_heap_registered_bytes_per_unit"),
            per(heap_before, steps[1]),
            "B",
        );
        report.extra(
            format!("memory_{label}_core_heap_positioned_bytes_per_unit"),
            per(steps[1], steps[2]),
            "B",
        );
        report.extra(
            format!("memory_{label}_core_heap_busy_bytes_per_unit"),
            per(steps[2], steps[3]),
            "B",
        );
    }
    info!(
        units = units.len(),
        secs = t.elapsed().as_secs_f64(),
        "core built"
    );
    // More samples than the gRPC pass: each query is microseconds.
    let many: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .cycle()
        .take(points.len().max(20_000))
        .collect();
    let pass = recommend::core_nearest_pass(&core, &many, now)?;
    if pass.short > 0 {
        warn!(short = pass.short, "core searches with fewer than k units");
    }
    let s = pass.latencies.summary();
    report.push(Row::new(
        format!("recommend_{label}_core_p50_us"),
        format!("core nearest query p50 ({label})"),
        "us",
        s.p50_us(),
        Better::Lower,
    ));
    report.push(Row::new(
        format!("recommend_{label}_core_p99_us"),
        format!("core nearest query p99 ({label})"),
        "us",
        s.p99_us(),
        Better::Lower,
    ));
    let explained = recommend::core_recommend_pass(&core, &many, now)?
        .latencies
        .summary();
    report.extra(
        format!("recommend_{label}_core_with_explanation_p50_us"),
        explained.p50_us(),
        "us",
    );
    report.extra(
        format!("recommend_{label}_core_with_explanation_p99_us"),
        explained.p99_us(),
        "us",
    );
    info!(
        units = units.len(),
        p50_us = s.p50_us(),
        p99_us = s.p99_us(),
        "core recommend done"
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn redis_phase(
    opts: &Options,
    city: &mut City,
    home: &[(f64, f64)],
    points: &[(f64, f64)],
    spec: &IngestSpec,
    fig: &mut Figures,
    label: &str,
    report: &mut Report,
) -> Result<()> {
    let region = city.spec.region;
    city.restore_positions(home);
    let server = RedisServer::start(&opts.redis_server, &opts.workdir)
        .await
        .with_context(|| {
            format!(
                "starting {} (install redis-server or pass --redis-server PATH)",
                opts.redis_server.display()
            )
        })?;
    let mut con = server.connection().await?;
    let empty = server.sample();
    redis_alt::load_state(&mut con, &city.units).await?;
    let loaded = server.sample();
    fig.redis_bytes_per_unit = bytes_per_unit(empty, loaded, city.units.len());
    if opts.phases.ingest {
        let (before, me_before) = (server.sample(), proc_stats::sample_self());
        let out = redis_alt::ingest(
            &server,
            &mut city.units,
            region,
            spec,
            GeoaddStyle::PipelinedPerPing,
        )
        .await?;
        let (after, me_after) = (server.sample(), proc_stats::sample_self());
        fig.redis_ingest_rate = Some(out.rate());
        fig.redis_cpu_us = cpu_us_per_op(before, after, out.commands);
        if let (Some(b), Some(a)) = (me_before, me_after) {
            report.extra(
                format!("ingest_{label}_redis_loadgen_cpu_cores"),
                b.cores_until(&a),
                "cores",
            );
        }
        info!(
            units = city.units.len(),
            rate = out.rate() as u64,
            "redis ingest done"
        );
        let short = IngestSpec {
            duration: opts.sweep_time,
            ..*spec
        };
        let multi = redis_alt::ingest(
            &server,
            &mut city.units,
            region,
            &short,
            GeoaddStyle::MultiMember,
        )
        .await?;
        report.extra(
            format!("ingest_{label}_redis_multi_member_geoadd_pings_per_s"),
            multi.rate(),
            "1/s",
        );
        if sweep_here(opts, city.units.len()) {
            for &(clients, batch) in &opts.sweep {
                let spec = IngestSpec {
                    clients,
                    batch,
                    duration: opts.sweep_time,
                    ..*spec
                };
                let out = redis_alt::ingest(
                    &server,
                    &mut city.units,
                    region,
                    &spec,
                    GeoaddStyle::PipelinedPerPing,
                )
                .await?;
                fig.sweep.entry((clients, batch)).or_default().1 = Some(out.rate());
                info!(
                    clients,
                    batch,
                    rate = out.rate() as u64,
                    "redis ingest sweep point"
                );
            }
        }
    }
    if opts.phases.recommend {
        let floor = redis_alt::ping_floor(&server, 1_000).await?.summary();
        report.extra(
            format!("redis_{label}_ping_floor_p50_us"),
            floor.p50_us(),
            "us",
        );
        report.extra(
            format!("redis_{label}_ping_floor_p99_us"),
            floor.p99_us(),
            "us",
        );
        city.restore_positions(home);
        redis_alt::load_state(&mut con, &city.units).await?;
        let (lat, top, rounds) = redis_alt::sequential(&server, points, recommend::K).await?;
        let s = lat.summary();
        fig.redis_p50_us = Some(s.p50_us());
        fig.redis_p99_us = Some(s.p99_us());
        fig.redis_top = Some(top);
        let weighted = city.centre_weighted_points(opts.queries.min(2_000));
        let (w, _, w_rounds) = redis_alt::sequential(&server, &weighted, recommend::K).await?;
        let w = w.summary();
        fig.redis_weighted = Some((w.p50_us(), w.p99_us()));
        report.extra(
            format!("recommend_{label}_centre_weighted_redis_geosearch_calls_per_query"),
            w_rounds,
            "count",
        );
        let before = server.sample();
        let (qps, under_load) = redis_alt::concurrent(
            &server,
            points,
            recommend::K,
            opts.recommend_tasks,
            4,
            opts.phase_time,
        )
        .await?;
        fig.redis_qps = Some(qps);
        fig.redis_query_cpu_us = cpu_us_per_op(before, server.sample(), under_load.len());
        info!(
            p50_us = s.p50_us(),
            p99_us = s.p99_us(),
            qps = qps as u64,
            rounds,
            "redis recommend done"
        );
        report.extra(
            format!("recommend_{label}_redis_geosearch_calls_per_query"),
            rounds,
            "count",
        );
    }
    Ok(())
}

fn emit_rows(report: &mut Report, label: &str, f: &Figures) {
    let pair = |report: &mut Report,
                key: String,
                text: String,
                unit: &'static str,
                ours: Option<f64>,
                redis: Option<f64>,
                better: Better| match (ours, redis) {
        (Some(o), r) => {
            let mut row = Row::new(key, text, unit, o, better);
            row.redis = r;
            report.push(row);
        }
        (None, Some(r)) => report.extra(format!("{key}_redis"), r, unit),
        (None, None) => {}
    };
    pair(
        report,
        format!("ingest_{label}_pings_per_s"),
        format!("ingest pings/s ({label} units)"),
        "1/s",
        f.ingest_rate,
        f.redis_ingest_rate,
        Better::Higher,
    );
    pair(
        report,
        format!("ingest_{label}_server_cpu_us_per_ping"),
        format!("server CPU per ping ({label})"),
        "us",
        f.ingest_cpu_us,
        f.redis_cpu_us,
        Better::Lower,
    );
    pair(
        report,
        format!("memory_{label}_bytes_per_unit"),
        format!("memory per unit ({label})"),
        "B",
        f.bytes_per_unit,
        f.redis_bytes_per_unit,
        Better::Lower,
    );
    pair(
        report,
        format!("recommend_{label}_grpc_p50_us"),
        format!("recommend p50 ({label})"),
        "us",
        f.grpc_p50_us,
        f.redis_p50_us,
        Better::Lower,
    );
    pair(
        report,
        format!("recommend_{label}_grpc_p99_us"),
        format!("recommend p99 ({label})"),
        "us",
        f.grpc_p99_us,
        f.redis_p99_us,
        Better::Lower,
    );
    pair(
        report,
        format!("recommend_{label}_grpc_qps"),
        format!("recommend queries/s ({label})"),
        "1/s",
        f.grpc_qps,
        f.redis_qps,
        Better::Higher,
    );
    pair(
        report,
        format!("recommend_{label}_server_cpu_us_per_query"),
        format!("server CPU per recommend ({label})"),
        "us",
        f.grpc_cpu_us,
        f.redis_query_cpu_us,
        Better::Lower,
    );
    let (gw, rw) = (f.grpc_weighted, f.redis_weighted);
    pair(
        report,
        format!("recommend_{label}_centre_weighted_grpc_p50_us"),
        format!("recommend p50, centre-weighted queries ({label})"),
        "us",
        gw.map(|w| w.0),
        rw.map(|w| w.0),
        Better::Lower,
    );
    pair(
        report,
        format!("recommend_{label}_centre_weighted_grpc_p99_us"),
        format!("recommend p99, centre-weighted queries ({label})"),
        "us",
        gw.map(|w| w.1),
        rw.map(|w| w.1),
        Better::Lower,
    );
    for (&(clients, batch), &(ours, redis)) in &f.sweep {
        pair(
            report,
            format!("ingest_{label}_c{clients}_b{batch}_pings_per_s"),
            format!(
                "ingest pings/s ({label}, {clients} stream{} x {batch})",
                if clients == 1 { "" } else { "s" }
            ),
            "1/s",
            ours,
            redis,
            Better::Higher,
        );
    }
    if let (Some(a), Some(b)) = (&f.grpc_top, &f.redis_top) {
        report.extra(
            format!("recommend_{label}_top1_agreement_with_redis"),
            recommend::agreement(a, b),
            "share",
        );
    }
}
