//! The client machine against a scripted in-memory server, one test per
//! feature; every scripted run is checked for split invariance.

mod client_support;

use client_support::{config, run_split_invariant, Actor, Job};
use smtp_proto::client::{
    AuthCredentials, AuthFailure, ChunkingPolicy, Client, ClientError, ClientEvent, Outcome,
    Protocol, Refusal, TlsPolicy, UsageError, Verdict,
};
use smtp_proto::command::{Atom, BodyType, EnvId, Notify, Orcpt, Ret, XText};
use smtp_proto::reply::Extension;
use smtp_proto::sasl::SaslMechanism;

/// Feeds `buf` to the client until it is idle, dropping what it consumed.
/// What the client queued is written before each step, as a server
/// answers a command only once it was sent; returns those bytes.
fn until_idle(c: &mut Client, buf: &mut &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    while !c.is_idle() {
        c.poll_transmit(&mut wire);
        let step = c.handle_input(buf).unwrap();
        *buf = &buf[step.consumed..];
    }
    wire
}
fn ehlo(caps: &[&str]) -> String {
    let mut s = String::new();
    if caps.is_empty() {
        return "250 mx.example.org\r\n".into();
    }
    s.push_str("250-mx.example.org greets client.example.net\r\n");
    for (i, c) in caps.iter().enumerate() {
        s.push_str(if i + 1 == caps.len() { "250 " } else { "250-" });
        s.push_str(c);
        s.push_str("\r\n");
    }
    s
}

fn script(parts: &[&str]) -> Vec<u8> {
    parts.concat().into_bytes()
}

const GREET: &str = "220 mx.example.org ESMTP\r\n";
const OK: &str = "250 2.0.0 Ok\r\n";
const BYE: &str = "221 2.0.0 Bye\r\n";

fn plain() -> smtp_proto::client::ClientConfig {
    config().with_tls(TlsPolicy::Off)
}

fn job() -> Job {
    Job::new(
        "alice@example.net",
        &["bob@example.org"],
        &[b"Subject: t\r\n\r\nhi\r\n"],
    )
}

/// A message from alice to `to` with the body `hi`.
fn job_to(to: &[&'static str]) -> Job {
    Job::new("alice@example.net", to, &[b"hi\r\n"])
}

/// The server's side of one message sent with PIPELINING and DATA: the
/// greeting, the EHLO reply, 250 to MAIL and RCPT, 354, `final_reply` to
/// the end of the message, and 221 to QUIT.
fn one_message_script(final_reply: &str) -> Vec<u8> {
    script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        OK,
        "354 go\r\n",
        final_reply,
        BYE,
    ])
}

// ----- greeting -----

#[test]
fn greeting_220_sends_ehlo_then_quit() {
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![]), &[&s]);
    assert_eq!(run.wire_str(), "EHLO client.example.net\r\nQUIT\r\n");
    assert!(run.events[0].starts_with("Greeting"));
    assert_eq!(run.events[1], "Ready");
    assert!(run.events[2].starts_with("Closed"));
    assert!(run.closed);
    assert_eq!(run.error, None);
}

#[test]
fn greeting_421_ends_the_session_with_the_reply() {
    let s = script(&["421 4.3.2 mx.example.org busy, try later\r\n"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert_eq!(run.events.len(), 1);
    assert!(run.events[0].starts_with("ServiceClosing"));
    assert!(run.events[0].contains("busy, try later"));
    assert!(run.closed);
    assert_eq!(run.wire, b"");
}

#[test]
fn greeting_554_is_reported_and_quits() {
    let s = script(&["554 5.7.1 no service for you\r\n", BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert!(run.events[0].starts_with("GreetingRejected"));
    assert!(run.events[0].contains("no service for you"));
    assert!(run.events[1].starts_with("Closed"));
    assert_eq!(run.wire_str(), "QUIT\r\n");
    assert!(run.closed);
}

// ----- EHLO / HELO / LHLO -----

#[test]
fn ehlo_502_and_500_fall_back_to_helo() {
    for refusal in ["502 5.5.2 EHLO not implemented\r\n", "500 5.5.1 what?\r\n"] {
        let s = script(&[
            GREET,
            refusal,
            "250 mx.example.org\r\n",
            OK,
            OK,
            "354 go\r\n",
            OK,
            BYE,
        ]);
        let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
        assert_eq!(
            run.wire_str(),
            "EHLO client.example.net\r\nHELO client.example.net\r\n\
             MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n\
             Subject: t\r\n\r\nhi\r\n.\r\nQUIT\r\n"
        );
        assert!(run.summaries[0].all_delivered());
    }
}

/// RFC 5321 §4.1.1.1 gives HELO a `Domain` only, but a client without a
/// name has nothing else to send (§2.3.5, §4.1.3: it names itself with an
/// address literal), and servers take the literal after HELO too (this
/// crate's server does; so do the widespread ones). The client sends HELO
/// with the configured literal, as Python's smtplib does, rather than give
/// up a session the server would likely accept; a server that refuses it
/// gets QUIT and the refusal is reported.
#[test]
fn helo_fallback_sends_the_configured_address_literal() {
    use smtp_proto::client::ClientConfig;
    use smtp_proto::command::Domain;
    let cfg = ClientConfig::new(Domain::new("[192.0.2.7]").unwrap()).with_tls(TlsPolicy::Off);
    let s = script(&[GREET, "502 5.5.2 no EHLO\r\n", "250 mx.example.org\r\n"]);
    let run = run_split_invariant(cfg.clone(), &Actor::new(vec![]), &[&s]);
    assert!(run
        .wire_str()
        .starts_with("EHLO [192.0.2.7]\r\nHELO [192.0.2.7]\r\n"));
    let s = script(&[
        GREET,
        "502 5.5.2 no EHLO\r\n",
        "501 5.5.4 HELO needs a domain\r\n",
        BYE,
    ]);
    let run = run_split_invariant(cfg, &Actor::new(vec![job()]), &[&s]);
    assert!(
        run.events[1].starts_with("HelloRejected"),
        "{:?}",
        run.events
    );
    assert_eq!(
        run.wire_str(),
        "EHLO [192.0.2.7]\r\nHELO [192.0.2.7]\r\nQUIT\r\n"
    );
    assert!(run.closed);
}

#[test]
fn ehlo_and_helo_refused_quits() {
    let s = script(&[GREET, "550 5.7.1 go away\r\n", BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert!(run.events[1].starts_with("HelloRejected"));
    assert_eq!(run.wire_str(), "EHLO client.example.net\r\nQUIT\r\n");
    assert!(run.closed);
}

/// RFC 5321 §4.1.1.1: the EHLO argument is an ASCII `Domain` (or address
/// literal); RFC 6531 allows U-labels only once SMTPUTF8 is in use, which
/// the client cannot know before the EHLO reply. A U-label hello domain is
/// refused with a typed error on the first call, before anything is sent;
/// its A-label form works.
#[test]
fn utf8_hello_domain_is_refused_before_anything_is_sent() {
    use smtp_proto::client::{ClientConfig, ConfigError};
    use smtp_proto::command::Domain;
    let cfg =
        ClientConfig::new(Domain::new("b\u{fc}cher.example").unwrap()).with_tls(TlsPolicy::Off);
    assert_eq!(cfg.check(), Err(ConfigError::NonAsciiHelloDomain));
    let mut c = Client::new(cfg);
    let err = c.handle_input(GREET.as_bytes()).unwrap_err();
    assert_eq!(err, ClientError::Config(ConfigError::NonAsciiHelloDomain));
    assert!(!err.is_remote());
    assert!(c.is_closed());
    assert!(!c.has_transmit());
    assert_eq!(
        c.handle_input(GREET.as_bytes()).unwrap().outcome,
        Outcome::Closed
    );

    let cfg =
        ClientConfig::new(Domain::new("xn--bcher-kva.example").unwrap()).with_tls(TlsPolicy::Off);
    assert_eq!(cfg.check(), Ok(()));
    let mut c = Client::new(cfg);
    let step = c.handle_input(GREET.as_bytes()).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Greeting { .. })
    ));
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    assert_eq!(wire, b"EHLO xn--bcher-kva.example\r\n");
}

#[test]
fn capabilities_are_kept_for_the_session() {
    let mut c = Client::new(plain());
    let input = script(&[GREET, &ehlo(&["PIPELINING", "SIZE 1000", "X-FOO bar"])]);
    let mut buf = &input[..];
    loop {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        if step.outcome == Outcome::Event(ClientEvent::Ready) {
            break;
        }
    }
    let caps = c.capabilities().unwrap();
    assert_eq!(caps.domain(), "mx.example.org");
    assert_eq!(caps.max_size(), Some(1000));
    assert_eq!(caps.unknown().count(), 1);
    assert!(c.has(Extension::Pipelining));
    assert!(!c.has(Extension::Chunking));
}

#[test]
fn lmtp_uses_lhlo_and_reads_one_reply_per_accepted_recipient() {
    let s = script(&[
        "220 lmtp.example.org LMTP\r\n",
        &ehlo(&["PIPELINING", "ENHANCEDSTATUSCODES"]),
        OK,
        "250 2.1.5 ok\r\n",
        "550 5.1.1 unknown\r\n",
        "250 2.1.5 ok\r\n",
        "354 go\r\n",
        "250 2.0.0 <a> delivered\r\n",
        "452 4.2.2 <c> mailbox full\r\n",
        BYE,
    ]);
    let j = Job::new("a@x.org", &["a@y.org", "b@y.org", "c@y.org"], &[b"hi\r\n"]);
    let cfg = plain().with_protocol(Protocol::Lmtp);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    assert!(run.wire_str().starts_with("LHLO client.example.net\r\n"));
    assert_eq!(run.count("Message"), 2);
    assert!(run.has_event("Message { recipient: Some(0)"));
    assert!(run.has_event("Message { recipient: Some(2)"));
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(sum.recipients[2].verdict(), Verdict::RetryLater);
    assert_eq!(sum.message, Some(Verdict::RetryLater));
    assert!(run.closed);
}

#[test]
fn lmtp_does_not_fall_back_to_helo() {
    let s = script(&["220 lmtp\r\n", "500 5.5.1 unknown\r\n", BYE]);
    let cfg = plain().with_protocol(Protocol::Lmtp);
    let run = run_split_invariant(cfg, &Actor::new(vec![]), &[&s]);
    assert!(run.events[1].starts_with("HelloRejected"));
    assert_eq!(run.wire_str(), "LHLO client.example.net\r\nQUIT\r\n");
}

// ----- STARTTLS -----

#[test]
fn starttls_required_upgrades_and_sends_ehlo_again() {
    let first = script(&[
        GREET,
        &ehlo(&["PIPELINING", "STARTTLS"]),
        "220 2.0.0 Ready to start TLS\r\n",
    ]);
    let second = script(&[&ehlo(&["PIPELINING", "AUTH PLAIN"]), BYE]);
    let cfg = config().with_tls(TlsPolicy::Required);
    let run = run_split_invariant(cfg, &Actor::new(vec![]), &[&first, &second]);
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nSTARTTLS\r\n<TLS>EHLO client.example.net\r\nQUIT\r\n"
    );
    assert_eq!(run.count("StartTls"), 1);
    assert_eq!(run.count("Ready"), 1);
}

#[test]
fn starttls_required_but_not_offered_quits_without_mail() {
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), BYE]);
    let cfg = config().with_tls(TlsPolicy::Required);
    let run = run_split_invariant(cfg, &Actor::new(vec![job()]), &[&s]);
    assert_eq!(run.events[1], "TlsUnavailable { reply: None }");
    assert_eq!(run.wire_str(), "EHLO client.example.net\r\nQUIT\r\n");
    assert!(!run.has_event("Ready"));
}

