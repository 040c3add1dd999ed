//! Building and checking frames, without I/O: header fields from the
//! ledger's assignment, compound chaining and 8-byte padding (MS-SMB2
//! 3.2.4.1.4), the sign/seal decision per message (3.2.4.1.1, 3.1.4.3),
//! the transform wrapper, the direct-TCP length prefix (2.1), CANCEL
//! (2.2.30) and the check of a response's protection (3.2.5.1.3).

use std::sync::Arc;

use bytes::Bytes;

use super::conn::Assigned;
use crate::error::{Error, Result};
use crate::wire::header::{self, Header, FLAG_RELATED, FLAG_SIGNED, HEADER_LEN};
use crate::wire::{Command, NtStatus, Writer};

/// Signs and verifies single messages (MS-SMB2 3.1.4.1).
pub trait FrameSigner: Send + Sync + std::fmt::Debug {
    /// Writes the signature (SMB2_FLAGS_SIGNED is already set).
    fn sign(&self, msg: &mut [u8]);
    /// Signs the message `head || payload`, writing the signature into `head`.
    fn sign_parts(&self, head: &mut [u8], payload: &[u8]);
    /// True when the signature in `msg` is valid.
    fn verify(&self, msg: &[u8]) -> bool;
}

/// Encrypts and decrypts whole frames with the transform header (MS-SMB2 3.1.4.3).
pub trait FrameCipher: Send + Sync + std::fmt::Debug {
    /// Encrypts in place: `frame` is 52 bytes of room for the transform
    /// header followed by the plaintext (one message or a compound).
    fn encrypt_in_place(&self, frame: &mut [u8]) -> Result<()>;
    /// Decrypts a transform message in place; the plaintext is `frame[52..]`.
    fn decrypt_in_place(&self, frame: &mut [u8]) -> Result<()>;
}

/// Sees each message's final bytes as sent (the preauth integrity hash).
pub type SentHook<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// How one request (or compound) is protected: the per-message decision.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Sign each message and require signed responses.
    pub signer: Option<Arc<dyn FrameSigner>>,
    /// Encrypt the whole frame (then nothing is signed: the transform
    /// header authenticates it).
    pub cipher: Option<Arc<dyn FrameCipher>>,
}

impl Security {
    /// Messages carry a signature.
    pub fn signs(&self) -> bool {
        self.signer.is_some() && self.cipher.is_none()
    }

    /// The frame is encrypted.
    pub fn seals(&self) -> bool {
        self.cipher.is_some()
    }
}

/// One response: its header and the whole message bytes (header included;
/// for a compound, the element up to the next one).
#[derive(Clone, Debug)]
pub struct Response {
    /// The decoded header.
    pub header: Header,
    /// The message.
    pub msg: Bytes,
    /// It arrived inside a transform message.
    pub encrypted: bool,
    /// A READ whose data went straight into a local file: `msg` holds the
    /// header and fixed part, and this many bytes were written there.
    pub spliced: Option<usize>,
}

impl Response {
    /// `Err(Error::Status)` unless the status is success (or one of `also_ok`).
    pub fn check(&self, also_ok: &[NtStatus]) -> Result<()> {
        let s = self.header.status;
        if s == NtStatus::SUCCESS || also_ok.contains(&s) {
            Ok(())
        } else {
            Err(Error::Status {
                status: s,
                command: self.header.command,
            })
        }
    }
}

/// One message of a request or compound, before its header is filled.
#[derive(Debug)]
pub struct OutMsg {
    /// The command.
    pub command: Command,
    /// The message: a 64-byte placeholder header, then the body.
    pub msg: Writer,
    /// Data sent after the body (a WRITE's), never copied unless needed.
    pub payload: Option<Bytes>,
    /// Data bytes the caller sends itself after this message's bytes (a
    /// WRITE from a local file; single, unsigned, unencrypted messages only).
    pub file_len: usize,
    /// TreeId.
    pub tree_id: u32,
    /// SessionId.
    pub session_id: u64,
    /// A related compound element (uses the previous element's FileId).
    pub related: bool,
    /// Sent again after a reconnect: SMB2_FLAGS_REPLAY_OPERATION (3.x only,
    /// MS-SMB2 3.2.4.1.1).
    pub replay: bool,
}

impl OutMsg {
    /// Bytes sent after the header: what the credit charge counts.
    pub fn send_len(&self) -> usize {
        self.msg.len() - HEADER_LEN + self.payload.as_ref().map_or(0, Bytes::len) + self.file_len
    }
}

/// Frames larger than this are refused (the 24-bit length maximum).
pub const MAX_FRAME: usize = 0x00FF_FFFF;

/// The 4-byte direct-TCP transport header for a frame of `len` bytes.
pub fn length_prefix(len: usize) -> Result<Bytes> {
    length_bytes(len).map(|b| Bytes::copy_from_slice(&b))
}

/// The direct-TCP transport header as an array (no allocation).
fn length_bytes(len: usize) -> Result<[u8; 4]> {
    if len > MAX_FRAME {
        return Err(Error::InvalidArgument(format!(
            "frame of {len} bytes exceeds the 24-bit limit"
        )));
    }
    Ok(u32::try_from(len).unwrap_or(0).to_be_bytes())
}

