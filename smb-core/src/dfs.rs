//! DFS: where a path under a DFS link leads (MS-DFSC 3.1.4.3, MS-SMB2
//! 3.2.4.20.2 / 2.2.31 FSCTL_DFS_GET_REFERRALS).
//!
//! A path that crosses a link on a DFS root share fails with
//! STATUS_PATH_NOT_COVERED; [`Tree::dfs_target`] then asks the root's
//! server for a referral for `\server\share\path` and returns the first
//! target with the rest of the path below it. The caller connects to that
//! server and share itself (it knows the port and credentials). Requests
//! never carry SMB2_FLAGS_DFS_OPERATIONS: paths stay share-relative on
//! the target, so a link met *inside* a tree being copied still fails
//! with STATUS_PATH_NOT_COVERED.

use crate::conn::new_message;
use crate::error::{Error, Result};
use crate::proto;
use crate::tree::Tree;
use crate::wire::create::FileId;
use crate::wire::dfs::{self, ReferralResponse};
use crate::wire::ioctl::{self, IoctlResponse};
use crate::wire::{Command, NtStatus};

/// Where a path under a DFS link leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DfsTarget {
    /// The target server, as the referral names it (a host name or address).
    pub server: String,
    /// The target share.
    pub share: String,
    /// The path on the target share (`\`-separated; empty: its root).
    pub path: String,
    /// The DFS path the referral covers, as the server sent it
    /// (`\server\share\link`).
    pub link: String,
}

impl std::fmt::Display for DfsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\\\\{}\\{}", self.server, self.share)?;
        if !self.path.is_empty() {
            write!(f, "\\{}", self.path)?;
        }
        Ok(())
    }
}

impl Tree {
    /// When `path` lies under a DFS link on this share (the server answers
    /// STATUS_PATH_NOT_COVERED for it), the target it refers to; `None`
    /// for an ordinary path, including one that does not exist.
    ///
    /// One CREATE+CLOSE to find out, and one FSCTL_DFS_GET_REFERRALS
    /// (FileId all ones, MS-SMB2 3.2.4.20.2) when it is a link. A referral
    /// without a usable target, or one that covers more of the path than
    /// was asked, is an [`Error::Protocol`].
    pub async fn dfs_target(&self, path: &str) -> Result<Option<DfsTarget>> {
        let rel =
            proto::wire_path(path).map_err(|e| Error::InvalidArgument(format!("{path:?}: {e}")))?;
        if rel.is_empty() {
            return Ok(None);
        }
        match self.stat(&rel).await {
            Err(Error::Status {
                status: NtStatus::PATH_NOT_COVERED,
                ..
            }) => {}
            _ => return Ok(None),
        }
        let server = &self.inner.session.inner.client.inner.server_name;
        let request = format!("\\{server}\\{}\\{rel}", self.share());
        let out = self.referral(&request).await?;
        let resp = ReferralResponse::decode(&out)?;
        target(&request, &resp).map(Some)
    }

    /// FSCTL_DFS_GET_REFERRALS for `request`: the output buffer.
    async fn referral(&self, request: &str) -> Result<Vec<u8>> {
        let input = dfs::encode_referral_request(request);
        let max_out = self.io_limits().transact.min(64 * 1024);
        let mut w = new_message();
        ioctl::encode_ioctl(
            &mut w,
            ioctl::FSCTL_DFS_GET_REFERRALS,
            FileId::RELATED,
            &input,
            max_out,
        );
        let mut req = self.outgoing(Command::IOCTL, w);
        req.expect_len = max_out as usize;
        let t = self.current().await?;
        let resp = t.call1(req).await?;
        resp.check(&[])?;
        Ok(IoctlResponse::decode(&resp.msg)?.output.to_vec())
    }
}

/// The target `resp` gives for `request`: its first entry's network
/// address, with what the referral did not consume of `request` below it.
fn target(request: &str, resp: &ReferralResponse) -> Result<DfsTarget> {
    let bad = |why: &str| Error::Protocol(format!("DFS referral for {request}: {why}"));
    let units: Vec<u16> = request.encode_utf16().collect();
    let consumed = usize::from(resp.path_consumed / 2);
    if consumed == 0 || consumed > units.len() {
        return Err(bad("PathConsumed outside the path"));
    }
    let rest = String::from_utf16(&units[consumed..])
        .map_err(|_| bad("PathConsumed splits a character"))?;
    let link = String::from_utf16_lossy(&units[..consumed]);
    let addr = resp
        .referrals
        .iter()
        .map(|r| r.network_address.as_str())
        .find(|a| !a.trim_matches('\\').is_empty())
        .ok_or_else(|| bad("no target"))?;
    let mut parts = addr.split('\\').filter(|c| !c.is_empty());
    let (Some(server), Some(share)) = (parts.next(), parts.next()) else {
        return Err(bad("the target names no share"));
    };
    let path = parts
        .chain(rest.split('\\').filter(|c| !c.is_empty()))
        .collect::<Vec<_>>()
        .join("\\");
    // Validated like any path we send: no `..`, NUL or `:`.
    let path = proto::wire_path(&path).map_err(|e| bad(&e.to_string()))?;
    if share.contains(['/', '\0', ':']) || server.contains(['/', '\0']) {
        return Err(bad("malformed target"));
    }
    Ok(DfsTarget {
        server: server.to_string(),
        share: share.to_string(),
        path,
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dfs::{Referral, HEADER_STORAGE_SERVERS};

    fn resp(consumed: &str, addr: &str) -> ReferralResponse {
        ReferralResponse {
            path_consumed: u16::try_from(consumed.encode_utf16().count() * 2).unwrap(),
            header_flags: HEADER_STORAGE_SERVERS,
            referrals: vec![Referral {
                version: 3,
                server_type: 0,
                entry_flags: 0,
                ttl: 300,
                dfs_path: consumed.into(),
                network_address: addr.into(),
            }],
        }
    }

    #[test]
    fn the_rest_of_the_path_goes_below_the_target() {
        let req = "\\srv\\root\\dfs\\link\\a\\b.txt";
        let t = target(req, &resp("\\srv\\root\\dfs\\link", "\\other\\data\\sub")).unwrap();
        assert_eq!(
            t,
            DfsTarget {
                server: "other".into(),
                share: "data".into(),
                path: "sub\\a\\b.txt".into(),
                link: "\\srv\\root\\dfs\\link".into(),
            }
        );
        assert_eq!(t.to_string(), "\\\\other\\data\\sub\\a\\b.txt");
        // The link itself: the target's root.
        let t = target("\\srv\\root\\l", &resp("\\srv\\root\\l", "\\127.0.0.1\\ro")).unwrap();
        assert_eq!((t.share.as_str(), t.path.as_str()), ("ro", ""));
        assert_eq!(t.to_string(), "\\\\127.0.0.1\\ro");
    }

    #[test]
    fn hostile_referrals_are_errors() {
        let req = "\\srv\\root\\l\\x";
        // Consumes more than was asked, or nothing.
        assert!(target(req, &resp("\\srv\\root\\l\\x\\more", "\\a\\b")).is_err());
        assert!(target(req, &resp("", "\\a\\b")).is_err());
        // No share, no target, a `..` in the target.
        assert!(target(req, &resp("\\srv\\root\\l", "\\a")).is_err());
        assert!(target(req, &resp("\\srv\\root\\l", "\\\\")).is_err());
        assert!(target(req, &resp("\\srv\\root\\l", "\\a\\b\\..\\c")).is_err());
        let mut r = resp("\\srv\\root\\l", "\\a\\b");
        r.referrals.clear();
        assert!(target(req, &r).is_err());
    }
}
