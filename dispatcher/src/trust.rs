//! Positions you can trust: a plausibility check for each GPS fix before it
//! moves a unit, and a confidence score for the fix a unit holds.
//!
//! Patrol terminals lie in three ways: a fix 3 km away for one second (a
//! multipath or cold-start jump), a phone drifting at walking speed while its
//! officer stands still, and a fix with a 300 m accuracy radius indoors. A
//! recommendation made from such a fix sends the wrong unit, so each fix is
//! judged by [`assess`] before the index takes it, against the fix the index
//! holds and a little per-unit memory, [`TrustState`].
//!
//! # The rules, in order
//! 1. **Accuracy.** A fix whose accuracy radius is worse than the kind's
//!    [`KindTrust::reject_accuracy_m`] is refused; worse than
//!    [`KindTrust::flag_accuracy_m`] it is kept but flagged low-confidence.
//!    A fix without an accuracy is taken as [`TrustConfig::assumed_accuracy_m`]
//!    for the speed rule and never flagged for it.
//! 2. **Implied speed.** From the fix held to the new one:
//!    `excess_m = max(0, distance_m - (accuracy_held_m + accuracy_new_m))`,
//!    `speed = excess_m / elapsed_s`: the jump must exceed what both accuracy
//!    radii explain. Faster than the kind's [`KindTrust::max_speed_mps`] and
//!    the fix is refused; the fix held stays.
//! 3. **A bad fix held.** The refused fix may be the true one and the fix held
//!    the lie (a unit whose first fix was a jump, say). Refused fixes that
//!    follow one another at a plausible speed *among themselves* are counted
//!    in [`TrustState::pending`]; the [`TrustConfig::relocate_after_fixes`]-th
//!    such fix in a row (counting the first refused one) is accepted as
//!    [`Assessment::Relocated`]. A fix that agrees with the fix held clears
//!    the count (the jump was the lie); one that agrees with neither starts a
//!    new count. Fixes refused for accuracy are no evidence and leave it alone.
//! 4. **Standing still.** An accepted fix whose reported speed (if any) is at
//!    most [`KindTrust::still_speed_mps`] and that lies within the anchor's
//!    and its own accuracy radii combined (at least
//!    [`KindTrust::drift_radius_m`]) of the anchor, the fix at which the unit
//!    was last seen standing, is
//!    [`Assessment::Stationary`]: the index stores the new time at the
//!    anchor's position, so a standing officer does not "walk" across the map,
//!    with an accuracy that honestly covers the fix (its own radius plus its
//!    distance from the anchor: the speed rule and [`confidence`] then see
//!    how far the shown position may be off).
//!    A fix outside that radius, or reporting more speed, moves the unit
//!    (and becomes the new anchor when it is still).
//!
//! # Confidence
//! [`confidence`] scores the fix a unit holds, 0..=1, from how far the unit
//! may be from the position shown: `radius_m = accuracy_m + age_s x
//! planning speed` (the kind's city speed), `score = R / (R + radius_m)` with
//! `R` = [`TrustConfig::confidence_radius_m`] (so the score is one half when
//! the unit may be `R` metres away), and 0 once the fix is older than the
//! kind's offline timeout.

use crate::Millis;
use crate::error::Error;
use crate::geometry::LonLat;
use crate::units::{Fix, UnitKind};

/// Upper limit on a configured speed, metres per second (the ping limit).
const MAX_SPEED_LIMIT_MPS: f64 = 200.0;
/// Upper limit on a configured accuracy or drift radius, metres (the ping limit).
const MAX_RADIUS_LIMIT_M: f32 = 100_000.0;

/// The trust rules for one kind of unit. Units: metres, metres per second,
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KindTrust {
    /// The fastest a unit of this kind plausibly moves, metres per second: a
    /// faster implied speed between fixes is a jump and refused.
    pub max_speed_mps: f64,
    /// Fixes with an accuracy radius worse than this, metres, are kept but
    /// flagged low-confidence.
    pub flag_accuracy_m: f32,
    /// Fixes with an accuracy radius worse than this, metres, are refused.
    pub reject_accuracy_m: f32,
    /// With no fix for longer than this, milliseconds, the unit is offline
    /// (and its confidence 0).
    pub offline_after_ms: Millis,
    /// Whether a unit standing still is held at its anchor (rule 4).
    pub hold_stationary: bool,
    /// A reported speed at or below this, metres per second, counts as
    /// standing still.
    pub still_speed_mps: f32,
    /// A still fix within this many metres of the anchor (or within the
    /// two fixes' accuracy radii combined, if more) keeps the unit at the
    /// anchor.
    pub drift_radius_m: f32,
}

