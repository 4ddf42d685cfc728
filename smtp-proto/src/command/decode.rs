//! Command decoding: framing plus one parser per RFC 5321 command rule.

use std::borrow::Cow;

use super::error::{CommandError, PathError};
use super::params::{parse_mail_parameters, parse_rcpt_parameters, MailParameters, RcptParameters};
use super::path::{scan_path, ForwardPath, ReversePath, ScannedPath};
use super::value::{
    check_domain_or_literal, check_node_name, class, scan_domain, Atom, Base64, Domain, Mechanism,
    NodeName, Text,
};
use super::{Command, MailFrom, RcptTo};
use crate::framer::{first_special, Frame, LineFramer};

/// How strictly command lines must end in CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LineEndingPolicy {
    /// Only CRLF ends a command line (RFC 5321 §2.3.8). A bare LF is part of
    /// the line, which runs on to the next CRLF; the whole line is then
    /// refused as a syntax error (500 5.5.2,
    /// [`CommandError::BareLineEnding`]), and nothing after the bare LF is
    /// parsed as a command of its own. A line with a bare CR is refused the
    /// same way. An over-long line is thrown away through the next CRLF.
    /// A front end that ends lines only at CRLF sees the same lines.
    #[default]
    Strict,
    /// A bare LF also ends a command line (some old clients send it), and
    /// an over-long line is thrown away through the next LF. A bare CR
    /// inside a line is still an error.
    AllowBareLf,
}

/// Options of the line parser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Accept `MAIL FROM:user@example.com` without angle brackets.
    pub allow_unbracketed_paths: bool,
}

impl ParseOptions {
    /// Accepts paths without angle brackets when `allow` is true.
    #[must_use]
    pub fn allow_unbracketed_paths(mut self, allow: bool) -> Self {
        self.allow_unbracketed_paths = allow;
        self
    }
}

/// Limits and policies of a [`CommandDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// The longest command line accepted, CRLF included. RFC 5321
    /// §4.5.3.1.4 sets 512 octets; ESMTP parameters may raise it (RFC 1869
    /// §4.1.2, RFC 3461 §5 adds up to 500 for DSN parameters), so the default
    /// is 1024.
    pub max_line_length: usize,
    /// The longest `AUTH` command line accepted (RFC 4954 §4: 12288).
    pub max_auth_line_length: usize,
    /// Bare CR / LF handling.
    pub line_endings: LineEndingPolicy,
    /// Parser options.
    pub parse: ParseOptions,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_line_length: 1024,
            max_auth_line_length: 12288,
            line_endings: LineEndingPolicy::Strict,
            parse: ParseOptions::default(),
        }
    }
}

/// What one [`CommandDecoder::decode`] call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decoded<'a> {
    /// Bytes to drop from the front of the buffer.
    pub consumed: usize,
    /// A command, an error for one bad line, or `None`: with `consumed == 0`
    /// more input is needed; with `consumed > 0` part of an over-long line
    /// was thrown away and the caller calls again.
    pub item: Option<Result<Command<'a>, CommandError>>,
}

/// Splits a byte stream into command lines and parses each.
///
/// ```
/// use smtp_proto::command::{Command, CommandDecoder, CommandError};
///
/// let mut dec = CommandDecoder::default();
/// let mut buf: &[u8] = b"HELO client.example\r\nBOGUS<\r\nQUIT\r\n";
/// let mut seen = Vec::new();
/// loop {
///     let d = dec.decode(buf);
///     if d.consumed == 0 && d.item.is_none() {
///         break; // need more input
///     }
///     if let Some(item) = d.item {
///         seen.push(item.map(|c| c.verb().to_string()));
///     }
///     buf = &buf[d.consumed..];
/// }
/// assert_eq!(seen, vec![Ok("HELO".into()), Err(CommandError::InvalidVerb), Ok("QUIT".into())]);
/// ```
#[derive(Debug, Clone)]
pub struct CommandDecoder {
    framer: LineFramer,
    config: DecoderConfig,
    /// The over-long line being thrown away is an `AUTH` command line.
    discarding_auth: bool,
}

