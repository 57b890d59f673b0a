"""`nhiscan serve` as a real process: it sweeps on schedule, one scheduler per database,
one catch-up sweep after downtime, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scanner.config import load_config
from scanner.store import Store

# The installed console script, as users run it (``python -m`` would put the working
# directory, which holds a reports/ folder, first on sys.path).
NHISCAN = str(Path(sys.executable).with_name("nhiscan"))


def _config(tmp_path: Path, cron: str) -> Path:
    (tmp_path / "people.csv").write_text("email,status\nbob@acme.example,active\n")
    (tmp_path / "contracts.toml").write_text(
        '[[contract]]\nid = "C-1"\ncounterparty = "Globex"\nkind = "vendor"\nstart = 2024-01-01\nsponsor = "bob@acme.example"\n'
        'match_names = ["globex-*"]\n')
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///nhiscan.db"\n[reports]\ndir = "reports"\n[contracts]\nfile = "contracts.toml"\n'
                    f'[people]\nfile = "people.csv"\n[schedule]\ncron = "{cron}"\n')
    return path


def _serve(config: Path) -> subprocess.Popen:
    return subprocess.Popen([NHISCAN, "serve", "-c", str(config)], cwd=config.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})


def _sweeps(config: Path):
    return sorted(Store(load_config(config).store_url).sweeps(limit=1000), key=lambda s: s.id)


def _wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def test_serve_sweeps_on_schedule_and_a_second_serve_stands_by(tmp_path):
    config = _config(tmp_path, "* * * * * *")  # every second
    first = _serve(config)
    try:
        assert _wait_for(lambda: len(_sweeps(config)) >= 2, 20), "the daemon did not sweep by itself"
        second = _serve(config)
        time.sleep(4)
        out2 = _stop(second)
        assert "standing by" in out2
        sweeps = _sweeps(config)
        # Sweeps never overlap: each started after the previous one finished.
        for a, b in zip(sweeps, sweeps[1:]):
            assert a.finished_at is not None and b.started_at >= a.finished_at
    finally:
        out1 = _stop(first)
    assert first.returncode == 0, out1
    # A clean stop: every sweep that began was completed (nothing half-written).
    assert all(s.status == "complete" for s in _sweeps(config))


def test_a_machine_that_was_down_runs_one_catch_up_sweep(tmp_path):
    # Three slots a minute apart from each other by one second: S, S+1, S+2.
    now = datetime.now(timezone.utc)
    if now.second > 50:
        time.sleep(61 - now.second)
        now = datetime.now(timezone.utc)
    s = now.second + 3
    config = _config(tmp_path, f"{s},{s + 1},{s + 2} * * * * *")
    proc = _serve(config)
    assert _wait_for(lambda: len(_sweeps(config)) >= 1, 15)
    _stop(proc)  # stopped right after slot S: slots S+1 and S+2 are missed while it is down
    ran = len(_sweeps(config))
    assert ran == 1
    _wait_for(lambda: datetime.now(timezone.utc).second >= s + 3, 10)
    proc = _serve(config)
    try:
        assert _wait_for(lambda: len(_sweeps(config)) > ran, 15), "no catch-up sweep"
        time.sleep(2.5)
        # Two missed slots, coalesced into one catch-up sweep.
        assert len(_sweeps(config)) == ran + 1
    finally:
        _stop(proc)


def test_invalid_config_stops_serve_with_the_error(tmp_path):
    config = _config(tmp_path, "not a cron")
    result = subprocess.run([NHISCAN, "serve", "-c", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "schedule.cron" in result.stderr and "not a valid crontab expression" in result.stderr
