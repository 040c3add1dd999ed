//! smbcp: a robocopy-style copier for SMB2/3 shares.

fn main() {
    println!("smbcp {}", env!("CARGO_PKG_VERSION"));
}
