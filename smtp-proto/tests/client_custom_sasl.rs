//! SASL mechanisms run by the client's application (CRAM-MD5, SCRAM,
//! EXTERNAL...): the client machine frames the AUTH exchange and hands each
//! `334` challenge to the application. Scripted runs are checked for split
//! invariance.

mod client_support;

use client_support::{config, run_split_invariant, Actor, Job};
use smtp_proto::client::{
    AuthCredentials, AuthFailure, Client, ClientConfig, ClientError, ClientEvent,
    CustomCredentials, Outcome, TlsPolicy, UsageError,
};
use smtp_proto::sasl::{CustomMechanism, SaslMechanism};

const GREET: &str = "220 mx.example.org ESMTP\r\n";
const BYE: &str = "221 2.0.0 Bye\r\n";

/// RFC 2195 §2's example: the server's challenge and the client's answer
/// (user name and keyed MD5 digest).
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const CRAM_ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";
/// The two, base64-encoded, as in RFC 2195 §2.
const CRAM_CHALLENGE_B64: &str = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
const CRAM_ANSWER_B64: &str = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";

fn ehlo(caps: &[&str]) -> String {
    let mut s = String::from("250-mx.example.org\r\n");
    for (i, c) in caps.iter().enumerate() {
        s.push_str(if i + 1 == caps.len() { "250 " } else { "250-" });
        s.push_str(c);
        s.push_str("\r\n");
    }
    s
}

fn auth_config() -> ClientConfig {
    config()
        .with_tls(TlsPolicy::Off)
        .with_auth_without_tls(true)
}

fn mech(name: &str) -> CustomMechanism {
    CustomMechanism::new(name).unwrap()
}

/// Runs a session that authenticates with `creds` against a server that
/// advertises `caps` and then sends `server`; the actor answers challenges
/// with `app` and quits at the end.
fn custom_run(
    client: ClientConfig,
    caps: &str,
    creds: AuthCredentials,
    app: fn(&[u8], usize) -> Option<Vec<u8>>,
    server: &[&str],
) -> client_support::Run {
    let mut parts = vec![GREET.to_string(), ehlo(&["PIPELINING", caps])];
    parts.extend(server.iter().map(|s| s.to_string()));
    let s = parts.concat().into_bytes();
    let mut actor = Actor::new(vec![]);
    actor.auth = Some((creds, None));
    actor.sasl = Some(app);
    run_split_invariant(client, &actor, &[&s])
}

/// The Debug text of the challenge event the run must hold.
fn challenge_event(name: &str, challenge: &[u8], round: usize) -> String {
    format!(
        "{:?}",
        ClientEvent::AuthChallenge {
            mechanism: mech(name),
            challenge: challenge.to_vec(),
            round,
        }
    )
}

fn failure_of(run: &client_support::Run) -> String {
    run.events
        .iter()
        .find(|e| e.starts_with("AuthFailed"))
        .cloned()
        .unwrap_or_else(|| panic!("no AuthFailed in {:?}", run.events))
}

fn cram_app(challenge: &[u8], round: usize) -> Option<Vec<u8>> {
    // The application would compute HMAC-MD5 here; the test knows the
    // answer to RFC 2195's challenge.
    (round == 1 && challenge == CRAM_CHALLENGE).then(|| CRAM_ANSWER.to_vec())
}

#[test]
fn custom_cram_md5_two_step_exchange_rfc2195() {
    let run = custom_run(
        auth_config(),
        "AUTH PLAIN CRAM-MD5",
        AuthCredentials::custom(mech("CRAM-MD5"), None),
        cram_app,
        &[
            &format!("334 {CRAM_CHALLENGE_B64}\r\n"),
            "235 2.7.0 Authentication successful\r\n",
            BYE,
        ],
    );
    assert_eq!(
        run.wire_str(),
        format!("EHLO client.example.net\r\nAUTH CRAM-MD5\r\n{CRAM_ANSWER_B64}\r\nQUIT\r\n")
    );
    assert_eq!(
        run.events
            .iter()
            .filter(|e| e.starts_with("AuthChallenge"))
            .collect::<Vec<_>>(),
        [&challenge_event("CRAM-MD5", CRAM_CHALLENGE, 1)]
    );
    assert!(run.has_event("Authenticated"));
    assert!(run.closed);
    assert_eq!(run.leftover, 0);
}

