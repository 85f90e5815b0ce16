//! Tests of the configuration: parsing, defaults, validation, resolving and error locations.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::route::{self, Unmatched};
use crate::testing::TempFile;
use http::uri::Scheme;

const EXAMPLE: &str = include_str!("../../config/vidgate.toml");

/// The error `text` gives, which must be one.
fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e,
    }
}

/// Assert an error's key, line and a piece of its message, and that its `Display` is the
/// one line `line N: key: message`.
#[track_caller]
fn assert_err(e: &ConfigError, key: &str, line: usize, message_part: &str) {
    assert_eq!(e.key(), Some(key), "key of {e}");
    assert_eq!(e.line(), Some(line), "line of {e}");
    assert!(e.message().contains(message_part), "message of {e}");
    assert_eq!(
        e.to_string(),
        format!("line {line}: {key}: {}", e.message())
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// A real key pair (the test keys of `tests/keys/`): `Config::load` checks that a
/// private key is its public key's pair.
const ED25519_PUBLIC: &str = include_str!("../../tests/keys/ed25519.pub.pem");
const ED25519_PRIVATE: &str = include_str!("../../tests/keys/ed25519.key.pem");

#[test]
fn an_empty_file_gives_every_default() {
    let c = Config::from_toml_str("").expect("empty config");
    assert_eq!(c, Config::default());

    assert_eq!(c.proxy.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.proxy.upstream, None);
    assert_eq!(c.proxy.tls_cert, None);
    assert_eq!(c.proxy.tls_key, None);
    assert!(!c.proxy.tls_enabled());
    assert_eq!(c.proxy.prefixes, ["/v1/applications/{app}", "/v1", ""]);
    assert_eq!(c.proxy.unmatched, Unmatched::Deny);
    assert!(c.proxy.bearer_auth);
    assert_eq!(c.proxy.cookie_same_site, SameSite::Lax);
    assert_eq!(c.proxy.connect_timeout.get(), Duration::from_secs(2));
    assert_eq!(c.proxy.response_timeout.get(), Duration::from_secs(30));
    assert_eq!(c.proxy.shutdown_timeout.get(), Duration::from_secs(30));
    assert_eq!(c.proxy.cors, None);

    assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.admin.app_token, None);
    assert_eq!(c.admin.private_key, None);
    assert_eq!(c.admin.private_key_env, None);
    assert_eq!(c.admin.max_body, 1_048_576);
    assert_eq!(c.admin_key(), None);

    assert_eq!(c.store.backend, StoreBackend::Memory);
    assert_eq!(c.store.redis_url, "redis://127.0.0.1:6379");
    assert_eq!(c.store.key_prefix, "vidgate:");
    assert_eq!(c.store.sweep_interval.get(), Duration::from_secs(1));
    assert_eq!(c.store.expired_retention.get(), Duration::from_secs(86_400));
    assert_eq!(c.store.snapshot_path, None);

    assert_eq!(c.client_tokens.leeway.get(), Duration::from_secs(5));
    assert_eq!(
        c.client_tokens.counter_ttl.get(),
        Duration::from_secs(30 * 86_400)
    );
    assert!(c.client_tokens.jwt_keys.is_empty());
    assert_eq!(c.client_tokens.ziggeo, None);

    assert_eq!(c.log.format, LogFormat::Text);
}

#[test]
fn empty_sections_give_the_defaults_too() {
    let c = Config::from_toml_str("[proxy]\n[admin]\n[store]\n[client_tokens]\n[log]\n")
        .expect("empty sections");
    assert_eq!(c, Config::default());
}

#[test]
fn every_key_is_parsed() {
    let text = format!(
        r#"
[proxy]
listen = "0.0.0.0:8443"
upstream = "https://videos.example.com:8443/"
tls_cert = "certs/server.pem"
tls_key = "certs/server.key"
prefixes = ["/api/{{app}}", ""]
unmatched = "pass"
bearer_auth = false
cookie_same_site = "none"
connect_timeout = "250ms"
response_timeout = "1m"
shutdown_timeout = "5s"

[proxy.cors]
allowed_origins = ["https://example.com", "http://localhost:3000"]

[admin]
listen = "[::1]:9191"
app_token = "demo-app"
private_key = "change-me"
max_body = 65536

[store]
backend = "memory"
redis_url = "rediss://cache.internal:6380/2"
key_prefix = "vg:"
sweep_interval = "500ms"
expired_retention = "2h"
snapshot_path = "data/vidgate.snapshot"

[client_tokens]
leeway = "0s"
counter_ttl = "7d"

[[client_tokens.jwt_keys]]
kid = "k1"
alg = "HS256"
secret = "s3cret"

[[client_tokens.jwt_keys]]
kid = "k2"
alg = "HS512"
secret_env = "VIDGATE_K2"

[[client_tokens.jwt_keys]]
kid = "k3"
alg = "EdDSA"
public_key_pem = """
{ED25519_PUBLIC}"""
private_key_pem = "keys/k3.pem"

[client_tokens.ziggeo]
application_token = "demo-app"
encryption_key = "zkey"

[log]
format = "json"
"#
    );
    let c = Config::from_toml_str(&text).expect("full config");

    let p = &c.proxy;
    assert_eq!(p.listen, "0.0.0.0:8443".parse().unwrap());
    let up = p.upstream.as_ref().expect("upstream");
    assert_eq!(up.scheme(), "https");
    assert!(up.is_https());
    assert_eq!(up.scheme_http(), Scheme::HTTPS);
    assert_eq!(up.authority().as_str(), "videos.example.com:8443");
    assert_eq!(up.host(), "videos.example.com");
    assert_eq!(up.port(), 8443);
    assert_eq!(up.to_string(), "https://videos.example.com:8443");
    assert_eq!(up.uri(), "https://videos.example.com:8443/");
    assert_eq!(p.tls_cert.as_deref(), Some(Path::new("certs/server.pem")));
    assert_eq!(p.tls_key.as_deref(), Some(Path::new("certs/server.key")));
    assert!(p.tls_enabled());
    assert_eq!(p.tls_cert_pem(), None, "not read without resolve");
    assert_eq!(p.prefixes, ["/api/{app}", ""]);
    assert_eq!(p.unmatched, Unmatched::Pass);
    assert!(!p.bearer_auth);
    assert_eq!(p.cookie_same_site, SameSite::None);
    assert_eq!(p.connect_timeout.get(), Duration::from_millis(250));
    assert_eq!(p.response_timeout.get(), Duration::from_secs(60));
    assert_eq!(p.shutdown_timeout.get(), Duration::from_secs(5));
    assert_eq!(
        p.cors.as_ref().expect("cors").allowed_origins,
        ["https://example.com", "http://localhost:3000"]
    );

    let a = &c.admin;
    assert_eq!(a.listen, "[::1]:9191".parse().unwrap());
    assert_eq!(a.app_token.as_deref(), Some("demo-app"));
    assert_eq!(a.private_key, Some(Secret::new("change-me")));
    assert_eq!(a.private_key_env, None);
    assert_eq!(a.max_body, 65_536);
    assert_eq!(c.admin_key(), Some("change-me"));

    let s = &c.store;
    assert_eq!(s.backend, StoreBackend::Memory);
    assert_eq!(s.redis_url, "rediss://cache.internal:6380/2");
    assert_eq!(s.key_prefix, "vg:");
    assert_eq!(s.sweep_interval.get(), Duration::from_millis(500));
    assert_eq!(s.expired_retention.get(), Duration::from_secs(7200));
    assert_eq!(
        s.snapshot_path.as_deref(),
        Some(Path::new("data/vidgate.snapshot"))
    );

    let t = &c.client_tokens;
    assert_eq!(t.leeway.get(), Duration::ZERO);
    assert_eq!(t.counter_ttl.get(), Duration::from_secs(7 * 86_400));
    assert_eq!(t.jwt_keys.len(), 3);
    let k1 = &t.jwt_keys[0];
    assert_eq!((k1.kid.as_str(), k1.alg), ("k1", JwtAlg::Hs256));
    assert_eq!(k1.resolved_secret(), Some(&b"s3cret"[..]));
    assert_eq!(k1.resolved_public_key_pem(), None);
    let k2 = &t.jwt_keys[1];
    assert_eq!((k2.kid.as_str(), k2.alg), ("k2", JwtAlg::Hs512));
    assert_eq!(k2.secret_env.as_deref(), Some("VIDGATE_K2"));
    assert_eq!(k2.resolved_secret(), None, "env not read without resolve");
    let k3 = &t.jwt_keys[2];
    assert_eq!((k3.kid.as_str(), k3.alg), ("k3", JwtAlg::EdDsa));
    assert_eq!(k3.resolved_public_key_pem(), Some(ED25519_PUBLIC));
    assert_eq!(k3.private_key_pem, Some(Secret::new("keys/k3.pem")));
    assert_eq!(k3.resolved_private_key_pem(), None, "a path, not read yet");
    let z = t.ziggeo.as_ref().expect("ziggeo");
    assert_eq!(z.application_token, "demo-app");
    assert_eq!(z.resolved_encryption_key(), Some("zkey"));

    assert_eq!(c.log.format, LogFormat::Json);

    // The table the composition root builds from these keys.
    let routes = route::Routes::new(
        &c.proxy.prefixes,
        c.admin.app_token.as_deref(),
        c.proxy.unmatched,
    )
    .expect("routes");
    assert_eq!(
        routes.route(&http::Method::GET, "/api/demo-app/videos/v1"),
        Ok(route::Route::Video {
            action: crate::token::Action::Read,
            video: Some("v1".to_owned()),
            whole_video: true,
        })
    );
    assert_eq!(
        routes.route(&http::Method::GET, "/api/other-app/videos/v1/x"),
        Err(route::RouteError::NoRoute),
        "{{app}} matches admin.app_token only"
    );
}

#[test]
fn the_example_file_is_valid_and_says_the_defaults() {
    // Every default, and the one key without a default that `vidgate serve` needs.
    let mut expected = Config::default();
    expected.proxy.upstream = Some("http://127.0.0.1:9000".parse().unwrap());
    let c = Config::from_toml_str(EXAMPLE).expect("config/vidgate.toml");
    assert_eq!(c, expected);
    // It is what `vidgate serve` loads: no env var or file may be needed.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vidgate.toml");
    let loaded = Config::load(&path).expect("load config/vidgate.toml");
    assert_eq!(loaded, expected);
}

#[test]
fn the_example_file_shows_every_key() {
    let keys = [
        "listen",
        "upstream",
        "tls_cert",
        "tls_key",
        "prefixes",
        "unmatched",
        "bearer_auth",
        "cookie_same_site",
        "connect_timeout",
        "response_timeout",
        "shutdown_timeout",
        "[proxy.cors]",
        "allowed_origins",
        "app_token",
        "private_key",
        "private_key_env",
        "max_body",
        "backend",
        "redis_url",
        "key_prefix",
        "sweep_interval",
        "expired_retention",
        "snapshot_path",
        "leeway",
        "counter_ttl",
        "[[client_tokens.jwt_keys]]",
        "kid",
        "alg",
        "secret_env",
        "public_key_pem",
        "private_key_pem",
        "[client_tokens.ziggeo]",
        "application_token",
        "encryption_key_env",
        "format",
    ];
    for key in keys {
        let shown = EXAMPLE.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} =")) || l == key
        });
        assert!(shown, "{key} is not shown in config/vidgate.toml");
    }
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let e = err("bogus = 1\n");
    assert_err(&e, "bogus", 1, "unknown key");
    assert!(
        e.message()
            .contains("proxy, admin, store, client_tokens, log"),
        "{e}"
    );
    assert_eq!(e.kind(), ConfigErrorKind::Parse);

    let e = err("[proxy]\nlisten = \"127.0.0.1:1\"\n\nconect_timeout = \"2s\"\n");
    assert_err(&e, "proxy.conect_timeout", 4, "unknown key");
    assert!(e.message().contains("connect_timeout"), "{e}");

    let e = err("[proxy.cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n");
    assert_err(&e, "proxy.cors.allow_credentials", 3, "unknown key");

    let e = err(
        "[client_tokens]\n\n[[client_tokens.jwt_keys]]\nkid = \"a\"\nalg = \"HS256\"\n\
             secret = \"x\"\n\n[[client_tokens.jwt_keys]]\nkid = \"b\"\nalg = \"HS256\"\n\
             secrett = \"y\"\n",
    );
    assert_err(&e, "client_tokens.jwt_keys[1].secrett", 11, "unknown key");

    let e = err("[logging]\nformat = \"json\"\n");
    assert_err(&e, "logging", 1, "unknown key");
}

