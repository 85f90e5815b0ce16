//! Listeners and lifetimes: binds the proxy and admin listeners, serves their connections
//! (TLS, limits: see [`conn`]), swaps in a new configuration on reload, and drains both on
//! shutdown.
//!
//! [`Gateway::bind`] does everything that can fail at start-up (so a bad config never starts
//! a half-working gateway); [`Gateway::run`] serves until the shutdown future completes, then
//! stops accepting and lets in-flight requests and streams finish within
//! `proxy.shutdown_timeout`. The shutdown future is an argument, so tests and the binary
//! decide what ends a run. [`Gateway::reloader`] gives the handle that applies a new
//! configuration (the binary calls it on SIGHUP); a configuration that cannot be built
//! changes nothing.

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

use crate::admin::{self, AdminAuth, AdminState};
use crate::config::{Config, ConfigError};
use crate::demo::DemoOrigin;
use crate::layer::{Vidgate, VidgateLayer};
use crate::metrics::{Listener, Metrics, SweepKind};
use crate::proxy::{Upstream, UpstreamConfig};
use crate::store::{MemoryStore, TokenStore};
use crate::tls::{self, CertSlot, Identity};
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
    /// The configuration cannot be served.
    #[error("{0}")]
    Config(String),
    /// The built-in demo origin could not start.
    #[error("cannot start the built-in demo origin: {0}")]
    Demo(std::io::Error),
}

impl From<ConfigError> for ServerError {
    fn from(error: ConfigError) -> Self {
        ServerError::Config(error.to_string())
    }
}

/// How often the store gauges are refreshed (SPEC 4: fresh to within 10 s).
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// The proxy's service: vidgate's checks in front of the forwarding to the origin.
type ProxyService = Vidgate<Upstream, MemoryStore>;

/// A gateway whose listeners are bound, ready to [`run`](Gateway::run).
pub struct Gateway {
    shared: Arc<Shared>,
    proxy_listener: TcpListener,
    admin_listener: TcpListener,
    /// The TLS side of the proxy listener, when `proxy.tls_cert` is set.
    tls: Option<TlsAcceptor>,
    max_connections: u32,
    upstream: Uri,
    demo: Option<tokio::task::JoinHandle<()>>,
}

/// What the listeners, the reloader and the drain share.
struct Shared {
    store: Arc<MemoryStore>,
    metrics: Metrics,
    /// The built-in demo origin, when `proxy.upstream` was absent at start-up.
    demo_upstream: Option<Uri>,
    proxy: Swappable<ProxyService>,
    admin: Swappable<Router>,
    limits: Swappable<Limits>,
    /// The listener's certificate, when it speaks TLS.
    cert: Option<Arc<CertSlot>>,
    /// The configuration in effect; a reload compares against it and replaces it.
    running: Mutex<Config>,
}

/// Everything a configuration builds that a reload can replace.
struct Built {
    /// The origin requests go to.
    upstream: Uri,
    proxy: ProxyService,
    admin: Router,
    limits: Limits,
    identity: Option<Identity>,
}

impl Shared {
    /// The configuration in effect. A panic while it was held cannot leave it half-written
    /// (it is replaced whole), so a poisoned lock is still a good one.
    fn running(&self) -> std::sync::MutexGuard<'_, Config> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Build every reloadable part of `config`, or say why it cannot be served.
    fn build(
        config: &Config,
        store: &Arc<MemoryStore>,
        metrics: &Metrics,
        demo_upstream: Option<&Uri>,
    ) -> Result<Built, ServerError> {
        // Config::load built these already; a config built in code gets the same checks.
        let routes = config.routes()?;
        let client_tokens = config.client_token_verifiers()?;
        let identity = config.tls_identity()?;
        let roots = config.origin_roots_if_pinned()?;
        let uri = match (&config.proxy.upstream, demo_upstream) {
            (Some(url), _) => url.uri().clone(),
            (None, Some(demo)) => demo.clone(),
            (None, None) => {
                return Err(ServerError::Config(
                    "proxy.upstream: cannot be removed by a reload (the built-in demo origin \
                     starts only at start-up); restart vidgate to use it"
                        .into(),
                ))
            }
        };
        let forward = Upstream::try_new(
            UpstreamConfig {
                uri: uri.clone(),
                connect_timeout: config.proxy.connect_timeout.get(),
                response_timeout: config.proxy.response_timeout.get(),
                roots,
                http2: config.proxy.upstream_http2,
            },
            metrics.clone(),
        )
        .map_err(|e| ServerError::Config(e.to_string()))?;
        let mut vidgate = VidgateLayer::new(store.clone())
            .routes(routes)
            .client_tokens(client_tokens)
            .metrics(metrics.clone())
            .bearer_auth(config.proxy.bearer_auth)
            .same_site(config.proxy.cookie_same_site)
            .tls(config.proxy.tls_enabled());
        if let Some(cors) = &config.proxy.cors {
            vidgate = vidgate.cors(crate::layer::Cors::new(cors));
        }
        let admin_auth = config
            .admin_key()
            .map(|key| AdminAuth::new(config.admin.app_token.clone(), key.to_owned()));
        if admin_auth.is_none() {
            tracing::warn!(
                "admin.private_key is not set: the admin API refuses every authenticated request"
            );
        }
        let admin = admin::router(AdminState {
            store: store.clone(),
            metrics: metrics.clone(),
            auth: admin_auth,
            max_body: config.admin.max_body,
        });
        Ok(Built {
            upstream: uri,
            proxy: tower::Layer::layer(&vidgate, forward),
            admin,
            limits: Limits::of(&config.proxy),
            identity,
        })
    }
}

