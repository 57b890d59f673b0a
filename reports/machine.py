"""Findings for machines: SARIF 2.1.0 (code scanning), CSV (spreadsheets) and OCSF JSON Lines (SIEMs).

Like the other reports these are built from the store's report data
(:func:`reports.files.sweep_report`), so they agree with ``nhiscan findings``.

- **SARIF** carries only what has a place in code: exposures (a secret seen in a
  file at a commit), each as a result with a physical location and the rule's
  metadata. Never the secret, nor its preview.
- **CSV**: one row per finding of the sweep, cells guarded against formula
  injection (tenant text may start with ``=``).
- **OCSF**: one Detection Finding (class 2004, category 2) per line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import Any
from urllib.parse import quote

from detectors.rules import RULES
from reports.escaping import escape_csv_cell

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
OCSF_VERSION = "1.5.0"

SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning ranks security results by this CVSS-like score (as a string).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
OCSF_SEVERITY = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"), "critical": (5, "Critical")}
# OCSF activity of a finding event: Create when it first fires (or fires again), Update while open, Close when resolved.
OCSF_ACTIVITY = {"new": (1, "Create"), "regressed": (1, "Create"), "open": (2, "Update"), "unrefreshed": (2, "Update"), "resolved": (3, "Close")}


def product_version() -> str:
    try:
        return metadata.version("nhiscan")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


# --- SARIF ----------------------------------------------------------------------------------

_LOCATION = re.compile(r"^(?P<source>[^:@]+):(?P<repo>[^@]+)@(?P<commit>[^:]+):(?P<path>.+?)(?::(?P<line>\d+))?$")


@dataclass(frozen=True)
class FileLocation:
    """Where an exposure sits in a repository: ``github:acme/api@<sha>:path/to/file.py:12``."""

    source: str
    repository: str
    commit: str
    path: str
    line: int | None


def parse_location(location: str | None) -> FileLocation | None:
    """A file location, or None for exposures that are not in a file (a CI variable, a ticket)."""
    if not location:
        return None
    m = _LOCATION.match(location)
    if not m:
        return None
    line = int(m["line"]) if m["line"] else None
    return FileLocation(m["source"], m["repo"], m["commit"], m["path"].lstrip("/"), line if line and line > 0 else None)


def exposure_location(f: dict[str, Any], exposures: dict[str, dict[str, Any]]) -> FileLocation | None:
    """The file location of a finding whose subject is an Exposure record, if it has one."""
    subject = f["subject"]
    record = exposures.get(subject["key"])
    if record is None and subject.get("type") != "exposure" and "location" not in f and "location" not in subject:
        return None
    location = f.get("location") or subject.get("location") or (record or {}).get("location")
    return parse_location(location)


def _rule_descriptor(rule_id: str, example: dict[str, Any]) -> dict[str, Any]:
    """SARIF reportingDescriptor from the rule's own metadata (or, for an unknown rule, the finding's)."""
    r = RULES.get(rule_id)
    title = r.title if r else example["title"]
    severity = r.severity if r else example["severity"]
    remediation = r.remediation if r else example.get("remediation", "")
    owasp, nist = (r.owasp, r.nist) if r else (example.get("owasp", ""), example.get("nist", ""))
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part),
        "shortDescription": {"text": title},
        "fullDescription": {"text": (r.description if r and r.description else title)},
        "help": {"text": remediation, "markdown": f"**Remediation.** {remediation}"},
        "defaultConfiguration": {"level": SARIF_LEVEL.get(severity, "warning")},
        "properties": {
            "tags": ["security", "non-human-identity", f"OWASP-NHI:{owasp}", f"NIST-CSF:{nist}"],
            "security-severity": SECURITY_SEVERITY.get(severity, "5.5"),
            "precision": "high",
        },
    }


def render_sarif(report: dict[str, Any], exposures: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A SARIF log with one run per repository; each open exposure finding with a file location is a result.

    ``exposures`` maps an Exposure record key to its stored fields (for its
    ``location``); findings carrying ``location`` themselves need no entry.
    """
    exposures = exposures or {}
    by_repo: dict[tuple[str, str], list[tuple[dict[str, Any], FileLocation]]] = {}
    for f in report["findings"]:
        if f["status"] != "open":
            continue
        loc = exposure_location(f, exposures)
        if loc is None:
            continue
        by_repo.setdefault((loc.source, loc.repository), []).append((f, loc))
    runs = [_sarif_run(report, source, repo, items) for (source, repo), items in sorted(by_repo.items())]
    if not runs:
        runs = [_sarif_run(report, None, None, [])]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": runs}


