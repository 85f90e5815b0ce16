//! Client connections, from accept to close: the connection limit, the TLS handshake, the
//! protocol (HTTP/1.1, or HTTP/2 when ALPN says `h2`), the timeouts that keep slow and idle
//! clients from holding connections, and the drain.
//!
//! Each connection is one task running [`drive`]. Three things end a connection early:
//!
//! - **A slow request head** (slowloris): from the first byte a client sends while no request
//!   of its is in flight (the first byte of its TLS handshake, or of its next request on a
//!   keep-alive connection), the whole request head must arrive within
//!   `header_read_timeout`. An HTTP/1.1 connection that misses it is closed there and then; an
//!   HTTP/2 one gets a GOAWAY first, since HTTP/2 clients send frames other than requests.
//! - **Idleness**: a connection with no request in flight and nothing received for
//!   `idle_timeout` is shut down gracefully.
//! - **The drain**: on shutdown every connection is shut down gracefully. Requests and
//!   streams in flight go on to their end; an idle keep-alive connection closes at once.
//!
//! A request counts as in flight from the moment hyper hands its head to the service until
//! its response body has been sent (or abandoned): a video streaming to a paused player is
//! never cut by these timeouts, however long it stalls.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::ProxyConfig;
use crate::metrics::{Listener, Metrics};
use crate::proxy::ClientConn;
use crate::response::BoxError;

/// How long an idle connection that was asked to close may take to do so before it is
/// dropped (an HTTP/2 client that never answers the GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How many over-the-limit connections may be answered 503 at once; beyond that they are
/// closed without a word, so that a flood cannot grow this either.
const MAX_REFUSING: usize = 64;
/// How long answering an over-the-limit connection may take.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The per-connection limits of `[proxy]`; both listeners apply them. A reload changes them
/// for connections accepted afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
}

impl Limits {
    pub(crate) fn of(proxy: &ProxyConfig) -> Limits {
        Limits {
            header_read_timeout: proxy.header_read_timeout.get(),
            idle_timeout: proxy.idle_timeout.get(),
            max_header_bytes: proxy.max_header_bytes,
            max_headers: proxy.max_headers,
        }
    }
}

/// A service a reload can replace: each request is handed to the one current when its head
/// arrived, so a new key or route applies to the next request, on every connection.
pub(crate) type Swappable<S> = Arc<ArcSwap<S>>;

/// One listener and the connections it accepted.
pub(crate) struct Acceptor<S> {
    pub(crate) name: Listener,
    pub(crate) listener: TcpListener,
    /// The TLS configuration, for a TLS listener (its certificate can be swapped in place).
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) service: Swappable<S>,
    pub(crate) limits: Swappable<Limits>,
    pub(crate) metrics: Metrics,
    /// One permit per open connection (`max_connections`).
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) max_connections: u32,
}

/// Waits for the connections of an [`Acceptor`] to close.
pub(crate) struct Open {
    slots: Arc<Semaphore>,
    max_connections: u32,
}

impl Open {
    /// Complete when no connection is open any more.
    pub(crate) async fn closed(&self) {
        let _ = self.slots.acquire_many(self.max_connections).await;
    }
}

impl<S, B> Acceptor<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// Accept connections until `stop` turns true; then close the listener (new connections
    /// are refused by the kernel from then on), ask every open connection to finish, and
    /// return what waits for them.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) -> Open {
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let mut warned_full = false;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(listener = self.name.as_str(), %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                // Awaited inside a block so no watch guard is held across the select: the
                // future stays Send.
                _ = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                self.metrics.connection_refused(self.name);
                if !warned_full {
                    tracing::warn!(
                        listener = self.name.as_str(),
                        max_connections = self.max_connections,
                        "max_connections reached: refusing new connections until some close"
                    );
                    warned_full = true;
                }
                if self.tls.is_none() {
                    if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                        tokio::spawn(refuse(stream, refusal));
                    }
                }
                continue;
            };
            warned_full = false;
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                name: self.name,
                peer,
                tls: self.tls.clone(),
                service: self.service.clone(),
                limits: Arc::clone(&self.limits.load()),
                metrics: self.metrics.clone(),
            };
            tokio::spawn(connection.serve(stream, stop.clone(), permit));
        }
        drop(self.listener);
        Open {
            slots: self.slots,
            max_connections: self.max_connections,
        }
    }
}

/// The answer to a connection over `max_connections`: a 503 that says so, then close. The
/// request is read (and dropped) for a moment after the answer, so that the kernel does not
/// reset the connection before the client has read the 503.
async fn refuse(mut stream: TcpStream, _refusal: OwnedSemaphorePermit) {
    const BODY: &str = r#"{"error":"too_many_connections","message":"The gateway has as many connections open as it allows; retry shortly."}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// One accepted connection, before its first byte.
struct Connection<S> {
    name: Listener,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    service: Swappable<S>,
    limits: Arc<Limits>,
    metrics: Metrics,
}

impl<S, B> Connection<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn serve(
        self,
        stream: TcpStream,
        mut stop: watch::Receiver<bool>,
        _slot: OwnedSemaphorePermit,
    ) {
        self.metrics.connection(self.name, true);
        let activity = Arc::new(Activity::new());
        let io = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let limits = self.limits.clone();
        let service = PerRequest {
            current: self.service.clone(),
            conn: ClientConn {
                peer: self.peer,
                tls: self.tls.is_some(),
            },
            activity: activity.clone(),
        };
        let service = hyper_util::service::TowerToHyperService::new(service);
        match &self.tls {
            None => {
                let conn = http1(&limits).serve_connection(TokioIo::new(io), service);
                drive(conn, Protocol::Http1, &activity, &limits, stop).await;
            }
            Some(acceptor) => {
                // The handshake, like a request head, must be done within the timeout.
                let handshake = tokio::select! {
                    done = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)) => done,
                    _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                        self.metrics.connection(self.name, false);
                        return;
                    }
                };
                match handshake {
                    Ok(Ok(tls)) => {
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        let io = TokioIo::new(tls);
                        if h2 {
                            let conn = http2(&limits).serve_connection(io, service);
                            drive(conn, Protocol::Http2, &activity, &limits, stop).await;
                        } else {
                            let conn = http1(&limits).serve_connection(io, service);
                            drive(conn, Protocol::Http1, &activity, &limits, stop).await;
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::debug!(
                            timeout = ?limits.header_read_timeout,
                            "TLS handshake not done within header_read_timeout: closed"
                        );
                    }
                }
            }
        }
        self.metrics.connection(self.name, false);
    }
}

