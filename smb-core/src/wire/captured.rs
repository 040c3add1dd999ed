//! Codec tests on messages captured from the loopback Samba 4.17 fixture
//! (with `SMB_CORE_CAPTURE_DIR`, see `conn`): each decodes to the expected
//! fields, and every prefix that cuts into the message's required part fails.

use super::create::{decode_close, CreateResponse};
use super::dir::{decode_directory_entries, decode_output_buffer};
use super::header::{Header, FLAG_ASYNC, FLAG_RESPONSE, FLAG_SIGNED};
use super::info::decode_all_information;
use super::io::{decode_read, decode_write};
use super::ioctl::{
    decode_resume_key, CopyChunkResponse, IoctlResponse, FSCTL_SRV_COPYCHUNK_WRITE,
    FSCTL_SRV_REQUEST_RESUME_KEY,
};
use super::negotiate::{NegotiateResponse, CTX_ENCRYPTION, CTX_PREAUTH, CTX_SIGNING, HASH_SHA512};
use super::session::{decode_empty, decode_error, SessionSetupResponse, TreeConnectResponse};
use super::{Command, DecodeError, Dialect, NtStatus, Writer};

const NEGOTIATE: &[u8] = include_bytes!("testdata/negotiate_311.bin");
const SESSION_MORE: &[u8] = include_bytes!("testdata/session_setup_more.bin");
const SESSION_OK: &[u8] = include_bytes!("testdata/session_setup_ok.bin");
const TREE: &[u8] = include_bytes!("testdata/tree_connect.bin");
const CREATE: &[u8] = include_bytes!("testdata/create.bin");
const CLOSE: &[u8] = include_bytes!("testdata/close.bin");
const NOT_FOUND: &[u8] = include_bytes!("testdata/create_not_found.bin");
const FLUSH_INTERIM: &[u8] = include_bytes!("testdata/flush_interim.bin");
const READ_EOF: &[u8] = include_bytes!("testdata/read_eof.bin");
const READ: &[u8] = include_bytes!("testdata/read.bin");
const QUERY_DIRECTORY: &[u8] = include_bytes!("testdata/query_directory.bin");
const QUERY_INFO: &[u8] = include_bytes!("testdata/query_info_all.bin");
const IOCTL_RESUME_KEY: &[u8] = include_bytes!("testdata/ioctl_a.bin");
const IOCTL_COPYCHUNK: &[u8] = include_bytes!("testdata/ioctl_b.bin");
const WRITE: &[u8] = include_bytes!("testdata/write.bin");
const ECHO: &[u8] = include_bytes!("testdata/echo.bin");

/// Every vector, for the fuzz seed replay.
pub(crate) const ALL: &[&[u8]] = &[
    NEGOTIATE,
    SESSION_MORE,
    SESSION_OK,
    TREE,
    CREATE,
    CLOSE,
    NOT_FOUND,
    FLUSH_INTERIM,
    READ_EOF,
    READ,
    QUERY_DIRECTORY,
    QUERY_INFO,
    IOCTL_RESUME_KEY,
    IOCTL_COPYCHUNK,
    WRITE,
    ECHO,
];

/// `decode` must fail on every prefix shorter than `required`.
fn cuts<T>(msg: &[u8], required: usize, decode: impl Fn(&[u8]) -> Result<T, DecodeError>) {
    for n in 0..required.min(msg.len()) {
        assert!(decode(&msg[..n]).is_err(), "prefix {n} of {}", msg.len());
    }
}

fn header(msg: &[u8], command: Command, status: NtStatus) -> Header {
    let h = Header::decode(msg).unwrap();
    assert_eq!((h.command, h.status), (command, status));
    assert!(h.flags & FLAG_RESPONSE != 0);
    h
}

#[test]
fn negotiate_311() {
    header(NEGOTIATE, Command::NEGOTIATE, NtStatus::SUCCESS);
    let n = NegotiateResponse::decode(NEGOTIATE).unwrap();
    assert_eq!(n.dialect, Dialect::SMB3_1_1);
    assert_eq!(n.max_read_size, 8 << 20);
    assert_eq!(
        n.context(CTX_PREAUTH).unwrap().ids().unwrap(),
        vec![HASH_SHA512]
    );
    assert!(n.context(CTX_ENCRYPTION).is_some());
    assert!(n.context(CTX_SIGNING).is_some());
    // Re-encoding gives Samba's bytes back.
    let mut w = Writer::new();
    w.bytes(&NEGOTIATE[..64]);
    n.encode(&mut w);
    assert_eq!(w.as_slice(), NEGOTIATE);
    cuts(NEGOTIATE, NEGOTIATE.len(), NegotiateResponse::decode);
}

