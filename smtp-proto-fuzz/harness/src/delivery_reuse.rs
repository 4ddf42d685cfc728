//! Target `delivery_reuse`: several [`Delivery`] runs over one client
//! session, as the adapters' `Connection` sends several messages: each
//! delivery but the last ends without QUIT ([`Delivery::keep_open`]) unless
//! the input says otherwise, and the next one starts on the idle client
//! ([`Delivery::start`], or the reply to a NOOP), against arbitrary server
//! bytes.
//!
//! Input: byte 0 picks the client configuration as in the `client` target
//! ([`crate::client::config`]); byte 1 the plan: bits 0-1 the number of
//! deliveries (1 to 3), bits 2-4 which of them end with QUIT (bit `2 + i`
//! for delivery `i`; the others are kept open), bit 5 start the next
//! delivery with a NOOP instead of [`Delivery::start`], bit 6 read what
//! the server sent while the session was idle before starting the next
//! delivery (as `Connection::send` does), bit 7 body pieces of 7 octets
//! instead of 256; bytes 2-4 the deliveries, each as byte 1 of the
//! `delivery` target (recipients, body, `SIZE=`, credentials); the rest is
//! what the server sends.
//!
//! Under every cut of [`crate::split::cuts`] the target asserts, besides
//! what the `delivery` target asserts of each report
//! ([`crate::delivery`]: every recipient once, in order, a bounce entry
//! from `dsn::Recipient::from_report` for each failure or delay, ...):
//!
//! - never a panic; [`Delivery::start`] and [`Delivery::on_event`] never
//!   fail; the machine never waits for a call the delivery did not make;
//!   the progress checks of [`crate::stream::Progress`] over the whole
//!   session (no stall, a bounded number of calls);
//! - each delivery finishes ([`Delivery::is_finished`]) unless the
//!   connection failed or the input ended under it; once it says so,
//!   every recipient is decided and stays so; one that ended with the
//!   client idle decided every recipient (none unknown or lost) and left
//!   the client in the `Ready` phase; a recipient not attempted for a
//!   reason (other than a lost connection) has the one
//!   [`Delivery::stopped_by`] gives;
//! - between deliveries the client is idle or closed (or the input ended:
//!   the later deliveries are then given up with
//!   [`Delivery::abandon`]);
//! - a delivery started on a closed client writes nothing, makes no
//!   transaction, is finished at once and reports every recipient
//!   [`NotAttempted::SessionClosed`];
//! - AUTH is written at most once per delivery, only by a delivery with
//!   credentials, and never again once the session is authenticated
//!   (RFC 4954 §4: a second AUTH after a successful one is refused with
//!   503);
//! - after an AUTH that failed (refused, or unable to start) and none
//!   that succeeded since, a delivery without credentials writes no MAIL
//!   and makes no transaction;
//! - a MAIL command line refused with a 5yz is never written again in the
//!   session (RFC 5321 §4.2.1), until an AUTH succeeds or TLS starts (the
//!   session remembers the last 8 such lines, as the machine does);
//! - a kept-open delivery writes no QUIT (except the one the machine
//!   sends itself when the server refuses the session or a required TLS);
//!   QUIT is written at most once in the session;
//! - the MAIL commands each delivery writes match its report's
//!   `transactions` (one fewer when a 421 dropped a queued MAIL), and
//!   those of the session stay within the server's `MAILMAX`;
//! - everything written holds CR and LF only as CRLF;
//! - the reports and the bytes written are the same under every cut (up
//!   to STARTTLS, and after a 421 up to the event before it, as in the
//!   `delivery` target). Reading what came while the session was idle
//!   (bit 6) depends on the cut by design (a reply already in the buffer
//!   is read as unsolicited, one still to come answers the next MAIL), so
//!   with bit 6 only the checks of each run hold.

use std::collections::VecDeque;

use smtp_proto::client::{
    Client, ClientError, ClientEvent, Delivery, DeliveryReport, NotAttempted, Outcome,
    RecipientOutcome, Verdict,
};
use smtp_proto::session::Phase;

