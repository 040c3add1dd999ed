//! Tests of the Samba fixture itself: the private smbd really speaks SMB2 over
//! TCP, every config variant starts, and the shares map to local directories.

use std::process::Command;

use smb_fixture::{MaxProtocol, Samba, ServerConfig, PASSWORD, SHARE, USER};

/// Parses the dialect out of an SMB2 NEGOTIATE response (MS-SMB2 2.2.4):
/// header (64 bytes), StructureSize (2), SecurityMode (2), DialectRevision (2).
fn negotiated_dialect(resp: &[u8]) -> u16 {
    assert!(
        resp.len() >= 70,
        "short NEGOTIATE response: {} bytes",
        resp.len()
    );
    assert_eq!(&resp[..4], b"\xfeSMB", "not an SMB2 response");
    let status = u32::from_le_bytes(resp[8..12].try_into().unwrap());
    assert_eq!(status, 0, "NEGOTIATE failed with 0x{status:08x}");
    let command = u16::from_le_bytes(resp[12..14].try_into().unwrap());
    assert_eq!(command, 0, "response is not for NEGOTIATE");
    assert_eq!(u16::from_le_bytes(resp[64..66].try_into().unwrap()), 65);
    u16::from_le_bytes(resp[68..70].try_into().unwrap())
}

#[test]
fn smbd_answers_smb2_negotiate_over_tcp() {
    let samba = Samba::shared();
    let resp = samba.raw_negotiate().expect("NEGOTIATE round trip");
    assert_eq!(
        negotiated_dialect(&resp),
        0x0210,
        "we offered 2.0.2 and 2.1"
    );
}

#[test]
fn config_variants_start_and_negotiate() {
    for cfg in [
        ServerConfig::new().max_protocol(MaxProtocol::Smb2_10),
        ServerConfig::new().max_protocol(MaxProtocol::Smb3_00),
        ServerConfig::new().signing_mandatory(),
        ServerConfig::new().encrypt_required(),
    ] {
        let samba = Samba::get(&cfg);
        let resp = samba.raw_negotiate().expect("NEGOTIATE round trip");
        let dialect = negotiated_dialect(&resp);
        assert_eq!(dialect, 0x0210, "{cfg:?}");
        let security_mode = u16::from_le_bytes(resp[66..68].try_into().unwrap());
        if cfg.signing_mandatory {
            assert_ne!(security_mode & 0x2, 0, "signing required bit must be set");
        }
    }
}

#[test]
fn smbclient_sees_files_written_locally() {
    let samba = Samba::shared();
    let (name, path) = samba.unique_dir(SHARE, "fixture");
    std::fs::write(path.join("hello.txt"), b"hello from the fixture\n").unwrap();
    let out = Command::new("smbclient")
        .arg(format!("//127.0.0.1/{SHARE}"))
        .args(["-p", &samba.port().to_string()])
        .args(["-U", &format!("{USER}%{PASSWORD}")])
        .args(["-m", "SMB3", "-c", &format!("cd {name}; ls")])
        .output()
        .expect("running smbclient (apt-get install -y smbclient)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "smbclient failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hello.txt"),
        "listing lacks the file: {stdout}"
    );
}

#[test]
fn a_dropped_instance_stops_its_smbd() {
    let samba = Samba::start(&ServerConfig::new()).expect("start");
    let addr = samba.addr();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(samba);
    // The port no longer accepts connections once smbd is gone.
    let refused = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(addr).is_err()
    });
    assert!(refused, "smbd still listening on {addr} after drop");
}
