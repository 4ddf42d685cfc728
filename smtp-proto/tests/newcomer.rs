//! Small programs written from the README, the crate documentation and the
//! public API only: one message through the server machine and one through
//! the client machine, each against a scripted peer.

use smtp_proto::client::{
    ChunkingPolicy, Client, ClientConfig, ClientEvent, Delivery, Envelope,
    Outcome as ClientOutcome, Protocol, TlsPolicy, Verdict,
};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;
use smtp_proto::status::{EnhancedStatusCode, ReplyCode};

/// What a server run gathered.
#[derive(Debug, Default)]
struct Received {
    wire: Vec<u8>,
    hello: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    message: Vec<u8>,
    message_size: Option<u64>,
    closed: bool,
}

/// Drives a server session over `reads`, the client's bytes as they arrive,
/// accepting everything but recipients whose local part is `nobody`.
fn run_server(config: ServerConfig, reads: &[&[u8]]) -> Received {
    let mut server = ServerSession::new(config).unwrap();
    server.greet().unwrap();
    let mut reads = reads.iter();
    let mut buf: Vec<u8> = Vec::new();
    let mut got = Received::default();
    // Bounded: every call consumes bytes, answers a decision or asks for input.
    for _ in 0..10_000 {
        let step = server.handle_input(&buf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(event) => match event {
                ServerEvent::Hello { domain, .. } => {
                    got.hello = Some(domain.to_string());
                    server.accept().unwrap();
                }
                ServerEvent::Mail { from, .. } => {
                    got.from = Some(from.to_string());
                    server.accept().unwrap();
                }
                ServerEvent::Rcpt { to, .. } => {
                    let to = to.to_string();
                    if to.starts_with("<nobody@") {
                        let reply = OwnedReply::with_enhanced(
                            ReplyCode::MAILBOX_UNAVAILABLE,
                            Some(EnhancedStatusCode::BAD_MAILBOX),
                            "No such user",
                        )
                        .unwrap();
                        server.reject(reply).unwrap();
                    } else {
                        got.to.push(to);
                        server.accept().unwrap();
                    }
                }
                ServerEvent::MessageChunk(bytes) => got.message.extend_from_slice(bytes),
                ServerEvent::MessageEnd { size, recipients } => {
                    assert_eq!(recipients, got.to.len());
                    got.message_size = Some(size);
                    server.accept().unwrap();
                }
                ServerEvent::Rejected { code, reason } => {
                    panic!("the machine refused something: {code} {reason:?}")
                }
                _ => {} // information only
            },
            Outcome::NeedInput => {
                server.poll_transmit(&mut got.wire);
                match reads.next() {
                    Some(bytes) => buf.extend_from_slice(bytes),
                    None => break,
                }
            }
            Outcome::Transmit => {
                server.poll_transmit(&mut got.wire);
            }
            Outcome::Closed => {
                server.poll_transmit(&mut got.wire);
                got.closed = true;
                break;
            }
            other => panic!("unexpected outcome {other:?}"),
        }
        buf.drain(..consumed);
    }
    assert!(got.closed == server.is_closed());
    got
}

const CLIENT_SCRIPT: &[u8] = b"EHLO client.example\r\n\
    MAIL FROM:<alice@example.org>\r\n\
    RCPT TO:<bob@example.com>\r\n\
    RCPT TO:<nobody@example.com>\r\n\
    DATA\r\n\
    Subject: hi\r\n\
    \r\n\
    ..a line that starts with a dot\r\n\
    .\r\n\
    QUIT\r\n";

