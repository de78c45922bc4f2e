//! AuthService: login and sessions, credentials, lockouts, the audit log.

use std::sync::Arc;

use patrol_dispatcher::error::validate_id;
use patrol_proto::v1 as pb;
use pb::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use crate::auth::secret::MIN_LOGIN_SECRET;
use crate::auth::store::{Credential, CredentialStore, Identity};
use crate::auth::{Kind, Role, audit, principal};
use crate::clock::now_ms;
use crate::error::ServerError;
use crate::hub::Hub;
use crate::telemetry as m;

/// Most audit records one QueryAudit returns.
const MAX_AUDIT_PAGE: u32 = 10_000;

/// Most entries a scope may list.
const MAX_SCOPE: usize = 10_000;

pub struct AuthApi {
    hub: Arc<Hub>,
    store: Arc<CredentialStore>,
}

impl AuthApi {
    pub fn new(hub: Arc<Hub>, store: Arc<CredentialStore>) -> Self {
        Self { hub, store }
    }

    fn audit<T>(
        &self,
        request: &Request<T>,
        action: &str,
        target: &str,
        detail: &str,
        outcome: &str,
    ) {
        let actor = match super::origin(&self.hub, request) {
            Ok(origin) => origin.actor,
            Err(_) => patrol_dispatcher::Actor::default(),
        };
        audit(&self.hub, actor, action, target, detail, outcome);
    }
}

fn credential_to_wire(c: &Credential, identity: Option<&Identity>) -> pb::Credential {
    pb::Credential {
        id: c.id.clone(),
        identity: c.identity.clone(),
        role: identity.map_or(pb::Role::Unspecified, |i| i.role.to_wire()) as i32,
        scope: identity.map(|i| i.scope.clone()).unwrap_or_default(),
        kind: c.kind.to_wire() as i32,
        label: c.label.clone(),
        created_unix_ms: c.created_ms,
        expires_unix_ms: c.expires_ms,
        revoked: c.revoked,
        locked: identity.is_some_and(|i| i.locked),
    }
}

