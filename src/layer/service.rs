use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::Service;

use super::body::{read_up_to, Buffered, OWNERSHIP_READ_LIMIT};
use super::credentials::{self, Credentials, TokenKind, SESSION_HEADER};
use super::delivery::ManifestRead;
use super::future::ResponseFuture;
use super::{Cors, SameSite};
use crate::client_token::ClientTokens;
use crate::clock::Clock;
use crate::metrics::{ActionLabel, Metrics, Outcome};
use crate::policy::{self, Credential, Decision, DenyReason, PresentedSession, SessionUse};
use crate::response::{self, boxed, Body, BoxError};
use crate::route::{Route, RouteError, Routes};
use crate::session::{OwnerKey, Session, SessionId};
use crate::store::{
    destroy_video_retrying, SessionCreation, SessionTerms, StoredToken, TokenStore, Version,
};
use crate::token::{Action, AuthToken, TokenId};

/// Everything the checks need, shared by every clone of the service.
pub(super) struct Gate<St> {
    pub(super) store: Arc<St>,
    pub(super) routes: Routes,
    pub(super) client_tokens: Arc<ClientTokens>,
    pub(super) metrics: Metrics,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) bearer_auth: bool,
    pub(super) same_site: SameSite,
    pub(super) tls: bool,
    pub(super) cors: Option<Arc<Cors>>,
}

impl<St> Clone for Gate<St> {
    fn clone(&self) -> Self {
        Gate {
            store: self.store.clone(),
            routes: self.routes.clone(),
            client_tokens: self.client_tokens.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            bearer_auth: self.bearer_auth,
            same_site: self.same_site,
            tls: self.tls,
            cors: self.cors.clone(),
        }
    }
}

/// The service [`VidgateLayer`](super::VidgateLayer) wraps around an inner service.
pub struct Vidgate<S, St> {
    inner: S,
    gate: Arc<Gate<St>>,
}

