//! Target `ehlo`: EHLO replies (`smtp_proto::reply::EhloReply`,
//! `Capability`, `EhloReplyBuilder`).
//!
//! The input is the byte stream a server might send after EHLO. Every
//! reply the reply decoder finds in it (under every cut of
//! [`crate::split::cuts`], which must agree) is read as an EHLO reply, and
//! the target asserts, for each that reads:
//!
//! - the domain is not empty and holds no space; the greeting has no
//!   leading or trailing SP/HT;
//! - each capability's canonical text (`Display`) parses back to a
//!   capability with the same text and the same typed extension;
//! - the typed view (extension set, SIZE, DELIVERBY, FUTURERELEASE,
//!   MT-PRIORITY, NO-SOLICITING, XCLIENT, LIMITS, AUTH mechanisms, count of
//!   unknown capabilities) agrees with the capabilities walked one by one;
//! - the reply's canonical bytes read as the same EHLO reply (when its
//!   lines carry no enhanced status code in a non-canonical form such as
//!   `2.0.02`, which the reply layer rewrites as `2.0.2` while the EHLO
//!   layer reads the raw text);
//! - rebuilt with `EhloReplyBuilder` from its domain, greeting and
//!   capabilities (when the builder accepts them all), it reads back as
//!   the same EHLO reply.
//!
//! Replies that are not EHLO replies (another code, no domain, not UTF-8)
//! must be refused without a panic.

use smtp_proto::reply::{
    Capability, Decoded, DecoderConfig, EhloReply, EhloReplyBuilder, Extension, Reply, ReplyDecoder,
};

use crate::split::check_split_invariance;
use crate::stream::{feed, Limits, Step};

/// Everything an EHLO reply says, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The domain.
    pub domain: String,
    /// The greeting.
    pub greeting: Vec<u8>,
    /// Each capability's canonical text and typed extension.
    pub capabilities: Vec<(String, Option<Extension>)>,
    /// The typed accessors, printed.
    pub typed: String,
}

/// Reads the comparable view of an EHLO reply (lists as their words: the
/// accessors hand out the raw space-separated text).
pub fn view(ehlo: &EhloReply<'_>) -> View {
    let typed = format!(
        "{:?} size={:?} max={:?} by={:?} fr={:?} mt={:?} ns={:?} xc={:?} lim={:?} unknown={} auth={:?}",
        ehlo.extensions(),
        ehlo.size(),
        ehlo.max_size(),
        ehlo.deliver_by(),
        ehlo.future_release(),
        ehlo.mt_priority_profile(),
        ehlo.no_soliciting_keywords(),
        ehlo.xclient_attributes().split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>(),
        ehlo.limits(),
        ehlo.unknown_count(),
        ehlo.auth_mechanisms()
            .map(|m| m.name().to_ascii_uppercase())
            .collect::<Vec<_>>(),
    );
    View {
        domain: ehlo.domain().to_owned(),
        greeting: ehlo.greeting().to_vec(),
        capabilities: ehlo
            .capabilities()
            .map(|c| (c.to_string(), c.extension()))
            .collect(),
        typed,
    }
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let replies = check_split_invariance(data, |pieces| {
        let mut decoder = ReplyDecoder::new();
        let limits = Limits {
            max_retained: DecoderConfig::DEFAULT_MAX_REPLY_LEN
                + DecoderConfig::DEFAULT_MAX_LINE_LEN,
            max_stalls: 0,
        };
        feed(pieces.iter().copied(), limits, |buf| {
            match decoder.decode(buf) {
                Ok(Decoded::Incomplete) => Step::NeedMore,
                Ok(Decoded::Reply { reply, consumed }) => Step::Advance {
                    consumed,
                    event: Some(reply.as_bytes().to_vec()),
                },
                Ok(d) => Step::Advance {
                    consumed: d.consumed(),
                    event: None,
                },
                Err(e) => Step::Advance {
                    consumed: e.consumed(),
                    event: None,
                },
            }
        })
        .events
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
    });
    for raw in replies {
        let reply = Reply::parse(&raw).expect("a decoded reply parses alone");
        if let Ok(ehlo) = EhloReply::parse(&reply) {
            check(&ehlo, &reply);
        }
    }
}

/// Asserts the properties of one EHLO reply read from `reply`.
pub fn check(ehlo: &EhloReply<'_>, reply: &Reply<'_>) {
    let v = view(ehlo);
    assert!(!v.domain.is_empty(), "empty domain");
    assert!(!v.domain.contains(' '), "space in domain {:?}", v.domain);
    let ws = |b: &u8| matches!(b, b' ' | b'\t');
    assert!(
        !v.greeting.first().is_some_and(ws) && !v.greeting.last().is_some_and(ws),
        "untrimmed greeting {:?}",
        v.greeting
    );

    // Each capability's canonical text reads back the same.
    for cap in ehlo.capabilities() {
        let text = cap.to_string();
        let again = Capability::parse(&text);
        assert_eq!(again.to_string(), text, "{cap:?} does not read back");
        assert_eq!(again.extension(), cap.extension(), "{cap:?} changed kind");
    }

    // The typed view agrees with the capabilities walked one by one.
    let exts: Vec<Extension> = ehlo.capabilities().filter_map(|c| c.extension()).collect();
    for ext in Extension::ALL {
        assert_eq!(ehlo.has(*ext), exts.contains(ext), "has({ext:?})");
    }
    let unknown = ehlo
        .capabilities()
        .filter(|c| c.extension().is_none())
        .count();
    assert_eq!(ehlo.unknown_count(), unknown);
    assert_eq!(ehlo.unknown().count(), unknown);
    // Every capability line with text is walked, or counted as not UTF-8.
    let lines_with_text = reply
        .as_bytes()
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.get(4..).is_some_and(|t| t.iter().any(|b| !ws(b)))
        })
        .count();
    assert_eq!(
        ehlo.capabilities().count() + ehlo.invalid_lines(),
        lines_with_text,
        "capability lines lost"
    );
    for m in ehlo.auth_mechanisms() {
        assert!(
            ehlo.supports_auth(m),
            "AUTH lists {m:?} but supports_auth denies it"
        );
    }
    if let Some(Capability::Size(size)) = ehlo
        .capabilities()
        .filter(|c| matches!(c, Capability::Size(_)))
        .last()
    {
        assert_eq!(ehlo.size(), size);
    }

    // The canonical bytes read as the same EHLO reply. (An enhanced status
    // code is only read without leading zeros, RFC 3463 §2, so the reply
    // layer writes every code it read as it was sent.)
    let mut canonical = Vec::new();
    reply.write_to(&mut canonical);
    let again = Reply::parse(&canonical).expect("canonical bytes parse");
    let again = EhloReply::parse(&again).expect("canonical bytes read as an EHLO reply");
    assert_eq!(view(&again), v, "canonical bytes read differently");

    // Rebuilt with the builder, it reads the same.
    let Ok(greeting) = core::str::from_utf8(&v.greeting) else {
        return;
    };
    let Ok(mut builder) = EhloReplyBuilder::new(&v.domain, greeting) else {
        return;
    };
    for cap in ehlo.capabilities() {
        match builder.capability(&cap) {
            Ok(b) => builder = b,
            Err(_) => return,
        }
    }
    let built = builder.build().to_bytes();
    let again = Reply::parse(&built).expect("a built reply parses");
    let again = EhloReply::parse(&again).expect("a built reply reads as an EHLO reply");
    assert_eq!(
        view(&again),
        v,
        "rebuilt as {:?}, it reads differently",
        String::from_utf8_lossy(&built)
    );
}
