//! Reading a message body off the wire as `http_body` frames: a fixed
//! length, chunked (with trailers), or everything until the peer closes.
//!
//! The decoder owns no I/O: it takes the bytes already read (the rest of the
//! buffer the head was parsed from) and a reader for more. Data frames are
//! split off the read buffer, so reading a body copies nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::Frame;
use tokio::io::AsyncRead;
use tokio_util::io::poll_read_buf;

use super::framing::Framing;

/// Bytes asked of the socket per read once the buffer is empty.
pub(crate) const READ_SIZE: usize = 16 * 1024;
/// Bound on a chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Bound on the chunk extensions of one body, all chunks together (as
/// hyper bounds them): extensions are skipped, and must not cost unbounded
/// reading.
const MAX_EXTENSIONS: usize = 16 * 1024;
/// Bound on the trailer section of a chunked body.
const MAX_TRAILERS: usize = 16 * 1024;
/// Bound on the number of trailer fields.
const MAX_TRAILER_FIELDS: usize = 64;

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers, then the empty line.
    Trailers,
}

/// The state of one body being read.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    /// Chunk-extension bytes read so far.
    extensions: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the body ended",
    )
}

/// Parses a chunk-size line at the start of `buf`: `Some((line length,
/// size, extension bytes))`, `None` if the line is not complete. Strict, as
/// a proxy must be so that no hop in front of it reads the body's end
/// elsewhere: hex digits, optional blanks, then either CRLF or `;` and
/// extensions (visible characters and blanks) up to CRLF.
fn chunk_size_line(buf: &[u8]) -> io::Result<Option<(usize, u64, usize)>> {
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut index = 0;
    while let Some(&byte) = buf.get(index) {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            _ => break,
        };
        digits += 1;
        if digits > 16 {
            return Err(invalid("chunk size too large"));
        }
        size = (size << 4) | u64::from(digit);
        index += 1;
    }
    if index < buf.len() && digits == 0 {
        return Err(invalid("chunk size missing"));
    }
    while matches!(buf.get(index), Some(b' ' | b'\t')) {
        index += 1;
    }
    let extension_start = index;
    if buf.get(index) == Some(&b';') {
        while let Some(&byte) = buf.get(index) {
            match byte {
                b'\r' | b'\n' => break,
                b'\t' | b' '..=b'~' | 0x80..=0xff => index += 1,
                _ => return Err(invalid("control character in a chunk extension")),
            }
            if index > MAX_CHUNK_LINE {
                return Err(invalid("chunk-size line too long"));
            }
        }
    }
    match (buf.get(index), buf.get(index + 1)) {
        (None, _) | (Some(b'\r'), None) => {
            if index > MAX_CHUNK_LINE {
                Err(invalid("chunk-size line too long"))
            } else {
                Ok(None)
            }
        }
        (Some(b'\r'), Some(b'\n')) => Ok(Some((index + 2, size, index - extension_start))),
        _ => Err(invalid("malformed chunk-size line")),
    }
}

/// Parses the trailer section at the start of `buf` (after the last
/// chunk): `Some((length, trailers))`, `None` if it is not complete. Lines
/// end in CRLF only.
fn trailer_section(buf: &[u8]) -> io::Result<Option<(usize, Option<HeaderMap>)>> {
    if buf.starts_with(b"\r\n") {
        return Ok(Some((2, None)));
    }
    if buf.len() < 2 {
        return if buf.first() == Some(&b'\n') {
            Err(invalid("bare LF in the trailer section"))
        } else {
            Ok(None)
        };
    }
    let mut parsed = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    match httparse::parse_headers(buf, &mut parsed) {
        Ok(httparse::Status::Complete((length, fields))) => {
            let section = &buf[..length];
            let bare_lf = section
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || section[i - 1] != b'\r'));
            if bare_lf {
                return Err(invalid("bare LF in the trailer section"));
            }
            let mut trailers = HeaderMap::with_capacity(fields.len());
            for field in fields {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| invalid("invalid trailer name"))?;
                let value = HeaderValue::from_bytes(field.value)
                    .map_err(|_| invalid("invalid trailer value"))?;
                trailers.append(name, value);
            }
            Ok(Some((length, Some(trailers))))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
            Err(invalid("trailer section too large"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(invalid("malformed trailer section")),
    }
}

