//! `[store]`: where tokens, sessions and counters live.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::invalid;
use super::values::{nonzero, HumanDuration};
use super::ConfigError;
/// `[store]`: the token store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `backend`: `"memory"` (default) or `"redis"` (not available in this build yet).
    pub backend: StoreBackend,
    /// `redis_url`: the Redis server (default `redis://127.0.0.1:6379`).
    pub redis_url: String,
    /// `key_prefix`: the prefix of every Redis key (default `vidgate:`).
    pub key_prefix: String,
    /// `sweep_interval`: how often expired entries are swept (default 1 s).
    pub sweep_interval: HumanDuration,
    /// `expired_retention`: how long expired tokens and ended sessions stay readable
    /// (default 24 h).
    pub expired_retention: HumanDuration,
    /// `snapshot_path`: memory backend: where to keep a snapshot for durability (default none).
    pub snapshot_path: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "vidgate:".to_owned(),
            sweep_interval: HumanDuration::from_secs(1),
            expired_retention: HumanDuration::from_secs(24 * 3600),
            snapshot_path: None,
        }
    }
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// `"memory"` (the default): single process, in memory.
    #[default]
    Memory,
    /// `"redis"`: shared by several instances. Refused by [`Config::validate`](super::Config::validate) for now.
    Redis,
}

impl StoreConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == StoreBackend::Redis {
            return Err(invalid(
                "store.backend",
                "the redis backend is not available in this build yet (use \"memory\")",
            ));
        }
        const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !SCHEMES.iter().any(|s| self.redis_url.starts_with(s))
            || SCHEMES.contains(&self.redis_url.as_str())
        {
            return Err(invalid(
                "store.redis_url",
                format!(
                    "{:?} is not a Redis URL (write e.g. \"redis://127.0.0.1:6379\")",
                    self.redis_url
                ),
            ));
        }
        nonzero("store.sweep_interval", self.sweep_interval)?;
        if self
            .snapshot_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid("store.snapshot_path", "must not be empty"));
        }
        Ok(())
    }
}
