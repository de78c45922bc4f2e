//! One entry of the region's log, as stored in the Redis Stream: an
//! [`Envelope`] (who, when, what) and who on which node is waiting for its
//! outcome.
//!
//! Encoded as protobuf with stable field tags. The command itself is the
//! validated domain value as JSON (readable with `XRANGE` for an operator's
//! eyes), except ping batches, which stay the pings' own encodings (parsed
//! zero-copy when applied) and ticks. Entries written by older builds, which
//! held the raw request messages and no actor, still replay: their requests
//! are converted with the same edge checks as they are read, and a request
//! that fails them is refused identically on every node. The encoding lives
//! here rather than in `proto/` because no client ever sees it.

use bytes::Bytes;
use patrol_dispatcher::{Actor, Millis};
use patrol_proto::v1 as pb;

use crate::command::{Command, Envelope};
use crate::convert::from_wire;
use crate::error::ServerError;

/// A log entry on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    /// The accepting node's clock when the command was accepted: the `now`
    /// every node applies it with.
    #[prost(int64, tag = "1")]
    pub now_unix_ms: i64,
    /// The accepting node's instance (random per process start).
    #[prost(fixed64, tag = "2")]
    pub origin: u64,
    /// The accepting node's request number, to hand the outcome back.
    #[prost(uint64, tag = "3")]
    pub request: u64,
    /// Who sent it (absent in entries of older builds).
    #[prost(message, optional, tag = "4")]
    pub actor: Option<ActorEntry>,
    #[prost(oneof = "Body", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 20")]
    pub body: Option<Body>,
}

/// The actor, as stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActorEntry {
    #[prost(string, tag = "1")]
    pub identity: String,
    #[prost(string, tag = "2")]
    pub role: String,
    #[prost(string, tag = "3")]
    pub peer: String,
    #[prost(string, tag = "4")]
    pub node: String,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// Older builds: the raw request.
    #[prost(message, tag = "10")]
    RegisterUnit(pb::RegisterUnitRequest),
    #[prost(message, tag = "11")]
    Pings(PingsEntry),
    /// Older builds: the raw request.
    #[prost(message, tag = "12")]
    UpdateStatus(pb::UpdateStatusRequest),
    /// Older builds: the raw request.
    #[prost(message, tag = "13")]
    RegisterCamera(pb::RegisterCameraRequest),
    /// Older builds: the raw request.
    #[prost(message, tag = "14")]
    PostAlert(pb::PostAlertRequest),
    /// Older builds: the raw request.
    #[prost(message, tag = "15")]
    CreateIncident(pb::CreateIncidentRequest),
    /// Older builds: the raw request.
    #[prost(message, tag = "16")]
    Dispatch(pb::DispatchRequest),
    /// Older builds: the raw request.
    #[prost(message, tag = "17")]
    UpdateIncident(pb::UpdateIncidentRequest),
    #[prost(message, tag = "18")]
    Tick(TickEntry),
    /// A validated domain command (every kind but pings and ticks), as JSON.
    #[prost(bytes = "bytes", tag = "20")]
    Command(Bytes),
}

/// A ping batch: each ping still encoded as it arrived (decoded zero-copy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PingsEntry {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub pings: Vec<Bytes>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickEntry {
    #[prost(bool, tag = "1")]
    pub sweep: bool,
}

impl LogEntry {
    pub fn new(origin: u64, request: u64, envelope: Envelope) -> Self {
        let Envelope { actor, time, body } = envelope;
        let body = match body {
            Command::Pings(pings) => Body::Pings(PingsEntry { pings }),
            Command::Tick { sweep } => Body::Tick(TickEntry { sweep }),
            other => Body::Command(Bytes::from(serde_json::to_vec(&other).unwrap_or_default())),
        };
        Self {
            now_unix_ms: time,
            origin,
            request,
            actor: Some(ActorEntry {
                identity: actor.identity,
                role: actor.role,
                peer: actor.peer,
                node: actor.node,
            }),
            body: Some(body),
        }
    }

