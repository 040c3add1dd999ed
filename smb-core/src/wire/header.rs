//! The SMB2 packet header (MS-SMB2 2.2.1), the transform header (2.2.41) and
//! compound chain splitting (3.2.5.1.1 / 3.3.5.2.7).

use super::codec::{Reader, Writer};
use super::{Command, DecodeError, NtStatus};

/// `0xFE 'S' 'M' 'B'`: an SMB2 message.
pub const SMB2_MAGIC: [u8; 4] = [0xFE, b'S', b'M', b'B'];
/// `0xFD 'S' 'M' 'B'`: an encrypted (transform) message.
pub const TRANSFORM_MAGIC: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// `0xFC 'S' 'M' 'B'`: a compressed message (never negotiated by us).
pub const COMPRESSION_MAGIC: [u8; 4] = [0xFC, b'S', b'M', b'B'];
/// `0xFF 'S' 'M' 'B'`: SMB1, refused.
pub const SMB1_MAGIC: [u8; 4] = [0xFF, b'S', b'M', b'B'];

/// Size of the SMB2 header.
pub const HEADER_LEN: usize = 64;
/// Offset of the Flags field in the header.
pub const FLAGS_OFFSET: usize = 16;
/// Offset of the NextCommand field in the header.
pub const NEXT_COMMAND_OFFSET: usize = 20;
/// Offset of the 16-byte Signature field in the header.
pub const SIGNATURE_OFFSET: usize = 48;

/// SMB2_FLAGS_SERVER_TO_REDIR.
pub const FLAG_RESPONSE: u32 = 0x0000_0001;
/// SMB2_FLAGS_ASYNC_COMMAND.
pub const FLAG_ASYNC: u32 = 0x0000_0002;
/// SMB2_FLAGS_RELATED_OPERATIONS.
pub const FLAG_RELATED: u32 = 0x0000_0004;
/// SMB2_FLAGS_SIGNED.
pub const FLAG_SIGNED: u32 = 0x0000_0008;
/// SMB2_FLAGS_REPLAY_OPERATION (3.x): the request is sent again after a
/// reconnect (MS-SMB2 2.2.1.2, 3.2.4.1.1).
pub const FLAG_REPLAY_OPERATION: u32 = 0x2000_0000;

/// MessageId of unsolicited oplock/lease break notifications.
pub const UNSOLICITED_MESSAGE_ID: u64 = u64::MAX;

/// The 64-byte SMB2 header, sync or async form (MS-SMB2 2.2.1.1 / 2.2.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// CreditCharge.
    pub credit_charge: u16,
    /// Status in responses; ChannelSequence/Reserved (zero) in requests.
    pub status: NtStatus,
    /// Command.
    pub command: Command,
    /// CreditRequest / CreditResponse.
    pub credits: u16,
    /// Flags (`FLAG_*`).
    pub flags: u32,
    /// NextCommand: offset of the next compounded message, 0 for the last.
    pub next_command: u32,
    /// MessageId.
    pub message_id: u64,
    /// AsyncId (only when `FLAG_ASYNC` is set).
    pub async_id: u64,
    /// TreeId (sync form only).
    pub tree_id: u32,
    /// SessionId.
    pub session_id: u64,
    /// Signature.
    pub signature: [u8; 16],
}

impl Default for NtStatus {
    fn default() -> Self {
        Self::SUCCESS
    }
}

impl Default for Command {
    fn default() -> Self {
        Self::NEGOTIATE
    }
}

