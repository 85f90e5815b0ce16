//! Video delivery through the whole gateway (SPEC 2.7): manifests rewritten so that a
//! playback stays in one session, CORS for browser players, and streams that end when their
//! client goes away. Real players (ffmpeg, Chromium with hls.js) are in `tests/players.rs`.

mod common;

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{assert_error, gateway_toml, Reply, TestGateway};
use futures_util::stream;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RANGE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use vidgate::response::{self, Body};

/// A master playlist as packagers write it: variants, alternate audio, an I-frame playlist,
/// a session key, one cross-origin variant and an unknown tag.
const MASTER: &str = "#EXTM3U\n\
#EXT-X-VERSION:6\n\
#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"keys/session.key\"\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"aud\"\n\
low/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000\n\
https://cdn.elsewhere.example/high/index.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"low/iframes.m3u8\"\n\
#EXT-X-VENDOR-THING:URI=\"untouched.bin\"\n";

/// A media playlist: a key, an init section, segments with and without a query.
const MEDIA: &str = "#EXTM3U\n\
#EXT-X-TARGETDURATION:2\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k1.key\",IV=0x00000000000000000000000000000001\n\
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n\
#EXTINF:2.0,\n\
seg0.m4s\n\
#EXTINF:2.0,\n\
seg1.m4s?v=3\n\
#EXT-X-ENDLIST\n";

const MPD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period>
    <AdaptationSet contentType="video">
      <SegmentTemplate initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1" duration="2" timescale="1"/>
      <Representation id="0" bandwidth="800000" codecs="avc1.4d401f" width="320" height="240"/>
    </AdaptationSet>
  </Period>
</MPD>
"#;

/// An origin serving the manifests above, recording what it was asked.
struct ManifestOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    /// `/long` bodies still being produced (dropped when the connection goes).
    streaming: Arc<AtomicUsize>,
    /// Bytes of `/huge` bodies handed to hyper so far.
    produced: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ManifestOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a `/long` body while it lives.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