#[test]
fn starttls_refused_required_quits_opportunistic_goes_on() {
    let s = script(&[
        GREET,
        &ehlo(&["STARTTLS"]),
        "454 4.7.0 TLS not available\r\n",
        BYE,
    ]);
    let run = run_split_invariant(
        config().with_tls(TlsPolicy::Required),
        &Actor::new(vec![job()]),
        &[&s],
    );
    assert!(run.events[1].starts_with("TlsUnavailable { reply: Some"));
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nSTARTTLS\r\nQUIT\r\n"
    );

    let s = script(&[
        GREET,
        &ehlo(&["STARTTLS"]),
        "454 4.7.0 TLS not available\r\n",
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let run = run_split_invariant(config(), &Actor::new(vec![job()]), &[&s]);
    assert!(run.events[1].starts_with("TlsUnavailable { reply: Some"));
    assert_eq!(run.events[2], "Ready");
    assert!(run
        .wire_str()
        .contains("STARTTLS\r\nMAIL FROM:<alice@example.net>\r\n"));
    assert!(run.summaries[0].all_delivered());
}

/// Opportunistic TLS against a server that does not offer STARTTLS: the
/// application hears it (to log it, or to report it) before `Ready`, and
/// the session goes on in plain text. After a HELO fallback too.
#[test]
fn starttls_not_offered_opportunistic_reports_it_and_goes_on() {
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), OK, OK, "354 go\r\n", OK, BYE]);
    let run = run_split_invariant(config(), &Actor::new(vec![job()]), &[&s]);
    assert_eq!(run.events[1], "TlsUnavailable { reply: None }");
    assert_eq!(run.events[2], "Ready");
    assert!(run.summaries[0].all_delivered());
    assert!(!run.wire_str().contains("STARTTLS"));

    let s = script(&[
        GREET,
        "502 5.5.1 EHLO not implemented\r\n",
        OK,
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let run = run_split_invariant(config(), &Actor::new(vec![job()]), &[&s]);
    assert_eq!(run.events[1], "TlsUnavailable { reply: None }");
    assert_eq!(run.events[2], "Ready");
    assert!(run
        .wire_str()
        .starts_with("EHLO client.example.net\r\nHELO client.example.net\r\n"));
    assert!(run.summaries[0].all_delivered());

    // With TLS off, nothing is reported.
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![]), &[&s]);
    assert!(!run.has_event("TlsUnavailable"));
}

/// Each ehlo-line stands alone: a capability line that is not UTF-8, or a
/// first line without a domain, does not cost the STARTTLS offered on
/// another line (a silent downgrade to plain text).
#[test]
fn a_bad_ehlo_line_does_not_hide_starttls() {
    for reply in [
        &b"250-mx.example.org\r\n250-X-NOTE caf\xe9\r\n250-PIPELINING\r\n250 STARTTLS\r\n"[..],
        b"250-\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
        b"250-mx\xff.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
    ] {
        let mut first = GREET.as_bytes().to_vec();
        first.extend_from_slice(reply);
        first.extend_from_slice(b"220 2.0.0 go ahead\r\n");
        let second = script(&[&ehlo(&["PIPELINING"]), BYE]);
        let cfg = config().with_tls(TlsPolicy::Required);
        let run = run_split_invariant(cfg, &Actor::new(vec![]), &[&first, &second]);
        assert_eq!(
            run.wire_str(),
            "EHLO client.example.net\r\nSTARTTLS\r\n<TLS>EHLO client.example.net\r\nQUIT\r\n",
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert!(!run.has_event("TlsUnavailable"));
    }
    // The capabilities read from such a reply.
    let input = b"220 mx\r\n250-mx.example.org\r\n250-X-NOTE caf\xe9\r\n250 SIZE 1000\r\n";
    let mut c = Client::new(plain());
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    let caps = c.capabilities().unwrap();
    assert_eq!(caps.invalid_lines(), 1);
    assert_eq!(caps.max_size(), Some(1000));
    let input = b"220 mx\r\n250-\r\n250 SIZE 1000\r\n";
    let mut c = Client::new(plain());
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    let caps = c.capabilities().unwrap();
    assert_eq!(caps.domain(), "");
    assert_eq!(caps.max_size(), Some(1000));
}

#[test]
fn starttls_off_never_sends_it() {
    let s = script(&[GREET, &ehlo(&["STARTTLS"]), BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![]), &[&s]);
    assert!(!run.wire_str().contains("STARTTLS"));
}

#[test]
fn implicit_tls_skips_starttls() {
    let s = script(&[GREET, &ehlo(&["STARTTLS"]), BYE]);
    let cfg = config()
        .with_tls(TlsPolicy::Required)
        .with_implicit_tls(true);
    let run = run_split_invariant(cfg, &Actor::new(vec![]), &[&s]);
    assert_eq!(run.wire_str(), "EHLO client.example.net\r\nQUIT\r\n");
}

fn drive_to_starttls(c: &mut Client) {
    let input = script(&[GREET, &ehlo(&["STARTTLS", "SIZE 10"])]);
    let mut buf = &input[..];
    loop {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        if step.outcome == Outcome::NeedInput {
            break;
        }
    }
    assert!(c.poll_transmit(&mut Vec::new()) > 0);
}

#[test]
fn starttls_response_injection_is_an_error() {
    // In the same read as the 220.
    let mut c = Client::new(config());
    drive_to_starttls(&mut c);
    let err = c
        .handle_input(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
        .unwrap_err();
    assert_eq!(err, ClientError::ResponseInjection);
    assert!(err.is_remote());
    assert!(c.is_closed());

    // In a later read, before the handshake.
    let mut c = Client::new(config());
    drive_to_starttls(&mut c);
    let step = c.handle_input(b"220 go ahead\r\n").unwrap();
    assert_eq!(step.outcome, Outcome::Event(ClientEvent::StartTls));
    assert_eq!(c.handle_input(b"").unwrap().outcome, Outcome::Paused);
    assert_eq!(
        c.handle_input(b"2").unwrap_err(),
        ClientError::ResponseInjection
    );
    assert!(c.is_closed());
}

#[test]
fn after_tls_capabilities_are_forgotten() {
    let mut c = Client::new(config());
    drive_to_starttls(&mut c);
    assert!(c.has(Extension::Size));
    let step = c.handle_input(b"220 go ahead\r\n").unwrap();
    assert_eq!(step.outcome, Outcome::Event(ClientEvent::StartTls));
    assert!(!c.is_tls());
    c.tls_established().unwrap();
    assert!(c.is_tls());
    assert!(c.capabilities().is_none());
    assert!(c.extensions().is_empty());
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"EHLO client.example.net\r\n");
    // A second call is a usage error and changes nothing.
    assert_eq!(
        c.tls_established(),
        Err(ClientError::Usage(UsageError::NoTlsRequested))
    );
    assert!(!c.has_transmit());
}

// ----- AUTH -----

fn auth_run(
    caps: &str,
    creds: AuthCredentials,
    forced: Option<SaslMechanism>,
    server: &[&str],
) -> client_support::Run {
    let mut parts = vec![GREET.to_string(), ehlo(&["PIPELINING", caps])];
    parts.extend(server.iter().map(|s| s.to_string()));
    let s = parts.concat().into_bytes();
    let mut actor = Actor::new(vec![]);
    actor.auth = Some((creds, forced));
    run_split_invariant(plain().with_auth_without_tls(true), &actor, &[&s])
}

#[test]
fn auth_prefers_plain_with_initial_response() {
    let run = auth_run(
        "AUTH LOGIN PLAIN CRAM-MD5",
        AuthCredentials::password("alice", "s3cret"),
        None,
        &["235 2.7.0 Authentication successful\r\n", BYE],
    );
    assert!(run
        .wire_str()
        .contains("AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"));
    assert!(run.has_event("Authenticated"));
}

#[test]
fn auth_login_answers_334_challenges() {
    let run = auth_run(
        "AUTH LOGIN",
        AuthCredentials::password("alice", "s3cret"),
        None,
        &[
            "334 VXNlcm5hbWU6\r\n",
            "334 UGFzc3dvcmQ6\r\n",
            "235 2.7.0 ok\r\n",
            BYE,
        ],
    );
    assert!(run
        .wire_str()
        .contains("AUTH LOGIN\r\nYWxpY2U=\r\nczNjcmV0\r\nQUIT\r\n"));
    assert!(run.has_event("Authenticated"));
}

#[test]
fn auth_forced_mechanism_is_used() {
    let run = auth_run(
        "AUTH PLAIN LOGIN",
        AuthCredentials::password("alice", "s3cret"),
        Some(SaslMechanism::Login),
        &[
            "334 VXNlcm5hbWU6\r\n",
            "334 UGFzc3dvcmQ6\r\n",
            "235 ok\r\n",
            BYE,
        ],
    );
    assert!(run.wire_str().contains("AUTH LOGIN\r\n"));
}

#[test]
fn auth_oauth_prefers_oauthbearer_then_xoauth2() {
    let run = auth_run(
        "AUTH XOAUTH2 OAUTHBEARER PLAIN",
        AuthCredentials::oauth2("u@example.org", "tok"),
        None,
        &["235 ok\r\n", BYE],
    );
    // n,a=u@example.org,^Aauth=Bearer tok^A^A
    assert!(run
        .wire_str()
        .contains("AUTH OAUTHBEARER bixhPXVAZXhhbXBsZS5vcmcsAWF1dGg9QmVhcmVyIHRvawEB\r\n"));

    let run = auth_run(
        "AUTH XOAUTH2 PLAIN",
        AuthCredentials::oauth2("u@example.org", "tok"),
        None,
        &[
            "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n",
            "535 5.7.8 Username and Password not accepted\r\n",
            BYE,
        ],
    );
    // user=u@example.org^Aauth=Bearer tok^A^A, then an empty response to
    // the error challenge.
    assert!(run
        .wire_str()
        .contains("AUTH XOAUTH2 dXNlcj11QGV4YW1wbGUub3JnAWF1dGg9QmVhcmVyIHRvawEB\r\n\r\nQUIT\r\n"));
    assert!(run.has_event("AuthFailed"));
    assert!(run.events.iter().any(|e| e.contains("InvalidCredentials")));
}

#[test]
fn auth_failures_are_classified() {
    for (reply, failure) in [
        (
            "535 5.7.8 bad credentials\r\n",
            AuthFailure::InvalidCredentials,
        ),
        (
            "534 5.7.9 mechanism too weak\r\n",
            AuthFailure::MechanismTooWeak,
        ),
        (
            "538 5.7.11 encryption required\r\n",
            AuthFailure::EncryptionRequired,
        ),
        ("454 4.7.0 try later\r\n", AuthFailure::Temporary),
    ] {
        let run = auth_run(
            "AUTH PLAIN",
            AuthCredentials::password("alice", "s3cret"),
            None,
            &[reply, BYE],
        );
        let ev = run
            .events
            .iter()
            .find(|e| e.starts_with("AuthFailed"))
            .unwrap();
        assert!(ev.ends_with(&format!("failure: {failure:?} }}")), "{ev}");
        assert!(run.closed);
    }
}

#[test]
fn auth_cancel_sends_star() {
    let s = script(&[
        GREET,
        &ehlo(&["AUTH LOGIN"]),
        "334 VXNlcm5hbWU6\r\n",
        "501 5.0.0 cancelled\r\n",
        BYE,
    ]);
    let mut actor = Actor::new(vec![]);
    actor.auth = Some((AuthCredentials::password("alice", "s3cret"), None));
    actor.cancel_auth = true;
    let run = run_split_invariant(plain().with_auth_without_tls(true), &actor, &[&s]);
    assert!(run.wire_str().contains("AUTH LOGIN\r\n*\r\nQUIT\r\n"));
    assert!(run.events.iter().any(|e| e.contains("failure: Cancelled")));
}

#[test]
fn auth_refused_locally_without_tls_or_common_mechanism() {
    let input = script(&[GREET, &ehlo(&["AUTH CRAM-MD5"])]);
    let mut c = Client::new(plain());
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    assert_eq!(
        c.authenticate(AuthCredentials::password("a", "b"), None),
        Err(ClientError::Usage(UsageError::AuthNeedsTls))
    );
    let mut c2 = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c2, &mut buf);
    c2.poll_transmit(&mut Vec::new());
    assert_eq!(
        c2.authenticate(AuthCredentials::password("a", "b"), None),
        Err(ClientError::Usage(UsageError::NoMechanism))
    );
    // A forced mechanism that does not suit the credentials.
    assert_eq!(
        c2.authenticate(
            AuthCredentials::password("a", "b"),
            Some(SaslMechanism::XOAuth2)
        ),
        Err(ClientError::Usage(UsageError::NoMechanism))
    );
    assert!(!c2.has_transmit());
    assert!(c2.is_idle());
}

