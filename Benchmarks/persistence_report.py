#!/usr/bin/env python3
"""Aggregates the JSON lines of `run.sh --persistence` (issue #8): stream throughput
with persistence off and on (median, min-max, on/off ratio of the medians and the
median of the per-repetition ratios), server CPU per chunk, store-level reload and
end-to-end startup on a state directory of 10,000 sessions; writes persistence.md
and persistence.json next to latest.md."""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("--results", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--commit", default="unknown")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--load-before", default="?")
ap.add_argument("--load-after", default="?")
args = ap.parse_args()

rows = [json.loads(line) for line in open(args.results) if line.strip()]
groups = defaultdict(list)
for row in rows:
    groups[(row["system"], row["pin"], row["variant"])].append(row)


def values(system, pin, variant, metric):
    return [r[metric] for r in groups.get((system, pin, variant), []) if r.get(metric) is not None]


def agg(system, pin, variant, metric):
    v = values(system, pin, variant, metric)
    return (statistics.median(v), min(v), max(v), len(v)) if v else None


def fmt(a, digits=0, scale=1.0):
    if a is None:
        return "—"
    med, lo, hi, _ = a
    f = f"{{:,.{digits}f}}"
    return f"{f.format(med * scale)} ({f.format(lo * scale)}–{f.format(hi * scale)})"


def paired_ratios(pin, metric):
    """on ÷ off for each repetition (the two runs made back to back)."""
    off = {r["rep"]: r[metric] for r in groups.get(("persist-off", pin, "stream"), [])}
    on = {r["rep"]: r[metric] for r in groups.get(("persist-on", pin, "stream"), [])}
    return [on[k] / off[k] for k in sorted(off) if k in on and off[k]]


try:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
except Exception:
    cpu = platform.processor()
summary = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": args.commit, "reps": args.reps, "machine": f"{cpu}, {os.cpu_count()} vCPU, Linux {platform.release()}",
           "load_average_before": args.load_before, "load_average_after": args.load_after,
           "figures": {}, "ratios": {}, "targets": []}
for key, items in groups.items():
    metrics = sorted({m for r in items for m, v in r.items() if isinstance(v, (int, float)) and m != "rep"})
    summary["figures"]["/".join(key)] = {m: dict(zip(("median", "min", "max", "n"), agg(*key, m))) for m in metrics
                                         if agg(*key, m)}

pin_title = {"same": "one core (server and client on CPU 0)", "split": "two cores (server CPU 0, client CPU 1)"}
pins = [p for p in ("same", "split") if ("persist-off", p, "stream") in groups or ("persist-on", p, "startup-reload") in groups]
md = [f"Run: {summary['date']}, commit `{args.commit}`, {args.reps} repetitions per figure (median, min–max in "
      f"parentheses), persistence off and on alternated within each repetition. Machine: {summary['machine']}. "
      f"Load average (1/5/15 min) before: {args.load_before}, after: {args.load_after}.\n"]
