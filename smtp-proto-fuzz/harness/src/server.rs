//! Target `server`: the server session machine
//! (`smtp_proto::server::ServerSession`) fed arbitrary client bytes, with
//! the application's decisions scripted from the input.
//!
//! Input: byte 0 picks the configuration (bit 0 LMTP, bit 1 no PIPELINING,
//! bit 2 STARTTLS, bit 3 (value 8) AUTH PLAIN/LOGIN/XOAUTH2/OAUTHBEARER and
//! the application-run mechanisms CRAM-MD5 and X-APP, bit 4 small
//! limits: 64-octet messages, 2 recipients in 1 domain, 2 messages per
//! connection, 3 errors, 20-octet DATA lines,
//! bit 5 bare line endings normalized, bit 6 SMTPUTF8, BINARYMIME, DSN,
//! REQUIRETLS and LIMITS, bit 7 the connection refused instead of greeted,
//! with 554 or, one time in four, with 421, which closes the session);
//! bytes 1-2 seed the script of the application's decisions (accept, reject
//! with a 4xx/5xx reply, answer with a 2xx reply; for an LMTP message one
//! reply per recipient; for a step of an application-run SASL mechanism a
//! challenge of scripted length, sometimes too long for its line, an
//! acceptance with an identity, or a 535; with STARTTLS configured, after
//! each greeting decision, whether STARTTLS is declined from then on, one
//! time in three); the rest is what the client sends.
//!
//! Under every cut of [`crate::split::cuts`], the target plays the caller
//! (owning the read buffer, dropping what each step consumed, sending what
//! `poll_transmit` gives at `NeedInput`, `Transmit` and `Closed`) and
//! asserts:
//!
//! - never a panic; never a usage error for a call the machine's
//!   documentation allows; a decision event always leaves a decision
//!   pending, and while it is pending `handle_input` refuses with
//!   `UsageError::DecisionPending` and changes nothing;
//! - every step consumes no more than the buffer holds; at most a bounded
//!   number of steps in a row consume nothing, and the total number of
//!   steps is bounded by the input length (no loop);
//! - memory stays bounded: when the machine asks for input, the caller's
//!   buffer holds less than the longest line allowed (the AUTH line limit),
//!   and the output piled up between two sends stays under 24 KiB;
//! - everything the server writes is a sequence of well-formed replies
//!   (the reply decoder reads all of it, strictly, with nothing left over);
//! - a remote error closes the session; bytes after STARTTLS are refused
//!   as an injection exactly when they arrive before the handshake (after
//!   a STARTTLS declined with 454 no handshake follows, and they are
//!   commands);
//! - the events (message chunks merged), the replies written and the bytes
//!   consumed are the same under every cut, except what depends on the cut
//!   by design (see `normalize`): the bytes of a message refused for its
//!   content, and everything from the first STARTTLS on.

use smtp_proto::reply::{Decoded, OwnedReply, ReplyDecoder};
use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{
    Decision, Error, RemoteError, ServerConfig, ServerEvent, ServerSession, UsageError,
};
use smtp_proto::session::{Outcome, Phase};
use smtp_proto::status::ReplyCode;

use crate::split::check_split_invariance;
use crate::stream::Progress;

/// Output allowed to pile up between two sends.
const MAX_PENDING_OUTPUT: usize = 24 * 1024;

