//! Tracks as commands: starting one (on an incident, or opening one),
//! adding sightings, closing; each change leaves an [`Event::Track`] with a
//! fresh prediction. Intercepts are a query on the latest prediction.

use std::collections::BTreeMap;

use super::{Dispatcher, Event, Retry, request_id_of};
use crate::Millis;
use crate::actor::Actor;
use crate::error::{Error, validate_id};
use crate::fingerprint::Fingerprint;
use crate::incidents::{IncidentSource, NewIncident};
use crate::requests::{RequestResult, different_request};
use crate::tracks::{
    InterceptQuery, Intercepts, MAX_SIGHTINGS, MAX_TEXT_LEN, NewSighting, NewTrack, Sighting,
    Track, intercepts, predict,
};

/// A sighting may be at most this far in the future of the command's now
/// (clock skew between a camera system and the server), ms.
const MAX_SIGHTING_SKEW_MS: Millis = 60_000;
/// At most this many tracks are open at once.
pub const MAX_OPEN_TRACKS: usize = 10_000;

/// Every track, by id (sorted: listings are the same on every node), and
/// the next id's number.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracks {
    by_id: BTreeMap<String, Track>,
    next: u64,
}

fn track_fingerprint(new: &NewTrack, actor: &Actor) -> u64 {
    let s = &new.sighting;
    Fingerprint::of("start_track")
        .str(&actor.identity)
        .str(&new.label)
        .str(new.mode.as_str())
        .opt(new.incident_id.as_deref(), |f, v| f.str(v))
        .opt(new.priority, |f, p| f.u64(p.into()))
        .opt(s.time, |f, t| f.i64(t))
        .opt(s.at, |f, p| f.f64(p.lon).f64(p.lat))
        .opt(s.camera_id.as_deref(), |f, v| f.str(v))
        .str(&s.note)
        .finish()
}

impl Dispatcher {
    /// Where and when a reported sighting was: its point, or the camera's
    /// position; its time, or now. The camera must be registered.
    fn resolve_sighting(
        &self,
        new: &NewSighting,
        actor: &Actor,
        now: Millis,
    ) -> Result<Sighting, Error> {
        let camera_at = match &new.camera_id {
            Some(id) => Some(self.camera(id)?.at),
            None => None,
        };
        let at = new
            .at
            .or(camera_at)
            .expect("validated: a point or a camera");
        let time = new.time.unwrap_or(now);
        if time > now + MAX_SIGHTING_SKEW_MS {
            return Err(Error::invalid(
                "sighting.time_unix_ms",
                time,
                format!("is more than {MAX_SIGHTING_SKEW_MS} ms after now ({now})"),
            ));
        }
        Ok(Sighting {
            time,
            at,
            camera_id: new.camera_id.clone(),
            note: new.note.clone(),
            actor: actor.clone(),
        })
    }

    /// Predicts from the track's sightings and puts the track on the stream.
    fn publish_track(&mut self, mut track: Track, now: Millis) -> Track {
        track.prediction = Some(predict(
            &track,
            self.config.network.as_ref(),
            &self.cameras,
            &self.config.tracks,
            now,
        ));
        self.tracks.by_id.insert(track.id.clone(), track.clone());
        self.outbox.push(Event::Track(track.clone()));
        track
    }

    /// Starts following a target from its first sighting: on the incident
    /// named, or on an incident opened for it. `new.request_id` makes a
    /// retry return the same track.
    pub fn start_track(
        &mut self,
        new: NewTrack,
        actor: &Actor,
        now: Millis,
    ) -> Result<Track, Error> {
        new.validate()?;
        actor.validate()?;
        let key = match self.retry(&new.request_id, || track_fingerprint(&new, actor), now)? {
            Retry::Repeat(RequestResult::Track { track_id }) => {
                return self.track(&track_id).cloned();
            }
            Retry::Repeat(_) => return Err(different_request(&request_id_of(&new.request_id))),
            Retry::Fresh(key) => key,
        };
        let open = self.tracks.by_id.values().filter(|t| t.is_open()).count();
        if open >= MAX_OPEN_TRACKS {
            return Err(Error::full(
                "the track table",
                format!("{MAX_OPEN_TRACKS} open tracks"),
            ));
        }
        let sighting = self.resolve_sighting(&new.sighting, actor, now)?;
        let id = format!("{}track-{}", self.config.id_prefix, self.tracks.next + 1);
        let incident_id = match &new.incident_id {
            Some(incident_id) => {
                let incident = self.incident(incident_id)?;
                if !incident.status.is_open() {
                    return Err(Error::FailedPrecondition(format!(
                        "incident {incident_id} is closed: a track needs an open incident"
                    )));
                }
                incident_id.clone()
            }
            None => {
                let source = if sighting.camera_id.is_some() {
                    IncidentSource::CameraAlert
                } else {
                    IncidentSource::Operator
                };

                self.open_incident(
                    NewIncident {
                        kind: "track".to_string(),
                        priority: Some(new.priority.unwrap_or(2)),
                        location: sighting.at,
                        source,
                        description: format!("{}: {}", id, new.label),
                        request_id: None,
                    },
                    actor,
                    now,
                )?
            }
        };
        self.tracks.next += 1;
        let slot = self.incident_slots[&incident_id];
        let inc = &mut self.incidents[slot];
        if let Some(camera) = &sighting.camera_id
            && !inc.camera_ids.contains(camera)
        {
            inc.camera_ids.push(camera.clone());
        }
        inc.record(now, actor, "track_started", format!("{id}: {}", new.label));
        self.outbox.push(Event::Incident(inc.clone()));
        let track = Track {
            id: id.clone(),
            label: new.label,
            mode: new.mode,
            incident_id,
            sightings: vec![sighting],
            created: now,
            closed: None,
            close_reason: String::new(),
            prediction: None,
        };
        let track = self.publish_track(track, now);
        self.remember(key, now, || RequestResult::Track { track_id: id });
        Ok(track)
    }

