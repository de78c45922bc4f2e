//! The audit log: who (identity, role, peer, node) did what, to what, when
//! (UTC, milliseconds) and with what outcome. Every audited command that
//! goes through [`crate::hub::Hub`] leaves one [`AuditRecord`] (successful or
//! refused); the authentication service adds logons and credential changes.
//! An admin reads it back by identity and time range ([`AuditLog::query`]).
//!
//! **Backends**, chosen at start:
//! - In memory (no Redis): a ring of at most `audit.memory_records` records.
//!   When it is full the **oldest record is dropped first** to make room, and
//!   counted in `patrol_audit_dropped_total{reason="ring_full"}`. Recording
//!   pushes under a short mutex.
//! - Redis: one Stream per region, `patrol:{region}:audit` (the same
//!   `{region}` hash tag as the log's keys, so a Redis Cluster keeps it on
//!   the region's shard), shared by every node of the region and kept across
//!   restarts. Each record is one entry whose fields are the record's
//!   fields. Every append carries `MINID ~ <now - audit.retention_ms>`, so
//!   Redis trims records older than the retention as new ones arrive
//!   (approximately: whole stream nodes go once every record in them is
//!   older).
//!
//! **Writes never slow the command path.** [`AuditLog::record`] does not
//! wait: with Redis it puts the record on a bounded queue
//! (`audit.queue_records`). **When the queue is full the new record is
//! dropped**, counted in `patrol_audit_dropped_total{reason="queue_full"}`
//! and logged at error level (at most once per 10 s, with the total). One
//! writer task drains the queue, appending up to `audit.batch_records`
//! records per round trip (one pipeline); when Redis fails it keeps the
//! batch and retries with backoff (50 ms doubling to 5 s), counting
//! `patrol_audit_write_errors_total`, while new records queue behind it. A
//! batch whose reply was lost may be written twice (at least once, never
//! silently lost while the node runs).
//!
//! **Reading.** Stream ids start with the millisecond Redis assigned, which
//! may differ from the record's own time (the node's clock): a query reads
//! the id range widened by [`CLOCK_SKEW_MS`] on both sides, newest first in
//! pages, and filters on the record's own time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use patrol_dispatcher::Actor;
use patrol_proto::v1 as pb;
use redis::Value;
use redis::streams::StreamRangeReply;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tonic::Code;

use crate::clock::now_ms;
use crate::config::{AuditConfig, Config};
use crate::durable::Conn;
use crate::error::ServerError;
use crate::telemetry as m;

/// The outcome of a change that was done.
pub const OUTCOME_OK: &str = "ok";

/// How far a node's clock may be from Redis's for a query to still find a
/// record by its own time, milliseconds.
pub const CLOCK_SKEW_MS: i64 = 60_000;

/// Entries read per Redis call while querying.
const QUERY_PAGE: usize = 1_000;

/// Queue-full errors are logged at most this often, milliseconds.
const DROP_LOG_EVERY_MS: i64 = 10_000;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the node accepted it, Unix ms (UTC).
    pub time_ms: i64,
    /// Who: identity, role, peer, node.
    pub actor: Actor,
    /// What, as a stable word: a command's name ("dispatch",
    /// "update_status", "aim_cameras", ...) or "login", "login_failed", ...
    pub action: String,
    /// What it was about: an incident, unit, camera, track, zone or
    /// credential id.
    pub target: String,
    /// A short summary for people.
    pub detail: String,
    /// [`OUTCOME_OK`], or the refusal (a gRPC code name such as
    /// "not_found", or a short reason such as "bad_secret").
    pub outcome: String,
}

