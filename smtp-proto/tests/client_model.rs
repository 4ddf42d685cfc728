//! [`Delivery`] and the client machine against a server model that keeps
//! the state of RFC 5321, RFC 2920 (PIPELINING), RFC 3030 (CHUNKING) and
//! RFC 2033 (LMTP), reads what the client writes, and answers each command
//! with a reply drawn at random among the ones those RFCs allow there:
//! success, 4yz, 5yz, "too many recipients", a `354` to DATA after every
//! RCPT was refused, `421` in place of any reply or unsolicited after one,
//! one-line and multi-line replies, handed to the client in pieces of
//! random length. Over thousands of seeds, over SMTP and LMTP, with and
//! without PIPELINING, CHUNKING, BINARYMIME, SIZE and LIMITS:
//!
//! - the client keeps the server's sequence: no nested MAIL, no RCPT,
//!   DATA or BDAT without a transaction except the pipelined commands
//!   after a refused MAIL (RFC 2920 §3.1);
//! - it never fails and never waits for a reply the server does not owe;
//! - each transaction summary gives every recipient the server's verdict;
//! - the report gives every recipient one outcome, the server's: delivered
//!   exactly when the server took the message for it (and never twice), a
//!   permanent or temporary failure with the code of the server's reply
//!   that decided it, or not attempted for a reason the server gave (a
//!   `421`, a refused MAIL, `MAILMAX`) or a message the client refused to
//!   send there.

mod delivery_support;
mod rng;

use std::collections::HashMap;

use delivery_support::{config, envelope};
use rng::Rng;
use smtp_proto::client::{
    ChunkingPolicy, Client, ClientEvent, Delivery, NotAttempted, Outcome, Protocol,
    RecipientOutcome, Verdict,
};
use smtp_proto::command::BodyType;
use smtp_proto::reply::OwnedReply;

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nline one\r\n.dot line\r\nbare LF\nlast";

/// The replies the model draws from, per command.
const MAIL: &[&str] = &[
    "250 2.1.0 ok",
    "250 2.1.0 ok",
    "250 2.1.0 ok",
    "250 2.1.0 ok",
    "451 4.3.0 try later",
    "550 5.7.1 sender refused",
    "421 4.3.2 closing",
];
const RCPT: &[&str] = &[
    "250 2.1.5 ok",
    "250 2.1.5 ok",
    "250 2.1.5 ok",
    "550 5.1.1 no such user",
    "452 4.5.3 too many recipients",
    "552 5.5.3 too many recipients",
    "452 too many recipients",
    "452 4.2.2 mailbox full",
    "421 4.3.2 closing",
];
const DATA: &[&str] = &[
    "354 go ahead",
    "354 go ahead",
    "354 go ahead",
    "451 4.3.0 try later",
    "554 5.7.1 message refused",
    "421 4.3.2 closing",
];
const CHUNK: &[&str] = &[
    "250 2.0.0 chunk ok",
    "250 2.0.0 chunk ok",
    "250 2.0.0 chunk ok",
    "451 4.3.0 chunk refused for now",
    "554 5.3.4 chunk refused",
    "421 4.3.2 closing",
];
const END: &[&str] = &[
    "250 2.0.0 queued",
    "250 2.0.0 queued",
    "452 4.2.2 mailbox full",
    "554 5.6.0 message refused",
    "421 4.3.2 closing",
];

/// What the server reads next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Command,
    /// DATA content, up to the final `.`.
    Data,
    /// A BDAT chunk of this many octets.
    Chunk {
        left: usize,
        last: bool,
    },
}

/// The server's word on one recipient.
#[derive(Debug, Clone, Default)]
struct Truth {
    /// Times the server took the message for it.
    delivered: usize,
    /// The last reply that decided it (a refusal, or `421`).
    decided_by: Option<String>,
}

