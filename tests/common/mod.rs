//! Shared helpers of the end-to-end tests (`tests/gateway.rs`, `tests/cli.rs`): a recording
//! hyper origin on `127.0.0.1:0`, the whole gateway bound on `127.0.0.1:0` with a oneshot
//! shutdown, a hyper-util client, the admin API over HTTP, `curl`, and metric parsing.
//!
//! Each test binary uses a different part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod pki;
pub mod static_origin;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::stream;
use http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vidgate::config::Config;
use vidgate::metrics::Metrics;
use vidgate::response::{self, Body};
use vidgate::server::{Gateway, Reloader, ServerError};
use vidgate::store::Store;

/// The admin API's user name (`admin.app_token`), also the only `{app}` the prefixes accept.
pub const APP_TOKEN: &str = "demo-app";
/// The admin API's password (`admin.private_key`).
pub const PRIVATE_KEY: &str = "e2e-secret";
/// The size of the ranged resource behind every `.../stream` path of the origin.
pub const STREAM_LEN: usize = 1000;
/// The `.../drip` path streams this many chunks ...
pub const DRIP_CHUNKS: usize = 10;
/// ... of this many bytes ...
pub const DRIP_CHUNK: usize = 1000;
/// ... this far apart.
pub const DRIP_EVERY: Duration = Duration::from_millis(100);
/// How long the origin's `.../slow` path takes to answer: far beyond the 300 ms
/// `response_timeout` of the test gateways.
pub const SLOW: Duration = Duration::from_secs(3);

/// `len` bytes of a pattern that differs at every offset modulo 251, starting at `offset`,
/// so that a lost, repeated or shifted byte shows.
pub fn pattern(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// The origin
// ---------------------------------------------------------------------------------------------

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// The request target exactly as it arrived (path and query).
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// Every value of a header, as text.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// Every header name and value as `name: value` lines, for "is this anywhere" checks.
    pub fn head_text(&self) -> String {
        let mut text = format!("{} {}\n", self.method, self.target);
        for (name, value) in &self.headers {
            text.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        text
    }
}

struct OriginState {
    seen: Mutex<Vec<Seen>>,
    creates: AtomicUsize,
    /// `.../drip` holds its chunks after the first until this turns true.
    drip_released: tokio::sync::watch::Sender<bool>,
}

/// A real hyper origin on `127.0.0.1:0` that records every request and answers by path:
///
/// | request | answer |
/// |---|---|
/// | `POST .../videos`, `POST .../videos/` | 201 `{"token":"new-N"}` (N counts creates from 1) |
/// | `DELETE` anything | 200 `{"deleted":true}` |
/// | `.../slow` | 200 after [`SLOW`] |
/// | `.../stream` | a [`STREAM_LEN`]-byte [`pattern`]; `Range: bytes=a-b` gives 206 |
/// | `.../drip` | [`DRIP_CHUNKS`] chunks of [`DRIP_CHUNK`] bytes: the first at once, the others [`DRIP_EVERY`] apart once [`Origin::release_drip`] was called |
/// | anything else | 200 `origin saw METHOD TARGET`, `x-origin: yes` |
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState {
            seen: Mutex::default(),
            creates: AtomicUsize::new(0),
            drip_released: tokio::sync::watch::Sender::new(false),
        });
        let accepting = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = service_fn(|request| answer(Arc::clone(&state), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin { addr, state, task }
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// Let every `.../drip` download go on past its first chunk.
    pub fn release_drip(&self) {
        self.state.drip_released.send_replace(true);
    }

    /// The last request received.
    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the origin received a request")
    }
}

