#!/usr/bin/env python3
"""Print the smtp-proto benchmark results as a table with ratios.

Reads criterion's saved results, <criterion>/<group>/<function>/<baseline>/
{estimates.json,benchmark.json}, and the item counts the bench saves in
<criterion>/smtp-proto-benches-items.json. For every group it prints each
function's time per iteration, throughput in MB/s (10^6 bytes per second) and
items per second where the group counts items (commands, replies), then two
throughput ratios for our functions:

  ours/stalwart  our throughput over the smtp-proto 0.2.5 crate's
  ours/memcpy    our throughput over a plain copy of the same bytes

Above 1.0 means ours is faster. Where a group counts items the ratio compares
items per second (the encoders write different bytes for the same reply),
otherwise bytes per second.

Usage: python3 benches/ratios.py [--dir target/criterion] [--baseline new]
                                 [--ours PREFIX]
Only the Python standard library is used.
"""

import argparse
import json
import os
import sys

# Groups in the order the bench defines them; unknown groups follow, sorted.
GROUP_ORDER = [
    "command_parse",
    "reply_parse_ehlo",
    "data_decode",
    "bdat_decode",
    "dot_stuff",
    "command_encode",
    "reply_encode",
    "session",
]
ITEMS_FILE = "smtp-proto-benches-items.json"


def default_dir():
    """Criterion's output directory, found the way criterion finds it."""
    if os.environ.get("CRITERION_HOME"):
        return os.environ["CRITERION_HOME"]
    if os.environ.get("CARGO_TARGET_DIR"):
        return os.path.join(os.environ["CARGO_TARGET_DIR"], "criterion")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(repo, "target", "criterion")


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def throughput_bytes(benchmark):
    """Bytes per iteration from benchmark.json, or None."""
    tp = benchmark.get("throughput") or {}
    for key in ("Bytes", "BytesDecimal"):
        if key in tp:
            return tp[key]
    if "ElementsAndBytes" in tp:
        return tp["ElementsAndBytes"]["bytes"]
    return None


def read_results(root, baseline):
    """{group: {function: {"ns": float, "bytes": int|None}}}"""
    results = {}
    for group in sorted(os.listdir(root)):
        group_dir = os.path.join(root, group)
        if not os.path.isdir(group_dir) or group == "report":
            continue
        for function in sorted(os.listdir(group_dir)):
            run_dir = os.path.join(group_dir, function, baseline)
            est_path = os.path.join(run_dir, "estimates.json")
            bench_path = os.path.join(run_dir, "benchmark.json")
            if not (os.path.isfile(est_path) and os.path.isfile(bench_path)):
                continue
            est = load_json(est_path)
            bench = load_json(bench_path)
            # Criterion's typical value: the slope under linear sampling,
            # the mean under flat sampling.
            typical = est.get("slope") or est["mean"]
            results.setdefault(bench.get("group_id", group), {})[
                bench.get("function_id") or function
            ] = {
                "ns": typical["point_estimate"],
                "bytes": throughput_bytes(bench),
            }
    return results


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3f} {unit}"
    return f"{ns:.1f} ns"


def fmt_rate(per_s):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.2f} {unit}"
    return f"{per_s:.1f}"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=default_dir(),
                        help="criterion output directory (default: %(default)s)")
    parser.add_argument("--baseline", default="new",
                        help="saved baseline to read (default: %(default)s)")
    parser.add_argument("--ours", default="smtp-proto",
                        help="functions whose names start with this are ours "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)

    if not os.path.isdir(args.dir):
        print(f"no criterion results in {args.dir}; run "
              "`cargo bench -p smtp-proto-benches` first", file=sys.stderr)
        return 1
    results = read_results(args.dir, args.baseline)
    if not results:
        print(f"no '{args.baseline}' results under {args.dir}", file=sys.stderr)
        return 1
    items_path = os.path.join(args.dir, ITEMS_FILE)
    items = load_json(items_path) if os.path.isfile(items_path) else {}

    order = [g for g in GROUP_ORDER if g in results]
    order += sorted(g for g in results if g not in GROUP_ORDER)

    header = ("group", "function", "time", "MB/s", "items/s",
              "ours/stalwart", "ours/memcpy")
    rows = []
    for group in order:
        funcs = results[group]
        group_items = items.get(group)

        def rate(name):
            r = funcs.get(name)
            if r is None:
                return None
            if group_items and name != "memcpy":
                return group_items["items"] / r["ns"]
            return r["bytes"] / r["ns"] if r["bytes"] else None

        def byte_rate(name):
            r = funcs.get(name)
            return r["bytes"] / r["ns"] if r and r["bytes"] else None

        def ordered(name):
            if name.startswith(args.ours):
                return (0, name)
            return ({"stalwart": 1, "memcpy": 2}.get(name, 3), name)

        for name in sorted(funcs, key=ordered):
            r = funcs[name]
            mbs = f"{r['bytes'] / r['ns'] * 1e3:.1f}" if r["bytes"] else ""
            per_item = ""
            if group_items and name != "memcpy":
                per_s = group_items["items"] / r["ns"] * 1e9
                per_item = f"{fmt_rate(per_s)} {group_items['unit']}/s"
            vs_stalwart = vs_memcpy = ""
            if name.startswith(args.ours):
                mine, theirs = rate(name), rate("stalwart")
                if mine and theirs:
                    vs_stalwart = f"{mine / theirs:.2f}x"
                mine_b, copy_b = byte_rate(name), byte_rate("memcpy")
                if mine_b and copy_b:
                    vs_memcpy = f"{mine_b / copy_b:.2f}x"
            rows.append((group, name, fmt_time(r["ns"]), mbs, per_item,
                         vs_stalwart, vs_memcpy))

    widths = [max(len(str(row[i])) for row in rows + [header])
              for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def line(row):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))

    print(line(header))
    print("  ".join("-" * w for w in widths))
    previous = None
    for row in rows:
        shown = row if row[0] != previous else ("",) + row[1:]
        previous = row[0]
        print(line(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
