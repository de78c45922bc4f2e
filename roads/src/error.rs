//! The crate's errors, each something a caller can act on.

use std::path::PathBuf;

/// What can go wrong building or loading a street network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A profile setting is out of range: names the field and its value.
    #[error("invalid profile setting {field} = {value}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `car.speeds_kmh.primary`.
        field: String,
        /// Its value as given.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// The map file cannot be opened or is not a valid `.osm.pbf`.
    #[cfg(feature = "osm")]
    #[error("cannot read map {}: {source}", path.display())]
    Map {
        /// The file.
        path: PathBuf,
        /// What the PBF reader said.
        #[source]
        source: osmpbf::Error,
    },
    /// The map holds no street any profile may use.
    #[error("map {} has no street network", path.display())]
    NoNetwork {
        /// The file.
        path: PathBuf,
    },
}
