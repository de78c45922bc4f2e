//! The Redis way at one unit count, on the bench's own redis-server: memory
//! of the two GEO sets, pipelined `GEOADD` ingest (and the sweep), and the
//! radius-doubling `GEOSEARCH`.

use anyhow::{Context as _, Result};
use redis::aio::MultiplexedConnection;
use tracing::info;

use super::context::Context;
use super::figures::{bytes_per_unit, cpu_us_per_op};
use crate::ingest::IngestSpec;
use crate::proc_stats;
use crate::recommend;
use crate::redis_alt::{self, GeoaddStyle, RedisServer};

pub(super) async fn run(cx: &mut Context<'_>) -> Result<()> {
    cx.city.restore_positions(&cx.home);
    let redis_server = &cx.opts.redis_server;
    let server = RedisServer::start(redis_server, &cx.opts.workdir)
        .await
        .with_context(|| {
            format!(
                "starting {} (install redis-server or pass --redis-server PATH)",
                redis_server.display()
            )
        })?;
    let mut con = server.connection().await?;
    let empty = server.sample();
    redis_alt::load_state(&mut con, &cx.city.units).await?;
    cx.fig.redis_bytes_per_unit = bytes_per_unit(empty, server.sample(), cx.city.units.len());
    if cx.opts.phases.ingest {
        ingest(cx, &server).await?;
    }
    if cx.opts.phases.recommend {
        recommend(cx, &server, &mut con).await?;
    }
    Ok(())
}

/// One `GEOADD` per ping, pipelined; then one multi-member `GEOADD` per batch.
async fn ingest(cx: &mut Context<'_>, server: &RedisServer) -> Result<()> {
    let (label, region) = (cx.label.clone(), cx.city.spec.region);
    let (before, me_before) = (server.sample(), proc_stats::sample_self());
    let out = redis_alt::ingest(
        server,
        &mut cx.city.units,
        region,
        &cx.spec,
        GeoaddStyle::PipelinedPerPing,
    )
    .await?;
    let (after, me_after) = (server.sample(), proc_stats::sample_self());
    cx.fig.redis_ingest_rate = Some(out.rate());
    cx.fig.redis_cpu_us = cpu_us_per_op(before, after, out.commands);
    if let (Some(b), Some(a)) = (me_before, me_after) {
        cx.report.extra(
            format!("ingest_{label}_redis_loadgen_cpu_cores"),
            b.cores_until(&a),
            "cores",
        );
    }
    info!(
        units = cx.city.units.len(),
        rate = out.rate() as u64,
        "redis ingest done"
    );
    let short = IngestSpec {
        duration: cx.opts.sweep_time,
        ..cx.spec
    };
    let multi = redis_alt::ingest(
        server,
        &mut cx.city.units,
        region,
        &short,
        GeoaddStyle::MultiMember,
    )
    .await?;
    cx.report.extra(
        format!("ingest_{label}_redis_multi_member_geoadd_pings_per_s"),
        multi.rate(),
        "1/s",
    );
    if cx.opts.sweep_here(cx.city.units.len()) {
        sweep(cx, server).await?;
    }
    Ok(())
}

/// Pipelined `GEOADD` at each clients x batch point of the sweep.
async fn sweep(cx: &mut Context<'_>, server: &RedisServer) -> Result<()> {
    let region = cx.city.spec.region;
    for &(clients, batch) in &cx.opts.sweep {
        let spec = IngestSpec {
            clients,
            batch,
            duration: cx.opts.sweep_time,
            ..cx.spec
        };
        let out = redis_alt::ingest(
            server,
            &mut cx.city.units,
            region,
            &spec,
            GeoaddStyle::PipelinedPerPing,
        )
        .await?;
        cx.fig.sweep.entry((clients, batch)).or_default().1 = Some(out.rate());
        info!(
            clients,
            batch,
            rate = out.rate() as u64,
            "redis ingest sweep point"
        );
    }
    Ok(())
}

/// The `PING` floor, the doubling search one at a time (uniform and
/// centre-weighted points), then many in flight.
async fn recommend(
    cx: &mut Context<'_>,
    server: &RedisServer,
    con: &mut MultiplexedConnection,
) -> Result<()> {
    let label = cx.label.clone();
    let floor = redis_alt::ping_floor(server, 1_000).await?.summary();
    cx.report.extra(
        format!("redis_{label}_ping_floor_p50_us"),
        floor.p50_us(),
        "us",
    );
    cx.report.extra(
        format!("redis_{label}_ping_floor_p99_us"),
        floor.p99_us(),
        "us",
    );
    cx.city.restore_positions(&cx.home);
    redis_alt::load_state(con, &cx.city.units).await?;
    let (lat, top, rounds) = redis_alt::sequential(server, &cx.points, recommend::K).await?;
    let s = lat.summary();
    cx.fig.redis_p50_us = Some(s.p50_us());
    cx.fig.redis_p99_us = Some(s.p99_us());
    cx.fig.redis_top = Some(top);
    let weighted = cx.city.centre_weighted_points(cx.opts.queries.min(2_000));
    let (w, _, w_rounds) = redis_alt::sequential(server, &weighted, recommend::K).await?;
    let w = w.summary();
    cx.fig.redis_weighted = Some((w.p50_us(), w.p99_us()));
    cx.report.extra(
        format!("recommend_{label}_centre_weighted_redis_geosearch_calls_per_query"),
        w_rounds,
        "count",
    );
    let before = server.sample();
    let (qps, under_load) = redis_alt::concurrent(
        server,
        &cx.points,
        recommend::K,
        cx.opts.recommend_tasks,
        4,
        cx.opts.phase_time,
    )
    .await?;
    cx.fig.redis_qps = Some(qps);
    cx.fig.redis_query_cpu_us = cpu_us_per_op(before, server.sample(), under_load.len());
    info!(
        p50_us = s.p50_us(),
        p99_us = s.p99_us(),
        qps = qps as u64,
        rounds,
        "redis recommend done"
    );
    cx.report.extra(
        format!("recommend_{label}_redis_geosearch_calls_per_query"),
        rounds,
        "count",
    );
    Ok(())
}
