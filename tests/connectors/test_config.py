"""Settings: defaults, precedence (flags > NUDGE_* > nudge.toml > defaults), and errors."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from nudge.config import (
    ConfigError,
    Settings,
    add_settings_arguments,
    load_settings,
    parse_duration,
    parse_smtp_url,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "delivery.md"


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stray nudge.toml from the working directory."""
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_match_the_documented_ones() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.rules == "rules"
    assert settings.broker_url == "kafka://127.0.0.1:9092"
    assert settings.redis_url is None
    assert settings.partitions == 8
    assert (settings.events_topic, settings.actions_topic) == ("nudge.events", "nudge.actions")
    assert (settings.dlq_topic, settings.actions_dlq_topic) == (
        "nudge.events.dlq",
        "nudge.actions.dlq",
    )
    assert settings.outbox == "outbox"
    assert settings.http_port == 8080
    assert settings.templates_dir == Path("templates")


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = write(tmp_path / "nudge.toml", 'partitions = 2\nrules = "from-file"\noutbox = "f"\n')
    env = {"NUDGE_PARTITIONS": "3", "NUDGE_RULES": "from-env"}
    settings = load_settings(flags={"partitions": 4}, environ=env, config_path=config)
    assert settings.partitions == 4
    assert settings.rules == "from-env"
    assert settings.outbox == "f"


def test_nudge_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path / "nudge.toml", 'rules = "shop/rules"\n')
    settings = load_settings(environ={})
    assert settings.rules == "shop/rules"
    assert settings.templates_dir == Path("shop/templates")


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = write(tmp_path / "other.toml", "http_port = 9000\n")
    assert load_settings(environ={"NUDGE_CONFIG": str(config)}).http_port == 9000


def test_an_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={}, config_path=tmp_path / "missing.toml")


def test_unknown_file_key_is_an_error_with_a_hint(tmp_path: Path) -> None:
    config = write(tmp_path / "nudge.toml", 'smpt_url = "smtp://localhost"\n')
    with pytest.raises(ConfigError, match=r"unknown key `smpt_url` \(did you mean `smtp_url`\?\)"):
        load_settings(environ={}, config_path=config)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "nudge.toml", "partitions = \n")
    with pytest.raises(ConfigError, match=r"nudge\.toml: not valid TOML"):
        load_settings(environ={}, config_path=config)


def test_wrong_types_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NUDGE_PARTITIONS: expected a whole number"):
        load_settings(environ={"NUDGE_PARTITIONS": "many"})
    config = write(tmp_path / "bad.toml", 'http_port = "80"\nretry_max_attempts = true\n')
    with pytest.raises(ConfigError, match="retry_max_attempts"):
        load_settings(environ={}, config_path=config)
    with pytest.raises(ConfigError, match="at least 1"):
        load_settings(environ={"NUDGE_PARTITIONS": "0"})
    with pytest.raises(ConfigError, match="expected one of auto, on, off"):
        load_settings(environ={"NUDGE_SMTP_STARTTLS": "maybe"})


def test_event_ids_are_remembered_for_at_least_seven_days() -> None:
    # LANGUAGE.md section 1: "ids are remembered for at least 7 days, configurable"
    with pytest.raises(ConfigError, match=r"NUDGE_DEDUPE_TTL: must be at least 7d, got 36h"):
        load_settings(environ={"NUDGE_DEDUPE_TTL": "36h"})
    assert load_settings(environ={"NUDGE_DEDUPE_TTL": "7d"}).dedupe_ttl == 7 * 86400
    assert load_settings(environ={"NUDGE_DEDUPE_TTL": "30d"}).dedupe_ttl == 30 * 86400


def test_strings_from_the_file_are_coerced_like_environment_values(tmp_path: Path) -> None:
    config = write(tmp_path / "nudge.toml", 'http_port = "8081"\n')
    assert load_settings(environ={}, config_path=config).http_port == 8081