#[test]
fn custom_external_sends_equals_for_an_empty_initial_response() {
    let creds = CustomCredentials::new(mech("EXTERNAL")).with_initial_response(Vec::new());
    let run = custom_run(
        auth_config(),
        "AUTH EXTERNAL",
        creds.into(),
        |_, _| panic!("EXTERNAL has no challenge here"),
        &["235 2.7.0 Authentication successful\r\n", BYE],
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nAUTH EXTERNAL =\r\nQUIT\r\n"
    );
    assert!(!run.has_event("AuthChallenge"));
    assert!(run.has_event("Authenticated"));
}

#[test]
fn custom_scram_style_initial_response_then_two_rounds() {
    fn scram(challenge: &[u8], round: usize) -> Option<Vec<u8>> {
        match (round, challenge) {
            (1, b"r=abc123,s=c2FsdA==,i=4096") => Some(b"c=biws,r=abc123,p=proof".to_vec()),
            // The server's final message: the client answers with an empty
            // response (an empty line).
            (2, b"v=signature") => Some(Vec::new()),
            _ => None,
        }
    }
    let run = custom_run(
        auth_config(),
        "AUTH SCRAM-SHA-256",
        AuthCredentials::custom(mech("SCRAM-SHA-256"), Some(b"n,,n=user,r=abc")),
        scram,
        &[
            // r=abc123,s=c2FsdA==,i=4096
            "334 cj1hYmMxMjMscz1jMkZzZEE9PSxpPTQwOTY=\r\n",
            // v=signature
            "334 dj1zaWduYXR1cmU=\r\n",
            "235 2.7.0 ok\r\n",
            BYE,
        ],
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\n\
         AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9YWJj\r\n\
         Yz1iaXdzLHI9YWJjMTIzLHA9cHJvb2Y=\r\n\
         \r\n\
         QUIT\r\n"
    );
    assert_eq!(run.count("AuthChallenge"), 2);
    assert!(run
        .events
        .contains(&challenge_event("SCRAM-SHA-256", b"v=signature", 2)));
    assert!(run.has_event("Authenticated"));
}

#[test]
fn custom_app_cancel_sends_star_and_the_session_goes_on() {
    let server = [
        format!("334 {CRAM_CHALLENGE_B64}\r\n"),
        "501 5.0.0 Authentication cancelled\r\n".to_string(),
        BYE.to_string(),
    ];
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let run = custom_run(
        auth_config(),
        "AUTH CRAM-MD5",
        AuthCredentials::custom(mech("CRAM-MD5"), None),
        |_, _| None,
        &server,
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nAUTH CRAM-MD5\r\n*\r\nQUIT\r\n"
    );
    assert_eq!(run.count("AuthChallenge"), 1);
    assert!(failure_of(&run).ends_with("failure: Cancelled }"));
    assert!(run.closed);

    // Driven by hand: after the 501 the client is idle, unauthenticated,
    // and a mail transaction can start.
    let mut c = Client::new(auth_config());
    let mut buf: Vec<u8> = format!("{GREET}{}", ehlo(&["AUTH CRAM-MD5"])).into_bytes();
    assert!(matches!(
        c.handle_input(&buf).unwrap().outcome,
        Outcome::Event(ClientEvent::Greeting { .. })
    ));
    buf.drain(..GREET.len());
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let step = c.handle_input(&buf).unwrap();
    assert!(matches!(step.outcome, Outcome::Event(ClientEvent::Ready)));
    c.authenticate(AuthCredentials::custom(mech("CRAM-MD5"), None), None)
        .unwrap();
    c.poll_transmit(&mut out);
    let challenge = format!("334 {CRAM_CHALLENGE_B64}\r\n");
    let step = c.handle_input(challenge.as_bytes()).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::AuthChallenge { round: 1, .. })
    ));
    c.cancel_auth().unwrap();
    c.poll_transmit(&mut out);
    assert!(out.ends_with(b"AUTH CRAM-MD5\r\n*\r\n"), "{out:?}");
    let step = c.handle_input(b"501 5.0.0 cancelled\r\n").unwrap();
    let Outcome::Event(ClientEvent::AuthFailed { failure, .. }) = step.outcome else {
        panic!("{:?}", step.outcome);
    };
    assert_eq!(failure, AuthFailure::Cancelled);
    assert!(c.is_idle() && !c.is_authenticated());
    let job = Job::new("a@example.net", &["b@example.org"], &[b"x"]);
    c.send_mail(&job.envelope).unwrap();
    c.poll_transmit(&mut out);
    assert!(out.ends_with(b"MAIL FROM:<a@example.net>\r\n"), "{out:?}");
}

