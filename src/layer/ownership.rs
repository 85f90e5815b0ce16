//! Ownership (SPEC 2.4): after a successful create in a session, the created video's id is read
//! from the origin's response (its JSON `token` and `key`, else `Location`) and recorded as owned
//! by the session before the response head goes out. The response reaches the client exactly as
//! the origin sent it.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, LOCATION};
use http::{HeaderMap, HeaderValue, Response};

use super::body::{decoded_for_reading, read_up_to, Buffered};
use crate::response::{self, Body};
use crate::session::SessionId;
use crate::store::TokenStore;

/// The most of a create response vidgate reads to find the new video's id (SPEC 2.4).
pub const OWNERSHIP_READ_LIMIT: usize = 1 << 20;

/// Ask the origin not to compress a create response that will be read (it may anyway).
pub(super) fn ask_unencoded(headers: &mut HeaderMap) {
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
}

/// Find the created video's id in a successful create `response` and record it in `session`;
/// the response comes back byte for byte. A body over [`OWNERSHIP_READ_LIMIT`], unreadable or
/// holding no id is forwarded as it is, nothing is owned, and a warning is logged.
pub(super) async fn record<St: TokenStore>(
    store: &St,
    response: Response<Body>,
    session: SessionId,
) -> Response<Body> {
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
            let mut ids = match decoded_for_reading(encoding.as_ref(), &bytes, OWNERSHIP_READ_LIMIT)
            {
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
        if let Err(error) = store.record_owned(session, id).await {
            tracing::error!(%error, "could not record a created video as owned by its session");
        }
    }
    Response::from_parts(parts, body)
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
