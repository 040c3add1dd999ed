//! Lease breaks (MS-SMB2 3.2.5.19.2): each connection's break notifications
//! go to a task of the client, which finds the open file holding the lease
//! by its key, lowers the lease state it records, and, when the server asks
//! (SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED), acknowledges the new state
//! with a LEASE_BREAK_ACKNOWLEDGMENT (2.2.24.2) on that file's session and
//! tree (3.3.5.22.2: the server looks both up). Until it does, the server
//! holds back the open that caused the break (for up to its 35 s break
//! timeout in Samba), so the acknowledgment is sent at once.
//!
//! smb-core caches nothing under a lease (every read and write goes to the
//! server), so nothing has to be flushed or purged before the
//! acknowledgment, and the handle stays usable at the lower state. Losing
//! handle caching ends a durable handle's durability (the server would not
//! keep it across a disconnect): [`crate::File::is_durable`] then says false.
//!
//! Break notifications are not signed by the server (MessageId
//! 0xFFFF_FFFF_FFFF_FFFF); a forged one can only make us acknowledge a
//! lower state for a lease key it would have to guess.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::client::{ClientInner, HandleCounters};
use crate::conn::{new_message, Outgoing, Response};
use crate::file::FileInner;
use crate::wire::oplock::{self, BreakNotification, LeaseBreak};
use crate::wire::Command;

/// Handles the breaks of connection number `generation` until it closes.
/// Holds the client weakly: a dropped client ends the task.
pub(crate) fn spawn_break_handler(
    client: Weak<ClientInner>,
    generation: u64,
    mut rx: UnboundedReceiver<Response>,
) {
    tokio::spawn(async move {
        while let Some(resp) = rx.recv().await {
            let Some(client) = client.upgrade() else {
                return;
            };
            match BreakNotification::decode(&resp.msg) {
                Ok(BreakNotification::Lease(b)) => {
                    HandleCounters::bump(&client.handles.lease_breaks);
                    lease_break(&client, generation, &b).await;
                }
                Ok(n) => {
                    // We never ask for oplocks, so none should break.
                    tracing::debug!(notification = ?n, "ignoring an oplock break");
                }
                Err(e) => tracing::debug!(error = %e, "malformed break notification"),
            }
        }
    });
}

/// One lease break: record the new state, acknowledge when asked.
async fn lease_break(client: &ClientInner, generation: u64, b: &LeaseBreak) {
    let file: Option<Arc<FileInner>> = client
        .leases
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&b.key)
        .and_then(Weak::upgrade);
    let Some(file) = file else {
        tracing::debug!(key = ?b.key, "lease break for no open file");
        return;
    };
    let st = file.current_state();
    let Some(lease) = st.lease.as_ref().filter(|l| l.key == b.key) else {
        return;
    };
    if st.tree.session.gen.number != generation {
        // The handle is not (yet) on the connection the break came on.
        return;
    }
    let before = lease.state.fetch_and(b.new_state, Ordering::AcqRel);
    tracing::debug!(
        from = before,
        to = b.new_state,
        ack = b.ack_required(),
        "lease break"
    );
    if !b.ack_required() {
        return;
    }
    let mut w = new_message();
    oplock::encode_lease_break_ack(&mut w, &b.key, b.new_state);
    // Counted as it goes out: the server goes on only after receiving it.
    HandleCounters::bump(&client.handles.lease_acks);
    let r = st
        .tree
        .call1(Outgoing::new(Command::OPLOCK_BREAK, w, 0, 0))
        .await
        .and_then(|resp| {
            resp.check(&[])?;
            Ok(oplock::decode_lease_break_response(&resp.msg)?)
        });
    match r {
        Ok((_, state)) => lease.state.store(state, Ordering::Release),
        Err(e) => tracing::debug!(error = %e, "lease break acknowledgment failed"),
    }
}
