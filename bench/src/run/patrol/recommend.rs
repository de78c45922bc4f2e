//! Patrol recommend: the unary floor, one query at a time (uniform and
//! centre-weighted points), then many in flight for throughput and CPU.

use anyhow::Result;
use tracing::{info, warn};

use super::super::context::Context;
use super::super::figures::cpu_us_per_op;
use super::Loaded;
use crate::{profile, recommend};

pub(super) async fn run(cx: &mut Context<'_>, patrol: &Loaded<'_>) -> Result<()> {
    let label = cx.label.clone();
    let channel = &patrol.channels[0];
    let floor = recommend::grpc_floor(channel, &cx.city.units[0].id, 1_000)
        .await?
        .summary();
    cx.report.extra(
        format!("grpc_{label}_unary_floor_p50_us"),
        floor.p50_us(),
        "us",
    );
    cx.report.extra(
        format!("grpc_{label}_unary_floor_p99_us"),
        floor.p99_us(),
        "us",
    );
    let rec = profile::maybe_start(
        cx.opts.profile.as_deref(),
        &format!("recommend-{label}"),
        patrol.server.pid,
    )
    .await?;
    let pass = recommend::grpc_sequential(channel, &cx.points).await?;
    let s = pass.latencies.summary();
    if pass.short > 0 {
        warn!(
            short = pass.short,
            "recommendations with fewer than k units"
        );
    }
    cx.fig.grpc_p50_us = Some(s.p50_us());
    cx.fig.grpc_p99_us = Some(s.p99_us());
    cx.fig.grpc_top = Some(pass.top);
    let weighted = cx.city.centre_weighted_points(cx.opts.queries.min(2_000));
    let w = recommend::grpc_sequential(channel, &weighted)
        .await?
        .latencies
        .summary();
    cx.fig.grpc_weighted = Some((w.p50_us(), w.p99_us()));
    let before = patrol.server.sample();
    let (qps, under_load) = recommend::grpc_concurrent(
        &patrol.channels,
        &cx.points,
        cx.opts.recommend_tasks,
        cx.opts.phase_time,
    )
    .await?;
    cx.fig.grpc_qps = Some(qps);
    cx.fig.grpc_cpu_us = cpu_us_per_op(before, patrol.server.sample(), under_load.len());
    profile::maybe_stop(rec)?;
    cx.report.extra(
        format!("recommend_{label}_grpc_p99_us_under_load"),
        under_load.summary().p99_us(),
        "us",
    );
    info!(
        units = cx.n,
        p50_us = s.p50_us(),
        p99_us = s.p99_us(),
        qps = qps as u64,
        "patrol recommend done"
    );
    Ok(())
}
