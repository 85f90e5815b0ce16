//! The limits that protect the gateway from slow, idle, huge and too many clients, each a
//! clear refusal and never a stuck task: the header read timeout (slowloris), the idle
//! keep-alive timeout (which a request or a stalled stream in flight never trips), the
//! request head's size and header count (431), `max_connections` (503), and `admin.max_body`
//! (413).
//!
//! The gateway, its origin and the clients run on the test's runtime with Tokio's clock
//! paused: the timeouts are exact in virtual time, and no test waits for them in real time.

mod common;

use std::future::pending;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{metric, Http, Origin, APP_TOKEN, DRIP_CHUNK, DRIP_CHUNKS, PRIVATE_KEY};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use vidgate::config::Config;
use vidgate::metrics::Metrics;
use vidgate::server::Gateway;
use vidgate::store::TokenStore;
use vidgate::token::NewToken;

/// A gateway running on this runtime, in front of `origin`, with `proxy_extra` and
/// `admin_extra` lines added to its sections.
struct Running {
    proxy: SocketAddr,
    admin: SocketAddr,
    metrics: Metrics,
    /// Reads every video.
    token: String,
}

async fn gateway(origin: &Origin, proxy_extra: &str, admin_extra: &str) -> Running {
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{}\"\nresponse_timeout = \"5s\"\n\
         {proxy_extra}\n[admin]\nlisten = \"127.0.0.1:0\"\napp_token = \"{APP_TOKEN}\"\n\
         private_key = \"{PRIVATE_KEY}\"\n{admin_extra}\n",
        origin.addr
    );
    let mut config = Config::from_toml_str(&toml).unwrap();
    config.resolve().unwrap();
    let gateway = Gateway::bind(config).await.unwrap();
    let token = gateway
        .store()
        .insert_token(NewToken::from_json(r#"{"grants": {"read": "all"}}"#).unwrap())
        .await
        .unwrap()
        .id
        .to_string();
    let running = Running {
        proxy: gateway.proxy_addr(),
        admin: gateway.admin_addr(),
        metrics: gateway.metrics().clone(),
        token,
    };
    tokio::spawn(gateway.run(pending()));
    running
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}?server_auth={}", self.proxy, self.token)
    }

    /// A whole GET of an allowed video, on a fresh connection.
    async fn get_ok(&self) {
        let reply = Http::new()
            .send(
                Request::get(self.url("/v1/videos/v1"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }

    /// A raw HTTP/1.1 GET head of an allowed video, with `extra` header lines.
    fn head(&self, extra: &str) -> Vec<u8> {
        format!(
            "GET /v1/videos/v1?server_auth={} HTTP/1.1\r\nHost: gateway\r\n{extra}\r\n",
            self.token
        )
        .into_bytes()
    }
}

/// Read one response whose body has a Content-Length; returns its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            if received.len() >= end + 4 + length {
                return text.lines().next().unwrap().to_owned();
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-response: {received:?}");
        received.extend_from_slice(&chunk[..n]);
    }
}

/// How long until the peer closes `stream` (reading nothing), from now.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    assert_eq!(
        n,
        0,
        "expected a close, got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_client_sending_one_header_byte_per_second_is_cut_off_after_the_timeout() {
    let origin = Origin::start().await;
    let gw = gateway(&origin, "header_read_timeout = \"5s\"", "").await;
    let mut head = gw.head("X-Padding: slow-slow-slow\r\n");
    head.truncate(head.len() - 2); // never complete, however long it trickles
    let slow = TcpStream::connect(gw.proxy).await.unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for byte in head {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent
    });
    // Other clients are served normally meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gw.get_ok().await;

    let mut buf = [0u8; 256];
    let n = reader.read(&mut buf).await.unwrap_or(0);
    let closed = started.elapsed();
    assert_eq!(n, 0, "no answer, just a close: {:?}", &buf[..n]);
    assert!(
        closed >= Duration::from_secs(5) && closed < Duration::from_secs(6),
        "closed after {closed:?}, with header_read_timeout = 5s"
    );
    trickle.abort();
    gw.get_ok().await;
    assert_eq!(
        origin.count(),
        2,
        "the slow request never reached the origin"
    );
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_waits_idle_timeout_not_the_header_timeout() {
    let origin = Origin::start().await;
    let gw = gateway(
        &origin,
        "header_read_timeout = \"5s\"\nidle_timeout = \"50s\"",
        "",
    )
    .await;
    let mut conn = TcpStream::connect(gw.proxy).await.unwrap();
    conn.write_all(&gw.head("")).await.unwrap();
    assert_eq!(read_response(&mut conn).await, "HTTP/1.1 200 OK");
    // Idle for seven header timeouts (and longer than hyper's own 30 s header timeout, which
    // would count idle time too): still open, and serves the next request.
    tokio::time::sleep(Duration::from_secs(35)).await;
    conn.write_all(&gw.head("")).await.unwrap();
    assert_eq!(read_response(&mut conn).await, "HTTP/1.1 200 OK");
    let idle = closed_after(&mut conn).await;
    assert!(
        idle >= Duration::from_secs(50) && idle < Duration::from_secs(51),
        "closed after {idle:?} idle, with idle_timeout = 50s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_outlives_every_timeout_and_completes() {
    let origin = Origin::start().await;
    let gw = gateway(
        &origin,
        "header_read_timeout = \"1s\"\nidle_timeout = \"1s\"",
        "",
    )
    .await;
    let http = Http::new();
    let response = http
        .client()
        .request(
            Request::get(gw.url("/v1/videos/v1/drip"))
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), DRIP_CHUNK);
    // The origin holds the rest: nothing moves for far longer than both timeouts.
    tokio::time::sleep(Duration::from_secs(30)).await;
    origin.release_drip();
    let rest = body
        .collect()
        .await
        .expect("the stream was not cut")
        .to_bytes();
    assert_eq!(first.len() + rest.len(), DRIP_CHUNKS * DRIP_CHUNK);
}

