//! Target `sasl`: the SASL mechanisms of SMTP AUTH
//! (`smtp_proto::sasl`: `SaslServer` decoders and the client encoders).
//!
//! The first byte picks the mechanism (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)
//! and whether the AUTH command carried an initial response; the rest,
//! split at LF (a CR before it dropped), is the client's decoded responses
//! in order. The target asserts:
//!
//! - the server never panics; it asks for the response each mechanism
//!   defines (an empty challenge, or `Username:` / `Password:` for LOGIN),
//!   and once the exchange has finished or failed every further response
//!   is refused with `SaslError::Finished`;
//! - credentials come from the mechanism in use, and their `Debug` output
//!   does not depend on the secret (a copy with the secret blanked prints
//!   the same);
//! - whatever decodes re-encodes: the client encoder of the mechanism
//!   accepts the decoded values, and its response decodes to the same
//!   credentials (for LOGIN, `LoginClient` answering the server's
//!   challenges, with and without an initial response).
//!
//! The same bytes also drive the encoders directly: values drawn from the
//! input (with `arbitrary`) are encoded, and whenever an encoder accepts
//! them, a fresh server decodes its response to exactly those values. The
//! PLAIN encoder refuses a value exactly when it holds a NUL, or is an
//! empty authcid or password, at any length (values past
//! `sasl::PLAIN_MAX_LEN`, the 255 octets RFC 4616 §2 asks a server to
//! accept at least, are drawn too); `LoginClient::try_new` refuses
//! exactly the values the LOGIN decoder refuses.

use arbitrary::Unstructured;
use smtp_proto::sasl::{
    self, Credentials, LoginClient, SaslError, SaslMechanism, SaslServer, SaslStep, Secret,
};

/// The mechanisms, indexed by the low bits of the first byte.
pub const MECHANISMS: [SaslMechanism; 4] = [
    SaslMechanism::Plain,
    SaslMechanism::Login,
    SaslMechanism::XOAuth2,
    SaslMechanism::OAuthBearer,
];

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mechanism = MECHANISMS[usize::from(first & 3)];
    let mut responses = rest
        .split(|&b| b == b'\n')
        .map(|r| r.strip_suffix(b"\r").unwrap_or(r));
    let initial = if first & 4 != 0 {
        responses.next()
    } else {
        None
    };
    exchange(mechanism, initial, responses);
    encoders(data);
}

/// Runs one server exchange and checks it.
fn exchange<'a>(
    mechanism: SaslMechanism,
    initial: Option<&'a [u8]>,
    mut responses: impl Iterator<Item = &'a [u8]>,
) {
    let mut server = SaslServer::new(mechanism);
    assert_eq!(server.mechanism(), mechanism);
    let mut step = server.start(initial);
    // A LOGIN exchange takes at most two responses; the others one.
    for _ in 0..3 {
        match step {
            Ok(SaslStep::Challenge(c)) => {
                let expected: &[&[u8]] = match mechanism {
                    SaslMechanism::Login => &[b"Username:", b"Password:"],
                    _ => &[b""],
                };
                assert!(expected.contains(&c), "{mechanism:?} challenged with {c:?}");
                let Some(r) = responses.next() else { return };
                step = server.respond(r);
            }
            Ok(SaslStep::Done(ref creds)) => {
                assert_eq!(creds.mechanism(), mechanism);
                check_redacted(creds);
                reencode(creds);
                break;
            }
            Err(e) => {
                assert_ne!(e, SaslError::Finished, "a fresh exchange reported Finished");
                break;
            }
        }
    }
    assert!(
        !matches!(step, Ok(SaslStep::Challenge(_))),
        "{mechanism:?} asked for a third response"
    );
    let after = server.respond(b"more");
    assert_eq!(after, Err(SaslError::Finished), "a response after the end");
    assert_eq!(server.start(None), Err(SaslError::Finished), "a restart");
}

/// `Debug` of credentials does not depend on the secret.
fn check_redacted(creds: &Credentials) {
    let mut blank = creds.clone();
    match &mut blank {
        Credentials::Plain { password, .. } | Credentials::Login { password, .. } => {
            *password = Secret::new("");
        }
        Credentials::XOAuth2 { token, .. } | Credentials::OAuthBearer { token, .. } => {
            *token = Secret::new("");
        }
        _ => {}
    }
    assert_eq!(
        format!("{creds:?}"),
        format!("{blank:?}"),
        "Debug shows the secret"
    );
}

/// Decodes `response` with a fresh server of `mechanism`, sent as the
/// initial response and after an empty challenge; both must agree.
fn decode(mechanism: SaslMechanism, response: &[u8]) -> Result<Credentials, SaslError> {
    let mut a = SaslServer::new(mechanism);
    let initial = a.start(Some(response));
    let mut b = SaslServer::new(mechanism);
    assert_eq!(b.start(None), Ok(SaslStep::Challenge(b"")));
    assert_eq!(
        b.respond(response),
        initial,
        "initial response and challenge differ"
    );
    match initial {
        Ok(SaslStep::Done(c)) => Ok(c),
        Ok(SaslStep::Challenge(c)) => panic!("{mechanism:?} challenged again with {c:?}"),
        Err(e) => Err(e),
    }
}

/// Runs a LOGIN exchange between `LoginClient` and a fresh server.
fn login(username: &str, password: &str, initial: bool) -> Result<Credentials, SaslError> {
    let mut client = LoginClient::new(username, password);
    let mut server = SaslServer::new(SaslMechanism::Login);
    let mut step = if initial {
        let ir = client.initial_response();
        server.start(Some(&ir))
    } else {
        server.start(None)
    };
    for _ in 0..2 {
        match step {
            Ok(SaslStep::Challenge(c)) => step = server.respond(&client.respond(c)),
            Ok(SaslStep::Done(c)) => return Ok(c),
            Err(e) => return Err(e),
        }
    }
    match step {
        Ok(SaslStep::Done(c)) => Ok(c),
        Err(e) => Err(e),
        other => panic!("LOGIN did not finish after two responses: {other:?}"),
    }
}

