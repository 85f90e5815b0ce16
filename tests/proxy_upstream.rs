//! Forwarding to a real origin over sockets (SPEC 2.6, 2.7, 4): a hyper origin on
//! `127.0.0.1:0` records every request it gets (method, target byte for byte, headers, body)
//! and answers per path; [`Upstream`] is called directly, as the layer calls it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HOST, RANGE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};
use vidgate::metrics::Metrics;
use vidgate::proxy::{ClientConn, Upstream, UpstreamConfig};
use vidgate::response::{self, Body};

/// The client every test request comes from, unless it says otherwise.
const PEER: &str = "203.0.113.7:41000";
const MIB: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// The size of `/big`.
const BIG: usize = 20 * MIB;
/// The size of the resource behind `/range`.
const RANGED: usize = 1000;
/// Long enough that a working origin on loopback never hits it.
const GENEROUS: Duration = Duration::from_secs(5);
/// The short response timeout of the timing tests; real time, only ever an upper bound.
const SHORT: Duration = Duration::from_millis(300);

/// `len` bytes (at most [`BIG`]) of a pattern that differs at every offset modulo 251, so that
/// a lost, repeated or reordered chunk shows. Slices of one buffer: cheap in debug builds.
fn pattern(offset: usize, len: usize) -> Bytes {
    static SOURCE: OnceLock<Bytes> = OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        (0..BIG + 251)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    });
    let start = offset % 251;
    source.slice(start..start + len)
}

/// What the origin received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    /// The request target exactly as it arrived (origin-form: path and query).
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug, Default)]
struct OriginState {
    seen: Mutex<Vec<Seen>>,
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections whose serving ended (closed by the peer or broken).
    closed: AtomicUsize,
    /// Request body frames received so far, over every request.
    frames: AtomicUsize,
}

struct Origin {
    addr: SocketAddr,
    state: Arc<OriginState>,
}

impl Origin {
    async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState::default());
        let accepting = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = service_fn(|request| answer(Arc::clone(&state), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    state.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Origin { addr, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn last_seen(&self) -> Seen {
        self.seen().pop().expect("the origin saw a request")
    }

    fn upstream(&self, response_timeout: Duration) -> (Upstream, Metrics) {
        upstream_to(self.addr, response_timeout)
    }
}

fn upstream_to(addr: SocketAddr, response_timeout: Duration) -> (Upstream, Metrics) {
    let metrics = Metrics::new();
    let config = UpstreamConfig {
        uri: format!("http://{addr}").parse().unwrap(),
        connect_timeout: Duration::from_secs(1),
        response_timeout,
        roots: None,
        http2: false,
    };
    let upstream = Upstream::try_new(config, metrics.clone()).unwrap();
    (upstream, metrics)
}

/// The origin's answers, by path.
async fn answer(
    state: Arc<OriginState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, mut incoming) = request.into_parts();
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            state.frames.fetch_add(1, Ordering::SeqCst);
            body.extend_from_slice(&data);
        }
    }
    let body = Bytes::from(body);
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        target: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let response = match parts.uri.path() {
        "/big" => Response::builder()
            .header(CONTENT_LENGTH, BIG)
            .header(CONTENT_TYPE, "video/mp4")
            .header(ETAG, "\"big-1\"")
            .header("x-origin", "yes")
            .body(response::boxed(StreamBody::new(stream::iter(
                (0..BIG / CHUNK)
                    .map(|i| Ok::<_, Infallible>(Frame::data(pattern(i * CHUNK, CHUNK)))),
            )))),
        "/range"
            if parts
                .headers
                .get(RANGE)
                .is_some_and(|r| r == "bytes=100-199") =>
        {
            Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes 100-199/{RANGED}"))
                .header(ACCEPT_RANGES, "bytes")
                .header(CONTENT_TYPE, "video/mp4")
                .body(response::full(pattern(100, 100)))
        }
        "/range" => Response::builder()
            .header(ACCEPT_RANGES, "bytes")
            .body(response::full(pattern(0, RANGED))),
        // Hop-by-hop headers on the way back, and a body of unknown length, so that hyper
        // sends it chunked (`Transfer-Encoding` is one more hop-by-hop header).
        "/hop" => Response::builder()
            .header("connection", "X-Resp-Secret")
            .header("x-resp-secret", "s")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic realm=\"origin\"")
            .header("trailer", "x-checksum")
            .header("upgrade", "h2c")
            .header("x-resp-kept", "yes")
            .body(response::boxed(StreamBody::new(stream::iter(
                ["hop", "-by-", "hop"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s)))),
            )))),
        "/slow-body" => Response::builder().body(response::boxed(StreamBody::new(stream::unfold(
            0,
            |i| async move {
                if i == 6 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let chunk = Bytes::from(format!("chunk{i};"));
                Some((Ok::<_, Infallible>(Frame::data(chunk)), i + 1))
            },
        )))),
        // Streams until nobody listens: the task serving it ends when the write fails.
        "/forever" => Response::builder().body(response::boxed(StreamBody::new(stream::unfold(
            (),
            |()| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from("tick"))), ()))
            },
        )))),
        "/upload" => Response::builder().body(response::full(format!("{} bytes", body.len()))),
        path if path.starts_with("/status/") => Response::builder()
            .status(path["/status/".len()..].parse::<u16>().unwrap())
            .body(response::full("")),
        _ => Response::builder()
            .header("x-origin", "yes")
            .body(response::full("ok")),
    };
    Ok(response.unwrap())
}

