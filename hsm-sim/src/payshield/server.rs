//! The TCP side: length-prefixed frames, a header echoed back, an optional trailer after
//! `0x19` echoed back, one thread per connection answering its commands in order (so a
//! client may pipeline), a cap on connections.
//!
//! ```text
//!  ┌─────────┬───────────────┬────────────────────────────┐
//!  │ len u16 │ header N bytes│ command … [0x19 trailer]   │   len = N + the rest
//!  └─────────┴───────────────┴────────────────────────────┘
//! ```

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::PayShield;

/// How the server frames and limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Characters of message header before the command code (payShield's default is 4).
    pub header_len: usize,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_len: 4,
            max_connections: 512,
        }
    }
}

/// Answers one frame's payload (header + command): header + response.
pub fn answer(hsm: &PayShield, header_len: usize, payload: &[u8]) -> Option<Vec<u8>> {
    let header = payload.get(..header_len)?;
    let command = &payload[header_len..];
    let mut out = Vec::with_capacity(header_len + 64);
    out.extend_from_slice(header);
    out.extend_from_slice(&hsm.process(command));
    Some(out)
}

fn connection(hsm: &PayShield, config: ServerConfig, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream);
    let mut len = [0u8; 2];
    let mut payload = Vec::new();
    loop {
        if let Err(e) = reader.read_exact(&mut len) {
            return if e.kind() == io::ErrorKind::UnexpectedEof {
                Ok(())
            } else {
                Err(e)
            };
        }
        payload.resize(usize::from(u16::from_be_bytes(len)), 0);
        reader.read_exact(&mut payload)?;
        // A frame too short to hold its header cannot be answered: close.
        let Some(out) = answer(hsm, config.header_len, &payload) else {
            return Ok(());
        };
        let Ok(n) = u16::try_from(out.len()) else {
            return Ok(());
        };
        writer.write_all(&n.to_be_bytes())?;
        writer.write_all(&out)?;
        // Answer at once unless more requests already wait (pipelining).
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// Serves `listener` until the process ends.
pub fn serve(listener: TcpListener, hsm: Arc<PayShield>, config: ServerConfig) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= config.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("connection limit reached; closing a new connection");
            drop(stream);
            continue;
        }
        let hsm = Arc::clone(&hsm);
        let open = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("payshield-conn".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = connection(&hsm, config, stream) {
                    tracing::debug!(?peer, error = %e, "connection ended");
                }
                open.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            tracing::error!("could not start a connection thread");
        }
    }
}

/// Binds `addr` and serves it on a background thread; returns the bound address.
pub fn spawn(addr: &str, hsm: Arc<PayShield>, config: ServerConfig) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("payshield-accept".into())
        .spawn(move || serve(listener, hsm, config))?;
    Ok(local)
}
