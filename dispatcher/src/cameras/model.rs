//! The camera record: where a camera stands, where it points, what its PTZ
//! head can do and when its system last reported, with the checks that keep
//! every stored camera consistent.
//!
//! Angles: bearings and headings are degrees clockwise from true north
//! (0..360). Pan is degrees clockwise from the head's zero pan. Tilt is degrees
//! of *depression*: below the horizontal is positive (0 = horizon, 90 =
//! straight down, negative = above the horizon). Distances are metres.

use crate::Millis;
use crate::error::{Error, validate_id};
use crate::geometry::Validated;
use crate::geometry::{BoundingBox, LonLat};

/// Longest accepted camera name, in bytes.
pub const MAX_CAMERA_NAME_LEN: usize = 256;

/// Longest accepted range, metres.
pub const MAX_RANGE_M: f64 = 10_000.0;

/// Highest accepted mounting height, metres.
pub const MAX_MOUNT_HEIGHT_M: f64 = 500.0;

/// Sensor aspect assumed when a camera gives no vertical field of view:
/// 16:9, the shape of nearly every surveillance stream.
pub const DEFAULT_ASPECT: f64 = 16.0 / 9.0;

/// Settings for the camera index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraConfig {
    /// A camera whose system last reported longer ago than this is offline
    /// (milliseconds). Default five minutes: video management systems report
    /// camera health about once a minute.
    pub offline_after_ms: Millis,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            offline_after_ms: 300_000,
        }
    }
}

/// A fixed or PTZ camera.
///
/// `heading_deg` is where the camera points *now*: for a PTZ camera it is
/// always `zero_pan_azimuth_deg + pan_deg` of its head (validation derives
/// it, and [`CameraIndex::set_pose`](super::CameraIndex::set_pose) keeps it so),
/// so callers that know nothing of PTZ heads read the right direction.
///
/// `Default` is *not* a valid camera (no id, no range): it exists so callers
/// can fill the optional fields with `..Camera::default()`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Camera {
    /// Caller-chosen id, unique per region.
    pub id: String,
    /// What operators call it, e.g. "Market square north"; may be empty.
    pub name: String,
    /// Where it is mounted (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// Mounting height above the ground it watches, metres (0..=500).
    pub mount_height_m: f64,
    /// Where it points now, degrees clockwise from true north (stored as
    /// 0..360). Derived from the head for a PTZ camera.
    pub heading_deg: f64,
    /// Horizontal field of view, degrees, (0, 360].
    pub fov_deg: f64,
    /// How far it usefully sees along the ground, metres, (0, 10000].
    pub range_m: f64,
    /// Whether operators can pan, tilt and zoom it. A PTZ camera registered
    /// without a [`Camera::ptz_head`] gets [`Ptz::assumed`]: it pans all
    /// the way round from its current heading.
    pub ptz: bool,
    /// Vertical field of view, degrees, (0, 180]. Absent: derived from
    /// `fov_deg` for a 16:9 picture ([`Camera::vertical_fov`]). Only PTZ
    /// cameras use it: a fixed camera's tilt is not modelled (its range
    /// stands for it).
    #[serde(default)]
    pub vertical_fov_deg: Option<f64>,
    /// The PTZ head: its limits and current pose. Present exactly when
    /// `ptz` is true, once validated.
    #[serde(default)]
    pub ptz_head: Option<Ptz>,
    /// When the camera's system last reported it alive (Unix ms). Absent:
    /// its health is not monitored and it counts as online.
    #[serde(default)]
    pub last_seen: Option<Millis>,
}

/// What a PTZ head can do and where it points now.
///
/// Pan angles are relative to zero pan, clockwise positive, as the ONVIF
/// spherical space counts them. The pan range `pan_min_deg..=pan_max_deg`
/// may lie anywhere in -360..=360 and span at most 360 degrees; a span of
/// exactly 360 is a continuous pan. A range such as 90..=270 crosses the
/// back of the head (pan 180).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ptz {
    /// The true-north bearing of pan = 0, degrees (stored as 0..360).
    pub zero_pan_azimuth_deg: f64,
    /// Pan limit, counter-clockwise end, degrees from zero pan.
    pub pan_min_deg: f64,
    /// Pan limit, clockwise end, degrees from zero pan.
    pub pan_max_deg: f64,
    /// Tilt limit nearest the sky, degrees of depression (-90..=90).
    pub tilt_min_deg: f64,
    /// Tilt limit nearest the ground, degrees of depression (-90..=90).
    pub tilt_max_deg: f64,
    /// The current pose.
    pub pose: PtzPose,
}

