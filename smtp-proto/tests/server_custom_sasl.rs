//! SASL mechanisms the application runs itself (`SaslMechanism::Custom`):
//! the machine frames the exchange (RFC 4954 §4) and the application
//! answers each step with a challenge, an acceptance or a rejection. Every
//! transcript runs whole, split at every byte offset and byte by byte.

mod support;

use smtp_proto::command::ValueError;
use smtp_proto::sasl::{CustomMechanism, SaslError, SaslMechanism, SaslServer, SecretBytes};
use smtp_proto::server::{
    Challenge, Decision, ServerConfig, ServerEvent, ServerSession, UsageError,
};
use smtp_proto::session::Outcome;
use support::{after_ehlo, check, config, default_policy, reply, Action, AppState, Setup};

/// RFC 2195 §2 example: the server's challenge and the client's answer
/// (user `tim`, keyed MD5 digest with the secret `tanstaaftanstaaf`).
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const CRAM_ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

/// The application's side of the custom mechanisms. It computes nothing:
/// the CRAM-MD5 answer is compared with the known one from RFC 2195.
fn sasl_app(event: &ServerEvent<'_>, app: &mut AppState) -> Action {
    let ServerEvent::AuthExchange {
        mechanism,
        response,
        round,
    } = event
    else {
        return default_policy(event, app);
    };
    let invalid = || Action::Reply(reply(535, "5.7.8", "Authentication credentials invalid"));
    match (
        mechanism.as_str(),
        *round,
        response.as_ref().map(SecretBytes::expose),
    ) {
        ("CRAM-MD5", 0, None) => Action::AuthChallenge(CRAM_CHALLENGE.to_vec()),
        ("CRAM-MD5", 1, Some(answer)) if answer == CRAM_ANSWER => {
            Action::AcceptAs("tim".to_owned())
        }
        // EXTERNAL (RFC 4422 Appendix A): an empty authorization identity
        // means "the identity of the TLS client certificate".
        ("EXTERNAL", 0, Some(b"")) => Action::AcceptAs("CN=client.example".to_owned()),
        ("EXTERNAL", 0, None) => Action::AuthChallenge(Vec::new()),
        ("EXTERNAL", 1, Some(b"")) => Action::AcceptAs("CN=client.example".to_owned()),
        // A mechanism that never finishes.
        ("X-LOOP", _, _) => Action::AuthChallenge(b"again".to_vec()),
        _ => invalid(),
    }
}

fn custom_config(names: &[&str]) -> ServerConfig {
    let mut c = config();
    c.auth_mechanisms = vec![SaslMechanism::Plain];
    c.auth_requires_tls = false;
    for name in names {
        c.auth_mechanisms
            .push(SaslMechanism::custom(name).expect("valid name"));
    }
    c
}

fn setup(c: ServerConfig) -> Setup {
    Setup {
        policy: sasl_app,
        ..Setup::new(c)
    }
}

fn ehlo(auth: &str) -> String {
    format!(
        "
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH {auth}
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
"
    )
}

