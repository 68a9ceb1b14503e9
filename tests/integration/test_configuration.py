"""Settings come from defaults, then the TOML file in PARLEY_CONFIG, then PARLEY_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import Settings, SettingsError, load_settings, with_secret_key


def test_defaults_without_any_configuration() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./parley.db"
    assert settings.max_active_conversations == 10
    assert settings.max_message_chars == 4000
    assert settings.access_token_minutes == 15


def test_toml_then_environment_take_precedence(tmp_path: Path) -> None:
    config = tmp_path / "parley.toml"
    config.write_text('max_message_chars = 100\nport = 9000\nsystem_prompt = "Be brief."\n')
    settings = load_settings({"PARLEY_CONFIG": str(config), "PARLEY_PORT": "9100"})
    assert settings.max_message_chars == 100
    assert settings.port == 9100
    assert settings.system_prompt == "Be brief."

    table = tmp_path / "table.toml"
    table.write_text("[parley]\nmax_active_conversations = 3\n")
    assert load_settings({"PARLEY_CONFIG": str(table)}).max_active_conversations == 3


@pytest.mark.parametrize(
    ("environment", "mentions"),
    [
        ({"PARLEY_PORT": "eighty"}, "port"),
        ({"PARLEY_DEFAULT_TEMPERATURE": "warm"}, "default_temperature"),
        ({"PARLEY_CONFIG": "/nonexistent/parley.toml"}, "does not exist"),
    ],
)
def test_invalid_settings_fail_clearly(environment: dict[str, str], mentions: str) -> None:
    with pytest.raises(SettingsError, match=mentions):
        load_settings(environment)


def test_unknown_or_malformed_toml_is_refused(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("max_mesage_chars = 5\n")
    with pytest.raises(SettingsError, match="max_mesage_chars"):
        load_settings({"PARLEY_CONFIG": str(unknown)})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"PARLEY_CONFIG": str(broken)})


def test_secret_key_is_never_in_the_settings_repr() -> None:
    settings = Settings(secret_key="super-secret-value-1234567890")
    assert "super-secret-value" not in repr(settings)


def test_a_configured_secret_key_is_used_as_is(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    settings = with_secret_key(Settings(secret_key="configured", secret_key_file=str(key_file)))
    assert settings.secret_key == "configured"
    assert not key_file.exists()


def test_a_development_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    first = with_secret_key(Settings(secret_key_file=str(key_file)))
    second = with_secret_key(Settings(secret_key_file=str(key_file)))
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    assert key_file.stat().st_mode & 0o777 == 0o600
