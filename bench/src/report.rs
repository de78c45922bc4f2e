//! Results: latency histograms, the comparison rows (patrol, Redis, ratio,
//! target), the human table and the JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// A latency histogram in nanoseconds, 3 significant figures, up to an hour.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"))
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// Records `n` samples of the same value.
    pub fn record_ns_n(&mut self, ns: u64, n: u64) {
        self.0.saturating_record_n(ns.max(1), n);
    }

    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1), nanoseconds (0 when empty).
    pub fn quantile_ns(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(q) as f64
        }
    }

    /// The smallest sample (0 when there is none).
    pub fn min_ns(&self) -> u64 {
        if self.0.is_empty() { 0 } else { self.0.min() }
    }

    pub fn summary(&self) -> Summary {
        if self.0.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.0.len(),
            p50_ns: self.0.value_at_quantile(0.50) as f64,
            p99_ns: self.0.value_at_quantile(0.99) as f64,
            max_ns: self.0.max() as f64,
            mean_ns: self.0.mean(),
        }
    }
}

/// Percentiles of a latency sample, nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub max_ns: f64,
    pub mean_ns: f64,
}

impl Summary {
    pub fn p50_us(&self) -> f64 {
        self.p50_ns / 1e3
    }
    pub fn p99_us(&self) -> f64 {
        self.p99_ns / 1e3
    }
    pub fn p50_ms(&self) -> f64 {
        self.p50_ns / 1e6
    }
    pub fn p99_ms(&self) -> f64 {
        self.p99_ns / 1e6
    }
    pub fn max_ms(&self) -> f64 {
        self.max_ns / 1e6
    }
}

/// Which way is better for a figure; it decides how the ratio is taken so that
/// a ratio above 1 always means patrol is ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A goal for a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    Below(f64),
    AtLeast(f64),
}

impl Goal {
    pub fn met(self, value: f64) -> bool {
        match self {
            Goal::Below(t) => value < t,
            Goal::AtLeast(t) => value >= t,
        }
    }

    /// How far `value` is from the goal, as text ("" when met).
    pub fn shortfall(self, value: f64, unit: &str) -> String {
        if self.met(value) {
            return String::new();
        }
        match self {
            Goal::Below(t) => format!(
                "over by {} {unit} ({:.0}%)",
                fmt_num(value - t),
                (value / t - 1.0) * 100.0
            ),
            Goal::AtLeast(t) => format!(
                "short by {} {unit} ({:.0}%)",
                fmt_num(t - value),
                (1.0 - value / t) * 100.0
            ),
        }
    }

    pub fn describe(self, unit: &str) -> String {
        match self {
            Goal::Below(t) => format!("< {} {unit}", fmt_num(t)),
            Goal::AtLeast(t) => format!(">= {} {unit}", fmt_num(t)),
        }
    }
}

/// One figure, patrol's, with Redis's beside it when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// JSON name, e.g. `ingest_100k_pings_per_s`.
    pub key: String,
    /// Table label.
    pub label: String,
    pub unit: &'static str,
    pub ours: f64,
    pub redis: Option<f64>,
    pub better: Better,
}

impl Row {
    pub fn new(
        key: impl Into<String>,
        label: impl Into<String>,
        unit: &'static str,
        ours: f64,
        better: Better,
    ) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            unit,
            ours,
            redis: None,
            better,
        }
    }

    /// Patrol's figure alone, where lower is better (latencies, costs).
    pub fn lower(
        key: impl Into<String>,
        label: impl Into<String>,
        unit: &'static str,
        ours: f64,
    ) -> Self {
        Self::new(key, label, unit, ours, Better::Lower)
    }

    /// Patrol's figure alone, where higher is better (rates).
    pub fn higher(
        key: impl Into<String>,
        label: impl Into<String>,
        unit: &'static str,
        ours: f64,
    ) -> Self {
        Self::new(key, label, unit, ours, Better::Higher)
    }

    pub fn with_redis(mut self, redis: f64) -> Self {
        self.redis = Some(redis);
        self
    }

    /// How many times better patrol is than Redis (>1: patrol ahead).
    pub fn ratio(&self) -> Option<f64> {
        let redis = self.redis?;
        let r = match self.better {
            Better::Higher => self.ours / redis,
            Better::Lower => redis / self.ours,
        };
        r.is_finite().then_some(r)
    }
}

