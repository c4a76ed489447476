"""Results as JSON and as a Markdown table (the table of the Performance section of README.md)."""
import json

__all__ = ["write_json", "markdown"]


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


def _ms(r):
    if not r or "median_s" not in r:
        return "failed" if r else "-"
    return f"{r['median_s'] * 1e3:,.1f}"


def _mb(r):
    if not r or "peak_rss_mb" not in r:
        return "-"
    return f"{r.get('peak_timed_mb') or r['peak_rss_mb']:,.0f}"


def _diff(row):
    """nngp / ntk for kernels; the largest over means and covariances for predictions."""
    d = row.get("max_rel_diff_vs_nt")
    if not d:
        return "-"
    if any(not isinstance(v, float) for v in d.values()):
        return "; ".join(f"{k}: {v}" for k, v in d.items())
    if len(d) > 2:
        return f"{max(d.values()):.1e} (max)"
    return " / ".join(f"{v:.1e}" for v in d.values())


def _check(r):
    c = (r or {}).get("check")
    if not c:
        return "-"
    worst = max(c["max_rel_diff"].values())
    return f"{'ok' if c['ok'] else 'FAILED'} ({worst:.0e})"


def _row(row, peaks):
    ours, nt = row.get("infwide"), row.get("nt")
    ratio = "-"
    if ours and nt and "median_s" in ours and "median_s" in nt:
        ratio = f"{nt['median_s'] / ours['median_s']:.1f}x"
    gf = row["model_gflop"]
    rate, frac = "-", "-"
    if ours and "median_s" in ours:
        r = gf / ours["median_s"]
        rate = f"{r:.3g}"
        peak = (peaks or {}).get("matmul_gflops", {}).get(row["dtype"])
        frac = f"{100 * r / peak:.0f}%" if peak else "-"
    n = row["n"] if row.get("n_test") is None else f"{row['n']}+{row['n_test']}"
    return (f"| {row['workload']} | {row['dtype']} | {n} | {_ms(ours)} | {_ms(nt)} | {ratio} | "
            f"{gf:.3g} | {rate} | {frac} | {_mb(ours)} | {_mb(nt)} | {_diff(row)} | "
            f"{_check(ours)} |")


def markdown(doc):
    """The results table, the scaling tables and the machine line."""
    m, peaks = doc["machine"], doc.get("peaks", {})
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB "
             f"({', '.join(m['simd'])}); measured matmul "
             f"{peaks.get('matmul_gflops', {}).get('float32', '-')} GFLOP/s float32, "
             f"{peaks.get('matmul_gflops', {}).get('float64', '-')} float64; triad "
             f"{peaks.get('triad_gbs', '-')} GB/s; load average at start "
             f"{doc.get('loadavg_start', '-')}, end {doc.get('loadavg_end', '-')}.", "",
             "| workload | dtype | N | infwide ms | NT ms | NT / infwide | model GFLOP | "
             "infwide GFLOP/s | of matmul peak | infwide peak MB | NT peak MB | "
             "max rel diff vs NT | check vs reference |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    lines += [_row(r, peaks) for r in doc["rows"]]
    firsts = [r for r in doc["rows"] if all("first_call_s" in (r.get(k) or {})
                                           for k in ("infwide", "nt"))]
    if firsts:
        lines += ["", "First call in a fresh process (what one call from a new script costs: "
                  "infwide's includes loading its cached Numba code, NT's includes XLA's "
                  "compilation; predictions: factory and call, factorisations included):", "",
                  "| workload | dtype | infwide first call ms | NT first call ms | "
                  "NT / infwide |", "|---|---|---:|---:|---:|"]
        for r in firsts:
            a, b = r["infwide"]["first_call_s"], r["nt"]["first_call_s"]
            lines.append(f"| {r['workload']} | {r['dtype']} | {a * 1e3:,.1f} | {b * 1e3:,.1f} | "
                         f"{b / a:.1f}x |")
    if doc.get("scaling"):
        lines += ["", "Time per image pair (x2 = x1: N (N + 1) / 2 pairs; each N in several "
                  "fresh processes, the fastest process's median kept, every process's median "
                  "in the last column; CPU: process CPU time, all threads):", "",
                  "| workload | dtype | N | ms | ms per pair | CPU ms per pair | load average "
                  "| processes ms |",
                  "|---|---|---:|---:|---:|---:|---|---|"]
        for s in doc["scaling"]:
            procs = ", ".join(f"{v:,.1f}" for v in s.get("processes_ms", [s["ms"]]))
            lines.append(f"| {s['workload']} | {s['dtype']} | {s['n']} | {s['ms']:,.1f} | "
                         f"{s['ms_per_pair']:.3f} | {s.get('cpu_ms_per_pair', float('nan')):.3f}"
                         f" | {s.get('loadavg', '-')} | {procs} |")
    if doc.get("threads"):
        lines += ["", "Thread speed-up (same inputs; each thread count in several fresh "
                  "processes, the fastest process's median kept, the slowest process in "
                  "brackets). Wall: 1-thread time over 2-thread time. CPU: 1-thread CPU time "
                  "over the busier of the two threads' CPU times (what idle cores give):", "",
                  "| workload | dtype | N | 1 thread ms | 2 threads ms | speed-up (wall) | "
                  "CPU s per thread (2 threads) | speed-up (CPU) | load average |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|"]
        for s in doc["threads"]:
            per = " / ".join(f"{c:.2f}" for c in s.get("thread_cpu_2_s", []))
            ms = [f"{s[f'ms_{t}']:,.1f}" + (f" ({s[f'slowest_ms_{t}']:,.1f})"
                                              if s.get("procs", 1) > 1 else "") for t in (1, 2)]
            lines.append(f"| {s['workload']} | {s['dtype']} | {s['n']} | {ms[0]} | {ms[1]} | "
                         f"{s['speedup']:.2f}x | {per} | "
                         f"{s.get('cpu_speedup', float('nan')):.2f}x | {s.get('loadavg', '-')} |")
    return "\n".join(lines) + "\n"
