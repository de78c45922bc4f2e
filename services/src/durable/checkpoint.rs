//! Checkpoints: the region's state in Redis hashes, so the log can be trimmed.
//!
//! - `patrol:{region}:units`, `:cameras`, `:incidents`: one field per id, the
//!   record as JSON (readable with `HGET` for an operator's eyes).
//! - `patrol:{region}:meta`: `checkpoint` (the stream id the hashes reflect),
//!   `event_seq` (the command-room seq at that point), `core` (id counters).
//!
//! A checkpoint is taken right after a `Tick` entry is applied (positions have
//! just been published, so nothing is half-announced) once enough entries or
//! time have passed. Only what changed since this node's previous checkpoint is
//! written, in one Lua script that first checks the stored checkpoint is older
//! than this one — so nodes may checkpoint concurrently and the hashes only
//! ever move forward, always complete (every successful write covers the
//! changes since the previous successful one, whoever wrote it). The same
//! script trims the stream to what is newer than both the checkpoint and the
//! retention window (`XTRIM MINID`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use patrol_dispatcher::Dispatcher;
use patrol_dispatcher::persist::{CameraState, CoreMeta, CoreState, IncidentState, UnitState};

use super::{Conn, Keys, RedisLog};
use crate::hub::{Hub, now_ms};
use crate::telemetry as m;

/// What changed since the last checkpoint, by id.
#[derive(Debug, Default)]
pub struct Dirty {
    pub units: HashSet<String>,
    pub cameras: HashSet<String>,
    pub incidents: HashSet<String>,
}

impl Dirty {
    /// Adds `other` back (a write that failed).
    pub fn absorb(&mut self, other: Dirty) {
        self.units.extend(other.units);
        self.cameras.extend(other.cameras);
        self.incidents.extend(other.incidents);
    }
}

/// A checkpoint read back at start.
pub struct Loaded {
    /// The stream id it reflects: replay starts after it.
    pub id: String,
    pub event_seq: u64,
    pub state: CoreState,
}

