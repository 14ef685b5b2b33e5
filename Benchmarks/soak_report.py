#!/usr/bin/env python3
"""The soak's report (Benchmarks/run.sh --soak): server RSS after N one-word prompts.

Reads the JSON lines run.sh recorded (system soak-current / soak-baseline, variant
none / sqlite, one line per checkpoint) and writes $OUT/soak.md and $OUT/soak.json.
"""
import argparse
import json
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--baseline", default="")
    parser.add_argument("--load-before", default="")
    parser.add_argument("--load-after", default="")
    args = parser.parse_args()

    rows = []
    with open(args.results) as results:
        for line in results:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            if record.get("bench") == "soak":
                rows.append(record)

    def server_name(system):
        return system.removeprefix("soak-")

    order = {"baseline": 0, "current": 1}
    rows.sort(key=lambda r: (order.get(server_name(r["system"]), 2), r["variant"], r["prompts"]))
    checkpoints = sorted({int(r["prompts"]) for r in rows})

    lines = [
        "# Soak: server RSS after N one-word prompts (issue #12)",
        "",
        f"Commit {args.commit}. Load average before {args.load_before}, after {args.load_after}.",
    ]
    if args.baseline:
        lines.append(f"Baseline server: `{args.baseline}`.")
    lines += [
        "",
        "One session, one connection, sequential prompts of one word to the echo backend,",
        "1,000 warm-up prompts first; RSS is the lowest of three readings after a 300 ms",
        "settle (VmRSS). Growth = (RSS at N - RSS after the warm-up) / N.",
        "",
        "| server | store | RSS after warm-up (MiB) | "
        + " | ".join(f"RSS after {n:,} (MiB)" for n in checkpoints)
        + f" | growth per prompt at {checkpoints[-1]:,} (bytes) | prompts/s |"
        if checkpoints else "(no results)",
    ]
    if checkpoints:
        lines.append("|" + "---|" * (5 + len(checkpoints)))
    groups = {}
    for record in rows:
        groups.setdefault((server_name(record["system"]), record["variant"]), []).append(record)
    summary = []
    for (server, store), records in groups.items():
        by_count = {int(r["prompts"]): r for r in records}
        base = records[0]["rss_base_kib"] / 1024
        cells = [f"{by_count[n]['rss_kib'] / 1024:.1f}" if n in by_count else "-" for n in checkpoints]
        last = records[-1]
        store_name = "SQLite" if store == "sqlite" else "none (memory)"
        lines.append(
            f"| {server} | {store_name} | {base:.1f} | " + " | ".join(cells)
            + f" | {last['bytes_per_prompt']:.0f} | {last['prompts_per_s']:.0f} |"
        )
        summary.append({
            "server": server,
            "store": store,
            "rss_base_kib": records[0]["rss_base_kib"],
            "rss_kib": {str(int(r["prompts"])): r["rss_kib"] for r in records},
            "bytes_per_prompt": last["bytes_per_prompt"],
            "prompts_per_s": last["prompts_per_s"],
        })

    os.makedirs(args.out, exist_ok=True)
    markdown = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "soak.md"), "w") as out:
        out.write(markdown)
    with open(os.path.join(args.out, "soak.json"), "w") as out:
        json.dump({"commit": args.commit, "baseline": args.baseline, "results": summary}, out, indent=2)
    print(markdown)


if __name__ == "__main__":
    main()
