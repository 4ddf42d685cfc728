//! The `bounce`, `read_bounce` and `inspect` examples run as a user runs
//! them: the built binaries, with a time limit, checking exit status,
//! standard output and standard error. `cargo test -p smtp-proto@0.1.0`
//! builds the examples; with `--test examples_cli` alone, build them
//! first (`cargo build -p smtp-proto@0.1.0 --examples`): a binary older
//! than its source fails the test rather than test old code.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a built example (in `SMTP_PROTO_EXAMPLES_DIR` when it is
/// set, to run these tests against other builds).
fn example(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SMTP_PROTO_EXAMPLES_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
    let path = dir.join("examples").join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build it: cargo build -p smtp-proto@0.1.0 --examples",
                path.display()
            )
        });
    // `cargo test --test examples_cli` does not rebuild the examples: a
    // binary older than its source would test old code.
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let written = std::fs::metadata(&source)
        .and_then(|m| m.modified())
        .expect("example source");
    assert!(
        built >= written,
        "{} is older than {}: cargo build -p smtp-proto@0.1.0 --examples",
        path.display(),
        source.display()
    );
    path
}

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs example `name` with `args` and `stdin` (a file opened on standard
/// input, or bytes written to it), within 30 seconds.
fn run_with(name: &str, args: &[&str], stdin: Input<'_>) -> Run {
    let mut cmd = Command::new(example(name));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match &stdin {
        Input::Bytes(_) => cmd.stdin(Stdio::piped()),
        Input::File(path) => cmd.stdin(std::fs::File::open(path).expect("open input")),
        Input::Terminal => cmd.stdin(Stdio::piped()),
    };
    let mut child = cmd.spawn().expect("spawn example");
    let writer = match stdin {
        Input::Bytes(bytes) => {
            let mut pipe = child.stdin.take().expect("stdin");
            let bytes = bytes.to_vec();
            // A writer thread, so a large input cannot deadlock against a
            // full stdout pipe; a write error (the example exited early) is
            // fine.
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        // Standard input held open and never written to: an example that
        // reads it before it looks at its arguments never ends.
        Input::Terminal => None,
        Input::File(_) => None,
    };
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(child.stdin.take());
    if let Some(w) = writer {
        w.join().expect("writer");
    }
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned(),
    }
}

fn read_all(mut r: impl std::io::Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

enum Input<'a> {
    Bytes(&'a [u8]),
    File(&'a str),
    Terminal,
}

fn run(name: &str, args: &[&str], stdin: &[u8]) -> Run {
    run_with(name, args, Input::Bytes(stdin))
}

/// Runs `name` with its standard output a pipe whose reader has gone:
/// its exit status and standard error.
fn run_closed_stdout(name: &str, args: &[&str], stdin_path: &str) -> (Option<i32>, String) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(std::fs::File::open(stdin_path).expect("open input"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run example");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

const BOUNCE_ARGS: &[&str] = &[
    "--reporting-mta",
    "mx.example.org",
    "--sender",
    "alice@example.org",
    "--date",
    "1795723722",
    "--token",
    "4F1A2B",
    "--rcpt",
    "bob@example.net",
    "--action",
    "failed",
    "--reply",
    "550 5.1.1 No such user",
];

const ORIGINAL: &[u8] = b"Subject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n";

/// A bounce written by the `bounce` example.
fn a_bounce() -> Vec<u8> {
    let r = run("bounce", BOUNCE_ARGS, ORIGINAL);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
}

/// True when `out` holds no control character but LF, and is UTF-8.
fn terminal_safe(out: &[u8]) -> bool {
    std::str::from_utf8(out).is_ok_and(|s| {
        s.chars()
            .all(|c| c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)))
    })
}

#[test]
fn read_bounce_escapes_control_characters_and_8bit_octets() {
    let bounce = a_bounce();
    let evil = String::from_utf8(bounce.clone())
        .expect("ASCII bounce")
        .replace(
            "Diagnostic-Code: smtp; 550 5.1.1 No such user",
            "Diagnostic-Code: smtp; 550 5.1.1 \x1b[31m\"no\" \\ \u{85}user",
        )
        .replace(
            "Message-ID: <m1@example.org>",
            "Message-ID: <m1\x1b]0;x\x07@example.org>",
        );
    let r = run("read_bounce", &[], evil.as_bytes());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        terminal_safe(&r.stdout),
        "{:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(
        text.contains(r#"diagnostic="smtp; 550 5.1.1 \x1b[31m\"no\" \\ \u{85}user""#),
        "{text}"
    );
    assert!(
        text.contains(r"message-id=<m1\x1b]0;x\x07@example.org>"),
        "{text}"
    );
    // Plain values are printed as they are.
    let r = run("read_bounce", &[], &bounce);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "report type=delivery-status global=no complete=yes reporting-mta=mx.example.org envid=-\n\
         recipient <bob@example.net> action=failed status=5.1.1 diagnostic=\"smtp; 550 5.1.1 No such user\"\n\
         returned type=message/rfc822 message-id=<m1@example.org>\n"
    );
}

#[test]
fn read_bounce_lists_the_problems_of_the_per_message_fields() {
    let bounce = String::from_utf8(a_bounce())
        .expect("ASCII bounce")
        .replace(
            "Reporting-MTA: dns; mx.example.org",
            "Reporting-MTA: dns; mx.example.org\x1b[2J",
        );
    let r = run("read_bounce", &[], bounce.as_bytes());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.contains(" reporting-mta=- "), "{text}");
    assert!(
        text.ends_with("problem block=- error=\"the Reporting-MTA field does not parse\"\n"),
        "{text}"
    );
}

#[test]
fn read_bounce_exit_status_for_input_and_output_failures() {
    // A directory on standard input: a failure of the work, not a usage error.
    let dir = std::env::temp_dir();
    let r = run_with("read_bounce", &[], Input::File(dir.to_str().unwrap()));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("standard input"), "{}", r.stderr);
    // Standard output closed: 1, with the reason.
    let mut many = a_bounce();
    // Many recipients, so the output is larger than a pipe buffer.
    let block =
        b"Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n";
    let at = many
        .windows(b"Final-Recipient".len())
        .position(|w| w == b"Final-Recipient")
        .unwrap();
    for _ in 0..5000 {
        many.splice(at..at, block.iter().copied());
    }
    let path = temp_file("many.eml", &many);
    let (code, stderr) = run_closed_stdout("read_bounce", &[], &path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    // A usage error: 2, with the usage; --help: the usage on standard
    // output, 0, without reading standard input.
    let r = run_with("read_bounce", &["--bogus"], Input::Terminal);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("usage: read_bounce"), "{}", r.stderr);
    let r = run_with("read_bounce", &["--help"], Input::Terminal);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(String::from_utf8_lossy(&r.stdout).contains("usage: read_bounce"));
    // Binary input: not a bounce, 1.
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let r = run("read_bounce", &[], &binary);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn inspect_escapes_control_characters_and_8bit_octets() {
    let r = run(
        "inspect",
        &["replies"],
        b"250 hello \x1b[31mred\xff\x01 \\ x\r\n550 5.1.1 \xc3\xb1o\xc2\x85\r\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "OK 250 - 1 hello \\x1b[31mred\\xff\\x01 \\\\ x\nOK 550 5.1.1 1 \u{f1}o\\u{85}\n"
    );
    let r = run("inspect", &["ehlo"], b"250-mx\x1b[2J\r\n250 8BITMIME\r\n");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(terminal_safe(&r.stdout), "{:?}", r.stdout);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "OK mx\\x1b[2J\nCAP 8BITMIME\n"
    );
    let r = run("inspect", &["commands"], b"HELP \x1b]0;x\x07\r\nNOOP\r\n");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "OK HELP \\x1b]0;x\\x07\nOK NOOP\n"
    );
}

