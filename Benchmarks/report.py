#!/usr/bin/env python3
"""Aggregates run.sh's JSON lines: median (min-max) of the repetitions, ratios,
targets, a markdown table, latest.json and a latency-distribution PNG."""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("--results", required=True)
ap.add_argument("--samples", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--commit", default="unknown")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--micro", default="")
ap.add_argument("--micro-now", default="")
ap.add_argument("--thresholds", default="")
ap.add_argument("--load-before", default="?")
ap.add_argument("--load-after", default="?")
args = ap.parse_args()

rows = [json.loads(line) for line in open(args.results) if line.strip()]
groups = defaultdict(list)
for row in rows:
    groups[(row["system"], row["pin"], row["variant"])].append(row)


def agg(system, pin, variant, metric):
    """(median, min, max, n) of a metric over the repetitions, or None."""
    values = [r[metric] for r in groups.get((system, pin, variant), []) if r.get(metric) is not None]
    if not values:
        return None
    return (statistics.median(values), min(values), max(values), len(values))


def fmt(a, digits=1, scale=1.0):
    if a is None:
        return "—"
    med, lo, hi, _ = a
    f = f"{{:,.{digits}f}}"
    return f"{f.format(med * scale)} ({f.format(lo * scale)}–{f.format(hi * scale)})"


def ratio(x, y):
    if x is None or y is None or y[0] == 0:
        return None
    return x[0] / y[0]


def fr(r, digits=2):
    return "—" if r is None else f"{r:.{digits}f}×"


pins = [p for p in ("same", "split") if any(k[1] == p for k in groups)]
pin_title = {"same": "one core (server and client on CPU 0)", "split": "two cores (server CPU 0, client CPU 1)"}
systems_unary = [("raw", "raw socket (limit)"), ("switchboard", "Switchboard, Swift client"),
                 ("switchboard-nio", "Switchboard, Swift client, NIO global executor"),
                 ("switchboard-c", "Switchboard, C client"), ("grpc-default", "grpc-swift-2, default"),
                 ("grpc-nio-executor", "grpc-swift-2, NIO global executor")]

summary = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": args.commit, "reps": args.reps, "figures": {}, "ratios": {}, "targets": []}
try:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
except Exception:
    cpu = platform.processor()
summary["machine"] = f"{cpu}, {os.cpu_count()} vCPU, Linux {platform.release()}"
for key, items in groups.items():
    metrics = sorted({m for r in items for m, v in r.items() if isinstance(v, (int, float)) and m != "rep"})
    summary["figures"]["/".join(key)] = {m: dict(zip(("median", "min", "max", "n"), agg(*key, m))) for m in metrics
                                         if agg(*key, m)}

md = []
summary["load_average_before"] = args.load_before
summary["load_average_after"] = args.load_after
md.append(f"Run: {summary['date']}, commit `{args.commit}`, {args.reps} repetitions per figure "
          f"(median, min–max in parentheses). Machine: {summary['machine']}. "
          f"Load average (1/5/15 min) before the run: {args.load_before}, after: {args.load_after}.\n")

targets = []


def target(name, value, limit, ok, detail):
    targets.append({"target": name, "value": value, "limit": limit, "met": ok, "detail": detail})


