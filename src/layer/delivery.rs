//! Manifests on the way through (SPEC 2.7): asked for whole, read, rewritten so that the
//! player's next requests carry the token and the session, and answered with honest headers.
//! Every other body streams through untouched.
//!
//! [`ManifestRead::prepare`] is the request half (before the origin is asked),
//! [`ManifestRead::finish`] the response half; the query they append is only built for a
//! response that turns out to be a manifest.

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, HOST, IF_RANGE, RANGE, TRANSFER_ENCODING,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::body::{decoded_for_reading, read_up_to, Buffered};
use crate::credentials::{TokenCredential, SESSION_PARAMETER};
use crate::manifest::{dash, hls, Kind, Rewrite};
use crate::response::{self, Body};
use crate::session::SessionId;

/// The largest manifest vidgate reads to rewrite, decoded. A larger one streams through as
/// it is (and a warning is logged): players then lose the session on its segments.
pub const MANIFEST_READ_LIMIT: usize = 16 << 20;

/// Everything but RFC 3986's unreserved characters is percent-encoded in appended values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A read that may be of a manifest: what is needed to rewrite its response.
pub(super) struct ManifestRead {
    by_path: Option<Kind>,
    head: bool,
    scheme: &'static str,
    /// The authority the client addressed (`Host`, else the request target's).
    host: Option<HeaderValue>,
}

impl ManifestRead {
    /// For an allowed GET or HEAD read: what the response needs if it turns out to be a
    /// manifest. A path that names one (`.m3u8`, `.mpd`) also changes the request: a manifest
    /// is fetched whole and unencoded, since it will be rewritten.
    pub(super) fn prepare<B>(request: &mut Request<B>, tls: bool) -> Option<ManifestRead> {
        let head = request.method() == Method::HEAD;
        if request.method() != Method::GET && !head {
            return None;
        }
        let by_path = Kind::by_path(request.uri().path());
        let headers = request.headers_mut();
        if by_path.is_some() {
            headers.remove(RANGE);
            headers.remove(IF_RANGE);
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let host = headers
            .get(HOST)
            .filter(|h| h.to_str().is_ok())
            .cloned()
            .or_else(|| {
                let authority = request.uri().authority()?;
                HeaderValue::from_str(authority.as_str()).ok()
            });
        Some(ManifestRead {
            by_path,
            head,
            scheme: if tls { "https" } else { "http" },
            host,
        })
    }

    /// The query a manifest's URIs get: the token (as `server_auth` or `client_auth`, by its
    /// kind) and the session.
    fn query(token: &TokenCredential, session: Option<SessionId>) -> String {
        let mut query = format!(
            "{}={}",
            token.kind.parameter(),
            utf8_percent_encode(&token.value, QUERY_VALUE)
        );
        if let Some(session) = session {
            query.push_str(&format!("&{SESSION_PARAMETER}={session}"));
        }
        query
    }

    /// Rewrite the response if it is a manifest, appending `token` and `session` to its
    /// same-origin URIs; any other response comes back unchanged.
    pub(super) async fn finish(
        self,
        response: Response<Body>,
        token: &TokenCredential,
        session: Option<SessionId>,
    ) -> Response<Body> {
        let by_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(Kind::by_content_type);
        let Some(kind) = by_type.or(self.by_path) else {
            return response;
        };
        // A 206 (a range of a manifest the path did not name) or an error is not rewritten.
        if response.status() != StatusCode::OK {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let headers = &mut parts.headers;
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        if self.head {
            // The rewritten length is not known without the body.
            headers.remove(CONTENT_LENGTH);
            return Response::from_parts(parts, body);
        }
        let encoding = headers.get(CONTENT_ENCODING).cloned();
        let bytes = match read_up_to(body, MANIFEST_READ_LIMIT).await {
            Ok(Buffered::Whole(bytes)) => bytes,
            Ok(Buffered::Partial(rest)) => {
                tracing::warn!(
                    limit = MANIFEST_READ_LIMIT,
                    "manifest larger than the read limit; forwarded without rewriting"
                );
                return Response::from_parts(parts, rest);
            }
            Err(error) => {
                tracing::warn!(%error, "manifest body failed while reading it");
                return Response::from_parts(parts, response::full(Bytes::new()));
            }
        };
        let Some(plain) = decoded_for_reading(encoding.as_ref(), &bytes, MANIFEST_READ_LIMIT)
        else {
            return Response::from_parts(parts, response::full(bytes));
        };
        let query = Self::query(token, session);
        let rewrite = Rewrite {
            scheme: self.scheme,
            host: self
                .host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default(),
            query: &query,
        };
        let rewritten = match kind {
            Kind::Hls => match std::str::from_utf8(&plain) {
                Ok(text) => Ok(hls::rewrite(text, &rewrite).into_bytes()),
                Err(_) => Err("an HLS playlist that is not UTF-8".to_owned()),
            },
            Kind::Dash => dash::rewrite(&plain, &rewrite).map_err(|e| e.to_string()),
        };
        let rewritten = match rewritten {
            Ok(rewritten) => rewritten,
            Err(problem) => {
                tracing::warn!(%problem, "manifest not rewritten; forwarded as it is");
                return Response::from_parts(parts, response::full(bytes));
            }
        };
        for name in [
            CONTENT_ENCODING,
            TRANSFER_ENCODING,
            ETAG,
            CONTENT_RANGE,
            ACCEPT_RANGES,
        ] {
            headers.remove(name);
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
        Response::from_parts(parts, response::full(Bytes::from(rewritten)))
    }
}