def _sarif_run(report: dict[str, Any], source: str | None, repo: str | None, items: list[tuple[dict[str, Any], FileLocation]]) -> dict[str, Any]:
    rule_ids: list[str] = []
    examples: dict[str, dict[str, Any]] = {}
    for f, _loc in items:
        if f["rule_id"] not in examples:
            rule_ids.append(f["rule_id"])
            examples[f["rule_id"]] = f
    index = {rid: i for i, rid in enumerate(rule_ids)}
    results = []
    for f, loc in sorted(items, key=lambda item: (item[1].path, item[1].line or 0, item[0]["rule_id"], item[0]["fingerprint"])):
        physical: dict[str, Any] = {"artifactLocation": {"uri": quote(loc.path, safe="/")}}
        if loc.line:
            physical["region"] = {"startLine": loc.line}
        results.append({
            "ruleId": f["rule_id"],
            "ruleIndex": index[f["rule_id"]],
            "level": SARIF_LEVEL.get(f["severity"], "warning"),
            "kind": "fail",
            "message": {"text": f["why"]},
            "locations": [{"physicalLocation": physical}],
            "partialFingerprints": {"nhiscanFingerprint/v1": f["fingerprint"]},
            "properties": {
                "severity": f["severity"],
                "subject": f["subject"]["key"],
                "repository": loc.repository,
                "commit": loc.commit,
                "change": f.get("change"),
            },
        })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "nhiscan", "version": product_version(),
                            "rules": [_rule_descriptor(rid, examples[rid]) for rid in rule_ids]}},
        "automationDetails": {"id": f"nhiscan/exposures/{repo}/" if repo else "nhiscan/exposures/"},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"sweep": report["sweep"]["id"]},
    }
    if repo:
        run["properties"].update(source=source, repository=repo)
    return run


# --- CSV ------------------------------------------------------------------------------------

CSV_COLUMNS = ("fingerprint", "status", "change", "severity", "rule_id", "title", "subject_name", "subject_type", "subject_key",
               "source", "owners", "owner_status", "sponsors", "contracts", "contract_end", "why", "remediation", "owasp_nhi",
               "nist_csf", "reach_total", "first_seen_sweep", "last_seen_sweep", "refreshed")


def csv_row(f: dict[str, Any]) -> list[str]:
    owners = f.get("owners", [])
    contracts = f.get("contracts", [])
    values = {
        "fingerprint": f["fingerprint"], "status": f["status"], "change": f.get("change") or "", "severity": f["severity"],
        "rule_id": f["rule_id"], "title": f["title"], "subject_name": f["subject"]["name"], "subject_type": f["subject"]["type"],
        "subject_key": f["subject"]["key"], "source": f["subject"].get("source") or "",
        "owners": "; ".join(o.get("email") or o.get("account") or "?" for o in owners),
        "owner_status": "; ".join(o.get("status") or "" for o in owners),
        "sponsors": "; ".join(f"{s.get('email') or 'none named'} ({s['contract']})" for s in f.get("sponsors", [])),
        "contracts": "; ".join(f"{c['id']} {c['counterparty']} ({c['status']})" for c in contracts),
        "contract_end": "; ".join(c.get("end") or "" for c in contracts),
        "why": f["why"], "remediation": f["remediation"], "owasp_nhi": f.get("owasp", ""), "nist_csf": f.get("nist", ""),
        "reach_total": f.get("reach_total", 0), "first_seen_sweep": f.get("first_seen_sweep", ""),
        "last_seen_sweep": f.get("last_seen_sweep", ""), "refreshed": f.get("refreshed", True),
    }
    return [escape_csv_cell(values[c]) for c in CSV_COLUMNS]


