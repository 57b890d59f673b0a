"""Microsoft Entra ID: the collector's transforms on recorded-shape Graph payloads, the collector
over real HTTP against the sandbox's Entra emulator (token endpoint + Graph), and the demo estate
swept end to end. Nothing of ours is mocked.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
import yaml

from sandbox import Sandbox, generate_app_key_pair
from scanner.collectors import entra
from scanner.config import Config, EntraSource, load_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Account, Credential, Grant, Person, Privilege, Resource, Status
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
SRC = "en"
TENANT = "6d0a2f1e-3c4b-4a5d-8e6f-0000000ac3e1"
GLOBEX = "9b1e4c2d-7f3a-4e8b-9c0d-00000000610b"
MS = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
GRAPH_SP = "9294dea3-e547-4fa5-b9af-5f054dbb2c38"

# --- recorded-shape payloads (as Graph returns them) -----------------------------------------------

APPLICATIONS = [
    {"id": "obj-hooli", "appId": "app-hooli", "displayName": "hooli-graph-reader", "createdDateTime": "2026-10-01T00:00:00Z",
     "signInAudience": "AzureADMyOrg",
     "passwordCredentials": [{"customKeyIdentifier": None, "displayName": "hooli-reader", "endDateTime": "2029-10-31T00:00:00Z",
                              "hint": "Zq8", "keyId": "key-1", "secretText": None, "startDateTime": "2026-10-02T00:00:00Z"}],
     "keyCredentials": [{"customKeyIdentifier": "A1B2C3", "displayName": "CN=hooli", "endDateTime": "2027-10-01T00:00:00Z",
                         "key": None, "keyId": "key-2", "startDateTime": "2026-10-01T00:00:00Z", "type": "AsymmetricX509Cert",
                         "usage": "Verify"}]},
    {"id": "obj-dirsync", "appId": "app-dirsync", "displayName": "directory-sync", "passwordCredentials": [], "keyCredentials": []},
    {"id": "obj-bad", "appId": "app-bad", "displayName": "bad", "passwordCredentials": [{"displayName": "no key id"}]},
]
SERVICE_PRINCIPALS = [
    {"id": GRAPH_SP, "appId": "00000003-0000-0000-c000-000000000000", "displayName": "Microsoft Graph", "appOwnerOrganizationId": MS,
     "accountEnabled": True, "servicePrincipalType": "Application",
     "appRoles": [{"id": "19dbc75e-c2e2-444c-a770-ec69d8559fc7", "value": "Directory.ReadWrite.All", "isEnabled": True},
                  {"id": "df021288-bdef-4463-88db-98f22de89214", "value": "User.Read.All", "isEnabled": True}]},
    {"id": "sp-hooli", "appId": "app-hooli", "displayName": "hooli-graph-reader", "appOwnerOrganizationId": TENANT,
     "accountEnabled": True, "servicePrincipalType": "Application", "appRoles": [], "passwordCredentials": [], "keyCredentials": []},
    {"id": "sp-dirsync", "appId": "app-dirsync", "displayName": "directory-sync", "appOwnerOrganizationId": TENANT,
     "accountEnabled": False, "servicePrincipalType": "Application", "appRoles": []},
    {"id": "sp-globex", "appId": "app-globex", "displayName": "globex-sso", "appOwnerOrganizationId": GLOBEX,
     "accountEnabled": True, "servicePrincipalType": "Application", "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
     "passwordCredentials": [{"displayName": "added-by-attacker", "keyId": "key-3", "startDateTime": "2026-09-01T00:00:00Z",
                              "endDateTime": "2028-09-01T00:00:00Z", "hint": "abc"}]},
    {"id": "sp-mi", "appId": "app-mi", "displayName": "vm-backup-identity", "appOwnerOrganizationId": None,
     "accountEnabled": True, "servicePrincipalType": "ManagedIdentity"},
    {"appId": "app-noid", "displayName": "no object id", "appOwnerOrganizationId": GLOBEX},
]
ASSIGNMENTS = {
    "sp-dirsync": [{"id": "asg-1", "appRoleId": "19dbc75e-c2e2-444c-a770-ec69d8559fc7", "resourceId": GRAPH_SP,
                    "resourceDisplayName": "Microsoft Graph", "principalDisplayName": "directory-sync", "principalId": "sp-dirsync",
                    "createdDateTime": "2026-05-01T00:00:00Z"}],
    "sp-hooli": [{"id": "asg-2", "appRoleId": "df021288-bdef-4463-88db-98f22de89214", "resourceId": GRAPH_SP,
                  "resourceDisplayName": "Microsoft Graph", "principalDisplayName": "hooli-graph-reader", "principalId": "sp-hooli"}],
    "sp-globex": [{"id": "asg-3", "appRoleId": "00000000-aaaa-4bbb-8ccc-000000000000", "resourceId": "sp-other",
                   "resourceDisplayName": "Contoso API", "principalId": "sp-globex"}],
}
SIGN_INS = [
    {"id": "x", "appId": "app-hooli", "lastSignInActivity": {"lastSignInDateTime": "2026-10-31T08:00:00Z", "lastSignInRequestId": "r"},
     "applicationAuthenticationClientSignInActivity": {"lastSignInDateTime": "2026-10-31T08:00:00Z"}},
    {"id": "y", "appId": "app-globex", "lastSignInActivity": {"lastSignInDateTime": "2026-09-12T00:00:00Z"}},
    {"id": "z", "appId": "app-broken", "lastSignInActivity": {"lastSignInDateTime": "yesterday"}},
]
OWNERS = {
    "obj-dirsync": [{"@odata.type": "#microsoft.graph.user", "id": "u-frank", "userPrincipalName": "frank@acme.example", "mail": "Frank@Acme.example"}],
    "sp-globex": [{"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-x", "appId": "app-admin-tool", "displayName": "admin tool"}],
}
USERS = [
    {"id": "u-alice", "displayName": "Alice Liddell", "userPrincipalName": "alice@acme.example", "mail": "alice@acme.example",
     "accountEnabled": True, "createdDateTime": "2021-01-01T00:00:00Z",
     "signInActivity": {"lastSignInDateTime": "2026-10-31T07:00:00Z"}},
    {"id": "u-eve", "displayName": "Eve Marsh", "userPrincipalName": "eve@acme.example", "mail": None, "accountEnabled": False},
    {"id": "u-guest", "displayName": "Guest", "userPrincipalName": "guest_globex.example#EXT#@acme.onmicrosoft.com", "mail": None,
     "accountEnabled": True},
    {"id": "u-nostate", "displayName": "No state", "userPrincipalName": "x@acme.example"},
]


def test_permission_privilege():
    for admin in ("Directory.ReadWrite.All", "Directory.Read.All", "RoleManagement.ReadWrite.Directory",
                  "AppRoleAssignment.ReadWrite.All", "Files.ReadWrite.All", "Application.ReadWrite.All"):
        assert entra.permission_privilege(admin) is Privilege.ADMIN, admin
    assert entra.permission_privilege("Sites.ReadWrite.Selected") is Privilege.WRITE
    for read in ("User.Read.All", "Mail.Send", "AuditLog.Read.All"):
        assert entra.permission_privilege(read) is Privilege.READ, read


def test_sign_in_activity_and_permission_resolution():
    signins = entra.sign_in_by_app(SIGN_INS)
    assert signins == {"app-hooli": datetime(2026, 10, 31, 8, tzinfo=timezone.utc), "app-globex": datetime(2026, 9, 12, tzinfo=timezone.utc)}
    perms = entra.resolve_permissions(ASSIGNMENTS, SERVICE_PRINCIPALS)
    assert [(p.value, p.privilege) for p in perms["app-dirsync"]] == [("Directory.ReadWrite.All", Privilege.ADMIN)]
    assert perms["app-hooli"][0].value == "User.Read.All"
    # An app role the listing cannot name keeps its raw id (and no claim of privilege beyond read).
    assert perms["app-globex"][0].value == "00000000-aaaa-4bbb-8ccc-000000000000" and perms["app-globex"][0].resource == "Contoso API"


def test_applications_fold_in_their_principal_permissions_and_sign_in():
    perms = entra.resolve_permissions(ASSIGNMENTS, SERVICE_PRINCIPALS)
    batch = entra.transform_applications(SRC, TENANT, APPLICATIONS, owners=OWNERS, service_principals=SERVICE_PRINCIPALS,
                                         permissions=perms, sign_ins=entra.sign_in_by_app(SIGN_INS))
    recs = {r.key: r for r in batch.records}
    hooli = recs["en:app:app-hooli"]
    assert hooli.account_type == "app" and not hooli.is_human and not hooli.third_party
    assert hooli.privilege is Privilege.READ and hooli.last_active_at == datetime(2026, 10, 31, 8, tzinfo=timezone.utc)
    assert set(hooli.attributes["derived_from"]) == {f"en:{TENANT}:service_principals", f"en:{TENANT}:app_role_assignments",
                                                     f"en:{TENANT}:sign_in_activity"}
    dirsync = recs["en:app:app-dirsync"]
    assert dirsync.privilege is Privilege.ADMIN and dirsync.status is Status.SUSPENDED  # its principal is disabled
    assert dirsync.attributes["permissions"] == ["Microsoft Graph:Directory.ReadWrite.All"]
    assert dirsync.owners[0].ref == "frank@acme.example" and dirsync.owners[0].evidence == "application owner (Entra API)"
    secret = recs["en:client_secret:app-hooli/key-1"]
    assert secret.credential_type == "client_secret" and secret.account_key == "en:app:app-hooli"
    assert secret.created_at == datetime(2026, 10, 2, tzinfo=timezone.utc) and secret.expires_at == datetime(2029, 10, 31, tzinfo=timezone.utc)
    assert secret.last_used_at == hooli.last_active_at and secret.usage_tracked and secret.privilege is Privilege.NONE
    assert secret.preview is None and "Zq8" not in json.dumps(secret.to_dict())  # Graph's hint is dropped
    cert = recs["en:certificate:app-hooli/key-2"]
    assert cert.credential_type == "certificate" and cert.attributes["thumbprint"] == "A1B2C3"
    assert batch.skipped == ["application #2 (id='obj-bad'): missing keyId"]
    # Without the sign-in report, use is unknown rather than "never".
    blind = entra.transform_applications(SRC, TENANT, APPLICATIONS[:1], owners={})
    cred = next(r for r in blind.records if isinstance(r, Credential))
    assert cred.usage_tracked is False and cred.last_used_at is None


def test_service_principals_without_a_registration_here_are_third_party_apps():
    batch = entra.transform_service_principals(SRC, TENANT, SERVICE_PRINCIPALS, owners=OWNERS,
                                               permissions=entra.resolve_permissions(ASSIGNMENTS, SERVICE_PRINCIPALS),
                                               sign_ins=entra.sign_in_by_app(SIGN_INS))
    accounts = {r.key: r for r in batch.records if isinstance(r, Account)}
    assert set(accounts) == {"en:app:app-globex", "en:app:app-mi"}  # not Microsoft's, not those registered here
    globex = accounts["en:app:app-globex"]
    assert globex.third_party and globex.attributes["app_owner_organization_id"] == GLOBEX
    assert globex.owners[0].ref == "en:app:app-admin-tool"
    mi = accounts["en:app:app-mi"]
    assert mi.account_type == "service_account" and not mi.third_party
    secret = next(r for r in batch.records if isinstance(r, Credential))
    assert secret.key == "en:client_secret:sp/sp-globex/app-globex/key-3" and secret.account_key == "en:app:app-globex"
    assert batch.skipped == ["service principal #5: missing id"]


def test_assignments_become_grants_to_the_tenant():
    batch = entra.transform_app_role_assignments(SRC, TENANT, entra.resolve_permissions(ASSIGNMENTS, SERVICE_PRINCIPALS))
    (tenant,) = [r for r in batch.records if isinstance(r, Resource)]
    assert tenant.key == f"en:tenant:{TENANT}"
    grants = {g.subject_key: g for g in batch.records if isinstance(g, Grant)}
    assert grants["en:app:app-dirsync"].privilege is Privilege.ADMIN
    assert grants["en:app:app-dirsync"].scopes == ("Microsoft Graph:Directory.ReadWrite.All",)
    assert all(g.resource_key == tenant.key for g in grants.values())


def test_users_become_people_departed_when_disabled():
    batch = entra.transform_users(SRC, TENANT, USERS)
    accounts = {r.key: r for r in batch.records if isinstance(r, Account)}
    people = {r.email: r for r in batch.records if isinstance(r, Person)}
    assert accounts["en:user:u-alice"].last_active_at == datetime(2026, 10, 31, 7, tzinfo=timezone.utc)
    assert accounts["en:user:u-eve"].status is Status.SUSPENDED and accounts["en:user:u-eve"].email == "eve@acme.example"
    assert people["eve@acme.example"].status == "departed" and people["alice@acme.example"].status == "active"
    assert people["eve@acme.example"].key == "en:person:eve@acme.example"
    assert accounts["en:user:u-guest"].email is None  # a guest's #EXT# UPN is no email
    assert batch.skipped == ["user #3 (id='u-nostate'): missing accountEnabled"]


# --- integration: token endpoint + Graph over real HTTP -------------------------------------------

SECRET = "PLANTEDentraScannerSecret~c0ffee0001Qx"
NOPERM_SECRET = "PLANTEDentraNoPermSecret~c0ffee0002Wv"
FAULTY_SECRET = "PLANTEDentraFaultySecret~c0ffee0003Ry"
OTHER_SECRET = "PLANTEDentraHooliSecret~c0ffee0004Tz"
PLANTED = [SECRET, NOPERM_SECRET, FAULTY_SECRET, OTHER_SECRET]
READER = [f"Application.Read.All", "User.Read.All", "AuditLog.Read.All"]

ESTATE = f"""
now: 2026-11-01T00:00:00Z
entra:
  tenant_id: {TENANT}
  users:
    - {{user_principal_name: alice@acme.example, display_name: Alice, last_sign_in: -1d}}
    - {{user_principal_name: eve@acme.example, account_enabled: false}}
    - {{user_principal_name: frank@acme.example}}
  applications:
    - display_name: scanner
      owners: [alice@acme.example]
      password_credentials: [{{display_name: sweep, secret: "{SECRET}", end: +100d}}]
      service_principal: {{permissions: {READER}, last_sign_in: -1h}}
    - display_name: scanner-no-audit
      password_credentials: [{{secret: "{NOPERM_SECRET}"}}]
      service_principal: {{permissions: [Application.Read.All, User.Read.All]}}
    - display_name: scanner-faulty
      password_credentials: [{{secret: "{FAULTY_SECRET}"}}]
      service_principal: {{permissions: {READER}}}
      faults:
        - {{path: /v1.0/applications, fault: too_many_requests, times: 1, retry_after: 1}}
        - {{path: /v1.0/servicePrincipals/*/appRoleAssignments, fault: server_error}}
        - {{path: /v1.0/users, fault: malformed_json}}
    - display_name: hooli-graph-reader
      created: -30d
      password_credentials: [{{display_name: hooli, secret: "{OTHER_SECRET}", start: -30d, end: +1095d}}]
      key_credentials: [{{display_name: cert}}]
      service_principal: {{permissions: [User.Read.All], last_sign_in: -1d}}
    - display_name: directory-sync
      owners: [frank@acme.example]
      service_principal: {{permissions: [Directory.ReadWrite.All], owners: [alice@acme.example]}}
    - display_name: app-without-principal
      service_principal: null
  service_principals:
    - {{display_name: globex-sso, app_owner_organization_id: {GLOBEX}, permissions: [User.Read.All], last_sign_in: -50d}}
    - {{display_name: backup-identity, service_principal_type: ManagedIdentity}}
"""


@pytest.fixture(scope="module")
def running():
    with Sandbox(yaml.safe_load(ESTATE)) as sb:
        yield sb


@pytest.fixture
def sb(running, monkeypatch):
    running.reset()
    for name, value in (("SECRET", SECRET), ("NOPERM", NOPERM_SECRET), ("FAULTY", FAULTY_SECRET), ("BAD", "not-the-secret")):
        monkeypatch.setenv(f"NHISCAN_ENTRA_{name}", value)
    return running


def app_id(sb: Sandbox, name: str) -> str:
    return next(a.app_id for a in sb.apps["entra"].state.applications if a.display_name == name)


def run(sb: Sandbox, client: str = "scanner", env: str = "SECRET", **kw):
    root = sb.url("entra")
    source = EntraSource(**{"name": SRC, "base_url": f"{root}/v1.0", "login_url": root, "tenant_id": TENANT,
                            "client_id": app_id(sb, client), "client_secret_env": f"NHISCAN_ENTRA_{env}",
                            "max_retries": 2, "timeout": 5, **kw})
    return entra.collect(source, Config(), hmac_key=b"entra-test-hmac-key")


def coverage(result):
    return {c.inventory.split(":")[-1]: c for c in result.coverage}


def test_reads_every_inventory(sb):
    result = run(sb)
    cov = coverage(result)
    assert set(cov) == set(entra.INVENTORIES) and all(c.ok for c in cov.values()), result.coverage
    assert all(c.inventory.startswith(f"{SRC}:{TENANT}:") for c in result.coverage)
    recs = {r.key: r for r in result.records}
    assert len(recs) == len(result.records)
    ok = {c.inventory for c in result.coverage}
    assert all(r.inventory in ok for r in result.records)
    apps = {r.name: r for r in result.records if isinstance(r, Account) and not r.is_human}
    assert set(apps) == {"scanner", "scanner-no-audit", "scanner-faulty", "hooli-graph-reader", "directory-sync",
                         "app-without-principal", "globex-sso", "backup-identity"}
    assert apps["globex-sso"].third_party and not apps["directory-sync"].third_party
    assert apps["directory-sync"].privilege is Privilege.ADMIN
    assert {o.ref for o in apps["directory-sync"].owners} == {"frank@acme.example", "alice@acme.example"}
    hooli = next(r for r in result.records if isinstance(r, Credential) and r.name.startswith("hooli-graph-reader client secret"))
    assert hooli.expires_at == datetime(2029, 10, 31, tzinfo=timezone.utc) and hooli.last_used_at == datetime(2026, 10, 31, tzinfo=timezone.utc)
    people = {p.email: p for p in result.records if isinstance(p, Person)}
    assert people["eve@acme.example"].status == "departed"
    alice = next(r for r in result.records if isinstance(r, Account) and r.email == "alice@acme.example")
    assert alice.last_active_at == datetime(2026, 10, 31, tzinfo=timezone.utc)  # signInActivity was selected
    paths = [e["path"] for e in sb.apps["entra"].request_log]
    assert paths[0] == f"/{TENANT}/oauth2/v2.0/token"
    assert any(p.startswith("/beta/reports/servicePrincipalSignInActivities") for p in paths)


def test_sign_in_activity_refused_without_a_license_is_a_gap_and_the_rest_is_read(sb):
    with sb.apps["entra"].mutate() as state:
        state.sign_in_activity_licensed = False
    result = run(sb)
    cov = coverage(result)
    gap = cov["sign_in_activity"]
    assert not gap.ok and gap.reason.startswith("HTTP 403: forbidden (Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    assert "needs Entra ID P1/P2 and AuditLog.Read.All" in gap.reason
    assert all(c.ok for name, c in cov.items() if name != "sign_in_activity")
    creds = [r for r in result.records if isinstance(r, Credential)]
    assert creds and all(c.usage_tracked is False and c.last_used_at is None for c in creds)
    users = [e["path"] for e in sb.apps["entra"].request_log if e["path"].startswith("/v1.0/users")]
    assert users and "signInActivity" not in users[0]  # not asked for where it cannot be read


def test_missing_permission_is_a_gap_naming_it(sb):
    cov = coverage(run(sb, "scanner-no-audit", "NOPERM"))
    assert not cov["sign_in_activity"].ok and "Authorization_RequestDenied" in cov["sign_in_activity"].reason
    assert cov["applications"].ok and cov["users"].ok


def test_a_429_is_waited_out_and_persistent_errors_are_gaps(sb):
    result = run(sb, "scanner-faulty", "FAULTY")
    cov = coverage(result)
    apps = [e for e in sb.apps["entra"].request_log if e["path"].startswith("/v1.0/applications?")]
    assert [e["status"] for e in apps[:2]] == [429, 200] and cov["applications"].ok
    assert not cov["app_role_assignments"].ok and cov["app_role_assignments"].reason.startswith("HTTP 503: server error")
    assert not cov["users"].ok and cov["users"].reason == "malformed response: the body is not valid JSON"
    assert cov["service_principals"].ok and cov["sign_in_activity"].ok
    # Privilege could not be read: the app says so, and names the listing its findings depend on.
    dirsync = next(r for r in result.records if isinstance(r, Account) and r.name == "directory-sync")
    assert dirsync.attributes["privilege_complete"] is False
    assert f"{SRC}:{TENANT}:app_role_assignments" in dirsync.attributes["derived_from"]


def test_pages_are_followed(sb):
    with sb.apps["entra"].mutate() as state:
        for i in range(120):  # Graph pages at $top; the emulator caps at 999, so go past its default of 100
            state.users.append(type(state.users[0])(user_principal_name=f"u{i}@acme.example", id=f"id-{i}", mail=f"u{i}@acme.example",
                                                    display_name=f"u{i}", created=NOW))
    result = run(sb, inventories=["users"])
    people = [r for r in result.records if isinstance(r, Person)]
    assert len(people) == 123
    # $top=999 fits one page; a client that asks for less is handed the next link, which the collector follows.
    pages = [e["path"] for e in sb.apps["entra"].request_log if e["path"].startswith("/v1.0/users")]
    assert len(pages) == 1
    graph = entra.GraphClient(EntraSource(name=SRC, base_url=f"{sb.url('entra')}/v1.0", login_url=sb.url("entra"), tenant_id=TENANT,
                                          client_id=app_id(sb, "scanner"), client_secret_env="NHISCAN_ENTRA_SECRET"),
                              entra.get_token(EntraSource(name=SRC, base_url=f"{sb.url('entra')}/v1.0", login_url=sb.url("entra"),
                                                          tenant_id=TENANT, client_id=app_id(sb, "scanner"),
                                                          client_secret_env="NHISCAN_ENTRA_SECRET"), SECRET))
    try:
        items = graph.list("/users", {"$select": "id,accountEnabled", "$top": 50})
    finally:
        graph.close()
    assert len(items) == 123
    assert len([e for e in sb.apps["entra"].request_log if e["path"].startswith("/v1.0/users")]) == 1 + 3
    assert "$skiptoken" in sb.apps["entra"].request_log[-1]["path"]


def test_bad_secret_makes_every_inventory_a_gap_with_the_aadsts_reason(sb, monkeypatch):
    cov = coverage(run(sb, env="BAD"))
    assert set(cov) == set(entra.INVENTORIES)
    assert all(not c.ok and c.reason.startswith("token request failed: HTTP 401: credentials rejected") for c in cov.values())
    assert "AADSTS7000215" in cov["users"].reason
    monkeypatch.delenv("NHISCAN_ENTRA_BAD")
    cov = coverage(run(sb, env="BAD"))
    assert all(not c.ok and "NHISCAN_ENTRA_BAD" in c.reason for c in cov.values())


def test_malformed_item_is_skipped_with_a_log_line(sb, caplog):
    with sb.apps["entra"].mutate() as state:
        state.applications[3].password_credentials[0].key_id = ""  # hooli's secret loses its keyId
    caplog.set_level(logging.WARNING, logger="nhiscan.collectors.entra")
    result = run(sb)
    cov = coverage(result)
    assert cov["applications"].ok
    names = {r.name for r in result.records if isinstance(r, Account)}
    assert "hooli-graph-reader" not in names and "directory-sync" in names
    assert any("applications" in w and "missing keyId" in w for w in result.warnings)
    assert f"entra {SRC}:{TENANT}:applications: skipped malformed item" in caplog.text


def test_no_secret_or_token_reaches_records_reasons_or_logs(sb, caplog):
    caplog.set_level(logging.DEBUG)
    results = [run(sb), run(sb, "scanner-faulty", "FAULTY"), run(sb, env="BAD")]
    texts = [caplog.text, json.dumps(sb.apps["entra"].request_log)]
    for result in results:
        texts += [repr(r) for r in result.records] + [json.dumps(r.to_dict()) for r in result.records]
        texts += [c.reason or "" for c in result.coverage] + result.warnings
    blob = "\n".join(texts)
    assert "client_secret:" in blob
    for planted in PLANTED:
        assert planted not in blob, f"planted value {planted[:8]}... leaked"
    assert "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." not in blob  # no access token either


# --- the demo estate, end to end ----------------------------------------------------------------


@pytest.fixture
def demo(tmp_path):
    data = yaml.safe_load(bundled_estate().read_text())
    private, public = generate_app_key_pair()
    with Sandbox(data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        config_path = prepare(sb, tmp_path, private, vendors={"entra"})
        yield sb, config_path


def test_demo_estate_entra_findings_fire_and_the_healthy_stay_quiet(demo):
    sb, config_path = demo
    config = load_config(config_path)
    assert [s.name for s in config.sources.entra] == ["entra"] and not config.sources.okta
    assert (config_path.parent / "entra-client-secret.txt").stat().st_mode & 0o077 == 0
    outcome = run_sweep(config, now=NOW)
    cov = [c for c in outcome.coverage if c.source == "entra"]
    assert len(cov) == len(entra.INVENTORIES) and all(c.ok for c in cov), cov
    found = {(f["rule_id"], f["subject"]["name"]): f for f in outcome.findings if f["subject"]["source"] == "entra"}
    secret = "hooli-graph-reader client secret hooli-reader"
    expected = {("credential-outlives-contract", secret), ("long-lived-credential", secret),
                ("owner-departed", "hooli-graph-reader"), ("contract-ended", "globex-sso"),
                ("excessive-privilege", "directory-sync")}
    assert expected <= set(found), sorted(found)
    f = found[("credential-outlives-contract", secret)]
    assert f["contracts"][0]["id"] == "C-300" and "expires on 2029-" in f["why"]
    assert found[("contract-ended", "globex-sso")]["contracts"][0]["id"] == "C-100"
    assert found[("excessive-privilege", "directory-sync")]["owners"][0]["email"] == "frank@acme.example"
    assert "Directory.ReadWrite.All" in json.dumps(found[("excessive-privilege", "directory-sync")])
    quiet = [k for k in found if k[1].startswith(("billing-webhooks", "nhiscan-reader"))]
    assert not quiet, quiet
    # Entra still has grace and dave enabled although HR says they left.
    left = {f["subject"]["name"] for f in outcome.findings
            if f["rule_id"] == "departed-person-active-account" and f["subject"]["source"] == "entra"}
    assert {"Grace Hall", "Dave Okafor"} <= left and "Eve Marsh" not in left
    blob = json.dumps(outcome.findings) + "".join(p.read_text() for p in outcome.report_paths)
    for planted in ("demoEntraScannerSecret~00planted0000000001", "demoHooliReaderSecret~00planted000000002"):
        assert planted not in blob
