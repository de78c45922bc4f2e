//! TLS on both ports, with rustls (ring provider), optionally mutual.
//!
//! One [`Tls`] holds the current rustls `ServerConfig` of each port (ALPN
//! `h2` for gRPC; `h2` and `http/1.1` for HTTP), built from the PEM files of
//! `[tls]`. [`reload`] re-reads the files every `tls.reload_check_ms`; a
//! changed set that builds is swapped in for new connections (open ones keep
//! theirs), a bad one keeps the old config, is logged once and counted.
//!
//! [`incoming`] is the accept loop of one port: TCP accept (nodelay), then
//! each handshake in its own task under `tls.handshake_timeout_ms`, so a slow
//! or silent client never holds up the others. Finished streams go to the
//! server (tonic or axum) through a bounded channel, as a [`TlsIncoming`].
//! tonic implements `Connected` for `tokio_rustls::server::TlsStream` (its
//! TLS feature), so requests carry `TlsConnectInfo<TcpConnectInfo>`:
//! `Request::remote_addr()` and `Request::peer_certs()` keep working, and
//! [`cert_identity`] reads the verified client certificate from it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::config::TlsConfig;
use crate::telemetry as m;

/// Handshakes in progress (and finished ones waiting for the server to take
/// them) per port. At this many the accept loop stops accepting until one
/// ends, and further clients wait in the kernel's backlog.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Finished TLS connections waiting for the server to take them. Full: the
/// handshake task waits for room (backpressure; the server takes each stream
/// at once to spawn its connection task, so this drains quickly), still
/// holding its handshake permit, so waiting connections stay bounded by
/// [`MAX_PENDING_HANDSHAKES`].
const ACCEPTED_BUFFER: usize = 64;

/// After a failed TCP accept (e.g. out of file descriptors), wait this long
/// before the next, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Which listener a config is for (its ALPN, the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Grpc,
    Http,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Port::Grpc => "grpc",
            Port::Http => "http",
        }
    }

    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Port::Grpc => vec![b"h2".to_vec()],
            Port::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// The TLS side of a node: each port's current config, and the files it
/// came from.
pub(crate) struct Tls {
    settings: TlsConfig,
    grpc: RwLock<Arc<ServerConfig>>,
    http: RwLock<Arc<ServerConfig>>,
    /// What the files held at the last check (or the error reading them),
    /// so a change is acted on, and a bad file reported, once.
    last_seen: Mutex<Result<Files, String>>,
}

/// The contents of the configured files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(settings: &TlsConfig) -> anyhow::Result<Self> {
        fn read(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
            std::fs::read(path).with_context(|| format!("reading tls.{key} {}", path.display()))
        }
        Ok(Self {
            cert: read("cert", &settings.cert)?,
            key: read("key", &settings.key)?,
            client_ca: if settings.mutual() {
                Some(read("client_ca", &settings.client_ca)?)
            } else {
                None
            },
        })
    }
}

impl Tls {
    /// Reads and checks the files of `settings` (not plaintext).
    pub(crate) fn load(settings: &TlsConfig) -> anyhow::Result<Arc<Self>> {
        let files = Files::read(settings)?;
        Ok(Arc::new(Self {
            grpc: RwLock::new(build(settings, &files, Port::Grpc)?),
            http: RwLock::new(build(settings, &files, Port::Http)?),
            last_seen: Mutex::new(Ok(files)),
            settings: settings.clone(),
        }))
    }

    fn slot(&self, port: Port) -> &RwLock<Arc<ServerConfig>> {
        match port {
            Port::Grpc => &self.grpc,
            Port::Http => &self.http,
        }
    }

    /// The config a new connection on `port` gets.
    fn current(&self, port: Port) -> Arc<ServerConfig> {
        self.slot(port)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the files; when they changed since the last check, builds
    /// and swaps in the new config, or keeps the old one and reports why.
    /// Returns whether it swapped.
    fn check(&self) -> bool {
        let seen = Files::read(&self.settings).map_err(|e| format!("{e:#}"));
        let mut last = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        if *last == seen {
            return false;
        }
        *last = seen.clone();
        drop(last);
        let built = seen.map_err(anyhow::Error::msg).and_then(|files| {
            Ok((
                build(&self.settings, &files, Port::Grpc)?,
                build(&self.settings, &files, Port::Http)?,
            ))
        });
        match built {
            Ok((grpc, http)) => {
                for (port, config) in [(Port::Grpc, grpc), (Port::Http, http)] {
                    *self
                        .slot(port)
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
                }
                metrics::counter!(m::TLS_RELOADS, "result" => "ok").increment(1);
                tracing::info!(
                    cert = %self.settings.cert.display(),
                    "tls files changed: new connections use the new certificate"
                );
                true
            }
            Err(err) => {
                metrics::counter!(m::TLS_RELOADS, "result" => "error").increment(1);
                tracing::error!(
                    error = %format!("{err:#}"),
                    "tls files changed but cannot be used; keeping the previous certificate"
                );
                false
            }
        }
    }
}

/// Checks the files every `tls.reload_check_ms` (runs until aborted).
pub(crate) async fn reload(tls: Arc<Tls>) {
    let every = Duration::from_millis(tls.settings.reload_check_ms);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let tls = tls.clone();
        // File reads and key parsing: off the async threads.
        if let Err(err) = tokio::task::spawn_blocking(move || tls.check()).await {
            tracing::error!(error = %err, "tls reload check failed");
        }
    }
}