/// The configuration picked by `bits`.
pub fn config(bits: u8) -> ServerConfig {
    let mut c = ServerConfig::new("mx.example.org");
    c.lmtp = bits & 1 != 0;
    c.pipelining = bits & 2 == 0;
    c.starttls = bits & 4 != 0;
    if bits & 8 != 0 {
        c.auth_mechanisms = vec![
            SaslMechanism::Plain,
            SaslMechanism::Login,
            SaslMechanism::XOAuth2,
            SaslMechanism::OAuthBearer,
            SaslMechanism::custom("CRAM-MD5").expect("a valid name"),
            SaslMechanism::custom("X-APP").expect("a valid name"),
        ];
    }
    if bits & 16 != 0 {
        c.max_message_size = Some(64);
        c.max_recipients = 2;
        c.max_transactions = Some(2);
        c.max_recipient_domains = Some(1);
        c.max_errors = 3;
        c.max_data_line_length = 20;
    }
    if bits & 32 != 0 {
        c.bare_endings = smtp_proto::data::BareEndingPolicy::Normalize;
    }
    if bits & 64 != 0 {
        c.smtputf8 = true;
        c.binarymime = true;
        c.dsn = true;
        c.requiretls = true;
        c.limits = true;
        c.unknown_parameters = false;
    }
    // Bit 7 is taken (the session is refused instead of greeted), so
    // implicit TLS comes with STARTTLS and normalized bare endings: such a
    // session starts encrypted and offers no STARTTLS. With STARTTLS or
    // implicit TLS, AUTH needs TLS, as a real server would have it.
    c.implicit_tls = bits & 4 != 0 && bits & 32 != 0;
    c.auth_requires_tls = bits & 4 != 0;
    // A submission server: with AUTH and the small limits, MAIL, VRFY and
    // EXPN wait for a successful AUTH.
    c.auth_required = bits & 8 != 0 && bits & 16 != 0;
    c
}

/// The application's decisions, drawn from a seed.
#[derive(Debug, Clone)]
pub struct Script(u64);

impl Script {
    /// A script from two input bytes.
    pub fn new(a: u8, b: u8) -> Self {
        Script(u64::from(a) << 8 | u64::from(b) | 0x9e37_79b9_0000_0000)
    }

    /// The next choice in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn reply(code: u16, text: &str) -> OwnedReply {
    OwnedReply::new(ReplyCode::new(code).expect("valid code"), text).expect("valid reply")
}

/// What the caller saw, compared across cuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Events, message chunks merged into `Body`.
    pub events: Vec<String>,
    /// Bytes the server wrote.
    pub output: Vec<u8>,
    /// Bytes of input consumed.
    pub consumed: usize,
    /// How the run ended.
    pub end: String,
    /// Input consumed before the first STARTTLS line, and the output
    /// through its reply.
    pub before_starttls: Option<(usize, usize)>,
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let [bits, a, b, stream @ ..] = data else {
        return;
    };
    let cfg = config(*bits);
    let refuse = bits & 128 != 0;
    let _ = check_split_invariance(stream, |pieces| {
        let r = drive(&cfg, refuse, Script::new(*a, *b), pieces);
        check_output(&r.output);
        normalize(r)
    });
}

/// Removes what depends on the cut by design:
///
/// - the bytes of a message that ends refused for its content (too large,
///   bare line endings, long lines), or that is still arriving when the
///   input ends: the server stops handing them out as soon as it knows the
///   message is refused, which depends on how much arrived at once;
/// - everything from the first STARTTLS on: whether plaintext arrived in
///   the same read as STARTTLS (an injection, refused) or after the
///   handshake is the cut itself. What comes before, the STARTTLS line and
///   its reply excluded, must agree.
fn normalize(mut r: Run) -> Run {
    let mut events: Vec<String> = Vec::with_capacity(r.events.len());
    for e in r.events.drain(..) {
        let refused_content = e.starts_with("Rejected")
            && (e.contains("reason: Data(") || e.contains("MessageTooLarge"));
        if refused_content && events.last().is_some_and(|l| l.starts_with("Body(")) {
            events.pop();
        }
        events.push(e);
    }
    // A message still arriving when the input ends may already be known
    // to be refused (over the size limit) under one cut and not yet under
    // another.
    if r.end.starts_with("input ended") && events.last().is_some_and(|l| l.starts_with("Body(")) {
        events.pop();
    }
    r.events = events;
    let tls = r
        .events
        .iter()
        .position(|e| e == "StartTls" || e == "RemoteError(StartTlsInjection)");
    if let Some(i) = tls {
        r.events.truncate(i);
        let (consumed, output) = r.before_starttls.unwrap_or((r.consumed, r.output.len()));
        r.consumed = consumed;
        r.output.truncate(output);
        r.output.truncate(without_last_reply(&r.output));
        r.end = "STARTTLS".into();
        r.before_starttls = None;
    }
    // A remote error comes without a count of consumed bytes (the session
    // is over): what the last call had consumed before it is not reported.
    if r.end.starts_with("remote error") {
        r.consumed = 0;
    }
    r
}

