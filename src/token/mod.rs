//! The auth token model (SPEC 1.1, 1.2, 1.4): what a token is, how it is written in JSON, and
//! the validation that refuses anything malformed with an error naming the field.
//!
//! Parsing is strict: unknown keys, wrong types and out-of-range values are refused, never
//! guessed at. This module does not store tokens (the `store` module does) nor decide requests
//! (the `policy` module does).

mod grants;

use std::borrow::Borrow;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use grants::{Action, Grant, Grants, InvalidResource, MAX_RESOURCE_LEN};

use crate::clock::Timestamp;

/// The identifier of a server-side token: `[A-Za-z0-9_-]{1,128}`.
///
/// Cheap to clone (shared), and borrowable as `&str` so maps keyed by it can be searched with
/// the string a request carries.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(Arc<str>);

/// A string that cannot be a token id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token id must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct InvalidTokenId;

impl TokenId {
    /// Whether `s` has the form of a token id.
    pub fn is_valid(s: &str) -> bool {
        (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// A token id from a string, if it has the right form.
    pub fn new(s: &str) -> Result<Self, InvalidTokenId> {
        if Self::is_valid(s) {
            Ok(TokenId(Arc::from(s)))
        } else {
            Err(InvalidTokenId)
        }
    }

    /// A fresh id: 32 lowercase hex characters from the operating system's CSPRNG (128 bits).
    pub fn generate() -> Self {
        TokenId(Arc::from(hex::encode(crate::random_bytes::<16>())))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TokenId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Token ids are credentials: debug output never shows one whole.
impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0.chars().take(4).collect();
        write!(f, "TokenId({head}…)")
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A server-side auth token (SPEC 1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    /// Its identifier.
    pub id: TokenId,
    /// What it allows.
    pub grants: Grants,
    /// When it stops being accepted (`now >= expiration_date` is expired).
    pub expiration_date: Option<Timestamp>,
    /// How long each of its sessions lives, in seconds.
    pub usage_expiration_time: Option<NonZeroU32>,
    /// How many sessions can ever be created with it.
    pub session_limit: Option<NonZeroU32>,
    /// Deleted as soon as it becomes empty.
    pub volatile: bool,
    /// Stored and manageable, but refused on requests.
    pub hidden: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

impl AuthToken {
    /// A token with these grants and nothing else set.
    pub fn new(id: TokenId, grants: Grants, created_at: Timestamp) -> Self {
        AuthToken {
            id,
            grants,
            expiration_date: None,
            usage_expiration_time: None,
            session_limit: None,
            volatile: false,
            hidden: false,
            created_at,
        }
    }

    /// Whether requests with this token need a session (SPEC 1.1).
    pub fn needs_sessions(&self) -> bool {
        self.session_limit.is_some()
            || self.usage_expiration_time.is_some()
            || self.grants.has_session_owned()
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expiration_date.is_some_and(|end| now >= end)
    }

    /// When a session of this token created at `created` ends, if it ends.
    pub fn session_end(&self, created: Timestamp) -> Option<Timestamp> {
        self.usage_expiration_time
            .map(|secs| created.saturating_add(Duration::from_secs(u64::from(secs.get()))))
    }

    /// Whether the token is volatile and empty, and so must not exist (SPEC 1.4).
    pub fn is_doomed(&self) -> bool {
        self.volatile && self.grants.is_empty()
    }

    /// The token's JSON object as the admin API shows it (SPEC 1.1).
    pub fn to_json(&self, sessions_created: u64) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("sessions_created".into(), sessions_created.into());
        }
        value
    }
}

impl Serialize for AuthToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            token: &'a TokenId,
            grants: &'a Grants,
            expiration_date: Option<i64>,
            usage_expiration_time: Option<u32>,
            session_limit: Option<u32>,
            volatile: bool,
            hidden: bool,
            created_at: i64,
        }
        Out {
            token: &self.id,
            grants: &self.grants,
            expiration_date: self.expiration_date.map(Timestamp::as_secs),
            usage_expiration_time: self.usage_expiration_time.map(NonZeroU32::get),
            session_limit: self.session_limit.map(NonZeroU32::get),
            volatile: self.volatile,
            hidden: self.hidden,
            created_at: self.created_at.as_secs(),
        }
        .serialize(serializer)
    }
}

/// Why a token body was refused. Its `Display` names the field at fault first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TokenError {
    field: String,
    message: String,
    unprocessable: bool,
}

impl TokenError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TokenError {
            field: field.into(),
            message: message.into(),
            unprocessable: false,
        }
    }

    /// The field at fault, as a path such as `grants.read.resources[0]` (`.` for the body).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the body is well-formed but describes a token that cannot exist (HTTP 422), as
    /// opposed to a malformed body (HTTP 400).
    pub fn is_unprocessable(&self) -> bool {
        self.unprocessable
    }
}

