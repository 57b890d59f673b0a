"""Okta: the collector's transforms on recorded-shape payloads, the collector over real HTTP against
the sandbox's Okta emulator, and the demo estate swept end to end.

Nothing of ours is mocked. The integration estate is this file's own: pages of two items, planted
secret values that must never come back out, and faults chosen by the API token used.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
import yaml

from sandbox import Sandbox, generate_app_key_pair
from scanner.collectors import okta
from scanner.config import Config, OktaSource, load_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Account, Credential, Grant, Person, Privilege, Resource, Status
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
SRC = "ok"
HOST = "acme.okta.example"

# --- recorded-shape payloads (as GET /api/v1/... returns them) -------------------------------------

USERS = [
    {"id": "00u1alice0000000000", "status": "ACTIVE", "created": "2020-01-01T00:00:00.000Z", "statusChanged": "2020-01-02T00:00:00.000Z",
     "lastLogin": "2026-10-31T09:00:00.000Z", "type": {"id": "oty1"},
     "profile": {"firstName": "Alice", "lastName": "Liddell", "login": "alice@acme.example", "email": "Alice@Acme.example"},
     "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}}, "_links": {}},
    {"id": "00u1bob00000000000", "status": "DEPROVISIONED", "created": "2021-01-01T00:00:00.000Z", "statusChanged": "2026-08-01T00:00:00.000Z",
     "lastLogin": None, "profile": {"firstName": "Bob", "lastName": "Stone", "login": "bob@acme.example", "email": "bob@acme.example",
                                    "managerId": "00u1alice0000000000", "manager": "Alice Liddell"}},
    {"id": "00u1carol000000000", "status": "SUSPENDED", "created": "2021-01-01T00:00:00.000Z",
     "profile": {"login": "carol@acme.example", "email": "carol@acme.example", "managerId": "00u1nobody00000000"}},
    {"id": "00u1broken00000000", "status": "ACTIVE", "profile": {"login": "broken", "email": None}},
    "not an object",
]

SERVICE_APP = {
    "id": "0oa1sync0000000000", "name": "oidc_client", "label": "user-sync", "status": "ACTIVE",
    "created": "2025-05-01T00:00:00.000Z", "lastUpdated": "2025-05-01T00:00:00.000Z", "signOnMode": "OPENID_CONNECT",
    "credentials": {"oauthClient": {"autoKeyRotation": True, "client_id": "0oa1sync0000000000",
                                    "token_endpoint_auth_method": "client_secret_basic"}},
    "settings": {"oauthClient": {"grant_types": ["client_credentials"], "application_type": "service", "response_types": ["token"]}},
}
WEB_APP = {**SERVICE_APP, "id": "0oa1web00000000000", "label": "Intranet",
           "settings": {"oauthClient": {"grant_types": ["authorization_code"], "application_type": "web"}}}
SAML_APP = {"id": "0oa1saml0000000000", "label": "Salesforce", "status": "ACTIVE", "signOnMode": "SAML_2_0", "settings": {"app": {}}}
GRANTS = [
    {"id": "oag1", "status": "ACTIVE", "created": "2025-05-01T00:00:00.000Z", "createdBy": {"id": "00u1bob00000000000", "type": "User"},
     "issuer": "https://acme.okta.example", "clientId": "0oa1sync0000000000", "scopeId": "okta.users.manage", "source": "ADMIN"},
    {"id": "oag2", "status": "ACTIVE", "createdBy": {"id": "00u1bob00000000000", "type": "User"}, "scopeId": "okta.groups.read"},
    {"id": "oag3", "status": "REVOKED", "createdBy": {"id": "00u1alice0000000000", "type": "User"}, "scopeId": "okta.apps.manage"},
]
ROLES = [{"id": "irb1", "label": "Read Only Administrator", "type": "READ_ONLY_ADMIN", "status": "ACTIVE", "assignmentType": "CLIENT"}]
SECRETS = [
    {"id": "ocs1secret00000000", "status": "ACTIVE", "client_secret": "***ab12", "secret_hash": "0WOOvBSzV9clc4Nr7Rbaug",
     "created": "2025-06-19T00:00:00.000Z", "lastUpdated": "2025-06-19T00:00:00.000Z"},
    {"id": "ocs2secret00000000", "status": "INACTIVE", "secret_hash": "Zz9", "created": "2024-01-01T00:00:00.000Z"},
]
JWKS = [{"id": "pks1", "kid": "kid-2026-10", "kty": "RSA", "alg": "RS256", "use": "sig", "status": "ACTIVE",
         "created": "2026-10-01T00:00:00.000Z", "e": "AQAB", "n": "xyz"}]
API_TOKENS = [
    {"id": "00T1grace000000000", "name": "grace-automation", "userId": "00u1grace000000000", "clientName": "Okta API",
     "created": "2026-04-15T00:00:00.000Z", "lastUpdated": "2026-04-15T00:00:00.000Z", "expiresAt": "2026-11-26T00:00:00.000Z",
     "network": {"connection": "ANYWHERE"}, "tokenWindow": "P30D", "_link": {}},
    {"id": "00T1nowin000000000", "name": "odd", "userId": "00u1alice0000000000", "created": "2026-01-01T00:00:00.000Z",
     "expiresAt": "2026-12-01T00:00:00.000Z", "tokenWindow": "forever"},
    {"id": "00T1nouser00000000", "name": "orphan"},
]


def test_privilege_of_scopes_and_roles():
    assert okta.scope_privilege("okta.users.manage") is Privilege.ADMIN
    assert okta.scope_privilege("okta.apps.manage") is Privilege.ADMIN
    assert okta.scope_privilege("okta.myAccount.email.manage") is Privilege.WRITE
    assert okta.scope_privilege("okta.users.read") is Privilege.READ
    assert okta.role_privilege("SUPER_ADMIN") is Privilege.ADMIN and okta.role_privilege("ORG_ADMIN") is Privilege.ADMIN
    assert okta.role_privilege("APP_ADMIN") is Privilege.WRITE
    assert okta.role_privilege("READ_ONLY_ADMIN") is Privilege.READ
    assert okta.token_window("P30D").days == 30 and okta.token_window("PT12H").seconds == 12 * 3600
    assert okta.token_window("P") is None and okta.token_window("forever") is None


def test_users_become_human_accounts_and_people():
    batch = okta.transform_users(SRC, USERS)
    accounts = {r.key: r for r in batch.records if isinstance(r, Account)}
    people = {r.key: r for r in batch.records if isinstance(r, Person)}
    alice = accounts["ok:user:00u1alice0000000000"]
    assert alice.is_human and alice.email == "alice@acme.example" and alice.status is Status.ACTIVE
    assert alice.last_active_at == datetime(2026, 10, 31, 9, tzinfo=timezone.utc)
    assert accounts["ok:user:00u1bob00000000000"].status is Status.SUSPENDED
    bob = people["ok:person:bob@acme.example"]
    assert bob.status == "departed" and bob.end_date.isoformat() == "2026-08-01"
    assert bob.manager_email == "alice@acme.example"  # managerId resolved within the listing
    assert people["ok:person:carol@acme.example"].status == "departed"  # SUSPENDED counts as gone
    assert people["ok:person:carol@acme.example"].manager_email is None  # unknown manager id
    assert people["ok:person:alice@acme.example"].status == "active"
    assert all(r.inventory == "ok:org:users" for r in batch.records)
    assert len(batch.skipped) == 2
    assert "user #3 (id='00u1broken00000000'): missing email" in batch.skipped[0]
    assert "is a JSON str" in batch.skipped[1]


def test_only_service_apps_are_nhis_with_privilege_from_scopes_and_roles():
    batch = okta.transform_apps(SRC, HOST, [SERVICE_APP, WEB_APP, SAML_APP, {"label": "no id"}],
                                grants={"0oa1sync0000000000": GRANTS}, roles={"0oa1sync0000000000": ROLES})
    resources = [r for r in batch.records if isinstance(r, Resource)]
    assert [r.key for r in resources] == [f"ok:org:{HOST}"]
    (app,) = [r for r in batch.records if isinstance(r, Account)]
    assert app.key == "ok:app:0oa1sync0000000000" and app.account_type == "app" and not app.is_human
    assert app.privilege is Privilege.ADMIN  # okta.users.manage; the revoked okta.apps.manage is ignored
    assert app.attributes["scopes"] == ["okta.groups.read", "okta.users.manage"] and app.attributes["roles"] == ["READ_ONLY_ADMIN"]
    assert app.owners[0].ref == "ok:user:00u1bob00000000000" and app.owners[0].role == "creator"
    assert "createdBy" in app.owners[0].evidence
    assert set(app.attributes["derived_from"]) == {"ok:org:app_grants", "ok:org:app_roles"}
    assert batch.skipped == ["app #3 (label='no id'): missing id"]
    # Without the grants and roles listings, privilege is not claimed to be complete.
    partial = okta.transform_apps(SRC, HOST, [SERVICE_APP])
    (app,) = [r for r in partial.records if isinstance(r, Account)]
    assert app.privilege is Privilege.READ and app.attributes["privilege_complete"] is False


def test_grants_and_roles_become_grants_to_the_org():
    grants = okta.transform_app_grants(SRC, HOST, "0oa1sync0000000000", "user-sync", GRANTS + [{"id": "oag4"}])
    assert [(g.scopes, g.privilege) for g in grants.records] == [(("okta.users.manage",), Privilege.ADMIN),
                                                                  (("okta.groups.read",), Privilege.READ)]
    assert all(isinstance(g, Grant) and g.resource_key == f"ok:org:{HOST}" for g in grants.records)
    assert grants.skipped and "missing scopeId" in grants.skipped[0]
    roles = okta.transform_app_roles(SRC, HOST, "0oa1sync0000000000", "user-sync",
                                     ROLES + [{"id": "irb2", "type": "SUPER_ADMIN", "status": "ACTIVE"}])
    assert [(g.scopes, g.privilege) for g in roles.records] == [(("role:READ_ONLY_ADMIN",), Privilege.READ),
                                                                 (("role:SUPER_ADMIN",), Privilege.ADMIN)]


def test_client_secrets_and_keys_keep_no_secret_material():
    batch = okta.transform_client_credentials(SRC, "0oa1sync0000000000", "user-sync", SECRETS, JWKS)
    creds = {r.key: r for r in batch.records}
    active = creds["ok:client_secret:0oa1sync0000000000/ocs1secret00000000"]
    assert active.credential_type == "client_secret" and active.account_key == "ok:app:0oa1sync0000000000"
    assert active.created_at == datetime(2025, 6, 19, tzinfo=timezone.utc) and active.expires_at is None
    assert active.privilege is Privilege.NONE and active.usage_tracked is False
    assert creds["ok:client_secret:0oa1sync0000000000/ocs2secret00000000"].status is Status.SUSPENDED
    key = creds["ok:app_key:0oa1sync0000000000/kid-2026-10"]
    assert key.credential_type == "app_key" and key.status is Status.ACTIVE
    blob = json.dumps([r.to_dict() for r in batch.records])
    assert "ab12" not in blob and "0WOOvBSzV9clc4Nr7Rbaug" not in blob and "secret_hash" not in blob


def test_api_tokens_act_as_their_creator_with_inferred_last_use():
    roles = {"00u1grace000000000": [{"id": "ra1", "type": "ORG_ADMIN", "status": "ACTIVE"}]}
    batch = okta.transform_api_tokens(SRC, HOST, API_TOKENS, roles)
    creds = {r.key: r for r in batch.records if isinstance(r, Credential)}
    grace = creds["ok:api_token:00T1grace000000000"]
    assert grace.account_key == "ok:user:00u1grace000000000" and grace.owners[0].ref == "ok:user:00u1grace000000000"
    assert grace.privilege is Privilege.ADMIN and grace.scopes == ("role:ORG_ADMIN",)
    assert grace.expires_at == datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert grace.last_used_at == datetime(2026, 10, 27, tzinfo=timezone.utc)  # expiresAt - P30D
    assert grace.attributes["network"] == "ANYWHERE"
    odd = creds["ok:api_token:00T1nowin000000000"]
    assert odd.last_used_at is None and odd.usage_tracked is False and odd.privilege is Privilege.READ
    grants = [r for r in batch.records if isinstance(r, Grant)]
    assert {g.subject_key for g in grants} == set(creds)
    assert batch.skipped == ["API token #2 (id='00T1nouser00000000'): missing userId"]


# --- integration: the collector over real HTTP against the emulator ---------------------------------

SCANNER = "00oktaScannerTOKENvalue0000000000000001"
LIMITED = "00oktaLimitedTOKENvalue0000000000000002"
BROKEN = "00oktaBrokenTOKENvalue00000000000000003"
NOT_ADMIN = "00oktaNotAdminTOKENvalue000000000000004"
PLANTED_SECRET = "PLANTEDoktaClientSecretValue-c0ffee-Zq8X"
PLANTED = [SCANNER, LIMITED, BROKEN, NOT_ADMIN, PLANTED_SECRET]

ESTATE = f"""
now: 2026-11-01T00:00:00Z
okta:
  max_limit: 2
  users:
    - {{login: alice@acme.example, first_name: Alice, last_name: Liddell, roles: [SUPER_ADMIN], created: -900d, last_login: -1d}}
    - {{login: bob@acme.example, first_name: Bob, manager: alice@acme.example, status: DEPROVISIONED, status_changed: -10d, roles: [ORG_ADMIN]}}
    - {{login: carol@acme.example, manager: alice@acme.example}}
    - {{login: scanner@acme.example, roles: [READ_ONLY_ADMIN]}}
    - {{login: dan@acme.example}}
  apps:
    - label: user-sync
      created: -520d
      secrets: [{{secret: {PLANTED_SECRET}, created: -500d}}, {{status: INACTIVE, created: -700d}}]
      grants:
        - {{scope: okta.users.manage, created_by: bob@acme.example, created: -500d}}
        - {{scope: okta.groups.read, created_by: bob@acme.example}}
        - {{scope: okta.logs.read, created_by: bob@acme.example}}
      roles: [{{type: APP_ADMIN}}]
    - label: reporter
      token_endpoint_auth_method: private_key_jwt
      jwks: [{{created: -30d}}, {{created: -10d}}, {{created: -5d}}]
      grants: [{{scope: okta.users.read, created_by: alice@acme.example}}]
    - {{label: Salesforce, sign_on_mode: SAML_2_0}}
  api_tokens:
    - {{name: scanner, user: scanner@acme.example, token: {SCANNER}, created: -30d, last_used: now}}
    - name: limited
      user: scanner@acme.example
      token: {LIMITED}
      faults:
        - {{path: /api/v1/users, fault: rate_limit, times: 1, retry_after: 1}}
        - {{path: /api/v1/api-tokens, fault: forbidden}}
        - {{path: /api/v1/apps/*/grants, fault: server_error, times: 1}}
    - name: broken
      user: scanner@acme.example
      token: {BROKEN}
      faults:
        - {{path: /api/v1/apps/*/credentials/secrets, fault: server_error}}
        - {{path: /api/v1/users, fault: malformed_json, after: 1}}
    - {{name: not-admin, user: dan@acme.example, token: {NOT_ADMIN}}}
    - {{name: bobs-token, user: bob@acme.example, created: -200d, last_used: -5d}}
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    path = tmp_path_factory.mktemp("okta") / "estate.yaml"
    path.write_text(ESTATE)
    with Sandbox(path) as sb:
        yield sb


