//! Our client against our server machine, in memory: a `Pair` shuttles
//! bytes both ways (as quinn's test `Pair` does for QUIC endpoints) with a
//! bounded number of rounds, and both sides' events are checked.

mod client_support;

use client_support::{Actor, Job, SaslApp};
use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientEvent, Protocol, TlsPolicy,
    TransactionSummary, Verdict,
};
use smtp_proto::command::Domain;
use smtp_proto::reply::OwnedReply;
use smtp_proto::sasl::{Credentials, SaslMechanism};
use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;
use smtp_proto::status::{EnhancedStatusCode, ReplyCode};

/// The server application: accepts everything except recipients whose
/// local part starts with `nobody`, and passwords other than `s3cret`.
#[derive(Default)]
struct ServerApp {
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    events: Vec<String>,
}

impl ServerApp {
    fn act(&mut self, server: &mut ServerSession, ev: &ServerEvent<'_>) {
        self.events.push(format!("{ev:?}"));
        match ev {
            ServerEvent::Rcpt { to, .. } if to.to_string().starts_with("<nobody") => {
                let no = Some(EnhancedStatusCode::BAD_MAILBOX);
                let reply =
                    OwnedReply::with_enhanced(ReplyCode::MAILBOX_UNAVAILABLE, no, "No such user");
                server.reject(reply.unwrap()).unwrap();
            }
            ServerEvent::Auth(creds) => {
                let ok = match creds {
                    Credentials::Plain { password, .. } | Credentials::Login { password, .. } => {
                        password.expose() == "s3cret"
                    }
                    _ => true,
                };
                if ok {
                    server.accept().unwrap();
                } else {
                    let reply =
                        OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "Bad credentials");
                    server.reject(reply.unwrap()).unwrap();
                }
            }
            // A CRAM-MD5-style application mechanism with RFC 2195's
            // example: one challenge, then the user name and digest.
            ServerEvent::AuthExchange {
                response: None,
                round: 0,
                ..
            } => {
                let _ = server.auth_challenge(CRAM_CHALLENGE).unwrap();
            }
            ServerEvent::AuthExchange {
                response: Some(answer),
                round: 1,
                ..
            } if answer.expose() == CRAM_ANSWER => server.accept_auth("tim").unwrap(),
            ServerEvent::AuthExchange { .. } => {
                let reply = OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "Bad digest");
                server.reject(reply.unwrap()).unwrap();
            }
            ServerEvent::MessageChunk(bytes) => self.current.extend_from_slice(bytes),
            ServerEvent::MessageEnd { .. } => {
                self.messages.push(std::mem::take(&mut self.current));
                server.accept().unwrap();
            }
            ServerEvent::Hello { .. } | ServerEvent::Mail { .. } | ServerEvent::Rcpt { .. } => {
                server.accept().unwrap()
            }
            _ => {}
        }
    }
}

struct Pair {
    client: Client,
    server: ServerSession,
    actor: Actor,
    app: ServerApp,
    /// Bytes on the wire to each side, not yet read.
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    /// Bytes each side has read and not yet consumed.
    client_buf: Vec<u8>,
    server_buf: Vec<u8>,
    /// Largest read per round, each way.
    max_read: usize,
    client_events: Vec<String>,
    summaries: Vec<TransactionSummary>,
    /// Everything the client wrote, in order.
    client_wire: Vec<u8>,
}

