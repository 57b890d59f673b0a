"""GitHub collector: org members, machine users, apps, tokens, keys, webhooks, CI secrets.

Cartography's split: ``get_*`` functions do the I/O with PyGithub and return the raw JSON
dicts GitHub sent; ``transform_*`` functions are pure (raw dicts in, records out) and are
unit-tested on recorded-shape payloads; :func:`collect` ties them together for one source.

Every listing is an *inventory* (``github:acme:members``, ``github:acme/api:deploy_keys``).
An inventory that could not be read is reported as a gap with the reason — never as an empty
listing (DESIGN.md invariant 2). A malformed item is logged and skipped; the rest of its
listing is kept (invariant 5). No token, private key or Actions variable value is logged,
stored or put in an exception text (invariant 1): variables keep only a keyed hash, SAML
credential authorizations keep only a keyed hash of the token's last eight characters.

Auth: a token (classic or fine-grained PAT) and/or a GitHub App. Fine-grained PAT grants are
listed only to an App installation, so ``pat_grants`` always uses the App; every other
inventory uses the token when one is configured, else the App installation.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import hashlib
import json
import logging
import re
import urllib.parse
from typing import Any, Callable, Iterable, Sequence

import requests
from github import Auth, Github, GithubIntegration, GithubRetry
from github.GithubException import GithubException, RateLimitExceededException
from github.GithubObject import GithubObject, NonCompletableGithubObject
from github.PaginatedList import PaginatedList

from detectors.secrets.exposures import exposures_in_variable
from scanner.collectors.common import (Batch, CollectorRun, MalformedItem, MalformedResponse, each, grant_key,
                                       label_by, opt_bool, opt_dict, opt_list, opt_str, opt_time, req_int, req_str,
                                       str_list)
from scanner.config import Config, ConfigError, GitHubSource, read_secret
from scanner.records import (
    Account,
    CollectResult,
    Credential,
    Grant,
    Ownership,
    Privilege,
    Record,
    Resource,
    Status,
    keyed_hash,
)

log = logging.getLogger("nhiscan.collectors.github")

#: Org-level inventories, in the order they are read.
ORG_INVENTORIES: tuple[str, ...] = (
    "repos",
    "members",
    "outside_collaborators",
    "hooks",
    "installations",
    "pat_grants",
    "credential_authorizations",
    "actions_secrets",
    "actions_variables",
    "runners",
)
#: Per-repository inventories (``{src}:{org}/{repo}:<name>``). ``outside_collaborators`` per repo
#: holds the grants of the org's outside collaborators to that repo.
REPO_INVENTORIES: tuple[str, ...] = (
    "outside_collaborators",
    "deploy_keys",
    "hooks",
    "actions_secrets",
    "actions_variables",
    "environments",
    "runners",
)
INVENTORY_NAMES: frozenset[str] = frozenset(ORG_INVENTORIES) | frozenset(REPO_INVENTORIES)

PAT_GRANTS_NEED_APP = "fine-grained PATs need GitHub App auth (app_id + private key)"
SAML_NOT_ENABLED = "SAML SSO not enabled on this org (GitHub Enterprise Cloud + SAML only)"

# What each listing needs, for gap reasons a security team can act on.
_ORG_NEEDS: dict[str, str] = {
    "repos": "organization membership (classic token: repo for private repositories; App: metadata read)",
    "members": "organization membership (classic token: read:org; App: members read)",
    "outside_collaborators": "organization membership (classic token: read:org; App: members read)",
    "hooks": "organization owner (classic token: admin:org_hook; App: organization_hooks read)",
    "installations": "organization owner (classic token: read:org; App: organization_administration read)",
    "pat_grants": "a GitHub App installation with the 'Personal access tokens' organization permission (read)",
    "credential_authorizations": "organization owner on GitHub Enterprise Cloud with SAML SSO (classic token: read:org)",
    "actions_secrets": "organization owner (classic token: admin:org; App: organization_secrets read)",
    "actions_variables": "organization owner (classic token: admin:org; App: organization_actions_variables read)",
    "runners": "organization owner (classic token: admin:org; App: organization_self_hosted_runners read)",
}
_REPO_NEEDS: dict[str, str] = {
    "outside_collaborators": "push access to the repository (classic token: repo; App: metadata read)",
    "deploy_keys": "repository admin (classic token: repo; App: administration read)",
    "hooks": "repository admin (classic token: admin:repo_hook or repo; App: repository_hooks read)",
    "actions_secrets": "repository admin (classic token: repo; App: secrets read)",
    "actions_variables": "repository admin (classic token: repo; App: actions_variables read)",
    "environments": "repository admin for environment secrets (classic token: repo; App: environments read)",
    "runners": "repository admin (classic token: repo; App: administration read)",
}

# GitHub App / fine-grained PAT permissions that amount to administering the org or its secrets.
_ADMIN_APP_PERMISSIONS = frozenset(
    {
        "administration",
        "organization_administration",
        "members",
        "organization_secrets",
        "secrets",
        "organization_personal_access_tokens",
    }
)
_ADMIN_PAT_PERMISSIONS = frozenset({"administration", "organization_administration", "members"})
_WRITE_LEVELS = frozenset({"write", "admin"})

# Classic OAuth scopes.
_ADMIN_SCOPES = frozenset({"admin:org", "admin:enterprise", "delete_repo", "admin:repo_hook", "site_admin"})
_WRITE_SCOPES = frozenset({"repo", "public_repo", "workflow"})

_COLLABORATOR_ROLES: dict[str, Privilege] = {
    "read": Privilege.READ,
    "pull": Privilege.READ,
    "triage": Privilege.READ,
    "write": Privilege.WRITE,
    "push": Privilege.WRITE,
    "maintain": Privilege.WRITE,
    "admin": Privilege.ADMIN,
}

_SAML_CREDENTIAL_TYPES: dict[str, str] = {
    "personal access token": "classic_pat",
    "ssh key": "ssh_key",
    "oauth app token": "oauth_app_token",
    "github app token": "github_app_token",
    "fine-grained personal access token": "fine_grained_pat",
}


# --- keys ---------------------------------------------------------------------------------


def inventory_name(src: str, org: str, short: str, repo: str | None = None) -> str:
    """``{src}:{org}:{short}`` for org listings, ``{src}:{org}/{repo}:{short}`` per repository."""
    return f"{src}:{org}/{repo}:{short}" if repo is not None else f"{src}:{org}:{short}"


def org_key(src: str, org: str) -> str:
    return f"{src}:org:{org}"


def repo_key(src: str, org: str, repo: str) -> str:
    return f"{src}:repo:{org}/{repo}"


def environment_key(src: str, org: str, repo: str, env: str) -> str:
    return f"{src}:environment:{org}/{repo}/{env}"


def user_key(src: str, login: str) -> str:
    return f"{src}:user:{login}"


def is_machine_login(login: str, patterns: Iterable[str]) -> bool:
    """True when a login matches one of the configured machine-user patterns (case-insensitive)."""
    low = login.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


# --- payload checking (shared readers in scanner.collectors.common) -----------------------

# An item in a warning is named by its id, login or name (an integer id is quoted too).
_label = label_by("id", "login", "name", ints="quoted", empty=True)
_each = functools.partial(each, label=_label)


def _levels(perms: dict[str, Any], key: str) -> dict[str, str]:
    """A ``{permission: level}`` dict whose values are all strings."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in perms.items()):
        raise MalformedItem(f"{key} holds non-string levels")
    return perms


