//! The simulated command room: a duty operator taking calls and answering camera
//! alerts, and the camera analytics that post those alerts.
//!
//! The operator raises an incident at a random place on the network every
//! `incident_interval` (jittered), asks `Recommend` for the nearest units, dispatches
//! the best one (two for priority 1) and retries incidents nobody could take. When a
//! unit reports the scene clear, the operator resolves and closes the incident,
//! which frees its units on the server, and stands down any other unit still on it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use patrol_proto::auth::Authed;
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use patrol_proto::v1::incident_service_client::IncidentServiceClient;
use patrol_proto::v1::recommend_request::Target;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{
    CreateIncidentRequest, DispatchRequest, IncidentSource, IncidentStatus, LonLat,
    PostAlertRequest, RecommendRequest, UnitStatus, UpdateIncidentRequest, UpdateStatusRequest,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::osm::CityMap;
use crate::unit::{UnitCommand, unix_ms};

/// How often incidents nobody could take are offered again.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Offers per incident before the operator stops trying (it stays open, unanswered).
const MAX_ATTEMPTS: u32 = 24;
/// Incidents waiting for a unit at most; the oldest is given up beyond that.
const MAX_WAITING: usize = 64;
/// Units asked for in each recommendation.
const RECOMMEND_K: u32 = 3;

/// Calls the operator takes: type, priority range (1 most urgent), what the caller says.
const CALLS: &[(&str, u32, u32, &str)] = &[
    ("theft", 3, 4, "a stolen bag"),
    ("theft", 3, 4, "a bike being stolen"),
    ("fight", 1, 3, "people fighting"),
    ("traffic_accident", 2, 3, "a car and a cyclist colliding"),
    ("suspicious_person", 3, 5, "someone trying car doors"),
    ("noise", 4, 5, "loud music and shouting"),
    ("vandalism", 3, 5, "shop windows being smashed"),
    ("medical", 1, 2, "a person collapsed on the pavement"),
];

/// What camera analytics report.
const ALERT_LABELS: &[&str] = &[
    "fight",
    "intrusion",
    "loitering",
    "car_break_in",
    "fall",
    "plate_hit",
];

/// `base` times a random factor in [0.5, 1.5), at least 100 ms.
pub(crate) fn jittered<R: Rng + ?Sized>(rng: &mut R, base: Duration) -> Duration {
    base.mul_f64(rng.random_range(0.5..1.5))
        .max(Duration::from_millis(100))
}

/// Messages to the operator from units and camera analytics.
#[derive(Debug)]
pub(crate) enum OperatorEvent {
    /// A camera alert opened an incident: answer it like a call.
    AlertIncident { incident_id: String, label: String },
    /// A unit is done at the scene: resolve and close the incident.
    SceneCleared {
        incident_id: String,
        unit_id: String,
    },
}

/// An incident still waiting for a unit.
struct Waiting {
    incident_id: String,
    priority: u32,
    attempts: u32,
}

pub(crate) struct Operator {
    pub incidents: IncidentServiceClient<Authed>,
    pub units: UnitServiceClient<Authed>,
    pub map: Arc<CityMap>,
    pub rng: StdRng,
    /// Each unit's command queue, to stand it down.
    pub unit_commands: HashMap<String, mpsc::Sender<UnitCommand>>,
}

impl Operator {
    /// Runs until aborted.
    pub(crate) async fn run(
        mut self,
        incident_interval: Duration,
        mut events: mpsc::Receiver<OperatorEvent>,
    ) {
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        // Units the operator sent to each open incident.
        let mut assigned: HashMap<String, Vec<String>> = HashMap::new();
        let mut next_call = Instant::now() + jittered(&mut self.rng, incident_interval);
        let mut retry = tokio::time::interval(RETRY_INTERVAL);
        retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_call) => {
                    next_call = Instant::now() + jittered(&mut self.rng, incident_interval);
                    if let Some((incident_id, priority)) = self.take_call().await {
                        self.answer(Waiting { incident_id, priority, attempts: 0 }, &mut waiting, &mut assigned).await;
                    }
                }
                _ = retry.tick() => {
                    for incident in std::mem::take(&mut waiting) {
                        self.answer(incident, &mut waiting, &mut assigned).await;
                    }
                }
                Some(event) = events.recv() => match event {
                    OperatorEvent::AlertIncident { incident_id, label } => {
                        info!(incident = %incident_id, label = %label, "camera alert opened an incident");
                        self.answer(Waiting { incident_id, priority: 3, attempts: 0 }, &mut waiting, &mut assigned).await;
                    }
                    OperatorEvent::SceneCleared { incident_id, unit_id } => {
                        let units = assigned.remove(&incident_id).unwrap_or_default();
                        self.close(&incident_id, &unit_id, units).await;
                    }
                },
            }
        }
    }

    /// A caller reports something at a random place: creates the incident.
    async fn take_call(&mut self) -> Option<(String, u32)> {
        let point = self.map.random_point_on_network(&mut self.rng);
        let &(kind, low, high, what) = CALLS.choose(&mut self.rng)?;
        let priority = self.rng.random_range(low..=high);
        let description = match self.map.street_near(point, 200.0) {
            Some(street) => format!("caller reports {what} near {street}"),
            None => format!("caller reports {what}"),
        };
        let request = CreateIncidentRequest {
            request_id: Default::default(),
            r#type: kind.to_owned(),
            priority,
            location: Some(LonLat {
                lon: point.lon,
                lat: point.lat,
            }),
            source: IncidentSource::Call.into(),
            description,
        };
        match self.incidents.create_incident(request).await {
            Ok(reply) => {
                let Some(incident) = reply.into_inner().incident else {
                    warn!("incident created but not returned");
                    return None;
                };
                info!(incident = %incident.id, kind, priority, "call taken");
                Some((incident.id, priority))
            }
            Err(e) => {
                warn!(kind, code = ?e.code(), message = e.message(), "cannot create incident");
                None
            }
        }
    }

    /// Recommends and dispatches; queues the incident for another try when nobody
    /// could be sent.
    async fn answer(
        &mut self,
        mut incident: Waiting,
        waiting: &mut VecDeque<Waiting>,
        assigned: &mut HashMap<String, Vec<String>>,
    ) {
        if let Some(units) = self.dispatch(&incident).await {
            assigned.insert(incident.incident_id, units);
            return;
        }
        incident.attempts += 1;
        if incident.attempts >= MAX_ATTEMPTS {
            warn!(incident = %incident.incident_id, attempts = incident.attempts, "giving up dispatching");
            return;
        }
        waiting.push_back(incident);
        if waiting.len() > MAX_WAITING
            && let Some(oldest) = waiting.pop_front()
        {
            warn!(incident = %oldest.incident_id, "too many incidents waiting, giving up the oldest");
        }
    }

    /// The best recommended unit (two for priority 1), dispatched. `None` when
    /// nobody is available or the server refused.
    async fn dispatch(&mut self, incident: &Waiting) -> Option<Vec<String>> {
        let id = &incident.incident_id;
        let request = RecommendRequest {
            target: Some(Target::IncidentId(id.clone())),
            k: RECOMMEND_K,
            ..Default::default()
        };
        let recommendation = match self.incidents.recommend(request).await {
            Ok(reply) => reply.into_inner(),
            Err(e) => {
                warn!(incident = %id, code = ?e.code(), message = e.message(), "recommend failed");
                return None;
            }
        };
        let wanted = if incident.priority == 1 { 2 } else { 1 };
        let chosen: Vec<_> = recommendation
            .units
            .iter()
            .filter(|r| r.unit.is_some())
            .take(wanted)
            .collect();
        let Some(best) = chosen.first() else {
            info!(incident = %id, excluded = recommendation.excluded.len(), "no unit available, will retry");
            return None;
        };
        let unit_ids: Vec<String> = chosen
            .iter()
            .filter_map(|r| r.unit.as_ref().map(|u| u.id.clone()))
            .collect();
        let request = DispatchRequest {
            request_id: Default::default(),
            incident_id: id.clone(),
            unit_ids: unit_ids.clone(),
            note: format!("recommended: {}", best.reason),
            intercept: Default::default(),
        };
        match self.incidents.dispatch(request).await {
            Ok(_) => {
                info!(
                    incident = %id, units = %unit_ids.join(","), distance_m = best.distance_m.round(),
                    eta_s = best.eta_s.round(), "dispatched"
                );
                Some(unit_ids)
            }
            Err(e) => {
                warn!(incident = %id, units = %unit_ids.join(","), code = ?e.code(), message = e.message(), "dispatch refused");
                None
            }
        }
    }

    /// Resolves and closes an incident a unit has cleared; stands down the other
    /// units on it. If the server would not close it, frees the units directly.
    async fn close(&mut self, incident_id: &str, cleared_by: &str, mut units: Vec<String>) {
        let resolve_note = format!("{cleared_by} cleared the scene");
        self.update(incident_id, IncidentStatus::Resolved, resolve_note)
            .await;
        let closed = self
            .update(
                incident_id,
                IncidentStatus::Closed,
                "closed by the duty operator".into(),
            )
            .await;
        if !units.iter().any(|u| u == cleared_by) {
            units.push(cleared_by.to_owned());
        }
        if closed {
            info!(incident = %incident_id, unit = %cleared_by, "incident closed");
        }
        for unit in &units {
            if !closed {
                let request = UpdateStatusRequest {
                    unit_id: unit.clone(),
                    status: UnitStatus::Available.into(),
                };
                if let Err(e) = self.units.update_status(request).await {
                    warn!(unit = %unit, code = ?e.code(), message = e.message(), "cannot free unit");
                }
            }
            if unit != cleared_by
                && let Some(commands) = self.unit_commands.get(unit)
            {
                // Only stand-downs use this queue. Were it full, the unit would finish
                // the job; its ON_SCENE and the second close would be refused, harmlessly.
                let _ = commands.try_send(UnitCommand::StandDown {
                    incident_id: incident_id.to_owned(),
                });
            }
        }
    }

    async fn update(&mut self, id: &str, status: IncidentStatus, note: String) -> bool {
        let request = UpdateIncidentRequest {
            request_id: Default::default(),
            id: id.to_owned(),
            status: status.into(),
            note,
        };
        match self.incidents.update_incident(request).await {
            Ok(_) => true,
            Err(e) => {
                warn!(incident = %id, status = status.as_str_name(), code = ?e.code(), message = e.message(), "incident update refused");
                false
            }
        }
    }
}

