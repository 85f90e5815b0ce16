//! `[log]`: how vidgate writes its logs (always to stderr).

use serde::Deserialize;
/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `format`: `"text"` (default) or `"json"`.
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `"text"` (the default): human-readable lines.
    #[default]
    Text,
    /// `"json"`: one JSON object per line.
    Json,
}
