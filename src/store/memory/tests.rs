//! Unit tests of the in-memory store: one test per behaviour, on a [`ManualClock`] that only
//! moves when told to, and without the background sweeper unless the test is about it.

use std::num::NonZeroU32;

use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::store::{Cascade, Lookup, Store, TokenWrite, Updated, Written};
use crate::token::{Action, Grant, TokenPatch};

/// The instant every test starts at, in unix seconds.
const START: i64 = 1_700_000_000;
/// The retention of expired tokens and ended sessions in these tests.
const RETENTION: Duration = Duration::from_secs(3_600);

/// A store on a manual clock showing [`START`], configured further by `configure`.
fn store_with(
    configure: impl FnOnce(MemoryStoreBuilder) -> MemoryStoreBuilder,
) -> (MemoryStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
    let builder = MemoryStore::builder()
        .clock(clock.clone() as Arc<dyn Clock>)
        .retention(RETENTION)
        .sweeper(false);
    (configure(builder).build(), clock)
}

/// A store on a manual clock, without the background sweeper.
fn store() -> (MemoryStore, Arc<ManualClock>) {
    store_with(|b| b)
}

/// `secs` seconds after [`START`].
fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(START + secs)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

async fn insert(store: &MemoryStore, body: serde_json::Value) -> Arc<AuthToken> {
    let new = NewToken::from_value(body).unwrap();
    store.insert_token(new).await.unwrap()
}

fn patch(body: serde_json::Value) -> TokenPatch {
    TokenPatch::from_json(&body.to_string()).unwrap()
}

async fn update(store: &MemoryStore, id: &str, body: serde_json::Value) -> Option<Updated> {
    store.update_token(id, &patch(body)).await.unwrap()
}

async fn create(store: &MemoryStore, owner: &OwnerKey, terms: SessionTerms) -> SessionCreation {
    store.create_session(owner, terms).await.unwrap()
}

fn server(token: &AuthToken) -> OwnerKey {
    OwnerKey::Server(token.id.clone())
}

fn jwt(jti: &str) -> OwnerKey {
    OwnerKey::Jwt(Arc::from(jti))
}

fn client_terms(limit: Option<u32>, keep_counter_until: Option<Timestamp>) -> SessionTerms {
    SessionTerms {
        limit: limit.map(nz),
        lifetime: None,
        keep_counter_until,
    }
}

/// A new session for `owner`; panics on any other outcome.
async fn open(store: &MemoryStore, owner: &OwnerKey, terms: SessionTerms) -> Session {
    match store.create_session(owner, terms).await.unwrap() {
        SessionCreation::Created(session) => session,
        other => panic!("expected a new session, got {other:?}"),
    }
}

/// A new session of a server token; panics on any other outcome.
async fn open_for(store: &MemoryStore, token: &AuthToken) -> Session {
    open(store, &server(token), SessionTerms::of(token)).await
}

async fn read(store: &MemoryStore, id: &str) -> Option<StoredToken> {
    store.token(id).await.unwrap()
}

/// What the store counts: its gauges' [`super::StoreStats`], and its own sweep totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StoreStats {
    tokens: u64,
    sessions: u64,
    swept_tokens: u64,
    swept_sessions: u64,
}

async fn stats(store: &MemoryStore) -> StoreStats {
    let held = store.stats().await.unwrap();
    let swept = store.swept();
    StoreStats {
        tokens: held.tokens,
        sessions: held.sessions,
        swept_tokens: swept.tokens,
        swept_sessions: swept.sessions,
    }
}

async fn live_ids(store: &MemoryStore, owner: &OwnerKey) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = store
        .sessions_of(owner)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<SessionId>) -> Vec<SessionId> {
    ids.sort();
    ids
}

fn resources(token: &AuthToken, action: Action) -> Vec<&str> {
    token.grants.resources(action).collect()
}

// --- insert ---

