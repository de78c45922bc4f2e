//! Durable, shared state in Redis: the region's log.
//!
//! **Design: one ordered log, every node a replica.** Each change a node
//! accepts is an [`Envelope`]; it is appended to the region's Redis Stream
//! (`patrol:{region}:log`, `XADD`) *before* anyone is told it succeeded. Every
//! node — the one that accepted it included — reads the stream in order
//! ([`reader`]) and applies each entry to its own state with the time stored
//! in the entry (applying is deterministic). So all nodes hold the same state,
//! hand out the same ids and number their command-room events the same way:
//! a ping sent to node A appears on a `Watch` opened on node B in the same
//! order, and a client can resume on any node. The accepting node answers its
//! caller once its own reader has applied the entry, with that outcome.
//!
//! **Lanes.** Routine commands (pings, registrations) and urgent ones
//! (incidents, dispatch, alerts, status, ticks) wait for Redis in separate
//! lanes, each with its own permits (`redis.max_in_flight`,
//! `redis.urgent_max_in_flight`) and its own connection, so a ping flood that
//! fills its lane never delays or refuses an emergency incident. Both lanes
//! append to the one stream, so the order every node applies stays one order.
//!
//! **Conflicts.** Two operators on two nodes dispatching one unit in the same
//! millisecond both append; Redis orders the two `XADD`s (a stream append is
//! atomic), every node applies the first (the unit becomes assigned) and then
//! refuses the second (FailedPrecondition: the unit is busy). The
//! check-and-set is the append itself: no `WATCH`/`MULTI` retry loop, no Lua
//! copy of the dispatch rules that could drift from the core's.
//!
//! **Restart.** A node rebuilds from the newest checkpoint (Redis hashes, see
//! [`checkpoint`]) and replays the stream after it before it serves. A running
//! node that fell so far behind that the stream was trimmed past its position
//! notices (the checkpointer records the trim point) and rebuilds the same way
//! instead of skipping what it missed.
//!
//! **Faults.** Redis refuses or drops the append: callers get `Unavailable`
//! ("was not stored, retry"); Redis stops answering mid-append: callers get
//! `DeadlineExceeded` ("may or may not have been stored": retry with the same
//! `request_id`); never a false success. The connections reconnect by
//! themselves and the reader carries on from the last entry it applied. Slow
//! Redis: at most `max_in_flight` appends per lane wait at once; more callers
//! wait up to `queue_wait_ms`, then get `ResourceExhausted`.

pub mod checkpoint;
pub mod entry;
pub mod reader;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use prost::Message;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::{Semaphore, oneshot};

use crate::clock::now_ms;
use crate::command::{Envelope, Lane, Outcome};
use crate::config::{Config, RedisConfig};
use crate::error::ServerError;
use crate::telemetry as m;
use entry::LogEntry;

/// The keys of one region. They share the `{region}` hash tag, so in a Redis
/// Cluster they live in one slot: one shard serves a region, and the
/// checkpoint's multi-key scripts are allowed.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The Redis Stream of log entries.
    pub log: String,
    /// Hash: epoch, checkpoint id, counters, the trim point.
    pub meta: String,
    /// Which node writes checkpoints (a lease: instance id, with a TTL).
    pub checkpointer: String,
    /// The region's name, for building the checkpoint hashes' keys.
    region: String,
}

impl Keys {
    pub fn new(region: &str) -> Self {
        let key = |name: &str| format!("patrol:{{{region}}}:{name}");
        Self {
            log: key("log"),
            meta: key("meta"),
            checkpointer: key("checkpointer"),
            region: region.to_string(),
        }
    }

