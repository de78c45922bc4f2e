//! Response plans: what a good answer to an incident looks like ("fight,
//! priority 1: two units, at least one car; also the nearest foot unit if it
//! is within 3 minutes"), and [`fill`], which picks the units a plan asks for
//! from candidates and explains what it could not find.
//!
//! # Needs are constraints over one set
//! A plan's needs all speak about the *same* set of units: `{ count = 2 }`
//! and `{ count = 1, kinds = ["car"] }` mean "two units, at least one of them
//! a car", not three units. A unit counts towards every need it matches, up
//! to each need's count. [`fill`] builds the set fastest first:
//!
//! 1. Needs are taken narrowest first (a need that admits fewer kinds, then
//!    one that requires more capabilities, then a shorter `within_s`; ties
//!    in the order written), the required needs before the optional ones, so
//!    "at least one car" picks its car before "two units" counts it.
//! 2. For each need, the units already chosen that match it count first
//!    (fastest first); if that is not enough, the fastest matching units not
//!    yet chosen are added. No unit is chosen twice.
//! 3. A need still short is a [`Shortfall`], with the fastest unit that
//!    matches but arrives after `within_s`, if any, so the operator can send
//!    it anyway: "no foot unit within 3 minutes (nearest: 5 min 20 s)".
//!
//! Optional needs are filled the same way, over the same set: "also the
//! nearest foot unit" adds no one when a foot unit within the limit is
//! already going. A unit matches a need when its kind is one of the need's
//! kinds (or the need names none), it has every capability the need names,
//! and its ETA is at most `within_s` (when set).
//!
//! # Which plan
//! [`PlanBook::plan_for`] takes the most specific plan that matches the
//! incident's type (exactly, or `"*"`) and priority: a named type beats
//! `"*"`, then a narrower priority range beats a wider one, then the plan
//! written first wins. When none matches, the book's default plan applies
//! (one unit of any kind, unless configured).

use std::ops::RangeInclusive;

use crate::error::Error;
use crate::incidents::MAX_KIND_LEN;
use crate::recommend::{MAX_K, UnitQuery};
use crate::units::{MAX_CAPABILITIES, UnitKind};

/// At most this many plans in a book.
pub const MAX_PLANS: usize = 1000;
/// At most this many units in one plan, its needs and optional needs
/// together (the most a recommendation returns).
pub const MAX_PLAN_UNITS: u32 = MAX_K as u32;
/// The longest `within_s`, seconds (a day).
pub const MAX_WITHIN_S: f64 = 86_400.0;
/// Incident priorities run from 1 (most urgent) to this.
pub const LOWEST_PRIORITY: u32 = 5;
/// The incident type that matches any type.
pub const ANY_TYPE: &str = "*";

/// Every kind, in declaration order.
const ALL_KINDS: [UnitKind; 4] = [
    UnitKind::Car,
    UnitKind::Foot,
    UnitKind::EBike,
    UnitKind::Motorcycle,
];

/// The kind a plan names, as [`UnitKind::as_str`] spells it.
fn kind_named(name: &str) -> Option<UnitKind> {
    ALL_KINDS.into_iter().find(|k| k.as_str() == name)
}

/// Kinds in a plan are written as [`UnitKind::as_str`] spells them: "car",
/// "foot", "e-bike", "motorcycle".
mod kind_names {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::units::UnitKind;

    pub(super) fn serialize<S: Serializer>(kinds: &[UnitKind], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(kinds.iter().map(|k| k.as_str()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UnitKind>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|name| {
                super::kind_named(name).ok_or_else(|| {
                    D::Error::custom(format!(
                        "unknown unit kind {name:?}: expected car, foot, e-bike or motorcycle"
                    ))
                })
            })
            .collect()
    }
}

/// Priorities are written `[min, max]`, inclusive.
mod priority_range {
    use std::ops::RangeInclusive;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        r: &RangeInclusive<u32>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        [*r.start(), *r.end()].serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<RangeInclusive<u32>, D::Error> {
        let [min, max] = <[u32; 2]>::deserialize(d)?;
        Ok(min..=max)
    }
}

fn one() -> u32 {
    1
}

fn any_type() -> String {
    ANY_TYPE.to_string()
}

fn all_priorities() -> RangeInclusive<u32> {
    1..=LOWEST_PRIORITY
}

/// Units a plan asks for: `count` units of one of `kinds`, with all of
/// `capabilities`, arriving within `within_s`. In TOML:
/// `{ count = 1, kinds = ["foot"], within_s = 180 }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Need {
    /// How many units, 1..=[`MAX_PLAN_UNITS`] (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Only these kinds, written "car", "foot", "e-bike", "motorcycle"
    /// (empty: any kind).
    #[serde(default, with = "kind_names")]
    pub kinds: Vec<UnitKind>,
    /// The unit must have all of these capability tags.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Only units whose ETA is at most this, seconds.
    #[serde(default)]
    pub within_s: Option<f64>,
}