/// Password credentials with an authorization identity (RFC 4616 §2
/// `authzid`, "act as this identity") go by PLAIN only: LOGIN has no
/// field for it, and falling back to LOGIN would authenticate the session
/// as the user itself, not as the identity asked for, without a word. The
/// client refuses instead, as for any mechanism that does not suit the
/// credentials, and sends nothing.
#[test]
fn auth_with_an_authzid_never_falls_back_to_login() {
    let acting = || AuthCredentials::Password {
        authzid: Some("bob".to_owned()),
        username: "alice".to_owned(),
        password: smtp_proto::sasl::Secret::new("s3cret"),
    };
    assert_eq!(acting().mechanisms(), &[SaslMechanism::Plain]);
    let input = script(&[GREET, &ehlo(&["AUTH LOGIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    for forced in [None, Some(SaslMechanism::Login)] {
        assert_eq!(
            c.authenticate(acting(), forced),
            Err(ClientError::Usage(UsageError::NoMechanism)),
            "{forced:?}"
        );
        assert!(!c.has_transmit());
        assert!(c.is_idle());
    }

    // Where PLAIN is offered, it carries the authzid: bob\0alice\0s3cret.
    let run = auth_run(
        "AUTH LOGIN PLAIN",
        acting(),
        None,
        &["235 2.7.0 Authentication successful\r\n", BYE],
    );
    assert!(run
        .wire_str()
        .contains("AUTH PLAIN Ym9iAGFsaWNlAHMzY3JldA==\r\n"));

    // An empty authzid is no authzid (as `plain_response` reads it), and
    // one that names the user acts as the user: LOGIN may still serve.
    for authzid in ["", "alice"] {
        let own = AuthCredentials::Password {
            authzid: Some(authzid.to_owned()),
            username: "alice".to_owned(),
            password: smtp_proto::sasl::Secret::new("s3cret"),
        };
        assert_eq!(
            own.mechanisms(),
            &[SaslMechanism::Plain, SaslMechanism::Login]
        );
        let run = auth_run(
            "AUTH LOGIN",
            own,
            None,
            &[
                "334 VXNlcm5hbWU6\r\n",
                "334 UGFzc3dvcmQ6\r\n",
                "235 2.7.0 ok\r\n",
                BYE,
            ],
        );
        assert!(run
            .wire_str()
            .contains("AUTH LOGIN\r\nYWxpY2U=\r\nczNjcmV0\r\nQUIT\r\n"));
    }
}

#[test]
fn credentials_never_appear_in_debug_output() {
    let creds = AuthCredentials::password("alice", "hunter2");
    assert!(!format!("{creds:?}").contains("hunter2"));
    let tok = AuthCredentials::oauth2("alice", "ya29.secret-token");
    assert!(!format!("{tok:?}").contains("ya29"));

    let input = script(&[GREET, &ehlo(&["AUTH PLAIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    c.authenticate(creds, None).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"));
    // The base64 of the PLAIN response is not shown either.
    assert!(!dbg.contains("aHVudGVyMg"));
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n");
}

// ----- MAIL parameters and local refusals -----

fn dsn_job() -> Job {
    job().with_envelope(|e| {
        let mut e = e.with_size(100).with_body(BodyType::EightBitMime).with_dsn(
            Some(Ret::Hdrs),
            Some(EnvId::new(XText::new("QQ314159").unwrap()).unwrap()),
        );
        e.recipients[0].notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        e.recipients[0].orcpt = Some(
            Orcpt::new(
                Atom::new("rfc822").unwrap(),
                XText::new("bob@example.org").unwrap(),
            )
            .unwrap(),
        );
        e
    })
}

/// The sample job with an ORCPT address in UTF-8 (RFC 6533).
fn utf8_orcpt_job() -> Job {
    job().with_envelope(|mut e| {
        let addr = smtp_proto::command::Unitext::new("用户@example.com").unwrap();
        e.recipients[0].orcpt = Some(Orcpt::utf8(addr).unwrap());
        e
    })
}

/// One accepted message to a server with the capabilities `caps`.
fn one_message(caps: &[&str], j: Job) -> client_support::Run {
    let s = script(&[GREET, &ehlo(caps), OK, OK, "354 go\r\n", OK, BYE]);
    run_split_invariant(plain(), &Actor::new(vec![j]), &[&s])
}

#[test]
fn mail_sends_only_advertised_parameters() {
    let run = one_message(&["SIZE 1000", "8BITMIME", "DSN"], dsn_job());
    let w = run.wire_str();
    assert!(
        w.contains(
            "MAIL FROM:<alice@example.net> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=QQ314159\r\n"
        ),
        "{w}"
    );
    assert!(
        w.contains(
            "RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.org\r\n"
        ),
        "{w}"
    );

    // With SMTPUTF8 and DSN, an ORCPT address in UTF-8 is sent with
    // SMTPUTF8 on MAIL; without DSN no ORCPT goes, so it needs nothing.
    let run = one_message(&["DSN", "SMTPUTF8"], utf8_orcpt_job());
    let w = run.wire_str();
    assert!(
        w.contains("MAIL FROM:<alice@example.net> SMTPUTF8\r\nRCPT TO:<bob@example.org> ORCPT=utf-8;用户@example.com\r\n"),
        "{w}"
    );
    let run = one_message(&["8BITMIME"], utf8_orcpt_job());
    assert!(run
        .wire_str()
        .contains("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n"));

    // The same message to a server with only 8BITMIME: no SIZE, no DSN.
    let run = one_message(&["8BITMIME"], dsn_job());
    let w = run.wire_str();
    assert!(
        w.contains("MAIL FROM:<alice@example.net> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\n"),
        "{w}"
    );
}

fn refused_with(caps: &[&str], j: Job) -> client_support::Run {
    let s = script(&[GREET, &ehlo(caps), BYE]);
    run_split_invariant(plain(), &Actor::new(vec![j]), &[&s])
}

#[test]
fn messages_needing_missing_extensions_are_refused_locally() {
    let cases: Vec<(Vec<&str>, Job, Refusal)> = vec![
        (
            vec!["PIPELINING"],
            job().with_envelope(|e| e.with_body(BodyType::EightBitMime)),
            Refusal::EightBitMime,
        ),
        (
            vec!["8BITMIME"],
            Job::new("jöran@example.net", &["bob@example.org"], &[b"x"]),
            Refusal::SmtpUtf8,
        ),
        (
            vec!["8BITMIME"],
            job().with_envelope(|e| e.with_smtputf8(true)),
            Refusal::SmtpUtf8,
        ),
        // An ORCPT address in UTF-8 (RFC 6533) goes only with SMTPUTF8.
        (vec!["DSN"], utf8_orcpt_job(), Refusal::SmtpUtf8),
        (
            vec!["BINARYMIME"],
            job().with_envelope(|e| e.with_body(BodyType::BinaryMime)),
            Refusal::BinaryMime,
        ),
        (
            vec!["REQUIRETLS"],
            job().with_envelope(|e| e.with_require_tls(true)),
            Refusal::RequireTls,
        ),
        (
            vec!["SIZE 50"],
            job().with_envelope(|e| e.with_size(51)),
            Refusal::TooLarge {
                size: 51,
                limit: 50,
            },
        ),
        // RFC 9422 §4.2 and §4.3: over RCPTMAX or RCPTDOMAINMAX.
        (
            vec!["LIMITS RCPTMAX=2"],
            Job::new("a@x.org", &["b@y.org", "c@y.org", "d@y.org"], &[b"x"]),
            Refusal::TooManyRecipients { count: 3, limit: 2 },
        ),
        (
            vec!["LIMITS RCPTDOMAINMAX=1 RCPTMAX=10"],
            Job::new("a@x.org", &["b@y.org", "c@Y.ORG", "d@z.org"], &[b"x"]),
            Refusal::TooManyDomains { count: 2, limit: 1 },
        ),
    ];
    for (caps, j, refusal) in cases {
        let run = refused_with(&caps, j);
        assert_eq!(run.refusals, [ClientError::Refused(refusal)], "{caps:?}");
        // Nothing of the message was sent.
        assert_eq!(run.wire_str(), "EHLO client.example.net\r\nQUIT\r\n");
        assert!(run.summaries.is_empty());
    }
}

#[test]
fn envelopes_within_the_servers_limits_are_sent() {
    // RCPTMAX=2 and RCPTDOMAINMAX=1: two recipients in one domain, whose
    // case differs, are within both.
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "LIMITS RCPTMAX=2 RCPTDOMAINMAX=1"]),
        OK,
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let j = Job::new("a@x.org", &["b@y.org", "c@Y.org"], &[b"x"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(run.refusals.is_empty(), "{:?}", run.refusals);
    assert!(run
        .wire_str()
        .contains("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@Y.org>\r\nDATA\r\n"));
    assert!(run.summaries[0].all_delivered());
}

#[test]
fn transactions_past_mailmax_are_refused_locally() {
    // RFC 9422 §4.1: MAILMAX counts every MAIL on the connection, accepted
    // or not. The first MAIL is refused by the server and still counts, the
    // second is sent, the third is refused before anything is written.
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "LIMITS MAILMAX=2"]),
        "451 4.3.0 try later\r\n",
        "503 5.5.1 no sender\r\n",
        "503 5.5.1 no sender\r\n",
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let jobs = vec![
        Job::new("a@x.org", &["b@y.org"], &[b"x"]),
        Job::new("a@x.org", &["c@y.org"], &[b"x"]),
        Job::new("a@x.org", &["d@y.org"], &[b"x"]),
    ];
    let run = run_split_invariant(plain(), &Actor::new(jobs), &[&s]);
    assert_eq!(
        run.refusals,
        [ClientError::Refused(Refusal::TransactionLimit { limit: 2 })]
    );
    let w = run.wire_str();
    assert_eq!(w.matches("MAIL FROM:").count(), 2, "{w}");
    assert!(!w.contains("d@y.org"), "{w}");
    assert!(w.ends_with("QUIT\r\n"), "{w}");
    assert_eq!(run.summaries.len(), 2);
    assert!(run.summaries[1].all_delivered());
}

#[test]
fn limits_are_read_from_ehlo_and_forgotten_with_it() {
    use smtp_proto::reply::Limits;
    let mut client = Client::new(plain());
    assert_eq!(client.limits(), Limits::default());
    let input = script(&[
        GREET,
        &ehlo(&["LIMITS RCPTMAX=5 MAILMAX=3 RCPTDOMAINMAX=2"]),
    ]);
    let mut pos = 0;
    while !client.is_idle() {
        client.poll_transmit(&mut Vec::new());
        let step = client.handle_input(&input[pos..]).unwrap();
        assert!(step.consumed > 0 || !matches!(step.outcome, Outcome::NeedInput));
        pos += step.consumed;
    }
    assert_eq!(
        client.limits(),
        Limits {
            rcpt_max: Some(5),
            mail_max: Some(3),
            rcpt_domain_max: Some(2),
        }
    );
    // A server that answers EHLO with 502 gets HELO, and a HELO session
    // has no extensions and no limits.
    let mut client = Client::new(plain());
    // Each reply in its own read, once the command it answers is written.
    for read in [GREET, "502 5.5.1 no EHLO here\r\n", OK] {
        client.poll_transmit(&mut Vec::new());
        let step = client.handle_input(read.as_bytes()).unwrap();
        assert_eq!(step.consumed, read.len());
    }
    assert!(client.is_idle());
    assert_eq!(client.limits(), Limits::default());

    // STARTTLS forgets them with the other capabilities (RFC 3207 §4.2),
    // and the EHLO after it gives the limits from then on.
    let mut client = Client::new(config());
    let input = script(&[GREET, &ehlo(&["STARTTLS", "LIMITS RCPTMAX=5 MAILMAX=3"])]);
    let mut buf = &input[..];
    loop {
        client.poll_transmit(&mut Vec::new());
        let step = client.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        if step.outcome == Outcome::NeedInput {
            break;
        }
    }
    assert_eq!(client.limits().mail_max, Some(3));
    client.poll_transmit(&mut Vec::new());
    let step = client.handle_input(b"220 go ahead\r\n").unwrap();
    assert_eq!(step.outcome, Outcome::Event(ClientEvent::StartTls));
    client.tls_established().unwrap();
    assert_eq!(client.limits(), Limits::default());
    let after = ehlo(&["LIMITS RCPTMAX=7"]);
    let mut buf = after.as_bytes();
    until_idle(&mut client, &mut buf);
    assert_eq!(
        client.limits(),
        Limits {
            rcpt_max: Some(7),
            ..Limits::default()
        }
    );
}

#[test]
fn smtputf8_is_sent_when_offered() {
    let s = script(&[
        GREET,
        &ehlo(&["SMTPUTF8", "8BITMIME"]),
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let j = Job::new("jöran@example.net", &["bob@exämple.org"], &[b"x"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(run
        .wire_str()
        .contains("MAIL FROM:<jöran@example.net> SMTPUTF8\r\nRCPT TO:<bob@exämple.org>\r\n"));
}

// ----- recipients, pipelining, DATA -----

#[test]
fn per_recipient_results_and_transaction_goes_on_with_accepted() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "ENHANCEDSTATUSCODES"]),
        "250 2.1.0 Sender ok\r\n",
        "250 2.1.5 Recipient ok\r\n",
        "550 5.1.1 <c@y.org>: Recipient address rejected\r\n",
        "450 4.2.1 <d@y.org>: try again later\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
        "250 2.0.0 Ok: queued as 3F1A2B\r\n",
        BYE,
    ]);
    let j = Job::new(
        "a@x.org",
        &["b@y.org", "c@y.org", "d@y.org"],
        &[b"hello\r\n"],
    );
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(run.has_event("Sender"));
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Recipient { index: 1") && e.ends_with("verdict: Permanent }")));
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Recipient { index: 2") && e.ends_with("verdict: RetryLater }")));
    let msg = run
        .events
        .iter()
        .find(|e| e.starts_with("Message"))
        .unwrap();
    assert!(msg.contains("queued as 3F1A2B") && msg.ends_with("verdict: Success }"));
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(sum.recipients[2].verdict(), Verdict::RetryLater);
    assert!(!sum.all_delivered());
}

#[test]
fn pipelining_sends_mail_rcpts_and_data_in_one_write() {
    let input = script(&[GREET, &ehlo(&["PIPELINING"])]);
    let j = Job::new("a@x.org", &["b@y.org", "c@y.org"], &[b"x"]);
    for (pipelining, expect) in [
        (
            true,
            "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n",
        ),
        (false, "MAIL FROM:<a@x.org>\r\n"),
    ] {
        let mut c = Client::new(plain().with_pipelining(pipelining));
        let mut buf = &input[..];
        until_idle(&mut c, &mut buf);
        c.poll_transmit(&mut Vec::new());
        c.send_mail(&j.envelope).unwrap();
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }
}

#[test]
fn without_pipelining_commands_wait_for_replies() {
    let s = script(&[
        GREET,
        &ehlo(&["8BITMIME"]),
        OK,
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let j = Job::new("a@x.org", &["b@y.org", "c@y.org"], &[b"x"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(run.summaries[0].all_delivered());
    assert!(run.wire_str().contains("DATA\r\nx\r\n.\r\nQUIT\r\n"));
}

#[test]
fn all_recipients_rejected_without_pipelining_skips_data_and_rsets_before_next() {
    let s = script(&[
        GREET,
        &ehlo(&["8BITMIME"]),
        OK,
        "550 5.1.1 no\r\n",
        OK,
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let j1 = Job::new("a@x.org", &["nobody@y.org"], &[b"x"]);
    let j2 = Job::new("a@x.org", &["b@y.org"], &[b"y"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j1, j2]), &[&s]);
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@y.org>\r\n\
         RSET\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n"
    );
    assert_eq!(run.summaries.len(), 2);
    assert_eq!(run.summaries[0].message, None);
    assert_eq!(run.summaries[0].recipients[0].verdict(), Verdict::Permanent);
    assert!(run.summaries[1].all_delivered());
}

#[test]
fn rfc2920_all_rcpts_failed_but_354_ends_with_lone_dot() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        "550 5.1.1 no\r\n",
        "553 5.1.3 bad\r\n",
        "354 go ahead\r\n",
        "554 5.5.1 no valid recipients\r\n",
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let j1 = Job::new("a@x.org", &["n1@y.org", "n2@y.org"], &[b"secret body"]);
    let j2 = Job::new("a@x.org", &["b@y.org"], &[b"y"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j1, j2]), &[&s]);
    let w = run.wire_str();
    assert!(
        w.contains("RCPT TO:<n2@y.org>\r\nDATA\r\n.\r\nMAIL FROM:<a@x.org>\r\n"),
        "{w}"
    );
    assert!(!w.contains("secret body"));
    // The empty message is not reported as the message's result.
    assert_eq!(run.count("Message"), 1);
    assert_eq!(run.count("SendBody"), 1);
    let first = &run.summaries[0];
    assert_eq!(first.message, None);
    assert_eq!(first.delivered().count(), 0);
    assert!(run.summaries[1].all_delivered());
}

#[test]
fn mail_rejected_with_pipelining_drains_the_group() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        "553 5.7.1 sender rejected\r\n",
        "503 5.5.1 need MAIL\r\n",
        "503 5.5.1 need MAIL\r\n",
        BYE,
    ]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Sender") && e.ends_with("Permanent }")));
    let sum = &run.summaries[0];
    assert_eq!(sum.sender, Some(Verdict::Permanent));
    assert_eq!(sum.message, None);
    assert!(run.wire_str().ends_with("DATA\r\nQUIT\r\n"));
    assert!(run.closed);
}

/// MAIL refused with a temporary 451 in a pipelined group: the server
/// answers the RCPT with 503 (no MAIL in effect). That 503 only echoes the
/// MAIL failure (RFC 5321 §4.2.1): the recipient is retried later, not
/// bounced, and the RCPT reply stays visible in `rcpt`.
#[test]
fn mail_451_pipelined_leaves_every_recipient_to_retry_despite_the_503s() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        "451 4.7.1 greylisted, try later\r\n",
        "503 5.5.1 need MAIL first\r\n",
        "503 5.5.1 need MAIL first\r\n",
        "503 5.5.1 need MAIL first\r\n",
        BYE,
    ]);
    let j = job_to(&["bob@example.org", "carol@example.org"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    let sum = &run.summaries[0];
    assert_eq!(sum.sender, Some(Verdict::RetryLater));
    assert_eq!(sum.message, None);
    for r in &sum.recipients {
        assert_eq!(r.verdict(), Verdict::RetryLater, "{sum:?}");
        assert_eq!(r.rcpt, Some(Verdict::Permanent), "the 503 is kept");
        assert_eq!(r.delivery, Some(Verdict::RetryLater));
        assert!(!r.is_delivered());
    }
    assert!(run.has_event("Recipient { index: 1"));
}

/// MAIL refused with 550 without PIPELINING: no RCPT is sent, and every
/// recipient is bounced with the MAIL verdict.
#[test]
fn mail_550_without_pipelining_bounces_every_recipient() {
    let s = script(&[GREET, &ehlo(&[]), "550 5.7.1 sender blocked\r\n", BYE]);
    let j = job_to(&["bob@example.org", "carol@example.org"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(!run.wire_str().contains("RCPT"));
    let sum = &run.summaries[0];
    assert_eq!(sum.sender, Some(Verdict::Permanent));
    for r in &sum.recipients {
        assert_eq!(r.verdict(), Verdict::Permanent, "{sum:?}");
        assert_eq!(r.rcpt, None, "never sent");
    }
}

/// DATA refused with 554 after 250 to MAIL and RCPT (RFC 5321 §4.2.1:
/// 5yz, do not repeat): the message verdict is every accepted
/// recipient's; a refused RCPT keeps its own. In LMTP the one DATA reply
/// decides for every accepted recipient too.
#[test]
fn data_554_is_every_accepted_recipients_verdict() {
    for protocol in [Protocol::Smtp, Protocol::Lmtp] {
        let s = script(&[
            GREET,
            &ehlo(&["PIPELINING"]),
            OK,
            OK,
            "450 4.2.1 mailbox busy\r\n",
            OK,
            "554 5.7.1 message refused by policy\r\n",
            BYE,
        ]);
        let j = job_to(&["bob@example.org", "carol@example.org", "dave@example.org"]);
        let cfg = plain().with_protocol(protocol);
        let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
        let sum = &run.summaries[0];
        assert_eq!(sum.message, Some(Verdict::Permanent));
        assert_eq!(sum.recipients[0].verdict(), Verdict::Permanent, "{sum:?}");
        assert_eq!(sum.recipients[0].rcpt, Some(Verdict::Success));
        assert_eq!(sum.recipients[1].verdict(), Verdict::RetryLater, "{sum:?}");
        assert_eq!(sum.recipients[1].delivery, None);
        assert_eq!(sum.recipients[2].verdict(), Verdict::Permanent, "{sum:?}");
        assert_eq!(sum.delivered().count(), 0);
    }
}

/// The refusal of the message after the body is every accepted
/// recipient's verdict.
#[test]
fn final_reply_refusal_is_every_accepted_recipients_verdict() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        OK,
        OK,
        "354 go\r\n",
        "554 5.6.0 content rejected\r\n",
        BYE,
    ]);
    let j = job_to(&["bob@example.org", "carol@example.org"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    let sum = &run.summaries[0];
    assert_eq!(sum.message, Some(Verdict::Permanent));
    assert!(sum
        .recipients
        .iter()
        .all(|r| r.verdict() == Verdict::Permanent && r.rcpt == Some(Verdict::Success)));
}

#[test]
fn data_refused_is_the_message_verdict_and_rset_follows() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        OK,
        "451 4.3.0 try again\r\n",
        OK,
        OK,
        OK,
        "354 go\r\n",
        OK,
        BYE,
    ]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job(), job()]), &[&s]);
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Message") && e.ends_with("RetryLater }")));
    assert_eq!(run.summaries[0].message, Some(Verdict::RetryLater));
    assert_eq!(
        run.summaries[0].recipients[0].verdict(),
        Verdict::RetryLater
    );
    assert!(run.wire_str().contains("DATA\r\nRSET\r\nMAIL FROM:"));
}