struct Server {
    rng: Rng,
    lmtp: bool,
    /// The client's bytes not read yet.
    input: Vec<u8>,
    /// The replies not handed to the client yet.
    output: Vec<u8>,
    mode: Mode,
    /// A MAIL was accepted: a transaction is open.
    mail: bool,
    /// The reply to the last MAIL.
    mail_reply: String,
    /// Every code the server answered a MAIL with.
    mail_codes: Vec<String>,
    /// The recipients accepted in the open transaction.
    rcpts: Vec<String>,
    /// The transaction's message was refused (DATA or a BDAT chunk): its
    /// recipients are decided.
    refused: bool,
    closed: bool,
    sent_421: bool,
    /// The client's hello was read (its reply is in `output` from the
    /// start).
    greeted: bool,
    truth: HashMap<String, Truth>,
    log: Vec<String>,
    violations: Vec<String>,
}

impl Server {
    fn new(rng: Rng, lmtp: bool, ehlo: String) -> Self {
        Server {
            rng,
            lmtp,
            input: Vec::new(),
            output: format!("220 mx.example.org ESMTP\r\n{ehlo}").into_bytes(),
            mode: Mode::Command,
            mail: false,
            mail_reply: String::new(),
            mail_codes: Vec::new(),
            rcpts: Vec::new(),
            refused: false,
            closed: false,
            sent_421: false,
            greeted: false,
            truth: HashMap::new(),
            log: Vec::new(),
            violations: Vec::new(),
        }
    }

    fn decide(&mut self, who: &str, reply: &str) {
        self.truth.entry(who.to_string()).or_default().decided_by = Some(reply.to_string());
    }

    fn deliver(&mut self, who: &str) {
        self.truth.entry(who.to_string()).or_default().delivered += 1;
    }

    fn reset(&mut self) {
        self.mail = false;
        self.rcpts.clear();
        self.refused = false;
    }