impl Default for CommandDecoder {
    /// `CommandDecoder::new(DecoderConfig::default())`: lines end only at
    /// CRLF ([`LineEndingPolicy::Strict`]).
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl CommandDecoder {
    /// A decoder with the given configuration. Under
    /// [`LineEndingPolicy::Strict`] only CRLF ends a line; under
    /// [`LineEndingPolicy::AllowBareLf`] any LF does.
    #[must_use]
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            framer: Self::framer_for(&config),
            config,
            discarding_auth: false,
        }
    }

    /// A framer at the start of a line that ends lines as `config` says.
    fn framer_for(config: &DecoderConfig) -> LineFramer {
        match config.line_endings {
            LineEndingPolicy::Strict => LineFramer::crlf_only(),
            LineEndingPolicy::AllowBareLf => LineFramer::new(),
        }
    }

    /// A fresh framer that ends lines the way this decoder does, for other
    /// lines the same peer sends (SASL responses).
    pub(crate) fn line_framer(&self) -> LineFramer {
        Self::framer_for(&self.config)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Forgets any partial line (for example when the connection switches
    /// to TLS and the plaintext buffer is dropped).
    pub fn reset(&mut self) {
        self.framer.reset();
        self.discarding_auth = false;
    }

    /// True while the rest of an over-long line is being thrown away.
    #[must_use]
    pub fn is_discarding(&self) -> bool {
        self.framer.is_discarding()
    }

    /// Frames and parses the next command at the start of `buf`.
    ///
    /// An over-long line is reported once its end has been thrown away:
    /// as [`CommandError::AuthLineTooLong`] for an `AUTH` command line
    /// (over [`DecoderConfig::max_auth_line_length`]), else as
    /// [`CommandError::LineTooLong`].
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Decoded<'a> {
        // `AUTH` lines may be longer (RFC 4954 §4). Four letters folded
        // match only those letters, in either case. While a line is being
        // thrown away `buf` starts inside it, so this only means something
        // at a line start.
        let auth = matches!(*buf, [a, u, t, h, b' ', ..] if code(&[a, u, t, h]) == code(b"auth"));
        let max = if auth {
            self.config.max_auth_line_length
        } else {
            self.config.max_line_length
        };
        let at_line_start = !self.framer.is_discarding();
        match self.framer.next_plain_frame(buf, max) {
            (Frame::Line(line), plain) => {
                let content = &buf[..line.content_len];
                let consumed = line.consumed;
                // Each arm builds its own value, so that the parsers write
                // the command straight into the one returned.
                if line.bare_cr
                    || (line.bare_lf && self.config.line_endings == LineEndingPolicy::Strict)
                {
                    Decoded {
                        consumed,
                        item: Some(Err(CommandError::BareLineEnding)),
                    }
                } else if plain {
                    Decoded {
                        consumed,
                        item: Some(parse_checked_line(
                            buf,
                            line.content_len,
                            &self.config.parse,
                        )),
                    }
                } else {
                    Decoded {
                        consumed,
                        item: Some(parse_command(content, &self.config.parse)),
                    }
                }
            }
            (Frame::Incomplete, _) => Decoded {
                consumed: 0,
                item: None,
            },
            (Frame::Discarded { consumed, end }, _) => {
                if at_line_start {
                    self.discarding_auth = auth;
                }
                let too_long = if self.discarding_auth {
                    CommandError::AuthLineTooLong
                } else {
                    CommandError::LineTooLong
                };
                Decoded {
                    consumed,
                    item: end.then_some(Err(too_long)),
                }
            }
        }
    }
}

/// The verbs parsed here, told apart by their four octets folded to lower
/// case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Ehlo,
    Helo,
    Lhlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    Auth,
    Etrn,
}

const fn code(v: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*v) | 0x2020_2020
}