impl Need {
    /// `count` units of any kind.
    pub fn any(count: u32) -> Self {
        Need {
            count,
            kinds: Vec::new(),
            capabilities: Vec::new(),
            within_s: None,
        }
    }

    /// `count` units of `kind`.
    pub fn of(count: u32, kind: UnitKind) -> Self {
        Need {
            kinds: vec![kind],
            ..Need::any(count)
        }
    }

    /// The same need, only for units arriving within `within_s` seconds.
    pub fn within(self, within_s: f64) -> Self {
        Need {
            within_s: Some(within_s),
            ..self
        }
    }

    /// Whether `candidate` matches all but `within_s`.
    fn admits<K>(&self, candidate: &PlanCandidate<'_, K>) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&candidate.kind))
            && self
                .capabilities
                .iter()
                .all(|c| candidate.capabilities.iter().any(|h| h == c))
    }

    /// Whether `eta_s` is in time for the need.
    fn in_time(&self, eta_s: f64) -> bool {
        self.within_s.is_none_or(|w| eta_s <= w)
    }

    /// Whether `candidate` may fill the need.
    fn matches<K>(&self, candidate: &PlanCandidate<'_, K>) -> bool {
        self.admits(candidate) && self.in_time(candidate.eta_s)
    }

    /// The kinds the need admits: its own, or all of them.
    fn admitted_kinds(&self) -> &[UnitKind] {
        if self.kinds.is_empty() {
            &ALL_KINDS
        } else {
            &self.kinds
        }
    }

    /// Narrowest first: fewer kinds, more capabilities, a shorter limit.
    fn breadth(&self) -> (usize, std::cmp::Reverse<usize>, f64) {
        (
            self.admitted_kinds().len(),
            std::cmp::Reverse(self.capabilities.len()),
            self.within_s.unwrap_or(f64::INFINITY),
        )
    }

    /// The unit noun, e.g. "car", "foot unit", "car or motorcycle", "unit",
    /// with its capabilities.
    fn noun(&self, plural: bool) -> String {
        let s = if plural { "s" } else { "" };
        let mut noun = if self.kinds.is_empty() {
            format!("unit{s}")
        } else {
            self.kinds
                .iter()
                .map(|k| match k {
                    UnitKind::Foot => format!("foot unit{s}"),
                    other => format!("{}{s}", other.as_str()),
                })
                .collect::<Vec<_>>()
                .join(" or ")
        };
        if !self.capabilities.is_empty() {
            noun.push_str(" with ");
            noun.push_str(&self.capabilities.join(", "));
        }
        noun
    }

    /// For operators, e.g. "2 units", "1 foot unit within 3 minutes".
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.count, self.noun(self.count != 1));
        if let Some(w) = self.within_s {
            text.push_str(" within ");
            text.push_str(&limit_text(w));
        }
        text
    }

    fn validate(&self, field: &str) -> Result<(), Error> {
        if !(1..=MAX_PLAN_UNITS).contains(&self.count) {
            return Err(Error::invalid(
                &format!("{field}.count"),
                self.count,
                format!("must be 1..={MAX_PLAN_UNITS} units"),
            ));
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            if self.kinds[..i].contains(kind) {
                return Err(Error::invalid(
                    &format!("{field}.kinds[{i}]"),
                    format!("{:?}", kind.as_str()),
                    "is named twice",
                ));
            }
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(Error::invalid(
                &format!("{field}.capabilities"),
                format!("{} tags", self.capabilities.len()),
                format!("must be at most {MAX_CAPABILITIES} tags"),
            ));
        }
        for (i, cap) in self.capabilities.iter().enumerate() {
            crate::error::validate_id(&format!("{field}.capabilities[{i}]"), cap)?;
        }
        if let Some(w) = self.within_s
            && !(w.is_finite() && w > 0.0 && w <= MAX_WITHIN_S)
        {
            return Err(Error::invalid(
                &format!("{field}.within_s"),
                w,
                format!("must be above 0 and at most {MAX_WITHIN_S} seconds"),
            ));
        }
        Ok(())
    }
}

