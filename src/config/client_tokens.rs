//! `[client_tokens]`, `[[client_tokens.jwt_keys]]` and `[client_tokens.ziggeo]`: the keys
//! client-side tokens are verified with, and their clock leeway and counters.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::error::invalid;
use super::resolve::{check_pem, is_inline_pem, read_env, read_pem_file};
use super::values::{env_name, nonzero, HumanDuration, Secret};
use super::ConfigError;
/// `[client_tokens]`: tokens minted by the customer's server and verified offline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTokensConfig {
    /// `leeway`: clock leeway applied to `exp`, `nbf` and `expiration_date` (default 5 s).
    pub leeway: HumanDuration,
    /// `counter_ttl`: how long the session counter of a client token without expiry lives
    /// (default 30 days).
    pub counter_ttl: HumanDuration,
    /// `[[client_tokens.jwt_keys]]`: the keys JWTs may be signed with (default none: JWTs are
    /// refused).
    pub jwt_keys: Vec<JwtKey>,
    /// `[client_tokens.ziggeo]`: absent (the default), Ziggeo-format tokens are refused.
    pub ziggeo: Option<ZiggeoConfig>,
}

impl Default for ClientTokensConfig {
    fn default() -> Self {
        Self {
            leeway: HumanDuration::from_secs(5),
            counter_ttl: HumanDuration::from_secs(30 * 24 * 3600),
            jwt_keys: Vec::new(),
            ziggeo: None,
        }
    }
}

/// One `[[client_tokens.jwt_keys]]` entry: a key a JWT names by its `kid`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    /// `kid` (required): the JWT header's `kid`; unique across keys.
    pub kid: String,
    /// `alg` (required): the only algorithm accepted with this key.
    pub alg: JwtAlg,
    /// `secret`: HS algorithms: the shared secret, whose UTF-8 bytes are the key.
    pub secret: Option<Secret>,
    /// `secret_env`: HS algorithms: the environment variable holding the secret instead.
    pub secret_env: Option<String>,
    /// `public_key_pem`: EdDSA, ES256, RS256: the verifying key, as PEM text (a value starting
    /// with `-----BEGIN`) or the path of a PEM file.
    pub public_key_pem: Option<String>,
    /// `private_key_pem`: optional, lets `vidgate token mint` sign; PEM text or a path.
    pub private_key_pem: Option<Secret>,
    /// What [`Config::resolve`](super::Config::resolve) read for `secret_env` and the PEM paths.
    #[serde(skip)]
    resolved: ResolvedJwtKey,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ResolvedJwtKey {
    secret: Option<Secret>,
    public_key_pem: Option<String>,
    private_key_pem: Option<Secret>,
}

impl JwtKey {
    /// HS algorithms: the secret's bytes, from `secret`, or from `secret_env` once
    /// [`Config::resolve`](super::Config::resolve) has read it.
    pub fn resolved_secret(&self) -> Option<&[u8]> {
        self.secret
            .as_ref()
            .or(self.resolved.secret.as_ref())
            .map(|s| s.expose().as_bytes())
    }

    /// The verifying key's PEM text: `public_key_pem` when written inline, else the file it
    /// names once [`Config::resolve`](super::Config::resolve) has read it.
    pub fn resolved_public_key_pem(&self) -> Option<&str> {
        match &self.public_key_pem {
            Some(value) if is_inline_pem(value) => Some(value),
            _ => self.resolved.public_key_pem.as_deref(),
        }
    }

    /// The signing key's PEM text: `private_key_pem` when written inline, else the file it
    /// names once [`Config::resolve`](super::Config::resolve) has read it.
    pub fn resolved_private_key_pem(&self) -> Option<&str> {
        match &self.private_key_pem {
            Some(value) if is_inline_pem(value.expose()) => Some(value.expose()),
            _ => self.resolved.private_key_pem.as_ref().map(Secret::expose),
        }
    }
}

/// `client_tokens.jwt_keys[].alg`: the JWS algorithms vidgate verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlg {
    /// HMAC with SHA-256.
    #[serde(rename = "HS256")]
    Hs256,
    /// HMAC with SHA-384.
    #[serde(rename = "HS384")]
    Hs384,
    /// HMAC with SHA-512.
    #[serde(rename = "HS512")]
    Hs512,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
}

impl JwtAlg {
    /// The name used in the config and in the JWT header's `alg`, e.g. `"HS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Whether the key is a shared secret (HS256, HS384, HS512) rather than a key pair.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::Hs256 | Self::Hs384 | Self::Hs512)
    }
}

