//! [`ConfigError`]: one line a person can act on, `file:line: key: problem`, and the wording of
//! the errors serde and toml report.

use std::path::{Path, PathBuf};

/// A configuration that cannot be used. Its `Display` is one line a person can act on:
/// `file:line: key: problem`, each part present when known.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    kind: ConfigErrorKind,
    pub(super) file: Option<PathBuf>,
    pub(super) line: Option<usize>,
    key: Option<String>,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

/// What went wrong, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The config file itself could not be read.
    Read,
    /// Not TOML, or a value of the wrong type or form, or an unknown key.
    Parse,
    /// Well-formed, but refused by [`Config::validate`](super::Config::validate), or found
    /// unusable when building what it configures (e.g. a key file that holds no key).
    Invalid,
    /// An environment variable or file the config names is missing or unusable.
    Resolve,
}

impl ConfigError {
    pub(super) fn new(kind: ConfigErrorKind, key: Option<String>, message: String) -> Self {
        ConfigError {
            kind,
            file: None,
            line: None,
            key,
            message,
            source: None,
        }
    }

    /// A value that is well-formed but unusable. Without a line until a
    /// [`Config`](super::Config) [locates](super::Config::locate) it.
    pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
        Self::new(
            ConfigErrorKind::Invalid,
            Some(key.to_owned()),
            message.into(),
        )
    }

    /// An environment variable or file named by `key` that cannot be used.
    pub(super) fn unresolved(key: &str, message: impl Into<String>) -> ConfigError {
        Self::new(
            ConfigErrorKind::Resolve,
            Some(key.to_owned()),
            message.into(),
        )
    }

    /// A file named by `key` that cannot be read.
    pub(super) fn unreadable_file(key: &str, path: &Path, error: std::io::Error) -> ConfigError {
        let message = format!("cannot read {}: {error}", path.display());
        ConfigError {
            source: Some(error),
            ..Self::unresolved(key, message)
        }
    }

    /// The config file itself cannot be read.
    pub(super) fn unreadable(path: &Path, error: std::io::Error) -> ConfigError {
        let message = format!("cannot read the config file: {error}");
        ConfigError {
            file: Some(path.to_owned()),
            source: Some(error),
            ..Self::new(ConfigErrorKind::Read, None, message)
        }
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The config file, when the configuration was loaded from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line at fault, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key at fault, e.g. `proxy.connect_timeout` or `client_tokens.jwt_keys[1].kid`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The problem, without the file, line and key.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = String::new();
        match (&self.file, self.line) {
            (Some(file), Some(line)) => out += &format!("{}:{line}: ", file.display()),
            (Some(file), None) => out += &format!("{}: ", file.display()),
            (None, Some(line)) => out += &format!("line {line}: "),
            (None, None) => {}
        }
        if let Some(key) = &self.key {
            out += key;
            out += ": ";
        }
        out += &self.message;
        out
    }
}

/// [`ConfigError::invalid`], for the sections' checks.
pub(super) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

/// The key and a one-line message for a toml or serde error at `path`.
pub(super) fn describe_toml_error(path: &str, message: &str) -> (Option<String>, String) {
    // serde_path_to_error writes "." for the root and "?" for segments it could not name.
    let path = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .collect::<Vec<_>>()
        .join(".");
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            // For an unknown key, the path already ends with it.
            path.clone()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let known = expected
                .trim_start_matches(", ")
                .trim_start_matches("expected one of ")
                .trim_start_matches("expected ")
                .replace('`', "");
            let message = if known.starts_with("there are no fields") || known.is_empty() {
                "unknown key".to_owned()
            } else {
                format!("unknown key (the keys here are: {known})")
            };
            return (Some(join(name)), message);
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((name, _)) = rest.split_once('`') {
            return (Some(join(name)), "is required".to_owned());
        }
    }
    let key = (!path.is_empty()).then_some(path.clone());
    // serde's words for TOML's arrays and tables.
    let message = one_line(message)
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    (key, message)
}

/// Error messages are one line; toml's syntax errors can span several.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