/// What a target is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// Patrol's own figure.
    Ours,
    /// The ratio to Redis.
    Ratio,
}

/// A target from the issue, checked against a row when the run measured it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// JSON name, e.g. `target_ingest_100k_vs_redis`.
    pub key: String,
    pub text: String,
    /// The row it is checked against.
    pub row_key: String,
    pub on: On,
    pub goal: Goal,
    /// Why it may not have been measured (e.g. "needs --units 1000000").
    pub unmeasured_hint: String,
}

/// A target's outcome in this run.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    pub target: Target,
    pub value: Option<f64>,
    pub unit: &'static str,
}

impl TargetCheck {
    pub fn met(&self) -> Option<bool> {
        self.value.map(|v| self.target.goal.met(v))
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Figures without a Redis counterpart or a target (context).
    pub extras: Vec<(String, f64, &'static str)>,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
    /// Run facts (mode, seed, machine), kept in the JSON under `run`.
    pub run: Map<String, Value>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn extra(&mut self, key: impl Into<String>, value: f64, unit: &'static str) {
        self.extras.push((key.into(), value, unit));
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Rows `{key}_p50_ms`, `{key}_p99_ms` and `{key}_max_ms`, labelled
    /// "{what} p50" and so on.
    pub fn push_ms_percentiles(&mut self, key: &str, what: &str, s: &Summary) {
        let figures = [
            ("p50", s.p50_ms()),
            ("p99", s.p99_ms()),
            ("max", s.max_ms()),
        ];
        for (name, value) in figures {
            self.push(Row::lower(
                format!("{key}_{name}_ms"),
                format!("{what} {name}"),
                "ms",
                value,
            ));
        }
    }

    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    /// The per-figure median of several runs of the same configuration: each
    /// row's patrol and Redis figures and each context figure separately (the
    /// ratio is then taken between the medians). Rows, targets and notes come
    /// from the first run; figures missing from some runs use the others.
    pub fn median(runs: &[Report]) -> Report {
        let Some(first) = runs.first() else {
            return Report::default();
        };
        let mut out = first.clone();
        for row in &mut out.rows {
            let same: Vec<&Row> = runs.iter().filter_map(|r| r.row(&row.key)).collect();
            row.ours = median(same.iter().map(|r| r.ours).collect());
            let redis: Vec<f64> = same.iter().filter_map(|r| r.redis).collect();
            row.redis = (!redis.is_empty()).then(|| median(redis));
        }
        for (key, value, _) in &mut out.extras {
            let all: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.extras.iter().find(|(k, ..)| k == key).map(|(_, v, _)| *v))
                .collect();
            *value = median(all);
        }
        out.run.insert("runs".into(), json!(runs.len()));
        if runs.len() > 1 {
            out.note(format!("every figure is the median of {} runs", runs.len()));
        }
        out
    }

    pub fn checks(&self) -> Vec<TargetCheck> {
        self.targets
            .iter()
            .map(|t| {
                let row = self.row(&t.row_key);
                let (value, unit) = match (row, t.on) {
                    (Some(r), On::Ours) => (Some(r.ours), r.unit),
                    (Some(r), On::Ratio) => (r.ratio(), "x"),
                    (None, On::Ours) => (None, ""),
                    (None, On::Ratio) => (None, "x"),
                };
                TargetCheck {
                    target: t.clone(),
                    value,
                    unit,
                }
            })
            .collect()
    }

    /// One JSON object: metric name -> {"value", "unit"}; Redis figures under
    /// `<name>_redis`, ratios under `<name>_vs_redis` (>1: patrol ahead),
    /// targets under `target_*` with `goal` and `met`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for r in &self.rows {
            out.insert(r.key.clone(), json!({"value": r.ours, "unit": r.unit}));
            if let Some(redis) = r.redis {
                out.insert(
                    format!("{}_redis", r.key),
                    json!({"value": redis, "unit": r.unit}),
                );
            }
            if let Some(ratio) = r.ratio() {
                out.insert(
                    format!("{}_vs_redis", r.key),
                    json!({"value": ratio, "unit": "x"}),
                );
            }
        }
        for (key, value, unit) in &self.extras {
            out.insert(key.clone(), json!({"value": value, "unit": unit}));
        }
        for c in self.checks() {
            out.insert(
                c.target.key.clone(),
                json!({
                    "value": c.value,
                    "unit": c.unit,
                    "goal": c.target.goal.describe(c.unit),
                    "met": c.met(),
                    "target": c.target.text,
                }),
            );
        }
        if !self.run.is_empty() {
            out.insert("run".into(), Value::Object(self.run.clone()));
        }
        Value::Object(out)
    }

