//! Fuzz entry points: one function per parser of server data. Each takes
//! arbitrary bytes and must never panic; fuzz targets just call them.

use super::{create, dfs, dir, header, info, io, ioctl, negotiate, oplock, session};

/// SMB2 header and compound splitting.
pub fn header(data: &[u8]) {
    let _ = header::Header::decode(data);
    let _ = header::split_compound(data);
}

/// TRANSFORM_HEADER.
pub fn transform_header(data: &[u8]) {
    let _ = header::TransformHeader::decode(data);
}

/// NEGOTIATE response (a whole message, header included) and its contexts.
pub fn negotiate_response(data: &[u8]) {
    if let Ok(r) = negotiate::NegotiateResponse::decode(data) {
        for c in &r.contexts {
            let _ = c.ids();
        }
    }
    let _ = negotiate::ValidateNegotiateResponse::decode(data);
}

/// SESSION_SETUP response.
pub fn session_setup_response(data: &[u8]) {
    let _ = session::SessionSetupResponse::decode(data);
    let _ = session::TreeConnectResponse::decode(data);
}

/// CREATE response including create contexts (and the typed durable and
/// lease contexts in it), a bare context chain, and each context's data.
pub fn create_response(data: &[u8]) {
    if let Ok(r) = create::CreateResponse::decode(data) {
        let _ = r.durable_v2();
        let _ = r.lease();
    }
    let _ = create::decode_create_contexts(data);
    let _ = create::decode_close(data);
    let _ = create::DurableResponseV2::decode(data);
    let _ = create::Lease::decode(data);
    let _ = create::DecodedCreateRequest::decode(data);
}

/// OPLOCK_BREAK from the server: oplock and lease break notifications and
/// the lease break response.
pub fn lease_break(data: &[u8]) {
    let _ = oplock::BreakNotification::decode(data);
    let _ = oplock::decode_lease_break_response(data);
}

/// QUERY_DIRECTORY output: FileIdBothDirectoryInformation entries.
pub fn dir_entries(data: &[u8]) {
    let entries = |buf: &[u8]| {
        if let Ok(es) = dir::decode_directory_entries(buf) {
            for e in es {
                let _ = dir::validate_name(&e.name);
            }
        }
    };
    if let Ok(buf) = dir::decode_output_buffer(data) {
        entries(buf);
    }
    entries(data);
}

/// QUERY_INFO output (FileAllInformation).
pub fn query_info(data: &[u8]) {
    if let Ok(buf) = dir::decode_output_buffer(data) {
        let _ = info::decode_all_information(buf);
    }
    let _ = info::decode_all_information(data);
    let _ = info::decode_set_info(data);
}

/// IOCTL response and FSCTL outputs.
pub fn ioctl_response(data: &[u8]) {
    if let Ok(r) = ioctl::IoctlResponse::decode(data) {
        let _ = ioctl::decode_resume_key(r.output);
        let _ = ioctl::CopyChunkResponse::decode(r.output);
        let _ = negotiate::ValidateNegotiateResponse::decode(r.output);
    }
    let _ = ioctl::decode_resume_key(data);
    let _ = ioctl::CopyChunkResponse::decode(data);
}

/// FSCTL_DFS_GET_REFERRALS output (MS-DFSC RESP_GET_DFS_REFERRAL), bare
/// and inside an IOCTL response.
pub fn dfs_referral(data: &[u8]) {
    let _ = dfs::ReferralResponse::decode(data);
    if let Ok(r) = ioctl::IoctlResponse::decode(data) {
        let _ = dfs::ReferralResponse::decode(r.output);
    }
}

