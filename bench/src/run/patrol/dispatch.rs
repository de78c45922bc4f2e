//! Patrol dispatch: `Dispatch` to the order arriving on the unit's stream.

use anyhow::Result;
use tracing::info;

use super::super::context::Context;
use super::Loaded;
use crate::dispatch;
use crate::report::Row;

pub(super) async fn run(cx: &mut Context<'_>, patrol: &Loaded<'_>) -> Result<()> {
    let label = &cx.label;
    let out = dispatch::run(&patrol.channels[0], &cx.city.units, cx.opts.dispatch_rounds).await?;
    let rt = out.round_trip.summary();
    cx.report.push(Row::lower(
        "dispatch_round_trip_p50_ms",
        format!("dispatch round trip p50 ({label})"),
        "ms",
        rt.p50_ms(),
    ));
    cx.report.push(Row::lower(
        "dispatch_round_trip_p99_ms",
        format!("dispatch round trip p99 ({label})"),
        "ms",
        rt.p99_ms(),
    ));
    cx.report
        .extra("dispatch_rpc_p50_ms", out.rpc.summary().p50_ms(), "ms");
    info!(p50_ms = rt.p50_ms(), p99_ms = rt.p99_ms(), "dispatch done");
    Ok(())
}