impl AuditRecord {
    /// A successful `action` on `target` by `actor` at `time_ms`, with no
    /// detail (see [`AuditRecord::with_detail`], [`AuditRecord::refused`]).
    pub fn new(
        actor: Actor,
        time_ms: i64,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            time_ms,
            actor,
            action: action.into(),
            target: target.into(),
            detail: String::new(),
            outcome: OUTCOME_OK.to_string(),
        }
    }

    /// The same record with `detail`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The same record, refused for `outcome` (e.g. "bad_secret", or
    /// [`outcome_of`] an error).
    pub fn refused(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// The record as the API sends it.
    pub fn to_wire(&self) -> pb::AuditRecord {
        pb::AuditRecord {
            time_unix_ms: self.time_ms,
            actor: Some(crate::convert::to_wire::actor(&self.actor)),
            action: self.action.clone(),
            target: self.target.clone(),
            detail: self.detail.clone(),
            outcome: self.outcome.clone(),
        }
    }

    fn matches(&self, identity: Option<&str>, from_ms: i64, to_ms: i64) -> bool {
        (from_ms..=to_ms).contains(&self.time_ms)
            && identity.is_none_or(|id| self.actor.identity == id)
    }

    /// The stream entry's fields.
    fn fields(&self) -> [(&'static str, String); 9] {
        [
            ("time_ms", self.time_ms.to_string()),
            ("identity", self.actor.identity.clone()),
            ("role", self.actor.role.clone()),
            ("peer", self.actor.peer.clone()),
            ("node", self.actor.node.clone()),
            ("action", self.action.clone()),
            ("target", self.target.clone()),
            ("detail", self.detail.clone()),
            ("outcome", self.outcome.clone()),
        ]
    }

    /// A record from a stream entry's fields; `None` without a readable
    /// `time_ms` (not one of ours).
    fn from_fields(mut map: HashMap<String, Value>) -> Option<Self> {
        let mut take = |name: &str| {
            map.remove(name)
                .and_then(|v| redis::from_redis_value::<String>(v).ok())
                .unwrap_or_default()
        };
        let time_ms = take("time_ms").parse().ok()?;
        Some(Self {
            time_ms,
            actor: Actor {
                identity: take("identity"),
                role: take("role"),
                peer: take("peer"),
                node: take("node"),
            },
            action: take("action"),
            target: take("target"),
            detail: take("detail"),
            outcome: take("outcome"),
        })
    }
}

/// The outcome word for a refused change: its gRPC code's name in snake
/// case, e.g. "failed_precondition".
pub fn outcome_of(err: &ServerError) -> String {
    code_name(err.code()).to_string()
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => OUTCOME_OK,
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The region's audit stream.
pub fn stream_key(region: &str) -> String {
    format!("patrol:{{{region}}}:audit")
}

/// The audit log of one node. See the module docs.
pub struct AuditLog {
    backend: Backend,
}

enum Backend {
    Memory(Mutex<Ring>),
    Redis(RedisAudit),
}

/// The in-memory ring: oldest first.
struct Ring {
    records: VecDeque<AuditRecord>,
    capacity: usize,
}

struct RedisAudit {
    key: String,
    /// For queries (the writer has its own clone of the same connection).
    conn: Conn,
    queue: mpsc::Sender<AuditRecord>,
    progress: Arc<Progress>,
}

/// How far the writer got, for [`AuditLog::flush`].
struct Progress {
    /// Records put on the queue.
    queued: AtomicU64,
    /// Records the writer is done with (written, or given up at the end).
    done: watch::Sender<u64>,
    /// Records dropped because the queue was full, and when that was last
    /// logged.
    dropped: AtomicU64,
    last_drop_log_ms: AtomicI64,
}

impl AuditLog {
    /// The log `config` asks for: in Redis when `redis.urls` is set (on its
    /// own connection), else in memory.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if !config.redis.enabled() {
            return Ok(Self::memory(&config.audit));
        }
        let timeout = Duration::from_millis(config.redis.response_timeout_ms);
        let conn = crate::durable::connect(&config.redis, timeout).await?;
        Ok(Self::redis(&config.audit, &config.redis.region, conn))
    }

    /// A log kept in this process: a ring of `config.memory_records`.
    pub fn memory(config: &AuditConfig) -> Self {
        Self {
            backend: Backend::Memory(Mutex::new(Ring {
                records: VecDeque::with_capacity(config.memory_records.min(4_096)),
                capacity: config.memory_records.max(1),
            })),
        }
    }

    /// A log in `region`'s Redis stream over `conn`; starts the writer task
    /// (call within a Tokio runtime).
    pub fn redis(config: &AuditConfig, region: &str, conn: Conn) -> Self {
        let (queue, rx) = mpsc::channel(config.queue_records.max(1));
        let progress = Arc::new(Progress {
            queued: AtomicU64::new(0),
            done: watch::Sender::new(0),
            dropped: AtomicU64::new(0),
            last_drop_log_ms: AtomicI64::new(i64::MIN),
        });
        let key = stream_key(region);
        tokio::spawn(
            Writer {
                rx,
                conn: conn.clone(),
                key: key.clone(),
                retention_ms: i64::try_from(config.retention_ms).unwrap_or(i64::MAX),
                batch_max: config.batch_records.max(1),
                progress: progress.clone(),
            }
            .run(),
        );
        Self {
            backend: Backend::Redis(RedisAudit {
                key,
                conn,
                queue,
                progress,
            }),
        }
    }

    /// Whether records are kept in Redis.
    pub fn is_durable(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Records `rec` without waiting. In memory it goes into the ring (the
    /// oldest record makes room when full); with Redis onto the writer's
    /// bounded queue, and when that is full it is dropped, counted in
    /// `patrol_audit_dropped_total` and logged (rate-limited): a slow or
    /// absent Redis never holds up a command.
    pub(crate) fn record(&self, rec: AuditRecord) {
        match &self.backend {
            Backend::Memory(ring) => {
                let mut ring = lock(ring);
                if ring.records.len() >= ring.capacity {
                    ring.records.pop_front();
                    metrics::counter!(m::AUDIT_DROPPED, "reason" => "ring_full").increment(1);
                }
                ring.records.push_back(rec);
                metrics::counter!(m::AUDIT_RECORDS).increment(1);
            }
            Backend::Redis(r) => match r.queue.try_send(rec) {
                Ok(()) => {
                    r.progress.queued.fetch_add(1, Ordering::AcqRel);
                }
                Err(err) => {
                    let reason = match err {
                        mpsc::error::TrySendError::Full(_) => "queue_full",
                        mpsc::error::TrySendError::Closed(_) => "writer_stopped",
                    };
                    metrics::counter!(m::AUDIT_DROPPED, "reason" => reason).increment(1);
                    let dropped = r.progress.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    let now = now_ms();
                    let last = r.progress.last_drop_log_ms.load(Ordering::Relaxed);
                    if now.saturating_sub(last) >= DROP_LOG_EVERY_MS
                        && r.progress
                            .last_drop_log_ms
                            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    {
                        tracing::error!(
                            reason,
                            dropped_total = dropped,
                            "audit records dropped: the Redis writer is behind (audit.queue_records)"
                        );
                    }
                }
            },
        }
    }

    /// The records of `identity` (every identity with `None`) whose time is
    /// in `from_ms..=to_ms`, oldest first. When more than `limit` match, the
    /// newest `limit` and `true` (truncated).
    pub async fn query(
        &self,
        identity: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<(Vec<AuditRecord>, bool), ServerError> {
        // Newest first, at most limit + 1 (the extra one says "truncated").
        let mut found = Vec::new();
        match &self.backend {
            Backend::Memory(ring) => {
                let ring = lock(ring);
                for rec in ring.records.iter().rev() {
                    if rec.matches(identity, from_ms, to_ms) {
                        found.push(rec.clone());
                        if found.len() > limit {
                            break;
                        }
                    }
                }
            }
            Backend::Redis(r) => {
                let start = from_ms.saturating_sub(CLOCK_SKEW_MS).max(0).to_string();
                let mut end = to_ms.saturating_add(CLOCK_SKEW_MS).max(0).to_string();
                let mut conn = r.conn.clone();
                'pages: loop {
                    let page: StreamRangeReply = redis::cmd("XREVRANGE")
                        .arg(&r.key)
                        .arg(&end)
                        .arg(&start)
                        .arg("COUNT")
                        .arg(QUERY_PAGE)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| {
                            metrics::counter!(m::REDIS_ERRORS, "op" => "audit_query").increment(1);
                            ServerError::Stream {
                                code: Code::Unavailable,
                                message: format!("reading the audit log from redis: {e}"),
                            }
                        })?;
                    let full = page.ids.len() >= QUERY_PAGE;
                    for entry in page.ids {
                        end = format!("({}", entry.id);
                        let Some(rec) = AuditRecord::from_fields(entry.map) else {
                            continue;
                        };
                        if rec.matches(identity, from_ms, to_ms) {
                            found.push(rec);
                            if found.len() > limit {
                                break 'pages;
                            }
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        let truncated = found.len() > limit;
        found.truncate(limit);
        found.reverse();
        // Nodes' clocks differ a little from the order Redis appended in.
        found.sort_by_key(|r| r.time_ms);
        Ok((found, truncated))
    }

    /// Waits until every record recorded before this call is written (in
    /// memory: at once). With Redis down this waits until it is back: bound
    /// it with a timeout where that matters (shutdown does).
    pub async fn flush(&self) {
        if let Backend::Redis(r) = &self.backend {
            let target = r.progress.queued.load(Ordering::Acquire);
            let mut done = r.progress.done.subscribe();
            let _ = done.wait_for(|d| *d >= target).await;
        }
    }
}

fn lock(ring: &Mutex<Ring>) -> MutexGuard<'_, Ring> {
    ring.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drains the queue into the stream. See the module docs.
struct Writer {
    rx: mpsc::Receiver<AuditRecord>,
    conn: Conn,
    key: String,
    retention_ms: i64,
    batch_max: usize,
    progress: Arc<Progress>,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_max);
        loop {
            if self.rx.recv_many(&mut batch, self.batch_max).await == 0 {
                return; // every sender is gone: the node was dropped
            }
            let mut backoff = Duration::from_millis(50);
            let mut failures = 0u32;
            loop {
                match self.append(&batch).await {
                    Ok(()) => {
                        metrics::counter!(m::AUDIT_RECORDS).increment(batch.len() as u64);
                        break;
                    }
                    Err(err) => {
                        metrics::counter!(m::AUDIT_WRITE_ERRORS).increment(1);
                        failures += 1;
                        if self.rx.is_closed() {
                            // The node is gone and nobody will flush again:
                            // give the batch up rather than retry forever.
                            metrics::counter!(m::AUDIT_DROPPED, "reason" => "writer_stopped")
                                .increment(batch.len() as u64);
                            tracing::error!(error = %err, records = batch.len(), "audit records not written at shutdown");
                            break;
                        }
                        if failures.is_power_of_two() {
                            tracing::warn!(error = %err, failures, records = batch.len(), "audit records not written yet; retrying");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            let n = batch.len() as u64;
            self.progress.done.send_modify(|d| *d += n);
            batch.clear();
        }
    }

    /// One pipeline of `XADD key MINID ~ <oldest kept> * field value ...`.
    async fn append(&mut self, batch: &[AuditRecord]) -> redis::RedisResult<()> {
        let min_id = now_ms().saturating_sub(self.retention_ms).max(0);
        let mut pipe = redis::pipe();
        for rec in batch {
            let add = pipe
                .cmd("XADD")
                .arg(&self.key)
                .arg("MINID")
                .arg("~")
                .arg(min_id)
                .arg("*");
            for (field, value) in rec.fields() {
                add.arg(field).arg(value);
            }
            add.ignore();
        }
        pipe.query_async::<()>(&mut self.conn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(time_ms: i64, identity: &str, action: &str) -> AuditRecord {
        AuditRecord::new(
            Actor::new(identity, "operator").with_node("node-a"),
            time_ms,
            action,
            format!("t{time_ms}"),
        )
    }

    fn ring(capacity: usize) -> AuditLog {
        AuditLog::memory(&AuditConfig {
            memory_records: capacity,
            ..AuditConfig::default()
        })
    }

    fn times(records: &[AuditRecord]) -> Vec<i64> {
        records.iter().map(|r| r.time_ms).collect()
    }

    #[tokio::test]
    async fn the_ring_answers_by_identity_and_time_in_order() {
        let log = ring(100);
        for t in 1..=10 {
            log.record(rec(
                t * 10,
                if t % 2 == 0 { "alice" } else { "bob" },
                "dispatch",
            ));
        }
        let (all, truncated) = log.query(None, 0, i64::MAX, 100).await.unwrap();
        assert_eq!(times(&all), (1..=10).map(|t| t * 10).collect::<Vec<_>>());
        assert!(!truncated);
        // inclusive range, one identity
        let (alice, truncated) = log.query(Some("alice"), 20, 60, 100).await.unwrap();
        assert_eq!(times(&alice), [20, 40, 60]);
        assert!(alice.iter().all(|r| r.actor.identity == "alice"));
        assert!(!truncated);
        let (none, _) = log.query(Some("carol"), 0, i64::MAX, 100).await.unwrap();
        assert!(none.is_empty());
        let (none, truncated) = log.query(None, 101, 200, 100).await.unwrap();
        assert!(none.is_empty() && !truncated);
    }

    #[tokio::test]
    async fn more_matches_than_the_limit_give_the_newest_and_say_so() {
        let log = ring(100);
        for t in 1..=10 {
            log.record(rec(t, "alice", "update_status"));
        }
        let (newest, truncated) = log.query(Some("alice"), 0, 100, 3).await.unwrap();
        assert_eq!(times(&newest), [8, 9, 10]);
        assert!(truncated);
        let (exact, truncated) = log.query(Some("alice"), 0, 100, 10).await.unwrap();
        assert_eq!(exact.len(), 10);
        assert!(!truncated, "exactly the limit is not truncated");
        let (nothing, truncated) = log.query(None, 0, 100, 0).await.unwrap();
        assert!(nothing.is_empty() && truncated);
    }

    #[tokio::test]
    async fn a_full_ring_drops_the_oldest_first() {
        let log = ring(4);
        for t in 1..=6 {
            log.record(rec(t, "alice", "aim_cameras"));
        }
        let (kept, truncated) = log.query(None, 0, 100, 100).await.unwrap();
        assert_eq!(times(&kept), [3, 4, 5, 6]);
        assert!(!truncated);
        log.flush().await;
        assert!(!log.is_durable());
    }

    async fn redis_log(redis: &patrol_testkit::RedisServer, queue: usize) -> AuditLog {
        let config = crate::config::RedisConfig {
            urls: vec![redis.url()],
            ..Default::default()
        };
        let conn = crate::durable::connect(&config, Duration::from_millis(500))
            .await
            .unwrap();
        let audit = AuditConfig {
            queue_records: queue,
            batch_records: 2,
            ..AuditConfig::default()
        };
        AuditLog::redis(&audit, "unit", conn)
    }

    #[tokio::test]
    async fn while_redis_is_down_records_wait_and_are_written_when_it_is_back() {
        let mut redis = patrol_testkit::RedisServer::start().unwrap();
        let log = redis_log(&redis, 100).await;
        // Stream ids carry Redis's time: records must be of about now.
        let t0 = now_ms();
        log.record(rec(t0 + 1, "alice", "dispatch"));
        log.flush().await;
        redis.kill();
        for t in 2..=5 {
            log.record(rec(t0 + t, "alice", "dispatch"));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), log.flush())
                .await
                .is_err(),
            "nothing can be written while redis is down"
        );
        redis.restart().unwrap();
        tokio::time::timeout(Duration::from_secs(30), log.flush())
            .await
            .expect("written once redis is back");
        let (all, truncated) = log.query(Some("alice"), t0, t0 + 100, 100).await.unwrap();
        assert_eq!(times(&all), [1, 2, 3, 4, 5].map(|t| t0 + t));
        assert!(!truncated);
        let (newest, truncated) = log.query(None, t0 + 2, t0 + 4, 2).await.unwrap();
        assert_eq!(times(&newest), [t0 + 3, t0 + 4]);
        let (none, _) = log.query(Some("bob"), t0, t0 + 100, 100).await.unwrap();
        assert!(none.is_empty());
        assert!(truncated);
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_records_instead_of_waiting() {
        let mut redis = patrol_testkit::RedisServer::start().unwrap();
        let log = redis_log(&redis, 1).await;
        redis.kill();
        let t0 = now_ms();
        for t in 1..=6 {
            log.record(rec(t0 + t, "alice", "aim_cameras"));
        }
        let Backend::Redis(r) = &log.backend else {
            unreachable!()
        };
        // The writer holds at most one batch and the queue one more.
        assert!(r.progress.dropped.load(Ordering::Relaxed) >= 3);
        redis.restart().unwrap();
        tokio::time::timeout(Duration::from_secs(30), log.flush())
            .await
            .expect("written once redis is back");
        let (kept, _) = log.query(None, t0, t0 + 100, 100).await.unwrap();
        assert!((1..=2).contains(&kept.len()), "{kept:?}");
        assert_eq!(
            kept[0].time_ms,
            t0 + 1,
            "the first is kept, later ones dropped"
        );
    }

    #[test]
    fn records_read_back_from_stream_fields_and_refusals_name_their_code() {
        let r = rec(1_700_000_000_123, "alice", "login")
            .with_detail("from the web console")
            .refused("bad_secret");
        assert_eq!(r.outcome, "bad_secret");
        let map = r
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.into_bytes())))
            .collect();
        assert_eq!(AuditRecord::from_fields(map), Some(r.clone()));
        assert_eq!(AuditRecord::from_fields(HashMap::new()), None);
        let wire = r.to_wire();
        assert_eq!(wire.time_unix_ms, 1_700_000_000_123);
        assert_eq!(wire.actor.unwrap().identity, "alice");
        let err = ServerError::from(patrol_dispatcher::Error::FailedPrecondition("busy".into()));
        assert_eq!(outcome_of(&err), "failed_precondition");
        assert_eq!(stream_key("north"), "patrol:{north}:audit");
    }
}