fn check_scope(scope: &[String]) -> Result<(), ServerError> {
    if scope.len() > MAX_SCOPE {
        return Err(ServerError::bad(
            "scope",
            format!("{} entries", scope.len()),
            format!("at most {MAX_SCOPE} entries"),
        ));
    }
    for (i, entry) in scope.iter().enumerate() {
        let field = format!("scope[{i}]");
        validate_id(&field, entry)?;
        if entry[..entry.len() - 1].contains('*') {
            return Err(ServerError::bad(
                &field,
                format!("{entry:?}"),
                "`*` may only end an entry (a prefix)",
            ));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // Before anything is hashed: a flood of guesses costs no CPU.
        self.hub.limits().charge_login(&peer)?;
        let req = request.get_ref();
        validate_id("identity", &req.identity).map_err(ServerError::from)?;
        if req.secret.is_empty() {
            return Err(ServerError::Missing {
                field: "secret".into(),
            }
            .into());
        }
        let now = now_ms();
        let actor = |role: &str| patrol_dispatcher::Actor {
            identity: req.identity.clone(),
            role: role.to_string(),
            peer: peer.clone(),
            node: self.hub.name().to_string(),
        };
        match self.store.login(&req.identity, &req.secret, now).await {
            Ok((token, principal)) => {
                metrics::counter!(m::AUTH_LOGINS, "outcome" => "ok").increment(1);
                audit(
                    &self.hub,
                    actor(principal.role.as_str()),
                    "login",
                    &principal.credential_id,
                    "",
                    "ok",
                );
                Ok(Response::new(pb::LoginResponse {
                    token,
                    expires_unix_ms: principal.expires_ms,
                    principal: Some(principal.to_wire()),
                }))
            }
            Err(Err(store)) => Err(store.into()),
            Err(Ok(refusal)) => {
                metrics::counter!(m::AUTH_LOGINS, "outcome" => refusal.reason()).increment(1);
                audit(&self.hub, actor(""), "login", "", "", refusal.reason());
                if matches!(refusal, crate::auth::store::Refusal::BadSecret)
                    && self.store.failed(&req.identity, now).await?
                {
                    audit(
                        &self.hub,
                        actor(""),
                        "locked",
                        &req.identity,
                        "too many failed logons",
                        "locked",
                    );
                }
                Err(refusal.into_error().into())
            }
        }
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let Some(p) = principal(&request) else {
            return Err(crate::auth::store::Refusal::Missing.into_error().into());
        };
        if p.kind == Kind::Session {
            self.store.revoke(Some(&p.credential_id), None).await?;
        }
        self.audit(&request, "logout", &p.credential_id.clone(), "", "ok");
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        Ok(Response::new(pb::WhoAmIResponse {
            principal: principal(&request).map(|p| p.to_wire()),
        }))
    }

    async fn issue_credential(
        &self,
        request: Request<pb::IssueCredentialRequest>,
    ) -> Result<Response<pb::IssueCredentialResponse>, Status> {
        let req = request.get_ref().clone();
        validate_id("identity", &req.identity).map_err(ServerError::from)?;
        let role = pb::Role::try_from(req.role)
            .ok()
            .and_then(Role::from_wire)
            .ok_or_else(|| {
                ServerError::bad(
                    "role",
                    req.role,
                    "must be terminal, camera_system, viewer, operator or admin",
                )
            })?;
        let kind = pb::CredentialKind::try_from(req.kind)
            .ok()
            .and_then(Kind::from_wire)
            .ok_or_else(|| {
                ServerError::bad("kind", req.kind, "must be key, login or certificate")
            })?;
        check_scope(&req.scope)?;
        let scoped = matches!(role, Role::Terminal | Role::CameraSystem);
        if scoped && req.scope.is_empty() {
            return Err(ServerError::bad(
                "scope",
                "[]",
                format!(
                    "a {} acts only for the ids of its scope: name them (unit or camera ids, `prefix*`)",
                    role.as_str()
                ),
            )
            .into());
        }
        if !scoped && !req.scope.is_empty() {
            return Err(ServerError::bad(
                "scope",
                format!("{:?}", req.scope),
                format!("a {} has no scope", role.as_str()),
            )
            .into());
        }
        if req.ttl_ms < 0 {
            return Err(ServerError::bad("ttl_ms", req.ttl_ms, "must be >= 0").into());
        }
        let session_ttl = self.store.config().session_ttl_ms;
        match kind {
            Kind::Session => {
                return Err(ServerError::bad(
                    "kind",
                    "session",
                    "sessions come from Login, not from IssueCredential",
                )
                .into());
            }
            Kind::Key
                if matches!(role, Role::Viewer | Role::Operator)
                    && (req.ttl_ms == 0 || req.ttl_ms > session_ttl) =>
            {
                return Err(ServerError::bad(
                    "ttl_ms",
                    req.ttl_ms,
                    format!(
                        "a {} key must expire within auth.session_ttl_ms ({session_ttl} ms): people re-authenticate; use a login",
                        role.as_str()
                    ),
                )
                .into());
            }
            Kind::Login if !role.is_person() => {
                return Err(ServerError::bad(
                    "kind",
                    "login",
                    format!("a {} uses a key or a certificate", role.as_str()),
                )
                .into());
            }
            _ => {}
        }
        if kind == Kind::Login
            && !req.secret.is_empty()
            && req.secret.chars().count() < MIN_LOGIN_SECRET
        {
            return Err(ServerError::bad(
                "secret",
                "(hidden)",
                format!("must be at least {MIN_LOGIN_SECRET} characters"),
            )
            .into());
        }

        let label = req.label.chars().take(64).collect::<String>();
        let (credential, identity, shown) = self
            .store
            .issue(
                &req.identity,
                role,
                req.scope.clone(),
                kind,
                label,
                req.ttl_ms,
                (!req.secret.is_empty()).then(|| req.secret.clone()),
                now_ms(),
            )
            .await?;
        self.audit(
            &request,
            "credential_issued",
            &credential.id,
            &format!(
                "{} {} for {} scope {:?}",
                kind.as_str(),
                role.as_str(),
                identity.id,
                identity.scope
            ),
            "ok",
        );
        Ok(Response::new(pb::IssueCredentialResponse {
            credential: Some(credential_to_wire(&credential, Some(&identity))),
            secret: shown,
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        let req = request.into_inner();
        let now = now_ms();
        let (mut credentials, identities) = self.store.all().await?;
        credentials.retain(|c| {
            (req.identity.is_empty() || c.identity == req.identity)
                && (req.include_revoked
                    || !(c.revoked || (c.expires_ms != 0 && c.expires_ms <= now)))
        });
        credentials.sort_by(|a, b| (&a.identity, a.created_ms).cmp(&(&b.identity, b.created_ms)));
        Ok(Response::new(pb::ListCredentialsResponse {
            credentials: credentials
                .iter()
                .map(|c| credential_to_wire(c, identities.get(&c.identity)))
                .collect(),
        }))
    }

    async fn revoke_credential(
        &self,
        request: Request<pb::RevokeCredentialRequest>,
    ) -> Result<Response<pb::RevokeCredentialResponse>, Status> {
        let req = request.get_ref().clone();
        let (id, identity) = match (req.credential_id.is_empty(), req.identity.is_empty()) {
            (false, true) => (Some(req.credential_id.as_str()), None),
            (true, false) => (None, Some(req.identity.as_str())),
            _ => {
                return Err(ServerError::bad(
                    "credential_id",
                    format!("{:?} (identity {:?})", req.credential_id, req.identity),
                    "give exactly one of credential_id and identity",
                )
                .into());
            }
        };
        if let Some(id) = id
            && self.store.credential(id).await?.is_none()
        {
            return Err(ServerError::Core(patrol_dispatcher::Error::NotFound {
                entity: "credential",
                id: id.to_string(),
            })
            .into());
        }
        let revoked = self.store.revoke(id, identity).await?;
        let target = id.or(identity).unwrap_or_default().to_string();
        self.audit(
            &request,
            "credential_revoked",
            &target,
            &format!("{revoked} revoked"),
            "ok",
        );
        Ok(Response::new(pb::RevokeCredentialResponse { revoked }))
    }

    async fn unlock_identity(
        &self,
        request: Request<pb::UnlockIdentityRequest>,
    ) -> Result<Response<pb::UnlockIdentityResponse>, Status> {
        let identity = request.get_ref().identity.clone();
        validate_id("identity", &identity).map_err(ServerError::from)?;
        let Some(was_locked) = self.store.unlock(&identity).await? else {
            return Err(ServerError::Core(patrol_dispatcher::Error::NotFound {
                entity: "identity",
                id: identity,
            })
            .into());
        };
        self.audit(&request, "unlocked", &identity, "", "ok");
        Ok(Response::new(pb::UnlockIdentityResponse { was_locked }))
    }

    async fn query_audit(
        &self,
        request: Request<pb::QueryAuditRequest>,
    ) -> Result<Response<pb::QueryAuditResponse>, Status> {
        let req = request.into_inner();
        let from = req.from_unix_ms.max(0);
        let to = if req.to_unix_ms == 0 {
            i64::MAX
        } else {
            req.to_unix_ms
        };
        if to < from {
            return Err(ServerError::bad(
                "to_unix_ms",
                req.to_unix_ms,
                format!("must not be before from_unix_ms ({from})"),
            )
            .into());
        }
        let limit = match req.limit {
            0 => 1_000,
            n if n > MAX_AUDIT_PAGE => {
                return Err(ServerError::bad(
                    "limit",
                    n,
                    format!("must be at most {MAX_AUDIT_PAGE}"),
                )
                .into());
            }
            n => n as usize,
        };
        let identity = (!req.identity.is_empty()).then_some(req.identity.as_str());
        let (records, truncated) = self.hub.audit().query(identity, from, to, limit).await?;
        Ok(Response::new(pb::QueryAuditResponse {
            records: records.iter().map(|r| r.to_wire()).collect(),
            truncated,
        }))
    }
}
