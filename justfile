# Parley task runner. Only prerequisite: Python 3.11+ and `pip install rust-just`.
set shell := ["bash", "-euo", "pipefail", "-c"]

python := env("PARLEY_PYTHON", "python3")
venv := ".venv"
bin := venv / "bin"

# Serve on PARLEY_HOST:PARLEY_PORT (default 127.0.0.1:8000); migrates the database first.
serve: install
    {{bin}}/parley serve

# Run every test (unit + integration).
test *args: install
    {{bin}}/pytest {{args}}

# ruff, mypy (strict on src/) and the import-linter dependency contracts.
lint: install
    {{bin}}/ruff check src tests $(ls -d bench 2>/dev/null)
    {{bin}}/ruff format --check src tests $(ls -d bench 2>/dev/null)
    {{bin}}/mypy
    {{bin}}/lint-imports

# Apply ruff's formatter and autofixes.
fmt: install
    {{bin}}/ruff format src tests bench
    {{bin}}/ruff check --fix src tests bench

# Apply database migrations without serving.
migrate: install
    {{bin}}/parley migrate

# Create .venv and install Parley with its dev tools; reinstalls only when pyproject.toml changes.
install:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{bin}}/python ]; then {{python}} -m venv {{venv}}; fi
    stamp="{{venv}}/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        {{bin}}/python -m pip install --quiet --upgrade pip
        {{bin}}/python -m pip install --quiet -e '.[dev]'
        rm -f {{venv}}/.installed-*
        touch "$stamp"
    fi

# Admin API benchmark: seed 100k/1M-message SQLite and PostgreSQL databases once, report p50/p95.
bench-admin pg="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres" *args="": install
    {{bin}}/python bench/admin_bench.py all --postgres {{pg}} {{args}}

# Benchmark Parley against a direct fake upstream (ceiling) and a minimal app (floor) and write
# bench/results/<timestamp>.md and latest.md. Options: --quick, --postgres URL, --repetitions N,
# --duration S (see bench/run.py --help).
bench *args: install
    #!/usr/bin/env bash
    set -euo pipefail
    if ! {{bin}}/python -c 'import pyinstrument' 2>/dev/null || [ ! -x {{bin}}/py-spy ]; then
        {{bin}}/python -m pip install --quiet -e '.[dev,bench]'
    fi
    {{bin}}/python bench/run.py {{args}}

# Chat throughput with the offline echo model: SQLite vs PostgreSQL, 1 vs 2 `parley serve`
# workers; writes bench/results/workers-<timestamp>.md and workers-latest.md. Options: --quick,
# --postgres URL, --no-postgres, --repetitions N, --duration S (see bench/workers.py --help).
bench-workers *args: install
    {{bin}}/python bench/workers.py {{args}}
