//! The run: for each unit count, a fresh patrold and a fresh redis-server get
//! the same city; every phase measures both sides and the report pairs them.
//!
//! # Layout
//! - `options`: [`Options`] and [`Phases`], resolved from the command line.
//! - `context`: what the phases at one unit count share (city, load, figures,
//!   report).
//! - `patrol`: the phases against patrold (load, ingest, recommend, dispatch,
//!   freshness), one module each.
//! - `core`: the dispatcher core in-process (heap per unit, nearest query).
//! - `redis`: the same work the Redis way.
//! - `figures`: patrol's and Redis's figures, paired into rows.
//! - `targets`: the targets.
//! - `facts`: the machine, settings and notes of the run.
//!
//! Durability, urgent, connect_storm, checkpoint_stall, cameras and secure
//! start their own servers ([`crate::server::Launcher`]) and run after the unit counts.

mod context;
mod core;
mod facts;
mod figures;
mod options;
mod patrol;
mod redis;
mod targets;

use std::time::Instant;

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use crate::report::{Report, count_label};
use crate::server::{Launcher, Patrold, ServerSettings, ServerSource};
use crate::{cameras, checkpoint_stall, connect_storm, durability, secure, urgent};
use context::Context;

pub use options::{Options, Phases};
pub use targets::targets;

/// The settings every spawned patrold gets.
fn server_settings(opts: &Options) -> ServerSettings {
    ServerSettings {
        position_interval_ms: opts.interval_ms,
        offline_after_ms: 24 * 3_600_000,
        map: opts.network_map.clone(),
    }
}

/// Runs every selected phase and returns the report.
pub async fn run(opts: &Options) -> Result<Report> {
    let mut report = Report::default();
    facts::record_start(&mut report, opts);
    let max_units = opts.units.iter().copied().max().unwrap_or(0);
    report.targets = targets(max_units);
    let started = Instant::now();
    // (units, RSS bytes per unit) of each patrol server, for the marginal cost.
    let mut held: Vec<(usize, f64)> = Vec::new();
    for &n in &opts.units {
        if let Some(bytes) = unit_count(opts, n, &mut report).await? {
            held.push((n, bytes));
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
            let input = core::CoreInput {
                city: &city,
                home: &city.positions(),
                points: &points,
                label: &count_label(n),
            };
            core::run(input, &mut report)?;
        }
    }
    own_servers(opts, &mut report).await?;
    marginal_memory(&mut report, held);
    facts::record_end(&mut report, opts, started);
    info!(elapsed_s = started.elapsed().as_secs(), "run done");
    Ok(report)
}

/// Every phase at `n` units; returns patrold's RSS per unit when measured.
async fn unit_count(opts: &Options, n: usize, report: &mut Report) -> Result<Option<f64>> {
    let mut cx = Context::new(opts, n, report);
    if cx.needs_patrold() {
        let server = Patrold::start(&opts.server, &server_settings(opts), &opts.workdir).await?;
        if let Err(e) = patrol::run(&mut cx, &server).await {
            return Err(e.context(format!(
                "patrol at {} units; server log tail:\n{}",
                cx.label,
                server.log_tail()
            )));
        }
    }
    if opts.phases.recommend && opts.core_units.contains(&n) {
        let input = core::CoreInput {
            city: &cx.city,
            home: &cx.home,
            points: &cx.points,
            label: &cx.label,
        };
        core::run(input, cx.report)?;
    }
    if opts.phases.redis {
        redis::run(&mut cx).await?;
    }
    figures::emit_rows(cx.report, &cx.label, &cx.fig);
    Ok(cx.fig.bytes_per_unit)
}

/// How phases that start their own servers start them (none with --server).
fn launcher(opts: &Options) -> Option<Launcher> {
    match &opts.server {
        ServerSource::Spawn { patrold, .. } => Some(Launcher {
            patrold: patrold.clone(),
            redis_server: opts.redis_server.clone(),
            workdir: opts.workdir.clone(),
            settings: server_settings(opts),
        }),
        ServerSource::Connect { .. } => None,
    }
}

/// The phases that spawn their own patrold (and redis-server): durability,
/// urgent, connect_storm, checkpoint_stall, cameras, secure, in that order.
async fn own_servers(opts: &Options, report: &mut Report) -> Result<()> {
    let p = opts.phases;
    if !(p.durability || p.urgent || p.connect_storm || p.checkpoint_stall || p.cameras || p.secure)
    {
        return Ok(());
    }
    let Some(launcher) = launcher(opts) else {
        warn!(
            "durability, urgent, connect_storm, checkpoint_stall, cameras and secure skipped: they spawn their own servers (not with --server)"
        );
        return Ok(());
    };
    if p.durability {
        let mut city = opts.city(opts.fresh_units());
        let spec = opts.ingest_spec();
        durability::run(&launcher, &mut city, &spec, opts.freshness_rate, report)
            .await
            .context("durability phase")?;
    }
    if p.urgent {
        let mut city = opts.city(opts.urgent_units);
        urgent::run(&launcher, &mut city, &opts.urgent, report)
            .await
            .context("urgent phase")?;
    }
    if p.connect_storm {
        let mut city = opts.city(opts.storm_units);
        connect_storm::run(&launcher, &mut city, &opts.storm, report)
            .await
            .context("connect_storm phase")?;
    }
    if p.checkpoint_stall {
        let mut city = opts.city(opts.checkpoint_units);
        checkpoint_stall::run(&launcher, &mut city, &opts.checkpoint, report)
            .await
            .context("checkpoint_stall phase")?;
    }
    if p.cameras {
        cameras::run(&launcher, &opts.cameras, report)
            .await
            .context("cameras phase")?;
    }
    if p.secure {
        let mut city = opts.city(opts.secure_units);
        secure::run(&launcher, &mut city, &opts.secure, report)
            .await
            .context("secure phase")?;
    }
    Ok(())
}

/// What one more unit costs between the two largest counts, without the
/// fixed part (runtime, buffers, event history) small counts are charged for.
fn marginal_memory(report: &mut Report, mut held: Vec<(usize, f64)>) {
    held.sort_by_key(|h| h.0);
    if let [.., (n1, b1), (n2, b2)] = held[..] {
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
}
