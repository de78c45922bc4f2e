//! The command line: every subcommand and flag, parsed by clap. Enum values are
//! lowercase words (`en_route`, `e_bike`), lists are comma-separated.

use clap::{Args, Parser, Subcommand};
use patrol_proto::v1::{BoundingBox, IncidentSource, IncidentStatus, LonLat, UnitKind, UnitStatus};

use crate::format::{parse_bbox, parse_word, word};

#[derive(Debug, Parser)]
#[command(
    name = "patrolctl",
    version,
    about = "The operator's command line for patrold: watch the command room, list units and \
             incidents, recommend, dispatch, close. Times are shown in UTC."
)]
pub(crate) struct Cli {
    /// The patrold gRPC address.
    #[arg(
        long,
        global = true,
        env = "PATROL_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// The bearer token calls carry [default: the session of `patrolctl
    /// login`, else the operator's of a demo server on this machine].
    #[arg(long, global = true, env = "PATROL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Use this credential of a demo server on this machine: operator,
    /// viewer or admin.
    #[arg(long = "as", global = true, value_parser = ["operator", "viewer", "admin"])]
    pub as_role: Option<String>,
    /// CA certificate (PEM) that patrold's certificate is verified against;
    /// with it a bare address means `https://`.
    #[arg(long, global = true, env = "PATROL_CA")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, global = true, env = "PATROL_CERT", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM); needs --cert.
    #[arg(long, global = true, env = "PATROL_KEY", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Log in (default: as the demo's operator) and keep the session for
    /// later calls; asks for the secret unless --secret or PATROL_SECRET.
    Login {
        identity: Option<String>,
        #[arg(long, env = "PATROL_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// End the saved session.
    Logout,
    /// Who the server takes this caller for.
    Whoami,
    /// Credentials (admin): issue, list, revoke, unlock.
    Auth {
        #[command(subcommand)]
        command: crate::auth::AuthCommand,
    },
    /// The audit log (admin): who did what, when.
    Audit(crate::auth::AuditArgs),
    /// Follow the command room live (or one line per event with --log).
    Watch(WatchArgs),
    /// List units, following pages up to --limit.
    Units(UnitsArgs),
    /// Show one unit.
    Unit { id: String },
    /// List cameras.
    Cameras {
        /// WEST,SOUTH,EAST,NORTH in degrees.
        #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
        bbox: Option<BoundingBox>,
    },
    /// List incidents (open ones unless --all or --status).
    Incidents(IncidentsArgs),
    /// Show one incident with its units, cameras, alerts and audit trail.
    Incident { id: String },
    /// Open an incident; prints its id.
    CreateIncident(CreateIncidentArgs),
    /// Rank the nearest suitable units for an incident or a point.
    Recommend(RecommendArgs),
    /// Send units to an incident (all or none); prints the orders.
    Dispatch {
        incident_id: String,
        #[arg(required = true)]
        unit_ids: Vec<String>,
        /// Passed on to each unit with its order.
        #[arg(long, default_value = "")]
        note: String,
        /// Send them to LON,LAT to intercept a followed suspect (from
        /// `track intercepts`) instead of to the incident.
        #[arg(long, value_name = "LON,LAT", value_parser = parse_lonlat, allow_hyphen_values = true)]
        intercept_at: Option<LonLat>,
    },
    /// Close an incident, freeing its units.
    Close {
        incident_id: String,
        /// Recorded in the audit trail.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Move an incident to on_scene, resolved or closed.
    IncidentStatus {
        incident_id: String,
        #[arg(value_parser = parse_incident_status)]
        status: IncidentStatus,
        /// Recorded in the audit trail.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Register a unit, or update its call sign, kind and capabilities.
    RegisterUnit(RegisterUnitArgs),
    /// Set a unit's status (available, en_route, on_scene, busy, off_duty).
    UnitStatus {
        unit_id: String,
        #[arg(value_parser = parse_unit_status)]
        status: UnitStatus,
    },
    /// Report one GPS fix for a unit.
    Ping(PingArgs),
    /// Post a camera analytics alert.
    Alert(AlertArgs),
    /// Follow the dispatch orders of one unit, as its terminal would.
    Orders { unit_id: String },
    /// Follow a suspect from camera to camera: start, sight, show, list,
    /// intercepts, close.
    Track {
        #[command(subcommand)]
        command: crate::tracks::TrackCommand,
    },
    /// List the patrol zones.
    Zones,
    /// How much of the map's streets the cameras see (cars, foot) and the
    /// blind spots (--geojson FILE writes them).
    Coverage(crate::coverage::CoverageArgs),
    /// Video patrol: seeing, aim, aim-all, follow, along.
    #[command(flatten)]
    Camera(crate::cameras::CameraCommand),
}

/// `24.94,60.17` as a point.
pub(crate) fn parse_lonlat(text: &str) -> Result<LonLat, String> {
    let (lon, lat) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not LON,LAT"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    Ok(LonLat {
        lon: number(lon)?,
        lat: number(lat)?,
    })
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Only what lies inside WEST,SOUTH,EAST,NORTH (degrees).
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<BoundingBox>,
    /// Print one line per event instead of the live view.
    #[arg(long)]
    pub log: bool,
    /// Start after this seq (already processed) instead of with a snapshot.
    #[arg(long, value_name = "SEQ", requires = "epoch")]
    pub resume_after: Option<u64>,
    /// The log epoch SEQ belongs to (printed with snapshot_end).
    #[arg(long, value_name = "EPOCH")]
    pub epoch: Option<u64>,
    /// Stop after this many events (snapshot pieces included).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Draw the view once, after the snapshot, and exit.
    #[arg(long, conflicts_with_all = ["log", "resume_after"])]
    pub once: bool,
    /// Unit rows in the live view.
    #[arg(long, default_value_t = 20)]
    pub max_units: usize,
}

#[derive(Debug, Args)]
pub(crate) struct UnitsArgs {
    #[arg(long, value_delimiter = ',', value_parser = parse_word::<UnitStatus>)]
    pub status: Vec<UnitStatus>,
    #[arg(long, value_delimiter = ',', value_parser = parse_word::<UnitKind>)]
    pub kind: Vec<UnitKind>,
    /// Only units whose last fix lies in WEST,SOUTH,EAST,NORTH (degrees).
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<BoundingBox>,
    /// At most this many units in all (default: every one).
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct IncidentsArgs {
    /// Every status, closed included.
    #[arg(long, conflicts_with = "status")]
    pub all: bool,
    #[arg(long, value_delimiter = ',', value_parser = parse_word::<IncidentStatus>)]
    pub status: Vec<IncidentStatus>,
    /// At most this many, newest first.
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateIncidentArgs {
    /// Longitude (x), degrees.
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    /// Latitude (y), degrees.
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    /// e.g. theft, fight, traffic_accident.
    #[arg(long = "type")]
    pub incident_type: String,
    /// 1 (most urgent) .. 5; the server's default is 3.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub priority: Option<u32>,
    #[arg(long, default_value = "")]
    pub description: String,
    /// call or operator.
    #[arg(long, default_value = "call", value_parser = parse_source)]
    pub source: IncidentSource,
}

#[derive(Debug, Args)]
pub(crate) struct RecommendArgs {
    #[arg(long, required_unless_present = "lon", conflicts_with_all = ["lon", "lat"])]
    pub incident: Option<String>,
    /// Longitude (x) of a bare point, degrees.
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    pub lon: Option<f64>,
    /// Latitude (y) of a bare point, degrees.
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    pub lat: Option<f64>,
    /// How many units.
    #[arg(short, default_value_t = 5)]
    pub k: u32,
    #[arg(long, value_delimiter = ',', value_parser = parse_word::<UnitKind>)]
    pub kind: Vec<UnitKind>,
    /// Required capability; repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub capability: Vec<String>,
    /// Ignore units farther than this many metres.
    #[arg(long, value_name = "METRES")]
    pub max_distance: Option<f64>,
    /// For a point: the priority (1..5) it would have, for emergency driving.
    #[arg(long)]
    pub priority: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct RegisterUnitArgs {
    pub id: String,
    #[arg(long)]
    pub call_sign: String,
    #[arg(long, value_parser = parse_word::<UnitKind>)]
    pub kind: UnitKind,
    /// Capability tag; repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub capability: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    pub unit_id: String,
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    /// Fix time, Unix milliseconds (default: now).
    #[arg(long)]
    pub time_ms: Option<i64>,
    /// Metres per second.
    #[arg(long)]
    pub speed: Option<f32>,
    /// Degrees clockwise from north.
    #[arg(long)]
    pub heading: Option<f32>,
    /// Metres.
    #[arg(long)]
    pub accuracy: Option<f32>,
}

#[derive(Debug, Args)]
pub(crate) struct AlertArgs {
    pub camera_id: String,
    /// e.g. intrusion, loitering, fight, fall, car_break_in, plate_hit.
    pub label: String,
    /// 0..1.
    #[arg(long, default_value_t = 0.9)]
    pub confidence: f32,
    #[arg(long, default_value = "")]
    pub snapshot: String,
    /// When the camera saw it, Unix milliseconds (default: now).
    #[arg(long)]
    pub time_ms: Option<i64>,
}

/// Only the statuses a client may set (ASSIGNED comes from dispatch, OFFLINE
/// from the server).
pub(crate) fn parse_unit_status(text: &str) -> Result<UnitStatus, String> {
    use UnitStatus::*;
    only(
        parse_word(text)?,
        &[Available, EnRoute, OnScene, Busy, OffDuty],
    )
}

/// Only the statuses an operator moves an incident to (DISPATCHED comes from
/// dispatch, NEW from creation).
pub(crate) fn parse_incident_status(text: &str) -> Result<IncidentStatus, String> {
    use IncidentStatus::*;
    only(parse_word(text)?, &[OnScene, Resolved, Closed])
}

/// Camera-alert incidents come from `alert`, not from `create-incident`.
pub(crate) fn parse_source(text: &str) -> Result<IncidentSource, String> {
    use IncidentSource::*;
    only(parse_word(text)?, &[Call, Operator])
}

fn only<E: crate::format::EnumWord>(value: E, allowed: &[E]) -> Result<E, String> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        let names: Vec<String> = allowed.iter().map(|v| word(*v)).collect();
        Err(format!(
            "{} cannot be set here; use one of: {}",
            word(value),
            names.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("patrolctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn lists_and_boxes_parse() {
        let cli = parse(&[
            "units",
            "--status",
            "available,en_route",
            "--kind",
            "e-bike",
            "--bbox",
            "-1,-2,3,4",
        ])
        .unwrap();
        let Command::Units(args) = cli.command else {
            panic!("not units")
        };
        assert_eq!(args.status, [UnitStatus::Available, UnitStatus::EnRoute]);
        assert_eq!(args.kind, [UnitKind::EBike]);
        assert_eq!(args.bbox.map(|b| b.west), Some(-1.0));
    }

    #[test]
    fn restricted_statuses_are_refused() {
        assert!(parse(&["unit-status", "u1", "off_duty"]).is_ok());
        assert!(parse(&["unit-status", "u1", "offline"]).is_err());
        assert!(parse(&["incident-status", "i1", "dispatched"]).is_err());
        assert!(
            parse(&[
                "create-incident",
                "--lon",
                "1",
                "--lat",
                "2",
                "--type",
                "x",
                "--source",
                "camera_alert"
            ])
            .is_err()
        );
    }

    #[test]
    fn tracks_and_intercepts_parse() {
        let cli = parse(&[
            "dispatch",
            "inc-1",
            "foot-4",
            "--intercept-at",
            "24.95,-60.17",
        ])
        .unwrap();
        let Command::Dispatch { intercept_at, .. } = cli.command else {
            panic!("not dispatch")
        };
        assert_eq!(
            intercept_at,
            Some(LonLat {
                lon: 24.95,
                lat: -60.17
            })
        );
        assert!(parse(&["dispatch", "inc-1", "u", "--intercept-at", "24.95"]).is_err());
        assert!(
            parse(&[
                "track",
                "start",
                "--label",
                "red jacket",
                "--lon",
                "24.9",
                "--lat",
                "60.1"
            ])
            .is_ok()
        );
        assert!(parse(&["track", "start", "--label", "x", "--lon", "24.9"]).is_err());
        assert!(parse(&["track", "sight", "trk-1", "--camera", "cam-3"]).is_ok());
        assert!(parse(&["track", "intercepts", "trk-1", "-k", "2"]).is_ok());
    }

    #[test]
    fn camera_commands_need_exactly_one_target() {
        use crate::cameras::CameraCommand;
        let cli = parse(&["seeing", "--lon", "24.9", "--lat", "-60.1", "-k", "5"]).unwrap();
        let Command::Camera(CameraCommand::Seeing { k, .. }) = cli.command else {
            panic!("not seeing")
        };
        assert_eq!(k, 5);
        assert!(parse(&["seeing", "--unit", "car-1"]).is_ok());
        assert!(parse(&["seeing", "--incident", "inc-1"]).is_ok());
        assert!(parse(&["seeing"]).is_err());
        assert!(parse(&["seeing", "--lon", "24.9"]).is_err());
        assert!(parse(&["seeing", "--unit", "u", "--incident", "i"]).is_err());
        assert!(parse(&["seeing", "--unit", "u", "--lon", "1", "--lat", "2"]).is_err());

        let cli = parse(&["aim", "ptz-2", "--incident", "inc-4", "--dry-run"]).unwrap();
        let Command::Camera(CameraCommand::Aim {
            camera_id, dry_run, ..
        }) = cli.command
        else {
            panic!("not aim")
        };
        assert_eq!((camera_id.as_str(), dry_run), ("ptz-2", true));
        assert!(parse(&["aim", "--unit", "u"]).is_err());
        assert!(parse(&["aim", "ptz-2"]).is_err());

        assert!(parse(&["aim-all", "--incident", "inc-4"]).is_ok());
        assert!(parse(&["aim-all", "--lon", "24.9", "--lat", "60.1", "--dry-run"]).is_ok());
        assert!(parse(&["aim-all"]).is_err());
    }

    #[test]
    fn follow_and_along_parse() {
        use crate::cameras::CameraCommand;
        let cli = parse(&[
            "follow",
            "car-3",
            "--camera",
            "ptz-1,ptz-2",
            "--camera",
            "ptz-5",
        ])
        .unwrap();
        let Command::Camera(CameraCommand::Follow {
            unit_id,
            cameras,
            stop,
        }) = cli.command
        else {
            panic!("not follow")
        };
        assert_eq!(unit_id, "car-3");
        assert_eq!(cameras, ["ptz-1", "ptz-2", "ptz-5"]);
        assert!(!stop);
        assert!(parse(&["follow", "car-3", "--stop"]).is_ok());
        assert!(parse(&["follow", "car-3", "--stop", "--camera", "p"]).is_err());
        assert!(parse(&["follow"]).is_err());
        let cli = parse(&["along", "car-3", "--corridor", "25"]).unwrap();
        let Command::Camera(CameraCommand::Along { corridor, .. }) = cli.command else {
            panic!("not along")
        };
        assert_eq!(corridor, Some(25.0));
        assert!(parse(&["along"]).is_err());
    }

    #[test]
    fn recommend_needs_one_target() {
        assert!(parse(&["recommend", "--incident", "inc-1", "-k", "3"]).is_ok());
        assert!(parse(&["recommend", "--lon", "24.9", "--lat", "60.1"]).is_ok());
        assert!(parse(&["recommend", "--lon", "24.9"]).is_err());
        assert!(parse(&["recommend"]).is_err());
        assert!(parse(&["recommend", "--incident", "i", "--lon", "1", "--lat", "2"]).is_err());
    }
}
