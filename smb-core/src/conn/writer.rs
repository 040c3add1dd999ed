//! The writer task: sends frames in order, coalescing what is queued into
//! one vectored write; a WRITE whose data stays in a local file is sent
//! from the file (on Linux file → pipe → socket with `splice(2)`).

use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[cfg(target_os = "linux")]
use super::splice;
use super::{Frame, Shared, Source};
use crate::proto::conn::LostReason;

/// Sends frames in order; what is already queued goes out in one vectored
/// write. Runs until the channel closes or the connection fails.
pub(super) async fn writer_task(
    shared: Arc<Shared>,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Frame>,
) {
    let mut pipe = SourcePipe::default();
    let mut batch: Vec<Bytes> = Vec::new();
    while let Some(frame) = rx.recv().await {
        let mut source = frame.source;
        batch.extend(frame.parts);
        // Coalesce what is already queued, up to the next file range.
        while source.is_none() && batch.len() < 64 {
            match rx.try_recv() {
                Ok(f) => {
                    batch.extend(f.parts);
                    source = f.source;
                }
                Err(_) => break,
            }
        }
        let mut n: usize = batch.iter().map(Bytes::len).sum();
        if let Err(e) = write_all_vectored(&mut wr, &mut batch).await {
            shared.fail(super::framing::io_lost("write failed", &e));
            return;
        }
        batch.clear();
        if let Some(src) = source {
            if let Err(e) = send_source(wr.as_ref(), &mut pipe, &src).await {
                shared.fail(LostReason::Io(std::io::ErrorKind::Other, Arc::from(e)));
                return;
            }
            n += src.len;
        }
        shared.stats_sent.fetch_add(n as u64, Ordering::Relaxed);
        if shared.failed.load(Ordering::Acquire) {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn write_all_vectored(wr: &mut OwnedWriteHalf, parts: &mut [Bytes]) -> std::io::Result<()> {
    let mut idx = 0;
    while idx < parts.len() {
        if parts[idx].is_empty() {
            idx += 1;
            continue;
        }
        // On the stack: a batch is written per frame sent, so no Vec here.
        let mut slices = [IoSlice::new(&[]); 64];
        let mut k = 0;
        for b in parts[idx..].iter().take(slices.len()) {
            slices[k] = IoSlice::new(b);
            k += 1;
        }
        let mut written = wr.write_vectored(&slices[..k]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 && idx < parts.len() {
            let l = parts[idx].len();
            if written >= l {
                written -= l;
                idx += 1;
            } else {
                parts[idx].advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}

/// The writer's pipe for [`Source`] data (Linux), made on first use.
#[derive(Default)]
struct SourcePipe {
    #[cfg(target_os = "linux")]
    pipe: Option<Result<splice::Pipe, ()>>,
}

/// Sends the `len` bytes of a [`Source`]; when the file cannot supply them,
/// records the error in the source and sends zeros instead. `Err`: the
/// socket failed.
async fn send_source(sock: &TcpStream, pipe: &mut SourcePipe, src: &Source) -> Result<(), String> {
    let mut sent = 0;
    #[cfg(target_os = "linux")]
    {
        let p = pipe.pipe.get_or_insert_with(|| {
            splice::Pipe::new().map_err(|e| {
                tracing::debug!("no pipe for splice, sending file data from memory: {e}");
            })
        });
        if let Ok(p) = p {
            match splice::from_file(sock, p, src).await? {
                Ok(()) => return Ok(()),
                Err((done, e)) => {
                    sent = done;
                    let _ = src.error.set(e);
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
    // From memory: positional reads into a buffer (or zeros after an error).
    let mut buf = vec![0u8; src.len.min(1 << 20)];
    while sent < src.len {
        let want = (src.len - sent).min(buf.len());
        if src.error.get().is_none() {
            match read_full_at(&src.file, &mut buf[..want], src.offset + sent as u64) {
                Ok(n) if n == want => {}
                Ok(_) => {
                    let _ = src
                        .error
                        .set(std::io::Error::other("source file shrank while copying"));
                }
                Err(e) => {
                    let _ = src.error.set(e);
                }
            }
            if src.error.get().is_some() {
                buf.fill(0);
            }
        }
        write_all_shared(sock, &buf[..want])
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        sent += want;
    }
    Ok(())
}

/// Writes all of `buf` through a shared reference to the socket.
async fn write_all_shared(sock: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        sock.writable().await?;
        match sock.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into all of `buf` at `off` unless end of file comes first; returns the count.
fn read_full_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        #[cfg(unix)]
        let r = std::os::unix::fs::FileExt::read_at(f, &mut buf[n..], off + n as u64);
        #[cfg(windows)]
        let r = std::os::windows::fs::FileExt::seek_read(f, &mut buf[n..], off + n as u64);
        match r {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
