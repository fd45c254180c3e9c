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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    serve_until(listener, hsm, config, &Stop::default());
}

/// What stops a server: a flag, and the connections to cut.
#[derive(Clone, Default)]
struct Stop {
    stopped: Arc<AtomicBool>,
    open: Arc<Mutex<std::collections::HashMap<u64, TcpStream>>>,
}

fn serve_until(listener: TcpListener, hsm: Arc<PayShield>, config: ServerConfig, stop: &Stop) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stop.stopped.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= config.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("connection limit reached; closing a new connection");
            drop(stream);
            continue;
        }
        next_id += 1;
        let id = next_id;
        if let (Ok(mut list), Ok(clone)) = (stop.open.lock(), stream.try_clone()) {
            list.insert(id, clone);
        }
        let hsm = Arc::clone(&hsm);
        let open = Arc::clone(&open);
        let registry = Arc::clone(&stop.open);
        let spawned = std::thread::Builder::new()
            .name("payshield-conn".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = connection(&hsm, config, stream) {
                    tracing::debug!(?peer, error = %e, "connection ended");
                }
                // The registry's copy keeps the socket open: closing it ends the connection.
                if let Ok(mut list) = registry.lock()
                    && let Some(s) = list.remove(&id)
                {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                open.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            tracing::error!("could not start a connection thread");
        }
    }
}

/// A server started by [`spawn`]: its address, and a way to stop it as a crash would
/// (the listener closed, every connection cut).
pub struct Handle {
    addr: SocketAddr,
    stop: Stop,
    accept: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Handle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and cuts every open connection; returns once the listening socket
    /// is closed (its address can be bound again).
    pub fn stop(&self) {
        self.stop.stopped.store(true, Ordering::Release);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.lock().ok().and_then(|mut a| a.take()) {
            let _ = t.join();
        }
        if let Ok(list) = self.stop.open.lock() {
            for s in list.values() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Binds `addr` and serves it on a background thread.
pub fn spawn(addr: &str, hsm: Arc<PayShield>, config: ServerConfig) -> io::Result<Handle> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let stop = Stop::default();
    let s = stop.clone();
    let accept = std::thread::Builder::new()
        .name("payshield-accept".into())
        .spawn(move || serve_until(listener, hsm, config, &s))?;
    Ok(Handle {
        addr: local,
        stop,
        accept: Mutex::new(Some(accept)),
    })
}
