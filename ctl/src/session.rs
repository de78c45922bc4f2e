//! The long-lived streams: `watch` (the command room) and `orders` (one
//! unit's dispatch orders). Both reconnect with backoff when the stream
//! breaks; `watch` resumes after the last seq it applied and says so.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use patrol_proto::auth::Authed;
use patrol_proto::v1::command_room_client::CommandRoomClient;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{ReceiveOrdersRequest, WatchRequest};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::{Code, Status};

use crate::cli::WatchArgs;
use crate::commands::{now_ms, order_line};
use crate::watch::{RoomState, View, render, summary, terminal};

/// The live view is redrawn this often (ages change even when nothing else does).
const REDRAW_EVERY: Duration = Duration::from_millis(500);

/// Reconnect delays: doubling from `FIRST` up to `MAX`, reset by any message.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}

/// Whether a failed stream is worth reopening: transport trouble and server
/// restarts are; a request the server refuses is not.
fn retryable(code: Code) -> bool {
    !matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Redraw the whole view in place.
    Live,
    /// One line per event on stdout; notices and warnings on stderr.
    Log,
    /// Print the view once after the snapshot, then stop.
    Once,
}

/// Why one watch stream stopped.
enum Stop {
    /// The user pressed Ctrl-C, `--count` was reached or `--once` printed.
    Done,
    Broken(String),
}

/// Output side of the watch command: the terminal and the notices.
struct Screen {
    mode: Mode,
    view: View,
}

impl Screen {
    fn notice(&self, state: &mut RoomState, text: String) {
        match self.mode {
            Mode::Log => eprintln!("patrolctl: {text}"),
            Mode::Live | Mode::Once => state.note(now_ms(), text),
        }
    }

    /// Redraws the live view in place.
    fn draw(&self, state: &mut RoomState) {
        let now = now_ms();
        state.tick(now);
        let text = terminal::frame(&render(state, &self.view, now));
        let mut out = std::io::stdout().lock();
        // A closed terminal is noticed on the next Ctrl-C; nothing to do here.
        let _ = write!(out, "{text}");
        let _ = out.flush();
    }
}

/// `patrolctl watch`: follows the command room until Ctrl-C, `--count` or
/// `--once`. Fails at the end if any seq gap was seen.
pub(crate) async fn watch(server: &str, channel: Authed, args: WatchArgs) -> Result<()> {
    let mode = match (args.log, args.once) {
        (true, _) => Mode::Log,
        (false, true) => Mode::Once,
        (false, false) => Mode::Live,
    };
    let mut view = View::new(server, args.bbox);
    view.max_units = args.max_units;
    let screen = Screen { mode, view };
    let mut client = CommandRoomClient::new(channel);
    let mut state = RoomState::new(args.bbox.is_some());
    if let Some(seq) = args.resume_after {
        state.resume_from(seq, args.epoch.unwrap_or(0));
    }
    let mut backoff = Backoff::new();
    let mut redraw = tokio::time::interval(REDRAW_EVERY);
    redraw.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    if mode == Mode::Live {
        print!("{}", terminal::CLEAR_SCREEN);
    }
    let mut received: u64 = 0;
    let mut reconnecting = false;

    loop {
        let resume = state.resume_point();
        let request = WatchRequest {
            bbox: args.bbox,
            resume_after_seq: resume,
            resume_epoch: state.epoch(),
        };
        let opened = tokio::select! {
            _ = &mut ctrl_c => break,
            opened = client.watch(request) => opened,
        };
        let stop = match opened {
            Err(status) => broken(status)?,
            Ok(response) => {
                state.set_connection("live");
                if reconnecting {
                    let how = if resume > 0 {
                        format!("resuming after seq {resume}")
                    } else {
                        "starting with a snapshot".to_string()
                    };
                    screen.notice(&mut state, format!("reconnected; {how}"));
                }
                let mut stream = response.into_inner();
                loop {
                    let message = tokio::select! {
                        _ = &mut ctrl_c => break Stop::Done,
                        _ = redraw.tick(), if mode == Mode::Live => {
                            screen.draw(&mut state);
                            continue;
                        }
                        message = stream.message() => message,
                    };
                    let event = match message {
                        Ok(Some(event)) => event,
                        Ok(None) => break Stop::Broken("the server ended the stream".into()),
                        Err(status) => break broken(status)?,
                    };
                    backoff.reset();
                    received += 1;
                    let applied = state.apply(&event, now_ms());
                    if mode == Mode::Log {
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{}", applied.log_line)
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            // The reader went away (`| head`): stop quietly.
                            break Stop::Done;
                        }
                        for warning in &applied.warnings {
                            eprintln!("patrolctl: WARNING: {warning}");
                        }
                    }
                    if mode == Mode::Once && applied.snapshot_done {
                        state.tick(now_ms());
                        print!("{}", render(&state, &screen.view, now_ms()));
                        break Stop::Done;
                    }
                    if args.count.is_some_and(|count| received >= count) {
                        break Stop::Done;
                    }
                }
            }
        };
        let Stop::Broken(reason) = stop else { break };

        state.stream_restarted();
        reconnecting = true;
        let delay = backoff.next_delay();
        state.set_connection(format!("reconnecting: {reason}"));
        let text = format!(
            "{reason}; reconnecting in {:.1}s with resume_after_seq={}",
            delay.as_secs_f64(),
            state.resume_point()
        );
        screen.notice(&mut state, text);
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return finish(&state, mode),
                _ = tokio::time::sleep_until(until) => break,
                _ = redraw.tick(), if mode == Mode::Live => screen.draw(&mut state),
            }
        }
    }
    if mode == Mode::Live {
        screen.draw(&mut state);
    }
    finish(&state, mode)
}

