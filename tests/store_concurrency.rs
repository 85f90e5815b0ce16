//! Session limits under concurrency (SPEC 2.3): "under any concurrency ... exactly
//! `session_limit` creations succeed". Each round races 1,000 creations on the multi-threaded
//! runtime; every task waits at a gate that opens only once all of them are spawned, so they
//! really do run at the same time.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio::task::JoinSet;
use vidgate::session::{OwnerKey, SessionId};
use vidgate::store::{MemoryStore, SessionCreation, SessionTerms, StoreError, TokenStore};
use vidgate::token::{Action, AuthToken, Grant, Grants, NewToken, TokenId};

/// Creations raced per round.
const TASKS: usize = 1_000;
/// Rounds per test, each with a fresh owner.
const ROUNDS: usize = 100;
const LIMIT: u32 = 5;
/// A deadlock fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(60);

fn limit() -> Option<NonZeroU32> {
    NonZeroU32::new(LIMIT)
}

/// What a round of creations gave.
#[derive(Debug, Default)]
struct Tally {
    created: Vec<SessionId>,
    limit_reached: usize,
    owner_gone: usize,
}

impl Tally {
    fn of(results: Vec<Result<SessionCreation, StoreError>>) -> Self {
        let mut tally = Tally::default();
        for result in results {
            match result.expect("the memory store never fails") {
                SessionCreation::Created(session) => tally.created.push(session.id),
                SessionCreation::LimitReached => tally.limit_reached += 1,
                SessionCreation::OwnerGone => tally.owner_gone += 1,
            }
        }
        tally
    }

    fn created_set(&self) -> HashSet<SessionId> {
        let set: HashSet<SessionId> = self.created.iter().copied().collect();
        assert_eq!(set.len(), self.created.len(), "session ids are unique");
        set
    }
}

/// Spawns one task per owner in `owners`, all held at a gate until every one is spawned, then
/// released together; the results in spawn order are not needed, only counted.
async fn race(
    store: &MemoryStore,
    owners: impl IntoIterator<Item = (OwnerKey, SessionTerms)>,
) -> Vec<(OwnerKey, Result<SessionCreation, StoreError>)> {
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.clone().write_owned().await;
    let mut tasks = JoinSet::new();
    for (owner, terms) in owners {
        let (store, gate) = (store.clone(), gate.clone());
        tasks.spawn(async move {
            let _open = gate.read().await;
            let result = store.create_session(&owner, terms).await;
            (owner, result)
        });
    }
    drop(closed);
    tasks.join_all().await
}

async fn server_token(store: &MemoryStore) -> Arc<AuthToken> {
    let grants = Grants::new().with(Action::Read, Grant::all()).unwrap();
    let mut new = NewToken::new(grants);
    new.session_limit = limit();
    store.insert_token(new).await.unwrap()
}

async fn live_ids(store: &MemoryStore, owner: &OwnerKey) -> HashSet<SessionId> {
    let sessions = store.sessions_of(owner).await.unwrap();
    sessions.iter().map(|s| s.id).collect()
}

