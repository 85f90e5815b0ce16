//! A static-file origin for the player tests (`tests/players.rs`): a hyper server on
//! `127.0.0.1:0` that serves one directory the way a video host's file server does, and records
//! every request it receives so that a test can show that no vidgate credential reached it.
//!
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /v1/videos/{v}/<rest>` | the file `<dir>/{v}/<rest>` |
//! | `GET`/`HEAD /<path>` | the file `<dir>/<path>` |
//! | `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) | 206 with `Content-Range`; 416 when unsatisfiable |
//! | a missing file, a `..` or `%` in the path | 404 |
//! | any other method | 405 |
//!
//! The content type follows the extension: `.m3u8`, `.mpd`, `.ts`, `.m4s`, `.mp4`, `.html`,
//! `.js` (else `application/octet-stream`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vidgate::response::{self, Body};

use super::Seen;

/// The query parameters, headers and cookies that carry vidgate credentials (SPEC 2.1); none
/// of them may ever reach the origin.
const CREDENTIAL_PARAMETERS: [&str; 3] = ["server_auth", "client_auth", "session"];

struct State {
    root: PathBuf,
    seen: Mutex<Vec<Seen>>,
}

/// A static-file origin on `127.0.0.1:0` (see the module docs). Dropping it stops it.
pub struct StaticOrigin {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for StaticOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StaticOrigin {
    /// Serve `root`.
    pub async fn start(root: impl Into<PathBuf>) -> StaticOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            root: root.into(),
            seen: Mutex::default(),
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
        StaticOrigin { addr, state, task }
    }

    /// `http://<addr><path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The paths (targets without their query) received so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| s.target.split('?').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// Panic, naming the request and the credential, if any request so far carried a vidgate
    /// credential (SPEC 2.1) or any of `secrets` (token and session values) anywhere in its
    /// head.
    pub fn assert_no_credentials(&self, secrets: &[&str]) {
        for seen in self.seen() {
            if let Some(found) = credential_in(&seen) {
                panic!("the origin received {found}: {}", seen.head_text());
            }
            let head = seen.head_text();
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                assert!(
                    !head.contains(secret),
                    "the origin received the secret {secret:?}: {head}"
                );
            }
        }
    }
}

/// The first vidgate credential a request carries, described; `None` when it carries none.
pub fn credential_in(seen: &Seen) -> Option<String> {
    if let Some((_, query)) = seen.target.split_once('?') {
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if CREDENTIAL_PARAMETERS.contains(&name.as_ref()) {
                return Some(format!("the query parameter {name}"));
            }
        }
    }
    if seen
        .header_values("authorization")
        .iter()
        .any(|v| v.len() >= 7 && v[..7].eq_ignore_ascii_case("bearer "))
    {
        return Some("an Authorization: Bearer header".to_owned());
    }
    if seen.headers.contains_key("x-vidgate-session") {
        return Some("an X-Vidgate-Session header".to_owned());
    }
    if seen
        .header_values("cookie")
        .iter()
        .any(|v| v.contains("vidgate_session_"))
    {
        return Some("a vidgate_session_ cookie".to_owned());
    }
    None
}

/// The content type of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        _ => "application/octet-stream",
    }
}

/// The file a request path names, or `None` for a path this origin does not serve.
fn file_of(root: &Path, path: &str) -> Option<PathBuf> {
    if path.contains("..") || path.contains('%') || path.contains('\\') {
        return None;
    }
    let relative = match path.strip_prefix("/v1/videos/") {
        Some(below) => below,
        None => path.strip_prefix('/')?,
    };
    if relative.is_empty() || relative.split('/').any(str::is_empty) {
        return None;
    }
    Some(root.join(relative))
}

/// One `Range` value against a resource of `len` bytes: the first and last byte, or `Err` when
/// it cannot be satisfied. `None` for a header this origin ignores (several ranges, other
/// units), which is answered with the whole file as RFC 9110 allows.
pub fn range_of(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // bytes=-n: the last n bytes.
        let n: u64 = last.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let first: u64 = first.parse().ok()?;
        let last = if last.is_empty() {
            len.saturating_sub(1)
        } else {
            let last: u64 = last.parse().ok()?;
            if last < first {
                return None;
            }
            last.min(len.saturating_sub(1))
        };
        if first >= len {
            return Some(Err(()));
        }
        (first, last)
    };
    Some(Ok(range))
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, _body) = request.into_parts();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
        headers: parts.headers.clone(),
        body: Bytes::new(),
    });
    let status = |status: StatusCode| {
        Response::builder()
            .status(status)
            .body(response::full(status.to_string()))
            .unwrap()
    };
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let Some(file) = file_of(&state.root, parts.uri.path()) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let len = bytes.len() as u64;
    let head = Response::builder()
        .header(CONTENT_TYPE, content_type(&file))
        .header(ACCEPT_RANGES, "bytes");
    let range = parts
        .headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| range_of(v, len));
    let (head, body) = match range {
        None => (head.header(CONTENT_LENGTH, len), Bytes::from(bytes)),
        Some(Ok((first, last))) => (
            head.status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes {first}-{last}/{len}"))
                .header(CONTENT_LENGTH, last - first + 1),
            Bytes::from(bytes).slice(first as usize..=last as usize),
        ),
        Some(Err(())) => (
            head.status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(CONTENT_RANGE, format!("bytes */{len}"))
                .header(CONTENT_LENGTH, 0),
            Bytes::new(),
        ),
    };
    let body = if parts.method == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    Ok(head.body(response::full(body)).unwrap())
}