fn check_server_run(got: &Received) {
    assert_eq!(got.hello.as_deref(), Some("client.example"));
    assert_eq!(got.from.as_deref(), Some("<alice@example.org>"));
    assert_eq!(got.to, ["<bob@example.com>"]);
    assert_eq!(
        got.message,
        b"Subject: hi\r\n\r\n.a line that starts with a dot\r\n"
    );
    assert_eq!(got.message_size, Some(got.message.len() as u64));
    assert!(got.closed);

    let wire = String::from_utf8(got.wire.clone()).unwrap();
    let lines: Vec<&str> = wire.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "220 mx.example.com ESMTP");
    assert_eq!(lines[1], "250-mx.example.com");
    // The EHLO reply lists the defaults ServerConfig::new documents.
    let ehlo_end = lines.iter().position(|l| l.starts_with("250 ")).unwrap();
    let keywords: Vec<&str> = lines[2..=ehlo_end].iter().map(|l| &l[4..]).collect();
    for keyword in ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"] {
        assert!(
            keywords.contains(&keyword),
            "{keyword} missing from {keywords:?}"
        );
    }
    assert_eq!(
        &lines[ehlo_end + 1..],
        [
            "250 2.1.0 OK",
            "250 2.1.5 OK",
            "550 5.1.1 No such user",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 OK: message accepted",
            "221 2.0.0 Bye",
        ]
    );
}

fn config() -> ServerConfig {
    ServerConfig::new("mx.example.com")
}

#[test]
fn server_accepts_one_message_in_one_read() {
    check_server_run(&run_server(config(), &[CLIENT_SCRIPT]));
}

#[test]
fn server_accepts_one_message_one_byte_at_a_time() {
    let reads: Vec<&[u8]> = CLIENT_SCRIPT.chunks(1).collect();
    check_server_run(&run_server(config(), &reads));
}

/// `SIZE=` on MAIL needs `max_message_size`: the default configuration
/// does not advertise SIZE, so the parameter gets `555 5.5.4`.
#[test]
fn server_takes_mail_size_only_with_a_limit() {
    let mail = b"EHLO client.example\r\nMAIL FROM:<alice@example.org> SIZE=40\r\n";
    let mut server = ServerSession::new(config()).unwrap();
    server.greet().unwrap();
    let mut input = &mail[..];
    let mut wire = Vec::new();
    let mut refused = None;
    while let Outcome::Event(event) = {
        let step = server.handle_input(input).unwrap();
        input = &input[step.consumed..];
        step.outcome
    } {
        match event {
            ServerEvent::Hello { .. } => server.accept().unwrap(),
            ServerEvent::Rejected { code, .. } => refused = Some(code),
            other => panic!("unexpected {other:?}"),
        }
    }
    server.poll_transmit(&mut wire);
    assert_eq!(refused, Some(ReplyCode::PARAMETERS_NOT_RECOGNIZED));
    assert!(wire.ends_with(b"\r\n555 5.5.4 SIZE parameter not supported\r\n"));
    assert!(!String::from_utf8_lossy(&wire).contains("SIZE\r\n"));

    let mut limited = config();
    limited.max_message_size = Some(1_000_000);
    let script = String::from_utf8(CLIENT_SCRIPT.to_vec()).unwrap().replace(
        "MAIL FROM:<alice@example.org>",
        "MAIL FROM:<alice@example.org> SIZE=40",
    );
    let got = run_server(limited, &[script.as_bytes()]);
    check_server_run(&got);
    assert!(String::from_utf8_lossy(&got.wire).contains("\r\n250-SIZE 1000000\r\n"));
}

/// Runs a client session against `server`, the server's bytes as they
/// arrive, sending `body` to the envelope; returns what the client wrote
/// and the events it reported.
fn run_client(server: &[&[u8]], envelope: &Envelope<'_>, body: &[u8]) -> (Vec<u8>, Vec<String>) {
    let config = ClientConfig::new(Domain::new("client.example").unwrap()).with_tls(TlsPolicy::Off);
    let mut client = Client::new(config);
    let mut reads = server.iter();
    let mut inbuf: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let mut seen = Vec::new();
    let mut closed = false;
    for _ in 0..10_000 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            ClientOutcome::Event(event) => match &event {
                ClientEvent::Ready => client.send_mail(envelope).unwrap(),
                ClientEvent::SendBody => {
                    client.send_body(body).unwrap();
                    client.end_body().unwrap();
                }
                ClientEvent::Sender { verdict, .. } => {
                    seen.push(format!("sender {verdict:?}"));
                }
                ClientEvent::Recipient { index, verdict, .. } => {
                    seen.push(format!("recipient {index} {verdict:?}"));
                }
                ClientEvent::Message { verdict, reply, .. } => {
                    assert_eq!(*verdict, Verdict::Success);
                    seen.push(format!(
                        "message {} {}",
                        reply.code(),
                        String::from_utf8_lossy(reply.text())
                    ));
                }
                ClientEvent::TransactionEnd(summary) => {
                    let delivered: Vec<usize> = summary.delivered().collect();
                    seen.push(format!("end delivered={delivered:?}"));
                    client.quit().unwrap();
                }
                _ => {}
            },
            ClientOutcome::NeedInput => match reads.next() {
                Some(bytes) => inbuf.extend_from_slice(bytes),
                None => break,
            },
            ClientOutcome::Closed => closed = true,
            _ => {}
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
        if closed {
            break;
        }
    }
    assert!(closed && client.is_closed());
    (wire, seen)
}

