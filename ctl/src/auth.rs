//! Credentials: which one a call carries, and `login`, `logout`, `whoami`,
//! `auth ...` and `audit`.
//!
//! A call carries, in order: `--token` (or `PATROL_TOKEN`); with `--as ROLE`,
//! that credential from a demo server's credentials file; the session saved by
//! `patrolctl login`; the operator's session from a demo server on this
//! machine (so the demo walk-through needs no login).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use patrol_proto::auth::{Authed, demo_credentials_path};
use patrol_proto::v1::auth_service_client::AuthServiceClient;
use patrol_proto::v1::{self as pb, CredentialKind, Role};

use crate::commands::{call, now_ms};
use crate::format::{Table, date_time, parse_word, word_of};

#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Create or update an identity and issue it a credential; prints the
    /// secret once (a key's token, or a login secret).
    Issue(IssueArgs),
    /// Credentials (never their secrets).
    List {
        /// Only this identity's.
        #[arg(long)]
        identity: Option<String>,
        /// Revoked and expired ones too.
        #[arg(long)]
        all: bool,
    },
    /// Revoke one credential by id, or every credential of --identity.
    Revoke {
        credential_id: Option<String>,
        #[arg(long)]
        identity: Option<String>,
    },
    /// Lift a lockout.
    Unlock { identity: String },
}

#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    pub identity: String,
    /// terminal, camera_system, viewer, operator or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// key (a bearer token), login (a secret to log in with) or certificate
    /// (mutual TLS: the client certificate's subject is the identity).
    #[arg(long, value_parser = parse_kind, default_value = "key")]
    pub kind: CredentialKind,
    /// Unit or camera ids this terminal or camera system acts for
    /// (comma-separated; `prefix*` covers a prefix).
    #[arg(long, value_delimiter = ',')]
    pub scope: Vec<String>,
    /// Expires after this many hours (keys of viewers and operators must;
    /// 0 = never for the others).
    #[arg(long, default_value_t = 0.0)]
    pub ttl_hours: f64,
    /// For a login: the secret to set (else one is made); also PATROL_SECRET.
    #[arg(long, env = "PATROL_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    #[arg(long, default_value = "")]
    pub label: String,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this identity's records.
    #[arg(long)]
    pub identity: Option<String>,
    /// The last this many hours.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

fn parse_role(text: &str) -> Result<Role, String> {
    parse_word::<Role>(text)
}

fn parse_kind(text: &str) -> Result<CredentialKind, String> {
    parse_word::<CredentialKind>(text)
}

/// Where `patrolctl login` keeps its session.
fn session_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("patrol").join("session.json"))
}

