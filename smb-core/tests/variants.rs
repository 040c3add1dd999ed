//! Dialects, signing algorithms, ciphers and failure modes against real Samba
//! servers configured for each variant. Every test moves real bytes and
//! prints what was negotiated.

mod common;

use common::{connect_with, creds, exercise, report};
use smb_core::{Client, ClientConfig, Dialect, EncryptionMode, Error, NtStatus, OpenOptions};
use smb_fixture::{MaxProtocol, Samba, ServerConfig, ENC_SHARE, RO_SHARE, SHARE};

/// A server that offers only `algs` (`server smb3 encryption algorithms`).
fn enc_algs(c: ServerConfig, algs: &'static str) -> ServerConfig {
    c.encryption_algorithms(algs)
}

async fn run(
    name: &str,
    server: ServerConfig,
    client: ClientConfig,
    share: &str,
) -> (Client, smb_core::Session, smb_core::Tree) {
    let samba = Samba::get(&server);
    let (c, s, t) = connect_with(samba, share, client).await;
    report(name, &c, &s, &t);
    exercise(samba, share, &t, name).await;
    (c, s, t)
}

#[tokio::test]
async fn max_protocol_smb2_10() {
    let (c, s, _) = run(
        "smb2_10",
        ServerConfig::new().max_protocol(MaxProtocol::Smb2_10),
        ClientConfig::default(),
        SHARE,
    )
    .await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB2_1);
    assert!(c.negotiated().large_mtu);
    assert_eq!(s.cipher(), None);
}

#[tokio::test]
async fn client_max_smb2_02() {
    let mut cfg = ClientConfig::default();
    cfg.max_dialect = Dialect::SMB2_0_2;
    let (c, _, _) = run("smb2_02", ServerConfig::new(), cfg, SHARE).await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB2_0_2);
    assert_eq!(c.negotiated().max_read_size, 65536);
}

#[tokio::test]
async fn max_protocol_smb3_00() {
    let (c, s, _) = run(
        "smb3_00",
        ServerConfig::new().max_protocol(MaxProtocol::Smb3_00),
        ClientConfig::default(),
        SHARE,
    )
    .await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB3_0);
    // VALIDATE_NEGOTIATE_INFO was signed with the session key.
    assert_eq!(s.session_signing_algorithm(), Some("AES-128-CMAC"));
}

#[tokio::test]
async fn max_protocol_smb3_02() {
    let (c, s, _) = run(
        "smb3_02",
        ServerConfig::new().max_protocol(MaxProtocol::Smb3_02),
        ClientConfig::default(),
        SHARE,
    )
    .await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB3_0_2);
    assert_eq!(s.session_signing_algorithm(), Some("AES-128-CMAC"));
}

#[tokio::test]
async fn max_protocol_smb3_11() {
    let (c, s, _) = run(
        "smb3_11",
        ServerConfig::new(),
        ClientConfig::default(),
        SHARE,
    )
    .await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB3_1_1);
    assert_eq!(s.session_signing_algorithm(), Some("AES-128-GMAC"));
    assert_eq!(s.signing_algorithm(), None);
}

#[tokio::test]
async fn signing_mandatory_smb3_11_gmac() {
    let (c, s, _) = run(
        "sign_311_gmac",
        ServerConfig::new().signing_mandatory(),
        ClientConfig::default(),
        SHARE,
    )
    .await;
    assert!(c.negotiated().server_requires_signing);
    assert_eq!(c.negotiated().dialect, Dialect::SMB3_1_1);
    assert_eq!(s.signing_algorithm(), Some("AES-128-GMAC"));
}

#[tokio::test]
async fn signing_mandatory_smb3_11_cmac() {
    let server = ServerConfig::new()
        .signing_mandatory()
        .signing_algorithms("AES-128-CMAC");
    let (_, s, _) = run("sign_311_cmac", server, ClientConfig::default(), SHARE).await;
    assert_eq!(s.signing_algorithm(), Some("AES-128-CMAC"));
}

