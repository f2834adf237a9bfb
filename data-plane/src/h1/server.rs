//! Serving a client connection. One that opens with the HTTP/2 preface
//! (prior knowledge, or `h2` chosen by ALPN) is handed to hyper. HTTP/1.x is
//! served here, one request after the other on the connection's own task:
//! the head is parsed out of the read buffer, the request dispatched, and
//! the response written (its head and a body that is ready in one write),
//! with no task, channel or per-request timer in between.
//!
//! - A request body reads from the connection itself: the read side moves
//!   into the body and comes back when the body ends. A response written
//!   while the body is still unread (or held elsewhere) closes the
//!   connection after it, announced with `Connection: close`.
//! - `Expect: 100-continue` is answered when the body is first read, as Go
//!   and hyper do, so a request refused before its body costs no upload.
//! - Upgrades: after a `101`, the connection is handed to the tunnel.
//! - Limits: the head must arrive within the header read timeout (which
//!   also bounds the idle time between requests) and within the size and
//!   field-count bounds; bad heads and bad framing get `400`, `431` or
//!   `501` and the connection is closed.
//! - A stop (the entry point going away, or shutdown) closes idle
//!   connections at once and busy ones after their response.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::task::AtomicWaker;
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::uri::Authority;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_util::io::poll_read_buf;

use super::client::{AfterHead, Exchanged};
use super::date::with_date_line;
use super::decode::{Decoder, READ_SIZE};
use super::direct;
use super::framing::{self, Framing};
use super::head::{self, HeadError, RawRequest, RequestHead};
use super::rewind::Rewind;
use super::stop::{StopSignal, StopWatch};
use super::write::{BodyWriter, Encoder, WriteQueue, announced_trailers};
use crate::body::{ProxyBody, status_response};
use crate::dispatch::{ConnInfo, Dispatcher};
use crate::headers::{FieldKind, HeaderFields, StrippedResponse, known};
use crate::service::SendError;
use crate::upgrade::TunnelIo;

/// The HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How an entry point serves its connections.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    /// Time a client has to send a request head; also bounds the idle time
    /// between requests.
    pub(crate) header_read_timeout: Duration,
    /// Bound on the bytes of a request head.
    pub(crate) max_head_bytes: usize,
    /// HTTP/2 connections.
    pub(crate) http2: http2::Builder<TokioExecutor>,
}

/// The read side of a connection split for HTTP/1.x.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A client connection HTTP/1.x can be served on: split into a read side
/// (which moves into request bodies) and a write side.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The write side.
    type WriteHalf: AsyncWrite + Send + Unpin + 'static;

    /// Splits the connection.
    fn split(self) -> (Reader, Self::WriteHalf);
}

impl Transport for TcpStream {
    type WriteHalf = tokio::net::tcp::OwnedWriteHalf;

    fn split(self) -> (Reader, Self::WriteHalf) {
        let (read, write) = self.into_split();
        (Box::new(read), write)
    }
}

impl Transport for Box<TlsStream<TcpStream>> {
    type WriteHalf = tokio::io::WriteHalf<Box<TlsStream<TcpStream>>>;

    fn split(self) -> (Reader, Self::WriteHalf) {
        let (read, write) = tokio::io::split(self);
        (Box::new(read), write)
    }
}

/// Serves `io` until the client closes it, stops keeping it alive, breaks
/// the protocol, or `stop` fires.
pub(crate) async fn serve<T: Transport>(
    mut io: T,
    conn: ConnInfo,
    dispatcher: Arc<Dispatcher>,
    settings: Arc<ServerSettings>,
    stop: Arc<StopSignal>,
) {
    let mut stop = stop.watch();
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let sniffed = tokio::select! {
        () = stop.stopped() => return,
        sniffed = tokio::time::timeout(settings.header_read_timeout, sniff(&mut io, &mut buf)) => sniffed,
    };
    match sniffed {
        Ok(Ok(true)) => serve_http2(io, buf, conn, dispatcher, &settings, &mut stop).await,
        Ok(Ok(false)) => {
            let (read, write) = io.split();
            Http1 {
                read: Some(ReadSide { io: read, buf }),
                write,
                queue: WriteQueue::default(),
                head_buf: BytesMut::new(),
                wait: HeadWait::new(settings.header_read_timeout, stop),
                conn: &conn,
                dispatcher: &dispatcher,
                max_head_bytes: settings.max_head_bytes,
            }
            .run()
            .await;
        }
        Ok(Err(error)) => {
            tracing::debug!(peer = %conn.peer, %error, "connection closed before a request")
        }
        Err(_) => tracing::debug!(peer = %conn.peer, "no request within the header read timeout"),
    }
}

