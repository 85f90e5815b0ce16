//! Tests of client-side tokens: JWT keys and claims, the Ziggeo format, minting and inspecting.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;
use crate::config::Config;
use crate::policy::{self, Credential};
use crate::token::Action;

const ED_PUBLIC: &str = include_str!("../../tests/keys/ed25519.pub.pem");
const ED_PRIVATE: &str = include_str!("../../tests/keys/ed25519.key.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/keys/rsa.pub.pem");
const RSA_PRIVATE: &str = include_str!("../../tests/keys/rsa.key.pem");
const EC_PUBLIC: &str = include_str!("../../tests/keys/p256.pub.pem");
const EC_PRIVATE: &str = include_str!("../../tests/keys/p256.key.pem");

const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn config() -> String {
    format!(
        r#"
[client_tokens]
leeway = "5s"

[[client_tokens.jwt_keys]]
kid = "hs"
alg = "HS256"
secret = "hs-secret"

[[client_tokens.jwt_keys]]
kid = "hs384"
alg = "HS384"
secret = "hs384-secret"

[[client_tokens.jwt_keys]]
kid = "hs512"
alg = "HS512"
secret = "hs512-secret"

[[client_tokens.jwt_keys]]
kid = "ed"
alg = "EdDSA"
public_key_pem = {ed_pub}
private_key_pem = {ed_key}

[[client_tokens.jwt_keys]]
kid = "es"
alg = "ES256"
public_key_pem = {ec_pub}
private_key_pem = {ec_key}

[[client_tokens.jwt_keys]]
kid = "rs"
alg = "RS256"
public_key_pem = {rsa_pub}
private_key_pem = {rsa_key}

[client_tokens.ziggeo]
application_token = "app-1"
encryption_key = "zig-secret"
"#,
        ed_pub = toml_string(ED_PUBLIC),
        ed_key = toml_string(ED_PRIVATE),
        ec_pub = toml_string(EC_PUBLIC),
        ec_key = toml_string(EC_PRIVATE),
        rsa_pub = toml_string(RSA_PUBLIC),
        rsa_key = toml_string(RSA_PRIVATE),
    )
}

fn verifiers() -> ClientTokens {
    let config = Config::from_toml_str(&config()).unwrap();
    ClientTokens::from_config(&config.client_tokens).unwrap()
}

fn exp_in(secs: i64) -> i64 {
    NOW.as_secs() + secs
}

fn read_v1() -> Value {
    json!({"read": {"resources": ["v1"]}})
}

