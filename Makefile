# jwtgate: `make run` starts the gateway on 127.0.0.1, `make test` proves it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
COMPOSE ?= docker compose

.DEFAULT_GOAL := help
.PHONY: help venv nginx chromium servers lint run demo validator test test-unit test-integration check-config clean e2e up down dist

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the project with its test tools

nginx: ## Install Debian's nginx when it is missing (as root), or say how
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  else \
	    echo "nginx is not installed: run 'sudo apt-get install nginx' (Debian's package), then retry." >&2; exit 1; \
	  fi; }

run: venv nginx ## Run the whole gateway on 127.0.0.1:8080 until Ctrl-C (JWTGATE_LISTEN to change)
	$(PY) -m launcher run

demo: venv nginx $(NODE_STAMP) ## make run plus an OpenID provider demo on 127.0.0.1:9090 whose tokens the gateway trusts too
	$(PY) -m launcher run --oidc-demo

validator: venv ## Run only the validator under gunicorn, for your own Nginx and provider (VALIDATOR_ISSUER, ...)
	$(PY) -m launcher validator

# The browser test drives Debian's chromium (playwright-core from node_modules never downloads a browser).
chromium: ## Install Debian's chromium when it is missing (as root), or say how
	@[ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is not installed: run 'sudo apt-get install chromium' (Debian's package), then retry." >&2; exit 1; \
	  fi; }

# The servers the tests start themselves: Redis and PostgreSQL (scale-out), wrk (the tiny bench);
# and systemd-analyze, which checks examples/systemd/ (systemd's package, not systemd as init).
servers: ## Install Debian's redis-server, postgresql, wrk and systemd when missing (as root), or say how
	@missing=""; command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	  command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	  [ -z "$$missing" ] || { \
	    if [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else \
	      echo "missing:$$missing: run 'sudo apt-get install$$missing' (Debian's packages), then retry." >&2; exit 1; \
	    fi; }

lint: venv ## Check the Python code with ruff (ruff.toml) and the import contracts (setup.cfg [importlinter])
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

test: lint venv nginx chromium servers $(NODE_STAMP) ## Run every test: unit, integration (real Nginx and gunicorn), end to end, browser
	$(PY) -m pytest

test-unit: venv ## Run the unit tests only (not their PostgreSQL variants, which start a server)
	$(PY) -m pytest -m "unit and not integration"

test-integration: venv nginx chromium $(NODE_STAMP) ## Run the tests that start real processes
	$(PY) -m pytest -m "integration or e2e"

.PHONY: fuzz
fuzz: venv ## Run the property-based fuzz tests with many more examples (HYPOTHESIS_PROFILE=long)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/fuzz --timeout=0

MUTATE_STAMP := $(VENV)/.mutate-installed

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,mutate]'
	touch $(MUTATE_STAMP)

# mutmut reads setup.cfg [mutmut] (which modules, which tests) and works in mutants/, started afresh:
# its own reuse of earlier results does not notice changed tests. Not part of make test (docs/testing.md).
.PHONY: mutate
mutate: venv $(MUTATE_STAMP) ## Mutation-test the token checks with the unit tests (mutmut; 30-50 minutes)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results
	$(PY) -m tests.constant_mutations

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "npm is not installed: run 'sudo apt-get install nodejs npm' (Debian's packages), then retry." >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

e2e: venv nginx $(NODE_STAMP) ## Run the Postman collection with Newman against the stack as make run starts it
	$(PY) -m tests.e2e.run_newman $(if $(E2E_LISTEN),--listen $(E2E_LISTEN))

up: ## Build and start the Docker Compose deployment on 127.0.0.1:8080 (needs a Docker daemon)
	$(COMPOSE) up --build --detach --wait
	@echo "add a user: $(COMPOSE) run --rm auth-init users add alice --role user   (prints its password)"

down: ## Stop the Docker Compose deployment (keeps the auth-data volume)
	$(COMPOSE) down

SCALE_COMPOSE := $(COMPOSE) -f docker-compose.yml -f docker-compose.scale.yml

.PHONY: up-scale down-scale
up-scale: postgres-password.txt ## Start the scaled-out Compose deployment: Redis, PostgreSQL, validator and auth API replicas
	$(SCALE_COMPOSE) up --build --detach --wait

# The scale file's Compose secret, made once; PostgreSQL keeps the first one in its volume.
postgres-password.txt:
	python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

down-scale: ## Stop the scaled-out Compose deployment (keeps its volumes)
	$(SCALE_COMPOSE) down

check-config: venv ## Check the three gunicorn configs (gunicorn --check-config, in a scratch data dir)
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && for service in validator auth_api backend; do \
	  JWTGATE_DATA_DIR=$$scratch VALIDATOR_JWKS_URL=http://localhost/jwks \
	    $(PY) -m gunicorn --check-config -c $$service/gunicorn.conf.py || exit 1; \
	done

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	touch $(BENCH_STAMP)

.PHONY: wrk bench bench-quick
wrk: ## Install Debian's wrk (the load generator of make bench) when it is missing (as root), or say how
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "wrk is not installed: run 'sudo apt-get install wrk' (Debian's package), then retry." >&2; exit 1; \
	  fi; }

bench: venv nginx wrk $(BENCH_STAMP) ## Measure auth overhead against Nginx alone (about 8 minutes; build/bench/)
	$(PY) -m bench.run

bench-quick: venv nginx wrk $(BENCH_STAMP) ## The same at -c32 only, with a smaller memory flood (under 2 minutes)
	$(PY) -m bench.run --quick

dist: venv ## Build the wheel and the sdist into dist/ (python -m build)
	rm -rf dist
	$(PY) -m build --outdir dist .

clean: ## Remove build output and caches (keeps .venv and the data in var/)
	rm -rf build dist .pytest_cache *.egg-info mutants
