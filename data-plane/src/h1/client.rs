//! The HTTP/1.1 client the proxy forwards `http://` requests with, driven
//! by the request's own task: the request head (and a body that is ready)
//! is written straight to a pooled connection, the response head read back,
//! and the response body reads from that connection as the client side
//! consumes it, handing the connection back to its pool when the body ends.
//! No connection task and no channel sit in between.
//!
//! A request body is written while the response head is awaited, so a
//! server may answer before reading all of it; the connection is then not
//! reused. A request on a reused connection that fails before any byte of
//! a response arrived is sent again on a new connection when that is safe
//! (no body, and a method Go's transport also replays), as a pooled
//! connection the server closed at the same moment looks just like that.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

use super::decode::{Decoder, READ_SIZE};
use super::framing::{self, Framing};
use super::head::{self, RawResponse};
use super::pool::{self, Connection, Pool, PoolLimits, Return, ServerPools};
use super::rewind::Rewind;
use super::write::{BodyWriteError, BodyWriter, Encoder, WriteQueue, announced_trailers};
use crate::body::{BoxError, ProxyBody};
use crate::headers::{FieldKind, HeaderFields, known};
use crate::serving::pool_slot;

/// Bound on a response head (hyper's default read buffer limit).
const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;

/// Why an exchange with a server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No connection could be opened.
    #[error("cannot connect to the server")]
    Connect(#[source] io::Error),
    /// The request has no authority to connect to, or a bad length.
    #[error("the request cannot be sent: {0}")]
    Request(&'static str),
    /// The request body being forwarded failed.
    #[error("the request body failed")]
    Body(#[source] BoxError),
    /// Reading or writing the connection failed.
    #[error("the connection to the server failed")]
    Io(#[source] io::Error),
    /// The server closed the connection without a response.
    #[error("the server closed the connection before responding")]
    Closed(#[source] Option<io::Error>),
    /// The response head is not HTTP/1.x, or its length is unknowable.
    #[error("invalid response from the server")]
    Response(#[source] BoxError),
}

impl ExchangeError {
    /// Nothing of a response was received: sending again is possible.
    fn nothing_received(&self) -> bool {
        matches!(self, Self::Closed(_))
            || matches!(self, Self::Io(e) if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
            ))
    }
}

/// Sends requests over HTTP/1.1, with one connection pool per serving
/// thread.
#[derive(Debug)]
pub(crate) struct Client {
    dial_timeout: Duration,
    pools: Box<[Arc<Pool>]>,
}

/// The framing of a request's body; its framing line is written to `out`.
fn request_framing(
    parts: &Parts,
    body: &ProxyBody,
    out: &mut BytesMut,
) -> Result<Framing, ExchangeError> {
    if parts.headers.contains_key(CONTENT_LENGTH) {
        return framing::request(Version::HTTP_11, &parts.headers)
            .map_err(|_| ExchangeError::Request("invalid Content-Length"));
    }
    if body.is_end_stream() {
        put_empty_body_length(&parts.method, out);
        return Ok(Framing::Empty);
    }
    Ok(match body.size_hint().exact() {
        Some(length) => {
            head::put_number_line(out, b"content-length", length);
            Framing::Length(length)
        }
        None => {
            out.put_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
    })
}

/// Writes `content-length: 0` for a bodiless request whose method usually
/// carries a body: servers may refuse a POST without a length (411).
pub(crate) fn put_empty_body_length(method: &Method, out: &mut BytesMut) {
    let expects_body = !matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::DELETE
            | Method::OPTIONS
            | Method::TRACE
            | Method::CONNECT
    );
    if expects_body {
        head::put_number_line(out, b"content-length", 0);
    }
}

/// Whether a method may be sent again after its connection failed before
/// any response (Go's `isReplayable`).
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether a request may be sent again after its connection failed before
/// any response (Go's `isReplayable`, for bodiless requests).
fn replayable<H: HeaderFields + ?Sized>(method: &Method, headers: &H, framing: Framing) -> bool {
    framing == Framing::Empty
        && (idempotent(method)
            || headers.contains_known(&known::IDEMPOTENCY_KEY)
            || headers.contains_known(&known::X_IDEMPOTENCY_KEY))
}

/// A response head as the server sent it, with what follows it.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub(crate) head: RawResponse,
    pub(crate) rest: AfterHead,
}

/// What follows a response head.
#[derive(Debug)]
pub(crate) enum AfterHead {
    /// The body, streaming from the connection.
    Body(ResponseBody),
    /// After a `101`: the connection, for the tunnel.
    Upgraded(PendingUpgrade),
}

impl Exchanged {
    /// As an `http` response.
    fn into_response(self) -> Result<Response<ProxyBody>, ExchangeError> {
        let head = self
            .head
            .into_response_head()
            .map_err(|e| ExchangeError::Response(e.into()))?;
        let mut response = match self.rest {
            AfterHead::Body(body) => Response::new(ProxyBody::upstream(body)),
            AfterHead::Upgraded(upgrade) => {
                let mut response = Response::new(ProxyBody::empty());
                response.extensions_mut().insert(upgrade);
                response
            }
        };
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        Ok(response)
    }
}

impl Client {
    /// A client dialing within `dial_timeout`, with `pools` sets of idle
    /// connections kept within `limits` (see [`crate::serving::pool_slot`]).
    pub(crate) fn new(dial_timeout: Duration, limits: PoolLimits, pools: usize) -> Self {
        Self {
            dial_timeout,
            pools: (0..pools.max(1)).map(|_| Pool::new(limits)).collect(),
        }
    }

    /// Sends `req` (absolute URI) to its authority, on a pooled connection
    /// of this thread's pool or a new one, and returns the response head
    /// with its body streaming. `pools`: the server's idle connections when
    /// known (else looked up by authority).
    pub(crate) async fn send(
        &self,
        req: Request<ProxyBody>,
        pools: Option<&ServerPools>,
    ) -> Result<Response<ProxyBody>, ExchangeError> {
        let (parts, body) = req.into_parts();
        let authority = parts
            .uri
            .authority()
            .cloned()
            .ok_or(ExchangeError::Request("no authority in the request URI"))?;
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut head_buf = BytesMut::new();
        head::encode_request(&parts.method, target, &parts.headers, &mut head_buf);
        if !parts.headers.contains_key(HOST) {
            head_buf.put_slice(b"host: ");
            head_buf.put_slice(authority.as_str().as_bytes());
            head_buf.put_slice(b"\r\n");
        }
        let framing = request_framing(&parts, &body, &mut head_buf)?;
        head_buf.put_slice(b"\r\n");
        let replay = replayable(&parts.method, &parts.headers, framing);
        let trailers = announced_trailers(&parts.headers);
        let writer = BodyWriter::new(body, Encoder::new(framing, trailers));
        let slot = pool_slot();
        let back = match pools {
            Some(pools) => pools.slot(slot).clone(),
            None => self.pools[slot % self.pools.len()].host(&authority),
        };
        let head = head_buf.freeze();
        send_via(
            back,
            self.dial_timeout,
            head,
            Some(writer),
            &parts.method,
            replay,
        )
        .await?
        .into_response()
    }

    /// `authority`'s idle connections in every pool of this client.
    pub(crate) fn server_pools(&self, authority: &Authority) -> ServerPools {
        Pool::server_pools(&self.pools, authority)
    }
}

/// Sends a request whose head is written already (`head`, ending with its
/// empty line) over `back`'s connections (this thread's pool for one
/// server), dialing within `dial_timeout` when none is idle, then `body`;
/// returns the response head as the server sent it, with its body.
/// `replayable`: the request may be sent again on a new connection when a
/// pooled one fails before answering.
pub(crate) async fn send_via(
    back: Return,
    dial_timeout: Duration,
    head: Bytes,
    body: Option<BodyWriter>,
    method: &Method,
    replayable: bool,
) -> Result<Exchanged, ExchangeError> {
    let dial = || async {
        pool::connect(back.authority(), dial_timeout)
            .await
            .map_err(ExchangeError::Connect)
    };
    let mut connection = match back.checkout() {
        Some(connection) => connection,
        None => Box::pin(dial()).await?,
    };
    let mut writing = body;
    // One exchange, and at most one more on a new connection. Written out
    // here rather than in a function of its own: each async call level
    // would move its whole state once per request.
    loop {
        let reused = connection.reused;
        let mut queue = WriteQueue::default();
        queue.push(head.clone());
        let mut write_failure: Option<ExchangeError> = None;
        let received = poll_fn(|cx| {
            poll_send(
                cx,
                &mut connection,
                &mut queue,
                &mut writing,
                &mut write_failure,
            )?;
            poll_head(cx, &mut connection, &mut write_failure)
        })
        .await;
        let response = match received {
            Ok(response) => response,
            Err(error) if reused && replayable && error.nothing_received() => {
                tracing::debug!(authority = %back.authority(), %error, "pooled connection failed: sending again on a new one");
                connection = Box::pin(dial()).await?;
                continue;
            }
            Err(error) => return Err(error),
        };
        // A server may answer before reading the whole request body (an
        // echo, a streaming transform): the rest is sent while the response
        // is read.
        let upload = match writing.take() {
            Some(writer) if write_failure.is_none() => Some(Box::new(Upload { writer, queue })),
            _ => None,
        };
        let sent = upload.is_none() && write_failure.is_none();
        return finish_exchange(connection, back, response, method, sent, upload);
    }
}

impl Client {
    /// How long dialing a server may take.
    pub(crate) fn dial_timeout(&self) -> Duration {
        self.dial_timeout
    }
}

/// Writes what is left of the request: the queued head, then the body.
/// A write failure is kept for later (the server may have answered before
/// reading everything); a failing body ends the exchange.
fn poll_send(
    cx: &mut Context<'_>,
    connection: &mut Connection,
    queue: &mut WriteQueue,
    writing: &mut Option<BodyWriter>,
    write_failure: &mut Option<ExchangeError>,
) -> Result<(), ExchangeError> {
    if let Some(writer) = writing {
        match writer.poll_write(cx, &mut connection.io, queue) {
            Poll::Ready(Ok(())) => *writing = None,
            Poll::Ready(Err(BodyWriteError::Io(error))) => {
                *write_failure = Some(ExchangeError::Io(error));
                *writing = None;
            }
            Poll::Ready(Err(BodyWriteError::Body(error))) => {
                return Err(ExchangeError::Body(error));
            }
            Poll::Ready(Err(BodyWriteError::LengthMismatch)) => {
                return Err(ExchangeError::Request(
                    "the body does not match its Content-Length",
                ));
            }
            Poll::Pending => {}
        }
    } else if write_failure.is_none() && queue.len() > 0 {
        match queue.poll_flush(cx, &mut connection.io) {
            Poll::Ready(Ok(())) | Poll::Pending => {}
            Poll::Ready(Err(error)) => *write_failure = Some(ExchangeError::Io(error)),
        }
    }
    Ok(())
}

/// The response head with what follows it: the body (the connection goes
/// back to `back` after it when it can carry another request: `sent`, the
/// request went out whole, or `upload`, its rest, is sent before the body
/// ends), or the connection after a `101`.
fn finish_exchange(
    mut connection: Connection,
    back: Return,
    head: RawResponse,
    method: &Method,
    sent: bool,
    upload: Option<Box<Upload>>,
) -> Result<Exchanged, ExchangeError> {
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        let leftover = connection.read_buf.split().freeze();
        let upgraded = PendingUpgrade::new(Rewind::new(connection.io, leftover));
        return Ok(Exchanged {
            head,
            rest: AfterHead::Upgraded(upgraded),
        });
    }
    let mut head = head;
    let framing = framing::response(method, head.version, head.status, &head.head)
        .map_err(|e| ExchangeError::Response(e.into()))?;
    if head.head.has(FieldKind::TransferEncoding) {
        // A length beside a transfer coding says nothing of the body
        // (RFC 9112 §6.3): it must not reach the client.
        head.head.drop_kind(FieldKind::ContentLength);
    }
    let reusable = (sent || upload.is_some())
        && framing != Framing::UntilClose
        && framing::keeps_alive(head.version, &head.head);
    let body = ResponseBody::new(
        connection,
        Decoder::new(framing),
        reusable.then_some(back),
        upload,
    );
    Ok(Exchanged {
        head,
        rest: AfterHead::Body(body),
    })
}

/// Reads until a final response head (skipping `1xx` other than `101`).
fn poll_head(
    cx: &mut Context<'_>,
    connection: &mut Connection,
    write_failure: &mut Option<ExchangeError>,
) -> Poll<Result<RawResponse, ExchangeError>> {
    loop {
        match head::parse_response(&mut connection.read_buf, MAX_RESPONSE_HEAD) {
            Ok(Some(head))
                if head.status.is_informational()
                    && head.status != StatusCode::SWITCHING_PROTOCOLS =>
            {
                continue;
            }
            Ok(Some(head)) => return Poll::Ready(Ok(head)),
            Ok(None) => {}
            Err(error) => return Poll::Ready(Err(ExchangeError::Response(error.into()))),
        }
        if connection.read_buf.capacity() - connection.read_buf.len() < READ_SIZE / 4 {
            connection.read_buf.reserve(READ_SIZE);
        }
        match poll_read_buf(Pin::new(&mut connection.io), cx, &mut connection.read_buf) {
            Poll::Ready(Ok(0)) => {
                let cause = match write_failure.take() {
                    Some(ExchangeError::Io(error)) => Some(error),
                    _ => None,
                };
                return Poll::Ready(Err(ExchangeError::Closed(cause)));
            }
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(error)) => return Poll::Ready(Err(ExchangeError::Io(error))),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The rest of a request body, still being written after the response
/// head arrived.
#[derive(Debug)]
struct Upload {
    writer: BodyWriter,
    queue: WriteQueue,
}

/// A response body read from a server connection; the connection goes back
/// to its pool when the body ends, or is closed if the body is dropped
/// before its end. A request body still being sent is sent while the
/// response body is read, and given up when the response ends first (the
/// connection is then closed).
#[derive(Debug)]
pub(crate) struct ResponseBody {
    connection: Option<Connection>,
    decoder: Decoder,
    back: Option<Return>,
    /// Boxed: a body holds this one, and it is rare.
    upload: Option<Box<Upload>>,
}

impl ResponseBody {
    fn new(
        connection: Connection,
        decoder: Decoder,
        back: Option<Return>,
        upload: Option<Box<Upload>>,
    ) -> Self {
        let mut body = Self {
            connection: Some(connection),
            decoder,
            back,
            upload,
        };
        body.release_if_done();
        body
    }

    /// Hands the connection back once the body is read, the request body
    /// written whole, and nothing else arrived after it.
    fn release_if_done(&mut self) {
        if !self.decoder.is_done() {
            return;
        }
        let connection = self.connection.take();
        let back = self.back.take();
        if let (Some(connection), Some(back), None) = (connection, back, self.upload.take())
            && connection.read_buf.is_empty()
        {
            back.put(connection);
        }
    }

    /// Writes more of the request body, if some is left.
    fn poll_upload(&mut self, cx: &mut Context<'_>) {
        let (Some(upload), Some(connection)) = (self.upload.as_mut(), self.connection.as_mut())
        else {
            return;
        };
        match upload
            .writer
            .poll_write(cx, &mut connection.io, &mut upload.queue)
        {
            Poll::Ready(Ok(())) => self.upload = None,
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "the rest of a request body could not be sent");
                self.upload = None;
                // The server got part of a request: never reuse.
                self.back = None;
            }
            Poll::Pending => {}
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        this.poll_upload(cx);
        let Some(connection) = this.connection.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = this
            .decoder
            .poll_frame(cx, &mut connection.io, &mut connection.read_buf);
        match &polled {
            Poll::Ready(Some(Ok(_)) | None) => this.release_if_done(),
            Poll::Ready(Some(Err(_))) => this.connection = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// The server side of an upgraded exchange, in the `101` response's
/// extensions until the tunnel takes it.
#[derive(Debug, Clone)]
pub(crate) struct PendingUpgrade(Arc<Mutex<Option<Rewind<TcpStream>>>>);

impl PendingUpgrade {
    fn new(upgraded: Rewind<TcpStream>) -> Self {
        Self(Arc::new(Mutex::new(Some(upgraded))))
    }

    /// The upgraded connection, once.
    pub(crate) fn take(&self) -> Option<Rewind<TcpStream>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client() -> Client {
        Client::new(
            Duration::from_secs(5),
            PoolLimits {
                idle_timeout: Duration::from_secs(60),
                max_idle_per_host: 8,
            },
            1,
        )
    }

    /// Reads one request head (and `body_len` bytes) from `socket`.
    async fn read_request(socket: &mut TcpStream, body_len: usize) -> String {
        let mut received = Vec::new();
        let mut byte = [0u8; 1];
        while !received.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            received.push(byte[0]);
        }
        let mut body = vec![0u8; body_len];
        socket.read_exact(&mut body).await.unwrap();
        received.extend_from_slice(&body);
        String::from_utf8(received).unwrap()
    }

    fn get(address: std::net::SocketAddr, path: &str) -> Request<ProxyBody> {
        Request::builder()
            .uri(format!("http://{address}{path}"))
            .header("host", "backend.test")
            .body(ProxyBody::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_is_written_and_its_connection_reused_after_the_body() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let first = read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .await
                .unwrap();
            let second = read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                .await
                .unwrap();
            (first, second)
        });
        let client = client();
        let response = client.send(get(address, "/a?b"), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().size_hint().exact(), Some(5));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        let response = client.send(get(address, "/c"), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(
            response
                .headers()
                .contains_key(http::header::TRANSFER_ENCODING)
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"abc");
        let (first, second) = server.await.unwrap();
        assert_eq!(first, "GET /a?b HTTP/1.1\r\nhost: backend.test\r\n\r\n");
        assert_eq!(second, "GET /c HTTP/1.1\r\nhost: backend.test\r\n\r\n");
    }

    #[tokio::test]
    async fn bodies_are_sent_with_their_length_or_chunked() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let sized = read_request(&mut socket, 4).await;
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            let streamed = read_request(&mut socket, "2\r\nab\r\n0\r\n\r\n".len()).await;
            socket
                .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            (sized, streamed)
        });
        let client = client();
        let sized = Request::post(format!("http://{address}/up"))
            .body(ProxyBody::full("data"))
            .unwrap();
        let response = client.send(sized, None).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.body().is_end_stream());
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"ab"))))
            .await
            .unwrap();
        drop(sender);
        let streamed = Request::post(format!("http://{address}/stream"))
            .body(ProxyBody::boxed(http_body_util::StreamBody::new(
                tokio_stream::wrappers::ReceiverStream::new(receiver),
            )))
            .unwrap();
        let response = client.send(streamed, None).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let (sized, streamed) = server.await.unwrap();
        assert_eq!(
            sized,
            format!("POST /up HTTP/1.1\r\nhost: {address}\r\ncontent-length: 4\r\n\r\ndata")
        );
        assert_eq!(
            streamed,
            format!(
                "POST /stream HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
            )
        );
    }

    #[tokio::test]
    async fn a_stale_pooled_connection_is_replaced_for_a_get() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // First connection: one response, then the next request is read
            // and the connection closed unanswered (the race with an idle
            // timeout on the server).
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            read_request(&mut socket, 0).await;
            drop(socket);
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let client = client();
        let first = client.send(get(address, "/"), None).await.unwrap();
        assert!(first.body().is_end_stream());
        drop(first);
        let second = client.send(get(address, "/"), None).await.unwrap();
        let body = second.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn early_answers_informational_heads_and_bad_heads() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
                .await
                .unwrap();
            drop(socket);
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.unwrap();
        });
        let client = client();
        let response = client.send(get(address, "/"), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("link"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"until close");
        let error = client.send(get(address, "/"), None).await.unwrap_err();
        assert!(matches!(error, ExchangeError::Response(_)), "{error:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_request_body_goes_on_after_an_early_answer() {
        // An echo that answers at once and sends back the bytes it reads.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 64];
            while !received.ends_with(b"0\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request body stopped");
                received.extend_from_slice(&buf[..n]);
                let chunk = format!("{:X}\r\n", n);
                socket.write_all(chunk.as_bytes()).await.unwrap();
                socket.write_all(&buf[..n]).await.unwrap();
                socket.write_all(b"\r\n").await.unwrap();
            }
            socket.write_all(b"0\r\n\r\n").await.unwrap();
            received
        });
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let request = Request::post(format!("http://{address}/echo"))
            .body(ProxyBody::boxed(http_body_util::StreamBody::new(
                tokio_stream::wrappers::ReceiverStream::new(receiver),
            )))
            .unwrap();
        let client = client();
        let send = tokio::spawn(async move {
            sender
                .send(Ok(Frame::data(Bytes::from_static(b"first"))))
                .await
                .unwrap();
            sender
        });
        let response = client.send(request, None).await.unwrap();
        let mut body = response.into_body();
        // The first piece (as it went on the wire, chunked) comes back
        // before the second is sent.
        let mut echoed = Vec::new();
        while echoed.len() < b"5\r\nfirst\r\n".len() {
            let frame = body.frame().await.unwrap().unwrap();
            echoed.extend_from_slice(frame.data_ref().unwrap());
        }
        assert_eq!(echoed, b"5\r\nfirst\r\n");
        let sender = send.await.unwrap();
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"second"))))
            .await
            .unwrap();
        drop(sender);
        // Without the rest of the upload, the echo would wait for ever.
        let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("the rest of the upload went through")
            .unwrap()
            .to_bytes();
        assert_eq!(&rest[..], b"6\r\nsecond\r\n0\r\n\r\n");
        let received = server.await.unwrap();
        assert!(received.ends_with(b"0\r\n\r\n"));
    }

    #[tokio::test]
    async fn lengths_beside_a_transfer_coding_are_dropped_and_other_codings_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                .await
                .unwrap();
            read_request(&mut socket, 0).await;
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
                .await
                .unwrap();
        });
        let client = client();
        let response = client.send(get(address, "/"), None).await.unwrap();
        assert!(!response.headers().contains_key("content-length"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"abc");
        let error = client.send(get(address, "/"), None).await.unwrap_err();
        assert!(matches!(error, ExchangeError::Response(_)), "{error:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = client().send(get(address, "/"), None).await.unwrap_err();
        assert!(matches!(error, ExchangeError::Connect(_)), "{error:?}");
    }
}
