//! CORS (SPEC 2.7): with `[proxy.cors]`, vidgate answers preflights itself and adds the CORS
//! headers to every response it lets a browser read, denials included, so that a player page
//! on another origin can read `X-Vidgate-Session` and keep its session.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::config::CorsConfig;
use crate::response::{self, Body};

/// The allowed origins of `[proxy.cors]`.
#[derive(Debug, Clone)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

/// What a browser may read of a response: the session vidgate hands out, and what a player
/// needs for Range requests.
const EXPOSED: &str = "X-Vidgate-Session, Content-Range, Content-Length, Accept-Ranges";
/// What a request may do: every method vidgate routes.
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// The request headers a preflight allows when it asks for none in particular.
const HEADERS: &str =
    "Authorization, Range, If-Range, X-Vidgate-Session, X-HTTP-Method-Override, Content-Type";
/// How long a browser may cache a preflight, in seconds.
const MAX_AGE: &str = "600";

impl Cors {
    /// From `[proxy.cors]` (validated: `"*"` alone, or exact origins).
    pub fn new(config: &CorsConfig) -> Cors {
        Cors {
            any: config.allowed_origins.iter().any(|o| o == "*"),
            origins: config.allowed_origins.clone(),
        }
    }

    /// The request's `Origin`, if it is allowed.
    fn allowed<'h>(&self, request: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let origin = request.get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        (self.any || self.origins.iter().any(|o| o == text)).then_some(origin)
    }

    /// Whether a request is a CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
    pub fn is_preflight(method: &http::Method, request: &HeaderMap) -> bool {
        method == http::Method::OPTIONS && request.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight: 204, with the CORS headers when the origin is allowed (and
    /// without them when not, which the browser takes as a refusal).
    pub fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut answer = Response::new(response::full(bytes::Bytes::new()));
        *answer.status_mut() = StatusCode::NO_CONTENT;
        let headers = answer.headers_mut();
        headers.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        if self.allowed(request).is_some() {
            self.allow(request, headers);
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            let asked = request
                .get(ACCESS_CONTROL_REQUEST_HEADERS)
                .filter(|v| v.to_str().is_ok_and(is_header_list))
                .cloned()
                .unwrap_or(HeaderValue::from_static(HEADERS));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked);
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        }
        answer
    }

    /// Add the CORS headers for this request's origin to any response, replacing whatever
    /// CORS headers the origin server sent (vidgate is the one deciding now).
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            response.remove(name);
        }
        response.append(VARY, HeaderValue::from_static("Origin"));
        if self.allowed(request).is_some() {
            self.allow(request, response);
            response.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }

    /// `Access-Control-Allow-Origin`: `*` when any origin is allowed (and then no
    /// credentials, as browsers require), else the request's origin, with credentials.
    fn allow(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if self.any {
            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else if let Some(origin) = self.allowed(request) {
            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// A comma-separated list of header names (tokens), as a preflight asks for them.
fn is_header_list(value: &str) -> bool {
    value.split(',').all(|name| {
        let name = name.trim();
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors::new(&CorsConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn request(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        h
    }

    #[test]
    fn an_allowed_origin_is_echoed_with_credentials() {
        let c = cors(&["https://player.example"]);
        let answer = c.preflight(&request("https://player.example"));
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let h = answer.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://player.example");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], HEADERS);
        let mut response = HeaderMap::new();
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        c.decorate(&request("https://player.example"), &mut response);
        assert_eq!(
            response[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://player.example"
        );
        assert!(response[ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .contains("X-Vidgate-Session"));
    }

    #[test]
    fn other_origins_get_no_cors_headers() {
        let c = cors(&["https://player.example"]);
        let answer = c.preflight(&request("https://evil.example"));
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert!(!answer.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let mut response = HeaderMap::new();
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        c.decorate(&request("https://evil.example"), &mut response);
        assert!(
            !response.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN),
            "the origin server's own CORS header does not leak through"
        );
    }

    #[test]
    fn any_origin_is_a_star_without_credentials() {
        let c = cors(&["*"]);
        let mut response = HeaderMap::new();
        c.decorate(&request("https://anyone.example"), &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }

    #[test]
    fn requested_headers_are_echoed_only_when_well_formed() {
        let c = cors(&["https://p.example"]);
        let mut r = request("https://p.example");
        r.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("range, x-vidgate-session"),
        );
        assert_eq!(
            c.preflight(&r).headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            "range, x-vidgate-session"
        );
        r.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("range, (bad)"),
        );
        assert_eq!(
            c.preflight(&r).headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            HEADERS
        );
    }
}
