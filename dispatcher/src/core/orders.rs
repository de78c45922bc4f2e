//! What happens after dispatch, driven by time: terminals acknowledge their
//! orders, an order nobody acknowledged is withdrawn and the next unit sent,
//! a unit en route or on scene for too long raises an alert, and the most
//! urgent incidents are dispatched by their response plan without waiting for
//! an operator. All of it runs on the `now` of commands (the position tick
//! calls [`Dispatcher::run_timers`]), so every node of a region does the same
//! at the same point of the log.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Dispatcher, Event, Target};
use crate::Millis;
use crate::actor::Actor;
use crate::error::{Error, validate_id};
use crate::incidents::{DispatchRequest, Incident, Order};
use crate::plans::{PlanCandidate, fill};
use crate::recommend::{PlanOutcome, PlannedUnit, UnitQuery, format_duration};
use crate::units::{UnitKind, UnitStatus};

/// Acknowledgements, re-dispatch, status timers and automatic dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchPolicy {
    /// An order its unit's terminal has not acknowledged after this long is
    /// withdrawn and the next unit sent, milliseconds (0: orders never time
    /// out; default 60 s).
    pub ack_timeout_ms: Millis,
    /// A unit en route longer than this raises an alert, milliseconds (0:
    /// never; default 15 min).
    pub en_route_max_ms: Millis,
    /// A unit on scene longer than this raises an alert, milliseconds (0:
    /// never; default 60 min).
    pub on_scene_max_ms: Millis,
    /// Incidents of this priority or more urgent (1 is the most urgent) are
    /// dispatched by their response plan as soon as they open (0: never, the
    /// default).
    pub auto_dispatch_max_priority: u32,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            ack_timeout_ms: 60_000,
            en_route_max_ms: 15 * 60_000,
            on_scene_max_ms: 60 * 60_000,
            auto_dispatch_max_priority: 0,
        }
    }
}

impl DispatchPolicy {
    /// Checks every setting, naming it.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, v) in [
            ("dispatch.ack_timeout_ms", self.ack_timeout_ms),
            ("dispatch.en_route_max_ms", self.en_route_max_ms),
            ("dispatch.on_scene_max_ms", self.on_scene_max_ms),
        ] {
            if !(0..=7 * 24 * 3_600_000).contains(&v) {
                return Err(Error::invalid(field, v, "must be 0 (off) ..= 7 days in ms"));
            }
        }
        if self.auto_dispatch_max_priority > 5 {
            return Err(Error::invalid(
                "dispatch.auto_dispatch_max_priority",
                self.auto_dispatch_max_priority,
                "must be 0 (off) ..= 5",
            ));
        }
        Ok(())
    }

    fn limit_for(&self, status: UnitStatus) -> Millis {
        match status {
            UnitStatus::EnRoute => self.en_route_max_ms,
            UnitStatus::OnScene => self.on_scene_max_ms,
            _ => 0,
        }
    }
}

/// What a [`UnitAlert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitAlertKind {
    /// En route longer than `dispatch.en_route_max_ms`.
    EnRouteOverdue,
    /// On scene longer than `dispatch.on_scene_max_ms`.
    OnSceneOverdue,
    /// The unit's terminal did not acknowledge its order in time; the order
    /// was withdrawn.
    OrderNotAcknowledged,
}

impl UnitAlertKind {
    /// The kind as it reads in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitAlertKind::EnRouteOverdue => "en_route_overdue",
            UnitAlertKind::OnSceneOverdue => "on_scene_overdue",
            UnitAlertKind::OrderNotAcknowledged => "order_not_acknowledged",
        }
    }
}

/// Something about a unit the command room must look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitAlert {
    /// The unit.
    pub unit_id: String,
    /// What happened.
    pub kind: UnitAlertKind,
    /// The incident it concerns.
    pub incident_id: Option<String>,
    /// Since when the unit has been in the state the alert is about, Unix ms.
    pub since: Millis,
    /// When the alert was raised, Unix ms.
    pub time: Millis,
    /// For operators, e.g. "car-7 en route to inc-3 for 15 min 0 s".
    pub message: String,
}

/// A unit in a timed status: since when, and whether its alert went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusTimer {
    /// The unit.
    pub unit_id: String,
    /// En route or on scene.
    pub status: UnitStatus,
    /// Since when, Unix ms.
    pub since: Millis,
    /// Whether its alert was raised.
    pub alerted: bool,
}

