//! The connection's protocol state as a plain state machine, with no I/O and
//! no clock of its own (the shape of quinn-proto's `Connection`): the
//! MessageId window and the credit ledger (MS-SMB2 3.2.4.1.5, 3.2.5.1.4,
//! 3.1.5.2), the table of requests awaiting a response, interim responses
//! (STATUS_PENDING with an AsyncId, 3.2.5.1.5), request deadlines and CANCEL
//! (3.2.4.24), oplock/lease breaks (3.2.5.19) and the loss of the connection.
//!
//! Inputs: [`Conn::send`] (reserve credits and MessageIds for a request or
//! a compound), [`Conn::handle_frame`] (a decrypted frame from the peer),
//! [`Conn::handle_timeout`], [`Conn::handle_lost`], [`Conn::abandon`]. Outputs:
//! [`Conn::poll_event`], [`Conn::poll_transmit`] (CANCEL frames to send),
//! [`Conn::poll_timeout`]. Time is always a parameter, so tests drive it with a
//! simulated clock (see `proto::harness` tests).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::credit_charge;
use super::frame::{cancel_frame, Response, Security};
use crate::wire::header::{self, Header, HEADER_LEN, UNSOLICITED_MESSAGE_ID};
use crate::wire::Command;

/// Why a connection stopped working: typed, so callers can decide what to do
/// without reading a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// The peer closed the connection (end of stream).
    Closed,
    /// A socket read or write failed with this kind.
    Io(std::io::ErrorKind, Arc<str>),
    /// The peer broke the protocol (a malformed or unexpected frame).
    Protocol(Arc<str>),
    /// Our side dropped or shut down the connection.
    Dropped,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("the server closed the connection"),
            Self::Io(_, msg) => write!(f, "{msg}"),
            Self::Protocol(msg) => write!(f, "protocol violation: {msg}"),
            Self::Dropped => f.write_str("connection dropped"),
        }
    }
}

/// Why a request will get no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Its deadline passed with no final response (a CANCEL was queued).
    Timeout(Duration),
    /// The connection was lost first.
    Lost(LostReason),
}

/// What happened on the connection; drain with [`Conn::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The final response to request `id`.
    Response(u64, Response),
    /// Request `id` will not be answered.
    Failed(u64, Failure),
    /// An interim response: request `id` now has this AsyncId, and its
    /// deadline moved.
    Interim(u64, u64),
    /// The server granted credits (possibly zero on this message).
    CreditsGranted(u16),
    /// An oplock or lease break notification (MessageId 0xFFFF_FFFF_FFFF_FFFF).
    Break(Response),
    /// The connection is gone; every pending request got a [`Event::Failed`].
    Lost(LostReason),
}

/// One request of [`Conn::send`], as the ledger sees it.
#[derive(Clone, Copy, Debug)]
pub struct RequestMeta {
    /// Bytes sent after the 64-byte header (body, payload, file data).
    pub send_len: usize,
    /// Bytes the response may carry.
    pub expect_len: usize,
    /// The request's SessionId (for its CANCEL).
    pub session_id: u64,
    /// The request's TreeId (for its CANCEL).
    pub tree_id: u32,
}

/// MessageIds and credits assigned to a request or compound by [`Conn::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// The first MessageId of each request.
    pub ids: Vec<u64>,
    /// CreditCharge of each request (0 when the dialect has no multi-credit).
    pub charges: Vec<u16>,
    /// CreditRequest of each request.
    pub credit_requests: Vec<u16>,
    /// The ChannelSequence every request carries (3.x; see
    /// [`Conn::set_channel_sequence`]).
    pub channel_sequence: u16,
}

/// Why [`Conn::send`] did not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not enough credits (or room under the credit target) yet: try again
    /// after the next [`Event::CreditsGranted`] or response, until `until`.
    Blocked {
        /// When waiting stops being reasonable.
        until: Instant,
    },
    /// Waited since `since` until the request timeout and the credits never
    /// came: a bounded error, never an endless wait.
    Starved {
        /// Credits the request needed.
        needed: u64,
        /// Credits the server had granted and we had not spent.
        available: u64,
    },
    /// The request needs more credits than the credit target allows at all.
    TooLarge,
    /// The request needs more credits than the server has granted, and
    /// nothing is in flight whose reply could grant more: waiting would be
    /// endless. Size requests to [`Conn::request_credit_limit`].
    BeyondGrant {
        /// Credits the request needed.
        needed: u64,
        /// Credits the server had granted and we had not spent.
        granted: u64,
    },
    /// The connection is gone.
    Lost(LostReason),
}