#[test]
fn durations_need_a_unit() {
    let e = err("[proxy]\n\nconnect_timeout = \"5 parsecs\"\n");
    assert_err(
        &e,
        "proxy.connect_timeout",
        3,
        "\"5 parsecs\" is not a duration (write e.g. \"5s\" or \"250ms\")",
    );

    let e = err("[store]\nexpired_retention = 3600\n");
    assert_err(
        &e,
        "store.expired_retention",
        2,
        "write the duration as a string",
    );
    assert!(e.message().contains("\"3600s\""), "{e}");

    let e = err("[client_tokens]\nleeway = 1.5\n");
    assert_err(&e, "client_tokens.leeway", 2, "has no unit");

    let c = Config::from_toml_str("[store]\nsweep_interval = \"1m 30s\"\n").expect("1m 30s");
    assert_eq!(c.store.sweep_interval.get(), Duration::from_secs(90));
    assert_eq!(c.store.sweep_interval.to_string(), "1m 30s");
}

#[test]
fn zero_is_refused_where_it_would_break_things() {
    for (section, key) in [
        ("proxy", "connect_timeout"),
        ("proxy", "response_timeout"),
        ("proxy", "shutdown_timeout"),
        ("store", "sweep_interval"),
        ("client_tokens", "counter_ttl"),
    ] {
        let e = err(&format!("# zero\n[{section}]\n{key} = \"0s\"\n"));
        assert_err(&e, &format!("{section}.{key}"), 3, "must be more than zero");
        assert_eq!(e.kind(), ConfigErrorKind::Invalid);
    }
    let c = Config::from_toml_str(
        "[store]\nexpired_retention = \"0s\"\n[client_tokens]\nleeway = \"0ms\"\n",
    )
    .expect("zero retention and leeway are allowed");
    assert!(c.store.expired_retention.is_zero());
    assert!(c.client_tokens.leeway.is_zero());
}