@pytest.fixture
def sb(running, monkeypatch):
    running.reset()  # fresh fault counters, rate windows and request log
    for name, value in (("SCANNER", SCANNER), ("LIMITED", LIMITED), ("BROKEN", BROKEN), ("NOT_ADMIN", NOT_ADMIN)):
        monkeypatch.setenv(f"NHISCAN_OKTA_{name}", value)
    return running


def run(sb: Sandbox, env: str = "SCANNER", **kw):
    source = OktaSource(**{"name": SRC, "base_url": sb.url("okta"), "token_env": f"NHISCAN_OKTA_{env}", "max_retries": 2,
                           "timeout": 5, **kw})
    return okta.collect(source, Config(), hmac_key=b"okta-test-hmac-key")


def coverage(result):
    return {c.inventory.split(":")[-1]: c for c in result.coverage}


def test_reads_every_inventory_following_pages(sb):
    result = run(sb)
    cov = coverage(result)
    assert set(cov) == set(okta.INVENTORIES) and all(c.ok for c in cov.values()), result.coverage
    recs = {r.key: r for r in result.records}
    assert len(recs) == len(result.records)
    ok = {c.inventory for c in result.coverage}
    assert all(r.inventory in ok and r.source == SRC for r in result.records)
    people = [r for r in result.records if isinstance(r, Person)]
    assert len(people) == 5  # five users, two per page
    bob = next(p for p in people if p.email == "bob@acme.example")
    assert bob.status == "departed" and bob.manager_email == "alice@acme.example"
    apps = {r.name: r for r in result.records if isinstance(r, Account) and r.account_type == "app"}
    assert set(apps) == {"user-sync", "reporter"}  # the SAML app is no NHI
    assert apps["user-sync"].privilege is Privilege.ADMIN and apps["reporter"].privilege is Privilege.READ
    assert len([r for r in result.records if isinstance(r, Credential) and r.credential_type == "app_key"]) == 3
    assert len([r for r in result.records if isinstance(r, Grant) and r.inventory == "ok:org:app_grants"]) == 4  # 3 paged + 1
    token = next(r for r in result.records if isinstance(r, Credential) and r.name == "bobs-token")
    assert token.privilege is Privilege.ADMIN and token.scopes == ("role:ORG_ADMIN",)
    pages = [e["path"] for e in sb.apps["okta"].request_log if e["path"].startswith("/api/v1/users?")]
    assert len(pages) == 3 and "after=" in pages[1]
    assert all(e["token"] == SCANNER[-4:] for e in sb.apps["okta"].request_log)


