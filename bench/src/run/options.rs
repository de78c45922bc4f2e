//! What a run measures and how, resolved from the command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::cameras::CameraSpec;
use crate::checkpoint_stall::CheckpointSpec;
use crate::city::{Centre, City, CitySpec};
use crate::connect_storm::StormSpec;
use crate::ingest::IngestSpec;
use crate::secure::SecureSpec;
use crate::server::ServerSource;
use crate::urgent::UrgentSpec;

/// Which parts of the benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub ingest: bool,
    pub freshness: bool,
    pub recommend: bool,
    pub dispatch: bool,
    pub redis: bool,
    pub durability: bool,
    /// CreateIncident under a ping flood, Redis on (not in the default list).
    pub urgent: bool,
    /// Ingest while Watch screens connect at once (not in the default list).
    pub connect_storm: bool,
    /// Redis stalls during checkpoints (not in the default list).
    pub checkpoint_stall: bool,
    /// CamerasSeeing at each camera count and follow mode (not in the
    /// default list).
    pub cameras: bool,
    /// Ingest and Recommend without and with auth and TLS (not in the
    /// default list).
    pub secure: bool,
}

impl Phases {
    pub const ALL: Phases = Phases {
        ingest: true,
        freshness: true,
        recommend: true,
        dispatch: true,
        redis: true,
        durability: true,
        urgent: true,
        connect_storm: true,
        checkpoint_stall: true,
        cameras: true,
        secure: true,
    };
}

/// Everything a run needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Registered unit counts for ingest, memory, recommend and Redis.
    pub units: Vec<usize>,
    /// Unit counts for the core-only nearest query.
    pub core_units: Vec<usize>,
    pub seed: u64,
    pub clients: usize,
    pub batch: usize,
    pub phases: Phases,
    pub server: ServerSource,
    /// False: skip everything that needs patrold (core and Redis only).
    pub use_patrold: bool,
    pub redis_server: PathBuf,
    /// Length of each timed phase (ingest, throughput, freshness).
    pub phase_time: Duration,
    /// Watch coalescing interval the server is configured with, ms.
    pub interval_ms: u64,
    /// Unit count at which freshness and dispatch run.
    pub freshness_units: usize,
    /// Ingest rate during freshness, pings/s.
    pub freshness_rate: f64,
    /// Watch subscriber counts.
    pub subscribers: Vec<usize>,
    /// Recommend query points per pass.
    pub queries: usize,
    /// Recommend requests in flight for throughput.
    pub recommend_tasks: usize,
    pub dispatch_rounds: usize,
    pub workdir: PathBuf,
    /// Where the dense centre's units start.
    pub centre: Centre,
    /// The map the spawned patrold routes over (`--network`).
    pub network_map: Option<PathBuf>,
    /// Extra ingest runs (clients, batch) at `sweep_units`, both systems.
    pub sweep: Vec<(usize, usize)>,
    pub sweep_units: usize,
    /// Length of each sweep point.
    pub sweep_time: Duration,
    /// Where to write `perf record` profiles of the server per phase.
    pub profile: Option<PathBuf>,
    /// Units for `urgent`, and how it runs.
    pub urgent_units: usize,
    pub urgent: UrgentSpec,
    /// Units for `connect_storm`, and how it runs.
    pub storm_units: usize,
    pub storm: StormSpec,
    /// Units for `checkpoint_stall`, and how it runs.
    pub checkpoint_units: usize,
    pub checkpoint: CheckpointSpec,
    /// How `cameras` runs.
    pub cameras: CameraSpec,
    /// Units for `secure`, and how it runs.
    pub secure_units: usize,
    pub secure: SecureSpec,
}

/// The count in `units` nearest to `want` (`want` itself when there is none).
pub(super) fn nearest(units: &[usize], want: usize) -> usize {
    units
        .iter()
        .copied()
        .min_by_key(|&n| n.abs_diff(want))
        .unwrap_or(want)
}

impl Options {
    /// The unpaced ingest load of the timed phases.
    pub(super) fn ingest_spec(&self) -> IngestSpec {
        IngestSpec {
            clients: self.clients,
            batch: self.batch,
            duration: self.phase_time,
            rate: None,
            seed: self.seed,
        }
    }

    pub(super) fn city(&self, units: usize) -> City {
        let mut spec = CitySpec::new(self.seed, units);
        spec.centre = self.centre.clone();
        City::generate(spec)
    }

    /// Whether the ingest sweep runs at this unit count: the one of `--units`
    /// nearest to `sweep_units`.
    pub(super) fn sweep_here(&self, n: usize) -> bool {
        !self.sweep.is_empty() && nearest(&self.units, self.sweep_units) == n
    }

    /// The unit count at which freshness and dispatch run.
    pub(super) fn fresh_units(&self) -> usize {
        nearest(&self.units, self.freshness_units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_unit_count() {
        assert_eq!(nearest(&[10_000, 100_000, 1_000_000], 120_000), 100_000);
        assert_eq!(nearest(&[10_000, 1_000_000], 400_000), 10_000);
        assert_eq!(nearest(&[], 5), 5);
    }
}