#[test]
fn client_sends_one_message_to_a_scripted_server() {
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("bob@example.com").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("nobody@example.com").unwrap(),
    ));
    let body = b"Subject: hi\r\n\r\n.a line that starts with a dot\r\n";
    let script: &[&[u8]] = &[
        b"220 mx.example.com ESMTP\r\n",
        b"250-mx.example.com\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
        b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 No such user\r\n354 go ahead\r\n",
        b"250 2.0.0 OK: queued as Q1\r\n",
        b"221 2.0.0 Bye\r\n",
    ];
    let (wire, seen) = run_client(script, &envelope, body);
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "EHLO client.example\r\n\
         MAIL FROM:<alice@example.org>\r\n\
         RCPT TO:<bob@example.com>\r\n\
         RCPT TO:<nobody@example.com>\r\n\
         DATA\r\n\
         Subject: hi\r\n\r\n..a line that starts with a dot\r\n.\r\n\
         QUIT\r\n"
    );
    assert_eq!(
        seen,
        [
            "sender Success",
            "recipient 0 Success",
            "recipient 1 Permanent",
            "message 250 OK: queued as Q1",
            "end delivered=[0]",
        ]
    );

    // The same script one byte at a time gives the same run.
    let bytes: Vec<u8> = script.concat();
    let reads: Vec<&[u8]> = bytes.chunks(1).collect();
    let (wire_bytewise, seen_bytewise) = run_client(&reads, &envelope, body);
    assert_eq!(seen_bytewise, seen);
    assert!(wire_bytewise.ends_with(b"\r\n.\r\nQUIT\r\n"));
}

/// The server machine and the client machine talk to each other through
/// two byte buffers, no socket; the client sends `pieces` as the body, one
/// `send_body` each. Returns the message the server took.
fn back_to_back(pieces: &[&[u8]]) -> Vec<u8> {
    let config = ClientConfig::new(Domain::new("client.example").unwrap()).with_tls(TlsPolicy::Off);
    back_to_back_with(ServerConfig::new("mx.example.com"), config, pieces)
}

/// [`back_to_back`] with the given configurations.
fn back_to_back_with(server: ServerConfig, client: ClientConfig, pieces: &[&[u8]]) -> Vec<u8> {
    let mut server = ServerSession::new(server).unwrap();
    server.greet().unwrap();
    let mut client = Client::new(client);
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("bob@example.com").unwrap(),
    ));

    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    server.poll_transmit(&mut to_client);
    let mut stored = Vec::new();
    let mut delivered = false;
    let mut rest = pieces.iter();
    for _ in 0..1_000 {
        // The server reads everything the client wrote.
        loop {
            let step = server.handle_input(&to_server).unwrap();
            let consumed = step.consumed;
            let mut stop = false;
            match step.outcome {
                Outcome::Event(ServerEvent::MessageChunk(bytes)) => stored.extend_from_slice(bytes),
                Outcome::Event(
                    ServerEvent::Hello { .. }
                    | ServerEvent::Mail { .. }
                    | ServerEvent::Rcpt { .. }
                    | ServerEvent::MessageEnd { .. },
                ) => server.accept().unwrap(),
                Outcome::Event(ServerEvent::Rejected { code, reason }) => {
                    panic!("refused: {code} {reason:?}")
                }
                Outcome::Event(_) | Outcome::Transmit => {}
                _ => stop = true,
            }
            to_server.drain(..consumed);
            server.poll_transmit(&mut to_client);
            if stop {
                break;
            }
        }
        // The client reads everything the server wrote.
        loop {
            let step = client.handle_input(&to_client).unwrap();
            let consumed = step.consumed;
            let mut stop = false;
            match step.outcome {
                ClientOutcome::Event(ClientEvent::Ready) => client.send_mail(&envelope).unwrap(),
                // With BDAT to a server without PIPELINING each chunk is
                // answered before the next: `SendBody` comes again, and
                // `wants_body` says when to stop until then.
                ClientOutcome::Event(ClientEvent::SendBody) => loop {
                    let Some(piece) = rest.next() else {
                        client.end_body().unwrap();
                        break;
                    };
                    client.send_body(piece).unwrap();
                    if !client.wants_body() {
                        break;
                    }
                },
                ClientOutcome::Event(ClientEvent::TransactionEnd(summary)) => {
                    delivered = summary.delivered().eq([0]);
                    client.quit().unwrap();
                }
                ClientOutcome::Event(_) => {}
                _ => stop = true,
            }
            to_client.drain(..consumed);
            client.poll_transmit(&mut to_server);
            if stop {
                break;
            }
        }
        if client.is_closed() && server.is_closed() {
            break;
        }
    }
    assert!(delivered);
    assert!(client.is_closed() && server.is_closed());
    stored
}

