"""End to end: the demo estate in the sandbox, swept by real PyGithub through the whole flow.

config -> GitHub collector (real HTTP) -> store -> graph -> rules -> diff -> reports.
Nothing of ours is mocked; the clock is fixed so the estate's relative times are exact.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from detectors.rules import RULES
from sandbox import Sandbox
from scanner.config import load_config
from sandbox import generate_app_key_pair
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
PLANTED = ["AKIAQ3EGDEMOPLANTED7X", "xoxb-000000000000-demoPlantedValue-zz", "71c3fc11", "ghp_demoScannerToken", "ghp_faultyScanner"]
FAULTY_TOKEN = "ghp_faultyScannerToken00000000000000002"


@pytest.fixture(scope="module")
def app_keys():
    return generate_app_key_pair()


@pytest.fixture
def estate_data():
    data = yaml.safe_load(bundled_estate().read_text())
    # A second scanner token whose deploy-key listing for repo api always fails.
    data["github"]["tokens"].append({
        "token": FAULTY_TOKEN, "login": "nhiscan-reader", "scopes": data["github"]["tokens"][0]["scopes"],
        "faults": [{"path": "/repos/acme/api/keys", "fault": "server_error"}],
    })
    return data


@pytest.fixture
def demo(tmp_path, estate_data, app_keys):
    private, public = app_keys
    with Sandbox(estate_data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, tmp_path, private, vendors=set(), extra="[rules.dormant]\ndays = 90\n")
        yield sb, config_path


def sweep(config_path: Path):
    outcome = run_sweep(load_config(config_path), now=NOW)
    return outcome, {(f["rule_id"], f["subject"]["name"]): f for f in outcome.findings}


def test_demo_estate_catches_every_situation_and_stays_quiet_on_the_rest(demo):
    _, config_path = demo
    outcome, found = sweep(config_path)
    assert all(c.ok for c in outcome.coverage), [c for c in outcome.coverage if not c.ok]
    assert {rid for rid, _ in found} == set(RULES), "every rule fires on the demo estate"
    expected = {
        ("contract-ended", "globex-ci"), ("contract-ended", "globex-deploy"),
        ("credential-outlives-contract", "initech-sync"), ("contract-ending-soon", "C-200 Initech"),
        ("owner-missing", "mystery-key"), ("owner-missing", "umbrella-sync"),
        ("owner-departed", "legacy-backup"), ("owner-departed", "grace-laptop-sync"), ("owner-departed", "hooli-monitor"),
        ("excessive-privilege", "globex-ci"), ("excessive-privilege", "legacy-backup"), ("excessive-privilege", "NPM_TOKEN"),
        ("excessive-privilege", "release-bot"), ("excessive-privilege", "legacy deploy"),
        ("dormant", "legacy-backup"), ("dormant", "legacy deploy"), ("dormant", "mystery-key"),
        ("long-lived-credential", "release-bot"), ("long-lived-credential", "legacy deploy"),
        ("long-lived-credential", "NPM_TOKEN"), ("long-lived-credential", "DEPLOY_TOKEN"),
    }
    assert expected <= set(found)
    quiet = {"docs-readonly", "ci-metrics", "old-experiment", "SENTRY_DSN", "CODECOV_TOKEN", "stark-insights", "nhiscan",
             "metrics exporter", "alice laptop", "PROD_DB_PASSWORD"}
    assert not [k for k in found if k[1] in quiet]
    assert not [k for k in found if "stark" in k[1].lower()]
    # The third-party admin App weighs more.
    assert found[("excessive-privilege", "globex-ci")]["severity"] == "critical"
    # Evidence: why we believe eve owns the key, and that she left.
    f = found[("owner-departed", "legacy-backup")]
    assert f["owners"][0]["email"] == "eve@acme.example"
    assert f["owners"][0]["evidence"][0].startswith("deploy key added_by (GitHub API): eve")
    assert {r["name"] for r in f["reach"]} >= {"acme/api"}
    # frank has no public email: ownership comes from the config's login mapping, and says so.
    f = found[("excessive-privilege", "release-bot")]
    assert any("config identity mapping" in e for e in f["owners"][0]["evidence"])
    # The Globex contract covers its collaborator (login pattern) and her deploy key.
    g = next(v for (rid, _), v in found.items() if rid == "contract-ended" and v["subject"]["type"] == "user")
    assert g["contracts"][0]["id"] == "C-100" and "globex-*" in g["contracts"][0]["evidence"]


def test_second_sweep_is_stable_and_removal_resolves(demo):
    sb, config_path = demo
    first, found1 = sweep(config_path)
    second, found2 = sweep(config_path)
    assert {f["fingerprint"] for f in first.findings} == {f["fingerprint"] for f in second.findings}
    assert {f["change"] for f in second.findings} == {"open"}
    # Remove a deploy key in the tenant: its findings resolve; nothing else changes.
    with sb.github.mutate() as state:
        state.remove_deploy_key("acme", "api", "legacy-backup")
    third, found3 = sweep(config_path)
    resolved = {k for k, f in found3.items() if f["change"] == "resolved"}
    assert resolved == {(rid, "legacy-backup") for rid in ("owner-departed", "dormant", "excessive-privilege", "long-lived-credential")}
    assert all(f["change"] == "open" for k, f in found3.items() if k not in resolved)


def test_failed_inventory_keeps_findings_open_and_says_why(demo):
    _, config_path = demo
    sweep(config_path)
    (config_path.parent / "github-token.txt").write_text(FAULTY_TOKEN)
    outcome, found = sweep(config_path)
    gap = next(c for c in outcome.coverage if c.inventory == "github:acme/api:deploy_keys")
    assert not gap.ok and "500" in gap.reason
    assert not [k for k, f in found.items() if f["change"] == "resolved"]
    f = found[("owner-departed", "legacy-backup")]
    assert f["change"] == "open" and f["subject"]["stale"] is True
    # The rest of the source was read.
    assert next(c for c in outcome.coverage if c.inventory == "github:acme:members").ok
    md = (config_path.parent / "reports" / "latest.md").read_text()
    assert "github:acme/api:deploy\\_keys" in md and "500" in md


def test_no_secret_value_reaches_store_reports_or_logs(demo, caplog, capfd):
    _, config_path = demo
    caplog.set_level(logging.DEBUG)
    sweep(config_path)
    (config_path.parent / "github-token.txt").write_text(FAULTY_TOKEN)
    sweep(config_path)  # a failing inventory: error paths must not leak either
    out, err = capfd.readouterr()
    haystacks = {
        "store": (config_path.parent / "nhiscan.db").read_bytes().decode("latin-1"),
        "logs": caplog.text + out + err,
    }
    for p in (config_path.parent / "reports").iterdir():
        haystacks[p.name] = p.read_text()
    for where, text in haystacks.items():
        for value in PLANTED:
            assert value not in text, f"{value[:6]}... found in {where}"
    # The variables were read (coverage), and kept only as keyed hashes.
    report = json.loads((config_path.parent / "reports" / "latest.json").read_text())
    assert any(c["inventory"] == "github:acme/api:actions_variables" and c["ok"] and c["count"] >= 2 for c in report["coverage"])