fn read(wire: &mut Vec<u8>, buf: &mut Vec<u8>, max: usize) -> bool {
    let n = wire.len().min(max);
    buf.extend(wire.drain(..n));
    n > 0
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig, actor: Actor) -> Self {
        let mut server = ServerSession::new(server).unwrap();
        server.greet().unwrap();
        Pair {
            client: Client::new(client),
            server,
            actor,
            app: ServerApp::default(),
            to_client: Vec::new(),
            to_server: Vec::new(),
            client_buf: Vec::new(),
            server_buf: Vec::new(),
            max_read: usize::MAX,
            client_events: Vec::new(),
            summaries: Vec::new(),
            client_wire: Vec::new(),
        }
    }

    fn with_max_read(mut self, n: usize) -> Self {
        self.max_read = n;
        self
    }

    /// Runs until neither side has anything to do; returns the rounds used.
    fn drive(&mut self) -> usize {
        for round in 0..100_000 {
            let mut progress = false;
            // Server side.
            progress |= self.server.poll_transmit(&mut self.to_client) > 0;
            progress |= read(&mut self.to_server, &mut self.server_buf, self.max_read);
            for _ in 0..1_000 {
                let step = self
                    .server
                    .handle_input(&self.server_buf)
                    .expect("server error");
                let consumed = step.consumed;
                let stop = match step.outcome {
                    Outcome::Event(ev) => {
                        self.app.act(&mut self.server, &ev);
                        false
                    }
                    Outcome::Transmit => {
                        self.server.poll_transmit(&mut self.to_client);
                        false
                    }
                    _ => true,
                };
                progress |= consumed > 0;
                self.server_buf.drain(..consumed);
                if stop {
                    break;
                }
            }
            progress |= self.server.poll_transmit(&mut self.to_client) > 0;
            // Client side.
            progress |= read(&mut self.to_client, &mut self.client_buf, self.max_read);
            for _ in 0..1_000 {
                let step = self
                    .client
                    .handle_input(&self.client_buf)
                    .expect("client error");
                let consumed = step.consumed;
                let stop = match step.outcome {
                    Outcome::Event(ev) => {
                        self.client_events.push(format!("{ev:?}"));
                        if let ClientEvent::TransactionEnd(s) = &ev {
                            self.summaries.push(s.clone());
                        }
                        if matches!(ev, ClientEvent::StartTls) {
                            // The in-memory "handshake": both ends at once,
                            // with nothing in flight either way.
                            assert!(self.to_client.is_empty() && self.to_server.is_empty());
                            self.client.tls_established().unwrap();
                            self.server.tls_established().unwrap();
                        } else {
                            self.actor.act(&mut self.client, &ev);
                        }
                        false
                    }
                    _ => true,
                };
                progress |= consumed > 0;
                self.client_buf.drain(..consumed);
                if stop {
                    break;
                }
            }
            let mut out = Vec::new();
            progress |= self.client.poll_transmit(&mut out) > 0;
            self.client_wire.extend_from_slice(&out);
            self.to_server.extend_from_slice(&out);
            if !progress {
                assert!(self.to_client.is_empty() && self.to_server.is_empty());
                return round;
            }
        }
        panic!("the pair did not settle");
    }
}

/// RFC 2195 §2's example challenge and answer.
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const CRAM_ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn client_config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.net").unwrap())
}

fn server_config() -> ServerConfig {
    ServerConfig::new("mx.example.org")
}

#[test]
fn pair_pipelined_transaction_with_a_rejected_recipient() {
    let job = Job::new(
        "alice@example.net",
        &["bob@example.org", "nobody@example.org"],
        &[b"Subject: hi\r\n\r\n", b".dot\nbare LF\r", b"\nend"],
    );
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Off),
        server_config(),
        Actor::new(vec![job.clone()]),
    );
    pair.drive();
    // The same exchange with 1-byte and 7-byte reads.
    for n in [1, 7] {
        let mut slow = Pair::new(
            client_config().with_tls(TlsPolicy::Off),
            server_config(),
            Actor::new(vec![job.clone()]),
        )
        .with_max_read(n);
        slow.drive();
        assert_eq!(slow.client_events, pair.client_events);
        assert_eq!(slow.app.messages, pair.app.messages);
    }
    assert!(pair.client.is_closed() && pair.server.is_closed());
    assert_eq!(
        pair.app.messages,
        [b"Subject: hi\r\n\r\n.dot\r\nbare LF\r\nend\r\n".to_vec()]
    );
    let sum = &pair.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert!(pair.client_wire.windows(4).any(|w| w == b"DATA"));
}

#[test]
fn pair_starttls_auth_and_two_messages() {
    let jobs = vec![
        Job::new("alice@example.net", &["bob@example.org"], &[b"one"]),
        Job::new(
            "alice@example.net",
            &["nobody@example.org"],
            &[b"never sent"],
        ),
        Job::new("alice@example.net", &["carol@example.org"], &[b"three"]),
    ];
    let mut actor = Actor::new(jobs);
    actor.auth = Some((AuthCredentials::password("alice", "s3cret"), None));
    let mut server = server_config();
    server.starttls = true;
    server.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    let mut pair = Pair::new(client_config().with_tls(TlsPolicy::Required), server, actor);
    pair.drive();
    assert!(pair.client.is_tls() && pair.client.is_authenticated());
    assert_eq!(
        pair.app.messages,
        [b"one\r\n".to_vec(), b"three\r\n".to_vec()]
    );
    assert_eq!(pair.summaries.len(), 3);
    assert_eq!(pair.summaries[1].message, None);
    assert!(pair.summaries[2].all_delivered());
    assert!(pair.client.is_closed());
}