impl Decoder {
    /// A decoder for a body framed as `framing`.
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::Size),
            Framing::UntilClose => State::UntilClose,
        };
        Self {
            state,
            extensions: 0,
        }
    }

    /// The whole body has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes still expected, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            State::Chunked(_) | State::UntilClose => None,
        }
    }

    /// The next frame: from `buf` when it holds enough, else after reading
    /// more from `io` into it. `None` once the body has ended.
    pub(crate) fn poll_frame<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut R,
        buf: &mut BytesMut,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        loop {
            if let Some(frame) = self.decode(buf).transpose() {
                return Poll::Ready(Some(frame));
            }
            if self.state == State::Done {
                return Poll::Ready(None);
            }
            if buf.capacity() - buf.len() < READ_SIZE / 4 {
                buf.reserve(READ_SIZE);
            }
            let read = match ready!(poll_read_buf(Pin::new(&mut *io), cx, buf)) {
                Ok(read) => read,
                Err(error) => return Poll::Ready(Some(Err(error))),
            };
            if read == 0 {
                if self.state == State::UntilClose {
                    self.state = State::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(truncated())));
            }
        }
    }

    /// Reads past what is left of the body in `buf` (a body its reader
    /// dropped): whether the body ended within it.
    pub(crate) fn drain_buffered(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        while self.decode(buf)?.is_some() {}
        Ok(self.is_done())
    }

    /// Decodes what `buf` holds: `Ok(None)` when more bytes are needed or the
    /// body has ended (see `is_done`).
    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame<Bytes>>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Length(remaining) | State::Chunked(Chunked::Data(remaining)) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = remaining - take as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::Chunked(Chunked::DataEnd),
                        _ => State::Chunked(Chunked::Data(left)),
                    };
                    return Ok(Some(Frame::data(data)));
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let data = buf.split().freeze();
                    return Ok(Some(Frame::data(data)));
                }
                State::Chunked(Chunked::Size) => {
                    let Some((line, size, extension)) = chunk_size_line(buf)? else {
                        return Ok(None);
                    };
                    self.extensions += extension;
                    if self.extensions > MAX_EXTENSIONS {
                        return Err(invalid("too many chunk-extension bytes"));
                    }
                    buf.advance(line);
                    self.state = State::Chunked(if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    });
                }
                State::Chunked(Chunked::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Chunked(Chunked::Size);
                }
                State::Chunked(Chunked::Trailers) => {
                    let Some((length, trailers)) = trailer_section(buf)? else {
                        return Ok(None);
                    };
                    buf.advance(length);
                    self.state = State::Done;
                    return Ok(trailers.map(Frame::trailers));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes; the frames, or the error.
    fn decode_all(framing: Framing, wire: &[u8], step: usize) -> io::Result<Vec<Frame<Bytes>>> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf)? {
                frames.push(frame);
            }
        }
        if !decoder.is_done() && framing != Framing::UntilClose {
            return Err(truncated());
        }
        Ok(frames)
    }

    fn data(frames: &[Frame<Bytes>]) -> Vec<u8> {
        frames
            .iter()
            .filter_map(Frame::data_ref)
            .flat_map(|d| d.to_vec())
            .collect()
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"4\r\nWiki\r\n6;ext=\"v\"\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nGrpc-Status: 0\r\nX-A: b\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let frames = decode_all(Framing::Chunked, wire, step).unwrap();
            assert_eq!(
                data(&frames),
                b"Wikipedia in \r\n\r\nchunks.",
                "step {step}"
            );
            let trailers = frames.last().unwrap().trailers_ref().unwrap();
            assert_eq!(trailers["grpc-status"], "0");
            assert_eq!(trailers["x-a"], "b");
        }
    }

    #[test]
    fn a_chunked_body_without_trailers_ends_after_the_empty_line() {
        let frames = decode_all(Framing::Chunked, b"2\r\nok\r\n0\r\n\r\n", 1).unwrap();
        assert_eq!(data(&frames), b"ok");
        assert!(frames.iter().all(|f| f.is_data()));
    }

    /// Whether decoding failed on malformed input, not for want of more.
    fn is_malformed(decoded: io::Result<Vec<Frame<Bytes>>>) -> bool {
        decoded.is_err_and(|error| error.kind() == io::ErrorKind::InvalidData)
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"2\nok\r\n0\r\n\r\n",
            b"2;a\nb\r\nok\r\n0\r\n\r\n",
            b"2\r\nokX\r\n",
            b"2\r\xffok",
            b"11111111111111111\r\n",
            b"2;\x01\r\nok\r\n",
            b"0x10\r\n",
            b"5 junk\r\nhello\r\n",
            b"1\t2\r\nx\r\n",
            b"2\r\nok\r\n0\r\n\n",
            b"2\r\nok\r\n0\r\nX-A: b\nX-B: c\r\n\r\n",
        ] {
            assert!(
                is_malformed(decode_all(Framing::Chunked, bad, 64)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE + 1));
        assert!(is_malformed(decode_all(
            Framing::Chunked,
            long.as_bytes(),
            64
        )));
        // Blanks before the line's end or an extension are fine; many
        // extensions over a body are not.
        let frames = decode_all(
            Framing::Chunked,
            b"2 \t\r\nok\r\n2 ;a=b\r\nok\r\n0\r\n\r\n",
            3,
        );
        assert_eq!(data(&frames.unwrap()), b"okok");
        let chatty = format!("1;{}\r\nx\r\n", "e".repeat(1000)).repeat(20);
        assert!(is_malformed(decode_all(
            Framing::Chunked,
            chatty.as_bytes(),
            512
        )));
    }

    #[test]
    fn lengths_stop_at_the_length_and_leave_the_rest() {
        let mut decoder = Decoder::new(Framing::Length(5));
        let mut buf = BytesMut::from(&b"helloGET / HTTP/1.1"[..]);
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.data_ref().unwrap(), "hello");
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"GET / HTTP/1.1");
        assert!(decode_all(Framing::Length(10), b"short", 2).is_err());
    }

    #[tokio::test]
    async fn reads_until_close_and_reports_truncation() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"all of it")
            .await
            .unwrap();
        drop(client);
        let mut server = server;
        let mut decoder = Decoder::new(Framing::UntilClose);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| decoder.poll_frame(cx, &mut server, &mut buf)).await
        {
            body.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        assert_eq!(body, b"all of it");

        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"3\r\nab")
            .await
            .unwrap();
        drop(client);
        let mut decoder = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::new();
        let first = std::future::poll_fn(|cx| decoder.poll_frame(cx, &mut server, &mut buf)).await;
        assert_eq!(first.unwrap().unwrap().data_ref().unwrap(), "ab");
        let error = std::future::poll_fn(|cx| decoder.poll_frame(cx, &mut server, &mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
