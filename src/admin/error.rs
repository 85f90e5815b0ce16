//! The admin API's refusals: each [`AdminError`] maps to exactly one status and one reason
//! string, here and nowhere else.

use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::store::StoreError;
use crate::token::TokenError;

/// Why the admin API refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminError {
    /// 400 `bad_request`: a malformed body or query; the message names the field.
    BadRequest(String),
    /// 401 `unauthorized`: missing or wrong credentials.
    Unauthorized,
    /// 404 `not_found`: no such token, session or route.
    NotFound(&'static str),
    /// 405 `method_not_allowed`, with the methods the path allows.
    MethodNotAllowed(&'static str),
    /// 409 `token_exists`: the requested token id is taken.
    TokenExists,
    /// 413 `body_too_large`: a body over [`super::body::MAX_BODY`].
    BodyTooLarge(usize),
    /// 422 `unprocessable`: a well-formed body describing a token that cannot exist.
    Unprocessable(String),
    /// 503 `store_unavailable`: the store failed; nothing was changed by this request.
    StoreUnavailable,
}

impl AdminError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::TokenExists => StatusCode::CONFLICT,
            AdminError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` field of the JSON body.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "bad_request",
            AdminError::Unauthorized => "unauthorized",
            AdminError::NotFound(_) => "not_found",
            AdminError::MethodNotAllowed(_) => "method_not_allowed",
            AdminError::TokenExists => "token_exists",
            AdminError::BodyTooLarge(_) => "body_too_large",
            AdminError::Unprocessable(_) => "unprocessable",
            AdminError::StoreUnavailable => "store_unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            AdminError::BadRequest(m) | AdminError::Unprocessable(m) => m.clone(),
            AdminError::Unauthorized => {
                "The admin API needs HTTP Basic app_token:private_key or Bearer private_key.".into()
            }
            AdminError::NotFound(what) => format!("No such {what}."),
            AdminError::MethodNotAllowed(allow) => {
                format!("This path only answers {allow}.")
            }
            AdminError::TokenExists => "A token with this id exists already.".into(),
            AdminError::BodyTooLarge(max) => {
                format!("The body is larger than {max} bytes (admin.max_body).")
            }
            AdminError::StoreUnavailable => {
                "The token store is unavailable; nothing was changed.".into()
            }
        }
    }
}

impl From<TokenError> for AdminError {
    fn from(e: TokenError) -> Self {
        // `.` is the body as a whole; serde's message names an unknown key by itself.
        let message = match e.field() {
            "" | "." => e.message().to_owned(),
            _ => e.to_string(),
        };
        if e.is_unprocessable() {
            AdminError::Unprocessable(message)
        } else {
            AdminError::BadRequest(message)
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TokenExists => AdminError::TokenExists,
            // Any other failure (StoreError is non-exhaustive) fails closed the same way.
            other => {
                tracing::warn!(error = %other, "admin request failed in the store");
                AdminError::StoreUnavailable
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.reason(), "message": self.message()});
        let mut response = super::json_response(self.status(), &body);
        let headers = response.headers_mut();
        match self {
            AdminError::Unauthorized => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="vidgate admin""#),
                );
            }
            AdminError::MethodNotAllowed(allow) => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        response
    }
}
