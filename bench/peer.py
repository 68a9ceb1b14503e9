"""The peer: LiteLLM's proxy (``litellm[proxy]``), in a virtualenv of its own under
``~/.cache/parley-bench/litellm`` (``$PARLEY_BENCH_CACHE``), made on the first run and
reused. No database, one worker, a master key, the model ``fake-model`` routed to the
same fake upstream as everything else; nothing that calls out (the model cost map is the
packaged one, telemetry off)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from bench.harness import log

CACHE = Path(os.environ.get("PARLEY_BENCH_CACHE", Path.home() / ".cache" / "parley-bench"))
VENV = CACHE / "litellm"
INSTALLED = VENV / ".installed"  # written only after a whole install, so a broken one retries
MASTER_KEY = "sk-parley-bench"
READY = "/health/liveliness"
CHAT = "/v1/chat/completions"


async def install() -> Path | str:
    """The ``litellm`` command, or why there is none."""
    command = VENV / "bin" / "litellm"
    if INSTALLED.exists() and command.exists():
        return command
    log(f"installing litellm[proxy] into {VENV} (once)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip += ["--disable-pip-version-check"]
    for step in ([sys.executable, "-m", "venv", "--clear", str(VENV)], [*pip, "litellm[proxy]"]):
        process = await asyncio.create_subprocess_exec(
            *step, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 900)
        except TimeoutError:
            process.kill()
            return "installing litellm[proxy] took over 15 minutes"
        if process.returncode != 0:
            lines = [ln for ln in output.decode(errors="replace").splitlines() if ln.strip()]
            return f"`{' '.join(step[-2:])}` failed: {' / '.join(lines[-3:])[:400]}"
    if not command.exists():
        return f"litellm[proxy] installed no {command}"
    INSTALLED.touch()
    return command


PARLEY_VENV = CACHE / "parley"


async def production_parley(root: Path, fallback: str) -> tuple[str, str]:
    """``parley`` as an operator installs it -- ``pip install`` of this checkout, no dev or
    bench extras -- and how it was installed. The dev venv also holds what only tests
    and the benchmark import, and some of it is loaded if present (Litestar's pydantic
    plugin, for one): ~20 MB of RSS that an installed Parley does not carry. Editable, so
    it runs this checkout's ``src/``; made again when ``pyproject.toml`` changes.
    ``fallback`` (the dev venv's ``parley``) if it cannot be made."""
    command = PARLEY_VENV / "bin" / "parley"
    wanted = (root / "pyproject.toml").read_bytes()
    marker = PARLEY_VENV / ".installed"
    if command.exists() and marker.exists() and marker.read_bytes() == wanted:
        return str(command), "a production install (pip install -e ., no extras)"
    log(f"installing Parley without extras into {PARLEY_VENV} (when pyproject.toml changes)")
    PARLEY_VENV.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(PARLEY_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    steps = ([sys.executable, "-m", "venv", "--clear", str(PARLEY_VENV)], [*pip, "-e", str(root)])
    for step in steps:
        process = await asyncio.create_subprocess_exec(
            *step, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0 or not command.parent.exists():
            tail = " / ".join(output.decode(errors="replace").splitlines()[-2:])[:300]
            log(f"could not install Parley alone ({tail}); measuring the dev venv's")
            return fallback, "the dev venv (a production install failed)"
    if not command.exists():
        return fallback, "the dev venv (a production install made no parley command)"
    marker.write_bytes(wanted)
    return str(command), "a production install (pip install -e ., no extras)"


def version() -> str:
    found = sorted(VENV.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[-1].name.removeprefix("litellm-").removesuffix(".dist-info") if found else "?"


def config(upstream: str) -> str:
    """The proxy's config.yaml (JSON is YAML)."""
    model = {
        "model_name": "fake-model",
        "litellm_params": {"model": "openai/fake-model", "api_base": upstream, "api_key": "x"},
    }
    return json.dumps(
        {
            "model_list": [model],
            "litellm_settings": {"telemetry": False},
            "general_settings": {"master_key": MASTER_KEY},
        },
        indent=2,
    )


def command(litellm: Path, config_path: Path, port: int) -> list[str]:
    where = ["--host", "127.0.0.1", "--port", str(port)]
    return [str(litellm), "--config", str(config_path), *where, "--num_workers", "1"]


def environment(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "DATABASE_URL"}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
    return env