impl fmt::Display for JwtAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[client_tokens.ziggeo]`: accept Ziggeo-format client tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZiggeoConfig {
    /// `application_token` (required): the token's `application_token` must equal it.
    pub application_token: String,
    /// `encryption_key`: the application's encryption key, written inline.
    pub encryption_key: Option<Secret>,
    /// `encryption_key_env`: the environment variable holding it instead.
    pub encryption_key_env: Option<String>,
    /// The value of `encryption_key_env`, read by [`Config::resolve`](super::Config::resolve).
    #[serde(skip)]
    resolved_encryption_key: Option<Secret>,
}

impl ZiggeoConfig {
    /// The encryption key: `encryption_key`, or the value of `encryption_key_env` once
    /// [`Config::resolve`](super::Config::resolve) has read it.
    pub fn resolved_encryption_key(&self) -> Option<&str> {
        self.encryption_key
            .as_ref()
            .or(self.resolved_encryption_key.as_ref())
            .map(Secret::expose)
    }
}

impl ClientTokensConfig {
    /// Read the keys' `*_env` variables and PEM files.
    pub(super) fn resolve(&mut self) -> Result<(), ConfigError> {
        for (i, key) in self.jwt_keys.iter_mut().enumerate() {
            let at = |name: &str| format!("client_tokens.jwt_keys[{i}].{name}");
            if let Some(var) = &key.secret_env {
                key.resolved.secret = Some(read_env(&at("secret_env"), var)?);
            }
            if let Some(path) = key.public_key_pem.as_deref().filter(|v| !is_inline_pem(v)) {
                key.resolved.public_key_pem = Some(read_pem_file(
                    &at("public_key_pem"),
                    Path::new(path),
                    "PUBLIC KEY",
                )?);
            }
            if let Some(path) = key
                .private_key_pem
                .as_ref()
                .map(Secret::expose)
                .filter(|v| !is_inline_pem(v))
            {
                key.resolved.private_key_pem = Some(Secret::new(read_pem_file(
                    &at("private_key_pem"),
                    Path::new(path),
                    "PRIVATE KEY",
                )?));
            }
        }
        if let Some(ziggeo) = &mut self.ziggeo {
            if let Some(var) = &ziggeo.encryption_key_env {
                ziggeo.resolved_encryption_key =
                    Some(read_env("client_tokens.ziggeo.encryption_key_env", var)?);
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        nonzero("client_tokens.counter_ttl", self.counter_ttl)?;
        let mut kids: HashMap<&str, usize> = HashMap::new();
        for (i, key) in self.jwt_keys.iter().enumerate() {
            let at = |name: &str| format!("client_tokens.jwt_keys[{i}].{name}");
            if key.kid.is_empty() {
                return Err(invalid(&at("kid"), "must not be empty"));
            }
            if let Some(first) = kids.insert(&key.kid, i) {
                return Err(invalid(
                    &at("kid"),
                    format!(
                        "{:?} is already the kid of client_tokens.jwt_keys[{first}]",
                        key.kid
                    ),
                ));
            }
            key.validate(&at)?;
        }
        if let Some(ziggeo) = &self.ziggeo {
            ziggeo.validate()?;
        }
        Ok(())
    }
}

impl JwtKey {
    fn validate(&self, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let alg = self.alg;
        if alg.is_hmac() {
            match (&self.secret, &self.secret_env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &at("secret_env"),
                        "give secret or secret_env, not both",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        &at("secret"),
                        format!("an {alg} key needs secret or secret_env"),
                    ))
                }
                (Some(secret), None) if secret.expose().is_empty() => {
                    return Err(invalid(&at("secret"), "must not be empty"))
                }
                _ => {}
            }
            env_name(&at("secret_env"), self.secret_env.as_deref())?;
            for (name, set) in [
                ("public_key_pem", self.public_key_pem.is_some()),
                ("private_key_pem", self.private_key_pem.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        &at(name),
                        format!(
                            "an {alg} key is a shared secret; {name} is for EdDSA, ES256 and RS256"
                        ),
                    ));
                }
            }
        } else {
            for (name, set) in [
                ("secret", self.secret.is_some()),
                ("secret_env", self.secret_env.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        &at(name),
                        format!("an {alg} key is a key pair; {name} is for HS256, HS384 and HS512"),
                    ));
                }
            }
            let Some(public) = &self.public_key_pem else {
                return Err(invalid(
                    &at("public_key_pem"),
                    format!("an {alg} key needs public_key_pem (PEM text or a file's path)"),
                ));
            };
            pem_value(&at("public_key_pem"), public, "PUBLIC KEY")?;
            if let Some(private) = &self.private_key_pem {
                pem_value(&at("private_key_pem"), private.expose(), "PRIVATE KEY")?;
            }
        }
        Ok(())
    }
}

impl ZiggeoConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        const AT: &str = "client_tokens.ziggeo";
        if self.application_token.is_empty() {
            return Err(invalid(
                &format!("{AT}.application_token"),
                "must not be empty",
            ));
        }
        match (&self.encryption_key, &self.encryption_key_env) {
            (Some(_), Some(_)) => Err(invalid(
                &format!("{AT}.encryption_key_env"),
                "give encryption_key or encryption_key_env, not both",
            )),
            (None, None) => Err(invalid(
                &format!("{AT}.encryption_key"),
                "is required (or encryption_key_env)",
            )),
            (Some(key), None) if key.expose().is_empty() => Err(invalid(
                &format!("{AT}.encryption_key"),
                "must not be empty",
            )),
            _ => env_name(
                &format!("{AT}.encryption_key_env"),
                self.encryption_key_env.as_deref(),
            ),
        }
    }
}

/// A PEM-or-path value: inline PEM must look like one; a path must not be empty (the file is
/// read by [`Config::resolve`](super::Config::resolve)).
fn pem_value(key: &str, value: &str, label: &str) -> Result<(), ConfigError> {
    if is_inline_pem(value) {
        check_pem(value, label).map_err(|problem| invalid(key, problem))
    } else if value.trim().is_empty() {
        Err(invalid(key, "must be PEM text or a file's path"))
    } else {
        Ok(())
    }
}
