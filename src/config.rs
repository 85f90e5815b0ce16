//! The TOML configuration of SPEC 5: serde structs with their defaults, the checks that make a
//! bad file fail before anything starts, and the reading of every secret the file names.
//!
//! This module owns parsing, validating and resolving configuration; it starts nothing and
//! binds nothing. Each struct's defaults live in its `impl Default` (and nowhere else), every
//! struct refuses unknown keys, and every error is one line naming the file, the line and the
//! key at fault:
//!
//! ```text
//! config/vidgate.toml:12: proxy.connect_timeout: "5 parsecs" is not a duration (write e.g. "5s" or "250ms")
//! ```
//!
//! Three steps, so that tests need no files:
//! - [`Config::from_toml_str`] parses and [validates](Config::validate); it reads no file and no
//!   environment variable. Secrets written inline are usable at once.
//! - [`Config::resolve`] reads every environment variable and file the config names
//!   (`*_env` keys, PEM paths, `proxy.tls_cert` and `proxy.tls_key`) and keeps their contents,
//!   so that the server never reads them again.
//! - [`Config::load`] does all of it for a file, and is what `vidgate serve` and
//!   `vidgate check-config` call.
//!
//! Relative paths in the file are relative to the working directory, as is the `--config` path.
//!
//! ```
//! use vidgate::config::{Config, SameSite};
//!
//! let config = Config::from_toml_str(
//!     r#"
//!     [proxy]
//!     upstream = "https://videos.example.com"
//!     connect_timeout = "500ms"
//!     cookie_same_site = "none"
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(config.proxy.connect_timeout.get(), std::time::Duration::from_millis(500));
//! assert_eq!(config.proxy.cookie_same_site, SameSite::None);
//! assert!(config.proxy.upstream.unwrap().is_https());
//!
//! let err = Config::from_toml_str("[proxy]\nlisten = \"localhost\"\n").unwrap_err();
//! assert_eq!(err.line(), Some(2));
//! assert_eq!(err.key(), Some("proxy.listen"));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use http::uri::{Authority, Scheme, Uri};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::client_token::ClientTokens;
use crate::route::{self, Routes, Unmatched};
use crate::store::MemoryStoreBuilder;
use crate::tls::{Identity, IdentityError, OriginRoots};

// ---------------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------------

/// The whole configuration file. Every section and key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[proxy]`: the gateway's listener and its origin.
    pub proxy: ProxyConfig,
    /// `[admin]`: the admin API.
    pub admin: AdminConfig,
    /// `[store]`: where tokens, sessions and counters live.
    pub store: StoreConfig,
    /// `[client_tokens]`: offline-verified JWT and Ziggeo-format tokens.
    pub client_tokens: ClientTokensConfig,
    /// `[log]`: log output.
    pub log: LogConfig,
}

/// `[proxy]`: the gateway's listener, its origin and how requests are handled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `listen`: the proxy's address (default `127.0.0.1:8080`).
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `upstream`: the video origin. `None` (the default) means the built-in demo origin.
    pub upstream: Option<UpstreamUrl>,
    /// `tls_cert`: PEM certificate chain; with `tls_key`, the listener speaks TLS.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: PEM private key for `tls_cert`; both or neither.
    pub tls_key: Option<PathBuf>,
    /// `prefixes`: the route prefixes, tried in order (default [`route::DEFAULT_PREFIXES`]).
    pub prefixes: Vec<String>,
    /// `unmatched`: `"deny"` (default) or `"pass"` for paths that match no route.
    #[serde(deserialize_with = "de_unmatched")]
    pub unmatched: Unmatched,
    /// `bearer_auth`: whether every `Authorization: Bearer` belongs to vidgate (default true).
    pub bearer_auth: bool,
    /// `cookie_same_site`: the session cookie's `SameSite` attribute (default `"lax"`).
    pub cookie_same_site: SameSite,
    /// `connect_timeout`: to connect to the origin (default 2 s).
    pub connect_timeout: HumanDuration,
    /// `response_timeout`: from the request sent to the origin's response head (default 30 s);
    /// bodies may stream for longer.
    pub response_timeout: HumanDuration,
    /// `shutdown_timeout`: how long a graceful shutdown waits for requests in flight
    /// (default 30 s).
    pub shutdown_timeout: HumanDuration,
    /// `upstream_ca`: PEM file of the CA (or self-signed certificate) an `https://` origin
    /// must present a certificate from. Absent (the default): the bundled Mozilla roots and
    /// the system's.
    pub upstream_ca: Option<PathBuf>,
    /// `upstream_http2`: speak HTTP/2 to the origin (default false): offered by ALPN to an
    /// `https://` origin, prior knowledge (h2c) to an `http://` one.
    pub upstream_http2: bool,
    /// `header_read_timeout`: how long a client may take, from the first byte of a request
    /// (or of its TLS handshake), to send the whole request head (default 10 s). Slower
    /// clients are disconnected.
    pub header_read_timeout: HumanDuration,
    /// `idle_timeout`: how long a keep-alive connection may wait for its next request
    /// (default 60 s).
    pub idle_timeout: HumanDuration,
    /// `max_header_bytes`: the largest request head, in bytes (default 64 KiB); larger: 431.
    #[serde(deserialize_with = "de_byte_count")]
    pub max_header_bytes: usize,
    /// `max_headers`: the most header fields in a request (default 100); more: 431.
    pub max_headers: usize,
    /// `max_connections`: the most client connections open at once, on each listener
    /// (default 10000). Beyond it, a plain HTTP connection is answered 503 and closed, a TLS
    /// one is closed.
    pub max_connections: usize,
    /// `[proxy.cors]`: absent (the default), preflights are forwarded to the origin unchecked.
    pub cors: Option<CorsConfig>,
    /// The PEM files named by `tls_cert` and `tls_key`, read by [`Config::resolve`].
    #[serde(skip)]
    tls_files: Option<TlsFiles>,
    /// The PEM file named by `upstream_ca`, read by [`Config::resolve`].
    #[serde(skip)]
    upstream_ca_pem: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upstream: None,
            tls_cert: None,
            tls_key: None,
            prefixes: route::DEFAULT_PREFIXES.map(String::from).to_vec(),
            unmatched: Unmatched::Deny,
            bearer_auth: true,
            cookie_same_site: SameSite::Lax,
            connect_timeout: HumanDuration::from_secs(2),
            response_timeout: HumanDuration::from_secs(30),
            shutdown_timeout: HumanDuration::from_secs(30),
            upstream_ca: None,
            upstream_http2: false,
            header_read_timeout: HumanDuration::from_secs(10),
            idle_timeout: HumanDuration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_connections: 10_000,
            cors: None,
            tls_files: None,
            upstream_ca_pem: None,
        }
    }
}

impl ProxyConfig {
    /// Whether the listener speaks TLS (`tls_cert` and `tls_key` are set).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The contents of `tls_cert`, once [`Config::resolve`] has read it.
    pub fn tls_cert_pem(&self) -> Option<&str> {
        self.tls_files.as_ref().map(|f| f.cert_pem.as_str())
    }

    /// The contents of `tls_key`, once [`Config::resolve`] has read it.
    pub fn tls_key_pem(&self) -> Option<&str> {
        self.tls_files.as_ref().map(|f| f.key_pem.expose())
    }

    /// The contents of `upstream_ca`, once [`Config::resolve`] has read it.
    pub fn upstream_ca_pem(&self) -> Option<&str> {
        self.upstream_ca_pem.as_deref()
    }
}

/// The TLS listener's PEM files, as read at load time.
#[derive(Clone, PartialEq, Eq)]
struct TlsFiles {
    cert_pem: String,
    key_pem: Secret,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

/// `[proxy.cors]`: vidgate answers preflights itself and adds CORS headers to every response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// `allowed_origins`: each `scheme://host[:port]` exactly as browsers send it in `Origin`
    /// (lower case, no path, no default port), or `"*"` alone for any origin.
    pub allowed_origins: Vec<String>,
}

/// `proxy.cookie_same_site` (`"lax"` or `"none"`): the layer's own type, read from the file.
pub use crate::layer::SameSite;

/// `[admin]`: the admin API's listener and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `listen`: the admin API's address (default `127.0.0.1:9090`), never the proxy's.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `app_token`: the application token; when set, `{app}` in a prefix must equal it and
    /// HTTP Basic authentication uses it as the user name.
    pub app_token: Option<String>,
    /// `private_key`: the admin API's secret, written inline.
    pub private_key: Option<Secret>,
    /// `private_key_env`: the environment variable holding the secret instead.
    pub private_key_env: Option<String>,
    /// `max_body`: the largest request body the admin API reads, in bytes (default 1 MiB).
    #[serde(deserialize_with = "de_byte_count")]
    pub max_body: usize,
    /// The value of `private_key_env`, read by [`Config::resolve`].
    #[serde(skip)]
    resolved_private_key: Option<Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            app_token: None,
            private_key: None,
            private_key_env: None,
            max_body: 1024 * 1024,
            resolved_private_key: None,
        }
    }
}

impl AdminConfig {
    /// The admin secret: `private_key`, or the value of `private_key_env` once
    /// [`Config::resolve`] has read it. `None` when neither is configured (or not yet read);
    /// the server decides whether it can run without one.
    pub fn resolved_private_key(&self) -> Option<&str> {
        self.private_key
            .as_ref()
            .or(self.resolved_private_key.as_ref())
            .map(Secret::expose)
    }
}

