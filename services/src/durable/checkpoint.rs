//! Checkpoints: the region's state in Redis hashes, so the log can be trimmed
//! and a node can start (or catch up) without replaying all of history.
//!
//! **Layout.** Two sets of hashes, each a complete state as of some log
//! entry: set "" (`patrol:{region}:units`, `:cameras`, `:incidents`) and set
//! "b" (`patrol:{region}:units:b`, ...), one field per id, the record as JSON
//! (readable with `HGET`). `patrol:{region}:meta` says which set is committed
//! (`set`), the stream id it reflects (`checkpoint`), the command-room seq at
//! that point (`event_seq`), the core's counters (`core`), and the log's trim
//! point (`trimmed`). A checkpoint is written into the set that is *not*
//! committed, in chunks, and committed by one small script that flips `set`:
//! a starting node always loads a complete, consistent set, even when a
//! writer dies halfway.
//!
//! **Bounded stalls.** Records go to Redis in chunks of
//! `redis.checkpoint_chunk` per call, so Redis never blocks on one huge
//! script, and the writing runs in its own task: the log reader keeps
//! applying entries meanwhile.
//!
//! **One writer per region.** A lease (`patrol:{region}:checkpointer`, the
//! writer's instance id with a TTL) picks the node that writes; every chunk
//! and the commit check it, so a writer that stalled past its lease can never
//! overwrite what a newer writer wrote. Every node tracks what changed (so any
//! can take over); a node writes a set in full the first time it writes it,
//! and afterwards only the records changed since it last wrote that set.
//!
//! **When.** Right after a `Tick` entry is applied (positions have just been
//! published, so nothing is half-announced), once `redis.checkpoint_entries`
//! entries or `checkpoint_interval_ms` have passed. The commit also trims the
//! stream to what is newer than both the checkpoint and `keep_ms`
//! (`XTRIM MINID`) and records that trim point for lagging readers.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use patrol_dispatcher::persist::{CameraState, CoreMeta, CoreState, IncidentState, UnitState};
use patrol_dispatcher::{Dispatcher, Event, Fix};
use tokio::sync::oneshot;

use super::{Conn, Keys, RedisLog};
use crate::clock::now_ms;
use crate::node::ChangeSink;
use crate::telemetry as m;

/// The two sets of checkpoint hashes.
const SETS: [&str; 2] = ["", "b"];

/// A checkpoint read back.
pub struct Loaded {
    /// The stream id it reflects: replay starts after it.
    pub id: String,
    pub event_seq: u64,
    pub state: CoreState,
}

/// Reads the newest committed checkpoint, if any.
pub async fn load(conn: &mut Conn, keys: &Keys) -> anyhow::Result<Option<Loaded>> {
    let meta: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys.meta)
        .query_async(conn)
        .await
        .context("reading checkpoint meta")?;
    let Some(id) = meta.get("checkpoint").cloned() else {
        return Ok(None);
    };
    let set = meta.get("set").map(String::as_str).unwrap_or("");
    anyhow::ensure!(SETS.contains(&set), "checkpoint set {set:?} is unknown");
    let event_seq = meta
        .get("event_seq")
        .context("checkpoint without event_seq")?
        .parse()
        .context("checkpoint event_seq")?;
    let core: CoreMeta = serde_json::from_str(meta.get("core").context("checkpoint without core")?)
        .context("checkpoint core meta")?;
    let units: Vec<UnitState> = scan_hash(conn, &keys.records(set, "units")).await?;
    let cameras: Vec<CameraState> = scan_hash(conn, &keys.records(set, "cameras")).await?;
    let incidents: Vec<IncidentState> = scan_hash(conn, &keys.records(set, "incidents")).await?;
    tracing::info!(
        checkpoint = %id,
        set,
        event_seq,
        units = units.len(),
        cameras = cameras.len(),
        incidents = incidents.len(),
        "loaded checkpoint"
    );
    Ok(Some(Loaded {
        id,
        event_seq,
        state: CoreState {
            meta: core,
            units,
            cameras,
            incidents,
        },
    }))
}

/// The log's trim point as the checkpointer recorded it ("ms-seq"), if any.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Every value of a hash, parsed, read in pages (`HSCAN`) so a country's
/// million units never arrive as one reply.
async fn scan_hash<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    key: &str,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .with_context(|| format!("reading {key}"))?;
        for (field, json) in page {
            out.push(serde_json::from_str(&json).with_context(|| format!("{key} field {field}"))?);
        }
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Takes or renews the lease and says which set is committed.
/// KEYS: lease, meta. ARGV: me, ttl ms.
/// Returns {held, set}: held is 2 when newly taken, 1 when renewed, 0 when
/// another node holds it.
const LEASE: &str = r#"
local set = redis.call('HGET', KEYS[2], 'set') or ''
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2, set}
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, set}
end
return {0, set}
"#;

