//! Cutting one input into the pieces a reader might receive.
//!
//! A stream machine must give the same result however its input is cut
//! (split invariance). [`cuts`] picks, from the input itself, a set of cuts
//! that always includes the whole input and one byte at a time, and
//! [`check_split_invariance`] runs a target once per cut and compares.

use core::fmt::Debug;

/// Inputs up to this length are also cut in two at every offset, in the
/// replay test. Fuzzing builds (`cfg(fuzzing)`, set by cargo-fuzz) skip
/// this and rely on the input-derived cuts, which change with every input,
/// to keep executions fast; the replay test runs a superset of the cuts a
/// fuzzing run tried, so every fuzzer finding reproduces there.
pub const EXHAUSTIVE_CUT_LEN: usize = if cfg!(fuzzing) { 0 } else { 64 };

/// One way to cut an input into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The input in one piece.
    Whole,
    /// One byte per piece.
    Bytewise,
    /// Two pieces, the first `n` bytes long.
    At(usize),
    /// Pieces of pseudo-random lengths drawn from the given seed.
    Scattered(u64),
}

/// A stable 64-bit hash of the input (FNV-1a), used to derive cuts and
/// settings from the input so that a corpus file always replays the same way.
#[must_use]
pub fn seed(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cuts to try for `data`: whole, byte by byte, a two-piece cut at an
/// offset derived from the input, a scattered cut, and for inputs up to
/// [`EXHAUSTIVE_CUT_LEN`] bytes every two-piece cut.
#[must_use]
pub fn cuts(data: &[u8]) -> Vec<Cut> {
    let s = seed(data);
    let mut out = vec![Cut::Whole, Cut::Bytewise];
    if data.len() > 1 {
        let at = 1 + s % (data.len() as u64 - 1);
        out.push(Cut::At(usize::try_from(at).unwrap_or(1)));
        if data.len() <= EXHAUSTIVE_CUT_LEN {
            out.extend((1..data.len()).map(Cut::At));
        }
    }
    out.push(Cut::Scattered(s));
    out
}

/// The pieces of `data` under `cut`; concatenated they give `data` back.
#[must_use]
pub fn pieces(data: &[u8], cut: Cut) -> Vec<&[u8]> {
    match cut {
        Cut::Whole => vec![data],
        Cut::Bytewise => data.chunks(1).collect(),
        Cut::At(n) => {
            let (a, b) = data.split_at(n.min(data.len()));
            vec![a, b]
        }
        Cut::Scattered(seed) => {
            let mut state = seed | 1;
            let mut rest = data;
            let mut out = Vec::new();
            while !rest.is_empty() {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly short pieces, now and then a long one.
                let len = if state % 8 == 0 {
                    1 + (state >> 8) % 600
                } else {
                    1 + (state >> 8) % 12
                };
                let len = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
                let (piece, tail) = rest.split_at(len);
                out.push(piece);
                rest = tail;
            }
            out
        }
    }
}

/// Runs `run` on `data` under every cut of [`cuts`] and asserts that each
/// gives the same result as the whole input, which it returns.
///
/// `run` must start from a fresh machine on every call.
///
/// ```
/// use smtp_proto_fuzz_harness::split::check_split_invariance;
///
/// let total = check_split_invariance(b"abc", |pieces| pieces.concat());
/// assert_eq!(total, b"abc");
/// ```
pub fn check_split_invariance<R: PartialEq + Debug>(
    data: &[u8],
    mut run: impl FnMut(&[&[u8]]) -> R,
) -> R {
    let whole = run(&[data]);
    for cut in cuts(data).into_iter().filter(|&c| c != Cut::Whole) {
        let got = run(&pieces(data, cut));
        assert_eq!(
            got, whole,
            "cutting the input as {cut:?} changed the result"
        );
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_reassembles_the_input() {
        let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        for input in [&data[..], &data[..7], &data[..1], &[][..]] {
            for cut in cuts(input) {
                assert_eq!(pieces(input, cut).concat(), input, "{cut:?}");
            }
        }
    }

    #[test]
    fn short_inputs_are_cut_at_every_offset() {
        let c = cuts(b"abcd");
        for n in 1..4 {
            assert!(c.contains(&Cut::At(n)), "missing cut at {n}");
        }
        assert!(c.contains(&Cut::Whole) && c.contains(&Cut::Bytewise));
    }

    #[test]
    fn scattered_cuts_make_several_pieces() {
        let data = vec![b'x'; 200];
        assert!(pieces(&data, Cut::Scattered(seed(&data))).len() > 3);
    }

    #[test]
    #[should_panic(expected = "changed the result")]
    fn a_cut_dependent_result_is_caught() {
        let _ = check_split_invariance(b"abcdef", |pieces| pieces.len());
    }
}