/// What to send to incidents of one type and a range of priorities. In TOML:
///
/// ```toml
/// [[plans]]
/// incident_type = "fight"
/// priorities = [1, 2]
/// needs = [ { count = 2 }, { count = 1, kinds = ["car"] } ]
/// optional = [ { count = 1, kinds = ["foot"], within_s = 180 } ]
/// ```
///
/// reads "fight, priority 1 or 2: two units, at least one a car; also a foot
/// unit if one is within 3 minutes" (see the module docs for how needs
/// combine).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsePlan {
    /// The incident type it is for, exactly as incidents name it, or `"*"`
    /// for any (the default).
    #[serde(default = "any_type")]
    pub incident_type: String,
    /// The priorities it is for, written `[min, max]`, inclusive, within
    /// 1..=5 (default `[1, 5]`).
    #[serde(default = "all_priorities", with = "priority_range")]
    pub priorities: RangeInclusive<u32>,
    /// What a complete answer must have; at least one need.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// What to add when it can be had; a missing one is a shortfall, but the
    /// answer is still complete.
    #[serde(default)]
    pub optional: Vec<Need>,
}

impl ResponsePlan {
    /// One unit of any kind, for any incident: what a book answers with
    /// when no plan matches, unless configured otherwise.
    pub fn one_unit() -> Self {
        ResponsePlan {
            incident_type: any_type(),
            priorities: all_priorities(),
            needs: vec![Need::any(1)],
            optional: Vec::new(),
        }
    }

    /// Whether the plan is for incidents of `incident_type` at `priority`.
    pub fn applies_to(&self, incident_type: &str, priority: u32) -> bool {
        (self.incident_type == ANY_TYPE || self.incident_type == incident_type)
            && self.priorities.contains(&priority)
    }

    /// The need `need` names.
    pub fn need(&self, need: NeedRef) -> Option<&Need> {
        match need {
            NeedRef::Required(i) => self.needs.get(i),
            NeedRef::Optional(i) => self.optional.get(i),
        }
    }

    /// The most units the plan can choose: every count added up.
    pub fn max_units(&self) -> u32 {
        self.needs
            .iter()
            .chain(&self.optional)
            .map(|n| n.count)
            .fold(0u32, u32::saturating_add)
    }

    /// The searches that find every candidate [`fill`] could use: for each
    /// need and each kind it admits, the nearest units of that kind with
    /// the need's capabilities, as many as the plan can choose (capped at
    /// [`MAX_K`]). Within one kind, nearer means sooner (straight-line ETAs
    /// use one speed per kind), so each need's fastest matching units, and
    /// the fastest one beyond its `within_s`, are among the results. Run
    /// each, merge the units (the same unit may come from several), and pass
    /// them to [`fill`]. Duplicate searches are left out.
    pub fn candidate_queries(&self) -> Vec<UnitQuery> {
        let k = (self.max_units() as usize).clamp(1, MAX_K);
        let mut queries: Vec<UnitQuery> = Vec::new();
        for need in self.needs.iter().chain(&self.optional) {
            for &kind in need.admitted_kinds() {
                let mut required_capabilities = need.capabilities.clone();
                required_capabilities.sort();
                required_capabilities.dedup();
                let query = UnitQuery {
                    k,
                    kinds: vec![kind],
                    required_capabilities,
                    ..Default::default()
                };
                if !queries.contains(&query) {
                    queries.push(query);
                }
            }
        }
        queries
    }

