//! vidgate: an authorization gateway for video hosts.
//!
//! A video host hands out *auth tokens*; each says which actions (read, create, update,
//! destroy) it grants on which videos, how many sessions may be opened with it, how long each
//! lives and when the token itself expires. vidgate enforces them in front of a video origin.
//! `docs/` in the repository is the reference of that contract; this crate is its
//! implementation.
//!
//! # Layout
//!
//! From the leaves up; no module uses one listed after it, except the few that say so.
//!
//! - [`clock`]: unix-millisecond [`clock::Timestamp`]s read through an injectable
//!   [`clock::Clock`].
//! - [`token`]: the auth token model: [`token::AuthToken`], its [`token::Grants`], the strict
//!   JSON parsing of create and update bodies, and the *empty* predicate.
//! - [`session`]: session ids, owner keys, and where a session credential came from.
//! - [`form`]: `application/x-www-form-urlencoded`, decoded one way for queries and forms.
//! - [`route`]: method and path → [`token::Action`] and video; the path checks (`bad_path`),
//!   the one method-override parser (`bad_request`) and `no_route`.
//! - [`store`]: the [`store::TokenStore`] trait a backend implements, the [`store::Store`]
//!   handle the gateway holds, the domain operations built on the trait (updates, the destroy
//!   cascade and its retries, the one lookup per request), and the in-memory
//!   [`store::MemoryStore`].
//! - [`policy`]: the decision, a pure function of (token, session, action, video, now), and
//!   [`policy::DenyReason`], the one table of statuses and reason strings; every reason is
//!   chosen here.
//! - [`credentials`]: vidgate's credentials on the wire: their names, the JWT shape, Bearer
//!   parsing, session cookie names and `Set-Cookie`, reading and stripping them.
//! - [`response`]: the responses vidgate makes itself (the JSON errors) and the body type.
//! - [`metrics`]: the Prometheus registry and every metric vidgate exports.
//! - [`manifest`]: HLS and DASH manifests rewritten so that players stay in their session.
//! - [`config`]: the TOML configuration as data: serde structs with defaults in one place,
//!   validation naming the file, line and key, secrets and files read once.
//! - [`client_token`]: client-side tokens (JWT, Ziggeo format), verified offline; `vidgate
//!   token mint` and `inspect`.
//! - [`tls`]: the listener's certificate (swappable on reload) and the roots `https://`
//!   origins are verified against.
//! - [`proxy`]: forwarding to the origin: [`proxy::Upstream`], streaming, header hygiene,
//!   502/504.
//! - [`layer`]: the tower layer ([`layer::VidgateLayer`]) that runs every request through its
//!   phases: authorize, upstream request, upstream response, respond, logging.
//! - [`admin`]: the admin API (SPEC 3), an axum router: tokens, sessions, metrics, health.
//! - [`server`]: the composition root ([`server::build`]) and the listeners: TLS, connection
//!   limits and timeouts, reload, drain.
//! - [`demo`]: a small sample origin for `vidgate demo`; the gateway itself never uses it.
//! - `testing` (compiled for tests only): helpers the unit tests of several modules share.

pub mod admin;
pub mod client_token;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod form;
pub mod layer;
pub mod manifest;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod response;
pub mod route;
pub mod server;
pub mod session;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod token;

/// `N` bytes from the operating system's CSPRNG. Token and session ids are credentials: if
/// the OS cannot supply randomness, continuing would hand out guessable ones.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut bytes)
        .expect("the operating system's random number generator failed");
    bytes
}

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
