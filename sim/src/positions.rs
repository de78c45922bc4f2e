//! Ping batching over `ReportPositions`, the way a fleet gateway would do it.
//!
//! Units put pings into one bounded queue (full: the ping is dropped and counted;
//! the unit's next ping supersedes it). This task drains the queue every
//! [`BATCH_INTERVAL`] into one `ReportPositionsRequest` on a long-lived client
//! stream, and closes the stream every `stream_period` to read the server's counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use patrol_proto::auth::Authed;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{Ping, ReportPositionsRequest};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

/// How long a ping waits in the queue at most before it is sent.
pub(crate) const BATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Batches buffered towards the server; beyond that a batch is dropped and counted.
const STREAM_QUEUE: usize = 64;
/// Reopen backoff after a failed stream: first and largest delay.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(10));

/// Runs until aborted, or until every unit's ping sender is gone.
pub(crate) async fn report_positions(
    mut units: UnitServiceClient<Authed>,
    mut pings: mpsc::Receiver<Ping>,
    stream_period: Duration,
    dropped_pings: Arc<AtomicU64>,
) {
    let (first, max) = BACKOFF;
    let mut backoff = first;
    let mut units_gone = false;
    while !units_gone {
        let (batches, stream) = mpsc::channel::<ReportPositionsRequest>(STREAM_QUEUE);
        let mut batches = Some(batches);
        let call = units.report_positions(ReceiverStream::new(stream));
        tokio::pin!(call);
        let close_at = Instant::now() + stream_period;
        let mut flush = tokio::time::interval(BATCH_INTERVAL);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                result = &mut call => break result,
                () = tokio::time::sleep_until(close_at), if batches.is_some() => batches = None,
                _ = flush.tick(), if batches.is_some() => {
                    let mut batch = Vec::new();
                    loop {
                        match pings.try_recv() {
                            Ok(ping) => batch.push(ping),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                units_gone = true;
                                break;
                            }
                        }
                    }
                    if let Some(tx) = &batches && !batch.is_empty() {
                        let n = batch.len() as u64;
                        match tx.try_send(ReportPositionsRequest { pings: batch }) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                dropped_pings.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(TrySendError::Closed(_)) => batches = None,
                        }
                    }
                    if units_gone {
                        batches = None;
                    }
                }
            }
        };
        match result {
            Ok(reply) => {
                backoff = first;
                let reply = reply.into_inner();
                info!(
                    accepted = reply.accepted,
                    duplicates = reply.duplicates,
                    rejected = reply.rejected,
                    dropped_locally = dropped_pings.swap(0, Ordering::Relaxed),
                    "positions reported"
                );
                if let Some(first) = reply.rejections.first() {
                    warn!(
                        unit = %first.unit_id, reason = first.reason().as_str_name(), message = %first.message,
                        "first rejected ping"
                    );
                }
            }
            Err(e) => {
                warn!(code = ?e.code(), message = e.message(), retry_in_ms = backoff.as_millis() as u64, "position stream failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}
