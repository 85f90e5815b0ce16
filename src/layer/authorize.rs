//! The authorization phase (SPEC 2.6): the route, the request's one token, its session and its
//! grant are judged in order, a session is created when one is needed, and the result is either
//! the request to forward (the effective method set, every vidgate credential removed) or
//! vidgate's own answer. What the origin receives is what [`authorize`] returns, and nothing
//! else: that is the only way a request leaves this phase.
//!
//! The phase gathers facts (what the request carries, what the store and the verifiers say) and
//! asks the decision ([`crate::policy`]) at each step; every reason for a refusal is chosen
//! there.

use http::header::ORIGIN;
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode};
use smallvec::SmallVec;

use super::ctx::{Allowed, RequestCtx};
use super::gate::Gate;
use super::Cors;
use crate::client_token::Verified;
use crate::credentials::{self, Credentials, TokenCredential, TokenKind};
use crate::metrics::ActionLabel;
use crate::policy::{
    self, Credential, Decision, DenyReason, PresentedSession, SessionUse, TokenCheck,
};
use crate::response::{self, Body};
use crate::route::{self, Route};
use crate::session::{OwnerKey, Session, SessionId, SessionSource};
use crate::store::{Found, Lookup, SessionTerms, StoreError, StoredToken, TokenStore};
use crate::token::{Action, TokenId};

/// SPEC 2.6 for one request: `Ok` with the request to forward, or `Err` with vidgate's answer
/// (a refusal, a CORS preflight, or the new session of `POST {prefix}/session`).
pub(super) async fn authorize<St: TokenStore, B>(
    gate: &Gate<St>,
    ctx: &mut RequestCtx,
    request: Request<B>,
) -> Result<Request<B>, Response<Body>> {
    let (mut parts, body) = request.into_parts();
    if let Some(cors) = &gate.cors {
        if Cors::is_preflight(&parts.method, &parts.headers) {
            return Err(cors.preflight(&parts.headers));
        }
        let mut origin = HeaderMap::new();
        if let Some(value) = parts.headers.get(ORIGIN) {
            origin.insert(ORIGIN, value.clone());
        }
        ctx.cors_request = Some(origin);
    }

    // Step 1: the path, the method, the route.
    let classified = {
        let overrides = route::query_overrides(parts.uri.query().unwrap_or(""));
        let overrides: SmallVec<[&str; 1]> = overrides.iter().map(AsRef::as_ref).collect();
        gate.routes
            .classify(&parts.method, &overrides, &parts.headers, parts.uri.path())
    };
    let (method, route) = classified.map_err(|e| ctx.refuse(e.into()))?;
    ctx.route = route.name();
    let credentials = Credentials::extract(&parts, gate.bearer_auth);

    let checked = match route {
        // Preflights and unmatched paths under `unmatched = "pass"` go through unchecked, with
        // the method they came with.
        Route::Preflight | Route::PassThrough => false,
        Route::CreateSession => {
            ctx.label = ActionLabel::Session;
            return Err(open_session(gate, ctx, &credentials).await);
        }
        Route::Video {
            action,
            video,
            whole_video,
        } => {
            ctx.label = ActionLabel::Action(action);
            let allowed = Allowed {
                action,
                video,
                whole_video,
            };
            check(gate, ctx, &parts, &credentials, allowed)
                .await
                .map_err(|reason| ctx.refuse(reason))?;
            ctx.allow();
            true
        }
    };

    // Forward exactly what was checked: the effective method, no vidgate credentials.
    credentials::strip(&mut parts, gate.bearer_auth);
    if checked {
        parts.method = method;
    }
    Ok(Request::from_parts(parts, body))
}

