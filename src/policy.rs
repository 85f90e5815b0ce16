//! The decision (SPEC 1.2, 2.3, 2.6): given a token, the session a request presented, the
//! action and the video, allow or refuse with a reason.
//!
//! [`decide`] is a pure function: no I/O, no clock (the caller passes `now`), no HTTP. Every
//! way vidgate can refuse a request is a [`DenyReason`], and each reason's status, reason
//! string and message live here and nowhere else.

use http::StatusCode;

use crate::clock::Timestamp;
use crate::session::{OwnerKey, Session, SessionId};
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

/// A token as the decision sees it: its fields and whose sessions it opens.
#[derive(Debug, Clone, Copy)]
pub struct Credential<'a> {
    /// The token's fields (a server token, or a verified client token).
    pub token: &'a AuthToken,
    /// The owner key its sessions belong to.
    pub owner: &'a OwnerKey,
}

/// Where a request's session credential came from (SPEC 2.1, 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSource {
    /// The `session` query parameter or the `X-Vidgate-Session` header: used strictly.
    Explicit,
    /// Only the session cookie: used leniently.
    Cookie,
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
/// the store does not hold (or that did not verify).
pub fn check_token(
    token: Option<Credential<'_>>,
    now: Timestamp,
) -> Result<Credential<'_>, DenyReason> {
    match token {
        None => Err(DenyReason::InvalidToken),
        Some(c) if c.token.hidden => Err(DenyReason::InvalidToken),
        Some(c) if c.token.is_expired(now) => Err(DenyReason::TokenExpired),
        Some(c) => Ok(c),
    }
}

/// Decide a request for `action` on `video` (SPEC 2.6 steps 3 to 5). Steps 1–2 (path, route,
/// credential extraction) come before it; step 6 (creating a session) after it, in the store.
pub fn decide(
    token: Option<Credential<'_>>,
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
    let PresentedSession::Some { found, source } = presented else {
        return Ok(None);
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

#[cfg(test)]
mod tests;
