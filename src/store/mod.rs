//! Where tokens and sessions live: the [`TokenStore`] trait, and its implementations.
//!
//! The trait is what the gateway calls; nothing above it knows which backend answers. Every
//! method is async so that a networked backend (Redis) fits behind it unchanged. A store
//! enforces what must be atomic — `session_limit` above all — and expiry: an expired entry is
//! refused (or reported expired) by every read, whether or not a sweep has removed it yet.
//!
//! The store does not decide requests (see [`crate::policy`]).
//!
//! ```
//! use vidgate::store::{MemoryStore, SessionCreation, SessionTerms, TokenStore};
//! use vidgate::token::{Action, Grant, Grants, NewToken};
//! use vidgate::session::OwnerKey;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vidgate::store::StoreError> {
//! let store = MemoryStore::builder().build();
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

mod memory;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

pub use memory::{MemoryStore, MemoryStoreBuilder};

use crate::clock::Timestamp;
use crate::session::{OwnerKey, Session, SessionId};
use crate::token::{AuthToken, NewToken, TokenPatch};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A token with the requested id exists already (409 `token_exists`).
    #[error("a token with this id exists already")]
    TokenExists,
    /// The store could not be reached or answered nonsense: callers fail closed
    /// (503 `store_unavailable`).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// A stored token and its session counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token itself (shared: reads do not copy it).
    pub token: Arc<AuthToken>,
    /// How many sessions were created with it so far.
    pub sessions_created: u64,
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

/// Counts for the gauges and sweep counters (SPEC 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tokens held (expired ones within their retention included).
    pub tokens: u64,
    /// Sessions held (ended ones within their retention included).
    pub sessions: u64,
    /// Tokens removed by expiry sweeps so far.
    pub swept_tokens: u64,
    /// Sessions removed by expiry sweeps so far.
    pub swept_sessions: u64,
}

/// The storage of tokens and sessions.
///
/// Implementations must make [`create_session`](TokenStore::create_session) atomic (exactly
/// `session_limit` creations succeed under any concurrency), must never report an entry past
/// its retention, and must answer [`StoreError::Unavailable`] rather than guess when their
/// backend fails.
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

    /// Apply a partial update; `None` if there is no such token.
    fn update_token(
        &self,
        id: &str,
        patch: &TokenPatch,
    ) -> impl Future<Output = Result<Option<Updated>, StoreError>> + Send;

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

    /// The destroy cascade (SPEC 2.5): remove `video` from every server token's resources and
    /// every session's owned videos, deleting volatile tokens that become empty.
    fn destroy_video(
        &self,
        video: &str,
    ) -> impl Future<Output = Result<Cascade, StoreError>> + Send;

    /// Counts for the metrics.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send;
}
