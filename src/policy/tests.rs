//! The decision, one test per row of SPEC 2.3 and 2.6 that it owns, and properties.

use std::num::NonZeroU32;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::token::{Grant, Grants, TokenId};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn token(grants: Grants) -> (AuthToken, OwnerKey) {
    let id = TokenId::new("tok").unwrap();
    (
        AuthToken::new(id.clone(), grants, at(0)),
        OwnerKey::Server(id),
    )
}

fn read(videos: &[&str]) -> Grants {
    Grants::new()
        .with(Action::Read, Grant::resources(videos.iter().copied()))
        .unwrap()
}

fn with_sessions(mut t: AuthToken) -> AuthToken {
    t.session_limit = NonZeroU32::new(3);
    t
}

fn session_of(owner: &OwnerKey, ends_at: Option<i64>, owned: &[&str]) -> Session {
    Session {
        id: SessionId::from_bits(42),
        owner: owner.clone(),
        created_at: at(0),
        ends_at: ends_at.map(at),
        owned: owned.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(
    t: &AuthToken,
    owner: &OwnerKey,
    s: PresentedSession<'_>,
    a: Action,
    v: Option<&str>,
) -> Decision {
    decide(Some(Credential { token: t, owner }), s, a, v, at(100))
}

// --- the table of SPEC 2.6 ---

#[test]
fn every_reason_has_its_status_and_string() {
    let table = [
        (DenyReason::AmbiguousToken, 400, "ambiguous_token"),
        (DenyReason::BadPath, 400, "bad_path"),
        (DenyReason::BadRequest, 400, "bad_request"),
        (DenyReason::MissingToken, 401, "missing_token"),
        (DenyReason::InvalidToken, 401, "invalid_token"),
        (DenyReason::TokenExpired, 401, "token_expired"),
        (DenyReason::GrantMissing, 403, "grant_missing"),
        (
            DenyReason::SessionLimitReached,
            403,
            "session_limit_reached",
        ),
        (DenyReason::SessionExpired, 403, "session_expired"),
        (DenyReason::UnknownSession, 403, "unknown_session"),
        (DenyReason::SessionMismatch, 403, "session_mismatch"),
        (DenyReason::NoRoute, 404, "no_route"),
        (DenyReason::UpstreamUnavailable, 502, "upstream_unavailable"),
        (DenyReason::StoreUnavailable, 503, "store_unavailable"),
        (DenyReason::UpstreamTimeout, 504, "upstream_timeout"),
    ];
    assert_eq!(table.len(), DenyReason::ALL.len());
    for (reason, status, text) in table {
        assert_eq!(reason.status().as_u16(), status, "{text}");
        assert_eq!(reason.as_str(), text);
        assert_eq!(reason.to_string(), text);
        assert!(reason.message().ends_with('.'), "a sentence: {text}");
    }
}

// --- step 3: the token ---

#[test]
fn an_unknown_token_is_invalid() {
    let d = decide(None, PresentedSession::None, Action::Read, Some("v"), at(0));
    assert_eq!(d, Decision::Deny(DenyReason::InvalidToken));
}

#[test]
fn a_hidden_token_is_invalid() {
    let (mut t, o) = token(read(&["v"]));
    t.hidden = true;
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, Some("v")),
        Decision::Deny(DenyReason::InvalidToken)
    );
}

#[test]
fn an_expired_token_is_refused_from_its_instant() {
    let (mut t, o) = token(read(&["v"]));
    t.expiration_date = Some(at(100));
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, Some("v")),
        Decision::Deny(DenyReason::TokenExpired)
    );
    t.expiration_date = Some(Timestamp::from_millis(100_001));
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, Some("v")),
        Decision::Allow(SessionUse::NotNeeded)
    );
}

#[test]
fn token_checks_come_before_session_checks() {
    let (mut t, o) = token(read(&["v"]));
    t = with_sessions(t);
    t.expiration_date = Some(at(1));
    let unknown = PresentedSession::Some {
        found: None,
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, unknown, Action::Read, Some("v")),
        Decision::Deny(DenyReason::TokenExpired)
    );
}

// --- step 4: the presented session ---

#[test]
fn an_explicit_unknown_session_is_refused() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    let s = PresentedSession::Some {
        found: None,
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Deny(DenyReason::UnknownSession)
    );
}

#[test]
fn an_explicit_foreign_session_is_a_mismatch() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    let other = OwnerKey::Server(TokenId::new("other").unwrap());
    let foreign = session_of(&other, None, &[]);
    let s = PresentedSession::Some {
        found: Some(&foreign),
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Deny(DenyReason::SessionMismatch)
    );
    // A client token with the same id string is another owner too.
    let jwt = session_of(&OwnerKey::Jwt(Arc::from("tok")), None, &[]);
    let s = PresentedSession::Some {
        found: Some(&jwt),
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Deny(DenyReason::SessionMismatch)
    );
}

#[test]
fn an_explicit_ended_session_is_expired() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    let ended = session_of(&o, Some(100), &[]);
    let s = PresentedSession::Some {
        found: Some(&ended),
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Deny(DenyReason::SessionExpired)
    );
    let live = session_of(&o, Some(101), &[]);
    let s = PresentedSession::Some {
        found: Some(&live),
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Allow(SessionUse::Existing(live.id))
    );
}