    /// Checks the plan; `field` names it, e.g. `plans[2]`.
    fn validate(&self, field: &str) -> Result<(), Error> {
        if self.incident_type != ANY_TYPE {
            if self.incident_type.is_empty() || self.incident_type.len() > MAX_KIND_LEN {
                return Err(Error::invalid(
                    &format!("{field}.incident_type"),
                    format!("{:?}", self.incident_type),
                    format!("must be \"*\" or an incident type of 1..={MAX_KIND_LEN} bytes"),
                ));
            }
            crate::error::validate_id(&format!("{field}.incident_type"), &self.incident_type)?;
        }
        let (min, max) = (*self.priorities.start(), *self.priorities.end());
        if !(1 <= min && min <= max && max <= LOWEST_PRIORITY) {
            return Err(Error::invalid(
                &format!("{field}.priorities"),
                format!("[{min}, {max}]"),
                format!("must be [min, max] with 1 <= min <= max <= {LOWEST_PRIORITY}"),
            ));
        }
        if self.needs.is_empty() {
            return Err(Error::invalid(
                &format!("{field}.needs"),
                "[]",
                "must name at least one need, e.g. { count = 1 }",
            ));
        }
        for (i, need) in self.needs.iter().enumerate() {
            need.validate(&format!("{field}.needs[{i}]"))?;
        }
        for (i, need) in self.optional.iter().enumerate() {
            need.validate(&format!("{field}.optional[{i}]"))?;
        }
        let units = self.max_units();
        if units > MAX_PLAN_UNITS {
            return Err(Error::invalid(
                field,
                format!("{units} units"),
                format!(
                    "needs and optional needs may ask for at most {MAX_PLAN_UNITS} units together"
                ),
            ));
        }
        Ok(())
    }
}

/// The plan chosen for an incident, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanChoice<'a> {
    /// The plan.
    pub plan: &'a ResponsePlan,
    /// Its place in [`PlanBook::plans`]; `None`: the default plan.
    pub index: Option<usize>,
}

impl PlanChoice<'_> {
    /// For operators, e.g. `plans[2] (fight, priorities 1..=2)` or
    /// `default plan`.
    pub fn label(&self) -> String {
        match self.index {
            None => "default plan".to_string(),
            Some(i) => format!(
                "plans[{i}] ({}, priorities {}..={})",
                self.plan.incident_type,
                self.plan.priorities.start(),
                self.plan.priorities.end()
            ),
        }
    }
}

/// Every response plan, and the one used when none matches. In the server's
/// TOML: `[[plans]]` tables and an optional `[default]` table (`needs` and
/// `optional` only). Deserialising validates ([`PlanBook::validate`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PlanBookFile")]
pub struct PlanBook {
    /// The plans, in the order written (which breaks ties).
    pub plans: Vec<ResponsePlan>,
    /// The plan when none matches: for every type and priority (default:
    /// one unit of any kind).
    pub default: ResponsePlan,
}

impl Default for PlanBook {
    fn default() -> Self {
        PlanBook {
            plans: Vec::new(),
            default: ResponsePlan::one_unit(),
        }
    }
}

/// [`PlanBook`] as written in a file, before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBookFile {
    #[serde(default)]
    plans: Vec<ResponsePlan>,
    #[serde(default = "ResponsePlan::one_unit")]
    default: ResponsePlan,
}

impl TryFrom<PlanBookFile> for PlanBook {
    type Error = Error;

    fn try_from(file: PlanBookFile) -> Result<Self, Error> {
        let book = PlanBook {
            plans: file.plans,
            default: file.default,
        };
        book.validate()?;
        Ok(book)
    }
}