#[test]
fn listen_addresses_must_be_socket_addresses() {
    let e = err("[proxy]\nlisten = \"localhost:8080\"\n");
    assert_err(
        &e,
        "proxy.listen",
        2,
        "\"localhost:8080\" is not a listen address",
    );

    let e = err("[admin]\nlisten = \"127.0.0.1\"\n");
    assert_err(&e, "admin.listen", 2, "write e.g. \"127.0.0.1:8080\"");

    let e = err("[admin]\nlisten = 9090\n");
    assert_err(&e, "admin.listen", 2, "invalid type");

    let e = err("[proxy]\nlisten = \"127.0.0.1:7000\"\n[admin]\nlisten = \"127.0.0.1:7000\"\n");
    assert_err(&e, "admin.listen", 4, "needs its own listener");

    let c = Config::from_toml_str(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("two ephemeral ports");
    assert_eq!(c.proxy.listen.port(), 0);
}

#[test]
fn upstreams_are_origins_only() {
    let cases = [
        (
            "ftp://videos.example.com",
            "must start with http:// or https://",
        ),
        ("http://127.0.0.1:9000/videos", "must not have a path"),
        ("http://127.0.0.1:9000/?a=b", "must not have a query"),
        ("http://user:pw@127.0.0.1:9000", "user name or password"),
        ("/just/a/path", "has no scheme"),
        ("127.0.0.1:9000", "has no scheme"),
        ("http://", "is not a URL"),
        ("http://:9000", "has no host"),
        ("http://host:99999", "invalid port"),
        ("http://host:0", "port 0"),
        ("http://host#top", "fragment"),
        ("not a url", "is not a URL"),
    ];
    for (value, problem) in cases {
        let e = err(&format!("\n[proxy]\nupstream = \"{value}\"\n"));
        assert_err(&e, "proxy.upstream", 3, problem);
        assert!(e.message().contains(value), "{e}");
    }

    for (value, https, authority, port) in [
        ("http://127.0.0.1:9000", false, "127.0.0.1:9000", 9000),
        ("http://127.0.0.1:9000/", false, "127.0.0.1:9000", 9000),
        (
            "HTTPS://Videos.Example.com",
            true,
            "Videos.Example.com",
            443,
        ),
        ("http://[::1]", false, "[::1]", 80),
    ] {
        let up: UpstreamUrl = value.parse().expect(value);
        assert_eq!(up.is_https(), https, "{value}");
        assert_eq!(up.authority().as_str(), authority, "{value}");
        assert_eq!(up.port(), port, "{value}");
        assert_eq!(up.uri().path(), "/", "{value}");
        assert_eq!(up.uri().authority(), Some(up.authority()), "{value}");
    }
}

#[test]
fn tls_needs_both_files() {
    let e = err("[proxy]\ntls_cert = \"certs/server.pem\"\n");
    assert_err(&e, "proxy.tls_cert", 2, "without proxy.tls_key");

    let e = err("[proxy]\nlisten = \"127.0.0.1:8443\"\ntls_key = \"certs/server.key\"\n");
    assert_err(&e, "proxy.tls_key", 3, "without proxy.tls_cert");
}

#[test]
fn bad_prefixes_are_refused_with_the_route_table_s_reason() {
    let e = err("[proxy]\nprefixes = [\n  \"/v1\",\n  \"/api/\",\n]\n");
    assert_err(
        &e,
        "proxy.prefixes",
        2,
        "route prefix \"/api/\" must not end with '/'",
    );

    let e = err("[proxy]\nprefixes = \"/v1\"\n");
    assert_err(&e, "proxy.prefixes", 2, "expected an array");

    let e = err("[proxy]\nprefixes = []\n");
    assert_err(&e, "proxy.prefixes", 2, "no route prefix is configured");

    let e = err("[proxy]\nprefixes = [\"/x/{application}\"]\n");
    assert_err(&e, "proxy.prefixes", 2, "placeholder");
}

#[test]
fn unmatched_same_site_backend_and_log_format_take_their_words_only() {
    let e = err("[proxy]\nunmatched = \"allow\"\n");
    assert_err(
        &e,
        "proxy.unmatched",
        2,
        "unknown variant `allow`, expected `deny` or `pass`",
    );

    let e = err("[proxy]\ncookie_same_site = \"strict\"\n");
    assert_err(&e, "proxy.cookie_same_site", 2, "unknown variant `strict`");

    let e = err("[log]\nformat = \"yaml\"\n");
    assert_err(&e, "log.format", 2, "unknown variant `yaml`");

    let e = err("[proxy]\nbearer_auth = \"yes\"\n");
    assert_err(&e, "proxy.bearer_auth", 2, "invalid type");

    assert_eq!(SameSite::Lax.as_str(), "Lax");
    assert_eq!(SameSite::None.as_str(), "None");
}

#[test]
fn the_redis_backend_is_refused_for_now() {
    let e = err("[store]\nkey_prefix = \"x:\"\nbackend = \"redis\"\n");
    assert_err(
        &e,
        "store.backend",
        3,
        "the redis backend is not available in this build yet",
    );

    let e = err("[store]\nredis_url = \"http://127.0.0.1:6379\"\n");
    assert_err(&e, "store.redis_url", 2, "is not a Redis URL");
}

#[test]
fn admin_keys() {
    let e = err("[admin]\nprivate_key = \"a\"\nprivate_key_env = \"B\"\n");
    assert_err(&e, "admin.private_key_env", 3, "not both");

    let e = err("[admin]\nprivate_key = \"\"\n");
    assert_err(&e, "admin.private_key", 2, "must not be empty");

    let e = err("[admin]\napp_token = \"a/b\"\n");
    assert_err(&e, "admin.app_token", 2, "path segment");

    let e = err("[admin]\nmax_body = 0\n");
    assert_err(&e, "admin.max_body", 2, "more than zero");

    let e = err("[admin]\nmax_body = \"1MiB\"\n");
    assert_err(&e, "admin.max_body", 2, "write a number of bytes");

    let e = err("[admin]\nmax_body = -1\n");
    assert_err(&e, "admin.max_body", 2, "-1 is not a number of bytes");

    let c = Config::from_toml_str("[admin]\nprivate_key_env = \"SOME_VAR\"\n").expect("env");
    assert_eq!(c.admin_key(), None, "from_toml_str reads no environment");
}

#[test]
fn cors_origins_are_exact_origins() {
    let ok = Config::from_toml_str(
        "[proxy.cors]\nallowed_origins = [\"https://example.com\", \"http://localhost:3000\", \
             \"capacitor://localhost\", \"http://[::1]:8000\"]\n",
    )
    .expect("origins");
    assert_eq!(ok.proxy.cors.expect("cors").allowed_origins.len(), 4);
    let any = Config::from_toml_str("[proxy.cors]\nallowed_origins = [\"*\"]\n").expect("*");
    assert_eq!(any.proxy.cors.expect("cors").allowed_origins, ["*"]);

    for (value, problem) in [
        ("https://example.com/", "with no path"),
        ("https://example.com/app", "with no path"),
        ("example.com", "must be scheme://host[:port]"),
        ("https://Example.com", "lower case"),
        ("https://example.com:443", "browsers omit the default port"),
        ("http://example.com:80", "browsers omit the default port"),
        ("https://example.com:99999", "invalid port"),
        ("https://exa mple.com", "invalid host or port"),
    ] {
        let e = err(&format!(
            "[proxy.cors]\nallowed_origins = [\n  \"https://ok.example\",\n  \"{value}\",\n]\n"
        ));
        assert_err(&e, "proxy.cors.allowed_origins[1]", 2, problem);
    }

    let e = err("[proxy.cors]\nallowed_origins = [\"*\", \"https://a.example\"]\n");
    assert_err(&e, "proxy.cors.allowed_origins", 2, "list it alone");

    let e = err("[proxy]\n[proxy.cors]\n");
    assert_err(&e, "proxy.cors.allowed_origins", 2, "is empty");
}

fn jwt(keys: &str) -> String {
    format!("[client_tokens]\nleeway = \"5s\"\n{keys}")
}

#[test]
fn jwt_keys_are_checked() {
    // Lines: 1 [client_tokens], 2 leeway, 3 header, 4 kid, 5 alg, 6 third key...
    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"none\"\n",
    ));
    assert_err(
        &e,
        "client_tokens.jwt_keys[0].alg",
        5,
        "unknown variant `none`",
    );
    assert!(
        e.message().contains("`HS256`") && e.message().contains("`RS256`"),
        "{e}"
    );

    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\n",
    ));
    assert_err(
        &e,
        "client_tokens.jwt_keys[0].secret",
        3,
        "an HS256 key needs secret or secret_env",
    );

    let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS384\"\nsecret = \"a\"\nsecret_env = \"B\"\n",
        ));
    assert_err(&e, "client_tokens.jwt_keys[0].secret_env", 7, "not both");

    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nalg = \"HS256\"\nsecret = \"a\"\n",
    ));
    assert_err(&e, "client_tokens.jwt_keys[0].kid", 3, "is required");

    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nkid = \"\"\nalg = \"HS256\"\nsecret = \"a\"\n",
    ));
    assert_err(&e, "client_tokens.jwt_keys[0].kid", 4, "must not be empty");

    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"a\"\n\
             [[client_tokens.jwt_keys]]\nkid = \"k2\"\nalg = \"HS256\"\nsecret = \"b\"\n\
             [[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS512\"\nsecret = \"c\"\n",
    ));
    assert_err(
        &e,
        "client_tokens.jwt_keys[2].kid",
        12,
        "\"k1\" is already the kid of client_tokens.jwt_keys[0]",
    );

    let e = err(&jwt(
        "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"ES256\"\n",
    ));
    assert_err(
        &e,
        "client_tokens.jwt_keys[0].public_key_pem",
        3,
        "an ES256 key needs public_key_pem",
    );

    let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"RS256\"\nsecret = \"a\"\npublic_key_pem = \"k.pem\"\n",
        ));
    assert_err(&e, "client_tokens.jwt_keys[0].secret", 6, "is a key pair");

    let e = err(&jwt(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"a\"\npublic_key_pem = \"k.pem\"\n",
        ));
    assert_err(
        &e,
        "client_tokens.jwt_keys[0].public_key_pem",
        7,
        "is a shared secret",
    );

    let e = err(&jwt(&format!(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"EdDSA\"\npublic_key_pem = '''\n{ED25519_PRIVATE}'''\n"
        )));
    assert_err(
        &e,
        "client_tokens.jwt_keys[0].public_key_pem",
        6,
        "holds a PEM PRIVATE KEY, expected a PUBLIC KEY",
    );
}