/// Every verb with its folded octets ([`code`]), in [`Verb`] order.
const VERBS: [(&[u8; 4], Verb); 15] = [
    (b"ehlo", Verb::Ehlo),
    (b"helo", Verb::Helo),
    (b"lhlo", Verb::Lhlo),
    (b"mail", Verb::Mail),
    (b"rcpt", Verb::Rcpt),
    (b"data", Verb::Data),
    (b"bdat", Verb::Bdat),
    (b"rset", Verb::Rset),
    (b"noop", Verb::Noop),
    (b"quit", Verb::Quit),
    (b"vrfy", Verb::Vrfy),
    (b"expn", Verb::Expn),
    (b"help", Verb::Help),
    (b"auth", Verb::Auth),
    (b"etrn", Verb::Etrn),
];

/// The multiplier that gives each verb of [`VERBS`] a slot of its own in
/// [`VERB_TABLE`] (found by trying odd numbers until the 15 slots of the
/// top four bits differed).
const VERB_HASH: u32 = 0x38f4_f0f5;

/// The slot of folded octets in [`VERB_TABLE`]: the top four bits of the
/// product.
#[inline]
const fn verb_slot(folded: u32) -> usize {
    (folded.wrapping_mul(VERB_HASH) >> 28) as usize
}

/// The verbs by slot, with their folded octets; the free slot holds 0,
/// which no folded word equals (folding sets bit 5 of every octet).
const VERB_TABLE: [(u32, Option<Verb>); 16] = {
    let mut table = [(0, None); 16];
    let mut i = 0;
    while i < VERBS.len() {
        let (word, verb) = VERBS[i];
        let folded = code(word);
        let slot = verb_slot(folded);
        // Two verbs in one slot would fail the build.
        assert!(table[slot].0 == 0, "VERB_HASH puts two verbs in one slot");
        table[slot] = (folded, Some(verb));
        i += 1;
    }
    table
};

impl Verb {
    /// The verb of four `KEYWORD` octets `v`, if it is one of ours.
    ///
    /// OR-ing 0x20 folds letters to lower case; the other octets a verb may
    /// hold (digits, '-', '_' -> 0x7f) cannot land on a letter, so a match
    /// is exact and case-insensitive.
    ///
    /// One table look-up and one compare, whatever the verb: the folded
    /// octets times [`VERB_HASH`] put each of the 15 verbs in its own slot
    /// of [`VERB_TABLE`] (a test checks it), so a stream that mixes
    /// commands does not make the processor guess its way down a tree of
    /// compares.
    #[inline]
    fn from_octets(v: [u8; 4]) -> Option<Verb> {
        let folded = code(&v);
        let (known, verb) = VERB_TABLE[verb_slot(folded)];
        if known == folded {
            verb
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verb::Ehlo => "EHLO",
            Verb::Helo => "HELO",
            Verb::Lhlo => "LHLO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::Auth => "AUTH",
            Verb::Etrn => "ETRN",
        }
    }
}

/// `command = verb [SP arguments]`: parses one line, without its CRLF.
pub(crate) fn parse_command<'a>(
    line: &'a [u8],
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    if first_special(line).is_some() {
        check_line(line)?;
    }
    parse_checked_line(line, line.len(), opts)
}

/// The checks a line that is not plain ASCII needs, in the order their
/// errors are reported: NUL, then CR or LF, then UTF-8.
fn check_line(line: &[u8]) -> Result<(), CommandError> {
    if memchr::memchr(0, line).is_some() {
        return Err(CommandError::NulOctet);
    }
    if memchr::memchr2(b'\r', b'\n', line).is_some() {
        return Err(CommandError::BareLineEnding);
    }
    std::str::from_utf8(line).map_err(|_| CommandError::InvalidUtf8)?;
    Ok(())
}

/// The text of part of a checked line. Any part of valid UTF-8 cut at
/// ASCII delimiters is valid UTF-8 again, so the error cannot happen; it is
/// mapped rather than unwrapped.
#[inline]
pub(crate) fn utf8(b: &[u8]) -> Result<&str, CommandError> {
    std::str::from_utf8(b).map_err(|_| CommandError::InvalidUtf8)
}

