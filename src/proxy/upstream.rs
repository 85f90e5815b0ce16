//! The forwarding service: one request in, the origin's response (or vidgate's error) out.
//!
//! A request goes through named phases, each a function below: `upstream_request` (the head
//! sent to the origin), `send` (the exchange, bounded by the response timeout),
//! `upstream_response` (the head sent back), and `failure` (the error answer, its metric and
//! its log line).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::{Sent, Tracked};
use super::headers::{rebuild_forwarded, remove_hop_by_hop, ForwardedFor};
use super::{ClientConn, UpstreamConfig, UpstreamConfigError};
use crate::metrics::{Metrics, UpstreamClass};
use crate::policy::DenyReason;
use crate::response::{self, Body, BoxError};
use crate::tls::{origin_client_config, OriginRoots};

/// How long an idle pooled connection is kept. Shorter than the keep-alive timeout of common
/// origins (nginx: 75 s), so that vidgate rarely reuses a connection the origin is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP keepalive probes: a video can stream for hours, and an origin that vanished without a
/// FIN must not pin the connection (and the client's) forever.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The forwarding service. Cheap to clone: clones share one pooled keep-alive client.
///
/// Each call answers with the origin's response (hop-by-hop headers removed, body streamed) or
/// with vidgate's JSON error: 502 `upstream_unavailable`, 504 `upstream_timeout`, or 400
/// `bad_request` for a `CONNECT` (vidgate does not tunnel). Each forwarded request is counted
/// once in `vidgate_upstream_responses_total` and `vidgate_upstream_seconds`; the errors made
/// here are also counted in `vidgate_denials_total`.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

type OriginClient = Client<HttpsConnector<HttpConnector>, Body>;

struct Inner {
    /// `None` when [`Upstream::new`] was given an origin it cannot use.
    origin: Option<Origin>,
    response_timeout: Duration,
    metrics: Metrics,
}

/// Where requests go: the parts of the upstream URI every forwarded URI starts with, and the
/// pooled client that reaches it.
struct Origin {
    client: OriginClient,
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header sent upstream.
    host: HeaderValue,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field(
                "origin",
                &self.inner.origin.as_ref().map(|o| o.authority.as_str()),
            )
            .field("response_timeout", &self.inner.response_timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The forwarding service for `config`, after checking it with
    /// [`UpstreamConfig::validate`]. Requests must be sent from within a Tokio runtime: the
    /// client spawns its connection tasks there.
    pub fn try_new(config: UpstreamConfig, metrics: Metrics) -> Result<Self, UpstreamConfigError> {
        config.validate()?;
        Ok(Self::new(config, metrics))
    }

    /// The forwarding service for `config`, unchecked: the caller has validated it (the server
    /// does, at startup, with [`UpstreamConfig::validate`]). If the origin is not a usable
    /// `http(s)://host[:port]`, every request answers 502 `upstream_unavailable` and logs why.
    pub fn new(config: UpstreamConfig, metrics: Metrics) -> Self {
        Upstream {
            inner: Arc::new(Inner {
                origin: Origin::of(&config),
                response_timeout: config.response_timeout,
                metrics,
            }),
        }
    }
}

/// The pooled client for `config`'s origin: verified TLS for `https://` (never clear text),
/// clear text for `http://`; HTTP/2 when `config.http2` asks for it.
fn client(config: &UpstreamConfig, https: bool) -> Result<OriginClient, rustls::Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    // The TLS connector wrapping it decides what each scheme gets.
    connector.enforce_http(false);
    let roots = match (&config.roots, https) {
        (Some(roots), true) => roots.clone(),
        (None, true) => OriginRoots::public(),
        // Never used: an http origin's connector only lets http:// through.
        (_, false) => OriginRoots::none(),
    };
    if https {
        tracing::info!(roots = %roots.describe, "https origin: its certificate is verified");
    }
    let builder = HttpsConnectorBuilder::new().with_tls_config(origin_client_config(&roots)?);
    let builder = if https {
        builder.https_only()
    } else {
        builder.https_or_http()
    };
    let connector = if https && config.http2 {
        builder.enable_all_versions().wrap_connector(connector)
    } else {
        builder.enable_http1().wrap_connector(connector)
    };
    let mut client = Client::builder(TokioExecutor::new());
    client
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    if config.http2 && !https {
        // h2c with prior knowledge: a cleartext origin cannot negotiate by ALPN.
        client.http2_only(true);
    }
    Ok(client.build(connector))
}