/// Reads until the first bytes tell HTTP/2 (the preface) from HTTP/1.x.
async fn sniff<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut) -> io::Result<bool> {
    loop {
        if buf.len() >= PREFACE.len() {
            return Ok(buf.starts_with(PREFACE));
        }
        if !PREFACE.starts_with(buf) {
            return Ok(false);
        }
        if poll_fn(|cx| poll_read_buf(Pin::new(&mut *io), cx, buf)).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

async fn serve_http2<T: Transport>(
    io: T,
    buf: BytesMut,
    conn: ConnInfo,
    dispatcher: Arc<Dispatcher>,
    settings: &ServerSettings,
    stop: &mut StopWatch,
) {
    let peer = conn.peer;
    let conn = Arc::new(conn);
    let service = service_fn(move |req: Request<Incoming>| {
        let dispatcher = dispatcher.clone();
        let conn = conn.clone();
        async move {
            let req = req.map(ProxyBody::incoming);
            Ok::<_, Infallible>(dispatcher.handle(req, &conn).await)
        }
    });
    let io = TokioIo::new(Rewind::new(io, buf.freeze()));
    let mut connection = pin!(settings.http2.serve_connection(io, service));
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop.stopped() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "HTTP/2 connection ended with an error");
    }
}

/// The read side of an HTTP/1.x connection and the bytes read from it.
struct ReadSide {
    io: Reader,
    buf: BytesMut,
}

/// A request body's read side, given back to its connection.
struct Returned {
    side: ReadSide,
    decoder: Decoder,
}

/// Asks the connection to send `100 Continue` (the body was first read).
#[derive(Debug, Default)]
struct ContinueSignal {
    requested: AtomicBool,
    waker: AtomicWaker,
}