# --- privilege normalisation ----------------------------------------------------------------


def app_permissions_privilege(permissions: dict[str, str]) -> Privilege:
    """GitHub App installation permissions -> privilege.

    Write/admin on administration, members, secrets or PAT policy is ADMIN (it can take over
    the org or read every secret); any other write is WRITE; read-only is READ.
    """
    levels = {name: str(level).lower() for name, level in permissions.items()}
    if any(levels.get(p) in _WRITE_LEVELS for p in _ADMIN_APP_PERMISSIONS):
        return Privilege.ADMIN
    if any(level in _WRITE_LEVELS for level in levels.values()):
        return Privilege.WRITE
    return Privilege.READ


def pat_permissions_privilege(permissions: dict[str, dict[str, str]]) -> Privilege:
    """Fine-grained PAT permissions (``{"repository": {...}, "organization": {...}}``) -> privilege."""
    flat: dict[str, str] = {}
    for group in permissions.values():
        if isinstance(group, dict):
            for name, level in group.items():
                if str(level).lower() in _WRITE_LEVELS or name not in flat:
                    flat[name] = str(level).lower()
    if any(flat.get(p) in _WRITE_LEVELS for p in _ADMIN_PAT_PERMISSIONS):
        return Privilege.ADMIN
    if any(level in _WRITE_LEVELS for level in flat.values()):
        return Privilege.WRITE
    return Privilege.READ


def classic_scopes_privilege(scopes: Iterable[str]) -> Privilege:
    """Classic OAuth/PAT scopes -> privilege (``admin:org``... ADMIN; ``repo``, ``write:*``... WRITE)."""
    scopes = {s.strip().lower() for s in scopes}
    if scopes & _ADMIN_SCOPES:
        return Privilege.ADMIN
    if scopes & _WRITE_SCOPES or any(s.startswith(("write:", "admin:")) for s in scopes):
        return Privilege.WRITE
    return Privilege.READ


def collaborator_privilege(item: dict[str, Any]) -> Privilege:
    """A repository collaborator's ``role_name`` (or ``permissions`` booleans) -> privilege."""
    role = item.get("role_name")
    if isinstance(role, str) and role.lower() in _COLLABORATOR_ROLES:
        return _COLLABORATOR_ROLES[role.lower()]
    perms = opt_dict(item, "permissions")
    for name in ("admin", "maintain", "push", "triage", "pull"):
        if perms.get(name) is True:
            return _COLLABORATOR_ROLES[name]
    if role is None and not perms:
        raise MalformedItem("missing role_name and permissions")
    return Privilege.READ  # a custom role with no base permission reported


def ssh_fingerprint(public_key: str) -> str | None:
    """OpenSSH-style ``SHA256:`` fingerprint of a public key line; None when it does not parse."""
    parts = public_key.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def url_host(url: Any) -> str | None:
    """Only the host of a URL: webhook URLs can embed credentials in userinfo or the query string."""
    if not isinstance(url, str) or not url:
        return None
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:
        return None


def _variable_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise MalformedItem(f"value is a {type(value).__name__}, not a string")


# --- transforms (pure) ----------------------------------------------------------------------


def transform_repos(src: str, org: str, repos: Sequence[Any], org_raw: dict[str, Any] | None = None) -> Batch:
    """The org and its repositories as Resources (inventory ``{src}:{org}:repos``)."""
    inv = inventory_name(src, org, "repos")
    okey = org_key(src, org)
    raw = org_raw if isinstance(org_raw, dict) else {}
    html = raw.get("html_url") if isinstance(raw.get("html_url"), str) else None
    batch = Batch(records=[Resource(key=okey, source=src, inventory=inv, name=org, url=html, resource_type="org")])

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "name")
        visibility = opt_str(item, "visibility")
        if visibility is None:
            private = opt_bool(item, "private")
            visibility = None if private is None else ("private" if private else "public")
        return [
            Resource(
                key=repo_key(src, org, name),
                source=src,
                inventory=inv,
                name=f"{org}/{name}",
                url=opt_str(item, "html_url"),
                resource_type="repo",
                parent_key=okey,
                visibility=visibility,
            )
        ]

    _each(batch, repos, "repository", one)
    return batch


def _user_account(
    src: str,
    inv: str,
    item: dict[str, Any],
    *,
    role: str,
    privilege: Privilege,
    mfa_disabled: set[str] | None,
    profile: dict[str, Any] | None,
    machine_user_patterns: Sequence[str],
    third_party: bool = False,
) -> Account:
    login = req_str(item, "login")
    gh_type = opt_str(item, "type")
    machine = gh_type == "Bot" or is_machine_login(login, machine_user_patterns)
    profile = profile if isinstance(profile, dict) else {}
    email = profile.get("email") if isinstance(profile.get("email"), str) and profile.get("email") else None
    display = profile.get("name") if isinstance(profile.get("name"), str) and profile.get("name") else login
    try:
        created_at = opt_time(profile, "created_at")
    except MalformedItem:
        created_at = None  # a bad profile date must not cost us the member
    uid = item.get("id")
    return Account(
        key=user_key(src, login),
        source=src,
        inventory=inv,
        name=display,
        url=opt_str(item, "html_url"),
        account_type="bot" if machine else "user",
        is_human=not machine,
        login=login,
        email=email,
        created_at=created_at,
        role=role,
        privilege=privilege,
        mfa_enabled=None if mfa_disabled is None else login not in mfa_disabled,
        third_party=third_party,
        attributes={
            "id": uid if isinstance(uid, int) and not isinstance(uid, bool) else None,
            "github_type": gh_type,
            "site_admin": item.get("site_admin") is True,
        },
    )


