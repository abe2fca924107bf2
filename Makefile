# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/juice_eval
REDIS_URL ?= redis://127.0.0.1:6379/15
# `make demo PORT=8001` serves elsewhere when 8000 is taken (checked before anything starts).
PORT ?= 8000
# The application's packages are type-checked (tests and benchmarks are not).
TYPED := evalsite raters generation analysis

.PHONY: install demo test test-fast test-services lint bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) manage.py demo --addrport 127.0.0.1:$(PORT)

# The suite runs twice: once on the embedded defaults (SQLite, filesystem broker), once on the
# real PostgreSQL + Redis servers for the tests marked `services`.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy $(TYPED)
	$(PY) manage.py makemigrations --check --dry-run
	CELERY_BROKER_DIR=var/test-broker $(PY) -m pytest -m "not services" -p no:cacheprovider
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(PY) -m pytest -m services -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(TYPED)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done
