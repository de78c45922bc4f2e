//! The cost of TLS and authentication (issue #11): the same city, load and
//! server settings on a fresh patrold per security setting, in one run:
//!
//! 1. plaintext, `auth.required = false` (no credential on any call);
//! 2. plaintext, auth on: bearer tokens (a terminal key for ingest, an
//!    operator key for `Recommend`, as real callers hold);
//! 3. TLS, auth on, the same bearer tokens;
//! 4. mutual TLS, auth on: no token, the client certificate's CN is the
//!    identity (a `CREDENTIAL_KIND_CERTIFICATE` credential each for the
//!    terminal and the operator).
//!
//! The certificates (a CA, a server certificate for 127.0.0.1 and localhost,
//! one client certificate per caller) are made at run time with rcgen into
//! the run's work directory and removed with it. The bootstrap admin
//! (`auth.admin_token_file`) registers the units and issues the credentials.
//! Per-caller limits are off on every server ([`crate::server::service_toml`]), so what
//! differs is TLS and the credential check alone.
//!
//! Every configuration is driven by the same client code: [`Authed`]
//! channels, whose interceptor adds nothing when there is no token. Measured:
//! ingest (`clients` `ReportPositions` streams, batches of `batch`, flat out
//! for `duration`, each stream on its own connection) and `Recommend` latency
//! (k = 5 at uniform random points, `calls` in all from `callers` concurrent
//! callers, one call at a time each, each on its own connection), with the
//! server's CPU per ping and per call, the load generator's and every other
//! process's CPU, and the 1-minute load average before each configuration.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use patrol_proto::auth::{Authed, Bearer, authed};
use patrol_proto::v1 as pb;
use pb::auth_service_client::AuthServiceClient;
use pb::incident_service_client::IncidentServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing::info;

use crate::city::City;
use crate::ingest::{self, IngestOutcome};
use crate::load::{register_units, send_positions};
use crate::proc_stats::{self, ProcSample};
use crate::recommend::K;
use crate::report::{Latencies, Report, Row, count_label, fmt_num};
use crate::server::{Launcher, MAX_MESSAGE_BYTES, Patrold, connect_tls};

/// The identity (and client certificate CN) of the bench's terminal.
pub const TERMINAL: &str = "bench-terminal";
/// The identity (and client certificate CN) of the bench's operator.
pub const OPERATOR: &str = "bench-operator";
/// The name the clients check the server's certificate for.
const SERVER_NAME: &str = "localhost";
/// The operator key's lifetime (a person's key must expire within
/// `auth.session_ttl_ms`, 12 h by default).
const OPERATOR_KEY_TTL_MS: i64 = 3_600_000;
/// `Recommend` calls per caller before the measured ones.
const WARM_UP_CALLS: usize = 100;

/// A server's security setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Security {
    /// Plaintext, `auth.required = false`.
    Plaintext,
    /// Plaintext, bearer tokens.
    Bearer,
    /// TLS, bearer tokens.
    Tls,
    /// Mutual TLS, the client certificate as the credential.
    Mtls,
}

impl Security {
    pub const ALL: [Security; 4] = [
        Security::Plaintext,
        Security::Bearer,
        Security::Tls,
        Security::Mtls,
    ];

    /// In metric names.
    pub fn key(self) -> &'static str {
        match self {
            Security::Plaintext => "plaintext",
            Security::Bearer => "bearer",
            Security::Tls => "tls_bearer",
            Security::Mtls => "mtls_cert",
        }
    }

    /// In tables.
    pub fn label(self) -> &'static str {
        match self {
            Security::Plaintext => "plaintext, auth off",
            Security::Bearer => "plaintext, bearer tokens",
            Security::Tls => "TLS, bearer tokens",
            Security::Mtls => "mutual TLS, client certificates",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Security::Tls | Security::Mtls)
    }

    pub fn auth(self) -> bool {
        self != Security::Plaintext
    }
}

