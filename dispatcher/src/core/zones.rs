//! Zones as commands: putting and removing zones (each leaves an
//! [`Event::Zone`]), home zones of units, the membership update on every
//! applied fix, and the home-zone preference of recommendations.
//!
//! Home zones live in a map of their own (unit slot to zone id), set with
//! [`Dispatcher::set_home_zone`], so [`crate::UnitProfile`] and every
//! registration path stay as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Dispatcher, Event};
use crate::Millis;
use crate::error::{Error, validate_id};
use crate::geometry::LonLat;
use crate::network::EtaMethod;
use crate::recommend::{Recommendation, RecommendedUnit, UnitQuery, exclusion, format_duration};
use crate::trust::confidence;
use crate::zones::membership::{Memberships, UnitZones};
use crate::zones::{MAX_ZONES, Zone, ZoneChange, ZoneChangeKind, ZoneIndex, ZoneSpec};

/// At most this many home units of the target's zones are looked at for
/// the preference (the nearest by straight line).
pub const MAX_HOME_CANDIDATES: usize = 256;

/// The zones, every unit's membership and every unit's home zone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Zones {
    index: ZoneIndex,
    members: Memberships,
    /// Unit slot -> home zone id.
    home: HashMap<u32, String>,
    /// Home zone id -> unit slots.
    home_units: BTreeMap<String, BTreeSet<u32>>,
}

impl Zones {
    fn set_home(&mut self, slot: u32, zone: Option<String>) {
        if let Some(old) = self.home.remove(&slot)
            && let Some(units) = self.home_units.get_mut(&old)
        {
            units.remove(&slot);
            if units.is_empty() {
                self.home_units.remove(&old);
            }
        }
        if let Some(zone) = zone {
            self.home_units
                .entry(zone.clone())
                .or_default()
                .insert(slot);
            self.home.insert(slot, zone);
        }
    }
}

impl Dispatcher {
    /// Creates a zone or replaces the one with its id (version + 1); the
    /// units' memberships are kept and re-checked on their next fix.
    pub fn put_zone(&mut self, spec: ZoneSpec, now: Millis) -> Result<Zone, Error> {
        spec.validate()?;
        let old = self.zones.index.get(&spec.id);
        if old.is_none() && self.zones.index.len() >= MAX_ZONES {
            return Err(Error::full("the zone table", format!("{MAX_ZONES} zones")));
        }
        let zone = Zone {
            version: old.map_or(1, |z| z.version + 1),
            id: spec.id,
            name: spec.name,
            kind: spec.kind,
            polygon: spec.polygon,
            updated: now,
        };
        self.zones.index.put(zone.clone());
        self.outbox.push(Event::Zone(ZoneChange {
            kind: ZoneChangeKind::Put,
            zone_id: zone.id.clone(),
            unit_id: None,
            time: now,
            zone: Some(zone.clone()),
        }));
        Ok(zone)
    }

    /// Removes a zone; units in it or at home in it forget it (no exit
    /// events: the one `Removed` event says it).
    pub fn remove_zone(&mut self, id: &str, now: Millis) -> Result<Zone, Error> {
        validate_id("zone_id", id)?;
        let zone = self
            .zones
            .index
            .remove(id)
            .ok_or_else(|| Error::not_found("zone", id))?;
        self.zones.members.drop_zone(id);
        if let Some(units) = self.zones.home_units.remove(id) {
            for slot in units {
                self.zones.home.remove(&slot);
            }
        }
        self.outbox.push(Event::Zone(ZoneChange {
            kind: ZoneChangeKind::Removed,
            zone_id: id.to_string(),
            unit_id: None,
            time: now,
            zone: None,
        }));
        Ok(zone)
    }

    /// The zone with this id.
    pub fn zone(&self, id: &str) -> Result<&Zone, Error> {
        validate_id("zone_id", id)?;
        self.zones
            .index
            .get(id)
            .ok_or_else(|| Error::not_found("zone", id))
    }

    /// Every zone, by id.
    pub fn zones(&self) -> Vec<Zone> {
        self.zones.index.iter().cloned().collect()
    }

    /// The zone index, for queries (it changes only through the core's
    /// commands).
    pub fn zone_index(&self) -> &ZoneIndex {
        &self.zones.index
    }

