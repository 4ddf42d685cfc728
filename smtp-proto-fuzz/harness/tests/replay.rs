//! Replays every fuzz corpus on stable Rust, without libFuzzer.
//!
//! For each target of `smtp_proto_fuzz_harness::TARGETS`, every file of
//! `smtp-proto-fuzz/corpus/<target>/` (seeds and minimized fuzzer finds) and
//! of `smtp-proto-fuzz/regressions/<target>/` (inputs that once failed) is fed
//! to the target function. The other tests keep the registry, the libFuzzer
//! binaries, the corpus directories and the dictionary in step.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use smtp_proto_fuzz_harness::{target, Target, TARGETS};

/// `smtp-proto-fuzz/`.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives inside smtp-proto-fuzz/")
        .to_path_buf()
}

/// The input files of a corpus directory (hidden files such as `.gitkeep`
/// skipped), sorted; empty when the directory does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Names of the subdirectories of `dir`.
fn subdirs(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_owned()
    }
}

/// Runs `t` on every file of its corpus and regressions; returns how many
/// files ran and one message per failing file.
fn replay(t: &Target) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for kind in ["corpus", "regressions"] {
        for path in inputs(&fuzz_dir().join(kind).join(t.name)) {
            let data = fs::read(&path).expect("readable corpus file");
            ran += 1;
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (t.run)(&data))) {
                failures.push(format!(
                    "{}: {}",
                    path.display(),
                    panic_message(payload.as_ref())
                ));
            }
        }
    }
    (ran, failures)
}

#[test]
fn every_corpus_and_regression_file_passes_its_target() {
    let mut failures = Vec::new();
    for t in TARGETS {
        let (ran, failed) = replay(t);
        println!("{}: {ran} inputs replayed, {} failed", t.name, failed.len());
        failures.extend(failed);
    }
    assert!(
        failures.is_empty(),
        "{} corpus file(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_seed_corpus() {
    for t in TARGETS {
        let dir = fuzz_dir().join("corpus").join(t.name);
        assert!(
            !inputs(&dir).is_empty(),
            "target {} has no seed files in {}",
            t.name,
            dir.display()
        );
    }
}

#[test]
fn corpus_directories_name_registered_targets() {
    for kind in ["corpus", "regressions"] {
        for name in subdirs(&fuzz_dir().join(kind)) {
            assert!(
                target(&name).is_some(),
                "{kind}/{name}/ belongs to no target in TARGETS"
            );
        }
    }
}

/// The `[[bin]]` names declared in smtp-proto-fuzz/Cargo.toml.
fn declared_binaries() -> BTreeSet<String> {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz manifest");
    let mut names = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(value) = line.strip_prefix("name") {
                let value = value.trim_start().trim_start_matches('=').trim();
                names.insert(value.trim_matches('"').to_owned());
            }
        }
    }
    names
}

#[test]
fn registry_binaries_and_entry_files_agree() {
    let registered: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    assert_eq!(
        registered.len(),
        TARGETS.len(),
        "a target name is registered twice"
    );
    assert_eq!(
        declared_binaries(),
        registered,
        "[[bin]] entries of smtp-proto-fuzz/Cargo.toml and TARGETS differ"
    );
    let entry_files: BTreeSet<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz_targets/")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entry_files, registered,
        "fuzz_targets/*.rs and TARGETS differ"
    );
    for t in TARGETS {
        let path = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", t.name));
        let source = fs::read_to_string(&path).expect("entry file");
        let call = format!("smtp_proto_fuzz_harness::{}::run", t.name);
        assert!(
            source.contains(&call),
            "{} must call {call}, the function the replay test runs",
            path.display()
        );
    }
}

/// Parses one libFuzzer dictionary value (the text between the quotes).
fn dict_value(quoted: &str) -> Result<Vec<u8>, String> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or("value not in double quotes")?;
    let mut out = Vec::new();
    let mut bytes = inner.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(b'\\') => out.push(b'\\'),
                Some(b'"') => out.push(b'"'),
                Some(b'x') => {
                    let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                    let hex = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                    let v = u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 2)
                        .ok_or(format!("bad \\x escape {hex:?}"))?;
                    out.push(v);
                }
                other => return Err(format!("unsupported escape {other:?}")),
            },
            b'"' => return Err("unescaped quote".into()),
            b' '..=b'~' => out.push(b),
            _ => return Err(format!("byte {b:#04x} must be written \\xAB")),
        }
    }
    if out.is_empty() {
        return Err("empty value".into());
    }
    Ok(out)
}

#[test]
fn dictionary_is_valid_libfuzzer_syntax() {
    let dict = fs::read_to_string(fuzz_dir().join("smtp.dict")).expect("smtp.dict");
    let mut values = BTreeSet::new();
    for (n, line) in dict.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let quoted = match line.split_once('=') {
            Some((name, value)) if !name.starts_with('"') => {
                assert!(
                    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "line {}: bad entry name {name:?}",
                    n + 1
                );
                value
            }
            _ => line,
        };
        let value = dict_value(quoted).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        assert!(values.insert(value), "line {}: duplicate value", n + 1);
    }
    for must in [&b"\r\n.\r\n"[..], b"\n.\n", b"<>", b"[IPv6:", b"MAIL FROM:"] {
        assert!(
            values.contains(must),
            "smtp.dict lacks {:?}",
            String::from_utf8_lossy(must)
        );
    }
}

#[test]
fn dictionary_parser_rejects_what_libfuzzer_rejects() {
    assert_eq!(dict_value(r#""a\x0Db""#).unwrap(), b"a\rb");
    assert!(dict_value(r#""a\r""#).is_err());
    assert!(dict_value(r#""\x4""#).is_err());
    assert!(dict_value("no quotes").is_err());
    assert!(dict_value(r#""""#).is_err());
}
