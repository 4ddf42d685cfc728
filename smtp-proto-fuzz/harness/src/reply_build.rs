//! Target `reply_build`: replies and EHLO replies built from structure
//! encode and decode to themselves.
//!
//! The input drives [`arbitrary::Unstructured`]:
//!
//! - a reply code in 200–599 and one to six lines (now and then the last
//!   one repeated up to 400 times more, past the total limit), each an optional
//!   enhanced status code (class, subject and detail over their whole
//!   range, the class usually matching the reply code) and a text drawn
//!   from printable characters, tabs, UTF-8, control characters and
//!   status-code look-alikes (`2.0.0 ...`), built with
//!   `OwnedReply::from_lines`. When the constructor accepts it, its bytes
//!   ([`crate::reply::check_owned_round_trip`]) hold CRLF line ends only,
//!   decode as exactly one reply equal to it, and encode the same again.
//!   The one documented exception is folded into the expectation: a line
//!   without an enhanced code whose text starts with one (of the reply's
//!   class, followed by a space or the end) reads back with the code split
//!   off. The constructor must refuse exactly the texts holding CR, LF or
//!   NUL, lines over 512 octets, enhanced codes of another class (or on
//!   a 3yz reply), and replies whose written bytes would pass
//!   `MAX_REPLY_LEN` octets.
//! - an EHLO reply: a domain, a greeting and capabilities (typed ones with
//!   parameters drawn from their RFC grammar, now and then with a space or
//!   an empty parameter; `AUTH` lists; unknown keywords with parameters)
//!   built with `EhloReplyBuilder`. When the builder accepts everything,
//!   the reply reads back (with `EhloReply::parse`) with the same domain,
//!   greeting, and each capability with the same canonical text and the
//!   same typed extension as the capability given to the builder.

use arbitrary::{Result, Unstructured};
use smtp_proto::reply::{
    AuthMechanism, AuthMechanisms, Capability, EhloReply, EhloReplyBuilder, Extension,
    FutureRelease, InvalidReply, Limits, OwnedReply, Reply, MAX_REPLY_LEN,
};
use smtp_proto::status::{EnhancedStatusCode, ReplyCode, StatusClass};

use crate::gen;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        ehlo(&mut u)
    } else {
        reply(&mut u)
    };
}

const CLASSES: [StatusClass; 3] = [
    StatusClass::Success,
    StatusClass::PersistentTransientFailure,
    StatusClass::PermanentFailure,
];

fn line_text(u: &mut Unstructured<'_>, code: ReplyCode) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => {
            // A status code look-alike at the start of the text.
            let class = code.get() / 100;
            let digit = if u.ratio(3, 4)? {
                class
            } else {
                u.int_in_range(0..=9)?
            };
            let s: u16 = u.int_in_range(0..=1200)?;
            let d: u16 = u.int_in_range(0..=1200)?;
            let mut t = format!("{digit}.{s}.{d}").into_bytes();
            if u.arbitrary()? {
                t.extend_from_slice(gen::from_alphabet(u, gen::TEXT, 0, 6)?.as_bytes());
            }
            t
        }
        2 => {
            let n = u.int_in_range(490..=520)?;
            vec![b'x'; n]
        }
        _ => gen::from_alphabet(u, gen::TEXT, 0, 24)?.into_bytes(),
    })
}

/// What a line reads back as: the enhanced code split off the text when
/// the text starts with one of the reply's class.
fn expected_line(
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    text: &[u8],
) -> (Option<EnhancedStatusCode>, Vec<u8>) {
    if enhanced.is_some() {
        return (enhanced, text.to_vec());
    }
    let Some(class) = code.status_class() else {
        return (None, text.to_vec());
    };
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    match EnhancedStatusCode::parse(&text[..end]) {
        Some(esc) if esc.class() == class => {
            (Some(esc), text.get(end + 1..).unwrap_or_default().to_vec())
        }
        _ => (None, text.to_vec()),
    }
}

