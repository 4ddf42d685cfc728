//! EHLO replies: capabilities from real servers, odd shapes, the builder,
//! and the one-pass decoder agreeing with the two-pass parse.

use proptest::prelude::*;
use smtp_proto::reply::{
    AuthMechanism, AuthMechanisms, Capability, Decoded, DecoderConfig, EhloDecoded, EhloError,
    EhloReply, EhloReplyBuilder, Extension, FutureRelease, InvalidReply, Limits, LineEndings,
    Reply, ReplyDecoder,
};
use smtp_proto::status::ReplyCode;

fn reply(input: &[u8]) -> Reply<'_> {
    Reply::parse(input).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)))
}

/// Parses `input` both ways and checks they agree.
fn ehlo(input: &[u8]) -> EhloReply<'_> {
    let two_pass = EhloReply::parse(&reply(input));
    let mut decoder = ReplyDecoder::new();
    let one_pass = match decoder.decode_ehlo(input) {
        Ok(EhloDecoded::Reply { ehlo, consumed, .. }) => {
            assert_eq!(consumed, input.len());
            ehlo
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(one_pass, two_pass);
    two_pass.unwrap_or_else(|e| panic!("{e}"))
}

fn caps(e: &EhloReply<'_>) -> Vec<String> {
    e.capabilities().map(|c| c.to_string()).collect()
}

const POSTFIX: &[u8] = b"250-mail.example.org\r\n\
250-PIPELINING\r\n\
250-SIZE 10240000\r\n\
250-VRFY\r\n\
250-ETRN\r\n\
250-STARTTLS\r\n\
250-AUTH PLAIN LOGIN\r\n\
250-AUTH=PLAIN LOGIN\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-8BITMIME\r\n\
250-DSN\r\n\
250-SMTPUTF8\r\n\
250 CHUNKING\r\n";

const EXIM: &[u8] = b"250-mx.example.net Hello client.example.com [192.0.2.10]\r\n\
250-SIZE 52428800\r\n\
250-LIMITS MAILMAX=1000 RCPTMAX=50000\r\n\
250-8BITMIME\r\n\
250-PIPELINING\r\n\
250-PIPECONNECT\r\n\
250-AUTH PLAIN LOGIN CRAM-MD5\r\n\
250-CHUNKING\r\n\
250-STARTTLS\r\n\
250-PRDR\r\n\
250 HELP\r\n";

const GMAIL: &[u8] = b"250-smtp.gmail.com at your service, [203.0.113.5]\r\n\
250-SIZE 35882577\r\n\
250-8BITMIME\r\n\
250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n\
250-CHUNKING\r\n\
250 SMTPUTF8\r\n";

const EXCHANGE: &[u8] = b"250-BN8NAM11FT066.mail.protection.outlook.com Hello [198.51.100.7]\r\n\
250-SIZE 157286400\r\n\
250-PIPELINING\r\n\
250-DSN\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-STARTTLS\r\n\
250-8BITMIME\r\n\
250-BINARYMIME\r\n\
250-CHUNKING\r\n\
250 SMTPUTF8\r\n";

const SMTP_SINK: &[u8] = b"250-sink.example.org\r\n\
250-PIPELINING\r\n\
250-8BITMIME\r\n\
250-XCLIENT NAME ADDR PROTO HELO\r\n\
250 \r\n";

#[test]
fn postfix_ehlo() {
    let e = ehlo(POSTFIX);
    assert_eq!(e.domain(), "mail.example.org");
    assert_eq!(e.greeting(), b"");
    for ext in [
        Extension::Pipelining,
        Extension::Size,
        Extension::Vrfy,
        Extension::Etrn,
        Extension::StartTls,
        Extension::Auth,
        Extension::EnhancedStatusCodes,
        Extension::EightBitMime,
        Extension::Dsn,
        Extension::SmtpUtf8,
        Extension::Chunking,
    ] {
        assert!(e.has(ext), "{ext}");
    }
    assert!(!e.has(Extension::BinaryMime));
    assert!(!e.has(Extension::RequireTls));
    assert_eq!(e.max_size(), Some(10_240_000));
    assert!(e.supports_auth(AuthMechanism::Plain));
    assert!(e.supports_auth(AuthMechanism::Login));
    assert!(!e.supports_auth(AuthMechanism::CramMd5));
    // Both AUTH lines are listed, the old form too.
    let mechs: Vec<_> = e.auth_mechanisms().map(|m| m.name()).collect();
    assert_eq!(mechs, ["PLAIN", "LOGIN", "PLAIN", "LOGIN"]);
    assert_eq!(e.unknown_count(), 0);
    assert_eq!(
        caps(&e),
        [
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "AUTH PLAIN LOGIN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ]
    );
}

#[test]
fn exim_ehlo_with_limits_and_unknown_capabilities() {
    let e = ehlo(EXIM);
    assert_eq!(e.domain(), "mx.example.net");
    assert_eq!(e.greeting(), b"Hello client.example.com [192.0.2.10]");
    assert!(e.has(Extension::Limits));
    assert_eq!(
        e.limits(),
        Limits {
            rcpt_max: Some(50000),
            mail_max: Some(1000),
            rcpt_domain_max: None,
        }
    );
    assert!(e.has(Extension::Help));
    assert!(e.supports_auth(AuthMechanism::CramMd5));
    assert_eq!(e.unknown_count(), 2);
    let unknown: Vec<_> = e.unknown().map(|c| c.to_string()).collect();
    assert_eq!(unknown, ["PIPECONNECT", "PRDR"]);
}

#[test]
fn gmail_ehlo_with_unknown_auth_mechanisms() {
    let e = ehlo(GMAIL);
    assert_eq!(e.domain(), "smtp.gmail.com");
    assert_eq!(e.greeting(), b"at your service, [203.0.113.5]");
    assert_eq!(e.max_size(), Some(35_882_577));
    assert!(e.supports_auth(AuthMechanism::XOAuth2));
    assert!(e.supports_auth(AuthMechanism::OAuthBearer));
    assert!(e.supports_auth(AuthMechanism::Other("plain-clienttoken")));
    assert!(!e.supports_auth(AuthMechanism::Other("X-UNKNOWN")));
    assert!(!e.has(Extension::StartTls));
    let mechs: Vec<_> = e.auth_mechanisms().collect();
    assert_eq!(
        mechs,
        [
            AuthMechanism::Login,
            AuthMechanism::Plain,
            AuthMechanism::XOAuth2,
            AuthMechanism::Other("PLAIN-CLIENTTOKEN"),
            AuthMechanism::OAuthBearer,
            AuthMechanism::Other("XOAUTH"),
        ]
    );
}

#[test]
fn exchange_ehlo() {
    let e = ehlo(EXCHANGE);
    assert_eq!(e.domain(), "BN8NAM11FT066.mail.protection.outlook.com");
    assert!(e.has(Extension::BinaryMime));
    assert!(!e.has(Extension::Auth));
    assert_eq!(e.max_size(), Some(157_286_400));
}

#[test]
fn smtp_sink_trailing_empty_line_is_accepted() {
    let e = ehlo(SMTP_SINK);
    assert_eq!(e.domain(), "sink.example.org");
    assert!(e.has(Extension::XClient));
    assert_eq!(e.xclient_attributes(), "NAME ADDR PROTO HELO");
    assert_eq!(
        caps(&e),
        ["PIPELINING", "8BITMIME", "XCLIENT NAME ADDR PROTO HELO"]
    );
}

#[test]
fn single_line_ehlo_has_no_capabilities() {
    let e = ehlo(b"250 tiny.example\r\n");
    assert_eq!(e.domain(), "tiny.example");
    assert!(e.extensions().is_empty());
    assert_eq!(e.capabilities().count(), 0);
    let e = ehlo(b"250 [192.0.2.1] hi there\r\n");
    assert_eq!(e.domain(), "[192.0.2.1]");
    assert_eq!(e.greeting(), b"hi there");
}

#[test]
fn keywords_are_case_insensitive() {
    let e = ehlo(
        b"250-mx\r\n250-pipelining\r\n250-Size 1000\r\n250-auth plain Login\r\n250 smtputf8\r\n",
    );
    assert!(e.has(Extension::Pipelining));
    assert!(e.has(Extension::SmtpUtf8));
    assert_eq!(e.max_size(), Some(1000));
    assert!(e.supports_auth(AuthMechanism::Plain));
    assert!(e.supports_auth(AuthMechanism::Login));
    assert_eq!(
        caps(&e),
        ["PIPELINING", "SIZE 1000", "AUTH plain Login", "SMTPUTF8"]
    );
}

#[test]
fn every_typed_capability_parses() {
    let table: &[(&str, Capability<'_>)] = &[
        ("SIZE", Capability::Size(None)),
        ("SIZE 0", Capability::Size(Some(0))),
        ("SIZE 52428800", Capability::Size(Some(52_428_800))),
        ("8BITMIME", Capability::EightBitMime),
        ("PIPELINING", Capability::Pipelining),
        ("STARTTLS", Capability::StartTls),
        (
            "AUTH PLAIN LOGIN",
            Capability::Auth(AuthMechanisms::new("PLAIN LOGIN")),
        ),
        ("AUTH=LOGIN", Capability::Auth(AuthMechanisms::new("LOGIN"))),
        ("CHUNKING", Capability::Chunking),
        ("BINARYMIME", Capability::BinaryMime),
        ("SMTPUTF8", Capability::SmtpUtf8),
        ("ENHANCEDSTATUSCODES", Capability::EnhancedStatusCodes),
        ("DSN", Capability::Dsn),
        ("DELIVERBY", Capability::DeliverBy(None)),
        ("DELIVERBY 240", Capability::DeliverBy(Some(240))),
        (
            "FUTURERELEASE 604800 2026-12-03T00:00:00Z",
            Capability::FutureRelease(FutureRelease {
                max_interval: 604_800,
                max_datetime: "2026-12-03T00:00:00Z",
            }),
        ),
        ("MT-PRIORITY", Capability::MtPriority(None)),
        ("MT-PRIORITY MIXER", Capability::MtPriority(Some("MIXER"))),
        ("REQUIRETLS", Capability::RequireTls),
        ("RRVS", Capability::Rrvs),
        ("NO-SOLICITING", Capability::NoSoliciting(None)),
        (
            "NO-SOLICITING net.example:ADV",
            Capability::NoSoliciting(Some("net.example:ADV")),
        ),
        (
            "LIMITS RCPTMAX=20 MAILMAX=5 RCPTDOMAINMAX=3 FUTURE=1",
            Capability::Limits(Limits {
                rcpt_max: Some(20),
                mail_max: Some(5),
                rcpt_domain_max: Some(3),
            }),
        ),
        ("ETRN", Capability::Etrn),
        ("VRFY", Capability::Vrfy),
        ("HELP", Capability::Help),
        ("XCLIENT NAME ADDR", Capability::XClient("NAME ADDR")),
        (
            "X-EXPS GSSAPI NTLM",
            Capability::Other {
                keyword: "X-EXPS",
                params: "GSSAPI NTLM",
            },
        ),
        // Malformed parameters of a known keyword keep the line, untyped.
        (
            "SIZE big",
            Capability::Other {
                keyword: "SIZE",
                params: "big",
            },
        ),
        // LIMITS is read limit by limit: one without a usable number is
        // ignored on its own (RFC 9422 §3), the line stays LIMITS.
        ("LIMITS RCPTMAX=lots", Capability::Limits(Limits::default())),
    ];
    for (line, expected) in table {
        let got = Capability::parse(line);
        assert_eq!(&got, expected, "{line}");
        // And the same inside a reply, through both parsers.
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        let e = ehlo(input.as_bytes());
        assert_eq!(e.capabilities().collect::<Vec<_>>(), [*expected], "{line}");
        assert_eq!(e.extensions().iter().next(), expected.extension(), "{line}");
    }
}

/// Parameters after a keyword that takes none are ignored: the extension
/// is still advertised (a `STARTTLS` with a stray word must not read as
/// no STARTTLS).
#[test]
fn parameters_of_a_parameterless_extension_are_ignored() {
    for (line, expected) in [
        ("STARTTLS x", Capability::StartTls),
        ("PIPELINING  a b", Capability::Pipelining),
        ("8BITMIME 1", Capability::EightBitMime),
        ("SMTPUTF8 yes", Capability::SmtpUtf8),
    ] {
        assert_eq!(Capability::parse(line), expected, "{line}");
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        let e = ehlo(input.as_bytes());
        assert_eq!(
            e.extensions().iter().collect::<Vec<_>>(),
            [expected.extension().unwrap()]
        );
        assert_eq!(e.unknown_count(), 0, "{line}");
    }
}

#[test]
fn typed_values_are_exposed_on_the_reply() {
    let input = b"250-mx\r\n250-DELIVERBY 240\r\n250-FUTURERELEASE 604800 2026-12-03T00:00:00Z\r\n\
250-MT-PRIORITY STANAG4406\r\n250-NO-SOLICITING a b\r\n250 SIZE\r\n";
    let e = ehlo(input);
    assert_eq!(e.deliver_by(), Some(240));
    assert_eq!(
        e.future_release(),
        Some(FutureRelease {
            max_interval: 604_800,
            max_datetime: "2026-12-03T00:00:00Z",
        })
    );
    assert_eq!(e.mt_priority_profile(), Some("STANAG4406"));
    // Two solicitation keywords do not fit the typed form: kept as unknown.
    assert!(!e.has(Extension::NoSoliciting));
    assert_eq!(e.unknown_count(), 1);
    assert!(e.has(Extension::Size));
    assert_eq!(e.size(), None);
    assert_eq!(e.max_size(), None);
}

/// `limit-name-value = limit-name ["=" limit-value]` (RFC 9422 §3): a
/// limit may come without a value. One this crate does not know is
/// ignored, with or without a value, and the known ones are still read.
#[test]
fn limits_without_a_value_are_ignored_and_the_others_read() {
    let want = Limits {
        rcpt_max: Some(50),
        mail_max: Some(10),
        rcpt_domain_max: None,
    };
    for line in [
        "LIMITS RCPTMAX=50 FUTURE-FLAG MAILMAX=10",
        "LIMITS FUTURE_FLAG RCPTMAX=50 MAILMAX=10",
        "LIMITS RCPTMAX=50 MAILMAX=10 X",
    ] {
        assert_eq!(Capability::parse(line), Capability::Limits(want), "{line}");
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        let e = ehlo(input.as_bytes());
        assert!(e.has(Extension::Limits), "{line}");
        assert_eq!(e.limits(), want, "{line}");
        assert_eq!(e.unknown_count(), 0, "{line}");
    }
}

/// A known limit without a usable number fits `limit-value` (RFC 9422 §3)
/// but not its own value syntax (§4): the client does not understand it and
/// ignores it alone. The valid limits of the same line are still read and
/// the line is still LIMITS, through both parsers. Before, the whole line
/// became an unknown capability and `MAILMAX=10` was lost.
#[test]
fn a_limit_without_a_usable_number_is_ignored_and_the_others_read() {
    let want = Limits {
        rcpt_max: None,
        mail_max: Some(10),
        rcpt_domain_max: Some(3),
    };
    for line in [
        "LIMITS RCPTMAX MAILMAX=10 RCPTDOMAINMAX=3",
        "LIMITS RCPTMAX= MAILMAX=10 RCPTDOMAINMAX=3",
        "LIMITS RCPTMAX=lots MAILMAX=10 RCPTDOMAINMAX=3",
        "LIMITS MAILMAX=10 RCPTMAX=-1 RCPTDOMAINMAX=3",
        "LIMITS MAILMAX=10 RCPTDOMAINMAX=3 RCPTMAX=5x",
        "LIMITS MAILMAX=10 RCPTDOMAINMAX=3 RCPTMAX=+5",
        "LIMITS MAILMAX=10 RCPTDOMAINMAX=3 RCPTMAX=5=5",
        "LIMITS MAILMAX=10 MAILMAX=ten RCPTDOMAINMAX=3",
    ] {
        assert_eq!(Capability::parse(line), Capability::Limits(want), "{line}");
        let input = format!("250-mx.example\r\n250-PIPELINING\r\n250 {line}\r\n");
        let e = ehlo(input.as_bytes());
        assert!(e.has(Extension::Limits), "{line}");
        assert_eq!(e.limits(), want, "{line}");
        assert_eq!(e.unknown_count(), 0, "{line}");
        assert!(e.has(Extension::Pipelining), "{line}");
    }
}

/// A limit's number has no bound on its digits: one past `u32::MAX` is
/// more than any client sends and reads as `u32::MAX`, not as a line the
/// client cannot read (which lost the other limits with it).
#[test]
fn a_huge_limit_saturates_and_the_others_read() {
    for line in [
        "LIMITS RCPTMAX=4294967296 MAILMAX=10",
        "LIMITS RCPTMAX=99999999999999999999999999 MAILMAX=10",
        "LIMITS MAILMAX=10 RCPTMAX=000004294967295",
    ] {
        let want = Limits {
            rcpt_max: Some(u32::MAX),
            mail_max: Some(10),
            rcpt_domain_max: None,
        };
        assert_eq!(Capability::parse(line), Capability::Limits(want), "{line}");
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        assert_eq!(ehlo(input.as_bytes()).limits(), want, "{line}");
    }
}

/// A server should name a limit once; one that names it more than once is
/// kept to at its lowest usable value, which keeps the client within
/// whichever one the server enforces, whatever their order.
#[test]
fn a_repeated_limit_keeps_its_lowest_value() {
    for line in [
        "LIMITS RCPTMAX=50 RCPTMAX=5",
        "LIMITS RCPTMAX=5 RCPTMAX=50",
        "LIMITS rcptmax=5 RCPTMAX=0 RCPTMAX=x RCPTMAX=50",
    ] {
        let want = Limits {
            rcpt_max: Some(5),
            mail_max: None,
            rcpt_domain_max: None,
        };
        assert_eq!(Capability::parse(line), Capability::Limits(want), "{line}");
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        assert_eq!(ehlo(input.as_bytes()).limits(), want, "{line}");
    }
}

/// A known limit of 0 is out of range (a server allows at least one
/// transaction, recipient and domain): it is ignored, as if not
/// advertised, and the other limits on the line are still read.
#[test]
fn limits_of_zero_are_ignored_and_the_others_read() {
    for (line, want) in [
        (
            "LIMITS RCPTMAX=0 MAILMAX=10",
            Limits {
                rcpt_max: None,
                mail_max: Some(10),
                rcpt_domain_max: None,
            },
        ),
        (
            "LIMITS MAILMAX=0 RCPTDOMAINMAX=000 RCPTMAX=5",
            Limits {
                rcpt_max: Some(5),
                mail_max: None,
                rcpt_domain_max: None,
            },
        ),
        ("LIMITS RCPTMAX=0", Limits::default()),
    ] {
        assert_eq!(Capability::parse(line), Capability::Limits(want), "{line}");
        let input = format!("250-mx.example\r\n250 {line}\r\n");
        let e = ehlo(input.as_bytes());
        assert!(e.has(Extension::Limits), "{line}");
        assert_eq!(e.limits(), want, "{line}");
    }
}

#[test]
fn size_zero_means_no_limit() {
    let e = ehlo(b"250-mx\r\n250 SIZE 0\r\n");
    assert_eq!(e.size(), Some(0));
    assert_eq!(e.max_size(), None);
}

#[test]
fn size_of_any_length_is_read_and_saturates() {
    // RFC 1870 §3: `size-param ::= [1*DIGIT]`, with no bound on the
    // digits. A number past u64::MAX is over any message (as `SIZE=` of
    // MAIL reads it), and leading zeros change nothing.
    for (line, expected) in [
        ("SIZE 18446744073709551615", u64::MAX),
        ("SIZE 18446744073709551616", u64::MAX),
        ("SIZE 99999999999999999999", u64::MAX),
        ("SIZE 123456789012345678901234567890", u64::MAX),
        ("SIZE 000000000000000000000010485760", 10_485_760),
        ("size  0000000000000000000000000000  ", 0),
    ] {
        let input = format!("250-mx.example.org\r\n250-{line}\r\n250 PIPELINING\r\n");
        let e = ehlo(input.as_bytes());
        assert!(e.has(Extension::Size), "{line}");
        assert_eq!(e.size(), Some(expected), "{line}");
        assert_eq!(e.unknown_count(), 0, "{line}");
        assert_eq!(
            Capability::parse(line),
            Capability::Size(Some(expected)),
            "{line}"
        );
    }
    // Not a number: kept as it came.
    assert!(matches!(
        Capability::parse("SIZE 12x"),
        Capability::Other {
            keyword: "SIZE",
            params: "12x"
        }
    ));
}

#[test]
fn refusals_and_bad_first_lines_are_errors() {
    assert_eq!(
        EhloReply::parse(&reply(b"502 5.5.1 EHLO not implemented\r\n")),
        Err(EhloError::NotOk(ReplyCode::COMMAND_NOT_IMPLEMENTED))
    );
    assert_eq!(
        EhloReply::parse(&reply(b"250 \r\n")),
        Err(EhloError::MissingDomain)
    );
    assert_eq!(
        EhloReply::parse(&reply(b"250-m\xffx\r\n250 STARTTLS\r\n")),
        Err(EhloError::InvalidUtf8)
    );
    let mut decoder = ReplyDecoder::new();
    match decoder.decode_ehlo(b"421 4.3.2 shutting down\r\n") {
        Ok(EhloDecoded::Reply { reply, ehlo, .. }) => {
            assert_eq!(reply.code(), ReplyCode::SERVICE_NOT_AVAILABLE);
            assert_eq!(
                ehlo,
                Err(EhloError::NotOk(ReplyCode::SERVICE_NOT_AVAILABLE))
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Each ehlo-line stands alone (RFC 5321 §4.1.1.1): a capability line
/// that is not UTF-8 is skipped and counted, and the others still count.
#[test]
fn a_capability_line_that_is_not_utf8_costs_only_itself() {
    let wire = b"250-mx.example.org hi\r\n250-X-NOTE caf\xe9\r\n250-PIPELINING\r\n250-X-\xff\xfe\r\n250 STARTTLS\r\n";
    for ehlo in [
        EhloReply::parse(&reply(wire)).unwrap(),
        match ReplyDecoder::new().decode_ehlo(wire) {
            Ok(EhloDecoded::Reply { ehlo, .. }) => ehlo.unwrap(),
            other => panic!("{other:?}"),
        },
    ] {
        assert_eq!(ehlo.domain(), "mx.example.org");
        assert!(ehlo.has(Extension::StartTls) && ehlo.has(Extension::Pipelining));
        assert_eq!(ehlo.invalid_lines(), 2);
        assert_eq!(ehlo.unknown_count(), 0);
        let caps: Vec<String> = ehlo.capabilities().map(|c| c.to_string()).collect();
        assert_eq!(caps, ["PIPELINING", "STARTTLS"]);
    }
    let clean = EhloReply::parse(&reply(b"250-mx\r\n250 STARTTLS\r\n")).unwrap();
    assert_eq!(clean.invalid_lines(), 0);
}

#[test]
fn decode_ehlo_is_split_invariant() {
    let input = [POSTFIX, EXIM, GMAIL, SMTP_SINK].concat();
    let expected: Vec<Vec<String>> = [POSTFIX, EXIM, GMAIL, SMTP_SINK]
        .iter()
        .map(|r| caps(&ehlo(r)))
        .collect();
    for step in [1, 2, 3, 7, 64, input.len()] {
        let mut decoder = ReplyDecoder::new();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode_ehlo(&buf) {
                    Ok(EhloDecoded::Reply { ehlo, consumed, .. }) => {
                        got.push(caps(&ehlo.expect("ehlo")));
                        buf.drain(..consumed);
                    }
                    Ok(EhloDecoded::Incomplete) => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(got, expected, "step {step}");
    }
}

/// Every step of a decode loop over `input`, with the replies reduced to
/// their consumed bytes and line counts and the errors to kind and consumed.
fn steps(input: &[u8], config: DecoderConfig, ehlo_mode: bool) -> Vec<String> {
    let mut decoder = ReplyDecoder::with_config(config);
    let mut buf = input;
    let mut out = Vec::new();
    for _ in 0..64 {
        let (step, consumed) = if ehlo_mode {
            match decoder.decode_ehlo(buf) {
                Ok(EhloDecoded::Reply {
                    reply, consumed, ..
                }) => (
                    format!("reply {} lines {consumed}", reply.line_count()),
                    consumed,
                ),
                Ok(EhloDecoded::Skipped { consumed }) => (format!("skipped {consumed}"), consumed),
                Ok(EhloDecoded::Incomplete) => ("incomplete".to_string(), 0),
                Err(e) => (format!("{:?} {}", e.kind(), e.consumed()), e.consumed()),
            }
        } else {
            match decoder.decode(buf) {
                Ok(Decoded::Reply { reply, consumed }) => (
                    format!("reply {} lines {consumed}", reply.line_count()),
                    consumed,
                ),
                Ok(Decoded::Skipped { consumed }) => (format!("skipped {consumed}"), consumed),
                Ok(Decoded::Incomplete) => ("incomplete".to_string(), 0),
                Err(e) => (format!("{:?} {}", e.kind(), e.consumed()), e.consumed()),
            }
        };
        out.push(step);
        if consumed == 0 {
            break;
        }
        buf = &buf[consumed..];
    }
    out
}

#[test]
fn decode_ehlo_frames_and_refuses_exactly_like_decode() {
    let long = format!("250-X-{}\r\n", "A".repeat(40));
    let bad: [&[u8]; 9] = [
        // A line past the line limit in the middle of the capabilities.
        &[&POSTFIX[..40], long.as_bytes(), &POSTFIX[40..]].concat(),
        // A reply past the reply limit.
        POSTFIX,
        // A line with another code, a bad separator, a bare LF, a bare CR.
        b"250-a.example\r\n250-PIPELINING\r\n251-DSN\r\n250 HELP\r\n",
        b"250-a.example\r\n250-PIPELINING\r\n250_DSN\r\n250 HELP\r\n",
        b"250-a.example\r\n250-PIPELINING\n250-DSN\r\n250 HELP\r\n",
        b"250-a.example\r\n250-PIPELINING\r250-DSN\r\n250 HELP\r\n",
        // NUL and non-ASCII text inside the run; a line without its end.
        b"250-a.example\r\n250-PIPE\0LINING\r\n250-DSN\r\n250 HELP\r\n",
        b"250-a.example\r\n250-X-\xc3\xa9 p\r\n250-DSN\r\n250 HELP\r\n",
        b"250-a.example\r\n250-PIPELINING\r\n250-DS",
    ];
    // Reply limits that fall on different lines of each input.
    let configs = [60, 100, 120, 1000].map(|reply_len| {
        DecoderConfig::default()
            .with_max_line_len(32)
            .with_max_reply_len(reply_len)
    });
    for input in bad {
        for config in configs
            .into_iter()
            .flat_map(|c| [c, c.with_line_endings(LineEndings::Strict)])
        {
            assert_eq!(
                steps(input, config, true),
                steps(input, config, false),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn switching_to_decode_ehlo_mid_reply_still_reads_every_line() {
    let mut decoder = ReplyDecoder::new();
    let half = 40;
    assert_eq!(decoder.decode(&POSTFIX[..half]), Ok(Decoded::Incomplete));
    match decoder.decode_ehlo(POSTFIX) {
        Ok(EhloDecoded::Reply { ehlo, .. }) => {
            let ehlo = ehlo.expect("ehlo");
            assert!(ehlo.has(Extension::Pipelining));
            assert!(ehlo.has(Extension::Chunking));
            assert_eq!(ehlo, EhloReply::parse(&reply(POSTFIX)).expect("ehlo"));
        }
        other => panic!("{other:?}"),
    }
}

/// Capability lines of every length and shape around the word boundaries
/// the one-pass decoder reads in: each one, in the middle of a reply and
/// at its end, reads the same in one pass as in two, and frames the same
/// under line and reply limits that cut it at every point.
#[test]
fn capability_lines_of_every_length_read_the_same_in_one_pass() {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for n in 0..=24 {
        let digits: String = (0..n).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
        lines.push(format!("SIZE {digits}").into_bytes());
        lines.push(format!("size  {digits}  ").into_bytes());
        lines.push(format!("SIZE {digits}x").into_bytes());
        lines.push(format!("SIZE 0{digits}\t").into_bytes());
    }
    for big in [
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
    ] {
        lines.push(format!("SIZE {big}").into_bytes());
    }
    for n in 1..=30 {
        let word = "x".repeat(n);
        lines.push(word.to_uppercase().into_bytes());
        lines.push(format!("{word} p").into_bytes());
        lines.push(format!("AUTH {word} PLAIN").into_bytes());
        lines.push(format!("AUTH PLAIN {}", word.to_uppercase()).into_bytes());
        lines.push(format!("X-{word}\u{e9}").into_bytes());
    }
    for m in [
        "PLAIN",
        "login",
        "Cram-Md5",
        "DIGEST-MD5",
        "xoauth2",
        "OAUTHBEARER",
        "SCRAM-SHA-1",
        "scram-sha-1-plus",
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
        "GSSAPI",
        "ntlm",
        "ANONYMOUS",
        "EXTERNAL",
        "EXTERNALS",
        "PLAINX",
        "PLAI",
    ] {
        lines.push(format!("AUTH {m}").into_bytes());
        lines.push(format!("AUTH  {m}  LOGIN ").into_bytes());
        lines.push(format!("AUTH {m}\tLOGIN").into_bytes());
        lines.push(format!("AUTH {m}\x7f").into_bytes());
    }
    for ext in Extension::ALL {
        let k = ext.keyword();
        lines.push(k.as_bytes().to_vec());
        lines.push(k.to_lowercase().into_bytes());
        lines.push(format!("{k} 1").into_bytes());
        lines.push(format!("{k}x").into_bytes());
        lines.push(format!("{k}=1").into_bytes());
    }
    lines.extend(
        [
            &b""[..],
            b" ",
            b" PIPELINING",
            b"AUTH",
            b"AUTH ",
            b"X=Y",
            b"-",
            b"X-FOO bar \x01",
            b"X-FOO b\xc3\xa9r",
            b"X\xc3\xa9",
            b"PIPE\tLINING",
        ]
        .map(<[u8]>::to_vec),
    );
    for line in &lines {
        let middle = [
            &b"250-mx.example.org\r\n250-"[..],
            line,
            b"\r\n250 HELP\r\n",
        ]
        .concat();
        let last = [
            &b"250-mx.example.org\r\n250-HELP\r\n250 "[..],
            line,
            b"\r\n",
        ]
        .concat();
        for input in [middle, last] {
            let two_pass = EhloReply::parse(&reply(&input));
            match ReplyDecoder::new().decode_ehlo(&input) {
                Ok(EhloDecoded::Reply { ehlo, consumed, .. }) => {
                    assert_eq!(consumed, input.len());
                    assert_eq!(ehlo, two_pass, "{:?}", String::from_utf8_lossy(&input));
                }
                other => panic!("{other:?}"),
            }
            for cut in [20, 26, 30, 34, 40, 48, 60] {
                for config in [
                    DecoderConfig::default().with_max_line_len(cut),
                    DecoderConfig::default().with_max_reply_len(cut),
                ] {
                    assert_eq!(
                        steps(&input, config, true),
                        steps(&input, config, false),
                        "{:?} {config:?}",
                        String::from_utf8_lossy(&input)
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------ builder

#[test]
fn builder_writes_what_the_parser_reads() {
    let built = EhloReplyBuilder::new("mx.example.org", "Hello client.example.net [192.0.2.7]")
        .and_then(|b| b.capability(&Capability::Pipelining))
        .and_then(|b| b.capability(&Capability::Size(Some(35_882_577))))
        .and_then(|b| b.capability(&Capability::StartTls))
        .and_then(|b| b.auth(&[AuthMechanism::Plain, AuthMechanism::Other("X-TOKEN")]))
        .and_then(|b| {
            b.capability(&Capability::Limits(Limits {
                rcpt_max: Some(100),
                mail_max: None,
                rcpt_domain_max: Some(10),
            }))
        })
        .and_then(|b| {
            b.capability(&Capability::Other {
                keyword: "X-CUSTOM",
                params: "a b",
            })
        })
        .expect("valid")
        .build();
    let bytes = built.to_bytes();
    assert_eq!(
        bytes,
        b"250-mx.example.org Hello client.example.net [192.0.2.7]\r\n\
250-PIPELINING\r\n\
250-SIZE 35882577\r\n\
250-STARTTLS\r\n\
250-AUTH PLAIN X-TOKEN\r\n\
250-LIMITS RCPTMAX=100 RCPTDOMAINMAX=10\r\n\
250 X-CUSTOM a b\r\n"
    );
    let e = ehlo(&bytes);
    assert_eq!(e.domain(), "mx.example.org");
    assert_eq!(e.max_size(), Some(35_882_577));
    assert!(e.supports_auth(AuthMechanism::Other("x-token")));
    assert_eq!(e.limits().rcpt_max, Some(100));
    assert_eq!(e.unknown_count(), 1);
}

#[test]
fn builder_rejects_what_would_break_the_wire() {
    assert_eq!(
        EhloReplyBuilder::new("", "hi").err(),
        Some(InvalidReply::Empty)
    );
    assert!(EhloReplyBuilder::new("mx example", "").is_err());
    assert!(EhloReplyBuilder::new("mx\r\n250 X", "").is_err());
    assert!(EhloReplyBuilder::new("mx", "hi\r\n250 INJECTED").is_err());
    let b = || EhloReplyBuilder::new("mx", "").expect("valid");
    for bad in [
        Capability::Other {
            keyword: "X\r\n250 INJECTED",
            params: "",
        },
        Capability::Other {
            keyword: "",
            params: "x",
        },
        Capability::Other {
            keyword: "-X",
            params: "",
        },
        Capability::Other {
            keyword: "X=Y",
            params: "",
        },
        Capability::Other {
            keyword: "X",
            params: "a\tb",
        },
        Capability::Other {
            keyword: "X",
            params: "caf\u{e9}",
        },
        Capability::Auth(AuthMechanisms::new("PLAIN\r\nRSET")),
        Capability::XClient("NAME\0"),
    ] {
        assert!(b().capability(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn an_auth_capability_is_held_to_the_rules_of_auth() {
    let b = || EhloReplyBuilder::new("mx.example.org", "").expect("valid");
    // No mechanism at all: RFC 4954 §3 names at least one.
    let empty = Capability::Auth(AuthMechanisms::new(""));
    assert_eq!(b().capability(&empty).err(), Some(InvalidReply::Empty));
    assert_eq!(b().auth(&[]).err(), Some(InvalidReply::Empty));
    // Names that are not SASL mechanism names (RFC 4422 §3.1): too long,
    // or with a character outside A-Z, 0-9, '-' and '_'.
    for list in ["PLAIN ABCDEFGHIJKLMNOPQRSTU", "PLAIN X.TOKEN", "SCRAM+SHA"] {
        let bad = Capability::Auth(AuthMechanisms::new(list));
        assert_eq!(
            b().capability(&bad).err(),
            Some(InvalidReply::InvalidEhloLine),
            "{list}"
        );
    }
    // What `auth` accepts, `capability` accepts, with the same line.
    let good = Capability::Auth(AuthMechanisms::new("PLAIN SCRAM-SHA-256 X_TOKEN"));
    let via_capability = b().capability(&good).expect("valid").build().to_bytes();
    let via_auth = b()
        .auth(&[
            AuthMechanism::Plain,
            AuthMechanism::Other("SCRAM-SHA-256"),
            AuthMechanism::Other("X_TOKEN"),
        ])
        .expect("valid")
        .build()
        .to_bytes();
    assert_eq!(via_capability, via_auth);
    assert!(via_auth.ends_with(b"250 AUTH PLAIN SCRAM-SHA-256 X_TOKEN\r\n"));
}

/// A mechanism is named without regard to case (RFC 4954 §3), and a known
/// one spelled as `AuthMechanism::Other` is the same mechanism.
#[test]
fn a_known_mechanism_given_as_other_is_found() {
    let e = ehlo(b"250-mx.example.org\r\n250 AUTH PLAIN x-token\r\n");
    for name in ["PLAIN", "plain", "Plain", "X-TOKEN", "x-token"] {
        assert!(e.supports_auth(AuthMechanism::Other(name)), "{name}");
    }
    assert!(e.supports_auth(AuthMechanism::Plain));
    assert!(!e.supports_auth(AuthMechanism::Other("LOGIN")));
    assert!(!e.supports_auth(AuthMechanism::Login));
    let list = AuthMechanisms::new("PLAIN x-token");
    assert!(list.contains(AuthMechanism::Other("plain")));
    assert!(list.contains(AuthMechanism::Other("X-TOKEN")));
    assert!(!list.contains(AuthMechanism::Other("PLAINX")));
    // The other way round: an unusual spelling the server sent.
    let odd = AuthMechanisms::new("Plain");
    assert!(odd.contains(AuthMechanism::Plain));
    assert!(odd.contains(AuthMechanism::Other("PLAIN")));
}

#[test]
fn a_known_keyword_given_as_other_is_held_to_its_rules() {
    let b = || EhloReplyBuilder::new("mx.example.org", "").expect("valid");
    let other = |keyword, params| Capability::Other { keyword, params };
    // `250 AUTH` with no mechanism, which `auth(&[])` refuses (RFC 4954 §3).
    assert_eq!(
        b().capability(&other("AUTH", "")).err(),
        Some(InvalidReply::Empty)
    );
    // Not SASL mechanism names (RFC 4422 §3.1).
    assert_eq!(
        b().capability(&other("AUTH", "PLAIN X.TOKEN")).err(),
        Some(InvalidReply::InvalidEhloLine)
    );
    // Parameters the extension's RFC does not allow: the line would read
    // back as an unknown capability, not as SIZE or LIMITS.
    for (keyword, params) in [("SIZE", "big"), ("SIZE", "1 2"), ("LIMITS", "RCPTMAX=x")] {
        assert_eq!(
            b().capability(&other(keyword, params)).err(),
            Some(InvalidReply::InvalidEhloLine),
            "{keyword} {params}"
        );
    }
    // What the typed form allows is written as given.
    let bytes = b()
        .capability(&other("AUTH", "PLAIN LOGIN"))
        .and_then(|b| b.capability(&other("SIZE", "1000")))
        .expect("valid")
        .build()
        .to_bytes();
    assert!(bytes.ends_with(b"250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n"));
    let e = ehlo(&bytes);
    assert!(e.supports_auth(AuthMechanism::Login));
    assert_eq!(e.max_size(), Some(1000));
}

// ------------------------------------------------- one pass equals two pass

fn keyword() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SIZE".to_owned()),
        Just("size".to_owned()),
        Just("AUTH".to_owned()),
        Just("Auth".to_owned()),
        Just("AUTH=PLAIN".to_owned()),
        Just("PIPELINING".to_owned()),
        Just("8bitmime".to_owned()),
        Just("LIMITS".to_owned()),
        Just("DELIVERBY".to_owned()),
        Just("MT-PRIORITY".to_owned()),
        Just("XCLIENT".to_owned()),
        Just("ENHANCEDSTATUSCODES".to_owned()),
        Just("X-VERY-LONG-KEYWORD-BEYOND-24".to_owned()),
        "[A-Za-z0-9][A-Za-z0-9=-]{0,12}",
    ]
}

fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,22}",
        Just("PLAIN".to_owned()),
        Just("login".to_owned()),
        Just("XOAUTH2".to_owned()),
        Just("RCPTMAX=5".to_owned()),
        Just("MAILMAX=x".to_owned()),
        "[!-~]{1,10}",
        Just("\u{e9}t\u{e9}".to_owned()),
    ]
}

fn ehlo_line() -> impl Strategy<Value = String> {
    (
        keyword(),
        proptest::collection::vec(param(), 0..4),
        prop_oneof![Just(" "), Just("  "), Just("\t")],
        prop_oneof![Just(""), Just(" "), Just("\t")],
    )
        .prop_map(|(k, ps, sep, trail)| {
            let mut line = k;
            for p in ps {
                line.push_str(sep);
                line.push_str(&p);
            }
            line.push_str(trail);
            line
        })
}

proptest! {
    #[test]
    fn one_pass_equals_two_pass_and_capability_parse(
        lines in proptest::collection::vec(ehlo_line(), 0..8),
        empty_last in any::<bool>(),
    ) {
        let mut input = String::from("250");
        input.push_str(if lines.is_empty() && !empty_last { " " } else { "-" });
        input.push_str("mx.example.org greets you\r\n");
        let n = lines.len();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == n && !empty_last;
            input.push_str(if last { "250 " } else { "250-" });
            input.push_str(line);
            input.push_str("\r\n");
        }
        if empty_last {
            input.push_str("250 \r\n");
        }
        let e = ehlo(input.as_bytes());
        // The recorded summary matches a fold over the lazily parsed lines.
        let caps: Vec<Capability<'_>> = e.capabilities().collect();
        let expected_caps: Vec<Capability<'_>> = lines
            .iter()
            .map(|l| l.trim_matches(|c| c == ' ' || c == '\t'))
            .filter(|l| !l.is_empty())
            .map(Capability::parse)
            .collect();
        prop_assert_eq!(&caps, &expected_caps);
        for ext in Extension::ALL {
            prop_assert_eq!(e.has(*ext), caps.iter().any(|c| c.extension() == Some(*ext)), "{}", ext);
        }
        let size = caps.iter().rev().find_map(|c| match c {
            Capability::Size(n) => Some(*n),
            _ => None,
        });
        prop_assert_eq!(e.size(), size.flatten());
        prop_assert_eq!(
            e.unknown_count(),
            caps.iter().filter(|c| c.extension().is_none()).count()
        );
        for m in [AuthMechanism::Plain, AuthMechanism::Login, AuthMechanism::XOAuth2, AuthMechanism::CramMd5] {
            let listed = caps.iter().any(|c| matches!(c, Capability::Auth(list) if list.contains(m)));
            prop_assert_eq!(e.supports_auth(m), listed);
        }
    }

    #[test]
    fn built_capabilities_read_back(
        size in proptest::option::of(any::<u64>()),
        flags in proptest::sample::subsequence(
            vec![
                Capability::Pipelining,
                Capability::EightBitMime,
                Capability::StartTls,
                Capability::Chunking,
                Capability::BinaryMime,
                Capability::SmtpUtf8,
                Capability::EnhancedStatusCodes,
                Capability::Dsn,
                Capability::RequireTls,
                Capability::Rrvs,
                Capability::Etrn,
                Capability::Vrfy,
                Capability::Help,
            ],
            0..13,
        ),
        rcpt_max in proptest::option::of(any::<u32>()),
    ) {
        let mut all = vec![Capability::Size(size)];
        all.extend(flags);
        all.push(Capability::Limits(Limits { rcpt_max, mail_max: None, rcpt_domain_max: None }));
        all.push(Capability::Auth(AuthMechanisms::new("PLAIN SCRAM-SHA-256")));
        let mut builder = EhloReplyBuilder::new("mx.example", "").expect("valid");
        for cap in &all {
            builder = builder.capability(cap).expect("valid capability");
        }
        let bytes = builder.build().to_bytes();
        let e = ehlo(&bytes);
        prop_assert_eq!(e.capabilities().collect::<Vec<_>>(), all);
    }
}