#[test]
fn session_setup() {
    let h = header(
        SESSION_MORE,
        Command::SESSION_SETUP,
        NtStatus::MORE_PROCESSING_REQUIRED,
    );
    assert_ne!(h.session_id, 0);
    let s = SessionSetupResponse::decode(SESSION_MORE).unwrap();
    assert_eq!(s.token.first(), Some(&0xa1)); // NegTokenResp
    cuts(SESSION_MORE, SESSION_MORE.len(), |m| {
        SessionSetupResponse::decode(m).map(|_| ())
    });
    let h = header(SESSION_OK, Command::SESSION_SETUP, NtStatus::SUCCESS);
    assert!(
        h.flags & FLAG_SIGNED != 0,
        "3.1.1 signs the final SESSION_SETUP response"
    );
    let s = SessionSetupResponse::decode(SESSION_OK).unwrap();
    assert_eq!(s.session_flags, 0);
    cuts(SESSION_OK, SESSION_OK.len(), |m| {
        SessionSetupResponse::decode(m).map(|_| ())
    });
}

#[test]
fn tree_connect() {
    let h = header(TREE, Command::TREE_CONNECT, NtStatus::SUCCESS);
    assert_ne!(h.tree_id, 0);
    let t = TreeConnectResponse::decode(TREE).unwrap();
    assert_eq!(t.share_type, 1);
    cuts(TREE, TREE.len(), TreeConnectResponse::decode);
}

#[test]
fn create_close() {
    header(CREATE, Command::CREATE, NtStatus::SUCCESS);
    let c = CreateResponse::decode(CREATE).unwrap();
    assert!(c.contexts.is_empty());
    assert!(c.info.creation_time > 0);
    cuts(CREATE, 64 + 88, |m| CreateResponse::decode(m).map(|_| ()));
    header(CLOSE, Command::CLOSE, NtStatus::SUCCESS);
    assert!(decode_close(CLOSE).unwrap().is_some());
    cuts(CLOSE, 64 + 60, decode_close);
}

#[test]
fn errors_and_interim() {
    header(NOT_FOUND, Command::CREATE, NtStatus::OBJECT_NAME_NOT_FOUND);
    assert!(decode_error(NOT_FOUND).is_ok());
    cuts(NOT_FOUND, 64 + 8, |m| decode_error(m).map(|_| ()));
    header(READ_EOF, Command::READ, NtStatus::END_OF_FILE);
    assert!(decode_error(READ_EOF).is_ok());
    let h = header(FLUSH_INTERIM, Command::FLUSH, NtStatus::PENDING);
    assert!(h.flags & FLAG_ASYNC != 0 && h.is_interim() && h.async_id != 0);
    header(ECHO, Command::ECHO, NtStatus::SUCCESS);
    decode_empty(ECHO).unwrap();
    cuts(ECHO, ECHO.len(), decode_empty);
}

#[test]
fn read_write() {
    header(READ, Command::READ, NtStatus::SUCCESS);
    let (off, len) = decode_read(READ).unwrap();
    assert_eq!(off + len, READ.len());
    cuts(READ, READ.len(), decode_read);
    header(WRITE, Command::WRITE, NtStatus::SUCCESS);
    assert!(decode_write(WRITE).unwrap() > 0);
    cuts(WRITE, 64 + 16, decode_write);
}

#[test]
fn query_directory_and_info() {
    header(QUERY_DIRECTORY, Command::QUERY_DIRECTORY, NtStatus::SUCCESS);
    let buf = decode_output_buffer(QUERY_DIRECTORY).unwrap();
    let names: Vec<String> = decode_directory_entries(buf)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&".".to_string()) && names.contains(&"..".to_string()),
        "{names:?}"
    );
    cuts(QUERY_DIRECTORY, QUERY_DIRECTORY.len(), |m| {
        decode_output_buffer(m).map(|_| ())
    });
    for n in 1..buf.len() {
        assert!(
            decode_directory_entries(&buf[..n]).is_err(),
            "entries prefix {n}"
        );
    }
    header(QUERY_INFO, Command::QUERY_INFO, NtStatus::SUCCESS);
    let buf = decode_output_buffer(QUERY_INFO).unwrap();
    let (basic, standard) = decode_all_information(buf).unwrap();
    assert!(basic.last_write_time > 0);
    assert!(standard.number_of_links >= 1);
    cuts(buf, 64, decode_all_information);
}

#[test]
fn ioctl() {
    header(IOCTL_RESUME_KEY, Command::IOCTL, NtStatus::SUCCESS);
    let r = IoctlResponse::decode(IOCTL_RESUME_KEY).unwrap();
    assert_eq!(r.ctl_code, FSCTL_SRV_REQUEST_RESUME_KEY);
    decode_resume_key(r.output).unwrap();
    cuts(IOCTL_RESUME_KEY, IOCTL_RESUME_KEY.len(), |m| {
        IoctlResponse::decode(m).map(|_| ())
    });
    let r = IoctlResponse::decode(IOCTL_COPYCHUNK).unwrap();
    assert_eq!(r.ctl_code, FSCTL_SRV_COPYCHUNK_WRITE);
    let c = CopyChunkResponse::decode(r.output).unwrap();
    assert!(c.total_bytes_written > 0);
    cuts(IOCTL_COPYCHUNK, IOCTL_COPYCHUNK.len(), |m| {
        IoctlResponse::decode(m).map(|_| ())
    });
}
