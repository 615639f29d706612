PY := .venv/bin/python
PORT ?= 8000
ADMIN_USER ?= admin
ADMIN_PASSWORD ?= admin-demo-pass

.PHONY: install run migrate demo test test-sqlite test-postgres bench lint format clean

.venv/bin/python:
	python3.11 -m venv .venv || python3 -m venv .venv

install: .venv/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	@test -f .env || { echo "DEBUG=1"; echo "SECRET_KEY=dev-$$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"; } > .env
	@touch .venv/.installed

.venv/.installed: requirements.lock
	$(MAKE) install

migrate: .venv/.installed
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo_data --admin-user $(ADMIN_USER) --admin-password $(ADMIN_PASSWORD)

# web (gunicorn), worker and beat from the Procfile, through honcho, on the embedded default:
# SQLite and kombu's filesystem broker under .celery/ (no server to start).
run: demo
	@mkdir -p .celery/broker
	@echo "Admin:   http://127.0.0.1:$(PORT)/admin/   user: $(ADMIN_USER)   password: $(ADMIN_PASSWORD)"
	@echo "API:     http://127.0.0.1:$(PORT)/api/v1/   docs: http://127.0.0.1:$(PORT)/api/v1/docs"
	PATH="$(CURDIR)/.venv/bin:$$PATH" DEBUG=1 PORT=$(PORT) CELERY_POOL=solo $(PY) -m honcho start -f Procfile

test: .venv/.installed
	$(PY) -m pytest

test-sqlite: .venv/.installed
	DATABASE_URL=sqlite:///:memory: $(PY) -m pytest

test-postgres: .venv/.installed
	DATABASE_URL=postgres://root@127.0.0.1:5432/test $(PY) -m pytest

# Benchmarks run on PostgreSQL only (bench/db.py refuses anything else): the services script
# starts or checks PostgreSQL; each benchmark works in a throwaway <name>_bench database.
# BENCH=changelist runs one module; BENCH_LOANS=100000 a smaller portfolio.
BENCH_DATABASE_URL ?= postgres://root@127.0.0.1:5432/bench
SERVICES_SH := $(firstword $(wildcard ../shared/ci/services.sh ../../shared/ci/services.sh))
bench: .venv/.installed
	@test -n "$(SERVICES_SH)" || { echo "bench: ../shared/ci/services.sh not found"; exit 1; }
	bash $(SERVICES_SH)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench $(BENCH)

lint: .venv/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: .venv/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf .venv db.sqlite3 staticfiles .celery