/// Where a PTZ head points.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct PtzPose {
    /// Degrees clockwise from zero pan, inside the head's pan range (stored
    /// as the representative that lies in it).
    pub pan_deg: f64,
    /// Degrees of depression below the horizontal, inside the tilt range.
    pub tilt_deg: f64,
    /// Zoom, 0 (wide) to 1 (tele), as ONVIF's generic zoom space. Stored and
    /// reported; the model's field of view and range do not change with it.
    pub zoom: f64,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            at: LonLat::new(0.0, 0.0),
            mount_height_m: 0.0,
            heading_deg: 0.0,
            fov_deg: 0.0,
            range_m: 0.0,
            ptz: false,
            vertical_fov_deg: None,
            ptz_head: None,
            last_seen: None,
        }
    }
}

impl Ptz {
    /// The head assumed for a camera registered as PTZ without one: zero pan
    /// at true north, continuous pan (-180..180), tilt 0..=90, pointing where
    /// the camera's `heading_deg` says, tilted so that the far edge of the
    /// picture lies at `range_m` on flat ground, and zoomed out.
    pub fn assumed(heading_deg: f64, mount_height_m: f64, range_m: f64, vfov_deg: f64) -> Ptz {
        let tilt =
            ((mount_height_m / range_m).atan().to_degrees() + vfov_deg / 2.0).clamp(0.0, 90.0);
        Ptz {
            zero_pan_azimuth_deg: 0.0,
            pan_min_deg: -180.0,
            pan_max_deg: 180.0,
            tilt_min_deg: 0.0,
            tilt_max_deg: 90.0,
            pose: PtzPose {
                pan_deg: pan_into(heading_deg, -180.0, 180.0).0,
                tilt_deg: tilt,
                zoom: 0.0,
            },
        }
    }

    /// Whether the head pans all the way round.
    pub fn continuous_pan(&self) -> bool {
        self.pan_max_deg - self.pan_min_deg >= 360.0
    }

    /// Where the head points now, degrees clockwise from true north, 0..360.
    pub fn heading_deg(&self) -> f64 {
        wrap360(self.zero_pan_azimuth_deg + self.pose.pan_deg)
    }

    /// Checks the limits, naming the bad field; normalises zero pan to 0..360.
    fn validated_limits(mut self) -> Result<Self, Error> {
        finite(
            "camera.ptz_head.zero_pan_azimuth_deg",
            self.zero_pan_azimuth_deg,
        )?;
        self.zero_pan_azimuth_deg = wrap360(self.zero_pan_azimuth_deg);
        in_range(
            "camera.ptz_head.pan_min_deg",
            self.pan_min_deg,
            -360.0,
            360.0,
        )?;
        in_range(
            "camera.ptz_head.pan_max_deg",
            self.pan_max_deg,
            -360.0,
            360.0,
        )?;
        if self.pan_max_deg < self.pan_min_deg {
            return Err(Error::invalid(
                "camera.ptz_head.pan_max_deg",
                self.pan_max_deg,
                format!("must be >= pan_min_deg ({})", self.pan_min_deg),
            ));
        }
        if self.pan_max_deg - self.pan_min_deg > 360.0 {
            return Err(Error::invalid(
                "camera.ptz_head.pan_max_deg",
                self.pan_max_deg,
                format!(
                    "must be at most 360 above pan_min_deg ({}): a span of 360 is a continuous pan",
                    self.pan_min_deg
                ),
            ));
        }
        in_range(
            "camera.ptz_head.tilt_min_deg",
            self.tilt_min_deg,
            -90.0,
            90.0,
        )?;
        in_range(
            "camera.ptz_head.tilt_max_deg",
            self.tilt_max_deg,
            -90.0,
            90.0,
        )?;
        if self.tilt_max_deg < self.tilt_min_deg {
            return Err(Error::invalid(
                "camera.ptz_head.tilt_max_deg",
                self.tilt_max_deg,
                format!("must be >= tilt_min_deg ({})", self.tilt_min_deg),
            ));
        }
        Ok(self)
    }

