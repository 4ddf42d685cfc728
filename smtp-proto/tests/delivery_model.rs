//! [`Delivery`] against a random server model, and the report checked
//! against what the server did.
//!
//! Each seed builds a server that advertises, or not, PIPELINING
//! (RFC 2920), CHUNKING (RFC 3030) and `LIMITS RCPTMAX` / `RCPTDOMAINMAX`
//! (RFC 9422), speaks SMTP or LMTP (RFC 2033), and answers each command
//! the client hands it with a random success, temporary or permanent
//! reply. It mixes in `421` (RFC 5321 §3.8, also in the middle of a body),
//! connections that drop instead of a reply, and recipients refused as
//! "too many" (`452`, `452 4.5.3`, `552 5.5.3`: RFC 5321 §4.5.3.1.10).
//! One to three messages go over the session, the ones before the last
//! with [`Delivery::keep_open`]. The server records which recipients took
//! each message, and for which of them the reply that said so was lost.
//!
//! The properties, for every recipient of every message:
//!
//! * the server takes the message at most once (RFC 1047: a duplicate is
//!   the cost of a lost reply only, never of a retry of recipients that
//!   were refused as "too many");
//! * [`RecipientOutcome::Delivered`] only when the server took it and its
//!   reply arrived (RFC 5321 §6.1: responsibility passes with that reply);
//! * a message the server took is never reported failed or to retry
//!   (that would bounce a delivered message or send it twice);
//! * a message taken whose reply was lost is [`RecipientOutcome::Unknown`]
//!   (RFC 5321 §6.1, RFC 1047);
//! * no recipient is [`NotAttempted::Unanswered`]: every transaction the
//!   client ends decides all its recipients;
//! * [`RecipientOutcome::PermanentFailure`] carries a 5yz that is not
//!   "too many recipients" (RFC 5321 §4.2.1, §4.5.3.1.10);
//! * [`RecipientOutcome::TemporaryFailure`] carries a 4yz, or a
//!   `552 X.5.3` (RFC 5321 §4.5.3.1.10: RFC 821 used 552 for it);
//! * a [`NotAttempted`] reason that is permanent carries a 5yz, if any;
//! * no transaction has more RCPT commands than `RCPTMAX`, nor more
//!   recipient domains than `RCPTDOMAINMAX` (RFC 9422 §4.2, §4.3).
//!
//! And for the session:
//!
//! * the server reads the message as given, over DATA (dot-stuffing undone,
//!   RFC 5321 §4.5.2) and over BDAT (chunk sizes, RFC 3030 §2), its last
//!   line ended by CRLF (RFC 5321 §2.3.8);
//! * unless the connection dropped, the session ends (QUIT, or a `421`):
//!   the client never waits for a reply the server does not owe.
//!
//! With the default seeds, the test also checks that the model reached
//! every outcome, BDAT, messages carried by several transactions, and
//! sessions that carried all their messages.
//!
//! The seeds are fixed: `DELIVERY_MODEL_SEEDS` sets how many run (default
//! [`DEFAULT_SEEDS`]) and `DELIVERY_MODEL_FIRST_SEED` the first (default
//! 1). A failure names its seed and gives the transcript and the reports.

mod delivery_support;
mod rng;

use std::collections::{BTreeMap, HashMap};

use delivery_support::{config, envelope};
use rng::Rng;
use smtp_proto::client::{
    ChunkingPolicy, Client, ClientEvent, Delivery, DeliveryReport, NotAttempted, Outcome, Protocol,
    RecipientOutcome,
};
use smtp_proto::command::ForwardPath;
use smtp_proto::reply::OwnedReply;

/// Seeds run by default: a few seconds in a debug build.
const DEFAULT_SEEDS: u64 = 20_000;

/// Steps of the client machine a run may take before it counts as stuck:
/// far more than a run of at most three messages to five recipients takes.
const MAX_STEPS: usize = 10_000;

