//! The street and footpath network patrol units travel on: where a point is on
//! it, and how long each kind of unit takes to get from one place to another
//! over real streets, one-way rules, footways and steps.
//!
//! Pure: no tokio, no clock, no I/O outside [`osm`]. Coordinates are WGS84
//! degrees with x = longitude and y = latitude; distances are metres; times are
//! seconds (milliseconds inside the graph); angles are degrees clockwise from
//! north. Map data loaded from OpenStreetMap is (c) OpenStreetMap contributors,
//! ODbL 1.0.
//!
//! ```no_run
//! use patrol_roads::{LonLat, Metric, Profile, ProfileConfig, ReverseSearch};
//!
//! let map = patrol_roads::osm::load("data/helsinki.osm.pbf", &ProfileConfig::default())?;
//! let graph = &map.graph;
//! let incident = graph.snap(LonLat::new(24.9458, 60.1699), Profile::Foot, 100.0).unwrap();
//! let officer = graph.snap(LonLat::new(24.9440, 60.1690), Profile::Foot, 100.0).unwrap();
//! let mut search = ReverseSearch::new(graph, Metric::normal(Profile::Foot), &incident);
//! let eta = search.eta_from(&officer).unwrap();
//! println!("{:.0} s over {:.0} m", eta.seconds, eta.metres);
//! # Ok::<(), patrol_roads::Error>(())
//! ```
//!
//! # Layout
//! - [`geo`]: [`LonLat`], great-circle metres, bearings, a local projection.
//! - [`graph`]: [`RoadGraph`], the CSR graph with forward and reverse
//!   adjacency and per-profile edge times, built by [`GraphBuilder`] from ways
//!   and their [`WayAttributes`]; its stable fingerprint.
//! - [`profile`]: [`Profile`], [`Metric`] and [`ProfileConfig`]: who may use
//!   which way and how fast, including emergency mode.
//! - [`snap`]: [`Snap`], the nearest usable edge to a point (an R-tree).
//! - [`route`]: one-to-one Dijkstra ([`RoadGraph::route`]) and the lazy
//!   many-to-one [`ReverseSearch`].
//! - [`reach`]: everything within a distance of a position
//!   ([`RoadGraph::reach`]) and the way straight ahead ([`RoadGraph::ahead`]),
//!   for predicting where a followed target goes.
//! - [`osm`]: reading an `.osm.pbf` extract into a graph, its cameras and its
//!   street names; the only module that touches files.
//! - [`error`]: the crate's [`Error`].

#![warn(missing_docs)]

pub mod error;
pub mod geo;
pub mod graph;
#[cfg(feature = "osm")]
pub mod osm;
pub mod profile;
pub mod reach;
pub mod route;
pub mod snap;

pub use crate::error::Error;
pub use crate::geo::{Bounds, EARTH_RADIUS_M, LocalProjection, LonLat};
pub use crate::graph::{
    Access, EdgeId, FORBIDDEN, GraphBuilder, NodeId, Oneway, RoadGraph, Sidewalk, WayAttributes,
    WayClass,
};
pub use crate::profile::{
    BikeConfig, EmergencyConfig, FootConfig, Metric, MotorConfig, Profile, ProfileConfig,
    RoadSpeeds,
};
pub use crate::reach::{Ahead, Reach, ReachPiece};
pub use crate::route::{Eta, ReverseSearch, Route, SearchScratch};
pub use crate::snap::Snap;