/// The length of `output` without its last reply.
fn without_last_reply(output: &[u8]) -> usize {
    let mut dec = ReplyDecoder::new();
    let (mut pos, mut last) = (0, 0);
    while let Ok(Decoded::Reply { consumed, .. }) = dec.decode(&output[pos..]) {
        last = pos;
        pos += consumed;
    }
    last
}

/// Everything the server wrote reads as well-formed replies.
fn check_output(output: &[u8]) {
    let mut dec = ReplyDecoder::new();
    let mut pos = 0;
    loop {
        match dec.decode(&output[pos..]) {
            Ok(Decoded::Reply { consumed, .. }) => pos += consumed,
            Ok(Decoded::Incomplete) => break,
            other => panic!(
                "the server wrote something that is not a reply: {other:?} at {:?}",
                String::from_utf8_lossy(&output[pos..output.len().min(pos + 200)])
            ),
        }
    }
    assert_eq!(
        pos,
        output.len(),
        "the server's output ends in a partial reply: {:?}",
        String::from_utf8_lossy(&output[pos..])
    );
}

fn summary(e: &ServerEvent<'_>) -> String {
    format!("{e:?}")
}

/// Answers the pending decision from the script.
fn decide(server: &mut ServerSession, event: &ServerEvent<'_>, script: &mut Script) {
    let pending = server
        .pending_decision()
        .unwrap_or_else(|| panic!("decision event {event:?} without a pending decision"));
    if pending == Decision::AuthExchange {
        auth_step(server, script);
        assert!(
            server.pending_decision().is_none(),
            "still pending after an answer"
        );
        return;
    }
    let choice = script.next(8);
    let r = match (pending, choice) {
        (_, 0..=4) => server.accept(),
        (Decision::Message, 5) if server.config().lmtp => {
            let n = match event {
                ServerEvent::MessageEnd { recipients, .. } => *recipients,
                _ => panic!("a message decision after {event:?}"),
            };
            let replies: Vec<OwnedReply> = (0..n)
                .map(|i| {
                    if script.next(2) == 0 {
                        reply(250, &format!("2.0.0 delivered to {i}"))
                    } else {
                        reply(550, "5.1.1 no such mailbox")
                    }
                })
                .collect();
            server.reply_per_recipient(&replies)
        }
        (_, 5 | 6) => {
            let code = match script.next(3) {
                0 => 451,
                1 => 550,
                _ => 421,
            };
            let r = server.reject(reply(code, "refused by policy"));
            // A 421 from the application closes the session (RFC 5321
            // §3.8), whatever the decision was about.
            // (A 550 may close it too: the last allowed failed AUTH.)
            if code == 421 {
                assert!(server.is_closed(), "open after a 421");
            }
            r
        }
        (Decision::Auth, _) => server.reply(reply(235, "2.7.0 welcome")),
        (_, _) => server.reply(reply(250, "as you wish")),
    };
    r.unwrap_or_else(|e| panic!("answering {pending:?} after {event:?}: {e:?}"));
    assert!(
        server.pending_decision().is_none(),
        "still pending after an answer"
    );
}

/// Answers a step of an application-run SASL mechanism from the script.
fn auth_step(server: &mut ServerSession, script: &mut Script) {
    let r = match script.next(6) {
        0..=2 => {
            let len = match script.next(4) {
                0 => 0,
                // Too long for the 334 line: refused, nothing changes.
                1 => {
                    // 379 octets are the first whose base64 overflows a
                    // 512-octet reply line.
                    let too_long = vec![b'c'; 379];
                    let before = server.has_transmit();
                    assert_eq!(
                        server.auth_challenge(&too_long),
                        Err(UsageError::ChallengeTooLong)
                    );
                    assert_eq!(
                        server.has_transmit(),
                        before,
                        "a refused challenge was sent"
                    );
                    assert_eq!(server.pending_decision(), Some(Decision::AuthExchange));
                    0
                }
                _ => script.next(64) as usize,
            };
            server.auth_challenge(&vec![b'c'; len]).map(|_| ())
        }
        3 => server.accept_auth("fuzz@example.org"),
        4 => server.reply(reply(235, "2.7.0 welcome")),
        _ => server.reject(reply(535, "5.7.8 credentials invalid")),
    };
    r.unwrap_or_else(|e| panic!("answering an AUTH step: {e:?}"));
}

