//! Benchmark inputs: the command and EHLO reply samples, repeated to a few
//! megabytes, and a generated message body in its DATA and BDAT wire forms.
//!
//! Everything here is deterministic, so every run measures the same bytes.

/// The sample command lines, as stored in `inputs/commands.txt`.
pub const COMMANDS_FILE: &[u8] = include_bytes!("../inputs/commands.txt");

/// The sample EHLO reply, as stored in `inputs/ehlo_reply.txt`.
pub const EHLO_REPLY_FILE: &[u8] = include_bytes!("../inputs/ehlo_reply.txt");

/// Size the command and reply streams are repeated up to (whole repetitions).
pub const STREAM_TARGET_LEN: usize = 2 * 1024 * 1024;

/// Size of the generated message body.
pub const BODY_TARGET_LEN: usize = 10 * 1024 * 1024;

/// Octets of text on a full body line, before its CRLF.
pub const BODY_LINE_LEN: usize = 76;

/// Seed of the body generator.
pub const BODY_SEED: u64 = 0x5eed_5a1e_cafe_f00d;

/// Payload size of each BDAT chunk but the last.
pub const BDAT_CHUNK_LEN: usize = 64 * 1024;

/// Size of the pieces the DATA and BDAT wire forms are fed in, as a server
/// reading from a socket would see them.
pub const READ_LEN: usize = 64 * 1024;

