//! SPNEGO tokens (RFC 4178 section 4.2, MS-SPNG 2.2): the GSS-API
//! InitialContextToken wrapping a NegTokenInit (RFC 2743 section 3.1), and the
//! bare NegTokenResp of the later legs.
//!
//! Only what an NTLM-only client needs is modelled; unknown optional fields
//! are skipped. MS-SPNG 2.2.1 NegTokenInit2 (the server's hint in the
//! NEGOTIATE response) decodes as a NegTokenInit whose `[3]` field is
//! `negHints` instead of `mechListMIC`: it is skipped either way.

use super::der::{tlv, write_tlv, DerReader};
use super::AuthError;

/// DER contents of the SPNEGO OID 1.3.6.1.5.5.2.
pub const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// DER contents of the NTLMSSP OID 1.3.6.1.4.1.311.2.2.10 (MS-NLMP 1.9).
pub const NTLMSSP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// DER contents of the Kerberos 5 OID 1.2.840.113554.1.2.2 (RFC 4121).
pub const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// DER contents of Microsoft's Kerberos 5 OID 1.2.840.48018.1.2.2 (MS-SPNG 1.9).
pub const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

const TAG_APPLICATION_0: u8 = 0x60;
const TAG_OID: u8 = 0x06;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_ENUMERATED: u8 = 0x0a;
const TAG_SEQUENCE: u8 = 0x30;
const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// The `negState` of a NegTokenResp (RFC 4178 section 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegState {
    /// `accept-completed` (0): authentication succeeded.
    AcceptCompleted,
    /// `accept-incomplete` (1): more legs follow.
    AcceptIncomplete,
    /// `reject` (2): the acceptor refused.
    Reject,
    /// `request-mic` (3): the acceptor wants a mechListMIC.
    RequestMic,
}

impl NegState {
    fn from_u8(v: u8) -> Result<Self, AuthError> {
        Ok(match v {
            0 => Self::AcceptCompleted,
            1 => Self::AcceptIncomplete,
            2 => Self::Reject,
            3 => Self::RequestMic,
            _ => return Err(AuthError::Malformed("SPNEGO: unknown negState")),
        })
    }
}

/// A decoded NegTokenInit (or NegTokenInit2); borrows from the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NegTokenInit<'a> {
    /// The DER contents of each offered mechanism OID, in preference order.
    pub mech_types: Vec<&'a [u8]>,
    /// The optimistic mechanism token, if any.
    pub mech_token: Option<&'a [u8]>,
}

impl<'a> NegTokenInit<'a> {
    /// Decodes a GSS-API InitialContextToken carrying a SPNEGO NegTokenInit.
    pub fn decode(token: &'a [u8]) -> Result<Self, AuthError> {
        let mut outer = DerReader::new(token);
        let app = outer.read(TAG_APPLICATION_0, "SPNEGO: expected [APPLICATION 0]")?;
        let mut app = DerReader::new(app);
        if app.read(TAG_OID, "SPNEGO: expected thisMech")? != SPNEGO_OID {
            return Err(AuthError::Unsupported("GSS-API mechanism is not SPNEGO"));
        }
        let init = app.read(ctx(0), "SPNEGO: expected negTokenInit")?;
        let seq = DerReader::new(init).read(TAG_SEQUENCE, "SPNEGO: expected NegTokenInit")?;
        let mut fields = DerReader::new(seq);
        let mut out = Self::default();
        if let Some(types) = fields.read_optional(ctx(0))? {
            let list = DerReader::new(types).read(TAG_SEQUENCE, "SPNEGO: expected MechTypeList")?;
            let mut list = DerReader::new(list);
            while !list.is_empty() {
                out.mech_types
                    .push(list.read(TAG_OID, "SPNEGO: expected MechType")?);
            }
        }
        // [1] reqFlags is ignored by everyone (MS-SPNG 3.1.5.1).
        fields.read_optional(ctx(1))?;
        if let Some(t) = fields.read_optional(ctx(2))? {
            out.mech_token =
                Some(DerReader::new(t).read(TAG_OCTET_STRING, "SPNEGO: expected mechToken")?);
        }
        // [3] mechListMIC / negHints and anything later: skipped, but well-formed.
        while !fields.is_empty() {
            fields.read_any()?;
        }
        Ok(out)
    }

