//! Who may call what: credentials, roles and scopes.
//!
//! One door: [`layer::AuthLayer`] wraps every gRPC service. It reads the
//! call's credential (`authorization: Bearer <token>`, or the verified client
//! certificate of a mutual-TLS connection), resolves it through the
//! [`store::CredentialStore`] (in memory, or the region's Redis so every node
//! sees the same credentials and revocations), checks the method against the
//! role table ([`policy`]), and hands the [`Principal`] to the handler in the
//! request's extensions. Handlers then check what only they can see: that a
//! terminal reports for its own units, a camera system for its own cameras
//! ([`Principal::covers`]).
//!
//! Secrets are never stored: bearer tokens (256 random bits) are kept as a
//! keyed hash (HMAC-SHA-256, fast enough to check on every call), login
//! secrets (which people may choose) as Argon2id.

pub(crate) mod layer;
pub(crate) mod policy;
pub(crate) mod secret;
pub(crate) mod store;

use patrol_proto::v1 as pb;
use serde::{Deserialize, Serialize};

pub use store::CredentialStore;

/// What a caller is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A unit's terminal: its own units' positions, status and orders.
    Terminal,
    /// A camera system: its own cameras and their alerts.
    CameraSystem,
    /// Watches and reads.
    Viewer,
    /// A viewer that also runs incidents, dispatch, cameras and tracks.
    Operator,
    /// Everything, including units, cameras, zones and credentials.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Terminal => "terminal",
            Role::CameraSystem => "camera_system",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "terminal" => Role::Terminal,
            "camera_system" | "camera" => Role::CameraSystem,
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    pub fn to_wire(self) -> pb::Role {
        match self {
            Role::Terminal => pb::Role::Terminal,
            Role::CameraSystem => pb::Role::CameraSystem,
            Role::Viewer => pb::Role::Viewer,
            Role::Operator => pb::Role::Operator,
            Role::Admin => pb::Role::Admin,
        }
    }

    pub fn from_wire(role: pb::Role) -> Option<Role> {
        Some(match role {
            pb::Role::Unspecified => return None,
            pb::Role::Terminal => Role::Terminal,
            pb::Role::CameraSystem => Role::CameraSystem,
            pb::Role::Viewer => Role::Viewer,
            pb::Role::Operator => Role::Operator,
            pb::Role::Admin => Role::Admin,
        })
    }

    /// People log in and their sessions expire; machines use keys.
    pub fn is_person(self) -> bool {
        matches!(self, Role::Viewer | Role::Operator | Role::Admin)
    }
}

/// How a credential is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A bearer token used as it is.
    Key,
    /// A secret to log in with; never a bearer token.
    Login,
    /// A bearer token from a login; expires.
    Session,
    /// A client certificate whose subject is the identity.
    Certificate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Login => "login",
            Kind::Session => "session",
            Kind::Certificate => "certificate",
        }
    }

    pub fn to_wire(self) -> pb::CredentialKind {
        match self {
            Kind::Key => pb::CredentialKind::Key,
            Kind::Login => pb::CredentialKind::Login,
            Kind::Session => pb::CredentialKind::Session,
            Kind::Certificate => pb::CredentialKind::Certificate,
        }
    }

    pub fn from_wire(kind: pb::CredentialKind) -> Option<Kind> {
        Some(match kind {
            pb::CredentialKind::Unspecified => return None,
            pb::CredentialKind::Key => Kind::Key,
            pb::CredentialKind::Login => Kind::Login,
            pb::CredentialKind::Session => Kind::Session,
            pb::CredentialKind::Certificate => Kind::Certificate,
        })
    }
}

/// A caller the server has authenticated, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: String,
    pub role: Role,
    /// Unit ids (terminal) or camera ids (camera system); an entry ending in
    /// `*` covers every id with that prefix. Empty for the other roles.
    pub scope: Vec<String>,
    pub credential_id: String,
    pub kind: Kind,
    /// 0: never.
    pub expires_ms: i64,
}

impl Principal {
    /// Whether this caller may act for the unit or camera `id`. Admins may
    /// act for any; a terminal or camera system for the ids of its scope.
    pub fn covers(&self, id: &str) -> bool {
        self.role == Role::Admin || scope_covers(&self.scope, id)
    }

    pub fn to_wire(&self) -> pb::Principal {
        pb::Principal {
            identity: self.identity.clone(),
            role: self.role.to_wire() as i32,
            scope: self.scope.clone(),
            credential_id: self.credential_id.clone(),
            kind: self.kind.to_wire() as i32,
            expires_unix_ms: self.expires_ms,
        }
    }
}

pub use patrol_proto::auth::demo_credentials_path;