#[test]
fn session_checks_come_before_grants() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    let s = PresentedSession::Some {
        found: None,
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Destroy, Some("v")),
        Decision::Deny(DenyReason::UnknownSession)
    );
}

#[test]
fn a_cookie_session_that_cannot_be_used_is_replaced() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    let other = session_of(&OwnerKey::Server(TokenId::new("other").unwrap()), None, &[]);
    let ended = session_of(&o, Some(50), &[]);
    for found in [None, Some(&other), Some(&ended)] {
        let s = PresentedSession::Some {
            found,
            source: SessionSource::Cookie,
        };
        assert_eq!(
            run(&t, &o, s, Action::Read, Some("v")),
            Decision::Allow(SessionUse::Create)
        );
    }
    let good = session_of(&o, None, &[]);
    let s = PresentedSession::Some {
        found: Some(&good),
        source: SessionSource::Cookie,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Allow(SessionUse::Existing(good.id))
    );
}

#[test]
fn no_session_creates_one_for_a_token_that_needs_it() {
    let (t, o) = token(read(&["v"]));
    let t = with_sessions(t);
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, Some("v")),
        Decision::Allow(SessionUse::Create)
    );
}

#[test]
fn sessions_are_ignored_for_a_token_that_needs_none() {
    let (t, o) = token(read(&["v"]));
    let s = PresentedSession::Some {
        found: None,
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Read, Some("v")),
        Decision::Allow(SessionUse::NotNeeded)
    );
}

// --- step 5: grants ---

#[test]
fn a_missing_grant_is_refused() {
    let (t, o) = token(read(&["v"]));
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, Some("w")),
        Decision::Deny(DenyReason::GrantMissing)
    );
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Update, Some("v")),
        Decision::Deny(DenyReason::GrantMissing)
    );
}

#[test]
fn listing_needs_read_all() {
    let (t, o) = token(read(&["v"]));
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, None),
        Decision::Deny(DenyReason::GrantMissing)
    );
    let (t, o) = token(Grants::new().with(Action::Read, Grant::all()).unwrap());
    assert_eq!(
        run(&t, &o, PresentedSession::None, Action::Read, None),
        Decision::Allow(SessionUse::NotNeeded)
    );
}

#[test]
fn session_owned_is_judged_on_the_presented_session() {
    let grants = Grants::new()
        .with(Action::Destroy, Grant::session_owned())
        .unwrap();
    let (t, o) = token(grants);
    let mine = session_of(&o, None, &["created-here"]);
    let s = PresentedSession::Some {
        found: Some(&mine),
        source: SessionSource::Explicit,
    };
    assert_eq!(
        run(&t, &o, s, Action::Destroy, Some("created-here")),
        Decision::Allow(SessionUse::Existing(mine.id))
    );
    assert_eq!(
        run(&t, &o, s, Action::Destroy, Some("elsewhere")),
        Decision::Deny(DenyReason::GrantMissing)
    );
    // A session that would be created owns nothing yet.
    assert_eq!(
        run(
            &t,
            &o,
            PresentedSession::None,
            Action::Destroy,
            Some("created-here")
        ),
        Decision::Deny(DenyReason::GrantMissing)
    );
}

#[test]
fn check_token_alone_is_step_three() {
    let (mut t, o) = token(Grants::new());
    let cred = Credential {
        token: &t,
        owner: &o,
    };
    assert!(check_token(Some(cred), at(0)).is_ok(), "no grant needed");
    t.hidden = true;
    let cred = Credential {
        token: &t,
        owner: &o,
    };
    assert_eq!(
        check_token(Some(cred), at(0)).err(),
        Some(DenyReason::InvalidToken)
    );
    assert_eq!(
        check_token(None, at(0)).err(),
        Some(DenyReason::InvalidToken)
    );
}

// --- properties ---

fn grant_strategy() -> impl Strategy<Value = Option<Grant>> {
    proptest::option::of(
        (
            proptest::collection::vec("[abc]{1,2}", 0..3),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(resources, session_owned, all)| Grant {
                resources,
                session_owned,
                all,
            }),
    )
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Read),
        Just(Action::Create),
        Just(Action::Update),
        Just(Action::Destroy)
    ]
}

