"""A stateful, wire-compatible emulator of the GitLab REST API v4 (the parts nhiscan reads).

python-gitlab takes the server root (``gitlab.Gitlab(url, private_token=...)``) and appends
``/api/v4`` itself, so ``URL_SUFFIX`` is empty. The emulator is a plain WSGI app seeded from the
estate's ``gitlab:`` section (see ``sandbox/README.md``, "GitLab"), which it reads on every request:
change ``emulator.state`` (ideally inside ``with emulator.mutate():``) and the next call sees it.

What it models, and why:

* **Auth like GitLab.** Estate tokens in ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``); an
  unknown or expired token gets 401 ``{"message": "401 Unauthorized"}``; a token without
  ``api``/``read_api`` gets 403 ``insufficient_scope``. The token acts as its user: an instance
  administrator sees everything, anyone else sees what their group and project roles allow.
  Admin-only endpoints answer 403 ``{"message": "403 Forbidden"}`` to non-admins, and
  ``GET /personal_access_tokens`` shows a non-admin only their own tokens, as GitLab does: a scanner
  must be able to tell "none" from "not allowed to see".
* **Offset pagination** with ``page``/``per_page`` (default 20, at most 100), ``Link`` (built from
  the request's own host), ``X-Page``, ``X-Per-Page``, ``X-Next-Page``, ``X-Prev-Page``,
  ``X-Total`` and ``X-Total-Pages``, which python-gitlab follows.
* **Fault injection** per token: 429 with ``Retry-After`` (python-gitlab's ``obey_rate_limit``
  waits it out), 500, 403, truncated JSON, a malformed list item, slow answers.
* **A control plane** under ``/_emu/`` (request log, reset) and a Python mutation API.

Nothing here logs a token, a variable value or a response body: the request log keeps the last
four characters of the credential only.
"""

import difflib
import hashlib
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, Callable, Iterator, Literal, Optional
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from .emulator import (
    Emulator,
    RequestFault,
    half,
    int_arg,
    link_header,
    numbered_page,
    page_url,
    request_entry,
    request_fault,
)
from .emulator import json_response as _json
from .estate import (
    Estate,
    Timestamp,
    _build,
    _check_unique,
    _Ctx,
    _fake_ssh_key,
    _stable_id,
)

#: python-gitlab appends ``/api/v4`` to the root URL itself.
URL_SUFFIX = ""
API_PREFIX = "/api/v4"
GITLAB_VERSION = "17.5.0-ee"

# --------------------------------------------------------------------------------------------
# The estate section. No ``from __future__ import annotations`` in this module: the estate
# builder resolves these annotations as objects, not as strings in another module's namespace.

AccessLevel = Literal["guest", "planner", "reporter", "developer", "maintainer", "owner"]
ACCESS_LEVELS: dict[str, int] = {"guest": 10, "planner": 15, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}
ADMIN_LEVEL = 60  # an instance administrator can do what an owner can, everywhere

#: Personal, impersonation, project/group and service-account token scopes GitLab accepts.
TOKEN_SCOPES = frozenset(
    """api read_api read_user create_runner manage_runner k8s_proxy read_repository write_repository
    read_registry write_registry read_virtual_registry write_virtual_registry ai_features sudo admin_mode
    read_service_ping self_rotate read_observability write_observability""".split()
)
#: Deploy token scopes.
DEPLOY_TOKEN_SCOPES = frozenset(
    """read_repository read_registry write_registry read_package_registry write_package_registry
    read_virtual_registry write_virtual_registry""".split()
)

FaultKind = Literal["too_many_requests", "server_error", "forbidden", "malformed_json", "malformed_item", "timeout"]
UserState = Literal["active", "blocked", "deactivated"]
Visibility = Literal["private", "internal", "public"]
RunnerStatus = Literal["online", "offline", "stale", "never_contacted"]


@dataclass
class Fault(RequestFault):
    """One injected failure for requests made with one token."""

    fault: FaultKind


@dataclass
class ApiToken:
    """A token that may call the API, acting as ``user`` (a user or service account username)."""

    token: str
    user: str
    scopes: list[str] = field(default_factory=lambda: ["api"])
    faults: list[Fault] = field(default_factory=list)
    expires_at: Optional[Timestamp] = None


@dataclass
class AccessToken:
    """A personal access token, an impersonation token, or a service account's token."""

    name: str
    scopes: list[str]
    id: Optional[int] = None
    description: Optional[str] = None
    created_at: Timestamp = None  # type: ignore[assignment]  # default: the estate's now
    last_used_at: Optional[Timestamp] = None
    expires_at: Optional[Timestamp] = None  # served as a date (YYYY-MM-DD)
    revoked: bool = False


@dataclass
class ResourceAccessToken:
    """A group or project access token. Each one is held by its own bot user."""

    name: str
    scopes: list[str]
    access_level: AccessLevel = "maintainer"
    id: Optional[int] = None
    description: Optional[str] = None
    created_at: Timestamp = None  # type: ignore[assignment]
    last_used_at: Optional[Timestamp] = None
    expires_at: Optional[Timestamp] = None
    revoked: bool = False
    created_by: Optional[str] = None  # username of whoever created it (the bot's created_by)
    user_id: Optional[int] = None  # the bot user's id
    username: Optional[str] = None  # the bot user's username; default {group|project}_<id>_bot_<hex>


@dataclass
class User:
    username: str
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    is_admin: bool = False
    bot: bool = False
    state: UserState = "active"
    external: bool = False
    two_factor_enabled: bool = True
    created_at: Timestamp = None  # type: ignore[assignment]
    last_activity_on: Optional[Timestamp] = None
    last_sign_in_at: Optional[Timestamp] = None
    created_by: Optional[str] = None
    personal_access_tokens: list[AccessToken] = field(default_factory=list)
    impersonation_tokens: list[AccessToken] = field(default_factory=list)


@dataclass
class ServiceAccount:
    username: str
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None  # default {username}@noreply.gitlab.example
    state: UserState = "active"
    created_at: Timestamp = None  # type: ignore[assignment]
    last_activity_on: Optional[Timestamp] = None
    created_by: Optional[str] = None
    personal_access_tokens: list[AccessToken] = field(default_factory=list)


@dataclass
class DeployToken:
    name: str
    scopes: list[str]
    id: Optional[int] = None
    username: Optional[str] = None  # default gitlab+deploy-token-<id>
    expires_at: Optional[Timestamp] = None
    revoked: bool = False


@dataclass
class DeployKey:
    """An SSH deploy key; ``projects`` maps each project it is enabled on to ``can_push``."""

    title: str
    id: Optional[int] = None
    key: Optional[str] = None
    created_at: Timestamp = None  # type: ignore[assignment]
    expires_at: Optional[Timestamp] = None
    created_by: Optional[str] = None
    public: bool = False
    projects: dict[str, bool] = field(default_factory=dict)


@dataclass
class Variable:
    key: str
    value: str = ""
    variable_type: Literal["env_var", "file"] = "env_var"
    protected: bool = False
    masked: bool = False
    hidden: bool = False  # the value is never returned (GitLab 17.4+)
    raw: bool = False
    environment_scope: str = "*"
    description: Optional[str] = None


@dataclass
class Runner:
    description: str
    id: Optional[int] = None
    name: Optional[str] = None
    paused: bool = False
    status: RunnerStatus = "online"
    contacted_at: Optional[Timestamp] = None  # default: now when online
    created_at: Timestamp = None  # type: ignore[assignment]
    created_by: Optional[str] = None
    tag_list: list[str] = field(default_factory=list)
    run_untagged: bool = True
    locked: bool = False
    access_level: Literal["not_protected", "ref_protected"] = "not_protected"
    version: str = "17.5.0"
    projects: list[str] = field(default_factory=list)  # project runners: other projects it is assigned to


@dataclass
class Group:
    full_path: str
    id: Optional[int] = None
    name: Optional[str] = None
    description: Optional[str] = None
    visibility: Visibility = "private"
    created_at: Timestamp = None  # type: ignore[assignment]
    members: dict[str, AccessLevel] = field(default_factory=dict)
    access_tokens: list[ResourceAccessToken] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    deploy_tokens: list[DeployToken] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    @property
    def parent_path(self) -> str | None:
        return self.full_path.rsplit("/", 1)[0] if "/" in self.full_path else None


@dataclass
class Project:
    path_with_namespace: str
    id: Optional[int] = None
    name: Optional[str] = None
    description: Optional[str] = None
    visibility: Visibility = "private"
    archived: bool = False
    default_branch: str = "main"
    created_at: Timestamp = None  # type: ignore[assignment]
    last_activity_at: Optional[Timestamp] = None
    members: dict[str, AccessLevel] = field(default_factory=dict)
    access_tokens: list[ResourceAccessToken] = field(default_factory=list)
    deploy_tokens: list[DeployToken] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    @property
    def namespace_path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0]

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[1]


