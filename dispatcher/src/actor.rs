//! Who did it: the [`Actor`] behind a command, recorded in every incident
//! audit entry the command writes, so the trail answers "who dispatched this
//! unit, from where, through which node".

use std::fmt;

use crate::error::{Error, MAX_ID_LEN};

/// Who sent a command, as the service established it at the edge (from the
/// caller's credentials and connection), or [`Actor::system`] for the
/// server's own actions. Empty fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// The authenticated principal, e.g. an operator's user name or a
    /// terminal's unit id; "system" for the server itself.
    pub identity: String,
    /// What the principal acts as, e.g. "operator", "terminal", "camera".
    pub role: String,
    /// The caller's network address, e.g. "10.0.0.5:4431".
    pub peer: String,
    /// The node that accepted the command, e.g. "node-a".
    pub node: String,
}

impl Actor {
    /// The identity of the server's own actions.
    pub const SYSTEM: &'static str = "system";

    /// An actor with an identity and a role; no peer or node yet.
    pub fn new(identity: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            role: role.into(),
            ..Self::default()
        }
    }

    /// The server itself on `node`: position ticks, offline sweeps and
    /// anything else no caller asked for.
    pub fn system(node: impl Into<String>) -> Self {
        Self {
            identity: Self::SYSTEM.to_string(),
            node: node.into(),
            ..Self::default()
        }
    }

    /// The same actor, calling from `peer` (a network address).
    pub fn with_peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = peer.into();
        self
    }

    /// The same actor, through `node` (the node that accepted the command).
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }

    /// Whether this is the server's own action.
    pub fn is_system(&self) -> bool {
        self.identity == Self::SYSTEM
    }

    /// Each field at most [`MAX_ID_LEN`] bytes and free of control
    /// characters (they end up in audit trails and logs); any may be empty.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, value) in [
            ("actor.identity", &self.identity),
            ("actor.role", &self.role),
            ("actor.peer", &self.peer),
            ("actor.node", &self.node),
        ] {
            if value.len() > MAX_ID_LEN {
                return Err(Error::invalid(
                    field,
                    format!("{:?}...", &value[..value.floor_char_boundary(32)]),
                    format!("must be at most {MAX_ID_LEN} bytes"),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field,
                    format!("{value:?}"),
                    "must not contain control characters",
                ));
            }
        }
        Ok(())
    }
}

/// Reads as one line of an audit trail: `alice (operator) from
/// 10.0.0.5:4431 via node-a`, leaving out what is unknown; an actor with no
/// identity is `anonymous`.
impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.identity.is_empty() {
            f.write_str("anonymous")?;
        } else {
            f.write_str(&self.identity)?;
        }
        if !self.role.is_empty() {
            write!(f, " ({})", self.role)?;
        }
        if !self.peer.is_empty() {
            write!(f, " from {}", self.peer)?;
        }
        if !self.node.is_empty() {
            write!(f, " via {}", self.node)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_read_well_in_an_audit_trail() {
        let alice = Actor::new("alice", "operator")
            .with_peer("10.0.0.5:4431")
            .with_node("node-a");
        assert_eq!(
            alice.to_string(),
            "alice (operator) from 10.0.0.5:4431 via node-a"
        );
        assert_eq!(Actor::new("bob", "").to_string(), "bob");
        assert_eq!(Actor::system("node-b").to_string(), "system via node-b");
        assert!(Actor::system("node-b").is_system() && !alice.is_system());
        assert_eq!(
            Actor::default().with_peer("[::1]:9").to_string(),
            "anonymous from [::1]:9"
        );
    }

    #[test]
    fn actor_fields_are_bounded_and_printable() {
        assert!(Actor::default().validate().is_ok());
        let err = Actor::new("a\nb", "operator").validate().unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "actor.identity"),
            "{err:?}"
        );
        let err = Actor::system("n".repeat(129)).validate().unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "actor.node"),
            "{err:?}"
        );
    }
}