fn read_json(path: &std::path::Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The token for this invocation (see the module docs); `None`: no credential.
pub(crate) fn token(explicit: Option<&str>, as_role: Option<&str>) -> Result<Option<String>> {
    if let Some(token) = explicit.filter(|t| !t.is_empty()) {
        return Ok(Some(token.to_string()));
    }
    let demo_path = demo_credentials_path();
    if let Some(role) = as_role {
        let demo = read_json(&demo_path).with_context(|| {
            format!(
                "--as {role}: no demo credentials at {} (is `patrold --demo` running here?)",
                demo_path.display()
            )
        })?;
        let Some(token) = demo[role]["token"].as_str() else {
            bail!("--as {role}: the demo credentials have operator, viewer and admin");
        };
        return Ok(Some(token.to_string()));
    }
    if let Some(saved) = session_path().as_deref().and_then(read_json) {
        let expires = saved["expires_unix_ms"].as_i64().unwrap_or(0);
        if let Some(token) = saved["token"].as_str()
            && (expires == 0 || expires > now_ms())
        {
            return Ok(Some(token.to_string()));
        }
    }
    Ok(read_json(&demo_path)
        .and_then(|demo| demo["operator"]["token"].as_str().map(str::to_string)))
}

/// `patrolctl login [IDENTITY]`: opens a session and saves it for later
/// calls. Without an identity, the demo's operator.
pub(crate) async fn login(
    channel: Authed,
    identity: Option<String>,
    secret: Option<String>,
) -> Result<()> {
    let demo = read_json(&demo_credentials_path());
    let identity = match identity {
        Some(identity) => identity,
        None => demo
            .as_ref()
            .and_then(|d| d["operator"]["identity"].as_str().map(str::to_string))
            .context("name the identity to log in as (no demo server credentials here)")?,
    };
    let secret = match secret {
        Some(secret) => secret,
        None => match demo.as_ref().and_then(|d| {
            ["operator", "viewer"]
                .into_iter()
                .find(|r| d[r]["identity"].as_str() == Some(identity.as_str()))
                .and_then(|r| d[r]["secret"].as_str().map(str::to_string))
        }) {
            Some(secret) => secret,
            None => {
                eprint!("secret for {identity}: ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim().to_string()
            }
        },
    };
    let response = AuthServiceClient::new(channel)
        .login(call(pb::LoginRequest {
            identity: identity.clone(),
            secret,
        }))
        .await?
        .into_inner();
    let path = session_path().context("no HOME to keep the session in")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let saved = serde_json::json!({
        "identity": identity,
        "token": response.token,
        "expires_unix_ms": response.expires_unix_ms,
    });
    write_private(&path, &saved.to_string())?;
    println!(
        "logged in as {identity} ({}) until {}; session saved in {}",
        response
            .principal
            .as_ref()
            .map_or("?".into(), |p| word_of::<Role>(p.role)),
        date_time(response.expires_unix_ms),
        path.display()
    );
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// `patrolctl logout`: ends the saved session.
pub(crate) async fn logout(channel: Authed) -> Result<()> {
    AuthServiceClient::new(channel)
        .logout(call(pb::LogoutRequest {}))
        .await?;
    if let Some(path) = session_path().filter(|p| p.exists()) {
        std::fs::remove_file(&path)?;
    }
    println!("logged out");
    Ok(())
}

pub(crate) async fn whoami(channel: Authed) -> Result<()> {
    let principal = AuthServiceClient::new(channel)
        .who_am_i(call(pb::WhoAmIRequest {}))
        .await?
        .into_inner()
        .principal;
    match principal {
        None => println!("no credential (the server does not require one)"),
        Some(p) => println!("{}", principal_line(&p)),
    }
    Ok(())
}

pub(crate) fn principal_line(p: &pb::Principal) -> String {
    let mut line = format!(
        "{} {} via {} {}",
        p.identity,
        word_of::<Role>(p.role),
        word_of::<CredentialKind>(p.kind),
        p.credential_id
    );
    if !p.scope.is_empty() {
        line.push_str(&format!(" scope {}", p.scope.join(",")));
    }
    if p.expires_unix_ms != 0 {
        line.push_str(&format!(" until {}", date_time(p.expires_unix_ms)));
    }
    line
}

pub(crate) async fn run(channel: Authed, command: AuthCommand) -> Result<()> {
    let mut client = AuthServiceClient::new(channel);
    match command {
        AuthCommand::Issue(args) => {
            let response = client
                .issue_credential(call(pb::IssueCredentialRequest {
                    identity: args.identity,
                    role: args.role as i32,
                    scope: args.scope,
                    kind: args.kind as i32,
                    ttl_ms: (args.ttl_hours * 3_600_000.0) as i64,
                    secret: args.secret.unwrap_or_default(),
                    label: args.label,
                }))
                .await?
                .into_inner();
            let credential = response.credential.context("server sent no credential")?;
            println!("{}", credential_line(&credential));
            if !response.secret.is_empty() {
                println!("secret (shown once): {}", response.secret);
            }
        }
        AuthCommand::List { identity, all } => {
            let credentials = client
                .list_credentials(call(pb::ListCredentialsRequest {
                    identity: identity.unwrap_or_default(),
                    include_revoked: all,
                }))
                .await?
                .into_inner()
                .credentials;
            let mut table = Table::new(&[
                ("ID", 24),
                ("IDENTITY", 32),
                ("ROLE", 14),
                ("KIND", 12),
                ("SCOPE", 32),
                ("EXPIRES", 20),
                ("STATE", 8),
                ("LABEL", 24),
            ]);
            for c in &credentials {
                table.row(vec![
                    c.id.clone(),
                    c.identity.clone(),
                    word_of::<Role>(c.role),
                    word_of::<CredentialKind>(c.kind),
                    c.scope.join(","),
                    if c.expires_unix_ms == 0 {
                        "never".into()
                    } else {
                        date_time(c.expires_unix_ms)
                    },
                    state(c),
                    c.label.clone(),
                ]);
            }
            print!("{}", table.render());
            println!("{} credentials", credentials.len());
        }
        AuthCommand::Revoke {
            credential_id,
            identity,
        } => {
            if credential_id.is_some() == identity.is_some() {
                bail!("name a credential id or --identity, not both");
            }
            let revoked = client
                .revoke_credential(call(pb::RevokeCredentialRequest {
                    credential_id: credential_id.unwrap_or_default(),
                    identity: identity.unwrap_or_default(),
                }))
                .await?
                .into_inner()
                .revoked;
            println!("{revoked} revoked");
        }
        AuthCommand::Unlock { identity } => {
            let was = client
                .unlock_identity(call(pb::UnlockIdentityRequest {
                    identity: identity.clone(),
                }))
                .await?
                .into_inner()
                .was_locked;
            println!(
                "{identity} {}",
                if was { "unlocked" } else { "was not locked" }
            );
        }
    }
    Ok(())
}

fn state(c: &pb::Credential) -> String {
    if c.locked {
        "locked".into()
    } else if c.revoked {
        "revoked".into()
    } else if c.expires_unix_ms != 0 && c.expires_unix_ms <= now_ms() {
        "expired".into()
    } else {
        "active".into()
    }
}

fn credential_line(c: &pb::Credential) -> String {
    format!(
        "{} {} {} {}{}",
        c.id,
        c.identity,
        word_of::<Role>(c.role),
        word_of::<CredentialKind>(c.kind),
        if c.scope.is_empty() {
            String::new()
        } else {
            format!(" scope {}", c.scope.join(","))
        }
    )
}

/// `patrolctl audit`: who did what, newest last.
pub(crate) async fn audit(channel: Authed, args: AuditArgs) -> Result<()> {
    let to = now_ms();
    let from = to - (args.hours * 3_600_000.0) as i64;
    let response = AuthServiceClient::new(channel)
        .query_audit(call(pb::QueryAuditRequest {
            identity: args.identity.unwrap_or_default(),
            from_unix_ms: from,
            to_unix_ms: to,
            limit: args.limit,
        }))
        .await?
        .into_inner();
    let mut table = Table::new(&[
        ("TIME (UTC)", 24),
        ("IDENTITY", 24),
        ("ROLE", 14),
        ("NODE", 20),
        ("ACTION", 20),
        ("TARGET", 28),
        ("OUTCOME", 18),
        ("DETAIL", 60),
    ]);
    for r in &response.records {
        let actor = r.actor.clone().unwrap_or_default();
        table.row(vec![
            date_time(r.time_unix_ms),
            actor.identity,
            actor.role,
            actor.node,
            r.action.clone(),
            r.target.clone(),
            r.outcome.clone(),
            r.detail.clone(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "{} records{}",
        response.records.len(),
        if response.truncated {
            " (more: raise --limit or narrow --hours)"
        } else {
            ""
        }
    );
    Ok(())
}
