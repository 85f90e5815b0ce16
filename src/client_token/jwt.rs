//! JWT client tokens (SPEC 1.3, format 1): compact JWS, verified with `jsonwebtoken`'s
//! RustCrypto primitives.
//!
//! The header is read here, not by a general JWT library, so that each rule of the contract
//! is one visible line: the header's `kid` picks the key, and its `alg` must equal the key's
//! configured algorithm exactly (so `none`, an HS256 token "signed" with an RS256 key's
//! public PEM, or any other downgrade is refused before a signature is looked at). The claims
//! are read only after the signature verified.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};

use super::{
    check_nonce, derived_nonce, present, rfc3339, Fields, Format, NumericDate, Refused, Verified,
};
use crate::clock::Timestamp;
use crate::config::{ConfigError, JwtAlg, JwtKey};
use crate::session::OwnerKey;
use crate::token::Grants;

/// The configured JWT keys, by `kid`.
#[derive(Clone, Default)]
pub struct JwtKeys {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    kid: String,
    alg: JwtAlg,
    algorithm: Algorithm,
    verifying: DecodingKey,
    verifier: Verifier,
    signing: Option<EncodingKey>,
}

/// A key made ready to verify, once, when the config is loaded.
///
/// `jsonwebtoken::crypto::verify` rebuilds its verifier from the key bytes on every call: for
/// HMAC that is the keyed state (two SHA compressions and an allocation), for Ed25519 a point
/// decompression. Those two, the common ones, are prepared here with the same RustCrypto
/// crates jsonwebtoken uses; ES256 and RS256 go through jsonwebtoken as they are.
#[derive(Clone)]
enum Verifier {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
    Ed25519(ed25519_dalek::VerifyingKey),
    Jsonwebtoken,
}

/// Compare a keyed MAC of `message` with `signature`, in constant time.
fn hmac_matches<M: Mac + Clone>(keyed: &M, message: &[u8], signature: &[u8]) -> bool {
    let mut mac = keyed.clone();
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

impl Key {
    /// Whether `signature` (base64url) signs `message` with this key.
    fn verifies(&self, message: &[u8], signature: &str) -> bool {
        if let Verifier::Jsonwebtoken = self.verifier {
            return matches!(
                jsonwebtoken::crypto::verify(signature, message, &self.verifying, self.algorithm),
                Ok(true)
            );
        }
        // HMAC-SHA512 and Ed25519 signatures are the longest here: 64 bytes.
        let mut buffer = [0u8; 128];
        let Ok(length) = URL_SAFE_NO_PAD.decode_slice(signature, &mut buffer) else {
            return false;
        };
        let signature = &buffer[..length];
        match &self.verifier {
            Verifier::Hs256(mac) => hmac_matches(mac, message, signature),
            Verifier::Hs384(mac) => hmac_matches(mac, message, signature),
            Verifier::Hs512(mac) => hmac_matches(mac, message, signature),
            Verifier::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| ed25519_dalek::Verifier::verify(key, message, &s).is_ok()),
            Verifier::Jsonwebtoken => false,
        }
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, k.alg.as_str())))
            .finish()
    }
}

/// Why `vidgate token mint` could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// No key has this `kid`.
    #[error("no [[client_tokens.jwt_keys]] entry has kid {0:?}")]
    UnknownKid(String),
    /// `--kid` was not given and the choice is not obvious.
    #[error("{0}")]
    ChooseKey(String),
    /// The key can verify but not sign.
    #[error("key {0:?} has no private_key_pem, so it can only verify")]
    CannotSign(String),
    /// The claims are not a JSON object, or signing failed.
    #[error("{0}")]
    Invalid(String),
}

/// The JOSE header fields vidgate reads; the others (`typ`, `cty`, ...) are ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// The claims vidgate reads (SPEC 1.3); `aud`, `iss`, `sub`, `iat` and others are ignored.
/// A repeated claim is an error (serde refuses duplicate fields), so no two JSON parsers can
/// read one token two ways.
#[derive(Deserialize)]
struct Claims {
    grants: Option<Grants>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    session_limit: Option<i64>,
    usage_expiration_time: Option<i64>,
    jti: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expiration_date: bool,
}

fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::Hs256 => Algorithm::HS256,
        JwtAlg::Hs384 => Algorithm::HS384,
        JwtAlg::Hs512 => Algorithm::HS512,
        JwtAlg::EdDsa => Algorithm::EdDSA,
        JwtAlg::Es256 => Algorithm::ES256,
        JwtAlg::Rs256 => Algorithm::RS256,
    }
}