/// Writes one chunk of records if `me` holds the lease.
/// KEYS: lease, hash. ARGV: me, ttl ms, then field/value pairs.
const CHUNK: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"#;

/// Commits a written set if `me` holds the lease and no newer checkpoint is
/// committed, then trims the log and records the trim point.
/// KEYS: lease, meta, log.
/// ARGV: me, id ms, id seq, id, event_seq, core json, set, trim id, trim ms, trim seq.
/// Returns 1 (committed), 0 (a newer one is), -1 (lease lost).
const COMMIT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local function newer(ms, seq, than)
  if not than then return true end
  local tms, tseq = string.match(than, '^(%d+)-(%d+)$')
  tms, tseq = tonumber(tms), tonumber(tseq)
  return ms > tms or (ms == tms and seq > tseq)
end
if not newer(tonumber(ARGV[2]), tonumber(ARGV[3]), redis.call('HGET', KEYS[2], 'checkpoint')) then
  return 0
end
redis.call('HSET', KEYS[2], 'checkpoint', ARGV[4], 'event_seq', ARGV[5], 'core', ARGV[6], 'set', ARGV[7])
redis.call('XTRIM', KEYS[3], 'MINID', '~', ARGV[8])
if newer(tonumber(ARGV[9]), tonumber(ARGV[10]), redis.call('HGET', KEYS[2], 'trimmed')) then
  redis.call('HSET', KEYS[2], 'trimmed', ARGV[8])
end
return 1
"#;

/// Ids changed since a set was last written by this node.
#[derive(Debug, Default)]
struct Dirty {
    units: HashSet<String>,
    cameras: HashSet<String>,
    incidents: HashSet<String>,
}

impl Dirty {
    fn absorb(&mut self, other: Dirty) {
        self.units.extend(other.units);
        self.cameras.extend(other.cameras);
        self.incidents.extend(other.incidents);
    }
}

/// A checkpoint copied from the core under its lock, written after it.
struct Prepared {
    id: String,
    event_seq: u64,
    set: usize,
    meta: CoreMeta,
    units: Vec<UnitState>,
    cameras: Vec<CameraState>,
    incidents: Vec<IncidentState>,
    /// What the write covers, returned when it fails.
    ids: Dirty,
    full: bool,
}

/// How a write ended.
enum Written {
    Committed {
        set: usize,
    },
    /// Not committed (a Redis error, or the lease was lost): the set may hold
    /// part of this write, the committed one is untouched.
    Failed {
        set: usize,
        ids: Dirty,
        full: bool,
    },
}

/// Tracks what changed, decides when to checkpoint, and hands checkpoints to
/// a writer task; one per log reader. As the reader applies entries it feeds
/// this as the node's [`ChangeSink`].
pub struct Checkpointer {
    every_entries: u64,
    every: Duration,
    entries: u64,
    last: Instant,
    /// Per set: what changed since this node last wrote it, and whether this
    /// node's last write of it is still what it holds (if not, the next write
    /// is in full).
    dirty: [Dirty; 2],
    known: [bool; 2],
    /// The set to write at the next tick, once the lease is held.
    claimed: Option<usize>,
    pending: Option<oneshot::Receiver<Written>>,
    writer: Writer,
}

impl ChangeSink for Checkpointer {
    fn events(&mut self, events: &[Event]) {
        for dirty in &mut self.dirty {
            for event in events {
                match event {
                    Event::Unit(u) => {
                        dirty.units.insert(u.profile.id.clone());
                    }
                    Event::Camera(c) => {
                        dirty.cameras.insert(c.id.clone());
                    }
                    Event::Incident(i) => {
                        dirty.incidents.insert(i.id.clone());
                    }
                    Event::Order(o) | Event::OrderReleased(o) => {
                        dirty.units.insert(o.unit_id.clone());
                        dirty.incidents.insert(o.incident_id.clone());
                    }
                    Event::Alert(a) => {
                        if let Some(id) = &a.incident_id {
                            dirty.incidents.insert(id.clone());
                        }
                    }
                    // Timers, tracks, zones and who is in a camera's view
                    // live in the checkpoint's meta, written every time.
                    Event::UnitAlert(_)
                    | Event::Track(_)
                    | Event::Zone(_)
                    | Event::UnitInView(_) => {}
                }
            }
        }
    }

