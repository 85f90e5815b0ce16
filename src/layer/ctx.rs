//! [`RequestCtx`]: what one request accumulates on its way through the phases, and the logging
//! phase that writes its metrics and its denial line from it, once.

use std::time::{Duration, Instant};

use http::HeaderMap;

use super::delivery::ManifestRead;
use crate::credentials::TokenCredential;
use crate::metrics::{ActionLabel, Metrics, Outcome};
use crate::policy::DenyReason;
use crate::response::{self, Body};
use crate::session::{OwnerKey, Session, SessionId};
use crate::token::Action;

/// One request's state, from its head to its logging.
pub(super) struct RequestCtx {
    /// When the request's head reached the layer.
    started: Instant,
    /// The `action` label it is counted under.
    pub(super) label: ActionLabel,
    /// The route's fixed name, for the denial log line.
    pub(super) route: &'static str,
    /// How long the decision took, once one was made (preflights and pass-through have none).
    decided: Option<Duration>,
    /// Why vidgate refused it, if it did.
    denied: Option<DenyReason>,
    /// What a video route was allowed to do.
    pub(super) allowed: Option<Allowed>,
    /// The token that allowed a read, to append to a manifest's URIs.
    pub(super) token: Option<TokenCredential>,
    /// The session the request runs in, if its token needs one.
    pub(super) session: Option<SessionId>,
    /// A session this request created, to hand to the client, and whose it is.
    pub(super) created: Option<(Session, OwnerKey)>,
    /// How to rewrite the response, should it be a manifest.
    pub(super) manifest: Option<ManifestRead>,
    /// With `[proxy.cors]`, the request's `Origin` (in a map of its own, empty when it sent
    /// none): the response gets CORS headers for it. `None` for a preflight vidgate answered.
    pub(super) cors_request: Option<HeaderMap>,
}

/// What a video route was allowed to do (SPEC 2.2).
pub(super) struct Allowed {
    /// The action.
    pub(super) action: Action,
    /// Its target video; `None` for a list or a create.
    pub(super) video: Option<String>,
    /// Whether the path is `/videos/{v}` itself (only a destroy of that cascades).
    pub(super) whole_video: bool,
}

impl RequestCtx {
    /// A request whose head just arrived.
    pub(super) fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            label: ActionLabel::None,
            route: "none",
            decided: None,
            denied: None,
            allowed: None,
            token: None,
            session: None,
            created: None,
            manifest: None,
            cors_request: None,
        }
    }

    /// The decision allowed the request (now).
    pub(super) fn allow(&mut self) {
        self.decided = Some(self.started.elapsed());
    }

    /// The decision refused the request (now): vidgate's error response for `reason`.
    pub(super) fn refuse(&mut self, reason: DenyReason) -> http::Response<Body> {
        self.decided = Some(self.started.elapsed());
        self.denied = Some(reason);
        response::error(reason)
    }

    /// The logging phase: count the request once, by its outcome, and log a refusal.
    pub(super) fn log(&self, metrics: &Metrics) {
        if let Some(decided) = self.decided {
            metrics.decision_time(decided.as_secs_f64());
        }
        if self.created.is_some() {
            metrics.session_created();
        }
        let Some(reason) = self.denied else {
            metrics.request(self.label, Outcome::Allowed);
            return;
        };
        metrics.request(self.label, Outcome::Denied);
        metrics.denial(reason);
        tracing::info!(
            reason = reason.as_str(),
            action = self.label.as_str(),
            status = reason.status().as_u16(),
            route = self.route,
            "request denied"
        );
    }
}
