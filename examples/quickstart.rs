//! vidgate's core, end to end in one process: store a token, then ask the decision about a
//! few requests the way the gateway does for every HTTP request.
//!
//! Run it with `cargo run --example quickstart`.

use std::num::NonZeroU32;

use vidgate::clock::{Clock, SystemClock};
use vidgate::policy::{decide, Credential, Decision, PresentedSession, SessionSource, SessionUse};
use vidgate::route::Routes;
use vidgate::session::OwnerKey;
use vidgate::store::{MemoryStore, SessionCreation, SessionTerms, TokenStore};
use vidgate::token::NewToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::builder().build();
    let routes = Routes::default();

    // The body a video host would POST to the admin API.
    let body = r#"{
        "grants": {"read": {"resources": ["intro-video"]}, "create": {"session_owned": true}},
        "session_limit": 2,
        "usage_expiration_time": 3600
    }"#;
    let token = store.insert_token(NewToken::from_json(body)?).await?;
    let owner = OwnerKey::Server(token.id.clone());
    println!("stored a token: read intro-video, create in-session, 2 sessions of 1 h\n");

    let mut session = None;
    for (method, path) in [
        ("GET", "/v1/videos/intro-video"),
        ("GET", "/v1/videos/intro-video/streams/abc/video.mp4"),
        ("DELETE", "/v1/videos/intro-video"),
        ("GET", "/v1/videos/other-video"),
        ("GET", "/v1/videos/%2e%2e/admin"),
    ] {
        let verdict = match routes.route(&method.parse()?, path) {
            Err(e) => format!("refused before any token was read: {e}"),
            Ok(vidgate::route::Route::Video { action, video, .. }) => {
                let found = match session {
                    Some(id) => store.session(id).await?,
                    None => None,
                };
                let presented = match session {
                    Some(_) => PresentedSession::Some {
                        found: found.as_ref(),
                        source: SessionSource::Explicit,
                    },
                    None => PresentedSession::None,
                };
                let credential = Credential {
                    token: &token,
                    owner: &owner,
                };
                match decide(
                    Some(credential),
                    presented,
                    action,
                    video.as_deref(),
                    SystemClock.now(),
                ) {
                    Decision::Deny(reason) => format!(
                        "{} {reason}: {}",
                        reason.status().as_u16(),
                        reason.message()
                    ),
                    Decision::Allow(SessionUse::Create) => {
                        match store
                            .create_session(&owner, SessionTerms::of(&token))
                            .await?
                        {
                            SessionCreation::Created(s) => {
                                session = Some(s.id);
                                format!(
                                    "allowed {action}; opened a session ending at {:?}",
                                    s.ends_at.map(|t| t.as_secs())
                                )
                            }
                            other => format!("refused: {other:?}"),
                        }
                    }
                    Decision::Allow(_) => format!("allowed {action} in the same session"),
                }
            }
            Ok(other) => format!("{other:?}"),
        };
        println!("{method:6} {path}\n       -> {verdict}");
    }
    let stored = store
        .token(token.id.as_str())
        .await?
        .ok_or("token vanished")?;
    println!(
        "\nsessions_created = {} of {}",
        stored.sessions_created,
        token.session_limit.map_or(0, NonZeroU32::get)
    );
    Ok(())
}
