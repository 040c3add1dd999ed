//! The tokio connection: framing, reader and writer tasks, pending map, credits.