@dataclass
class GitLabEstate:
    tokens: list[ApiToken] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    deploy_keys: list[DeployKey] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    # -- lookups ---------------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        return next((u for u in self.users if u.username.lower() == username.lower()), None)

    def group(self, full_path: str) -> Group | None:
        return next((g for g in self.groups if g.full_path.lower() == full_path.lower()), None)

    def project(self, path: str) -> Project | None:
        return next((p for p in self.projects if p.path_with_namespace.lower() == path.lower()), None)

    def token(self, value: str) -> ApiToken | None:
        return next((t for t in self.tokens if t.token == value), None)

    def deploy_key(self, title: str) -> DeployKey | None:
        return next((k for k in self.deploy_keys if k.title == title), None)

    # -- mutations a test (or a remediation demo) makes ---------------------------------------

    def revoke_personal_access_token(self, username: str, name: str) -> AccessToken:
        """Revoke a user's (or service account's) token by name; returns it. KeyError if absent."""
        for owner in self._token_holders():
            if owner.username.lower() == username.lower():
                for tok in owner.personal_access_tokens:
                    if tok.name == name:
                        tok.revoked = True
                        return tok
        raise KeyError(f"no personal access token {name!r} of {username!r}")

    def remove_access_token(self, where: str, name: str) -> ResourceAccessToken:
        """Delete a group or project access token (``where`` is the full path); its bot goes with it."""
        owner = self.group(where) or self.project(where)
        if owner is not None:
            for tok in owner.access_tokens:
                if tok.name == name:
                    owner.access_tokens.remove(tok)
                    return tok
        raise KeyError(f"no access token {name!r} on {where!r}")

    def remove_deploy_token(self, where: str, name: str) -> DeployToken:
        owner = self.group(where) or self.project(where)
        if owner is not None:
            for tok in owner.deploy_tokens:
                if tok.name == name:
                    owner.deploy_tokens.remove(tok)
                    return tok
        raise KeyError(f"no deploy token {name!r} on {where!r}")

    def remove_deploy_key(self, title: str) -> DeployKey:
        key = self.deploy_key(title)
        if key is None:
            raise KeyError(f"no deploy key titled {title!r}")
        self.deploy_keys.remove(key)
        return key

    def block_user(self, username: str) -> User:
        user = self.user(username)
        if user is None:
            raise KeyError(f"no user {username!r}")
        user.state = "blocked"
        return user

    def _token_holders(self) -> list[Any]:
        holders: list[Any] = list(self.users) + list(self.service_accounts)
        for g in self.groups:
            holders += g.service_accounts
        return holders


# --------------------------------------------------------------------------------------------
# Parsing and validation (called by sandbox.estate.load_estate for the ``gitlab:`` key)


def parse_estate(raw: Any, ctx: _Ctx, path: str) -> GitLabEstate:
    """Build and validate the ``gitlab:`` section; raises ``EstateError`` naming the YAML path."""
    state = _build(GitLabEstate, raw, path, ctx)
    _finalize(state, ctx, path)
    return state


def _finalize(gl: GitLabEstate, ctx: _Ctx, path: str) -> None:
    now = ctx.now
    _check_unique(gl.tokens, "token", f"{path}.tokens", ctx, fold=False)
    _check_unique(gl.users, "username", f"{path}.users", ctx)
    _check_unique(gl.service_accounts, "username", f"{path}.service_accounts", ctx)
    _check_unique(gl.groups, "full_path", f"{path}.groups", ctx)
    _check_unique(gl.projects, "path_with_namespace", f"{path}.projects", ctx)
    _check_unique(gl.deploy_keys, "title", f"{path}.deploy_keys", ctx, fold=False)
    _check_unique(gl.runners, "description", f"{path}.runners", ctx, fold=False)
    _check_variables(gl.variables, f"{path}.variables", ctx, instance=True)

    group_paths = {g.full_path.lower() for g in gl.groups}
    for gi, g in enumerate(gl.groups):
        gp = f"{path}.groups[{gi}]"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", g.full_path):
            raise ctx.error(f"{gp}.full_path", f"expected a path like 'acme' or 'acme/platform', got {g.full_path!r}")
        if g.parent_path is not None and g.parent_path.lower() not in group_paths:
            raise ctx.error(f"{gp}.full_path", f"parent group {g.parent_path!r} is not in {path}.groups")
        if g.service_accounts and g.parent_path is not None:
            raise ctx.error(f"{gp}.service_accounts", "service accounts belong to top-level groups only")
        _check_owned(g, gp, ctx)

    user_names = {u.username.lower() for u in gl.users}
    for pi, p in enumerate(gl.projects):
        pp = f"{path}.projects[{pi}]"
        if "/" not in p.path_with_namespace:
            raise ctx.error(f"{pp}.path_with_namespace", f"expected 'namespace/project', got {p.path_with_namespace!r}")
        ns = p.namespace_path.lower()
        if ns not in group_paths and ns not in user_names:
            raise ctx.error(f"{pp}.path_with_namespace", f"namespace {p.namespace_path!r} is neither a group nor a user")
        if p.path_with_namespace.lower() in group_paths:
            raise ctx.error(f"{pp}.path_with_namespace", "a group with the same path exists")
        _check_owned(p, pp, ctx)

    # Usernames are one namespace: people, service accounts and the bots tokens create.
    names: dict[str, str] = {}

    def claim(username: str, where: str) -> None:
        low = username.lower()
        if low in names:
            raise ctx.error(where, f"username {username!r} is already used at {names[low]}")
        names[low] = where

    for ui, u in enumerate(gl.users):
        claim(u.username, f"{path}.users[{ui}].username")
    for si, s in enumerate(gl.service_accounts):
        claim(s.username, f"{path}.service_accounts[{si}].username")
    for gi, g in enumerate(gl.groups):
        for si, s in enumerate(g.service_accounts):
            claim(s.username, f"{path}.groups[{gi}].service_accounts[{si}].username")
    for where, owner in _resource_owners(gl, path):
        for ti, t in enumerate(owner.access_tokens):
            if t.username:
                claim(t.username, f"{where}.access_tokens[{ti}].username")

    def need_principal(username: str | None, where: str) -> None:
        if username is not None and username.lower() not in names:
            raise ctx.error(where, f"no user or service account {username!r} in {path}")

    callers = user_names | {s.username.lower() for _where, s in _sa_holders(gl, path)}
    for ti, t in enumerate(gl.tokens):
        if t.user.lower() not in callers:
            raise ctx.error(f"{path}.tokens[{ti}].user", f"no user or service account {t.user!r} in {path} (API tokens act as one)")
        _check_scopes(t.scopes, f"{path}.tokens[{ti}].scopes", ctx)
        _check_faults(t.faults, f"{path}.tokens[{ti}].faults", ctx)
    for ui, u in enumerate(gl.users):
        need_principal(u.created_by, f"{path}.users[{ui}].created_by")
    for where, holder in _sa_holders(gl, path):
        need_principal(holder.created_by, f"{where}.created_by")
    for where, owner in _resource_owners(gl, path):
        for username in owner.members:
            need_principal(username, f"{where}.members.{username}")
        for ti, t in enumerate(owner.access_tokens):
            need_principal(t.created_by, f"{where}.access_tokens[{ti}].created_by")
        for ri, r in enumerate(owner.runners):
            need_principal(r.created_by, f"{where}.runners[{ri}].created_by")
    for ri, r in enumerate(gl.runners):
        need_principal(r.created_by, f"{path}.runners[{ri}].created_by")
        if r.projects:
            raise ctx.error(f"{path}.runners[{ri}].projects", "instance runners serve every project; leave projects out")
    project_paths = {p.path_with_namespace.lower() for p in gl.projects}
    for ki, k in enumerate(gl.deploy_keys):
        need_principal(k.created_by, f"{path}.deploy_keys[{ki}].created_by")
        for ppath in k.projects:
            if ppath.lower() not in project_paths:
                raise ctx.error(f"{path}.deploy_keys[{ki}].projects.{ppath}", f"no project {ppath!r} in {path}.projects")
    for gi, g in enumerate(gl.groups):
        for ri, r in enumerate(g.runners):
            if r.projects:
                raise ctx.error(f"{path}.groups[{gi}].runners[{ri}].projects", "group runners serve the group's projects; leave projects out")
    for pi, p in enumerate(gl.projects):
        for ri, r in enumerate(p.runners):
            for ppath in r.projects:
                if ppath.lower() not in project_paths:
                    raise ctx.error(f"{path}.projects[{pi}].runners[{ri}].projects", f"no project {ppath!r} in {path}.projects")

    for where, holder in _token_lists(gl, path):
        for ti, t in enumerate(holder):
            _check_scopes(t.scopes, f"{where}[{ti}].scopes", ctx)
            if not t.scopes:
                raise ctx.error(f"{where}[{ti}].scopes", "a token needs at least one scope")

    _assign_ids(gl, ctx, path)
    _fill_defaults(gl, now)


