//! What a plugin writes to its standard output and error — `print`,
//! `console.log`, `eprintln!`, and what a language runtime prints when the
//! guest fails: Rust's panic message, Python's traceback, a JavaScript
//! error — captured per call within a byte budget and written to the host's
//! log when the call ends, one line per line with the call's correlation id
//! and tool (`stream` `stdout` at info, `stderr` at warn), counted against
//! the same line budget as the `log` import. Never returned to callers.
//!
//! The guest is never stopped for writing too much: beyond the budget its
//! writes succeed and are dropped, and the drop is counted and logged
//! (wasmtime's `MemoryOutputPipe` traps instead, which would turn a chatty
//! plugin into a failed call — hence this small pipe of our own).

use bytes::Bytes;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One call's captured output: both streams share one byte budget.
#[derive(Debug, Default)]
pub struct Captured {
    /// Bytes kept of standard output.
    pub stdout: Vec<u8>,
    /// Bytes kept of standard error.
    pub stderr: Vec<u8>,
    /// Bytes that may still be kept.
    left: usize,
    /// Bytes written beyond the budget.
    pub dropped: usize,
}

impl Captured {
    fn keep(&mut self, stream: Stream, bytes: &[u8]) {
        let kept = bytes.len().min(self.left);
        let buffer = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buffer.extend_from_slice(&bytes[..kept]);
        self.left -= kept;
        self.dropped += bytes.len() - kept;
    }
}

/// The shared capture of one call.
pub type Capture = Arc<Mutex<Captured>>;

/// A capture that keeps at most `budget` bytes of both streams together.
pub fn capture(budget: usize) -> Capture {
    Arc::new(Mutex::new(Captured { left: budget, ..Captured::default() }))
}

/// One stream of a call's capture, as WASI's stdout or stderr.
#[derive(Clone)]
pub struct GuestOutput {
    capture: Capture,
    stream: Stream,
}

impl GuestOutput {
    /// `stream` of `capture`.
    pub fn new(capture: &Capture, stream: Stream) -> Self {
        Self { capture: capture.clone(), stream }
    }

    fn keep(&self, bytes: &[u8]) {
        self.capture.lock().expect("guest output lock").keep(self.stream, bytes);
    }
}

/// What a guest may write at once: anything (the excess is dropped).
const WRITE_PERMIT: usize = 64 * 1024;

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

impl Pollable for GuestOutput {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The lines of `bytes` (the last one may lack its newline), without
/// carriage returns and empty lines.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(String::from_utf8_lossy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_streams_share_one_budget_and_the_excess_is_counted() {
        let capture = capture(10);
        let mut out = GuestOutput::new(&capture, Stream::Stdout);
        let mut err = GuestOutput::new(&capture, Stream::Stderr);
        out.write(Bytes::from_static(b"hello\n")).unwrap();
        err.write(Bytes::from_static(b"oops\nmore")).unwrap();
        let captured = capture.lock().unwrap();
        assert_eq!(captured.stdout, b"hello\n");
        assert_eq!(captured.stderr, b"oops");
        assert_eq!(captured.dropped, 5);
        assert!(out.check_write().unwrap() > 0, "never closed: writes beyond are dropped");
    }

    #[test]
    fn lines_drop_empty_ones_and_carriage_returns() {
        let got: Vec<_> = lines(b"a\r\n\nb\nc").collect();
        assert_eq!(got, ["a", "b", "c"]);
    }
}
