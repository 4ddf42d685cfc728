//! The application logic of the `serve` examples (tokio and blocking),
//! driven through the session without IO: what it asks the example to do
//! with the message it holds; and the command line they share.

#[allow(dead_code)]
#[path = "../examples/support/maildir.rs"]
mod maildir;
#[allow(dead_code)]
#[path = "../examples/support/serve_app.rs"]
mod serve_app;

use std::time::Duration;

use clap::Parser;
use serve_app::{Args, Envelope, Next};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use smtp_proto_tokio::smtp_proto::session::Outcome;

/// Feeds `input` to the session, hands every event to the envelope and
/// returns what it asked for, by name. Bounded by the input's length.
fn feed(session: &mut ServerSession, envelope: &mut Envelope, input: &[u8]) -> Vec<String> {
    let mut nexts = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for _ in 0..=input.len() + 16 {
        let step = session.handle_input(&input[start..]).expect("step");
        start += step.consumed;
        match step.outcome {
            Outcome::Event(event) => {
                let next = envelope.on_event(session, event, &None).expect("event");
                if matches!(next, Next::Deliver) {
                    envelope.finish(session, Ok("Q1")).expect("finish");
                }
                let name = format!("{next:?}");
                nexts.push(name.split('(').next().unwrap_or_default().to_owned());
            }
            Outcome::NeedInput if start == input.len() => break,
            Outcome::NeedInput => panic!("input left that the session does not take"),
            Outcome::Closed => break,
            _ => {}
        }
        session.poll_transmit(&mut out);
    }
    assert_eq!(start, input.len(), "every byte taken");
    nexts
}

fn session(max_size: u64) -> (ServerSession, Envelope) {
    let mut config = ServerConfig::new("mx.example.net");
    config.max_message_size = Some(max_size);
    let mut session = ServerSession::new(config).expect("session");
    session.greet().expect("greet");
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    (session, Envelope::default())
}

#[test]
fn a_message_the_session_refuses_for_its_size_is_dropped_with_its_file() {
    let (mut session, mut envelope) = session(100);
    let nexts = feed(
        &mut session,
        &mut envelope,
        b"EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n\
          RCPT TO:<b@example.net>\r\nDATA\r\n",
    );
    assert_eq!(nexts, ["Done", "Done", "Done", "Discard"]);
    // Part of the body, within the limit: held (and, past the spill size,
    // written to the message's file).
    let part = b"Subject: x\r\n\r\n".repeat(5);
    let nexts = feed(&mut session, &mut envelope, &part);
    assert!(nexts.iter().all(|n| n == "Done"), "{nexts:?}");
    assert_eq!(envelope.message, part);
    // The rest goes over the limit; the session refuses the message at
    // its end, by itself.
    let mut rest = b"0123456789\r\n".repeat(20);
    rest.extend_from_slice(b".\r\n");
    let nexts = feed(&mut session, &mut envelope, &rest);
    assert_eq!(
        nexts,
        ["MessageRefused"],
        "the refusal must drop the message and its file"
    );
    assert!(envelope.message.is_empty(), "nothing of it is kept");
}

#[test]
fn a_command_refused_inside_the_transaction_keeps_the_transaction() {
    let (mut session, mut envelope) = session(1000);
    let nexts = feed(
        &mut session,
        &mut envelope,
        b"EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n\
          RCPT TO:<b@example.net>\r\nRCPT TO:<bad\r\n",
    );
    assert_eq!(nexts, ["Done", "Done", "Done", "Refused"]);
    assert_eq!(envelope.rcpts, ["b@example.net"]);
    // The transaction goes on: a message after it is delivered.
    let nexts = feed(&mut session, &mut envelope, b"DATA\r\nhello\r\n.\r\n");
    assert_eq!(nexts, ["Discard", "Done", "Deliver"]);
}

fn args(extra: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("serve").chain(extra.iter().copied())).expect("args")
}

#[test]
fn a_connection_is_bounded_in_time_unless_asked_otherwise() {
    // By default: half an hour, so a client trickling a message cannot
    // hold a connection slot for ever.
    assert_eq!(args(&[]).session_timeout(), Some(Duration::from_secs(1800)));
    assert_eq!(
        args(&["--session-timeout", "7"]).session_timeout(),
        Some(Duration::from_secs(7))
    );
    assert_eq!(args(&["--session-timeout", "0"]).session_timeout(), None);
    assert!(Args::try_parse_from(["serve", "--session-timeout", "-1"]).is_err());
    assert!(Args::try_parse_from(["serve", "--session-timeout", "x"]).is_err());
}

