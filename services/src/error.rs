//! [`ServerError`]: every way a request to this server can fail, and the one
//! place that maps each to a gRPC code ([`ServerError::code`]) and an HTTP
//! status ([`ServerError::http_status`]).
//!
//! Bad input is `InvalidArgument` naming the field and the value; a missing
//! thing is `NotFound`; a state that forbids the request is
//! `FailedPrecondition`; anything full (a table, a queue, a message over the
//! size limit) is `ResourceExhausted`; the durable log's states say whether a
//! change was stored. A caller's mistake is never `Internal`. Handlers return
//! `ServerError` and let `?` turn it into a `tonic::Status`; nothing else in the
//! server builds a `Status`.

use axum::http::StatusCode;
use tonic::{Code, Status};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServerError {
    /// The dispatcher core refused the change or query.
    #[error(transparent)]
    Core(#[from] patrol_dispatcher::Error),
    /// A request field is wrong, as it came off the wire.
    #[error("invalid {field} = {value}: {reason}")]
    BadRequest {
        field: String,
        value: String,
        reason: String,
    },
    /// A required request field is absent.
    #[error("invalid {field}: is required")]
    Missing { field: String },
    /// A message or batch over a configured size limit.
    #[error("{what} is too large: {size}, the limit is {limit} ({setting})")]
    TooLarge {
        what: String,
        size: String,
        limit: String,
        setting: &'static str,
    },
    /// Too many changes are waiting for the durable log in this lane.
    #[error("{waiting} {lane} changes are already waiting for Redis ({setting}); retry later")]
    QueueFull {
        lane: &'static str,
        waiting: usize,
        setting: &'static str,
    },
    /// A caller over one of its limits (a rate, its open streams, an idle
    /// stream) or a node-wide cap (Watch subscribers); see
    /// [`crate::limits`].
    #[error("{what} for caller {caller:?}: {limit} ({setting})")]
    RateLimited {
        what: String,
        caller: String,
        limit: String,
        setting: &'static str,
    },
    /// The server is stopping; reconnect to another node or later.
    #[error("server shutting down; {0}")]
    ShuttingDown(&'static str),
    /// The durable log refused the append: nothing was stored.
    #[error("redis unavailable; {command} was not stored, retry: {cause}")]
    NotStored {
        command: &'static str,
        cause: String,
    },
    /// The durable log did not answer in time: the change may or may not be
    /// stored (retry with the same `request_id` to be safe).
    #[error("redis did not answer in time; {command} may or may not have been stored: {cause}")]
    MaybeStored {
        command: &'static str,
        cause: String,
    },
    /// Stored, but this node did not apply it in time (it will).
    #[error(
        "{command} is stored in the log as {entry} but was not applied on this node within {waited_ms} ms; it takes effect when the log is read"
    )]
    NotApplied {
        command: &'static str,
        entry: String,
        waited_ms: u64,
    },
    /// A log entry written by a newer build.
    #[error("log entry {entry} is of a kind this build does not know")]
    UnknownEntry { entry: String },
    /// A newer terminal took over this unit's order stream.
    #[error("replaced by a newer ReceiveOrders for unit {unit_id}")]
    Replaced { unit_id: String },
    /// A store the call needs (the credential store in Redis) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The caller has no valid credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role or scope does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A failure of the transport or the stream, passed on with its own code.
    #[error("{message}")]
    Stream { code: Code, message: String },
    /// A bug: never a caller's mistake.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The start of tonic's message when a message exceeds its decoding limit; it
/// reports that as OUT_OF_RANGE, gRPC's status table says RESOURCE_EXHAUSTED.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// The start of tonic's message when a request's bytes are not the protobuf
/// message the method takes; it reports that as INTERNAL, but it is the
/// caller's mistake: INVALID_ARGUMENT.
const TONIC_UNDECODABLE: &str = "failed to decode Protobuf message";

impl ServerError {
    /// `BadRequest` naming the field and the value.
    pub fn bad(field: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        ServerError::BadRequest {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// `Missing` for a required message field.
    pub fn missing(field: &str) -> Self {
        ServerError::Missing {
            field: field.to_string(),
        }
    }

    /// A failure tonic reported while reading a request stream.
    pub fn from_stream(status: Status) -> Self {
        if status.code() == Code::Internal && status.message().starts_with(TONIC_UNDECODABLE) {
            return ServerError::Stream {
                code: Code::InvalidArgument,
                message: format!("the request is not a valid message: {}", status.message()),
            };
        }
        if status.code() == Code::OutOfRange && status.message().starts_with(TONIC_TOO_LARGE) {
            return ServerError::TooLarge {
                what: "message".into(),
                size: status.message()[TONIC_TOO_LARGE.len()..]
                    .trim_start_matches(':')
                    .trim()
                    .to_string(),
                limit: "see limits.max_message_bytes".into(),
                setting: "limits.max_message_bytes",
            };
        }
        ServerError::Stream {
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// The gRPC code for this error.
    pub fn code(&self) -> Code {
        use patrol_dispatcher::Error as E;
        match self {
            ServerError::Core(E::Invalid { .. }) => Code::InvalidArgument,
            ServerError::Core(E::NotFound { .. }) => Code::NotFound,
            ServerError::Core(E::FailedPrecondition(_)) => Code::FailedPrecondition,
            ServerError::Core(E::Full { .. }) => Code::ResourceExhausted,
            ServerError::BadRequest { .. } | ServerError::Missing { .. } => Code::InvalidArgument,
            ServerError::TooLarge { .. }
            | ServerError::QueueFull { .. }
            | ServerError::RateLimited { .. } => Code::ResourceExhausted,
            ServerError::ShuttingDown(_)
            | ServerError::NotStored { .. }
            | ServerError::Unavailable(_) => Code::Unavailable,
            ServerError::MaybeStored { .. } | ServerError::NotApplied { .. } => {
                Code::DeadlineExceeded
            }
            ServerError::UnknownEntry { .. } => Code::Unimplemented,
            ServerError::Replaced { .. } => Code::Aborted,
            ServerError::Unauthenticated(_) => Code::Unauthenticated,
            ServerError::PermissionDenied(_) => Code::PermissionDenied,
            ServerError::Stream { code, .. } => *code,
            ServerError::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status for this error (for HTTP endpoints and gateways),
    /// following the gRPC-to-HTTP mapping of google.rpc.Code.
    pub fn http_status(&self) -> StatusCode {
        match self.code() {
            Code::Ok => StatusCode::OK,
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition => StatusCode::CONFLICT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServerError> for Status {
    fn from(err: ServerError) -> Self {
        Status::new(err.code(), err.to_string())
    }
}

/// Rewrites tonic's replies for requests it could not decode to the codes
/// gRPC's status table has: OUT_OF_RANGE "decoded message length too large"
/// to RESOURCE_EXHAUSTED, INTERNAL "failed to decode Protobuf message" to
/// INVALID_ARGUMENT. Unary requests are decoded before a handler runs, so the
/// reply is rewritten on its way out: a trailers-only response carries
/// `grpc-status` in its headers. (Streamed requests are mapped by
/// [`ServerError::from_stream`] in the handler.)
pub fn map_too_large<B>(mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    let undecodable = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13")
        && headers.get("grpc-message").is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"failed%20to%20decode%20Protobuf%20message")
                || v.as_bytes().starts_with(TONIC_UNDECODABLE.as_bytes())
        });
    if undecodable {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("3"));
    }
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers.get("grpc-message").is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
            || v.as_bytes().starts_with(TONIC_TOO_LARGE.as_bytes())
    });
    if out_of_range && too_large {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("8"));
        metrics::counter!(crate::telemetry::MESSAGES_TOO_LARGE).increment(1);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use patrol_dispatcher::Error;

    #[test]
    fn every_error_has_one_code_and_the_message_names_the_field() {
        let cases = [
            (
                ServerError::from(Error::invalid("lon", "NaN", "bad")),
                Code::InvalidArgument,
            ),
            (
                ServerError::from(Error::not_found("unit", "u1")),
                Code::NotFound,
            ),
            (
                ServerError::from(Error::FailedPrecondition("busy".into())),
                Code::FailedPrecondition,
            ),
            (
                ServerError::from(Error::Full {
                    what: "unit table".into(),
                    limit: "4".into(),
                }),
                Code::ResourceExhausted,
            ),
            (
                ServerError::bad("status", 9, "unknown"),
                Code::InvalidArgument,
            ),
            (ServerError::missing("camera"), Code::InvalidArgument),
            (
                ServerError::QueueFull {
                    lane: "routine",
                    waiting: 4,
                    setting: "redis.max_in_flight",
                },
                Code::ResourceExhausted,
            ),
            (
                ServerError::RateLimited {
                    what: "ping batch 3 refused".into(),
                    caller: "gw".into(),
                    limit: "over 10 pings/s, burst 20".into(),
                    setting: "limits.pings_per_second_per_caller",
                },
                Code::ResourceExhausted,
            ),
            (ServerError::ShuttingDown("reconnect"), Code::Unavailable),
            (
                ServerError::NotStored {
                    command: "dispatch",
                    cause: "down".into(),
                },
                Code::Unavailable,
            ),
            (
                ServerError::MaybeStored {
                    command: "dispatch",
                    cause: "timeout".into(),
                },
                Code::DeadlineExceeded,
            ),
            (
                ServerError::Replaced {
                    unit_id: "u1".into(),
                },
                Code::Aborted,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(Status::from(err.clone()).code(), code);
            assert_ne!(err.http_status(), StatusCode::OK);
        }
        let status = Status::from(ServerError::from(Error::invalid("lon", "NaN", "bad")));
        assert!(
            status.message().contains("lon = NaN"),
            "{}",
            status.message()
        );
        assert_eq!(
            ServerError::QueueFull {
                lane: "routine",
                waiting: 4,
                setting: "redis.max_in_flight"
            }
            .http_status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn tonics_too_large_becomes_resource_exhausted() {
        let status = Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        let err = ServerError::from_stream(status);
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.to_string().contains("5000000"), "{err}");
        let other = ServerError::from_stream(Status::cancelled("gone"));
        assert_eq!(other.code(), Code::Cancelled);

        let response = axum::http::Response::builder()
            .header("grpc-status", "11")
            .header(
                "grpc-message",
                "Error,%20decoded%20message%20length%20too%20large:%20found%205000000%20bytes",
            )
            .body(())
            .unwrap();
        assert_eq!(map_too_large(response).headers()["grpc-status"], "8");
        let untouched = axum::http::Response::builder()
            .header("grpc-status", "11")
            .header("grpc-message", "other")
            .body(())
            .unwrap();
        assert_eq!(map_too_large(untouched).headers()["grpc-status"], "11");
        let undecodable = axum::http::Response::builder()
            .header("grpc-status", "13")
            .header(
                "grpc-message",
                "failed%20to%20decode%20Protobuf%20message:%20invalid%20wire%20type",
            )
            .body(())
            .unwrap();
        assert_eq!(map_too_large(undecodable).headers()["grpc-status"], "3");
        let internal = axum::http::Response::builder()
            .header("grpc-status", "13")
            .header("grpc-message", "internal%20error")
            .body(())
            .unwrap();
        assert_eq!(map_too_large(internal).headers()["grpc-status"], "13");
    }
}
