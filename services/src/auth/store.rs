//! The credential store: identities (role, scope, lockout) and their
//! credentials (hashed), in memory or in the region's Redis.
//!
//! With Redis every node reads the same store: a credential issued, revoked
//! or locked on one node is seen by the others within `auth.cache_ms`
//! (resolved credentials are cached that long, so a call costs no Redis
//! round trip in the steady state). Layout, all under the region's hash tag
//! (one Cluster slot): `patrol:{region}:auth:identities` and
//! `...:auth:credentials` (hashes of JSON records by id),
//! `...:auth:failures:<identity>` (a sorted set of failure times) and
//! `...:auth:key` (the token hashing key when none is configured).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::secret;
use super::{Kind, Principal, Role};
use crate::config::AuthConfig;
use crate::durable::Conn;
use crate::error::ServerError;
use crate::telemetry as m;

/// Cached resolutions are dropped wholesale past this many (a flood of
/// distinct tokens cannot grow memory).
const MAX_CACHED: usize = 100_000;

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub locked: bool,
    /// The identity's login secret credential, if it has one.
    #[serde(default)]
    pub login_credential: String,
}

/// One credential, as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub identity: String,
    pub kind: Kind,
    #[serde(default)]
    pub label: String,
    /// Hex HMAC of the token secret (key, session), the Argon2 PHC string
    /// (login), empty (certificate).
    #[serde(default)]
    pub hash: String,
    pub created_ms: i64,
    /// 0: never.
    #[serde(default)]
    pub expires_ms: i64,
    #[serde(default)]
    pub revoked: bool,
}

impl Credential {
    fn expired(&self, now: i64) -> bool {
        self.expires_ms != 0 && now >= self.expires_ms
    }
}

/// Why a credential was not accepted; each is a clear message for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Missing,
    Malformed,
    Unknown,
    BadSecret,
    Expired { kind: Kind },
    Revoked,
    Locked { identity: String },
    NotABearer,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::BadSecret => "bad_secret",
            Refusal::Expired { .. } => "expired",
            Refusal::Revoked => "revoked",
            Refusal::Locked { .. } => "locked",
            Refusal::NotABearer => "not_a_bearer",
        }
    }

    pub fn into_error(self) -> ServerError {
        let message = match self {
            Refusal::Missing => "no credential: send `authorization: Bearer <token>` metadata (or a client certificate); patrolctl login gets a session".to_string(),
            Refusal::Malformed => "the bearer token is not a patrol token (pt_<id>_<secret>)".to_string(),
            Refusal::Unknown => "unknown credential".to_string(),
            Refusal::BadSecret => "wrong secret".to_string(),
            Refusal::Expired { kind: Kind::Session } => "session expired: log in again".to_string(),
            Refusal::Expired { .. } => "credential expired".to_string(),
            Refusal::Revoked => "credential revoked".to_string(),
            Refusal::Locked { identity } => format!(
                "identity {identity:?} is locked after repeated failures; an admin must unlock it"
            ),
            Refusal::NotABearer => "a login secret is not a bearer token: Login with it to get a session".to_string(),
        };
        ServerError::Unauthenticated(message)
    }
}

enum Backend {
    Memory(Mutex<Memory>),
    Redis { conn: Conn, keys: AuthKeys },
}

#[derive(Default)]
struct Memory {
    identities: HashMap<String, Identity>,
    credentials: HashMap<String, Credential>,
    failures: HashMap<String, Vec<i64>>,
}

struct AuthKeys {
    identities: String,
    credentials: String,
    key: String,
    region: String,
}

impl AuthKeys {
    fn new(region: &str) -> Self {
        let key = |name: &str| format!("patrol:{{{region}}}:auth:{name}");
        Self {
            identities: key("identities"),
            credentials: key("credentials"),
            key: key("key"),
            region: region.to_string(),
        }
    }

    fn failures(&self, identity: &str) -> String {
        format!("patrol:{{{}}}:auth:failures:{identity}", self.region)
    }
}

struct Cached {
    at: Instant,
    credential: Credential,
    identity: Identity,
}

/// Identities and credentials; see the module docs.
pub struct CredentialStore {
    backend: Backend,
    /// The token hashing key.
    key: Vec<u8>,
    config: AuthConfig,
    cache: Mutex<HashMap<String, Cached>>,
}

