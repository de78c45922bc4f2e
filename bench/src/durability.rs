//! The cost of durability: the same patrold binary, the same city and the same
//! load, first on the in-memory default, then with `[redis]` on (its own
//! redis-server with AOF `everysec`, as `deploy/redis.conf`), in one run.
//! Measured: ingest throughput, and ping-to-stream latency (one Watch
//! subscriber, paced ingest) — with Redis every ping batch is in the Redis
//! Stream before it is acknowledged and reaches the stream only after the log
//! reader has applied it.

use anyhow::{Context, Result};
use tracing::info;

use crate::city::City;
use crate::freshness;
use crate::ingest::{self, IngestSpec};
use crate::load::{register_units, send_positions};
use crate::report::{Better, Report, Row, count_label};
use crate::server::{Launcher, Patrold, redis_toml};

/// What one mode measured.
struct Measured {
    ingest_rate: f64,
    fresh_p50_ms: f64,
    fresh_p99_ms: f64,
}

pub async fn run(
    launcher: &Launcher,
    city: &mut City,
    spec: &IngestSpec,
    freshness_rate: f64,
    report: &mut Report,
) -> Result<()> {
    let label = count_label(city.units.len());
    let interval_ms = launcher.settings.position_interval_ms;
    let load = Load {
        spec,
        freshness_rate,
        interval_ms,
    };
    let memory = {
        let server = launcher.patrold("durability-memory", "").await?;
        measure(&server, city, &load)
            .await
            .context("in-memory patrold")?
    };
    let redis = launcher.durable_redis().await?;
    let durable = {
        let server = launcher
            .patrold("durability-redis", &redis_toml(&redis.url(), &[]))
            .await?;
        measure(&server, city, &load)
            .await
            .context("patrold on redis")?
    };
    drop(redis);
    record(report, &label, &load, &memory, &durable);
    Ok(())
}

/// The rows (in memory, Redis on), the share and the note.
fn record(
    report: &mut Report,
    label: &str,
    load: &Load<'_>,
    memory: &Measured,
    durable: &Measured,
) {
    let rows = [
        (
            "ingest_memory_pings_per_s",
            "ingest, in memory",
            "1/s",
            memory.ingest_rate,
            Better::Higher,
        ),
        (
            "ingest_redis_pings_per_s",
            "ingest, Redis on (AOF everysec)",
            "1/s",
            durable.ingest_rate,
            Better::Higher,
        ),
        (
            "freshness_memory_p50_ms",
            "ping to stream p50, in memory",
            "ms",
            memory.fresh_p50_ms,
            Better::Lower,
        ),
        (
            "freshness_memory_p99_ms",
            "ping to stream p99, in memory",
            "ms",
            memory.fresh_p99_ms,
            Better::Lower,
        ),
        (
            "freshness_redis_p50_ms",
            "ping to stream p50, Redis on",
            "ms",
            durable.fresh_p50_ms,
            Better::Lower,
        ),
        (
            "freshness_redis_p99_ms",
            "ping to stream p99, Redis on",
            "ms",
            durable.fresh_p99_ms,
            Better::Lower,
        ),
    ];
    for (key, what, unit, value, better) in rows {
        report.push(Row::new(
            format!("durability_{key}"),
            format!("{what} ({label})"),
            unit,
            value,
            better,
        ));
    }
    report.extra(
        "durability_ingest_redis_share_of_memory",
        durable.ingest_rate / memory.ingest_rate.max(1.0),
        "x",
    );
    report.note(format!(
        "durability: the same patrold, city ({label} units) and load on the in-memory default and with [redis] on (own redis-server, AOF everysec); ingest {} streams x {}; ping-to-stream: 1 subscriber, {} pings/s",
        load.spec.clients, load.spec.batch, load.freshness_rate
    ));
}

/// The load both modes get.
struct Load<'a> {
    spec: &'a IngestSpec,
    freshness_rate: f64,
    interval_ms: u64,
}

async fn measure(server: &Patrold, city: &mut City, load: &Load<'_>) -> Result<Measured> {
    let spec = load.spec;
    let region = city.spec.region;
    let channels = server.channels(4).await?;
    register_units(&channels, &city.units).await?;
    send_positions(&channels, &mut city.units, 1_000).await?;
    let ingest_channels = server.channels(spec.clients).await?;
    let out = ingest::run(&ingest_channels, &mut city.units, region, spec).await?;
    let ingest_rate = out.rate();
    info!(
        rate = ingest_rate as u64,
        rejected = out.rejected,
        "durability ingest"
    );
    let fresh_spec = IngestSpec {
        rate: Some(load.freshness_rate),
        batch: spec.batch.min(100),
        ..*spec
    };
    let observe = freshness::Observe {
        server_pid: server.pid,
        profile: None,
    };
    let fresh = freshness::run(
        server.channels(1).await?,
        &ingest_channels,
        &mut city.units,
        region,
        &fresh_spec,
        load.interval_ms,
        observe,
    )
    .await?;
    let s = fresh.latencies.summary();
    Ok(Measured {
        ingest_rate,
        fresh_p50_ms: s.p50_ms(),
        fresh_p99_ms: s.p99_ms(),
    })
}
