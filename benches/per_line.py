#!/usr/bin/env python3
"""Print what each sample command costs, ours beside the smtp-proto 0.2.5
crate's, as a Markdown table.

For every line of the command sample it runs the `profile` binary twice per
parser: once under callgrind (instructions per command, steady on a busy
machine) and once plainly (the fastest of ITERATIONS passes over the line
repeated, in nanoseconds per command; a rough figure on a busy machine).

Build the binary first:

    cargo build --profile bench -p smtp-proto-benches --bin profile
    python3 benches/per_line.py [--iterations 100] [--no-callgrind]

Only the Python standard library is used; callgrind comes from valgrind.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROFILE = os.path.join(ROOT, "target", "release", "profile")
SAMPLE = os.path.join(HERE, "inputs", "commands.txt")  # the sample `profile` embeds
GROUPS = {"ours": "command_line", "stalwart": "command_line_stalwart"}


def stderr_match(argv, pattern):
    """Runs `argv` and returns the match of `pattern` in its stderr."""
    err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    m = re.search(pattern, err)
    if not m:
        sys.exit(f"unexpected output from {argv[0]}: {err!r}")
    return m


def run_profile(group, line, iterations):
    """Returns (items, fastest ms) from one plain run."""
    m = stderr_match(
        [PROFILE, group, str(line), str(iterations)],
        r"(\d+) items per iteration, \d+ iterations, fastest ([0-9.]+) ms",
    )
    return int(m.group(1)), float(m.group(2))


def instructions(group, line):
    """Instructions spent in the profile binary's work function, one pass."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        m = stderr_match(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--toggle-collect=*profile::work*",
                PROFILE,
                group,
                str(line),
                "1",
            ],
            r"Collected : (\d+)",
        )
    return int(m.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(PROFILE):
        sys.exit(f"{PROFILE} is missing: build it first (see --help)")
    with open(SAMPLE, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()

    head = "| # | command | ns ours | ns stalwart | stalwart/ours (time)"
    rule = "|--:|---------|--------:|------------:|--------------------:"
    if not args.no_callgrind:
        head += " | instr ours | instr stalwart | stalwart/ours (instr)"
        rule += "|-----------:|---------------:|---------------------:"
    print(head + " |")
    print(rule + "|")
    for n, text in enumerate(lines):
        shown = text if len(text) <= 40 else text[:39] + "…"
        row = [str(n), f"`{shown}`"]
        ns = {}
        counts = {}
        for who, group in GROUPS.items():
            items, ms = run_profile(group, n, args.iterations)
            ns[who] = ms * 1e6 / items
            if not args.no_callgrind:
                counts[who] = instructions(group, n) / items
        row += [f"{ns['ours']:.1f}", f"{ns['stalwart']:.1f}", f"{ns['stalwart'] / ns['ours']:.2f}×"]
        if counts:
            row += [
                f"{counts['ours']:,.0f}",
                f"{counts['stalwart']:,.0f}",
                f"{counts['stalwart'] / counts['ours']:.2f}×",
            ]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
