//! Client-side tokens (SPEC 1.3) end to end: tokens minted by the libraries customers' servers
//! use, presented to the whole gateway over real sockets, in front of a recording origin.
//!
//! JWTs come from PyJWT (HS256, EdDSA, RS256, with the key pairs of `tests/keys/`), and
//! Ziggeo-format tokens from Ziggeo's own Python server SDK, both driven by
//! `tests/python/client_tokens.py` (`pip install -r tests/python/requirements.txt`). Forgeries
//! that those libraries refuse to make are built by hand (`alg: none`) or signed by the
//! script's `raw_hs256` job (an HS256 token keyed with an RSA public key's PEM text).
//!
//! The gateways get the public keys as inline PEM text, except in the one test of the file-path
//! form.
//!
//! Nothing here waits for time to pass: expiry is tested with `exp` and `nbf` values placed
//! relative to now, well inside or well outside the leeway. The gateways here have a 120 s
//! leeway, so that a token minted "a minute ago" stays inside it however slowly a busy
//! machine runs Python (a 5 s leeway with 2 s margins flaked under load).

mod common;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use common::{assert_error, gateway_toml, metric, Origin, Reply, Seen, TestGateway, APP_TOKEN};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use vidgate::client_token::ZiggeoFormat;

/// The secret of the HS256 key `hs`.
const HS_SECRET: &str = "client-token-tests-hs256-secret-0123456789";
/// The Ziggeo application the gateway accepts tokens of (also the admin app token).
const ZIGGEO_APP: &str = APP_TOKEN;
/// Its encryption key.
const ZIGGEO_KEY: &str = "client-token-tests-ziggeo-encryption-key";
/// The key pairs of `tests/keys/`.
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");
/// The minting script.
const MINTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_tokens.py");
const INSTALL: &str = "pip install -r tests/python/requirements.txt";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An `exp` an hour away: no test gets near it.
fn in_an_hour() -> i64 {
    now_secs() + 3600
}

/// A unique `jti`, so that no two tests share a session counter.
fn jti(name: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{name}-{}-{n}-{}", std::process::id(), now_secs())
}

/// How the gateway config names the public keys of `ed` and `rs`.
#[derive(Clone, Copy)]
enum PublicKeys {
    /// `public_key_pem = "<path>"`.
    Paths,
    /// `public_key_pem = '''<PEM text>'''`.
    Inline,
}

/// The gateway config: the test gateway's, plus the three JWT keys (`hs`, `ed`, `rs`) and the
/// Ziggeo format.
fn client_tokens_toml(upstream: std::net::SocketAddr, public_keys: PublicKeys) -> String {
    let public_key = |file: &str| {
        let path = format!("{KEYS}/{file}");
        match public_keys {
            PublicKeys::Paths => format!("\"{path}\""),
            PublicKeys::Inline => format!("'''\n{}'''", std::fs::read_to_string(&path).unwrap()),
        }
    };
    format!(
        r#"{base}
[client_tokens]
leeway = "120s"

[[client_tokens.jwt_keys]]
kid = "hs"
alg = "HS256"
secret = "{HS_SECRET}"

[[client_tokens.jwt_keys]]
kid = "ed"
alg = "EdDSA"
public_key_pem = {ed}

[[client_tokens.jwt_keys]]
kid = "rs"
alg = "RS256"
public_key_pem = {rs}

[client_tokens.ziggeo]
application_token = "{ZIGGEO_APP}"
encryption_key = "{ZIGGEO_KEY}"
"#,
        base = gateway_toml(upstream),
        ed = public_key("ed25519.pub.pem"),
        rs = public_key("rsa.pub.pem"),
    )
}

/// An origin and a gateway in front of it that verifies client tokens.
///
/// The public keys are inline PEM text here; `public_keys_given_as_file_paths_verify_tokens`
/// covers the file-path form that `config/vidgate.toml` shows.
async fn setup() -> (Origin, TestGateway) {
    let origin = Origin::start().await;
    let gateway =
        TestGateway::from_toml(&client_tokens_toml(origin.addr, PublicKeys::Inline)).await;
    (origin, gateway)
}

// ---------------------------------------------------------------------------------------------
// Minting, with the real Python libraries
// ---------------------------------------------------------------------------------------------

/// Run `tests/python/client_tokens.py` on `jobs`; the tokens, in order.
async fn mint(jobs: Vec<Value>) -> Vec<String> {
    let count = jobs.len();
    let mut child = tokio::process::Command::new("python3")
        .arg(MINTER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 cannot be run ({e}); install Python 3, then {INSTALL}")
        });
    let input = json!({ "jobs": jobs }).to_string();
    let mut stdin = child.stdin.take().expect("a stdin pipe");
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("client_tokens.py finishes within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client_tokens.py failed ({}); if a module is missing, run `{INSTALL}`:\n{stdout}\n{stderr}",
        output.status
    );
    let tokens: Vec<String> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("client_tokens.py printed no JSON array ({e}): {stdout}"));
    assert_eq!(tokens.len(), count, "one token per job: {tokens:?}");
    tokens
}

/// One token.
async fn mint_one(job: Value) -> String {
    mint(vec![job]).await.remove(0)
}

/// A PyJWT job signed with the configured key of this kid's algorithm.
fn pyjwt(alg: &str, kid: &str, claims: Value) -> Value {
    let key = match alg {
        "HS256" => HS_SECRET.to_owned(),
        "EdDSA" => format!("{KEYS}/ed25519.key.pem"),
        "RS256" => format!("{KEYS}/rsa.key.pem"),
        other => panic!("no test key for {other}"),
    };
    json!({"kind": "jwt", "alg": alg, "kid": kid, "key": key, "claims": claims})
}

