//! Client-side tokens (SPEC 1.3): minted by the customer's own server, verified here offline.
//!
//! Two formats, told apart by their shape (SPEC 2.1): a value with exactly two dots is a JWT
//! ([`jwt`]), any other is a Ziggeo-format token ([`ziggeo`]). Either way the result is a
//! [`Verified`] token: an [`AuthToken`] with the token's grants and limits, and the
//! [`OwnerKey`] its sessions are counted under (`j:<jti>` or `z:<nonce>`).
//!
//! The clock leeway is folded into the token's expiry once, here: the `expiration_date` of a
//! verified token is its `exp` plus the leeway, so the decision's ordinary expiry check
//! answers `token_expired` at the right instant and the session counter lives exactly as long
//! (SPEC 1.3).
//!
//! Every refusal is a [`Refused`], which says precisely why for `vidgate token inspect` and the
//! debug log. Requests only ever see 401 `invalid_token` (or `token_expired`), one fixed
//! response for every cause.

pub mod cli;
pub mod jwt;
pub mod ziggeo;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::config::{ClientTokensConfig, ConfigError};
use crate::credentials::is_jwt;
use crate::session::OwnerKey;
use crate::token::{AuthToken, Grants, TokenBody, TokenError, TokenId};

pub use jwt::JwtKeys;
pub use ziggeo::ZiggeoFormat;

/// The longest `jti` or `nonce` accepted, in bytes: it becomes a store key.
pub const MAX_NONCE_LEN: usize = 256;

/// The longest client token accepted, in bytes (a JWT's three parts, or a Ziggeo token's hex).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The offline verifiers vidgate is configured with (`[client_tokens]`).
#[derive(Debug, Clone, Default)]
pub struct ClientTokens {
    jwt: JwtKeys,
    ziggeo: Option<ZiggeoFormat>,
    leeway: Duration,
}

/// The two client-token formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A compact JWS (exactly two dots).
    Jwt,
    /// Ziggeo's `auth().generate()` format (anything else).
    Ziggeo,
}

impl Format {
    /// The format of a `client_auth` value, by its shape (SPEC 2.1: [`is_jwt`]).
    pub fn of(value: &str) -> Format {
        if is_jwt(value) {
            Format::Jwt
        } else {
            Format::Ziggeo
        }
    }

    /// `"JWT"` or `"Ziggeo-format token"`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jwt => "JWT",
            Format::Ziggeo => "Ziggeo-format token",
        }
    }
}

/// A client token that verified: what it grants, and whose sessions it opens.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its fields. `expiration_date` already includes the leeway; the id is a placeholder
    /// (client tokens are never stored).
    pub token: AuthToken,
    /// The owner key its sessions are counted under.
    pub owner: OwnerKey,
    /// Its format.
    pub format: Format,
}

/// Why a client token was refused. Only `vidgate token inspect` and debug logs show this; the
/// response is always the same 401 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// No JWT key is configured.
    #[error("no JWT keys are configured ([[client_tokens.jwt_keys]])")]
    JwtNotConfigured,
    /// Not three base64url parts with a JSON header and payload.
    #[error("not a well-formed JWT: {0}")]
    JwtMalformed(String),
    /// The header's `alg` is `none`.
    #[error("the JWT is unsigned (alg \"none\")")]
    AlgNone,
    /// The header names no key, or one that is not configured.
    #[error("the JWT's kid {0} names no configured key")]
    UnknownKid(String),
    /// The header's `alg` is not the named key's algorithm.
    #[error("the JWT says alg {header:?}, but key {kid:?} is {key}")]
    AlgMismatch {
        /// The key's id.
        kid: String,
        /// The header's `alg`.
        header: String,
        /// The key's configured algorithm.
        key: &'static str,
    },
    /// The signature does not verify with the named key.
    #[error("the JWT's signature does not verify with key {kid:?} ({alg})")]
    BadSignature {
        /// The key's id.
        kid: String,
        /// The key's algorithm.
        alg: &'static str,
    },
    /// The header carries `crit`, whose extensions vidgate does not implement.
    #[error("the JWT header has \"crit\" extensions, which vidgate does not implement")]
    CriticalHeader,
    /// A claim is missing or malformed.
    #[error("claim {0}")]
    Claims(String),
    /// The JWT carries `expiration_date`, which would silently mean nothing (`exp` does).
    #[error("the JWT carries expiration_date; a JWT's expiry is its exp claim")]
    ExpirationDateInJwt,
    /// `nbf` is still in the future (beyond the leeway).
    #[error("the JWT is not valid before {0}")]
    NotYetValid(String),
    /// The token needs sessions but has no `jti` to count them under.
    #[error("the JWT needs sessions (session_limit, usage_expiration_time or session_owned) but has no jti")]
    MissingJti,
    /// Ziggeo-format tokens are not configured.
    #[error("Ziggeo-format tokens are not configured ([client_tokens.ziggeo])")]
    ZiggeoNotConfigured,
    /// A Ziggeo-format token that does not decrypt to a valid token for this application.
    #[error("not a valid Ziggeo-format token for this application: {0}")]
    Ziggeo(ziggeo::Problem),
}

impl Refused {
    /// A short fixed code for logs (never the token, never a claim's value).
    pub fn code(&self) -> &'static str {
        match self {
            Refused::TooLong => "too_long",
            Refused::JwtNotConfigured => "jwt_not_configured",
            Refused::JwtMalformed(_) => "jwt_malformed",
            Refused::AlgNone => "jwt_alg_none",
            Refused::UnknownKid(_) => "jwt_unknown_kid",
            Refused::AlgMismatch { .. } => "jwt_alg_mismatch",
            Refused::BadSignature { .. } => "jwt_bad_signature",
            Refused::CriticalHeader => "jwt_crit",
            Refused::Claims(_) => "claims",
            Refused::ExpirationDateInJwt => "jwt_expiration_date",
            Refused::NotYetValid(_) => "jwt_not_yet_valid",
            Refused::MissingJti => "jwt_missing_jti",
            Refused::ZiggeoNotConfigured => "ziggeo_not_configured",
            Refused::Ziggeo(_) => "ziggeo_invalid",
        }
    }
}