    /// The zone of a point (an incident's location): the smallest zone
    /// holding it.
    pub fn zone_at(&self, at: LonLat) -> Option<&Zone> {
        self.zones.index.zone_of(at)
    }

    /// Sets (or with `None` clears) a unit's home zone; the zone must exist.
    pub fn set_home_zone(&mut self, unit_id: &str, zone_id: Option<&str>) -> Result<(), Error> {
        validate_id("unit_id", unit_id)?;
        let slot = self.units.slot(unit_id)?;
        if let Some(zone_id) = zone_id {
            self.zone(zone_id)?;
        }
        self.zones.set_home(slot, zone_id.map(str::to_string));
        Ok(())
    }

    /// A unit's home zone, if it has one.
    pub fn home_zone(&self, unit_id: &str) -> Result<Option<&str>, Error> {
        validate_id("unit_id", unit_id)?;
        let slot = self.units.slot(unit_id)?;
        Ok(self.zones.home.get(&slot).map(String::as_str))
    }

    /// The zones a unit is in (by the hysteresis rules), by id.
    pub fn unit_zones(&self, unit_id: &str) -> Result<Vec<String>, Error> {
        validate_id("unit_id", unit_id)?;
        let slot = self.units.slot(unit_id)?;
        Ok(self
            .zones
            .members
            .get(slot)
            .map(|z| z.inside.clone())
            .unwrap_or_default())
    }

    /// The hook on every applied fix: membership with hysteresis, entries
    /// and exits onto the stream. Nothing to do without zones.
    pub(super) fn update_zones(&mut self, slot: u32) {
        let Some(fix) = self.units.record(slot).fix() else {
            return;
        };
        let out = self.zones.members.apply_fix(
            slot,
            self.units.unit_id(slot),
            fix.at,
            fix.time,
            &self.zones.index,
            &self.config.zones,
        );
        self.outbox.extend(out.into_iter().map(Event::Zone));
    }