    /// Sends `reply`, sometimes as two lines, and sometimes a `421` after
    /// it. A `421` decides the recipients of an open transaction that
    /// nothing decided yet.
    fn reply(&mut self, reply: &str) {
        self.log.push(format!("S: {reply}"));
        if self.rng.below(4) == 0 {
            // The first line repeats the code and the enhanced code.
            let first = format!("{}-{} (more follows)\r\n", &reply[..3], &reply[4..]);
            self.output.extend_from_slice(first.as_bytes());
        }
        self.output.extend_from_slice(reply.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        if reply.starts_with("421") {
            self.closed = true;
            self.sent_421 = true;
            if !self.refused {
                for who in self.rcpts.clone() {
                    if self.truth.get(&who).map_or(true, |t| t.delivered == 0) {
                        self.decide(&who, reply);
                    }
                }
            }
            return;
        }
        if !reply.starts_with("221") && self.rng.below(60) == 0 {
            self.reply("421 4.3.2 shutting down");
        }
    }

    /// The replies after the whole message: one, or in LMTP one per
    /// accepted recipient (RFC 2033 §4.2).
    fn end_of_message(&mut self) {
        let rcpts = std::mem::take(&mut self.rcpts);
        let replies = if self.lmtp { rcpts.len() } else { 1 };
        for i in 0..replies {
            if self.closed {
                break;
            }
            let reply = self.rng.pick(END);
            let decided = if self.lmtp { &rcpts[i..=i] } else { &rcpts[..] };
            for who in decided {
                if reply.starts_with('2') {
                    self.deliver(who);
                } else {
                    self.decide(who, reply);
                }
            }
            // A 421 after this reply decides the recipients still waiting
            // for theirs.
            self.rcpts = rcpts[(i + 1).min(rcpts.len())..].to_vec();
            if !self.lmtp {
                self.rcpts.clear();
            }
            self.reply(reply);
        }
        self.reset();
    }

    /// Reads and answers everything the client wrote.
    fn run(&mut self) {
        while !self.closed {
            match self.mode {
                Mode::Data => {
                    let end = if self.input.starts_with(b".\r\n") {
                        Some(3)
                    } else {
                        self.input
                            .windows(5)
                            .position(|w| w == b"\r\n.\r\n")
                            .map(|p| p + 5)
                    };
                    let Some(end) = end else { return };
                    self.input.drain(..end);
                    self.log.push("C: <message>".into());
                    self.mode = Mode::Command;
                    if self.rcpts.is_empty() {
                        self.reply("554 5.5.1 no valid recipients");
                        self.reset();
                    } else {
                        self.end_of_message();
                    }
                }
                Mode::Chunk { left, last } => {
                    if self.input.len() < left {
                        return;
                    }
                    self.input.drain(..left);
                    self.mode = Mode::Command;
                    if !self.mail || self.rcpts.is_empty() {
                        self.violations.push("BDAT without a transaction".into());
                        self.reply("503 5.5.1 no transaction");
                    } else if self.refused {
                        // RFC 3030 §2: chunks already in the pipeline after
                        // a refused one are discarded.
                        self.reply("503 5.5.1 an earlier chunk was refused");
                        if last {
                            self.reset();
                        }
                    } else if last {
                        self.end_of_message();
                    } else {
                        let reply = self.rng.pick(CHUNK);
                        if !reply.starts_with('2') && !reply.starts_with("421") {
                            for who in self.rcpts.clone() {
                                self.decide(&who, reply);
                            }
                            self.refused = true;
                        }
                        self.reply(reply);
                    }
                }
                Mode::Command => {
                    let Some(p) = self.input.windows(2).position(|w| w == b"\r\n") else {
                        return;
                    };
                    let line: Vec<u8> = self.input.drain(..p + 2).collect();
                    let line = String::from_utf8_lossy(&line[..p]).into_owned();
                    self.log.push(format!("C: {line}"));
                    self.command(&line);
                }
            }
        }
        self.input.clear();
    }

    fn command(&mut self, line: &str) {
        if line.starts_with("EHLO ") || line.starts_with("LHLO ") {
            if self.greeted {
                self.violations.push("a second hello".into());
            }
            self.greeted = true;
        } else if line.starts_with("MAIL FROM:") {
            if self.mail {
                self.violations.push("nested MAIL".into());
                self.reply("503 5.5.1 nested MAIL");
                return;
            }
            let reply = self.rng.pick(MAIL);
            self.mail = reply.starts_with('2');
            self.mail_reply = reply.to_string();
            self.mail_codes.push(reply[..3].to_string());
            self.reply(reply);
        } else if let Some(rest) = line.strip_prefix("RCPT TO:<") {
            let who = rest[..rest.find('>').unwrap()].to_string();
            if !self.mail {
                if self.mail_reply.starts_with('2') {
                    self.violations.push("RCPT without MAIL".into());
                }
                let mail_reply = self.mail_reply.clone();
                self.decide(&who, &mail_reply);
                self.reply("503 5.5.1 MAIL first");
                return;
            }
            let reply = self.rng.pick(RCPT);
            if reply.starts_with('2') {
                self.rcpts.push(who);
            } else {
                self.decide(&who, reply);
            }
            self.reply(reply);
        } else if line == "DATA" {
            if !self.mail {
                if self.mail_reply.starts_with('2') {
                    self.violations.push("DATA without MAIL".into());
                }
                self.reply("503 5.5.1 MAIL first");
            } else if self.rcpts.is_empty() {
                // RFC 2920 §3.1: a server may answer 354 all the same
                // (not in LMTP, RFC 2033 §4.2).
                if !self.lmtp && self.rng.below(2) == 0 {
                    self.mode = Mode::Data;
                    self.reply("354 go ahead");
                } else {
                    self.reply("554 5.5.1 no valid recipients");
                }
            } else {
                let reply = self.rng.pick(DATA);
                if reply.starts_with("354") {
                    self.mode = Mode::Data;
                } else if !reply.starts_with("421") {
                    for who in self.rcpts.clone() {
                        self.decide(&who, reply);
                    }
                    self.refused = true;
                }
                self.reply(reply);
            }
        } else if let Some(rest) = line.strip_prefix("BDAT ") {
            let mut words = rest.split(' ');
            let left = words.next().unwrap().parse().unwrap();
            let last = words.next() == Some("LAST");
            self.mode = Mode::Chunk { left, last };
        } else if line == "RSET" {
            self.reset();
            self.reply("250 2.0.0 reset");
        } else if line == "QUIT" {
            self.reply("221 2.0.0 bye");
            self.closed = true;
        } else {
            self.violations.push(format!("unknown command {line}"));
            self.reply("500 5.5.2 unknown command");
        }
    }
}

/// The verdict a reply's code gives a recipient (RFC 5321 §4.5.3.1.10:
/// a `552` "too many recipients" is temporary).
fn verdict_of(reply: &str) -> Verdict {
    if reply.starts_with('2') {
        Verdict::Success
    } else if reply.starts_with('4') || reply.starts_with("552 5.5.3") {
        Verdict::RetryLater
    } else {
        Verdict::Permanent
    }
}

/// One run; `Err` tells what went wrong, with the transcript.
fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let lmtp = rng.below(3) == 0;
    let pipelining = rng.below(2) == 0;
    let chunking = rng.below(2) == 0;
    let binary = chunking && rng.below(3) == 0;
    let names: Vec<String> = (0..1 + rng.below(4))
        .map(|i| format!("r{i}@example.org"))
        .collect();
    let to: Vec<&str> = names.iter().map(String::as_str).collect();

