//! Kerberos logons against a real Samba AD domain controller (the
//! `smb_fixture::dc` fixture): a ticket from `kinit` in a private
//! credential cache, a keytab, a password; signing and encryption keyed by
//! the Kerberos session key on 3.1.1 and 3.0; a reconnect that logs on with
//! Kerberos again; and the refusals: a wrong password, a stale keytab, a
//! standalone server with `required`.

mod common;

use std::sync::OnceLock;

use bytes::Bytes;
use smb_core::{
    Client, ClientConfig, Credentials, Dialect, EncryptionMode, FileTimes, KerberosConfig,
    KerberosSource,
};
use smb_fixture::dc::{Dc, ENC_SHARE, KPASSWORD, KUSER, REALM, SHARE, STALE_USER};
use smb_fixture::{FaultProxy, Samba};

/// The DC, with KRB5_CONFIG and a private KRB5CCNAME (holding a ticket
/// from kinit) set once for this process.
fn dc() -> &'static Dc {
    static ENV: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dc = Dc::shared();
    ENV.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let cc = t.path().join("ccache");
        dc.kinit(&cc, "10h").unwrap();
        // Set once, before any Kerberos call reads them.
        std::env::set_var("KRB5_CONFIG", dc.krb5_conf());
        std::env::set_var("KRB5CCNAME", format!("FILE:{}", cc.display()));
        t
    });
    dc
}

fn kerberos(source: KerberosSource, password: &str) -> Credentials {
    Credentials {
        user: KUSER.into(),
        domain: REALM.into(),
        password: password.to_string().into(),
        kerberos: Some(KerberosConfig {
            source,
            spn: None,
            required: true,
        }),
        ..Credentials::default()
    }
}

async fn round_trip(dc: &Dc, config: ClientConfig, creds: &Credentials, share: &str) -> Client {
    let client = Client::connect(dc.host(), dc.port(), config).await.unwrap();
    let session = client.session_setup(creds).await.unwrap();
    assert_eq!(session.mechanism(), "Kerberos");
    assert!(!session.is_guest());
    let tree = session.tree_connect(share).await.unwrap();
    let (dir, local) = dc.unique_dir(share, "krb");
    let data = Bytes::from(common::pattern(300_000, 7));
    tree.write_file(&format!("{dir}/f.bin"), data.clone(), FileTimes::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(local.join("f.bin")).unwrap(), data);
    let (back, _) = tree
        .read_file(&format!("{dir}/f.bin"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(back, data);
    client
}

#[tokio::test]
async fn ticket_from_kinit_signs_every_request() {
    let dc = dc();
    let mut config = ClientConfig::default();
    config.sign = true;
    let client = round_trip(dc, config, &kerberos(KerberosSource::Cache, ""), SHARE).await;
    let info = client.negotiated();
    assert_eq!(info.dialect, Dialect::SMB3_1_1);
}

#[tokio::test]
async fn keytab_and_password_log_on_and_encrypt() {
    let dc = dc();
    let keytab = dc.keytab().display().to_string();
    let mut config = ClientConfig::default();
    config.encryption = EncryptionMode::Required;
    round_trip(
        dc,
        config.clone(),
        &kerberos(KerberosSource::Keytab(keytab), ""),
        SHARE,
    )
    .await;
    round_trip(
        dc,
        config,
        &kerberos(KerberosSource::Password, KPASSWORD),
        ENC_SHARE,
    )
    .await;
}

/// SMB 3.0 (no preauth hash: the keys come from the session key alone),
/// signed with AES-CMAC and encrypted with AES-CCM.
#[tokio::test]
async fn smb_3_0_signs_and_encrypts_with_the_kerberos_key() {
    let dc = dc();
    let mut config = ClientConfig::default();
    config.max_dialect = Dialect::SMB3_0;
    config.sign = true;
    let client = round_trip(dc, config, &kerberos(KerberosSource::Cache, ""), ENC_SHARE).await;
    assert_eq!(client.negotiated().dialect, Dialect::SMB3_0);
}

#[tokio::test]
async fn wrong_password_and_stale_keytab_are_refused_clearly() {
    let dc = dc();
    let client = Client::connect(dc.host(), dc.port(), ClientConfig::default())
        .await
        .unwrap();
    let err = client
        .session_setup(&kerberos(KerberosSource::Password, "not-the-password"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("wrong password"), "{msg}");

    let mut stale = kerberos(
        KerberosSource::Keytab(dc.stale_keytab().display().to_string()),
        "",
    );
    stale.user = STALE_USER.into();
    let client = Client::connect(dc.host(), dc.port(), ClientConfig::default())
        .await
        .unwrap();
    let err = client.session_setup(&stale).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("wrong password or key"), "{msg}");

    let mut unknown = kerberos(KerberosSource::Password, KPASSWORD);
    unknown.user = "nobody-here".into();
    let client = Client::connect(dc.host(), dc.port(), ClientConfig::default())
        .await
        .unwrap();
    let err = client.session_setup(&unknown).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("user name"), "{msg}");
}

#[tokio::test]
async fn an_unknown_service_principal_is_named() {
    let dc = dc();
    let mut creds = kerberos(KerberosSource::Cache, "");
    creds.kerberos.as_mut().unwrap().spn = Some("cifs/no-such-host.smbcp.test".into());
    let client = Client::connect(dc.host(), dc.port(), ClientConfig::default())
        .await
        .unwrap();
    let err = client.session_setup(&creds).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-host") && msg.contains("--spn"),
        "{msg}"
    );
}

