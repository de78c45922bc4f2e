//! `patrold`: the patrol dispatch server. tonic services over the pure
//! [`patrol_dispatcher`] core, all state in memory by default.
//!
//! # Concurrency
//! One mutex around the core, one ordered event log beside it (see [`hub`] for
//! why this beats an actor here): ingest takes the lock once per ping batch, a
//! change and its log entries are made in one critical section, and every
//! command-room subscriber reads the log at its own pace from its own task.
//! Positions are coalesced per unit and published once per interval.
//!
//! # Layout
//! - [`config`]: the one versioned configuration struct.
//! - [`command`]: every change as one value, and the one place applying it.
//! - [`durable`]: Redis: the region's log, replay, checkpoints.
//! - [`hub`]: shared state: core + event log + terminal order routes; the lock design.
//! - [`api`]: the four gRPC services.
//! - [`watch`]: one command-room subscriber (snapshot, resume, lag → resync).
//! - [`convert`]: wire ↔ domain, one module per direction.
//! - [`status`]: the one place mapping domain errors to gRPC codes.
//! - [`telemetry`]: metric names, the Prometheus recorder and the HTTP server.
//! - [`server`]: start, serve and shut down one node.

pub mod api;
pub mod command;
pub mod config;
pub mod convert;
pub mod durable;
pub mod hub;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod watch;

pub use config::Config;
pub use server::{RunningServer, start};