impl ManifestOrigin {
    async fn start() -> ManifestOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let streaming = Arc::new(AtomicUsize::new(0));
        let produced = Arc::new(AtomicUsize::new(0));
        let (seen2, streaming2, produced2) = (seen.clone(), streaming.clone(), produced.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (seen, streaming, produced) =
                    (seen2.clone(), streaming2.clone(), produced2.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (seen, streaming, produced) =
                            (seen.clone(), streaming.clone(), produced.clone());
                        async move { Ok::<_, Infallible>(answer(request, &seen, &streaming, &produced)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        ManifestOrigin {
            addr,
            seen,
            streaming,
            produced,
            task,
        }
    }

    fn last(&self) -> (String, HeaderMap) {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// The size of `/huge`, produced as fast as hyper takes it.
const HUGE: usize = 256 << 20;
const HUGE_CHUNK: usize = 64 << 10;

fn answer(
    request: Request<Incoming>,
    seen: &Mutex<Vec<(String, HeaderMap)>>,
    streaming: &Arc<AtomicUsize>,
    produced: &Arc<AtomicUsize>,
) -> Response<Body> {
    let target = request.uri().path_and_query().unwrap().as_str().to_owned();
    seen.lock()
        .unwrap()
        .push((target.clone(), request.headers().clone()));
    let path = request.uri().path();
    let builder = Response::builder()
        .header("etag", "\"origin-etag\"")
        .header("accept-ranges", "bytes");
    let hls = "application/vnd.apple.mpegurl";
    let reply = if path.ends_with("/gz/master.m3u8") {
        // Compressed although vidgate asked for identity.
        builder
            .header(CONTENT_TYPE, hls)
            .header(CONTENT_ENCODING, "gzip")
            .body(response::full(gzip(MASTER)))
    } else if path.ends_with("master.m3u8") {
        builder
            .header(CONTENT_TYPE, hls)
            .body(response::full(MASTER))
    } else if path.ends_with("index.m3u8") {
        builder
            .header(CONTENT_TYPE, "text/plain")
            .body(response::full(MEDIA))
    } else if path.ends_with("/playlist") {
        // No extension: the content type says it is a playlist.
        builder
            .header(CONTENT_TYPE, "application/x-mpegURL; charset=utf-8")
            .body(response::full(MEDIA))
    } else if path.ends_with(".mpd") {
        builder
            .header(CONTENT_TYPE, "application/dash+xml")
            .body(response::full(MPD))
    } else if path.ends_with("/huge") {
        let produced = produced.clone();
        let chunk = Bytes::from(vec![b'h'; HUGE_CHUNK]);
        let chunks = stream::iter((0..HUGE / HUGE_CHUNK).map(move |_| {
            produced.fetch_add(HUGE_CHUNK, Ordering::SeqCst);
            Ok::<_, Infallible>(Frame::data(chunk.clone()))
        }));
        builder
            .header(CONTENT_TYPE, "video/mp4")
            .header("content-length", HUGE)
            .body(response::boxed(StreamBody::new(chunks)))
    } else if path.ends_with("/long") {
        streaming.fetch_add(1, Ordering::SeqCst);
        let live = Live(streaming.clone());
        let chunks = stream::unfold((0u64, live), |(i, live)| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (i < 10_000).then(|| {
                let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
                (Ok::<_, Infallible>(Frame::data(chunk)), (i + 1, live))
            })
        });
        builder
            .header(CONTENT_TYPE, "video/mp4")
            .body(response::boxed(StreamBody::new(chunks)))
    } else {
        builder
            .header(CONTENT_TYPE, "video/iso.segment")
            .body(response::full(format!("segment {target}")))
    };
    reply.unwrap()
}

async fn setup(extra: &str) -> (ManifestOrigin, TestGateway) {
    let origin = ManifestOrigin::start().await;
    let gw = TestGateway::from_toml(&format!("{}{extra}", gateway_toml(origin.addr))).await;
    (origin, gw)
}

/// A rewritten URI's query, split into pairs.
fn pairs(uri: &str) -> Vec<(String, String)> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn an_hls_master_playlist_carries_the_token_to_every_same_origin_uri() {
    let (origin, gw) = setup("").await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}}))
        .await;
    let reply = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1/hls/master.m3u8?server_auth={token}"),
            &[("range", "bytes=0-99"), ("accept-encoding", "gzip, br")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let (target, headers) = origin.last();
    assert_eq!(
        target, "/v1/videos/v1/hls/master.m3u8",
        "no credential upstream"
    );
    assert!(
        headers.get(RANGE).is_none(),
        "a manifest is fetched whole: {headers:?}"
    );
    assert_eq!(headers[ACCEPT_ENCODING], "identity");

    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    assert_eq!(
        reply.header("etag"),
        None,
        "the origin's ETag no longer holds"
    );
    let text = reply.text();
    let appended = format!("server_auth={token}");
    let expected = MASTER
        .replace("keys/session.key", &format!("keys/session.key?{appended}"))
        .replace("audio/en.m3u8", &format!("audio/en.m3u8?{appended}"))
        .replace("low/index.m3u8\n", &format!("low/index.m3u8?{appended}\n"))
        .replace("low/iframes.m3u8", &format!("low/iframes.m3u8?{appended}"));
    assert_eq!(text, expected, "exactly the same-origin URIs changed");
    assert!(text.contains("\nhttps://cdn.elsewhere.example/high/index.m3u8\n"));
    assert!(text.contains("URI=\"untouched.bin\""));
}

#[tokio::test]
async fn a_playback_stays_in_the_session_its_manifest_opened() {
    let (origin, gw) = setup("").await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 1}))
        .await;
    let reply = gw
        .get(&format!(
            "/v1/videos/v1/hls/low/index.m3u8?server_auth={token}"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let session = reply
        .header("x-vidgate-session")
        .expect("the manifest opened a session")
        .to_owned();
    // Detected by its path, though the origin calls it text/plain.
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    let text = reply.text();
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(text.contains(&format!(
        "URI=\"../keys/k1.key?server_auth={token}&session={session}\""
    )));
    assert!(text.contains(&format!(
        "URI=\"init.mp4?server_auth={token}&session={session}\",BYTERANGE=\"720@0\""
    )));
    assert_eq!(
        pairs(uris[1]),
        [
            ("v".to_owned(), "3".to_owned()),
            ("server_auth".to_owned(), token.clone()),
            ("session".to_owned(), session.clone())
        ]
    );
    // The player fetches each segment with what the playlist gave it: no new session.
    for uri in &uris {
        let seg = gw.get(&format!("/v1/videos/v1/hls/low/{uri}")).await;
        assert_eq!(seg.status, StatusCode::OK, "{uri}: {seg:?}");
        assert!(seg.header("x-vidgate-session").is_none(), "no new session");
        let (target, _) = origin.last();
        assert!(
            !target.contains("server_auth") && !target.contains("session="),
            "credentials never reach the origin: {target}"
        );
    }
    assert_eq!(gw.token(&token).await["sessions_created"], 1);
    // A second playback without the session is refused: the limit was one.
    let again = gw
        .get(&format!(
            "/v1/videos/v1/hls/low/index.m3u8?server_auth={token}"
        ))
        .await;
    assert_error(&again, 403, "session_limit_reached");
}

#[tokio::test]
async fn a_compressed_or_extensionless_playlist_is_decoded_and_rewritten() {
    let (_origin, gw) = setup("").await;
    let token = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let gz = gw
        .get(&format!("/v1/videos/v1/gz/master.m3u8?server_auth={token}"))
        .await;
    assert_eq!(gz.status, StatusCode::OK, "{gz:?}");
    assert_eq!(gz.header("content-encoding"), None);
    assert!(gz
        .text()
        .contains(&format!("low/index.m3u8?server_auth={token}\n")));
    let typed = gw
        .get(&format!("/v1/videos/v1/playlist?server_auth={token}"))
        .await;
    assert!(typed
        .text()
        .contains(&format!("seg0.m4s?server_auth={token}\n")));
    assert_eq!(typed.header("cache-control"), Some("private, no-store"));
    // A segment is not a manifest: it streams as the origin sent it.
    let seg = gw
        .get(&format!("/v1/videos/v1/hls/seg0.m4s?server_auth={token}"))
        .await;
    assert_eq!(seg.text(), "segment /v1/videos/v1/hls/seg0.m4s");
    assert_eq!(seg.header("etag"), Some("\"origin-etag\""));
    assert_eq!(seg.header("cache-control"), None);
}

#[tokio::test]
async fn a_dash_manifest_carries_the_token_and_session() {
    let (_origin, gw) = setup("").await;
    let token = gw
        .create_token(
            json!({"grants": {"read": {"resources": ["v1"]}}, "usage_expiration_time": 600}),
        )
        .await;
    let reply = gw
        .get(&format!(
            "/v1/videos/v1/dash/manifest.mpd?server_auth={token}"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let session = reply.header("x-vidgate-session").unwrap().to_owned();
    let text = reply.text();
    let query = format!("server_auth={token}&amp;session={session}");
    assert!(
        text.contains(&format!(
            "initialization=\"init-$RepresentationID$.m4s?{query}\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "media=\"chunk-$RepresentationID$-$Number%05d$.m4s?{query}\""
        )),
        "{text}"
    );
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    assert_eq!(
        reply.header("content-length"),
        Some(text.len().to_string().as_str())
    );
}

/// A streaming GET of `path` with a read-all token, its first data chunk read: the client
/// (dropping it closes the connection) and the rest of the body.
async fn first_chunk_of(
    gw: &TestGateway,
    path: &str,
) -> (
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<Bytes>,
    >,
    Incoming,
) {
    let token = gw.create_token(json!({"grants": {"read": "all"}})).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let uri = gw.url(&format!("{path}?server_auth={token}"));
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.expect("a first chunk").unwrap();
    assert!(first.is_data());
    (client, body)
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_frees_the_origin() {
    let (origin, gw) = setup("").await;
    let (client, body) = first_chunk_of(&gw, "/v1/videos/v1/long").await;
    assert_eq!(origin.streaming.load(Ordering::SeqCst), 1);
    drop(body);
    drop(client);
    // The gateway drops its upstream body once the client is gone; the origin's stream ends
    // (its producer is dropped) long before the 200 s it would take to finish.
    tokio::time::timeout(Duration::from_secs(10), async {
        while origin.streaming.load(Ordering::SeqCst) != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the origin's stream ended after the client left");
    assert_eq!(origin.count(), 1);
}

/// A viewer slower than the origin must not make vidgate read the video ahead into memory:
/// the origin can only get as far ahead as the sockets' and hyper's bounded buffers allow.
/// (With `pipeline_flush` on the listener, hyper's write buffer had no cap, and vidgate read
/// all 256 MiB from the origin while the client read nothing.)
#[tokio::test]
async fn a_stalled_viewer_keeps_vidgates_read_ahead_bounded() {
    let (origin, gw) = setup("").await;
    let (_client, body) = first_chunk_of(&gw, "/v1/videos/v1/huge").await;
    // The client now reads nothing. Wait until the origin stops producing: the buffers are
    // full (or, were they unbounded, the whole body was read).
    let mut last = origin.produced.load(Ordering::SeqCst);
    let mut unchanged = 0;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = origin.produced.load(Ordering::SeqCst);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged == 20 {
            break;
        }
    }
    assert!(
        last < 64 << 20,
        "vidgate read {} MiB ahead of a stalled client (of a {} MiB body)",
        last >> 20,
        HUGE >> 20
    );
    drop(body);
}

// ---------------------------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------------------------

const PLAYER: &str = "http://player.example:3000";

fn cors_toml() -> String {
    format!("\n[proxy.cors]\nallowed_origins = [\"{PLAYER}\"]\n")
}

fn cors_header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.header(name)
}

#[tokio::test]
async fn with_cors_vidgate_answers_preflights_and_decorates_every_response() {
    let (origin, gw) = setup(&cors_toml()).await;
    let preflight = gw
        .send(
            Method::OPTIONS,
            "/v1/videos/v1/hls/master.m3u8",
            &[
                ("origin", PLAYER),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range, x-vidgate-session"),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT, "{preflight:?}");
    assert_eq!(origin.count(), 0, "vidgate answered the preflight itself");
    assert_eq!(
        cors_header(&preflight, "access-control-allow-origin"),
        Some(PLAYER)
    );
    assert_eq!(
        cors_header(&preflight, "access-control-allow-headers"),
        Some("range, x-vidgate-session")
    );

    // A denial is readable by the player too.
    let denied = gw
        .send(
            Method::GET,
            "/v1/videos/v1/hls/master.m3u8",
            &[("origin", PLAYER)],
            "",
        )
        .await;
    assert_error(&denied, 401, "missing_token");
    assert_eq!(
        cors_header(&denied, "access-control-allow-origin"),
        Some(PLAYER)
    );

    let token = gw
        .create_token(json!({"grants": {"read": "all"}, "session_limit": 5}))
        .await;
    let allowed = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1/hls/master.m3u8?server_auth={token}"),
            &[("origin", PLAYER)],
            "",
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        cors_header(&allowed, "access-control-allow-origin"),
        Some(PLAYER)
    );
    assert_eq!(
        cors_header(&allowed, "access-control-allow-credentials"),
        Some("true")
    );
    let exposed = cors_header(&allowed, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("X-Vidgate-Session"), "{exposed}");
    assert!(allowed.header("x-vidgate-session").is_some());

    // Another site gets no CORS headers: its browser keeps the answer from it.
    let foreign = gw
        .send(
            Method::GET,
            &format!("/v1/videos/v1/hls/master.m3u8?server_auth={token}"),
            &[("origin", "https://evil.example")],
            "",
        )
        .await;
    assert_eq!(cors_header(&foreign, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn without_cors_preflights_go_to_the_origin_unchecked() {
    let (origin, gw) = setup("").await;
    let preflight = gw
        .send(
            Method::OPTIONS,
            "/v1/videos/v1/hls/master.m3u8?server_auth=whatever",
            &[("origin", PLAYER), ("access-control-request-method", "GET")],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK, "{preflight:?}");
    let (target, _) = origin.last();
    assert_eq!(
        target, "/v1/videos/v1/hls/master.m3u8",
        "credentials stripped"
    );
    assert_eq!(cors_header(&preflight, "access-control-allow-origin"), None);
}