#[tokio::test]
async fn insert_without_an_id_generates_32_lowercase_hex_chars() {
    let (store, _) = store();
    let a = insert(&store, json!({"grants": {"read": "all"}})).await;
    let b = insert(&store, json!({"grants": {"read": "all"}})).await;
    for token in [&a, &b] {
        assert_eq!(token.id.as_str().len(), 32);
        assert!(token
            .id
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    }
    assert_ne!(a.id, b.id);
    assert_eq!(read(&store, a.id.as_str()).await.unwrap().token, a);
    assert_eq!(stats(&store).await.tokens, 2);
}

#[tokio::test]
async fn insert_with_an_id_keeps_it_and_stamps_created_at_from_the_clock() {
    let (store, clock) = store();
    clock.set(Timestamp::from_millis(START * 1000 + 250));
    let token = insert(
        &store,
        json!({
            "token": "My_token-1",
            "grants": {"read": {"resources": ["a"]}},
            "expiration_date": START + 100,
            "usage_expiration_time": 30,
            "session_limit": 2,
            "volatile": true,
            "hidden": true,
        }),
    )
    .await;
    assert_eq!(token.id.as_str(), "My_token-1");
    assert_eq!(token.created_at, Timestamp::from_millis(START * 1000 + 250));
    assert_eq!(token.expiration_date, Some(at(100)));
    assert_eq!(token.usage_expiration_time, Some(nz(30)));
    assert_eq!(token.session_limit, Some(nz(2)));
    assert!(token.volatile && token.hidden);

    let stored = read(&store, "My_token-1").await.unwrap();
    assert_eq!(stored.token, token);
    assert_eq!(stored.sessions_created, 0);
    assert_eq!(stored.to_json()["created_at"], json!(START));
}

#[tokio::test]
async fn insert_of_a_taken_id_is_token_exists_and_keeps_the_original() {
    let (store, _) = store();
    let first = insert(
        &store,
        json!({"token": "dup", "grants": {"read": {"resources": ["a"]}}}),
    )
    .await;
    let again = NewToken::from_value(json!({"token": "dup", "grants": {"read": "all"}})).unwrap();
    assert_eq!(
        store.insert_token(again).await,
        Err(StoreError::TokenExists)
    );
    assert_eq!(read(&store, "dup").await.unwrap().token, first);
    assert_eq!(stats(&store).await.tokens, 1);
}

/// A token past its retention is gone for every read (SPEC 1.5), so its id is free again,
/// whether or not a sweep has removed it yet.
#[tokio::test]
async fn insert_reuses_the_id_of_a_token_past_its_retention_without_a_sweep() {
    let (store, clock) = store();
    let old = insert(
        &store,
        json!({"token": "reused", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    open_for(&store, &old).await;
    clock.set(at(10).saturating_add(RETENTION));
    assert_eq!(read(&store, "reused").await, None);

    let new = NewToken::from_value(json!({"token": "reused", "grants": {"update": "all"}}));
    let inserted = store.insert_token(new.unwrap()).await;
    assert!(
        inserted.is_ok(),
        "the id of a token past its retention is free: {inserted:?}"
    );
    let stored = read(&store, "reused").await.unwrap();
    assert_eq!(stored.token.grants.get(Action::Update), Some(Grant::all()));
    assert_eq!(
        stored.sessions_created, 0,
        "the old counter is not inherited"
    );
}

// --- reading a token ---

#[tokio::test]
async fn token_of_an_unknown_id_is_none() {
    let (store, _) = store();
    insert(&store, json!({"token": "known", "grants": {}})).await;
    assert_eq!(read(&store, "unknown").await, None);
    assert_eq!(read(&store, "").await, None);
}

#[tokio::test]
async fn an_expired_token_stays_readable_within_its_retention() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    clock.set(at(10));
    assert!(token.is_expired(clock.now()));
    assert_eq!(read(&store, "t").await.unwrap().token, token);

    clock.set(
        at(10)
            .saturating_add(RETENTION)
            .saturating_sub(Duration::from_millis(1)),
    );
    assert_eq!(read(&store, "t").await.unwrap().token, token);
    assert_eq!(store.list_tokens(0, 50).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_gone_once_its_retention_passes_even_without_a_sweep() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    clock.set(at(10).saturating_add(RETENTION));
    assert_eq!(read(&store, "t").await, None);
    assert!(store.list_tokens(0, 50).await.unwrap().is_empty());
    assert_eq!(update(&store, "t", json!({"hidden": true})).await, None);
    assert_eq!(
        store
            .create_session(&server(&token), SessionTerms::of(&token))
            .await
            .unwrap(),
        SessionCreation::OwnerGone
    );
    // Still held (nothing swept it), but never reported.
    assert_eq!(stats(&store).await.tokens, 1);
}

// --- update ---

#[tokio::test]
async fn update_replaces_each_given_field_and_keeps_the_rest() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["a"]}}}),
    )
    .await;
    open_for(&store, &token).await;
    clock.advance(Duration::from_secs(5));

    let body = json!({
        "grants": {"update": {"resources": ["b"]}},
        "expiration_date": START + 100,
        "usage_expiration_time": 60,
        "session_limit": 3,
        "volatile": true,
        "hidden": true,
    });
    let updated = update(&store, "t", body).await.unwrap();
    assert!(!updated.deleted);
    let new = &updated.token.token;
    assert_eq!(new.id.as_str(), "t");
    assert_eq!(new.grants.get(Action::Read), None);
    assert_eq!(
        new.grants.get(Action::Update),
        Some(Grant::resources(["b"]))
    );
    assert_eq!(new.expiration_date, Some(at(100)));
    assert_eq!(new.usage_expiration_time, Some(nz(60)));
    assert_eq!(new.session_limit, Some(nz(3)));
    assert!(new.volatile && new.hidden);
    assert_eq!(new.created_at, at(0), "created_at never changes");
    assert_eq!(updated.token.sessions_created, 1, "the counter is kept");
    assert_eq!(read(&store, "t").await.unwrap(), updated.token);

    // A patch of one field leaves every other one alone.
    let one = update(&store, "t", json!({"hidden": false})).await;
    let one = one.unwrap().token.token;
    assert!(!one.hidden);
    assert_eq!(
        *one,
        AuthToken {
            hidden: false,
            ..(**new).clone()
        }
    );
}

#[tokio::test]
async fn update_with_null_clears_the_optional_fields() {
    let (store, _) = store();
    insert(
        &store,
        json!({
            "token": "t",
            "grants": {"read": "all"},
            "expiration_date": START + 100,
            "usage_expiration_time": 60,
            "session_limit": 3,
            "volatile": true,
            "hidden": true,
        }),
    )
    .await;
    let body = json!({
        "expiration_date": null,
        "usage_expiration_time": null,
        "session_limit": null,
        "volatile": null,
        "hidden": null,
    });
    let updated = update(&store, "t", body).await.unwrap();
    assert!(!updated.deleted);
    let token = read(&store, "t").await.unwrap().token;
    assert_eq!(token, updated.token.token);
    assert_eq!(token.expiration_date, None);
    assert_eq!(token.usage_expiration_time, None);
    assert_eq!(token.session_limit, None);
    assert!(!token.volatile && !token.hidden);
    assert_eq!(token.grants.get(Action::Read), Some(Grant::all()));
}

#[tokio::test]
async fn update_replaces_the_grants_as_a_whole() {
    let (store, _) = store();
    insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["a", "b"]}, "update": "all"}}),
    )
    .await;
    let body = json!({"grants": {"destroy": {"resources": ["c"]}}});
    let updated = update(&store, "t", body).await.unwrap();
    let grants = &updated.token.token.grants;
    assert_eq!(grants.get(Action::Read), None);
    assert_eq!(grants.get(Action::Update), None);
    assert_eq!(grants.get(Action::Create), None);
    assert_eq!(grants.get(Action::Destroy), Some(Grant::resources(["c"])));
    assert_eq!(read(&store, "t").await.unwrap().token.grants, *grants);
}

#[tokio::test]
async fn update_leaving_a_volatile_token_empty_deletes_it_and_its_sessions() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["a"]}}, "volatile": true}),
    )
    .await;
    let one = open_for(&store, &token).await;
    let two = open_for(&store, &token).await;
    assert!(store.record_owned(one.id, "mine").await.unwrap());

    let body = json!({"grants": {"read": {}}});
    let updated = update(&store, "t", body).await.unwrap();
    assert!(updated.deleted);
    // The answer is the updated object (SPEC 1.4), though the token is gone.
    assert!(updated.token.token.grants.is_empty());
    assert!(updated.token.token.grants.is_present(Action::Read));
    assert_eq!(updated.token.sessions_created, 2);

    assert_eq!(read(&store, "t").await, None);
    assert_eq!(store.session(one.id).await.unwrap(), None);
    assert_eq!(store.session(two.id).await.unwrap(), None);
    assert!(live_ids(&store, &server(&token)).await.is_empty());
    assert!(store.list_tokens(0, 50).await.unwrap().is_empty());
    assert_eq!(
        store
            .create_session(&server(&token), SessionTerms::of(&token))
            .await
            .unwrap(),
        SessionCreation::OwnerGone
    );
    let counts = stats(&store).await;
    assert_eq!((counts.tokens, counts.sessions), (0, 0));
    assert_eq!(
        store.destroy_video("mine").await.unwrap(),
        Cascade::default()
    );
}

