"""The worker tuning knobs, `replication_factor` and `redis_key_prefix` as settings."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from nudge.config import STREAM_TUNING, ConfigError, Settings, load_settings
from nudge.engine.stream import StreamOptions


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_tuning_defaults_are_the_workers_own() -> None:
    assert Settings().stream_tuning == {
        f.name: getattr(StreamOptions(), f.name) for f in fields(StreamOptions)
    }
    assert set(STREAM_TUNING) == {f.name for f in fields(StreamOptions)}
    assert StreamOptions(**load_settings(environ={}).stream_tuning) == StreamOptions()


def test_tuning_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "nudge.toml"
    config.write_text('timer_interval = "50ms"\nbatch_records = 500\nsession_timeout = 3\n')
    settings = load_settings(
        environ={"NUDGE_FETCH_WAIT": "0.5", "NUDGE_HEARTBEAT_INTERVAL": "0.5"},
        config_path=config,
    )
    assert settings.timer_interval == pytest.approx(0.05)
    assert settings.batch_records == 500
    assert settings.fetch_wait == 0.5
    options = StreamOptions(**settings.stream_tuning)
    assert (options.session_timeout, options.heartbeat_interval) == (3.0, 0.5)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NUDGE_TIMER_INTERVAL", "0", "must be more than 0"),
        ("NUDGE_BATCH_RECORDS", "0", "at least 1"),
        ("NUDGE_HEARTBEAT_INTERVAL", "5s", "at most a third of session_timeout"),
        ("NUDGE_REPLICATION_FACTOR", "0", "at least 1"),
        ("NUDGE_REDIS_KEY_PREFIX", "shop{1}", "without braces"),
    ],
)
def test_bad_values_name_the_variable_and_the_rule(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={variable: value})


def test_replication_and_prefix() -> None:
    assert Settings().replication_factor is None
    assert Settings().redis_key_prefix == "nudge"
    settings = load_settings(
        environ={"NUDGE_REPLICATION_FACTOR": "2", "NUDGE_REDIS_KEY_PREFIX": "shop-eu"}
    )
    assert (settings.replication_factor, settings.redis_key_prefix) == (2, "shop-eu")
    assert load_settings(environ={"NUDGE_REPLICATION_FACTOR": ""}).replication_factor is None
