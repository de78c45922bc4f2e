//! One simulated patrol unit: its terminal's GPS, its orders and its status.
//!
//! A unit patrols random routes on the street network with its own travel
//! profile (cars and motorcycles on the streets they may drive, foot officers on
//! footways and sidewalks, e-bikes on cycleways and roads), pings its position
//! every tick, and answers orders: EN_ROUTE, drive or walk there (urgent orders
//! in emergency mode: against one-ways, through pedestrian streets), ON_SCENE,
//! stay a while, then tell the operator the scene is clear. Now and then it takes
//! a break (BUSY or OFF_DUTY).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patrol_proto::auth::Authed;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{
    AcknowledgeOrderRequest, DispatchOrder, OrderState, Ping, ReceiveOrdersRequest, UnitKind,
    UnitStatus, UpdateStatusRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, RngExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::operator::OperatorEvent;
use crate::osm::{CityMap, LonLat};
use patrol_roads::{Metric, Profile, SearchScratch, Snap};

/// Mean time between two breaks of one unit while it patrols, seconds.
const MEAN_BREAK_INTERVAL_S: f64 = 600.0;
/// Order stream reconnect backoff: first and largest delay.
const ORDERS_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(15));

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Who a unit is: what the server is told at registration.
#[derive(Debug, Clone)]
pub(crate) struct UnitSpec {
    pub id: String,
    pub call_sign: String,
    pub kind: UnitKind,
    pub capabilities: Vec<String>,
}

impl UnitSpec {
    /// Patrol speed in m/s.
    fn patrol_speed_mps(&self) -> f64 {
        match self.kind {
            UnitKind::Car => 9.0,
            UnitKind::Motorcycle => 10.0,
            UnitKind::EBike => 5.0,
            UnitKind::Foot | UnitKind::Unspecified => 1.4,
        }
    }

    /// How much faster the unit goes to an urgent incident (lights on, jogging).
    fn urgent_factor(&self) -> f64 {
        match self.kind {
            UnitKind::Car | UnitKind::Motorcycle => 1.5,
            UnitKind::EBike => 1.3,
            UnitKind::Foot | UnitKind::Unspecified => 1.6,
        }
    }

    /// The travel profile the unit routes with.
    fn profile(&self) -> Profile {
        match self.kind {
            UnitKind::Car => Profile::Car,
            UnitKind::Motorcycle => Profile::Motorcycle,
            UnitKind::EBike => Profile::EBike,
            UnitKind::Foot | UnitKind::Unspecified => Profile::Foot,
        }
    }

    fn drives(&self) -> bool {
        matches!(self.kind, UnitKind::Car | UnitKind::Motorcycle)
    }

    /// GPS accuracy reported with each ping, metres.
    fn accuracy_m(&self) -> f32 {
        if self.drives() { 5.0 } else { 8.0 }
    }
}

/// The demo fleet: `cars` "Car 11", "Car 12", ... then foot, e-bikes and
/// motorcycles, with capabilities drawn from `rng`.
pub(crate) fn fleet<R: Rng + ?Sized>(
    cars: usize,
    foot: usize,
    ebikes: usize,
    motorcycles: usize,
    rng: &mut R,
) -> Vec<UnitSpec> {
    let groups = [
        (UnitKind::Car, cars, "car", "Car"),
        (UnitKind::Foot, foot, "foot", "Foot"),
        (UnitKind::EBike, ebikes, "ebike", "E-bike"),
        (UnitKind::Motorcycle, motorcycles, "moto", "Moto"),
    ];
    let mut units = Vec::new();
    for (kind, count, id_prefix, sign) in groups {
        for n in 11..11 + count {
            let mut caps: Vec<&str> = match kind {
                UnitKind::Car | UnitKind::Motorcycle => vec!["firearms"],
                UnitKind::EBike => vec!["bike"],
                UnitKind::Foot | UnitKind::Unspecified => vec![],
            };
            if rng.random_bool(0.3) {
                caps.push("medic");
            }
            if kind == UnitKind::Car && rng.random_bool(0.2) {
                caps.push("k9");
            }
            if kind == UnitKind::Foot && rng.random_bool(0.3) {
                caps.push("firearms");
            }
            if rng.random_bool(0.3) {
                caps.push("swedish"); // Helsinki is bilingual
            }
            units.push(UnitSpec {
                id: format!("{id_prefix}-{n}"),
                call_sign: format!("{sign} {n}"),
                kind,
                capabilities: caps.into_iter().map(String::from).collect(),
            });
        }
    }
    units
}

