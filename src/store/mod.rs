//! Where tokens and sessions live: the [`TokenStore`] trait a backend implements, the
//! [`Store`] handle the gateway holds (any backend, chosen at run time), and the in-memory
//! [`MemoryStore`].
//!
//! A backend stores and answers; it does not decide requests, and it keeps no domain rules
//! that a networked backend would have to write again in a script:
//! - it makes atomic what must be atomic: session creation against `session_limit`
//!   ([`TokenStore::create_session`]), and every token write, as a compare-and-swap on the
//!   token's [`Version`] ([`TokenStore::write_token`]);
//! - it enforces expiry on every read (an expired entry is refused, or reported expired within
//!   its retention, whether or not a sweep has removed it yet);
//! - it answers [`StoreError`] rather than guess when it cannot reach its data.
//!
//! On top of those primitives, the trait's provided methods hold the domain rules in Rust, once
//! for every backend: a partial update and the volatile deletion it may cause
//! ([`TokenStore::update_token`]), the destroy cascade ([`TokenStore::destroy_video`], retried
//! by [`destroy_video_retrying`] after an origin's 2xx), and the one lookup a request makes
//! ([`TokenStore::lookup`]).
//!
//! ```
//! use vidgate::store::{MemoryStore, SessionCreation, SessionTerms, Store, TokenStore};
//! use vidgate::token::{Action, Grant, Grants, NewToken};
//! use vidgate::session::OwnerKey;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vidgate::store::StoreError> {
//! // Any backend, behind one handle.
//! let store = Store::new(MemoryStore::builder().build());
//! let mut new = NewToken::new(Grants::new().with(Action::Read, Grant::all()).unwrap());
//! new.session_limit = std::num::NonZeroU32::new(1);
//! let token = store.insert_token(new).await?;
//!
//! let owner = OwnerKey::Server(token.id.clone());
//! let first = store.create_session(&owner, SessionTerms::of(&token)).await?;
//! assert!(matches!(first, SessionCreation::Created(_)));
//! let second = store.create_session(&owner, SessionTerms::of(&token)).await?;
//! assert_eq!(second, SessionCreation::LimitReached);
//! # Ok(())
//! # }
//! ```

mod cascade;
mod handle;
mod memory;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

pub use cascade::destroy_video_retrying;
pub use handle::Store;
pub use memory::{MemoryStore, MemoryStoreBuilder, Swept};

use crate::clock::Timestamp;
use crate::session::{OwnerKey, Session, SessionId};
use crate::token::{AuthToken, NewToken, TokenId, TokenPatch};

/// The most times an update or a cascade re-reads a token that changed under it before giving
/// up: a write conflicts only with another write to the same token.
const MAX_WRITE_ATTEMPTS: usize = 16;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A token with the requested id exists already (409 `token_exists`).
    #[error("a token with this id exists already")]
    TokenExists,
    /// The store could not be reached or answered nonsense: callers fail closed
    /// (503 `store_unavailable`).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Like [`StoreError::Unavailable`], keeping what the backend reported as its source.
    #[error("the store is unavailable: {what}")]
    Backend {
        /// What failed, for a person (never a key or a token).
        what: String,
        /// The backend's own error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// A backend failure, with its cause kept as the error's source.
    pub fn backend(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            what: what.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the store could not answer (callers fail closed), as opposed to refusing a write.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Backend { .. }
        )
    }
}

/// Errors are equal when they say the same thing (a source is compared by its message).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreError::TokenExists, StoreError::TokenExists) => true,
            (StoreError::Unavailable(a), StoreError::Unavailable(b)) => a == b,
            (
                StoreError::Backend { what, source },
                StoreError::Backend {
                    what: other_what,
                    source: other_source,
                },
            ) => what == other_what && source.to_string() == other_source.to_string(),
            _ => false,
        }
    }
}

impl Eq for StoreError {}

/// Which write of a token a [`StoredToken`] was read at: a write that names an older version
/// is refused ([`Written::Conflict`]). Opaque; only the store that issued it can compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u64);

impl Version {
    /// A backend's version number.
    pub const fn new(n: u64) -> Self {
        Version(n)
    }

    /// The number, for a backend to store.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A stored token and its session counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token itself (shared: reads do not copy it).
    pub token: Arc<AuthToken>,
    /// How many sessions were created with it so far.
    pub sessions_created: u64,
    /// The write it was read at, for [`TokenStore::write_token`].
    pub version: Version,
}

impl StoredToken {
    /// The token's JSON object as the admin API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        self.token.to_json(self.sessions_created)
    }
}

/// The result of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The token after the update.
    pub token: StoredToken,
    /// Whether the update left a volatile token empty, so it was deleted (SPEC 1.4).
    pub deleted: bool,
}

/// A write of a token, decided by the caller from the version it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenWrite {
    /// Replace the token's fields (its session counter stays the store's).
    Replace(AuthToken),
    /// Delete the token and its sessions.
    Delete,
}