impl PlanBook {
    /// The most specific plan for an incident of `incident_type` at
    /// `priority` (see the module docs), or the default plan.
    pub fn plan_for(&self, incident_type: &str, priority: u32) -> PlanChoice<'_> {
        let best = self
            .plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.applies_to(incident_type, priority))
            .min_by_key(|(i, p)| {
                (
                    p.incident_type == ANY_TYPE,
                    p.priorities.end() - p.priorities.start(),
                    *i,
                )
            });
        match best {
            Some((i, plan)) => PlanChoice {
                plan,
                index: Some(i),
            },
            None => PlanChoice {
                plan: &self.default,
                index: None,
            },
        }
    }

    /// Checks every plan, naming the field, e.g. `plans[2].needs[0].count`:
    /// counts 1..=100 units in all, priorities within 1..=5, `within_s`
    /// above 0 and at most a day, kinds named once, well-formed capability
    /// tags, at least one need, no two plans for the same type and
    /// priorities (the second would never be chosen), and a default plan
    /// for `"*"` at every priority.
    pub fn validate(&self) -> Result<(), Error> {
        if self.plans.len() > MAX_PLANS {
            return Err(Error::invalid(
                "plans",
                format!("{} plans", self.plans.len()),
                format!("must be at most {MAX_PLANS} plans"),
            ));
        }
        for (i, plan) in self.plans.iter().enumerate() {
            plan.validate(&format!("plans[{i}]"))?;
            if let Some(j) = self.plans[..i].iter().position(|p| {
                p.incident_type == plan.incident_type && p.priorities == plan.priorities
            }) {
                return Err(Error::invalid(
                    &format!("plans[{i}]"),
                    format!(
                        "{:?} priorities [{}, {}]",
                        plan.incident_type,
                        plan.priorities.start(),
                        plan.priorities.end()
                    ),
                    format!(
                        "plans[{j}] has the same incident_type and priorities, so this one would never be chosen"
                    ),
                ));
            }
        }
        if self.default.incident_type != ANY_TYPE {
            return Err(Error::invalid(
                "default.incident_type",
                format!("{:?}", self.default.incident_type),
                "the default plan applies to every incident: leave it out or write \"*\"",
            ));
        }
        if self.default.priorities != all_priorities() {
            return Err(Error::invalid(
                "default.priorities",
                format!(
                    "[{}, {}]",
                    self.default.priorities.start(),
                    self.default.priorities.end()
                ),
                format!(
                    "the default plan applies to every priority: leave it out or write [1, {LOWEST_PRIORITY}]"
                ),
            ));
        }
        self.default.validate("default")
    }
}

/// A unit that could be sent, as [`fill`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanCandidate<'a, K> {
    /// What names the unit to the caller (its slot or id); the same key
    /// twice is the same unit.
    pub key: K,
    /// Its kind.
    pub kind: UnitKind,
    /// Its capability tags.
    pub capabilities: &'a [String],
    /// Its estimated time of arrival, seconds; a candidate whose ETA is not
    /// a finite number of at least 0 is never chosen.
    pub eta_s: f64,
}

/// Which need of a plan: `needs[i]` or `optional[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeedRef {
    /// `needs[i]`.
    Required(usize),
    /// `optional[i]`.
    Optional(usize),
}

impl NeedRef {
    /// Whether it is an optional need.
    pub fn is_optional(self) -> bool {
        matches!(self, NeedRef::Optional(_))
    }
}

impl std::fmt::Display for NeedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeedRef::Required(i) => write!(f, "needs[{i}]"),
            NeedRef::Optional(i) => write!(f, "optional[{i}]"),
        }
    }
}

/// A unit [`fill`] chose.
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenUnit<K> {
    /// The candidate's key.
    pub key: K,
    /// Its kind.
    pub kind: UnitKind,
    /// Its ETA, seconds.
    pub eta_s: f64,
    /// The need it was added for.
    pub chosen_for: NeedRef,
    /// Every need it counts towards, `chosen_for` first.
    pub counts_for: Vec<NeedRef>,
    /// For operators, e.g. `car, 1 min 40 s: for needs[1] (1 car); also
    /// counts for needs[0] (2 units)`.
    pub reason: String,
}

/// The fastest unit that matches a need but arrives after its `within_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct LateUnit<K> {
    /// The candidate's key.
    pub key: K,
    /// Its ETA, seconds.
    pub eta_s: f64,
}

/// A need [`fill`] could not meet.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall<K> {
    /// Which need.
    pub need: NeedRef,
    /// Its count.
    pub wanted: u32,
    /// How many units count towards it.
    pub found: u32,
    /// The fastest unit that would match but for the need's `within_s`.
    pub nearest_late: Option<LateUnit<K>>,
    /// For operators, e.g. "no second car available", "no foot unit within 3
    /// minutes (nearest: 5 min 20 s)".
    pub message: String,
}

/// What [`fill`] chose, and what it could not find.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFill<K> {
    /// The chosen units, fastest first.
    pub chosen: Vec<ChosenUnit<K>>,
    /// The needs not met, in the order they were filled (narrowest first,
    /// the required ones before the optional).
    pub shortfalls: Vec<Shortfall<K>>,
}