/// Settings of a [`Conn`].
#[derive(Clone, Copy, Debug)]
pub struct ConnConfig {
    /// Cap on credits in flight (the window of 64 KiB units).
    pub credit_target: u16,
    /// How long a request may wait for credits or for its final response
    /// (an interim response restarts the clock).
    pub request_timeout: Duration,
}

/// A request awaiting its final response.
#[derive(Debug)]
struct Entry {
    charge: u64,
    /// Credits asked beyond the charge (negative: fewer than the charge).
    extra: i64,
    async_id: u64,
    deadline: Instant,
    session_id: u64,
    tree_id: u32,
    sec: Security,
}

/// The connection state machine.
#[derive(Debug)]
pub struct Conn {
    config: ConnConfig,
    next_message_id: u64,
    /// Credits granted and not yet spent.
    credits: u64,
    /// Room under the credit target: target minus credits in flight.
    room: u64,
    target: u64,
    /// Credits spent on requests whose final response has not arrived.
    outstanding: u64,
    /// Credits granted + credits asked and not yet answered: what the
    /// window will be once every reply is in. Kept near the target.
    window: i64,
    /// The most credits the server has let us hold at once (unspent plus
    /// in flight), over the connection's life.
    granted_max: u64,
    large_mtu: bool,
    channel_sequence: u16,
    pending: HashMap<u64, Entry>,
    lost: Option<LostReason>,
    events: VecDeque<Event>,
    transmits: VecDeque<Vec<Bytes>>,
}

impl Conn {
    /// A new connection: one credit, MessageId 0 next (MS-SMB2 3.2.4.1.5).
    pub fn new(config: ConnConfig) -> Self {
        let target = u64::from(config.credit_target.max(1));
        Self {
            config,
            next_message_id: 0,
            credits: 1,
            room: target,
            target,
            outstanding: 0,
            window: 1,
            granted_max: 1,
            large_mtu: false,
            channel_sequence: 0,
            pending: HashMap::new(),
            lost: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
        }
    }

    /// Enables multi-credit requests (NEGOTIATE chose 2.1+ with LARGE_MTU).
    pub fn set_large_mtu(&mut self, on: bool) {
        self.large_mtu = on;
    }

    /// Sets the ChannelSequence of every later request (3.x dialects only;
    /// MS-SMB2 2.2.1.2, 3.2.4.1.1). The client counts its connections with
    /// it, so a server sees requests after a reconnect as newer than any
    /// from before on the same durable open (3.3.5.2.10) and never older:
    /// Samba fails a modifying request whose sequence went backwards with
    /// STATUS_FILE_NOT_AVAILABLE.
    pub fn set_channel_sequence(&mut self, seq: u16) {
        self.channel_sequence = seq;
    }

    /// True when requests carry a CreditCharge.
    pub fn large_mtu(&self) -> bool {
        self.large_mtu
    }

    /// Raises the credit target to at least `min`, so the largest request
    /// can always fit.
    pub fn raise_credit_target(&mut self, min: u64) {
        if min > self.target {
            self.room += min - self.target;
            self.target = min;
        }
    }

    /// The credit target.
    pub fn credit_target(&self) -> u64 {
        self.target
    }

    /// Credits granted and not yet spent.
    pub fn credits_available(&self) -> u64 {
        self.credits
    }

    /// Credits spent on requests still awaiting their final response.
    pub fn credits_outstanding(&self) -> u64 {
        self.outstanding
    }

    /// The most credits the server has let us hold at once (unspent plus
    /// in flight) so far: its window as seen from here (Samba's `smb2 max
    /// credits`, or 1 from a server granting one credit per reply).
    pub fn granted_max(&self) -> u64 {
        self.granted_max
    }