/// Whatever decodes re-encodes to a response that decodes the same.
fn reencode(creds: &Credentials) {
    let again = match creds {
        Credentials::Plain {
            authzid,
            authcid,
            password,
        } => {
            let r = sasl::plain_response(authzid.as_deref(), authcid, password.expose())
                .unwrap_or_else(|e| panic!("decoded {creds:?} does not re-encode: {e}"));
            decode(SaslMechanism::Plain, &r)
        }
        Credentials::Login { username, password } => {
            let a = login(username, password.expose(), false);
            let b = login(username, password.expose(), true);
            assert_eq!(a, b, "LOGIN with and without initial response differ");
            a
        }
        Credentials::XOAuth2 { user, token } => {
            let r = sasl::xoauth2_response(user, token.expose())
                .unwrap_or_else(|e| panic!("decoded {creds:?} does not re-encode: {e}"));
            decode(SaslMechanism::XOAuth2, &r)
        }
        Credentials::OAuthBearer {
            authzid,
            host,
            port,
            token,
        } => {
            let r = sasl::oauthbearer_response(
                authzid.as_deref(),
                host.as_deref(),
                *port,
                token.expose(),
            )
            .unwrap_or_else(|e| panic!("decoded {creds:?} does not re-encode: {e}"));
            decode(SaslMechanism::OAuthBearer, &r)
        }
        _ => return,
    };
    assert_eq!(
        again.as_ref(),
        Ok(creds),
        "re-encoded credentials decode differently"
    );
}

/// A short string drawn from a small alphabet that holds the delimiters of
/// every mechanism, so encoders meet them often.
fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const ALPHABET: &[char] = &[
        'a', 'b', 'Z', '0', ' ', '=', ',', '@', '\0', '\u{1}', '\t', '\n', 'é', '2', 'C', 'D',
    ];
    if u.ratio(1, 8)? {
        return u.arbitrary::<String>();
    }
    let len = u.int_in_range(0..=12)?;
    (0..len).map(|_| u.choose(ALPHABET).copied()).collect()
}

/// Values drawn from the input, encoded and decoded.
fn encoders(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = encode_one(&mut u);
}

fn encode_one(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    match u.int_in_range(0..=3u8)? {
        0 => {
            let authzid = if u.arbitrary()? { Some(text(u)?) } else { None };
            let (authcid, mut password) = (text(u)?, text(u)?);
            // RFC 4616 §2's 255 octets are a floor: longer values are
            // encoded and decoded too.
            if u.ratio(1, 4)? {
                password = password.repeat(sasl::PLAIN_MAX_LEN / password.len().max(1) + 1);
            }
            let refusable = [authzid.as_deref().unwrap_or(""), &authcid, &password]
                .iter()
                .any(|v| v.contains('\0'))
                || authcid.is_empty()
                || password.is_empty();
            let encoded = sasl::plain_response(authzid.as_deref(), &authcid, &password);
            assert_eq!(
                encoded.is_err(),
                refusable,
                "PLAIN encoder on {} octets of password: {encoded:?}",
                password.len()
            );
            if let Ok(r) = encoded {
                let expected = Credentials::Plain {
                    authzid: authzid.filter(|a| !a.is_empty()),
                    authcid,
                    password: Secret::new(password),
                };
                assert_eq!(
                    decode(SaslMechanism::Plain, &r),
                    Ok(expected),
                    "PLAIN {r:?}"
                );
            }
        }
        1 => {
            let (username, password) = (text(u)?, text(u)?);
            let initial = u.arbitrary()?;
            let got = login(&username, &password, initial);
            // The client's check refuses what the server refuses.
            assert_eq!(
                LoginClient::try_new(&username, &password).is_err(),
                got.is_err(),
                "LoginClient::try_new and the LOGIN decoder differ: {got:?}"
            );
            if [&username, &password]
                .iter()
                .any(|v| v.is_empty() || v.contains('\0'))
            {
                // Refused by the server, as PLAIN refuses both.
                assert!(got.is_err(), "LOGIN with an empty value or a NUL: {got:?}");
            } else {
                let expected = Credentials::Login {
                    username,
                    password: Secret::new(password),
                };
                assert_eq!(got, Ok(expected), "LOGIN");
            }
        }
        2 => {
            let (user, token) = (text(u)?, text(u)?);
            if let Ok(r) = sasl::xoauth2_response(&user, &token) {
                let expected = Credentials::XOAuth2 {
                    user,
                    token: Secret::new(token),
                };
                assert_eq!(
                    decode(SaslMechanism::XOAuth2, &r),
                    Ok(expected),
                    "XOAUTH2 {r:?}"
                );
            }
        }
        _ => {
            let authzid = if u.arbitrary()? { Some(text(u)?) } else { None };
            let host = if u.arbitrary()? { Some(text(u)?) } else { None };
            let port: Option<u16> = u.arbitrary()?;
            let token = text(u)?;
            if let Ok(r) =
                sasl::oauthbearer_response(authzid.as_deref(), host.as_deref(), port, &token)
            {
                // An empty authzid is left out, so it reads back as none.
                let expected = Credentials::OAuthBearer {
                    authzid: authzid.filter(|a| !a.is_empty()),
                    host,
                    port,
                    token: Secret::new(token),
                };
                assert_eq!(
                    decode(SaslMechanism::OAuthBearer, &r),
                    Ok(expected),
                    "OAUTHBEARER {r:?}"
                );
            }
        }
    }
    Ok(())
}
