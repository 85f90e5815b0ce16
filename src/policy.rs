//! The decision (SPEC 1.2, 2.3, 2.6): given a token, the session a request presented, the
//! action and the video, allow or refuse with a reason.
//!
//! [`decide`] is a pure function: no I/O, no clock (the caller passes `now`), no HTTP. Every
//! way vidgate can refuse a request is a [`DenyReason`], and each reason's status, reason
//! string and message live here and nowhere else. So does the choice of a reason, for every
//! step of SPEC 2.6: the route's refusals (`impl From<RouteError> for DenyReason`),
//! the request's one token ([`one_token`]), the token and its session ([`decide`],
//! [`check_token`], which also say where the store failed), and the creation of a session
//! ([`session_created`]). The layer gathers the facts and asks; it never picks a reason.

use http::StatusCode;

use crate::clock::Timestamp;
use crate::route::RouteError;
pub use crate::session::SessionSource;
use crate::session::{OwnerKey, Session, SessionId};
use crate::store::{SessionCreation, StoreError};
use crate::token::{Action, AuthToken};

/// Every error response vidgate makes itself (SPEC 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// Two different token credentials.
    AmbiguousToken,
    /// A path that could be read two ways.
    BadPath,
    /// A malformed request (e.g. a conflicting method override).
    BadRequest,
    /// No token credential.
    MissingToken,
    /// Unknown, hidden, malformed or wrongly signed token.
    InvalidToken,
    /// The token's expiration date has passed.
    TokenExpired,
    /// The token does not grant this action on this video.
    GrantMissing,
    /// The token's sessions are used up.
    SessionLimitReached,
    /// The presented session has ended.
    SessionExpired,
    /// The presented session does not exist.
    UnknownSession,
    /// The presented session belongs to another token.
    SessionMismatch,
    /// The path matches no route.
    NoRoute,
    /// The origin could not be reached.
    UpstreamUnavailable,
    /// The store could not be reached: vidgate fails closed.
    StoreUnavailable,
    /// The origin sent no response head in time.
    UpstreamTimeout,
}

impl DenyReason {
    /// Every reason, for metrics and tests.
    pub const ALL: [DenyReason; 15] = [
        DenyReason::AmbiguousToken,
        DenyReason::BadPath,
        DenyReason::BadRequest,
        DenyReason::MissingToken,
        DenyReason::InvalidToken,
        DenyReason::TokenExpired,
        DenyReason::GrantMissing,
        DenyReason::SessionLimitReached,
        DenyReason::SessionExpired,
        DenyReason::UnknownSession,
        DenyReason::SessionMismatch,
        DenyReason::NoRoute,
        DenyReason::UpstreamUnavailable,
        DenyReason::StoreUnavailable,
        DenyReason::UpstreamTimeout,
    ];

    /// The reason string of the JSON body and of the `reason` metric label.
    pub const fn as_str(self) -> &'static str {
        self.describe().1
    }

    /// The HTTP status vidgate answers with.
    pub const fn status(self) -> StatusCode {
        self.describe().0
    }

    /// One sentence for a person.
    pub const fn message(self) -> &'static str {
        self.describe().2
    }

    /// The one table of statuses, reasons and messages.
    const fn describe(self) -> (StatusCode, &'static str, &'static str) {
        use DenyReason::*;
        match self {
            AmbiguousToken => (
                StatusCode::BAD_REQUEST,
                "ambiguous_token",
                "The request carries two different tokens.",
            ),
            BadPath => (
                StatusCode::BAD_REQUEST,
                "bad_path",
                "The request path is not in a form vidgate forwards.",
            ),
            BadRequest => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request is malformed.",
            ),
            MissingToken => (
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "The request carries no auth token.",
            ),
            InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The auth token is not valid.",
            ),
            TokenExpired => (
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "The auth token has expired.",
            ),
            GrantMissing => (
                StatusCode::FORBIDDEN,
                "grant_missing",
                "The auth token does not grant this action on this video.",
            ),
            SessionLimitReached => (
                StatusCode::FORBIDDEN,
                "session_limit_reached",
                "The auth token cannot open more sessions.",
            ),
            SessionExpired => (
                StatusCode::FORBIDDEN,
                "session_expired",
                "The session has ended.",
            ),
            UnknownSession => (
                StatusCode::FORBIDDEN,
                "unknown_session",
                "The session does not exist.",
            ),
            SessionMismatch => (
                StatusCode::FORBIDDEN,
                "session_mismatch",
                "The session belongs to another auth token.",
            ),
            NoRoute => (
                StatusCode::NOT_FOUND,
                "no_route",
                "No route matches this method and path.",
            ),
            UpstreamUnavailable => (
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "The video origin could not be reached.",
            ),
            StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The token store is unavailable.",
            ),
            UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "The video origin did not answer in time.",
            ),
        }
    }
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SPEC 2.6 step 1: what the route refused.
impl From<RouteError> for DenyReason {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::BadPath => DenyReason::BadPath,
            RouteError::BadRequest => DenyReason::BadRequest,
            RouteError::NoRoute => DenyReason::NoRoute,
        }
    }
}

/// SPEC 2.6 step 2: the request's one token among the distinct token credentials it carries:
/// `ambiguous_token` for two different ones, `missing_token` for none.
pub fn one_token<T>(found: &[T]) -> Result<&T, DenyReason> {
    match found {
        [] => Err(DenyReason::MissingToken),
        [one] => Ok(one),
        _ => Err(DenyReason::AmbiguousToken),
    }
}

/// A token as the decision sees it: its fields and whose sessions it opens.
#[derive(Debug, Clone, Copy)]
pub struct Credential<'a> {
    /// The token's fields (a server token, or a verified client token).
    pub token: &'a AuthToken,
    /// The owner key its sessions belong to.
    pub owner: &'a OwnerKey,
}