/// The largest piece of the message handed to the machine at once.
const PIECE: usize = 7;

/// One in this many replies is a dropped connection instead.
const DROP_ONE_IN: u64 = 40;
/// One in this many body lines is answered by a `421`.
const CLOSE_IN_BODY_ONE_IN: u64 = 60;

const MAIL_REPLIES: &[&str] = &[
    "250 2.1.0 ok",
    "250 2.1.0 ok",
    "250 2.1.0 ok",
    "451 4.3.0 later",
    "550 5.7.1 no",
    "421 4.3.2 bye",
];
const RCPT_REPLIES: &[&str] = &[
    "452 too many",
    "250 2.1.5 ok",
    "250 2.1.5 ok",
    "250 2.1.5 ok",
    "452 4.5.3 too many",
    "450 4.2.1 busy",
    "550 5.1.1 no",
    "552 5.5.3 too many",
    "421 4.3.2 bye",
];
const DATA_REPLIES: &[&str] = &[
    "354 go",
    "354 go",
    "354 go",
    "451 4.3.0 later",
    "554 5.0.0 no",
    "421 4.3.2 bye",
];
/// The reply to a BDAT chunk that is not the last.
const CHUNK_REPLIES: &[&str] = &[
    "250 2.0.0 chunk",
    "250 2.0.0 chunk",
    "250 2.0.0 chunk",
    "451 4.3.0 later",
    "554 5.0.0 no",
];
/// The reply to the end of the message (SMTP).
const END_REPLIES: &[&str] = &[
    "250 2.0.0 queued",
    "250 2.0.0 queued",
    "451 4.3.0 later",
    "554 5.6.0 no",
    "421 4.3.2 bye",
];
/// One accepted recipient's reply to the end of the message (LMTP).
const LMTP_END_REPLIES: &[&str] = &[
    "250 2.0.0 ok",
    "250 2.0.0 ok",
    "452 4.2.2 full",
    "550 5.1.1 gone",
    "421 4.3.2 bye",
];

/// The server: reads what the client sends, answers with random replies,
/// and records what it did with the message.
#[derive(Default)]
struct Server {
    lmtp: bool,
    /// The reply to EHLO / LHLO.
    hello: String,
    /// `LIMITS RCPTMAX`, 0 for none.
    rcpt_max: usize,
    /// `LIMITS RCPTDOMAINMAX`, 0 for none.
    domain_max: usize,
    /// Bytes from the client not read yet.
    input: Vec<u8>,
    /// Replies not read by the client yet.
    output: Vec<u8>,
    /// The connection dropped: nothing more is read or answered.
    dropped: bool,
    /// The server ended the session (`421`, QUIT).
    closed: bool,
    /// Between `354` and the final `.`.
    in_data: bool,
    /// Octets of the BDAT chunk under way still to read.
    chunk_left: usize,
    /// The chunk under way is `BDAT ... LAST`.
    chunk_last: bool,
    /// A chunk of this transaction was refused: the rest get `503`.
    chunk_refused: bool,
    /// MAIL of the transaction under way was accepted.
    mail_accepted: bool,
    /// RCPT commands of the transaction under way.
    rcpts: usize,
    /// Recipient domains of the transaction under way, lowercase.
    domains: Vec<String>,
    /// Recipients accepted in the transaction under way (`message:address`).
    accepted: Vec<String>,
    /// The message under way (its index), to tell the messages' recipients
    /// apart: every message goes to the same addresses.
    message: usize,
    /// What the server must store for the message: its bytes, with the
    /// last line ended by CRLF.
    expected_body: Vec<u8>,
    /// What it read of the message in the transaction under way (DATA
    /// lines with the dot-stuffing undone, or BDAT chunks).
    body: Vec<u8>,
    /// How many times each recipient (`message:address`) took its message.
    taken: HashMap<String, usize>,
    /// The recipients that took their message and whose reply saying so
    /// was lost to a dropped connection.
    reply_lost: Vec<String>,
    /// The transcript.
    log: Vec<String>,
}

