//! [`ReadAhead`]: a read buffer between a socket and rustls.
//!
//! rustls (0.23) asks its transport for at most 4 KiB per read (`read_tls`), so a TLS stream read
//! straight from a socket makes one `recv` system call per 4 KiB: about 4,100 of them for a
//! 16 MiB body, and as many readiness round trips through the executor when the socket runs dry.
//! `ReadAhead` answers those small reads from one buffer that it fills with a single large read
//! of the socket, so a large body costs one system call per [`READ_AHEAD_BYTES`] instead, at the
//! price of one more memory copy of each byte. Measured on the edge (benches/results/README.md,
//! "The edge's TLS read path"): about a quarter of the `recv` calls, and no lower CPU per byte
//! (the copy costs about what the calls did); the edge's CPU per byte fell only once
//! [`ReadMany`] was added as well.
//!
//! Writes, flushes and shutdown pass straight through. A read that asks for at least a whole
//! buffer while the buffer is empty goes straight to the socket as well.
//!
//! [`ReadMany`] sits on the other side of rustls, between the TLS stream and hyper: a TLS stream
//! answers a read with at most one record's plaintext (16 KiB), so hyper would hand a proxied or
//! uploaded body on in 16 KiB frames, each one task wake-up, one write system call and one
//! round of TCP processing further on. `ReadMany` keeps reading while the stream has data at
//! hand and the caller's buffer has room, so hyper's (adaptive, up to hundreds of KiB) read
//! buffer fills with as many records as have arrived.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at once.
pub const READ_AHEAD_BYTES: usize = 64 * 1024;

/// A stream whose reads go through a [`READ_AHEAD_BYTES`] buffer (allocated at the first read).
pub struct ReadAhead<S> {
    inner: S,
    buffer: Box<[u8]>,
    /// `buffer[start..end]` holds bytes read from `inner` and not yet handed out.
    start: usize,
    end: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buffer: Box::default(),
            start: 0,
            end: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            if out.remaining() >= READ_AHEAD_BYTES {
                return Pin::new(&mut this.inner).poll_read(context, out);
            }
            if this.buffer.is_empty() {
                this.buffer = vec![0; READ_AHEAD_BYTES].into_boxed_slice();
            }
            let mut fill = ReadBuf::new(&mut this.buffer);
            ready!(Pin::new(&mut this.inner).poll_read(context, &mut fill))?;
            this.start = 0;
            this.end = fill.filled().len();
        }
        let count = out.remaining().min(this.end - this.start);
        out.put_slice(&this.buffer[this.start..this.start + count]);
        this.start += count;
        Poll::Ready(Ok(()))
    }
}

/// Writes, flushes and shutdown of `$wrapper` go straight to its `inner` stream.
macro_rules! write_through {
    ($wrapper:ident) => {
        impl<S: AsyncWrite + Unpin> AsyncWrite for $wrapper<S> {
            fn poll_write(
                self: Pin<&mut Self>,
                context: &mut Context<'_>,
                bytes: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().inner).poll_write(context, bytes)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                context: &mut Context<'_>,
                buffers: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().inner).poll_write_vectored(context, buffers)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().inner).poll_flush(context)
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                context: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
            }
        }
    };
}

write_through!(ReadAhead);

/// A stream whose reads gather everything the inner stream has at hand (see the module docs).
pub struct ReadMany<S> {
    inner: S,
}