/// A CRAM-MD5-style exchange: AUTH without initial response, the
/// application's challenge in a 334, the client's answer handed over
/// decoded, then 235. EHLO lists the custom mechanism after the built-in.
#[test]
fn custom_two_step_exchange_cram_md5_style() {
    let r = check(
        &setup(custom_config(&["CRAM-MD5"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw
    S: 235 2.7.0 Authentication successful
    C: AUTH CRAM-MD5
    S: 503 5.5.1 Already authenticated
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert_eq!(r.identity.as_deref(), Some("tim"));
    let steps: Vec<&String> = r
        .events
        .iter()
        .filter(|e| e.starts_with("AuthExchange"))
        .collect();
    assert_eq!(steps.len(), 2, "{:#?}", r.events);
    assert!(steps[0].contains("CustomMechanism(\"CRAM-MD5\")"));
    assert!(steps[0].contains("response: None, round: 0"));
    // The answer itself was checked by the application (it accepted "tim"
    // only for RFC 2195's answer); the event's Debug does not show it.
    assert!(steps[1].contains("response: Some(<redacted>), round: 1"));
}

/// The client may name the mechanism in any case (RFC 4954 §4 mechanism
/// names are compared without regard to case).
#[test]
fn custom_mechanism_name_matches_without_case() {
    let r = check(
        &setup(custom_config(&["CRAM-MD5"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH cram-md5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw
    S: 235 2.7.0 Authentication successful
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert_eq!(r.identity.as_deref(), Some("tim"));
}

/// EXTERNAL with the empty initial response `=`: handed over as
/// `Some(empty)`, distinct from no initial response, and accepted at once.
/// Without an initial response the application sends an empty challenge
/// (`334 ` with its space) and gets the empty answer.
#[test]
fn custom_external_empty_initial_response_accepted_at_once() {
    let r = check(
        &setup(custom_config(&["EXTERNAL"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH EXTERNAL =
    S: 235 2.7.0 Authentication successful
",
            ehlo("PLAIN EXTERNAL")
        ),
    );
    assert_eq!(r.identity.as_deref(), Some("CN=client.example"));
    assert!(r
        .events
        .iter()
        .any(|e| e.contains("CustomMechanism(\"EXTERNAL\")")
            && e.contains("response: Some(<redacted>), round: 0")));

    let r = check(
        &setup(custom_config(&["EXTERNAL"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH EXTERNAL
    S: 334 
    C:
    S: 235 2.7.0 Authentication successful
",
            ehlo("PLAIN EXTERNAL")
        ),
    );
    let steps: Vec<&String> = r
        .events
        .iter()
        .filter(|e| e.starts_with("AuthExchange"))
        .collect();
    assert_eq!(steps.len(), 2);
    assert!(steps[0].contains("response: None, round: 0"));
    // The empty answer is what the application accepted on (see sasl_app).
    assert!(steps[1].contains("response: Some(<redacted>), round: 1"));
}

/// The application rejects the answer with 535; the client is not
/// authenticated and may try again.
#[test]
fn custom_exchange_rejected_with_535() {
    let r = check(
        &setup(custom_config(&["CRAM-MD5"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: dGltIDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH CRAM-MD5 dGlt
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw
    S: 235 2.7.0 Authentication successful
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert_eq!(r.identity.as_deref(), Some("tim"));
}

/// `*` in answer to a challenge cancels (501 5.0.0) and an over-long
/// response line gets 500 5.5.6; the session goes on in both cases.
#[test]
fn custom_exchange_cancelled_and_session_goes_on() {
    let mut c = custom_config(&["CRAM-MD5"]);
    c.max_auth_line_length = 2048;
    let long = "A".repeat(3000);
    let r = check(
        &setup(c),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: *
    S: 501 5.0.0 Authentication cancelled
    C: NOOP
    S: 250 2.0.0 OK
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: {long}
    S: 500 5.5.6 Authentication exchange line is too long
    C: MAIL FROM:<a@bar.com>
    S: 250 2.1.0 OK
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert!(r.events.iter().any(|e| e.contains("AuthCancelled")));
    assert!(r.events.iter().any(|e| e.contains("AuthLineTooLong")));
    assert_eq!(r.identity, None);
}

/// Bad base64, in the initial response or in an answer, is refused with
/// 501 by the machine; the application never sees it.
#[test]
fn custom_exchange_bad_base64_is_501() {
    let r = check(
        &setup(custom_config(&["CRAM-MD5"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH CRAM-MD5
    S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    C: %%%
    S: 501 5.5.2 Cannot Base64-decode client response
    C: AUTH CRAM-MD5 not!base64
    S: 501 5.5.2 AUTH initial response is not base64
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert!(r.events.iter().any(|e| e.contains("AuthBadBase64")));
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.starts_with("AuthExchange"))
            .count(),
        1
    );
}

/// A mechanism that is not in the configuration gets 504, whether the
/// command codec knows its name or not.
#[test]
fn custom_mechanism_not_advertised_is_504() {
    let r = check(
        &setup(custom_config(&["CRAM-MD5"])),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH EXTERNAL =
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH SCRAM-SHA-256
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH X-OTHER
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH CRAM-MD5X
    S: 504 5.5.4 Unrecognized authentication type
",
            ehlo("PLAIN CRAM-MD5")
        ),
    );
    assert!(!r.events.iter().any(|e| e.starts_with("AuthExchange")));
}

/// With `auth_requires_tls`, AUTH of a custom mechanism before STARTTLS
/// gets 538 and EHLO does not offer AUTH; after the handshake it works.
#[test]
fn custom_mechanism_before_tls_is_538() {
    let mut c = custom_config(&["EXTERNAL"]);
    c.starttls = true;
    c.auth_requires_tls = true;
    let r = check(
        &setup(c),
        "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH EXTERNAL =
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    -- TLS --
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN EXTERNAL
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
    C: AUTH EXTERNAL =
    S: 235 2.7.0 Authentication successful
",
    );
    assert!(r.events.iter().any(|e| e.contains("AuthNeedsTls")));
    assert_eq!(r.identity.as_deref(), Some("CN=client.example"));
}

/// An exchange may not go on for ever: once `max_auth_rounds` challenges
/// were sent, asking for another ends it with 535 and the session goes on.
#[test]
fn custom_exchange_too_many_round_trips() {
    let mut c = custom_config(&["X-LOOP"]);
    c.max_auth_rounds = 2;
    let r = check(
        &setup(c),
        &format!(
            "
    S: 220 mx.example.com ESMTP
{}
    C: AUTH X-LOOP
    S: 334 YWdhaW4=
    C: MQ==
    S: 334 YWdhaW4=
    C: Mg==
    S: 535 5.7.8 Authentication failed: too many exchange steps
    C: NOOP
    S: 250 2.0.0 OK
",
            ehlo("PLAIN X-LOOP")
        ),
    );
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.starts_with("AuthExchange"))
            .count(),
        3
    );
    assert_eq!(r.identity, None);
}

/// Drives a session to its first `AuthExchange` for `AUTH X-LOOP`.
fn at_first_step(c: ServerConfig) -> ServerSession {
    let mut s = after_ehlo(c);
    let step = s.handle_input(b"AUTH X-LOOP\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::AuthExchange { round: 0, .. })
    ));
    let mut sink = Vec::new();
    s.poll_transmit(&mut sink);
    s
}

/// A challenge whose 334 line would exceed a reply line's 512 octets is a
/// usage error, whatever `max_auth_line_length` (the limit on the client's
/// lines) says: nothing is sent and the decision is still pending. The
/// longest one that fits is sent (base64 comes in groups of 4, so its line
/// is 510 octets, the longest multiple that fits in 512).
#[test]
fn custom_challenge_too_long_for_the_line() {
    let c = custom_config(&["X-LOOP"]);
    assert_eq!(c.max_auth_line_length, 12288);
    let mut s = at_first_step(c);
    // `334 ` + 4 * 127 + CRLF = 514 > 512.
    assert_eq!(
        s.auth_challenge(&[b'x'; 379]),
        Err(UsageError::ChallengeTooLong)
    );
    assert!(!s.has_transmit());
    assert_eq!(s.pending_decision(), Some(Decision::AuthExchange));
    // `334 ` + 4 * 126 + CRLF = 510.
    assert_eq!(s.auth_challenge(&[b'x'; 378]), Ok(Challenge::Sent));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out.len(), 510);
    assert!(out.starts_with(b"334 eHh4"));
    assert!(out.ends_with(b"\r\n"));
    assert_eq!(s.pending_decision(), None);
}

/// Misuse of the new calls leaves the session as it was.
#[test]
fn custom_exchange_usage_errors() {
    let mut s = at_first_step(custom_config(&["X-LOOP"]));
    // Not an OAuth mechanism: no error challenge.
    assert_eq!(
        s.reject_auth_with_challenge(b"{}", reply(535, "5.7.8", "No")),
        Err(UsageError::NotOAuth)
    );
    // 250 is no answer to AUTH (only 235 accepts).
    assert_eq!(
        s.reply(reply(250, "2.0.0", "OK")),
        Err(UsageError::BadReplyCode)
    );
    assert_eq!(s.pending_decision(), Some(Decision::AuthExchange));
    s.reject(reply(535, "5.7.8", "No")).unwrap();
    assert!(!s.is_authenticated());
    // Nothing pending now.
    assert_eq!(s.auth_challenge(b""), Err(UsageError::NoDecisionPending));
    assert_eq!(s.accept_auth("x"), Err(UsageError::NoDecisionPending));

    // A built-in mechanism's decision takes no challenge, but may be
    // accepted with an identity.
    let mut s = after_ehlo(custom_config(&["X-LOOP"]));
    let step = s
        .handle_input(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        .unwrap();
    assert!(matches!(step.outcome, Outcome::Event(ServerEvent::Auth(_))));
    assert_eq!(s.auth_challenge(b"x"), Err(UsageError::NoAuthExchange));
    s.accept_auth("alice").unwrap();
    assert!(s.is_authenticated());
    assert_eq!(s.auth_identity(), Some("alice"));

    // A session waiting for MAIL has no AUTH decision.
    let step = s.handle_input(b"MAIL FROM:<a@bar.com>\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Mail { .. })
    ));
    assert_eq!(s.accept_auth("x"), Err(UsageError::NoAuthExchange));
    assert_eq!(s.pending_decision(), Some(Decision::Mail));

    // The built-in decoder does not run custom mechanisms.
    let cram = SaslMechanism::custom("CRAM-MD5").unwrap();
    assert_eq!(
        SaslServer::new(cram).start(None),
        Err(SaslError::NotBuiltIn)
    );
    assert_eq!(
        SaslServer::new(cram).start(Some(b"x")),
        Err(SaslError::NotBuiltIn)
    );
}

/// RFC 4422 §3.1 `sasl-mech`: 1 to 20 of upper-case letters, digits, `-`
/// and `_`, any of them first, as AUTH is parsed; the built-in names are
/// refused so each name has one meaning.
#[test]
fn custom_mechanism_name_validator() {
    for ok in [
        "CRAM-MD5",
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
        "EXTERNAL",
        "GSSAPI",
        "X_TOKEN",
        "9LIVES",
        "ABCDEFGHIJKLMNOPQRST",
        // RFC 4422 §3.1: any mech-char may come first.
        "-LEADING",
        "_LEADING",
    ] {
        let m = CustomMechanism::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(m.as_str(), ok);
        assert_eq!(m.to_string(), ok);
        assert_eq!(SaslMechanism::custom(ok).unwrap().as_str(), ok);
        assert_eq!(SaslMechanism::custom(ok).unwrap(), SaslMechanism::Custom(m));
        // A client naming it in AUTH is understood.
        let line = format!("AUTH {ok}");
        let cmd = smtp_proto::command::Command::parse(line.as_bytes()).unwrap();
        let smtp_proto::command::Command::Auth { mechanism, .. } = &cmd else {
            panic!("{cmd:?}")
        };
        assert!(m.matches(mechanism), "{ok}");
    }
    for (bad, why) in [
        ("", ValueError::Empty),
        ("ABCDEFGHIJKLMNOPQRSTU", ValueError::TooLong),
        ("cram-md5", ValueError::ForbiddenCharacter),
        ("Cram-MD5", ValueError::ForbiddenCharacter),
        ("TWO WORDS", ValueError::ForbiddenCharacter),
        ("CRAM\r\nMD5", ValueError::ForbiddenCharacter),
        ("X\0Y", ValueError::ForbiddenCharacter),
        ("X.Y", ValueError::ForbiddenCharacter),
        ("ÉCLAIR", ValueError::ForbiddenCharacter),
    ] {
        assert_eq!(CustomMechanism::new(bad), Err(why), "{bad:?}");
    }
    for builtin in ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"] {
        assert!(
            matches!(CustomMechanism::new(builtin), Err(ValueError::Syntax(_))),
            "{builtin}"
        );
        assert!(SaslMechanism::custom(builtin).is_err());
    }
    // The name travels to the wire-level mechanism type unchanged.
    let cram: smtp_proto::command::Mechanism<'static> =
        SaslMechanism::custom("CRAM-MD5").unwrap().into();
    assert_eq!(cram, smtp_proto::command::Mechanism::CramMd5);
    let other: smtp_proto::command::Mechanism<'static> =
        SaslMechanism::custom("X-TOKEN").unwrap().into();
    assert_eq!(other.as_str(), "X-TOKEN");
}

/// RFC 3207 §4.2: STARTTLS forgets what was learnt before it, the identity
/// an exchange established included.
#[test]
fn starttls_forgets_the_auth_identity() {
    let mut c = config();
    c.starttls = true;
    c.auth_mechanisms = vec![SaslMechanism::custom("EXTERNAL").expect("name")];
    c.auth_requires_tls = false;
    let mut server = ServerSession::new(c).expect("config");
    server.greet().expect("greet");
    let step = server
        .handle_input(b"EHLO client.example\r\n")
        .expect("ehlo");
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Hello { .. })
    ));
    server.accept().expect("hello");
    let step = server.handle_input(b"AUTH EXTERNAL =\r\n").expect("auth");
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::AuthExchange { round: 0, .. })
    ));
    server.accept_auth("CN=client.example").expect("accept");
    assert_eq!(server.auth_identity(), Some("CN=client.example"));
    let step = server.handle_input(b"STARTTLS\r\n").expect("starttls");
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::StartTls)
    ));
    server.tls_established().expect("tls");
    assert!(!server.is_authenticated());
    assert_eq!(server.auth_identity(), None);
}

/// The caller learns when a challenge was not sent because the exchange
/// hit `max_auth_rounds`: the machine answered 535 and no further step
/// comes.
#[test]
fn custom_challenge_past_the_round_limit_says_so() {
    let mut c = custom_config(&["X-LOOP"]);
    c.max_auth_rounds = 1;
    let mut s = at_first_step(c);
    assert_eq!(s.auth_challenge(b"again"), Ok(Challenge::Sent));
    let step = s.handle_input(b"MQ==\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::AuthExchange { round: 1, .. })
    ));
    assert_eq!(s.auth_challenge(b"again"), Ok(Challenge::TooManyRounds));
    assert_eq!(s.pending_decision(), None);
    assert!(!s.is_authenticated());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.ends_with(b"535 5.7.8 Authentication failed: too many exchange steps\r\n"));
}

/// The client's data never shows in an event's `Debug` (it may be a
/// password, a digest or a token), as for the built-in mechanisms.
#[test]
fn custom_exchange_event_debug_hides_the_response() {
    let mut s = after_ehlo(custom_config(&["X-TOKEN"]));
    // base64 of `s3cr3t-token`
    let step = s
        .handle_input(b"AUTH X-TOKEN czNjcjN0LXRva2Vu\r\n")
        .unwrap();
    let Outcome::Event(ev @ ServerEvent::AuthExchange { .. }) = &step.outcome else {
        panic!("{:?}", step.outcome);
    };
    let dbg = format!("{ev:?} {ev:#?}");
    assert!(!dbg.contains("s3cr3t"), "{dbg}");
    assert!(!dbg.contains("115, 51"), "{dbg}");
    let ServerEvent::AuthExchange { response, .. } = ev else {
        unreachable!()
    };
    assert_eq!(
        response.as_ref().map(SecretBytes::expose),
        Some(&b"s3cr3t-token"[..])
    );
}
