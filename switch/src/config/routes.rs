//! `[[routes]]`: where a BIN goes, longest prefix first.

use serde::{Deserialize, Serialize};

use super::{ConfigError, IssuerConfig, invalid};
use crate::model::{CardType, PinMethod};

/// A route's `route` for cards authorised here.
pub const ON_US: &str = "on-us";

/// Where a BIN goes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinRouteConfig {
    /// BIN prefix (digits).
    pub prefix: String,
    /// `on-us` (authorised here) or the name of an `[[issuers]]` entry.
    pub route: String,
    /// `debit` or `credit`.
    pub card_type: CardType,
    /// How on-us PINs of this range are verified.
    #[serde(default)]
    pub pin_method: PinMethod,
}

impl BinRouteConfig {
    /// Whether cards of this range are authorised here.
    pub fn is_on_us(&self) -> bool {
        self.route == ON_US
    }
}

/// Checks every route against the issuers configured.
pub(super) fn validate(
    routes: &[BinRouteConfig],
    issuers: &[IssuerConfig],
) -> Result<(), ConfigError> {
    for (i, r) in routes.iter().enumerate() {
        if r.prefix.is_empty()
            || r.prefix.len() > 11
            || !r.prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(
                format!("routes[{i}].prefix"),
                "must be 1 to 11 digits",
            ));
        }
        if let Some(j) = routes[..i].iter().position(|o| o.prefix == r.prefix) {
            return Err(invalid(
                format!("routes[{i}].prefix"),
                format!("the same prefix as routes[{j}]: which one routes is unclear"),
            ));
        }
        if !r.is_on_us() && r.pin_method != PinMethod::default() {
            return Err(invalid(
                format!("routes[{i}].pin_method"),
                "only on-us ranges verify PINs here (a remote issuer checks its own)",
            ));
        }
        if !r.is_on_us() && !issuers.iter().any(|iss| iss.name == r.route) {
            return Err(invalid(
                format!("routes[{i}].route"),
                "must be \"on-us\" or the name of an [[issuers]] entry",
            ));
        }
    }
    Ok(())
}

/// The PIN method of the on-us range `pan` falls in (longest prefix), the default when
/// none does.
pub(super) fn pin_method_of(routes: &[BinRouteConfig], pan: &str) -> PinMethod {
    routes
        .iter()
        .filter(|r| r.is_on_us() && pan.starts_with(r.prefix.as_str()))
        .max_by_key(|r| r.prefix.len())
        .map_or_else(PinMethod::default, |r| r.pin_method)
}
