"""Jira / Atlassian: the collector's pure transforms on recorded-shape payloads, the collector
through the real ``jira`` client against the sandbox's emulator (Cloud and Server flavours),
the remediation-ticket routes (create, search by label, comment, transition) through the same
client, and an end-to-end sweep of the demo estate with its Jira site.

Nothing of ours is mocked: the emulator is a real HTTP server on 127.0.0.1, faults are injected
per credential by the estate (see ``sandbox/README.md``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from jira import JIRA, JIRAError

from detectors.rules import RULES
from sandbox import EstateError, Sandbox, load_estate
from sandbox.jira import parse_jql, JqlError
from scanner.collectors import jira as jc
from scanner.config import JiraContractRegister, parse_config
from scanner.records import Account, Contract, Credential, Privilege, Status

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
HMAC_KEY = b"jira-test-hmac-key-0123456789abc"

SCANNER = "ATATT-scanner-token-value-000000000001"
LIMITED = "ATATT-limited-token-value-000000000002"
FLAKY = "ATATT-flaky-token-value-0000000000000003"
ADMIN_KEY = "ATCTT-org-admin-key-value-0000000000001"
NARROW_KEY = "ATCTT-org-admin-key-narrow-00000000002"
BROKEN_KEY = "ATCTT-org-admin-key-broken-00000000003"
SERVER_PAT = "NjQ0-server-pat-value-00000000000000004"
SECRETS = [SCANNER, LIMITED, FLAKY, ADMIN_KEY, NARROW_KEY, BROKEN_KEY, SERVER_PAT]
ORG_ID = "0a1b2c3d-test-org-0000-000000000001"

REGISTER_FIELDS = """
  fields:
    - {name: Counterparty}
    - {name: Contract kind, type: option}
    - {name: Contract start, type: date}
    - {name: Contract end, type: date}
    - {name: Sponsor, type: user}
    - {name: Match names, type: labels}
"""
REGISTER_ISSUES = """
    - key: LEGAL-1
      issue_type: Contract
      summary: Wayne Enterprises
      fields: {Counterparty: Wayne Enterprises, Contract kind: vendor, Contract start: -400d, Contract end: -60d,
               Sponsor: carol@acme.example, Match names: ["wayne-*"]}
    # Bad: no end date. Skipped with a warning naming the issue and the field.
    - key: LEGAL-2
      issue_type: Contract
      summary: Initech (no end date)
      fields: {Counterparty: Initech, Contract kind: partner, Sponsor: carol@acme.example}
    # Malformed on the wire: 'fields' is not an object.
    - key: LEGAL-3
      issue_type: Contract
      summary: broken
      overrides: {fields: "not an object"}
    - key: LEGAL-4
      issue_type: Contract
      summary: Stark
      fields: {Counterparty: Stark Analytics, Contract kind: Managed Service, Contract end: +200d, Sponsor: alice@acme.example}
    - key: LEGAL-5
      issue_type: Contract
      summary: Hooli
      fields: {Counterparty: Hooli, Contract end: +20d, Sponsor: carol@acme.example, Match names: ["hooli-*", "hooli-bot"]}