/// A request as the layer hands it over: with the server's [`ClientConn`].
fn request(method: Method, target: &str, body: Body) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .body(body)
        .unwrap();
    request.extensions_mut().insert(ClientConn {
        peer: PEER.parse().unwrap(),
        tls: false,
    });
    request
}

fn get(target: &str) -> Request<Body> {
    request(Method::GET, target, response::full(""))
}

/// `ready` then `call` rather than `oneshot`: a `Oneshot<_, Request<Body>>` held across an
/// await in a spawned task trips rustc's "`From` is not general enough" (the `'static` of
/// `BoxError` inside `Body` is erased in the Send check); the named `ResponseFuture` does not.
async fn send(upstream: &Upstream, request: Request<Body>) -> Response<Body> {
    let mut upstream = upstream.clone();
    let ready = match ServiceExt::<Request<Body>>::ready(&mut upstream).await {
        Ok(ready) => ready,
        Err(never) => match never {},
    };
    match ready.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn body_bytes(response: Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

async fn json_body(response: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}

/// The value of one series in the Prometheus text.
fn metric(metrics: &Metrics, series: &str) -> f64 {
    let text = metrics.render();
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in\n{text}"))
}

fn upstream_class(metrics: &Metrics, class: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"vidgate_upstream_responses_total{{class="{class}"}}"#),
    )
}

fn denials(metrics: &Metrics, reason: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"vidgate_denials_total{{reason="{reason}"}}"#),
    )
}

/// Waits (a bounded while) for `condition`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + GENEROUS;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A request body fed chunk by chunk from the test.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

