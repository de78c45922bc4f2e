//! The gRPC services over the [`Hub`](crate::hub::Hub). Handlers convert
//! the request once (`convert::from_wire`), stamp it with who sent it
//! ([`origin`]), hand it to one typed hub method, and convert the answer back;
//! every error is a [`ServerError`](crate::error::ServerError).

mod cameras;
mod command_room;
mod incidents;
mod tracks;
mod units;
mod zones;

pub use cameras::CameraApi;
pub use command_room::CommandRoomApi;
pub use incidents::IncidentApi;
pub use tracks::TrackApi;
pub use units::UnitApi;
pub use zones::ZoneApi;

use patrol_dispatcher::Actor;
use tonic::Request;

use crate::clock::now_ms;
use crate::error::ServerError;
use crate::hub::{Hub, Origin};

/// The metadata key a caller may name itself in (until authentication fills
/// the actor from a credential).
pub const ACTOR_HEADER: &str = "x-patrol-actor";

/// Longest accepted `x-patrol-actor` value, in bytes.
const MAX_ACTOR_LEN: usize = 128;

/// Who sent `request` (its peer address, and the identity of its verified
/// client certificate under mutual TLS, else `x-patrol-actor`) via this node,
/// and now.
pub fn origin<T>(hub: &Hub, request: &Request<T>) -> Result<Origin, ServerError> {
    let certified = crate::tls::request_identity(request);
    let identity = match (certified, request.metadata().get(ACTOR_HEADER)) {
        (Some(name), _) => name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ACTOR_LEN)
            .collect(),
        (None, None) => String::new(),
        (None, Some(value)) => {
            let text = value.to_str().map_err(|_| {
                ServerError::bad(
                    ACTOR_HEADER,
                    "(not printable ASCII)",
                    "must be printable text",
                )
            })?;
            if text.len() > MAX_ACTOR_LEN || text.chars().any(char::is_control) {
                return Err(ServerError::bad(
                    ACTOR_HEADER,
                    format!("{:?}", &text[..text.len().min(32)]),
                    format!("must be at most {MAX_ACTOR_LEN} bytes of printable text"),
                ));
            }
            text.trim().to_string()
        }
    };
    Ok(Origin {
        actor: Actor {
            identity,
            role: String::new(),
            peer: request
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            node: hub.name().to_string(),
        },
        time: now_ms(),
    })
}