/// The text of `part`, a part of the checked line that starts `window`.
///
/// `std::str::from_utf8` goes octet by octet until it reaches an address
/// that is a multiple of eight, then sixteen octets a step while sixteen
/// remain, then octet by octet again. So the check covers a span that
/// starts at such an address (up to seven octets before `part`: the verb
/// and delimiters in front of a value are ASCII) and, where `window` holds
/// enough octets after `part` (the line's CR LF and what follows it in the
/// buffer), is a whole number of sixteen-octet steps long; the text is then
/// cut to `part` exactly. Should the wider span not be UTF-8 on its own (a
/// cut through a multi-octet character, or a following line that is not
/// text), `part` alone is checked.
#[inline]
fn utf8_in<'a>(window: &'a [u8], part: &'a [u8]) -> Result<&'a str, CommandError> {
    let addr = part.as_ptr() as usize;
    let back = addr % 8;
    let len = back + part.len();
    let from = addr
        .wrapping_sub(window.as_ptr() as usize)
        .wrapping_sub(back);
    if let Some(after) = window.get(from..) {
        let span = match after.get(..(len + 15) & !15) {
            Some(span) => Some(span),
            None => after.get(..len),
        };
        if let Some(Ok(s)) = span.map(std::str::from_utf8) {
            if let Some(text) = s.get(back..len) {
                return Ok(text);
            }
        }
    }
    utf8(part)
}

/// Drops the spaces around `a`; `None` when nothing else is left.
fn trim_spaces(mut a: &[u8]) -> Option<&[u8]> {
    while let [b' ', rest @ ..] = a {
        a = rest;
    }
    while let [rest @ .., b' '] = a {
        a = rest;
    }
    (!a.is_empty()).then_some(a)
}

/// `line` without the spaces and tabs at its end: "SMTP receivers SHOULD
/// tolerate trailing white space before the terminating <CRLF>" (RFC 5321
/// §4.1.1), so `DATA`, a tab and CRLF is `DATA`. White space is a space or
/// a tab (RFC 5234 `WSP`); a vertical tab or form feed is not dropped.
///
/// A line that starts with the BDAT verb keeps its end as sent: a chunk
/// follows the command, and a line a peer may split otherwise is refused
/// (the server closes the session on one whose chunk it cannot place), as
/// before.
#[inline]
fn without_trailing_blanks(line: &[u8]) -> &[u8] {
    // The common case: no white space at the end.
    if !matches!(line, [.., b' ' | b'\t']) {
        return line;
    }
    if matches!(*line, [a, b, c, d, ..] if code(&[a, b, c, d]) == code(b"bdat")) {
        return line;
    }
    let mut rest = line;
    while let [r @ .., b' ' | b'\t'] = rest {
        rest = r;
    }
    rest
}

/// `command = verb [SP arguments]` of a line already known to hold no NUL,
/// CR or LF and to be valid UTF-8. Text is only made a `str` where a value
/// keeps it, so commands without such values never look at UTF-8 again.
/// The line is the first `len` octets of `window`, which may hold more (the
/// buffer the line was framed in; see [`utf8_in`]).
fn parse_checked_line<'a>(
    window: &'a [u8],
    len: usize,
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    let line = without_trailing_blanks(window.get(..len).unwrap_or(window));
    // The common case first: a known four-letter verb, then a space or the
    // end (a folded match implies four letters).
    if let [a, b, c, d, ref rest @ ..] = *line {
        if let (Some(verb), None | Some(b' ')) = (Verb::from_octets([a, b, c, d]), rest.first()) {
            let args = rest.get(1..).and_then(trim_spaces);
            // The verbs that stand alone, without the call.
            if args.is_none() {
                match verb {
                    Verb::Data => return Ok(Command::Data),
                    Verb::Rset => return Ok(Command::Rset),
                    Verb::Quit => return Ok(Command::Quit),
                    Verb::Noop => return Ok(Command::Noop(None)),
                    _ => {}
                }
            }
            return parse_known(window, verb, args, opts);
        }
    }
    parse_other_verb(line, opts)
}