use crate::client::{assert_crlf_only, config, error_name};
use crate::delivery::{check_batch, check_report, delivery, send_body, BODIES};
use crate::split::check_split_invariance;
use crate::stream::{replies_end, Progress};

/// Most deliveries over one session.
pub const MAX_DELIVERIES: usize = 3;

/// Most MAIL lines refused with a 5yz that the session remembers.
const REFUSED_MAIL_MAX: usize = 8;

/// What one run gave, compared across cuts: the reports (`None` when they
/// depend on the cut by design) and the bytes written.
type Result = (Option<Vec<DeliveryReport>>, Vec<u8>);

/// How a stretch of the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The delivery is finished and the client idle or closed.
    Finished,
    /// The machine waits for a call, the delivery has none to make (only
    /// while reading what came in while the session was idle).
    Paused,
    /// The session is over (QUIT answered, a 421).
    Closed,
    /// A protocol error closed the session.
    Error,
    /// The input ended with the session open.
    InputEnded,
}

/// What one delivery's events showed, for [`check_report`].
#[derive(Debug, Default)]
struct Seen {
    accepted_messages: usize,
    quit_answered: bool,
    refused_for_good_after: Option<usize>,
    last_batch: Vec<usize>,
    /// The recipients before it had a transaction.
    tried: usize,
    /// Every recipient's outcome when the delivery first said it was
    /// finished.
    at_finish: Option<Vec<RecipientOutcome>>,
}

impl Seen {
    /// Once `d` is finished: every recipient is decided, and stays as it
    /// was when it first said so.
    fn note_finished(&mut self, d: &Delivery) {
        if !d.is_finished() {
            return;
        }
        let now: Vec<RecipientOutcome> = (0..d.envelope().recipients.len())
            .map(|i| {
                d.outcome(i)
                    .cloned()
                    .unwrap_or_else(|| panic!("finished with recipient {i} undecided"))
            })
            .collect();
        match &self.at_finish {
            Some(then) => assert_eq!(then, &now, "outcomes changed after the delivery finished"),
            None => self.at_finish = Some(now),
        }
    }
}

/// The client, the server's bytes still to come and what was written.
struct Session<'p> {
    client: Client,
    pieces: core::slice::Iter<'p, &'p [u8]>,
    buf: Vec<u8>,
    out: Vec<u8>,
    progress: Progress,
    max_buffered: usize,
    piece_size: usize,
    error: Option<String>,
    /// The output once the last event other than a 421 was handled.
    after_last_event: usize,
    /// That length when a 421 came.
    before_421: Option<usize>,
    past: Past,
}

/// What the session's past says of the next commands.
#[derive(Debug, Default)]
struct Past {
    /// How much of the output [`Past::scan_mail`] has read.
    scanned: usize,
    /// The MAIL lines written whose reply has not come, in order.
    unanswered_mail: VecDeque<Vec<u8>>,
    /// The MAIL lines refused with a 5yz, oldest first, since the last
    /// successful AUTH or TLS start.
    refused_mail: VecDeque<Vec<u8>>,
    /// An AUTH failed and none succeeded since.
    auth_failed: bool,
}

impl Past {
    /// Reads the command lines of `out` written since the last call: a
    /// MAIL line is never one refused with a 5yz before, and awaits its
    /// reply.
    fn scan_mail(&mut self, out: &[u8]) {
        let Some(end) = out.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let end = end + 1;
        if end <= self.scanned {
            return;
        }
        for line in out[self.scanned..end].split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b"MAIL FROM:") {
                assert!(
                    !self.refused_mail.iter().any(|l| l == line),
                    "MAIL refused with a 5yz repeated: {:?}",
                    String::from_utf8_lossy(line)
                );
                self.unanswered_mail.push_back(line.to_vec());
            }
        }
        self.scanned = end;
    }

    /// What an event tells of the session's past: a MAIL refused for
    /// good, an AUTH that failed or succeeded, TLS.
    fn note(&mut self, out: &[u8], event: &ClientEvent<'_>) {
        self.scan_mail(out);
        match event {
            ClientEvent::Sender { verdict, .. } => {
                let line = self.unanswered_mail.pop_front();
                if let (Verdict::Permanent, Some(line)) = (verdict, line) {
                    self.refused_mail.retain(|l| *l != line);
                    if self.refused_mail.len() >= REFUSED_MAIL_MAX {
                        self.refused_mail.pop_front();
                    }
                    self.refused_mail.push_back(line);
                }
            }
            ClientEvent::AuthFailed { .. } => self.auth_failed = true,
            ClientEvent::Authenticated { .. } | ClientEvent::StartTls => {
                self.auth_failed = false;
                self.refused_mail.clear();
            }
            _ => {}
        }
    }
}