/// An instant as written in a token body: unix seconds (an integer, a decimal string, or a
/// number with a fraction), or an RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstantInput(pub(crate) Timestamp);

impl<'de> Deserialize<'de> for InstantInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InstantVisitor;
        impl Visitor<'_> for InstantVisitor {
            type Value = InstantInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("unix seconds or an RFC 3339 date")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(InstantInput(Timestamp::from_secs(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                let secs = i64::try_from(v).map_err(|_| E::custom("date out of range"))?;
                self.visit_i64(secs)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // Python's `time.time() + 3600` is a float; keep its milliseconds.
                if !v.is_finite() || v.abs() > 1e14 {
                    return Err(E::custom("date out of range"));
                }
                Ok(InstantInput(Timestamp::from_millis(
                    (v * 1000.0).floor() as i64
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    let secs = v
                        .parse::<i64>()
                        .map_err(|_| E::custom("date out of range"))?;
                    return self.visit_i64(secs);
                }
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| InstantInput(Timestamp::from_millis(t.timestamp_millis())))
                    .map_err(|e| E::custom(format_args!("not unix seconds nor RFC 3339 ({e})")))
            }
        }
        deserializer.deserialize_any(InstantVisitor)
    }
}

/// `Some(None)` for an explicit `null`, `None` for an absent key.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Every key a token body may hold, each remembering whether it was absent, null or given.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    #[serde(default, deserialize_with = "nullable")]
    token: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    grants: Option<Option<Grants>>,
    #[serde(default, deserialize_with = "nullable")]
    expiration_date: Option<Option<InstantInput>>,
    #[serde(default, deserialize_with = "nullable")]
    usage_expiration_time: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    session_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    volatile: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    hidden: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    sessions_created: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    created_at: Option<Option<InstantInput>>,
}

impl TokenBody {
    fn parse<'de, D: Deserializer<'de>>(body: D) -> Result<Self, TokenError> {
        serde_path_to_error::deserialize(body).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // serde names an unknown key in its message, not its path; so do we.
            TokenError::new(path, message)
        })
    }

    /// A body from JSON text, refusing anything after the object.
    fn from_json(text: &str) -> Result<Self, TokenError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let body = Self::parse(&mut de)?;
        de.end().map_err(|e| TokenError::new(".", e.to_string()))?;
        Ok(body)
    }

    fn refuse_output_fields(&self) -> Result<(), TokenError> {
        if self.sessions_created.is_some() {
            return Err(TokenError::new("sessions_created", "is output only"));
        }
        if self.created_at.is_some() {
            return Err(TokenError::new("created_at", "is output only"));
        }
        Ok(())
    }

    pub(crate) fn usage_expiration_time(v: Option<i64>) -> Result<Option<NonZeroU32>, TokenError> {
        v.map(|secs| {
            u32::try_from(secs)
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    TokenError::new(
                        "usage_expiration_time",
                        "must be a whole number of seconds greater than 0",
                    )
                })
        })
        .transpose()
    }

    pub(crate) fn session_limit(v: Option<i64>) -> Result<Option<NonZeroU32>, TokenError> {
        v.map(|n| {
            u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| TokenError::new("session_limit", "must be an integer of at least 1"))
        })
        .transpose()
    }
}

/// A token to create, as given to the admin API (SPEC 3): validated, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The requested id; `None` lets the store generate one.
    pub id: Option<TokenId>,
    /// What it allows.
    pub grants: Grants,
    /// See [`AuthToken::expiration_date`].
    pub expiration_date: Option<Timestamp>,
    /// See [`AuthToken::usage_expiration_time`].
    pub usage_expiration_time: Option<NonZeroU32>,
    /// See [`AuthToken::session_limit`].
    pub session_limit: Option<NonZeroU32>,
    /// See [`AuthToken::volatile`].
    pub volatile: bool,
    /// See [`AuthToken::hidden`].
    pub hidden: bool,
}

impl NewToken {
    /// A token granting `grants`, every other field unset.
    pub fn new(grants: Grants) -> Self {
        NewToken {
            id: None,
            grants,
            expiration_date: None,
            usage_expiration_time: None,
            session_limit: None,
            volatile: false,
            hidden: false,
        }
    }

    /// Parse and validate a create body (JSON text).
    pub fn from_json(body: &str) -> Result<Self, TokenError> {
        Self::from_body(TokenBody::from_json(body)?)
    }

    /// Parse and validate a create body already decoded to a JSON value (e.g. from a form).
    pub fn from_value(body: serde_json::Value) -> Result<Self, TokenError> {
        Self::from_body(TokenBody::parse(body)?)
    }

