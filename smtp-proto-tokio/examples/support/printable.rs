//! Text from a peer made safe to print, shared by the client examples.

/// `text` with its control characters (C0 but tab, DEL, C1) written as
/// Rust escapes (`\u{1b}`). Reply texts are the server's own words: a
/// hostile server could otherwise drive the terminal (clear it, retitle
/// it, write over a line) or forge a line of the output through what a
/// program prints.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
