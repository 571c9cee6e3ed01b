"""`make bench` rates every scenario against no-auth and against both floors (no process started here)."""

from bench.report import summarise


def run(scenario, rps, repetition=0):
    return {"scenario": scenario, "connections": 32, "repetition": repetition, "rps": rps, "p50_us": 500,
            "p99_us": 2000, "non_2xx": 0, "socket_errors": 0}


def test_every_row_carries_its_ratio_to_no_auth_and_to_both_floors():
    runs = [run("no-auth", 60_000), run("floor", 50_000), run("external-floor", 30_000),
            run("one-token", 15_000), run("one-token", 12_000, 1), run("one-token", 18_000, 2)]
    table = summarise(runs, ["no-auth", "floor", "external-floor", "one-token"], [32])
    one = next(row for row in table if row["scenario"] == "one-token")
    assert one["rps"] == 15_000 and one["repetitions"] == 3
    assert (one["vs_no_auth"], one["vs_floor"], one["vs_external"]) == (0.25, 0.3, 0.5)
    external = next(row for row in table if row["scenario"] == "external-floor")
    assert (external["vs_no_auth"], external["vs_external"]) == (0.5, 1.0)
