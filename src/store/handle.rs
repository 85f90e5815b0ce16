//! [`Store`]: one handle for any [`TokenStore`], chosen at run time.
//!
//! [`TokenStore`]'s methods return `impl Future`, which keeps backends simple (plain
//! `async fn`s) and lets an embedder that names its backend call it without boxing, but it is
//! not object-safe. `Store` puts any backend behind a private object-safe mirror of the trait
//! whose futures are boxed, and implements [`TokenStore`] itself, so everything written for a
//! `TokenStore` takes a `Store` too. The box costs one allocation per store call; measured
//! against static dispatch in `benches/store.rs` ("dispatch").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{
    Cascade, Found, Lookup, SessionCreation, SessionTerms, StoreError, StoreStats, StoredToken,
    TokenStore, TokenWrite, Updated, Version, Written,
};
use crate::session::{OwnerKey, Session, SessionId};
use crate::token::{AuthToken, NewToken, TokenId, TokenPatch};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// A handle to a token store, whichever backend it is: what the gateway, the admin API and the
/// server hold. Cloning gives another handle to the same store.
///
/// ```
/// use vidgate::store::{MemoryStore, Store, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = Store::new(MemoryStore::builder().build());
/// assert!(store.ping().await.is_ok());
/// # }
/// ```
#[derive(Clone)]
pub struct Store(Arc<dyn DynStore>);

impl Store {
    /// A handle to `backend`.
    pub fn new<S: TokenStore>(backend: S) -> Self {
        Store(Arc::new(backend))
    }

    /// A handle to a backend that is shared already.
    pub fn from_shared<S: TokenStore>(backend: Arc<S>) -> Self {
        Store(backend)
    }
}

impl<S: TokenStore> From<Arc<S>> for Store {
    fn from(backend: Arc<S>) -> Self {
        Store::from_shared(backend)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// [`TokenStore`], object-safe: every method boxes its future.
trait DynStore: Send + Sync + 'static {
    fn insert_token(&self, token: NewToken) -> Answer<'_, Arc<AuthToken>>;
    fn token<'a>(&'a self, id: &'a str) -> Answer<'a, Option<StoredToken>>;
    fn write_token<'a>(
        &'a self,
        id: &'a str,
        version: Version,
        write: TokenWrite,
    ) -> Answer<'a, Written>;
    fn delete_token<'a>(&'a self, id: &'a str) -> Answer<'a, Option<StoredToken>>;
    fn list_tokens(&self, skip: usize, limit: usize) -> Answer<'_, Vec<StoredToken>>;
    fn session(&self, id: SessionId) -> Answer<'_, Option<Session>>;
    fn create_session<'a>(
        &'a self,
        owner: &'a OwnerKey,
        terms: SessionTerms,
    ) -> Answer<'a, SessionCreation>;
    fn end_session(&self, id: SessionId) -> Answer<'_, bool>;
    fn sessions_of<'a>(&'a self, owner: &'a OwnerKey) -> Answer<'a, Vec<Session>>;
    fn record_owned<'a>(&'a self, session: SessionId, video: &'a str) -> Answer<'a, bool>;
    fn tokens_naming<'a>(&'a self, video: &'a str) -> Answer<'a, Vec<TokenId>>;
    fn disown<'a>(&'a self, video: &'a str) -> Answer<'a, usize>;
    fn stats(&self) -> Answer<'_, StoreStats>;
    fn ping(&self) -> Answer<'_, ()>;
    fn lookup<'a>(&'a self, request: Lookup<'a>) -> BoxFuture<'a, Found>;
    fn update_token<'a>(
        &'a self,
        id: &'a str,
        patch: &'a TokenPatch,
    ) -> Answer<'a, Option<Updated>>;
    fn destroy_video<'a>(&'a self, video: &'a str) -> Answer<'a, Cascade>;
}