def test_a_429_is_waited_out_and_a_403_is_a_gap_while_the_rest_is_read(sb):
    result = run(sb, "LIMITED")
    cov = coverage(result)
    first, retry = [e for e in sb.apps["okta"].request_log if e["path"].startswith("/api/v1/users?limit")][:2]
    assert (first["status"], retry["status"]) == (429, 200)
    # Okta sends no Retry-After: the retry waited for X-Rate-Limit-Reset (the next whole second here).
    sent = [datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc) for e in (first, retry)]
    assert sent[1].timestamp() >= int(sent[0].timestamp()) + 1
    assert cov["users"].ok and cov["app_grants"].ok  # the 500 on one grants page was retried
    gap = cov["api_tokens"]
    assert not gap.ok and gap.reason.startswith("HTTP 403: forbidden (E0000006: You do not have permission")
    assert "okta.apiTokens.read" in gap.reason
    assert all(c.ok for name, c in cov.items() if name != "api_tokens")
    assert not any(r.inventory == "ok:org:api_tokens" for r in result.records)


def test_persistent_errors_and_malformed_json_are_gaps(sb):
    cov = coverage(run(sb, "BROKEN", max_retries=1))
    assert not cov["client_secrets"].ok and cov["client_secrets"].reason.startswith("HTTP 500: server error")
    assert not cov["users"].ok and cov["users"].reason == "malformed response: the body is not valid JSON"
    assert cov["apps"].ok and cov["app_grants"].ok and cov["api_tokens"].ok