    /// Rows grouped by section (ingest, memory, recommend, freshness,
    /// dispatch), in run order within a section.
    fn ordered_rows(&self) -> Vec<&Row> {
        const SECTIONS: [&str; 5] = ["ingest", "memory", "recommend", "freshness", "dispatch"];
        let section = |r: &Row| {
            SECTIONS
                .iter()
                .position(|s| r.key.starts_with(s))
                .unwrap_or(SECTIONS.len())
        };
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| section(r));
        rows
    }

    fn main_grid(&self) -> Vec<[String; 5]> {
        let mut lines: Vec<[String; 5]> = vec![[
            "metric".into(),
            "patrol".into(),
            "redis".into(),
            "patrol ahead".into(),
            "unit".into(),
        ]];
        for r in self.ordered_rows() {
            lines.push([
                r.label.clone(),
                fmt_num(r.ours),
                r.redis.map(fmt_num).unwrap_or_else(|| "-".into()),
                r.ratio()
                    .map(|x| format!("{x:.1}x"))
                    .unwrap_or_else(|| "-".into()),
                r.unit.to_string(),
            ]);
        }
        lines
    }

    fn context_grid(&self) -> Vec<[String; 3]> {
        let mut ctx = vec![["context".to_string(), "value".into(), "unit".into()]];
        for (k, v, u) in &self.extras {
            ctx.push([k.clone(), fmt_num(*v), u.to_string()]);
        }
        ctx
    }

    fn target_grid(&self) -> Vec<[String; 4]> {
        let mut t = vec![[
            "target".to_string(),
            "goal".into(),
            "measured".into(),
            "met?".into(),
        ]];
        for c in &self.checks() {
            let unit = c.unit;
            let (measured, met) = match c.value {
                Some(v) => {
                    let met = if c.target.goal.met(v) {
                        "met".to_string()
                    } else {
                        format!("MISSED: {}", c.target.goal.shortfall(v, unit))
                    };
                    (format!("{} {unit}", fmt_num(v)), met)
                }
                None => (
                    "-".into(),
                    format!("not measured ({})", c.target.unmeasured_hint),
                ),
            };
            t.push([
                c.target.text.clone(),
                c.target.goal.describe(unit),
                measured,
                met,
            ]);
        }
        t
    }

    /// The human table: metric, patrol, Redis, ratio; then context figures,
    /// targets and notes.
    pub fn table(&self) -> String {
        let mut out = render(&self.main_grid());
        if !self.extras.is_empty() {
            out.push('\n');
            out.push_str(&render(&self.context_grid()));
        }
        if !self.targets.is_empty() {
            out.push('\n');
            out.push_str(&render(&self.target_grid()));
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// The same tables as GitHub markdown, for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = render_markdown(&self.main_grid());
        if !self.targets.is_empty() {
            out.push('\n');
            out.push_str(&render_markdown(&self.target_grid()));
        }
        if !self.extras.is_empty() {
            out.push('\n');
            out.push_str(&render_markdown(&self.context_grid()));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

fn render_markdown<const N: usize>(lines: &[[String; N]]) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let aligns: Vec<&str> = (0..N)
                .map(|j| if j == 0 || j == N - 1 { "---" } else { "---:" })
                .collect();
            let _ = writeln!(out, "|{}|", aligns.join("|"));
        }
    }
    out
}