impl KindTrust {
    /// The defaults for `kind`: plausible top speeds of 70 m/s (252 km/h)
    /// for cars and motorcycles, 15 m/s for e-bikes and 7 m/s (a sprint) for
    /// officers on foot; flagged above 50 m accuracy, refused above 250 m;
    /// offline after 2 minutes, 5 for foot officers (phones save battery by
    /// reporting less often); still below 0.5 m/s on foot, 1 m/s otherwise,
    /// within 15 m on foot and 10 m otherwise.
    pub fn default_for(kind: UnitKind) -> Self {
        let (max_speed_mps, offline_after_ms, still_speed_mps, drift_radius_m) = match kind {
            UnitKind::Car | UnitKind::Motorcycle => (70.0, 120_000, 1.0, 10.0),
            UnitKind::EBike => (15.0, 120_000, 1.0, 10.0),
            UnitKind::Foot => (7.0, 300_000, 0.5, 15.0),
        };
        Self {
            max_speed_mps,
            flag_accuracy_m: 50.0,
            reject_accuracy_m: 250.0,
            offline_after_ms,
            hold_stationary: true,
            still_speed_mps,
            drift_radius_m,
        }
    }

    /// Checks the limits; `field` is the kind's table, e.g. "foot".
    fn validate(&self, field: &str) -> Result<(), Error> {
        let name = |f: &str| format!("{field}.{f}");
        if !(self.max_speed_mps.is_finite()
            && self.max_speed_mps > 0.0
            && self.max_speed_mps <= MAX_SPEED_LIMIT_MPS)
        {
            return Err(Error::invalid(
                &name("max_speed_mps"),
                self.max_speed_mps,
                format!("must be a speed above 0 and at most {MAX_SPEED_LIMIT_MPS} m/s"),
            ));
        }
        for (f, v) in [
            ("flag_accuracy_m", self.flag_accuracy_m),
            ("reject_accuracy_m", self.reject_accuracy_m),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_RADIUS_LIMIT_M) {
                return Err(Error::invalid(
                    &name(f),
                    v,
                    format!("must be a radius above 0 and at most {MAX_RADIUS_LIMIT_M} m"),
                ));
            }
        }
        if self.flag_accuracy_m > self.reject_accuracy_m {
            return Err(Error::invalid(
                &name("flag_accuracy_m"),
                self.flag_accuracy_m,
                format!(
                    "must be at most reject_accuracy_m ({} m): fixes are flagged before they are refused",
                    self.reject_accuracy_m
                ),
            ));
        }
        if self.offline_after_ms <= 0 {
            return Err(Error::invalid(
                &name("offline_after_ms"),
                self.offline_after_ms,
                "must be a positive number of milliseconds",
            ));
        }
        if !(self.still_speed_mps.is_finite()
            && self.still_speed_mps >= 0.0
            && f64::from(self.still_speed_mps) < self.max_speed_mps)
        {
            return Err(Error::invalid(
                &name("still_speed_mps"),
                self.still_speed_mps,
                format!(
                    "must be a speed of at least 0 and below max_speed_mps ({} m/s)",
                    self.max_speed_mps
                ),
            ));
        }
        if !(self.drift_radius_m.is_finite()
            && self.drift_radius_m >= 0.0
            && self.drift_radius_m <= MAX_RADIUS_LIMIT_M)
        {
            return Err(Error::invalid(
                &name("drift_radius_m"),
                self.drift_radius_m,
                format!("must be a radius of at least 0 and at most {MAX_RADIUS_LIMIT_M} m"),
            ));
        }
        Ok(())
    }
}