#[tokio::test]
async fn signing_mandatory_smb3_11_hmac() {
    let server = ServerConfig::new()
        .signing_mandatory()
        .signing_algorithms("HMAC-SHA256");
    let (_, s, _) = run("sign_311_hmac", server, ClientConfig::default(), SHARE).await;
    assert_eq!(s.signing_algorithm(), Some("HMAC-SHA256"));
}

#[tokio::test]
async fn signing_mandatory_smb3_00_cmac() {
    let server = ServerConfig::new()
        .signing_mandatory()
        .max_protocol(MaxProtocol::Smb3_00);
    let (c, s, _) = run("sign_300_cmac", server, ClientConfig::default(), SHARE).await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB3_0);
    assert_eq!(s.signing_algorithm(), Some("AES-128-CMAC"));
}

#[tokio::test]
async fn signing_mandatory_smb2_10_hmac() {
    let server = ServerConfig::new()
        .signing_mandatory()
        .max_protocol(MaxProtocol::Smb2_10);
    let (c, s, _) = run("sign_210_hmac", server, ClientConfig::default(), SHARE).await;
    assert_eq!(c.negotiated().dialect, Dialect::SMB2_1);
    assert_eq!(s.signing_algorithm(), Some("HMAC-SHA256"));
}

#[tokio::test]
async fn client_requested_signing() {
    let mut cfg = ClientConfig::default();
    cfg.sign = true;
    let (_, s, _) = run("client_sign", ServerConfig::new(), cfg, SHARE).await;
    assert_eq!(s.signing_algorithm(), Some("AES-128-GMAC"));
}

async fn encrypted(name: &str, server: ServerConfig, want: &str, dialect: Dialect) {
    let (c, s, t) = run(name, server, ClientConfig::default(), SHARE).await;
    assert_eq!(c.negotiated().dialect, dialect);
    assert!(s.encrypts_all());
    assert!(t.encrypts());
    assert_eq!(s.cipher(), Some(want));
}

#[tokio::test]
async fn encryption_required_aes_128_ccm() {
    encrypted(
        "enc_128_ccm",
        enc_algs(ServerConfig::new().encrypt_required(), "AES-128-CCM"),
        "AES-128-CCM",
        Dialect::SMB3_1_1,
    )
    .await;
}

#[tokio::test]
async fn encryption_required_aes_128_gcm() {
    encrypted(
        "enc_128_gcm",
        enc_algs(ServerConfig::new().encrypt_required(), "AES-128-GCM"),
        "AES-128-GCM",
        Dialect::SMB3_1_1,
    )
    .await;
}

#[tokio::test]
async fn encryption_required_aes_256_ccm() {
    encrypted(
        "enc_256_ccm",
        enc_algs(ServerConfig::new().encrypt_required(), "AES-256-CCM"),
        "AES-256-CCM",
        Dialect::SMB3_1_1,
    )
    .await;
}

#[tokio::test]
async fn encryption_required_aes_256_gcm() {
    encrypted(
        "enc_256_gcm",
        enc_algs(ServerConfig::new().encrypt_required(), "AES-256-GCM"),
        "AES-256-GCM",
        Dialect::SMB3_1_1,
    )
    .await;
}

#[tokio::test]
async fn encryption_required_smb3_00_ccm() {
    let server = ServerConfig::new()
        .encrypt_required()
        .max_protocol(MaxProtocol::Smb3_00);
    encrypted("enc_300_ccm", server, "AES-128-CCM", Dialect::SMB3_0).await;
}

#[tokio::test]
async fn encryption_required_smb3_02_ccm() {
    let server = ServerConfig::new()
        .encrypt_required()
        .max_protocol(MaxProtocol::Smb3_02);
    encrypted("enc_302_ccm", server, "AES-128-CCM", Dialect::SMB3_0_2).await;
}

