//! `patrol-bench`: measures a patrold through its public gRPC API and, in the
//! same run on the same machine, the alternative a command centre would build
//! on Redis (`GEOADD` positions, `GEOSEARCH ... BYRADIUS ... ASC COUNT 5` over
//! a set of available units). It prints patrol's figure, Redis's figure and
//! the ratio for ingest, memory and recommend, plus freshness of the `Watch`
//! stream, the dispatch round trip and the core's nearest query alone, and
//! checks them against the targets of the issue.
//!
//! The load generator runs on the same machine as the servers; its own CPU use,
//! and what every other process on the machine used meanwhile, are reported
//! beside the server's.
//!
//! # Running
//! ```text
//! cargo build --release -p patrol-bench -p patrol-services
//! target/release/patrol-bench --quick --json     # under a minute
//! target/release/patrol-bench --markdown out.md  # the full run, 10k/100k/1M units
//! ```
//! It spawns `patrold` from next to its own executable (or `--patrold PATH`,
//! or `--server URL [--server-pid PID]`) and its own `redis-server` on a free
//! port. `--no-patrold` runs only the core and the Redis side, `--runs 3`
//! reports medians, `--profile DIR` leaves a `perf record` of the server per
//! measured phase, `--helsinki` starts the dense centre on central Helsinki's
//! real street network.
//!
//! # Layout
//! - [`city`]: the seeded city (dense centre, spread rest, 40% busy) and its
//!   moving units; the same positions go to patrold, the core and Redis.
//! - [`server`]: spawning (or reaching) patrold on free ports; gRPC channels.
//! - [`load`]: registering units, sending positions, marking units busy.
//! - [`ingest`]: concurrent `ReportPositions` streams, flat out or paced.
//! - [`watch_scan`]: a `Watch` client codec that reads only fix times.
//! - [`freshness`]: ping-to-`Watch` latency with 1 and 100 subscribers.
//! - [`recommend`]: `Recommend` over gRPC and the core's query in-process.
//! - [`dispatch`]: `Dispatch` to the order on `ReceiveOrders`.
//! - [`durability`]: ingest and freshness in memory vs with Redis on.
//! - [`flood`]: a ping flood, one batch per `ReportPositions` call, every
//!   reply counted (accepted, refused, failed by code, when).
//! - [`urgent`]: `CreateIncident` and `Dispatch` latency under a ping flood
//!   that fills the server's queue for Redis, vs without it.
//! - [`connect_storm`]: ingest while many `Watch` screens connect at once.
//! - [`checkpoint_stall`]: the longest Redis stall while checkpoints are
//!   written, with [`redis_probe`] sending `PING` every millisecond.
//! - [`redis_alt`]: the Redis way: its own `redis-server`, pipelined
//!   `GEOADD`, the radius-doubling `GEOSEARCH`.
//! - [`cameras`]: `CamerasSeeing` at 10k..1M cameras and the cost of
//!   follow mode under a moving unit load.
//! - [`secure`]: the cost of TLS and authentication: ingest and `Recommend`
//!   on plaintext without auth, bearer tokens, TLS and mutual TLS.
//! - [`proc_stats`]: CPU time and RSS from `/proc`.
//! - [`heap`]: a counting allocator, for the core's exact heap per unit.
//! - [`profile`]: optional `perf record` of the server around a phase.
//! - [`report`]: histograms, the comparison table, targets and JSON.
//! - [`run`]: the phases in order, per unit count.

pub mod cameras;
pub mod checkpoint_stall;
pub mod city;
pub mod connect_storm;
pub mod dispatch;
pub mod durability;
pub mod flood;
pub mod freshness;
pub mod heap;
pub mod ingest;
pub mod load;
pub mod proc_stats;
pub mod profile;
pub mod recommend;
pub mod redis_alt;
pub mod redis_probe;
pub mod report;
pub mod run;
pub mod secure;
pub mod server;
pub mod urgent;
pub mod watch_scan;
