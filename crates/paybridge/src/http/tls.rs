//! HTTPS when `server.tls_cert` and `server.tls_key` are set: rustls (ring), with the
//! certificate and key read again when either file changes or on SIGHUP, so a renewed
//! certificate (certbot, cert-manager) is served without a restart. A reload that fails
//! (a half-written file, a key that does not match) keeps the certificate being served
//! and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

/// How often the files are looked at for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The certificate being served, replaced in place on reload.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times and sizes when last read.
    stamp: RwLock<Option<Stamp>>,
    /// SIGHUP, listened for from the moment the certificate is loaded (so a SIGHUP sent
    /// once the server says it is running never falls on the default action, exit).
    hangup: std::sync::Mutex<Option<Hangup>>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp_of(paths: [&Path; 2]) -> Option<Stamp> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    Some([one(paths[0])?, one(paths[1])?])
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl Certificate {
    /// Reads a PEM certificate chain and private key; errors name the setting and the fix.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = stamp_of([cert, key]);
        let current = read_pair(cert, key, &provider)?;
        let hangup = tokio::runtime::Handle::try_current().ok().map(|_| hangup());
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
            stamp: RwLock::new(stamp),
            hangup: std::sync::Mutex::new(hangup),
        }))
    }

    /// The acceptor that serves whatever certificate is current.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reads the files again; the served certificate changes only when they form a valid
    /// pair.
    pub fn reload(&self) -> anyhow::Result<()> {
        let stamp = stamp_of([&self.cert, &self.key]);
        let fresh = read_pair(&self.cert, &self.key, &self.provider)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(fresh);
        }
        if let Ok(mut s) = self.stamp.write() {
            *s = stamp;
        }
        Ok(())
    }

    /// Whether either file changed (time or size) since it was last read.
    pub fn changed(&self) -> bool {
        let now = stamp_of([&self.cert, &self.key]);
        now.is_some() && self.stamp.read().map(|s| *s != now).unwrap_or(false)
    }

    /// Reloads on a change of either file (looked at every 2 s) and on SIGHUP, until
    /// `cancel`.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = self
            .hangup
            .lock()
            .ok()
            .and_then(|mut h| h.take())
            .unwrap_or_else(hangup);
        loop {
            let why = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if !self.changed() {
                        continue;
                    }
                    "the files changed"
                }
                _ = next_hangup(&mut hangup) => "SIGHUP",
            };
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.cert.display(), reason = why, "TLS certificate reloaded")
                }
                Err(e) => tracing::error!(
                    reason = why,
                    error = %format!("{e:#}"),
                    "TLS certificate not reloaded; still serving the previous one"
                ),
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(h: &mut Hangup) {
    match h {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("server.tls_cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "server.tls_cert: {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("server.tls_cert: {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("server.tls_key: {} is not a PEM private key", key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .context("server.tls_cert / server.tls_key do not form a valid certificate and key")
}

/// Reads a PEM certificate chain and private key into an acceptor (no reloading).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    Certificate::load(cert, key)?.acceptor()
}
