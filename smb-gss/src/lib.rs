//! Kerberos 5 for smb-core through the system's MIT GSS-API (RFC 2743,
//! RFC 2744 C bindings, RFC 4121 for the krb5 mechanism).
//!
//! `libgssapi_krb5.so.2` is opened at run time (dlopen), not linked: the
//! binary builds and runs without it, and only a Kerberos logon needs it
//! (Debian/Ubuntu `libgssapi-krb5-2`, present wherever `krb5-user`, curl or
//! OpenSSH are). MIT then does all of Kerberos: it reads `krb5.conf`
//! (`KRB5_CONFIG`), the credential cache (`KRB5CCNAME`), keytabs, talks to
//! the KDC, builds the AP-REQ and checks the AP-REP. This crate only moves
//! tokens, asks for the session key (the acceptor subkey after mutual
//! authentication, `GSS_C_INQ_SSPI_SESSION_KEY`) and computes or checks
//! MICs for SPNEGO's mechListMIC.
//!
//! It is the one crate of the workspace with `unsafe`: each block is one
//! C call whose pointers point at values this file owns for the call.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CString};
use std::fmt;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use zeroize::Zeroizing;

type OmUint32 = u32;

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct OidDesc {
    length: OmUint32,
    elements: *mut c_void,
}

#[repr(C)]
struct OidSetDesc {
    count: usize,
    elements: *mut OidDesc,
}

#[repr(C)]
struct BufferSetDesc {
    count: usize,
    elements: *mut BufferDesc,
}

#[repr(C)]
struct KeyValueElement {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: OmUint32,
    elements: *const KeyValueElement,
}

type Name = *mut c_void;
type Cred = *mut c_void;
type Ctx = *mut c_void;

const GSS_C_INITIATE: c_int = 1;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
const GSS_C_REPLAY_FLAG: OmUint32 = 4;
const GSS_C_SEQUENCE_FLAG: OmUint32 = 8;
const GSS_C_INTEG_FLAG: OmUint32 = 32;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
const GSS_S_CREDENTIALS_EXPIRED: OmUint32 = 11 << 16;
const GSS_S_NO_CRED: OmUint32 = 7 << 16;

/// 1.2.840.113554.1.2.2: the Kerberos 5 GSS-API mechanism (RFC 4121).
pub const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// 1.2.840.48018.1.2.2: Microsoft's Kerberos 5 OID (MS-SPNG 1.9), which
/// Windows servers offer and may answer with.
pub const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// 1.2.840.113554.1.2.1.4: GSS_C_NT_HOSTBASED_SERVICE.
const NT_HOSTBASED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
/// 1.2.840.113554.1.2.2.1: GSS_KRB5_NT_PRINCIPAL_NAME.
const NT_KRB5_PRINCIPAL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];
/// 1.2.840.113554.1.2.2.5.5: GSS_C_INQ_SSPI_SESSION_KEY.
const INQ_SESSION_KEY: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x05, 0x05,
];

// MIT krb5 error codes (com_err table krb5, krb5/krb5.h) that a person can act on.
const KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: i64 = -1_765_328_378;
const KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN: i64 = -1_765_328_377;
const KRB5KDC_ERR_KEY_EXP: i64 = -1_765_328_361;
const KRB5KDC_ERR_PREAUTH_FAILED: i64 = -1_765_328_360;
const KRB5KRB_AP_ERR_BAD_INTEGRITY: i64 = -1_765_328_353;
const KRB5KRB_AP_ERR_TKT_EXPIRED: i64 = -1_765_328_352;
const KRB5KRB_AP_ERR_SKEW: i64 = -1_765_328_347;
const KRB5_CC_NOTFOUND: i64 = -1_765_328_243;
const KRB5_KDCREP_SKEW: i64 = -1_765_328_236;
const KRB5_REALM_UNKNOWN: i64 = -1_765_328_230;
const KRB5_KDC_UNREACH: i64 = -1_765_328_228;
const KRB5_KT_NOTFOUND: i64 = -1_765_328_203;
const KRB5_FCC_NOFILE: i64 = -1_765_328_189;
const KRB5_PREAUTH_FAILED: i64 = -1_765_328_174;
const KRB5_REALM_CANT_RESOLVE: i64 = -1_765_328_164;

