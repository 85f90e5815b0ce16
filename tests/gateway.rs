//! The whole gateway end to end over real sockets on 127.0.0.1:0 (SPEC 2, 3, 4): a recording
//! hyper origin, `Gateway::bind` + `Gateway::run` with a oneshot shutdown, tokens made through
//! the admin API over HTTP, requests sent by a hyper-util client and by `curl`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{
    assert_error, curl, free_port, metric, pattern, Origin, TestGateway, DRIP_CHUNK, DRIP_CHUNKS,
    SLOW, STREAM_LEN,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An origin and a gateway in front of it.
async fn setup() -> (Origin, TestGateway) {
    let origin = Origin::start().await;
    let gateway = TestGateway::start(origin.addr).await;
    (origin, gateway)
}

/// The session cookie name of a server token (SPEC 2.3), computed here independently.
fn cookie_name(token: &str) -> String {
    let digest = Sha256::digest(format!("s:{token}").as_bytes());
    format!("vidgate_session_{}", &hex::encode(digest)[..16])
}

/// The new session a response hands out: `X-Vidgate-Session`, which the cookie must repeat.
fn handed_out(reply: &common::Reply, token: &str) -> String {
    let id = reply
        .header("x-vidgate-session")
        .unwrap_or_else(|| panic!("no X-Vidgate-Session in {reply:?}"))
        .to_owned();
    assert_eq!(id.len(), 22, "128 bits in URL-safe base64: {id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id}"
    );
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let expected = format!("{}={id}; ", cookie_name(token));
    assert!(
        cookies.iter().any(|c| c.starts_with(&expected)),
        "no {expected}... in {cookies:?}"
    );
    id
}