impl Header {
    /// Decodes a header at the start of `buf` (MS-SMB2 2.2.1).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let magic: [u8; 4] = r.array("header: protocol id")?;
        if magic == SMB1_MAGIC {
            return Err(DecodeError::new("header: SMB1 reply refused"));
        }
        if magic != SMB2_MAGIC {
            return Err(DecodeError::new("header: protocol id"));
        }
        r.structure_size(64, "header: structure size")?;
        let credit_charge = r.u16("header: credit charge")?;
        let status = NtStatus(r.u32("header: status")?);
        let command = Command(r.u16("header: command")?);
        let credits = r.u16("header: credits")?;
        let flags = r.u32("header: flags")?;
        let next_command = r.u32("header: next command")?;
        let message_id = r.u64("header: message id")?;
        let (async_id, tree_id) = if flags & FLAG_ASYNC != 0 {
            (r.u64("header: async id")?, 0)
        } else {
            r.skip(4, "header: reserved")?;
            (0, r.u32("header: tree id")?)
        };
        let session_id = r.u64("header: session id")?;
        let signature = r.array("header: signature")?;
        Ok(Self {
            credit_charge,
            status,
            command,
            credits,
            flags,
            next_command,
            message_id,
            async_id,
            tree_id,
            session_id,
            signature,
        })
    }

    /// Encodes the header (64 bytes).
    pub fn encode(&self, w: &mut Writer) {
        w.bytes(&SMB2_MAGIC);
        w.u16(64);
        w.u16(self.credit_charge);
        w.u32(self.status.0);
        w.u16(self.command.0);
        w.u16(self.credits);
        w.u32(self.flags);
        w.u32(self.next_command);
        w.u64(self.message_id);
        if self.flags & FLAG_ASYNC != 0 {
            w.u64(self.async_id);
        } else {
            w.u32(0);
            w.u32(self.tree_id);
        }
        w.u64(self.session_id);
        w.bytes(&self.signature);
    }

    /// True when this is a server response.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// True when the message carries a signature.
    pub fn is_signed(&self) -> bool {
        self.flags & FLAG_SIGNED != 0
    }

    /// True for an interim async STATUS_PENDING reply.
    pub fn is_interim(&self) -> bool {
        self.flags & FLAG_ASYNC != 0 && self.status == NtStatus::PENDING
    }
}

/// Splits a (decrypted) frame into its compounded messages
/// (MS-SMB2 3.2.5.1.1 / 3.3.5.2.7): returns `(start, end)` ranges, each
/// starting with an SMB2 header. Every NextCommand must advance, be 8-byte
/// aligned, and stay inside the frame.
pub fn split_compound(frame: &[u8]) -> Result<Vec<(usize, usize)>, DecodeError> {
    let mut out = Vec::with_capacity(1);
    let mut start = 0usize;
    loop {
        let h = Header::decode(
            frame
                .get(start..)
                .ok_or_else(|| DecodeError::new("compound: start"))?,
        )?;
        if h.next_command == 0 {
            out.push((start, frame.len()));
            return Ok(out);
        }
        let next = h.next_command as usize;
        if next < HEADER_LEN || next % 8 != 0 {
            return Err(DecodeError::new("compound: next command"));
        }
        let end = start
            .checked_add(next)
            .ok_or_else(|| DecodeError::new("compound: next command"))?;
        if end >= frame.len() {
            return Err(DecodeError::new("compound: next command past frame"));
        }
        out.push((start, end));
        start = end;
        if out.len() > 64 {
            return Err(DecodeError::new("compound: too many messages"));
        }
    }
}

/// Size of the transform header.
pub const TRANSFORM_HEADER_LEN: usize = 52;

/// The SMB2 TRANSFORM_HEADER (MS-SMB2 2.2.41).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransformHeader {
    /// The AEAD tag.
    pub signature: [u8; 16],
    /// Nonce: 11 bytes used for CCM, 12 for GCM; the rest zero.
    pub nonce: [u8; 16],
    /// Size of the encrypted message.
    pub original_message_size: u32,
    /// Flags (3.1.1) / EncryptionAlgorithm (3.0.x): 0x0001 = encrypted.
    pub flags: u16,
    /// SessionId.
    pub session_id: u64,
}