#[test]
fn max_connections_zero_serves_one_connection() {
    assert_eq!(args(&[]).max_connections(), 1024);
    assert_eq!(args(&["--max-connections", "0"]).max_connections(), 1);
    assert_eq!(args(&["--max-connections", "1"]).max_connections(), 1);
    assert_eq!(args(&["--max-connections", "5"]).max_connections(), 5);
}

/// `--max-recipients` and `--max-messages` set the limits and turn on
/// their `LIMITS` advertisement (RFC 9422); without either, the default
/// of 100 recipients holds and nothing is advertised. 0, which the
/// session refuses, is a usage error.
#[test]
fn limit_flags_set_and_advertise_the_limits() {
    let config = |extra: &[&str]| serve_app::server_config(&args(extra)).expect("config").0;
    let c = config(&[]);
    assert_eq!(
        (c.limits, c.max_recipients, c.max_transactions),
        (false, 100, None)
    );
    let c = config(&["--max-recipients", "2"]);
    assert_eq!(
        (c.limits, c.max_recipients, c.max_transactions),
        (true, 2, None)
    );
    let c = config(&["--max-messages", "3"]);
    assert_eq!(
        (c.limits, c.max_recipients, c.max_transactions),
        (true, 100, Some(3))
    );
    assert_usage_error(&["--max-messages", "0"]);
    assert_usage_error(&["--max-recipients", "0"]);
}

/// Asserts that `extra` is refused as the command line is read: a usage
/// error, which `Args::parse` prints and exits on with status 2.
fn assert_usage_error(extra: &[&str]) -> String {
    match Args::try_parse_from(std::iter::once("serve").chain(extra.iter().copied())) {
        Ok(args) => panic!("{extra:?} accepted: {args:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{extra:?}: {e}");
            e.to_string()
        }
    }
}

/// A value the server would only refuse once started (then with exit
/// status 1 and a debug dump) is refused as a usage error, exit status 2;
/// the values it takes still parse.
#[test]
fn bad_option_values_are_usage_errors() {
    assert_usage_error(&["--auth", "alice", "--auth-plaintext"]);
    // Not repeated in the error: it may be a password.
    let error = assert_usage_error(&["--auth", ":s3cret", "--auth-plaintext"]);
    assert!(!error.contains("s3cret"), "{error}");
    assert_usage_error(&["--hostname", "bad host"]);
    assert_usage_error(&["--hostname", "mx..example"]);
    assert_usage_error(&["--hostname", "bücher.example"]);
    assert_usage_error(&["--max-recipients", "x"]);
    assert_eq!(
        args(&["--hostname", "mx.example.net"]).hostname,
        "mx.example.net"
    );
    assert_eq!(args(&["--hostname", "[192.0.2.1]"]).hostname, "[192.0.2.1]");
    // The password may hold colons.
    let a = args(&["--auth", "alice:s3:cret", "--auth-plaintext"]);
    let (_, login) = serve_app::server_config(&a).expect("config");
    assert_eq!(login, Some(("alice".to_owned(), "s3:cret".to_owned())));
}

/// AUTH is offered only over TLS unless `--auth-plaintext` says
/// otherwise: `--auth` with neither a certificate nor `--auth-plaintext`
/// would start a server that never offers AUTH, so it is a usage error;
/// so is `--auth-plaintext` without `--auth`.
#[test]
fn auth_needs_a_channel_to_be_offered_on() {
    assert_usage_error(&["--auth", "alice:s3cret"]);
    assert_usage_error(&["--auth-plaintext"]);
    let tls = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];
    let with_tls = args(&[&["--auth", "alice:s3cret"], &tls[..]].concat());
    let (config, _) = serve_app::server_config(&with_tls).expect("config");
    assert!(config.auth_requires_tls, "AUTH only after STARTTLS");
    let implicit = args(&[&["--auth", "alice:s3cret", "--implicit-tls"], &tls[..]].concat());
    assert!(serve_app::server_config(&implicit).is_ok());
    let plain = args(&["--auth", "alice:s3cret", "--auth-plaintext"]);
    let (config, _) = serve_app::server_config(&plain).expect("config");
    assert!(!config.auth_requires_tls, "AUTH before TLS, as asked");
}

