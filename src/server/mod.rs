//! Listeners and lifetimes: binds the proxy and admin listeners, builds the stack of layers
//! for each connection, and drains both on shutdown.
//!
//! [`Gateway::bind`] does everything that can fail at start-up (so a bad config never starts
//! a half-working gateway); [`Gateway::run`] serves until the shutdown future completes, then
//! stops accepting and lets in-flight requests finish within `proxy.shutdown_timeout`. The
//! shutdown future is an argument, so tests and the binary decide what ends a run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;

use crate::admin::{self, AdminAuth, AdminState};
use crate::client_token::ClientTokens;
use crate::config::Config;
use crate::demo::DemoOrigin;
use crate::layer::VidgateLayer;
use crate::metrics::Metrics;
use crate::proxy::{ClientConn, Upstream, UpstreamConfig};
use crate::route::Routes;
use crate::store::{MemoryStore, TokenStore};

/// Why the gateway could not start.
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
    /// The configuration cannot be served (e.g. a feature this build lacks).
    #[error("{0}")]
    Config(String),
    /// The built-in demo origin could not start.
    #[error("cannot start the built-in demo origin: {0}")]
    Demo(std::io::Error),
}

/// How often the store gauges are refreshed (SPEC 4: fresh to within 10 s).
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// A gateway whose listeners are bound, ready to [`run`](Gateway::run).
pub struct Gateway {
    config: Config,
    store: Arc<MemoryStore>,
    metrics: Metrics,
    proxy_listener: TcpListener,
    admin_listener: TcpListener,
    routes: Routes,
    client_tokens: ClientTokens,
    upstream: Uri,
    demo: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Build the store, start the demo origin when no upstream is configured, and bind both
    /// listeners. Must be called within a Tokio runtime.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        // Config::load refuses these already; a config built in code gets the same answer.
        let invalid = |e: crate::config::ConfigError| ServerError::Config(e.to_string());
        config.refuse_unavailable().map_err(invalid)?;
        // Built now, so that a config whose keys were never read (built in code without
        // Config::resolve) is refused here rather than after the listeners report ready.
        let routes = config.routes().map_err(invalid)?;
        let client_tokens = config.client_token_verifiers().map_err(invalid)?;
        let store = Arc::new(config.memory_store_builder().build());
        let (upstream, demo) = match &config.proxy.upstream {
            Some(url) => (url.uri().clone(), None),
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
                    .map_err(|e| ServerError::Config(e.to_string()))?;
                (uri, Some(task))
            }
        };
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, key, source })
        };
        let proxy_listener = bind(config.proxy.listen, "proxy.listen").await?;
        let admin_listener = bind(config.admin.listen, "admin.listen").await?;
        Ok(Gateway {
            config,
            routes,
            client_tokens,
            store,
            metrics: Metrics::new(),
            proxy_listener,
            admin_listener,
            upstream,
            demo,
        })
    }

    /// Where the proxy listens.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_listener
            .local_addr()
            .unwrap_or(self.config.proxy.listen)
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .unwrap_or(self.config.admin.listen)
    }

    /// The origin requests are forwarded to.
    pub fn upstream(&self) -> &Uri {
        &self.upstream
    }

    /// The store, e.g. to seed a token (as `vidgate demo` does).
    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }

    /// The metrics this gateway counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serve until `shutdown` completes, then drain.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Gateway {
            config,
            routes,
            client_tokens,
            store,
            metrics,
            proxy_listener,
            admin_listener,
            upstream,
            demo,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        // The proxy's stack, outermost first.
        let mut vidgate = VidgateLayer::new(store.clone())
            .routes(routes)
            .client_tokens(client_tokens)
            .metrics(metrics.clone())
            .bearer_auth(config.proxy.bearer_auth)
            .same_site(config.proxy.cookie_same_site);
        if let Some(cors) = &config.proxy.cors {
            vidgate = vidgate.cors(crate::layer::Cors::new(cors));
        }
        let forward = Upstream::try_new(
            UpstreamConfig {
                uri: upstream,
                connect_timeout: config.proxy.connect_timeout.get(),
                response_timeout: config.proxy.response_timeout.get(),
            },
            metrics.clone(),
        )
        .map_err(|e| ServerError::Config(e.to_string()))?;

        let admin_auth = config
            .admin_key()
            .map(|key| AdminAuth::new(config.admin.app_token.clone(), key.to_owned()));
        if admin_auth.is_none() {
            tracing::warn!(
                "admin.private_key is not set: the admin API refuses every authenticated request"
            );
        }
        let admin_router = admin::router(AdminState {
            store: store.clone(),
            metrics: metrics.clone(),
            auth: admin_auth,
        });

        let refresher = tokio::spawn(refresh_gauges(store.clone(), metrics.clone()));
        let shutdown_timeout = config.proxy.shutdown_timeout.get();
        tracing::info!(
            proxy = %proxy_listener.local_addr().map_err(|e| ServerError::Config(e.to_string()))?,
            admin = %admin_listener.local_addr().map_err(|e| ServerError::Config(e.to_string()))?,
            "vidgate is serving"
        );

        let mut admin_stop = stop_rx.clone();
        let admin = tokio::spawn(async move {
            let served = axum::serve(admin_listener, admin_router)
                .with_graceful_shutdown(async move {
                    let _ = admin_stop.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "admin listener failed");
            }
        });

        let mut stop = stop_rx;
        let graceful = GracefulShutdown::new();
        // HTTP/1.1 only on the plain listener: detecting cleartext HTTP/2 (auto::Builder)
        // cost 14% more CPU per request in bench/load.sh, and players speak HTTP/2 over TLS,
        // where ALPN chooses the protocol.
        // No `pipeline_flush`: in hyper 1 it lifts the 400 KiB cap on the write buffer, so a
        // slow client made vidgate read the whole video from the origin into memory
        // (bench/stream.sh: 2.5 GiB RSS for one viewer at 20 MB/s, over 4 GiB for four).
        let connections = hyper::server::conn::http1::Builder::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = proxy_listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                // Awaited inside a block so no watch guard is held across the select: the
                // future stays Send, and the gateway can be spawned.
                _ = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
            };
            let _ = stream.set_nodelay(true);
            let service = ServiceBuilder::new()
                // Who is on the other end, for X-Forwarded-For.
                .map_request(move |mut request: Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ClientConn { peer, tls: false });
                    request
                })
                // vidgate's checks: route, token, session, grant.
                .layer(vidgate.clone())
                // Forwarding what was allowed to the origin.
                .service(forward.clone());
            let connection = connections
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "client connection ended with an error");
                }
            });
        }

        drop(proxy_listener);
        tracing::info!(timeout = ?shutdown_timeout, "shutting down: draining in-flight requests");
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("drained"),
            _ = tokio::time::sleep(shutdown_timeout) => {
                tracing::warn!("shutdown_timeout passed with requests still in flight; closing them");
            }
        }
        let _ = tokio::time::timeout(shutdown_timeout, admin).await;
        refresher.abort();
        if let Some(demo) = demo {
            demo.abort();
        }
        Ok(())
    }
}

/// Keep the store gauges and sweep counters fresh.
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
