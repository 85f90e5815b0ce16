//! The admin API (SPEC 3) over real HTTP: `vidgate::admin::router` served by `axum::serve`
//! on 127.0.0.1:0 and driven by a hyper client, and by Ziggeo's own Python server SDK.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use vidgate::admin::{self, AdminAuth, AdminState};
use vidgate::clock::{ManualClock, Timestamp};
use vidgate::metrics::Metrics;
use vidgate::session::{OwnerKey, Session, SessionId};
use vidgate::store::{
    Cascade, MemoryStore, SessionCreation, SessionTerms, StoreError, StoreStats, StoredToken,
    TokenStore, TokenWrite, Updated, Version, Written,
};
use vidgate::token::{AuthToken, NewToken, TokenId, TokenPatch};

const APP_TOKEN: &str = "demo-app";
const PRIVATE_KEY: &str = "s3cret-key";
/// Where the test clock starts: 2023-11-14T22:13:20Z.
const START: i64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A [`MemoryStore`] that can be switched off, to see what the API does when its store fails.
struct SwitchableStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl SwitchableStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

impl TokenStore for SwitchableStore {
    async fn insert_token(&self, token: NewToken) -> Result<Arc<AuthToken>, StoreError> {
        self.check()?;
        self.inner.insert_token(token).await
    }
    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        self.check()?;
        self.inner.token(id).await
    }
    async fn update_token(
        &self,
        id: &str,
        patch: &TokenPatch,
    ) -> Result<Option<Updated>, StoreError> {
        self.check()?;
        self.inner.update_token(id, patch).await
    }
    async fn delete_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        self.check()?;
        self.inner.delete_token(id).await
    }
    async fn list_tokens(&self, skip: usize, limit: usize) -> Result<Vec<StoredToken>, StoreError> {
        self.check()?;
        self.inner.list_tokens(skip, limit).await
    }
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.session(id).await
    }
    async fn create_session(
        &self,
        owner: &OwnerKey,
        terms: SessionTerms,
    ) -> Result<SessionCreation, StoreError> {
        self.check()?;
        self.inner.create_session(owner, terms).await
    }
    async fn end_session(&self, id: SessionId) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.end_session(id).await
    }
    async fn sessions_of(&self, owner: &OwnerKey) -> Result<Vec<Session>, StoreError> {
        self.check()?;
        self.inner.sessions_of(owner).await
    }
    async fn record_owned(&self, session: SessionId, video: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.record_owned(session, video).await
    }
    async fn destroy_video(&self, video: &str) -> Result<Cascade, StoreError> {
        self.check()?;
        self.inner.destroy_video(video).await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.check()?;
        self.inner.stats().await
    }
    async fn write_token(
        &self,
        id: &str,
        version: Version,
        write: TokenWrite,
    ) -> Result<Written, StoreError> {
        self.check()?;
        self.inner.write_token(id, version, write).await
    }
    async fn tokens_naming(&self, video: &str) -> Result<Vec<TokenId>, StoreError> {
        self.check()?;
        self.inner.tokens_naming(video).await
    }
    async fn disown(&self, video: &str) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.disown(video).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
}

/// An admin listener on 127.0.0.1:0 and a client for it.
struct Admin {
    base: String,
    store: Arc<SwitchableStore>,
    clock: Arc<ManualClock>,
    client: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    /// Asserts the status and the `{"error", "message"}` body; returns the message.
    fn expect_error(&self, status: StatusCode, reason: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), "application/json");
        let body = self.json();
        assert_eq!(body["error"], reason, "{self:?}");
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 2, "only error and message: {self:?}");
        body["message"].as_str().unwrap().to_owned()
    }
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn bearer() -> String {
    format!("Bearer {PRIVATE_KEY}")
}

fn default_auth() -> Option<AdminAuth> {
    Some(AdminAuth::new(Some(APP_TOKEN.into()), PRIVATE_KEY.into()))
}

impl Admin {
    async fn start() -> Self {
        Self::start_with(default_auth()).await
    }