    fn from_body(body: TokenBody) -> Result<Self, TokenError> {
        body.refuse_output_fields()?;
        let id = match body.token.flatten() {
            Some(id) => {
                Some(TokenId::new(&id).map_err(|e| TokenError::new("token", e.to_string()))?)
            }
            None => None,
        };
        let grants = body
            .grants
            .flatten()
            .ok_or_else(|| TokenError::new("grants", "is required"))?;
        let token = NewToken {
            id,
            grants,
            expiration_date: body.expiration_date.flatten().map(|t| t.0),
            usage_expiration_time: TokenBody::usage_expiration_time(
                body.usage_expiration_time.flatten(),
            )?,
            session_limit: TokenBody::session_limit(body.session_limit.flatten())?,
            volatile: body.volatile.flatten().unwrap_or(false),
            hidden: body.hidden.flatten().unwrap_or(false),
        };
        token.validate()?;
        Ok(token)
    }

    /// Checks that cross fields: an empty volatile token cannot be created (SPEC 1.4).
    pub fn validate(&self) -> Result<(), TokenError> {
        if self.volatile && self.grants.is_empty() {
            return Err(TokenError {
                unprocessable: true,
                ..TokenError::new("grants", "a volatile token must grant something")
            });
        }
        Ok(())
    }

    /// The token this becomes when stored at `now` (generating an id if none was given).
    pub fn into_token(self, now: Timestamp) -> AuthToken {
        AuthToken {
            id: self.id.unwrap_or_else(TokenId::generate),
            grants: self.grants,
            expiration_date: self.expiration_date,
            usage_expiration_time: self.usage_expiration_time,
            session_limit: self.session_limit,
            volatile: self.volatile,
            hidden: self.hidden,
            created_at: now,
        }
    }
}

/// A partial update of a token (SPEC 3): each `Some` replaces the stored field; for optional
/// fields `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenPatch {
    /// New grants, as a whole.
    pub grants: Option<Grants>,
    /// New expiration date, or `Some(None)` to clear it.
    pub expiration_date: Option<Option<Timestamp>>,
    /// New session life, or `Some(None)` to clear it.
    pub usage_expiration_time: Option<Option<NonZeroU32>>,
    /// New session limit, or `Some(None)` to clear it.
    pub session_limit: Option<Option<NonZeroU32>>,
    /// New volatility (`null` clears it to false).
    pub volatile: Option<bool>,
    /// New hidden flag (`null` clears it to false).
    pub hidden: Option<bool>,
}

impl TokenPatch {
    /// Parse and validate an update body (JSON text).
    pub fn from_json(body: &str) -> Result<Self, TokenError> {
        Self::from_body(TokenBody::from_json(body)?)
    }

    /// Parse and validate an update body already decoded to a JSON value.
    pub fn from_value(body: serde_json::Value) -> Result<Self, TokenError> {
        Self::from_body(TokenBody::parse(body)?)
    }

    fn from_body(body: TokenBody) -> Result<Self, TokenError> {
        if body.token.is_some() {
            return Err(TokenError::new("token", "cannot be changed"));
        }
        body.refuse_output_fields()?;
        let grants = match body.grants {
            Some(Some(grants)) => Some(grants),
            Some(None) => return Err(TokenError::new("grants", "cannot be cleared")),
            None => None,
        };
        Ok(TokenPatch {
            grants,
            expiration_date: body.expiration_date.map(|t| t.map(|t| t.0)),
            usage_expiration_time: body
                .usage_expiration_time
                .map(TokenBody::usage_expiration_time)
                .transpose()?,
            session_limit: body
                .session_limit
                .map(TokenBody::session_limit)
                .transpose()?,
            volatile: body.volatile.map(|v| v.unwrap_or(false)),
            hidden: body.hidden.map(|v| v.unwrap_or(false)),
        })
    }

    /// `token` with this patch applied.
    pub fn apply(&self, token: &AuthToken) -> AuthToken {
        let mut out = token.clone();
        if let Some(grants) = &self.grants {
            out.grants = grants.clone();
        }
        if let Some(v) = self.expiration_date {
            out.expiration_date = v;
        }
        if let Some(v) = self.usage_expiration_time {
            out.usage_expiration_time = v;
        }
        if let Some(v) = self.session_limit {
            out.session_limit = v;
        }
        if let Some(v) = self.volatile {
            out.volatile = v;
        }
        if let Some(v) = self.hidden {
            out.hidden = v;
        }
        out
    }
}

impl<'de> Deserialize<'de> for AuthToken {
    /// Reads back what [`Serialize`] wrote: the admin API's token object.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let body = TokenBody::parse(deserializer).map_err(de::Error::custom)?;
        let created_at = body.created_at.flatten().map(|t| t.0);
        let new = NewToken::from_body(TokenBody {
            sessions_created: None,
            created_at: None,
            ..body
        })
        .map_err(de::Error::custom)?;
        let id = new
            .id
            .clone()
            .ok_or_else(|| de::Error::missing_field("token"))?;
        let created_at = created_at.ok_or_else(|| de::Error::missing_field("created_at"))?;
        Ok(AuthToken {
            id,
            ..new.into_token(created_at)
        })
    }
}

#[cfg(test)]
mod tests;