/// Reads the newest checkpoint, if any.
pub async fn load(conn: &mut Conn, keys: &Keys) -> anyhow::Result<Option<Loaded>> {
    let meta: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys.meta)
        .query_async(conn)
        .await
        .context("reading checkpoint meta")?;
    let Some(id) = meta.get("checkpoint").cloned() else {
        return Ok(None);
    };
    let event_seq = meta
        .get("event_seq")
        .context("checkpoint without event_seq")?
        .parse()
        .context("checkpoint event_seq")?;
    let core: CoreMeta = serde_json::from_str(meta.get("core").context("checkpoint without core")?)
        .context("checkpoint core meta")?;
    let units: Vec<UnitState> = scan_hash(conn, &keys.units).await?;
    let cameras: Vec<CameraState> = scan_hash(conn, &keys.cameras).await?;
    let incidents: Vec<IncidentState> = scan_hash(conn, &keys.incidents).await?;
    tracing::info!(
        checkpoint = %id,
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

/// Writes the checkpoint if no newer one is stored, then trims the log.
/// KEYS: meta, units, cameras, incidents, log.
/// ARGV: id ms, id seq, id, event_seq, core json, trim id, #units, #cameras,
/// then field/value pairs: units, cameras, incidents.
const WRITE: &str = r#"
local current = redis.call('HGET', KEYS[1], 'checkpoint')
if current then
  local ms, seq = string.match(current, '^(%d+)-(%d+)$')
  local new_ms, new_seq = tonumber(ARGV[1]), tonumber(ARGV[2])
  ms, seq = tonumber(ms), tonumber(seq)
  if new_ms < ms or (new_ms == ms and new_seq <= seq) then
    return 0
  end
end
local n_units, n_cameras = tonumber(ARGV[7]), tonumber(ARGV[8])
local i = 9
local function put(key, count)
  for _ = 1, count do
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end
put(KEYS[2], n_units)
put(KEYS[3], n_cameras)
put(KEYS[4], (#ARGV - i + 1) / 2)
redis.call('HSET', KEYS[1], 'checkpoint', ARGV[3], 'event_seq', ARGV[4], 'core', ARGV[5])
redis.call('XTRIM', KEYS[5], 'MINID', '~', ARGV[6])
return 1
"#;

/// A checkpoint serialised under the core lock, written after it is released.
struct Prepared {
    id: String,
    event_seq: u64,
    core: String,
    units: Vec<(String, String)>,
    cameras: Vec<(String, String)>,
    incidents: Vec<(String, String)>,
    dirty: Dirty,
}

/// Decides when to checkpoint and writes checkpoints; one per log reader.
pub struct Checkpointer {
    every_entries: u64,
    every: Duration,
    keep_ms: u64,
    entries: u64,
    last: Instant,
    prepared: Option<Prepared>,
    script: redis::Script,
}

impl Checkpointer {
    pub fn new(log: &RedisLog) -> Self {
        let config = log.config();
        Self {
            every_entries: config.checkpoint_entries,
            every: Duration::from_millis(config.checkpoint_interval_ms),
            keep_ms: config.keep_ms,
            entries: 0,
            last: Instant::now(),
            prepared: None,
            script: redis::Script::new(WRITE),
        }
    }

    pub fn count_entry(&mut self) {
        self.entries += 1;
    }

    /// Called with the core lock held right after a tick entry `id` was
    /// applied: serialises what changed, if a checkpoint is due.
    pub fn after_tick(&mut self, core: &Dispatcher, id: &str, hub: &Hub) {
        if self.prepared.is_some()
            || (self.entries < self.every_entries && self.last.elapsed() < self.every)
        {
            return;
        }
        let dirty = hub.take_dirty();
        let units = dirty
            .units
            .iter()
            .filter_map(|id| core.export_unit(id).map(|u| (id.clone(), json(&u))))
            .collect();
        let cameras = dirty
            .cameras
            .iter()
            .filter_map(|id| core.export_camera(id).map(|c| (id.clone(), json(&c))))
            .collect();
        let incidents = dirty
            .incidents
            .iter()
            .filter_map(|id| core.export_incident(id).map(|i| (id.clone(), json(&i))))
            .collect();
        self.prepared = Some(Prepared {
            id: id.to_string(),
            event_seq: hub.last_seq(),
            core: json(&core.export_meta()),
            units,
            cameras,
            incidents,
            dirty,
        });
    }

    /// Writes a prepared checkpoint. On a Redis error the changes go back to
    /// the dirty set and the next tick tries again.
    pub async fn maybe_write(&mut self, hub: &Hub, log: &RedisLog) {
        let Some(p) = self.prepared.take() else {
            return;
        };
        let started = Instant::now();
        let (ms, seq) = p.id.split_once('-').unwrap_or((&p.id, "0"));
        let trim_ms = (now_ms().max(0) as u64).saturating_sub(self.keep_ms);
        let checkpoint_ms: u64 = ms.parse().unwrap_or(0);
        let trim = if trim_ms < checkpoint_ms {
            format!("{trim_ms}-0")
        } else {
            p.id.clone()
        };
        let keys = &log.keys;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&keys.meta)
            .key(&keys.units)
            .key(&keys.cameras)
            .key(&keys.incidents)
            .key(&keys.log)
            .arg(ms)
            .arg(seq)
            .arg(&p.id)
            .arg(p.event_seq)
            .arg(&p.core)
            .arg(&trim)
            .arg(p.units.len())
            .arg(p.cameras.len());
        for (field, value) in p.units.iter().chain(&p.cameras).chain(&p.incidents) {
            invocation.arg(field).arg(value);
        }
        let written: redis::RedisResult<i64> = invocation.invoke_async(&mut log.writer()).await;
        match written {
            Ok(won) => {
                metrics::histogram!(m::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
                tracing::debug!(
                    checkpoint = %p.id,
                    written = won == 1,
                    units = p.units.len(),
                    incidents = p.incidents.len(),
                    "checkpoint"
                );
                // Either ours is stored or a newer one (which covers ours).
                self.entries = 0;
                self.last = Instant::now();
            }
            Err(err) => {
                metrics::counter!(m::REDIS_ERRORS, "op" => "checkpoint").increment(1);
                tracing::warn!(error = %err, "checkpoint not written; will retry");
                hub.return_dirty(p.dirty);
            }
        }
    }
}

/// JSON for a checkpoint record (plain data: serialising cannot fail).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
