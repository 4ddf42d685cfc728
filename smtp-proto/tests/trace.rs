//! Trace fields: `Received:` lines written from checked parts, and the
//! `with` protocol the server session reports at each stage of a session.

use std::net::IpAddr;

use proptest::prelude::*;
use smtp_proto::command::{Atom, Domain, ForwardPath, Mailbox};
use smtp_proto::sasl::SaslMechanism;
use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;
use smtp_proto::trace::{Received, Timestamp, WithProtocol};

fn domain(s: &str) -> Domain<'_> {
    Domain::new(s).unwrap()
}

fn text(r: &Received<'_>) -> String {
    String::from_utf8(r.to_bytes()).unwrap()
}

const WHEN: i64 = 1_795_723_722; // Thu, 26 Nov 2026 20:08:42 +0000

#[test]
fn received_known_answers() {
    let by = domain("mx.example.org");
    let by_literal = domain("[192.0.2.25]");
    let helo = domain("client.example.net");
    let helo_literal = domain("[IPv6:2001:db8::7]");
    let rdns = domain("host7.isp.example");
    let id = Atom::new("q-1").unwrap();
    let rcpt = ForwardPath::Mailbox(Mailbox::parse("bob@example.org").unwrap());
    let at = Timestamp::new(WHEN, 0).unwrap();
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    let date = "\r\n\tThu, 26 Nov 2026 20:08:42 +0000\r\n";

    let cases: Vec<(Received<'_>, String)> = vec![
        (
            Received::new(&helo, v4, &by, at),
            format!("Received: from client.example.net ([192.0.2.7])\r\n\tby mx.example.org;{date}"),
        ),
        (
            Received::new(&helo, v4, &by, at).peer_name(&rdns),
            format!(
                "Received: from client.example.net (host7.isp.example [192.0.2.7])\r\n\tby mx.example.org;{date}"
            ),
        ),
        (
            Received::new(&helo, v6, &by, at),
            format!("Received: from client.example.net ([IPv6:2001:db8::1])\r\n\tby mx.example.org;{date}"),
        ),
        (
            // A dual-stack socket's IPv4-mapped address is written as IPv4.
            Received::new(&helo, mapped, &by, at),
            format!("Received: from client.example.net ([192.0.2.7])\r\n\tby mx.example.org;{date}"),
        ),
        (
            // Address literals never stand alone (RFC 5321 §4.4
            // Extended-Domain): the HELO literal has the peer's address
            // after it, a literal `by` itself.
            Received::new(&helo_literal, v4, &by_literal, at),
            format!(
                "Received: from [IPv6:2001:db8::7] ([192.0.2.7])\r\n\tby [192.0.2.25] ([192.0.2.25]);{date}"
            ),
        ),
        (
            Received::new(&helo, v4, &by, at)
                .with(WithProtocol::lmtp().tls(true))
                .id(&id)
                .unwrap()
                .recipient(&rcpt),
            format!(
                "Received: from client.example.net ([192.0.2.7])\r\n\tby mx.example.org with LMTPS id q-1\r\n\tfor <bob@example.org>;{date}"
            ),
        ),
        (
            Received::new(&helo, v4, &by, at).recipient(&ForwardPath::Postmaster),
            format!(
                "Received: from client.example.net ([192.0.2.7])\r\n\tby mx.example.org\r\n\tfor <Postmaster@mx.example.org>;{date}"
            ),
        ),
    ];
    for (received, want) in cases {
        assert_eq!(text(&received), want);
        assert_eq!(received.to_string(), want, "Display writes the same");
    }
}

/// RFC 5321 §4.4 `For = CFWS "FOR" FWS ( Path / Mailbox )`: both need a
/// domain, so the domainless `<Postmaster>` of RCPT (the postmaster of the
/// receiving host, RFC 5321 §4.1.1.3) is written with the `by` host's name,
/// an address literal included.
#[test]
fn postmaster_recipient_is_written_with_the_receiving_host() {
    let helo = domain("client.example.net");
    let at = Timestamp::new(WHEN, 0).unwrap();
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    for (by, want) in [
        ("mx.example.org", "for <Postmaster@mx.example.org>;"),
        ("[192.0.2.25]", "for <Postmaster@[192.0.2.25]>;"),
    ] {
        let by = domain(by);
        let written = text(&Received::new(&helo, v4, &by, at).recipient(&ForwardPath::Postmaster));
        assert!(written.contains(want), "{written}");
        // What is written is a path that parses back as a mailbox.
        let path = written
            .split("\tfor <")
            .nth(1)
            .and_then(|rest| rest.split_once(">;"))
            .map(|(mailbox, _)| mailbox)
            .unwrap();
        let mailbox = Mailbox::parse(path).unwrap();
        assert!(mailbox
            .local_part()
            .as_str()
            .eq_ignore_ascii_case("postmaster"));
        assert_eq!(mailbox.domain(), &by);
    }
}