#[test]
fn data_body_is_dot_stuffed_and_line_ends_made_crlf() {
    let s = one_message_script(OK);
    let j = Job::new(
        "a@x.org",
        &["b@y.org"],
        &[b".a\r\n", b"b\n.", b"c\r", b"\n..d", b"\r\n.\r\n", b"e"],
    );
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(run
        .wire_str()
        .contains("DATA\r\n..a\r\nb\r\n..c\r\n...d\r\n..\r\ne\r\n.\r\nQUIT\r\n"));
}

#[test]
fn four_hundreds_and_five_hundreds_are_classified() {
    for (final_reply, verdict) in [
        ("250 2.0.0 Ok: queued as ABC\r\n", Verdict::Success),
        (
            "452 4.3.1 Insufficient system storage\r\n",
            Verdict::RetryLater,
        ),
        ("554 5.7.1 Message rejected as spam\r\n", Verdict::Permanent),
    ] {
        let s = one_message_script(final_reply);
        let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
        assert_eq!(run.summaries[0].message, Some(verdict));
        assert_eq!(run.summaries[0].recipients[0].verdict(), verdict);
        let ev = run
            .events
            .iter()
            .find(|e| e.starts_with("Message"))
            .unwrap();
        assert!(ev.contains(final_reply.trim_end()), "{ev}");
    }
}