#[test]
fn ziggeo_needs_a_token_and_a_key() {
    let e = err("[client_tokens.ziggeo]\napplication_token = \"app\"\n");
    assert_err(&e, "client_tokens.ziggeo.encryption_key", 1, "is required");

    let e = err("[client_tokens.ziggeo]\nencryption_key = \"k\"\n");
    assert_err(
        &e,
        "client_tokens.ziggeo.application_token",
        1,
        "is required",
    );

    let e = err("[client_tokens.ziggeo]\napplication_token = \"\"\nencryption_key = \"k\"\n");
    assert_err(
        &e,
        "client_tokens.ziggeo.application_token",
        2,
        "must not be empty",
    );

    let e = err(
            "[client_tokens.ziggeo]\napplication_token = \"a\"\nencryption_key = \"k\"\nencryption_key_env = \"K\"\n",
        );
    assert_err(&e, "client_tokens.ziggeo.encryption_key_env", 4, "not both");
}

#[test]
fn syntax_errors_give_the_line() {
    let e = err("[proxy]\nlisten = \"127.0.0.1:8080\"\nbearer_auth = \n");
    assert_eq!(e.line(), Some(3), "{e}");
    assert_eq!(e.kind(), ConfigErrorKind::Parse);
    assert!(e.to_string().starts_with("line 3: "), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");

    let e = err("[proxy]\n[proxy]\n");
    assert_eq!(e.line(), Some(2), "{e}");
}

#[test]
fn load_names_the_file_and_resolves_env_vars() {
    // PATH is set wherever tests run; reading it needs no `set_var`.
    let path = std::env::var("PATH").expect("PATH is set");
    let file = TempFile::new(
        "env.toml",
        "[admin]\nprivate_key_env = \"PATH\"\n\n[[client_tokens.jwt_keys]]\nkid = \"k\"\n\
             alg = \"HS256\"\nsecret_env = \"PATH\"\n[client_tokens.ziggeo]\n\
             application_token = \"a\"\nencryption_key_env = \"PATH\"\n",
    );
    let c = Config::load(&file.0).expect("load");
    assert_eq!(c.admin_key(), Some(path.as_str()));
    assert_eq!(
        c.client_tokens.jwt_keys[0].resolved_secret(),
        Some(path.as_bytes())
    );
    assert_eq!(
        c.client_tokens
            .ziggeo
            .as_ref()
            .and_then(|z| z.resolved_encryption_key()),
        Some(path.as_str())
    );
}

#[test]
fn a_missing_env_var_is_an_error_naming_the_key_and_line() {
    let var = "VIDGATE_TEST_SURELY_UNSET_9d1c7e_PRIVATE_KEY";
    assert!(std::env::var_os(var).is_none());
    let file = TempFile::new(
        "missing-env.toml",
        &format!("[proxy]\n\n[admin]\nprivate_key_env = \"{var}\"\n"),
    );
    let e = Config::load(&file.0).expect_err("unset env var");
    assert_eq!(e.kind(), ConfigErrorKind::Resolve);
    assert_eq!(e.key(), Some("admin.private_key_env"));
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.file(), Some(file.0.as_path()));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: admin.private_key_env: environment variable {var} is not set",
            file.0.display()
        )
    );
}

