//! Target `pair`: the client and server machines against each other, in
//! memory, with arbitrary operations and arbitrary cuts.
//!
//! Input: byte 0 configures the server and byte 1 the client (the bits of
//! [`crate::server::config`] and [`crate::client::config`], the server
//! always greeting, STARTTLS and AUTH offered when the bits say so, LMTP on
//! both sides or neither); bytes 2-3 seed the client application's script
//! (messages, recipients, bodies, AUTH, NOOP, QUIT, as in the `client` target),
//! bytes 4-5 the server application's decisions (as in the `server`
//! target); the rest gives the sizes of the reads on each side (each byte
//! one read of 1 to 256 bytes, cycling).
//!
//! The target shuttles bytes between the two machines through those reads,
//! runs both TLS handshakes (as calls, no bytes) when both ask for them,
//! and asserts:
//!
//! - they never fall out of step: no protocol error on either side, no
//!   usage error for a call the documentation allows, and the exchange
//!   always moves on until both sides are closed (a state where both wait
//!   for input with nothing in flight is a finding), within a bounded
//!   number of steps;
//! - both agree on what was delivered: the messages the server accepted,
//!   each with the recipients it accepted for it and its content, are
//!   exactly the messages the client reports delivered
//!   (`TransactionSummary::delivered`), with the content the client sent,
//!   bare CR and LF made CRLF and a final CRLF added (RFC 5321 §2.3.8),
//!   over DATA and over BDAT alike; only a BINARYMIME body, which always
//!   goes over BDAT, arrives unchanged;
//! - the server answers every NOOP the client sends with a success;
//! - both agree on whether the client is authenticated at the end; when
//!   the client authenticates with CRAM-MD5 run by both applications (a
//!   mechanism the server offers under its AUTH bit), each challenge the
//!   client sees and each answer the server sees is the one the other side
//!   sent for that round, so both machines frame and count the rounds
//!   alike.

use smtp_proto::client::{ClientError, ClientEvent, Outcome as ClientOutcome};
use smtp_proto::command::BodyType;
use smtp_proto::sasl::{CustomMechanism, SecretBytes};
use smtp_proto::server::{Error, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;

use crate::client::{BodySender, Idle};
use crate::server::Script;

/// One delivered message: recipients (as written) and content.
pub type Delivery = (Vec<String>, Vec<u8>);

struct Reads<'a> {
    sizes: &'a [u8],
    i: usize,
}

impl Reads<'_> {
    fn next(&mut self) -> usize {
        if self.sizes.is_empty() {
            return usize::MAX;
        }
        let n = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        usize::from(n) + 1
    }
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let _ = exchange(data);
}

/// Runs the exchange `data` describes and checks it; returns the messages
/// delivered.
pub fn exchange(data: &[u8]) -> Vec<Delivery> {
    exchange_report(data).delivered
}

/// What an exchange did, for the harness's own tests.
#[derive(Debug, Default)]
pub struct Report {
    /// The messages delivered.
    pub delivered: Vec<Delivery>,
    /// Whether the server accepted an application-run mechanism after at
    /// least one challenge and answer.
    pub custom_auth_accepted: bool,
}

