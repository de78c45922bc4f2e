//! The one door: a tower layer in front of every gRPC service that admits a
//! call only with a credential whose role the method allows (see
//! [`super::policy`]), and hands the [`Principal`] on in the request's
//! extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http;
use patrol_dispatcher::Actor;
use tonic::transport::server::TcpConnectInfo;

use super::policy::{self, Need};
use super::store::{CredentialStore, Refusal};
use super::{Principal, audit};
use crate::clock::now_ms;
use crate::error::ServerError;
use crate::hub::Hub;
use crate::telemetry as m;

/// What the layer needs: the store, whether a credential is required, and
/// the hub (for the audit log and the node's name).
pub(crate) struct Gate {
    pub store: Arc<CredentialStore>,
    pub hub: Arc<Hub>,
}

/// Wraps services in [`AuthService`].
#[derive(Clone)]
pub(crate) struct AuthLayer {
    gate: Arc<Gate>,
}

impl AuthLayer {
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub(crate) struct AuthService<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The ready clone serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        // What the check needs, taken out first: the body is not `Sync`, so
        // the request cannot be borrowed across the store lookup.
        let presented = Presented {
            path: request.uri().path().to_string(),
            authorization: request.headers().get(http::header::AUTHORIZATION).cloned(),
            certificate: crate::tls::cert_identity(request.extensions()),
            peer: peer_of(request.extensions()),
        };
        Box::pin(async move {
            match gate.admit(presented).await {
                Ok(Some(principal)) => {
                    request.extensions_mut().insert(Arc::new(principal));
                    request
                        .extensions_mut()
                        .insert(super::Lapse(gate.store.clone()));
                }
                Ok(None) => {}
                Err(err) => return Ok(tonic::Status::from(err).into_http()),
            }
            inner.call(request).await
        })
    }
}

/// The caller's address as the transport saw it.
pub(crate) fn peer_of(extensions: &http::Extensions) -> String {
    extensions
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            extensions
                .get::<tonic::transport::server::TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// What a call presents to the door.
struct Presented {
    path: String,
    authorization: Option<http::HeaderValue>,
    /// The verified client certificate's identity (mutual TLS).
    certificate: Option<String>,
    peer: String,
}

impl Gate {
    /// The principal for this call (`None`: an open method, or no credential
    /// while `auth.required` is off), or why it is refused.
    async fn admit(&self, presented: Presented) -> Result<Option<Principal>, ServerError> {
        let Presented {
            path,
            authorization,
            certificate,
            peer,
        } = presented;
        let path = path.as_str();
        let need = policy::need(path);
        if need == Need::Open {
            return Ok(None);
        }
        let now = now_ms();
        let resolved = match authorization {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim);
                match token {
                    Some(token) => self.store.bearer(token, now).await,
                    None => Err(Ok((Refusal::Malformed, None))),
                }
            }
            None => match certificate {
                // Without `auth.required`, a certificate no credential names
                // is only a name (the actor's), not a refusal.
                Some(subject) => match self.store.certificate(&subject, now).await {
                    Err(Ok((Refusal::Unknown, _))) if !self.store.config().required => {
                        return Ok(None);
                    }
                    resolved => resolved,
                },
                None if !self.store.config().required => return Ok(None),
                None => Err(Ok((Refusal::Missing, None))),
            },
        };
        match resolved {
            Ok(principal) => {
                if policy::allows(need, principal.role) {
                    return Ok(Some(principal));
                }
                metrics::counter!(m::AUTH_DENIED, "why" => "role").increment(1);
                let actor = self.actor(&principal.identity, principal.role.as_str(), &peer);
                audit(&self.hub, actor, "denied", path, "", "permission_denied");
                Err(ServerError::PermissionDenied(format!(
                    "{} {:?} may not call {path}",
                    principal.role.as_str(),
                    principal.identity
                )))
            }
            Err(Err(store)) => Err(store),
            Err(Ok((refusal, identity))) => {
                metrics::counter!(m::AUTH_FAILURES, "reason" => refusal.reason()).increment(1);
                let who = identity.clone().unwrap_or_default();
                audit(
                    &self.hub,
                    self.actor(&who, "", &peer),
                    "auth_failed",
                    path,
                    "",
                    refusal.reason(),
                );
                if let (Some(identity), Refusal::BadSecret) = (&identity, &refusal)
                    && self.store.failed(identity, now).await?
                {
                    audit(
                        &self.hub,
                        self.actor(identity, "", &peer),
                        "locked",
                        identity,
                        "too many failures",
                        "locked",
                    );
                }
                Err(refusal.into_error())
            }
        }
    }

    fn actor(&self, identity: &str, role: &str, peer: &str) -> Actor {
        Actor {
            identity: identity.to_string(),
            role: role.to_string(),
            peer: peer.to_string(),
            node: self.hub.name().to_string(),
        }
    }
}