    /// Adds a sighting to an open track (no earlier than its last one) and
    /// predicts again.
    pub fn add_sighting(
        &mut self,
        track_id: &str,
        new: &NewSighting,
        actor: &Actor,
        now: Millis,
    ) -> Result<Track, Error> {
        new.validate("sighting")?;
        actor.validate()?;
        let mut track = self.open_track(track_id)?.clone();
        let sighting = self.resolve_sighting(new, actor, now)?;
        let last = track.last().time;
        if sighting.time < last {
            return Err(Error::invalid(
                "sighting.time_unix_ms",
                sighting.time,
                format!("is before the track's last sighting ({last})"),
            ));
        }
        if let Some(slot) = self.incident_slots.get(&track.incident_id).copied() {
            let inc = &mut self.incidents[slot];
            if let Some(camera) = &sighting.camera_id
                && !inc.camera_ids.contains(camera)
            {
                inc.camera_ids.push(camera.clone());
            }
            let seen_by = sighting
                .camera_id
                .as_deref()
                .map(|c| format!(" by camera {c}"))
                .unwrap_or_default();
            inc.record(now, actor, "sighting", format!("{track_id}{seen_by}"));
            self.outbox.push(Event::Incident(inc.clone()));
        }
        track.sightings.push(sighting);
        if track.sightings.len() > MAX_SIGHTINGS {
            track.sightings.remove(0);
        }
        Ok(self.publish_track(track, now))
    }

    /// Stops following: the track stays listed as closed.
    pub fn close_track(
        &mut self,
        track_id: &str,
        reason: &str,
        actor: &Actor,
        now: Millis,
    ) -> Result<Track, Error> {
        actor.validate()?;
        if reason.len() > MAX_TEXT_LEN {
            return Err(Error::invalid(
                "reason",
                format!("{} bytes", reason.len()),
                format!("must be at most {MAX_TEXT_LEN} bytes"),
            ));
        }
        let mut track = self.open_track(track_id)?.clone();
        track.closed = Some(now);
        track.close_reason = reason.to_string();
        if let Some(slot) = self.incident_slots.get(&track.incident_id).copied() {
            let inc = &mut self.incidents[slot];
            inc.record(now, actor, "track_closed", format!("{track_id}: {reason}"));
            self.outbox.push(Event::Incident(inc.clone()));
        }
        self.tracks.by_id.insert(track.id.clone(), track.clone());
        self.outbox.push(Event::Track(track.clone()));
        Ok(track)
    }

    /// Closes the open tracks of an incident that was closed.
    pub(crate) fn close_tracks_of(&mut self, incident_id: &str, now: Millis) {
        let ids: Vec<String> = self
            .tracks
            .by_id
            .values()
            .filter(|t| t.is_open() && t.incident_id == incident_id)
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            let mut track = self.tracks.by_id[&id].clone();
            track.closed = Some(now);
            track.close_reason = format!("incident {incident_id} closed");
            self.tracks.by_id.insert(id, track.clone());
            self.outbox.push(Event::Track(track));
        }
    }

    /// The track with this id, open or closed.
    pub fn track(&self, id: &str) -> Result<&Track, Error> {
        validate_id("track_id", id)?;
        self.tracks
            .by_id
            .get(id)
            .ok_or_else(|| Error::not_found("track", id))
    }

    fn open_track(&self, id: &str) -> Result<&Track, Error> {
        let track = self.track(id)?;
        if !track.is_open() {
            return Err(Error::FailedPrecondition(format!(
                "track {id} is closed ({})",
                track.close_reason
            )));
        }
        Ok(track)
    }

    /// Tracks by id: the open ones, and the closed ones too if asked.
    pub fn tracks(&self, include_closed: bool) -> Vec<Track> {
        self.tracks
            .by_id
            .values()
            .filter(|t| include_closed || t.is_open())
            .cloned()
            .collect()
    }

    /// Units that can get ahead of the target of an open track, from its
    /// latest prediction; the incident's priority sets how units drive.
    pub fn recommend_intercepts(
        &self,
        track_id: &str,
        query: &InterceptQuery,
        now: Millis,
    ) -> Result<Intercepts, Error> {
        let track = self.open_track(track_id)?;
        if query.k == 0 || query.k > crate::recommend::MAX_K {
            return Err(Error::invalid(
                "k",
                query.k,
                format!("must be in 1..={}", crate::recommend::MAX_K),
            ));
        }
        let prediction = track
            .prediction
            .as_ref()
            .expect("every stored track has a prediction");
        let mut query = query.clone();
        if query.priority.is_none() {
            query.priority = self.incident(&track.incident_id).ok().map(|i| i.priority);
        }
        Ok(intercepts(
            prediction,
            &self.units,
            &query,
            &self.config.tracks,
            now,
            self.rank_context(),
        ))
    }

    /// The tracks and the next id's number, for checkpoints.
    pub(crate) fn export_tracks(&self) -> (Vec<Track>, u64) {
        (
            self.tracks.by_id.values().cloned().collect(),
            self.tracks.next,
        )
    }

    /// Restores the tracks from a checkpoint.
    pub(crate) fn import_tracks(&mut self, tracks: Vec<Track>, next: u64) {
        self.tracks.next = next;
        self.tracks.by_id = tracks.into_iter().map(|t| (t.id.clone(), t)).collect();
    }
}
