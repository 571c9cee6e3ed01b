"""`make bench`: Nginx and the validator as shipped, measured with wrk against Nginx alone.

The stack is launcher.stack.Stack (the rendered gateway.conf, the same snippet files and
gunicorn configs as `make run`), plus bench/bench.conf.template: a static file served with
no auth, behind auth_request to an internal 204 (the mechanism's floor), behind auth_request
to a second Nginx that answers 200 at once (the floor of any validator outside Nginx), behind
the shipped snippets, and behind them with the verdict micro-cache. The validator trusts two
providers: our auth API and a second one whose key the bench makes (bench/tokens.py), each
token's iss picking its own. wrk runs every scenario at every concurrency in interleaved
repetitions; the table gives medians. Loopback only.
"""

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import report
from bench.memory import memory_phase
from bench.scenarios import BASELINES, label, run_scenario, scenarios
from bench.stack import BenchStack
from bench.tokens import invalid_from, mint

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="-c32 only, 2 s runs, a flood of 50k, not 1M")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: 1 s runs, one repetition, no warm-up, small token sets, no memory phase")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--seconds", type=int, help="seconds per run")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--connections", help="comma-separated wrk connection counts")
    parser.add_argument("--scenarios", help=f"comma-separated subset ({', '.join(BASELINES)} are always run)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory phase")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the stack (experiments, e.g. VALIDATOR_WORKERS=4)")
    parser.add_argument("--upstream-keepalive", type=int, help="experiments: override the template's keepalive")
    args = parser.parse_args(argv)
    if args.tiny:
        defaults = dict(seconds=1, repetitions=1, connections="32", small=200, large=2000, flood=0)
    elif args.quick:
        defaults = dict(seconds=2, repetitions=3, connections="32", small=1000, large=100_000, flood=50_000)
    else:
        defaults = dict(seconds=3, repetitions=3, connections="8,32,128", small=1000, large=100_000,
                        flood=1_000_000)
    args.seconds = args.seconds or defaults["seconds"]
    args.repetitions = args.repetitions or defaults["repetitions"]
    args.connections = [int(value) for value in (args.connections or defaults["connections"]).split(",")]
    args.small, args.large, args.flood = defaults["small"], defaults["large"], defaults["flood"]
    if args.tiny:
        args.no_memory = True
    return args


def main(argv=None):
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run 'sudo apt-get install wrk' (Debian's package), then retry.")
    started = time.monotonic()
    out = args.out.resolve()
    (out / "tokens").mkdir(parents=True, exist_ok=True)
    environ = dict(item.split("=", 1) for item in args.env)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    print(f"jwtgate bench ({mode}): {out}", flush=True)
    # The data directory (and its key, so minted tokens) is kept between runs; the logs are not:
    # the memory phase alone adds a million denial lines.
    for log in (out / "data" / "logs").glob("*.log"):
        log.unlink()

    bench = BenchStack(out, environ, args.upstream_keepalive).start()
    try:
        host = report.machine(bench)
        print("  machine: " + ", ".join(f"{key} {value}" for key, value in host.items()), flush=True)
        # Named by file: valid-N, invalid-N, and the second provider's valid-b-N, invalid-b-N.
        ours = [mint(bench.stack, out / "tokens", count) for count in (args.small, args.large)]
        theirs = bench.provider_b.mint(out / "tokens", args.small)
        files = [*ours, theirs, invalid_from(ours[0], out / "tokens"), invalid_from(theirs, out / "tokens")]
        token_files = {path.stem: path for path in files}
        chosen = scenarios(args.small, args.large)
        if args.scenarios:
            wanted = set(args.scenarios.split(",")) | set(BASELINES)
            chosen = [scenario for scenario in chosen if scenario.name in wanted]
        names = [scenario.name for scenario in chosen]

        # Warm-up: every scenario once (fills the verdict caches, Nginx's micro-cache, page cache).
        for scenario in chosen if not args.tiny else ():
            if not scenario.cold:
                run_scenario(bench, scenario, token_files, 32, 1)
        runs = []
        total = args.repetitions * len(args.connections) * len(chosen)
        for repetition in range(args.repetitions):
            for connections in args.connections:
                for scenario in chosen:
                    summary = run_scenario(bench, scenario, token_files, connections, args.seconds)
                    runs.append({"scenario": scenario.name, "connections": connections, "repetition": repetition,
                                 **summary})
                    print(f"  [{len(runs):>3}/{total}] {scenario.name:<18} -c{connections:<4}"
                          f" {summary['rps']:>8.0f} req/s  p99 {summary['p99_us'] / 1000:6.2f} ms", flush=True)
                    if scenario.cold and not args.tiny:
                        # Leave warm verdict caches for the next round's warm scenarios.
                        for warm in chosen:
                            if warm.name not in BASELINES and (
                                    warm.token or (warm.tokens or "").startswith("valid") and not warm.cold):
                                run_scenario(bench, warm, token_files, 32, 1)
    finally:
        bench.stop()

    memory = None
    if not args.no_memory:
        print("memory (one validator worker, RSS and private pages from /proc/PID/smaps_rollup):", flush=True)
        memory = memory_phase(out, environ, token_files, 10_000 if args.large >= 10_000 else args.small, args.large,
                              args.flood)

    table = report.summarise(runs, names, args.connections)
    report.print_table(table)
    targets = report.check_targets(table, f"tokens-{label(args.large)}")
    report.print_targets(targets)
    if memory is not None:
        memory["targets"] = report.check_memory_targets(memory["rows"], args.large)
        report.print_memory_targets(memory["targets"])
    results = {
        "mode": mode, "machine": host, "seconds_per_run": args.seconds, "repetitions": args.repetitions,
        "connections": args.connections, "scenarios": [asdict(scenario) for scenario in chosen],
        "environment": environ, "upstream_keepalive": args.upstream_keepalive,
        "table": table, "targets": targets, "memory": memory, "runs": runs,
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    drawn = report.chart(table, out / "results.png")
    print(f"wrote {out / 'results.json'}" + (f" and {out / 'results.png'}" if drawn else "")
          + f" in {results['elapsed_seconds']:.0f}s")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
