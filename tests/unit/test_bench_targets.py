"""`make bench` judges the memory targets of issue #6 from its memory phase's rows (no process started here)."""

import pytest

from bench.report import check_memory_targets


def rows(cached_mib, flooded_mib):
    return [
        {"state": "started (one request served)", "rss_mib": 46.1, "private_mib": 23.4, "requests": 1},
        {"state": "10000 cached verdicts", "rss_mib": 50.9, "private_mib": 31.0, "requests": 9999},
        {"state": "100000 cached verdicts", "rss_mib": cached_mib, "private_mib": 70.0, "requests": 90000},
        {"state": "after 1000000 distinct invalid tokens", "rss_mib": flooded_mib, "private_mib": 70.0,
         "requests": 1000000},
    ]


@pytest.mark.parametrize("cached_mib, met", [(95.3, True), (95.4, False), (100.6, False)])
def test_the_rss_target_is_100_megabytes_not_mebibytes(cached_mib, met):
    rss, _ = check_memory_targets(rows(cached_mib, cached_mib), 100_000)
    assert rss["met"] is met and rss["cached"] == 100_000 and rss["rss_mib"] == cached_mib


@pytest.mark.parametrize("flooded_mib, met", [(92.8, True), (93.7, True), (93.8, False), (120.0, False)])
def test_rss_is_flat_under_the_flood_while_it_grows_less_than_one_percent(flooded_mib, met):
    _, flood = check_memory_targets(rows(92.8, flooded_mib), 100_000)
    assert flood["met"] is met and flood["requests"] == 1_000_000