#[test]
fn pem_files_are_read_at_load_time() {
    let public = TempFile::new("k.pub.pem", ED25519_PUBLIC);
    let private = TempFile::new("k.pem", ED25519_PRIVATE);
    let file = TempFile::new(
        "pem.toml",
        &format!(
            "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"EdDSA\"\npublic_key_pem = \"{}\"\n\
                 private_key_pem = \"{}\"\n",
            public.toml(),
            private.toml()
        ),
    );
    let c = Config::load(&file.0).expect("load");
    let key = &c.client_tokens.jwt_keys[0];
    assert_eq!(key.resolved_public_key_pem(), Some(ED25519_PUBLIC));
    assert_eq!(key.resolved_private_key_pem(), Some(ED25519_PRIVATE));
}

#[test]
fn a_pem_path_that_does_not_exist_is_an_error_naming_the_key_and_line() {
    let missing = std::env::temp_dir().join("vidgate-config-test-surely-missing.pem");
    let file = TempFile::new(
        "missing-pem.toml",
        &format!(
            "[client_tokens]\n\n[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"RS256\"\n\
                 public_key_pem = \"{}\"\n",
            missing.display().to_string().replace('\\', "\\\\")
        ),
    );
    let e = Config::load(&file.0).expect_err("missing PEM file");
    assert_eq!(e.kind(), ConfigErrorKind::Resolve);
    assert_eq!(e.key(), Some("client_tokens.jwt_keys[0].public_key_pem"));
    assert_eq!(e.line(), Some(6));
    assert!(
        e.to_string().starts_with(&format!(
            "{}:6: client_tokens.jwt_keys[0].public_key_pem: cannot read {}: ",
            file.0.display(),
            missing.display()
        )),
        "{e}"
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "the io error is kept"
    );

    // A file that is not the PEM expected is refused too.
    let wrong = TempFile::new("wrong.pem", "just text\n");
    let file = TempFile::new(
        "wrong-pem.toml",
        &format!(
            "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"RS256\"\npublic_key_pem = \"{}\"\n",
            wrong.toml()
        ),
    );
    let e = Config::load(&file.0).expect_err("not PEM");
    assert_eq!(e.key(), Some("client_tokens.jwt_keys[0].public_key_pem"));
    assert_eq!(e.line(), Some(4));
    assert!(
        e.message()
            .ends_with("is not PEM text (expected -----BEGIN ...PUBLIC KEY-----)"),
        "{e}"
    );
}

