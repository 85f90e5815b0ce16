//! The tower layer that puts vidgate in front of any HTTP service: [`VidgateLayer`] wraps a
//! service in [`Vidgate`], which lets a request through only when its token allows it.
//!
//! For every request it extracts the credentials (SPEC 2.1), routes it (2.2), asks the
//! decision (2.6), creates a session when one is needed (2.3), strips vidgate's credentials
//! and calls the inner service; after a successful create it records the new video as owned
//! by the session (2.4), after a successful destroy it runs the cascade (2.5). Every refusal
//! is an answer — the JSON response of SPEC 2.6 — never a service error.
//!
//! The layer owns none of those rules: it extracts, asks and answers.
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

mod body;
mod cors;
pub mod credentials;
mod delivery;
mod future;
// The tower-http shape: layer.rs beside service.rs and future.rs, even inside `layer/`.
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use cors::Cors;
pub use future::ResponseFuture;
pub use layer::VidgateLayer;
pub use service::Vidgate;

/// The `SameSite` attribute of session cookies (`proxy.cookie_same_site`, written `"lax"` or
/// `"none"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// `SameSite=Lax`: the default.
    #[default]
    Lax,
    /// `SameSite=None`, for players embedded on other sites (browsers then require TLS).
    None,
}

impl SameSite {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}