/// Steps 2 to 6 for a video route; on success the context holds what was allowed, the session
/// in use and the one created.
async fn check<St: TokenStore>(
    gate: &Gate<St>,
    ctx: &mut RequestCtx,
    parts: &Parts,
    credentials: &Credentials,
    allowed: Allowed,
) -> Result<(), DenyReason> {
    let credential = credentials.token()?;
    let presented = Presented::of(gate, credential);
    let session = presented_session(gate, parts, credentials, &presented);
    let found = look_up(gate, &presented, &session).await;
    let owner = presented.owner(&found.token);
    let token = presented.check(&found.token, owner.as_ref());
    let now = gate.clock.now();
    let decision = policy::decide(
        token,
        session_found(&session, &found.session),
        allowed.action,
        allowed.video.as_deref(),
        now,
    );
    match decision {
        Decision::Deny(reason) => return Err(reason),
        Decision::Allow(SessionUse::NotNeeded) => {}
        Decision::Allow(SessionUse::Existing(id)) => ctx.session = Some(id),
        Decision::Allow(SessionUse::Create) => {
            // The credential the decision allowed.
            let token = policy::check_token(token, now)?;
            let session = create_session(gate, token).await?;
            ctx.session = Some(session.id);
            ctx.created = Some((session, token.owner.clone()));
        }
    }
    if allowed.action == Action::Read {
        // A manifest's URIs get it appended (SPEC 2.7).
        ctx.token = Some(credential.clone());
    }
    ctx.allowed = Some(allowed);
    Ok(())
}

/// `POST {prefix}/session` (SPEC 2.3): a new session for any valid token, answered 201 with its
/// id; the session is handed out by the response phase like any other.
async fn open_session<St: TokenStore>(
    gate: &Gate<St>,
    ctx: &mut RequestCtx,
    credentials: &Credentials,
) -> Response<Body> {
    let opened = async {
        let presented = Presented::of(gate, credentials.token()?);
        let found = look_up(gate, &presented, &None).await;
        let owner = presented.owner(&found.token);
        let token = policy::check_token(
            presented.check(&found.token, owner.as_ref()),
            gate.clock.now(),
        )?;
        let session = create_session(gate, token).await?;
        Ok::<_, DenyReason>((session, token.owner.clone()))
    };
    match opened.await {
        Ok((session, owner)) => {
            ctx.allow();
            let body = serde_json::json!({
                "session": session.id.to_string(),
                "expires_at": session.ends_at.map(|t| t.as_secs()),
            });
            ctx.created = Some((session, owner));
            response::json(StatusCode::CREATED, &body)
        }
        Err(reason) => ctx.refuse(reason),
    }
}

/// Step 6: create a session for `token`, atomically counted against its limit.
async fn create_session<St: TokenStore>(
    gate: &Gate<St>,
    token: Credential<'_>,
) -> Result<Session, DenyReason> {
    let created = gate
        .store
        .create_session(token.owner, SessionTerms::of(token.token))
        .await;
    if let Err(error) = &created {
        store_failed(error);
    }
    policy::session_created(created, token.token, gate.clock.now())
}

/// The request's token before the store is asked: a server token to look up, or a client token
/// verified offline.
enum Presented<'a> {
    /// A well-formed server token id.
    Server(&'a str),
    /// A client token that verified.
    Client(Verified),
    /// A malformed server token id, or a client token that did not verify.
    Unknown,
}

impl<'a> Presented<'a> {
    fn of<St>(gate: &Gate<St>, credential: &'a TokenCredential) -> Self {
        match credential.kind {
            TokenKind::Server if TokenId::is_valid(&credential.value) => {
                Presented::Server(&credential.value)
            }
            TokenKind::Server => Presented::Unknown,
            TokenKind::Client => match gate
                .client_tokens
                .verify(&credential.value, gate.clock.now())
            {
                Ok(verified) => Presented::Client(verified),
                Err(refused) => {
                    // A fixed code only: never the token, nor a claim's value.
                    tracing::debug!(why = refused.code(), "client token refused");
                    Presented::Unknown
                }
            },
        }
    }

    /// Whether the token may need sessions, as far as is known before the store is asked.
    fn may_need_sessions(&self) -> bool {
        match self {
            Presented::Server(_) => true,
            Presented::Client(verified) => verified.token.needs_sessions(),
            Presented::Unknown => false,
        }
    }

