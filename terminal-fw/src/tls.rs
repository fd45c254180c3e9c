//! Dialling the switch over TLS: the CA that its certificate chains to, and optionally the
//! terminal's own certificate (when the switch wants mutual TLS). TLS 1.2 and 1.3 only.
//!
//! ```text
//!  --tls-ca ca.crt [--tls-cert t.crt --tls-key t.key]
//!      TCP connect ─▶ TLS handshake (server name: the switch's IP) ─▶ frames as over TCP
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;

/// Why the TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read as PEM.
    #[error("{0}: not a readable PEM file")]
    Pem(String),
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Config(#[from] rustls::Error),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = || TlsError::Pem(path.display().to_string());
    let v: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|_| bad())?
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if v.is_empty() { Err(bad()) } else { Ok(v) }
}

/// A connector trusting the CA in `ca`, presenting `client` (certificate, key) if given.
pub fn connector(ca: &Path, client: Option<(&Path, &Path)>) -> Result<TlsConnector, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c)?;
    }
    // ring, as the rest of the terminal's crypto.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|_| TlsError::Pem(key.display().to_string()))?;
            builder.with_client_auth_cert(certs(cert)?, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}