/// Walks an unfolded field the way an RFC 5322 reader does: a comment runs
/// from `(` to its matching `)`, with nested comments and quoted-pairs
/// inside; a domain literal runs from `[` to `]`. Returns the comments'
/// contents with their quoted-pairs undone, or `None` when a `)` closes no
/// comment or a comment or literal is still open at the end.
fn comments(field: &str) -> Option<Vec<String>> {
    let (mut found, mut current) = (Vec::new(), String::new());
    let (mut depth, mut in_literal) = (0usize, false);
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match (depth, c) {
            (0, _) if in_literal => in_literal = c != ']',
            (0, '[') => in_literal = true,
            (0, '(') => depth = 1,
            (0, ')') => return None,
            (0, _) => {}
            (_, '\\') => current.push(chars.next()?),
            (_, '(') => {
                depth += 1;
                current.push(c);
            }
            (1, ')') => {
                depth = 0;
                found.push(std::mem::take(&mut current));
            }
            (_, ')') => {
                depth -= 1;
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    (depth == 0 && !in_literal).then_some(found)
}

/// A General-address-literal may hold `(` and `)` (RFC 5321 §4.1.3
/// `dcontent`), which a comment may not hold bare (RFC 5322 §3.2.2
/// `ctext`): inside the comment of a `by` literal they are written as
/// quoted-pairs, and the comments read back as the values. Outside a
/// comment, as the HELO domain, the literal is written as it is (`dtext`
/// takes them). A literal given as the peer's name is no name: it is left
/// out, since `TCP-info` has room for one literal only (RFC 5321 §4.4).
#[test]
fn parentheses_of_general_literals_are_quoted_inside_comments() {
    let helo = domain("[x-tag:a)b(c]");
    let rdns = domain("[x-tag:(]");
    let by = domain("[x-tag:m)x]");
    let at = Timestamp::new(WHEN, 0).unwrap();
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let written = text(&Received::new(&helo, v4, &by, at).peer_name(&rdns));
    assert_eq!(
        written,
        "Received: from [x-tag:a)b(c] ([192.0.2.7])\r\n\tby [x-tag:m)x] ([x-tag:m\\)x]);\r\n\tThu, 26 Nov 2026 20:08:42 +0000\r\n"
    );
    let unfolded = written.replace("\r\n\t", " ");
    assert_eq!(
        comments(&unfolded),
        Some(vec!["[192.0.2.7]".to_string(), "[x-tag:m)x]".to_string()])
    );

    // The longest such literals, with the longest id: the quoted-pairs
    // lengthen the `by` line, and the id moves to a line of its own rather
    // than take it past 998 octets.
    let longest = domain_owned(format!("[x:{}]", ")".repeat(251)));
    assert_eq!(longest.as_str().len(), 255);
    let id = Atom::new("i".repeat(Received::MAX_ID_LEN)).unwrap();
    let r = Received::new(&longest, v4, &longest, at)
        .with(WithProtocol::esmtp().utf8(true).tls(true).auth(true))
        .id(&id)
        .unwrap();
    let written = text(&r);
    for line in written.split_inclusive("\r\n") {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    assert!(written.contains(&format!("\r\n\tid {id};")), "{written}");
    let unfolded = written.replace("\r\n\t", " ");
    let found = comments(&unfolded).expect("balanced comments");
    assert_eq!(
        found,
        ["[192.0.2.7]".to_string(), longest.as_str().to_string()]
    );
    // A short literal keeps a short id on the `by` line; one that would
    // take the line past 78 octets goes on a line of its own.
    let short_id = Atom::new("q1w2e3").unwrap();
    let r = Received::new(&helo, v4, &by, at).id(&short_id).unwrap();
    assert!(text(&r).contains("\tby [x-tag:m)x] ([x-tag:m\\)x]) id q1w2e3;"));
    let r = Received::new(&helo, v4, &by, at).id(&id).unwrap();
    assert!(text(&r).contains(&format!("\tby [x-tag:m)x] ([x-tag:m\\)x])\r\n\tid {id};")));
}

fn domain_owned(s: String) -> Domain<'static> {
    Domain::new(s).unwrap()
}

/// The longest parts the types allow keep every line within the 998
/// octets of RFC 5322 §2.1.1: a 255-octet HELO literal (longer ones are
/// refused, as EHLO refuses them), a 255-octet peer name and host name,
/// the longest id, a 256-octet path.
#[test]
fn received_lines_stay_within_998_octets_at_the_limits() {
    let literal = format!("[x:{}]", "a".repeat(251));
    assert_eq!(literal.len(), 255);
    assert!(Domain::new(format!("[x:{}]", "a".repeat(252))).is_err());
    let long_name = [
        &"a".repeat(63)[..],
        &"b".repeat(63),
        &"c".repeat(63),
        &"d".repeat(63),
    ]
    .join(".");
    assert_eq!(long_name.len(), 255);
    let helo = Domain::new(literal.as_str()).unwrap();
    let name = Domain::new(long_name.as_str()).unwrap();
    let id_text = "i".repeat(Received::MAX_ID_LEN);
    let id = Atom::new(id_text.as_str()).unwrap();
    let too_long = Atom::new("i".repeat(Received::MAX_ID_LEN + 1)).unwrap();
    let local = "l".repeat(64);
    let domain_part = [&"e".repeat(63)[..], &"f".repeat(63), &"g".repeat(61)].join(".");
    let address = format!("{local}@{domain_part}");
    let path = ForwardPath::Mailbox(Mailbox::parse(&address).unwrap());
    let at = Timestamp::new(WHEN, -MAX_OFFSET_MINUTES).unwrap();
    let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
    let base = Received::new(&helo, v6, &name, at).peer_name(&name);
    assert_eq!(
        base.id(&too_long).err(),
        Some(smtp_proto::trace::TraceError::IdTooLong)
    );
    let r = base
        .with(WithProtocol::esmtp().utf8(true).tls(true).auth(true))
        .id(&id)
        .unwrap()
        .recipient(&path);
    let bytes = r.to_bytes();
    let longest = bytes.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
    // Each split piece holds its line and the CR; with the LF a line is
    // one octet more.
    let longest_line = longest + 1;
    assert!(longest_line <= 998, "a line of {longest_line} octets");
    // Folded where the grammar allows it, the longest line is the one
    // that holds the 255-octet HELO literal or the id.
    assert!(longest > 255, "the test reaches long lines: {longest}");
}

const MAX_OFFSET_MINUTES: i16 = 99 * 60 + 59;

/// RFC 5322 §2.1.1: lines SHOULD keep to 78 octets. Names of ordinary
/// length that would take the `from` line or the `by` line past that are
/// folded where the grammar has folding white space: before the TCP-info
/// comment, and before `with` and `id`.
#[test]
fn received_lines_fold_at_78_octets_where_they_can() {
    let helo = Domain::new("submission-client-with-a-long-name.branch-office.example.com").unwrap();
    let rdns = Domain::new("host-192-0-2-7.dynamic.access-provider.example.net").unwrap();
    let by = Domain::new("inbound-relay-07.mail-cluster.example.org").unwrap();
    let id = Atom::new("3F2A9C41B7E0D5862F1A").unwrap();
    let at = Timestamp::new(WHEN, 0).unwrap();
    let r = Received::new(&helo, "192.0.2.7".parse().unwrap(), &by, at)
        .peer_name(&rdns)
        .with(WithProtocol::esmtp().tls(true).auth(true))
        .id(&id)
        .unwrap();
    let written = text(&r);
    assert_eq!(
        written,
        "Received: from submission-client-with-a-long-name.branch-office.example.com\r\n\
         \t(host-192-0-2-7.dynamic.access-provider.example.net [192.0.2.7])\r\n\
         \tby inbound-relay-07.mail-cluster.example.org with ESMTPSA\r\n\
         \tid 3F2A9C41B7E0D5862F1A;\r\n\
         \tThu, 26 Nov 2026 20:08:42 +0000\r\n"
    );
    for line in written.split_terminator("\r\n") {
        assert!(line.len() <= 78, "{line:?}");
    }
    // Short names stay on one line each, as before.
    let short = Domain::new("c.example").unwrap();
    let r = Received::new(&short, "192.0.2.7".parse().unwrap(), &short, at)
        .with(WithProtocol::esmtp())
        .id(&id)
        .unwrap();
    assert!(text(&r).starts_with(
        "Received: from c.example ([192.0.2.7])\r\n\tby c.example with ESMTP id 3F2A9C41B7E0D5862F1A;\r\n"
    ));
}

/// RFC 5321 §4.4 `TCP-info` holds an `address-literal` (§4.1.3): the
/// peer's address is written in a form that grammar takes whatever its
/// runs of zero groups (`IPv6-comp`: "::" stands for at least two groups,
/// with at most six beside it), and reads back as the same address; an
/// IPv4-mapped one is written as IPv4.
#[test]
fn peer_addresses_are_written_as_rfc_5321_address_literals() {
    let helo = domain("client.example.net");
    let by = domain("mx.example.org");
    let at = Timestamp::new(WHEN, 0).unwrap();
    let mut peers: Vec<IpAddr> = [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "1::",
        "::ffff:192.0.2.7",
        "::192.0.2.7",
        "64:ff9b::192.0.2.7",
        "fe80::1:0:0:1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    // One run of zero groups, of every length, at every place.
    for start in 0..8 {
        for len in 1..=8 - start {
            let mut groups = [0xabcd_u16; 8];
            groups[start..start + len].fill(0);
            peers.push(IpAddr::from(std::net::Ipv6Addr::from(groups)));
        }
    }
    for peer in peers {
        let written = text(&Received::new(&helo, peer, &by, at));
        let literal = written
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(")\r\n"))
            .map(|(literal, _)| literal)
            .unwrap();
        let checked =
            Domain::new(literal).unwrap_or_else(|e| panic!("{literal} for {peer}: {e:?}"));
        assert!(checked.is_address_literal(), "{literal}");
        let inner = &literal[1..literal.len() - 1];
        let inner = inner.strip_prefix("IPv6:").unwrap_or(inner);
        assert_eq!(inner.parse::<IpAddr>().unwrap(), peer.to_canonical());
    }
}

#[test]
fn every_registered_with_keyword() {
    let mut seen = Vec::new();
    for (base, names) in [
        (
            WithProtocol::esmtp(),
            ["ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA"],
        ),
        (WithProtocol::lmtp(), ["LMTP", "LMTPA", "LMTPS", "LMTPSA"]),
    ] {
        for utf8 in [false, true] {
            for (i, name) in names.iter().enumerate() {
                let p = base.utf8(utf8).tls(i >= 2).auth(i % 2 == 1);
                let want = if utf8 {
                    format!("UTF8{}", name.replace("ESMTP", "SMTP"))
                } else {
                    name.to_string()
                };
                assert_eq!(p.keyword(), want);
                seen.push(want);
            }
        }
    }
    // RFC 3848 and RFC 6531 §3.7.3 register sixteen forms beside SMTP.
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 16);
    for utf8 in [false, true] {
        for tls in [false, true] {
            for auth in [false, true] {
                let p = WithProtocol::smtp().utf8(utf8).tls(tls).auth(auth);
                assert_eq!(p.keyword(), "SMTP");
            }
        }
    }
}

/// Feeds `input` and accepts every decision; returns the events (as
/// `Debug` text).
fn feed(s: &mut ServerSession, input: &[u8]) -> Vec<String> {
    let mut events = Vec::new();
    let mut rest = input;
    for _ in 0..1_000 {
        let step = s.handle_input(rest).expect("no error");
        rest = &rest[step.consumed..];
        match step.outcome {
            Outcome::Event(ev) => {
                events.push(format!("{ev:?}"));
                if let ServerEvent::MessageEnd { .. } = ev {
                    events.push(format!("with {}", s.with_protocol()));
                }
                if s.pending_decision().is_some() {
                    s.accept().unwrap();
                }
            }
            Outcome::Transmit => {
                s.poll_transmit(&mut Vec::new());
            }
            _ => break,
        }
    }
    s.poll_transmit(&mut Vec::new());
    events
}

#[test]
fn the_session_reports_its_protocol_at_each_stage() {
    let mut config = ServerConfig::new("mx.example.org");
    config.starttls = true;
    config.smtputf8 = true;
    config.auth_mechanisms = vec![SaslMechanism::Plain];
    let mut s = ServerSession::new(config.clone()).unwrap();
    s.greet().unwrap();
    let at = |s: &ServerSession| s.with_protocol().keyword();
    assert_eq!(at(&s), "ESMTP");
    feed(&mut s, b"EHLO client.example.net\r\nSTARTTLS\r\n");
    assert_eq!(at(&s), "ESMTP");
    s.tls_established().unwrap();
    assert_eq!(at(&s), "ESMTPS");
    // AUTH PLAIN with `\0alice\0s3cret`.
    feed(
        &mut s,
        b"EHLO client.example.net\r\nAUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n",
    );
    assert_eq!(at(&s), "ESMTPSA");
    let events = feed(
        &mut s,
        b"MAIL FROM:<a@example.net> SMTPUTF8\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\n",
    );
    assert!(
        events.contains(&"with UTF8SMTPSA".to_string()),
        "{events:#?}"
    );
    // The UTF-8 form belongs to that message only.
    assert_eq!(at(&s), "ESMTPSA");
    let events = feed(
        &mut s,
        b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nhi\r\n.\r\n",
    );
    assert!(events.contains(&"with ESMTPSA".to_string()), "{events:#?}");

    // HELO, and LMTP.
    let mut s = ServerSession::new(config.clone()).unwrap();
    s.greet().unwrap();
    feed(&mut s, b"HELO old.example.net\r\n");
    assert_eq!(at(&s), "SMTP");
    config.lmtp = true;
    let mut s = ServerSession::new(config).unwrap();
    s.greet().unwrap();
    feed(&mut s, b"LHLO client.example.net\r\n");
    assert_eq!(at(&s), "LMTP");
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
}

fn domain_text() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..5).prop_map(|l| l.join("."))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