    /// Checks `pose` against the limits, naming fields under `prefix` (e.g.
    /// `pose`), and returns it with its pan as the representative inside the
    /// pan range.
    pub fn validated_pose(&self, pose: PtzPose, prefix: &str) -> Result<PtzPose, Error> {
        let field = |name: &str| format!("{prefix}.{name}");
        finite(&field("pan_deg"), pose.pan_deg)?;
        let (pan, within) = pan_into(pose.pan_deg, self.pan_min_deg, self.pan_max_deg);
        if !within {
            return Err(Error::invalid(
                &field("pan_deg"),
                pose.pan_deg,
                format!(
                    "must lie in the pan range {}..={} (modulo 360)",
                    self.pan_min_deg, self.pan_max_deg
                ),
            ));
        }
        if !pose.tilt_deg.is_finite()
            || pose.tilt_deg < self.tilt_min_deg
            || pose.tilt_deg > self.tilt_max_deg
        {
            return Err(Error::invalid(
                &field("tilt_deg"),
                pose.tilt_deg,
                format!(
                    "must lie in the tilt range {}..={} (degrees below horizontal)",
                    self.tilt_min_deg, self.tilt_max_deg
                ),
            ));
        }
        in_range(&field("zoom"), pose.zoom, 0.0, 1.0)?;
        Ok(PtzPose {
            pan_deg: pan,
            tilt_deg: pose.tilt_deg,
            zoom: pose.zoom,
        })
    }
}

/// `pan_deg` as the head counts it: the representative of `pan_deg` modulo
/// 360 inside `min..=max` and `true`, or, when none lies inside, the
/// representative nearest the range (of two equally near, the one nearer
/// zero) and `false`. A continuous range
/// (`max - min >= 360`) gives the representative in `min..min + 360`.
pub fn pan_into(pan_deg: f64, min: f64, max: f64) -> (f64, bool) {
    let above_min = min + wrap360(pan_deg - min);
    if above_min <= max || max - min >= 360.0 {
        return (above_min, true);
    }
    let below_min = above_min - 360.0;
    let (past_max, before_min) = (above_min - max, min - below_min);
    // equally far from both ends: the one nearer zero pan
    if past_max < before_min || (past_max == before_min && above_min.abs() <= below_min.abs()) {
        (above_min, false)
    } else {
        (below_min, false)
    }
}

/// The nearest pan inside `min..=max` to `pan_deg` (modulo 360).
pub(super) fn pan_clamped(pan_deg: f64, min: f64, max: f64) -> f64 {
    let (pan, within) = pan_into(pan_deg, min, max);
    if within { pan } else { pan.clamp(min, max) }
}

/// `deg` modulo 360, in 0..360 (`rem_euclid` alone can round a tiny
/// negative angle up to 360 itself).
pub(super) fn wrap360(deg: f64) -> f64 {
    let r = deg.rem_euclid(360.0);
    if r >= 360.0 { 0.0 } else { r }
}

/// The signed difference `a - b` in degrees, in (-180, 180].
pub fn angle_diff(a: f64, b: f64) -> f64 {
    let d = wrap360(a - b);
    if d > 180.0 { d - 360.0 } else { d }
}