/// A polyline a unit follows, x = lon, y = lat.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    points: Vec<LonLat>,
    /// Index of the point the unit is heading to; `points.len()` when arrived.
    next: usize,
    position: LonLat,
}

impl Route {
    /// A route starting at `points[0]`; a single point is a unit standing still.
    pub(crate) fn new(points: Vec<LonLat>, start: LonLat) -> Route {
        Route {
            points,
            next: 0,
            position: start,
        }
    }

    pub(crate) fn position(&self) -> LonLat {
        self.position
    }

    pub(crate) fn is_done(&self) -> bool {
        self.next >= self.points.len()
    }

    /// Metres left to the end.
    pub(crate) fn remaining_m(&self) -> f64 {
        let mut at = self.position;
        let mut total = 0.0;
        for p in self.points.iter().skip(self.next) {
            total += at.distance_m(p);
            at = *p;
        }
        total
    }

    /// Moves up to `distance_m` metres along the route. Returns the metres moved and
    /// the bearing of the last leg travelled (degrees), if the unit moved.
    pub(crate) fn advance(&mut self, mut distance_m: f64) -> (f64, Option<f64>) {
        let (mut moved, mut heading) = (0.0, None);
        while distance_m > 0.0 && !self.is_done() {
            let target = self.points[self.next];
            let leg = self.position.distance_m(&target);
            if leg > 0.01 {
                heading = Some(self.position.bearing_deg(&target));
            }
            if leg <= distance_m {
                self.position = target;
                self.next += 1;
                distance_m -= leg;
                moved += leg;
            } else {
                self.position = self.position.lerp(target, distance_m / leg);
                moved += distance_m;
                distance_m = 0.0;
            }
        }
        (moved, heading)
    }
}

/// What the operator can tell a unit directly.
#[derive(Debug)]
pub(crate) enum UnitCommand {
    /// The incident was closed (another unit cleared it): return to patrol.
    StandDown { incident_id: String },
}

#[derive(Debug)]
enum Activity {
    Patrol,
    Responding { incident_id: String },
    OnScene { incident_id: String, until: Instant },
    Break { until: Instant },
}

/// A running unit: owns its position, route and activity.
pub(crate) struct UnitTask {
    spec: UnitSpec,
    map: Arc<CityMap>,
    rng: StdRng,
    units: UnitServiceClient<Authed>,
    pings: mpsc::Sender<Ping>,
    /// Pings dropped because the position queue was full (superseded by the next).
    dropped_pings: Arc<AtomicU64>,
    operator: mpsc::Sender<OperatorEvent>,
    route: Route,
    /// Multiplies the patrol speed: jitter per route, more when urgent.
    speed_factor: f64,
    heading_deg: f64,
    /// Simulated seconds per real second, > 0.
    time_scale: f64,
    activity: Activity,
    /// Order ids already acted on: a reconnect re-sends the current order.
    handled_orders: HashSet<String>,
    /// Labels reused by every route this unit plans.
    scratch: SearchScratch,
}

