//! Random command sequences and random bytes: the server never panics,
//! never loops, keeps the caller's unconsumed bytes and its own output
//! within the limits, and gives the same result however the input is split.

mod support;

use proptest::prelude::*;
use smtp_proto::data::BareEndingPolicy;
use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{Error, ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;
use support::{run_pieces, Setup};

fn token() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"EHLO client.example\r\n",
        b"HELO client.example\r\n",
        b"LHLO client.example\r\n",
        b"MAIL FROM:<a@example.org>\r\n",
        b"MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n",
        b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n",
        b"MAIL FROM:<reject@example.org>\r\n",
        b"MAIL FROM:<j\xc3\xb6@example.org> SMTPUTF8\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"RCPT TO:<reject@example.com>\r\n",
        b"RCPT TO:<lmtpfail@example.com> NOTIFY=NEVER\r\n",
        b"DATA\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
        b"VRFY someone\r\n",
        b"EXPN list\r\n",
        b"HELP\r\n",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH XOAUTH2\r\n",
        b"YWxpY2U=\r\n",
        b"*\r\n",
        b"text line\r\n",
        b".\r\n",
        b"..dot\r\n",
        b"\n.\n",
        b"\r\n.\r",
        b"\r.\r\n",
        b"BDAT 0 LAST\r\n",
        // Answered at once by the drivers that offer it (a TLS upgrade
        // that forgets the session); 502 where it is not offered.
        b"STARTTLS\r\n",
        b"garbage\x00\xff\r\n",
        b"MAIL FROM:<>>>>\r\n",
    ];
    prop_oneof![
        8 => proptest::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => (0u64..40, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(
            |(n, last, fill)| {
                let mut v = format!("BDAT {n}{}\r\n", if last { " LAST" } else { "" }).into_bytes();
                v.extend(fill);
                v
            }
        ),
        1 => proptest::collection::vec(any::<u8>(), 0..80),
        1 => (1usize..3000).prop_map(|n| {
            let mut v = vec![b'x'; n];
            v.extend_from_slice(b"\r\n");
            v
        }),
    ]
}

fn config() -> impl Strategy<Value = ServerConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        1usize..5,
        0usize..6,
        proptest::option::of(1u64..200),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lmtp, binary, rcpts, errors, size, normalize, auth)| {
            let mut c = ServerConfig::new("mx.example.com");
            c.lmtp = lmtp;
            c.binarymime = binary;
            c.smtputf8 = binary;
            c.dsn = !binary;
            c.max_recipients = rcpts;
            c.max_errors = errors;
            c.max_message_size = size;
            c.max_data_line_length = 60;
            c.max_auth_line_length = 2048;
            c.bare_endings = if normalize {
                BareEndingPolicy::Normalize
            } else {
                BareEndingPolicy::Reject
            };
            if auth {
                c.auth_mechanisms = vec![
                    SaslMechanism::Plain,
                    SaslMechanism::Login,
                    SaslMechanism::XOAuth2,
                ];
                // The commands run without TLS: AUTH exchanges are part
                // of what is explored.
                c.auth_requires_tls = false;
            }
            c.starttls = true;
            c
        })
}

/// Drives the machine like an adapter would, cutting the input at `cuts`,
/// answering STARTTLS at once, and checking the bounds after every step.
/// Returns how many TLS upgrades it made.
fn drive_checked(config: &ServerConfig, input: &[u8], cuts: &[usize]) -> usize {
    let mut server = ServerSession::new(config.clone()).unwrap();
    server.greet().unwrap();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    let mut arrived = 0;
    let mut next = bounds.into_iter();
    let mut pos = 0;
    let mut steps = 0usize;
    let step_limit = 4 * input.len() + 64;
    let mut out = Vec::new();
    let mut upgrades = 0;
    loop {
        steps += 1;
        assert!(steps <= step_limit, "the machine loops");
        let step = match server.handle_input(&input[pos..arrived]) {
            Ok(s) => s,
            Err(Error::Remote(_)) => {
                assert!(server.is_closed());
                return upgrades;
            }
            Err(e) => panic!("usage error from a correct driver: {e}"),
        };
        assert!(step.consumed <= arrived - pos);
        pos += step.consumed;
        assert!(server.recipients() <= config.max_recipients);
        match step.outcome {
            Outcome::Event(event) => {
                if let ServerEvent::MessageChunk(c) = event {
                    assert!(!c.is_empty());
                }
                if matches!(event, ServerEvent::StartTls) {
                    server.tls_established().unwrap();
                    upgrades += 1;
                } else if server.pending_decision().is_some() {
                    server.accept().unwrap();
                }
            }
            Outcome::NeedInput => {
                // What the caller must still hold is at most one line.
                assert!(arrived - pos <= config.max_auth_line_length);
                match next.next() {
                    Some(b) => arrived = b.max(arrived),
                    None => return upgrades,
                }
            }
            Outcome::Transmit => {}
            Outcome::Closed => return upgrades,
            Outcome::Paused => panic!("paused outside STARTTLS"),
            _ => panic!("unknown outcome"),
        }
        out.clear();
        server.poll_transmit(&mut out);
        assert!(out.len() < 64 * 1024, "one step queued {} bytes", out.len());
    }
}