impl<K> PlanFill<K> {
    /// Whether every required need is met (optional ones may be short).
    pub fn is_complete(&self) -> bool {
        self.shortfalls.iter().all(|s| s.need.is_optional())
    }
}

/// Chooses the units `plan` asks for from `candidates`, fastest first (see
/// the module docs for how needs combine). Candidates are expected sorted by
/// ETA, fastest first, but need not be: they are ordered by `eta_s` here,
/// ties kept in the order given. A key seen twice is the same unit (the
/// first one given counts). Deterministic.
pub fn fill<K: Clone + PartialEq>(
    plan: &ResponsePlan,
    candidates: &[PlanCandidate<'_, K>],
) -> PlanFill<K> {
    // candidates by ETA, each unit once
    let mut by_eta: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].eta_s.is_finite() && candidates[i].eta_s >= 0.0)
        .collect();
    by_eta.sort_by(|&a, &b| candidates[a].eta_s.total_cmp(&candidates[b].eta_s));
    let mut order: Vec<usize> = Vec::with_capacity(by_eta.len());
    for i in by_eta {
        if !order
            .iter()
            .any(|&j| candidates[j].key == candidates[i].key)
        {
            order.push(i);
        }
    }

    // needs narrowest first, required before optional
    let mut needs: Vec<(NeedRef, &Need)> = plan
        .needs
        .iter()
        .enumerate()
        .map(|(i, n)| (NeedRef::Required(i), n))
        .collect();
    needs.sort_by(|a, b| cmp_breadth(a.1, b.1));
    let mut optional: Vec<(NeedRef, &Need)> = plan
        .optional
        .iter()
        .enumerate()
        .map(|(i, n)| (NeedRef::Optional(i), n))
        .collect();
    optional.sort_by(|a, b| cmp_breadth(a.1, b.1));
    needs.extend(optional);

    // (rank in `order`, chosen for, counts for), by rank
    let mut chosen: Vec<(usize, NeedRef, Vec<NeedRef>)> = Vec::new();
    let mut shortfalls = Vec::new();
    for (need_ref, need) in needs {
        let mut found = 0u32;
        for (rank, _, counts_for) in chosen.iter_mut() {
            if found == need.count {
                break;
            }
            if need.matches(&candidates[order[*rank]]) {
                counts_for.push(need_ref);
                found += 1;
            }
        }
        for (rank, &i) in order.iter().enumerate() {
            if found == need.count {
                break;
            }
            let at = chosen.partition_point(|(r, ..)| *r < rank);
            if chosen.get(at).is_some_and(|(r, ..)| *r == rank) {
                continue;
            }
            if need.matches(&candidates[i]) {
                chosen.insert(at, (rank, need_ref, vec![need_ref]));
                found += 1;
            }
        }
        if found < need.count {
            let nearest_late = order
                .iter()
                .map(|&i| &candidates[i])
                .find(|c| need.admits(c) && !need.in_time(c.eta_s))
                .map(|c| LateUnit {
                    key: c.key.clone(),
                    eta_s: c.eta_s,
                });
            let message = shortfall_message(need, found, nearest_late.as_ref().map(|l| l.eta_s));
            shortfalls.push(Shortfall {
                need: need_ref,
                wanted: need.count,
                found,
                nearest_late,
                message,
            });
        }
    }

    let chosen = chosen
        .into_iter()
        .map(|(rank, chosen_for, counts_for)| {
            let c = &candidates[order[rank]];
            let mut reason = format!(
                "{}, {}: for {chosen_for}",
                c.kind.as_str(),
                eta_text(c.eta_s)
            );
            if let Some(need) = plan.need(chosen_for) {
                reason.push_str(&format!(" ({})", need.describe()));
            }
            let also: Vec<String> = counts_for[1..]
                .iter()
                .map(|r| match plan.need(*r) {
                    Some(n) => format!("{r} ({})", n.describe()),
                    None => r.to_string(),
                })
                .collect();
            if !also.is_empty() {
                reason.push_str("; also counts for ");
                reason.push_str(&also.join(", "));
            }
            ChosenUnit {
                key: c.key.clone(),
                kind: c.kind,
                eta_s: c.eta_s,
                chosen_for,
                counts_for,
                reason,
            }
        })
        .collect();
    PlanFill { chosen, shortfalls }
}

