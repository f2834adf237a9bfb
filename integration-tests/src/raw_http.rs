//! HTTP/1.1 requests written byte for byte on a TCP connection, for what an
//! HTTP client would not send as written: un-normalised paths
//! (`/public/../admin`, `%2e%2e`, `//`), hop-by-hop headers, `Connection`
//! tokens.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body, de-chunked.
    pub body: String,
}

impl RawResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }
}

/// Sends `GET <target> HTTP/1.1` to `127.0.0.1:port` with `host` and
/// `extra_headers` (each `Name: value`) exactly as given, plus
/// `Connection: close` unless `extra_headers` has a `Connection` header; reads
/// the response until the server closes the connection (10 s at most).
pub async fn raw_get(
    port: u16,
    target: &str,
    host: &str,
    extra_headers: &[&str],
) -> Result<RawResponse, String> {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
    let mut has_connection = false;
    for header in extra_headers {
        has_connection |= header.to_ascii_lowercase().starts_with("connection:");
        request.push_str(header);
        request.push_str("\r\n");
    }
    if !has_connection {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    raw_request(port, request.as_bytes()).await
}

/// Writes `request` to `127.0.0.1:port` and reads one response. The request
/// must make the server close the connection after answering (e.g.
/// `Connection: close`); at most 10 s.
pub async fn raw_request(port: u16, request: &[u8]) -> Result<RawResponse, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|error| format!("connecting to 127.0.0.1:{port}: {error}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|error| format!("writing the request: {error}"))?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|error| format!("reading the response: {error}"))?;
        parse(&bytes)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("no complete response from 127.0.0.1:{port} within 10 s"))?
}

fn parse(bytes: &[u8]) -> Result<RawResponse, String> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|existing: &mut String| {
                existing.push_str(", ");
                existing.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        body.get(..length)
            .ok_or_else(|| format!("body shorter than its content-length {length}: {body:?}"))?
            .to_owned()
    } else {
        body.to_owned()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| format!("bad chunk in {rest:?}"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| format!("truncated chunk in {after:?}"))?;
        body.push_str(chunk);
        rest = after
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or_else(|| "chunk not followed by CRLF".to_owned())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let response =
            parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\nX-A: 1\r\nx-a: 2\r\n\r\n404 page not found\n")
                .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.body, "404 page not found\n");
        assert_eq!(response.headers["x-a"], "1, 2");
        let response = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response.body, "abcde");
    }
}
