//! The log reader: reads the region's stream in order and applies every entry
//! to this node's state, for as long as the node runs.
//!
//! Each read also fetches the trim point the checkpointer recorded. If this
//! node's position is older than it, entries it never applied may have been
//! trimmed: rather than carry on past a hole (and diverge from every other
//! node without anyone noticing), it rebuilds its state from the newest
//! checkpoint and continues after it (`patrol_log_reloads_total`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use patrol_dispatcher::{Dispatcher, DispatcherConfig, Millis};
use prost::Message;
use redis::Value;
use tokio::sync::oneshot;

use super::checkpoint::{self, Checkpointer, parse_id};
use super::entry::LogEntry;
use super::{Conn, RedisLog, connect};
use crate::command::Command;
use crate::node::NodeState;
use crate::telemetry as m;

/// How many entries one read takes (and one core lock covers).
const READ_COUNT: usize = 256;

/// One stream entry as read: its id and its encoded [`LogEntry`].
type RawEntry = (String, Bytes);

/// Everything the reader needs.
pub struct Reader {
    pub node: Arc<NodeState>,
    pub log: Arc<RedisLog>,
    /// To rebuild the core from a checkpoint.
    pub dispatcher: DispatcherConfig,
    /// The alert time check for entries of older builds.
    pub future_tolerance_ms: Millis,
    /// The last entry already applied ("0-0": none).
    pub after: String,
    /// Told once everything in the log at start has been applied.
    pub caught_up: Option<oneshot::Sender<()>>,
}

impl Reader {
    /// Reads and applies until the task is aborted.
    pub async fn run(mut self) {
        let config = self.log.config().clone();
        let timeout = Duration::from_millis(config.response_timeout_ms);
        let mut conn = match connect(&config, timeout).await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "log reader cannot connect; falling back to the writer's connection");
                self.log.conn()
            }
        };
        let block_ms = (config.response_timeout_ms / 3).clamp(50, 1_000);
        let mut failures = 0u32;
        let mut checkpointer = Checkpointer::new(&self.log);
        loop {
            if checkpointer.due() {
                checkpointer.claim().await;
            }
            let block = self.caught_up.is_none().then_some(block_ms);
            let (entries, trimmed) = match read(&mut conn, &self.log, &self.after, block).await {
                Ok(read) => {
                    if failures > 0 {
                        tracing::info!(after = %self.after, "log reader reconnected to redis");
                    }
                    failures = 0;
                    read
                }
                Err(err) => {
                    failures += 1;
                    metrics::counter!(m::REDIS_ERRORS, "op" => "read").increment(1);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %err, failures, "log reader: redis read failed; retrying");
                    }
                    let backoff = Duration::from_millis((25u64 << failures.min(5)).min(1_000));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            if let Some(trimmed) = trimmed
                && is_before(&self.after, &trimmed)
            {
                metrics::counter!(m::LOG_RELOADS).increment(1);
                tracing::warn!(after = %self.after, trimmed = %trimmed, "this node fell behind the log's trim point; rebuilding from the checkpoint");
                match self.reload(&mut conn).await {
                    Ok(()) => checkpointer.reset(),
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "rebuilding from the checkpoint failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                continue;
            }
            let Some((last, _)) = entries.last() else {
                if let Some(tx) = self.caught_up.take() {
                    let _ = tx.send(());
                }
                continue;
            };
            self.after = last.clone();
            let applied = self.apply(entries, &mut checkpointer);
            metrics::counter!(m::LOG_ENTRIES_APPLIED).increment(applied as u64);
        }
    }

    /// Applies a run of entries under one core lock.
    fn apply(&self, entries: Vec<RawEntry>, checkpointer: &mut Checkpointer) -> usize {
        let mut applier = self.node.applier();
        let count = entries.len();
        for (id, bytes) in entries {
            let entry = match LogEntry::decode(bytes) {
                Ok(entry) => entry,
                Err(err) => {
                    // Skipped the same way on every node, so they stay in step.
                    tracing::error!(id = %id, error = %err, "log entry does not decode; skipped");
                    continue;
                }
            };
            let (origin, request) = (entry.origin, entry.request);
            let outcome = entry
                .into_envelope(&id, self.future_tolerance_ms)
                .and_then(|envelope| {
                    let is_tick = matches!(envelope.body, Command::Tick { .. });
                    let outcome = applier.apply(envelope, checkpointer);
                    if is_tick {
                        // Positions were just published: the state is complete
                        // without the moved set, so a checkpoint may be taken.
                        let seq = applier.last_seq();
                        checkpointer.after_tick(applier.core(), &id, seq);
                    }
                    outcome
                });
            checkpointer.count_entry();
            self.log.reply(origin, request, outcome);
        }
        count
    }

    /// Rebuilds the node from the newest checkpoint and moves the reader to it.
    async fn reload(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        let loaded = checkpoint::load(conn, &self.log.keys)
            .await?
            .context("the log was trimmed but no checkpoint is stored")?;
        let core = Dispatcher::restore(self.dispatcher.clone(), loaded.state)
            .map_err(|e| anyhow::anyhow!("rebuilding from checkpoint {}: {e}", loaded.id))?;
        self.node.reload(core, loaded.event_seq);
        tracing::info!(checkpoint = %loaded.id, event_seq = loaded.event_seq, "rebuilt from the checkpoint");
        self.after = loaded.id;
        Ok(())
    }
}