    fn moved(&mut self, moved: &[(String, Fix)]) {
        for dirty in &mut self.dirty {
            dirty.units.extend(moved.iter().map(|(id, _)| id.clone()));
        }
    }
}

impl Checkpointer {
    pub fn new(log: &RedisLog) -> Self {
        let config = log.config();
        Self {
            every_entries: config.checkpoint_entries,
            every: Duration::from_millis(config.checkpoint_interval_ms),
            entries: 0,
            last: Instant::now(),
            dirty: Default::default(),
            known: [false; 2],
            claimed: None,
            pending: None,
            writer: Writer {
                keys: log.keys.clone(),
                conn: log.conn(),
                me: log.instance().to_string(),
                lease_ms: config.checkpoint_interval_ms.saturating_mul(3).max(10_000),
                keep_ms: config.keep_ms,
                chunk: config.checkpoint_chunk.max(1),
            },
        }
    }

    /// Counts one applied entry.
    pub fn count_entry(&mut self) {
        self.entries += 1;
    }

    /// Forgets what this node knew about the sets (its state was rebuilt).
    pub fn reset(&mut self) {
        self.dirty = Default::default();
        self.known = [false; 2];
        self.claimed = None;
        self.pending = None;
        self.entries = 0;
        self.last = Instant::now();
    }

    /// Takes in the result of the previous write, if it finished; false while
    /// it runs.
    fn collect(&mut self) -> bool {
        let Some(rx) = &mut self.pending else {
            return true;
        };
        let written = match rx.try_recv() {
            Ok(written) => written,
            Err(oneshot::error::TryRecvError::Empty) => return false,
            Err(oneshot::error::TryRecvError::Closed) => {
                self.pending = None;
                self.known = [false; 2];
                return true;
            }
        };
        self.pending = None;
        match written {
            Written::Committed { set } => self.known[set] = true,
            Written::Failed { set, ids, full } => {
                if full {
                    self.known[set] = false;
                } else {
                    self.dirty[set].absorb(ids);
                }
            }
        }
        true
    }

    /// Whether a checkpoint is due and none is being written.
    pub fn due(&mut self) -> bool {
        self.claimed.is_none()
            && self.collect()
            && (self.entries >= self.every_entries || self.last.elapsed() >= self.every)
    }

    /// Takes or renews the lease; when this node holds it, the next tick
    /// writes the set that is not committed.
    pub async fn claim(&mut self) {
        self.entries = 0;
        self.last = Instant::now();
        match self.writer.lease().await {
            Ok(Some((newly, committed))) => {
                if newly {
                    // Others may have written either set since this node did.
                    self.known = [false; 2];
                }
                self.claimed = Some(1 - committed);
            }
            Ok(None) => {
                // Another node writes; if it stops, this one takes over and
                // writes in full first.
                self.known = [false; 2];
            }
            Err(err) => {
                metrics::counter!(m::REDIS_ERRORS, "op" => "checkpoint").increment(1);
                tracing::warn!(error = %err, "checkpoint lease not taken; will retry");
            }
        }
    }

    /// Called with the core lock held right after tick entry `id` was applied:
    /// when a set was claimed, copies what its write needs and starts it.
    pub fn after_tick(&mut self, core: &Dispatcher, id: &str, event_seq: u64) {
        let Some(set) = self.claimed.take() else {
            return;
        };
        let full = !self.known[set];
        let ids = std::mem::take(&mut self.dirty[set]);
        let (units, cameras, incidents) = if full {
            let all = core.export_all();
            (all.units, all.cameras, all.incidents)
        } else {
            (
                ids.units
                    .iter()
                    .filter_map(|id| core.export_unit(id))
                    .collect(),
                ids.cameras
                    .iter()
                    .filter_map(|id| core.export_camera(id))
                    .collect(),
                ids.incidents
                    .iter()
                    .filter_map(|id| core.export_incident(id))
                    .collect(),
            )
        };
        // Until this write commits, the set holds neither the old nor the
        // new state.
        self.known[set] = false;
        let prepared = Prepared {
            id: id.to_string(),
            event_seq,
            set,
            meta: core.export_meta(),
            units,
            cameras,
            incidents,
            ids,
            full,
        };
        let (tx, rx) = oneshot::channel();
        self.pending = Some(rx);
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let _ = tx.send(writer.write(prepared).await);
        });
    }
}

