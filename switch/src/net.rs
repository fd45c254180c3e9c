//! Where bytes come from and go to: the seams between the switch and the network.
//!
//! ```text
//!  terminals ──▶ Listener::accept ──▶ Connection (read half, write half) ──▶ server
//!  issuer lines: Dialer::dial("host:port") ──▶ Stream ──▶ line task
//! ```
//!
//! The daemon plugs in TCP ([`tokio::net::TcpListener`], [`TcpDialer`]); a deterministic
//! simulation plugs in a simulated network, and a TLS layer can wrap either. Nothing past
//! these traits knows which it is.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed stream, for the few long-lived issuer lines.
pub type BoxStream = Box<dyn Stream>;

/// An accepted terminal connection, split into halves the reader and the writer own once
/// it is open (for TLS: after the handshake, which runs in the connection's own task so a
/// slow peer never holds up the accept loop).
pub trait Connection: Send + 'static {
    /// The read half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The write half.
    type Write: AsyncWrite + Unpin + Send + 'static;

    /// The two halves, once the connection is ready to carry frames.
    fn open(self) -> impl Future<Output = io::Result<(Self::Read, Self::Write)>> + Send;
}

impl Connection for tokio::net::TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    async fn open(self) -> io::Result<(Self::Read, Self::Write)> {
        Ok(self.into_split())
    }
}

/// A TCP listener on `addr` with room for `backlog` connections waiting to be accepted
/// (tokio's `TcpListener::bind` asks for 1,024; a reconnect storm wants more).
pub fn tcp_listener(addr: SocketAddr, backlog: u32) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted switch binds again at once over its old connections' TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Where terminal connections come from.
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Conn: Connection;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Replies are small and answered at once: no Nagle delay.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// A dial in progress.
pub type Dialing<'a> = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + 'a>>;

/// How issuer lines connect.
pub trait Dialer: Send + Sync + 'static {
    /// Connects to `addr` (`host:port` as configured).
    fn dial<'a>(&'a self, addr: &'a str) -> Dialing<'a>;
}

/// Plain TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial<'a>(&'a self, addr: &'a str) -> Dialing<'a> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as BoxStream)
        })
    }
}