#[test]
fn tls_files_are_read_and_checked_at_load_time() {
    // Whether the pair parses and belongs together is the composition root's to say:
    // `server/tests.rs` has it.
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = pair.cert.pem();
    let key_pem = pair.signing_key.serialize_pem();
    let cert = TempFile::new("server.pem", &cert_pem);
    let key = TempFile::new("server.key", &key_pem);
    let tls_toml = |cert: &TempFile, key: &TempFile| {
        format!(
            "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.toml(),
            key.toml()
        )
    };
    let file = TempFile::new("tls.toml", &tls_toml(&cert, &key));
    let c = Config::load(&file.0).expect("a matching pair loads");
    assert_eq!(c.proxy.tls_cert_pem(), Some(cert_pem.as_str()));
    assert_eq!(c.proxy.tls_key_pem(), Some(key_pem.as_str()));
    let secret_line = key_pem.lines().nth(1).unwrap();
    assert!(
        !format!("{c:?}").contains(secret_line),
        "the key is redacted in Debug"
    );

    // Swapped files: the certificate is not a private key.
    let file = TempFile::new(
        "tls-swapped.toml",
        &format!(
            "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.toml(),
            cert.toml()
        ),
    );
    let e = Config::load(&file.0).expect_err("swapped");
    assert_eq!(e.key(), Some("proxy.tls_key"));
    assert_eq!(e.line(), Some(3));
    assert!(
        e.message()
            .ends_with("holds a PEM CERTIFICATE, expected a PRIVATE KEY"),
        "{e}"
    );

    let missing = TempFile::new(
        "tls-missing.toml",
        "[proxy]\ntls_cert = \"/surely/not/here.pem\"\ntls_key = \"/surely/not/here.key\"\n",
    );
    let e = Config::load(&missing.0).expect_err("missing");
    assert_eq!(e.key(), Some("proxy.tls_cert"));
    assert_eq!(e.line(), Some(2));
}

