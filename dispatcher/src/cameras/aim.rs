//! Aiming a camera at a point: the bearing, pan, tilt and distances, and the
//! pose in the two ONVIF position spaces a PTZ camera takes.
//!
//! # ONVIF conventions
//!
//! ONVIF Profile T (v1.0, section 7.21 "Absolute PTZ move") requires a
//! device with motorised pan/tilt to support `AbsoluteMove` in
//! `http://www.onvif.org/ver10/tptz/PanTiltSpaces/SphericalPositionSpaceDegrees`
//! and every pan/tilt device in
//! `http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace`.
//! The ONVIF PTZ Service Specification, "Predefined PTZ Spaces", defines them:
//!
//! - *Spherical pan/tilt position space in degrees*: pan and tilt are
//!   rotations about the head's axes, (0, 0) with the lens parallel to the
//!   ceiling (horizontal). "When starting from the initial direction and
//!   increasing the pan angle, objects that have previously been in the
//!   centre of the image will move towards the left of the image": pan grows
//!   clockwise seen from above, like a compass bearing. "Increasing the tilt
//!   angle, objects ... move towards the bottom of the image": tilt grows
//!   *upwards*, and a dome looking down is "typically bounded from 0 to -90
//!   degrees". So ONVIF tilt is minus patrol's depression. Pan runs
//!   -180..=180 (both ends the same direction).
//! - *Generic pan/tilt position space*: "the full range of the PTZ unit
//!   normalized to the range -1 to 1". The spec gives no direction for the
//!   position space; its generic translation and velocity spaces make
//!   positive "clockwise rotation or movement in right/up direction", and
//!   patrol follows that: pan -1 is the counter-clockwise limit and +1 the
//!   clockwise one, tilt +1 the upper limit (least depression) and -1 the
//!   lower. Devices differ: check a model's GetConfigurationOptions ranges
//!   before trusting the generic numbers.

use super::model::{Camera, PtzPose, angle_diff, pan_clamped, pan_into, wrap360};
use super::view::{Frame, ecef, polar};
use crate::geometry::LonLat;

/// Height above the ground an aim centres on when none is given: a person's
/// chest, metres.
pub const DEFAULT_TARGET_HEIGHT_M: f64 = 1.5;

/// How to point a camera at a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aim {
    /// Bearing from the camera to the target, degrees clockwise from true
    /// north, 0..360.
    pub bearing_deg: f64,
    /// The pan that centres the target, degrees clockwise from zero pan: for
    /// a PTZ camera the representative inside its pan range when there is
    /// one, else the one nearest the range; for a fixed camera, the angle off
    /// its heading, in (-180, 180].
    pub pan_relative_deg: f64,
    /// The tilt that centres the target, degrees below the horizontal from
    /// the mounting height: `atan2(mount_height - target_height, distance)`
    /// (negative when the target is above the camera). Flat ground.
    pub tilt_deg: f64,
    /// Ground distance from the camera's foot, metres.
    pub distance_m: f64,
    /// Straight-line distance from the lens to the target, metres.
    pub slant_m: f64,
    /// PTZ: the centring pan lies in the pan range. Fixed: the target lies
    /// within its horizontal field of view (it cannot pan).
    pub within_pan: bool,
    /// PTZ: the centring tilt lies in the tilt range. Fixed: always true
    /// (its tilt is not modelled; its range stands for it).
    pub within_tilt: bool,
    /// The target lies within the camera's range.
    pub within_range: bool,
    /// PTZ only: the pose to send, the centring pan and tilt clamped into the
    /// limits, at the current zoom. [`Dispatcher::set_camera_pose`] takes it.
    ///
    /// [`Dispatcher::set_camera_pose`]: crate::Dispatcher::set_camera_pose
    pub pose: Option<PtzPose>,
    /// PTZ only: `pose` in ONVIF's position spaces.
    pub onvif: Option<OnvifPose>,
}