def test_credentials_that_cannot_read_make_every_inventory_a_gap(sb, monkeypatch):
    cov = coverage(run(sb, "NOT_ADMIN"))
    assert all(not c.ok and "HTTP 403" in c.reason for name, c in cov.items() if name in ("users", "apps", "api_tokens"))
    assert all(not c.ok for c in cov.values())
    monkeypatch.setenv("NHISCAN_OKTA_BAD", "00notAtokenTheSandboxKnows0000000000000")
    cov = coverage(run(sb, "BAD"))
    assert all(not c.ok and "HTTP 401: credentials rejected" in c.reason for c in cov.values())
    assert cov["client_secrets"].reason.startswith("the app list was not read")
    monkeypatch.delenv("NHISCAN_OKTA_BAD")
    cov = coverage(run(sb, "BAD"))
    assert all(not c.ok and "NHISCAN_OKTA_BAD" in c.reason for c in cov.values())


def test_malformed_item_is_skipped_with_a_log_line(sb, caplog):
    with sb.apps["okta"].mutate() as state:
        state.users[2].email = ""  # carol's profile.email goes out empty
        state.apps[0].grants[1].scope = ""
    caplog.set_level(logging.WARNING, logger="nhiscan.collectors.okta")
    result = run(sb)
    cov = coverage(result)
    assert cov["users"].ok and cov["app_grants"].ok
    assert not any(isinstance(r, Person) and r.email == "carol@acme.example" for r in result.records)
    assert any(isinstance(r, Person) and r.email == "bob@acme.example" for r in result.records)
    assert len(result.warnings) == 2 and any("ok:org:users" in w and "missing email" in w for w in result.warnings)
    assert "okta ok:org:users: skipped malformed item" in caplog.text
    assert "okta ok:org:app_grants: skipped malformed item" in caplog.text