/// How the phase runs.
#[derive(Debug, Clone)]
pub struct SecureSpec {
    /// The settings measured, in this order (the first is the baseline the
    /// others are compared with).
    pub configs: Vec<Security>,
    pub clients: usize,
    pub batch: usize,
    /// Seconds of ingest per setting.
    pub duration: Duration,
    /// Measured `Recommend` calls per setting, and the callers sharing them.
    pub calls: usize,
    pub callers: usize,
    pub seed: u64,
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// The run's throwaway PKI: a CA, the server's certificate (files for
/// patrold) and a client certificate for the terminal and the operator.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
    pub terminal: Pair,
    pub operator: Pair,
}

impl Pki {
    /// Makes the certificates and writes the server's files (and the CA)
    /// into `dir`.
    pub fn generate(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "patrol-bench test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_pem = params.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(params, ca_key);
        let sign = |mut params: CertificateParams, usage| -> Result<Pair> {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            Ok(Pair {
                cert: cert.pem(),
                key: key.serialize_pem(),
            })
        };
        let server = sign(
            CertificateParams::new(vec!["127.0.0.1".to_string(), SERVER_NAME.to_string()])?,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = |cn: &str| {
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            sign(params, ExtendedKeyUsagePurpose::ClientAuth)
        };
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        Ok(Pki {
            ca_file: write("ca.crt", &ca_pem)?,
            server_cert_file: write("server.crt", &server.cert)?,
            server_key_file: write("server.key", &server.key)?,
            terminal: client(TERMINAL)?,
            operator: client(OPERATOR)?,
            ca_pem,
        })
    }

    /// How a client reaches a TLS server: trusting the CA, presenting
    /// `identity`'s certificate when given.
    pub fn client_tls(&self, identity: Option<&Pair>) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(SERVER_NAME);
        match identity {
            Some(pair) => tls.identity(Identity::from_pem(&pair.cert, &pair.key)),
            None => tls,
        }
    }
}

/// The `[auth]` and `[tls]` sections for `security` (appended to
/// [`crate::server::service_toml`]): auth on with the bootstrap admin's token written to
/// `admin_token`, TLS from `pki`'s files, mutual TLS requiring a client
/// certificate signed by its CA.
pub fn security_toml(security: Security, pki: &Pki, admin_token: &Path) -> String {
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut out = String::from("\n[auth]\n");
    if security.auth() {
        out.push_str(&format!(
            "required = true\nadmin_token_file = {}\n",
            path(admin_token)
        ));
    } else {
        out.push_str("required = false\n");
    }
    out.push_str("\n[tls]\n");
    if security.tls() {
        out.push_str(&format!(
            "cert = {}\nkey = {}\n",
            path(&pki.server_cert_file),
            path(&pki.server_key_file)
        ));
        if security == Security::Mtls {
            out.push_str(&format!(
                "client_ca = {}\nrequire_client_cert = true\n",
                path(&pki.ca_file)
            ));
        }
        out.push_str("plaintext = false\n");
    } else {
        out.push_str("plaintext = true\n");
    }
    out
}

/// How one caller reaches the server: TLS settings and its token.
#[derive(Clone)]
struct Caller {
    tls: Option<ClientTlsConfig>,
    bearer: Bearer,
}

impl Caller {
    async fn channel(&self, server: &Patrold) -> Result<Authed> {
        let channel = connect_tls(&server.url, self.tls.clone()).await?;
        Ok(authed(channel, self.bearer.clone()))
    }

    async fn channels(&self, server: &Patrold, n: usize) -> Result<Vec<Authed>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.channel(server).await?);
        }
        Ok(out)
    }
}

fn bearer(token: Option<&str>) -> Result<Bearer> {
    Bearer::new(token).context("the token is not valid in a header")
}

/// CPU time of the server, the load generator and the machine at one instant.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server: Option<ProcSample>,
    me: Option<ProcSample>,
    machine_busy_s: Option<f64>,
}

/// CPU seconds used between two [`Cpu`] samples, and the wall time.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    wall_s: f64,
    server_s: Option<f64>,
    loadgen_s: Option<f64>,
    other_s: Option<f64>,
}

impl Cpu {
    fn sample(server: &Patrold) -> Self {
        Self {
            server: server.sample(),
            me: proc_stats::sample_self(),
            machine_busy_s: proc_stats::machine_busy_s(),
        }
    }

