"""A new estate written from the documentation alone, swept end to end.

Everything here was written from README.md, sandbox/README.md, docs/registers.md and
config.toml only (no nhiscan source was read): a fictional company, Wonka Industries, with
GitHub, GitLab, Slack and Okta tenants, an HR export and a contract register.

Pat Doe is active in HR but DEPROVISIONED in Okta, and owns an NHI in GitHub (a deploy key
and a fine-grained PAT), GitLab (a personal access token) and Slack (an app Pat installed).
Quinn is active everywhere and owns the same kinds of NHI. One sweep through the documented
CLI (`nhiscan scan -c`, `nhiscan findings --format json`, `nhiscan graph ...`) must:

* read every inventory of the four sources (coverage);
* resolve Pat as one person across the four systems, keeping each people source's word
  (HR active, Okta departed);
* flag Pat's NHIs in GitHub, GitLab and Slack as `owner-departed`, and Pat's still-active
  accounts as `departed-person-active-account`;
* leave Quinn's NHIs alone.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import Sandbox

PAT = "pat@wonka.example"
QUINN = "quinn@wonka.example"
APP_ID = 5150

# Every key below is from sandbox/README.md ("Estate format", "Slack", "GitLab", "Okta") and,
# for people/contracts, docs/registers.md. No `now:`: the estate's clock is the current UTC
# time, the same clock the sweep judges with.
ESTATE = """\
github:
  tokens:
    - {token: ghp_wonka_scanner_0001, login: sam-secops, scopes: [read:org, admin:org, repo, admin:org_hook]}
  apps:
    - id: 5150
      slug: nhiscan-wonka
      installations: {wonka: 95001}
      permissions: {organization_personal_access_tokens: read, members: read, metadata: read}
  orgs:
    - login: wonka
      name: Wonka Industries
      saml: true                      # else credential authorizations are a 404, i.e. a coverage gap
      members:
        - {login: sam-secops, name: Sam Secops, email: secops@wonka.example, role: admin}
        - {login: patdoe, name: Pat Doe, email: pat@wonka.example}
        - {login: quinnq, name: Quinn Q, email: quinn@wonka.example}
      repos:
        - name: factory
          deploy_keys:
            - {title: pat-deploy, added_by: patdoe, created_at: -30d, last_used: -1d}
            - {title: quinn-deploy, added_by: quinnq, created_at: -30d, last_used: -1d}
      pat_grants:
        - {id: 101, owner: patdoe, token_id: 9001, token_name: pat-release, repositories: [factory],
           permissions: {repository: {contents: read}}, access_granted_at: -20d,
           token_expires_at: +30d, token_last_used_at: -1d}
        - {id: 102, owner: quinnq, token_id: 9002, token_name: quinn-release, repositories: [factory],
           permissions: {repository: {contents: read}}, access_granted_at: -20d,
           token_expires_at: +30d, token_last_used_at: -1d}
gitlab:
  tokens:
    - {token: glpat-wonkaScanner00000001, user: sam-secops, scopes: [read_api]}
  users:
    - {username: sam-secops, name: Sam Secops, is_admin: true, email: secops@wonka.example}
    - username: patdoe
      name: Pat Doe
      email: pat@wonka.example
      personal_access_tokens:
        - {name: pat-automation, scopes: [read_api], created_at: -30d, last_used_at: -1d, expires_at: +60d}
    - username: quinnq
      name: Quinn Q
      email: quinn@wonka.example
      personal_access_tokens:
        - {name: quinn-automation, scopes: [read_api], created_at: -30d, last_used_at: -1d, expires_at: +60d}
  groups:
    - full_path: wonka
      members: {patdoe: developer, quinnq: developer}
  projects:
    - path_with_namespace: wonka/factory
slack:
  team: {id: T0WONKA0001, name: Wonka Industries, domain: wonka, email_domain: wonka.example,
         enterprise_id: E0WONKA0001}
  tokens:
    - {token: xoxb-1-1-wonkaScannerBot, type: bot, user: nhiscan-bot, scopes: [users:read, users:read.email, team:read]}
    - {token: xoxp-1-2-wonkaOrgAdmin, type: org_admin, user: secops, scopes: [admin, admin.apps:read, users:read]}
  users:
    - {name: secops, real_name: Sam Secops, email: secops@wonka.example, is_admin: true}
    - {name: pat, real_name: Pat Doe, email: pat@wonka.example}
    - {name: quinn, real_name: Quinn Q, email: quinn@wonka.example}
  apps:
    - {name: nhiscan, scopes: [users:read, users:read.email, team:read]}
    - {name: pat-standup, scopes: [chat:write]}
    - {name: quinn-digest, scopes: [chat:write]}
  bots:
    - {name: nhiscan-bot, app: nhiscan}
    - {name: pat-standup-bot, app: pat-standup}
    - {name: quinn-digest-bot, app: quinn-digest}
  integration_logs:
    - {app: nhiscan, user: secops, change_type: added, date: -60d}
    - {app: pat-standup, user: pat, change_type: added, date: -50d}
    - {app: quinn-digest, user: quinn, change_type: added, date: -50d}
