//! Direct-TCP de-framing (MS-SMB2 2.1) with as few copies and syscalls as
//! possible: small frames are split off one receive buffer filled in large
//! reads; a large frame's body is read straight into a pooled buffer of its
//! own; on Linux a plain READ response's data may go socket → pipe → file.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

use super::pool::{BufPool, Pooled};
#[cfg(target_os = "linux")]
use super::splice;
use super::Shared;
use crate::proto::conn::LostReason;
use crate::wire::header::HEADER_LEN;
use crate::wire::io as wio;

/// Frames at least this large (READ responses) are read straight from the
/// socket into a buffer of their own, taken from a [`BufPool`]; smaller ones
/// are split off the reader's shared receive buffer.
const LARGE_FRAME: usize = 128 * 1024;

/// How much the shared receive buffer asks the socket for at once.
const RECV_CHUNK: usize = 256 * 1024;

/// What [`FrameReader::next_frame`] produced.
pub(super) enum Received {
    Frame(FrameBuf),
    /// A READ response (this many bytes) whose data goes to a [`Sink`](super::Sink);
    /// it is routed once the data is written (see `splice::FrameDone`).
    Spliced(usize),
}

/// One received frame (without its 4-byte transport length), mutable so a
/// transform frame can be decrypted in place.
pub(super) enum FrameBuf {
    Small(BytesMut),
    Large(Pooled),
}

impl FrameBuf {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Small(b) => b.len(),
            Self::Large(p) => p.buf.len(),
        }
    }

    pub(super) fn as_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Small(b) => b,
            Self::Large(p) => &mut p.buf,
        }
    }

    pub(super) fn freeze(self) -> Bytes {
        match self {
            Self::Small(b) => b.freeze(),
            Self::Large(p) => Bytes::from_owner(p),
        }
    }
}

impl std::ops::Deref for FrameBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Small(b) => b,
            Self::Large(p) => &p.buf,
        }
    }
}

/// De-frames the direct-TCP stream (MS-SMB2 2.1) with as few copies and
/// syscalls as possible: small frames come out of one receive buffer filled
/// in large reads; a large frame's body is read straight into its own pooled
/// buffer, so READ data is copied once, by the kernel.
pub(super) struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    pool: Arc<BufPool>,
    /// Pipes and drain thread for [`Sink`](super::Sink) reads, made on first use; `Err`
    /// once making them failed (sinks are then filled from memory).
    #[cfg(target_os = "linux")]
    drainer: Option<Result<splice::Drainer, ()>>,
}

impl FrameReader {
    pub(super) fn new(rd: OwnedReadHalf) -> Self {
        Self {
            rd,
            buf: BytesMut::with_capacity(RECV_CHUNK),
            pool: Arc::new(BufPool::default()),
            #[cfg(target_os = "linux")]
            drainer: None,
        }
    }

    /// Moves the data of an `n`-byte READ response into its sink, when
    /// [`splice_target`](super::reader::splice_target) names one (Linux only); `None`: read the frame as
    /// usual. The response is routed when the last byte is in the file.
    #[cfg(target_os = "linux")]
    async fn try_splice(
        &mut self,
        n: usize,
        shared: &Arc<Shared>,
    ) -> Result<Option<Received>, LostReason> {
        while self.buf.len() < 4 + wio::READ_RESPONSE_FIXED {
            self.fill().await?;
        }
        let Some((sink, off)) =
            super::reader::splice_target(shared, &self.buf[4..4 + wio::READ_RESPONSE_FIXED], n)
        else {
            return Ok(None);
        };
        let ready = self
            .drainer
            .get_or_insert_with(|| {
                splice::Drainer::new().map_err(|e| {
                    tracing::debug!("no pipes for splice, reading into memory: {e}");
                })
            })
            .is_ok();
        if !ready {
            return Ok(None);
        }
        while self.buf.len() < 4 + off {
            self.fill().await?;
        }
        let Some(Ok(drainer)) = &mut self.drainer else {
            return Ok(None);
        };
        self.buf.advance(4);
        let head = self.buf.split_to(off).freeze();
        let len = n - off;
        let prefix = self.buf.split_to(self.buf.len().min(len));
        let route_shared = Arc::clone(shared);
        let done = splice::FrameDone::new(move |file_err| {
            if let Err(e) = route_shared.route(head, false, Some((len, file_err))) {
                route_shared.fail(e);
            }
        });
        splice::to_file(
            self.rd.as_ref(),
            drainer,
            &prefix,
            len - prefix.len(),
            &sink,
            done,
        )
        .await
        .map_err(|e| LostReason::Io(std::io::ErrorKind::Other, Arc::from(e)))?;
        Ok(Some(Received::Spliced(n)))
    }

    async fn fill(&mut self) -> Result<(), LostReason> {
        if self.buf.capacity() - self.buf.len() < RECV_CHUNK / 4 {
            self.buf.reserve(RECV_CHUNK);
        }
        match self.rd.read_buf(&mut self.buf).await {
            Ok(0) => Err(LostReason::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(io_lost("read failed", &e)),
        }
    }

    pub(super) async fn next_frame(
        &mut self,
        shared: &Arc<Shared>,
    ) -> Result<Received, LostReason> {
        while self.buf.len() < 4 {
            self.fill().await?;
        }
        if self.buf[0] != 0 {
            return Err(LostReason::Protocol(Arc::from(
                "malformed transport header",
            )));
        }
        let n = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if n < HEADER_LEN {
            return Err(LostReason::Protocol(Arc::from(format!(
                "frame of {n} bytes is too short"
            ))));
        }
        if n >= LARGE_FRAME {
            #[cfg(target_os = "linux")]
            if let Some(r) = self.try_splice(n, shared).await? {
                return Ok(r);
            }
            #[cfg(not(target_os = "linux"))]
            let _ = shared;
            self.buf.advance(4);
            let mut v = self.pool.take(n);
            let have = self.buf.len().min(n);
            v.extend_from_slice(&self.buf[..have]);
            self.buf.advance(have);
            while v.len() < n {
                let want = n - v.len();
                match self.rd.read_buf(&mut (&mut v).limit(want)).await {
                    Ok(0) => return Err(LostReason::Closed),
                    Ok(_) => {}
                    Err(e) => return Err(io_lost("read failed", &e)),
                }
            }
            return Ok(Received::Frame(FrameBuf::Large(Pooled {
                buf: v,
                pool: Arc::clone(&self.pool),
            })));
        }
        if self.buf.capacity() < 4 + n {
            self.buf.reserve(4 + n - self.buf.len());
        }
        while self.buf.len() < 4 + n {
            self.fill().await?;
        }
        self.buf.advance(4);
        Ok(Received::Frame(FrameBuf::Small(self.buf.split_to(n))))
    }
}

/// A socket error as a typed loss reason.
pub(super) fn io_lost(what: &str, e: &std::io::Error) -> LostReason {
    LostReason::Io(e.kind(), Arc::from(format!("{what}: {e}")))
}
