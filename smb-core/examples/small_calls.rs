//! Allocation and instruction probe of the small-file path: N signed
//! `read_file` calls (one CREATE+READ+CLOSE compound each) and N signed
//! `write_file` calls (CREATE+SET_INFO+WRITE+CLOSE) of a 20,000-byte file,
//! one after the other, against the fixture's Samba. Made to run under
//! valgrind, whose summary counts the heap blocks: run it with N and with
//! 0 and divide the difference by 2N (issue 15):
//!
//! ```text
//! cargo build -p smb-core --example small_calls
//! valgrind target/debug/examples/small_calls 0    2>&1 | grep 'total heap usage'
//! valgrind target/debug/examples/small_calls 500  2>&1 | grep 'total heap usage'
//! valgrind --tool=callgrind target/debug/examples/small_calls 500   # instructions
//! ```
//!
//! `--encrypt` requires encryption (the fixture then requires it too).

use bytes::Bytes;
use smb_core::{Client, ClientConfig, Credentials, EncryptionMode, FileTimes};
use smb_fixture::{Samba, ServerConfig, PASSWORD, SHARE, USER};

fn main() {
    let mut n = 200u32;
    let mut encrypt = false;
    for a in std::env::args().skip(1) {
        if a == "--encrypt" {
            encrypt = true;
        } else if let Ok(v) = a.parse() {
            n = v;
        } else {
            eprintln!("usage: small_calls [N] [--encrypt]");
            std::process::exit(2);
        }
    }
    let config = if encrypt {
        ServerConfig::default().global("smb encrypt = required")
    } else {
        ServerConfig::default()
    };
    let samba = Samba::start(&config).expect("start smbd");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut config = ClientConfig::default();
        if encrypt {
            config.encryption = EncryptionMode::Required;
        }
        let client = Client::connect(samba.host(), samba.port(), config)
            .await
            .expect("connect");
        let creds = Credentials {
            user: USER.into(),
            password: PASSWORD.to_string().into(),
            ..Credentials::default()
        };
        let session = client.session_setup(&creds).await.expect("session setup");
        let tree = session.tree_connect(SHARE).await.expect("tree connect");
        let (dir, _local) = samba.unique_dir(SHARE, "small-calls");
        let path = format!("{dir}/f.bin");
        let data = Bytes::from(vec![7u8; 20_000]);
        tree.write_file(&path, data.clone(), FileTimes::default())
            .await
            .expect("write_file");
        for _ in 0..n {
            let (got, _) = tree.read_file(&path, 65536).await.expect("read_file");
            assert_eq!(got.len(), data.len());
        }
        for _ in 0..n {
            tree.write_file(&path, data.clone(), FileTimes::default())
                .await
                .expect("write_file");
        }
        println!("{n} read_file + {n} write_file calls done");
    });
}
