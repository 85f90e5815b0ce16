//! Reading admin requests: bodies (JSON or forms, SPEC 3), the `_method` override (by the
//! route's rules, [`crate::route::method_override`]) and the list's `limit`/`skip`.
//!
//! Ziggeo's server SDKs send forms in which every value is a string: `grants` holds JSON,
//! integers are decimal, bools are `true`/`false`/`1`/`0` in any case (Python sends `True`)
//! and an empty value clears a field. A form is turned into the JSON object it stands for,
//! field by field, and then validated exactly like a JSON body, by [`crate::token`].

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

use super::error::AdminError;
use crate::form;
use crate::route;
use crate::token::TokenError;

/// The whole body, at most `max` bytes (`admin.max_body`); a larger one is 413
/// `body_too_large`, refused by its `Content-Length` before a byte of it is read.
pub(crate) async fn read(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, AdminError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(AdminError::BodyTooLarge(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(AdminError::BodyTooLarge(max)),
        Err(_) => Err(AdminError::BadRequest("the body could not be read".into())),
    }
}

/// How a body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Form,
}

fn format_of(headers: &HeaderMap, body: &[u8]) -> Format {
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("application/json") => Format::Json,
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => Format::Json,
        Some("application/x-www-form-urlencoded") => Format::Form,
        // Missing or anything else: a JSON object starts with `{`, a form never does.
        _ if body.trim_ascii_start().first() == Some(&b'{') => Format::Json,
        _ => Format::Form,
    }
}

/// A create or update body, parsed by `from_json` (JSON text, so that repeated keys and
/// trailing garbage are caught) or `from_value` (a form's object). An empty body is `{}`.
pub(crate) fn parse<T>(
    headers: &HeaderMap,
    body: &[u8],
    from_json: fn(&str) -> Result<T, TokenError>,
    from_value: fn(Value) -> Result<T, TokenError>,
) -> Result<T, AdminError> {
    if body.trim_ascii().is_empty() {
        return Ok(from_value(Value::Object(Map::new()))?);
    }
    match format_of(headers, body) {
        Format::Json => {
            let text = std::str::from_utf8(body)
                .map_err(|_| AdminError::BadRequest("the body is not UTF-8".into()))?;
            Ok(from_json(text)?)
        }
        Format::Form => Ok(from_value(form_to_json(body)?)?),
    }
}

/// The JSON object a form stands for (SPEC 1.1 gives each field's type). Unknown fields are
/// kept, as strings, so that validation refuses them by name.
pub(crate) fn form_to_json(body: &[u8]) -> Result<Value, AdminError> {
    let mut object = Map::new();
    for (key, value) in form::pairs(body) {
        // A lossy decoding would silently change a video id: the form must be UTF-8.
        let key = form::utf8(key)
            .ok_or_else(|| AdminError::BadRequest("the form is not UTF-8".into()))?
            .into_owned();
        let value = form::utf8(value)
            .ok_or_else(|| AdminError::BadRequest(format!("{key}: is not UTF-8")))?
            .into_owned();
        if object.contains_key(&key) {
            return Err(AdminError::BadRequest(format!("{key}: is given twice")));
        }
        let value = form_field(&key, value)?;
        object.insert(key, value);
    }
    Ok(Value::Object(object))
}

/// A form value as the JSON value of its field.
fn form_field(key: &str, value: String) -> Result<Value, AdminError> {
    // An empty value clears an optional field (SPEC 3); validation decides which may be.
    if value.is_empty() {
        return Ok(Value::Null);
    }
    match key {
        "grants" => serde_json::from_str(&value).map_err(|e| {
            AdminError::BadRequest(format!(
                "grants: must be a string holding JSON, such as {{\"read\": \"all\"}} ({e})"
            ))
        }),
        "usage_expiration_time" | "session_limit" => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| AdminError::BadRequest(format!("{key}: must be a decimal integer"))),
        "volatile" | "hidden" => parse_bool(&value)
            .map(Value::Bool)
            .ok_or_else(|| AdminError::BadRequest(format!("{key}: must be true, false, 1 or 0"))),
        // Unix seconds (Python's `time.time()` has a fraction) or an RFC 3339 string.
        "expiration_date" | "created_at" | "sessions_created" => Ok(number(&value)
            .map(Value::Number)
            .unwrap_or(Value::String(value))),
        _ => Ok(Value::String(value)),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Some(false)
    } else {
        None
    }
}

