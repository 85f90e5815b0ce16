//! vidgate: an authorization gateway for video hosts.
//!
//! A video host hands out *auth tokens*; each says which actions (read, create, update,
//! destroy) it grants on which videos, how many sessions may be opened with it, how long each
//! lives and when the token itself expires. vidgate enforces them in front of a video origin.
//! The external contract is `SPEC.md`; this crate is its implementation.
//!
//! # Layout
//!
//! - [`token`]: the auth token model — [`token::AuthToken`], its [`token::Grants`], the
//!   strict JSON parsing of create and update bodies, and the *empty* predicate.
//! - [`route`]: method and path → [`token::Action`] and video; the path checks (`bad_path`),
//!   method overrides (`bad_request`) and `no_route`.
//! - [`policy`]: the decision, a pure function of (token, session, action, video, now), and
//!   [`policy::DenyReason`], the one table of statuses and reason strings.
//! - [`proxy`]: forwarding to the origin: [`proxy::Upstream`], streaming, header hygiene, 502/504.
//! - [`session`]: session ids, owner keys, and where a session credential came from.
//! - [`credentials`]: vidgate's credentials on the wire: their names, the JWT shape, Bearer
//!   parsing, session cookie names and `Set-Cookie`, reading and stripping them.
//! - [`form`]: `application/x-www-form-urlencoded`, decoded one way for queries and forms.
//! - [`store`]: the [`store::TokenStore`] trait and the in-memory [`store::MemoryStore`]
//!   (sessions limits enforced atomically, destroy cascade, expiry sweeps).
//! - [`admin`]: the admin API (SPEC 3), an axum router: tokens, sessions, metrics, health.
//! - [`clock`]: unix-millisecond [`clock::Timestamp`]s read through an injectable
//!   [`clock::Clock`].
//! - [`config`]: the TOML configuration: serde structs with defaults in one place, validation
//!   naming the key and line.
//! - [`server`]: the listeners: TLS, connection limits and timeouts, reload, drain.
//! - [`tls`]: the listener's certificate (swappable on reload) and the roots `https://` origins
//!   are verified against.

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