/// The outcome of [`TokenStore::write_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written: the token as it now is (for a deletion, as it was).
    Done(StoredToken),
    /// The token changed since it was read: read it again and decide again.
    Conflict,
    /// There is no such token (any more).
    Missing,
}

/// What a session is created under: the limits of the token that opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTerms {
    /// At most this many sessions, ever, for the owner.
    pub limit: Option<NonZeroU32>,
    /// Each session ends this many seconds after it was created.
    pub lifetime: Option<NonZeroU32>,
    /// Until when a client token's session counter must be kept (its expiry plus the leeway,
    /// or the counter TTL). Server tokens keep their counter in the token itself.
    pub keep_counter_until: Option<Timestamp>,
}

impl SessionTerms {
    /// The terms of a token. For a server token the store re-reads the stored token when it
    /// creates the session, so that a concurrent update is honoured.
    pub fn of(token: &AuthToken) -> Self {
        SessionTerms {
            limit: token.session_limit,
            lifetime: token.usage_expiration_time,
            keep_counter_until: token.expiration_date,
        }
    }
}

/// The outcome of [`TokenStore::create_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCreation {
    /// A new session.
    Created(Session),
    /// The owner has used up its `session_limit` (403 `session_limit_reached`).
    LimitReached,
    /// The server token no longer exists (it was deleted or expired meanwhile).
    OwnerGone,
}

/// What a destroy cascade changed (SPEC 2.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cascade {
    /// Tokens whose resources lost the video.
    pub tokens_changed: usize,
    /// Volatile tokens deleted because they became empty.
    pub tokens_deleted: usize,
    /// Sessions whose owned videos lost it.
    pub sessions_changed: usize,
}

/// Counts for the gauges (SPEC 4), the same on every backend. Sweeps are a backend's own
/// business: the memory store reports them as it makes them ([`MemoryStoreBuilder::on_sweep`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tokens held (expired ones within their retention included).
    pub tokens: u64,
    /// Sessions held (ended ones within their retention included).
    pub sessions: u64,
}

/// What a request needs from the store, asked for in one call ([`TokenStore::lookup`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The server token the request presents, if it presents one (a client token is verified
    /// offline and needs no lookup).
    pub token: Option<&'a str>,
    /// The session the request presents, if any.
    pub session: Option<SessionId>,
}

impl Lookup<'_> {
    /// Whether the session needs looking up, given what was found for the token: for a request
    /// without a server token (its client token was verified offline), or for a token that was
    /// found and needs sessions. Elsewhere the decision never reads it.
    pub fn session_matters(&self, token: &Result<Option<StoredToken>, StoreError>) -> bool {
        match (self.token, token) {
            (None, _) => true,
            (Some(_), Ok(Some(stored))) => stored.token.needs_sessions(),
            (Some(_), _) => false,
        }
    }
}

/// The answer to a [`Lookup`]: the token's and the session's results apart, so that a failure
/// of one does not hide the other (an expired token is refused as expired, whatever happened to
/// its session's lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The token: `Ok(None)` when it was not asked for or does not exist.
    pub token: Result<Option<StoredToken>, StoreError>,
    /// The session: `Ok(None)` when it was not asked for, does not exist, or cannot matter (the
    /// token asked for was not found, or needs no sessions).
    pub session: Result<Option<Session>, StoreError>,
}

