//! TLS on both sides, with certificates made in the test (rcgen):
//!
//! - the listener: curl gets HTTP/2 by ALPN and HTTP/1.1 on the same port, session cookies
//!   are `Secure` and `__Host-` prefixed, the origin hears `X-Forwarded-Proto: https`, and a
//!   reload swaps the certificate for new handshakes; an HTTP/2 download in flight finishes
//!   through the drain;
//! - `https://` origins: verified against `proxy.upstream_ca` (a wrong CA, or the public
//!   roots, refuse a private certificate with 502), spoken to in HTTP/1.1, or HTTP/2 by ALPN
//!   with `proxy.upstream_http2`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pki::{Ca, TempDir};
use common::{assert_error, curl, gateway_toml, Origin, TestGateway};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vidgate::config::Config;
use vidgate::tls::{server_config, CertSlot, Identity};

/// A TLS gateway in front of `upstream`: its certificate, signed by `ca`, written to `dir`,
/// as are its config file (`vidgate.toml`, for reloads) and the CA (`ca.pem`, for curl).
async fn tls_gateway(dir: &TempDir, ca: &Ca, upstream: SocketAddr) -> TestGateway {
    let leaf = ca.leaf();
    dir.write("server.pem", &leaf.cert_pem);
    dir.write("server.key", &leaf.key_pem);
    dir.write("ca.pem", &ca.cert_pem());
    let toml = gateway_toml(upstream).replace(
        "[proxy]\n",
        &format!(
            "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.file("server.pem"),
            dir.file("server.key")
        ),
    );
    let path = dir.write("vidgate.toml", &toml);
    TestGateway::from_config(Config::load(&path).expect("the TLS config loads")).await
}

fn https(gateway: &TestGateway, path_and_query: &str) -> String {
    format!("https://127.0.0.1:{}{path_and_query}", gateway.proxy.port())
}