/// [`parse_checked_line`] for every line that does not start with one of
/// the four-letter verbs and a space or the end.
#[inline(never)]
fn parse_other_verb<'a>(line: &'a [u8], opts: &ParseOptions) -> Result<Command<'a>, CommandError> {
    // `STARTTLS` alone, the common case here, in one compare: OR-ing 0x20
    // folds its letters to lower case and maps no other octet onto them.
    if let Ok(word) = <[u8; 8]>::try_from(line) {
        if u64::from_le_bytes(word) | 0x2020_2020_2020_2020 == u64::from_le_bytes(*b"starttls") {
            return Ok(Command::StartTls);
        }
    }
    let verb_len = class::run_end(line, 0, class::KEYWORD);
    let (verb, rest) = line.split_at(verb_len);
    // Arguments: surrounding spaces are not significant.
    let args = match rest.split_first() {
        None => None,
        Some((b' ', a)) => trim_spaces(a),
        Some(_) => return Err(CommandError::InvalidVerb),
    };
    match *verb {
        [] => return Err(CommandError::InvalidVerb),
        [a, b, c, d] => {
            if let Some(v) = Verb::from_octets([a, b, c, d]) {
                return parse_known(line, v, args, opts);
            }
        }
        _ if verb.eq_ignore_ascii_case(b"STARTTLS") => {
            return match args {
                None => Ok(Command::StartTls),
                Some(_) => Err(CommandError::UnexpectedArgument { verb: "STARTTLS" }),
            };
        }
        _ => {}
    }
    Ok(Command::Unknown {
        verb: Atom(Cow::Borrowed(utf8(verb)?)),
        args: match args {
            Some(a) => Some(Text(Cow::Borrowed(utf8(a)?))),
            None => None,
        },
    })
}

fn parse_known<'a>(
    window: &'a [u8],
    verb: Verb,
    args: Option<&'a [u8]>,
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    // Each arm builds its command where it is returned (no closure hands
    // back a whole command to be copied).
    let name = verb.name();
    let required = || args.ok_or(CommandError::MissingArgument { verb: name });
    let no_args = || match args {
        None => Ok(()),
        Some(_) => Err(CommandError::UnexpectedArgument { verb: name }),
    };
    let text = |a: &'a [u8]| Ok::<_, CommandError>(Text(Cow::Borrowed(utf8_in(window, a)?)));
    let opt_text = |a: Option<&'a [u8]>| a.map(text).transpose();
    match verb {
        Verb::Ehlo => Ok(Command::Ehlo(parse_helo_domain(window, name, required()?)?)),
        Verb::Helo => Ok(Command::Helo(parse_helo_domain(window, name, required()?)?)),
        Verb::Lhlo => Ok(Command::Lhlo(parse_helo_domain(window, name, required()?)?)),
        Verb::Mail => parse_mail(window, required()?, opts),
        Verb::Rcpt => parse_rcpt(window, required()?, opts),
        Verb::Data => no_args().map(|()| Command::Data),
        Verb::Bdat => parse_bdat(required()?),
        Verb::Rset => no_args().map(|()| Command::Rset),
        Verb::Quit => no_args().map(|()| Command::Quit),
        Verb::Noop => Ok(Command::Noop(opt_text(args)?)),
        Verb::Help => Ok(Command::Help(opt_text(args)?)),
        Verb::Vrfy => Ok(Command::Vrfy(text(required()?)?)),
        Verb::Expn => Ok(Command::Expn(text(required()?)?)),
        Verb::Etrn => parse_etrn(utf8_in(window, required()?)?),
        Verb::Auth => parse_auth(window, required()?),
    }
}

/// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF`,
/// `helo = "HELO" SP Domain CRLF` (RFC 5321 §4.1.1.1). Address literals are
/// accepted after HELO too, as widely sent.
///
/// The domain is ASCII: RFC 5321's `sub-domain` is letters, digits and
/// hyphens, and RFC 6531 allows U-labels only in the addresses of a
/// transaction that uses SMTPUTF8, which cannot be negotiated before the
/// EHLO it is offered in (RFC 6531 §3.7.1 wants an internationalized
/// client name there in A-label form, `xn--...`).
fn parse_helo_domain<'a>(
    window: &'a [u8],
    verb: &'static str,
    args: &'a [u8],
) -> Result<Domain<'a>, CommandError> {
    // Anything after the domain is ignored, as RFC 5321 §4.1.1.1 lets
    // servers do for historic clients that append text.
    // The common case in one scan: a valid domain up to a space or the end.
    if let (n, true) = scan_domain(args) {
        if matches!(args.get(n), None | Some(b' ')) && args[..n].is_ascii() {
            return Ok(Domain(Cow::Borrowed(utf8_in(window, &args[..n])?)));
        }
    }
    let end = args.iter().position(|&c| c == b' ').unwrap_or(args.len());
    let dom = utf8_in(window, &args[..end])?;
    check_domain_or_literal(dom).map_err(|_| CommandError::InvalidArgument {
        verb,
        reason: "invalid domain",
    })?;
    if !dom.is_ascii() {
        return Err(CommandError::InvalidArgument {
            verb,
            reason: "domain is not ASCII (send A-labels)",
        });
    }
    Ok(Domain(Cow::Borrowed(dom)))
}

/// Strips `prefix` (`FROM:` / `TO:`) and the optional spaces after it.
#[inline(always)]
fn after_prefix<'a>(
    window: &'a [u8],
    args: &'a [u8],
    prefix: &[u8],
    verb: &'static str,
) -> Result<&'a str, CommandError> {
    // The prefix holds letters and ':' only: OR-ing 0x20 into the letters
    // matches them in either case and nothing else.
    let same = |p: &[u8]| {
        p.iter().zip(prefix).all(|(&c, &w)| {
            if w == b':' {
                c == w
            } else {
                c | 0x20 == w | 0x20
            }
        })
    };
    match args.split_at_checked(prefix.len()) {
        Some((p, mut rest)) if same(p) => {
            while let [b' ', r @ ..] = rest {
                rest = r;
            }
            utf8_in(window, rest)
        }
        _ => Err(CommandError::InvalidArgument {
            verb,
            reason: if verb == "MAIL" {
                "expected FROM:"
            } else {
                "expected TO:"
            },
        }),
    }
}

/// Splits what follows a path: nothing, or `SP` parameters.
fn params_after(rest: &str) -> Result<&str, PathError> {
    match rest.as_bytes().first() {
        None => Ok(""),
        Some(b' ') => Ok(&rest[1..]),
        Some(_) => Err(PathError::TrailingCharacters),
    }
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`
/// (RFC 5321 §4.1.1.2)
fn parse_mail<'a>(
    window: &'a [u8],
    args: &'a [u8],
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    let s = after_prefix(window, args, b"FROM:", "MAIL")?;
    let (path, used) =
        scan_path(s, opts.allow_unbracketed_paths).map_err(CommandError::InvalidReversePath)?;
    let reverse_path = match path {
        ScannedPath::Null => ReversePath::Null,
        ScannedPath::Mailbox(m) => ReversePath::Mailbox(m),
        ScannedPath::Postmaster => {
            return Err(CommandError::InvalidReversePath(PathError::MissingDomain))
        }
    };
    let params = params_after(&s[used..]).map_err(CommandError::InvalidReversePath)?;
    // Built where it is returned, the parameters filled in place.
    let mut command = Command::Mail(MailFrom {
        reverse_path,
        params: MailParameters::default(),
    });
    if let Command::Mail(mail) = &mut command {
        parse_mail_parameters(params, &mut mail.params)?;
    }
    Ok(command)
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
/// Forward-path ) [SP Rcpt-parameters] CRLF` (RFC 5321 §4.1.1.3)
fn parse_rcpt<'a>(
    window: &'a [u8],
    args: &'a [u8],
    opts: &ParseOptions,
) -> Result<Command<'a>, CommandError> {
    let s = after_prefix(window, args, b"TO:", "RCPT")?;
    let (path, used) =
        scan_path(s, opts.allow_unbracketed_paths).map_err(CommandError::InvalidForwardPath)?;
    let forward_path = match path {
        ScannedPath::Postmaster => ForwardPath::Postmaster,
        ScannedPath::Mailbox(m) => ForwardPath::Mailbox(m),
        ScannedPath::Null => {
            return Err(CommandError::InvalidForwardPath(PathError::MissingDomain))
        }
    };
    let params = params_after(&s[used..]).map_err(CommandError::InvalidForwardPath)?;
    let mut command = Command::Rcpt(RcptTo {
        forward_path,
        params: RcptParameters::default(),
    });
    if let Command::Rcpt(rcpt) = &mut command {
        parse_rcpt_parameters(params, &mut rcpt.params)?;
    }
    Ok(command)
}

