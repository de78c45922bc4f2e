//! `patrolctl`: the operator's command line for `patrold`.
//!
//! Watch the command room live, list units, cameras and incidents, ask who is
//! closest, dispatch, move incidents through their lifecycle, and play a unit
//! terminal or a camera (ping, orders, alert) for drills and tests. Enum values
//! are lowercase words (`en_route`, `e_bike`); times are UTC.
//!
//! On failure it prints `error: <gRPC code>: <message>` to stderr and exits 1.
//!
//! # Layout
//! - `auth`: which credential a call carries; login, logout, whoami, auth, audit.
//! - `cli`: the clap definitions of every command and flag.
//! - `commands`: one-shot commands (request, call, print) and their formatting.
//! - `session`: the long-lived streams (`watch`, `orders`) with reconnect and backoff.
//! - `watch`: the command room as `watch` sees it: the state built from
//!   `WatchEvent`s (snapshots, gaps, resync, resume), how each event is told,
//!   the plain-text view and its terminal framing; all pure.
//! - `cameras`: video patrol (`seeing`, `aim`, `aim-all`, `follow`, `along`).
//! - `tracks`: `track ...` (a suspect followed from camera to camera) and `zones`.
//! - `format`: enum words, bounding boxes, times, ages, tables.

mod auth;
mod cameras;
mod cli;
mod commands;
mod coverage;
mod format;
mod session;
mod tracks;
mod watch;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", commands::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}
