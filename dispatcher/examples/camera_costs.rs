//! What the camera index costs: `seeing` latency (the 20 best cameras for a
//! point) at 10k, 100k and 1M cameras spread over a 30 x 30 km city and
//! packed into a 2 km² centre, `along` (the first 50 cameras on 5 km routes), registration, rebuild, sweep and snapshot times, and bytes
//! per camera (the index's own accounting and a counting allocator).
//!
//! Prints; asserts nothing. Run in release:
//!
//! ```text
//! cargo run -p patrol-dispatcher --release --example camera_costs [max_cameras]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use patrol_dispatcher::*;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes.
struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counter only
// observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NOW: Millis = 1_700_000_000_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// A square area: its centre and side in metres.
#[derive(Clone, Copy)]
struct Area {
    name: &'static str,
    centre: LonLat,
    side_m: f64,
}

impl Area {
    fn point(&self, rng: &mut Rng) -> LonLat {
        let half = self.side_m / 2.0;
        let (dx, dy) = (rng.range(-half, half), rng.range(-half, half));
        let lat = self.centre.lat + (dy / 6_371_008.8).to_degrees();
        let lon = self.centre.lon
            + (dx / (6_371_008.8 * self.centre.lat.to_radians().cos())).to_degrees();
        LonLat::new(lon, lat)
    }
}

/// Three in four fixed (40-100 degrees, 30-150 m), one in four PTZ (30-60
/// degrees, 100-300 m, half with continuous pan), all reporting health.
fn camera(i: usize, area: &Area, rng: &mut Rng) -> Camera {
    let at = area.point(rng);
    let mut cam = Camera {
        id: format!("cam-{i:07}"),
        name: format!("Camera {i}"),
        at,
        mount_height_m: rng.range(3.0, 12.0),
        heading_deg: rng.range(0.0, 360.0),
        fov_deg: rng.range(40.0, 100.0),
        range_m: rng.range(30.0, 150.0),
        last_seen: Some(NOW - 10_000),
        ..Camera::default()
    };
    if rng.next() < 0.25 {
        let continuous = rng.next() < 0.5;
        let (pan_min, pan_max) = if continuous {
            (-180.0, 180.0)
        } else {
            (-170.0, 170.0)
        };
        cam.ptz = true;
        cam.fov_deg = rng.range(30.0, 60.0);
        cam.range_m = rng.range(100.0, 300.0);
        cam.ptz_head = Some(Ptz {
            zero_pan_azimuth_deg: rng.range(0.0, 360.0),
            pan_min_deg: pan_min,
            pan_max_deg: pan_max,
            tilt_min_deg: 0.0,
            tilt_max_deg: 90.0,
            pose: PtzPose {
                pan_deg: rng.range(pan_min, pan_max),
                tilt_deg: rng.range(5.0, 30.0),
                zoom: rng.next(),
            },
        });
    }
    cam
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn run(n: usize, area: Area) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let before = LIVE.load(Ordering::Relaxed);
    let mut d = Dispatcher::new(DispatcherConfig::default());
    let mut register = Duration::ZERO;
    for i in 0..n {
        let cam = camera(i, &area, &mut rng);
        let t = Instant::now();
        d.register_camera(cam).unwrap();
        register += t.elapsed();
        d.take_events();
    }
    let heap = LIVE.load(Ordering::Relaxed) - before;
    let accounted = d.camera_index().memory();

    // seeing: the 20 best cameras for random points
    let queries = 3_000;
    let mut times = Vec::with_capacity(queries);
    let mut answers = 0usize;
    let mut all = 0usize;
    for q in 0..queries {
        let target = area.point(&mut rng);
        let t = Instant::now();
        let sights = d.cameras_seeing(target, NOW, 20).unwrap();
        times.push(t.elapsed());
        answers += sights.len();
        if q % 10 == 0 {
            all += d
                .cameras_seeing(target, NOW, MAX_CAMERA_ANSWERS)
                .unwrap()
                .len();
        }
    }
    times.sort();
    // along: 5 km routes of 50 legs, 10 m corridor, the first 50 cameras
    let mut along_times = Vec::new();
    let mut along_found = 0usize;
    for _ in 0..40 {
        let mut p = area.point(&mut rng);
        let mut heading = rng.range(0.0, 360.0);
        let mut path = vec![p];
        for _ in 0..50 {
            heading += rng.range(-40.0, 40.0);
            p = p.destination(heading, 100.0);
            path.push(p);
        }
        let t = Instant::now();
        let found = d.cameras_along(&path, 10.0, NOW, 50).unwrap();
        along_times.push(t.elapsed());
        along_found += found.len();
    }
    along_times.sort();

    let t = Instant::now();
    let changed = d.sweep_offline_cameras(NOW);
    let sweep = t.elapsed();
    assert_eq!(changed, 0);
    let t = Instant::now();
    let copy = d.snapshot_copy();
    let snapshot = t.elapsed();
    drop(copy);
    let state = d.export_all();
    drop(d);
    let t = Instant::now();
    let restored = Dispatcher::restore(DispatcherConfig::default(), state).unwrap();
    let restore = t.elapsed();
    let rebuilt_accounted = restored.camera_index().memory().total();
    drop(restored);

    println!(
        "{n:>8} cameras, {:<14} | seeing p50 {:>9} p99 {:>9} max {:>9} | {:>6.1} answers (all: {:>7.1}) | along 5 km p50 {:>9} p99 {:>9}, {:>6.1} cameras | register {:>9} ({:.2} us each), restore {:>9}, sweep {:>8}, snapshot copy {:>9} | {:>4.0} B/camera heap, {:>4.0} accounted (table {:.0}, strings {:.0}, ids {:.0}, trees {:.0}); rebuilt {:>4.0} accounted",
        area.name,
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        us(*times.last().unwrap()),
        answers as f64 / queries as f64,
        all as f64 / (queries / 10) as f64,
        us(percentile(&along_times, 0.5)),
        us(percentile(&along_times, 0.99)),
        along_found as f64 / along_times.len() as f64,
        ms(register),
        register.as_secs_f64() * 1e6 / n as f64,
        ms(restore),
        ms(sweep),
        ms(snapshot),
        heap as f64 / n as f64,
        accounted.total() as f64 / n as f64,
        accounted.table as f64 / n as f64,
        accounted.strings as f64 / n as f64,
        accounted.id_table as f64 / n as f64,
        accounted.tree as f64 / n as f64,
        rebuilt_accounted as f64 / n as f64,
    );
}

fn main() {
    let max: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let helsinki = LonLat::new(24.94, 60.17);
    let city = Area {
        name: "30 x 30 km",
        centre: helsinki,
        side_m: 30_000.0,
    };
    let centre = Area {
        name: "2 km² centre",
        centre: helsinki,
        side_m: 2_000_000f64.sqrt(),
    };
    println!(
        "size_of::<Camera>() = {} B; fixed 75 % (40-100 deg, 30-150 m), PTZ 25 % (30-60 deg, 100-300 m)",
        std::mem::size_of::<Camera>()
    );
    for n in [10_000, 100_000, 1_000_000] {
        if n > max {
            break;
        }
        for area in [city, centre] {
            run(n, area);
        }
    }
}
