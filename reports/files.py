"""Report files for one sweep: JSON and Markdown, HTML (reports/html.py), SARIF, CSV and OCSF (reports/machine.py).

Reports are built from the store, not from the sweep's memory, so any past
sweep can be re-rendered and a report always agrees with ``nhiscan findings``.
Each sweep writes ``sweep-<id>.<ext>`` and refreshes ``latest.<ext>``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from detectors.rules import SEVERITIES
from reports.escaping import escape_markdown as md
from reports.escaping import markdown_code
from scanner.config import Config
from scanner.store import Store


def sweep_report(store: Store, sweep_id: int) -> dict[str, Any]:
    """Everything a report shows for one sweep, as plain data."""
    sweep = next((s for s in store.sweeps(limit=1000) if s.id == sweep_id), None)
    if sweep is None:
        raise KeyError(f"no sweep {sweep_id}")
    events = store.finding_events(sweep_id)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings = []
    for row in store.findings(status="all"):
        change = events.get(row.fingerprint)
        if row.status == "resolved" and change != "resolved":
            continue  # resolved in an earlier sweep
        if change is None and row.status == "open":
            continue  # open in the store but not evaluated this sweep (a later sweep wrote it)
        f = dict(row.data)
        f.update(
            status=row.status,
            change=change,
            first_seen_sweep=row.first_seen_sweep,
            last_seen_sweep=row.last_seen_sweep,
            regressions=row.regressions,
            refreshed=row.refreshed,
        )
        findings.append(f)
    findings.sort(key=lambda f: (f["status"] != "open", order.get(f["severity"], 9), f["rule_id"], f["subject"]["name"]))
    coverage = [
        {"source": c.source, "inventory": c.inventory, "ok": c.ok, "count": c.count, "reason": c.reason, "carried": c.carried}
        for c in sorted(store.coverage(sweep_id), key=lambda c: (c.ok, c.inventory))
    ]
    return {
        "nhiscan_report": 1,
        "sweep": {
            "id": sweep.id,
            "started_at": _iso(sweep.started_at),
            "finished_at": _iso(sweep.finished_at),
            "clock": _iso(sweep.clock),
        },
        "summary": sweep.summary,
        "coverage": coverage,
        "findings": findings,
    }


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def render_markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    out: list[str] = []
    out.append(f"# nhiscan report — sweep {report['sweep']['id']}")
    out.append("")
    out.append(f"Clock: {report['sweep']['clock']} · records: {s.get('records', 0)} · took {s.get('seconds', 0)} s")
    out.append("")
    open_f = [f for f in report["findings"] if f["status"] == "open"]
    resolved = [f for f in report["findings"] if f["change"] == "resolved"]
    sev = s.get("open_by_severity", {})
    out.append("## Summary")
    out.append("")
    out.append("| severity | open |")
    out.append("|---|---|")
    for name in SEVERITIES:
        if sev.get(name):
            out.append(f"| {name} | {sev[name]} |")
    out.append("")
    changes = s.get("changes", {})
    out.append(
        f"New: {changes.get('new', 0)} · still open: {changes.get('open', 0) + changes.get('unrefreshed', 0)} · "
        f"regressed: {changes.get('regressed', 0)} · resolved: {changes.get('resolved', 0)}"
    )
    out.append("")
    if s.get("rows"):
        out.append("| rule | severity | new | open | regressed | resolved |")
        out.append("|---|---|---|---|---|---|")
        for r in s["rows"]:
            out.append(f"| {md(r['rule'])} | {r['severity']} | {r['new']} | {r['open']} | {r['regressed']} | {r['resolved']} |")
        out.append("")

    out.append("## Coverage")
    out.append("")
    gaps = [c for c in report["coverage"] if not c["ok"]]
    read = [c for c in report["coverage"] if c["ok"]]
    out.append(f"{len(read)} inventories read, {len(gaps)} not read.")
    out.append("")
    if gaps:
        out.append("| inventory not read | why | records kept from earlier sweeps |")
        out.append("|---|---|---|")
        for c in gaps:
            out.append(f"| {md(c['inventory'])} | {md(c['reason'] or '')} | {c['carried']} |")
        out.append("")
        out.append("Findings that depend on an inventory not read stay open; nothing is resolved because it could not be seen.")
        out.append("")

    out.append("## Open findings")
    out.append("")
    if not open_f:
        out.append("None.")
    for f in open_f:
        out.extend(_finding_md(f))
    accepted = [f for f in report["findings"] if f["status"] == "accepted"]
    if accepted:
        out.append("## Accepted risks")
        out.append("")
        for f in accepted:
            out.append(f"- {md(f['rule_id'])}: {md(f['subject']['name'])} ({md(f['subject']['type'])}) {markdown_code(f['fingerprint'])}")
        out.append("")
    if resolved:
        out.append("## Resolved this sweep")
        out.append("")
        for f in resolved:
            out.append(f"- {md(f['rule_id'])}: {md(f['subject']['name'])} ({md(f['subject']['type'])}) `{f['fingerprint']}`")
        out.append("")
    return "\n".join(out) + "\n"


def _finding_md(f: dict[str, Any]) -> list[str]:
    subj = f["subject"]
    tag = {"new": " (new)", "regressed": " (regressed)", "unrefreshed": " (source not read this sweep)"}.get(f.get("change") or "", "")
    out = [f"### [{f['severity'].upper()}] {md(f['title'])}: {md(subj['name'])}{tag}", ""]
    out.append(f"- **Subject:** {md(subj['type'])} {markdown_code(subj['key'])}" + (" — data from an earlier sweep" if subj.get("stale") else ""))
    out.append(f"- **Why:** {md(f['why'])}")
    for o in f.get("owners", []):
        who = o["email"] or o["account"]
        out.append(f"- **Owner ({md(o['role'])}):** {md(who)} — {md(o['status'])}; evidence: {md(' → '.join(o['evidence']))}")
    if not f.get("owners"):
        out.append("- **Owner:** none resolved")
    for sp in f.get("sponsors", []):
        out.append(f"- **Sponsor:** {md(sp['email'] or 'none named')} ({md(sp['status'])}) for contract {md(sp['contract'])}")
    for c in f.get("contracts", []):
        when = f"ended {c['end']}" if c["status"] == "ended" and c["end"] else (f"ends {c['end']}" if c["end"] else "open-ended")
        status = "" if c["status"] == "ended" else f"{md(c['status'])}, "
        out.append(f"- **Contract:** {md(c['id'])} {md(c['counterparty'])}: {status}{md(when)} — {md(c['evidence'])}")
    if f.get("reach"):
        shown = ", ".join(f"{md(r['name'])} ({r['level']})" for r in f["reach"][:8])
        more = f" and {f['reach_total'] - 8} more" if f["reach_total"] > 8 else ""
        out.append(f"- **Can reach:** {shown}{more}")
    for e in f.get("evidence", []):
        out.append(f"- Evidence: {md(e)}")
    out.append(f"- **Do:** {md(f['remediation'])}")
    out.append(f"- {f['owasp']} · {f['nist']} · fingerprint `{f['fingerprint']}`")
    out.append("")
    return out


def write_sweep_reports(config: Config, store: Store, sweep_id: int) -> list[Path]:
    out_dir = config.path(config.reports.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = sweep_report(store, sweep_id)
    rendered = {}
    if "json" in config.reports.formats:
        rendered["json"] = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    if "markdown" in config.reports.formats:
        rendered["md"] = render_markdown(report)
    rendered.update(_other_formats(config, store, sweep_id, report))
    paths = []
    for ext, text in rendered.items():
        path = out_dir / f"sweep-{sweep_id}.{ext}"
        _atomic_write(path, text)
        _atomic_write(out_dir / f"latest.{ext}", text)
        paths.append(path)
    return paths


def _other_formats(config: Config, store: Store, sweep_id: int, report: dict[str, Any]) -> dict[str, str]:
    """HTML for people; SARIF, CSV and OCSF JSON Lines for machines (extension -> text)."""
    formats = config.reports.formats
    out: dict[str, str] = {}
    if "html" in formats:
        from reports.html import html_report

        out["html"] = html_report(config, store, sweep_id, report)
    if "sarif" in formats:
        from reports.machine import render_sarif

        exposures = {row.key: row.data for row in store.current_records() if row.kind == "exposure"}
        out["sarif"] = json.dumps(render_sarif(report, exposures), indent=2) + "\n"
    if "csv" in formats:
        from reports.machine import render_csv

        out["csv"] = render_csv(report)
    if "ocsf" in formats:
        from reports.machine import render_ocsf_jsonl

        out["ocsf.jsonl"] = render_ocsf_jsonl(report, {s.id: s.clock for s in store.sweeps(limit=100000)})
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