def test_inventories_setting_limits_what_is_read(sb):
    result = run(sb, inventories=["api_tokens"])
    assert set(coverage(result)) == {"api_tokens"}
    assert not any("/api/v1/apps" in e["path"] for e in sb.apps["okta"].request_log)


def test_no_token_or_secret_value_reaches_records_reasons_or_logs(sb, caplog):
    caplog.set_level(logging.DEBUG)
    results = [run(sb), run(sb, "LIMITED"), run(sb, "BROKEN", max_retries=0), run(sb, "NOT_ADMIN")]
    texts = [caplog.text, json.dumps(sb.apps["okta"].request_log)]
    for result in results:
        texts += [repr(r) for r in result.records] + [json.dumps(r.to_dict()) for r in result.records]
        texts += [c.reason or "" for c in result.coverage] + result.warnings
    blob = "\n".join(texts)
    assert "ok:client_secret:" in blob  # the secrets were read...
    for planted in PLANTED:
        assert planted not in blob, f"planted value {planted[:6]}... leaked"
    assert PLANTED_SECRET[-4:] not in blob  # ...not even Okta's masked tail of one


# --- the demo estate, end to end ----------------------------------------------------------------


@pytest.fixture
def demo(tmp_path):
    data = yaml.safe_load(bundled_estate().read_text())
    private, public = generate_app_key_pair()
    with Sandbox(data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, tmp_path, private, vendors={"okta"})
        yield sb, config_path


