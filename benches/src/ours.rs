//! The benchmarks' work done with `smtp-proto`, function for function the
//! same as in [`crate::stalwart`].

use std::hint::black_box;

use smtp_proto::command::{Command, CommandDecoder, CommandError};
use smtp_proto::data::{ChunkReader, DataDecoder, DataLimits, DataOutput, DotStuffer};
use smtp_proto::reply::{
    Decoded, EhloDecoded, EhloError, EhloReply, EhloReplyBuilder, OwnedReply, ReplyDecoder,
    ReplyError,
};

/// Frames and parses every command of `stream` with [`CommandDecoder`].
/// Returns the number of commands, or the first error.
pub fn parse_commands(stream: &[u8]) -> Result<usize, CommandError> {
    let mut decoder = CommandDecoder::default();
    let mut buf = stream;
    let mut count = 0;
    loop {
        let step = decoder.decode(buf);
        match step.item {
            Some(item) => {
                black_box(item?);
                count += 1;
            }
            None if step.consumed == 0 => return Ok(count),
            None => {}
        }
        buf = buf.get(step.consumed..).unwrap_or_default();
    }
}

/// Why an EHLO stream did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EhloStreamError {
    /// The reply decoder failed.
    Reply(ReplyError),
    /// A reply was not a valid EHLO reply.
    Ehlo(EhloError),
    /// Bytes were skipped, or the stream ended inside a reply.
    Unexpected,
}

/// Decodes every reply of `stream` with [`ReplyDecoder::decode_ehlo`], which
/// reads each as an [`EhloReply`] (domain, capabilities, AUTH mechanisms,
/// SIZE) in the same pass as it checks the lines; the result is the same as
/// [`ReplyDecoder::decode`] followed by [`EhloReply::parse`].
/// Returns the number of replies.
pub fn parse_ehlo_replies(stream: &[u8]) -> Result<usize, EhloStreamError> {
    let mut decoder = ReplyDecoder::new();
    let mut buf = stream;
    let mut count = 0;
    while !buf.is_empty() {
        match decoder.decode_ehlo(buf).map_err(EhloStreamError::Reply)? {
            EhloDecoded::Reply { ehlo, consumed, .. } => {
                black_box(ehlo.map_err(EhloStreamError::Ehlo)?);
                count += 1;
                buf = buf.get(consumed..).unwrap_or_default();
            }
            _ => return Err(EhloStreamError::Unexpected),
        }
    }
    Ok(count)
}

/// [`parse_ehlo_replies`] in two passes: [`ReplyDecoder::decode`], then
/// [`EhloReply::parse`] on each reply. Returns the number of replies.
pub fn parse_ehlo_replies_two_pass(stream: &[u8]) -> Result<usize, EhloStreamError> {
    let mut decoder = ReplyDecoder::new();
    let mut buf = stream;
    let mut count = 0;
    while !buf.is_empty() {
        match decoder.decode(buf).map_err(EhloStreamError::Reply)? {
            Decoded::Reply { reply, consumed } => {
                black_box(EhloReply::parse(&reply).map_err(EhloStreamError::Ehlo)?);
                count += 1;
                buf = buf.get(consumed..).unwrap_or_default();
            }
            _ => return Err(EhloStreamError::Unexpected),
        }
    }
    Ok(count)
}

/// Builds the reply of `wire` (one EHLO reply) again from its parsed values
/// with [`EhloReplyBuilder`].
pub fn ehlo_reply_value(wire: &[u8]) -> Result<OwnedReply, EhloStreamError> {
    let mut decoder = ReplyDecoder::new();
    let Decoded::Reply { reply, .. } = decoder.decode(wire).map_err(EhloStreamError::Reply)? else {
        return Err(EhloStreamError::Unexpected);
    };
    let ehlo = EhloReply::parse(&reply).map_err(EhloStreamError::Ehlo)?;
    let greeting = std::str::from_utf8(ehlo.greeting()).map_err(|_| EhloStreamError::Unexpected)?;
    let mut builder =
        EhloReplyBuilder::new(ehlo.domain(), greeting).map_err(|_| EhloStreamError::Unexpected)?;
    for cap in ehlo.capabilities() {
        builder = builder
            .capability(&cap)
            .map_err(|_| EhloStreamError::Unexpected)?;
    }
    Ok(builder.build())
}

/// Writes `reply` `times` times into `out` (cleared first). Returns the
/// number of bytes written.
pub fn encode_reply(reply: &OwnedReply, times: usize, out: &mut Vec<u8>) -> usize {
    out.clear();
    for _ in 0..times {
        black_box(reply).write_to(out);
    }
    out.len()
}

/// Parses each CRLF line of `sample` once, as owned commands to encode.
pub fn commands_to_encode(sample: &[u8]) -> Result<Vec<Command<'static>>, CommandError> {
    sample
        .split_inclusive(|&b| b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            Command::parse(line).map(Command::into_owned)
        })
        .collect()
}

