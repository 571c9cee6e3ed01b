"""tests/e2e/run_newman.py's pure parts: the Newman command line and the JUnit counts."""

from tests.e2e import run_newman


def test_newman_command_passes_every_value_as_an_env_var_and_writes_junit():
    command = run_newman.newman_command("node_modules/.bin/newman", "http://127.0.0.1:1234", "demo", "pw-secret",
                                        "expired.jwt.value", demo_login=False,
                                        oidc={"issuer": "http://127.0.0.1:5678", "client_id": "jwtgate-demo",
                                              "client_secret": "client-secret"})
    assert command[:3] == ["node_modules/.bin/newman", "run", str(run_newman.COLLECTION)]
    pairs = [command[index + 1] for index, part in enumerate(command) if part == "--env-var"]
    assert pairs == ["baseUrl=http://127.0.0.1:1234", "username=demo", "password=pw-secret",
                     "expiredToken=expired.jwt.value", "demoLogin=0", "oidcIssuer=http://127.0.0.1:5678",
                     "oidcClientId=jwtgate-demo", "oidcClientSecret=client-secret",
                     "oidcAudience=https://api.jwtgate.example/", "oidcOtherAudience=https://other.jwtgate.example/"]
    assert command[command.index("--reporters") + 1] == "cli,junit"
    assert command[command.index("--reporter-junit-export") + 1] == str(run_newman.JUNIT)
    assert run_newman.JUNIT.relative_to(run_newman.ROOT).parts == ("build", "newman", "junit.xml")
    assert run_newman.DATA_DIR.relative_to(run_newman.ROOT).parts[0] == "build"


def test_junit_counts_assertions_over_every_suite(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites name="jwtgate" tests="2">'
        '<testsuite name="a" tests="3" failures="1" errors="0"/>'
        '<testsuite name="b" tests="4" failures="0" errors="1"/></testsuites>'
    )
    assert run_newman.junit_counts(report) == (5, 2)


def test_the_expired_token_is_past_any_allowed_leeway():
    # VALIDATOR_LEEWAY_SECONDS is at most 300.
    assert run_newman.EXPIRED_SECONDS_AGO > 300