/// Where each `STARTTLS` CRLF in `input` ends.
fn starttls_ends(input: &[u8]) -> Vec<usize> {
    input
        .windows(10)
        .enumerate()
        .filter(|(_, w)| *w == b"STARTTLS\r\n")
        .map(|(i, _)| i + 10)
        .collect()
}

/// The driver's STARTTLS branch runs: a session upgrades and goes on,
/// however the part before the upgrade is cut.
#[test]
fn the_checked_driver_upgrades_to_tls() {
    let mut config = ServerConfig::new("mx.example.com");
    config.starttls = true;
    let input = b"EHLO a\r\nSTARTTLS\r\nEHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    // Sent one command at a time (as a client waits for each reply), so
    // nothing follows STARTTLS in the buffer before the handshake.
    let starttls_end = starttls_ends(input)[0];
    assert_eq!(drive_checked(&config, input, &[starttls_end]), 1);
    for cut in 0..starttls_end {
        assert_eq!(drive_checked(&config, input, &[cut, starttls_end]), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_stay_bounded(
        config in config(),
        tokens in proptest::collection::vec(token(), 0..40),
        cuts in proptest::collection::vec(0usize..4000, 0..8),
        like_a_client in any::<bool>(),
    ) {
        let input: Vec<u8> = tokens.concat();
        let mut cuts = cuts;
        if like_a_client {
            // Input ends after each STARTTLS, as a client stops there to
            // wait for the 220: the upgrade happens instead of the refusal
            // of plaintext sent ahead.
            cuts.extend(starttls_ends(&input));
        }
        let _upgrades = drive_checked(&config, &input, &cuts);
    }

    #[test]
    fn random_bytes_never_panic(
        config in config(),
        prefix in proptest::sample::select(vec![
            &b""[..],
            b"EHLO a\r\n",
            b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
            b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 50\r\n",
            b"EHLO a\r\nAUTH LOGIN\r\n",
            b"EHLO a\r\nSTARTTLS\r\n",
        ]),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..700, 0..8),
    ) {
        let mut input = prefix.to_vec();
        input.extend(bytes);
        let mut cuts = cuts;
        cuts.extend(starttls_ends(prefix));
        let _upgrades = drive_checked(&config, &input, &cuts);
    }

    #[test]
    fn random_sessions_are_split_invariant(
        config in config(),
        tokens in proptest::collection::vec(token(), 0..30),
        cuts in proptest::collection::vec(0usize..3000, 0..6),
    ) {
        let input: Vec<u8> = tokens.concat();
        // STARTTLS changes what later bytes mean depending on when they
        // arrive; the split rule is checked on sessions without it.
        let mut config = config;
        config.starttls = false;
        let setup = Setup::new(config);
        let segments = vec![input];
        let whole = run_pieces(&setup, &segments, &|s: &[u8]| vec![s.to_vec()]);
        let mut sorted = cuts.clone();
        sorted.sort_unstable();
        let split = run_pieces(&setup, &segments, &move |s: &[u8]| {
            let mut pieces = Vec::new();
            let mut last = 0;
            for &c in &sorted {
                let c = c.min(s.len());
                pieces.push(s[last..c].to_vec());
                last = c;
            }
            pieces.push(s[last..].to_vec());
            pieces
        });
        prop_assert_eq!(whole, split);
    }
}