/// Rewrites every line ending to CRLF: a bare LF becomes CRLF, an existing
/// CRLF is kept, and a missing line ending after the last line is added.
pub fn to_crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16 + 2);
    let mut prev = 0u8;
    for &b in text {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Counts CRLF-terminated lines.
pub fn count_lines(text: &[u8]) -> usize {
    text.windows(2).filter(|w| w == b"\r\n").count()
}

/// Repeats `unit` whole until the result is at least `min_len` bytes long.
/// Returns the stream and the number of repetitions.
pub fn repeat_to(unit: &[u8], min_len: usize) -> (Vec<u8>, usize) {
    assert!(!unit.is_empty(), "cannot repeat an empty unit");
    let reps = min_len.div_ceil(unit.len()).max(1);
    (unit.repeat(reps), reps)
}

/// Marsaglia's xorshift64: small, fast and fully determined by its seed.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (a zero seed is replaced, xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0; the slight modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Text octets of generated body lines (no CR, LF or NUL); the first 62 are
/// letters and digits.
const BODY_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ .,;:-_=!?()";

/// A generated message body, before dot-stuffing.
#[derive(Debug, Clone)]
pub struct Body {
    /// The body as the application sees it: CRLF lines, the last one included.
    pub plain: Vec<u8>,
    /// Number of lines.
    pub lines: usize,
    /// Lines that start with a dot (lone dots included).
    pub dot_lines: usize,
    /// Lines that hold nothing but a dot.
    pub lone_dots: usize,
}

/// Generates a body of at least `min_len` bytes: lines of
/// [`BODY_LINE_LEN`] octets plus CRLF, about 5% of them starting with a dot,
/// about 0.5% of them a lone dot.
pub fn generate_body(min_len: usize, seed: u64) -> Body {
    let mut rng = XorShift64::new(seed);
    let mut plain = Vec::with_capacity(min_len + BODY_LINE_LEN + 2);
    let (mut lines, mut dot_lines, mut lone_dots) = (0, 0, 0);
    while plain.len() < min_len {
        let roll = rng.below(1000);
        if roll < 5 {
            plain.push(b'.');
            lone_dots += 1;
            dot_lines += 1;
        } else {
            let mut len = BODY_LINE_LEN;
            if roll < 50 {
                plain.push(b'.');
                dot_lines += 1;
                len -= 1;
            }
            for i in 0..len {
                // A line starts with a dot only where chosen above.
                let first = i == 0 && roll >= 50;
                let choices = if first { 62 } else { BODY_ALPHABET.len() };
                plain.push(BODY_ALPHABET[rng.below(choices as u64) as usize]);
            }
        }
        plain.extend_from_slice(b"\r\n");
        lines += 1;
    }
    Body {
        plain,
        lines,
        dot_lines,
        lone_dots,
    }
}

/// The DATA wire form of a CRLF-terminated body: every line that starts with
/// a dot gets a second one (RFC 5321 §4.5.2), then the `.` CRLF end marker,
/// so the stream ends in CRLF.CRLF.
///
/// A plain reference for the benchmarks, not the encoder under test.
pub fn dot_stuff(plain: &[u8]) -> Vec<u8> {
    assert!(
        plain.is_empty() || plain.ends_with(b"\r\n"),
        "body must end with CRLF"
    );
    let mut wire = Vec::with_capacity(plain.len() + plain.len() / 32 + 3);
    for line in plain.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

/// The BDAT wire form (RFC 3030) of a body: `BDAT <n>` CRLF and `n` octets per
/// chunk of at most `chunk_len` octets, the last chunk as `BDAT <n> LAST`.
/// Returns the stream and the number of chunks.
pub fn bdat_chunks(plain: &[u8], chunk_len: usize) -> (Vec<u8>, usize) {
    assert!(chunk_len > 0, "chunk length must be positive");
    let mut wire = Vec::with_capacity(plain.len() + plain.len() / chunk_len * 20 + 32);
    let mut chunks = plain.chunks(chunk_len).peekable();
    let mut count = 0;
    if chunks.peek().is_none() {
        wire.extend_from_slice(b"BDAT 0 LAST\r\n");
        return (wire, 1);
    }
    while let Some(chunk) = chunks.next() {
        let last = if chunks.peek().is_none() { " LAST" } else { "" };
        wire.extend_from_slice(format!("BDAT {}{}\r\n", chunk.len(), last).as_bytes());
        wire.extend_from_slice(chunk);
        count += 1;
    }
    (wire, count)
}

/// Every input the benchmarks use, built once.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The sample commands, CRLF-normalised.
    pub commands: Vec<u8>,
    /// Number of command lines in [`Inputs::commands`].
    pub commands_per_unit: usize,
    /// [`Inputs::commands`] repeated to [`STREAM_TARGET_LEN`].
    pub command_stream: Vec<u8>,
    /// Number of commands in [`Inputs::command_stream`].
    pub command_count: usize,
    /// The sample EHLO reply, CRLF-normalised.
    pub ehlo_reply: Vec<u8>,
    /// [`Inputs::ehlo_reply`] repeated to [`STREAM_TARGET_LEN`].
    pub ehlo_stream: Vec<u8>,
    /// Number of replies in [`Inputs::ehlo_stream`].
    pub ehlo_count: usize,
    /// The generated message body.
    pub body: Body,
    /// The body as DATA sends it: dot-stuffed, ended by CRLF.CRLF.
    pub data_wire: Vec<u8>,
    /// The body as BDAT chunks.
    pub bdat_wire: Vec<u8>,
    /// Number of chunks in [`Inputs::bdat_wire`].
    pub bdat_count: usize,
}

impl Inputs {
    /// Builds every input (takes a few tens of milliseconds).
    pub fn new() -> Self {
        let commands = to_crlf(COMMANDS_FILE);
        let commands_per_unit = count_lines(&commands);
        let (command_stream, command_reps) = repeat_to(&commands, STREAM_TARGET_LEN);
        let ehlo_reply = to_crlf(EHLO_REPLY_FILE);
        let (ehlo_stream, ehlo_count) = repeat_to(&ehlo_reply, STREAM_TARGET_LEN);
        let body = generate_body(BODY_TARGET_LEN, BODY_SEED);
        let data_wire = dot_stuff(&body.plain);
        let (bdat_wire, bdat_count) = bdat_chunks(&body.plain, BDAT_CHUNK_LEN);
        Self {
            commands,
            commands_per_unit,
            command_stream,
            command_count: command_reps * commands_per_unit,
            ehlo_reply,
            ehlo_stream,
            ehlo_count,
            body,
            data_wire,
            bdat_wire,
            bdat_count,
        }
    }
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_crlf_rewrites_bare_lf_only() {
        assert_eq!(to_crlf(b"A\nB\r\nC\n"), b"A\r\nB\r\nC\r\n");
        assert_eq!(to_crlf(b"A\r\nB"), b"A\r\nB\r\n");
        assert_eq!(to_crlf(b""), b"");
    }

    #[test]
    fn sample_files_normalise_to_crlf_lines() {
        let commands = to_crlf(COMMANDS_FILE);
        assert_eq!(count_lines(&commands), 20);
        assert_eq!(commands.iter().filter(|&&b| b == b'\n').count(), 20);
        let reply = to_crlf(EHLO_REPLY_FILE);
        assert_eq!(count_lines(&reply), 11);
        assert!(reply.starts_with(b"250-"));
        assert!(reply.ends_with(b"250 CHUNKING\r\n"));
    }

    #[test]
    fn repeat_to_uses_whole_units() {
        let (s, reps) = repeat_to(b"abc", 10);
        assert_eq!(reps, 4);
        assert_eq!(s, b"abcabcabcabc");
    }

    #[test]
    fn xorshift_is_deterministic() {
        let a: Vec<u64> = {
            let mut r = XorShift64::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = XorShift64::new(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert!(a.windows(2).all(|w| w[0] != w[1]));
        assert_ne!(XorShift64::new(0).next_u64(), 0);
    }

    #[test]
    fn generated_body_has_the_promised_shape() {
        let body = generate_body(1024 * 1024, BODY_SEED);
        assert!(body.plain.len() >= 1024 * 1024);
        assert!(body.plain.ends_with(b"\r\n"));
        assert_eq!(count_lines(&body.plain), body.lines);
        let mut dots = 0;
        let mut lone = 0;
        for line in body.plain.split_inclusive(|&b| b == b'\n') {
            assert!(line.ends_with(b"\r\n"));
            assert!(!line[..line.len() - 2].contains(&b'\r'));
            if line == b".\r\n" {
                lone += 1;
            } else {
                assert_eq!(line.len(), BODY_LINE_LEN + 2);
            }
            if line[0] == b'.' {
                dots += 1;
            }
        }
        assert_eq!(dots, body.dot_lines);
        assert_eq!(lone, body.lone_dots);
        let share = body.dot_lines as f64 / body.lines as f64;
        assert!((0.04..0.06).contains(&share), "dot share {share}");
        assert!(body.lone_dots > 10);
        assert_eq!(generate_body(4096, 1).plain, generate_body(4096, 1).plain);
    }

    #[test]
    fn dot_stuff_doubles_leading_dots_and_ends_the_message() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n.\r\n"), b"a\r\n..b\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b".x\r\n"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn bdat_chunks_frame_the_body() {
        let (wire, n) = bdat_chunks(b"0123456789", 4);
        assert_eq!(n, 3);
        assert_eq!(wire, b"BDAT 4\r\n0123BDAT 4\r\n4567BDAT 2 LAST\r\n89");
        assert_eq!(bdat_chunks(b"", 4), (b"BDAT 0 LAST\r\n".to_vec(), 1));
    }

    #[test]
    fn inputs_are_a_few_megabytes() {
        let inputs = Inputs::new();
        assert!(inputs.command_stream.len() >= STREAM_TARGET_LEN);
        assert_eq!(count_lines(&inputs.command_stream), inputs.command_count);
        assert!(inputs.ehlo_stream.len() >= STREAM_TARGET_LEN);
        assert_eq!(
            inputs.ehlo_stream.len(),
            inputs.ehlo_reply.len() * inputs.ehlo_count
        );
        assert!(inputs.data_wire.ends_with(b"\r\n.\r\n"));
        assert_eq!(
            inputs.data_wire.len(),
            inputs.body.plain.len() + inputs.body.dot_lines + 3
        );
        assert_eq!(
            inputs.bdat_count,
            inputs.body.plain.len().div_ceil(BDAT_CHUNK_LEN)
        );
    }
}