/// The timers the core keeps: due times in order, for a tick to find what is
/// due without looking at every unit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    /// (due, unit slot, order number) of unacknowledged orders.
    acks: BTreeSet<(Millis, u32, String)>,
    /// (due, unit slot, since) of units in a timed status.
    status_due: BTreeSet<(Millis, u32, Millis)>,
    /// Per unit slot in a timed status: the status, since when, alerted.
    status: std::collections::HashMap<u32, (UnitStatus, Millis, bool)>,
}

impl Dispatcher {
    /// The automatic dispatcher's and the timers' actor.
    fn system_actor() -> Actor {
        Actor::system("dispatcher")
    }

    /// The unit's terminal acknowledges `order_id`: recorded on the order
    /// (re-sent with the time) and in the incident's audit trail. Repeating
    /// it is harmless; an order that is not the unit's current one is
    /// refused (`FailedPrecondition`: it was withdrawn or released).
    pub fn acknowledge_order(
        &mut self,
        unit_id: &str,
        order_id: &str,
        actor: &Actor,
        now: Millis,
    ) -> Result<Order, Error> {
        validate_id("unit_id", unit_id)?;
        validate_id("order_id", order_id)?;
        actor.validate()?;
        let slot = self.units.slot(unit_id)?;
        let current = self.units.record(slot).order.as_deref().cloned();
        let Some(mut order) = current.filter(|o| o.id == order_id) else {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} is not unit {unit_id}'s current order (withdrawn, released or never issued)"
            )));
        };
        if order.acknowledged.is_some() {
            return Ok(order);
        }
        order.acknowledged = Some(now);
        self.units.record_mut(slot).order = Some(Box::new(order.clone()));
        if let Some(&islot) = self.incident_slots.get(&order.incident_id) {
            let inc = &mut self.incidents[islot];
            inc.record(
                now,
                actor,
                "acknowledged",
                format!("unit {unit_id} acknowledged {order_id}"),
            );
            self.outbox.push(Event::Order(order.clone()));
            self.outbox.push(Event::Incident(inc.clone()));
        }
        Ok(order)
    }

    /// Schedules `order`'s acknowledgement deadline (called as it is issued).
    pub(super) fn expect_ack(&mut self, slot: u32, order: &Order) {
        let timeout = self.config.dispatch.ack_timeout_ms;
        if timeout > 0 {
            self.timers
                .acks
                .insert((order.issued + timeout, slot, order.id.clone()));
        }
    }

    /// Starts or stops a unit's status timer after its status became
    /// `status` at `now`.
    pub(super) fn time_status(&mut self, slot: u32, status: UnitStatus, now: Millis) {
        let limit = self.config.dispatch.limit_for(status);
        if limit > 0 {
            let keep = matches!(self.timers.status.get(&slot), Some((s, ..)) if *s == status);
            if !keep {
                self.timers.status.insert(slot, (status, now, false));
                self.timers.status_due.insert((now + limit, slot, now));
            }
        } else {
            self.timers.status.remove(&slot);
        }
    }

    /// Runs what is due at `now`: withdraws orders not acknowledged in time
    /// (and sends the next unit), raises alerts for units en route or on
    /// scene too long. Returns how many timers fired.
    pub fn run_timers(&mut self, now: Millis) -> usize {
        let mut fired = 0;
        while let Some(first) = self.timers.acks.first().cloned() {
            if first.0 > now {
                break;
            }
            self.timers.acks.pop_first();
            let (_, slot, order_id) = first;
            let current = self.units.record(slot).order.as_deref().cloned();
            if let Some(order) = current.filter(|o| o.id == order_id && o.acknowledged.is_none()) {
                fired += 1;
                self.withdraw(slot, order, now);
            }
        }
        while let Some(&(due, slot, since)) = self.timers.status_due.first() {
            if due > now {
                break;
            }
            self.timers.status_due.pop_first();
            let Some(&(status, started, alerted)) = self.timers.status.get(&slot) else {
                continue;
            };
            if started != since || alerted || self.units.stored_status(slot) != status {
                continue;
            }
            fired += 1;
            self.timers.status.insert(slot, (status, started, true));
            let unit_id = self.units.unit_id(slot).to_string();
            let incident_id = self
                .units
                .record(slot)
                .incident_id
                .as_deref()
                .map(str::to_string);
            let kind = if status == UnitStatus::EnRoute {
                UnitAlertKind::EnRouteOverdue
            } else {
                UnitAlertKind::OnSceneOverdue
            };
            let message = format!(
                "{unit_id} {} {} for {}",
                status.as_str(),
                incident_id
                    .as_deref()
                    .map(|i| format!("at {i}"))
                    .unwrap_or_default(),
                format_duration(((now - started) / 1000) as f64)
            );
            self.outbox.push(Event::UnitAlert(UnitAlert {
                unit_id,
                kind,
                incident_id,
                since: started,
                time: now,
                message,
            }));
        }
        fired
    }

    /// Withdraws an order nobody acknowledged and sends the next unit.
    fn withdraw(&mut self, slot: u32, order: Order, now: Millis) {
        let actor = Self::system_actor();
        let unit_id = order.unit_id.clone();
        let waited = format_duration((self.config.dispatch.ack_timeout_ms / 1000) as f64);
        if let Some(&islot) = self.incident_slots.get(&order.incident_id) {
            self.incidents[islot]
                .withdrawn_unit_ids
                .push(unit_id.clone());
        }
        self.unassign(
            slot,
            &order.incident_id,
            &actor,
            now,
            "order_withdrawn",
            format!(
                "unit {unit_id} did not acknowledge {} within {waited}",
                order.id
            ),
        );
        self.outbox.push(Event::Unit(self.units.view(slot, now)));
        self.outbox.push(Event::UnitAlert(UnitAlert {
            unit_id: unit_id.clone(),
            kind: UnitAlertKind::OrderNotAcknowledged,
            incident_id: Some(order.incident_id.clone()),
            since: order.issued,
            time: now,
            message: format!(
                "{unit_id} did not acknowledge {} for {} within {waited}; withdrawn",
                order.id, order.incident_id
            ),
        }));
        let kind = self.units.record(slot).kind;
        self.send_next(&order.incident_id, kind, &actor, now, &unit_id);
    }

    /// Sends the first unit to arrive (of `kind` when one can, else any) that
    /// was not withdrawn from the incident before; records a shortfall when
    /// there is none.
    fn send_next(
        &mut self,
        incident_id: &str,
        kind: UnitKind,
        actor: &Actor,
        now: Millis,
        replaces: &str,
    ) {
        let Ok(incident) = self.incident(incident_id).cloned() else {
            return;
        };
        if !incident.status.accepts_units() {
            return;
        }
        let skip = |id: &str| incident.withdrawn_unit_ids.iter().any(|w| w == id);
        let mut next = None;
        for kinds in [vec![kind], vec![]] {
            let query = UnitQuery {
                k: incident.withdrawn_unit_ids.len() + 3,
                kinds,
                priority: Some(incident.priority),
                ..Default::default()
            };
            if let Ok(rec) = self.recommend(&Target::Incident(incident.id.clone()), &query, now)
                && let Some(u) = rec.units.iter().find(|u| !skip(&u.unit.profile.id))
            {
                next = Some(u.unit.profile.id.clone());
                break;
            }
        }
        let request = DispatchRequest {
            intercept: Default::default(),
            incident_id: incident.id.clone(),
            unit_ids: next.clone().into_iter().collect(),
            note: format!("replaces {replaces}, who did not acknowledge"),
            request_id: None,
        };
        if (next.is_none() || self.dispatch(&request, actor, now).is_err())
            && let Some(&islot) = self.incident_slots.get(incident_id)
        {
            let inc = &mut self.incidents[islot];
            inc.record(
                now,
                actor,
                "shortfall",
                format!("no available unit to replace {replaces}"),
            );
            self.outbox.push(Event::Incident(inc.clone()));
        }
    }

    /// The incident's response plan filled from the units that arrive first.
    pub(super) fn fill_plan(&self, incident: &Incident, now: Millis) -> PlanOutcome {
        let choice = self
            .config
            .plans
            .plan_for(&incident.kind, incident.priority);
        let plan = choice.plan;
        // Every unit a need could use: the fastest overall, and the fastest
        // of each need's kinds and capabilities.
        let mut found: Vec<(String, UnitKind, Vec<String>, f64)> = Vec::new();
        for mut query in plan.candidate_queries() {
            query.priority = Some(incident.priority);
            let Ok(rec) = self.rank_for(incident.location, &query, now) else {
                continue;
            };
            for u in rec.units {
                if !found.iter().any(|(id, ..)| *id == u.unit.profile.id)
                    && !incident.withdrawn_unit_ids.contains(&u.unit.profile.id)
                {
                    found.push((
                        u.unit.profile.id.clone(),
                        u.unit.profile.kind,
                        u.unit.profile.capabilities.clone(),
                        u.eta_s,
                    ));
                }
            }
        }
        found.sort_by(|a, b| a.3.total_cmp(&b.3).then_with(|| a.0.cmp(&b.0)));
        let candidates: Vec<PlanCandidate<'_, String>> = found
            .iter()
            .map(|(id, kind, caps, eta)| PlanCandidate {
                key: id.clone(),
                kind: *kind,
                capabilities: caps,
                eta_s: *eta,
            })
            .collect();
        let filled = fill(plan, &candidates);
        PlanOutcome {
            plan: choice.label(),
            complete: filled.is_complete(),
            chosen: filled
                .chosen
                .iter()
                .map(|c| PlannedUnit {
                    unit_id: c.key.clone(),
                    eta_s: c.eta_s,
                    reason: c.reason.clone(),
                })
                .collect(),
            shortfalls: filled
                .shortfalls
                .iter()
                .map(|s| s.message.clone())
                .collect(),
        }
    }

    /// Dispatches a just-opened incident by its plan, when its priority is
    /// urgent enough for automatic dispatch.
    pub(super) fn auto_dispatch(&mut self, incident_id: &str, now: Millis) {
        let max = self.config.dispatch.auto_dispatch_max_priority;
        let Ok(incident) = self.incident(incident_id).cloned() else {
            return;
        };
        if max == 0 || incident.priority > max {
            return;
        }
        let plan = self.fill_plan(&incident, now);
        let actor = Self::system_actor();
        if plan.chosen.is_empty() {
            if let Some(&islot) = self.incident_slots.get(incident_id) {
                let inc = &mut self.incidents[islot];
                inc.record(
                    now,
                    &actor,
                    "shortfall",
                    format!(
                        "auto-dispatch ({}) found no unit: {}",
                        plan.plan,
                        plan.shortfalls.join("; ")
                    ),
                );
                self.outbox.push(Event::Incident(inc.clone()));
            }
            return;
        }
        let request = DispatchRequest {
            intercept: Default::default(),
            incident_id: incident_id.to_string(),
            unit_ids: plan.chosen.iter().map(|c| c.unit_id.clone()).collect(),
            note: format!("auto-dispatched by plan {}", plan.plan),
            request_id: None,
        };
        if self.dispatch(&request, &actor, now).is_ok()
            && !plan.shortfalls.is_empty()
            && let Some(&islot) = self.incident_slots.get(incident_id)
        {
            let inc = &mut self.incidents[islot];
            inc.record(now, &actor, "shortfall", plan.shortfalls.join("; "));
            self.outbox.push(Event::Incident(inc.clone()));
        }
    }

    /// The status timers, as checkpoints store them.
    pub fn export_timers(&self) -> Vec<StatusTimer> {
        let mut out: Vec<StatusTimer> = self
            .timers
            .status
            .iter()
            .map(|(&slot, &(status, since, alerted))| StatusTimer {
                unit_id: self.units.unit_id(slot).to_string(),
                status,
                since,
                alerted,
            })
            .collect();
        out.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
        out
    }

    /// Rebuilds the timers after a restore: the status timers from their
    /// records, the acknowledgement deadlines from the units' orders.
    pub(crate) fn restore_timers(&mut self, timers: Vec<StatusTimer>) {
        self.timers = Timers::default();
        for t in timers {
            let Ok(slot) = self.units.slot(&t.unit_id) else {
                continue;
            };
            let limit = self.config.dispatch.limit_for(t.status);
            self.timers
                .status
                .insert(slot, (t.status, t.since, t.alerted));
            if limit > 0 && !t.alerted {
                self.timers
                    .status_due
                    .insert((t.since + limit, slot, t.since));
            }
        }
        let orders: Vec<(u32, Order)> = (0..self.units.len() as u32)
            .filter_map(|slot| {
                self.units
                    .record(slot)
                    .order
                    .as_deref()
                    .filter(|o| o.acknowledged.is_none())
                    .map(|o| (slot, o.clone()))
            })
            .collect();
        for (slot, order) in orders {
            self.expect_ack(slot, &order);
        }
    }
}