#[test]
fn custom_cancel_before_the_challenge_answers_it_with_star() {
    let s = format!(
        "{GREET}{}334 {CRAM_CHALLENGE_B64}\r\n501 5.0.0 cancelled\r\n{BYE}",
        ehlo(&["AUTH CRAM-MD5"])
    );
    let mut actor = Actor::new(vec![]);
    actor.auth = Some((AuthCredentials::custom(mech("CRAM-MD5"), None), None));
    actor.cancel_auth = true;
    actor.sasl = Some(|_, _| panic!("a cancelled exchange asks nothing"));
    let run = run_split_invariant(auth_config(), &actor, &[s.as_bytes()]);
    assert!(run.wire_str().ends_with("AUTH CRAM-MD5\r\n*\r\nQUIT\r\n"));
    assert!(!run.has_event("AuthChallenge"));
    assert!(failure_of(&run).ends_with("failure: Cancelled }"));
}

/// The client cancels a challenge that is not the application's to see
/// with `*` by itself, and reports `BadChallenge`.
fn assert_cancelled_by_the_client(bad: &str) {
    let run = custom_run(
        auth_config(),
        "AUTH CRAM-MD5",
        AuthCredentials::custom(mech("CRAM-MD5"), None),
        |_, _| panic!("this challenge is not the application's"),
        &[bad, "501 5.5.2 Authentication cancelled\r\n", BYE],
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nAUTH CRAM-MD5\r\n*\r\nQUIT\r\n",
        "{bad}"
    );
    assert!(!run.has_event("AuthChallenge"));
    assert!(
        failure_of(&run).ends_with("failure: BadChallenge }"),
        "{bad}"
    );
}

#[test]
fn custom_bad_base64_challenge_is_cancelled_by_the_client() {
    for bad in ["334 not*base64!\r\n", "334 PDE4OTYu=x\r\n", "334 =\r\n"] {
        assert_cancelled_by_the_client(bad);
    }
}

#[test]
fn custom_multi_line_challenge_is_cancelled_by_the_client() {
    // RFC 4954 §4: the continuation is one line. Its first line alone
    // would decode ("<1896.") and must not reach the application.
    for bad in [
        "334-PDE4OTYu\r\n334 NjkuLi4+\r\n",
        "334-\r\n334 \r\n",
        "334-PDE4OTYu\r\n334-\r\n334 NjkuLi4+\r\n",
    ] {
        assert_cancelled_by_the_client(bad);
    }
    // Nor is a multi-line 334 the empty one a delayed initial response
    // waits for: the response is not sent.
    let big = vec![b'x'; 9213];
    let run = custom_run(
        auth_config(),
        "AUTH X-BIG",
        AuthCredentials::custom(mech("X-BIG"), Some(&big)),
        |_, _| panic!("a multi-line challenge is not the application's"),
        &["334-\r\n334 \r\n", "501 5.5.2 cancelled\r\n", BYE],
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nAUTH X-BIG\r\n*\r\nQUIT\r\n"
    );
    assert!(failure_of(&run).ends_with("failure: BadChallenge }"));
}

