//! The tower layer that puts vidgate in front of any HTTP service: [`VidgateLayer`] wraps a
//! service in [`Vidgate`], which lets a request through only when its token allows it.
//!
//! Every request goes through the same phases, in order, over a per-request context
//! (`ctx.rs`), as the service's `handle` reads:
//!
//! | phase | file | does |
//! |---|---|---|
//! | authorize | `authorize.rs` | routes the request (SPEC 2.2), finds its one token (2.1), looks up the token and its session in one store call, asks the decision (2.6), creates a session when one is needed (2.3); returns the request to forward, credentials stripped and the effective method set, or vidgate's answer |
//! | upstream request | `delivery.rs`, `ownership.rs` | asks the origin for a manifest whole, for a create response unencoded |
//! | upstream response | `ownership.rs`, `delivery.rs`, the store's cascade | records a created video as owned (2.4), rewrites a manifest (2.7), runs the destroy cascade (2.5) |
//! | respond | `service.rs`, `cors.rs` | hands out a created session, adds the CORS headers |
//! | logging | `ctx.rs` | the metrics and the denial log line, once per request |
//!
//! Every refusal is an answer — the JSON response of SPEC 2.6 — never a service error. The
//! layer owns none of the rules: the reasons are chosen by [`crate::policy`], the credentials'
//! spellings are [`crate::credentials`]', the store keeps what must be atomic.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use vidgate::layer::VidgateLayer;
//! use vidgate::store::{MemoryStore, TokenStore};
//! use vidgate::token::NewToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = Arc::new(MemoryStore::builder().build());
//! let token = store
//!     .insert_token(NewToken::from_json(r#"{"grants": {"read": "all"}}"#).unwrap())
//!     .await
//!     .unwrap();
//!
//! let app: Router = Router::new()
//!     .route("/videos/{id}", get(|| async { "a video" }))
//!     .layer(VidgateLayer::new(store));
//!
//! use tower::ServiceExt;
//! let request = http::Request::get(format!("/videos/v1?server_auth={}", token.id))
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

mod authorize;
mod body;
mod cors;
mod ctx;
mod delivery;
mod future;
mod gate;
// The tower-http shape: layer.rs beside service.rs and future.rs, even inside `layer/`.
#[allow(clippy::module_inception)]
mod layer;
mod ownership;
mod service;

pub use cors::Cors;
pub use future::ResponseFuture;
pub use layer::VidgateLayer;
pub use service::Vidgate;

/// The `SameSite` attribute of session cookies; see [`crate::credentials::SameSite`].
pub use crate::credentials::SameSite;