impl Camera {
    /// Checks every field, naming the bad one; normalises the heading to
    /// 0..360; gives a PTZ camera without a head the [`Ptz::assumed`] one,
    /// stores a PTZ pose's pan inside its range and derives the heading
    /// from the head.
    pub fn validated(mut self) -> Result<Self, Error> {
        validate_id("camera.id", &self.id)?;
        if self.name.len() > MAX_CAMERA_NAME_LEN {
            return Err(Error::invalid(
                "camera.name",
                format!("{:?}...", &self.name[..self.name.floor_char_boundary(32)]),
                format!("must be at most {MAX_CAMERA_NAME_LEN} bytes"),
            ));
        }
        self.at = self.at.validated("camera.lon/lat")?;
        if !self.mount_height_m.is_finite()
            || !(0.0..=MAX_MOUNT_HEIGHT_M).contains(&self.mount_height_m)
        {
            return Err(Error::invalid(
                "camera.mount_height_m",
                self.mount_height_m,
                "must be in 0..=500",
            ));
        }
        finite("camera.heading_deg", self.heading_deg)?;
        self.heading_deg = wrap360(self.heading_deg);
        if !self.fov_deg.is_finite() || self.fov_deg <= 0.0 || self.fov_deg > 360.0 {
            return Err(Error::invalid(
                "camera.fov_deg",
                self.fov_deg,
                "must be in (0, 360]",
            ));
        }
        if !self.range_m.is_finite() || self.range_m <= 0.0 || self.range_m > MAX_RANGE_M {
            return Err(Error::invalid(
                "camera.range_m",
                self.range_m,
                "must be in (0, 10000]",
            ));
        }
        if let Some(v) = self.vertical_fov_deg
            && (!v.is_finite() || v <= 0.0 || v > 180.0)
        {
            return Err(Error::invalid(
                "camera.vertical_fov_deg",
                v,
                "must be in (0, 180]",
            ));
        }
        match (self.ptz, self.ptz_head) {
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "camera.ptz",
                    false,
                    "must be true when camera.ptz_head is given",
                ));
            }
            (false, None) => {}
            (true, None) => {
                self.ptz_head = Some(Ptz::assumed(
                    self.heading_deg,
                    self.mount_height_m,
                    self.range_m,
                    self.vertical_fov(),
                ));
            }
            (true, Some(head)) => {
                let mut head = head.validated_limits()?;
                head.pose = head.validated_pose(head.pose, "camera.ptz_head.pose")?;
                self.ptz_head = Some(head);
            }
        }
        if let Some(head) = &self.ptz_head {
            self.heading_deg = head.heading_deg();
        }
        Ok(self)
    }

    /// The vertical field of view in degrees: as given, or derived from the
    /// horizontal one for a 16:9 picture (`2 atan(tan(h/2) * 9/16)`, with
    /// the horizontal angle capped at 179 degrees for panoramic lenses).
    pub fn vertical_fov(&self) -> f64 {
        self.vertical_fov_deg.unwrap_or_else(|| {
            let half = (self.fov_deg.min(179.0) / 2.0).to_radians();
            2.0 * (half.tan() / DEFAULT_ASPECT).atan().to_degrees()
        })
    }

    /// Whether its system reported it within `offline_after_ms` of `now`
    /// (always, when its health is not monitored).
    pub fn is_online(&self, now: Millis, offline_after_ms: Millis) -> bool {
        self.last_seen
            .is_none_or(|seen| now.saturating_sub(seen) <= offline_after_ms)
    }

    /// Whether the camera stands inside `bbox` (always, without one).
    pub fn within(&self, bbox: Option<&BoundingBox>) -> bool {
        bbox.is_none_or(|b| b.contains(&self.at))
    }

    /// The name operators know the camera by, or its id when it has none.
    pub fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

fn finite(field: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(field, value, "must be finite"))
    }
}