/// `--greeting-delay` is a wait in milliseconds before the greeting; none
/// by default, and none on implicit TLS, where the client speaks first.
/// An early talker's refusal is a 554 5.5.1 naming the host first.
#[test]
fn greeting_delay_flag_and_the_early_talker_refusal() {
    assert_eq!(args(&[]).greeting_delay(), None);
    assert_eq!(args(&["--greeting-delay", "0"]).greeting_delay(), None);
    assert_eq!(
        args(&["--greeting-delay", "250"]).greeting_delay(),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        args(&[
            "--greeting-delay",
            "250",
            "--implicit-tls",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem"
        ])
        .greeting_delay(),
        None
    );
    let reply = serve_app::early_talker("mx.example.com").expect("a valid reply");
    assert_eq!(
        reply.to_bytes(),
        b"554 5.5.1 mx.example.com Protocol error: input before the greeting\r\n"
    );
}

#[test]
fn credentials_match_only_when_every_octet_does() {
    use serve_app::same_secret;
    assert!(same_secret("s3cret", "s3cret"));
    assert!(same_secret("", ""));
    // Differing last octet, a prefix, a longer guess, another case.
    assert!(!same_secret("s3crex", "s3cret"));
    assert!(!same_secret("s3cre", "s3cret"));
    assert!(!same_secret("s3crets", "s3cret"));
    assert!(!same_secret("S3CRET", "s3cret"));
    assert!(!same_secret("", "s3cret"));
}

/// Runs `AUTH PLAIN` with `response` (before base64) against a session
/// that offers PLAIN without TLS and accepts `alice`/`s3cret`: what the
/// envelope asked for, and the reply.
fn auth_plain(response: &[u8]) -> (String, String) {
    use base64::Engine as _;
    use smtp_proto_tokio::smtp_proto::sasl::SaslMechanism;
    let mut config = ServerConfig::new("mx.example.net");
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    config.auth_requires_tls = false;
    let mut session = ServerSession::new(config).expect("session");
    session.greet().expect("greet");
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    let mut envelope = Envelope::default();
    let login = Some(("alice".to_owned(), "s3cret".to_owned()));
    let input = format!(
        "EHLO client.example.com\r\nAUTH PLAIN {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(response)
    );
    let mut start = 0;
    let mut last = String::new();
    // Bounded: two commands, each at most a few steps.
    for _ in 0..16 {
        let step = session
            .handle_input(&input.as_bytes()[start..])
            .expect("step");
        start += step.consumed;
        match step.outcome {
            Outcome::Event(event) => {
                let next = envelope
                    .on_event(&mut session, event, &login)
                    .expect("event");
                last = format!("{next:?}");
            }
            _ if start == input.len() => break,
            _ => {}
        }
    }
    out.clear();
    session.poll_transmit(&mut out);
    let reply = String::from_utf8_lossy(&out)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    (last, reply)
}

/// RFC 4616 §2: with an authorization identity, the server checks that
/// the credentials "permit the client to act as" it, and the login fails
/// if they do not. The example's one login may act only as itself: a
/// right password with another authzid is refused, not accepted as if
/// the client had asked for nothing.
#[test]
fn plain_with_an_authzid_other_than_the_user_is_refused() {
    let (next, reply) = auth_plain(b"\0alice\0s3cret");
    assert_eq!(next, "Authenticated(\"alice\")");
    assert!(reply.starts_with("235 "), "{reply}");
    let (next, reply) = auth_plain(b"alice\0alice\0s3cret");
    assert_eq!(next, "Authenticated(\"alice\")");
    assert!(reply.starts_with("235 "), "{reply}");
    let (next, reply) = auth_plain(b"postmaster\0alice\0s3cret");
    assert_eq!(next, "AuthFailed");
    assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    let (next, reply) = auth_plain(b"\0alice\0wrong");
    assert_eq!(next, "AuthFailed");
    assert!(reply.starts_with("535 5.7.8 "), "{reply}");
}
