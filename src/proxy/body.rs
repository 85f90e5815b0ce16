//! The request body on its way to the origin, wrapped so that the response timeout can start
//! when the request has been sent *whole*.
//!
//! `proxy.response_timeout` bounds the wait for the origin's answer, not the client's upload: a
//! video uploaded over ten minutes must not be cut at thirty seconds because the origin (rightly)
//! answers only once it has every byte. So the clock starts when the body ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

pin_project! {
    /// A body that reports, once, when it has nothing more to give: it ended, failed, or was
    /// dropped (hyper drops a request body it stops sending, e.g. on a broken connection).
    pub(super) struct Tracked<B> {
        #[pin]
        inner: B,
        done: Option<oneshot::Sender<()>>,
    }
}

/// Resolves once the [`Tracked`] body it belongs to is finished (or gone).
pub(super) struct Sent(Option<oneshot::Receiver<()>>);

impl<B: Body> Tracked<B> {
    /// Wrap `inner`; the [`Sent`] resolves when it is finished.
    pub(super) fn new(inner: B) -> (Self, Sent) {
        // hyper never polls a body that is already at its end (a GET's), so such a request
        // counts as sent the moment it is handed over.
        if inner.is_end_stream() {
            return (Tracked { inner, done: None }, Sent(None));
        }
        let (tx, rx) = oneshot::channel();
        (
            Tracked {
                inner,
                done: Some(tx),
            },
            Sent(Some(rx)),
        )
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            // A body of known length ends with its last byte: hyper does not poll it again.
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            if let Some(done) = this.done.take() {
                let _ = done.send(());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Future for Sent {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.as_mut() {
            None => Poll::Ready(()),
            // Sent or dropped: either way nothing more is coming from the client.
            Some(rx) => Pin::new(rx).poll(cx).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    fn is_sent(sent: &mut Sent) -> bool {
        let waker = std::task::Waker::noop();
        Pin::new(sent)
            .poll(&mut Context::from_waker(waker))
            .is_ready()
    }

    #[tokio::test]
    async fn an_empty_body_is_sent_at_once() {
        let (_body, mut sent) = Tracked::new(Empty::<Bytes>::new());
        assert!(is_sent(&mut sent));
    }

    #[tokio::test]
    async fn a_sized_body_is_sent_with_its_last_frame() {
        let (mut body, mut sent) = Tracked::new(Full::new(Bytes::from_static(b"abc")));
        assert!(!is_sent(&mut sent));
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "abc");
        assert!(is_sent(&mut sent));
    }

    #[tokio::test]
    async fn a_stream_is_sent_at_its_end_or_when_dropped() {
        let chunks = || {
            futures_util::stream::iter([
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"a"))),
                Ok(Frame::data(Bytes::from_static(b"b"))),
            ])
        };
        let (mut body, mut sent) = Tracked::new(StreamBody::new(chunks()));
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        assert!(!is_sent(&mut sent), "the stream has not said it ended");
        assert!(body.frame().await.is_none());
        assert!(is_sent(&mut sent));

        let (body, mut sent) = Tracked::new(StreamBody::new(chunks()));
        assert!(!is_sent(&mut sent));
        drop(body);
        assert!(is_sent(&mut sent));
    }
}