impl UnitTask {
    /// A unit standing at a random patrol place of its network.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spec: UnitSpec,
        map: Arc<CityMap>,
        mut rng: StdRng,
        units: UnitServiceClient<Authed>,
        pings: mpsc::Sender<Ping>,
        dropped_pings: Arc<AtomicU64>,
        operator: mpsc::Sender<OperatorEvent>,
        time_scale: f64,
    ) -> UnitTask {
        let start = map
            .random_patrol_snap(spec.profile(), &mut rng)
            .map_or_else(|| map.random_point_on_network(&mut rng), |s| s.point);
        UnitTask {
            spec,
            map,
            rng,
            units,
            pings,
            dropped_pings,
            operator,
            route: Route::new(Vec::new(), start),
            speed_factor: 1.0,
            heading_deg: 0.0,
            time_scale: if time_scale.is_finite() && time_scale > 0.0 {
                time_scale
            } else {
                1.0
            },
            activity: Activity::Patrol,
            handled_orders: HashSet::new(),
            scratch: SearchScratch::new(),
        }
    }

    /// Runs until the task is aborted: a tick every `ping_interval` moves the unit
    /// and pings; orders and operator commands are handled as they come.
    pub(crate) async fn run(
        mut self,
        ping_interval: Duration,
        mut orders: mpsc::Receiver<DispatchOrder>,
        mut commands: mpsc::Receiver<UnitCommand>,
    ) {
        let mut tick = tokio::time::interval(ping_interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            tokio::select! {
                now = tick.tick() => {
                    // Capped so a stalled runtime does not teleport the unit.
                    let dt_s = (now - last).as_secs_f64().min(10.0);
                    last = now;
                    let moved_m = self.step(dt_s * self.time_scale, now).await;
                    // What a GPS measures: metres per real second.
                    self.ping(if dt_s > 0.0 { moved_m / dt_s } else { 0.0 });
                }
                Some(order) = orders.recv() => self.take_order(order).await,
                Some(UnitCommand::StandDown { incident_id }) = commands.recv() => {
                    if self.current_incident() == Some(incident_id.as_str()) {
                        info!(unit = %self.spec.id, incident = %incident_id, "stood down");
                        self.patrol();
                    }
                }
            }
        }
    }

    fn current_incident(&self) -> Option<&str> {
        match &self.activity {
            Activity::Responding { incident_id } | Activity::OnScene { incident_id, .. } => {
                Some(incident_id)
            }
            Activity::Patrol | Activity::Break { .. } => None,
        }
    }

    /// Advances the activity by `dt_s` simulated seconds; returns metres moved.
    async fn step(&mut self, dt_s: f64, now: Instant) -> f64 {
        match &self.activity {
            Activity::Patrol => {
                let moved = self.advance(dt_s);
                if self.route.is_done() {
                    self.plan_patrol();
                }
                if self
                    .rng
                    .random_bool((dt_s / MEAN_BREAK_INTERVAL_S).clamp(0.0, 1.0))
                {
                    self.take_break(now).await;
                }
                moved
            }
            Activity::Responding { incident_id } => {
                let incident_id = incident_id.clone();
                let moved = self.advance(dt_s);
                if self.route.is_done() {
                    let stay_s: f64 = self.rng.random_range(20.0..=60.0);
                    info!(unit = %self.spec.id, incident = %incident_id, stay_s = stay_s.round(), "on scene");
                    self.set_status(UnitStatus::OnScene).await;
                    self.activity = Activity::OnScene {
                        incident_id,
                        until: now + self.real(stay_s),
                    };
                }
                moved
            }
            Activity::OnScene { incident_id, until } => {
                if now >= *until {
                    let incident_id = incident_id.clone();
                    info!(unit = %self.spec.id, incident = %incident_id, "scene cleared");
                    let event = OperatorEvent::SceneCleared {
                        incident_id,
                        unit_id: self.spec.id.clone(),
                    };
                    if self.operator.send(event).await.is_err() {
                        // Nobody will close the incident: free ourselves.
                        self.set_status(UnitStatus::Available).await;
                    }
                    self.patrol();
                }
                0.0
            }
            Activity::Break { until } => {
                if now >= *until {
                    if self.set_status(UnitStatus::Available).await {
                        info!(unit = %self.spec.id, "back on patrol");
                        self.patrol();
                    } else {
                        self.activity = Activity::Break {
                            until: now + self.real(10.0),
                        };
                    }
                }
                0.0
            }
        }
    }

    /// The real time `simulated_s` simulated seconds take.
    fn real(&self, simulated_s: f64) -> Duration {
        Duration::from_secs_f64(simulated_s / self.time_scale)
    }

    fn advance(&mut self, dt_s: f64) -> f64 {
        let (moved, heading) = self
            .route
            .advance(self.spec.patrol_speed_mps() * self.speed_factor * dt_s);
        if let Some(h) = heading {
            self.heading_deg = h;
        }
        moved
    }

    fn patrol(&mut self) {
        self.activity = Activity::Patrol;
        self.plan_patrol();
    }

    /// A new route to a random patrol place of the unit's network.
    fn plan_patrol(&mut self) {
        let map = Arc::clone(&self.map);
        let metric = Metric::normal(self.spec.profile());
        if let Some(goal) = map.random_patrol_snap(metric.profile, &mut self.rng) {
            let here = self.route.position();
            self.route = route_on(&map, metric, here, &goal, None, &mut self.scratch);
        }
        self.speed_factor = self.rng.random_range(0.85..1.15);
    }

    async fn take_break(&mut self, now: Instant) {
        let (status, secs): (_, f64) = if self.rng.random_bool(0.7) {
            (UnitStatus::Busy, self.rng.random_range(30.0..=90.0))
        } else {
            (UnitStatus::OffDuty, self.rng.random_range(60.0..=180.0))
        };
        if self.set_status(status).await {
            info!(unit = %self.spec.id, status = status.as_str_name(), duration_s = secs.round(), "taking a break");
            self.activity = Activity::Break {
                until: now + self.real(secs),
            };
        }
    }

    async fn take_order(&mut self, order: DispatchOrder) {
        if order.state == OrderState::Released as i32 {
            // The server freed the unit (incident closed, or it cleared itself).
            if self.current_incident() == Some(order.incident_id.as_str()) {
                info!(unit = %self.spec.id, incident = %order.incident_id, "order released, back on patrol");
                self.patrol();
            }
            return;
        }
        if !self.handled_orders.insert(order.order_id.clone()) {
            debug!(unit = %self.spec.id, order = %order.order_id, "order already handled");
            return;
        }
        let Some(location) = order.location else {
            warn!(unit = %self.spec.id, order = %order.order_id, "order without a location ignored");
            return;
        };
        // The officer has seen it: an order nobody acknowledges is withdrawn.
        let ack = AcknowledgeOrderRequest {
            unit_id: self.spec.id.clone(),
            order_id: order.order_id.clone(),
        };
        if let Err(status) = self.units.acknowledge_order(ack).await {
            warn!(unit = %self.spec.id, order = %order.order_id, error = %status.message(), "acknowledgement refused");
        }
        let target = LonLat::new(location.lon, location.lat);
        let map = Arc::clone(&self.map);
        let profile = self.spec.profile();
        let metric = if map.graph.config().emergency.applies(order.priority) {
            Metric::emergency(profile)
        } else {
            Metric::normal(profile)
        };
        let here = self.route.position();
        self.route = match map.snap(target, metric) {
            Some(goal) => route_on(&map, metric, here, &goal, Some(target), &mut self.scratch),
            None => Route::new(vec![target], here),
        };
        let urgent = order.priority <= 2;
        self.speed_factor = if urgent {
            self.spec.urgent_factor()
        } else {
            1.0
        };
        let eta_s = self.route.remaining_m() / (self.spec.patrol_speed_mps() * self.speed_factor);
        info!(
            unit = %self.spec.id, incident = %order.incident_id, order = %order.order_id,
            priority = order.priority, route_m = self.route.remaining_m().round(), eta_s = eta_s.round(),
            "order received, en route"
        );
        self.activity = Activity::Responding {
            incident_id: order.incident_id,
        };
        self.set_status(UnitStatus::EnRoute).await;
    }

    /// Sends a status change; logs and returns false when the server refuses it.
    async fn set_status(&mut self, status: UnitStatus) -> bool {
        let request = UpdateStatusRequest {
            unit_id: self.spec.id.clone(),
            status: status.into(),
        };
        match self.units.update_status(request).await {
            Ok(_) => true,
            Err(e) => {
                warn!(unit = %self.spec.id, status = status.as_str_name(), code = ?e.code(), message = e.message(), "status update refused");
                false
            }
        }
    }

    fn ping(&self, speed_mps: f64) {
        let p = self.route.position();
        let ping = Ping {
            unit_id: self.spec.id.clone(),
            fix_time_unix_ms: unix_ms(),
            lon: p.lon,
            lat: p.lat,
            speed_mps: Some(speed_mps.max(0.0) as f32),
            // f32 rounding may turn 359.99999 into 360.0, which is out of range.
            heading_deg: Some((self.heading_deg as f32).rem_euclid(360.0) % 360.0),
            accuracy_m: Some(self.spec.accuracy_m()),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.pings.try_send(ping) {
            self.dropped_pings.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// From `here` to the nearest street `metric` may use, along the fastest path
/// to `goal`, then straight on to `then` (an incident off the street).
fn route_on(
    map: &CityMap,
    metric: Metric,
    here: LonLat,
    goal: &Snap,
    then: Option<LonLat>,
    scratch: &mut SearchScratch,
) -> Route {
    let mut points = Vec::new();
    if let Some(start) = map.snap(here, metric)
        && let Some(path) = map.graph.route_with(metric, &start, goal, scratch)
    {
        points.extend(path.geometry);
    } else {
        points.push(goal.point);
    }
    points.extend(then.filter(|p| *p != goal.point));
    Route::new(points, here)
}

/// Keeps one `ReceiveOrders` stream open for `unit_id` and forwards its orders,
/// reopening it with backoff when it ends or fails. Runs until aborted or until the
/// unit task is gone.
pub(crate) async fn listen_for_orders(
    mut units: UnitServiceClient<Authed>,
    unit_id: String,
    orders: mpsc::Sender<DispatchOrder>,
) {
    let (first, max) = ORDERS_BACKOFF;
    let mut backoff = first;
    loop {
        match units
            .receive_orders(ReceiveOrdersRequest {
                unit_id: unit_id.clone(),
            })
            .await
        {
            Ok(response) => {
                backoff = first;
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(order)) => {
                            if orders.send(order).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            info!(unit = %unit_id, "order stream ended, reconnecting");
                            break;
                        }
                        Err(e) if e.code() == tonic::Code::Aborted => {
                            // Another terminal took over this unit: do not fight it.
                            warn!(unit = %unit_id, message = e.message(), "order stream taken over");
                            return;
                        }
                        Err(e) => {
                            warn!(unit = %unit_id, code = ?e.code(), message = e.message(), "order stream failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                warn!(unit = %unit_id, code = ?e.code(), message = e.message(), "cannot open order stream")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_route_is_followed_metre_by_metre() {
        let start = LonLat::new(24.94, 60.17);
        let corner = LonLat::new(24.94, 60.171); // ~111 m north
        let end = LonLat::new(24.942, 60.171); // then ~111 m east
        let mut route = Route::new(vec![start, corner, end], start);
        let total = route.remaining_m();
        assert!((total - 222.4).abs() < 1.0, "{total}");

        let (moved, heading) = route.advance(50.0);
        assert!((moved - 50.0).abs() < 1e-9);
        assert!(heading.expect("moved").abs() < 1e-6, "heading north");
        assert!((route.remaining_m() - (total - 50.0)).abs() < 0.5);

        let (moved, heading) = route.advance(100.0); // turns the corner
        assert!((moved - 100.0).abs() < 1e-9);
        assert!((heading.expect("moved") - 90.0).abs() < 0.1, "heading east");

        let (moved, _) = route.advance(1000.0);
        assert!((moved - (total - 150.0)).abs() < 0.5, "stops at the end");
        assert!(route.is_done());
        assert_eq!(route.position(), end);
        assert_eq!(route.advance(10.0), (0.0, None));
    }

    #[test]
    fn the_fleet_has_the_configured_units_with_unique_ids() {
        let mut rng = StdRng::seed_from_u64(42);
        let fleet = fleet(12, 20, 6, 4, &mut rng);
        assert_eq!(fleet.len(), 42);
        let count = |k| fleet.iter().filter(|u| u.kind == k).count();
        assert_eq!((count(UnitKind::Car), count(UnitKind::Foot)), (12, 20));
        assert_eq!(
            (count(UnitKind::EBike), count(UnitKind::Motorcycle)),
            (6, 4)
        );
        let ids: HashSet<_> = fleet.iter().map(|u| &u.id).collect();
        assert_eq!(ids.len(), 42);
        assert_eq!(
            (fleet[0].id.as_str(), fleet[0].call_sign.as_str()),
            ("car-11", "Car 11")
        );
        assert!(
            fleet
                .iter()
                .filter(|u| u.kind == UnitKind::EBike)
                .all(|u| u.capabilities.iter().any(|c| c == "bike"))
        );
        assert!(
            fleet
                .iter()
                .any(|u| u.capabilities.iter().any(|c| c == "medic"))
        );
        let again: Vec<_> = super::fleet(12, 20, 6, 4, &mut StdRng::seed_from_u64(42))
            .into_iter()
            .map(|u| u.capabilities)
            .collect();
        assert_eq!(
            again,
            fleet
                .iter()
                .map(|u| u.capabilities.clone())
                .collect::<Vec<_>>(),
            "deterministic"
        );
    }
}
