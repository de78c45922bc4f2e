//! Patrol ingest: the unpaced load for the timed phase, the CPU and memory
//! around it, then the clients x batch sweep.

use anyhow::Result;
use tracing::{info, warn};

use super::super::context::Context;
use super::super::figures::{bytes_per_unit, cpu_us_per_op};
use super::Loaded;
use crate::ingest::{self, IngestSpec};
use crate::proc_stats::{self, ProcSample};
use crate::profile;

/// The server, this process and the whole machine at one instant.
#[derive(Clone, Copy)]
struct CpuSample {
    server: Option<ProcSample>,
    me: Option<ProcSample>,
    machine_busy_s: Option<f64>,
}

impl CpuSample {
    fn take(patrol: &Loaded<'_>) -> Self {
        Self {
            server: patrol.server.sample(),
            me: proc_stats::sample_self(),
            machine_busy_s: proc_stats::machine_busy_s(),
        }
    }
}

pub(super) async fn run(cx: &mut Context<'_>, patrol: &Loaded<'_>) -> Result<()> {
    let label = cx.label.clone();
    let channels = patrol.server.channels(cx.opts.clients).await?;
    let rec = profile::maybe_start(
        cx.opts.profile.as_deref(),
        &format!("ingest-{label}"),
        patrol.server.pid,
    )
    .await?;
    let before = CpuSample::take(patrol);
    let region = cx.city.spec.region;
    let out = ingest::run(&channels, &mut cx.city.units, region, &cx.spec).await?;
    let after = CpuSample::take(patrol);
    other_processes(cx, before, after);
    profile::maybe_stop(rec)?;
    if out.rejected > 0 || out.duplicates > 0 {
        warn!(rejected = out.rejected, duplicates = out.duplicates, first = ?out.first_rejection, "pings not accepted");
    }
    info!(
        units = cx.n,
        rate = out.rate() as u64,
        accepted = out.accepted,
        "patrol ingest done"
    );
    cx.fig.ingest_rate = Some(out.rate());
    cx.fig.ingest_cpu_us = cpu_us_per_op(before.server, after.server, out.accepted);
    if let (Some(b), Some(a)) = (before.server, after.server) {
        cx.report.extra(
            format!("ingest_{label}_server_cpu_cores"),
            b.cores_until(&a),
            "cores",
        );
        cx.report.extra(
            format!("memory_{label}_bytes_per_unit_after_ingest"),
            bytes_per_unit(patrol.empty, Some(a), cx.n).unwrap_or(0.0),
            "B",
        );
    }
    if let (Some(b), Some(a)) = (before.me, after.me) {
        cx.report.extra(
            format!("ingest_{label}_loadgen_cpu_cores"),
            b.cores_until(&a),
            "cores",
        );
    }
    if cx.opts.sweep_here(cx.n) {
        sweep(cx, patrol).await?;
    }
    Ok(())
}

/// What every other process on the machine used while ingest ran.
fn other_processes(cx: &mut Context<'_>, before: CpuSample, after: CpuSample) {
    if let (Some(b), Some(a), Some(mb), Some(ma), Some(tb), Some(ta)) = (
        before.server,
        after.server,
        before.me,
        after.me,
        before.machine_busy_s,
        after.machine_busy_s,
    ) {
        let wall = a.at.duration_since(b.at).as_secs_f64();
        let other = (ta - tb) - b.cpu_s_until(&a) - mb.cpu_s_until(&ma);
        cx.report.extra(
            format!("ingest_{}_other_processes_cpu_cores", cx.label),
            (other / wall).max(0.0),
            "cores",
        );
    }
}

/// Ingest at each clients x batch point of the sweep.
async fn sweep(cx: &mut Context<'_>, patrol: &Loaded<'_>) -> Result<()> {
    let region = cx.city.spec.region;
    for &(clients, batch) in &cx.opts.sweep {
        let channels = patrol.server.channels(clients).await?;
        let spec = IngestSpec {
            clients,
            batch,
            duration: cx.opts.sweep_time,
            ..cx.spec
        };
        let out = ingest::run(&channels, &mut cx.city.units, region, &spec).await?;
        cx.fig.sweep.entry((clients, batch)).or_default().0 = Some(out.rate());
        info!(
            clients,
            batch,
            rate = out.rate() as u64,
            "patrol ingest sweep point"
        );
    }
    Ok(())
}
