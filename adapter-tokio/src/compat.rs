//! [`TokioIo`]: a tokio byte stream seen through the `futures-io` traits.
//!
//! Written here rather than taken from `tokio-util`'s `compat` module because that one
//! does not forward vectored writes: every `write_vectored` of frame heads and
//! payloads became one write per chunk (and a TLS server's alert, queued behind its
//! ServerHello, was never sent).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A tokio stream implementing `futures_io::AsyncRead` and `AsyncWrite`.
#[derive(Debug)]
pub struct TokioIo<T>(pub T);

impl<T: AsyncRead + Unpin> futures_io::AsyncRead for TokioIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> futures_io::AsyncWrite for TokioIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::AsyncWriteExt;

    #[tokio::test]
    async fn vectored_writes_stay_vectored() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut io = TokioIo(a);
        let bufs = [IoSlice::new(b"abc"), IoSlice::new(b"def")];
        // One call writes both slices (a per-chunk fallback would write 3 bytes).
        assert_eq!(io.write_vectored(&bufs).await.unwrap(), 6);
        let mut got = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
            .await
            .unwrap();
        assert_eq!(&got, b"abcdef");
    }
}