/// `[store]`: the token store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `backend`: `"memory"` (default) or `"redis"` (not available in this build yet).
    pub backend: StoreBackend,
    /// `redis_url`: the Redis server (default `redis://127.0.0.1:6379`).
    pub redis_url: String,
    /// `key_prefix`: the prefix of every Redis key (default `vidgate:`).
    pub key_prefix: String,
    /// `sweep_interval`: how often expired entries are swept (default 1 s).
    pub sweep_interval: HumanDuration,
    /// `expired_retention`: how long expired tokens and ended sessions stay readable
    /// (default 24 h).
    pub expired_retention: HumanDuration,
    /// `snapshot_path`: memory backend: where to keep a snapshot for durability (default none).
    pub snapshot_path: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "vidgate:".to_owned(),
            sweep_interval: HumanDuration::from_secs(1),
            expired_retention: HumanDuration::from_secs(24 * 3600),
            snapshot_path: None,
        }
    }
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// `"memory"` (the default): single process, in memory.
    #[default]
    Memory,
    /// `"redis"`: shared by several instances. Refused by [`Config::validate`] for now.
    Redis,
}

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
    /// What [`Config::resolve`] read for `secret_env` and the PEM paths.
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
    /// [`Config::resolve`] has read it.
    pub fn resolved_secret(&self) -> Option<&[u8]> {
        self.secret
            .as_ref()
            .or(self.resolved.secret.as_ref())
            .map(|s| s.expose().as_bytes())
    }

    /// The verifying key's PEM text: `public_key_pem` when written inline, else the file it
    /// names once [`Config::resolve`] has read it.
    pub fn resolved_public_key_pem(&self) -> Option<&str> {
        match &self.public_key_pem {
            Some(value) if is_inline_pem(value) => Some(value),
            _ => self.resolved.public_key_pem.as_deref(),
        }
    }

    /// The signing key's PEM text: `private_key_pem` when written inline, else the file it
    /// names once [`Config::resolve`] has read it.
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
    /// The value of `encryption_key_env`, read by [`Config::resolve`].
    #[serde(skip)]
    resolved_encryption_key: Option<Secret>,
}

impl ZiggeoConfig {
    /// The encryption key: `encryption_key`, or the value of `encryption_key_env` once
    /// [`Config::resolve`] has read it.
    pub fn resolved_encryption_key(&self) -> Option<&str> {
        self.encryption_key
            .as_ref()
            .or(self.resolved_encryption_key.as_ref())
            .map(Secret::expose)
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `format`: `"text"` (default) or `"json"`.
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `"text"` (the default): human-readable lines.
    #[default]
    Text,
    /// `"json"`: one JSON object per line.
    Json,
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// A duration written as a string such as `"5s"`, `"250ms"`, `"24h"` or `"30d"`
/// (`humantime`'s syntax). A bare number is refused: its unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(std::time::Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<std::time::Duration> for HumanDuration {
    fn from(duration: std::time::Duration) -> Self {
        Self(duration)
    }
}

impl From<HumanDuration> for std::time::Duration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|_| format!("{s:?} is not a duration (write e.g. \"5s\" or \"250ms\")"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\" or \"250ms\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"5s\" or \"250ms\""
                )))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// A secret from the config: its `Debug` never shows it, so that a logged config leaks nothing.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `proxy.upstream`: an `http://` or `https://` origin with a host and no path, query or user
/// info, e.g. `http://127.0.0.1:9000` (a trailing `/` is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    https: bool,
    authority: Authority,
    /// `scheme://authority/`, built once.
    uri: Uri,
}

impl UpstreamUrl {
    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// The scheme as an [`http::uri::Scheme`], to build request URIs with.
    pub fn scheme_http(&self) -> Scheme {
        if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// Host and port as written, e.g. `127.0.0.1:9000`; the value of the forwarded `Host`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The host, e.g. `videos.example.com` or `[::1]`.
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// The port: the one written, else 443 for https and 80 for http.
    pub fn port(&self) -> u16 {
        // `from_str` refused ports that are not a u16.
        explicit_port(&self.authority)
            .ok()
            .flatten()
            .unwrap_or(if self.https { 443 } else { 80 })
    }

    /// Whether the origin is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The origin as a URI, `scheme://authority/`, e.g. for `proxy::UpstreamConfig::uri`.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority)
    }
}

impl FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const EXAMPLE: &str = "write e.g. \"http://127.0.0.1:9000\"";
        if s.contains('#') {
            return Err(format!("{s:?} must not have a fragment ({EXAMPLE})"));
        }
        let uri: Uri = s
            .parse()
            .map_err(|_| format!("{s:?} is not a URL ({EXAMPLE})"))?;
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            Some(_) => return Err(format!("{s:?} must start with http:// or https://")),
            None => return Err(format!("{s:?} has no scheme ({EXAMPLE})")),
        };
        let authority = match uri.authority() {
            Some(authority) if !authority.host().is_empty() => authority.clone(),
            _ => return Err(format!("{s:?} has no host ({EXAMPLE})")),
        };
        if authority.as_str().contains('@') {
            return Err(format!("{s:?} must not hold a user name or password"));
        }
        match explicit_port(&authority) {
            Err(()) => return Err(format!("{s:?} has an invalid port ({EXAMPLE})")),
            Ok(Some(0)) => return Err(format!("{s:?}: port 0 cannot be connected to")),
            Ok(_) => {}
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(format!(
                "{s:?} must not have a path: vidgate forwards each request's own path ({EXAMPLE})"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} must not have a query ({EXAMPLE})"));
        }
        let uri = Uri::builder()
            .scheme(if https { Scheme::HTTPS } else { Scheme::HTTP })
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| format!("{s:?} is not a URL ({EXAMPLE})"))?;
        Ok(Self {
            https,
            authority,
            uri,
        })
    }
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

fn de_socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(deserializer)?;
    s.parse().map_err(|_| {
        de::Error::custom(format!(
            "{s:?} is not a listen address (write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"
        ))
    })
}

fn de_unmatched<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Unmatched, D::Error> {
    /// `route::Unmatched` stays free of serde; this is its spelling in the file.
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Spelling {
        Deny,
        Pass,
    }
    Ok(match Spelling::deserialize(deserializer)? {
        Spelling::Deny => Unmatched::Deny,
        Spelling::Pass => Unmatched::Pass,
    })
}

fn de_byte_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = usize;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of bytes")
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::custom(format!("{n} is not a number of bytes")))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::custom(format!("{n} is too large")))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
            Err(E::custom(format!(
                "{s:?} is a string: write a number of bytes, e.g. 1048576"
            )))
        }
    }

    deserializer.deserialize_any(BytesVisitor)
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Parse and [validate](Self::validate) a configuration. Reads no file and no environment
    /// variable: keys that name one are checked for form only, and read by
    /// [`Config::resolve`]. Errors carry the line and the key, but no file name.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config = parse(text).map_err(|e| e.locate(text, None))?;
        config.validate().map_err(|e| e.locate(text, None))?;
        Ok(config)
    }

    /// Read, parse, validate and [resolve](Self::resolve) the configuration file at `path`:
    /// what `vidgate serve` and `vidgate check-config` do. Errors name the file, the line and
    /// the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            kind: ConfigErrorKind::Read,
            file: Some(path.to_owned()),
            line: None,
            key: None,
            message: format!("cannot read the config file: {e}"),
            source: Some(e),
        })?;
        let at = |e: ConfigError| e.locate(&text, Some(path));
        let mut config = parse(&text).map_err(at)?;
        config.validate().map_err(at)?;
        config.resolve().map_err(at)?;
        config.client_token_verifiers().map_err(at)?;
        config.tls_identity().map_err(at)?;
        config.origin_roots_if_pinned().map_err(at)?;
        Ok(config)
    }

    /// The listener's certificate and key (`proxy.tls_cert`, `proxy.tls_key`), parsed and
    /// checked to belong together, once [`Config::resolve`] has read them; `None` without TLS.
    /// [`Config::load`] builds it once, so that `check-config` refuses a bad pair.
    pub fn tls_identity(&self) -> Result<Option<Identity>, ConfigError> {
        let (Some(cert), Some(key)) = (self.proxy.tls_cert_pem(), self.proxy.tls_key_pem()) else {
            if self.proxy.tls_enabled() {
                return Err(invalid(
                    "proxy.tls_cert",
                    "was not read: call Config::resolve (or Config::load) first",
                ));
            }
            return Ok(None);
        };
        Identity::from_pem(cert, key).map(Some).map_err(|e| {
            let (name, path) = match &e {
                IdentityError::Cert(_) => ("proxy.tls_cert", &self.proxy.tls_cert),
                IdentityError::Key(_) => ("proxy.tls_key", &self.proxy.tls_key),
            };
            let path = path.as_deref().unwrap_or(Path::new("")).display();
            invalid(name, format!("{path}: {e}"))
        })
    }

    /// The roots of `proxy.upstream_ca`, once [`Config::resolve`] has read it; `None` when it
    /// is not set (an `https://` origin is then verified with [`OriginRoots::public`]).
    pub fn origin_roots_if_pinned(&self) -> Result<Option<OriginRoots>, ConfigError> {
        let Some(pem) = self.proxy.upstream_ca_pem() else {
            return Ok(None);
        };
        OriginRoots::from_pem(pem).map(Some).map_err(|problem| {
            let path = self.proxy.upstream_ca.as_deref().unwrap_or(Path::new(""));
            invalid(
                "proxy.upstream_ca",
                format!("{}: {problem}", path.display()),
            )
        })
    }

    /// Check everything that can be checked without reading a file or the environment, and
    /// return the first problem, in the order of the keys in SPEC 5. The error names the key;
    /// it carries a line only when it comes through [`Config::from_toml_str`] or
    /// [`Config::load`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.proxy.validate(self.admin.app_token.as_deref())?;
        self.admin.validate(&self.proxy)?;
        self.store.validate()?;
        self.client_tokens.validate()?;
        Ok(())
    }

    /// Read every environment variable and file the configuration names (`*_env` keys,
    /// `public_key_pem` and `private_key_pem` paths, `proxy.tls_cert` and `proxy.tls_key`) and
    /// keep their contents, available through the `resolved_*` accessors; a missing variable
    /// or an unreadable file is an error naming the key. [`Config::load`] calls it.
    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        if let (Some(cert), Some(key)) = (&self.proxy.tls_cert, &self.proxy.tls_key) {
            let cert_pem = read_pem_file("proxy.tls_cert", cert, "CERTIFICATE")?;
            let key_pem = read_pem_file("proxy.tls_key", key, "PRIVATE KEY")?;
            self.proxy.tls_files = Some(TlsFiles {
                cert_pem,
                key_pem: Secret(key_pem),
            });
        }
        if let Some(ca) = &self.proxy.upstream_ca {
            self.proxy.upstream_ca_pem =
                Some(read_pem_file("proxy.upstream_ca", ca, "CERTIFICATE")?);
        }
        if let Some(var) = &self.admin.private_key_env {
            self.admin.resolved_private_key = Some(read_env("admin.private_key_env", var)?);
        }
        for (i, key) in self.client_tokens.jwt_keys.iter_mut().enumerate() {
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
                key.resolved.private_key_pem = Some(Secret(read_pem_file(
                    &at("private_key_pem"),
                    Path::new(path),
                    "PRIVATE KEY",
                )?));
            }
        }
        if let Some(ziggeo) = &mut self.client_tokens.ziggeo {
            if let Some(var) = &ziggeo.encryption_key_env {
                ziggeo.resolved_encryption_key =
                    Some(read_env("client_tokens.ziggeo.encryption_key_env", var)?);
            }
        }
        Ok(())
    }

    /// The admin API's secret (see [`AdminConfig::resolved_private_key`]).
    pub fn admin_key(&self) -> Option<&str> {
        self.admin.resolved_private_key()
    }

    /// The route table of `proxy.prefixes`, `admin.app_token` and `proxy.unmatched`.
    pub fn routes(&self) -> Result<Routes, ConfigError> {
        self.proxy.routes(self.admin.app_token.as_deref())
    }

    /// The client-token verifiers of `[client_tokens]`, once [`Config::resolve`] has read their
    /// keys. [`Config::load`] builds them once, so that a key that does not parse is refused
    /// by `check-config` too.
    pub fn client_token_verifiers(&self) -> Result<ClientTokens, ConfigError> {
        ClientTokens::from_config(&self.client_tokens)
    }

    /// A [`MemoryStoreBuilder`] with `store.expired_retention`, `store.sweep_interval` and
    /// `client_tokens.counter_ttl` applied.
    pub fn memory_store_builder(&self) -> MemoryStoreBuilder {
        crate::store::MemoryStore::builder()
            .retention(self.store.expired_retention.get())
            .sweep_interval(self.store.sweep_interval.get())
            .counter_ttl(self.client_tokens.counter_ttl.get())
    }
}

