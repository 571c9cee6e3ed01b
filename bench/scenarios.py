"""The bench scenarios: what each wrk run requests, and how one is run against the bench stack."""

from dataclasses import dataclass

from bench import wrk
from bench.tokens import DPOP_PROOFS_PER_SECOND


@dataclass(frozen=True)
class Scenario:
    """One wrk target: a path on a bench server and what each request carries."""

    name: str
    server: str                 # "plain" or "cached"
    path: str
    tokens: str | None = None   # a token file to rotate through
    token: str | None = None    # a token file whose first token is repeated
    cold: bool = False          # reload the validator first: every check a verdict-cache miss
    dpop: bool = False          # one DPoP-bound token, a new proof for every request
    description: str = ""


# The scenarios every run includes, whatever --scenarios asks for: the ratios are to them.
BASELINES = ("no-auth", "floor", "external-floor")


def scenarios(small, large):
    # File paths only: for a directory URL (`/auth/`) Nginx's index module redirects internally to
    # the index file, and auth_request runs again for the redirected request, so one request would
    # cost two checks.
    return [
        Scenario("no-auth", "plain", "/noauth/hello.txt", description="Nginx serving the static file, no auth"),
        Scenario("floor", "plain", "/floor/hello.txt", description="auth_request to an internal 204"),
        Scenario("external-floor", "plain", "/external/hello.txt", token=f"valid-{small}",
                 description="auth_request to a second Nginx answering 200 and X-User-Id (unix socket, keepalive),"
                             " one repeated token"),
        # Each scenario of our own tokens is followed by the same with the second provider's (provider-b...):
        # the token's `iss` picks that provider's keys and policy as it picks ours.
        Scenario("one-token", "plain", "/auth/hello.txt", token=f"valid-{small}",
                 description="validator, one repeated token"),
        Scenario("provider-b", "plain", "/auth/hello.txt", token=f"valid-b-{small}",
                 description="validator, one repeated token of the second provider"),
        Scenario(f"tokens-{label(small)}", "plain", "/auth/hello.txt", tokens=f"valid-{small}",
                 description=f"validator, {small} distinct valid tokens (warm verdict cache)"),
        Scenario(f"provider-b-{label(small)}", "plain", "/auth/hello.txt", tokens=f"valid-b-{small}",
                 description=f"validator, {small} distinct valid tokens of the second provider (warm verdict cache)"),
        Scenario("invalid", "plain", "/auth/hello.txt", tokens=f"invalid-{small}",
                 description=f"validator, {small} distinct bad signatures (401)"),
        Scenario("provider-b-invalid", "plain", "/auth/hello.txt", tokens=f"invalid-b-{small}",
                 description=f"validator, {small} distinct bad signatures of the second provider (401)"),
        Scenario("micro-cache", "cached", "/auth/hello.txt", token=f"valid-{small}",
                 description="validator behind the Nginx verdict micro-cache, one token"),
        Scenario("dpop", "plain", "/auth/hello.txt", dpop=True,
                 description="validator, one DPoP-bound token, a new ES256 proof per request (RFC 9449)"),
        Scenario(f"tokens-{label(large)}", "plain", "/auth/hello.txt", tokens=f"valid-{large}", cold=True,
                 description=f"validator, {large} distinct valid tokens, cache emptied first (every check a miss)"),
    ]


def label(count):
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


def run_scenario(bench, scenario, token_files, connections, seconds):
    """One wrk run of `scenario` at `connections`; returns wrk's summary."""
    environ, headers, stop_after = {}, [], None
    if scenario.tokens:
        environ["BENCH_TOKENS"] = str(token_files[scenario.tokens])
    if scenario.token:
        with token_files[scenario.token].open() as handle:
            headers.append(f"Authorization: Bearer {handle.readline().strip()}")
    if scenario.dpop:
        count = max(1, round(seconds)) * DPOP_PROOFS_PER_SECOND
        environ["BENCH_HEADERS"] = str(bench.dpop.write(bench.url(scenario), count))
        # A proof is good once: stop before wrk could send one a second time.
        stop_after = count - connections
    if scenario.cold:
        bench.reload_validator()
    return wrk.run(bench.url(scenario), connections=connections, seconds=seconds, environ=environ, headers=headers,
                   stop_after=stop_after)