/// Builds `port`'s config from the files' contents. The HTTP port never
/// requires a client certificate (monitoring reaches `/metrics` and
/// `/healthz` with TLS alone), but verifies one that is presented.
fn build(settings: &TlsConfig, files: &Files, port: Port) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_path = settings.cert.display();
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.cert {cert_path}: not PEM certificates"))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "tls.cert {cert_path}: no CERTIFICATE in it"
    );
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .with_context(|| format!("tls.key {}: no PEM private key", settings.key.display()))?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("tls protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let ca_path = settings.client_ca.display();
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.with_context(|| format!("tls.client_ca {ca_path}: not PEM"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("tls.client_ca {ca_path}: a bad CA certificate"))?;
            }
            anyhow::ensure!(
                !roots.is_empty(),
                "tls.client_ca {ca_path}: no CERTIFICATE in it"
            );
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.require_client_cert && port == Port::Grpc {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .with_context(|| format!("tls.client_ca {ca_path}"))?,
            )
        }
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "tls.cert {cert_path} with tls.key {}",
            settings.key.display()
        )
    })?;
    config.alpn_protocols = port.alpn();
    Ok(Arc::new(config))
}

/// The crypto provider: ring, passed explicitly (no process default to
/// race on). rustls 0.23.48 deprecates ring's provider because ring has no
/// post-quantum key exchange (X25519MLKEM768 needs aws-lc-rs); ring is kept
/// for its build cost here (see the workspace Cargo.toml and the README's
/// FIPS note for the aws-lc-rs route).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Starts the accept loop of `port` on `listener`. It runs until the
/// returned [`TlsIncoming`] is dropped (the server stopped).
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Arc<Tls>,
    port: Port,
) -> io::Result<TlsIncoming> {
    let local_addr = listener.local_addr()?;
    let (sender, receiver) = mpsc::channel(ACCEPTED_BUFFER);
    let timeout = Duration::from_millis(tls.settings.handshake_timeout_ms);
    tokio::spawn(accept_loop(listener, tls, port, timeout, sender));
    Ok(TlsIncoming {
        receiver,
        local_addr,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<Tls>,
    port: Port,
    timeout: Duration,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            permit = pending.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = sender.closed() => return,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(port = port.label(), error = %err, "accepting a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = sender.closed() => return,
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %err, "setting TCP_NODELAY");
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current(port));
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // Err: the server stopped; the connection just closes.
                    let _ = sender.send((stream, peer)).await;
                }
                Ok(Err(err)) => {
                    metrics::counter!(m::TLS_HANDSHAKE_FAILURES, "port" => port.label(), "reason" => "error")
                        .increment(1);
                    tracing::debug!(port = port.label(), %peer, error = %err, "tls handshake failed");
                }
                Err(_) => {
                    metrics::counter!(m::TLS_HANDSHAKE_FAILURES, "port" => port.label(), "reason" => "timeout")
                        .increment(1);
                    tracing::debug!(port = port.label(), %peer, "tls handshake timed out");
                }
            }
        });
    }
}

/// Finished TLS connections of one port: a `Stream` for tonic's
/// `serve_with_incoming_shutdown`, an `axum::serve::Listener` for axum.
pub(crate) struct TlsIncoming {
    receiver: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.receiver
            .poll_recv(cx)
            .map(|next| next.map(|(stream, _)| Ok(stream)))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.receiver.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends once this is dropped; never here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// The identity of the verified client certificate of the connection a
/// request came on (mutual TLS): its Subject CN, else its first DNS or URI
/// SAN. `None` without TLS, without a client certificate, or with one that
/// names nothing. For a tower layer over `http::Request`s (tonic puts
/// `TlsConnectInfo<TcpConnectInfo>` in their extensions); rustls only hands
/// over a certificate that `tls.client_ca` verified.
pub(crate) fn cert_identity(extensions: &http::Extensions) -> Option<String> {
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    identity_of(certs.first()?)
}

/// [`cert_identity`] of a `tonic::Request`.
pub(crate) fn request_identity<T>(request: &tonic::Request<T>) -> Option<String> {
    cert_identity(request.extensions())
}

/// Subject CN, else the first DNS or URI subject alternative name.
fn identity_of(der: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().find_map(|cn| {
        cn.as_str()
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    if cn.is_some() {
        return cn;
    }
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        GeneralName::URI(uri) => Some(uri.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(params: rcgen::CertificateParams) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn identity_is_the_common_name_else_the_first_dns_or_uri_name() {
        let mut params = rcgen::CertificateParams::new(vec!["unit-7.example".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "unit-7");
        assert_eq!(identity_of(&cert_with(params)).as_deref(), Some("unit-7"));

        let mut params = rcgen::CertificateParams::new(vec!["car-3.patrol".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        assert_eq!(
            identity_of(&cert_with(params)).as_deref(),
            Some("car-3.patrol")
        );

        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://patrol/unit/9".try_into().unwrap(),
        )];
        assert_eq!(
            identity_of(&cert_with(params)).as_deref(),
            Some("spiffe://patrol/unit/9")
        );

        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        assert_eq!(identity_of(&cert_with(params)), None);
        assert_eq!(identity_of(&CertificateDer::from(vec![1, 2, 3])), None);
    }

    #[test]
    fn no_tls_info_no_identity() {
        assert_eq!(cert_identity(&http::Extensions::new()), None);
        assert_eq!(request_identity(&tonic::Request::new(())), None);
    }
}