impl Gateway {
    /// Build the store, start the demo origin when no upstream is configured, and bind both
    /// listeners. Must be called within a Tokio runtime.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let metrics = Metrics::new();
        let swept_into = metrics.clone();
        let store = Arc::new(
            config
                .memory_store_builder()
                .on_sweep(move |swept| {
                    swept_into.swept(SweepKind::Token, swept.tokens);
                    swept_into.swept(SweepKind::Session, swept.sessions);
                })
                .build(),
        );
        let demo = match &config.proxy.upstream {
            Some(_) => None,
            None => {
                let (addr, task) = DemoOrigin::with_samples()
                    .spawn()
                    .await
                    .map_err(ServerError::Demo)?;
                tracing::info!(%addr, "no proxy.upstream configured: serving the built-in demo origin");
                let uri = Uri::builder()
                    .scheme("http")
                    .authority(addr.to_string())
                    .path_and_query("/")
                    .build()
                    .map_err(|e| ServerError::Config(e.to_string()));
                match uri {
                    Ok(uri) => Some((uri, task)),
                    Err(error) => {
                        task.abort();
                        return Err(error);
                    }
                }
            }
        };
        let (demo_upstream, demo) = demo.unzip();
        let gateway = Self::bind_with(config, store, metrics, demo_upstream).await;
        match gateway {
            Ok(mut gateway) => {
                gateway.demo = demo;
                Ok(gateway)
            }
            Err(error) => {
                if let Some(demo) = demo {
                    demo.abort();
                }
                Err(error)
            }
        }
    }

    async fn bind_with(
        config: Config,
        store: Arc<MemoryStore>,
        metrics: Metrics,
        demo_upstream: Option<Uri>,
    ) -> Result<Self, ServerError> {
        let built = Shared::build(&config, &store, &metrics, demo_upstream.as_ref())?;
        let (cert, tls) = match built.identity {
            None => (None, None),
            Some(identity) => {
                let slot = CertSlot::new(identity);
                let server = tls::server_config(slot.clone())
                    .map_err(|e| ServerError::Config(format!("proxy.tls_cert: {e}")))?;
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
                store,
                metrics,
                demo_upstream,
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
            demo: None,
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
    pub fn store(&self) -> &Arc<MemoryStore> {
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
            demo,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let refresher = tokio::spawn(refresh_gauges(shared.store.clone(), shared.metrics.clone()));
        tracing::info!(
            proxy = %proxy_listener.local_addr().map_err(|e| ServerError::Config(e.to_string()))?,
            admin = %admin_listener.local_addr().map_err(|e| ServerError::Config(e.to_string()))?,
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
        if let Some(demo) = demo {
            demo.abort();
        }
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
        let built = Shared::build(
            &config,
            &shared.store,
            &shared.metrics,
            shared.demo_upstream.as_ref(),
        )?;
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
async fn refresh_gauges<St: TokenStore>(store: Arc<St>, metrics: Metrics) {
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
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_changes_that_need_a_restart_and_only_those() {
        let old = Config::from_toml_str("[proxy]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
        let same_but_reloadable = Config::from_toml_str(
            "[proxy]\nlisten = \"127.0.0.1:8080\"\nresponse_timeout = \"5s\"\nidle_timeout = \"9s\"\n\
             [client_tokens]\nleeway = \"1s\"\n",
        )
        .unwrap();
        assert!(restart_only_changes(&old, &same_but_reloadable).is_empty());
        let moved = Config::from_toml_str(
            "[proxy]\nlisten = \"127.0.0.1:8081\"\nmax_connections = 5\n\
             [store]\nsweep_interval = \"2s\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        assert_eq!(
            restart_only_changes(&old, &moved),
            ["proxy.listen", "proxy.max_connections", "store", "log"]
        );
    }
}