#[test]
fn custom_too_many_rounds_is_cancelled_by_the_client() {
    fn echo(challenge: &[u8], _: usize) -> Option<Vec<u8>> {
        Some(challenge.to_vec())
    }
    // "one", "two", "three"
    let server = [
        "334 b25l\r\n",
        "334 dHdv\r\n",
        "334 dGhyZWU=\r\n",
        "535 5.7.8 Authentication failed\r\n",
        BYE,
    ];
    let run = custom_run(
        auth_config().with_max_auth_rounds(2),
        "AUTH X-ECHO",
        AuthCredentials::custom(mech("X-ECHO"), None),
        echo,
        &server,
    );
    assert_eq!(
        run.wire_str(),
        "EHLO client.example.net\r\nAUTH X-ECHO\r\nb25l\r\ndHdv\r\n*\r\nQUIT\r\n"
    );
    assert_eq!(run.count("AuthChallenge"), 2);
    assert!(run.events.contains(&challenge_event("X-ECHO", b"two", 2)));
    // The machine's reason, not the server's 535.
    assert!(failure_of(&run).ends_with("failure: TooManyRounds }"));

    // The default bound lets ten challenges through.
    assert_eq!(config().max_auth_rounds, 10);
    let mut server: Vec<&str> = vec!["334 b25l\r\n"; 10];
    server.extend(["235 2.7.0 ok\r\n", BYE]);
    let run = custom_run(
        auth_config(),
        "AUTH X-ECHO",
        AuthCredentials::custom(mech("X-ECHO"), None),
        echo,
        &server,
    );
    assert_eq!(run.count("AuthChallenge"), 10);
    assert!(run.has_event("Authenticated"));
}

/// A client that has read the greeting and the EHLO reply with `caps`.
fn ready_client(caps: &[&str]) -> Client {
    let mut c = Client::new(auth_config());
    let input = format!("{GREET}{}", ehlo(caps)).into_bytes();
    let mut buf = &input[..];
    while !c.is_idle() {
        c.poll_transmit(&mut Vec::new());
        let step = c.handle_input(buf).unwrap();
        buf = &buf[step.consumed..];
    }
    c.poll_transmit(&mut Vec::new());
    c
}

#[test]
fn custom_mechanism_not_advertised_is_a_usage_error() {
    let mut c = ready_client(&["AUTH PLAIN LOGIN CRAM-MD5"]);
    let no = Err(ClientError::Usage(UsageError::NoMechanism));
    assert_eq!(
        c.authenticate(AuthCredentials::custom(mech("SCRAM-SHA-256"), None), None),
        no
    );
    // Forcing the custom mechanism does not skip the check.
    assert_eq!(
        c.authenticate(
            AuthCredentials::custom(mech("SCRAM-SHA-256"), None),
            Some(SaslMechanism::custom("SCRAM-SHA-256").unwrap())
        ),
        no
    );
    // A forced mechanism other than the credentials' own.
    assert_eq!(
        c.authenticate(
            AuthCredentials::custom(mech("CRAM-MD5"), None),
            Some(SaslMechanism::Plain)
        ),
        no
    );
    assert!(!c.has_transmit());
    assert!(c.is_idle());

    // Advertised in another case: the names match without regard to it.
    let mut c = ready_client(&["AUTH plain x-token-auth"]);
    assert_eq!(
        c.authenticate(AuthCredentials::custom(mech("X-TOKEN-AUTH"), None), None),
        Ok(SaslMechanism::custom("X-TOKEN-AUTH").unwrap())
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH X-TOKEN-AUTH\r\n");
}

#[test]
fn custom_initial_response_too_long_for_the_auth_line_waits_for_334() {
    fn app(challenge: &[u8], round: usize) -> Option<Vec<u8>> {
        (round == 2 && challenge == b"more?").then(|| b"done".to_vec())
    }
    // The longest response that fits alone on its line.
    let big = vec![b'x'; LONGEST_RESPONSE];
    let run = custom_run(
        auth_config(),
        "AUTH X-BIG",
        AuthCredentials::custom(mech("X-BIG"), Some(&big)),
        app,
        &["334 \r\n", "334 bW9yZT8=\r\n", "235 2.7.0 ok\r\n", BYE],
    );
    use base64::Engine as _;
    let big64 = base64::engine::general_purpose::STANDARD.encode(&big);
    // `AUTH X-BIG ` and 12284 octets of base64 would pass 12288; the
    // base64 alone fits.
    assert!(11 + big64.len() + 2 > 12288);
    assert_eq!(big64.len() + 2, 12286);
    assert_eq!(
        run.wire_str(),
        format!("EHLO client.example.net\r\nAUTH X-BIG\r\n{big64}\r\nZG9uZQ==\r\nQUIT\r\n")
    );
    // The empty 334 was answered by the machine; the application saw the
    // second one.
    assert_eq!(run.count("AuthChallenge"), 1);
    assert!(run.events.contains(&challenge_event("X-BIG", b"more?", 2)));
    assert!(run.has_event("Authenticated"));
}

/// The longest raw SASL response whose line (base64 and CRLF) fits in the
/// 12288 octets of RFC 4954 §4: 3071 groups of four base64 octets.
const LONGEST_RESPONSE: usize = 9213;

#[test]
fn custom_response_too_long_for_its_line_is_refused() {
    use base64::Engine as _;
    let b64 = |raw: &[u8]| base64::engine::general_purpose::STANDARD.encode(raw);
    let fits = vec![b'r'; LONGEST_RESPONSE];
    let over = vec![b'r'; LONGEST_RESPONSE + 1];
    assert_eq!(b64(&fits).len() + 2, 12286);
    assert_eq!(b64(&over).len() + 2, 12290);

    let mut c = ready_client(&["AUTH CRAM-MD5"]);
    c.authenticate(AuthCredentials::custom(mech("CRAM-MD5"), None), None)
        .unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let challenge = format!("334 {CRAM_CHALLENGE_B64}\r\n");
    let step = c.handle_input(challenge.as_bytes()).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::AuthChallenge { round: 1, .. })
    ));
    // Refused, nothing sent, and the challenge still awaits its answer.
    assert_eq!(
        c.auth_response(&over),
        Err(ClientError::Usage(UsageError::ResponseTooLong))
    );
    assert!(!c.has_transmit());
    assert_eq!(c.timeout(), None);
    c.auth_response(&fits).unwrap();
    out.clear();
    c.poll_transmit(&mut out);
    assert_eq!(out, format!("{}\r\n", b64(&fits)).as_bytes());
    let step = c.handle_input(b"235 2.7.0 ok\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Authenticated { .. })
    ));
}

