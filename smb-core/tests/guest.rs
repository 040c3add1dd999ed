//! Guest and anonymous sessions against a Samba that maps bad passwords to
//! guest (`map to guest = Bad Password`): a guest session nobody asked for
//! is refused; one asked for (`Credentials::guest`) works, unsigned, and is
//! refused when the configuration requires signing.

mod common;

use common::creds;
use smb_core::{Client, ClientConfig, Credentials, Error};
use smb_fixture::{Samba, ServerConfig, GUEST_SHARE};

fn mapping_server() -> &'static Samba {
    Samba::get(
        &ServerConfig::new()
            .global("map to guest = Bad Password")
            .guest_share(),
    )
}

#[tokio::test]
async fn a_wrong_password_made_guest_is_refused() {
    let s = mapping_server();
    for (user, password) in [(creds().user, "wrong"), ("nosuchuser".into(), "x")] {
        let client = Client::connect(s.host(), s.port(), ClientConfig::default())
            .await
            .unwrap();
        let c = Credentials {
            user: user.clone(),
            password: password.to_string().into(),
            ..Credentials::default()
        };
        let err = client.session_setup(&c).await.unwrap_err();
        println!("[guest_refused] {user}: {err}");
        assert!(
            matches!(err, Error::Auth(ref m) if m.contains("logged us on as a guest")
                && m.contains("--guest")),
            "{user}: {err:?}"
        );
    }
    // The right password is still a normal, signed session.
    let mut config = ClientConfig::default();
    config.sign = true;
    let client = Client::connect(s.host(), s.port(), config).await.unwrap();
    let session = client.session_setup(&creds()).await.unwrap();
    assert!(!session.is_guest());
    assert!(session.signing_algorithm().is_some());
}

#[tokio::test]
async fn guest_when_asked_for_is_unsigned_and_refused_under_signing() {
    let s = mapping_server();
    let guest = Credentials {
        guest: true,
        ..Credentials::default()
    };
    let client = Client::connect(s.host(), s.port(), ClientConfig::default())
        .await
        .unwrap();
    let session = client.session_setup(&guest).await.unwrap();
    assert!(session.is_guest());
    assert_eq!(session.signing_algorithm(), None);
    let tree = session.tree_connect(GUEST_SHARE).await.unwrap();
    tree.stat("").await.unwrap();
    session.echo().await.unwrap();

    let mut config = ClientConfig::default();
    config.sign = true;
    let client = Client::connect(s.host(), s.port(), config).await.unwrap();
    let err = client.session_setup(&guest).await.unwrap_err();
    assert!(
        matches!(err, Error::Security(ref m) if m.contains("guest")),
        "{err:?}"
    );
}