impl Session<'_> {
    /// After a call of `d` that had made `before` transactions: at most
    /// one more, and a new one carries the recipients of the last one
    /// refused with "too many recipients", then the ones no transaction
    /// carried yet, at least one and at most the server's `RCPTMAX` (see
    /// [`check_batch`]).
    fn check_transaction(&self, d: &Delivery, before: usize, seen: &mut Seen) {
        if d.transactions() == before {
            return;
        }
        assert_eq!(d.transactions(), before + 1);
        assert!(
            seen.refused_for_good_after.is_none(),
            "MAIL repeated after a 5yz"
        );
        let batch = d.current_transaction();
        let n = d.envelope().recipients.len();
        seen.tried = check_batch(batch, &seen.last_batch, seen.tried, n, &self.client);
        seen.last_batch = batch.to_vec();
    }

    /// Hands the machine's events to `d` (whose message is `body`) until
    /// it is finished with the client idle or closed (`read`: reading
    /// more input when the machine needs it), or, without `read`, until
    /// the machine needs input or waits for a call.
    fn pump(&mut self, d: &mut Delivery, body: &[u8], seen: &mut Seen, read: bool) -> End {
        // Replies past the first complete one given too (see
        // `replies_end`).
        let mut more = 0;
        loop {
            if read && d.is_finished() && (self.client.is_idle() || self.client.is_closed()) {
                return if self.client.is_closed() {
                    End::Closed
                } else {
                    End::Finished
                };
            }
            self.progress.call();
            let limit = replies_end(&self.buf, 1 + more);
            let step = match self
                .client
                .handle_input(self.buf.get(..limit).unwrap_or_default())
            {
                Ok(step) => step,
                Err(ClientError::Usage(e)) => panic!("handle_input refused the caller: {e:?}"),
                Err(e) => {
                    assert!(
                        self.client.is_closed(),
                        "open after the protocol error {e:?}"
                    );
                    self.error = Some(error_name(&e));
                    self.client.poll_transmit(&mut self.out);
                    return End::Error;
                }
            };
            let consumed = step.consumed;
            self.progress.consumed(consumed, limit);
            if consumed > 0 {
                more = 0;
            }
            match step.outcome {
                Outcome::Event(event) => {
                    // The commands the machine counts as sent are in its
                    // queue: take them first, or a reply (the scripted
                    // server does not wait for the command) would be
                    // matched to an earlier MAIL line.
                    self.client.poll_transmit(&mut self.out);
                    self.past.note(&self.out, &event);
                    match &event {
                        ClientEvent::Sender {
                            verdict: Verdict::Permanent,
                            ..
                        } => seen.refused_for_good_after = Some(d.transactions()),
                        ClientEvent::Message {
                            verdict: Verdict::Success,
                            ..
                        } => seen.accepted_messages += 1,
                        ClientEvent::Closed { .. } => seen.quit_answered = true,
                        ClientEvent::ServiceClosing { .. } => {
                            self.before_421.get_or_insert(self.after_last_event);
                        }
                        _ => {}
                    }
                    let before = d.transactions();
                    d.on_event(&mut self.client, &event)
                        .expect("the delivery's call fits the event");
                    self.check_transaction(d, before, seen);
                    seen.note_finished(d);
                    if event == ClientEvent::SendBody {
                        send_body(&mut self.client, d, body, self.piece_size);
                    }
                    if event == ClientEvent::StartTls {
                        self.client.poll_transmit(&mut self.out);
                        if let Some(rest) = self.buf.get(consumed..).filter(|r| !r.is_empty()) {
                            // Bytes after the 220 in the same read: the
                            // machine refuses them before the handshake.
                            let e = self
                                .client
                                .handle_input(rest)
                                .expect_err("bytes after the STARTTLS 220 are refused");
                            self.error = Some(error_name(&e));
                            return End::Error;
                        }
                        self.client
                            .tls_established()
                            .expect("the handshake was awaited");
                    }
                }
                Outcome::NeedInput if consumed == 0 && limit < self.buf.len() => {
                    // The reply goes on past the line taken for its end.
                    more += 1;
                    continue;
                }
                Outcome::NeedInput => {
                    assert!(
                        self.buf.len() - consumed <= self.max_buffered,
                        "asked for input while {} bytes are buffered",
                        self.buf.len() - consumed
                    );
                    self.client.poll_transmit(&mut self.out);
                    self.buf.drain(..consumed);
                    if !read {
                        return End::Paused;
                    }
                    if consumed == 0 {
                        match self.pieces.next() {
                            Some(piece) => {
                                self.buf.extend_from_slice(piece);
                                self.progress.next_piece();
                            }
                            None => return End::InputEnded,
                        }
                    }
                    continue;
                }
                Outcome::Paused => {
                    self.buf.drain(..consumed);
                    self.client.poll_transmit(&mut self.out);
                    assert!(
                        !read,
                        "the machine waits for a call the delivery did not make: {:?}",
                        self.client
                    );
                    return End::Paused;
                }
                Outcome::Closed => {
                    self.buf.drain(..consumed);
                    self.client.poll_transmit(&mut self.out);
                    return End::Closed;
                }
                Outcome::Transmit => {}
                other => panic!("unexpected outcome {other:?}"),
            }
            self.buf.drain(..consumed);
            self.client.poll_transmit(&mut self.out);
            if self.before_421.is_none() {
                self.after_last_event = self.out.len();
            }
        }
    }
}