for pin in pins:
    md.append(f"### Pinning: {pin_title[pin]}\n")
    md.append("**Unary round trip** (GetServerStatus; raw: 48-byte ping-pong)\n")
    md.append("| system | p50 µs | p99 µs | calls/s sequential | calls/s 16 concurrent | p50 µs 16 conc. | p99 µs 16 conc. |")
    md.append("| --- | --- | --- | --- | --- | --- | --- |")
    for sys_key, title in systems_unary:
        if (sys_key, pin, "unary-seq") not in groups:
            md.append(f"| {title} | not measured | | | | | |")
            continue
        md.append(f"| {title} | {fmt(agg(sys_key, pin, 'unary-seq', 'p50_us'))} | {fmt(agg(sys_key, pin, 'unary-seq', 'p99_us'))} "
                  f"| {fmt(agg(sys_key, pin, 'unary-seq', 'calls_per_s'), 0)} | {fmt(agg(sys_key, pin, 'unary-c16', 'calls_per_s'), 0)} "
                  f"| {fmt(agg(sys_key, pin, 'unary-c16', 'p50_us'))} | {fmt(agg(sys_key, pin, 'unary-c16', 'p99_us'))} |")
    md.append("")

    raw_p50 = agg("raw", pin, "unary-seq", "p50_us")
    sb_p50 = agg("switchboard", pin, "unary-seq", "p50_us")
    sbc_p50 = agg("switchboard-c", pin, "unary-seq", "p50_us")
    r = {}
    r["unary_p50_switchboard_over_raw"] = ratio(sb_p50, raw_p50)
    r["unary_p50_switchboard_c_over_raw"] = ratio(sbc_p50, raw_p50)
    r["unary_p50_switchboard_nio_over_raw"] = ratio(agg("switchboard-nio", pin, "unary-seq", "p50_us"), raw_p50)
    r["unary_p99_switchboard_over_raw"] = ratio(agg("switchboard", pin, "unary-seq", "p99_us"), agg("raw", pin, "unary-seq", "p99_us"))
    r["unary_seq_cost_switchboard_over_raw"] = ratio(agg("raw", pin, "unary-seq", "calls_per_s"), agg("switchboard", pin, "unary-seq", "calls_per_s"))
    r["unary_c16_cost_switchboard_over_raw"] = ratio(agg("raw", pin, "unary-c16", "calls_per_s"), agg("switchboard", pin, "unary-c16", "calls_per_s"))
    for g in ("grpc-default", "grpc-nio-executor"):
        r[f"unary_p50_{g}_over_switchboard"] = ratio(agg(g, pin, "unary-seq", "p50_us"), sb_p50)
        r[f"unary_p99_{g}_over_switchboard"] = ratio(agg(g, pin, "unary-seq", "p99_us"), agg("switchboard", pin, "unary-seq", "p99_us"))
        r[f"unary_c16_cost_{g}_over_switchboard"] = ratio(agg("switchboard", pin, "unary-c16", "calls_per_s"), agg(g, pin, "unary-c16", "calls_per_s"))

    md.append("**Stream** (one prompt, 32-byte chunks from the echo backend with no delay; raw: one-way 4+32-byte frames)\n")
    md.append("| system | chunks/s | MB/s (payload) | steady chunks/s (after first chunk) |")
    md.append("| --- | --- | --- | --- |")
    stream_rows = [("raw", "stream-single", "raw, one write() per frame"), ("raw", "stream-batched", "raw, 64 KiB writes"),
                   ("switchboard", "stream", "Switchboard, Swift client"),
                   ("switchboard-nio", "stream", "Switchboard, Swift client, NIO global executor"),
                   ("switchboard-c", "stream", "Switchboard, C client"),
                   ("grpc-default", "stream", "grpc-swift-2, default"), ("grpc-nio-executor", "stream", "grpc-swift-2, NIO global executor")]
    for sys_key, variant, title in stream_rows:
        if (sys_key, pin, variant) not in groups:
            md.append(f"| {title} | not measured | | |")
            continue
        md.append(f"| {title} | {fmt(agg(sys_key, pin, variant, 'chunks_per_s'), 0)} | {fmt(agg(sys_key, pin, variant, 'mb_per_s'), 1)} "
                  f"| {fmt(agg(sys_key, pin, variant, 'steady_chunks_per_s'), 0)} |")
    md.append("")
    sb_cps = agg("switchboard", pin, "stream", "chunks_per_s")
    r["stream_cost_switchboard_over_raw_single"] = ratio(agg("raw", pin, "stream-single", "chunks_per_s"), sb_cps)
    r["stream_cost_switchboard_over_raw_batched"] = ratio(agg("raw", pin, "stream-batched", "chunks_per_s"), sb_cps)
    for g in ("grpc-default", "grpc-nio-executor"):
        r[f"stream_cost_{g}_over_switchboard"] = ratio(sb_cps, agg(g, pin, "stream", "chunks_per_s"))

    md.append("**Status under load** (GetServerStatus on its own connection, one call per ms for 5,000 calls after 2 s of "
              "settling; server with --echo-delay 100ms: 1,000 mid-turn sessions stream ~10,000 chunks/s in all)\n")
    md.append("| server | p50 µs | p99 µs | turns in flight (min) | load chunks/s |")
    md.append("| --- | --- | --- | --- | --- |")
    for variant, title in (("status-idle", "idle"), ("status-busy", "1,000 sessions mid-turn")):
        md.append(f"| {title} | {fmt(agg('switchboard', pin, variant, 'p50_us'))} | {fmt(agg('switchboard', pin, variant, 'p99_us'))} "
                  f"| {fmt(agg('switchboard', pin, variant, 'min_turns_in_flight'), 0)} | {fmt(agg('switchboard', pin, variant, 'load_chunks_per_s'), 0)} |")
    md.append("")
    r["status_p99_busy_over_idle"] = ratio(agg("switchboard", pin, "status-busy", "p99_us"), agg("switchboard", pin, "status-idle", "p99_us"))
    r["status_p50_busy_over_idle"] = ratio(agg("switchboard", pin, "status-busy", "p50_us"), agg("switchboard", pin, "status-idle", "p50_us"))
    startup = agg("switchboard", pin, "startup", "first_status_ms")
    md.append(f"**Startup** (process start → first answered status call): {fmt(startup, 1)} ms\n")

    md.append("**Ratios** (cost ratios, medians: time per call or per chunk; <1 means the numerator is cheaper)\n")
    md.append("| ratio | value | target |")
    md.append("| --- | --- | --- |")
    labels = [
        ("unary_p50_switchboard_over_raw", "unary p50: Switchboard (Swift) ÷ raw", "≤ 3×"),
        ("unary_p50_switchboard_c_over_raw", "unary p50: Switchboard (C) ÷ raw", "≤ 2×"),
        ("unary_p50_switchboard_nio_over_raw", "unary p50: Switchboard (Swift, NIO executor) ÷ raw", ""),
        ("unary_p99_switchboard_over_raw", "unary p99: Switchboard (Swift) ÷ raw", ""),
        ("unary_seq_cost_switchboard_over_raw", "sequential calls/s: raw ÷ Switchboard", ""),
        ("unary_c16_cost_switchboard_over_raw", "16-concurrent calls/s: raw ÷ Switchboard", ""),
        ("unary_p50_grpc-default_over_switchboard", "unary p50: gRPC default ÷ Switchboard", "≥ 8×"),
        ("unary_p50_grpc-nio-executor_over_switchboard", "unary p50: gRPC NIO-executor ÷ Switchboard", "≥ 8×"),
        ("unary_p99_grpc-default_over_switchboard", "unary p99: gRPC default ÷ Switchboard", ""),
        ("unary_c16_cost_grpc-default_over_switchboard", "16-concurrent calls/s: Switchboard ÷ gRPC default", ""),
        ("unary_c16_cost_grpc-nio-executor_over_switchboard", "16-concurrent calls/s: Switchboard ÷ gRPC NIO-executor", ""),
        ("stream_cost_switchboard_over_raw_single", "stream chunks/s: raw one-write-per-frame ÷ Switchboard", ""),
        ("stream_cost_switchboard_over_raw_batched", "stream chunks/s: raw batched ÷ Switchboard", ""),
        ("stream_cost_grpc-default_over_switchboard", "stream chunks/s: Switchboard ÷ gRPC default", "≥ 10×"),
        ("stream_cost_grpc-nio-executor_over_switchboard", "stream chunks/s: Switchboard ÷ gRPC NIO-executor", "≥ 10×"),
        ("status_p50_busy_over_idle", "status p50: 1,000 mid-turn ÷ idle", ""),
        ("status_p99_busy_over_idle", "status p99: 1,000 mid-turn ÷ idle", "≤ 2×"),
    ]
    for key, title, tgt in labels:
        md.append(f"| {title} | {fr(r.get(key))} | {tgt} |")
    md.append("")
    summary["ratios"][pin] = r

    # targets (per pinning)
    def chk(key, name, limit, cmp):
        v = r.get(key)
        if v is not None:
            target(f"{name} [{pin}]", round(v, 2), limit, cmp(v), "")
    chk("unary_p50_switchboard_c_over_raw", "unary p50 C client ≤ 2× raw", 2, lambda v: v <= 2)
    chk("unary_p50_switchboard_over_raw", "unary p50 Swift client ≤ 3× raw", 3, lambda v: v <= 3)
    chk("unary_p50_grpc-default_over_switchboard", "gRPC (default) unary p50 ≥ 8× Switchboard", 8, lambda v: v >= 8)
    chk("unary_p50_grpc-nio-executor_over_switchboard", "gRPC (NIO executor) unary p50 ≥ 8× Switchboard", 8, lambda v: v >= 8)
    chk("stream_cost_grpc-default_over_switchboard", "Switchboard stream chunks/s ≥ 10× gRPC (default)", 10, lambda v: v >= 10)
    chk("stream_cost_grpc-nio-executor_over_switchboard", "Switchboard stream chunks/s ≥ 10× gRPC (NIO executor)", 10, lambda v: v >= 10)
    if sb_cps:
        target(f"≥ 1,000,000 chunks/s into the Swift client [{pin}]", round(sb_cps[0]), 1_000_000, sb_cps[0] >= 1_000_000, "")
    chk("status_p99_busy_over_idle", "status p99 with 1,000 mid-turn ≤ 2× idle", 2, lambda v: v <= 2)
    if startup:
        target(f"first answered call ≤ 50 ms after start [{pin}]", round(startup[0], 1), 50, startup[0] <= 50, "ms")

