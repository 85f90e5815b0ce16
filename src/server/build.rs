//! The composition root: the one place where a [`Config`] becomes running parts. [`build`] makes
//! the routes, the client-token verifiers, the store, the TLS identity, the origin client, the
//! proxy's service and the admin API, once; `serve` calls it at start-up, a reload calls it again
//! keeping the running store, and `check-config` calls it to refuse what `serve` would.
//!
//! It is also the one place that names a concrete store: a backend is one arm of
//! [`build_store`].

use std::path::Path;

use axum::Router;
use http::Uri;

use super::conn::Limits;
use crate::admin::{self, AdminAuth, AdminState};
use crate::client_token::ClientTokens;
use crate::config::{Config, ConfigError, StoreBackend};
use crate::layer::{Cors, Vidgate, VidgateLayer};
use crate::metrics::{Metrics, SweepKind};
use crate::proxy::{Upstream, UpstreamConfig, UpstreamConfigError};
use crate::route::Routes;
use crate::store::{MemoryStore, Store, Swept};
use crate::tls::{Identity, IdentityError, OriginRoots};

/// The proxy's service: vidgate's checks in front of the forwarding to the origin.
pub(super) type ProxyService = Vidgate<Upstream, Store>;

/// Everything a configuration builds.
pub struct Components {
    /// The store: the running one on a reload, else a new one.
    pub(super) store: Store,
    /// The origin requests go to.
    pub(super) upstream: Uri,
    pub(super) proxy: ProxyService,
    pub(super) admin: Router,
    pub(super) limits: Limits,
    /// The listener's certificate, when it speaks TLS.
    pub(super) identity: Option<Identity>,
}

impl Components {
    /// The store requests and the admin API use.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The origin requests are forwarded to.
    pub fn upstream(&self) -> &Uri {
        &self.upstream
    }

    /// Whether the proxy's listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.identity.is_some()
    }
}

impl std::fmt::Debug for Components {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("upstream", &self.upstream)
            .field("tls", &self.tls())
            .finish_non_exhaustive()
    }
}

/// Build what `config` configures, counting into `metrics`. `running` is the store to keep (a
/// reload); without it, a new one is built from `[store]`. `config` must be resolved
/// ([`Config::load`] does it). Every error names the file, line and key at fault.
pub fn build(
    config: &Config,
    metrics: &Metrics,
    running: Option<&Store>,
) -> Result<Components, ConfigError> {
    let Some(upstream) = &config.proxy.upstream else {
        return Err(config.error(
            "proxy.upstream",
            "is required: the video origin to forward requests to, e.g. \
             upstream = \"http://127.0.0.1:9000\" (to try vidgate without one, run `vidgate demo`)",
        ));
    };
    let routes = Routes::new(
        &config.proxy.prefixes,
        config.admin.app_token.as_deref(),
        config.proxy.unmatched,
    )
    .map_err(|e| config.error("proxy.prefixes", e.to_string()))?;
    let client_tokens = client_tokens(config)?;
    let identity = tls_identity(config)?;
    let forward = Upstream::try_new(
        UpstreamConfig {
            uri: upstream.uri().clone(),
            connect_timeout: config.proxy.connect_timeout.get(),
            response_timeout: config.proxy.response_timeout.get(),
            roots: origin_roots(config)?,
            http2: config.proxy.upstream_http2,
        },
        metrics.clone(),
    )
    .map_err(|e| match e {
        UpstreamConfigError::Uri(problem) => config.error("proxy.upstream", problem),
        UpstreamConfigError::ZeroTimeout(key) => config.error(key, "must be more than zero"),
    })?;
    let store = match running {
        Some(store) => store.clone(),
        None => build_store(config, metrics)?,
    };

    let mut layer = VidgateLayer::new(std::sync::Arc::new(store.clone()))
        .routes(routes)
        .client_tokens(client_tokens)
        .metrics(metrics.clone())
        .bearer_auth(config.proxy.bearer_auth)
        .same_site(config.proxy.cookie_same_site)
        .tls(config.proxy.tls_enabled());
    if let Some(cors) = &config.proxy.cors {
        layer = layer.cors(Cors::new(cors));
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
        store: std::sync::Arc::new(store.clone()),
        metrics: metrics.clone(),
        auth: admin_auth,
        max_body: config.admin.max_body,
    });
    Ok(Components {
        store,
        upstream: upstream.uri().clone(),
        proxy: tower::Layer::layer(&layer, forward),
        admin,
        limits: Limits::of(&config.proxy),
        identity,
    })
}

/// What `vidgate check-config` does: load the file at `path` and build everything it
/// configures (binding and serving nothing), so that it refuses exactly what `serve` would.
pub fn check_config(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    build(&config, &Metrics::new(), None)?;
    Ok(config)
}

/// The client-token verifiers of `[client_tokens]`, once the config is resolved (a key that
/// does not parse is an error naming it).
pub fn client_tokens(config: &Config) -> Result<ClientTokens, ConfigError> {
    ClientTokens::from_config(&config.client_tokens).map_err(|e| config.locate(e))
}

/// The store `[store]` describes. Each backend is one arm.
fn build_store(config: &Config, metrics: &Metrics) -> Result<Store, ConfigError> {
    match config.store.backend {
        StoreBackend::Memory => {
            let metrics = metrics.clone();
            let store = MemoryStore::builder()
                .retention(config.store.expired_retention.get())
                .sweep_interval(config.store.sweep_interval.get())
                .counter_ttl(config.client_tokens.counter_ttl.get())
                .on_sweep(move |swept: Swept| {
                    metrics.swept(SweepKind::Token, swept.tokens);
                    metrics.swept(SweepKind::Session, swept.sessions);
                })
                .build();
            Ok(Store::new(store))
        }
        // Refused by validation already; kept explicit so that a new backend is one arm here.
        StoreBackend::Redis => Err(config.error(
            "store.backend",
            "the redis backend is not available in this build yet (use \"memory\")",
        )),
    }
}

/// The listener's certificate and key (`proxy.tls_cert`, `proxy.tls_key`), parsed and checked to
/// belong together; `None` without TLS.
fn tls_identity(config: &Config) -> Result<Option<Identity>, ConfigError> {
    let proxy = &config.proxy;
    let (Some(cert), Some(key)) = (proxy.tls_cert_pem(), proxy.tls_key_pem()) else {
        if proxy.tls_enabled() {
            return Err(config.error(
                "proxy.tls_cert",
                "was not read: call Config::resolve (or Config::load) first",
            ));
        }
        return Ok(None);
    };
    Identity::from_pem(cert, key).map(Some).map_err(|e| {
        let (name, path) = match &e {
            IdentityError::Cert(_) => ("proxy.tls_cert", &proxy.tls_cert),
            IdentityError::Key(_) => ("proxy.tls_key", &proxy.tls_key),
        };
        let path = path.as_deref().unwrap_or(Path::new("")).display();
        config.error(name, format!("{path}: {e}"))
    })
}

/// The roots of `proxy.upstream_ca`; `None` when it is not set (an `https://` origin is then
/// verified with [`OriginRoots::public`]).
fn origin_roots(config: &Config) -> Result<Option<OriginRoots>, ConfigError> {
    let Some(pem) = config.proxy.upstream_ca_pem() else {
        return Ok(None);
    };
    OriginRoots::from_pem(pem).map(Some).map_err(|problem| {
        let path = config.proxy.upstream_ca.as_deref().unwrap_or(Path::new(""));
        config.error(
            "proxy.upstream_ca",
            format!("{}: {problem}", path.display()),
        )
    })
}
