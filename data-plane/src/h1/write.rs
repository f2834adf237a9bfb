//! Writing messages: a queue of byte buffers written with vectored writes
//! (a head and a small body leave in one system call), and a body's frames
//! encoded for the wire (a fixed length, chunked with trailers, or raw until
//! close) as the body yields them, with back-pressure.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    HOST, MAX_FORWARDS, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderName};
use http_body::{Body, Frame};
use tokio::io::AsyncWrite;

use super::framing::Framing;
use crate::body::{BoxError, ProxyBody};
use crate::headers::{HeaderFields, known, visible_ascii};

/// Queued bytes past which a body is not polled until some are written.
const HIGH_WATER: usize = 64 * 1024;
/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 32;

/// Bytes waiting to be written, in order.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    bufs: VecDeque<Bytes>,
    len: usize,
}

impl WriteQueue {
    /// Queues `bytes` (empty ones are skipped).
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.bufs.push_back(bytes);
        }
    }

    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes everything queued, then flushes `io`.
    pub(crate) fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
    ) -> Poll<io::Result<()>> {
        while self.len > 0 {
            let written = if self.bufs.len() == 1 || !io.is_write_vectored() {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.bufs[0]))?
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = self.bufs.len().min(MAX_SLICES);
                for (slice, buf) in slices.iter_mut().zip(&self.bufs) {
                    *slice = IoSlice::new(buf);
                }
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        Pin::new(&mut *io).poll_flush(cx)
    }

    fn advance(&mut self, mut written: usize) {
        self.len -= written;
        while written > 0 {
            let front = &mut self.bufs[0];
            if written >= front.len() {
                written -= front.len();
                self.bufs.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
}

/// Why a body could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyWriteError {
    /// The body being forwarded failed (its peer went away...).
    #[error("the body being sent failed")]
    Body(#[source] BoxError),
    /// The body has more or fewer bytes than its `Content-Length`.
    #[error("the body does not match its Content-Length")]
    LengthMismatch,
    /// Writing to the peer failed.
    #[error("writing the body failed")]
    Io(#[source] io::Error),
}

/// Encodes a body's frames for its framing.
#[derive(Debug)]
pub(crate) struct Encoder {
    framing: Framing,
    /// Data bytes still due, for `Length`.
    remaining: u64,
    /// The trailer fields sent, when chunked: those the message's
    /// `Trailer` header announced (as hyper does).
    trailers: Option<Vec<HeaderName>>,
}

/// The trailer fields `headers` announce in `Trailer`, if any.
pub(crate) fn announced_trailers<H: HeaderFields + ?Sized>(headers: &H) -> Option<Vec<HeaderName>> {
    if !headers.contains_known(&known::TRAILER) {
        return None;
    }
    let mut names = Vec::new();
    headers.find_known(&known::TRAILER, &mut |value| {
        if let Some(value) = visible_ascii(value) {
            names.extend(
                value
                    .split(',')
                    .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok()),
            );
        }
        false
    });
    (!names.is_empty()).then_some(names)
}

/// Fields that must not travel in trailers (RFC 9110 §6.5.1).
fn allowed_in_trailers(name: &HeaderName) -> bool {
    !matches!(
        *name,
        AUTHORIZATION
            | CACHE_CONTROL
            | CONTENT_ENCODING
            | CONTENT_LENGTH
            | CONTENT_RANGE
            | CONTENT_TYPE
            | HOST
            | MAX_FORWARDS
            | SET_COOKIE
            | TRAILER
            | TRANSFER_ENCODING
            | TE
    )
}

/// `0\r\n\r\n`: the last chunk, no trailers.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn chunk_size_line(length: usize) -> Bytes {
    let mut line = BytesMut::with_capacity(18);
    // Hex digits, most significant first.
    let digits = (usize::BITS - length.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        let nibble = (length >> (shift * 4)) & 0xf;
        line.put_u8(b"0123456789ABCDEF"[nibble]);
    }
    line.put_slice(b"\r\n");
    line.freeze()
}

fn trailer_section(trailers: &HeaderMap, announced: &[HeaderName]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + trailers.len() * 32);
    out.put_slice(b"0\r\n");
    for (name, value) in trailers {
        if !announced.contains(name) || !allowed_in_trailers(name) {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

impl Encoder {
    /// An encoder for `framing`, sending the `trailers` named (chunked only).
    pub(crate) fn new(framing: Framing, trailers: Option<Vec<HeaderName>>) -> Self {
        Self {
            framing,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            trailers,
        }
    }

    /// Queues one frame.
    pub(crate) fn encode(
        &mut self,
        frame: Frame<Bytes>,
        queue: &mut WriteQueue,
    ) -> Result<(), BodyWriteError> {
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers()
                    && self.framing == Framing::Chunked
                    && let Some(announced) = &self.trailers
                {
                    queue.push(trailer_section(&trailers, announced));
                    // The last chunk is written: nothing may follow.
                    self.framing = Framing::Empty;
                }
                return Ok(());
            }
        };
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::Empty => Err(BodyWriteError::LengthMismatch),
            Framing::Length(_) => {
                let length = data.len() as u64;
                if length > self.remaining {
                    return Err(BodyWriteError::LengthMismatch);
                }
                self.remaining -= length;
                queue.push(data);
                Ok(())
            }
            Framing::Chunked => {
                queue.push(chunk_size_line(data.len()));
                queue.push(data);
                queue.push(Bytes::from_static(b"\r\n"));
                Ok(())
            }
            Framing::UntilClose => {
                queue.push(data);
                Ok(())
            }
        }
    }

    /// Queues the end of the body.
    pub(crate) fn finish(&mut self, queue: &mut WriteQueue) -> Result<(), BodyWriteError> {
        match self.framing {
            Framing::Length(_) if self.remaining > 0 => Err(BodyWriteError::LengthMismatch),
            Framing::Chunked => {
                queue.push(Bytes::from_static(LAST_CHUNK));
                self.framing = Framing::Empty;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A body being written: frames are polled, encoded and written until the
/// body ends.
#[derive(Debug)]
pub(crate) struct BodyWriter {
    body: ProxyBody,
    encoder: Encoder,
    ended: bool,
}

impl BodyWriter {
    /// Writes `body` with `encoder`.
    pub(crate) fn new(body: ProxyBody, encoder: Encoder) -> Self {
        Self {
            body,
            encoder,
            ended: false,
        }
    }

    /// Queues the frames `body` has ready without waiting, up to the
    /// high-water mark: lets a head and a small body leave together.
    /// `true` when it stopped because the body has nothing yet (its waker
    /// is then set).
    pub(crate) fn queue_ready(
        &mut self,
        cx: &mut Context<'_>,
        queue: &mut WriteQueue,
    ) -> Result<bool, BodyWriteError> {
        while !self.ended && queue.len() < HIGH_WATER {
            if self.body.is_end_stream() {
                self.encoder.finish(queue)?;
                self.ended = true;
                break;
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => self.encoder.encode(frame, queue)?,
                Poll::Ready(Some(Err(error))) => return Err(BodyWriteError::Body(error)),
                Poll::Ready(None) => {
                    self.encoder.finish(queue)?;
                    self.ended = true;
                }
                Poll::Pending => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Writes the body through `queue` (which may hold bytes to go first);
    /// ready once all of it has been written and flushed.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
        queue: &mut WriteQueue,
    ) -> Poll<Result<(), BodyWriteError>> {
        loop {
            let body_pending = self.queue_ready(cx, queue)?;
            let flushed = queue.poll_flush(cx, io).map_err(BodyWriteError::Io)?;
            if self.ended {
                return flushed.map(Ok);
            }
            ready!(flushed);
            if body_pending {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn written(
        framing: Framing,
        trailers: Option<Vec<HeaderName>>,
        frames: Vec<Frame<Bytes>>,
    ) -> Vec<u8> {
        let mut encoder = Encoder::new(framing, trailers);
        let mut queue = WriteQueue::default();
        for frame in frames {
            encoder.encode(frame, &mut queue).unwrap();
        }
        encoder.finish(&mut queue).unwrap();
        queue.bufs.iter().flat_map(|b| b.to_vec()).collect()
    }

    #[test]
    fn chunked_bodies_are_framed_and_end_once() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("x-unannounced", "1".parse().unwrap());
        trailers.insert("content-type", "text/plain".parse().unwrap());
        let mut head = HeaderMap::new();
        head.insert(TRAILER, "grpc-status, Content-Type".parse().unwrap());
        let announced = announced_trailers(&head);
        assert_eq!(announced.as_ref().unwrap().len(), 2);
        let frames = || {
            vec![
                Frame::data(Bytes::from_static(b"hello")),
                Frame::data(Bytes::new()),
                Frame::data(Bytes::from(vec![b'x'; 26])),
                Frame::trailers(trailers.clone()),
            ]
        };
        let expected_data = format!("5\r\nhello\r\n1A\r\n{}\r\n", "x".repeat(26));
        assert_eq!(
            String::from_utf8(written(Framing::Chunked, announced, frames())).unwrap(),
            format!("{expected_data}0\r\ngrpc-status: 0\r\n\r\n")
        );
        assert_eq!(
            String::from_utf8(written(Framing::Chunked, None, frames())).unwrap(),
            format!("{expected_data}0\r\n\r\n")
        );
    }

    #[test]
    fn lengths_are_enforced() {
        let mut encoder = Encoder::new(Framing::Length(3), None);
        let mut queue = WriteQueue::default();
        assert!(matches!(
            encoder.encode(Frame::data(Bytes::from_static(b"four")), &mut queue),
            Err(BodyWriteError::LengthMismatch)
        ));
        let mut encoder = Encoder::new(Framing::Length(3), None);
        encoder
            .encode(Frame::data(Bytes::from_static(b"ab")), &mut queue)
            .unwrap();
        assert!(matches!(
            encoder.finish(&mut queue),
            Err(BodyWriteError::LengthMismatch)
        ));
        assert_eq!(&chunk_size_line(0)[..], b"0\r\n");
        assert_eq!(&chunk_size_line(4096)[..], b"1000\r\n");
    }

    #[tokio::test]
    async fn a_body_is_written_after_what_is_queued() {
        let (mut writer, mut reader) = tokio::io::duplex(8);
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"HEAD\r\n"));
        let mut body = BodyWriter::new(
            ProxyBody::full(Bytes::from_static(b"some body bytes")),
            Encoder::new(Framing::Chunked, None),
        );
        let write = async {
            poll_fn(|cx| body.poll_write(cx, &mut writer, &mut queue))
                .await
                .unwrap();
            drop(writer);
        };
        let mut received = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut received);
        let (_, read) = tokio::join!(write, read);
        read.unwrap();
        assert_eq!(received, b"HEAD\r\nF\r\nsome body bytes\r\n0\r\n\r\n");
    }
}
