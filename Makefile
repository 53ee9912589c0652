# Everything runs from a project-local virtual environment that these targets create.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-west-1
# Lambda's runtime is python3.13; under pyenv, select 3.13.0 for it unless a version is already chosen.
RUNTIME_PYENV := PYENV_VERSION="$${PYENV_VERSION:-3.13.0}"

.PHONY: demo test test-runtime lint typecheck unit validate scan asl-validate build build-check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.local-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[local]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.local-installed

## demo: run the RDS pipeline end to end on the embedded AWS emulator and show the lake
demo: $(VENV)/.local-installed
	$(BIN)/snaplake local demo

## test: lint, type-check, template checks and the whole test suite
test: $(VENV)/.dev-installed lint typecheck
	$(BIN)/pytest -q

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy layers/common/snaplake local/snaplake_local tests benchmarks scripts
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

## validate: SAM template lint (offline)
validate: $(VENV)/.dev-installed
	$(BIN)/sam validate --lint

## scan: checkov's static scan of template.yaml (settings and skipped checks with their reasons in .checkov.yaml)
SCAN_VENV ?= .venv-scan
$(SCAN_VENV)/.installed: .ci/scan-requirements.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q --upgrade pip
	$(SCAN_VENV)/bin/pip install -q -r .ci/scan-requirements.txt
	touch $@

scan: $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/checkov -f template.yaml --config-file .checkov.yaml --skip-download

## asl-validate: asl-validator (npm, pinned in package.json) on every state machine, as written and as deployed
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

asl-validate: node_modules/.installed $(VENV)/.dev-installed
	rm -rf .aws-sam/asl && $(BIN)/python -m tests.template.render_asl .aws-sam/asl
	for definition in statemachine/*.asl.json .aws-sam/asl/*.asl.json; do \
		node_modules/.bin/asl-validator --json-path "$$definition" || exit 1; \
	done

## test-runtime: the unit tests again on Lambda's Python (3.13, the template's runtime), in a venv of their own
RUNTIME_VENV ?= .venv-runtime
$(RUNTIME_VENV)/.unit-installed: pyproject.toml
	$(RUNTIME_PYENV) python3.13 -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/pip install -q -e ".[unit]"
	touch $@

test-runtime: $(RUNTIME_VENV)/.unit-installed
	$(RUNTIME_VENV)/bin/pytest -q -p no:cacheprovider tests/unit

## build: sam build without Docker (needs the runtime's python3.13 on PATH; under pyenv 3.13.0 is selected for it)
build: $(VENV)/.dev-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(RUNTIME_PYENV) $(BIN)/sam build

## build-check: sam build, then fail if any function's code + layers exceed 200 MB unzipped (Lambda's limit is 250)
build-check: build
	$(BIN)/python scripts/check_package_size.py

## bench: print every figure of benchmarks/README.md (RDS copy; DynamoDB conversion, also against DuckDB; stream
## flatten against its peer; DynamoDB fan-out at 10,000 files; the scale model's 2 TB / 1 TB / 10 TB estimates)
BENCH_FANOUT ?= --files 10000 --sm-files 500
bench: $(VENV)/.local-installed
	$(BIN)/python benchmarks/rds_copy.py
	$(BIN)/python benchmarks/ddb_convert.py
	$(BIN)/python benchmarks/ddb_convert.py --vs-duckdb
	$(BIN)/python benchmarks/stream_flatten.py
	$(BIN)/python benchmarks/ddb_fanout.py $(BENCH_FANOUT)
	$(BIN)/python benchmarks/scale_model.py

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) $(SCAN_VENV) node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
