//! Patrol freshness: ping-to-`Watch` latency for each subscriber count, with
//! paced ingest.

use anyhow::Result;
use tracing::info;

use super::super::context::Context;
use super::Loaded;
use crate::freshness::{self, FreshnessOutcome};
use crate::ingest::IngestSpec;
use crate::report::Row;

pub(super) async fn run(cx: &mut Context<'_>, patrol: &Loaded<'_>) -> Result<()> {
    let ingest_channels = patrol.server.channels(cx.opts.clients).await?;
    let spec = IngestSpec {
        rate: Some(cx.opts.freshness_rate),
        batch: cx.opts.batch.min(100),
        ..cx.spec
    };
    for &subs in &cx.opts.subscribers {
        let sub_channels = patrol.server.channels(subs).await?;
        let name = format!("freshness-{}-{subs}", cx.label);
        let observe = freshness::Observe {
            server_pid: patrol.server.pid,
            profile: cx.opts.profile.as_deref().map(|d| (d, name.as_str())),
        };
        let region = cx.city.spec.region;
        let out = freshness::run(
            sub_channels,
            &ingest_channels,
            &mut cx.city.units,
            region,
            &spec,
            cx.opts.interval_ms,
            observe,
        )
        .await?;
        record(cx, subs, &out);
    }
    Ok(())
}

/// The rows and context figures of one subscriber count.
fn record(cx: &mut Context<'_>, subs: usize, out: &FreshnessOutcome) {
    let s = out.latencies.summary();
    let key = format!("freshness_{subs}_subscribers");
    let what = format!(
        "freshness, {subs} sub{} ({})",
        if subs == 1 { "" } else { "s" },
        cx.label
    );
    let report = &mut *cx.report;
    report.push_ms_percentiles(&key, &what, &s);
    report.push(Row::lower(
        format!("{key}_p99_beyond_interval_ms"),
        format!("{what} p99 - interval"),
        "ms",
        s.p99_ms() - cx.opts.interval_ms as f64,
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
    let cores = [
        ("server", out.server_cores),
        ("loadgen", out.loadgen_cores),
        ("other_processes", out.other_cores),
    ];
    for (who, c) in cores {
        if let Some(c) = c {
            report.extra(format!("{key}_{who}_cpu_cores"), c, "cores");
        }
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