/// A PyJWT job with an explicit key (a secret, or a private key's path) and extra header fields.
fn pyjwt_with(alg: &str, kid: &str, key: &str, claims: Value, headers: Value) -> Value {
    json!({"kind": "jwt", "alg": alg, "kid": kid, "key": key, "claims": claims, "headers": headers})
}

/// A JWS signed by hand with HMAC-SHA256 over exactly this header and these claims.
fn raw_hs256(header: Value, claims: Value, secret: &str) -> Value {
    json!({"kind": "raw_hs256", "header": header, "claims": claims, "secret": secret})
}

/// A Ziggeo SDK job for the configured application.
fn ziggeo_sdk(options: Value) -> Value {
    ziggeo_sdk_for(ZIGGEO_APP, ZIGGEO_KEY, options)
}

/// A Ziggeo SDK job for any application and encryption key.
fn ziggeo_sdk_for(application_token: &str, encryption_key: &str, options: Value) -> Value {
    json!({
        "kind": "ziggeo",
        "application_token": application_token,
        "encryption_key": encryption_key,
        "options": options,
    })
}

/// Base64url of a JSON value's text, as a JWT part.
fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// ---------------------------------------------------------------------------------------------
// Asking the gateway
// ---------------------------------------------------------------------------------------------

/// The origin saw no client credential: no `client_auth`, no `session`, no `Authorization`,
/// no `X-Vidgate-Session`, and the token's text nowhere in the request head.
fn assert_no_credential(seen: &Seen, token: &str) {
    let head = seen.head_text();
    assert!(!seen.target.contains("client_auth"), "{head}");
    assert!(!seen.target.contains("session="), "{head}");
    assert!(seen.headers.get("authorization").is_none(), "{head}");
    assert!(seen.headers.get("x-vidgate-session").is_none(), "{head}");
    assert!(
        !head.contains(token),
        "the token reached the origin: {head}"
    );
}

/// A GET that must be allowed: 200 from the origin, which saw exactly `path` and no
/// credential.
async fn allowed(
    origin: &Origin,
    gw: &TestGateway,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    token: &str,
) -> Reply {
    let before = origin.count();
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let reply = gw.send(Method::GET, &target, headers, "").await;
    assert_eq!(reply.status, StatusCode::OK, "GET {target}: {reply:?}");
    assert_eq!(
        origin.count(),
        before + 1,
        "GET {target} reached the origin once"
    );
    let seen = origin.last();
    assert_eq!(seen.target, path, "{}", seen.head_text());
    assert_no_credential(&seen, token);
    assert_eq!(reply.text(), format!("origin saw GET {path}"));
    reply
}

/// A GET that must be refused with `reason`, reaching nothing and handing out no session.
async fn refused(
    origin: &Origin,
    gw: &TestGateway,
    what: &str,
    target: &str,
    headers: &[(&str, &str)],
    status: u16,
    reason: &str,
) -> Reply {
    let before = origin.count();
    let reply = gw.send(Method::GET, target, headers, "").await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{what}: expected {status} {reason}, got {reply:?}"
    );
    assert_error(&reply, status, reason);
    assert_eq!(
        origin.count(),
        before,
        "{what} was refused with {reason} but reached the origin"
    );
    assert!(
        reply.header("x-vidgate-session").is_none() && reply.header("set-cookie").is_none(),
        "{what}: a denial hands out no session: {reply:?}"
    );
    reply
}

/// `Bearer <token>`.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The session an allowed response handed out; its cookie is named after `owner` (SPEC 2.3).
fn handed_out(reply: &Reply, owner: Option<&str>) -> String {
    let id = reply
        .header("x-vidgate-session")
        .unwrap_or_else(|| panic!("no X-Vidgate-Session in {reply:?}"))
        .to_owned();
    assert_eq!(id.len(), 22, "128 bits in URL-safe base64: {id}");
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    // A Ziggeo token's nonce is inside its ciphertext: then only the cookie's value is known.
    let expected = match owner {
        Some(owner) => {
            let digest = Sha256::digest(owner.as_bytes());
            format!("vidgate_session_{}={id}; ", &hex::encode(digest)[..16])
        }
        None => format!("={id}; "),
    };
    assert!(
        cookies.iter().any(|c| match owner {
            Some(_) => c.starts_with(&expected),
            None => c.starts_with("vidgate_session_") && c.contains(&expected),
        }),
        "no cookie {expected}... in {cookies:?}"
    );
    id
}