fn reply(u: &mut Unstructured<'_>) -> Result<()> {
    let code = ReplyCode::new(u.int_in_range(200..=599)?).expect("in range");
    let n = u.int_in_range(1..=6)?;
    let mut lines = Vec::new();
    for _ in 0..n {
        let enhanced = if u.arbitrary()? {
            let class = if u.ratio(3, 4)? {
                code.status_class().unwrap_or(StatusClass::Success)
            } else {
                *u.choose(&CLASSES)?
            };
            EnhancedStatusCode::new(class, u.int_in_range(0..=1000)?, u.int_in_range(0..=1000)?)
        } else {
            None
        };
        lines.push((enhanced, line_text(u, code)?));
    }
    // Now and then a line repeated up to past the total limit.
    if u.ratio(1, 8)? {
        let (esc, text) = lines[lines.len() - 1].clone();
        for _ in 0..u.int_in_range(0..=400)? {
            lines.push((esc, text.clone()));
        }
    }

    // The constructor refuses exactly what cannot be written.
    let mut refusal = None;
    let mut total = 0;
    for (esc, text) in &lines {
        // The line written before the last one: code, `-`, the enhanced
        // code and a space when text follows it, the text, CRLF. As the
        // last line an empty one is the bare code, one octet shorter.
        let sp = usize::from(!text.is_empty());
        let len = 4 + esc.map_or(0, |e| e.to_string().len() + sp) + text.len() + 2;
        let bare = usize::from(esc.is_none() && text.is_empty());
        let as_last = total + len - bare;
        total += len;
        let why = if let Some(&b) = text.iter().find(|&&b| matches!(b, b'\r' | b'\n' | 0)) {
            Some(InvalidReply::ForbiddenByte(b))
        } else if esc.is_some_and(|e| code.status_class() != Some(e.class())) {
            Some(InvalidReply::EnhancedClassMismatch)
        } else if len > 512 {
            Some(InvalidReply::LineTooLong)
        } else if as_last > MAX_REPLY_LEN {
            Some(InvalidReply::ReplyTooLong)
        } else {
            None
        };
        if why.is_some() {
            refusal = why;
            break;
        }
    }
    let built = OwnedReply::from_lines(code, lines.iter().map(|(e, t)| (*e, t.as_slice())));
    let built = match (built, refusal) {
        (Ok(Some(r)), None) => r,
        (Err(got), Some(want)) => {
            assert_eq!(got, want, "refused for another reason");
            return Ok(());
        }
        (got, want) => panic!("OwnedReply::from_lines gave {got:?}, expected refusal {want:?}"),
    };
    assert_eq!(built.code(), code);
    assert_eq!(built.line_count(), lines.len());

    let expected =
        OwnedReply::from_lines(code, lines.iter().map(|(e, t)| expected_line(code, *e, t)))
            .expect("the expected reply is valid")
            .expect("it has lines");
    let bytes = built.to_bytes();
    // A text that starts with an enhanced code (`5.1.0 `) reads back split,
    // and then writes without the trailing space: stable only when nothing
    // was split.
    crate::reply::check_owned_round_trip(&expected, &bytes, expected == built);
    Ok(())
}

/// One capability drawn from its grammar, now and then stepping outside.
fn capability<'a>(u: &mut Unstructured<'_>, words: &'a [String]) -> Result<Capability<'a>> {
    let word = |u: &mut Unstructured<'_>| -> Result<&'a str> { Ok(u.choose(words)?.as_str()) };
    Ok(match u.int_in_range(0..=14u8)? {
        0 => Capability::Size(if u.arbitrary()? {
            Some(u.arbitrary()?)
        } else {
            None
        }),
        1 => Capability::DeliverBy(if u.arbitrary()? {
            Some(u.arbitrary()?)
        } else {
            None
        }),
        2 => Capability::FutureRelease(FutureRelease {
            max_interval: u.arbitrary()?,
            max_datetime: word(u)?,
        }),
        3 => Capability::MtPriority(if u.arbitrary()? { Some(word(u)?) } else { None }),
        4 => Capability::NoSoliciting(if u.arbitrary()? { Some(word(u)?) } else { None }),
        // A limit of 0 is out of range and read back as not advertised:
        // only the values a server can mean are built.
        5 => Capability::Limits(Limits {
            rcpt_max: u.arbitrary::<Option<u32>>()?.filter(|&n| n > 0),
            mail_max: u.arbitrary::<Option<u32>>()?.filter(|&n| n > 0),
            rcpt_domain_max: u.arbitrary::<Option<u32>>()?.filter(|&n| n > 0),
        }),
        6 => Capability::XClient(word(u)?),
        7 => Capability::Auth(AuthMechanisms::new(word(u)?)),
        8 | 9 => Capability::Other {
            keyword: word(u)?,
            params: word(u)?,
        },
        _ => *u.choose(&[
            Capability::EightBitMime,
            Capability::Pipelining,
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
        ])?,
    })
}

