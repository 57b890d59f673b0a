"""Integration tests of the GitHub collector: real PyGithub over real HTTP against the sandbox.

The estate below is this file's own: small, but it touches every inventory, pages every
listing (``per_page=2``) and plants secret values that must never come back out. Faults are
injected per token by the sandbox (see ``sandbox/README.md``). Nothing of ours is mocked.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import Sandbox
from scanner.collectors import github as ghc
from scanner.config import Config, GitHubSource
from scanner.records import Account, CollectResult, Credential, Privilege, Resource, Status, keyed_hash

HMAC_KEY = b"integration-test-hmac-key-32byte"

OWNER = "ghp_ownerTOKENvalue00000000000000000001"
MEMBER = "ghp_memberTOKENvalue0000000000000000002"
RATELIMITED = "ghp_ratelimitedTOKEN000000000000000003"
BROKEN = "ghp_brokenTOKENvalue0000000000000000004"
SLOW = "ghp_slowTOKENvalue000000000000000000005"

# Values that must never leave memory.
ORG_VAR_VALUE = "PLANTED-org-variable-c0ffee-0001"
REPO_VAR_VALUE = "PLANTED-repo-variable-c0ffee-0002"
ENV_VAR_VALUE = "PLANTED-env-variable-c0ffee-0003"
LAST_EIGHT = "Zq8Xw3Pk"
HOOK_PASSWORD = "HOOKPASSWORDplanted"
HOOK_QUERY = "HOOKQUERYplanted"
PLANTED = [ORG_VAR_VALUE, REPO_VAR_VALUE, ENV_VAR_VALUE, LAST_EIGHT, HOOK_PASSWORD, HOOK_QUERY,
           OWNER, MEMBER, RATELIMITED, BROKEN, SLOW]

OWNER_SCOPES = "[read:org, admin:org, repo, admin:org_hook]"
ALL_APP_PERMISSIONS = """
        organization_personal_access_tokens: read
        members: read
        organization_administration: read
        organization_secrets: read
        organization_actions_variables: read
        organization_self_hosted_runners: read
        organization_hooks: read
        administration: read
        secrets: read
        actions_variables: read
        environments: read
        repository_hooks: read
        metadata: read"""

ESTATE = f"""
now: 2026-11-01T00:00:00Z
github:
  tokens:
    - {{token: {OWNER}, login: olivia, scopes: {OWNER_SCOPES}}}
    - {{token: {MEMBER}, login: bob, scopes: [read:org]}}
    - token: {RATELIMITED}
      login: olivia
      scopes: {OWNER_SCOPES}
      faults:
        - {{path: /orgs/acme/hooks, fault: rate_limit, times: 1, retry_after: 1}}
        - {{path: /orgs/acme/actions/runners, fault: too_many_requests, times: 1, retry_after: 1}}
        - {{path: /orgs/acme/installations, fault: server_error, times: 1}}
        - {{path: /orgs/acme/actions/secrets, fault: primary_rate_limit, times: 1, retry_after: 1}}
    - token: {BROKEN}
      login: olivia
      scopes: {OWNER_SCOPES}
      faults:
        - {{path: /orgs/acme/installations, fault: server_error}}
        - {{path: /repos/acme/api/keys, fault: malformed_json}}
    - token: {SLOW}
      login: olivia
      scopes: {OWNER_SCOPES}
      faults:
        - {{path: /orgs/acme/actions/variables, fault: timeout, seconds: 3}}
  apps:
    - id: 4242
      slug: nhiscan-test
      installations: {{acme: 90001, umbrella: 90002}}
      permissions: {ALL_APP_PERMISSIONS}
    - id: 4343
      slug: narrow-app
      installations: {{acme: 90003}}
      permissions: {{metadata: read, members: read}}
  orgs:
    - login: acme
      saml: true
      members:
        - {{login: olivia, name: Olivia Owner, email: olivia@acme.example, role: admin}}
        - {{login: bob, role: member, two_factor: false}}
        - {{login: ci-bot, type: Bot, role: member}}
        - {{login: svc-deploy, role: member}}
        - {{login: carol, role: member}}
        - {{login: dave, role: member}}
        - {{login: erin, role: admin}}
      outside_collaborators:
        - login: globex-dev
          email: dev@globex.example
          two_factor: false
          repos: {{api: push, www: pull}}
      repos:
        - name: api
          private: true
          deploy_keys:
            - {{id: 101, title: ci-deploy, read_only: false, added_by: olivia, created_at: -400d, last_used: -10d}}
            - {{id: 102, title: old-mirror, created_at: -800d, enabled: false}}
            - {{id: 103, title: docs-sync, added_by: erin, created_at: -20d}}
          hooks:
            - url: "https://ci:{HOOK_PASSWORD}@ci.globex.example/hook?token={HOOK_QUERY}"
              secret: true
              events: [push, pull_request]
          secrets: [{{name: DEPLOY_TOKEN, created_at: -500d}}]
          variables: [{{name: API_URL, value: "{REPO_VAR_VALUE}"}}]
          environments:
            - name: production
              secrets: [{{name: PROD_DB_PASSWORD}}]
              variables: [{{name: REGION, value: "{ENV_VAR_VALUE}"}}]
          runners: [{{name: build-01, labels: [self-hosted, linux, gpu]}}]
        - {{name: www, private: false}}
        - {{name: tools, private: true}}
      hooks:
        - {{url: "https://hooks.slack.example/services/T000", events: ["*"], insecure_ssl: "1"}}
      installations:
        - id: 70001
          app_id: 3001
          app_slug: globex-ci
          permissions: {{contents: write, administration: write, metadata: read}}
          repository_selection: selected
          repositories: [api]
          suspended_at: -5d
      pat_grants:
        - id: 25381
          owner: erin
          token_id: 8001
          token_name: release-bot
          repository_selection: subset
          repositories: [api, tools]
          permissions: {{organization: {{members: read}}, repository: {{contents: write}}}}
          access_granted_at: -120d
          token_last_used_at: -1d
        - {{id: 25382, owner: bob, token_id: 8002, token_name: expired-experiment, repository_selection: all,
            access_granted_at: -60d, token_expires_at: -30d}}
        - {{id: 25383, owner: carol, token_id: 8003, token_name: reader, repository_selection: all,
            access_granted_at: -10d}}
      credential_authorizations:
        - login: olivia
          credential_id: 161195
          credential_type: personal access token
          token_last_eight: {LAST_EIGHT}
          scopes: [repo, admin:org]
          credential_authorized_at: -600d
          credential_accessed_at: -400d
        - {{login: ci-bot, credential_id: 161196, credential_type: SSH key, fingerprint: "SHA256:abc123"}}
      secrets:
        - {{name: NPM_TOKEN, visibility: all}}
        - {{name: SONAR_TOKEN, visibility: selected, selected_repositories: [api, www, tools]}}
        - {{name: PRIVATE_ONLY, visibility: private}}
      variables:
        - {{name: ORG_VAR, value: "{ORG_VAR_VALUE}", visibility: selected, selected_repositories: [api]}}
      runners:
        - {{name: org-runner-1, status: offline, ephemeral: true}}
    - login: umbrella
      saml: false
      members:
        - {{login: olivia, role: admin}}
      repos:
        - {{name: tools, private: true}}