fn render<const N: usize>(lines: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for l in lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let mut line = String::new();
        for (j, (c, w)) in l.iter().zip(widths).enumerate() {
            if j == 0 || j == N - 1 {
                let _ = write!(line, "{c:<w$}");
            } else {
                let _ = write!(line, "{c:>w$}");
            }
            if j + 1 < N {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (N - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// A number with about three significant figures, thousands separated.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1000.0 {
        let int = v.round() as i64;
        let digits = int.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if int < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

/// A gRPC status code as it appears in metric names: `resource_exhausted`.
pub fn code_key(code: tonic::Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// "10k", "100k", "1m": unit counts in metric names.
pub fn count_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sample() {
        let mut h = Latencies::new();
        for v in 1..=1000u64 {
            h.record_ns(v * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        // 3 significant figures
        assert!((s.p50_ns - 500_000.0).abs() <= 500.0, "{}", s.p50_ns);
        assert!((s.p99_ns - 990_000.0).abs() <= 1_000.0, "{}", s.p99_ns);
        assert!((s.max_ns - 1_000_000.0).abs() <= 1_000.0, "{}", s.max_ns);
        let mut other = Latencies::new();
        other.record(Duration::from_millis(5));
        h.merge(&other);
        assert_eq!(h.summary().count, 1001);
        assert!(h.summary().max_ns >= 5e6 * 0.999);
        assert_eq!(Latencies::new().summary(), Summary::default());
        assert!((h.quantile_ns(0.95) - 950_000.0).abs() <= 2_000.0);
        assert_eq!(Latencies::new().quantile_ns(0.95), 0.0);
    }

    #[test]
    fn ratio_points_the_right_way() {
        let tput = Row::new("a", "a", "1/s", 300.0, Better::Higher).with_redis(100.0);
        assert_eq!(tput.ratio(), Some(3.0));
        let lat = Row::new("b", "b", "us", 50.0, Better::Lower).with_redis(500.0);
        assert_eq!(lat.ratio(), Some(10.0));
        assert_eq!(Row::new("c", "c", "us", 1.0, Better::Lower).ratio(), None);
    }

    #[test]
    fn targets_and_json() {
        let mut r = Report::default();
        r.push(Row::new("lat", "latency", "us", 1500.0, Better::Lower).with_redis(6000.0));
        r.targets.push(Target {
            key: "target_lat".into(),
            text: "latency".into(),
            row_key: "lat".into(),
            on: On::Ours,
            goal: Goal::Below(1000.0),
            unmeasured_hint: String::new(),
        });
        r.targets.push(Target {
            key: "target_lat_ratio".into(),
            text: "ratio".into(),
            row_key: "lat".into(),
            on: On::Ratio,
            goal: Goal::AtLeast(10.0),
            unmeasured_hint: String::new(),
        });
        r.targets.push(Target {
            key: "target_missing".into(),
            text: "missing".into(),
            row_key: "nope".into(),
            on: On::Ours,
            goal: Goal::Below(1.0),
            unmeasured_hint: "needs more".into(),
        });
        let j = r.to_json();
        assert_eq!(j["lat"]["value"], 1500.0);
        assert_eq!(j["lat_redis"]["value"], 6000.0);
        assert_eq!(j["lat_vs_redis"]["value"], 4.0);
        assert_eq!(j["target_lat"]["met"], false);
        assert_eq!(j["target_lat_ratio"]["met"], false);
        assert_eq!(j["target_missing"]["met"], Value::Null);
        let table = r.table();
        assert!(table.contains("MISSED: over by 500 us (50%)"), "{table}");
        let md = r.markdown();
        assert!(md.starts_with("| metric | patrol | redis | patrol ahead | unit |\n|---|---:|---:|---:|---|\n| latency | 1,500 | 6,000 | 4.0x | us |"), "{md}");
        assert!(table.contains("not measured (needs more)"), "{table}");
        assert_eq!(
            Goal::AtLeast(10.0).shortfall(4.0, "x"),
            "short by 6.00 x (60%)"
        );
    }

    #[test]
    fn median_of_runs() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        let run = |ours: f64, redis: f64, extra: f64| {
            let mut r = Report::default();
            r.push(Row::new("x", "x", "1/s", ours, Better::Higher).with_redis(redis));
            r.extra("e", extra, "B");
            r
        };
        let m = Report::median(&[
            run(10.0, 5.0, 1.0),
            run(30.0, 1.0, 3.0),
            run(20.0, 2.0, 2.0),
        ]);
        assert_eq!(m.rows[0].ours, 20.0);
        assert_eq!(m.rows[0].redis, Some(2.0));
        assert_eq!(m.rows[0].ratio(), Some(10.0));
        assert_eq!(m.extras[0].1, 2.0);
        assert_eq!(m.run["runs"], 3);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_num(1_234_567.8), "1,234,568");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(count_label(10_000), "10k");
        assert_eq!(count_label(1_000_000), "1m");
        assert_eq!(count_label(12_345), "12345");
        assert_eq!(
            code_key(tonic::Code::ResourceExhausted),
            "resource_exhausted"
        );
        assert_eq!(code_key(tonic::Code::Ok), "ok");
        assert_eq!(code_key(tonic::Code::DeadlineExceeded), "deadline_exceeded");
    }
}