/// `vidgate_denials_total{reason="<reason>"}`.
async fn denials(gw: &TestGateway, reason: &str) -> f64 {
    metric(
        &gw.scrape().await,
        &format!(r#"vidgate_denials_total{{reason="{reason}"}}"#),
    )
}

/// A response as bytes that a client could tell apart: status, every header but `Date` (in
/// order), and the body.
fn observable(reply: &Reply) -> (StatusCode, Vec<(String, Vec<u8>)>, Bytes) {
    let headers = reply
        .headers
        .iter()
        .filter(|(name, _)| *name != http::header::DATE)
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    (reply.status, headers, reply.body.clone())
}

// ---------------------------------------------------------------------------------------------
// JWTs from PyJWT
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pyjwt_tokens_of_each_algorithm_are_accepted_with_their_grants() {
    let (origin, gw) = setup().await;
    let claims = json!({"grants": {"read": {"resources": ["v1"]}}, "exp": in_an_hour()});
    let tokens = mint(vec![
        pyjwt("HS256", "hs", claims.clone()),
        pyjwt("EdDSA", "ed", claims.clone()),
        pyjwt("RS256", "rs", claims),
    ])
    .await;

    for (alg, token) in ["HS256", "EdDSA", "RS256"].iter().zip(&tokens) {
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], *alg, "PyJWT signed with {alg}: {header}");

        // In the query ...
        let query = format!("client_auth={token}");
        let reply = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], token).await;
        assert!(
            reply.header("x-vidgate-session").is_none(),
            "{alg}: a token that needs no sessions gets none: {reply:?}"
        );
        refused(
            &origin,
            &gw,
            &format!("{alg} in the query, on v2"),
            &format!("/v1/videos/v2?{query}"),
            &[],
            403,
            "grant_missing",
        )
        .await;
        // ... and as a Bearer header.
        let authorization = bearer(token);
        let headers = [("authorization", authorization.as_str())];
        allowed(&origin, &gw, "/v1/videos/v1", "", &headers, token).await;
        refused(
            &origin,
            &gw,
            &format!("{alg} as a Bearer, on v2"),
            "/v1/videos/v2",
            &headers,
            403,
            "grant_missing",
        )
        .await;
        // The same token in both places is one credential.
        allowed(&origin, &gw, "/v1/videos/v1", &query, &headers, token).await;
    }

    // Claims vidgate does not read are ignored; "all" grants list too.
    let token = mint_one(pyjwt(
        "EdDSA",
        "ed",
        json!({
            "grants": {"read": "all"},
            "exp": in_an_hour(),
            "iat": now_secs(),
            "iss": "https://customer.example",
            "aud": "someone-else",
            "sub": "user-42",
            "custom": {"anything": [1, 2, 3]},
        }),
    ))
    .await;
    let query = format!("client_auth={token}");
    allowed(&origin, &gw, "/v1/videos/v2", &query, &[], &token).await;
    allowed(&origin, &gw, "/v1/videos", &query, &[], &token).await;
}

#[tokio::test]
async fn pyjwt_exp_and_nbf_are_judged_with_the_leeway() {
    let (origin, gw) = setup().await;
    let grants = json!({"read": {"resources": ["v1"]}});
    let now = now_secs();
    let tokens = mint(vec![
        // 0: expired ten minutes ago, far beyond the leeway.
        pyjwt("HS256", "hs", json!({"grants": grants, "exp": now - 600})),
        // 1: expired a minute ago, inside the leeway.
        pyjwt("HS256", "hs", json!({"grants": grants, "exp": now - 60})),
        // 2: valid only ten minutes from now.
        pyjwt(
            "EdDSA",
            "ed",
            json!({"grants": grants, "exp": now + 3600, "nbf": now + 600}),
        ),
        // 3: valid a minute from now, inside the leeway.
        pyjwt(
            "EdDSA",
            "ed",
            json!({"grants": grants, "exp": now + 3600, "nbf": now + 60}),
        ),
        // 4: expired long ago and granting nothing here: expiry is judged first (SPEC 2.6).
        pyjwt(
            "RS256",
            "rs",
            json!({"grants": {"read": {"resources": ["other"]}}, "exp": now - 3600}),
        ),
        // 5: no exp at all: a client token must end.
        pyjwt("HS256", "hs", json!({"grants": grants})),
        // 6: no grants.
        pyjwt("HS256", "hs", json!({"exp": now + 3600})),
        // 7: a fractional exp (a NumericDate may be one), inside the leeway.
        pyjwt(
            "HS256",
            "hs",
            json!({"grants": grants, "exp": now as f64 - 59.5}),
        ),
    ])
    .await;
    let expired_before = denials(&gw, "token_expired").await;
    let invalid_before = denials(&gw, "invalid_token").await;

    // The inside-the-leeway ones (a margin of a minute).
    for i in [1, 3, 7] {
        let query = format!("client_auth={}", tokens[i]);
        allowed(&origin, &gw, "/v1/videos/v1", &query, &[], &tokens[i]).await;
    }
    for (i, what) in [(0, "exp ten minutes ago"), (4, "exp an hour ago, no grant")] {
        refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v1?client_auth={}", tokens[i]),
            &[],
            401,
            "token_expired",
        )
        .await;
    }
    let authorization = bearer(&tokens[0]);
    refused(
        &origin,
        &gw,
        "exp ten minutes ago, as a Bearer",
        "/v1/videos/v1",
        &[("authorization", &authorization)],
        401,
        "token_expired",
    )
    .await;
    for (i, what) in [
        (2, "nbf ten minutes ahead"),
        (5, "no exp"),
        (6, "no grants"),
    ] {
        refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v1?client_auth={}", tokens[i]),
            &[],
            401,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(denials(&gw, "token_expired").await, expired_before + 3.0);
    assert_eq!(denials(&gw, "invalid_token").await, invalid_before + 3.0);
}

