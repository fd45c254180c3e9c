//! `[listen]`: where terminals and operators connect.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Listening addresses: an IP address and port, or `localhost:PORT` (the loopback address).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Terminal connections.
    #[serde(deserialize_with = "address")]
    pub terminals: SocketAddr,
    /// Terminal connections over TLS (with `[tls]`), beside the plain listener.
    #[serde(
        default,
        deserialize_with = "optional_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub terminals_tls: Option<SocketAddr>,
    /// Metrics, health and the status page.
    #[serde(deserialize_with = "address")]
    pub metrics: SocketAddr,
    /// Serve `metrics` over TLS (HTTPS) with the `[tls]` certificate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metrics_tls: bool,
    /// The status page's password (user `status`, HTTP Basic). Needed when `metrics` is
    /// not a loopback address: without it the page is not served there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_password: Option<String>,
    /// Connections the kernel keeps waiting for the terminal listeners to accept (the
    /// `listen(2)` backlog; Linux caps it at `net.core.somaxconn`): thousands of terminals
    /// redialling after a network blip all get in.
    #[serde(default = "default_backlog")]
    pub backlog: u32,
}

fn default_backlog() -> u32 {
    4096
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            terminals: SocketAddr::from(([127, 0, 0, 1], 8583)),
            terminals_tls: None,
            metrics: SocketAddr::from(([127, 0, 0, 1], 9583)),
            metrics_tls: false,
            status_password: None,
            backlog: default_backlog(),
        }
    }
}

/// `IP:PORT`, or `localhost:PORT` for the IPv4 loopback address.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: the port must be a number up to 65535"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not an address: write IP:PORT or localhost:PORT"))
}

fn address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_address(&text).map_err(serde::de::Error::custom)
}

fn optional_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse_address(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl ListenConfig {
    /// Two listeners cannot share an address.
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        if !(16..=65_535).contains(&self.backlog) {
            return Err(super::invalid("listen.backlog", "must be 16 to 65535"));
        }
        let mut named = vec![
            ("listen.terminals", self.terminals),
            ("listen.metrics", self.metrics),
        ];
        if let Some(a) = self.terminals_tls {
            named.push(("listen.terminals_tls", a));
        }
        for (i, (name, a)) in named.iter().enumerate() {
            for (other, b) in &named[..i] {
                if a == b && a.port() != 0 {
                    return Err(super::invalid(
                        *name,
                        format!("the same address as {other} ({a})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_the_loopback_address() {
        assert_eq!(
            parse_address("localhost:8583").unwrap(),
            "127.0.0.1:8583".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:9583").unwrap(),
            "[::1]:9583".parse().unwrap()
        );
        assert!(parse_address("localhost:99999").is_err());
        assert!(parse_address("example.com:80").is_err());
    }
}
