//! The tower layer in-process (`tower::ServiceExt::oneshot`): every refusal of SPEC 2.6 that
//! the layer makes, what reaches the inner service, sessions, ownership and the cascade.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceExt};
use vidgate::clock::{Clock, ManualClock, Timestamp};
use vidgate::layer::VidgateLayer;
use vidgate::metrics::Metrics;
use vidgate::session::{OwnerKey, Session, SessionId};
use vidgate::store::{
    Cascade, MemoryStore, SessionCreation, SessionTerms, StoreError, StoreStats, StoredToken,
    TokenStore, TokenWrite, Updated, Version, Written,
};
use vidgate::token::{AuthToken, NewToken, TokenId, TokenPatch};

#[allow(dead_code)]
#[path = "../examples/axum_app.rs"]
mod axum_app;

/// What the inner service saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// An origin stand-in: creates answer `{"token": "created-N"}`, everything else 200.
fn origin(
    recorder: Recorder,
    create_body: Option<Bytes>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    service_fn(move |req: Request<Full<Bytes>>| {
        let recorder = recorder.clone();
        let create_body = create_body.clone();
        async move {
            let n = {
                let mut seen = recorder.0.lock().unwrap();
                seen.push(Seen {
                    method: req.method().clone(),
                    uri: req.uri().to_string(),
                    headers: req.headers().clone(),
                });
                seen.len()
            };
            let is_create = req.method() == Method::POST && req.uri().path().ends_with("/videos");
            let body = if is_create {
                create_body.unwrap_or_else(|| Bytes::from(format!(r#"{{"token": "created-{n}"}}"#)))
            } else {
                Bytes::from_static(b"origin says ok")
            };
            let status = if is_create {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(Full::new(body))
                    .unwrap(),
            )
        }
    })
}

struct Harness {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    metrics: Metrics,
    recorder: Recorder,
    create_body: Option<Bytes>,
}

impl Harness {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_700_000_000)));
        let store = MemoryStore::builder()
            .clock(clock.clone() as Arc<dyn Clock>)
            .sweeper(false)
            .build();
        Harness {
            store: Arc::new(store),
            clock,
            metrics: Metrics::new(),
            recorder: Recorder::default(),
            create_body: None,
        }
    }

    async fn token(&self, body: &str) -> Arc<AuthToken> {
        self.store
            .insert_token(NewToken::from_json(body).unwrap())
            .await
            .unwrap()
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, String) {
        let layer = VidgateLayer::new(self.store.clone())
            .metrics(self.metrics.clone())
            .clock(self.clock.clone() as Arc<dyn Clock>);
        let service = tower::Layer::layer(
            &layer,
            origin(self.recorder.clone(), self.create_body.clone()),
        );
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, uri: &str) -> (StatusCode, HeaderMap, String) {
        self.send(req(Method::GET, uri)).await
    }
}

fn req(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn reason(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    v["error"].as_str().unwrap().to_owned()
}

/// Assert a refusal: status, reason, and that the origin saw nothing.
async fn refused(h: &Harness, request: Request<Full<Bytes>>, status: u16, why: &str) -> HeaderMap {
    let before = h.recorder.seen().len();
    let (got, headers, body) = h.send(request).await;
    assert_eq!(
        (got.as_u16(), reason(&body).as_str()),
        (status, why),
        "{body}"
    );
    assert_eq!(
        h.recorder.seen().len(),
        before,
        "a refused request reached the origin"
    );
    headers
}

// --- allowed requests and what reaches the origin ---

#[tokio::test]
async fn an_allowed_read_reaches_the_origin_without_credentials() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": {"resources": ["v1"]}}}"#)
        .await;
    let request = Request::get(format!(
        "/v1/videos/v1/streams/s?a=1&server_auth={}&b=2",
        t.id
    ))
    .header("cookie", "theme=dark; vidgate_session_0000000000000000=x")
    .header("x-vidgate-session", "ignored-for-a-token-without-sessions")
    .body(Full::new(Bytes::new()))
    .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "origin says ok"));
    assert!(
        !headers.contains_key("x-vidgate-session"),
        "no session for a token that needs none"
    );
    let seen = h.recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/v1/videos/v1/streams/s?a=1&b=2");
    assert_eq!(seen[0].headers["cookie"], "theme=dark");
    assert!(!seen[0].headers.contains_key("x-vidgate-session"));
    assert_eq!(
        h.store
            .token(t.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .sessions_created,
        0
    );
}