targets = []
for pin in pins:
    md.append(f"### Persistence, pinning: {pin_title[pin]}\n")
    md.append("**Stream** (one prompt of 100,000 32-byte words to the echo backend, as in the stream figure; "
              "server CPU: user + system of the whole server process from before the client starts until the "
              "store's writer is idle again, ÷ 101,000 chunks including the warm-up turn)\n")
    md.append("| server | chunks/s | steady chunks/s | first chunk ms | server CPU µs per chunk |")
    md.append("| --- | --- | --- | --- | --- |")
    for system, title in (("persist-off", "`--state-dir none` (memory)"), ("persist-on", "`--state-dir DIR` (SQLite)")):
        md.append(f"| {title} | {fmt(agg(system, pin, 'stream', 'chunks_per_s'))} "
                  f"| {fmt(agg(system, pin, 'stream', 'steady_chunks_per_s'))} "
                  f"| {fmt(agg(system, pin, 'stream', 'first_chunk_ms'), 1)} "
                  f"| {fmt(agg(system, pin, 'server-cpu', 'us_per_chunk'), 2)} |")
    md.append("")
    r = {}
    off, on = agg("persist-off", pin, "stream", "chunks_per_s"), agg("persist-on", pin, "stream", "chunks_per_s")
    if off and on:
        r["stream_on_over_off"] = on[0] / off[0]
    soff, son = agg("persist-off", pin, "stream", "steady_chunks_per_s"), agg("persist-on", pin, "stream", "steady_chunks_per_s")
    if soff and son:
        r["steady_on_over_off"] = son[0] / soff[0]
    paired = paired_ratios(pin, "chunks_per_s")
    if paired:
        r["stream_on_over_off_paired_median"] = statistics.median(paired)
        r["stream_on_over_off_paired"] = paired
    coff, con = agg("persist-off", pin, "server-cpu", "us_per_chunk"), agg("persist-on", pin, "server-cpu", "us_per_chunk")
    if coff and con:
        r["server_cpu_on_over_off"] = con[0] / coff[0]
    md.append("| ratio (on ÷ off) | value | target |")
    md.append("| --- | --- | --- |")
    md.append(f"| chunks/s, medians | {r.get('stream_on_over_off', float('nan')):.3f} | ≥ 0.80 |")
    if paired:
        md.append(f"| chunks/s, per repetition (median; all) | {r['stream_on_over_off_paired_median']:.3f} "
                  f"({', '.join(f'{x:.3f}' for x in paired)}) | |")
    md.append(f"| steady chunks/s, medians | {r.get('steady_on_over_off', float('nan')):.3f} | |")
    md.append(f"| server CPU per chunk, medians | {r.get('server_cpu_on_over_off', float('nan')):.3f} | |")
    md.append("")
    if "stream_on_over_off" in r:
        v = r["stream_on_over_off"]
        targets.append({"target": f"persistence costs ≤ 20 % of stream chunks/s (on ÷ off ≥ 0.80) [{pin}]",
                        "value": round(v, 3), "limit": 0.8, "met": v >= 0.8, "detail": ""})

    md.append("**Startup** (spawn → first answered status call; with 10,000 sessions the first answer must "
              "already count them)\n")
    md.append("| server | ms |")
    md.append("| --- | --- |")
    md.append(f"| `--state-dir none` | {fmt(agg('persist-off', pin, 'startup', 'first_status_ms'), 1)} |")
    md.append(f"| new, empty state directory | {fmt(agg('persist-on', pin, 'startup-empty', 'first_status_ms'), 1)} |")
    reload = agg("persist-on", pin, "startup-reload", "first_status_ms")
    md.append(f"| state directory with 10,000 sessions × 10 turns | {fmt(reload, 1)} |")
    md.append("")
    if reload:
        targets.append({"target": f"reload of 10,000 sessions × 10 turns, spawn → first answer < 2 s [{pin}]",
                        "value": round(reload[0], 1), "limit": 2000, "met": reload[0] < 2000, "detail": "ms"})
    summary["ratios"][pin] = r

store = [r for r in rows if r["system"] == "store" and r["variant"] == "reload"]
size = agg("store", "same", "size", "mib")
if store:
    md.append("### Store-level reload (store-bench, CPU 0, same process: `open` incl. `PRAGMA quick_check`, then `load`)\n")
    md.append(f"Database of {store[0].get('sessions', 0):,} sessions, {store[0].get('turns', 0):,} turns, 4 chunks of 64 B "
              f"each: {fmt(size, 1)} MiB on disk.\n")
    md.append("| figure | s |")
    md.append("| --- | --- |")
    for metric, title in (("open_s", "open"), ("load_s", "load"), ("total_s", "open + load")):
        md.append(f"| {title} | {fmt(agg('store', 'same', 'reload', metric), 3)} |")
    md.append("")
    total = agg("store", "same", "reload", "total_s")
    if total:
        targets.append({"target": "store-level reload (open + load) of 10,000 sessions × 10 turns < 2 s",
                        "value": round(total[0], 3), "limit": 2, "met": total[0] < 2, "detail": "s"})

md.append("### Targets\n")
md.append("| target | value | met |")
md.append("| --- | --- | --- |")
for t in targets:
    md.append(f"| {t['target']} | {t['value']}{(' ' + t['detail']) if t['detail'] else ''} | {'yes' if t['met'] else '**no**'} |")
md.append("")
summary["targets"] = targets

os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "persistence.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
with open(os.path.join(args.out, "persistence.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("\n".join(md))
print(f"report: wrote {args.out}/persistence.md, persistence.json")
