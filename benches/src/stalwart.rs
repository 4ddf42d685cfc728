//! The same work done with the published `smtp-proto` 0.2.5 crate (Stalwart
//! Labs), the parser these benchmarks compare against.
//!
//! Each function does what the matching `smtp-proto` benchmark does: parse
//! every command of the stream, parse every EHLO reply fully (capabilities,
//! AUTH mechanisms, SIZE), un-stuff the whole DATA body, take every BDAT chunk.
//! Results go through [`black_box`] so that none of the work can be dropped.

use std::hint::black_box;
use std::ops::ControlFlow;

use stalwart_smtp_proto::request::receiver::{BdatReceiver, DataReceiver, RequestReceiver};
use stalwart_smtp_proto::{EhloResponse, Error, Request};

/// Parses every command line of `stream` with `Request::parse`.
/// Returns the number of commands, or the first error.
pub fn parse_commands(stream: &[u8]) -> Result<usize, Error> {
    let mut bytes = stream.iter();
    let mut count = 0;
    while bytes.len() > 0 {
        black_box(Request::parse(&mut bytes)?);
        count += 1;
    }
    Ok(count)
}

/// Parses every EHLO reply of `stream` with `EhloResponse::parse`.
/// Returns the number of replies, or the first error.
pub fn parse_ehlo_replies(stream: &[u8]) -> Result<usize, Error> {
    let mut bytes = stream.iter();
    let mut count = 0;
    while bytes.len() > 0 {
        black_box(EhloResponse::parse(&mut bytes)?);
        count += 1;
    }
    Ok(count)
}

/// Parses one EHLO reply.
pub fn parse_ehlo(reply: &[u8]) -> Result<EhloResponse<String>, Error> {
    EhloResponse::parse(&mut reply.iter())
}

/// Writes `reply` `times` times into `out` (cleared first) with
/// `EhloResponse::write`. Returns the number of bytes written.
pub fn encode_ehlo(reply: &EhloResponse<String>, times: usize, out: &mut Vec<u8>) -> usize {
    out.clear();
    for _ in 0..times {
        // Writing into a Vec cannot fail.
        let _ = black_box(reply).write(&mut *out);
    }
    out.len()
}

/// Un-stuffs a DATA stream (body, then CRLF.CRLF) with `DataReceiver`, fed in
/// pieces of `read_len` bytes; the body is copied into `out` (cleared first).
/// Returns the number of wire bytes consumed up to the end marker, or `None`
/// when the stream does not contain one.
pub fn unstuff(wire: &[u8], read_len: usize, out: &mut Vec<u8>) -> Option<usize> {
    out.clear();
    let mut receiver = DataReceiver::new();
    let mut offset = 0;
    for piece in wire.chunks(read_len) {
        let mut bytes = piece.iter();
        if receiver.ingest(&mut bytes, out) {
            return Some(offset + piece.len() - bytes.len());
        }
        offset += piece.len();
    }
    None
}

/// Why [`bdat_decode`] stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdatError {
    /// The request parser failed.
    Parse(Error),
    /// A command other than BDAT arrived.
    NotBdat(&'static str),
    /// The stream ended before the LAST chunk was complete.
    Truncated,
}

/// Takes a stream of BDAT commands and chunks apart with `RequestReceiver`
/// and `BdatReceiver`, fed in pieces of `read_len` bytes; chunk payloads are
/// copied into `out` (cleared first). Returns the number of chunks.
pub fn bdat_decode(wire: &[u8], read_len: usize, out: &mut Vec<u8>) -> Result<usize, BdatError> {
    out.clear();
    let mut requests = RequestReceiver::default();
    let mut chunk: Option<BdatReceiver> = None;
    let mut chunks = 0;
    for piece in wire.chunks(read_len) {
        let mut bytes = piece.iter();
        let step = bdat_step(&mut requests, &mut chunk, &mut chunks, &mut bytes, out)?;
        if step.is_break() {
            return Ok(chunks);
        }
    }
    Err(BdatError::Truncated)
}

