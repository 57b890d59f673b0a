"""Risk acceptance end to end: `nhiscan accept`, the reviewed file form, expiry and reopening.

(That an accepted finding is not alerted is held by tests/test_notify_plan.py.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from sandbox import Sandbox
from scanner.demo import prepare

from scanner.cli import main
from scanner.config import load_config
from scanner.store import Store
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


ESTATE = {
    "github": {
        "tokens": [{"token": "ghp_acceptanceTestToken000000000000001", "login": "scanner", "scopes": ["read:org", "admin:org", "repo", "admin:org_hook"]}],
        "orgs": [{"login": "acme", "saml": True,
                  "members": [{"login": "scanner", "role": "admin"}, {"login": "bob", "email": "bob@acme.example", "role": "member"}],
                  "repos": [{"name": "api", "deploy_keys": [
                      {"title": "old-backup", "read_only": True, "added_by": "bob", "created_at": "-300d", "last_used": "-200d"}]}]}],
    },
    "people": [{"email": "bob@acme.example", "status": "active"}],
}


@pytest.fixture
def sandbox():
    with Sandbox(ESTATE, now=NOW) as sb:
        yield sb


def _setup(sb, tmp_path, acceptances: str | None = None):
    """One dormant, long-lived deploy key of bob's: two findings to accept."""
    extra = ""
    if acceptances is not None:
        (tmp_path / "acceptances.toml").write_text(acceptances)
        extra = '[acceptances]\nfile = "acceptances.toml"\n'
    return prepare(sb, tmp_path, None, vendors=set(), extra=extra)


def _sweep(config_path, now=NOW):
    outcome = run_sweep(load_config(config_path), now=now)
    return {f["rule_id"]: f for f in outcome.findings}


def test_cli_accept_then_expiry_reopens(sandbox, tmp_path):
    config_path = _setup(sandbox, tmp_path)
    found = _sweep(config_path)
    fp = found["dormant"]["fingerprint"]
    runner = CliRunner()
    result = runner.invoke(main, ["accept", fp, "-c", str(config_path), "--until", "2026-11-10", "--reason", "renewal signed, paperwork pending",
                                  "--by", "bob@acme.example"])
    assert result.exit_code == 0, result.output
    assert "accepted until 2026-11-10" in result.output
    changes = {f["fingerprint"]: f["change"] for f in run_sweep(load_config(config_path), now=NOW).findings}
    assert changes[fp] == "accepted"
    store = Store(load_config(config_path).store_url)
    assert [r.fingerprint for r in store.findings(status="accepted")] == [fp]
    # The JSON report lists it as accepted, not open.
    import json

    report = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert next(f for f in report["findings"] if f["fingerprint"] == fp)["status"] == "accepted"
    # Past the date it reopens, once.
    later = {f["fingerprint"]: f["change"] for f in run_sweep(load_config(config_path), now=NOW + timedelta(days=10)).findings}
    assert later[fp] == "reopened"
    again = {f["fingerprint"]: f["change"] for f in run_sweep(load_config(config_path), now=NOW + timedelta(days=11)).findings}
    assert again[fp] == "open"


def test_cli_accept_rejects_bad_input(sandbox, tmp_path):
    config_path = _setup(sandbox, tmp_path)
    _sweep(config_path)
    runner = CliRunner()
    bad_date = runner.invoke(main, ["accept", "x", "-c", str(config_path), "--until", "soon", "--reason", "r", "--by", "b@a.example"])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
    unknown = runner.invoke(main, ["accept", "nope", "-c", str(config_path), "--until", "2027-01-01", "--reason", "r", "--by", "b@a.example"])
    assert unknown.exit_code == 2 and "no finding with fingerprint nope" in unknown.output


def test_the_reviewed_file_is_the_truth_for_its_entries(sandbox, tmp_path):
    config_path = _setup(sandbox, tmp_path, acceptances="")
    found = _sweep(config_path)
    fp = found["dormant"]["fingerprint"]
    (tmp_path / "acceptances.toml").write_text(
        f'[[accept]]\nfingerprint = "{fp}"\nuntil = 2027-03-31\nreason = "vendor offboarding in Q1"\nby = "bob@acme.example"\n'
        '[[accept]]\nfingerprint = "bad"\nuntil = "someday"\nreason = "x"\nby = "bob"\n')
    changes = {f["fingerprint"]: f["change"] for f in run_sweep(load_config(config_path), now=NOW).findings}
    assert changes[fp] == "accepted"
    acc = Store(load_config(config_path).store_url).acceptances()
    assert set(acc) == {fp} and acc[fp].reason == "vendor offboarding in Q1" and acc[fp].origin.startswith("file:")
    # Removing the entry from the file (a reviewed revert) lifts the acceptance at the next sweep.
    (tmp_path / "acceptances.toml").write_text("")
    changes = {f["fingerprint"]: f["change"] for f in run_sweep(load_config(config_path), now=NOW).findings}
    assert changes[fp] == "reopened"