#[tokio::test(start_paused = true)]
async fn oversized_heads_and_too_many_headers_get_431() {
    let origin = Origin::start().await;
    let gw = gateway(&origin, "max_header_bytes = 8192\nmax_headers = 20", "").await;
    let send = |head: Vec<u8>| async move {
        let mut conn = TcpStream::connect(gw.proxy).await.unwrap();
        conn.write_all(&head).await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    };
    let big = format!("X-Big: {}\r\n", "b".repeat(9000));
    assert_eq!(
        send(gw.head(&big)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let many: String = (0..25).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    assert_eq!(
        send(gw.head(&many)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // Just under both limits is fine.
    let fine: String = (0..15)
        .map(|i| format!("X-H{i}: {}\r\n", "f".repeat(400)))
        .collect();
    let mut conn = TcpStream::connect(gw.proxy).await.unwrap();
    conn.write_all(&gw.head(&fine)).await.unwrap();
    assert_eq!(read_response(&mut conn).await, "HTTP/1.1 200 OK");
    assert_eq!(origin.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn connections_over_max_connections_get_503_until_one_closes() {
    let origin = Origin::start().await;
    let gw = gateway(&origin, "max_connections = 2", "").await;
    let open = || async {
        let text = gw.metrics.render();
        metric(&text, r#"vidgate_connections{listener="proxy"}"#)
    };
    let first = TcpStream::connect(gw.proxy).await.unwrap();
    let _second = TcpStream::connect(gw.proxy).await.unwrap();
    while open().await < 2.0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut third = TcpStream::connect(gw.proxy).await.unwrap();
    third.write_all(&gw.head("")).await.unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"], "too_many_connections");
    let text = gw.metrics.render();
    assert_eq!(
        metric(
            &text,
            r#"vidgate_connections_refused_total{listener="proxy"}"#
        ),
        1.0
    );
    assert_eq!(origin.count(), 0);

    // One closes: its slot is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open().await > 1.0 {
        assert!(
            Instant::now() < deadline,
            "the closed connection kept its slot"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut fourth = TcpStream::connect(gw.proxy).await.unwrap();
    fourth.write_all(&gw.head("")).await.unwrap();
    assert_eq!(read_response(&mut fourth).await, "HTTP/1.1 200 OK");
}

#[tokio::test(start_paused = true)]
async fn an_admin_body_over_max_body_gets_413_naming_the_limit() {
    let origin = Origin::start().await;
    let gw = gateway(&origin, "", "max_body = 1000").await;
    let post = |body: String| async move {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}/v1/authtokens", gw.admin))
            .header("authorization", format!("Bearer {PRIVATE_KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        Http::new().send(request).await
    };
    let json = r#"{"grants": {"read": "all"}}"#;
    let padded = |len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    assert_eq!(post(padded(1000)).await.status, StatusCode::CREATED);
    let refused = post(padded(1001)).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.json()["error"], "body_too_large");
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("1000 bytes"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_tls_handshake_not_done_within_the_header_timeout_is_closed() {
    let origin = Origin::start().await;
    let dir = common::pki::TempDir::new("limits-tls");
    let leaf = common::pki::Ca::new("limits CA").leaf();
    dir.write("server.pem", &leaf.cert_pem);
    dir.write("server.key", &leaf.key_pem);
    let tls = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\nheader_read_timeout = \"5s\"",
        dir.file("server.pem"),
        dir.file("server.key")
    );
    let gw = gateway(&origin, &tls, "").await;
    // The first bytes of a TLS record holding a ClientHello, and then nothing.
    let mut conn = TcpStream::connect(gw.proxy).await.unwrap();
    conn.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let closed = closed_after(&mut conn).await;
    assert!(
        closed >= Duration::from_secs(5) && closed < Duration::from_secs(6),
        "closed after {closed:?}, with header_read_timeout = 5s"
    );
    // A client that connects and says nothing at all is held no longer.
    let mut silent = TcpStream::connect(gw.proxy).await.unwrap();
    let closed = closed_after(&mut silent).await;
    assert!(
        closed >= Duration::from_secs(5) && closed < Duration::from_secs(6),
        "closed after {closed:?}"
    );
    let text = gw.metrics.render();
    assert_eq!(
        metric(&text, r#"vidgate_connections{listener="proxy"}"#),
        0.0
    );
}