/// Deserialize, keeping the path of the value at fault.
fn parse(text: &str) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (key, message) = describe_toml_error(&path, inner.message());
        ConfigError {
            kind: ConfigErrorKind::Parse,
            file: None,
            line: inner.span().map(|span| line_at(text, span.start)),
            key,
            message,
            source: None,
        }
    })
}

/// The key and a one-line message for a toml or serde error at `path`.
fn describe_toml_error(path: &str, message: &str) -> (Option<String>, String) {
    // serde_path_to_error writes "." for the root and "?" for segments it could not name.
    let path = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .collect::<Vec<_>>()
        .join(".");
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            // For an unknown key, the path already ends with it.
            path.clone()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let known = expected
                .trim_start_matches(", ")
                .trim_start_matches("expected one of ")
                .trim_start_matches("expected ")
                .replace('`', "");
            let message = if known.starts_with("there are no fields") || known.is_empty() {
                "unknown key".to_owned()
            } else {
                format!("unknown key (the keys here are: {known})")
            };
            return (Some(join(name)), message);
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((name, _)) = rest.split_once('`') {
            return (Some(join(name)), "is required".to_owned());
        }
    }
    let key = (!path.is_empty()).then_some(path.clone());
    // serde's words for TOML's arrays and tables.
    let message = one_line(message)
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    (key, message)
}

/// Error messages are one line; toml's syntax errors can span several.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_env(key: &str, var: &str) -> Result<Secret, ConfigError> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(ConfigError {
            kind: ConfigErrorKind::Resolve,
            ..invalid(key, format!("environment variable {var} is empty"))
        }),
        Ok(value) => Ok(Secret(value)),
        Err(std::env::VarError::NotPresent) => Err(ConfigError {
            kind: ConfigErrorKind::Resolve,
            ..invalid(key, format!("environment variable {var} is not set"))
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError {
            kind: ConfigErrorKind::Resolve,
            ..invalid(
                key,
                format!("environment variable {var} is not valid UTF-8"),
            )
        }),
    }
}

fn read_pem_file(key: &str, path: &Path, label: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        kind: ConfigErrorKind::Resolve,
        file: None,
        line: None,
        key: Some(key.to_owned()),
        message: format!("cannot read {}: {e}", path.display()),
        source: Some(e),
    })?;
    check_pem(&text, label).map_err(|problem| ConfigError {
        kind: ConfigErrorKind::Resolve,
        ..invalid(key, format!("{}: {problem}", path.display()))
    })?;
    Ok(text)
}

/// Whether a PEM-or-path value is the PEM text itself.
fn is_inline_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

/// Check that `text` looks like a PEM block whose label contains `label`; the parsing proper
/// is the job of the crate that uses the key.
fn check_pem(text: &str, label: &str) -> Result<(), String> {
    let Some(first) = text.trim_start().lines().next() else {
        return Err(format!("is empty, expected a PEM {label}"));
    };
    let found = first
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"));
    match found {
        Some(found) if found.contains(label) => match text.contains("-----END ") {
            true => Ok(()),
            false => Err(format!("holds a PEM {found} with no -----END line")),
        },
        Some(found) => Err(format!("holds a PEM {found}, expected a {label}")),
        None => Err(format!(
            "is not PEM text (expected -----BEGIN ...{label}-----)"
        )),
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        kind: ConfigErrorKind::Invalid,
        file: None,
        line: None,
        key: Some(key.to_owned()),
        message: message.into(),
        source: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

impl ProxyConfig {
    fn routes(&self, app_token: Option<&str>) -> Result<Routes, ConfigError> {
        Routes::new(&self.prefixes, app_token, self.unmatched)
            .map_err(|e| invalid("proxy.prefixes", e.to_string()))
    }

    fn validate(&self, app_token: Option<&str>) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "proxy.tls_cert",
                    "is set without proxy.tls_key: give both or neither",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "proxy.tls_key",
                    "is set without proxy.tls_cert: give both or neither",
                ))
            }
            _ => {}
        }
        for (key, path) in [
            ("proxy.tls_cert", &self.tls_cert),
            ("proxy.tls_key", &self.tls_key),
            ("proxy.upstream_ca", &self.upstream_ca),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(key, "must not be empty"));
            }
        }
        self.routes(app_token)?;
        for (key, duration) in [
            ("proxy.connect_timeout", self.connect_timeout),
            ("proxy.response_timeout", self.response_timeout),
            ("proxy.shutdown_timeout", self.shutdown_timeout),
            ("proxy.header_read_timeout", self.header_read_timeout),
            ("proxy.idle_timeout", self.idle_timeout),
        ] {
            nonzero(key, duration)?;
        }
        if self.upstream_ca.is_some() && !self.upstream.as_ref().is_some_and(UpstreamUrl::is_https)
        {
            return Err(invalid(
                "proxy.upstream_ca",
                "is set, but proxy.upstream is not an https:// origin",
            ));
        }
        in_range(
            "proxy.max_header_bytes",
            self.max_header_bytes,
            1024,
            1 << 20,
        )?;
        in_range("proxy.max_headers", self.max_headers, 8, 1000)?;
        in_range("proxy.max_connections", self.max_connections, 1, 1 << 20)?;
        if let Some(cors) = &self.cors {
            cors.validate()?;
        }
        Ok(())
    }
}

impl CorsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        const KEY: &str = "proxy.cors.allowed_origins";
        if self.allowed_origins.is_empty() {
            return Err(invalid(
                KEY,
                "is empty, which would refuse every cross-origin request; list origins, or \
                 remove [proxy.cors] to leave preflights to the origin",
            ));
        }
        let any = self.allowed_origins.iter().any(|o| o == "*");
        if any && self.allowed_origins.len() > 1 {
            return Err(invalid(KEY, "\"*\" allows every origin: list it alone"));
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            check_origin(origin).map_err(|problem| invalid(&format!("{KEY}[{i}]"), problem))?;
        }
        Ok(())
    }
}

/// The port written in `authority`, if any; `Err` when it is not a number from 0 to 65535
/// (`http` parses such authorities without complaint).
fn explicit_port(authority: &Authority) -> Result<Option<u16>, ()> {
    let text = authority.as_str();
    let after_host = text.rfind(']').map_or(text, |end| &text[end..]);
    match after_host.rsplit_once(':') {
        None => Ok(None),
        Some((_, port)) => port.parse().map(Some).map_err(|_| ()),
    }
}