/// The `chunk-size` at the start of a BDAT command's arguments, and the
/// octets it takes: `None` unless at least one digit is followed by a space
/// or the end and the value fits a `u64`.
///
/// Up to 20 digits after any leading zeros (`chunk-size = 1*DIGIT` allows
/// those): every u64 (the writer's range) reads back; 19 digits cannot
/// overflow, the 20th is checked. The server also uses this to read the
/// chunk of a BDAT command whose end marker is wrong.
#[inline(always)]
pub(crate) fn read_chunk_size(args: &[u8]) -> Option<(u64, usize)> {
    let mut size: u64 = 0;
    let mut i = 0;
    let mut zeros = None;
    while let Some(&c) = args.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        size = if i < 19 {
            size * 10 + u64::from(d)
        } else {
            // Counted once, and only for long sizes.
            let z = *zeros.get_or_insert_with(|| args.iter().take_while(|&&c| c == b'0').count());
            let place = i.saturating_sub(z);
            if place < 19 {
                size * 10 + u64::from(d)
            } else if place == 19 {
                size.checked_mul(10)?.checked_add(u64::from(d))?
            } else {
                return None;
            }
        };
        i += 1;
    }
    match args.get(i) {
        _ if i == 0 => None,
        None | Some(b' ') => Some((size, i)),
        Some(_) => None,
    }
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF`,
/// `chunk-size = 1*DIGIT`, `end-marker = "LAST"` (RFC 3030 §4)
fn parse_bdat(args: &[u8]) -> Result<Command<'_>, CommandError> {
    let invalid = |reason| CommandError::InvalidArgument {
        verb: "BDAT",
        reason,
    };
    let Some((size, i)) = read_chunk_size(args) else {
        return Err(invalid("invalid chunk size"));
    };
    let rest = match args.get(i) {
        None => return Ok(Command::Bdat { size, last: false }),
        Some(_) => &args[i..],
    };
    let is_last = |w: &[u8]| matches!(*w, [a, b, c, d] if code(&[a, b, c, d]) == code(b"last"));
    match trim_spaces(rest) {
        None => Ok(Command::Bdat { size, last: false }),
        Some(m) if is_last(m) => Ok(Command::Bdat { size, last: true }),
        // `m` has no space at either end: a first word of LAST means more
        // words follow it.
        Some(m) => Err(invalid(if is_last(split_word(m).0) {
            "unexpected text after LAST"
        } else {
            "expected LAST"
        })),
    }
}

/// The first word of `s` after any spaces, and what follows it.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let start = s.iter().position(|&c| c != b' ').unwrap_or(s.len());
    let s = &s[start..];
    let end = s.iter().position(|&c| c == b' ').unwrap_or(s.len());
    s.split_at(end)
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response]`,
/// `initial-response = base64 / "="` (RFC 4954 §4)
fn parse_auth<'a>(window: &'a [u8], args: &'a [u8]) -> Result<Command<'a>, CommandError> {
    let (mech, ir) = match args.iter().position(|&c| c == b' ') {
        Some(i) => (&args[..i], trim_spaces(&args[i + 1..])),
        None => (args, None),
    };
    // A known name needs no text made of it.
    let mechanism = match Mechanism::known(mech) {
        Some(m) => m,
        None => {
            Mechanism::other(utf8_in(window, mech)?).map_err(|_| CommandError::InvalidArgument {
                verb: "AUTH",
                reason: "invalid mechanism name",
            })?
        }
    };
    let initial_response = match ir {
        None => None,
        Some(b"=") => Some(Base64::empty()),
        Some(r) => Some(
            Base64::new(utf8_in(window, r)?).map_err(|_| CommandError::InvalidInitialResponse)?,
        ),
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

/// `etrn = "ETRN" SP node-name`, `node-name = domain / "@" domain /
/// "#" queue-name` (RFC 1985 §3)
fn parse_etrn(args: &str) -> Result<Command<'_>, CommandError> {
    match check_node_name(args) {
        Ok(()) => Ok(Command::Etrn(NodeName(Cow::Borrowed(args)))),
        Err(_) => Err(CommandError::InvalidArgument {
            verb: "ETRN",
            reason: "invalid node name",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first command of `buf`, decoded.
    fn first(buf: &[u8]) -> Result<Command<'_>, CommandError> {
        CommandDecoder::default()
            .decode(buf)
            .item
            .expect("a whole line")
    }

    #[test]
    fn verb_table_knows_exactly_the_fifteen_verbs_in_any_case() {
        // Every verb in its 16 mixes of case, and every word one octet away
        // from one (each octet replaced by each of the 256 values), against
        // a plain comparison.
        let expected = |word: [u8; 4]| {
            VERBS
                .iter()
                .find(|(name, _)| word.eq_ignore_ascii_case(*name))
                .map(|&(_, verb)| verb)
        };
        let mut verbs = 0;
        for (name, verb) in VERBS {
            assert_eq!(verb.name().as_bytes(), name.to_ascii_uppercase());
            for case in 0..16 {
                let word: [u8; 4] = std::array::from_fn(|k| {
                    if case >> k & 1 == 1 {
                        name[k].to_ascii_uppercase()
                    } else {
                        name[k]
                    }
                });
                assert_eq!(Verb::from_octets(word), Some(verb), "{word:?}");
                verbs += 1;
                for k in 0..4 {
                    for o in 0..=255 {
                        let mut near = word;
                        near[k] = o;
                        assert_eq!(Verb::from_octets(near), expected(near), "{near:?}");
                    }
                }
            }
        }
        assert_eq!(verbs, 15 * 16);
        assert_eq!(Verb::from_octets(*b"XCLI"), None);
        assert_eq!(Verb::from_octets([0; 4]), None);
    }

    #[test]
    fn values_are_cut_exactly_whatever_follows_the_line() {
        let lines: [&[u8]; 4] = [
            b"RCPT TO:<bob@example.org>",
            b"EHLO mail.example.com",
            b"MAIL FROM:<alice@example.com> SIZE=1 ENVID=QQ31",
            b"VRFY bob",
        ];
        // What follows in the buffer: nothing, text, a line that is not
        // UTF-8, and a multi-octet character cut short.
        let tails: [&[u8]; 4] = [b"", b"QUIT\r\nNOOP\r\n", b"\xff\xfe\xfd\r\n", b"\xc3"];
        for line in lines {
            let alone = Command::parse(line).unwrap();
            for tail in tails {
                // Every alignment of the line in memory.
                for lead in 0..16 {
                    let mut buf = vec![b'x'; lead];
                    buf.extend_from_slice(line);
                    buf.extend_from_slice(b"\r\n");
                    buf.extend_from_slice(tail);
                    assert_eq!(first(&buf[lead..]), Ok(alone.clone()), "{buf:?}");
                }
            }
        }
    }

    #[test]
    fn values_with_multi_octet_characters_keep_them() {
        for lead in 0..16 {
            let mut buf = vec![b'x'; lead];
            buf.extend_from_slice("RCPT TO:<jörg@bücher.example>\r\n\u{e9}\r\n".as_bytes());
            let Ok(Command::Rcpt(r)) = first(&buf[lead..]) else {
                panic!("{buf:?}")
            };
            assert_eq!(r.forward_path.to_string(), "<jörg@bücher.example>");
        }
    }
}
