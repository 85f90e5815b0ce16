//! The responses vidgate makes itself: every error as `{"error", "message"}` JSON with the
//! status of SPEC 2.6, and the body type the gateway's responses share.
//!
//! Building a response is the only thing here: which reason applies is decided elsewhere.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use crate::policy::DenyReason;

/// Errors that a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the gateway sends: the origin's, streamed, or one vidgate made.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Any body, boxed into [`Body`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A JSON response with `status` and this value as its body (non-ASCII escaped, so that
/// clients that decode as ASCII can read it).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let text = ascii_json(value);
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The error response for `reason` (SPEC 2.6); a 401 also carries
/// `WWW-Authenticate: Bearer error="invalid_token"`.
pub fn error(reason: DenyReason) -> Response<Body> {
    let body = serde_json::json!({"error": reason.as_str(), "message": reason.message()});
    let mut response = json(reason.status(), &body);
    if reason.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
    }
    response
}

/// JSON text with every non-ASCII character escaped as `\uXXXX`.
pub fn ascii_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.is_ascii() {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_reason_answers_its_status_with_json() {
        for reason in DenyReason::ALL {
            let response = error(reason);
            assert_eq!(response.status(), reason.status());
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            let unauthorized = reason.status() == StatusCode::UNAUTHORIZED;
            assert_eq!(
                response.headers().contains_key(WWW_AUTHENTICATE),
                unauthorized
            );
            let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
            assert_eq!(body["error"], reason.as_str());
            assert_eq!(body["message"], reason.message());
        }
    }

    #[test]
    fn json_escapes_non_ascii() {
        let text = ascii_json(&serde_json::json!({"v": "vidéo 日本 😀"}));
        assert!(text.is_ascii(), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["v"], "vidéo 日本 😀");
    }
}