/// Writes prepared checkpoints; runs in its own task.
#[derive(Clone)]
struct Writer {
    keys: Keys,
    conn: Conn,
    me: String,
    lease_ms: u64,
    keep_ms: u64,
    chunk: usize,
}

impl Writer {
    /// Takes or renews the lease: `Some((newly taken, committed set))` when
    /// this node holds it.
    async fn lease(&self) -> redis::RedisResult<Option<(bool, usize)>> {
        let (held, set): (i64, String) = redis::Script::new(LEASE)
            .key(&self.keys.checkpointer)
            .key(&self.keys.meta)
            .arg(&self.me)
            .arg(self.lease_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let committed = SETS.iter().position(|s| *s == set).unwrap_or(0);
        Ok((held > 0).then_some((held == 2, committed)))
    }

    async fn write(self, p: Prepared) -> Written {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let result = match self.write_records(&mut conn, &p).await {
            Ok(true) => self.commit(&mut conn, &p).await,
            other => other,
        };
        match result {
            Ok(true) => {
                metrics::histogram!(m::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
                tracing::debug!(
                    checkpoint = %p.id,
                    set = SETS[p.set],
                    full = p.full,
                    units = p.units.len(),
                    incidents = p.incidents.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "checkpoint committed"
                );
                Written::Committed { set: p.set }
            }
            Ok(false) => {
                tracing::info!(checkpoint = %p.id, "checkpoint lease lost; another node writes them");
                Written::Failed {
                    set: p.set,
                    ids: p.ids,
                    full: p.full,
                }
            }
            Err(err) => {
                metrics::counter!(m::REDIS_ERRORS, "op" => "checkpoint").increment(1);
                tracing::warn!(error = %format!("{err:#}"), "checkpoint not written; will retry");
                Written::Failed {
                    set: p.set,
                    ids: p.ids,
                    full: p.full,
                }
            }
        }
    }

    /// Writes every record in chunks; false when the lease was lost.
    async fn write_records(&self, conn: &mut Conn, p: &Prepared) -> anyhow::Result<bool> {
        let set = SETS[p.set];
        let script = redis::Script::new(CHUNK);
        let kinds = [
            ("units", json_records(&p.units, |u| &u.id)),
            ("cameras", json_records(&p.cameras, |c| &c.camera.id)),
            ("incidents", json_records(&p.incidents, |i| &i.incident.id)),
        ];
        for (kind, records) in kinds {
            let key = self.keys.records(set, kind);
            for chunk in records.chunks(self.chunk) {
                let mut call = script.prepare_invoke();
                call.key(&self.keys.checkpointer)
                    .key(&key)
                    .arg(&self.me)
                    .arg(self.lease_ms);
                for (field, value) in chunk {
                    call.arg(field).arg(value);
                }
                let written: i64 = call
                    .invoke_async(conn)
                    .await
                    .with_context(|| format!("writing {key}"))?;
                if written != 1 {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Commits the written set; false when the lease was lost. A newer
    /// checkpoint already committed (0) covers this one: that is a success.
    async fn commit(&self, conn: &mut Conn, p: &Prepared) -> anyhow::Result<bool> {
        let (ms, seq) = parse_id(&p.id).context("checkpoint id")?;
        let keep_from = (now_ms().max(0) as u64).saturating_sub(self.keep_ms);
        let (trim_ms, trim_seq) = if keep_from < ms {
            (keep_from, 0)
        } else {
            (ms, seq)
        };
        let trim = format!("{trim_ms}-{trim_seq}");
        let core = serde_json::to_string(&p.meta).context("checkpoint core meta")?;
        let committed: i64 = redis::Script::new(COMMIT)
            .key(&self.keys.checkpointer)
            .key(&self.keys.meta)
            .key(&self.keys.log)
            .arg(&self.me)
            .arg(ms)
            .arg(seq)
            .arg(&p.id)
            .arg(p.event_seq)
            .arg(core)
            .arg(SETS[p.set])
            .arg(&trim)
            .arg(trim_ms)
            .arg(trim_seq)
            .invoke_async(conn)
            .await
            .context("committing the checkpoint")?;
        Ok(committed >= 0)
    }
}

/// Records as (id, JSON) pairs (plain data: serialising cannot fail).
fn json_records<T: serde::Serialize>(
    records: &[T],
    id: impl Fn(&T) -> &str,
) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                id(r).to_string(),
                serde_json::to_string(r).unwrap_or_default(),
            )
        })
        .collect()
}
