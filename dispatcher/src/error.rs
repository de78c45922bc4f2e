//! The core's errors: each variant is something a caller can act on. The service
//! edge maps them to gRPC codes in one place (`patrol_services::status`).

/// Everything the dispatcher can refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong: names the field and the value.
    #[error("invalid {field} = {value}: {reason}")]
    Invalid {
        /// The field, as the caller names it (e.g. `unit_ids[2]`).
        field: String,
        /// The refused value, shortened when long.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A referenced thing does not exist.
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// What kind of thing: "unit", "camera", "incident".
        entity: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// The request is well-formed but the current state does not allow it
    /// (a busy unit, an illegal incident transition, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A table has reached its capacity: `what` is full, holding at most
    /// `limit`. Not the caller's mistake and not a state they can change;
    /// the service answers ResourceExhausted.
    #[error("{what} is full (at most {limit})")]
    Full {
        /// The table, e.g. "unit table".
        what: String,
        /// Its capacity, with the unit, e.g. "4294967295 units".
        limit: String,
    },
}

impl Error {
    /// Bad input: `field` had `value`, which is wrong because `reason`.
    pub fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A capacity is exhausted: `what` holds at most `limit` (say the unit,
    /// e.g. "4294967295 units").
    pub fn full(what: impl Into<String>, limit: impl Into<String>) -> Self {
        Error::Full {
            what: what.into(),
            limit: limit.into(),
        }
    }

    /// No `entity` with this `id`.
    pub fn not_found(entity: &'static str, id: &str) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Checks a caller-chosen id: non-empty, at most `MAX_ID_LEN` bytes, no control
/// characters.
pub fn validate_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "\"\"", "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            field,
            format!("{:?}...", &id[..id.floor_char_boundary(32)]),
            format!("must be at most {MAX_ID_LEN} bytes"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{id:?}"),
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_says_what_and_how_much() {
        let err = Error::full("unit table", format!("{} units", u32::MAX));
        assert_eq!(
            err.to_string(),
            "unit table is full (at most 4294967295 units)"
        );
    }
}
