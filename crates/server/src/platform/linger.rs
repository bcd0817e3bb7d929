//! Lingering close: an answer given before the request body was read reaches a client that is still uploading.
//!
//! When the server answers early (a wrong key, an unknown route, a body over its limit) and closes, a client still
//! sending its body would meet a TCP reset, and the reset destroys the answer before the client reads it (seen:
//! Python's client uploading 3 MB reports "EOF occurred in violation of protocol" instead of the 401). So a
//! connection's shutdown, which hyper asks for after the last answer is flushed, first sends FIN (after TLS's
//! `close_notify`, which wraps this stream), then reads and discards what the client still sends until it closes,
//! for at most `close_linger_secs` and [`LINGER_BYTES`], as web servers' lingering close does. Only then is the
//! socket dropped. A client that hangs up at once (the usual case) costs nothing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Most bytes discarded while lingering (a body larger than that was never going to be accepted).
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// A TCP stream that lingers on shutdown.
#[derive(Debug)]
pub struct Lingering {
    stream: TcpStream,
    linger: Duration,
    state: State,
}

#[derive(Debug)]
enum State {
    Open,
    /// FIN sent; discarding until the client closes, the deadline, or the byte cap.
    Draining {
        deadline: Pin<Box<Sleep>>,
        discarded: usize,
    },
    Closed,
}

impl Lingering {
    /// `stream`, lingering up to `linger` when shut down.
    pub fn new(stream: TcpStream, linger: Duration) -> Self {
        Self {
            stream,
            linger,
            state: State::Open,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.state = State::Draining {
                        deadline: Box::pin(tokio::time::sleep(this.linger)),
                        discarded: 0,
                    };
                }
                State::Draining { deadline, discarded } => {
                    if deadline.as_mut().poll(cx).is_ready() || *discarded >= LINGER_BYTES {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.stream).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() => *discarded += buf.filled().len(),
                        // The client closed (or broke) its side: nothing is left to protect.
                        Ok(()) | Err(_) => this.state = State::Closed,
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
