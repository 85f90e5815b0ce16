//! [`Gate`]: what every request through one [`VidgateLayer`](super::VidgateLayer) shares, set
//! by its builder and read-only afterwards.

use std::sync::Arc;

use super::Cors;
use crate::client_token::ClientTokens;
use crate::clock::Clock;
use crate::credentials::{Cookies, SameSite};
use crate::metrics::Metrics;
use crate::route::Routes;

/// Everything the phases of a request need, shared by every clone of the service. Nothing in
/// it changes once the layer is built (a reload builds a new layer), so it needs no lock.
pub(super) struct Gate<St> {
    /// Where server tokens and sessions are looked up and sessions created.
    pub(super) store: Arc<St>,
    /// Method and path → action and video (SPEC 2.2).
    pub(super) routes: Routes,
    /// The offline verifiers of client tokens (SPEC 1.3).
    pub(super) client_tokens: Arc<ClientTokens>,
    /// Counted into once per request, by the logging phase.
    pub(super) metrics: Metrics,
    /// Expiry is judged at this clock's `now`.
    pub(super) clock: Arc<dyn Clock>,
    /// `proxy.bearer_auth`: whether every `Authorization: Bearer` is vidgate's.
    pub(super) bearer_auth: bool,
    /// `proxy.cookie_same_site`.
    pub(super) same_site: SameSite,
    /// Whether clients reach vidgate over TLS (cookies, manifests' scheme).
    pub(super) tls: bool,
    /// `[proxy.cors]`, when vidgate answers CORS itself.
    pub(super) cors: Option<Arc<Cors>>,
}

impl<St> Gate<St> {
    /// How session cookies are named and written.
    pub(super) fn cookies(&self) -> Cookies {
        Cookies {
            same_site: self.same_site,
            secure: self.tls,
        }
    }
}

impl<St> Clone for Gate<St> {
    fn clone(&self) -> Self {
        Gate {
            store: self.store.clone(),
            routes: self.routes.clone(),
            client_tokens: self.client_tokens.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            bearer_auth: self.bearer_auth,
            same_site: self.same_site,
            tls: self.tls,
            cors: self.cors.clone(),
        }
    }
}