/// The video index must not keep entries of a token an update deleted: they would never be
/// removed (memory grows with every such token).
#[tokio::test]
async fn update_deleting_a_volatile_token_removes_it_from_the_video_index() {
    let (store, _) = store();
    insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["a", "b"]}}, "volatile": true}),
    )
    .await;
    assert_eq!(store.shared.by_video.len(), 2);
    let body = json!({"grants": {"read": {}}});
    let updated = update(&store, "t", body).await.unwrap();
    assert!(updated.deleted);
    assert_eq!(
        store.shared.by_video.len(),
        0,
        "the index still names the deleted token"
    );
}

#[tokio::test]
async fn update_of_a_missing_token_is_none() {
    let (store, _) = store();
    assert_eq!(update(&store, "nope", json!({"hidden": true})).await, None);
    assert_eq!(stats(&store).await.tokens, 0, "nothing is created");
}

// --- delete ---

#[tokio::test]
async fn delete_returns_the_token_and_removes_its_sessions() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["a"]}}}),
    )
    .await;
    let other = insert(&store, json!({"token": "u", "grants": {"read": "all"}})).await;
    let one = open_for(&store, &token).await;
    let two = open_for(&store, &token).await;
    let kept = open_for(&store, &other).await;
    assert!(store.record_owned(one.id, "owned").await.unwrap());

    let deleted = store.delete_token("t").await.unwrap().unwrap();
    assert_eq!(deleted.token, token);
    assert_eq!(deleted.sessions_created, 2);

    assert_eq!(read(&store, "t").await, None);
    assert_eq!(store.session(one.id).await.unwrap(), None);
    assert_eq!(store.session(two.id).await.unwrap(), None);
    assert!(live_ids(&store, &server(&token)).await.is_empty());
    assert_eq!(store.session(kept.id).await.unwrap(), Some(kept));
    let counts = stats(&store).await;
    assert_eq!((counts.tokens, counts.sessions), (1, 1));
    // Nothing is left in the indexes either.
    assert_eq!(store.destroy_video("a").await.unwrap(), Cascade::default());
    assert_eq!(
        store.destroy_video("owned").await.unwrap(),
        Cascade::default()
    );

    assert_eq!(store.delete_token("t").await.unwrap(), None);
}

// --- list ---

#[tokio::test]
async fn list_orders_by_created_at_then_id_and_honours_skip_and_limit() {
    let (store, clock) = store();
    for id in ["b", "a"] {
        insert(&store, json!({"token": id, "grants": {}})).await;
    }
    clock.advance(Duration::from_millis(1));
    insert(&store, json!({"token": "0", "grants": {}})).await;
    clock.advance(Duration::from_secs(1));
    insert(&store, json!({"token": "c", "grants": {}})).await;

    let ids = |list: Vec<StoredToken>| -> Vec<String> {
        list.iter().map(|t| t.token.id.to_string()).collect()
    };
    assert_eq!(
        ids(store.list_tokens(0, 50).await.unwrap()),
        ["a", "b", "0", "c"]
    );
    assert_eq!(ids(store.list_tokens(1, 2).await.unwrap()), ["b", "0"]);
    assert_eq!(ids(store.list_tokens(3, 50).await.unwrap()), ["c"]);
    assert!(store.list_tokens(4, 50).await.unwrap().is_empty());
    assert!(store.list_tokens(0, 0).await.unwrap().is_empty());
}

// --- sessions ---

#[tokio::test]
async fn create_session_for_a_server_token_counts_sessions_created() {
    let (store, clock) = store();
    let token = insert(&store, json!({"token": "t", "grants": {"read": "all"}})).await;
    let mut ids = Vec::new();
    for n in 1..=3u64 {
        clock.advance(Duration::from_secs(1));
        let session = open_for(&store, &token).await;
        assert_eq!(session.owner, server(&token));
        assert_eq!(session.created_at, clock.now());
        assert_eq!(session.ends_at, None);
        assert!(session.owned.is_empty());
        assert_eq!(
            store.session(session.id).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(read(&store, "t").await.unwrap().sessions_created, n);
        ids.push(session.id);
    }
    assert_eq!(live_ids(&store, &server(&token)).await, sorted(ids.clone()));
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(stats(&store).await.sessions, 3);
}

#[tokio::test]
async fn session_limit_allows_exactly_that_many_and_ended_sessions_still_count() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "session_limit": 3}),
    )
    .await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(open_for(&store, &token).await);
    }
    let owner = server(&token);
    let create = || create(&store, &owner, SessionTerms::of(&token));
    assert_eq!(create().await, SessionCreation::LimitReached);

    assert!(store.end_session(sessions[0].id).await.unwrap());
    assert_eq!(
        create().await,
        SessionCreation::LimitReached,
        "an ended session still counts"
    );
    assert_eq!(read(&store, "t").await.unwrap().sessions_created, 3);
    assert_eq!(live_ids(&store, &server(&token)).await.len(), 2);
    assert_eq!(stats(&store).await.sessions, 3);
}

/// SessionTerms::of: "for a server token the store re-reads the stored token", so an update
/// of the limit is honoured and the caller's copy is not.
#[tokio::test]
async fn a_server_tokens_limit_comes_from_the_stored_token_not_the_terms() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "session_limit": 1}),
    )
    .await;
    let owner = server(&token);
    let no_limit = client_terms(None, None);
    assert!(matches!(
        store.create_session(&owner, no_limit).await.unwrap(),
        SessionCreation::Created(_)
    ));
    assert_eq!(
        store.create_session(&owner, no_limit).await.unwrap(),
        SessionCreation::LimitReached
    );
    update(&store, "t", json!({"session_limit": 2}))
        .await
        .unwrap();
    // The caller's stale copy says 1; the stored token says 2.
    open(&store, &owner, SessionTerms::of(&token)).await;
    assert_eq!(
        store.create_session(&owner, no_limit).await.unwrap(),
        SessionCreation::LimitReached
    );
    assert_eq!(read(&store, "t").await.unwrap().sessions_created, 2);
}

#[tokio::test]
async fn usage_expiration_time_sets_the_session_end() {
    let (store, clock) = store();
    clock.set(Timestamp::from_millis(START * 1000 + 500));
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "usage_expiration_time": 90}),
    )
    .await;
    let session = open_for(&store, &token).await;
    assert_eq!(session.created_at, clock.now());
    assert_eq!(
        session.ends_at,
        Some(Timestamp::from_millis((START + 90) * 1000 + 500))
    );
    assert_eq!(store.session(session.id).await.unwrap(), Some(session));
}