impl JwtKeys {
    /// The keys of `[[client_tokens.jwt_keys]]`, parsed and checked: a public key that does not
    /// parse as the configured algorithm's, or a private key that does not match it, is an
    /// error naming the entry.
    pub fn from_config(entries: &[JwtKey]) -> Result<JwtKeys, ConfigError> {
        let keys = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| Key::from_config(i, entry))
            .collect::<Result<_, _>>()?;
        Ok(JwtKeys { keys })
    }

    /// Whether no key is configured (every JWT is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured `kid`s and algorithms, in order.
    pub fn kids(&self) -> impl Iterator<Item = (&str, JwtAlg)> {
        self.keys.iter().map(|k| (k.kid.as_str(), k.alg))
    }

    fn find(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Verify a compact JWS at `now` (see [`ClientTokens::verify`](super::ClientTokens::verify)).
    pub(super) fn verify(
        &self,
        value: &str,
        now: Timestamp,
        leeway: Duration,
    ) -> Result<Verified, Refused> {
        if self.keys.is_empty() {
            return Err(Refused::JwtNotConfigured);
        }
        let malformed = |what: &str| Refused::JwtMalformed(what.to_owned());
        let mut parts = value.splitn(3, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three parts separated by dots"));
        };
        let mut header_buffer = [0u8; 512];
        let header_len = URL_SAFE_NO_PAD
            .decode_slice(header_b64, &mut header_buffer)
            .map_err(|_| malformed("the header is not base64url (or over 512 bytes)"))?;
        let header: Header = serde_json::from_slice(&header_buffer[..header_len])
            .map_err(|e| Refused::JwtMalformed(format!("header: {e}")))?;
        if header.alg.eq_ignore_ascii_case("none") {
            return Err(Refused::AlgNone);
        }
        let Some(kid) = header.kid else {
            return Err(Refused::UnknownKid("(none)".to_owned()));
        };
        let Some(key) = self.find(&kid) else {
            return Err(Refused::UnknownKid(format!("{kid:?}")));
        };
        if header.alg != key.alg.as_str() {
            return Err(Refused::AlgMismatch {
                kid: kid.into_owned(),
                header: header.alg.into_owned(),
                key: key.alg.as_str(),
            });
        }
        if header.crit {
            return Err(Refused::CriticalHeader);
        }
        let message = &value[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verifies(message.as_bytes(), signature) {
            return Err(Refused::BadSignature {
                kid: kid.into_owned(),
                alg: key.alg.as_str(),
            });
        }

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| malformed("the payload is not base64url"))?;
        let claims: Claims = super::parse_json(&payload).map_err(Refused::Claims)?;
        if claims.expiration_date {
            return Err(Refused::ExpirationDateInJwt);
        }
        let Some(grants) = claims.grants else {
            return Err(Refused::Claims("grants: is required".to_owned()));
        };
        let Some(NumericDate(exp)) = claims.exp else {
            return Err(Refused::Claims(
                "exp: is required (a client token cannot be revoked, so it must end)".to_owned(),
            ));
        };
        if let Some(NumericDate(nbf)) = claims.nbf {
            if now.saturating_add(leeway) < nbf {
                return Err(Refused::NotYetValid(rfc3339(nbf)));
            }
        }
        let token = Fields {
            grants,
            expires: Some(exp),
            session_limit: claims.session_limit,
            usage_expiration_time: claims.usage_expiration_time,
        }
        .into_token(leeway)?;
        let nonce: Arc<str> = match claims.jti {
            Some(jti) => {
                check_nonce("jti", &jti)?;
                jti.into()
            }
            None if token.needs_sessions() => return Err(Refused::MissingJti),
            None => derived_nonce(value),
        };
        Ok(Verified {
            token,
            owner: OwnerKey::Jwt(nonce),
            format: Format::Jwt,
        })
    }

    /// The key `vidgate token mint` signs with: `kid`, or else the only key that can sign.
    pub fn signing_kid(&self, kid: Option<&str>) -> Result<&str, MintError> {
        if let Some(kid) = kid {
            return self
                .find(kid)
                .map(|k| k.kid.as_str())
                .ok_or_else(|| MintError::UnknownKid(kid.to_owned()));
        }
        let signers: Vec<&str> = self
            .keys
            .iter()
            .filter(|k| k.signing.is_some())
            .map(|k| k.kid.as_str())
            .collect();
        match signers.as_slice() {
            [only] => Ok(only),
            [] => Err(MintError::ChooseKey(
                "no JWT key can sign: give an HS key's secret or a private_key_pem".to_owned(),
            )),
            several => Err(MintError::ChooseKey(format!(
                "several keys can sign ({}): choose one with --kid",
                several.join(", ")
            ))),
        }
    }

    /// Sign `claims` (a JSON object) with the key `kid`: header `{"alg", "kid", "typ": "JWT"}`.
    pub fn sign(&self, kid: &str, claims: &serde_json::Value) -> Result<String, MintError> {
        let key = self
            .find(kid)
            .ok_or_else(|| MintError::UnknownKid(kid.to_owned()))?;
        let signing = key
            .signing
            .as_ref()
            .ok_or_else(|| MintError::CannotSign(kid.to_owned()))?;
        if !claims.is_object() {
            return Err(MintError::Invalid(
                "the claims must be a JSON object".into(),
            ));
        }
        let header = serde_json::json!({"alg": key.alg.as_str(), "kid": kid, "typ": "JWT"});
        let mut message = URL_SAFE_NO_PAD.encode(header.to_string());
        message.push('.');
        message.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), signing, key.algorithm)
            .map_err(|e| MintError::Invalid(format!("signing failed: {e}")))?;
        message.push('.');
        message.push_str(&signature);
        Ok(message)
    }
}

