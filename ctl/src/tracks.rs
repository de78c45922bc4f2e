//! `patrolctl track ...`: follow a suspect from camera to camera (start,
//! sightings, the handoff list, intercepts, close) and `patrolctl zones`.
//! Formatting is in plain functions returning `String`s, tested without a
//! server.

use anyhow::Result;
use clap::{Args, Subcommand};
use patrol_proto::auth::Authed;
use patrol_proto::v1::track_service_client::TrackServiceClient;
use patrol_proto::v1::zone_service_client::ZoneServiceClient;
use patrol_proto::v1::{self as pb, UnitKind};

use crate::commands::call;
use crate::format::{clock, eta, metres, parse_word, word_of};

#[derive(Debug, Subcommand)]
pub(crate) enum TrackCommand {
    /// Start following a suspect from a first sighting (a point, or a
    /// camera's position); opens a "track" incident unless --incident.
    Start(StartArgs),
    /// Another sighting: prints the new prediction and handoff list.
    Sight(SightArgs),
    /// A track with its prediction and the cameras to watch next.
    Show { track_id: String },
    /// Open tracks (--all: closed ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Units that can get ahead of the suspect, and where to send them
    /// (then `patrolctl dispatch` with --intercept-at, or the API).
    Intercepts {
        track_id: String,
        #[arg(short, default_value_t = 3)]
        k: u32,
    },
    /// Stop following.
    Close {
        track_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Where {
    /// Longitude of the sighting, degrees.
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lon: Option<f64>,
    /// Latitude of the sighting, degrees.
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    lat: Option<f64>,
    /// The camera that saw it (its position when no point is given).
    #[arg(long)]
    camera: Option<String>,
    /// When, Unix milliseconds (default: now).
    #[arg(long)]
    time_ms: Option<i64>,
}

impl Where {
    fn sighting(&self) -> pb::SightingInput {
        pb::SightingInput {
            time_unix_ms: self.time_ms.unwrap_or(0),
            point: self
                .lon
                .zip(self.lat)
                .map(|(lon, lat)| pb::LonLat { lon, lat }),
            camera_id: self.camera.clone().unwrap_or_default(),
            note: String::new(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// What is followed, e.g. "man in a red jacket".
    #[arg(long)]
    label: String,
    /// How it moves: foot (default), car, e_bike, motorcycle.
    #[arg(long, value_parser = parse_word::<UnitKind>)]
    mode: Option<UnitKind>,
    /// The incident it belongs to (default: a new one).
    #[arg(long)]
    incident: Option<String>,
    #[command(flatten)]
    at: Where,
}

#[derive(Debug, Args)]
pub(crate) struct SightArgs {
    track_id: String,
    #[command(flatten)]
    at: Where,
}

/// Runs one `track` command.
pub(crate) async fn run(channel: Authed, command: TrackCommand) -> Result<()> {
    let mut client = TrackServiceClient::new(channel);
    let track = |r: tonic::Response<pb::TrackResponse>| r.into_inner().track.unwrap_or_default();
    match command {
        TrackCommand::Start(args) => {
            let t = track(
                client
                    .start_track(call(pb::StartTrackRequest {
                        label: args.label,
                        mode: args.mode.map_or(0, |m| m as i32),
                        incident_id: args.incident.unwrap_or_default(),
                        sighting: Some(args.at.sighting()),
                        ..Default::default()
                    }))
                    .await?,
            );
            print!("{}", track_text(&t));
        }
        TrackCommand::Sight(args) => {
            let t = track(
                client
                    .add_sighting(call(pb::AddSightingRequest {
                        track_id: args.track_id,
                        sighting: Some(args.at.sighting()),
                    }))
                    .await?,
            );
            print!("{}", track_text(&t));
        }
        TrackCommand::Show { track_id } => {
            let t = track(
                client
                    .get_track(call(pb::GetTrackRequest { track_id }))
                    .await?,
            );
            print!("{}", track_text(&t));
        }
        TrackCommand::List { all } => {
            let tracks = client
                .list_tracks(call(pb::ListTracksRequest {
                    include_closed: all,
                }))
                .await?
                .into_inner()
                .tracks;
            for t in &tracks {
                println!("{}", track_line(t));
            }
            println!("{} tracks", tracks.len());
        }
        TrackCommand::Intercepts { track_id, k } => {
            let found = client
                .recommend_intercepts(call(pb::RecommendInterceptsRequest {
                    track_id,
                    k,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            print!("{}", intercepts_text(&found));
        }
        TrackCommand::Close { track_id, reason } => {
            let t = track(
                client
                    .close_track(call(pb::CloseTrackRequest { track_id, reason }))
                    .await?,
            );
            println!("{}", track_line(&t));
        }
    }
    Ok(())
}

/// `patrolctl zones`: every zone, one line each.
pub(crate) async fn zones(channel: Authed) -> Result<()> {
    let zones = ZoneServiceClient::new(channel)
        .list_zones(call(pb::ListZonesRequest::default()))
        .await?
        .into_inner()
        .zones;
    print!("{}", zones_text(&zones));
    Ok(())
}

pub(crate) fn track_line(t: &pb::Track) -> String {
    let state = if t.closed_unix_ms != 0 {
        format!("closed {} ({})", clock(t.closed_unix_ms), t.close_reason)
    } else {
        "open".into()
    };
    format!(
        "{} {:?} {} incident={} sightings={} {state}",
        t.id,
        t.label,
        word_of::<UnitKind>(t.mode),
        t.incident_id,
        t.sightings.len()
    )
}

/// A track, its prediction and the handoff list.
pub(crate) fn track_text(t: &pb::Track) -> String {
    let mut out = format!("{}\n", track_line(t));
    if let Some(s) = t.sightings.last() {
        let at = s.point.unwrap_or_default();
        out.push_str(&format!(
            "last seen {} at {:.5},{:.5}{}\n",
            clock(s.time_unix_ms),
            at.lon,
            at.lat,
            if s.camera_id.is_empty() {
                String::new()
            } else {
                format!(" by {}", s.camera_id)
            }
        ));
    }
    let Some(p) = &t.prediction else {
        return out;
    };
    out.push_str(&format!(
        "moving {:.1} m/s ({}){}; {} ahead on the likely way, {} of street reachable\n",
        p.speed_mps,
        if p.speed_observed {
            "observed"
        } else {
            "assumed"
        },
        p.heading_deg
            .map(|h| format!(" heading {h:.0} deg"))
            .unwrap_or_default(),
        metres(p.ahead_m),
        metres(p.reachable_m)
    ));
    if p.handoffs.is_empty() {
        out.push_str("no camera sees where it can go next\n");
    }
    for (i, h) in p.handoffs.iter().enumerate() {
        out.push_str(&format!(
            "{:>2}. {} at {} ({} by street), window {}-{}{}{}\n",
            i + 1,
            h.camera_id,
            clock(h.expected_unix_ms),
            metres(h.distance_m),
            clock(h.window_start_unix_ms),
            clock(h.window_end_unix_ms),
            if h.sees_now { "" } else { ", must turn" },
            if h.on_way_ahead { ", straight on" } else { "" }
        ));
    }
    out
}

pub(crate) fn intercepts_text(found: &pb::RecommendInterceptsResponse) -> String {
    let mut out = String::new();
    for i in &found.intercepts {
        let unit = i.unit.as_ref().map_or("?", |u| u.id.as_str());
        let at = i.at.unwrap_or_default();
        out.push_str(&format!(
            "{unit}: to {:.5},{:.5} ({} by street from the last sighting) in {}, {:.0} s before the suspect can be there; {}\n",
            at.lon,
            at.lat,
            metres(i.along_m),
            eta(i.eta_s),
            i.lead_s,
            i.reason
        ));
    }
    if !found.shortfall.is_empty() {
        out.push_str(&format!("shortfall: {}\n", found.shortfall));
    }
    out.push_str(&format!(
        "{} intercepts ({} points tried)\n",
        found.intercepts.len(),
        found.points_tried
    ));
    out
}

pub(crate) fn zones_text(zones: &[pb::Zone]) -> String {
    let mut out = String::new();
    for z in zones {
        let kind = if z.kind == pb::ZoneKind::Segment as i32 {
            format!(
                "segment of {}",
                if z.parent_id.is_empty() {
                    "-"
                } else {
                    &z.parent_id
                }
            )
        } else {
            "zone".into()
        };
        let vertices: usize = z
            .polygons
            .iter()
            .map(|p| {
                p.exterior.as_ref().map_or(0, |r| r.points.len())
                    + p.holes.iter().map(|h| h.points.len()).sum::<usize>()
            })
            .sum();
        out.push_str(&format!(
            "{} {:?} {kind}, {} polygons, {vertices} vertices, version {}\n",
            z.id,
            z.name,
            z.polygons.len(),
            z.version
        ));
    }
    out.push_str(&format!("{} zones\n", zones.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_shows_its_handoff_list_in_order() {
        let t = pb::Track {
            id: "trk-1".into(),
            label: "red jacket".into(),
            mode: UnitKind::Foot as i32,
            incident_id: "inc-3".into(),
            sightings: vec![pb::Sighting {
                time_unix_ms: 1_700_000_000_000,
                point: Some(pb::LonLat {
                    lon: 24.9458,
                    lat: 60.1699,
                }),
                camera_id: "cam-7".into(),
                ..Default::default()
            }],
            prediction: Some(pb::Prediction {
                speed_mps: 1.4,
                speed_observed: true,
                heading_deg: Some(92.0),
                ahead_m: 420.0,
                reachable_m: 3_100.0,
                handoffs: vec![
                    pb::Handoff {
                        camera_id: "cam-9".into(),
                        distance_m: 84.0,
                        expected_unix_ms: 1_700_000_060_000,
                        window_start_unix_ms: 1_700_000_046_000,
                        window_end_unix_ms: 1_700_000_086_000,
                        sees_now: true,
                        on_way_ahead: true,
                        ..Default::default()
                    },
                    pb::Handoff {
                        camera_id: "cam-2".into(),
                        distance_m: 210.0,
                        expected_unix_ms: 1_700_000_150_000,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = track_text(&t);
        assert!(text.starts_with("trk-1 \"red jacket\" foot incident=inc-3 sightings=1 open\n"));
        assert!(text.contains("by cam-7"), "{text}");
        assert!(
            text.contains("moving 1.4 m/s (observed) heading 92 deg"),
            "{text}"
        );
        let first = text.find(" 1. cam-9").expect("cam-9 first");
        let second = text.find(" 2. cam-2, ").or_else(|| text.find(" 2. cam-2 "));
        assert!(second.is_some_and(|s| s > first), "{text}");
        assert!(
            text.contains("cam-2 at") && text.contains("must turn"),
            "{text}"
        );
        assert!(text.contains("straight on"), "{text}");
    }

    #[test]
    fn intercepts_say_where_and_the_lead() {
        let found = pb::RecommendInterceptsResponse {
            intercepts: vec![pb::Intercept {
                unit: Some(pb::Unit {
                    id: "foot-4".into(),
                    ..Default::default()
                }),
                at: Some(pb::LonLat {
                    lon: 24.95,
                    lat: 60.17,
                }),
                along_m: 400.0,
                eta_s: 95.0,
                lead_s: 51.0,
                reason: "by street".into(),
                ..Default::default()
            }],
            points_tried: 12,
            shortfall: "no car within reach".into(),
        };
        let text = intercepts_text(&found);
        assert!(
            text.starts_with(
                "foot-4: to 24.95000,60.17000 (400 m by street from the last sighting)"
            ),
            "{text}"
        );
        assert!(text.contains("51 s before the suspect"), "{text}");
        assert!(text.contains("shortfall: no car within reach"), "{text}");
        assert!(text.ends_with("1 intercepts (12 points tried)\n"), "{text}");
    }
}