#[tokio::test]
async fn encryption_per_share() {
    let (_, s, t) = run(
        "enc_share",
        ServerConfig::new(),
        ClientConfig::default(),
        ENC_SHARE,
    )
    .await;
    assert!(t.encrypted());
    assert!(!s.encrypts_all());
    assert_eq!(s.available_cipher(), Some("AES-128-GCM"));
}

#[tokio::test]
async fn encryption_client_required() {
    let mut cfg = ClientConfig::default();
    cfg.encryption = EncryptionMode::Required;
    let (_, s, _) = run("enc_client", ServerConfig::new(), cfg, SHARE).await;
    assert_eq!(s.cipher(), Some("AES-128-GCM"));
}

#[tokio::test]
async fn encryption_required_refused_on_smb2() {
    let samba = Samba::get(&ServerConfig::new().max_protocol(MaxProtocol::Smb2_10));
    let mut cfg = ClientConfig::default();
    cfg.encryption = EncryptionMode::Required;
    let err = Client::connect(samba.host(), samba.port(), cfg)
        .await
        .unwrap_err();
    println!("[enc_on_smb2] {err}");
    assert!(matches!(err, Error::Security(_)), "{err:?}");
}

#[tokio::test]
async fn wrong_password() {
    let samba = Samba::shared();
    let client = Client::connect(samba.host(), samba.port(), ClientConfig::default())
        .await
        .unwrap();
    let mut c = creds();
    c.password = "not-the-password".to_string().into();
    let err = client.session_setup(&c).await.unwrap_err();
    println!("[wrong_password] {err}");
    assert!(
        matches!(&err, Error::Auth(m) if m.contains("LOGON_FAILURE")),
        "{err:?}"
    );
    // The connection stays usable.
    client.echo().await.unwrap();
}

#[tokio::test]
async fn share_not_found() {
    let samba = Samba::shared();
    let client = Client::connect(samba.host(), samba.port(), ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    let err = session.tree_connect("no-such-share").await.unwrap_err();
    println!("[share_not_found] {err}");
    assert_eq!(err.status(), Some(NtStatus::BAD_NETWORK_NAME), "{err:?}");
}

#[tokio::test]
async fn read_only_share() {
    let samba = Samba::shared();
    std::fs::write(
        samba.share_path(RO_SHARE).join("present.txt"),
        b"read only data",
    )
    .unwrap();
    let (_, _, tree) = connect_with(samba, RO_SHARE, ClientConfig::default()).await;
    let (b, _) = tree.read_file("present.txt", 4096).await.unwrap();
    assert_eq!(&b[..], b"read only data");
    let err = tree
        .open("new.txt", &OpenOptions::create_write())
        .await
        .unwrap_err();
    println!("[read_only_share] {err}");
    let st = err.status();
    assert!(
        st == Some(NtStatus::ACCESS_DENIED) || st == Some(NtStatus::MEDIA_WRITE_PROTECTED),
        "{err:?}"
    );
    assert!(!samba.share_path(RO_SHARE).join("new.txt").exists());
}

#[tokio::test]
async fn anonymous_session() {
    let samba = Samba::shared();
    let client = Client::connect(samba.host(), samba.port(), ClientConfig::default())
        .await
        .unwrap();
    let guest = smb_core::Credentials {
        guest: true,
        ..smb_core::Credentials::default()
    };
    match client.session_setup(&guest).await {
        Ok(s) => {
            println!(
                "[anonymous] session is_guest={} signing={:?}",
                s.is_guest(),
                s.session_signing_algorithm()
            );
            assert!(s.is_guest());
            assert_eq!(s.session_signing_algorithm(), None);
            // The share only admits the test user.
            let err = s.tree_connect(SHARE).await.unwrap_err();
            println!("[anonymous] tree connect: {err}");
            assert!(err.status().is_some(), "{err:?}");
        }
        Err(e) => {
            println!("[anonymous] refused: {e}");
            assert!(matches!(e, Error::Auth(_)), "{e:?}");
        }
    }
}