#[test]
fn connection_limits_have_defaults_and_refuse_values_that_cannot_work() {
    let p = Config::from_toml_str("").unwrap().proxy;
    assert_eq!(p.header_read_timeout.get(), Duration::from_secs(10));
    assert_eq!(p.idle_timeout.get(), Duration::from_secs(60));
    assert_eq!(
        (p.max_header_bytes, p.max_headers, p.max_connections),
        (65536, 100, 10_000)
    );
    assert!(!p.upstream_http2);
    assert_eq!(p.upstream_ca, None);
    let p = Config::from_toml_str(
        "[proxy]\nheader_read_timeout = \"2s\"\nidle_timeout = \"5m\"\nmax_header_bytes = 8192\n\
             max_headers = 50\nmax_connections = 3\nupstream_http2 = true\n",
    )
    .unwrap()
    .proxy;
    assert_eq!(p.header_read_timeout.get(), Duration::from_secs(2));
    assert_eq!(p.idle_timeout.get(), Duration::from_secs(300));
    assert_eq!(
        (p.max_header_bytes, p.max_headers, p.max_connections),
        (8192, 50, 3)
    );
    assert!(p.upstream_http2);
    for (line, key, message) in [
        (
            "max_header_bytes = 512",
            "proxy.max_header_bytes",
            "512 is not between 1024 and 1048576",
        ),
        (
            "max_headers = 0",
            "proxy.max_headers",
            "0 is not between 8 and 1000",
        ),
        (
            "max_connections = 0",
            "proxy.max_connections",
            "0 is not between 1 and 1048576",
        ),
        (
            "header_read_timeout = \"0s\"",
            "proxy.header_read_timeout",
            "must be more than zero",
        ),
        (
            "idle_timeout = \"0ms\"",
            "proxy.idle_timeout",
            "must be more than zero",
        ),
        (
            "upstream_ca = \"ca.pem\"",
            "proxy.upstream_ca",
            "is set, but proxy.upstream is not an https:// origin",
        ),
    ] {
        let e = Config::from_toml_str(&format!("[proxy]\n{line}\n")).expect_err(line);
        assert_eq!((e.key(), e.line()), (Some(key), Some(2)), "{e}");
        assert_eq!(e.message(), message, "{line}");
    }
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let path = Path::new("/surely/not/here/vidgate.toml");
    let e = Config::load(path).expect_err("missing file");
    assert_eq!(e.kind(), ConfigErrorKind::Read);
    assert_eq!(e.file(), Some(path));
    assert_eq!((e.line(), e.key()), (None, None));
    assert!(
        e.to_string()
            .starts_with("/surely/not/here/vidgate.toml: cannot read the config file: "),
        "{e}"
    );
}

