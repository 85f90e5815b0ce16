//! Forwarding to the origin: the inner service that an allowed request reaches.
//!
//! [`Upstream`] sends each request to the one configured origin over a pooled keep-alive
//! HTTP/1.1 client and streams both bodies through without buffering. On the way it
//!
//! - keeps the method, path and query *exactly* as received: the path forwarded is the path
//!   that was checked, so nothing here decodes, re-encodes or normalises it;
//! - removes hop-by-hop headers in both directions (the fixed set and every header a
//!   `Connection` header names);
//! - rebuilds `X-Forwarded-For`, `-Proto` and `-Host` from what vidgate saw itself (the
//!   [`ClientConn`] the server attaches to each request), never trusting the client's, and
//!   drops `Forwarded`; `Host` becomes the origin's authority;
//! - turns failures into vidgate's JSON errors: 502 `upstream_unavailable` when the origin
//!   cannot be reached or breaks the connection before answering, 504 `upstream_timeout` when
//!   its response head takes longer than `proxy.response_timeout`.
//!
//! It does not decide anything: by the time a request gets here the layer has checked it and
//! removed vidgate's credentials. It never logs a path, a query or a header (they can hold
//! video ids and credentials), and it never fails as a service: every outcome is a response.
//!
//! `http://` and `https://` origins. An `https://` origin's certificate is verified (against
//! `proxy.upstream_ca`, else the bundled Mozilla roots and the system's), and it is never
//! spoken to in clear text. HTTP/1.1 by default; HTTP/2 when `proxy.upstream_http2` asks for
//! it (by ALPN over TLS, by prior knowledge in clear text). [`Upstream::try_new`] (and
//! [`UpstreamConfig::validate`]) refuse any other origin; [`Upstream::new`] trusts its caller,
//! and an origin it cannot use makes every request answer 502.
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceExt;
//! use vidgate::proxy::{ClientConn, Upstream, UpstreamConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An origin that is not listening (the port was free a moment ago).
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let config = UpstreamConfig {
//!     uri: format!("http://127.0.0.1:{port}").parse()?,
//!     connect_timeout: Duration::from_secs(2),
//!     response_timeout: Duration::from_secs(30),
//!     roots: None,
//!     http2: false,
//! };
//! let upstream = Upstream::try_new(config, vidgate::metrics::Metrics::new())?;
//!
//! let mut request = http::Request::get("/videos/v1").body(vidgate::response::full(""))?;
//! request.extensions_mut().insert(ClientConn {
//!     peer: "192.0.2.7:50000".parse()?,
//!     tls: false,
//! });
//! let response = upstream.oneshot(request).await?;
//! assert_eq!(response.status(), 502);
//! # Ok(())
//! # }
//! ```

mod body;
mod headers;
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::Scheme;
use http::Uri;

use crate::tls::OriginRoots;

pub use upstream::{ResponseFuture, Upstream};

/// How the gateway reaches its origin (`proxy.upstream`, `proxy.connect_timeout`,
/// `proxy.response_timeout`).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The origin: `http://host[:port]`, without a path.
    pub uri: Uri,
    /// How long establishing a TCP connection to the origin may take.
    pub connect_timeout: Duration,
    /// How long the origin may take to send its response head, counted from the moment the
    /// request has been sent whole. Bodies have no timeout: a video may stream for hours.
    pub response_timeout: Duration,
    /// What an `https://` origin's certificate is verified against; `None`:
    /// [`OriginRoots::public`]. Unused for an `http://` origin.
    pub roots: Option<OriginRoots>,
    /// Speak HTTP/2 to the origin: offered by ALPN over TLS, prior knowledge in clear text.
    pub http2: bool,
}

/// Why an [`UpstreamConfig`] cannot be used. The message names the config key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamConfigError {
    /// The origin is not `http(s)://host[:port]`.
    #[error("proxy.upstream: {0}")]
    Uri(&'static str),
    /// A timeout of zero would fail every request.
    #[error("{0}: must be greater than zero")]
    ZeroTimeout(&'static str),
}

impl UpstreamConfig {
    /// Check that the origin is `http(s)://host[:port]` with no path or query, and that both
    /// timeouts are non-zero.
    pub fn validate(&self) -> Result<(), UpstreamConfigError> {
        match self.uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => {}
            _ => {
                return Err(UpstreamConfigError::Uri(
                    "must start with http:// or https://",
                ))
            }
        }
        if self.uri.host().is_none_or(str::is_empty) {
            return Err(UpstreamConfigError::Uri("must name a host"));
        }
        if self.uri.query().is_some() || !matches!(self.uri.path(), "" | "/") {
            return Err(UpstreamConfigError::Uri(
                "must be scheme://host[:port] without a path or query",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(UpstreamConfigError::ZeroTimeout("proxy.connect_timeout"));
        }
        if self.response_timeout.is_zero() {
            return Err(UpstreamConfigError::ZeroTimeout("proxy.response_timeout"));
        }
        Ok(())
    }
}

/// Who is on the other end of the client connection. The server inserts it into each
/// request's extensions; [`Upstream`] builds `X-Forwarded-For` and `X-Forwarded-Proto` from it
/// (without it there is no `X-Forwarded-For`, and the protocol is taken from the request URI's
/// scheme, else `http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConn {
    /// The client's address as the listening socket saw it.
    pub peer: SocketAddr,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uri: &str) -> UpstreamConfig {
        UpstreamConfig {
            uri: uri.parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            roots: None,
            http2: false,
        }
    }

    #[test]
    fn http_and_https_origins_with_or_without_port_or_slash_are_valid() {
        for uri in [
            "http://127.0.0.1:9000",
            "https://videos.example.com",
            "https://[::1]:8443/",
            "http://origin.internal",
            "http://origin.internal/",
            "http://[::1]:9000",
        ] {
            assert_eq!(config(uri).validate(), Ok(()), "{uri}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_key() {
        for uri in [
            "ftp://origin.internal",
            "origin.internal:9000",
            "/just/a/path",
            "http://origin.internal/base",
            "http://origin.internal/?x=1",
        ] {
            let error = config(uri).validate().unwrap_err();
            assert!(matches!(error, UpstreamConfigError::Uri(_)), "{uri}");
            assert!(error.to_string().starts_with("proxy.upstream: "), "{uri}");
        }
        let error = config("ftp://origin.internal").validate().unwrap_err();
        assert!(error.to_string().contains("https://"), "{error}");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let mut zero_connect = config("http://o");
        zero_connect.connect_timeout = Duration::ZERO;
        assert_eq!(
            zero_connect.validate().unwrap_err().to_string(),
            "proxy.connect_timeout: must be greater than zero"
        );
        let mut zero_response = config("http://o");
        zero_response.response_timeout = Duration::ZERO;
        assert_eq!(
            zero_response.validate().unwrap_err().to_string(),
            "proxy.response_timeout: must be greater than zero"
        );
    }
}
