//! Resolving: reading the environment variables and files a configuration names, once, at load
//! time, so that nothing reads them again while requests are served.
//!
//! Each section resolves its own keys (`ProxyConfig::resolve` and the like); this file holds
//! what they share: reading a variable, reading a PEM file, and the shape check of PEM text.

use std::path::Path;

use super::{Config, ConfigError, Secret};

impl Config {
    /// Read every environment variable and file the configuration names (`*_env` keys,
    /// `public_key_pem` and `private_key_pem` paths, `proxy.tls_cert`, `proxy.tls_key` and
    /// `proxy.upstream_ca`) and keep their contents, available through the `resolved_*`
    /// accessors; a missing variable or an unreadable file is an error naming the key.
    /// [`Config::load`] calls it.
    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        self.proxy.resolve()?;
        self.admin.resolve()?;
        self.client_tokens.resolve()?;
        Ok(())
    }
}

/// The value of environment variable `var`, named by config key `key`.
pub(super) fn read_env(key: &str, var: &str) -> Result<Secret, ConfigError> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(ConfigError::unresolved(
            key,
            format!("environment variable {var} is empty"),
        )),
        Ok(value) => Ok(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => Err(ConfigError::unresolved(
            key,
            format!("environment variable {var} is not set"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::unresolved(
            key,
            format!("environment variable {var} is not valid UTF-8"),
        )),
    }
}

/// The text of the PEM file at `path`, named by config key `key`, checked to hold a PEM block
/// whose label contains `label`.
pub(super) fn read_pem_file(key: &str, path: &Path, label: &str) -> Result<String, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable_file(key, path, e))?;
    check_pem(&text, label).map_err(|problem| {
        ConfigError::unresolved(key, format!("{}: {problem}", path.display()))
    })?;
    Ok(text)
}

/// Whether a PEM-or-path value is the PEM text itself.
pub(super) fn is_inline_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

/// Check that `text` looks like a PEM block whose label contains `label`; the parsing proper
/// is the job of the crate that uses the key.
pub(super) fn check_pem(text: &str, label: &str) -> Result<(), String> {
    let Some(first) = text.trim_start().lines().next() else {
        return Err(format!("is empty, expected a PEM {label}"));
    };
    let found = first
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"));
    match found {
        Some(found) if found.contains(label) => match text.contains("-----END ") {
            true => Ok(()),
            false => Err(format!("holds a PEM {found} with no -----END line")),
        },
        Some(found) => Err(format!("holds a PEM {found}, expected a {label}")),
        None => Err(format!(
            "is not PEM text (expected -----BEGIN ...{label}-----)"
        )),
    }
}