#[tokio::test]
async fn a_sessions_end_is_fixed_when_it_is_created() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "usage_expiration_time": 60}),
    )
    .await;
    let first = open_for(&store, &token).await;
    assert_eq!(first.ends_at, Some(at(60)));

    let shorter = update(&store, "t", json!({"usage_expiration_time": 10})).await;
    shorter.unwrap();
    let second = open_for(&store, &token).await;
    assert_eq!(
        second.ends_at,
        Some(at(10)),
        "new sessions get the new life"
    );

    let cleared = update(&store, "t", json!({"usage_expiration_time": null})).await;
    cleared.unwrap();
    let third = open_for(&store, &token).await;
    assert_eq!(third.ends_at, None);

    assert_eq!(
        store.session(first.id).await.unwrap().unwrap().ends_at,
        Some(at(60)),
        "an existing session keeps its end"
    );
    assert_eq!(
        store.session(second.id).await.unwrap().unwrap().ends_at,
        Some(at(10))
    );
}

#[tokio::test]
async fn an_ended_session_is_readable_within_its_retention_and_gone_after_without_a_sweep() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "usage_expiration_time": 60}),
    )
    .await;
    let session = open_for(&store, &token).await;

    clock.set(at(60));
    let ended = store.session(session.id).await.unwrap().unwrap();
    assert!(ended.has_ended(clock.now()));
    assert!(live_ids(&store, &server(&token)).await.is_empty());

    clock.set(
        at(60)
            .saturating_add(RETENTION)
            .saturating_sub(Duration::from_millis(1)),
    );
    assert_eq!(
        store.session(session.id).await.unwrap(),
        Some(session.clone())
    );

    clock.advance(Duration::from_millis(1));
    assert_eq!(store.session(session.id).await.unwrap(), None);
    assert_eq!(stats(&store).await.sessions, 1, "not swept, only hidden");
}

#[tokio::test]
async fn create_session_for_a_deleted_or_unknown_token_is_owner_gone() {
    let (store, _) = store();
    let token = insert(&store, json!({"token": "t", "grants": {"read": "all"}})).await;
    store.delete_token("t").await.unwrap().unwrap();
    let created = create(&store, &server(&token), SessionTerms::of(&token)).await;
    assert_eq!(created, SessionCreation::OwnerGone);

    let unknown = OwnerKey::Server(crate::token::TokenId::new("never").unwrap());
    let created = create(&store, &unknown, client_terms(None, None)).await;
    assert_eq!(created, SessionCreation::OwnerGone);
    assert_eq!(stats(&store).await.sessions, 0);
}

/// `SessionCreation::OwnerGone`: "the server token no longer exists (it was deleted or expired
/// meanwhile)". A token that expired between the request's check and the creation must not
/// get a session, nor use up its limit (SPEC 2.6: a denied request changes nothing).
#[tokio::test]
async fn create_session_for_an_expired_token_is_owner_gone() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    clock.set(at(10));
    let created = create(&store, &server(&token), SessionTerms::of(&token)).await;
    assert_eq!(created, SessionCreation::OwnerGone);
    assert_eq!(read(&store, "t").await.unwrap().sessions_created, 0);
    assert_eq!(stats(&store).await.sessions, 0);
}

#[tokio::test]
async fn client_owners_are_counted_per_owner_key() {
    let (store, _) = store();
    let same_id = insert(&store, json!({"token": "a", "grants": {"read": "all"}})).await;
    let owners = [
        jwt("a"),
        jwt("b"),
        OwnerKey::Ziggeo(Arc::from("a")),
        OwnerKey::Ziggeo(Arc::from("b")),
    ];
    let terms = client_terms(Some(2), Some(at(1_000)));
    for owner in &owners {
        let first = open(&store, owner, terms).await;
        let second = open(&store, owner, terms).await;
        assert_eq!(first.owner, *owner);
        assert_eq!(
            store.create_session(owner, terms).await.unwrap(),
            SessionCreation::LimitReached
        );
        assert_eq!(
            live_ids(&store, owner).await,
            sorted(vec![first.id, second.id])
        );
    }
    // Client counters live outside tokens: the server token named "a" is untouched.
    assert_eq!(read(&store, "a").await.unwrap().sessions_created, 0);
    open_for(&store, &same_id).await;
    assert_eq!(stats(&store).await.sessions, 9);
}

#[tokio::test]
async fn a_client_sessions_life_comes_from_its_terms() {
    let (store, _) = store();
    let terms = SessionTerms {
        limit: None,
        lifetime: Some(nz(30)),
        keep_counter_until: Some(at(1_000)),
    };
    let session = open(&store, &jwt("n"), terms).await;
    assert_eq!(session.created_at, at(0));
    assert_eq!(session.ends_at, Some(at(30)));
}

#[tokio::test]
async fn a_client_counter_is_kept_until_keep_counter_until_then_restarts_after_a_sweep() {
    let (store, clock) = store();
    let owner = jwt("nonce");
    let terms = client_terms(Some(2), Some(at(100)));
    let old = [
        open(&store, &owner, terms).await,
        open(&store, &owner, terms).await,
    ];
    let create = || create(&store, &owner, terms);
    assert_eq!(create().await, SessionCreation::LimitReached);

    clock.set(at(100).saturating_sub(Duration::from_millis(1)));
    store.sweep().await;
    assert_eq!(
        create().await,
        SessionCreation::LimitReached,
        "kept until keep_counter_until"
    );

    clock.set(at(100));
    store.sweep().await;
    assert_eq!(stats(&store).await.sessions, 0);
    for session in &old {
        assert_eq!(store.session(session.id).await.unwrap(), None);
    }
    let renewed = client_terms(Some(2), Some(at(200)));
    let fresh = open(&store, &owner, renewed).await;
    open(&store, &owner, renewed).await;
    assert_eq!(
        store.create_session(&owner, renewed).await.unwrap(),
        SessionCreation::LimitReached
    );
    assert!(live_ids(&store, &owner).await.contains(&fresh.id));
    assert_eq!(live_ids(&store, &owner).await.len(), 2);
}