/// The storage of tokens and sessions: what a backend implements.
///
/// Implementations must make [`create_session`](TokenStore::create_session) atomic (exactly
/// `session_limit` creations succeed under any concurrency), and
/// [`write_token`](TokenStore::write_token) a compare-and-swap; must never report an entry
/// past its retention; and must answer [`StoreError::Unavailable`] (or
/// [`StoreError::Backend`]) rather than guess when their backend fails. The provided methods
/// build the domain's operations from these; a backend may override them to save round trips,
/// not to change what they do.
///
/// The gateway holds a backend as a [`Store`], which boxes its futures: implementors write
/// plain `async fn`s.
pub trait TokenStore: Send + Sync + 'static {
    /// Store a new token (generating its id if none was given); [`StoreError::TokenExists`]
    /// if the id is taken.
    fn insert_token(
        &self,
        token: NewToken,
    ) -> impl Future<Output = Result<Arc<AuthToken>, StoreError>> + Send;

    /// The token with this id, including one expired within its retention.
    fn token(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send;

    /// Write token `id` if it is still at `version` (read with [`TokenStore::token`]):
    /// replace its fields, or delete it and its sessions. A token past its retention is
    /// [`Written::Missing`].
    fn write_token(
        &self,
        id: &str,
        version: Version,
        write: TokenWrite,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// Delete a token and its sessions; the token as it was, `None` if there was none.
    fn delete_token(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send;

    /// Tokens in `(created_at, id)` order, skipping `skip`, at most `limit`.
    fn list_tokens(
        &self,
        skip: usize,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send;

    /// The session with this id, including one ended within its retention.
    fn session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Create a session for `owner`, atomically counted against its limit.
    fn create_session(
        &self,
        owner: &OwnerKey,
        terms: SessionTerms,
    ) -> impl Future<Output = Result<SessionCreation, StoreError>> + Send;

    /// End a session now (it then answers `session_expired` for the retention); whether it
    /// existed.
    fn end_session(&self, id: SessionId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The owner's sessions that have not ended.
    fn sessions_of(
        &self,
        owner: &OwnerKey,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Record that `video` was created in `session` (SPEC 2.4); whether the session exists.
    fn record_owned(
        &self,
        session: SessionId,
        video: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The server tokens whose resources may name `video` (every one that does, and perhaps a
    /// few that do not): the candidates of the destroy cascade.
    fn tokens_naming(
        &self,
        video: &str,
    ) -> impl Future<Output = Result<Vec<TokenId>, StoreError>> + Send;

    /// Remove `video` from every session's owned videos; how many sessions had it.
    fn disown(&self, video: &str) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Counts for the gauges.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send;

    /// Whether the store answers now (`/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What a request needs, in one call: its server token and its session (SPEC 2.6 steps 3
    /// and 4). The session is looked up only when it can matter
    /// ([`Lookup::session_matters`]).
    fn lookup(&self, request: Lookup<'_>) -> impl Future<Output = Found> + Send {
        async move {
            let token = match request.token {
                Some(id) => self.token(id).await,
                None => Ok(None),
            };
            let session = match request.session {
                Some(id) if request.session_matters(&token) => self.session(id).await,
                _ => Ok(None),
            };
            Found { token, session }
        }
    }

    /// Apply a partial update; `None` if there is no such token. A volatile token the update
    /// leaves empty is deleted in the same write (SPEC 1.4), and reported as updated and
    /// deleted.
    fn update_token(
        &self,
        id: &str,
        patch: &TokenPatch,
    ) -> impl Future<Output = Result<Option<Updated>, StoreError>> + Send {
        async move {
            let rewritten = rewrite_token(self, id, |token| Some(patch.apply(token))).await?;
            Ok(match rewritten {
                Rewritten::Written {
                    token,
                    stored,
                    deleted,
                } => Some(Updated {
                    token: StoredToken {
                        token: Arc::new(token),
                        ..stored
                    },
                    deleted,
                }),
                Rewritten::Missing | Rewritten::Unchanged => None,
            })
        }
    }

    /// The destroy cascade (SPEC 2.5): remove `video` from every server token's resources and
    /// every session's owned videos, deleting volatile tokens that become empty. Atomic per
    /// token, not across tokens.
    fn destroy_video(
        &self,
        video: &str,
    ) -> impl Future<Output = Result<Cascade, StoreError>> + Send {
        async move {
            let mut report = Cascade::default();
            for id in self.tokens_naming(video).await? {
                let rewritten = rewrite_token(self, id.as_str(), |token| {
                    let mut token = token.clone();
                    token.grants.remove_resource(video).then_some(token)
                })
                .await?;
                if let Rewritten::Written { deleted, .. } = rewritten {
                    report.tokens_changed += 1;
                    report.tokens_deleted += usize::from(deleted);
                }
            }
            report.sessions_changed = self.disown(video).await?;
            Ok(report)
        }
    }
}

/// What [`rewrite_token`] did.
enum Rewritten {
    /// No such token.
    Missing,
    /// The change did not apply to the token.
    Unchanged,
    /// Written: the token as changed, the store's answer, and whether the change left a
    /// volatile token empty, so that it was deleted.
    Written {
        token: AuthToken,
        stored: StoredToken,
        deleted: bool,
    },
}

/// Read token `id`, change it with `change` (`None`: leave it), and write it back if nobody
/// wrote it meanwhile, else start again. A volatile token the change leaves empty is deleted
/// instead (SPEC 1.4).
async fn rewrite_token<S: TokenStore + ?Sized>(
    store: &S,
    id: &str,
    change: impl Fn(&AuthToken) -> Option<AuthToken> + Send + Sync,
) -> Result<Rewritten, StoreError> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(current) = store.token(id).await? else {
            return Ok(Rewritten::Missing);
        };
        let Some(token) = change(&current.token) else {
            return Ok(Rewritten::Unchanged);
        };
        let deleted = token.is_doomed();
        let write = if deleted {
            TokenWrite::Delete
        } else {
            TokenWrite::Replace(token.clone())
        };
        match store.write_token(id, current.version, write).await? {
            Written::Done(stored) => {
                return Ok(Rewritten::Written {
                    token,
                    stored,
                    deleted,
                })
            }
            Written::Missing => return Ok(Rewritten::Missing),
            Written::Conflict => continue,
        }
    }
    Err(StoreError::Unavailable(
        "a token kept changing while it was being written".into(),
    ))
}