    fn until(&self, after: &Cpu) -> CpuUse {
        let server_s = self
            .server
            .zip(after.server)
            .map(|(b, a)| b.cpu_s_until(&a));
        let loadgen_s = self.me.zip(after.me).map(|(b, a)| b.cpu_s_until(&a));
        let wall_s = self
            .me
            .zip(after.me)
            .map(|(b, a)| a.at.duration_since(b.at).as_secs_f64())
            .unwrap_or(0.0);
        let other_s = match (
            self.machine_busy_s,
            after.machine_busy_s,
            server_s,
            loadgen_s,
        ) {
            (Some(b), Some(a), Some(s), Some(l)) => Some((a - b - s - l).max(0.0)),
            _ => None,
        };
        CpuUse {
            wall_s,
            server_s,
            loadgen_s,
            other_s,
        }
    }
}

impl CpuUse {
    fn cores(seconds: Option<f64>, wall_s: f64) -> Option<f64> {
        seconds.filter(|_| wall_s > 0.0).map(|s| s / wall_s)
    }
}

/// The 1-minute load average.
fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What one setting measured.
#[derive(Debug, Clone)]
struct Measured {
    security: Security,
    ingest: IngestOutcome,
    ingest_cpu: CpuUse,
    recommend: Latencies,
    recommend_cpu: CpuUse,
    /// Queries that returned fewer than k units.
    short: usize,
    loadavg: Option<f64>,
}

impl Measured {
    fn p(&self, q: f64) -> f64 {
        self.recommend.quantile_ns(q) / 1e3
    }
}

/// Runs every setting of `spec` on a fresh server each, `city`'s units
/// registered and moving, and records the comparison.
pub async fn run(
    launcher: &Launcher,
    city: &mut City,
    spec: &SecureSpec,
    report: &mut Report,
) -> Result<()> {
    let pki = Pki::generate(&launcher.workdir.join("secure-pki"))?;
    let points = city.query_points(spec.calls.max(1));
    let mut measured = Vec::new();
    for &security in &spec.configs {
        let m = one(launcher, &pki, security, city, &points, spec)
            .await
            .with_context(|| format!("secure phase, {}", security.label()))?;
        info!(
            config = security.key(),
            ingest = m.ingest.rate() as u64,
            recommend_p50_us = m.p(0.50) as u64,
            recommend_p99_us = m.p(0.99) as u64,
            "secure: setting done"
        );
        measured.push(m);
    }
    record(report, &measured, city.units.len(), spec);
    Ok(())
}

/// One setting: a fresh server, the units registered by the admin, ingest
/// from the terminal, `Recommend` from the operator.
async fn one(
    launcher: &Launcher,
    pki: &Pki,
    security: Security,
    city: &mut City,
    points: &[(f64, f64)],
    spec: &SecureSpec,
) -> Result<Measured> {
    let loadavg = loadavg_1m();
    let name = format!("secure-{}", security.key());
    let token_file = launcher.workdir.join(format!("{name}-admin.token"));
    let _ = std::fs::remove_file(&token_file);
    // With mutual TLS every connection presents a certificate (the
    // admin's calls carry its token beside the terminal's certificate).
    let tls = |who: &Pair| {
        security
            .tls()
            .then(|| pki.client_tls((security == Security::Mtls).then_some(who)))
    };
    let server = launcher
        .patrold_secure(
            &name,
            &security_toml(security, pki, &token_file),
            tls(&pki.terminal),
        )
        .await?;
    let admin_token = if security.auth() {
        let text = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading the admin token {}", token_file.display()))?;
        Some(text.trim().to_string())
    } else {
        None
    };
    let admin = Caller {
        tls: tls(&pki.terminal),
        bearer: bearer(admin_token.as_deref())?,
    };
    let admin_channels = admin.channels(&server, 4).await?;
    register_units(&admin_channels, &city.units).await?;
    let (terminal_token, operator_token) = credentials(security, &admin_channels[0]).await?;
    let terminal = Caller {
        tls: tls(&pki.terminal),
        bearer: bearer(terminal_token.as_deref())?,
    };
    let operator = Caller {
        tls: tls(&pki.operator),
        bearer: bearer(operator_token.as_deref())?,
    };
    let streams = terminal.channels(&server, spec.clients.max(1)).await?;
    send_positions(&streams, &mut city.units, 1_000).await?;

    let before = Cpu::sample(&server);
    let ingest = ingest::run(
        &streams,
        &mut city.units,
        city.spec.region,
        &ingest::IngestSpec {
            clients: streams.len(),
            batch: spec.batch.max(1),
            duration: spec.duration,
            rate: None,
            seed: spec.seed,
        },
    )
    .await?;
    let ingest_cpu = before.until(&Cpu::sample(&server));
    if ingest.rejected > 0 {
        bail!(
            "{} pings rejected (first: {:?})",
            ingest.rejected,
            ingest.first_rejection
        );
    }

    let consoles = operator.channels(&server, spec.callers.max(1)).await?;
    let (recommend, short, recommend_cpu) =
        recommend_load(&server, &consoles, points, spec).await?;
    Ok(Measured {
        security,
        ingest,
        ingest_cpu,
        recommend,
        recommend_cpu,
        short,
        loadavg,
    })
}