/// ERROR response and the small fixed bodies (READ, WRITE, empty).
pub fn error_response(data: &[u8]) {
    let _ = session::decode_error(data);
    let _ = session::decode_empty(data);
    if let Ok((off, len)) = io::decode_read(data) {
        // A READ that decodes whole must look the same from its fixed part
        // alone (the spliced receive path), or be refused there.
        if let Some(span) = io::read_data_span(data, data.len()) {
            assert_eq!(
                span,
                (off, len),
                "READ data span disagrees with decode_read"
            );
        }
    }
    let _ = io::read_data_span(data, data.len());
    let _ = io::decode_write(data);
}

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// The fuzz targets: name and entry point (`fuzz/fuzz_targets/wire_<name>.rs`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("wire_header", header),
    ("wire_transform_header", transform_header),
    ("wire_negotiate_response", negotiate_response),
    ("wire_session_setup_response", session_setup_response),
    ("wire_create_response", create_response),
    ("wire_lease_break", lease_break),
    ("wire_dir_entries", dir_entries),
    ("wire_query_info", query_info),
    ("wire_ioctl_response", ioctl_response),
    ("wire_error_response", error_response),
    ("wire_dfs_referral", dfs_referral),
];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Every seed under `fuzz/seeds/wire_*`, each truncated prefix and each
    /// single-byte flip of the first 128 bytes, through its entry point.
    #[test]
    fn replay_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let mut n = 0;
        for (name, entry) in super::TARGETS {
            let dir = std::fs::read_dir(root.join(name))
                .unwrap_or_else(|e| panic!("fuzz/seeds/{name}: {e}"));
            let before = n;
            for f in dir.flatten() {
                let data = std::fs::read(f.path()).unwrap();
                for cut in 0..=data.len() {
                    entry(&data[..cut]);
                }
                let mut flip = data.clone();
                for i in 0..flip.len().min(128) {
                    flip[i] ^= 0xff;
                    entry(&flip);
                    flip[i] ^= 0xff;
                }
                n += 1;
            }
            assert!(n > before, "no seeds in fuzz/seeds/{name}");
        }
        // The captured vectors in wire/testdata go through every target too.
        for v in super::super::captured::ALL {
            for (_, entry) in super::TARGETS {
                entry(v);
            }
        }
        println!("replayed {n} seeds");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut framed = b"\xfeSMB".to_vec();
            framed.extend_from_slice(&data);
            for d in [&data[..], &framed[..]] {
                super::header(d);
                super::transform_header(d);
                super::negotiate_response(d);
                super::session_setup_response(d);
                super::create_response(d);
                super::lease_break(d);
                super::dir_entries(d);
                super::query_info(d);
                super::ioctl_response(d);
                super::error_response(d);
                super::dfs_referral(d);
            }
        }
    }
}

#[cfg(test)]
mod round_trips {
    //! proptest: encode → decode gives the value back, for the messages whose
    //! encoders we have.
    use proptest::prelude::*;

    use crate::wire::create::{CreateContext, CreateResponse, FileAttributesInfo, FileId};
    use crate::wire::dir::{decode_directory_entries, encode_directory_entries, DirectoryEntry};
    use crate::wire::header::{Header, FLAG_ASYNC};
    use crate::wire::{Command, NtStatus, Writer};

    prop_compose! {
        fn header()(credit_charge: u16, status: u32, command in 0u16..0x13, credits: u16,
                    flags: u32, next in 0u32..1000, message_id: u64, id2: u64, tree_id: u32,
                    session_id: u64, signature: [u8; 16]) -> Header {
            let is_async = flags & FLAG_ASYNC != 0;
            Header {
                credit_charge, status: NtStatus(status), command: Command(command), credits, flags,
                next_command: next * 8, message_id,
                async_id: if is_async { id2 } else { 0 },
                tree_id: if is_async { 0 } else { tree_id },
                session_id, signature,
            }
        }
    }

    prop_compose! {
        fn entry()(times: [u64; 4], end_of_file: u64, allocation_size: u64, file_attributes: u32,
                   file_id: u64, name in "[^\\x00]{1,40}") -> DirectoryEntry {
            DirectoryEntry {
                creation_time: times[0], last_access_time: times[1], last_write_time: times[2],
                change_time: times[3], end_of_file, allocation_size, file_attributes, file_id, name,
            }
        }
    }

    proptest! {
        #[test]
        fn header_round_trip(h in header()) {
            let mut w = Writer::new();
            h.encode(&mut w);
            prop_assert_eq!(Header::decode(w.as_slice()).unwrap(), h);
        }

        #[test]
        fn dir_entries_round_trip(es in proptest::collection::vec(entry(), 1..20)) {
            let mut w = Writer::new();
            encode_directory_entries(&mut w, &es);
            prop_assert_eq!(decode_directory_entries(w.as_slice()).unwrap(), es);
        }

        #[test]
        fn create_response_round_trip(
            info: (u64, u64, u64, u64, u64, u64, u32),
            file_id: [u8; 16],
            ctx in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..8),
                                              proptest::collection::vec(any::<u8>(), 0..40)), 0..4),
        ) {
            let contexts: Vec<CreateContext<'_>> =
                ctx.iter().map(|(n, d)| CreateContext { name: n, data: d }).collect();
            let r = CreateResponse {
                oplock_level: 0,
                create_action: 1,
                info: FileAttributesInfo {
                    creation_time: info.0, last_access_time: info.1, last_write_time: info.2,
                    change_time: info.3, allocation_size: info.4, end_of_file: info.5,
                    file_attributes: info.6,
                },
                file_id: FileId(file_id),
                contexts,
            };
            let mut w = Writer::new();
            Header::default().encode(&mut w);
            r.encode(&mut w);
            let b = w.into_vec();
            prop_assert_eq!(CreateResponse::decode(&b).unwrap(), r);
        }
    }
}
