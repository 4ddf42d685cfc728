//! Known-answer tables, round trips and split invariance for the command codec.

use smtp_proto::command::{
    Atom, AuthParam, BodyType, ByMode, Command, CommandDecoder, CommandError, DateTime,
    DecoderConfig, DeliverBy, EnvId, ForwardPath, Hold, HoldFor, LineEndingPolicy, MailFrom,
    MailParameters, Mailbox, Mechanism, MtPriority, NodeName, Notify, Orcpt, ParseOptions,
    PathError, RcptParameters, RcptTo, Ret, ReversePath, Rrvs, RrvsMode, Text, ValueError, XText,
};

/// Parses `line`, re-encodes it, and checks the canonical form.
fn canon(line: &str) -> String {
    let cmd = Command::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let bytes = cmd.to_bytes();
    assert!(bytes.ends_with(b"\r\n"));
    // The canonical form parses back to the same value.
    let again = Command::parse(&bytes[..bytes.len() - 2]).unwrap();
    assert_eq!(again, cmd, "{line:?}");
    String::from_utf8(bytes[..bytes.len() - 2].to_vec()).unwrap()
}

fn err(line: &str) -> CommandError {
    match Command::parse(line.as_bytes()) {
        Ok(c) => panic!("{line:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn verbs_are_case_insensitive() {
    for (line, want) in [
        ("quit", "QUIT"),
        ("QuIt", "QUIT"),
        ("rset", "RSET"),
        ("data", "DATA"),
        ("noop", "NOOP"),
        ("NOOP hello there", "NOOP hello there"),
        ("help", "HELP"),
        ("HELP mail", "HELP mail"),
        ("starttls", "STARTTLS"),
        ("StArTtLs", "STARTTLS"),
        ("STARTTLS  ", "STARTTLS"),
        ("STARTTLZ", "STARTTLZ"),
        ("vrfy bob", "VRFY bob"),
        ("expn staff", "EXPN staff"),
        ("etrn @example.com", "ETRN @example.com"),
        ("ETRN #queue1", "ETRN #queue1"),
        ("ehlo Mail.Example.COM", "EHLO Mail.Example.COM"),
        ("helo example.com", "HELO example.com"),
        ("lhlo example.com", "LHLO example.com"),
    ] {
        assert_eq!(canon(line), want);
    }
}

#[test]
fn ehlo_domain_rules() {
    // ehlo = "EHLO" SP ( Domain / address-literal )
    assert_eq!(canon("EHLO [192.0.2.1]"), "EHLO [192.0.2.1]");
    assert_eq!(canon("EHLO [IPv6:2001:db8::1]"), "EHLO [IPv6:2001:db8::1]");
    assert_eq!(canon("EHLO [x-tag:content]"), "EHLO [x-tag:content]");
    assert_eq!(
        canon("EHLO xn--bcher-kva.example"),
        "EHLO xn--bcher-kva.example"
    );
    for bad in [
        "EHLO",
        "EHLO -lead.example",
        "EHLO trail-.example",
        "EHLO a..b",
        "EHLO [300.1.1.1]",
        "EHLO [1.2.3]",
        "EHLO [IPv6:zz::1]",
        "EHLO under_score.example",
    ] {
        let e = err(bad);
        assert_eq!(e.reply_code().get(), 501, "{bad}");
    }
    assert_eq!(err("EHLO"), CommandError::MissingArgument { verb: "EHLO" });
    // An address literal is a "number" of RFC 5321 §4.5.3.1.2: at most
    // 255 octets, as a domain name (a longer one would not fit a trace
    // field's line).
    let longest = format!("[x:{}]", "a".repeat(251));
    assert_eq!(canon(&format!("EHLO {longest}")), format!("EHLO {longest}"));
    let e = err(&format!("EHLO [x:{}]", "a".repeat(252)));
    assert_eq!(e.reply_code().get(), 501);
    assert!(smtp_proto::command::Domain::new(format!("[x:{}]", "a".repeat(252))).is_err());
}

/// EHLO, HELO and LHLO take an ASCII domain: RFC 5321 §4.1.2's
/// `sub-domain` is letters, digits and hyphens, and U-labels (RFC 6531)
/// belong to the addresses of a transaction with SMTPUTF8, which the
/// client cannot use before EHLO (RFC 6531 §3.7.1: A-labels there). A
/// UTF-8 address after RCPT stays valid.
#[test]
fn hello_domains_must_be_ascii() {
    for verb in ["EHLO", "HELO", "LHLO"] {
        for domain in ["bücher.example", "例子.广告", "mail.bücher.example"] {
            let line = format!("{verb} {domain}");
            let e = err(&line);
            assert!(
                matches!(e, CommandError::InvalidArgument { .. }),
                "{line}: {e:?}"
            );
            assert_eq!(e.reply_code().get(), 501, "{line}");
            assert_eq!(e.enhanced_code().to_string(), "5.5.4", "{line}");
            // Trailing text does not make it valid.
            assert!(Command::parse(format!("{line} hello").as_bytes()).is_err());
        }
        let ascii = format!("{verb} xn--bcher-kva.example");
        assert_eq!(canon(&ascii), ascii);
        // Text after an ASCII domain may be anything, as before.
        assert!(Command::parse(format!("{ascii} grüße").as_bytes()).is_ok());
    }
    let Command::Rcpt(r) = Command::parse("RCPT TO:<jörg@bücher.example>".as_bytes()).unwrap()
    else {
        panic!()
    };
    assert!(r.forward_path.is_utf8());
}

/// `IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp` and the
/// General-address-literal (RFC 5321 §4.1.3): "::" stands for at least two
/// groups, so at most six other groups go with it (four beside an IPv4
/// tail); an IPv4 tail's Snum is 1*3DIGIT as in an IPv4 literal; a
/// Standardized-tag is an Ldh-str, which may start with a digit.
#[test]
fn address_literal_forms() {
    use smtp_proto::command::Domain;
    for good in [
        "[IPv6:1:2:3:4:5:6:7:8]",
        "[IPv6:::]",
        "[IPv6:::1]",
        "[IPv6:1::]",
        "[IPv6:1:2:3:4:5:6::]",
        "[IPv6:1::2:3:4:5:6]",
        "[IPv6:FFFF:0db8::0001]",
        "[IPv6:1:2:3:4:5:6:192.0.2.1]",
        "[IPv6:::192.0.2.1]",
        "[IPv6:::ffff:192.0.2.1]",
        "[IPv6:1:2:3:4::192.0.2.1]",
        "[IPv6:1::2:3:4:192.0.2.1]",
        "[IPv6:::ffff:010.000.0.1]",
        "[010.0.0.1]",
        "[4x:abc]",
        "[1-tag:x]",
    ] {
        assert!(Domain::new(good).is_ok(), "{good} refused");
        let line = format!("EHLO {good}");
        assert_eq!(canon(&line), line);
    }
    for bad in [
        "[IPv6:1:2:3:4:5:6:7]",
        "[IPv6:1:2:3:4:5:6:7:8:9]",
        "[IPv6:1:2:3:4:5:6:7::]",
        "[IPv6:::1:2:3:4:5:6:7]",
        "[IPv6:1::2:3:4:5:6:7]",
        "[IPv6:1::2::3]",
        "[IPv6::::1]",
        "[IPv6:1:::2]",
        "[IPv6::1]",
        "[IPv6:1:]",
        "[IPv6:12345::1]",
        "[IPv6:]",
        "[IPv6:1:2:3:4:5::192.0.2.1]",
        "[IPv6:1:2:3:4:5:192.0.2.1]",
        "[IPv6:1:2:3:4:5:6:7:192.0.2.1]",
        "[IPv6:::256.0.0.1]",
        "[IPv6:::1.2.3]",
        "[IPv6:1.2.3.4]",
        "[IPv6:::1.2.3.4:5]",
        "[1.2.3.4.5]",
        "[4x-:abc]",
    ] {
        assert!(Domain::new(bad).is_err(), "{bad} accepted");
        assert_eq!(err(&format!("EHLO {bad}")).reply_code().get(), 501, "{bad}");
    }
}

#[test]
fn mail_paths() {
    assert_eq!(canon("MAIL FROM:<>"), "MAIL FROM:<>");
    assert_eq!(canon("mail from:<a@b.example>"), "MAIL FROM:<a@b.example>");
    // A space after the colon is accepted.
    assert_eq!(canon("MAIL FROM: <a@b.example>"), "MAIL FROM:<a@b.example>");
    // Quoted local parts and address literals are kept verbatim.
    assert_eq!(
        canon(r#"MAIL FROM:<"john \"q\" doe"@example.com>"#),
        r#"MAIL FROM:<"john \"q\" doe"@example.com>"#
    );
    assert_eq!(
        canon("MAIL FROM:<a@[192.0.2.1]>"),
        "MAIL FROM:<a@[192.0.2.1]>"
    );
    assert_eq!(
        canon("MAIL FROM:<a@[IPv6:::1]>"),
        "MAIL FROM:<a@[IPv6:::1]>"
    );
    // Source routes are accepted and dropped (RFC 5321 §4.1.1.3, Appendix C).
    assert_eq!(
        canon("MAIL FROM:<@relay1.example,@relay2.example:user@example.com>"),
        "MAIL FROM:<user@example.com>"
    );
    let Command::Mail(m) = Command::parse(b"MAIL FROM:<>").unwrap() else {
        panic!()
    };
    assert_eq!(m.reverse_path, ReversePath::Null);
}

#[test]
fn rejected_paths() {
    for (line, want) in [
        ("MAIL FROM:<>>>>", PathError::TrailingCharacters),
        ("MAIL FROM:<a@b>>", PathError::TrailingCharacters),
        ("MAIL FROM:<Foo Bar <x>>", PathError::InvalidLocalPart),
        ("MAIL FROM:a@b.example", PathError::MissingBrackets),
        ("MAIL FROM:<postmaster>", PathError::MissingDomain),
        ("MAIL FROM:<a..b@example.com>", PathError::InvalidLocalPart),
        (
            "MAIL FROM:<@-bad:user@example.com>",
            PathError::InvalidSourceRoute,
        ),
        (
            "MAIL FROM:<@a.example,b.example:user@example.com>",
            PathError::InvalidSourceRoute,
        ),
        ("MAIL FROM:<a@-x.example>", PathError::InvalidDomain),
    ] {
        assert_eq!(err(line), CommandError::InvalidReversePath(want), "{line}");
        assert_eq!(err(line).enhanced_code().to_string(), "5.1.7");
    }
    // An unclosed path.
    assert!(matches!(
        err("RCPT TO:<x"),
        CommandError::InvalidForwardPath(_)
    ));
    assert!(matches!(
        err("RCPT TO:<x@example.com"),
        CommandError::InvalidForwardPath(PathError::MissingBrackets)
    ));
    assert_eq!(
        err("RCPT TO:<x@y"),
        CommandError::InvalidForwardPath(PathError::MissingBrackets)
    );
    assert_eq!(
        err("RCPT TO:<>"),
        CommandError::InvalidForwardPath(PathError::MissingDomain)
    );
    assert_eq!(err("RCPT TO:<x@-y>").enhanced_code().to_string(), "5.1.3");
    assert!(matches!(
        err("MAIL TO:<a@b>"),
        CommandError::InvalidArgument { .. }
    ));
    assert!(matches!(
        err("RCPT FROM:<a@b>"),
        CommandError::InvalidArgument { .. }
    ));
}

#[test]
fn unbracketed_paths_need_the_option() {
    let opts = ParseOptions::default().allow_unbracketed_paths(true);
    let cmd = Command::parse_with(b"MAIL FROM:a@b.example SIZE=10", &opts).unwrap();
    assert_eq!(
        String::from_utf8(cmd.to_bytes()).unwrap(),
        "MAIL FROM:<a@b.example> SIZE=10\r\n"
    );
}

#[test]
fn unbracketed_paths_keep_the_path_limit() {
    let opts = ParseOptions::default().allow_unbracketed_paths(true);
    let label = "a".repeat(60);
    // A mailbox of 254 octets fits between brackets (256 with them); one
    // more octet does not, with or without the brackets on the wire.
    let local = "b".repeat(254 - 1 - 243);
    let dom243 = [label.as_str(); 4].join(".");
    assert_eq!(dom243.len(), 243);
    let fits = format!("{local}@{dom243}");
    assert_eq!(fits.len(), 254);
    let line = format!("MAIL FROM:{fits}");
    let cmd = Command::parse_with(line.as_bytes(), &opts).unwrap();
    let wire = cmd.to_bytes();
    assert_eq!(wire, format!("MAIL FROM:<{fits}>\r\n").as_bytes());
    // What is written back parses again, with and without the option.
    assert_eq!(Command::parse(&wire[..wire.len() - 2]).unwrap(), cmd);
    assert_eq!(
        Command::parse_with(&wire[..wire.len() - 2], &opts).unwrap(),
        cmd
    );
    let over = format!("b{fits}");
    for line in [format!("MAIL FROM:{over}"), format!("MAIL FROM:<{over}>")] {
        assert_eq!(
            Command::parse_with(line.as_bytes(), &opts).unwrap_err(),
            CommandError::InvalidReversePath(PathError::PathTooLong),
            "{line}"
        );
    }
    assert_eq!(Mailbox::parse(&fits).unwrap().to_string(), fits);
    assert_eq!(Mailbox::parse(&over), Err(PathError::PathTooLong));
    let over = format!("RCPT TO:{over}");
    assert_eq!(
        Command::parse_with(over.as_bytes(), &opts).unwrap_err(),
        CommandError::InvalidForwardPath(PathError::PathTooLong)
    );
}

#[test]
fn length_limits() {
    let local64 = "a".repeat(64);
    let local65 = "a".repeat(65);
    assert!(Command::parse(format!("RCPT TO:<{local64}@example.com>").as_bytes()).is_ok());
    let e = err(&format!("RCPT TO:<{local65}@example.com>"));
    assert_eq!(
        e,
        CommandError::InvalidForwardPath(PathError::LocalPartTooLong)
    );
    assert_eq!(e.reply_code().get(), 553);
    // Domain over 255 octets.
    let label = "a".repeat(60);
    let dom = [label.as_str(); 5].join(".");
    assert!(dom.len() > 255);
    let e = err(&format!("RCPT TO:<x@{dom}>"));
    assert_eq!(
        e,
        CommandError::InvalidForwardPath(PathError::DomainTooLong)
    );
    // A path over 256 octets with parts each within their limits.
    let dom250 = [
        label.as_str(),
        label.as_str(),
        label.as_str(),
        label.as_str(),
        "abcdefghi",
    ]
    .join(".");
    assert!(dom250.len() <= 255);
    let e = err(&format!("RCPT TO:<{local64}@{dom250}>"));
    assert_eq!(e, CommandError::InvalidForwardPath(PathError::PathTooLong));
}

#[test]
fn postmaster_and_utf8() {
    for line in [
        "RCPT TO:<postmaster>",
        "RCPT TO:<Postmaster>",
        "rcpt to:<POSTMASTER>",
    ] {
        let Command::Rcpt(r) = Command::parse(line.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.forward_path, ForwardPath::Postmaster);
    }
    assert_eq!(
        canon("RCPT TO:<postmaster@example.com>"),
        "RCPT TO:<postmaster@example.com>"
    );
    let Command::Rcpt(r) = Command::parse("RCPT TO:<用户@例子.广告>".as_bytes()).unwrap()
    else {
        panic!()
    };
    assert!(r.forward_path.is_utf8());
    let Command::Rcpt(r) = Command::parse(b"RCPT TO:<user@example.com>").unwrap() else {
        panic!()
    };
    assert!(!r.forward_path.is_utf8());
}

#[test]
fn mail_parameters() {
    let line = "MAIL FROM:<a@b.example> size=1000 body=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B314 \
                AUTH=<> REQUIRETLS MT-PRIORITY=-3 HOLDFOR=60 BY=120;RT X-FOO=bar X-FLAG";
    let Command::Mail(m) = Command::parse(line.as_bytes()).unwrap() else {
        panic!()
    };
    let p = &m.params;
    assert_eq!(p.size, Some(1000));
    assert_eq!(p.body, Some(BodyType::EightBitMime));
    assert!(p.smtputf8);
    assert_eq!(p.ret, Some(Ret::Hdrs));
    assert_eq!(
        p.envid.as_ref().unwrap().as_xtext().decode().as_ref(),
        b"QQ+314"
    );
    assert_eq!(p.auth, Some(AuthParam::Null));
    assert!(p.requiretls);
    assert_eq!(p.mt_priority.map(MtPriority::get), Some(-3));
    assert_eq!(p.hold, Some(Hold::For(HoldFor::new(60).unwrap())));
    let by = p.by.unwrap();
    assert_eq!(
        (by.time(), by.mode(), by.trace()),
        (120, ByMode::Return, true)
    );
    assert_eq!(p.other.len(), 2);
    assert_eq!(p.other[0].keyword(), "X-FOO");
    assert_eq!(p.other[0].value(), Some("bar"));
    assert_eq!(p.other[1].value(), None);
    assert_eq!(
        canon(line),
        "MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314 \
         AUTH=<> REQUIRETLS MT-PRIORITY=-3 HOLDFOR=60 BY=120;RT X-FOO=bar X-FLAG"
    );
    assert_eq!(
        canon("MAIL FROM:<a@b> HOLDUNTIL=2026-11-26T10:00:00Z"),
        "MAIL FROM:<a@b> HOLDUNTIL=2026-11-26T10:00:00Z"
    );
    // The ends of each range, a leap second and an offset included.
    for t in [
        "2026-12-31T23:59:60Z",
        "2026-01-01T00:00:00.5+23:59",
        "2026-02-31T00:00:00-00:00",
    ] {
        let line = format!("MAIL FROM:<a@b> HOLDUNTIL={t}");
        assert_eq!(canon(&line), line);
    }
}

/// `size-value = 1*20DIGIT` (RFC 1870 §3): every 20-digit size is valid
/// syntax; one over what a u64 holds is over any limit and reads as
/// u64::MAX (the server answers 552 to it, not 501).
#[test]
fn size_takes_twenty_digits() {
    let size = |line: &str| match Command::parse(line.as_bytes()).unwrap() {
        Command::Mail(m) => m.params.size,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        size("MAIL FROM:<a@b> SIZE=18446744073709551615"),
        Some(u64::MAX)
    );
    assert_eq!(
        size("MAIL FROM:<a@b> SIZE=18446744073709551616"),
        Some(u64::MAX)
    );
    assert_eq!(
        size("MAIL FROM:<a@b> SIZE=99999999999999999999"),
        Some(u64::MAX)
    );
    assert_eq!(size("MAIL FROM:<a@b> SIZE=00000000000000000042"), Some(42));
    assert_eq!(size("MAIL FROM:<a@b> SIZE=0"), Some(0));
}

/// RFC 6710 §7: `priority-value = [priority-sign] NZDIGIT / "0"`,
/// `priority-sign = "-" / "+"`: every value from -9 to 9, a sign on all
/// but zero.
#[test]
fn mt_priority_values_of_the_grammar() {
    for (value, expected) in [
        ("0", 0),
        ("1", 1),
        ("+1", 1),
        ("-1", -1),
        ("9", 9),
        ("+9", 9),
        ("-9", -9),
    ] {
        let line = format!("MAIL FROM:<a@b> MT-PRIORITY={value}");
        let Command::Mail(m) = Command::parse(line.as_bytes()).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(m.params.mt_priority.map(MtPriority::get), Some(expected));
    }
}

#[test]
fn rejected_parameters() {
    for (line, kw) in [
        ("MAIL FROM:<a@b> SIZE=rabbit", "SIZE"),
        ("MAIL FROM:<a@b> SIZE=", "ESMTP"),
        ("MAIL FROM:<a@b> SIZE", "SIZE"),
        ("MAIL FROM:<a@b> SIZE=123456789012345678901", "SIZE"),
        ("MAIL FROM:<a@b> SMTPUTF8=YES", "SMTPUTF8"),
        ("MAIL FROM:<a@b> BODY=9BIT", "BODY"),
        ("MAIL FROM:<a@b> RET=ALL", "RET"),
        ("MAIL FROM:<a@b> ENVID=+A", "ENVID"),
        ("MAIL FROM:<a@b> ENVID=a+2b", "ENVID"),
        ("MAIL FROM:<a@b> MT-PRIORITY=10", "MT-PRIORITY"),
        ("MAIL FROM:<a@b> MT-PRIORITY=x", "MT-PRIORITY"),
        // RFC 6710 §7: priority-value = [priority-sign] NZDIGIT / "0", so
        // zero takes no sign and there is one digit.
        ("MAIL FROM:<a@b> MT-PRIORITY=-0", "MT-PRIORITY"),
        ("MAIL FROM:<a@b> MT-PRIORITY=+0", "MT-PRIORITY"),
        ("MAIL FROM:<a@b> MT-PRIORITY=05", "MT-PRIORITY"),
        ("MAIL FROM:<a@b> MT-PRIORITY=+-1", "MT-PRIORITY"),
        ("MAIL FROM:<a@b> HOLDUNTIL=tomorrow", "HOLDUNTIL"),
        // RFC 3339 §5.6: each field within its range.
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-13-01T10:00:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-00-01T10:00:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-32T10:00:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-00T10:00:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-01T24:00:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-01T10:60:00Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-01T10:00:61Z",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-01T10:00:00+24:00",
            "HOLDUNTIL",
        ),
        (
            "MAIL FROM:<a@b> HOLDUNTIL=2026-12-01T10:00:00-01:60",
            "HOLDUNTIL",
        ),
        ("MAIL FROM:<a@b> BY=120;X", "BY"),
        ("MAIL FROM:<a@b> REQUIRETLS=1", "REQUIRETLS"),
        ("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", "NOTIFY"),
        ("RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", "NOTIFY"),
        ("RCPT TO:<a@b> NOTIFY=SOMETIMES", "NOTIFY"),
        ("RCPT TO:<a@b> ORCPT=rfc822", "ORCPT"),
        ("RCPT TO:<a@b> ORCPT=rfc822;+A", "ORCPT"),
        ("RCPT TO:<a@b> RRVS=2014-04-03T23:01:00Z;X", "RRVS"),
        ("MAIL FROM:<a@b> X_BAD=1", "ESMTP"),
    ] {
        let e = err(line);
        assert_eq!(e, CommandError::InvalidParameter { keyword: kw }, "{line}");
        assert_eq!(
            (e.reply_code().get(), e.enhanced_code().to_string().as_str()),
            (501, "5.5.4")
        );
    }
    for (line, kw) in [
        ("MAIL FROM:<a@b> SIZE=1 SIZE=2", "SIZE"),
        ("MAIL FROM:<a@b> SMTPUTF8 smtputf8", "SMTPUTF8"),
        (
            "MAIL FROM:<a@b> HOLDFOR=1 HOLDUNTIL=2026-11-26T10:00:00Z",
            "HOLDUNTIL",
        ),
        ("MAIL FROM:<a@b> X-A=1 x-a=2", "ESMTP"),
        ("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", "NOTIFY"),
    ] {
        assert_eq!(
            err(line),
            CommandError::DuplicateParameter { keyword: kw },
            "{line}"
        );
    }
}

/// Encodes `cmd`, parses the line back and checks it is the same command.
fn round_trip(cmd: &Command<'_>) -> String {
    let mut out = Vec::new();
    cmd.write_to(&mut out);
    let line = out.strip_suffix(b"\r\n").expect("CRLF at the end");
    let back = Command::parse(line).expect("the encoder's line parses");
    assert_eq!(&back, cmd);
    String::from_utf8(line.to_vec()).unwrap()
}

#[test]
fn parameter_values_are_checked_when_built() {
    assert_eq!(
        MtPriority::new(10),
        Err(ValueError::Syntax("MT-PRIORITY is -9 to 9"))
    );
    assert!(MtPriority::new(-10).is_err());
    assert!(MtPriority::new(i8::MIN).is_err());
    assert_eq!(HoldFor::new(1_000_000_000), Err(ValueError::TooLong));
    assert_eq!(HoldFor::new(u32::MAX), Err(ValueError::TooLong));
    assert!(DeliverBy::new(1_000_000_000, ByMode::Notify, false).is_err());
    assert!(DeliverBy::new(-1_000_000_000, ByMode::Notify, false).is_err());
    assert!(DeliverBy::new(i64::MIN, ByMode::Return, true).is_err());
    for bad in [
        "",
        "2026-11-26",
        "2026-11-26T10:00:00",
        "2026-11-26T10:00:00Z x",
        "now",
    ] {
        assert!(DateTime::new(bad).is_err(), "{bad:?}");
    }
    assert_eq!(EnvId::new(XText::encode(b"")), Err(ValueError::Empty));
    assert_eq!(
        EnvId::new(XText::encode(&[b'a'; 101])),
        Err(ValueError::TooLong)
    );
    // Escapes count: 34 octets that each need `+XX` are 102 characters.
    assert_eq!(
        EnvId::new(XText::encode(&[b' '; 34])),
        Err(ValueError::TooLong)
    );
    let rfc822 = || Atom::new("rfc822").unwrap();
    assert_eq!(
        Orcpt::new(rfc822(), XText::encode(b"")),
        Err(ValueError::Empty)
    );
    // 6 + 1 + 494 = 501 characters.
    assert_eq!(
        Orcpt::new(rfc822(), XText::encode(&[b'a'; 494])),
        Err(ValueError::TooLong)
    );
}

/// RFC 2852 §4: `by-time = ["-" / "+"]1*9digit`, and "a negative or zero
/// value is not allowed with a by-mode of "R"". Such a BY= is a syntax
/// error (501 5.5.4), read or built; with `N` any time goes.
#[test]
fn by_time_zero_or_negative_with_mode_r_is_refused() {
    for line in [
        "MAIL FROM:<a@b> BY=0;R",
        "MAIL FROM:<a@b> BY=0;RT",
        "MAIL FROM:<a@b> BY=+0;R",
        "MAIL FROM:<a@b> BY=-0;r",
        "MAIL FROM:<a@b> BY=000000000;R",
        "MAIL FROM:<a@b> BY=-1;R",
        "MAIL FROM:<a@b> BY=-999999999;RT",
    ] {
        let e = err(line);
        assert_eq!(
            e,
            CommandError::InvalidParameter { keyword: "BY" },
            "{line}"
        );
        assert_eq!(e.reply_code().get(), 501, "{line}");
        assert_eq!(e.enhanced_code().to_string(), "5.5.4", "{line}");
    }
    for (line, time, mode) in [
        ("MAIL FROM:<a@b> BY=1;R", 1, ByMode::Return),
        ("MAIL FROM:<a@b> BY=+000000001;R", 1, ByMode::Return),
        ("MAIL FROM:<a@b> BY=0;N", 0, ByMode::Notify),
        ("MAIL FROM:<a@b> BY=-0;N", 0, ByMode::Notify),
        ("MAIL FROM:<a@b> BY=-60;NT", -60, ByMode::Notify),
    ] {
        let Command::Mail(m) = Command::parse(line.as_bytes()).unwrap() else {
            panic!("{line}")
        };
        let by = m.params.by.unwrap();
        assert_eq!((by.time(), by.mode()), (time, mode), "{line}");
    }
    for time in [0, -1, -DeliverBy::MAX_TIME] {
        assert!(
            DeliverBy::new(time, ByMode::Return, false).is_err(),
            "{time}"
        );
        assert!(
            DeliverBy::new(time, ByMode::Notify, false).is_ok(),
            "{time}"
        );
    }
    assert!(DeliverBy::new(1, ByMode::Return, true).is_ok());
}

#[test]
fn parameters_built_at_their_limits_round_trip() {
    let mb = || Mailbox::parse("a@b.example").unwrap();
    let mut p = MailParameters::default();
    p.envid = Some(EnvId::new(XText::encode(&[b'a'; 100])).unwrap());
    p.mt_priority = Some(MtPriority::MIN);
    p.hold = Some(Hold::For(HoldFor::new(HoldFor::MAX).unwrap()));
    p.by = Some(DeliverBy::new(-DeliverBy::MAX_TIME, ByMode::Notify, true).unwrap());
    let mail = Command::Mail(MailFrom {
        reverse_path: ReversePath::Mailbox(mb()),
        params: p.clone(),
    });
    let line = round_trip(&mail);
    assert!(
        line.contains(" MT-PRIORITY=-9 HOLDFOR=999999999 BY=-999999999;NT"),
        "{line}"
    );

    p.mt_priority = Some(MtPriority::MAX);
    p.hold = Some(Hold::Until(
        DateTime::new("2026-11-26T10:00:00.5-08:00").unwrap(),
    ));
    p.by = Some(DeliverBy::new(DeliverBy::MAX_TIME, ByMode::Return, false).unwrap());
    round_trip(&Command::Mail(MailFrom {
        reverse_path: ReversePath::Null,
        params: p,
    }));

    let mut r = RcptParameters::default();
    r.orcpt = Some(Orcpt::new(Atom::new("rfc822").unwrap(), XText::encode(&[b'a'; 493])).unwrap());
    r.rrvs = Some(Rrvs {
        time: DateTime::new("2014-04-03T23:01:00Z").unwrap(),
        mode: Some(RrvsMode::Reject),
    });
    round_trip(&Command::Rcpt(RcptTo {
        forward_path: ForwardPath::Mailbox(mb()),
        params: r,
    }));
}

#[test]
fn argument_text_and_etrn_nodes_that_could_not_be_read_back_are_refused() {
    for bad in [" bob", "bob ", " "] {
        assert!(Text::new(bad).is_err(), "{bad:?}");
    }
    for bad in ["#", "#my queue", "not a domain", "@", "a..b"] {
        assert!(NodeName::new(bad).is_err(), "{bad:?}");
    }
    for good in ["@example.org", "#q1", "example.org", "[192.0.2.1]"] {
        let node = NodeName::new(good).unwrap();
        assert_eq!(round_trip(&Command::Etrn(node)), format!("ETRN {good}"));
    }
    let text = Text::new("bob  smith").unwrap();
    assert_eq!(round_trip(&Command::Vrfy(text)), "VRFY bob  smith");
}

#[test]
fn mechanism_names_and_parameters_that_read_back_otherwise_are_refused() {
    use smtp_proto::command::{MechanismName, Parameter};
    assert!(MechanismName::new("plain").is_err());
    assert!(MechanismName::new("CRAM-MD5").is_err());
    assert!(MechanismName::new("X-A-NAME-OVER-20-CHARS").is_err());
    let name = MechanismName::new("X-TOKEN").unwrap();
    let auth = Command::Auth {
        mechanism: Mechanism::Other(name),
        initial_response: None,
    };
    assert_eq!(round_trip(&auth), "AUTH X-TOKEN");
    for kw in [
        "SIZE",
        "body",
        "Notify",
        "ORCPT",
        "rrvs",
        "MT-PRIORITY",
        "BY",
    ] {
        assert!(Parameter::new(kw, Some("1")).is_err(), "{kw}");
    }
    assert!(Parameter::new("X-SIZE", Some("1")).is_ok());
}

#[test]
fn an_empty_auth_identity_is_written_as_the_null_identity() {
    let mut p = MailParameters::default();
    p.auth = Some(AuthParam::Identity(XText::encode(b"")));
    let mut out = Vec::new();
    Command::Mail(MailFrom {
        reverse_path: ReversePath::Null,
        params: p,
    })
    .write_to(&mut out);
    assert_eq!(out, b"MAIL FROM:<> AUTH=<>\r\n");
    let Command::Mail(m) = Command::parse(&out[..out.len() - 2]).unwrap() else {
        panic!()
    };
    assert_eq!(m.params.auth, Some(AuthParam::Null));
}

#[test]
fn rcpt_parameters() {
    let line = "RCPT TO:<carol@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@example.net RRVS=2014-04-03T23:01:00Z;C";
    let Command::Rcpt(r) = Command::parse(line.as_bytes()).unwrap() else {
        panic!()
    };
    let n = r.params.notify.unwrap();
    assert!(n.success && n.failure && !n.delay);
    let o = r.params.orcpt.as_ref().unwrap();
    assert_eq!(o.addr_type().as_str(), "rfc822");
    let smtp_proto::command::OrcptAddr::XText(addr) = o.addr() else {
        panic!("{o:?}")
    };
    assert_eq!(addr.decode().as_ref(), b"carol@example.net");
    assert_eq!(
        r.params.rrvs.as_ref().unwrap().mode,
        Some(RrvsMode::Continue)
    );
    assert_eq!(canon(line), line);
    let Command::Rcpt(r) = Command::parse(b"RCPT TO:<a@b> NOTIFY=never").unwrap() else {
        panic!()
    };
    assert_eq!(r.params.notify, Some(Notify::NEVER));
}

/// `AUTH=<>` is the null identity (RFC 4954 §5): read as `Null`, and an
/// `Identity` whose xtext is `<>` is written the same way, so it reads back
/// as `Null`; an identity that only decodes to `<>` stays an identity.
#[test]
fn auth_param_null_identity() {
    fn parse_auth(line: &[u8]) -> Option<AuthParam<'_>> {
        match Command::parse(line).unwrap() {
            Command::Mail(m) => m.params.auth,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(parse_auth(b"MAIL FROM:<> AUTH=<>"), Some(AuthParam::Null));
    let mut cmd = Command::parse(b"MAIL FROM:<>").unwrap();
    let Command::Mail(mail) = &mut cmd else {
        panic!("{cmd:?}")
    };
    mail.params.auth = Some(AuthParam::Identity(XText::new("<>").unwrap()));
    let wire = cmd.to_bytes();
    assert_eq!(wire, b"MAIL FROM:<> AUTH=<>\r\n");
    assert_eq!(parse_auth(&wire[..wire.len() - 2]), Some(AuthParam::Null));
    assert_eq!(
        parse_auth(b"MAIL FROM:<> AUTH=+3C+3E"),
        Some(AuthParam::Identity(XText::new("+3C+3E").unwrap()))
    );
}

/// BDAT sizes at the edges of the digit count and of `u64`, spaces between
/// the words, and each malformed shape with the reason it is refused.
#[test]
fn bdat_sizes_markers_and_reasons() {
    let ok = [
        ("BDAT 18446744073709551615", u64::MAX, false),
        ("BDAT 00000000000000000001", 1, false),
        ("BDAT 000000000000000000001", 1, false),
        (
            "BDAT 1999999999999999999 LAST",
            1_999_999_999_999_999_999,
            true,
        ),
        ("BDAT 7   last", 7, true),
        ("BDAT   42  ", 42, false),
    ];
    for (line, size, last) in ok {
        assert_eq!(
            Command::parse(line.as_bytes()).unwrap(),
            Command::Bdat { size, last },
            "{line}"
        );
    }
    let bad = [
        ("BDAT 18446744073709551616", "invalid chunk size"),
        ("BDAT 99999999999999999999", "invalid chunk size"),
        ("BDAT 12x", "invalid chunk size"),
        ("BDAT x12", "invalid chunk size"),
        ("BDAT +1", "invalid chunk size"),
        ("BDAT 1 LASTX", "expected LAST"),
        ("BDAT 1 LAS", "expected LAST"),
        ("BDAT 1 LAST  x", "unexpected text after LAST"),
    ];
    for (line, reason) in bad {
        match Command::parse(line.as_bytes()) {
            Err(CommandError::InvalidArgument {
                verb: "BDAT",
                reason: r,
            }) => {
                assert_eq!(r, reason, "{line}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn bdat_and_auth() {
    assert_eq!(
        Command::parse(b"BDAT 65536").unwrap(),
        Command::Bdat {
            size: 65536,
            last: false
        }
    );
    assert_eq!(
        Command::parse(b"bdat 0 last").unwrap(),
        Command::Bdat {
            size: 0,
            last: true
        }
    );
    assert_eq!(canon("BDAT 1024 LAST"), "BDAT 1024 LAST");
    for bad in [
        "BDAT",
        "BDAT x",
        "BDAT 10 FIRST",
        "BDAT -1",
        "BDAT 99999999999999999999",
        "BDAT 1 LAST x",
    ] {
        assert_eq!(err(bad).reply_code().get(), 501, "{bad}");
    }
    let Command::Auth {
        mechanism,
        initial_response,
    } = Command::parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==").unwrap()
    else {
        panic!()
    };
    assert_eq!(mechanism, Mechanism::Plain);
    assert_eq!(
        initial_response.unwrap().decode().unwrap(),
        b"\0alice\0secret"
    );
    let Command::Auth {
        initial_response, ..
    } = Command::parse(b"AUTH EXTERNAL =").unwrap()
    else {
        panic!()
    };
    assert_eq!(initial_response.unwrap().as_str(), "");
    assert_eq!(canon("AUTH EXTERNAL ="), "AUTH EXTERNAL =");
    assert_eq!(canon("auth login"), "AUTH LOGIN");
    assert_eq!(canon("AUTH X-CUSTOM abc="), "AUTH X-CUSTOM abc=");
    // RFC 4954 §4: a response that is not base64 gets 501 5.5.2, whether
    // it came on the AUTH line or after a 334.
    let e = err("AUTH PLAIN not!base64");
    assert_eq!(e, CommandError::InvalidInitialResponse);
    assert_eq!(
        (e.reply_code().get(), e.enhanced_code().to_string()),
        (501, "5.5.2".to_string())
    );
    assert_eq!(err("AUTH").reply_code().get(), 501);
}

/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / HYPHEN
/// / UNDERSCORE` (RFC 4422 §3.1): any mech-char may come first.
#[test]
fn sasl_mechanism_names() {
    use smtp_proto::command::MechanismName;
    for good in ["-X", "_X", "9-X_Y", "x-lower", "A2345678901234567890"] {
        assert!(MechanismName::new(good).is_ok(), "{good}");
        assert_eq!(canon(&format!("AUTH {good}")), format!("AUTH {good}"));
    }
    for bad in ["", "X!", "X.Y", "A23456789012345678901", "ÄX"] {
        assert!(MechanismName::new(bad).is_err(), "{bad}");
    }
    assert_eq!(err("AUTH X!").reply_code().get(), 501);
}

#[test]
fn arguments_where_none_belong() {
    for (line, verb) in [
        ("DATA x", "DATA"),
        ("QUIT now", "QUIT"),
        ("RSET 1", "RSET"),
        ("STARTTLS x", "STARTTLS"),
    ] {
        assert_eq!(err(line), CommandError::UnexpectedArgument { verb });
    }
    assert_eq!(err("VRFY"), CommandError::MissingArgument { verb: "VRFY" });
    // Trailing spaces are not an argument.
    assert_eq!(Command::parse(b"QUIT  ").unwrap(), Command::Quit);
}

#[test]
fn unknown_verbs_are_kept() {
    let cmd = Command::parse(b"XCLIENT ADDR=192.0.2.1 NAME=spike.example").unwrap();
    let Command::Unknown { verb, args } = &cmd else {
        panic!()
    };
    assert_eq!(verb.as_str(), "XCLIENT");
    assert_eq!(
        args.as_ref().unwrap().as_str(),
        "ADDR=192.0.2.1 NAME=spike.example"
    );
    assert_eq!(canon("xyzzy"), "xyzzy");
    assert_eq!(err(""), CommandError::InvalidVerb);
    assert_eq!(err("MAIL<FROM"), CommandError::InvalidVerb);
    assert_eq!(err(" NOOP"), CommandError::InvalidVerb);
}

#[test]
fn control_characters_and_encoding() {
    assert_eq!(err("NOOP a\0b"), CommandError::NulOctet);
    assert_eq!(err("NOOP a\rb"), CommandError::BareLineEnding);
    let bad_utf8 = b"VRFY \xff\xfe";
    assert_eq!(Command::parse(bad_utf8), Err(CommandError::InvalidUtf8));
}

/// Decodes a whole stream, feeding it in the pieces `cuts` gives.
fn decode_stream(
    input: &[u8],
    cuts: &[usize],
    config: DecoderConfig,
) -> Vec<Result<String, CommandError>> {
    let mut dec = CommandDecoder::new(config);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut points: Vec<usize> = cuts.to_vec();
    points.push(input.len());
    for &p in &points {
        buf.extend_from_slice(&input[fed..p]);
        fed = p;
        loop {
            let d = dec.decode(&buf);
            if d.consumed == 0 && d.item.is_none() {
                break;
            }
            if let Some(item) = d.item {
                out.push(item.map(|c| String::from_utf8(c.to_bytes()).unwrap()));
            }
            buf.drain(..d.consumed);
        }
    }
    out
}

const STREAM: &[u8] = b"EHLO client.example\r\nMAIL FROM:<a@b.example> SIZE=10\r\n\
RCPT TO:<c@d.example> NOTIFY=NEVER\r\nRCPT TO:<bad\r\nDATA\r\nNOOP x\nQUIT\r\n";

#[test]
fn split_invariance() {
    let mut lenient = DecoderConfig::default();
    lenient.line_endings = LineEndingPolicy::AllowBareLf;
    // Strict: `NOOP x\nQUIT` is one line, refused as a whole. With bare
    // LF allowed it is two commands.
    for (config, count) in [(DecoderConfig::default(), 6), (lenient, 7)] {
        let whole = decode_stream(STREAM, &[], config.clone());
        assert_eq!(whole.len(), count, "{whole:?}");
        assert_eq!(whole[0], Ok("EHLO client.example\r\n".into()));
        assert!(whole[3].is_err());
        if count == 6 {
            assert_eq!(whole[5], Err(CommandError::BareLineEnding));
        } else {
            assert_eq!(whole[5], Ok("NOOP x\r\n".into()));
            assert_eq!(whole[6], Ok("QUIT\r\n".into()));
        }
        for cut in 0..=STREAM.len() {
            assert_eq!(
                decode_stream(STREAM, &[cut], config.clone()),
                whole,
                "cut at {cut}"
            );
        }
        let every: Vec<usize> = (0..STREAM.len()).collect();
        assert_eq!(decode_stream(STREAM, &every, config.clone()), whole);
    }
}

#[test]
fn bare_lf_policy() {
    let mut cfg = DecoderConfig::default();
    cfg.line_endings = LineEndingPolicy::AllowBareLf;
    let got = decode_stream(b"NOOP\nQUIT\r\nNO\rOP\r\n", &[], cfg);
    assert_eq!(
        got,
        vec![
            Ok("NOOP\r\n".into()),
            Ok("QUIT\r\n".into()),
            Err(CommandError::BareLineEnding)
        ]
    );
    // Strict: only CRLF ends a line, so the bare LF is part of one line
    // `NOOP\nQUIT`, refused as a whole; nothing after the LF runs.
    let got = decode_stream(b"NOOP\nQUIT\r\n", &[], DecoderConfig::default());
    assert_eq!(got, vec![Err(CommandError::BareLineEnding)]);
    let got = decode_stream(b"NOOP\nQUIT\r\nNOOP\r\n", &[], DecoderConfig::default());
    assert_eq!(
        got,
        vec![Err(CommandError::BareLineEnding), Ok("NOOP\r\n".into())]
    );
    // The default decoder is the strict one.
    let mut dec = CommandDecoder::default();
    let d = dec.decode(b"NOOP\nQUIT\r\n");
    assert_eq!(d.consumed, 11);
    assert_eq!(d.item, Some(Err(CommandError::BareLineEnding)));
}

#[test]
fn overlong_line_then_rcpt_on_same_line_yields_no_rcpt() {
    let mut input = b"MAIL FROM:<a@b.example>\r\nNOOP ".to_vec();
    input.extend(std::iter::repeat(b'A').take(5000));
    input.extend_from_slice(b"RCPT TO:<victim@example.com>\r\nQUIT\r\n");
    let expect = vec![
        Ok("MAIL FROM:<a@b.example>\r\n".to_string()),
        Err(CommandError::LineTooLong),
        Ok("QUIT\r\n".into()),
    ];
    assert_eq!(decode_stream(&input, &[], DecoderConfig::default()), expect);
    for cut in (0..input.len()).step_by(97) {
        assert_eq!(
            decode_stream(&input, &[cut], DecoderConfig::default()),
            expect
        );
    }
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(
        decode_stream(&input, &every, DecoderConfig::default()),
        expect
    );
}

/// Decodes `input` whole, cut at every offset, and byte by byte, under
/// the default (strict) configuration; every run must give `expect`.
fn assert_every_split(input: &[u8], expect: &[Result<String, CommandError>]) {
    let config = DecoderConfig::default();
    assert_eq!(decode_stream(input, &[], config.clone()), expect);
    for cut in 0..=input.len() {
        assert_eq!(
            decode_stream(input, &[cut], config.clone()),
            expect,
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(decode_stream(input, &every, config), expect, "byte by byte");
}

#[test]
fn overlong_line_then_rcpt_after_bare_lf_yields_no_rcpt() {
    let expect = vec![
        Ok("MAIL FROM:<a@b.example>\r\n".to_string()),
        Err(CommandError::LineTooLong),
        Ok("QUIT\r\n".into()),
    ];
    // A bare LF past the limit does not end the over-long line: it is
    // thrown away through the next CRLF, the RCPT with it.
    let mut input = b"MAIL FROM:<a@b.example>\r\nNOOP ".to_vec();
    input.extend(std::iter::repeat(b'A').take(5000));
    input.extend_from_slice(b"\nRCPT TO:<victim@example.com>\r\nQUIT\r\n");
    assert_every_split(&input, &expect);

    // Several bare LFs, and an LF followed by a CR: none is a CRLF.
    let mut input = b"MAIL FROM:<a@b.example>\r\nNOOP ".to_vec();
    input.extend(std::iter::repeat(b'A').take(2000));
    input.extend_from_slice(b"\nRCPT TO:<v1@example.com>\n\rRCPT TO:<v2@example.com>\n");
    input.extend_from_slice(b"RCPT TO:<v3@example.com>\r\nQUIT\r\n");
    assert_every_split(&input, &expect);

    // A bare CR as the last octet within the limit (1024), then a bare LF:
    // the over-long line still runs to the CRLF after the RCPT.
    let mut input = b"MAIL FROM:<a@b.example>\r\nNOOP ".to_vec();
    input.extend(std::iter::repeat(b'A').take(1023 - 5));
    input.extend_from_slice(b"\rX\nRCPT TO:<victim@example.com>\r\nQUIT\r\n");
    assert_every_split(&input, &expect);

    // A bare LF within the limit: the line is still one line, and too long.
    let mut input = b"MAIL FROM:<a@b.example>\r\nNOOP x\n".to_vec();
    input.extend(std::iter::repeat(b'A').take(2000));
    input.extend_from_slice(b"RCPT TO:<victim@example.com>\r\nQUIT\r\n");
    assert_every_split(&input, &expect);
}

#[test]
fn bare_lf_then_rcpt_is_one_refused_line() {
    assert_every_split(
        b"MAIL FROM:<a@b.example>\r\nNOOP\nRCPT TO:<victim@example.com>\r\nQUIT\r\n",
        &[
            Ok("MAIL FROM:<a@b.example>\r\n".to_string()),
            Err(CommandError::BareLineEnding),
            Ok("QUIT\r\n".into()),
        ],
    );
}

#[test]
fn only_bare_lfs_are_a_line_too_long_not_unbounded() {
    // A client that only ever sends bare LFs: the line grows to the limit
    // and is thrown away, a piece at a time, with nothing reported until
    // its CRLF; the caller never holds more than one line.
    let mut dec = CommandDecoder::default();
    let piece = b"NOOP\n".repeat(1000);
    for _ in 0..100 {
        let mut buf: &[u8] = &piece;
        loop {
            let d = dec.decode(buf);
            assert_eq!(d.item, None);
            if d.consumed == 0 {
                break;
            }
            buf = &buf[d.consumed..];
        }
        assert!(buf.is_empty(), "{} octets held", buf.len());
    }
    assert!(dec.is_discarding());
    let d = dec.decode(b"\r\nQUIT\r\n");
    assert_eq!(d.item, Some(Err(CommandError::LineTooLong)));
    assert_eq!(d.consumed, 2);
    assert_eq!(dec.decode(b"QUIT\r\n").item, Some(Ok(Command::Quit)));
}

#[test]
fn auth_lines_get_the_larger_limit() {
    let mut line = b"AUTH XOAUTH2 ".to_vec();
    line.extend(std::iter::repeat(b'Q').take(4000));
    line.extend_from_slice(b"\r\n");
    let got = decode_stream(&line, &[], DecoderConfig::default());
    assert!(got[0].is_ok());
    let mut noop = b"NOOP ".to_vec();
    noop.extend(std::iter::repeat(b'Q').take(4000));
    noop.extend_from_slice(b"\r\n");
    assert_eq!(
        decode_stream(&noop, &[], DecoderConfig::default()),
        vec![Err(CommandError::LineTooLong)]
    );
}

/// An `AUTH` line over its own limit is reported as such (RFC 4954 §6:
/// `500 5.5.6`), however it arrives; an over-long line that only holds
/// `AUTH ` past its start is an ordinary one.
#[test]
fn overlong_auth_lines_are_auth_line_too_long() {
    let mut config = DecoderConfig::default();
    config.max_line_length = 512;
    config.max_auth_line_length = 600;
    let mut input = b"Auth PLAIN ".to_vec();
    input.extend(std::iter::repeat(b'Q').take(700));
    input.extend_from_slice(b"\r\nNOOP AUTH ");
    input.extend(std::iter::repeat(b'Q').take(700));
    input.extend_from_slice(b"\r\nQUIT\r\n");
    let expect = vec![
        Err(CommandError::AuthLineTooLong),
        Err(CommandError::LineTooLong),
        Ok("QUIT\r\n".to_string()),
    ];
    assert_eq!(decode_stream(&input, &[], config.clone()), expect);
    for cut in 0..=input.len() {
        assert_eq!(
            decode_stream(&input, &[cut], config.clone()),
            expect,
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(decode_stream(&input, &every, config), expect);
    assert_eq!(CommandError::AuthLineTooLong.reply_code().get(), 500);
    assert_eq!(
        CommandError::AuthLineTooLong.enhanced_code().to_string(),
        "5.5.6"
    );
}

#[test]
fn decoder_memory_stays_bounded_on_endless_line() {
    // 1 GiB of input without a line feed, fed in 64 KiB pieces: the decoder
    // asks for every piece to be dropped, so the caller's buffer never grows.
    let mut dec = CommandDecoder::default();
    let piece = vec![b'x'; 64 * 1024];
    let mut dropped = 0usize;
    for _ in 0..(1usize << 30) / piece.len() {
        let d = dec.decode(&piece);
        assert!(d.item.is_none());
        assert_eq!(d.consumed, piece.len());
        dropped += d.consumed;
    }
    assert_eq!(dropped, 1 << 30);
    let d = dec.decode(b"\r\nQUIT\r\n");
    assert_eq!(d.item, Some(Err(CommandError::LineTooLong)));
    assert_eq!(
        dec.decode(&b"\r\nQUIT\r\n"[d.consumed..]).item,
        Some(Ok(Command::Quit))
    );
}

/// `MAIL FROM:<a@b>` with `count` unknown parameters `X0`, `X1`, ...,
/// then `last`: the number of parameters read, or the error.
fn parse_many_params(count: usize, last: &str) -> Result<usize, CommandError> {
    let mut line = String::from("MAIL FROM:<a@b>");
    for i in 0..count {
        line.push_str(&format!(" X{i}"));
    }
    line.push_str(last);
    match Command::parse(line.as_bytes()) {
        Ok(Command::Mail(mail)) => Ok(mail.params.other.len()),
        Ok(other) => panic!("not a MAIL command: {other:?}"),
        Err(e) => Err(e),
    }
}

#[test]
fn a_repeated_unknown_keyword_is_found_among_many() {
    // The first parameters are checked by a scan, the later ones by a set
    // of keywords (so that a line of very many is not read in quadratic
    // time): a repeat is found on both sides of the switch, in any case.
    let dup = Err(CommandError::DuplicateParameter { keyword: "ESMTP" });
    for count in [1, 2, 15, 16, 17, 40, 20_000] {
        assert_eq!(parse_many_params(count, ""), Ok(count), "{count}");
        assert_eq!(parse_many_params(count, " x0"), dup, "{count}");
        let last = format!(" x{}=v", count - 1);
        assert_eq!(parse_many_params(count, &last), dup, "{count}");
        assert_eq!(parse_many_params(count, " Y"), Ok(count + 1), "{count}");
    }
    // A repeat of a keyword read after the switch.
    assert_eq!(parse_many_params(40, " X30 Z"), dup);
    // RCPT goes the same way.
    let mut rcpt = String::from("RCPT TO:<a@b>");
    for i in 0..40 {
        rcpt.push_str(&format!(" X{i}"));
    }
    assert!(Command::parse(rcpt.as_bytes()).is_ok());
    rcpt.push_str(" x3");
    assert_eq!(Command::parse(rcpt.as_bytes()).err(), dup.err());
}

mod roundtrip {
    use proptest::prelude::*;
    use smtp_proto::command::*;

    fn domain() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}",
            "\\[(25[0-5]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|1[0-9]{2}|[1-9]?[0-9])){3}\\]",
            Just("[IPv6:2001:db8::1]".to_string()),
        ]
    }

    fn local() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-zA-Z0-9_-]{1,8}){0,2}",
            "\"([ !#-\\[\\]-~]|\\\\[ -~]){0,12}\"",
        ]
    }

    fn xtext() -> impl Strategy<Value = String> {
        "([!-*,-<>-~]|\\+[0-9A-F]{2}){1,20}"
    }

    fn mail() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just("<>".to_string()),
                (local(), domain()).prop_map(|(l, d)| format!("<{l}@{d}>"))
            ],
            proptest::option::of(0u64..=u64::MAX),
            proptest::option::of(prop_oneof![
                Just("7BIT"),
                Just("8BITMIME"),
                Just("BINARYMIME")
            ]),
            any::<bool>(),
            proptest::option::of(xtext()),
            proptest::option::of(-9i8..=9),
            proptest::option::of(("X-[A-Z]{1,6}", proptest::option::of("[a-z0-9]{1,6}"))),
        )
            .prop_map(|(path, size, body, utf8, envid, prio, other)| {
                let mut s = format!("MAIL FROM:{path}");
                if let Some(n) = size {
                    s += &format!(" SIZE={n}");
                }
                if let Some(b) = body {
                    s += &format!(" BODY={b}");
                }
                if utf8 {
                    s += " SMTPUTF8";
                }
                if let Some(e) = envid {
                    s += &format!(" ENVID={e}");
                }
                if let Some(p) = prio {
                    s += &format!(" MT-PRIORITY={p}");
                }
                if let Some((k, v)) = other {
                    s += &format!(" {k}");
                    if let Some(v) = v {
                        s += &format!("={v}");
                    }
                }
                s
            })
    }

    fn rcpt() -> impl Strategy<Value = String> {
        (
            (local(), domain()).prop_map(|(l, d)| format!("<{l}@{d}>")),
            proptest::option::of(prop_oneof![
                Just("NEVER"),
                Just("SUCCESS"),
                Just("SUCCESS,FAILURE"),
                Just("FAILURE,DELAY"),
                Just("SUCCESS,FAILURE,DELAY")
            ]),
            proptest::option::of(xtext()),
        )
            .prop_map(|(path, notify, orcpt)| {
                let mut s = format!("RCPT TO:{path}");
                if let Some(n) = notify {
                    s += &format!(" NOTIFY={n}");
                }
                if let Some(o) = orcpt {
                    s += &format!(" ORCPT=rfc822;{o}");
                }
                s
            })
    }

    fn any_command() -> impl Strategy<Value = String> {
        prop_oneof![
            domain().prop_map(|d| format!("EHLO {d}")),
            domain().prop_map(|d| format!("HELO {d}")),
            domain().prop_map(|d| format!("LHLO {d}")),
            mail(),
            rcpt(),
            Just("DATA".to_string()),
            (0u64..10_000_000_000, any::<bool>())
                .prop_map(|(n, l)| format!("BDAT {n}{}", if l { " LAST" } else { "" })),
            Just("RSET".to_string()),
            Just("QUIT".to_string()),
            Just("STARTTLS".to_string()),
            "VRFY [a-z]{1,10}",
            "NOOP( [a-z]{1,10})?",
            // The base64 of RFC 4648 §4 (padding only at the end), as
            // RFC 4954 §4 takes it.
            proptest::collection::vec(any::<u8>(), 0..30).prop_map(|raw| format!(
                "AUTH PLAIN {}",
                if raw.is_empty() {
                    "=".to_string()
                } else {
                    Base64::encode(&raw).as_str().to_string()
                }
            )),
            "X[A-Z]{2,8}( [ -~&&[^ ]][ -~]{0,20}[ -~&&[^ ]])?",
        ]
    }

    /// Random bytes, a valid command with up to three octets replaced, or
    /// a verb and a random printable tail.
    fn near_command() -> impl Strategy<Value = Vec<u8>> {
        const STARTS: [&str; 13] = [
            "MAIL FROM:",
            "RCPT TO:",
            "MAIL FROM:<a@b.example>",
            "RCPT TO:<a@b.example>",
            "EHLO",
            "HELO",
            "AUTH",
            "BDAT",
            "VRFY",
            "NOOP",
            "ETRN",
            "HELP",
            "XCLIENT",
        ];
        prop_oneof![
            1 => proptest::collection::vec(any::<u8>(), 0..200),
            2 => (
                any_command(),
                proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..4),
            )
                .prop_map(|(line, edits)| {
                    let mut b = line.into_bytes();
                    for (at, octet) in edits {
                        let k = at.index(b.len());
                        b[k] = octet;
                    }
                    b
                }),
            2 => (proptest::sample::select(&STARTS[..]), "[ -~]{0,60}")
                .prop_map(|(start, tail)| format!("{start} {tail}").into_bytes()),
        ]
    }

    proptest! {
        /// Any valid command line decodes, re-encodes to the same line, and
        /// the encoding decodes to the same value.
        #[test]
        fn encode_decode_round_trip(line in any_command()) {
            let cmd = Command::parse(line.as_bytes()).unwrap();
            let wire = cmd.to_bytes();
            prop_assert_eq!(&wire[..wire.len() - 2], line.as_bytes());
            let again = Command::parse(&wire[..wire.len() - 2]).unwrap();
            prop_assert_eq!(&again, &cmd);
            prop_assert_eq!(again.into_owned(), cmd.into_owned());
        }

        /// Arbitrary bytes never panic the parser, and whatever parses
        /// re-encodes to a line that parses to the same value. Most lines
        /// are near a command (a valid one with a few octets changed, or a
        /// known verb with a random tail), so that many of them parse.
        #[test]
        fn arbitrary_lines_never_panic(line in near_command()) {
            if let Ok(cmd) = Command::parse(&line) {
                let wire = cmd.to_bytes();
                prop_assert!(!wire[..wire.len() - 2].contains(&b'\n'));
                prop_assert!(!wire[..wire.len() - 2].contains(&b'\r'));
                prop_assert_eq!(Command::parse(&wire[..wire.len() - 2]).unwrap(), cmd);
            }
        }
    }
}