/// The server accepts the message with a 250 whose line is 600 octets,
/// over the 512 of RFC 5321 §4.5.3.1.5 (§4.5.3.1 asks for no such limits
/// where they can be avoided): the default reply limits take it, so the
/// delivered message is reported delivered and not sent again. A client
/// configured for the strict 512 refuses the line.
#[test]
fn a_600_octet_final_reply_still_reports_the_message_delivered() {
    let long = format!("250 2.0.0 Ok: queued as {}\r\n", "X".repeat(574));
    assert_eq!(long.len(), 600);
    let s = one_message_script(&long);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert_eq!(run.error, None);
    assert!(run.summaries[0].all_delivered(), "{:?}", run.events);
    assert!(run.has_event("Message"));

    let strict = plain()
        .with_reply_limits(smtp_proto::reply::DecoderConfig::default().with_max_line_len(512));
    let run = client_support::run_with(strict, &Actor::new(vec![job()]), &[&s], &|_| Vec::new());
    assert!(
        matches!(run.error, Some(ClientError::BadReply(_))),
        "{:?}",
        run.error
    );
    assert!(run.summaries.is_empty());
}

#[test]
fn several_transactions_then_quit() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        OK,
        "354 go\r\n",
        "250 2.0.0 queued as A\r\n",
        OK,
        OK,
        "354 go\r\n",
        "250 2.0.0 queued as B\r\n",
        OK,
        OK,
        "354 go\r\n",
        "250 2.0.0 queued as C\r\n",
        BYE,
    ]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job(), job(), job()]), &[&s]);
    assert_eq!(run.summaries.len(), 3);
    assert!(run.summaries.iter().all(|s| s.all_delivered()));
    assert_eq!(run.wire_str().matches("MAIL FROM:").count(), 3);
    assert!(!run.wire_str().contains("RSET"));
    assert!(run.wire_str().ends_with("QUIT\r\n"));
    for q in ["queued as A", "queued as B", "queued as C"] {
        assert!(run.events.iter().any(|e| e.contains(q)));
    }
}

#[test]
fn service_closing_mid_transaction_ends_the_session() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        OK,
        "421 4.4.2 timeout, closing\r\n",
    ]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    // The 421 carries the transaction's summary: nothing delivered, the
    // recipient to retry later.
    assert!(run.events.last().unwrap().starts_with("ServiceClosing"));
    assert!(!run.has_event("TransactionEnd"));
    assert_eq!(run.summaries.len(), 1);
    let sum = &run.summaries[0];
    assert_eq!(sum.sender, Some(Verdict::Success));
    assert_eq!(sum.recipients[0].verdict(), Verdict::RetryLater);
    assert_eq!(sum.delivered().count(), 0);
    assert!(run.closed);
    assert!(!run.wire_str().contains("QUIT"));

    // With no transaction in progress, a 421 carries no summary.
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), "421 4.3.2 shutting down\r\n"]);
    let mut actor = Actor::new(vec![]);
    actor.quit = false;
    let run = run_split_invariant(plain(), &actor, &[&s]);
    assert!(run.events.last().unwrap().ends_with("transaction: None }"));
    assert!(run.summaries.is_empty());
}

/// LMTP (RFC 2033 §4.2): each recipient's reply after the body is final.
/// A 421 after the first one must not lose it: the summary says recipient
/// 0 has the message, so a retry goes to recipient 1 only.
#[test]
fn lmtp_421_after_a_partial_delivery_keeps_the_delivered_recipient() {
    let s = script(&[
        "220 lmtp.example.org LMTP\r\n",
        &ehlo(&["PIPELINING"]),
        OK,
        OK,
        OK,
        "354 go\r\n",
        "250 2.0.0 <a> delivered\r\n",
        "421 4.3.2 shutting down\r\n",
    ]);
    let j = Job::new("a@x.org", &["a@y.org", "b@y.org"], &[b"hi\r\n"]);
    let cfg = plain().with_protocol(Protocol::Lmtp);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    let n = run.events.len();
    assert!(run.events[n - 2].starts_with("Message { recipient: Some(0)"));
    assert!(run.events[n - 1].starts_with("ServiceClosing"));
    assert_eq!(run.summaries.len(), 1);
    let sum = &run.summaries[0];
    assert_eq!(sum.delivered().collect::<Vec<_>>(), [0]);
    assert_eq!(sum.recipients[1].verdict(), Verdict::RetryLater);
    assert!(run.closed);
}

// ----- BDAT -----

#[test]
fn bdat_chunks_are_not_dot_stuffed_but_get_crlf_line_ends() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "CHUNKING"]),
        OK,
        OK,
        "250 2.0.0 5 octets\r\n",
        "250 2.0.0 3 octets\r\n",
        "250 2.0.0 Ok: queued as Z\r\n",
        BYE,
    ]);
    let j = Job::new("a@x.org", &["b@y.org"], &[b".a\n\r", b"\n..\n", b"end"]);
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    let w = run.wire_str();
    assert!(!w.contains("DATA"));
    // No dot-stuffing, but CRLF line ends (RFC 5321 §2.3.8): the bare LF
    // and the CR that the next piece's LF completes become CRLF, the last
    // line is ended, and each size counts the bytes sent.
    assert!(
        w.contains(
            "RCPT TO:<b@y.org>\r\nBDAT 6\r\n.a\r\n\r\nBDAT 4\r\n..\r\nBDAT 5 LAST\r\nend\r\nQUIT\r\n"
        ),
        "{w}"
    );
    assert!(run.summaries[0].all_delivered());
    assert!(run.events.iter().any(|e| e.contains("queued as Z")));
}

#[test]
fn bdat_without_pipelining_waits_for_each_chunk_reply() {
    let s = script(&[
        GREET,
        &ehlo(&["CHUNKING"]),
        OK,
        OK,
        "250 2.0.0 2 octets\r\n",
        "250 2.0.0 Ok: queued\r\n",
        BYE,
    ]);
    let j = Job::new("a@x.org", &["b@y.org"], &[b"ab", b"cd"]);
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg.clone(), &Actor::new(vec![j]), &[&s]);
    assert_eq!(run.count("SendBody"), 2);
    assert!(run.wire_str().contains("BDAT 2\r\nabBDAT 4 LAST\r\ncd\r\n"));

    // Directly: a second chunk before the first is answered is refused.
    let input = script(&[GREET, &ehlo(&["CHUNKING"]), OK, OK]);
    let mut c = Client::new(cfg);
    let mut buf = &input[..];
    let j = Job::new("a@x.org", &["b@y.org"], &[]);
    let mut started = false;
    while !c.wants_body() {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        if c.is_idle() && !started {
            c.send_mail(&j.envelope).unwrap();
            started = true;
        }
    }
    c.send_body(b"ab").unwrap();
    assert_eq!(
        c.send_body(b"cd"),
        Err(ClientError::Usage(UsageError::NotInBody))
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert!(out.ends_with(b"BDAT 2\r\nab"));
}

#[test]
fn binarymime_uses_bdat_even_when_not_preferred() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "CHUNKING", "BINARYMIME"]),
        OK,
        OK,
        "250 2.0.0 queued\r\n",
        BYE,
    ]);
    let j = job().with_envelope(|e| e.with_body(BodyType::BinaryMime));
    let run = run_split_invariant(plain(), &Actor::new(vec![j.clone()]), &[&s]);
    let w = run.wire_str();
    assert!(w.contains("MAIL FROM:<alice@example.net> BODY=BINARYMIME\r\n"));
    assert!(w.contains("BDAT 18 LAST\r\nSubject: t\r\n\r\nhi\r\n"));

    let s = script(&[GREET, &ehlo(&["PIPELINING", "CHUNKING", "BINARYMIME"]), BYE]);
    let cfg = plain().with_chunking(ChunkingPolicy::Never);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    assert_eq!(run.refusals, [ClientError::Refused(Refusal::BinaryMime)]);
}

#[test]
fn bdat_chunk_refused_fails_the_message_and_rsets() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "CHUNKING"]),
        OK,
        OK,
        "552 5.3.4 message too big\r\n",
        "503 5.5.1 no transaction\r\n",
        OK,
        OK,
        "250 2.0.0 queued\r\n",
        BYE,
    ]);
    let j1 = Job::new("a@x.org", &["b@y.org"], &[b"aaaa", b"bbbb"]);
    let j2 = Job::new("a@x.org", &["b@y.org"], &[b"c"]);
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg, &Actor::new(vec![j1, j2]), &[&s]);
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Message") && e.contains("too big")));
    assert_eq!(run.summaries[0].message, Some(Verdict::Permanent));
    assert!(
        run.wire_str()
            .contains("BDAT 6 LAST\r\nbbbb\r\nRSET\r\nMAIL"),
        "{}",
        run.wire_str()
    );
    assert!(run.summaries[1].all_delivered());
}

/// RFC 5321 §2.3.8: a client sends CR and LF only as CRLF. With
/// `ChunkingPolicy::Prefer` a body that is not BINARYMIME goes out over
/// BDAT with the line ends it would get over DATA.
#[test]
fn prefer_bdat_sends_a_text_body_with_crlf_line_ends() {
    let s = script(&[GREET, &ehlo(&["PIPELINING", "CHUNKING"]), OK, OK, OK, BYE]);
    let j = Job::new(
        "alice@example.net",
        &["bob@example.org"],
        &[b"Subject: t\n\nhi\n"],
    );
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    let w = run.wire_str();
    assert!(
        w.contains("BDAT 18 LAST\r\nSubject: t\r\n\r\nhi\r\nQUIT"),
        "{w:?}"
    );
    assert!(!w.contains("t\n\nhi\n"), "bare LF on the wire: {w:?}");
    assert!(run.summaries[0].all_delivered());
}

/// A BINARYMIME body goes out byte for byte over BDAT (RFC 3030 §3), bare
/// CR and LF and a missing last line end included.
#[test]
fn binarymime_chunks_go_out_byte_for_byte() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "CHUNKING", "BINARYMIME"]),
        OK,
        OK,
        OK,
        OK,
        BYE,
    ]);
    let j = Job::new("a@x.org", &["b@y.org"], &[b"a\r", b"\nb\n\r\x00", b"c"])
        .with_envelope(|e| e.with_body(BodyType::BinaryMime));
    let run = run_split_invariant(plain(), &Actor::new(vec![j]), &[&s]);
    assert!(
        run.wire_str()
            .contains("BDAT 2\r\na\rBDAT 5\r\n\nb\n\r\x00BDAT 1 LAST\r\ncQUIT\r\n"),
        "{:?}",
        run.wire_str()
    );
}

/// A BDAT chunk refused with 552 (RFC 3030 §2: the transaction has
/// failed) is every accepted recipient's verdict, as the message's.
#[test]
fn bdat_chunk_refused_is_every_accepted_recipients_verdict() {
    let s = script(&[
        GREET,
        &ehlo(&["PIPELINING", "CHUNKING"]),
        OK,
        OK,
        "550 5.1.1 no such user\r\n",
        "552 5.3.4 message too big\r\n",
        "503 5.5.1 no transaction\r\n",
        BYE,
    ]);
    let j = Job::new(
        "alice@example.net",
        &["bob@example.org", "nobody@example.org"],
        &[b"Subject: t\r\n\r\n", b"hi\r\n"],
    );
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    assert!(
        run.wire_str().contains("BDAT 4 LAST\r\n"),
        "{}",
        run.wire_str()
    );
    let sum = &run.summaries[0];
    assert_eq!(sum.message, Some(Verdict::Permanent));
    assert_eq!(sum.recipients[0].verdict(), Verdict::Permanent, "{sum:?}");
    assert_eq!(sum.recipients[0].rcpt, Some(Verdict::Success));
    assert_eq!(sum.recipients[1].verdict(), Verdict::Permanent);
    assert_eq!(sum.recipients[1].delivery, None, "refused by its RCPT");
}