/// Registers every unit (as the admin).
/// The terminal's and the operator's bearer tokens (`None` with auth off,
/// and with mutual TLS, where their certificates are the credentials).
async fn credentials(
    security: Security,
    admin: &Authed,
) -> Result<(Option<String>, Option<String>)> {
    if !security.auth() {
        return Ok((None, None));
    }
    let mut auth = AuthServiceClient::new(admin.clone());
    let kind = if security == Security::Mtls {
        pb::CredentialKind::Certificate
    } else {
        pb::CredentialKind::Key
    };
    // Every unit id the city makes starts with `unit-`.
    let terminal = pb::IssueCredentialRequest {
        identity: TERMINAL.into(),
        role: pb::Role::Terminal as i32,
        scope: vec!["unit-*".into()],
        kind: kind as i32,
        ..Default::default()
    };
    let operator = pb::IssueCredentialRequest {
        identity: OPERATOR.into(),
        role: pb::Role::Operator as i32,
        kind: kind as i32,
        ttl_ms: OPERATOR_KEY_TTL_MS,
        ..Default::default()
    };
    let mut secrets = Vec::new();
    for mut req in [terminal, operator] {
        req.label = "patrol-bench secure phase".into();
        let identity = req.identity.clone();
        let resp = auth
            .issue_credential(req)
            .await
            .with_context(|| format!("IssueCredential for {identity}"))?
            .into_inner();
        secrets.push(resp.secret);
    }
    if kind == pb::CredentialKind::Certificate {
        return Ok((None, None));
    }
    let operator = secrets.pop();
    Ok((secrets.pop(), operator))
}

fn recommend_request(lon: f64, lat: f64) -> pb::RecommendRequest {
    pb::RecommendRequest {
        target: Some(pb::recommend_request::Target::Point(pb::LonLat {
            lon,
            lat,
        })),
        k: K as u32,
        ..Default::default()
    }
}

/// `spec.calls` `Recommend` calls shared by the consoles, one at a time each
/// (after a warm-up): their latencies, how many came back short of k, and
/// the CPU used meanwhile.
async fn recommend_load(
    server: &Patrold,
    consoles: &[Authed],
    points: &[(f64, f64)],
    spec: &SecureSpec,
) -> Result<(Latencies, usize, CpuUse)> {
    let callers = consoles.len();
    let calls = spec.calls.max(1);
    let mut clients: Vec<_> = consoles
        .iter()
        .map(|c| IncidentServiceClient::new(c.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        for j in 0..WARM_UP_CALLS {
            let (lon, lat) = points[(i * WARM_UP_CALLS + j) % points.len()];
            client
                .recommend(recommend_request(lon, lat))
                .await
                .context("Recommend (warm-up)")?;
        }
    }
    let before = Cpu::sample(server);
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        // Caller i makes calls i, i + callers, ...
        let mine: Vec<(f64, f64)> = (i..calls)
            .step_by(callers)
            .map(|c| points[c % points.len()])
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::new();
            let mut short = 0;
            for (lon, lat) in mine {
                let t = Instant::now();
                let resp = client
                    .recommend(recommend_request(lon, lat))
                    .await
                    .context("Recommend")?
                    .into_inner();
                latencies.record(t.elapsed());
                if resp.units.len() < K {
                    short += 1;
                }
            }
            anyhow::Ok((latencies, short))
        }));
    }
    let mut all = Latencies::new();
    let mut short = 0;
    for task in tasks {
        let (latencies, s) = task.await??;
        all.merge(&latencies);
        short += s;
    }
    let cpu = before.until(&Cpu::sample(server));
    Ok((all, short, cpu))
}

