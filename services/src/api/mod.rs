//! The gRPC services over the [`Hub`](crate::hub::Hub). Handlers convert
//! the request once (`convert::from_wire`), stamp it with who sent it
//! ([`origin`]), hand it to one typed hub method, and convert the answer back;
//! every error is a [`ServerError`](crate::error::ServerError).

mod auth;
mod cameras;
mod command_room;
mod incidents;
mod tracks;
mod units;
mod zones;

pub use auth::AuthApi;
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

/// The metadata key a caller may name itself in when it carries no
/// credential (`auth.required = false`); ignored when it does.
pub const ACTOR_HEADER: &str = "x-patrol-actor";

/// Longest accepted `x-patrol-actor` value, in bytes.
const MAX_ACTOR_LEN: usize = 128;

/// Who sent `request` via this node, and now: the identity and role of its
/// credential (else, with `auth.required` off, the identity of its verified
/// client certificate or its `x-patrol-actor`), and its peer address.
pub fn origin<T>(hub: &Hub, request: &Request<T>) -> Result<Origin, ServerError> {
    let peer = request
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Some(principal) = crate::auth::principal(request) {
        return Ok(Origin {
            actor: Actor {
                identity: principal.identity.clone(),
                role: principal.role.as_str().to_string(),
                peer,
                node: hub.name().to_string(),
            },
            time: now_ms(),
        });
    }
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
            peer,
            node: hub.name().to_string(),
        },
        time: now_ms(),
    })
}