    /// The largest CreditCharge a request (or a compound, in total) can
    /// have and still be sent without waiting for credits the server may
    /// never grant: the credits it has granted now (unspent plus in flight,
    /// which come back with their replies), capped by the credit target.
    /// Callers size READ/WRITE/QUERY_DIRECTORY buffers to this, and send a
    /// compound one request at a time when it exceeds it.
    pub fn request_credit_limit(&self) -> u64 {
        (self.credits + self.outstanding).clamp(1, self.target)
    }

    /// Requests awaiting a final response.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Why the connection is gone, if it is.
    pub fn lost(&self) -> Option<&LostReason> {
        self.lost.as_ref()
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The credit charge of one request (1 without multi-credit).
    pub fn charge(&self, r: &RequestMeta) -> u64 {
        if self.large_mtu {
            u64::from(credit_charge(r.send_len.max(r.expect_len)))
        } else {
            1
        }
    }

    /// Reserves credits and consecutive MessageIds for `reqs` (one request
    /// or a compound, MS-SMB2 3.2.4.1.4), which the caller then frames with
    /// [`super::frame::build`] and sends in this order. `since` is when this
    /// caller first tried: after the request timeout it gets
    /// [`SendError::Starved`] instead of waiting more.
    pub fn send(
        &mut self,
        reqs: &[RequestMeta],
        sec: &Security,
        since: Instant,
        now: Instant,
    ) -> Result<Assigned, SendError> {
        if let Some(r) = &self.lost {
            return Err(SendError::Lost(r.clone()));
        }
        // Charges are computed where needed rather than collected: the
        // small-file path sends a compound per file, and every Vec counts.
        let total: u64 = reqs.iter().map(|r| self.charge(r)).sum();
        if total > self.target {
            return Err(SendError::TooLarge);
        }
        if self.credits < total && self.outstanding == 0 {
            // No reply is due, so no credits are coming: fail now rather
            // than after the request timeout.
            return Err(SendError::BeyondGrant {
                needed: total,
                granted: self.credits,
            });
        }
        if self.room < total || self.credits < total {
            let until = since + self.config.request_timeout;
            if now >= until {
                return Err(SendError::Starved {
                    needed: total,
                    available: self.credits,
                });
            }
            return Err(SendError::Blocked { until });
        }
        self.room -= total;
        self.credits -= total;

        // Ask for enough credits to grow the window to the target; above it
        // (servers may grant on interim and final replies) ask for less than
        // the charge, down to 1, so the window shrinks back.
        let target = i64::try_from(self.target).unwrap_or(i64::MAX);
        let first_charge = i64::try_from(reqs.first().map_or(1, |r| self.charge(r))).unwrap_or(1);
        // The header's CreditRequest is 16 bits and servers cap it anyway.
        let extra = (target - self.window).clamp(1 - first_charge, 8000);
        self.window += extra;

        let deadline = now + self.config.request_timeout;
        let large = self.large_mtu;
        let mut ids = Vec::with_capacity(reqs.len());
        let mut charges = Vec::with_capacity(reqs.len());
        let mut credit_requests = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let charge = self.charge(r);
            charges.push(if large {
                u16::try_from(charge).unwrap_or(u16::MAX)
            } else {
                0
            });
            let id = self.next_message_id;
            self.next_message_id += charge;
            let extra = if i == 0 { extra } else { 0 };
            let want = (i64::try_from(charge).unwrap_or(1) + extra).max(1);
            credit_requests.push(u16::try_from(want.min(8192)).unwrap_or(1));
            self.pending.insert(
                id,
                Entry {
                    charge,
                    extra,
                    async_id: 0,
                    deadline,
                    session_id: r.session_id,
                    tree_id: r.tree_id,
                    sec: sec.clone(),
                },
            );
            ids.push(id);
        }
        self.outstanding += total;
        Ok(Assigned {
            ids,
            charges,
            credit_requests,
            channel_sequence: self.channel_sequence,
        })
    }