#[tokio::test]
async fn method_path_and_query_arrive_byte_identical() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let cases = [
        (Method::GET, "/videos/a%20b?x=1&y=%2F"),
        (
            Method::GET,
            "/videos/%7Euser/v%2fx%2F?q=a+b&q=%E2%9C%93&empty=&flag&&",
        ),
        (Method::GET, "/videos/./v/../w//x;p=1?a=%zz"),
        (Method::PUT, "/videos/v1?"),
        (Method::DELETE, "/videos/v1"),
        (Method::HEAD, "/videos/v1"),
        (Method::OPTIONS, "*"),
        (Method::from_bytes(b"PURGE").unwrap(), "/videos/v1?x=%20"),
    ];
    for (method, target) in &cases {
        let response = send(
            &upstream,
            request(method.clone(), target, response::full("")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{method} {target}");
    }
    let seen = origin.seen();
    assert_eq!(seen.len(), cases.len());
    for ((method, target), seen) in cases.iter().zip(&seen) {
        assert_eq!(&seen.method, method);
        assert_eq!(seen.target, *target);
    }
}

#[tokio::test]
async fn the_request_body_streams_to_the_origin() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let (tx, rx) = mpsc::channel(4);
    let call = tokio::spawn({
        let upstream = upstream.clone();
        async move {
            let upload = request(Method::POST, "/upload", response::boxed(ChannelBody(rx)));
            let response = send(&upstream, upload).await;
            (response.status(), body_bytes(response).await)
        }
    });
    // The origin has the first chunk while the client still holds the rest: nothing buffers
    // the body on the way.
    tx.send(pattern(0, CHUNK)).await.unwrap();
    eventually("the first chunk at the origin", || {
        origin.state.frames.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(origin.seen().is_empty(), "the origin is still reading");
    for i in 1..5 * MIB / CHUNK {
        tx.send(pattern(i * CHUNK, CHUNK)).await.unwrap();
    }
    drop(tx);
    let (status, answer) = call.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, format!("{} bytes", 5 * MIB));
    let seen = origin.last_seen();
    assert_eq!(seen.body.len(), 5 * MIB);
    assert!(seen.body == pattern(0, 5 * MIB), "the body arrived intact");
    assert!(origin.state.frames.load(Ordering::SeqCst) > 1);
}

#[tokio::test]
async fn a_20_mib_response_streams_back_intact_with_its_headers() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let response = send(&upstream, get("/big")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_LENGTH], BIG.to_string());
    assert_eq!(headers[CONTENT_TYPE], "video/mp4");
    assert_eq!(headers[ETAG], "\"big-1\"");
    assert_eq!(headers["x-origin"], "yes");
    let mut body = response.into_body();
    let (mut received, mut frames) = (0, 0);
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(
            data == pattern(received, data.len()),
            "bytes {received}.. are intact"
        );
        received += data.len();
        frames += 1;
    }
    assert_eq!(received, BIG);
    assert!(frames > 1, "the body came in {frames} frame(s)");
}

#[tokio::test]
async fn a_range_request_gets_the_origins_206_untouched() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let mut ranged = get("/range");
    ranged
        .headers_mut()
        .insert(RANGE, "bytes=100-199".parse().unwrap());
    let response = send(&upstream, ranged).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[CONTENT_RANGE], "bytes 100-199/1000");
    assert_eq!(response.headers()[CONTENT_LENGTH], "100");
    assert_eq!(response.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(response.headers()[CONTENT_TYPE], "video/mp4");
    assert_eq!(body_bytes(response).await, pattern(100, 100));
    assert_eq!(origin.last_seen().headers[RANGE], "bytes=100-199");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let mut hop = request(Method::POST, "/hop", response::full("hello"));
    for (name, value) in [
        ("connection", "keep-alive, X-Secret"),
        ("x-secret", "s3cret"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authorization", "Basic dXNlcjpwdw=="),
        ("te", "trailers"),
        ("trailer", "x-checksum"),
        ("upgrade", "websocket"),
        ("transfer-encoding", "chunked"),
        ("authorization", "Basic b3JpZ2luOnB3"),
        ("x-kept", "yes"),
    ] {
        hop.headers_mut().append(name, value.parse().unwrap());
    }
    let response = send(&upstream, hop).await;
    assert_eq!(response.status(), StatusCode::OK);

    let seen = origin.last_seen();
    for name in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the origin"
        );
    }
    assert_eq!(seen.headers["authorization"], "Basic b3JpZ2luOnB3");
    assert_eq!(seen.headers["x-kept"], "yes");
    // The client's framing went with its Transfer-Encoding; hyper framed the body itself.
    assert_eq!(seen.headers[CONTENT_LENGTH], "5");
    assert_eq!(seen.body, "hello");

    for name in [
        "connection",
        "x-resp-secret",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            !response.headers().contains_key(name),
            "{name} came back to the client"
        );
    }
    assert_eq!(response.headers()["x-resp-kept"], "yes");
    assert_eq!(body_bytes(response).await, "hop-by-hop");
}