proptest! {
    /// The decision never allows an action the grants do not name (SPEC 1.2).
    #[test]
    fn never_allows_what_the_grants_do_not_name(
        grants in [grant_strategy(), grant_strategy(), grant_strategy(), grant_strategy()],
        action in action_strategy(),
        video in proptest::option::of("[abc]{1,2}"),
        owned in proptest::collection::vec("[abc]{1,2}", 0..3),
        has_session in any::<bool>(),
    ) {
        let mut g = Grants::new();
        for (a, grant) in Action::ALL.into_iter().zip(grants.iter().cloned()) {
            g.set(a, grant).unwrap();
        }
        let (t, o) = token(g);
        let t = with_sessions(t);
        let owned_refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let s = session_of(&o, None, &owned_refs);
        let presented = if has_session {
            PresentedSession::Some { found: Some(&s), source: SessionSource::Explicit }
        } else {
            PresentedSession::None
        };
        let decision = run(&t, &o, presented, action, video.as_deref());
        if let Decision::Allow(_) = decision {
            let grant = grants[action as usize].as_ref();
            prop_assert!(grant.is_some(), "allowed without a grant of {action}");
            let grant = grant.unwrap();
            let named = match video.as_deref() {
                None if action == Action::Create => {
                    grant.all || grant.session_owned || !grant.resources.is_empty()
                }
                None => grant.all,
                Some(v) => {
                    grant.all
                        || grant.resources.iter().any(|r| r == v)
                        || (grant.session_owned && has_session && owned.iter().any(|o| o == v))
                }
            };
            prop_assert!(named, "allowed {action} on {video:?} with {grant:?}");
        }
    }
}

// --- every reason chosen here: the route, the one token, the store, session creation ---

#[test]
fn route_refusals_map_to_their_reasons() {
    assert_eq!(DenyReason::from(RouteError::BadPath), DenyReason::BadPath);
    assert_eq!(
        DenyReason::from(RouteError::BadRequest),
        DenyReason::BadRequest
    );
    assert_eq!(DenyReason::from(RouteError::NoRoute), DenyReason::NoRoute);
}

#[test]
fn one_token_is_missing_single_or_ambiguous() {
    assert_eq!(one_token::<&str>(&[]), Err(DenyReason::MissingToken));
    assert_eq!(one_token(&["a"]), Ok(&"a"));
    assert_eq!(one_token(&["a", "b"]), Err(DenyReason::AmbiguousToken));
}

#[test]
fn a_store_that_cannot_say_is_store_unavailable_at_the_step_that_needs_it() {
    let (t, owner) = token(read(&["v"]));
    let t = with_sessions(t);
    assert_eq!(
        decide(
            TokenCheck::Unavailable,
            PresentedSession::None,
            Action::Read,
            Some("v"),
            at(100)
        ),
        Decision::Deny(DenyReason::StoreUnavailable)
    );
    let found = TokenCheck::Found(Credential {
        token: &t,
        owner: &owner,
    });
    assert_eq!(
        decide(
            found,
            PresentedSession::Unavailable,
            Action::Read,
            Some("v"),
            at(100)
        ),
        Decision::Deny(DenyReason::StoreUnavailable)
    );
    assert_eq!(
        check_token(TokenCheck::Unavailable, at(100)).err(),
        Some(DenyReason::StoreUnavailable)
    );
}

#[test]
fn an_expired_or_hidden_token_answers_its_own_401_whatever_the_session_lookup_did() {
    let (mut expired, owner) = token(read(&["v"]));
    expired = with_sessions(expired);
    expired.expiration_date = Some(at(50));
    let found = TokenCheck::Found(Credential {
        token: &expired,
        owner: &owner,
    });
    assert_eq!(
        decide(
            found,
            PresentedSession::Unavailable,
            Action::Read,
            Some("v"),
            at(100)
        ),
        Decision::Deny(DenyReason::TokenExpired)
    );
    let (mut hidden, owner) = token(read(&["v"]));
    hidden = with_sessions(hidden);
    hidden.hidden = true;
    let found = TokenCheck::Found(Credential {
        token: &hidden,
        owner: &owner,
    });
    assert_eq!(
        decide(
            found,
            PresentedSession::Unavailable,
            Action::Read,
            Some("v"),
            at(100)
        ),
        Decision::Deny(DenyReason::InvalidToken)
    );
    // A token that needs no sessions never looks at a session's lookup.
    let (plain, owner) = token(read(&["v"]));
    let found = TokenCheck::Found(Credential {
        token: &plain,
        owner: &owner,
    });
    assert_eq!(
        decide(
            found,
            PresentedSession::Unavailable,
            Action::Read,
            Some("v"),
            at(100)
        ),
        Decision::Allow(SessionUse::NotNeeded)
    );
}

#[test]
fn session_creation_outcomes_map_to_their_reasons() {
    let (mut t, owner) = token(read(&["v"]));
    t.expiration_date = Some(at(200));
    let session = session_of(&owner, None, &[]);
    assert_eq!(
        session_created(Ok(SessionCreation::Created(session.clone())), &t, at(100)),
        Ok(session)
    );
    assert_eq!(
        session_created(Ok(SessionCreation::LimitReached), &t, at(100)),
        Err(DenyReason::SessionLimitReached)
    );
    assert_eq!(
        session_created(Ok(SessionCreation::OwnerGone), &t, at(100)),
        Err(DenyReason::InvalidToken),
        "deleted meanwhile"
    );
    assert_eq!(
        session_created(Ok(SessionCreation::OwnerGone), &t, at(200)),
        Err(DenyReason::TokenExpired),
        "expired meanwhile"
    );
    assert_eq!(
        session_created(Err(StoreError::Unavailable("down".into())), &t, at(100)),
        Err(DenyReason::StoreUnavailable)
    );
}