def test_durations_accept_units_or_seconds(tmp_path: Path) -> None:
    config = write(tmp_path / "nudge.toml", 'dedupe_ttl = "14d"\nretry_max_delay = 90\n')
    settings = load_settings(environ={"NUDGE_RETRY_BASE_DELAY": "500ms"}, config_path=config)
    assert settings.dedupe_ttl == 14 * 86400
    assert settings.retry_max_delay == 90
    assert settings.retry_base_delay == 0.5
    assert parse_duration("2w") == 14 * 86400
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_webhooks_from_a_table_pairs_or_json(tmp_path: Path) -> None:
    config = write(
        tmp_path / "nudge.toml",
        '[webhooks]\ncrm = "https://crm.example/hook"\nslack = "https://hooks.example/x"\n',
    )
    assert dict(load_settings(environ={}, config_path=config).webhooks) == {
        "crm": "https://crm.example/hook",
        "slack": "https://hooks.example/x",
    }
    pairs = load_settings(environ={"NUDGE_WEBHOOKS": "crm=https://a.example/1, b=http://b/2"})
    assert dict(pairs.webhooks) == {"crm": "https://a.example/1", "b": "http://b/2"}
    as_json = load_settings(environ={"NUDGE_WEBHOOKS": '{"crm": "https://a.example/1"}'})
    assert dict(as_json.webhooks) == {"crm": "https://a.example/1"}
    with pytest.raises(ConfigError, match=r"webhooks\.crm"):
        load_settings(environ={"NUDGE_WEBHOOKS": "crm=ftp://x"})


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.partitions = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.webhooks["x"] = "y"  # type: ignore[index]


def test_argparse_namespace_can_be_passed_as_flags() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules")
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(["--rules", "mine"])
    settings = load_settings(flags=vars(args), environ={"NUDGE_PARTITIONS": "5"})
    assert settings.rules == "mine"
    assert settings.partitions == 5  # the flag was not given: None does not override


def test_settings_flags_for_a_command(tmp_path: Path) -> None:
    config = write(tmp_path / "shop.toml", 'rules = "from-file"\nhttp_port = 9001\n')
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, ["rules", "webhooks", "smtp_starttls"])
    args = parser.parse_args(
        [
            "--config",
            str(config),
            "--webhooks",
            "crm=https://crm.example/h",
            "--smtp-starttls",
            "on",
        ]
    )
    settings = load_settings(vars(args), environ={})
    assert settings.rules == "from-file"
    assert settings.http_port == 9001
    assert dict(settings.webhooks) == {"crm": "https://crm.example/h"}
    assert settings.smtp_starttls == "on"
    with pytest.raises(ValueError, match="did you mean `rules`"):
        add_settings_arguments(argparse.ArgumentParser(), ["rule"])


def test_unknown_environment_variables_are_ignored() -> None:
    assert load_settings(environ={"NUDGE_SMPT_URL": "x"}) == Settings()


def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://mail.example")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls) == (
        "mail.example",
        25,
        False,
        None,
    )
    submission = parse_smtp_url("smtp://ann:p%40ss@mail.example", "on")
    assert (submission.port, submission.start_tls) == (587, True)
    assert (submission.username, submission.password) == ("ann", "p@ss")
    implicit = parse_smtp_url("smtps://mail.example")
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)
    assert parse_smtp_url("smtp://h:2525", "off").start_tls is False
    with pytest.raises(ConfigError, match="smtp://"):
        load_settings(environ={"NUDGE_SMTP_URL": "http://mail.example"})


def test_secrets_stay_out_of_repr_and_redacted_output() -> None:
    settings = load_settings(
        environ={
            "NUDGE_SMTP_URL": "smtp://ann:hunter2@mail.example:587",
            "NUDGE_TRACKING_SECRET": "tsecret",
            "NUDGE_WEBHOOK_SECRET": "wsecret",
        }
    )
    for text in (repr(settings), str(settings.redacted())):
        assert "hunter2" not in text
        assert "tsecret" not in text
        assert "wsecret" not in text
    assert settings.redacted()["smtp_url"] == "smtp://ann:***@mail.example:587"


def test_retry_delays_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="retry_base_delay"):
        load_settings(environ={"NUDGE_RETRY_BASE_DELAY": "10m", "NUDGE_RETRY_MAX_DELAY": "1m"})


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [
        f.name
        for f in dataclasses.fields(Settings)
        if f"`{f.name}`" not in text or f"`NUDGE_{f.name.upper()}`" not in text
    ]
    assert not missing, f"docs/delivery.md does not document {missing}"