def _check_owned(owner: Any, where: str, ctx: _Ctx) -> None:
    _check_unique(owner.access_tokens, "name", f"{where}.access_tokens", ctx, fold=False)
    _check_unique(owner.deploy_tokens, "name", f"{where}.deploy_tokens", ctx, fold=False)
    _check_unique(owner.runners, "description", f"{where}.runners", ctx, fold=False)
    if isinstance(owner, Group):
        _check_unique(owner.service_accounts, "username", f"{where}.service_accounts", ctx)
    _check_variables(owner.variables, f"{where}.variables", ctx, instance=False)
    for di, d in enumerate(owner.deploy_tokens):
        for si, scope in enumerate(d.scopes):
            if scope not in DEPLOY_TOKEN_SCOPES:
                raise ctx.error(f"{where}.deploy_tokens[{di}].scopes[{si}]",
                                f"unknown deploy token scope {scope!r} (allowed: {', '.join(sorted(DEPLOY_TOKEN_SCOPES))})")
        if not d.scopes:
            raise ctx.error(f"{where}.deploy_tokens[{di}].scopes", "a deploy token needs at least one scope")


def _check_variables(variables: list[Variable], where: str, ctx: _Ctx, *, instance: bool) -> None:
    seen: dict[tuple[str, str], int] = {}
    for vi, v in enumerate(variables):
        if not re.fullmatch(r"[A-Za-z0-9_]+", v.key):
            raise ctx.error(f"{where}[{vi}].key", f"expected letters, digits and '_' only, got {v.key!r}")
        if instance and v.environment_scope != "*":
            raise ctx.error(f"{where}[{vi}].environment_scope", "instance variables have no environment scope")
        if v.hidden and not v.masked:
            raise ctx.error(f"{where}[{vi}].hidden", "a hidden variable must also be masked (as on GitLab)")
        ident = (v.key, v.environment_scope)
        if ident in seen:
            raise ctx.error(f"{where}[{vi}].key", f"duplicate key {v.key!r} for environment scope {v.environment_scope!r} (also at {where}[{seen[ident]}])")
        seen[ident] = vi