/// Every chunk size the writer can put on the wire reads back: 20-digit
/// sizes up to u64::MAX included, one more refused. Leading zeros are
/// digits of `chunk-size = 1*DIGIT` (RFC 3030 §4) that add nothing, however
/// many there are.
#[test]
fn bdat_sizes_of_twenty_digits() {
    for size in [10_000_000_000_000_000_000u64, u64::MAX] {
        let cmd = Command::Bdat { size, last: true };
        let wire = cmd.to_bytes();
        assert_eq!(Command::parse(&wire[..wire.len() - 2]).unwrap(), cmd);
    }
    let too_big = CommandError::InvalidArgument {
        verb: "BDAT",
        reason: "invalid chunk size",
    };
    assert_eq!(
        Command::parse(b"BDAT 18446744073709551616").unwrap_err(),
        too_big
    );
    assert_eq!(
        Command::parse(b"BDAT 00000000000000000000018446744073709551616").unwrap_err(),
        too_big
    );
    let cases: [(&[u8], u64, bool); 5] = [
        (b"BDAT 000000000000000000001", 1, false),
        (b"BDAT 0000000000000000000000 LAST", 0, true),
        (b"BDAT 0", 0, false),
        (b"BDAT 00018446744073709551615", u64::MAX, false),
        (b"BDAT 010", 10, false),
    ];
    for (line, size, last) in cases {
        assert_eq!(
            Command::parse(line).unwrap(),
            Command::Bdat { size, last },
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

/// `=` on the wire is the empty initial response; `Base64::new("=")` is
/// refused, so no value writes as `=` but the empty one.
#[test]
fn lone_equals_is_only_the_empty_response() {
    assert!(smtp_proto::command::Base64::new("=").is_err());
    let cmd = Command::parse(b"AUTH PLAIN =").unwrap();
    let Command::Auth {
        initial_response: Some(ir),
        ..
    } = &cmd
    else {
        panic!("{cmd:?}")
    };
    assert_eq!(ir.as_str(), "");
    assert_eq!(cmd.to_bytes(), b"AUTH PLAIN =\r\n");
}

/// Parameters this crate does not interpret, added through `push_other`:
/// a keyword given twice (ignoring case) is refused, as the parser refuses
/// it, so what is built always reads back.
#[test]
fn built_other_parameters_read_back() {
    use smtp_proto::command::{
        ForwardPath, MailFrom, MailParameters, Mailbox, Parameter, RcptParameters, RcptTo,
        ReversePath,
    };
    let mut mail = MailParameters::default();
    mail.push_other(Parameter::new("X-TAG", Some("blue")).unwrap())
        .unwrap();
    mail.push_other(Parameter::new("X-FLAG", None).unwrap())
        .unwrap();
    assert!(mail
        .push_other(Parameter::new("x-tag", Some("red")).unwrap())
        .is_err());
    let mut rcpt = RcptParameters::default();
    rcpt.push_other(Parameter::new("X-ONE", None).unwrap())
        .unwrap();
    assert!(rcpt
        .push_other(Parameter::new("X-One", None).unwrap())
        .is_err());
    let from = ReversePath::Mailbox(Mailbox::parse("a@b.example").unwrap());
    let to = ForwardPath::Mailbox(Mailbox::parse("c@d.example").unwrap());
    for cmd in [
        Command::Mail(MailFrom {
            reverse_path: from,
            params: mail,
        }),
        Command::Rcpt(RcptTo {
            forward_path: to,
            params: rcpt,
        }),
    ] {
        let wire = cmd.to_bytes();
        assert_eq!(Command::parse(&wire[..wire.len() - 2]).unwrap(), cmd);
    }
}

/// RFC 6533 §3: in an ORCPT of type `utf-8`, `\` only starts an
/// `EmbeddedUnicodeChar = "\x{" HEXPOINT "}"`, and HEXPOINT writes a code
/// point with the fewest digits its rule allows: the ASCII that QCHAR
/// leaves out (SP, `+`, `=`, `\`), or a code point past ASCII that is no
/// surrogate and at most U+10FFFF. The controls HEXPOINT also lists (C0,
/// DEL, C1) are refused: the address is a mailbox when dequoted, and holds
/// none (see `utf8_orcpt_refuses_control_characters_both_ways`). This
/// holds for the ASCII (xtext) form as for the UTF-8 one, read or built.
#[test]
fn orcpt_utf8_hexpoint_follows_rfc6533() {
    use smtp_proto::command::{Atom, Orcpt, Unitext, XText};
    let orcpt = |addr: &str| {
        Command::parse(format!("RCPT TO:<a@b> ORCPT=utf-8;{addr}").as_bytes()).map(|c| {
            let Command::Rcpt(r) = c else { panic!() };
            r.params.orcpt.unwrap().into_owned()
        })
    };
    let good = [
        "20", "2B", "3D", "5C", "A0", "e9", "FF", "100", "7528", "fFf", "1000", "CFFF", "D000",
        "D7FF", "E000", "FFFF", "10000", "1F600", "FFFFF", "100000", "10FFFF",
    ];
    for hex in good {
        for addr in [
            format!("a\\x{{{hex}}}b@example.com"),
            format!("用户\\x{{{hex}}}@example.com"),
        ] {
            assert!(orcpt(&addr).is_ok(), "{addr}");
            assert!(Unitext::new(addr.clone()).is_ok(), "{addr}");
        }
    }
    let bad: [(&str, &[&str]); 7] = [
        (
            "printable ASCII but SP + = \\",
            &["41", "21", "2A", "7E", "5B", "5D"],
        ),
        ("NUL", &["00"]),
        (
            "control character",
            &["01", "09", "10", "11", "19", "7F", "80", "85", "9F"],
        ),
        (
            "leading zero",
            &["041", "0E9", "00E9", "0FFFF", "010000", "0010FFFF"],
        ),
        ("surrogate", &["D800", "DBFF", "DC00", "DFFF"]),
        ("past U+10FFFF", &["110000", "1FFFFF", "1000000"]),
        ("too few digits", &["", "7", "E"]),
    ];
    for (why, hexes) in bad {
        for hex in hexes {
            for addr in [
                format!("a\\x{{{hex}}}b@example.com"),
                format!("用户\\x{{{hex}}}@example.com"),
            ] {
                assert!(
                    matches!(
                        orcpt(&addr),
                        Err(CommandError::InvalidParameter { keyword: "ORCPT" })
                    ),
                    "{why}: {addr}"
                );
                assert!(Unitext::new(addr.clone()).is_err(), "{why}: {addr}");
            }
        }
    }
    // `\` that does not start `\x{HEXPOINT}`.
    for addr in [
        "a\\b@example.com",
        "a\\X{E9}@example.com",
        "a\\xE9@example.com",
        "a\\x{E9@example.com",
        "a@example.com\\",
    ] {
        assert!(orcpt(addr).is_err(), "{addr}");
    }
    // Built: the xtext form of type utf-8 is checked the same way.
    let utf8 = || Atom::new("UTF-8").unwrap();
    assert!(Orcpt::new(utf8(), XText::new("a\\x{E9}@example.com").unwrap()).is_ok());
    assert!(Orcpt::new(utf8(), XText::new("a\\x{41}@example.com").unwrap()).is_err());
    assert!(Orcpt::new(utf8(), XText::new("a\\b@example.com").unwrap()).is_err());
    // Other address types keep plain xtext, where `\` is an xchar.
    let rfc822 = Atom::new("rfc822").unwrap();
    assert!(Orcpt::new(rfc822, XText::new("a\\x{41}@example.com").unwrap()).is_ok());
    assert!(Command::parse(b"RCPT TO:<a@b> ORCPT=rfc822;a\\b@example.com").is_ok());
}

/// RFC 6533 §3: with the address type `utf-8`, ORCPT may carry the address
/// as UTF-8 (`utf-8-addr-unitext`, `\x{HEX}` for a code point); `+XX`
/// escapes are xtext, and non-ASCII is refused with any other type.
#[test]
fn orcpt_utf8_address_forms() {
    use smtp_proto::command::{Orcpt, OrcptAddr, Unitext};
    let orcpt = |line: &str| match Command::parse(line.as_bytes()) {
        Ok(Command::Rcpt(r)) => Ok(r.params.orcpt.unwrap().into_owned()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    let line = "RCPT TO:<用户@example.com> ORCPT=utf-8;用户@example.com";
    let o = orcpt(line).unwrap();
    assert!(matches!(o.addr(), OrcptAddr::Unitext(u) if u.as_str() == "用户@example.com"));
    assert!(o.is_utf8());
    assert_eq!(canon(line), line);
    let line = "RCPT TO:<a@example.com> ORCPT=UTF-8;\\x{7528}@example.com";
    let o = orcpt(line).unwrap();
    assert!(matches!(o.addr(), OrcptAddr::XText(_)));
    assert!(!o.is_utf8());
    assert_eq!(canon(line), line);
    let o = orcpt("RCPT TO:<a@b> ORCPT=utf-8;a+2Bb@example.com").unwrap();
    assert!(matches!(o.addr(), OrcptAddr::XText(_)));
    for bad in [
        "RCPT TO:<a@b> ORCPT=rfc822;用户@example.com",
        "RCPT TO:<a@b> ORCPT=utf-8;用户+2B@example.com",
        "RCPT TO:<a@b> ORCPT=utf-8;用户=@example.com",
        "RCPT TO:<a@b> ORCPT=utf-8;用户\\x{}@example.com",
        "RCPT TO:<a@b> ORCPT=utf-8;用户\\x{1234567}@example.com",
        "RCPT TO:<a@b> ORCPT=utf-8;用户\\y@example.com",
    ] {
        // `=` cannot be in any esmtp-value: the parameter list itself is
        // refused there.
        assert!(
            matches!(orcpt(bad), Err(CommandError::InvalidParameter { .. })),
            "{bad}"
        );
    }
    // Built, it writes and reads back the same.
    let built = Orcpt::utf8(Unitext::new("用户@example.com").unwrap()).unwrap();
    let mut cmd = Command::parse(b"RCPT TO:<a@example.com>").unwrap();
    if let Command::Rcpt(r) = &mut cmd {
        r.params.orcpt = Some(built.clone());
    }
    let wire = cmd.to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&wire),
        "RCPT TO:<a@example.com> ORCPT=utf-8;用户@example.com\r\n"
    );
    assert_eq!(Command::parse(&wire[..wire.len() - 2]).unwrap(), cmd);
}

/// An AUTH initial response is the client's credentials in base64 (a PLAIN
/// password decodes from it at sight): `Debug`, as used in logs, does not
/// show it, as it shows no [`smtp_proto::sasl::Secret`]. `Display` and
/// `as_str` still give the wire text.
#[test]
fn auth_initial_response_is_redacted_in_debug() {
    let cmd = Command::parse(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==").unwrap();
    let Command::Auth {
        initial_response: Some(ir),
        ..
    } = &cmd
    else {
        panic!("not AUTH")
    };
    assert_eq!(ir.as_str(), "AGFsaWNlAHMzY3JldA==");
    assert_eq!(ir.to_string(), "AGFsaWNlAHMzY3JldA==");
    for dbg in [format!("{cmd:?}"), format!("{cmd:#?}"), format!("{ir:?}")] {
        assert!(!dbg.contains("AGFsaWNl"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }
    let built = smtp_proto::command::Base64::encode(b"\0alice\0s3cret");
    assert_eq!(format!("{built:?}"), "<redacted>");
}

/// RFC 5321 §4.1.1: "SMTP receivers SHOULD tolerate trailing white space
/// before the terminating <CRLF>": spaces and tabs at the end of a line are
/// dropped before it is parsed, but on a BDAT line (a chunk follows it, and
/// a line peers may read otherwise is refused as before). A tab anywhere
/// else, a vertical tab or a form feed is not white space the parser skips.
#[test]
fn trailing_white_space_is_dropped() {
    let same: [(&[u8], &[u8]); 12] = [
        (b"DATA\t", b"DATA"),
        (b"rset\t\t", b"rset"),
        (b"QUIT \t ", b"QUIT"),
        (b"NOOP\t", b"NOOP"),
        (b"STARTTLS\t", b"STARTTLS"),
        (b"EHLO client.example\t", b"EHLO client.example"),
        (b"MAIL FROM:<a@example.com>\t", b"MAIL FROM:<a@example.com>"),
        (
            b"RCPT TO:<b@example.org> NOTIFY=NEVER\t",
            b"RCPT TO:<b@example.org> NOTIFY=NEVER",
        ),
        (b"VRFY bob\t", b"VRFY bob"),
        (
            b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\t",
            b"AUTH PLAIN AGFsaWNlAHMzY3JldA==",
        ),
        (b"XYZZY plugh \t", b"XYZZY plugh"),
        (b"ETRN example.org\t", b"ETRN example.org"),
    ];
    for (line, without) in same {
        assert_eq!(
            Command::parse(line),
            Command::parse(without),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(Command::parse(line).is_ok(), "{line:?}");
    }
    assert_eq!(
        Command::parse(b"AUTH\t"),
        Err(CommandError::MissingArgument { verb: "AUTH" })
    );
    // A tab inside the line is kept: the verb ends at a space.
    for line in [
        &b"DATA\tnow"[..],
        b"MAIL\tFROM:<a@b.example>",
        b"RSET\x0b",
        b"QUIT\x0c",
    ] {
        assert_eq!(
            Command::parse(line),
            Err(CommandError::InvalidVerb),
            "{line:?}"
        );
    }
    assert_eq!(
        Command::parse(b"VRFY \tbob"),
        Ok(Command::Vrfy(Text::new("\tbob").unwrap()))
    );
    // A BDAT line keeps its end.
    for line in [&b"BDAT 5\t"[..], b"bdat 5 LAST\t", b"BDAT 5 \t"] {
        assert!(
            matches!(
                Command::parse(line),
                Err(CommandError::InvalidArgument { verb: "BDAT", .. })
            ),
            "{line:?}"
        );
    }
    assert_eq!(
        Command::parse(b"BDAT 5 LAST "),
        Ok(Command::Bdat {
            size: 5,
            last: true
        })
    );
    // Text cannot end in a tab, so every value reads back as written.
    assert!(Text::new("bob\t").is_err());
    assert!(Text::new("\tbob").is_ok());
}

/// A client that sends its base64 credentials where the mechanism name
/// goes (`AUTH c2VjcmV0MTIz`) has them read as a mechanism name of mixed
/// case: `Debug` hides such a name. Names in one case show, as RFC 4422
/// §3.1 writes them (upper case) or folded.
#[test]
fn auth_mechanism_name_of_mixed_case_is_redacted_in_debug() {
    let cmd = Command::parse(b"AUTH c2VjcmV0MTIz").unwrap();
    assert_eq!(
        format!("{cmd:?}"),
        "Auth { mechanism: Other(<redacted>), initial_response: None }"
    );
    assert!(!format!("{cmd:#?}").contains("c2Vj"));
    assert_eq!(cmd.to_bytes(), b"AUTH c2VjcmV0MTIz\r\n");
    for (line, dbg) in [
        (
            &b"AUTH X-CUSTOM_2"[..],
            r#"Auth { mechanism: Other("X-CUSTOM_2"), initial_response: None }"#,
        ),
        (
            b"AUTH x-custom =",
            r#"Auth { mechanism: Other("x-custom"), initial_response: Some(<redacted>) }"#,
        ),
        (
            b"AUTH Plain AGFsaWNlAHMzY3JldA==",
            "Auth { mechanism: Plain, initial_response: Some(<redacted>) }",
        ),
    ] {
        assert_eq!(format!("{:?}", Command::parse(line).unwrap()), dbg);
    }
}

/// A SASL response sent where a command was expected (a client that
/// pipelines its credentials past a refused AUTH) reads as an unknown
/// verb when its base64 holds letters and digits only. `Debug` hides the
/// verb, and the arguments with it, unless it looks like a verb: 1 to 16
/// letters, digits and hyphens from a letter on, in one case, and not a
/// multiple of four octets long on a line of its own.
#[test]
fn unknown_verb_that_may_be_a_credential_is_redacted_in_debug() {
    let hidden: [&[u8]; 7] = [
        b"c2VjcmV0MTIz",         // "secret123": mixed case, 12 octets
        b"Ym9i",                 // "bob"
        b"QUJD",                 // "ABC": one case, but four octets alone
        b"AGJvYgBzZWNyZXQxMnh5", // a PLAIN response
        b"c2VjcmV0 MTIz",        // mixed case, with arguments
        b"ABCDEFGHIJKLMNOPQ x",  // 17 octets
        b"9VERB",                // not from a letter
    ];
    for line in hidden {
        let cmd = Command::parse(line).unwrap();
        assert!(matches!(cmd, Command::Unknown { .. }), "{cmd:?}");
        assert!(!cmd.verb_is_loggable(), "{line:?}");
        let word = std::str::from_utf8(&line[..4]).unwrap();
        for dbg in [format!("{cmd:?}"), format!("{cmd:#?}")] {
            assert!(!dbg.contains(word), "{dbg}");
            assert!(dbg.contains("<redacted>"), "{dbg}");
        }
        // The wire text is still there for an application that wants it.
        assert_eq!(cmd.to_bytes(), [line, b"\r\n"].concat());
    }
    for (line, dbg) in [
        (
            &b"XCLIENT ADDR=192.0.2.1"[..],
            r#"Unknown { verb: "XCLIENT", args: Some("ADDR=192.0.2.1") }"#,
        ),
        (b"xexch50", r#"Unknown { verb: "xexch50", args: None }"#),
        (
            b"X-ANONYMOUSTLS",
            r#"Unknown { verb: "X-ANONYMOUSTLS", args: None }"#,
        ),
        (b"VERB on", r#"Unknown { verb: "VERB", args: Some("on") }"#),
        (
            b"ABCDEFGHIJKLMNOP x",
            r#"Unknown { verb: "ABCDEFGHIJKLMNOP", args: Some("x") }"#,
        ),
    ] {
        let cmd = Command::parse(line).unwrap();
        assert!(cmd.verb_is_loggable(), "{line:?}");
        assert_eq!(format!("{cmd:?}"), dbg);
    }
    // Known commands print as before.
    assert_eq!(format!("{:?}", Command::parse(b"DATA").unwrap()), "Data");
    assert_eq!(
        format!("{:?}", Command::parse(b"BDAT 5 LAST").unwrap()),
        "Bdat { size: 5, last: true }"
    );
    assert_eq!(
        format!("{:?}", Command::parse(b"NOOP x").unwrap()),
        r#"Noop(Some("x"))"#
    );
    assert!(Command::parse(b"QUIT").unwrap().verb_is_loggable());
}

/// Whether `t` is base64 as RFC 4648 §4 defines it, written out from the
/// RFC: a multiple of four characters of the alphabet, `=` padding (at
/// most two) only at the end (§3.3), and the bits the padding leaves over
/// in the last character zero (§3.5), so that each value has one spelling.
fn is_rfc4648_base64(t: &str) -> bool {
    let b = t.as_bytes();
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    if b.len() % 4 != 0 {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return false;
    }
    let data = &b[..b.len() - pad];
    if data.iter().any(|&c| value(c).is_none()) {
        return false;
    }
    match (pad, data.last().and_then(|&c| value(c))) {
        (0, _) => true,
        (1, Some(v)) => v & 0b11 == 0,
        (2, Some(v)) => v & 0b1111 == 0,
        _ => false,
    }
}

/// RFC 4954 §4 takes a SASL response in the base64 of RFC 4648 §4, with
/// `=` padding only at the end (§3.3). `Base64::new`, and with it the
/// AUTH initial response, refuses padding in the middle, missing padding
/// and non-zero leftover bits, so every value decodes and encodes back to
/// its own text. Checked against the RFC's rule for every text of up to
/// eight characters of `A`, `Q`, `/` and `=` (each kind of final
/// character and the pad).
#[test]
fn base64_values_are_rfc4648_base64_with_padding_only_at_the_end() {
    use smtp_proto::command::Base64;
    for bad in [
        "QQ==QQ==", "=AAA", "A=AA", "AB=C", "QUI=QUJD", "QQ=", "QQ", "Q", "QUJD=", "QUJD====",
        "====", "==", "QR==", "QUJ=\t",
    ] {
        assert!(Base64::new(bad).is_err(), "{bad:?}");
        assert_eq!(
            err(&format!("AUTH PLAIN {bad}")),
            CommandError::InvalidInitialResponse,
            "{bad:?}"
        );
    }
    let alphabet = ['A', 'Q', '/', '='];
    let mut texts = vec![String::new()];
    let mut accepted = 0;
    for len in 0..=8 {
        for t in &texts {
            let ok = Base64::new(t.as_str()).is_ok();
            let want = t != "=" && is_rfc4648_base64(t);
            assert_eq!(ok, want, "{t:?}");
            let line = format!("AUTH PLAIN {t}");
            let parsed = Command::parse(line.as_bytes());
            if ok {
                accepted += 1;
                let b = Base64::new(t.as_str()).unwrap();
                let raw = b.decode().unwrap();
                assert_eq!(Base64::encode(&raw).as_str(), t, "{t:?}");
                if !t.is_empty() {
                    let Ok(Command::Auth {
                        initial_response: Some(ir),
                        ..
                    }) = parsed
                    else {
                        panic!("{line:?}: {parsed:?}")
                    };
                    assert_eq!(ir.as_str(), t);
                }
            } else if t != "=" {
                assert_eq!(parsed, Err(CommandError::InvalidInitialResponse), "{t:?}");
            }
        }
        if len < 8 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
        }
    }
    // A group of four is `xxxx` (3^4), `xxy=` (3^2 * 2: `y` is `A` or `Q`,
    // whose low two bits are zero) or `xy==` (3 * 2: low four bits zero):
    // 105 groups. The empty text, one group, or any full group and one.
    assert_eq!(accepted, 1 + 105 + 81 * 105);
}

/// Long values are checked piece by piece (without allocating): padding or
/// a bad character at every place around the first pieces' edges, and
/// texts of every length near them, are judged as the RFC's rule says.
#[test]
fn long_base64_values_are_judged_whole() {
    use smtp_proto::command::Base64;
    for len in (240..=1030).filter(|n| n % 4 == 0 || (500..=520).contains(n)) {
        let valid = "QUJD".repeat(len / 4) + &"Q".repeat(len % 4);
        assert_eq!(
            Base64::new(valid.as_str()).is_ok(),
            is_rfc4648_base64(&valid),
            "length {len}"
        );
        for at in (0..len).filter(|i| i % 256 < 6 || i % 256 > 250 || len - i < 6) {
            for c in ["=", "!", "QQ=="] {
                let mut t = valid.clone();
                t.replace_range(at..(at + c.len()).min(len), c);
                assert_eq!(
                    Base64::new(t.as_str()).is_ok(),
                    is_rfc4648_base64(&t),
                    "length {len}, {c:?} at {at}"
                );
            }
        }
    }
    let long = Base64::encode(&[0xa5; 10_000]);
    assert_eq!(
        Base64::new(long.as_str()).unwrap().decode().unwrap(),
        [0xa5; 10_000]
    );
}

/// RFC 5321 §4.1.1.3 makes only `<Postmaster>` (and `<Postmaster@domain>`)
/// special. After a source route, `Path = "<" [ A-d-l ":" ] Mailbox ">"`
/// (§4.1.2) needs a whole mailbox, so `<@route:Postmaster>` is a recipient
/// without a domain (501 5.1.3), not the postmaster;
/// `<@route:Postmaster@domain>` is that mailbox, the route dropped
/// (Appendix C).
#[test]
fn a_source_route_before_a_bare_postmaster_is_refused() {
    for line in [
        "RCPT TO:<@relay.example:Postmaster>",
        "RCPT TO:<@a.example,@b.example:postmaster>",
        "rcpt to:<@relay.example:POSTMASTER> NOTIFY=NEVER",
    ] {
        let e = err(line);
        assert_eq!(
            e,
            CommandError::InvalidForwardPath(PathError::MissingDomain),
            "{line}"
        );
        assert_eq!(
            (e.reply_code().get(), e.enhanced_code().to_string()),
            (501, "5.1.3".to_string())
        );
    }
    assert_eq!(
        err("MAIL FROM:<@relay.example:Postmaster>"),
        CommandError::InvalidReversePath(PathError::MissingDomain)
    );
    let line = "RCPT TO:<@relay.example:Postmaster@example.org>";
    assert_eq!(canon(line), "RCPT TO:<Postmaster@example.org>");
    let Command::Rcpt(r) = Command::parse(line.as_bytes()).unwrap() else {
        panic!()
    };
    let ForwardPath::Mailbox(mb) = &r.forward_path else {
        panic!("{:?}", r.forward_path)
    };
    assert_eq!(
        (mb.local_part().as_str(), mb.domain().as_str()),
        ("Postmaster", "example.org")
    );
    // The writer puts the postmaster without a route, as it reads back.
    assert_eq!(canon("RCPT TO:<postmaster>"), "RCPT TO:<Postmaster>");
    let built = Command::Rcpt(RcptTo {
        forward_path: ForwardPath::Postmaster,
        params: RcptParameters::default(),
    });
    assert_eq!(built.to_bytes(), b"RCPT TO:<Postmaster>\r\n");
}

/// Parse, write, parse again: every line of up to five pieces after
/// `MAIL FROM:` or `RCPT TO:` (path punctuation, a route, a domain,
/// `Postmaster`, a quote, a parameter) or after `AUTH ` that parses, with
/// and without unbracketed paths, is written as a line that parses to the
/// same command and is written the same again; the decoder reads each
/// line as `Command::parse_with` does.
#[test]
fn short_lines_read_back_as_written() {
    use smtp_proto::command::{CommandDecoder, DecoderConfig, ParseOptions};
    let cases: [(&str, &[&str]); 3] = [
        (
            "MAIL FROM:",
            &[
                "<",
                ">",
                "@",
                "a",
                "@b.example",
                ":",
                ",",
                "Postmaster",
                "\"",
                " X=1",
                "<@r.x:",
            ],
        ),
        (
            "RCPT TO:",
            &[
                "<",
                ">",
                "@",
                "a",
                "@b.example",
                ":",
                ",",
                "Postmaster",
                "\"",
                " NOTIFY=NEVER",
                "<@r.x:",
            ],
        ),
        ("AUTH ", &["PLAIN", " ", "=", "QQ", "==", "A", "X-Y", "*"]),
    ];
    let mut parsed = 0;
    for unbracketed in [false, true] {
        let opts = ParseOptions::default().allow_unbracketed_paths(unbracketed);
        let mut config = DecoderConfig::default();
        config.parse = opts.clone();
        for (start, pieces) in cases {
            let mut lines = vec![start.to_string()];
            for depth in 0..=5 {
                for line in &lines {
                    let result = Command::parse_with(line.as_bytes(), &opts);
                    let framed = format!("{line}\r\n");
                    let decoded = CommandDecoder::new(config.clone())
                        .decode(framed.as_bytes())
                        .item
                        .expect("a whole line");
                    assert_eq!(decoded, result, "{line:?}");
                    let Ok(cmd) = result else { continue };
                    parsed += 1;
                    let wire = cmd.to_bytes();
                    let again = Command::parse(&wire[..wire.len() - 2])
                        .unwrap_or_else(|e| panic!("{line:?} written {wire:?}: {e}"));
                    assert_eq!(again, cmd, "{line:?}");
                    assert_eq!(again.to_bytes(), wire, "{line:?}");
                }
                if depth < 5 {
                    lines = lines
                        .iter()
                        .flat_map(|l| pieces.iter().map(move |p| format!("{l}{p}")))
                        .collect();
                }
            }
        }
    }
    assert!(parsed > 1000, "{parsed}");
}

/// An ORCPT of the type `utf-8` (RFC 6533 §3) names an address that "MUST
/// follow utf-8-address ABNF when dequoted", a mailbox, which holds no C0
/// control, DEL (RFC 5321 §4.1.2) or C1 control (RFC 5198 §2, as for the
/// paths above). HEXPOINT lists `\x{01}`-`\x{19}`, `\x{7F}` and
/// `\x{80}`-`\x{9F}`, and UTF8-2 takes a raw C1 control, so the grammar
/// alone let them through: the parser and the constructors took
/// `ORCPT=utf-8;a\x{01}@example.com` and a raw U+0085. Both refuse them
/// now, in both forms, while the characters RFC 6533 writes as code points
/// still pass.
#[test]
fn utf8_orcpt_refuses_control_characters_both_ways() {
    use smtp_proto::command::{Atom, Orcpt, Unitext, XText};
    let utf8 = || Atom::new("utf-8").unwrap();
    for addr in [
        "a\\x{01}@example.com",
        "a\\x{09}@example.com",
        "a\\x{10}@example.com",
        "a\\x{19}@example.com",
        "a\\x{7F}@example.com",
        "a\\x{80}@example.com",
        "a\\x{85}@example.com",
        "a\\x{9b}@example.com",
        "\\x{7528}\\x{1B}@example.com",
    ] {
        let line = format!("RCPT TO:<b@example.org> ORCPT=utf-8;{addr}");
        assert!(Command::parse(line.as_bytes()).is_err(), "{line:?}");
        let x = XText::new(addr).unwrap();
        assert!(Orcpt::new(utf8(), x).is_err(), "{addr:?}");
        assert!(Unitext::new(addr).is_err(), "{addr:?}");
    }
    for addr in [
        "a\u{85}@example.com",
        "\u{9f}\u{7528}@example.com",
        "a\u{80}b@example.com",
    ] {
        let line = format!("RCPT TO:<b@example.org> ORCPT=utf-8;{addr}");
        assert!(Command::parse(line.as_bytes()).is_err(), "{line:?}");
        assert!(Unitext::new(addr).is_err(), "{addr:?}");
    }
    for addr in [
        "a\\x{20}b@example.com",
        "a\\x{2B}b\\x{3D}c\\x{5C}@example.com",
        "a\\x{A0}\\x{E9}\\x{FF}@example.com",
        "\\x{7528}\\x{6237}@example.com",
        "\\x{1F600}@example.com",
        "a\u{a0}\u{e9}\u{7528}@example.com",
    ] {
        let line = format!("RCPT TO:<b@example.org> ORCPT=utf-8;{addr}");
        let parsed = Command::parse(line.as_bytes());
        assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
        assert_eq!(canon(&line), line);
        assert!(Unitext::new(addr).is_ok(), "{addr:?}");
    }
}

/// RFC 6531 lets UTF-8 into addresses, but a C1 control character (U+0080
/// to U+009F) "MUST NOT appear" in text on the wire (RFC 5198 §2): it is
/// refused in a local part, quoted or not, and in a domain, where all of
/// U+0080 to U+00BF is DISALLOWED in an IDNA2008 U-label. Latin-1 signs
/// after U+009F stay valid in a local part, and letters in both.
#[test]
fn c1_control_characters_are_refused_in_addresses() {
    for bad in [
        "MAIL FROM:<a\u{85}b@example.com> SMTPUTF8",
        "MAIL FROM:<\u{9b}2J@example.com> SMTPUTF8",
        "MAIL FROM:<\"a\u{80}\"@example.com> SMTPUTF8",
        "RCPT TO:<a@exa\u{85}mple.com>",
        "RCPT TO:<a@ex\u{a0}ample.com>",
        "RCPT TO:<a@example.\u{9f}>",
        "EHLO exa\u{85}mple.com",
    ] {
        assert!(Command::parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
    for good in [
        "MAIL FROM:<a\u{a9}b@example.com> SMTPUTF8",
        "MAIL FROM:<\u{bf}x\u{a0}@example.com> SMTPUTF8",
        "MAIL FROM:<\"a\u{b5}\"@example.com> SMTPUTF8",
        "RCPT TO:<caf\u{e9}@caf\u{e9}.example>",
    ] {
        let parsed = Command::parse(good.as_bytes());
        assert!(parsed.is_ok(), "{good:?}: {parsed:?}");
        assert_eq!(canon(good), good);
    }
    assert!(smtp_proto::command::LocalPart::new("a\u{85}b").is_err());
    assert!(smtp_proto::command::LocalPart::new("\"a\u{85}b\"").is_err());
    assert!(smtp_proto::command::LocalPart::new("a\u{a9}b").is_ok());
    assert!(smtp_proto::command::Domain::new("exa\u{85}mple.com").is_err());
    assert!(smtp_proto::command::Domain::new("caf\u{e9}.example").is_ok());
}
