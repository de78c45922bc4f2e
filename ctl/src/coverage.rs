//! `patrolctl coverage`: how much of the map's streets the cameras see, for
//! cars and on foot, and the blind spots (optionally written as GeoJSON).

use anyhow::{Context, Result};
use clap::Args;
use patrol_proto::auth::Authed;
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use patrol_proto::v1::{self as pb, BoundingBox};

use crate::commands::call;
use crate::format::{metres, parse_bbox};

#[derive(Debug, Args)]
pub(crate) struct CoverageArgs {
    /// Only streets inside WEST,SOUTH,EAST,NORTH (degrees).
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true)]
    bbox: Option<BoundingBox>,
    /// Metres between judged points along a street (1..=100).
    #[arg(long, default_value_t = 5.0)]
    step: f64,
    /// Write the blind spots to this file as a GeoJSON FeatureCollection.
    #[arg(long, value_name = "FILE")]
    geojson: Option<std::path::PathBuf>,
}

pub(crate) async fn run(channel: Authed, args: CoverageArgs) -> Result<()> {
    let reply = CameraServiceClient::new(channel)
        .coverage(call(pb::CoverageRequest {
            bbox: args.bbox,
            include_segments: args.geojson.is_some(),
            step_m: args.step,
        }))
        .await?
        .into_inner();
    print!("{}", coverage_text(&reply));
    if let Some(path) = &args.geojson {
        std::fs::write(path, &reply.blind_spots_geojson)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("blind spots written to {}", path.display());
    }
    Ok(())
}

pub(crate) fn coverage_text(c: &pb::CoverageResponse) -> String {
    let line = |mode: &str, m: Option<&pb::ModeCoverage>| {
        let m = m.cloned().unwrap_or_default();
        format!(
            "{mode:<5} {:>5.1}% seen now, {:>5.1}% after turning, of {} of street\n",
            m.share_now * 100.0,
            m.share_after_turning * 100.0,
            metres(m.total_m)
        )
    };
    let mut out = line("car", c.car.as_ref());
    out.push_str(&line("foot", c.foot.as_ref()));
    out.push_str(&format!(
        "blind spots: {} stretches, {} no camera sees even after turning ({} points judged every {} m)\n",
        c.blind_spot_count,
        metres(c.blind_m),
        c.samples,
        c.step_m
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_percentages_per_mode() {
        let c = pb::CoverageResponse {
            car: Some(pb::ModeCoverage {
                total_m: 12_000.0,
                share_now: 0.166,
                share_after_turning: 0.25,
                ..Default::default()
            }),
            foot: Some(pb::ModeCoverage {
                total_m: 30_500.0,
                share_now: 0.1449,
                share_after_turning: 0.2,
                ..Default::default()
            }),
            step_m: 5.0,
            samples: 8_500,
            blind_m: 25_000.0,
            blind_spot_count: 412,
            ..Default::default()
        };
        let text = coverage_text(&c);
        assert!(
            text.starts_with("car    16.6% seen now,  25.0% after turning, of 12.0 km"),
            "{text}"
        );
        assert!(
            text.contains("foot   14.5% seen now,  20.0% after turning, of 30.5 km"),
            "{text}"
        );
        assert!(
            text.contains("blind spots: 412 stretches, 25.0 km"),
            "{text}"
        );
    }
}
