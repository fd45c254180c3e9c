//! `[tls]`: the certificate the terminal TLS listener presents (and, optionally, the CA
//! that terminals' client certificates must chain to).
//!
//! ```text
//!  [listen] terminals_tls = "0.0.0.0:8593"     beside the plain listener, or instead of
//!  [tls]    cert_file = "/etc/switch/tls.crt"  PEM chain, leaf first
//!           key_file  = "/etc/switch/tls.key"  PEM private key (PKCS#8, PKCS#1 or SEC1)
//!           client_ca_file = "/etc/switch/terminals-ca.crt"   optional: mutual TLS
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Certificates for TLS listeners.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
    /// When given, terminals must present a certificate issued by this CA (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}
