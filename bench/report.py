"""The bench's report: the machine, the table of medians and ratios, the targets, the chart."""

import os
import platform
import statistics
import subprocess

# The targets, as ratios to no-auth at -c32 (p99 in milliseconds).
TARGETS = {
    "one-token": {"ratio": 0.33, "p99_ms": 2.0},
    "micro-cache": {"ratio": 0.60},
    "tokens-100k": {"ratio": 0.20},
}
# And for one validator worker's RSS: under 100 MB with the large token set cached, and flat (growing
# by less than this share) under the flood of invalid tokens, none of which may be cached.
RSS_TARGET_MB = 100
FLOOD_GROWTH = 0.01


def machine(bench):
    def first_line(command):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except OSError:
            return "unknown"
        return (result.stdout + result.stderr).strip().splitlines()[0]

    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = bench.stack.service_env()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "nginx": first_line([bench.stack.nginx, "-v"]),
        "python": platform.python_version(),
        "wrk": first_line(["wrk", "-v"]),
        "nginx_workers": int(env.get("NGINX_WORKER_PROCESSES", "1")),
        "validator_workers": len(bench.validator_workers()),
        "wrk_threads": 1,
    }


def summarise(runs, names, concurrencies):
    """Medians per scenario and concurrency, with ratios to no-auth and to both floors at the same concurrency."""
    # A ratio to a floor carries over to other CPUs better than req/s: the floor moves with the machine.
    table = []
    for connections in concurrencies:
        by_name = {}
        for name in names:
            samples = [run for run in runs if run["scenario"] == name and run["connections"] == connections]
            by_name[name] = {
                "scenario": name, "connections": connections, "repetitions": len(samples),
                "rps": statistics.median(run["rps"] for run in samples),
                "p50_ms": statistics.median(run["p50_us"] for run in samples) / 1000,
                "p99_ms": statistics.median(run["p99_us"] for run in samples) / 1000,
                "non_2xx": sum(run["non_2xx"] for run in samples),
                "socket_errors": sum(run["socket_errors"] for run in samples),
            }
        for row in by_name.values():
            row["vs_no_auth"] = row["rps"] / by_name["no-auth"]["rps"]
            row["vs_floor"] = row["rps"] / by_name["floor"]["rps"]
            row["vs_external"] = row["rps"] / by_name["external-floor"]["rps"]
            table.append(row)
    return table


def print_table(table):
    print(f"\n{'scenario':<18} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/no-auth':>9} {'/floor':>7}"
          f" {'/external':>9} {'non-2xx':>8}")
    for row in table:
        print(f"{row['scenario']:<18} {row['connections']:>5} {row['rps']:>9.0f} {row['p50_ms']:>8.2f}"
              f" {row['p99_ms']:>8.2f} {row['vs_no_auth']:>9.2f} {row['vs_floor']:>7.2f} {row['vs_external']:>9.2f}"
              f" {row['non_2xx']:>8}")


def check_targets(table, large_name):
    at32 = {row["scenario"]: row for row in table if row["connections"] == 32}
    results = []
    for name, target in TARGETS.items():
        row = at32.get(large_name if name == "tokens-100k" else name)
        if row is None:
            continue
        met = row["vs_no_auth"] >= target["ratio"] and row["p99_ms"] < target.get("p99_ms", float("inf"))
        results.append({"scenario": row["scenario"], "target": target, "ratio": round(row["vs_no_auth"], 3),
                        "p99_ms": round(row["p99_ms"], 2), "met": met})
    return results


def print_targets(targets):
    for target in targets:
        # Three decimals: with two, a ratio just under its target can print as the target itself.
        print(f"  target {target['scenario']}: ratio {target['ratio']:.3f} (>= {target['target']['ratio']})"
              + (f", p99 {target['p99_ms']:.2f} ms (< {target['target']['p99_ms']})" if "p99_ms" in target["target"]
                 else "") + (" met" if target["met"] else " NOT met"))


def check_memory_targets(rows, large):
    """The two memory targets, from the memory phase's rows: RSS with `large` verdicts cached, and after the flood."""
    cached = next(row for row in rows if row["state"] == f"{large} cached verdicts")
    flooded = next(row for row in rows if row["state"].startswith("after "))
    rss_mb = cached["rss_mib"] * 1.048576
    growth = flooded["rss_mib"] / cached["rss_mib"] - 1
    return [
        {"target": "rss", "cached": large, "rss_mib": cached["rss_mib"], "rss_mb": round(rss_mb, 1),
         "limit_mb": RSS_TARGET_MB, "met": rss_mb < RSS_TARGET_MB},
        {"target": "flood", "requests": flooded["requests"], "before_mib": cached["rss_mib"],
         "after_mib": flooded["rss_mib"], "growth": round(growth, 4), "limit": FLOOD_GROWTH,
         "met": growth < FLOOD_GROWTH},
    ]


def print_memory_targets(targets):
    rss, flood = targets
    print(f"  target memory: RSS {rss['rss_mib']:.1f} MiB ({rss['rss_mb']:.1f} MB) with {rss['cached']} cached verdicts"
          f" (< {rss['limit_mb']} MB) {'met' if rss['met'] else 'NOT met'}")
    print(f"  target flood: RSS {flood['before_mib']:.1f} -> {flood['after_mib']:.1f} MiB after {flood['requests']}"
          f" invalid tokens ({flood['growth']:+.1%}, < +{flood['limit']:.0%}) {'met' if flood['met'] else 'NOT met'}")


def chart(table, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no chart: install the bench extra, pip install -e '.[bench]', for matplotlib)")
        return False
    names = list(dict.fromkeys(row["scenario"] for row in table))
    concurrencies = sorted({row["connections"] for row in table})
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    width = 0.8 / len(concurrencies)
    for index, connections in enumerate(concurrencies):
        rows = {row["scenario"]: row for row in table if row["connections"] == connections}
        xs = [position + (index - (len(concurrencies) - 1) / 2) * width for position in range(len(names))]
        top.bar(xs, [rows[name]["rps"] for name in names], width, label=f"-c{connections}")
        bottom.bar(xs, [rows[name]["p99_ms"] for name in names], width, label=f"-c{connections}")
    top.set_ylabel("requests per second (median)")
    bottom.set_ylabel("p99 latency, ms (median)")
    bottom.set_yscale("log")
    bottom.set_xticks(range(len(names)), names, rotation=15)
    top.legend()
    top.set_title("jwtgate: a static file through Nginx, by how it is authenticated")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