impl<S: TokenStore> DynStore for S {
    fn insert_token(&self, token: NewToken) -> Answer<'_, Arc<AuthToken>> {
        Box::pin(TokenStore::insert_token(self, token))
    }
    fn token<'a>(&'a self, id: &'a str) -> Answer<'a, Option<StoredToken>> {
        Box::pin(TokenStore::token(self, id))
    }
    fn write_token<'a>(
        &'a self,
        id: &'a str,
        version: Version,
        write: TokenWrite,
    ) -> Answer<'a, Written> {
        Box::pin(TokenStore::write_token(self, id, version, write))
    }
    fn delete_token<'a>(&'a self, id: &'a str) -> Answer<'a, Option<StoredToken>> {
        Box::pin(TokenStore::delete_token(self, id))
    }
    fn list_tokens(&self, skip: usize, limit: usize) -> Answer<'_, Vec<StoredToken>> {
        Box::pin(TokenStore::list_tokens(self, skip, limit))
    }
    fn session(&self, id: SessionId) -> Answer<'_, Option<Session>> {
        Box::pin(TokenStore::session(self, id))
    }
    fn create_session<'a>(
        &'a self,
        owner: &'a OwnerKey,
        terms: SessionTerms,
    ) -> Answer<'a, SessionCreation> {
        Box::pin(TokenStore::create_session(self, owner, terms))
    }
    fn end_session(&self, id: SessionId) -> Answer<'_, bool> {
        Box::pin(TokenStore::end_session(self, id))
    }
    fn sessions_of<'a>(&'a self, owner: &'a OwnerKey) -> Answer<'a, Vec<Session>> {
        Box::pin(TokenStore::sessions_of(self, owner))
    }
    fn record_owned<'a>(&'a self, session: SessionId, video: &'a str) -> Answer<'a, bool> {
        Box::pin(TokenStore::record_owned(self, session, video))
    }
    fn tokens_naming<'a>(&'a self, video: &'a str) -> Answer<'a, Vec<TokenId>> {
        Box::pin(TokenStore::tokens_naming(self, video))
    }
    fn disown<'a>(&'a self, video: &'a str) -> Answer<'a, usize> {
        Box::pin(TokenStore::disown(self, video))
    }
    fn stats(&self) -> Answer<'_, StoreStats> {
        Box::pin(TokenStore::stats(self))
    }
    fn ping(&self) -> Answer<'_, ()> {
        Box::pin(TokenStore::ping(self))
    }
    fn lookup<'a>(&'a self, request: Lookup<'a>) -> BoxFuture<'a, Found> {
        Box::pin(TokenStore::lookup(self, request))
    }
    fn update_token<'a>(
        &'a self,
        id: &'a str,
        patch: &'a TokenPatch,
    ) -> Answer<'a, Option<Updated>> {
        Box::pin(TokenStore::update_token(self, id, patch))
    }
    fn destroy_video<'a>(&'a self, video: &'a str) -> Answer<'a, Cascade> {
        Box::pin(TokenStore::destroy_video(self, video))
    }
}

/// Every method goes to the backend, its own overrides of the provided ones included.
impl TokenStore for Store {
    async fn insert_token(&self, token: NewToken) -> Result<Arc<AuthToken>, StoreError> {
        self.0.insert_token(token).await
    }
    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        self.0.token(id).await
    }
    async fn write_token(
        &self,
        id: &str,
        version: Version,
        write: TokenWrite,
    ) -> Result<Written, StoreError> {
        self.0.write_token(id, version, write).await
    }
    async fn delete_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        self.0.delete_token(id).await
    }
    async fn list_tokens(&self, skip: usize, limit: usize) -> Result<Vec<StoredToken>, StoreError> {
        self.0.list_tokens(skip, limit).await
    }
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.0.session(id).await
    }
    async fn create_session(
        &self,
        owner: &OwnerKey,
        terms: SessionTerms,
    ) -> Result<SessionCreation, StoreError> {
        self.0.create_session(owner, terms).await
    }
    async fn end_session(&self, id: SessionId) -> Result<bool, StoreError> {
        self.0.end_session(id).await
    }
    async fn sessions_of(&self, owner: &OwnerKey) -> Result<Vec<Session>, StoreError> {
        self.0.sessions_of(owner).await
    }
    async fn record_owned(&self, session: SessionId, video: &str) -> Result<bool, StoreError> {
        self.0.record_owned(session, video).await
    }
    async fn tokens_naming(&self, video: &str) -> Result<Vec<TokenId>, StoreError> {
        self.0.tokens_naming(video).await
    }
    async fn disown(&self, video: &str) -> Result<usize, StoreError> {
        self.0.disown(video).await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.0.stats().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn lookup(&self, request: Lookup<'_>) -> Found {
        self.0.lookup(request).await
    }
    async fn update_token(
        &self,
        id: &str,
        patch: &TokenPatch,
    ) -> Result<Option<Updated>, StoreError> {
        self.0.update_token(id, patch).await
    }
    async fn destroy_video(&self, video: &str) -> Result<Cascade, StoreError> {
        self.0.destroy_video(video).await
    }
}