/// The HTTP/1.1 side: hyper's own header timeout is off, since [`drive`] keeps it (hyper's
/// would also run while a keep-alive connection waits, and so cut idle connections at the
/// header timeout instead of `idle_timeout`).
fn http1(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No `pipeline_flush`: in hyper 1 it lifts the 400 KiB cap on the write buffer, so a
    // slow client made vidgate read the whole video from the origin into memory
    // (bench/stream.sh: 2.5 GiB RSS for one viewer at 20 MB/s, over 4 GiB for four).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
}

/// The HTTP/2 side (over TLS, chosen by ALPN).
fn http2(limits: &Limits) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    builder
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Run `conn` to its end, closing it early for a slow head, idleness or the drain (see the
/// module's documentation).
async fn drive<C>(
    conn: C,
    protocol: Protocol,
    activity: &Activity,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: fmt::Display,
{
    let mut conn = pin!(conn);
    // Once asked to close, the connection finishes what is in flight by itself.
    let mut closing = false;
    // When an idle connection asked to close must be gone by.
    let mut close_by: Option<Instant> = None;
    loop {
        let changed = activity.changed.notified();
        let deadline = if closing {
            None
        } else {
            activity.deadline(limits)
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "client connection ended with an error");
                }
                return;
            }
            _ = async { let _ = stop.wait_for(|stop| *stop).await; }, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = changed => {}
            () = sleep_until(deadline.map(|(at, _)| at)), if deadline.is_some() => {
                match deadline.map(|(_, why)| why) {
                    Some(Expiry::SlowHead) if protocol == Protocol::Http1 => {
                        tracing::debug!(
                            timeout = ?limits.header_read_timeout,
                            "request head not received within header_read_timeout: closed"
                        );
                        return;
                    }
                    _ => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        close_by = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
            }
            () = sleep_until(close_by), if close_by.is_some() => {
                if activity.in_flight() == 0 {
                    return;
                }
                // A request started meanwhile: it finishes, then the connection closes.
                close_by = None;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    SlowHead,
    Idle,
}

/// What a connection is doing, shared by its socket, its service and [`drive`].
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one, when the first byte arrived while no request was
    /// in flight; 0: none since.
    head_started: AtomicU64,
    /// Milliseconds since `epoch` when the last request in flight ended (or the connection
    /// opened).
    idle_since: AtomicU64,
    in_flight: AtomicUsize,
    /// Woken on every change that moves the deadline.
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        if self.in_flight() == 0 && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started
                .store(self.now_ms() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// A request head was parsed and handed to the service.
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// A response was sent whole, or abandoned.
    fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// When, and why, the connection is due to close; `None` while a request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Expiry)> {
        if self.in_flight() > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Relaxed) {
            0 => Some((
                self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout,
                Expiry::Idle,
            )),
            started => Some((
                self.at(started - 1) + limits.header_read_timeout,
                Expiry::SlowHead,
            )),
        }
    }
}

pin_project! {
    /// The client's socket, telling [`Activity`] when bytes arrive.
    struct Watched {
        #[pin]
        inner: TcpStream,
        activity: Arc<Activity>,
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.received();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// The service of one connection: tags each request with the [`ClientConn`], hands it to the
/// current service, and counts it in flight until its response body is done.
struct PerRequest<S> {
    current: Swappable<S>,
    conn: ClientConn,
    activity: Arc<Activity>,
}

impl<S> Clone for PerRequest<S> {
    fn clone(&self) -> Self {
        PerRequest {
            current: self.current.clone(),
            conn: self.conn,
            activity: self.activity.clone(),
        }
    }
}

impl<S, B> tower::Service<Request<Incoming>> for PerRequest<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone,
{
    type Response = Response<InFlight<B>>;
    type Error = Infallible;
    type Future = Tracked<tower::util::Oneshot<S, Request<Incoming>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.conn);
        let service = S::clone(&self.current.load());
        Tracked {
            inner: service.oneshot(request),
            guard: Some(InFlightGuard::new(self.activity.clone())),
        }
    }
}

/// Counts one request in flight while it lives.
struct InFlightGuard(Arc<Activity>);

impl InFlightGuard {
    fn new(activity: Arc<Activity>) -> InFlightGuard {
        activity.request_started();
        InFlightGuard(activity)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

pin_project! {
    /// The response future of [`PerRequest`]: hands its guard on to the response body.
    struct Tracked<F> {
        #[pin]
        inner: F,
        guard: Option<InFlightGuard>,
    }
}

impl<F, B> Future for Tracked<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<InFlight<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| InFlight {
            body,
            _guard: guard,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it is dropped: hyper drops it
    /// once it has been sent whole, or when the client goes away.
    struct InFlight<B> {
        #[pin]
        body: B,
        _guard: Option<InFlightGuard>,
    }
}

impl<B: HttpBody> HttpBody for InFlight<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