impl<S: Clone, St> Clone for Vidgate<S, St> {
    fn clone(&self) -> Self {
        Vidgate {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<S, St> Vidgate<S, St> {
    pub(super) fn new(inner: S, gate: Arc<Gate<St>>) -> Self {
        Vidgate { inner, gate }
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for Vidgate<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: TokenStore,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        ResponseFuture {
            inner: Box::pin(handle(gate, inner, request)),
        }
    }
}

/// What was allowed, carried from the checks to the response.
struct Allowed {
    action: Action,
    video: Option<String>,
    whole_video: bool,
    /// The session the request runs in, if its token needs one.
    session: Option<SessionId>,
    /// A session created by this request, to hand to the client.
    created: Option<(Session, String)>,
}

/// A refusal, with the label it is counted under.
struct Refusal {
    reason: DenyReason,
    action: ActionLabel,
    route: &'static str,
}

impl Refusal {
    fn new(reason: DenyReason, action: ActionLabel, route: &'static str) -> Self {
        Refusal {
            reason,
            action,
            route,
        }
    }
}

fn route_name(route: &Route) -> &'static str {
    match route {
        Route::Video {
            video: None,
            action: Action::Create,
            ..
        } => "create",
        Route::Video { video: None, .. } => "list",
        Route::Video {
            whole_video: true, ..
        } => "video",
        Route::Video { .. } => "video_sub",
        Route::CreateSession => "session",
        Route::Preflight => "preflight",
        Route::PassThrough => "pass",
    }
}

/// CORS around the checks: preflights answered here, every other response decorated.
async fn handle<S, St, ReqBody, ResBody>(
    gate: Arc<Gate<St>>,
    inner: S,
    request: Request<ReqBody>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: TokenStore,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let Some(cors) = gate.cors.clone() else {
        return checked(gate, inner, request).await;
    };
    if Cors::is_preflight(request.method(), request.headers()) {
        gate.metrics.request(ActionLabel::None, Outcome::Allowed);
        return Ok(cors.preflight(request.headers()));
    }
    let mut origin = http::HeaderMap::new();
    if let Some(value) = request.headers().get(http::header::ORIGIN) {
        origin.insert(http::header::ORIGIN, value.clone());
    }
    let mut response = checked(gate, inner, request).await?;
    cors.decorate(&origin, response.headers_mut());
    Ok(response)
}

async fn checked<S, St, ReqBody, ResBody>(
    gate: Arc<Gate<St>>,
    mut inner: S,
    request: Request<ReqBody>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: TokenStore,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let credentials = Credentials::extract(&parts, gate.bearer_auth);

    // Step 1: the path, the method, the route.
    let overrides: Vec<&str> = credentials
        .method_overrides
        .iter()
        .map(String::as_str)
        .collect();
    let (method, route) =
        match gate
            .routes
            .classify(&parts.method, &overrides, &parts.headers, parts.uri.path())
        {
            Ok(found) => found,
            Err(e) => {
                let reason = match e {
                    RouteError::BadPath => DenyReason::BadPath,
                    RouteError::BadRequest => DenyReason::BadRequest,
                    RouteError::NoRoute => DenyReason::NoRoute,
                };
                return Ok(gate.refuse(Refusal::new(reason, ActionLabel::None, "none"), started));
            }
        };
    let name = route_name(&route);

    let allowed = match route {
        // Preflights and unmatched paths under `unmatched = "pass"` go through unchecked.
        Route::Preflight | Route::PassThrough => {
            gate.metrics.request(ActionLabel::None, Outcome::Allowed);
            credentials::strip(&mut parts, gate.bearer_auth);
            let response = inner.call(Request::from_parts(parts, body)).await?;
            return Ok(response.map(boxed));
        }
        Route::CreateSession => {
            return Ok(match gate.open_session(&credentials).await {
                Ok(response) => response,
                Err(refusal) => gate.refuse(refusal, started),
            });
        }
        Route::Video {
            action,
            video,
            whole_video,
        } => {
            match gate
                .check(&parts, &credentials, action, video, whole_video, name)
                .await
            {
                Ok(allowed) => allowed,
                Err(refusal) => return Ok(gate.refuse(refusal, started)),
            }
        }
    };
    gate.metrics.decision_time(started.elapsed().as_secs_f64());
    gate.metrics
        .request(ActionLabel::Action(allowed.action), Outcome::Allowed);

    // Forward exactly what was checked: the effective method, no vidgate credentials.
    credentials::strip(&mut parts, gate.bearer_auth);
    parts.method = method;
    let manifest = match (allowed.action, credentials.token()) {
        (Action::Read, Ok(token)) => ManifestRead::prepare(
            &mut parts,
            gate.tls,
            (token.kind, &token.value),
            allowed.session,
        ),
        _ => None,
    };
    let recording = allowed.action == Action::Create && allowed.session.is_some();
    if recording {
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    let response = inner.call(Request::from_parts(parts, body)).await?;
    let success = response.status().is_success();
    let mut response = response.map(boxed);

    if success && recording {
        response = gate.record_ownership(response, allowed.session).await;
    }
    if let Some(manifest) = manifest {
        response = manifest.finish(response).await;
    }
    if success && allowed.action == Action::Destroy && allowed.whole_video {
        if let Some(video) = &allowed.video {
            destroy_video_retrying(&gate.store, video.clone()).await;
        }
    }
    if let Some((session, cookie_name)) = &allowed.created {
        gate.hand_out(response.headers_mut(), session, cookie_name);
    }
    Ok(response)
}

impl<St: TokenStore> Gate<St> {
    /// Answer a refusal: its JSON response, one log line, the counters.
    fn refuse(&self, refusal: Refusal, started: Instant) -> Response<Body> {
        let Refusal {
            reason,
            action,
            route,
        } = refusal;
        self.metrics.decision_time(started.elapsed().as_secs_f64());
        self.metrics.request(action, Outcome::Denied);
        self.metrics.denial(reason);
        tracing::info!(
            reason = reason.as_str(),
            action = action.as_str(),
            status = reason.status().as_u16(),
            route,
            "request denied"
        );
        response::error(reason)
    }

    /// Steps 2 and 3: the request's one token, looked up or verified.
    async fn credential(
        &self,
        credentials: &Credentials,
        action: ActionLabel,
        route: &'static str,
    ) -> Result<(StoredToken, OwnerKey), Refusal> {
        let refusal = |reason| Refusal::new(reason, action, route);
        let presented = credentials.token().map_err(refusal)?;
        match presented.kind {
            TokenKind::Server => {
                if !TokenId::is_valid(&presented.value) {
                    return Err(refusal(DenyReason::InvalidToken));
                }
                let stored = self
                    .store
                    .token(&presented.value)
                    .await
                    .map_err(|e| self.store_failed(e, action, route))?
                    .ok_or_else(|| refusal(DenyReason::InvalidToken))?;
                let owner = OwnerKey::Server(stored.token.id.clone());
                Ok((stored, owner))
            }
            TokenKind::Client => {
                let verified = self
                    .client_tokens
                    .verify(&presented.value, self.clock.now())
                    .map_err(|refused| {
                        // A fixed code only: never the token, nor a claim's value.
                        tracing::debug!(why = refused.code(), "client token refused");
                        refusal(DenyReason::InvalidToken)
                    })?;
                // Never stored: its counter and version belong to no store.
                let stored = StoredToken {
                    token: Arc::new(verified.token),
                    sessions_created: 0,
                    version: Version::new(0),
                };
                Ok((stored, verified.owner))
            }
        }
    }

    fn store_failed(
        &self,
        error: crate::store::StoreError,
        action: ActionLabel,
        route: &'static str,
    ) -> Refusal {
        tracing::error!(%error, "store step failed; refusing the request");
        Refusal::new(DenyReason::StoreUnavailable, action, route)
    }

    /// The session credential of the request, as the store knows it.
    async fn presented_session(
        &self,
        parts: &Parts,
        credentials: &Credentials,
        owner: &OwnerKey,
        action: ActionLabel,
        route: &'static str,
    ) -> Result<Option<(Option<Session>, policy::SessionSource)>, Refusal> {
        let Some((value, source)) = credentials.session(&parts.headers, || self.cookie_name(owner))
        else {
            return Ok(None);
        };
        let Ok(id) = value.parse::<SessionId>() else {
            return Ok(Some((None, source)));
        };
        let found = self
            .store
            .session(id)
            .await
            .map_err(|e| self.store_failed(e, action, route))?;
        Ok(Some((found, source)))
    }

    /// Steps 2 to 6 for a video route.
    async fn check(
        &self,
        parts: &Parts,
        credentials: &Credentials,
        action: Action,
        video: Option<String>,
        whole_video: bool,
        route: &'static str,
    ) -> Result<Allowed, Refusal> {
        let label = ActionLabel::Action(action);
        let (stored, owner) = self.credential(credentials, label, route).await?;
        let token = &stored.token;
        let presented = if token.needs_sessions() {
            self.presented_session(parts, credentials, &owner, label, route)
                .await?
        } else {
            None
        };
        let presented_ref = match &presented {
            Some((found, source)) => PresentedSession::Some {
                found: found.as_ref(),
                source: *source,
            },
            None => PresentedSession::None,
        };
        let credential = Credential {
            token,
            owner: &owner,
        };
        let now = self.clock.now();
        let decision = policy::decide(
            Some(credential),
            presented_ref,
            action,
            video.as_deref(),
            now,
        );
        let (session, created) = match decision {
            Decision::Deny(reason) => return Err(Refusal::new(reason, label, route)),
            Decision::Allow(SessionUse::NotNeeded) => (None, None),
            Decision::Allow(SessionUse::Existing(id)) => (Some(id), None),
            Decision::Allow(SessionUse::Create) => {
                let session = self.create_session(token, &owner, label, route).await?;
                (Some(session.id), Some((session, self.cookie_name(&owner))))
            }
        };
        Ok(Allowed {
            action,
            video,
            whole_video,
            session,
            created,
        })
    }

    /// Step 6: create a session, atomically counted.
    async fn create_session(
        &self,
        token: &AuthToken,
        owner: &OwnerKey,
        action: ActionLabel,
        route: &'static str,
    ) -> Result<Session, Refusal> {
        let created = self
            .store
            .create_session(owner, SessionTerms::of(token))
            .await
            .map_err(|e| self.store_failed(e, action, route))?;
        match created {
            SessionCreation::Created(session) => {
                self.metrics.session_created();
                Ok(session)
            }
            SessionCreation::LimitReached => {
                Err(Refusal::new(DenyReason::SessionLimitReached, action, route))
            }
            // Expired since it was read: the expiry, as if seen before; deleted: not found.
            SessionCreation::OwnerGone => {
                let reason = if token.is_expired(self.clock.now()) {
                    DenyReason::TokenExpired
                } else {
                    DenyReason::InvalidToken
                };
                Err(Refusal::new(reason, action, route))
            }
        }
    }

    /// `POST {prefix}/session`: a new session for any valid token (SPEC 2.3).
    async fn open_session(&self, credentials: &Credentials) -> Result<Response<Body>, Refusal> {
        let started = Instant::now();
        let label = ActionLabel::Session;
        let (stored, owner) = self.credential(credentials, label, "session").await?;
        let credential = Credential {
            token: &stored.token,
            owner: &owner,
        };
        policy::check_token(Some(credential), self.clock.now())
            .map_err(|reason| Refusal::new(reason, label, "session"))?;
        let session = self
            .create_session(&stored.token, &owner, label, "session")
            .await?;
        self.metrics.decision_time(started.elapsed().as_secs_f64());
        self.metrics.request(label, Outcome::Allowed);
        let body = serde_json::json!({
            "session": session.id.to_string(),
            "expires_at": session.ends_at.map(|t| t.as_secs()),
        });
        let mut response = response::json(StatusCode::CREATED, &body);
        self.hand_out(response.headers_mut(), &session, &self.cookie_name(&owner));
        Ok(response)
    }

    fn cookie_name(&self, owner: &OwnerKey) -> String {
        let name = owner.cookie_name();
        if self.tls {
            format!("__Host-{name}")
        } else {
            name
        }
    }

    /// Give a new session to the client: `X-Vidgate-Session` and the session cookie.
    fn hand_out(&self, headers: &mut http::HeaderMap, session: &Session, cookie_name: &str) {
        let id = session.id.to_string();
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert(SESSION_HEADER, value);
        }
        let mut cookie = format!(
            "{cookie_name}={id}; Path=/; HttpOnly; SameSite={}",
            self.same_site.as_str()
        );
        if let Some(end) = session.ends_at {
            let remaining = self.clock.now().until(end).as_secs().max(1);
            cookie.push_str(&format!("; Max-Age={remaining}"));
        }
        if self.tls {
            cookie.push_str("; Secure");
        }
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }

    /// SPEC 2.4: find the created video's id in a successful create response and record it
    /// in the session before the response head goes out.
    async fn record_ownership(
        &self,
        response: Response<Body>,
        session: Option<SessionId>,
    ) -> Response<Body> {
        let Some(session) = session else {
            return response;
        };
        let (parts, body) = response.into_parts();
        let location_id = parts
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(last_segment);
        let encoding = parts.headers.get(CONTENT_ENCODING).cloned();
        let (ids, body) = match read_up_to(body, OWNERSHIP_READ_LIMIT).await {
            Ok(Buffered::Whole(bytes)) => {
                // Read a decoded copy; the client gets the bytes exactly as the origin sent them.
                let mut ids =
                    match decoded_for_reading(encoding.as_ref(), &bytes, OWNERSHIP_READ_LIMIT) {
                        Some(plain) => ids_in_json(&plain),
                        None => Vec::new(),
                    };
                if ids.is_empty() {
                    ids.extend(location_id);
                }
                (ids, response::full(bytes))
            }
            Ok(Buffered::Partial(body)) => (location_id.into_iter().collect(), body),
            Err(error) => {
                tracing::warn!(%error, "create response body failed while reading it for ownership");
                (Vec::new(), response::full(Bytes::new()))
            }
        };
        if ids.is_empty() {
            tracing::warn!("create response holds no video id; nothing recorded as owned");
        }
        for id in &ids {
            if let Err(error) = self.store.record_owned(session, id).await {
                tracing::error!(%error, "could not record a created video as owned by its session");
            }
        }
        Response::from_parts(parts, body)
    }
}

/// A response body vidgate must read (a create response, a manifest) as plain bytes: decoded
/// when the origin compressed it anyway (gzip or deflate), at most `limit` decoded bytes.
pub(super) fn decoded_for_reading<'a>(
    encoding: Option<&HeaderValue>,
    bytes: &'a [u8],
    limit: usize,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    use std::io::Read;
    let Some(encoding) = encoding.and_then(|v| v.to_str().ok()) else {
        return Some(std::borrow::Cow::Borrowed(bytes));
    };
    let mut plain = Vec::new();
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => return Some(std::borrow::Cow::Borrowed(bytes)),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(bytes)
            .take(limit as u64 + 1)
            .read_to_end(&mut plain),
        "deflate" => flate2::read::ZlibDecoder::new(bytes)
            .take(limit as u64 + 1)
            .read_to_end(&mut plain),
        other => {
            tracing::warn!(
                encoding = other,
                "response in an encoding vidgate cannot read; forwarded as it is"
            );
            return None;
        }
    };
    match read {
        Ok(n) if n <= limit => Some(std::borrow::Cow::Owned(plain)),
        Ok(_) => {
            tracing::warn!(
                limit,
                "response decodes to more than the read limit; not read"
            );
            None
        }
        Err(error) => {
            tracing::warn!(%error, "response does not decode as its Content-Encoding says");
            None
        }
    }
}

