//! Word-at-a-time helpers of the command parser.
//!
//! A command line is short (tens of octets), so the parser gains most by
//! looking at eight octets per step where it can and by comparing keywords
//! as folded words instead of octet by octet. Everything here is plain
//! integer arithmetic on `u64` words loaded from slices.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The eight octets of `b` at `i` as a little-endian word, if there are
/// eight.
#[inline(always)]
fn word_at(b: &[u8], i: usize) -> Option<u64> {
    match b.get(i..i.checked_add(8)?) {
        Some(&[a, b, c, d, e, f, g, h]) => Some(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => None,
    }
}

/// High bit set in each octet of `x` below `n` (`n` <= 128). The lowest set
/// bit always marks a true octet: a borrow only carries past an octet that
/// was below `n` itself.
#[inline(always)]
const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * n as u64) & !x & HI
}

/// High bit set in each octet of `x` equal to `c` (lowest set bit exact).
#[inline(always)]
const fn equal(x: u64, c: u8) -> u64 {
    below(x ^ (LO * c as u64), 1)
}

/// True for the octets that end an ESMTP keyword or value: controls, space,
/// `=` and DEL.
#[inline(always)]
const fn is_token_stop(c: u8) -> bool {
    c <= b' ' || c == b'=' || c == 0x7f
}

/// The position of the first octet at or after `i` that is a control, a
/// space, `=` or DEL, or `b.len()` when there is none: where an ESMTP
/// keyword or value (RFC 5321 §4.1.2 `esmtp-keyword`, `esmtp-value`) ends.
#[inline]
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while let Some(x) = word_at(b, i) {
        let m = below(x, b' ' + 1) | equal(x, b'=') | equal(x, 0x7f);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !is_token_stop(b[i]) {
        i += 1;
    }
    i
}

