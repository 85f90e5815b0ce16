//! Finding vidgate's credentials in a request (SPEC 2.1) and removing them before it is
//! forwarded.
//!
//! Extraction reads; [`strip`] writes. Neither looks anything up or decides anything.

use std::borrow::Cow;

use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Uri};

use crate::policy::{DenyReason, SessionSource};
use crate::route::OVERRIDE_HEADERS;

/// The header that carries a session (SPEC 2.1).
pub const SESSION_HEADER: &str = "x-vidgate-session";

/// Every session cookie vidgate sets starts with this (after an optional `__Host-`).
pub const COOKIE_PREFIX: &str = "vidgate_session_";

/// The query parameters that belong to vidgate.
const QUERY_NAMES: [&str; 4] = ["server_auth", "client_auth", "session", "_method"];

/// Which kind of token a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A server-side token id.
    Server,
    /// A client-side token (a JWT, or the Ziggeo format).
    Client,
}

/// A token credential found in a request.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCredential {
    /// Its kind.
    pub kind: TokenKind,
    /// Its value.
    pub value: String,
}

impl std::fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCredential({:?}, …)", self.kind)
    }
}

/// What the request carries for vidgate.
#[derive(Debug, Default)]
pub struct Credentials {
    tokens: Vec<TokenCredential>,
    /// The first explicit session credential (query, then header).
    explicit_session: Option<String>,
    /// The `_method` query values, decoded.
    pub method_overrides: Vec<String>,
}

/// A value with exactly two dots is a JWT (SPEC 2.1).
pub fn is_jwt(value: &str) -> bool {
    value.bytes().filter(|&b| b == b'.').count() == 2
}

/// The value of an `Authorization: Bearer` header, if it is one.
fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|v| !v.is_empty())
}

/// Decode one `application/x-www-form-urlencoded` component (`+` is a space).
fn decode(component: &str) -> Cow<'_, str> {
    if !component.contains(['%', '+']) {
        return Cow::Borrowed(component);
    }
    let spaced = component.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

impl Credentials {
    /// Read every credential in the request head. `bearer_auth` is `proxy.bearer_auth`.
    pub fn extract(parts: &Parts, bearer_auth: bool) -> Self {
        let mut creds = Credentials::default();
        for (name, value) in query_pairs(parts.uri.query().unwrap_or("")) {
            match name.as_ref() {
                "server_auth" => creds.push_token(TokenKind::Server, value.into_owned()),
                "client_auth" => creds.push_token(TokenKind::Client, value.into_owned()),
                "session" if creds.explicit_session.is_none() => {
                    creds.explicit_session = Some(value.into_owned());
                }
                "_method" => creds.method_overrides.push(value.into_owned()),
                _ => {}
            }
        }
        if bearer_auth {
            for value in parts.headers.get_all(AUTHORIZATION) {
                if let Some(token) = bearer(value) {
                    let kind = if is_jwt(token) {
                        TokenKind::Client
                    } else {
                        TokenKind::Server
                    };
                    creds.push_token(kind, token.to_owned());
                }
            }
        }
        if creds.explicit_session.is_none() {
            creds.explicit_session = parts
                .headers
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned());
        }
        creds
    }

    fn push_token(&mut self, kind: TokenKind, value: String) {
        let credential = TokenCredential { kind, value };
        if !self.tokens.contains(&credential) {
            self.tokens.push(credential);
        }
    }

    /// The request's one token (SPEC 2.6 step 2): `ambiguous_token` for two different ones,
    /// `missing_token` for none. The same value repeated is one credential.
    pub fn token(&self) -> Result<&TokenCredential, DenyReason> {
        match self.tokens.as_slice() {
            [] => Err(DenyReason::MissingToken),
            [one] => Ok(one),
            _ => Err(DenyReason::AmbiguousToken),
        }
    }

    /// The session credential and where it came from: query, then header, then the cookie
    /// named by `cookie_name` (SPEC 2.1: the first one found wins). The cookie's name is only
    /// worked out when there is no explicit session and the request has cookies at all.
    pub fn session(
        &self,
        headers: &HeaderMap,
        cookie_name: impl FnOnce() -> String,
    ) -> Option<(String, SessionSource)> {
        if let Some(s) = &self.explicit_session {
            return Some((s.clone(), SessionSource::Explicit));
        }
        if !headers.contains_key(COOKIE) {
            return None;
        }
        let cookie_name = cookie_name();
        cookies(headers)
            .find(|(name, _)| *name == cookie_name)
            .map(|(_, value)| (value.to_owned(), SessionSource::Cookie))
    }
}

/// Every `name=value` pair of a raw query, decoded.
fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

/// Every cookie in the request's `Cookie` headers.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            Some((name.trim(), value.trim().trim_matches('"')))
        })
}

fn is_vidgate_cookie(name: &str) -> bool {
    name.strip_prefix("__Host-")
        .unwrap_or(name)
        .starts_with(COOKIE_PREFIX)
}

/// Remove every vidgate credential from a request head (SPEC 2.1), keeping every other query
/// parameter, header and cookie in order and byte for byte.
pub fn strip(parts: &mut Parts, bearer_auth: bool) {
    if let Some(query) = parts.uri.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
                !pair.is_empty() && !QUERY_NAMES.contains(&decode(name).as_ref())
            })
            .collect();
        if kept.len() != query.split('&').count() {
            let path = parts.uri.path();
            let rebuilt = if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            };
            // Only pieces of the original URI are reassembled, so it stays valid; scheme and
            // authority (HTTP/2, absolute-form) are kept.
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = rebuilt.parse().ok();
            if let Ok(uri) = Uri::from_parts(uri) {
                parts.uri = uri;
            }
        }
    }
    let headers = &mut parts.headers;
    if bearer_auth {
        let others: Vec<HeaderValue> = headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter(|v| bearer(v).is_none())
            .cloned()
            .collect();
        headers.remove(AUTHORIZATION);
        for value in others {
            headers.append(AUTHORIZATION, value);
        }
    }
    headers.remove(SESSION_HEADER);
    for name in OVERRIDE_HEADERS {
        headers.remove(name);
    }
    if headers
        .get_all(COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(COOKIE_PREFIX)))
    {
        let kept: Vec<String> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|c| {
                let name = c.split_once('=').map_or(*c, |(n, _)| n).trim();
                !c.is_empty() && !is_vidgate_cookie(name)
            })
            .map(str::to_owned)
            .collect();
        headers.remove(COOKIE);
        if !kept.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
                headers.insert(COOKIE, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let c = Credentials::extract(&parts("/v?server_auth=a%2Db&_method=DEL%45TE", &[]), true);
        assert_eq!(c.token().unwrap().value, "a-b");
        assert_eq!(c.method_overrides, vec!["DELETE"]);
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
}