    /// Puts a unit whose home zone holds `point` first when it arrives at
    /// most `prefer_margin_s` after the fastest pick, saying so in its
    /// reason. Only the order of the picks (and which are in when the home
    /// unit was not among the k) changes; the plan is filled as before.
    pub(super) fn prefer_home(
        &self,
        recommendation: &mut Recommendation,
        point: LonLat,
        query: &UnitQuery,
        now: Millis,
    ) {
        if self.zones.home_units.is_empty() || recommendation.units.is_empty() {
            return;
        }
        let here = self.zones.index.containing(point);
        let mut candidates: Vec<(f64, u32, &str)> = Vec::new();
        for zone in &here {
            for &slot in self.zones.home_units.get(&zone.id).into_iter().flatten() {
                let record = self.units.record(slot);
                let Some(fix) = record.fix() else { continue };
                let status = self.units.effective_status(slot, now);
                if exclusion(&self.units, slot, status, query).is_some() {
                    continue;
                }
                let straight = fix.at.distance_m(&point);
                if query.max_distance_m.is_some_and(|m| straight > m) {
                    continue;
                }
                if !candidates.iter().any(|c| c.1 == slot) {
                    candidates.push((straight, slot, zone.id.as_str()));
                }
            }
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        candidates.truncate(MAX_HOME_CANDIDATES);
        let fastest = &recommendation.units[0];
        let fastest_eta = fastest.eta_s;
        let mut best: Option<(f64, u32, &str, Option<usize>)> = None;
        for (_, slot, zone_id) in candidates {
            let id = self.units.unit_id(slot);
            let (eta, at) = match recommendation
                .units
                .iter()
                .position(|u| u.unit.profile.id == id)
            {
                Some(i) => (recommendation.units[i].eta_s, Some(i)),
                None => {
                    let record = self.units.record(slot);
                    let fix = record.fix().expect("checked above");
                    (self.plan_for(record.kind, fix.at, point, query).eta_s, None)
                }
            };
            if best.is_none_or(|b| eta < b.0) {
                best = Some((eta, slot, zone_id, at));
            }
        }
        let margin = self.config.zones.prefer_margin_s;
        let Some((eta, slot, zone_id, at)) = best else {
            return;
        };
        if at == Some(0) || eta > fastest_eta + margin {
            return;
        }
        let note = format!(
            "home zone {zone_id}, within {} of the fastest ({} {}; this one {})",
            format_duration(margin),
            fastest.unit.profile.call_sign,
            format_duration(fastest_eta),
            format_duration(eta),
        );
        let mut unit = match at {
            Some(i) => recommendation.units.remove(i),
            None => self.recommended(slot, point, query, now),
        };
        unit.reason = format!("{note}: {}", unit.reason);
        recommendation.units.insert(0, unit);
        recommendation.units.truncate(query.k.max(1));
        let id = self.units.unit_id(slot);
        recommendation.excluded.retain(|e| e.unit_id != id);
    }

    /// The way the ranking would go: over the network with the query's
    /// priority, else straight.
    fn plan_for(
        &self,
        kind: crate::units::UnitKind,
        from: LonLat,
        to: LonLat,
        query: &UnitQuery,
    ) -> crate::network::RoutePlan {
        match &self.config.network {
            Some(network) => network.route(kind, from, to, query.priority),
            None => self.route_for(kind, from, to, 3),
        }
    }

    /// A recommended unit that the ranking did not pick, built the way the
    /// ranking builds its picks.
    fn recommended(
        &self,
        slot: u32,
        point: LonLat,
        query: &UnitQuery,
        now: Millis,
    ) -> RecommendedUnit {
        let unit = self.units.view(slot, now);
        let fix = unit.fix.expect("a candidate has a fix");
        let kind = unit.profile.kind;
        let plan = self.plan_for(kind, fix.at, point, query);
        let network = plan.method == EtaMethod::Network;
        let distance_m = fix.at.distance_m(&point);
        let reason = if network {
            format!(
                "{}, {} over {:.0} m of street ({distance_m:.0} m straight line)",
                kind.as_str(),
                format_duration(plan.eta_s),
                plan.route_m
            )
        } else {
            format!(
                "{}: {distance_m:.0} m, about {} at {} speed (straight line)",
                kind.as_str(),
                format_duration(plan.eta_s),
                kind.as_str()
            )
        };
        RecommendedUnit {
            confidence: confidence(&fix, now, kind, &self.config.trust),
            distance_m,
            eta_s: plan.eta_s,
            eta_method: plan.method,
            route_m: network.then_some(plan.route_m),
            route: if network && query.include_routes {
                plan.geometry
            } else {
                Vec::new()
            },
            reason,
            unit,
        }
    }

    // ----- checkpoints ---------------------------------------------------

    /// Zones, memberships (by unit id, sorted) and home zones (by unit id,
    /// sorted), for checkpoints.
    pub(crate) fn export_zones(&self) -> ZoneExport {
        let mut members: Vec<(String, UnitZones)> = self
            .zones
            .members
            .iter()
            .map(|(slot, z)| (self.units.unit_id(slot).to_string(), z.clone()))
            .collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut home: Vec<(String, String)> = self
            .zones
            .home
            .iter()
            .map(|(slot, z)| (self.units.unit_id(*slot).to_string(), z.clone()))
            .collect();
        home.sort();
        (self.zones.index.iter().cloned().collect(), members, home)
    }

    /// Restores zones, memberships and home zones from a checkpoint (after
    /// the units).
    pub(crate) fn import_zones(&mut self, (zones, members, home): ZoneExport) -> Result<(), Error> {
        self.zones = Zones {
            index: ZoneIndex::from_zones(zones),
            ..Zones::default()
        };
        // Memberships and home zones of zones the checkpoint does not hold
        // are dropped rather than kept where nothing would ever clear them.
        let index = &self.zones.index;
        for (unit_id, mut z) in members {
            let slot = self.units.slot(&unit_id)?;
            z.inside.retain(|id| index.get(id).is_some());
            z.pending.retain(|p| index.get(&p.zone_id).is_some());
            self.zones.members.set(slot, z);
        }
        for (unit_id, zone_id) in home {
            let slot = self.units.slot(&unit_id)?;
            if self.zones.index.get(&zone_id).is_some() {
                self.zones.set_home(slot, Some(zone_id));
            }
        }
        Ok(())
    }
}

/// What [`Dispatcher::export_zones`] gives.
pub(crate) type ZoneExport = (Vec<Zone>, Vec<(String, UnitZones)>, Vec<(String, String)>);