#[test]
fn custom_initial_response_too_long_for_any_line_is_refused() {
    let mut c = ready_client(&["AUTH X-BIG"]);
    let over = vec![b'x'; LONGEST_RESPONSE + 1];
    assert_eq!(
        c.authenticate(AuthCredentials::custom(mech("X-BIG"), Some(&over)), None),
        Err(ClientError::Usage(UsageError::ResponseTooLong))
    );
    assert!(!c.has_transmit());
    assert!(c.is_idle());
    // Nothing changed: the longest that fits goes out after the empty 334.
    let fits = vec![b'x'; LONGEST_RESPONSE];
    c.authenticate(AuthCredentials::custom(mech("X-BIG"), Some(&fits)), None)
        .unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH X-BIG\r\n");

    // A built-in mechanism's initial response is held to the same line.
    let mut c = ready_client(&["AUTH XOAUTH2"]);
    let token = "t".repeat(LONGEST_RESPONSE);
    assert_eq!(
        c.authenticate(AuthCredentials::oauth2("user@example.net", token), None),
        Err(ClientError::Usage(UsageError::ResponseTooLong))
    );
    assert!(!c.has_transmit());
    assert!(c.is_idle());
}

#[test]
fn custom_challenge_waits_for_the_application() {
    let mut c = ready_client(&["AUTH CRAM-MD5"]);
    assert_eq!(
        c.auth_response(b"early"),
        Err(ClientError::Usage(UsageError::NoAuthChallenge))
    );
    c.authenticate(AuthCredentials::custom(mech("CRAM-MD5"), None), None)
        .unwrap();
    assert_eq!(
        c.auth_response(b"early"),
        Err(ClientError::Usage(UsageError::NoAuthChallenge))
    );
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    // The challenge and the final reply arrive together.
    let input = format!("334 {CRAM_CHALLENGE_B64}\r\n235 2.7.0 ok\r\n");
    let step = c.handle_input(input.as_bytes()).unwrap();
    let consumed = step.consumed;
    let Outcome::Event(ClientEvent::AuthChallenge {
        mechanism,
        challenge,
        round,
    }) = step.outcome
    else {
        panic!("{:?}", step.outcome);
    };
    assert_eq!(
        (mechanism.as_str(), &challenge[..], round),
        ("CRAM-MD5", CRAM_CHALLENGE, 1)
    );
    let rest = &input.as_bytes()[consumed..];
    assert_eq!(rest, b"235 2.7.0 ok\r\n");
    // Until the application answers, nothing more is read or sent, no
    // timeout runs, and other calls do not fit.
    for _ in 0..3 {
        let step = c.handle_input(rest).unwrap();
        assert_eq!(step.consumed, 0);
        assert!(matches!(step.outcome, Outcome::Paused));
    }
    assert_eq!(c.timeout(), None);
    assert!(!c.is_idle());
    let job = Job::new("a@example.net", &["b@example.org"], &[b"x"]);
    assert_eq!(
        c.send_mail(&job.envelope),
        Err(ClientError::Usage(UsageError::NotIdle))
    );
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH CRAM-MD5\r\n");

    c.auth_response(CRAM_ANSWER).unwrap();
    // One answer per challenge.
    assert_eq!(
        c.auth_response(CRAM_ANSWER),
        Err(ClientError::Usage(UsageError::NoAuthChallenge))
    );
    assert!(c.timeout().is_some());
    out.clear();
    c.poll_transmit(&mut out);
    assert_eq!(out, format!("{CRAM_ANSWER_B64}\r\n").as_bytes());
    // The 235 came in the read of the challenge, before the answer was
    // written: it cannot be the server's reply to it, and the session ends.
    let err = c.handle_input(rest).unwrap_err();
    assert!(
        matches!(&err, ClientError::UnexpectedReply(r) if r.code().get() == 235),
        "{err:?}"
    );
    assert!(c.is_closed() && !c.is_authenticated());

    // The final reply read once the answer is written completes the
    // exchange.
    let mut c = ready_client(&["AUTH CRAM-MD5"]);
    c.authenticate(AuthCredentials::custom(mech("CRAM-MD5"), None), None)
        .unwrap();
    c.poll_transmit(&mut Vec::new());
    let challenge = format!("334 {CRAM_CHALLENGE_B64}\r\n");
    let step = c.handle_input(challenge.as_bytes()).unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::AuthChallenge { round: 1, .. })
    ));
    c.auth_response(CRAM_ANSWER).unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, format!("{CRAM_ANSWER_B64}\r\n").as_bytes());
    let step = c.handle_input(b"235 2.7.0 ok\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ClientEvent::Authenticated { .. })
    ));
    assert!(c.is_authenticated() && c.is_idle());
}