impl Origin {
    fn of(config: &UpstreamConfig) -> Option<Origin> {
        let uri = &config.uri;
        let scheme = uri
            .scheme()
            .filter(|s| **s == Scheme::HTTP || **s == Scheme::HTTPS)?
            .clone();
        let authority = uri.authority()?.clone();
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        let client = match client(config, scheme == Scheme::HTTPS) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot build the TLS client for the origin");
                return None;
            }
        };
        Some(Origin {
            client,
            scheme,
            authority,
            host,
        })
    }
}

impl<B> tower::Service<Request<B>> for Upstream
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The client queues nothing: it opens another connection when none is idle.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        ResponseFuture {
            inner: Box::pin(async move { Ok(inner.forward(request).await) }),
        }
    }
}

/// The future of [`Upstream`]'s response. It never fails: errors are responses.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Why no response came from the origin.
enum Failure {
    /// The connection could not be made (refused, unreachable, DNS, connect timeout), or the
    /// origin configured is unusable.
    Connect(String),
    /// No response head within the response timeout.
    Timeout,
    /// Anything else: the connection broke before the head, a malformed answer.
    Other(String),
}

impl Inner {
    async fn forward<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        if parts.method == Method::CONNECT {
            // A tunnel would carry bytes no check has seen.
            self.metrics.denial(DenyReason::BadRequest);
            return response::error(DenyReason::BadRequest);
        }
        let method = parts.method.clone();
        let started = Instant::now();
        let outcome = match self.upstream_request(parts) {
            Ok((parts, origin)) => {
                let (body, sent) = Tracked::new(body);
                let request = Request::from_parts(parts, response::boxed(body));
                self.send(&origin.client, request, sent).await
            }
            Err(why) => Err(Failure::Connect(why.to_owned())),
        };
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                self.metrics
                    .upstream(UpstreamClass::Status(status), seconds);
                upstream_response(response)
            }
            Err(failure) => {
                self.metrics.upstream(UpstreamClass::Error, seconds);
                self.failure(&method, failure)
            }
        }
    }

    /// The head sent to the origin: same method, path and query; the origin's URI and `Host`;
    /// hop-by-hop headers removed; forwarding headers rebuilt.
    fn upstream_request(&self, mut parts: Parts) -> Result<(Parts, &Origin), &'static str> {
        let origin = self
            .origin
            .as_ref()
            .ok_or("the configured upstream is not a usable http(s)://host[:port]")?;
        let forwarded = forwarded_for(&parts);
        // Taken as received, byte for byte; `PathAndQuery` is never re-encoded by `http`. A
        // request without one (only `CONNECT`'s authority form, refused above) gets `/`.
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(origin.scheme.clone());
        uri.authority = Some(origin.authority.clone());
        uri.path_and_query = Some(path_and_query);
        parts.uri = Uri::from_parts(uri).map_err(|_| "no upstream URI for this request target")?;
        // Whatever the client spoke (HTTP/1.0, HTTP/2), the origin is spoken to in HTTP/1.1,
        // or in HTTP/2 when the connection to it is (the client switches by itself).
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        rebuild_forwarded(&mut parts.headers, &forwarded);
        parts.headers.insert(HOST, origin.host.clone());
        Ok((parts, origin))
    }

    /// Send the request; the response head must come within the response timeout of the
    /// request body's end.
    async fn send(
        &self,
        client: &OriginClient,
        request: Request<Body>,
        sent: Sent,
    ) -> Result<Response<Incoming>, Failure> {
        let deadline = async {
            sent.await;
            tokio::time::sleep(self.response_timeout).await;
        };
        tokio::select! {
            // An answer and the deadline in the same poll: the answer wins.
            biased;
            result = client.request(request) => result.map_err(|error| {
                let chain = error_chain(&error);
                if error.is_connect() {
                    Failure::Connect(chain)
                } else {
                    Failure::Other(chain)
                }
            }),
            // Dropping the request future here cancels the exchange; hyper closes that
            // connection rather than return it to the pool.
            () = deadline => Err(Failure::Timeout),
        }
    }

    /// vidgate's answer when the origin gave none: counted, and logged without the path, the
    /// query or any header.
    fn failure(&self, method: &Method, failure: Failure) -> Response<Body> {
        let reason = match &failure {
            Failure::Connect(error) => {
                tracing::warn!(kind = "connect", %method, %error, "upstream request failed");
                DenyReason::UpstreamUnavailable
            }
            Failure::Timeout => {
                tracing::warn!(
                    kind = "timeout",
                    %method,
                    timeout = ?self.response_timeout,
                    "upstream request failed"
                );
                DenyReason::UpstreamTimeout
            }
            Failure::Other(error) => {
                tracing::warn!(kind = "other", %method, %error, "upstream request failed");
                DenyReason::UpstreamUnavailable
            }
        };
        self.metrics.denial(reason);
        response::error(reason)
    }
}