impl TransformHeader {
    /// Decodes a transform header at the start of `buf`; checks the protocol id,
    /// the flags and that OriginalMessageSize matches what follows.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        if r.array::<4>("transform: protocol id")? != TRANSFORM_MAGIC {
            return Err(DecodeError::new("transform: protocol id"));
        }
        let signature = r.array("transform: signature")?;
        let nonce = r.array("transform: nonce")?;
        let original_message_size = r.u32("transform: original message size")?;
        r.skip(2, "transform: reserved")?;
        let flags = r.u16("transform: flags")?;
        let session_id = r.u64("transform: session id")?;
        if flags != 0x0001 {
            return Err(DecodeError::new("transform: flags"));
        }
        if original_message_size as usize != r.remaining()
            || original_message_size < HEADER_LEN as u32
        {
            return Err(DecodeError::new("transform: original message size"));
        }
        Ok(Self {
            signature,
            nonce,
            original_message_size,
            flags,
            session_id,
        })
    }

    /// Encodes the 52-byte transform header.
    pub fn encode(&self, w: &mut Writer) {
        w.bytes(&TRANSFORM_MAGIC);
        w.bytes(&self.signature);
        w.bytes(&self.nonce);
        w.u32(self.original_message_size);
        w.u16(0);
        w.u16(self.flags);
        w.u64(self.session_id);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A NEGOTIATE response header captured from the loopback Samba 4.17.
    pub(crate) fn sample() -> Header {
        Header {
            credit_charge: 1,
            status: NtStatus::SUCCESS,
            command: Command::SESSION_SETUP,
            credits: 130,
            flags: FLAG_RESPONSE | FLAG_SIGNED,
            next_command: 0,
            message_id: 2,
            async_id: 0,
            tree_id: 0,
            session_id: 0x0000_1234_5678_9abc,
            signature: [7; 16],
        }
    }

    #[test]
    fn header_round_trip_and_truncation() {
        let h = sample();
        let mut w = Writer::new();
        h.encode(&mut w);
        let b = w.into_vec();
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(Header::decode(&b).unwrap(), h);
        for n in 0..b.len() {
            assert!(Header::decode(&b[..n]).is_err(), "prefix {n}");
        }
        let mut smb1 = b.clone();
        smb1[0] = 0xFF;
        assert!(Header::decode(&smb1).is_err());
    }

    #[test]
    fn async_header() {
        let mut h = sample();
        h.flags |= FLAG_ASYNC;
        h.status = NtStatus::PENDING;
        h.async_id = 99;
        let mut w = Writer::new();
        h.encode(&mut w);
        let d = Header::decode(w.as_slice()).unwrap();
        assert!(d.is_interim());
        assert_eq!(d.async_id, 99);
    }

    #[test]
    fn compound_chain() {
        let mut a = sample();
        a.next_command = 72;
        let mut w = Writer::new();
        a.encode(&mut w);
        w.zeros(8);
        sample().encode(&mut w);
        w.zeros(3);
        let f = w.into_vec();
        assert_eq!(split_compound(&f).unwrap(), vec![(0, 72), (72, f.len())]);
        // Misaligned, non-advancing and out-of-range chains.
        for bad in [0x41u32, 8, 4096] {
            let mut g = f.clone();
            g[NEXT_COMMAND_OFFSET..NEXT_COMMAND_OFFSET + 4].copy_from_slice(&bad.to_le_bytes());
            assert!(split_compound(&g).is_err(), "{bad}");
        }
    }

    #[test]
    fn transform_round_trip() {
        let t = TransformHeader {
            signature: [1; 16],
            nonce: [2; 16],
            original_message_size: 64,
            flags: 1,
            session_id: 5,
        };
        let mut w = Writer::new();
        t.encode(&mut w);
        w.zeros(64);
        let b = w.into_vec();
        assert_eq!(TransformHeader::decode(&b).unwrap(), t);
        for n in 0..b.len() {
            assert!(TransformHeader::decode(&b[..n]).is_err());
        }
    }
}
