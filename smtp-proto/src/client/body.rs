//! Line ends of a BDAT body that is not BINARYMIME.
//!
//! RFC 5321 §2.3.8: "SMTP client implementations MUST NOT transmit [CR
//! and LF] except when they are intended as line terminators and then
//! MUST transmit them only as a `<CRLF>` sequence." Over DATA the
//! [`DotStuffer`](crate::data::DotStuffer) sees to it; over BDAT the same
//! text body goes out in counted chunks, so it needs the same line ends
//! without the dot-stuffing (RFC 3030 §2: chunks are not dot-stuffed).
//! A `BODY=BINARYMIME` body is sent byte for byte and never comes here.

/// Makes bare CR and bare LF CRLF across any number of pieces, and ends
/// the last line with CRLF, exactly as the DATA path does: the bytes a
/// server stores are the same over DATA and over BDAT.
///
/// Each piece is encoded at once, so its encoded length is known when its
/// `BDAT` line is written. A CR at the end of a piece goes out as CRLF
/// right away (a bare CR becomes CRLF too); an LF that opens the next
/// piece then completes that CRLF and is dropped.
#[derive(Debug, Clone)]
pub(crate) struct LineEnds {
    /// The bytes written so far end a line (or none were written).
    at_line_start: bool,
    /// The last piece ended in CR, already written as CRLF: an LF at the
    /// start of the next piece belongs to it.
    after_cr: bool,
}

impl LineEnds {
    pub(crate) fn new() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Appends `input` to `out` with every line end made CRLF.
    pub(crate) fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        if self.after_cr {
            let Some(&first) = input.first() else { return };
            self.after_cr = false;
            if first == b'\n' {
                i = 1;
            }
        }
        out.reserve(input.len() - i + 8);
        // `input[run..i]` is clean and not yet copied.
        let mut run = i;
        while let Some(p) = memchr::memchr2(b'\r', b'\n', input.get(i..).unwrap_or_default()) {
            let j = i + p;
            match (input[j], input.get(j + 1)) {
                // A CRLF already: copied with the run.
                (b'\r', Some(b'\n')) => i = j + 2,
                (b'\r', None) => {
                    out.extend_from_slice(&input[run..j]);
                    out.extend_from_slice(b"\r\n");
                    self.after_cr = true;
                    i = j + 1;
                    run = i;
                }
                // A bare CR, or a bare LF.
                _ => {
                    out.extend_from_slice(&input[run..j]);
                    out.extend_from_slice(b"\r\n");
                    i = j + 1;
                    run = i;
                }
            }
            self.at_line_start = true;
        }
        if i < input.len() {
            self.at_line_start = false;
        }
        out.extend_from_slice(&input[run..]);
    }

    /// Ends the body: a CRLF when the last line lacks one.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LineEnds;

    /// The reference: the DATA path's line ends (the body fuzz target's
    /// rule), without the dot-stuffing and the terminator, by whole-body
    /// replacements: every CRLF, then every CR left, becomes LF; every LF
    /// becomes CRLF; a last line without one gets it.
    fn reference(body: &[u8]) -> Vec<u8> {
        fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut rest = hay;
            while let Some(p) = rest.windows(from.len()).position(|w| w == from) {
                out.extend_from_slice(&rest[..p]);
                out.extend_from_slice(to);
                rest = &rest[p + from.len()..];
            }
            out.extend_from_slice(rest);
            out
        }
        let lf = replace(&replace(body, b"\r\n", b"\n"), b"\r", b"\n");
        let mut out = replace(&lf, b"\n", b"\r\n");
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn encode_in(pieces: &[&[u8]]) -> Vec<u8> {
        let mut enc = LineEnds::new();
        let mut out = Vec::new();
        for p in pieces {
            enc.encode(p, &mut out);
        }
        enc.finish(&mut out);
        out
    }

    #[test]
    fn known_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a", b"a\r\n"),
            (b"a\r\n", b"a\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"\r\r\n\n", b"\r\n\r\n\r\n"),
            (b"\n\r", b"\r\n\r\n"),
            // No dot-stuffing: a dot line stays as it is.
            (b".\r\n..\n", b".\r\n..\r\n"),
            (b"\x00\xff\r\x80", b"\x00\xff\r\n\x80\r\n"),
        ];
        for (body, want) in cases {
            assert_eq!(encode_in(&[body]), *want, "{body:?}");
            assert_eq!(reference(body), *want, "reference of {body:?}");
        }
    }

    /// A CR at the end of a piece is written at once, and an LF opening
    /// the next piece completes it.
    #[test]
    fn cr_at_the_end_of_a_piece_joins_the_lf_of_the_next() {
        let mut enc = LineEnds::new();
        let mut out = Vec::new();
        enc.encode(b"a\r", &mut out);
        assert_eq!(out, b"a\r\n");
        enc.encode(b"", &mut out);
        assert_eq!(out, b"a\r\n");
        enc.encode(b"\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
        enc.encode(b"\r", &mut out);
        enc.encode(b"c", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc");
        enc.finish(&mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }

    /// Every cut of every short body over an alphabet of the bytes that
    /// matter gives the reference's bytes.
    #[test]
    fn every_cut_gives_the_reference() {
        let alphabet: &[u8] = b"\r\n.a";
        for len in 0..=6usize {
            for code in 0..alphabet.len().pow(len as u32) {
                let mut c = code;
                let body: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[c % alphabet.len()];
                        c /= alphabet.len();
                        b
                    })
                    .collect();
                let want = reference(&body);
                for a in 0..=len {
                    for b in a..=len {
                        let got = encode_in(&[&body[..a], &body[a..b], &body[b..]]);
                        assert_eq!(got, want, "{body:?} cut at {a}, {b}");
                    }
                }
            }
        }
    }
}