async fn within_deadline(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(DEADLINE, test)
        .await
        .expect("no deadlock: the test finished within its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_token_with_session_limit_5_gets_exactly_5_of_1000_concurrent_creations() {
    within_deadline(async {
        let store = MemoryStore::builder().build();
        for round in 0..ROUNDS {
            let token = server_token(&store).await;
            let owner = OwnerKey::Server(token.id.clone());
            let terms = SessionTerms::of(&token);
            let results = race(&store, (0..TASKS).map(|_| (owner.clone(), terms))).await;
            let tally = Tally::of(results.into_iter().map(|(_, r)| r).collect());

            assert_eq!(tally.created.len(), 5, "round {round}: {tally:?}");
            assert_eq!(tally.limit_reached, 995, "round {round}");
            assert_eq!(tally.owner_gone, 0, "round {round}");
            let stored = store.token(token.id.as_str()).await.unwrap().unwrap();
            assert_eq!(stored.sessions_created, 5, "round {round}");
            assert_eq!(live_ids(&store, &owner).await, tally.created_set());
        }
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.tokens, ROUNDS as u64);
        assert_eq!(stats.sessions, 5 * ROUNDS as u64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jwt_owner_with_session_limit_5_gets_exactly_5_of_1000_concurrent_creations() {
    within_deadline(async {
        let store = MemoryStore::builder().build();
        let terms = SessionTerms {
            limit: limit(),
            lifetime: NonZeroU32::new(600),
            keep_counter_until: None,
        };
        for round in 0..ROUNDS {
            let owner = OwnerKey::Jwt(Arc::from(format!("jti-{round}")));
            let results = race(&store, (0..TASKS).map(|_| (owner.clone(), terms))).await;
            let tally = Tally::of(results.into_iter().map(|(_, r)| r).collect());

            assert_eq!(tally.created.len(), 5, "round {round}: {tally:?}");
            assert_eq!(tally.limit_reached, 995, "round {round}");
            assert_eq!(tally.owner_gone, 0, "round {round}");
            assert_eq!(live_ids(&store, &owner).await, tally.created_set());
        }
        assert_eq!(store.stats().await.unwrap().sessions, 5 * ROUNDS as u64);
    })
    .await;
}

/// Owners that share an id string but not a kind race each other: each counter is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owners_racing_each_other_each_get_exactly_their_limit() {
    within_deadline(async {
        let store = MemoryStore::builder().build();
        for round in 0..20 {
            let id = format!("shared-{round}");
            let token = {
                let grants = Grants::new().with(Action::Read, Grant::all()).unwrap();
                let mut new = NewToken::new(grants);
                new.id = Some(TokenId::new(&id).unwrap());
                new.session_limit = limit();
                store.insert_token(new).await.unwrap()
            };
            let client = SessionTerms {
                limit: limit(),
                lifetime: None,
                keep_counter_until: None,
            };
            let owners = [
                (OwnerKey::Server(token.id.clone()), SessionTerms::of(&token)),
                (OwnerKey::Jwt(Arc::from(id.as_str())), client),
                (OwnerKey::Ziggeo(Arc::from(id.as_str())), client),
            ];
            let racers = (0..TASKS).map(|i| owners[i % owners.len()].clone());
            let results = race(&store, racers).await;
            for (owner, _) in &owners {
                let mine: Vec<_> = results
                    .iter()
                    .filter(|(o, _)| o == owner)
                    .map(|(_, r)| r.clone())
                    .collect();
                let total = mine.len();
                let tally = Tally::of(mine);
                assert_eq!(tally.created.len(), 5, "round {round}, {owner:?}");
                assert_eq!(tally.limit_reached, total - 5, "round {round}, {owner:?}");
                assert_eq!(live_ids(&store, owner).await, tally.created_set());
            }
        }
    })
    .await;
}

/// A delete racing the creations: never more than the limit, every session created before the
/// delete goes with the token, none is created after it, and nothing deadlocks or panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creations_racing_a_delete_never_exceed_the_limit_and_leave_nothing_behind() {
    within_deadline(async {
        let store = MemoryStore::builder().build();
        for round in 0..ROUNDS {
            let token = server_token(&store).await;
            let owner = OwnerKey::Server(token.id.clone());
            let terms = SessionTerms::of(&token);

            let gate = Arc::new(RwLock::new(()));
            let closed = gate.clone().write_owned().await;
            let mut creations = JoinSet::new();
            // The delete is spawned at a different place among the creations each round: among
            // the very first ones in half the rounds, so that it also lands before the limit.
            let delete_at = if round % 2 == 0 {
                round % 8
            } else {
                (round * 37) % TASKS
            };
            let mut delete = None;
            for i in 0..TASKS {
                if i == delete_at {
                    let (store, gate, id) = (store.clone(), gate.clone(), token.id.clone());
                    delete = Some(tokio::spawn(async move {
                        let _open = gate.read().await;
                        store.delete_token(id.as_str()).await
                    }));
                }
                let (store, gate, owner) = (store.clone(), gate.clone(), owner.clone());
                creations.spawn(async move {
                    let _open = gate.read().await;
                    store.create_session(&owner, terms).await
                });
            }
            drop(closed);
            let tally = Tally::of(creations.join_all().await);
            let deleted = delete
                .expect("spawned")
                .await
                .expect("the delete did not panic")
                .unwrap()
                .expect("the token existed");

            assert!(tally.created.len() <= 5, "round {round}: {tally:?}");
            assert_eq!(
                tally.created.len() + tally.limit_reached + tally.owner_gone,
                TASKS
            );
            assert!(
                tally.limit_reached == 0 || tally.created.len() == 5,
                "round {round}: refused for the limit before reaching it: {tally:?}"
            );
            assert_eq!(
                deleted.sessions_created,
                tally.created.len() as u64,
                "round {round}: no session is created after the delete"
            );
            assert_eq!(store.token(token.id.as_str()).await.unwrap(), None);
            assert!(live_ids(&store, &owner).await.is_empty());
            for id in &tally.created {
                assert_eq!(store.session(*id).await.unwrap(), None, "round {round}");
            }
        }
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.tokens, stats.sessions), (0, 0));
    })
    .await;
}