impl ContinueSignal {
    fn request(&self) {
        self.requested.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether `100 Continue` is due; registers `cx` to be woken for it.
    fn take(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.requested.swap(false, Ordering::AcqRel)
    }
}

/// A request body read from the client connection.
pub(crate) struct RequestBody {
    reading: Option<(ReadSide, Decoder)>,
    back: Option<oneshot::Sender<Returned>>,
    continue_signal: Option<Arc<ContinueSignal>>,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("decoder", &self.reading.as_ref().map(|(_, d)| d))
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    fn give_back(&mut self) {
        if let (Some((side, decoder)), Some(back)) = (self.reading.take(), self.back.take()) {
            // The connection may be gone already.
            let _ = back.send(Returned { side, decoder });
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let Some((side, decoder)) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(signal) = this.continue_signal.take()
            && side.buf.is_empty()
        {
            signal.request();
        }
        let polled = decoder.poll_frame(cx, &mut side.io, &mut side.buf);
        match &polled {
            Poll::Ready(Some(Ok(_)) | None) if decoder.is_done() => this.give_back(),
            Poll::Ready(Some(Err(_))) => {
                // The connection is broken: nothing to give back.
                this.reading = None;
                this.back = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.reading.as_ref().is_none_or(|(_, d)| d.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading.as_ref().and_then(|(_, d)| d.remaining()) {
            Some(remaining) => SizeHint::with_exact(remaining),
            None if self.reading.is_none() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// The client end of an upgrade request served here: the connection, once
/// the `101` response has been written.
#[derive(Clone)]
pub(crate) struct ClientUpgrade(Arc<Mutex<Option<TunnelReceiver>>>);

/// Where the connection goes once a `101` is written.
type TunnelReceiver = oneshot::Receiver<Box<dyn TunnelIo>>;

impl fmt::Debug for ClientUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientUpgrade")
    }
}

impl ClientUpgrade {
    /// The upgraded connection.
    pub(crate) async fn connect(self) -> io::Result<Box<dyn TunnelIo>> {
        let receiver = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| io::Error::other("the upgraded connection was already taken"))?;
        receiver
            .await
            .map_err(|_| io::Error::other("the connection closed before the upgrade"))
    }
}

/// What waiting for a request head ended with.
#[expect(
    clippy::large_enum_variant,
    reason = "a head's fields are inline; it is moved once, boxing would allocate per request"
)]
enum HeadRead {
    Head(RawRequest),
    Invalid(HeadError),
    /// Closed by the client, timed out, or stopped while idle.
    Closed,
}

/// Waits for a request head: bounded by the header read timeout, cut
/// short by a stop while nothing of a request has arrived.
struct HeadWait {
    timeout: Duration,
    /// When the head being waited for is due.
    deadline: Instant,
    /// Fires at or before `deadline`: re-armed only when it fires early, so
    /// a request costs no timer update.
    timer: Pin<Box<Sleep>>,
    stop: StopWatch,
}

impl HeadWait {
    fn new(timeout: Duration, stop: StopWatch) -> Self {
        let deadline = Instant::now() + timeout;
        Self {
            timeout,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            stop,
        }
    }

    fn restart(&mut self) {
        self.deadline = Instant::now() + self.timeout;
    }

    fn poll(&mut self, cx: &mut Context<'_>, side: &mut ReadSide, max: usize) -> Poll<HeadRead> {
        loop {
            if !side.buf.is_empty() {
                match head::parse_request(&mut side.buf, max) {
                    Ok(Some(head)) => return Poll::Ready(HeadRead::Head(head)),
                    Ok(None) => {}
                    Err(error) => return Poll::Ready(HeadRead::Invalid(error)),
                }
            }
            if side.buf.capacity() - side.buf.len() < READ_SIZE / 4 {
                side.buf.reserve(READ_SIZE);
            }
            match poll_read_buf(Pin::new(&mut side.io), cx, &mut side.buf) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(HeadRead::Closed),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => break,
            }
        }
        if side.buf.is_empty() && self.stop.poll_stopped(cx) {
            return Poll::Ready(HeadRead::Closed);
        }
        loop {
            ready!(self.timer.as_mut().poll(cx));
            if Instant::now() >= self.deadline {
                return Poll::Ready(HeadRead::Closed);
            }
            let deadline = self.deadline;
            self.timer.as_mut().reset(deadline);
        }
    }
}

/// Most tokens a request's `Connection` may list: each names a field to
/// remove, and removing costs a pass over the fields.
const MAX_CONNECTION_TOKENS: usize = 64;

/// Refuses, with the status to answer and why, a request head the proxy
/// does not serve: an HTTP/1.1 request without exactly one `Host` (RFC 9112
/// §3.2), a `Connection` listing too many fields, or `CONNECT` (a reverse
/// proxy opens no tunnels on request).
fn acceptable(raw: &RawRequest) -> Result<(), (StatusCode, &'static str)> {
    let hosts = raw.head.values(FieldKind::Host).count();
    if hosts > 1 {
        return Err((StatusCode::BAD_REQUEST, "more than one Host field"));
    }
    if hosts == 0 && raw.version == Version::HTTP_11 {
        return Err((StatusCode::BAD_REQUEST, "an HTTP/1.1 request without Host"));
    }
    let tokens: usize = raw
        .head
        .values(FieldKind::Connection)
        .map(|value| value.split(|&b| b == b',').count())
        .sum();
    if tokens > MAX_CONNECTION_TOKENS {
        return Err((StatusCode::BAD_REQUEST, "Connection lists too many fields"));
    }
    if raw.method == Method::CONNECT {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "CONNECT"));
    }
    Ok(())
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The status and body Go's server answers a bad request head with.
fn head_error_status(error: &HeadError) -> StatusCode {
    match error {
        HeadError::TooLarge(_) | HeadError::TooManyHeaders(_) => {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What follows a request.
enum Next {
    /// The next request.
    KeepAlive,
    /// Closing.
    Close,
    /// The `101` is written: the connection goes to the tunnel.
    Tunnel(oneshot::Sender<Box<dyn TunnelIo>>),
}

/// An HTTP/1.x connection being served.
struct Http1<'a, W> {
    /// `None` while a request body holds it.
    read: Option<ReadSide>,
    write: W,
    queue: WriteQueue,
    /// Reused for every response head.
    head_buf: BytesMut,
    wait: HeadWait,
    conn: &'a ConnInfo,
    dispatcher: &'a Dispatcher,
    max_head_bytes: usize,
}

impl<W: AsyncWrite + Send + Unpin + 'static> Http1<'_, W> {
    async fn run(mut self) {
        loop {
            let Some(side) = self.read.as_mut() else {
                return;
            };
            self.wait.restart();
            let max = self.max_head_bytes;
            let raw = match poll_fn(|cx| self.wait.poll(cx, side, max)).await {
                HeadRead::Head(raw) => raw,
                HeadRead::Closed => return,
                HeadRead::Invalid(error) => {
                    tracing::debug!(peer = %self.conn.peer, %error, "bad request head");
                    self.refuse(head_error_status(&error)).await;
                    return;
                }
            };
            if let Err((status, reason)) = acceptable(&raw) {
                tracing::debug!(peer = %self.conn.peer, %status, reason, "request refused");
                self.refuse(status).await;
                return;
            }
            let framing = match framing::request(raw.version, &raw.head) {
                Ok(framing) => framing,
                Err(error) => {
                    tracing::debug!(peer = %self.conn.peer, %error, "request framing refused");
                    self.refuse(error.status()).await;
                    return;
                }
            };
            // Direct forwarding runs in this loop rather than in a function
            // of its own: each async call level would move its whole state
            // once per request.
            // The plan owns what it needs: the runtime is only borrowed
            // here, with no count of references bumped, which both serving
            // threads would contend for.
            let direct = if framing == Framing::Empty && !raw.head.contains_known(&known::UPGRADE) {
                self.head_buf.clear();
                let server_name = self.dispatcher.forwarded_server().as_bytes();
                let runtime = self.dispatcher.runtime_guard();
                direct::plan(&runtime, self.conn, server_name, &raw, &mut self.head_buf)
            } else {
                None
            };
            let next = match direct {
                Some(plan) => {
                    let keep_alive = framing::keeps_alive(raw.version, &raw.head)
                        && !self.wait.stop.is_stopped();
                    let (method, version) = (raw.method, raw.version);
                    let is_head = method == Method::HEAD;
                    drop(raw.head);
                    let head = self.head_buf.split().freeze();
                    let sent = plan.send.send(head, &method, plan.replayable).await;
                    match sent {
                        Ok(Exchanged {
                            head,
                            rest: AfterHead::Body(body),
                        }) => {
                            let fields = StrippedResponse::new(head.head.fields());
                            self.write_response(
                                head.status,
                                &fields,
                                |out, drop_length| fields.write(drop_length, out),
                                ProxyBody::upstream(body),
                                version,
                                is_head,
                                keep_alive,
                            )
                            .await
                        }
                        failed => {
                            let response =
                                direct_failure(plan.send.authority(), self.conn, failed.err());
                            self.finish(response, version, is_head, keep_alive).await
                        }
                    }
                }
                None => {
                    // Boxed: the general path's state is large; the direct
                    // path's should not carry it. Allocated first, then
                    // written: `Box::pin(future)` built the 8 KiB future
                    // aside and copied it whole into the box.
                    let exchange = Box::write(Box::new_uninit(), self.exchange(raw, framing));
                    Box::into_pin(exchange).await
                }
            };
            match next {
                Next::KeepAlive => {}
                Next::Close => {
                    let _ = self.write.shutdown().await;
                    return;
                }
                Next::Tunnel(tunnel) => {
                    if let Some(side) = self.read.take() {
                        let joined = tokio::io::join(side.io, self.write);
                        // The tunnel may have given up already.
                        let _ = tunnel.send(Box::new(Rewind::new(joined, side.buf.freeze())));
                    }
                    return;
                }
            }
        }
    }

    /// Answers a request the connection cannot go on after, and closes.
    async fn refuse(&mut self, status: StatusCode) {
        let text = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let response = format!(
            "HTTP/1.1 {text}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        self.queue.push(Bytes::from(response));
        let _ = poll_fn(|cx| self.queue.poll_flush(cx, &mut self.write)).await;
        let _ = self.write.shutdown().await;
    }

    /// Serves one request through the dispatcher.
    async fn exchange(&mut self, raw: RawRequest, framing: Framing) -> Next {
        let head = match raw.into_request_head() {
            Ok(head) => head,
            Err(error) => {
                tracing::debug!(peer = %self.conn.peer, %error, "bad request head");
                self.refuse(head_error_status(&error)).await;
                return Next::Close;
            }
        };
        let RequestHead {
            method,
            uri,
            version,
            headers,
        } = head;
        let keep_alive = framing::keeps_alive(version, &headers);
        let is_head = method == Method::HEAD;
        let continue_signal = (framing != Framing::Empty
            && version == Version::HTTP_11
            && expects_continue(&headers))
        .then(|| Arc::new(ContinueSignal::default()));
        let upgrade_requested = framing == Framing::Empty && headers.contains_key(UPGRADE);

        let (body, body_back) = if framing == Framing::Empty {
            (ProxyBody::empty(), None)
        } else {
            let side = self
                .read
                .take()
                .expect("the read side is here between requests");
            let (back, returned) = oneshot::channel();
            let body = RequestBody {
                reading: Some((side, Decoder::new(framing))),
                back: Some(back),
                continue_signal: continue_signal.clone(),
            };
            (ProxyBody::client(body), Some(returned))
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        let mut tunnel = None;
        if upgrade_requested {
            let (sender, receiver) = oneshot::channel();
            request
                .extensions_mut()
                .insert(ClientUpgrade(Arc::new(Mutex::new(Some(receiver)))));
            tunnel = Some(sender);
        }

        let response = match continue_signal {
            None => self.dispatcher.handle(request, self.conn).await,
            Some(signal) => self.handle_expecting_continue(request, &signal).await,
        };

        // A body read to its end (or whose rest is already buffered) gives
        // the read side back; otherwise the connection closes after this.
        if let Some(mut returned) = body_back
            && let Ok(Returned {
                mut side,
                mut decoder,
            }) = returned.try_recv()
            && decoder.drain_buffered(&mut side.buf).unwrap_or(false)
        {
            self.read = Some(side);
        }
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return match tunnel {
                Some(tunnel) if self.read.is_some() => {
                    if self.write_switching(response).await {
                        Next::Tunnel(tunnel)
                    } else {
                        Next::Close
                    }
                }
                _ => {
                    tracing::debug!(peer = %self.conn.peer, "a 101 for a request that asked for no upgrade");
                    Next::Close
                }
            };
        }
        let keep_alive = keep_alive && self.read.is_some() && !self.wait.stop.is_stopped();
        self.finish(response, version, is_head, keep_alive).await
    }

    /// Runs the handler, writing `100 Continue` when the body asks for it.
    async fn handle_expecting_continue(
        &mut self,
        request: Request<ProxyBody>,
        signal: &ContinueSignal,
    ) -> Response<ProxyBody> {
        let mut handling = pin!(self.dispatcher.handle(request, self.conn));
        let (queue, write) = (&mut self.queue, &mut self.write);
        poll_fn(|cx| {
            if signal.take(cx) {
                queue.push(Bytes::from_static(CONTINUE));
            }
            if queue.len() > 0 {
                // A failure shows again when the response is written.
                let _ = queue.poll_flush(cx, write);
            }
            handling.as_mut().poll(cx)
        })
        .await
    }

    /// Writes the head of a `101`; whether it went out.
    async fn write_switching(&mut self, response: Response<ProxyBody>) -> bool {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(TRANSFER_ENCODING);
        parts.headers.remove(CONTENT_LENGTH);
        self.head_buf.clear();
        head::encode_status_line(parts.status, &mut self.head_buf);
        head::encode_fields(&parts.headers, false, &mut self.head_buf);
        self.head_buf.put_slice(b"\r\n");
        self.queue.push(self.head_buf.split().freeze());
        poll_fn(|cx| self.queue.poll_flush(cx, &mut self.write))
            .await
            .is_ok()
    }

    /// Writes a response; what follows (`keep_alive`: the request allows
    /// another one).
    async fn finish(
        &mut self,
        response: Response<ProxyBody>,
        version: Version,
        is_head: bool,
        keep_alive: bool,
    ) -> Next {
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(TRANSFER_ENCODING);
        let headers = &parts.headers;
        self.write_response(
            parts.status,
            headers,
            |out, drop_length| head::encode_fields(headers, drop_length, out),
            body,
            version,
            is_head,
            keep_alive,
        )
        .await
    }

    /// Writes a response head (`write_fields` writes the fields, without
    /// `Content-Length` when asked) and its body, framed for the client;
    /// what follows: the next request when `keep_alive` and the response
    /// went out whole with a length the client can tell.
    async fn write_response<H: HeaderFields + ?Sized>(
        &mut self,
        status: StatusCode,
        fields: &H,
        write_fields: impl FnOnce(&mut BytesMut, bool),
        body: ProxyBody,
        version: Version,
        is_head: bool,
        keep_alive: bool,
    ) -> Next {
        let bodiless = is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let declared = declared_length(fields);
        let framing = match (bodiless, declared, body.size_hint().exact()) {
            (true, _, _) => Framing::Empty,
            (false, Some(length), _) | (false, None, Some(length)) => Framing::Length(length),
            (false, None, None) if version == Version::HTTP_11 => Framing::Chunked,
            (false, None, None) => Framing::UntilClose,
        };
        let keep_alive = keep_alive && framing != Framing::UntilClose;

        let out = &mut self.head_buf;
        out.clear();
        head::encode_status_line(status, out);
        write_fields(out, !bodiless && declared.is_none());
        match framing {
            Framing::Length(length) if declared.is_none() => {
                head::put_number_line(out, b"content-length", length);
            }
            Framing::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        if !keep_alive {
            out.put_slice(b"connection: close\r\n");
        } else if version == Version::HTTP_10 {
            out.put_slice(b"connection: keep-alive\r\n");
        }
        if !fields.contains_known(&known::DATE) {
            with_date_line(|date| out.put_slice(date));
        }
        out.put_slice(b"\r\n");
        self.queue.push(out.split().freeze());

        let written = if framing == Framing::Empty {
            poll_fn(|cx| self.queue.poll_flush(cx, &mut self.write))
                .await
                .is_ok()
        } else {
            let trailers = if framing == Framing::Chunked {
                announced_trailers(fields)
            } else {
                None
            };
            let mut writer = BodyWriter::new(body, Encoder::new(framing, trailers));
            match poll_fn(|cx| writer.poll_write(cx, &mut self.write, &mut self.queue)).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::debug!(peer = %self.conn.peer, %error, "response not written whole");
                    false
                }
            }
        };
        if written && keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }
}

/// The answer to a direct exchange that failed, as `forward` gives it: a
/// `101` nobody asked for is a 502; a failure its status (502, 504).
fn direct_failure(
    server: &Authority,
    conn: &ConnInfo,
    error: Option<SendError>,
) -> Response<ProxyBody> {
    let Some(error) = error else {
        tracing::warn!(%server, "server switched protocols without being asked");
        return status_response(StatusCode::BAD_GATEWAY);
    };
    let status = error.status();
    // Debug, as Traefik does: a dead backend under load must not flood the logs.
    tracing::debug!(
        %server,
        peer = %conn.peer,
        status = status.as_u16(),
        error = %crate::report::chain(&error),
        "forwarding failed"
    );
    status_response(status)
}

/// The `Content-Length` a response declares (its first), when valid.
fn declared_length<H: HeaderFields + ?Sized>(headers: &H) -> Option<u64> {
    let mut declared = None;
    headers.find_known(&known::CONTENT_LENGTH, &mut |value| {
        declared = std::str::from_utf8(value)
            .ok()
            .and_then(|value| value.trim().parse().ok());
        true
    });
    declared
}