/// `value` as a JSON number when it is a plain decimal (`-12`, `1700000000.25`); exponents,
/// `inf` and `NaN` stay strings.
fn number(value: &str) -> Option<serde_json::Number> {
    if let Ok(int) = value.parse::<i64>() {
        return Some(int.into());
    }
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.')?;
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !decimal(whole) || !decimal(fraction) {
        return None;
    }
    value
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// The values of query parameter `name`, decoded.
fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    form::pairs(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k.as_ref() == name.as_bytes())
        .map(|(_, v)| form::lossy(v).into_owned())
        .collect()
}

/// The one value of query parameter `name`, if given; two different values are refused.
fn query_value(query: Option<&str>, name: &str) -> Result<Option<String>, AdminError> {
    let mut values = query_values(query, name);
    values.dedup();
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(AdminError::BadRequest(format!(
            "{name}: is given twice with different values"
        ))),
    }
}

/// The method a request performs: its own, or on a POST the `_method` query parameter's
/// (`PUT`, `PATCH` or `DELETE`, any case), which is how Ziggeo's SDKs send a DELETE. The
/// override headers are the proxy's business: the admin API honours the query only.
pub(crate) fn effective_method(method: &Method, query: Option<&str>) -> Result<Method, AdminError> {
    let overrides = route::query_overrides(query.unwrap_or(""));
    let overrides: Vec<&str> = overrides.iter().map(AsRef::as_ref).collect();
    route::method_override(method, &overrides, &HeaderMap::new())
        .map_err(|why| AdminError::BadRequest(format!("{}: {why}", route::METHOD_PARAMETER)))
}

/// The default page size of a token list.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// The largest page size of a token list; a larger `limit` is lowered to it.
pub(crate) const MAX_LIMIT: usize = 100;

