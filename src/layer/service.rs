//! [`Vidgate`], the service, and the phases every request goes through, in order
//! ([`Gate::handle`]).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

use super::authorize::authorize;
use super::ctx::RequestCtx;
use super::delivery::ManifestRead;
use super::future::ResponseFuture;
use super::gate::Gate;
use super::ownership;
use crate::response::{boxed, Body, BoxError};
use crate::store::{destroy_video_retrying, TokenStore};
use crate::token::Action;

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
        ResponseFuture::new(async move { gate.handle(inner, request).await })
    }
}

impl<St: TokenStore> Gate<St> {
    /// One request, phase by phase:
    /// 1. **authorize**: route, token, session, grant, session creation (SPEC 2.6); the
    ///    request to forward, or vidgate's answer;
    /// 2. **upstream request**: ask for a manifest whole, for a create response unencoded;
    /// 3. the inner service (the origin);
    /// 4. **upstream response**: record ownership of a created video, rewrite a manifest, run
    ///    the destroy cascade;
    /// 5. **respond**: hand out a created session, add the CORS headers;
    /// 6. **logging**: the metrics and the denial line, once.
    async fn handle<S, ReqBody, ResBody>(
        self: Arc<Self>,
        mut inner: S,
        request: Request<ReqBody>,
    ) -> Result<Response<Body>, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let mut ctx = RequestCtx::new();
        let response = match authorize(&self, &mut ctx, request).await {
            Ok(mut request) => {
                self.upstream_request(&mut ctx, &mut request);
                match inner.call(request).await {
                    Ok(response) => self.upstream_response(&mut ctx, response.map(boxed)).await,
                    Err(error) => {
                        ctx.log(&self.metrics);
                        return Err(error);
                    }
                }
            }
            Err(answer) => answer,
        };
        let response = self.respond(&ctx, response);
        ctx.log(&self.metrics);
        Ok(response)
    }

    /// What an allowed request needs changed before the origin sees it, beyond authorization.
    fn upstream_request<B>(&self, ctx: &mut RequestCtx, request: &mut Request<B>) {
        match ctx.allowed.as_ref().map(|allowed| allowed.action) {
            Some(Action::Read) => ctx.manifest = ManifestRead::prepare(request, self.tls),
            // Its body will be read for the created video's id.
            Some(Action::Create) if ctx.session.is_some() => {
                ownership::ask_unencoded(request.headers_mut());
            }
            _ => {}
        }
    }

    /// What the origin's answer to an allowed request sets off (SPEC 2.4, 2.5, 2.7).
    async fn upstream_response(
        &self,
        ctx: &mut RequestCtx,
        mut response: Response<Body>,
    ) -> Response<Body> {
        let Some(allowed) = &ctx.allowed else {
            return response;
        };
        let success = response.status().is_success();
        if let (true, Action::Create, Some(session)) = (success, allowed.action, ctx.session) {
            response = ownership::record(&*self.store, response, session).await;
        }
        if let (Some(manifest), Some(token)) = (ctx.manifest.take(), &ctx.token) {
            response = manifest.finish(response, token, ctx.session).await;
        }
        if success && allowed.action == Action::Destroy && allowed.whole_video {
            if let Some(video) = &allowed.video {
                destroy_video_retrying(&self.store, video.clone()).await;
            }
        }
        response
    }

    /// What every response gets on its way out, vidgate's own included.
    fn respond(&self, ctx: &RequestCtx, mut response: Response<Body>) -> Response<Body> {
        if let Some((session, owner)) = &ctx.created {
            let remaining = session.ends_at.map(|end| self.clock.now().until(end));
            self.cookies()
                .hand_out(response.headers_mut(), owner, session.id, remaining);
        }
        if let (Some(cors), Some(request)) = (&self.cors, &ctx.cors_request) {
            cors.decorate(request, response.headers_mut());
        }
        response
    }
}
