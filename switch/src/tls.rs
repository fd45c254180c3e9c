//! TLS on the terminal listener: rustls with the ring provider, TLS 1.2 and 1.3 only (the
//! versions PCI DSS accepts; rustls has no older ones and only AEAD suites), a certificate
//! from `[tls]`, optionally client certificates (mutual TLS). The handshake runs in the
//! connection's own task under the read deadline, so a slow or silent peer never holds up
//! the accept loop; each one is counted in `switch_tls_handshakes_total{listener,result}`.
//!
//! ```text
//!  accept (TCP) ─▶ PendingTls ─▶ connection task: handshake ≤ read_timeout_secs
//!                                  ├─ ok       ─▶ frames as on the plain listener
//!                                  ├─ failed   ─▶ closed (wrong CA, no client cert, not TLS)
//!                                  └─ timeout  ─▶ closed
//!
//!  issuer line: Dialer::dial ─▶ TlsDialer: TCP, then a handshake with our client
//!               certificate, the issuer's checked against `issuers[].tls.ca_file`
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{IssuerTlsConfig, TlsConfig};
use crate::metrics::Metrics;
use crate::net::{BoxStream, Connection, Dialer, Dialing, Listener};

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    // ring, the crate the rest of the switch's crypto uses. rustls marks its ring provider
    // deprecated for want of post-quantum key exchange, which POS terminals and issuer
    // hosts do not offer.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certs(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{what} {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{what} {}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("{what} {}: no certificate", path.display()));
    }
    Ok(certs)
}

/// The certificate a TLS listener presents, swapped whole when its files are read again
/// (SIGHUP): new handshakes get the new one, connections already up keep theirs.
#[derive(Debug)]
pub struct ServerCert {
    cert_file: std::path::PathBuf,
    key_file: std::path::PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl ServerCert {
    fn read(
        cert_file: &std::path::Path,
        key_file: &std::path::Path,
        provider: &rustls::crypto::CryptoProvider,
    ) -> Result<Arc<rustls::sign::CertifiedKey>> {
        let certs = pem_certs(cert_file, "tls.cert_file")?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .with_context(|| format!("tls.key_file {}: no PEM private key", key_file.display()))?;
        let ck = rustls::sign::CertifiedKey::from_der(certs, key, provider)
            .context("tls: the key does not fit the certificate")?;
        Ok(Arc::new(ck))
    }

    /// Reads the certificate and key files again; on any error the current pair stays.
    pub fn reload(&self) -> Result<()> {
        let fresh = Self::read(&self.cert_file, &self.key_file, &self.provider)?;
        if let Ok(mut c) = self.current.write() {
            *c = fresh;
        }
        Ok(())
    }

    /// [`ServerCert::reload`], logged and counted.
    pub fn reload_counted(&self, metrics: &Metrics) -> Result<()> {
        let r = self.reload();
        metrics.tls_reload(r.is_ok());
        match &r {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS certificate reload failed: the old one stays")
            }
        }
        r
    }
}

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// The certificate of `[tls]`, read and checked (the key fits), which
/// [`ServerCert::reload`] renews.
pub fn server_cert(tls: &TlsConfig) -> Result<Arc<ServerCert>> {
    let provider = ring_provider();
    Ok(Arc::new(ServerCert {
        current: std::sync::RwLock::new(ServerCert::read(
            &tls.cert_file,
            &tls.key_file,
            &provider,
        )?),
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        provider,
    }))
}

