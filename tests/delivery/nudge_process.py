"""Running a `nudge` command as a subprocess: stdout and stderr to files, waits with tails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any NUDGE_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update(extra)
    return env


class NudgeProcess:
    """`python -m nudge.cli <argv>` in `workdir`; its output is kept in files there."""

    def __init__(
        self, argv: list[str], workdir: Path, env: Mapping[str, str], name: str = "nudge"
    ) -> None:
        self.argv = argv
        self.workdir = workdir
        self.env = dict(env)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> NudgeProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nudge.cli", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                env=self.env,
            )
        return self

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def lines(self) -> list[dict[str, Any]]:
        """stdout's JSON lines (a partly written last line is left out)."""
        text = self.stdout
        complete = text[: text.rfind("\n") + 1]
        return [orjson.loads(line) for line in complete.splitlines() if line.strip()]

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        """Poll `condition` until it is truthy; fail with the output's tail if it never is."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"`nudge {self.argv[0]}` exited ({self.process.returncode}) before {what}:\n"
                    f"{self.stderr[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.stderr[-4000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait; the exit code (None if it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
