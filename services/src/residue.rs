//! What a node holds for its clients right now, to show that clients who
//! vanish, never read or send garbage leave nothing behind: once they are
//! gone, every count is back where it was.
//!
//! Read with [`Hub::residue`]. The counts come from the state itself (the
//! order routes, the subscribers' own queues), not from metrics, so several
//! nodes in one process (tests) each count their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use patrol_proto::shared::EncodedWatchEvent;
use tokio::sync::mpsc;
use tonic::Status;

use crate::hub::Hub;
use crate::telemetry as m;

/// Counts of what one node holds for its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Residue {
    /// Running `Watch` subscribers (one task each).
    pub watch_subscribers: usize,
    /// Events waiting in those subscribers' queues to their clients (each
    /// queue holds at most `watch.subscriber_buffer`; the events' bytes are
    /// shared with the command-room history).
    pub watch_queued: usize,
    /// Units with an open `ReceiveOrders` stream.
    pub order_routes: usize,
    /// Encoded bytes of the command-room history (bounded by
    /// `watch.history_bytes`, whoever reads or does not).
    pub history_bytes: usize,
}

type WatchTx = mpsc::Sender<Result<EncodedWatchEvent, Status>>;

/// The running `Watch` subscribers of a node, each by the sending side of
/// its queue.
#[derive(Default)]
pub struct Watchers {
    next: AtomicU64,
    queues: Arc<Mutex<HashMap<u64, WatchTx>>>,
}

impl Watchers {
    /// Counts a subscriber until the returned guard is dropped (also when
    /// its task is cancelled).
    pub fn enter(&self, tx: WatchTx) -> Watching {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.queues).insert(id, tx);
        metrics::gauge!(m::WATCH_SUBSCRIBERS).increment(1.0);
        Watching {
            id,
            queues: self.queues.clone(),
        }
    }

    /// (subscribers, events queued to their clients).
    fn counts(&self) -> (usize, usize) {
        let queues = lock(&self.queues);
        let queued = queues
            .values()
            .map(|tx| tx.max_capacity() - tx.capacity())
            .sum();
        (queues.len(), queued)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One counted subscriber; see [`Watchers::enter`].
pub struct Watching {
    id: u64,
    queues: Arc<Mutex<HashMap<u64, WatchTx>>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        lock(&self.queues).remove(&self.id);
        metrics::gauge!(m::WATCH_SUBSCRIBERS).decrement(1.0);
    }
}

impl Hub {
    /// What this node holds for its clients now.
    pub fn residue(&self) -> Residue {
        let node = self.node();
        let (watch_subscribers, watch_queued) = node.watchers().counts();
        Residue {
            watch_subscribers,
            watch_queued,
            order_routes: node.order_routes(),
            history_bytes: node.history_bytes(),
        }
    }
}