/// Drives a client with `cfg` through the envelope to its first
/// `SendBody`, the server's replies given by `replies`.
fn client_in_body(
    cfg: smtp_proto::client::ClientConfig,
    replies: &[&str],
    rcpts: &[&'static str],
) -> Client {
    let mut c = Client::new(cfg);
    let j = Job::new("a@x.org", rcpts, &[]);
    let input = script(replies);
    let mut buf = &input[..];
    for _ in 0..50 {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        match step.outcome {
            Outcome::Event(ClientEvent::Ready) => c.send_mail(&j.envelope).unwrap(),
            Outcome::Event(ClientEvent::SendBody) => break,
            _ => {}
        }
    }
    assert!(c.wants_body() && buf.is_empty());
    c.poll_transmit(&mut Vec::new());
    c
}

/// After a refused pipelined chunk (RFC 3030 §2: no more BDAT may be
/// sent), the replies to the chunks already sent are still due: the
/// client asks for input, not for a call, and refuses body calls; once
/// the replies are in, the transaction ends with its summary and the
/// client is idle.
#[test]
fn refused_pipelined_chunk_reads_the_replies_still_due() {
    let cfg = plain().with_chunking(ChunkingPolicy::Prefer);
    let mut c = client_in_body(
        cfg,
        &[GREET, &ehlo(&["PIPELINING", "CHUNKING"]), OK, OK],
        &["b@y.org"],
    );
    c.send_body(b"chunk one\r\n").unwrap();
    c.send_body(b"chunk two\r\n").unwrap();
    let mut wire = Vec::new();
    c.poll_transmit(&mut wire);
    assert!(String::from_utf8_lossy(&wire).contains("BDAT 11\r\nchunk one\r\nBDAT 11\r\n"));
    // The first chunk is refused; the second chunk's reply is not here yet.
    let step = c.handle_input(b"552 5.3.4 too big\r\n").unwrap();
    assert_eq!(step.consumed, 19);
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Message {
            verdict: Verdict::Permanent,
            ..
        })
    ));
    assert_eq!(c.handle_input(b"").unwrap().outcome, Outcome::NeedInput);
    assert!(!c.wants_body() && !c.is_idle());
    assert_eq!(
        c.send_body(b"more"),
        Err(ClientError::Usage(UsageError::NotInBody))
    );
    assert_eq!(c.end_body(), Err(ClientError::Usage(UsageError::NotInBody)));
    assert_eq!(c.quit(), Err(ClientError::Usage(UsageError::NotIdle)));
    assert_eq!(c.timeout(), Some(std::time::Duration::from_secs(180)));
    // The second chunk's reply ends the transaction.
    let step = c.handle_input(b"503 5.5.1 no transaction\r\n").unwrap();
    let Outcome::Event(ClientEvent::TransactionEnd(sum)) = step.outcome else {
        panic!("{:?}", step.outcome);
    };
    assert_eq!(sum.message, Some(Verdict::Permanent));
    assert_eq!(sum.recipients[0].verdict(), Verdict::Permanent);
    assert!(c.is_idle());
    c.quit().unwrap();
    c.poll_transmit(&mut wire);
    assert!(
        wire.ends_with(b"chunk two\r\nRSET\r\nQUIT\r\n")
            || wire.ends_with(b"chunk two\r\nQUIT\r\n")
    );
}

/// In LMTP a BDAT LAST sent after a chunk that is then refused is answered
/// once (503, RFC 3030 §2), not once per recipient: the client waits for
/// that one reply and ends the transaction.
#[test]
fn lmtp_refused_chunk_expects_one_reply_to_the_last_chunk() {
    let cfg = plain()
        .with_protocol(Protocol::Lmtp)
        .with_chunking(ChunkingPolicy::Prefer);
    let mut c = client_in_body(
        cfg,
        &[GREET, &ehlo(&["PIPELINING", "CHUNKING"]), OK, OK, OK],
        &["a@y.org", "b@y.org"],
    );
    c.send_body(b"one\r\n").unwrap();
    c.send_last(b"two\r\n").unwrap();
    c.poll_transmit(&mut Vec::new());
    let step = c.handle_input(b"552 5.3.4 too big\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Message { .. })
    ));
    assert_eq!(c.handle_input(b"").unwrap().outcome, Outcome::NeedInput);
    let step = c.handle_input(b"503 5.5.1 no transaction\r\n").unwrap();
    let Outcome::Event(ClientEvent::TransactionEnd(sum)) = step.outcome else {
        panic!("{:?}", step.outcome);
    };
    assert!(sum
        .recipients
        .iter()
        .all(|r| r.verdict() == Verdict::Permanent));
    assert!(c.is_idle());
}

#[test]
fn lmtp_with_bdat_reads_one_reply_per_recipient() {
    let s = script(&[
        "220 lmtp\r\n",
        &ehlo(&["PIPELINING", "CHUNKING"]),
        OK,
        OK,
        OK,
        "250 2.0.0 a ok\r\n",
        "250 2.0.0 b ok\r\n",
        BYE,
    ]);
    let j = Job::new("a@x.org", &["a@y.org", "b@y.org"], &[b"body"]);
    let cfg = plain()
        .with_protocol(Protocol::Lmtp)
        .with_chunking(ChunkingPolicy::Prefer);
    let run = run_split_invariant(cfg, &Actor::new(vec![j]), &[&s]);
    assert_eq!(run.count("Message"), 2);
    assert!(run.summaries[0].all_delivered());
}

// ----- usage errors, protocol errors, timeouts -----

#[test]
fn usage_errors_change_nothing() {
    let mut c = Client::new(plain());
    let j = job();
    assert_eq!(
        c.send_mail(&j.envelope),
        Err(ClientError::Usage(UsageError::NotIdle))
    );
    assert_eq!(c.quit(), Err(ClientError::Usage(UsageError::NotIdle)));
    assert_eq!(
        c.send_body(b"x"),
        Err(ClientError::Usage(UsageError::NotInBody))
    );
    assert_eq!(c.end_body(), Err(ClientError::Usage(UsageError::NotInBody)));
    assert_eq!(
        c.cancel_auth(),
        Err(ClientError::Usage(UsageError::NoAuthInProgress))
    );
    assert!(!c.has_transmit());
    let input = script(&[GREET, &ehlo(&["PIPELINING"])]);
    let mut buf = &input[..];
    let mut out = until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut out);
    assert_eq!(out, b"EHLO client.example.net\r\n");
    let empty = smtp_proto::client::Envelope::new(smtp_proto::command::ReversePath::Null);
    assert_eq!(
        c.send_mail(&empty),
        Err(ClientError::Usage(UsageError::NoRecipients))
    );
    assert!(!c.has_transmit());
    assert!(c.is_idle());
    c.send_mail(&j.envelope).unwrap();
    assert!(c.has_transmit());
}

#[test]
fn unexpected_and_malformed_replies_close_the_session() {
    let mut c = Client::new(plain());
    let input = script(&[GREET, &ehlo(&[])]);
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    match c.handle_input(b"250 unsolicited\r\n").unwrap_err() {
        ClientError::UnexpectedReply(r) => {
            assert_eq!(r.code(), smtp_proto::status::ReplyCode::OK);
            assert_eq!(r.text(), b"unsolicited");
        }
        e => panic!("{e:?}"),
    }
    assert!(c.is_closed());
    assert_eq!(c.handle_input(b"").unwrap().outcome, Outcome::Closed);

    let mut c = Client::new(plain());
    let err = c
        .handle_input(b"220-mx\r\n250 mixed codes\r\n")
        .unwrap_err();
    assert!(matches!(err, ClientError::BadReply(_)));
    assert!(c.is_closed());

    // An unsolicited 421 while idle is a shutdown notice, not an error.
    let mut c = Client::new(plain());
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    let step = c.handle_input(b"421 4.4.2 idle too long\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::ServiceClosing { .. })
    ));
    assert!(c.is_closed());
}

/// Drives `c` through one transaction and checks the timeout it reports
/// in each phase: the initial 220, MAIL, RCPT, DATA initiation, a data
/// block and DATA termination (idle after EHLO reports none).
fn assert_phase_timeouts(mut c: Client, want: [Option<std::time::Duration>; 6]) {
    let feed = |c: &mut Client, bytes: &[u8]| {
        let mut buf = bytes;
        loop {
            c.poll_transmit(&mut Vec::new());
            let step = c.handle_input(buf).unwrap();
            buf = &buf[step.consumed..];
            if matches!(step.outcome, Outcome::NeedInput | Outcome::Paused) {
                break;
            }
        }
        c.poll_transmit(&mut Vec::new());
    };
    assert_eq!(c.timeout(), want[0]); // initial 220
    feed(&mut c, script(&[GREET, &ehlo(&["8BITMIME"])]).as_slice());
    assert_eq!(c.timeout(), None); // idle
    c.send_mail(&job().envelope).unwrap();
    assert_eq!(c.timeout(), want[1]); // MAIL
    feed(&mut c, OK.as_bytes());
    assert_eq!(c.timeout(), want[2]); // RCPT
    feed(&mut c, OK.as_bytes());
    assert_eq!(c.timeout(), want[3]); // DATA initiation
    feed(&mut c, b"354 go\r\n");
    assert!(c.wants_body());
    assert_eq!(c.timeout(), want[4]); // data block
    c.send_last(b"x").unwrap();
    assert_eq!(c.timeout(), want[5]); // DATA termination
}

#[test]
fn timeouts_are_reported_per_phase() {
    let min = |m: u64| Some(std::time::Duration::from_secs(60 * m));
    assert_phase_timeouts(
        Client::new(plain()),
        [min(5), min(5), min(5), min(2), min(3), min(10)],
    );
}

/// Each phase reports its own configured timeout. The defaults give MAIL
/// and RCPT the same five minutes, so only distinct values show that the
/// reply to RCPT is timed as RCPT and not as MAIL.
#[test]
fn configured_timeouts_are_reported_each_for_its_own_phase() {
    use smtp_proto::session::Timeouts;
    use std::time::Duration;
    let mut t = Timeouts::default();
    t.initial = Duration::from_secs(1);
    t.mail = Duration::from_secs(2);
    t.rcpt = Duration::from_secs(3);
    t.data_init = Duration::from_secs(4);
    t.data_block = Duration::from_secs(5);
    t.data_termination = Duration::from_secs(6);
    let want = [1, 2, 3, 4, 5, 6].map(|n| Some(Duration::from_secs(n)));
    assert_phase_timeouts(Client::new(plain().with_timeouts(t)), want);
}

#[test]
fn auth_initial_response_too_long_for_the_line_waits_for_334() {
    // `user=u@example.org^Aauth=Bearer <token>^A^A`: 9213 octets, the
    // longest response whose base64 line (12284 octets and CRLF) fits in
    // 12288, too long for `AUTH XOAUTH2 ` in front of it.
    let token = "t".repeat(9180);
    let run = auth_run(
        "AUTH XOAUTH2",
        AuthCredentials::oauth2("u@example.org", token.as_str()),
        None,
        &["334 \r\n", "235 2.7.0 ok\r\n", BYE],
    );
    let w = run.wire_str();
    assert!(w.contains("AUTH XOAUTH2\r\n"), "{}", &w[..80]);
    let lines: Vec<&str> = w.split("\r\n").collect();
    let i = lines.iter().position(|l| *l == "AUTH XOAUTH2").unwrap();
    assert_eq!(lines[i + 1].len(), 12_284);
    assert!("AUTH XOAUTH2 ".len() + lines[i + 1].len() + 2 > 12_288);
    assert!(lines[i + 1].starts_with("dXNlcj11QGV4YW1wbGUub3JnAWF1dGg9QmVhcmVy"));
    assert!(run.has_event("Authenticated"));
}