/// Writes `commands` `times` times into `out` (cleared first), canonical
/// form. Returns the number of bytes written.
pub fn encode_commands(commands: &[Command<'_>], times: usize, out: &mut Vec<u8>) -> usize {
    out.clear();
    for _ in 0..times {
        for command in black_box(commands) {
            command.write_to(out);
        }
    }
    out.len()
}

/// Decodes a DATA stream with [`DataDecoder`], fed in pieces of `read_len`
/// bytes; the borrowed chunks are only counted. Returns the body length and
/// the wire bytes consumed up to the end marker, or `None` without one.
pub fn unstuff_borrowed(wire: &[u8], read_len: usize) -> Option<(usize, usize)> {
    let mut decoder = DataDecoder::new(DataLimits::default());
    let mut body = 0;
    let mut offset = 0;
    for piece in wire.chunks(read_len) {
        let mut pos = 0;
        loop {
            let step = decoder.decode(piece.get(pos..).unwrap_or_default());
            pos += step.consumed;
            match step.output {
                DataOutput::Chunk(chunk) => body += black_box(chunk).len(),
                DataOutput::NeedMore => break,
                DataOutput::End(_) => return Some((body, offset + pos)),
            }
        }
        offset += piece.len();
    }
    None
}

/// [`unstuff_borrowed`], but the body is copied into `out` (cleared first).
/// Returns the wire bytes consumed up to the end marker.
pub fn unstuff_into(wire: &[u8], read_len: usize, out: &mut Vec<u8>) -> Option<usize> {
    out.clear();
    let mut decoder = DataDecoder::new(DataLimits::default());
    let mut offset = 0;
    for piece in wire.chunks(read_len) {
        let (consumed, end) = decoder.decode_into(piece, out);
        if end.is_some() {
            return Some(offset + consumed);
        }
        offset += piece.len();
    }
    None
}

/// Dot-stuffs `body` with [`DotStuffer`] into `out` (cleared first), end
/// marker included. Returns the number of bytes written.
pub fn dot_stuff(body: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut encoder = DotStuffer::new();
    encoder.encode(body, out);
    encoder.finish(out);
    out.len()
}

/// Why [`bdat_decode`] stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdatError {
    /// A command line did not parse.
    Parse(CommandError),
    /// A command other than BDAT arrived.
    NotBdat(String),
    /// The stream ended before the LAST chunk was complete.
    Truncated,
}

/// Takes a stream of BDAT commands and chunks apart, fed in pieces of
/// `read_len` bytes: [`CommandDecoder`] for the command lines (a line cut by
/// a read boundary is completed in a small buffer), [`ChunkReader`] for the
/// payloads, which are borrowed and only counted. Returns the number of
/// chunks and the payload length.
pub fn bdat_decode(wire: &[u8], read_len: usize) -> Result<(usize, usize), BdatError> {
    bdat_decode_with(wire, read_len, |payload| {
        black_box(payload);
    })
}

/// [`bdat_decode`], but the payloads are copied into `out` (cleared first).
pub fn bdat_decode_into(
    wire: &[u8],
    read_len: usize,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), BdatError> {
    out.clear();
    bdat_decode_with(wire, read_len, |payload| out.extend_from_slice(payload))
}

fn bdat_decode_with(
    wire: &[u8],
    read_len: usize,
    mut sink: impl FnMut(&[u8]),
) -> Result<(usize, usize), BdatError> {
    let mut decoder = CommandDecoder::default();
    let mut partial: Vec<u8> = Vec::new();
    let mut chunk: Option<(ChunkReader, bool)> = None;
    let (mut chunks, mut payload) = (0, 0);
    for piece in wire.chunks(read_len) {
        let mut buf = piece;
        loop {
            if let Some((reader, last)) = &mut chunk {
                // The slice handed out is exactly what the reader consumed.
                let slice = reader.read(buf);
                sink(slice);
                let taken = slice.len();
                payload += taken;
                buf = buf.get(taken..).unwrap_or_default();
                if !reader.is_done() {
                    break;
                }
                chunks += 1;
                let last = *last;
                chunk = None;
                if last {
                    return Ok((chunks, payload));
                }
            }
            if buf.is_empty() {
                break;
            }
            let step = if partial.is_empty() {
                let step = decoder.decode(buf);
                if step.consumed == 0 && step.item.is_none() {
                    partial.extend_from_slice(buf);
                    break;
                }
                buf = buf.get(step.consumed..).unwrap_or_default();
                step.item
            } else {
                let end = memchr_lf(buf).map_or(buf.len(), |lf| lf + 1);
                partial.extend_from_slice(buf.get(..end).unwrap_or_default());
                buf = buf.get(end..).unwrap_or_default();
                let step = decoder.decode(&partial);
                if step.consumed == 0 && step.item.is_none() {
                    break;
                }
                let item = step.item.map(|r| r.map(Command::into_owned));
                partial.clear();
                item
            };
            match step {
                Some(Ok(Command::Bdat { size, last })) => {
                    chunk = Some((ChunkReader::new(size), last));
                }
                Some(Ok(other)) => return Err(BdatError::NotBdat(other.verb().to_string())),
                Some(Err(e)) => return Err(BdatError::Parse(e)),
                None => {}
            }
        }
    }
    Err(BdatError::Truncated)
}