/// A rustls server configuration presenting `cert`: TLS 1.2+, and client certificates from
/// `tls.client_ca_file` required when `client_auth` and one is given (the terminal
/// listener; the metrics listener serves Prometheus, which brings none).
pub fn server_config(
    tls: &TlsConfig,
    cert: &Arc<ServerCert>,
    client_auth: bool,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = ring_provider();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?;
    let builder = match tls.client_ca_file.as_ref().filter(|_| client_auth) {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in pem_certs(ca, "tls.client_ca_file")? {
                roots
                    .add(c)
                    .with_context(|| format!("tls.client_ca_file {}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .context("tls.client_ca_file")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config =
        builder.with_cert_resolver(Arc::clone(cert) as Arc<dyn rustls::server::ResolvesServerCert>);
    Ok(Arc::new(config))
}

/// The metrics listener over TLS, for axum: a task accepts TCP and runs each handshake
/// in its own task (within `handshake_timeout`), handing finished ones to `accept`.
/// Counted under `listener="metrics"`.
pub struct HttpsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    /// Serves `tcp` with `config`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        metrics.prime_tls("metrics");
        tokio::spawn(async move {
            while !tx.is_closed() {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), Arc::clone(&metrics));
                tokio::spawn(async move {
                    let r = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
                    match r {
                        Ok(Ok(s)) => {
                            metrics.tls_handshake("metrics", "ok");
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(_)) => metrics.tls_handshake("metrics", "failed"),
                        Err(_) => metrics.tls_handshake("metrics", "timeout"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A TCP listener whose connections speak TLS.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl TlsListener {
    /// `tcp` with `config`; handshakes must finish within `handshake_timeout`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshake_timeout,
            metrics,
        }
    }
}

impl TlsListener {
    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// An accepted connection whose handshake has not run yet.
pub struct PendingTls {
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Listener for TlsListener {
    type Conn = PendingTls;

    async fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)> {
        let (tcp, peer) = self.tcp.accept().await?;
        let _ = tcp.set_nodelay(true);
        Ok((
            PendingTls {
                tcp,
                acceptor: self.acceptor.clone(),
                handshake_timeout: self.handshake_timeout,
                metrics: Arc::clone(&self.metrics),
            },
            peer,
        ))
    }
}

impl Connection for PendingTls {
    type Read = ReadHalf<TlsStream<TcpStream>>;
    type Write = WriteHalf<TlsStream<TcpStream>>;

    async fn open(self) -> io::Result<(Self::Read, Self::Write)> {
        let peer = self.tcp.peer_addr().ok();
        let r = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(self.tcp)).await;
        let (result, outcome) = match r {
            Ok(Ok(stream)) => ("ok", Ok(tokio::io::split(stream))),
            Ok(Err(e)) => ("failed", Err(e)),
            Err(_) => (
                "timeout",
                Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake")),
            ),
        };
        self.metrics.tls_handshake("terminals", result);
        if let Err(e) = &outcome {
            tracing::debug!(peer = ?peer, error = %e, "TLS handshake did not complete");
        }
        outcome
    }
}

/// Issuer lines over TLS: each dial of the plain dialer, then a handshake presenting our
/// client certificate and checking the issuer's against its CA. Counted under
/// `listener="issuer_lines"`.
pub struct TlsDialer {
    inner: Arc<dyn Dialer>,
    connector: tokio_rustls::TlsConnector,
    server_name: Option<String>,
    metrics: Arc<Metrics>,
}

impl TlsDialer {
    /// `inner`'s connections wrapped in TLS as `tls` says; `what` names the section in
    /// errors (`issuers[0].tls`).
    pub fn new(
        inner: Arc<dyn Dialer>,
        tls: &IssuerTlsConfig,
        what: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(&tls.ca_file, &format!("{what}.ca_file"))? {
            roots
                .add(c)
                .with_context(|| format!("{what}.ca_file {}", tls.ca_file.display()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS versions")?
            .with_root_certificates(roots);
        let config = match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                let certs = pem_certs(cert, &format!("{what}.cert_file"))?;
                let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
                    format!("{what}.key_file {}: no PEM private key", key.display())
                })?;
                builder
                    .with_client_auth_cert(certs, key)
                    .with_context(|| format!("{what}: the key does not fit the certificate"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(anyhow!("{what}: give cert_file and key_file together")),
        };
        metrics.prime_tls("issuer_lines");
        Ok(Self {
            inner,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: tls.server_name.clone(),
            metrics,
        })
    }
}

impl Dialer for TlsDialer {
    fn dial<'a>(&'a self, addr: &'a str) -> Dialing<'a> {
        Box::pin(async move {
            let host = self
                .server_name
                .as_deref()
                .unwrap_or_else(|| addr.rsplit_once(':').map_or(addr, |(h, _)| h))
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let plain = self.inner.dial(addr).await?;
            match self.connector.connect(name, plain).await {
                Ok(s) => {
                    self.metrics.tls_handshake("issuer_lines", "ok");
                    Ok(Box::new(s) as BoxStream)
                }
                Err(e) => {
                    self.metrics.tls_handshake("issuer_lines", "failed");
                    Err(e)
                }
            }
        })
    }
}
