//! Listeners and lifetimes: builds what the configuration describes ([`build`], the
//! composition root), binds the proxy and admin listeners, serves their connections (TLS,
//! limits: see `conn.rs`), swaps in a new configuration on reload, and drains both on shutdown.
//!
//! [`Gateway::bind`] does everything that can fail at start-up (so a bad config never starts
//! a half-working gateway); [`Gateway::run`] serves until the shutdown future completes, then
//! stops accepting and lets in-flight requests and streams finish within
//! `proxy.shutdown_timeout`. The shutdown future is an argument, so tests and the binary
//! decide what ends a run. [`Gateway::reloader`] gives the handle that applies a new
//! configuration (the binary calls it on SIGHUP); a configuration that cannot be built
//! changes nothing.

mod build;
mod conn;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use http::Uri;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use build::{build, check_config, client_tokens, Components};

use crate::config::{Config, ConfigError};
use crate::metrics::{Listener, Metrics};
use crate::store::{Store, TokenStore};
use crate::tls::{self, CertSlot};
use build::ProxyService;
use conn::{Acceptor, Limits, Swappable};

/// Why the gateway could not start, or a new configuration could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The config key that named it.
        key: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration cannot be served: the same one-line error `check-config` gives.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The listeners could not be set up.
    #[error("{0}")]
    Listener(String),
}

/// How often the store gauges are refreshed (SPEC 4: fresh to within 10 s).
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// A gateway whose listeners are bound, ready to [`run`](Gateway::run).
pub struct Gateway {
    shared: Arc<Shared>,
    proxy_listener: TcpListener,
    admin_listener: TcpListener,
    /// The TLS side of the proxy listener, when `proxy.tls_cert` is set.
    tls: Option<TlsAcceptor>,
    max_connections: u32,
    upstream: Uri,
}

/// What the listeners, the reloader and the drain share.
struct Shared {
    /// Built once at start-up; a reload keeps it.
    store: Store,
    /// Counted into by every part; a reload keeps it.
    metrics: Metrics,
    /// The current services and limits: a reload swaps them whole, requests load them per head.
    proxy: Swappable<ProxyService>,
    admin: Swappable<Router>,
    limits: Swappable<Limits>,
    /// The listener's certificate, when it speaks TLS.
    cert: Option<Arc<CertSlot>>,
    /// The configuration in effect; a reload compares against it and replaces it.
    running: Mutex<Config>,
}

impl Shared {
    /// The configuration in effect. A panic while it was held cannot leave it half-written
    /// (it is replaced whole), so a poisoned lock is still a good one.
    fn running(&self) -> std::sync::MutexGuard<'_, Config> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Gateway {
    /// Build what `config` describes ([`build`]) and bind both listeners. Must be called within
    /// a Tokio runtime (the store's sweeper starts on it).
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let metrics = Metrics::new();
        let built = build(&config, &metrics, None)?;
        let (cert, tls) = match built.identity {
            None => (None, None),
            Some(identity) => {
                let slot = CertSlot::new(identity);
                let server = tls::server_config(slot.clone())
                    .map_err(|e| ServerError::Listener(format!("proxy.tls_cert: {e}")))?;
                (Some(slot), Some(TlsAcceptor::from(server)))
            }
        };
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, key, source })
        };
        let proxy_listener = bind(config.proxy.listen, "proxy.listen").await?;
        let admin_listener = bind(config.admin.listen, "admin.listen").await?;
        // Validated to be at most 2^20.
        let max_connections = u32::try_from(config.proxy.max_connections).unwrap_or(u32::MAX);
        Ok(Gateway {
            shared: Arc::new(Shared {
                store: built.store,
                metrics,
                proxy: Arc::new(ArcSwap::from_pointee(built.proxy)),
                admin: Arc::new(ArcSwap::from_pointee(built.admin)),
                limits: Arc::new(ArcSwap::from_pointee(built.limits)),
                cert,
                running: Mutex::new(config),
            }),
            proxy_listener,
            admin_listener,
            tls,
            max_connections,
            upstream: built.upstream,
        })
    }

    /// Where the proxy listens.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_listener
            .local_addr()
            .unwrap_or_else(|_| self.running(|c| c.proxy.listen))
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .unwrap_or_else(|_| self.running(|c| c.admin.listen))
    }

    fn running<T>(&self, read: impl FnOnce(&Config) -> T) -> T {
        read(&self.shared.running())
    }

    /// The origin requests are forwarded to (at start-up).
    pub fn upstream(&self) -> &Uri {
        &self.upstream
    }

    /// The store, e.g. to seed a token (as `vidgate demo` does).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The metrics this gateway counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The handle that applies a new configuration to this gateway while it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
        }
    }

    /// Serve until `shutdown` completes, then drain: stop accepting (new connections are
    /// refused), let requests and streams in flight finish within `proxy.shutdown_timeout`,
    /// and return.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Gateway {
            shared,
            proxy_listener,
            admin_listener,
            tls,
            max_connections,
            upstream: _,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let refresher = tokio::spawn(refresh_gauges(shared.store.clone(), shared.metrics.clone()));
        tracing::info!(
            proxy = %proxy_listener.local_addr().map_err(|e| ServerError::Listener(e.to_string()))?,
            admin = %admin_listener.local_addr().map_err(|e| ServerError::Listener(e.to_string()))?,
            tls = tls.is_some(),
            "vidgate is serving"
        );
        let proxy = Acceptor {
            name: Listener::Proxy,
            listener: proxy_listener,
            tls,
            service: shared.proxy.clone(),
            limits: shared.limits.clone(),
            metrics: shared.metrics.clone(),
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
        };
        let admin = Acceptor {
            name: Listener::Admin,
            listener: admin_listener,
            tls: None,
            service: shared.admin.clone(),
            limits: shared.limits.clone(),
            metrics: shared.metrics.clone(),
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
        };
        let proxy = tokio::spawn(proxy.run(stop_rx.clone()));
        let admin = tokio::spawn(admin.run(stop_rx));

        shutdown.await;
        let shutdown_timeout = shared.running().proxy.shutdown_timeout.get();
        tracing::info!(
            timeout = ?shutdown_timeout,
            "shutting down: no new connections; draining requests and streams in flight"
        );
        let _ = stop_tx.send(true);
        let drained = async {
            // Each acceptor returns once its listener is closed, then its connections end.
            if let Ok(open) = proxy.await {
                open.closed().await;
            }
            if let Ok(open) = admin.await {
                open.closed().await;
            }
        };
        match tokio::time::timeout(shutdown_timeout, drained).await {
            Ok(()) => tracing::info!("drained: every connection finished"),
            Err(_) => tracing::warn!(
                timeout = ?shutdown_timeout,
                "shutdown_timeout passed with requests still in flight; closing them"
            ),
        }
        refresher.abort();
        Ok(())
    }
}