    let mut ehlo = String::from("250-mx.example.org\r\n");
    if pipelining {
        ehlo.push_str("250-PIPELINING\r\n");
    }
    if chunking {
        ehlo.push_str("250-CHUNKING\r\n");
    }
    if binary {
        ehlo.push_str("250-BINARYMIME\r\n");
    }
    match rng.below(4) {
        0 => ehlo.push_str("250-LIMITS RCPTMAX=2\r\n"),
        1 => ehlo.push_str("250-LIMITS RCPTMAX=1 MAILMAX=2\r\n"),
        _ => {}
    }
    if rng.below(2) == 0 {
        ehlo.push_str("250-SIZE 100000\r\n");
    }
    ehlo.push_str("250 8BITMIME\r\n");

    let mut cfg = config();
    if lmtp {
        cfg = cfg.with_protocol(Protocol::Lmtp);
    }
    if rng.below(4) == 0 {
        cfg = cfg.with_pipelining(false);
    }
    cfg = cfg.with_chunking(match rng.below(5) {
        0 => ChunkingPolicy::Never,
        1 | 2 => ChunkingPolicy::Prefer,
        _ => ChunkingPolicy::WhenNeeded,
    });
    let mut env = envelope(&to);
    if binary {
        env = env.with_body(BodyType::BinaryMime);
    } else if rng.below(2) == 0 {
        env = env.with_body(BodyType::EightBitMime);
    }
    if rng.below(2) == 0 {
        env = env.with_size(MESSAGE.len() as u64);
    }

    let mut server = Server::new(Rng::new(rng.next()), lmtp, ehlo);
    let mut client = Client::new(cfg);
    let mut delivery = Delivery::new(env);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let fail = |why: String, server: &Server| Err(format!("{why}\n{}", server.log.join("\n")));