    /// True when NTLMSSP is among the offered mechanisms.
    pub fn offers_ntlmssp(&self) -> bool {
        self.mech_types.contains(&NTLMSSP_OID)
    }

    /// True when Kerberos 5 (the RFC 4121 OID or Microsoft's) is offered.
    pub fn offers_kerberos(&self) -> bool {
        self.mech_types
            .iter()
            .any(|m| *m == KRB5_OID || *m == MS_KRB5_OID)
    }
}

/// A decoded NegTokenResp; borrows from the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NegTokenResp<'a> {
    /// `[0] negState`.
    pub neg_state: Option<NegState>,
    /// `[1] supportedMech`: DER contents of the OID.
    pub supported_mech: Option<&'a [u8]>,
    /// `[2] responseToken`.
    pub response_token: Option<&'a [u8]>,
    /// `[3] mechListMIC`.
    pub mech_list_mic: Option<&'a [u8]>,
}

impl<'a> NegTokenResp<'a> {
    /// Decodes a `[1] NegTokenResp` (it has no GSS-API wrapper).
    pub fn decode(token: &'a [u8]) -> Result<Self, AuthError> {
        let mut outer = DerReader::new(token);
        let resp = outer.read(ctx(1), "SPNEGO: expected negTokenResp")?;
        let seq = DerReader::new(resp).read(TAG_SEQUENCE, "SPNEGO: expected NegTokenResp")?;
        let mut fields = DerReader::new(seq);
        let mut out = Self::default();
        if let Some(s) = fields.read_optional(ctx(0))? {
            let v = DerReader::new(s).read(TAG_ENUMERATED, "SPNEGO: expected negState")?;
            let &[v] = v else {
                return Err(AuthError::Malformed("SPNEGO: negState length"));
            };
            out.neg_state = Some(NegState::from_u8(v)?);
        }
        if let Some(m) = fields.read_optional(ctx(1))? {
            out.supported_mech =
                Some(DerReader::new(m).read(TAG_OID, "SPNEGO: expected supportedMech")?);
        }
        if let Some(t) = fields.read_optional(ctx(2))? {
            out.response_token =
                Some(DerReader::new(t).read(TAG_OCTET_STRING, "SPNEGO: expected responseToken")?);
        }
        if let Some(t) = fields.read_optional(ctx(3))? {
            out.mech_list_mic =
                Some(DerReader::new(t).read(TAG_OCTET_STRING, "SPNEGO: expected mechListMIC")?);
        }
        if !fields.is_empty() {
            return Err(AuthError::Malformed("SPNEGO: trailing NegTokenResp fields"));
        }
        Ok(out)
    }

    /// Encodes this token as `[1] NegTokenResp`.
    pub fn encode(&self) -> Vec<u8> {
        let mut seq = Vec::new();
        if let Some(s) = self.neg_state {
            let v = match s {
                NegState::AcceptCompleted => 0,
                NegState::AcceptIncomplete => 1,
                NegState::Reject => 2,
                NegState::RequestMic => 3,
            };
            write_tlv(&mut seq, ctx(0), &tlv(TAG_ENUMERATED, &[v]));
        }
        if let Some(m) = self.supported_mech {
            write_tlv(&mut seq, ctx(1), &tlv(TAG_OID, m));
        }
        if let Some(t) = self.response_token {
            write_tlv(&mut seq, ctx(2), &tlv(TAG_OCTET_STRING, t));
        }
        if let Some(m) = self.mech_list_mic {
            write_tlv(&mut seq, ctx(3), &tlv(TAG_OCTET_STRING, m));
        }
        tlv(ctx(1), &tlv(TAG_SEQUENCE, &seq))
    }
}