    /// The envelope, or why this entry cannot be applied: a body this build
    /// does not know, or an older build's request that fails today's checks
    /// (`future_tolerance_ms` is the setting the alert time check uses).
    pub fn into_envelope(
        self,
        id: &str,
        future_tolerance_ms: Millis,
    ) -> Result<Envelope, ServerError> {
        let actor = self
            .actor
            .map(|a| Actor {
                identity: a.identity,
                role: a.role,
                peer: a.peer,
                node: a.node,
            })
            .unwrap_or_default();
        let now = self.now_unix_ms;
        let unknown = || ServerError::UnknownEntry {
            entry: id.to_string(),
        };
        let body = match self.body.ok_or_else(unknown)? {
            Body::Pings(p) => Command::Pings(p.pings),
            Body::Tick(t) => Command::Tick { sweep: t.sweep },
            Body::Command(json) => serde_json::from_slice(&json).map_err(|_| unknown())?,
            Body::RegisterUnit(r) => Command::RegisterUnit(from_wire::unit_profile(r)?),
            Body::UpdateStatus(r) => {
                let (unit_id, status) = from_wire::status_report(r)?;
                Command::UpdateStatus { unit_id, status }
            }
            Body::RegisterCamera(r) => Command::RegisterCamera(from_wire::camera(r.camera)?),
            Body::PostAlert(r) => {
                Command::PostAlert(from_wire::new_alert(r, now, future_tolerance_ms)?)
            }
            Body::CreateIncident(r) => Command::CreateIncident(from_wire::new_incident(r)?),
            Body::Dispatch(r) => Command::Dispatch(from_wire::dispatch_request(r)?),
            Body::UpdateIncident(r) => Command::UpdateIncident(from_wire::incident_update(r)?),
        };
        Ok(Envelope::new(actor, now, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patrol_dispatcher::DispatchRequest;
    use prost::Message;

    fn actor() -> Actor {
        Actor {
            identity: "alice".into(),
            role: String::new(),
            peer: "127.0.0.1:5000".into(),
            node: "a".into(),
        }
    }

    #[test]
    fn entries_round_trip_and_pings_stay_zero_copy() {
        let ping = pb::Ping {
            unit_id: "u1".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let commands = [
            Command::Pings(vec![Bytes::from(ping.clone()), Bytes::from(ping)]),
            Command::Dispatch(DispatchRequest {
                incident_id: "inc-1".into(),
                unit_ids: vec!["u1".into()],
                note: "go".into(),
                request_id: Some("r-1".into()),
                intercept: Default::default(),
            }),
            Command::Tick { sweep: true },
        ];
        for command in commands {
            let entry = LogEntry::new(7, 9, Envelope::new(actor(), 42, command.clone()));
            let bytes = Bytes::from(entry.encode_to_vec());
            let back = LogEntry::decode(bytes.clone()).expect("decodes");
            assert_eq!((back.now_unix_ms, back.origin, back.request), (42, 7, 9));
            let back = back.into_envelope("1-0", 5_000).expect("known body");
            assert_eq!(back.actor, actor());
            if let Command::Pings(pings) = &back.body {
                let inside = bytes.as_ptr_range();
                assert!(pings.iter().all(|p| inside.contains(&p.as_ptr())));
            }
            assert_eq!(back.body, command);
        }
    }

    #[test]
    fn an_older_builds_entry_still_replays_and_a_bad_one_is_refused() {
        let old = LogEntry {
            now_unix_ms: 42,
            origin: 1,
            request: 2,
            actor: None,
            body: Some(Body::Dispatch(pb::DispatchRequest {
                incident_id: "inc-1".into(),
                unit_ids: vec!["u1".into()],
                note: String::new(),
                request_id: String::new(),
                intercept: Default::default(),
            })),
        };
        let envelope = old.into_envelope("1-0", 5_000).expect("replays");
        assert_eq!(envelope.actor, Actor::default());
        assert!(matches!(envelope.body, Command::Dispatch(ref d) if d.unit_ids == ["u1"]));

        let bad = LogEntry {
            now_unix_ms: 42,
            origin: 1,
            request: 2,
            actor: None,
            body: Some(Body::Dispatch(pb::DispatchRequest::default())),
        };
        let err = bad.into_envelope("1-0", 5_000).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

        let unknown = LogEntry {
            body: None,
            ..Default::default()
        };
        assert!(matches!(
            unknown.into_envelope("9-9", 5_000),
            Err(ServerError::UnknownEntry { .. })
        ));
    }
}
