//! `patrold`: the patrol dispatch server. tonic services over the pure
//! [`patrol_dispatcher`] core, all state in memory by default, or durable and
//! shared by several nodes in Redis.
//!
//! # How a change flows
//! A request is converted and validated once ([`convert::from_wire`]),
//! admitted by its credential and role ([`auth`]), stamped with who sent it
//! and when ([`hub::Origin`]), and becomes an
//! [`command::Envelope`]. The [`sequencer`] orders it: in memory it is
//! applied at once; with Redis it is appended to the region's log first
//! ([`durable`]) and every node applies the log in order. The
//! [`node::NodeState`] applies it to the core, logs its events for the
//! command room and routes new orders to terminals. Errors are one type,
//! [`error::ServerError`], mapped to gRPC codes in one place.
//!
//! # Layout
//! - [`config`]: the one versioned configuration struct.
//! - [`command`]: every change as one validated value, its envelope and lane.
//! - [`convert`]: wire ↔ domain, one module per direction.
//! - [`error`]: [`error::ServerError`] and its gRPC / HTTP codes.
//! - [`node`]: the synchronous node state (core, command-room log, order
//!   routes, shared snapshots); the lock design.
//! - [`sequencer`]: where commands are ordered (memory or Redis).
//! - [`durable`]: Redis: the region's log, its lanes, the log reader,
//!   checkpoints.
//! - [`hub`]: the typed methods the services call.
//! - [`auth`]: credentials, roles and scopes; the layer every call passes.
//! - [`limits`]: per-caller rates and streams, the Watch subscriber cap.
//! - [`audit`]: who did what, when: the audit log (memory or Redis).
//! - [`api`]: the gRPC services.
//! - [`watch`]: one command-room subscriber (snapshot, resume, lag → resync,
//!   boxes).
//! - [`telemetry`]: metric names, the Prometheus recorder and the HTTP server.
//! - `tls`: TLS and mutual TLS on both ports (rustls), reloaded from its
//!   files without a restart; the client certificate's identity.
//! - [`frigate`]: the Frigate NVR bridge (MQTT events to alerts).
//! - [`clock`]: the only clock the server reads.
//! - [`residue`]: what a node holds for its clients (subscribers, queued
//!   events, order routes), to show that vanished clients leave nothing.
//! - [`server`]: start, serve and shut down one node.
//! - `fuzz` (tests only): proptest generators of hostile input for every
//!   decoder (ping batches, alerts, zones, Frigate events, config files).

pub mod api;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod command;
pub mod config;
pub mod convert;
pub mod durable;
pub mod error;
pub mod frigate;
pub mod hub;
pub mod limits;
pub mod node;
pub mod residue;
pub mod sequencer;
pub mod server;
pub mod telemetry;
mod tls;
pub mod watch;

#[cfg(test)]
mod fuzz;

pub use config::Config;
pub use server::{RunningServer, start};
