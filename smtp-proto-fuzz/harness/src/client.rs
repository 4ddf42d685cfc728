//! Target `client`: the client session machine (`smtp_proto::client::Client`)
//! fed arbitrary server bytes, with the application's calls scripted from
//! the input.
//!
//! Input: byte 0 picks the configuration (bit 0 LMTP, bits 1-2 the TLS
//! policy: off, opportunistic, required; bits 3-4 the chunking policy:
//! when needed, prefer, never; bit 5 no PIPELINING; bit 6 AUTH allowed
//! without TLS; bit 7 AUTH with a mechanism the application runs, see
//! [`CUSTOM_AUTH`]); bytes 1-2 seed the script of the application's calls
//! (after `Ready` and at the end of a transaction: send a message with one
//! to three recipients, a body drawn from a list of awkward bodies and
//! sometimes 8BITMIME/BINARYMIME/SMTPUTF8/SIZE/REQUIRETLS, authenticate
//! with a password or a token (or, under bit 7, with CRAM-MD5, EXTERNAL,
//! SCRAM-SHA-256 or X-FUZZ, whose initial response is too long for the
//! AUTH line), send NOOP, or quit; a body is sent in pieces, ended with `end_body` or
//! `send_last`; each challenge of a custom mechanism is answered with a
//! response or cancelled); the rest is what the server sends.
//!
//! Under every cut of [`crate::split::cuts`], the target plays the caller
//! and asserts:
//!
//! - never a panic; a call the machine's documentation allows after the
//!   event at hand never fails with a usage error (a `Refused` message, one
//!   the server's extensions cannot carry, is fine);
//! - every step consumes no more than the buffer holds; at most a bounded
//!   number of steps in a row consume nothing, and the total is bounded by
//!   the input length;
//! - memory stays bounded: when the client asks for input, the caller's
//!   buffer holds no more than the longest reply allowed (32 KiB and a
//!   line of the configuration's reply limits);
//! - `Paused` only when a call fits: the client is idle or wants body
//!   bytes (while replies are due it asks for input, a refused pipelined
//!   BDAT chunk included);
//! - everything the client writes holds CR and LF only as CRLF (RFC 5321
//!   §2.3.8), message bodies over DATA and over BDAT included, unless a
//!   BINARYMIME message was sent (its chunks go out byte for byte);
//! - a protocol error closes the session;
//! - a custom mechanism's challenge is reported with a round from 1 to
//!   `ClientConfig::max_auth_rounds`, and the application's answer to it
//!   (`auth_response` or `cancel_auth`) is never refused;
//! - the events (replies owned), the bytes written and the bytes consumed
//!   are the same under every cut, up to the first 220 to STARTTLS (after
//!   it, server bytes in the same read as the 220 are an injection, so the
//!   rest depends on the cut by design).