impl Server {
    /// Sends `reply`, or drops the connection instead (one in
    /// [`DROP_ONE_IN`]): true when the reply went out.
    fn reply(&mut self, rng: &mut Rng, reply: &str) -> bool {
        if rng.below(DROP_ONE_IN) == 0 {
            self.dropped = true;
            self.log
                .push(format!("-- connection dropped instead of {reply}"));
            return false;
        }
        self.log.push(format!("S: {reply}"));
        self.output.extend_from_slice(reply.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        if reply.starts_with("421") {
            self.closed = true;
        }
        true
    }

    fn take(&mut self, recipient: &str, reply_sent: bool) {
        *self.taken.entry(recipient.to_owned()).or_default() += 1;
        if !reply_sent {
            self.reply_lost.push(recipient.to_owned());
        }
    }

    fn end_transaction(&mut self) {
        self.mail_accepted = false;
        self.accepted.clear();
        self.body.clear();
    }

    /// The whole message came: one reply for the transaction (SMTP), or
    /// one per accepted recipient (LMTP, RFC 2033 §4.2).
    fn end_of_data(&mut self, rng: &mut Rng) {
        assert!(
            self.body == self.expected_body,
            "the server read {:?} for the message {:?} (RFC 5321 §4.5.2, RFC 3030 §2)\n{}",
            String::from_utf8_lossy(&self.body),
            String::from_utf8_lossy(&self.expected_body),
            self.log.join("\n")
        );
        let accepted = std::mem::take(&mut self.accepted);
        self.end_transaction();
        if self.lmtp {
            for recipient in accepted {
                if self.closed || self.dropped {
                    break;
                }
                let reply = rng.pick(LMTP_END_REPLIES);
                let sent = self.reply(rng, reply);
                if reply.starts_with('2') {
                    self.take(&recipient, sent);
                }
            }
        } else {
            let reply = rng.pick(END_REPLIES);
            let sent = self.reply(rng, reply);
            if reply.starts_with('2') {
                for recipient in accepted {
                    self.take(&recipient, sent);
                }
            }
        }
    }

    /// Reads `bytes` from the client and answers what it can.
    fn feed(&mut self, rng: &mut Rng, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        // Each round reads at least one octet, or returns.
        while !self.dropped && !self.closed {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.input.len());
                if n == 0 {
                    return;
                }
                self.body.extend(self.input.drain(..n));
                self.chunk_left -= n;
                if self.chunk_left == 0 {
                    self.after_chunk(rng);
                }
                continue;
            }
            let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line: Vec<u8> = self.input.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if self.in_data {
                if rng.below(CLOSE_IN_BODY_ONE_IN) == 0 {
                    self.in_data = false;
                    self.end_transaction();
                    self.reply(rng, "421 4.3.2 going down mid-body");
                } else if line == "." {
                    self.in_data = false;
                    self.end_of_data(rng);
                } else {
                    // RFC 5321 §4.5.2: a line's leading dot was doubled.
                    let line = line.strip_prefix('.').unwrap_or(&line);
                    self.body.extend_from_slice(line.as_bytes());
                    self.body.extend_from_slice(b"\r\n");
                }
                continue;
            }
            self.log.push(format!("C: {line}"));
            self.command(rng, &line);
        }
    }

    /// Answers one command line.
    fn command(&mut self, rng: &mut Rng, line: &str) {
        let verb = line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "LHLO" => {
                let hello = self.hello.clone();
                self.reply(rng, &hello);
            }
            "MAIL" => {
                self.body.clear();
                self.rcpts = 0;
                self.domains.clear();
                let reply = rng.pick(MAIL_REPLIES);
                if self.reply(rng, reply) && reply.starts_with('2') {
                    self.mail_accepted = true;
                    self.accepted.clear();
                }
            }
            "RCPT" => self.rcpt(rng, line),
            "DATA" => {
                if !self.mail_accepted || self.accepted.is_empty() {
                    self.end_transaction();
                    self.reply(rng, "554 5.5.1 no valid recipients");
                    return;
                }
                let reply = rng.pick(DATA_REPLIES);
                if self.reply(rng, reply) {
                    if reply.starts_with('3') {
                        self.in_data = true;
                    } else {
                        self.end_transaction();
                    }
                }
            }
            "BDAT" => {
                let mut args = line.split(' ').skip(1);
                let size = args.next().and_then(|s| s.parse().ok());
                let Some(size) = size else {
                    panic!("BDAT without a size: {line}\n{}", self.log.join("\n"));
                };
                self.chunk_left = size;
                self.chunk_last = args.next().is_some();
                if self.chunk_left == 0 {
                    self.after_chunk(rng);
                }
            }
            "RSET" => {
                self.end_transaction();
                self.chunk_refused = false;
                self.reply(rng, "250 2.0.0 ok");
            }
            "QUIT" => {
                self.reply(rng, "221 2.0.0 bye");
                self.closed = true;
            }
            "NOOP" => {
                self.reply(rng, "250 2.0.0 ok");
            }
            _ => {
                self.reply(rng, "500 5.5.2 what");
            }
        }
    }

    /// Answers `RCPT TO:<address>`, checking `LIMITS` first.
    fn rcpt(&mut self, rng: &mut Rng, line: &str) {
        let address = line
            .find('<')
            .zip(line.find('>'))
            .and_then(|(open, close)| line.get(open + 1..close));
        let Some(address) = address else {
            panic!("RCPT without a path: {line}\n{}", self.log.join("\n"));
        };
        let domain = address
            .rsplit_once('@')
            .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
        let recipient = format!("{}:{address}", self.message);
        self.rcpts += 1;
        assert!(
            self.rcpt_max == 0 || self.rcpts <= self.rcpt_max,
            "RCPTMAX={} exceeded (RFC 9422 §4.2)\n{}",
            self.rcpt_max,
            self.log.join("\n")
        );
        if !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
        assert!(
            self.domain_max == 0 || self.domains.len() <= self.domain_max,
            "RCPTDOMAINMAX={} exceeded (RFC 9422 §4.3)\n{}",
            self.domain_max,
            self.log.join("\n")
        );
        // Random even without an accepted MAIL: the client must not count
        // such an acceptance.
        let reply = rng.pick(RCPT_REPLIES);
        if self.reply(rng, reply) && reply.starts_with('2') && self.mail_accepted {
            self.accepted.push(recipient);
        }
    }

    /// A BDAT chunk was read whole.
    fn after_chunk(&mut self, rng: &mut Rng) {
        if !self.mail_accepted || self.accepted.is_empty() || self.chunk_refused {
            self.reply(rng, "503 5.5.1 no");
            if self.chunk_last {
                self.chunk_refused = false;
                self.end_transaction();
            }
            return;
        }
        if self.chunk_last {
            self.end_of_data(rng);
            return;
        }
        let reply = rng.pick(CHUNK_REPLIES);
        if self.reply(rng, reply) && !reply.starts_with('2') {
            self.chunk_refused = true;
        }
    }
}

