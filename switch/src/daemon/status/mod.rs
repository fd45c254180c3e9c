//! The live status page at `/` of the operators' listener: static HTML, CSS and script
//! embedded in the binary (no CDN, no build step). The page polls `/metrics` every two
//! seconds, so it shows the same figures Prometheus scrapes, and `/status/declines` for
//! the last declines (masked cards only).
//!
//! ```text
//!  browser ─GET /──────────────▶ page.html (embedded)
//!          ─GET /metrics (2 s)─▶ OpenMetrics text ─▶ throughput, approval rate, latency,
//!          ─GET /status/declines▶ JSON, newest first   declines, issuers, queue, connections
//! ```
//!
//! On a loopback address the page is open, like `/metrics`. Bound anywhere else it needs
//! `[listen] status_password` (HTTP Basic, user `status`), and without one it is not
//! served there at all.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// The page.
pub const PAGE: &str = include_str!("page.html");

/// Who may see the page.
#[derive(Clone, Debug)]
pub enum Access {
    /// Anyone who reaches the (loopback) listener.
    Open,
    /// Those who send this `Authorization` header.
    Password(String),
    /// Nobody: a public listener without a password.
    Off,
}

impl Access {
    /// For a listener on `addr` with `password`.
    pub fn new(addr: std::net::SocketAddr, password: Option<&str>) -> Self {
        match password {
            Some(p) => Self::Password(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("status:{p}"))
            )),
            None if addr.ip().is_loopback() => Self::Open,
            None => Self::Off,
        }
    }

    /// `None` when `headers` may see the page, else the refusal.
    pub fn check(&self, headers: &HeaderMap) -> Option<Response> {
        match self {
            Self::Open => None,
            Self::Off => Some(
                (
                    StatusCode::FORBIDDEN,
                    "the status page needs [listen] status_password on a non-loopback address\n",
                )
                    .into_response(),
            ),
            Self::Password(want) => {
                let got = headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                // Compared as digests: the time taken says nothing about the password.
                let digest = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b);
                if digest(got).as_ref() == digest(want.as_bytes()).as_ref() {
                    None
                } else {
                    Some(
                        (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Basic realm=\"switch status\"")],
                            "the status page needs its password\n",
                        )
                            .into_response(),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_listener_needs_the_password() {
        let public: std::net::SocketAddr = "0.0.0.0:9583".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:9583".parse().unwrap();
        let none = HeaderMap::new();
        assert!(Access::new(local, None).check(&none).is_none());
        let off = Access::new(public, None).check(&none).unwrap();
        assert_eq!(off.status(), StatusCode::FORBIDDEN);
        let guarded = Access::new(public, Some("s3cret"));
        assert_eq!(
            guarded.check(&none).unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        let mut right = HeaderMap::new();
        // base64("status:s3cret")
        right.insert(
            header::AUTHORIZATION,
            "Basic c3RhdHVzOnMzY3JldA==".parse().unwrap(),
        );
        assert!(guarded.check(&right).is_none());
        let mut wrong = HeaderMap::new();
        wrong.insert(
            header::AUTHORIZATION,
            "Basic c3RhdHVzOndyb25n".parse().unwrap(),
        );
        assert!(guarded.check(&wrong).is_some());
    }

    #[test]
    fn the_page_reads_metrics_and_loads_nothing_from_elsewhere() {
        assert!(PAGE.contains("fetch(\"/metrics\""));
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no CDN"
        );
    }
}