impl ClientTokens {
    /// Build the verifiers from `[client_tokens]`, after [`Config::resolve`] has read the keys'
    /// files and variables. A key that does not parse is an error naming it.
    ///
    /// [`Config::resolve`]: crate::config::Config::resolve
    pub fn from_config(config: &ClientTokensConfig) -> Result<ClientTokens, ConfigError> {
        Ok(ClientTokens {
            jwt: JwtKeys::from_config(&config.jwt_keys)?,
            ziggeo: config
                .ziggeo
                .as_ref()
                .map(ZiggeoFormat::from_config)
                .transpose()?,
            leeway: config.leeway.get(),
        })
    }

    /// Verifiers built in code (tests, embedders of the layer).
    pub fn new(jwt: JwtKeys, ziggeo: Option<ZiggeoFormat>, leeway: Duration) -> ClientTokens {
        ClientTokens {
            jwt,
            ziggeo,
            leeway,
        }
    }

    /// The JWT keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// The Ziggeo format, when configured.
    pub fn ziggeo(&self) -> Option<&ZiggeoFormat> {
        self.ziggeo.as_ref()
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Verify a `client_auth` value at `now`. An expired token verifies (its
    /// `expiration_date` is in the past): the decision answers `token_expired` for it, after
    /// every `invalid_token` cause (SPEC 2.6).
    pub fn verify(&self, value: &str, now: Timestamp) -> Result<Verified, Refused> {
        if value.len() > MAX_TOKEN_LEN {
            return Err(Refused::TooLong);
        }
        match Format::of(value) {
            Format::Jwt => self.jwt.verify(value, now, self.leeway),
            Format::Ziggeo => match &self.ziggeo {
                Some(format) => format.verify(value, self.leeway),
                None => Err(Refused::ZiggeoNotConfigured),
            },
        }
    }
}

/// The id every verified client token carries: client tokens are never stored, so it names
/// nothing.
fn placeholder_id() -> TokenId {
    static ID: LazyLock<TokenId> =
        LazyLock::new(|| TokenId::new("client").expect("a valid token id"));
    ID.clone()
}

/// The fields both formats share, checked as SPEC 1.1 checks them for server tokens.
struct Fields {
    grants: Grants,
    expires: Option<Timestamp>,
    session_limit: Option<i64>,
    usage_expiration_time: Option<i64>,
}

impl Fields {
    /// The token, with the leeway added to its expiry.
    fn into_token(self, leeway: Duration) -> Result<AuthToken, Refused> {
        let claim = |e: TokenError| Refused::Claims(format!("{}: {}", e.field(), e.message()));
        let mut token = AuthToken::new(placeholder_id(), self.grants, Timestamp::from_millis(0));
        token.expiration_date = self.expires.map(|t| t.saturating_add(leeway));
        token.session_limit = TokenBody::session_limit(self.session_limit).map_err(claim)?;
        token.usage_expiration_time =
            TokenBody::usage_expiration_time(self.usage_expiration_time).map_err(claim)?;
        Ok(token)
    }
}

/// A `jti` or `nonce`: non-empty, at most [`MAX_NONCE_LEN`] bytes, no control characters.
fn check_nonce(name: &str, value: &str) -> Result<(), Refused> {
    if value.is_empty() || value.len() > MAX_NONCE_LEN || value.chars().any(char::is_control) {
        return Err(Refused::Claims(format!(
            "{name}: must be 1 to {MAX_NONCE_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// The owner key of a JWT that names no `jti` (one that needs no sessions, used with
/// `POST /session`): derived from the token itself, so that each such token counts alone.
fn derived_nonce(token: &str) -> Arc<str> {
    let digest = Sha256::digest(token.as_bytes());
    format!("#{}", hex::encode(&digest[..16])).into()
}

/// Parse JSON into `T`; on failure, parse again tracking the path, to name the field at fault
/// (`grants.read.resources[0]: ...`). Tracking costs a third of a good parse, so only
/// refusals pay it.
fn parse_json<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, String> {
    serde_json::from_slice(text).map_err(|_| {
        let tracked: Result<T, _> =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(text));
        match tracked {
            Ok(_) => "unreadable JSON".to_owned(),
            Err(e) => {
                let path = e.path().to_string();
                format!("{path}: {}", e.into_inner())
            }
        }
    })
}

/// A JSON value that must not be `null` to count as present: `Option<T>` fields that treat an
/// explicit `null` as absent, as Python's `None` becomes `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A JSON number of unix seconds (a JWT NumericDate: integer or not), to the millisecond.
#[derive(Debug, Clone, Copy)]
struct NumericDate(Timestamp);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumericVisitor;
        impl Visitor<'_> for NumericVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumericDate(Timestamp::from_secs(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("date out of range"))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if !v.is_finite() || v.abs() > 1e14 {
                    return Err(E::custom("date out of range"));
                }
                Ok(NumericDate(Timestamp::from_millis(
                    (v * 1000.0).floor() as i64
                )))
            }
        }
        deserializer.deserialize_any(NumericVisitor)
    }
}

/// Render an instant for people: RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.as_millis())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{} (unix seconds)", t.as_secs()))
}

#[cfg(test)]
mod tests;