#[tokio::test]
async fn a_client_counter_without_an_end_is_kept_for_the_counter_ttl() {
    let (store, clock) = store_with(|b| b.counter_ttl(Duration::from_secs(100)));
    let owner = OwnerKey::Ziggeo(Arc::from("nonce"));
    let terms = client_terms(Some(1), None);
    open(&store, &owner, terms).await;
    let counter = |store: &MemoryStore| store.shared.owners.get(&owner).map(|e| e.created);

    // Observed without creating: an attempt made without an end renews the counter's time.
    clock.set(at(99));
    store.sweep().await;
    assert_eq!(counter(&store), Some(1), "kept for the counter TTL");
    assert_eq!(stats(&store).await.sessions, 1);

    clock.set(at(100));
    store.sweep().await;
    assert_eq!(counter(&store), None);
    assert_eq!(stats(&store).await.sessions, 0);
    open(&store, &owner, terms).await;
    assert_eq!(
        store.create_session(&owner, terms).await.unwrap(),
        SessionCreation::LimitReached
    );
}

/// When a client counter restarts before the sweeper removed it, its old sessions (which have
/// no end of their own) must still go: nothing else would ever remove them.
#[tokio::test]
async fn a_client_counter_restarted_before_a_sweep_does_not_leak_its_old_sessions() {
    let (store, clock) = store_with(|b| b.counter_ttl(Duration::from_secs(10)));
    let owner = jwt("nonce");
    let terms = client_terms(None, None);
    let old = open(&store, &owner, terms).await;

    clock.set(at(10));
    // No sweep yet: the counter restarts on the next creation.
    let new = open(&store, &owner, terms).await;

    clock.set(at(20));
    store.sweep().await;
    assert_eq!(store.session(new.id).await.unwrap(), None);
    assert_eq!(
        store.session(old.id).await.unwrap(),
        None,
        "the session of the restarted counter is never removed"
    );
    assert_eq!(stats(&store).await.sessions, 0);
}

// --- end_session and sessions_of ---

#[tokio::test]
async fn end_session_ends_it_now_and_an_unknown_id_is_false() {
    let (store, clock) = store();
    let token = insert(&store, json!({"token": "t", "grants": {"read": "all"}})).await;
    let session = open_for(&store, &token).await;

    clock.set(at(5));
    assert!(store.end_session(session.id).await.unwrap());
    let ended = store.session(session.id).await.unwrap().unwrap();
    assert_eq!(ended.ends_at, Some(at(5)));
    assert!(ended.has_ended(clock.now()));
    assert!(!ended.has_ended(Timestamp::from_millis((START + 5) * 1000 - 1)));

    clock.set(at(7));
    assert!(store.end_session(session.id).await.unwrap(), "still exists");
    assert_eq!(
        store.session(session.id).await.unwrap().unwrap().ends_at,
        Some(at(5)),
        "ending again does not move the end"
    );

    assert!(!store.end_session(SessionId::generate()).await.unwrap());
}

#[tokio::test]
async fn sessions_of_lists_only_the_owners_sessions_that_have_not_ended() {
    let (store, clock) = store();
    let a = insert(&store, json!({"token": "a", "grants": {"read": "all"}})).await;
    let b = insert(&store, json!({"token": "b", "grants": {"read": "all"}})).await;
    let short = insert(
        &store,
        json!({"token": "c", "grants": {"read": "all"}, "usage_expiration_time": 10}),
    )
    .await;
    let a1 = open_for(&store, &a).await;
    let a2 = open_for(&store, &a).await;
    let a3 = open_for(&store, &a).await;
    let b1 = open_for(&store, &b).await;
    let c1 = open_for(&store, &short).await;
    let j1 = open(&store, &jwt("a"), client_terms(None, Some(at(1_000)))).await;
    store.end_session(a2.id).await.unwrap();

    assert_eq!(
        live_ids(&store, &server(&a)).await,
        sorted(vec![a1.id, a3.id])
    );
    assert_eq!(live_ids(&store, &server(&b)).await, vec![b1.id]);
    assert_eq!(live_ids(&store, &server(&short)).await, vec![c1.id]);
    assert_eq!(live_ids(&store, &jwt("a")).await, vec![j1.id]);
    assert!(live_ids(&store, &jwt("other")).await.is_empty());

    let listed = store.sessions_of(&server(&b)).await.unwrap();
    assert_eq!(listed, vec![b1]);

    clock.set(at(10));
    assert!(live_ids(&store, &server(&short)).await.is_empty());
}

// --- ownership ---

#[tokio::test]
async fn record_owned_adds_the_video_to_the_session_once() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"create": {"session_owned": true}}}),
    )
    .await;
    let session = open_for(&store, &token).await;
    assert!(store.record_owned(session.id, "v1").await.unwrap());
    assert!(store.record_owned(session.id, "v2").await.unwrap());
    assert!(store.record_owned(session.id, "v1").await.unwrap());
    let owned = store.session(session.id).await.unwrap().unwrap().owned;
    assert_eq!(owned, ["v1", "v2"]);
    assert_eq!(live_ids(&store, &server(&token)).await, vec![session.id]);

    assert!(!store
        .record_owned(SessionId::generate(), "v3")
        .await
        .unwrap());
}

/// The trait: a store "must never report an entry past its retention"; record_owned answers
/// whether the session exists.
#[tokio::test]
async fn record_owned_into_a_session_past_its_retention_is_false() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"create": "all"}, "usage_expiration_time": 10}),
    )
    .await;
    let session = open_for(&store, &token).await;
    clock.set(at(10).saturating_add(RETENTION));
    assert_eq!(store.session(session.id).await.unwrap(), None);
    assert!(!store.record_owned(session.id, "v").await.unwrap());
}

// --- destroy cascade ---

#[tokio::test]
async fn destroy_removes_the_video_from_every_action_of_every_token() {
    let (store, _) = store();
    insert(
        &store,
        json!({"token": "t1", "grants": {
            "read": {"resources": ["v", "x"]},
            "update": {"resources": ["v"]},
            "destroy": {"resources": ["v"], "session_owned": true},
        }}),
    )
    .await;
    insert(
        &store,
        json!({"token": "t2", "grants": {"read": {"resources": ["v"]}, "update": "all"}}),
    )
    .await;

    let cascade = store.destroy_video("v").await.unwrap();
    assert_eq!(
        cascade,
        Cascade {
            tokens_changed: 2,
            tokens_deleted: 0,
            sessions_changed: 0,
        }
    );
    let t1 = read(&store, "t1").await.unwrap().token;
    assert_eq!(resources(&t1, Action::Read), ["x"]);
    assert_eq!(t1.grants.get(Action::Update), Some(Grant::default()));
    assert_eq!(t1.grants.get(Action::Destroy), Some(Grant::session_owned()));
    let t2 = read(&store, "t2").await.unwrap().token;
    assert_eq!(t2.grants.get(Action::Read), Some(Grant::default()));
    assert_eq!(t2.grants.get(Action::Update), Some(Grant::all()));

    assert_eq!(store.destroy_video("v").await.unwrap(), Cascade::default());
}