/// What one seed drew.
struct Setup {
    lmtp: bool,
    pipelining: bool,
    chunking: bool,
    rcpt_max: u64,
    domain_max: u64,
}

impl Setup {
    fn draw(rng: &mut Rng) -> Self {
        Setup {
            lmtp: rng.below(3) == 0,
            pipelining: rng.below(2) == 0,
            chunking: rng.below(2) == 0,
            rcpt_max: rng.below(3),
            domain_max: rng.below(3),
        }
    }

    /// The server's reply to EHLO / LHLO.
    fn hello(&self) -> String {
        let mut hello = String::from("250-mx.example.org");
        if self.pipelining {
            hello.push_str("\r\n250-PIPELINING");
        }
        if self.chunking {
            hello.push_str("\r\n250-CHUNKING");
        }
        if self.rcpt_max > 0 || self.domain_max > 0 {
            hello.push_str("\r\n250-LIMITS");
            if self.rcpt_max > 0 {
                hello.push_str(&format!(" RCPTMAX={}", self.rcpt_max));
            }
            if self.domain_max > 0 {
                hello.push_str(&format!(" RCPTDOMAINMAX={}", self.domain_max));
            }
        }
        hello.push_str("\r\n250 8BITMIME");
        hello
    }
}

/// Counts of what the seeds exercised, to show the model reaches every
/// outcome.
#[derive(Default)]
struct Coverage(BTreeMap<&'static str, usize>);

impl Coverage {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
}

/// Runs one seed and checks its reports.
fn run_seed(seed: u64, coverage: &mut Coverage) {
    let mut rng = Rng::new(seed);
    let setup = Setup::draw(&mut rng);
    let recipient_count = 1 + rng.below(5) as usize;
    let to: Vec<String> = (0..recipient_count)
        .map(|i| format!("r{i}@d{}.Example.org", rng.below(3)))
        .collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let mut cfg = config().with_chunking(ChunkingPolicy::Prefer);
    if setup.lmtp {
        cfg = cfg.with_protocol(Protocol::Lmtp);
    }
    let mut client = Client::new(cfg);
    let message_count = 1 + rng.below(3) as usize;
    let mut deliveries: Vec<Delivery> = (0..message_count)
        .map(|j| {
            let delivery = Delivery::new(envelope(&to));
            if j + 1 < message_count {
                delivery.keep_open()
            } else {
                delivery
            }
        })
        .collect();
    let mut server = Server {
        lmtp: setup.lmtp,
        hello: setup.hello(),
        rcpt_max: setup.rcpt_max as usize,
        domain_max: setup.domain_max as usize,
        ..Server::default()
    };
    server.reply(&mut rng, "220 mx ESMTP");
    // Lines that need dot-stuffing among plain ones, the end cut by up to
    // two octets: the last line may lack its CRLF, or its LF.
    let mut message: Vec<u8> = Vec::new();
    for _ in 0..rng.below(8) {
        let line = rng.pick(&["ab", ".", "..x", ".ab", "", "From x"]);
        message.extend_from_slice(line.as_bytes());
        message.extend_from_slice(b"\r\n");
    }
    message.truncate(message.len().saturating_sub(rng.below(3) as usize));
    server.expected_body = message.clone();
    if message.ends_with(b"\r") {
        server.expected_body.push(b'\n');
    } else if !message.is_empty() && !message.ends_with(b"\r\n") {
        server.expected_body.extend_from_slice(b"\r\n");
    }

    let context = |server: &Server| {
        format!(
            "seed {seed} lmtp {} pipelining {} chunking {} RCPTMAX {} RCPTDOMAINMAX {}\n{}",
            setup.lmtp,
            setup.pipelining,
            setup.chunking,
            setup.rcpt_max,
            setup.domain_max,
            server.log.join("\n")
        )
    };

    // The client's reads not handled yet, and everything it sent.
    let mut input: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let mut current = 0;
    let mut ended = false;
    for _ in 0..MAX_STEPS {
        // The next message over the kept session, once the last is done.
        while deliveries[current].is_finished()
            && current + 1 < message_count
            && (client.is_idle() || client.is_closed())
        {
            current += 1;
            server.log.push(format!("-- message {current}"));
            server.message = current;
            if let Err(e) = deliveries[current].start(&mut client) {
                panic!("start: {e}\n{}", context(&server));
            }
            let before = wire.len();
            client.poll_transmit(&mut wire);
            server.feed(&mut rng, &wire[before..]);
        }
        let step = match client.handle_input(&input) {
            Ok(step) => step,
            Err(e) => panic!("handle_input: {e}\n{}", context(&server)),
        };
        let consumed = step.consumed;
        // The client waits for input that may not come, or is done.
        let mut waiting = false;
        let mut closed = false;
        match step.outcome {
            Outcome::Event(event) => {
                if let Err(e) = deliveries[current].on_event(&mut client, &event) {
                    panic!("on_event({event:?}): {e}\n{}", context(&server));
                }
                if event == ClientEvent::SendBody {
                    while client.wants_body() {
                        let sent = match deliveries[current].next_piece(&message, PIECE) {
                            Some(piece) => client.send_body(piece),
                            None => client.end_body(),
                        };
                        if let Err(e) = sent {
                            panic!("body: {e}\n{}", context(&server));
                        }
                    }
                }
            }
            Outcome::NeedInput if server.output.is_empty() => waiting = true,
            Outcome::NeedInput => input.append(&mut server.output),
            Outcome::Closed => closed = true,
            Outcome::Transmit => {}
            other => panic!("unexpected {other:?}\n{}", context(&server)),
        }
        input.drain(..consumed);
        let before = wire.len();
        client.poll_transmit(&mut wire);
        server.feed(&mut rng, &wire[before..]);
        // Nothing more will come (the session is over, or the connection
        // dropped), unless what the client just sent has an answer or the
        // next message starts on the kept session.
        if (closed || (waiting && server.output.is_empty()))
            && !(deliveries[current].is_finished() && current + 1 < message_count)
        {
            ended = true;
            break;
        }
    }
    assert!(
        ended,
        "no end after {MAX_STEPS} steps\n{}",
        context(&server)
    );

    // Unless the connection dropped, the session ends: every command is
    // answered, and the last message ends with QUIT (or a 421 came).
    assert!(
        server.dropped || client.is_closed(),
        "the session stalled with the connection up\n{}",
        context(&server)
    );
    // The messages not started when the connection dropped were not sent.
    let reports: Vec<DeliveryReport> = deliveries
        .into_iter()
        .enumerate()
        .map(|(j, d)| {
            if j > current {
                d.abandon(NotAttempted::ConnectionLost)
            } else {
                d.finish(None)
            }
        })
        .collect();
    if message_count > 1 && current + 1 == message_count {
        coverage.add("all messages started");
    }
    if wire.windows(4).any(|w| w == b"BDAT") {
        coverage.add("BDAT");
    }
    for (index, report) in reports.iter().enumerate() {
        if report.transactions > 1 {
            coverage.add("several transactions");
        }
        for r in &report.recipients {
            let ForwardPath::Mailbox(mailbox) = &r.recipient.path else {
                panic!("not a mailbox: {:?}", r.recipient.path);
            };
            let recipient = format!("{index}:{mailbox}");
            check_recipient(&server, &recipient, &r.outcome, coverage).unwrap_or_else(|e| {
                panic!(
                    "{recipient}: {e}\n{}\n-- reports\n{}",
                    context(&server),
                    describe(&reports)
                )
            });
        }
    }
}

/// Checks one recipient's outcome against what the server did.
fn check_recipient(
    server: &Server,
    recipient: &str,
    outcome: &RecipientOutcome,
    coverage: &mut Coverage,
) -> Result<(), String> {
    let taken = server.taken.get(recipient).copied().unwrap_or(0);
    let reply_lost = server.reply_lost.iter().any(|r| r == recipient);
    if taken > 1 {
        return Err(format!("the server took the message {taken} times"));
    }
    if reply_lost && *outcome != RecipientOutcome::Unknown {
        return Err(format!(
            "the server took it and its reply was lost, yet {outcome:?}"
        ));
    }
    let code = outcome.reply().map(|r| u16::from(r.code()));
    match outcome {
        RecipientOutcome::Delivered { .. } => {
            coverage.add("Delivered");
            if taken == 0 {
                return Err("Delivered, and the server did not take it".into());
            }
        }
        RecipientOutcome::Unknown => coverage.add("Unknown"),
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::Unanswered,
        } => return Err("Unanswered: a transaction ended undecided".into()),
        _ if taken > 0 => return Err(format!("the server took it, yet {outcome:?}")),
        RecipientOutcome::PermanentFailure { reply, .. } => {
            coverage.add("PermanentFailure");
            if !matches!(code, Some(500..=599)) || too_many(reply) {
                return Err(format!("PermanentFailure with {}", show(reply)));
            }
        }
        RecipientOutcome::TemporaryFailure { reply, .. } => {
            coverage.add("TemporaryFailure");
            if too_many(reply) {
                coverage.add("TemporaryFailure, too many recipients");
            }
            if !(matches!(code, Some(400..=499)) || (code == Some(552) && too_many(reply))) {
                return Err(format!("TemporaryFailure with {}", show(reply)));
            }
        }
        RecipientOutcome::NotAttempted { reason } => {
            coverage.add("NotAttempted");
            if reason.is_permanent() && code.is_some_and(|c| c < 500) {
                return Err(format!("permanent {reason:?} with a {code:?}"));
            }
        }
        _ => return Err(format!("an outcome the model does not know: {outcome:?}")),
    }
    Ok(())
}