def transform_members(
    src: str,
    org: str,
    admins: Sequence[Any],
    members: Sequence[Any],
    *,
    mfa_disabled: set[str] | None = None,
    profiles: dict[str, Any] | None = None,
    machine_user_patterns: Sequence[str] = (),
) -> Batch:
    """Org members (``role=admin`` and ``role=member`` listings) -> Account + Grant to the org.

    Owners get ``Privilege.OWNER``, members ``READ``. ``mfa_disabled`` is the set of logins from
    ``filter=2fa_disabled`` (owners only); None when it could not be read, leaving ``mfa_enabled`` None.
    """
    inv = inventory_name(src, org, "members")
    okey = org_key(src, org)
    profiles = profiles or {}
    batch = Batch()
    seen: set[str] = set()
    for role, items, level in (("admin", admins, Privilege.OWNER), ("member", members, Privilege.READ)):

        def one(item: dict[str, Any], role: str = role, level: Privilege = level) -> list[Record]:
            login = req_str(item, "login")
            if login in seen:  # listed as owner already
                return []
            acc = _user_account(
                src, inv, item, role=role, privilege=level, mfa_disabled=mfa_disabled,
                profile=profiles.get(login), machine_user_patterns=machine_user_patterns,
            )
            seen.add(login)
            grant = Grant(
                key=grant_key(src, acc.key, okey), source=src, inventory=inv, name=f"{login} in {org} ({role})",
                subject_key=acc.key, resource_key=okey, privilege=level, scopes=(f"org:{role}",),
            )
            return [acc, grant]

        _each(batch, items, "owner" if role == "admin" else "member", one)
    return batch


def transform_outside_collaborators(
    src: str,
    org: str,
    items: Sequence[Any],
    *,
    mfa_disabled: set[str] | None = None,
    profiles: dict[str, Any] | None = None,
    machine_user_patterns: Sequence[str] = (),
) -> Batch:
    """Org outside collaborators -> third-party Accounts (their repo grants come per repository)."""
    inv = inventory_name(src, org, "outside_collaborators")
    profiles = profiles or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        login = req_str(item, "login")
        return [
            _user_account(
                src, inv, item, role="outside_collaborator", privilege=Privilege.READ, mfa_disabled=mfa_disabled,
                profile=profiles.get(login), machine_user_patterns=machine_user_patterns, third_party=True,
            )
        ]

    _each(batch, items, "outside collaborator", one)
    return batch


def transform_repo_collaborators(src: str, org: str, repo: str, items: Sequence[Any]) -> Batch:
    """``GET /repos/{o}/{r}/collaborators?affiliation=outside`` -> Grants user -> repo."""
    inv = inventory_name(src, org, "outside_collaborators", repo)
    rkey = repo_key(src, org, repo)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        login = req_str(item, "login")
        level = collaborator_privilege(item)
        role = item.get("role_name") if isinstance(item.get("role_name"), str) else level.name.lower()
        ukey = user_key(src, login)
        return [
            Grant(
                key=grant_key(src, ukey, rkey), source=src, inventory=inv, name=f"{login} on {org}/{repo} ({role})",
                subject_key=ukey, resource_key=rkey, privilege=level, scopes=(f"repo:{role}",),
            )
        ]

    _each(batch, items, "collaborator", one)
    return batch


def transform_deploy_keys(src: str, org: str, repo: str, items: Sequence[Any]) -> Batch:
    """Deploy keys -> Credential (+ Grant to the repo). Only the title and a SHA256 fingerprint are kept."""
    inv = inventory_name(src, org, "deploy_keys", repo)
    rkey = repo_key(src, org, repo)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        kid = req_int(item)
        title = opt_str(item, "title") or f"deploy key {kid}"
        read_only = opt_bool(item, "read_only", False)
        enabled = opt_bool(item, "enabled", True)
        added_by = opt_str(item, "added_by")
        key_text = opt_str(item, "key")
        creator = user_key(src, added_by) if added_by else None
        level = Privilege.READ if read_only else Privilege.WRITE
        ckey = f"{src}:deploy_key:{org}/{repo}/{kid}"
        cred = Credential(
            key=ckey, source=src, inventory=inv, name=title, url=None,
            credential_type="deploy_key",
            created_at=opt_time(item, "created_at"),
            last_used_at=opt_time(item, "last_used"),
            expires_at=None,
            # Older GitHub Enterprise Server releases do not report last use at all.
            usage_tracked="last_used" in item,
            scopes=("read_only",) if read_only else ("read_write",),
            privilege=level,
            status=Status.ACTIVE if enabled else Status.SUSPENDED,
            created_by=creator,
            owners=(Ownership(ref=creator, evidence="deploy key added_by (GitHub API)", confidence=0.9, role="creator"),)
            if creator else (),
            attributes={
                "id": kid,
                "title": title,
                "fingerprint": ssh_fingerprint(key_text) if key_text else None,
                "read_only": read_only,
                "verified": opt_bool(item, "verified"),
                "added_by": added_by,
            },
        )
        grant = Grant(
            key=grant_key(src, ckey, rkey), source=src, inventory=inv, name=f"deploy key {title} on {org}/{repo}",
            subject_key=ckey, resource_key=rkey, privilege=level, scopes=cred.scopes,
        )
        return [cred, grant]

    _each(batch, items, "deploy key", one)
    return batch


def transform_hooks(src: str, org: str, items: Sequence[Any], repo: str | None = None) -> Batch:
    """Org or repo webhooks -> Credential ``webhook`` (+ Grant). Only the target host is kept."""
    inv = inventory_name(src, org, "hooks", repo)
    where = f"{org}/{repo}" if repo is not None else org
    rkey = repo_key(src, org, repo) if repo is not None else org_key(src, org)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        hid = req_int(item)
        config = opt_dict(item, "config")
        host = url_host(config.get("url"))
        hook_name = opt_str(item, "name") or "web"
        active = opt_bool(item, "active", True)
        insecure = config.get("insecure_ssl")
        ckey = f"{src}:webhook:{where}/{hid}"
        cred = Credential(
            key=ckey, source=src, inventory=inv,
            name=f"{hook_name} hook to {host}" if host else f"{hook_name} hook {hid}",
            credential_type="webhook",
            created_at=opt_time(item, "created_at"),
            rotated_at=opt_time(item, "updated_at"),
            usage_tracked=False,
            privilege=Privilege.READ,
            status=Status.ACTIVE if active else Status.SUSPENDED,
            attributes={
                "id": hid,
                "hook_name": hook_name,
                "url_host": host,
                "events": str_list(item, "events"),
                "active": active,
                # GitHub masks the secret ("********"); we only note that there is one.
                "has_secret": bool(config.get("secret")),
                "insecure_ssl": str(insecure) in ("1", "true", "True") if insecure is not None else False,
                "content_type": config.get("content_type") if isinstance(config.get("content_type"), str) else None,
            },
        )
        grant = Grant(
            key=grant_key(src, ckey, rkey), source=src, inventory=inv, name=f"webhook {hid} on {where}",
            subject_key=ckey, resource_key=rkey, privilege=Privilege.READ,
        )
        return [cred, grant]

    _each(batch, items, "webhook", one)
    return batch