/// What went wrong, in the terms a person acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `libgssapi_krb5.so.2` could not be loaded.
    NoLibrary,
    /// No credential cache or no ticket in it (`kinit` first).
    NoTicket,
    /// The ticket (or the password) has expired.
    Expired,
    /// The client's and the KDC's or server's clocks differ too much.
    ClockSkew,
    /// The KDC does not know the client principal.
    UnknownClient,
    /// The KDC does not know the service principal (`cifs/<server>`).
    UnknownServer,
    /// No KDC of the realm answered (or the realm is unknown).
    KdcUnreachable,
    /// The password (or key) is wrong.
    WrongPassword,
    /// The keytab has no key for the principal, or does not exist.
    Keytab,
    /// Anything else GSS-API reported.
    Other,
}

/// A GSS-API failure with MIT's own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GssError {
    /// What it means.
    pub kind: ErrorKind,
    /// GSS-API's and the mechanism's messages, joined.
    pub message: String,
}

impl GssError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *const BufferDesc, *const OidDesc, *mut Name) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut Name) -> OmUint32;
type AcquireCred = unsafe extern "C" fn(
    *mut OmUint32,
    Name,
    OmUint32,
    *const OidSetDesc,
    c_int,
    *mut Cred,
    *mut *mut OidSetDesc,
    *mut OmUint32,
) -> OmUint32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut OmUint32,
    Name,
    OmUint32,
    *const OidSetDesc,
    c_int,
    *const KeyValueSet,
    *mut Cred,
    *mut *mut OidSetDesc,
    *mut OmUint32,
) -> OmUint32;
type AcquireCredWithPassword = unsafe extern "C" fn(
    *mut OmUint32,
    Name,
    *const BufferDesc,
    OmUint32,
    *const OidSetDesc,
    c_int,
    *mut Cred,
    *mut *mut OidSetDesc,
    *mut OmUint32,
) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut Cred) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    Cred,
    *mut Ctx,
    Name,
    *const OidDesc,
    OmUint32,
    OmUint32,
    *const c_void,
    *const BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type DeleteSecContext = unsafe extern "C" fn(*mut OmUint32, *mut Ctx, *mut BufferDesc) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32;
type InquireByOid =
    unsafe extern "C" fn(*mut OmUint32, Ctx, *const OidDesc, *mut *mut BufferSetDesc) -> OmUint32;
type ReleaseBufferSet = unsafe extern "C" fn(*mut OmUint32, *mut *mut BufferSetDesc) -> OmUint32;
type GetMic = unsafe extern "C" fn(
    *mut OmUint32,
    Ctx,
    OmUint32,
    *const BufferDesc,
    *mut BufferDesc,
) -> OmUint32;
type VerifyMic = unsafe extern "C" fn(
    *mut OmUint32,
    Ctx,
    *const BufferDesc,
    *const BufferDesc,
    *mut OmUint32,
) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *const OidDesc,
    *mut OmUint32,
    *mut BufferDesc,
) -> OmUint32;

/// The functions of `libgssapi_krb5.so.2` this crate calls.
struct Api {
    import_name: ImportName,
    release_name: ReleaseName,
    acquire_cred: AcquireCred,
    acquire_cred_from: AcquireCredFrom,
    acquire_cred_with_password: AcquireCredWithPassword,
    release_cred: ReleaseCred,
    init_sec_context: InitSecContext,
    delete_sec_context: DeleteSecContext,
    release_buffer: ReleaseBuffer,
    inquire_by_oid: InquireByOid,
    release_buffer_set: ReleaseBufferSet,
    get_mic: GetMic,
    verify_mic: VerifyMic,
    display_status: DisplayStatus,
    /// Keeps the library mapped for the process's life.
    _lib: libloading::Library,
}

/// The soname dlopen looks for.
pub const LIBRARY: &str = "libgssapi_krb5.so.2";

