//! NTLMv2 (MS-NLMP) and SPNEGO (MS-SPNG): pure, no I/O.
