//! Video patrol from the command line: the cameras that see a point, a unit or
//! an incident (`seeing`), pointing one camera or all of them at it (`aim`,
//! `aim-all`), keeping PTZ cameras on a moving unit (`follow`) and the cameras
//! along a unit's route (`along`). Formatting is in plain functions returning
//! `String`s, tested without a server.

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};
use patrol_proto::auth::Authed;
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use patrol_proto::v1::{self as pb, camera_target, cameras_along_request};

use crate::commands::call;
use crate::format::{Table, metres};

#[derive(Debug, Subcommand)]
pub(crate) enum CameraCommand {
    /// The cameras that see a point, a unit or an incident now, and the PTZ
    /// cameras that could after turning, best first.
    Seeing {
        #[command(flatten)]
        target: Target,
        /// At most this many cameras.
        #[arg(short, default_value_t = 20)]
        k: u32,
    },
    /// Point one camera at a target: pan (true north and relative), tilt,
    /// distance, limits and the ONVIF values. Turns a PTZ camera unless
    /// --dry-run.
    Aim {
        camera_id: String,
        #[command(flatten)]
        target: Target,
        /// Only compute the aim; do not turn the camera.
        #[arg(long)]
        dry_run: bool,
    },
    /// Aim every camera that can see the target.
    AimAll {
        #[command(flatten)]
        target: Target,
        /// At most this many cameras (the server's default is 20).
        #[arg(short, long)]
        limit: Option<u32>,
        /// Only compute the aims; do not turn the cameras.
        #[arg(long)]
        dry_run: bool,
    },
    /// Keep PTZ cameras aimed at a unit as it moves (--stop: no longer).
    Follow {
        unit_id: String,
        /// A PTZ camera to keep on it; repeat or separate with commas (at most
        /// 8; default: those that can see it, chosen afresh as it moves).
        #[arg(long = "camera", value_delimiter = ',', conflicts_with = "stop")]
        cameras: Vec<String>,
        #[arg(long)]
        stop: bool,
    },
    /// The cameras along a dispatched unit's route, in the order they first
    /// see it.
    Along {
        unit_id: String,
        /// How far either side of the route counts, metres (server default 10).
        #[arg(long, value_name = "METRES")]
        corridor: Option<f64>,
        /// At most this many cameras (server default 50).
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// A point, a unit or an incident: exactly one.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["lon", "unit", "incident"])))]
pub(crate) struct Target {
    /// Longitude of a point, degrees.
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lon: Option<f64>,
    /// Latitude of a point, degrees.
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    lat: Option<f64>,
    /// A unit (its latest fix).
    #[arg(long, conflicts_with_all = ["lon", "lat", "incident"])]
    unit: Option<String>,
    /// An incident (its location).
    #[arg(long, conflicts_with_all = ["lon", "lat"])]
    incident: Option<String>,
}

impl Target {
    pub(crate) fn to_proto(&self) -> pb::CameraTarget {
        let target = if let Some(unit) = &self.unit {
            camera_target::Target::UnitId(unit.clone())
        } else if let Some(incident) = &self.incident {
            camera_target::Target::IncidentId(incident.clone())
        } else {
            camera_target::Target::Point(pb::LonLat {
                lon: self.lon.unwrap_or_default(),
                lat: self.lat.unwrap_or_default(),
            })
        };
        pb::CameraTarget {
            target: Some(target),
        }
    }
}

/// Runs one camera command.
pub(crate) async fn run(channel: Authed, command: CameraCommand) -> Result<()> {
    let mut client = CameraServiceClient::new(channel);
    match command {
        CameraCommand::Seeing { target, k } => {
            let response = client
                .cameras_seeing(call(pb::CamerasSeeingRequest {
                    target: Some(target.to_proto()),
                    limit: k,
                }))
                .await?
                .into_inner();
            print!("{}", seeing_text(&response));
        }
        CameraCommand::Aim {
            camera_id,
            target,
            dry_run,
        } => {
            let response = client
                .aim_camera(call(pb::AimCameraRequest {
                    camera_id,
                    target: Some(target.to_proto()),
                    target_height_m: 0.0,
                    dry_run,
                }))
                .await?
                .into_inner();
            match &response.aim {
                Some(aim) => print!("{}", aim_text(aim)),
                None => println!("the server sent no aim"),
            }
        }
        CameraCommand::AimAll {
            target,
            limit,
            dry_run,
        } => {
            let response = client
                .aim_cameras(call(pb::AimCamerasRequest {
                    target: Some(target.to_proto()),
                    target_height_m: 0.0,
                    limit: limit.unwrap_or(0),
                    dry_run,
                }))
                .await?
                .into_inner();
            print!("{}", aims_text(&response));
        }
        CameraCommand::Follow {
            unit_id,
            cameras,
            stop,
        } => {
            let response = client
                .follow_unit(call(pb::FollowUnitRequest {
                    unit_id,
                    camera_ids: cameras,
                    stop,
                }))
                .await?
                .into_inner();
            println!("{}", follow_line(&response));
        }
        CameraCommand::Along {
            unit_id,
            corridor,
            limit,
        } => {
            let response = client
                .cameras_along(call(pb::CamerasAlongRequest {
                    path: Some(cameras_along_request::Path::UnitId(unit_id)),
                    corridor_m: corridor.unwrap_or(0.0),
                    limit: limit.unwrap_or(0),
                }))
                .await?
                .into_inner();
            print!("{}", along_text(&response));
        }
    }
    Ok(())
}

fn degrees(d: f64) -> String {
    format!("{d:.0}")
}

/// "now", or the turn a PTZ camera needs, or "-".
fn sight_state(s: &pb::CameraSight) -> String {
    if s.sees_now {
        "now".into()
    } else if let Some(t) = &s.after_turn {
        format!(
            "turn: pan {:.0}, tilt {:.0}, heading {:.0}",
            t.pan_deg, t.tilt_deg, t.heading_deg
        )
    } else {
        "-".into()
    }
}

/// `patrolctl seeing`: the target and a table of cameras.
pub(crate) fn seeing_text(r: &pb::CamerasSeeingResponse) -> String {
    let mut out = String::new();
    if let Some(t) = r.target {
        out.push_str(&format!("target {:.5},{:.5}\n", t.lon, t.lat));
    }
    let mut table = Table::new(&[
        ("CAMERA", 24),
        ("SEES", 40),
        ("DISTANCE", 8),
        ("BEARING", 7),
        ("OFF-AXIS", 8),
    ]);
    for s in &r.cameras {
        table.row(vec![
            s.camera_id.clone(),
            sight_state(s),
            metres(s.distance_m),
            degrees(s.bearing_deg),
            format!("{:+.0}", s.off_axis_deg),
        ]);
    }
    out.push_str(&table.render());
    let now = r.cameras.iter().filter(|s| s.sees_now).count();
    out.push_str(&format!(
        "{} cameras ({now} see it now, {} after turning)\n",
        r.cameras.len(),
        r.cameras.len() - now
    ));
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `patrolctl aim`: one camera's aim in full.
pub(crate) fn aim_text(a: &pb::CameraAim) -> String {
    let mut out = format!(
        "{}: bearing {:.1} deg true north, pan {:+.1} deg relative, tilt {:.1} deg down\n",
        a.camera_id, a.bearing_deg, a.pan_relative_deg, a.tilt_deg
    );
    out.push_str(&format!(
        "distance {} ground, {} slant\n",
        metres(a.distance_m),
        metres(a.slant_m)
    ));
    out.push_str(&format!(
        "within limits: pan {}, tilt {}, range {}\n",
        yes_no(a.within_pan),
        yes_no(a.within_tilt),
        yes_no(a.within_range)
    ));
    match &a.pose {
        Some(p) => out.push_str(&format!(
            "pose: pan {:+.1}, tilt {:.1}, zoom {:.2}\n",
            p.pan_deg, p.tilt_deg, p.zoom
        )),
        None => out.push_str("fixed camera: no pose to set\n"),
    }
    if let Some(o) = &a.onvif {
        out.push_str(&format!(
            "onvif degrees: pan {:+.1}, tilt {:+.1}; normalized: pan {:+.3}, tilt {:+.3}, zoom {:.2}\n",
            o.pan_deg, o.tilt_deg, o.generic_pan, o.generic_tilt, o.zoom
        ));
    }
    out.push_str(if a.applied {
        "turned\n"
    } else {
        "not turned\n"
    });
    out
}

/// `patrolctl aim-all`: one line per camera.
pub(crate) fn aims_text(r: &pb::AimCamerasResponse) -> String {
    let mut out = String::new();
    if let Some(t) = r.target {
        out.push_str(&format!("target {:.5},{:.5}\n", t.lon, t.lat));
    }
    let mut table = Table::new(&[
        ("CAMERA", 24),
        ("BEARING", 7),
        ("PAN", 6),
        ("TILT", 5),
        ("DISTANCE", 8),
        ("LIMITS", 20),
        ("ONVIF PAN/TILT", 15),
        ("TURNED", 6),
    ]);
    for a in &r.aims {
        let limits = if a.within_pan && a.within_tilt && a.within_range {
            "ok".to_string()
        } else {
            let mut out_of = Vec::new();
            for (ok, what) in [
                (a.within_pan, "pan"),
                (a.within_tilt, "tilt"),
                (a.within_range, "range"),
            ] {
                if !ok {
                    out_of.push(what);
                }
            }
            format!("out: {}", out_of.join(","))
        };
        table.row(vec![
            a.camera_id.clone(),
            degrees(a.bearing_deg),
            format!("{:+.0}", a.pan_relative_deg),
            format!("{:.0}", a.tilt_deg),
            metres(a.distance_m),
            limits,
            a.onvif.as_ref().map_or("-".into(), |o| {
                format!("{:+.3}/{:+.3}", o.generic_pan, o.generic_tilt)
            }),
            yes_no(a.applied).into(),
        ]);
    }
    out.push_str(&table.render());
    let turned = r.aims.iter().filter(|a| a.applied).count();
    out.push_str(&format!("{} cameras, {turned} turned\n", r.aims.len()));
    out
}

/// `patrolctl follow`.
pub(crate) fn follow_line(r: &pb::FollowUnitResponse) -> String {
    if !r.following {
        return format!("{}: not followed", r.unit_id);
    }
    if r.camera_ids.is_empty() {
        format!(
            "{}: followed by the PTZ cameras that can see it, chosen as it moves",
            r.unit_id
        )
    } else {
        format!("{}: followed by {}", r.unit_id, r.camera_ids.join(", "))
    }
}

/// `patrolctl along`: the cameras in the order they first see the route.
pub(crate) fn along_text(r: &pb::CamerasAlongResponse) -> String {
    let mut table = Table::new(&[
        ("CAMERA", 24),
        ("ALONG", 8),
        ("AT", 19),
        ("SEES", 40),
        ("DISTANCE", 8),
    ]);
    for p in &r.cameras {
        let s = p.sight.clone().unwrap_or_default();
        let at = p.at.unwrap_or_default();
        let sees = match p.now_along_m {
            Some(now) if !s.sees_now => format!("at {} without turning", metres(now)),
            _ => sight_state(&s),
        };
        table.row(vec![
            s.camera_id.clone(),
            metres(p.along_m),
            format!("{:.5},{:.5}", at.lon, at.lat),
            sees,
            metres(s.distance_m),
        ]);
    }
    let mut out = table.render();
    out.push_str(&format!("{} cameras along the route\n", r.cameras.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sight(id: &str, distance: f64, now: bool) -> pb::CameraSight {
        pb::CameraSight {
            camera_id: id.into(),
            distance_m: distance,
            bearing_deg: 271.6,
            off_axis_deg: -12.4,
            sees_now: now,
            after_turn: (!now).then_some(pb::CameraTurn {
                pan_deg: 95.0,
                tilt_deg: 8.0,
                heading_deg: 185.0,
            }),
        }
    }

    #[test]
    fn seeing_lists_cameras_in_order_with_their_turns() {
        let r = pb::CamerasSeeingResponse {
            target: Some(pb::LonLat {
                lon: 24.9458,
                lat: 60.1699,
            }),
            cameras: vec![sight("cam-7", 42.0, true), sight("ptz-2", 1_250.0, false)],
        };
        let text = seeing_text(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "target 24.94580,60.16990");
        assert!(lines[1].starts_with("CAMERA"), "{text}");
        assert!(lines[2].starts_with("cam-7"), "{text}");
        assert!(
            lines[2].contains("now") && lines[2].contains("42 m"),
            "{text}"
        );
        assert!(
            lines[2].contains("272") && lines[2].contains("-12"),
            "{text}"
        );
        assert!(lines[3].starts_with("ptz-2"), "{text}");
        assert!(
            lines[3].contains("turn: pan 95, tilt 8, heading 185"),
            "{text}"
        );
        assert!(lines[3].contains("1.2 km"), "{text}");
        assert_eq!(
            lines.last(),
            Some(&"2 cameras (1 see it now, 1 after turning)")
        );
    }

    #[test]
    fn seeing_nothing_says_so_without_a_header() {
        let text = seeing_text(&pb::CamerasSeeingResponse::default());
        assert_eq!(text, "0 cameras (0 see it now, 0 after turning)\n");
    }

    #[test]
    fn an_aim_gives_both_pans_limits_and_onvif() {
        let aim = pb::CameraAim {
            camera_id: "ptz-2".into(),
            bearing_deg: 200.04,
            pan_relative_deg: -70.0,
            tilt_deg: 6.26,
            distance_m: 85.0,
            slant_m: 85.6,
            within_pan: true,
            within_tilt: true,
            within_range: false,
            pose: Some(pb::PtzPose {
                pan_deg: -70.0,
                tilt_deg: 6.3,
                zoom: 0.25,
            }),
            onvif: Some(pb::OnvifPose {
                pan_deg: -70.0,
                tilt_deg: -6.3,
                generic_pan: -0.3889,
                generic_tilt: 0.5,
                zoom: 0.25,
            }),
            applied: false,
        };
        let text = aim_text(&aim);
        assert!(
            text.starts_with(
                "ptz-2: bearing 200.0 deg true north, pan -70.0 deg relative, tilt 6.3 deg down\n"
            ),
            "{text}"
        );
        assert!(text.contains("distance 85 m ground, 86 m slant"), "{text}");
        assert!(
            text.contains("within limits: pan yes, tilt yes, range no"),
            "{text}"
        );
        assert!(
            text.contains(
                "onvif degrees: pan -70.0, tilt -6.3; normalized: pan -0.389, tilt +0.500"
            ),
            "{text}"
        );
        assert!(text.ends_with("not turned\n"), "{text}");
    }

    #[test]
    fn a_fixed_camera_has_no_pose() {
        let text = aim_text(&pb::CameraAim {
            camera_id: "cam-1".into(),
            within_pan: true,
            within_tilt: true,
            within_range: true,
            ..Default::default()
        });
        assert!(text.contains("fixed camera: no pose to set"), "{text}");
        assert!(!text.contains("onvif"), "{text}");
    }

    #[test]
    fn aim_all_counts_turned_and_names_broken_limits() {
        let r = pb::AimCamerasResponse {
            target: None,
            aims: vec![
                pb::CameraAim {
                    camera_id: "ptz-1".into(),
                    within_pan: true,
                    within_tilt: true,
                    within_range: true,
                    onvif: Some(pb::OnvifPose {
                        generic_pan: 0.25,
                        generic_tilt: -0.5,
                        ..Default::default()
                    }),
                    applied: true,
                    ..Default::default()
                },
                pb::CameraAim {
                    camera_id: "cam-3".into(),
                    within_pan: false,
                    within_tilt: true,
                    within_range: false,
                    ..Default::default()
                },
            ],
        };
        let text = aims_text(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("ptz-1"), "{text}");
        assert!(lines[1].contains("+0.250/-0.500"), "{text}");
        assert!(lines[1].trim_end().ends_with("yes"), "{text}");
        assert!(lines[2].contains("out: pan,range"), "{text}");
        assert_eq!(lines.last(), Some(&"2 cameras, 1 turned"));
    }

    #[test]
    fn follow_says_who_and_with_what() {
        let mut r = pb::FollowUnitResponse {
            unit_id: "car-3".into(),
            camera_ids: vec!["ptz-1".into(), "ptz-4".into()],
            following: true,
        };
        assert_eq!(follow_line(&r), "car-3: followed by ptz-1, ptz-4");
        r.camera_ids.clear();
        assert!(follow_line(&r).contains("chosen as it moves"));
        r.following = false;
        assert_eq!(follow_line(&r), "car-3: not followed");
    }

    #[test]
    fn along_tells_where_each_camera_first_sees_the_route() {
        let r = pb::CamerasAlongResponse {
            cameras: vec![
                pb::PathSight {
                    sight: Some(sight("cam-1", 20.0, true)),
                    along_m: 150.0,
                    at: Some(pb::LonLat {
                        lon: 24.9,
                        lat: 60.1,
                    }),
                    now_along_m: Some(150.0),
                },
                pb::PathSight {
                    sight: Some(sight("ptz-9", 30.0, false)),
                    along_m: 900.0,
                    at: None,
                    now_along_m: Some(1_400.0),
                },
            ],
        };
        let text = along_text(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("cam-1") && lines[1].contains("150 m"));
        assert!(lines[1].contains("24.90000,60.10000"), "{text}");
        assert!(lines[2].contains("at 1.4 km without turning"), "{text}");
        assert_eq!(lines.last(), Some(&"2 cameras along the route"));
    }

    #[test]
    fn targets_become_the_right_oneof() {
        let t = Target {
            lon: None,
            lat: None,
            unit: Some("u1".into()),
            incident: None,
        };
        assert_eq!(
            t.to_proto().target,
            Some(camera_target::Target::UnitId("u1".into()))
        );
        let t = Target {
            lon: Some(24.9),
            lat: Some(-60.1),
            unit: None,
            incident: None,
        };
        assert_eq!(
            t.to_proto().target,
            Some(camera_target::Target::Point(pb::LonLat {
                lon: 24.9,
                lat: -60.1
            }))
        );
    }
}