#[tokio::test]
async fn a_bearer_token_is_consumed() {
    let h = Harness::new();
    let t = h.token(r#"{"grants": {"read": "all"}}"#).await;
    let request = Request::get("/videos")
        .header("authorization", format!("Bearer {}", t.id))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(h.send(request).await.0, StatusCode::OK);
    assert!(!h.recorder.seen()[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn a_method_override_is_forwarded_as_the_method() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"destroy": {"resources": ["v1"]}}}"#)
        .await;
    let uri = format!("/v1/videos/v1?_method=DELETE&server_auth={}&keep=yes", t.id);
    let (status, _, _) = h.send(req(Method::POST, &uri)).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &h.recorder.seen()[0];
    assert_eq!(seen.method, Method::DELETE);
    assert_eq!(seen.uri, "/v1/videos/v1?keep=yes");
}

#[tokio::test]
async fn options_is_forwarded_unchecked_without_credentials() {
    let h = Harness::new();
    let (status, _, _) = h
        .send(req(Method::OPTIONS, "/videos/v1?server_auth=nope&x=1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.recorder.seen()[0].uri, "/videos/v1?x=1");
}

// --- every refusal the layer makes (SPEC 2.6) ---

#[tokio::test]
async fn bad_path_is_400() {
    let h = Harness::new();
    let t = h.token(r#"{"grants": {"read": "all"}}"#).await;
    for path in [
        "/videos/%2e%2e/x",
        "/videos//v",
        "/videos/a%2Fb",
        "/videos/v;x=1",
        "/videos/a%252F",
    ] {
        refused(
            &h,
            req(Method::GET, &format!("{path}?server_auth={}", t.id)),
            400,
            "bad_path",
        )
        .await;
    }
}

#[tokio::test]
async fn a_conflicting_override_is_bad_request() {
    let h = Harness::new();
    let t = h.token(r#"{"grants": {"read": "all"}}"#).await;
    refused(
        &h,
        req(
            Method::GET,
            &format!("/videos/v?_method=DELETE&server_auth={}", t.id),
        ),
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_route_is_no_route() {
    let h = Harness::new();
    let t = h.token(r#"{"grants": {"read": "all"}}"#).await;
    refused(
        &h,
        req(Method::GET, &format!("/elsewhere?server_auth={}", t.id)),
        404,
        "no_route",
    )
    .await;
    refused(
        &h,
        req(Method::PUT, &format!("/videos?server_auth={}", t.id)),
        404,
        "no_route",
    )
    .await;
}

#[tokio::test]
async fn two_tokens_are_ambiguous() {
    let h = Harness::new();
    let a = h.token(r#"{"grants": {"read": "all"}}"#).await;
    let b = h.token(r#"{"grants": {"read": "all"}}"#).await;
    refused(
        &h,
        req(
            Method::GET,
            &format!("/videos/v?server_auth={}&server_auth={}", a.id, b.id),
        ),
        400,
        "ambiguous_token",
    )
    .await;
}

#[tokio::test]
async fn no_token_is_missing_token_with_www_authenticate() {
    let h = Harness::new();
    let headers = refused(&h, req(Method::GET, "/videos/v"), 401, "missing_token").await;
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
}

#[tokio::test]
async fn unknown_hidden_malformed_and_client_tokens_are_invalid() {
    let h = Harness::new();
    let hidden = h
        .token(r#"{"grants": {"read": "all"}, "hidden": true}"#)
        .await;
    for query in [
        "server_auth=unknown".to_owned(),
        format!("server_auth={}", hidden.id),
        "server_auth=not%20a%20token".to_owned(),
        "client_auth=a.b.c".to_owned(),
    ] {
        refused(
            &h,
            req(Method::GET, &format!("/videos/v?{query}")),
            401,
            "invalid_token",
        )
        .await;
    }
}

#[tokio::test]
async fn an_expired_token_is_token_expired() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": "all"}, "expiration_date": 1700000060}"#)
        .await;
    assert_eq!(
        h.get(&format!("/videos/v?server_auth={}", t.id)).await.0,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_secs(60));
    refused(
        &h,
        req(Method::GET, &format!("/videos/v?server_auth={}", t.id)),
        401,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn a_missing_grant_is_403() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": {"resources": ["v1"]}}}"#)
        .await;
    refused(
        &h,
        req(Method::GET, &format!("/videos/v2?server_auth={}", t.id)),
        403,
        "grant_missing",
    )
    .await;
    refused(
        &h,
        req(Method::DELETE, &format!("/videos/v1?server_auth={}", t.id)),
        403,
        "grant_missing",
    )
    .await;
    refused(
        &h,
        req(Method::GET, &format!("/videos?server_auth={}", t.id)),
        403,
        "grant_missing",
    )
    .await;
}

#[tokio::test]
async fn sessions_are_limited_and_a_refusal_uses_nothing_up() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": {"resources": ["v"]}}, "session_limit": 2}"#)
        .await;
    // A refused request (grant_missing) creates nothing.
    refused(
        &h,
        req(Method::GET, &format!("/videos/other?server_auth={}", t.id)),
        403,
        "grant_missing",
    )
    .await;
    for _ in 0..2 {
        let (status, headers, _) = h.get(&format!("/videos/v?server_auth={}", t.id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.contains_key("x-vidgate-session"));
    }
    refused(
        &h,
        req(Method::GET, &format!("/videos/v?server_auth={}", t.id)),
        403,
        "session_limit_reached",
    )
    .await;
    assert_eq!(
        h.store
            .token(t.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .sessions_created,
        2
    );
}

#[tokio::test]
async fn a_saved_link_with_its_session_never_uses_up_the_limit() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": {"resources": ["v"]}}, "session_limit": 1}"#)
        .await;
    let (_, headers, _) = h.get(&format!("/videos/v?server_auth={}", t.id)).await;
    let session = headers["x-vidgate-session"].to_str().unwrap().to_owned();
    for _ in 0..10 {
        let (status, headers, _) = h
            .get(&format!("/videos/v?server_auth={}&session={session}", t.id))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !headers.contains_key("x-vidgate-session"),
            "nothing created"
        );
    }
    let via_header = Request::get(format!("/videos/v?server_auth={}", t.id))
        .header("x-vidgate-session", &session)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(h.send(via_header).await.0, StatusCode::OK);
    assert_eq!(
        h.store
            .token(t.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .sessions_created,
        1
    );
    for seen in h.recorder.seen() {
        assert!(!seen.uri.contains("session="), "{}", seen.uri);
        assert!(!seen.uri.contains("server_auth"), "{}", seen.uri);
    }
}

#[tokio::test]
async fn session_refusals_unknown_mismatch_expired() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": "all"}, "usage_expiration_time": 60}"#)
        .await;
    let other = h
        .token(r#"{"grants": {"read": "all"}, "session_limit": 5}"#)
        .await;
    let uri = |session: &str| format!("/videos/v?server_auth={}&session={session}", t.id);
    refused(
        &h,
        req(Method::GET, &uri(&SessionId::generate().to_string())),
        403,
        "unknown_session",
    )
    .await;
    refused(
        &h,
        req(Method::GET, &uri("malformed")),
        403,
        "unknown_session",
    )
    .await;
    let SessionCreation::Created(foreign) = h
        .store
        .create_session(
            &OwnerKey::Server(other.id.clone()),
            SessionTerms::of(&other),
        )
        .await
        .unwrap()
    else {
        panic!("session");
    };
    refused(
        &h,
        req(Method::GET, &uri(&foreign.id.to_string())),
        403,
        "session_mismatch",
    )
    .await;
    let (_, headers, _) = h.get(&format!("/videos/v?server_auth={}", t.id)).await;
    let mine = headers["x-vidgate-session"].to_str().unwrap().to_owned();
    assert_eq!(h.get(&uri(&mine)).await.0, StatusCode::OK);
    h.clock.advance(Duration::from_secs(60));
    refused(&h, req(Method::GET, &uri(&mine)), 403, "session_expired").await;
}

#[tokio::test]
async fn a_cookie_session_is_lenient() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": "all"}, "usage_expiration_time": 60}"#)
        .await;
    let (_, headers, _) = h.get(&format!("/videos/v?server_auth={}", t.id)).await;
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    let name = vidgate::credentials::cookie_name(&OwnerKey::Server(t.id.clone()));
    assert!(set_cookie.starts_with(&format!("{name}=")), "{set_cookie}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=60"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(!set_cookie.contains("Secure"), "not under TLS");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |cookie: &str| {
        Request::get(format!("/videos/v?server_auth={}", t.id))
            .header("cookie", cookie)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let (status, headers, _) = h.send(with_cookie(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !headers.contains_key("set-cookie"),
        "the cookie's session is used"
    );
    // An ended cookie session is replaced, not refused.
    h.clock.advance(Duration::from_secs(61));
    let (status, headers, _) = h.send(with_cookie(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.contains_key("set-cookie"),
        "a new session replaces it"
    );
    // So is garbage.
    assert_eq!(
        h.send(with_cookie(&format!("{name}=garbage"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        h.store
            .token(t.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .sessions_created,
        3
    );
    for seen in h.recorder.seen() {
        assert!(
            !seen.headers.contains_key("cookie"),
            "session cookies are stripped"
        );
    }
}

#[tokio::test]
async fn post_session_opens_a_session_explicitly() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {}, "usage_expiration_time": 3600}"#)
        .await;
    let (status, headers, body) = h
        .send(req(
            Method::POST,
            &format!("/v1/session?server_auth={}", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["session"], headers["x-vidgate-session"].to_str().unwrap());
    assert_eq!(v["expires_at"], 1_700_000_000 + 3600);
    assert!(h.recorder.seen().is_empty(), "answered by vidgate");
    // Even for a token that needs no sessions.
    let plain = h.token(r#"{"grants": {"read": "all"}}"#).await;
    let (status, _, body) = h
        .send(req(
            Method::POST,
            &format!("/session?server_auth={}", plain.id),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["expires_at"],
        serde_json::Value::Null
    );
    refused(&h, req(Method::POST, "/session"), 401, "missing_token").await;
}

// --- ownership and the cascade (SPEC 2.4, 2.5) ---

#[tokio::test]
async fn a_video_created_in_a_session_is_owned_by_it() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"create": {"session_owned": true}, "destroy": {"session_owned": true}}, "session_limit": 2}"#)
        .await;
    let (status, headers, body) = h
        .send(req(Method::POST, &format!("/videos?server_auth={}", t.id)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(h.recorder.seen()[0].headers["accept-encoding"], "identity");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let video = created["token"].as_str().unwrap().to_owned();
    let session = headers["x-vidgate-session"].to_str().unwrap().to_owned();
    // Another session of the same token does not own it.
    let (_, other, _) = h
        .send(req(Method::POST, &format!("/session?server_auth={}", t.id)))
        .await;
    let other = other["x-vidgate-session"].to_str().unwrap().to_owned();
    refused(
        &h,
        req(
            Method::DELETE,
            &format!("/videos/{video}?server_auth={}&session={other}", t.id),
        ),
        403,
        "grant_missing",
    )
    .await;
    let (status, _, _) = h
        .send(req(
            Method::DELETE,
            &format!("/videos/{video}?server_auth={}&session={session}", t.id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The cascade removed it from the session's owned videos.
    let id: SessionId = session.parse().unwrap();
    assert!(h.store.session(id).await.unwrap().unwrap().owned.is_empty());
}

#[tokio::test]
async fn a_create_response_over_a_mebibyte_is_forwarded_whole_and_owns_nothing() {
    let mut h = Harness::new();
    let big = Bytes::from(vec![b'x'; (1 << 20) + 10]);
    h.create_body = Some(big.clone());
    let t = h
        .token(r#"{"grants": {"create": {"session_owned": true}}}"#)
        .await;
    let (status, headers, body) = h
        .send(req(Method::POST, &format!("/videos?server_auth={}", t.id)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body.len(), big.len());
    let id: SessionId = headers["x-vidgate-session"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(h.store.session(id).await.unwrap().unwrap().owned.is_empty());
}

#[tokio::test]
async fn destroying_a_video_removes_it_from_every_token() {
    let h = Harness::new();
    let admin = h.token(r#"{"grants": {"destroy": "all"}}"#).await;
    let viewer = h
        .token(r#"{"grants": {"read": {"resources": ["v1", "v2"]}}}"#)
        .await;
    let volatile = h
        .token(r#"{"grants": {"read": {"resources": ["v1"]}}, "volatile": true}"#)
        .await;
    // A stream's deletion does not cascade.
    let (status, _, _) = h
        .send(req(
            Method::DELETE,
            &format!("/videos/v1/streams/s1?server_auth={}", admin.id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.store.token(volatile.id.as_str()).await.unwrap().is_some());
    let (status, _, _) = h
        .send(req(
            Method::DELETE,
            &format!("/videos/v1?server_auth={}", admin.id),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = h.store.token(viewer.id.as_str()).await.unwrap().unwrap();
    let read = after
        .token
        .grants
        .get(vidgate::token::Action::Read)
        .unwrap();
    assert_eq!(read.resources, vec!["v2"]);
    assert!(
        h.store.token(volatile.id.as_str()).await.unwrap().is_none(),
        "volatile and empty: deleted"
    );
    refused(
        &h,
        req(
            Method::GET,
            &format!("/videos/v1?server_auth={}", viewer.id),
        ),
        403,
        "grant_missing",
    )
    .await;
}

// --- the store being down ---

/// A store whose backend is unreachable.
struct DownStore;

impl TokenStore for DownStore {
    async fn insert_token(&self, _: NewToken) -> Result<Arc<AuthToken>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn token(&self, _: &str) -> Result<Option<StoredToken>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn update_token(&self, _: &str, _: &TokenPatch) -> Result<Option<Updated>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn delete_token(&self, _: &str) -> Result<Option<StoredToken>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn list_tokens(&self, _: usize, _: usize) -> Result<Vec<StoredToken>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn session(&self, _: SessionId) -> Result<Option<Session>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn create_session(
        &self,
        _: &OwnerKey,
        _: SessionTerms,
    ) -> Result<SessionCreation, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn end_session(&self, _: SessionId) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn sessions_of(&self, _: &OwnerKey) -> Result<Vec<Session>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn record_owned(&self, _: SessionId, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn destroy_video(&self, _: &str) -> Result<Cascade, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn write_token(&self, _: &str, _: Version, _: TokenWrite) -> Result<Written, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn tokens_naming(&self, _: &str) -> Result<Vec<TokenId>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn disown(&self, _: &str) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_store_that_is_down_fails_closed() {
    let recorder = Recorder::default();
    let service = tower::Layer::layer(
        &VidgateLayer::new(Arc::new(DownStore)),
        origin(recorder.clone(), None),
    );
    let response = service
        .oneshot(req(Method::GET, "/videos/v?server_auth=abc"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(reason(&String::from_utf8_lossy(&body)), "store_unavailable");
    assert!(recorder.seen().is_empty());
}

/// A memory store whose session lookups fail, as a networked store's can while its token
/// lookups still answer.
struct SessionsDown(MemoryStore);

impl TokenStore for SessionsDown {
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
    async fn session(&self, _: SessionId) -> Result<Option<Session>, StoreError> {
        Err(StoreError::Unavailable("sessions down".into()))
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
        Err(StoreError::Unavailable("sessions down".into()))
    }
}

/// SPEC 2.6: a token that is expired or hidden answers its own 401 before any session lookup
/// matters; only a request whose decision needs the session gets 503.
#[tokio::test]
async fn with_sessions_down_an_expired_or_hidden_token_still_answers_its_own_401() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_700_000_000)));
    let memory = MemoryStore::builder()
        .clock(clock.clone() as Arc<dyn Clock>)
        .sweeper(false)
        .build();
    let store = Arc::new(SessionsDown(memory));
    let new = |extra: &str| {
        NewToken::from_json(&format!(
            r#"{{"grants": {{"read": "all"}}, "session_limit": 3{extra}}}"#
        ))
        .unwrap()
    };
    let expired = store
        .insert_token(new(r#", "expiration_date": 1699999940"#))
        .await
        .unwrap();
    let hidden = store
        .insert_token(new(r#", "hidden": true"#))
        .await
        .unwrap();
    let live = store.insert_token(new("")).await.unwrap();
    let session = SessionId::generate();
    let recorder = Recorder::default();
    let service = tower::Layer::layer(
        &VidgateLayer::new(store).clock(clock as Arc<dyn Clock>),
        origin(recorder.clone(), None),
    );
    for (token, status, why) in [
        (&expired, StatusCode::UNAUTHORIZED, "token_expired"),
        (&hidden, StatusCode::UNAUTHORIZED, "invalid_token"),
        (&live, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
    ] {
        let uri = format!("/videos/v?server_auth={}&session={session}", token.id);
        let response = service
            .clone()
            .oneshot(req(Method::GET, &uri))
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{why}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(reason(&String::from_utf8_lossy(&body)), why);
    }
    assert!(recorder.seen().is_empty(), "nothing reached the origin");
}

/// The same for a client token, verified offline, with the whole store down.
#[tokio::test]
async fn with_the_store_down_an_expired_client_token_still_answers_token_expired() {
    let config = vidgate::config::Config::from_toml_str(
        "[client_tokens]\nleeway = \"0s\"\n\
         [[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret = \"a-secret-of-32-bytes-or-more-123\"\n",
    )
    .unwrap();
    let tokens = vidgate::client_token::ClientTokens::from_config(&config.client_tokens).unwrap();
    let now = 1_700_000_000i64;
    let jwt = |exp: i64| {
        tokens
            .jwt()
            .sign(
                "k",
                &serde_json::json!({"grants": {"read": "all"}, "exp": exp, "jti": "n1", "session_limit": 2}),
            )
            .unwrap()
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(now)));
    let recorder = Recorder::default();
    let service = tower::Layer::layer(
        &VidgateLayer::new(Arc::new(DownStore))
            .client_tokens(tokens.clone())
            .clock(clock as Arc<dyn Clock>),
        origin(recorder.clone(), None),
    );
    let session = SessionId::generate();
    for (exp, status, why) in [
        (now - 60, StatusCode::UNAUTHORIZED, "token_expired"),
        (
            now + 600,
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
        ),
    ] {
        let uri = format!("/videos/v?client_auth={}&session={session}", jwt(exp));
        let response = service
            .clone()
            .oneshot(req(Method::GET, &uri))
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{why}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(reason(&String::from_utf8_lossy(&body)), why);
    }
    assert!(recorder.seen().is_empty());
}

// --- metrics ---

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn requests_and_denials_are_counted_by_value() {
    let h = Harness::new();
    let t = h
        .token(r#"{"grants": {"read": {"resources": ["v"]}}, "session_limit": 1}"#)
        .await;
    h.get(&format!("/videos/v?server_auth={}", t.id)).await;
    h.get(&format!("/videos/w?server_auth={}", t.id)).await;
    h.get("/videos/v").await;
    h.get("/videos/%2e%2e").await;
    h.send(req(Method::POST, &format!("/session?server_auth={}", t.id)))
        .await;
    let text = h.metrics.render();
    assert_eq!(
        metric(
            &text,
            r#"vidgate_requests_total{action="read",outcome="allowed"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"vidgate_requests_total{action="read",outcome="denied"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"vidgate_requests_total{action="none",outcome="denied"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"vidgate_requests_total{action="session",outcome="denied"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&text, r#"vidgate_denials_total{reason="grant_missing"}"#),
        1.0
    );
    assert_eq!(
        metric(&text, r#"vidgate_denials_total{reason="missing_token"}"#),
        1.0
    );
    assert_eq!(
        metric(&text, r#"vidgate_denials_total{reason="bad_path"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"vidgate_denials_total{reason="session_limit_reached"}"#
        ),
        1.0
    );
    assert_eq!(metric(&text, "vidgate_sessions_created_total"), 1.0);
    assert_eq!(metric(&text, "vidgate_decision_seconds_count"), 5.0);
    assert!(!text.contains(t.id.as_str()), "no token in any label");
}

// --- the axum example ---

#[tokio::test]
async fn the_axum_example_is_protected() {
    let store = Arc::new(MemoryStore::builder().build());
    let videos = axum_app::Videos::default();
    let viewer = store
        .insert_token(
            NewToken::from_json(
                r#"{"grants": {"read": "all", "create": "all"}, "session_limit": 3}"#,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let app = axum_app::app(store.clone(), videos);
    let body = |r: axum::response::Response| async move {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    let denied = app
        .clone()
        .oneshot(
            Request::get("/videos")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&body(denied).await), "missing_token");
    let created = app
        .clone()
        .oneshot(
            Request::post(format!("/videos?server_auth={}", viewer.id))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let session = created.headers()["x-vidgate-session"]
        .to_str()
        .unwrap()
        .to_owned();
    let listed = app
        .clone()
        .oneshot(
            Request::get(format!(
                "/videos?server_auth={}&session={session}",
                viewer.id
            ))
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(body(listed).await, r#"["video-1"]"#);
    let shown = app
        .oneshot(
            Request::get(format!(
                "/videos/video-1?server_auth={}&session={session}",
                viewer.id
            ))
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body(shown).await, "the video video-1\n");
    assert_eq!(
        store
            .token(viewer.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .sessions_created,
        1
    );
}