#[tokio::test]
async fn destroy_deletes_a_volatile_token_left_empty_and_keeps_a_non_volatile_one() {
    let (store, _) = store();
    let doomed = insert(
        &store,
        json!({"token": "doomed", "grants": {"read": {"resources": ["v"]}}, "volatile": true}),
    )
    .await;
    insert(
        &store,
        json!({"token": "more", "grants": {"read": {"resources": ["v", "w"]}}, "volatile": true}),
    )
    .await;
    insert(
        &store,
        json!({"token": "owning", "grants": {
            "read": {"resources": ["v"]}, "create": {"session_owned": true},
        }, "volatile": true}),
    )
    .await;
    insert(
        &store,
        json!({"token": "plain", "grants": {"read": {"resources": ["v"]}}}),
    )
    .await;
    let session = open_for(&store, &doomed).await;

    let cascade = store.destroy_video("v").await.unwrap();
    assert_eq!(
        cascade,
        Cascade {
            tokens_changed: 4,
            tokens_deleted: 1,
            sessions_changed: 0,
        }
    );
    assert_eq!(read(&store, "doomed").await, None);
    assert_eq!(store.session(session.id).await.unwrap(), None);
    assert!(live_ids(&store, &server(&doomed)).await.is_empty());

    let more = read(&store, "more").await.unwrap().token;
    assert_eq!(resources(&more, Action::Read), ["w"]);
    let owning = read(&store, "owning").await.unwrap().token;
    assert!(!owning.grants.is_empty());
    let plain = read(&store, "plain").await.unwrap().token;
    assert!(
        plain.grants.is_empty(),
        "a non-volatile token is kept, empty"
    );
    let counts = stats(&store).await;
    assert_eq!((counts.tokens, counts.sessions), (3, 0));
}

#[tokio::test]
async fn destroy_removes_the_video_from_the_sessions_owned_videos() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"create": {"session_owned": true}}}),
    )
    .await;
    let s1 = open_for(&store, &token).await;
    let s2 = open_for(&store, &token).await;
    let s3 = open(&store, &jwt("n"), client_terms(None, Some(at(1_000)))).await;
    let s4 = open_for(&store, &token).await;
    for (session, video) in [(&s1, "v"), (&s1, "w"), (&s2, "v"), (&s3, "v"), (&s4, "w")] {
        assert!(store.record_owned(session.id, video).await.unwrap());
    }

    let cascade = store.destroy_video("v").await.unwrap();
    assert_eq!(
        cascade,
        Cascade {
            tokens_changed: 0,
            tokens_deleted: 0,
            sessions_changed: 3,
        }
    );
    let owned = |s: Option<Session>| s.unwrap().owned;
    assert_eq!(owned(store.session(s1.id).await.unwrap()), ["w"]);
    assert!(owned(store.session(s2.id).await.unwrap()).is_empty());
    assert!(owned(store.session(s3.id).await.unwrap()).is_empty());
    assert_eq!(owned(store.session(s4.id).await.unwrap()), ["w"]);
    assert_eq!(store.destroy_video("v").await.unwrap(), Cascade::default());
}

#[tokio::test]
async fn destroy_leaves_a_token_that_does_not_name_the_video_untouched() {
    let (store, _) = store();
    let other = insert(
        &store,
        json!({"token": "other", "grants": {"read": {"resources": ["x", "vv", "V"]}, "update": "all"}, "volatile": true}),
    )
    .await;
    insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["v"]}}}),
    )
    .await;
    let cascade = store.destroy_video("v").await.unwrap();
    assert_eq!(cascade.tokens_changed, 1);
    assert_eq!(read(&store, "other").await.unwrap().token, other);
}

#[tokio::test]
async fn destroy_finds_tokens_through_an_index_kept_by_insert_update_and_delete() {
    let (store, _) = store();
    // Named by an update after the insert.
    insert(
        &store,
        json!({"token": "updated-in", "grants": {"read": {"resources": ["a"]}}}),
    )
    .await;
    let body = json!({"grants": {"read": {"resources": ["a", "v"]}}});
    update(&store, "updated-in", body).await;
    // Created after that update.
    insert(
        &store,
        json!({"token": "later", "grants": {"destroy": {"resources": ["v"]}}}),
    )
    .await;
    // No longer named after an update.
    insert(
        &store,
        json!({"token": "updated-out", "grants": {"read": {"resources": ["v"]}}}),
    )
    .await;
    let body = json!({"grants": {"read": {"resources": ["w"]}}});
    update(&store, "updated-out", body).await;
    // Deleted, then an id reused by a token that does not name it.
    insert(
        &store,
        json!({"token": "deleted", "grants": {"read": {"resources": ["v"]}}}),
    )
    .await;
    store.delete_token("deleted").await.unwrap().unwrap();
    insert(
        &store,
        json!({"token": "deleted", "grants": {"read": {"resources": ["w"]}}}),
    )
    .await;

    let cascade = store.destroy_video("v").await.unwrap();
    assert_eq!(cascade.tokens_changed, 2);
    assert_eq!(cascade.tokens_deleted, 0);
    let updated_in = read(&store, "updated-in").await.unwrap().token;
    assert_eq!(resources(&updated_in, Action::Read), ["a"]);
    let later = read(&store, "later").await.unwrap().token;
    assert_eq!(later.grants.get(Action::Destroy), Some(Grant::default()));
    let out = read(&store, "updated-out").await.unwrap().token;
    assert_eq!(resources(&out, Action::Read), ["w"]);

    // The index follows the cascade too: "a" is still found, "v" no longer.
    assert_eq!(store.destroy_video("a").await.unwrap().tokens_changed, 1);
    assert_eq!(store.destroy_video("v").await.unwrap(), Cascade::default());
}

#[tokio::test]
async fn destroy_of_an_unknown_video_changes_nothing() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["v"]}}, "volatile": true}),
    )
    .await;
    let session = open_for(&store, &token).await;
    store.record_owned(session.id, "v").await.unwrap();

    assert_eq!(
        store.destroy_video("unknown").await.unwrap(),
        Cascade::default()
    );
    assert_eq!(read(&store, "t").await.unwrap().token, token);
    assert_eq!(
        store.session(session.id).await.unwrap().unwrap().owned,
        ["v"]
    );
}

