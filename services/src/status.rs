//! The one place where domain errors become gRPC status codes.
//!
//! Bad input is `InvalidArgument` naming the field and value, a missing thing is
//! `NotFound`, a state that forbids the request is `FailedPrecondition`, a full
//! queue is `ResourceExhausted`. A caller's mistake is never `Internal`.

use patrol_dispatcher::Error;
use tonic::Status;

/// Maps a dispatcher refusal to its gRPC status.
pub fn to_status(err: Error) -> Status {
    let message = err.to_string();
    match err {
        Error::Invalid { .. } => Status::invalid_argument(message),
        Error::NotFound { .. } => Status::not_found(message),
        Error::FailedPrecondition(_) => Status::failed_precondition(message),
    }
}

/// `InvalidArgument` for a required message field that is absent.
pub fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("invalid {field}: is required"))
}

/// Lets handlers write `core.thing()?` on dispatcher results.
pub trait IntoStatus<T> {
    fn into_status(self) -> Result<T, Status>;
}

impl<T> IntoStatus<T> for Result<T, Error> {
    fn into_status(self) -> Result<T, Status> {
        self.map_err(to_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn codes() {
        assert_eq!(
            to_status(Error::invalid("lon", "NaN", "bad")).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            to_status(Error::not_found("unit", "u1")).code(),
            Code::NotFound
        );
        assert_eq!(
            to_status(Error::FailedPrecondition("busy".into())).code(),
            Code::FailedPrecondition
        );
        assert!(
            to_status(Error::invalid("lon", "NaN", "bad"))
                .message()
                .contains("lon = NaN")
        );
    }
}