/// What was found for the request's token (SPEC 2.6 step 3).
#[derive(Debug, Clone, Copy)]
pub enum TokenCheck<'a> {
    /// The token, as stored or as verified.
    Found(Credential<'a>),
    /// No such token: unknown or malformed, or a client token that did not verify.
    Unknown,
    /// The store could not say.
    Unavailable,
}

/// `None` is a token the store does not hold (or that did not verify).
impl<'a> From<Option<Credential<'a>>> for TokenCheck<'a> {
    fn from(found: Option<Credential<'a>>) -> Self {
        match found {
            Some(credential) => TokenCheck::Found(credential),
            None => TokenCheck::Unknown,
        }
    }
}

/// The session a request presented, as the store found it.
#[derive(Debug, Clone, Copy)]
pub enum PresentedSession<'a> {
    /// No session credential.
    None,
    /// A session credential; `found` is `None` when the store does not know it (or it is
    /// malformed).
    Some {
        /// The stored session, if any.
        found: Option<&'a Session>,
        /// Where the credential was.
        source: SessionSource,
    },
    /// A session credential that the store could not look up.
    Unavailable,
}

/// What an allowed request does with sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// The token needs no session.
    NotNeeded,
    /// The request runs in this existing session.
    Existing(SessionId),
    /// A session must be created (atomically, which may still refuse with
    /// `session_limit_reached`).
    Create,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow(SessionUse),
    /// Refuse it.
    Deny(DenyReason),
}

/// Check the token alone (SPEC 2.6 step 3): known, not hidden, not expired. `None` is a token
/// the store does not hold (or that did not verify); a [`TokenCheck::Unavailable`] one is
/// `store_unavailable`.
pub fn check_token<'a>(
    token: impl Into<TokenCheck<'a>>,
    now: Timestamp,
) -> Result<Credential<'a>, DenyReason> {
    match token.into() {
        TokenCheck::Unavailable => Err(DenyReason::StoreUnavailable),
        TokenCheck::Unknown => Err(DenyReason::InvalidToken),
        TokenCheck::Found(c) if c.token.hidden => Err(DenyReason::InvalidToken),
        TokenCheck::Found(c) if c.token.is_expired(now) => Err(DenyReason::TokenExpired),
        TokenCheck::Found(c) => Ok(c),
    }
}

/// Decide a request for `action` on `video` (SPEC 2.6 steps 3 to 5). Steps 1–2 (path, route,
/// credential extraction) come before it; step 6 (creating a session) after it, in the store.
///
/// The session matters only for a token that needs sessions and has passed step 3: an expired
/// token is refused as expired even when its session could not be looked up.
pub fn decide<'a>(
    token: impl Into<TokenCheck<'a>>,
    session: PresentedSession<'_>,
    action: Action,
    video: Option<&str>,
    now: Timestamp,
) -> Decision {
    let credential = match check_token(token, now) {
        Ok(c) => c,
        Err(reason) => return Decision::Deny(reason),
    };
    let (using, owned): (SessionUse, &[String]) = if !credential.token.needs_sessions() {
        (SessionUse::NotNeeded, &[])
    } else {
        match usable_session(credential.owner, session, now) {
            Ok(Some(s)) => (SessionUse::Existing(s.id), &s.owned),
            Ok(None) => (SessionUse::Create, &[]),
            Err(reason) => return Decision::Deny(reason),
        }
    };
    if credential
        .token
        .grants
        .allows(action, video, |v| owned.iter().any(|o| o == v))
    {
        Decision::Allow(using)
    } else {
        Decision::Deny(DenyReason::GrantMissing)
    }
}

/// Step 4: the presented session, if it can be used; `Ok(None)` when a new one is needed.
fn usable_session<'a>(
    owner: &OwnerKey,
    presented: PresentedSession<'a>,
    now: Timestamp,
) -> Result<Option<&'a Session>, DenyReason> {
    let (found, source) = match presented {
        PresentedSession::None => return Ok(None),
        PresentedSession::Unavailable => return Err(DenyReason::StoreUnavailable),
        PresentedSession::Some { found, source } => (found, source),
    };
    let verdict = match found {
        None => Err(DenyReason::UnknownSession),
        Some(s) if s.owner != *owner => Err(DenyReason::SessionMismatch),
        Some(s) if s.has_ended(now) => Err(DenyReason::SessionExpired),
        Some(s) => Ok(Some(s)),
    };
    match (verdict, source) {
        (Ok(s), _) => Ok(s),
        (Err(reason), SessionSource::Explicit) => Err(reason),
        // A cookie that cannot be used is treated as absent: a new session replaces it.
        (Err(_), SessionSource::Cookie) => Ok(None),
    }
}

/// SPEC 2.6 step 6: the session the store created for `token`, or why not. A token that is
/// gone by the time of creation was expired (`token_expired`, as if seen before) or deleted
/// (`invalid_token`); a store that failed is `store_unavailable`.
pub fn session_created(
    created: Result<SessionCreation, StoreError>,
    token: &AuthToken,
    now: Timestamp,
) -> Result<Session, DenyReason> {
    match created {
        Ok(SessionCreation::Created(session)) => Ok(session),
        Ok(SessionCreation::LimitReached) => Err(DenyReason::SessionLimitReached),
        Ok(SessionCreation::OwnerGone) if token.is_expired(now) => Err(DenyReason::TokenExpired),
        Ok(SessionCreation::OwnerGone) => Err(DenyReason::InvalidToken),
        Err(_) => Err(DenyReason::StoreUnavailable),
    }
}

#[cfg(test)]
mod tests;
