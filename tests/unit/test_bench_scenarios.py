"""`make bench` requests files, never directories, and always runs the scenarios its ratios are to."""

from bench.scenarios import BASELINES, scenarios


def test_every_scenario_requests_a_file_so_auth_request_runs_once_per_request():
    # A directory URL is redirected internally to its index file, and auth_request runs again.
    for scenario in scenarios(1000, 100_000):
        assert not scenario.path.endswith("/") and "." in scenario.path.rsplit("/", 1)[1], scenario


def test_the_baselines_are_scenarios_of_every_run():
    assert set(BASELINES) <= {scenario.name for scenario in scenarios(1000, 100_000)}

