//! QUERY_INFO (MS-SMB2 2.2.37, 2.2.38), SET_INFO (2.2.39, 2.2.40) and the
//! MS-FSCC file information classes we use (2.4.7 basic, 2.4.41 standard,
//! 2.4.2 all, 2.4.37.2 rename, 2.4.11 disposition, 2.4.13 end of file).

use super::codec::{len16, len32, utf16le, Reader, Writer};
use super::create::FileId;
use super::header::HEADER_LEN;
use super::DecodeError;

/// SMB2_0_INFO_FILE.
pub const INFO_FILE: u8 = 0x01;

/// FileBasicInformation.
pub const FILE_BASIC_INFORMATION: u8 = 4;
/// FileStandardInformation.
pub const FILE_STANDARD_INFORMATION: u8 = 5;
/// FileRenameInformation.
pub const FILE_RENAME_INFORMATION: u8 = 10;
/// FileDispositionInformation.
pub const FILE_DISPOSITION_INFORMATION: u8 = 13;
/// FileAllInformation.
pub const FILE_ALL_INFORMATION: u8 = 18;
/// FileEndOfFileInformation.
pub const FILE_END_OF_FILE_INFORMATION: u8 = 20;

/// Encodes a QUERY_INFO request (MS-SMB2 2.2.37) for a file information class.
pub fn encode_query_info(w: &mut Writer, file_id: FileId, class: u8, output_len: u32) {
    w.u16(41);
    w.u8(INFO_FILE);
    w.u8(class);
    w.u32(output_len);
    w.u16(len16(w.len() + 2 + 2 + 4 + 4 + 4 + 16)); // InputBufferOffset (no input)
    w.u16(0);
    w.u32(0); // InputBufferLength
    w.u32(0); // AdditionalInformation
    w.u32(0); // Flags
    w.bytes(&file_id.0);
    w.u8(0); // Buffer: one byte
}

/// Encodes a SET_INFO request (MS-SMB2 2.2.39) carrying `buffer`.
pub fn encode_set_info(w: &mut Writer, file_id: FileId, class: u8, buffer: &[u8]) {
    w.u16(33);
    w.u8(INFO_FILE);
    w.u8(class);
    w.u32(len32(buffer.len()));
    w.u16(len16(w.len() + 2 + 2 + 4 + 16));
    w.u16(0);
    w.u32(0);
    w.bytes(&file_id.0);
    w.bytes(buffer);
}

/// Decodes a SET_INFO response (StructureSize 2).
pub fn decode_set_info(msg: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::at(msg, HEADER_LEN, "set info: header")?;
    r.structure_size(2, "set info: structure size")
}

/// FileBasicInformation (MS-FSCC 2.4.7). Zero times mean "unchanged" in SET_INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicInfo {
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// FileAttributes (0 = unchanged).
    pub file_attributes: u32,
}

impl BasicInfo {
    /// Decodes the 40-byte structure (also the head of FileAllInformation).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            creation_time: r.u64("basic info: times")?,
            last_access_time: r.u64("basic info: times")?,
            last_write_time: r.u64("basic info: times")?,
            change_time: r.u64("basic info: times")?,
            file_attributes: r.u32("basic info: attributes")?,
        };
        r.skip(4, "basic info: reserved")?;
        Ok(v)
    }

    /// Encodes the 40-byte structure.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(40);
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u32(self.file_attributes);
        w.u32(0);
        w.into_vec()
    }
}

/// FileStandardInformation (MS-FSCC 2.4.41).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StandardInfo {
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// NumberOfLinks.
    pub number_of_links: u32,
    /// DeletePending.
    pub delete_pending: bool,
    /// Directory.
    pub directory: bool,
}

impl StandardInfo {
    /// Decodes the 24-byte structure.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            allocation_size: r.u64("standard info: allocation")?,
            end_of_file: r.u64("standard info: size")?,
            number_of_links: r.u32("standard info: links")?,
            delete_pending: r.u8("standard info: delete pending")? != 0,
            directory: r.u8("standard info: directory")? != 0,
        };
        r.skip(2, "standard info: reserved")?;
        Ok(v)
    }
}

/// The basic and standard parts of FileAllInformation (MS-FSCC 2.4.2); the
/// rest (internal, EA, access, position, mode, alignment, name) is ignored.
pub fn decode_all_information(buf: &[u8]) -> Result<(BasicInfo, StandardInfo), DecodeError> {
    let mut r = Reader::new(buf);
    let basic = BasicInfo::decode(&mut r)?;
    let standard = StandardInfo::decode(&mut r)?;
    Ok((basic, standard))
}

/// FileRenameInformation for SMB2 (MS-FSCC 2.4.37.2): `target` is the full
/// path from the share root (UTF-16LE, `\` separated).
pub fn encode_rename(target: &str, replace: bool) -> Vec<u8> {
    let name = utf16le(target);
    let mut w = Writer::new();
    w.u8(u8::from(replace));
    w.zeros(7);
    w.u64(0); // RootDirectory
    w.u32(len32(name.len()));
    w.bytes(&name);
    // Some servers want at least the 24-byte struct size.
    while w.len() < 24 {
        w.u8(0);
    }
    w.into_vec()
}

/// FileDispositionInformation (MS-FSCC 2.4.11).
pub fn encode_disposition(delete: bool) -> Vec<u8> {
    vec![u8::from(delete)]
}

/// FileEndOfFileInformation (MS-FSCC 2.4.13).
pub fn encode_end_of_file(len: u64) -> Vec<u8> {
    len.to_le_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_information() {
        let basic = BasicInfo {
            creation_time: 1,
            last_access_time: 2,
            last_write_time: 3,
            change_time: 4,
            file_attributes: 0x10,
        };
        let mut b = basic.encode();
        b.extend_from_slice(&4096u64.to_le_bytes());
        b.extend_from_slice(&100u64.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0, 1, 0, 0]);
        let (ba, st) = decode_all_information(&b).unwrap();
        assert_eq!(ba, basic);
        assert_eq!(st.end_of_file, 100);
        assert!(st.directory);
        for n in 0..b.len() {
            assert!(decode_all_information(&b[..n]).is_err());
        }
    }

    #[test]
    fn rename_layout() {
        let r = encode_rename("a\\b", true);
        assert_eq!(r[0], 1);
        assert_eq!(u32::from_le_bytes([r[16], r[17], r[18], r[19]]), 6);
        assert_eq!(r.len(), 26);
    }
}
