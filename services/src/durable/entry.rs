//! One entry of the region's log, as stored in the Redis Stream: a [`Command`]
//! with the time it was accepted and who is waiting for its outcome.
//!
//! Encoded as protobuf (stable field tags, so entries written by an older
//! build stay readable); the request messages are the public API's own. The
//! encoding lives here rather than in `proto/` because no client ever sees it.

use bytes::Bytes;
use patrol_dispatcher::Millis;
use patrol_proto::v1 as pb;

use crate::command::Command;

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
    #[prost(oneof = "Body", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18")]
    pub body: Option<Body>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    #[prost(message, tag = "10")]
    RegisterUnit(pb::RegisterUnitRequest),
    #[prost(message, tag = "11")]
    Pings(PingsEntry),
    #[prost(message, tag = "12")]
    UpdateStatus(pb::UpdateStatusRequest),
    #[prost(message, tag = "13")]
    RegisterCamera(pb::RegisterCameraRequest),
    #[prost(message, tag = "14")]
    PostAlert(pb::PostAlertRequest),
    #[prost(message, tag = "15")]
    CreateIncident(pb::CreateIncidentRequest),
    #[prost(message, tag = "16")]
    Dispatch(pb::DispatchRequest),
    #[prost(message, tag = "17")]
    UpdateIncident(pb::UpdateIncidentRequest),
    #[prost(message, tag = "18")]
    Tick(TickEntry),
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
    pub fn new(now: Millis, origin: u64, request: u64, command: Command) -> Self {
        let body = match command {
            Command::RegisterUnit(r) => Body::RegisterUnit(r),
            Command::Pings(pings) => Body::Pings(PingsEntry { pings }),
            Command::UpdateStatus(r) => Body::UpdateStatus(r),
            Command::RegisterCamera(r) => Body::RegisterCamera(r),
            Command::PostAlert(r) => Body::PostAlert(r),
            Command::CreateIncident(r) => Body::CreateIncident(r),
            Command::Dispatch(r) => Body::Dispatch(r),
            Command::UpdateIncident(r) => Body::UpdateIncident(r),
            Command::Tick { sweep } => Body::Tick(TickEntry { sweep }),
        };
        Self {
            now_unix_ms: now,
            origin,
            request,
            body: Some(body),
        }
    }

    /// The command, or `None` for an entry whose body this build does not know.
    pub fn into_command(self) -> Option<Command> {
        Some(match self.body? {
            Body::RegisterUnit(r) => Command::RegisterUnit(r),
            Body::Pings(p) => Command::Pings(p.pings),
            Body::UpdateStatus(r) => Command::UpdateStatus(r),
            Body::RegisterCamera(r) => Command::RegisterCamera(r),
            Body::PostAlert(r) => Command::PostAlert(r),
            Body::CreateIncident(r) => Command::CreateIncident(r),
            Body::Dispatch(r) => Command::Dispatch(r),
            Body::UpdateIncident(r) => Command::UpdateIncident(r),
            Body::Tick(t) => Command::Tick { sweep: t.sweep },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn entries_round_trip_and_pings_stay_zero_copy() {
        let ping = pb::Ping {
            unit_id: "u1".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let commands = [
            Command::Pings(vec![Bytes::from(ping.clone()), Bytes::from(ping)]),
            Command::Dispatch(pb::DispatchRequest {
                incident_id: "inc-1".into(),
                unit_ids: vec!["u1".into()],
                note: "go".into(),
            }),
            Command::Tick { sweep: true },
        ];
        for command in commands {
            let entry = LogEntry::new(42, 7, 9, command.clone());
            let bytes = Bytes::from(entry.encode_to_vec());
            let back = LogEntry::decode(bytes.clone()).expect("decodes");
            assert_eq!((back.now_unix_ms, back.origin, back.request), (42, 7, 9));
            let back = back.into_command().expect("known body");
            if let Command::Pings(pings) = &back {
                let inside = bytes.as_ptr_range();
                assert!(pings.iter().all(|p| inside.contains(&p.as_ptr())));
            }
            assert_eq!(back, command);
        }
    }
}
