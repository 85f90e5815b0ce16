//! Admin credentials (SPEC 3): HTTP Basic `app_token:private_key`, or `Bearer <private_key>`.
//!
//! Both sides are hashed with SHA-256 before a constant-time comparison, so neither the
//! contents nor the length of the secret leak through timing.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Standard base64, with or without padding: clients differ.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type Digest32 = [u8; 32];

fn digest(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Credentials of the admin API.
///
/// Only SHA-256 digests of the secrets are kept. An empty private key matches nothing, so a
/// misconfigured key locks the API rather than opening it.
#[derive(Clone)]
pub struct AdminAuth {
    /// `admin.app_token`: when set, Basic credentials must name it as the user.
    app_token: Option<Digest32>,
    /// `admin.private_key`: the password (Basic) or the bearer value.
    private_key: Digest32,
    usable: bool,
}

impl AdminAuth {
    /// Credentials accepting Basic `app_token:private_key` (any user name when `app_token` is
    /// `None`) and `Bearer <private_key>`.
    pub fn new(app_token: Option<String>, private_key: String) -> Self {
        AdminAuth {
            app_token: app_token.map(|t| digest(t.as_bytes())),
            private_key: digest(private_key.as_bytes()),
            usable: !private_key.is_empty(),
        }
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub(crate) fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.as_bytes();
        let Some(space) = value.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, credentials) = (&value[..space], value[space + 1..].trim_ascii());
        let matched = if scheme.eq_ignore_ascii_case(b"basic") {
            self.basic(credentials)
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            self.key_matches(credentials)
        } else {
            Choice::from(0)
        };
        self.usable && bool::from(matched)
    }

    fn basic(&self, encoded: &[u8]) -> Choice {
        let Ok(decoded) = BASIC.decode(encoded) else {
            return Choice::from(0);
        };
        // The user name cannot hold a colon (RFC 7617); the password may.
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Choice::from(0);
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = match &self.app_token {
            Some(expected) => digest(user).ct_eq(expected),
            None => Choice::from(1),
        };
        // `&` on Choice: both comparisons always run.
        user_ok & self.key_matches(password)
    }

    fn key_matches(&self, candidate: &[u8]) -> Choice {
        digest(candidate).ct_eq(&self.private_key)
    }
}

/// The secrets never appear in debug output.
impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminAuth")
            .field("app_token", &self.app_token.as_ref().map(|_| "…"))
            .field("private_key", &"…")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        header(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    #[test]
    fn basic_needs_the_app_token_and_the_key() {
        let auth = AdminAuth::new(Some("app".into()), "key".into());
        assert!(auth.accepts(Some(&basic("app", "key"))));
        assert!(!auth.accepts(Some(&basic("other", "key"))));
        assert!(!auth.accepts(Some(&basic("app", "wrong"))));
        assert!(!auth.accepts(Some(&basic("app", ""))));
        assert!(!auth.accepts(Some(&basic("", "key"))));
    }

    #[test]
    fn without_an_app_token_any_user_name_goes() {
        let auth = AdminAuth::new(None, "key".into());
        assert!(auth.accepts(Some(&basic("whoever", "key"))));
        assert!(auth.accepts(Some(&basic("", "key"))));
        assert!(!auth.accepts(Some(&basic("whoever", "nope"))));
    }

    #[test]
    fn bearer_carries_the_key() {
        let auth = AdminAuth::new(Some("app".into()), "k:e y".into());
        assert!(auth.accepts(Some(&header("Bearer k:e y"))));
        assert!(auth.accepts(Some(&header("bearer   k:e y"))));
        assert!(!auth.accepts(Some(&header("Bearer app"))));
        assert!(!auth.accepts(Some(&header("Bearer k:e"))));
    }

    #[test]
    fn passwords_may_hold_colons_and_padding_is_optional() {
        let auth = AdminAuth::new(Some("app".into()), "a:b".into());
        assert!(auth.accepts(Some(&basic("app", "a:b"))));
        // "app:a:b" is 7 bytes: its base64 ends in "==", which some clients leave out.
        assert!(auth.accepts(Some(&header("Basic YXBwOmE6Yg=="))));
        assert!(auth.accepts(Some(&header("Basic YXBwOmE6Yg"))));
    }

    #[test]
    fn anything_else_is_refused() {
        let auth = AdminAuth::new(Some("app".into()), "key".into());
        for bad in [
            "",
            "key",
            "Basic",
            "Basic !!!",
            "Digest key",
            "Token key",
            "Basic a2V5",
        ] {
            assert!(!auth.accepts(Some(&header(bad))), "{bad:?}");
        }
        assert!(!auth.accepts(None));
    }

    #[test]
    fn an_empty_key_opens_nothing() {
        let auth = AdminAuth::new(None, String::new());
        assert!(!auth.accepts(Some(&basic("", ""))));
        assert!(!auth.accepts(Some(&header("Bearer "))));
    }

    #[test]
    fn debug_hides_the_secrets() {
        let auth = AdminAuth::new(Some("the-app".into()), "the-key".into());
        let text = format!("{auth:?}");
        assert!(
            !text.contains("the-app") && !text.contains("the-key"),
            "{text}"
        );
    }
}