mem_pin = "split" if "split" in pins else (pins[0] if pins else None)
if mem_pin:
    sess = agg("switchboard", mem_pin, "sessions", "bytes_per_session")
    conn = agg("switchboard", mem_pin, "connections", "bytes_per_connection")
    md.append("### Memory (server RSS growth, pinning: split)\n")
    md.append("| figure | bytes | target |")
    md.append("| --- | --- | --- |")
    md.append(f"| per idle session (100,000 sessions) | {fmt(sess, 0)} | ≤ 2,048 |")
    md.append(f"| per idle connection (1,000 connections) | {fmt(conn, 0)} | ≤ 32,768 |")
    md.append("")
    if sess:
        target("≤ 2 KiB per idle session", round(sess[0]), 2048, sess[0] <= 2048, "bytes")
    if conn:
        target("≤ 32 KiB per idle connection", round(conn[0]), 32768, conn[0] <= 32768, "bytes")

if args.micro and os.path.exists(args.micro):
    ok_path = os.path.join(os.path.dirname(args.micro), "micro.ok")
    ok = os.path.exists(ok_path) and open(ok_path).read().strip() == "1"
    summary["micro_thresholds_ok"] = ok
    md.append(f"### Micro-benchmarks (ordo-one/benchmark, p90; thresholds in `Benchmarks/Thresholds/`): "
              f"{'all within thresholds' if ok else 'THRESHOLD CHECK FAILED (see results/raw/micro.txt)'}\n")
    md.append("| benchmark | ns per op (this run) | allocations per op (this run) | threshold ns | threshold allocations |")
    md.append("| --- | --- | --- | --- | --- |")
    micro = {}
    for path in sorted(glob.glob(os.path.join(args.micro_now or "/nonexistent", "*.p90.json"))):
        name = os.path.basename(path)[len("SwitchboardMicro."):-len(".p90.json")]
        now = json.load(open(path))
        ref_path = os.path.join(args.thresholds, os.path.basename(path))
        ref = json.load(open(ref_path)) if os.path.exists(ref_path) else {}
        # Benchmarks scaled by .kilo report per 1,000 operations; the others per operation.
        scale = 1 if ("ListSessions100" in name or "FrameReader" in name) else 1000
        unit = " (per call: 100 sessions)" if "ListSessions100" in name else (" (per call: 64 frames)" if "FrameReader" in name else "")
        row = {k: v / scale for k, v in now.items()}
        micro[name] = row
        md.append(f"| {name}{unit} | {row.get('wallClock', 0):,.0f} | {row.get('mallocCountTotal', 0):,.1f} "
                  f"| {ref.get('wallClock', 0) / scale:,.0f} | {ref.get('mallocCountTotal', 0) / scale:,.1f} |")
    md.append("")
    summary["micro"] = micro