/// [`exchange`], with what it did.
pub fn exchange_report(data: &[u8]) -> Report {
    let [sbits, cbits, c1, c2, s1, s2, sizes @ ..] = data else {
        return Report::default();
    };
    // LMTP on both sides or neither; the server always greets.
    let lmtp = sbits & 1;
    let sbits = (sbits & !1 & !128) | lmtp;
    let cbits = (cbits & !1) | lmtp;
    let mut scfg = crate::server::config(sbits);
    // The client's script may send mail without authenticating; a session
    // that requires AUTH refuses each MAIL with 530, which counts as an
    // error (as a client that keeps trying without credentials should
    // find), so three such messages meet the small error limit and the
    // server closes: by design, not out of step. The `server` target
    // covers sessions that require AUTH.
    scfg.auth_required = false;
    // A server that limits the messages of a connection without
    // advertising LIMITS answers the MAIL after the last with 421 and
    // closes, which the client cannot foresee: by design, not out of step
    // (the `server` target covers it). With LIMITS advertised, the client
    // keeps to MAILMAX and the pair must stay in step.
    if !scfg.limits {
        scfg.max_transactions = None;
    }
    let mut ccfg = crate::client::config(cbits);
    if scfg.implicit_tls {
        // Both ends of an implicit-TLS connection know it is encrypted.
        ccfg = ccfg.with_implicit_tls(true);
    }
    let mut server = ServerSession::new(scfg).expect("valid server configuration");
    let mut client = smtp_proto::client::Client::new(ccfg);
    let mut cscript = Script::new(*c1, *c2);
    let mut sscript = Script::new(*s1, *s2);
    let mut reads = Reads { sizes, i: 0 };
    server.greet().expect("greet");

    let mut to_client: Vec<u8> = Vec::new();
    let mut to_server: Vec<u8> = Vec::new();
    let mut cbuf: Vec<u8> = Vec::new();
    let mut sbuf: Vec<u8> = Vec::new();

    // Server side bookkeeping.
    let mut s_rcpts: Vec<String> = Vec::new();
    let mut s_pending_rcpt: Option<String> = None;
    let mut s_body: Vec<u8> = Vec::new();
    let mut s_chunked: Vec<bool> = Vec::new();
    let mut s_chunked_now = false;
    let mut s_delivered: Vec<Delivery> = Vec::new();
    // Client side bookkeeping: the recipients of the transaction under
    // way, and whether its body is BINARYMIME.
    let mut c_env: Option<(Vec<String>, bool)> = None;
    let mut c_sender: Option<BodySender> = None;
    let mut c_body: Option<&'static [u8]> = None;
    let mut c_delivered: Vec<(Delivery, bool)> = Vec::new();
    let mut transactions = 0usize;
    let mut auth_tried = false;
    let mut tls_client = false;
    let mut tls_server = false;
    let mut custom_auth_accepted = false;

    let mut steps = 0usize;
    let max_steps = 200_000;
    loop {
        steps += 1;
        assert!(steps < max_steps, "no end after {steps} steps");
        let mut progress = false;
        server.poll_transmit(&mut to_client);
        client.poll_transmit(&mut to_server);

        // Deliver one read to the server, then run it until it waits.
        if !to_server.is_empty() {
            let n = reads.next().min(to_server.len());
            sbuf.extend(to_server.drain(..n));
            progress = true;
        }
        loop {
            if server.is_closed() {
                break;
            }
            let step = match server.handle_input(&sbuf) {
                Ok(s) => s,
                Err(Error::Remote(e)) => panic!("out of step: the server saw {e:?}"),
                Err(e) => panic!("server refused the caller: {e:?}"),
            };
            let consumed = step.consumed;
            match step.outcome {
                Outcome::Event(ServerEvent::AuthExchange {
                    response, round, ..
                }) => {
                    progress = true;
                    let accepted = exchange_step(
                        &mut server,
                        response.as_ref().map(SecretBytes::expose),
                        round,
                        &mut sscript,
                    );
                    custom_auth_accepted |= accepted && round > 0;
                }
                Outcome::Event(ev) => {
                    progress = true;
                    let decision = matches!(
                        ev,
                        ServerEvent::Hello { .. }
                            | ServerEvent::Mail { .. }
                            | ServerEvent::Rcpt { .. }
                            | ServerEvent::Vrfy(_)
                            | ServerEvent::Expn(_)
                            | ServerEvent::Auth(_)
                            | ServerEvent::MessageEnd { .. }
                    );
                    match &ev {
                        ServerEvent::Mail { .. } | ServerEvent::Reset => {
                            s_rcpts.clear();
                            s_body.clear();
                        }
                        ServerEvent::Rcpt { to, .. } => s_pending_rcpt = Some(to.to_string()),
                        ServerEvent::MessageStart { chunked } => {
                            s_body.clear();
                            s_chunked_now = *chunked;
                        }
                        ServerEvent::MessageChunk(c) => s_body.extend_from_slice(c),
                        ServerEvent::StartTls => tls_server = true,
                        _ => {}
                    }
                    if decision {
                        let accepted = decide(&mut server, &ev, &mut sscript, &s_rcpts);
                        match &ev {
                            ServerEvent::Rcpt { .. } if accepted.first() == Some(&true) => {
                                s_rcpts.extend(s_pending_rcpt.take());
                            }
                            // An accepted greeting resets the transaction; a
                            // refused one leaves it (RFC 5321 §4.1.4).
                            ServerEvent::Hello { .. } if accepted.first() == Some(&true) => {
                                s_rcpts.clear();
                                s_body.clear();
                            }
                            ServerEvent::MessageEnd { .. } => {
                                let got: Vec<String> = s_rcpts
                                    .iter()
                                    .zip(accepted.iter().chain(std::iter::repeat(&accepted[0])))
                                    .filter(|(_, &ok)| ok)
                                    .map(|(r, _)| r.clone())
                                    .collect();
                                if !got.is_empty() {
                                    let mut got = got;
                                    got.sort();
                                    s_delivered.push((got, std::mem::take(&mut s_body)));
                                    s_chunked.push(s_chunked_now);
                                }
                                s_rcpts.clear();
                            }
                            _ => {}
                        }
                    }
                    if matches!(ev, ServerEvent::Rejected { .. }) {
                        // A refused message (or BDAT chunk) ends the
                        // transaction's message.
                        s_body.clear();
                    }
                }
                Outcome::NeedInput => {
                    sbuf.drain(..consumed);
                    if consumed == 0 {
                        break;
                    }
                    continue;
                }
                Outcome::Transmit => {
                    server.poll_transmit(&mut to_client);
                }
                Outcome::Paused => break,
                Outcome::Closed => {
                    sbuf.drain(..consumed);
                    break;
                }
                other => panic!("server: unexpected outcome {other:?}"),
            }
            sbuf.drain(..consumed);
        }
        server.poll_transmit(&mut to_client);

        // Deliver one read to the client, then run it until it waits.
        if !to_client.is_empty() {
            let n = reads.next().min(to_client.len());
            cbuf.extend(to_client.drain(..n));
            progress = true;
        }
        loop {
            if client.is_closed() {
                break;
            }
            let step = match client.handle_input(&cbuf) {
                Ok(s) => s,
                Err(ClientError::Usage(e)) => panic!("client refused the caller: {e:?}"),
                Err(e) => panic!("out of step: the client saw {e:?}"),
            };
            let consumed = step.consumed;
            match step.outcome {
                ClientOutcome::Event(ev) => {
                    progress = true;
                    match &ev {
                        ClientEvent::StartTls => tls_client = true,
                        ClientEvent::Ready
                        | ClientEvent::Authenticated { .. }
                        | ClientEvent::AuthFailed { .. }
                        | ClientEvent::TransactionEnd(_)
                        | ClientEvent::Noop { .. } => {
                            if let ClientEvent::Noop { verdict, .. } = &ev {
                                // The server answers NOOP in every state.
                                assert!(verdict.is_success(), "NOOP refused: {ev:?}");
                            }
                            if let ClientEvent::TransactionEnd(summary) = &ev {
                                let (env, binary) =
                                    c_env.take().expect("a transaction was started");
                                let mut got: Vec<String> =
                                    summary.delivered().map(|i| env[i].clone()).collect();
                                if !got.is_empty() {
                                    got.sort();
                                    let body = c_body.take().unwrap_or_default();
                                    c_delivered.push(((got, body.to_vec()), binary));
                                }
                                c_body = None;
                            }
                            let choice = match cscript.next(6) {
                                _ if transactions >= 3 => Idle::Quit,
                                0 if !auth_tried => Idle::Auth,
                                0 => Idle::Quit,
                                5 => Idle::Noop,
                                _ => Idle::Mail,
                            };
                            if choice == Idle::Mail {
                                transactions += 1;
                                let env = crate::client::envelope(&mut cscript);
                                let rcpts: Vec<String> =
                                    env.recipients.iter().map(|r| r.path.to_string()).collect();
                                let binary = env.body == Some(BodyType::BinaryMime);
                                match client.send_mail(&env) {
                                    Ok(()) => c_env = Some((rcpts, binary)),
                                    Err(ClientError::Refused(_)) => {
                                        client.quit().expect("quit after a refused message")
                                    }
                                    Err(e) => panic!("send_mail when idle: {e:?}"),
                                }
                            } else if choice == Idle::Auth {
                                auth_tried = true;
                                let creds = if cscript.next(2) == 0 {
                                    let name = CustomMechanism::new("CRAM-MD5").expect("name");
                                    smtp_proto::client::AuthCredentials::custom(name, None)
                                } else {
                                    smtp_proto::client::AuthCredentials::password("alice", "s3cret")
                                };
                                if client.authenticate(creds, None).is_err() {
                                    client.quit().expect("quit after AUTH was not possible");
                                }
                            } else if choice == Idle::Noop {
                                transactions += 1;
                                client.noop().expect("noop when idle");
                            } else {
                                client.quit().expect("quit when idle");
                            }
                        }
                        ClientEvent::AuthChallenge {
                            challenge, round, ..
                        } => {
                            // The server's challenge names the round it
                            // was sent in (0 for the answer to AUTH).
                            assert_eq!(
                                challenge,
                                &challenge_text(round - 1),
                                "challenge of round {round}"
                            );
                            if cscript.next(5) == 0 {
                                client.cancel_auth().expect("cancel a pending challenge");
                            } else {
                                client
                                    .auth_response(&answer_text(*round))
                                    .expect("answer a pending challenge");
                            }
                        }
                        ClientEvent::SendBody => {
                            let b = c_sender.get_or_insert_with(|| {
                                let b = BodySender::new(&mut cscript);
                                c_body = Some(b.body);
                                b
                            });
                            if b.send(&mut client) {
                                c_sender = None;
                            }
                        }
                        _ => {}
                    }
                }
                ClientOutcome::NeedInput => {
                    cbuf.drain(..consumed);
                    if consumed == 0 {
                        break;
                    }
                    continue;
                }
                ClientOutcome::Paused => {
                    cbuf.drain(..consumed);
                    if client.wants_body() {
                        if let Some(b) = c_sender.as_mut() {
                            if b.send(&mut client) {
                                c_sender = None;
                            }
                            progress = true;
                            continue;
                        }
                    }
                    break;
                }
                ClientOutcome::Transmit => {
                    client.poll_transmit(&mut to_server);
                }
                ClientOutcome::Closed => {
                    cbuf.drain(..consumed);
                    break;
                }
                other => panic!("client: unexpected outcome {other:?}"),
            }
            cbuf.drain(..consumed);
        }
        client.poll_transmit(&mut to_server);

        // The TLS handshake, once both sides wait for it and nothing is in
        // flight.
        if tls_client && tls_server && to_server.is_empty() && to_client.is_empty() {
            assert!(
                cbuf.is_empty() && sbuf.is_empty(),
                "bytes around the handshake"
            );
            server
                .tls_established()
                .expect("server awaited the handshake");
            client
                .tls_established()
                .expect("client awaited the handshake");
            tls_client = false;
            tls_server = false;
            progress = true;
        }

        if client.is_closed() && to_server.is_empty() && to_client.is_empty() {
            break;
        }
        if !progress {
            panic!(
                "out of step: both sides wait (client closed {}, server closed {}, \
                 {} bytes for the client, {} for the server)",
                client.is_closed(),
                server.is_closed(),
                cbuf.len(),
                sbuf.len()
            );
        }
    }
    assert!(client.is_closed(), "the client did not finish");
    assert_eq!(
        client.is_authenticated(),
        server.is_authenticated(),
        "client and server disagree on AUTH"
    );
    // What the client sent, as the server must have read it: with bare CR
    // and LF made CRLF and a final CRLF added, over DATA and BDAT alike; a
    // BINARYMIME body as is, and over BDAT.
    let binary: Vec<bool> = c_delivered.iter().map(|(_, b)| *b).collect();
    let expected: Vec<Delivery> = c_delivered
        .into_iter()
        .map(|((rcpts, body), binary)| {
            if binary {
                (rcpts, body)
            } else {
                (rcpts, crate::body::normalized(&body))
            }
        })
        .collect();
    assert_eq!(
        s_delivered, expected,
        "server and client disagree on what was delivered"
    );
    for (i, &b) in binary.iter().enumerate() {
        assert!(!b || s_chunked[i], "a BINARYMIME message went over DATA");
    }
    Report {
        delivered: s_delivered,
        custom_auth_accepted,
    }
}

