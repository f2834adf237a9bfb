//! A tiny HTTP/1.1 backend for the demo: answers every request with a
//! plain-text echo of what it received, so a user sees what the proxy sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Largest request head the demo backend reads.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves on `listener` in background threads, naming itself `name`.
pub(crate) fn spawn(listener: TcpListener, name: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                if let Err(error) = serve_connection(stream, name) {
                    eprintln!("backend {name}: {error}");
                }
            });
        }
    });
}

fn serve_connection(stream: TcpStream, name: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if let Some((header, value)) = line.split_once(':')
                && header.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
            let end = line == "\r\n" || line == "\n";
            head.push(line);
            if end || head.iter().map(String::len).sum::<usize>() > MAX_HEAD_BYTES {
                break;
            }
        }
        std::io::copy(
            &mut (&mut reader).take(content_length as u64),
            &mut std::io::sink(),
        )?;
        let body = format!("Hello from {name}! You sent:\n\n{}", head.concat());
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )?;
    }
}
