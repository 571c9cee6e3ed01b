"""`make bench` trusts two providers: ours as `make run` configures it, and a second one (no process started)."""

import dataclasses
import tomllib

from bench.scenarios import scenarios
from bench.stack import BENCH_ISSUER, BenchStack
from bench.tokens import SecondProvider
from launcher.stack import Stack
from validator.config import Settings, single_provider
from validator.providers import ProblemList, load_document


def test_our_provider_in_the_bench_providers_file_is_the_one_make_run_configures(tmp_path):
    bench = BenchStack(tmp_path, {})
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    ours, theirs = load_document(tomllib.loads(bench.providers_toml()), problems)
    assert problems.items == []
    # `make run` names no providers file: the validator's one provider comes from the stack's VALIDATOR_* defaults.
    settings = Settings.from_env(Stack(bench.stack.data_dir, environ={"AUTH_ISSUER": BENCH_ISSUER}).service_env())
    assert ours == single_provider(settings, ProblemList("VALIDATOR_ISSUER"))
    assert (theirs.issuer, theirs.audiences) == (SecondProvider.ISSUER, (SecondProvider.AUDIENCE,))
    # Tokens alike but for iss, checked alike: only the lookup by iss tells the two providers apart.
    alike = {"name", "issuer", "jwks_uri", "discovery_kind", "socket", "required_claims", "exact_audience"}
    assert {field.name for field in dataclasses.fields(ours)
            if getattr(ours, field.name) != getattr(theirs, field.name)} <= alike


def test_every_scenario_of_the_second_provider_repeats_one_of_ours_with_its_tokens():
    by_name = {scenario.name: scenario for scenario in scenarios(1000, 100_000)}
    pairs = {"provider-b": "one-token", "provider-b-1k": "tokens-1k", "provider-b-invalid": "invalid"}
    assert sorted(name for name in by_name if name.startswith("provider-b")) == sorted(pairs)
    for name, counterpart in pairs.items():
        theirs, ours = by_name[name], by_name[counterpart]
        assert (theirs.token or theirs.tokens) == (ours.token or ours.tokens).replace("-", "-b-", 1)
        assert dataclasses.replace(theirs, name=ours.name, token=ours.token, tokens=ours.tokens,
                                   description=ours.description) == ours