#[tokio::test]
async fn pyjwt_session_limit_allows_exactly_that_many_sessions_per_jti() {
    let (origin, gw) = setup().await;
    let grants = json!({"read": {"resources": ["v1"]}});
    let id = jti("limit");
    let claims = json!({"grants": grants, "exp": in_an_hour(), "session_limit": 2, "jti": id});
    let tokens = mint(vec![
        pyjwt("HS256", "hs", claims.clone()),
        // The same claims signed again (a customer re-minting for the same jti): one counter.
        pyjwt("RS256", "rs", claims),
    ])
    .await;
    let token = &tokens[0];
    let query = format!("client_auth={token}");
    let owner = format!("j:{id}");

    // Denials use up nothing.
    for _ in 0..3 {
        refused(
            &origin,
            &gw,
            "a grant_missing request of a session-limited token",
            &format!("/v1/videos/v2?{query}"),
            &[],
            403,
            "grant_missing",
        )
        .await;
    }
    // Exactly two sessions.
    let first = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], token).await;
    let s1 = handed_out(&first, Some(&owner));
    let authorization = bearer(token);
    let second = allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        "",
        &[("authorization", &authorization)],
        token,
    )
    .await;
    let s2 = handed_out(&second, Some(&owner));
    assert_ne!(s1, s2);
    refused(
        &origin,
        &gw,
        "a third session",
        &format!("/v1/videos/v1?{query}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
    refused(
        &origin,
        &gw,
        "a third session by the re-minted token of the same jti",
        &format!("/v1/videos/v1?client_auth={}", tokens[1]),
        &[],
        403,
        "session_limit_reached",
    )
    .await;

    // The sessions it has still work, any number of times, and create nothing.
    for _ in 0..2 {
        let reply = allowed(
            &origin,
            &gw,
            "/v1/videos/v1",
            &format!("{query}&session={s1}"),
            &[],
            token,
        )
        .await;
        assert!(reply.header("x-vidgate-session").is_none(), "{reply:?}");
        let reply = allowed(
            &origin,
            &gw,
            "/v1/videos/v1",
            &query,
            &[("x-vidgate-session", &s2)],
            token,
        )
        .await;
        assert!(reply.header("x-vidgate-session").is_none(), "{reply:?}");
    }
    // ... with the re-minted token too (same owner key), but not with another jti's token.
    allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        &format!("client_auth={}&session={s1}", tokens[1]),
        &[],
        &tokens[1],
    )
    .await;
    let other = mint_one(pyjwt(
        "HS256",
        "hs",
        json!({"grants": grants, "exp": in_an_hour(), "session_limit": 5, "jti": jti("other")}),
    ))
    .await;
    refused(
        &origin,
        &gw,
        "another jti's token with this one's session",
        &format!("/v1/videos/v1?client_auth={other}&session={s1}"),
        &[],
        403,
        "session_mismatch",
    )
    .await;

    // POST /session counts too.
    let id = jti("post");
    let token = mint_one(pyjwt(
        "EdDSA",
        "ed",
        json!({"grants": grants, "exp": in_an_hour(), "session_limit": 2, "jti": id}),
    ))
    .await;
    let reply = gw
        .send(
            Method::POST,
            &format!("/v1/session?client_auth={token}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let opened = handed_out(&reply, Some(&format!("j:{id}")));
    assert_eq!(reply.json()["session"], opened.as_str());
    let query = format!("client_auth={token}");
    let reply = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], &token).await;
    handed_out(&reply, Some(&format!("j:{id}")));
    refused(
        &origin,
        &gw,
        "a third session after POST /session",
        &format!("/v1/videos/v1?{query}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
}

#[tokio::test]
async fn a_pyjwt_token_that_needs_sessions_without_a_jti_is_invalid() {
    let (origin, gw) = setup().await;
    let exp = in_an_hour();
    let tokens = mint(vec![
        pyjwt(
            "HS256",
            "hs",
            json!({"grants": {"read": {"resources": ["v1"]}}, "exp": exp, "session_limit": 2}),
        ),
        pyjwt(
            "EdDSA",
            "ed",
            json!({"grants": {"read": {"resources": ["v1"]}}, "exp": exp, "usage_expiration_time": 60}),
        ),
        pyjwt(
            "RS256",
            "rs",
            json!({"grants": {"read": {"session_owned": true}}, "exp": exp}),
        ),
    ])
    .await;
    for (token, what) in
        tokens
            .iter()
            .zip(["session_limit", "usage_expiration_time", "session_owned"])
    {
        refused(
            &origin,
            &gw,
            &format!("{what} without a jti"),
            &format!("/v1/videos/v1?client_auth={token}"),
            &[],
            401,
            "invalid_token",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Ziggeo-format tokens from the Ziggeo SDK
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ziggeo_sdk_tokens_are_accepted_with_their_grants() {
    let (origin, gw) = setup().await;
    let grants = json!({"read": {"resources": ["v1"]}});
    let now = now_secs();
    let past = chrono::DateTime::from_timestamp(now - 3600, 0)
        .unwrap()
        .to_rfc3339();
    let tokens = mint(vec![
        // 0: grants as a dict: a JSON object.
        ziggeo_sdk(json!({"grants": grants})),
        // 1: grants as a string holding JSON.
        ziggeo_sdk(json!({"grants": grants.to_string()})),
        // 2: with an expiration_date an hour away.
        ziggeo_sdk(json!({"grants": {"read": "all"}, "expiration_date": now + 3600})),
        // 3: expired ten minutes ago.
        ziggeo_sdk(json!({"grants": grants, "expiration_date": now - 600})),
        // 4: expired an hour ago, as RFC 3339.
        ziggeo_sdk(json!({"grants": grants, "expiration_date": past})),
        // 5: expired a minute ago, inside the leeway.
        ziggeo_sdk(json!({"grants": grants, "expiration_date": now - 60})),
    ])
    .await;
    for token in &tokens {
        assert!(
            token.len() > 48 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "the SDK's format is hex: {token}"
        );
    }

    allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        &format!("client_auth={}", tokens[5]),
        &[],
        &tokens[5],
    )
    .await;
    for (i, what) in [(0, "grants as an object"), (1, "grants as a string")] {
        let query = format!("client_auth={}", tokens[i]);
        let reply = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], &tokens[i]).await;
        assert!(reply.header("x-vidgate-session").is_none(), "{reply:?}");
        refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v2?{query}"),
            &[],
            403,
            "grant_missing",
        )
        .await;
    }
    let query = format!("client_auth={}", tokens[2]);
    allowed(&origin, &gw, "/v1/videos/v2", &query, &[], &tokens[2]).await;
    allowed(&origin, &gw, "/v1/videos", &query, &[], &tokens[2]).await;
    allowed(
        &origin,
        &gw,
        &format!("/v1/applications/{APP_TOKEN}/videos/v9"),
        &query,
        &[],
        &tokens[2],
    )
    .await;

    for (i, what) in [(3, "expired ten minutes ago"), (4, "expired an hour ago")] {
        refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v1?client_auth={}", tokens[i]),
            &[],
            401,
            "token_expired",
        )
        .await;
    }
    // A Bearer value that is not a JWT is a server token (SPEC 2.1): unknown here.
    let authorization = bearer(&tokens[0]);
    refused(
        &origin,
        &gw,
        "a Ziggeo-format token as a Bearer",
        "/v1/videos/v1",
        &[("authorization", &authorization)],
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn ziggeo_sdk_session_limit_allows_exactly_that_many_sessions_per_nonce() {
    let (origin, gw) = setup().await;
    let options = json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 3});
    let tokens = mint(vec![ziggeo_sdk(options.clone()), ziggeo_sdk(options)]).await;
    assert_ne!(tokens[0], tokens[1]);
    let query = format!("client_auth={}", tokens[0]);

    refused(
        &origin,
        &gw,
        "a grant_missing request of a session-limited token",
        &format!("/v1/videos/v2?{query}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let reply = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], &tokens[0]).await;
        sessions.push(handed_out(&reply, None));
    }
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 3, "three distinct sessions: {sessions:?}");
    for _ in 0..2 {
        refused(
            &origin,
            &gw,
            "a fourth session",
            &format!("/v1/videos/v1?{query}"),
            &[],
            403,
            "session_limit_reached",
        )
        .await;
    }
    // Its sessions still work, by query and by header.
    for session in &sessions {
        let reply = allowed(
            &origin,
            &gw,
            "/v1/videos/v1",
            &format!("{query}&session={session}"),
            &[],
            &tokens[0],
        )
        .await;
        assert!(reply.header("x-vidgate-session").is_none(), "{reply:?}");
        allowed(
            &origin,
            &gw,
            "/v1/videos/v1",
            &query,
            &[("x-vidgate-session", session)],
            &tokens[0],
        )
        .await;
    }
    // Another generate() call has another nonce, so a counter of its own ...
    let other = format!("client_auth={}", tokens[1]);
    let reply = allowed(&origin, &gw, "/v1/videos/v1", &other, &[], &tokens[1]).await;
    handed_out(&reply, None);
    // ... and the first token's sessions are not its own.
    refused(
        &origin,
        &gw,
        "another nonce's token with the first one's session",
        &format!("/v1/videos/v1?{other}&session={}", sessions[0]),
        &[],
        403,
        "session_mismatch",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Forgeries and malformed tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn forged_and_malformed_jwts_are_refused_with_invalid_token() {
    let (origin, gw) = setup().await;
    let exp = in_an_hour();
    let grants = json!({"read": {"resources": ["v1"]}});
    let claims = json!({"grants": grants, "exp": exp});
    let rsa_public = std::fs::read_to_string(format!("{KEYS}/rsa.pub.pem")).unwrap();
    let ed_public = std::fs::read_to_string(format!("{KEYS}/ed25519.pub.pem")).unwrap();
    let tokens = mint(vec![
        // 0: the control: a good PyJWT token.
        pyjwt("HS256", "hs", claims.clone()),
        // 1: the control for raw_hs256: the right secret, signed by hand.
        raw_hs256(
            json!({"alg": "HS256", "kid": "hs", "typ": "JWT"}),
            claims.clone(),
            HS_SECRET,
        ),
        // 2: algorithm confusion: HS256 keyed with the RS256 key's public PEM text.
        raw_hs256(
            json!({"alg": "HS256", "kid": "rs", "typ": "JWT"}),
            claims.clone(),
            &rsa_public,
        ),
        // 3: ... and with the EdDSA key's.
        raw_hs256(
            json!({"alg": "HS256", "kid": "ed", "typ": "JWT"}),
            claims.clone(),
            &ed_public,
        ),
        // 4: an unknown kid, signed with the good secret.
        pyjwt_with("HS256", "nope", HS_SECRET, claims.clone(), json!({})),
        // 5: the right kid, the wrong secret.
        pyjwt_with(
            "HS256",
            "hs",
            "not-the-secret-of-hs-0123456789abcdef",
            claims.clone(),
            json!({}),
        ),
        // 6: no kid at all, signed with the good secret.
        raw_hs256(
            json!({"alg": "HS256", "typ": "JWT"}),
            claims.clone(),
            HS_SECRET,
        ),
        // 7: RS256 under the EdDSA key's kid (signed with the RSA private key).
        pyjwt_with(
            "RS256",
            "ed",
            &format!("{KEYS}/rsa.key.pem"),
            claims.clone(),
            json!({}),
        ),
        // 8: EdDSA under the RS256 key's kid (signed with the Ed25519 private key).
        pyjwt_with(
            "EdDSA",
            "rs",
            &format!("{KEYS}/ed25519.key.pem"),
            claims.clone(),
            json!({}),
        ),
        // 9: a good signature over claims that carry expiration_date.
        pyjwt(
            "HS256",
            "hs",
            json!({"grants": grants, "exp": exp, "expiration_date": exp}),
        ),
        // 10: a good signature, but a header with crit extensions vidgate does not implement.
        pyjwt_with(
            "HS256",
            "hs",
            HS_SECRET,
            claims.clone(),
            json!({"crit": ["exp"]}),
        ),
        // 11: signed with the P-256 key under a kid that is not configured.
        pyjwt_with(
            "ES256",
            "es",
            &format!("{KEYS}/p256.key.pem"),
            claims.clone(),
            json!({}),
        ),
    ])
    .await;
    let good = &tokens[0];
    let mut parts = good.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );

    // The controls pass, so the forgeries below fail for the reason they are about.
    for token in &tokens[..2] {
        let query = format!("client_auth={token}");
        allowed(&origin, &gw, "/v1/videos/v1", &query, &[], token).await;
    }

    let all_grants = part(&json!({"grants": {"read": "all"}, "exp": exp}));
    let none = |alg: &str, signature: &str| {
        format!(
            "{}.{payload}.{signature}",
            part(&json!({"alg": alg, "kid": "hs", "typ": "JWT"}))
        )
    };
    let forgeries: Vec<(String, &str)> = vec![
        (none("none", ""), "alg none, no signature"),
        (none("None", ""), "alg None, no signature"),
        (none("none", signature), "alg none with a real signature"),
        (tokens[2].clone(), "HS256 keyed with the RS256 public PEM"),
        (tokens[3].clone(), "HS256 keyed with the EdDSA public PEM"),
        (tokens[4].clone(), "an unknown kid"),
        (tokens[5].clone(), "the wrong secret"),
        (tokens[6].clone(), "no kid"),
        (tokens[7].clone(), "RS256 under an EdDSA kid"),
        (tokens[8].clone(), "EdDSA under an RS256 kid"),
        (tokens[9].clone(), "expiration_date in a JWT"),
        (tokens[10].clone(), "crit in the header"),
        (tokens[11].clone(), "ES256 under an unknown kid"),
        (
            format!("{header}.{all_grants}.{signature}"),
            "a tampered payload",
        ),
        (format!("{header}.{payload}."), "the signature stripped"),
        (
            format!("{header}.{payload}.{}", &signature[..signature.len() - 2]),
            "the signature shortened",
        ),
        ("a.b.c".to_owned(), "garbage a.b.c"),
        ("..".to_owned(), "two dots"),
        (
            format!("{header}.{payload}.!!"),
            "a signature that is not base64url",
        ),
    ];
    let before = denials(&gw, "invalid_token").await;
    for (token, what) in &forgeries {
        let reply = refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v1?client_auth={token}"),
            &[],
            401,
            "invalid_token",
        )
        .await;
        assert!(
            !reply.text().contains(token.as_str()) || token.len() < 4,
            "{what}: the answer repeats the token: {reply:?}"
        );
    }
    // A few as Bearer headers too.
    for (token, what) in &forgeries[..4] {
        let authorization = bearer(token);
        refused(
            &origin,
            &gw,
            what,
            "/v1/videos/v1",
            &[("authorization", &authorization)],
            401,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        denials(&gw, "invalid_token").await,
        before + forgeries.len() as f64 + 4.0,
        "every refusal is counted"
    );
}

#[tokio::test]
async fn malformed_ziggeo_tokens_all_get_one_byte_identical_answer() {
    let (origin, gw) = setup().await;
    let grants = json!({"read": {"resources": ["v1"]}});
    let tokens = mint(vec![
        ziggeo_sdk(json!({"grants": grants})),
        ziggeo_sdk_for(
            ZIGGEO_APP,
            "not-the-encryption-key",
            json!({"grants": grants}),
        ),
        ziggeo_sdk_for("another-app", ZIGGEO_KEY, json!({"grants": grants})),
        ziggeo_sdk(json!({"grants": grants, "video": "v1"})),
        ziggeo_sdk(json!({"grants": grants, "session_limit": "three"})),
        ziggeo_sdk(json!({"grants": 7})),
    ])
    .await;
    let good = &tokens[0];
    allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        &format!("client_auth={good}"),
        &[],
        good,
    )
    .await;

    let format = ZiggeoFormat::new(ZIGGEO_APP, ZIGGEO_KEY);
    // The control for seal_text: well-formed contents are accepted.
    let sealed = format.seal_text(&format!(
        r#"{{"application_token":"{ZIGGEO_APP}","nonce":"n-{}","grants":{grants}}}"#,
        jti("sealed")
    ));
    allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        &format!("client_auth={sealed}"),
        &[],
        &sealed,
    )
    .await;

    let replace = |at: usize, with: &str| {
        let mut token = good.clone();
        token.replace_range(at..at + 1, with);
        token
    };
    // Another hex digit in place of the one at `at`.
    let flip = |at: usize| {
        let with = if &good[at..=at] == "0" { "1" } else { "0" };
        replace(at, with)
    };
    let last = good.len() - 1;
    let middle = 16 + (good.len() - 16) / 2;
    let variants: Vec<(String, &str)> = vec![
        (replace(middle, "g"), "a bad hex character in the ciphertext"),
        (replace(5, "z"), "a bad hex character in the IV"),
        (format!("{good}0"), "an odd length"),
        (good[..last].to_owned(), "one character short"),
        (flip(3), "a flipped IV character"),
        (flip(last), "a flipped last character"),
        (flip(middle), "a flipped middle character"),
        (good[..good.len() - 32].to_owned(), "truncated by 32 characters"),
        (good[..16].to_owned(), "the IV alone"),
        (tokens[1].clone(), "sealed with another encryption key"),
        (tokens[2].clone(), "another application's token"),
        (
            format.seal_text("this is not JSON at all"),
            "an encryption of text that is not JSON",
        ),
        (format.seal_text(""), "an encryption of nothing"),
        (tokens[3].clone(), "an unknown key"),
        (tokens[4].clone(), "session_limit that is not a number"),
        (tokens[5].clone(), "grants that are not an object"),
        (
            format.seal_text(&format!(
                r#"{{"application_token":"{ZIGGEO_APP}","nonce":"1","nonce":"2","grants":{grants}}}"#
            )),
            "a repeated nonce",
        ),
        (
            format.seal_text(&format!(
                r#"{{"application_token":"another-app","application_token":"{ZIGGEO_APP}","nonce":"3","grants":{grants}}}"#
            )),
            "a repeated application_token",
        ),
        (
            format.seal_text(&format!(
                r#"{{"application_token":"{ZIGGEO_APP}","grants":{grants}}}"#
            )),
            "no nonce",
        ),
        (
            format.seal_text(&format!(
                r#"{{"application_token":"{ZIGGEO_APP}","nonce":"4"}}"#
            )),
            "no grants",
        ),
        (
            format.seal_text(&format!(
                r#"{{"nonce":"5","grants":{grants}}}"#
            )),
            "no application_token",
        ),
        (
            format.seal_text(&format!(
                r#"[{{"application_token":"{ZIGGEO_APP}","nonce":"6","grants":{grants}}}]"#
            )),
            "an array",
        ),
    ];
    let before = denials(&gw, "invalid_token").await;
    let mut reference = None;
    for (token, what) in &variants {
        let reply = refused(
            &origin,
            &gw,
            what,
            &format!("/v1/videos/v1?client_auth={token}"),
            &[],
            401,
            "invalid_token",
        )
        .await;
        let seen = observable(&reply);
        match &reference {
            None => reference = Some((seen, *what)),
            Some((reference, first)) => assert_eq!(
                &seen, reference,
                "{what} is answered differently from {first}: {reply:?}"
            ),
        }
    }
    assert_eq!(
        denials(&gw, "invalid_token").await,
        before + variants.len() as f64
    );
}