/// Records a security event in the audit log (logons, refusals, lockouts,
/// credential changes), at the current time.
pub(crate) fn audit(
    hub: &crate::hub::Hub,
    actor: patrol_dispatcher::Actor,
    action: &str,
    target: &str,
    detail: &str,
    outcome: &str,
) {
    let record = crate::audit::AuditRecord::new(actor, crate::clock::now_ms(), action, target)
        .with_detail(detail);
    hub.audit().record(if outcome == crate::audit::OUTCOME_OK {
        record
    } else {
        record.refused(outcome)
    });
}

/// Whether `scope` names `id`, exactly or by a `prefix*` entry.
pub fn scope_covers(scope: &[String], id: &str) -> bool {
    scope.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => entry == id,
    })
}

/// The principal the auth layer attached to `request`, if any (none when
/// `auth.required = false` and the call carried no credential).
pub fn principal<T>(request: &tonic::Request<T>) -> Option<&Principal> {
    request
        .extensions()
        .get::<std::sync::Arc<Principal>>()
        .map(|p| p.as_ref())
}

/// The store a call's principal came from, so that a long stream can ask
/// whether its credential still holds.
#[derive(Clone)]
pub(crate) struct Lapse(pub(crate) std::sync::Arc<CredentialStore>);

/// How often a long stream checks its credential.
fn lapse_every(store: &CredentialStore) -> std::time::Duration {
    std::time::Duration::from_millis(store.config().cache_ms.clamp(250, 5_000))
}

/// Resolves, with the reason, once a call's credential lapses.
pub type Lapsed = std::pin::Pin<Box<dyn Future<Output = crate::error::ServerError> + Send>>;

/// For a long stream: a future that resolves, with the reason, once the
/// credential the call began with is revoked, expires or its identity is
/// locked; pending forever when the call carried none (auth off). A store
/// that does not answer does not end the stream.
pub fn lapsed<T>(request: &tonic::Request<T>) -> Lapsed {
    let (Some(principal), Some(Lapse(store))) = (
        principal(request).cloned(),
        request.extensions().get::<Lapse>().cloned(),
    ) else {
        return Box::pin(std::future::pending());
    };
    Box::pin(async move {
        let every = lapse_every(&store);
        loop {
            tokio::time::sleep(every).await;
            match store.still_valid(&principal, crate::clock::now_ms()).await {
                Ok(()) | Err(Err(_)) => continue,
                Err(Ok(refusal)) => {
                    metrics::counter!(crate::telemetry::AUTH_STREAMS_ENDED).increment(1);
                    return refusal.into_error();
                }
            }
        }
    })
}

/// A server stream that ends with the reason once its call's credential
/// lapses (see [`lapsed`]): a revoked operator stops watching, a revoked
/// terminal stops receiving orders.
pub struct Lapsing<S> {
    inner: S,
    lapsed: Lapsed,
    ended: bool,
}

impl<S> Lapsing<S> {
    /// `inner`, ended once `lapsed` resolves.
    pub fn with(inner: S, lapsed: Lapsed) -> Self {
        Self {
            inner,
            lapsed,
            ended: false,
        }
    }
}

impl<S, M> tokio_stream::Stream for Lapsing<S>
where
    S: tokio_stream::Stream<Item = Result<M, tonic::Status>> + Unpin,
{
    type Item = Result<M, tonic::Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(err) = self.lapsed.as_mut().poll(cx) {
            self.ended = true;
            return Poll::Ready(Some(Err(err.into())));
        }
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Refuses `request` unless its caller may act for `id` (`what` names the
/// field, e.g. "unit_id"). Open when there is no principal (auth off).
pub fn check_covers<T>(
    request: &tonic::Request<T>,
    what: &str,
    id: &str,
) -> Result<(), crate::error::ServerError> {
    match principal(request) {
        Some(p) if !p.covers(id) => {
            metrics::counter!(crate::telemetry::AUTH_DENIED, "why" => "scope").increment(1);
            Err(crate::error::ServerError::PermissionDenied(format!(
                "{} {:?} may not act for {what} {id:?}: not in its scope",
                p.role.as_str(),
                p.identity
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_matches_exact_ids_and_prefixes() {
        let scope = vec!["unit-7".to_string(), "cam-north-*".to_string()];
        assert!(scope_covers(&scope, "unit-7"));
        assert!(!scope_covers(&scope, "unit-70"));
        assert!(scope_covers(&scope, "cam-north-12"));
        assert!(!scope_covers(&scope, "cam-south-1"));
        assert!(!scope_covers(&[], "unit-7"));
        assert!(scope_covers(&["*".to_string()], "anything"));
    }
}
