//! Durable, shared state in Redis: the region's log.
//!
//! **Design: one ordered log, every node a replica.** Each change a node
//! accepts is a [`Command`]; it is appended to the region's Redis Stream
//! (`patrol:{region}:log`, `XADD`) *before* anyone is told it succeeded. Every
//! node — the one that accepted it included — reads the stream in order
//! (`XREAD`) and applies each entry to its own core with the `now` stored in
//! the entry ([`crate::command::apply`] is deterministic). So all nodes hold the
//! same state, hand out the same ids and number their command-room events the
//! same way: a ping sent to node A appears on a `Watch` opened on node B in the
//! same order, and a client can resume on any node. The accepting node answers
//! its caller once its own reader has applied the entry, with that outcome.
//!
//! **Conflicts.** Two operators on two nodes dispatching one unit in the same
//! millisecond both append; Redis orders the two `XADD`s (a stream append is
//! atomic), every node applies the first (the unit becomes assigned) and then
//! refuses the second (FailedPrecondition: the unit is busy). The
//! check-and-set is the append itself: no `WATCH`/`MULTI` retry loop, no Lua
//! copy of the dispatch rules that could drift from the core's.
//!
//! **Restart.** A node rebuilds from the newest checkpoint (Redis hashes, see
//! [`checkpoint`]) and replays the stream after it before it serves.
//!
//! **Faults.** Redis down: appends fail and callers get `Unavailable` (never a
//! false success); the connections reconnect by themselves and the reader
//! carries on from the last entry it applied. Slow Redis: at most
//! `max_in_flight` appends wait at once; more callers wait, then get
//! `ResourceExhausted`.

pub mod checkpoint;
pub mod entry;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::{Semaphore, oneshot};
use tonic::Status;

use crate::command::{Command, Outcome};
use crate::config::{Config, RedisConfig};
use crate::hub::{Hub, now_ms};
use crate::telemetry as m;
use entry::LogEntry;

/// The keys of one region. They share the `{region}` hash tag, so in a Redis
/// Cluster they live in one slot: one shard serves a region, and the
/// checkpoint's multi-key transaction is allowed.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The Redis Stream of log entries.
    pub log: String,
    /// Hash: epoch, checkpoint id, counters.
    pub meta: String,
    /// Hashes of the checkpointed state, one per kind: id -> JSON.
    pub units: String,
    pub cameras: String,
    pub incidents: String,
}

impl Keys {
    pub fn new(region: &str) -> Self {
        let key = |name: &str| format!("patrol:{{{region}}}:{name}");
        Self {
            log: key("log"),
            meta: key("meta"),
            units: key("units"),
            cameras: key("cameras"),
            incidents: key("incidents"),
        }
    }
}

/// One connection, to a single Redis or to a cluster. Both reconnect by
/// themselves after Redis restarts.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Opens a connection. `response_timeout` bounds every command on it.
pub async fn connect(config: &RedisConfig, response_timeout: Duration) -> anyhow::Result<Conn> {
    let connect_timeout = Duration::from_secs(1);
    if config.cluster {
        let client = redis::cluster::ClusterClient::builder(config.urls.clone())
            .connection_timeout(connect_timeout)
            .response_timeout(response_timeout)
            .retries(2)
            .build()
            .context("redis cluster client")?;
        let conn = client
            .get_async_connection()
            .await
            .with_context(|| format!("connecting to redis cluster {:?}", config.urls))?;
        Ok(Conn::Cluster(conn))
    } else {
        let url = config.urls.first().context("redis.urls is empty")?;
        let client =
            redis::Client::open(url.as_str()).with_context(|| format!("redis url {url:?}"))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(connect_timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(1_000))
            .set_number_of_retries(3);
        let conn = client
            .get_connection_manager_with_config(manager)
            .await
            .with_context(|| format!("connecting to redis {url}"))?;
        Ok(Conn::Single(conn))
    }
}

type Reply = oneshot::Sender<Result<Outcome, Status>>;

/// This node's side of the region's log: appends, and the callers waiting for
/// their entries to be applied.
pub struct RedisLog {
    pub keys: Keys,
    config: RedisConfig,
    writer: Conn,
    /// Random per process: marks the entries this process appended.
    instance: u64,
    next_request: AtomicU64,
    waiting: Mutex<HashMap<u64, Reply>>,
    permits: Semaphore,
}

/// What a node starts from: the region's epoch and the newest checkpoint.
pub struct Start {
    pub epoch: u64,
    pub checkpoint: Option<checkpoint::Loaded>,
}

