//! The dispatch core of patrol: units, cameras, alerts, incidents and the policy
//! that recommends and assigns units. Pure: no tokio, tonic, redis or clock. Time
//! comes in as a `now` argument (Unix milliseconds), so every rule is tested
//! without a socket or a sleep.
//!
//! # Layout
//! - [`actor`]: [`Actor`], who sent a command; every audit entry names one.
//! - [`geometry`]: `LonLat` (x = longitude, y = latitude, degrees), great-circle
//!   metres, the 3-D sphere vectors the R-tree indexes.
//! - [`units`]: the unit vocabulary (kinds, statuses, fixes, pings, profiles)
//!   and [`UnitIndex`], the record table, id table and spatial index that
//!   change together only through its methods (`units/index.rs`), over the
//!   compact records and arenas in `units/store.rs`.
//! - `grid`: the spatial index, an rstar R-tree over occupied grid cells.
//! - [`recommend`]: the k nearest suitable available units, with exclusions.
//! - [`incidents`]: incidents, their lifecycle state machine, orders.
//! - [`cameras`]: the camera network: [`Camera`] with its PTZ head and
//!   health, what each sees now and after turning, how to aim it (with ONVIF
//!   poses), and [`CameraIndex`], its table, id map and R-tree behind one
//!   door, with the queries "which cameras see this point" and "which
//!   cameras see along this path".
//! - [`alerts`]: camera alerts and the [`AlertPolicy`] that decides which open
//!   an incident and which join one.
//! - [`core`]: [`Dispatcher`], the one door for every command, which leaves an
//!   ordered [`Event`] for each change.
//! - [`requests`]: the request log that makes retries with a `request_id`
//!   idempotent, with a fingerprint that is the same on every node and build.
//! - [`persist`]: the state as plain records, for checkpoints and rebuilds.
//! - [`tracks`]: a suspect followed from camera to camera: sightings, the
//!   predicted way on, the handoff list of cameras to watch next, and units
//!   that can intercept it.
//! - [`plans`]: response plans ("two units, at least one car") by incident
//!   type and priority, filled from candidates fastest first, with shortfalls.
//! - [`trust`]: which GPS fixes to believe (implied speed, accuracy, a
//!   standing unit's drift) and how far to trust the fix a unit holds.
//! - [`zones`]: patrol zones and segments read from GeoJSON, the
//!   [`ZoneIndex`] (id map and R-tree behind one door), unit membership with
//!   hysteresis, and the home-zone preference of recommendations.
//! - [`error`]: [`Error`], the refusals a caller can act on.

#![warn(missing_docs)]

pub mod actor;
pub mod alerts;
pub mod cameras;
pub mod core;
pub mod error;
mod fingerprint;
pub mod geometry;
mod grid;
pub mod incidents;
pub mod network;
pub mod persist;
pub mod plans;
pub mod recommend;
pub mod requests;
pub mod tracks;
pub mod trust;
pub mod units;
pub mod zones;

/// Unix epoch milliseconds.
pub type Millis = i64;

pub use crate::actor::Actor;
pub use crate::alerts::{
    Alert, AlertObjectRecord, AlertOutcome, AlertPolicy, AlertRule, DEFAULT_VIEW_DISTANCE_M,
    NewAlert,
};
pub use crate::cameras::{
    Aim, Camera, CameraAim, CameraConfig, CameraIndex, CameraIndexMemory, CameraSight, OnvifPose,
    PathSight, Ptz, PtzPose, Turn,
};
pub use crate::core::{
    BlindSpot, Coverage, CoverageQuery, DEFAULT_COVERAGE_STEP_M, DispatchPolicy, Dispatcher,
    DispatcherConfig, Event, Follow, MAX_BLIND_SPOTS, MAX_CAMERA_ANSWERS, MAX_COVERAGE_SAMPLES,
    MAX_FOLLOW_CAMERAS, MAX_HOME_CANDIDATES, MAX_IN_VIEW, MAX_OPEN_TRACKS, MAX_PATH_POINTS,
    ModeCoverage, Snapshot, SnapshotCopy, StatusTimer, Target, UnitAlert, UnitAlertKind,
    UnitInView, coverage_of,
};
pub use crate::error::Error;
pub use crate::geometry::{BoundingBox, LonLat, Validated};
pub use crate::incidents::{
    AuditEntry, DispatchRequest, Incident, IncidentSource, IncidentStatus, IncidentUpdate,
    NewIncident, Order,
};
pub use crate::network::{EtaMethod, Network, NetworkSettings, RoutePlan};
pub use crate::plans::{
    ChosenUnit, LateUnit, Need, NeedRef, PlanBook, PlanCandidate, PlanChoice, PlanFill,
    ResponsePlan, Shortfall,
};
pub use crate::recommend::{
    ExcludedUnit, ExclusionReason, NearestUnits, Recommendation, RecommendedUnit, UnitQuery,
};
pub use crate::recommend::{PlanOutcome, PlannedUnit};
pub use crate::requests::{RequestRecord, RequestResult};
pub use crate::tracks::{
    Handoff, Intercept, InterceptQuery, Intercepts, NewSighting, NewTrack, Prediction, Sighting,
    Track, TrackConfig,
};
pub use crate::trust::{
    Assessment, ConfidenceNote, FixFlag, FixRejection, KindTrust, LocationConfidence, PendingJump,
    TrustConfig, TrustState,
};
pub use crate::units::{
    Fix, IndexMemory, Ping, PingOutcome, PingRejection, Unit, UnitFilter, UnitIndex,
    UnitIndexConfig, UnitKind, UnitProfile, UnitStatus, UnitTableCopy,
};
pub use crate::zones::{
    MAX_ZONE_VERTICES, MAX_ZONES, PendingZone, UnitZones, Zone, ZoneChange, ZoneChangeKind,
    ZoneConfig, ZoneIndex, ZoneKind, ZoneSpec, parse_geometry, parse_zones,
};
