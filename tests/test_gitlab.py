"""GitLab end to end: the sandbox's GitLab emulator, the collector through real python-gitlab, the demo.

The estate below is this file's own: small, but it touches every inventory, pages listings
(``per_page=2`` where paging is the point), and plants values that must never come back out. Faults are injected per
token by the emulator (see ``sandbox/README.md``, GitLab). Nothing of ours is mocked.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
import requests
import yaml

from sandbox import EstateError, Sandbox, generate_app_key_pair, load_estate
from scanner.collectors import gitlab as glc
from scanner.config import load_config, parse_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.records import Account, Credential, Grant, Privilege, Status, keyed_hash
from scanner.sweep import run_sweep

HMAC_KEY = b"integration-test-hmac-key-32byte"

ADMIN = "glpat-adminTOKENvalue00000000001"
MEMBER = "glpat-memberTOKENvalue0000000002"
FLAKY = "glpat-flakyTOKENvalue00000000003"
BROKEN = "glpat-brokenTOKENvalue0000000004"
NOSCOPE = "glpat-noscopeTOKENvalue000000005"
SLOW = "glpat-slowTOKENvalue000000000006"

GROUP_VAR = "PLANTED-group-variable-c0ffee-0001"
PROJECT_VAR = "PLANTED-project-variable-c0ffee-0002"
HIDDEN_VAR = "PLANTED-hidden-variable-c0ffee-0003"
INSTANCE_VAR = "PLANTED-instance-variable-c0ffee-0004"
PLANTED = [GROUP_VAR, PROJECT_VAR, HIDDEN_VAR, INSTANCE_VAR, ADMIN, MEMBER, FLAKY, BROKEN, NOSCOPE, SLOW]

EXTRA_USERS = "\n".join(f"    - {{username: user{i:02d}, email: user{i:02d}@acme.example}}" for i in range(1, 8))

ESTATE = f"""
now: 2026-11-01T00:00:00Z
gitlab:
  tokens:
    - {{token: {ADMIN}, user: root}}
    - {{token: {MEMBER}, user: bob}}
    - token: {FLAKY}
      user: root
      faults:
        - {{path: /deploy_tokens, fault: server_error, times: 1}}
        - {{path: /users, fault: too_many_requests, after: 1, times: 1, retry_after: 1}}
    - token: {BROKEN}
      user: root
      faults:
        - {{path: "/groups/*/variables", fault: forbidden}}
        - {{path: /admin/ci/variables, fault: server_error}}
        - {{path: "/projects/*/deploy_keys", fault: malformed_json}}
        - {{path: /users, fault: malformed_item, times: 1}}
    - {{token: {NOSCOPE}, user: root, scopes: [read_user]}}
    - token: {SLOW}
      user: root
      faults:
        - {{path: /admin/ci/variables, fault: timeout, seconds: 1.5}}
  users:
    - {{username: root, name: Administrator, is_admin: true, email: root@acme.example, created_at: -900d}}
    - username: bob
      email: bob@acme.example
      last_activity_on: -1d
      personal_access_tokens:
        - {{name: bob-laptop, scopes: [api], created_at: -20d, last_used_at: -3d, expires_at: +30d}}
      impersonation_tokens:
        - {{name: support-session, scopes: [read_api], created_at: -5d, expires_at: +2d}}
    - username: carol
      email: carol@acme.example
      state: blocked
      personal_access_tokens:
        - {{name: carol-old, scopes: [read_api], created_at: -400d}}
{EXTRA_USERS}
  service_accounts:
    - username: service_account_ci
      created_by: root
      personal_access_tokens:
        - {{name: ci-sa-token, scopes: [read_api], expires_at: +60d}}
  groups:
    - full_path: acme
      members: {{bob: maintainer}}
      access_tokens:
        - {{name: acme-group-token, scopes: [read_api], access_level: reporter, created_by: root, last_used_at: -1d}}
      service_accounts:
        - username: service_account_group_acme
          created_by: bob
          personal_access_tokens:
            - {{name: group-sa-token, scopes: [api], expires_at: +90d}}
      deploy_tokens:
        - {{name: group-deploy, scopes: [read_registry], expires_at: +100d}}
      variables:
        - {{key: GROUP_SECRET, value: {GROUP_VAR}, masked: true}}
      runners:
        - {{description: acme-runner, tag_list: [docker], contacted_at: -2h}}
    - full_path: acme/platform
  projects:
    - path_with_namespace: acme/api
      access_tokens:
        - {{name: api-maintainer, scopes: [api], access_level: maintainer, created_by: bob, expires_at: +100d}}
      deploy_tokens:
        - {{name: api-deploy, scopes: [read_repository, write_registry]}}
      variables:
        - {{key: PROJECT_SECRET, value: {PROJECT_VAR}}}
        - {{key: HIDDEN_ONE, value: {HIDDEN_VAR}, masked: true, hidden: true}}
      runners:
        - {{description: api-runner, paused: true, projects: [acme/platform/infra]}}
    - path_with_namespace: acme/platform/infra
  deploy_keys:
    - {{title: api-push, created_by: bob, projects: {{acme/api: true, acme/platform/infra: false}}}}
  variables:
    - {{key: INSTANCE_SECRET, value: {INSTANCE_VAR}}}
  runners:
    - {{description: shared-runner, status: offline, contacted_at: -40d}}
