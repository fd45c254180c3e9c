//! `[journal]`: the system of record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// The journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// SQLite database file (one switch process owns it). Not used with `url`.
    pub path: PathBuf,
    /// PostgreSQL instead of SQLite: `postgres://user@host:port/dbname`. Several nodes, each
    /// with its own `node_id`, share the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connections that answer queries (PostgreSQL; SQLite has one).
    pub readers: usize,
    /// Most operations one commit (one fsync) covers.
    pub group_commit_max: usize,
    /// This node's number (1–99).
    pub node_id: u8,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./switch-data/journal.db"),
            url: None,
            readers: 4,
            group_commit_max: 512,
            node_id: 1,
        }
    }
}

impl JournalConfig {
    /// Where the journal is, for logs (never a password: the URL's is left out).
    pub fn place(&self) -> String {
        match &self.url {
            Some(url) => redact(url),
            None => self.path.display().to_string(),
        }
    }

    /// The node's name in the journal (`node-7`).
    pub fn node_name(&self) -> String {
        format!("node-{}", self.node_id)
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=99).contains(&self.node_id) {
            return Err(invalid("journal.node_id", "must be 1 to 99"));
        }
        if self.group_commit_max == 0 {
            return Err(invalid("journal.group_commit_max", "must be above 0"));
        }
        if !(1..=64).contains(&self.readers) {
            return Err(invalid("journal.readers", "must be 1 to 64"));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "journal.url",
                "must be postgres://user@host:port/dbname",
            ));
        }
        Ok(())
    }
}

/// `url` without the password between `:` and `@` of its authority.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact("postgres://switch:s3cret@db.example:5432/switch"),
            "postgres://switch:***@db.example:5432/switch"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres:***@127.0.0.1/test"
        );
        assert_eq!(
            redact("postgres://127.0.0.1/test"),
            "postgres://127.0.0.1/test"
        );
    }
}
