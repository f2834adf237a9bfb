//! Accepting a connection on an entry point that serves TLS: the first byte
//! tells a TLS ClientHello (a handshake record, 0x16) from plain HTTP, so one
//! port serves both (routers with `tls` answer on TLS connections, the others
//! on plain ones, as in Traefik). The ClientHello is read before the config
//! is chosen, so the SNI selects the TLS options.

use std::io;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::Acceptor;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::EntryPointTls;

/// First byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a TLS connection knows about its handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsInfo {
    /// The SNI the client sent, lower-cased.
    pub(crate) sni: Option<Box<str>>,
    /// The client's certificate chain, leaf first (empty without client auth).
    pub(crate) peer_certificates: Arc<[CertificateDer<'static>]>,
}

/// A connection after the first byte was read (and the handshake done).
pub(crate) enum Accepted {
    /// Plain HTTP.
    Plain(TcpStream),
    /// TLS, with its handshake facts.
    Tls(Box<TlsStream<TcpStream>>, TlsInfo),
}

/// Peeks at `stream` and completes a TLS handshake when it starts with one.
pub(crate) async fn accept(stream: TcpStream, tls: &EntryPointTls) -> io::Result<Accepted> {
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    if read == 0 || first[0] != HANDSHAKE_RECORD {
        return Ok(Accepted::Plain(stream));
    }
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    let sni = start
        .client_hello()
        .server_name()
        .map(|name| name.to_ascii_lowercase().into_boxed_str());
    let config = tls.config_for(sni.as_deref());
    let stream = start.into_stream(config).await?;
    let peer_certificates = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    Ok(Accepted::Tls(
        Box::new(stream),
        TlsInfo {
            sni,
            peer_certificates,
        },
    ))
}