/// The ids in a create response's JSON body: its `token`, and its `key` when present.
fn ids_in_json(bytes: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    ["token", "key"]
        .iter()
        .filter_map(|field| value.get(field)?.as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The last non-empty path segment of a `Location` value, percent-decoded.
fn last_segment(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let segment = path.trim_end_matches('/').rsplit('/').next()?;
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    (!decoded.is_empty()).then(|| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_token_and_key() {
        assert_eq!(
            ids_in_json(br#"{"token": "abc", "key": "my-key"}"#),
            vec!["abc", "my-key"]
        );
        assert_eq!(ids_in_json(br#"{"token": "abc"}"#), vec!["abc"]);
        assert!(ids_in_json(br#"{"id": "abc"}"#).is_empty());
        assert!(ids_in_json(b"not json").is_empty());
        assert!(ids_in_json(br#"{"token": 5}"#).is_empty());
    }

    #[test]
    fn compressed_create_responses_are_read_decoded() {
        use std::io::Write;
        let json = br#"{"token": "zipped"}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json).unwrap();
        let gz = gz.finish().unwrap();
        let plain = decoded_for_reading(
            Some(&HeaderValue::from_static("gzip")),
            &gz,
            OWNERSHIP_READ_LIMIT,
        )
        .unwrap();
        assert_eq!(ids_in_json(&plain), vec!["zipped"]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(json).unwrap();
        let z = z.finish().unwrap();
        let plain = decoded_for_reading(
            Some(&HeaderValue::from_static("deflate")),
            &z,
            OWNERSHIP_READ_LIMIT,
        )
        .unwrap();
        assert_eq!(ids_in_json(&plain), vec!["zipped"]);
        assert!(decoded_for_reading(
            Some(&HeaderValue::from_static("br")),
            json,
            OWNERSHIP_READ_LIMIT
        )
        .is_none());
        let not_gzip = decoded_for_reading(
            Some(&HeaderValue::from_static("gzip")),
            json,
            OWNERSHIP_READ_LIMIT,
        );
        assert!(not_gzip.is_none());
        assert_eq!(
            &*decoded_for_reading(None, json, OWNERSHIP_READ_LIMIT).unwrap(),
            json
        );
    }

    #[test]
    fn a_bomb_is_not_decoded_past_the_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; OWNERSHIP_READ_LIMIT * 4]).unwrap();
        let gz = gz.finish().unwrap();
        assert!(decoded_for_reading(
            Some(&HeaderValue::from_static("gzip")),
            &gz,
            OWNERSHIP_READ_LIMIT
        )
        .is_none());
    }

    #[test]
    fn location_gives_its_last_segment() {
        assert_eq!(last_segment("/v1/videos/abc").as_deref(), Some("abc"));
        assert_eq!(
            last_segment("https://o.example/videos/a%20b/?x=1").as_deref(),
            Some("a b")
        );
        assert_eq!(last_segment("/"), None);
    }
}