/// The reports, one line per recipient: `message:address: outcome`.
fn describe(reports: &[DeliveryReport]) -> String {
    let mut lines = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        for r in &report.recipients {
            let outcome = match &r.outcome {
                RecipientOutcome::Delivered { reply } => format!("Delivered: {}", show(reply)),
                RecipientOutcome::PermanentFailure { stage, reply } => {
                    format!("PermanentFailure at {stage}: {}", show(reply))
                }
                RecipientOutcome::TemporaryFailure { stage, reply } => {
                    format!("TemporaryFailure at {stage}: {}", show(reply))
                }
                RecipientOutcome::NotAttempted { reason } => format!("NotAttempted: {reason}"),
                other => format!("{other:?}"),
            };
            lines.push(format!("{index}:{}: {outcome}", r.recipient.path));
        }
    }
    lines.join("\n")
}

/// `reply` as on the wire (its first line).
fn show(reply: &OwnedReply) -> String {
    let text = String::from_utf8_lossy(reply.text());
    match reply.enhanced_code() {
        Some(e) => format!("{} {e} {text}", reply.code()),
        None => format!("{} {text}", reply.code()),
    }
}

/// A "too many recipients" reply (RFC 5321 §4.5.3.1.10): enhanced code
/// `X.5.3`, or a `452` without an enhanced code.
fn too_many(reply: &OwnedReply) -> bool {
    match reply.enhanced_code() {
        Some(e) => e.subject() == 5 && e.detail() == 3,
        None => u16::from(reply.code()) == 452,
    }
}

fn env_seed(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("{name}={s:?} is not a number: {e}")),
        Err(_) => default,
    }
}

#[test]
fn delivery_against_random_servers() {
    let first = env_seed("DELIVERY_MODEL_FIRST_SEED", 1);
    let count = env_seed("DELIVERY_MODEL_SEEDS", DEFAULT_SEEDS);
    let mut coverage = Coverage::default();
    for seed in first..first.saturating_add(count) {
        run_seed(seed, &mut coverage);
    }
    eprintln!("{count} seeds from {first}: {:?}", coverage.0);
    if count >= DEFAULT_SEEDS {
        for what in [
            "Delivered",
            "Unknown",
            "PermanentFailure",
            "TemporaryFailure",
            "TemporaryFailure, too many recipients",
            "NotAttempted",
            "BDAT",
            "several transactions",
            "all messages started",
        ] {
            assert!(
                coverage.0.contains_key(what),
                "the seeds never reached {what}: {:?}",
                coverage.0
            );
        }
    }
}
