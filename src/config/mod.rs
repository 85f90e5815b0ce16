//! The TOML configuration of SPEC 5, as data: serde structs with their defaults, the checks
//! that make a bad file fail before anything starts, and the reading of every secret and file
//! the config names.
//!
//! This module parses, validates and resolves; it builds nothing (no routes, verifiers, store,
//! TLS identity or origin client: `server::build` does that, once, from a `Config`).
//! Each struct's defaults live in its `impl Default` (and nowhere else), every struct refuses
//! unknown keys, and every error is one line naming the file, the line and the key at fault:
//!
//! ```text
//! config/vidgate.toml:12: proxy.connect_timeout: "5 parsecs" is not a duration (write e.g. "5s" or "250ms")
//! ```
//!
//! Three steps, so that tests need no files:
//! - [`Config::from_toml_str`] parses and [validates](Config::validate); it reads no file and no
//!   environment variable. Secrets written inline are usable at once.
//! - [`Config::resolve`] reads every environment variable and file the config names
//!   (`*_env` keys, PEM paths, `proxy.tls_cert` and `proxy.tls_key`) and keeps their contents,
//!   so that the server never reads them again.
//! - [`Config::load`] does all of it for a file.
//!
//! A config remembers where each of its keys was written ([`Config::error`]), so that whoever
//! later finds a value unusable (the composition root, parsing a key file) reports the same
//! `file:line: key` as a parse error would.
//!
//! Relative paths in the file are relative to the working directory, as is the `--config` path.
//!
//! ```
//! use vidgate::config::{Config, SameSite};
//!
//! let config = Config::from_toml_str(
//!     r#"
//!     [proxy]
//!     upstream = "https://videos.example.com"
//!     connect_timeout = "500ms"
//!     cookie_same_site = "none"
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(config.proxy.connect_timeout.get(), std::time::Duration::from_millis(500));
//! assert_eq!(config.proxy.cookie_same_site, SameSite::None);
//! assert!(config.proxy.upstream.unwrap().is_https());
//!
//! let err = Config::from_toml_str("[proxy]\nlisten = \"localhost\"\n").unwrap_err();
//! assert_eq!(err.line(), Some(2));
//! assert_eq!(err.key(), Some("proxy.listen"));
//! ```

mod admin;
mod client_tokens;
mod error;
mod lines;
mod log;
mod proxy;
mod resolve;
mod store;
mod values;

use std::path::Path;

use serde::Deserialize;

pub use admin::AdminConfig;
pub use client_tokens::{ClientTokensConfig, JwtAlg, JwtKey, ZiggeoConfig};
pub use error::{ConfigError, ConfigErrorKind};
pub use log::{LogConfig, LogFormat};
pub use proxy::{CorsConfig, ProxyConfig};
pub use store::{StoreBackend, StoreConfig};
pub use values::{HumanDuration, Secret, UpstreamUrl};

/// `proxy.cookie_same_site` (`"lax"` or `"none"`): the session cookie's own type, read from the
/// file.
pub use crate::credentials::SameSite;

use error::{describe_toml_error, line_at};
use lines::Provenance;

/// The whole configuration file. Every section and key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[proxy]`: the gateway's listener and its origin.
    pub proxy: ProxyConfig,
    /// `[admin]`: the admin API.
    pub admin: AdminConfig,
    /// `[store]`: where tokens, sessions and counters live.
    pub store: StoreConfig,
    /// `[client_tokens]`: offline-verified JWT and Ziggeo-format tokens.
    pub client_tokens: ClientTokensConfig,
    /// `[log]`: log output.
    pub log: LogConfig,
    /// Where each key was written, to locate errors found after parsing.
    #[serde(skip)]
    provenance: Provenance,
}

impl Config {
    /// Parse and [validate](Self::validate) a configuration. Reads no file and no environment
    /// variable: keys that name one are checked for form only, and read by
    /// [`Config::resolve`]. Errors carry the line and the key, but no file name.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::parse_and_validate(text, None)
    }

    /// Read, parse, validate and [resolve](Self::resolve) the configuration file at `path`.
    /// Errors name the file, the line and the key. `vidgate serve` and `vidgate check-config`
    /// then give it to `server::build`, which builds what it configures.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable(path, e))?;
        let mut config = Self::parse_and_validate(&text, Some(path))?;
        config.resolve().map_err(|e| config.locate(e))?;
        Ok(config)
    }

    fn parse_and_validate(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
        let provenance = Provenance::of(text, file);
        let mut config = parse(text).map_err(|e| provenance.locate(e))?;
        config.provenance = provenance;
        config.validate().map_err(|e| config.locate(e))?;
        Ok(config)
    }

    /// Check everything that can be checked without reading a file or the environment, and
    /// return the first problem, in the order of the keys in SPEC 5. The error names the key;
    /// it carries a line only when it comes through [`Config::from_toml_str`] or
    /// [`Config::load`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.proxy.validate()?;
        self.admin.validate(&self.proxy)?;
        self.store.validate()?;
        self.client_tokens.validate()?;
        Ok(())
    }

    /// The admin API's secret (see [`AdminConfig::resolved_private_key`]).
    pub fn admin_key(&self) -> Option<&str> {
        self.admin.resolved_private_key()
    }

    /// An error about the value of `key`, located where the file (if any) wrote it: for
    /// problems found after loading, such as a key file that does not hold a key of the
    /// configured algorithm.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.locate(ConfigError::invalid(key, message))
    }

    /// `error` with the file and, when it has none yet, the line its key was written on.
    pub fn locate(&self, error: ConfigError) -> ConfigError {
        self.provenance.locate(error)
    }
}

/// Deserialize, keeping the path of the value at fault.
fn parse(text: &str) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (key, message) = describe_toml_error(&path, inner.message());
        let mut error = ConfigError::new(ConfigErrorKind::Parse, key, message);
        error.line = inner.span().map(|span| line_at(text, span.start));
        error
    })
}

#[cfg(test)]
mod tests;