md.append("### Targets\n")
md.append("| target | value | met |")
md.append("| --- | --- | --- |")
for t in targets:
    md.append(f"| {t['target']} | {t['value']}{(' ' + t['detail']) if t['detail'] else ''} | {'yes' if t['met'] else '**no**'} |")
md.append("")
summary["targets"] = targets

os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "latest.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
with open(os.path.join(args.out, "latest.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("\n".join(md))

# ---------------------------------------------------------------- plot
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("report: matplotlib missing (pip install matplotlib): no plot")
    raise SystemExit(0)

series = [("raw", "raw socket"), ("switchboard", "Switchboard (Swift client)"),
          ("switchboard-nio", "Switchboard (Swift client, NIO executor)"), ("switchboard-c", "Switchboard (C client)"),
          ("grpc-default", "grpc-swift-2 default"), ("grpc-nio-executor", "grpc-swift-2 NIO executor"),
          ("status-idle", "status, idle server"), ("status-busy", "status, 1,000 mid-turn")]
fig, axes = plt.subplots(1, len(pins), figsize=(7 * len(pins), 5), squeeze=False)
for ax, pin in zip(axes[0], pins):
    for key, title in series:
        values = []
        for path in sorted(glob.glob(os.path.join(args.samples, f"{key}-{pin}-*.txt"))):
            values += [float(x) for x in open(path) if x.strip()]
        if not values:
            continue
        values.sort()
        n = len(values)
        ys = [(i + 1) / n for i in range(n)]
        style = "--" if key.startswith("status") else "-"
        ax.plot(values, ys, style, label=f"{title} (p50 {values[n // 2]:.0f} µs)")
    ax.set_xscale("log")
    ax.set_xlabel("round-trip latency, µs (log)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_title(f"Unary latency CDF — {pin_title[pin]}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
fig.suptitle(f"Switchboard benchmarks {summary['date']} ({args.commit[:12]})", fontsize=10)
fig.tight_layout()
fig.savefig(os.path.join(args.out, "latency.png"), dpi=110)
print(f"report: wrote {args.out}/latest.json, latest.md, latency.png")