use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientError, ClientEvent,
    CustomCredentials, Envelope, Protocol, TlsPolicy,
};
use smtp_proto::command::{BodyType, Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::sasl::CustomMechanism;

use crate::server::Script;
use crate::split::check_split_invariance;
use crate::stream::{replies_end, Progress};

/// Bodies the script picks from: dots at line starts, bare CR and LF, a
/// missing final line end, smuggling sequences, binary bytes, empty.
pub const BODIES: &[&[u8]] = &[
    b"Subject: hi\r\n\r\nHello.\r\n",
    b".\r\n..\r\n.x\n\r\n.",
    b"a\n.\nMAIL FROM:<evil@example.com>\r\n\r\n.\r",
    b"",
    b"no final line end",
    b"\x00\x01\xff\r\r\n\n\x80binary",
];

/// The configuration bit that makes the application authenticate with a
/// mechanism it runs itself ([`custom_credentials`]).
pub const CUSTOM_AUTH: u8 = 128;

/// Credentials for a mechanism the application runs, picked by the script:
/// CRAM-MD5 (no initial response), EXTERNAL (`=`), SCRAM-SHA-256 (a short
/// initial response) or X-FUZZ (an initial response too long for the AUTH
/// line, sent after the server's first `334`, the longest that fits alone
/// on that line).
pub fn custom_credentials(script: &mut Script) -> AuthCredentials {
    let (name, initial): (&str, Option<Vec<u8>>) = match script.next(4) {
        0 => ("CRAM-MD5", None),
        1 => ("EXTERNAL", Some(Vec::new())),
        2 => (
            "SCRAM-SHA-256",
            Some(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL".to_vec()),
        ),
        _ => ("X-FUZZ", Some(vec![b'x'; 9213])),
    };
    let c = CustomCredentials::new(CustomMechanism::new(name).expect("valid mechanism name"));
    match initial {
        Some(r) => c.with_initial_response(r).into(),
        None => c.into(),
    }
}

/// The application's answer to a custom mechanism's challenge: cancel, or
/// a response made from the challenge (empty, the challenge echoed, or a
/// CRAM-MD5-style user name and digest).
pub fn answer_challenge(client: &mut Client, script: &mut Script, challenge: &[u8], round: usize) {
    let max = client.config().max_auth_rounds;
    assert!(
        (1..=max).contains(&round),
        "challenge round {round} outside 1..={max}"
    );
    let r = match script.next(4) {
        0 => client.cancel_auth(),
        1 => client.auth_response(b""),
        2 => client.auth_response(challenge),
        _ => {
            let mut response = b"tim ".to_vec();
            response.extend(
                challenge
                    .iter()
                    .take(16)
                    .map(|b| b"0123456789abcdef"[usize::from(b & 15)]),
            );
            client.auth_response(&response)
        }
    };
    r.expect("the answer to a challenge");
}

/// The configuration picked by `bits`.
pub fn config(bits: u8) -> ClientConfig {
    let c = ClientConfig::new(Domain::new("client.example.net").expect("valid domain"));
    let c = c.with_protocol(if bits & 1 != 0 {
        Protocol::Lmtp
    } else {
        Protocol::Smtp
    });
    let c = c.with_tls(match (bits >> 1) & 3 {
        0 => TlsPolicy::Off,
        1 => TlsPolicy::Opportunistic,
        _ => TlsPolicy::Required,
    });
    let c = c.with_chunking(match (bits >> 3) & 3 {
        0 => ChunkingPolicy::WhenNeeded,
        1 => ChunkingPolicy::Prefer,
        _ => ChunkingPolicy::Never,
    });
    c.with_pipelining(bits & 32 == 0)
        .with_auth_without_tls(bits & 64 != 0)
}

/// The envelope for a transaction.
pub fn envelope(script: &mut Script) -> Envelope<'static> {
    let from = Mailbox::parse("alice@example.net").expect("valid mailbox");
    let mut env = Envelope::new(if script.next(5) == 0 {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(from)
    });
    for i in 0..=script.next(3) {
        let to = match i {
            0 => "bob@example.org",
            1 => "carol@example.org",
            _ => "dave@example.org",
        };
        env = env.recipient(ForwardPath::Mailbox(Mailbox::parse(to).expect("valid")));
    }
    match script.next(8) {
        0 => env = env.with_body(BodyType::EightBitMime),
        1 => env = env.with_body(BodyType::BinaryMime),
        2 => env = env.with_smtputf8(true),
        3 => env = env.with_size(script.next(200)),
        4 => env = env.with_require_tls(true),
        _ => {}
    }
    env
}

/// Sends one body in pieces, as far as the client takes them at once.
#[derive(Debug, Clone)]
pub struct BodySender {
    /// The whole body.
    pub body: &'static [u8],
    pieces: Vec<&'static [u8]>,
    last: bool,
}

impl BodySender {
    /// A body from the script, cut in up to three pieces; ended with
    /// `send_last` or with `end_body`.
    pub fn new(script: &mut Script) -> Self {
        let body = BODIES[script.next(BODIES.len() as u64) as usize];
        let a = script.next(body.len() as u64 + 1) as usize;
        let b = a + script.next((body.len() - a) as u64 + 1) as usize;
        let pieces = vec![&body[..a], &body[a..b], &body[b..]];
        Self {
            body,
            pieces,
            last: script.next(2) == 0,
        }
    }

    /// Sends what the client takes now; true once the body is ended.
    pub fn send(&mut self, client: &mut Client) -> bool {
        while client.wants_body() {
            if self.pieces.len() == 1 && self.last {
                let p = self.pieces.remove(0);
                client
                    .send_last(p)
                    .expect("send_last while the body is wanted");
                return true;
            }
            if self.pieces.is_empty() {
                client
                    .end_body()
                    .expect("end_body while the body is wanted");
                return true;
            }
            let p = self.pieces.remove(0);
            client
                .send_body(p)
                .expect("send_body while the body is wanted");
        }
        false
    }
}

/// What the application does when the client is idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Send a message.
    Mail,
    /// Authenticate.
    Auth,
    /// Quit.
    Quit,
    /// Send NOOP (counts as a transaction, so the script ends).
    Noop,
}