impl Key {
    fn from_config(i: usize, entry: &JwtKey) -> Result<Key, ConfigError> {
        let at = |name: &str| format!("client_tokens.jwt_keys[{i}].{name}");
        let alg = entry.alg;
        let algorithm = algorithm(alg);
        let (verifying, signing) = if alg.is_hmac() {
            let secret = entry
                .resolved_secret()
                .ok_or_else(|| ConfigError::invalid(&at("secret"), "is not set"))?;
            (
                DecodingKey::from_secret(secret),
                Some(EncodingKey::from_secret(secret)),
            )
        } else {
            let public = entry.resolved_public_key_pem().ok_or_else(|| {
                ConfigError::invalid(&at("public_key_pem"), "has not been read yet")
            })?;
            let verifying = decoding_key(alg, public.as_bytes()).map_err(|e| {
                ConfigError::invalid(
                    &at("public_key_pem"),
                    format!("is not an {alg} public key ({e})"),
                )
            })?;
            let signing = entry
                .resolved_private_key_pem()
                .map(|pem| {
                    encoding_key(alg, pem.as_bytes()).map_err(|e| {
                        ConfigError::invalid(
                            &at("private_key_pem"),
                            format!("is not an {alg} private key in PKCS#8 PEM ({e})"),
                        )
                    })
                })
                .transpose()?;
            (verifying, signing)
        };
        let verifier = match alg {
            JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512 => {
                let secret = entry.resolved_secret().unwrap_or_default();
                let keyed = |e: hmac::digest::InvalidLength| {
                    ConfigError::invalid(&at("secret"), format!("cannot key HMAC ({e})"))
                };
                match alg {
                    JwtAlg::Hs256 => Verifier::Hs256(Hmac::new_from_slice(secret).map_err(keyed)?),
                    JwtAlg::Hs384 => Verifier::Hs384(Hmac::new_from_slice(secret).map_err(keyed)?),
                    _ => Verifier::Hs512(Hmac::new_from_slice(secret).map_err(keyed)?),
                }
            }
            JwtAlg::EdDsa => {
                let bytes: Option<[u8; 32]> = verifying
                    .try_get_as_bytes()
                    .ok()
                    .and_then(|b| b.try_into().ok());
                let key = bytes
                    .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
                    .ok_or_else(|| {
                        ConfigError::invalid(&at("public_key_pem"), "is not an Ed25519 public key")
                    })?;
                Verifier::Ed25519(key)
            }
            JwtAlg::Es256 | JwtAlg::Rs256 => Verifier::Jsonwebtoken,
        };
        let key = Key {
            kid: entry.kid.clone(),
            alg,
            algorithm,
            verifying,
            verifier,
            signing,
        };
        key.probe()
            .map_err(|(name, problem)| ConfigError::invalid(&at(name), problem))?;
        Ok(key)
    }

    /// Use the keys once, so that a key the verifier cannot use is a config error now rather
    /// than a refused token later, and a private key that is not the public key's pair is
    /// caught before it mints tokens that never verify.
    fn probe(&self) -> Result<(), (&'static str, String)> {
        let public = if self.alg.is_hmac() {
            "secret"
        } else {
            "public_key_pem"
        };
        let message = b"vidgate key probe";
        let zero_signature = URL_SAFE_NO_PAD.encode([0u8; 64]);
        if let Err(e) =
            jsonwebtoken::crypto::verify(&zero_signature, message, &self.verifying, self.algorithm)
        {
            return Err((
                public,
                format!("cannot verify {} signatures ({e})", self.alg),
            ));
        }
        if let Some(signing) = &self.signing {
            let signature = jsonwebtoken::crypto::sign(message, signing, self.algorithm)
                .map_err(|e| ("private_key_pem", format!("cannot sign ({e})")))?;
            if !self.verifies(message, &signature) {
                return Err((
                    "private_key_pem",
                    "is not the private half of public_key_pem".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

fn decoding_key(alg: JwtAlg, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match alg {
        JwtAlg::EdDsa => DecodingKey::from_ed_pem(pem),
        JwtAlg::Es256 => DecodingKey::from_ec_pem(pem),
        JwtAlg::Rs256 => DecodingKey::from_rsa_pem(pem),
        JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512 => Ok(DecodingKey::from_secret(pem)),
    }
}

fn encoding_key(alg: JwtAlg, pem: &[u8]) -> jsonwebtoken::errors::Result<EncodingKey> {
    match alg {
        JwtAlg::EdDsa => EncodingKey::from_ed_pem(pem),
        JwtAlg::Es256 => EncodingKey::from_ec_pem(pem),
        JwtAlg::Rs256 => EncodingKey::from_rsa_pem(pem),
        JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512 => Ok(EncodingKey::from_secret(pem)),
    }
}