okta:
  users:
    - {login: secops@wonka.example, first_name: Sam, last_name: Secops, roles: [READ_ONLY_ADMIN], last_login: -1d}
    - {login: pat@wonka.example, first_name: Pat, last_name: Doe, status: DEPROVISIONED, status_changed: -3d}
    - {login: quinn@wonka.example, first_name: Quinn, last_name: Q, last_login: -1d}
  api_tokens:
    - {name: nhiscan, user: secops@wonka.example, token: "00wonkaScannerOktaToken", last_used: now}
people:
  - {email: secops@wonka.example, name: Sam Secops, status: active, worker_type: employee}
  - {email: pat@wonka.example, name: Pat Doe, status: active, manager: secops@wonka.example, worker_type: employee}
  - {email: quinn@wonka.example, name: Quinn Q, status: active, manager: secops@wonka.example, worker_type: employee}
contracts:
  - {id: C-W-001, counterparty: Oompa Loompa Logistics, kind: vendor, start: -400d, end: +300d,
     sponsor: quinn@wonka.example, match_domains: [oompa.example]}
"""

CREDENTIALS = {
    "github.token": "ghp_wonka_scanner_0001",
    "gitlab.token": "glpat-wonkaScanner00000001",
    "slack.token": "xoxb-1-1-wonkaScannerBot",
    "slack-admin.token": "xoxp-1-2-wonkaOrgAdmin",
    "okta.token": "00wonkaScannerOktaToken",
}

HR_COLUMNS = ["email", "name", "status", "end_date", "manager", "worker_type"]
DATE_KEYS = {"start", "end", "last_attestation", "end_date"}


def _nhiscan() -> str:
    exe = Path(sys.executable).with_name("nhiscan")
    found = str(exe) if exe.exists() else shutil.which("nhiscan")
    assert found, "the nhiscan console script is not installed next to this Python"
    return found


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run([_nhiscan(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"nhiscan {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _date(estate, value) -> str:
    return estate.resolve_time(value).date().isoformat()


def _write_registers(estate, folder: Path) -> None:
    """The estate's people/contracts as the HR export and contract register (docs/registers.md)."""
    with open(folder / "people.csv", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HR_COLUMNS)
        for row in estate.people:
            out.writerow([_date(estate, row[c]) if c in DATE_KEYS and row.get(c) else row.get(c, "")
                          for c in HR_COLUMNS])
    lines = []
    for contract in estate.contracts:
        lines.append("[[contract]]")
        for key, value in contract.items():
            if key in DATE_KEYS:
                value = _date(estate, value)
            lines.append(f"{key} = {json.dumps(value)}")  # JSON strings and arrays are valid TOML
    (folder / "contracts.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(sb: Sandbox) -> str:
    return f"""
[store]
url = "sqlite:///nhiscan.db"
key_file = "nhiscan.key"

[reports]
dir = "reports"
formats = ["json"]

[contracts]
file = "contracts.toml"

[people]
file = "people.csv"

[[sources.github]]
name = "github"
base_url = "{sb.github_url}"
orgs = ["wonka"]
token_file = "github.token"
app_id = {APP_ID}
app_private_key_file = "app.pem"
max_retries = 1

[[sources.gitlab]]
name = "gitlab"
base_url = "{sb.url('gitlab')}"
token_file = "gitlab.token"
groups = ["wonka"]
instance_admin = true

[[sources.slack]]
name = "slack"
base_url = "{sb.url('slack')}"
token_file = "slack.token"
admin_token_file = "slack-admin.token"

[[sources.okta]]
name = "okta"
base_url = "{sb.url('okta')}"
token_file = "okta.token"

[identity]
internal_domains = ["wonka.example"]
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    home = tmp_path_factory.mktemp("wonka")
    (home / "estate.yaml").write_text(ESTATE, encoding="utf-8")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    (home / "app.pem").write_text(pem, encoding="utf-8")
    for name, value in CREDENTIALS.items():
        (home / name).write_text(value + "\n", encoding="utf-8")
        (home / name).chmod(0o600)

    with Sandbox(home / "estate.yaml", app_keys={APP_ID: pem}) as sb:
        _write_registers(sb.estate, home)
        (home / "config.toml").write_text(_config(sb), encoding="utf-8")
        scan_out = _run("scan", "-c", "config.toml", cwd=home)
    # Everything below reads the store only (no tenant is called).
    findings = json.loads(_run("findings", "-c", "config.toml", "--status", "open", "--format", "json", cwd=home))
    _run("graph", "export", "-c", "config.toml", "--format", "json", "-o", "graph.json", cwd=home)
    graph = json.loads((home / "graph.json").read_text(encoding="utf-8"))
    who_owns = json.loads(_run("graph", "who-owns", "pat-deploy", "-c", "config.toml", "--format", "json", cwd=home))
    report = json.loads((home / "reports" / "latest.json").read_text(encoding="utf-8"))
    return {"scan": scan_out, "findings": findings, "graph": graph, "who_owns": who_owns, "report": report}


def _nodes(sweep):
    return {n["id"]: n for n in sweep["graph"]["nodes"]}


def _edges(sweep, rel):
    return [e for e in sweep["graph"]["links"] if e["rel"] == rel]


def _accounts_of(sweep, email):
    return {e["target"] for e in _edges(sweep, "HAS_ACCOUNT") if e["source"] == f"person:{email}"}


def _owned_by(sweep, email):
    """Keys of the NHIs the graph says this person owns (through any of their accounts)."""
    accounts = _accounts_of(sweep, email)
    return {e["target"] for e in _edges(sweep, "OWNS") if e["source"] in accounts}


def _by_rule(sweep, rule):
    return [f for f in sweep["findings"] if f["rule_id"] == rule]


def test_every_inventory_of_the_four_sources_is_read(sweep):
    coverage = sweep["report"]["summary"]["coverage"]
    assert coverage["not_read"] == [], coverage["not_read"]
    assert coverage["read"] == coverage["inventories"] > 0
    assert f"{coverage['inventories']} of {coverage['inventories']} inventories read" in sweep["scan"]
    rows = {c["inventory"]: c for c in sweep["report"]["coverage"]}
    assert all(c["ok"] for c in rows.values())
    assert {c["source"] for c in rows.values()} >= {"github", "gitlab", "slack", "okta", "hr", "contracts"}
    for inventory in ("github:wonka:members", "github:wonka/factory:deploy_keys", "github:wonka:pat_grants",
                      "gitlab:instance:users", "gitlab:instance:personal_access_tokens",
                      "slack:T0WONKA0001:users", "slack:T0WONKA0001:approved_apps",
                      "slack:T0WONKA0001:integration_logs", "okta:org:users", "hr:people", "contracts:register"):
        assert inventory in rows, f"{inventory} missing from coverage: {sorted(rows)}"


def test_pat_is_one_person_across_the_four_systems(sweep):
    nodes = _nodes(sweep)
    people = [n for n in nodes.values() if n["kind"] == "person" and n.get("email") == PAT]
    assert len(people) == 1, people
    person = people[0]
    assert person["status"] == "departed"
    assert set(person["source"].split("+")) == {"hr", "okta"}  # both people sources know Pat

    accounts = _accounts_of(sweep, PAT)
    assert {nodes[a]["source"] for a in accounts} == {"github", "gitlab", "slack", "okta"}
    assert all(nodes[a]["email"] == PAT for a in accounts)

    # Each people source's own word is kept on the owner in every finding about Pat.
    pat_owners = [o for f in sweep["findings"] for o in f["owners"] if o["email"] == PAT]
    assert pat_owners
    for owner in pat_owners:
        assert owner["status"] == "departed"
        assert owner["statuses"] == {"hr": "active", "okta": "departed"}

    owners = sweep["who_owns"]["owners"]
    assert [(o["email"], o["status"], o["account"]) for o in owners] == [(PAT, "departed", "github:user:patdoe")]


def test_pats_departure_in_okta_flags_pats_nhis_everywhere(sweep):
    flagged = {f["subject"]["key"]: f for f in _by_rule(sweep, "owner-departed")}
    pats = _owned_by(sweep, PAT)
    nodes = _nodes(sweep)
    assert {nodes[k]["name"] for k in pats} >= {"pat-deploy", "pat-release", "pat-automation", "pat-standup"}
    assert pats <= set(flagged), f"not flagged: {sorted(pats - set(flagged))}"
    assert {flagged[k]["subject"]["source"] for k in pats} == {"github", "gitlab", "slack"}
    for key in pats:
        assert [o["email"] for o in flagged[key]["owners"]] == [PAT]
        assert "departed" in flagged[key]["why"]


def test_pats_active_accounts_are_reported(sweep):
    found = _by_rule(sweep, "departed-person-active-account")
    nodes = _nodes(sweep)
    pat_accounts = {a for a in _accounts_of(sweep, PAT) if nodes[a]["source"] != "okta"}
    assert {f["subject"]["key"] for f in found} == pat_accounts
    assert {f["subject"]["source"] for f in found} == {"github", "gitlab", "slack"}
    for f in found:
        assert "active per hr" in f["why"] and "departed per okta" in f["why"], f["why"]


def test_quinns_nhis_are_not_owner_departed(sweep):
    nodes = _nodes(sweep)
    quinns = _owned_by(sweep, QUINN)
    # Not vacuous: the graph does tie Quinn to comparable NHIs in the three systems.
    assert {nodes[k]["name"] for k in quinns} >= {"quinn-deploy", "quinn-release", "quinn-automation", "quinn-digest"}
    assert {nodes[k]["source"] for k in quinns} == {"github", "gitlab", "slack"}
    flagged = {f["subject"]["key"] for f in _by_rule(sweep, "owner-departed")}
    assert not quinns & flagged, sorted(quinns & flagged)
    for f in sweep["findings"]:
        if f["rule_id"] in ("owner-departed", "departed-person-active-account"):
            assert QUINN not in {p["email"] for p in f["owners"] + f["sponsors"]}, f
    quinn = nodes[f"person:{QUINN}"]
    assert quinn["status"] == "active"