// ---------------------------------------------------------------------------------------------
// Where client tokens travel, and where they do not
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_tokens_never_reach_the_origin_and_everything_else_does() {
    let (origin, gw) = setup().await;
    let tokens = mint(vec![
        pyjwt(
            "EdDSA",
            "ed",
            json!({"grants": {"read": "all", "update": "all"}, "exp": in_an_hour(), "session_limit": 5, "jti": jti("clean")}),
        ),
        ziggeo_sdk(json!({"grants": {"read": "all"}, "session_limit": 5})),
        pyjwt(
            "HS256",
            "hs",
            json!({"grants": {"read": "all"}, "exp": in_an_hour()}),
        ),
    ])
    .await;
    for token in &tokens[..2] {
        // Other query parameters, headers and a non-Bearer Authorization are kept, in order.
        let before = origin.count();
        let reply = gw
            .send(
                Method::GET,
                &format!("/v1/videos/v1/stream?a=1&client_auth={token}&b=2"),
                &[("x-custom", "kept"), ("cookie", "theirs=1")],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(origin.count(), before + 1);
        let session = reply
            .header("x-vidgate-session")
            .expect("a session")
            .to_owned();
        let seen = origin.last();
        assert_eq!(seen.target, "/v1/videos/v1/stream?a=1&b=2");
        assert_eq!(seen.header_values("x-custom"), ["kept"]);
        assert_eq!(seen.header_values("cookie"), ["theirs=1"]);
        assert_no_credential(&seen, token);
        assert!(!seen.head_text().contains(&session), "{}", seen.head_text());

        // With the session in the query and the header: both stripped.
        let reply = gw
            .send(
                Method::GET,
                &format!("/v1/videos/v1?session={session}&client_auth={token}&c=3"),
                &[("x-vidgate-session", &session)],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let seen = origin.last();
        assert_eq!(seen.target, "/v1/videos/v1?c=3");
        assert_no_credential(&seen, token);
        assert!(!seen.head_text().contains(&session), "{}", seen.head_text());
    }

    // A JWT as a Bearer, on a write with a body.
    let token = &tokens[0];
    let authorization = bearer(token);
    let reply = gw
        .send(
            Method::PUT,
            "/v1/videos/v1?x=y",
            &[("authorization", &authorization)],
            "the body",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = origin.last();
    assert_eq!(seen.method, Method::PUT);
    assert_eq!(seen.target, "/v1/videos/v1?x=y");
    assert_eq!(seen.body, "the body");
    assert_no_credential(&seen, token);

    // With a token in the query, another Authorization scheme belongs to the origin.
    let token = &tokens[2];
    let reply = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1?client_auth={token}"),
            &[("authorization", "Basic dXNlcjpwYXNz")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = origin.last();
    assert_eq!(seen.target, "/v1/videos/v1");
    assert_eq!(seen.header_values("authorization"), ["Basic dXNlcjpwYXNz"]);
    assert!(!seen.head_text().contains(token.as_str()));

    // Two different client tokens: ambiguous; the same one twice: fine.
    let other = &tokens[0];
    let authorization = bearer(other);
    let before = origin.count();
    for (target, headers) in [
        (
            format!("/v1/videos/v1?client_auth={token}&client_auth={other}"),
            vec![],
        ),
        (
            format!("/v1/videos/v1?client_auth={token}"),
            vec![("authorization", authorization.as_str())],
        ),
    ] {
        let reply = gw.send(Method::GET, &target, &headers, "").await;
        assert_error(&reply, 400, "ambiguous_token");
    }
    assert_eq!(origin.count(), before);
    allowed(
        &origin,
        &gw,
        "/v1/videos/v1",
        &format!("client_auth={token}&client_auth={token}"),
        &[],
        token,
    )
    .await;
}

#[tokio::test]
async fn client_token_formats_are_refused_when_not_configured() {
    let origin = Origin::start().await;
    // No [client_tokens] keys, no Ziggeo section.
    let gw = TestGateway::start(origin.addr).await;
    let tokens = mint(vec![
        pyjwt(
            "HS256",
            "hs",
            json!({"grants": {"read": "all"}, "exp": in_an_hour()}),
        ),
        ziggeo_sdk(json!({"grants": {"read": "all"}})),
    ])
    .await;
    let before = denials(&gw, "invalid_token").await;
    for (token, what) in tokens.iter().zip(["a JWT", "a Ziggeo-format token"]) {
        refused(
            &origin,
            &gw,
            &format!("{what} without its format configured"),
            &format!("/v1/videos/v1?client_auth={token}"),
            &[],
            401,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(denials(&gw, "invalid_token").await, before + 2.0);

    // The same tokens pass a gateway that has the keys.
    let (origin, gw) = setup().await;
    for token in &tokens {
        let query = format!("client_auth={token}");
        allowed(&origin, &gw, "/v1/videos/v1", &query, &[], token).await;
    }
}

/// SPEC 5: `public_key_pem` is "PEM text or the path of a PEM file". Given as paths, the keys
/// verify tokens like inline ones.
#[tokio::test]
async fn public_keys_given_as_file_paths_verify_tokens() {
    let origin = Origin::start().await;
    let mut gw = TestGateway::from_toml(&client_tokens_toml(origin.addr, PublicKeys::Paths)).await;
    let claims = json!({"grants": {"read": {"resources": ["v1"]}}, "exp": in_an_hour()});
    let tokens = mint(vec![
        pyjwt("EdDSA", "ed", claims.clone()),
        pyjwt("RS256", "rs", claims),
    ])
    .await;
    for token in &tokens {
        let request = http::Request::get(gw.url(&format!("/v1/videos/v1?client_auth={token}")))
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let sent = tokio::time::timeout(Duration::from_secs(10), gw.http.client().request(request))
            .await
            .expect("an answer within 10 s");
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                // Say why the gateway is gone rather than only that it is.
                let run = gw.finished(Duration::from_secs(5)).await;
                panic!("the gateway did not answer ({error:?}); its run ended with {run:?}");
            }
        };
        assert_eq!(response.status(), StatusCode::OK, "{response:?}");
        assert_no_credential(&origin.last(), token);
    }
}

// ---------------------------------------------------------------------------------------------
// The README's Python snippet
// ---------------------------------------------------------------------------------------------

/// The code block that follows the `readme-python-mint` marker in README.md.
fn readme_python_snippet() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let marker = readme
        .find("<!-- readme-python-mint")
        .expect("README.md marks its tested Python snippet");
    let rest = &readme[marker..];
    let start = rest
        .find("```python\n")
        .expect("a python block follows the marker")
        + 10;
    let end = rest[start..].find("```").expect("the python block ends") + start;
    rest[start..end].to_owned()
}

/// The "Minting client tokens" snippet, run as written with the README's kid and the secret
/// in `VIDGATE_JWT_SECRET`, mints a token the gateway accepts with its grants and limit.
#[tokio::test]
async fn readme_python_snippet_mints_a_token_the_gateway_accepts() {
    const SECRET: &str = "readme-snippet-secret";
    let snippet = readme_python_snippet();
    assert!(snippet.contains("jwt.encode("), "{snippet}");
    let output = tokio::process::Command::new("python3")
        .args(["-c", &snippet])
        .env("VIDGATE_JWT_SECRET", SECRET)
        .output()
        .await
        .unwrap_or_else(|e| panic!("python3 cannot be run ({e}); then {INSTALL}"));
    assert!(
        output.status.success(),
        "the README snippet failed; if a module is missing, run `{INSTALL}`: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let origin = Origin::start().await;
    let gw = TestGateway::from_toml(&format!(
        "{}\n[[client_tokens.jwt_keys]]\nkid = \"2026-11\"\nalg = \"HS256\"\nsecret = \"{SECRET}\"\n",
        gateway_toml(origin.addr)
    ))
    .await;
    let query = format!("client_auth={token}");
    // session_limit 2: two sessions, then the limit; the grant names v1 only.
    for _ in 0..2 {
        let reply = allowed(&origin, &gw, "/v1/videos/v1", &query, &[], &token).await;
        handed_out(&reply, None);
    }
    refused(
        &origin,
        &gw,
        "a third session",
        &format!("/v1/videos/v1?{query}"),
        &[],
        403,
        "session_limit_reached",
    )
    .await;
    refused(
        &origin,
        &gw,
        "another video",
        &format!("/v1/videos/v2?{query}"),
        &[],
        403,
        "grant_missing",
    )
    .await;
}