fn cmp_breadth(a: &Need, b: &Need) -> std::cmp::Ordering {
    let (ka, ca, wa) = a.breadth();
    let (kb, cb, wb) = b.breadth();
    ka.cmp(&kb).then(ca.cmp(&cb)).then(wa.total_cmp(&wb))
}

/// "no car available", "no second car within 10 minutes (nearest: 11 min
/// 40 s)", "no car with medic available (0 of 2 found)".
fn shortfall_message(need: &Need, found: u32, nearest_late_s: Option<f64>) -> String {
    let mut text = format!("no {}{}", ordinal(found + 1), need.noun(false));
    match need.within_s {
        Some(w) => {
            text.push_str(" within ");
            text.push_str(&limit_text(w));
            if let Some(eta) = nearest_late_s {
                text.push_str(&format!(" (nearest: {})", eta_text(eta)));
            }
        }
        None => text.push_str(" available"),
    }
    if need.count > found + 1 {
        text.push_str(&format!(" ({found} of {} found)", need.count));
    }
    text
}

/// "" for the first, "second ", "third ", ..., "11th ", "21st ".
fn ordinal(n: u32) -> String {
    const WORDS: [&str; 9] = [
        "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    ];
    match n {
        0 | 1 => String::new(),
        2..=10 => format!("{} ", WORDS[n as usize - 2]),
        _ => {
            let suffix = match (n % 10, n % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{n}{suffix} ")
        }
    }
}

/// An ETA, e.g. "45 s", "5 min", "5 min 20 s" (rounded to the second).
fn eta_text(s: f64) -> String {
    let total = s.round() as u64;
    let (m, r) = (total / 60, total % 60);
    match (m, r) {
        (0, r) => format!("{r} s"),
        (m, 0) => format!("{m} min"),
        (m, r) => format!("{m} min {r} s"),
    }
}

/// A limit, e.g. "3 minutes", "1 minute", "90 s" -> "1 min 30 s".
fn limit_text(s: f64) -> String {
    let total = s.round() as u64;
    match total {
        60 => "1 minute".to_string(),
        t if t > 60 && t % 60 == 0 => format!("{} minutes", t / 60),
        _ => eta_text(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_radio_call() {
        assert_eq!(eta_text(45.4), "45 s");
        assert_eq!(eta_text(300.0), "5 min");
        assert_eq!(eta_text(320.0), "5 min 20 s");
        assert_eq!(eta_text(59.6), "1 min");
        assert_eq!(limit_text(180.0), "3 minutes");
        assert_eq!(limit_text(60.0), "1 minute");
        assert_eq!(limit_text(90.0), "1 min 30 s");
        assert_eq!(limit_text(30.0), "30 s");
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(1), "");
        assert_eq!(ordinal(2), "second ");
        assert_eq!(ordinal(10), "tenth ");
        assert_eq!(ordinal(11), "11th ");
        assert_eq!(ordinal(21), "21st ");
        assert_eq!(ordinal(22), "22nd ");
        assert_eq!(ordinal(23), "23rd ");
        assert_eq!(ordinal(112), "112th ");
    }

    #[test]
    fn needs_describe_themselves() {
        assert_eq!(Need::any(2).describe(), "2 units");
        assert_eq!(Need::of(1, UnitKind::Car).describe(), "1 car");
        assert_eq!(
            Need::of(1, UnitKind::Foot).within(180.0).describe(),
            "1 foot unit within 3 minutes"
        );
        let need = Need {
            kinds: vec![UnitKind::Car, UnitKind::Motorcycle],
            capabilities: vec!["medic".into()],
            ..Need::any(2)
        };
        assert_eq!(need.describe(), "2 cars or motorcycles with medic");
    }

    #[test]
    fn narrower_needs_sort_first() {
        let any = Need::any(2);
        let car = Need::of(1, UnitKind::Car);
        let car_soon = Need::of(1, UnitKind::Car).within(60.0);
        let medic = Need {
            capabilities: vec!["medic".into()],
            ..Need::any(1)
        };
        use std::cmp::Ordering::*;
        assert_eq!(cmp_breadth(&car, &any), Less);
        assert_eq!(cmp_breadth(&car_soon, &car), Less);
        assert_eq!(cmp_breadth(&medic, &any), Less);
        assert_eq!(cmp_breadth(&any, &any), Equal);
    }
}