/// Plays the caller of a fresh session over `pieces`.
pub fn drive(cfg: &ServerConfig, refuse: bool, mut script: Script, pieces: &[&[u8]]) -> Run {
    let mut server = ServerSession::new(cfg.clone()).expect("a valid configuration");
    if refuse {
        // One refusal in four is a 421, which closes the session at once
        // (RFC 5321 §3.8); the others are the default 554, which waits for
        // QUIT.
        if script.next(4) == 0 {
            server
                .refuse(Some(reply(421, "4.3.2 try again later")))
                .expect("refuse a fresh session");
            assert!(server.is_closed(), "open after a 421 greeting");
        } else {
            server.refuse(None).expect("refuse a fresh session");
            assert!(!server.is_closed(), "closed after a 554 greeting");
        }
    } else {
        server.greet().expect("greet a fresh session");
    }
    let max_buffered = cfg.max_line_length.max(cfg.max_auth_line_length);
    let total: usize = pieces.iter().map(|p| p.len()).sum();

    let mut run = Run {
        events: Vec::new(),
        output: Vec::new(),
        consumed: 0,
        end: "input ended".into(),
        before_starttls: None,
    };
    if server.is_closed() {
        // A 421 greeting: nothing is read, however the input arrives (or
        // when none does).
        let all = pieces.concat();
        match server.handle_input(&all) {
            Ok(s) if s.consumed == 0 && s.outcome == Outcome::Closed => {}
            other => panic!("after a 421 greeting: {other:?}"),
        }
        server.poll_transmit(&mut run.output);
        run.end = "closed".into();
        return run;
    }
    let mut body: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut progress = Progress::for_input(total);
    let mut sent_since_poll;

    let flush_body = |body: &mut Vec<u8>, events: &mut Vec<String>| {
        if !body.is_empty() {
            events.push(format!("Body({:?})", String::from_utf8_lossy(body)));
            body.clear();
        }
    };
    'outer: for piece in pieces {
        buf.extend_from_slice(piece);
        progress.next_piece();
        loop {
            progress.call();
            let step = match server.handle_input(&buf) {
                Ok(step) => step,
                Err(Error::Remote(e)) => {
                    flush_body(&mut body, &mut run.events);
                    run.events.push(format!("RemoteError({e:?})"));
                    assert!(server.is_closed(), "open after the remote error {e:?}");
                    sent_since_poll = server.poll_transmit(&mut run.output);
                    assert!(sent_since_poll <= MAX_PENDING_OUTPUT);
                    run.end = format!("remote error {e:?}");
                    break 'outer;
                }
                Err(e) => panic!("handle_input refused the caller: {e:?}"),
            };
            let consumed = step.consumed;
            progress.consumed(consumed, buf.len());
            let mut starttls = false;
            match step.outcome {
                Outcome::Event(event) => {
                    if let ServerEvent::MessageChunk(c) = &event {
                        assert!(!c.is_empty(), "an empty message chunk");
                        body.extend_from_slice(c);
                    } else {
                        flush_body(&mut body, &mut run.events);
                        run.events.push(summary(&event));
                    }
                    let decision = matches!(
                        event,
                        ServerEvent::Hello { .. }
                            | ServerEvent::Mail { .. }
                            | ServerEvent::Rcpt { .. }
                            | ServerEvent::Vrfy(_)
                            | ServerEvent::Expn(_)
                            | ServerEvent::Auth(_)
                            | ServerEvent::AuthExchange { .. }
                            | ServerEvent::MessageEnd { .. }
                    );
                    if decision {
                        let summary = summary(&event);
                        // The machine reads nothing until it gets its answer.
                        let rest = buf[consumed..].to_vec();
                        match server.handle_input(&rest) {
                            Err(Error::Usage(UsageError::DecisionPending)) => {}
                            other => panic!("a call while {summary} is pending gave {other:?}"),
                        }
                        decide(&mut server, &event, &mut script);
                        if cfg.starttls && matches!(event, ServerEvent::Hello { .. }) {
                            // TLS that cannot be offered for a while (RFC
                            // 3207 §4: 454), decided after the EHLO reply
                            // so that the client may meet it either way.
                            server.set_starttls_available(script.next(3) != 0);
                        }
                    } else {
                        assert!(
                            server.pending_decision().is_none(),
                            "{event:?} left a decision pending"
                        );
                    }
                    starttls = matches!(event, ServerEvent::StartTls);
                }
                Outcome::NeedInput => {
                    assert!(
                        buf.len() - consumed <= max_buffered,
                        "asked for input while {} bytes are buffered",
                        buf.len() - consumed
                    );
                    sent_since_poll = server.poll_transmit(&mut run.output);
                    assert!(
                        sent_since_poll <= MAX_PENDING_OUTPUT,
                        "{sent_since_poll} bytes of output piled up"
                    );
                    buf.drain(..consumed);
                    run.consumed += consumed;
                    if consumed == 0 {
                        continue 'outer;
                    }
                    continue;
                }
                Outcome::Transmit => {
                    sent_since_poll = server.poll_transmit(&mut run.output);
                    assert!(sent_since_poll > 0, "Transmit with nothing to send");
                    assert!(sent_since_poll <= MAX_PENDING_OUTPUT);
                }
                Outcome::Paused => panic!("Paused outside STARTTLS"),
                Outcome::Closed => {
                    buf.drain(..consumed);
                    run.consumed += consumed;
                    flush_body(&mut body, &mut run.events);
                    sent_since_poll = server.poll_transmit(&mut run.output);
                    assert!(sent_since_poll <= MAX_PENDING_OUTPUT);
                    assert!(server.is_closed());
                    run.end = "closed".into();
                    break 'outer;
                }
                other => panic!("unexpected outcome {other:?}"),
            }
            buf.drain(..consumed);
            run.consumed += consumed;
            if starttls {
                sent_since_poll = server.poll_transmit(&mut run.output);
                assert!(sent_since_poll <= MAX_PENDING_OUTPUT);
                if run.before_starttls.is_none() {
                    run.before_starttls = Some((run.consumed - consumed, run.output.len()));
                }
                if buf.is_empty() {
                    // Nothing arrived with STARTTLS: the machine waits for
                    // the handshake, then starts over.
                    match server.handle_input(&buf) {
                        Ok(s) if s.outcome == Outcome::Paused && s.consumed == 0 => {}
                        other => panic!("before the handshake: {other:?}"),
                    }
                    server.tls_established().expect("the handshake was awaited");
                    assert!(server.is_tls());
                } else {
                    // Plaintext pipelined after STARTTLS: an injection.
                    match server.handle_input(&buf) {
                        Err(Error::Remote(RemoteError::StartTlsInjection)) => {}
                        other => panic!("bytes after STARTTLS gave {other:?}"),
                    }
                    assert!(server.is_closed());
                    run.end = "injection".into();
                    break 'outer;
                }
            }
        }
    }
    flush_body(&mut body, &mut run.events);
    sent_since_poll = server.poll_transmit(&mut run.output);
    assert!(sent_since_poll <= MAX_PENDING_OUTPUT);
    // Password guessing is bounded: at most `max_auth_failures` refused
    // authentications per connection (counted here by their 535s; the
    // scripted application refuses some with 550, which count too), and
    // the 421 that ends it is the session's last word.
    let out = String::from_utf8_lossy(&run.output);
    let refused = out
        .match_indices("535 ")
        .filter(|(i, _)| *i == 0 || out[..*i].ends_with('\n'))
        .count();
    assert!(
        refused <= cfg.max_auth_failures,
        "{refused} failed authentications on one connection"
    );
    let too_many = format!(
        "421 4.7.0 {} Too many failed authentication attempts, closing\r\n",
        cfg.hostname
    );
    if out.contains(&too_many) {
        assert!(out.ends_with(&too_many), "output after the 421: {out}");
        assert!(server.is_closed());
    }
    // Half the time the server goes away once the input has ended (RFC
    // 5321 §3.8): one `421` after everything else (`4.3.2` for a shut-down,
    // `4.3.0` for the application's failure), unless the session was over
    // already, and nothing is read after it.
    if run.end == "input ended" && script.next(2) == 0 {
        let was_closed = server.is_closed();
        let phase = server.phase();
        let before = run.output.len();
        let ending = if script.next(2) == 0 {
            server
                .shut_down()
                .expect("no decision is pending between steps");
            " Service shutting down, closing connection\r\n"
        } else {
            server.local_error();
            " Local error, closing connection\r\n"
        };
        assert!(server.is_closed());
        server.poll_transmit(&mut run.output);
        let tail = String::from_utf8_lossy(&run.output[before..]);
        if was_closed {
            assert!(tail.is_empty(), "a closed session wrote {tail:?}");
        } else {
            assert!(
                tail.starts_with("421 ")
                    && tail.ends_with(ending)
                    && tail.matches("\r\n").count() == 1,
                "{tail:?}"
            );
            // Inside a body, what was handed out of it so far depends on
            // the cut, as when the input just ends (see `normalize`).
            run.end = if matches!(phase, Phase::Data | Phase::Bdat) {
                "input ended, then shut down".into()
            } else {
                "shut down".into()
            };
        }
        match server.handle_input(b"NOOP\r\n") {
            Ok(s) if s.consumed == 0 && s.outcome == Outcome::Closed => {}
            other => panic!("after the shut-down: {other:?}"),
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::{config, drive, run, Script};

    /// With the AUTH bit, EHLO offers the application-run mechanisms and
    /// the scripted application reaches every answer to their steps.
    #[test]
    fn auth_bit_reaches_application_mechanisms() {
        let stream: &[u8] =
            b"EHLO x\r\nAUTH X-APP\r\nYQ==\r\nYg==\r\nAUTH CRAM-MD5 =\r\n*\r\nQUIT\r\n";
        let (mut steps, mut challenges, mut accepted, mut rejected) = (0, 0, 0, 0);
        for seed in 0..64u8 {
            let r = drive(&config(8), false, Script::new(seed, 7), &[stream]);
            let out = String::from_utf8_lossy(&r.output);
            if !out.contains("\r\n250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER CRAM-MD5 X-APP\r\n") {
                continue;
            }
            steps += r
                .events
                .iter()
                .filter(|e| e.starts_with("AuthExchange"))
                .count();
            challenges += out.matches("\r\n334 ").count();
            accepted += out.matches("\r\n235 ").count();
            rejected += out.matches("\r\n535 ").count();
            let mut data = vec![8, seed, 7];
            data.extend_from_slice(stream);
            run(&data);
        }
        assert!(steps > 0 && challenges > 0 && accepted > 0 && rejected > 0);
    }

    /// Bits 2 and 5 together give a session on implicit TLS: no STARTTLS
    /// offered, AUTH allowed at once although it needs TLS; bit 2 alone
    /// offers STARTTLS and refuses AUTH before it.
    #[test]
    fn implicit_tls_bits() {
        let stream: &[u8] = b"EHLO x\r\nAUTH PLAIN AGEAYg==\r\nSTARTTLS\r\nQUIT\r\n";
        let r = drive(&config(4 | 8 | 32), false, Script::new(0, 0), &[stream]);
        let out = String::from_utf8_lossy(&r.output);
        assert!(!out.contains("STARTTLS\r\n"), "{out}");
        assert!(out.contains("\r\n250-AUTH PLAIN"), "{out}");
        assert!(!out.contains("\r\n538 "), "{out}");
        assert!(
            out.contains("\r\n503 5.5.1 TLS already active\r\n"),
            "{out}"
        );
        let r = drive(&config(4 | 8), false, Script::new(0, 0), &[stream]);
        let out = String::from_utf8_lossy(&r.output);
        assert!(out.contains("\r\n250-STARTTLS\r\n"), "{out}");
        assert!(out.contains("\r\n538 "), "{out}");
    }

    /// With STARTTLS configured, the script declines it now and then: a
    /// declined STARTTLS gets 454, the bytes pipelined after it are
    /// commands (no injection), and the session goes on in plaintext; an
    /// available one with bytes after it is an injection.
    #[test]
    fn starttls_bit_reaches_a_declined_starttls() {
        let stream: &[u8] = b"EHLO x\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n";
        let (mut declined, mut injected) = (0, 0);
        for seed in 0..32u8 {
            let r = drive(&config(4), false, Script::new(seed, 3), &[stream]);
            let out = String::from_utf8_lossy(&r.output);
            if r.end == "remote error StartTlsInjection" {
                injected += 1;
            } else if out.contains("\r\n454 ") {
                declined += 1;
                assert!(
                    out.ends_with(
                        "\r\n454 4.7.0 TLS not available due to temporary reason\r\n\
                         250 2.0.0 OK\r\n221 2.0.0 Bye\r\n"
                    ),
                    "{out}"
                );
                assert_eq!(r.end, "closed");
                assert!(!r.events.iter().any(|e| e == "StartTls"), "{:?}", r.events);
            }
            let mut data = vec![4, seed, 3];
            data.extend_from_slice(stream);
            run(&data);
        }
        assert!(declined > 0 && injected > 0, "{declined} and {injected}");
    }

    /// In a session refused with 554, a BDAT command's chunk is read and
    /// dropped: the QUIT inside it is no command, the BDAT gets one 503,
    /// and the real QUIT after the chunk ends the session.
    #[test]
    fn refusal_bit_reads_bdat_chunks() {
        let stream: &[u8] = b"BDAT 12\r\nQUIT\r\nNOOP\r\nQUIT\r\n";
        let mut waiting = 0;
        for seed in 0..32u8 {
            let r = drive(&config(128), true, Script::new(7, seed), &[stream]);
            let out = String::from_utf8_lossy(&r.output);
            if out.starts_with("554 ") {
                waiting += 1;
                assert!(
                    out.ends_with(
                        "\r\n503 5.5.1 No SMTP service here, send QUIT\r\n221 2.0.0 Bye\r\n"
                    ),
                    "{out}"
                );
                assert_eq!(out.matches("\r\n503 ").count(), 1, "{out}");
                assert_eq!((r.end.as_str(), r.consumed), ("closed", stream.len()));
            }
            let mut data = vec![128, 7, seed];
            data.extend_from_slice(stream);
            run(&data);
        }
        assert!(waiting > 0);
    }

    /// Bit 7 refuses the session: with 421 it is closed at once and reads
    /// nothing; with 554 it answers 503 until QUIT. The script reaches
    /// both.
    #[test]
    fn refusal_bit_reaches_421_and_554() {
        let stream: &[u8] = b"EHLO x\r\nQUIT\r\n";
        let (mut closing, mut waiting) = (0, 0);
        for seed in 0..32u8 {
            let r = drive(&config(128), true, Script::new(7, seed), &[stream]);
            let out = String::from_utf8_lossy(&r.output);
            if out.starts_with("421 ") {
                closing += 1;
                assert_eq!(out, "421 4.3.2 try again later\r\n");
                assert_eq!((r.end.as_str(), r.consumed), ("closed", 0));
                assert!(r.events.is_empty(), "{:?}", r.events);
            } else {
                waiting += 1;
                assert!(out.starts_with("554 "), "{out}");
                // The EHLO gets 503 without an enhanced code (RFC 2034
                // §3 leaves it out of replies to EHLO).
                assert!(
                    out.ends_with("\r\n503 No SMTP service here, send QUIT\r\n221 2.0.0 Bye\r\n"),
                    "{out}"
                );
                assert_eq!(r.end, "closed");
            }
        }
        assert!(closing > 0 && waiting > 0, "{closing} and {waiting}");
    }
}
