//! A small built-in video origin, so that `vidgate demo` (and `vidgate serve` with no
//! `proxy.upstream`) has something to stand in front of on a machine with nothing else
//! running.
//!
//! It keeps videos in memory and answers the routes of SPEC 2.2 below any prefix: list,
//! create (`{"token": id}` and a `Location`), read (JSON), a byte stream with `Range`
//! support at `/videos/{v}/stream`, update and delete. It checks nothing: that is vidgate's
//! job. It is a demonstration, not a media server.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use crate::response::{full, Body};

/// The size of each demo video's byte stream.
const STREAM_LEN: usize = 256 * 1024;

/// The demo origin's videos.
#[derive(Clone, Default)]
pub struct DemoOrigin {
    videos: Arc<Mutex<BTreeMap<String, String>>>,
}

impl DemoOrigin {
    /// An origin holding the sample videos `welcome` and `big-buck-bunny`.
    pub fn with_samples() -> Self {
        let origin = DemoOrigin::default();
        if let Ok(mut videos) = origin.videos.lock() {
            videos.insert("welcome".into(), "Welcome to vidgate".into());
            videos.insert("big-buck-bunny".into(), "Big Buck Bunny".into());
        }
        origin
    }

    /// Serve on `listener` until the task is dropped or aborted.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let origin = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let origin = origin.clone();
                    async move { Ok::<_, Infallible>(origin.answer(req).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    }

    /// Bind 127.0.0.1 on a free port, serve in a background task, and return the address.
    pub async fn spawn(self) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok((addr, tokio::spawn(self.serve(listener))))
    }

    async fn answer<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body + Send,
    {
        let (parts, body) = req.into_parts();
        // Drain the body (uploads are accepted and discarded).
        let _ = body.collect().await;
        let segments: Vec<&str> = parts
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let Some(at) = segments.iter().position(|s| *s == "videos") else {
            return json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not found"}),
            );
        };
        let video = segments.get(at + 1).map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        });
        let rest = &segments[(at + 2).min(segments.len())..];
        let Ok(mut videos) = self.videos.lock() else {
            return json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({}));
        };
        match (&parts.method, video) {
            (&Method::GET | &Method::HEAD, None) => {
                let list: Vec<_> = videos
                    .iter()
                    .map(|(id, title)| serde_json::json!({"token": id, "title": title}))
                    .collect();
                json(StatusCode::OK, serde_json::Value::Array(list))
            }
            (&Method::POST, None) => {
                let id = hex::encode(crate::random_bytes::<8>());
                videos.insert(id.clone(), "A new recording".into());
                let mut response = json(
                    StatusCode::CREATED,
                    serde_json::json!({"token": id, "title": "A new recording"}),
                );
                if let Ok(location) = format!("/videos/{id}").parse() {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            (_, Some(id)) if !videos.contains_key(&id) => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "no such video"}),
            ),
            (&Method::GET | &Method::HEAD, Some(id)) if rest == ["stream"] => {
                drop(videos);
                stream(&id, parts.headers.get(RANGE).and_then(|r| r.to_str().ok()))
            }
            (&Method::GET | &Method::HEAD, Some(id)) => {
                let title = videos.get(&id).cloned().unwrap_or_default();
                json(
                    StatusCode::OK,
                    serde_json::json!({"token": id, "title": title, "stream": format!("/videos/{id}/stream")}),
                )
            }
            (&Method::DELETE, Some(id)) => {
                if rest.is_empty() {
                    videos.remove(&id);
                }
                json(
                    StatusCode::OK,
                    serde_json::json!({"token": id, "deleted": true}),
                )
            }
            (_, Some(id)) => json(
                StatusCode::OK,
                serde_json::json!({"token": id, "updated": true}),
            ),
            (_, None) => json(StatusCode::METHOD_NOT_ALLOWED, serde_json::json!({})),
        }
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    crate::response::json(status, &value)
}

/// A deterministic byte stream standing in for a video, with single-range support.
fn stream(id: &str, range: Option<&str>) -> Response<Body> {
    let seed = id.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    let data: Vec<u8> = (0..STREAM_LEN)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let builder = Response::builder()
        .header(CONTENT_TYPE, "video/mp4")
        .header(ACCEPT_RANGES, "bytes");
    let parsed = range.and_then(|r| parse_range(r, STREAM_LEN));
    let response = match (range, parsed) {
        (Some(_), Some((start, end))) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(CONTENT_RANGE, format!("bytes {start}-{end}/{STREAM_LEN}"))
            .header(CONTENT_LENGTH, end - start + 1)
            .body(full(Bytes::copy_from_slice(&data[start..=end]))),
        (Some(_), None) => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(CONTENT_RANGE, format!("bytes */{STREAM_LEN}"))
            .body(full(Bytes::new())),
        (None, _) => builder
            .header(CONTENT_LENGTH, STREAM_LEN)
            .body(full(Bytes::from(data))),
    };
    response.unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` within `len`; `None` when unsatisfiable.
fn parse_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len - 1)
        }
        (s, "") => (s.parse().ok()?, len - 1),
        (s, e) => (s.parse().ok()?, e.parse::<usize>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }

    #[tokio::test]
    async fn serves_the_routes_below_any_prefix() {
        let origin = DemoOrigin::with_samples();
        let get = |uri: &str| {
            Request::get(uri)
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap()
        };
        let list = origin.answer(get("/v1/videos")).await;
        assert_eq!(list.status(), StatusCode::OK);
        let text = list.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&text).contains("welcome"));
        let part = origin
            .answer(
                Request::get("/videos/welcome/stream")
                    .header(RANGE, "bytes=10-19")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.headers()[CONTENT_RANGE],
            format!("bytes 10-19/{STREAM_LEN}")
        );
        assert_eq!(
            part.into_body().collect().await.unwrap().to_bytes().len(),
            10
        );
        let created = origin
            .answer(
                Request::post("/videos")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        assert!(created.headers().contains_key(LOCATION));
        assert_eq!(
            origin.answer(get("/videos/nope")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