/// Both ends on implicit TLS (RFC 8314): no STARTTLS on the wire, and
/// AUTH goes ahead on a server that requires TLS for it, with a client
/// that refuses AUTH in the clear.
#[test]
fn pair_implicit_tls_auth_without_starttls() {
    let mut actor = Actor::new(vec![Job::new(
        "alice@example.net",
        &["bob@example.org"],
        &[b"over implicit TLS"],
    )]);
    actor.auth = Some((AuthCredentials::password("alice", "s3cret"), None));
    let mut server = server_config();
    server.starttls = true;
    server.implicit_tls = true;
    server.auth_requires_tls = true;
    server.auth_mechanisms = vec![SaslMechanism::Plain];
    let client = client_config()
        .with_tls(TlsPolicy::Required)
        .with_implicit_tls(true);
    let mut pair = Pair::new(client, server, actor);
    pair.drive();
    assert!(pair.server.is_tls() && pair.server.is_authenticated());
    assert!(pair.client.is_tls() && pair.client.is_authenticated());
    assert!(!contains(&pair.client_wire, b"STARTTLS"));
    assert!(contains(&pair.client_wire, b"AUTH PLAIN"));
    assert_eq!(pair.app.messages, [b"over implicit TLS\r\n".to_vec()]);
    assert!(pair.summaries[0].all_delivered());
    assert!(pair.client.is_closed());
}

/// A text body over BDAT: no dot-stuffing, but line ends made CRLF and
/// the last line ended, as over DATA (RFC 5321 §2.3.8); each BDAT size
/// counts the bytes sent.
#[test]
fn pair_bdat_chunks_get_crlf_line_ends() {
    let job = Job::new(
        "a@example.net",
        &["b@example.org"],
        &[b".raw\n", b"bytes\r\n.\r\n", b"end"],
    );
    let mut server = server_config();
    server.chunking = true;
    let cfg = client_config()
        .with_tls(TlsPolicy::Off)
        .with_chunking(ChunkingPolicy::Prefer);
    let mut pair = Pair::new(cfg, server, Actor::new(vec![job]));
    pair.drive();
    assert!(contains(
        &pair.client_wire,
        b"BDAT 6\r\n.raw\r\nBDAT 10\r\nbytes\r\n.\r\nBDAT 5 LAST\r\nend\r\n"
    ));
    assert_eq!(
        pair.app.messages,
        [b".raw\r\nbytes\r\n.\r\nend\r\n".to_vec()]
    );
    assert!(pair.summaries[0].all_delivered());
}

#[test]
fn pair_lmtp_per_recipient() {
    let job = Job::new(
        "a@example.net",
        &["b@example.org", "nobody@example.org", "c@example.org"],
        &[b"x"],
    );
    let mut server = server_config();
    server.lmtp = true;
    let cfg = client_config()
        .with_tls(TlsPolicy::Off)
        .with_protocol(Protocol::Lmtp);
    let mut pair = Pair::new(cfg, server, Actor::new(vec![job]));
    pair.drive();
    assert_eq!(
        pair.client_events
            .iter()
            .filter(|e| e.starts_with("Message"))
            .count(),
        2
    );
    assert_eq!(pair.summaries[0].delivered().collect::<Vec<_>>(), [0, 2]);
}

