//! Drawing grammar-shaped strings from fuzz input, for the targets that
//! build values (`command_build`, `reply_build`).
//!
//! Valid values are built here, inside the harness, from the input bytes
//! with [`arbitrary::Unstructured`]: each generator follows an ABNF rule,
//! now and then stepping outside it, and the result is then handed to the
//! core's validating constructor. The round-trip property is checked for
//! every value a constructor accepts, so a constructor that lets through a
//! value the parser reads differently is a finding too.

use arbitrary::{Result, Unstructured};

/// A string of `min..=max` characters drawn from `alphabet`.
pub fn from_alphabet(
    u: &mut Unstructured<'_>,
    alphabet: &[char],
    min: usize,
    max: usize,
) -> Result<String> {
    let len = u.int_in_range(min..=max)?;
    (0..len).map(|_| u.choose(alphabet).copied()).collect()
}

/// Letters, digits and `-`.
pub const LDH: &[char] = &[
    'a', 'b', 'x', 'Z', '0', '9', '-', 'm', 'e', 'l', 'o', 'c', 'A',
];

/// `atext` plus a few non-ASCII letters (RFC 6531).
pub const ATEXT: &[char] = &[
    'a', 'B', '0', '!', '#', '$', '%', '&', '\'', '*', '+', '-', '/', '=', '?', '^', '_', '`', '{',
    '|', '}', '~', 'é', '用',
];

/// `qtextSMTP` and characters that need a quoted pair.
pub const QTEXT: &[char] = &['a', ' ', '!', '#', '@', '[', ']', '<', '>', '.', 'ü', ','];

/// Letters, digits, `-` and `_`: keywords, verbs, mechanism names.
pub const KEYWORD: &[char] = &['A', 'b', 'X', 'z', '0', '7', '-', '_', 'S', 'E'];

/// Printable text with inner spaces and some non-ASCII.
pub const TEXT: &[char] = &[
    'a', 'Z', '0', ' ', '\t', '<', '>', '@', '.', ':', '=', '"', '\\', 'ß', '\u{1}', '\u{7f}',
];

/// `Domain` (RFC 5321 §4.1.2) or an address literal (§4.1.3), sometimes
/// just any string.
pub fn domain(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => {
            let [a, b, c, d]: [u8; 4] = u.arbitrary()?;
            format!("[{a}.{b}.{c}.{d}]")
        }
        1 => {
            let ip = std::net::Ipv6Addr::from(u.arbitrary::<u128>()?);
            let tag = if u.arbitrary()? { "IPv6" } else { "ipv6" };
            format!("[{tag}:{ip}]")
        }
        2 => {
            let tag = from_alphabet(u, LDH, 1, 6)?;
            let content = from_alphabet(u, &['a', '1', ':', '!', 'Z', '~', '^'], 1, 8)?;
            format!("[{tag}:{content}]")
        }
        3 => u.arbitrary()?,
        _ => {
            let labels = u.int_in_range(1..=4)?;
            let mut s = String::new();
            for i in 0..labels {
                if i > 0 {
                    s.push('.');
                }
                s.push_str(&from_alphabet(u, LDH, 1, 10)?);
                if u.ratio(1, 16)? {
                    s.push('é');
                }
            }
            s
        }
    })
}

/// `Local-part = Dot-string / Quoted-string` (RFC 5321 §4.1.2).
pub fn local_part(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => {
            let mut s = String::from('"');
            for _ in 0..u.int_in_range(0..=10)? {
                let c = *u.choose(QTEXT)?;
                if u.ratio(1, 6)? || c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
            s
        }
        1 => u.arbitrary()?,
        _ => {
            let atoms = u.int_in_range(1..=3)?;
            let mut s = String::new();
            for i in 0..atoms {
                if i > 0 {
                    s.push('.');
                }
                s.push_str(&from_alphabet(u, ATEXT, 1, 8)?);
            }
            s
        }
    })
}

/// Free text, mostly without leading or trailing spaces (inner ones kept);
/// now and then with them, which `Text::new` must refuse.
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let s = if u.ratio(1, 8)? {
        u.arbitrary::<String>()?
    } else {
        from_alphabet(u, TEXT, 1, 16)?
    };
    if u.ratio(1, 16)? {
        return Ok(s);
    }
    Ok(s.trim_matches(' ').to_owned())
}

/// A keyword: a letter or digit, then letters, digits, `-` or `_`.
pub fn keyword(u: &mut Unstructured<'_>) -> Result<String> {
    let mut s = from_alphabet(u, &['A', 'x', '3', 'Q'], 1, 1)?;
    s.push_str(&from_alphabet(u, KEYWORD, 0, 12)?);
    Ok(s)
}

/// An RFC 3339 `date-time`, in any of its shapes.
pub fn date_time(u: &mut Unstructured<'_>) -> Result<String> {
    let (y, mo, d): (u16, u8, u8) = (
        u.int_in_range(0..=9999)?,
        u.int_in_range(0..=99)?,
        u.int_in_range(0..=99)?,
    );
    let (h, mi, s): (u8, u8, u8) = (
        u.int_in_range(0..=99)?,
        u.int_in_range(0..=99)?,
        u.int_in_range(0..=99)?,
    );
    let t = if u.arbitrary()? { 'T' } else { 't' };
    let mut out = format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}");
    if u.arbitrary()? {
        out.push('.');
        out.push_str(&u.int_in_range(0..=999_999u32)?.to_string());
    }
    match u.int_in_range(0..=2u8)? {
        0 => out.push('Z'),
        1 => out.push('z'),
        _ => {
            let sign = if u.arbitrary()? { '+' } else { '-' };
            let (oh, om): (u8, u8) = (u.int_in_range(0..=99)?, u.int_in_range(0..=99)?);
            out.push_str(&format!("{sign}{oh:02}:{om:02}"));
        }
    }
    Ok(out)
}

/// A [`date_time`], or now and then one with a character replaced (which
/// may or may not break its shape): for checking that what a date-time
/// constructor accepts, the parser reads back.
pub fn date_time_or_near(u: &mut Unstructured<'_>) -> Result<String> {
    let mut s = date_time(u)?;
    if u.ratio(1, 4)? {
        let at = u.choose_index(s.len())?;
        let with = *u.choose(b"09TtZz:+-. x")?;
        s.replace_range(at..=at, std::str::from_utf8(&[with]).unwrap_or("x"));
    }
    Ok(s)
}

/// A count that often sits at the edge of nine digits (999,999,999), the
/// limit of `HOLDFOR=` and `BY=`; otherwise small or anywhere in `u32`.
pub fn nine_digit_edge(u: &mut Unstructured<'_>) -> Result<u32> {
    match u.int_in_range(0..=2u8)? {
        0 => u.int_in_range(999_999_990..=1_000_000_010),
        1 => u.int_in_range(0..=100_000),
        _ => u.arbitrary(),
    }
}

/// [`nine_digit_edge`] with either sign, or anywhere in `i64`.
pub fn signed_nine_digit_edge(u: &mut Unstructured<'_>) -> Result<i64> {
    if u.ratio(1, 8)? {
        return u.arbitrary();
    }
    let n = i64::from(nine_digit_edge(u)?);
    Ok(if u.arbitrary()? { -n } else { n })
}

/// Some bytes, mostly short.
pub fn bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let len = u.int_in_range(0..=max)?;
    (0..len).map(|_| u.arbitrary::<u8>()).collect()
}