/// The reason to reconnect, or the error that ends the command.
fn broken(status: Status) -> Result<Stop> {
    if retryable(status.code()) {
        Ok(Stop::Broken(format!(
            "stream broke ({:?}: {})",
            status.code(),
            status.message()
        )))
    } else {
        Err(status.into())
    }
}

fn finish(state: &RoomState, mode: Mode) -> Result<()> {
    if mode == Mode::Log {
        eprintln!("patrolctl: {}", summary(state));
    }
    if let Some(last) = state.gaps().last() {
        bail!(
            "{} seq gaps seen in the command-room stream; last: {}",
            state.gaps().len(),
            last.describe()
        );
    }
    Ok(())
}

/// `patrolctl orders UNIT`: prints each order for the unit until the server
/// ends the stream (another terminal took the unit over) or Ctrl-C. On a
/// broken connection it reconnects; the server then re-sends the current
/// order, which is printed only once.
pub(crate) async fn orders(mut client: UnitServiceClient<Authed>, unit_id: String) -> Result<()> {
    let mut backoff = Backoff::new();
    let mut printed: HashSet<String> = HashSet::new();
    loop {
        let request = ReceiveOrdersRequest {
            unit_id: unit_id.clone(),
        };
        let failure = match client.receive_orders(request).await {
            Err(status) => status,
            Ok(response) => {
                eprintln!("patrolctl: following orders for {unit_id} (Ctrl-C to stop)");
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(order)) => {
                            backoff.reset();
                            if printed.insert(order.order_id.clone()) {
                                println!("{}", order_line(&order));
                            }
                        }
                        Ok(None) => {
                            eprintln!(
                                "patrolctl: the server ended the order stream \
                                 (another terminal may have taken over {unit_id})"
                            );
                            return Ok(());
                        }
                        Err(status) => break status,
                    }
                }
            }
        };
        if !retryable(failure.code()) {
            return Err(failure.into());
        }
        let delay = backoff.next_delay();
        eprintln!(
            "patrolctl: order stream broke ({:?}: {}); reconnecting in {:.1}s",
            failure.code(),
            failure.message(),
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        b.reset();
        assert_eq!(b.next_delay(), Backoff::FIRST);
    }

    #[test]
    fn refused_requests_are_not_retried() {
        assert!(retryable(Code::Unavailable));
        assert!(retryable(Code::Unknown));
        assert!(!retryable(Code::InvalidArgument));
        assert!(!retryable(Code::Unimplemented));
    }
}
