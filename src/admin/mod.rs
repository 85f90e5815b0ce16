//! The admin API (SPEC 3): manage server tokens and sessions over HTTP, shaped like Ziggeo's
//! server API so that Ziggeo's server SDKs can be pointed at it; plus `/metrics`, `/healthz`
//! and `/readyz`.
//!
//! It is served on its own listener, never the proxy's. It owns the HTTP side only: bodies are
//! validated by [`crate::token`], kept by a [`TokenStore`], and nothing here decides proxied
//! requests. Admin traffic is not counted in the request metrics, and its logs name route
//! templates, never token or session ids.
//!
//! | method and path | does | answers |
//! |---|---|---|
//! | `POST /v1/authtokens` (or `/v1/authtokens/`) | create | 201 token object |
//! | `GET /v1/authtokens?limit=N&skip=M` | list by `created_at`, then `token` | 200 array (`limit` 50, at most 100) |
//! | `GET /v1/authtokens/{token}` | read | 200 token object |
//! | `POST`, `PUT`, `PATCH /v1/authtokens/{token}` | partial update | 200 token object |
//! | `DELETE /v1/authtokens/{token}` or `POST ...?_method=DELETE` | delete it and its sessions | 200 deleted object |
//! | `GET /v1/authtokens/{token}/sessions` | live sessions | 200 array of `{"session", "token", "created_at", "expires_at", "owned"}` |
//! | `DELETE /v1/sessions/{id}` or `POST ...?_method=DELETE` | end a session now | 200 `{"session", "ended": true}` |
//! | `GET /metrics`, `/healthz`, `/readyz` | no credentials needed | 200 (`/readyz`: 503 when the store is down) |
//!
//! Every other route needs HTTP Basic `app_token:private_key` or `Bearer <private_key>`
//! ([`AdminAuth`]). Bodies are JSON or `application/x-www-form-urlencoded` (the SDKs' forms:
//! `grants` holds JSON, integers are decimal, bools `true`/`false`/`1`/`0` in any case, an
//! empty value clears a field); without a telling `Content-Type`, a body starting with `{` is
//! JSON. All JSON is ASCII-only, since the Python SDK decodes responses as ASCII.
//!
//! Errors are `{"error": "<reason>", "message": "<sentence>"}`:
//!
//! | status | reason | when |
//! |---|---|---|
//! | 400 | `bad_request` | malformed body, field or query; the message starts with the field, e.g. `grants.read.resources[0]: ...` |
//! | 401 | `unauthorized` | missing or wrong credentials (with `WWW-Authenticate: Basic realm="vidgate admin"`) |
//! | 404 | `not_found` | no such token, session or route |
//! | 405 | `method_not_allowed` | a method the path does not serve (with `Allow`) |
//! | 409 | `token_exists` | the requested token id is taken |
//! | 413 | `body_too_large` | a body over `admin.max_body` (default 1 MiB) |
//! | 422 | `unprocessable` | a well-formed token that cannot exist (an empty volatile one) |
//! | 503 | `store_unavailable` | the store failed; nothing was changed |
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::body::Body;
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use vidgate::admin::{self, AdminAuth, AdminState};
//! use vidgate::metrics::Metrics;
//! use vidgate::store::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = admin::router(AdminState {
//!     store: Arc::new(MemoryStore::builder().build()),
//!     metrics: Metrics::new(),
//!     auth: Some(AdminAuth::new(Some("demo-app".into()), "change-me".into())),
//!     max_body: 1 << 20,
//! });
//! // Served with `axum::serve(listener, app)`; here, one request without a socket.
//! let response = app
//!     .oneshot(
//!         Request::post("/v1/authtokens")
//!             .header("authorization", "Bearer change-me")
//!             .header("content-type", "application/x-www-form-urlencoded")
//!             .body(Body::from("grants=%7B%22read%22%3A%22all%22%7D&session_limit=3"))
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::CREATED);
//! # }
//! ```

mod auth;
mod body;
mod error;
mod handlers;

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::header::{AUTHORIZATION, CACHE_CONTROL};
use http::{HeaderValue, StatusCode};

pub use auth::AdminAuth;

use crate::metrics::Metrics;
use crate::store::TokenStore;
use error::AdminError;
use handlers::{SESSION, TOKEN, TOKENS, TOKENS_SLASH, TOKEN_SESSIONS};

/// Everything the admin API needs.
pub struct AdminState<St> {
    /// Where tokens and sessions live.
    pub store: Arc<St>,
    /// The metrics `/metrics` renders (the gauges are refreshed from the store per scrape).
    pub metrics: Metrics,
    /// The admin credentials; `None` locks every authenticated route (401).
    pub auth: Option<AdminAuth>,
    /// The largest request body read, in bytes (`admin.max_body`); larger: 413.
    pub max_body: usize,
}

impl<St> fmt::Debug for AdminState<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The admin API as an axum [`Router`], ready for `axum::serve`.
pub fn router<St: TokenStore>(state: AdminState<St>) -> Router {
    let state = Arc::new(state);
    // Each resource takes every method and dispatches on the effective one itself (a POST
    // may say `?_method=DELETE`), so 405s are JSON like every other refusal.
    let authenticated = Router::new()
        .route(TOKENS, any(handlers::tokens::<St>))
        .route(TOKENS_SLASH, any(handlers::tokens::<St>))
        .route(TOKEN, any(handlers::token::<St>))
        .route(TOKEN_SESSIONS, any(handlers::token_sessions::<St>))
        .route(SESSION, any(handlers::session::<St>))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_auth::<St>,
        ));
    let public = Router::new()
        .route(
            "/metrics",
            get(handlers::metrics::<St>).fallback(handlers::public_method_not_allowed),
        )
        .route(
            "/healthz",
            get(handlers::healthz).fallback(handlers::public_method_not_allowed),
        )
        .route(
            "/readyz",
            get(handlers::readyz::<St>).fallback(handlers::public_method_not_allowed),
        );
    authenticated
        .merge(public)
        .fallback(handlers::not_found)
        .with_state(state)
}

/// Lets a request through only with the admin credentials.
async fn require_auth<St: TokenStore>(
    State(state): State<Arc<AdminState<St>>>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = state
        .auth
        .as_ref()
        .is_some_and(|auth| auth.accepts(request.headers().get(AUTHORIZATION)));
    if authorized {
        next.run(request).await
    } else {
        tracing::info!(method = %request.method(), status = 401, "admin request unauthorized");
        AdminError::Unauthorized.into_response()
    }
}

/// A JSON response, ASCII-only. Admin answers hold credentials: no cache may keep them.
fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = crate::response::json(status, value).map(axum::body::Body::new);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
