//! The targets from the issue, each checked against one row of the report.

use crate::report::{Goal, On, Target, count_label};

/// The targets; the memory one is checked at the largest unit count run.
pub fn targets(max_units: usize) -> Vec<Target> {
    let t = |key: &str, text: &str, row: String, on, goal, hint: &str| Target {
        key: key.into(),
        text: text.into(),
        row_key: row,
        on,
        goal,
        unmeasured_hint: hint.into(),
    };
    let max = count_label(max_units);
    vec![
        t(
            "target_ingest_100k_vs_redis",
            "ingest at 100k units vs pipelined GEOADD",
            "ingest_100k_pings_per_s".into(),
            On::Ratio,
            Goal::AtLeast(2.5),
            "needs --units 100000 and the ingest and redis phases",
        ),
        t(
            "target_core_recommend_100k_p99",
            "core nearest query at 100k units, p99",
            "recommend_100k_core_p99_us".into(),
            On::Ours,
            Goal::Below(5.0),
            "needs 100000 in the core unit counts",
        ),
        t(
            "target_grpc_recommend_1m_p99",
            "Recommend over gRPC at 1M units, p99",
            "recommend_1m_grpc_p99_us".into(),
            On::Ours,
            Goal::Below(1_000.0),
            "needs --units 1000000",
        ),
        t(
            "target_grpc_recommend_1m_vs_redis",
            "Recommend over gRPC at 1M units, p99 vs the Redis way",
            "recommend_1m_grpc_p99_us".into(),
            On::Ratio,
            Goal::AtLeast(10.0),
            "needs --units 1000000 and the redis phase",
        ),
        t(
            "target_freshness_100_subscribers",
            "freshness with 100 subscribers, p99 beyond the coalescing interval",
            "freshness_100_subscribers_p99_beyond_interval_ms".into(),
            On::Ours,
            Goal::Below(50.0),
            "needs --subscribers 100 and the freshness phase",
        ),
        t(
            "target_memory_per_unit",
            &format!("server memory per unit held at {max} units, all indexes"),
            format!("memory_{max}_bytes_per_unit"),
            On::Ours,
            Goal::Below(300.0),
            "needs a patrol phase and the server's pid",
        ),
    ]
}