/// `value / base`, when both are there and `base` is not zero.
pub fn ratio(value: f64, base: f64) -> Option<f64> {
    (base > 0.0 && value.is_finite()).then(|| value / base)
}

/// Rows, context figures and one note per setting; ratios against the
/// first setting measured.
fn record(report: &mut Report, measured: &[Measured], units: usize, spec: &SecureSpec) {
    let Some(base) = measured.first() else {
        return;
    };
    let label = count_label(units);
    for m in measured {
        let key = format!("secure_{}", m.security.key());
        let what = format!("{label} units, {}", m.security.label());
        report.push(Row::higher(
            format!("{key}_ingest_pings_per_s"),
            format!("ingest, {} streams x {} ({what})", spec.clients, spec.batch),
            "1/s",
            m.ingest.rate(),
        ));
        for (q, name) in [(0.50, "p50"), (0.95, "p95"), (0.99, "p99")] {
            report.push(Row::lower(
                format!("{key}_recommend_{name}_us"),
                format!("Recommend k=5 {name}, {} callers ({what})", spec.callers),
                "us",
                m.p(q),
            ));
        }
        let vs = [
            ("ingest_vs_base", ratio(m.ingest.rate(), base.ingest.rate())),
            ("recommend_p50_vs_base", ratio(m.p(0.50), base.p(0.50))),
            ("recommend_p99_vs_base", ratio(m.p(0.99), base.p(0.99))),
        ];
        for (name, value) in vs {
            if let Some(v) = value {
                report.extra(format!("{key}_{name}"), v, "x");
            }
        }
        let per = |cpu: &CpuUse, ops: u64| cpu.server_s.map(|s| s * 1e6 / ops.max(1) as f64);
        let ingest_us = per(&m.ingest_cpu, m.ingest.accepted);
        let recommend_us = per(&m.recommend_cpu, m.recommend.len());
        let extras = [
            ("server_cpu_us_per_ping", ingest_us, "us"),
            ("server_cpu_us_per_recommend", recommend_us, "us"),
            ("loadavg_1m_before", m.loadavg, "load"),
            (
                "ingest_duplicates",
                Some(m.ingest.duplicates as f64),
                "count",
            ),
            ("recommend_short_answers", Some(m.short as f64), "count"),
        ];
        for (name, value, unit) in extras {
            if let Some(v) = value {
                report.extra(format!("{key}_{name}"), v, unit);
            }
        }
        for (phase, c) in [("ingest", &m.ingest_cpu), ("recommend", &m.recommend_cpu)] {
            let who = [
                ("server", c.server_s),
                ("loadgen", c.loadgen_s),
                ("other_processes", c.other_s),
            ];
            for (name, seconds) in who {
                if let Some(cores) = CpuUse::cores(seconds, c.wall_s) {
                    report.extra(format!("{key}_{phase}_{name}_cpu_cores"), cores, "cores");
                }
            }
        }
        report.note(summary_line(m, base, ingest_us, recommend_us));
    }
    report.note(format!(
        "secure: {label} units on a fresh patrold per setting, in this order: {}; ratios are against {} (first); per-caller limits off on every server; ingest {} ReportPositions streams x {} pings per batch, flat out, {:.0} s, each stream its own connection; Recommend k=5 at uniform random points, {} calls from {} callers one at a time each (own connection), after {} warm-up calls each; terminal key scoped unit-*, operator key (ttl 1 h) or, with mutual TLS, certificate credentials",
        spec.configs
            .iter()
            .map(|s| s.key())
            .collect::<Vec<_>>()
            .join(", "),
        base.security.key(),
        spec.clients,
        spec.batch,
        spec.duration.as_secs_f64(),
        spec.calls,
        spec.callers,
        WARM_UP_CALLS,
    ));
}

