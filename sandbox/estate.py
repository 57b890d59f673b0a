"""Estate files: the YAML description of a fake tenant that the sandbox emulators serve.

An estate is loaded once into a plain graph of dataclasses (``Estate`` → ``GitHubEstate`` →
``Org`` → ``Repo`` → ``DeployKey`` ...). The emulators read that graph on every request, so a
test can change it in place and the next API call sees the change.

Loading is strict on purpose: an estate is hand-written test data, and a typo that silently
turned into a default would make a test pass for the wrong reason. Every error names the file
and the YAML path of the offending value (``github.orgs[0].repos[2].deploy_keys[1].read_only:
expected true/false, got 'yes'``). Unknown keys are errors. YAML 1.1's ``yes``/``no``/``on``/
``off`` booleans are *not* booleans here; only ``true``/``false`` are.

Times may be absolute (ISO 8601, ``2026-01-31`` or ``2026-01-31T12:00:00Z``) or relative to the
estate's clock: ``now``, ``-400d``, ``+30d``, ``-6h``, ``-15m``, ``-30s``, ``-2w``. The clock is the
estate's own ``now:`` key if present, else the ``now`` the caller passes, else the current UTC
time. Ids that an estate leaves out are derived from a hash of the object's place in the
estate, so they are stable for a given file and don't shift when unrelated entries are added.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import re
import types
import typing
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .emulator import RequestFault

__all__ = [
    "EstateError",
    "Estate",
    "GitHubEstate",
    "Token",
    "Fault",
    "App",
    "User",
    "Org",
    "Member",
    "OutsideCollaborator",
    "Repo",
    "DeployKey",
    "Hook",
    "Secret",
    "Variable",
    "OrgSecret",
    "OrgVariable",
    "Environment",
    "Runner",
    "Installation",
    "PatPermissions",
    "PatGrant",
    "CredentialAuthorization",
    "load_estate",
    "parse_time",
    "format_time",
]


class EstateError(ValueError):
    """A malformed estate. ``str()`` names the file and the YAML path of the bad value."""

    def __init__(self, message: str, *, path: str = "", file: str | None = None):
        self.message = message
        self.path = path
        self.file = file
        where = f"{path}: " if path else ""
        prefix = f"{file}: " if file else ""
        super().__init__(f"{prefix}{where}{message}")


# --------------------------------------------------------------------------------------------
# Time handling


_RELATIVE = re.compile(r"^([+-])\s*(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: Any, now: datetime) -> datetime:
    """Turn an estate time value into an aware UTC datetime.

    Accepts ``now``, ``±N{s,m,h,d,w}`` (relative to ``now``), ISO 8601 strings (``Z`` or an
    offset; naive values are taken as UTC) and the ``datetime``/``date`` objects YAML produces
    for unquoted timestamps. Raises ``ValueError`` with a readable message otherwise.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"expected a time ('-400d', 'now' or ISO 8601), got {_show(value)}")
    text = value.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        sign, amount, unit = m.groups()
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        return now + delta if sign == "+" else now - delta
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected a time ('-400d', '+30d', '-6h', 'now' or ISO 8601), got {_show(value)}"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def format_time(value: datetime | None) -> str | None:
    """GitHub's timestamp format: ISO 8601, UTC, second precision, ``Z`` suffix."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# A marker type: fields annotated ``Timestamp`` are parsed with ``parse_time``.
class Timestamp(datetime):
    pass


# A marker type: webhook ``insecure_ssl`` is the string "0" or "1"; a bare YAML 0/1 is accepted.
class InsecureSSL(str):
    pass


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# --------------------------------------------------------------------------------------------
# The model. Field order = documentation order; defaults are the documented defaults.
# ``id`` fields left as None are filled in by ``_finalize``.

Permission = Literal["pull", "triage", "push", "maintain", "admin"]
AppLevel = Literal["read", "write", "admin"]
FaultKind = Literal[
    "rate_limit", "too_many_requests", "server_error", "timeout", "malformed_json", "primary_rate_limit"
]

CLASSIC_SCOPES = frozenset(
    """repo repo:status repo_deployment public_repo repo:invite security_events
    admin:repo_hook write:repo_hook read:repo_hook admin:org write:org read:org
    admin:public_key write:public_key read:public_key admin:org_hook gist notifications
    user read:user user:email user:follow delete_repo write:discussion read:discussion
    write:packages read:packages delete:packages admin:gpg_key write:gpg_key read:gpg_key
    codespace codespace:secrets workflow admin:enterprise manage_runners:enterprise
    manage_billing:enterprise read:enterprise scim:enterprise audit_log read:audit_log project
    read:project admin:ssh_signing_key write:ssh_signing_key read:ssh_signing_key copilot
    manage_billing:copilot manage_runners:org""".split()
)

APP_PERMISSIONS = frozenset(
    """actions administration artifact_metadata attestations checks code_quality codespaces contents
    dependabot_secrets deployments discussions environments issues merge_queues metadata packages
    pages pull_requests repository_custom_properties repository_hooks repository_projects
    secret_scanning_alerts secrets security_events single_file statuses vulnerability_alerts
    workflows actions_variables custom_properties_for_organizations members
    organization_administration organization_custom_roles organization_custom_org_roles
    organization_custom_properties organization_copilot_seat_management
    organization_copilot_agent_settings organization_announcement_banners organization_events
    organization_hooks organization_personal_access_tokens
    organization_personal_access_token_requests organization_plan organization_projects
    organization_packages organization_secrets organization_self_hosted_runners
    organization_user_blocking organization_actions_variables organization_codespaces
    organization_codespaces_secrets organization_codespaces_settings
    organization_dependabot_secrets email_addresses followers git_ssh_keys gpg_keys
    interaction_limits profile starring enterprise_administration
    enterprise_custom_properties_for_organizations enterprise_organization_installations
    enterprise_organization_installation_repositories""".split()
)


@dataclass
class Fault(RequestFault):
    """One injected failure for one token (or one app's installation tokens)."""

    fault: FaultKind


@dataclass
class Token:
    """A classic personal access token."""

    token: str
    login: str
    scopes: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    expires_at: Optional[Timestamp] = None


@dataclass
class App:
    """A GitHub App: its key signs JWTs that the emulator exchanges for installation tokens."""

    id: int
    slug: str
    name: Optional[str] = None
    owner: Optional[str] = None
    description: Optional[str] = None
    client_id: Optional[str] = None
    public_key: Optional[str] = None
    installations: dict[str, int] = field(default_factory=dict)
    permissions: dict[str, AppLevel] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    created_at: Timestamp = None  # type: ignore[assignment]  # default: the estate's now
    updated_at: Optional[Timestamp] = None
    faults: list[Fault] = field(default_factory=list)


@dataclass
class User:
    """A GitHub user known to the estate but not (necessarily) a member of any org."""

    login: str
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    type: Literal["User", "Bot"] = "User"
    site_admin: bool = False
    two_factor: bool = True
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class Member:
    login: str
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    role: Literal["admin", "member"] = "member"
    type: Literal["User", "Bot"] = "User"
    two_factor: bool = True
    public: bool = False
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class OutsideCollaborator:
    login: str
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    type: Literal["User", "Bot"] = "User"
    two_factor: bool = True
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None
    repos: dict[str, Permission] = field(default_factory=dict)


@dataclass
class DeployKey:
    title: str
    id: Optional[int] = None
    key: Optional[str] = None
    read_only: bool = True
    added_by: Optional[str] = None
    created_at: Timestamp = None  # type: ignore[assignment]
    last_used: Optional[Timestamp] = None
    enabled: bool = True
    verified: bool = True


@dataclass
class Hook:
    url: str
    id: Optional[int] = None
    name: str = "web"
    events: list[str] = field(default_factory=lambda: ["push"])
    active: bool = True
    content_type: Literal["json", "form"] = "json"
    insecure_ssl: InsecureSSL = "0"  # type: ignore[assignment]
    secret: bool = False
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class Secret:
    name: str
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class Variable:
    name: str
    value: str = ""
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class OrgSecret:
    name: str
    visibility: Literal["all", "private", "selected"] = "private"
    selected_repositories: list[str] = field(default_factory=list)
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class OrgVariable:
    name: str
    value: str = ""
    visibility: Literal["all", "private", "selected"] = "private"
    selected_repositories: list[str] = field(default_factory=list)
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None


@dataclass
class Environment:
    name: str
    id: Optional[int] = None
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None
    secrets: list[Secret] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)


