"""Turn one run's results into a markdown report and a PNG of the ratios."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

DBS = {"sqlite": "SQLite (WAL, synchronous=FULL)", "postgresql": "PostgreSQL 15"}
LIMIT_KEY = {"sqlite": "sqlite", "postgresql": "pg"}


def _vals(rounds: list[dict[str, Any]] | None, key: str) -> list[float]:
    return [float(r[key]) for r in rounds or [] if key in r]


def med(rounds: list[dict[str, Any]] | None, key: str) -> float | None:
    values = _vals(rounds, key)
    return statistics.median(values) if values else None


def cell(rounds: list[dict[str, Any]] | None, key: str, digits: int = 0) -> str:
    """median [min-max] of a figure over the repetitions."""
    values = _vals(rounds, key)
    if not values:
        return "n/a"
    f = f"{{:.{digits}f}}"
    if len(values) == 1:
        return f.format(values[0])
    return f"{f.format(statistics.median(values))} [{f.format(min(values))}-{f.format(max(values))}]"


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def write(md_path: Path, png_path: Path, run: Any, plan: Any, elapsed: float, quick: bool) -> str:
    res = run.results
    # Runtimes measured by any per-runtime phase (a run with --only recovery has no workflows/ keys).
    labels = sorted({k.split("/")[2] for k in res if k.split("/")[0] in ("workflows", "messages", "recovery", "growth")},
                    key=lambda x: (x != "ours", x))
    dbos_labels = [x for x in labels if x != "ours"]
    lines: list[str] = [f"# Benchmark results: {md_path.stem}", ""]
    if quick:
        lines += ["**--quick run: tiny counts, to check the scripts still run. These figures mean nothing.**", ""]
    lines += [f"Run took {elapsed:.0f} s on this machine (2 cores, shared). Figures: median [min-max] of "
              f"{plan.reps} repetitions unless said. Ratios are what to read; absolute numbers move with the "
              "neighbours.", ""]
    limit = res.get("limit", {})
    lines += ["## 1. The ceiling: single-row INSERT+COMMIT through the bare driver", "",
              "| database | threads | commits/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for db in DBS:
        for threads in (1, 8):
            rounds = limit.get(f"{LIMIT_KEY[db]}_{threads}")
            lines.append(f"| {DBS[db]} | {threads} | {cell(rounds, 'commits_per_s')} | {cell(rounds, 'p50_ms', 3)} "
                         f"| {cell(rounds, 'p99_ms', 3)} |")
    targets: list[tuple[str, str, str, bool | None]] = []
    chart: dict[str, dict[str, float]] = {}
    for db in DBS:
        wf = {label: res.get(f"workflows/{db}/{label}") for label in labels}
        rec = {label: res.get(f"recovery/{db}/{label}") for label in labels}
        grow = {label: res.get(f"growth/{db}/{label}") for label in labels}
        head = " | ".join(labels)
        lines += ["", f"## 2. The runtime on {DBS[db]}", "",
                  f"| workload | {head} | ours / best DBOS |", "|---" * (len(labels) + 2) + "|"]

        def row(title: str, section: str, key: str, digits: int = 0, higher_better: bool = True) -> float | None:
            cells = [cell((wf[label] or {}).get(section), key, digits) for label in labels]
            ours = med((wf.get("ours") or {}).get(section), key)
            others = [med((wf[label] or {}).get(section), key) for label in dbos_labels]
            others = [o for o in others if o is not None]
            best = (max(others) if higher_better else min(others)) if others else None
            r = ratio(ours, best) if higher_better else ratio(best, ours)
            lines.append(f"| {title} | {' | '.join(cells)} | {num(r)}{'x' if r else ''} |")
            return r

        seq_raw = row("sequential 3-step workflows/s (1 thread)", "sequential", "wf_per_s")
        row("  raw commits/s on the same database just before (paired ceiling)", "sequential",
            "ceiling_commits_per_s")
        seq_ratio = row("  workflows/s / (paired ceiling / 5)  <- compare this", "sequential", "per_ceiling", 2)
        row("  latency p50 ms (ratio: DBOS/ours)", "sequential", "p50_ms", 2, higher_better=False)
        row("  latency p99 ms (ratio: DBOS/ours)", "sequential", "p99_ms", 2, higher_better=False)
        row("  one step p50 ms, as the workflow sees it", "sequential", "step_p50_ms", 3, higher_better=False)
        thr_raw = row("8 threads: workflows/s", "threads8", "wf_per_s")
        row("  raw commits/s from 8 threads just before (paired ceiling)", "threads8", "ceiling_commits_per_s")
        thr_ratio = row("  workflows/s / (paired ceiling / 5)  <- compare this", "threads8", "per_ceiling", 2)
        row("  latency p50 ms", "threads8", "p50_ms", 2, higher_better=False)
        row("  latency p99 ms", "threads8", "p99_ms", 2, higher_better=False)
        fan_ratio = row(f"start_workflow x{plan.fanout}, wait all: workflows/s", "fanout", "wf_per_s")
        row("  seconds to start all (rows durable)", "fanout", "start_seconds", 2, higher_better=False)

        def single(title: str, section: str, key: str, digits: int) -> list[float | None]:
            values = [(wf[label] or {}).get(section, {}).get(key) for label in labels]
            lines.append(f"| {title} | {' | '.join(num(v, digits) for v in values)} | |")
            return values

        queue_p50 = single("enqueue to start, idle queue: p50 ms", "queue_latency", "p50_ms", 2)
        single("enqueue to start, idle queue: p99 ms", "queue_latency", "p99_ms", 2)
        msg = {label: res.get(f"messages/{db}/{label}") for label in labels}
        msg_p50 = [(msg[label] or {}).get("p50_ms") for label in labels]
        msg_ours = msg_p50[0] if msg_p50 else None  # none with --only phases that skip messages
        lines.append("| send -> recv -> set_event -> get_event, 2 processes: round trip p50 / p99 ms | " + " | ".join(
            f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f}" if m else "n/a" for m in msg.values()) + " | |")
        single("statements sent per workflow (driver)", "cost", "statements_per_wf", 2)
        commits = single("commits per workflow (PG: server xact_commit incl. read-only; SQLite: traced)",
                         "cost", "commits_per_wf", 2)
        single("bytes per step checkpoint row", "bytes", "step_bytes", 0)
        single("bytes per workflow row", "bytes", "workflow_row_bytes", 0)
        rec_cells = []
        for label in labels:
            r = rec[label]
            if not r:
                rec_cells.append("n/a")
                continue
            rounds = r["rounds"]
            n = plan.recovery_ours if label == "ours" else plan.recovery_dbos
            done = [n - x["left_pending"] for x in rounds]
            rate = [d / x["seconds_from_spawn"] for d, x in zip(done, rounds, strict=True)]
            rec_cells.append(f"{cell(rounds, 'seconds_from_spawn', 1)} s for {n}"
                             f"{'' if not any(x['left_pending'] for x in rounds) else ' (timed out)'}; "
                             f"{statistics.median(rate):.0f}/s")
        lines.append(f"| recovery after SIGKILL: restart to none PENDING | {' | '.join(rec_cells)} | |")
        for size in plan.growth_sizes.split(","):
            for metric, title in (("get_status", "get-status"), ("list_first_page", "list 20 ERROR, newest"),
                                  ("enqueue", "enqueue (start_workflow)")):
                vals = []
                for label in labels:
                    g = (grow[label] or {}).get(size, {}).get(metric)
                    vals.append(f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f}" if g else "n/a")
                lines.append(f"| {int(size):,} rows: {title} p50 / p99 ms (1 sample each) | {' | '.join(vals)} | |")
        ours = wf.get("ours") or {}
        floor = med(ours.get("statement_floor"), "wf_per_s")
        seq = med(ours.get("sequential"), "wf_per_s")
        per_ceiling = med(ours.get("sequential"), "per_ceiling")
        paired_ceiling = med(ours.get("sequential"), "ceiling_commits_per_s")
        lines += ["", f"Ours against the ceiling on {DBS[db]}: sequential {num(seq, 0)} workflows/s against a paired "
                  f"ceiling of {num(paired_ceiling, 0)} raw commits/s, i.e. {num(per_ceiling)}x of ceiling/5. "
                  f"The same five statements replayed through the bare driver (no runtime code) reach "
                  f"{num(floor, 0)} workflows/s (runtime at {num(ratio(seq, floor))}x of that): the gap between "
                  "that floor and ceiling/5 is what the runtime's rows and indexes cost the database; the gap "
                  "between the floor and the runtime is its Python."]
        step_vs_commit = [r["step_p50_ms"] / r["ceiling_p50_ms"] for r in ours.get("sequential") or []
                          if r.get("ceiling_p50_ms")]
        step_ratio = statistics.median(step_vs_commit) if step_vs_commit else None
        targets += [
            (f"{db}: sequential >= 0.6x ceiling/5 (paired)", f"{num(per_ceiling)}x", ">= 0.60x",
             None if per_ceiling is None else per_ceiling >= 0.6),
            (f"{db}: sequential vs faster DBOS (ceiling-normalised; raw {num(seq_raw)}x)", f"{num(seq_ratio)}x",
             "3.5-4x", None if seq_ratio is None else seq_ratio >= 3.5),
            (f"{db}: 8 threads vs faster DBOS (ceiling-normalised; raw {num(thr_raw)}x)", f"{num(thr_ratio)}x",
             ">= 3x", None if thr_ratio is None else thr_ratio >= 3),
            (f"{db}: commits per 3-step workflow", num(commits[0] if commits else None), "<= 5",
             None if not commits or commits[0] is None else commits[0] <= 5.05),
            (f"{db}: enqueue to start p50", f"{num(queue_p50[0] if queue_p50 else None)} ms", "< 10 ms",
             None if not queue_p50 or queue_p50[0] is None else queue_p50[0] < 10),
            (f"{db}: cross-process message round trip p50 vs best DBOS", f"{num(msg_ours)} ms",
             "lower", None if msg_ours is None or not [v for v in msg_p50[1:] if v] else
             msg_ours < min(v for v in msg_p50[1:] if v)),
            (f"{db}: step p50 / raw commit p50 (paired)", f"{num(step_ratio)}x", "<= 1.3x",
             None if step_ratio is None else step_ratio <= 1.3),
        ]
        r_ours = rec.get("ours")
        if r_ours:
            secs = r_ours["seconds"]["median"]
            targets.append((f"{db}: {plan.recovery_ours} pending recovered", f"{secs:.1f} s", "< 10 s", secs < 10))
        g_top = (grow.get("ours") or {}).get(plan.growth_sizes.split(",")[-1], {}).get("get_status")
        if g_top:
            targets.append((f"{db}: get-status p99 at {plan.growth_sizes.split(',')[-1]} rows",
                            f"{g_top['p99_ms']:.2f} ms", "< 5 ms", g_top["p99_ms"] < 5))
        chart[db] = {"seq / (ceiling/5)": per_ceiling or 0, "seq vs best DBOS": seq_ratio or 0,
                     "8 threads vs best DBOS": thr_ratio or 0, "fan-out vs best DBOS": fan_ratio or 0}
        http = res.get(f"http/{db}")
        lines += ["", f"## 3. HTTP POST /orders on {DBS[db]} (gunicorn, load from 127.0.0.1)", "",
                  "| workers | durable req/s | plain req/s | durable / plain | durable p50 / p99 ms | "
                  "plain p50 / p99 ms | errors (durable, plain) |", "|---|---|---|---|---|---|---|"]
        for mode in ("sync-2", "gthread-2x8"):
            d, p = (http or {}).get(f"{mode}-durable"), (http or {}).get(f"{mode}-plain")
            r = ratio(med(d, "rps"), med(p, "rps"))
            errs = f"{sum(_vals(d, 'errors')):.0f}, {sum(_vals(p, 'errors')):.0f}"
            lines.append(f"| {mode} | {cell(d, 'rps')} | {cell(p, 'rps')} | {num(r)}x | {cell(d, 'p50_ms', 1)} / "
                         f"{cell(d, 'p99_ms', 1)} | {cell(p, 'p50_ms', 1)} / {cell(p, 'p99_ms', 1)} | {errs} |")
            targets.append((f"{db}: POST /orders durable/plain, {mode}", f"{num(r)}x", ">= 0.6x",
                            None if r is None else r >= 0.6))
            chart[db][f"HTTP durable/plain {mode}"] = r or 0
        rss = (http or {}).get("rss")
        if rss:
            lines += ["", f"RSS of one sync gunicorn worker: {rss['before_kib'] / 1024:.1f} MiB after warm-up, "
                      f"{rss['after_kib'] / 1024:.1f} MiB after {rss['orders']} more durable orders "
                      f"({rss['errors']} errors)."]
    lines += ["", "## 4. Targets", "", "| target | measured | wanted | met |", "|---|---|---|---|"]
    for name, value, wanted, met in targets:
        lines.append(f"| {name} | {value} | {wanted} | {'n/a' if met is None else 'yes' if met else '**no**'} |")
    lines += ["", "What bounds each missed target, with profiles: bench/README.md.", "",
              "## 5. Notes", ""] + [f"- {n}" for n in run.notes or ["none"]]
    lines += ["", "Phase times: " + ", ".join(f"{k} {v:.0f}s" for k, v in run.timings), "",
              "## 6. Exact commands", "", "```"] + run.commands + ["```", ""]
    text = "\n".join(lines)
    md_path.write_text(text)
    draw(png_path, chart)
    return text


def draw(png_path: Path, chart: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(chart.values()), {}).keys())
    if not names:
        return
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for i, (db, values) in enumerate(chart.items()):
        ys = [values.get(n, 0) for n in names]
        xs = [x + (i - 0.5) * width for x in range(len(names))]
        bars = ax.bar(xs, ys, width, label=DBS[db])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    targets = {"seq / (ceiling/5)": 0.6, "seq vs best DBOS": 3.5, "8 threads vs best DBOS": 3.0,
               "HTTP durable/plain sync-2": 0.6, "HTTP durable/plain gthread-2x8": 0.6}
    for x, n in enumerate(names):
        if n in targets:
            ax.hlines(targets[n], x - 0.45, x + 0.45, colors="red", linestyles="dashed")
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("ratio (higher is better; red dashes: target)")
    ax.set_title("Durable runtime: ratios from one run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
