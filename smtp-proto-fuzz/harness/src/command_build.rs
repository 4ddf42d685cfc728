//! Target `command_build`: commands built from structure encode and decode
//! to themselves.
//!
//! The input drives [`arbitrary::Unstructured`]: it picks a command and
//! its arguments, drawn by the grammar-shaped generators of [`crate::gen`]
//! (domains, address literals, local parts, xtext, base64, keywords,
//! date-times, numbers over their whole range) and passed through the
//! core's validating constructors (`Domain::new`, `LocalPart::new`,
//! `Mailbox::new`, `Text::new`, `Atom::new`, `Mechanism::parse`,
//! `Base64::new`/`encode`, `XText::encode`, `Parameter::new`). For every
//! command that can be built, the target asserts the properties of
//! [`crate::command::check_round_trip`]: one canonical line, CRLF at the
//! end and no other CR, LF or NUL, that parses back to the same command
//! and encodes to the same bytes again. It also asserts that xtext and
//! base64 encode and decode back to the same bytes.
//!
//! Which values count as valid: the constructors decide, except for what
//! the command types hold as plain fields or loosely typed text, where the
//! generator keeps to the rule of the command (documented in FUZZING.md):
//! ETRN's node name, the verb of an unknown command (not a known verb),
//! argument text without leading or trailing spaces, the ranges of
//! `MT-PRIORITY`, `HOLDFOR`, `BY` and the lengths of `ENVID` and `ORCPT`,
//! an `AUTH=` identity other than `<>`, date-times for `HOLDUNTIL` and
//! `RRVS`, and keywords of unknown parameters that are not the keywords
//! the parameter parser interprets.

use arbitrary::{Result, Unstructured};
use smtp_proto::command::{
    Atom, AuthParam, Base64, BodyType, ByMode, Command, DateTime, DeliverBy, Domain, EnvId,
    ForwardPath, Hold, HoldFor, LocalPart, MailFrom, MailParameters, Mailbox, Mechanism,
    MtPriority, NodeName, Notify, Orcpt, Parameter, RcptParameters, RcptTo, Ret, ReversePath, Rrvs,
    RrvsMode, Text, Unitext, XText,
};

use crate::gen;

/// Verbs the parser knows: an unknown command never uses one.
pub const KNOWN_VERBS: &[&str] = &[
    "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
    "HELP", "AUTH", "ETRN", "STARTTLS",
];

/// MAIL parameters the parser interprets.
pub const MAIL_KEYWORDS: &[&str] = &[
    "SIZE",
    "BODY",
    "SMTPUTF8",
    "REQUIRETLS",
    "RET",
    "ENVID",
    "AUTH",
    "MT-PRIORITY",
    "HOLDFOR",
    "HOLDUNTIL",
    "BY",
];

/// RCPT parameters the parser interprets.
pub const RCPT_KEYWORDS: &[&str] = &["NOTIFY", "ORCPT", "RRVS"];

