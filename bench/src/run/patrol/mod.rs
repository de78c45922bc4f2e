//! The phases against patrold at one unit count: load the city, then ingest,
//! recommend, dispatch and freshness, each in its own module.

mod dispatch;
mod freshness;
mod ingest;
mod recommend;

use anyhow::Result;
use tonic::transport::Channel;
use tracing::info;

use super::context::Context;
use super::figures::bytes_per_unit;
use crate::load::{mark_busy, register_units, send_positions};
use crate::proc_stats::ProcSample;
use crate::server::Patrold;

/// The server under test, holding the city.
pub(super) struct Loaded<'a> {
    pub server: &'a Patrold,
    /// The loading connections, reused by the one-connection phases.
    pub channels: Vec<Channel>,
    /// The server before anything was loaded, for memory per unit.
    pub empty: Option<ProcSample>,
}

/// Loads the city into `server` and runs the selected phases against it.
pub(super) async fn run(cx: &mut Context<'_>, server: &Patrold) -> Result<()> {
    let patrol = load(cx, server).await?;
    let phases = cx.opts.phases;
    if phases.ingest {
        ingest::run(cx, &patrol).await?;
    }
    // Queries see the units at their home positions, as the core and Redis do.
    cx.city.restore_positions(&cx.home);
    send_positions(&patrol.channels, &mut cx.city.units, 1_000).await?;
    if phases.recommend {
        recommend::run(cx, &patrol).await?;
    }
    if cx.is_fresh_count() && phases.dispatch {
        dispatch::run(cx, &patrol).await?;
    }
    if cx.is_fresh_count() && phases.freshness {
        freshness::run(cx, &patrol).await?;
    }
    Ok(())
}

/// Registers every unit, sends each one's position and marks the busy ones
/// busy; the RSS growth per unit is the memory figure.
async fn load<'a>(cx: &mut Context<'_>, server: &'a Patrold) -> Result<Loaded<'a>> {
    let (n, label) = (cx.n, &cx.label);
    let empty = server.sample();
    let channels = server.channels(4).await?;
    let took = register_units(&channels, &cx.city.units).await?;
    cx.report.extra(
        format!("register_{label}_units_per_s"),
        n as f64 / took.as_secs_f64(),
        "1/s",
    );
    info!(units = n, secs = took.as_secs_f64(), "units registered");
    send_positions(&channels, &mut cx.city.units, 1_000).await?;
    let took = mark_busy(&channels, &cx.city.units).await?;
    info!(units = n, secs = took.as_secs_f64(), "busy units marked");
    cx.fig.bytes_per_unit = bytes_per_unit(empty, server.sample(), n);
    Ok(Loaded {
        server,
        channels,
        empty,
    })
}