fn redis_error(op: &'static str) -> impl Fn(redis::RedisError) -> ServerError {
    move |e| {
        metrics::counter!(m::REDIS_ERRORS, "op" => op).increment(1);
        ServerError::Unavailable(format!("credential store (redis) {op}: {e}"))
    }
}

impl CredentialStore {
    /// A store in this process only.
    pub fn in_memory(config: AuthConfig) -> Self {
        let key = if config.token_key.is_empty() {
            secret::random_hex(32).into_bytes()
        } else {
            config.token_key.clone().into_bytes()
        };
        Self {
            backend: Backend::Memory(Mutex::new(Memory::default())),
            key,
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The region's store in Redis. Without a configured `token_key` the
    /// region shares one made by its first node (kept in Redis).
    pub async fn redis(config: AuthConfig, conn: Conn, region: &str) -> anyhow::Result<Self> {
        let keys = AuthKeys::new(region);
        let key = if config.token_key.is_empty() {
            let mut c = conn.clone();
            let made = secret::random_hex(32);
            let _: bool = redis::cmd("SET")
                .arg(&keys.key)
                .arg(&made)
                .arg("NX")
                .query_async::<Option<String>>(&mut c)
                .await
                .map(|r| r.is_some())?;
            let held: String = redis::cmd("GET").arg(&keys.key).query_async(&mut c).await?;
            held.into_bytes()
        } else {
            config.token_key.clone().into_bytes()
        };
        Ok(Self {
            backend: Backend::Redis { conn, keys },
            key,
            config,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    // --- records -----------------------------------------------------------

    pub async fn identity(&self, id: &str) -> Result<Option<Identity>, ServerError> {
        match &self.backend {
            Backend::Memory(mem) => Ok(mem.lock().unwrap().identities.get(id).cloned()),
            Backend::Redis { conn, keys } => hget(conn, &keys.identities, id).await,
        }
    }

    pub async fn credential(&self, id: &str) -> Result<Option<Credential>, ServerError> {
        match &self.backend {
            Backend::Memory(mem) => Ok(mem.lock().unwrap().credentials.get(id).cloned()),
            Backend::Redis { conn, keys } => hget(conn, &keys.credentials, id).await,
        }
    }

    pub async fn put_identity(&self, identity: &Identity) -> Result<(), ServerError> {
        self.evict_identity(&identity.id);
        match &self.backend {
            Backend::Memory(mem) => {
                mem.lock()
                    .unwrap()
                    .identities
                    .insert(identity.id.clone(), identity.clone());
                Ok(())
            }
            Backend::Redis { conn, keys } => {
                hset(conn, &keys.identities, &identity.id, identity).await
            }
        }
    }

    pub async fn put_credential(&self, credential: &Credential) -> Result<(), ServerError> {
        self.cache.lock().unwrap().remove(&credential.id);
        match &self.backend {
            Backend::Memory(mem) => {
                mem.lock()
                    .unwrap()
                    .credentials
                    .insert(credential.id.clone(), credential.clone());
                Ok(())
            }
            Backend::Redis { conn, keys } => {
                hset(conn, &keys.credentials, &credential.id, credential).await
            }
        }
    }

    /// Every credential, and every identity, by id.
    pub async fn all(&self) -> Result<(Vec<Credential>, HashMap<String, Identity>), ServerError> {
        match &self.backend {
            Backend::Memory(mem) => {
                let mem = mem.lock().unwrap();
                Ok((
                    mem.credentials.values().cloned().collect(),
                    mem.identities.clone(),
                ))
            }
            Backend::Redis { conn, keys } => {
                let mut c = conn.clone();
                let creds: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(&keys.credentials)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_error("auth_list"))?;
                let idents: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(&keys.identities)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_error("auth_list"))?;
                Ok((
                    creds
                        .values()
                        .filter_map(|j| serde_json::from_str(j).ok())
                        .collect(),
                    idents
                        .into_iter()
                        .filter_map(|(k, j)| serde_json::from_str(&j).ok().map(|i| (k, i)))
                        .collect(),
                ))
            }
        }
    }

    /// Counts a failure of `identity` at `now`; returns the failures within
    /// the lockout window.
    async fn count_failure(&self, identity: &str, now: i64) -> Result<usize, ServerError> {
        let since = now - self.config.lockout_window_ms;
        match &self.backend {
            Backend::Memory(mem) => {
                let mut mem = mem.lock().unwrap();
                let times = mem.failures.entry(identity.to_string()).or_default();
                times.retain(|t| *t > since);
                times.push(now);
                Ok(times.len())
            }
            Backend::Redis { conn, keys } => {
                let key = keys.failures(identity);
                let member = format!("{now}-{}", secret::random_hex(4));
                let (_, _, count, _): (i64, i64, usize, i64) = redis::pipe()
                    .atomic()
                    .cmd("ZADD")
                    .arg(&key)
                    .arg(now)
                    .arg(member)
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(since)
                    .cmd("ZCARD")
                    .arg(&key)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(self.config.lockout_window_ms.max(1))
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(redis_error("auth_failure"))?;
                Ok(count)
            }
        }
    }

    async fn clear_failures(&self, identity: &str) -> Result<(), ServerError> {
        match &self.backend {
            Backend::Memory(mem) => {
                mem.lock().unwrap().failures.remove(identity);
                Ok(())
            }
            Backend::Redis { conn, keys } => redis::cmd("DEL")
                .arg(keys.failures(identity))
                .query_async::<()>(&mut conn.clone())
                .await
                .map_err(redis_error("auth_failure")),
        }
    }

    fn evict_identity(&self, identity: &str) {
        self.cache
            .lock()
            .unwrap()
            .retain(|_, c| c.identity.id != identity);
    }

    // --- checks ------------------------------------------------------------

    /// A failure against `identity`: counted, and past the limit the
    /// identity is locked. Returns whether this failure locked it.
    pub async fn failed(&self, identity: &str, now: i64) -> Result<bool, ServerError> {
        let count = self.count_failure(identity, now).await?;
        if count < self.config.lockout_failures {
            return Ok(false);
        }
        match self.identity(identity).await? {
            Some(mut ident) if !ident.locked => {
                ident.locked = true;
                self.put_identity(&ident).await?;
                metrics::counter!(m::AUTH_LOCKOUTS).increment(1);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The credential `id` and its identity, from the cache when fresh.
    async fn resolve(&self, id: &str) -> Result<Option<(Credential, Identity)>, ServerError> {
        let ttl = Duration::from_millis(self.config.cache_ms);
        let cached = matches!(self.backend, Backend::Redis { .. });
        if cached {
            let cache = self.cache.lock().unwrap();
            if let Some(c) = cache.get(id).filter(|c| c.at.elapsed() < ttl) {
                return Ok(Some((c.credential.clone(), c.identity.clone())));
            }
        }
        let Some(credential) = self.credential(id).await? else {
            return Ok(None);
        };
        let Some(identity) = self.identity(&credential.identity).await? else {
            return Ok(None);
        };
        if cached {
            let mut cache = self.cache.lock().unwrap();
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(
                id.to_string(),
                Cached {
                    at: Instant::now(),
                    credential: credential.clone(),
                    identity: identity.clone(),
                },
            );
        }
        Ok(Some((credential, identity)))
    }

    /// Who a bearer token is. `Err(Ok(refusal))` is the caller's problem
    /// (with the identity to charge the failure to, if known);
    /// `Err(Err(_))` the store's.
    pub async fn bearer(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Principal, Result<(Refusal, Option<String>), ServerError>> {
        let Some((id, secret_part)) = secret::parse_token(token) else {
            return Err(Ok((Refusal::Malformed, None)));
        };
        let Some((credential, identity)) = self.resolve(id).await.map_err(Err)? else {
            return Err(Ok((Refusal::Unknown, None)));
        };
        let refuse = |r: Refusal| Err(Ok((r, Some(identity.id.clone()))));
        if !matches!(credential.kind, Kind::Key | Kind::Session) {
            return refuse(Refusal::NotABearer);
        }
        let stored = match decode_hex(&credential.hash) {
            Some(bytes) => bytes,
            None => return refuse(Refusal::Unknown),
        };
        if !secret::token_matches(&self.key, secret_part, &stored) {
            return refuse(Refusal::BadSecret);
        }
        match holds(&credential, &identity, now) {
            Ok(()) => Ok(principal(&credential, &identity)),
            Err(refusal) => refuse(refusal),
        }
    }

    /// Who a verified client certificate (subject `subject`) is: the identity
    /// of that name, if it holds a certificate credential.
    pub async fn certificate(
        &self,
        subject: &str,
        now: i64,
    ) -> Result<Principal, Result<(Refusal, Option<String>), ServerError>> {
        let id = certificate_credential_id(subject);
        let Some((credential, identity)) = self.resolve(&id).await.map_err(Err)? else {
            return Err(Ok((Refusal::Unknown, None)));
        };
        let refuse = |r: Refusal| Err(Ok((r, Some(identity.id.clone()))));
        match holds(&credential, &identity, now) {
            Ok(()) => Ok(principal(&credential, &identity)),
            Err(refusal) => refuse(refusal),
        }
    }

    /// Whether the credential behind `principal` still holds (not revoked,
    /// expired or locked since the call began): long streams ask this while
    /// they run.
    pub(crate) async fn still_valid(
        &self,
        principal: &Principal,
        now: i64,
    ) -> Result<(), Result<Refusal, ServerError>> {
        let Some((credential, identity)) =
            self.resolve(&principal.credential_id).await.map_err(Err)?
        else {
            return Err(Ok(Refusal::Revoked));
        };
        holds(&credential, &identity, now).map_err(Ok)?;
        if identity.role != principal.role || identity.scope != principal.scope {
            // Re-issued with other rights: the stream must be reopened.
            return Err(Ok(Refusal::Revoked));
        }
        Ok(())
    }

    /// Checks a login secret and opens a session: (token, principal).
    pub async fn login(
        &self,
        identity_id: &str,
        secret_text: &str,
        now: i64,
    ) -> Result<(String, Principal), Result<Refusal, ServerError>> {
        let Some(identity) = self.identity(identity_id).await.map_err(Err)? else {
            return Err(Ok(Refusal::Unknown));
        };
        let login = if identity.login_credential.is_empty() {
            None
        } else {
            self.credential(&identity.login_credential)
                .await
                .map_err(Err)?
        };
        let Some(login) = login.filter(|c| c.kind == Kind::Login) else {
            return Err(Ok(Refusal::Unknown));
        };
        // The hash is checked first so a locked identity does not tell a
        // guesser whether the secret was right.
        let hash = login.hash.clone();
        let given = secret_text.to_string();
        let matches = tokio::task::spawn_blocking(move || secret::login_matches(&given, &hash))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(Ok(Refusal::BadSecret));
        }
        holds(&login, &identity, now).map_err(Ok)?;
        self.clear_failures(&identity.id).await.map_err(Err)?;
        let (token, credential) = self.new_bearer(
            &identity.id,
            Kind::Session,
            "session".into(),
            now,
            self.config.session_ttl_ms,
        );
        self.put_credential(&credential).await.map_err(Err)?;
        Ok((token, principal(&credential, &identity)))
    }

    /// A new key or session credential (not yet stored) and its token.
    pub fn new_bearer(
        &self,
        identity: &str,
        kind: Kind,
        label: String,
        now: i64,
        ttl_ms: i64,
    ) -> (String, Credential) {
        let id = secret::new_id();
        let (token, secret_part) = secret::new_token(&id);
        let credential = Credential {
            hash: secret::hex(&secret::token_hash(&self.key, &secret_part)),
            id,
            identity: identity.to_string(),
            kind,
            label,
            created_ms: now,
            expires_ms: if ttl_ms > 0 { now + ttl_ms } else { 0 },
            revoked: false,
        };
        (token, credential)
    }

    /// Creates or updates `identity_id` (role, scope) and gives it a new
    /// credential: (the credential, the identity, the secret to show once:
    /// the token of a key, the login secret, nothing for a certificate).
    /// A new login secret replaces the identity's old one. The caller has
    /// validated the request.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue(
        &self,
        identity_id: &str,
        role: Role,
        scope: Vec<String>,
        kind: Kind,
        label: String,
        ttl_ms: i64,
        login_secret: Option<String>,
        now: i64,
    ) -> Result<(Credential, Identity, String), ServerError> {
        let mut identity = self.identity(identity_id).await?.unwrap_or(Identity {
            id: identity_id.to_string(),
            role,
            scope: Vec::new(),
            locked: false,
            login_credential: String::new(),
        });
        identity.role = role;
        identity.scope = scope;
        let expires = if ttl_ms > 0 { now + ttl_ms } else { 0 };
        let (credential, shown) = match kind {
            Kind::Key | Kind::Session => {
                let (token, credential) = self.new_bearer(&identity.id, kind, label, now, ttl_ms);
                (credential, token)
            }
            Kind::Login => {
                let secret_text = login_secret.unwrap_or_else(secret::new_login_secret);
                let hashed = secret_text.clone();
                let hash = tokio::task::spawn_blocking(move || secret::login_hash(&hashed))
                    .await
                    .map_err(|e| ServerError::Internal(format!("hashing a login secret: {e}")))?;
                if !identity.login_credential.is_empty() {
                    self.revoke(Some(&identity.login_credential.clone()), None)
                        .await?;
                }
                let credential = Credential {
                    id: secret::new_id(),
                    identity: identity.id.clone(),
                    kind: Kind::Login,
                    label,
                    hash,
                    created_ms: now,
                    expires_ms: expires,
                    revoked: false,
                };
                identity.login_credential = credential.id.clone();
                (credential, secret_text)
            }
            Kind::Certificate => (
                Credential {
                    id: certificate_credential_id(&identity.id),
                    identity: identity.id.clone(),
                    kind: Kind::Certificate,
                    label,
                    hash: String::new(),
                    created_ms: now,
                    expires_ms: expires,
                    revoked: false,
                },
                String::new(),
            ),
        };
        self.put_identity(&identity).await?;
        self.put_credential(&credential).await?;
        Ok((credential, identity, shown))
    }

    /// Marks credentials revoked: one by id, or all of an identity. Returns
    /// how many were revoked now.
    pub async fn revoke(
        &self,
        credential_id: Option<&str>,
        identity: Option<&str>,
    ) -> Result<u32, ServerError> {
        let targets: Vec<Credential> = match (credential_id, identity) {
            (Some(id), _) => self.credential(id).await?.into_iter().collect(),
            (None, Some(identity)) => self
                .all()
                .await?
                .0
                .into_iter()
                .filter(|c| c.identity == identity)
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut revoked = 0;
        for mut credential in targets.into_iter().filter(|c| !c.revoked) {
            credential.revoked = true;
            self.put_credential(&credential).await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Lifts a lockout; returns whether the identity was locked.
    pub async fn unlock(&self, identity_id: &str) -> Result<Option<bool>, ServerError> {
        let Some(mut identity) = self.identity(identity_id).await? else {
            return Ok(None);
        };
        let was = identity.locked;
        identity.locked = false;
        self.put_identity(&identity).await?;
        self.clear_failures(identity_id).await?;
        Ok(Some(was))
    }

    /// Whether any admin identity exists.
    pub async fn has_admin(&self) -> Result<bool, ServerError> {
        Ok(self
            .all()
            .await?
            .1
            .values()
            .any(|i| i.role == Role::Admin && !i.locked))
    }
}

/// One JSON record of hash `key` (a record that no longer parses, written by
/// another build, reads as absent).
async fn hget<T: serde::de::DeserializeOwned>(
    conn: &Conn,
    key: &str,
    id: &str,
) -> Result<Option<T>, ServerError> {
    let json: Option<String> = redis::cmd("HGET")
        .arg(key)
        .arg(id)
        .query_async(&mut conn.clone())
        .await
        .map_err(redis_error("auth_get"))?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

async fn hset<T: Serialize>(
    conn: &Conn,
    key: &str,
    id: &str,
    record: &T,
) -> Result<(), ServerError> {
    let json = serde_json::to_string(record).expect("auth records serialize");
    redis::cmd("HSET")
        .arg(key)
        .arg(id)
        .arg(json)
        .query_async::<()>(&mut conn.clone())
        .await
        .map_err(redis_error("auth_put"))
}

/// Whether a credential whose secret (if any) checked out may be used now:
/// its identity not locked, the credential neither revoked nor expired.
fn holds(credential: &Credential, identity: &Identity, now: i64) -> Result<(), Refusal> {
    if identity.locked {
        return Err(Refusal::Locked {
            identity: identity.id.clone(),
        });
    }
    if credential.revoked {
        return Err(Refusal::Revoked);
    }
    if credential.expired(now) {
        return Err(Refusal::Expired {
            kind: credential.kind,
        });
    }
    Ok(())
}

/// The id of the certificate credential of `subject` (one per identity).
pub(crate) fn certificate_credential_id(subject: &str) -> String {
    format!("cert:{subject}")
}

fn principal(credential: &Credential, identity: &Identity) -> Principal {
    Principal {
        identity: identity.id.clone(),
        role: identity.role,
        scope: identity.scope.clone(),
        credential_id: credential.id.clone(),
        kind: credential.kind,
        expires_ms: credential.expires_ms,
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
