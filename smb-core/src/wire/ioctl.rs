//! IOCTL (MS-SMB2 2.2.31, 2.2.32) and the FSCTLs we use: validate negotiate
//! (2.2.31.4), request resume key (2.2.32.3), copychunk (2.2.31.1, 2.2.32.1),
//! DFS referrals (MS-DFSC 2.2.2, 2.2.4: the buffers are in [`super::dfs`]).

use super::codec::{len32, Reader, Writer};
use super::create::FileId;
use super::header::HEADER_LEN;
use super::DecodeError;

/// FSCTL_VALIDATE_NEGOTIATE_INFO.
pub const FSCTL_VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
/// FSCTL_SRV_REQUEST_RESUME_KEY.
pub const FSCTL_SRV_REQUEST_RESUME_KEY: u32 = 0x0014_0078;
/// FSCTL_SRV_COPYCHUNK.
pub const FSCTL_SRV_COPYCHUNK: u32 = 0x0014_40F2;
/// FSCTL_SRV_COPYCHUNK_WRITE.
pub const FSCTL_SRV_COPYCHUNK_WRITE: u32 = 0x0014_80F2;
/// FSCTL_DFS_GET_REFERRALS (MS-SMB2 2.2.31: sent with FileId all ones).
pub const FSCTL_DFS_GET_REFERRALS: u32 = 0x0006_0194;
/// SMB2_0_IOCTL_IS_FSCTL.
pub const IOCTL_IS_FSCTL: u32 = 0x0000_0001;

/// Encodes an IOCTL request (MS-SMB2 2.2.31) with `input`.
pub fn encode_ioctl(w: &mut Writer, ctl_code: u32, file_id: FileId, input: &[u8], max_output: u32) {
    w.u16(57);
    w.u16(0);
    w.u32(ctl_code);
    w.bytes(&file_id.0);
    let input_off = w.len() + 4 * 8;
    w.u32(if input.is_empty() {
        0
    } else {
        len32(input_off)
    });
    w.u32(len32(input.len()));
    w.u32(0); // MaxInputResponse
    w.u32(0); // OutputOffset
    w.u32(0); // OutputCount
    w.u32(max_output);
    w.u32(IOCTL_IS_FSCTL);
    w.u32(0);
    w.bytes(input);
    if input.is_empty() {
        w.zeros(8);
    }
}

/// The IOCTL response (MS-SMB2 2.2.32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoctlResponse<'a> {
    /// CtlCode.
    pub ctl_code: u32,
    /// FileId.
    pub file_id: FileId,
    /// The output buffer.
    pub output: &'a [u8],
}

impl<'a> IoctlResponse<'a> {
    /// Decodes the body of a whole message.
    pub fn decode(msg: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::at(msg, HEADER_LEN, "ioctl: header")?;
        r.structure_size(49, "ioctl: structure size")?;
        r.skip(2, "ioctl: reserved")?;
        let ctl_code = r.u32("ioctl: ctl code")?;
        let file_id = FileId(r.array("ioctl: file id")?);
        let in_off = r.u32("ioctl: input offset")?;
        let in_len = r.u32("ioctl: input count")?;
        let out_off = r.u32("ioctl: output offset")?;
        let out_len = r.u32("ioctl: output count")?;
        r.skip(8, "ioctl: flags + reserved")?;
        r.opt_slice_at(in_off as usize, in_len as usize, "ioctl: input")?;
        let output = r.opt_slice_at(out_off as usize, out_len as usize, "ioctl: output")?;
        Ok(Self {
            ctl_code,
            file_id,
            output,
        })
    }

    /// Encodes the body (tests).
    pub fn encode(&self, w: &mut Writer) {
        w.u16(49);
        w.u16(0);
        w.u32(self.ctl_code);
        w.bytes(&self.file_id.0);
        let off = len32(w.len() + 24);
        w.u32(0);
        w.u32(0);
        w.u32(off);
        w.u32(len32(self.output.len()));
        w.u32(0);
        w.u32(0);
        w.bytes(self.output);
    }
}

/// The resume key from an FSCTL_SRV_REQUEST_RESUME_KEY output (MS-SMB2 2.2.32.3).
pub fn decode_resume_key(out: &[u8]) -> Result<[u8; 24], DecodeError> {
    let mut r = Reader::new(out);
    let key = r.array("resume key: key")?;
    let ctx_len = r.u32("resume key: context length")?;
    r.skip(ctx_len as usize, "resume key: context")?;
    Ok(key)
}

/// The SRV_COPYCHUNK_COPY input (MS-SMB2 2.2.31.1).
pub fn encode_copychunk(source_key: &[u8; 24], chunks: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut w = Writer::with_capacity(32 + chunks.len() * 24);
    w.bytes(source_key);
    w.u32(len32(chunks.len()));
    w.u32(0);
    for (src, dst, len) in chunks {
        w.u64(*src);
        w.u64(*dst);
        w.u32(*len);
        w.u32(0);
    }
    w.into_vec()
}

/// SRV_COPYCHUNK_RESPONSE (MS-SMB2 2.2.32.1). On STATUS_INVALID_PARAMETER the
/// fields are the server's limits (chunks, chunk size, total size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyChunkResponse {
    /// ChunksWritten (or the maximum chunk count).
    pub chunks_written: u32,
    /// ChunkBytesWritten (or the maximum chunk size).
    pub chunk_bytes_written: u32,
    /// TotalBytesWritten (or the maximum total size).
    pub total_bytes_written: u32,
}

impl CopyChunkResponse {
    /// Decodes the 12-byte output.
    pub fn decode(out: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(out);
        Ok(Self {
            chunks_written: r.u32("copychunk: chunks")?,
            chunk_bytes_written: r.u32("copychunk: chunk bytes")?,
            total_bytes_written: r.u32("copychunk: total")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    #[test]
    fn ioctl_response() {
        let out = [9u8; 28];
        let resp = IoctlResponse {
            ctl_code: FSCTL_SRV_REQUEST_RESUME_KEY,
            file_id: FileId([1; 16]),
            output: &out,
        };
        let mut w = Writer::new();
        Header::default().encode(&mut w);
        resp.encode(&mut w);
        let b = w.into_vec();
        let d = IoctlResponse::decode(&b).unwrap();
        assert_eq!(d, resp);
        for n in 0..b.len() {
            assert!(IoctlResponse::decode(&b[..n]).is_err(), "prefix {n}");
        }
        let mut key_out = [0u8; 28];
        key_out[..24].copy_from_slice(&[7; 24]);
        assert_eq!(decode_resume_key(&key_out).unwrap(), [7; 24]);
        assert!(decode_resume_key(&key_out[..27]).is_err());
    }

    #[test]
    fn copychunk() {
        let b = encode_copychunk(&[1; 24], &[(0, 0, 10), (10, 10, 5)]);
        assert_eq!(b.len(), 32 + 48);
        let r = CopyChunkResponse::decode(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]).unwrap();
        assert_eq!(r.total_bytes_written, 3);
        assert!(CopyChunkResponse::decode(&[0; 11]).is_err());
    }
}
