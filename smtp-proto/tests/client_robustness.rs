//! Whatever the server sends, the client neither panics nor loops: every
//! call returns, input is consumed or waited for, and a protocol error
//! leaves the session closed.

mod client_support;

use client_support::{config, Actor, Job};
use proptest::prelude::*;
use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientEvent, Outcome, Protocol, TlsPolicy,
};
use smtp_proto::reply::{Decoded, DecoderConfig, ReplyDecoder};

const REPLIES: &[&str] = &[
    "220 mx ready\r\n",
    "220-mx\r\n220 ready\r\n",
    "250 ok\r\n",
    "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250 8BITMIME\r\n",
    "250-mx\r\n250 SIZE 10\r\n",
    "251 forwarded\r\n",
    "334 VXNlcm5hbWU6\r\n",
    "334 \r\n",
    "334 !!notbase64\r\n",
    "235 ok\r\n",
    "354 go\r\n",
    "421 closing\r\n",
    "450 later\r\n",
    "500 what\r\n",
    "502 no\r\n",
    "503 order\r\n",
    "535 bad\r\n",
    "550 no\r\n",
    "554 no\r\n",
    "221 bye\r\n",
    "250\r\n",
    "099 bad code\r\n",
    "250-a\r\n251 mixed\r\n",
    "2",
    "\r\n",
];

/// The longest line of an AUTH exchange's replies (RFC 4954 §4).
const AUTH_LINE: usize = 12288;

/// The replies of a full, well-behaved session for the test actor's two
/// jobs (EHLO, AUTH, two transactions, QUIT).
const SESSION: &[&str] = &[
    "220 mx ready\r\n",
    "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
    "235 ok\r\n",
    "250 ok\r\n",
    "250 ok\r\n",
    "550 no\r\n",
    "354 go\r\n",
    "250 queued\r\n",
    "250 ok\r\n",
    "250 ok\r\n",
    "354 go\r\n",
    "250 queued\r\n",
    "221 bye\r\n",
];

/// Either random replies, or the well-behaved session with some replies
/// swapped for others, dropped or duplicated, so that the deep states are
/// reached too.
fn server_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => proptest::sample::select(REPLIES).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ];
    let random = proptest::collection::vec(piece.clone(), 0..40).prop_map(|v| v.concat());
    let edit = prop_oneof![
        12 => Just(None),
        1 => piece.prop_map(Some),
        1 => Just(Some(Vec::new())),
    ];
    let perturbed = proptest::collection::vec(edit, SESSION.len()).prop_map(|edits| {
        let mut out = Vec::new();
        for (base, edit) in SESSION.iter().zip(edits) {
            match edit {
                None => out.extend_from_slice(base.as_bytes()),
                Some(other) => out.extend_from_slice(&other),
            }
        }
        out
    });
    prop_oneof![1 => random, 3 => perturbed]
}

fn drive(config: smtp_proto::client::ClientConfig, stream: &[u8], chunk: usize) {
    let mut client = Client::new(config);
    let mut actor = Actor::new(vec![
        Job::new("a@x.org", &["b@y.org", "c@y.org"], &[b"one\r\n", b".two"]),
        Job::new("", &["d@y.org"], &[b"three"]),
    ]);
    actor.auth = Some((AuthCredentials::password("u", "p"), None));
    actor.lenient = true;
    let mut pieces = stream.chunks(chunk.max(1));
    let mut buf: Vec<u8> = Vec::new();
    let mut sink = Vec::new();
    // Each round either consumes input, asks for more, or gives an event;
    // events without input are bounded, so the loop ends well before this.
    let limit = 50 + 20 * stream.len();
    for round in 0.. {
        assert!(round < limit, "the client does not make progress");
        let step = match client.handle_input(&buf) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.is_remote());
                assert!(client.is_closed());
                return;
            }
        };
        assert!(step.consumed <= buf.len());
        let consumed = step.consumed;
        match step.outcome {
            Outcome::Event(ev) => {
                // Errors from calls the actor makes in odd states must be
                // usage errors, never panics; the actor unwraps only calls
                // that fit the event.
                let tls = matches!(ev, ClientEvent::StartTls);
                if !matches!(ev, ClientEvent::StartTls) {
                    actor.act(&mut client, &ev);
                }
                if tls {
                    client.tls_established().unwrap();
                }
            }
            Outcome::NeedInput => {
                // Memory: the client asks for more only while what it
                // holds is no whole reply yet (so it holds at most one).
                let rest = &buf[consumed..];
                let mut decoder = ReplyDecoder::with_config(
                    DecoderConfig::default()
                        .with_max_line_len(AUTH_LINE)
                        .with_max_reply_len(DecoderConfig::DEFAULT_MAX_REPLY_LEN.max(AUTH_LINE)),
                );
                let held = decoder.decode(rest);
                assert!(
                    matches!(held, Ok(Decoded::Incomplete)),
                    "asks for input while holding {:?}",
                    String::from_utf8_lossy(rest)
                );
                match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return,
                }
            }
            Outcome::Paused => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return,
            },
            Outcome::Closed => return,
            _ => unreachable!(),
        }
        buf.drain(..consumed);
        client.poll_transmit(&mut sink);
        let _ = client.timeout();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn any_server_bytes_are_handled(stream in server_stream(), chunk in 1usize..64, variant in 0u8..6) {
        let base = config().with_auth_without_tls(true);
        let cfg = match variant {
            0 => base,
            1 => base.with_tls(TlsPolicy::Required),
            2 => base.with_tls(TlsPolicy::Off).with_pipelining(false),
            3 => base.with_protocol(Protocol::Lmtp),
            4 => base.with_chunking(ChunkingPolicy::Prefer),
            _ => base.with_chunking(ChunkingPolicy::Prefer).with_pipelining(false),
        };
        drive(cfg, &stream, chunk);
    }
}

