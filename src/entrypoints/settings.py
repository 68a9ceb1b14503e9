"""Settings, read once: built-in defaults, then an optional TOML file (``PARLEY_CONFIG``),
then ``PARLEY_*`` environment variables. Every setting is listed in the README."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from adapters.llm.defaults import BUILTIN_PROVIDERS

log = logging.getLogger("parley.settings")

ENV_PREFIX = "PARLEY_"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///./parley.db"
    secret_key: str = field(default="", repr=False)
    secret_key_file: str = ".parley-secret-key"
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    max_active_conversations: int = 10
    max_message_chars: int = 4000
    history_max_messages: int = 50
    history_max_chars: int = 16_000
    system_prompt: str = ""
    default_model: str = ""
    default_temperature: float = 0.7
    default_max_tokens: int = 1024
    log_level: str = "INFO"
    # "text" for people, "json" for log collectors: one JSON object per line.
    log_format: str = "text"
    # A log line per request (always for 5xx answers), with its request id.
    access_log: bool = False
    # GET /metrics (Prometheus). With a token, scrapers send it as a Bearer token; without
    # one, only clients on this host (loopback) may scrape.
    metrics_enabled: bool = False
    metrics_token: str = field(default="", repr=False)
    # Model providers. Tables come from the TOML file; vendor variables such as
    # OPENAI_API_KEY are folded into ``providers`` by ``load_settings``.
    providers: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    remove_models: tuple[str, ...] = ()
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    keep_echo: bool = False
    provider_connect_timeout: float = 5.0
    provider_read_timeout: float = 60.0
    provider_deadline: float = 120.0
    provider_max_attempts: int = 3
    provider_backoff_initial: float = 0.5
    provider_backoff_max: float = 8.0
    provider_retry_after_max: float = 20.0
    # Consecutive provider failures that cool a model down (0: never), and for how long.
    provider_cooldown_failures: int = 3
    provider_cooldown_seconds: float = 30.0
    allow_private_image_urls: bool = False
    image_max_bytes: int = 5 * 1024 * 1024
    redis_url: str = ""
    workers: int = 1
    # A 5 MiB image as a base64 data: URI is about 6.7 MiB of JSON.
    max_body_bytes: int = 8 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, networks,
    # or "*"). Empty: forwarded headers are ignored and the peer address is the client.
    trusted_proxies: tuple[str, ...] = ()
    shutdown_grace_seconds: float = 30.0
    # A streamed reply's lease: renewed every third of it by its worker; a reply whose
    # lease ended (its worker died) is marked interrupted.
    reply_lease_seconds: float = 15.0
    db_pool_size: int = 10
    # No overflow by default: SQLAlchemy closes an overflow connection when it is
    # returned to a full pool, so under steady load they were opened and closed ~8 times
    # a second (a PostgreSQL backend started each time). In bench/, 10 + 0 served more
    # than 10 + 10 and 20 + 10 at c=16 and c=64.
    db_max_overflow: int = 0
    db_pool_timeout: float = 10.0
    db_statement_timeout_ms: int = 30_000
    # Budgets for users with none of their own (an admin sets those through the API):
    # tokens and cost per day and per month; "" is no limit. Costs are in ``currency``,
    # at the models' prices (TOML ``input_price``/``output_price`` per million tokens).
    budget_daily_tokens: str = ""
    budget_monthly_tokens: str = ""
    budget_daily_cost: str = ""
    budget_monthly_cost: str = ""
    # The zone whose midnights start budget days and months (an IANA name).
    budget_timezone: str = "UTC"
    currency: str = "USD"
    # The models users with no list of their own may use; empty: every model.
    allowed_models: tuple[str, ...] = ()
    rate_limit: str = "60/minute"
    auth_rate_limit: str = "10/minute"
    session_max_age: int = 14 * 24 * 3600
    cookie_secure: bool = False
    # WeChat website login; read from the unprefixed WECHAT_* variables too.
    wechat_app_id: str = ""
    wechat_app_secret: str = field(default="", repr=False)
    wechat_redirect_uri: str = ""
    wechat_open_base_url: str = "https://open.weixin.qq.com"
    wechat_api_base_url: str = "https://api.weixin.qq.com"

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"setting log_format: {self.log_format!r} is not text or json")
        for proxy in self.trusted_proxies:
            if proxy != "*" and not _is_address_or_network(proxy):
                raise SettingsError(
                    f"setting trusted_proxies: {proxy!r} is not an IP address, a network "
                    "(10.0.0.0/8) or '*'"
                )

    def __repr__(self) -> str:
        shown = []
        for spec in fields(self):
            if not spec.repr:
                continue
            value = getattr(self, spec.name)
            if spec.name in ("database_url", "redis_url") and value:
                value = (
                    make_url(value.replace("redis://", "redis+x://"))
                    .render_as_string(hide_password=True)
                    .replace("redis+x://", "redis://")
                )
            shown.append(f"{spec.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def as_config(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["remove_models"] = list(self.remove_models)
        return config


def _is_address_or_network(text: str) -> bool:
    # The forms uvicorn's ProxyHeadersMiddleware understands; it silently treats anything
    # else as a literal that no peer address ever matches.
    try:
        if "/" in text:
            ipaddress.ip_network(text)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_path = env.get(f"{ENV_PREFIX}CONFIG")
    if config_path:
        values.update(_from_toml(Path(config_path)))
    known = {f.name: f for f in fields(Settings)}
    for name, spec in known.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None and name.startswith("wechat_"):
            raw = env.get(name.upper())
        if raw is not None and name not in _TABLES:
            values[name] = _parse(name, raw, spec.type)
    values["providers"], values["models"] = _providers_from_environment(
        env, values.get("providers", {}), values.get("models", {})
    )
    return Settings(**values)


_TABLES = {"providers", "models", "fallbacks"}


def _providers_from_environment(
    env: Mapping[str, str],
    providers: dict[str, dict[str, Any]],
    models: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Fold vendor variables (OPENAI_API_KEY, GEMINI_BASE_URL, ...) and the
    PARLEY_LOCAL_* trio into the provider and model tables; the environment wins."""
    providers = {name: dict(table) for name, table in providers.items()}
    models = {name: dict(table) for name, table in models.items()}
    for provider in BUILTIN_PROVIDERS:
        for variable, key in ((provider.key_env, "api_key"), (provider.base_url_env, "base_url")):
            if variable and env.get(variable):
                providers.setdefault(provider.name, {})[key] = env[variable]
    for model_id in filter(
        None, (m.strip() for m in env.get("PARLEY_LOCAL_MODELS", "").split(","))
    ):
        models.setdefault(model_id, {"provider": "local", "upstream": model_id})
    return providers, models


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"PARLEY_CONFIG points at {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path} is not valid TOML: {error}") from None
    table = document.get("parley", document)
    known = {f.name: f.type for f in fields(Settings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise SettingsError(f"{path}: unknown settings {', '.join(unknown)}")
    return {name: _parse(name, value, known[name]) for name, value in table.items()}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(name: str, raw: Any, kind: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    try:
        return _parser(kind_name)(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name}: {raw!r} is not a valid {kind_name}") from None


def _parser(kind_name: str) -> Callable[[Any], Any]:
    """The parser for a field's type; each raises TypeError or ValueError on a bad value."""
    if kind_name.startswith("dict"):
        return _parse_table
    if kind_name.startswith("tuple"):
        return _parse_list
    return _SCALAR_PARSERS.get(kind_name, _parse_text)


def _parse_table(raw: Any) -> Any:
    if not isinstance(raw, dict) or not all(isinstance(v, dict | list) for v in raw.values()):
        raise ValueError
    return raw


def _parse_list(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ValueError
    return tuple(str(item).strip() for item in items if str(item).strip())


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError
    return text in _TRUE


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError
    return int(raw)


def _parse_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError
    return float(raw)


def _parse_text(raw: Any) -> str:
    if not isinstance(raw, str | int | float):
        raise ValueError
    return str(raw)


_SCALAR_PARSERS: dict[str, Callable[[Any], Any]] = {
    "bool": _parse_bool,
    "int": _parse_int,
    "float": _parse_float,
}


def with_secret_key(settings: Settings) -> Settings:
    """Settings with a secret key: the configured one, else one kept in a local file.

    For development only: the generated key lives in ``secret_key_file`` (mode 0600)
    so tokens survive restarts. Production sets PARLEY_SECRET_KEY."""
    if settings.secret_key:
        return settings
    path = Path(settings.secret_key_file)
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
    else:
        key = secrets.token_urlsafe(48)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    log.warning(
        "PARLEY_SECRET_KEY is not set; using the development key in %s. "
        "Set PARLEY_SECRET_KEY in production.",
        path,
    )
    return dataclasses.replace(settings, secret_key=key)