def transform_installations(src: str, org: str, items: Sequence[Any]) -> Batch:
    """GitHub App installations on the org -> Account ``app_installation`` (+ Grant to the org)."""
    inv = inventory_name(src, org, "installations")
    okey = org_key(src, org)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        iid = req_int(item)
        slug = opt_str(item, "app_slug") or f"app-{item.get('app_id')}"
        perms = _levels(opt_dict(item, "permissions"), "permissions")
        selection = opt_str(item, "repository_selection") or "all"
        level = app_permissions_privilege(perms)
        suspended_at = opt_time(item, "suspended_at")
        app_id = item.get("app_id")
        akey = f"{src}:installation:{org}/{iid}"
        scopes = tuple(sorted(f"{name}:{lvl}" for name, lvl in perms.items()))
        acc = Account(
            key=akey, source=src, inventory=inv, name=slug, url=opt_str(item, "html_url"),
            account_type="app_installation", is_human=False, login=slug,
            status=Status.SUSPENDED if suspended_at else Status.ACTIVE,
            created_at=opt_time(item, "created_at"),
            privilege=level,
            attributes={
                "installation_id": iid,
                "app_id": app_id if isinstance(app_id, int) and not isinstance(app_id, bool) else None,
                "permissions": dict(perms),
                "repository_selection": selection,
                "events": str_list(item, "events"),
                "suspended_at": suspended_at.isoformat() if suspended_at else None,
            },
        )
        grant = Grant(
            key=grant_key(src, akey, okey), source=src, inventory=inv, name=f"app {slug} on {org} ({selection} repositories)",
            subject_key=akey, resource_key=okey, privilege=level,
            scopes=scopes + (("repository_selection:selected",) if selection == "selected" else ()),
        )
        return [acc, grant]

    _each(batch, items, "installation", one)
    return batch


def transform_pat_grants(
    src: str, org: str, items: Sequence[Any], repositories: dict[int, Sequence[Any]] | None = None
) -> Batch:
    """Fine-grained PAT grants (``GET /orgs/{org}/personal-access-tokens``) -> Credential + Grants.

    ``repositories`` maps a grant ``id`` to the repositories of a ``subset`` grant
    (``GET /orgs/{org}/personal-access-tokens/{id}/repositories``).
    """
    inv = inventory_name(src, org, "pat_grants")
    okey = org_key(src, org)
    repositories = repositories or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        gid = req_int(item)
        token_id = req_int(item, "token_id")
        owner = opt_dict(item, "owner")
        login = req_str(owner, "login") if owner else req_str(item, "owner")
        ukey = user_key(src, login)
        perms = opt_dict(item, "permissions")
        groups: dict[str, dict[str, str]] = {}
        for group, levels in perms.items():
            if not isinstance(levels, dict):
                raise MalformedItem(f"permissions.{group} is not an object")
            groups[group] = _levels(levels, f"permissions.{group}")
        scopes = tuple(sorted(f"{g}:{name}:{lvl}" for g, levels in groups.items() for name, lvl in levels.items()))
        selection = opt_str(item, "repository_selection") or "none"
        ckey = f"{src}:fine_grained_pat:{org}/{token_id}"
        name = opt_str(item, "token_name") or f"fine-grained PAT {token_id}"
        expired = opt_bool(item, "token_expired", False)
        cred = Credential(
            key=ckey, source=src, inventory=inv, name=name,
            credential_type="fine_grained_pat",
            account_key=ukey,
            created_at=opt_time(item, "access_granted_at"),
            last_used_at=opt_time(item, "token_last_used_at"),
            expires_at=opt_time(item, "token_expires_at"),
            scopes=scopes,
            privilege=pat_permissions_privilege(groups),
            status=Status.EXPIRED if expired else Status.ACTIVE,
            owners=(Ownership(ref=ukey, evidence="fine-grained PAT owner (GitHub API)", confidence=1.0, role="owner"),),
            attributes={"grant_id": gid, "token_id": token_id, "owner_login": login, "repository_selection": selection},
        )
        records: list[Record] = [cred]
        org_groups = {g: lv for g, lv in groups.items() if g != "repository" or selection == "all"}
        if selection == "all" or any(org_groups.values()):
            records.append(
                Grant(
                    key=grant_key(src, ckey, okey), source=src, inventory=inv, name=f"PAT {name} on {org}",
                    subject_key=ckey, resource_key=okey, privilege=pat_permissions_privilege(org_groups),
                    scopes=tuple(s for s in scopes if selection == "all" or not s.startswith("repository:")),
                )
            )
        if selection == "subset":
            repo_groups = {"repository": groups.get("repository", {})}
            repo_scopes = tuple(s for s in scopes if s.startswith("repository:"))
            for repo in repositories.get(gid, ()):
                rname = req_str(repo, "name") if isinstance(repo, dict) else None
                if not rname:
                    raise MalformedItem("a granted repository has no name")
                rkey = repo_key(src, org, rname)
                records.append(
                    Grant(
                        key=grant_key(src, ckey, rkey), source=src, inventory=inv, name=f"PAT {name} on {org}/{rname}",
                        subject_key=ckey, resource_key=rkey, privilege=pat_permissions_privilege(repo_groups),
                        scopes=repo_scopes,
                    )
                )
        return records

    _each(batch, items, "fine-grained PAT grant", one)
    return batch


def transform_credential_authorizations(src: str, org: str, items: Sequence[Any], *, hmac_key: bytes) -> Batch:
    """SAML SSO credential authorizations -> Credential. ``token_last_eight`` is kept only as a keyed hash."""
    inv = inventory_name(src, org, "credential_authorizations")
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        cid = req_int(item, "credential_id")
        login = req_str(item, "login")
        raw_type = req_str(item, "credential_type")
        ctype = _SAML_CREDENTIAL_TYPES.get(raw_type.lower(), re.sub(r"[^a-z0-9]+", "_", raw_type.lower()).strip("_"))
        scopes = tuple(str_list(item, "scopes"))
        last_eight = opt_str(item, "token_last_eight")
        ukey = user_key(src, login)
        return [
            Credential(
                key=f"{src}:credential_authorization:{org}/{cid}", source=src, inventory=inv,
                name=opt_str(item, "authorized_credential_title") or f"{login} {raw_type}",
                credential_type=ctype,
                account_key=ukey,
                created_at=opt_time(item, "credential_authorized_at"),
                last_used_at=opt_time(item, "credential_accessed_at"),
                expires_at=opt_time(item, "authorized_credential_expires_at"),
                scopes=scopes,
                privilege=classic_scopes_privilege(scopes),
                owners=(Ownership(ref=ukey, evidence="SAML credential authorization (GitHub API)", confidence=1.0, role="owner"),),
                attributes={
                    "credential_id": cid,
                    "authorized_credential_id": item.get("authorized_credential_id"),
                    "credential_type_raw": raw_type,
                    "owner_login": login,
                    "fingerprint": opt_str(item, "fingerprint"),  # an SSH public-key fingerprint, not a secret
                    "note": opt_str(item, "authorized_credential_note"),
                    # Part of the token: only its keyed hash, to link leaked tokens later.
                    "last_eight_hmac": keyed_hash(hmac_key, last_eight) if last_eight else None,
                },
            )
        ]

    _each(batch, items, "credential authorization", one)
    return batch