/// An `Origin` header value as browsers send it: `scheme://host[:port]`, lower case, no
/// default port, nothing after; or `*`.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let form = "must be scheme://host[:port], e.g. \"https://example.com\"";
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!("{origin:?} {form}"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!("{origin:?} {form}, with no path"));
    }
    if origin.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{origin:?} must be in lower case, as browsers send it"
        ));
    }
    let authority: Authority = rest
        .parse()
        .map_err(|_| format!("{origin:?} has an invalid host or port"))?;
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = explicit_port(&authority).map_err(|()| format!("{origin:?} has an invalid port"))?;
    if port.is_some() && port == default_port {
        return Err(format!(
            "{origin:?}: browsers omit the default port, write {scheme}://{}",
            authority.host()
        ));
    }
    Ok(())
}

impl AdminConfig {
    fn validate(&self, proxy: &ProxyConfig) -> Result<(), ConfigError> {
        if self.listen == proxy.listen && self.listen.port() != 0 {
            return Err(invalid(
                "admin.listen",
                format!(
                    "{} is also proxy.listen: the admin API needs its own listener",
                    self.listen
                ),
            ));
        }
        if let Some(app) = &self.app_token {
            if app.is_empty() {
                return Err(invalid("admin.app_token", "must not be empty"));
            }
            if !app
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"/?#%\\;".contains(&b))
            {
                return Err(invalid(
                    "admin.app_token",
                    "must be visible ASCII without / ? # % \\ ; (it is matched as a path segment)",
                ));
            }
        }
        if self.private_key.is_some() && self.private_key_env.is_some() {
            return Err(invalid(
                "admin.private_key_env",
                "give admin.private_key or admin.private_key_env, not both",
            ));
        }
        if self.private_key.as_ref().is_some_and(|k| k.0.is_empty()) {
            return Err(invalid("admin.private_key", "must not be empty"));
        }
        env_name("admin.private_key_env", self.private_key_env.as_deref())?;
        if self.max_body == 0 {
            return Err(invalid("admin.max_body", "must be more than zero"));
        }
        Ok(())
    }
}

impl StoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == StoreBackend::Redis {
            return Err(invalid(
                "store.backend",
                "the redis backend is not available in this build yet (use \"memory\")",
            ));
        }
        const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !SCHEMES.iter().any(|s| self.redis_url.starts_with(s))
            || SCHEMES.contains(&self.redis_url.as_str())
        {
            return Err(invalid(
                "store.redis_url",
                format!(
                    "{:?} is not a Redis URL (write e.g. \"redis://127.0.0.1:6379\")",
                    self.redis_url
                ),
            ));
        }
        nonzero("store.sweep_interval", self.sweep_interval)?;
        if self
            .snapshot_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid("store.snapshot_path", "must not be empty"));
        }
        Ok(())
    }
}