def _check_scopes(scopes: list[str], where: str, ctx: _Ctx) -> None:
    for si, scope in enumerate(scopes):
        if scope not in TOKEN_SCOPES:
            hint = difflib.get_close_matches(scope, sorted(TOKEN_SCOPES), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ctx.error(f"{where}[{si}]", f"unknown token scope {scope!r}{did}")


def _check_faults(faults: list[Fault], where: str, ctx: _Ctx) -> None:
    for fi, f in enumerate(faults):
        if not f.path.startswith("/"):
            raise ctx.error(f"{where}[{fi}].path", f"expected a path starting with '/', got {f.path!r}")
        if f.path.startswith(API_PREFIX):
            raise ctx.error(f"{where}[{fi}].path", "leave out the /api/v4 prefix: patterns match the API path, e.g. /groups/*/variables")
        if f.times is not None and f.times < 0:
            raise ctx.error(f"{where}[{fi}].times", "expected a non-negative integer")
        if f.method is not None:
            f.method = f.method.upper()


def _resource_owners(gl: GitLabEstate, path: str) -> Iterator[tuple[str, Any]]:
    for gi, g in enumerate(gl.groups):
        yield f"{path}.groups[{gi}]", g
    for pi, p in enumerate(gl.projects):
        yield f"{path}.projects[{pi}]", p


def _sa_holders(gl: GitLabEstate, path: str) -> Iterator[tuple[str, ServiceAccount]]:
    for si, s in enumerate(gl.service_accounts):
        yield f"{path}.service_accounts[{si}]", s
    for gi, g in enumerate(gl.groups):
        for si, s in enumerate(g.service_accounts):
            yield f"{path}.groups[{gi}].service_accounts[{si}]", s


def _token_lists(gl: GitLabEstate, path: str) -> Iterator[tuple[str, list]]:
    for ui, u in enumerate(gl.users):
        yield f"{path}.users[{ui}].personal_access_tokens", u.personal_access_tokens
        yield f"{path}.users[{ui}].impersonation_tokens", u.impersonation_tokens
    for where, s in _sa_holders(gl, path):
        yield f"{where}.personal_access_tokens", s.personal_access_tokens
    for where, owner in _resource_owners(gl, path):
        yield f"{where}.access_tokens", owner.access_tokens


def _assign_ids(gl: GitLabEstate, ctx: _Ctx, path: str) -> None:
    """Explicit ids first (duplicates are errors), then stable derived ids that never collide."""
    slots: list[tuple[str, Any, str, str, tuple]] = []  # (yaml path, object, id kind, attribute, seed)
    for ui, u in enumerate(gl.users):
        slots.append((f"{path}.users[{ui}]", u, "user", "id", ("user", u.username)))
        for name in ("personal_access_tokens", "impersonation_tokens"):
            for ti, t in enumerate(getattr(u, name)):
                slots.append((f"{path}.users[{ui}].{name}[{ti}]", t, "token", "id", (name, u.username, t.name)))
    for where, s in _sa_holders(gl, path):
        slots.append((where, s, "user", "id", ("user", s.username)))
        for ti, t in enumerate(s.personal_access_tokens):
            slots.append((f"{where}.personal_access_tokens[{ti}]", t, "token", "id", ("sa_token", s.username, t.name)))
    for gi, g in enumerate(gl.groups):
        slots.append((f"{path}.groups[{gi}]", g, "namespace", "id", ("group", g.full_path)))
    for pi, p in enumerate(gl.projects):
        slots.append((f"{path}.projects[{pi}]", p, "project", "id", ("project", p.path_with_namespace)))
    for where, owner in _resource_owners(gl, path):
        label = owner.full_path if isinstance(owner, Group) else owner.path_with_namespace
        for ti, t in enumerate(owner.access_tokens):
            slots.append((f"{where}.access_tokens[{ti}]", t, "token", "id", ("resource_token", label, t.name)))
            slots.append((f"{where}.access_tokens[{ti}]", t, "user", "user_id", ("bot", label, t.name)))
        for di, d in enumerate(owner.deploy_tokens):
            slots.append((f"{where}.deploy_tokens[{di}]", d, "deploy_token", "id", ("deploy_token", label, d.name)))
        for ri, r in enumerate(owner.runners):
            slots.append((f"{where}.runners[{ri}]", r, "runner", "id", ("runner", label, r.description)))
    for ri, r in enumerate(gl.runners):
        slots.append((f"{path}.runners[{ri}]", r, "runner", "id", ("runner", "instance", r.description)))
    for ki, k in enumerate(gl.deploy_keys):
        slots.append((f"{path}.deploy_keys[{ki}]", k, "deploy_key", "id", ("deploy_key", k.title)))

    taken: dict[str, set[int]] = {}
    for where, obj, kind, attr, _seed in slots:
        value = getattr(obj, attr)
        if value is None:
            continue
        if value <= 0:
            raise ctx.error(f"{where}.{attr}", "expected a positive integer")
        if value in taken.setdefault(kind, set()):
            raise ctx.error(f"{where}.{attr}", f"duplicate {kind} id {value}")
        taken[kind].add(value)
    for _where, obj, kind, attr, seed in slots:
        if getattr(obj, attr) is None:
            setattr(obj, attr, _stable_id(*seed, taken=taken.setdefault(kind, set())))


def _fill_defaults(gl: GitLabEstate, now: datetime) -> None:
    def tokens(items: list[AccessToken]) -> None:
        for t in items:
            t.created_at = t.created_at or now

    for u in gl.users:
        u.name = u.name or u.username
        u.created_at = u.created_at or now
        tokens(u.personal_access_tokens)
        tokens(u.impersonation_tokens)
    for _where, s in _sa_holders(gl, "gitlab"):
        s.name = s.name or "Service account user"
        s.email = s.email or f"{s.username}@noreply.gitlab.example"
        s.created_at = s.created_at or now
        tokens(s.personal_access_tokens)
    for g in gl.groups:
        g.name = g.name or g.full_path.rsplit("/", 1)[-1]
        g.created_at = g.created_at or now
    for p in gl.projects:
        p.name = p.name or p.path
        p.created_at = p.created_at or now
        p.last_activity_at = p.last_activity_at or p.created_at
    for _where, owner in _resource_owners(gl, "gitlab"):
        kind = "group" if isinstance(owner, Group) else "project"
        for t in owner.access_tokens:
            t.created_at = t.created_at or now
            if t.username is None:
                t.username = f"{kind}_{owner.id}_bot_{zlib.crc32(f'{owner.id}/{t.name}'.encode()):08x}"
        for d in owner.deploy_tokens:
            d.username = d.username or f"gitlab+deploy-token-{d.id}"
        for r in owner.runners:
            _finish_runner(r, now)
    for r in gl.runners:
        _finish_runner(r, now)
    for k in gl.deploy_keys:
        k.created_at = k.created_at or now
        k.key = k.key or _fake_ssh_key(f"gitlab/{k.title}/{k.id}")


def _finish_runner(r: Runner, now: datetime) -> None:
    r.created_at = r.created_at or now
    if r.contacted_at is None and r.status == "online":
        r.contacted_at = now


def build(estate: Estate, *, reload: Callable[[], Estate] | None = None, **_options: Any) -> "GitLabEmulator":
    """The WSGI app ``sandbox.server.Sandbox`` serves (also for estates without a gitlab section)."""
    return GitLabEmulator(estate, reload=reload)


# --------------------------------------------------------------------------------------------
# Wire formats


def gl_time(value: datetime | None) -> str | None:
    """GitLab's timestamp format: UTC with milliseconds and ``Z``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def gl_date(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _fingerprints(public_key: str) -> tuple[str | None, str | None]:
    """(MD5 colon-hex, ``SHA256:`` base64) fingerprints of an OpenSSH public key line."""
    import base64
    import binascii

    parts = public_key.split()
    if len(parts) < 2:
        return None, None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None, None
    md5 = hashlib.md5(blob).hexdigest()  # noqa: S324 - a fingerprint, not a security control
    sha = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return ":".join(md5[i : i + 2] for i in range(0, 32, 2)), sha


@dataclass
class ApiUser:
    """A user as the API sees one: a human or bot user, a service account, or a token's bot."""

    id: int
    username: str
    name: str
    email: str | None
    state: str
    bot: bool
    is_admin: bool
    kind: str  # human | bot | service_account | project_bot | group_bot
    created_at: datetime
    last_activity_on: datetime | None = None
    last_sign_in_at: datetime | None = None
    created_by: str | None = None
    external: bool = False
    two_factor_enabled: bool = False
    tokens: list[AccessToken] = field(default_factory=list)
    impersonation: list[AccessToken] = field(default_factory=list)
    bot_token: ResourceAccessToken | None = None
    bot_of: Any = None  # the Group or Project a bot belongs to
    sa_group: Group | None = None  # the top-level group of a group service account


class _Index:
    """Lookups over the estate, rebuilt per request (estates are small; tests mutate freely)."""

    def __init__(self, gl: GitLabEstate):
        self.gl = gl
        self.people: dict[int, ApiUser] = {}
        self.by_name: dict[str, ApiUser] = {}
        for u in gl.users:
            self._add(ApiUser(u.id, u.username, u.name or u.username, u.email, u.state, u.bot, u.is_admin,
                             "bot" if u.bot else "human", u.created_at, u.last_activity_on, u.last_sign_in_at,
                             u.created_by, u.external, u.two_factor_enabled, u.personal_access_tokens,
                             u.impersonation_tokens))
        for s in gl.service_accounts:
            self._add(self._sa(s, None))
        for g in gl.groups:
            for s in g.service_accounts:
                self._add(self._sa(s, g))
        self.groups_by_id = {g.id: g for g in gl.groups}
        self.groups_by_path = {g.full_path.lower(): g for g in gl.groups}
        self.projects_by_id = {p.id: p for p in gl.projects}
        self.projects_by_path = {p.path_with_namespace.lower(): p for p in gl.projects}
        for owner in list(gl.groups) + list(gl.projects):
            kind = "group_bot" if isinstance(owner, Group) else "project_bot"
            for t in owner.access_tokens:
                last = t.last_used_at
                self._add(ApiUser(t.user_id, t.username or "", t.name, f"{t.username}@noreply.gitlab.example",
                                 "active", True, False, kind, t.created_at, last, None, t.created_by,
                                 bot_token=t, bot_of=owner))

    @staticmethod
    def _sa(s: ServiceAccount, group: Group | None) -> ApiUser:
        return ApiUser(s.id, s.username, s.name or s.username, s.email, s.state, True, False, "service_account",
                      s.created_at, s.last_activity_on, None, s.created_by, tokens=s.personal_access_tokens, sa_group=group)

    def _add(self, p: ApiUser) -> None:
        self.people[p.id] = p
        self.by_name[p.username.lower()] = p

    def group(self, ident: str) -> Group | None:
        if ident.isdigit():
            return self.groups_by_id.get(int(ident))
        return self.groups_by_path.get(ident.lower())

    def project(self, ident: str) -> Project | None:
        if ident.isdigit():
            return self.projects_by_id.get(int(ident))
        return self.projects_by_path.get(ident.lower())

    def parent(self, g: Group) -> Group | None:
        return self.groups_by_path.get(g.parent_path.lower()) if g.parent_path else None

    def namespace_group(self, p: Project) -> Group | None:
        return self.groups_by_path.get(p.namespace_path.lower())

    def ancestors(self, g: Group) -> list[Group]:
        out, cur = [], self.parent(g)
        while cur is not None:
            out.append(cur)
            cur = self.parent(cur)
        return out

    def descendants(self, g: Group) -> list[Group]:
        prefix = g.full_path.lower() + "/"
        return [x for x in self.gl.groups if x.full_path.lower().startswith(prefix)]

    def projects_in(self, g: Group, *, subgroups: bool) -> list[Project]:
        paths = {g.full_path.lower()} | ({d.full_path.lower() for d in self.descendants(g)} if subgroups else set())
        return [p for p in self.gl.projects if p.namespace_path.lower() in paths]

    def top(self, g: Group) -> Group:
        chain = self.ancestors(g)
        return chain[-1] if chain else g


# --------------------------------------------------------------------------------------------
# The emulator


class ApiError(Exception):
    """Raised by handlers; becomes a GitLab-shaped JSON error response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


FORBIDDEN = {"message": "403 Forbidden"}


def _not_found(what: str = "Not found") -> ApiError:
    return ApiError(404, {"message": f"404 {what}"})


@dataclass
class Principal:
    token: str
    api_token: ApiToken
    person: ApiUser

    @property
    def is_admin(self) -> bool:
        return self.person.is_admin


@dataclass
class Ctx:
    request: Request
    raw_path: str  # the API path as sent (percent-encoding kept), without /api/v4 or the query
    base: str  # http://host:port/api/v4
    web: str  # http://host:port
    ix: _Index
    principal: Principal | None = None

    @property
    def args(self) -> Any:
        return self.request.args


@dataclass
class Result:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


# (method, regex over the raw API path, handler name). Path parameters stay percent-encoded in
# the match and are decoded once, so ``/projects/acme%2Fapi/variables`` works as on GitLab.
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile("^" + pattern + "$"), name)
    for m, pattern, name in [
        ("GET", r"/version", "version"),
        ("GET", r"/user", "current_user"),
        ("GET", r"/users", "list_users"),
        ("GET", r"/users/(?P<uid>\d+)", "get_user"),
        ("GET", r"/users/(?P<uid>\d+)/impersonation_tokens", "list_impersonation_tokens"),
        ("GET", r"/personal_access_tokens", "list_personal_access_tokens"),
        ("GET", r"/personal_access_tokens/(?P<tid>\d+)", "get_personal_access_token"),
        ("GET", r"/service_accounts", "list_service_accounts"),
        ("GET", r"/deploy_tokens", "list_all_deploy_tokens"),
        ("GET", r"/deploy_keys", "list_all_deploy_keys"),
        ("GET", r"/keys", "find_key"),
        ("GET", r"/keys/(?P<kid>\d+)", "get_key"),
        ("GET", r"/admin/ci/variables", "list_instance_variables"),
        ("GET", r"/runners/all", "list_all_runners"),
        ("GET", r"/runners/(?P<rid>\d+)", "get_runner"),
        ("GET", r"/groups", "list_groups"),
        ("GET", r"/groups/(?P<gid>[^/]+)", "get_group"),
        ("GET", r"/groups/(?P<gid>[^/]+)/subgroups", "list_subgroups"),
        ("GET", r"/groups/(?P<gid>[^/]+)/descendant_groups", "list_descendant_groups"),
        ("GET", r"/groups/(?P<gid>[^/]+)/projects", "list_group_projects"),
        ("GET", r"/groups/(?P<gid>[^/]+)/access_tokens", "list_group_access_tokens"),
        ("GET", r"/groups/(?P<gid>[^/]+)/service_accounts", "list_group_service_accounts"),
        ("GET", r"/groups/(?P<gid>[^/]+)/service_accounts/(?P<uid>\d+)/personal_access_tokens", "list_group_sa_tokens"),
        ("GET", r"/groups/(?P<gid>[^/]+)/deploy_tokens", "list_group_deploy_tokens"),
        ("GET", r"/groups/(?P<gid>[^/]+)/variables", "list_group_variables"),
        ("GET", r"/groups/(?P<gid>[^/]+)/runners", "list_group_runners"),
        ("GET", r"/projects", "list_projects"),
        ("GET", r"/projects/(?P<pid>[^/]+)", "get_project"),
        ("GET", r"/projects/(?P<pid>[^/]+)/access_tokens", "list_project_access_tokens"),
        ("GET", r"/projects/(?P<pid>[^/]+)/deploy_tokens", "list_project_deploy_tokens"),
        ("GET", r"/projects/(?P<pid>[^/]+)/deploy_keys", "list_project_deploy_keys"),
        ("GET", r"/projects/(?P<pid>[^/]+)/variables", "list_project_variables"),
        ("GET", r"/projects/(?P<pid>[^/]+)/runners", "list_project_runners"),
    ]
]


class GitLabEmulator(Emulator[GitLabEstate]):
    """The GitLab WSGI app. ``state`` is the live ``gitlab:`` section; mutate it between calls."""

    vendor = "gitlab"
    url_suffix = URL_SUFFIX

    def __init__(self, estate: Estate, *, reload: Callable[[], Estate] | None = None):
        super().__init__(estate, reload=reload)
        self._empty = GitLabEstate()  # served when the estate has no gitlab section

    # -- public Python API (the rest is ``Emulator``'s) ---------------------------------------

    @property
    def state(self) -> GitLabEstate:
        """The live ``gitlab:`` section this emulator serves (a plain dataclass tree)."""
        section = self.estate.vendors.get("gitlab")
        return section if isinstance(section, GitLabEstate) else self._empty

    # -- serving a call ------------------------------------------------------------------------

    def _crash_response(self) -> Response:
        return _json({"message": "500 Internal Server Error"}, 500)

    def _route_path(self, request: Request) -> str:
        # The path as sent: GitLab takes ``acme%2Fapi`` as one project id, which ``request.path``
        # would already have decoded.
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        return raw.split("?", 1)[0]

    def _begin(self, request: Request, raw: str) -> Ctx | Response:
        web = request.host_url.rstrip("/")
        if not (raw == API_PREFIX or raw.startswith(API_PREFIX + "/")):
            return _json({"error": "404 Not Found"}, 404)
        api_path = raw[len(API_PREFIX) :] or "/"
        with self._lock:
            ix = _Index(self.state)
        return Ctx(request=request, raw_path=api_path.rstrip("/") or "/", base=web + API_PREFIX, web=web, ix=ix)

    def _serve(self, ctx: Ctx) -> tuple[Response, str | None]:
        try:
            ctx.principal = self._authenticate(ctx)
        except ApiError as e:
            return _json(e.body, e.status, e.headers), None
        fault = self._pick_fault(ctx)
        if fault is not None and fault.fault in ("too_many_requests", "server_error", "forbidden"):
            return self._fault_response(fault), fault.fault
        self._stall(fault)
        try:
            handler, args = self._route(ctx)
            with self._lock:
                result = handler(ctx, **args)
        except ApiError as e:
            return _json(e.body, e.status, e.headers), None
        body = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        kind = None
        if fault is not None and fault.fault == "malformed_json":
            body, kind = half(body), "malformed_json"
        elif fault is not None and fault.fault == "malformed_item" and isinstance(result.body, list) and result.body:
            broken = [dict(result.body[0]) if isinstance(result.body[0], dict) else {}] + list(result.body[1:])
            broken[0]["id"] = "not-a-number"
            body, kind = json.dumps(broken, separators=(",", ":")).encode("utf-8"), "malformed_item"
        return Response(body, status=result.status, headers=result.headers, content_type="application/json"), kind

    def _route(self, ctx: Ctx) -> tuple[Callable[..., Result], dict[str, str]]:
        method = ctx.request.method
        allowed = False
        for m, rx, name in _ROUTES:
            match = rx.match(ctx.raw_path)
            if match is None:
                continue
            allowed = True
            if m == method or (m == "GET" and method == "HEAD"):
                return getattr(self, "h_" + name), {k: unquote(v) for k, v in match.groupdict().items()}
        if allowed:
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        raise ApiError(404, {"error": "404 Not Found"})

    # -- request log -----------------------------------------------------------------------------

    def _log_request(self, ctx: Ctx, status: int, fault: str | None, elapsed: float) -> None:
        p = ctx.principal
        credential = p.token if p else _raw_credential(ctx.request)
        entry = request_entry(ctx.request, ctx.raw_path, credential, status, fault, user=p.person.username if p else None)
        self._record(entry, elapsed=elapsed)

    # -- auth and faults -------------------------------------------------------------------------

    def _authenticate(self, ctx: Ctx) -> Principal:
        credential = _raw_credential(ctx.request)
        if credential is None:
            raise ApiError(401, {"message": "401 Unauthorized"})
        with self._lock:
            tok = self.state.token(credential)
        if tok is None or (tok.expires_at is not None and tok.expires_at <= datetime.now(timezone.utc)):
            raise ApiError(401, {"message": "401 Unauthorized"})
        person = ctx.ix.by_name.get(tok.user.lower())
        if person is None:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if person.state != "active":
            raise ApiError(403, {"message": f"403 Forbidden - Your account has been {person.state}."})
        if not ({"api", "read_api"} & set(tok.scopes)):
            raise ApiError(403, {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api read_api",
            }, {"WWW-Authenticate": 'Bearer realm="Protected by OAuth 2.0", error="insufficient_scope", '
                                   'error_description="The request requires higher privileges than provided by the access token.", '
                                   'scope="api read_api"'})
        return Principal(credential, tok, person)

    def _pick_fault(self, ctx: Ctx) -> Fault | None:
        p = ctx.principal
        if p is None:
            return None
        return self._select_fault(p.token, p.api_token.faults, request_fault(ctx.request.method, ctx.raw_path))

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.fault == "too_many_requests":
            reset = int(time.time()) + fault.retry_after
            headers = {
                "Retry-After": str(fault.retry_after),
                "RateLimit-Name": "throttle_authenticated_api",
                "RateLimit-Limit": "2000",
                "RateLimit-Observed": "2001",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": formatdate(reset, usegmt=True),
            }
            return Response(b"Retry later\n", status=429, headers=headers, content_type="text/plain")
        if fault.fault == "forbidden":
            return _json(FORBIDDEN, 403)
        return _json({"message": "500 Internal Server Error"}, 500)

    # -- access checks -----------------------------------------------------------------------------

    def _me(self, ctx: Ctx) -> Principal:
        assert ctx.principal is not None
        return ctx.principal

    def _admin(self, ctx: Ctx) -> None:
        if not self._me(ctx).is_admin:
            raise ApiError(403, FORBIDDEN)

    def _group_level(self, ctx: Ctx, g: Group) -> int:
        me = self._me(ctx)
        if me.is_admin:
            return ADMIN_LEVEL
        name = me.person.username.lower()
        best = 0
        for x in [g] + ctx.ix.ancestors(g):
            for member, level in x.members.items():
                if member.lower() == name:
                    best = max(best, ACCESS_LEVELS[level])
        return best

    def _project_level(self, ctx: Ctx, p: Project) -> int:
        me = self._me(ctx)
        if me.is_admin:
            return ADMIN_LEVEL
        name = me.person.username.lower()
        best = max((ACCESS_LEVELS[lv] for m, lv in p.members.items() if m.lower() == name), default=0)
        ns = ctx.ix.namespace_group(p)
        if ns is not None:
            best = max(best, self._group_level(ctx, ns))
        elif p.namespace_path.lower() == name:
            best = max(best, ACCESS_LEVELS["owner"])  # a personal project
        return best

    def _sees_group(self, ctx: Ctx, g: Group) -> bool:
        if g.visibility in ("public", "internal") or self._group_level(ctx, g) > 0:
            return True
        # Members of a subgroup or project can see the groups above it.
        return any(self._group_level(ctx, d) > 0 for d in ctx.ix.descendants(g)) or any(
            self._project_level(ctx, p) > 0 for p in ctx.ix.projects_in(g, subgroups=True))

    def _sees_project(self, ctx: Ctx, p: Project) -> bool:
        return p.visibility in ("public", "internal") or self._project_level(ctx, p) > 0

    def _group(self, ctx: Ctx, gid: str, *, min_level: int = 0) -> Group:
        g = ctx.ix.group(gid)
        if g is None or not self._sees_group(ctx, g):
            raise _not_found("Group Not Found")
        if min_level and self._group_level(ctx, g) < min_level:
            raise ApiError(403, FORBIDDEN)
        return g

    def _project(self, ctx: Ctx, pid: str, *, min_level: int = 0) -> Project:
        p = ctx.ix.project(pid)
        if p is None or not self._sees_project(ctx, p):
            raise _not_found("Project Not Found")
        if min_level and self._project_level(ctx, p) < min_level:
            raise ApiError(403, FORBIDDEN)
        return p

    # -- pagination --------------------------------------------------------------------------------

    def _page(self, ctx: Ctx, items: list) -> Result:
        args = ctx.args
        window = numbered_page(args, len(items), default_size=20)
        page, per_page, pages = window.page, window.per_page, window.last

        def at(n: int) -> str:
            return page_url(ctx.base + ctx.raw_path, args, ("page", str(n)), ("per_page", str(per_page)))

        links = []
        if page > 1:
            links.append((at(window.prev), "prev"))
        if page < pages:
            links.append((at(page + 1), "next"))
        links += [(at(1), "first"), (at(pages), "last")]
        headers = {
            "Link": link_header(links),
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(window.prev) if page > 1 else "",
            "X-Total": str(window.total),
            "X-Total-Pages": str(pages),
        }
        return Result(window.chunk(items), headers=headers)

    # -- JSON builders ------------------------------------------------------------------------------

    def _user_basic(self, ctx: Ctx, p: ApiUser) -> dict[str, Any]:
        return {
            "id": p.id, "username": p.username, "name": p.name, "state": p.state, "locked": False,
            "avatar_url": f"{ctx.web}/uploads/-/system/user/avatar/{p.id}/avatar.png",
            "web_url": f"{ctx.web}/{p.username}",
        }

    def _user_public(self, ctx: Ctx, p: ApiUser) -> dict[str, Any]:
        """``Entities::User``: what anyone may read of a profile (``GET /users/:id``)."""
        return {
            **self._user_basic(ctx, p),
            "created_at": gl_time(p.created_at), "bio": "", "location": None, "public_email": None,
            "skype": "", "linkedin": "", "twitter": "", "website_url": "", "organization": None,
            "job_title": "", "pronouns": None, "bot": p.bot, "work_information": None,
            "followers": 0, "following": 0,
        }

    def _user_admin(self, ctx: Ctx, p: ApiUser) -> dict[str, Any]:
        """``Entities::UserWithAdmin``: the administrator's view (email, activity, is_admin, created_by)."""
        creator = ctx.ix.by_name.get(p.created_by.lower()) if p.created_by else None
        namespace_id = p.id + 1_000_000_000
        return {
            **self._user_public(ctx, p),
            "last_sign_in_at": gl_time(p.last_sign_in_at),
            "confirmed_at": gl_time(p.created_at),
            "last_activity_on": gl_date(p.last_activity_on),
            "email": p.email,
            "theme_id": 1, "color_scheme_id": 1, "projects_limit": 100000,
            "current_sign_in_at": gl_time(p.last_sign_in_at),
            "identities": [],
            "can_create_group": p.kind == "human", "can_create_project": p.kind == "human",
            "two_factor_enabled": p.two_factor_enabled,
            "external": p.external, "private_profile": False,
            "commit_email": p.email,
            "is_admin": p.is_admin,
            "note": None,
            "namespace_id": namespace_id,
            "created_by": self._user_basic(ctx, creator) if creator else None,
        }

    def _token_json(self, t: AccessToken | ResourceAccessToken, user_id: int) -> dict[str, Any]:
        now = self.estate.now  # the estate's clock: "expired" must not drift with the wall clock
        expired = t.expires_at is not None and t.expires_at <= now
        return {
            "id": t.id, "name": t.name, "revoked": t.revoked, "created_at": gl_time(t.created_at),
            "description": t.description, "scopes": list(t.scopes), "user_id": user_id,
            "last_used_at": gl_time(t.last_used_at), "active": not t.revoked and not expired,
            "expires_at": gl_date(t.expires_at), "last_used_ips": [],
        }

    def _resource_token_json(self, ctx: Ctx, t: ResourceAccessToken, owner: Any) -> dict[str, Any]:
        return {
            **self._token_json(t, t.user_id or 0),
            "access_level": ACCESS_LEVELS[t.access_level],
            "resource_type": "group" if isinstance(owner, Group) else "project",
            "resource_id": owner.id,
        }

    def _group_json(self, ctx: Ctx, g: Group) -> dict[str, Any]:
        parent = ctx.ix.parent(g)
        full_name = " / ".join(x.name or "" for x in reversed([g] + ctx.ix.ancestors(g)))
        return {
            "id": g.id, "web_url": f"{ctx.web}/groups/{g.full_path}", "name": g.name,
            "path": g.full_path.rsplit("/", 1)[-1], "description": g.description or "",
            "visibility": g.visibility, "share_with_group_lock": False, "require_two_factor_authentication": False,
            "two_factor_grace_period": 48, "project_creation_level": "developer", "auto_devops_enabled": None,
            "subgroup_creation_level": "maintainer", "emails_disabled": False, "emails_enabled": True,
            "mentions_disabled": None, "lfs_enabled": True, "default_branch_protection": 2, "avatar_url": None,
            "request_access_enabled": True, "full_name": full_name, "full_path": g.full_path,
            "created_at": gl_time(g.created_at), "parent_id": parent.id if parent else None,
        }

    def _project_basic(self, ctx: Ctx, p: Project) -> dict[str, Any]:
        return {
            "id": p.id, "description": p.description, "name": p.name,
            "name_with_namespace": self._name_with_namespace(ctx, p), "path": p.path,
            "path_with_namespace": p.path_with_namespace, "created_at": gl_time(p.created_at),
        }

    def _name_with_namespace(self, ctx: Ctx, p: Project) -> str:
        ns = ctx.ix.namespace_group(p)
        if ns is None:
            owner = ctx.ix.by_name.get(p.namespace_path.lower())
            return f"{owner.name if owner else p.namespace_path} / {p.name}"
        names = [x.name or "" for x in reversed([ns] + ctx.ix.ancestors(ns))]
        return " / ".join(names + [p.name or p.path])

    def _project_json(self, ctx: Ctx, p: Project) -> dict[str, Any]:
        ns = ctx.ix.namespace_group(p)
        if ns is not None:
            namespace = {"id": ns.id, "name": ns.name, "path": ns.full_path.rsplit("/", 1)[-1], "kind": "group",
                         "full_path": ns.full_path, "parent_id": (ctx.ix.parent(ns).id if ctx.ix.parent(ns) else None),
                         "avatar_url": None, "web_url": f"{ctx.web}/groups/{ns.full_path}"}
        else:
            owner = ctx.ix.by_name.get(p.namespace_path.lower())
            namespace = {"id": (owner.id + 1_000_000_000) if owner else 0, "name": owner.name if owner else p.namespace_path,
                         "path": p.namespace_path, "kind": "user", "full_path": p.namespace_path, "parent_id": None,
                         "avatar_url": None, "web_url": f"{ctx.web}/{p.namespace_path}"}
        return {
            **self._project_basic(ctx, p),
            "default_branch": p.default_branch, "tag_list": [], "topics": [],
            "ssh_url_to_repo": f"git@{ctx.request.host.split(':')[0]}:{p.path_with_namespace}.git",
            "http_url_to_repo": f"{ctx.web}/{p.path_with_namespace}.git",
            "web_url": f"{ctx.web}/{p.path_with_namespace}", "readme_url": None, "forks_count": 0,
            "avatar_url": None, "star_count": 0, "last_activity_at": gl_time(p.last_activity_at),
            "namespace": namespace, "visibility": p.visibility, "archived": p.archived,
        }

    def _deploy_token_json(self, d: DeployToken) -> dict[str, Any]:
        now = self.estate.now
        return {
            "id": d.id, "name": d.name, "username": d.username, "expires_at": gl_time(d.expires_at),
            "scopes": list(d.scopes), "revoked": d.revoked,
            "expired": d.expires_at is not None and d.expires_at <= now,
        }

    @staticmethod
    def _deploy_key_json(k: DeployKey) -> dict[str, Any]:
        md5, sha = _fingerprints(k.key or "")
        return {"id": k.id, "title": k.title, "key": k.key, "fingerprint": md5, "fingerprint_sha256": sha,
                "created_at": gl_time(k.created_at), "expires_at": gl_time(k.expires_at)}

    @staticmethod
    def _variable_json(v: Variable, *, instance: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"variable_type": v.variable_type, "key": v.key, "value": None if v.hidden else v.value}
        if not instance:
            body["hidden"] = v.hidden
        body.update({"protected": v.protected, "masked": v.masked, "raw": v.raw})
        if not instance:
            body["environment_scope"] = v.environment_scope
        body["description"] = v.description
        return body

    def _runner_json(self, ctx: Ctx, r: Runner, runner_type: str) -> dict[str, Any]:
        creator = ctx.ix.by_name.get(r.created_by.lower()) if r.created_by else None
        body: dict[str, Any] = {
            "id": r.id, "description": r.description, "ip_address": None, "active": not r.paused,
            "paused": r.paused, "is_shared": runner_type == "instance_type", "runner_type": runner_type,
            "name": r.name, "online": r.status == "online",
        }
        if creator is not None:
            body["created_by"] = self._user_basic(ctx, creator)
        body.update({"created_at": gl_time(r.created_at), "status": r.status, "job_execution_status": "idle"})
        return body

    # -- runner placement ------------------------------------------------------------------------

    def _all_runners(self, ctx: Ctx) -> list[tuple[Runner, str, Any]]:
        """(runner, runner_type, owner): owner is None, a Group, or the Project that registered it."""
        out: list[tuple[Runner, str, Any]] = [(r, "instance_type", None) for r in self.state.runners]
        out += [(r, "group_type", g) for g in self.state.groups for r in g.runners]
        out += [(r, "project_type", p) for p in self.state.projects for r in p.runners]
        return out

    def _runner_projects(self, ctx: Ctx, r: Runner, owner: Project) -> list[Project]:
        extra = [ctx.ix.project(x) for x in r.projects]
        return [owner] + [p for p in extra if p is not None and p is not owner]

    def _filter_runners(self, ctx: Ctx, runners: list[tuple[Runner, str, Any]]) -> list[tuple[Runner, str, Any]]:
        args = ctx.args
        kind, status, paused, tags = args.get("type"), args.get("status"), args.get("paused"), args.get("tag_list")
        out = []
        for r, t, owner in runners:
            if kind and t != kind:
                continue
            if status and r.status != status and not (status == "paused" and r.paused):
                continue
            if paused is not None and r.paused != _truthy(paused):
                continue
            if tags and not set(tags.split(",")) <= set(r.tag_list):
                continue
            out.append((r, t, owner))
        return sorted(out, key=lambda x: x[0].id or 0)

    # -- handlers: instance ------------------------------------------------------------------------

    def h_version(self, ctx: Ctx) -> Result:
        return Result({"version": GITLAB_VERSION, "revision": "6f7e3cd9ab8", "kas": {"enabled": False}, "enterprise": True})

    def h_current_user(self, ctx: Ctx) -> Result:
        me = self._me(ctx)
        body = self._user_admin(ctx, me.person)
        if not me.is_admin:
            for k in ("is_admin", "note", "namespace_id", "created_by"):
                body.pop(k, None)
        return Result(body)

    def h_list_users(self, ctx: Ctx) -> Result:
        me = self._me(ctx)
        args = ctx.args
        people = list(ctx.ix.people.values())
        if args.get("username"):
            people = [p for p in people if p.username.lower() == args["username"].lower()]
        if args.get("search"):
            q = args["search"].lower()
            people = [p for p in people if q in p.username.lower() or q in p.name.lower()
                      or (me.is_admin and p.email and q in p.email.lower())]
        if _truthy(args.get("active")):
            people = [p for p in people if p.state == "active"]
        if _truthy(args.get("blocked")):
            people = [p for p in people if p.state == "blocked"]
        if _truthy(args.get("humans")):
            people = [p for p in people if not p.bot]
        if _truthy(args.get("exclude_humans")):
            people = [p for p in people if p.bot]
        if _truthy(args.get("without_project_bots")):
            people = [p for p in people if p.kind != "project_bot"]
        if me.is_admin and _truthy(args.get("admins")):
            people = [p for p in people if p.is_admin]
        if me.is_admin and _truthy(args.get("external")):
            people = [p for p in people if p.external]
        order = args.get("order_by", "id")
        keys: dict[str, Callable[[ApiUser], Any]] = {
            "id": lambda p: p.id, "username": lambda p: p.username.lower(), "name": lambda p: p.name.lower(),
            "created_at": lambda p: p.created_at, "last_activity_on": lambda p: p.last_activity_on or datetime.min.replace(tzinfo=timezone.utc),
        }
        if order not in keys:
            raise ApiError(400, {"error": "order_by does not have a valid value"})
        people.sort(key=keys[order], reverse=args.get("sort", "desc") != "asc")
        render = self._user_admin if me.is_admin else self._user_basic
        return self._page(ctx, [render(ctx, p) for p in people])

    def h_get_user(self, ctx: Ctx, uid: str) -> Result:
        p = ctx.ix.people.get(int(uid))
        if p is None:
            raise _not_found("User Not Found")
        return Result(self._user_admin(ctx, p) if self._me(ctx).is_admin else self._user_public(ctx, p))

    def h_list_impersonation_tokens(self, ctx: Ctx, uid: str) -> Result:
        self._admin(ctx)
        p = ctx.ix.people.get(int(uid))
        if p is None:
            raise _not_found("User Not Found")
        state = ctx.args.get("state", "all")
        items = [{**self._token_json(t, p.id), "impersonation": True} for t in p.impersonation]
        if state in ("active", "inactive"):
            items = [i for i in items if i["active"] == (state == "active")]
        return self._page(ctx, sorted(items, key=lambda i: -i["id"]))

    def _all_tokens(self, ctx: Ctx, *, impersonation: bool) -> list[tuple[AccessToken | ResourceAccessToken, ApiUser]]:
        """Every personal access token row: people's, service accounts' and bots', and with
        ``impersonation`` the impersonation tokens too (GitLab shows those to administrators only)."""
        out: list[tuple[Any, ApiUser]] = []
        for person in ctx.ix.people.values():
            if person.bot_token is not None:
                out.append((person.bot_token, person))
            for t in person.tokens + (person.impersonation if impersonation else []):
                out.append((t, person))
        return sorted(out, key=lambda x: x[0].id or 0)

    def h_list_personal_access_tokens(self, ctx: Ctx) -> Result:
        me = self._me(ctx)
        args = ctx.args
        rows = self._all_tokens(ctx, impersonation=me.is_admin)
        if args.get("user_id"):
            wanted = int_arg(args.get("user_id"), -1)
            if not me.is_admin and wanted != me.person.id:
                raise ApiError(401, {"message": "401 Unauthorized"})
            rows = [(t, p) for t, p in rows if p.id == wanted]
        if not me.is_admin:
            rows = [(t, p) for t, p in rows if p.id == me.person.id]
        items = [self._token_json(t, p.id) for t, p in rows]
        if args.get("state") in ("active", "inactive"):
            items = [i for i in items if i["active"] == (args["state"] == "active")]
        if args.get("revoked") is not None:
            items = [i for i in items if i["revoked"] == _truthy(args["revoked"])]
        if args.get("search"):
            items = [i for i in items if args["search"].lower() in i["name"].lower()]
        for param, fieldname, before in (("created_before", "created_at", True), ("created_after", "created_at", False),
                                         ("last_used_before", "last_used_at", True), ("last_used_after", "last_used_at", False),
                                         ("expires_before", "expires_at", True), ("expires_after", "expires_at", False)):
            if args.get(param):
                limit = _parse_arg_time(args[param])
                items = [i for i in items if i[fieldname] and ((_parse_arg_time(i[fieldname]) < limit) == before)]
        return self._page(ctx, items)

    def h_get_personal_access_token(self, ctx: Ctx, tid: str) -> Result:
        me = self._me(ctx)
        for t, p in self._all_tokens(ctx, impersonation=me.is_admin):
            if t.id == int(tid) and (me.is_admin or p.id == me.person.id):
                return Result(self._token_json(t, p.id))
        raise _not_found("Not Found")

    def h_list_service_accounts(self, ctx: Ctx) -> Result:
        self._admin(ctx)
        people = sorted((p for p in ctx.ix.people.values() if p.kind == "service_account" and p.sa_group is None),
                        key=lambda p: p.id)
        if ctx.args.get("order_by") == "username":
            people.sort(key=lambda p: p.username.lower())
        if ctx.args.get("sort") == "desc":
            people.reverse()
        return self._page(ctx, [{"id": p.id, "username": p.username, "name": p.name, "email": p.email} for p in people])

    def h_list_all_deploy_tokens(self, ctx: Ctx) -> Result:
        self._admin(ctx)
        tokens = [d for owner in list(self.state.groups) + list(self.state.projects) for d in owner.deploy_tokens]
        items = [self._deploy_token_json(d) for d in sorted(tokens, key=lambda d: d.id or 0)]
        if ctx.args.get("active") is not None and _truthy(ctx.args["active"]):
            items = [i for i in items if not i["revoked"] and not i["expired"]]
        return self._page(ctx, items)

    def h_list_all_deploy_keys(self, ctx: Ctx) -> Result:
        self._admin(ctx)
        keys = sorted(self.state.deploy_keys, key=lambda k: k.id or 0)
        if _truthy(ctx.args.get("public")):
            keys = [k for k in keys if k.public]
        items = []
        for k in keys:
            write, read = [], []
            for path, can_push in k.projects.items():
                p = ctx.ix.project(path)
                if p is not None:
                    (write if can_push else read).append(self._project_basic(ctx, p))
            items.append({**self._deploy_key_json(k), "projects_with_write_access": write,
                          "projects_with_readonly_access": read})
        return self._page(ctx, items)

    def _key_with_user(self, ctx: Ctx, k: DeployKey) -> dict[str, Any]:
        creator = ctx.ix.by_name.get(k.created_by.lower()) if k.created_by else None
        body = self._deploy_key_json(k)
        body.pop("fingerprint", None)
        body.pop("fingerprint_sha256", None)
        body["user"] = self._user_admin(ctx, creator) if creator else None
        return body

    def h_find_key(self, ctx: Ctx) -> Result:
        """``GET /keys?fingerprint=``: the SSH key (here: deploy key) with that fingerprint and its user."""
        self._admin(ctx)
        wanted = ctx.args.get("fingerprint")
        if not wanted:
            raise ApiError(400, {"error": "fingerprint is missing"})
        for k in self.state.deploy_keys:
            md5, sha = _fingerprints(k.key or "")
            if wanted in (md5, sha, (sha or "").removeprefix("SHA256:")):
                return Result(self._key_with_user(ctx, k))
        raise _not_found("Key Not Found")

    def h_get_key(self, ctx: Ctx, kid: str) -> Result:
        self._admin(ctx)
        k = next((k for k in self.state.deploy_keys if k.id == int(kid)), None)
        if k is None:
            raise _not_found("Not found")
        return Result(self._key_with_user(ctx, k))

    def h_list_instance_variables(self, ctx: Ctx) -> Result:
        self._admin(ctx)
        return self._page(ctx, [self._variable_json(v, instance=True) for v in self.state.variables])

    def h_list_all_runners(self, ctx: Ctx) -> Result:
        self._admin(ctx)
        rows = self._filter_runners(ctx, self._all_runners(ctx))
        return self._page(ctx, [self._runner_json(ctx, r, t) for r, t, _ in rows])

    def h_get_runner(self, ctx: Ctx, rid: str) -> Result:
        row = next(((r, t, o) for r, t, o in self._all_runners(ctx) if r.id == int(rid)), None)
        if row is None:
            raise _not_found("Not found")
        r, t, owner = row
        me = self._me(ctx)
        groups: list[Group] = []
        projects: list[Project] = []
        if t == "group_type":
            groups = [owner]
            if not me.is_admin and self._group_level(ctx, owner) < ACCESS_LEVELS["maintainer"]:
                raise ApiError(403, FORBIDDEN)
        elif t == "project_type":
            projects = self._runner_projects(ctx, r, owner)
            if not me.is_admin and not any(self._project_level(ctx, p) >= ACCESS_LEVELS["maintainer"] for p in projects):
                raise ApiError(403, FORBIDDEN)
        body = {
            **self._runner_json(ctx, r, t),
            "tag_list": list(r.tag_list), "run_untagged": r.run_untagged, "locked": r.locked,
            "maximum_timeout": None, "access_level": r.access_level, "version": r.version,
            "revision": "853330f9", "platform": "linux", "architecture": "amd64",
            "contacted_at": gl_time(r.contacted_at), "maintenance_note": None,
            "projects": [{**self._project_basic(ctx, p)} for p in projects if me.is_admin or self._project_level(ctx, p) > 0],
            "groups": [{"id": g.id, "web_url": f"{ctx.web}/groups/{g.full_path}", "name": g.name} for g in groups],
        }
        return Result(body)

    # -- handlers: groups ----------------------------------------------------------------------------

    def h_list_groups(self, ctx: Ctx) -> Result:
        me = self._me(ctx)
        args = ctx.args
        everything = me.is_admin or _truthy(args.get("all_available"))
        groups = [g for g in self.state.groups
                  if (self._sees_group(ctx, g) if everything else self._group_level(ctx, g) > 0)]
        if _truthy(args.get("top_level_only")):
            groups = [g for g in groups if g.parent_path is None]
        if args.get("search"):
            q = args["search"].lower()
            groups = [g for g in groups if q in g.full_path.lower() or q in (g.name or "").lower()]
        if args.get("min_access_level"):
            lvl = int_arg(args["min_access_level"], 0)
            groups = [g for g in groups if self._group_level(ctx, g) >= lvl]
        if _truthy(args.get("owned")):
            groups = [g for g in groups if self._group_level(ctx, g) >= ACCESS_LEVELS["owner"]]
        groups.sort(key=lambda g: (g.name or "").lower())
        return self._page(ctx, [self._group_json(ctx, g) for g in groups])

    def h_get_group(self, ctx: Ctx, gid: str) -> Result:
        return Result(self._group_json(ctx, self._group(ctx, gid)))

    def h_list_subgroups(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid)
        subs = [x for x in self.state.groups if x.parent_path and x.parent_path.lower() == g.full_path.lower()
                and self._sees_group(ctx, x)]
        return self._page(ctx, [self._group_json(ctx, x) for x in sorted(subs, key=lambda x: (x.name or "").lower())])

    def h_list_descendant_groups(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid)
        subs = [x for x in ctx.ix.descendants(g) if self._sees_group(ctx, x)]
        return self._page(ctx, [self._group_json(ctx, x) for x in sorted(subs, key=lambda x: (x.name or "").lower())])

    def h_list_group_projects(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid)
        projects = [p for p in ctx.ix.projects_in(g, subgroups=_truthy(ctx.args.get("include_subgroups")))
                    if self._sees_project(ctx, p)]
        if ctx.args.get("archived") is not None:
            projects = [p for p in projects if p.archived == _truthy(ctx.args["archived"])]
        projects.sort(key=lambda p: p.created_at, reverse=True)
        return self._page(ctx, [self._project_json(ctx, p) for p in projects])

    def h_list_group_access_tokens(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["owner"])
        items = [self._resource_token_json(ctx, t, g) for t in g.access_tokens]
        return self._page(ctx, _state_filter(ctx, items))

    def h_list_group_service_accounts(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["owner"])
        if g.parent_path is not None:
            raise ApiError(400, {"message": "400 Bad request - Group must be a top-level group"})
        people = [ctx.ix.by_name[s.username.lower()] for s in g.service_accounts]
        return self._page(ctx, [{"id": p.id, "username": p.username, "name": p.name, "email": p.email} for p in people])

    def h_list_group_sa_tokens(self, ctx: Ctx, gid: str, uid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["owner"])
        person = ctx.ix.people.get(int(uid))
        if person is None or person.sa_group is not g:
            raise _not_found("User Not Found")
        items = [self._token_json(t, person.id) for t in person.tokens]
        return self._page(ctx, _state_filter(ctx, items))

    def h_list_group_deploy_tokens(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["maintainer"])
        items = [self._deploy_token_json(d) for d in g.deploy_tokens]
        if ctx.args.get("active") is not None and _truthy(ctx.args["active"]):
            items = [i for i in items if not i["revoked"] and not i["expired"]]
        return self._page(ctx, items)

    def h_list_group_variables(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["owner"])
        return self._page(ctx, [self._variable_json(v, instance=False) for v in g.variables])

    def h_list_group_runners(self, ctx: Ctx, gid: str) -> Result:
        g = self._group(ctx, gid, min_level=ACCESS_LEVELS["maintainer"])
        chain = {x.full_path.lower() for x in [g] + ctx.ix.ancestors(g)}
        rows = [(r, t, o) for r, t, o in self._all_runners(ctx)
                if t == "instance_type" or (t == "group_type" and o.full_path.lower() in chain)]
        return self._page(ctx, [self._runner_json(ctx, r, t) for r, t, _ in self._filter_runners(ctx, rows)])

    # -- handlers: projects --------------------------------------------------------------------------

    def h_list_projects(self, ctx: Ctx) -> Result:
        projects = [p for p in self.state.projects if self._sees_project(ctx, p)]
        if _truthy(ctx.args.get("membership")):
            projects = [p for p in projects if self._project_level(ctx, p) > 0]
        if ctx.args.get("min_access_level"):
            lvl = int_arg(ctx.args["min_access_level"], 0)
            projects = [p for p in projects if self._project_level(ctx, p) >= lvl]
        projects.sort(key=lambda p: p.created_at, reverse=True)
        return self._page(ctx, [self._project_json(ctx, p) for p in projects])

    def h_get_project(self, ctx: Ctx, pid: str) -> Result:
        return Result(self._project_json(ctx, self._project(ctx, pid)))

    def h_list_project_access_tokens(self, ctx: Ctx, pid: str) -> Result:
        p = self._project(ctx, pid, min_level=ACCESS_LEVELS["maintainer"])
        items = [self._resource_token_json(ctx, t, p) for t in p.access_tokens]
        return self._page(ctx, _state_filter(ctx, items))

    def h_list_project_deploy_tokens(self, ctx: Ctx, pid: str) -> Result:
        p = self._project(ctx, pid, min_level=ACCESS_LEVELS["maintainer"])
        items = [self._deploy_token_json(d) for d in p.deploy_tokens]
        if ctx.args.get("active") is not None and _truthy(ctx.args["active"]):
            items = [i for i in items if not i["revoked"] and not i["expired"]]
        return self._page(ctx, items)

    def h_list_project_deploy_keys(self, ctx: Ctx, pid: str) -> Result:
        p = self._project(ctx, pid, min_level=ACCESS_LEVELS["maintainer"])
        items = []
        for k in sorted(self.state.deploy_keys, key=lambda k: k.id or 0):
            for path, can_push in k.projects.items():
                if path.lower() == p.path_with_namespace.lower():
                    items.append({**self._deploy_key_json(k), "can_push": can_push})
        return self._page(ctx, items)

    def h_list_project_variables(self, ctx: Ctx, pid: str) -> Result:
        p = self._project(ctx, pid, min_level=ACCESS_LEVELS["maintainer"])
        return self._page(ctx, [self._variable_json(v, instance=False) for v in p.variables])

    def h_list_project_runners(self, ctx: Ctx, pid: str) -> Result:
        p = self._project(ctx, pid, min_level=ACCESS_LEVELS["maintainer"])
        ns = ctx.ix.namespace_group(p)
        chain = {x.full_path.lower() for x in ([ns] + ctx.ix.ancestors(ns) if ns else [])}
        rows = []
        for r, t, owner in self._all_runners(ctx):
            if t == "instance_type" or (t == "group_type" and owner.full_path.lower() in chain):
                rows.append((r, t, owner))
            elif t == "project_type" and p in self._runner_projects(ctx, r, owner):
                rows.append((r, t, owner))
        return self._page(ctx, [self._runner_json(ctx, r, t) for r, t, _ in self._filter_runners(ctx, rows)])


# --------------------------------------------------------------------------------------------
# Helpers


def _raw_credential(request: Request) -> str | None:
    token = request.headers.get("PRIVATE-TOKEN")
    if token:
        return token.strip()
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "t", "yes", "y")


def _parse_arg_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _state_filter(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state = ctx.args.get("state")
    if state in ("active", "inactive"):
        return [i for i in items if i["active"] == (state == "active")]
    return items


__all__ = ["GitLabEmulator", "GitLabEstate", "parse_estate", "build", "URL_SUFFIX", "ACCESS_LEVELS"]
