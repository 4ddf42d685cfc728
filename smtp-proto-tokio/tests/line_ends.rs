//! The client example's line-end canonicalisation: what BDAT carries must
//! equal what DATA's encoder would have put on the wire (before stuffing).

#[path = "../examples/support/line_ends.rs"]
mod line_ends;

use line_ends::crlf_line_ends;
use smtp_proto_tokio::smtp_proto::data::DotStuffer;

#[test]
fn bare_lf_and_bare_cr_become_crlf() {
    assert_eq!(crlf_line_ends(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd");
    assert_eq!(crlf_line_ends(b"\n\n"), b"\r\n\r\n");
    assert_eq!(crlf_line_ends(b"\r\r\n"), b"\r\n\r\n");
    assert_eq!(crlf_line_ends(b"end\r"), b"end\r\n");
    assert_eq!(crlf_line_ends(b""), b"");
}

#[test]
fn canonical_input_is_unchanged() {
    let msg = b"Subject: x\r\n\r\n.dot\r\n\xc3\xa9\0binary-free\r\n";
    assert_eq!(crlf_line_ends(msg), msg);
}

/// The bytes BDAT now carries, dot-stuffed, are exactly what DATA sends for
/// the raw input: both paths deliver the same message.
#[test]
fn agrees_with_the_data_encoder() {
    let inputs: [&[u8]; 6] = [
        b"a\nb\rc\r\nd\n",
        b"line\n.\nafter\r\n",
        b"\r\n.\r\r\n",
        b"x\r",
        b"\n\r\n\r",
        b"Subject: s\r\n\r\nbody\nmore\r\n",
    ];
    for input in inputs {
        let mut via_data = Vec::new();
        let mut enc = DotStuffer::new();
        enc.encode(input, &mut via_data);
        enc.finish(&mut via_data);
        let mut via_bdat = Vec::new();
        let mut enc = DotStuffer::new();
        enc.encode(&crlf_line_ends(input), &mut via_bdat);
        enc.finish(&mut via_bdat);
        assert_eq!(via_bdat, via_data, "input {input:?}");
    }
}
