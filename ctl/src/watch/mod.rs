//! `patrolctl watch`'s picture of the command room: built only from
//! `WatchEvent`s, then drawn.
//!
//! Everything here is pure: no network and no clock (times come in as
//! `now_ms`, Unix milliseconds), so tests replay a stream event by event. The
//! reconnecting stream around it is in `session.rs`.
//!
//! # Layout
//! - `state`: [`RoomState`], the client's copy of the room: snapshots,
//!   changes, resync, resume.
//! - `cursor`: the position in the server's log (last seq, epoch) and the
//!   sequence rules; a break is a [`Gap`].
//! - `describe`: the `--log` line and the recent-events text of each event.
//! - `rate`: changes per second for the header.
//! - `render`: the view as plain text ([`View`], [`render`], [`summary`]).
//! - `terminal`: ANSI framing of the rendered text for in-place redraws.

mod cursor;
mod describe;
#[cfg(test)]
mod fixtures;
mod rate;
mod render;
mod state;
pub(crate) mod terminal;

pub(crate) use render::{View, render, summary};
pub(crate) use state::RoomState;