#[tokio::test]
async fn curl_gets_http2_and_http1_on_one_tls_port_with_secure_session_cookies() {
    let origin = Origin::start().await;
    let dir = TempDir::new("tls-listener");
    let ca = Ca::new("vidgate test CA");
    let gateway = tls_gateway(&dir, &ca, origin.addr).await;
    let token = gateway
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 5}))
        .await;
    let cacert = dir.file("ca.pem");
    let url = https(&gateway, &format!("/v1/videos/v1?server_auth={token}"));

    let h2 = curl(&["--http2", "--cacert", &cacert, &url]).await;
    assert_eq!((h2.version.as_str(), h2.status), ("HTTP/2", 200), "{h2:?}");
    assert_eq!(h2.text(), "origin saw GET /v1/videos/v1");
    let cookie = h2.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with("__Host-vidgate_session_"), "{cookie}");
    for attribute in ["; Secure", "; HttpOnly", "; Path=/", "; SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let seen = origin.last();
    assert_eq!(seen.header_values("x-forwarded-proto"), ["https"]);
    assert!(
        !seen.head_text().contains(&token),
        "the credential was stripped"
    );

    let h1 = curl(&["--http1.1", "--cacert", &cacert, &url]).await;
    assert_eq!(
        (h1.version.as_str(), h1.status),
        ("HTTP/1.1", 200),
        "{h1:?}"
    );
    assert!(h1.header("set-cookie").unwrap().contains("; Secure"));

    // Denials travel over HTTP/2 the same way.
    let denied = curl(&[
        "--http2",
        "--cacert",
        &cacert,
        &https(&gateway, "/v1/videos/v1"),
    ])
    .await;
    assert_eq!((denied.version.as_str(), denied.status), ("HTTP/2", 401));
    assert_eq!(denied.json()["error"], "missing_token");

    // Without the CA, curl refuses the certificate: the listener really is the rcgen one.
    let untrusted = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", &url])
        .output()
        .unwrap();
    assert_eq!(
        untrusted.status.code(),
        Some(60),
        "curl's 'peer certificate' exit code"
    );
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_handshakes() {
    let origin = Origin::start().await;
    let dir = TempDir::new("tls-reload");
    let first = Ca::new("first CA");
    let gateway = tls_gateway(&dir, &first, origin.addr).await;
    let token = gateway
        .create_token(json!({"grants": {"read": "all"}}))
        .await;
    let url = https(&gateway, &format!("/v1/videos/v1?server_auth={token}"));
    dir.write("first.pem", &first.cert_pem());
    let trusts = |ca: &str| {
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "--cacert",
                ca,
                &url,
            ])
            .output()
            .unwrap();
        output.status.code()
    };
    let first_pem = dir.file("first.pem");
    assert_eq!(trusts(&first_pem), Some(0));

    // A certificate from another CA, written over the files the config names.
    let second = Ca::new("second CA");
    let leaf = second.leaf();
    dir.write("server.pem", &leaf.cert_pem);
    dir.write("server.key", &leaf.key_pem);
    dir.write("second.pem", &second.cert_pem());
    let second_pem = dir.file("second.pem");
    assert_eq!(trusts(&second_pem), Some(60), "not reloaded yet");
    let need_restart = gateway
        .reloader
        .reload_from(&dir.path().join("vidgate.toml"))
        .expect("the new certificate loads");
    assert!(need_restart.is_empty(), "{need_restart:?}");
    assert_eq!(trusts(&second_pem), Some(0));
    assert_eq!(trusts(&first_pem), Some(60));

    // A key that is not the certificate's: the reload is refused, the certificate stays.
    dir.write("server.key", &second.leaf().key_pem);
    let error = gateway
        .reloader
        .reload_from(&dir.path().join("vidgate.toml"))
        .expect_err("a mismatched pair is refused");
    assert!(error.to_string().contains("proxy.tls_key"), "{error}");
    assert_eq!(trusts(&second_pem), Some(0));
    let metrics = gateway.scrape().await;
    assert_eq!(
        common::metric(
            &metrics,
            r#"vidgate_config_reloads_total{outcome="applied"}"#
        ),
        1.0
    );
    assert_eq!(
        common::metric(
            &metrics,
            r#"vidgate_config_reloads_total{outcome="refused"}"#
        ),
        1.0
    );
}

// ---------------------------------------------------------------------------------------------
// https:// origins
// ---------------------------------------------------------------------------------------------

/// An `https://` origin on `127.0.0.1:0` with a certificate signed by `ca`, speaking HTTP/1.1
/// or HTTP/2 (by ALPN), that answers `origin saw <version> <method> <path>`.
struct TlsOrigin {
    addr: SocketAddr,
    versions: Arc<Mutex<Vec<http::Version>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsOrigin {
    async fn start(ca: &Ca) -> TlsOrigin {
        let leaf = ca.leaf();
        let identity = Identity::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap();
        let acceptor = TlsAcceptor::from(server_config(CertSlot::new(identity)).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let versions = Arc::new(Mutex::new(Vec::new()));
        let seen = versions.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request: Request<Incoming>| {
                        seen.lock().unwrap().push(request.version());
                        let text = format!(
                            "origin saw {:?} {} {}",
                            request.version(),
                            request.method(),
                            request.uri().path()
                        );
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text)))) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsOrigin {
            addr,
            versions,
            task,
        }
    }
}

/// A plain gateway in front of the https origin, with `extra` lines in `[proxy]`.
async fn gateway_to(origin: &TlsOrigin, extra: &str) -> TestGateway {
    let toml = gateway_toml(origin.addr)
        .replace("upstream = \"http://", "upstream = \"https://")
        .replace("[proxy]\n", &format!("[proxy]\n{extra}\n"));
    TestGateway::from_toml(&toml).await
}