/// Camera analytics: an alert from a random mapped camera every `alert_interval`
/// (jittered). Alerts that open an incident are handed to the operator.
pub(crate) async fn post_alerts(
    mut cameras: CameraServiceClient<Authed>,
    map: Arc<CityMap>,
    mut rng: StdRng,
    alert_interval: Duration,
    operator: mpsc::Sender<OperatorEvent>,
) {
    loop {
        tokio::time::sleep(jittered(&mut rng, alert_interval)).await;
        let (Some(camera), Some(&label)) =
            (map.cameras.choose(&mut rng), ALERT_LABELS.choose(&mut rng))
        else {
            return;
        };
        let confidence: f32 = rng.random_range(0.3..0.99);
        let now = unix_ms();
        let request = PostAlertRequest {
            request_id: Default::default(),
            object_id: Default::default(),
            location: None,
            camera_id: camera.id.clone(),
            time_unix_ms: now,
            label: label.to_owned(),
            confidence,
            snapshot_uri: format!("https://nvr.example/snap/{}/{now}.jpg", camera.id),
        };
        match cameras.post_alert(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                info!(
                    camera = %camera.id, label, confidence, alert = %reply.alert_id, incident = %reply.incident_id,
                    "alert posted"
                );
                if reply.incident_created {
                    let event = OperatorEvent::AlertIncident {
                        incident_id: reply.incident_id,
                        label: label.to_owned(),
                    };
                    if operator.send(event).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                warn!(camera = %camera.id, label, code = ?e.code(), message = e.message(), "alert refused")
            }
        }
    }
}