/// The trust rules for every kind, and the few that apply to all. In the
/// server's TOML every field may be left out (the default is used), and
/// unknown fields are refused:
///
/// ```toml
/// [trust]
/// relocate_after_fixes = 3
/// [trust.foot]
/// max_speed_mps = 8.0
/// [trust.e-bike]
/// reject_accuracy_m = 150.0
/// ```
///
/// Deserialising validates ([`TrustConfig::validate`]); every node of a
/// region must use the same rules, since they decide the positions stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TrustConfigFile")]
pub struct TrustConfig {
    /// Rules for patrol cars.
    pub car: KindTrust,
    /// Rules for officers on foot.
    pub foot: KindTrust,
    /// Rules for e-bikes (`e-bike` in the file).
    #[serde(rename = "e-bike")]
    pub e_bike: KindTrust,
    /// Rules for motorcycles.
    pub motorcycle: KindTrust,
    /// A refused jump is accepted when this many fixes in a row, counting
    /// the first refused one, agree with each other and not with the fix
    /// held (2..=20; default 3).
    pub relocate_after_fixes: u32,
    /// The accuracy radius taken for a fix that reports none, metres
    /// (default 20).
    pub assumed_accuracy_m: f32,
    /// The confidence is one half when the unit may be this far from the
    /// position shown, metres (default 100).
    pub confidence_radius_m: f64,
    /// A fix older than this is noted stale, milliseconds (default 30 s:
    /// terminals report every 1-10 s).
    pub stale_after_ms: Millis,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            car: KindTrust::default_for(UnitKind::Car),
            foot: KindTrust::default_for(UnitKind::Foot),
            e_bike: KindTrust::default_for(UnitKind::EBike),
            motorcycle: KindTrust::default_for(UnitKind::Motorcycle),
            relocate_after_fixes: 3,
            assumed_accuracy_m: 20.0,
            confidence_radius_m: 100.0,
            stale_after_ms: 30_000,
        }
    }
}

impl TrustConfig {
    /// The rules for `kind`.
    pub fn kind(&self, kind: UnitKind) -> &KindTrust {
        match kind {
            UnitKind::Car => &self.car,
            UnitKind::Foot => &self.foot,
            UnitKind::EBike => &self.e_bike,
            UnitKind::Motorcycle => &self.motorcycle,
        }
    }

    /// With no fix for longer than this, milliseconds, a unit of `kind` is
    /// offline.
    pub fn offline_after_ms(&self, kind: UnitKind) -> Millis {
        self.kind(kind).offline_after_ms
    }

    /// Checks every limit, naming the field, e.g. `foot.max_speed_mps`.
    pub fn validate(&self) -> Result<(), Error> {
        self.car.validate("car")?;
        self.foot.validate("foot")?;
        self.e_bike.validate("e-bike")?;
        self.motorcycle.validate("motorcycle")?;
        if !(2..=20).contains(&self.relocate_after_fixes) {
            return Err(Error::invalid(
                "relocate_after_fixes",
                self.relocate_after_fixes,
                "must be 2..=20 fixes",
            ));
        }
        if !(self.assumed_accuracy_m.is_finite()
            && self.assumed_accuracy_m > 0.0
            && self.assumed_accuracy_m <= MAX_RADIUS_LIMIT_M)
        {
            return Err(Error::invalid(
                "assumed_accuracy_m",
                self.assumed_accuracy_m,
                format!("must be a radius above 0 and at most {MAX_RADIUS_LIMIT_M} m"),
            ));
        }
        if !(self.confidence_radius_m.is_finite() && self.confidence_radius_m > 0.0) {
            return Err(Error::invalid(
                "confidence_radius_m",
                self.confidence_radius_m,
                "must be a finite radius above 0 m",
            ));
        }
        if self.stale_after_ms <= 0 {
            return Err(Error::invalid(
                "stale_after_ms",
                self.stale_after_ms,
                "must be a positive number of milliseconds",
            ));
        }
        Ok(())
    }

    /// The accuracy radius of `fix` for the speed rule, metres.
    fn accuracy_of(&self, fix: &Fix) -> f64 {
        f64::from(fix.accuracy_m.unwrap_or(self.assumed_accuracy_m))
    }
}

/// [`TrustConfig`] as written in a file: every field optional.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrustConfigFile {
    car: KindTrustFile,
    foot: KindTrustFile,
    #[serde(rename = "e-bike")]
    e_bike: KindTrustFile,
    motorcycle: KindTrustFile,
    relocate_after_fixes: Option<u32>,
    assumed_accuracy_m: Option<f32>,
    confidence_radius_m: Option<f64>,
    stale_after_ms: Option<Millis>,
}

/// [`KindTrust`] as written in a file: a missing field takes the kind's
/// default, not another kind's.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct KindTrustFile {
    max_speed_mps: Option<f64>,
    flag_accuracy_m: Option<f32>,
    reject_accuracy_m: Option<f32>,
    offline_after_ms: Option<Millis>,
    hold_stationary: Option<bool>,
    still_speed_mps: Option<f32>,
    drift_radius_m: Option<f32>,
}

