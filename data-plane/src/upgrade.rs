//! Protocol upgrades (WebSocket and other `Upgrade` / `101` exchanges): each
//! end of the tunnel is a pending connection until the `101` is through,
//! whichever HTTP implementation carried the exchange (hyper's, or the
//! proxy's own HTTP/1.1 server and client).

use std::io;

use http::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::h1;

/// A connection carrying a tunnel.
pub(crate) trait TunnelIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> TunnelIo for T {}

/// One end of an upgrade, until the `101` response has gone through.
#[derive(Debug)]
pub(crate) enum PendingIo {
    /// Carried by hyper.
    Hyper(hyper::upgrade::OnUpgrade),
    /// Carried by the proxy's HTTP/1.1 client.
    H1(h1::PendingUpgrade),
    /// Carried by the proxy's HTTP/1.1 server.
    H1Client(h1::ClientUpgrade),
}

impl PendingIo {
    /// The client end of an upgrade request.
    pub(crate) fn of_request<B>(req: &mut Request<B>) -> Self {
        match req.extensions_mut().remove::<h1::ClientUpgrade>() {
            Some(pending) => Self::H1Client(pending),
            None => Self::Hyper(hyper::upgrade::on(req)),
        }
    }

    /// The server end, from its `101` response.
    pub(crate) fn of_response<B>(response: &mut Response<B>) -> Self {
        match response.extensions_mut().remove::<h1::PendingUpgrade>() {
            Some(pending) => Self::H1(pending),
            None => Self::Hyper(hyper::upgrade::on(response)),
        }
    }

    /// The upgraded connection.
    pub(crate) async fn connect(self) -> io::Result<Box<dyn TunnelIo>> {
        match self {
            Self::Hyper(pending) => {
                let upgraded = pending.await.map_err(io::Error::other)?;
                Ok(Box::new(TokioIo::new(upgraded)))
            }
            Self::H1(pending) => pending
                .take()
                .map(|upgraded| Box::new(upgraded) as Box<dyn TunnelIo>)
                .ok_or_else(|| io::Error::other("the upgraded connection was already taken")),
            Self::H1Client(pending) => pending.connect().await,
        }
    }
}
