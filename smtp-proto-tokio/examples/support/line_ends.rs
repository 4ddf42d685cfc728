//! Line-end canonicalisation for the example client.
//!
//! DATA's encoder turns every bare CR and bare LF into CRLF; BDAT sends the
//! bytes as they are, and a message that is not `BODY=BINARYMIME` must
//! already be in canonical CRLF form (RFC 3030 §3). The client example
//! applies this to the message before choosing either, so the same input
//! arrives the same over DATA and over BDAT.

/// Every bare CR, bare LF and CRLF of `input` as CRLF; nothing else changes.
pub fn crlf_line_ends(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 64);
    let mut bytes = input.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' => {
                bytes.next_if_eq(&b'\n');
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    out
}
