//! A deterministic harness for the connection core (the shape of
//! quinn-proto's `Pair`): a scripted peer answers the frames the core's
//! callers build, in memory, on a simulated clock. No sockets, no tokio.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Assigned, Conn, ConnConfig, Event, Failure, LostReason, RequestMeta, SendError};
use super::frame::{self, OutMsg, Security};
use crate::wire::header::{
    split_compound, Header, FLAG_ASYNC, FLAG_RELATED, FLAG_RESPONSE, HEADER_LEN,
    UNSOLICITED_MESSAGE_ID,
};
use crate::wire::{Command, NtStatus, Writer};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One request as the peer received it.
#[derive(Clone, Debug)]
struct Seen {
    header: Header,
    /// Offset of the message inside its frame.
    offset: usize,
}

/// The client core, a scripted peer and a simulated clock.
struct Pair {
    conn: Conn,
    now: Instant,
    /// Requests the peer has received and not answered, in arrival order.
    inbox: VecDeque<Seen>,
    /// Frames the core sent by itself (CANCELs).
    cancels: Vec<Header>,
    events: Vec<Event>,
}

fn msg(command: Command, body: usize) -> OutMsg {
    let mut w = Writer::with_capacity(HEADER_LEN + body);
    w.zeros(HEADER_LEN + body);
    OutMsg {
        command,
        msg: w,
        payload: None,
        file_len: 0,
        tree_id: 7,
        session_id: 9,
        related: false,
        replay: false,
    }
}

fn meta(m: &OutMsg, expect_len: usize) -> RequestMeta {
    RequestMeta {
        send_len: m.send_len(),
        expect_len,
        session_id: m.session_id,
        tree_id: m.tree_id,
    }
}

/// The messages of one direct-TCP frame, parts joined, length checked.
fn headers_of(parts: &[Bytes]) -> Vec<Seen> {
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let len = u32::from_be_bytes([0, joined[1], joined[2], joined[3]]) as usize;
    assert_eq!(len + 4, joined.len(), "length prefix");
    let body = &joined[4..];
    split_compound(body)
        .expect("a well-formed compound")
        .into_iter()
        .map(|(s, _)| Seen {
            header: Header::decode(&body[s..]).expect("header"),
            offset: s,
        })
        .collect()
}

/// A response frame: one message per (request, status, credits, async id).
fn response(items: &[(u64, NtStatus, u16, u64)]) -> Bytes {
    let mut out = Vec::new();
    for (i, &(id, status, credits, async_id)) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let mut flags = FLAG_RESPONSE;
        if async_id != 0 {
            flags |= FLAG_ASYNC;
        }
        let h = Header {
            status,
            command: Command::READ,
            credits,
            flags,
            next_command: if last { 0 } else { 72 },
            message_id: id,
            async_id,
            ..Header::default()
        };
        let mut w = Writer::with_capacity(72);
        h.encode(&mut w);
        w.zeros(8);
        out.extend_from_slice(w.as_slice());
    }
    Bytes::from(out)
}