async fn answer(
    state: Arc<OriginState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, incoming) = request.into_parts();
    let body = incoming
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
        headers: parts.headers.clone(),
        body,
    });
    let path = parts.uri.path();
    let response = if parts.method == Method::POST
        && (path.ends_with("/videos") || path.ends_with("/videos/"))
    {
        let n = state.creates.fetch_add(1, Ordering::SeqCst) + 1;
        Response::builder()
            .status(StatusCode::CREATED)
            .header(CONTENT_TYPE, "application/json")
            .body(response::full(format!(r#"{{"token":"new-{n}"}}"#)))
    } else if parts.method == Method::DELETE {
        Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(response::full(r#"{"deleted":true}"#))
    } else if path.ends_with("/slow") {
        tokio::time::sleep(SLOW).await;
        Response::builder().body(response::full("slow at last"))
    } else if path.ends_with("/stream") {
        match parts
            .headers
            .get(RANGE)
            .and_then(|r| r.to_str().ok())
            .and_then(parse_range)
        {
            Some((first, last)) if first <= last && last < STREAM_LEN => Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes {first}-{last}/{STREAM_LEN}"))
                .header(ACCEPT_RANGES, "bytes")
                .header(CONTENT_TYPE, "video/mp4")
                .body(response::full(pattern(first, last - first + 1))),
            _ => Response::builder()
                .header(ACCEPT_RANGES, "bytes")
                .header(CONTENT_TYPE, "video/mp4")
                .body(response::full(pattern(0, STREAM_LEN))),
        }
    } else if path.ends_with("/drip") {
        let released = state.drip_released.subscribe();
        let chunks = stream::unfold((0usize, released), |(i, mut released)| async move {
            if i == DRIP_CHUNKS {
                return None;
            }
            if i > 0 {
                let _ = released.wait_for(|released| *released).await;
                tokio::time::sleep(DRIP_EVERY).await;
            }
            let chunk = Bytes::from(pattern(i * DRIP_CHUNK, DRIP_CHUNK));
            Some((Ok::<_, Infallible>(Frame::data(chunk)), (i + 1, released)))
        });
        Response::builder()
            .header(CONTENT_LENGTH, DRIP_CHUNKS * DRIP_CHUNK)
            .header(CONTENT_TYPE, "video/mp4")
            .body(response::boxed(StreamBody::new(chunks)))
    } else {
        Response::builder()
            .header("x-origin", "yes")
            .body(response::full(format!(
                "origin saw {} {}",
                parts.method,
                parts.uri.path_and_query().map_or("", |pq| pq.as_str())
            )))
    };
    Ok(response.unwrap())
}

/// `bytes=a-b` (one closed range).
fn parse_range(value: &str) -> Option<(usize, usize)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// A port on 127.0.0.1 that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------

/// The configuration of the test gateways: both listeners on port 0, a 1 s response timeout
/// (long enough for a loaded 2-core machine, well under the [`SLOW`] origin's 3 s).
pub fn gateway_toml(upstream: SocketAddr) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
connect_timeout = "1s"
response_timeout = "1s"
shutdown_timeout = "5s"

[admin]
listen = "127.0.0.1:0"
app_token = "{APP_TOKEN}"
private_key = "{PRIVATE_KEY}"
"#
    )
}

/// The whole gateway ([`Gateway::bind`] + [`Gateway::run`]) with a oneshot-channel shutdown.
///
/// It runs on a thread of its own, on its own Tokio runtime, as the binary runs it with
/// `block_on`, so that a test blocking its own runtime (a blocking `curl`, say) does not stall
/// the gateway. (`Gateway::run` is `Send`: `tests/limits.rs` spawns it on the test's runtime
/// to share its paused clock.) Dropping a `TestGateway` shuts its gateway down.
pub struct TestGateway {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub store: Store,
    pub metrics: Metrics,
    pub http: Http,
    /// Applies a new configuration to the running gateway, as SIGHUP does.
    pub reloader: Reloader,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<Result<(), ServerError>>>,
}

type Started = Result<(SocketAddr, SocketAddr, Store, Metrics, Reloader), ServerError>;

impl TestGateway {
    /// A gateway in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> TestGateway {
        Self::from_toml(&gateway_toml(upstream)).await
    }

    pub async fn from_toml(toml: &str) -> TestGateway {
        let mut config = Config::from_toml_str(toml).expect("the test config is valid");
        // What Config::load does after parsing: read the files and variables it names.
        config
            .resolve()
            .expect("the test config's files and variables are readable");
        Self::from_config(config).await
    }

    /// A gateway running `config`, which must be resolved (as [`Config::load`] does).
    pub async fn from_config(config: Config) -> TestGateway {
        let (ready_tx, ready_rx) = oneshot::channel::<Started>();
        let (stop, stopped) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("vidgate-e2e-gateway".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the gateway");
                runtime.block_on(async move {
                    let gateway = match Gateway::bind(config).await {
                        Ok(gateway) => gateway,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((
                        gateway.proxy_addr(),
                        gateway.admin_addr(),
                        gateway.store().clone(),
                        gateway.metrics().clone(),
                        gateway.reloader(),
                    )));
                    // A dropped sender (the test is over) ends the run too.
                    let result = gateway
                        .run(async move {
                            let _ = stopped.await;
                        })
                        .await;
                    let _ = done_tx.send(result);
                });
            })
            .expect("a thread for the gateway");
        let (proxy, admin, store, metrics, reloader) = ready_rx
            .await
            .expect("the gateway thread reports")
            .expect("the gateway binds");
        assert_ne!(proxy.port(), 0);
        assert_ne!(admin.port(), 0);
        assert_ne!(proxy, admin);
        TestGateway {
            proxy,
            admin,
            store,
            metrics,
            http: Http::new(),
            reloader,
            stop: Some(stop),
            done: Some(done_rx),
        }
    }

    /// `http://<proxy><path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.proxy)
    }

    /// `http://<admin><path_and_query>`.
    pub fn admin_url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.admin)
    }

    /// Send the shutdown signal (once).
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Wait, at most `bound`, for `run` to return.
    pub async fn finished(&mut self, bound: Duration) -> Result<(), ServerError> {
        let done = self.done.take().expect("the gateway is running");
        tokio::time::timeout(bound, done)
            .await
            .expect("the gateway's run returned in time")
            .expect("the gateway's thread did not panic")
    }

    /// GET through the proxy.
    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.send(Method::GET, path_and_query, &[], "").await
    }

    /// Any request through the proxy.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(self.url(path_and_query));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.http
            .send(
                request
                    .body(Full::new(Bytes::from(body.to_owned())))
                    .unwrap(),
            )
            .await
    }

    /// Any request to the admin API, authenticated with HTTP Basic.
    pub async fn admin(&self, method: Method, path_and_query: &str, json: Option<&Value>) -> Reply {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{APP_TOKEN}:{PRIVATE_KEY}"));
        let mut request = Request::builder()
            .method(method)
            .uri(self.admin_url(path_and_query))
            .header(AUTHORIZATION, format!("Basic {basic}"));
        let body = match json {
            Some(json) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        self.http.send(request.body(Full::new(body)).unwrap()).await
    }

    /// Create a token through the admin API; returns its id.
    pub async fn create_token(&self, json: Value) -> String {
        let reply = self
            .admin(Method::POST, "/v1/authtokens", Some(&json))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.json()["token"]
            .as_str()
            .expect("the created token has an id")
            .to_owned()
    }

    /// The token object, as the admin API reads it.
    pub async fn token(&self, id: &str) -> Value {
        let reply = self
            .admin(Method::GET, &format!("/v1/authtokens/{id}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.json()
    }

    /// The token's live sessions, as the admin API lists them.
    pub async fn sessions_of(&self, id: &str) -> Vec<Value> {
        let reply = self
            .admin(Method::GET, &format!("/v1/authtokens/{id}/sessions"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.json().as_array().expect("an array").clone()
    }

    /// `GET /metrics` on the admin listener, without credentials.
    pub async fn scrape(&self) -> String {
        let request = Request::get(self.admin_url("/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = self.http.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.text()
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client
// ---------------------------------------------------------------------------------------------

/// A hyper-util client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Send a request and read its response whole (10 s at most).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let what = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{what}: body: {e:?}"))
                .to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
    }

    /// The raw client, for streaming tests.
    pub fn client(&self) -> &Client<HttpConnector, Full<Bytes>> {
        &self.client
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// A header's value as text, `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Assert a vidgate error response (SPEC 2.6): the status, JSON `{"error", "message"}` with
/// this reason and a sentence, and `WWW-Authenticate` exactly on a 401.
pub fn assert_error(reply: &Reply, status: u16, reason: &str) {
    assert_eq!(reply.status.as_u16(), status, "{reason}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reason}: {reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["error"], reason, "{reply:?}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "{reason}: no message in {reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        (status == 401).then_some(r#"Bearer error="invalid_token""#),
        "{reason}: {reply:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// What curl got.
#[derive(Debug)]
pub struct CurlReply {
    /// The protocol of the status line: `HTTP/1.1`, `HTTP/2`.
    pub version: String,
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CurlReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

static CURL_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Run `curl -sS --max-time 10 -D <file> <args>` (blocking: call it from a blocking thread or
/// use [`curl`]) and read the status, headers and body of the last response.
pub fn curl_blocking(args: &[String]) -> CurlReply {
    let heads: PathBuf = std::env::temp_dir().join(format!(
        "vidgate-e2e-curl-{}-{}.headers",
        std::process::id(),
        CURL_RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D"])
        .arg(&heads)
        .args(args)
        .output()
        .expect("curl runs");
    let text = std::fs::read_to_string(&heads).unwrap_or_default();
    let _ = std::fs::remove_file(&heads);
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The last header block (after any 100 Continue).
    let block = text
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| panic!("no response head from curl {args:?}: {text:?}"));
    let mut lines = block.lines();
    let status_line = lines.next().unwrap_or_default();
    let version = status_line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let status = Some(status_line)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {block:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    CurlReply {
        version,
        status,
        headers,
        body: output.stdout,
    }
}

/// [`curl_blocking`] on a blocking thread, so that the gateway keeps running on this runtime.
pub async fn curl(args: &[&str]) -> CurlReply {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || curl_blocking(&args))
        .await
        .expect("curl thread")
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// The value of one series (`name{labels}` exactly as rendered) in Prometheus text.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in the metrics:\n{text}"))
}