"""


@pytest.fixture(scope="module")
def sb():
    with Sandbox(yaml.safe_load(ESTATE)) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(sb):
    sb.reset()  # fault counters and the request log start afresh for every test
    yield


def collect(sb, token: str, monkeypatch, **source) -> tuple:
    monkeypatch.setenv("NHISCAN_TEST_GITLAB_TOKEN", token)
    cfg = {"base_url": sb.url("gitlab"), "token_env": "NHISCAN_TEST_GITLAB_TOKEN", "per_page": 100,
           "instance_admin": True, "max_retries": 3, **source}
    config = parse_config({"sources": {"gitlab": [cfg]}})
    result = glc.collect(config.sources.gitlab[0], config, hmac_key=HMAC_KEY)
    return result, {c.inventory: c for c in result.coverage}, {r.key: r for r in result.records}


def gitlab_log(sb) -> list[dict]:
    return [e for e in sb.request_log if e["vendor"] == "gitlab"]


def uid(sb, username: str) -> int:
    return next(p.id for p in sb.apps["gitlab"].state._token_holders() if p.username == username)


# --- the emulator on the wire -------------------------------------------------------------------------


def api(sb, path: str, token: str | None = ADMIN, **params):
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return requests.get(f"{sb.root_url('gitlab')}/api/v4{path}", headers=headers, params=params, timeout=5)


def test_offset_pagination_headers_and_links_follow_the_request_host(sb):
    r = api(sb, "/users", per_page=3, page=2, order_by="id", sort="asc")
    assert r.status_code == 200 and len(r.json()) == 3
    total = int(r.headers["X-Total"])
    assert total == 14 and r.headers["X-Total-Pages"] == "5" and r.headers["X-Page"] == "2"
    assert r.headers["X-Per-Page"] == "3" and r.headers["X-Next-Page"] == "3" and r.headers["X-Prev-Page"] == "1"
    assert f'<{sb.root_url("gitlab")}/api/v4/users?order_by=id&sort=asc&page=3&per_page=3>; rel="next"' in r.headers["Link"]
    last = api(sb, "/users", per_page=500, page=1)
    assert last.headers["X-Per-Page"] == "100" and last.headers["X-Next-Page"] == ""


def test_auth_errors_look_like_gitlabs(sb):
    assert api(sb, "/user", token=None).json() == {"message": "401 Unauthorized"}
    assert api(sb, "/user", token="glpat-nope").status_code == 401
    r = api(sb, "/user", token=NOSCOPE)
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    assert api(sb, "/nothing/here").json() == {"error": "404 Not Found"}


def test_admin_only_endpoints_refuse_non_admins_and_the_token_list_shows_only_ones_own(sb):
    for path in ("/deploy_tokens", "/deploy_keys", "/admin/ci/variables", "/runners/all", "/service_accounts",
                 f"/users/{uid(sb, 'bob')}/impersonation_tokens"):
        r = api(sb, path, token=MEMBER)
        assert (r.status_code, r.json()) == (403, {"message": "403 Forbidden"}), path
    mine = api(sb, "/personal_access_tokens", token=MEMBER).json()
    assert [t["name"] for t in mine] == ["bob-laptop"], "not even their own impersonation token"
    assert api(sb, "/personal_access_tokens", token=MEMBER, user_id=uid(sb, "root")).status_code == 401
    everything = api(sb, "/personal_access_tokens", per_page=100).json()
    assert {"bob-laptop", "carol-old", "ci-sa-token", "group-sa-token", "api-maintainer", "acme-group-token",
            "support-session"} <= {t["name"] for t in everything}, "administrators see impersonation tokens here too"
    # What a non-admin may see of a user: no email, no admin flag.
    assert set(api(sb, "/users", token=MEMBER).json()[0]) == {"id", "username", "name", "state", "locked", "avatar_url", "web_url"}


def test_hidden_variable_values_never_leave_the_emulator(sb):
    items = api(sb, "/projects/acme%2Fapi/variables").json()
    hidden = next(v for v in items if v["key"] == "HIDDEN_ONE")
    assert hidden["value"] is None and hidden["hidden"] is True and hidden["masked"] is True
    assert next(v for v in items if v["key"] == "PROJECT_SECRET")["value"] == PROJECT_VAR
    assert "environment_scope" not in api(sb, "/admin/ci/variables").json()[0]


def test_control_plane_and_mutation_api(sb):
    api(sb, "/user")
    log = requests.get(f"{sb.root_url('gitlab')}/_emu/requests", timeout=5).json()
    assert log[-1]["path"] == "/user" and log[-1]["token"] == ADMIN[-4:] and log[-1]["user"] == "root"
    assert ADMIN not in json.dumps(log)
    with sb.apps["gitlab"].mutate() as state:
        state.revoke_personal_access_token("bob", "bob-laptop")
        state.remove_deploy_token("acme/api", "api-deploy")
    assert next(t for t in api(sb, "/personal_access_tokens").json() if t["name"] == "bob-laptop")["revoked"] is True
    assert requests.post(f"{sb.root_url('gitlab')}/_emu/reset", timeout=5).json() == {"ok": True}
    assert next(t for t in api(sb, "/personal_access_tokens").json() if t["name"] == "bob-laptop")["revoked"] is False
    assert [d["name"] for d in api(sb, "/projects/acme%2Fapi/deploy_tokens").json()] == ["api-deploy"]


@pytest.mark.parametrize("patch,message", [
    ({"usres": []}, "gitlab.usres: unknown key; did you mean 'users'?"),
    ({"users": [{"username": "x", "personal_access_tokens": [{"name": "t", "scopes": ["read_apii"]}]}]},
     "gitlab.users[0].personal_access_tokens[0].scopes[0]: unknown token scope 'read_apii'; did you mean 'read_api'?"),
    ({"groups": [{"full_path": "acme", "members": {"ghost": "owner"}}]}, "gitlab.groups[0].members.ghost: no user or service account 'ghost'"),
    ({"groups": [{"full_path": "acme", "members": {}}], "projects": [{"path_with_namespace": "nope/api"}]},
     "gitlab.projects[0].path_with_namespace: namespace 'nope' is neither a group nor a user"),
    ({"groups": [{"full_path": "a/b"}]}, "gitlab.groups[0].full_path: parent group 'a' is not in gitlab.groups"),
    ({"users": [{"username": "x", "id": 5}, {"username": "y", "id": 5}]}, "gitlab.users[1].id: duplicate user id 5"),
    ({"variables": [{"key": "K", "hidden": True}]}, "gitlab.variables[0].hidden: a hidden variable must also be masked"),
    ({"tokens": [{"token": "t", "user": "x", "faults": [{"path": "/api/v4/users", "fault": "forbidden"}]}],
      "users": [{"username": "x"}]}, "gitlab.tokens[0].faults[0].path: leave out the /api/v4 prefix"),
    ({"users": [{"username": "x", "is_admin": "yes"}]}, "gitlab.users[0].is_admin: expected true/false, got 'yes'"),
])
def test_estate_errors_name_the_yaml_path(patch, message):
    with pytest.raises(EstateError) as exc:
        load_estate({"now": "2026-11-01T00:00:00Z", "gitlab": patch})
    assert message in str(exc.value)


# --- the collector through python-gitlab --------------------------------------------------------------


def test_admin_token_reads_every_inventory(sb, monkeypatch):
    result, cov, recs = collect(sb, ADMIN, monkeypatch, per_page=2)  # every listing spans pages
    assert all(c.ok for c in result.coverage), [c for c in result.coverage if not c.ok]
    expected_inventories = {f"gitlab:instance:{s}" for s in (*glc.ADMIN_INVENTORIES, "groups")}
    expected_inventories |= {f"gitlab:acme:{s}" for s in glc.GROUP_INVENTORIES}
    expected_inventories |= {f"gitlab:acme/platform:{s}" for s in ("access_tokens", "deploy_tokens", "variables", "runners")}
    expected_inventories |= {f"gitlab:{p}:{s}" for p in ("acme/api", "acme/platform/infra") for s in glc.PROJECT_INVENTORIES}
    assert set(cov) == expected_inventories
    assert not result.warnings
    assert result.complete_scopes == ["gitlab:acme/"]
    assert all(r.inventory in cov for r in result.records), "every record names the inventory that produced it"

    bob = recs[f"gitlab:user:{uid(sb, 'bob')}"]
    assert bob.is_human and bob.email == "bob@acme.example" and bob.inventory == "gitlab:instance:users"
    carol = recs[f"gitlab:user:{uid(sb, 'carol')}"]
    assert carol.status == Status.SUSPENDED
    laptop = next(r for r in recs.values() if r.name == "bob-laptop")
    assert laptop.privilege == Privilege.WRITE and laptop.owners[0].ref == bob.key
    assert next(r for r in recs.values() if r.name == "carol-old").status == Status.SUSPENDED
    session = next(r for r in recs.values() if r.name == "support-session")
    assert session.attributes["impersonation"] is True and session.inventory == "gitlab:instance:impersonation_tokens"

    # The project token's copy from its project wins over the admin token list's (it knows the role).
    api_token = next(r for r in recs.values() if r.name == "api-maintainer" and isinstance(r, Credential))
    assert api_token.inventory == "gitlab:acme/api:access_tokens" and api_token.privilege == Privilege.ADMIN
    bot = recs[api_token.account_key]
    assert bot.account_type == "bot" and bot.inventory == "gitlab:instance:users", "GET /users' fuller copy of the bot is kept"
    assert bot.owners[0].ref == bob.key and "created_by" in bot.owners[0].evidence
    grant = recs[f"gitlab:grant:{api_token.key}->gitlab:project:acme/api"]
    assert isinstance(grant, Grant) and grant.privilege == Privilege.ADMIN

    sa = recs[f"gitlab:user:{uid(sb, 'service_account_ci')}"]
    assert sa.account_type == "service_account" and not sa.is_human
    group_sa_token = next(r for r in recs.values() if r.name == "group-sa-token")
    assert group_sa_token.account_key == f"gitlab:user:{uid(sb, 'service_account_group_acme')}"

    deploy_token = next(r for r in recs.values() if r.name == "api-deploy")
    assert deploy_token.inventory == "gitlab:acme/api:deploy_tokens" and deploy_token.privilege == Privilege.WRITE
    assert deploy_token.usage_tracked is False
    key = next(r for r in recs.values() if r.name == "api-push")
    assert key.privilege == Privilege.WRITE and key.owners[0].ref == bob.key
    assert recs[f"gitlab:grant:{key.key}->gitlab:project:acme/platform/infra"].privilege == Privilege.READ

    variable = recs["gitlab:ci_variable:acme/GROUP_SECRET@*"]
    assert variable.value_hmac == keyed_hash(HMAC_KEY, GROUP_VAR) and variable.attributes["masked"] is True
    assert recs["gitlab:ci_variable:acme/api/HIDDEN_ONE@*"].value_hmac is None

    runner = next(r for r in recs.values() if isinstance(r, Account) and r.name == "api-runner")
    assert runner.status == Status.SUSPENDED and runner.account_type == "runner"
    assert f"gitlab:grant:{runner.key}->gitlab:project:acme/platform/infra" in recs
    shared = next(r for r in recs.values() if isinstance(r, Account) and r.name == "shared-runner")
    assert shared.last_active_at == datetime(2026, 9, 22, tzinfo=timezone.utc)


def test_pages_are_followed_to_the_end(sb, monkeypatch):
    _, cov, recs = collect(sb, ADMIN, monkeypatch, per_page=2)
    people = [r for r in recs.values() if isinstance(r, Account) and r.inventory == "gitlab:instance:users"]
    assert len(people) == cov["gitlab:instance:users"].count == 14  # 10 people, 2 service accounts, 2 token bots
    pages = [e["path"] for e in gitlab_log(sb) if e["path"].startswith("/users?")]
    assert len(pages) == 7 and any("page=7" in p for p in pages), pages
    assert all("per_page=2" in p for p in pages)


def test_rate_limits_and_a_transient_500_are_waited_out(sb, monkeypatch):
    result, cov, _ = collect(sb, FLAKY, monkeypatch, per_page=2)
    assert all(c.ok for c in result.coverage), [c for c in result.coverage if not c.ok]
    log = gitlab_log(sb)
    assert [e["status"] for e in log if e["path"].startswith("/deploy_tokens")] == [500, 200]
    pages = [e for e in log if e["path"].startswith("/users?")]
    assert pages[1]["status"] == 429 and (pages[2]["path"], pages[2]["status"]) == (pages[1]["path"], 200), \
        "page 2 was retried, not skipped"
    waited = datetime.fromisoformat(pages[2]["time"].rstrip("Z")) - datetime.fromisoformat(pages[1]["time"].rstrip("Z"))
    assert waited.total_seconds() >= 0.95, "Retry-After: 1 was honoured"
    assert cov["gitlab:instance:users"].count == 14


def test_a_forbidden_inventory_is_a_gap_and_the_rest_is_read(sb, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    result, cov, recs = collect(sb, BROKEN, monkeypatch)
    gap = cov["gitlab:acme:variables"]
    assert not gap.ok and gap.reason == "HTTP 403: forbidden; needs the Owner role in group acme"
    assert not cov["gitlab:acme/platform:variables"].ok
    assert cov["gitlab:instance:variables"].reason == "HTTP 500: server error, still failing after retries"
    assert cov["gitlab:acme/api:deploy_keys"].reason == "malformed response: the body is not valid JSON"
    read = [c for c in result.coverage if c.ok]
    assert len(read) == len(result.coverage) - 5
    assert cov["gitlab:acme/api:variables"].ok and "gitlab:ci_variable:acme/api/PROJECT_SECRET@*" in recs
    # The malformed user is skipped, logged with source and inventory; the rest of the listing is kept.
    assert cov["gitlab:instance:users"].ok and cov["gitlab:instance:users"].count == 13
    (warning,) = result.warnings
    assert warning.startswith("gitlab gitlab:instance:users: skipped malformed item: user #0 (id='not-a-number')")
    assert "id is a str, not an integer" in warning
    assert any("gitlab:instance:users: skipped malformed item" in r.getMessage() for r in caplog.records)


def test_member_token_reads_what_its_role_allows(sb, monkeypatch):
    result, cov, recs = collect(sb, MEMBER, monkeypatch)
    for short in glc.ADMIN_INVENTORIES:
        c = cov[f"gitlab:instance:{short}"]
        assert not c.ok and c.reason == "the token's user bob is not an instance administrator; needs an instance administrator token"
    assert not [e for e in gitlab_log(sb) if e["path"].startswith(("/personal_access_tokens", "/users"))], \
        "a non-admin's token list would look complete: it must not be read at all"
    assert cov["gitlab:acme:access_tokens"].reason == \
        "HTTP 403: forbidden; needs the Owner role in group acme (or an instance administrator token)"
    assert not cov["gitlab:acme:variables"].ok and not cov["gitlab:acme:service_accounts"].ok
    assert cov["gitlab:acme:deploy_tokens"].ok and cov["gitlab:acme/api:access_tokens"].ok and cov["gitlab:acme/api:variables"].ok
    # Without GET /users, the project token's bot is the stand-in the token listing describes.
    bot = next(r for r in recs.values() if isinstance(r, Account) and r.name == "api-maintainer")
    assert bot.inventory == "gitlab:acme/api:access_tokens" and bot.attributes["bot_kind"] == "project_bot"


def test_instance_admin_false_leaves_the_admin_listings_unread(sb, monkeypatch):
    result, cov, _ = collect(sb, ADMIN, monkeypatch, instance_admin=False)
    for short in glc.ADMIN_INVENTORIES:
        assert "needs an instance administrator token" in cov[f"gitlab:instance:{short}"].reason
    admin_paths = ("/users", "/personal_access_tokens", "/deploy_tokens", "/deploy_keys", "/admin/", "/runners/all", "/service_accounts")
    assert not [e for e in gitlab_log(sb) if e["path"].startswith(admin_paths)]
    assert cov["gitlab:acme:variables"].ok and cov["gitlab:acme/api:deploy_keys"].ok


@pytest.mark.parametrize("token,reason", [
    ("glpat-notAToken000000000000000", "could not authenticate: HTTP 401: credentials rejected (bad, expired or revoked token)"),
    (NOSCOPE, "could not authenticate: HTTP 403: forbidden (insufficient_scope); needs a valid token (read_api scope)"),
])
def test_a_token_that_cannot_authenticate_makes_every_inventory_a_gap(sb, monkeypatch, token, reason):
    result, cov, recs = collect(sb, token, monkeypatch)
    assert not recs and result.coverage and all(not c.ok and c.reason == reason for c in result.coverage)
    assert {"gitlab:instance:users", "gitlab:*:access_tokens", "gitlab:*/*:deploy_keys"} <= set(cov)


def test_a_missing_credential_is_a_gap_naming_the_variable(sb, monkeypatch):
    monkeypatch.delenv("NHISCAN_TEST_GITLAB_MISSING", raising=False)
    config = parse_config({"sources": {"gitlab": [{"base_url": sb.url("gitlab"), "token_env": "NHISCAN_TEST_GITLAB_MISSING",
                                                    "groups": ["acme"]}]}})
    result = glc.collect(config.sources.gitlab[0], config, hmac_key=HMAC_KEY)
    assert result.coverage and all("NHISCAN_TEST_GITLAB_MISSING is not set" in c.reason for c in result.coverage)
    assert "gitlab:acme:variables" in {c.inventory for c in result.coverage}


def test_configured_groups_and_inventories_limit_what_is_read(sb, monkeypatch):
    result, cov, recs = collect(sb, ADMIN, monkeypatch, groups=["acme/platform", "ghost"], inventories=["variables"])
    assert cov["gitlab:instance:variables"].ok and cov["gitlab:acme/platform:variables"].ok
    assert "gitlab:acme:variables" not in cov and "gitlab:acme/api:variables" not in cov
    assert cov["gitlab:ghost:groups"].reason.startswith("group ghost could not be read: HTTP 404: not found (404 Group Not Found)")
    assert not [e for e in gitlab_log(sb) if "access_tokens" in e["path"] or e["path"].startswith("/users")]
    assert result.complete_scopes == [], "only some inventories were read: nothing unreported may be called gone"


def test_a_configured_subgroup_of_a_configured_group_is_read_once(sb, monkeypatch):
    result, cov, _ = collect(sb, ADMIN, monkeypatch, groups=["acme", "acme/platform"], inventories=["variables"])
    names = [c.inventory for c in result.coverage]
    assert names.count("gitlab:acme/platform:variables") == 1 and cov["gitlab:acme:variables"].ok
    assert "gitlab:acme/platform:groups" not in cov


def test_a_timeout_is_a_gap(sb, monkeypatch):
    _, cov, _ = collect(sb, SLOW, monkeypatch, timeout=1, max_retries=0, inventories=["variables"])
    assert cov["gitlab:instance:variables"].reason == "request timed out after 1s (retries exhausted)"
    assert cov["gitlab:acme:variables"].ok


def test_a_change_in_the_tenant_is_seen_by_the_next_read(sb, monkeypatch):
    with sb.apps["gitlab"].mutate() as state:
        state.revoke_personal_access_token("bob", "bob-laptop")
        state.remove_access_token("acme/api", "api-maintainer")
        state.block_user("user01")
    _, _, recs = collect(sb, ADMIN, monkeypatch)
    assert next(r for r in recs.values() if r.name == "bob-laptop").status == Status.REVOKED
    assert not [r for r in recs.values() if r.name == "api-maintainer"]
    assert recs[f"gitlab:user:{uid(sb, 'user01')}"].status == Status.SUSPENDED


def test_planted_values_never_reach_records_reasons_or_logs(sb, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    texts = []
    for token in (ADMIN, BROKEN, MEMBER):
        result, _, _ = collect(sb, token, monkeypatch)
        texts.append(json.dumps([r.to_dict() for r in result.records]))
        texts += [c.reason or "" for c in result.coverage] + result.warnings
    out, err = capfd.readouterr()
    haystack = "\n".join(texts) + caplog.text + out + err
    for value in PLANTED:
        assert value not in haystack, f"{value[:12]}... leaked"
    assert keyed_hash(HMAC_KEY, PROJECT_VAR) in haystack, "the variables were read (kept as keyed hashes)"


# --- the demo: `nhiscan demo` sweeps GitLab too --------------------------------------------------------

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
DEMO_PLANTED = "glpat-DEMOplantedValue00000"


def demo_estate_data() -> dict:
    data = yaml.safe_load(bundled_estate().read_text())
    # GitHub and GitLab (plus the registers): other vendors' sections are their own tests' business.
    return {k: v for k, v in data.items() if k in ("now", "github", "gitlab", "people", "contracts")}


@pytest.fixture(scope="module")
def demo_sandbox():
    private, public = generate_app_key_pair()
    with Sandbox(demo_estate_data(), now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        yield sb, private


@pytest.fixture
def demo(tmp_path, demo_sandbox):
    sb, private = demo_sandbox
    sb.reset()
    config_path = prepare(sb, tmp_path, private, vendors={"gitlab"}, extra="[rules.dormant]\ndays = 90\n")
    return sb, config_path


def test_demo_config_names_a_gitlab_source_and_a_token_file(demo):
    _, config_path = demo
    (source,) = load_config(config_path).sources.gitlab
    assert source.instance_admin and source.token_file == "gitlab-token.txt"
    token_file = config_path.parent / "gitlab-token.txt"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_text() not in config_path.read_text()


def test_demo_sweep_catches_the_gitlab_situations_and_stays_quiet_on_the_rest(demo, caplog, capfd):
    _, config_path = demo
    caplog.set_level(logging.DEBUG)
    outcome = run_sweep(load_config(config_path), now=NOW)
    gitlab_cov = [c for c in outcome.coverage if c.source == "gitlab"]
    assert gitlab_cov and all(c.ok for c in gitlab_cov), [c for c in gitlab_cov if not c.ok]
    found = {(f["rule_id"], f["subject"]["name"]): f for f in outcome.findings if f["subject"]["source"] == "gitlab"}
    expected = {
        ("owner-departed", "eve-automation"), ("dormant", "eve-automation"), ("long-lived-credential", "eve-automation"),
        ("excessive-privilege", "release-automation"),
        ("credential-outlives-contract", "initech-gitlab-sync"),
        ("contract-ended", "globex-deploy-token"),
    }
    assert expected <= set(found), expected - set(found)
    quiet = {"alice-cli", "dave-old-laptop", "support-debug", "web-ci-reader", "Backup automation", "backup-reader",
             "docs-deploy", "registry-pull", "LEGACY_GITLAB_TOKEN", "DB_PASSWORD", "SIGNING_KEY", "API_BASE_URL",
             "NPM_REGISTRY_URL", "DEFAULT_REGION", "shared-runner-01", "acme-runner-01", "infra-runner-01"}
    assert not [k for k in found if k[1] in quiet]
    assert not [k for k in found if k[0] in ("owner-missing", "dormant") and k[1] != "eve-automation"], \
        "bots, service accounts and deploy keys resolve to their creators; none is idle"

    # Evidence: why we believe eve owns the token, and that she left.
    f = found[("owner-departed", "eve-automation")]
    assert f["owners"][0]["email"] == "eve@acme.example" and f["owners"][0]["status"] == "departed"
    assert any("personal token user_id (GitLab API)" in e for e in f["owners"][0]["evidence"])
    assert found[("contract-ended", "globex-deploy-token")]["contracts"][0]["id"] == "C-100"
    assert found[("credential-outlives-contract", "initech-gitlab-sync")]["contracts"][0]["id"] == "C-200"
    assert "maintainer" in found[("excessive-privilege", "release-automation")]["why"] or \
        found[("excessive-privilege", "release-automation")]["subject"]["type"] == "access_token"

    # The planted CI variable was read, and only its keyed hash kept.
    out, err = capfd.readouterr()
    haystacks = {"store": (config_path.parent / "nhiscan.db").read_bytes().decode("latin-1"), "logs": caplog.text + out + err}
    for p in (config_path.parent / "reports").iterdir():
        if p.is_file():
            haystacks[p.name] = p.read_text(errors="replace")
    token = (config_path.parent / "gitlab-token.txt").read_text().strip()
    for where, text in haystacks.items():
        assert DEMO_PLANTED not in text, f"planted value found in {where}"
        assert token not in text, f"the scanner's GitLab token found in {where}"
    assert any(c.inventory == "gitlab:acme/api:variables" and c.ok and c.count >= 4 for c in outcome.coverage)


def test_demo_sweep_resolves_a_revoked_token_and_keeps_the_rest(demo):
    sb, config_path = demo
    run_sweep(load_config(config_path), now=NOW)
    with sb.apps["gitlab"].mutate() as state:
        state.revoke_personal_access_token("eve", "eve-automation")
    outcome = run_sweep(load_config(config_path), now=NOW)
    changes = {(f["rule_id"], f["subject"]["name"]): f["change"] for f in outcome.findings if f["subject"]["source"] == "gitlab"}
    assert {k for k, c in changes.items() if c == "resolved"} == {
        ("owner-departed", "eve-automation"), ("dormant", "eve-automation"), ("long-lived-credential", "eve-automation")}
    assert changes[("excessive-privilege", "release-automation")] == "open"


def test_bundled_demo_estate_has_a_valid_gitlab_section():
    estate = load_estate(demo_estate_data())
    state = estate.vendors["gitlab"]
    assert state.tokens and state.user(state.tokens[0].user).is_admin
    eve = state.user("eve")
    assert eve.state == "active" and eve.personal_access_tokens[0].expires_at is None
