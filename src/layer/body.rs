//! Reading a response body that vidgate must look into (a create response for the new video's
//! id, a manifest to rewrite) without losing a byte of it, and decoding a copy of it when the
//! origin compressed it anyway.

use std::pin::Pin;
use std::task::{Context, Poll};

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::response::{boxed, Body, BoxError};

/// A body read in full, or, when it was larger than the limit, what was read and the rest.
pub enum Buffered {
    /// The whole body.
    Whole(Bytes),
    /// Its first bytes (over the limit), then a stream of the rest.
    Partial(Body),
}

/// Read `body` up to `limit` bytes. Trailers of a whole body are dropped (create responses
/// do not use them).
pub async fn read_up_to(body: Body, limit: usize) -> Result<Buffered, BoxError> {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Buffered::Partial(boxed(Prefixed {
                    prefix: Some(buf.freeze()),
                    rest: body,
                })));
            }
        }
    }
    Ok(Buffered::Whole(buf.freeze()))
}

/// Bytes already read, followed by the rest of the body.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        hint.set_lower(hint.lower() + extra);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

/// A response body vidgate must read (a create response, a manifest) as plain bytes: decoded
/// when the origin compressed it anyway (gzip or deflate), at most `limit` decoded bytes.
pub(super) fn decoded_for_reading<'a>(
    encoding: Option<&HeaderValue>,
    bytes: &'a [u8],
    limit: usize,
) -> Option<Cow<'a, [u8]>> {
    use std::io::Read;
    let Some(encoding) = encoding.and_then(|v| v.to_str().ok()) else {
        return Some(Cow::Borrowed(bytes));
    };
    let mut plain = Vec::new();
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => return Some(Cow::Borrowed(bytes)),
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
        Ok(n) if n <= limit => Some(Cow::Owned(plain)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::StreamBody;

    fn chunks(n: usize, size: usize) -> Body {
        let frames =
            (0..n).map(move |i| Ok::<_, BoxError>(Frame::data(Bytes::from(vec![i as u8; size]))));
        boxed(StreamBody::new(stream::iter(frames)))
    }

    #[tokio::test]
    async fn a_small_body_is_read_whole() {
        match read_up_to(chunks(3, 10), 100).await.unwrap() {
            Buffered::Whole(bytes) => assert_eq!(bytes.len(), 30),
            Buffered::Partial(_) => panic!("should fit"),
        }
    }

    #[tokio::test]
    async fn a_large_body_is_forwarded_complete() {
        let Buffered::Partial(body) = read_up_to(chunks(10, 64), 100).await.unwrap() else {
            panic!("should not fit");
        };
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 640);
        for (i, chunk) in bytes.chunks(64).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == i as u8),
                "chunk {i} intact and in order"
            );
        }
    }
}