/// LMTP over BDAT: a chunk refused for size ends the transaction, and the
/// BDAT LAST the pipelining client sent after it gets the one refusal the
/// client waits for, so the next transaction's replies stay in step.
#[test]
fn pair_lmtp_bdat_last_after_a_refused_chunk_stays_in_step() {
    let big = [b'x'; 30];
    let jobs = vec![
        Job::new(
            "a@example.net",
            &["b@example.org", "c@example.org"],
            &[&big, b"end"],
        ),
        Job::new(
            "a@example.net",
            &["b@example.org", "c@example.org"],
            &[b"small"],
        ),
    ];
    let mut server = server_config();
    server.lmtp = true;
    server.max_message_size = Some(20);
    let cfg = client_config()
        .with_tls(TlsPolicy::Off)
        .with_protocol(Protocol::Lmtp)
        .with_chunking(ChunkingPolicy::Prefer);
    let mut pair = Pair::new(cfg, server, Actor::new(jobs));
    pair.drive();
    assert!(contains(&pair.client_wire, b"BDAT 30\r\n"));
    // Each reply answered its own command, QUIT's last.
    assert!(
        pair.client_events
            .iter()
            .all(|e| !e.starts_with("Sender") || e.contains("raw: \"250 2.1.0 OK\\r\\n\"")),
        "{:#?}",
        pair.client_events
    );
    let last = pair.client_events.last().unwrap();
    assert!(
        last.starts_with("Closed") && last.contains("code: 221"),
        "{last}"
    );
    assert_eq!(pair.summaries.len(), 2, "{:#?}", pair.client_events);
    assert_eq!(pair.summaries[0].delivered().count(), 0);
    assert_eq!(pair.summaries[1].delivered().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(pair.app.messages, [b"small\r\n".to_vec()]);
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

fn auth_pair(
    creds: AuthCredentials,
    forced: Option<SaslMechanism>,
    mechs: Vec<SaslMechanism>,
) -> Pair {
    auth_pair_with(creds, forced, mechs, None, usize::MAX)
}

/// [`auth_pair`] with the client application's answers to the challenges
/// of an application-run mechanism, reading at most `max_read` bytes at a
/// time.
fn auth_pair_with(
    creds: AuthCredentials,
    forced: Option<SaslMechanism>,
    mechs: Vec<SaslMechanism>,
    sasl: Option<SaslApp>,
    max_read: usize,
) -> Pair {
    let mut actor = Actor::new(vec![Job::new("a@example.net", &["b@example.org"], &[b"x"])]);
    actor.auth = Some((creds, forced));
    actor.sasl = sasl;
    let mut server = server_config();
    server.auth_mechanisms = mechs;
    server.auth_requires_tls = false;
    let mut pair = Pair::new(
        client_config()
            .with_tls(TlsPolicy::Off)
            .with_auth_without_tls(true),
        server,
        actor,
    )
    .with_max_read(max_read);
    pair.drive();
    pair
}

#[test]
fn pair_auth_every_mechanism() {
    let all = vec![
        SaslMechanism::Plain,
        SaslMechanism::Login,
        SaslMechanism::XOAuth2,
        SaslMechanism::OAuthBearer,
    ];
    for (creds, forced, expect) in [
        (
            AuthCredentials::password("alice", "s3cret"),
            None,
            "AUTH PLAIN ",
        ),
        (
            AuthCredentials::password("alice", "s3cret"),
            Some(SaslMechanism::Login),
            "AUTH LOGIN\r\n",
        ),
        (
            AuthCredentials::oauth2("alice@example.net", "tok"),
            None,
            "AUTH OAUTHBEARER ",
        ),
        (
            AuthCredentials::oauth2("alice@example.net", "tok"),
            Some(SaslMechanism::XOAuth2),
            "AUTH XOAUTH2 ",
        ),
    ] {
        let pair = auth_pair(creds, forced, all.clone());
        let wire = String::from_utf8_lossy(&pair.client_wire).into_owned();
        assert!(wire.contains(expect), "{wire}");
        assert!(pair.client.is_closed());
        assert!(
            pair.client_events
                .iter()
                .any(|e| e.starts_with("Authenticated")),
            "{expect}"
        );
        assert!(pair.summaries[0].all_delivered());
        // The server saw the same identity.
        assert!(pair.app.events.iter().any(|e| e.starts_with("Auth(")));
    }
    // LOGIN chosen when it is all the server offers.
    let pair = auth_pair(
        AuthCredentials::password("alice", "s3cret"),
        None,
        vec![SaslMechanism::Login],
    );
    assert!(String::from_utf8_lossy(&pair.client_wire).contains("AUTH LOGIN\r\n"));
    assert!(pair.client.is_authenticated());
}

#[test]
fn pair_auth_custom_mechanism_challenge_and_response() {
    fn client_app(challenge: &[u8], round: usize) -> Option<Vec<u8>> {
        // The client application computes the digest of the challenge it
        // was given; here the known answer of RFC 2195.
        (round == 1 && challenge == CRAM_CHALLENGE).then(|| CRAM_ANSWER.to_vec())
    }
    let cram = SaslMechanism::custom("CRAM-MD5").unwrap();
    let SaslMechanism::Custom(name) = cram else {
        unreachable!()
    };
    for max_read in [usize::MAX, 1] {
        let pair = auth_pair_with(
            AuthCredentials::custom(name, None),
            None,
            vec![SaslMechanism::Plain, cram],
            Some(client_app),
            max_read,
        );
        let wire = String::from_utf8_lossy(&pair.client_wire).into_owned();
        assert!(
            wire.contains(
                "AUTH CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\nMAIL FROM:"
            ),
            "{wire}"
        );
        let challenges: Vec<_> = pair
            .client_events
            .iter()
            .filter(|e| e.starts_with("AuthChallenge"))
            .collect();
        assert_eq!(challenges.len(), 1, "{:?}", pair.client_events);
        assert!(pair
            .client_events
            .iter()
            .any(|e| e.starts_with("Authenticated")));
        assert!(pair.client.is_authenticated());
        assert_eq!(pair.server.auth_identity(), Some("tim"));
        assert_eq!(
            pair.app
                .events
                .iter()
                .filter(|e| e.starts_with("AuthExchange"))
                .count(),
            2
        );
        assert!(pair.summaries[0].all_delivered());
        assert!(pair.client.is_closed());
    }
}

#[test]
fn pair_auth_wrong_password_is_invalid_credentials() {
    let mut actor = Actor::new(vec![]);
    actor.auth = Some((AuthCredentials::password("alice", "wrong"), None));
    let mut server = server_config();
    server.auth_mechanisms = vec![SaslMechanism::Plain];
    server.auth_requires_tls = false;
    let mut pair = Pair::new(
        client_config()
            .with_tls(TlsPolicy::Off)
            .with_auth_without_tls(true),
        server,
        actor,
    );
    pair.drive();
    let failed = pair
        .client_events
        .iter()
        .find(|e| e.starts_with("AuthFailed"))
        .unwrap();
    assert!(failed.contains("InvalidCredentials"), "{failed}");
    assert!(!failed.contains("wrong"));
    assert!(!pair.client.is_authenticated());
    assert!(pair.client.is_closed());
}

#[test]
fn pair_without_pipelining_and_rejected_recipients_rsets() {
    let jobs = vec![
        Job::new("a@example.net", &["nobody@example.org"], &[b"lost"]),
        Job::new(
            "a@example.net",
            &["nobody1@example.org", "b@example.org"],
            &[b"kept"],
        ),
    ];
    for server_pipelining in [false, true] {
        let mut server = server_config();
        server.pipelining = server_pipelining;
        let mut pair = Pair::new(
            client_config().with_tls(TlsPolicy::Off),
            server,
            Actor::new(jobs.clone()),
        );
        pair.drive();
        assert_eq!(pair.app.messages, [b"kept\r\n".to_vec()]);
        assert_eq!(pair.summaries[0].message, None);
        assert_eq!(pair.summaries[1].delivered().collect::<Vec<_>>(), [1]);
        let wire = String::from_utf8_lossy(&pair.client_wire).into_owned();
        assert!(!wire.contains("lost"));
        assert!(pair.client.is_closed());
    }
}

#[test]
fn pair_smtputf8_and_size_are_checked_before_sending() {
    let utf8 = Job::new("jöran@example.net", &["b@example.org"], &[b"x"]);
    let big = Job::new("a@example.net", &["b@example.org"], &[b"x"])
        .with_envelope(|e| e.with_size(2_000));
    let fine =
        Job::new("a@example.net", &["b@example.org"], &[b"fine"]).with_envelope(|e| e.with_size(5));
    let mut server = server_config();
    server.max_message_size = Some(1_000);
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Off),
        server,
        Actor::new(vec![utf8.clone(), big, fine]),
    );
    pair.drive();
    assert_eq!(pair.actor.refusals.len(), 2);
    assert_eq!(pair.app.messages, [b"fine\r\n".to_vec()]);
    assert!(
        String::from_utf8_lossy(&pair.client_wire).contains("MAIL FROM:<a@example.net> SIZE=5\r\n")
    );

    let mut server = server_config();
    server.smtputf8 = true;
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Off),
        server,
        Actor::new(vec![utf8]),
    );
    pair.drive();
    assert!(String::from_utf8_lossy(&pair.client_wire)
        .contains("MAIL FROM:<jöran@example.net> SMTPUTF8\r\n"));
    assert_eq!(pair.app.messages.len(), 1);
}