fn mint(v: &ClientTokens, kid: &str, claims: Value) -> String {
    v.jwt().sign(kid, &claims).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The verdict a request would get: `Ok` with the token if allowed to read `video`.
fn reason(v: &ClientTokens, token: &str) -> Result<Verified, String> {
    v.verify(token, NOW).map_err(|r| r.code().to_owned())
}

#[test]
fn every_configured_algorithm_round_trips() {
    let v = verifiers();
    for kid in ["hs", "hs384", "hs512", "ed", "es", "rs"] {
        let token = mint(&v, kid, json!({"grants": read_v1(), "exp": exp_in(60)}));
        let verified = v
            .verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert!(verified
            .token
            .grants
            .allows(Action::Read, Some("v1"), |_| false));
        assert!(!verified
            .token
            .grants
            .allows(Action::Read, Some("v2"), |_| false));
        assert_eq!(verified.format, Format::Jwt);
        // The leeway is part of the expiry.
        assert_eq!(
            verified.token.expiration_date,
            Some(Timestamp::from_secs(exp_in(65)))
        );
    }
}

#[test]
fn expiry_honours_the_leeway_and_answers_token_expired() {
    let v = verifiers();
    let decide = |exp: i64| {
        let token = mint(&v, "hs", json!({"grants": read_v1(), "exp": exp}));
        let verified = v.verify(&token, NOW).unwrap();
        let owner = verified.owner.clone();
        policy::check_token(
            Some(Credential {
                token: &verified.token,
                owner: &owner,
            }),
            NOW,
        )
        .map(|_| ())
    };
    assert_eq!(decide(exp_in(-4)), Ok(()), "inside the leeway");
    assert_eq!(decide(exp_in(-5)), Err(policy::DenyReason::TokenExpired));
    assert_eq!(decide(exp_in(-3600)), Err(policy::DenyReason::TokenExpired));
}

#[test]
fn a_fractional_exp_keeps_its_milliseconds() {
    let v = verifiers();
    let exp = NOW.as_secs() as f64 + 10.25;
    let token = mint(&v, "hs", json!({"grants": read_v1(), "exp": exp}));
    assert_eq!(
        v.verify(&token, NOW).unwrap().token.expiration_date,
        Some(Timestamp::from_millis(NOW.as_millis() + 15_250))
    );
}

#[test]
fn nbf_is_checked_with_the_leeway() {
    let v = verifiers();
    let with_nbf = |nbf: i64| {
        let claims = json!({"grants": read_v1(), "exp": exp_in(600), "nbf": nbf});
        reason(&v, &mint(&v, "hs", claims)).map(|_| ())
    };
    assert_eq!(with_nbf(exp_in(5)), Ok(()));
    assert_eq!(with_nbf(exp_in(6)), Err("jwt_not_yet_valid".into()));
    assert_eq!(with_nbf(exp_in(-100)), Ok(()));
}

#[test]
fn claims_are_checked_like_a_server_tokens_fields() {
    let v = verifiers();
    let refused = |claims: Value| match v.verify(&mint(&v, "hs", claims), NOW) {
        Err(Refused::Claims(what)) => what,
        other => panic!("expected a claims refusal, got {other:?}"),
    };
    assert!(refused(json!({"exp": exp_in(60)})).starts_with("grants"));
    assert!(refused(json!({"grants": read_v1()})).starts_with("exp"));
    assert!(
        refused(json!({"grants": {"read": {"al": true}}, "exp": exp_in(60)}))
            .starts_with("grants.read")
    );
    assert!(refused(
        json!({"grants": read_v1(), "exp": exp_in(60), "session_limit": 0, "jti": "a"})
    )
    .starts_with("session_limit"));
    assert!(refused(
        json!({"grants": read_v1(), "exp": exp_in(60), "usage_expiration_time": -1, "jti": "a"})
    )
    .starts_with("usage_expiration_time"));
    assert!(refused(json!({"grants": read_v1(), "exp": "tomorrow"})).starts_with("exp"));
    assert!(refused(json!({"grants": read_v1(), "exp": exp_in(60), "jti": ""})).starts_with("jti"));
}

#[test]
fn other_registered_claims_are_ignored() {
    let v = verifiers();
    let claims = json!({
        "grants": read_v1(), "exp": exp_in(60), "aud": "x", "iss": "me", "sub": "u", "iat": 1,
        "custom": {"anything": [1, 2]}
    });
    assert!(v.verify(&mint(&v, "hs", claims), NOW).is_ok());
}

#[test]
fn a_jwt_with_expiration_date_is_refused() {
    let v = verifiers();
    let claims = json!({"grants": read_v1(), "exp": exp_in(60), "expiration_date": null});
    assert_eq!(
        v.verify(&mint(&v, "hs", claims), NOW).unwrap_err(),
        Refused::ExpirationDateInJwt
    );
}

#[test]
fn sessions_are_counted_per_jti() {
    let v = verifiers();
    let needs = json!({"grants": read_v1(), "exp": exp_in(60), "session_limit": 2});
    assert_eq!(
        v.verify(&mint(&v, "hs", needs.clone()), NOW).unwrap_err(),
        Refused::MissingJti
    );
    let mut with_jti = needs;
    with_jti["jti"] = json!("nonce-7");
    let verified = v.verify(&mint(&v, "ed", with_jti), NOW).unwrap();
    assert_eq!(verified.owner, OwnerKey::Jwt("nonce-7".into()));
    assert_eq!(verified.token.session_limit.map(|n| n.get()), Some(2));

    // A token that needs no sessions may omit the jti: it counts alone, by its own hash.
    let plain = mint(&v, "hs", json!({"grants": read_v1(), "exp": exp_in(60)}));
    let other = mint(&v, "hs", json!({"grants": read_v1(), "exp": exp_in(61)}));
    let a = v.verify(&plain, NOW).unwrap().owner;
    assert_eq!(a, v.verify(&plain, NOW).unwrap().owner);
    assert_ne!(a, v.verify(&other, NOW).unwrap().owner);
}

#[test]
fn forgeries_are_refused() {
    let v = verifiers();
    let claims = json!({"grants": {"read": "all"}, "exp": exp_in(60)});
    let payload = b64(&claims);

    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "kid": "hs"})));
    assert_eq!(reason(&v, &none).unwrap_err(), "jwt_alg_none");
    let none_upper = format!("{}.{payload}.", b64(&json!({"alg": "NONE", "kid": "hs"})));
    assert_eq!(reason(&v, &none_upper).unwrap_err(), "jwt_alg_none");

    // HS256 with the RS256 key's public PEM as the secret: the key is pinned to RS256.
    let confused = format!("{}.{payload}", b64(&json!({"alg": "HS256", "kid": "rs"})));
    let secret = jsonwebtoken::EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(confused.as_bytes(), &secret, jsonwebtoken::Algorithm::HS256)
            .unwrap();
    assert_eq!(
        reason(&v, &format!("{confused}.{signature}")).unwrap_err(),
        "jwt_alg_mismatch"
    );

    let good = mint(&v, "hs", claims.clone());
    let parts: Vec<&str> = good.split('.').collect();
    let unknown_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256", "kid": "zz"})),
        parts[1],
        parts[2]
    );
    assert_eq!(reason(&v, &unknown_kid).unwrap_err(), "jwt_unknown_kid");
    let no_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256"})),
        parts[1],
        parts[2]
    );
    assert_eq!(reason(&v, &no_kid).unwrap_err(), "jwt_unknown_kid");

    // The right algorithm and kid, signed with another secret.
    let header = b64(&json!({"alg": "HS256", "kid": "hs"}));
    let message = format!("{header}.{}", parts[1]);
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret"),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let wrong_key = format!("{message}.{signature}");
    assert_eq!(reason(&v, &wrong_key).unwrap_err(), "jwt_bad_signature");

    let more = b64(&json!({"grants": {"read": "all", "destroy": "all"}, "exp": exp_in(60)}));
    let tampered = format!("{}.{more}.{}", parts[0], parts[2]);
    assert_eq!(reason(&v, &tampered).unwrap_err(), "jwt_bad_signature");

    let crit = {
        let header = json!({"alg": "HS256", "kid": "hs", "crit": ["b64"], "b64": false});
        format!("{}.{}.{}", b64(&header), parts[1], parts[2])
    };
    assert_eq!(reason(&v, &crit).unwrap_err(), "jwt_crit");

    for garbage in [
        "a.b.c",
        "..",
        "x..",
        "e30.e30.",
        "e30.e30.e30",
        &format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
    ] {
        assert!(
            reason(&v, garbage).unwrap_err().starts_with("jwt_"),
            "{garbage}"
        );
    }
    assert!(reason(&v, &good).is_ok());
    assert_eq!(
        reason(&v, &"a".repeat(MAX_TOKEN_LEN + 1)).unwrap_err(),
        "too_long"
    );
}

