//! The dispatcher core in-process: its exact heap per unit while it is built,
//! and the nearest query alone (no gRPC), with and without the explanation.

use anyhow::{Context as _, Result};
use patrol_dispatcher::Dispatcher;
use std::time::Instant;
use tracing::{info, warn};

use crate::city::{City, SimUnit};
use crate::heap;
use crate::load::unix_ms;
use crate::recommend::{self, HeapSteps};
use crate::report::{Report, Row, Summary};

/// What the core phase needs from one unit count.
pub(super) struct CoreInput<'a> {
    pub city: &'a City,
    /// Every unit's position (lon, lat) for the core.
    pub home: &'a [(f64, f64)],
    pub points: &'a [(f64, f64)],
    pub label: &'a str,
}

pub(super) fn run(input: CoreInput<'_>, report: &mut Report) -> Result<()> {
    let now = unix_ms();
    let mut units: Vec<SimUnit> = input.city.units.clone();
    for (u, &(lon, lat)) in units.iter_mut().zip(input.home) {
        (u.lon, u.lat) = (lon, lat);
    }
    let t = Instant::now();
    let heap_before = heap::live_bytes();
    let (core, steps) =
        recommend::build_core_measured(&units, now).context("building the in-process core")?;
    heap_figures(report, input.label, units.len(), heap_before, &steps);
    info!(
        units = units.len(),
        secs = t.elapsed().as_secs_f64(),
        "core built"
    );
    let s = query_figures(report, input.label, &core, input.points, now)?;
    info!(
        units = units.len(),
        p50_us = s.p50_us(),
        p99_us = s.p99_us(),
        "core recommend done"
    );
    Ok(())
}

/// The dispatcher core alone, exact heap bytes: what the server's RSS figure
/// is made of, minus the server around it and fragmentation; and what
/// registering, positioning and marking busy each add.
fn heap_figures(report: &mut Report, label: &str, n: usize, before: usize, steps: &HeapSteps) {
    if steps[3] == 0 {
        return;
    }
    let per = |a: usize, b: usize| (b as f64 - a as f64) / n.max(1) as f64;
    let figures = [
        ("", before, steps[3]),
        ("_registered", before, steps[1]),
        ("_positioned", steps[1], steps[2]),
        ("_busy", steps[2], steps[3]),
    ];
    for (step, a, b) in figures {
        report.extra(
            format!("memory_{label}_core_heap{step}_bytes_per_unit"),
            per(a, b),
            "B",
        );
    }
}

/// Nearest-query latency in-process, then the same with the explanation;
/// returns the former.
fn query_figures(
    report: &mut Report,
    label: &str,
    core: &Dispatcher,
    points: &[(f64, f64)],
    now: i64,
) -> Result<Summary> {
    // More samples than the gRPC pass: each query is microseconds.
    let many: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .cycle()
        .take(points.len().max(20_000))
        .collect();
    let pass = recommend::core_nearest_pass(core, &many, now)?;
    if pass.short > 0 {
        warn!(short = pass.short, "core searches with fewer than k units");
    }
    let s = pass.latencies.summary();
    report.push(Row::lower(
        format!("recommend_{label}_core_p50_us"),
        format!("core nearest query p50 ({label})"),
        "us",
        s.p50_us(),
    ));
    report.push(Row::lower(
        format!("recommend_{label}_core_p99_us"),
        format!("core nearest query p99 ({label})"),
        "us",
        s.p99_us(),
    ));
    let explained = recommend::core_recommend_pass(core, &many, now)?
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
    Ok(s)
}
