//! The destroy cascade's retry policy (SPEC 2.5): once the origin has deleted a video, vidgate
//! must not leave tokens naming it, so a cascade that fails is retried in the background, with
//! backoff, until it succeeds or has clearly no chance to.

use std::sync::Arc;
use std::time::Duration;

use super::TokenStore;

/// How many times a failed cascade is retried.
const RETRIES: u32 = 8;
/// The wait before the first retry; it doubles after each, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between two retries.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Run the destroy cascade for `video` now; if the store fails, keep retrying it in a background
/// task (which logs each attempt, never the video's id) and return at once: the request it
/// follows has succeeded at the origin already, and its answer must not wait.
pub async fn destroy_video_retrying<St: TokenStore>(store: &Arc<St>, video: String) {
    if store.destroy_video(&video).await.is_ok() {
        return;
    }
    tracing::warn!("destroy cascade failed; retrying in the background");
    let store = store.clone();
    tokio::spawn(async move {
        let mut delay = FIRST_DELAY;
        for attempt in 1..=RETRIES {
            tokio::time::sleep(delay).await;
            match store.destroy_video(&video).await {
                Ok(_) => {
                    tracing::info!(attempt, "destroy cascade succeeded on retry");
                    return;
                }
                Err(error) => tracing::warn!(attempt, %error, "destroy cascade retry failed"),
            }
            delay = (delay * 2).min(MAX_DELAY);
        }
        tracing::error!("destroy cascade gave up; tokens may still name a deleted video");
    });
}