/// RFC 7628 §3.2.3: after a delayed initial response, the server's error
/// challenge still gets the empty response (XOAUTH2) or %x01
/// (OAUTHBEARER), so the server's failure reply is what the caller sees,
/// not a 501 to a cancel.
#[test]
fn oauth_error_challenge_after_a_delayed_initial_response_gets_its_answer() {
    let token = "t".repeat(9180);
    for (caps, forced, answer) in [
        ("AUTH XOAUTH2", None, ""),
        ("AUTH OAUTHBEARER", Some(SaslMechanism::OAuthBearer), "AQ=="),
    ] {
        let run = auth_run(
            caps,
            AuthCredentials::oauth2("u@example.org", token.as_str()),
            forced,
            &[
                "334 \r\n",
                "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n",
                "535 5.7.8 token expired\r\n",
                BYE,
            ],
        );
        let w = run.wire_str();
        let lines: Vec<&str> = w.split("\r\n").collect();
        let i = lines.iter().position(|l| *l == caps).unwrap();
        assert!(lines[i + 1].len() > 12_000, "{caps}");
        assert_eq!(lines[i + 2], answer, "{caps}");
        assert_eq!(lines[i + 3], "QUIT", "{caps}");
        assert!(
            run.events
                .iter()
                .any(|e| e.starts_with("AuthFailed") && e.contains("535")),
            "{caps}: {:?}",
            run.events
        );
    }
}

#[test]
fn auth_twice_is_a_usage_error() {
    let input = script(&[GREET, &ehlo(&["AUTH PLAIN"]), "235 ok\r\n"]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.authenticate(AuthCredentials::password("a", "b"), None)
        .unwrap();
    c.poll_transmit(&mut Vec::new());
    let step = c.handle_input(buf).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Authenticated { .. })
    ));
    assert!(c.is_authenticated());
    c.poll_transmit(&mut Vec::new());
    assert_eq!(
        c.authenticate(AuthCredentials::password("a", "b"), None),
        Err(ClientError::Usage(UsageError::AlreadyAuthenticated))
    );
    assert!(!c.has_transmit());
}

