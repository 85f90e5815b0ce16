//! Client tokens (SPEC 1.3): offline verification plus the decision, per token.
//!
//! Targets (issue 4): JWT HS256 verify + decision <= 3 us; EdDSA <= 60 us; Ziggeo-format
//! decrypt + decision <= 5 us. ES256 and RS256 are measured for reference (no target). Run
//! with `cargo bench --bench client_tokens`.
//!
//! Each token is what a player really carries: a read grant on three 32-hex video ids, an
//! expiry, a session limit and a `jti` / `nonce` (so the token needs sessions, and the owner
//! key is built), judged with no session presented (the decision then asks for one). The
//! bench runs on mimalloc, the `vidgate` binary's allocator.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use serde_json::json;
use vidgate::client_token::ClientTokens;
use vidgate::clock::Timestamp;
use vidgate::config::Config;
use vidgate::policy::{decide, Credential, Decision, PresentedSession, SessionUse};
use vidgate::token::Action;

/// The allocator of the `vidgate` binary, so that the figures are the gateway's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

fn inline(path: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("the test keys exist");
    serde_json::to_string(&text).expect("a string")
}

fn verifiers() -> ClientTokens {
    let toml = format!(
        "[[client_tokens.jwt_keys]]\nkid = \"hs\"\nalg = \"HS256\"\nsecret = \"bench-secret-0123456789abcdef\"\n\
         [[client_tokens.jwt_keys]]\nkid = \"ed\"\nalg = \"EdDSA\"\npublic_key_pem = {}\nprivate_key_pem = {}\n\
         [[client_tokens.jwt_keys]]\nkid = \"es\"\nalg = \"ES256\"\npublic_key_pem = {}\nprivate_key_pem = {}\n\
         [[client_tokens.jwt_keys]]\nkid = \"rs\"\nalg = \"RS256\"\npublic_key_pem = {}\nprivate_key_pem = {}\n\
         [client_tokens.ziggeo]\napplication_token = \"bench-app\"\nencryption_key = \"bench-ziggeo-key\"\n",
        inline("tests/keys/ed25519.pub.pem"),
        inline("tests/keys/ed25519.key.pem"),
        inline("tests/keys/p256.pub.pem"),
        inline("tests/keys/p256.key.pem"),
        inline("tests/keys/rsa.pub.pem"),
        inline("tests/keys/rsa.key.pem"),
    );
    Config::from_toml_str(&toml)
        .and_then(|c| vidgate::server::client_tokens(&c))
        .expect("the bench config is valid")
}

fn videos() -> Vec<String> {
    (1u64..=3)
        .map(|n| format!("{:032x}", n * 0x9e37_79b9_7f4a_7c15))
        .collect()
}

/// Verify, then decide a read of the last granted video: the gateway's work per request.
fn verify_and_decide(tokens: &ClientTokens, value: &str, video: &str) -> Decision {
    let Ok(verified) = tokens.verify(value, NOW) else {
        panic!("the bench token verifies");
    };
    let credential = Credential {
        token: &verified.token,
        owner: &verified.owner,
    };
    decide(
        Some(credential),
        PresentedSession::None,
        Action::Read,
        Some(video),
        NOW,
    )
}

fn bench(c: &mut Criterion) {
    let tokens = verifiers();
    let videos = videos();
    let video = videos.last().expect("three videos").clone();
    let claims = json!({
        "grants": {"read": {"resources": videos}},
        "exp": NOW.as_secs() + 3600,
        "session_limit": 3,
        "jti": "0f8e5c1d2b3a49687766554433221100",
    });
    let mut group = c.benchmark_group("client_token_verify_and_decide");
    for kid in ["hs", "ed", "es", "rs"] {
        let token = tokens.jwt().sign(kid, &claims).expect("the key signs");
        assert_eq!(
            verify_and_decide(&tokens, &token, &video),
            Decision::Allow(SessionUse::Create)
        );
        group.bench_function(format!("jwt_{kid}"), |b| {
            b.iter(|| verify_and_decide(&tokens, black_box(&token), &video))
        });
    }
    let options = json!({
        "grants": {"read": {"resources": videos}},
        "expiration_date": NOW.as_secs() + 3600,
        "session_limit": 3,
        "nonce": "17325474581234567890",
    });
    let ziggeo = tokens
        .ziggeo()
        .expect("configured")
        .seal(&options)
        .expect("sealed");
    assert_eq!(
        verify_and_decide(&tokens, &ziggeo, &video),
        Decision::Allow(SessionUse::Create)
    );
    group.bench_function("ziggeo", |b| {
        b.iter(|| verify_and_decide(&tokens, black_box(&ziggeo), &video))
    });
    // A forged Ziggeo token (last character flipped) costs what a good one does: no timing
    // difference to learn the padding from.
    let mut forged = ziggeo.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("hex");
    group.bench_function("ziggeo_forged", |b| {
        b.iter(|| tokens.verify(black_box(&forged), NOW).is_err())
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
