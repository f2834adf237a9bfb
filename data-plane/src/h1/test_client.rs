//! A client speaking raw HTTP/1.x over a real socket, for tests that must
//! see exactly what goes over the wire.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::decode::Decoder;
use super::framing;
use super::head::{self, ResponseHead};
use crate::proxy_tests::Harness;

/// A client speaking raw HTTP/1.x.
pub(crate) struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

/// A response as the client read it.
pub(crate) struct Received {
    pub(crate) head: ResponseHead,
    pub(crate) body: String,
    pub(crate) trailers: Option<HeaderMap>,
}

impl RawClient {
    pub(crate) async fn connect(harness: &Harness) -> Self {
        Self::connect_to(harness.address()).await
    }

    pub(crate) async fn connect_to(address: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(address).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response to a `method` request, within 10 s.
    pub(crate) async fn response(&mut self, method: &Method) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.read_response(method))
            .await
            .expect("a response within 10 s")
    }

    async fn read_response(&mut self, method: &Method) -> Received {
        let head = loop {
            if let Some(head) = head::parse_response(&mut self.buf, 1 << 16).unwrap() {
                break head.into_response_head().unwrap();
            }
            let read = self.stream.read_buf(&mut self.buf).await.unwrap();
            assert!(read > 0, "closed before a response head");
        };
        let framing = framing::response(method, head.version, head.status, &head.headers).unwrap();
        let mut decoder = Decoder::new(framing);
        let mut body = Vec::new();
        let mut trailers = None;
        let (stream, buf) = (&mut self.stream, &mut self.buf);
        while let Some(frame) = poll_fn(|cx| decoder.poll_frame(cx, stream, buf)).await {
            let frame = frame.unwrap();
            match frame.into_data() {
                Ok(data) => body.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        Received {
            head,
            body: String::from_utf8(body).unwrap(),
            trailers,
        }
    }

    /// Whether the proxy closes the connection (within 10 s).
    pub(crate) async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}
