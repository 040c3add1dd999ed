//! OPLOCK_BREAK messages: the server's oplock and lease break notifications
//! (MS-SMB2 2.2.23.1, 2.2.23.2), the lease break acknowledgment we send
//! (2.2.24.2) and the server's lease break response (2.2.25.2). All four
//! share the command code; the StructureSize tells them apart.

use super::codec::{Reader, Writer};
use super::create::FileId;
use super::header::HEADER_LEN;
use super::DecodeError;

/// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED (MS-SMB2 2.2.23.2): the server
/// waits for a LEASE_BREAK_ACKNOWLEDGMENT before it lets the conflicting
/// open go on.
pub const NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: u32 = 0x0000_0001;

/// StructureSize of an oplock break notification / acknowledgment.
const OPLOCK_BREAK_SIZE: u16 = 24;
/// StructureSize of a lease break notification.
const LEASE_BREAK_NOTIFY_SIZE: u16 = 44;
/// StructureSize of a lease break acknowledgment and response.
const LEASE_BREAK_ACK_SIZE: u16 = 36;

/// An unsolicited OPLOCK_BREAK from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakNotification {
    /// An oplock break (MS-SMB2 2.2.23.1): the open `file_id` must drop to
    /// `oplock_level`.
    Oplock {
        /// The new (maximum) oplock level.
        oplock_level: u8,
        /// The open whose oplock breaks.
        file_id: FileId,
    },
    /// A lease break (MS-SMB2 2.2.23.2).
    Lease(LeaseBreak),
}

/// A lease break notification (MS-SMB2 2.2.23.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseBreak {
    /// NewEpoch (3.x).
    pub new_epoch: u16,
    /// `NOTIFY_BREAK_LEASE_FLAG_*`.
    pub flags: u32,
    /// The lease that breaks.
    pub key: [u8; 16],
    /// The state the lease had.
    pub current_state: u32,
    /// The state the server lets us keep (what the acknowledgment names).
    pub new_state: u32,
}

impl LeaseBreak {
    /// The server waits for our acknowledgment.
    pub fn ack_required(&self) -> bool {
        self.flags & NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED != 0
    }

    /// Encodes the notification body (tests, fake servers).
    pub fn encode(&self, w: &mut Writer) {
        w.u16(LEASE_BREAK_NOTIFY_SIZE);
        w.u16(self.new_epoch);
        w.u32(self.flags);
        w.bytes(&self.key);
        w.u32(self.current_state);
        w.u32(self.new_state);
        w.u32(0); // BreakReason
        w.u32(0); // AccessMaskHint
        w.u32(0); // ShareMaskHint
    }
}

impl BreakNotification {
    /// Decodes the body of a whole OPLOCK_BREAK message from the server.
    pub fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "break: header")?;
        match r.u16("break: structure size")? {
            OPLOCK_BREAK_SIZE => {
                let oplock_level = r.u8("oplock break: level")?;
                r.skip(1 + 4, "oplock break: reserved")?;
                let file_id = FileId(r.array("oplock break: file id")?);
                Ok(Self::Oplock {
                    oplock_level,
                    file_id,
                })
            }
            LEASE_BREAK_NOTIFY_SIZE => {
                let new_epoch = r.u16("lease break: epoch")?;
                let flags = r.u32("lease break: flags")?;
                let key = r.array("lease break: key")?;
                let current_state = r.u32("lease break: current state")?;
                let new_state = r.u32("lease break: new state")?;
                r.skip(12, "lease break: reason and hints")?;
                Ok(Self::Lease(LeaseBreak {
                    new_epoch,
                    flags,
                    key,
                    current_state,
                    new_state,
                }))
            }
            _ => Err(DecodeError::new("break: structure size")),
        }
    }
}

/// Encodes a LEASE_BREAK_ACKNOWLEDGMENT (MS-SMB2 2.2.24.2): we accept
/// `state` (the notification's NewLeaseState, or less) for lease `key`.
pub fn encode_lease_break_ack(w: &mut Writer, key: &[u8; 16], state: u32) {
    w.u16(LEASE_BREAK_ACK_SIZE);
    w.u16(0); // Reserved
    w.u32(0); // Flags
    w.bytes(key);
    w.u32(state);
    w.u64(0); // LeaseDuration
}

/// Decodes a LEASE_BREAK_RESPONSE (MS-SMB2 2.2.25.2): the lease key and
/// the state the server settled on.
pub fn decode_lease_break_response(msg: &[u8]) -> Result<([u8; 16], u32), DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "lease break response: header")?;
    r.structure_size(LEASE_BREAK_ACK_SIZE, "lease break response: structure size")?;
    r.skip(2 + 4, "lease break response: reserved, flags")?;
    let key = r.array("lease break response: key")?;
    let state = r.u32("lease break response: state")?;
    r.skip(8, "lease break response: duration")?;
    Ok((key, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    fn framed(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        f(&mut w);
        w.into_vec()
    }

    #[test]
    fn lease_break_notification_round_trip_and_truncation() {
        let n = LeaseBreak {
            new_epoch: 2,
            flags: NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED,
            key: [0x1E; 16],
            current_state: 7,
            new_state: 3,
        };
        let b = framed(|w| n.encode(w));
        assert_eq!(b.len(), HEADER_LEN + 44);
        let d = BreakNotification::decode(&b).unwrap();
        assert_eq!(d, BreakNotification::Lease(n));
        assert!(n.ack_required());
        for cut in 0..b.len() {
            assert!(
                BreakNotification::decode(&b[..cut]).is_err(),
                "prefix {cut}"
            );
        }
    }

    #[test]
    fn the_fuzz_seeds_decode_whole() {
        let n = include_bytes!("../../../fuzz/seeds/wire_lease_break/lease_break.bin");
        assert!(matches!(
            BreakNotification::decode(n).unwrap(),
            BreakNotification::Lease(b) if b.ack_required() && b.new_state == 3
        ));
        let o = include_bytes!("../../../fuzz/seeds/wire_lease_break/oplock_break.bin");
        assert!(matches!(
            BreakNotification::decode(o).unwrap(),
            BreakNotification::Oplock { .. }
        ));
        let r = include_bytes!("../../../fuzz/seeds/wire_lease_break/lease_break_response.bin");
        assert_eq!(decode_lease_break_response(r).unwrap().1, 3);
    }

    #[test]
    fn oplock_break_notification() {
        let b = framed(|w| {
            w.u16(24);
            w.u8(0x01);
            w.zeros(5);
            w.bytes(&[4; 16]);
        });
        assert_eq!(
            BreakNotification::decode(&b).unwrap(),
            BreakNotification::Oplock {
                oplock_level: 1,
                file_id: FileId([4; 16])
            }
        );
        for cut in 0..b.len() {
            assert!(
                BreakNotification::decode(&b[..cut]).is_err(),
                "prefix {cut}"
            );
        }
        let mut odd = b.clone();
        odd[HEADER_LEN] = 25;
        assert!(BreakNotification::decode(&odd).is_err());
    }

    #[test]
    fn lease_break_ack_and_response() {
        let b = framed(|w| encode_lease_break_ack(w, &[0x1E; 16], 3));
        assert_eq!(b.len(), HEADER_LEN + 36);
        assert_eq!(&b[HEADER_LEN..HEADER_LEN + 2], &36u16.to_le_bytes());
        // The response has the acknowledgment's layout.
        assert_eq!(decode_lease_break_response(&b).unwrap(), ([0x1E; 16], 3));
        for cut in 0..b.len() {
            assert!(
                decode_lease_break_response(&b[..cut]).is_err(),
                "prefix {cut}"
            );
        }
    }
}
