//! `[admin]`: the admin API's listener and credentials.

use std::net::SocketAddr;

use serde::Deserialize;

use super::error::invalid;
use super::resolve::read_env;
use super::values::{de_byte_count, de_socket_addr, env_name, Secret};
use super::{ConfigError, ProxyConfig};
/// `[admin]`: the admin API's listener and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `listen`: the admin API's address (default `127.0.0.1:9090`), never the proxy's.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `app_token`: the application token; when set, `{app}` in a prefix must equal it and
    /// HTTP Basic authentication uses it as the user name.
    pub app_token: Option<String>,
    /// `private_key`: the admin API's secret, written inline.
    pub private_key: Option<Secret>,
    /// `private_key_env`: the environment variable holding the secret instead.
    pub private_key_env: Option<String>,
    /// `max_body`: the largest request body the admin API reads, in bytes (default 1 MiB).
    #[serde(deserialize_with = "de_byte_count")]
    pub max_body: usize,
    /// The value of `private_key_env`, read by [`Config::resolve`](super::Config::resolve).
    #[serde(skip)]
    resolved_private_key: Option<Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            app_token: None,
            private_key: None,
            private_key_env: None,
            max_body: 1024 * 1024,
            resolved_private_key: None,
        }
    }
}

impl AdminConfig {
    /// The admin secret: `private_key`, or the value of `private_key_env` once
    /// [`Config::resolve`](super::Config::resolve) has read it. `None` when neither is configured (or not yet read);
    /// the server decides whether it can run without one.
    pub fn resolved_private_key(&self) -> Option<&str> {
        self.private_key
            .as_ref()
            .or(self.resolved_private_key.as_ref())
            .map(Secret::expose)
    }

    /// Read `private_key_env`.
    pub(super) fn resolve(&mut self) -> Result<(), ConfigError> {
        if let Some(var) = &self.private_key_env {
            self.resolved_private_key = Some(read_env("admin.private_key_env", var)?);
        }
        Ok(())
    }
}

impl AdminConfig {
    pub(super) fn validate(&self, proxy: &ProxyConfig) -> Result<(), ConfigError> {
        if self.listen == proxy.listen && self.listen.port() != 0 {
            return Err(invalid(
                "admin.listen",
                format!(
                    "{} is also proxy.listen: the admin API needs its own listener",
                    self.listen
                ),
            ));
        }
        if let Some(app) = &self.app_token {
            if app.is_empty() {
                return Err(invalid("admin.app_token", "must not be empty"));
            }
            if !app
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"/?#%\\;".contains(&b))
            {
                return Err(invalid(
                    "admin.app_token",
                    "must be visible ASCII without / ? # % \\ ; (it is matched as a path segment)",
                ));
            }
        }
        if self.private_key.is_some() && self.private_key_env.is_some() {
            return Err(invalid(
                "admin.private_key_env",
                "give admin.private_key or admin.private_key_env, not both",
            ));
        }
        if self
            .private_key
            .as_ref()
            .is_some_and(|k| k.expose().is_empty())
        {
            return Err(invalid("admin.private_key", "must not be empty"));
        }
        env_name("admin.private_key_env", self.private_key_env.as_deref())?;
        if self.max_body == 0 {
            return Err(invalid("admin.max_body", "must be more than zero"));
        }
        Ok(())
    }
}
