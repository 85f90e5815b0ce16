//! One handler per resource. Each works out the request's effective method (SPEC 3: a POST
//! may carry `?_method=DELETE`) and dispatches on it, so that the override is honoured and
//! refused in one place.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use super::body::{self, effective_method};
use super::error::AdminError;
use super::{json_response, AdminState};
use crate::session::{OwnerKey, Session, SessionId};
use crate::store::TokenStore;
use crate::token::{NewToken, TokenId, TokenPatch};

type AdminResult = Result<Response, AdminError>;
type Shared<St> = State<Arc<AdminState<St>>>;

/// Route templates, as logged (never the path itself: it holds token and session ids).
pub(crate) const TOKENS: &str = "/v1/authtokens";
pub(crate) const TOKENS_SLASH: &str = "/v1/authtokens/";
pub(crate) const TOKEN: &str = "/v1/authtokens/{token}";
pub(crate) const TOKEN_SESSIONS: &str = "/v1/authtokens/{token}/sessions";
pub(crate) const SESSION: &str = "/v1/sessions/{id}";

/// One `info!` line per mutation: what was done where, and how it ended. No ids.
fn logged(method: &Method, route: &'static str, result: AdminResult) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    if !matches!(*method, Method::GET | Method::HEAD) {
        tracing::info!(
            method = %method,
            route,
            status = response.status().as_u16(),
            "admin mutation"
        );
    }
    response
}

/// `POST /v1/authtokens` (create) and `GET /v1/authtokens` (list).
pub(crate) async fn tokens<St: TokenStore>(
    State(state): Shared<St>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let method = match effective_method(&method, query.as_deref()) {
        Ok(m) => m,
        Err(e) => return logged(&method, TOKENS, Err(e)),
    };
    let result = match method {
        Method::GET | Method::HEAD => list(&state, query.as_deref()).await,
        Method::POST => create(&state, &headers, body).await,
        _ => Err(AdminError::MethodNotAllowed("GET, HEAD, POST")),
    };
    logged(&method, TOKENS, result)
}

