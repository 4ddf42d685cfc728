//! What the command-line examples of the core share: reading the command
//! line, and printing bytes from the input so that nothing reaches a
//! terminal raw and nothing is lost. Each example takes what it needs.
#![allow(dead_code)]

/// `bytes` as they are printed: `\` as `\\` (and `"` as `\"` when `quote`
/// is set), an ASCII control character as `\xHH`, any other control or
/// bidirectional-override character as its code point in hex
/// (`\u{85}`), an octet that is not UTF-8 as `\xHH`.
pub fn escape(bytes: &[u8], quote: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' if quote => out.push_str("\\\""),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control()
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c) =>
                {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The command line, each argument as UTF-8 (`std::env::args` panics on
/// one that is not).
pub fn utf8_args() -> Result<Vec<String>, String> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect()
}