#[test]
fn client_and_server_machines_back_to_back() {
    let body = b"Subject: back to back\r\n\r\nHello\r\n";
    assert_eq!(back_to_back(&[body]), body);
}

/// Dots at the start of lines survive the round trip, also when a line
/// starts in a later `send_body` call than the CRLF before it, and a lone
/// `.` line does not end the message early.
#[test]
fn dots_survive_the_round_trip_across_pieces() {
    let pieces: &[&[u8]] = &[
        b"Subject: dots\r\n\r\n",
        b".\r\n",
        b"..two\r",
        b"\n.",
        b"\r\n",
        b"last line\r\n",
    ];
    let expected: Vec<u8> = pieces.concat();
    assert_eq!(back_to_back(pieces), expected);
}

/// Runs `delivery` over a client of `config` against the scripted
/// `server` (each entry one read, taken when the client needs input), with
/// the documented body loop: while the client wants body bytes, the next
/// piece of `message` (at most `piece` octets) or the end. Returns the
/// client and what it wrote. Bounded: 1,000 steps.
fn drive_delivery(
    config: ClientConfig,
    delivery: &mut Delivery,
    message: &[u8],
    piece: usize,
    server: &mut std::collections::VecDeque<&[u8]>,
) -> (Client, Vec<u8>) {
    let mut client = Client::new(config);
    let (mut inbuf, mut wire) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            ClientOutcome::Event(event) => {
                delivery.on_event(&mut client, &event).unwrap();
                if event == ClientEvent::SendBody {
                    while client.wants_body() {
                        match delivery.next_piece(message, piece) {
                            Some(piece) => client.send_body(piece).unwrap(),
                            None => client.end_body().unwrap(),
                        }
                    }
                }
            }
            ClientOutcome::NeedInput => match server.pop_front() {
                Some(bytes) => inbuf.extend_from_slice(bytes),
                None => break,
            },
            _ => break,
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
    }
    (client, wire)
}