proptest! {
    /// Whatever the parts, the field is one header field: the first line
    /// starts `Received: `, every other one is a continuation (it starts
    /// with a tab), every line ends in CRLF and none is over 998 octets;
    /// unfolded, it holds the clauses in RFC 5321 §4.4's order and the
    /// date after the semicolon.
    #[test]
    fn received_is_one_well_formed_field(
        by in domain_text(),
        helo in domain_text(),
        peer in ip(),
        peer_name in prop::option::of(domain_text()),
        id in prop::option::of("[A-Za-z0-9][A-Za-z0-9-]{0,39}"),
        rcpt in prop::option::of(("[a-z0-9.]{1,30}", domain_text())),
        secs in -2_208_988_800i64..=253_402_300_799,
        protocol in (0usize..3, any::<bool>(), any::<bool>(), any::<bool>()),
    ) {
        let by = Domain::new(by.as_str()).unwrap();
        let helo = Domain::new(helo.as_str()).unwrap();
        let peer_name = peer_name.as_deref().map(|n| Domain::new(n).unwrap());
        let id = id.as_deref().map(|i| Atom::new(i).unwrap());
        let rcpt = rcpt.as_ref().and_then(|(l, d)| {
            Mailbox::parse(&format!("{l}@{d}")).ok().map(|m| ForwardPath::Mailbox(m.into_owned()))
        });
        let (service, utf8, tls, auth) = protocol;
        let with = [WithProtocol::smtp(), WithProtocol::esmtp(), WithProtocol::lmtp()][service]
            .utf8(utf8)
            .tls(tls)
            .auth(auth);
        let at = Timestamp::new(secs, 0).unwrap();
        let mut r = Received::new(&helo, peer, &by, at).with(with);
        if let Some(n) = &peer_name {
            r = r.peer_name(n);
        }
        if let Some(i) = &id {
            r = r.id(i).unwrap();
        }
        if let Some(p) = &rcpt {
            r = r.recipient(p);
        }
        let bytes = r.to_bytes();
        prop_assert!(bytes.starts_with(b"Received: "));
        prop_assert!(bytes.ends_with(b"\r\n"));
        let body = &bytes[..bytes.len() - 2];
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let line = if i + 1 < lines.len() {
                prop_assert!(line.ends_with(b"\r"), "LF without CR");
                &line[..line.len() - 1]
            } else {
                line
            };
            prop_assert!(!line.contains(&b'\r'), "a bare CR");
            prop_assert!(line.len() + 2 <= 998);
            if i > 0 {
                prop_assert!(line.starts_with(b"\t"), "not a continuation");
            }
        }

        // Unfolded, the clauses in order.
        let unfolded = String::from_utf8(body.to_vec()).unwrap().replace("\r\n\t", " ");
        let (clauses, date) = unfolded.rsplit_once("; ").unwrap();
        prop_assert_eq!(date, at.to_string());
        let literal = match peer.to_canonical() {
            IpAddr::V4(v4) => format!("[{v4}]"),
            IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        let mut want = vec![format!("Received: from {helo}")];
        match &peer_name {
            Some(n) => want.push(format!("({n} {literal})")),
            None => want.push(format!("({literal})")),
        }
        want.push(format!("by {by} with {}", with.keyword()));
        if let Some(i) = &id {
            want.push(format!("id {i}"));
        }
        if let Some(p) = &rcpt {
            want.push(format!("for {p}"));
        }
        prop_assert_eq!(clauses, want.join(" "));
    }
}
