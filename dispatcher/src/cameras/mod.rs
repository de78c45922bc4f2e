//! The camera network: where each camera is, where it points, what it sees
//! now and what it could see after turning, how to aim it, and
//! [`CameraIndex`], the table, id map and spatial index that change together
//! only through its methods.
//!
//! Units: metres; bearings and headings in degrees clockwise from true
//! north; pan in degrees clockwise from a PTZ head's zero pan; tilt in
//! degrees of depression below the horizontal; x = longitude, y = latitude.
//! No occlusion model: buildings, trees and hills block nothing.
//!
//! # Layout
//! - `model`: [`Camera`], its PTZ head ([`Ptz`], [`PtzPose`]), health and
//!   the checks that name each bad field.
//! - `view`: the ground a camera sees now and could after turning, whether a
//!   point lies in it ([`CameraSight`]), and the polygons for the map
//!   ([`Camera::sector`], [`Camera::reach`]).
//! - `aim`: [`Aim`], how to point a camera at a point, with the pose in
//!   ONVIF's degree and generic spaces ([`OnvifPose`]).
//! - `index`: [`CameraIndex`] and its queries: cameras seeing a point,
//!   cameras along a path ([`PathSight`]), aims for every camera that can
//!   see a point ([`CameraAim`]).

mod aim;
mod index;
mod model;
mod view;