impl KindTrustFile {
    fn over(self, d: KindTrust) -> KindTrust {
        KindTrust {
            max_speed_mps: self.max_speed_mps.unwrap_or(d.max_speed_mps),
            flag_accuracy_m: self.flag_accuracy_m.unwrap_or(d.flag_accuracy_m),
            reject_accuracy_m: self.reject_accuracy_m.unwrap_or(d.reject_accuracy_m),
            offline_after_ms: self.offline_after_ms.unwrap_or(d.offline_after_ms),
            hold_stationary: self.hold_stationary.unwrap_or(d.hold_stationary),
            still_speed_mps: self.still_speed_mps.unwrap_or(d.still_speed_mps),
            drift_radius_m: self.drift_radius_m.unwrap_or(d.drift_radius_m),
        }
    }
}

impl TryFrom<TrustConfigFile> for TrustConfig {
    type Error = Error;

    fn try_from(file: TrustConfigFile) -> Result<Self, Error> {
        let d = TrustConfig::default();
        let config = TrustConfig {
            car: file.car.over(d.car),
            foot: file.foot.over(d.foot),
            e_bike: file.e_bike.over(d.e_bike),
            motorcycle: file.motorcycle.over(d.motorcycle),
            relocate_after_fixes: file.relocate_after_fixes.unwrap_or(d.relocate_after_fixes),
            assumed_accuracy_m: file.assumed_accuracy_m.unwrap_or(d.assumed_accuracy_m),
            confidence_radius_m: file.confidence_radius_m.unwrap_or(d.confidence_radius_m),
            stale_after_ms: file.stale_after_ms.unwrap_or(d.stale_after_ms),
        };
        config.validate()?;
        Ok(config)
    }
}

/// A run of refused fixes that agree with each other (rule 3).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingJump {
    /// The latest refused fix of the run.
    pub last: Fix,
    /// How many refused fixes in a row agree, counting the first, 1 or more.
    pub fixes: u32,
}

/// What [`assess`] remembers about one unit between fixes: plain data, so the
/// server can checkpoint it beside the unit and a rebuilt node assesses the
/// next fix exactly as the old one would have. A fresh unit (and a unit whose
/// state was lost) starts from `TrustState::default()`: at worst a relocation
/// then waits for a new run of agreeing fixes, and a standing unit's next
/// still fix becomes its anchor. About 100 bytes a unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrustState {
    /// The fix at which the unit was last seen standing still, if it is
    /// still standing: still fixes near it keep its position (rule 4).
    pub anchor: Option<Fix>,
    /// Refused fixes that agree with each other and not with the fix held
    /// (rule 3), if the last fixes were such.
    pub pending: Option<PendingJump>,
}

impl TrustState {
    /// Whether there is nothing to remember (the server need not store it).
    pub fn is_empty(&self) -> bool {
        self.anchor.is_none() && self.pending.is_none()
    }

    /// Since when the unit stands at its anchor, Unix ms, if it does.
    pub fn stationary_since(&self) -> Option<Millis> {
        self.anchor.map(|a| a.time)
    }
}

/// Why an accepted fix is low-confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FixFlag {
    /// The accuracy radius is worse than the kind's flag limit.
    LowAccuracy {
        /// The unit's kind.
        kind: UnitKind,
        /// The fix's accuracy radius, metres.
        accuracy_m: f32,
        /// The kind's flag limit, metres.
        limit_m: f32,
    },
}

impl FixFlag {
    /// The field the flag is about, as the ping names it.
    pub fn field(&self) -> &'static str {
        match self {
            FixFlag::LowAccuracy { .. } => "accuracy_m",
        }
    }

    /// For operators and logs, naming the field and the value.
    pub fn message(&self) -> String {
        match self {
            FixFlag::LowAccuracy {
                kind,
                accuracy_m,
                limit_m,
            } => format!(
                "accuracy_m = {accuracy_m:.0} m is worse than the {} flag limit of {limit_m:.0} m: kept, low confidence",
                kind.as_str()
            ),
        }
    }
}

