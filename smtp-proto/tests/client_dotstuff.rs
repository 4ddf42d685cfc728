//! The DATA body as the client writes it, read back by the server-side
//! DATA decoder: for any bytes, cut into any pieces, the decoder returns
//! the body with its line ends made CRLF, and the message ends exactly
//! where the client ended it, never earlier.

mod rng;

use proptest::prelude::*;
use smtp_proto::client::{Client, ClientConfig, ClientEvent, Envelope, Outcome, TlsPolicy};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::data::{DataDecoder, DataOutput};

/// The client's bytes after the 354 for `body` sent in `pieces`.
fn client_data_stream(body: &[u8], cuts: &[usize], end_with_last: bool) -> Vec<u8> {
    let cfg = ClientConfig::new(Domain::new("c.example").unwrap()).with_tls(TlsPolicy::Off);
    let mut client = Client::new(cfg);
    let env = Envelope::new(ReversePath::Null)
        .recipient(ForwardPath::Mailbox(Mailbox::parse("b@y.org").unwrap()));
    let server: &[u8] = b"220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n";
    let mut buf = server;
    let mut sink = Vec::new();
    for _ in 0..100 {
        client.poll_transmit(&mut sink);
        let step = client.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        match step.outcome {
            Outcome::Event(ClientEvent::Ready) => client.send_mail(&env).unwrap(),
            Outcome::Event(ClientEvent::SendBody) => break,
            Outcome::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    client.poll_transmit(&mut sink);
    assert!(sink.ends_with(b"DATA\r\n"));
    assert!(client.wants_body());
    let mut out = Vec::new();
    let mut last = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        client.send_body(&body[last..c]).unwrap();
        last = c;
    }
    if end_with_last {
        client.send_last(&body[last..]).unwrap();
    } else {
        client.send_body(&body[last..]).unwrap();
        client.end_body().unwrap();
    }
    client.poll_transmit(&mut out);
    out
}

/// What the body should read as: every CRLF, bare CR and bare LF becomes
/// CRLF, and a non-empty body ends with CRLF.
fn normalized(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_all(stream: &[u8]) -> (Vec<u8>, usize) {
    let mut dec = DataDecoder::new(Default::default());
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let step = dec.decode(&stream[pos..]);
        pos += step.consumed;
        match step.output {
            DataOutput::Chunk(c) => body.extend_from_slice(c),
            DataOutput::NeedMore => panic!("stream has no end: {stream:?}"),
            DataOutput::End(summary) => {
                assert!(summary.verdict().is_ok(), "{summary:?}");
                return (body, pos);
            }
        }
    }
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Bias towards the bytes that matter: '.', CR, LF.
    let byte = prop_oneof![
        4 => Just(b'.'),
        4 => Just(b'\r'),
        4 => Just(b'\n'),
        1 => any::<u8>(),
        2 => Just(b'a'),
    ];
    proptest::collection::vec(byte, 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_body_reads_back_normalized_and_ends_only_at_the_end(
        body in body_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        last in any::<bool>(),
    ) {
        let stream = client_data_stream(&body, &cuts, last);
        let (decoded, used) = decode_all(&stream);
        prop_assert_eq!(used, stream.len(), "the message ended early");
        prop_assert!(stream.ends_with(b"\r\n.\r\n") || stream == b".\r\n");
        prop_assert_eq!(decoded, normalized(&body));
    }

    #[test]
    fn any_arbitrary_bytes_body(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let stream = client_data_stream(&body, &[], false);
        let (decoded, used) = decode_all(&stream);
        prop_assert_eq!(used, stream.len());
        prop_assert_eq!(decoded, normalized(&body));
    }
}

#[test]
fn smuggling_sequences_in_the_body_cannot_end_the_message() {
    for evil in [
        &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
        b"a\r\n.\nRCPT TO:<x@y>\r\n",
        b"a\n.\r\nDATA\r\n",
        b"a\r.\r\nQUIT\r\n",
        b"a\r\n.\r",
        b".\r\n",
        b"\r\n.\r\n",
    ] {
        let stream = client_data_stream(evil, &[1, 2, 3], false);
        let (decoded, used) = decode_all(&stream);
        assert_eq!(used, stream.len(), "{evil:?}");
        assert_eq!(decoded, normalized(evil));
    }
}

#[test]
fn body_without_final_crlf_gets_one_and_empty_body_is_a_lone_dot() {
    assert_eq!(client_data_stream(b"abc", &[], false), b"abc\r\n.\r\n");
    assert_eq!(client_data_stream(b"abc\r\n", &[], true), b"abc\r\n.\r\n");
    assert_eq!(client_data_stream(b"", &[], false), b".\r\n");
    assert_eq!(client_data_stream(b".", &[], true), b"..\r\n.\r\n");
}

/// A byte-by-byte reference of the DATA encoding: a dot at a line start
/// doubled, bare CR and bare LF made CRLF, the last line ended, `.` CRLF.
fn reference_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at_start = true;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if at_start && b == b'.' {
            out.push(b'.');
        }
        at_start = false;
        match b {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                at_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_start = true;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    if !at_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Bodies longer than the encoder's 4096-octet fast block, mostly clean
/// CRLF lines with rare dots, bare CR and bare LF, cut into random pieces:
/// the encoder writes what a byte-by-byte reference writes.
#[test]
fn dot_stuffer_matches_a_reference_on_long_bodies() {
    use smtp_proto::data::DotStuffer;
    // Deterministic pseudo-random bodies of mostly clean CRLF lines with
    // rare dots, bare CR and bare LF, cut into random pieces.
    let mut rng = rng::Rng::new(1);
    let mut rnd = move || rng.next();
    for _ in 0..400 {
        let len = (rnd() % 20_000) as usize;
        let mut body = Vec::with_capacity(len);
        while body.len() < len {
            let r = rnd() % 1000;
            match r {
                0..=5 => body.push(b'.'),
                6..=8 => body.push(b'\r'),
                9..=11 => body.push(b'\n'),
                12..=80 => body.extend_from_slice(b"\r\n"),
                81..=85 => body.extend_from_slice(b"\r\n."),
                _ => body.push(b'a' + (r % 26) as u8),
            }
        }
        let expected = reference_stuff(&body);
        let mut cuts: Vec<usize> = (0..(rnd() % 6))
            .map(|_| (rnd() as usize) % (body.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut enc = DotStuffer::new();
        let mut out = Vec::new();
        let mut last = 0;
        for c in cuts {
            enc.encode(&body[last..c], &mut out);
            last = c;
        }
        enc.encode(&body[last..], &mut out);
        enc.finish(&mut out);
        assert!(
            out == expected,
            "body of {} octets encodes differently",
            body.len()
        );
    }
}
