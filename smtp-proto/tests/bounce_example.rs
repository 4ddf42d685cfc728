//! The `bounce` example's exit status, through the same code the example
//! binary runs: 0 when the bounce is written, 1 when the library refused a
//! value, 2 for a usage error (a value of the command line that does not
//! parse, or a missing one).

#[allow(dead_code)]
#[path = "../examples/bounce.rs"]
mod bounce;

const BASE: &[&str] = &[
    "--reporting-mta",
    "mx.example.org",
    "--sender",
    "alice@example.org",
    "--date",
    "1795723722",
    "--token",
    "4F1A2B",
];

const ORIGINAL: &[u8] = b"Subject: x\r\n\r\nhello\r\n";

/// Runs the example with `BASE` then `extra`: its exit status, and
/// whether it wrote anything.
fn status(extra: &[&str]) -> (u8, bool) {
    let argv: Vec<String> = BASE.iter().chain(extra).map(|a| (*a).to_owned()).collect();
    let mut out = Vec::new();
    let status = match bounce::run(&argv, ORIGINAL, &mut out) {
        Ok(Ok(())) => 0,
        Ok(Err(_)) => 1,
        Err(_) => 2,
    };
    (status, !out.is_empty())
}

#[test]
fn a_bad_or_missing_value_on_the_command_line_is_a_usage_error() {
    let rcpt = ["--rcpt", "bob@example.net", "--action", "failed"];
    let with = |before: &[&'static str], after: &[&'static str]| {
        let mut argv = before.to_vec();
        argv.extend(rcpt);
        argv.extend(after);
        argv
    };
    let status_ok = ["--status", "5.1.1"];
    // A valid run writes the bounce.
    assert_eq!(status(&with(&[], &status_ok)), (0, true));
    for argv in [
        with(&["--ret", "bogus"], &status_ok),
        with(&["--max-returned", "many"], &status_ok),
        with(&["--arrival", "yesterday"], &status_ok),
        with(&[], &["--status", "bogus"]),
        with(&[], &["--reply", "not a reply"]),
        with(&[], &[]),
        with(&[], &["--status", "5.1.1", "--last-attempt", "x"]),
        with(&[], &["--status", "5.1.1", "--retry-until", "x"]),
        vec!["--rcpt", "bob@example.net", "--status", "5.1.1"],
        vec![
            "--rcpt",
            "bob@example.net",
            "--action",
            "nope",
            "--status",
            "5.1.1",
        ],
    ] {
        assert_eq!(status(&argv), (2, false), "{argv:?}");
    }
}

#[test]
fn a_value_the_library_refuses_exits_1() {
    // A bounce to the null reverse path would loop (RFC 5321 §6.1).
    let argv: Vec<String> = BASE
        .iter()
        .map(|a| if *a == "alice@example.org" { "<>" } else { a })
        .chain(["--rcpt", "bob@example.net", "--action", "failed"])
        .chain(["--status", "5.1.1"])
        .map(str::to_owned)
        .collect();
    let mut out = Vec::new();
    let refused = bounce::run(&argv, ORIGINAL, &mut out);
    assert!(matches!(refused, Ok(Err(_))), "{refused:?}");
    assert!(out.is_empty());
    // A subject that would add a header field.
    assert_eq!(
        status(&[
            "--subject",
            "x\r\nBcc: victim@example.com",
            "--rcpt",
            "bob@example.net",
            "--action",
            "failed",
            "--status",
            "5.1.1",
        ]),
        (1, false)
    );
}

#[test]
fn an_option_given_twice_is_a_usage_error() {
    // The second value used to replace the first without a word.
    for extra in [
        &["--sender", "mallory@example.org"][..],
        &["--date", "1"],
        &["--subject", "a", "--subject", "b"],
    ] {
        let mut argv = extra.to_vec();
        argv.extend(["--rcpt", "bob@example.net", "--action", "failed"]);
        argv.extend(["--status", "5.1.1"]);
        assert_eq!(status(&argv), (2, false), "{argv:?}");
    }
    // Twice for one recipient; once each for two recipients is fine.
    let twice = [
        "--rcpt",
        "bob@example.net",
        "--action",
        "failed",
        "--status",
        "5.1.1",
        "--status",
        "5.1.2",
    ];
    assert_eq!(status(&twice), (2, false));
    let two = [
        "--rcpt",
        "bob@example.net",
        "--action",
        "failed",
        "--status",
        "5.1.1",
        "--rcpt",
        "carol@example.net",
        "--action",
        "failed",
        "--status",
        "5.1.2",
    ];
    assert_eq!(status(&two), (0, true));
}