fn memchr_lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{
        bdat_chunks, dot_stuff as reference_stuff, generate_body, Inputs, READ_LEN,
    };

    #[test]
    fn every_sample_command_parses() {
        let inputs = Inputs::new();
        assert_eq!(parse_commands(&inputs.commands), Ok(20));
        assert_eq!(
            parse_commands(&inputs.command_stream),
            Ok(inputs.command_count)
        );
        assert!(parse_commands(b"MAIL FROM:<a@b\r\n").is_err());
    }

    #[test]
    fn every_ehlo_reply_parses() {
        let inputs = Inputs::new();
        assert_eq!(
            parse_ehlo_replies(&inputs.ehlo_stream),
            Ok(inputs.ehlo_count)
        );
        assert!(parse_ehlo_replies(b"250-a\r\n251 b\r\n").is_err());
    }

    #[test]
    fn ehlo_reply_encodes_back_to_the_sample() {
        let inputs = Inputs::new();
        let reply = ehlo_reply_value(&inputs.ehlo_reply).expect("sample reply");
        let mut out = Vec::new();
        assert_eq!(encode_reply(&reply, 1, &mut out), inputs.ehlo_reply.len());
        assert_eq!(out, inputs.ehlo_reply);
        assert_eq!(
            encode_reply(&reply, 3, &mut out),
            3 * inputs.ehlo_reply.len()
        );
        assert_eq!(parse_ehlo_replies(&out), Ok(3));
    }

    #[test]
    fn encoded_commands_parse_back_to_the_same_commands() {
        let inputs = Inputs::new();
        let commands = commands_to_encode(&inputs.commands).expect("sample commands");
        assert_eq!(commands.len(), 20);
        let mut out = Vec::new();
        let one = encode_commands(&commands, 1, &mut out);
        let again = commands_to_encode(&out).expect("canonical commands");
        assert_eq!(again, commands);
        assert_eq!(encode_commands(&commands, 4, &mut out), 4 * one);
    }

    #[test]
    fn data_decoders_recover_the_generated_body() {
        let inputs = Inputs::new();
        let wire = &inputs.data_wire;
        assert_eq!(
            unstuff_borrowed(wire, READ_LEN),
            Some((inputs.body.plain.len(), wire.len()))
        );
        let mut out = Vec::new();
        assert_eq!(unstuff_into(wire, READ_LEN, &mut out), Some(wire.len()));
        assert!(out == inputs.body.plain, "decoded body differs");
        assert_eq!(unstuff_borrowed(&wire[..wire.len() - 1], READ_LEN), None);
    }

    #[test]
    fn data_decoders_are_split_invariant_on_a_small_body() {
        let body = generate_body(2000, 3);
        let wire = reference_stuff(&body.plain);
        for read_len in 1..=9 {
            assert_eq!(
                unstuff_borrowed(&wire, read_len),
                Some((body.plain.len(), wire.len()))
            );
            let mut out = Vec::new();
            assert_eq!(unstuff_into(&wire, read_len, &mut out), Some(wire.len()));
            assert_eq!(out, body.plain, "read length {read_len}");
        }
    }

    #[test]
    fn dot_stuff_matches_the_reference_wire_form() {
        let inputs = Inputs::new();
        let mut out = Vec::new();
        assert_eq!(
            dot_stuff(&inputs.body.plain, &mut out),
            inputs.data_wire.len()
        );
        assert!(out == inputs.data_wire, "stuffed body differs");
    }

    #[test]
    fn bdat_decode_takes_every_chunk() {
        let inputs = Inputs::new();
        assert_eq!(
            bdat_decode(&inputs.bdat_wire, READ_LEN),
            Ok((inputs.bdat_count, inputs.body.plain.len()))
        );
        let body = generate_body(3000, 5);
        let (wire, n) = bdat_chunks(&body.plain, 700);
        for read_len in [1, 2, 5, 13, 699, 700, 701, 4096] {
            assert_eq!(
                bdat_decode(&wire, read_len),
                Ok((n, body.plain.len())),
                "read length {read_len}"
            );
        }
        let mut out = Vec::new();
        assert_eq!(
            bdat_decode_into(&inputs.bdat_wire, READ_LEN, &mut out),
            Ok((inputs.bdat_count, inputs.body.plain.len()))
        );
        assert!(out == inputs.body.plain, "BDAT payload differs");
        assert_eq!(
            bdat_decode(&wire[..wire.len() - 1], 64),
            Err(BdatError::Truncated)
        );
        assert_eq!(
            bdat_decode(b"NOOP\r\n", 64),
            Err(BdatError::NotBdat("NOOP".into()))
        );
    }
}