people: []
contracts: []
"""

ORGS = ("acme", "umbrella")
ACME_REPOS = ("api", "www", "tools")


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def running(tmp_path_factory, app_key):
    path = tmp_path_factory.mktemp("estate") / "estate.yaml"
    path.write_text(ESTATE)
    with Sandbox(path, app_keys={4242: app_key[1], 4343: app_key[1]}) as sb:
        yield sb


@pytest.fixture
def sb(running):
    running.reset()  # fresh fault counters, rate windows and request log for every test
    return running


@pytest.fixture
def creds(monkeypatch, app_key):
    """Credentials the collector reads from the environment, as in production."""
    monkeypatch.setenv("NHISCAN_TEST_OWNER", OWNER)
    monkeypatch.setenv("NHISCAN_TEST_MEMBER", MEMBER)
    monkeypatch.setenv("NHISCAN_TEST_RATELIMITED", RATELIMITED)
    monkeypatch.setenv("NHISCAN_TEST_BROKEN", BROKEN)
    monkeypatch.setenv("NHISCAN_TEST_SLOW", SLOW)
    monkeypatch.setenv("NHISCAN_TEST_BAD", "ghp_notAtokenTheSandboxKnows000000000009")
    monkeypatch.setenv("NHISCAN_TEST_APP_KEY", app_key[0])
    return app_key


def source(sb: Sandbox, **kw) -> GitHubSource:
    base = {"name": "gh", "base_url": sb.github_url, "orgs": list(ORGS), "per_page": 2, "max_retries": 1}
    return GitHubSource(**{**base, **kw})


def run(src: GitHubSource, progress=None) -> CollectResult:
    return ghc.collect(src, Config(), hmac_key=HMAC_KEY, progress=progress)


def coverage(result: CollectResult) -> dict[str, object]:
    names = [c.inventory for c in result.coverage]
    assert len(names) == len(set(names)), "an inventory was reported twice"
    return {c.inventory: c for c in result.coverage}


def records(result: CollectResult) -> dict[str, object]:
    keys = [r.key for r in result.records]
    assert len(keys) == len(set(keys)), "duplicate record keys"
    return {r.key: r for r in result.records}


def expected_inventories(orgs=ORGS) -> set[str]:
    repos = {"acme": ACME_REPOS, "umbrella": ("tools",)}
    names = {f"gh:{org}:{s}" for org in orgs for s in ghc.ORG_INVENTORIES}
    names |= {f"gh:{org}/{r}:{s}" for org in orgs for r in repos[org] for s in ghc.REPO_INVENTORIES}
    return names


def assert_records_belong_to_ok_inventories(result: CollectResult) -> None:
    ok = {c.inventory for c in result.coverage if c.ok}
    for rec in result.records:
        assert rec.inventory in ok, (rec.key, rec.inventory)
        assert rec.source == "gh"


SAML_GAP = f"{ghc.SAML_NOT_ENABLED} (HTTP 404)"


# --- every inventory, through each kind of auth -------------------------------------------------


def test_token_reads_every_inventory(sb, creds):
    messages: list[str] = []
    result = run(source(sb, token_env="NHISCAN_TEST_OWNER"), progress=messages.append)
    cov = coverage(result)
    assert set(cov) == expected_inventories()
    gaps = {name: c.reason for name, c in cov.items() if not c.ok}
    assert gaps == {
        "gh:acme:pat_grants": ghc.PAT_GRANTS_NEED_APP,
        "gh:umbrella:pat_grants": ghc.PAT_GRANTS_NEED_APP,
        "gh:umbrella:credential_authorizations": SAML_GAP,
    }
    assert len(messages) == len(cov)  # progress: one message as each inventory finishes
    assert sorted(result.complete_scopes) == ["gh:acme/", "gh:umbrella/"]
    assert not result.warnings
    assert_records_belong_to_ok_inventories(result)
    recs = records(result)

    # members: every page read, owners vs members, bots, 2FA, emails from /users/{login}
    members = [r for r in result.records if isinstance(r, Account) and r.inventory == "gh:acme:members"]
    assert len(members) == 7
    olivia = recs["gh:user:olivia"]
    assert olivia.privilege == Privilege.OWNER and olivia.role == "admin" and olivia.email == "olivia@acme.example"
    assert olivia.mfa_enabled is True
    assert recs["gh:grant:gh:user:olivia->gh:org:acme"].privilege == Privilege.OWNER
    assert recs["gh:grant:gh:user:olivia->gh:org:umbrella"].privilege == Privilege.OWNER
    assert recs["gh:user:bob"].mfa_enabled is False and recs["gh:user:bob"].privilege == Privilege.READ
    assert recs["gh:user:ci-bot"].account_type == "bot" and not recs["gh:user:ci-bot"].is_human
    assert recs["gh:user:svc-deploy"].account_type == "bot"  # machine-user pattern svc-*
    assert recs["gh:user:erin"].privilege == Privilege.OWNER

    # outside collaborators and their per-repo grants
    globex = recs["gh:user:globex-dev"]
    assert globex.third_party and globex.role == "outside_collaborator" and globex.email == "dev@globex.example"
    assert recs["gh:grant:gh:user:globex-dev->gh:repo:acme/api"].privilege == Privilege.WRITE
    assert recs["gh:grant:gh:user:globex-dev->gh:repo:acme/www"].privilege == Privilege.READ

    # resources
    assert isinstance(recs["gh:org:acme"], Resource)
    assert recs["gh:repo:acme/api"].parent_key == "gh:org:acme" and recs["gh:repo:acme/api"].visibility == "private"
    assert recs["gh:environment:acme/api/production"].parent_key == "gh:repo:acme/api"

    # deploy keys
    ci = recs["gh:deploy_key:acme/api/101"]
    assert isinstance(ci, Credential) and ci.privilege == Privilege.WRITE and ci.created_by == "gh:user:olivia"
    assert ci.owners[0].evidence == "deploy key added_by (GitHub API)" and ci.last_used_at is not None
    assert ci.attributes["fingerprint"].startswith("SHA256:")
    assert recs["gh:deploy_key:acme/api/102"].status == Status.SUSPENDED
    assert recs["gh:deploy_key:acme/api/102"].privilege == Privilege.READ
    assert recs["gh:grant:gh:deploy_key:acme/api/101->gh:repo:acme/api"].privilege == Privilege.WRITE

    # webhooks: host only
    repo_hooks = [r for r in result.records if isinstance(r, Credential) and r.inventory == "gh:acme/api:hooks"]
    (hook,) = repo_hooks
    assert hook.attributes["url_host"] == "ci.globex.example" and hook.attributes["has_secret"] is True
    org_hooks = [r for r in result.records if isinstance(r, Credential) and r.inventory == "gh:acme:hooks"]
    assert org_hooks[0].attributes["insecure_ssl"] is True

    # app installations
    globex_ci = recs["gh:installation:acme/70001"]
    assert globex_ci.account_type == "app_installation" and globex_ci.privilege == Privilege.ADMIN
    assert globex_ci.status == Status.SUSPENDED and globex_ci.attributes["repository_selection"] == "selected"

    # SAML credential authorizations
    cred_auth = recs["gh:credential_authorization:acme/161195"]
    assert cred_auth.credential_type == "classic_pat" and cred_auth.privilege == Privilege.ADMIN
    assert cred_auth.attributes["last_eight_hmac"] == keyed_hash(HMAC_KEY, LAST_EIGHT)
    assert recs["gh:credential_authorization:acme/161196"].credential_type == "ssh_key"

    # Actions secrets and variables at every level, selected repositories paged
    assert recs["gh:actions_secret:acme/NPM_TOKEN"].attributes["visibility"] == "all"
    assert "gh:grant:gh:actions_secret:acme/NPM_TOKEN->gh:org:acme" in recs
    assert "gh:grant:gh:actions_secret:acme/PRIVATE_ONLY->gh:org:acme" in recs
    for repo in ACME_REPOS:
        assert f"gh:grant:gh:actions_secret:acme/SONAR_TOKEN->gh:repo:acme/{repo}" in recs
    assert "gh:actions_secret:acme/api/DEPLOY_TOKEN" in recs
    assert recs["gh:actions_secret:acme/api/production/PROD_DB_PASSWORD"].inventory == "gh:acme/api:environments"
    for key, value in (("gh:actions_variable:acme/ORG_VAR", ORG_VAR_VALUE),
                       ("gh:actions_variable:acme/api/API_URL", REPO_VAR_VALUE),
                       ("gh:actions_variable:acme/api/production/REGION", ENV_VAR_VALUE)):
        assert recs[key].value_hmac == keyed_hash(HMAC_KEY, value)
    assert "gh:grant:gh:actions_variable:acme/ORG_VAR->gh:repo:acme/api" in recs

    # runners
    assert recs["gh:runner:acme/api/" + str(recs_by_name(result, "build-01").attributes["id"])].status == Status.ACTIVE
    org_runner = recs_by_name(result, "org-runner-1")
    assert org_runner.key.startswith("gh:runner:acme/") and org_runner.status == Status.SUSPENDED

    # pagination really happened
    paths = [e["path"] for e in sb.request_log]
    assert any("/orgs/acme/members" in p and "page=2" in p for p in paths)
    assert any("/orgs/acme/actions/secrets/SONAR_TOKEN/repositories" in p and "page=2" in p for p in paths)


def recs_by_name(result: CollectResult, name: str):
    (rec,) = [r for r in result.records if r.name == name]
    return rec


def test_app_installation_reads_every_inventory(sb, creds):
    result = run(source(sb, app_id=4242, app_private_key_env="NHISCAN_TEST_APP_KEY"))
    cov = coverage(result)
    assert set(cov) == expected_inventories()
    gaps = {name: c.reason for name, c in cov.items() if not c.ok}
    assert gaps == {"gh:umbrella:credential_authorizations": SAML_GAP}
    assert_records_belong_to_ok_inventories(result)
    recs = records(result)

    subset = recs["gh:fine_grained_pat:acme/8001"]
    assert subset.credential_type == "fine_grained_pat" and subset.account_key == "gh:user:erin"
    assert subset.owners[0].evidence == "fine-grained PAT owner (GitHub API)" and subset.privilege == Privilege.WRITE
    assert "repository:contents:write" in subset.scopes
    for repo in ("api", "tools"):  # two granted repositories, paged at per_page=2... and read
        assert recs[f"gh:grant:gh:fine_grained_pat:acme/8001->gh:repo:acme/{repo}"].privilege == Privilege.WRITE
    assert recs["gh:fine_grained_pat:acme/8002"].status == Status.EXPIRED
    assert "gh:grant:gh:fine_grained_pat:acme/8003->gh:org:acme" in recs
    assert cov["gh:acme:pat_grants"].count == sum(1 for r in result.records if r.inventory == "gh:acme:pat_grants")
    assert cov["gh:umbrella:pat_grants"].ok and cov["gh:umbrella:pat_grants"].count == 0

    # The App found its installations itself (no installation_ids configured).
    log = sb.github.request_log
    assert any(e["path"].endswith("/orgs/acme/installation") and e["auth"] == "jwt" for e in log)
    assert all(e["auth"] in ("jwt", "installation") for e in log)


def test_token_plus_app_uses_the_app_only_for_pat_grants(sb, creds):
    src = source(sb, token_env="NHISCAN_TEST_OWNER", app_id=4242, app_private_key_env="NHISCAN_TEST_APP_KEY",
                 installation_ids={"acme": 90001, "umbrella": 90002})
    result = run(src)
    cov = coverage(result)
    assert {n for n, c in cov.items() if not c.ok} == {"gh:umbrella:credential_authorizations"}
    assert "gh:fine_grained_pat:acme/8001" in records(result)
    log = sb.github.request_log
    pat_calls = [e for e in log if "/personal-access-tokens" in e["path"]]
    assert pat_calls and all(e["auth"] == "installation" for e in pat_calls)
    other = [e for e in log if e["auth"] == "installation" and "/personal-access-tokens" not in e["path"]]
    assert other == []
    # installation_ids were given: no lookup by JWT
    assert not any(e["path"].endswith("/installation") for e in log)


# --- gaps -----------------------------------------------------------------------------------


def test_inventories_the_credential_cannot_see_are_gaps_with_reasons(sb, creds):
    result = run(source(sb, token_env="NHISCAN_TEST_MEMBER", orgs=["acme"]))
    cov = coverage(result)
    # A plain member: members are read (without 2FA status), owner-only inventories are gaps.
    assert cov["gh:acme:members"].ok and cov["gh:acme:repos"].ok and cov["gh:acme:outside_collaborators"].ok
    members = [r for r in result.records if isinstance(r, Account) and r.inventory == "gh:acme:members"]
    assert len(members) == 7 and all(m.mfa_enabled is None for m in members)
    for short, status in (("hooks", "HTTP 404"), ("installations", "HTTP 403"), ("actions_secrets", "HTTP 403"),
                          ("actions_variables", "HTTP 403"), ("runners", "HTTP 403"),
                          ("credential_authorizations", "HTTP 403")):
        c = cov[f"gh:acme:{short}"]
        assert not c.ok and c.count == 0 and c.reason.startswith(status), (short, c.reason)
        assert "organization owner" in c.reason
    assert cov["gh:acme:pat_grants"].reason == ghc.PAT_GRANTS_NEED_APP
    # The member's token sees only the public repository; its admin-only listings are gaps too.
    assert cov["gh:acme/www:deploy_keys"].reason.startswith("HTTP 404")
    assert "repository admin" in cov["gh:acme/www:deploy_keys"].reason
    assert not any(name.startswith("gh:acme/api:") for name in cov)
    assert_records_belong_to_ok_inventories(result)


def test_app_without_a_permission_gets_gaps_naming_it(sb, creds):
    result = run(source(sb, app_id=4343, app_private_key_env="NHISCAN_TEST_APP_KEY", orgs=["acme"]))
    cov = coverage(result)
    assert cov["gh:acme:members"].ok
    pat = cov["gh:acme:pat_grants"]
    assert not pat.ok and pat.reason.startswith("HTTP 403") and "Personal access tokens" in pat.reason
    assert not cov["gh:acme:hooks"].ok


def test_app_not_installed_on_an_org(sb, creds):
    result = run(source(sb, app_id=4343, app_private_key_env="NHISCAN_TEST_APP_KEY", orgs=["umbrella"]))
    cov = coverage(result)
    assert set(cov) == {f"gh:umbrella:{s}" for s in ghc.ORG_INVENTORIES}
    for c in cov.values():
        assert not c.ok and "installation on umbrella not usable" in c.reason and "HTTP 404" in c.reason


def test_bad_credentials_make_every_inventory_a_gap(sb, creds):
    result = run(source(sb, token_env="NHISCAN_TEST_BAD"))
    cov = coverage(result)
    assert set(cov) == {f"gh:{org}:{s}" for org in ORGS for s in ghc.ORG_INVENTORIES}
    assert result.records == []
    for name, c in cov.items():
        assert not c.ok
        if name.endswith(":pat_grants"):
            assert c.reason == ghc.PAT_GRANTS_NEED_APP
        else:
            assert "HTTP 401" in c.reason and "credentials rejected" in c.reason


def test_missing_credential_is_a_gap_naming_the_variable(sb, creds, monkeypatch):
    monkeypatch.delenv("NHISCAN_TEST_OWNER")
    result = run(source(sb, token_env="NHISCAN_TEST_OWNER", orgs=["acme"]))
    assert result.records == []
    for c in result.coverage:
        assert not c.ok and "NHISCAN_TEST_OWNER" in c.reason


# --- faults ---------------------------------------------------------------------------------


def test_rate_limits_and_a_transient_500_are_waited_out(sb, creds):
    started = time.monotonic()
    result = run(source(sb, token_env="NHISCAN_TEST_RATELIMITED", orgs=["acme"], max_retries=3))
    elapsed = time.monotonic() - started
    cov = coverage(result)
    for short in ("hooks", "runners", "installations", "actions_secrets"):
        assert cov[f"gh:acme:{short}"].ok and cov[f"gh:acme:{short}"].count > 0, short
    log = sb.github.request_log
    faulted = {e["fault"] for e in log if e["fault"]}
    assert faulted == {"rate_limit", "too_many_requests", "server_error", "primary_rate_limit"}
    secrets = [e["status"] for e in log if e["path"].startswith("/orgs/acme/actions/secrets?")]
    assert secrets[:2] == [403, 200]  # waited for X-RateLimit-Reset, then read
    hooks = [e["status"] for e in log if e["path"].startswith("/orgs/acme/hooks")]
    assert hooks[:2] == [403, 200]
    runners = [e["status"] for e in log if e["path"].startswith("/orgs/acme/actions/runners")]
    assert runners[:2] == [429, 200]
    assert elapsed >= 2  # Retry-After and X-RateLimit-Reset honoured (a lower bound, not a speed check)


def test_persistent_500_malformed_json_and_timeout_are_gaps(sb, creds):
    result = run(source(sb, token_env="NHISCAN_TEST_BROKEN", orgs=["acme"]))
    cov = coverage(result)
    inst = cov["gh:acme:installations"]
    assert not inst.ok and inst.reason == "HTTP 500: errors persisted after all retries"
    keys = cov["gh:acme/api:deploy_keys"]
    assert not keys.ok and keys.reason.startswith("malformed response")
    ok = {n for n, c in cov.items() if c.ok}
    assert ok == {n for n in expected_inventories(["acme"])} - {
        "gh:acme:installations", "gh:acme/api:deploy_keys", "gh:acme:pat_grants"}
    assert not any(r.inventory in ("gh:acme:installations", "gh:acme/api:deploy_keys") for r in result.records)

    slow = run(source(sb, token_env="NHISCAN_TEST_SLOW", orgs=["acme"], timeout=1,
                      inventories=["actions_variables", "actions_secrets"]))
    cov = coverage(slow)
    assert cov["gh:acme:actions_variables"].reason == "request timed out after 1s (retries exhausted)"
    assert cov["gh:acme:actions_secrets"].ok


def test_malformed_items_are_skipped_and_the_listing_kept(sb, creds, caplog):
    with sb.github.mutate() as state:
        state.org("acme").repo("api").deploy_keys[1].id = None
        state.org("acme").runners[0].id = "r-1"  # type: ignore[assignment]
    caplog.set_level(logging.WARNING, logger="nhiscan.collectors.github")
    result = run(source(sb, token_env="NHISCAN_TEST_OWNER", orgs=["acme"], inventories=["deploy_keys", "runners"]))
    cov = coverage(result)
    assert cov["gh:acme/api:deploy_keys"].ok and cov["gh:acme:runners"].ok
    recs = records(result)
    assert "gh:deploy_key:acme/api/101" in recs and "gh:deploy_key:acme/api/103" in recs
    assert not any(r.name == "org-runner-1" for r in result.records)
    assert len(result.warnings) == 2
    assert any("gh:acme/api:deploy_keys" in w and "missing id" in w for w in result.warnings)
    text = caplog.text
    assert "github gh:acme/api:deploy_keys: skipped malformed item" in text
    assert "github gh:acme:runners: skipped malformed item" in text


# --- scope of a sweep -------------------------------------------------------------------------


def test_inventories_setting_limits_what_is_read(sb, creds):
    result = run(source(sb, token_env="NHISCAN_TEST_OWNER", inventories=["deploy_keys"]))
    cov = coverage(result)
    assert set(cov) == ({"gh:acme:repos", "gh:umbrella:repos"}
                        | {f"gh:acme/{r}:deploy_keys" for r in ACME_REPOS} | {"gh:umbrella/tools:deploy_keys"})
    assert all(c.ok for c in cov.values())
    # Other per-repo inventories were not read, so a repo's absence proves nothing about them.
    assert result.complete_scopes == []
    paths = {e["path"].split("?")[0] for e in sb.github.request_log}
    assert not any(p.endswith(("/members", "/hooks", "/actions/secrets")) for p in paths)


# --- invariant 1: no secret value leaves memory ------------------------------------------------


def test_planted_values_never_reach_records_reasons_or_logs(sb, creds, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included...
    caplog.set_level(logging.DEBUG, logger="github")  # ...and PyGithub's, which pins itself at INFO
    results = [
        run(source(sb, token_env="NHISCAN_TEST_OWNER")),
        run(source(sb, token_env="NHISCAN_TEST_OWNER", app_id=4242, app_private_key_env="NHISCAN_TEST_APP_KEY")),
        run(source(sb, token_env="NHISCAN_TEST_BROKEN", orgs=["acme"])),
        run(source(sb, token_env="NHISCAN_TEST_MEMBER", orgs=["acme"])),
    ]
    assert any(r.name == "REGION" for r in results[0].records)
    private_key_line = creds[0].splitlines()[1]
    texts = []
    for result in results:
        for rec in result.records:
            texts.append(repr(rec))
            texts.append(json.dumps(rec.to_dict()))
        texts.extend(c.reason or "" for c in result.coverage)
        texts.extend(result.warnings)
    texts.append(caplog.text)
    texts.extend(repr(r.args) for r in caplog.records)
    blob = "\n".join(texts)
    assert "github.Requester" in caplog.text or any(r.name == "github.Requester" for r in caplog.records)
    for planted in PLANTED + [private_key_line]:
        assert planted not in blob, f"planted value {planted[:6]}... leaked"
    assert "ghs_" not in blob  # installation tokens minted for the App