impl RedisLog {
    /// Connects, creates the region's epoch if this is its first node ever,
    /// and loads the newest checkpoint.
    pub async fn open(config: &Config) -> anyhow::Result<(Arc<Self>, Start)> {
        let redis = &config.redis;
        let keys = Keys::new(&redis.region);
        let mut writer = connect(redis, Duration::from_millis(redis.response_timeout_ms)).await?;
        // The epoch names this region's log: seqs from another epoch (a Redis
        // that lost its data, say) never resume against this one.
        let fresh_epoch = now_ms().max(1) as u64;
        let epoch: u64 = redis::pipe()
            .cmd("HSETNX")
            .arg(&keys.meta)
            .arg("epoch")
            .arg(fresh_epoch)
            .ignore()
            .cmd("HGET")
            .arg(&keys.meta)
            .arg("epoch")
            .query_async::<(u64,)>(&mut writer)
            .await
            .context("reading the region's epoch")?
            .0;
        let checkpoint = checkpoint::load(&mut writer, &keys).await?;
        let log = Arc::new(Self {
            keys,
            config: redis.clone(),
            writer,
            instance: rand_instance(),
            next_request: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
            permits: Semaphore::new(redis.max_in_flight),
        });
        Ok((log, Start { epoch, checkpoint }))
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub fn writer(&self) -> Conn {
        self.writer.clone()
    }

    /// Appends `command` to the log and waits until this node has applied it.
    pub async fn submit(&self, command: Command) -> Result<Outcome, Status> {
        let name = command.name();
        let started = Instant::now();
        let _permit = tokio::time::timeout(
            Duration::from_millis(self.config.queue_wait_ms),
            self.permits.acquire(),
        )
        .await
        .map_err(|_| {
            metrics::counter!(m::REDIS_QUEUE_FULL).increment(1);
            Status::resource_exhausted(format!(
                "{} changes are already waiting for Redis (redis.max_in_flight); retry later",
                self.config.max_in_flight
            ))
        })?
        .map_err(|_| Status::unavailable("server shutting down"))?;

        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(request, tx);
        let bytes = LogEntry::new(now_ms(), self.instance, request, command).encode_to_vec();
        let appended: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&self.keys.log)
            .arg("*")
            .arg("d")
            .arg(bytes)
            .query_async(&mut self.writer.clone())
            .await;
        let id = match appended {
            Ok(id) => id,
            Err(err) => {
                self.waiting().remove(&request);
                metrics::counter!(m::REDIS_ERRORS, "op" => "append").increment(1);
                return Err(if err.is_timeout() {
                    Status::deadline_exceeded(format!(
                        "redis did not answer in time; {name} may or may not have been stored: {err}"
                    ))
                } else {
                    Status::unavailable(format!(
                        "redis unavailable; {name} was not stored, retry: {err}"
                    ))
                });
            }
        };
        metrics::histogram!(m::REDIS_APPEND_SECONDS).record(started.elapsed().as_secs_f64());
        match tokio::time::timeout(Duration::from_millis(self.config.apply_timeout_ms), rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => {
                self.waiting().remove(&request);
                Err(Status::deadline_exceeded(format!(
                    "{name} is stored in the log as {id} but was not applied on this node within {} ms; it takes effect when the log is read",
                    self.config.apply_timeout_ms
                )))
            }
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reply>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an applied entry's outcome to its caller, if it is waiting here.
    fn reply(&self, entry_origin: u64, request: u64, outcome: Result<Outcome, Status>) {
        if entry_origin != self.instance {
            return;
        }
        if let Some(tx) = self.waiting().remove(&request) {
            let _ = tx.send(outcome);
        }
    }

    /// Ends every wait (shutdown): callers get Unavailable.
    pub fn close(&self) {
        self.permits.close();
        self.waiting().clear();
    }
}

fn rand_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// One stream entry as read: its id and its encoded [`LogEntry`].
type RawEntry = (String, Bytes);

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

/// How many entries one read takes (and one core lock covers).
const READ_COUNT: usize = 256;

/// Reads the log from `after` and applies every entry, for as long as the node
/// runs. Sends on `caught_up` once it has applied everything that was in the
/// log when it started (the node serves only after that).
pub async fn run_reader(
    hub: Arc<Hub>,
    log: Arc<RedisLog>,
    mut after: String,
    mut caught_up: Option<oneshot::Sender<()>>,
) {
    let mut conn = match connect(
        &log.config,
        Duration::from_millis(log.config.response_timeout_ms),
    )
    .await
    {
        Ok(conn) => conn,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "log reader cannot connect; falling back to the writer's connection");
            log.writer()
        }
    };
    let block_ms = (log.config.response_timeout_ms / 3).clamp(50, 1_000);
    let mut failures = 0u32;
    let mut checkpointer = checkpoint::Checkpointer::new(&log);
    loop {
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT").arg(READ_COUNT);
        if caught_up.is_none() {
            read.arg("BLOCK").arg(block_ms);
        }
        read.arg("STREAMS").arg(&log.keys.log).arg(&after);
        let reply: redis::RedisResult<Value> = read.query_async(&mut conn).await;
        let entries = match reply {
            Ok(reply) => {
                if failures > 0 {
                    tracing::info!(after = %after, "log reader reconnected to redis");
                }
                failures = 0;
                parse_xread(reply)
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
        if entries.is_empty() {
            if let Some(tx) = caught_up.take() {
                let _ = tx.send(());
            }
            continue;
        }
        let Some((last, _)) = entries.last() else {
            continue;
        };
        after = last.clone();
        let applied = apply_entries(&hub, &log, entries, &mut checkpointer);
        metrics::counter!(m::LOG_ENTRIES_APPLIED).increment(applied as u64);
        checkpointer.maybe_write(&hub, &log).await;
    }
}

/// Applies a run of entries under one core lock.
fn apply_entries(
    hub: &Hub,
    log: &RedisLog,
    entries: Vec<RawEntry>,
    checkpointer: &mut checkpoint::Checkpointer,
) -> usize {
    let mut core = hub.core();
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
        let (origin, request, now) = (entry.origin, entry.request, entry.now_unix_ms);
        let outcome = match entry.into_command() {
            Some(command) => {
                let is_tick = matches!(command, Command::Tick { .. });
                let outcome = hub.apply_locked(&mut core, command, now);
                if is_tick {
                    // Positions were just published: the state is complete
                    // without the moved set, so a checkpoint may be taken here.
                    checkpointer.after_tick(&core, &id, hub);
                }
                outcome
            }
            None => Err(Status::unimplemented(format!(
                "log entry {id} is of a kind this build does not know"
            ))),
        };
        checkpointer.count_entry();
        log.reply(origin, request, outcome);
    }
    count
}
