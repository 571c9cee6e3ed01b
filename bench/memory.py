"""The memory phase: one validator worker's RSS and private pages as its verdict cache fills, then under a flood."""

import time

from bench import wrk
from bench.stack import BenchStack


def memory_mib(pid):
    """(RSS, private) of pid in MiB: all its resident pages, and those no other process maps (USS)."""
    # RSS also counts the pages a worker shares with the gunicorn master and the other workers (the
    # interpreter, the libraries, what the master loaded before the fork): the private part is what
    # one more worker costs.
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("Rss", "Private_Clean", "Private_Dirty"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Private_Clean"] + fields["Private_Dirty"]


def memory_phase(out, environ, token_files, small, large, flood):
    """RSS of one validator worker: empty, with `small` and `large` cached verdicts, after a flood of bad tokens."""
    bench = BenchStack(out, {**environ, "VALIDATOR_WORKERS": "1"}).start()
    try:
        url = f"http://{bench.listen['plain']}/auth/hello.txt"
        (worker,) = bench.validator_workers()
        rows = []

        def record(label, sent, seconds):
            rss, private = memory_mib(worker)
            rows.append({"state": label, "rss_mib": round(rss, 1), "private_mib": round(private, 1),
                         "requests": sent, "seconds": round(seconds, 1)})
            print(f"  {label:<42} RSS {rss:7.1f} MiB  private {private:7.1f} MiB", flush=True)

        valid = token_files[f"valid-{large}"].read_text().split()
        wrk.run(url, connections=1, seconds=1, headers=[f"Authorization: Bearer {valid[0]}"])
        record("started (one request served)", 1, 0)
        sent = 1
        for target in (small, large):
            # Exactly the next tokens of the large set, each once: the worker caches every one.
            part = out / "tokens" / f"memory-{sent}-{target}.txt"
            part.write_text("\n".join(valid[sent:target]) + "\n")
            started = time.monotonic()
            wrk.run(url, connections=16, seconds=600, environ={"BENCH_TOKENS": str(part)}, stop_after=target - sent)
            record(f"{target} cached verdicts", target - sent, time.monotonic() - started)
            part.unlink()
            sent = target
        # Distinct, well-formed tokens with our kid and a wrong signature: full checks, never cached.
        head, payload, signature = valid[0].split(".")
        started = time.monotonic()
        summary = wrk.run(url, connections=32, seconds=900, stop_after=flood,
                          environ={"BENCH_FLOOD": f"{head}.{payload}.|{signature[10:]}"})
        record(f"after {flood} distinct invalid tokens", summary["requests"], time.monotonic() - started)
        return {"workers": 1, "cache_size": int(bench.stack.service_env().get("VALIDATOR_CACHE_SIZE", 100_000)),
                "rows": rows}
    finally:
        bench.stop()