/// Why a fix was refused; the unit keeps the fix held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FixRejection {
    /// The accuracy radius is worse than the kind's hard limit.
    Accuracy {
        /// The unit's kind.
        kind: UnitKind,
        /// The fix's accuracy radius, metres.
        accuracy_m: f32,
        /// The kind's hard limit, metres.
        limit_m: f32,
    },
    /// Reaching the fix from the fix held would take an implausible speed.
    ImpliedSpeed {
        /// The unit's kind.
        kind: UnitKind,
        /// Metres beyond both accuracy radii per second of fix time.
        speed_mps: f64,
        /// The kind's limit, metres per second.
        limit_mps: f64,
        /// Great-circle metres from the fix held.
        distance_m: f64,
        /// Metres of that the two accuracy radii explain.
        allowance_m: f64,
        /// Seconds between the two fix times.
        elapsed_s: f64,
        /// Refused fixes in a row that agree with this one, counting it.
        agreeing_fixes: u32,
        /// Agreeing fixes after which the unit is moved there.
        relocate_after: u32,
    },
    /// The fix is not newer than the fix held (the index refuses these
    /// first: out of order or a duplicate).
    NotNewer {
        /// The new fix's time, Unix ms.
        time: Millis,
        /// The time of the fix held, Unix ms.
        held: Millis,
    },
}

impl FixRejection {
    /// The field the refusal is about, as the ping names it.
    pub fn field(&self) -> &'static str {
        match self {
            FixRejection::Accuracy { .. } => "accuracy_m",
            FixRejection::ImpliedSpeed { .. } => "lon/lat",
            FixRejection::NotNewer { .. } => "fix_time_unix_ms",
        }
    }

    /// For operators and logs, naming the field and the value, e.g.
    /// "implied speed 412 m/s from the fix held (car limit 70 m/s): ...".
    pub fn message(&self) -> String {
        match self {
            FixRejection::Accuracy {
                kind,
                accuracy_m,
                limit_m,
            } => format!(
                "accuracy_m = {accuracy_m:.0} m is worse than the {} limit of {limit_m:.0} m",
                kind.as_str()
            ),
            FixRejection::ImpliedSpeed {
                kind,
                speed_mps,
                limit_mps,
                distance_m,
                allowance_m,
                elapsed_s,
                agreeing_fixes,
                relocate_after,
            } => format!(
                "implied speed {speed_mps:.0} m/s from the fix held ({} limit {limit_mps:.0} m/s): \
                 {distance_m:.0} m in {elapsed_s:.1} s, {allowance_m:.0} m of it within the fixes' accuracy; \
                 {agreeing_fixes} of {relocate_after} agreeing fixes to move there",
                kind.as_str()
            ),
            FixRejection::NotNewer { time, held } => {
                format!("fix_time_unix_ms = {time} is not newer than the fix held ({held})")
            }
        }
    }
}

/// What to do with a new fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Assessment {
    /// Store it as sent.
    Accept,
    /// Store it as sent, but it is low-confidence.
    AcceptFlagged(FixFlag),
    /// The unit stands still: store the fix's time, speed and heading at
    /// the anchor's position, with `accuracy_m` (see
    /// [`Assessment::fix_to_store`]).
    Stationary {
        /// Where the unit stands (x = longitude, y = latitude, degrees).
        anchor: LonLat,
        /// The fix's accuracy radius (or the assumed one) plus its distance
        /// from the anchor, metres: how far the anchor may be from the unit.
        accuracy_m: f32,
    },
    /// Store it as sent: the fix held was the bad one, as this many fixes in
    /// a row agreed.
    Relocated {
        /// The position of the fix held, now dropped.
        from: LonLat,
        /// The agreeing fixes, counting this one.
        agreeing_fixes: u32,
    },
    /// Refuse it: the unit keeps the fix held.
    Reject(FixRejection),
}

impl Assessment {
    /// The fix the index should store for `new`, or `None` when it is
    /// refused: `new` itself, or `new` at the anchor (with the widened
    /// accuracy) when standing still.
    pub fn fix_to_store(&self, new: &Fix) -> Option<Fix> {
        match self {
            Assessment::Accept | Assessment::AcceptFlagged(_) | Assessment::Relocated { .. } => {
                Some(*new)
            }
            Assessment::Stationary { anchor, accuracy_m } => Some(Fix {
                at: *anchor,
                accuracy_m: Some(*accuracy_m),
                ..*new
            }),
            Assessment::Reject(_) => None,
        }
    }