def render_csv(report: dict[str, Any]) -> str:
    """Every finding of the sweep (open, and resolved this sweep), one row each."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for f in report["findings"]:
        w.writerow(csv_row(f))
    return buf.getvalue()


# --- OCSF -----------------------------------------------------------------------------------


def _ms(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def _resource_type(key: str) -> str:
    parts = key.split(":")
    return parts[1] if len(parts) >= 3 else "resource"


def ocsf_finding(f: dict[str, Any], report: dict[str, Any], sweep_times: dict[int, datetime] | None = None) -> dict[str, Any]:
    """One finding as an OCSF Detection Finding event."""
    sweep_times = sweep_times or {}
    severity_id, severity = OCSF_SEVERITY.get(f["severity"], (99, f["severity"]))
    activity_id, activity = OCSF_ACTIVITY.get(f.get("change") or "open", (2, "Update"))
    resolved = f["status"] == "resolved"
    subject = f["subject"]
    owner = next((o for o in f.get("owners", []) if o.get("email")), None)
    subject_resource: dict[str, Any] = {
        "uid": subject["key"], "name": subject["name"], "type": subject["type"], "labels": [subject.get("source") or "", "subject"],
        "data": {"source": subject.get("source"), "url": subject.get("url"), "stale": bool(subject.get("stale"))},
    }
    if owner:
        account_uid = owner.get("account") or owner["email"]
        subject_resource["owner"] = {
            "uid": owner["email"], "name": owner.get("name") or owner["email"], "email_addr": owner["email"], "type_id": 1, "type": "User",
            "account": {"uid": account_uid, "name": account_uid.rsplit(":", 1)[-1], "type_id": 99, "type": account_uid.split(":", 1)[0]
                        if ":" in account_uid else "email"},
        }
    resources = [subject_resource] + [
        {"uid": r["key"], "name": r["name"], "type": _resource_type(r["key"]), "labels": ["reachable"],
         "data": {"level": r["level"], "path": r["path"]}}
        for r in f.get("reach", [])
    ]
    info: dict[str, Any] = {
        "uid": f["fingerprint"],
        "title": f"{f['title']}: {subject['name']}",
        "desc": f["why"],
        "types": [f["rule_id"]],
        "analytic": {"uid": f["rule_id"], "name": f["title"], "type_id": 1, "type": "Rule"},
        "data_sources": list(f.get("inventories", [])),
    }
    for field, sweep in (("first_seen_time", f.get("first_seen_sweep")), ("last_seen_time", f.get("last_seen_sweep"))):
        if sweep in sweep_times:
            info[field] = _ms(sweep_times[sweep])
    event = {
        "activity_id": activity_id,
        "activity_name": activity,
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 2004 * 100 + activity_id,
        "type_name": f"Detection Finding: {activity}",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 4 if resolved else 1,
        "status": "Resolved" if resolved else "New",
        "time": _ms(report["sweep"]["clock"]) or _ms(datetime.now(timezone.utc)),
        "message": f["why"],
        "finding_info": info,
        "resources": resources,
        "remediation": {"desc": f["remediation"]},
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{f['fingerprint']}-{report['sweep']['id']}",
            "event_code": f["rule_id"],
            "product": {"name": "nhiscan", "vendor_name": "nhiscan", "version": product_version()},
            "labels": [f"OWASP-NHI:{f.get('owasp', '')}", f"NIST-CSF:{f.get('nist', '')}"],
        },
        "unmapped": {
            "owasp_nhi": f.get("owasp"), "nist_csf": f.get("nist"), "change": f.get("change"), "refreshed": f.get("refreshed", True),
            "owners": f.get("owners", []), "sponsors": f.get("sponsors", []), "contracts": f.get("contracts", []),
            "evidence": f.get("evidence", []), "sweep": report["sweep"]["id"],
        },
    }
    return event


def render_ocsf_jsonl(report: dict[str, Any], sweep_times: dict[int, datetime] | None = None) -> str:
    """Every finding of the sweep as one OCSF Detection Finding per line."""
    lines = [json.dumps(ocsf_finding(f, report, sweep_times), sort_keys=True, default=str) for f in report["findings"]]
    return "\n".join(lines) + ("\n" if lines else "")