#[tokio::test]
async fn forwarding_headers_are_rebuilt_from_the_connection() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let mut forged = get("/videos/v1");
    for (name, value) in [
        ("host", "videos.example:8443"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "7.7.7.7"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=6.6.6.6;proto=http;host=evil.example"),
    ] {
        forged.headers_mut().append(name, value.parse().unwrap());
    }
    forged.extensions_mut().insert(ClientConn {
        peer: "198.51.100.23:5555".parse().unwrap(),
        tls: true,
    });
    send(&upstream, forged).await;
    let seen = origin.last_seen();
    let all = |name: &str| -> Vec<String> {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["198.51.100.23"]);
    assert_eq!(all("x-forwarded-proto"), ["https"]);
    assert_eq!(all("x-forwarded-host"), ["videos.example:8443"]);
    assert!(all("forwarded").is_empty());
    assert_eq!(all("host"), [origin.addr.to_string()]);

    // Plain text from the default peer.
    let mut plain = get("/videos/v2");
    plain
        .headers_mut()
        .insert(HOST, "videos.example".parse().unwrap());
    send(&upstream, plain).await;
    let seen = origin.last_seen();
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "videos.example");

    // No ClientConn: no address to vouch for, so none is sent, whatever the client claims.
    let mut unknown = Request::get("/videos/v3")
        .header("x-forwarded-for", "6.6.6.6")
        .body(response::full(""))
        .unwrap();
    unknown
        .headers_mut()
        .insert(HOST, "videos.example".parse().unwrap());
    send(&upstream, unknown).await;
    let seen = origin.last_seen();
    assert!(!seen.headers.contains_key("x-forwarded-for"));
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn an_origin_that_is_down_answers_502_upstream_unavailable() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (upstream, metrics) = upstream_to(addr, GENEROUS);
    let response = send(&upstream, get("/videos/v1")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = json_body(response).await;
    assert_eq!(body["error"], "upstream_unavailable");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(upstream_class(&metrics, "error"), 1.0);
    assert_eq!(upstream_class(&metrics, "2xx"), 0.0);
    assert_eq!(denials(&metrics, "upstream_unavailable"), 1.0);
    assert_eq!(denials(&metrics, "upstream_timeout"), 0.0);
    assert_eq!(metric(&metrics, "vidgate_upstream_seconds_count"), 1.0);
}

#[tokio::test]
async fn an_origin_that_hangs_up_before_answering_gets_502() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            // Read the request head, then close without a word.
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let (upstream, metrics) = upstream_to(addr, GENEROUS);
    let response = send(&upstream, get("/videos/v1")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(response).await["error"], "upstream_unavailable");
    assert_eq!(upstream_class(&metrics, "error"), 1.0);
    assert_eq!(denials(&metrics, "upstream_unavailable"), 1.0);
}

#[tokio::test]
async fn an_origin_that_never_answers_gets_504_after_the_response_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Accept, and hold every connection open without answering.
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (upstream, metrics) = upstream_to(addr, SHORT);
    let started = Instant::now();
    let response = send(&upstream, get("/videos/v1")).await;
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(json_body(response).await["error"], "upstream_timeout");
    assert!(took >= SHORT, "answered after {took:?}");
    assert!(took < GENEROUS, "answered after {took:?}");
    assert_eq!(upstream_class(&metrics, "error"), 1.0);
    assert_eq!(denials(&metrics, "upstream_timeout"), 1.0);
    assert_eq!(denials(&metrics, "upstream_unavailable"), 0.0);
}

#[tokio::test]
async fn a_body_slower_than_the_response_timeout_still_streams_whole() {
    let origin = Origin::start().await;
    let (upstream, metrics) = origin.upstream(SHORT);
    let started = Instant::now();
    let response = send(&upstream, get("/slow-body")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_bytes(response).await,
        "chunk0;chunk1;chunk2;chunk3;chunk4;chunk5;"
    );
    assert!(
        started.elapsed() >= 2 * SHORT,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(upstream_class(&metrics, "2xx"), 1.0);
    assert_eq!(upstream_class(&metrics, "error"), 0.0);
}

#[tokio::test]
async fn an_upload_slower_than_the_response_timeout_is_not_a_timeout() {
    let origin = Origin::start().await;
    let (upstream, metrics) = origin.upstream(SHORT);
    let slow = stream::unfold(0, |i| async move {
        if i == 6 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, Infallible>(Frame::data(pattern(i * CHUNK, CHUNK))),
            i + 1,
        ))
    });
    let upload = request(
        Method::POST,
        "/upload",
        response::boxed(StreamBody::new(slow)),
    );
    let started = Instant::now();
    let response = send(&upstream, upload).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response).await, format!("{} bytes", 6 * CHUNK));
    assert!(
        started.elapsed() >= 2 * SHORT,
        "took {:?}",
        started.elapsed()
    );
    assert!(origin.last_seen().body == pattern(0, 6 * CHUNK));
    assert_eq!(denials(&metrics, "upstream_timeout"), 0.0);
}