    /// Whether the fix is refused.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Assessment::Reject(_))
    }

    /// For operators and logs.
    pub fn message(&self) -> String {
        match self {
            Assessment::Accept => "accepted".to_string(),
            Assessment::AcceptFlagged(flag) => flag.message(),
            Assessment::Stationary { anchor, accuracy_m } => format!(
                "standing still: held at ({:.6}, {:.6}), within {accuracy_m:.0} m",
                anchor.lon, anchor.lat
            ),
            Assessment::Relocated {
                from,
                agreeing_fixes,
            } => format!(
                "relocated: {agreeing_fixes} fixes in a row agreed with each other and not with the fix held at ({:.6}, {:.6})",
                from.lon, from.lat
            ),
            Assessment::Reject(why) => why.message(),
        }
    }
}

/// The move between two fixes, judged against accuracy.
struct Jump {
    distance_m: f64,
    allowance_m: f64,
    elapsed_s: f64,
    speed_mps: f64,
}

impl Jump {
    /// From `from` to `to` (`to` the later fix).
    fn between(from: &Fix, to: &Fix, config: &TrustConfig) -> Jump {
        let distance_m = from.at.distance_m(&to.at);
        let allowance_m = config.accuracy_of(from) + config.accuracy_of(to);
        let elapsed_s = (to.time - from.time) as f64 / 1000.0;
        let excess_m = (distance_m - allowance_m).max(0.0);
        let speed_mps = if excess_m == 0.0 {
            0.0
        } else if elapsed_s > 0.0 {
            excess_m / elapsed_s
        } else {
            f64::INFINITY
        };
        Jump {
            distance_m,
            allowance_m,
            elapsed_s,
            speed_mps,
        }
    }
}

/// Judges `new`, a fix from a unit of `kind`, against `held`, the fix the
/// index holds for it (`None` before its first), and the unit's `state`,
/// which it updates. Call it after the index's own checks (unit known, fix
/// newer than the one held) and store what
/// [`Assessment::fix_to_store`] says. Deterministic: the same fixes, state
/// and config give the same assessment on every node.
pub fn assess(
    kind: UnitKind,
    held: Option<&Fix>,
    new: &Fix,
    state: &mut TrustState,
    config: &TrustConfig,
) -> Assessment {
    let rules = config.kind(kind);
    // 1. accuracy: a refused fix is no evidence for or against anything.
    let mut flag = None;
    if let Some(accuracy_m) = new.accuracy_m {
        if accuracy_m > rules.reject_accuracy_m {
            return Assessment::Reject(FixRejection::Accuracy {
                kind,
                accuracy_m,
                limit_m: rules.reject_accuracy_m,
            });
        }
        if accuracy_m > rules.flag_accuracy_m {
            flag = Some(FixFlag::LowAccuracy {
                kind,
                accuracy_m,
                limit_m: rules.flag_accuracy_m,
            });
        }
    }
    let mut relocated = None;
    if let Some(held) = held {
        if new.time <= held.time {
            return Assessment::Reject(FixRejection::NotNewer {
                time: new.time,
                held: held.time,
            });
        }
        // 2. implied speed from the fix held.
        let jump = Jump::between(held, new, config);
        if jump.speed_mps > rules.max_speed_mps {
            // 3. does it agree with the refused fixes before it?
            let agreeing_fixes = match state.pending {
                Some(p)
                    if new.time > p.last.time
                        && Jump::between(&p.last, new, config).speed_mps <= rules.max_speed_mps =>
                {
                    p.fixes + 1
                }
                _ => 1,
            };
            if agreeing_fixes < config.relocate_after_fixes {
                state.pending = Some(PendingJump {
                    last: *new,
                    fixes: agreeing_fixes,
                });
                return Assessment::Reject(FixRejection::ImpliedSpeed {
                    kind,
                    speed_mps: jump.speed_mps,
                    limit_mps: rules.max_speed_mps,
                    distance_m: jump.distance_m,
                    allowance_m: jump.allowance_m,
                    elapsed_s: jump.elapsed_s,
                    agreeing_fixes,
                    relocate_after: config.relocate_after_fixes,
                });
            }
            // The fix held was the lie: its anchor goes with it.
            state.anchor = None;
            relocated = Some(Assessment::Relocated {
                from: held.at,
                agreeing_fixes,
            });
        }
    }
    state.pending = None;
    // 4. standing still.
    if let Some(anchor) = still_at_anchor(rules, new, state, config) {
        let accuracy_m = (config.accuracy_of(new) + anchor.distance_m(&new.at)) as f32;
        return Assessment::Stationary { anchor, accuracy_m };
    }
    relocated.unwrap_or(match flag {
        Some(flag) => Assessment::AcceptFlagged(flag),
        None => Assessment::Accept,
    })
}