/// "secure tls_bearer (TLS, bearer tokens): ingest 1,234,567 pings/s (0.80x),
/// Recommend p50 / p99 120 / 300 us (1.10x / 1.20x), server CPU 0.5 us per
/// ping, 40 us per Recommend".
fn summary_line(
    m: &Measured,
    base: &Measured,
    ingest_us: Option<f64>,
    rec_us: Option<f64>,
) -> String {
    let x = |v: Option<f64>| v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "-".into());
    let us = |v: Option<f64>| v.map(fmt_num).unwrap_or_else(|| "-".into());
    format!(
        "secure {} ({}): ingest {} pings/s ({}), Recommend p50 / p99 {} / {} us ({} / {}), server CPU {} us per ping, {} us per Recommend",
        m.security.key(),
        m.security.label(),
        fmt_num(m.ingest.rate()),
        x(ratio(m.ingest.rate(), base.ingest.rate())),
        fmt_num(m.p(0.50)),
        fmt_num(m.p(0.99)),
        x(ratio(m.p(0.50), base.p(0.50))),
        x(ratio(m.p(0.99), base.p(0.99))),
        us(ingest_us),
        us(rec_us),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::unix_ms;
    use crate::server::service_toml;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "patrol-bench-secure-{tag}-{}-{}",
            std::process::id(),
            unix_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pki_files_are_pem_and_clients_are_named() {
        let dir = temp_dir("pki");
        let pki = Pki::generate(&dir).unwrap();
        for file in [&pki.ca_file, &pki.server_cert_file] {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
        }
        let key = std::fs::read_to_string(&pki.server_key_file).unwrap();
        assert!(key.contains("PRIVATE KEY-----"), "{key}");
        assert_eq!(std::fs::read_to_string(&pki.ca_file).unwrap(), pki.ca_pem);
        assert_ne!(pki.terminal.cert, pki.operator.cert);
        assert!(pki.terminal.key.contains("PRIVATE KEY-----"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The config each setting writes is read by patrold's own parser, with
    /// exactly the auth and TLS settings meant, and the per-caller limits
    /// off.
    #[test]
    fn each_setting_writes_the_config_it_means() {
        let dir = temp_dir("config");
        let pki = Pki::generate(&dir).unwrap();
        let token = dir.join("admin.token");
        let settings = crate::server::ServerSettings {
            position_interval_ms: 250,
            offline_after_ms: 3_600_000,
            map: None,
        };
        for security in Security::ALL {
            let file = dir.join(format!("{}.toml", security.key()));
            let text = format!(
                "{}{}",
                service_toml(&settings),
                security_toml(security, &pki, &token)
            );
            std::fs::write(&file, &text).unwrap();
            let config = patrol_services::Config::from_file(&file)
                .unwrap_or_else(|e| panic!("{security:?}: {e:#}\n{text}"));
            assert_eq!(config.auth.required, security.auth(), "{security:?}");
            let admin_file = if security.auth() {
                token.clone()
            } else {
                PathBuf::new()
            };
            assert_eq!(config.auth.admin_token_file, admin_file, "{security:?}");
            assert_eq!(config.tls.plaintext, !security.tls(), "{security:?}");
            if security.tls() {
                assert_eq!(config.tls.cert, pki.server_cert_file);
                assert_eq!(config.tls.key, pki.server_key_file);
            }
            assert_eq!(config.tls.mutual(), security == Security::Mtls);
            assert_eq!(
                config.tls.require_client_cert,
                security == Security::Mtls,
                "{security:?}"
            );
            if security == Security::Mtls {
                assert_eq!(config.tls.client_ca, pki.ca_file);
            }
            assert_eq!(config.limits.pings_per_second_per_caller, 0);
            assert_eq!(config.watch.position_interval_ms, 250);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settings_have_distinct_keys() {
        let mut keys: Vec<_> = Security::ALL.iter().map(|s| s.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Security::ALL.len());
        assert!(!Security::Plaintext.tls() && !Security::Plaintext.auth());
        assert!(!Security::Bearer.tls() && Security::Bearer.auth());
        assert!(Security::Tls.tls() && Security::Mtls.auth());
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(50.0, 100.0), Some(0.5));
        assert_eq!(ratio(50.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }
}
