//! `[proxy]` and `[proxy.cors]`: the gateway's listener, its origin, its limits and how
//! requests are handled.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use http::uri::Authority;
use serde::Deserialize;

use super::error::invalid;
use super::resolve::read_pem_file;
use super::values::{
    de_byte_count, de_socket_addr, de_unmatched, explicit_port, in_range, nonzero, HumanDuration,
    Secret, UpstreamUrl,
};
use super::{ConfigError, SameSite};
use crate::route::{self, Routes, Unmatched};

/// `[proxy]`: the gateway's listener, its origin and how requests are handled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `listen`: the proxy's address (default `127.0.0.1:8080`).
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `upstream`: the video origin (no default: `vidgate serve` refuses to start without
    /// one; `vidgate demo` runs vidgate in front of a built-in sample origin).
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

    /// Read the PEM files this section names (`tls_cert`, `tls_key`, `upstream_ca`).
    pub(super) fn resolve(&mut self) -> Result<(), ConfigError> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let cert_pem = read_pem_file("proxy.tls_cert", cert, "CERTIFICATE")?;
            let key_pem = read_pem_file("proxy.tls_key", key, "PRIVATE KEY")?;
            self.tls_files = Some(TlsFiles {
                cert_pem,
                key_pem: Secret::new(key_pem),
            });
        }
        if let Some(ca) = &self.upstream_ca {
            self.upstream_ca_pem = Some(read_pem_file("proxy.upstream_ca", ca, "CERTIFICATE")?);
        }
        Ok(())
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

impl ProxyConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        Routes::check_prefixes(&self.prefixes)
            .map_err(|e| invalid("proxy.prefixes", e.to_string()))?;
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