/// The bytes a message takes in its frame: message, payload and file data,
/// padded to 8 unless it is the last of its compound.
fn framed_len(m: &OutMsg, last: bool) -> usize {
    let len = m.msg.len() + m.payload.as_ref().map_or(0, Bytes::len) + m.file_len;
    if last {
        len
    } else {
        len.next_multiple_of(8)
    }
}

/// Fills each header from the assignment, pads and chains a compound, signs
/// each element, encrypts the whole when asked and prefixes the length.
/// Returns the parts of one frame in order (a file-sourced WRITE's data
/// follows them). `hook` sees each message as sent (preauth hash).
///
/// Allocation-lean, since the small-file path builds a compound per file:
/// one scratch header writer for all messages, the length prefix written
/// into the first message's own buffer (no part of its own), payloads never
/// copied unless the frame is encrypted or hashed.
pub fn build(
    msgs: Vec<OutMsg>,
    a: &Assigned,
    sec: &Security,
    mut hook: Option<SentHook<'_>>,
) -> Result<Vec<Bytes>> {
    let n = msgs.len();
    let mut plain: Vec<Bytes> = Vec::with_capacity(n + 1);
    let mut total = 0usize;
    let signs = sec.signs();
    let seals = sec.seals();
    // Known before the first message is frozen, so it can carry the prefix.
    let frame_len: usize = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| framed_len(m, i + 1 == n))
        .sum();
    let prefix = if seals {
        None
    } else {
        Some(length_bytes(frame_len)?)
    };
    let mut hw = Writer::with_capacity(HEADER_LEN);
    for (i, m) in msgs.into_iter().enumerate() {
        let last = i + 1 == n;
        let mut flags = 0;
        if m.related {
            flags |= FLAG_RELATED;
        }
        if signs {
            flags |= FLAG_SIGNED;
        }
        if m.replay {
            flags |= header::FLAG_REPLAY_OPERATION;
        }
        if m.file_len > 0 && (n != 1 || signs || sec.seals() || hook.is_some()) {
            return Err(Error::InvalidArgument(
                "file data can only follow a single unsigned, unencrypted message".into(),
            ));
        }
        let padded = framed_len(&m, last);
        let h = Header {
            credit_charge: a.charges[i],
            command: m.command,
            credits: a.credit_requests[i],
            flags,
            next_command: if last {
                0
            } else {
                u32::try_from(padded).map_err(|_| Error::InvalidArgument("too large".into()))?
            },
            message_id: a.ids[i],
            tree_id: m.tree_id,
            session_id: m.session_id,
            // In a 3.x request the first two bytes of Status are the
            // ChannelSequence (MS-SMB2 2.2.1.2); zero before 3.0.
            status: NtStatus(u32::from(a.channel_sequence)),
            ..Header::default()
        };
        hw.clear();
        h.encode(&mut hw);
        let mut bytes = m.msg.into_vec();
        bytes[..HEADER_LEN].copy_from_slice(hw.as_slice());
        let needs_contiguous = seals || hook.is_some();
        // After signing and hashing (which see the message alone): the
        // first message carries the frame's length prefix. A move of a few
        // hundred bytes within its buffer's spare room, not an allocation.
        let with_prefix = |mut bytes: Vec<u8>| {
            if let (0, Some(p)) = (i, prefix) {
                bytes.splice(0..0, p);
            }
            Bytes::from(bytes)
        };
        match m.payload {
            // The payload (a WRITE's data) is signed where it lies and sent
            // with a vectored write: never copied.
            Some(p) if !needs_contiguous && last => {
                if let (true, Some(s)) = (signs, &sec.signer) {
                    s.sign_parts(&mut bytes, &p);
                }
                total += bytes.len() + p.len();
                plain.push(with_prefix(bytes));
                plain.push(p);
            }
            None if m.file_len > 0 => {
                total += bytes.len() + m.file_len;
                plain.push(with_prefix(bytes));
            }
            p => {
                if let Some(p) = p {
                    bytes.extend_from_slice(&p);
                }
                bytes.resize(padded, 0);
                if let (true, Some(s)) = (signs, &sec.signer) {
                    s.sign(&mut bytes);
                }
                if let Some(h) = hook.as_mut() {
                    h(&bytes);
                }
                total += bytes.len();
                plain.push(with_prefix(bytes));
            }
        }
    }
    debug_assert_eq!(total, frame_len);
    if let Some(cipher) = &sec.cipher {
        return seal(&plain, total, cipher.as_ref());
    }
    Ok(plain)
}

/// Joins `plain` behind room for the length and transform headers,
/// encrypts it in place and fills the length: one part.
fn seal(plain: &[Bytes], total: usize, cipher: &dyn FrameCipher) -> Result<Vec<Bytes>> {
    let room = 4 + header::TRANSFORM_HEADER_LEN;
    let mut joined = Vec::with_capacity(room + total);
    joined.resize(room, 0);
    for p in plain {
        joined.extend_from_slice(p);
    }
    cipher.encrypt_in_place(&mut joined[4..])?;
    let prefix = length_bytes(joined.len() - 4)?;
    joined[..4].copy_from_slice(&prefix);
    Ok(vec![Bytes::from(joined)])
}