/// Consumes one read's worth of BDAT stream; `Break` once the LAST chunk is in.
fn bdat_step(
    requests: &mut RequestReceiver,
    chunk: &mut Option<BdatReceiver>,
    chunks: &mut usize,
    bytes: &mut std::slice::Iter<'_, u8>,
    out: &mut Vec<u8>,
) -> Result<ControlFlow<()>, BdatError> {
    loop {
        if let Some(receiver) = chunk {
            if !receiver.ingest(bytes, out) {
                return Ok(ControlFlow::Continue(()));
            }
            *chunks += 1;
            let last = receiver.is_last;
            *chunk = None;
            if last {
                return Ok(ControlFlow::Break(()));
            }
        }
        if bytes.len() == 0 {
            return Ok(ControlFlow::Continue(()));
        }
        match requests.ingest(bytes) {
            Ok(Request::Bdat {
                chunk_size,
                is_last,
            }) => *chunk = Some(BdatReceiver::new(chunk_size, is_last)),
            Ok(other) => return Err(BdatError::NotBdat(other.name())),
            Err(Error::NeedsMoreData { .. }) => {}
            Err(e) => return Err(BdatError::Parse(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{bdat_chunks, dot_stuff, generate_body, Inputs, READ_LEN};
    use stalwart_smtp_proto::{AUTH_PLAIN, AUTH_XOAUTH2, EXT_CHUNKING, EXT_SIZE};

    #[test]
    fn every_sample_command_parses() {
        let inputs = Inputs::new();
        let mut bytes = inputs.commands.iter();
        let mut names = Vec::new();
        while bytes.len() > 0 {
            names.push(Request::parse(&mut bytes).expect("sample command").name());
        }
        assert_eq!(names.len(), 20);
        assert_eq!(&names[..3], ["EHLO", "MAIL", "RCPT"]);
        assert_eq!(names[19], "QUIT");
        assert_eq!(
            parse_commands(&inputs.command_stream),
            Ok(inputs.command_count)
        );
    }

    #[test]
    fn ehlo_reply_parses_fully() {
        let inputs = Inputs::new();
        let reply = parse_ehlo(&inputs.ehlo_reply).expect("sample reply");
        assert_eq!(reply.hostname, "mail.example.com");
        assert_eq!(reply.size, 52_428_800);
        assert!(reply.has_capability(EXT_CHUNKING | EXT_SIZE));
        assert_eq!(reply.auth_mechanisms & AUTH_PLAIN, AUTH_PLAIN);
        assert_eq!(reply.auth_mechanisms & AUTH_XOAUTH2, AUTH_XOAUTH2);
        assert_eq!(
            parse_ehlo_replies(&inputs.ehlo_stream),
            Ok(inputs.ehlo_count)
        );
    }

    #[test]
    fn encode_ehlo_writes_every_reply() {
        let inputs = Inputs::new();
        let reply = parse_ehlo(&inputs.ehlo_reply).expect("sample reply");
        let mut one = Vec::new();
        let len = encode_ehlo(&reply, 1, &mut one);
        assert!(one.starts_with(b"250-mail.example.com"));
        assert!(one.ends_with(b"\r\n"));
        let mut three = Vec::new();
        assert_eq!(encode_ehlo(&reply, 3, &mut three), 3 * len);
        assert_eq!(parse_ehlo_replies(&three), Ok(3));
    }

    #[test]
    fn unstuff_recovers_the_generated_body() {
        let inputs = Inputs::new();
        let mut out = Vec::new();
        assert_eq!(
            unstuff(&inputs.data_wire, READ_LEN, &mut out),
            Some(inputs.data_wire.len())
        );
        assert!(out == inputs.body.plain, "un-stuffed body differs");
    }

    #[test]
    fn unstuff_is_split_invariant_on_a_small_body() {
        let body = generate_body(2000, 3);
        let wire = dot_stuff(&body.plain);
        for read_len in 1..=9 {
            let mut out = Vec::new();
            assert_eq!(unstuff(&wire, read_len, &mut out), Some(wire.len()));
            assert_eq!(out, body.plain, "read length {read_len}");
        }
    }

    #[test]
    fn bdat_decode_recovers_the_generated_body() {
        let inputs = Inputs::new();
        let mut out = Vec::new();
        assert_eq!(
            bdat_decode(&inputs.bdat_wire, READ_LEN, &mut out),
            Ok(inputs.bdat_count)
        );
        assert!(out == inputs.body.plain, "BDAT payload differs");
    }

    #[test]
    fn bdat_decode_is_split_invariant_and_detects_truncation() {
        let body = generate_body(3000, 5);
        let (wire, n) = bdat_chunks(&body.plain, 700);
        for read_len in [1, 2, 5, 13, 699, 700, 701, 4096] {
            let mut out = Vec::new();
            assert_eq!(bdat_decode(&wire, read_len, &mut out), Ok(n));
            assert_eq!(out, body.plain, "read length {read_len}");
        }
        let mut out = Vec::new();
        assert_eq!(
            bdat_decode(&wire[..wire.len() - 1], 64, &mut out),
            Err(BdatError::Truncated)
        );
        assert_eq!(
            bdat_decode(b"NOOP\r\n", 64, &mut out),
            Err(BdatError::NotBdat("NOOP"))
        );
    }
}