    /// Forgets requests the caller no longer waits for (their frame could
    /// not be built, or the caller went away) and returns their credits to
    /// the window. A late response to them is ignored.
    pub fn abandon(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(e) = self.pending.remove(id) {
                self.release(&e);
            }
        }
    }

    fn release(&mut self, e: &Entry) {
        self.outstanding -= e.charge;
        self.room += e.charge;
        self.window -= i64::try_from(e.charge).unwrap_or(0) + e.extra;
    }

    /// The deadline of pending request `id`.
    pub fn deadline(&self, id: u64) -> Option<Instant> {
        self.pending.get(&id).map(|e| e.deadline)
    }

    /// The earliest deadline of any pending request.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|e| e.deadline).min()
    }

    /// Fails every request whose deadline has passed and queues a CANCEL
    /// for each (MS-SMB2 3.2.4.24: by AsyncId once an interim response gave
    /// one; CANCEL takes no credit and gets no reply).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            let Some(e) = self.pending.remove(&id) else {
                continue;
            };
            self.release(&e);
            if self.lost.is_none() {
                if let Ok(f) = cancel_frame(id, e.async_id, e.session_id, e.tree_id, &e.sec) {
                    self.transmits.push_back(f);
                }
            }
            self.events.push_back(Event::Failed(
                id,
                Failure::Timeout(self.config.request_timeout),
            ));
        }
    }

    /// Takes in one decrypted frame (a message or a compound; `encrypted`:
    /// it came inside a transform message). Each message's credits are
    /// added, interim responses extend their request's deadline, final
    /// responses become [`Event::Response`]. `spliced`: the frame is the
    /// head of a READ response whose data went straight to a file.
    ///
    /// `Err`: the peer broke the protocol; the caller should then
    /// [`Conn::handle_lost`] with that reason.
    pub fn handle_frame(
        &mut self,
        plain: Bytes,
        encrypted: bool,
        spliced: Option<usize>,
        now: Instant,
    ) -> Result<(), LostReason> {
        let bad = |what: String| LostReason::Protocol(Arc::from(what));
        let ranges =
            header::split_compound(&plain).map_err(|e| bad(format!("malformed reply: {e}")))?;
        for (s, e) in ranges {
            let msg = plain.slice(s..e);
            let h = Header::decode(&msg).map_err(|e| bad(format!("malformed reply: {e}")))?;
            if !h.is_response() {
                return Err(bad("the server sent a request".into()));
            }
            self.credits += u64::from(h.credits);
            self.window += i64::from(h.credits);
            self.events.push_back(Event::CreditsGranted(h.credits));
            if h.message_id == UNSOLICITED_MESSAGE_ID {
                if h.command == Command::OPLOCK_BREAK {
                    self.events.push_back(Event::Break(Response {
                        header: h,
                        msg,
                        encrypted,
                        spliced: None,
                    }));
                }
                continue;
            }
            if h.is_interim() {
                if let Some(p) = self.pending.get_mut(&h.message_id) {
                    p.async_id = h.async_id;
                    p.deadline = now + self.config.request_timeout;
                    self.events
                        .push_back(Event::Interim(h.message_id, h.async_id));
                }
                continue;
            }
            let Some(p) = self.pending.remove(&h.message_id) else {
                // A request we gave up on (timed out or abandoned).
                continue;
            };
            self.release(&p);
            self.events.push_back(Event::Response(
                h.message_id,
                Response {
                    header: h,
                    msg,
                    encrypted,
                    spliced,
                },
            ));
        }
        self.granted_max = self.granted_max.max(self.credits + self.outstanding);
        Ok(())
    }

    /// The connection is gone: every pending request fails, later sends fail.
    pub fn handle_lost(&mut self, reason: LostReason) {
        if self.lost.is_some() {
            return;
        }
        let mut ids: Vec<u64> = self.pending.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(e) = self.pending.remove(&id) {
                self.release(&e);
            }
            self.events
                .push_back(Event::Failed(id, Failure::Lost(reason.clone())));
        }
        self.transmits.clear();
        self.lost = Some(reason.clone());
        self.events.push_back(Event::Lost(reason));
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next frame the connection itself wants sent (a CANCEL), as the
    /// parts of one direct-TCP frame, length prefix included.
    pub fn poll_transmit(&mut self) -> Option<Vec<Bytes>> {
        self.transmits.pop_front()
    }
}

/// The header length, for callers that compute [`RequestMeta::send_len`].
pub const fn body_len(message_len: usize) -> usize {
    message_len.saturating_sub(HEADER_LEN)
}
