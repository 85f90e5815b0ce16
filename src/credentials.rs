//! vidgate's credentials on the wire (SPEC 2.1, 2.3): the one home of their names and
//! spellings, used by the layer, the manifest rewriter and the admin API alike.
//!
//! - where they travel: the query parameters [`SERVER_AUTH`], [`CLIENT_AUTH`],
//!   [`SESSION_PARAMETER`] (and `_method`, which is the route's: [`crate::route`]),
//!   `Authorization: Bearer` ([`bearer`]), the [`SESSION_HEADER`] and the session cookie;
//! - the shape that tells a JWT from any other client token ([`is_jwt`]);
//! - the session cookie: its name (`vidgate_session_` and 16 hex characters of SHA-256 of the
//!   owner key, `__Host-` first under TLS) and its `Set-Cookie` text ([`Cookies`]);
//! - reading them from a request head ([`Credentials::extract`]) and removing every one of them
//!   before it is forwarded ([`strip`]).
//!
//! Extraction reads and [`strip`] writes; nothing here looks anything up. The one choice made
//! here, which of several token credentials a request means, is the decision's
//! ([`crate::policy::one_token`]).

use std::borrow::Cow;
use std::time::Duration;

use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Uri};
use sha2::{Digest, Sha256};

use crate::form;
use crate::policy::{self, DenyReason};
use crate::route::{METHOD_PARAMETER, OVERRIDE_HEADERS};
use crate::session::{OwnerKey, SessionId, SessionSource};

/// The query parameter of a server-side token.
pub const SERVER_AUTH: &str = "server_auth";
/// The query parameter of a client-side token.
pub const CLIENT_AUTH: &str = "client_auth";
/// The query parameter of a session.
pub const SESSION_PARAMETER: &str = "session";
/// The header that carries a session, in requests and in responses that hand one out.
pub const SESSION_HEADER: &str = "x-vidgate-session";
/// Every session cookie vidgate sets starts with this (after `__Host-`, under TLS).
pub const COOKIE_PREFIX: &str = "vidgate_session_";
/// The prefix of session cookies under TLS: the browser then keeps them to this host, `Path=/`
/// and `Secure`.
const HOST_PREFIX: &str = "__Host-";

/// The query parameters that belong to vidgate: they are read, removed before forwarding, and
/// replaced in manifest URIs.
pub const QUERY_NAMES: [&str; 4] = [
    SERVER_AUTH,
    CLIENT_AUTH,
    SESSION_PARAMETER,
    METHOD_PARAMETER,
];

/// Whether a query parameter name, as written (percent-encoded or not: `server%5Fauth`), is
/// one of vidgate's.
pub fn is_own_parameter(raw_name: &[u8]) -> bool {
    let name = form::decode(raw_name);
    QUERY_NAMES
        .iter()
        .any(|own| name.as_ref() == own.as_bytes())
}

/// Which kind of token a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A server-side token id.
    Server,
    /// A client-side token (a JWT, or the Ziggeo format).
    Client,
}

impl TokenKind {
    /// The query parameter that carries this kind: `server_auth` or `client_auth`.
    pub fn parameter(self) -> &'static str {
        match self {
            TokenKind::Server => SERVER_AUTH,
            TokenKind::Client => CLIENT_AUTH,
        }
    }
}

/// A token credential found in a request.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCredential {
    /// Its kind.
    pub kind: TokenKind,
    /// Its value.
    pub value: String,
}

/// Token values are credentials: debug output never shows one.
impl std::fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCredential({:?}, …)", self.kind)
    }
}

/// What the request carries for vidgate.
#[derive(Debug, Default)]
pub struct Credentials {
    /// The distinct token credentials, in the order found.
    tokens: Vec<TokenCredential>,
    /// The first explicit session credential (query, then header).
    explicit_session: Option<String>,
}

/// A value with exactly two dots is a JWT (SPEC 2.1); any other client token is in the Ziggeo
/// format.
pub fn is_jwt(value: &str) -> bool {
    // `matches` with a char searches with memchr: a byte-by-byte count cost 6% of a JWT's whole
    // verification.
    value.matches('.').count() == 2
}