// --- sweeps ---

#[tokio::test]
async fn sweep_removes_expired_tokens_with_their_sessions_and_ended_sessions() {
    let (store, clock) = store();
    let expiring = insert(
        &store,
        json!({"token": "expiring", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    let short = insert(
        &store,
        json!({"token": "short", "grants": {"read": "all"}, "usage_expiration_time": 5}),
    )
    .await;
    let lasting = insert(
        &store,
        json!({"token": "lasting", "grants": {"read": "all"}, "expiration_date": START + 10 + 2 * 3_600}),
    )
    .await;
    let e1 = open_for(&store, &expiring).await;
    let e2 = open_for(&store, &expiring).await;
    let ended = open_for(&store, &short).await;
    let closed = open_for(&store, &lasting).await;
    let live = open_for(&store, &lasting).await;
    store.end_session(closed.id).await.unwrap();
    assert_eq!(
        stats(&store).await,
        StoreStats {
            tokens: 3,
            sessions: 5,
            swept_tokens: 0,
            swept_sessions: 0,
        }
    );

    clock.set(at(10).saturating_add(RETENTION));
    assert!(store.sweep().await > 0);
    assert_eq!(
        stats(&store).await,
        StoreStats {
            tokens: 2,
            sessions: 1,
            swept_tokens: 1,
            swept_sessions: 4,
        }
    );
    assert_eq!(read(&store, "expiring").await, None);
    for gone in [&e1, &e2, &ended, &closed] {
        assert_eq!(store.session(gone.id).await.unwrap(), None);
    }
    assert_eq!(read(&store, "short").await.unwrap().token, short);
    assert_eq!(read(&store, "lasting").await.unwrap().token, lasting);
    assert_eq!(store.session(live.id).await.unwrap(), Some(live));
    assert_eq!(store.sweep().await, 0, "nothing left that is due");
}

#[tokio::test]
async fn sweep_keeps_entries_that_are_not_yet_due() {
    let (store, clock) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10, "usage_expiration_time": 5}),
    )
    .await;
    let session = open_for(&store, &token).await;

    clock.set(
        at(5)
            .saturating_add(RETENTION)
            .saturating_sub(Duration::from_millis(1)),
    );
    assert_eq!(store.sweep().await, 0);
    assert_eq!(
        store.session(session.id).await.unwrap(),
        Some(session.clone())
    );

    clock.set(at(5).saturating_add(RETENTION));
    assert_eq!(store.sweep().await, 1);
    assert_eq!(store.session(session.id).await.unwrap(), None);
    assert_eq!(read(&store, "t").await.unwrap().token, token, "not due yet");

    clock.set(
        at(10)
            .saturating_add(RETENTION)
            .saturating_sub(Duration::from_millis(1)),
    );
    assert_eq!(store.sweep().await, 0);
    assert_eq!(stats(&store).await.tokens, 1);
    clock.set(at(10).saturating_add(RETENTION));
    assert_eq!(store.sweep().await, 1);
    assert_eq!(
        stats(&store).await,
        StoreStats {
            tokens: 0,
            sessions: 0,
            swept_tokens: 1,
            swept_sessions: 1,
        }
    );
}

#[tokio::test]
async fn sweep_follows_an_updated_expiration_date() {
    let (store, clock) = store();
    insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    let extend = update(&store, "t", json!({"expiration_date": START + 100})).await;
    extend.unwrap();

    clock.set(at(10).saturating_add(RETENTION));
    store.sweep().await;
    assert!(
        read(&store, "t").await.is_some(),
        "the old date no longer applies"
    );

    clock.set(at(100).saturating_add(RETENTION));
    store.sweep().await;
    assert_eq!(stats(&store).await.tokens, 0);
    assert_eq!(stats(&store).await.swept_tokens, 1);
}

#[tokio::test(start_paused = true)]
async fn the_background_sweeper_removes_due_entries() {
    let (store, clock) = store_with(|b| b.sweeper(true).sweep_interval(Duration::from_secs(1)));
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
    )
    .await;
    open_for(&store, &token).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stats(&store).await.tokens, 1, "nothing is due yet");

    clock.set(at(10).saturating_add(RETENTION));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stats(&store).await,
        StoreStats {
            tokens: 0,
            sessions: 0,
            swept_tokens: 1,
            swept_sessions: 1,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_store_handle_stops_the_sweeper() {
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    assert_eq!(tasks(), 0);
    let (store, _clock) = store_with(|b| b.sweeper(true).sweep_interval(Duration::from_secs(1)));
    assert_eq!(tasks(), 1, "the sweeper runs");
    let shared = Arc::downgrade(&store.shared);
    let other = store.clone();

    drop(store);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(tasks(), 1, "another handle is alive");
    assert_eq!(other.stats().await.unwrap().tokens, 0);

    drop(other);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(tasks(), 0, "the sweeper stopped");
    assert!(shared.upgrade().is_none(), "the store's state was freed");
}

#[tokio::test]
async fn no_sweeper_runs_when_disabled() {
    let (store, _) = store();
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
    drop(store);
}

#[test]
fn a_store_built_outside_a_runtime_works_without_a_sweeper_task() {
    let (store, clock) = store_with(|b| b.sweeper(true));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        insert(
            &store,
            json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10}),
        )
        .await;
        clock.set(at(10).saturating_add(RETENTION));
        assert_eq!(store.sweep().await, 1);
        assert_eq!(runtime_tasks(), 0);
    });
    drop(store);
}

fn runtime_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

// --- stats ---

#[tokio::test]
async fn stats_count_the_tokens_and_sessions_held() {
    let (store, _) = store();
    assert_eq!(stats(&store).await, StoreStats::default());
    let a = insert(&store, json!({"token": "a", "grants": {"read": "all"}})).await;
    insert(&store, json!({"token": "b", "grants": {}})).await;
    open_for(&store, &a).await;
    open_for(&store, &a).await;
    open(&store, &jwt("n"), client_terms(None, Some(at(100)))).await;
    assert_eq!(
        stats(&store).await,
        StoreStats {
            tokens: 2,
            sessions: 3,
            swept_tokens: 0,
            swept_sessions: 0,
        }
    );
    store.delete_token("a").await.unwrap();
    let counts = stats(&store).await;
    assert_eq!((counts.tokens, counts.sessions), (1, 1));
}