/// The fuzz target.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    // Several commands per input, while the input lasts.
    for _ in 0..8 {
        if u.is_empty() {
            break;
        }
        match build(&mut u) {
            Ok(Some(cmd)) => crate::command::check_round_trip(&cmd),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    let mut u = Unstructured::new(data);
    if let Ok(raw) = gen::bytes(&mut u, 64) {
        let x = XText::encode(&raw);
        assert_eq!(&*x.decode(), &raw[..], "xtext of {raw:?}");
        assert!(XText::new(x.as_str()).is_ok(), "XText::new refuses {x:?}");
        let b = Base64::encode(&raw);
        assert_eq!(b.decode().as_deref(), Ok(&raw[..]), "base64 of {raw:?}");
        assert!(Base64::new(b.as_str()).is_ok(), "Base64::new refuses {b:?}");
    }
}

fn mailbox(u: &mut Unstructured<'_>) -> Result<Option<Mailbox<'static>>> {
    let (Ok(lp), Ok(dom)) = (
        LocalPart::new(gen::local_part(u)?),
        Domain::new(gen::domain(u)?),
    ) else {
        return Ok(None);
    };
    Ok(Mailbox::new(lp, dom).ok())
}

fn text(u: &mut Unstructured<'_>) -> Result<Option<Text<'static>>> {
    Ok(Text::new(gen::text(u)?).ok())
}

/// Unknown parameters: no two alike (ignoring case), values
/// `esmtp-value`. Now and then the keyword is one the parsers interpret,
/// in any case, which `Parameter::new` must refuse.
fn others(u: &mut Unstructured<'_>) -> Result<Vec<Parameter<'static>>> {
    let mut out: Vec<Parameter<'static>> = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        if u.ratio(1, 8)? {
            let k = *u.choose(MAIL_KEYWORDS)?;
            let k = if u.arbitrary()? {
                k.to_ascii_lowercase()
            } else {
                k.to_owned()
            };
            let known = Parameter::new(&k, Some("1"));
            assert!(known.is_err(), "Parameter::new accepts {k}: {known:?}");
            let k = u.choose(RCPT_KEYWORDS)?;
            assert!(
                Parameter::new(k, None).is_err(),
                "Parameter::new accepts {k}"
            );
            continue;
        }
        let k = gen::keyword(u)?;
        if out.iter().any(|p| p.keyword().eq_ignore_ascii_case(&k)) {
            continue;
        }
        let v = if u.arbitrary()? {
            Some(gen::from_alphabet(
                u,
                &['a', '!', '<', '>', '~', '+', ';', 'é', '=', ' '],
                1,
                8,
            )?)
        } else {
            None
        };
        if let Ok(p) = Parameter::new(&k, v.as_deref()) {
            out.push(p.into_owned());
        }
    }
    Ok(out)
}

fn mail_params(u: &mut Unstructured<'_>) -> Result<MailParameters<'static>> {
    let mut p = MailParameters::default();
    if u.arbitrary()? {
        p.size = Some(u.arbitrary()?);
    }
    p.body = match u.int_in_range(0..=3u8)? {
        0 => Some(BodyType::SevenBit),
        1 => Some(BodyType::EightBitMime),
        2 => Some(BodyType::BinaryMime),
        _ => None,
    };
    p.smtputf8 = u.arbitrary()?;
    p.ret = match u.int_in_range(0..=2u8)? {
        0 => Some(Ret::Full),
        1 => Some(Ret::Hdrs),
        _ => None,
    };
    if u.arbitrary()? {
        let raw = gen::bytes(u, 40)?;
        p.envid = EnvId::new(XText::encode(&raw)).ok();
    }
    p.auth = match u.int_in_range(0..=2u8)? {
        0 => Some(AuthParam::Null),
        1 => {
            // Not `<>` or empty: both are written as the null identity
            // (RFC 4954 §5), so they read back as `AuthParam::Null`.
            let mut raw = gen::bytes(u, 24)?;
            if raw.is_empty() || raw == b"<>" {
                raw.push(b'a');
            }
            Some(AuthParam::Identity(XText::encode(&raw)))
        }
        _ => None,
    };
    p.requiretls = u.arbitrary()?;
    if u.arbitrary()? {
        p.mt_priority = MtPriority::new(u.arbitrary()?).ok();
    }
    p.hold = match u.int_in_range(0..=2u8)? {
        0 => HoldFor::new(gen::nine_digit_edge(u)?).ok().map(Hold::For),
        1 => DateTime::new(gen::date_time_or_near(u)?)
            .ok()
            .map(Hold::Until),
        _ => None,
    };
    if u.arbitrary()? {
        let mode = if u.arbitrary()? {
            ByMode::Notify
        } else {
            ByMode::Return
        };
        p.by = DeliverBy::new(gen::signed_nine_digit_edge(u)?, mode, u.arbitrary()?).ok();
    }
    p.other = others(u)?;
    Ok(p)
}

fn rcpt_params(u: &mut Unstructured<'_>) -> Result<RcptParameters<'static>> {
    let mut p = RcptParameters::default();
    if u.arbitrary()? {
        p.notify = Some(Notify {
            success: u.arbitrary()?,
            failure: u.arbitrary()?,
            delay: u.arbitrary()?,
        });
    }
    if u.arbitrary()? {
        let addr_type = Atom::new(gen::keyword(u)?);
        let mut raw = gen::bytes(u, 60)?;
        if raw.is_empty() {
            raw.push(b'x');
        }
        let addr = XText::encode(&raw);
        if let Ok(addr_type) = addr_type {
            p.orcpt = Orcpt::new(addr_type, addr).ok();
        }
        // Now and then an RFC 6533 UTF-8 address as it is, when the text
        // is one (`Unitext::new` refuses the others).
        if u.ratio(1, 4)? {
            if let Ok(addr) = Unitext::new(gen::text(u)?) {
                p.orcpt = Orcpt::utf8(addr).ok();
            }
        }
    }
    if u.arbitrary()? {
        if let Ok(time) = DateTime::new(gen::date_time_or_near(u)?) {
            let mode = match u.int_in_range(0..=2u8)? {
                0 => Some(RrvsMode::Continue),
                1 => Some(RrvsMode::Reject),
                _ => None,
            };
            p.rrvs = Some(Rrvs { time, mode });
        }
    }
    p.other = others(u)?;
    Ok(p)
}

/// Builds one command, or `None` when a constructor refused a part.
pub fn build(u: &mut Unstructured<'_>) -> Result<Option<Command<'static>>> {
    Ok(Some(match u.int_in_range(0..=16u8)? {
        0..=2 => {
            // EHLO, HELO and LHLO take ASCII domains only (RFC 6531
            // §3.7.1); the parser refuses U-labels there.
            let Ok(d) = Domain::new(gen::domain(u)?) else {
                return Ok(None);
            };
            if d.is_utf8() {
                return Ok(None);
            }
            match u.int_in_range(0..=2u8)? {
                0 => Command::Ehlo(d),
                1 => Command::Helo(d),
                _ => Command::Lhlo(d),
            }
        }
        3 => {
            let reverse_path = if u.ratio(1, 4)? {
                ReversePath::Null
            } else {
                let Some(mb) = mailbox(u)? else {
                    return Ok(None);
                };
                ReversePath::Mailbox(mb)
            };
            Command::Mail(MailFrom {
                reverse_path,
                params: mail_params(u)?,
            })
        }
        4 => {
            let forward_path = if u.ratio(1, 6)? {
                ForwardPath::Postmaster
            } else {
                let Some(mb) = mailbox(u)? else {
                    return Ok(None);
                };
                ForwardPath::Mailbox(mb)
            };
            Command::Rcpt(RcptTo {
                forward_path,
                params: rcpt_params(u)?,
            })
        }
        5 => Command::Data,
        6 => Command::Bdat {
            size: if u.arbitrary()? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=100_000)?
            },
            last: u.arbitrary()?,
        },
        7 => u
            .choose(&[Command::Rset, Command::Quit, Command::StartTls])?
            .clone(),
        8 => Command::Noop(if u.arbitrary()? { text(u)? } else { None }),
        9 => Command::Help(if u.arbitrary()? { text(u)? } else { None }),
        10 | 11 => {
            let Some(t) = text(u)? else { return Ok(None) };
            if u.arbitrary()? {
                Command::Vrfy(t)
            } else {
                Command::Expn(t)
            }
        }
        12 | 13 => {
            let name = if u.arbitrary()? {
                u.choose(&[
                    "PLAIN",
                    "login",
                    "XOAUTH2",
                    "OAUTHBEARER",
                    "CRAM-MD5",
                    "EXTERNAL",
                    "SCRAM-SHA-1",
                    "scram-sha-256",
                ])?
                .to_string()
            } else {
                gen::keyword(u)?
            };
            let Ok(mechanism) = Mechanism::parse(&name) else {
                return Ok(None);
            };
            let initial_response = match u.int_in_range(0..=3u8)? {
                0 => None,
                1 => Some(Base64::empty()),
                2 => Some(Base64::encode(&gen::bytes(u, 48)?)),
                _ => {
                    let s = gen::from_alphabet(u, &['A', 'z', '0', '+', '/', '='], 1, 12)?;
                    let Ok(b) = Base64::new(s) else {
                        return Ok(None);
                    };
                    Some(b)
                }
            };
            Command::Auth {
                mechanism: mechanism.into_owned(),
                initial_response,
            }
        }
        14 => {
            // node-name = domain / "@" domain / "#" queue-name (RFC 1985 §3)
            let node = match u.int_in_range(0..=2u8)? {
                0 => {
                    let d = gen::domain(u)?;
                    if Domain::new(d.as_str()).is_err() {
                        return Ok(None);
                    }
                    format!("@{d}")
                }
                1 => format!(
                    "#{}",
                    gen::from_alphabet(u, &['q', '1', '!', '~', '.'], 1, 8)?
                ),
                _ => {
                    let d = gen::domain(u)?;
                    if Domain::new(d.as_str()).is_err() {
                        return Ok(None);
                    }
                    d
                }
            };
            let Ok(t) = NodeName::new(node) else {
                return Ok(None);
            };
            Command::Etrn(t)
        }
        _ => {
            let verb = gen::keyword(u)?;
            if KNOWN_VERBS.iter().any(|v| v.eq_ignore_ascii_case(&verb)) {
                return Ok(None);
            }
            let Ok(verb) = Atom::new(verb) else {
                return Ok(None);
            };
            let args = if u.arbitrary()? { text(u)? } else { None };
            Command::Unknown { verb, args }
        }
    }))
}