/// Applies a new configuration to a running [`Gateway`]: routes, client-token keys, the
/// origin and its TLS roots, timeouts, limits, CORS, cookies, the admin credentials and the
/// listener's certificate. Requests take the new configuration from their next head on;
/// connections and streams open now are not touched.
///
/// Some keys cannot change without a restart: the listen addresses, turning TLS on or off,
/// `proxy.max_connections`, `[store]`, `client_tokens.counter_ttl` and `[log]`. A new value
/// for one of them is logged and ignored; everything else is applied.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Load the configuration file at `path` (as `check-config` would) and apply it; or,
    /// when it cannot be loaded or built, keep the running one. Either way it is logged and
    /// counted in `vidgate_config_reloads_total`. On success, returns the keys whose change
    /// needs a restart (see [`Reloader::apply`]).
    pub fn reload_from(&self, path: &Path) -> Result<Vec<&'static str>, ServerError> {
        match Config::load(path) {
            Ok(config) => self.apply(config),
            Err(error) => Err(self.refused(error.into())),
        }
    }

    /// Apply `config`, which must be resolved (as [`Config::load`] does); or, when it cannot
    /// be built, keep the running one. Either way it is logged and counted. On success,
    /// returns the keys whose change needs a restart (and were left as they were).
    pub fn apply(&self, config: Config) -> Result<Vec<&'static str>, ServerError> {
        self.try_apply(config).map_err(|error| self.refused(error))
    }

    fn refused(&self, error: ServerError) -> ServerError {
        self.shared.metrics.reload(false);
        tracing::error!(%error, "configuration reload refused: the running configuration is kept");
        error
    }

    fn try_apply(&self, config: Config) -> Result<Vec<&'static str>, ServerError> {
        let shared = &self.shared;
        let mut running = shared.running();
        let built = build(&config, &shared.metrics, Some(&shared.store))?;
        let need_restart = restart_only_changes(&running, &config);
        // Everything is built: from here on nothing fails, so nothing is half-applied.
        if let (Some(slot), Some(identity)) = (&shared.cert, built.identity) {
            slot.replace(identity);
        }
        shared.proxy.store(Arc::new(built.proxy));
        shared.admin.store(Arc::new(built.admin));
        shared.limits.store(Arc::new(built.limits));
        *running = config;
        shared.metrics.reload(true);
        if need_restart.is_empty() {
            tracing::info!("configuration reloaded");
        } else {
            tracing::warn!(
                keys = %need_restart.join(", "),
                "configuration reloaded, except keys that need a restart: they keep their running values"
            );
        }
        Ok(need_restart)
    }
}

/// The keys that differ between `old` and `new` and that only a restart can change.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |changed: bool, key: &'static str| {
        if changed {
            keys.push(key);
        }
    };
    check(old.proxy.listen != new.proxy.listen, "proxy.listen");
    check(old.admin.listen != new.admin.listen, "admin.listen");
    check(
        old.proxy.tls_enabled() != new.proxy.tls_enabled(),
        "proxy.tls_cert",
    );
    check(
        old.proxy.max_connections != new.proxy.max_connections,
        "proxy.max_connections",
    );
    check(old.store != new.store, "store");
    check(
        old.client_tokens.counter_ttl != new.client_tokens.counter_ttl,
        "client_tokens.counter_ttl",
    );
    check(old.log != new.log, "log");
    keys
}

/// Keep the store gauges fresh.
async fn refresh_gauges(store: Store, metrics: Metrics) {
    let mut ticks = tokio::time::interval(GAUGE_REFRESH);
    loop {
        ticks.tick().await;
        match store.stats().await {
            Ok(stats) => metrics.store_stats(&stats),
            Err(error) => tracing::warn!(%error, "cannot read store counts for the gauges"),
        }
    }
}

#[cfg(test)]
mod tests;