#[test]
fn bare_250_to_ehlo_means_no_extensions() {
    let s = script(&[GREET, "250\r\n", OK, OK, "354 go\r\n", OK, BYE]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    assert!(run.summaries[0].all_delivered());
    // No PIPELINING known: one command at a time, and it still works.
    assert_eq!(run.error, None);

    let s = script(&[GREET, "250\r\n", BYE]);
    let run = run_split_invariant(
        config().with_tls(TlsPolicy::Required),
        &Actor::new(vec![job()]),
        &[&s],
    );
    assert_eq!(run.events[1], "TlsUnavailable { reply: None }");
}

#[test]
fn a_positive_reply_to_data_other_than_354_is_a_protocol_error() {
    let s = script(&[GREET, &ehlo(&["PIPELINING"]), OK, OK, "250 what body?\r\n"]);
    let run = run_split_invariant(plain(), &Actor::new(vec![job()]), &[&s]);
    let Some(ClientError::UnexpectedReply(r)) = &run.error else {
        panic!("{:?}", run.error)
    };
    assert_eq!(r.code(), smtp_proto::status::ReplyCode::OK);
    assert_eq!(r.text(), b"what body?");
    assert!(run.summaries.is_empty());
    assert!(!run.wire_str().contains("hi"));
}

/// A server that answers while the client is still sending the body
/// (here a spam refusal before the end of DATA) breaks the order of RFC
/// 5321 §4.1.1.4: the session is over, and the error keeps the whole
/// reply, its text too, for the caller's log and bounce.
#[test]
fn an_early_reply_during_the_body_keeps_its_text() {
    let mut c = Client::new(plain());
    let input = script(&[GREET, &ehlo(&["PIPELINING"])]);
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.send_mail(&job().envelope).unwrap();
    let replies = script(&[OK, OK, "354 go\r\n"]);
    let mut buf = &replies[..];
    loop {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        if matches!(step.outcome, Outcome::Event(ClientEvent::SendBody)) {
            break;
        }
    }
    c.send_body(b"Subject: t\r\n").unwrap();
    let early = b"554-5.7.1 Message rejected as spam\r\n554 5.7.1 See https://example.org/why\r\n";
    let err = c.handle_input(early).unwrap_err();
    let ClientError::UnexpectedReply(reply) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(reply.code().get(), 554);
    assert_eq!(
        reply.enhanced_code().map(|e| e.to_string()).as_deref(),
        Some("5.7.1")
    );
    assert_eq!(reply.text(), b"Message rejected as spam");
    assert_eq!(reply.line_count(), 2);
    assert_eq!(
        err.to_string(),
        "unexpected reply: 554 5.7.1 Message rejected as spam (2 lines)"
    );
    assert!(err.is_remote());
    assert!(c.is_closed());
}

#[test]
fn pipelined_groups_end_at_starttls_and_auth() {
    // While STARTTLS or AUTH waits for its reply, nothing else may be sent.
    let mut c = Client::new(config());
    drive_to_starttls(&mut c);
    assert_eq!(
        c.send_mail(&job().envelope),
        Err(ClientError::Usage(UsageError::NotIdle))
    );
    assert_eq!(c.quit(), Err(ClientError::Usage(UsageError::NotIdle)));
    assert!(!c.has_transmit());

    let input = script(&[GREET, &ehlo(&["PIPELINING", "AUTH PLAIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    c.authenticate(AuthCredentials::password("a", "b"), None)
        .unwrap();
    assert_eq!(
        c.send_mail(&job().envelope),
        Err(ClientError::Usage(UsageError::NotIdle))
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH PLAIN AGEAYg==\r\n");
}

#[test]
fn events_convert_to_owned_with_their_replies() {
    use smtp_proto::client::OwnedClientEvent;
    let input = script(&[
        GREET,
        &ehlo(&["PIPELINING"]),
        "250 2.1.0 Ok\r\n",
        "550-5.1.1 no such\r\n550 5.1.1 user\r\n",
        "354 go\r\n",
    ]);
    let mut c = Client::new(plain());
    let mut buf = &input[..];
    let mut owned = Vec::new();
    for _ in 0..50 {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
        match step.outcome {
            Outcome::Event(ev) => {
                let code = ev.reply().map(|r| r.code());
                let bytes = ev.reply().map(|r| r.as_bytes().to_vec());
                if ev == ClientEvent::Ready {
                    let j = Job::new("a@x.org", &["b@y.org"], &[]);
                    c.send_mail(&j.envelope).unwrap();
                }
                let o = ev.into_owned();
                let reply = match &o {
                    OwnedClientEvent::Greeting { reply }
                    | OwnedClientEvent::Sender { reply, .. }
                    | OwnedClientEvent::Recipient { reply, .. } => Some(reply.clone()),
                    _ => None,
                };
                assert_eq!(reply.as_ref().map(|r| r.code()), code);
                assert_eq!(reply.map(|r| r.to_bytes()), bytes);
                owned.push(o);
            }
            _ => break,
        }
    }
    assert!(
        matches!(owned.last(), Some(OwnedClientEvent::Recipient { index: 0, verdict: Verdict::Permanent, reply }) if reply.line_count() == 2)
    );
}

#[test]
fn phase_follows_the_shared_sequencing_table() {
    use smtp_proto::session::Phase;
    let mut c = Client::new(plain());
    assert_eq!(c.phase(), Phase::Greeting);
    let feed = |c: &mut Client, bytes: &[u8]| {
        let mut buf = bytes;
        loop {
            c.poll_transmit(&mut Vec::new());
            let step = c.handle_input(buf).unwrap();
            buf = &buf[step.consumed..];
            if !matches!(step.outcome, Outcome::Event(_)) {
                break;
            }
        }
        c.poll_transmit(&mut Vec::new());
    };
    feed(&mut c, GREET.as_bytes());
    assert_eq!(c.phase(), Phase::NeedHello);
    feed(&mut c, ehlo(&["8BITMIME"]).as_bytes());
    assert_eq!(c.phase(), Phase::Ready);
    // The client's own order check agrees with the table.
    assert!(c
        .phase()
        .check(smtp_proto::session::CommandKind::Mail)
        .is_ok());
    let j = Job::new("a@x.org", &["b@y.org", "c@y.org"], &[]);
    c.send_mail(&j.envelope).unwrap();
    feed(&mut c, OK.as_bytes());
    assert_eq!(c.phase(), Phase::Mail);
    feed(&mut c, OK.as_bytes());
    assert_eq!(c.phase(), Phase::Rcpt);
    feed(&mut c, b"550 no\r\n");
    assert_eq!(c.phase(), Phase::Rcpt);
    feed(&mut c, b"354 go\r\n");
    assert_eq!(c.phase(), Phase::Data);
    c.send_last(b"x").unwrap();
    feed(&mut c, OK.as_bytes());
    assert_eq!(c.phase(), Phase::Ready);
    c.quit().unwrap();
    feed(&mut c, BYE.as_bytes());
    assert_eq!(c.phase(), Phase::Closed);
}

#[test]
fn client_and_its_values_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client>();
    send_sync::<ClientError>();
    send_sync::<smtp_proto::client::OwnedClientEvent>();
    send_sync::<smtp_proto::client::Envelope<'static>>();
    // And a client really does work after a move to another thread.
    let mut c = Client::new(plain());
    c = std::thread::spawn(move || {
        let step = c.handle_input(GREET.as_bytes()).unwrap();
        assert!(matches!(
            step.outcome,
            Outcome::Event(ClientEvent::Greeting { .. })
        ));
        c
    })
    .join()
    .unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"EHLO client.example.net\r\n");
}

#[test]
fn an_empty_login_user_name_or_password_is_refused_locally() {
    let input = script(&[GREET, &ehlo(&["AUTH LOGIN PLAIN OAUTHBEARER"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    // LOGIN's first answer would be an empty user name, or its second an
    // empty password.
    for (user, password) in [("", "pw"), ("alice", "")] {
        assert!(matches!(
            c.authenticate(
                AuthCredentials::password(user, password),
                Some(SaslMechanism::Login)
            ),
            Err(ClientError::Usage(UsageError::Credentials(_)))
        ));
        assert!(!c.has_transmit());
        assert!(c.is_idle());
    }
    assert_eq!(
        c.authenticate(
            AuthCredentials::password("alice", "pw"),
            Some(SaslMechanism::Login)
        ),
        Ok(SaslMechanism::Login)
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(String::from_utf8_lossy(&out), "AUTH LOGIN\r\n");
}

/// A LOGIN user name or password holding a NUL is refused by the server
/// (501: LOGIN's values are PLAIN's `1*SAFE`, RFC 4616 §2), as PLAIN's
/// are: the client refuses it before sending anything, as it refuses an
/// empty one, with the reason in `UsageError::Credentials`.
#[test]
fn a_nul_in_a_login_user_name_or_password_is_refused_locally() {
    use smtp_proto::sasl::SaslError;
    let input = script(&[GREET, &ehlo(&["AUTH LOGIN PLAIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    for (user, password, why) in [
        ("alice\0admin", "pw", "NUL in user name"),
        ("alice", "s3cret\0", "NUL in password"),
        ("\0", "\0", "NUL in user name"),
    ] {
        assert_eq!(
            c.authenticate(
                AuthCredentials::password(user, password),
                Some(SaslMechanism::Login)
            ),
            Err(ClientError::Usage(UsageError::Credentials(
                SaslError::Unencodable(why)
            )))
        );
        assert!(!c.has_transmit());
        assert!(c.is_idle());
    }
    // PLAIN refuses the same credentials, naming the field.
    assert_eq!(
        c.authenticate(AuthCredentials::password("alice", "s3cret\0"), None),
        Err(ClientError::Usage(UsageError::Credentials(
            SaslError::Unencodable("password")
        )))
    );
    assert!(!c.has_transmit());
    // Other control characters are content, sent as they are.
    assert_eq!(
        c.authenticate(
            AuthCredentials::password("al\x01ice", "p\tw"),
            Some(SaslMechanism::Login)
        ),
        Ok(SaslMechanism::Login)
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH LOGIN\r\n");
}

fn b64(raw: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// RFC 4616 §2's 255 octets are the least a server must take per PLAIN
/// field, and servers take longer passwords: a 1000-octet password goes
/// out as PLAIN's initial response, alone after the server's empty `334`
/// since the AUTH line would pass the 512 octets of a command line.
#[test]
fn auth_plain_sends_a_1000_octet_password() {
    let password = "p".repeat(1000);
    let run = auth_run(
        "AUTH LOGIN PLAIN",
        AuthCredentials::password("alice", password.clone()),
        None,
        &["334 \r\n", "235 2.7.0 Authentication successful\r\n", BYE],
    );
    let raw = format!("\0alice\0{password}");
    assert_eq!(
        run.wire_str(),
        format!(
            "EHLO client.example.net\r\nAUTH PLAIN\r\n{}\r\nQUIT\r\n",
            b64(raw.as_bytes())
        )
    );
    assert!(run.has_event("Authenticated"));
}

/// A PLAIN response is not held to 255 octets per field but to the lines
/// that carry it: on the AUTH line while that line keeps to the 512
/// octets of a command line (RFC 4954 §4: "the AUTH command is still
/// subject to the line length limitations defined in [SMTP]", RFC 5321
/// §4.5.3.1.4), alone after the empty `334` while it fits on RFC 4954
/// §4's 12288-octet line (9213 octets), refused with `ResponseTooLong`
/// past that, nothing sent.
#[test]
fn long_plain_responses_take_the_line_they_fit() {
    // `NUL alice NUL` is 7 octets: 372 raw octets are 496 of base64, and
    // `AUTH PLAIN `, those and CRLF make 509 octets; one more octet makes
    // 500 of base64 and a line of 513.
    for (password_len, on_auth_line) in [(365, true), (366, false), (9000, false)] {
        let password = "p".repeat(password_len);
        let empty_334: &[&str] = if on_auth_line { &[] } else { &["334 \r\n"] };
        let run = auth_run(
            "AUTH PLAIN",
            AuthCredentials::password("alice", password.clone()),
            None,
            &[empty_334, &["235 2.7.0 ok\r\n", BYE]].concat(),
        );
        let b = b64(format!("\0alice\0{password}").as_bytes());
        let w = run.wire_str();
        if on_auth_line {
            assert!("AUTH PLAIN ".len() + b.len() + 2 <= 512);
            assert!(w.contains(&format!("\r\nAUTH PLAIN {b}\r\nQUIT")), "{w}");
        } else {
            assert!("AUTH PLAIN ".len() + b.len() + 2 > 512);
            assert!(w.contains(&format!("\r\nAUTH PLAIN\r\n{b}\r\nQUIT")), "{w}");
        }
        assert!(run.error.is_none(), "{:?}", run.error);
        assert!(run.has_event("Authenticated"), "{password_len}");
        assert!(w.lines().all(|l| l.len() + 2 <= 12288));
    }

    let alone = "p".repeat(9213 - 7);
    let run = auth_run(
        "AUTH PLAIN",
        AuthCredentials::password("alice", alone.clone()),
        None,
        &["334 \r\n", "235 2.7.0 ok\r\n", BYE],
    );
    let b = b64(format!("\0alice\0{alone}").as_bytes());
    assert_eq!(b.len() + 2, 12286);
    assert!(run
        .wire_str()
        .contains(&format!("\r\nAUTH PLAIN\r\n{b}\r\nQUIT")));
    assert!(run.has_event("Authenticated"));

    let input = script(&[GREET, &ehlo(&["AUTH PLAIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    assert_eq!(
        c.authenticate(
            AuthCredentials::password("alice", "p".repeat(9213 - 6)),
            None
        ),
        Err(ClientError::Usage(UsageError::ResponseTooLong))
    );
    assert!(!c.has_transmit());
    assert!(c.is_idle());
}

/// LOGIN sends its user name and password each on a line of its own after
/// a `334`: a value whose line would pass RFC 4954 §4's 12288 octets (over
/// 9213 octets), which a server answers with `500 5.5.6`, is refused
/// before AUTH is sent; one that fits goes out.
#[test]
fn a_login_value_too_long_for_its_line_is_refused_locally() {
    let input = script(&[GREET, &ehlo(&["AUTH LOGIN"])]);
    let mut c = Client::new(plain().with_auth_without_tls(true));
    let mut buf = &input[..];
    until_idle(&mut c, &mut buf);
    c.poll_transmit(&mut Vec::new());
    let over = "w".repeat(9214);
    for (user, password) in [("alice", over.as_str()), (over.as_str(), "pw")] {
        assert_eq!(
            c.authenticate(AuthCredentials::password(user, password), None),
            Err(ClientError::Usage(UsageError::ResponseTooLong))
        );
        assert!(!c.has_transmit());
        assert!(c.is_idle());
    }
    let fits = "w".repeat(9213);
    let run = auth_run(
        "AUTH LOGIN",
        AuthCredentials::password("alice", fits.clone()),
        None,
        &[
            "334 VXNlcm5hbWU6\r\n",
            "334 UGFzc3dvcmQ6\r\n",
            "235 2.7.0 ok\r\n",
            BYE,
        ],
    );
    let b = b64(fits.as_bytes());
    assert_eq!(b.len() + 2, 12286);
    assert!(run
        .wire_str()
        .contains(&format!("AUTH LOGIN\r\nYWxpY2U=\r\n{b}\r\nQUIT")));
    assert!(run.has_event("Authenticated"));
}

#[test]
fn an_empty_oauthbearer_authzid_is_left_out() {
    use smtp_proto::sasl::oauthbearer_response;
    assert_eq!(
        oauthbearer_response(Some(""), None, None, "tok").unwrap(),
        oauthbearer_response(None, None, None, "tok").unwrap()
    );
    assert_eq!(
        oauthbearer_response(None, None, None, "tok").unwrap(),
        b"n,,\x01auth=Bearer tok\x01\x01"
    );
    // A server reads an empty `a=` from another client as none too.
    let mut server = smtp_proto::sasl::SaslServer::new(SaslMechanism::OAuthBearer);
    match server.start(Some(b"n,a=,\x01auth=Bearer tok\x01\x01")) {
        Ok(smtp_proto::sasl::SaslStep::Done(c)) => assert_eq!(c.identity(), None),
        other => panic!("{other:?}"),
    }
}

/// RFC 4954 §4: the server answers the client's `*` with 501. A server
/// that challenges again instead breaks the protocol and could keep the
/// exchange going for ever; the session ends at its first 334 after `*`.
#[test]
fn a_challenge_after_the_cancel_ends_the_session() {
    let endless = "334 \r\n".repeat(50);
    for (caps, creds, cancel) in [
        // PLAIN cancels an unexpected challenge after its initial response.
        (
            "AUTH PLAIN",
            AuthCredentials::password("alice", "s3cret"),
            false,
        ),
        // LOGIN cancels a third challenge.
        (
            "AUTH LOGIN",
            AuthCredentials::password("alice", "s3cret"),
            false,
        ),
        // The application cancels.
        (
            "AUTH LOGIN",
            AuthCredentials::password("alice", "s3cret"),
            true,
        ),
    ] {
        let mut parts = vec![GREET.to_string(), ehlo(&[caps])];
        if caps == "AUTH LOGIN" && !cancel {
            parts.push("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n".into());
        }
        parts.push(endless.clone());
        let s = parts.concat().into_bytes();
        let mut actor = Actor::new(vec![]);
        actor.auth = Some((creds, None));
        actor.cancel_auth = cancel;
        let run =
            client_support::run_with(plain().with_auth_without_tls(true), &actor, &[&s], &|_| {
                Vec::new()
            });
        assert_eq!(run.wire_str().matches("*\r\n").count(), 1, "{caps}");
        assert!(
            matches!(&run.error, Some(ClientError::UnexpectedReply(r)) if r.code().get() == 334),
            "{caps}: {:?}",
            run.error
        );
        assert!(!run.has_event("Authenticated"), "{caps}");
    }
}

/// `Envelope::split_to_fit` cuts an envelope into transactions that keep to
/// RCPTMAX and RCPTDOMAINMAX (RFC 9422 §4.2, §4.3), in order, each with the
/// sender and parameters of the whole, and at least one recipient each.
#[test]
fn envelopes_split_to_fit_the_servers_limits() {
    use smtp_proto::client::Envelope;
    use smtp_proto::command::{ForwardPath, Mailbox, ReversePath};
    use smtp_proto::reply::Limits;
    let to = |s: &'static str| ForwardPath::Mailbox(Mailbox::parse(s).unwrap());
    let whole = |rcpts: &[&'static str]| {
        let mut env = Envelope::new(ReversePath::Mailbox(Mailbox::parse("a@x.org").unwrap()))
            .with_size(1234)
            .with_body(BodyType::EightBitMime)
            .with_dsn(
                Some(Ret::Hdrs),
                Some(EnvId::new(XText::new("id-1").unwrap()).unwrap()),
            );
        for r in rcpts {
            env = match *r {
                "postmaster" => env.recipient(ForwardPath::Postmaster),
                r => env.recipient(to(r)),
            };
        }
        env
    };
    let limits = |rcpt_max, rcpt_domain_max| Limits {
        rcpt_max,
        rcpt_domain_max,
        mail_max: None,
    };
    // (recipients, limits, the sizes of the transactions)
    let cases: Vec<(Vec<&'static str>, Limits, Vec<usize>)> = vec![
        (vec!["a@y.org", "b@y.org"], Limits::default(), vec![2]),
        (
            vec!["a@y.org", "b@y.org", "c@y.org", "d@y.org", "e@y.org"],
            limits(Some(2), None),
            vec![2, 2, 1],
        ),
        (
            vec!["a@y.org", "b@Y.ORG", "c@z.org", "d@y.org"],
            limits(None, Some(1)),
            vec![2, 1, 1],
        ),
        // `<Postmaster>` names no domain.
        (
            vec!["postmaster", "a@y.org", "b@z.org"],
            limits(None, Some(1)),
            vec![2, 1],
        ),
        (
            vec!["a@y.org", "b@z.org", "c@y.org", "d@w.org"],
            limits(Some(3), Some(2)),
            vec![3, 1],
        ),
        // A limit of 0 still lets one recipient through per transaction.
        (
            vec!["a@y.org", "b@y.org"],
            limits(Some(0), Some(0)),
            vec![1, 1],
        ),
    ];
    for (rcpts, lim, sizes) in cases {
        let original = whole(&rcpts);
        let mut env = original.clone();
        let mut got = Vec::new();
        let mut sent = Vec::new();
        loop {
            let rest = env.split_to_fit(&lim);
            let n = env.recipients.len();
            assert!(n >= 1, "{rcpts:?}");
            if let (Some(max), true) = (lim.rcpt_max, n > 1) {
                assert!(n <= max as usize, "{rcpts:?}");
            }
            if let (Some(max), true) = (lim.rcpt_domain_max, n > 1) {
                assert!(env.recipient_domains() <= max as usize, "{rcpts:?}");
            }
            assert_eq!(
                (&env.sender, env.size, env.body, env.ret, &env.envid),
                (
                    &original.sender,
                    original.size,
                    original.body,
                    original.ret,
                    &original.envid
                )
            );
            got.push(n);
            sent.extend(env.recipients.clone());
            match rest {
                Some(r) => env = r,
                None => break,
            }
        }
        assert_eq!(got, sizes, "{rcpts:?}");
        assert_eq!(sent, original.recipients, "{rcpts:?}");
    }
}