#[test]
fn a_gigabyte_without_line_end_costs_bounded_memory() {
    let mut client = Client::new(config());
    let block = vec![b'2'; 64 * 1024];
    let mut buf: Vec<u8> = b"220".to_vec();
    let mut total = 0usize;
    while total < (1 << 30) {
        match client.handle_input(&buf) {
            Ok(step) => {
                assert_eq!(step.outcome, Outcome::NeedInput);
                buf.drain(..step.consumed);
                buf.extend_from_slice(&block);
                total += block.len();
            }
            Err(e) => {
                // The reply decoder refuses the over-long line long before.
                assert!(e.is_remote());
                assert!(client.is_closed());
                assert!(buf.len() < 1024 * 1024);
                return;
            }
        }
    }
    panic!("an endless line was accepted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random server streams give the same events, bytes and errors fed
    /// whole, one byte at a time, or cut at any one offset.
    #[test]
    fn random_streams_are_split_invariant(stream in server_stream(), cut in any::<usize>(), variant in 0u8..3) {
        use client_support::run_with;
        let base = config().with_tls(TlsPolicy::Off).with_auth_without_tls(true);
        let cfg = match variant {
            0 => base,
            1 => base.with_pipelining(false),
            _ => base.with_chunking(ChunkingPolicy::Prefer),
        };
        let mut actor = Actor::new(vec![
            Job::new("a@x.org", &["b@y.org", "c@y.org"], &[b"one\r\n", b".two"]),
            Job::new("", &["d@y.org"], &[b"three"]),
        ]);
        actor.auth = Some((AuthCredentials::password("u", "p"), None));
        actor.lenient = true;
        // How much input is still unread when the run stops depends on the
        // read sizes; everything else must not, but for one thing: when a
        // 421 ends the session, what the client had
        // queued and not yet written is dropped (RFC 5321 §3.8), and how
        // much that is depends on how much of the input came in one read.
        // The more input one read brings, the less goes out: the wire of
        // the whole stream is a prefix of the wire of any cut, and that of
        // one cut a prefix of the wire byte at a time.
        let run = |cut: &dyn Fn(usize) -> Vec<usize>| {
            let mut r = run_with(cfg.clone(), &actor, &[&stream], cut);
            r.leftover = 0;
            r
        };
        let cut_short = |r: &client_support::Run| {
            r.events.last().is_some_and(|e| e.starts_with("ServiceClosing"))
        };
        let same = |a: &client_support::Run, b: &client_support::Run| {
            if cut_short(a) {
                prop_assert!(b.wire.starts_with(&a.wire), "{:?}\n{:?}", a, b);
                let (mut a, mut b) = (a.clone(), b.clone());
                a.wire.clear();
                b.wire.clear();
                prop_assert_eq!(a, b);
            } else {
                prop_assert_eq!(a, b);
            }
            Ok(())
        };
        let whole = run(&|_| Vec::new());
        let bytewise = run(&|n| (1..n).collect());
        same(&whole, &bytewise)?;
        let k = if stream.is_empty() { 0 } else { cut % stream.len() };
        let one_cut = run(&move |_| vec![k]);
        same(&whole, &one_cut)?;
        same(&one_cut, &bytewise)?;
    }
}
