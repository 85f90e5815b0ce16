//! Tests of reading, naming and stripping vidgate's credentials.

use super::*;
use http::Request;

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).unwrap().into_parts().0
}

#[test]
fn server_token_from_query_or_bearer() {
    let c = Credentials::extract(&parts("/v?server_auth=abc", &[]), true);
    assert_eq!(
        c.token().unwrap(),
        &TokenCredential {
            kind: TokenKind::Server,
            value: "abc".into()
        }
    );
    let c = Credentials::extract(&parts("/v", &[("authorization", "Bearer abc")]), true);
    assert_eq!(c.token().unwrap().kind, TokenKind::Server);
    assert_eq!(c.token().unwrap().value, "abc");
}

#[test]
fn client_token_from_query_or_a_jwt_bearer() {
    let c = Credentials::extract(&parts("/v?client_auth=zzz", &[]), true);
    assert_eq!(c.token().unwrap().kind, TokenKind::Client);
    let c = Credentials::extract(&parts("/v", &[("authorization", "bearer a.b.c")]), true);
    assert_eq!(c.token().unwrap().kind, TokenKind::Client);
    assert_eq!(c.token().unwrap().value, "a.b.c");
}

#[test]
fn bearer_is_left_alone_when_bearer_auth_is_off() {
    let c = Credentials::extract(&parts("/v", &[("authorization", "Bearer abc")]), false);
    assert_eq!(c.token().err(), Some(DenyReason::MissingToken));
    let mut p = parts("/v", &[("authorization", "Bearer abc")]);
    strip(&mut p, false);
    assert_eq!(p.headers[AUTHORIZATION], "Bearer abc");
}

#[test]
fn two_different_tokens_are_ambiguous_identical_repeats_are_not() {
    let c = Credentials::extract(&parts("/v?server_auth=a&server_auth=b", &[]), true);
    assert_eq!(c.token().err(), Some(DenyReason::AmbiguousToken));
    let c = Credentials::extract(
        &parts("/v?server_auth=a", &[("authorization", "Bearer b")]),
        true,
    );
    assert_eq!(c.token().err(), Some(DenyReason::AmbiguousToken));
    let c = Credentials::extract(&parts("/v?server_auth=a&client_auth=x.y.z", &[]), true);
    assert_eq!(c.token().err(), Some(DenyReason::AmbiguousToken));
    let c = Credentials::extract(
        &parts(
            "/v?server_auth=a&server_auth=a",
            &[("authorization", "Bearer a")],
        ),
        true,
    );
    assert_eq!(c.token().unwrap().value, "a");
}

#[test]
fn no_token_is_missing() {
    let c = Credentials::extract(&parts("/v?x=1", &[("authorization", "Basic dTpw")]), true);
    assert_eq!(c.token().err(), Some(DenyReason::MissingToken));
}

#[test]
fn query_values_are_form_decoded() {
    let p = parts("/v?server_auth=a%2Db&_method=DEL%45TE", &[]);
    let c = Credentials::extract(&p, true);
    assert_eq!(c.token().unwrap().value, "a-b");
    let method_overrides = crate::route::query_overrides(p.uri.query().unwrap());
    assert_eq!(method_overrides.as_slice(), ["DELETE"]);
}

#[test]
fn session_comes_from_query_then_header_then_cookie() {
    let headers = [
        ("x-vidgate-session", "fromheader"),
        ("cookie", "a=1; vidgate_session_k=fromcookie"),
    ];
    let p = parts("/v?session=fromquery", &headers);
    let c = Credentials::extract(&p, true);
    assert_eq!(
        c.session(&p.headers, || "vidgate_session_k".into()),
        Some(("fromquery".into(), SessionSource::Explicit))
    );
    let p = parts("/v", &headers);
    let c = Credentials::extract(&p, true);
    assert_eq!(
        c.session(&p.headers, || "vidgate_session_k".into()),
        Some(("fromheader".into(), SessionSource::Explicit))
    );
    let p = parts("/v", &headers[1..]);
    let c = Credentials::extract(&p, true);
    assert_eq!(
        c.session(&p.headers, || "vidgate_session_k".into()),
        Some(("fromcookie".into(), SessionSource::Cookie))
    );
    assert_eq!(
        c.session(&p.headers, || "vidgate_session_other".into()),
        None,
        "another token's cookie"
    );
}

#[test]
fn strip_removes_every_credential_and_keeps_the_rest_in_order() {
    let mut p = parts(
            "/videos/v?a=1&server_auth=t&b=%2F&session=s&client_auth=c&_method=PUT&c",
            &[
                ("authorization", "Bearer t"),
                ("x-vidgate-session", "s"),
                ("x-http-method-override", "PUT"),
                ("x-method-override", "PUT"),
                ("x-http-method", "PUT"),
                ("cookie", "theme=dark; vidgate_session_0123456789abcdef=s; __Host-vidgate_session_aa=s; lang=en"),
                ("x-other", "kept"),
            ],
        );
    strip(&mut p, true);
    assert_eq!(p.uri.to_string(), "/videos/v?a=1&b=%2F&c");
    assert!(!p.headers.contains_key(AUTHORIZATION));
    assert!(!p.headers.contains_key(SESSION_HEADER));
    for name in OVERRIDE_HEADERS {
        assert!(!p.headers.contains_key(name), "{name}");
    }
    assert_eq!(p.headers[COOKIE], "theme=dark; lang=en");
    assert_eq!(p.headers["x-other"], "kept");
}

#[test]
fn strip_keeps_scheme_and_authority() {
    let mut p = parts("https://videos.example/v?server_auth=t&x=1", &[]);
    strip(&mut p, true);
    assert_eq!(p.uri.to_string(), "https://videos.example/v?x=1");
}

#[test]
fn strip_drops_an_empty_query_and_cookie_header() {
    let mut p = parts(
        "/videos/v?server_auth=t",
        &[("cookie", "vidgate_session_ab=1")],
    );
    strip(&mut p, true);
    assert_eq!(p.uri.to_string(), "/videos/v");
    assert!(!p.headers.contains_key(COOKIE));
}

#[test]
fn strip_keeps_other_authorization_schemes() {
    let mut p = parts("/v", &[("authorization", "Basic dTpw")]);
    strip(&mut p, true);
    assert_eq!(p.headers[AUTHORIZATION], "Basic dTpw");
}

#[test]
fn encoded_credential_names_are_still_credentials() {
    let mut p = parts("/v?server%5Fauth=t&x=1", &[]);
    let c = Credentials::extract(&p, true);
    assert_eq!(c.token().unwrap().value, "t");
    strip(&mut p, true);
    assert_eq!(p.uri.to_string(), "/v?x=1");
}

#[test]
fn jwt_shape_is_exactly_two_dots() {
    assert!(is_jwt("a.b.c"));
    assert!(!is_jwt("a.b"));
    assert!(!is_jwt("a.b.c.d"));
    assert!(!is_jwt("abc"));
}

#[test]
fn cookie_name_is_sha256_of_the_owner_key() {
    use crate::token::TokenId;
    use std::sync::Arc;
    // `printf 's:abc' | sha256sum` starts efff0385da714c85.
    let owner = OwnerKey::Server(TokenId::new("abc").unwrap());
    assert_eq!(cookie_name(&owner), "vidgate_session_efff0385da714c85");
    assert_eq!(cookie_name(&owner).len(), "vidgate_session_".len() + 16);
    let jwt = OwnerKey::Jwt(Arc::from("abc"));
    assert_ne!(cookie_name(&jwt), cookie_name(&owner), "kinds differ");
}