/// Rule 4 for an accepted fix: the anchor's position when the unit stands
/// at it; otherwise the fix becomes the anchor (when still) or there is none
/// (when moving).
fn still_at_anchor(
    rules: &KindTrust,
    new: &Fix,
    state: &mut TrustState,
    config: &TrustConfig,
) -> Option<LonLat> {
    let still = new.speed_mps.is_none_or(|s| s <= rules.still_speed_mps);
    if !rules.hold_stationary || !still {
        state.anchor = None;
        return None;
    }
    if let Some(anchor) = state.anchor {
        let radius_m = (config.accuracy_of(&anchor) + config.accuracy_of(new))
            .max(f64::from(rules.drift_radius_m));
        if anchor.at.distance_m(&new.at) <= radius_m {
            return Some(anchor.at);
        }
    }
    state.anchor = Some(*new);
    None
}

/// What [`confidence`] found most worth saying about a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfidenceNote {
    /// Recent and accurate.
    Good,
    /// Recent, but the terminal reported no accuracy (the assumed one is used).
    UnknownAccuracy,
    /// Recent, but the accuracy radius is worse than the kind's flag limit.
    LowAccuracy,
    /// Older than the stale age: the unit may have moved since.
    Stale,
    /// Older than the kind's offline timeout: the score is 0.
    Offline,
}

impl ConfidenceNote {
    /// The note as it reads in messages, e.g. "low_accuracy".
    pub fn as_str(self) -> &'static str {
        match self {
            ConfidenceNote::Good => "good",
            ConfidenceNote::UnknownAccuracy => "unknown_accuracy",
            ConfidenceNote::LowAccuracy => "low_accuracy",
            ConfidenceNote::Stale => "stale",
            ConfidenceNote::Offline => "offline",
        }
    }
}

/// How far to trust a unit's position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocationConfidence {
    /// 0 (no idea) ..= 1 (exactly there): `R / (R + radius_m)`, 0 when
    /// offline (see the module docs).
    pub score: f32,
    /// Seconds since the fix was taken (0 for a fix time ahead of `now`).
    pub age_s: f64,
    /// The fix's reported accuracy radius, metres.
    pub accuracy_m: Option<f32>,
    /// How far the unit may be from the position shown, metres: the accuracy
    /// (or the assumed one) plus the age times the kind's planning speed.
    pub radius_m: f64,
    /// The main reason the score is what it is.
    pub note: ConfidenceNote,
}

