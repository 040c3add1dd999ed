//! SP800-108 KDF, signing, encryption and preauth integrity: pure, no I/O.