/// The command lines of `out` that start with `prefix`.
fn count(out: &[u8], prefix: &[u8]) -> usize {
    out.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// Runs the plan over a fresh client and `pieces`, for the comparison
/// across cuts.
fn drive(bits: u8, plan: u8, params: [u8; MAX_DELIVERIES], pieces: &[&[u8]]) -> Result {
    let (reports, out, comparable) = play(bits, plan, params, pieces);
    if comparable {
        (Some(reports), out)
    } else {
        (None, Vec::new())
    }
}

/// Runs the plan over a fresh client and `pieces`: the reports, the
/// bytes written (cut as the comparison wants them) and whether they
/// may be compared across cuts (not after STARTTLS, nor when the idle
/// session is read: see the module documentation).
fn play(
    bits: u8,
    plan: u8,
    params: [u8; MAX_DELIVERIES],
    pieces: &[&[u8]],
) -> (Vec<DeliveryReport>, Vec<u8>, bool) {
    let cfg = config(bits);
    let deliveries = 1 + usize::from(plan & 3) % MAX_DELIVERIES;
    let noop = plan & 32 != 0;
    let read_idle = plan & 64 != 0;
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut s = Session {
        client: Client::new(cfg.clone()),
        pieces: pieces.iter(),
        buf: Vec::new(),
        out: Vec::new(),
        progress: Progress::for_input(total),
        max_buffered: cfg.replies.max_reply_len + cfg.replies.max_line_len,
        piece_size: if plan & 128 != 0 { 7 } else { 256 },
        error: None,
        after_last_event: 0,
        before_421: None,
        past: Past::default(),
    };
    let mut reports = Vec::new();
    let mut lost = false;
    let mut transactions = 0usize;
    for (i, &p) in params.iter().enumerate().take(deliveries) {
        let body = BODIES[usize::from((p >> 3) & 3)];
        let keep_open = plan & (4 << i) == 0;
        let mut d = delivery(p, body);
        if keep_open {
            d = d.keep_open();
        }
        let n = d.envelope().recipients.len();
        let has_auth = p >> 6 != 0;
        if lost {
            // The connection failed under an earlier delivery: given up,
            // as `Connection::send` does on a session that has ended.
            let report = d.abandon(NotAttempted::ConnectionLost);
            check_report(&report, n, 0, false, &[]);
            assert!(report.recipients.iter().all(|r| r.outcome
                == RecipientOutcome::NotAttempted {
                    reason: NotAttempted::ConnectionLost
                }));
            reports.push(report);
            continue;
        }
        let start = s.out.len();
        let was_authenticated = s.client.is_authenticated();
        // An AUTH of the session failed: without credentials of its own,
        // this delivery sends no MAIL.
        let auth_blocked = s.past.auth_failed && !has_auth;
        let mut seen = Seen::default();
        let mut started_closed = false;
        let end = if i == 0 {
            // The first delivery starts from the greeting.
            s.pump(&mut d, body, &mut seen, true)
        } else {
            assert!(
                s.client.is_idle() || s.client.is_closed(),
                "neither idle nor closed between deliveries: {:?}",
                s.client
            );
            let mut early = None;
            if read_idle && !s.client.is_closed() {
                // What came while the session was idle: a 421, or a reply
                // nothing asked for.
                match s.pump(&mut d, body, &mut seen, false) {
                    End::Paused => {}
                    other => early = Some(other),
                }
            }
            match early {
                Some(end) => {
                    assert_eq!(s.out.len(), start, "written while the session was idle");
                    end
                }
                None if s.client.is_closed() => {
                    started_closed = true;
                    d.start(&mut s.client).expect("start on a closed client");
                    seen.note_finished(&d);
                    assert!(d.is_finished(), "started on a closed client, not finished");
                    End::Closed
                }
                None => {
                    if noop {
                        s.client.noop().expect("NOOP on the idle client");
                    } else {
                        d.start(&mut s.client).expect("start on the idle client");
                        s.check_transaction(&d, 0, &mut seen);
                    }
                    seen.note_finished(&d);
                    s.client.poll_transmit(&mut s.out);
                    s.pump(&mut d, body, &mut seen, true)
                }
            }
        };
        let error = match end {
            End::Error => s.error.clone(),
            End::InputEnded => {
                lost = true;
                Some("connection lost".to_owned())
            }
            End::Finished | End::Closed | End::Paused => None,
        };
        match end {
            End::Finished => {
                assert!(d.is_finished() && s.client.is_idle());
                assert_eq!(s.client.phase(), Phase::Ready);
                assert!(keep_open, "idle after a delivery that quits");
            }
            End::Closed => assert!(d.is_finished(), "the session closed under a delivery"),
            End::Paused => unreachable!("only while reading an idle session"),
            End::Error | End::InputEnded => {}
        }
        s.client.poll_transmit(&mut s.out);
        s.past.scan_mail(&s.out);
        let stopped_by = d.stopped_by().cloned();
        if matches!(stopped_by, Some(NotAttempted::AuthUnavailable(_))) {
            // Its AUTH could not start (or an earlier one's could not).
            s.past.auth_failed = true;
        }
        seen.note_finished(&d);
        let at_finish = seen.at_finish.take();
        let report = d.finish(error);
        let written = &s.out[start..];
        check_report(
            &report,
            n,
            seen.accepted_messages,
            seen.quit_answered,
            &seen.last_batch,
        );
        if let Some(then) = at_finish {
            let now: Vec<_> = report
                .recipients
                .iter()
                .map(|r| r.outcome.clone())
                .collect();
            assert_eq!(
                then, now,
                "the report differs from the outcomes at the finish"
            );
        }
        for r in &report.recipients {
            // A recipient left out for a reason is left out for the one
            // the delivery stopped by (what `Connection` records as the
            // session's end).
            if let RecipientOutcome::NotAttempted { reason } = &r.outcome {
                if !matches!(
                    reason,
                    NotAttempted::ConnectionLost | NotAttempted::Unanswered
                ) {
                    assert_eq!(Some(reason), stopped_by.as_ref(), "not the stop reason");
                }
            }
        }
        if end == End::Finished {
            for r in &report.recipients {
                assert!(
                    !matches!(
                        r.outcome,
                        RecipientOutcome::Unknown
                            | RecipientOutcome::NotAttempted {
                                reason: NotAttempted::ConnectionLost | NotAttempted::Unanswered
                            }
                    ),
                    "undecided in a finished delivery: {r:?}"
                );
            }
        }
        if started_closed {
            assert!(written.is_empty(), "written on a closed session");
            assert_eq!(report.transactions, 0);
            assert!(
                report.recipients.iter().all(|r| r.outcome
                    == RecipientOutcome::NotAttempted {
                        reason: NotAttempted::SessionClosed
                    }),
                "{report:?}"
            );
        }
        let auths = count(written, b"AUTH ");
        assert!(auths <= 1, "AUTH written {auths} times by one delivery");
        assert!(
            auths == 0 || (has_auth && !was_authenticated),
            "AUTH written without credentials or on an authenticated session"
        );
        if keep_open {
            let machine_quit = matches!(
                stopped_by,
                Some(NotAttempted::SessionRefused { .. } | NotAttempted::TlsUnavailable { .. })
            );
            assert!(
                machine_quit || count(written, b"QUIT\r") == 0,
                "QUIT written by a kept-open delivery ({stopped_by:?})"
            );
        }
        let mails = count(written, b"MAIL FROM:");
        if auth_blocked {
            assert_eq!(mails, 0, "MAIL written after a failed AUTH");
            assert_eq!(report.transactions, 0);
        }
        assert!(
            mails <= report.transactions && mails + 1 >= report.transactions,
            "{mails} MAIL written for {} transactions",
            report.transactions
        );
        transactions += report.transactions;
        reports.push(report);
    }
    s.client.poll_transmit(&mut s.out);
    let mut out = s.out;
    assert_crlf_only(&out);
    assert!(count(&out, b"QUIT\r") <= 1, "QUIT written more than once");
    let mails = count(&out, b"MAIL FROM:");
    assert!(mails <= transactions && transactions <= mails + 1);
    if let Some(max) = s.client.limits().mail_max {
        // RFC 9422 §4.1: MAILMAX counts the transactions of the session.
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        assert!(
            mails <= max,
            "{mails} MAIL over the session above MAILMAX {max}"
        );
    }
    // See the `delivery` target: after a 421 the output is compared up to
    // the event before it, and after STARTTLS's 220 not at all.
    if let Some(n) = s.before_421 {
        out.truncate(n);
    }
    let starttls = out.windows(10).position(|w| w == b"STARTTLS\r\n");
    if let Some(at) = starttls {
        out.truncate(at + 10);
    }
    (reports, out, starttls.is_none() && !read_idle)
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let [bits, plan, p0, p1, p2, stream @ ..] = data else {
        return;
    };
    let _ = check_split_invariance(stream, |pieces| {
        drive(*bits, *plan, [*p0, *p1, *p2], pieces)
    });
}

#[cfg(test)]
mod tests {
    use super::{drive, play, run};
    use smtp_proto::client::{NotAttempted, RecipientOutcome};

    const EHLO: &str = "220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n";
    const ONE: &str = "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n";

    fn input(bits: u8, plan: u8, params: [u8; 3], stream: &str) -> Vec<u8> {
        let mut v = vec![bits, plan];
        v.extend_from_slice(&params);
        v.extend_from_slice(stream.as_bytes());
        v
    }

    /// Three deliveries kept open, with credentials on all: AUTH once,
    /// three MAIL, no QUIT.
    #[test]
    fn three_messages_authenticate_once_and_never_quit() {
        let stream = format!("{EHLO}235 ok\r\n{ONE}{ONE}{ONE}");
        let (reports, out) = drive(96, 2, [64; 3], &[stream.as_bytes()]);
        let reports = reports.expect("compared");
        assert_eq!(reports.len(), 3);
        assert!(reports.iter().all(|r| r.all_delivered()), "{reports:?}");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("AUTH PLAIN").count(), 1, "{out}");
        assert_eq!(out.matches("MAIL FROM:").count(), 3, "{out}");
        assert!(!out.contains("QUIT"), "{out}");
        run(&input(96, 2, [64; 3], &stream));
    }

    /// The first delivery quits; the next one starts on the closed
    /// client: nothing written, every recipient `SessionClosed`.
    #[test]
    fn a_delivery_after_quit_is_not_attempted() {
        let stream = format!("{EHLO}{ONE}221 bye\r\n");
        let (reports, out) = drive(32, 1 | 4, [0, 1, 0], &[stream.as_bytes()]);
        let reports = reports.expect("compared");
        assert!(reports[0].all_delivered());
        assert_eq!(reports[1].recipients.len(), 2);
        for r in &reports[1].recipients {
            assert_eq!(
                r.outcome,
                RecipientOutcome::NotAttempted {
                    reason: NotAttempted::SessionClosed
                }
            );
        }
        assert!(String::from_utf8(out).unwrap().ends_with("QUIT\r\n"));
        run(&input(32, 1 | 4, [0, 1, 0], &stream));
    }

    /// A NOOP before the second delivery, and the last one quits.
    #[test]
    fn a_noop_starts_the_next_delivery() {
        let stream = format!("{EHLO}{ONE}250 noop ok\r\n{ONE}221 bye\r\n");
        let (reports, out) = drive(32, 1 | 8 | 32, [0; 3], &[stream.as_bytes()]);
        let reports = reports.expect("compared");
        assert!(reports.iter().all(|r| r.all_delivered()), "{reports:?}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("NOOP\r\nMAIL FROM:"), "{out}");
        assert!(out.ends_with("QUIT\r\n"), "{out}");
        run(&input(32, 1 | 8 | 32, [0; 3], &stream));
    }

    /// A 421 read while the session is idle (plan bit 6) closes it: the
    /// second delivery gets `ServiceClosing` and writes nothing, the third
    /// starts on the closed client.
    #[test]
    fn a_421_while_idle_ends_the_session() {
        let stream = format!("{EHLO}{ONE}421 4.3.2 bye\r\n");
        let (reports, out, comparable) = play(32, 2 | 64, [0; 3], &[stream.as_bytes()]);
        assert!(!comparable);
        assert!(reports[0].all_delivered());
        assert!(matches!(
            &reports[1].recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::ServiceClosing { .. }
            }
        ));
        assert_eq!(
            reports[2].recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::SessionClosed
            }
        );
        assert_eq!(
            String::from_utf8(out)
                .unwrap()
                .matches("MAIL FROM:")
                .count(),
            1
        );
        run(&input(32, 2 | 64, [0; 3], &stream));
    }

    /// A MAIL refused with a 5yz: the next delivery, whose MAIL would be
    /// the same, writes nothing and reports its recipients
    /// `SenderRefused`.
    #[test]
    fn a_mail_refused_for_good_is_not_repeated() {
        let stream = format!("{EHLO}550 5.7.1 no\r\n");
        let (reports, out) = drive(32, 1, [0; 3], &[stream.as_bytes()]);
        let reports = reports.expect("compared");
        assert!(reports[0].recipients[0].outcome.is_permanent_failure());
        assert!(matches!(
            &reports[1].recipients[0].outcome,
            RecipientOutcome::NotAttempted {
                reason: NotAttempted::SenderRefused { reply }
            } if u16::from(reply.code()) == 550
        ));
        assert_eq!(reports[1].transactions, 0);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("MAIL FROM:").count(), 1, "{out}");
        run(&input(32, 1, [0; 3], &stream));
    }

    /// A refused password: the next delivery, without credentials, writes
    /// nothing and reports its recipients `AuthFailed`.
    #[test]
    fn after_a_refused_auth_a_delivery_without_credentials_sends_nothing() {
        let stream = format!("{EHLO}535 5.7.8 no\r\n");
        let (reports, out) = drive(96, 1, [64, 0, 0], &[stream.as_bytes()]);
        let reports = reports.expect("compared");
        for report in &reports {
            assert!(matches!(
                &report.recipients[0].outcome,
                RecipientOutcome::NotAttempted {
                    reason: NotAttempted::AuthFailed { reply }
                } if u16::from(reply.code()) == 535
            ));
        }
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("AUTH PLAIN").count(), 1, "{out}");
        assert!(!out.contains("MAIL FROM:"), "{out}");
        run(&input(96, 1, [64, 0, 0], &stream));
    }
}
