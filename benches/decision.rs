//! The decision alone: [`vidgate::policy::decide`] on realistic tokens and sessions.
//!
//! Target (the table): at most 200 ns per decision. Run with
//! `cargo bench --bench decision`; criterion reports a mean and a confidence interval per case.
//!
//! Video ids are 32 lowercase hex characters, as the host issues them. The video asked for is
//! the *last* one each list names, so a linear scan does its whole walk: the cases are the
//! slow end of what the same token shape can cost.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::Criterion;
use vidgate::clock::Timestamp;
use vidgate::policy::{decide, Credential, Decision, PresentedSession, SessionSource, SessionUse};
use vidgate::session::{OwnerKey, Session, SessionId};
use vidgate::token::{Action, AuthToken, Grant, Grants, TokenId};

/// A 32-hex-character id, distinct for each `n`.
fn hex_id(n: u64) -> String {
    format!(
        "{:032x}",
        u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

fn token(grants: Grants) -> (AuthToken, OwnerKey) {
    let id = TokenId::new(&hex_id(1)).expect("a hex id is a token id");
    let mut token = AuthToken::new(id.clone(), grants, Timestamp::from_secs(1_700_000_000));
    token.expiration_date = Some(Timestamp::from_secs(1_800_000_000));
    (token, OwnerKey::Server(id))
}

fn bench_decide(c: &mut Criterion) {
    let now = Timestamp::from_secs(1_750_000_000);
    let videos: Vec<String> = (10..13).map(hex_id).collect();
    let other_video = hex_id(99);

    let three = Grants::new()
        .with(Action::Read, Grant::resources(videos.iter().cloned()))
        .expect("valid resources");
    let (plain, plain_owner) = token(three.clone());

    // The same grants on a token that needs sessions, judged with its session presented:
    // the shape the gateway's hot path sees for most viewers.
    let (mut limited, limited_owner) = token(three);
    limited.session_limit = NonZeroU32::new(5);
    let limited_session = Session {
        id: SessionId::from_bits(7),
        owner: limited_owner.clone(),
        created_at: now,
        ends_at: None,
        owned: Vec::new(),
    };

    let (owned_token, owned_owner) = token(
        Grants::new()
            .with(Action::Read, Grant::session_owned())
            .expect("valid grant"),
    );
    let owning_session = Session {
        id: SessionId::from_bits(8),
        owner: owned_owner.clone(),
        created_at: now,
        ends_at: Some(Timestamp::from_secs(1_760_000_000)),
        owned: (20..23).map(hex_id).collect(),
    };
    let owned_video = owning_session.owned[2].clone();

    let (all, all_owner) = token(
        Grants::new()
            .with(Action::Read, Grant::all())
            .expect("valid grant"),
    );

    let explicit = |s| PresentedSession::Some {
        found: Some(s),
        source: SessionSource::Explicit,
    };
    type Case<'a> = (
        &'static str,
        &'a AuthToken,
        &'a OwnerKey,
        PresentedSession<'a>,
        &'a str,
        Decision,
    );
    let cases: [Case<'_>; 5] = [
        (
            "read_3_resources_allowed",
            &plain,
            &plain_owner,
            PresentedSession::None,
            &videos[2],
            Decision::Allow(SessionUse::NotNeeded),
        ),
        (
            "read_3_resources_grant_missing",
            &plain,
            &plain_owner,
            PresentedSession::None,
            &other_video,
            Decision::Deny(vidgate::policy::DenyReason::GrantMissing),
        ),
        (
            "read_3_resources_with_session",
            &limited,
            &limited_owner,
            explicit(&limited_session),
            &videos[2],
            Decision::Allow(SessionUse::Existing(limited_session.id)),
        ),
        (
            "session_owned_3_videos",
            &owned_token,
            &owned_owner,
            explicit(&owning_session),
            &owned_video,
            Decision::Allow(SessionUse::Existing(owning_session.id)),
        ),
        (
            "read_all",
            &all,
            &all_owner,
            PresentedSession::None,
            &other_video,
            Decision::Allow(SessionUse::NotNeeded),
        ),
    ];

    let mut group = c.benchmark_group("decide");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, token, owner, session, video, expected) in cases {
        // A benchmark of the wrong outcome measures nothing.
        let credential = Credential { token, owner };
        assert_eq!(
            decide(Some(credential), session, Action::Read, Some(video), now),
            expected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                decide(
                    black_box(Some(credential)),
                    black_box(session),
                    black_box(Action::Read),
                    black_box(Some(video)),
                    black_box(now),
                )
            })
        });
    }
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, written out: the macros' `pub fn`
// has no doc comment, which the crate's `missing_docs` lint refuses.
fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("(load average at start: {})", load.trim());
    let mut criterion = Criterion::default().configure_from_args();
    bench_decide(&mut criterion);
    criterion.final_summary();
}