/// How far to trust `fix`, held for a unit of `kind`, at `now` (Unix ms).
pub fn confidence(
    fix: &Fix,
    now: Millis,
    kind: UnitKind,
    config: &TrustConfig,
) -> LocationConfidence {
    let rules = config.kind(kind);
    let age_ms = now.saturating_sub(fix.time).max(0);
    let age_s = age_ms as f64 / 1000.0;
    let radius_m = config.accuracy_of(fix) + age_s * kind.planning_speed_mps();
    let offline = age_ms > rules.offline_after_ms;
    let score = if offline {
        0.0
    } else {
        (config.confidence_radius_m / (config.confidence_radius_m + radius_m)) as f32
    };
    let note = if offline {
        ConfidenceNote::Offline
    } else if age_ms > config.stale_after_ms {
        ConfidenceNote::Stale
    } else {
        match fix.accuracy_m {
            None => ConfidenceNote::UnknownAccuracy,
            Some(a) if a > rules.flag_accuracy_m => ConfidenceNote::LowAccuracy,
            Some(_) => ConfidenceNote::Good,
        }
    };
    LocationConfidence {
        score,
        age_s,
        accuracy_m: fix.accuracy_m,
        radius_m,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(at: LonLat, time: Millis, accuracy_m: Option<f32>) -> Fix {
        Fix {
            at,
            time,
            speed_mps: None,
            heading_deg: None,
            accuracy_m,
        }
    }

    #[test]
    fn a_file_fills_missing_fields_from_the_kinds_own_defaults() {
        let config: TrustConfig = serde_json::from_str(
            r#"{"foot": {"max_speed_mps": 8.0}, "e-bike": {"reject_accuracy_m": 150.0},
                "relocate_after_fixes": 4}"#,
        )
        .unwrap();
        assert_eq!(config.foot.max_speed_mps, 8.0);
        // the rest of foot stays foot's, not another kind's
        assert_eq!(config.foot.drift_radius_m, 15.0);
        assert_eq!(config.foot.offline_after_ms, 300_000);
        assert_eq!(config.e_bike.reject_accuracy_m, 150.0);
        assert_eq!(config.e_bike.max_speed_mps, 15.0);
        assert_eq!(config.car, KindTrust::default_for(UnitKind::Car));
        assert_eq!(config.relocate_after_fixes, 4);
        let empty: TrustConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, TrustConfig::default());
        // what it writes, it reads back
        let again: TrustConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn a_file_with_unknown_or_bad_fields_is_refused_by_name() {
        let err = |json: &str| {
            serde_json::from_str::<TrustConfig>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"truck": {}}"#).contains("unknown field `truck`"));
        assert!(err(r#"{"foot": {"max_speed": 8}}"#).contains("unknown field `max_speed`"));
        let e = err(r#"{"foot": {"max_speed_mps": -1}}"#);
        assert!(e.contains("invalid foot.max_speed_mps = -1"), "{e}");
        let e = err(r#"{"car": {"flag_accuracy_m": 300}}"#);
        assert!(e.contains("invalid car.flag_accuracy_m = 300"), "{e}");
        let e = err(r#"{"relocate_after_fixes": 1}"#);
        assert!(e.contains("invalid relocate_after_fixes = 1"), "{e}");
    }

    #[test]
    fn validation_names_each_field() {
        let field = |change: fn(&mut TrustConfig)| {
            let mut config = TrustConfig::default();
            change(&mut config);
            match config.validate() {
                Err(Error::Invalid { field, .. }) => field,
                other => panic!("expected Invalid, got {other:?}"),
            }
        };
        assert_eq!(TrustConfig::default().validate(), Ok(()));
        assert_eq!(
            field(|c| c.e_bike.max_speed_mps = f64::NAN),
            "e-bike.max_speed_mps"
        );
        assert_eq!(
            field(|c| c.motorcycle.reject_accuracy_m = 0.0),
            "motorcycle.reject_accuracy_m"
        );
        assert_eq!(
            field(|c| c.foot.offline_after_ms = 0),
            "foot.offline_after_ms"
        );
        assert_eq!(
            field(|c| c.foot.still_speed_mps = 7.0),
            "foot.still_speed_mps"
        );
        assert_eq!(field(|c| c.car.drift_radius_m = -1.0), "car.drift_radius_m");
        assert_eq!(field(|c| c.assumed_accuracy_m = 0.0), "assumed_accuracy_m");
        assert_eq!(
            field(|c| c.confidence_radius_m = 0.0),
            "confidence_radius_m"
        );
        assert_eq!(field(|c| c.stale_after_ms = -5), "stale_after_ms");
    }

    #[test]
    fn the_allowance_is_both_accuracy_radii() {
        let config = TrustConfig::default();
        let a = LonLat::new(24.94, 60.17);
        // 100 m in 1 s with 30 m + 30 m accuracy: 40 m unexplained
        let from = fix(a, 1_000, Some(30.0));
        let to = fix(a.destination(90.0, 100.0), 2_000, Some(30.0));
        let jump = Jump::between(&from, &to, &config);
        assert!((jump.speed_mps - 40.0).abs() < 0.01, "{}", jump.speed_mps);
        // without accuracies the assumed 20 m each is used
        let jump = Jump::between(&fix(a, 1_000, None), &fix(to.at, 2_000, None), &config);
        assert!((jump.speed_mps - 60.0).abs() < 0.01, "{}", jump.speed_mps);
        // within the radii: no speed at all, even with no time between
        let jump = Jump::between(
            &from,
            &fix(a.destination(0.0, 50.0), 1_000, Some(30.0)),
            &config,
        );
        assert_eq!(jump.speed_mps, 0.0);
    }

    #[test]
    fn a_fix_not_newer_than_the_one_held_is_refused() {
        let config = TrustConfig::default();
        let a = LonLat::new(24.94, 60.17);
        let held = fix(a, 5_000, Some(5.0));
        let mut state = TrustState::default();
        let got = assess(UnitKind::Car, Some(&held), &held, &mut state, &config);
        assert_eq!(
            got,
            Assessment::Reject(FixRejection::NotNewer {
                time: 5_000,
                held: 5_000
            })
        );
        assert_eq!(got.fix_to_store(&held), None);
    }
}