fn load() -> Result<Api, String> {
    // SAFETY: loading MIT's GSS-API library runs only its own initialisers.
    let lib = unsafe { libloading::Library::new(LIBRARY) }.map_err(|e| e.to_string())?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol has the C signature of RFC 2744 / MIT's
            // gssapi_ext.h that the field's type spells.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| e.to_string())?
        };
    }
    Ok(Api {
        import_name: sym!("gss_import_name"),
        release_name: sym!("gss_release_name"),
        acquire_cred: sym!("gss_acquire_cred"),
        acquire_cred_from: sym!("gss_acquire_cred_from"),
        acquire_cred_with_password: sym!("gss_acquire_cred_with_password"),
        release_cred: sym!("gss_release_cred"),
        init_sec_context: sym!("gss_init_sec_context"),
        delete_sec_context: sym!("gss_delete_sec_context"),
        release_buffer: sym!("gss_release_buffer"),
        inquire_by_oid: sym!("gss_inquire_sec_context_by_oid"),
        release_buffer_set: sym!("gss_release_buffer_set"),
        get_mic: sym!("gss_get_mic"),
        verify_mic: sym!("gss_verify_mic"),
        display_status: sym!("gss_display_status"),
        _lib: lib,
    })
}

fn api() -> Result<&'static Api, GssError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(|e| {
        GssError::new(
            ErrorKind::NoLibrary,
            format!(
                "Kerberos needs MIT's {LIBRARY} (Debian/Ubuntu: apt-get install libgssapi-krb5-2): {e}"
            ),
        )
    })
}

/// True when the GSS-API library can be loaded.
pub fn available() -> bool {
    api().is_ok()
}

fn oid(bytes: &'static [u8]) -> OidDesc {
    OidDesc {
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr() as *mut c_void,
    }
}

fn buf(bytes: &[u8]) -> BufferDesc {
    BufferDesc {
        length: bytes.len(),
        value: bytes.as_ptr() as *mut c_void,
    }
}

fn empty() -> BufferDesc {
    BufferDesc {
        length: 0,
        value: ptr::null_mut(),
    }
}

