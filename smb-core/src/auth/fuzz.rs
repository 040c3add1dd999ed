//! Fuzz entry points of the auth layer: each takes arbitrary bytes from a
//! (possibly hostile) server and must never panic. The `fuzz/` targets
//! `ntlm_challenge` and `spnego` call them, and `tests::replay_seeds`
//! replays `fuzz/seeds/<target>/*` through them on stable (MS-NLMP 2.2.1.2,
//! MS-SPNG 2.2).

use super::ntlm::{self, Challenge};
use super::spnego::{NegState, NegTokenInit, NegTokenResp, NTLMSSP_OID};
use super::Authenticator;

/// A raw NTLM CHALLENGE_MESSAGE: decoded, its AV pairs parsed and rewritten,
/// and fed through a full [`Authenticator`] exchange inside a NegTokenResp.
pub fn ntlm_challenge(data: &[u8]) {
    if let Ok(c) = Challenge::decode(data) {
        let _ = c.timestamp();
        let _ = ntlm::parse_av_pairs(c.target_info);
        let _ = ntlm::client_target_info(c.target_info, true);
    }
    let token = NegTokenResp {
        neg_state: Some(NegState::AcceptIncomplete),
        supported_mech: Some(NTLMSSP_OID),
        response_token: Some(data),
        mech_list_mic: None,
    }
    .encode();
    exchange(&token);
}

/// A raw SPNEGO token: decoded as NegTokenInit and NegTokenResp, and offered
/// to an [`Authenticator`] at each of its three steps.
pub fn spnego(data: &[u8]) {
    if let Ok(init) = NegTokenInit::decode(data) {
        let _ = init.offers_ntlmssp();
    }
    let _ = NegTokenResp::decode(data);
    let _ = Authenticator::new("u", "d", "p", "w").initial_token(data);
    exchange(data);
}

/// SESSION_SETUP responses, as a server would send them, driving a
/// [`crate::proto::session::Handshake`] with NTLMv2 leg after leg: `data`
/// is a list of (u16 LE length, message) records, each one response.
pub fn session_setup_legs(data: &[u8]) {
    use crate::proto::session::{Handshake, Progress, SetupParams};
    use crate::wire::{Dialect, Writer};
    let params = SetupParams {
        dialect: Dialect::SMB3_1_1,
        signing: 2,
        cipher: Some(2),
        sign_required: false,
        previous_session_id: 0,
    };
    let mech = super::Ntlm::new(
        Authenticator::new("u", "d", "p", "w"),
        &[],
        1,
        [1; 8],
        [2; 16],
    );
    let mut w = Writer::new();
    w.zeros(64);
    let Ok(mut hs) = Handshake::start(Box::new(mech), None, params, &mut w) else {
        return;
    };
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (msg, more) = tail.split_at(n);
        rest = more;
        let mut w = Writer::new();
        w.zeros(64);
        match hs.handle_response(msg, false, 0, &mut w) {
            Ok(Progress::Send(next, _)) => hs = next,
            Ok(Progress::Established(_)) | Err(_) => return,
        }
    }
}

/// Runs `challenge_token` through an authenticated and an anonymous client;
/// when accepted, `challenge_token` is also offered as the final token.
fn exchange(challenge_token: &[u8]) {
    for mut a in [
        Authenticator::new("user", "DOM", "pw", "WS"),
        Authenticator::anonymous(),
    ] {
        if a.initial_token(&[]).is_err() {
            continue;
        }
        if a.handle_challenge(challenge_token, 1, [1; 8], [2; 16])
            .is_ok()
        {
            let _ = a.session_key();
            let _ = a.handle_final(challenge_token);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every seed under `fuzz/seeds/<target>`, plus each truncated prefix
    /// and single-bit flips of the first bytes, through the entry point.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            for len in 0..=data.len() {
                entry(&data[..len]);
            }
            for i in 0..data.len().min(64) {
                let mut d = data.clone();
                d[i] ^= 0x80;
                entry(&d);
            }
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            super::ntlm_challenge(&data);
            super::spnego(&data);
        }
    }

    #[test]
    fn replay_seeds() {
        replay("ntlm_challenge", super::ntlm_challenge);
        replay("spnego", super::spnego);
    }
}
