//! The framing of Waku's request-response protocols: one unsigned-varint length, then that
//! many bytes of protobuf. Every read is bounded twice: by size (a length over the limit is
//! reported before any of the body is read, so the caller can still answer "too large") and
//! by time (a peer that opens a stream and never writes holds it at most the timeout).

use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use thiserror::Error;

/// Why a frame could not be read or written.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The stream ended before a whole frame arrived (or before any byte of one).
    #[error("the stream ended {0}")]
    Eof(&'static str),
    /// The length prefix is not a varint of at most 10 bytes.
    #[error("the length prefix is not a valid varint")]
    BadLength,
    /// The frame is larger than the protocol allows; its body was not read.
    #[error("the frame has {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Announced size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Nothing (or not enough) arrived in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one length-prefixed frame of at most `limit` bytes within `timeout`.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, FrameError> {
    tokio::time::timeout(timeout, read_frame_untimed(stream, limit))
        .await
        .map_err(|_| FrameError::Timeout(timeout))?
}

async fn read_frame_untimed<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<Vec<u8>, FrameError> {
    let size = read_varint(stream).await?;
    if size > limit as u64 {
        return Err(FrameError::TooLarge { size, limit });
    }
    // `size` is at most `limit`, a usize.
    let mut body = vec![0u8; size as usize];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Eof("inside a frame"),
            _ => FrameError::Io(e),
        })?;
    Ok(body)
}

async fn read_varint<S: AsyncRead + Unpin>(stream: &mut S) -> Result<u64, FrameError> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await? {
            0 if i == 0 => return Err(FrameError::Eof("before a frame")),
            0 => return Err(FrameError::Eof("inside a length prefix")),
            _ => {}
        }
        let bits = u64::from(byte[0] & 0x7f);
        if i == 9 && bits > 1 {
            return Err(FrameError::BadLength);
        }
        value |= bits << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(FrameError::BadLength)
}

/// The varint length prefix of `len`.
pub fn length_prefix(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut v = len as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Writes one length-prefixed frame and flushes it, within `timeout`.
pub async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    body: &[u8],
    timeout: Duration,
) -> Result<(), FrameError> {
    let mut frame = length_prefix(body.len());
    frame.extend_from_slice(body);
    tokio::time::timeout(timeout, async {
        stream.write_all(&frame).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| FrameError::Timeout(timeout))?
    .map_err(FrameError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn frames_round_trip_and_are_bounded() {
        for len in [0usize, 1, 127, 128, 300, 16_384] {
            let body = vec![7u8; len];
            let mut out = Cursor::new(Vec::new());
            write_frame(&mut out, &body, T).await.unwrap();
            let bytes = out.into_inner();
            assert_eq!(&bytes[..length_prefix(len).len()], &length_prefix(len)[..]);
            let got = read_frame(&mut Cursor::new(bytes.clone()), 16_384, T)
                .await
                .unwrap();
            assert_eq!(got, body);
            if len > 0 {
                match read_frame(&mut Cursor::new(bytes), len - 1, T).await {
                    Err(FrameError::TooLarge { size, limit }) => {
                        assert_eq!((size, limit), (len as u64, len - 1))
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn broken_frames_are_typed_errors() {
        let read =
            |bytes: Vec<u8>| async move { read_frame(&mut Cursor::new(bytes), 1 << 20, T).await };
        assert!(matches!(read(vec![]).await, Err(FrameError::Eof(_))));
        assert!(matches!(read(vec![0x80]).await, Err(FrameError::Eof(_))));
        assert!(matches!(read(vec![5, 1, 2]).await, Err(FrameError::Eof(_))));
        assert!(matches!(
            read(vec![0xff; 11]).await,
            Err(FrameError::BadLength)
        ));
        // A length of 2^64 − 1 is refused as too large, not allocated.
        let mut huge = vec![0xff; 9];
        huge.push(0x01);
        assert!(matches!(read(huge).await, Err(FrameError::TooLarge { .. })));
    }

    /// A stream that never has anything to read.
    struct Silent;

    impl AsyncRead for Silent {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let got = read_frame(&mut Silent, 100, Duration::from_millis(50)).await;
        assert!(matches!(got, Err(FrameError::Timeout(_))));
    }
}
