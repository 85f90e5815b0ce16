//! One test per row of SPEC 1.1 (and the token-level rules of 1.2 and 1.4), and a round trip.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn create(body: serde_json::Value) -> Result<NewToken, TokenError> {
    NewToken::from_json(&body.to_string())
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs)
}

// --- `token` ---

#[test]
fn generated_ids_are_32_lowercase_hex_and_differ() {
    let a = TokenId::generate();
    let b = TokenId::generate();
    assert_eq!(a.as_str().len(), 32);
    assert!(a
        .as_str()
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    assert_ne!(a, b);
    let t = create(json!({"grants": {}})).unwrap().into_token(at(0));
    assert_eq!(t.id.as_str().len(), 32, "an absent id is generated");
}

#[test]
fn a_given_id_is_kept_when_well_formed() {
    let t = create(json!({"token": "My_video-token9", "grants": {}})).unwrap();
    assert_eq!(t.id.unwrap().as_str(), "My_video-token9");
    let long = "a".repeat(128);
    assert!(create(json!({"token": long, "grants": {}})).is_ok());
}

#[test]
fn a_malformed_id_is_refused_naming_token() {
    for bad in [
        "",
        "has space",
        "dot.ted",
        "slash/",
        "ünï",
        &"a".repeat(129),
    ] {
        let err = create(json!({"token": bad, "grants": {}})).unwrap_err();
        assert_eq!(err.field(), "token", "{bad:?}: {err}");
        assert!(!err.is_unprocessable());
    }
    let err = create(json!({"token": 5, "grants": {}})).unwrap_err();
    assert_eq!(err.field(), "token");
}

#[test]
fn token_id_debug_hides_the_credential() {
    let id = TokenId::new("supersecretvalue").unwrap();
    assert!(!format!("{id:?}").contains("supersecret"));
}

// --- `grants` ---

#[test]
fn grants_are_required() {
    let err = create(json!({})).unwrap_err();
    assert_eq!(err.field(), "grants");
    let err = create(json!({"grants": null})).unwrap_err();
    assert_eq!(err.field(), "grants");
}

#[test]
fn unknown_grant_keys_are_refused_naming_the_path() {
    let err = create(json!({"grants": {"read": {"all": true, "al": true}}})).unwrap_err();
    assert_eq!(err.field(), "grants.read.al");
    assert!(err.message().contains("unknown field"), "{err}");
    let err = create(json!({"grants": {"watch": "all"}})).unwrap_err();
    assert_eq!(err.field(), "grants.watch");
}

#[test]
fn unknown_token_keys_are_refused() {
    let err = create(json!({"grants": {}, "expires": 5})).unwrap_err();
    assert_eq!(err.field(), "expires");
    assert!(err.message().contains("unknown field"), "{err}");
}

#[test]
fn wrong_types_name_their_field() {
    let cases = [
        (json!({"grants": []}), "grants"),
        (json!({"grants": {}, "volatile": "yes"}), "volatile"),
        (json!({"grants": {}, "hidden": 1}), "hidden"),
        (json!({"grants": {}, "session_limit": "5"}), "session_limit"),
        (
            json!({"grants": {}, "usage_expiration_time": 1.5}),
            "usage_expiration_time",
        ),
        (
            json!({"grants": {}, "expiration_date": true}),
            "expiration_date",
        ),
        (
            json!({"grants": {"read": {"resources": "v1"}}}),
            "grants.read.resources",
        ),
    ];
    for (body, field) in cases {
        let err = create(body.clone()).unwrap_err();
        assert_eq!(err.field(), field, "{body}: {err}");
    }
}

#[test]
fn trailing_garbage_and_non_objects_are_refused() {
    assert!(NewToken::from_json(r#"{"grants": {}} x"#).is_err());
    assert!(NewToken::from_json("[]").is_err());
    assert!(NewToken::from_json("").is_err());
}

// --- `expiration_date` ---

#[test]
fn expiration_date_as_unix_seconds() {
    let t = create(json!({"grants": {}, "expiration_date": 1_700_000_000})).unwrap();
    assert_eq!(t.expiration_date, Some(at(1_700_000_000)));
    let t = create(json!({"grants": {}, "expiration_date": "1700000000"})).unwrap();
    assert_eq!(
        t.expiration_date,
        Some(at(1_700_000_000)),
        "decimal string (forms)"
    );
}

#[test]
fn expiration_date_as_rfc3339_keeps_milliseconds() {
    let t = create(json!({"grants": {}, "expiration_date": "2023-11-14T22:13:20.250Z"})).unwrap();
    assert_eq!(
        t.expiration_date,
        Some(Timestamp::from_millis(1_700_000_000_250))
    );
    let t = create(json!({"grants": {}, "expiration_date": "2023-11-15T00:13:20+02:00"})).unwrap();
    assert_eq!(t.expiration_date, Some(at(1_700_000_000)));
}

#[test]
fn expiration_date_as_a_float_keeps_milliseconds() {
    let t = create(json!({"grants": {}, "expiration_date": 1_700_000_000.5})).unwrap();
    assert_eq!(
        t.expiration_date,
        Some(Timestamp::from_millis(1_700_000_000_500))
    );
}

#[test]
fn a_malformed_expiration_date_names_the_field() {
    for bad in [
        json!("tomorrow"),
        json!("2023-13-01T00:00:00Z"),
        json!(""),
        json!(f64::MAX),
    ] {
        let err = create(json!({"grants": {}, "expiration_date": bad})).unwrap_err();
        assert_eq!(err.field(), "expiration_date", "{bad}: {err}");
    }
}

#[test]
fn a_token_is_expired_from_its_expiration_instant_on() {
    let mut t = AuthToken::new(TokenId::generate(), Grants::new(), at(0));
    assert!(!t.is_expired(at(i64::MAX / 1000)), "no date: never");
    t.expiration_date = Some(Timestamp::from_millis(10_000));
    assert!(!t.is_expired(Timestamp::from_millis(9_999)));
    assert!(t.is_expired(Timestamp::from_millis(10_000)), "now >= date");
}

#[test]
fn an_already_expired_token_can_be_created() {
    let t = create(json!({"grants": {}, "expiration_date": 1})).unwrap();
    assert!(t.into_token(at(100)).is_expired(at(100)));
}

#[test]
fn expiration_date_is_output_as_integer_seconds() {
    let mut t = AuthToken::new(TokenId::new("t").unwrap(), Grants::new(), at(5));
    t.expiration_date = Some(Timestamp::from_millis(1_700_000_000_999));
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["expiration_date"], json!(1_700_000_000));
    assert_eq!(v["created_at"], json!(5));
}

// --- `usage_expiration_time` ---

#[test]
fn usage_expiration_time_must_be_positive() {
    for bad in [0, -1, i64::from(u32::MAX) + 1] {
        let err = create(json!({"grants": {}, "usage_expiration_time": bad})).unwrap_err();
        assert_eq!(err.field(), "usage_expiration_time", "{bad}");
    }
    let t = create(json!({"grants": {}, "usage_expiration_time": 60})).unwrap();
    assert_eq!(t.usage_expiration_time.map(NonZeroU32::get), Some(60));
}

#[test]
fn sessions_end_usage_expiration_time_after_creation() {
    let mut t = AuthToken::new(TokenId::generate(), Grants::new(), at(0));
    assert_eq!(t.session_end(at(100)), None);
    t.usage_expiration_time = NonZeroU32::new(60);
    assert_eq!(t.session_end(at(100)), Some(at(160)));
}

// --- `session_limit` ---

#[test]
fn session_limit_must_be_at_least_one() {
    for bad in [0, -3] {
        let err = create(json!({"grants": {}, "session_limit": bad})).unwrap_err();
        assert_eq!(err.field(), "session_limit", "{bad}");
    }
    let t = create(json!({"grants": {}, "session_limit": 1})).unwrap();
    assert_eq!(t.session_limit.map(NonZeroU32::get), Some(1));
}

// --- `volatile`, `hidden` ---

#[test]
fn volatile_and_hidden_default_to_false() {
    let t = create(json!({"grants": {"read": "all"}})).unwrap();
    assert!(!t.volatile && !t.hidden);
    let t = create(json!({"grants": {"read": "all"}, "volatile": true, "hidden": true})).unwrap();
    assert!(t.volatile && t.hidden);
}

#[test]
fn an_empty_volatile_token_is_unprocessable() {
    let err = create(json!({"grants": {"read": {}}, "volatile": true})).unwrap_err();
    assert!(err.is_unprocessable(), "422, not 400");
    assert_eq!(err.field(), "grants");
    assert!(
        create(json!({"grants": {"read": {}}})).is_ok(),
        "empty but not volatile"
    );
}

#[test]
fn doomed_means_volatile_and_empty() {
    let mut t = AuthToken::new(TokenId::generate(), Grants::new(), at(0));
    assert!(!t.is_doomed());
    t.volatile = true;
    assert!(t.is_doomed());
    t.grants = Grants::new()
        .with(Action::Read, Grant::resources(["v"]))
        .unwrap();
    assert!(!t.is_doomed());
}

// --- output-only fields ---

#[test]
fn output_only_fields_are_refused_on_input() {
    let err = create(json!({"grants": {}, "sessions_created": 0})).unwrap_err();
    assert_eq!(err.field(), "sessions_created");
    let err = create(json!({"grants": {}, "created_at": 0})).unwrap_err();
    assert_eq!(err.field(), "created_at");
}

#[test]
fn the_admin_object_has_every_field() {
    let t = create(json!({
        "token": "abc", "grants": {"read": "all"}, "expiration_date": 100,
        "usage_expiration_time": 60, "session_limit": 2, "volatile": true, "hidden": false,
    }))
    .unwrap()
    .into_token(at(7));
    assert_eq!(
        t.to_json(1),
        json!({
            "token": "abc",
            "grants": {"read": {"resources": [], "session_owned": false, "all": true}},
            "expiration_date": 100, "usage_expiration_time": 60, "session_limit": 2,
            "volatile": true, "hidden": false, "created_at": 7, "sessions_created": 1,
        })
    );
}

// --- needs sessions (1.1) ---

#[test]
fn a_token_needs_sessions_for_limit_usage_time_or_session_owned() {
    let base = AuthToken::new(TokenId::generate(), Grants::new(), at(0));
    assert!(!base.needs_sessions());
    let mut t = base.clone();
    t.session_limit = NonZeroU32::new(1);
    assert!(t.needs_sessions());
    let mut t = base.clone();
    t.usage_expiration_time = NonZeroU32::new(1);
    assert!(t.needs_sessions());
    let mut t = base.clone();
    t.grants = Grants::new()
        .with(Action::Create, Grant::session_owned())
        .unwrap();
    assert!(t.needs_sessions());
    let mut t = base;
    t.grants = Grants::new().with(Action::Read, Grant::all()).unwrap();
    t.expiration_date = Some(at(5));
    assert!(!t.needs_sessions(), "all and expiry alone need none");
}

// --- updates (SPEC 3) ---

#[test]
fn a_patch_replaces_given_fields_and_null_clears() {
    let token = create(json!({
        "grants": {"read": "all"}, "expiration_date": 100, "session_limit": 3,
        "usage_expiration_time": 9, "volatile": true,
    }))
    .unwrap()
    .into_token(at(0));
    let patch = TokenPatch::from_json(
        r#"{"grants": {"update": {"resources": ["v"]}}, "expiration_date": null,
            "session_limit": 4, "volatile": null, "hidden": true}"#,
    )
    .unwrap();
    let after = patch.apply(&token);
    assert_eq!(
        after.grants.get(Action::Read),
        None,
        "grants replaced as a whole"
    );
    assert_eq!(
        after.grants.get(Action::Update),
        Some(Grant::resources(["v"]))
    );
    assert_eq!(after.expiration_date, None);
    assert_eq!(after.session_limit.map(NonZeroU32::get), Some(4));
    assert_eq!(
        after.usage_expiration_time.map(NonZeroU32::get),
        Some(9),
        "untouched"
    );
    assert!(!after.volatile && after.hidden);
    assert_eq!((after.id, after.created_at), (token.id, token.created_at));
}

#[test]
fn a_patch_may_not_touch_identity_or_output_fields() {
    for (body, field) in [
        (r#"{"token": "x"}"#, "token"),
        (r#"{"sessions_created": 1}"#, "sessions_created"),
        (r#"{"created_at": 1}"#, "created_at"),
        (r#"{"grants": null}"#, "grants"),
        (r#"{"session_limit": 0}"#, "session_limit"),
    ] {
        let err = TokenPatch::from_json(body).unwrap_err();
        assert_eq!(err.field(), field, "{body}");
    }
    assert_eq!(TokenPatch::from_json("{}").unwrap(), TokenPatch::default());
}

// --- round trip ---

fn grant_strategy() -> impl Strategy<Value = Option<Grant>> {
    let video = "[A-Za-z0-9_ é-]{1,40}";
    proptest::option::of(
        (
            proptest::collection::vec(video, 0..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(resources, session_owned, all)| Grant {
                resources,
                session_owned,
                all,
            }),
    )
}

fn token_strategy() -> impl Strategy<Value = AuthToken> {
    (
        "[A-Za-z0-9_-]{1,128}",
        [
            grant_strategy(),
            grant_strategy(),
            grant_strategy(),
            grant_strategy(),
        ],
        proptest::option::of(0i64..4_000_000_000),
        proptest::option::of(1u32..=u32::MAX),
        proptest::option::of(1u32..=u32::MAX),
        any::<bool>(),
        0i64..4_000_000_000,
    )
        .prop_map(|(id, grants, expiry, usage, limit, hidden, created)| {
            let mut g = Grants::new();
            for (action, grant) in Action::ALL.into_iter().zip(grants) {
                g.set(action, grant).unwrap();
            }
            AuthToken {
                id: TokenId::new(&id).unwrap(),
                volatile: !g.is_empty() && hidden,
                grants: g,
                expiration_date: expiry.map(Timestamp::from_secs),
                usage_expiration_time: usage.and_then(NonZeroU32::new),
                session_limit: limit.and_then(NonZeroU32::new),
                hidden,
                created_at: Timestamp::from_secs(created),
            }
        })
}

proptest! {
    #[test]
    fn token_json_round_trips(token in token_strategy()) {
        let text = serde_json::to_string(&token).unwrap();
        let back: AuthToken = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &token);
        // And the admin create body reads the same fields back.
        let mut body: serde_json::Value = serde_json::from_str(&text).unwrap();
        body.as_object_mut().unwrap().remove("created_at");
        let new = NewToken::from_value(body).unwrap();
        prop_assert_eq!(new.into_token(token.created_at), token);
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(s in ".{0,200}") {
        let _ = NewToken::from_json(&s);
        let _ = TokenPatch::from_json(&s);
    }
}