"""

CLOUD_ESTATE = f"""
now: 2026-11-01T12:00:00Z
jira:
  deployment: cloud
  page_limit: 2
  users:
    - {{email: alice@acme.example, display_name: Alice Liddell}}
    - {{email: carol@acme.example, display_name: Carol Diaz}}
    - {{email: eve@acme.example, display_name: Eve Marsh}}
    - {{email: dave@acme.example, display_name: Dave Okafor, active: false}}
    - {{email: secops@acme.example, display_name: Security Operations}}
    - {{email: hidden@acme.example, display_name: Private Person, email_visible: false}}
    - {{email: limited@acme.example, display_name: No Browse, browse_users: false}}
    - {{display_name: globex-jira-sync, account_type: app}}
    - {{display_name: portal visitor, account_type: customer, email: visitor@customer.example}}
    # Malformed on the wire: accountId is a number.
    - {{display_name: broken user, overrides: {{accountId: 12345}}}}
  api_tokens:
    - {{owner: secops@acme.example, label: scanner, token: {SCANNER}, created_at: -30d, expires_at: +300d}}
    - token: {FLAKY}
      owner: secops@acme.example
      label: flaky scanner
      faults:
        - {{path: /rest/api/3/users/search, fault: too_many_requests, times: 1, retry_after: 1}}
        - {{path: /rest/api/2/search/jql, fault: server_error}}
    - {{owner: limited@acme.example, label: limited, token: {LIMITED}}}
    - {{owner: eve@acme.example, label: eve backup script, created_at: -600d, last_active_at: -200d}}
    - {{owner: alice@acme.example, label: alice cli, created_at: -60d, expires_at: +300d, last_active_at: -1d, status: BLOCKED}}
    - {{owner: carol@acme.example, label: carol one, created_at: -10d, expires_at: +100d}}
  org:
    id: {ORG_ID}
    name: Acme
    admin_keys:
      - {{key: {ADMIN_KEY}}}
      - {{key: {NARROW_KEY}, scopes: [read:accounts:admin]}}
      - key: {BROKEN_KEY}
        faults:
          - {{path: /admin/api-access/v1/orgs/*/api-tokens, fault: malformed_json}}
    service_accounts:
      - {{display_name: backup-exporter, created_by: alice@acme.example, description: nightly export}}
      - {{display_name: release-automation, created_by: eve@acme.example, status: INACTIVE}}
      - {{display_name: third-sa}}
{REGISTER_FIELDS}
  projects:
    - {{key: SEC, name: Security, issue_types: [Task, Bug], lead: secops@acme.example}}
    - {{key: LEGAL, name: Legal, issue_types: [Contract], statuses: [Active, Ended]}}
  issues:
{REGISTER_ISSUES}
"""

SERVER_ESTATE = f"""
now: 2026-11-01T12:00:00Z
jira:
  deployment: server
  page_limit: 2
  users:
    - {{name: alice, email: alice@acme.example, display_name: Alice Liddell}}
    - {{name: carol, email: carol@acme.example, display_name: Carol Diaz}}
    - {{name: dave, email: dave@acme.example, display_name: Dave Okafor, active: false}}
    - {{name: svc-jira, email: secops@acme.example, display_name: Scanner}}
    - {{name: bob, email: bob@acme.example}}
  api_tokens:
    - {{owner: svc-jira, label: scanner PAT, token: {SERVER_PAT}}}
{REGISTER_FIELDS}
  projects:
    - {{key: SEC, issue_types: [Task]}}
    - {{key: LEGAL, issue_types: [Contract], statuses: [Active, Ended]}}
  issues:
{REGISTER_ISSUES}
"""

REGISTER = {
    "jql": "project = LEGAL AND issuetype = Contract ORDER BY key",
    "counterparty_field": "Counterparty",
    "kind_field": "Contract kind",
    "start_field": "Contract start",
    "end_field": "Contract end",
    "sponsor_field": "Sponsor",
    "match_names_field": "Match names",
}


def write_estate(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "estate.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with Sandbox(write_estate(tmp_path_factory.mktemp("cloud"), CLOUD_ESTATE)) as sb:
        yield sb


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Sandbox(write_estate(tmp_path_factory.mktemp("server"), SERVER_ESTATE)) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _fresh(request):
    """Each test starts from the estate as written (issues created by an earlier test are gone)."""
    for name in ("cloud", "server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def make_config(tmp_path: Path, sb: Sandbox, *, token: str = SCANNER, user: str | None = "secops@acme.example",
                admin_key: str | None = ADMIN_KEY, org_id: str | None = ORG_ID, register: dict | None = REGISTER,
                **extra):
    (tmp_path / "jira-token").write_text(token)
    source = {"name": "jira", "base_url": sb.url("jira"), "token_file": "jira-token", "admin_base_url": sb.url("jira"),
              "timeout": 10, "max_retries": 3, **extra}
    if user is not None:
        source["user"] = user
    if admin_key is not None:
        (tmp_path / "org-key").write_text(admin_key)
        source["org_admin_token_file"] = "org-key"
    if org_id is not None:
        source["org_id"] = org_id
    if register is not None:
        source["contract_register"] = register
    config = parse_config({"sources": {"jira": [source]}}, base_dir=tmp_path)
    return config, config.sources.jira[0]


def coverage(result) -> dict:
    return {c.inventory: c for c in result.coverage}


def by_name(result, cls) -> dict:
    return {r.name: r for r in result.records if isinstance(r, cls)}


# --- pure transforms on recorded-shape payloads ---------------------------------------------------

CLOUD_USER = {
    "self": "https://acme.atlassian.net/rest/api/3/user?accountId=5b10a2844c20165700ede21g",
    "accountId": "5b10a2844c20165700ede21g",
    "accountType": "atlassian",
    "emailAddress": "Mia@Acme.example",
    "avatarUrls": {"48x48": "https://avatar.example/48"},
    "displayName": "Mia Krystof",
    "active": True,
    "timeZone": "Australia/Sydney",
    "locale": "en_US",
}
APP_USER = {
    "self": "https://acme.atlassian.net/rest/api/3/user?accountId=557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
    "accountId": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
    "accountType": "app",
    "emailAddress": "sync@connect.atlassian.com",
    "displayName": "globex-jira-sync",
    "active": True,
}


def test_cloud_users_people_apps_and_bad_items():
    inactive = {**CLOUD_USER, "accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Gone", "active": False}
    batch = jc.transform_cloud_users("jira", "acme.atlassian.net", [CLOUD_USER, APP_USER, inactive, {"displayName": "no id"}, "x"])
    people = {r.name: r for r in batch.records if isinstance(r, Account)}
    mia = people["Mia Krystof"]
    assert (mia.key, mia.is_human, mia.email, mia.account_type) == ("jira:user:5b10a2844c20165700ede21g", True, "mia@acme.example", "user")
    assert mia.inventory == "jira:acme.atlassian.net:users"
    app = people["globex-jira-sync"]
    assert (app.is_human, app.account_type, app.email) == (False, "app", None)  # an app's email names no owner
    assert app.attributes["app_email"] == "sync@connect.atlassian.com"
    assert people["Gone"].status == Status.SUSPENDED
    grants = [r for r in batch.records if r.kind == "grant"]
    assert {g.subject_key for g in grants} == {mia.key, app.key}  # inactive users reach nothing
    assert batch.skipped == ["user #3 (displayName='no id'): missing accountId", "user #4: is a JSON str, not an object"]


def test_server_users_use_the_user_key_and_login():
    item = {"self": "https://jira.acme.example/rest/api/2/user?username=mia", "key": "JIRAUSER10100", "name": "mia",
            "emailAddress": "mia@acme.example", "displayName": "Mia", "active": True, "deleted": False}
    batch = jc.transform_server_users("jira", "jira.acme.example", [item, {"key": "k", "active": "yes"}])
    acc = next(r for r in batch.records if isinstance(r, Account))
    assert (acc.key, acc.login, acc.email, acc.is_human) == ("jira:user:JIRAUSER10100", "mia", "mia@acme.example", True)
    assert batch.skipped == ["user #1 (key='k'): missing name"]


ADMIN_TOKEN = {
    "id": "7c2a1f56-1111-4d2c-9f0a-abcdefabcdef",
    "label": "eve backup script",
    "status": "ALLOWED",
    "createdAt": "2025-03-01T10:00:00.000Z",
    "expiresAt": None,
    "lastActiveAt": "2026-04-15T08:30:00.000Z",
    "user": {"id": "712020:aa-bb", "orgId": ORG_ID, "name": "Eve Marsh", "email": "Eve@Acme.example"},
}


def test_api_tokens_are_owned_by_their_user():
    blocked = {**ADMIN_TOKEN, "id": "t2", "status": "BLOCKED", "expiresAt": "2027-01-01T00:00:00+0000"}
    batch = jc.transform_api_tokens("jira", [ADMIN_TOKEN, blocked, {"id": "t3", "user": {}}, {"label": "no id"}])
    tok = next(r for r in batch.records if r.name == "eve backup script" and r.status == Status.ACTIVE)
    assert isinstance(tok, Credential)
    assert (tok.key, tok.credential_type, tok.inventory) == ("jira:api_token:7c2a1f56-1111-4d2c-9f0a-abcdefabcdef", "api_token", "jira:org:api_tokens")
    assert tok.account_key == "jira:user:712020:aa-bb"
    assert tok.owners[0].ref == "eve@acme.example" and "Atlassian admin API" in tok.owners[0].evidence
    assert tok.created_at == datetime(2025, 3, 1, 10, tzinfo=timezone.utc)
    assert tok.last_used_at == datetime(2026, 4, 15, 8, 30, tzinfo=timezone.utc)
    assert tok.expires_at is None and tok.privilege == Privilege.WRITE
    other = next(r for r in batch.records if r.key == "jira:api_token:t2")
    assert other.status == Status.SUSPENDED and other.expires_at == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert batch.skipped == ["API token #2 (id='t3'): missing user.id and user.email", "API token #3 (label='no id'): missing id"]


def test_service_accounts_are_owned_by_their_creator():
    item = {"atlassianId": "712020:sa-1", "id": "sa-1", "email": "backup@serviceaccount.atlassian.com",
            "displayName": "backup-exporter", "updatedAt": 1764642980899, "status": "ACTIVE",
            "createdById": "712020:heidi", "description": "nightly export"}
    batch = jc.transform_service_accounts("jira", [item, {**item, "id": "sa-2", "atlassianId": None, "status": "INACTIVE",
                                                          "createdById": None, "updatedAt": "soon"}])
    sa = batch.records[0]
    assert (sa.key, sa.account_type, sa.is_human) == ("jira:service_account:712020:sa-1", "service_account", False)
    assert sa.owners[0].ref == "jira:user:712020:heidi" and sa.owners[0].role == "creator"
    assert sa.attributes["updated_at"].startswith("2025-12-02")
    assert batch.skipped == ["service account #1 (id='sa-2'): updatedAt is not an ISO 8601 time"]


FIELD_LIST = [
    {"id": "summary", "name": "Summary", "custom": False, "clauseNames": ["summary"]},
    {"id": "status", "name": "Status", "custom": False, "clauseNames": ["status"]},
    {"id": "customfield_10050", "name": "Counterparty", "custom": True, "clauseNames": ["cf[10050]", "Counterparty"]},
    {"id": "customfield_10051", "name": "Contract end", "custom": True, "clauseNames": ["cf[10051]", "Contract end"]},
    {"id": "customfield_10052", "name": "Sponsor", "custom": True, "clauseNames": ["cf[10052]", "Sponsor"]},
    {"id": "customfield_10053", "name": "Owner", "custom": True, "clauseNames": ["cf[10053]"]},
    {"id": "customfield_10054", "name": "Owner", "custom": True, "clauseNames": ["cf[10054]"]},
]


def test_register_fields_resolve_by_name_id_or_clause_and_say_what_is_wrong():
    reg = JiraContractRegister(jql="project = LEGAL", counterparty_field="counterparty", end_field="customfield_10051",
                               sponsor_field="cf[10052]", status_field="Status")
    assert jc.resolve_register_fields(reg, FIELD_LIST) == {
        "counterparty": ("customfield_10050", "counterparty"), "end": ("customfield_10051", "customfield_10051"),
        "sponsor": ("customfield_10052", "cf[10052]"), "status": ("status", "Status")}
    with pytest.raises(jc.RegisterFieldError, match=r"contract_register.end_field: no Jira field is named 'Contract ends'.*Counterparty"):
        jc.resolve_register_fields(reg.model_copy(update={"end_field": "Contract ends"}), FIELD_LIST)
    with pytest.raises(jc.RegisterFieldError, match=r"sponsor_field: 'Owner' names several Jira fields \(customfield_10053, customfield_10054\)"):
        jc.resolve_register_fields(reg.model_copy(update={"sponsor_field": "Owner"}), FIELD_LIST)


def _issue(key, **fields):
    return {"id": "1", "key": key, "self": f"https://acme.atlassian.net/rest/api/2/issue/{key}", "fields": fields}


def test_contract_issues_validate_like_the_register():
    fields = {"counterparty": ("customfield_10050", "Counterparty"), "end": ("customfield_10051", "Contract end"),
              "sponsor": ("customfield_10052", "Sponsor"), "kind": ("customfield_10055", "Contract kind"),
              "match_names": ("labels", "Labels")}
    sponsor = {"accountId": "712020:c", "emailAddress": "Carol@Acme.example", "displayName": "Carol"}
    issues = [
        _issue("LEGAL-1", customfield_10050="Wayne Enterprises", customfield_10051="2026-09-01", customfield_10052=sponsor,
               customfield_10055={"self": "x", "value": "Managed Service", "id": "10020"}, labels=["wayne-*"]),
        _issue("LEGAL-2", customfield_10050="Initech", customfield_10052=sponsor),
        _issue("LEGAL-3", customfield_10050="Hooli", customfield_10051="2027-01-01",
               customfield_10052={"accountId": "712020:h", "displayName": "hidden email"}),
        _issue("LEGAL-4", customfield_10050="Stark", customfield_10051="31/12/2027", customfield_10052=sponsor),
        {"key": "LEGAL-5", "fields": []},
        {"id": "6"},
    ]
    batch = jc.transform_contract_issues("jira", issues, fields, today=TODAY, browse_url="https://acme.atlassian.net")
    contracts = {c.contract_id: c for c in batch.records}
    assert set(contracts) == {"LEGAL-1", "LEGAL-3"}
    wayne = contracts["LEGAL-1"]
    assert isinstance(wayne, Contract)
    assert (wayne.key, wayne.inventory, wayne.counterparty, wayne.contract_type) == (
        "jira:contract:LEGAL-1", "jira:contracts", "Wayne Enterprises", "managed_service")
    assert (wayne.end, wayne.sponsor_email, wayne.match.name_patterns) == (date(2026, 9, 1), "carol@acme.example", ("wayne-*",))
    assert wayne.status == "active"  # no status field: the end date decides, against the sweep's clock
    assert wayne.url == "https://acme.atlassian.net/browse/LEGAL-1"
    assert contracts["LEGAL-3"].sponsor_email is None and contracts["LEGAL-3"].contract_type == "unknown"
    assert batch.skipped == [
        "jira LEGAL-2: issue skipped: field 'Contract end': missing; expected an ISO date (YYYY-MM-DD)",
        "jira LEGAL-4: issue skipped: field 'Contract end': '31/12/2027' is not an ISO date (expected YYYY-MM-DD)",
        "issue LEGAL-5: fields is a list, not an object",
        "issue #5: missing key",
    ]
    assert any("LEGAL-3: field 'Sponsor' is missing" in n for n in batch.notes)


def test_field_values_flatten_options_users_and_documents():
    doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "globex-*; initech-*"}]}]}
    assert jc.jira_field_value(doc) == "globex-*; initech-*"
    assert jc.jira_field_value([{"value": "a"}, {"value": "b"}, None]) == ["a", "b"]
    assert jc.jira_field_value({"name": "Done", "id": "3"}) == "Done"
    assert jc.jira_field_value({"accountId": "x", "displayName": "no email"}) is None


def test_error_reasons_never_carry_the_request_headers():
    request = SimpleNamespace(headers={"Authorization": "Basic c2Vjb3BzOkFUQVRULXNlY3JldA=="}, text="")
    err = JIRAError("You do not have the permission to see the specified issue.", status_code=403, url="https://x",
                    request=request)
    reason = jc.describe_error(err, "Browse projects")
    assert reason == "HTTP 403: forbidden (You do not have the permission to see the specified issue.); needs Browse projects"
    assert "c2Vjb3Bz" in str(err) and "c2Vjb3Bz" not in reason  # the client's own text would leak it
    assert jc.describe_error(JIRAError("Rate limit exceeded.", status_code=429), "x").startswith("HTTP 429: rate limited")


def test_jql_subset_parses_and_refuses_like_jira():
    where, order = parse_jql('project = SEC AND issuetype = "Task" AND labels = "nhi-abc" ORDER BY updated DESC, key')
    assert where[0] == "and" and order == [("updated", True), ("key", False)]
    assert parse_jql("ORDER BY key")[0] is None
    with pytest.raises(JqlError, match="Expecting operator"):
        parse_jql("project SEC")
    with pytest.raises(JqlError, match="Expecting either 'OR' or 'AND'"):
        parse_jql("project = SEC labels = x")


def test_estate_errors_name_the_path(tmp_path):
    bad = CLOUD_ESTATE.replace("{display_name: backup-exporter, created_by: alice@acme.example", "{display_name: backup-exporter, created_by: zed@acme.example")
    with pytest.raises(EstateError, match=r"jira.org.service_accounts\[0\].created_by: no user .* 'zed@acme.example'"):
        load_estate(write_estate(tmp_path, bad))
    bad = SERVER_ESTATE.replace("{name: bob, email: bob@acme.example}", "{email: bob@acme.example}")
    with pytest.raises(EstateError, match=r"jira.users\[4\].name: required on Jira Server"):
        load_estate(write_estate(tmp_path, bad))
    bad = CLOUD_ESTATE.replace("fault: server_error}", "fault: rate_limit}")
    with pytest.raises(EstateError, match=r"faults\[1\].fault: 'rate_limit' is a GitHub fault"):
        load_estate(write_estate(tmp_path, bad))


# --- the collector against the emulator, through the real jira client ----------------------------


def test_cloud_collect_reads_every_inventory_with_paging(cloud, tmp_path, caplog):
    config, source = make_config(tmp_path, cloud)
    caplog.set_level(logging.DEBUG)
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)
    cov = coverage(result)
    assert set(cov) == {"jira:127.0.0.1:users", "jira:contracts", "jira:org:api_tokens", "jira:org:service_accounts"}
    assert all(c.ok for c in cov.values()), result.coverage
    accounts = by_name(result, Account)
    # Ten users, two per page: every page was read, the malformed one skipped and said so.
    assert {"Alice Liddell", "Dave Okafor", "Private Person", "globex-jira-sync", "portal visitor"} <= set(accounts)
    assert "broken user" not in accounts
    assert any("users: skipped malformed item: user #9" in w and "accountId is a int" in w for w in result.warnings)
    pages = [e for e in cloud.apps["jira"].request_log if e["path"].startswith("/rest/api/3/users/search")]
    assert len(pages) == 6  # 5 pages of 2, then the empty page that ends the listing
    assert accounts["globex-jira-sync"].account_type == "app" and not accounts["globex-jira-sync"].is_human
    assert accounts["Dave Okafor"].status == Status.SUSPENDED
    assert accounts["Private Person"].email is None  # hidden by the user's profile settings
    # API tokens: every managed user's, with owners and times; the scanner's own was just used.
    tokens = by_name(result, Credential)
    assert set(tokens) == {"scanner", "flaky scanner", "limited", "eve backup script", "alice cli", "carol one"}
    eve = tokens["eve backup script"]
    assert eve.owners[0].ref == "eve@acme.example" and eve.expires_at is None
    assert eve.last_used_at == datetime(2026, 4, 15, 12, tzinfo=timezone.utc)
    assert eve.account_key == accounts["Eve Marsh"].key
    assert tokens["alice cli"].status == Status.SUSPENDED
    assert tokens["scanner"].last_used_at >= NOW
    # Service accounts, owned by their creators' Jira accounts.
    sas = {r.name: r for r in result.records if isinstance(r, Account) and r.account_type == "service_account"}
    assert sas["release-automation"].owners[0].ref == accounts["Eve Marsh"].key
    assert sas["release-automation"].status == Status.SUSPENDED and sas["third-sa"].owners == ()
    # The contract register in Jira: good issues kept, the bad and the malformed skipped by name.
    contracts = {c.contract_id: c for c in result.records if isinstance(c, Contract)}
    assert set(contracts) == {"LEGAL-1", "LEGAL-4", "LEGAL-5"}
    assert contracts["LEGAL-1"].end == date(2026, 9, 2) and contracts["LEGAL-1"].sponsor_email == "carol@acme.example"
    assert contracts["LEGAL-4"].contract_type == "managed_service"
    assert contracts["LEGAL-5"].match.name_patterns == ("hooli-*", "hooli-bot")
    assert any("LEGAL-2: issue skipped: field 'Contract end': missing" in w for w in result.warnings)
    assert any("issue LEGAL-3: fields is a str, not an object" in w for w in result.warnings)
    search = [e["path"] for e in cloud.apps["jira"].request_log if e["path"].startswith("/rest/api/2/search")]
    assert len(search) == 3 and all(p.startswith("/rest/api/2/search/jql?") for p in search)  # 5 issues, 2 a page
    assert "nextPageToken=" in search[1]
    # Every record sits in the inventory that reported it.
    assert {r.inventory for r in result.records} <= set(cov)
    # No credential value anywhere.
    text = caplog.text + repr(result)
    assert not [s for s in SECRETS if s in text]


def test_a_429_is_waited_out_and_a_500_is_a_gap(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, token=FLAKY)
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)
    cov = coverage(result)
    assert cov["jira:127.0.0.1:users"].ok and cov["jira:127.0.0.1:users"].count > 5
    statuses = [(e["status"], e["fault"]) for e in cloud.apps["jira"].request_log if e["path"].startswith("/rest/api/3/users/search")]
    assert statuses[0] == (429, "too_many_requests") and statuses[1][0] == 200
    gap = cov["jira:contracts"]
    assert not gap.ok and gap.reason.startswith("HTTP 500: server error")
    assert cov["jira:org:api_tokens"].ok  # the rest of the source was read


def test_a_403_on_the_org_admin_api_is_a_gap_while_users_are_read(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, admin_key=NARROW_KEY)
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)
    cov = coverage(result)
    for inv, scope in (("jira:org:api_tokens", "read:tokens:admin"), ("jira:org:service_accounts", "read:service-accounts:admin")):
        assert not cov[inv].ok
        assert cov[inv].reason.startswith("HTTP 403: forbidden") and scope in cov[inv].reason
    assert cov["jira:127.0.0.1:users"].ok and cov["jira:contracts"].ok
    assert not [r for r in result.records if r.inventory.startswith("jira:org:")]


def test_malformed_json_from_the_admin_api_is_a_gap(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, admin_key=BROKEN_KEY)
    cov = coverage(jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY))
    assert cov["jira:org:api_tokens"].reason == "malformed response: the body is not valid JSON"
    assert cov["jira:org:service_accounts"].ok


def test_without_an_org_admin_key_the_token_inventories_are_gaps_not_empty(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, admin_key=None, org_id=None, register=None)
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)
    cov = coverage(result)
    assert set(cov) == {"jira:127.0.0.1:users", "jira:org:api_tokens", "jira:org:service_accounts"}  # no register: not read
    for inv in ("jira:org:api_tokens", "jira:org:service_accounts"):
        assert not cov[inv].ok and "needs an Atlassian organization admin API key" in cov[inv].reason


def test_rejected_credentials_and_missing_permissions_are_gaps(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, token="ATATT-not-a-real-token")
    cov = coverage(jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY))
    assert "HTTP 401: credentials rejected" in cov["jira:127.0.0.1:users"].reason
    assert "HTTP 401" in cov["jira:contracts"].reason and cov["jira:org:api_tokens"].ok  # the org key still works
    config, source = make_config(tmp_path, cloud, token=LIMITED, user="limited@acme.example")
    cov = coverage(jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY))
    assert cov["jira:127.0.0.1:users"].reason.startswith("HTTP 403: forbidden (You don't have the permission to browse users.)")
    assert cov["jira:contracts"].ok


def test_a_register_field_that_does_not_exist_is_a_gap(cloud, tmp_path):
    config, source = make_config(tmp_path, cloud, register={**REGISTER, "end_field": "Contract ends"})
    cov = coverage(jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY))
    assert cov["jira:contracts"].reason.startswith("contract_register.end_field: no Jira field is named 'Contract ends'")
    config, source = make_config(tmp_path, cloud, register={**REGISTER, "jql": "project = NOPE"})
    cov = coverage(jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY))
    assert cov["jira:contracts"].reason == "HTTP 400 (The value 'NOPE' does not exist for the field 'project'.)"


def test_server_collect_pages_users_and_search(server, tmp_path):
    config, source = make_config(tmp_path, server, token=SERVER_PAT, user="svc-jira", admin_key=None, org_id=None)
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)
    cov = coverage(result)
    assert cov["jira:127.0.0.1:users"].ok and cov["jira:contracts"].ok
    accounts = by_name(result, Account)
    assert set(accounts) == {"Alice Liddell", "Carol Diaz", "Dave Okafor", "Scanner", "bob"}  # inactive users too
    assert accounts["Alice Liddell"].key == "jira:user:alice" and accounts["Alice Liddell"].login == "alice"
    assert {c.contract_id for c in result.records if isinstance(c, Contract)} == {"LEGAL-1", "LEGAL-4", "LEGAL-5"}
    log = server.apps["jira"].request_log
    assert [e["path"].split("?")[0] for e in log if "search" in e["path"]].count("/rest/api/2/search") == 3  # startAt paging
    assert all("includeInactive=True" in e["path"] for e in log if e["path"].startswith("/rest/api/2/user/search"))
    assert "needs an Atlassian organization admin API key" in cov["jira:org:api_tokens"].reason
    config, source = make_config(tmp_path, server, token=SERVER_PAT, user=None, admin_key=None, org_id=None, deployment="server")
    result = jc.collect(source, config, hmac_key=HMAC_KEY, today=TODAY)  # a Data Center PAT as a Bearer token
    cov = coverage(result)
    assert cov["jira:127.0.0.1:users"].ok
    assert "Jira Data Center itself has no API that lists users' personal access tokens" in cov["jira:org:api_tokens"].reason


def test_cloud_answers_the_removed_search_with_410(cloud):
    client = JIRA(server=cloud.url("jira"), basic_auth=("secops@acme.example", SCANNER))
    with pytest.raises(JIRAError) as err:
        client._get_json("search", params={"jql": "project = SEC"})
    assert err.value.status_code == 410 and "search/jql" in err.value.text


# --- the remediation-ticket routes through the jira client (another engineer builds on them) -----


def test_ticket_lifecycle_on_cloud_create_search_comment_transition(cloud):
    client = JIRA(server=cloud.url("jira"), basic_auth=("secops@acme.example", SCANNER), max_retries=0)
    assert client.deploymentType == "Cloud" and client.server_info()["versionNumbers"][0] == 1001
    project = client.project("SEC")
    assert [t.name for t in project.issueTypes] == ["Task", "Bug"]
    alice = next(u for u in client._get_json("users/search", params={"maxResults": 2}) if u["displayName"] == "Alice Liddell")
    issue = client.create_issue(fields={
        "project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "Revoke eve's API token",
        "description": "Owner departed.", "labels": ["nhiscan", "nhi-0123abcd"], "assignee": {"accountId": alice["accountId"]}})
    assert issue.key == "SEC-1" and issue.fields.status.name == "To Do"
    assert issue.fields.assignee.displayName == "Alice Liddell" and issue.fields.reporter.emailAddress == "secops@acme.example"
    # Cloud search is eventually consistent: visible with reconcileIssues at once, by label once indexed.
    jql = 'project = SEC AND labels = "nhi-0123abcd"'
    found = client.enhanced_search_issues(jql, reconcileIssues=[int(issue.id)], json_result=True, fields=["summary"])
    assert [i["key"] for i in found["issues"]] == ["SEC-1"]
    assert [i.key for i in client.search_issues(jql)] == ["SEC-1"]
    client.add_issue_property(issue, "nhiscan", {"fingerprint": "0123abcd"})
    assert client.issue_property(issue.key, "nhiscan").value.fingerprint == "0123abcd"
    comment = client.add_comment(issue, "Still open on the second sweep.")
    assert comment.body == "Still open on the second sweep." and comment.author.displayName == "Security Operations"
    assert client.find_transitionid_by_name(issue, "Done") is not None
    client.transition_issue(issue, "Done", comment="Verified gone.")
    issue = client.issue(issue.key)
    assert issue.fields.status.name == "Done" and issue.fields.resolution.name == "Done"
    issue.update(fields={"labels": issue.fields.labels + ["resolved"]})
    issue.add_field_value("labels", "verified")
    assert client.issue(issue.key).fields.labels == ["nhiscan", "nhi-0123abcd", "resolved", "verified"]
    assert [i.key for i in client.search_issues('labels = "resolved" AND status = Done AND updated >= "-1d"')] == ["SEC-1"]
    assert client.search_issues('labels = "resolved" AND status != Done') == []
    # What the client did, as tests of the outbox see it.
    made = cloud.apps["jira"].issue("SEC-1")
    assert made.created_via_api and [c.body for c in made.comments] == ["Still open on the second sweep.", "Verified gone."]
    assert [(t.name, t.from_status, t.to_status) for t in made.transitions_made] == [("Done", "To Do", "Done")]
    assert made.properties == {"nhiscan": {"fingerprint": "0123abcd"}}


def test_ticket_routes_refuse_what_jira_refuses(cloud):
    client = JIRA(server=cloud.url("jira"), basic_auth=("secops@acme.example", SCANNER), max_retries=0)
    with pytest.raises(JIRAError) as err:
        client.create_issue(fields={"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "x", "labels": ["has space"]})
    assert err.value.status_code == 400 and "contains spaces" in err.value.text
    with pytest.raises(JIRAError) as err:
        client.create_issue(fields={"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "x"})
    assert "valid project is required" in err.value.text
    with pytest.raises(JIRAError) as err:
        client.transition_issue("LEGAL-1", "999")
    assert err.value.status_code == 400 and "Transition id '999' is not valid" in err.value.text
    with pytest.raises(JIRAError) as err:  # v3 takes rich text as an Atlassian Document only
        client._session.post(f"{cloud.url('jira')}/rest/api/3/issue/LEGAL-1/comment", json={"body": "plain text"})
    assert err.value.status_code == 400 and "Atlassian Document" in err.value.text


def test_search_lag_hides_a_new_issue_from_search_for_n_searches(tmp_path):
    estate = CLOUD_ESTATE.replace("  page_limit: 2\n", "  page_limit: 2\n  search_lag: 2\n")
    with Sandbox(write_estate(tmp_path, estate)) as sb:
        client = JIRA(server=sb.url("jira"), basic_auth=("secops@acme.example", SCANNER), max_retries=0)
        issue = client.create_issue(fields={"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "lagging",
                                            "labels": ["nhi-lag"]})
        seen = [len(client.search_issues('labels = "nhi-lag"')) for _ in range(3)]
        assert seen == [0, 0, 1]
        assert client.issue(issue.key).key == issue.key  # a direct read is consistent


def test_ticket_lifecycle_on_server(server):
    client = JIRA(server=server.url("jira"), token_auth=SERVER_PAT, max_retries=0)
    assert client.deploymentType == "Server"
    issue = client.create_issue(project="SEC", issuetype="Task", summary="Revoke a token", labels=["nhi-srv"],
                                assignee={"name": "alice"})
    assert issue.fields.assignee.name == "alice"
    assert [i.key for i in client.search_issues('labels = "nhi-srv" ORDER BY created DESC')] == [issue.key]
    client.add_comment(issue, "noted")
    client.transition_issue(issue, "Done")
    assert client.issue(issue.key).fields.status.name == "Done"
    assert [u.name for u in client.search_users(user="al")] == ["alice"]


# --- end to end: the demo estate's Jira site in a sweep ----------------------------------------


def test_demo_sweep_catches_the_jira_situations(tmp_path):
    from sandbox import generate_app_key_pair
    from scanner.config import load_config
    from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
    from scanner.sweep import run_sweep

    private, public = generate_app_key_pair()
    estate = load_estate(bundled_estate(), now=NOW)
    with Sandbox(estate, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, tmp_path, private, vendors={"jira"})
        text = config_path.read_text()
        assert "[[sources.jira]]" in text and "ATATT" not in text and "ATCTT" not in text  # credentials in files
        outcome = run_sweep(load_config(config_path), now=NOW)
    cov = {c.inventory: c for c in outcome.coverage if c.source == "jira"}
    assert set(cov) == {"jira:127.0.0.1:users", "jira:contracts", "jira:org:api_tokens", "jira:org:service_accounts"}
    assert all(c.ok for c in cov.values()), cov
    found = {(f["rule_id"], f["subject"]["name"]): f for f in outcome.findings if f["subject"]["source"] == "jira"}
    assert {
        ("contract-ended", "globex-jira-sync"), ("contract-ended", "wayne-reporting"),
        ("owner-departed", "eve backup script"), ("dormant", "eve backup script"), ("long-lived-credential", "eve backup script"),
        ("owner-departed", "release-automation"),
    } <= set(found)
    if "departed-person-active-account" in RULES:  # eve and grace left per HR; their Jira accounts are active
        assert {("departed-person-active-account", "Eve Marsh"), ("departed-person-active-account", "Grace Hall")} <= set(found)
    quiet = {"nhiscan scanner", "alice release notes", "backup-exporter", "Alice Liddell", "Dave Okafor", "LEGAL-1 Wayne Enterprises"}
    assert not [k for k in found if k[1] in quiet]
    assert {name for _rule, name in found} <= {"globex-jira-sync", "wayne-reporting", "eve backup script", "release-automation",
                                               "Eve Marsh", "Grace Hall"}
    wayne = found[("contract-ended", "wayne-reporting")]
    assert wayne["contracts"][0]["id"] == "LEGAL-1" and "wayne-*" in wayne["contracts"][0]["evidence"]
    assert wayne["sponsors"][0]["email"] == "carol@acme.example"
    assert found[("contract-ended", "globex-jira-sync")]["contracts"][0]["id"] == "C-100"
    eve = found[("owner-departed", "eve backup script")]
    assert eve["owners"][0]["email"] == "eve@acme.example"
    assert any("Atlassian admin API" in e for o in eve["owners"] for e in o["evidence"])
    grace = found[("owner-departed", "release-automation")]
    assert grace["owners"][0]["email"] == "grace@acme.example" and "createdById" in grace["owners"][0]["evidence"][0]
    # The scanner's API token and the org admin key never reach the store or the reports.
    secrets = [t.token for t in estate.vendors["jira"].api_tokens if t.token] + [k.key for k in estate.vendors["jira"].org.admin_keys]
    haystacks = [(tmp_path / "nhiscan.db").read_bytes().decode("latin-1")]
    haystacks += [p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert secrets and not [s for s in secrets for h in haystacks if s in h]