/// The DER `MechTypeList` offering only NTLMSSP: the bytes a mechListMIC
/// covers (RFC 4178 section 5, MS-SPNG 3.1.5.1).
pub fn ntlm_mech_type_list() -> Vec<u8> {
    tlv(TAG_SEQUENCE, &tlv(TAG_OID, NTLMSSP_OID))
}

/// The DER `MechTypeList` offering only Kerberos 5 (RFC 4121 OID).
pub fn krb5_mech_type_list() -> Vec<u8> {
    tlv(TAG_SEQUENCE, &tlv(TAG_OID, KRB5_OID))
}

/// Encodes an InitialContextToken with a NegTokenInit offering `mech_type_list`
/// (a DER MechTypeList) and carrying `mech_token`.
pub fn encode_init(mech_type_list: &[u8], mech_token: &[u8]) -> Vec<u8> {
    let mut seq = tlv(ctx(0), mech_type_list);
    write_tlv(&mut seq, ctx(2), &tlv(TAG_OCTET_STRING, mech_token));
    let mut app = tlv(TAG_OID, SPNEGO_OID);
    write_tlv(&mut app, ctx(0), &tlv(TAG_SEQUENCE, &seq));
    tlv(TAG_APPLICATION_0, &app)
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    /// A NegTokenInit2 in the shape Samba sends in the SMB2 NEGOTIATE
    /// response: mechTypes = [NTLMSSP] and the RFC 4178 "please ignore" negHints.
    const SAMBA_INIT2: &[u8] = &hex!(
        "604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa32a3028a0261b246e6f745f646566696e65645f696e5f5246433431373840706c656173655f69676e6f7265"
    );

    #[test]
    fn encode_init_matches_known_bytes() {
        let tok = encode_init(&ntlm_mech_type_list(), b"NTLMSSP\0");
        assert_eq!(
            tok,
            hex!("602806062b0601050502a01e301ca00e300c060a2b06010401823702020aa20a04084e544c4d53535000")
        );
        let init = NegTokenInit::decode(&tok).unwrap();
        assert_eq!(init.mech_types, vec![NTLMSSP_OID]);
        assert_eq!(init.mech_token, Some(&b"NTLMSSP\0"[..]));
        assert!(init.offers_ntlmssp());
    }

    #[test]
    fn decodes_samba_neg_token_init2() {
        let init = NegTokenInit::decode(SAMBA_INIT2).unwrap();
        assert!(init.offers_ntlmssp());
        assert_eq!(init.mech_token, None);
    }

    #[test]
    fn resp_round_trip() {
        let resp = NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: Some(NTLMSSP_OID),
            response_token: Some(&[1, 2, 3]),
            mech_list_mic: Some(&[9; 16]),
        };
        let enc = resp.encode();
        assert_eq!(NegTokenResp::decode(&enc).unwrap(), resp);
        let empty = NegTokenResp::default();
        assert_eq!(empty.encode(), hex!("a1023000"));
        assert_eq!(NegTokenResp::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn truncated_tokens_are_errors() {
        let resp = NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            supported_mech: Some(NTLMSSP_OID),
            response_token: Some(&[7; 200]),
            mech_list_mic: Some(&[9; 16]),
        }
        .encode();
        for n in 0..resp.len() {
            assert!(NegTokenResp::decode(&resp[..n]).is_err(), "resp prefix {n}");
        }
        let init = encode_init(&ntlm_mech_type_list(), &[5; 300]);
        for n in 0..init.len() {
            assert!(NegTokenInit::decode(&init[..n]).is_err(), "init prefix {n}");
        }
        for n in 0..SAMBA_INIT2.len() {
            assert!(
                NegTokenInit::decode(&SAMBA_INIT2[..n]).is_err(),
                "init2 prefix {n}"
            );
        }
    }
}