#[tokio::test]
async fn an_owners_set_forgets_swept_sessions_whatever_its_size() {
    let (store, clock) = store();
    let t = insert(
        &store,
        json!({"grants": {"read": "all"}, "usage_expiration_time": 10}),
    )
    .await;
    let owner = server(&t);
    for _ in 0..100 {
        assert!(matches!(
            create(&store, &owner, SessionTerms::of(&t)).await,
            SessionCreation::Created(_)
        ));
    }
    let held = |store: &MemoryStore| {
        store
            .shared
            .owners
            .get(&owner)
            .map(|o| o.sessions.to_vec().len())
    };
    assert_eq!(held(&store), Some(100), "a set past SessionSet::FEW");
    clock.advance(Duration::from_secs(10) + store.shared.retention);
    let last = create(&store, &owner, SessionTerms::of(&t)).await;
    assert_eq!(store.sweep().await, 100);
    assert_eq!(
        held(&store),
        Some(1),
        "only the session created after the others ended"
    );
    let SessionCreation::Created(last) = last else {
        panic!("created")
    };
    let listed = store.sessions_of(&owner).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![last.id]
    );
}

// --- the primitives the provided methods are built on ---

#[tokio::test]
async fn a_write_at_an_old_version_is_a_conflict_and_changes_nothing() {
    let (store, _) = store();
    insert(&store, json!({"token": "t", "grants": {"read": "all"}})).await;
    let read_once = read(&store, "t").await.unwrap();
    let mut first = (*read_once.token).clone();
    first.session_limit = Some(nz(2));
    let written = store
        .write_token("t", read_once.version, TokenWrite::Replace(first.clone()))
        .await
        .unwrap();
    let Written::Done(now) = written else {
        panic!("the first write applies: {written:?}");
    };
    assert_eq!(*now.token, first);
    assert_ne!(now.version, read_once.version, "a write moves the version");

    // A writer still holding the first read loses, whatever it wanted to write.
    let mut stale = (*read_once.token).clone();
    stale.hidden = true;
    for write in [TokenWrite::Replace(stale), TokenWrite::Delete] {
        assert_eq!(
            store
                .write_token("t", read_once.version, write)
                .await
                .unwrap(),
            Written::Conflict
        );
    }
    assert_eq!(read(&store, "t").await.unwrap().token.as_ref(), &first);
    assert_eq!(
        store
            .write_token("nope", read_once.version, TokenWrite::Delete)
            .await
            .unwrap(),
        Written::Missing
    );
}

#[tokio::test]
async fn a_token_deleted_and_created_again_is_not_the_one_a_writer_read() {
    let (store, _) = store();
    insert(&store, json!({"token": "t", "grants": {"read": "all"}})).await;
    let old = read(&store, "t").await.unwrap();
    store.delete_token("t").await.unwrap();
    insert(
        &store,
        json!({"token": "t", "grants": {"read": {"resources": ["v"]}}}),
    )
    .await;
    assert_eq!(
        store
            .write_token("t", old.version, TokenWrite::Delete)
            .await
            .unwrap(),
        Written::Conflict
    );
    assert!(read(&store, "t").await.is_some());
}

#[tokio::test]
async fn a_write_keeps_the_session_counter_and_deleting_takes_the_sessions() {
    let (store, _) = store();
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "session_limit": 5}),
    )
    .await;
    let session = open_for(&store, &token).await;
    let current = read(&store, "t").await.unwrap();
    assert_eq!(current.sessions_created, 1);
    let written = store
        .write_token(
            "t",
            current.version,
            TokenWrite::Replace((*current.token).clone()),
        )
        .await
        .unwrap();
    assert!(matches!(written, Written::Done(s) if s.sessions_created == 1));
    let current = read(&store, "t").await.unwrap();
    store
        .write_token("t", current.version, TokenWrite::Delete)
        .await
        .unwrap();
    assert_eq!(store.session(session.id).await.unwrap(), None);
}

#[tokio::test]
async fn the_one_lookup_skips_the_session_when_it_cannot_matter() {
    let (store, _) = store();
    let plain = insert(&store, json!({"token": "plain", "grants": {"read": "all"}})).await;
    let limited = insert(
        &store,
        json!({"token": "limited", "grants": {"read": "all"}, "session_limit": 2}),
    )
    .await;
    let session = open_for(&store, &limited).await;
    let both = store
        .lookup(Lookup {
            token: Some("limited"),
            session: Some(session.id),
        })
        .await;
    assert_eq!(both.token.unwrap().unwrap().token, limited);
    assert_eq!(both.session.unwrap(), Some(session.clone()));
    let no_sessions = store
        .lookup(Lookup {
            token: Some(plain.id.as_str()),
            session: Some(session.id),
        })
        .await;
    assert!(no_sessions.token.unwrap().is_some());
    assert_eq!(
        no_sessions.session.unwrap(),
        None,
        "plain needs no sessions"
    );
    let unknown = store
        .lookup(Lookup {
            token: Some("unknown"),
            session: Some(session.id),
        })
        .await;
    assert_eq!(unknown.token.unwrap(), None);
    assert_eq!(unknown.session.unwrap(), None);
    // A client token is verified elsewhere: only its session is looked up.
    let client = store
        .lookup(Lookup {
            token: None,
            session: Some(session.id),
        })
        .await;
    assert_eq!(client.session.unwrap(), Some(session));
}

#[tokio::test]
async fn each_sweep_reports_what_it_removed() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let (store, clock) =
        store_with(move |b| b.on_sweep(move |swept| seen.lock().unwrap().push(swept)));
    let token = insert(
        &store,
        json!({"token": "t", "grants": {"read": "all"}, "expiration_date": START + 10, "session_limit": 3}),
    )
    .await;
    open_for(&store, &token).await;
    open_for(&store, &token).await;
    assert_eq!(store.sweep().await, 0);
    assert!(
        reports.lock().unwrap().is_empty(),
        "nothing removed, nothing said"
    );
    clock.set(at(10).saturating_add(RETENTION));
    store.sweep().await;
    assert_eq!(
        *reports.lock().unwrap(),
        [Swept {
            tokens: 1,
            sessions: 2
        }]
    );
    assert_eq!(
        store.swept(),
        Swept {
            tokens: 1,
            sessions: 2
        }
    );
}

#[tokio::test]
async fn the_store_handle_reaches_the_same_store() {
    let (memory, _) = store();
    let handle = Store::new(memory.clone());
    let token = handle
        .insert_token(NewToken::from_value(json!({"grants": {"read": "all"}})).unwrap())
        .await
        .unwrap();
    assert_eq!(read(&memory, token.id.as_str()).await.unwrap().token, token);
    assert!(handle.ping().await.is_ok());
    assert_eq!(handle.stats().await.unwrap().tokens, 1);
}
