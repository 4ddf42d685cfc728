//! One reply that decides many recipients of a delivery (the reply after
//! the message in SMTP, a refusal of MAIL) is held once, not once per
//! recipient: a server cannot make the client hold its longest reply
//! times the size of the envelope. Measured with the process's peak
//! resident size, so this file holds one test.

use smtp_proto::client::{
    Client, ClientConfig, ClientEvent, Delivery, DeliveryReport, Envelope, Outcome, TlsPolicy,
};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::DecoderConfig;

#[allow(dead_code)]
mod memory;

use memory::peak_resident;

const RECIPIENTS: usize = 4000;

/// A reply of about `DEFAULT_MAX_REPLY_LEN` octets: 60 lines of 500.
fn long_reply(code: u16) -> Vec<u8> {
    let mut r = Vec::new();
    let text = "x".repeat(490);
    for i in 0..60 {
        let sep = if i == 59 { ' ' } else { '-' };
        r.extend_from_slice(format!("{code}{sep}{i:04} {text}\r\n").as_bytes());
    }
    assert!(r.len() < DecoderConfig::DEFAULT_MAX_REPLY_LEN);
    r
}

/// Runs one delivery of `envelope` against the server's `replies`, fed
/// one segment whenever the client asks for input.
fn deliver(envelope: Envelope<'static>, replies: Vec<Vec<u8>>) -> DeliveryReport {
    let config =
        ClientConfig::new(Domain::new("client.example.net").unwrap()).with_tls(TlsPolicy::Off);
    let mut client = Client::new(config);
    let mut delivery = Delivery::new(envelope);
    let message = b"Subject: hi\r\n\r\nhello\r\n";
    let mut server = replies.into_iter();
    let (mut inbuf, mut wire) = (Vec::new(), Vec::new());
    // Bounded: each round takes a reply, gives an event or feeds a segment.
    for _ in 0..4 * RECIPIENTS + 100 {
        let step = client.handle_input(&inbuf).unwrap();
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(event) => {
                delivery.on_event(&mut client, &event).unwrap();
                if event == ClientEvent::SendBody {
                    while client.wants_body() {
                        match delivery.next_piece(message, 64 * 1024) {
                            Some(piece) => client.send_body(piece).unwrap(),
                            None => client.end_body().unwrap(),
                        }
                    }
                }
            }
            Outcome::NeedInput => match server.next() {
                Some(bytes) => inbuf.extend_from_slice(&bytes),
                None => break,
            },
            _ => break,
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut wire);
        wire.clear();
    }
    assert!(client.is_closed());
    delivery.finish(None)
}

fn envelope() -> Envelope<'static> {
    let mut envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.net").unwrap().into_owned(),
    ));
    for i in 0..RECIPIENTS {
        let to = format!("r{i}@example.org");
        envelope = envelope.recipient(ForwardPath::Mailbox(
            Mailbox::parse(&to).unwrap().into_owned(),
        ));
    }
    envelope
}

fn greeting() -> Vec<Vec<u8>> {
    vec![
        b"220 mx.example.org ESMTP\r\n".to_vec(),
        b"250-mx.example.org\r\n250 PIPELINING\r\n".to_vec(),
    ]
}

#[test]
fn a_reply_that_decides_every_recipient_is_held_once() {
    // Built before measuring: the envelopes and what the server sends.
    let accepted = {
        let mut replies = greeting();
        let mut envelope_replies = b"250 2.1.0 Ok\r\n".to_vec();
        envelope_replies.extend(b"250 2.1.5 Ok\r\n".repeat(RECIPIENTS));
        envelope_replies.extend_from_slice(b"354 go ahead\r\n");
        replies.push(envelope_replies);
        replies.push(long_reply(250));
        replies.push(b"221 2.0.0 Bye\r\n".to_vec());
        (envelope(), replies)
    };
    let refused = {
        let mut replies = greeting();
        let mut mail = long_reply(550);
        // The pipelined RCPTs and DATA, answered after the refused MAIL.
        mail.extend(b"503 5.5.1 no sender\r\n".repeat(RECIPIENTS + 1));
        replies.push(mail);
        replies.push(b"221 2.0.0 Bye\r\n".to_vec());
        (envelope(), replies)
    };
    let reply_len = long_reply(250).len();
    // Held once per recipient, these replies would take this much.
    let copies = RECIPIENTS * reply_len;
    for (name, (envelope, replies)) in [("message reply", accepted), ("MAIL refusal", refused)] {
        let before = peak_resident();
        let report = deliver(envelope, replies);
        let growth = peak_resident().saturating_sub(before);
        assert_eq!(report.recipients.len(), RECIPIENTS);
        let held: usize = report
            .recipients
            .iter()
            .filter_map(|r| r.outcome.reply())
            .map(|reply| reply.to_bytes().len())
            .sum();
        assert_eq!(held, copies, "{name}: every recipient has the reply");
        assert!(
            growth < copies / 8,
            "{name}: peak resident size grew by {growth} octets (copies: {copies})"
        );
    }
}
