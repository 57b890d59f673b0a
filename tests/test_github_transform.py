"""Unit tests of the GitHub collector's pure ``transform_*`` functions.

Payloads are recorded shapes copied from the examples in GitHub's OpenAPI description
(``components/examples``), trimmed, with a few values changed to exercise the edges. One test
also replays the pinned spec's own examples when ``../shared/specs`` is present.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from scanner.collectors import github as gh
from scanner.records import Account, Credential, Grant, Privilege, Resource, Status, keyed_hash

SRC = "github"
ORG = "acme"
KEY = b"k" * 32

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "github-ghec.openapi.json"

# --- recorded shapes (from components/examples) ------------------------------------------------

OCTOCAT = {
    "login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=", "url": "https://api.github.com/users/octocat",
    "html_url": "https://github.com/octocat", "type": "User", "site_admin": False,
}
PUBLIC_USER = {**OCTOCAT, "name": "monalisa octocat", "email": "octocat@github.com", "created_at": "2008-01-14T04:33:35Z"}

# A real ed25519 public key line (public keys are not secret; we still keep only the fingerprint).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
DEPLOY_KEY = {
    "id": 1, "key": ED25519, "url": "https://api.github.com/repos/octocat/Hello-World/keys/1",
    "title": "octocat@octomac", "verified": True, "created_at": "2014-12-10T15:53:42Z", "read_only": True,
    "added_by": "octocat", "last_used": "2022-01-10T15:53:42Z", "enabled": True,
}
REPO_HOOK = {
    "type": "Repository", "id": 12345678, "name": "web", "active": True, "events": ["push", "pull_request"],
    "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://example.com/webhook"},
    "updated_at": "2019-06-03T00:57:16Z", "created_at": "2019-06-03T00:57:16Z",
    "url": "https://api.github.com/repos/octocat/Hello-World/hooks/12345678",
    "last_response": {"code": None, "status": "unused", "message": None},
}
INSTALLATION = {
    "id": 25381, "account": {"login": "octo-org", "id": 6811672, "type": "Organization"},
    "repository_selection": "selected", "access_tokens_url": "https://api.github.com/app/installations/25381/access_tokens",
    "repositories_url": "https://api.github.com/installation/repositories",
    "html_url": "https://github.com/organizations/octo-org/settings/installations/25381",
    "app_id": 2218, "target_id": 6811672, "target_type": "Organization",
    "permissions": {"deployments": "write", "metadata": "read", "pull_requests": "read", "statuses": "read"},
    "events": ["deployment", "deployment_status"], "created_at": "2017-05-16T08:47:09.000-07:00",
    "updated_at": "2017-06-06T11:23:23.000-07:00", "single_file_name": "config.yml", "app_slug": "github-actions",
    "suspended_at": None, "suspended_by": None,
}
PAT_GRANT = {
    "id": 25381, "owner": dict(OCTOCAT), "repository_selection": "all",
    "repositories_url": "https://api.github.com/organizations/652551/personal-access-tokens/25381/repositories",
    "permissions": {"organization": {"members": "read"}, "repository": {"metadata": "read"}},
    "access_granted_at": "2023-05-16T08:47:09.000-07:00", "token_id": 98716, "token_name": "Some Token",
    "token_expired": False, "token_expires_at": "2023-11-16T08:47:09.000-07:00", "token_last_used_at": None,
}
CREDENTIAL_AUTHORIZATIONS = [
    {"login": "octocat", "credential_id": 161195, "credential_type": "personal access token",
     "token_last_eight": "71c3fc11", "credential_authorized_at": "2011-01-26T19:06:43Z",
     "credential_accessed_at": "2011-01-26T19:06:43Z", "authorized_credential_id": 12345678,
     "authorized_credential_expires_at": "2011-02-25T19:06:43Z", "scopes": ["user", "repo"]},
    {"login": "hubot", "credential_id": 161196, "credential_type": "personal access token",
     "token_last_eight": "Ae178B4a", "credential_authorized_at": "2019-03-29T19:06:43Z",
     "credential_accessed_at": "2019-04-15T19:06:43Z", "authorized_credential_id": 12345679,
     "authorized_credential_expires_at": "2019-04-28T19:06:43Z", "scopes": ["admin:org", "repo"]},
    {"login": "octocat", "credential_id": 161199, "credential_type": "SSH key",
     "credential_authorized_at": "2023-05-15T19:06:43Z", "credential_accessed_at": "2023-05-16T19:06:43Z",
     "authorized_credential_id": 12345682, "fingerprint": "jklmnop12345678", "authorized_credential_title": "my ssh key"},
]
ORG_SECRETS = [
    {"name": "GIST_ID", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z", "visibility": "private"},
    {"name": "DEPLOY_TOKEN", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z", "visibility": "all"},
    {"name": "GH_TOKEN", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z", "visibility": "selected",
     "selected_repositories_url": "https://api.github.com/orgs/octo-org/actions/secrets/SUPER_SECRET/repositories"},
]
PLANTED = "ghp_PLANTEDvalue0123456789abcdefABCDEF99"
ORG_VARIABLES = [
    {"name": "USERNAME", "value": "octocat", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z",
     "visibility": "private"},
    {"name": "LEAKY", "value": PLANTED, "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z",
     "visibility": "selected",
     "selected_repositories_url": "https://api.github.com/orgs/octo-org/actions/variables/LEAKY/repositories"},
]
RUNNERS = [
    {"id": 23, "name": "linux_runner", "os": "linux", "status": "online", "busy": True, "ephemeral": False,
     "labels": [{"id": 5, "name": "self-hosted", "type": "read-only"}, {"id": 11, "name": "Linux", "type": "read-only"}]},
    {"id": 24, "name": "mac_runner", "os": "macos", "status": "offline", "busy": False, "ephemeral": False,
     "labels": [{"id": 5, "name": "self-hosted", "type": "read-only"}]},
]
ENVIRONMENT = {
    "id": 161088068, "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4", "name": "staging",
    "url": "https://api.github.com/repos/github/hello-world/environments/staging",
    "html_url": "https://github.com/github/hello-world/deployments/activity_log?environments_filter=staging",
    "created_at": "2020-11-23T22:00:40Z", "updated_at": "2020-11-23T22:00:40Z", "protection_rules": [],
}
COLLABORATOR = {**OCTOCAT, "permissions": {"pull": True, "triage": True, "push": True, "maintain": False, "admin": False},
                "role_name": "write"}


def by_key(batch: gh.Batch) -> dict:
    keys = [r.key for r in batch.records]
    assert len(keys) == len(set(keys)), "duplicate keys in one batch"
    return {r.key: r for r in batch.records}


def dumped(batch: gh.Batch) -> str:
    return json.dumps([r.to_dict() for r in batch.records]) + repr(batch.records)


# --- repositories and members ------------------------------------------------------------------


def test_repos_emit_org_and_repos_with_parent():
    batch = gh.transform_repos(SRC, ORG, [{"name": "api", "private": True, "html_url": "https://github.com/acme/api"},
                                          {"name": "www", "visibility": "public"}], {"html_url": "https://github.com/acme"})
    recs = by_key(batch)
    org = recs["github:org:acme"]
    assert isinstance(org, Resource) and org.resource_type == "org" and org.inventory == "github:acme:repos"
    api = recs["github:repo:acme/api"]
    assert api.parent_key == "github:org:acme" and api.visibility == "private" and api.resource_type == "repo"
    assert recs["github:repo:acme/www"].visibility == "public"


def test_members_roles_privileges_bots_mfa_and_email():
    admin = dict(OCTOCAT)
    bot = {"login": "dependabot[bot]", "id": 49699333, "type": "Bot"}
    svc = {"login": "svc-deploy", "id": 77, "type": "User"}
    human = {"login": "alice", "id": 78, "type": "User"}
    batch = gh.transform_members(
        SRC, ORG, [admin], [admin, bot, svc, human], mfa_disabled={"alice"},
        profiles={"octocat": PUBLIC_USER}, machine_user_patterns=["svc-*", "*[[]bot]"],
    )
    recs = by_key(batch)
    octo = recs["github:user:octocat"]
    assert isinstance(octo, Account) and octo.inventory == "github:acme:members"
    assert octo.role == "admin" and octo.privilege == Privilege.OWNER and octo.is_human
    assert octo.email == "octocat@github.com" and octo.name == "monalisa octocat" and octo.login == "octocat"
    assert octo.mfa_enabled is True
    grant = recs["github:grant:github:user:octocat->github:org:acme"]
    assert isinstance(grant, Grant) and grant.privilege == Privilege.OWNER and grant.resource_key == "github:org:acme"
    assert recs["github:user:alice"].mfa_enabled is False and recs["github:user:alice"].privilege == Privilege.READ
    assert recs["github:user:alice"].role == "member" and recs["github:user:alice"].email is None
    for login in ("dependabot[bot]", "svc-deploy"):
        acc = recs[f"github:user:{login}"]
        assert acc.account_type == "bot" and acc.is_human is False
    assert recs["github:user:alice"].account_type == "user"
    # The owner listed again among members is not demoted or duplicated.
    assert sum(1 for r in batch.records if r.key == "github:user:octocat") == 1


def test_members_mfa_unknown_when_filter_refused():
    batch = gh.transform_members(SRC, ORG, [], [dict(OCTOCAT)], mfa_disabled=None)
    assert by_key(batch)["github:user:octocat"].mfa_enabled is None


def test_outside_collaborators_are_third_party_and_repo_grants_map_permissions():
    batch = gh.transform_outside_collaborators(SRC, ORG, [dict(OCTOCAT)], profiles={"octocat": PUBLIC_USER})
    acc = by_key(batch)["github:user:octocat"]
    assert acc.role == "outside_collaborator" and acc.third_party is True
    assert acc.inventory == "github:acme:outside_collaborators"

    def perms(**on):
        base = {"pull": False, "triage": False, "push": False, "maintain": False, "admin": False}
        return {**base, **on}

    cases = {
        "p": ({"login": "p", "permissions": perms(pull=True)}, Privilege.READ),
        "t": ({"login": "t", "permissions": perms(pull=True, triage=True)}, Privilege.READ),
        "w": ({"login": "w", "permissions": perms(pull=True, push=True)}, Privilege.WRITE),
        "m": ({"login": "m", "permissions": perms(pull=True, push=True, maintain=True)}, Privilege.WRITE),
        "a": ({"login": "a", "permissions": perms(admin=True)}, Privilege.ADMIN),
        "octocat": (COLLABORATOR, Privilege.WRITE),
    }
    batch = gh.transform_repo_collaborators(SRC, ORG, "api", [c for c, _ in cases.values()])
    recs = by_key(batch)
    for login, (_, level) in cases.items():
        g = recs[f"github:grant:github:user:{login}->github:repo:acme/api"]
        assert g.privilege == level, login
        assert g.inventory == "github:acme/api:outside_collaborators"


# --- credentials ---------------------------------------------------------------------------------


def test_deploy_key_fields_owner_and_no_key_material():
    write_key = {**DEPLOY_KEY, "id": 2, "read_only": False, "enabled": False}
    batch = gh.transform_deploy_keys(SRC, ORG, "api", [DEPLOY_KEY, write_key])
    recs = by_key(batch)
    ro = recs["github:deploy_key:acme/api/1"]
    assert isinstance(ro, Credential) and ro.credential_type == "deploy_key"
    assert ro.inventory == "github:acme/api:deploy_keys"
    assert ro.privilege == Privilege.READ and ro.status == Status.ACTIVE
    assert ro.created_at.isoformat() == "2014-12-10T15:53:42+00:00"
    assert ro.last_used_at.isoformat() == "2022-01-10T15:53:42+00:00" and ro.expires_at is None
    assert ro.created_by == "github:user:octocat"
    (owner,) = ro.owners
    assert (owner.ref, owner.evidence, owner.confidence, owner.role) == (
        "github:user:octocat", "deploy key added_by (GitHub API)", 0.9, "creator")
    assert ro.attributes["title"] == "octocat@octomac"
    assert ro.attributes["fingerprint"] == "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
    rw = recs["github:deploy_key:acme/api/2"]
    assert rw.privilege == Privilege.WRITE and rw.status == Status.SUSPENDED
    grant = recs["github:grant:github:deploy_key:acme/api/2->github:repo:acme/api"]
    assert grant.privilege == Privilege.WRITE
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" not in dumped(batch)


def test_deploy_key_without_last_used_is_not_usage_tracked():
    old = {k: v for k, v in DEPLOY_KEY.items() if k not in ("last_used", "added_by", "enabled")}
    cred = gh.transform_deploy_keys(SRC, ORG, "api", [old]).records[0]
    assert cred.usage_tracked is False and cred.owners == () and cred.created_by is None


def test_webhooks_keep_only_the_host():
    secret_url = "https://deploybot:hunter2pass@hooks.example.com:8443/in?token=QUERYSECRET42"
    org_hook = {**REPO_HOOK, "type": "Organization", "id": 1, "active": False,
                "config": {"url": secret_url, "content_type": "json", "insecure_ssl": "1", "secret": "********"}}
    org_batch = gh.transform_hooks(SRC, ORG, [org_hook])
    cred = by_key(org_batch)["github:webhook:acme/1"]
    assert cred.credential_type == "webhook" and cred.inventory == "github:acme:hooks"
    assert cred.attributes["url_host"] == "hooks.example.com"
    assert cred.attributes["has_secret"] is True and cred.attributes["insecure_ssl"] is True
    assert cred.attributes["events"] == ["push", "pull_request"] and cred.attributes["active"] is False
    assert cred.status == Status.SUSPENDED and cred.usage_tracked is False and cred.privilege == Privilege.READ
    assert cred.rotated_at.isoformat() == "2019-06-03T00:57:16+00:00"
    assert "github:grant:github:webhook:acme/1->github:org:acme" in by_key(org_batch)
    text = dumped(org_batch)
    for leaked in ("hunter2pass", "QUERYSECRET42", "deploybot", "/in"):
        assert leaked not in text

    repo_batch = gh.transform_hooks(SRC, ORG, [REPO_HOOK], repo="api")
    recs = by_key(repo_batch)
    hook = recs["github:webhook:acme/api/12345678"]
    assert hook.inventory == "github:acme/api:hooks" and hook.status == Status.ACTIVE
    assert hook.attributes["has_secret"] is False and hook.attributes["insecure_ssl"] is False
    assert "github:grant:github:webhook:acme/api/12345678->github:repo:acme/api" in recs


@pytest.mark.parametrize(
    "permissions, level",
    [
        ({"metadata": "read", "contents": "read"}, Privilege.READ),
        ({"deployments": "write", "metadata": "read"}, Privilege.WRITE),
        ({"administration": "write"}, Privilege.ADMIN),
        ({"organization_administration": "write"}, Privilege.ADMIN),
        ({"members": "write"}, Privilege.ADMIN),
        ({"members": "read", "contents": "write"}, Privilege.WRITE),
        ({"secrets": "write"}, Privilege.ADMIN),
        ({"organization_secrets": "admin"}, Privilege.ADMIN),
        ({"organization_personal_access_tokens": "write"}, Privilege.ADMIN),
        ({"administration": "read"}, Privilege.READ),
    ],
)
def test_installation_privilege_normalisation(permissions, level):
    inst = {**INSTALLATION, "permissions": permissions}
    acc = gh.transform_installations(SRC, ORG, [inst]).records[0]
    assert acc.privilege == level


def test_installation_record():
    suspended = {**INSTALLATION, "id": 9, "repository_selection": "all", "suspended_at": "2024-01-01T00:00:00Z"}
    recs = by_key(gh.transform_installations(SRC, ORG, [INSTALLATION, suspended]))
    acc = recs["github:installation:acme/25381"]
    assert acc.account_type == "app_installation" and acc.is_human is False
    assert acc.name == acc.login == "github-actions" and acc.status == Status.ACTIVE
    assert acc.attributes["app_id"] == 2218 and acc.attributes["repository_selection"] == "selected"
    assert acc.attributes["permissions"]["deployments"] == "write"
    assert acc.attributes["events"] == ["deployment", "deployment_status"]
    assert acc.created_at.isoformat() == "2017-05-16T15:47:09+00:00"
    g = recs["github:grant:github:installation:acme/25381->github:org:acme"]
    assert "repository_selection:selected" in g.scopes and g.privilege == Privilege.WRITE
    assert recs["github:installation:acme/9"].status == Status.SUSPENDED
    assert "repository_selection:selected" not in recs["github:grant:github:installation:acme/9->github:org:acme"].scopes


def test_fine_grained_pat_grant_all_repositories():
    recs = by_key(gh.transform_pat_grants(SRC, ORG, [PAT_GRANT]))
    cred = recs["github:fine_grained_pat:acme/98716"]
    assert cred.credential_type == "fine_grained_pat" and cred.name == "Some Token"
    assert cred.inventory == "github:acme:pat_grants"
    assert cred.account_key == "github:user:octocat"
    (owner,) = cred.owners
    assert (owner.ref, owner.evidence, owner.confidence, owner.role) == (
        "github:user:octocat", "fine-grained PAT owner (GitHub API)", 1.0, "owner")
    assert cred.scopes == ("organization:members:read", "repository:metadata:read")
    assert cred.privilege == Privilege.READ and cred.status == Status.ACTIVE
    assert cred.created_at.isoformat() == "2023-05-16T15:47:09+00:00"
    assert cred.expires_at.isoformat() == "2023-11-16T15:47:09+00:00" and cred.last_used_at is None
    assert recs["github:grant:github:fine_grained_pat:acme/98716->github:org:acme"].privilege == Privilege.READ


def test_fine_grained_pat_grant_subset_expired_and_privilege():
    grant = {**PAT_GRANT, "id": 7, "token_id": 700, "repository_selection": "subset", "token_expired": True,
             "permissions": {"repository": {"contents": "write", "metadata": "read"}},
             "token_last_used_at": "2024-02-01T00:00:00Z"}
    admin = {**PAT_GRANT, "id": 8, "token_id": 800, "permissions": {"organization": {"members": "write"}}}
    batch = gh.transform_pat_grants(SRC, ORG, [grant, admin], {7: [{"name": "api"}, {"name": "www"}]})
    recs = by_key(batch)
    cred = recs["github:fine_grained_pat:acme/700"]
    assert cred.status == Status.EXPIRED and cred.privilege == Privilege.WRITE
    assert "repository:contents:write" in cred.scopes
    assert cred.last_used_at.isoformat() == "2024-02-01T00:00:00+00:00"
    for repo in ("api", "www"):
        g = recs[f"github:grant:github:fine_grained_pat:acme/700->github:repo:acme/{repo}"]
        assert g.privilege == Privilege.WRITE
    assert "github:grant:github:fine_grained_pat:acme/700->github:org:acme" not in recs
    assert recs["github:fine_grained_pat:acme/800"].privilege == Privilege.ADMIN


def test_credential_authorizations_types_privilege_and_last_eight_hashed():
    batch = gh.transform_credential_authorizations(SRC, ORG, CREDENTIAL_AUTHORIZATIONS, hmac_key=KEY)
    recs = by_key(batch)
    pat = recs["github:credential_authorization:acme/161195"]
    assert pat.credential_type == "classic_pat" and pat.name == "octocat personal access token"
    assert pat.inventory == "github:acme:credential_authorizations"
    assert pat.account_key == "github:user:octocat" and pat.scopes == ("user", "repo")
    assert pat.privilege == Privilege.WRITE
    assert pat.created_at.isoformat() == "2011-01-26T19:06:43+00:00"
    assert pat.expires_at.isoformat() == "2011-02-25T19:06:43+00:00"
    (owner,) = pat.owners
    assert (owner.ref, owner.evidence, owner.confidence) == (
        "github:user:octocat", "SAML credential authorization (GitHub API)", 1.0)
    assert pat.attributes["last_eight_hmac"] == keyed_hash(KEY, "71c3fc11")
    assert recs["github:credential_authorization:acme/161196"].privilege == Privilege.ADMIN
    ssh = recs["github:credential_authorization:acme/161199"]
    assert ssh.credential_type == "ssh_key" and ssh.name == "my ssh key" and ssh.privilege == Privilege.READ
    assert ssh.attributes["last_eight_hmac"] is None
    text = dumped(batch)
    assert "71c3fc11" not in text and "Ae178B4a" not in text and "token_last_eight" not in text


@pytest.mark.parametrize(
    "scopes, level",
    [
        ([], Privilege.READ),
        (["read:org", "user:email"], Privilege.READ),
        (["repo"], Privilege.WRITE),
        (["write:packages"], Privilege.WRITE),
        (["workflow"], Privilege.WRITE),
        (["admin:org"], Privilege.ADMIN),
        (["admin:enterprise"], Privilege.ADMIN),
        (["delete_repo"], Privilege.ADMIN),
        (["admin:repo_hook"], Privilege.ADMIN),
        (["site_admin"], Privilege.ADMIN),
    ],
)
def test_classic_scope_privilege(scopes, level):
    assert gh.classic_scopes_privilege(scopes) == level


def test_org_actions_secrets_visibility_and_grants():
    batch = gh.transform_actions_secrets(SRC, ORG, ORG_SECRETS, selected={"GH_TOKEN": [{"name": "api"}, {"name": "www"}]})
    recs = by_key(batch)
    for name, vis in (("GIST_ID", "private"), ("DEPLOY_TOKEN", "all")):
        cred = recs[f"github:actions_secret:acme/{name}"]
        assert cred.credential_type == "actions_secret" and cred.inventory == "github:acme:actions_secrets"
        assert cred.attributes == {"visibility": vis, "level": "org", "scope": "acme"}
        assert cred.usage_tracked is False and cred.privilege == Privilege.READ
        assert cred.rotated_at.isoformat() == "2020-01-10T14:59:22+00:00"
        assert f"github:grant:github:actions_secret:acme/{name}->github:org:acme" in recs
    assert recs["github:actions_secret:acme/GH_TOKEN"].attributes["visibility"] == "selected"
    assert "github:grant:github:actions_secret:acme/GH_TOKEN->github:org:acme" not in recs
    for repo in ("api", "www"):
        assert f"github:grant:github:actions_secret:acme/GH_TOKEN->github:repo:acme/{repo}" in recs


def test_repo_and_environment_secrets_keys():
    repo_recs = by_key(gh.transform_actions_secrets(SRC, ORG, ORG_SECRETS[:1], repo="api"))
    cred = repo_recs["github:actions_secret:acme/api/GIST_ID"]
    assert cred.inventory == "github:acme/api:actions_secrets" and cred.attributes["level"] == "repo"
    assert "github:grant:github:actions_secret:acme/api/GIST_ID->github:repo:acme/api" in repo_recs

    batch = gh.transform_environments(SRC, ORG, "api", [(ENVIRONMENT, ORG_SECRETS[:1], ORG_VARIABLES)], hmac_key=KEY)
    recs = by_key(batch)
    env = recs["github:environment:acme/api/staging"]
    assert env.resource_type == "environment" and env.parent_key == "github:repo:acme/api"
    sec = recs["github:actions_secret:acme/api/staging/GIST_ID"]
    var = recs["github:actions_variable:acme/api/staging/LEAKY"]
    assert sec.attributes["level"] == var.attributes["level"] == "environment"
    assert all(r.inventory == "github:acme/api:environments" for r in batch.records)
    assert "github:grant:github:actions_secret:acme/api/staging/GIST_ID->github:environment:acme/api/staging" in recs
    assert PLANTED not in dumped(batch)


def test_actions_variables_never_keep_the_value():
    batch = gh.transform_actions_variables(SRC, ORG, ORG_VARIABLES, hmac_key=KEY, selected={"LEAKY": [{"name": "api"}]})
    recs = by_key(batch)
    var = recs["github:actions_variable:acme/LEAKY"]
    assert var.credential_type == "actions_variable" and var.inventory == "github:acme:actions_variables"
    assert var.value_hmac == keyed_hash(KEY, PLANTED) and var.preview is None
    assert var.attributes == {"visibility": "selected", "level": "org", "scope": "acme", "value_length": len(PLANTED)}
    assert "github:grant:github:actions_variable:acme/LEAKY->github:repo:acme/api" in recs
    repo_var = gh.transform_actions_variables(SRC, ORG, ORG_VARIABLES, hmac_key=KEY, repo="api")
    assert "github:actions_variable:acme/api/LEAKY" in by_key(repo_var)
    for b in (batch, repo_var):
        text = dumped(b)
        assert PLANTED not in text and PLANTED[:8] not in text and "octocat" not in text


def test_runners():
    batch = gh.transform_runners(SRC, ORG, RUNNERS)
    recs = by_key(batch)
    on, off = recs["github:runner:acme/23"], recs["github:runner:acme/24"]
    assert on.account_type == "runner" and on.is_human is False and on.status == Status.ACTIVE
    assert on.attributes["labels"] == ["self-hosted", "Linux"] and on.attributes["os"] == "linux"
    assert on.attributes["busy"] is True and on.attributes["ephemeral"] is False
    assert off.status == Status.SUSPENDED
    repo_runner = gh.transform_runners(SRC, ORG, RUNNERS[:1], repo="api").records[0]
    assert repo_runner.key == "github:runner:acme/api/23" and repo_runner.inventory == "github:acme/api:runners"


# --- malformed items --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform, good, bad",
    [
        (lambda items: gh.transform_deploy_keys(SRC, ORG, "api", items), DEPLOY_KEY,
         [{**DEPLOY_KEY, "id": None}, {**DEPLOY_KEY, "id": "1"}, {**DEPLOY_KEY, "created_at": 12}, "a string",
          {**DEPLOY_KEY, "read_only": "yes"}]),
        (lambda items: gh.transform_hooks(SRC, ORG, items), REPO_HOOK,
         [{k: v for k, v in REPO_HOOK.items() if k != "id"}, {**REPO_HOOK, "config": "x"}, {**REPO_HOOK, "events": "push"}]),
        (lambda items: gh.transform_installations(SRC, ORG, items), INSTALLATION,
         [{**INSTALLATION, "id": 1.5}, {**INSTALLATION, "permissions": ["admin"]}, None]),
        (lambda items: gh.transform_pat_grants(SRC, ORG, items), PAT_GRANT,
         [{**PAT_GRANT, "token_id": None}, {**PAT_GRANT, "owner": {}}, {**PAT_GRANT, "token_expires_at": "soon"}]),
        (lambda items: gh.transform_credential_authorizations(SRC, ORG, items, hmac_key=KEY), CREDENTIAL_AUTHORIZATIONS[0],
         [{**CREDENTIAL_AUTHORIZATIONS[0], "credential_id": None}, {**CREDENTIAL_AUTHORIZATIONS[0], "scopes": "repo"}]),
        (lambda items: gh.transform_actions_secrets(SRC, ORG, items), ORG_SECRETS[0],
         [{"created_at": "2019-08-10T14:59:22Z"}, {**ORG_SECRETS[0], "name": 5}]),
        (lambda items: gh.transform_actions_variables(SRC, ORG, items, hmac_key=KEY), ORG_VARIABLES[1],
         [{**ORG_VARIABLES[1], "name": None}, {**ORG_VARIABLES[1], "name": "OBJ", "value": {"nested": PLANTED}},
          {**ORG_VARIABLES[1], "name": "BADDATE", "updated_at": PLANTED}]),
        (lambda items: gh.transform_runners(SRC, ORG, items), RUNNERS[0], [{**RUNNERS[0], "id": None}, [1, 2]]),
        (lambda items: gh.transform_members(SRC, ORG, [], items), OCTOCAT, [{"id": 3}, {"login": 42}]),
        (lambda items: gh.transform_repo_collaborators(SRC, ORG, "api", items), COLLABORATOR, [{"login": "x"}]),
        (lambda items: gh.transform_repos(SRC, ORG, items), {"name": "api"}, [{"name": None}, {"name": ["x"]}]),
    ],
)
def test_malformed_items_are_skipped_and_the_rest_kept(transform, good, bad):
    full = transform([copy.deepcopy(good)])
    batch = transform([*copy.deepcopy(bad), copy.deepcopy(good)])
    assert [r.key for r in batch.records] == [r.key for r in full.records] and batch.records
    assert len(batch.skipped) == len(bad)
    for why in batch.skipped:
        assert PLANTED not in why  # reasons name fields, never values


def test_bad_environment_is_skipped_and_others_kept():
    batch = gh.transform_environments(SRC, ORG, "api", [({"id": 1}, [], []), (ENVIRONMENT, [], [])], hmac_key=KEY)
    assert [r.key for r in batch.records] == ["github:environment:acme/api/staging"]
    assert len(batch.skipped) == 1


# --- helpers -----------------------------------------------------------------------------------


def test_grant_key_and_inventory_names():
    assert gh.grant_key("gh", "gh:user:a", "gh:org:o") == "gh:grant:gh:user:a->gh:org:o"
    assert gh.inventory_name("gh", "o", "members") == "gh:o:members"
    assert gh.inventory_name("gh", "o", "deploy_keys", "r") == "gh:o/r:deploy_keys"


def test_describe_error_names_status_and_needed_access():
    from github.GithubException import GithubException

    reason = gh.describe_error(GithubException(403, {"message": "Must have admin rights to Repository."}, {}),
                               "repository admin")
    assert reason.startswith("HTTP 403") and "repository admin" in reason and "admin rights" in reason
    assert gh.describe_error(GithubException(401, {"message": "Bad credentials"}, {}), "x").startswith("HTTP 401")
    assert gh.describe_error(json.JSONDecodeError("x", "{", 1), "x").startswith("malformed response")


# --- replay of the pinned spec's examples --------------------------------------------------------


@pytest.mark.skipif(not SPEC.exists(), reason=f"pinned GitHub OpenAPI description not found at {SPEC}")
def test_spec_examples_transform_without_skips():
    examples = json.loads(SPEC.read_text())["components"]["examples"]

    def ex(name):
        return examples[name]["value"]

    batches = [
        gh.transform_members(SRC, ORG, ex("simple-user-items"), [], profiles={"octocat": ex("public-user-default-response")}),
        gh.transform_outside_collaborators(SRC, ORG, ex("simple-user-items")),
        gh.transform_repos(SRC, ORG, ex("minimal-repository-items")),
        gh.transform_repo_collaborators(SRC, ORG, "api", ex("collaborator-items")),
        gh.transform_deploy_keys(SRC, ORG, "api", ex("deploy-key-items")),
        gh.transform_hooks(SRC, ORG, ex("org-hook-items")),
        gh.transform_hooks(SRC, ORG, ex("hook-items"), repo="api"),
        gh.transform_installations(SRC, ORG, ex("installation-paginated")["installations"]),
        gh.transform_pat_grants(SRC, ORG, ex("org-pat-grant-paginated")),
        gh.transform_credential_authorizations(SRC, ORG, ex("credential-authorization-items"), hmac_key=KEY),
        gh.transform_actions_secrets(SRC, ORG, ex("organization-actions-secret-paginated")["secrets"]),
        gh.transform_actions_variables(SRC, ORG, ex("organization-actions-variables-paginated")["variables"], hmac_key=KEY),
        gh.transform_actions_secrets(SRC, ORG, ex("actions-secret-paginated")["secrets"], repo="api"),
        gh.transform_actions_variables(SRC, ORG, ex("actions-variables-paginated")["variables"], hmac_key=KEY, repo="api"),
        gh.transform_runners(SRC, ORG, ex("runner-paginated")["runners"]),
        gh.transform_environments(SRC, ORG, "api", [(e, [], []) for e in ex("environments")["environments"]], hmac_key=KEY),
    ]
    for batch in batches:
        assert batch.records and not batch.skipped, batch.skipped
        for rec in batch.records:
            json.dumps(rec.to_dict())
    values = [v["value"] for v in ex("organization-actions-variables-paginated")["variables"] if isinstance(v["value"], str)]
    variable_text = dumped(batches[11]) + dumped(batches[13])
    for v in values:
        assert f'"{v}"' not in variable_text
    text = "".join(dumped(b) for b in batches)
    for item in ex("credential-authorization-items"):
        if item.get("token_last_eight"):
            assert item["token_last_eight"] not in text