impl ClientTokensConfig {
    fn validate(&self) -> Result<(), ConfigError> {
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
                (Some(secret), None) if secret.0.is_empty() => {
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
            (Some(key), None) if key.0.is_empty() => Err(invalid(
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

/// `value` within `min..=max`.
fn in_range(key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(invalid(
            key,
            format!("{value} is not between {min} and {max}"),
        ));
    }
    Ok(())
}

fn nonzero(key: &str, duration: HumanDuration) -> Result<(), ConfigError> {
    if duration.is_zero() {
        return Err(invalid(key, "must be more than zero"));
    }
    Ok(())
}

/// An environment variable's name, as far as one can be set from a shell.
fn env_name(key: &str, name: Option<&str>) -> Result<(), ConfigError> {
    match name {
        Some(name) if name.is_empty() || name.contains(['=', '\0']) => Err(invalid(
            key,
            format!("{name:?} is not an environment variable's name"),
        )),
        _ => Ok(()),
    }
}

/// A PEM-or-path value: inline PEM must look like one; a path must not be empty (the file is
/// read by [`Config::resolve`]).
fn pem_value(key: &str, value: &str, label: &str) -> Result<(), ConfigError> {
    if is_inline_pem(value) {
        check_pem(value, label).map_err(|problem| invalid(key, problem))
    } else if value.trim().is_empty() {
        Err(invalid(key, "must be PEM text or a file's path"))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A configuration that cannot be used. Its `Display` is one line a person can act on:
/// `file:line: key: problem`, each part present when known.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    kind: ConfigErrorKind,
    file: Option<PathBuf>,
    line: Option<usize>,
    key: Option<String>,
    message: String,
    source: Option<std::io::Error>,
}

/// What went wrong, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The config file itself could not be read.
    Read,
    /// Not TOML, or a value of the wrong type or form, or an unknown key.
    Parse,
    /// Well-formed, but refused by [`Config::validate`].
    Invalid,
    /// An environment variable or file the config names is missing or unusable.
    Resolve,
}

impl ConfigError {
    /// A value that is well-formed but unusable, found after parsing (e.g. a key file that does
    /// not hold a key of the configured algorithm).
    pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
        invalid(key, message)
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The config file, when the configuration was loaded from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line at fault, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key at fault, e.g. `proxy.connect_timeout` or `client_tokens.jwt_keys[1].kid`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The problem, without the file, line and key.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Fill in the file and, when the error did not come with one, the line of its key.
    fn locate(mut self, text: &str, file: Option<&Path>) -> Self {
        if self.line.is_none() {
            self.line = self.key.as_deref().and_then(|key| line_of(text, key));
        }
        if self.file.is_none() {
            self.file = file.map(Path::to_owned);
        }
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        match (&self.file, self.line) {
            (Some(file), Some(line)) => out += &format!("{}:{line}: ", file.display()),
            (Some(file), None) => out += &format!("{}: ", file.display()),
            (None, Some(line)) => out += &format!("line {line}: "),
            (None, None) => {}
        }
        if let Some(key) = &self.key {
            out += key;
            out += ": ";
        }
        out += &self.message;
        out
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based line where `key` (a path such as `proxy.listen`, `proxy.prefixes[2]` or
/// `client_tokens.jwt_keys[1].alg`) is set; failing that, the line of the deepest table on its
/// path (a missing key is reported where its table starts). `None` when neither is found.
///
/// A small scanner, not a TOML parser: it follows `[table]` and `[[array]]` headers, `key =`
/// lines (dotted keys too) and skips multi-line strings and arrays, which is what the
/// configuration files people write are made of.
fn line_of(source: &str, key: &str) -> Option<usize> {
    let mut target = split_key(key, '.');
    if let Some(last) = target.last_mut() {
        // An element of an array value is reported at the array's key.
        if let Some(open) = last.find('[') {
            last.truncate(open);
        }
    }
    let mut table: Vec<String> = Vec::new();
    let mut arrays: HashMap<Vec<String>, usize> = HashMap::new();
    let mut best: Option<(usize, usize)> = None; // (depth, line)
    let mut scanner = Scanner::default();
    for (i, raw) in source.lines().enumerate() {
        let line = i + 1;
        let inside_value = scanner.busy();
        scanner.feed(raw);
        if inside_value {
            continue;
        }
        let text = raw.trim();
        let path = if let Some(rest) = text.strip_prefix("[[") {
            let segments = split_key(rest.split("]]").next().unwrap_or(""), '.');
            let count = arrays.entry(segments.clone()).or_insert(0);
            let index = *count;
            *count += 1;
            table = segments;
            if let Some(last) = table.last_mut() {
                *last = format!("{last}[{index}]");
            }
            table.clone()
        } else if let Some(rest) = text.strip_prefix('[') {
            table = split_key(rest.split(']').next().unwrap_or(""), '.');
            table.clone()
        } else if let Some(key) = key_of_line(text) {
            let mut path = table.clone();
            path.extend(split_key(key, '.'));
            if path == target {
                return Some(line);
            }
            path
        } else {
            continue;
        };
        if path.len() <= target.len()
            && target.starts_with(&path)
            && best.is_none_or(|(depth, _)| path.len() > depth)
        {
            best = Some((path.len(), line));
        }
    }
    best.map(|(_, line)| line)
}

/// `key` of a `key = value` line, if the line is one.
fn key_of_line(line: &str) -> Option<&str> {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '=') => return Some(line[..i].trim()),
            (None, '#') => return None,
            _ => {}
        }
    }
    None
}

/// Split a dotted key at `sep` outside quotes, trimming and unquoting each part.
fn split_key(key: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, _) if c == sep => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Tracks whether the scan is inside a value that spans lines: a multi-line string or an
/// array or inline table not closed yet.
#[derive(Default)]
struct Scanner {
    string: Option<&'static str>,
    depth: usize,
}

impl Scanner {
    fn busy(&self) -> bool {
        self.string.is_some() || self.depth > 0
    }

    fn feed(&mut self, line: &str) {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if let Some(close) = self.string {
                if bytes[i..].starts_with(close.as_bytes()) {
                    self.string = None;
                    i += close.len();
                } else {
                    // Only basic strings have escapes; `\"""` does not close one.
                    i += if close == "\"\"\"" && bytes[i] == b'\\' {
                        2
                    } else {
                        1
                    };
                }
                continue;
            }
            match bytes[i] {
                b'#' => return,
                quote @ (b'"' | b'\'') => {
                    let triple = if quote == b'"' { "\"\"\"" } else { "'''" };
                    if bytes[i..].starts_with(triple.as_bytes()) {
                        self.string = Some(triple);
                        i += 3;
                        continue;
                    }
                    // A one-line string: stop on its closing quote.
                    i += 1;
                    while i < bytes.len() && bytes[i] != quote {
                        if quote == b'"' && bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const EXAMPLE: &str = include_str!("../config/vidgate.toml");

    /// The error `text` gives, which must be one.
    fn err(text: &str) -> ConfigError {
        match Config::from_toml_str(text) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    /// Assert an error's key, line and a piece of its message, and that its `Display` is the
    /// one line `line N: key: message`.
    #[track_caller]
    fn assert_err(e: &ConfigError, key: &str, line: usize, message_part: &str) {
        assert_eq!(e.key(), Some(key), "key of {e}");
        assert_eq!(e.line(), Some(line), "line of {e}");
        assert!(e.message().contains(message_part), "message of {e}");
        assert_eq!(
            e.to_string(),
            format!("line {line}: {key}: {}", e.message())
        );
        assert!(!e.to_string().contains('\n'), "{e}");
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("vidgate-config-test-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }

        /// The path as a TOML basic string's contents.
        fn toml(&self) -> String {
            self.0.display().to_string().replace('\\', "\\\\")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A real key pair (the test keys of `tests/keys/`): `Config::load` checks that a
    /// private key is its public key's pair.
    const ED25519_PUBLIC: &str = include_str!("../tests/keys/ed25519.pub.pem");
    const ED25519_PRIVATE: &str = include_str!("../tests/keys/ed25519.key.pem");

    #[test]
    fn an_empty_file_gives_every_default() {
        let c = Config::from_toml_str("").expect("empty config");
        assert_eq!(c, Config::default());

        assert_eq!(c.proxy.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.proxy.upstream, None);
        assert_eq!(c.proxy.tls_cert, None);
        assert_eq!(c.proxy.tls_key, None);
        assert!(!c.proxy.tls_enabled());
        assert_eq!(c.proxy.prefixes, ["/v1/applications/{app}", "/v1", ""]);
        assert_eq!(c.proxy.unmatched, Unmatched::Deny);
        assert!(c.proxy.bearer_auth);
        assert_eq!(c.proxy.cookie_same_site, SameSite::Lax);
        assert_eq!(c.proxy.connect_timeout.get(), Duration::from_secs(2));
        assert_eq!(c.proxy.response_timeout.get(), Duration::from_secs(30));
        assert_eq!(c.proxy.shutdown_timeout.get(), Duration::from_secs(30));
        assert_eq!(c.proxy.cors, None);

        assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.admin.app_token, None);
        assert_eq!(c.admin.private_key, None);
        assert_eq!(c.admin.private_key_env, None);
        assert_eq!(c.admin.max_body, 1_048_576);
        assert_eq!(c.admin_key(), None);

        assert_eq!(c.store.backend, StoreBackend::Memory);
        assert_eq!(c.store.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(c.store.key_prefix, "vidgate:");
        assert_eq!(c.store.sweep_interval.get(), Duration::from_secs(1));
        assert_eq!(c.store.expired_retention.get(), Duration::from_secs(86_400));
        assert_eq!(c.store.snapshot_path, None);

        assert_eq!(c.client_tokens.leeway.get(), Duration::from_secs(5));
        assert_eq!(
            c.client_tokens.counter_ttl.get(),
            Duration::from_secs(30 * 86_400)
        );
        assert!(c.client_tokens.jwt_keys.is_empty());
        assert_eq!(c.client_tokens.ziggeo, None);

        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn empty_sections_give_the_defaults_too() {
        let c = Config::from_toml_str("[proxy]\n[admin]\n[store]\n[client_tokens]\n[log]\n")
            .expect("empty sections");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn every_key_is_parsed() {
        let text = format!(
            r#"
[proxy]
listen = "0.0.0.0:8443"
upstream = "https://videos.example.com:8443/"
tls_cert = "certs/server.pem"
tls_key = "certs/server.key"
prefixes = ["/api/{{app}}", ""]
unmatched = "pass"
bearer_auth = false
cookie_same_site = "none"
connect_timeout = "250ms"
response_timeout = "1m"
shutdown_timeout = "5s"

[proxy.cors]
allowed_origins = ["https://example.com", "http://localhost:3000"]

[admin]
listen = "[::1]:9191"
app_token = "demo-app"
private_key = "change-me"
max_body = 65536

[store]
backend = "memory"
redis_url = "rediss://cache.internal:6380/2"
key_prefix = "vg:"
sweep_interval = "500ms"
expired_retention = "2h"
snapshot_path = "data/vidgate.snapshot"

[client_tokens]
leeway = "0s"
counter_ttl = "7d"

[[client_tokens.jwt_keys]]
kid = "k1"
alg = "HS256"
secret = "s3cret"

[[client_tokens.jwt_keys]]
kid = "k2"
alg = "HS512"
secret_env = "VIDGATE_K2"

[[client_tokens.jwt_keys]]
kid = "k3"
alg = "EdDSA"
public_key_pem = """
{ED25519_PUBLIC}"""
private_key_pem = "keys/k3.pem"

[client_tokens.ziggeo]
application_token = "demo-app"
encryption_key = "zkey"

[log]
format = "json"
"#
        );
        let c = Config::from_toml_str(&text).expect("full config");

        let p = &c.proxy;
        assert_eq!(p.listen, "0.0.0.0:8443".parse().unwrap());
        let up = p.upstream.as_ref().expect("upstream");
        assert_eq!(up.scheme(), "https");
        assert!(up.is_https());
        assert_eq!(up.scheme_http(), Scheme::HTTPS);
        assert_eq!(up.authority().as_str(), "videos.example.com:8443");
        assert_eq!(up.host(), "videos.example.com");
        assert_eq!(up.port(), 8443);
        assert_eq!(up.to_string(), "https://videos.example.com:8443");
        assert_eq!(up.uri(), "https://videos.example.com:8443/");
        assert_eq!(p.tls_cert.as_deref(), Some(Path::new("certs/server.pem")));
        assert_eq!(p.tls_key.as_deref(), Some(Path::new("certs/server.key")));
        assert!(p.tls_enabled());
        assert_eq!(p.tls_cert_pem(), None, "not read without resolve");
        assert_eq!(p.prefixes, ["/api/{app}", ""]);
        assert_eq!(p.unmatched, Unmatched::Pass);
        assert!(!p.bearer_auth);
        assert_eq!(p.cookie_same_site, SameSite::None);
        assert_eq!(p.connect_timeout.get(), Duration::from_millis(250));
        assert_eq!(p.response_timeout.get(), Duration::from_secs(60));
        assert_eq!(p.shutdown_timeout.get(), Duration::from_secs(5));
        assert_eq!(
            p.cors.as_ref().expect("cors").allowed_origins,
            ["https://example.com", "http://localhost:3000"]
        );

        let a = &c.admin;
        assert_eq!(a.listen, "[::1]:9191".parse().unwrap());
        assert_eq!(a.app_token.as_deref(), Some("demo-app"));
        assert_eq!(a.private_key, Some(Secret::new("change-me")));
        assert_eq!(a.private_key_env, None);
        assert_eq!(a.max_body, 65_536);
        assert_eq!(c.admin_key(), Some("change-me"));

        let s = &c.store;
        assert_eq!(s.backend, StoreBackend::Memory);
        assert_eq!(s.redis_url, "rediss://cache.internal:6380/2");
        assert_eq!(s.key_prefix, "vg:");
        assert_eq!(s.sweep_interval.get(), Duration::from_millis(500));
        assert_eq!(s.expired_retention.get(), Duration::from_secs(7200));
        assert_eq!(
            s.snapshot_path.as_deref(),
            Some(Path::new("data/vidgate.snapshot"))
        );

        let t = &c.client_tokens;
        assert_eq!(t.leeway.get(), Duration::ZERO);
        assert_eq!(t.counter_ttl.get(), Duration::from_secs(7 * 86_400));
        assert_eq!(t.jwt_keys.len(), 3);
        let k1 = &t.jwt_keys[0];
        assert_eq!((k1.kid.as_str(), k1.alg), ("k1", JwtAlg::Hs256));
        assert_eq!(k1.resolved_secret(), Some(&b"s3cret"[..]));
        assert_eq!(k1.resolved_public_key_pem(), None);
        let k2 = &t.jwt_keys[1];
        assert_eq!((k2.kid.as_str(), k2.alg), ("k2", JwtAlg::Hs512));
        assert_eq!(k2.secret_env.as_deref(), Some("VIDGATE_K2"));
        assert_eq!(k2.resolved_secret(), None, "env not read without resolve");
        let k3 = &t.jwt_keys[2];
        assert_eq!((k3.kid.as_str(), k3.alg), ("k3", JwtAlg::EdDsa));
        assert_eq!(k3.resolved_public_key_pem(), Some(ED25519_PUBLIC));
        assert_eq!(k3.private_key_pem, Some(Secret::new("keys/k3.pem")));
        assert_eq!(k3.resolved_private_key_pem(), None, "a path, not read yet");
        let z = t.ziggeo.as_ref().expect("ziggeo");
        assert_eq!(z.application_token, "demo-app");
        assert_eq!(z.resolved_encryption_key(), Some("zkey"));

        assert_eq!(c.log.format, LogFormat::Json);

        let routes = c.routes().expect("routes");
        assert_eq!(
            routes.route(&http::Method::GET, "/api/demo-app/videos/v1"),
            Ok(route::Route::Video {
                action: crate::token::Action::Read,
                video: Some("v1".to_owned()),
                whole_video: true,
            })
        );
        assert_eq!(
            routes.route(&http::Method::GET, "/api/other-app/videos/v1/x"),
            Err(route::RouteError::NoRoute),
            "{{app}} matches admin.app_token only"
        );
    }

    #[test]
    fn the_example_file_is_valid_and_says_the_defaults() {
        let c = Config::from_toml_str(EXAMPLE).expect("config/vidgate.toml");
        assert_eq!(c, Config::default());
        // It is what `vidgate serve` loads: no env var or file may be needed.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vidgate.toml");
        let loaded = Config::load(&path).expect("load config/vidgate.toml");
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn the_example_file_shows_every_key() {
        let keys = [
            "listen",
            "upstream",
            "tls_cert",
            "tls_key",
            "prefixes",
            "unmatched",
            "bearer_auth",
            "cookie_same_site",
            "connect_timeout",
            "response_timeout",
            "shutdown_timeout",
            "[proxy.cors]",
            "allowed_origins",
            "app_token",
            "private_key",
            "private_key_env",
            "max_body",
            "backend",
            "redis_url",
            "key_prefix",
            "sweep_interval",
            "expired_retention",
            "snapshot_path",
            "leeway",
            "counter_ttl",
            "[[client_tokens.jwt_keys]]",
            "kid",
            "alg",
            "secret_env",
            "public_key_pem",
            "private_key_pem",
            "[client_tokens.ziggeo]",
            "application_token",
            "encryption_key_env",
            "format",
        ];
        for key in keys {
            let shown = EXAMPLE.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l == key
            });
            assert!(shown, "{key} is not shown in config/vidgate.toml");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = err("bogus = 1\n");
        assert_err(&e, "bogus", 1, "unknown key");
        assert!(
            e.message()
                .contains("proxy, admin, store, client_tokens, log"),
            "{e}"
        );
        assert_eq!(e.kind(), ConfigErrorKind::Parse);

        let e = err("[proxy]\nlisten = \"127.0.0.1:1\"\n\nconect_timeout = \"2s\"\n");
        assert_err(&e, "proxy.conect_timeout", 4, "unknown key");
        assert!(e.message().contains("connect_timeout"), "{e}");

        let e = err("[proxy.cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n");
        assert_err(&e, "proxy.cors.allow_credentials", 3, "unknown key");

        let e = err(
            "[client_tokens]\n\n[[client_tokens.jwt_keys]]\nkid = \"a\"\nalg = \"HS256\"\n\
             secret = \"x\"\n\n[[client_tokens.jwt_keys]]\nkid = \"b\"\nalg = \"HS256\"\n\
             secrett = \"y\"\n",
        );
        assert_err(&e, "client_tokens.jwt_keys[1].secrett", 11, "unknown key");

        let e = err("[logging]\nformat = \"json\"\n");
        assert_err(&e, "logging", 1, "unknown key");
    }

    #[test]
    fn durations_need_a_unit() {
        let e = err("[proxy]\n\nconnect_timeout = \"5 parsecs\"\n");
        assert_err(
            &e,
            "proxy.connect_timeout",
            3,
            "\"5 parsecs\" is not a duration (write e.g. \"5s\" or \"250ms\")",
        );

        let e = err("[store]\nexpired_retention = 3600\n");
        assert_err(
            &e,
            "store.expired_retention",
            2,
            "write the duration as a string",
        );
        assert!(e.message().contains("\"3600s\""), "{e}");

        let e = err("[client_tokens]\nleeway = 1.5\n");
        assert_err(&e, "client_tokens.leeway", 2, "has no unit");

        let c = Config::from_toml_str("[store]\nsweep_interval = \"1m 30s\"\n").expect("1m 30s");
        assert_eq!(c.store.sweep_interval.get(), Duration::from_secs(90));
        assert_eq!(c.store.sweep_interval.to_string(), "1m 30s");
    }

    #[test]
    fn zero_is_refused_where_it_would_break_things() {
        for (section, key) in [
            ("proxy", "connect_timeout"),
            ("proxy", "response_timeout"),
            ("proxy", "shutdown_timeout"),
            ("store", "sweep_interval"),
            ("client_tokens", "counter_ttl"),
        ] {
            let e = err(&format!("# zero\n[{section}]\n{key} = \"0s\"\n"));
            assert_err(&e, &format!("{section}.{key}"), 3, "must be more than zero");
            assert_eq!(e.kind(), ConfigErrorKind::Invalid);
        }
        let c = Config::from_toml_str(
            "[store]\nexpired_retention = \"0s\"\n[client_tokens]\nleeway = \"0ms\"\n",
        )
        .expect("zero retention and leeway are allowed");
        assert!(c.store.expired_retention.is_zero());
        assert!(c.client_tokens.leeway.is_zero());
    }

    #[test]
    fn listen_addresses_must_be_socket_addresses() {
        let e = err("[proxy]\nlisten = \"localhost:8080\"\n");
        assert_err(
            &e,
            "proxy.listen",
            2,
            "\"localhost:8080\" is not a listen address",
        );

        let e = err("[admin]\nlisten = \"127.0.0.1\"\n");
        assert_err(&e, "admin.listen", 2, "write e.g. \"127.0.0.1:8080\"");

        let e = err("[admin]\nlisten = 9090\n");
        assert_err(&e, "admin.listen", 2, "invalid type");

        let e = err("[proxy]\nlisten = \"127.0.0.1:7000\"\n[admin]\nlisten = \"127.0.0.1:7000\"\n");
        assert_err(&e, "admin.listen", 4, "needs its own listener");

        let c = Config::from_toml_str(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
        )
        .expect("two ephemeral ports");
        assert_eq!(c.proxy.listen.port(), 0);
    }

    #[test]
    fn upstreams_are_origins_only() {
        let cases = [
            (
                "ftp://videos.example.com",
                "must start with http:// or https://",
            ),
            ("http://127.0.0.1:9000/videos", "must not have a path"),
            ("http://127.0.0.1:9000/?a=b", "must not have a query"),
            ("http://user:pw@127.0.0.1:9000", "user name or password"),
            ("/just/a/path", "has no scheme"),
            ("127.0.0.1:9000", "has no scheme"),
            ("http://", "is not a URL"),
            ("http://:9000", "has no host"),
            ("http://host:99999", "invalid port"),
            ("http://host:0", "port 0"),
            ("http://host#top", "fragment"),
            ("not a url", "is not a URL"),
        ];
        for (value, problem) in cases {
            let e = err(&format!("\n[proxy]\nupstream = \"{value}\"\n"));
            assert_err(&e, "proxy.upstream", 3, problem);
            assert!(e.message().contains(value), "{e}");
        }

        for (value, https, authority, port) in [
            ("http://127.0.0.1:9000", false, "127.0.0.1:9000", 9000),
            ("http://127.0.0.1:9000/", false, "127.0.0.1:9000", 9000),
            (
                "HTTPS://Videos.Example.com",
                true,
                "Videos.Example.com",
                443,
            ),
            ("http://[::1]", false, "[::1]", 80),
        ] {
            let up: UpstreamUrl = value.parse().expect(value);
            assert_eq!(up.is_https(), https, "{value}");
            assert_eq!(up.authority().as_str(), authority, "{value}");
            assert_eq!(up.port(), port, "{value}");
            assert_eq!(up.uri().path(), "/", "{value}");
            assert_eq!(up.uri().authority(), Some(up.authority()), "{value}");
        }
    }

    #[test]
    fn tls_needs_both_files() {
        let e = err("[proxy]\ntls_cert = \"certs/server.pem\"\n");
        assert_err(&e, "proxy.tls_cert", 2, "without proxy.tls_key");

        let e = err("[proxy]\nlisten = \"127.0.0.1:8443\"\ntls_key = \"certs/server.key\"\n");
        assert_err(&e, "proxy.tls_key", 3, "without proxy.tls_cert");
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_route_table_s_reason() {
        let e = err("[proxy]\nprefixes = [\n  \"/v1\",\n  \"/api/\",\n]\n");
        assert_err(
            &e,
            "proxy.prefixes",
            2,
            "route prefix \"/api/\" must not end with '/'",
        );

        let e = err("[proxy]\nprefixes = \"/v1\"\n");
        assert_err(&e, "proxy.prefixes", 2, "expected an array");

        let e = err("[proxy]\nprefixes = []\n");
        assert_err(&e, "proxy.prefixes", 2, "no route prefix is configured");

        let e = err("[proxy]\nprefixes = [\"/x/{application}\"]\n");
        assert_err(&e, "proxy.prefixes", 2, "placeholder");
    }

    #[test]
    fn unmatched_same_site_backend_and_log_format_take_their_words_only() {
        let e = err("[proxy]\nunmatched = \"allow\"\n");
        assert_err(
            &e,
            "proxy.unmatched",
            2,
            "unknown variant `allow`, expected `deny` or `pass`",
        );

        let e = err("[proxy]\ncookie_same_site = \"strict\"\n");
        assert_err(&e, "proxy.cookie_same_site", 2, "unknown variant `strict`");

        let e = err("[log]\nformat = \"yaml\"\n");
        assert_err(&e, "log.format", 2, "unknown variant `yaml`");

        let e = err("[proxy]\nbearer_auth = \"yes\"\n");
        assert_err(&e, "proxy.bearer_auth", 2, "invalid type");

        assert_eq!(SameSite::Lax.as_str(), "Lax");
        assert_eq!(SameSite::None.as_str(), "None");
    }

    #[test]
    fn the_redis_backend_is_refused_for_now() {
        let e = err("[store]\nkey_prefix = \"x:\"\nbackend = \"redis\"\n");
        assert_err(
            &e,
            "store.backend",
            3,
            "the redis backend is not available in this build yet",
        );

        let e = err("[store]\nredis_url = \"http://127.0.0.1:6379\"\n");
        assert_err(&e, "store.redis_url", 2, "is not a Redis URL");
    }

    #[test]
    fn admin_keys() {
        let e = err("[admin]\nprivate_key = \"a\"\nprivate_key_env = \"B\"\n");
        assert_err(&e, "admin.private_key_env", 3, "not both");

        let e = err("[admin]\nprivate_key = \"\"\n");
        assert_err(&e, "admin.private_key", 2, "must not be empty");

        let e = err("[admin]\napp_token = \"a/b\"\n");
        assert_err(&e, "admin.app_token", 2, "path segment");

        let e = err("[admin]\nmax_body = 0\n");
        assert_err(&e, "admin.max_body", 2, "more than zero");

        let e = err("[admin]\nmax_body = \"1MiB\"\n");
        assert_err(&e, "admin.max_body", 2, "write a number of bytes");

        let e = err("[admin]\nmax_body = -1\n");
        assert_err(&e, "admin.max_body", 2, "-1 is not a number of bytes");

        let c = Config::from_toml_str("[admin]\nprivate_key_env = \"SOME_VAR\"\n").expect("env");
        assert_eq!(c.admin_key(), None, "from_toml_str reads no environment");
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        let ok = Config::from_toml_str(
            "[proxy.cors]\nallowed_origins = [\"https://example.com\", \"http://localhost:3000\", \
             \"capacitor://localhost\", \"http://[::1]:8000\"]\n",
        )
        .expect("origins");
        assert_eq!(ok.proxy.cors.expect("cors").allowed_origins.len(), 4);
        let any = Config::from_toml_str("[proxy.cors]\nallowed_origins = [\"*\"]\n").expect("*");
        assert_eq!(any.proxy.cors.expect("cors").allowed_origins, ["*"]);

        for (value, problem) in [
            ("https://example.com/", "with no path"),
            ("https://example.com/app", "with no path"),
            ("example.com", "must be scheme://host[:port]"),
            ("https://Example.com", "lower case"),
            ("https://example.com:443", "browsers omit the default port"),
            ("http://example.com:80", "browsers omit the default port"),
            ("https://example.com:99999", "invalid port"),
            ("https://exa mple.com", "invalid host or port"),
        ] {
            let e = err(&format!(
                "[proxy.cors]\nallowed_origins = [\n  \"https://ok.example\",\n  \"{value}\",\n]\n"
            ));
            assert_err(&e, "proxy.cors.allowed_origins[1]", 2, problem);
        }

        let e = err("[proxy.cors]\nallowed_origins = [\"*\", \"https://a.example\"]\n");
        assert_err(&e, "proxy.cors.allowed_origins", 2, "list it alone");

        let e = err("[proxy]\n[proxy.cors]\n");
        assert_err(&e, "proxy.cors.allowed_origins", 2, "is empty");
    }

    fn jwt(keys: &str) -> String {
        format!("[client_tokens]\nleeway = \"5s\"\n{keys}")
    }

    #[test]
    fn jwt_keys_are_checked() {
        // Lines: 1 [client_tokens], 2 leeway, 3 header, 4 kid, 5 alg, 6 third key...
        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"none\"\n",
        ));
        assert_err(
            &e,
            "client_tokens.jwt_keys[0].alg",
            5,
            "unknown variant `none`",
        );
        assert!(
            e.message().contains("`HS256`") && e.message().contains("`RS256`"),
            "{e}"
        );

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\n",
        ));
        assert_err(
            &e,
            "client_tokens.jwt_keys[0].secret",
            3,
            "an HS256 key needs secret or secret_env",
        );

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS384\"\nsecret = \"a\"\nsecret_env = \"B\"\n",
        ));
        assert_err(&e, "client_tokens.jwt_keys[0].secret_env", 7, "not both");

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nalg = \"HS256\"\nsecret = \"a\"\n",
        ));
        assert_err(&e, "client_tokens.jwt_keys[0].kid", 3, "is required");

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"\"\nalg = \"HS256\"\nsecret = \"a\"\n",
        ));
        assert_err(&e, "client_tokens.jwt_keys[0].kid", 4, "must not be empty");

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"a\"\n\
             [[client_tokens.jwt_keys]]\nkid = \"k2\"\nalg = \"HS256\"\nsecret = \"b\"\n\
             [[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS512\"\nsecret = \"c\"\n",
        ));
        assert_err(
            &e,
            "client_tokens.jwt_keys[2].kid",
            12,
            "\"k1\" is already the kid of client_tokens.jwt_keys[0]",
        );

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"ES256\"\n",
        ));
        assert_err(
            &e,
            "client_tokens.jwt_keys[0].public_key_pem",
            3,
            "an ES256 key needs public_key_pem",
        );

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"RS256\"\nsecret = \"a\"\npublic_key_pem = \"k.pem\"\n",
        ));
        assert_err(&e, "client_tokens.jwt_keys[0].secret", 6, "is a key pair");

