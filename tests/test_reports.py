"""Report files: they agree with the store, state coverage, and render tenant text inert."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from reports.escaping import escape_markdown, escape_terminal
from reports.files import write_sweep_reports
from scanner.config import parse_config
from scanner.records import CollectResult, Credential, InventoryStatus, Privilege
from scanner.store import Store
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOSTILE = "<img src=x onerror=alert(1)> | *pwn* [x](http://evil)"


def test_escape_markdown_neutralises_html_tables_links_and_emphasis():
    out = escape_markdown(HOSTILE + "\nnext")
    assert "<" not in out and ">" not in out
    assert "\\|" in out and "\\*pwn\\*" in out and "\\[x\\](http://evil)" in out
    assert "\n" not in out


def test_escape_terminal_drops_control_sequences_and_markup():
    out = escape_terminal("\x1b[31mred[/] [bold]x\u202e")
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\[bold]" in out


def _config(tmp_path):
    return parse_config({"store": {"url": f"sqlite:///{tmp_path}/s.db"}, "reports": {"dir": str(tmp_path / "reports")}}, base_dir=tmp_path)


def _sweep_with(config, results):
    """A real sweep whose collectors are replaced by fixed results (no sources configured)."""
    from scanner import sweep as sweep_mod

    store = Store(config.store_url)
    sid = store.begin_sweep(NOW)
    snap = store.build_snapshot(results)
    from detectors.rules import evaluate
    from graph.build import build_graph

    changes = store.diff_findings(evaluate(build_graph(snap.records), NOW, {}, snap.stale_keys), snap)
    store.commit_sweep(sid, snap, changes, sweep_mod.summarise([dict(c.finding, change=c.change) for c in changes], snap.coverage, snap.carried, 0.1, len(snap.records)))
    return store, sid


def test_reports_are_written_escaped_and_state_coverage(tmp_path):
    config = _config(tmp_path)
    key = Credential(key="github:deploy_key:acme/api/1", source="github", inventory="github:acme/api:deploy_keys", name=HOSTILE,
                     credential_type="deploy_key", privilege=Privilege.WRITE, created_at=NOW - timedelta(days=500),
                     last_used_at=NOW - timedelta(days=300))
    results = [
        CollectResult(source="github", records=[key], coverage=[InventoryStatus(source="github", inventory="github:acme/api:deploy_keys", ok=True, count=1)]),
        CollectResult(source="github", coverage=[InventoryStatus(source="github", inventory="github:acme:pat_grants", ok=False,
                                                                 reason="fine-grained PATs need GitHub App auth")]),
    ]
    store, sid = _sweep_with(config, results)
    paths = write_sweep_reports(config, store, sid)
    md = (tmp_path / "reports" / f"sweep-{sid}.md").read_text()
    data = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert {p.name for p in paths} == {f"sweep-{sid}.json", f"sweep-{sid}.md", f"sweep-{sid}.html"}  # the default formats
    assert "<img" not in md and "&lt;img" in md
    page = (tmp_path / "reports" / "latest.html").read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "fine-grained PATs need GitHub App auth" in page
    assert "fine-grained PATs need GitHub App auth" in md
    # The JSON agrees with the store: the same open fingerprints.
    assert {f["fingerprint"] for f in data["findings"] if f["status"] == "open"} == {r.fingerprint for r in store.findings()}
    assert data["coverage"][0] == {"source": "github", "inventory": "github:acme:pat_grants", "ok": False, "count": 0,
                                   "reason": "fine-grained PATs need GitHub App auth", "carried": 0}
    assert data["findings"][0]["subject"]["name"] == HOSTILE  # JSON keeps the raw text; JSON encoding is its escaping


def test_sweep_with_only_file_sources_end_to_end(tmp_path):
    (tmp_path / "people.csv").write_text("email,status\nbob@acme.example,active\n")
    (tmp_path / "contracts.toml").write_text(
        '[[contract]]\nid = "C-1"\ncounterparty = "Globex"\nkind = "vendor"\nstart = 2024-01-01\nend = 2026-11-20\nsponsor = "bob@acme.example"\n')
    config = parse_config({"store": {"url": f"sqlite:///{tmp_path}/s.db"}, "contracts": {"file": "contracts.toml"},
                           "people": {"file": "people.csv"}, "reports": {"dir": "out"}}, base_dir=tmp_path)
    outcome = run_sweep(config, now=NOW)
    assert {c.inventory for c in outcome.coverage if c.ok} == {"contracts:register", "hr:people"}
    assert outcome.summary["records"] == 2
    assert (tmp_path / "out" / "latest.md").exists()
    # A missing register is a coverage gap with its reason, not an empty register.
    (tmp_path / "contracts.toml").unlink()
    outcome = run_sweep(config, now=NOW)
    gap = next(c for c in outcome.coverage if c.inventory == "contracts:register")
    assert not gap.ok and "contracts.toml" in gap.reason
    assert outcome.summary["records"] == 2  # the contract is carried from the last good read