#[test]
fn load_errors_start_with_file_and_line() {
    let file = TempFile::new(
        "bad-duration.toml",
        "[proxy]\nconnect_timeout = \"5 parsecs\"\n",
    );
    let e = Config::load(&file.0).expect_err("bad duration");
    assert_eq!(
            e.to_string(),
            format!(
                "{}:2: proxy.connect_timeout: \"5 parsecs\" is not a duration (write e.g. \"5s\" or \"250ms\")",
                file.0.display()
            )
        );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Config::from_toml_str(
        "[admin]\nprivate_key = \"hunter2\"\n[[client_tokens.jwt_keys]]\nkid = \"k\"\n\
             alg = \"HS256\"\nsecret = \"swordfish\"\n[client_tokens.ziggeo]\n\
             application_token = \"a\"\nencryption_key = \"correcthorse\"\n",
    )
    .expect("config");
    let debug = format!("{c:?}");
    for secret in ["hunter2", "swordfish", "correcthorse"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("Secret(<redacted>)"));
}

#[test]
fn line_of_finds_keys_tables_and_array_entries() {
    let line_of = |text: &str, key: &str| lines::Provenance::of(text, None).line(key);
    let text = r#"# comment with key = value
top = 1
log.format = "x"

[proxy]
prefixes = [
  "/v1",   # listen = "not a key"
  "",
]
cors.allowed_origins = ["*"]
pem = """
bogus = line inside a string
[not.a.table]
"""
"quoted" = 1

[[client_tokens.jwt_keys]]
kid = "a"

[[client_tokens.jwt_keys]]
kid = "b"
"#;
    assert_eq!(line_of(text, "top"), Some(2));
    assert_eq!(line_of(text, "log.format"), Some(3));
    assert_eq!(line_of(text, "proxy.prefixes"), Some(6));
    assert_eq!(line_of(text, "proxy.prefixes[1]"), Some(6));
    assert_eq!(line_of(text, "proxy.cors.allowed_origins[0]"), Some(10));
    assert_eq!(
        line_of(text, "proxy.bogus"),
        Some(5),
        "a missing key: its table"
    );
    assert_eq!(line_of(text, "not.a.table"), None);
    assert_eq!(line_of(text, "proxy.quoted"), Some(15));
    assert_eq!(line_of(text, "client_tokens.jwt_keys[0].kid"), Some(18));
    assert_eq!(line_of(text, "client_tokens.jwt_keys[1].kid"), Some(21));
    assert_eq!(line_of(text, "client_tokens.jwt_keys[1].alg"), Some(20));
    assert_eq!(line_of(text, "client_tokens.jwt_keys[2].kid"), None);
    assert_eq!(line_of(text, "store.backend"), None);
}
