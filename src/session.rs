//! Sessions (SPEC 2.3–2.4): their identifiers, who owns them, when they end and which videos
//! were created in them.
//!
//! This module describes sessions; the store keeps them and enforces `session_limit`, the
//! decision judges whether a presented one may be used, and the wire module names their
//! cookies.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::clock::Timestamp;
use crate::token::TokenId;

/// A session identifier: 128 random bits, written as 22 characters of URL-safe base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u128);

impl SessionId {
    /// A fresh identifier from the operating system's CSPRNG.
    pub fn generate() -> Self {
        SessionId(u128::from_le_bytes(crate::random_bytes::<16>()))
    }

    /// The identifier's 128 bits.
    pub const fn to_bits(self) -> u128 {
        self.0
    }

    /// The identifier with these 128 bits.
    pub const fn from_bits(bits: u128) -> Self {
        SessionId(bits)
    }
}

/// A string that is not a session identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is 22 characters of URL-safe base64")]
pub struct InvalidSessionId;

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    /// Only the canonical 22-character form is accepted, so every id has exactly one spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 22 {
            return Err(InvalidSessionId);
        }
        let mut bytes = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut bytes) {
            Ok(16) => Ok(SessionId(u128::from_le_bytes(bytes))),
            _ => Err(InvalidSessionId),
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 22];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0.to_le_bytes(), &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

/// Session ids are credentials: debug output never shows one.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(…)")
    }
}

/// Who a session belongs to (SPEC 1.3): a server token, or a client token's nonce.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum OwnerKey {
    /// `s:<token>`: a server-side token.
    Server(TokenId),
    /// `j:<jti>`: a JWT client token.
    Jwt(Arc<str>),
    /// `z:<nonce>`: a Ziggeo-format client token.
    Ziggeo(Arc<str>),
}

impl OwnerKey {
    /// The one-letter kind prefix of the key.
    pub fn kind(&self) -> char {
        match self {
            OwnerKey::Server(_) => 's',
            OwnerKey::Jwt(_) => 'j',
            OwnerKey::Ziggeo(_) => 'z',
        }
    }

    /// The token id, jti or nonce.
    pub fn id(&self) -> &str {
        match self {
            OwnerKey::Server(id) => id.as_str(),
            OwnerKey::Jwt(id) | OwnerKey::Ziggeo(id) => id,
        }
    }
}

/// The full key `s:<token>` names a credential: it is only for the store's own use.
impl fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerKey({}:…)", self.kind())
    }
}

/// Where a request's session credential came from (SPEC 2.1, 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSource {
    /// The `session` query parameter or the `X-Vidgate-Session` header: used strictly.
    Explicit,
    /// Only the session cookie: used leniently.
    Cookie,
}

/// A session as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its identifier.
    pub id: SessionId,
    /// The token (or client-token nonce) it belongs to.
    pub owner: OwnerKey,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ends, fixed at creation; `None` if it lasts as long as its token.
    pub ends_at: Option<Timestamp>,
    /// Videos created in it (SPEC 2.4).
    pub owned: Vec<String>,
}

impl Session {
    /// Whether the session has ended at `now`.
    pub fn has_ended(&self, now: Timestamp) -> bool {
        self.ends_at.is_some_and(|end| now >= end)
    }

    /// Whether `video` was created in this session.
    pub fn owns(&self, video: &str) -> bool {
        self.owned.iter().any(|v| v == video)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_url_safe_chars_and_parse_back() {
        for _ in 0..100 {
            let id = SessionId::generate();
            let text = id.to_string();
            assert_eq!(text.len(), 22);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(text.parse::<SessionId>(), Ok(id));
        }
    }

    #[test]
    fn ids_are_random() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAA+A",
            "AAAAAAAAAAAAAAAAAAAA/A",
        ] {
            assert_eq!(bad.parse::<SessionId>(), Err(InvalidSessionId), "{bad:?}");
        }
        // The last character carries 2 unused bits: only the canonical spelling is accepted.
        let canonical = SessionId::from_bits(0).to_string();
        assert_eq!(canonical, "AAAAAAAAAAAAAAAAAAAAAA");
        assert!("AAAAAAAAAAAAAAAAAAAAAB".parse::<SessionId>().is_err());
    }

    #[test]
    fn debug_never_shows_the_id() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(&id.to_string()));
        let owner = OwnerKey::Server(TokenId::new("secret-token").unwrap());
        assert!(!format!("{owner:?}").contains("secret"));
    }

    #[test]
    fn session_end_is_exclusive() {
        let s = Session {
            id: SessionId::generate(),
            owner: OwnerKey::Jwt(Arc::from("n")),
            created_at: Timestamp::from_secs(0),
            ends_at: Some(Timestamp::from_secs(10)),
            owned: vec!["v".into()],
        };
        assert!(!s.has_ended(Timestamp::from_millis(9_999)));
        assert!(s.has_ended(Timestamp::from_secs(10)));
        assert!(s.owns("v") && !s.owns("w"));
    }
}