def test_demo_estate_okta_findings_fire_and_the_healthy_stay_quiet(demo):
    sb, config_path = demo
    config = load_config(config_path)
    assert [s.name for s in config.sources.okta] == ["okta"] and not config.sources.entra
    assert (config_path.parent / "okta-token.txt").stat().st_mode & 0o077 == 0
    outcome = run_sweep(config, now=NOW)
    cov = {c.inventory: c for c in outcome.coverage if c.source == "okta"}
    assert set(cov) == {f"okta:org:{s}" for s in okta.INVENTORIES} and all(c.ok for c in cov.values())
    found = {(f["rule_id"], f["subject"]["name"]): f for f in outcome.findings if f["subject"]["source"] == "okta"}
    secret = next(name for rid, name in found if rid == "long-lived-credential" and name.startswith("user-sync client secret"))
    expected = {("excessive-privilege", "user-sync"), ("owner-departed", "user-sync"), ("long-lived-credential", secret),
                ("owner-departed", "grace-automation"), ("excessive-privilege", "grace-automation")}
    assert expected <= set(found), sorted(found)
    assert "not rotated for 500 days" in found[("long-lived-credential", secret)]["why"]
    owner = found[("owner-departed", "user-sync")]["owners"][0]
    assert owner["email"] == "eve@acme.example" and "scope grant createdBy (Okta API)" in owner["evidence"][0]
    grace = found[("owner-departed", "grace-automation")]["owners"][0]
    assert grace["email"] == "grace@acme.example" and grace["statuses"] == {"hr": "departed", "okta": "departed"}
    quiet = [k for k in found if k[1] in ("reporting-exporter", "nhiscan-reader") or k[1].startswith("reporting-exporter")]
    assert not quiet, quiet
    # HR says ivan is active, Okta deprovisioned him: his GitHub account is flagged, with both words.
    ivan = next(f for f in outcome.findings if f["rule_id"] == "departed-person-active-account" and f["subject"]["name"] == "Ivan Petrov")
    assert "departed per okta" in ivan["why"] and "active per hr" in ivan["why"]
    blob = json.dumps(outcome.findings) + "".join(p.read_text() for p in outcome.report_paths)
    for planted in ("00demoOktaScannerToken0000000000000000001", "demoOktaUserSyncSecret00plantedValue0003"):
        assert planted not in blob