def _ci_scope(src: str, org: str, repo: str | None, env: str | None) -> tuple[str, str, str]:
    """(key path, level, resource key) of an Actions secret or variable."""
    if env is not None and repo is not None:
        return f"{org}/{repo}/{env}", "environment", environment_key(src, org, repo, env)
    if repo is not None:
        return f"{org}/{repo}", "repo", repo_key(src, org, repo)
    return org, "org", org_key(src, org)


def _ci_grants(
    src: str, org: str, inv: str, ckey: str, name: str, level: str, resource: str, visibility: str | None,
    selected: Sequence[Any] | None,
) -> list[Record]:
    if level == "org" and visibility == "selected":
        out: list[Record] = []
        for repo in selected or ():
            rname = req_str(repo, "name") if isinstance(repo, dict) else None
            if not rname:
                raise MalformedItem("a selected repository has no name")
            rkey = repo_key(src, org, rname)
            out.append(Grant(key=grant_key(src, ckey, rkey), source=src, inventory=inv, name=f"{name} -> {org}/{rname}",
                             subject_key=ckey, resource_key=rkey, privilege=Privilege.READ, scopes=("selected",)))
        return out
    scopes = (visibility,) if visibility else ()
    return [Grant(key=grant_key(src, ckey, resource), source=src, inventory=inv, name=f"{name} -> {resource.split(':', 2)[-1]}",
                  subject_key=ckey, resource_key=resource, privilege=Privilege.READ, scopes=scopes)]


def transform_actions_secrets(
    src: str, org: str, items: Sequence[Any], *, repo: str | None = None, env: str | None = None,
    selected: dict[str, Sequence[Any]] | None = None, inventory: str | None = None,
) -> Batch:
    """Actions secrets (org, repo or environment) -> Credential + Grants. GitHub never returns values."""
    path, level, resource = _ci_scope(src, org, repo, env)
    inv = inventory or inventory_name(src, org, "actions_secrets", repo)
    selected = selected or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "name")
        visibility = opt_str(item, "visibility") if level == "org" else None
        ckey = f"{src}:actions_secret:{path}/{name}"
        cred = Credential(
            key=ckey, source=src, inventory=inv, name=name, credential_type="actions_secret",
            created_at=opt_time(item, "created_at"), rotated_at=opt_time(item, "updated_at"),
            usage_tracked=False, privilege=Privilege.READ,
            attributes={"visibility": visibility, "level": level, "scope": path},
        )
        return [cred, *_ci_grants(src, org, inv, ckey, name, level, resource, visibility, selected.get(name))]

    _each(batch, items, "actions secret", one)
    return batch


def transform_actions_variables(
    src: str, org: str, items: Sequence[Any], *, hmac_key: bytes, repo: str | None = None, env: str | None = None,
    selected: dict[str, Sequence[Any]] | None = None, inventory: str | None = None,
) -> Batch:
    """Actions variables -> Credential with ``value_hmac`` only: the plaintext value is never kept."""
    path, level, resource = _ci_scope(src, org, repo, env)
    inv = inventory or inventory_name(src, org, "actions_variables", repo)
    selected = selected or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "name")
        text = _variable_text(item.get("value"))
        visibility = opt_str(item, "visibility") if level == "org" else None
        ckey = f"{src}:actions_variable:{path}/{name}"
        cred = Credential(
            key=ckey, source=src, inventory=inv, name=name, credential_type="actions_variable",
            created_at=opt_time(item, "created_at"), rotated_at=opt_time(item, "updated_at"),
            usage_tracked=False, privilege=Privilege.READ,
            value_hmac=keyed_hash(hmac_key, text) if text is not None else None,
            preview=None,
            attributes={"visibility": visibility, "level": level, "scope": path,
                        "value_length": len(text) if text is not None else None},
        )
        # A credential in a plain variable is an exposure (variables are never masked): only its
        # keyed hash and preview are kept, as for any leak the secret engine finds.
        leaks = exposures_in_variable(src=src, inventory=inv, scope=path, kind="actions_variable", name=name, value=text,
                                      hmac_key=hmac_key)
        return [cred, *leaks, *_ci_grants(src, org, inv, ckey, name, level, resource, visibility, selected.get(name))]

    _each(batch, items, "actions variable", one)
    return batch


EnvironmentListing = tuple[Any, Sequence[Any], Sequence[Any]]  # (environment, its secrets, its variables)


def transform_environments(
    src: str, org: str, repo: str, environments: Sequence[EnvironmentListing], *, hmac_key: bytes
) -> Batch:
    """Deployment environments (Resources) with their secrets and variables, all under the repo's
    ``environments`` inventory."""
    inv = inventory_name(src, org, "environments", repo)
    rkey = repo_key(src, org, repo)
    batch = Batch()
    for index, (env, secrets, variables) in enumerate(environments):
        try:
            if not isinstance(env, dict):
                raise MalformedItem(f"is a JSON {type(env).__name__}, not an object")
            name = req_str(env, "name")
            html = opt_str(env, "html_url")
        except MalformedItem as err:
            batch.skipped.append(f"environment #{index}{_label(env)}: {err}")
            continue
        batch.records.append(
            Resource(key=environment_key(src, org, repo, name), source=src, inventory=inv, name=f"{org}/{repo}/{name}",
                     url=html, resource_type="environment", parent_key=rkey)
        )
        batch.extend(transform_actions_secrets(src, org, secrets, repo=repo, env=name, inventory=inv))
        batch.extend(transform_actions_variables(src, org, variables, hmac_key=hmac_key, repo=repo, env=name, inventory=inv))
    return batch


