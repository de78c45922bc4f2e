//! Patrol's and Redis's figures at one unit count, collected while the phases
//! run and turned into paired rows (patrol, Redis, ratio) at the end.

use std::collections::BTreeMap;

use crate::proc_stats::ProcSample;
use crate::recommend;
use crate::report::{Better, Report, Row};

/// Patrol's and Redis's figures for one unit count.
#[derive(Debug, Default)]
pub(super) struct Figures {
    pub ingest_rate: Option<f64>,
    pub ingest_cpu_us: Option<f64>,
    pub bytes_per_unit: Option<f64>,
    pub grpc_p50_us: Option<f64>,
    pub grpc_p99_us: Option<f64>,
    pub grpc_qps: Option<f64>,
    pub grpc_top: Option<Vec<Option<String>>>,
    /// Server CPU per Recommend under load, microseconds.
    pub grpc_cpu_us: Option<f64>,
    pub redis_ingest_rate: Option<f64>,
    pub redis_cpu_us: Option<f64>,
    pub redis_bytes_per_unit: Option<f64>,
    pub redis_p50_us: Option<f64>,
    pub redis_p99_us: Option<f64>,
    pub redis_qps: Option<f64>,
    pub redis_top: Option<Vec<Option<String>>>,
    /// redis-server CPU per nearest-available query (all its GEOSEARCHes).
    pub redis_query_cpu_us: Option<f64>,
    /// Recommend p50, p99 (us) for queries placed like the units (dense
    /// centre), patrol and Redis.
    pub grpc_weighted: Option<(f64, f64)>,
    pub redis_weighted: Option<(f64, f64)>,
    /// Ingest rate by (clients, batch): (patrol, Redis).
    pub sweep: BTreeMap<(usize, usize), (Option<f64>, Option<f64>)>,
}

/// RSS growth per unit between two samples of a process.
pub(super) fn bytes_per_unit(
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    n: usize,
) -> Option<f64> {
    Some((after?.rss_bytes as f64 - before?.rss_bytes as f64) / n.max(1) as f64)
}

/// CPU microseconds per operation between two samples of a process.
pub(super) fn cpu_us_per_op(
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    ops: u64,
) -> Option<f64> {
    Some(before?.cpu_s_until(&after?) * 1e6 / ops.max(1) as f64)
}

/// One figure measured on both sides (or on one of them).
struct Pair {
    key: String,
    text: String,
    unit: &'static str,
    ours: Option<f64>,
    redis: Option<f64>,
    better: Better,
}

impl Pair {
    fn new(
        key: String,
        text: String,
        unit: &'static str,
        both: (Option<f64>, Option<f64>),
    ) -> Self {
        Self {
            key,
            text,
            unit,
            ours: both.0,
            redis: both.1,
            better: Better::Lower,
        }
    }

    fn higher_is_better(mut self) -> Self {
        self.better = Better::Higher;
        self
    }

    /// A row when patrol measured it; Redis's figure alone goes to context.
    fn emit(self, report: &mut Report) {
        match (self.ours, self.redis) {
            (Some(o), r) => {
                let mut row = Row::new(self.key, self.text, self.unit, o, self.better);
                row.redis = r;
                report.push(row);
            }
            (None, Some(r)) => report.extra(format!("{}_redis", self.key), r, self.unit),
            (None, None) => {}
        }
    }
}

/// Ingest and memory, both sides.
fn ingest_pairs(label: &str, f: &Figures) -> Vec<Pair> {
    vec![
        Pair::new(
            format!("ingest_{label}_pings_per_s"),
            format!("ingest pings/s ({label} units)"),
            "1/s",
            (f.ingest_rate, f.redis_ingest_rate),
        )
        .higher_is_better(),
        Pair::new(
            format!("ingest_{label}_server_cpu_us_per_ping"),
            format!("server CPU per ping ({label})"),
            "us",
            (f.ingest_cpu_us, f.redis_cpu_us),
        ),
        Pair::new(
            format!("memory_{label}_bytes_per_unit"),
            format!("memory per unit ({label})"),
            "B",
            (f.bytes_per_unit, f.redis_bytes_per_unit),
        ),
    ]
}

/// Recommend, both sides.
fn recommend_pairs(label: &str, f: &Figures) -> Vec<Pair> {
    let (gw, rw) = (f.grpc_weighted, f.redis_weighted);
    let p = |key: &str, text: &str, unit, both| {
        Pair::new(
            format!("recommend_{label}_{key}"),
            format!("{text} ({label})"),
            unit,
            both,
        )
    };
    vec![
        p(
            "grpc_p50_us",
            "recommend p50",
            "us",
            (f.grpc_p50_us, f.redis_p50_us),
        ),
        p(
            "grpc_p99_us",
            "recommend p99",
            "us",
            (f.grpc_p99_us, f.redis_p99_us),
        ),
        p(
            "grpc_qps",
            "recommend queries/s",
            "1/s",
            (f.grpc_qps, f.redis_qps),
        )
        .higher_is_better(),
        p(
            "server_cpu_us_per_query",
            "server CPU per recommend",
            "us",
            (f.grpc_cpu_us, f.redis_query_cpu_us),
        ),
        p(
            "centre_weighted_grpc_p50_us",
            "recommend p50, centre-weighted queries",
            "us",
            (gw.map(|w| w.0), rw.map(|w| w.0)),
        ),
        p(
            "centre_weighted_grpc_p99_us",
            "recommend p99, centre-weighted queries",
            "us",
            (gw.map(|w| w.1), rw.map(|w| w.1)),
        ),
    ]
}

/// The ingest sweep, both sides.
fn sweep_pairs(label: &str, f: &Figures) -> Vec<Pair> {
    f.sweep
        .iter()
        .map(|(&(clients, batch), &both)| {
            Pair::new(
                format!("ingest_{label}_c{clients}_b{batch}_pings_per_s"),
                format!(
                    "ingest pings/s ({label}, {clients} stream{} x {batch})",
                    if clients == 1 { "" } else { "s" }
                ),
                "1/s",
                both,
            )
            .higher_is_better()
        })
        .collect()
}

/// The paired rows of one unit count, and how often the top unit agreed.
pub(super) fn emit_rows(report: &mut Report, label: &str, f: &Figures) {
    let pairs = ingest_pairs(label, f)
        .into_iter()
        .chain(recommend_pairs(label, f))
        .chain(sweep_pairs(label, f));
    for pair in pairs {
        pair.emit(report);
    }
    if let (Some(a), Some(b)) = (&f.grpc_top, &f.redis_top) {
        report.extra(
            format!("recommend_{label}_top1_agreement_with_redis"),
            recommend::agreement(a, b),
            "share",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_both_sides_and_redis_alone_goes_to_context() {
        let mut f = Figures {
            ingest_rate: Some(400.0),
            redis_ingest_rate: Some(100.0),
            redis_p50_us: Some(300.0),
            ..Default::default()
        };
        f.sweep.insert((4, 100), (Some(10.0), None));
        let mut r = Report::default();
        emit_rows(&mut r, "10k", &f);
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            ["ingest_10k_pings_per_s", "ingest_10k_c4_b100_pings_per_s"]
        );
        assert_eq!(r.rows[0].ratio(), Some(4.0));
        assert_eq!(r.rows[1].label, "ingest pings/s (10k, 4 streams x 100)");
        assert_eq!(r.extras.len(), 1);
        assert_eq!(r.extras[0].0, "recommend_10k_grpc_p50_us_redis");
    }
}