/// `Delivery` makes the decisions: the server's `LIMITS RCPTMAX=1` splits
/// two recipients into two transactions over one session, and the report
/// has both delivered, in the envelope's order.
#[test]
fn delivery_splits_by_rcptmax_against_a_scripted_server() {
    let to = |s| ForwardPath::Mailbox(Mailbox::parse(s).unwrap());
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(to("bob@example.com"))
    .recipient(to("carol@example.com"));
    let mut delivery = Delivery::new(envelope);
    let message = b"Subject: split\r\n\r\nhello\r\n";
    let mut server: std::collections::VecDeque<&[u8]> = [
        &b"220 mx.example.com ESMTP\r\n"[..],
        b"250-mx.example.com\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=1\r\n",
        b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go ahead\r\n",
        b"250 2.0.0 OK: queued as Q1\r\n",
        b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go ahead\r\n",
        b"250 2.0.0 OK: queued as Q2\r\n",
        b"221 2.0.0 Bye\r\n",
    ]
    .into();
    let config = ClientConfig::new(Domain::new("client.example").unwrap()).with_tls(TlsPolicy::Off);
    let (client, wire) = drive_delivery(config, &mut delivery, message, 64 * 1024, &mut server);
    assert!(client.is_closed());
    assert!(server.is_empty());
    let report = delivery.finish(None);
    assert!(report.all_delivered());
    let queued: Vec<String> = report
        .delivered()
        .map(|r| {
            let reply = r.outcome.reply().unwrap();
            format!(
                "{} {}",
                r.recipient.path,
                String::from_utf8_lossy(reply.text())
            )
        })
        .collect();
    assert_eq!(
        queued,
        [
            "<bob@example.com> OK: queued as Q1",
            "<carol@example.com> OK: queued as Q2"
        ]
    );
    let wire = String::from_utf8(wire).unwrap();
    assert_eq!(wire.matches("MAIL FROM:<alice@example.org>").count(), 2);
    assert!(wire.contains("RCPT TO:<bob@example.com>\r\nDATA\r\n"));
    assert!(wire.contains("RCPT TO:<carol@example.com>\r\nDATA\r\n"));
    assert!(wire.ends_with(".\r\nQUIT\r\n"));
}

/// The same message with and without PIPELINING, over DATA and over BDAT,
/// in SMTP and LMTP: the server takes the same bytes each time.
#[test]
fn every_transfer_mode_delivers_the_same_bytes() {
    let pieces: &[&[u8]] = &[b"Subject: modes\r\n\r\n", b".dot\r\n", b"end\r\n"];
    let expected: Vec<u8> = pieces.concat();
    for lmtp in [false, true] {
        for pipelining in [true, false] {
            for chunking in [ChunkingPolicy::Never, ChunkingPolicy::Prefer] {
                let mut server = ServerConfig::new("mx.example.com");
                server.lmtp = lmtp;
                server.pipelining = pipelining;
                let protocol = if lmtp { Protocol::Lmtp } else { Protocol::Smtp };
                let client = ClientConfig::new(Domain::new("client.example").unwrap())
                    .with_tls(TlsPolicy::Off)
                    .with_protocol(protocol)
                    .with_chunking(chunking);
                let stored = back_to_back_with(server, client, pieces);
                assert_eq!(
                    stored, expected,
                    "lmtp={lmtp} pipelining={pipelining} chunking={chunking:?}"
                );
            }
        }
    }
}

/// The body loop of the `Delivery` documentation, with a BDAT body to a
/// server without PIPELINING: each chunk waits for its reply, so the loop
/// sends while the client wants body bytes and goes on at the next
/// `SendBody`.
#[test]
fn delivery_body_loop_with_bdat_and_no_pipelining() {
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("bob@example.com").unwrap(),
    ));
    let mut delivery = Delivery::new(envelope);
    let message = b"Subject: chunks\r\n\r\n0123456789\r\n";
    let mut server: std::collections::VecDeque<&[u8]> = [
        &b"220 mx.example.com ESMTP\r\n"[..],
        b"250-mx.example.com\r\n250 CHUNKING\r\n",
        b"250 2.1.0 OK\r\n",
        b"250 2.1.5 OK\r\n",
        b"250 2.0.0 chunk 1\r\n",
        b"250 2.0.0 chunk 2\r\n",
        b"250 2.0.0 OK: queued as Q1\r\n",
        b"221 2.0.0 Bye\r\n",
    ]
    .into();
    let config = ClientConfig::new(Domain::new("client.example").unwrap())
        .with_tls(TlsPolicy::Off)
        .with_chunking(ChunkingPolicy::Prefer);
    let (client, wire) = drive_delivery(config, &mut delivery, message, 20, &mut server);
    assert!(client.is_closed() && server.is_empty());
    assert!(delivery.finish(None).all_delivered());
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n\
         BDAT 20\r\nSubject: chunks\r\n\r\n0\
         BDAT 11\r\n123456789\r\n\
         BDAT 0 LAST\r\nQUIT\r\n"
    );
}