#[tokio::test]
async fn keep_alive_reuses_origin_connections() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    for i in 0..20 {
        let response = send(&upstream, get(&format!("/videos/v{i}"))).await;
        assert_eq!(body_bytes(response).await, "ok");
    }
    assert_eq!(origin.seen().len(), 20);
    let accepted = origin.state.accepted.load(Ordering::SeqCst);
    assert!(
        (1..20).contains(&accepted),
        "{accepted} connections for 20 requests"
    );
}

#[tokio::test]
async fn dropping_the_response_body_closes_the_origin_connection() {
    let origin = Origin::start().await;
    let (upstream, _) = origin.upstream(GENEROUS);
    let response = send(&upstream, get("/forever")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "tick");
    assert_eq!(origin.state.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(origin.state.closed.load(Ordering::SeqCst), 0);
    // The client went away: the server drops the response body.
    drop(body);
    eventually("the origin connection to close", || {
        origin.state.closed.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn connect_is_refused_without_reaching_the_origin() {
    let origin = Origin::start().await;
    let (upstream, metrics) = origin.upstream(GENEROUS);
    let response = send(
        &upstream,
        request(Method::CONNECT, "example.com:443", response::full("")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"], "bad_request");
    assert!(origin.seen().is_empty());
    assert_eq!(origin.state.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(metric(&metrics, "vidgate_upstream_seconds_count"), 0.0);
}

#[tokio::test]
async fn upstream_metrics_count_each_forwarded_request_by_class() {
    let origin = Origin::start().await;
    let (upstream, metrics) = origin.upstream(GENEROUS);
    let mut ranged = get("/range");
    ranged
        .headers_mut()
        .insert(RANGE, "bytes=100-199".parse().unwrap());
    let mut requests = vec![get("/"), get("/videos/v1"), get("/range"), ranged];
    for status in [302, 304, 404, 503, 503] {
        requests.push(get(&format!("/status/{status}")));
    }
    for request in requests {
        body_bytes(send(&upstream, request).await).await;
    }
    assert_eq!(upstream_class(&metrics, "2xx"), 4.0);
    assert_eq!(upstream_class(&metrics, "3xx"), 2.0);
    assert_eq!(upstream_class(&metrics, "4xx"), 1.0);
    assert_eq!(upstream_class(&metrics, "5xx"), 2.0);
    assert_eq!(upstream_class(&metrics, "error"), 0.0);
    assert_eq!(metric(&metrics, "vidgate_upstream_seconds_count"), 9.0);
    // The origin's own errors are passed through, not vidgate's denials.
    assert_eq!(denials(&metrics, "upstream_unavailable"), 0.0);
    assert_eq!(denials(&metrics, "upstream_timeout"), 0.0);
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_upstream_error_logs_one_warning_without_path_or_query() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    // The test runs on one thread, so the subscriber sees everything the request logs.
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (upstream, _) = upstream_to(addr, GENEROUS);
    let mut secret = get("/videos/secret-video-id?server_auth=tok-123&session=ses-456");
    secret
        .headers_mut()
        .insert("authorization", "Basic c2VjcmV0".parse().unwrap());
    let response = send(&upstream, secret).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(r#"kind="connect""#), "{line}");
    assert!(line.contains("method=GET"), "{line}");
    for secret in [
        "secret-video-id",
        "tok-123",
        "ses-456",
        "c2VjcmV0",
        "/videos",
    ] {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
}