fn ehlo(u: &mut Unstructured<'_>) -> Result<()> {
    // A pool of words the capabilities borrow from: keywords, parameters,
    // mechanism lists, and a few that step outside the grammar.
    let mut words: Vec<String> = Vec::new();
    for _ in 0..u.int_in_range(1..=6)? {
        words.push(match u.int_in_range(0..=6u8)? {
            0 => gen::keyword(u)?,
            1 => gen::date_time(u)?,
            2 => "PLAIN LOGIN x-custom".to_owned(),
            3 => String::new(),
            4 => gen::text(u)?,
            _ => gen::from_alphabet(u, &['A', 'z', '9', '-', '=', ':', '!', '~'], 1, 10)?,
        });
    }
    let domain = if u.arbitrary()? {
        gen::domain(u)?
    } else {
        gen::text(u)?
    };
    // The greeting is read back trimmed of SP and HT, so it is drawn
    // trimmed.
    let greeting = if u.arbitrary()? {
        gen::text(u)?.trim_matches([' ', '\t']).to_owned()
    } else {
        String::new()
    };
    let mut caps = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        caps.push(capability(u, &words)?);
    }
    let mechs: Vec<AuthMechanism<'_>> = words
        .iter()
        .flat_map(|w| w.split(' '))
        .filter(|w| !w.is_empty())
        .map(AuthMechanism::from_name)
        .collect();
    let with_auth_list = u.arbitrary::<bool>()? && !mechs.is_empty();

    let Ok(mut builder) = EhloReplyBuilder::new(&domain, &greeting) else {
        return Ok(());
    };
    for cap in &caps {
        match builder.capability(cap) {
            Ok(b) => builder = b,
            Err(_) => return Ok(()),
        }
    }
    if with_auth_list {
        match builder.auth(&mechs) {
            Ok(b) => builder = b,
            Err(_) => return Ok(()),
        }
    }
    let bytes = builder.build().to_bytes();
    let reply = Reply::parse(&bytes)
        .unwrap_or_else(|e| panic!("a built EHLO reply does not parse ({e}): {bytes:?}"));
    let ehlo = EhloReply::parse(&reply)
        .unwrap_or_else(|e| panic!("a built EHLO reply does not read ({e}): {bytes:?}"));
    assert_eq!(ehlo.domain(), domain, "domain of {bytes:?}");
    assert_eq!(
        ehlo.greeting(),
        greeting.as_bytes(),
        "greeting of {bytes:?}"
    );

    // An untyped capability with a known keyword and that keyword's
    // parameters (`Other { keyword: "SIZE", params: "10" }`) is read back
    // typed: the wire is the same.
    let mut expected: Vec<(String, Option<Extension>)> = caps
        .iter()
        .map(|c| {
            let text = c.to_string();
            let ext = c
                .extension()
                .or_else(|| Capability::parse(&text).extension());
            (text, ext)
        })
        .collect();
    if with_auth_list {
        let list = mechs.iter().map(|m| m.name()).collect::<Vec<_>>().join(" ");
        expected.push((format!("AUTH {list}"), Some(Extension::Auth)));
    }
    let got: Vec<(String, Option<Extension>)> = ehlo
        .capabilities()
        .map(|c| (c.to_string(), c.extension()))
        .collect();
    assert_eq!(
        got,
        expected,
        "capabilities read back differently from {:?}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(())
}