@dataclass
class Runner:
    name: str
    id: Optional[int] = None
    os: str = "linux"
    status: Literal["online", "offline"] = "online"
    busy: bool = False
    labels: Optional[list[str]] = None  # default: ["self-hosted", <os>]
    ephemeral: bool = False
    runner_group_id: int = 1


@dataclass
class Repo:
    name: str
    id: Optional[int] = None
    private: bool = True
    description: Optional[str] = None
    default_branch: str = "main"
    archived: bool = False
    fork: bool = False
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None
    pushed_at: Optional[Timestamp] = None
    collaborators: dict[str, Permission] = field(default_factory=dict)
    deploy_keys: list[DeployKey] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    environments: list[Environment] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name.lower() == name.lower()), None)


@dataclass
class Installation:
    """A (third-party) GitHub App installed on an org, as ``GET /orgs/{org}/installations`` shows it."""

    id: int
    app_id: int
    app_slug: str
    client_id: Optional[str] = None
    permissions: dict[str, AppLevel] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    repository_selection: Literal["all", "selected"] = "all"
    repositories: list[str] = field(default_factory=list)
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None
    suspended_at: Optional[Timestamp] = None
    suspended_by: Optional[str] = None


@dataclass
class PatPermissions:
    organization: dict[str, AppLevel] = field(default_factory=dict)
    repository: dict[str, AppLevel] = field(default_factory=dict)
    other: dict[str, AppLevel] = field(default_factory=dict)


