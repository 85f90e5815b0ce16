//! The in-memory store: tokens, sessions and counters in `dashmap`s, with expiry sweeps in a
//! background task.
//!
//! Rules that keep it correct under concurrency:
//! - every read checks expiry itself, so correctness never waits for the sweeper;
//! - a `dashmap` guard is never held across an `.await`;
//! - nested locks are only ever taken in this order: `tokens` → `owners` → `by_video` →
//!   `sessions` → `owned_by_video` → the expiry queues, so no two operations can deadlock.
//!
//! The sweeper is woken every `sweep_interval`, takes the expiry buckets that are due, and
//! removes their entries in small batches, yielding in between, so that a sweep of a million
//! entries never holds a lock for more than one removal. It stops when the last handle to the
//! store is dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use dashmap::DashMap;
use foldhash::fast::RandomState;
use smallvec::SmallVec;
use tokio::sync::Notify;

use super::{
    Found, Lookup, SessionCreation, SessionTerms, StoreError, StoreStats, StoredToken, TokenStore,
    TokenWrite, Version, Written,
};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::session::{OwnerKey, Session, SessionId};
use crate::token::{AuthToken, NewToken, TokenId};

type Map<K, V> = DashMap<K, V, RandomState>;

/// How many entries a sweep removes between two yields to the runtime.
const SWEEP_BATCH: usize = 256;

/// A token, its session counter, and the write it is at.
struct TokenEntry {
    token: Arc<AuthToken>,
    sessions_created: u64,
    /// Drawn from [`Shared::versions`] at each write, so that a token deleted and created again
    /// under the same id is never mistaken for the one a writer read.
    version: u64,
}

/// An owner's sessions; for a client token also its counter.
#[derive(Default)]
struct OwnerEntry {
    /// Sessions created, for client owners (server tokens count in their [`TokenEntry`]).
    created: u64,
    /// Until when a client owner's counter is kept; `None` for a server token, whose owner
    /// entry goes with the token.
    keep_until: Option<Timestamp>,
    /// Its sessions still held (live, or ended within their retention).
    sessions: SessionSet,
}

/// An owner's session ids: a short list for the usual handful, a hash set once there are
/// many, so that adding and removing one stays cheap even for a token with millions.
enum SessionSet {
    Few(Vec<SessionId>),
    Many(std::collections::HashSet<SessionId, RandomState>),
}

impl Default for SessionSet {
    fn default() -> Self {
        SessionSet::Few(Vec::new())
    }
}

impl SessionSet {
    /// Past this many, a list becomes a set.
    const FEW: usize = 32;

    fn insert(&mut self, id: SessionId) {
        match self {
            SessionSet::Few(list) if list.len() < Self::FEW => list.push(id),
            SessionSet::Few(list) => {
                let mut set: std::collections::HashSet<_, _> = list.drain(..).collect();
                set.insert(id);
                *self = SessionSet::Many(set);
            }
            SessionSet::Many(set) => {
                set.insert(id);
            }
        }
    }

    fn remove(&mut self, id: SessionId) {
        match self {
            SessionSet::Few(list) => list.retain(|s| *s != id),
            SessionSet::Many(set) => {
                set.remove(&id);
            }
        }
    }

    fn to_vec(&self) -> Vec<SessionId> {
        match self {
            SessionSet::Few(list) => list.clone(),
            SessionSet::Many(set) => set.iter().copied().collect(),
        }
    }

    fn into_vec(self) -> Vec<SessionId> {
        match self {
            SessionSet::Few(list) => list,
            SessionSet::Many(set) => set.into_iter().collect(),
        }
    }
}

struct SessionEntry {
    owner: OwnerKey,
    created_at: Timestamp,
    ends_at: Option<Timestamp>,
    owned: Vec<String>,
}

/// Entries due for removal, bucketed by the second in which they become removable.
struct ExpiryQueue<K>(Mutex<BTreeMap<i64, Vec<K>>>);

impl<K> ExpiryQueue<K> {
    fn new() -> Self {
        ExpiryQueue(Mutex::new(BTreeMap::new()))
    }

    fn push(&self, due: Timestamp, key: K) {
        // Round up, so an entry is never taken before it is due.
        let second = due.as_millis().saturating_add(999).div_euclid(1000);
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        queue.entry(second).or_default().push(key);
    }