#[test]
fn inspect_usage_and_exit_status() {
    // Arguments are judged before standard input is read: a usage error
    // with a terminal on standard input ends at once, with the usage.
    for args in [&[][..], &["nonsense"], &["commands", "extra"]] {
        let r = run_with("inspect", args, Input::Terminal);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("usage: inspect"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
    let r = run_with("inspect", &["--help"], Input::Terminal);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(String::from_utf8_lossy(&r.stdout).contains("usage: inspect"));
    // A directory on standard input: 1, naming standard input.
    let dir = std::env::temp_dir();
    let r = run_with("inspect", &["replies"], Input::File(dir.to_str().unwrap()));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("standard input"), "{}", r.stderr);
    // Standard output closed: a failure of the work (1), not a usage error.
    let many: Vec<u8> = (0..50_000)
        .flat_map(|i| format!("250 2.0.0 ok {i}\r\n").into_bytes())
        .collect();
    let path = temp_file("replies.txt", &many);
    let (code, stderr) = run_closed_stdout("inspect", &["replies"], &path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    // Binary input in every mode: ends, exit 0, output terminal-safe.
    let binary: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    for mode in ["commands", "replies", "ehlo"] {
        let r = run("inspect", &[mode], &binary);
        assert_eq!(r.code, Some(0), "{mode}: {}", r.stderr);
        assert!(!r.stdout.is_empty(), "{mode}");
        assert!(terminal_safe(&r.stdout), "{mode}");
    }
}

#[test]
fn inspect_commands_reports_an_over_long_line_cut_by_the_end_of_input() {
    // 2000 octets and no CRLF: not one line came out.
    let r = run("inspect", &["commands"], &[b'A'; 2000]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "ERR 500 5.5.2 incomplete line at end of input\n"
    );
    let mut input = b"NOOP\r\n".to_vec();
    input.extend([b'A'; 2000]);
    let r = run("inspect", &["commands"], &input);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "OK NOOP\nERR 500 5.5.2 incomplete line at end of input\n"
    );
}

#[test]
fn bounce_usage_and_exit_status() {
    // A usage error ends at once, with the usage, a terminal on standard
    // input or not: the command line is judged first.
    for args in [&["--help-me"][..], &["--reporting-mta"], &[]] {
        let r = run_with("bounce", args, Input::Terminal);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("usage: bounce"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    let r = run_with("bounce", &["--help"], Input::Terminal);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(String::from_utf8_lossy(&r.stdout).contains("--reporting-mta"));
    // A directory on standard input: 1, naming standard input.
    let dir = std::env::temp_dir();
    let r = run_with("bounce", BOUNCE_ARGS, Input::File(dir.to_str().unwrap()));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("standard input"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // Standard output closed: 1.
    let big: Vec<u8> = b"Subject: big\r\n\r\n"
        .iter()
        .copied()
        .chain((0..20_000).flat_map(|i| format!("line {i}\r\n").into_bytes()))
        .collect();
    let path = temp_file("big.eml", &big);
    let (code, stderr) = run_closed_stdout("bounce", BOUNCE_ARGS, &path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    // The library's refusal stays 1.
    let to_null: Vec<&str> = BOUNCE_ARGS
        .iter()
        .map(|a| if *a == "alice@example.org" { "<>" } else { a })
        .collect();
    let r = run("bounce", &to_null, ORIGINAL);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
}

#[test]
fn inspect_ehlo_names_the_capability_lines_it_skips() {
    // A capability line that is not UTF-8 is skipped by `EhloReply`; the
    // inspector printed nothing for it.
    let r = run(
        "inspect",
        &["ehlo"],
        b"250-mx.example\r\n250-SIZE \xff\r\n250-X-NOTE caf\xe9\r\n250 8BITMIME\r\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "OK mx.example\nCAP 8BITMIME\n\
         ERR capability line not UTF-8: SIZE \\xff\n\
         ERR capability line not UTF-8: X-NOTE caf\\xe9\n"
    );
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // `std::env::args` panicked on it (exit 101, a backtrace).
    let bad = OsStr::from_bytes(b"caf\xe9");
    for (name, before) in [
        ("bounce", &["--subject"][..]),
        ("read_bounce", &[]),
        ("inspect", &[]),
    ] {
        let out = Command::new(example(name))
            .args(before)
            .arg(bad)
            .stdin(Stdio::null())
            .output()
            .expect("run example");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("not UTF-8"), "{name}: {stderr}");
        assert!(stderr.contains("usage:"), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn bounce_takes_help_as_a_value_where_a_value_stands() {
    let mut args = BOUNCE_ARGS.to_vec();
    args.extend(["--subject", "--help"]);
    let r = run("bounce", &args, ORIGINAL);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("\r\nSubject: --help\r\n"),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}
