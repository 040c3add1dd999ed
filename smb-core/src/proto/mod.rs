//! Protocol state without I/O: handshake states, credits, MessageId window.
