//! [`VidgateLayer`]: the builder of the layer, and the tower `Layer` that wraps a service in
//! [`Vidgate`].

use std::sync::Arc;

use tower::Layer;

use super::gate::Gate;
use super::service::Vidgate;
use super::{Cors, SameSite};
use crate::client_token::ClientTokens;
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::route::Routes;
use crate::store::TokenStore;

/// Wraps services in [`Vidgate`]. Built with the defaults of SPEC 5 and changed with its
/// builder methods.
pub struct VidgateLayer<St> {
    gate: Arc<Gate<St>>,
}

impl<St> Clone for VidgateLayer<St> {
    fn clone(&self) -> Self {
        VidgateLayer {
            gate: self.gate.clone(),
        }
    }
}

impl<St: TokenStore> VidgateLayer<St> {
    /// A layer checking requests against `store`, with the default routes, a fresh metrics
    /// registry and the system clock.
    pub fn new(store: Arc<St>) -> Self {
        VidgateLayer {
            gate: Arc::new(Gate {
                store,
                routes: Routes::default(),
                client_tokens: Arc::new(ClientTokens::default()),
                metrics: Metrics::new(),
                clock: Arc::new(SystemClock),
                bearer_auth: true,
                same_site: SameSite::Lax,
                tls: false,
                cors: None,
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Gate<St>)) -> Self {
        // Builders run before the layer is shared, so this never copies in practice.
        match Arc::get_mut(&mut self.gate) {
            Some(gate) => change(gate),
            None => {
                let mut gate = Gate::clone(&self.gate);
                change(&mut gate);
                self.gate = Arc::new(gate);
            }
        }
        self
    }

    /// Route with this table (`proxy.prefixes`, `proxy.unmatched`, `admin.app_token`).
    pub fn routes(self, routes: Routes) -> Self {
        self.with(|g| g.routes = routes)
    }

    /// Verify client tokens (JWT, Ziggeo format) with these keys (`[client_tokens]`). Without
    /// it, every client token is refused with `invalid_token`.
    pub fn client_tokens(self, client_tokens: ClientTokens) -> Self {
        self.with(|g| g.client_tokens = Arc::new(client_tokens))
    }

    /// Count into these metrics.
    pub fn metrics(self, metrics: Metrics) -> Self {
        self.with(|g| g.metrics = metrics)
    }

    /// Read time from this clock.
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.with(|g| g.clock = clock)
    }

    /// Whether every `Authorization: Bearer` belongs to vidgate (`proxy.bearer_auth`).
    pub fn bearer_auth(self, on: bool) -> Self {
        self.with(|g| g.bearer_auth = on)
    }

    /// The `SameSite` attribute of session cookies (`proxy.cookie_same_site`).
    pub fn same_site(self, same_site: SameSite) -> Self {
        self.with(|g| g.same_site = same_site)
    }

    /// Whether clients reach vidgate over TLS: session cookies then get `Secure` and the
    /// `__Host-` prefix.
    pub fn tls(self, tls: bool) -> Self {
        self.with(|g| g.tls = tls)
    }

    /// Answer CORS preflights and add CORS headers to every response (`[proxy.cors]`).
    /// Without it, preflights go to the inner service unchecked.
    pub fn cors(self, cors: Cors) -> Self {
        self.with(|g| g.cors = Some(Arc::new(cors)))
    }

    /// The metrics this layer counts into.
    pub fn metrics_handle(&self) -> &Metrics {
        &self.gate.metrics
    }
}

impl<S, St> Layer<S> for VidgateLayer<St> {
    type Service = Vidgate<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Vidgate::new(inner, self.gate.clone())
    }
}