    /// The owner key of the sessions this token would use (for a server token, before the
    /// store is asked: only to name its cookie).
    fn session_owner(&self) -> Option<OwnerKey> {
        match self {
            Presented::Server(id) => TokenId::new(id).ok().map(OwnerKey::Server),
            Presented::Client(verified) => Some(verified.owner.clone()),
            Presented::Unknown => None,
        }
    }

    /// A found server token's owner key (its stored id, shared, not copied).
    fn owner(&self, stored: &Result<Option<StoredToken>, StoreError>) -> Option<OwnerKey> {
        match (self, stored) {
            (Presented::Server(_), Ok(Some(stored))) => {
                Some(OwnerKey::Server(stored.token.id.clone()))
            }
            _ => None,
        }
    }

    /// Step 3's facts, given what the store found for a server token and its owner key.
    fn check<'c>(
        &'c self,
        stored: &'c Result<Option<StoredToken>, StoreError>,
        owner: Option<&'c OwnerKey>,
    ) -> TokenCheck<'c> {
        match self {
            Presented::Server(_) => match (stored, owner) {
                (Ok(Some(stored)), Some(owner)) => TokenCheck::Found(Credential {
                    token: &stored.token,
                    owner,
                }),
                (Ok(_), _) => TokenCheck::Unknown,
                (Err(error), _) => {
                    store_failed(error);
                    TokenCheck::Unavailable
                }
            },
            Presented::Client(verified) => TokenCheck::Found(Credential {
                token: &verified.token,
                owner: &verified.owner,
            }),
            Presented::Unknown => TokenCheck::Unknown,
        }
    }
}

/// The session credential a request presents: its value parsed (`None` when it is not a session
/// id at all), and where it came from. Only looked for when the token may need sessions.
type PresentedId = Option<(Option<SessionId>, SessionSource)>;

fn presented_session<St>(
    gate: &Gate<St>,
    parts: &Parts,
    credentials: &Credentials,
    presented: &Presented<'_>,
) -> PresentedId {
    if !presented.may_need_sessions() {
        return None;
    }
    // The cookie's name is worked out only for a request that has cookies and no explicit
    // session.
    let (value, source) = credentials.session(&parts.headers, || {
        presented
            .session_owner()
            .map(|owner| gate.cookies().name(&owner))
            .unwrap_or_default()
    })?;
    Some((value.parse().ok(), source))
}

/// Ask the store, in one call, for what the request needs: its server token and its session.
/// A request that needs neither (a client token without sessions) asks nothing.
async fn look_up<St: TokenStore>(
    gate: &Gate<St>,
    presented: &Presented<'_>,
    session: &PresentedId,
) -> Found {
    let request = Lookup {
        token: match presented {
            Presented::Server(id) => Some(id),
            Presented::Client(_) | Presented::Unknown => None,
        },
        session: session.and_then(|(id, _)| id),
    };
    if request == Lookup::default() {
        return Found {
            token: Ok(None),
            session: Ok(None),
        };
    }
    gate.store.lookup(request).await
}

/// Step 4's facts: the presented session as the store found it.
fn session_found<'a>(
    presented: &PresentedId,
    found: &'a Result<Option<Session>, StoreError>,
) -> PresentedSession<'a> {
    match presented {
        None => PresentedSession::None,
        Some((None, source)) => PresentedSession::Some {
            found: None,
            source: *source,
        },
        Some((Some(_), source)) => match found {
            Ok(found) => PresentedSession::Some {
                found: found.as_ref(),
                source: *source,
            },
            Err(error) => {
                store_failed(error);
                PresentedSession::Unavailable
            }
        },
    }
}

/// The log line of a store step that failed; the decision then refuses with
/// `store_unavailable` wherever it needed that step.
fn store_failed(error: &StoreError) {
    tracing::error!(%error, "store step failed; refusing the request if it needs it");
}
