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

use crate::config::TlsConfig;
use crate::metrics::Metrics;
use crate::net::{Connection, Listener};

/// The rustls server configuration of `tls`: its certificate chain and key, TLS 1.2+,
/// client certificates required when a client CA is given.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "tls.cert_file {}: not PEM certificates",
                tls.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(anyhow!(
            "tls.cert_file {}: no certificate",
            tls.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).with_context(|| {
        format!(
            "tls.key_file {}: no PEM private key",
            tls.key_file.display()
        )
    })?;
    // ring, the crate the rest of the switch's crypto uses. rustls marks its ring provider
    // deprecated for want of post-quantum key exchange, which POS terminals do not offer.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("tls.client_ca_file {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("tls.client_ca_file {}", ca.display()))?)
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
    let config = builder
        .with_single_cert(certs, key)
        .context("tls: the key does not fit the certificate")?;
    Ok(Arc::new(config))
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