/// A standalone server offers no Kerberos: `required` fails saying so (no
/// NTLM behind the caller's back); not required, NTLMv2 logs on.
#[tokio::test]
async fn standalone_server_required_fails_auto_falls_back() {
    dc();
    let samba = Samba::shared();
    let client = Client::connect(samba.host(), samba.port(), ClientConfig::default())
        .await
        .unwrap();
    let mut creds = kerberos(KerberosSource::Cache, smb_fixture::PASSWORD);
    creds.user = smb_fixture::USER.into();
    creds.domain = String::new();
    let err = client.session_setup(&creds).await.unwrap_err();
    assert!(err.to_string().contains("does not offer Kerberos"), "{err}");

    creds.kerberos.as_mut().unwrap().required = false;
    let client = Client::connect(samba.host(), samba.port(), ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds).await.unwrap();
    assert_eq!(session.mechanism(), "NTLMv2");
}

/// A cut connection: the session logs on again by itself, with Kerberos
/// (a new AP-REQ), and the tree and files go on.
#[tokio::test]
async fn reconnect_logs_on_with_kerberos_again() {
    let dc = dc();
    let proxy = FaultProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], dc.port())));
    // The SPN of the server, not of the proxy's port.
    let mut creds = kerberos(KerberosSource::Cache, "");
    creds.kerberos.as_mut().unwrap().spn = Some(format!("cifs/{}", smb_fixture::dc::DC_HOST));
    let client = Client::connect("127.0.0.1", proxy.port(), ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&creds).await.unwrap();
    let tree = session.tree_connect(SHARE).await.unwrap();
    let (dir, local) = dc.unique_dir(SHARE, "krb-reconnect");
    let data = Bytes::from(common::pattern(100_000, 3));
    tree.write_file(&format!("{dir}/a.bin"), data.clone(), FileTimes::default())
        .await
        .unwrap();
    let old = session.id();
    proxy.cut_now();
    let err = tree.stat(&format!("{dir}/a.bin")).await.unwrap_err();
    assert_eq!(err.action(), smb_core::Action::Reconnect, "{err}");
    client.reconnect(1).await.unwrap();
    tree.write_file(&format!("{dir}/b.bin"), data.clone(), FileTimes::default())
        .await
        .unwrap();
    assert_ne!(session.id(), old, "a new logon");
    assert_eq!(session.mechanism(), "Kerberos");
    assert_eq!(proxy.connections(), 2);
    assert_eq!(std::fs::read(local.join("b.bin")).unwrap(), data);
}