/// How the client targets name a protocol error of the client. An
/// over-long reply line is reported with the bytes that had arrived,
/// which depend on where the input was cut: it is named by its kind.
pub(crate) fn error_name(e: &ClientError) -> String {
    match e {
        ClientError::BadReply(r) => format!("BadReply({:?})", r.kind()),
        e => format!("{e:?}"),
    }
}

/// Drives a fresh client over `pieces`; `custom_auth` makes the
/// application authenticate with a mechanism it runs.
pub fn drive(cfg: &ClientConfig, custom_auth: bool, mut script: Script, pieces: &[&[u8]]) -> Run {
    let mut client = Client::new(cfg.clone());
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let max_buffered = cfg.replies.max_reply_len + cfg.replies.max_line_len;
    let mut run = Run::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut progress = Progress::for_input(total);
    let mut transactions = 0usize;
    let mut auth_tried = false;
    let mut sender: Option<BodySender> = None;
    client.poll_transmit(&mut run.output);
    // The output once the last event (other than a 421) was handled.
    let mut after_last_event = run.output.len();
    // Replies past the first complete one given too (see `replies_end`).
    let mut more = 0;
    'outer: for piece in pieces {
        buf.extend_from_slice(piece);
        progress.next_piece();
        loop {
            progress.call();
            let limit = replies_end(&buf, 1 + more);
            let step = match client.handle_input(buf.get(..limit).unwrap_or_default()) {
                Ok(step) => step,
                Err(ClientError::Usage(e)) => panic!("handle_input refused the caller: {e:?}"),
                Err(e) => {
                    let what = error_name(&e);
                    run.events.push(format!("Error({what})"));
                    assert!(client.is_closed(), "open after the protocol error {e:?}");
                    client.poll_transmit(&mut run.output);
                    run.end = format!("error {what}");
                    break 'outer;
                }
            };
            let consumed = step.consumed;
            progress.consumed(consumed, limit);
            if consumed > 0 {
                more = 0;
            }
            let mut starttls = false;
            let mut event_step = false;
            match step.outcome {
                smtp_proto::client::Outcome::Event(event) => {
                    run.events.push(format!("{:?}", event.clone().into_owned()));
                    if let ClientEvent::ServiceClosing { .. } = &event {
                        // Nothing is written after a 421 is read.
                        let before = run.output.len();
                        client.poll_transmit(&mut run.output);
                        assert_eq!(run.output.len(), before, "output after a 421");
                        run.before_421 = Some(after_last_event);
                    } else {
                        event_step = true;
                    }
                    match &event {
                        ClientEvent::StartTls => starttls = true,
                        ClientEvent::Ready
                        | ClientEvent::Authenticated { .. }
                        | ClientEvent::AuthFailed { .. }
                        | ClientEvent::TransactionEnd(_)
                        | ClientEvent::Noop { .. } => {
                            let choice = match script.next(6) {
                                _ if transactions >= 3 => Idle::Quit,
                                0 if !auth_tried => Idle::Auth,
                                0 | 1 => Idle::Quit,
                                5 => Idle::Noop,
                                _ => Idle::Mail,
                            };
                            idle(
                                &mut client,
                                choice,
                                custom_auth,
                                &mut script,
                                &mut run,
                                &mut transactions,
                                &mut auth_tried,
                            );
                        }
                        ClientEvent::AuthChallenge {
                            challenge, round, ..
                        } => answer_challenge(&mut client, &mut script, challenge, *round),
                        ClientEvent::SendBody => {
                            if sender.is_none() {
                                sender = Some(BodySender::new(&mut script));
                            }
                            if let Some(b) = sender.as_mut() {
                                if b.send(&mut client) {
                                    sender = None;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                smtp_proto::client::Outcome::NeedInput if consumed == 0 && limit < buf.len() => {
                    // The reply goes on past the line taken for its end.
                    more += 1;
                    continue;
                }
                smtp_proto::client::Outcome::NeedInput => {
                    assert!(
                        buf.len() - consumed <= max_buffered,
                        "asked for input while {} bytes are buffered",
                        buf.len() - consumed
                    );
                    client.poll_transmit(&mut run.output);
                    buf.drain(..consumed);
                    run.consumed += consumed;
                    if consumed == 0 {
                        continue 'outer;
                    }
                    continue;
                }
                smtp_proto::client::Outcome::Paused => {
                    client.poll_transmit(&mut run.output);
                    buf.drain(..consumed);
                    run.consumed += consumed;
                    if client.is_idle() {
                        client.quit().expect("quit when idle");
                        continue;
                    }
                    assert!(client.wants_body(), "Paused while no call fits: {client:?}");
                    let b = sender.get_or_insert_with(|| BodySender::new(&mut script));
                    if b.send(&mut client) {
                        sender = None;
                    }
                    continue;
                }
                smtp_proto::client::Outcome::Closed => {
                    buf.drain(..consumed);
                    run.consumed += consumed;
                    client.poll_transmit(&mut run.output);
                    assert!(client.is_closed());
                    run.end = "closed".into();
                    break 'outer;
                }
                smtp_proto::client::Outcome::Transmit => {
                    client.poll_transmit(&mut run.output);
                }
                other => panic!("unexpected outcome {other:?}"),
            }
            buf.drain(..consumed);
            run.consumed += consumed;
            client.poll_transmit(&mut run.output);
            if event_step {
                after_last_event = run.output.len();
            }
            if starttls {
                if run.before_starttls.is_none() {
                    run.before_starttls = Some((run.consumed - consumed, run.output.len()));
                }
                if !buf.is_empty() {
                    // Bytes after the 220 in the same read: the machine
                    // refuses them before the handshake.
                    let e = client
                        .handle_input(&buf)
                        .expect_err("bytes after the STARTTLS 220 are refused");
                    let what = error_name(&e);
                    run.events.push(format!("Error({what})"));
                    client.poll_transmit(&mut run.output);
                    run.end = format!("error {what}");
                    break 'outer;
                }
                client.tls_established().expect("the handshake was awaited");
                assert!(client.is_tls());
                client.poll_transmit(&mut run.output);
            }
        }
    }
    client.poll_transmit(&mut run.output);
    if !run.binary {
        assert_crlf_only(&run.output);
    }
    run
}

/// Asserts that `out` holds CR and LF only as CRLF.
pub fn assert_crlf_only(out: &[u8]) {
    for (i, &b) in out.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR written at {i}"),
            b'\n' => assert_eq!(
                i.checked_sub(1).and_then(|j| out.get(j)),
                Some(&b'\r'),
                "bare LF written at {i}"
            ),
            _ => {}
        }
    }
}

fn idle(
    client: &mut Client,
    choice: Idle,
    custom_auth: bool,
    script: &mut Script,
    run: &mut Run,
    transactions: &mut usize,
    auth_tried: &mut bool,
) {
    match choice {
        Idle::Mail => {
            *transactions += 1;
            let env = envelope(script);
            match client.send_mail(&env) {
                Ok(()) => run.binary |= env.body == Some(BodyType::BinaryMime),
                Err(ClientError::Refused(r)) => {
                    run.events.push(format!("Refused({r:?})"));
                    client.quit().expect("quit after a refused message");
                }
                Err(e) => panic!("send_mail when idle: {e:?}"),
            }
        }
        Idle::Auth => {
            *auth_tried = true;
            let creds = if custom_auth {
                custom_credentials(script)
            } else if script.next(2) == 0 {
                AuthCredentials::password("alice", "s3cret")
            } else {
                AuthCredentials::oauth2("alice@example.net", "tok3n")
            };
            match client.authenticate(creds, None) {
                Ok(_) => {}
                Err(ClientError::Usage(e)) => {
                    // No TLS, or no common mechanism: documented refusals.
                    run.events.push(format!("AuthNotPossible({e:?})"));
                    client.quit().expect("quit after AUTH was not possible");
                }
                Err(e) => panic!("authenticate when idle: {e:?}"),
            }
        }
        Idle::Quit => client.quit().expect("quit when idle"),
        Idle::Noop => {
            *transactions += 1;
            client.noop().expect("noop when idle");
        }
    }
}

/// What the caller saw, compared across cuts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// Events, owned and printed.
    pub events: Vec<String>,
    /// Bytes the client wrote.
    pub output: Vec<u8>,
    /// Bytes of input consumed.
    pub consumed: usize,
    /// How the run ended.
    pub end: String,
    /// Input consumed before the first 220 to STARTTLS, and the output then.
    pub before_starttls: Option<(usize, usize)>,
    /// A BINARYMIME message was started: its body is written as it is.
    pub binary: bool,
    /// After a 421 (`ServiceClosing`): the output as it stood once the
    /// event before it was handled.
    pub before_421: Option<usize>,
}

/// Removes what depends on the cut by design: everything from the first
/// 220 to STARTTLS on (server bytes in the same read as that 220 are an
/// injection the client refuses; after the handshake they are not); and
/// after a 421, the output queued since the event before it: a command
/// queued on a reply without an event (the HELO fallback, an AUTH
/// response, the next RCPT without PIPELINING) goes out when that reply
/// came in a read of its own, and is dropped unsent when the 421 came in
/// the same read (RFC 5321 §3.8: nothing more goes to a closing server).
fn normalize(mut r: Run) -> Run {
    if let Some(n) = r.before_421.take() {
        r.output.truncate(n);
    }
    // Only `drive` uses it (for its own check), and after STARTTLS the
    // messages sent depend on the cut.
    r.binary = false;
    let tls = r
        .events
        .iter()
        .position(|e| e == "StartTls" || e == "Error(ResponseInjection)");
    // A protocol error comes without a count of consumed bytes (the
    // session is over): what the last call had consumed is not reported.
    if r.end.starts_with("error") {
        r.consumed = 0;
    }
    if let Some(i) = tls {
        r.events.truncate(i);
        // The client reads replies without events in the same step as the
        // 220 (the EHLO reply before it, for one), so the bytes consumed
        // before it are not observable: only events and output compare.
        let output = r.before_starttls.map_or(r.output.len(), |(_, o)| o);
        r.consumed = 0;
        r.output.truncate(output);
        r.end = "STARTTLS".into();
        r.before_starttls = None;
    }
    r
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let [bits, a, b, stream @ ..] = data else {
        return;
    };
    let cfg = config(*bits);
    let custom_auth = bits & CUSTOM_AUTH != 0;
    let _ = check_split_invariance(stream, |pieces| {
        normalize(drive(&cfg, custom_auth, Script::new(*a, *b), pieces))
    });
}

#[cfg(test)]
mod tests {
    use super::{config, drive, run, Script, CUSTOM_AUTH};

    /// With the custom AUTH bit, the scripted application authenticates
    /// with each mechanism it runs, answers challenges and cancels, and
    /// the client cancels a bad challenge by itself.
    #[test]
    fn custom_auth_bit_reaches_application_mechanisms() {
        let stream: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n\
            250 AUTH CRAM-MD5 EXTERNAL SCRAM-SHA-256 X-FUZZ\r\n\
            334 \r\n334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n\
            334 %%%\r\n501 5.7.0 cancelled\r\n221 bye\r\n";
        let bits = 64 | CUSTOM_AUTH;
        let (mut mechanisms, mut challenges, mut responses, mut cancels, mut bad) =
            (std::collections::BTreeSet::new(), 0, 0, 0, 0);
        for a in 0..=255u8 {
            for b in 0..4u8 {
                let r = drive(&config(bits), true, Script::new(a, b), &[stream]);
                let out = String::from_utf8_lossy(&r.output);
                let Some(line) = out.lines().find(|l| l.starts_with("AUTH ")) else {
                    continue;
                };
                let new = mechanisms.insert(line.split(' ').nth(1).unwrap_or_default().to_owned());
                challenges += r
                    .events
                    .iter()
                    .filter(|e| e.starts_with("AuthChallenge"))
                    .count();
                // Response lines of the application: base64 (or empty),
                // not `*`, not a command, not X-FUZZ's initial response.
                responses += out
                    .lines()
                    .filter(|l| !l.contains(' ') && !matches!(*l, "*" | "QUIT") && l.len() < 1000)
                    .count();
                cancels += out.matches("\r\n*\r\n").count();
                bad += r
                    .events
                    .iter()
                    .filter(|e| e.contains("failure: BadChallenge"))
                    .count();
                // The whole target (every cut) once per mechanism.
                if new {
                    let mut data = vec![bits, a, b];
                    data.extend_from_slice(stream);
                    run(&data);
                }
            }
        }
        assert_eq!(mechanisms.len(), 4, "{mechanisms:?}");
        assert!(challenges > 0 && responses > 0 && cancels > 0 && bad > 0);
    }
}