/// The server's challenge in `round` of an application mechanism.
fn challenge_text(round: usize) -> Vec<u8> {
    format!("challenge {round}").into_bytes()
}

/// The client's answer to the challenge it saw as `round` (from 1).
fn answer_text(round: usize) -> Vec<u8> {
    format!("answer {round}").into_bytes()
}

/// Answers a step of an application mechanism's exchange from the script:
/// another challenge (at most three), acceptance or a 535. Each response
/// must be the client's answer to the challenge before it, which checks
/// that both machines frame and count the rounds alike. Returns whether
/// the server accepted.
fn exchange_step(
    server: &mut ServerSession,
    response: Option<&[u8]>,
    round: usize,
    script: &mut Script,
) -> bool {
    use smtp_proto::reply::OwnedReply;
    use smtp_proto::status::ReplyCode;
    if round == 0 {
        // The client in this target sends no initial response.
        assert_eq!(response, None, "initial response");
    } else {
        assert_eq!(
            response,
            Some(&answer_text(round)[..]),
            "response of round {round}"
        );
    }
    let choice = script.next(4);
    let accept = choice == 1 || (choice > 1 && round >= 3);
    let r = if choice == 0 {
        server
            .reject(OwnedReply::new(ReplyCode::new(535).expect("code"), "5.7.8 no").expect("reply"))
    } else if accept {
        server.accept_auth("fuzz")
    } else {
        server.auth_challenge(&challenge_text(round)).map(|_| ())
    };
    r.unwrap_or_else(|e| panic!("answering AUTH round {round}: {e:?}"));
    accept
}

