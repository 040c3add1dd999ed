//! The reader task: de-frames the stream, decrypts transform messages, and
//! hands each plain frame to the core (through [`Shared::route`]), which
//! routes the responses. A READ response whose request registered a
//! [`Sink`] may have its data spliced straight into the file (Linux).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::tcp::OwnedReadHalf;

use super::framing::{FrameBuf, FrameReader, Received};
use super::{Shared, Sink};
use crate::proto::conn::LostReason;
use crate::wire::header::{self, Header, COMPRESSION_MAGIC, SMB1_MAGIC, TRANSFORM_MAGIC};
use crate::wire::io as wio;
use crate::wire::{Command, NtStatus};

/// Encrypted frames at least this large are decrypted on tokio's blocking
/// pool, so concurrent large reads decrypt on several cores.
const PARALLEL_DECRYPT_MIN: usize = 256 * 1024;

fn protocol(msg: impl Into<String>) -> LostReason {
    LostReason::Protocol(Arc::from(msg.into()))
}

pub(super) async fn reader_task(shared: Arc<Shared>, rd: OwnedReadHalf) {
    let mut rd = FrameReader::new(rd);
    let reason = loop {
        let r = match rd.next_frame(&shared).await {
            Ok(Received::Frame(frame)) => {
                shared
                    .stats_received
                    .fetch_add(frame.len() as u64 + 4, Ordering::Relaxed);
                handle_frame(&shared, frame)
            }
            Ok(Received::Spliced(bytes)) => {
                // Routed by the splice machinery once the data is written.
                shared
                    .stats_received
                    .fetch_add(bytes as u64 + 4, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            break e;
        }
        if shared.failed.load(Ordering::Acquire) {
            return;
        }
    };
    shared.fail(reason);
}

/// Decides from the first [`wio::READ_RESPONSE_FIXED`] bytes of an `n`-byte
/// frame whether its data goes straight to a [`Sink`]: a plain (not signed,
/// not compounded, successful, final) READ response whose request has a
/// sink that the data fits. Returns the sink and the data offset.
pub(super) fn splice_target(shared: &Shared, head: &[u8], n: usize) -> Option<(Sink, usize)> {
    let h = Header::decode(head).ok()?;
    if h.command != Command::READ
        || !h.is_response()
        || h.is_interim()
        || h.is_signed()
        || h.status != NtStatus::SUCCESS
        || h.next_command != 0
    {
        return None;
    }
    let (off, len) = wio::read_data_span(head, n)?;
    let inner = shared.lock();
    let sink = inner.waiters.get(&h.message_id)?.sink.as_ref()?;
    (len <= sink.max_len).then(|| (sink.clone(), off))
}

fn handle_frame(shared: &Arc<Shared>, mut frame: FrameBuf) -> Result<(), LostReason> {
    let magic: [u8; 4] = frame
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .unwrap_or_default();
    if magic == COMPRESSION_MAGIC {
        return Err(protocol("compressed frame (never negotiated)"));
    }
    if magic == SMB1_MAGIC {
        return Err(protocol("the server answered with SMB1"));
    }
    if magic != TRANSFORM_MAGIC {
        return shared.route(frame.freeze(), false, None);
    }
    let th = header::TransformHeader::decode(&frame)
        .map_err(|e| protocol(format!("malformed transform header: {e}")))?;
    let cipher = shared
        .ciphers
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&th.session_id)
        .cloned()
        .ok_or_else(|| protocol("encrypted frame for an unknown session"))?;
    if frame.len() >= PARALLEL_DECRYPT_MIN {
        let shared = Arc::clone(shared);
        // The blocking pool, not a task: on a single-threaded runtime a
        // task would decrypt on the reader's own thread.
        tokio::task::spawn_blocking(move || {
            let r = cipher
                .decrypt_in_place(frame.as_mut())
                .map_err(|e| protocol(format!("decrypting a frame: {e}")))
                .and_then(|()| {
                    shared.route(
                        frame.freeze().slice(header::TRANSFORM_HEADER_LEN..),
                        true,
                        None,
                    )
                });
            if let Err(e) = r {
                shared.fail(e);
            }
        });
        return Ok(());
    }
    cipher
        .decrypt_in_place(frame.as_mut())
        .map_err(|e| protocol(format!("decrypting a frame: {e}")))?;
    shared.route(
        frame.freeze().slice(header::TRANSFORM_HEADER_LEN..),
        true,
        None,
    )
}