def transform_runners(src: str, org: str, items: Sequence[Any], repo: str | None = None) -> Batch:
    """Self-hosted runners -> Account ``runner`` (offline runners are SUSPENDED)."""
    inv = inventory_name(src, org, "runners", repo)
    where = f"{org}/{repo}" if repo is not None else org
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        rid = req_int(item)
        labels = []
        for label in opt_list(item, "labels"):
            if isinstance(label, dict) and isinstance(label.get("name"), str):
                labels.append(label["name"])
            elif isinstance(label, str):
                labels.append(label)
            else:
                raise MalformedItem("labels hold an entry without a name")
        status = opt_str(item, "status")
        return [
            Account(
                key=f"{src}:runner:{where}/{rid}", source=src, inventory=inv,
                name=opt_str(item, "name") or f"runner {rid}",
                account_type="runner", is_human=False, login=opt_str(item, "name"),
                status=Status.ACTIVE if status == "online" else Status.SUSPENDED,
                privilege=Privilege.READ,
                attributes={"id": rid, "os": opt_str(item, "os"), "labels": labels,
                            "ephemeral": opt_bool(item, "ephemeral"), "busy": opt_bool(item, "busy"),
                            "status": status, "runner_group_id": item.get("runner_group_id")},
            )
        ]

    _each(batch, items, "runner", one)
    return batch


# --- clients ----------------------------------------------------------------------------------


def _retry(source: GitHubSource) -> GithubRetry:
    # GithubRetry waits out primary (X-RateLimit-Reset) and secondary (Retry-After) rate limits on
    # 403; 429 and 5xx are retried too, honouring Retry-After, with a short exponential backoff.
    return GithubRetry(total=source.max_retries, backoff_factor=0.5, status_forcelist=list(range(500, 600)) + [429])


def _client_kwargs(source: GitHubSource) -> dict[str, Any]:
    return {
        "base_url": source.base_url.rstrip("/"),
        "per_page": source.per_page,
        "timeout": source.timeout,
        "retry": _retry(source),
        "seconds_between_requests": None,
        "seconds_between_writes": None,
        "user_agent": "nhiscan",
    }


def token_client(source: GitHubSource, config: Config) -> Github:
    """A PyGithub client authenticated with the source's token (read now, never logged)."""
    token = read_secret(config, env=source.token_env, file=source.token_file, what=f"sources.github[{source.name}]")
    return Github(auth=Auth.Token(token), **_client_kwargs(source))


def app_auth(source: GitHubSource, config: Config) -> Auth.AppAuth:
    key = read_secret(config, env=source.app_private_key_env, file=source.app_private_key_file,
                      what=f"sources.github[{source.name}] app private key")
    return Auth.AppAuth(source.app_id, key)


def installation_client(source: GitHubSource, auth: Auth.AppAuth, org: str) -> Github:
    """A client acting as the App's installation on ``org`` (id from config, else looked up)."""
    installation_id = source.installation_ids.get(org)
    if installation_id is None:
        integration = GithubIntegration(auth=auth, **_client_kwargs(source))
        try:
            installation_id = integration.get_org_installation(org).id
        finally:
            integration.close()
    return Github(auth=auth.get_installation_auth(installation_id), **_client_kwargs(source))


# --- I/O (PyGithub) -----------------------------------------------------------------------------


class _RawItem(NonCompletableGithubObject):
    """A listing item kept as the JSON GitHub sent, for endpoints PyGithub does not wrap."""

    def _initAttributes(self) -> None:
        pass

    def _useAttributes(self, attributes: Any) -> None:
        pass


_raw_data = GithubObject.raw_data.fget  # the payload as received; Completable.raw_data would re-fetch the object


def raw(obj: Any) -> Any:
    """The JSON object GitHub sent for ``obj`` in its listing, without another request."""
    return _raw_data(obj)


def listing(paginated: Iterable[Any]) -> list[Any]:
    """Every page of a PyGithub listing, as raw dicts."""
    items = [raw(o) for o in paginated]
    if items and not any(isinstance(i, dict) for i in items):
        # PyGithub turns a non-JSON body into {"data": "<text>"}; iterating it yields strings.
        raise MalformedResponse("the response was not a JSON list of objects")
    return items


def _paged(gh: Github, path: str, list_item: str | None = None) -> list[Any]:
    """Page an endpoint PyGithub has no wrapper for (relative ``path`` under the API base)."""
    if list_item is None:
        return listing(PaginatedList(_RawItem, gh.requester, path, None))
    return listing(PaginatedList(_RawItem, gh.requester, path, None, list_item=list_item))


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def get_org(gh: Github, org: str) -> tuple[Any, dict[str, Any]]:
    """``GET /orgs/{org}``: the Organization object (for its listings) and its raw payload."""
    obj = gh.get_organization(org)
    data = raw(obj)
    if not isinstance(data, dict):
        raise MalformedResponse("the organization response was not a JSON object")
    return obj, data


def get_repos(org_obj: Any) -> list[tuple[Any, Any]]:
    """All the org's repositories as (Repository, raw) pairs."""
    pairs = [(r, raw(r)) for r in org_obj.get_repos(type="all")]
    if pairs and not any(isinstance(d, dict) for _, d in pairs):
        raise MalformedResponse("the response was not a JSON list of objects")
    return pairs


def get_members(org_obj: Any) -> tuple[list[Any], list[Any]]:
    """(owners, members): the role is a filter, not a field, so the org is listed once per role."""
    return listing(org_obj.get_members(role="admin")), listing(org_obj.get_members(role="member"))


def get_mfa_disabled(paginated: Iterable[Any]) -> set[str]:
    """Logins from a ``filter=2fa_disabled`` listing (owners only)."""
    return {i["login"] for i in listing(paginated) if isinstance(i, dict) and isinstance(i.get("login"), str)}


def get_user_profile(gh: Github, login: str) -> dict[str, Any] | None:
    """``GET /users/{login}``: public email, display name and creation date."""
    data = raw(gh.get_user(login))
    return data if isinstance(data, dict) else None


def get_repo_outside_collaborators(repo_obj: Any) -> list[Any]:
    return listing(repo_obj.get_collaborators(affiliation="outside"))


def get_pat_grants(gh: Github, org: str) -> tuple[list[Any], dict[int, list[Any]]]:
    """Fine-grained PAT grants and, for ``subset`` grants, their repositories (App installation only)."""
    base = f"/orgs/{_quote(org)}/personal-access-tokens"
    grants = _paged(gh, base)
    repos: dict[int, list[Any]] = {}
    for g in grants:
        if isinstance(g, dict) and g.get("repository_selection") == "subset" and isinstance(g.get("id"), int):
            repos[g["id"]] = _paged(gh, f"{base}/{g['id']}/repositories")
    return grants, repos


def get_credential_authorizations(gh: Github, org: str) -> list[Any]:
    return _paged(gh, f"/orgs/{_quote(org)}/credential-authorizations")