/// Answers a server decision from the script; returns, for RCPT, whether
/// it was accepted, and for a message, per recipient (or once for all).
fn decide(
    server: &mut ServerSession,
    ev: &ServerEvent<'_>,
    script: &mut Script,
    rcpts: &[String],
) -> Vec<bool> {
    use smtp_proto::reply::OwnedReply;
    use smtp_proto::status::ReplyCode;
    let reply = |code: u16, text: &str| {
        OwnedReply::new(ReplyCode::new(code).expect("code"), text).expect("reply")
    };
    let choice = script.next(8);
    let lmtp = server.config().lmtp;
    let r;
    let accepted;
    match ev {
        ServerEvent::MessageEnd { .. } if lmtp && choice == 5 => {
            let oks: Vec<bool> = rcpts.iter().map(|_| script.next(2) == 0).collect();
            let replies: Vec<OwnedReply> = oks
                .iter()
                .map(|&ok| {
                    if ok {
                        reply(250, "2.0.0 ok")
                    } else {
                        reply(550, "5.1.1 no")
                    }
                })
                .collect();
            r = server.reply_per_recipient(&replies);
            accepted = oks;
        }
        _ if choice == 6 => {
            r = server.reject(reply(550, "5.7.1 refused"));
            accepted = vec![false];
        }
        _ => {
            r = server.accept();
            accepted = vec![true];
        }
    }
    r.unwrap_or_else(|e| panic!("answering {ev:?}: {e:?}"));
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_deliver_messages() {
        // Some scripts send mail: over many of them, messages get through,
        // to every recipient count, over DATA and over BDAT.
        let mut delivered = 0;
        let mut rcpt_counts = std::collections::BTreeSet::new();
        for seed in 0..64u8 {
            for cbits in [0u8, 8] {
                let d = exchange(&[0, cbits, seed, 7, 0, 0, 255]);
                delivered += d.len();
                rcpt_counts.extend(d.iter().map(|(r, _)| r.len()));
            }
        }
        assert!(delivered > 20, "only {delivered} messages delivered");
        assert_eq!(rcpt_counts, [1, 2, 3].into_iter().collect());
    }

    #[test]
    fn exchanges_run_application_mechanisms() {
        // With AUTH offered (server bit 8, client allowed AUTH in the
        // clear), some scripts authenticate through CRAM-MD5 run by both
        // applications: a challenge, an answer, then the server's verdict.
        let mut authenticated = 0;
        for seed in 0..=255u8 {
            for s2 in 0..4u8 {
                let report = exchange_report(&[8, 64, seed, 3, 1, s2, 255]);
                authenticated += usize::from(report.custom_auth_accepted);
            }
        }
        assert!(
            authenticated > 0,
            "no exchange authenticated through CRAM-MD5"
        );
    }
}
