//! Tests of the composition root and the reloader's bookkeeping.

use super::*;
use crate::testing::TempFile;

#[test]
fn a_reload_names_the_changes_that_need_a_restart_and_only_those() {
    let old = Config::from_toml_str("[proxy]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let same_but_reloadable = Config::from_toml_str(
        "[proxy]\nlisten = \"127.0.0.1:8080\"\nresponse_timeout = \"5s\"\nidle_timeout = \"9s\"\n\
             [client_tokens]\nleeway = \"1s\"\n",
    )
    .unwrap();
    assert!(restart_only_changes(&old, &same_but_reloadable).is_empty());
    let moved = Config::from_toml_str(
        "[proxy]\nlisten = \"127.0.0.1:8081\"\nmax_connections = 5\n\
             [store]\nsweep_interval = \"2s\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    assert_eq!(
        restart_only_changes(&old, &moved),
        ["proxy.listen", "proxy.max_connections", "store", "log"]
    );
}

#[test]
fn the_tls_pair_is_built_and_checked_by_the_composition_root() {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = TempFile::new("server.pem", &pair.cert.pem());
    let key = TempFile::new("server.key", &pair.signing_key.serialize_pem());
    let foreign_key = TempFile::new("other.key", &other.signing_key.serialize_pem());
    let tls_toml = |cert: &TempFile, key: &TempFile| {
        format!(
            "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nupstream = \"http://127.0.0.1:9\"\n",
            cert.toml(),
            key.toml()
        )
    };
    let file = TempFile::new("tls.toml", &tls_toml(&cert, &key));
    let c = check_config(&file.0).expect("a matching pair builds");
    assert!(build(&c, &Metrics::new(), None).unwrap().tls());

    // A key that is not the certificate's: refused, naming tls_key and its line.
    let file = TempFile::new("tls-foreign.toml", &tls_toml(&cert, &foreign_key));
    let e = check_config(&file.0).expect_err("a foreign key");
    assert_eq!((e.key(), e.line()), (Some("proxy.tls_key"), Some(3)), "{e}");
    assert!(e.message().contains("not the private key"), "{e}");

    // A certificate whose base64 is not a certificate.
    let broken = TempFile::new(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let file = TempFile::new("tls-broken.toml", &tls_toml(&broken, &key));
    let e = check_config(&file.0).expect_err("a broken certificate");
    assert_eq!(
        (e.key(), e.line()),
        (Some("proxy.tls_cert"), Some(2)),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2: proxy.tls_cert: ", file.0.display())),
        "{e}"
    );
}

#[test]
fn serving_needs_an_upstream_and_says_how_to_run_the_demo() {
    let file = TempFile::new("no-upstream.toml", "[proxy]\nlisten = \"127.0.0.1:0\"\n");
    let e = check_config(&file.0).expect_err("no upstream");
    assert_eq!(e.key(), Some("proxy.upstream"));
    assert_eq!(e.line(), Some(1), "reported at its table: {e}");
    assert!(e.message().contains("vidgate demo"), "{e}");
    // A config built in code has no file: the error is the key and the message.
    let e = build(&Config::default(), &Metrics::new(), None).expect_err("no upstream");
    assert!(
        e.to_string().starts_with("proxy.upstream: is required"),
        "{e}"
    );
}

#[tokio::test]
async fn a_reload_builds_with_the_running_store() {
    let config = Config::from_toml_str("[proxy]\nupstream = \"http://127.0.0.1:9\"\n").unwrap();
    let metrics = Metrics::new();
    let first = build(&config, &metrics, None).unwrap();
    let token = first
        .store()
        .insert_token(crate::token::NewToken::from_json(r#"{"grants": {"read": "all"}}"#).unwrap())
        .await
        .unwrap();
    let again = build(&config, &metrics, Some(first.store())).unwrap();
    assert!(again
        .store()
        .token(token.id.as_str())
        .await
        .unwrap()
        .is_some());
    let fresh = build(&config, &metrics, None).unwrap();
    assert!(fresh
        .store()
        .token(token.id.as_str())
        .await
        .unwrap()
        .is_none());
}