pub use aim::{Aim, DEFAULT_TARGET_HEIGHT_M, OnvifPose};
pub use index::{CameraAim, CameraIndex, CameraIndexMemory, PathSight, Touched};
pub use model::{
    Camera, CameraConfig, DEFAULT_ASPECT, MAX_CAMERA_NAME_LEN, MAX_MOUNT_HEIGHT_M, MAX_RANGE_M,
    Ptz, PtzPose, angle_diff, pan_into,
};
pub use view::{CameraSight, Turn};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::LonLat;

    fn camera(id: &str, heading_deg: f64) -> Camera {
        Camera {
            id: id.into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 6.0,
            heading_deg,
            fov_deg: 60.0,
            range_m: 80.0,
            ..Camera::default()
        }
    }

    #[test]
    fn re_registering_keeps_the_slot_and_replaces_the_camera() {
        let mut index = CameraIndex::default();
        assert!(index.upsert(camera("a", 0.0)).unwrap().1);
        assert!(index.upsert(camera("b", 0.0)).unwrap().1);
        let (stored, created) = index.upsert(camera("a", -90.0)).unwrap();
        assert!(!created);
        assert_eq!(stored.heading_deg, 270.0);
        assert_eq!(index.len(), 2);
        assert_eq!(index.slot("a"), Some(0));
        assert_eq!(index.get("a").unwrap().heading_deg, 270.0);
        let ids: Vec<_> = index
            .in_slot_order()
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        // a refused camera changes nothing
        let mut bad = camera("c", 0.0);
        bad.range_m = 0.0;
        assert!(index.upsert(bad).is_err());
        assert_eq!(index.len(), 2);
        assert!(index.get("c").is_none());
    }

    #[test]
    fn rebuilding_refuses_a_camera_listed_twice() {
        let config = CameraConfig::default();
        let index = CameraIndex::from_slot_order(
            config,
            vec![(camera("a", 0.0), false), (camera("b", 0.0), true)],
        )
        .unwrap();
        assert_eq!(index.slot("b"), Some(1));
        assert!(index.offline_reported(1) && !index.offline_reported(0));
        let err = CameraIndex::from_slot_order(
            config,
            vec![(camera("a", 0.0), false), (camera("a", 1.0), false)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"a\" twice"), "{err}");
    }

    #[test]
    fn moving_a_camera_moves_it_in_the_tree() {
        let mut index = CameraIndex::default();
        index.upsert(camera("a", 0.0)).unwrap();
        let north = LonLat::new(24.95, 60.17).destination(0.0, 40.0);
        assert_eq!(index.seeing(&north, 0, 10).len(), 1);
        // 5 km east: it no longer sees the old spot, and sees the new one
        let mut moved = camera("a", 0.0);
        moved.at = LonLat::new(24.95, 60.17).destination(90.0, 5_000.0);
        index.upsert(moved.clone()).unwrap();
        assert!(index.seeing(&north, 0, 10).is_empty());
        let new_north = moved.at.destination(0.0, 40.0);
        assert_eq!(index.seeing(&new_north, 0, 10)[0].camera_id, "a");
        // a longer range reaches further
        let far = moved.at.destination(0.0, 500.0);
        assert!(index.seeing(&far, 0, 10).is_empty());
        moved.range_m = 600.0;
        index.upsert(moved).unwrap();
        assert_eq!(index.seeing(&far, 0, 10).len(), 1);
    }

    #[test]
    fn health_reports_move_forward_and_are_swept() {
        let config = CameraConfig {
            offline_after_ms: 1_000,
        };
        let mut index = CameraIndex::new(config);
        index.upsert(camera("a", 0.0)).unwrap();
        index.upsert(camera("b", 0.0)).unwrap();
        index.take_touched();
        let seen = index.touch("a", 10_000, 10_000).unwrap();
        assert!(seen.changed && !seen.came_online);
        assert!(!index.touch("a", 9_000, 10_000).unwrap().changed);
        assert_eq!(index.take_touched(), ["a"]);
        assert!(index.take_touched().is_empty());
        // b is unmonitored: never offline
        assert!(index.sweep_offline(10_500).is_empty());
        assert_eq!(index.sweep_offline(11_001), [0]);
        assert!(index.offline_reported(0));
        assert!(index.sweep_offline(12_000).is_empty(), "told once");
        let target = LonLat::new(24.95, 60.17).destination(0.0, 40.0);
        let ids: Vec<_> = index
            .seeing(&target, 12_000, 10)
            .into_iter()
            .map(|s| s.camera_id)
            .collect();
        assert_eq!(ids, ["b"], "the offline camera is left out");
        let back = index.touch("a", 12_000, 12_000).unwrap();
        assert!(back.changed && back.came_online);
        assert!(!index.offline_reported(0));
        assert!(index.sweep_offline(12_000).is_empty());
        assert_eq!(index.seeing(&target, 12_000, 10).len(), 2);
        assert!(matches!(
            index.touch("nope", 1, 1),
            Err(crate::Error::NotFound { .. })
        ));
    }

    #[test]
    fn a_fixed_camera_cannot_be_posed_and_a_pose_turns_a_ptz() {
        let mut index = CameraIndex::default();
        index.upsert(camera("fixed", 0.0)).unwrap();
        let err = index.set_pose("fixed", PtzPose::default()).unwrap_err();
        assert!(matches!(err, crate::Error::FailedPrecondition(_)), "{err}");
        let mut ptz = camera("ptz", 0.0);
        ptz.ptz = true;
        ptz.ptz_head = Some(Ptz {
            zero_pan_azimuth_deg: 0.0,
            pan_min_deg: -90.0,
            pan_max_deg: 90.0,
            tilt_min_deg: 0.0,
            tilt_max_deg: 90.0,
            pose: PtzPose {
                pan_deg: 0.0,
                tilt_deg: 10.0,
                zoom: 0.0,
            },
        });
        index.upsert(ptz).unwrap();
        let east = LonLat::new(24.95, 60.17).destination(80.0, 60.0);
        let sight = &index.seeing(&east, 0, 10)[0];
        assert!(!sight.sees_now);
        let turn = sight.after_turn.unwrap();
        let pose = PtzPose {
            pan_deg: turn.pan_deg,
            tilt_deg: turn.tilt_deg,
            zoom: 0.5,
        };
        let turned = index.set_pose("ptz", pose).unwrap();
        assert!((turned.heading_deg - turn.heading_deg).abs() < 1e-9);
        let sight = &index.seeing(&east, 0, 10)[0];
        assert!(
            sight.sees_now && sight.off_axis_deg.abs() < 1e-6,
            "{sight:?}"
        );
        let err = index
            .set_pose(
                "ptz",
                PtzPose {
                    pan_deg: 120.0,
                    ..pose
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("pose.pan_deg"), "{err}");
    }
}
