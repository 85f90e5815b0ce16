//! An axum video app protected by vidgate's tower layer.
//!
//! Run it with `cargo run --example axum_app` and try the curl commands it prints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use vidgate::layer::VidgateLayer;
use vidgate::store::{MemoryStore, TokenStore};
use vidgate::token::NewToken;

/// The app's own state: its videos, by id.
#[derive(Clone, Default)]
pub struct Videos(Arc<Mutex<BTreeMap<String, String>>>);

/// The video app, with vidgate in front of every route.
pub fn app(store: Arc<MemoryStore>, videos: Videos) -> Router {
    Router::new()
        .route("/videos", get(list).post(create))
        .route("/videos/{id}", get(show).delete(destroy))
        .with_state(videos)
        // One line protects every route above: vidgate answers denials itself.
        .layer(VidgateLayer::new(store))
}

async fn list(State(videos): State<Videos>) -> Json<Vec<String>> {
    Json(
        videos
            .0
            .lock()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default(),
    )
}

async fn show(State(videos): State<Videos>, Path(id): Path<String>) -> Result<String, StatusCode> {
    let videos = videos
        .0
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    videos.get(&id).cloned().ok_or(StatusCode::NOT_FOUND)
}

async fn create(
    State(videos): State<Videos>,
) -> Result<(StatusCode, Json<serde_json::Value>), StatusCode> {
    let mut videos = videos
        .0
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let id = format!("video-{}", videos.len() + 1);
    videos.insert(id.clone(), format!("the video {id}\n"));
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "token": id })),
    ))
}

async fn destroy(State(videos): State<Videos>, Path(id): Path<String>) -> StatusCode {
    match videos.0.lock().map(|mut v| v.remove(&id)) {
        Ok(Some(_)) => StatusCode::OK,
        _ => StatusCode::NOT_FOUND,
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::builder().build());
    let videos = Videos::default();
    if let Ok(mut v) = videos.0.lock() {
        v.insert("welcome".into(), "the welcome video\n".into());
    }
    let viewer = store
        .insert_token(NewToken::from_json(
            r#"{"grants": {"read": {"resources": ["welcome"]}}}"#,
        )?)
        .await?;
    let uploader = store
        .insert_token(NewToken::from_json(
            r#"{"grants": {"create": {"session_owned": true}, "destroy": {"session_owned": true}},
                "session_limit": 1}"#,
        )?)
        .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("video app on {base}, protected by vidgate\n");
    println!(
        "allowed:  curl -i '{base}/videos/welcome?server_auth={}'",
        viewer.id
    );
    println!("denied:   curl -i '{base}/videos/welcome'                      # missing_token");
    println!("denied:   curl -i '{base}/videos?server_auth={}'   # grant_missing: listing needs read.all", viewer.id);
    println!("upload:   curl -i -X POST '{base}/videos?server_auth={}'   # opens the token's one session", uploader.id);
    println!(
        "          then DELETE the created video with ?server_auth=...&session=<X-Vidgate-Session>"
    );
    axum::serve(listener, app(store, videos)).await?;
    Ok(())
}