/// Whether stream id `a` is older than `b` (both "ms-seq").
fn is_before(a: &str, b: &str) -> bool {
    match (parse_id(a), parse_id(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// One read: up to `READ_COUNT` entries after `after` (waiting up to `block`
/// ms when there are none), and the trim point recorded when the read ran.
async fn read(
    conn: &mut Conn,
    log: &RedisLog,
    after: &str,
    block: Option<u64>,
) -> redis::RedisResult<(Vec<RawEntry>, Option<String>)> {
    let mut pipe = redis::pipe();
    let read = pipe.cmd("XREAD").arg("COUNT").arg(READ_COUNT);
    if let Some(ms) = block {
        read.arg("BLOCK").arg(ms);
    }
    read.arg("STREAMS").arg(&log.keys.log).arg(after);
    // Executed after the read on the same connection: a trim that removed
    // anything the read should have returned is visible here.
    pipe.cmd("HGET").arg(&log.keys.meta).arg("trimmed");
    let (reply, trimmed): (Value, Option<String>) = pipe.query_async(conn).await?;
    Ok((parse_xread(reply), trimmed))
}

/// Parses an `XREAD` reply (`[[key, [[id, [field, value, ...]], ...]]]`, or a
/// map of key to entries in RESP3; nil when nothing came) into entries.
fn parse_xread(reply: Value) -> Vec<RawEntry> {
    let lists: Vec<Value> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().map(|(_, list)| list).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for list in lists {
        let Value::Array(items) = list else { continue };
        for item in items {
            let Value::Array(pair) = item else { continue };
            let mut pair = pair.into_iter();
            let (Some(Value::BulkString(id)), Some(Value::Array(fields))) =
                (pair.next(), pair.next())
            else {
                continue;
            };
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if let (Value::BulkString(name), Value::BulkString(value)) = (name, value)
                    && name == b"d"
                {
                    out.push((
                        String::from_utf8_lossy(&id).into_owned(),
                        Bytes::from(value),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_compare_by_time_then_sequence() {
        assert!(is_before("0-0", "1-0"));
        assert!(is_before("5-3", "5-4"));
        assert!(is_before("5-9", "6-0"));
        assert!(!is_before("6-0", "5-9"));
        assert!(!is_before("5-4", "5-4"));
        assert!(!is_before("junk", "5-4"));
    }
}