    /// Every key whose bucket is due at `now`.
    fn take_due(&self, now: Timestamp) -> Vec<K> {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let later = queue.split_off(&(now.as_secs() + 1));
        let due = std::mem::replace(&mut *queue, later);
        drop(queue);
        due.into_values().flatten().collect()
    }
}

struct Shared {
    clock: Arc<dyn Clock>,
    retention: Duration,
    counter_ttl: Duration,
    tokens: Map<TokenId, TokenEntry>,
    owners: Map<OwnerKey, OwnerEntry>,
    /// Hash of a video id → tokens naming it (a hash collision only adds a candidate that the
    /// cascade then finds does not name the video).
    by_video: Map<u64, SmallVec<[TokenId; 1]>>,
    video_hasher: RandomState,
    sessions: Map<SessionId, SessionEntry>,
    owned_by_video: Map<Box<str>, SmallVec<[SessionId; 1]>>,
    token_expiry: ExpiryQueue<TokenId>,
    session_expiry: ExpiryQueue<SessionId>,
    owner_expiry: ExpiryQueue<OwnerKey>,
    /// The next token version.
    versions: AtomicU64,
    swept_tokens: AtomicU64,
    swept_sessions: AtomicU64,
    /// Told what each sweep removed (the server counts it in `vidgate_sweep_removed_total`).
    on_sweep: Option<SweepHook>,
}

/// Called after a sweep that removed something.
type SweepHook = Arc<dyn Fn(Swept) + Send + Sync>;

/// Entries removed by expiry sweeps: by one sweep, or ([`MemoryStore::swept`]) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Tokens removed past their retention.
    pub tokens: u64,
    /// Sessions removed past their retention (those of removed tokens included).
    pub sessions: u64,
}

/// The in-memory [`TokenStore`]: fast, single-process, lost on restart.
///
/// Cloning gives another handle to the same store. Built inside a Tokio runtime, it runs a
/// sweeper task that removes expired entries and stops when the last handle is dropped.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    _stop: Arc<StopSweeper>,
}

/// Stops the sweeper when the last store handle goes.
struct StopSweeper(Arc<Notify>);

impl Drop for StopSweeper {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Configures a [`MemoryStore`].
pub struct MemoryStoreBuilder {
    clock: Arc<dyn Clock>,
    retention: Duration,
    counter_ttl: Duration,
    sweep_interval: Duration,
    sweeper: bool,
    on_sweep: Option<SweepHook>,
}

impl MemoryStoreBuilder {
    /// Read time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keep expired tokens and ended sessions readable this long (`store.expired_retention`,
    /// default 24 h).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Keep a client token's session counter this long when the token has no expiry
    /// (`client_tokens.counter_ttl`, default 30 days).
    pub fn counter_ttl(mut self, ttl: Duration) -> Self {
        self.counter_ttl = ttl;
        self
    }

    /// Sweep this often (`store.sweep_interval`, default 1 s).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Whether to run the background sweeper (default true). Without it, expired entries are
    /// still refused, and removed only by [`MemoryStore::sweep`].
    pub fn sweeper(mut self, run: bool) -> Self {
        self.sweeper = run;
        self
    }

    /// Call `hook` with what each sweep removed, when it removed anything (the server counts
    /// it in `vidgate_sweep_removed_total`). It runs on the sweeper's task: keep it quick.
    pub fn on_sweep(mut self, hook: impl Fn(Swept) + Send + Sync + 'static) -> Self {
        self.on_sweep = Some(Arc::new(hook));
        self
    }

    /// The store. The sweeper starts only when called within a Tokio runtime.
    pub fn build(self) -> MemoryStore {
        let shared = Arc::new(Shared {
            clock: self.clock,
            retention: self.retention,
            counter_ttl: self.counter_ttl,
            tokens: Map::default(),
            owners: Map::default(),
            by_video: Map::default(),
            video_hasher: RandomState::default(),
            sessions: Map::default(),
            owned_by_video: Map::default(),
            token_expiry: ExpiryQueue::new(),
            session_expiry: ExpiryQueue::new(),
            owner_expiry: ExpiryQueue::new(),
            versions: AtomicU64::new(0),
            swept_tokens: AtomicU64::new(0),
            swept_sessions: AtomicU64::new(0),
            on_sweep: self.on_sweep,
        });
        let stop = Arc::new(Notify::new());
        if self.sweeper {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(run_sweeper(
                    Arc::downgrade(&shared),
                    self.sweep_interval.max(Duration::from_millis(1)),
                    stop.clone(),
                ));
            }
        }
        MemoryStore {
            shared,
            _stop: Arc::new(StopSweeper(stop)),
        }
    }
}