def _selected_repos(gh: Github, items: list[Any], path: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        if isinstance(item, dict) and item.get("visibility") == "selected" and isinstance(item.get("name"), str):
            out[item["name"]] = _paged(gh, f"{path}/{_quote(item['name'])}/repositories", "repositories")
    return out


def get_org_actions_secrets(gh: Github, org_obj: Any, org: str) -> tuple[list[Any], dict[str, list[Any]]]:
    items = listing(org_obj.get_secrets())
    return items, _selected_repos(gh, items, f"/orgs/{_quote(org)}/actions/secrets")


def get_org_actions_variables(gh: Github, org_obj: Any, org: str) -> tuple[list[Any], dict[str, list[Any]]]:
    items = listing(org_obj.get_variables())
    return items, _selected_repos(gh, items, f"/orgs/{_quote(org)}/actions/variables")


def get_environments(repo_obj: Any) -> list[EnvironmentListing]:
    out: list[EnvironmentListing] = []
    for env in repo_obj.get_environments():
        data = raw(env)
        out.append((data, listing(env.get_secrets()), listing(env.get_variables())))
    return out


# --- errors -> coverage reasons ----------------------------------------------------------------


def _github_message(err: GithubException) -> str:
    data = err.data if isinstance(err.data, dict) else {}
    msg = data.get("message")
    if not isinstance(msg, str) or not msg.strip():
        return ""
    return f" ({' '.join(msg.split())[:160]})"


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A human reason for a failed read: HTTP status, what went wrong, what access is needed.

    Built from the status and GitHub's message only — never from ``str(err)``, which can carry
    the response body or request details.
    """
    if isinstance(err, RateLimitExceededException):
        return f"HTTP {err.status}: rate limit exceeded and not recovered within the retry budget{_github_message(err)}"
    if isinstance(err, GithubException):
        status, msg = err.status, _github_message(err)
        if status == 401:
            return f"HTTP 401: credentials rejected (bad, expired or revoked token or App key){msg}"
        if status == 403:
            return f"HTTP 403: forbidden{msg}; needs {need}"
        if status == 404:
            return f"HTTP 404: not found{msg}; the endpoint is unavailable or hidden from this credential; needs {need}"
        if status == 429:
            return f"HTTP 429: rate limited and not recovered within the retry budget{msg}"
        if status >= 500:
            return f"HTTP {status}: server error{msg}"
        return f"HTTP {status}{msg}"
    if isinstance(err, requests.exceptions.RetryError):
        m = re.search(r"too many (\d{3}) error responses", str(err))
        code = m.group(1) if m else "5xx"
        return f"HTTP {code}: errors persisted after all retries"
    if isinstance(err, requests.exceptions.Timeout) or (
        isinstance(err, requests.exceptions.ConnectionError) and "timed out" in str(err).lower()
    ):
        after = f" after {timeout:g}s" if timeout else ""
        return f"request timed out{after} (retries exhausted)"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "could not connect to the GitHub API (retries exhausted)"
    if isinstance(err, json.JSONDecodeError):
        return "malformed response: the body is not valid JSON"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, ConfigError):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


class _RedactClientBodies(logging.Filter):
    """PyGithub's DEBUG log line carries request and response bodies (Actions variable values,
    installation tokens). Keep the line, drop the bodies."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 9:
            args = list(record.args)
            args[5] = "<request body withheld by nhiscan>" if args[5] is not None else None
            args[8] = "<response body withheld by nhiscan>"
            record.args = tuple(args)
        return True


def _guard_client_logs() -> None:
    logger = logging.getLogger("github.Requester")
    if not any(isinstance(f, _RedactClientBodies) for f in logger.filters):
        logger.addFilter(_RedactClientBodies())


def _off_when_404(reason: str) -> Callable[[BaseException], str | None]:
    """For an endpoint that exists only with a feature: its 404 means the feature is off, not a failure."""

    def explain(err: BaseException) -> str | None:
        return f"{reason} (HTTP 404)" if isinstance(err, GithubException) and err.status == 404 else None

    return explain


# --- collect ------------------------------------------------------------------------------------