/// A CANCEL for a request we stopped waiting for (MS-SMB2 2.2.30, 3.2.4.24):
/// the request's MessageId, or its AsyncId once an interim reply gave one;
/// signed or encrypted like the request.
pub fn cancel_frame(
    message_id: u64,
    async_id: u64,
    session_id: u64,
    tree_id: u32,
    sec: &Security,
) -> Result<Vec<Bytes>> {
    let signed = sec.signs();
    let mut flags = 0;
    if async_id != 0 {
        flags |= header::FLAG_ASYNC;
    }
    if signed {
        flags |= FLAG_SIGNED;
    }
    let h = Header {
        command: Command::CANCEL,
        flags,
        message_id,
        async_id,
        tree_id,
        session_id,
        ..Header::default()
    };
    let mut w = Writer::with_capacity(HEADER_LEN + 4);
    h.encode(&mut w);
    crate::wire::session::encode_empty(&mut w);
    let mut msg = w.into_vec();
    if let (true, Some(s)) = (signed, &sec.signer) {
        s.sign(&mut msg);
    }
    if let Some(cipher) = &sec.cipher {
        let len = msg.len();
        return seal(&[Bytes::from(msg)], len, cipher.as_ref());
    }
    Ok(vec![length_prefix(msg.len())?, Bytes::from(msg)])
}

/// Checks a response's protection: an encrypted response needs nothing more;
/// when we encrypted, a plain answer is a downgrade; when we signed, the
/// response must be signed and verify (MS-SMB2 3.2.5.1.3).
pub fn verify(resp: &Response, sec: &Security) -> Result<()> {
    if resp.encrypted {
        return Ok(());
    }
    if sec.seals() {
        return Err(Error::BadSignature);
    }
    match &sec.signer {
        Some(signer) if !resp.header.is_signed() || !signer.verify(&resp.msg) => {
            Err(Error::BadSignature)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a checksum of the message into the signature field.
    #[derive(Debug)]
    struct SumSigner;

    fn sum(msg: &[u8]) -> u8 {
        msg.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    impl FrameSigner for SumSigner {
        fn sign(&self, msg: &mut [u8]) {
            msg[48..64].fill(0);
            msg[48] = sum(msg);
        }
        fn sign_parts(&self, head: &mut [u8], payload: &[u8]) {
            head[48..64].fill(0);
            head[48] = sum(head).wrapping_add(sum(payload));
        }
        fn verify(&self, _: &[u8]) -> bool {
            true
        }
    }

    fn msg(command: Command, body: usize, payload: Option<Bytes>) -> OutMsg {
        let mut w = Writer::with_capacity(256);
        w.zeros(HEADER_LEN + body);
        OutMsg {
            command,
            msg: w,
            payload,
            file_len: 0,
            tree_id: 1,
            session_id: 2,
            related: false,
            replay: false,
        }
    }

    fn assigned(n: usize) -> Assigned {
        Assigned {
            ids: (0..n as u64).collect(),
            charges: vec![1; n],
            credit_requests: vec![1; n],
            channel_sequence: 0,
        }
    }

    #[test]
    fn the_length_prefix_rides_in_the_first_message_and_signatures_see_the_message_alone() {
        let sec = Security {
            signer: Some(Arc::new(SumSigner)),
            cipher: None,
        };
        let msgs = vec![
            msg(Command::CREATE, 57, None),
            msg(Command::READ, 49, None),
            msg(Command::CLOSE, 24, None),
        ];
        let parts = build(msgs, &assigned(3), &sec, None).unwrap();
        // No part of its own for the 4-byte prefix.
        assert_eq!(parts.len(), 3);
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let len = u32::from_be_bytes(joined[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, joined.len());
        // 8-aligned elements, each signed as it stands in the frame.
        let lens = [
            (64 + 57usize).next_multiple_of(8),
            (64 + 49usize).next_multiple_of(8),
            64 + 24,
        ];
        assert_eq!(lens.iter().sum::<usize>(), len);
        let mut off = 4;
        for l in lens {
            let mut m = joined[off..off + l].to_vec();
            let signed = m[48];
            m[48..64].fill(0);
            assert_eq!(sum(&m), signed);
            off += l;
        }

        // A single WRITE: the payload stays its own part, signed in place.
        let data = Bytes::from(vec![9u8; 1000]);
        let parts = build(
            vec![msg(Command::WRITE, 48, Some(data.clone()))],
            &assigned(1),
            &sec,
            None,
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], data);
        let len = u32::from_be_bytes(parts[0][..4].try_into().unwrap()) as usize;
        assert_eq!(len, 64 + 48 + 1000);
        let mut head = parts[0][4..].to_vec();
        let signed = head[48];
        head[48..64].fill(0);
        assert_eq!(sum(&head).wrapping_add(sum(&data)), signed);
    }
}