#[test]
fn pair_binarymime_over_bdat() {
    let body: &[u8] = b"\x00\x01binary\r\n.\r\n\xff";
    let job = Job::new("a@example.net", &["b@example.org"], &[body])
        .with_envelope(|e| e.with_body(smtp_proto::command::BodyType::BinaryMime));
    let mut server = server_config();
    server.binarymime = true;
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Off),
        server,
        Actor::new(vec![job]),
    );
    pair.drive();
    assert_eq!(pair.app.messages, [body.to_vec()]);
    assert!(String::from_utf8_lossy(&pair.client_wire).contains("BODY=BINARYMIME"));
}

#[test]
fn pair_many_transactions_bounded_rounds() {
    let jobs: Vec<Job> = (0..50)
        .map(|_| {
            Job::new(
                "a@example.net",
                &["b@example.org", "c@example.org"],
                &[b"m"],
            )
        })
        .collect();
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Off),
        server_config(),
        Actor::new(jobs),
    );
    let rounds = pair.drive();
    assert_eq!(pair.app.messages.len(), 50);
    assert!(pair.summaries.iter().all(|s| s.all_delivered()));
    // Pipelined: a handful of round trips per message.
    assert!(rounds < 50 * 6, "{rounds} rounds");
}

mod body_roundtrip {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any body, in any pieces, reaches our server as the body with its
        /// line ends made CRLF, over DATA and over BDAT alike; only a
        /// BINARYMIME body (over BDAT) arrives unchanged.
        #[test]
        fn bodies_reach_the_server(
            pieces in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'x')], 0..12),
                0..6,
            ),
            bdat in any::<bool>(),
            binary in any::<bool>(),
            max_read in 1usize..40,
        ) {
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let binary = bdat && binary;
            let mut job = Job::new("a@example.net", &["b@example.org"], &refs);
            if binary {
                job = job.with_envelope(|e| e.with_body(smtp_proto::command::BodyType::BinaryMime));
            }
            let chunking = if bdat { ChunkingPolicy::Prefer } else { ChunkingPolicy::Never };
            let cfg = client_config().with_tls(TlsPolicy::Off).with_chunking(chunking);
            let mut server = server_config();
            server.binarymime = binary;
            let mut pair = Pair::new(cfg, server, Actor::new(vec![job])).with_max_read(max_read);
            pair.drive();
            prop_assert_eq!(contains(&pair.client_wire, b"BDAT"), bdat);
            let body: Vec<u8> = pieces.concat();
            let expect = if binary { body } else { normalized(&body) };
            prop_assert_eq!(&pair.app.messages, &vec![expect]);
            prop_assert!(pair.summaries[0].all_delivered());
        }
    }
}