    // Bounded: every round consumes server bytes, hands out events or
    // sends body pieces, and both sides have a finite amount of each.
    let mut ended = false;
    for _ in 0..10_000 {
        let step = match client.handle_input(&inbuf) {
            Ok(step) => step,
            Err(e) => return fail(format!("client error {e:?}"), &server),
        };
        let consumed = step.consumed;
        let mut wants_input = false;
        match step.outcome {
            Outcome::Event(ev) => {
                server.log.push(format!("  event {ev:?}"));
                if let ClientEvent::TransactionEnd(summary) = &ev {
                    let batch = delivery.current_transaction().to_vec();
                    for (k, status) in summary.recipients.iter().enumerate() {
                        let who = &names[batch[k]];
                        let truth = server.truth.get(who).cloned().unwrap_or_default();
                        let want = if !server.mail_reply.starts_with('2') {
                            verdict_of(&server.mail_reply)
                        } else if truth.delivered > 0 {
                            Verdict::Success
                        } else {
                            verdict_of(truth.decided_by.as_deref().unwrap_or(""))
                        };
                        if status.verdict() != want {
                            return fail(
                                format!("summary: {who} {status:?}, want {want:?}"),
                                &server,
                            );
                        }
                    }
                }
                delivery
                    .on_event(&mut client, &ev)
                    .map_err(|e| format!("on_event: {e:?}"))?;
                if ev == ClientEvent::SendBody {
                    // Some pieces now; the rest after the server had a turn.
                    let max = 1 + rng.below(20) as usize;
                    while client.wants_body() {
                        match delivery.next_piece(MESSAGE, max) {
                            Some(piece) => client.send_body(piece),
                            None => client.end_body(),
                        }
                        .map_err(|e| format!("body: {e:?}"))?;
                        if rng.below(2) == 0 {
                            break;
                        }
                    }
                }
            }
            Outcome::NeedInput | Outcome::Paused => wants_input = true,
            Outcome::Closed => {
                ended = true;
                break;
            }
            _ => {}
        }
        inbuf.drain(..consumed);
        if wants_input && client.wants_body() {
            let max = 1 + rng.below(20) as usize;
            match delivery.next_piece(MESSAGE, max) {
                Some(piece) => client.send_body(piece),
                None => client.end_body(),
            }
            .map_err(|e| format!("body: {e:?}"))?;
        }
        let before = wire.len();
        client.poll_transmit(&mut wire);
        server.input.extend_from_slice(&wire[before..]);
        server.run();
        if !wants_input || client.wants_body() {
            continue;
        }
        if server.output.is_empty() {
            let done = client.is_idle() && delivery.is_finished();
            if !server.closed && !client.is_closed() && !done {
                return fail("the client waits for a reply not owed".into(), &server);
            }
            ended = true;
            break;
        }
        let all = server.output.len();
        let n = if rng.below(2) == 0 {
            all
        } else {
            1 + rng.below(all as u64) as usize
        };
        inbuf.extend(server.output.drain(..n));
    }

    if !ended {
        return fail("the run did not end".into(), &server);
    }
    if !server.violations.is_empty() {
        return fail(format!("sequence broken: {:?}", server.violations), &server);
    }
    let report = delivery.finish(None);
    for (who, entry) in names.iter().zip(&report.recipients) {
        let truth = server.truth.get(who).cloned().unwrap_or_default();
        if truth.delivered > 1 {
            return fail(format!("{who} got the message twice"), &server);
        }
        let code = |reply: &OwnedReply| reply.code().get().to_string();
        // A recipient the server never saw is decided by a MAIL refusal or
        // a 421, and so is one refused as too many and sent again.
        let unseen = truth
            .decided_by
            .as_deref()
            .map_or(true, |r| r.contains("too many"));
        let by_mail_or_421 = |reply: &OwnedReply| {
            unseen
                && (server.mail_codes.contains(&code(reply))
                    || (code(reply) == "421" && server.sent_421))
        };
        let by_truth = |reply: &OwnedReply, want: Verdict| {
            truth.delivered == 0
                && truth
                    .decided_by
                    .as_deref()
                    .is_some_and(|r| r.starts_with(&code(reply)) && verdict_of(r) == want)
        };
        let ok = match &entry.outcome {
            RecipientOutcome::Delivered { .. } => truth.delivered == 1,
            RecipientOutcome::PermanentFailure { reply, .. } => {
                by_mail_or_421(reply) || by_truth(reply, Verdict::Permanent)
            }
            RecipientOutcome::TemporaryFailure { reply, .. } => {
                by_mail_or_421(reply) || by_truth(reply, Verdict::RetryLater)
            }
            RecipientOutcome::NotAttempted { reason } => {
                truth.delivered == 0
                    && matches!(
                        reason,
                        NotAttempted::ServiceClosing { .. }
                            | NotAttempted::SenderRefused { .. }
                            | NotAttempted::TransactionLimit { .. }
                            | NotAttempted::Refused(_)
                    )
            }
            _ => false,
        };
        if !ok {
            return fail(
                format!("{who}: {:?}, server: {truth:?}", entry.outcome),
                &server,
            );
        }
    }
    Ok(())
}

#[test]
fn every_recipient_gets_the_servers_outcome() {
    let mut failures = Vec::new();
    for seed in 1..=3000 {
        if let Err(e) = run(seed) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
}
