//! Idempotent retries: a caller whose call timed out does not know whether it
//! was applied, so it sends it again with the same caller-chosen
//! `request_id`. The core remembers, per request id, a fingerprint of the
//! request and what its first success returned; a repeat with the same
//! content gets that result again and changes nothing, a repeat with other
//! content is refused.
//!
//! Everything here is deterministic, because every node of a region applies
//! the same log and must answer a retry the same way: the fingerprint is a
//! 64-bit FNV-1a hash over the request's fields in a fixed order (never a
//! randomly seeded hasher), entries expire by the `now` of the commands, and
//! the log is part of the checkpoint, so a node rebuilt from one still
//! recognises a retry.

use std::collections::{HashMap, VecDeque};

use crate::Millis;
use crate::alerts::AlertOutcome;
use crate::error::Error;
use crate::incidents::Order;

/// How long a request id is remembered by default: ten minutes, in ms.
pub const DEFAULT_REQUEST_TTL_MS: Millis = 600_000;
/// How many request ids are remembered at most by default.
pub const DEFAULT_MAX_REQUESTS: usize = 100_000;

/// What a remembered request's first success returned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum RequestResult {
    /// CreateIncident or UpdateIncident: a retry gets the incident's current
    /// state.
    Incident {
        /// The incident created or updated.
        incident_id: String,
    },
    /// PostAlert: a retry gets the same outcome (same alert id, same
    /// incident).
    Alert(AlertOutcome),
    /// Dispatch: a retry gets the incident's current state and these orders.
    Dispatch {
        /// The incident units were sent to.
        incident_id: String,
        /// The orders the first success issued.
        orders: Vec<Order>,
    },
    /// StartTrack: a retry gets the track as it is now.
    Track {
        /// The track started.
        track_id: String,
    },
}

/// One remembered request, as checkpoints store it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    /// The caller-chosen id.
    pub request_id: String,
    /// The request's fingerprint (FNV-1a 64, see the module docs).
    pub fingerprint: u64,
    /// When the first success was applied, Unix ms.
    pub time: Millis,
    /// What it returned.
    pub result: RequestResult,
}

#[derive(Debug, Clone)]
struct Entry {
    request_id: String,
    fingerprint: u64,
    time: Millis,
    result: RequestResult,
}

/// The remembered requests, oldest first, at most `max` of them and none
/// older than `ttl_ms` (by the `now` of later commands).
#[derive(Debug, Clone)]
pub(crate) struct RequestLog {
    ttl_ms: Millis,
    max: usize,
    /// In the order they were remembered; sequence `front_seq + i` at `i`.
    /// An entry whose id was remembered again later (after it expired) stays
    /// until it reaches the front, but `by_id` no longer points at it.
    entries: VecDeque<Entry>,
    front_seq: u64,
    /// Request id -> sequence of its live entry.
    by_id: HashMap<String, u64>,
}

impl RequestLog {
    pub(crate) fn new(ttl_ms: Millis, max: usize) -> Self {
        Self {
            ttl_ms,
            max,
            entries: VecDeque::new(),
            front_seq: 0,
            by_id: HashMap::new(),
        }
    }