/// The longest MAIL and RCPT lines the client can write, every envelope
/// value at the most its constructor allows (256-octet paths, a 20-digit
/// SIZE, a 100-character ENVID, a 500-character ORCPT, every flag), stay
/// within the server's default line limit (1024 octets): the server reads
/// them and the message is delivered.
#[test]
fn pair_longest_envelope_fits_the_default_line_limit() {
    use smtp_proto::client::{Envelope, Recipient};
    use smtp_proto::command::{
        Atom, BodyType, EnvId, ForwardPath, Mailbox, Notify, Orcpt, Ret, ReversePath, XText,
    };

    // "<" + 64 + "@" + 189 + ">": the 256 octets of RFC 5321 §4.5.3.1.3.
    let domain = format!("{}.{}.{}", "d".repeat(63), "e".repeat(63), "f".repeat(61));
    let address = |local: char| format!("{}@{domain}", local.to_string().repeat(64));
    let (from, to) = (address('s'), address('r'));
    assert_eq!(from.len() + 2, 256);
    let from = Mailbox::parse(&from).unwrap().into_owned();
    let to = Mailbox::parse(&to).unwrap().into_owned();
    let orcpt_text = "o".repeat(Orcpt::MAX_LEN - "rfc822;".len());
    let orcpt = Orcpt::new(
        Atom::new("rfc822").unwrap(),
        XText::new(orcpt_text).unwrap(),
    )
    .unwrap();
    let envid = EnvId::new(XText::new("i".repeat(EnvId::MAX_LEN)).unwrap()).unwrap();
    let recipient = Recipient::new(ForwardPath::Mailbox(to))
        .with_notify(Notify {
            success: true,
            failure: true,
            delay: true,
        })
        .with_orcpt(orcpt.into_owned());
    let envelope = Envelope::new(ReversePath::Mailbox(from))
        .with_recipient(recipient)
        .with_body(BodyType::BinaryMime)
        .with_size(u64::MAX)
        .with_smtputf8(true)
        .with_dsn(Some(Ret::Hdrs), Some(envid.into_owned()))
        .with_require_tls(true);
    let job = Job {
        envelope,
        body: vec![b"the longest envelope".to_vec()],
    };

    let mut server = server_config();
    server.starttls = true;
    server.max_message_size = Some(u64::MAX);
    (server.smtputf8, server.dsn, server.requiretls) = (true, true, true);
    (server.chunking, server.binarymime) = (true, true);
    let limit = server.max_line_length;
    assert_eq!(limit, 1024, "the default");
    let client = client_config().with_tls(TlsPolicy::Required);
    let mut pair = Pair::new(client, server, Actor::new(vec![job]));
    pair.drive();

    assert_eq!(pair.app.messages, [b"the longest envelope".to_vec()]);
    assert!(pair.summaries[0].all_delivered());
    let lines: Vec<&[u8]> = pair.client_wire.split(|&b| b == b'\n').collect();
    let line = |verb: &[u8]| {
        let found = lines.iter().find(|l| l.starts_with(verb));
        found.expect("the command was sent").len() + 1
    };
    // 11 + 256 + 26 (SIZE) + 16 (BODY) + 9 (SMTPUTF8) + 9 (RET) + 107
    // (ENVID) + 11 (REQUIRETLS) + CRLF; 9 + 256 + 29 (NOTIFY) + 507 (ORCPT)
    // + CRLF.
    assert_eq!(line(b"MAIL FROM:"), 446);
    assert_eq!(line(b"RCPT TO:"), 802);
    assert!(lines.iter().all(|l| l.len() < limit), "every line fits");
}