/// A request that must be refused with `reason` and must not reach the origin.
async fn denied(
    origin: &Origin,
    gateway: &TestGateway,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    status: u16,
    reason: &str,
) {
    let before = origin.count();
    let reply = gateway.send(method.clone(), target, headers, "").await;
    assert_error(&reply, status, reason);
    assert_eq!(
        origin.count(),
        before,
        "{method} {target} was refused with {reason} but reached the origin: {:?}",
        origin.last()
    );
    assert!(
        reply.header("x-vidgate-session").is_none() && reply.header("set-cookie").is_none(),
        "a denial hands out no session: {reply:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// SPEC 2.6: every denial, through the real gateway, never reaching the origin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_path_bad_request_no_route_and_ambiguous_token_answer_400_or_404() {
    let (origin, gw) = setup().await;
    let all = gw
        .create_token(
            json!({"grants": {"read": "all", "create": "all", "update": "all", "destroy": "all"}}),
        )
        .await;
    let other = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let t = format!("server_auth={all}");

    // Control: the same token is allowed on a well-formed path.
    let reply = gw.get(&format!("/v1/videos/v1?{t}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(origin.last().target, "/v1/videos/v1");

    for path in [
        "/v1/videos/a%2Fb",
        "/v1/videos/a%2fb/x",
        "/v1/videos/a%5Cb",
        "/v1/videos/a%00b",
        "/v1/videos/../videos/v1",
        "/v1/videos/v1/..",
        "/v1/videos/%2e%2E/v1",
        "/v1/videos/./v1",
        "/v1/videos//v1",
        "/v1//videos/v1",
        "/v1/videos/v1;jsessionid=1",
        "/v1/videos/a%2541",
    ] {
        denied(
            &origin,
            &gw,
            Method::GET,
            &format!("{path}?{t}"),
            &[],
            400,
            "bad_path",
        )
        .await;
    }

    // Overrides: only on a POST, only to PUT, PATCH or DELETE, never two that disagree.
    for (method, target, headers) in [
        (
            Method::GET,
            format!("/v1/videos/v1?_method=DELETE&{t}"),
            vec![],
        ),
        (
            Method::POST,
            format!("/v1/videos/v1?_method=GET&{t}"),
            vec![],
        ),
        (
            Method::POST,
            format!("/v1/videos/v1?_method=DELETE&{t}"),
            vec![("x-http-method-override", "PUT")],
        ),
        (
            Method::PUT,
            format!("/v1/videos/v1?{t}"),
            vec![("x-http-method-override", "DELETE")],
        ),
    ] {
        denied(&origin, &gw, method, &target, &headers, 400, "bad_request").await;
    }

    for (method, target) in [
        (Method::GET, format!("/v1/nothing-here?{t}")),
        (Method::GET, format!("/elsewhere/videos/v1?{t}")),
        // `{app}` must be admin.app_token.
        (
            Method::GET,
            format!("/v1/applications/not-the-app/videos/v1?{t}"),
        ),
        (Method::PUT, format!("/v1/videos?{t}")),
        (Method::GET, format!("/v1/session?{t}")),
        (Method::TRACE, format!("/v1/videos/v1?{t}")),
    ] {
        denied(&origin, &gw, method, &target, &[], 404, "no_route").await;
    }
    // ... while the application prefix with the right app is routed.
    let reply = gw
        .get(&format!(
            "/v1/applications/{}/videos/v1?{t}",
            common::APP_TOKEN
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        origin.last().target,
        format!("/v1/applications/{}/videos/v1", common::APP_TOKEN)
    );

    for (target, headers) in [
        (
            format!("/v1/videos/v1?server_auth={all}&server_auth={other}"),
            vec![],
        ),
        (
            format!("/v1/videos/v1?server_auth={all}"),
            vec![("authorization", format!("Bearer {other}"))],
        ),
        (
            format!("/v1/videos/v1?server_auth={all}&client_auth=x.y.z"),
            vec![],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        denied(
            &origin,
            &gw,
            Method::GET,
            &target,
            &headers,
            400,
            "ambiguous_token",
        )
        .await;
    }
    // The same value repeated, wherever it appears, is one credential.
    let before = origin.count();
    let reply = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1?server_auth={all}&server_auth={all}"),
            &[("authorization", &format!("Bearer {all}"))],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(origin.count(), before + 1);
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_answer_401_with_www_authenticate() {
    let (origin, gw) = setup().await;
    let hidden = gw
        .create_token(json!({"grants": {"read": "all"}, "hidden": true}))
        .await;
    let expired = gw
        .create_token(json!({"grants": {"read": "all"}, "expiration_date": now_secs() - 1}))
        .await;
    // The admin API still reads the expired token (SPEC 1.5).
    assert_eq!(gw.token(&expired).await["expiration_date"], now_secs() - 1);

    denied(
        &origin,
        &gw,
        Method::GET,
        "/v1/videos/v1",
        &[],
        401,
        "missing_token",
    )
    .await;
    denied(
        &origin,
        &gw,
        Method::POST,
        "/v1/videos",
        &[],
        401,
        "missing_token",
    )
    .await;
    denied(
        &origin,
        &gw,
        Method::POST,
        "/v1/session",
        &[],
        401,
        "missing_token",
    )
    .await;
    // A session alone is not a token.
    denied(
        &origin,
        &gw,
        Method::GET,
        "/v1/videos/v1?session=AAAAAAAAAAAAAAAAAAAAAA",
        &[],
        401,
        "missing_token",
    )
    .await;

    for (target, headers) in [
        ("/v1/videos/v1?server_auth=no-such-token".to_owned(), vec![]),
        (
            "/v1/videos/v1?server_auth=not%20a%20token!".to_owned(),
            vec![],
        ),
        (format!("/v1/videos/v1?server_auth={hidden}"), vec![]),
        (
            "/v1/videos/v1".to_owned(),
            vec![("authorization", format!("Bearer {hidden}"))],
        ),
        // No client-token format is configured: every client token is invalid.
        ("/v1/videos/v1?client_auth=a.b.c".to_owned(), vec![]),
        (
            "/v1/videos/v1?client_auth=00112233445566778899".to_owned(),
            vec![],
        ),
        (
            "/v1/videos/v1".to_owned(),
            vec![("authorization", "Bearer a.b.c".to_owned())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        denied(
            &origin,
            &gw,
            Method::GET,
            &target,
            &headers,
            401,
            "invalid_token",
        )
        .await;
    }
    denied(
        &origin,
        &gw,
        Method::POST,
        &format!("/v1/session?server_auth={hidden}"),
        &[],
        401,
        "invalid_token",
    )
    .await;

    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v1?server_auth={expired}"),
        &[],
        401,
        "token_expired",
    )
    .await;
    denied(
        &origin,
        &gw,
        Method::POST,
        &format!("/v1/session?server_auth={expired}"),
        &[],
        401,
        "token_expired",
    )
    .await;
    assert_eq!(gw.token(&expired).await["sessions_created"], 0);
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn grant_missing_answers_403_and_creates_no_session() {
    let (origin, gw) = setup().await;
    // Needs sessions, so that a wrongly allowed request would also create one.
    let reader = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 5}))
        .await;
    let t = format!("server_auth={reader}");
    for (method, target) in [
        (Method::GET, format!("/v1/videos/v2?{t}")),
        (Method::HEAD, format!("/v1/videos/v2/stream?{t}")),
        // Listing needs read.all.
        (Method::GET, format!("/v1/videos?{t}")),
        (Method::POST, format!("/v1/videos?{t}")),
        (Method::PUT, format!("/v1/videos/v1?{t}")),
        (Method::POST, format!("/v1/videos/v1/streams?{t}")),
        (Method::DELETE, format!("/v1/videos/v1?{t}")),
        (Method::POST, format!("/v1/videos/v1?_method=DELETE&{t}")),
    ] {
        let before = origin.count();
        let reply = gw.send(method.clone(), &target, &[], "").await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {target}: {reply:?}"
        );
        if method != Method::HEAD {
            assert_error(&reply, 403, "grant_missing");
        }
        assert_eq!(
            origin.count(),
            before,
            "{method} {target} reached the origin"
        );
    }
    assert_eq!(gw.token(&reader).await["sessions_created"], 0);
    assert!(gw.sessions_of(&reader).await.is_empty());

    // The grant it has works.
    let reply = gw.get(&format!("/v1/videos/v1?{t}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(gw.token(&reader).await["sessions_created"], 1);
}

#[tokio::test]
async fn session_denials_answer_403_and_use_up_nothing() {
    let (origin, gw) = setup().await;
    let grants = json!({"read": {"resources": ["v1"]}});

    // session_limit_reached: one session, ever.
    let once = gw
        .create_token(json!({"grants": grants, "session_limit": 1}))
        .await;
    let first = gw.get(&format!("/v1/videos/v1?server_auth={once}")).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let only = handed_out(&first, &once);
    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v1?server_auth={once}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
    denied(
        &origin,
        &gw,
        Method::POST,
        &format!("/v1/session?server_auth={once}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
    assert_eq!(gw.token(&once).await["sessions_created"], 1);
    // The session it has still works, any number of times.
    for _ in 0..3 {
        let reply = gw
            .get(&format!("/v1/videos/v1?server_auth={once}&session={only}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }

    // session_expired: a session ended through the admin API.
    let limited = gw
        .create_token(json!({"grants": grants, "session_limit": 5}))
        .await;
    let opened = gw
        .send(
            Method::POST,
            &format!("/v1/session?server_auth={limited}"),
            &[],
            "",
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{opened:?}");
    let ended = opened.json()["session"].as_str().unwrap().to_owned();
    let reply = gw
        .admin(Method::DELETE, &format!("/v1/sessions/{ended}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    for (target, headers) in [
        (
            format!("/v1/videos/v1?server_auth={limited}&session={ended}"),
            vec![],
        ),
        (
            format!("/v1/videos/v1?server_auth={limited}"),
            vec![("x-vidgate-session", ended.clone())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        denied(
            &origin,
            &gw,
            Method::GET,
            &target,
            &headers,
            403,
            "session_expired",
        )
        .await;
    }

    // unknown_session: well-formed but never created, or not an id at all.
    for session in ["AAAAAAAAAAAAAAAAAAAAAA", "not-a-session"] {
        denied(
            &origin,
            &gw,
            Method::GET,
            &format!("/v1/videos/v1?server_auth={limited}&session={session}"),
            &[],
            403,
            "unknown_session",
        )
        .await;
    }

    // session_mismatch: another token's session.
    let mine = gw
        .create_token(json!({"grants": grants, "session_limit": 5}))
        .await;
    let reply = gw.get(&format!("/v1/videos/v1?server_auth={mine}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let theirs = handed_out(&reply, &mine);
    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v1?server_auth={limited}&session={theirs}"),
        &[],
        403,
        "session_mismatch",
    )
    .await;

    // None of these denials created a session.
    assert_eq!(gw.token(&limited).await["sessions_created"], 1);
    assert_eq!(gw.token(&mine).await["sessions_created"], 1);
    assert_eq!(gw.token(&once).await["sessions_created"], 1);
}

#[tokio::test]
async fn an_origin_that_is_not_listening_answers_502_upstream_unavailable() {
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = TestGateway::start(closed).await;
    let token = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let started = Instant::now();
    let reply = gw.get(&format!("/v1/videos/v1?server_auth={token}")).await;
    assert_error(&reply, 502, "upstream_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let text = gw.scrape().await;
    assert_eq!(
        metric(
            &text,
            r#"vidgate_denials_total{reason="upstream_unavailable"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&text, r#"vidgate_upstream_responses_total{class="error"}"#),
        1.0
    );
}

#[tokio::test]
async fn an_origin_slower_than_response_timeout_answers_504_upstream_timeout() {
    let (origin, gw) = setup().await;
    let token = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let started = Instant::now();
    let reply = gw
        .get(&format!("/v1/videos/v1/slow?server_auth={token}"))
        .await;
    let took = started.elapsed();
    assert_error(&reply, 504, "upstream_timeout");
    // The origin got it (it is the origin that was too slow), without the token.
    assert_eq!(origin.last().target, "/v1/videos/v1/slow");
    // 1 s configured; the origin would have answered after SLOW.
    assert!(took < SLOW - Duration::from_millis(500), "took {took:?}");
}

// ---------------------------------------------------------------------------------------------
// SPEC 2.1, 2.2: what reaches the origin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn credentials_never_reach_the_origin_and_everything_else_survives_in_order() {
    let (origin, gw) = setup().await;
    let token = gw
        .create_token(json!({
            "grants": {"read": {"resources": ["v1"]}, "destroy": {"resources": ["v1"]}},
            "session_limit": 10
        }))
        .await;
    let first = gw.get(&format!("/v1/videos/v1?server_auth={token}")).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let session = handed_out(&first, &token);
    let cookie = cookie_name(&token);
    let secrets = [token.as_str(), session.as_str(), cookie.as_str()];
    let check_clean = |what: &str| {
        let seen = origin.last();
        let head = seen.head_text();
        for secret in secrets {
            assert!(
                !head.contains(secret),
                "{what}: {secret} reached the origin:\n{head}"
            );
        }
        for name in [
            "authorization: bearer",
            "x-vidgate-session",
            "x-http-method-override",
            "x-http-method:",
            "x-method-override",
            "server_auth",
            "client_auth",
            "session=",
            "_method",
            "vidgate_session_",
        ] {
            assert!(
                !head.to_ascii_lowercase().contains(name),
                "{what}: {name} reached the origin:\n{head}"
            );
        }
        seen
    };

    // Every kind of credential at once on a read, among other parameters, headers, cookies.
    let reply = gw
        .send(
            Method::GET,
            &format!(
                "/v1/videos/v1?a=1&server_auth={token}&b=two%20x&session={session}&c=&a=4&server_auth={token}"
            ),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-vidgate-session", &session),
                ("cookie", &format!("first=1; {cookie}={session}; last=2")),
                ("cookie", "other=3"),
                ("x-keep", "yes"),
                ("accept", "video/*"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(
        reply.header("x-vidgate-session").is_none(),
        "reused, not created"
    );
    let seen = check_clean("read");
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.target, "/v1/videos/v1?a=1&b=two%20x&c=&a=4");
    let cookies: Vec<String> = seen
        .header_values("cookie")
        .iter()
        .flat_map(|v| {
            v.split(';')
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(cookies, ["first=1", "last=2", "other=3"]);
    assert_eq!(seen.header_values("x-keep"), ["yes"]);
    assert_eq!(seen.header_values("accept"), ["video/*"]);
    assert_eq!(seen.header_values("authorization"), Vec::<String>::new());

    // A method override on a POST: the origin runs a DELETE (a stream's: no cascade), the
    // override is gone, a non-Bearer Authorization survives, forwarding headers are vidgate's.
    let reply = gw
        .send(
            Method::POST,
            &format!(
                "/v1/videos/v1/streams/s1?_method=DELETE&server_auth={token}&keep=1&session={session}"
            ),
            &[
                ("x-http-method-override", "DELETE"),
                ("x-http-method", "delete"),
                ("x-method-override", "Delete"),
                ("authorization", "Basic b3JpZ2luOnB3"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=6.6.6.6"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = check_clean("override");
    assert_eq!(seen.method, Method::DELETE);
    assert_eq!(seen.target, "/v1/videos/v1/streams/s1?keep=1");
    assert_eq!(seen.header_values("authorization"), ["Basic b3JpZ2luOnB3"]);
    assert_eq!(seen.header_values("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header_values("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.header_values("forwarded"), Vec::<String>::new());
    assert_eq!(
        seen.header_values("x-forwarded-host"),
        [gw.proxy.to_string()]
    );
    assert_eq!(seen.header_values("host"), [origin.addr.to_string()]);
    // Deleting a stream does not cascade.
    assert_eq!(
        gw.token(&token).await["grants"]["destroy"]["resources"],
        json!(["v1"])
    );

    // A preflight is forwarded unchecked, with every credential stripped, client ones too.
    let reply = gw
        .send(
            Method::OPTIONS,
            &format!("/v1/videos/v1?client_auth=x.y.z&z=9&server_auth={token}&session={session}"),
            &[
                ("authorization", "Bearer a.b.c"),
                ("x-vidgate-session", &session),
                ("cookie", &format!("{cookie}={session}")),
                ("access-control-request-method", "GET"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = check_clean("preflight");
    assert_eq!(seen.method, Method::OPTIONS);
    assert_eq!(seen.target, "/v1/videos/v1?z=9");
    assert!(!seen.head_text().contains("x.y.z"));
    assert!(!seen.head_text().contains("a.b.c"));
    assert_eq!(seen.header_values("cookie"), Vec::<String>::new());
    assert_eq!(seen.header_values("access-control-request-method"), ["GET"]);

    // A token that needs no sessions: session credentials are stripped all the same.
    let plain = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let reply = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1?session={session}&server_auth={plain}&q=1"),
            &[("x-vidgate-session", &session)],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(reply.header("x-vidgate-session").is_none());
    let seen = check_clean("plain token");
    assert_eq!(seen.target, "/v1/videos/v1?q=1");
    assert!(!seen.head_text().contains(&plain));
    assert_eq!(gw.token(&plain).await["sessions_created"], 0);
}

#[tokio::test]
async fn the_origin_gets_the_effective_method_and_the_body() {
    let (origin, gw) = setup().await;
    let token = gw
        .create_token(
            json!({"grants": {"update": {"resources": ["v1"]}, "destroy": {"resources": ["v2"]}}}),
        )
        .await;
    for (method, target, expected_method, expected_target) in [
        (
            Method::POST,
            format!("/v1/videos/v1?server_auth={token}"),
            Method::POST,
            "/v1/videos/v1",
        ),
        (
            Method::POST,
            format!("/v1/videos/v1?_method=put&server_auth={token}"),
            Method::PUT,
            "/v1/videos/v1",
        ),
        (
            Method::POST,
            format!("/v1/videos/v1?server_auth={token}&_method=PATCH"),
            Method::PATCH,
            "/v1/videos/v1",
        ),
        (
            Method::POST,
            format!("/v1/videos/v2?_method=DELETE&server_auth={token}"),
            Method::DELETE,
            "/v1/videos/v2",
        ),
    ] {
        let reply = gw
            .send(
                method,
                &target,
                &[("content-type", "application/json")],
                r#"{"title":"t"}"#,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{target}: {reply:?}");
        let seen = origin.last();
        assert_eq!(seen.method, expected_method, "{target}");
        assert_eq!(seen.target, expected_target, "{target}");
        assert_eq!(
            seen.body,
            Bytes::from_static(br#"{"title":"t"}"#),
            "{target}"
        );
        assert_eq!(seen.header_values("x-forwarded-for"), ["127.0.0.1"]);
        assert_eq!(seen.header_values("x-forwarded-proto"), ["http"]);
    }
    // The override is checked as what it is: DELETE of v1 is not granted by update on v1.
    denied(
        &origin,
        &gw,
        Method::POST,
        &format!("/v1/videos/v1?_method=DELETE&server_auth={token}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// SPEC 2.3, 2.4, 2.5: sessions, ownership, the destroy cascade
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_are_handed_out_once_and_reused_without_being_created_again() {
    let (origin, gw) = setup().await;
    let token = gw
        .create_token(json!({
            "grants": {"read": {"resources": ["v1"]}},
            "session_limit": 3,
            "usage_expiration_time": 3600
        }))
        .await;
    let started = now_secs();
    let first = gw.get(&format!("/v1/videos/v1?server_auth={token}")).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let session = handed_out(&first, &token);
    let set_cookie = first.header("set-cookie").unwrap();
    let (head, max_age) = set_cookie.rsplit_once("; Max-Age=").expect(set_cookie);
    assert_eq!(
        head,
        format!(
            "{}={session}; Path=/; HttpOnly; SameSite=Lax",
            cookie_name(&token)
        )
    );
    let max_age: u64 = max_age.parse().expect(set_cookie);
    assert!((3590..=3600).contains(&max_age), "{set_cookie}");
    assert_eq!(gw.token(&token).await["sessions_created"], 1);
    let sessions = gw.sessions_of(&token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["session"], session.as_str());
    assert_eq!(sessions[0]["token"], token.as_str());

    // Reused by query, header and cookie: nothing new is created, nothing handed out.
    let cookie = format!("{}={session}", cookie_name(&token));
    for (target, headers) in [
        (
            format!("/v1/videos/v1?server_auth={token}&session={session}"),
            vec![],
        ),
        (
            format!("/v1/videos/v1/stream?session={session}&server_auth={token}"),
            vec![],
        ),
        (
            format!("/v1/videos/v1?server_auth={token}"),
            vec![("x-vidgate-session", session.as_str())],
        ),
        (
            format!("/v1/videos/v1?server_auth={token}"),
            vec![("cookie", cookie.as_str())],
        ),
        (
            format!("/v1/videos/v1?server_auth={token}&session={session}"),
            vec![],
        ),
    ] {
        let reply = gw.send(Method::GET, &target, &headers, "").await;
        assert!(reply.status.is_success(), "{target}: {reply:?}");
        assert!(
            reply.header("x-vidgate-session").is_none(),
            "{target}: {reply:?}"
        );
        assert!(reply.header("set-cookie").is_none(), "{target}: {reply:?}");
    }
    assert_eq!(gw.token(&token).await["sessions_created"], 1);

    // A cookie that names no usable session is lenient: a new session replaces it.
    let reply = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1?server_auth={token}"),
            &[(
                "cookie",
                &format!("{}=AAAAAAAAAAAAAAAAAAAAAA", cookie_name(&token)),
            )],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let replaced = handed_out(&reply, &token);
    assert_ne!(replaced, session);
    assert_eq!(gw.token(&token).await["sessions_created"], 2);

    // POST /session: 201, answered by vidgate itself.
    let before = origin.count();
    let reply = gw
        .send(
            Method::POST,
            &format!("/v1/session?server_auth={token}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let explicit = handed_out(&reply, &token);
    assert_eq!(body["session"], explicit.as_str());
    let expires_at = body["expires_at"]
        .as_i64()
        .expect("an end: usage_expiration_time");
    assert!(
        (started + 3600..=now_secs() + 3600).contains(&expires_at),
        "{expires_at}"
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(origin.count(), before, "POST /session is not forwarded");
    assert_eq!(gw.token(&token).await["sessions_created"], 3);
    let mut listed: Vec<String> = gw
        .sessions_of(&token)
        .await
        .iter()
        .map(|s| s["session"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut expected = vec![session.clone(), replaced, explicit];
    expected.sort();
    assert_eq!(listed, expected);

    // The limit is reached; the sessions already out still work.
    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v1?server_auth={token}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
    let reply = gw
        .get(&format!(
            "/v1/videos/v1?server_auth={token}&session={session}"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    // A token that needs no sessions still gets one from POST /session, and nothing else.
    let plain = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let reply = gw
        .send(
            Method::POST,
            &format!("/v1/session?server_auth={plain}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["expires_at"], Value::Null);
    handed_out(&reply, &plain);
    let reply = gw.get(&format!("/v1/videos/v1?server_auth={plain}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("x-vidgate-session").is_none());
    assert_eq!(gw.token(&plain).await["sessions_created"], 1);
}

#[tokio::test]
async fn a_video_created_in_a_session_can_be_destroyed_in_that_session_only() {
    let (origin, gw) = setup().await;
    let owner = gw
        .create_token(json!({
            "grants": {"create": {"session_owned": true}, "destroy": {"session_owned": true}}
        }))
        .await;
    let reply = gw
        .send(
            Method::POST,
            &format!("/v1/videos?server_auth={owner}"),
            &[
                ("content-type", "application/json"),
                ("accept-encoding", "gzip"),
            ],
            r#"{"title":"mine"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body, Bytes::from_static(br#"{"token":"new-1"}"#));
    let creator = handed_out(&reply, &owner);
    let seen = origin.last();
    assert_eq!(
        (seen.method.clone(), seen.target.as_str()),
        (Method::POST, "/v1/videos")
    );
    assert_eq!(seen.body, Bytes::from_static(br#"{"title":"mine"}"#));
    assert_eq!(seen.header_values("accept-encoding"), ["identity"]);
    let sessions = gw.sessions_of(&owner).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["owned"], json!(["new-1"]));

    // Another session of the same token does not own it.
    let other = gw
        .send(
            Method::POST,
            &format!("/v1/session?server_auth={owner}"),
            &[],
            "",
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{other:?}");
    let other = other.json()["session"].as_str().unwrap().to_owned();
    denied(
        &origin,
        &gw,
        Method::DELETE,
        &format!("/v1/videos/new-1?server_auth={owner}&session={other}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
    // Nor does a request that would open a new session.
    denied(
        &origin,
        &gw,
        Method::DELETE,
        &format!("/v1/videos/new-1?server_auth={owner}"),
        &[],
        403,
        "grant_missing",
    )
    .await;

    // The creating session does.
    let reply = gw
        .send(
            Method::DELETE,
            &format!("/v1/videos/new-1?server_auth={owner}&session={creator}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = origin.last();
    assert_eq!(
        (seen.method.clone(), seen.target.as_str()),
        (Method::DELETE, "/v1/videos/new-1")
    );
    // The cascade took it out of the session's owned videos.
    let owned: Vec<Value> = gw
        .sessions_of(&owner)
        .await
        .iter()
        .map(|s| s["owned"].clone())
        .collect();
    assert_eq!(owned, [json!([]), json!([])]);
    denied(
        &origin,
        &gw,
        Method::DELETE,
        &format!("/v1/videos/new-1?server_auth={owner}&session={creator}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
    assert_eq!(gw.token(&owner).await["sessions_created"], 2);
}

#[tokio::test]
async fn an_allowed_destroy_removes_the_video_from_every_token() {
    let (origin, gw) = setup().await;
    let reader = gw
        .create_token(json!({"grants": {"read": {"resources": ["v9", "v8"]}}}))
        .await;
    let volatile = gw
        .create_token(json!({"grants": {"read": {"resources": ["v9"]}}, "volatile": true}))
        .await;
    let destroyer = gw
        .create_token(json!({"grants": {"destroy": {"resources": ["v9", "v8"]}}}))
        .await;
    assert_eq!(
        gw.get(&format!("/v1/videos/v9?server_auth={reader}"))
            .await
            .status,
        StatusCode::OK
    );

    // A stream's deletion does not cascade.
    let reply = gw
        .send(
            Method::DELETE,
            &format!("/v1/videos/v9/streams/s1?server_auth={destroyer}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        gw.token(&reader).await["grants"]["read"]["resources"],
        json!(["v9", "v8"])
    );

    // The video's does.
    let reply = gw
        .send(
            Method::DELETE,
            &format!("/v1/videos/v9?server_auth={destroyer}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, Bytes::from_static(br#"{"deleted":true}"#));
    assert_eq!(origin.last().target, "/v1/videos/v9");
    assert_eq!(
        gw.token(&reader).await["grants"]["read"]["resources"],
        json!(["v8"])
    );
    assert_eq!(
        gw.token(&destroyer).await["grants"]["destroy"]["resources"],
        json!(["v8"])
    );
    // The volatile token became empty and is gone.
    let gone = gw
        .admin(Method::GET, &format!("/v1/authtokens/{volatile}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:?}");

    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v9?server_auth={reader}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
    denied(
        &origin,
        &gw,
        Method::GET,
        &format!("/v1/videos/v9?server_auth={volatile}"),
        &[],
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(
        gw.get(&format!("/v1/videos/v8?server_auth={reader}"))
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// curl, as users run it
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn curl_gets_the_allowed_request_the_denials_and_byte_ranges() {
    let (origin, gw) = setup().await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 5}))
        .await;

    let url = gw.url(&format!("/v1/videos/v1?server_auth={token}"));
    let allowed = curl(&[&url]).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.text(), "origin saw GET /v1/videos/v1");
    assert_eq!(allowed.header("x-origin"), Some("yes"));
    assert!(allowed.header("x-vidgate-session").is_some(), "{allowed:?}");

    let missing = curl(&[&gw.url("/v1/videos/v1")]).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    assert_eq!(missing.json()["error"], "missing_token");
    assert!(missing.json()["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        missing.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let other = curl(&[&gw.url(&format!("/v1/videos/v2?server_auth={token}"))]).await;
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(other.json()["error"], "grant_missing");
    // curl normalises dot segments unless told not to; vidgate refuses them.
    let dots = curl(&[
        "--path-as-is",
        &gw.url(&format!("/v1/videos/v2/../v1?server_auth={token}")),
    ])
    .await;
    assert_eq!(dots.status, 400, "{dots:?}");
    assert_eq!(dots.json()["error"], "bad_path");

    // Bearer, and a cookie jar that carries the session from one run to the next.
    let jar = std::env::temp_dir().join(format!("vidgate-e2e-jar-{}", std::process::id()));
    let jar = jar.to_str().unwrap();
    let bearer = format!("Authorization: Bearer {token}");
    let first = curl(&["-c", jar, "-H", &bearer, &gw.url("/v1/videos/v1/stream")]).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body, pattern(0, STREAM_LEN));
    let created = gw.token(&token).await["sessions_created"].as_i64().unwrap();
    let again = curl(&["-b", jar, "-H", &bearer, &gw.url("/v1/videos/v1/stream")]).await;
    let _ = std::fs::remove_file(jar);
    assert_eq!(again.status, 200, "{again:?}");
    assert!(again.header("x-vidgate-session").is_none(), "{again:?}");
    assert_eq!(gw.token(&token).await["sessions_created"], created);
    assert!(!origin.last().head_text().contains(&token));

    // Range: exactly the origin's bytes 100..=199, as a 206.
    let url = gw.url(&format!("/v1/videos/v1/stream?server_auth={token}"));
    let range = curl(&["-r", "100-199", &url]).await;
    assert_eq!(range.status, 206, "{range:?}");
    assert_eq!(range.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(range.header("content-length"), Some("100"));
    assert_eq!(range.body.len(), 100);
    assert_eq!(range.body, pattern(100, 100));
    let seen = origin.last();
    assert_eq!(seen.header_values("range"), ["bytes=100-199"]);
    assert_eq!(seen.target, "/v1/videos/v1/stream");
}

// ---------------------------------------------------------------------------------------------
// SPEC 4: metrics, over HTTP from the admin listener
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_the_traffic_by_value_and_hold_no_secret() {
    let (_origin, gw) = setup().await;
    let reader = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}}))
        .await;
    let session_token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 10}))
        .await;

    let ok = |r: &common::Reply| assert!(r.status.is_success(), "{r:?}");
    ok(&gw.get(&format!("/v1/videos/v1?server_auth={reader}")).await);
    let opened = gw
        .get(&format!("/v1/videos/v1?server_auth={session_token}"))
        .await;
    ok(&opened);
    let session = handed_out(&opened, &session_token);
    ok(&gw
        .get(&format!(
            "/v1/videos/v1?server_auth={session_token}&session={session}"
        ))
        .await);
    assert_eq!(gw.get("/v1/videos/v1").await.status, 401);
    assert_eq!(gw.get("/v1/videos/v1").await.status, 401);
    assert_eq!(
        gw.get(&format!("/v1/videos/v2?server_auth={reader}"))
            .await
            .status,
        403
    );
    assert_eq!(
        gw.get(&format!("/v1/elsewhere?server_auth={reader}"))
            .await
            .status,
        404
    );
    let explicit = gw
        .send(
            Method::POST,
            &format!("/v1/session?server_auth={session_token}"),
            &[],
            "",
        )
        .await;
    assert_eq!(explicit.status, StatusCode::CREATED);
    let explicit = explicit.json()["session"].as_str().unwrap().to_owned();
    assert_eq!(
        gw.get(&format!("/v1/videos/v1/slow?server_auth={reader}"))
            .await
            .status,
        504
    );
    // Admin traffic is not counted as requests.
    gw.token(&reader).await;
    gw.sessions_of(&session_token).await;

    let text = gw.scrape().await;
    let requests = |labels: &str| metric(&text, &format!("vidgate_requests_total{{{labels}}}"));
    assert_eq!(requests(r#"action="read",outcome="allowed""#), 4.0);
    assert_eq!(requests(r#"action="read",outcome="denied""#), 3.0);
    assert_eq!(requests(r#"action="none",outcome="denied""#), 1.0);
    assert_eq!(requests(r#"action="session",outcome="allowed""#), 1.0);
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("vidgate_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        total, 9.0,
        "nine proxy requests, admin ones not counted:\n{text}"
    );

    let denials = |reason: &str| {
        metric(
            &text,
            &format!(r#"vidgate_denials_total{{reason="{reason}"}}"#),
        )
    };
    assert_eq!(denials("missing_token"), 2.0);
    assert_eq!(denials("grant_missing"), 1.0);
    assert_eq!(denials("no_route"), 1.0);
    assert_eq!(denials("upstream_timeout"), 1.0);
    let upstream = |class: &str| {
        metric(
            &text,
            &format!(r#"vidgate_upstream_responses_total{{class="{class}"}}"#),
        )
    };
    assert_eq!(upstream("2xx"), 3.0);
    assert_eq!(upstream("4xx"), 0.0);
    assert_eq!(upstream("error"), 1.0);
    assert_eq!(metric(&text, "vidgate_sessions_created_total"), 2.0);
    assert_eq!(metric(&text, "vidgate_upstream_seconds_count"), 4.0);
    // Gauges: refreshed from the store when scraped.
    assert_eq!(metric(&text, "vidgate_tokens"), 2.0);
    assert_eq!(metric(&text, "vidgate_sessions"), 2.0);

    for secret in [
        reader.as_str(),
        session_token.as_str(),
        session.as_str(),
        explicit.as_str(),
        "v1",
        "v2",
        "127.0.0.1",
        "elsewhere",
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics:\n{text}");
    }

    // The same registry, seen through the gateway's handle.
    let stats = vidgate::store::TokenStore::stats(&gw.store).await.unwrap();
    gw.metrics.store_stats(&stats);
    assert_eq!(metric(&gw.metrics.render(), "vidgate_tokens"), 2.0);
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_drains_a_download_in_flight_and_refuses_new_connections() {
    let (origin, mut gw) = setup().await;
    let token = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let client = common::Http::new();
    let request = Request::get(gw.url(&format!("/v1/videos/v1/drip?server_auth={token}")))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let response = client.client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = Vec::new();
    let frame = body.frame().await.expect("a first chunk").unwrap();
    received.extend_from_slice(&frame.into_data().unwrap());
    assert!(received.len() < DRIP_CHUNKS * DRIP_CHUNK);

    gw.signal_shutdown();

    // New connections are refused while the download is still being drained: the origin
    // holds the rest of it until released below.
    // (A connection caught in the listener's backlog as it closes is reset instead.)
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match tokio::net::TcpStream::connect(gw.proxy).await {
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
                Err(_) => {}
                Ok(stream) => drop(stream),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the proxy stops accepting new connections as soon as shutdown begins");

    origin.release_drip();
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the download is not cut");
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    assert_eq!(received.len(), DRIP_CHUNKS * DRIP_CHUNK);
    assert!(
        received == pattern(0, DRIP_CHUNKS * DRIP_CHUNK),
        "bytes differ"
    );

    gw.finished(Duration::from_secs(4))
        .await
        .expect("run returns Ok after draining");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for addr in [gw.proxy, gw.admin] {
        let error = tokio::net::TcpStream::connect(addr)
            .await
            .expect_err("nothing listens after shutdown");
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{addr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Embedding: the run future
// ---------------------------------------------------------------------------------------------

/// Whether `T` is `Send`, asked at run time so that a `!Send` type fails this one test instead
/// of the whole file's build: the inherent method (bounded by `Send`) wins over the trait's
/// when the bound holds.
struct SendProbe<T>(std::marker::PhantomData<T>);

trait NotSend {
    fn is_send(&self) -> bool {
        false
    }
}

impl<T> NotSend for SendProbe<T> {}

impl<T: Send> SendProbe<T> {
    fn is_send(&self) -> bool {
        true
    }
}

fn probe<T>(_: &T) -> SendProbe<T> {
    SendProbe(std::marker::PhantomData)
}

/// server.rs says tests and the binary decide what ends a run; an application that embeds the
/// gateway (and these tests) want `tokio::spawn(gateway.run(shutdown))`, which needs `Send`.
#[tokio::test]
async fn gateway_run_is_a_send_future_that_tokio_spawn_accepts() {
    // The probe itself works.
    assert!(probe(&async {}).is_send());
    assert!(!probe(&std::rc::Rc::new(())).is_send());

    let origin = Origin::start().await;
    let config =
        vidgate::config::Config::from_toml_str(&common::gateway_toml(origin.addr)).unwrap();
    let gateway = vidgate::server::Gateway::bind(config).await.unwrap();
    let run = gateway.run(async {});
    assert!(
        probe(&run).is_send(),
        "Gateway::run's future is not Send: src/server.rs holds the \
         Result<watch::Ref<bool>, _> of `stop.wait_for(..)` in tokio::select!'s output enum"
    );
}