impl<S> ReadMany<S> {
    pub fn new(inner: S) -> Self {
        ReadMany { inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadMany<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = out.filled().len();
        loop {
            let filled = out.filled().len();
            match Pin::new(&mut this.inner).poll_read(context, out) {
                // The end of the stream, or a full buffer: what was gathered so far, if anything
                // (an end of stream is seen again by the next read).
                Poll::Ready(Ok(())) if out.filled().len() == filled || out.remaining() == 0 => {
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => continue,
                // Nothing more at hand: the inner stream will wake the task when there is.
                Poll::Pending if out.filled().len() > before => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) if out.filled().len() > before => return Poll::Ready(Ok(())),
                other => return other,
            }
        }
    }
}

write_through!(ReadMany);

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its data in reads of at most `chunk` bytes and counts them.
    struct Counted {
        data: Vec<u8>,
        position: usize,
        chunk: usize,
        reads: usize,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            self: Pin<&mut Self>,
            _context: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            let count = out
                .remaining()
                .min(this.chunk)
                .min(this.data.len() - this.position);
            out.put_slice(&this.data[this.position..this.position + count]);
            this.position += count;
            Poll::Ready(Ok(()))
        }
    }

    fn read_all(stream: &mut ReadAhead<Counted>, read_size: usize) -> Vec<u8> {
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut collected = Vec::new();
        let mut scratch = vec![0; read_size];
        loop {
            let mut out = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *stream).poll_read(&mut context, &mut out) {
                Poll::Ready(Ok(())) if out.filled().is_empty() => return collected,
                Poll::Ready(Ok(())) => collected.extend_from_slice(out.filled()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn small_reads_are_served_from_one_large_read() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = ReadAhead::new(Counted {
            data: data.clone(),
            position: 0,
            chunk: usize::MAX,
            reads: 0,
        });
        assert_eq!(read_all(&mut stream, 4096), data);
        // 1,000,000 bytes in 64 KiB fills, and the read that finds the end.
        assert_eq!(
            stream.inner.reads,
            data.len().div_ceil(READ_AHEAD_BYTES) + 1
        );
    }

    #[test]
    fn short_socket_reads_and_large_caller_reads_lose_nothing() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        for (chunk, read_size) in [(1, 4096), (1000, 7), (5000, READ_AHEAD_BYTES * 2)] {
            let mut stream = ReadAhead::new(Counted {
                data: data.clone(),
                position: 0,
                chunk,
                reads: 0,
            });
            assert_eq!(read_all(&mut stream, read_size), data, "chunk {chunk}");
        }
    }

    /// Answers its reads from a script: `Some(bytes)` (empty: the end), `None`: nothing yet.
    struct Scripted {
        script: std::collections::VecDeque<Option<io::Result<Vec<u8>>>>,
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            self: Pin<&mut Self>,
            _context: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.get_mut().script.pop_front() {
                Some(Some(Ok(bytes))) => {
                    out.put_slice(&bytes);
                    Poll::Ready(Ok(()))
                }
                Some(Some(Err(error))) => Poll::Ready(Err(error)),
                Some(None) => Poll::Pending,
                None => Poll::Ready(Ok(())),
            }
        }
    }

    #[test]
    fn read_many_gathers_what_is_at_hand_and_keeps_ends_and_errors() {
        let chunk = |text: &str| Some(Ok(text.as_bytes().to_vec()));
        let mut stream = ReadMany::new(Scripted {
            script: [
                chunk("one "),
                chunk("two "),
                None,
                None,
                chunk("three"),
                Some(Err(io::Error::other("broken"))),
                Some(Err(io::Error::other("broken"))),
            ]
            .into(),
        });
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut scratch = [0u8; 64];
        let mut read = |stream: &mut ReadMany<Scripted>| {
            let mut out = ReadBuf::new(&mut scratch);
            match Pin::new(stream).poll_read(&mut context, &mut out) {
                Poll::Ready(Ok(())) => Some(Ok(String::from_utf8(out.filled().to_vec()).unwrap())),
                Poll::Ready(Err(error)) => Some(Err(error.to_string())),
                Poll::Pending => None,
            }
        };
        // Two chunks at hand are one read; nothing at hand is Pending.
        assert_eq!(read(&mut stream), Some(Ok("one two ".into())));
        assert_eq!(read(&mut stream), None);
        // Data before an error is handed out; the error comes with the next read.
        assert_eq!(read(&mut stream), Some(Ok("three".into())));
        assert_eq!(read(&mut stream), Some(Err("broken".into())));
        // The end.
        assert_eq!(read(&mut stream), Some(Ok(String::new())));

        // A full buffer ends the gathering.
        let mut stream = ReadMany::new(Scripted {
            script: [chunk(&"x".repeat(40)), chunk(&"y".repeat(24)), chunk("z")].into(),
        });
        let mut out = ReadBuf::new(&mut scratch);
        assert!(matches!(
            Pin::new(&mut stream).poll_read(&mut context, &mut out),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(out.filled().len(), 64);
        assert_eq!(stream.inner.script.len(), 1);
    }
}