/// The value of an `Authorization: Bearer` header, if it is one.
pub fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|v| !v.is_empty())
}

impl Credentials {
    /// Read every credential in the request head. `bearer_auth` is `proxy.bearer_auth`.
    pub fn extract(parts: &Parts, bearer_auth: bool) -> Self {
        let mut creds = Credentials::default();
        let query = parts.uri.query().unwrap_or("");
        for (name, value) in form::pairs(query.as_bytes()) {
            match name.as_ref() {
                b"server_auth" => creds.push_token(TokenKind::Server, text(value)),
                b"client_auth" => creds.push_token(TokenKind::Client, text(value)),
                b"session" if creds.explicit_session.is_none() => {
                    creds.explicit_session = Some(text(value));
                }
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

    /// The request's one token (SPEC 2.6 step 2), as the decision judges it
    /// ([`policy::one_token`]): `ambiguous_token` for two different ones, `missing_token` for
    /// none.
    pub fn token(&self) -> Result<&TokenCredential, DenyReason> {
        policy::one_token(&self.tokens)
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

/// A decoded credential value as text (invalid UTF-8 becomes U+FFFD: it matches no token).
fn text(value: Cow<'_, [u8]>) -> String {
    form::lossy(value).into_owned()
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
    name.strip_prefix(HOST_PREFIX)
        .unwrap_or(name)
        .starts_with(COOKIE_PREFIX)
}

/// The name of `owner`'s session cookie without the TLS prefix: `vidgate_session_` and the first
/// 16 hex characters of SHA-256 of the owner key (SPEC 2.3).
pub fn cookie_name(owner: &OwnerKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update([owner.kind() as u8, b':']);
    hasher.update(owner.id().as_bytes());
    let digest = hasher.finalize();
    format!("{COOKIE_PREFIX}{}", hex::encode(&digest[..8]))
}

/// The `SameSite` attribute of session cookies (`proxy.cookie_same_site`, written `"lax"` or
/// `"none"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// `SameSite=Lax`: the default.
    #[default]
    Lax,
    /// `SameSite=None`, for players embedded on other sites (browsers then require TLS).
    None,
}

impl SameSite {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// How session cookies are written: their `SameSite`, and whether clients reach vidgate over
/// TLS (the cookie is then `Secure` and its name starts with `__Host-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cookies {
    /// `proxy.cookie_same_site`.
    pub same_site: SameSite,
    /// Whether clients see TLS.
    pub secure: bool,
}

impl Cookies {
    /// The name of `owner`'s session cookie, as set and as read back.
    pub fn name(&self, owner: &OwnerKey) -> String {
        let name = cookie_name(owner);
        if self.secure {
            format!("{HOST_PREFIX}{name}")
        } else {
            name
        }
    }

    /// Hand a new session to the client (SPEC 2.3): its id in [`SESSION_HEADER`], and as
    /// `owner`'s session cookie, which expires with the session when `remaining` is given.
    pub fn hand_out(
        &self,
        headers: &mut HeaderMap,
        owner: &OwnerKey,
        id: SessionId,
        remaining: Option<Duration>,
    ) {
        let id = id.to_string();
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert(SESSION_HEADER, value);
        }
        let mut cookie = format!(
            "{}={id}; Path=/; HttpOnly; SameSite={}",
            self.name(owner),
            self.same_site.as_str()
        );
        if let Some(remaining) = remaining {
            cookie.push_str(&format!("; Max-Age={}", remaining.as_secs().max(1)));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
}

/// Remove every vidgate credential from a request head (SPEC 2.1), keeping every other query
/// parameter, header and cookie in order and byte for byte.
pub fn strip(parts: &mut Parts, bearer_auth: bool) {
    if let Some(query) = parts.uri.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
                !pair.is_empty() && !is_own_parameter(name.as_bytes())
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
mod tests;