#[tokio::test]
async fn an_https_origin_is_verified_against_upstream_ca_and_spoken_to_in_http1() {
    let ca = Ca::new("origin CA");
    let origin = TlsOrigin::start(&ca).await;
    let dir = TempDir::new("tls-origin");
    dir.write("ca.pem", &ca.cert_pem());
    let gateway = gateway_to(
        &origin,
        &format!("upstream_ca = \"{}\"", dir.file("ca.pem")),
    )
    .await;
    let token = gateway
        .create_token(json!({"grants": {"read": "all"}}))
        .await;

    let reply = gateway
        .get(&format!("/v1/videos/v1?server_auth={token}"))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), "origin saw HTTP/1.1 GET /v1/videos/v1");
    assert_eq!(*origin.versions.lock().unwrap(), [http::Version::HTTP_11]);
}

#[tokio::test]
async fn upstream_http2_speaks_h2_to_an_https_origin_by_alpn() {
    let ca = Ca::new("origin CA");
    let origin = TlsOrigin::start(&ca).await;
    let dir = TempDir::new("tls-origin-h2");
    dir.write("ca.pem", &ca.cert_pem());
    let gateway = gateway_to(
        &origin,
        &format!(
            "upstream_ca = \"{}\"\nupstream_http2 = true",
            dir.file("ca.pem")
        ),
    )
    .await;
    let token = gateway
        .create_token(json!({"grants": {"read": "all"}}))
        .await;
    for _ in 0..3 {
        let reply = gateway
            .get(&format!("/v1/videos/v1?server_auth={token}"))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.text(), "origin saw HTTP/2.0 GET /v1/videos/v1");
    }
    assert_eq!(*origin.versions.lock().unwrap(), [http::Version::HTTP_2; 3]);
}

#[tokio::test]
async fn an_origin_certificate_from_an_untrusted_ca_is_refused_with_502() {
    let ca = Ca::new("origin CA");
    let origin = TlsOrigin::start(&ca).await;
    let dir = TempDir::new("tls-origin-untrusted");
    dir.write("other.pem", &Ca::new("some other CA").cert_pem());
    // Pinned to another CA, and with the public roots (no upstream_ca): both refuse it.
    for extra in [
        format!("upstream_ca = \"{}\"", dir.file("other.pem")),
        String::new(),
    ] {
        let gateway = gateway_to(&origin, &extra).await;
        let token = gateway
            .create_token(json!({"grants": {"read": "all"}}))
            .await;
        let reply = gateway
            .get(&format!("/v1/videos/v1?server_auth={token}"))
            .await;
        assert_error(&reply, 502, "upstream_unavailable");
        assert!(
            origin.versions.lock().unwrap().is_empty(),
            "{extra}: nothing reached it"
        );
    }
}

#[tokio::test]
async fn an_http2_download_in_flight_finishes_through_the_drain() {
    let origin = Origin::start().await;
    let dir = TempDir::new("tls-drain");
    let ca = Ca::new("drain CA");
    let mut gateway = tls_gateway(&dir, &ca, origin.addr).await;
    let token = gateway
        .create_token(json!({"grants": {"read": "all"}}))
        .await;
    let out = dir.file("download");
    let mut download = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--no-buffer",
            "--fail",
            "--max-time",
            "30",
        ])
        .args(["--cacert", &dir.file("ca.pem"), "-o", &out])
        .arg(https(
            &gateway,
            &format!("/v1/videos/v1/drip?server_auth={token}"),
        ))
        .spawn()
        .unwrap();
    let first_chunk = async {
        while std::fs::metadata(&out).map_or(0, |m| m.len()) < common::DRIP_CHUNK as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), first_chunk)
        .await
        .expect("the first chunk arrives");

    gateway.signal_shutdown();
    let refused = async {
        loop {
            match tokio::net::TcpStream::connect(gateway.proxy).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("new connections are refused once the drain begins");
    origin.release_drip();
    let finished = download.wait().await.unwrap();
    assert!(
        finished.success(),
        "the HTTP/2 download was cut: {finished}"
    );
    let body = std::fs::read(&out).unwrap();
    assert_eq!(
        body,
        common::pattern(0, common::DRIP_CHUNKS * common::DRIP_CHUNK)
    );
    gateway
        .finished(Duration::from_secs(5))
        .await
        .expect("run returns once drained");
}