    async fn start_with(auth: Option<AdminAuth>) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
        let store = Arc::new(SwitchableStore {
            inner: MemoryStore::builder()
                .clock(clock.clone())
                .sweeper(false)
                .build(),
            down: AtomicBool::new(false),
        });
        let app = admin::router(AdminState {
            store: store.clone(),
            metrics: Metrics::new(),
            auth,
            max_body: 1 << 20,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Admin {
            base: format!("http://{addr}"),
            store,
            clock,
            client: Client::builder(TokioExecutor::new()).build_http(),
            server,
        }
    }

    /// Sends a request with exactly these headers.
    async fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("the admin API answers")
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Sends a request with the right credentials.
    async fn send(&self, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let auth = bearer();
        let mut headers = vec![("authorization", auth.as_str())];
        if !content_type.is_empty() {
            headers.push(("content-type", content_type));
        }
        self.send_raw(method, path, &headers, body.to_owned()).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, "", "").await
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> Reply {
        self.send(method, path, "application/json", &body.to_string())
            .await
    }

    async fn form(&self, method: &str, path: &str, form: &str) -> Reply {
        self.send(method, path, "application/x-www-form-urlencoded", form)
            .await
    }

    /// Creates a token from a JSON body; returns its object.
    async fn create(&self, body: Value) -> Value {
        let reply = self.json("POST", "/v1/authtokens", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.json()
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    fn set_down(&self, down: bool) {
        self.store.down.store(down, Ordering::SeqCst);
    }

    async fn open_session(&self, token: &str) -> Session {
        let owner = OwnerKey::Server(TokenId::new(token).unwrap());
        let stored = self.store.token(token).await.unwrap().unwrap();
        match self
            .store
            .create_session(&owner, SessionTerms::of(&stored.token))
            .await
            .unwrap()
        {
            SessionCreation::Created(session) => session,
            other => panic!("no session: {other:?}"),
        }
    }
}

/// `application/x-www-form-urlencoded` of these pairs, as Python's `urlencode` writes it.
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_from_json_answers_201_with_the_whole_token_object() {
    let admin = Admin::start().await;
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens",
            json!({
                "grants": {"read": {"resources": ["v1", "v2"]}, "create": "all"},
                "expiration_date": "2030-01-01T00:00:00Z",
                "usage_expiration_time": 600,
                "session_limit": 3,
                "volatile": true,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/json");
    let token = reply.json();
    let id = token["token"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(reply.header("location"), format!("/v1/authtokens/{id}"));
    assert_eq!(
        token,
        json!({
            "token": id,
            "grants": {
                "read": {"resources": ["v1", "v2"], "session_owned": false, "all": false},
                "create": {"resources": [], "session_owned": false, "all": true},
            },
            "expiration_date": 1_893_456_000,
            "usage_expiration_time": 600,
            "session_limit": 3,
            "volatile": true,
            "hidden": false,
            "sessions_created": 0,
            "created_at": START,
        })
    );
    // It is stored as shown.
    let stored = admin.store.token(&id).await.unwrap().unwrap();
    assert_eq!(stored.to_json(), token);
}

#[tokio::test]
async fn create_answers_on_the_trailing_slash_path_too() {
    let admin = Admin::start().await;
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens/",
            json!({"token": "slash", "grants": {"read": "all"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["token"], "slash");
    assert!(admin.store.token("slash").await.unwrap().is_some());
}

#[tokio::test]
async fn create_from_a_form_coerces_every_field_like_the_sdks_send_them() {
    let admin = Admin::start().await;
    let body = form(&[
        ("token", "from-form"),
        (
            "grants",
            r#"{"read": {"resources": ["a b", "c&d"]}, "destroy": {"session_owned": true}}"#,
        ),
        ("session_limit", "10"),
        ("usage_expiration_time", "3600"),
        ("expiration_date", "1900000000"),
        ("volatile", "True"),
        ("hidden", "FALSE"),
    ]);
    let reply = admin.form("POST", "/v1/authtokens", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({
            "token": "from-form",
            "grants": {
                "read": {"resources": ["a b", "c&d"], "session_owned": false, "all": false},
                "destroy": {"resources": [], "session_owned": true, "all": false},
            },
            "expiration_date": 1_900_000_000,
            "usage_expiration_time": 3600,
            "session_limit": 10,
            "volatile": true,
            "hidden": false,
            "sessions_created": 0,
            "created_at": START,
        })
    );
}

#[tokio::test]
async fn a_body_without_content_type_is_sniffed() {
    let admin = Admin::start().await;
    let json_body = r#"{"token": "sniffed-json", "grants": {"read": "all"}, "hidden": true}"#;
    let reply = admin.send("POST", "/v1/authtokens", "", json_body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["hidden"], true);

    let form_body = form(&[("token", "sniffed-form"), ("grants", r#"{"read":"all"}"#)]);
    let reply = admin
        .send("POST", "/v1/authtokens", "text/plain", &form_body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["token"], "sniffed-form");
    assert_eq!(reply.json()["grants"]["read"]["all"], true);
}

#[tokio::test]
async fn create_without_grants_is_400_grants_is_required() {
    let admin = Admin::start().await;
    for (content_type, body) in [
        ("", ""),
        ("application/x-www-form-urlencoded", ""),
        ("application/json", "{}"),
        ("application/x-www-form-urlencoded", "session_limit=2"),
        ("application/x-www-form-urlencoded", "grants="),
    ] {
        let reply = admin
            .send("POST", "/v1/authtokens", content_type, body)
            .await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(message, "grants: is required", "{content_type} {body:?}");
    }
    assert_eq!(admin.store.list_tokens(0, 10).await.unwrap().len(), 0);
}

#[tokio::test]
async fn create_names_the_field_at_fault() {
    let admin = Admin::start().await;
    let cases = [
        (
            json!({"grants": {"read": {"resources": ["ok", ""]}}}),
            "grants.read: ",
        ),
        (json!({"grants": {"watch": "all"}}), "grants.watch: "),
        (json!({"grants": {}, "session_limit": 0}), "session_limit: "),
        (
            json!({"grants": {}, "usage_expiration_time": -5}),
            "usage_expiration_time: ",
        ),
        (json!({"grants": {}, "token": "no spaces"}), "token: "),
        (
            json!({"grants": {}, "expiration_date": "soon"}),
            "expiration_date: ",
        ),
        (json!({"grants": {}, "hidden": "yes"}), "hidden: "),
        (
            json!({"grants": {}, "sessions_created": 3}),
            "sessions_created: ",
        ),
        (json!({"grants": {}, "created_at": 3}), "created_at: "),
    ];
    for (body, prefix) in cases {
        let reply = admin.json("POST", "/v1/authtokens", body.clone()).await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.starts_with(prefix), "{body}: {message}");
    }
    // Unknown keys are named in the message, from JSON and from forms alike.
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens",
            json!({"grants": {}, "colour": "red"}),
        )
        .await;
    let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("`colour`"), "{message}");
    let reply = admin
        .form("POST", "/v1/authtokens", "grants=%7B%7D&colour=red")
        .await;
    let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("`colour`"), "{message}");
    // A Python dict passed as is arrives as its repr, not JSON.
    let reply = admin
        .form(
            "POST",
            "/v1/authtokens",
            &form(&[("grants", "{'read': 'all'}")]),
        )
        .await;
    let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        message.starts_with("grants: must be a string holding JSON"),
        "{message}"
    );
    // Malformed JSON and form values.
    let reply = admin
        .send(
            "POST",
            "/v1/authtokens",
            "application/json",
            "{\"grants\": ",
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    let reply = admin
        .form("POST", "/v1/authtokens", "grants=%7B%7D&session_limit=ten")
        .await;
    let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(message, "session_limit: must be a decimal integer");
    assert_eq!(admin.store.list_tokens(0, 10).await.unwrap().len(), 0);
}

#[tokio::test]
async fn an_empty_volatile_token_is_422_unprocessable() {
    let admin = Admin::start().await;
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens",
            json!({"grants": {"read": {"resources": []}}, "volatile": true}),
        )
        .await;
    let message = reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    assert!(message.starts_with("grants: "), "{message}");
    let reply = admin
        .form("POST", "/v1/authtokens", "grants=%7B%7D&volatile=1")
        .await;
    reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    assert_eq!(admin.store.list_tokens(0, 10).await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_taken_id_is_409_token_exists() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "taken", "grants": {"read": "all"}}))
        .await;
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens",
            json!({"token": "taken", "grants": {"create": "all"}}),
        )
        .await;
    reply.expect_error(StatusCode::CONFLICT, "token_exists");
    // The first one is untouched.
    let stored = admin.store.token("taken").await.unwrap().unwrap();
    assert_eq!(stored.to_json()["grants"]["read"]["all"], true);
    assert!(stored.to_json()["grants"].get("create").is_none());
}

#[tokio::test]
async fn a_body_over_1_mib_is_413() {
    let admin = Admin::start().await;
    // Exactly 1 MiB is read (JSON may be padded with spaces); one byte more is not.
    let json_body = r#"{"token": "big", "grants": {"read": "all"}}"#;
    let mut body = json_body.to_owned();
    body.push_str(&" ".repeat((1 << 20) - json_body.len()));
    let reply = admin
        .send("POST", "/v1/authtokens", "application/json", &body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    body.push(' ');
    let reply = admin
        .send("POST", "/v1/authtokens", "application/json", &body)
        .await;
    reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // A real one, as a form.
    let resources: Vec<String> = (0..80_000).map(|i| format!("video-{i:08}")).collect();
    let grants = json!({"read": {"resources": resources}}).to_string();
    let body = form(&[("grants", &grants)]);
    assert!(body.len() > 1 << 20);
    let reply = admin
        .send(
            "POST",
            "/v1/authtokens",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await;
    reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert_eq!(admin.store.list_tokens(0, 10).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn read_answers_200_with_the_object_or_404() {
    let admin = Admin::start().await;
    let created = admin
        .create(json!({"token": "readme", "grants": {"update": {"resources": ["x"]}}}))
        .await;
    let reply = admin.get("/v1/authtokens/readme").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.json(), created);
    let head = admin.send("HEAD", "/v1/authtokens/readme", "", "").await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.body, "");

    let message = admin
        .get("/v1/authtokens/nobody")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "No such token.");
    admin
        .get("/v1/authtokens/not%20an%20id")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn read_shows_sessions_created_and_expired_tokens_within_retention() {
    let admin = Admin::start().await;
    admin
        .create(json!({
            "token": "counted",
            "grants": {"read": "all"},
            "session_limit": 5,
            "expiration_date": START + 60,
        }))
        .await;
    admin.open_session("counted").await;
    admin.open_session("counted").await;
    let token = admin.get("/v1/authtokens/counted").await.json();
    assert_eq!(token["sessions_created"], 2);
    // Expired, but still readable for the retention (24 h by default).
    admin.advance(3600);
    let reply = admin.get("/v1/authtokens/counted").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["expiration_date"], START + 60);
    admin.advance(25 * 3600);
    admin
        .get("/v1/authtokens/counted")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn admin_json_is_ascii_only() {
    let admin = Admin::start().await;
    let reply = admin
        .json(
            "POST",
            "/v1/authtokens",
            json!({"token": "intl", "grants": {"read": {"resources": ["vidéo-日本-😀"]}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.body.is_ascii(), "{}", reply.body);
    assert!(
        reply.body.contains(r"vid\u00e9o-\u65e5\u672c-\ud83d\ude00"),
        "{}",
        reply.body
    );
    for path in ["/v1/authtokens/intl", "/v1/authtokens"] {
        let reply = admin.get(path).await;
        assert!(reply.body.is_ascii(), "{path}: {}", reply.body);
        assert!(reply.body.contains(r"\u00e9"), "{path}: {}", reply.body);
    }
    let token = admin.get("/v1/authtokens/intl").await.json();
    assert_eq!(token["grants"]["read"]["resources"][0], "vidéo-日本-😀");
    // Forms carry UTF-8 percent-encoded.
    let body = form(&[("grants", r#"{"read": {"resources": ["ünï"]}}"#)]);
    let reply = admin.form("POST", "/v1/authtokens", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.body.contains(r"\u00fcn\u00ef"), "{}", reply.body);
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_is_partial_by_post_put_and_patch() {
    let admin = Admin::start().await;
    let original = admin
        .create(json!({
            "token": "upd",
            "grants": {"read": {"resources": ["a"]}},
            "session_limit": 2,
            "usage_expiration_time": 60,
        }))
        .await;
    let reply = admin
        .json("POST", "/v1/authtokens/upd", json!({"session_limit": 7}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let mut expected = original.clone();
    expected["session_limit"] = json!(7);
    assert_eq!(reply.json(), expected);

    let reply = admin
        .json("PUT", "/v1/authtokens/upd", json!({"hidden": true}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    expected["hidden"] = json!(true);
    assert_eq!(reply.json(), expected);

    // `grants` is replaced as a whole.
    let reply = admin
        .json(
            "PATCH",
            "/v1/authtokens/upd",
            json!({"grants": {"destroy": "all"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    expected["grants"] = json!({"destroy": {"resources": [], "session_owned": false, "all": true}});
    assert_eq!(reply.json(), expected);

    // The SDKs' form, and `_method=PUT`/`PATCH` on a POST.
    let reply = admin
        .form(
            "POST",
            "/v1/authtokens/upd?_method=patch",
            "usage_expiration_time=120&volatile=true",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    expected["usage_expiration_time"] = json!(120);
    expected["volatile"] = json!(true);
    assert_eq!(reply.json(), expected);

    // An empty update changes nothing.
    let reply = admin.send("POST", "/v1/authtokens/upd", "", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json(), expected);
    assert_eq!(admin.get("/v1/authtokens/upd").await.json(), expected);
}

#[tokio::test]
async fn null_and_empty_form_values_clear_optional_fields() {
    let admin = Admin::start().await;
    let fields = json!({
        "grants": {"read": "all"},
        "session_limit": 2,
        "usage_expiration_time": 60,
        "expiration_date": START + 3600,
        "hidden": true,
    });
    let mut body = fields.clone();
    body["token"] = json!("by-json");
    admin.create(body).await;
    let mut body = fields;
    body["token"] = json!("by-form");
    admin.create(body).await;

    let reply = admin
        .json(
            "PATCH",
            "/v1/authtokens/by-json",
            json!({"session_limit": null, "usage_expiration_time": null,
                   "expiration_date": null, "hidden": null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let by_json = reply.json();

    let reply = admin
        .form(
            "POST",
            "/v1/authtokens/by-form",
            "session_limit=&usage_expiration_time=&expiration_date=&hidden=",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let by_form = reply.json();

    for token in [&by_json, &by_form] {
        assert_eq!(token["session_limit"], Value::Null, "{token}");
        assert_eq!(token["usage_expiration_time"], Value::Null, "{token}");
        assert_eq!(token["expiration_date"], Value::Null, "{token}");
        assert_eq!(token["hidden"], false, "{token}");
        assert_eq!(token["grants"]["read"]["all"], true, "{token}");
    }
    // `grants` is required: it cannot be cleared.
    let reply = admin
        .json("PATCH", "/v1/authtokens/by-json", json!({"grants": null}))
        .await;
    let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.starts_with("grants: "), "{message}");
}

#[tokio::test]
async fn update_refuses_token_sessions_created_and_created_at() {
    let admin = Admin::start().await;
    let original = admin
        .create(json!({"token": "fixed", "grants": {"read": "all"}}))
        .await;
    for (body, field) in [
        (json!({"token": "other"}), "token"),
        (json!({"token": "fixed"}), "token"),
        (json!({"sessions_created": 0}), "sessions_created"),
        (json!({"created_at": 5}), "created_at"),
    ] {
        let reply = admin
            .json("PATCH", "/v1/authtokens/fixed", body.clone())
            .await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{body}: {message}"
        );
    }
    for (body, field) in [
        ("token=other", "token"),
        ("sessions_created=1", "sessions_created"),
        ("created_at=1700000000", "created_at"),
    ] {
        let reply = admin.form("POST", "/v1/authtokens/fixed", body).await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{body}: {message}"
        );
    }
    assert_eq!(admin.get("/v1/authtokens/fixed").await.json(), original);
}

#[tokio::test]
async fn updating_an_unknown_token_is_404() {
    let admin = Admin::start().await;
    for method in ["POST", "PUT", "PATCH"] {
        let reply = admin
            .json(method, "/v1/authtokens/ghost", json!({"hidden": true}))
            .await;
        reply.expect_error(StatusCode::NOT_FOUND, "not_found");
    }
    assert!(admin.store.token("ghost").await.unwrap().is_none());
}

#[tokio::test]
async fn a_volatile_token_emptied_by_an_update_answers_200_and_is_gone() {
    let admin = Admin::start().await;
    admin
        .create(json!({
            "token": "fleeting",
            "grants": {"read": {"resources": ["v"]}},
            "volatile": true,
            "session_limit": 1,
        }))
        .await;
    let session = admin.open_session("fleeting").await;
    let reply = admin
        .json(
            "PATCH",
            "/v1/authtokens/fleeting",
            json!({"grants": {"read": {"resources": []}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let token = reply.json();
    assert_eq!(token["token"], "fleeting");
    assert_eq!(
        token["grants"],
        json!({"read": {"resources": [], "session_owned": false, "all": false}})
    );
    assert_eq!(token["volatile"], true);
    assert_eq!(token["sessions_created"], 1);
    admin
        .get("/v1/authtokens/fleeting")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    assert!(admin.store.session(session.id).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_answers_200_with_the_deleted_object_then_404() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "doomed", "grants": {"read": "all"}, "session_limit": 3}))
        .await;
    let session = admin.open_session("doomed").await;
    let before = admin.get("/v1/authtokens/doomed").await.json();
    assert_eq!(before["sessions_created"], 1);

    let reply = admin.send("DELETE", "/v1/authtokens/doomed", "", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json(), before);
    admin
        .get("/v1/authtokens/doomed")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    // Its sessions went with it.
    assert!(admin.store.session(session.id).await.unwrap().is_none());
    admin
        .send("DELETE", "/v1/authtokens/doomed", "", "")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn post_with_method_delete_deletes_in_any_case() {
    let admin = Admin::start().await;
    for (id, value) in [("d1", "DELETE"), ("d2", "delete"), ("d3", "DeLeTe")] {
        let created = admin
            .create(json!({"token": id, "grants": {"read": "all"}}))
            .await;
        // As the Python SDK sends it: an empty form body.
        let reply = admin
            .form("POST", &format!("/v1/authtokens/{id}?_method={value}"), "")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json(), created);
        assert!(admin.store.token(id).await.unwrap().is_none(), "{id}");
    }
    admin
        .form("POST", "/v1/authtokens/d1?_method=DELETE", "")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn method_overrides_are_refused_where_they_make_no_sense() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "kept", "grants": {"read": "all"}}))
        .await;
    for (method, path) in [
        ("GET", "/v1/authtokens/kept?_method=DELETE"),
        ("PUT", "/v1/authtokens/kept?_method=DELETE"),
        ("POST", "/v1/authtokens/kept?_method=GET"),
        ("POST", "/v1/authtokens/kept?_method=DELETE&_method=PUT"),
    ] {
        let reply = admin.send(method, path, "", "").await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            message.starts_with("_method: "),
            "{method} {path}: {message}"
        );
    }
    assert!(admin.store.token("kept").await.unwrap().is_some());
    // A DELETE of the whole collection is not a thing.
    let reply = admin
        .send("POST", "/v1/authtokens?_method=DELETE", "", "")
        .await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.header("allow"), "GET, HEAD, POST");
    assert!(admin.store.token("kept").await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------------

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_orders_by_created_at_then_token_and_pages() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "zeta", "grants": {"read": "all"}}))
        .await;
    admin.advance(10);
    for id in ["gamma", "alpha", "beta"] {
        admin
            .create(json!({"token": id, "grants": {"read": "all"}}))
            .await;
    }
    admin.advance(10);
    admin
        .create(json!({"token": "aardvark", "grants": {"read": "all"}}))
        .await;

    let all = admin.get("/v1/authtokens").await;
    assert_eq!(ids(&all), ["zeta", "alpha", "beta", "gamma", "aardvark"]);
    let objects = all.json();
    assert_eq!(objects[0]["created_at"], START);
    assert_eq!(objects[1]["created_at"], START + 10);
    assert_eq!(objects[4]["created_at"], START + 20);
    assert_eq!(objects[2], admin.get("/v1/authtokens/beta").await.json());
    assert_eq!(
        ids(&admin.get("/v1/authtokens/").await),
        ids(&admin.get("/v1/authtokens").await)
    );

    assert_eq!(
        ids(&admin.get("/v1/authtokens?limit=2").await),
        ["zeta", "alpha"]
    );
    assert_eq!(
        ids(&admin.get("/v1/authtokens?limit=2&skip=2").await),
        ["beta", "gamma"]
    );
    assert_eq!(ids(&admin.get("/v1/authtokens?skip=4").await), ["aardvark"]);
    assert!(ids(&admin.get("/v1/authtokens?skip=5").await).is_empty());
    assert!(ids(&admin.get("/v1/authtokens?limit=0").await).is_empty());
}

#[tokio::test]
async fn list_limit_defaults_to_50_and_is_capped_at_100() {
    let admin = Admin::start().await;
    for i in 0..120 {
        admin
            .store
            .insert_token(
                NewToken::from_json(&format!(
                    r#"{{"token": "t{i:03}", "grants": {{"read": "all"}}}}"#
                ))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    let page = ids(&admin.get("/v1/authtokens").await);
    assert_eq!(page.len(), 50);
    assert_eq!(page[0], "t000");
    assert_eq!(page[49], "t049");
    let page = ids(&admin.get("/v1/authtokens?limit=1000").await);
    assert_eq!(page.len(), 100);
    assert_eq!(page[99], "t099");
    let page = ids(&admin.get("/v1/authtokens?limit=101&skip=100").await);
    assert_eq!(
        page,
        (100..120).map(|i| format!("t{i:03}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn list_refuses_malformed_limit_and_skip_naming_them() {
    let admin = Admin::start().await;
    for (query, field) in [
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=2.5", "limit"),
        ("skip=-3", "skip"),
        ("skip=x", "skip"),
        ("limit=1&limit=2", "limit"),
    ] {
        let reply = admin.get(&format!("/v1/authtokens?{query}")).await;
        let message = reply.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{query}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_sessions_lists_the_live_ones() {
    let admin = Admin::start().await;
    admin
        .create(
            json!({"token": "lives", "grants": {"create": {"session_owned": true}},
                       "usage_expiration_time": 100}),
        )
        .await;
    admin
        .create(json!({"token": "forever", "grants": {"read": "all"}, "session_limit": 9}))
        .await;
    let first = admin.open_session("lives").await;
    admin.advance(60);
    let second = admin.open_session("lives").await;
    assert!(admin
        .store
        .record_owned(second.id, "new-video")
        .await
        .unwrap());
    let endless = admin.open_session("forever").await;

    let reply = admin.get("/v1/authtokens/lives/sessions").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let mut sessions = reply.json().as_array().unwrap().clone();
    sessions.sort_by_key(|s| s["created_at"].as_i64());
    assert_eq!(
        sessions,
        [
            json!({"session": first.id.to_string(), "token": "lives", "created_at": START,
                   "expires_at": START + 100, "owned": []}),
            json!({"session": second.id.to_string(), "token": "lives", "created_at": START + 60,
                   "expires_at": START + 160, "owned": ["new-video"]}),
        ]
    );
    // The first has ended 100 s after its creation: only the second is live.
    admin.advance(50);
    let live = admin.get("/v1/authtokens/lives/sessions").await.json();
    assert_eq!(live.as_array().unwrap().len(), 1);
    assert_eq!(live[0]["session"], second.id.to_string());

    let reply = admin.get("/v1/authtokens/forever/sessions").await;
    assert_eq!(
        reply.json(),
        json!([{"session": endless.id.to_string(), "token": "forever",
                "created_at": START + 60, "expires_at": null, "owned": []}])
    );
    admin
        .get("/v1/authtokens/nobody/sessions")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let reply = admin
        .send("POST", "/v1/authtokens/lives/sessions", "", "")
        .await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn ending_a_session_answers_200_then_it_is_no_longer_live() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "sess", "grants": {"read": "all"}, "session_limit": 5}))
        .await;
    let one = admin.open_session("sess").await;
    let two = admin.open_session("sess").await;

    let reply = admin
        .send("DELETE", &format!("/v1/sessions/{}", one.id), "", "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"session": one.id.to_string(), "ended": true})
    );
    let live = admin.get("/v1/authtokens/sess/sessions").await.json();
    assert_eq!(
        live,
        json!([{"session": two.id.to_string(), "token": "sess",
        "created_at": START, "expires_at": null, "owned": []}])
    );
    let ended = admin.store.session(one.id).await.unwrap().unwrap();
    assert_eq!(ended.ends_at, Some(Timestamp::from_secs(START)));

    // The SDK way.
    let reply = admin
        .send(
            "POST",
            &format!("/v1/sessions/{}?_method=delete", two.id),
            "",
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["ended"], true);
    assert_eq!(
        admin.get("/v1/authtokens/sess/sessions").await.json(),
        json!([])
    );
}

#[tokio::test]
async fn ending_an_unknown_session_is_404() {
    let admin = Admin::start().await;
    let unknown = SessionId::generate();
    let message = admin
        .send("DELETE", &format!("/v1/sessions/{unknown}"), "", "")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "No such session.");
    admin
        .send("DELETE", "/v1/sessions/not-a-session-id", "", "")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let reply = admin
        .send("GET", &format!("/v1/sessions/{unknown}"), "", "")
        .await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.header("allow"), "DELETE, POST");
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

/// Every authenticated route, with a method that would succeed given credentials.
const AUTHENTICATED: [(&str, &str); 7] = [
    ("GET", "/v1/authtokens"),
    ("POST", "/v1/authtokens"),
    ("GET", "/v1/authtokens/guarded"),
    ("PATCH", "/v1/authtokens/guarded"),
    ("DELETE", "/v1/authtokens/guarded"),
    ("GET", "/v1/authtokens/guarded/sessions"),
    ("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA"),
];

async fn expect_refused(admin: &Admin, authorization: Option<&str>) {
    for (method, path) in AUTHENTICATED {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        let reply = admin
            .send_raw(method, path, &headers, r#"{"grants": {"read": "all"}}"#)
            .await;
        reply.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(
            reply.header("www-authenticate"),
            r#"Basic realm="vidgate admin""#
        );
    }
    // Nothing was created, changed or deleted.
    let tokens = admin.store.list_tokens(0, 10).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token.id.as_str(), "guarded");
    assert!(!tokens[0].token.hidden);
}

async fn guarded_admin(auth: Option<AdminAuth>) -> Admin {
    let admin = Admin::start_with(auth).await;
    admin
        .store
        .insert_token(
            NewToken::from_json(r#"{"token": "guarded", "grants": {"read": "all"}}"#).unwrap(),
        )
        .await
        .unwrap();
    admin
}

#[tokio::test]
async fn no_credentials_is_401() {
    let admin = guarded_admin(default_auth()).await;
    expect_refused(&admin, None).await;
}

#[tokio::test]
async fn a_wrong_private_key_is_401() {
    let admin = guarded_admin(default_auth()).await;
    expect_refused(&admin, Some(&basic(APP_TOKEN, "wrong-key"))).await;
    expect_refused(&admin, Some("Bearer wrong-key")).await;
    expect_refused(&admin, Some(&format!("Bearer {PRIVATE_KEY}x"))).await;
    expect_refused(&admin, Some(&basic(APP_TOKEN, ""))).await;
}

#[tokio::test]
async fn a_wrong_app_token_is_401() {
    let admin = guarded_admin(default_auth()).await;
    expect_refused(&admin, Some(&basic("other-app", PRIVATE_KEY))).await;
    expect_refused(&admin, Some(&basic("", PRIVATE_KEY))).await;
    // The app token is not the key.
    expect_refused(&admin, Some(&format!("Bearer {APP_TOKEN}"))).await;
    // Other schemes carry nothing.
    expect_refused(&admin, Some(&format!("Token {PRIVATE_KEY}"))).await;
}

#[tokio::test]
async fn the_right_basic_credentials_are_accepted() {
    let admin = guarded_admin(default_auth()).await;
    let auth = basic(APP_TOKEN, PRIVATE_KEY);
    let reply = admin
        .send_raw(
            "GET",
            "/v1/authtokens/guarded",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["token"], "guarded");
    let reply = admin
        .send_raw(
            "PATCH",
            "/v1/authtokens/guarded",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            r#"{"hidden": true}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["hidden"], true);
}

#[tokio::test]
async fn the_right_bearer_key_is_accepted() {
    let admin = guarded_admin(default_auth()).await;
    let reply = admin
        .send_raw(
            "GET",
            "/v1/authtokens",
            &[("authorization", &format!("bearer {PRIVATE_KEY}"))],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(ids(&reply), ["guarded"]);
}

#[tokio::test]
async fn without_an_app_token_any_basic_user_goes() {
    let admin = guarded_admin(Some(AdminAuth::new(None, PRIVATE_KEY.into()))).await;
    for user in ["anyone", ""] {
        let auth = basic(user, PRIVATE_KEY);
        let reply = admin
            .send_raw(
                "GET",
                "/v1/authtokens/guarded",
                &[("authorization", &auth)],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{user:?}: {reply:?}");
    }
    expect_refused(&admin, Some(&basic("anyone", "wrong"))).await;
}

#[tokio::test]
async fn without_credentials_configured_everything_authenticated_is_401() {
    let admin = guarded_admin(None).await;
    expect_refused(&admin, Some(&basic(APP_TOKEN, PRIVATE_KEY))).await;
    expect_refused(&admin, Some(&bearer())).await;
    // The public routes still answer.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = admin.send_raw("GET", path, &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics, health, readiness, and what is not a route
// ---------------------------------------------------------------------------------------------

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_show_the_store_gauges_and_no_admin_traffic() {
    let admin = Admin::start().await;
    for id in ["m1", "m2", "m3"] {
        admin
            .create(json!({"token": id, "grants": {"read": "all"}, "session_limit": 4}))
            .await;
    }
    admin.open_session("m1").await;
    admin.open_session("m2").await;
    admin.get("/v1/authtokens/nobody").await;
    admin.send_raw("GET", "/v1/authtokens", &[], "").await;

    let reply = admin.send_raw("GET", "/metrics", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/plain; version=0.0.4");
    assert!(
        reply.body.contains("# TYPE vidgate_tokens gauge"),
        "{}",
        reply.body
    );
    assert_eq!(metric(&reply.body, "vidgate_tokens"), Some(3.0));
    assert_eq!(metric(&reply.body, "vidgate_sessions"), Some(2.0));
    // Admin requests (201s, 404s, 401s) are not request metrics.
    let requests: f64 = reply
        .body
        .lines()
        .filter(|l| l.starts_with("vidgate_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(requests, 0.0);
    let denials: f64 = reply
        .body
        .lines()
        .filter(|l| l.starts_with("vidgate_denials_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(denials, 0.0);

    // The gauges follow the store at each scrape.
    admin.send("DELETE", "/v1/authtokens/m3", "", "").await;
    let reply = admin.send_raw("GET", "/metrics", &[], "").await;
    assert_eq!(metric(&reply.body, "vidgate_tokens"), Some(2.0));
}

#[tokio::test]
async fn healthz_answers_200_without_credentials() {
    let admin = Admin::start().await;
    let reply = admin.send_raw("GET", "/healthz", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
    // Even with the store down: the process is up.
    admin.set_down(true);
    assert_eq!(
        admin.send_raw("GET", "/healthz", &[], "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn readyz_follows_the_store() {
    let admin = Admin::start().await;
    let reply = admin.send_raw("GET", "/readyz", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ready"}));

    admin.set_down(true);
    admin
        .send_raw("GET", "/readyz", &[], "")
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");

    admin.set_down(false);
    assert_eq!(
        admin.send_raw("GET", "/readyz", &[], "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_store_failure_is_503_store_unavailable() {
    let admin = Admin::start().await;
    admin
        .create(json!({"token": "there", "grants": {"read": "all"}}))
        .await;
    admin.set_down(true);
    admin
        .get("/v1/authtokens/there")
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    admin
        .json("POST", "/v1/authtokens", json!({"grants": {"read": "all"}}))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    admin
        .get("/v1/authtokens")
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    // Metrics are still served, with the gauges left as last seen.
    let reply = admin.send_raw("GET", "/metrics", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("vidgate_tokens"));
    admin.set_down(false);
    assert_eq!(
        admin.get("/v1/authtokens/there").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let admin = Admin::start().await;
    for path in [
        "/",
        "/v1",
        "/v1/videos",
        "/v1/authtokens/a/b",
        "/server/v1/authtokens",
    ] {
        let message = admin
            .get(path)
            .await
            .expect_error(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(message, "No such route.", "{path}");
    }
    for path in ["/metrics", "/healthz", "/readyz"] {
        let reply = admin.send_raw("POST", path, &[], "").await;
        reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(reply.header("allow"), "GET, HEAD");
    }
    let reply = admin.send("PUT", "/v1/authtokens", "", "").await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let reply = admin.send("OPTIONS", "/v1/authtokens/x", "", "").await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.header("allow"), "GET, HEAD, POST, PUT, PATCH, DELETE");
}

// ---------------------------------------------------------------------------------------------
// Ziggeo's Python server SDK
// ---------------------------------------------------------------------------------------------

/// Runs `tests/python/ziggeo_admin.py`, which drives the admin API with the PyPI package
/// `ziggeo` (its modules are top-level: `from Ziggeo import Ziggeo`).
#[tokio::test]
async fn ziggeo_python_sdk_manages_tokens() {
    const INSTALL: &str = "pip install -r tests/python/requirements.txt";
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "from Ziggeo import Ziggeo; import Crypto"])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("python3 cannot be run ({e}); install Python 3, then {INSTALL}")
        });
    assert!(
        probe.status.success(),
        "the Ziggeo Python SDK is not installed: run `{INSTALL}`\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let admin = Admin::start().await;
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(format!("{dir}/ziggeo_admin.py"))
            .args([admin.base.as_str(), APP_TOKEN, PRIVATE_KEY])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK script finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("ziggeo sdk: all checks passed"), "{stdout}");

    // What the SDK left behind is what it was told to leave.
    let kept = admin.store.token("sdk-kept").await.unwrap().unwrap();
    assert_eq!(kept.token.session_limit, NonZeroU32::new(5));
    assert!(kept.token.hidden);
    assert!(admin.store.token("sdk-deleted").await.unwrap().is_none());
    assert!(admin.store.token("sdk-volatile").await.unwrap().is_none());
}