impl Pair {
    fn new(credit_target: u16) -> Self {
        Self {
            conn: Conn::new(ConnConfig {
                credit_target,
                request_timeout: TIMEOUT,
            }),
            now: Instant::now(),
            inbox: VecDeque::new(),
            cancels: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A connection past NEGOTIATE, holding `credits` credits, no events.
    fn ready(credit_target: u16, credits: u16) -> Self {
        let mut p = Self::new(credit_target);
        p.send(vec![msg(Command::NEGOTIATE, 36)], 0).unwrap();
        p.answer(0, NtStatus::SUCCESS, credits);
        p.events.clear();
        p
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Sends `msgs` as one frame (a compound when several) and delivers it
    /// to the peer's inbox.
    fn send(&mut self, msgs: Vec<OutMsg>, expect: usize) -> Result<Assigned, SendError> {
        let metas: Vec<_> = msgs.iter().map(|m| meta(m, expect)).collect();
        let a = self
            .conn
            .send(&metas, &Security::default(), self.now, self.now)?;
        let parts = frame::build(msgs, &a, &Security::default(), None).expect("frame");
        self.inbox.extend(headers_of(&parts));
        Ok(a)
    }

    /// The peer answers the request with MessageId `id`.
    fn answer(&mut self, id: u64, status: NtStatus, credits: u16) {
        self.inbox.retain(|s| s.header.message_id != id);
        self.deliver(response(&[(id, status, credits, 0)]));
    }

    fn deliver(&mut self, frame: Bytes) {
        self.conn
            .handle_frame(frame, false, None, self.now)
            .expect("a valid frame");
        self.drain();
    }

    fn timeout(&mut self) {
        self.conn.handle_timeout(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
        while let Some(t) = self.conn.poll_transmit() {
            self.cancels
                .extend(headers_of(&t).into_iter().map(|s| s.header));
        }
    }

    /// Takes the final responses and failures seen so far, by MessageId.
    fn outcomes(&mut self) -> Vec<(u64, Result<NtStatus, Failure>)> {
        self.events
            .drain(..)
            .filter_map(|e| match e {
                Event::Response(id, r) => Some((id, Ok(r.header.status))),
                Event::Failed(id, f) => Some((id, Err(f))),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn the_first_request_has_one_credit_and_grants_open_the_window() {
    let mut p = Pair::new(64);
    let a = p.send(vec![msg(Command::NEGOTIATE, 36)], 0).unwrap();
    assert_eq!(a.ids, vec![0]);
    // The window asks to grow to the target: 1 charged + 63 more.
    assert_eq!(a.credit_requests, vec![64]);
    // No credit left until the reply.
    assert!(matches!(
        p.send(vec![msg(Command::ECHO, 4)], 0),
        Err(SendError::Blocked { .. })
    ));
    p.answer(0, NtStatus::SUCCESS, 64);
    assert_eq!(p.conn.credits_available(), 64);
    assert_eq!(p.conn.credits_outstanding(), 0);
    assert_eq!(p.outcomes(), vec![(0, Ok(NtStatus::SUCCESS))]);
}

#[test]
fn multi_credit_charges_advance_the_message_id_window() {
    let mut p = Pair::ready(256, 255);
    p.conn.set_large_mtu(true);
    // A 1 MiB READ charges 16 credits and takes 16 MessageIds.
    let a = p.send(vec![msg(Command::READ, 48)], 1 << 20).unwrap();
    assert_eq!((a.ids.clone(), a.charges.clone()), (vec![1], vec![16]));
    let b = p.send(vec![msg(Command::READ, 48)], 65536).unwrap();
    assert_eq!((b.ids, b.charges), (vec![17], vec![1]));
    assert_eq!(p.conn.credits_available(), 255 - 17);
    assert_eq!(p.conn.credits_outstanding(), 17);
    // The peer saw the charges in the headers.
    let seen: Vec<(u64, u16)> = p
        .inbox
        .iter()
        .map(|s| (s.header.message_id, s.header.credit_charge))
        .collect();
    assert_eq!(seen, vec![(1, 16), (17, 1)]);
    p.answer(1, NtStatus::SUCCESS, 16);
    assert_eq!(p.conn.credits_outstanding(), 1);
    assert_eq!(p.conn.credits_available(), 255 - 17 + 16);
}

#[test]
fn interim_replies_grant_credits_and_extend_the_deadline() {
    let mut p = Pair::ready(64, 8);
    let a = p.send(vec![msg(Command::READ, 48)], 0).unwrap();
    let id = a.ids[0];
    let first = p.conn.deadline(id).unwrap();
    p.advance(TIMEOUT - Duration::from_secs(1));
    // STATUS_PENDING with an AsyncId and 5 credits.
    p.deliver(response(&[(id, NtStatus::PENDING, 5, 0x77)]));
    assert_eq!(p.conn.credits_available(), 7 + 5);
    assert!(
        p.conn.deadline(id).unwrap() > first,
        "interim extends the wait"
    );
    assert!(p
        .events
        .iter()
        .any(|e| matches!(e, Event::Interim(i, 0x77) if *i == id)));
    // The original deadline passes: still waiting.
    p.advance(Duration::from_secs(2));
    p.timeout();
    assert!(p.outcomes().is_empty());
    // The final reply completes it; the interim's grant stays.
    p.answer(id, NtStatus::SUCCESS, 1);
    assert_eq!(p.outcomes(), vec![(id, Ok(NtStatus::SUCCESS))]);
    assert_eq!(p.conn.credits_available(), 7 + 5 + 1);
}

#[test]
fn credit_starvation_is_a_bounded_error() {
    // One credit, spent on a request the server sits on.
    let mut p = Pair::ready(64, 1);
    p.send(vec![msg(Command::READ, 48)], 0).unwrap();
    let since = p.now;
    let m = [meta(&msg(Command::ECHO, 4), 0)];
    let until = match p.conn.send(&m, &Security::default(), since, p.now) {
        Err(SendError::Blocked { until }) => until,
        other => panic!("{other:?}"),
    };
    assert_eq!(until, since + TIMEOUT);
    p.advance(TIMEOUT);
    assert_eq!(
        p.conn.send(&m, &Security::default(), since, p.now),
        Err(SendError::Starved {
            needed: 1,
            available: 0
        })
    );
}

#[test]
fn credits_no_reply_can_bring_fail_at_once() {
    let mut p = Pair::new(64);
    p.send(vec![msg(Command::NEGOTIATE, 36)], 0).unwrap();
    // The server grants nothing back and nothing is in flight.
    p.answer(0, NtStatus::SUCCESS, 0);
    assert_eq!(
        p.send(vec![msg(Command::ECHO, 4)], 0),
        Err(SendError::BeyondGrant {
            needed: 1,
            granted: 0
        })
    );
}

/// A peer that grants exactly one credit per reply (valid, MS-SMB2
/// 3.3.1.2) and never more: the limit stays 1, so READ buffers are sized to
/// 64 KiB and a three-request chain goes one request at a time; nothing
/// ever blocks, on a clock that never moves.
#[test]
fn a_server_granting_one_credit_per_reply_is_used_one_request_at_a_time() {
    let mut p = Pair::ready(2048, 1);
    p.conn.set_large_mtu(true);
    assert_eq!(p.conn.request_credit_limit(), 1);
    let limits = super::io_limits(8 << 20, 8 << 20, 8 << 20, 8 << 20, true, 1);
    assert_eq!((limits.read, limits.transact), (65536, 65536));
    // The listing compound (CREATE + 2 QUERY_DIRECTORY) does not fit...
    let compound = vec![
        msg(Command::CREATE, 57),
        msg(Command::QUERY_DIRECTORY, 32),
        msg(Command::QUERY_DIRECTORY, 32),
    ];
    let metas: Vec<_> = compound.iter().map(|m| meta(m, 65536)).collect();
    let charge: u64 = metas.iter().map(|m| p.conn.charge(m)).sum();
    assert!(charge > p.conn.request_credit_limit());
    // ...and asking anyway fails at once rather than waiting.
    assert!(matches!(
        p.send(compound, 65536),
        Err(SendError::BeyondGrant {
            needed: 3,
            granted: 1
        })
    ));
    // One at a time, each sized to the limit, all of it goes through.
    for (command, expect) in [
        (Command::CREATE, 0),
        (Command::QUERY_DIRECTORY, limits.transact as usize),
        (Command::QUERY_DIRECTORY, limits.transact as usize),
        (Command::READ, limits.read as usize),
        (Command::CLOSE, 0),
    ] {
        let a = p.send(vec![msg(command, 48)], expect).unwrap();
        assert_eq!(a.charges, vec![1]);
        assert_eq!(p.conn.request_credit_limit(), 1, "in flight counts");
        p.answer(a.ids[0], NtStatus::SUCCESS, 1);
        assert_eq!(p.conn.credits_available(), 1);
    }
    assert_eq!(p.conn.granted_max(), 1);
    assert!(p.outcomes().iter().all(|(_, r)| r.is_ok()));
}

/// Samba with `smb2 max credits = 32`: the limit follows the window the
/// server grants (32), not our target (2048), so a 2 MiB READ (32 credits)
/// is the most one request asks; a second one waits for the first reply
/// instead of starving.
#[test]
fn the_credit_limit_follows_the_servers_window() {
    let mut p = Pair::ready(2048, 32);
    p.conn.set_large_mtu(true);
    assert_eq!(p.conn.request_credit_limit(), 32);
    assert_eq!(p.conn.granted_max(), 32);
    let read = super::io_limits(8 << 20, 8 << 20, 8 << 20, 8 << 20, true, 32).read;
    assert_eq!(read, 31 * 65536);
    let a = p.send(vec![msg(Command::READ, 48)], read as usize).unwrap();
    assert_eq!(a.charges, vec![31]);
    // Credits in flight still count: the limit does not shrink while the
    // read is out.
    assert_eq!(p.conn.request_credit_limit(), 32);
    assert!(matches!(
        p.send(vec![msg(Command::READ, 48)], read as usize),
        Err(SendError::Blocked { .. })
    ));
    p.answer(a.ids[0], NtStatus::SUCCESS, 31);
    let b = p.send(vec![msg(Command::READ, 48)], read as usize).unwrap();
    assert_eq!(b.ids, vec![a.ids[0] + 31]);
    // A 4 MiB READ would need more than the server ever granted.
    p.answer(b.ids[0], NtStatus::SUCCESS, 31);
    assert!(matches!(
        p.send(vec![msg(Command::READ, 48)], 4 << 20),
        Err(SendError::BeyondGrant {
            needed: 64,
            granted: 32
        })
    ));
}

#[test]
fn a_request_larger_than_the_target_is_refused_not_queued() {
    let mut p = Pair::ready(8, 8);
    p.conn.set_large_mtu(true);
    assert_eq!(
        p.send(vec![msg(Command::READ, 48)], 1 << 20),
        Err(SendError::TooLarge)
    );
}

#[test]
fn compounds_chain_with_aligned_offsets_and_consecutive_ids() {
    let mut p = Pair::ready(64, 32);
    let mut set = msg(Command::SET_INFO, 33);
    set.related = true;
    let mut close = msg(Command::CLOSE, 24);
    close.related = true;
    let a = p
        .send(vec![msg(Command::CREATE, 57), set, close], 0)
        .unwrap();
    assert_eq!(a.ids, vec![1, 2, 3]);
    let seen: Vec<_> = p.inbox.iter().cloned().collect();
    assert_eq!(seen.len(), 3);
    // 64 + 57 = 121 → 128; 64 + 33 = 97 → 104.
    assert_eq!(
        seen.iter().map(|s| s.offset).collect::<Vec<_>>(),
        vec![0, 128, 232]
    );
    assert_eq!(seen[0].header.flags & FLAG_RELATED, 0);
    assert!(seen[1..].iter().all(|s| s.header.flags & FLAG_RELATED != 0));
    assert_eq!(seen[2].header.next_command, 0);
    // The window's extra credits are asked on the first element only.
    assert!(a.credit_requests[0] > 1);
    assert_eq!(&a.credit_requests[1..], &[1, 1]);
    // One response frame for the whole chain.
    p.deliver(response(&[
        (1, NtStatus::SUCCESS, 1, 0),
        (2, NtStatus::SUCCESS, 1, 0),
        (3, NtStatus::SUCCESS, 1, 0),
    ]));
    let ids: Vec<u64> = p.outcomes().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn responses_out_of_order_reach_their_requests() {
    let mut p = Pair::ready(64, 16);
    let ids: Vec<u64> = (0..4)
        .map(|_| p.send(vec![msg(Command::READ, 48)], 0).unwrap().ids[0])
        .collect();
    for (id, status) in [
        (ids[2], NtStatus::SUCCESS),
        (ids[0], NtStatus::END_OF_FILE),
        (ids[3], NtStatus::SUCCESS),
        (ids[1], NtStatus::ACCESS_DENIED),
    ] {
        p.answer(id, status, 1);
    }
    assert_eq!(
        p.outcomes(),
        vec![
            (ids[2], Ok(NtStatus::SUCCESS)),
            (ids[0], Ok(NtStatus::END_OF_FILE)),
            (ids[3], Ok(NtStatus::SUCCESS)),
            (ids[1], Ok(NtStatus::ACCESS_DENIED)),
        ]
    );
    // A duplicate or unknown reply is ignored, but its credits count.
    let before = p.conn.credits_available();
    p.answer(ids[1], NtStatus::SUCCESS, 2);
    assert!(p.outcomes().is_empty());
    assert_eq!(p.conn.credits_available(), before + 2);
    assert_eq!(p.conn.pending_len(), 0);
}

#[test]
fn a_missed_deadline_cancels_by_async_id_and_fails_the_request() {
    let mut p = Pair::ready(64, 16);
    let plain = p.send(vec![msg(Command::READ, 48)], 0).unwrap().ids[0];
    let pending = p.send(vec![msg(Command::READ, 48)], 0).unwrap().ids[0];
    p.advance(Duration::from_secs(1));
    p.deliver(response(&[(pending, NtStatus::PENDING, 0, 0x1234)]));
    assert_eq!(p.conn.poll_timeout(), p.conn.deadline(plain));
    p.advance(TIMEOUT - Duration::from_secs(1));
    p.timeout();
    // The plain request timed out; the interim one has time left.
    assert_eq!(p.outcomes(), vec![(plain, Err(Failure::Timeout(TIMEOUT)))]);
    assert_eq!(p.cancels.len(), 1);
    assert_eq!(p.cancels[0].command, Command::CANCEL);
    assert_eq!(p.cancels[0].message_id, plain);
    assert_eq!(p.cancels[0].flags & FLAG_ASYNC, 0);
    p.advance(TIMEOUT);
    p.timeout();
    assert_eq!(
        p.outcomes(),
        vec![(pending, Err(Failure::Timeout(TIMEOUT)))]
    );
    let c = &p.cancels[1];
    assert_eq!((c.async_id, c.flags & FLAG_ASYNC), (0x1234, FLAG_ASYNC));
    // Their credits came back to the window; a late reply is ignored.
    assert_eq!(p.conn.credits_outstanding(), 0);
    p.answer(plain, NtStatus::SUCCESS, 1);
    assert!(p.outcomes().is_empty());
    assert_eq!(p.conn.poll_timeout(), None);
}

#[test]
fn a_connection_dropped_at_message_n_fails_exactly_the_rest() {
    for n in 0..6 {
        let mut p = Pair::ready(64, 16);
        let ids: Vec<u64> = (0..5)
            .map(|_| p.send(vec![msg(Command::READ, 48)], 0).unwrap().ids[0])
            .collect();
        for &id in ids.iter().take(n) {
            p.answer(id, NtStatus::SUCCESS, 1);
        }
        let reason = LostReason::Io(std::io::ErrorKind::ConnectionReset, "reset".into());
        p.conn.handle_lost(reason.clone());
        p.drain();
        let outcomes = p.outcomes();
        let answered = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
        let failed: Vec<u64> = outcomes
            .iter()
            .filter(|(_, r)| matches!(r, Err(Failure::Lost(_))))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(answered, n.min(5), "n = {n}");
        assert_eq!(failed, ids[n.min(5)..].to_vec(), "n = {n}");
        assert!(p.events.is_empty());
        assert_eq!(p.conn.lost(), Some(&reason));
        assert_eq!(p.conn.credits_outstanding(), 0);
        assert_eq!(
            p.send(vec![msg(Command::ECHO, 4)], 0),
            Err(SendError::Lost(reason))
        );
        // A timeout after the loss sends nothing.
        p.advance(TIMEOUT * 2);
        p.timeout();
        assert!(p.cancels.is_empty());
    }
}

#[test]
fn break_notifications_become_events_and_requests_from_the_peer_are_refused() {
    let mut p = Pair::new(64);
    let h = Header {
        command: Command::OPLOCK_BREAK,
        flags: FLAG_RESPONSE,
        message_id: UNSOLICITED_MESSAGE_ID,
        ..Header::default()
    };
    let mut w = Writer::with_capacity(88);
    h.encode(&mut w);
    w.zeros(24);
    p.deliver(Bytes::from(w.into_vec()));
    assert!(p.events.iter().any(|e| matches!(e, Event::Break(_))));
    let req = Header {
        command: Command::ECHO,
        ..Header::default()
    };
    let mut w = Writer::with_capacity(68);
    req.encode(&mut w);
    w.zeros(4);
    assert!(matches!(
        p.conn
            .handle_frame(Bytes::from(w.into_vec()), false, None, p.now),
        Err(LostReason::Protocol(_))
    ));
}

#[test]
fn channel_sequence_and_replay_flag_reach_the_header() {
    use crate::wire::header::FLAG_REPLAY_OPERATION;
    let mut p = Pair::ready(64, 8);
    // Before 3.x (or on the first connection) the field stays zero.
    p.send(vec![msg(Command::WRITE, 48)], 0).unwrap();
    p.conn.set_channel_sequence(3);
    let mut again = msg(Command::WRITE, 48);
    again.replay = true;
    p.send(vec![again, msg(Command::READ, 48)], 0).unwrap();
    let seen: Vec<(u32, bool)> = p
        .inbox
        .iter()
        .map(|s| {
            (
                s.header.status.0,
                s.header.flags & FLAG_REPLAY_OPERATION != 0,
            )
        })
        .collect();
    // ChannelSequence is the low half of the Status field; only the
    // request marked as a replay carries the flag.
    assert_eq!(seen, vec![(0, false), (3, true), (3, false)]);
}