@dataclass
class PatGrant:
    """A fine-grained PAT approved for the org (``GET /orgs/{org}/personal-access-tokens``)."""

    id: int
    owner: str
    token_id: int
    token_name: str
    repository_selection: Literal["none", "all", "subset"] = "subset"
    repositories: list[str] = field(default_factory=list)
    permissions: PatPermissions = field(default_factory=PatPermissions)
    access_granted_at: Timestamp = None  # type: ignore[assignment]
    token_expired: Optional[bool] = None  # default: token_expires_at is in the past
    token_expires_at: Optional[Timestamp] = None
    token_last_used_at: Optional[Timestamp] = None


@dataclass
class CredentialAuthorization:
    login: str
    credential_id: int
    credential_type: Literal["personal access token", "SSH key", "OAuth app token", "GitHub app token"]
    token_last_eight: Optional[str] = None
    scopes: list[str] = field(default_factory=list)
    credential_authorized_at: Timestamp = None  # type: ignore[assignment]
    credential_accessed_at: Optional[Timestamp] = None
    authorized_credential_id: Optional[int] = None
    authorized_credential_expires_at: Optional[Timestamp] = None
    authorized_credential_title: Optional[str] = None
    authorized_credential_note: Optional[str] = None
    fingerprint: Optional[str] = None


@dataclass
class Org:
    login: str
    id: Optional[int] = None
    name: Optional[str] = None
    description: Optional[str] = None
    email: Optional[str] = None
    saml: bool = False
    default_repository_permission: Literal["read", "write", "admin", "none"] = "read"
    two_factor_requirement_enabled: bool = False
    created_at: Timestamp = None  # type: ignore[assignment]
    updated_at: Optional[Timestamp] = None
    members: list[Member] = field(default_factory=list)
    outside_collaborators: list[OutsideCollaborator] = field(default_factory=list)
    repos: list[Repo] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    installations: list[Installation] = field(default_factory=list)
    pat_grants: list[PatGrant] = field(default_factory=list)
    credential_authorizations: list[CredentialAuthorization] = field(default_factory=list)
    secrets: list[OrgSecret] = field(default_factory=list)
    variables: list[OrgVariable] = field(default_factory=list)
    runners: list[Runner] = field(default_factory=list)

    def repo(self, name: str) -> Repo | None:
        return next((r for r in self.repos if r.name.lower() == name.lower()), None)

    def member(self, login: str) -> Member | None:
        return next((m for m in self.members if m.login.lower() == login.lower()), None)

    def outside_collaborator(self, login: str) -> OutsideCollaborator | None:
        return next((c for c in self.outside_collaborators if c.login.lower() == login.lower()), None)