    /// The hash of checkpointed `kind` records ("units", "cameras",
    /// "incidents") in set `set` (see [`checkpoint`]: "" or "b").
    pub fn records(&self, set: &str, kind: &str) -> String {
        let region = &self.region;
        if set.is_empty() {
            format!("patrol:{{{region}}}:{kind}")
        } else {
            format!("patrol:{{{region}}}:{kind}:{set}")
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

type Reply = oneshot::Sender<Result<Outcome, ServerError>>;

/// One lane's permits and connection.
struct LaneWriter {
    permits: Semaphore,
    capacity: usize,
    setting: &'static str,
    conn: Conn,
}

/// This node's side of the region's log: appends, and the callers waiting for
/// their entries to be applied.
pub struct RedisLog {
    pub keys: Keys,
    config: RedisConfig,
    routine: LaneWriter,
    urgent: LaneWriter,
    /// Random per process: marks the entries this process appended.
    instance: u64,
    next_request: AtomicU64,
    waiting: Mutex<HashMap<u64, Reply>>,
}

/// What a node starts from: the region's epoch and the newest checkpoint.
pub struct Start {
    pub epoch: u64,
    pub checkpoint: Option<checkpoint::Loaded>,
}

impl RedisLog {
    /// Connects, creates the region's epoch if this is its first node ever,
    /// checks this node routes over the same map as the region (`network`:
    /// the map's fingerprint and settings, "none" without a map), and loads
    /// the newest checkpoint.
    pub async fn open(config: &Config, network: &str) -> anyhow::Result<(Self, Start)> {
        let redis = &config.redis;
        let keys = Keys::new(&redis.region);
        let timeout = Duration::from_millis(redis.response_timeout_ms);
        let mut routine = connect(redis, timeout).await?;
        let urgent = connect(redis, timeout).await?;
        // The epoch names this region's log: seqs from another epoch (a Redis
        // that lost its data, say) never resume against this one.
        let fresh_epoch = now_ms().max(1) as u64;
        let (epoch, region_network): (u64, String) = redis::pipe()
            .cmd("HSETNX")
            .arg(&keys.meta)
            .arg("epoch")
            .arg(fresh_epoch)
            .ignore()
            .cmd("HSETNX")
            .arg(&keys.meta)
            .arg("network")
            .arg(network)
            .ignore()
            .cmd("HGET")
            .arg(&keys.meta)
            .arg("epoch")
            .cmd("HGET")
            .arg(&keys.meta)
            .arg("network")
            .query_async(&mut routine)
            .await
            .context("reading the region's epoch and map")?;
        // Every node must compute the same ETAs from the same log, so they
        // must route over the same map with the same settings.
        anyhow::ensure!(
            region_network == network,
            "region {:?} routes over map {:?}, but this node loaded {:?}: start it with the same --map and [network]/[profiles] settings (or clear {} to change the region's map)",
            redis.region,
            region_network,
            network,
            keys.meta
        );
        let checkpoint = checkpoint::load(&mut routine, &keys).await?;
        let log = Self {
            keys,
            config: redis.clone(),
            routine: LaneWriter {
                permits: Semaphore::new(redis.max_in_flight),
                capacity: redis.max_in_flight,
                setting: "redis.max_in_flight",
                conn: routine,
            },
            urgent: LaneWriter {
                permits: Semaphore::new(redis.urgent_max_in_flight),
                capacity: redis.urgent_max_in_flight,
                setting: "redis.urgent_max_in_flight",
                conn: urgent,
            },
            instance: rand_instance(),
            next_request: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
        };
        Ok((log, Start { epoch, checkpoint }))
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// This process's instance id (random per start).
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// A connection for occasional work (checkpoints, loading).
    pub fn conn(&self) -> Conn {
        self.routine.conn.clone()
    }

    fn lane(&self, lane: Lane) -> &LaneWriter {
        match lane {
            Lane::Routine => &self.routine,
            Lane::Urgent => &self.urgent,
        }
    }

    /// Appends `envelope` to the log in its lane and waits until this node has
    /// applied it.
    pub async fn submit(&self, envelope: Envelope) -> Result<Outcome, ServerError> {
        let command = envelope.body.name();
        let lane_kind = envelope.body.lane();
        let lane = self.lane(lane_kind);
        let started = Instant::now();
        let _permit = tokio::time::timeout(
            Duration::from_millis(self.config.queue_wait_ms),
            lane.permits.acquire(),
        )
        .await
        .map_err(|_| {
            metrics::counter!(m::REDIS_QUEUE_FULL, "lane" => lane_kind.as_str()).increment(1);
            ServerError::QueueFull {
                lane: lane_kind.as_str(),
                waiting: lane.capacity,
                setting: lane.setting,
            }
        })?
        .map_err(|_| ServerError::ShuttingDown("retry on another node"))?;

        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(request, tx);
        let bytes = LogEntry::new(self.instance, request, envelope).encode_to_vec();
        let appended: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&self.keys.log)
            .arg("*")
            .arg("d")
            .arg(bytes)
            .query_async(&mut lane.conn.clone())
            .await;
        let id = match appended {
            Ok(id) => id,
            Err(err) => {
                self.waiting().remove(&request);
                metrics::counter!(m::REDIS_ERRORS, "op" => "append").increment(1);
                return Err(if err.is_timeout() {
                    ServerError::MaybeStored {
                        command,
                        cause: err.to_string(),
                    }
                } else {
                    ServerError::NotStored {
                        command,
                        cause: err.to_string(),
                    }
                });
            }
        };
        metrics::histogram!(m::REDIS_APPEND_SECONDS, "lane" => lane_kind.as_str())
            .record(started.elapsed().as_secs_f64());
        match tokio::time::timeout(Duration::from_millis(self.config.apply_timeout_ms), rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ServerError::ShuttingDown("retry on another node")),
            Err(_) => {
                self.waiting().remove(&request);
                Err(ServerError::NotApplied {
                    command,
                    entry: id,
                    waited_ms: self.config.apply_timeout_ms,
                })
            }
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reply>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an applied entry's outcome to its caller, if it is waiting here.
    fn reply(&self, entry_origin: u64, request: u64, outcome: Result<Outcome, ServerError>) {
        if entry_origin != self.instance {
            return;
        }
        if let Some(tx) = self.waiting().remove(&request) {
            let _ = tx.send(outcome);
        }
    }

    /// Ends every wait (shutdown): callers get Unavailable.
    pub fn close(&self) {
        self.routine.permits.close();
        self.urgent.permits.close();
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