#[test]
fn custom_initial_response_never_appears_in_debug_output() {
    let creds = AuthCredentials::custom(mech("X-TOKEN"), Some(b"hunter2-token"));
    let dbg = format!("{creds:?} {creds:#?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(
        dbg.contains("X-TOKEN") && dbg.contains("<redacted>"),
        "{dbg}"
    );

    let mut c = ready_client(&["AUTH X-TOKEN"]);
    c.authenticate(creds, None).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"));
    // Nor its base64.
    assert!(!dbg.contains("aHVudGVyMi10b2tlbg"));
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    assert_eq!(out, b"AUTH X-TOKEN aHVudGVyMi10b2tlbg==\r\n");
}

#[test]
fn custom_challenge_event_into_owned_keeps_it() {
    let ev = ClientEvent::AuthChallenge {
        mechanism: mech("CRAM-MD5"),
        challenge: CRAM_CHALLENGE.to_vec(),
        round: 1,
    };
    assert!(ev.reply().is_none());
    let owned = ev.into_owned();
    let smtp_proto::client::OwnedClientEvent::AuthChallenge {
        mechanism,
        challenge,
        round,
    } = owned
    else {
        panic!("{owned:?}");
    };
    assert_eq!(
        (mechanism, &challenge[..], round),
        (mech("CRAM-MD5"), CRAM_CHALLENGE, 1)
    );
}