    /// How many request ids are remembered.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    fn expired(&self, entry: &Entry, now: Millis) -> bool {
        now.saturating_sub(entry.time) >= self.ttl_ms
    }

    fn live(&self, request_id: &str) -> Option<&Entry> {
        let seq = *self.by_id.get(request_id)?;
        self.entries.get((seq - self.front_seq) as usize)
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            if self.by_id.get(&entry.request_id) == Some(&self.front_seq) {
                self.by_id.remove(&entry.request_id);
            }
            self.front_seq += 1;
        }
    }

    /// Forgets the oldest requests while they are expired at `now` or more
    /// than `max` are remembered. Driven by `now` alone: every node prunes
    /// the same entries at the same command.
    pub(crate) fn prune(&mut self, now: Millis) {
        while let Some(front) = self.entries.front() {
            let stale = self.by_id.get(&front.request_id) != Some(&self.front_seq);
            if stale || self.expired(front, now) || self.by_id.len() > self.max {
                self.pop_front();
            } else {
                break;
            }
        }
    }

    /// What the first success of `request_id` returned, if it is remembered
    /// and not expired at `now` and had this fingerprint; refuses a request
    /// id that was used for a different request.
    pub(crate) fn check(
        &self,
        request_id: &str,
        fingerprint: u64,
        now: Millis,
    ) -> Result<Option<&RequestResult>, Error> {
        match self.live(request_id) {
            Some(entry) if !self.expired(entry, now) => {
                if entry.fingerprint == fingerprint {
                    Ok(Some(&entry.result))
                } else {
                    Err(different_request(request_id))
                }
            }
            _ => Ok(None),
        }
    }

    /// Remembers the first success of `request_id`.
    pub(crate) fn remember(
        &mut self,
        request_id: &str,
        fingerprint: u64,
        now: Millis,
        result: RequestResult,
    ) {
        let seq = self.front_seq + self.entries.len() as u64;
        self.entries.push_back(Entry {
            request_id: request_id.to_string(),
            fingerprint,
            time: now,
            result,
        });
        self.by_id.insert(request_id.to_string(), seq);
        while self.by_id.len() > self.max {
            self.pop_front();
        }
    }

    /// The remembered requests, oldest first.
    pub(crate) fn to_records(&self) -> Vec<RequestRecord> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, e)| self.by_id.get(&e.request_id) == Some(&(self.front_seq + *i as u64)))
            .map(|(_, e)| RequestRecord {
                request_id: e.request_id.clone(),
                fingerprint: e.fingerprint,
                time: e.time,
                result: e.result.clone(),
            })
            .collect()
    }

    /// Rebuilds the log from [`RequestLog::to_records`], oldest first.
    pub(crate) fn from_records(records: Vec<RequestRecord>, ttl_ms: Millis, max: usize) -> Self {
        let mut log = Self::new(ttl_ms, max);
        for r in records {
            log.remember(&r.request_id, r.fingerprint, r.time, r.result);
        }
        log
    }
}

/// The refusal for a request id reused with other content.
pub(crate) fn different_request(request_id: &str) -> Error {
    Error::invalid(
        "request_id",
        request_id,
        "was already used for a different request",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(n: u32) -> RequestResult {
        RequestResult::Incident {
            incident_id: format!("inc-{n}"),
        }
    }

    #[test]
    fn the_log_remembers_refuses_and_expires() {
        let mut log = RequestLog::new(1_000, 10);
        log.remember("r1", 7, 100, result(1));
        assert_eq!(log.check("r1", 7, 500), Ok(Some(&result(1))));
        assert!(matches!(
            log.check("r1", 8, 500),
            Err(Error::Invalid { ref field, .. }) if field == "request_id"
        ));
        assert_eq!(log.check("r2", 7, 500), Ok(None));
        // expired at 100 + 1000, even before a prune
        assert_eq!(log.check("r1", 8, 1_100), Ok(None));
        log.prune(1_099);
        assert_eq!(log.len(), 1);
        log.prune(1_100);
        assert_eq!(log.len(), 0);
        assert!(log.to_records().is_empty());
    }

    #[test]
    fn the_log_keeps_the_newest_max_and_survives_reuse_after_expiry() {
        let mut log = RequestLog::new(1_000, 3);
        for i in 0..5 {
            log.remember(&format!("r{i}"), i, 10 * i as Millis, result(i as u32));
        }
        let ids: Vec<_> = log.to_records().into_iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["r2", "r3", "r4"]);
        // r2 expires: its id may be used again, for anything
        assert_eq!(log.check("r2", 2, 1_020), Ok(None));
        log.remember("r2", 9, 1_020, result(9));
        assert_eq!(log.check("r2", 9, 1_021), Ok(Some(&result(9))));
        // the old r2 entry is stale (still queued, no longer indexed): only
        // the new one is exported
        let records = log.to_records();
        let ids: Vec<_> = records.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r3", "r4", "r2"]);
        let rebuilt = RequestLog::from_records(records.clone(), 1_000, 3);
        assert_eq!(rebuilt.to_records(), records);
        // an out-of-order old entry is skipped by prune once it is at the front
        let mut log = RequestLog::new(100, 10);
        log.remember("a", 1, 0, result(1));
        log.remember("b", 2, 50, result(2));
        assert_eq!(log.check("a", 1, 120), Ok(None));
        log.remember("a", 3, 120, result(3));
        log.prune(149);
        let ids: Vec<_> = log.to_records().into_iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["b", "a"]);
        log.prune(150);
        let ids: Vec<_> = log.to_records().into_iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["a"]);
    }
}