fn is_error(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

impl Api {
    /// Copies and releases a buffer GSS-API allocated.
    fn take(&self, mut b: BufferDesc) -> Vec<u8> {
        let v = if b.value.is_null() || b.length == 0 {
            Vec::new()
        } else {
            // SAFETY: GSS-API returned `length` bytes at `value`.
            unsafe { std::slice::from_raw_parts(b.value as *const u8, b.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: `b` came from GSS-API and is released once.
        unsafe { (self.release_buffer)(&mut minor, &mut b) };
        v
    }

    fn messages(&self, status: OmUint32, kind: c_int, out: &mut Vec<String>) {
        let mech = oid(KRB5_OID);
        let mut ctx: OmUint32 = 0;
        for _ in 0..8 {
            let mut minor = 0;
            let mut b = empty();
            // SAFETY: plain values and an output buffer we own.
            let major =
                unsafe { (self.display_status)(&mut minor, status, kind, &mech, &mut ctx, &mut b) };
            if is_error(major) {
                break;
            }
            let s = String::from_utf8_lossy(&self.take(b)).trim().to_string();
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
            if ctx == 0 {
                break;
            }
        }
    }

    fn error(&self, what: &str, major: OmUint32, minor: OmUint32) -> GssError {
        let mut msgs = Vec::new();
        if minor != 0 {
            self.messages(minor, GSS_C_MECH_CODE, &mut msgs);
        }
        // The routine error alone ("Unspecified GSS failure") says little
        // when the mechanism spoke.
        if msgs.is_empty() {
            self.messages(major & 0xffff_0000, GSS_C_GSS_CODE, &mut msgs);
        }
        let code = i64::from(minor as i32);
        let kind = match code {
            KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN => ErrorKind::UnknownClient,
            KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN => ErrorKind::UnknownServer,
            KRB5KDC_ERR_KEY_EXP | KRB5KRB_AP_ERR_TKT_EXPIRED => ErrorKind::Expired,
            KRB5KDC_ERR_PREAUTH_FAILED | KRB5_PREAUTH_FAILED | KRB5KRB_AP_ERR_BAD_INTEGRITY => {
                ErrorKind::WrongPassword
            }
            KRB5KRB_AP_ERR_SKEW | KRB5_KDCREP_SKEW => ErrorKind::ClockSkew,
            KRB5_CC_NOTFOUND | KRB5_FCC_NOFILE => ErrorKind::NoTicket,
            KRB5_KDC_UNREACH | KRB5_REALM_UNKNOWN | KRB5_REALM_CANT_RESOLVE => {
                ErrorKind::KdcUnreachable
            }
            KRB5_KT_NOTFOUND => ErrorKind::Keytab,
            _ if major & 0xffff_0000 == GSS_S_CREDENTIALS_EXPIRED => ErrorKind::Expired,
            _ if major & 0xffff_0000 == GSS_S_NO_CRED => ErrorKind::NoTicket,
            _ => ErrorKind::Other,
        };
        let detail = if msgs.is_empty() {
            format!("GSS-API status {major:#x}/{minor}")
        } else {
            msgs.join(": ")
        };
        GssError::new(kind, format!("{what}: {detail}"))
    }

    fn import(&'static self, text: &str, kind: &'static [u8]) -> Result<NameHandle, GssError> {
        let nt = oid(kind);
        let b = buf(text.as_bytes());
        let mut name: Name = ptr::null_mut();
        let mut minor = 0;
        // SAFETY: input buffer and OID live across the call; `name` is ours.
        let major = unsafe { (self.import_name)(&mut minor, &b, &nt, &mut name) };
        if is_error(major) {
            return Err(self.error(&format!("bad Kerberos name {text:?}"), major, minor));
        }
        Ok(NameHandle { api: self, name })
    }
}

struct NameHandle {
    api: &'static Api,
    name: Name,
}

impl Drop for NameHandle {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: a name from gss_import_name, released once.
        unsafe { (self.api.release_name)(&mut minor, &mut self.name) };
    }
}

/// Where the client's Kerberos credentials come from.
pub enum Source<'a> {
    /// The default credential cache (`KRB5CCNAME`, after `kinit`).
    Cache,
    /// A keytab with a key for `principal`; the tickets go to a private
    /// in-memory cache.
    Keytab {
        /// The keytab file.
        path: &'a str,
        /// `user` or `user@REALM`.
        principal: &'a str,
    },
    /// A password for `principal`: an AS exchange with the KDC, the
    /// tickets kept in memory.
    Password {
        /// `user` or `user@REALM`.
        principal: &'a str,
        /// The password.
        password: &'a str,
    },
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cache => f.write_str("Cache"),
            Self::Keytab { path, principal } => f
                .debug_struct("Keytab")
                .field("path", path)
                .field("principal", principal)
                .finish(),
            Self::Password { principal, .. } => f
                .debug_struct("Password")
                .field("principal", principal)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Client credentials (a GSS-API credential handle).
pub struct Credential {
    api: &'static Api,
    cred: Cred,
    /// Seconds the credential is still valid for, as GSS-API said.
    pub lifetime: u32,
}

// SAFETY: MIT's GSS-API is thread-safe; a credential handle may be used
// from any thread, and this type hands out no aliases to it.
unsafe impl Send for Credential {}
// SAFETY: as above; every use takes `&self` and MIT locks internally.
unsafe impl Sync for Credential {}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Drop for Credential {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: a credential from gss_acquire_cred*, released once.
        unsafe { (self.api.release_cred)(&mut minor, &mut self.cred) };
    }
}

static MEMORY_CACHES: AtomicU64 = AtomicU64::new(0);

impl Credential {
    /// Gets Kerberos initiator credentials from `source` (blocking: a
    /// password or a keytab makes an AS exchange with the KDC).
    pub fn acquire(source: &Source<'_>) -> Result<Self, GssError> {
        let api = api()?;
        let mut mech = oid(KRB5_OID);
        let mechs = OidSetDesc {
            count: 1,
            elements: &mut mech,
        };
        let mut cred: Cred = ptr::null_mut();
        let mut minor = 0;
        let mut lifetime = 0;
        let (major, what) = match source {
            Source::Cache => {
                // SAFETY: the OID set lives across the call; outputs are ours.
                let major = unsafe {
                    (api.acquire_cred)(
                        &mut minor,
                        ptr::null_mut(),
                        0,
                        &mechs,
                        GSS_C_INITIATE,
                        &mut cred,
                        ptr::null_mut(),
                        &mut lifetime,
                    )
                };
                (major, "no usable Kerberos ticket".to_string())
            }
            Source::Keytab { path, principal } => {
                let name = api.import(principal, NT_KRB5_PRINCIPAL)?;
                let keytab = c_string(path)?;
                let n = MEMORY_CACHES.fetch_add(1, Ordering::Relaxed);
                let cache = c_string(&format!("MEMORY:smbcp-{}-{n}", std::process::id()))?;
                let elements = [
                    KeyValueElement {
                        key: c"client_keytab".as_ptr(),
                        value: keytab.as_ptr(),
                    },
                    KeyValueElement {
                        key: c"ccache".as_ptr(),
                        value: cache.as_ptr(),
                    },
                ];
                let store = KeyValueSet {
                    count: elements.len() as OmUint32,
                    elements: elements.as_ptr(),
                };
                // SAFETY: name, OID set, strings and store live across the call.
                let major = unsafe {
                    (api.acquire_cred_from)(
                        &mut minor,
                        name.name,
                        0,
                        &mechs,
                        GSS_C_INITIATE,
                        &store,
                        &mut cred,
                        ptr::null_mut(),
                        &mut lifetime,
                    )
                };
                (
                    major,
                    format!("no Kerberos ticket for {principal} from keytab {path}"),
                )
            }
            Source::Password {
                principal,
                password,
            } => {
                let name = api.import(principal, NT_KRB5_PRINCIPAL)?;
                let pw = Zeroizing::new(password.as_bytes().to_vec());
                let pwb = buf(&pw);
                // SAFETY: name, password buffer and OID set live across the call.
                let major = unsafe {
                    (api.acquire_cred_with_password)(
                        &mut minor,
                        name.name,
                        &pwb,
                        0,
                        &mechs,
                        GSS_C_INITIATE,
                        &mut cred,
                        ptr::null_mut(),
                        &mut lifetime,
                    )
                };
                (
                    major,
                    format!("no Kerberos ticket for {principal} with the password"),
                )
            }
        };
        if is_error(major) {
            return Err(api.error(&what, major, minor));
        }
        let c = Self {
            api,
            cred,
            lifetime,
        };
        if lifetime == 0 {
            return Err(GssError::new(
                ErrorKind::Expired,
                format!("{what}: the ticket has expired"),
            ));
        }
        Ok(c)
    }
}

fn c_string(s: &str) -> Result<CString, GssError> {
    CString::new(s).map_err(|_| GssError::new(ErrorKind::Other, format!("NUL in {s:?}")))
}

/// A client security context for one service (GSS-API initiator, krb5
/// mechanism, mutual authentication).
pub struct Context {
    api: &'static Api,
    ctx: Ctx,
    target: NameHandle,
    cred: std::sync::Arc<Credential>,
    complete: bool,
    spn: String,
}

// SAFETY: a context is used by one owner at a time (`&mut self` for every
// call that changes it); MIT's contexts may move between threads.
unsafe impl Send for Context {}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("spn", &self.spn)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            let mut minor = 0;
            // SAFETY: a context from gss_init_sec_context, deleted once.
            unsafe { (self.api.delete_sec_context)(&mut minor, &mut self.ctx, ptr::null_mut()) };
        }
    }
}