/// A pose in ONVIF's absolute position spaces (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnvifPose {
    /// `SphericalPositionSpaceDegrees` pan: degrees clockwise from zero pan,
    /// in (-180, 180].
    pub pan_deg: f64,
    /// `SphericalPositionSpaceDegrees` tilt: degrees *above* the horizontal
    /// (a camera looking down has a negative tilt), -90..=90.
    pub tilt_deg: f64,
    /// `PositionGenericSpace` pan, -1 (counter-clockwise limit) ..= 1
    /// (clockwise limit), linear in degrees; 0 when the head cannot pan.
    pub generic_pan: f64,
    /// `PositionGenericSpace` tilt, -1 (lowest) ..= 1 (highest), linear in
    /// degrees; 0 when the head cannot tilt.
    pub generic_tilt: f64,
    /// Generic zoom space, 0 (wide) ..= 1 (tele).
    pub zoom: f64,
}

impl Camera {
    /// How to point the camera at `target`, `target_height_m` above the
    /// ground (see [`DEFAULT_TARGET_HEIGHT_M`]). Ignores health; the pan and
    /// the bearing are measured in the camera's local WGS84 frame.
    pub fn aim(&self, target: &LonLat, target_height_m: f64) -> Aim {
        let (east, north) = Frame::at(&self.at).east_north(&ecef(target));
        let (distance_m, bearing_deg) = polar(east, north);
        let drop = self.mount_height_m - target_height_m;
        let tilt_deg = drop.atan2(distance_m).to_degrees();
        let slant_m = distance_m.hypot(drop);
        let within_range = distance_m <= self.range_m;
        let Some(head) = &self.ptz_head else {
            let off = angle_diff(bearing_deg, self.heading_deg);
            return Aim {
                bearing_deg,
                pan_relative_deg: off,
                tilt_deg,
                distance_m,
                slant_m,
                within_pan: off.abs() <= self.fov_deg / 2.0,
                within_tilt: true,
                within_range,
                pose: None,
                onvif: None,
            };
        };
        let relative = wrap360(bearing_deg - head.zero_pan_azimuth_deg);
        let (pan_relative_deg, within_pan) = pan_into(relative, head.pan_min_deg, head.pan_max_deg);
        let within_tilt = (head.tilt_min_deg..=head.tilt_max_deg).contains(&tilt_deg);
        let pose = PtzPose {
            pan_deg: pan_clamped(relative, head.pan_min_deg, head.pan_max_deg),
            tilt_deg: tilt_deg.clamp(head.tilt_min_deg, head.tilt_max_deg),
            zoom: head.pose.zoom,
        };
        let generic = |value: f64, low: f64, high: f64| {
            if high > low {
                (2.0 * (value - low) / (high - low) - 1.0).clamp(-1.0, 1.0)
            } else {
                0.0
            }
        };
        let onvif = OnvifPose {
            pan_deg: angle_diff(pose.pan_deg, 0.0),
            tilt_deg: -pose.tilt_deg,
            generic_pan: generic(pose.pan_deg, head.pan_min_deg, head.pan_max_deg),
            // +1 is up: the least depression
            generic_tilt: -generic(pose.tilt_deg, head.tilt_min_deg, head.tilt_max_deg),
            zoom: pose.zoom,
        };
        Aim {
            bearing_deg,
            pan_relative_deg,
            tilt_deg,
            distance_m,
            slant_m,
            within_pan,
            within_tilt,
            within_range,
            pose: Some(pose),
            onvif: Some(onvif),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cameras::model::Ptz;

    fn dome(zero: f64, pan: (f64, f64), tilt: (f64, f64)) -> Camera {
        Camera {
            id: "dome".into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 10.0,
            fov_deg: 50.0,
            range_m: 300.0,
            ptz: true,
            ptz_head: Some(Ptz {
                zero_pan_azimuth_deg: zero,
                pan_min_deg: pan.0,
                pan_max_deg: pan.1,
                tilt_min_deg: tilt.0,
                tilt_max_deg: tilt.1,
                pose: PtzPose {
                    pan_deg: pan.0,
                    tilt_deg: tilt.0,
                    zoom: 0.25,
                },
            }),
            ..Camera::default()
        }
        .validated()
        .unwrap()
    }

    #[test]
    fn onvif_spaces_follow_the_spec_signs() {
        let cam = dome(90.0, (-170.0, 170.0), (0.0, 90.0));
        // 100 m due east, i.e. at zero pan; 10 m up, so 1.5 m chest is
        // atan(8.5 / 100) below the horizontal
        let target = LonLat::new(24.95, 60.17).destination(90.0, 100.0);
        let aim = cam.aim(&target, 1.5);
        assert!(aim.pan_relative_deg.abs() < 0.05, "{aim:?}");
        let tilt = (8.5f64 / aim.distance_m).atan().to_degrees();
        assert!((aim.tilt_deg - tilt).abs() < 1e-9);
        let onvif = aim.onvif.unwrap();
        assert!(
            onvif.tilt_deg < 0.0,
            "looking down is a negative ONVIF tilt"
        );
        assert_eq!(onvif.tilt_deg, -aim.pose.unwrap().tilt_deg);
        // generic: pan 0 in -170..170 is the middle; tilt 4.9 of 0..90 is
        // near the top (+1)
        assert!(onvif.generic_pan.abs() < 0.001);
        assert!((onvif.generic_tilt - (1.0 - 2.0 * tilt / 90.0)).abs() < 1e-9);
        assert_eq!(onvif.zoom, 0.25);
        assert!(aim.within_pan && aim.within_tilt && aim.within_range);
        assert!((aim.slant_m - aim.distance_m.hypot(8.5)).abs() < 1e-9);
    }

    #[test]
    fn out_of_reach_aims_are_clamped_and_say_so() {
        // zero pan north, pan -90..90: a target due south is 180 off
        let cam = dome(0.0, (-90.0, 90.0), (10.0, 60.0));
        let target = LonLat::new(24.95, 60.17).destination(185.0, 50.0);
        let aim = cam.aim(&target, 1.5);
        assert!(!aim.within_pan);
        // 185 is 95 past +90 and 85 before -90 (as -175): nearest is -175
        assert!((aim.pan_relative_deg + 175.0).abs() < 0.05, "{aim:?}");
        let pose = aim.pose.unwrap();
        assert_eq!(pose.pan_deg, -90.0);
        assert_eq!(aim.onvif.unwrap().generic_pan, -1.0);
        // a target at the camera's foot needs 90 down, past the 60 limit
        let aim = cam.aim(&LonLat::new(24.95, 60.17).destination(0.0, 0.5), 0.0);
        assert!(!aim.within_tilt);
        assert_eq!(aim.pose.unwrap().tilt_deg, 60.0);
        assert_eq!(aim.onvif.unwrap().generic_tilt, -1.0);
        // too far
        let aim = cam.aim(&LonLat::new(24.95, 60.17).destination(0.0, 400.0), 1.5);
        assert!(!aim.within_range && aim.within_pan);
    }

    #[test]
    fn a_fixed_camera_aims_by_its_field_of_view() {
        let cam = Camera {
            id: "fixed".into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 4.0,
            heading_deg: 40.0,
            fov_deg: 60.0,
            range_m: 100.0,
            ..Camera::default()
        };
        let inside = cam.aim(&cam.at.destination(60.0, 50.0), 1.5);
        assert!(inside.within_pan && inside.pose.is_none() && inside.onvif.is_none());
        assert!((inside.pan_relative_deg - 20.0).abs() < 0.05);
        let outside = cam.aim(&cam.at.destination(0.0, 50.0), 1.5);
        assert!(!outside.within_pan);
        assert!((outside.pan_relative_deg + 40.0).abs() < 0.05);
    }
}