/// `(skip, limit)` of a token list.
pub(crate) fn page(query: Option<&str>) -> Result<(usize, usize), AdminError> {
    let number = |name: &str| -> Result<Option<usize>, AdminError> {
        query_value(query, name)?
            .map(|v| {
                // `usize::from_str` would take a leading `+`; only digits are a count.
                v.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| v.parse::<usize>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        AdminError::BadRequest(format!("{name}: must be a non-negative integer"))
                    })
            })
            .transpose()
    };
    let limit = number("limit")?.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let skip = number("skip")?.unwrap_or(0);
    Ok((skip, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{NewToken, TokenPatch};
    use http::HeaderValue;
    use serde_json::json;

    fn form(s: &str) -> Result<Value, AdminError> {
        form_to_json(s.as_bytes())
    }

    fn bad(result: Result<Value, AdminError>) -> String {
        match result {
            Err(AdminError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn form_fields_get_their_types() {
        let value = form(
            "grants=%7B%22read%22%3A+%22all%22%7D&session_limit=3&usage_expiration_time=60\
             &volatile=True&hidden=0&expiration_date=1700000000&token=abc",
        )
        .unwrap();
        assert_eq!(
            value,
            json!({
                "grants": {"read": "all"},
                "session_limit": 3,
                "usage_expiration_time": 60,
                "volatile": true,
                "hidden": false,
                "expiration_date": 1_700_000_000,
                "token": "abc",
            })
        );
    }

    #[test]
    fn bools_take_any_case() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            assert_eq!(
                form(&format!("hidden={text}")).unwrap(),
                json!({"hidden": expected})
            );
        }
        assert_eq!(
            bad(form("hidden=yes")),
            "hidden: must be true, false, 1 or 0"
        );
    }

    #[test]
    fn empty_values_are_null() {
        assert_eq!(
            form("session_limit=&expiration_date=&grants=&volatile=").unwrap(),
            json!({"session_limit": null, "expiration_date": null, "grants": null, "volatile": null})
        );
    }

    #[test]
    fn dates_may_be_fractional_or_rfc3339() {
        assert_eq!(
            form("expiration_date=1700000000.5").unwrap(),
            json!({"expiration_date": 1_700_000_000.5})
        );
        assert_eq!(
            form("expiration_date=2030-01-01T00%3A00%3A00Z").unwrap(),
            json!({"expiration_date": "2030-01-01T00:00:00Z"})
        );
        assert_eq!(
            form("expiration_date=1e9").unwrap(),
            json!({"expiration_date": "1e9"})
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        assert_eq!(
            bad(form("session_limit=three")),
            "session_limit: must be a decimal integer"
        );
        let grants = bad(form("grants=%7B%27read%27%3A+%27all%27%7D"));
        assert!(
            grants.starts_with("grants: must be a string holding JSON"),
            "{grants}"
        );
        assert_eq!(bad(form("token=a&token=b")), "token: is given twice");
        assert_eq!(bad(form("token=%FF")), "token: is not UTF-8");
    }

    #[test]
    fn unknown_fields_pass_through_for_validation_to_refuse() {
        let value = form("grants=%7B%7D&colour=blue").unwrap();
        let err = NewToken::from_value(value).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn output_fields_are_refused_by_name() {
        let err = TokenPatch::from_value(form("sessions_created=4").unwrap()).unwrap_err();
        assert_eq!(err.field(), "sessions_created");
        let err = TokenPatch::from_value(form("created_at=4").unwrap()).unwrap_err();
        assert_eq!(err.field(), "created_at");
    }

    fn headers(content_type: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        }
        h
    }

    #[test]
    fn the_format_follows_the_content_type_then_the_first_byte() {
        let json = br#"{"grants": {}}"#;
        assert_eq!(
            format_of(&headers(Some("application/json")), json),
            Format::Json
        );
        assert_eq!(
            format_of(&headers(Some("Application/JSON; charset=utf-8")), b"x"),
            Format::Json
        );
        assert_eq!(
            format_of(&headers(Some("application/merge-patch+json")), b"x"),
            Format::Json
        );
        assert_eq!(
            format_of(&headers(Some("application/x-www-form-urlencoded")), json),
            Format::Form
        );
        assert_eq!(format_of(&headers(None), b"  {}"), Format::Json);
        assert_eq!(
            format_of(&headers(Some("text/plain")), b"a=b"),
            Format::Form
        );
    }

    #[test]
    fn empty_bodies_are_empty_objects() {
        let err = parse(
            &headers(None),
            b"",
            NewToken::from_json,
            NewToken::from_value,
        );
        assert_eq!(
            err.unwrap_err(),
            AdminError::BadRequest("grants: is required".into())
        );
        let patch = parse(
            &headers(Some("application/json")),
            b" ",
            TokenPatch::from_json,
            TokenPatch::from_value,
        );
        assert_eq!(patch.unwrap(), TokenPatch::default());
    }

    #[test]
    fn the_method_override_is_for_posts_only() {
        assert_eq!(
            effective_method(&Method::POST, Some("_method=delete")).unwrap(),
            Method::DELETE
        );
        assert_eq!(
            effective_method(&Method::POST, Some("_method=PATCH&_method=PATCH")).unwrap(),
            Method::PATCH
        );
        assert_eq!(
            effective_method(&Method::POST, Some("x=1")).unwrap(),
            Method::POST
        );
        assert_eq!(effective_method(&Method::GET, None).unwrap(), Method::GET);
        for (method, query) in [
            (Method::GET, "_method=DELETE"),
            (Method::POST, "_method=GET"),
            (Method::POST, "_method=DELETE&_method=PUT"),
        ] {
            assert!(effective_method(&method, Some(query)).is_err(), "{query}");
        }
    }

    #[test]
    fn pages_default_cap_and_refuse_nonsense() {
        assert_eq!(page(None).unwrap(), (0, 50));
        assert_eq!(page(Some("limit=7&skip=3")).unwrap(), (3, 7));
        assert_eq!(page(Some("limit=1000")).unwrap(), (0, 100));
        assert_eq!(page(Some("limit=0")).unwrap(), (0, 0));
        for (query, field) in [
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("limit=+5", "limit"),
            ("limit=", "limit"),
            ("skip=1.5", "skip"),
            ("skip=-2", "skip"),
        ] {
            match page(Some(query)) {
                Err(AdminError::BadRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