/// RFC 9422: the server advertises its LIMITS, and the client keeps to
/// them before sending anything: an envelope over RCPTMAX or RCPTDOMAINMAX
/// is refused locally, and so is the transaction after MAILMAX, over
/// STARTTLS.
#[test]
fn pair_client_keeps_to_the_servers_limits() {
    let jobs = vec![
        Job::new(
            "alice@example.net",
            &["a@example.org", "b@example.org", "c@example.org"],
            &[b"too many recipients"],
        ),
        Job::new(
            "alice@example.net",
            &["a@example.org", "b@example.com"],
            &[b"too many domains"],
        ),
        Job::new("alice@example.net", &["a@example.org"], &[b"one"]),
        Job::new("alice@example.net", &["b@example.org"], &[b"two"]),
        Job::new("alice@example.net", &["c@example.org"], &[b"three"]),
    ];
    let mut server = server_config();
    server.starttls = true;
    server.limits = true;
    server.max_recipients = 2;
    server.max_transactions = Some(2);
    server.max_recipient_domains = Some(1);
    let mut pair = Pair::new(
        client_config().with_tls(TlsPolicy::Required),
        server,
        Actor::new(jobs),
    );
    pair.drive();
    assert!(pair.client.is_tls());
    assert_eq!(
        pair.client.limits(),
        smtp_proto::reply::Limits {
            rcpt_max: Some(2),
            mail_max: Some(2),
            rcpt_domain_max: Some(1),
        }
    );
    use smtp_proto::client::{ClientError, Refusal};
    assert_eq!(
        pair.actor.refusals,
        [
            ClientError::Refused(Refusal::TooManyRecipients { count: 3, limit: 2 }),
            ClientError::Refused(Refusal::TooManyDomains { count: 2, limit: 1 }),
            ClientError::Refused(Refusal::TransactionLimit { limit: 2 }),
        ]
    );
    assert_eq!(
        pair.app.messages,
        [b"one\r\n".to_vec(), b"two\r\n".to_vec()]
    );
    // The server never had to refuse anything itself.
    assert!(
        !pair.app.events.iter().any(|e| e.starts_with("Rejected")),
        "{:?}",
        pair.app.events
    );
    assert!(pair.client.is_closed() && pair.server.is_closed());
}