        let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"a\"\npublic_key_pem = \"k.pem\"\n",
        ));
        assert_err(
            &e,
            "client_tokens.jwt_keys[0].public_key_pem",
            7,
            "is a shared secret",
        );

        let e = err(&jwt(&format!(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"EdDSA\"\npublic_key_pem = '''\n{ED25519_PRIVATE}'''\n"
        )));
        assert_err(
            &e,
            "client_tokens.jwt_keys[0].public_key_pem",
            6,
            "holds a PEM PRIVATE KEY, expected a PUBLIC KEY",
        );
    }

    #[test]
    fn ziggeo_needs_a_token_and_a_key() {
        let e = err("[client_tokens.ziggeo]\napplication_token = \"app\"\n");
        assert_err(&e, "client_tokens.ziggeo.encryption_key", 1, "is required");

        let e = err("[client_tokens.ziggeo]\nencryption_key = \"k\"\n");
        assert_err(
            &e,
            "client_tokens.ziggeo.application_token",
            1,
            "is required",
        );

        let e = err("[client_tokens.ziggeo]\napplication_token = \"\"\nencryption_key = \"k\"\n");
        assert_err(
            &e,
            "client_tokens.ziggeo.application_token",
            2,
            "must not be empty",
        );

        let e = err(
            "[client_tokens.ziggeo]\napplication_token = \"a\"\nencryption_key = \"k\"\nencryption_key_env = \"K\"\n",
        );
        assert_err(&e, "client_tokens.ziggeo.encryption_key_env", 4, "not both");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = err("[proxy]\nlisten = \"127.0.0.1:8080\"\nbearer_auth = \n");
        assert_eq!(e.line(), Some(3), "{e}");
        assert_eq!(e.kind(), ConfigErrorKind::Parse);
        assert!(e.to_string().starts_with("line 3: "), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");

        let e = err("[proxy]\n[proxy]\n");
        assert_eq!(e.line(), Some(2), "{e}");
    }

    #[test]
    fn load_names_the_file_and_resolves_env_vars() {
        // PATH is set wherever tests run; reading it needs no `set_var`.
        let path = std::env::var("PATH").expect("PATH is set");
        let file = TempFile::new(
            "env.toml",
            "[admin]\nprivate_key_env = \"PATH\"\n\n[[client_tokens.jwt_keys]]\nkid = \"k\"\n\
             alg = \"HS256\"\nsecret_env = \"PATH\"\n[client_tokens.ziggeo]\n\
             application_token = \"a\"\nencryption_key_env = \"PATH\"\n",
        );
        let c = Config::load(&file.0).expect("load");
        assert_eq!(c.admin_key(), Some(path.as_str()));
        assert_eq!(
            c.client_tokens.jwt_keys[0].resolved_secret(),
            Some(path.as_bytes())
        );
        assert_eq!(
            c.client_tokens
                .ziggeo
                .as_ref()
                .and_then(|z| z.resolved_encryption_key()),
            Some(path.as_str())
        );
    }

    #[test]
    fn a_missing_env_var_is_an_error_naming_the_key_and_line() {
        let var = "VIDGATE_TEST_SURELY_UNSET_9d1c7e_PRIVATE_KEY";
        assert!(std::env::var_os(var).is_none());
        let file = TempFile::new(
            "missing-env.toml",
            &format!("[proxy]\n\n[admin]\nprivate_key_env = \"{var}\"\n"),
        );
        let e = Config::load(&file.0).expect_err("unset env var");
        assert_eq!(e.kind(), ConfigErrorKind::Resolve);
        assert_eq!(e.key(), Some("admin.private_key_env"));
        assert_eq!(e.line(), Some(4));
        assert_eq!(e.file(), Some(file.0.as_path()));
        assert_eq!(
            e.to_string(),
            format!(
                "{}:4: admin.private_key_env: environment variable {var} is not set",
                file.0.display()
            )
        );
    }

    #[test]
    fn pem_files_are_read_at_load_time() {
        let public = TempFile::new("k.pub.pem", ED25519_PUBLIC);
        let private = TempFile::new("k.pem", ED25519_PRIVATE);
        let file = TempFile::new(
            "pem.toml",
            &format!(
                "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"EdDSA\"\npublic_key_pem = \"{}\"\n\
                 private_key_pem = \"{}\"\n",
                public.toml(),
                private.toml()
            ),
        );
        let c = Config::load(&file.0).expect("load");
        let key = &c.client_tokens.jwt_keys[0];
        assert_eq!(key.resolved_public_key_pem(), Some(ED25519_PUBLIC));
        assert_eq!(key.resolved_private_key_pem(), Some(ED25519_PRIVATE));
    }

    #[test]
    fn a_pem_path_that_does_not_exist_is_an_error_naming_the_key_and_line() {
        let missing = std::env::temp_dir().join("vidgate-config-test-surely-missing.pem");
        let file = TempFile::new(
            "missing-pem.toml",
            &format!(
                "[client_tokens]\n\n[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"RS256\"\n\
                 public_key_pem = \"{}\"\n",
                missing.display().to_string().replace('\\', "\\\\")
            ),
        );
        let e = Config::load(&file.0).expect_err("missing PEM file");
        assert_eq!(e.kind(), ConfigErrorKind::Resolve);
        assert_eq!(e.key(), Some("client_tokens.jwt_keys[0].public_key_pem"));
        assert_eq!(e.line(), Some(6));
        assert!(
            e.to_string().starts_with(&format!(
                "{}:6: client_tokens.jwt_keys[0].public_key_pem: cannot read {}: ",
                file.0.display(),
                missing.display()
            )),
            "{e}"
        );
        assert!(
            std::error::Error::source(&e).is_some(),
            "the io error is kept"
        );

        // A file that is not the PEM expected is refused too.
        let wrong = TempFile::new("wrong.pem", "just text\n");
        let file = TempFile::new(
            "wrong-pem.toml",
            &format!(
                "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"RS256\"\npublic_key_pem = \"{}\"\n",
                wrong.toml()
            ),
        );
        let e = Config::load(&file.0).expect_err("not PEM");
        assert_eq!(e.key(), Some("client_tokens.jwt_keys[0].public_key_pem"));
        assert_eq!(e.line(), Some(4));
        assert!(
            e.message()
                .ends_with("is not PEM text (expected -----BEGIN ...PUBLIC KEY-----)"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_are_read_and_checked_at_load_time() {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = pair.cert.pem();
        let key_pem = pair.signing_key.serialize_pem();
        let cert = TempFile::new("server.pem", &cert_pem);
        let key = TempFile::new("server.key", &key_pem);
        let foreign_key = TempFile::new("other.key", &other.signing_key.serialize_pem());
        let tls_toml = |cert: &TempFile, key: &TempFile| {
            format!(
                "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
                cert.toml(),
                key.toml()
            )
        };
        let file = TempFile::new("tls.toml", &tls_toml(&cert, &key));
        let c = Config::load(&file.0).expect("a matching pair loads");
        assert_eq!(c.proxy.tls_cert_pem(), Some(cert_pem.as_str()));
        assert_eq!(c.proxy.tls_key_pem(), Some(key_pem.as_str()));
        assert!(c.tls_identity().unwrap().is_some());
        let secret_line = key_pem.lines().nth(1).unwrap();
        assert!(
            !format!("{c:?}").contains(secret_line),
            "the key is redacted in Debug"
        );

        // A key that is not the certificate's: refused at load, naming tls_key and its line.
        let file = TempFile::new("tls-foreign.toml", &tls_toml(&cert, &foreign_key));
        let e = Config::load(&file.0).expect_err("a foreign key");
        assert_eq!((e.key(), e.line()), (Some("proxy.tls_key"), Some(3)), "{e}");
        assert!(e.message().contains("not the private key"), "{e}");

        // A certificate whose base64 is not a certificate.
        let broken = TempFile::new(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        );
        let file = TempFile::new("tls-broken.toml", &tls_toml(&broken, &key));
        let e = Config::load(&file.0).expect_err("a broken certificate");
        assert_eq!(
            (e.key(), e.line()),
            (Some("proxy.tls_cert"), Some(2)),
            "{e}"
        );

        // Swapped files: the certificate is not a private key.
        let file = TempFile::new(
            "tls-swapped.toml",
            &format!(
                "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
                cert.toml(),
                cert.toml()
            ),
        );
        let e = Config::load(&file.0).expect_err("swapped");
        assert_eq!(e.key(), Some("proxy.tls_key"));
        assert_eq!(e.line(), Some(3));
        assert!(
            e.message()
                .ends_with("holds a PEM CERTIFICATE, expected a PRIVATE KEY"),
            "{e}"
        );

        let missing = TempFile::new(
            "tls-missing.toml",
            "[proxy]\ntls_cert = \"/surely/not/here.pem\"\ntls_key = \"/surely/not/here.key\"\n",
        );
        let e = Config::load(&missing.0).expect_err("missing");
        assert_eq!(e.key(), Some("proxy.tls_cert"));
        assert_eq!(e.line(), Some(2));
    }

    #[test]
    fn connection_limits_have_defaults_and_refuse_values_that_cannot_work() {
        let p = Config::from_toml_str("").unwrap().proxy;
        assert_eq!(p.header_read_timeout.get(), Duration::from_secs(10));
        assert_eq!(p.idle_timeout.get(), Duration::from_secs(60));
        assert_eq!(
            (p.max_header_bytes, p.max_headers, p.max_connections),
            (65536, 100, 10_000)
        );
        assert!(!p.upstream_http2);
        assert_eq!(p.upstream_ca, None);
        let p = Config::from_toml_str(
            "[proxy]\nheader_read_timeout = \"2s\"\nidle_timeout = \"5m\"\nmax_header_bytes = 8192\n\
             max_headers = 50\nmax_connections = 3\nupstream_http2 = true\n",
        )
        .unwrap()
        .proxy;
        assert_eq!(p.header_read_timeout.get(), Duration::from_secs(2));
        assert_eq!(p.idle_timeout.get(), Duration::from_secs(300));
        assert_eq!(
            (p.max_header_bytes, p.max_headers, p.max_connections),
            (8192, 50, 3)
        );
        assert!(p.upstream_http2);
        for (line, key, message) in [
            (
                "max_header_bytes = 512",
                "proxy.max_header_bytes",
                "512 is not between 1024 and 1048576",
            ),
            (
                "max_headers = 0",
                "proxy.max_headers",
                "0 is not between 8 and 1000",
            ),
            (
                "max_connections = 0",
                "proxy.max_connections",
                "0 is not between 1 and 1048576",
            ),
            (
                "header_read_timeout = \"0s\"",
                "proxy.header_read_timeout",
                "must be more than zero",
            ),
            (
                "idle_timeout = \"0ms\"",
                "proxy.idle_timeout",
                "must be more than zero",
            ),
            (
                "upstream_ca = \"ca.pem\"",
                "proxy.upstream_ca",
                "is set, but proxy.upstream is not an https:// origin",
            ),
        ] {
            let e = Config::from_toml_str(&format!("[proxy]\n{line}\n")).expect_err(line);
            assert_eq!((e.key(), e.line()), (Some(key), Some(2)), "{e}");
            assert_eq!(e.message(), message, "{line}");
        }
    }

    #[test]
    fn a_missing_config_file_is_an_error_naming_it() {
        let path = Path::new("/surely/not/here/vidgate.toml");
        let e = Config::load(path).expect_err("missing file");
        assert_eq!(e.kind(), ConfigErrorKind::Read);
        assert_eq!(e.file(), Some(path));
        assert_eq!((e.line(), e.key()), (None, None));
        assert!(
            e.to_string()
                .starts_with("/surely/not/here/vidgate.toml: cannot read the config file: "),
            "{e}"
        );
    }

    #[test]
    fn load_errors_start_with_file_and_line() {
        let file = TempFile::new(
            "bad-duration.toml",
            "[proxy]\nconnect_timeout = \"5 parsecs\"\n",
        );
        let e = Config::load(&file.0).expect_err("bad duration");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:2: proxy.connect_timeout: \"5 parsecs\" is not a duration (write e.g. \"5s\" or \"250ms\")",
                file.0.display()
            )
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::from_toml_str(
            "[admin]\nprivate_key = \"hunter2\"\n[[client_tokens.jwt_keys]]\nkid = \"k\"\n\
             alg = \"HS256\"\nsecret = \"swordfish\"\n[client_tokens.ziggeo]\n\
             application_token = \"a\"\nencryption_key = \"correcthorse\"\n",
        )
        .expect("config");
        let debug = format!("{c:?}");
        for secret in ["hunter2", "swordfish", "correcthorse"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("Secret(<redacted>)"));
    }

    #[test]
    fn line_of_finds_keys_tables_and_array_entries() {
        let text = r#"# comment with key = value
top = 1
proxy.listen = "x"

[proxy]
prefixes = [
  "/v1",   # listen = "not a key"
  "",
]
cors.allowed_origins = ["*"]
pem = """
bogus = line inside a string
[not.a.table]
"""
"quoted" = 1

[[client_tokens.jwt_keys]]
kid = "a"

[[client_tokens.jwt_keys]]
kid = "b"
"#;
        assert_eq!(line_of(text, "top"), Some(2));
        assert_eq!(line_of(text, "proxy.listen"), Some(3));
        assert_eq!(line_of(text, "proxy.prefixes"), Some(6));
        assert_eq!(line_of(text, "proxy.prefixes[1]"), Some(6));
        assert_eq!(line_of(text, "proxy.cors.allowed_origins[0]"), Some(10));
        assert_eq!(
            line_of(text, "proxy.bogus"),
            Some(5),
            "a missing key: its table"
        );
        assert_eq!(line_of(text, "not.a.table"), None);
        assert_eq!(line_of(text, "proxy.quoted"), Some(15));
        assert_eq!(line_of(text, "client_tokens.jwt_keys[0].kid"), Some(18));
        assert_eq!(line_of(text, "client_tokens.jwt_keys[1].kid"), Some(21));
        assert_eq!(line_of(text, "client_tokens.jwt_keys[1].alg"), Some(20));
        assert_eq!(line_of(text, "client_tokens.jwt_keys[2].kid"), None);
        assert_eq!(line_of(text, "store.backend"), None);
    }
}
