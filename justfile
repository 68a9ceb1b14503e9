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

# Create .venv and install Parley with its dev tools at the versions in requirements-dev.lock;
# reinstalls only when pyproject.toml or the lock file changes.
install:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{bin}}/python ]; then {{python}} -m venv {{venv}}; fi
    stamp="{{venv}}/.installed-$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        {{bin}}/python -m pip install --quiet --upgrade pip
        {{bin}}/python -m pip install --quiet -r requirements-dev.lock
        {{bin}}/python -m pip install --quiet --no-deps -e .
        rm -f {{venv}}/.installed-*
        touch "$stamp"
    fi

# Re-resolve requirements-dev.lock from pyproject.toml (after changing a dependency).
lock: install
    {{bin}}/python -m pip install --quiet pip-tools
    {{bin}}/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.lock pyproject.toml

# Benchmarks (bench/README.md): aliases of `python -m bench run|workers|admin`. A full run writes
# bench/results/<benchmark>-latest.md, --quick a smoke run to <benchmark>-quick.md.

# Parley against the direct fake upstream (ceiling), a bare hello-world, the minimal persisted
# chat turn (floor) and the LiteLLM proxy (peer), with ratios, targets, SQL counts, RSS and a
# py-spy flame graph. Options: --quick, --postgres URL, --repetitions N, --duration S,
# --concurrency 1,16,64, --no-profile, --no-litellm, --no-wrk.
bench *args: install
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{bin}}/py-spy ]; then {{bin}}/python -m pip install --quiet -e '.[dev,bench]'; fi
    {{bin}}/python -m bench run {{args}}

# Options: --quick, --postgres URL, --no-postgres, --repetitions N, --duration S.
# Benchmark `parley serve --workers 1` vs `2` on the offline echo model, SQLite and PostgreSQL.
bench-workers *args: install
    {{bin}}/python -m bench workers {{args}}

# Seeded once into $TMPDIR/parley-admin-bench and parley_admin_* databases. Options: --quick,
# --postgres URL, --no-postgres, --reseed, --requests N.
# Benchmark the admin API's p50/p95 at 100k and 1M messages on SQLite and PostgreSQL.
bench-admin *args: install
    {{bin}}/python -m bench admin {{args}}