async fn run_sweeper(shared: Weak<Shared>, interval: Duration, stop: Arc<Notify>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            _ = ticks.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            break;
        };
        shared.sweep().await;
    }
    tracing::debug!("memory store sweeper stopped");
}

impl MemoryStore {
    /// A builder with the defaults of SPEC 5.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            clock: Arc::new(SystemClock),
            retention: Duration::from_secs(24 * 3600),
            counter_ttl: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(1),
            sweeper: true,
            on_sweep: None,
        }
    }

    /// Remove every entry whose retention has passed, in batches; how many were removed.
    /// The background sweeper calls this; tests may too.
    pub async fn sweep(&self) -> usize {
        self.shared.sweep().await
    }

    /// What sweeps have removed since the store was built.
    pub fn swept(&self) -> Swept {
        Swept {
            tokens: self.shared.swept_tokens.load(Ordering::Relaxed),
            sessions: self.shared.swept_sessions.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether an entry that ends at `end` is still kept at `now`.
    fn retained(&self, end: Option<Timestamp>, now: Timestamp) -> bool {
        end.is_none_or(|end| now < end.saturating_add(self.retention))
    }

    fn video_hash(&self, video: &str) -> u64 {
        use std::hash::BuildHasher;
        self.video_hasher.hash_one(video)
    }

    /// Move `id` in the video index from the videos of `old` to those of `new`.
    fn reindex(&self, id: &TokenId, old: &[&str], new: &[&str]) {
        let old: SmallVec<[u64; 4]> = old.iter().map(|v| self.video_hash(v)).collect();
        let new: SmallVec<[u64; 4]> = new.iter().map(|v| self.video_hash(v)).collect();
        for h in old.iter().filter(|h| !new.contains(h)) {
            self.by_video.remove_if_mut(h, |_, ids| {
                ids.retain(|x| x != id);
                ids.is_empty()
            });
        }
        for h in new.iter().filter(|h| !old.contains(h)) {
            let mut ids = self.by_video.entry(*h).or_default();
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }

    /// Clean up after a token left the map: its index entries, sessions and owner entry.
    /// Returns how many sessions went with it.
    fn forget_token(&self, id: &TokenId, entry: &TokenEntry) -> u64 {
        self.reindex(id, &entry.token.grants.videos(), &[]);
        let Some((_, owner)) = self.owners.remove(&OwnerKey::Server(id.clone())) else {
            return 0;
        };
        let mut forgotten = 0;
        for session in owner.sessions.into_vec() {
            if self.forget_session(session) {
                forgotten += 1;
            }
        }
        forgotten
    }

    fn forget_session(&self, id: SessionId) -> bool {
        let Some((_, session)) = self.sessions.remove(&id) else {
            return false;
        };
        self.unindex_owned(id, &session.owned);
        true
    }

    fn unindex_owned(&self, id: SessionId, owned: &[String]) {
        for video in owned {
            self.owned_by_video.remove_if_mut(video.as_str(), |_, ids| {
                ids.retain(|x| *x != id);
                ids.is_empty()
            });
        }
    }

    fn new_session(
        &self,
        id: SessionId,
        owner: &OwnerKey,
        lifetime: Option<std::num::NonZeroU32>,
        now: Timestamp,
    ) -> Session {
        let ends_at =
            lifetime.map(|secs| now.saturating_add(Duration::from_secs(u64::from(secs.get()))));
        self.sessions.insert(
            id,
            SessionEntry {
                owner: owner.clone(),
                created_at: now,
                ends_at,
                owned: Vec::new(),
            },
        );
        if let Some(end) = ends_at {
            self.session_expiry
                .push(end.saturating_add(self.retention), id);
        }
        Session {
            id,
            owner: owner.clone(),
            created_at: now,
            ends_at,
            owned: Vec::new(),
        }
    }

    fn create_server_session(
        &self,
        id: &TokenId,
        session_id: SessionId,
        now: Timestamp,
    ) -> SessionCreation {
        let Some(mut entry) = self.tokens.get_mut(id.as_str()) else {
            return SessionCreation::OwnerGone;
        };
        // Expired since the decision was made: creating now would change a refused request.
        if entry.token.is_expired(now) {
            return SessionCreation::OwnerGone;
        }
        if let Some(limit) = entry.token.session_limit {
            if entry.sessions_created >= u64::from(limit.get()) {
                return SessionCreation::LimitReached;
            }
        }
        entry.sessions_created += 1;
        let owner = OwnerKey::Server(entry.key().clone());
        let session = self.new_session(session_id, &owner, entry.token.usage_expiration_time, now);
        let mut list = self.owners.entry(owner).or_default();
        list.sessions.insert(session.id);
        SessionCreation::Created(session)
    }

    fn create_client_session(
        &self,
        owner: &OwnerKey,
        session_id: SessionId,
        terms: SessionTerms,
        now: Timestamp,
    ) -> SessionCreation {
        let mut entry = self.owners.entry(owner.clone()).or_default();
        if entry.keep_until.is_some_and(|t| t <= now) {
            // A counter past its time that the sweeper has not reached yet: it and its
            // sessions go now, as the sweep would have done, and counting starts afresh.
            for id in std::mem::take(&mut entry.sessions).into_vec() {
                self.forget_session(id);
            }
            *entry = OwnerEntry::default();
        }
        // The counter lives until the token's end, or for the TTL from its first session:
        // never sliding, so a token without an end cannot keep its counter alive forever.
        let keep_until = match (terms.keep_counter_until, entry.keep_until) {
            (Some(end), _) => Some(end),
            (None, None) => Some(now.saturating_add(self.counter_ttl)),
            (None, Some(_)) => None,
        };
        if let Some(keep_until) = keep_until.filter(|&t| entry.keep_until.is_none_or(|k| k < t)) {
            entry.keep_until = Some(keep_until);
            self.owner_expiry.push(keep_until, owner.clone());
        }
        if let Some(limit) = terms.limit {
            if entry.created >= u64::from(limit.get()) {
                return SessionCreation::LimitReached;
            }
        }
        entry.created += 1;
        let session = self.new_session(session_id, owner, terms.lifetime, now);
        entry.sessions.insert(session.id);
        SessionCreation::Created(session)
    }

    async fn sweep(&self) -> usize {
        let now = self.now();
        let mut swept = Swept::default();
        for batch in self.session_expiry.take_due(now).chunks(SWEEP_BATCH) {
            for id in batch {
                let gone = self
                    .sessions
                    .remove_if(id, |_, s| !self.retained(s.ends_at, now));
                if let Some((id, session)) = gone {
                    self.unindex_owned(id, &session.owned);
                    // Taken after the session's lock is released: owners come first in the
                    // lock order.
                    if let Some(mut owner) = self.owners.get_mut(&session.owner) {
                        owner.sessions.remove(id);
                    }
                    swept.sessions += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        let mut tokens_sessions = 0;
        for batch in self.token_expiry.take_due(now).chunks(SWEEP_BATCH) {
            for id in batch {
                let gone = self
                    .tokens
                    .remove_if(id, |_, t| !self.retained(t.token.expiration_date, now));
                if let Some((id, entry)) = gone {
                    tokens_sessions += self.forget_token(&id, &entry);
                    swept.tokens += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        for batch in self.owner_expiry.take_due(now).chunks(SWEEP_BATCH) {
            for owner in batch {
                let gone = self
                    .owners
                    .remove_if(owner, |_, o| o.keep_until.is_some_and(|t| t <= now));
                if let Some((_, entry)) = gone {
                    for session in entry.sessions.into_vec() {
                        if self.forget_session(session) {
                            swept.sessions += 1;
                        }
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        // A removed token's sessions count as swept sessions, but not as entries this sweep
        // removed (they went with their token).
        let removed = usize::try_from(swept.tokens + swept.sessions).unwrap_or(usize::MAX);
        swept.sessions += tokens_sessions;
        self.swept_tokens.fetch_add(swept.tokens, Ordering::Relaxed);
        self.swept_sessions
            .fetch_add(swept.sessions, Ordering::Relaxed);
        if swept != Swept::default() {
            if let Some(hook) = &self.on_sweep {
                hook(swept);
            }
        }
        removed
    }

    /// The token `id` as a read at `now` sees it: `None` past its retention.
    fn token_at(&self, id: &str, now: Timestamp) -> Option<StoredToken> {
        self.tokens
            .get(id)
            .filter(|e| self.retained(e.token.expiration_date, now))
            .map(|e| stored(&e))
    }

    /// The session `id` as a read at `now` sees it: `None` past its retention.
    fn session_at(&self, id: SessionId, now: Timestamp) -> Option<Session> {
        self.sessions
            .get(&id)
            .filter(|e| self.retained(e.ends_at, now))
            .map(|e| self.session_view(id, &e))
    }

    fn session_view(&self, id: SessionId, entry: &SessionEntry) -> Session {
        Session {
            id,
            owner: entry.owner.clone(),
            created_at: entry.created_at,
            ends_at: entry.ends_at,
            owned: entry.owned.clone(),
        }
    }
}

fn stored(entry: &TokenEntry) -> StoredToken {
    StoredToken {
        token: entry.token.clone(),
        sessions_created: entry.sessions_created,
        version: Version::new(entry.version),
    }
}

impl TokenStore for MemoryStore {
    async fn insert_token(&self, token: NewToken) -> Result<Arc<AuthToken>, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let token = Arc::new(token.into_token(now));
        let fresh = TokenEntry {
            token: token.clone(),
            sessions_created: 0,
            version: s.next_version(),
        };
        // Indexed before the entry is released, so a cascade cannot miss it.
        let replaced = match s.tokens.entry(token.id.clone()) {
            dashmap::Entry::Occupied(mut slot) => {
                if s.retained(slot.get().token.expiration_date, now) {
                    return Err(StoreError::TokenExists);
                }
                // Past its retention, the old token is gone to every reader already; its id
                // is free whether or not the sweeper has been by.
                let old = std::mem::replace(slot.get_mut(), fresh);
                s.reindex(
                    &token.id,
                    &old.token.grants.videos(),
                    &token.grants.videos(),
                );
                Some(old)
            }
            dashmap::Entry::Vacant(slot) => {
                let slot = slot.insert(fresh);
                s.reindex(&token.id, &[], &token.grants.videos());
                drop(slot);
                None
            }
        };
        if let Some(old) = replaced {
            // Its sessions and owner entry go too; the index was moved above.
            if let Some((_, owner)) = s.owners.remove(&OwnerKey::Server(token.id.clone())) {
                for session in owner.sessions.into_vec() {
                    s.forget_session(session);
                }
            }
            drop(old);
        }
        if let Some(end) = token.expiration_date {
            s.token_expiry
                .push(end.saturating_add(s.retention), token.id.clone());
        }
        Ok(token)
    }

    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let s = &*self.shared;
        Ok(s.token_at(id, s.now()))
    }

    async fn write_token(
        &self,
        id: &str,
        version: Version,
        write: TokenWrite,
    ) -> Result<Written, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let mut written = Written::Missing;
        // Checked and written under the token's lock: that is the compare-and-swap.
        let removed = s.tokens.remove_if_mut(id, |id, entry| {
            if !s.retained(entry.token.expiration_date, now) {
                return false;
            }
            if entry.version != version.get() {
                written = Written::Conflict;
                return false;
            }
            match write {
                TokenWrite::Delete => {
                    written = Written::Done(stored(entry));
                    true
                }
                TokenWrite::Replace(new) => {
                    s.reindex(id, &entry.token.grants.videos(), &new.grants.videos());
                    if let Some(end) = new.expiration_date {
                        if new.expiration_date != entry.token.expiration_date {
                            s.token_expiry
                                .push(end.saturating_add(s.retention), id.clone());
                        }
                    }
                    entry.token = Arc::new(new);
                    entry.version = s.next_version();
                    written = Written::Done(stored(entry));
                    false
                }
            }
        });
        if let Some((id, entry)) = &removed {
            s.forget_token(id, entry);
        }
        Ok(written)
    }

    async fn delete_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let Some((id, entry)) = s.tokens.remove(id) else {
            return Ok(None);
        };
        s.forget_token(&id, &entry);
        Ok(s.retained(entry.token.expiration_date, now)
            .then(|| stored(&entry)))
    }

    async fn list_tokens(&self, skip: usize, limit: usize) -> Result<Vec<StoredToken>, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let mut all: Vec<StoredToken> = s
            .tokens
            .iter()
            .filter(|e| s.retained(e.token.expiration_date, now))
            .map(|e| stored(&e))
            .collect();
        all.sort_unstable_by(|a, b| {
            (a.token.created_at, &a.token.id).cmp(&(b.token.created_at, &b.token.id))
        });
        Ok(all.into_iter().skip(skip).take(limit).collect())
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let s = &*self.shared;
        Ok(s.session_at(id, s.now()))
    }

    /// Both reads at one instant, without a suspension point between them: the memory
    /// store's reads never wait.
    async fn lookup(&self, request: Lookup<'_>) -> Found {
        let s = &*self.shared;
        let now = s.now();
        let token = Ok(request.token.and_then(|id| s.token_at(id, now)));
        let session = match request.session {
            Some(id) if request.session_matters(&token) => Ok(s.session_at(id, now)),
            _ => Ok(None),
        };
        Found { token, session }
    }

    async fn create_session(
        &self,
        owner: &OwnerKey,
        terms: SessionTerms,
    ) -> Result<SessionCreation, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        // Drawn before any lock is taken: it is a system call. A refused creation wastes it.
        let session_id = SessionId::generate();
        Ok(match owner {
            OwnerKey::Server(id) => s.create_server_session(id, session_id, now),
            OwnerKey::Jwt(_) | OwnerKey::Ziggeo(_) => {
                s.create_client_session(owner, session_id, terms, now)
            }
        })
    }

    async fn end_session(&self, id: SessionId) -> Result<bool, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let Some(mut entry) = s.sessions.get_mut(&id) else {
            return Ok(false);
        };
        if !s.retained(entry.ends_at, now) {
            return Ok(false);
        }
        if entry.ends_at.is_none_or(|end| end > now) {
            entry.ends_at = Some(now);
            s.session_expiry.push(now.saturating_add(s.retention), id);
        }
        Ok(true)
    }

    async fn sessions_of(&self, owner: &OwnerKey) -> Result<Vec<Session>, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let ids = match s.owners.get(owner) {
            Some(entry) => entry.sessions.to_vec(),
            None => return Ok(Vec::new()),
        };
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                s.sessions
                    .get(&id)
                    .filter(|e| e.ends_at.is_none_or(|end| now < end))
                    .map(|e| s.session_view(id, &e))
            })
            .collect())
    }

    async fn record_owned(&self, session: SessionId, video: &str) -> Result<bool, StoreError> {
        let s = &*self.shared;
        let now = s.now();
        let Some(mut entry) = s.sessions.get_mut(&session) else {
            return Ok(false);
        };
        if !s.retained(entry.ends_at, now) {
            return Ok(false);
        }
        if !entry.owned.iter().any(|v| v == video) {
            entry.owned.push(video.to_owned());
            let mut ids = s.owned_by_video.entry(Box::from(video)).or_default();
            if !ids.contains(&session) {
                ids.push(session);
            }
        }
        Ok(true)
    }

    async fn tokens_naming(&self, video: &str) -> Result<Vec<TokenId>, StoreError> {
        let s = &*self.shared;
        let hash = s.video_hash(video);
        Ok(s.by_video
            .get(&hash)
            .map(|ids| ids.to_vec())
            .unwrap_or_default())
    }

    async fn disown(&self, video: &str) -> Result<usize, StoreError> {
        let s = &*self.shared;
        let mut changed = 0;
        if let Some((_, sessions)) = s.owned_by_video.remove(video) {
            for id in sessions {
                if let Some(mut entry) = s.sessions.get_mut(&id) {
                    entry.owned.retain(|v| v != video);
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let s = &*self.shared;
        Ok(StoreStats {
            tokens: s.tokens.len() as u64,
            sessions: s.sessions.len() as u64,
        })
    }

    /// Memory always answers.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