async fn create<St: TokenStore>(
    state: &AdminState<St>,
    headers: &HeaderMap,
    body: Body,
) -> AdminResult {
    let bytes = body::read(headers, body, state.max_body).await?;
    let new = body::parse(headers, &bytes, NewToken::from_json, NewToken::from_value)?;
    let token = state.store.insert_token(new).await?;
    let mut response = json_response(StatusCode::CREATED, &token.to_json(0));
    // Token ids are `[A-Za-z0-9_-]`: always a valid header value.
    if let Ok(location) = HeaderValue::from_str(&format!("{TOKENS}/{}", token.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

async fn list<St: TokenStore>(state: &AdminState<St>, query: Option<&str>) -> AdminResult {
    let (skip, limit) = body::page(query)?;
    let tokens = state.store.list_tokens(skip, limit).await?;
    let array: Vec<Value> = tokens.iter().map(|t| t.to_json()).collect();
    Ok(json_response(StatusCode::OK, &Value::Array(array)))
}

/// `GET`, `POST`/`PUT`/`PATCH` (update) and `DELETE` `/v1/authtokens/{token}`.
pub(crate) async fn token<St: TokenStore>(
    State(state): Shared<St>,
    method: Method,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let method = match effective_method(&method, query.as_deref()) {
        Ok(m) => m,
        Err(e) => return logged(&method, TOKEN, Err(e)),
    };
    // A segment that does not even decode names no token.
    let Ok(Path(id)) = id else {
        return logged(&method, TOKEN, Err(AdminError::NotFound("token")));
    };
    let result = match method {
        Method::GET | Method::HEAD => read(&state, &id).await,
        Method::POST | Method::PUT | Method::PATCH => update(&state, &id, &headers, body).await,
        Method::DELETE => delete(&state, &id).await,
        _ => Err(AdminError::MethodNotAllowed(
            "GET, HEAD, POST, PUT, PATCH, DELETE",
        )),
    };
    logged(&method, TOKEN, result)
}

async fn read<St: TokenStore>(state: &AdminState<St>, id: &str) -> AdminResult {
    match state.store.token(id).await? {
        Some(token) => Ok(json_response(StatusCode::OK, &token.to_json())),
        None => Err(AdminError::NotFound("token")),
    }
}

async fn update<St: TokenStore>(
    state: &AdminState<St>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> AdminResult {
    let bytes = body::read(headers, body, state.max_body).await?;
    let patch = body::parse(
        headers,
        &bytes,
        TokenPatch::from_json,
        TokenPatch::from_value,
    )?;
    match state.store.update_token(id, &patch).await? {
        // A volatile token left empty is gone already (SPEC 1.4); it is still shown as updated.
        Some(updated) => Ok(json_response(StatusCode::OK, &updated.token.to_json())),
        None => Err(AdminError::NotFound("token")),
    }
}

async fn delete<St: TokenStore>(state: &AdminState<St>, id: &str) -> AdminResult {
    match state.store.delete_token(id).await? {
        Some(token) => Ok(json_response(StatusCode::OK, &token.to_json())),
        None => Err(AdminError::NotFound("token")),
    }
}

/// `GET /v1/authtokens/{token}/sessions`: the token's live sessions.
pub(crate) async fn token_sessions<St: TokenStore>(
    State(state): Shared<St>,
    method: Method,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let method = effective_method(&method, query.as_deref())?;
        if !matches!(method, Method::GET | Method::HEAD) {
            return Err(AdminError::MethodNotAllowed("GET, HEAD"));
        }
        let id = id
            .ok()
            .and_then(|Path(id)| TokenId::new(&id).ok())
            .ok_or(AdminError::NotFound("token"))?;
        if state.store.token(id.as_str()).await?.is_none() {
            return Err(AdminError::NotFound("token"));
        }
        let sessions = state.store.sessions_of(&OwnerKey::Server(id)).await?;
        let array: Vec<Value> = sessions.iter().map(session_json).collect();
        Ok(json_response(StatusCode::OK, &Value::Array(array)))
    }
    .await;
    logged(&method, TOKEN_SESSIONS, result)
}

fn session_json(session: &Session) -> Value {
    json!({
        "session": session.id.to_string(),
        "token": session.owner.id(),
        "created_at": session.created_at.as_secs(),
        "expires_at": session.ends_at.map(|t| t.as_secs()),
        "owned": session.owned,
    })
}

/// `DELETE /v1/sessions/{id}` (or `POST ?_method=DELETE`): end a session now.
pub(crate) async fn session<St: TokenStore>(
    State(state): Shared<St>,
    method: Method,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let method = match effective_method(&method, query.as_deref()) {
        Ok(m) => m,
        Err(e) => return logged(&method, SESSION, Err(e)),
    };
    let result = async {
        if method != Method::DELETE {
            return Err(AdminError::MethodNotAllowed("DELETE, POST"));
        }
        let id: SessionId = id
            .ok()
            .and_then(|Path(id)| id.parse().ok())
            .ok_or(AdminError::NotFound("session"))?;
        if state.store.end_session(id).await? {
            Ok(json_response(
                StatusCode::OK,
                &json!({"session": id.to_string(), "ended": true}),
            ))
        } else {
            Err(AdminError::NotFound("session"))
        }
    }
    .await;
    logged(&method, SESSION, result)
}

/// `GET /metrics`: the gauges are refreshed from the store first. If the store does not
/// answer, the rest is still served (a failed scrape would hide the denial counters exactly
/// when they matter); `/readyz` is what reports the store.
pub(crate) async fn metrics<St: TokenStore>(State(state): Shared<St>) -> Response {
    match state.store.stats().await {
        Ok(stats) => state.metrics.store_stats(&stats),
        Err(e) => tracing::warn!(error = %e, "store stats unavailable; gauges not refreshed"),
    }
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(prometheus::TEXT_FORMAT),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers.
pub(crate) async fn readyz<St: TokenStore>(State(state): Shared<St>) -> Response {
    match state.store.ping().await {
        Ok(_) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(e) => AdminError::from(e).into_response(),
    }
}

/// Any other method on the public routes.
pub(crate) async fn public_method_not_allowed() -> Response {
    AdminError::MethodNotAllowed("GET, HEAD").into_response()
}

/// Any path the admin API does not serve.
pub(crate) async fn not_found() -> Response {
    AdminError::NotFound("route").into_response()
}