/// The position of the first `+` or non-ASCII octet at or after `i`, or
/// `b.len()` when there is none.
#[inline]
pub(crate) fn plus_or_non_ascii(b: &[u8], mut i: usize) -> usize {
    while let Some(x) = word_at(b, i) {
        let m = equal(x, b'+') | (x & HI);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'+' && b[i] < 0x80 {
        i += 1;
    }
    i
}

/// A name of up to 16 octets folded to lower case, as two words (zero past
/// its end), so that it can be compared with constants in one step.
///
/// OR-ing 0x20 maps an octet onto a lower-case letter only if it is that
/// letter in either case, onto a digit only if it is that digit or a
/// control (0x10-0x19), and onto `-` only if it is `-` or CR. The names
/// compared are letters, digits and `-`, and the octets folded never hold
/// a control (see [`token_end`]), so equal words mean equal names, case
/// aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Folded(u64, u64);

impl Folded {
    /// What an empty or over-long name folds to; equal to no constant.
    pub(crate) const NONE: Folded = Folded(0, 0);

    /// A constant name.
    pub(crate) const fn new(name: &str) -> Folded {
        let k = name.as_bytes();
        if k.is_empty() || k.len() > 16 {
            return Folded::NONE;
        }
        let mut w = [0u64; 2];
        let mut i = 0;
        while i < k.len() {
            w[i / 8] |= ((k[i] | 0x20) as u64) << (8 * (i % 8));
            i += 1;
        }
        Folded(w[0], w[1])
    }

    /// The octets `b[start..start + len]`, folded; [`Folded::NONE`] when
    /// `len` is 0 or over 16 or the range is not in `b`.
    #[inline]
    pub(crate) fn at(b: &[u8], start: usize, len: usize) -> Folded {
        if len == 0 || len > 16 || start + len > b.len() {
            return Folded::NONE;
        }
        let lo = fold_part(b, start, len.min(8));
        let hi = if len > 8 {
            fold_part(b, start + 8, len - 8)
        } else {
            0
        };
        Folded(lo, hi)
    }
}

/// `n` (1 to 8) octets of `b` from `start`, folded, zero above them.
#[inline(always)]
fn fold_part(b: &[u8], start: usize, n: usize) -> u64 {
    let x = match word_at(b, start) {
        Some(x) => x,
        None => b
            .get(start..start + n)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0, |w, &c| (w << 8) | u64::from(c)),
    };
    // `n` is 1 to 8: a shift of 0 to 56.
    let mask = u64::MAX >> ((64 - 8 * n) & 63);
    (x | (LO * 0x20)) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_end_stops_at_controls_space_equals_and_del() {
        let stops = (0..=32u8).chain([b'=', 0x7f]);
        for c in stops {
            for len in 0..20 {
                for pos in 0..len {
                    let mut b = vec![b'x'; len];
                    b[pos] = c;
                    if pos + 2 < len {
                        b[len - 1] = b' ';
                    }
                    assert_eq!(token_end(&b, 0), pos, "{b:?}");
                    assert_eq!(token_end(&b, pos), pos);
                }
            }
        }
        for c in (33..=255u8).filter(|&c| c != b'=' && c != 0x7f) {
            let b = vec![c; 19];
            assert_eq!(token_end(&b, 0), 19);
            assert_eq!(token_end(&b, 5), 19);
        }
        assert_eq!(token_end(b"SIZE=1 BODY", 0), 4);
        assert_eq!(token_end(b"SIZE=1 BODY", 5), 6);
        assert_eq!(token_end(b"SIZE=1 BODY", 7), 11);
    }

    #[test]
    fn plus_or_non_ascii_finds_the_first_of_either() {
        let naive = |b: &[u8], i: usize| {
            b[i..]
                .iter()
                .position(|&c| c == b'+' || c >= 0x80)
                .map_or(b.len(), |p| i + p)
        };
        for len in 0..20 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'x'; len];
                    b[pos] = c;
                    if pos + 2 < len {
                        b[len - 1] = b'+';
                    }
                    for i in 0..=len {
                        assert_eq!(plus_or_non_ascii(&b, i), naive(&b, i), "{b:?} {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn xtext_of_an_esmtp_value_is_judged_as_any_xtext() {
        use crate::command::value::{check_xtext, check_xtext_value};
        // Every esmtp-value of up to 4 characters over an alphabet with the
        // escape, hex digits, other xchars and a non-ASCII character, also
        // behind a run of eight octets.
        let alphabet = ["+", "2", "B", "b", "F", "G", "x", "<", "é"];
        for len in 1..=4u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut v = String::new();
                for _ in 0..len {
                    v.push_str(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for lead in ["", "rfc822;a", "abcdefgh.ijklmnop"] {
                    let s = format!("{lead}{v}");
                    assert_eq!(
                        check_xtext_value(&s).is_ok(),
                        check_xtext(&s).is_ok(),
                        "{s:?}"
                    );
                }
            }
        }
        assert!(check_xtext_value("carol.recipient@sub.example.net").is_ok());
        assert!(check_xtext_value("a+2Bb+3D").is_ok());
        assert!(check_xtext_value("abcdefgh+2").is_err());
        assert!(check_xtext_value("abcdefgh+2g").is_err());
    }

    #[test]
    fn folded_names_compare_without_case() {
        let line = b"x mt-priority=3 SMTPUTF8 size REQUIRETLS z";
        assert_eq!(Folded::at(line, 2, 11), Folded::new("MT-PRIORITY"));
        assert_eq!(Folded::at(line, 16, 8), Folded::new("SMTPUTF8"));
        assert_eq!(Folded::at(line, 25, 4), Folded::new("SIZE"));
        // Near the end of the slice, where no whole word can be loaded.
        assert_eq!(Folded::at(line, 30, 10), Folded::new("requiretls"));
        assert_ne!(Folded::at(line, 25, 3), Folded::new("SIZE"));
        assert_ne!(Folded::at(line, 25, 5), Folded::new("SIZE"));
        assert_eq!(Folded::at(line, 0, 0), Folded::NONE);
        assert_eq!(Folded::at(line, 40, 5), Folded::NONE);
        let of = |s: &str| Folded::at(s.as_bytes(), 0, s.len());
        assert_eq!(of("abcdefghijklmnopq"), Folded::NONE);
        assert_eq!(of("AbCdEfGhIjKlMnOp"), Folded::new("abcdefghijklmnop"));
        assert_ne!(of("8BITMIMF"), Folded::new("8BITMIME"));
    }
}