fn in_range(field: &str, value: f64, min: f64, max: f64) -> Result<(), Error> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            value,
            format!("must be in {min}..={max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptz_camera(head: Ptz) -> Camera {
        Camera {
            id: "p".into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 8.0,
            fov_deg: 60.0,
            range_m: 150.0,
            ptz: true,
            ptz_head: Some(head),
            ..Camera::default()
        }
    }

    fn head(min: f64, max: f64, pan: f64) -> Ptz {
        Ptz {
            zero_pan_azimuth_deg: 100.0,
            pan_min_deg: min,
            pan_max_deg: max,
            tilt_min_deg: 0.0,
            tilt_max_deg: 90.0,
            pose: PtzPose {
                pan_deg: pan,
                tilt_deg: 20.0,
                zoom: 0.5,
            },
        }
    }

    #[test]
    fn pan_representatives_respect_the_range_and_wrap() {
        assert_eq!(pan_into(10.0, -170.0, 170.0), (10.0, true));
        assert_eq!(pan_into(-190.0, -170.0, 170.0), (170.0, true));
        assert_eq!(pan_into(530.0, -170.0, 170.0), (170.0, true));
        // 175 lies 5 past the clockwise limit and 15 before the other
        assert_eq!(pan_into(175.0, -170.0, 170.0), (175.0, false));
        assert_eq!(pan_into(-178.0, -170.0, 170.0), (-178.0, false));
        assert_eq!(pan_clamped(175.0, -170.0, 170.0), 170.0);
        assert_eq!(pan_clamped(-178.0, -170.0, 170.0), -170.0);
        // a range across the back of the head
        assert_eq!(pan_into(-170.0, 90.0, 270.0), (190.0, true));
        assert_eq!(pan_into(0.0, 90.0, 270.0), (0.0, false));
        // continuous: any pan, counted from the minimum
        assert_eq!(pan_into(-190.0, -180.0, 180.0), (170.0, true));
        assert_eq!(pan_into(180.0, -180.0, 180.0), (-180.0, true));
        assert_eq!(angle_diff(10.0, 350.0), 20.0);
        assert_eq!(angle_diff(350.0, 10.0), -20.0);
        assert_eq!(angle_diff(180.0, 0.0), 180.0);
        assert_eq!(wrap360(-1e-17), 0.0);
        assert_eq!(pan_into(-1e-20, 0.0, 90.0), (0.0, true));
    }

    #[test]
    fn a_ptz_heading_is_zero_pan_plus_pan() {
        let cam = ptz_camera(head(-170.0, 170.0, -150.0)).validated().unwrap();
        assert!(
            (cam.heading_deg - 310.0).abs() < 1e-9,
            "{}",
            cam.heading_deg
        );
        // a pan given modulo 360 is stored inside the range
        let cam = ptz_camera(head(90.0, 270.0, -100.0)).validated().unwrap();
        assert_eq!(cam.ptz_head.unwrap().pose.pan_deg, 260.0);
        assert!((cam.heading_deg - 0.0).abs() < 1e-9);
    }

    #[test]
    fn a_legacy_ptz_camera_gets_a_continuous_head_at_its_heading() {
        let cam = Camera {
            id: "old".into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 6.0,
            heading_deg: 250.0,
            fov_deg: 60.0,
            range_m: 80.0,
            ptz: true,
            ..Camera::default()
        }
        .validated()
        .unwrap();
        let head = cam.ptz_head.unwrap();
        assert!(head.continuous_pan());
        assert_eq!(head.pose.pan_deg, -110.0);
        assert_eq!(cam.heading_deg, 250.0);
        // the picture's upper edge looks at the ground at range_m
        let upper = head.pose.tilt_deg - cam.vertical_fov() / 2.0;
        assert!((6.0 / upper.to_radians().tan() - 80.0).abs() < 1e-6);
    }

    #[test]
    fn derived_vertical_fov_is_sixteen_by_nine() {
        let cam = Camera {
            fov_deg: 90.0,
            ..Camera::default()
        };
        // tan(45) * 9/16 = 0.5625
        assert!((cam.vertical_fov() - 2.0 * 0.5625f64.atan().to_degrees()).abs() < 1e-12);
        let wide = Camera {
            fov_deg: 360.0,
            ..Camera::default()
        };
        assert!(wide.vertical_fov() > 170.0 && wide.vertical_fov() <= 180.0);
    }

    #[test]
    fn every_new_field_is_checked_by_name() {
        let field_of = |cam: Camera| match cam.validated() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let mut h = head(-170.0, 170.0, 0.0);
        h.pan_min_deg = f64::NAN;
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pan_min_deg");
        let h = head(10.0, -10.0, 0.0);
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pan_max_deg");
        let h = head(-180.0, 181.0, 0.0);
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pan_max_deg");
        let h = head(-170.0, 170.0, 175.0);
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pose.pan_deg");
        let mut h = head(-170.0, 170.0, 0.0);
        h.tilt_min_deg = -91.0;
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.tilt_min_deg");
        let mut h = head(-170.0, 170.0, 0.0);
        h.tilt_max_deg = -5.0;
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.tilt_max_deg");
        let mut h = head(-170.0, 170.0, 0.0);
        h.pose.tilt_deg = 95.0;
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pose.tilt_deg");
        let mut h = head(-170.0, 170.0, 0.0);
        h.pose.zoom = 1.5;
        assert_eq!(field_of(ptz_camera(h)), "camera.ptz_head.pose.zoom");
        let mut h = head(-170.0, 170.0, 0.0);
        h.zero_pan_azimuth_deg = f64::INFINITY;
        assert_eq!(
            field_of(ptz_camera(h)),
            "camera.ptz_head.zero_pan_azimuth_deg"
        );
        let mut cam = ptz_camera(head(-170.0, 170.0, 0.0));
        cam.ptz = false;
        assert_eq!(field_of(cam), "camera.ptz");
        let mut cam = ptz_camera(head(-170.0, 170.0, 0.0));
        cam.vertical_fov_deg = Some(0.0);
        assert_eq!(field_of(cam), "camera.vertical_fov_deg");
        // the message carries the value and the limits
        let err = ptz_camera(head(-170.0, 170.0, 175.0))
            .validated()
            .unwrap_err()
            .to_string();
        assert!(err.contains("175") && err.contains("-170..=170"), "{err}");
    }

    #[test]
    fn health_follows_last_seen() {
        let mut cam = Camera::default();
        assert!(
            cam.is_online(1_000_000, 1_000),
            "unmonitored counts as online"
        );
        cam.last_seen = Some(10_000);
        assert!(cam.is_online(11_000, 1_000));
        assert!(!cam.is_online(11_001, 1_000));
        assert!(
            cam.is_online(5_000, 1_000),
            "a report from the future is fresh"
        );
    }
}