/// The head sent back to the client: the origin's status and headers minus the hop-by-hop
/// ones; its body streamed as it arrives.
///
/// The body is hyper's `Incoming`, boxed and nothing else: when the client goes away, the
/// server drops the response body, which drops `Incoming`, and hyper closes that origin
/// connection (an unfinished body cannot be reused) instead of streaming the rest of the
/// video to nobody. Nothing here may keep a handle on it.
fn upstream_response(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    // The client's protocol is the server's business, not the origin's HTTP/1.x.
    parts.version = Version::default();
    Response::from_parts(parts, response::boxed(body))
}

/// What vidgate knows about the client, read before the head is rewritten. The host asked for
/// is the request URI's authority when there is one (HTTP/2's `:authority`, an absolute-form
/// HTTP/1.1 target: RFC 9112 3.2.2 says it wins over `Host`), else the `Host` header.
fn forwarded_for(parts: &Parts) -> ForwardedFor {
    let conn = parts.extensions.get::<ClientConn>();
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    };
    ForwardedFor {
        client: conn.map(|c| c.peer.ip()),
        tls: conn.map_or(parts.uri.scheme() == Some(&Scheme::HTTPS), |c| c.tls),
        host,
    }
}

/// An error and its sources, `outer: inner: innermost`, for one log line. hyper's errors
/// never hold the request's URI, so this holds no path or query.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Inner {
        let upstream = Upstream::new(
            UpstreamConfig {
                uri: "http://origin.internal:9000".parse().unwrap(),
                connect_timeout: Duration::from_secs(1),
                response_timeout: Duration::from_secs(1),
                roots: None,
                http2: false,
            },
            Metrics::new(),
        );
        Arc::try_unwrap(upstream.inner).ok().unwrap()
    }

    fn head(request: Request<()>) -> Parts {
        upstream()
            .upstream_request(request.into_parts().0)
            .expect("a usable origin")
            .0
    }

    #[tokio::test]
    async fn the_target_is_the_origin_plus_the_path_and_query_as_received() {
        for target in [
            "/videos/a%20b?x=1&y=%2F",
            "/videos/%2e%2E/x?q=%zz&&=",
            "/",
            "/v?",
            "*",
        ] {
            let parts = head(Request::get(target).body(()).unwrap());
            assert_eq!(parts.uri.path_and_query().unwrap().as_str(), target);
            assert_eq!(parts.uri.authority().unwrap(), "origin.internal:9000");
            assert_eq!(parts.uri.scheme_str(), Some("http"));
            assert_eq!(parts.headers[HOST], "origin.internal:9000");
        }
    }

    #[tokio::test]
    async fn http2_and_absolute_targets_use_their_authority_as_the_forwarded_host() {
        let mut request = Request::get("https://videos.example/v/1?a=b")
            .version(Version::HTTP_2)
            .header(HOST, "other.example")
            .body(())
            .unwrap();
        request.extensions_mut().insert(ClientConn {
            peer: "[2001:db8::5]:443".parse().unwrap(),
            tls: true,
        });
        let parts = head(request);
        assert_eq!(parts.version, Version::HTTP_11);
        assert_eq!(parts.uri.to_string(), "http://origin.internal:9000/v/1?a=b");
        assert_eq!(parts.headers["x-forwarded-host"], "videos.example");
        assert_eq!(parts.headers["x-forwarded-for"], "2001:db8::5");
        assert_eq!(parts.headers["x-forwarded-proto"], "https");
        assert_eq!(parts.headers[HOST], "origin.internal:9000");
    }

    #[tokio::test]
    async fn without_client_conn_there_is_no_forwarded_for() {
        let parts = head(
            Request::get("/v")
                .header(HOST, "videos.example")
                .header("x-forwarded-for", "6.6.6.6")
                .body(())
                .unwrap(),
        );
        assert!(!parts.headers.contains_key("x-forwarded-for"));
        assert_eq!(parts.headers["x-forwarded-proto"], "http");
        assert_eq!(parts.headers["x-forwarded-host"], "videos.example");
    }

    #[tokio::test]
    async fn an_unusable_origin_has_no_upstream_request() {
        for uri in ["ftp://origin.internal", "/path-only"] {
            let upstream = Upstream::new(
                UpstreamConfig {
                    uri: uri.parse().unwrap(),
                    connect_timeout: Duration::from_secs(1),
                    response_timeout: Duration::from_secs(1),
                    roots: None,
                    http2: false,
                },
                Metrics::new(),
            );
            let parts = Request::get("/v").body(()).unwrap().into_parts().0;
            assert!(upstream.inner.upstream_request(parts).is_err(), "{uri}");
        }
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("tcp connect error")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chains_join_every_source() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(error_chain(&Outer(refused)), "tcp connect error: refused");
    }
}