#[test]
fn a_duplicated_claim_is_refused() {
    let v = verifiers();
    let header = b64(&json!({"alg": "HS256", "kid": "hs"}));
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"grants": {{"read": "all"}}, "exp": {}, "exp": {}}}"#,
        exp_in(60),
        exp_in(99_999)
    ));
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(b"hs-secret"),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        reason(&v, &format!("{message}.{signature}")).unwrap_err(),
        "claims"
    );
}

#[test]
fn without_keys_every_jwt_is_refused() {
    let v = ClientTokens::default();
    let token = verifiers()
        .jwt()
        .sign("hs", &json!({"grants": read_v1(), "exp": exp_in(60)}))
        .unwrap();
    assert_eq!(
        v.verify(&token, NOW).unwrap_err(),
        Refused::JwtNotConfigured
    );
    assert_eq!(
        v.verify("00ff", NOW).unwrap_err(),
        Refused::ZiggeoNotConfigured
    );
}

#[test]
fn keys_that_do_not_parse_or_match_are_config_errors() {
    let with_key = |alg: &str, public: &str, private: Option<&str>| {
        let mut text = format!(
            "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"{alg}\"\npublic_key_pem = {}\n",
            toml_string(public)
        );
        if let Some(private) = private {
            text += &format!("private_key_pem = {}\n", toml_string(private));
        }
        ClientTokens::from_config(&Config::from_toml_str(&text).unwrap().client_tokens)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(with_key("EdDSA", ED_PUBLIC, Some(ED_PRIVATE)), Ok(()));
    let wrong_family = with_key("EdDSA", RSA_PUBLIC, None).unwrap_err();
    assert!(
        wrong_family.starts_with("client_tokens.jwt_keys[0].public_key_pem: "),
        "{wrong_family}"
    );
    let rsa_as_ec = with_key("ES256", RSA_PUBLIC, None).unwrap_err();
    assert!(rsa_as_ec.contains("public_key_pem"), "{rsa_as_ec}");
    let mismatched = with_key("RS256", RSA_PUBLIC, Some(ED_PRIVATE)).unwrap_err();
    assert!(mismatched.contains("private_key_pem"), "{mismatched}");
}

#[test]
fn mint_picks_the_only_signing_key_or_asks() {
    let v = verifiers();
    assert!(matches!(
        v.jwt().signing_kid(None),
        Err(jwt::MintError::ChooseKey(_))
    ));
    assert_eq!(v.jwt().signing_kid(Some("ed")), Ok("ed"));
    assert!(matches!(
        v.jwt().signing_kid(Some("nope")),
        Err(jwt::MintError::UnknownKid(_))
    ));
    let only = Config::from_toml_str(&format!(
        "[[client_tokens.jwt_keys]]\nkid = \"pub\"\nalg = \"EdDSA\"\npublic_key_pem = {}\n\
         [[client_tokens.jwt_keys]]\nkid = \"sig\"\nalg = \"HS256\"\nsecret = \"s\"\n",
        toml_string(ED_PUBLIC)
    ))
    .unwrap();
    let only = ClientTokens::from_config(&only.client_tokens).unwrap();
    assert_eq!(only.jwt().signing_kid(None), Ok("sig"));
    assert_eq!(
        only.jwt().sign("pub", &json!({})),
        Err(jwt::MintError::CannotSign("pub".into()))
    );
}

// ---- Ziggeo format ----------------------------------------------------------------------

fn ziggeo(v: &ClientTokens, options: Value) -> String {
    v.ziggeo().unwrap().seal(&options).unwrap()
}

#[test]
fn ziggeo_tokens_round_trip() {
    let v = verifiers();
    let token = ziggeo(
        &v,
        json!({"grants": read_v1(), "session_limit": 3, "usage_expiration_time": 60, "nonce": "17"}),
    );
    let verified = v.verify(&token, NOW).unwrap();
    assert_eq!(verified.format, Format::Ziggeo);
    assert_eq!(verified.owner, OwnerKey::Ziggeo("17".into()));
    assert!(verified
        .token
        .grants
        .allows(Action::Read, Some("v1"), |_| false));
    assert_eq!(verified.token.session_limit.map(|n| n.get()), Some(3));
    assert_eq!(
        verified.token.usage_expiration_time.map(|n| n.get()),
        Some(60)
    );
    assert_eq!(verified.token.expiration_date, None);

    // grants as a string holding JSON, a numeric nonce, an RFC 3339 expiry.
    let token = ziggeo(
        &v,
        json!({"grants": "{\"read\": \"all\"}", "nonce": 12345, "expiration_date": "2027-01-15T08:00:00Z"}),
    );
    let verified = v.verify(&token, NOW).unwrap();
    assert_eq!(verified.owner, OwnerKey::Ziggeo("12345".into()));
    assert!(verified.token.grants.allows(Action::Read, None, |_| false));
    let expected = chrono::DateTime::parse_from_rfc3339("2027-01-15T08:00:05Z").unwrap();
    assert_eq!(
        verified.token.expiration_date,
        Some(Timestamp::from_millis(expected.timestamp_millis()))
    );
}

/// Every way a Ziggeo-format token can be wrong, each refused.
#[test]
fn every_malformed_ziggeo_token_is_refused() {
    let v = verifiers();
    let good = ziggeo(&v, json!({"grants": read_v1()}));
    assert!(v.verify(&good, NOW).is_ok());
    let flip = |at: usize| {
        let mut bytes = good.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(bytes).unwrap()
    };
    let other_key = ClientTokens::new(
        JwtKeys::default(),
        Some(ZiggeoFormat::new("app-1", "another-key")),
        Duration::from_secs(5),
    );
    let foreign = ClientTokens::new(
        JwtKeys::default(),
        Some(ZiggeoFormat::new("app-2", "zig-secret")),
        Duration::from_secs(5),
    );
    let seal_text = |text: &str| v.ziggeo().unwrap().seal_text(text);
    let cases: Vec<(&str, String)> = vec![
        ("bad hex", format!("{}g{}", &good[..20], &good[21..])),
        ("odd length", good[..good.len() - 1].to_owned()),
        ("IV flipped", flip(3)),
        ("last flipped", flip(good.len() - 1)),
        ("middle flipped", flip(good.len() / 2)),
        ("truncated a block", good[..good.len() - 32].to_owned()),
        ("IV only", good[..16].to_owned()),
        ("empty", String::new()),
        (
            "wrong key",
            ziggeo(&other_key, json!({"grants": read_v1()})),
        ),
        (
            "foreign application",
            ziggeo(&foreign, json!({"grants": read_v1()})),
        ),
        ("not JSON", seal_text("hello, world")),
        ("not an object", seal_text("[1, 2, 3]")),
        (
            "unknown key",
            seal_text(
                r#"{"application_token": "app-1", "nonce": "1", "grants": {}, "admin": true}"#,
            ),
        ),
        (
            "repeated key",
            seal_text(
                r#"{"application_token": "app-1", "nonce": "1", "nonce": "2", "grants": {}}"#,
            ),
        ),
        (
            "no nonce",
            seal_text(r#"{"application_token": "app-1", "grants": {}}"#),
        ),
        (
            "no grants",
            seal_text(r#"{"application_token": "app-1", "nonce": "1"}"#),
        ),
        (
            "no application",
            seal_text(r#"{"nonce": "1", "grants": {"read": "all"}}"#),
        ),
        (
            "bad grants",
            seal_text(r#"{"application_token": "app-1", "nonce": "1", "grants": {"read": 3}}"#),
        ),
    ];
    for (name, token) in cases {
        match v.verify(&token, NOW) {
            Err(Refused::Ziggeo(_) | Refused::Claims(_)) => {}
            other => panic!("{name}: expected a Ziggeo refusal, got {other:?}"),
        }
    }
}

#[test]
fn ziggeo_expiry_answers_token_expired_after_the_leeway() {
    let v = verifiers();
    let token = ziggeo(
        &v,
        json!({"grants": read_v1(), "expiration_date": NOW.as_secs() - 10}),
    );
    let verified = v.verify(&token, NOW).unwrap();
    let owner = verified.owner.clone();
    let checked = policy::check_token(
        Some(Credential {
            token: &verified.token,
            owner: &owner,
        }),
        NOW,
    );
    assert_eq!(checked.map(|_| ()), Err(policy::DenyReason::TokenExpired));
}

#[test]
fn the_format_is_told_by_its_dots() {
    assert_eq!(Format::of("a.b.c"), Format::Jwt);
    assert_eq!(Format::of(".."), Format::Jwt);
    assert_eq!(Format::of("a.b"), Format::Ziggeo);
    assert_eq!(Format::of("a.b.c.d"), Format::Ziggeo);
    assert_eq!(Format::of("00ff"), Format::Ziggeo);
}