@dataclass
class GitHubEstate:
    tokens: list[Token] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    orgs: list[Org] = field(default_factory=list)

    def org(self, login: str) -> Org | None:
        return next((o for o in self.orgs if o.login.lower() == login.lower()), None)

    def app(self, app_id: int | str) -> App | None:
        return next((a for a in self.apps if str(a.id) == str(app_id)), None)

    def user(self, login: str) -> User | None:
        return next((u for u in self.users if u.login.lower() == login.lower()), None)

    def token(self, value: str) -> Token | None:
        return next((t for t in self.tokens if t.token == value), None)

    def remove_deploy_key(self, org: str, repo: str, title: str) -> DeployKey:
        """Delete a deploy key by title (as if someone revoked it); returns it. KeyError if absent."""
        r = self._repo(org, repo)
        for key in r.deploy_keys:
            if key.title == title:
                r.deploy_keys.remove(key)
                return key
        raise KeyError(f"no deploy key titled {title!r} on {org}/{repo}")

    def remove_member(self, org: str, login: str) -> Member:
        """Remove someone from an org (as offboarding would); returns the member. KeyError if absent."""
        o = self.org(org)
        m = o.member(login) if o else None
        if o is None or m is None:
            raise KeyError(f"{login!r} is not a member of {org!r}")
        o.members.remove(m)
        return m

    def _repo(self, org: str, repo: str) -> Repo:
        o = self.org(org)
        r = o.repo(repo) if o else None
        if r is None:
            raise KeyError(f"no repository {org}/{repo}")
        return r


@dataclass
class Estate:
    """A whole estate. ``people`` and ``contracts`` are kept as raw mappings for other code."""

    now: datetime
    github: GitHubEstate = field(default_factory=GitHubEstate)
    people: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    source: Optional[str] = None  # file path, when loaded from a file
    # Other vendors' sections, each parsed by its emulator module (see VENDOR_SECTIONS).
    vendors: dict[str, Any] = field(default_factory=dict)
    # What the scanning side knows that no API says (identity mappings, owners, the Jira contract
    # register's fields, the AWS user to scan as): `nhiscan demo` writes it into its config.
    installation: dict[str, Any] = field(default_factory=dict)

    def resolve_time(self, value: Any) -> datetime:
        """Resolve a time value (e.g. from ``people``/``contracts``) against this estate's clock."""
        return parse_time(value, self.now)


# --------------------------------------------------------------------------------------------
# YAML loading: YAML 1.2-style booleans, duplicate keys rejected.


class _StrictLoader(yaml.SafeLoader):
    pass


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------------------------
# The generic, annotation-driven builder.


class _Ctx:
    def __init__(self, now: datetime, file: str | None):
        self.now = now
        self.file = file

    def error(self, path: str, message: str) -> EstateError:
        return EstateError(message, path=path, file=self.file)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, globalns=globals())
    return _HINTS[cls]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type, raw: Any, path: str, ctx: _Ctx) -> Any:
    if not isinstance(raw, dict):
        raise ctx.error(path, f"expected a mapping with keys {_field_names(cls)}, got {_show(raw)}")
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "source"]
    for key in raw:
        if key not in names:
            hint = difflib.get_close_matches(str(key), names, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ctx.error(_join(path, str(key)), f"unknown key{did} (allowed: {', '.join(names)})")
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in names:
            continue
        fpath = _join(path, f.name)
        if f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name], fpath, ctx)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ctx.error(fpath, "required key is missing")
    return cls(**kwargs)


def _field_names(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls) if f.name != "source")