def collect(
    source: GitHubSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Read every configured inventory of one GitHub source; never raises for an API failure.

    ``progress(msg)`` is called as each inventory finishes. Each inventory appears in
    ``coverage`` — ok with its record count, or a gap with the reason.
    """
    _guard_client_logs()
    run = _Collector(source, hmac_key, progress)
    run.run(config)
    return run.result


class _Collector(CollectorRun):
    vendor = "github"
    merge = "privilege"  # the same user in two orgs of this source: keep their highest standing

    def __init__(self, source: GitHubSource, hmac_key: bytes, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: GitHubSource = source
        self.hmac_key = hmac_key
        self.profiles: dict[str, dict[str, Any] | None] = {}
        self.wanted = set(self.requested(sorted(INVENTORY_NAMES)))

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    # -- the run

    def run(self, config: Config) -> None:
        source = self.source
        token_gh: Github | None = None
        auth: Auth.AppAuth | None = None
        clients: list[Github] = []
        try:
            if source.token_env or source.token_file:
                token_gh = token_client(source, config)
                clients.append(token_gh)
            if source.app_id is not None:
                auth = app_auth(source, config)
        except ConfigError as err:
            for org in source.orgs:
                self._gap_org(org, f"credentials not available: {err}")
            return
        try:
            for org in source.orgs:
                self._collect_org(org, token_gh, auth, clients)
        finally:
            for gh in clients:
                try:
                    gh.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass

    def _org_inventories(self) -> list[str]:
        names = [s for s in ORG_INVENTORIES if s in self.wanted]
        if "repos" not in names and self.wanted & set(REPO_INVENTORIES):
            names.insert(0, "repos")  # per-repo inventories need the repository list
        return names

    def _gap_org(self, org: str, reason: str, *, skip: Iterable[str] = ()) -> None:
        for short in self._org_inventories():
            if short not in skip:
                self.gap(inventory_name(self.src, org, short), reason)

    def _collect_org(self, org: str, token_gh: Github | None, auth: Auth.AppAuth | None, clients: list[Github]) -> None:
        src, source = self.src, self.source
        app_gh: Github | None = None
        app_problem = PAT_GRANTS_NEED_APP
        if auth is not None:
            try:
                app_gh = installation_client(source, auth, org)
                clients.append(app_gh)
            except Exception as err:  # noqa: BLE001
                app_problem = (f"GitHub App {source.app_id} installation on {org} not usable: "
                               + describe_error(err, "the App installed on the organization", source.timeout))
        main = token_gh or app_gh
        if main is None:
            self._gap_org(org, app_problem)
            return

        try:
            org_obj, org_raw = get_org(main, org)
        except Exception as err:  # noqa: BLE001
            who = "token" if token_gh is not None else "App installation"
            reason = f"organization {org} could not be read with the {who}: " + describe_error(
                err, "membership of the organization", source.timeout)
            self._gap_org(org, reason, skip=("pat_grants",))
            if "pat_grants" in self.wanted:
                self._pat_grants(org, app_gh, app_problem)  # its own credential: the App
            return

        inv = lambda short: inventory_name(src, org, short)  # noqa: E731
        repos: list[tuple[Any, str]] = []

        for short in self._org_inventories():
            need = _ORG_NEEDS[short]
            if short == "repos":
                def read_repos() -> Batch:
                    pairs = get_repos(org_obj)
                    batch = transform_repos(src, org, [d for _, d in pairs], org_raw)
                    repos.extend((obj, d["name"]) for obj, d in pairs
                                 if isinstance(d, dict) and isinstance(d.get("name"), str) and d["name"])
                    return batch

                if self.read(inv(short), need, read_repos):
                    if set(REPO_INVENTORIES) <= self.wanted:
                        # Every per-repo inventory was enumerated: one not reported again belongs to a deleted repo.
                        self.result.complete_scopes.append(f"{src}:{org}/")
                else:
                    for rshort in REPO_INVENTORIES:
                        if rshort in self.wanted:
                            self.gap(inventory_name(src, org, rshort, "*"),
                                     f"repository list of {org} not read, so no repository could be listed")
                    repos.clear()
            elif short == "members":
                self.read(inv(short), need, lambda: self._members(main, org_obj, org))
            elif short == "outside_collaborators":
                self.read(inv(short), need, lambda: self._outside(main, org_obj, org))
            elif short == "hooks":
                self.read(inv(short), need, lambda: transform_hooks(src, org, listing(org_obj.get_hooks())))
            elif short == "installations":
                self.read(inv(short), need, lambda: transform_installations(src, org, listing(org_obj.get_installations())))
            elif short == "pat_grants":
                self._pat_grants(org, app_gh, app_problem)
            elif short == "credential_authorizations":
                self.read(inv(short), need,
                          lambda: transform_credential_authorizations(
                              src, org, get_credential_authorizations(main, org), hmac_key=self.hmac_key),
                          explain=_off_when_404(SAML_NOT_ENABLED))
            elif short == "actions_secrets":
                def read_secrets() -> Batch:
                    items, selected = get_org_actions_secrets(main, org_obj, org)
                    return transform_actions_secrets(src, org, items, selected=selected)

                self.read(inv(short), need, read_secrets)
            elif short == "actions_variables":
                def read_variables() -> Batch:
                    items, selected = get_org_actions_variables(main, org_obj, org)
                    return transform_actions_variables(src, org, items, hmac_key=self.hmac_key, selected=selected)

                self.read(inv(short), need, read_variables)
            elif short == "runners":
                self.read(inv(short), need, lambda: transform_runners(src, org, listing(org_obj.get_self_hosted_runners())))

        for repo_obj, name in repos:
            self._collect_repo(org, repo_obj, name)

    def _pat_grants(self, org: str, app_gh: Github | None, app_problem: str) -> None:
        inventory = inventory_name(self.src, org, "pat_grants")
        if app_gh is None:
            self.gap(inventory, app_problem)
            return

        def read() -> Batch:
            grants, repos = get_pat_grants(app_gh, org)
            return transform_pat_grants(self.src, org, grants, repos)

        self.read(inventory, _ORG_NEEDS["pat_grants"], read)

    def _mfa_disabled(self, inventory: str, paginated: Iterable[Any]) -> set[str] | None:
        try:
            return get_mfa_disabled(paginated)
        except Exception as err:  # noqa: BLE001 - refused unless the credential is an owner
            log.info("github %s: 2FA status not available (%s); mfa_enabled left unknown", inventory,
                     describe_error(err, "organization owner", self.source.timeout))
            return None

    def _profiles_for(self, gh: Github, logins: Iterable[str]) -> dict[str, Any]:
        if not self.source.resolve_member_emails:
            return {}
        for login in logins:
            if login in self.profiles:
                continue
            try:
                self.profiles[login] = get_user_profile(gh, login)
            except Exception as err:  # noqa: BLE001 - an email we cannot resolve is just unknown
                log.info("github %s: profile of %s not read (%s)", self.src, login,
                         describe_error(err, "any authenticated credential", self.source.timeout))
                self.profiles[login] = None
        return {k: v for k, v in self.profiles.items() if v is not None}

    @staticmethod
    def _logins(*lists: Sequence[Any]) -> list[str]:
        return [i["login"] for items in lists for i in items if isinstance(i, dict) and isinstance(i.get("login"), str)]

    def _members(self, gh: Github, org_obj: Any, org: str) -> Batch:
        admins, members = get_members(org_obj)
        mfa = self._mfa_disabled(inventory_name(self.src, org, "members"), org_obj.get_members(filter_="2fa_disabled"))
        profiles = self._profiles_for(gh, self._logins(admins, members))
        return transform_members(self.src, org, admins, members, mfa_disabled=mfa, profiles=profiles,
                                 machine_user_patterns=self.source.machine_user_patterns)

    def _outside(self, gh: Github, org_obj: Any, org: str) -> Batch:
        items = listing(org_obj.get_outside_collaborators())
        mfa = self._mfa_disabled(inventory_name(self.src, org, "outside_collaborators"),
                                 org_obj.get_outside_collaborators(filter_="2fa_disabled"))
        profiles = self._profiles_for(gh, self._logins(items))
        return transform_outside_collaborators(self.src, org, items, mfa_disabled=mfa, profiles=profiles,
                                               machine_user_patterns=self.source.machine_user_patterns)

    def _collect_repo(self, org: str, repo_obj: Any, repo: str) -> None:
        src = self.src
        readers: dict[str, Callable[[], Batch]] = {
            "outside_collaborators": lambda: transform_repo_collaborators(src, org, repo, get_repo_outside_collaborators(repo_obj)),
            "deploy_keys": lambda: transform_deploy_keys(src, org, repo, listing(repo_obj.get_keys())),
            "hooks": lambda: transform_hooks(src, org, listing(repo_obj.get_hooks()), repo=repo),
            "actions_secrets": lambda: transform_actions_secrets(src, org, listing(repo_obj.get_secrets()), repo=repo),
            "actions_variables": lambda: transform_actions_variables(
                src, org, listing(repo_obj.get_variables()), hmac_key=self.hmac_key, repo=repo),
            "environments": lambda: transform_environments(src, org, repo, get_environments(repo_obj), hmac_key=self.hmac_key),
            "runners": lambda: transform_runners(src, org, listing(repo_obj.get_self_hosted_runners()), repo=repo),
        }
        for short in REPO_INVENTORIES:
            if short in self.wanted:
                self.read(inventory_name(src, org, short, repo), _REPO_NEEDS[short], readers[short])