impl Context {
    /// A context for service principal `spn`: `cifs/host` (host-based, the
    /// realm from `krb5.conf`'s domain_realm) or `cifs/host@REALM`.
    pub fn new(cred: std::sync::Arc<Credential>, spn: &str) -> Result<Self, GssError> {
        let api = api()?;
        let target = match spn.split_once('@') {
            Some(_) => api.import(spn, NT_KRB5_PRINCIPAL)?,
            None => {
                let (service, host) = spn.split_once('/').ok_or_else(|| {
                    GssError::new(
                        ErrorKind::Other,
                        format!("bad service principal {spn:?} (want service/host[@REALM])"),
                    )
                })?;
                api.import(&format!("{service}@{host}"), NT_HOSTBASED)?
            }
        };
        Ok(Self {
            api,
            ctx: ptr::null_mut(),
            target,
            cred,
            complete: false,
            spn: spn.to_string(),
        })
    }

    /// One call of gss_init_sec_context: `input` is the server's token
    /// (None at first). Returns the token to send (possibly empty).
    /// The first call gets a service ticket from the KDC (blocking).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, GssError> {
        let mech = oid(KRB5_OID);
        let inb = input.map(buf);
        let mut out = empty();
        let mut minor = 0;
        let mut flags = 0;
        // SAFETY: every pointer is to a value of this frame or of `self`.
        let major = unsafe {
            (self.api.init_sec_context)(
                &mut minor,
                self.cred.cred,
                &mut self.ctx,
                self.target.name,
                &mech,
                GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG,
                0,
                ptr::null(),
                inb.as_ref().map_or(ptr::null(), |b| b as *const BufferDesc),
                ptr::null_mut(),
                &mut out,
                &mut flags,
                ptr::null_mut(),
            )
        };
        let token = self.api.take(out);
        if is_error(major) {
            let what = if input.is_none() {
                format!("Kerberos logon to {}", self.spn)
            } else {
                format!("{} did not prove itself (mutual authentication)", self.spn)
            };
            return Err(self.api.error(&what, major, minor));
        }
        self.complete = major & GSS_S_CONTINUE_NEEDED == 0;
        if self.complete && flags & GSS_C_MUTUAL_FLAG == 0 {
            return Err(GssError::new(
                ErrorKind::Other,
                format!("{}: no mutual authentication", self.spn),
            ));
        }
        Ok(token)
    }

    /// True once the context is established (the AP-REP verified).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The session key (the acceptor's subkey when it sent one).
    pub fn session_key(&self) -> Result<Zeroizing<Vec<u8>>, GssError> {
        let o = oid(INQ_SESSION_KEY);
        let mut set: *mut BufferSetDesc = ptr::null_mut();
        let mut minor = 0;
        // SAFETY: the context is ours; `set` is released below.
        let major = unsafe { (self.api.inquire_by_oid)(&mut minor, self.ctx, &o, &mut set) };
        if is_error(major) || set.is_null() {
            return Err(self.api.error("no Kerberos session key", major, minor));
        }
        // SAFETY: GSS-API returned a set of `count` buffers.
        let key = unsafe {
            let s = &*set;
            if s.count == 0 || s.elements.is_null() {
                None
            } else {
                let b = &*s.elements;
                Some(Zeroizing::new(
                    std::slice::from_raw_parts(b.value as *const u8, b.length).to_vec(),
                ))
            }
        };
        // SAFETY: the set from the call above, released once.
        unsafe { (self.api.release_buffer_set)(&mut minor, &mut set) };
        key.ok_or_else(|| GssError::new(ErrorKind::Other, "no Kerberos session key"))
    }

    /// A MIC over `msg` (RFC 4121 4.2.6.1).
    pub fn get_mic(&self, msg: &[u8]) -> Result<Vec<u8>, GssError> {
        let m = buf(msg);
        let mut out = empty();
        let mut minor = 0;
        // SAFETY: buffers of this frame; `out` is released by `take`.
        let major = unsafe { (self.api.get_mic)(&mut minor, self.ctx, 0, &m, &mut out) };
        let mic = self.api.take(out);
        if is_error(major) {
            return Err(self.api.error("gss_get_mic", major, minor));
        }
        Ok(mic)
    }

    /// Checks the server's MIC over `msg`.
    pub fn verify_mic(&self, msg: &[u8], mic: &[u8]) -> Result<(), GssError> {
        let (m, t) = (buf(msg), buf(mic));
        let mut minor = 0;
        let mut qop = 0;
        // SAFETY: buffers of this frame.
        let major = unsafe { (self.api.verify_mic)(&mut minor, self.ctx, &m, &t, &mut qop) };
        if is_error(major) {
            return Err(self.api.error("the server's mechListMIC", major, minor));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_reports_missing_tickets() {
        // The library is on every machine the tests run on (scripts/install-deps).
        assert!(available());
        std::env::set_var("KRB5CCNAME", "FILE:/nonexistent/smbcp-gss-test");
        let err = Credential::acquire(&Source::Cache).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NoTicket, "{err}");
        assert!(err.message.contains("Kerberos"), "{err}");
    }

    #[test]
    fn a_password_source_never_shows_the_password() {
        let src = Source::Password {
            principal: "u@R",
            password: "secret",
        };
        let dbg = format!("{src:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("secret"),
            "{dbg}"
        );
    }
}