def _convert(tp: Any, value: Any, path: str, ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert(inner[0], value, path, ctx)
    if value is None and tp is Timestamp:
        raise ctx.error(path, "expected a time ('-400d', 'now' or ISO 8601), got null")
    if origin is Literal:
        if value not in args:
            choices = " | ".join(str(a) for a in args)
            raise ctx.error(path, f"expected one of {choices}, got {_show(value)}")
        return value
    if tp is Timestamp:
        try:
            return parse_time(value, ctx.now)
        except ValueError as e:
            raise ctx.error(path, str(e)) from None
    if tp is InsecureSSL:
        if value in ("0", "1", 0, 1) and not isinstance(value, bool):
            return str(value)
        raise ctx.error(path, f"expected \"0\" or \"1\", got {_show(value)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ctx.error(path, f"expected true/false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(path, f"expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(path, f"expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ctx.error(path, f"expected a string, got {_show(value)} (quote it)")
        return value
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ctx.error(path, f"expected a list, got {_show(value)}")
        return [_convert(args[0], item, f"{path}[{i}]", ctx) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ctx.error(path, f"expected a mapping, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ctx.error(path, f"expected string keys, got {_show(k)}")
            out[k] = _convert(args[1], v, _join(path, k), ctx)
        return out
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, ctx)
    raise TypeError(f"estate model has an unsupported annotation {tp!r} at {path}")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Cross-checks, defaults and ids.


def _stable_id(kind: str, *parts: Any, taken: set[int]) -> int:
    """A deterministic id for an object that the estate didn't number: hash of where it lives."""
    seed = "/".join([kind, *(str(p).lower() for p in parts)])
    candidate = 100_000 + zlib.crc32(seed.encode()) % 900_000_000
    while candidate in taken:
        candidate += 1
    taken.add(candidate)
    return candidate


def _check_unique(items: list, attr: str, path: str, ctx: _Ctx, *, fold: bool = True) -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value is None:
            continue
        key = value.lower() if fold and isinstance(value, str) else value
        if key in seen:
            raise ctx.error(f"{path}[{i}].{attr}", f"duplicate {attr} {value!r} (also at {path}[{seen[key]}])")
        seen[key] = i


def _finalize(gh: GitHubEstate, ctx: _Ctx) -> None:
    """Validate references between objects, then fill in defaults and missing ids in place."""
    now = ctx.now
    _check_unique(gh.tokens, "token", "github.tokens", ctx, fold=False)
    _check_unique(gh.apps, "id", "github.apps", ctx)
    _check_unique(gh.orgs, "login", "github.orgs", ctx)
    _check_unique(gh.users, "login", "github.users", ctx)
    org_logins = {o.login.lower() for o in gh.orgs}

    for ti, tok in enumerate(gh.tokens):
        for si, scope in enumerate(tok.scopes):
            if scope not in CLASSIC_SCOPES:
                hint = difflib.get_close_matches(scope, sorted(CLASSIC_SCOPES), n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ctx.error(f"github.tokens[{ti}].scopes[{si}]", f"unknown classic scope {scope!r}{did}")
        _check_faults(tok.faults, f"github.tokens[{ti}].faults", ctx)

    for ai, app in enumerate(gh.apps):
        _check_app_permissions(app.permissions, f"github.apps[{ai}].permissions", ctx)
        _check_faults(app.faults, f"github.apps[{ai}].faults", ctx)
        for org_login in app.installations:
            if org_login.lower() not in org_logins:
                raise ctx.error(f"github.apps[{ai}].installations.{org_login}", f"no org {org_login!r} in github.orgs")
        app.name = app.name or app.slug
        app.owner = app.owner or (next(iter(app.installations), None) or app.slug)
        app.client_id = app.client_id or f"Iv1.{zlib.crc32(f'app/{app.id}'.encode()):08x}"
        app.created_at = app.created_at or now
        app.updated_at = app.updated_at or app.created_at

    install_ids: set[int] = set()
    for app in gh.apps:
        for inst_id in app.installations.values():
            install_ids.add(inst_id)

    taken: dict[str, set[int]] = {}

    def ids(kind: str) -> set[int]:
        return taken.setdefault(kind, set())

    # Explicit ids first, so generated ones never collide with them.
    for o in gh.orgs:
        for collection, kind in (
            ([o], "org"),
            (o.repos, "repo"),
            ([k for r in o.repos for k in r.deploy_keys], "key"),
            (o.hooks + [h for r in o.repos for h in r.hooks], "hook"),
            ([e for r in o.repos for e in r.environments], "env"),
            (o.runners + [x for r in o.repos for x in r.runners], "runner"),
        ):
            for item in collection:
                if item.id is not None:
                    if item.id in ids(kind):
                        raise ctx.error(_where(gh, item), f"duplicate {kind} id {item.id}")
                    ids(kind).add(item.id)
    for u in _all_people(gh):
        if u.id is not None:
            ids("user").add(u.id)

    for oi, o in enumerate(gh.orgs):
        p = f"github.orgs[{oi}]"
        o.id = o.id if o.id is not None else _stable_id("org", o.login, taken=ids("org"))
        o.name = o.name if o.name is not None else o.login
        o.created_at = o.created_at or now
        o.updated_at = o.updated_at or o.created_at
        for field_name in ("members", "outside_collaborators", "repos", "pat_grants", "secrets", "variables", "runners"):
            attr = "login" if field_name in ("members", "outside_collaborators") else "name"
            if field_name == "pat_grants":
                attr = "id"
            _check_unique(getattr(o, field_name), attr, f"{p}.{field_name}", ctx)
        _check_unique(o.installations, "id", f"{p}.installations", ctx)
        repo_names = {r.name.lower() for r in o.repos}

        def need_repo(name: str, path: str) -> None:
            if name.lower() not in repo_names:
                raise ctx.error(path, f"no repository {name!r} in org {o.login!r}")

        for ci, c in enumerate(o.outside_collaborators):
            if o.member(c.login):
                raise ctx.error(f"{p}.outside_collaborators[{ci}].login", f"{c.login!r} is also a member of {o.login!r}")
            for rname in c.repos:
                need_repo(rname, f"{p}.outside_collaborators[{ci}].repos.{rname}")
        for ri, r in enumerate(o.repos):
            rp = f"{p}.repos[{ri}]"
            r.id = r.id if r.id is not None else _stable_id("repo", o.login, r.name, taken=ids("repo"))
            r.created_at = r.created_at or now
            r.updated_at = r.updated_at or r.created_at
            r.pushed_at = r.pushed_at or r.updated_at
            _check_unique(r.environments, "name", f"{rp}.environments", ctx)
            _check_unique(r.secrets, "name", f"{rp}.secrets", ctx)
            _check_unique(r.variables, "name", f"{rp}.variables", ctx)
            _check_unique(r.runners, "name", f"{rp}.runners", ctx)
            for k in r.deploy_keys:
                k.id = k.id if k.id is not None else _stable_id("key", o.login, r.name, k.title, taken=ids("key"))
                k.created_at = k.created_at or now
                if k.key is None:
                    k.key = _fake_ssh_key(f"{o.login}/{r.name}/{k.title}/{k.id}")
            for h in r.hooks:
                _finish_hook(h, ("repo", o.login, r.name), ids("hook"), now)
            for s in r.secrets:
                _finish_dated(s, now)
            for v in r.variables:
                _finish_dated(v, now)
            for e in r.environments:
                e.id = e.id if e.id is not None else _stable_id("env", o.login, r.name, e.name, taken=ids("env"))
                _finish_dated(e, now)
                _check_unique(e.secrets, "name", f"{rp}.environments[{r.environments.index(e)}].secrets", ctx)
                _check_unique(e.variables, "name", f"{rp}.environments[{r.environments.index(e)}].variables", ctx)
                for s in e.secrets:
                    _finish_dated(s, now)
                for v in e.variables:
                    _finish_dated(v, now)
            for x in r.runners:
                _finish_runner(x, ("repo", o.login, r.name), ids("runner"))
        for h in o.hooks:
            _finish_hook(h, ("org", o.login), ids("hook"), now)
        for x in o.runners:
            _finish_runner(x, ("org", o.login), ids("runner"))
        for ii, inst in enumerate(o.installations):
            if inst.id in install_ids:
                raise ctx.error(f"{p}.installations[{ii}].id", f"installation id {inst.id} is also used by an app in github.apps")
            install_ids.add(inst.id)
            _check_app_permissions(inst.permissions, f"{p}.installations[{ii}].permissions", ctx)
            for rname in inst.repositories:
                need_repo(rname, f"{p}.installations[{ii}].repositories")
            inst.client_id = inst.client_id or f"Iv1.{zlib.crc32(f'app/{inst.app_id}'.encode()):08x}"
            inst.created_at = inst.created_at or now
            inst.updated_at = inst.updated_at or inst.created_at
        for gi, g in enumerate(o.pat_grants):
            for rname in g.repositories:
                need_repo(rname, f"{p}.pat_grants[{gi}].repositories")
            g.access_granted_at = g.access_granted_at or now
            if g.token_expired is None:
                g.token_expired = g.token_expires_at is not None and g.token_expires_at <= now
        for ca in o.credential_authorizations:
            ca.credential_authorized_at = ca.credential_authorized_at or now
        for si, s in enumerate(o.secrets):
            for rname in s.selected_repositories:
                need_repo(rname, f"{p}.secrets[{si}].selected_repositories")
            _finish_dated(s, now)
        for vi, v in enumerate(o.variables):
            for rname in v.selected_repositories:
                need_repo(rname, f"{p}.variables[{vi}].selected_repositories")
            _finish_dated(v, now)

    # People: every login mentioned anywhere becomes a user with a stable id.
    for person in _all_people(gh):
        if person.id is None:
            person.id = _lookup_user_id(gh, person.login) or _stable_id("user", person.login, taken=ids("user"))
        person.created_at = person.created_at or now
        person.updated_at = person.updated_at or person.created_at
    known = {u.login.lower() for u in _all_people(gh)}
    mentioned = [t.login for t in gh.tokens]
    for o in gh.orgs:
        mentioned += [g.owner for g in o.pat_grants]
        mentioned += [c.login for c in o.credential_authorizations]
        mentioned += [i.suspended_by for i in o.installations if i.suspended_by]
        for r in o.repos:
            mentioned += list(r.collaborators)
            mentioned += [k.added_by for k in r.deploy_keys if k.added_by]
    for login in mentioned:
        if login.lower() not in known:
            known.add(login.lower())
            gh.users.append(
                User(login=login, id=_stable_id("user", login, taken=ids("user")), created_at=now, updated_at=now)
            )


def _where(gh: GitHubEstate, item: Any) -> str:
    for oi, o in enumerate(gh.orgs):
        if item is o:
            return f"github.orgs[{oi}].id"
        for ri, r in enumerate(o.repos):
            if item is r:
                return f"github.orgs[{oi}].repos[{ri}].id"
            for name in ("deploy_keys", "hooks", "environments", "runners"):
                for i, x in enumerate(getattr(r, name)):
                    if item is x:
                        return f"github.orgs[{oi}].repos[{ri}].{name}[{i}].id"
        for name in ("hooks", "runners"):
            for i, x in enumerate(getattr(o, name)):
                if item is x:
                    return f"github.orgs[{oi}].{name}[{i}].id"
    return "github"


def _all_people(gh: GitHubEstate) -> list:
    people: list = list(gh.users)
    for o in gh.orgs:
        people += o.members + o.outside_collaborators
    return people


def _lookup_user_id(gh: GitHubEstate, login: str) -> int | None:
    """The same login in two orgs is the same GitHub user: reuse an id already given to it."""
    for person in _all_people(gh):
        if person.login.lower() == login.lower() and person.id is not None:
            return person.id
    return None


def _finish_dated(obj: Any, now: datetime) -> None:
    obj.created_at = obj.created_at or now
    obj.updated_at = obj.updated_at or obj.created_at


def _finish_hook(h: Hook, where: tuple, taken: set[int], now: datetime) -> None:
    h.id = h.id if h.id is not None else _stable_id("hook", *where, h.url, taken=taken)
    _finish_dated(h, now)


def _finish_runner(x: Runner, where: tuple, taken: set[int]) -> None:
    x.id = x.id if x.id is not None else _stable_id("runner", *where, x.name, taken=taken)
    if x.labels is None:
        x.labels = ["self-hosted", x.os]


def _fake_ssh_key(seed: str) -> str:
    """A syntactically valid-looking ed25519 public key, derived from ``seed`` (not a real key)."""
    import base64
    import hashlib

    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(seed.encode()).digest()
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def _check_faults(faults: list[Fault], path: str, ctx: _Ctx) -> None:
    for fi, f in enumerate(faults):
        if not f.path.startswith("/"):
            raise ctx.error(f"{path}[{fi}].path", f"expected a path starting with '/', got {f.path!r}")
        if f.path.startswith("/api/v3"):
            raise ctx.error(f"{path}[{fi}].path", "leave out the /api/v3 prefix: patterns match the API path, e.g. /orgs/acme/hooks")
        if f.times is not None and f.times < 0:
            raise ctx.error(f"{path}[{fi}].times", "expected a non-negative integer")
        if f.method is not None:
            f.method = f.method.upper()


def _check_app_permissions(perms: dict[str, str], path: str, ctx: _Ctx) -> None:
    for name in perms:
        if name not in APP_PERMISSIONS:
            hint = difflib.get_close_matches(name, sorted(APP_PERMISSIONS), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ctx.error(_join(path, name), f"unknown GitHub App permission {name!r}{did}")


# --------------------------------------------------------------------------------------------
# Entry point


def load_estate(
    source: str | Path | dict[str, Any],
    *,
    now: datetime | None = None,
) -> Estate:
    """Load and validate an estate from a YAML file path or an already-parsed mapping.

    ``now`` is the clock for relative times when the estate has no ``now:`` key of its own; it
    defaults to the current UTC time. Raises ``EstateError`` naming the file and YAML path.
    """
    file: str | None = None
    if isinstance(source, (str, Path)):
        file = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise EstateError(f"cannot read estate file: {e.strerror or e}", file=file) from None
        try:
            raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
        except yaml.YAMLError as e:
            raise EstateError(f"not valid YAML: {e}", file=file) from None
        if raw is None:
            raw = {}
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        raise TypeError(f"load_estate() takes a path or a mapping, not {type(source).__name__}")

    boot = _Ctx(now=datetime.now(timezone.utc), file=file)
    if not isinstance(raw, dict):
        raise boot.error("", f"expected a mapping at the top level, got {_show(raw)}")
    fallback = now if now is not None else datetime.now(timezone.utc)
    if fallback.tzinfo is None:
        fallback = fallback.replace(tzinfo=timezone.utc)
    clock = fallback
    if raw.get("now") is not None:
        try:
            clock = parse_time(raw["now"], fallback)
        except ValueError as e:
            raise boot.error("now", str(e)) from None
    ctx = _Ctx(now=clock, file=file)

    allowed = {"now", "github", "people", "contracts", "installation", *VENDOR_SECTIONS}
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ctx.error(str(key), f"unknown key{did} (allowed: {', '.join(sorted(allowed))})")
    github = _build(GitHubEstate, raw.get("github") or {}, "github", ctx)
    for key in ("people", "contracts"):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ctx.error(key, f"expected a list of mappings, got {_show(value)}")
    _finalize(github, ctx)
    vendors = {name: vendor_module(name).parse_estate(raw[name] or {}, ctx, name) for name in VENDOR_SECTIONS if name in raw}
    return Estate(
        now=clock,
        github=github,
        people=list(raw.get("people") or []),
        contracts=list(raw.get("contracts") or []),
        source=file,
        vendors=vendors,
        installation=_installation(raw.get("installation"), ctx),
    )


_INSTALLATION_KEYS = ("identity_logins", "ownership", "jira_contract_register", "aws_scanner_user")


def _installation(raw: Any, ctx: "_Ctx") -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ctx.error("installation", f"expected a mapping, got {_show(raw)}")
    for key in raw:
        if key not in _INSTALLATION_KEYS:
            raise ctx.error(f"installation.{key}", f"unknown key (allowed: {', '.join(_INSTALLATION_KEYS)})")
    for i, item in enumerate(raw.get("ownership") or []):
        if not isinstance(item, dict) or not {"key", "owner"} <= set(item):
            raise ctx.error(f"installation.ownership[{i}]", f"expected a mapping with key, owner (and evidence), got {_show(item)}")
    return dict(raw)


# Top-level estate sections besides ``github``. Each is parsed and served by ``sandbox/<name>.py``,
# which defines ``parse_estate(raw, ctx, path) -> state`` (raise ``ctx.error(path, message)`` on
# bad input), ``build(estate, *, reload, **options) -> WSGI app`` and ``URL_SUFFIX``.
VENDOR_SECTIONS = ("gitlab", "slack", "jira", "okta", "entra", "aws", "git")


def vendor_module(name: str):
    """The emulator module for a vendor section, or None when it is not written yet."""
    try:
        return importlib.import_module(f"sandbox.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"sandbox.{name}":
            return None
        raise
