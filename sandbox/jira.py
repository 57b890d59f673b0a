"""A stateful, wire-compatible emulator of the Jira REST API and the Atlassian organization admin API.

One WSGI app (werkzeug routing) serves, from the estate's ``jira:`` section:

* **Jira**, Cloud or Server/Data Center (``deployment: cloud|server``), under ``/rest/api/2``
  (and ``/rest/api/3`` on Cloud, ``/rest/api/latest`` on Server): ``serverInfo`` (the ``jira``
  client reads ``versionNumbers`` and ``deploymentType`` from it first), ``myself``, users with
  ``self`` on every user object (Cloud ``accountId``/``accountType``, Server ``name``/``key``),
  user search, ``field``, projects and issue types, and the issue workflow the remediation code
  uses: create, get, update (labels), comment, transitions, issue properties. Search is Cloud's
  ``/search/jql`` (``nextPageToken``, ``isLast``, eventually consistent on request) or Server's
  ``/search`` (``startAt``/``total``); Cloud answers the removed ``/search`` with 410 as Atlassian
  does. A JQL subset (``AND``/``OR``/``NOT``, ``= != > >= < <= ~ !~ IN``, ``IS EMPTY``,
  ``ORDER BY``) is enough for ``project = X AND issuetype = Y``, ``labels = "x"`` and
  ``updated >= "-7d"``.
* **The organization admin API** (Cloud only; in production at ``https://api.atlassian.com``,
  here on the same server): ``/admin/v1/orgs/{orgId}/users``,
  ``/admin/api-access/v1/orgs/{orgId}/api-tokens``, ``.../service-accounts`` and
  ``/users/{accountId}/manage/api-tokens``, authenticated with an org API key as a Bearer token.

Auth as on Atlassian: Basic ``email:api-token`` on Cloud, ``username:token`` (or a Bearer PAT)
on Server. Faults are injected per credential (429 with ``Retry-After``, which the ``jira``
client's ``ResilientSession`` honours; 500; truncated JSON; slow answers). A control plane
(``/_emu/requests``, ``/_emu/reset``) and a Python API (``emulator.issues``) let tests see
what a client did. The estate format is documented in ``sandbox/README.md``.

The dataclasses below are built by ``sandbox.estate._build``, which resolves their annotations
in ``sandbox.estate``'s namespace; so this module does *not* use ``from __future__ import
annotations`` (its annotations must be real objects, not strings).
"""

import base64
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal, Optional
from urllib.parse import quote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .emulator import Emulator, half, json_response, request_entry, request_fault, route_map
from .estate import Estate, Fault, Timestamp, _build, _Ctx, _join, _show, parse_time

URL_SUFFIX = ""  # the jira client takes the site root; the admin API lives beside it
JSON_TYPE = "application/json;charset=UTF-8"

CLOUD_VERSION = "1001.0.0-SNAPSHOT"
SERVER_VERSION = "9.12.15"
JIRA_FAULTS = ("too_many_requests", "server_error", "timeout", "malformed_json")
ADMIN_SCOPES = ("read:orgs:admin", "read:accounts:admin", "read:tokens:admin", "read:service-accounts:admin")
SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
_ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
_ISSUE_KEY = re.compile(r"^([A-Z][A-Z0-9_]{1,9})-(\d+)$")

# --------------------------------------------------------------------------------------------
# Estate model (field order = documentation order; defaults are the documented defaults)

Deployment = Literal["cloud", "server"]
AccountType = Literal["atlassian", "app", "customer"]
FieldType = Literal["string", "text", "number", "date", "datetime", "user", "option", "multi_option", "labels"]
TokenStatus = Literal["ALLOWED", "BLOCKED"]


@dataclass
class JiraUser:
    """A user of the site; referred to elsewhere in the estate by email, name or account id."""

    email: Optional[str] = None
    name: Optional[str] = None  # Server username (required on Server)
    display_name: Optional[str] = None
    account_id: Optional[str] = None  # Cloud; derived when absent
    key: Optional[str] = None  # Server user key; lower-cased name when absent
    account_type: AccountType = "atlassian"
    active: bool = True
    email_visible: bool = True  # Cloud profile privacy: hide emailAddress from other users
    managed: Optional[bool] = None  # listed by the org admin API; default: atlassian accounts with an email
    last_active: Optional[Timestamp] = None  # org admin API last_active
    browse_users: bool = True  # may call user search (Browse users and groups)
    overrides: dict[str, Any] = field(default_factory=dict)  # merged over the user's JSON (malformed payloads)


@dataclass
class ApiToken:
    """A user's API token (Cloud) or personal access token (Server)."""

    owner: str
    label: str
    id: Optional[str] = None
    token: Optional[str] = None  # the value that authenticates; null = listed by the admin API only
    status: TokenStatus = "ALLOWED"
    created_at: Optional[Timestamp] = None
    expires_at: Optional[Timestamp] = None
    last_active_at: Optional[Timestamp] = None
    faults: list[Fault] = field(default_factory=list)
    user: Any = field(default=None, init=False, repr=False)


@dataclass
class AdminKey:
    """An organization API key (Bearer) for the admin API."""

    key: str
    scopes: Optional[list[str]] = None  # None: an unscoped key that may call every admin API
    faults: list[Fault] = field(default_factory=list)


@dataclass
class ServiceAccount:
    display_name: str
    id: Optional[str] = None
    account_id: Optional[str] = None  # atlassianId
    email: Optional[str] = None
    status: str = "ACTIVE"
    description: Optional[str] = None
    created_by: Optional[str] = None  # a user reference
    updated_at: Optional[Timestamp] = None
    creator: Any = field(default=None, init=False, repr=False)


@dataclass
class OrgSpec:
    id: Optional[str] = None
    name: str = "Organization"
    admin_keys: list[AdminKey] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)


@dataclass
class FieldSpec:
    """A custom field (``customfield_NNNNN``)."""

    name: str
    id: Optional[str] = None
    type: FieldType = "string"


@dataclass
class TransitionSpec:
    name: str
    to: str
    id: Optional[str] = None


@dataclass
class ProjectSpec:
    key: str
    name: Optional[str] = None
    id: Optional[str] = None
    issue_types: list[str] = field(default_factory=lambda: ["Task"])
    statuses: list[str] = field(default_factory=lambda: ["To Do", "In Progress", "Done"])
    done_statuses: Optional[list[str]] = None
    transitions: Optional[list[TransitionSpec]] = None
    lead: Optional[str] = None
    lead_user: Any = field(default=None, init=False, repr=False)


@dataclass
class CommentSpec:
    body: str
    author: Optional[str] = None
    created: Optional[Timestamp] = None
    id: str = field(default="", init=False)
    author_user: Any = field(default=None, init=False, repr=False)


@dataclass
class TransitionMade:
    """One transition performed through the API (for tests: ``emulator.issue(key).transitions_made``)."""

    name: str
    from_status: str
    to_status: str
    at: datetime
    by: Optional[str]


@dataclass
class IssueSpec:
    """An issue: estate keys, plus the live state the API changes (id, comments, transitions made)."""

    summary: str
    project: Optional[str] = None
    key: Optional[str] = None
    issue_type: str = "Task"
    description: Optional[str] = None
    status: Optional[str] = None
    labels: list[str] = field(default_factory=list)
    assignee: Optional[str] = None
    reporter: Optional[str] = None
    created: Optional[Timestamp] = None
    updated: Optional[Timestamp] = None
    fields: dict[str, Any] = field(default_factory=dict)  # custom field name or id -> value
    comments: list[CommentSpec] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # merged over the issue's JSON
    # live state
    id: str = field(default="", init=False)
    values: dict[str, Any] = field(default_factory=dict, init=False)  # custom field id -> value
    assignee_user: Any = field(default=None, init=False, repr=False)
    reporter_user: Any = field(default=None, init=False, repr=False)
    resolution_date: Optional[datetime] = field(default=None, init=False)
    transitions_made: list[TransitionMade] = field(default_factory=list, init=False)
    created_via_api: bool = field(default=False, init=False)
    hidden_searches: int = field(default=0, init=False)  # Cloud search lag still to serve

    @property
    def project_key(self) -> str:
        return self.key.split("-", 1)[0] if self.key else (self.project or "")

    @property
    def number(self) -> int:
        return int(self.key.split("-", 1)[1]) if self.key else 0


@dataclass
class JiraEstate:
    deployment: Deployment = "cloud"
    version: Optional[str] = None
    server_title: str = "Jira"
    page_limit: int = 100
    search_lag: int = 0
    users: list[JiraUser] = field(default_factory=list)
    api_tokens: list[ApiToken] = field(default_factory=list)
    org: Optional[OrgSpec] = None
    fields: list[FieldSpec] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=list)
    issues: list[IssueSpec] = field(default_factory=list)
    # derived registries
    issue_type_ids: dict[str, str] = field(default_factory=dict, init=False)
    status_ids: dict[str, str] = field(default_factory=dict, init=False)
    next_comment_id: int = field(default=10000, init=False)
    next_issue_id: int = field(default=10000, init=False)

    @property
    def cloud(self) -> bool:
        return self.deployment == "cloud"

    def user(self, ref: str) -> Optional[JiraUser]:
        """The user an estate reference (email, name, account id or key) names."""
        low = ref.strip().lower()
        for u in self.users:
            if low in {x.lower() for x in (u.email, u.name, u.account_id, u.key) if x}:
                return u
        return None

    def project(self, ref: str) -> Optional[ProjectSpec]:
        low = str(ref).lower()
        return next((p for p in self.projects if low in (p.key.lower(), str(p.id))), None)

    def field_by_ref(self, ref: str) -> Optional[FieldSpec]:
        low = ref.lower()
        return next((f for f in self.fields if low in (f.id.lower(), f.name.lower())), None)

    def issue(self, ref: str) -> Optional[IssueSpec]:
        low = str(ref).lower()
        return next((i for i in self.issues if low in ((i.key or "").lower(), i.id)), None)


# --------------------------------------------------------------------------------------------
# Estate parsing


def parse_estate(raw: Any, ctx: _Ctx, path: str) -> JiraEstate:
    """Validate the ``jira:`` section and fill in derived ids; raise ``ctx.error`` naming the YAML path."""
    j = _build(JiraEstate, raw, path, ctx)
    _finalize(j, ctx, path)
    return j


def _uuid(*parts: Any) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(str(p).lower() for p in parts).encode()).hexdigest()))


def _finalize(j: JiraEstate, ctx: _Ctx, path: str) -> None:
    if j.page_limit < 1:
        raise ctx.error(_join(path, "page_limit"), "expected a positive integer")
    if j.search_lag < 0:
        raise ctx.error(_join(path, "search_lag"), "expected a non-negative integer")
    if not j.cloud and j.search_lag:
        raise ctx.error(_join(path, "search_lag"), "search lag is Jira Cloud's (/search/jql); Server search is consistent")
    if not j.cloud and j.org is not None:
        raise ctx.error(_join(path, "org"), "the organization admin API is Atlassian Cloud only; use deployment: cloud")
    j.version = j.version or (CLOUD_VERSION if j.cloud else SERVER_VERSION)
    if not re.match(r"^\d+(\.\d+)*", j.version):
        raise ctx.error(_join(path, "version"), f"expected a version like '9.12.15', got {_show(j.version)}")

    _finalize_users(j, ctx, path)
    for i, t in enumerate(j.api_tokens):
        where = f"{path}.api_tokens[{i}]"
        t.user = _ref(j, t.owner, f"{where}.owner", ctx)
        t.id = t.id or _uuid("api_token", t.owner, t.label, i)
        t.created_at = t.created_at or ctx.now
        _check_faults(t.faults, f"{where}.faults", ctx)
    _unique([t.token for t in j.api_tokens], f"{path}.api_tokens", "token", ctx)
    _unique([t.id for t in j.api_tokens], f"{path}.api_tokens", "id", ctx)
    if j.org is not None:
        _finalize_org(j, j.org, ctx, _join(path, "org"))
    _finalize_fields(j, ctx, path)
    _finalize_projects(j, ctx, path)
    _finalize_issues(j, ctx, path)


def _finalize_users(j: JiraEstate, ctx: _Ctx, path: str) -> None:
    for i, u in enumerate(j.users):
        where = f"{path}.users[{i}]"
        if not j.cloud and not u.name:
            raise ctx.error(f"{where}.name", "required on Jira Server (the username clients log in with)")
        if not (u.email or u.name or u.display_name):
            raise ctx.error(where, "give at least one of email, name or display_name")
        if u.email is not None and "@" not in u.email:
            raise ctx.error(f"{where}.email", f"expected an email address, got {_show(u.email)}")
        u.account_id = u.account_id or f"712020:{_uuid('user', u.email or u.name or u.display_name)}"
        u.key = u.key or (u.name.lower() if u.name else None)
        u.display_name = u.display_name or u.name or (u.email.split("@")[0] if u.email else u.account_id)
        if u.managed is None:
            u.managed = u.account_type == "atlassian" and u.email is not None
    for attr in ("email", "name", "account_id"):
        _unique([getattr(u, attr) and getattr(u, attr).lower() for u in j.users], f"{path}.users", attr, ctx)


def _finalize_org(j: JiraEstate, org: OrgSpec, ctx: _Ctx, path: str) -> None:
    org.id = org.id or _uuid("org", org.name)
    for i, k in enumerate(org.admin_keys):
        for s in k.scopes or []:
            if s not in ADMIN_SCOPES:
                raise ctx.error(f"{path}.admin_keys[{i}].scopes", f"unknown scope {_show(s)} (known: {', '.join(ADMIN_SCOPES)})")
        _check_faults(k.faults, f"{path}.admin_keys[{i}].faults", ctx)
    _unique([k.key for k in org.admin_keys], f"{path}.admin_keys", "key", ctx)
    for i, s in enumerate(org.service_accounts):
        where = f"{path}.service_accounts[{i}]"
        s.id = s.id or _uuid("service_account", s.display_name)
        s.account_id = s.account_id or f"712020:{_uuid('sa', s.display_name)}"
        slug = re.sub(r"[^a-z0-9]+", "-", s.display_name.lower()).strip("-") or "service-account"
        s.email = s.email or f"{slug}@serviceaccount.atlassian.com"
        s.updated_at = s.updated_at or ctx.now
        if s.created_by is not None:
            s.creator = _ref(j, s.created_by, f"{where}.created_by", ctx)
    _unique([s.id for s in org.service_accounts], f"{path}.service_accounts", "id", ctx)


def _finalize_fields(j: JiraEstate, ctx: _Ctx, path: str) -> None:
    for i, f in enumerate(j.fields):
        f.id = f.id or f"customfield_{10050 + i}"
        if not re.match(r"^customfield_\d+$", f.id):
            raise ctx.error(f"{path}.fields[{i}].id", f"expected 'customfield_<number>', got {_show(f.id)}")
        if f.name.lower() in SYSTEM_FIELDS_BY_NAME or f.name.lower() in SYSTEM_FIELDS:
            raise ctx.error(f"{path}.fields[{i}].name", f"{_show(f.name)} is a system field's name")
    _unique([f.id for f in j.fields], f"{path}.fields", "id", ctx)
    _unique([f.name.lower() for f in j.fields], f"{path}.fields", "name", ctx)


def _finalize_projects(j: JiraEstate, ctx: _Ctx, path: str) -> None:
    for i, p in enumerate(j.projects):
        where = f"{path}.projects[{i}]"
        if not _PROJECT_KEY.match(p.key):
            raise ctx.error(f"{where}.key", f"expected an upper-case project key like 'SEC', got {_show(p.key)}")
        p.name = p.name or p.key
        p.id = p.id or str(10000 + i)
        if not p.issue_types:
            raise ctx.error(f"{where}.issue_types", "a project needs at least one issue type")
        if not p.statuses:
            raise ctx.error(f"{where}.statuses", "a project needs at least one status")
        for name in p.issue_types:
            j.issue_type_ids.setdefault(name, str(10001 + len(j.issue_type_ids)))
        for name in p.statuses:
            j.status_ids.setdefault(name, str(10000 + len(j.status_ids)))
        if p.done_statuses is None:
            p.done_statuses = [s for s in p.statuses if s.lower() in ("done", "closed", "resolved")] or [p.statuses[-1]]
        for s in p.done_statuses:
            if s not in p.statuses:
                raise ctx.error(f"{where}.done_statuses", f"{_show(s)} is not one of the project's statuses")
        if p.transitions is None:
            p.transitions = [TransitionSpec(name=s, to=s) for s in p.statuses]
        for ti, t in enumerate(p.transitions):
            if t.to not in p.statuses:
                raise ctx.error(f"{where}.transitions[{ti}].to", f"{_show(t.to)} is not one of the project's statuses")
            t.id = t.id or str(11 + 10 * ti)
        _unique([t.id for t in p.transitions], f"{where}.transitions", "id", ctx)
        if p.lead is not None:
            p.lead_user = _ref(j, p.lead, f"{where}.lead", ctx)
    _unique([p.key for p in j.projects], f"{path}.projects", "key", ctx)


def _finalize_issues(j: JiraEstate, ctx: _Ctx, path: str) -> None:
    numbers: dict[str, int] = {}
    for i, issue in enumerate(j.issues):
        if issue.key:
            m = _ISSUE_KEY.match(issue.key)
            if not m:
                raise ctx.error(f"{path}.issues[{i}].key", f"expected a key like 'SEC-1', got {_show(issue.key)}")
            numbers[m.group(1)] = max(numbers.get(m.group(1), 0), int(m.group(2)))
    for i, issue in enumerate(j.issues):
        where = f"{path}.issues[{i}]"
        pkey = issue.key.split("-", 1)[0] if issue.key else issue.project
        if not pkey:
            raise ctx.error(where, "give the issue a key ('SEC-1') or a project")
        if issue.project and issue.key and issue.project != pkey:
            raise ctx.error(f"{where}.project", f"the key {issue.key!r} belongs to project {pkey!r}")
        project = j.project(pkey)
        if project is None or project.key != pkey:
            raise ctx.error(f"{where}.project", f"no project {pkey!r} in jira.projects")
        if not issue.key:
            numbers[pkey] = numbers.get(pkey, 0) + 1
            issue.key = f"{pkey}-{numbers[pkey]}"
        issue.project = pkey
        if issue.issue_type not in project.issue_types:
            raise ctx.error(f"{where}.issue_type", f"{_show(issue.issue_type)} is not an issue type of {pkey} ({', '.join(project.issue_types)})")
        issue.status = issue.status or project.statuses[0]
        if issue.status not in project.statuses:
            raise ctx.error(f"{where}.status", f"{_show(issue.status)} is not a status of {pkey} ({', '.join(project.statuses)})")
        for label in issue.labels:
            if not label or any(c.isspace() for c in label):
                raise ctx.error(f"{where}.labels", f"label {_show(label)} is empty or contains spaces (Jira refuses it)")
        issue.assignee_user = _ref(j, issue.assignee, f"{where}.assignee", ctx) if issue.assignee else None
        issue.reporter_user = _ref(j, issue.reporter, f"{where}.reporter", ctx) if issue.reporter else None
        issue.created = issue.created or ctx.now
        issue.updated = issue.updated or issue.created
        if issue.status in (project.done_statuses or []):
            issue.resolution_date = issue.updated
        issue.id = str(j.next_issue_id)
        j.next_issue_id += 1
        for name, value in issue.fields.items():
            spec = j.field_by_ref(name)
            if spec is None:
                raise ctx.error(f"{where}.fields.{name}", f"no custom field named or numbered {name!r} in jira.fields")
            try:
                issue.values[spec.id] = _estate_value(j, spec, value, ctx.now)
            except ValueError as e:
                raise ctx.error(f"{where}.fields.{name}", str(e)) from None
        for ci, c in enumerate(issue.comments):
            c.author_user = _ref(j, c.author, f"{where}.comments[{ci}].author", ctx) if c.author else None
            c.created = c.created or issue.created
            c.id = str(j.next_comment_id)
            j.next_comment_id += 1
    _unique([i.key for i in j.issues], f"{path}.issues", "key", ctx)


def _estate_value(j: JiraEstate, spec: FieldSpec, value: Any, now: datetime) -> Any:
    """An estate value for a custom field, in the emulator's own representation."""
    if value is None:
        return None
    t = spec.type
    if t in ("string", "text", "option"):
        if not isinstance(value, str):
            raise ValueError(f"expected a string for a {t} field, got {_show(value)}")
        return value
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {_show(value)}")
        return value
    if t == "date":
        return parse_time(value, now).date().isoformat()
    if t == "datetime":
        return parse_time(value, now)
    if t == "user":
        user = j.user(str(value))
        if user is None:
            raise ValueError(f"no user {value!r} in jira.users")
        return user
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings for a {t} field, got {_show(value)}")
    return list(value)


def _ref(j: JiraEstate, ref: Optional[str], where: str, ctx: _Ctx) -> JiraUser:
    user = j.user(ref or "")
    if user is None:
        raise ctx.error(where, f"no user with email, name or account id {ref!r} in jira.users")
    return user


def _unique(values: list[Any], path: str, attr: str, ctx: _Ctx) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        if v in seen:
            raise ctx.error(f"{path}[{i}].{attr}", f"duplicate {attr} (also at [{seen[v]}])")
        seen[v] = i


def _check_faults(faults: list[Fault], path: str, ctx: _Ctx) -> None:
    for i, f in enumerate(faults):
        if f.fault not in JIRA_FAULTS:
            raise ctx.error(f"{path}[{i}].fault", f"{f.fault!r} is a GitHub fault; Jira's are {', '.join(JIRA_FAULTS)}")
        if not f.path.startswith("/"):
            raise ctx.error(f"{path}[{i}].path", f"expected a path starting with '/', got {f.path!r}")
        if f.times is not None and f.times < 0:
            raise ctx.error(f"{path}[{i}].times", "expected a non-negative integer")
        if f.method is not None:
            f.method = f.method.upper()


# --------------------------------------------------------------------------------------------
# System fields

# id -> (name, JQL clause names, schema type)
SYSTEM_FIELDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "summary": ("Summary", ("summary",), "string"),
    "description": ("Description", ("description",), "string"),
    "issuetype": ("Issue Type", ("issuetype", "type"), "issuetype"),
    "project": ("Project", ("project",), "project"),
    "status": ("Status", ("status",), "status"),
    "labels": ("Labels", ("labels",), "array"),
    "assignee": ("Assignee", ("assignee",), "user"),
    "reporter": ("Reporter", ("reporter",), "user"),
    "creator": ("Creator", ("creator",), "user"),
    "created": ("Created", ("created", "createdDate"), "datetime"),
    "updated": ("Updated", ("updated", "updatedDate"), "datetime"),
    "resolution": ("Resolution", ("resolution",), "resolution"),
    "resolutiondate": ("Resolved", ("resolved", "resolutiondate"), "datetime"),
    "priority": ("Priority", ("priority",), "priority"),
    "comment": ("Comment", ("comment",), "comments-page"),
}
SYSTEM_FIELDS_BY_NAME = {v[0].lower(): k for k, v in SYSTEM_FIELDS.items()}
_CUSTOM_SCHEMA = {
    "string": ("string", "com.atlassian.jira.plugin.system.customfieldtypes:textfield"),
    "text": ("string", "com.atlassian.jira.plugin.system.customfieldtypes:textarea"),
    "number": ("number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    "date": ("date", "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"),
    "datetime": ("datetime", "com.atlassian.jira.plugin.system.customfieldtypes:datetime"),
    "user": ("user", "com.atlassian.jira.plugin.system.customfieldtypes:userpicker"),
    "option": ("option", "com.atlassian.jira.plugin.system.customfieldtypes:select"),
    "multi_option": ("array", "com.atlassian.jira.plugin.system.customfieldtypes:multiselect"),
    "labels": ("array", "com.atlassian.jira.plugin.system.customfieldtypes:labels"),
}


def jira_time(value: Optional[datetime]) -> Optional[str]:
    """Jira's timestamp format: ``2026-11-01T12:00:00.000+0000``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def admin_time(value: Optional[datetime]) -> Optional[str]:
    """The admin APIs' timestamp format: ISO 8601 with milliseconds and ``Z``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _adf(text: Optional[str]) -> Optional[dict[str, Any]]:
    """Plain text as a minimal Atlassian Document (what /rest/api/3 returns for rich-text fields)."""
    if text is None:
        return None
    paragraphs = [{"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
                  for line in text.split("\n")]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _adf_text(doc: Any) -> str:
    """The text of an Atlassian Document, paragraphs joined by newlines."""
    if isinstance(doc, dict):
        if doc.get("type") == "text":
            return str(doc.get("text", ""))
        parts = [_adf_text(c) for c in doc.get("content") or []]
        return ("\n" if doc.get("type") == "doc" else "").join(parts)
    return ""


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


# --------------------------------------------------------------------------------------------
# JQL (a subset)


class JqlError(Exception):
    """A JQL query Jira would refuse; the text is what Jira says."""


_JQL_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<lp>\() | (?P<rp>\)) | (?P<comma>,)
      | (?P<word>cf\[\d+\]|[^\s"'(),=!<>~]+)
    )""",
    re.X,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}


@dataclass
class _Tok:
    kind: str  # str | op | lp | rp | comma | word | end
    text: str
    quoted: bool = False

    def kw(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


def _tokenize(jql: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    jql = jql.rstrip()
    while pos < len(jql):
        m = _JQL_TOKEN.match(jql, pos)
        if not m or m.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{jql[pos:].strip()[:1]}' is a reserved JQL character. "
                           f"You must enclose it in a string or use the escape '\\u0022' instead. (line 1, character {pos + 1})")
        pos = m.end()
        kind = m.lastgroup or "word"
        text = m.group(kind)
        if kind == "str":
            out.append(_Tok("word", re.sub(r"\\(.)", r"\1", text[1:-1]), quoted=True))
        else:
            out.append(_Tok(kind, text))
    out.append(_Tok("end", ""))
    return out


class _Parser:
    def __init__(self, jql: str):
        self.toks = _tokenize(jql)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, expecting: str) -> JqlError:
        tok = self.peek()
        got = f"'{tok.text}'" if tok.kind != "end" else "end of query"
        return JqlError(f"Error in the JQL Query: Expecting {expecting} but got {got}.")

    def parse(self) -> tuple[Optional[tuple], list[tuple[str, bool]]]:
        where = None
        if not self.peek().kw("order") and self.peek().kind != "end":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.peek().kw("order"):
            self.take()
            if not self.peek().kw("by"):
                raise self.fail("'by'")
            self.take()
            while True:
                tok = self.take()
                if tok.kind != "word":
                    raise JqlError("Error in the JQL Query: Expecting a field name after 'order by'.")
                descending = False
                if self.peek().kw("asc") or self.peek().kw("desc"):
                    descending = self.take().text.lower() == "desc"
                order.append((tok.text, descending))
                if self.peek().kind != "comma":
                    break
                self.take()
        if self.peek().kind != "end":
            raise self.fail("either 'OR' or 'AND'")
        return where, order

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.peek().kw("or"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple:
        node = self.not_expr()
        while self.peek().kw("and"):
            self.take()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> tuple:
        tok = self.peek()
        if tok.kw("not") or (tok.kind == "op" and tok.text == "!"):
            self.take()
            return ("not", self.not_expr())
        if tok.kind == "lp":
            self.take()
            node = self.or_expr()
            if self.take().kind != "rp":
                raise JqlError("Error in the JQL Query: Expecting ')' before the end of the query.")
            return node
        return self.clause()

    def clause(self) -> tuple:
        tok = self.take()
        if tok.kind != "word" or (not tok.quoted and tok.text.lower() in _KEYWORDS):
            self.i -= 1
            raise self.fail("a field name")
        fieldname = tok.text
        op_tok = self.take()
        if op_tok.kind == "op":
            op = op_tok.text
        elif op_tok.kw("in"):
            op = "in"
        elif op_tok.kw("not") and self.peek().kw("in"):
            self.take()
            op = "not in"
        elif op_tok.kw("is"):
            op = "is"
            if self.peek().kw("not"):
                self.take()
                op = "is not"
        else:
            self.i -= 1
            raise self.fail("operator")
        if op in ("is", "is not"):
            if not (self.peek().kw("empty") or self.peek().kw("null")):
                raise self.fail("EMPTY or NULL")
            self.take()
            return ("clause", fieldname, op, ("empty",))
        if op in ("in", "not in"):
            if self.take().kind != "lp":
                raise JqlError(f"Error in the JQL Query: Expecting '(' after '{op.upper()}'.")
            values = [self.value()]
            while self.peek().kind == "comma":
                self.take()
                values.append(self.value())
            if self.take().kind != "rp":
                raise JqlError("Error in the JQL Query: Expecting ')' to close the list.")
            return ("clause", fieldname, op, ("list", values))
        return ("clause", fieldname, op, self.value())

    def value(self) -> tuple:
        tok = self.take()
        if tok.kind != "word":
            self.i -= 1
            raise self.fail("either a value, 'EMPTY' or a function")
        if not tok.quoted and tok.text.lower() in ("empty", "null"):
            return ("empty",)
        if not tok.quoted and self.peek().kind == "lp":
            self.take()
            if self.take().kind != "rp":
                raise JqlError(f"Error in the JQL Query: function '{tok.text}' takes no arguments here.")
            return ("func", tok.text.lower())
        return ("lit", tok.text)


def parse_jql(jql: str) -> tuple[Optional[tuple], list[tuple[str, bool]]]:
    """(where-tree or None, [(order field, descending)]); raises JqlError."""
    return _Parser(jql or "").parse()


_JQL_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_JQL_PERIOD = re.compile(r"^([+-]?)\s*(\d+)\s*([wdhm])$")


# --------------------------------------------------------------------------------------------
# The emulator


class ApiError(Exception):
    """Becomes a Jira-shaped (``errorMessages``/``errors``) or admin-shaped (``errors[]``) error."""

    def __init__(self, status: int, message: str = "", *, errors: Optional[dict[str, str]] = None,
                 headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}


@dataclass
class Principal:
    kind: str  # "basic" | "bearer" | "admin_key"
    credential: str
    user: Optional[JiraUser] = None
    token: Optional[ApiToken] = None
    admin_key: Optional[AdminKey] = None

    @property
    def faults(self) -> list[Fault]:
        if self.token is not None:
            return self.token.faults
        if self.admin_key is not None:
            return self.admin_key.faults
        return []


@dataclass
class Ctx:
    request: Request
    base: str  # http://127.0.0.1:PORT
    path: str
    principal: Optional[Principal] = None
    version: str = "2"  # REST version of the route: 2, 3 or latest
    admin: bool = False

    @property
    def rest(self) -> str:
        return f"{self.base}/rest/api/{self.version}"


class JiraEmulator(Emulator[JiraEstate]):
    """The Jira (+ Atlassian admin) WSGI app. ``state`` is the live estate; ``issues`` what clients did to it."""

    vendor = "jira"
    url_suffix = URL_SUFFIX
    credential_word = "credential"
    control_content_type = JSON_TYPE

    def __init__(self, estate: Estate, *, reload: Optional[Callable[[], Estate]] = None):
        super().__init__(estate, reload=reload)
        self._started = time.monotonic()
        self.jira: JiraEstate = estate.vendors.get("jira") or JiraEstate()
        v = "/rest/api/<version>"
        self.url_map = route_map(
            [
                Rule(f"{v}/serverInfo", endpoint="server_info"),
                Rule(f"{v}/myself", endpoint="myself"),
                Rule(f"{v}/user", endpoint="get_user"),
                Rule(f"{v}/users/search", endpoint="users_search"),
                Rule(f"{v}/users", endpoint="users_search"),
                Rule(f"{v}/user/search", endpoint="user_search"),
                Rule(f"{v}/field", endpoint="fields"),
                Rule(f"{v}/search", endpoint="search", methods=["GET", "POST"]),
                Rule(f"{v}/search/jql", endpoint="search_jql", methods=["GET", "POST"]),
                Rule(f"{v}/issue", endpoint="create_issue", methods=["POST"]),
                Rule(f"{v}/issue/<ref>", endpoint="issue", methods=["GET", "PUT"]),
                Rule(f"{v}/issue/<ref>/comment", endpoint="comments", methods=["GET", "POST"]),
                Rule(f"{v}/issue/<ref>/transitions", endpoint="transitions", methods=["GET", "POST"]),
                Rule(f"{v}/issue/<ref>/properties", endpoint="properties"),
                Rule(f"{v}/issue/<ref>/properties/<prop>", endpoint="property", methods=["GET", "PUT", "DELETE"]),
                Rule(f"{v}/issue/createmeta/<project>/issuetypes", endpoint="createmeta_issuetypes"),
                Rule(f"{v}/project", endpoint="projects"),
                Rule(f"{v}/project/<ref>", endpoint="project"),
                Rule(f"{v}/issuetype", endpoint="issue_types"),
                Rule(f"{v}/issuetype/<ref>", endpoint="issue_type"),
                Rule("/admin/v1/orgs", endpoint="admin_orgs"),
                Rule("/admin/v1/orgs/<org_id>", endpoint="admin_org"),
                Rule("/admin/v1/orgs/<org_id>/users", endpoint="admin_users"),
                Rule("/admin/api-access/v1/orgs/<org_id>/api-tokens", endpoint="admin_api_tokens"),
                Rule("/admin/api-access/v1/orgs/<org_id>/service-accounts", endpoint="admin_service_accounts"),
                Rule("/users/<account_id>/manage/api-tokens", endpoint="admin_user_api_tokens"),
            ]
        )

    # ------------------------------------------------------------------------------------
    # Public Python API (the request log, reset and stop are ``Emulator``'s)

    @property
    def state(self) -> JiraEstate:
        return self.jira

    @property
    def issues(self) -> list[IssueSpec]:
        """Every issue, live (with ``comments``, ``labels``, ``status``, ``transitions_made``, ``properties``)."""
        with self._lock:
            return list(self.jira.issues)

    def issue(self, key: str) -> IssueSpec:
        with self._lock:
            found = self.jira.issue(key)
        if found is None:
            raise KeyError(f"no issue {key}")
        return found

    def clock(self) -> datetime:
        """The emulator's clock: the estate's ``now`` plus the time since the emulator started."""
        return self.estate.now + timedelta(seconds=time.monotonic() - self._started)

    def set_estate(self, estate: Estate) -> None:
        with self._lock:
            super().set_estate(estate)
            self.jira = estate.vendors.get("jira") or JiraEstate()
            self._started = time.monotonic()

    # ------------------------------------------------------------------------------------
    # Serving a call

    def _crash_response(self) -> Response:
        return json_response({"errorMessages": ["Internal server error"], "errors": {}}, 500, content_type=JSON_TYPE)

    def _begin(self, request: Request, path: str) -> Ctx:
        ctx = Ctx(request=request, base=request.host_url.rstrip("/"), path=path)
        ctx.admin = path.startswith(("/admin/", "/users/"))
        return ctx

    def _serve(self, ctx: Ctx) -> tuple[Response, Optional[str]]:
        try:
            ctx.principal = self._authenticate(ctx)
        except ApiError as e:
            return self._error(ctx, e), None
        fault = self._pick_fault(ctx)
        if fault is not None and fault.fault in ("too_many_requests", "server_error"):
            return self._fault_response(ctx, fault), fault.fault
        self._stall(fault)
        try:
            endpoint, args = self.url_map.bind(ctx.request.host).match(ctx.path, method=ctx.request.method)
            version = args.pop("version", None)
            if version is not None:
                if version not in (("2", "3") if self.jira.cloud else ("2", "latest")):
                    raise NotFound()
                ctx.version = version
            if ctx.principal is None and endpoint != "server_info":
                raise ApiError(401, "You are not authenticated. Authentication required to perform this operation.")
            if ctx.admin and (ctx.principal is None or ctx.principal.kind != "admin_key"):
                raise ApiError(401, "Unauthorized")
            if not ctx.admin and ctx.principal is not None and ctx.principal.kind == "admin_key":
                raise ApiError(401, "Client must be authenticated to access this resource.")
            with self._lock:
                status, body = getattr(self, "h_" + endpoint)(ctx, **args)
        except (NotFound, MethodNotAllowed):
            return self._error(ctx, ApiError(404, "null for uri: " + ctx.request.url if not ctx.admin else "Not Found")), None
        except ApiError as e:
            return self._error(ctx, e), None
        headers = self._headers(ctx)
        if status == 204:
            return Response(b"", status=204, headers=headers), None
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if fault is not None and fault.fault == "malformed_json":
            return Response(half(payload), status=status, headers=headers, content_type=JSON_TYPE), "malformed_json"
        return Response(payload, status=status, headers=headers, content_type=JSON_TYPE), None

    def _headers(self, ctx: Ctx) -> dict[str, str]:
        headers = {"X-AREQUESTID": hashlib.md5(f"{time.monotonic_ns()}".encode()).hexdigest()[:12],
                   "Cache-Control": "no-cache, no-store, no-transform"}
        if ctx.admin:
            headers.update({"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "999",
                            "X-RateLimit-Reset": admin_time(self.clock() + timedelta(minutes=1)) or ""})
        return headers

    def _error(self, ctx: Ctx, err: ApiError) -> Response:
        headers = self._headers(ctx)
        headers.update(err.headers)
        if ctx.admin:
            body: Any = {"errors": [{"id": hashlib.md5(err.message.encode()).hexdigest()[:16], "status": str(err.status),
                                     "code": _ADMIN_CODES.get(err.status, "ERROR"), "title": _ADMIN_TITLES.get(err.status, "Error"),
                                     "detail": err.message}]}
        else:
            body = {"errorMessages": [err.message] if err.message else [], "errors": err.errors}
            if err.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
        return Response(json.dumps(body), status=err.status, headers=headers, content_type=JSON_TYPE)

    # ------------------------------------------------------------------------------------
    # Request log

    def _log_request(self, ctx: Ctx, status: int, fault: Optional[str], elapsed: float) -> None:
        p = ctx.principal
        entry = request_entry(ctx.request, ctx.path, p.credential if p else None, status, fault,
                              auth=p.kind if p else None, api="admin" if ctx.admin else "jira")
        self._record(entry, elapsed=elapsed)

    # ------------------------------------------------------------------------------------
    # Authentication and faults

    def _authenticate(self, ctx: Ctx) -> Optional[Principal]:
        header = ctx.request.headers.get("Authorization", "").strip()
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        j = self.jira
        now = self.clock()
        with self._lock:
            if scheme.lower() == "bearer" and value:
                keys = j.org.admin_keys if j.org else []
                key = next((k for k in keys if k.key == value), None)
                if key is not None:
                    return Principal("admin_key", value, admin_key=key)
                if ctx.admin:
                    raise ApiError(401, "The API key is invalid or has been revoked")
                if j.cloud:  # Cloud takes API tokens as Basic auth only
                    raise ApiError(401, "Client must be authenticated to access this resource.")
                token = self._token(value, now)
                return Principal("bearer", value, user=token.user, token=token)
            if scheme.lower() == "basic" and value:
                try:
                    user, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise ApiError(401, "Client must be authenticated to access this resource.") from None
                token = self._token(secret, now)
                owner = token.user
                login = owner.email if j.cloud else owner.name
                if login is None or user.strip().lower() != login.lower():
                    raise ApiError(401, "Client must be authenticated to access this resource.")
                return Principal("basic", secret, user=owner, token=token)
        raise ApiError(401, "Client must be authenticated to access this resource.")

    def _token(self, value: str, now: datetime) -> ApiToken:
        token = next((t for t in self.jira.api_tokens if t.token and t.token == value), None)
        if token is None or token.status != "ALLOWED" or not token.user.active:
            raise ApiError(401, "Client must be authenticated to access this resource.")
        if token.expires_at is not None and token.expires_at <= now:
            raise ApiError(401, "Client must be authenticated to access this resource.")
        token.last_active_at = now  # Atlassian records each use (admin API lastActiveAt)
        return token

    def _pick_fault(self, ctx: Ctx) -> Optional[Fault]:
        p = ctx.principal
        if p is None:
            return None
        return self._select_fault(p.credential, p.faults, request_fault(ctx.request.method, ctx.path))

    def _fault_response(self, ctx: Ctx, fault: Fault) -> Response:
        if fault.fault == "too_many_requests":
            err = ApiError(429, "Rate limit exceeded.", headers={
                "Retry-After": str(fault.retry_after), "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                "X-RateLimit-FillRate": "10", "X-RateLimit-Interval-Seconds": "1", "RateLimit-Reason": "jira-burst-based"})
        else:
            err = ApiError(500, "Internal server error")
        return self._error(ctx, err)

    # ------------------------------------------------------------------------------------
    # JSON shapes

    def user_json(self, ctx: Ctx, u: Optional[JiraUser], *, viewer: Optional[JiraUser] = None) -> Optional[dict[str, Any]]:
        if u is None:
            return None
        avatar = f"{ctx.base}/secure/useravatar?avatarId=10122"
        sizes = {s: avatar + f"&size={n}" for s, n in (("48x48", "large"), ("24x24", "small"), ("16x16", "xsmall"), ("32x32", "medium"))}
        if self.jira.cloud:
            body: dict[str, Any] = {
                "self": f"{ctx.rest}/user?accountId={quote(u.account_id or '')}",
                "accountId": u.account_id,
                "accountType": u.account_type,
            }
            if u.email and (u.email_visible or viewer is u):
                body["emailAddress"] = u.email
            body.update({"avatarUrls": sizes, "displayName": u.display_name, "active": u.active,
                         "timeZone": "Etc/UTC", "locale": "en_US"})
        else:
            body = {
                "self": f"{ctx.rest}/user?username={quote(u.name or '')}",
                "key": u.key,
                "name": u.name,
                "emailAddress": u.email,
                "avatarUrls": sizes,
                "displayName": u.display_name,
                "active": u.active,
                "deleted": False,
                "timeZone": "Etc/UTC",
                "locale": "en_US",
            }
        body.update(u.overrides)
        return body

    def _project_json(self, ctx: Ctx, p: ProjectSpec, *, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "self": f"{ctx.rest}/project/{p.id}",
            "id": p.id,
            "key": p.key,
            "name": p.name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {"48x48": f"{ctx.base}/secure/projectavatar?pid={p.id}"},
        }
        if full:
            body.update({
                "description": "",
                "lead": self.user_json(ctx, p.lead_user),
                "issueTypes": [self._issue_type_json(ctx, name) for name in p.issue_types],
                "style": "classic",
                "isPrivate": False,
            })
        return body

    def _issue_type_json(self, ctx: Ctx, name: str) -> dict[str, Any]:
        type_id = self.jira.issue_type_ids[name]
        return {"self": f"{ctx.rest}/issuetype/{type_id}", "id": type_id, "description": "",
                "iconUrl": f"{ctx.base}/images/icons/issuetypes/task.svg", "name": name, "subtask": False,
                "avatarId": 10318, "hierarchyLevel": 0}

    def _status_json(self, ctx: Ctx, p: ProjectSpec, name: str) -> dict[str, Any]:
        if name in (p.done_statuses or []):
            cat = {"id": 3, "key": "done", "colorName": "green", "name": "Done"}
        elif name == p.statuses[0]:
            cat = {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"}
        else:
            cat = {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"}
        cat["self"] = f"{ctx.rest}/statuscategory/{cat['id']}"
        status_id = self.jira.status_ids[name]
        return {"self": f"{ctx.rest}/status/{status_id}", "description": "", "iconUrl": f"{ctx.base}/images/icons/status.svg",
                "name": name, "id": status_id, "statusCategory": cat}

    def _comment_json(self, ctx: Ctx, issue: IssueSpec, c: CommentSpec) -> dict[str, Any]:
        author = self.user_json(ctx, c.author_user)
        body: Any = _adf(c.body) if ctx.version == "3" else c.body
        return {"self": f"{ctx.rest}/issue/{issue.id}/comment/{c.id}", "id": c.id, "author": author, "body": body,
                "updateAuthor": author, "created": jira_time(c.created), "updated": jira_time(c.created), "jsdPublic": True}

    def _custom_value_json(self, ctx: Ctx, spec: FieldSpec, value: Any) -> Any:
        if value is None:
            return None
        if spec.type == "datetime":
            return jira_time(value)
        if spec.type == "user":
            return self.user_json(ctx, value)
        if spec.type == "option":
            return self._option_json(ctx, spec, value)
        if spec.type == "multi_option":
            return [self._option_json(ctx, spec, v) for v in value]
        if spec.type == "text" and ctx.version == "3":
            return _adf(value)
        return list(value) if isinstance(value, list) else value

    def _option_json(self, ctx: Ctx, spec: FieldSpec, value: str) -> dict[str, Any]:
        option_id = str(10000 + int(hashlib.md5(f"{spec.id}/{value}".encode()).hexdigest()[:6], 16) % 90000)
        return {"self": f"{ctx.rest}/customFieldOption/{option_id}", "value": value, "id": option_id}

    def issue_json(self, ctx: Ctx, issue: IssueSpec, wanted: Optional[set[str]] = None) -> dict[str, Any]:
        """An issue as Jira returns it; ``wanted`` limits ``fields`` to those ids (None: all)."""
        j = self.jira
        p = j.project(issue.project_key)
        assert p is not None
        done = issue.status in (p.done_statuses or [])
        comments = [self._comment_json(ctx, issue, c) for c in issue.comments]
        fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": _adf(issue.description) if ctx.version == "3" else issue.description,
            "issuetype": self._issue_type_json(ctx, issue.issue_type),
            "project": self._project_json(ctx, p),
            "status": self._status_json(ctx, p, issue.status or p.statuses[0]),
            "labels": list(issue.labels),
            "assignee": self.user_json(ctx, issue.assignee_user),
            "reporter": self.user_json(ctx, issue.reporter_user),
            "creator": self.user_json(ctx, issue.reporter_user),
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "resolution": ({"self": f"{ctx.rest}/resolution/10000", "id": "10000", "description": "Work has been completed.",
                            "name": "Done"} if done else None),
            "resolutiondate": jira_time(issue.resolution_date) if done else None,
            "priority": {"self": f"{ctx.rest}/priority/3", "iconUrl": f"{ctx.base}/images/icons/priorities/medium.svg",
                         "name": "Medium", "id": "3"},
            "comment": {"comments": comments, "self": f"{ctx.rest}/issue/{issue.id}/comment", "maxResults": len(comments),
                        "total": len(comments), "startAt": 0},
        }
        for spec in j.fields:
            if spec.id in issue.values:
                fields[spec.id] = self._custom_value_json(ctx, spec, issue.values[spec.id])
        if wanted is not None:
            fields = {k: v for k, v in fields.items() if k in wanted}
        body: dict[str, Any] = {"expand": _ISSUE_EXPAND, "id": issue.id, "self": f"{ctx.rest}/issue/{issue.id}",
                                "key": issue.key, "fields": fields}
        body.update(issue.overrides)
        return body

    # ------------------------------------------------------------------------------------
    # Handlers: site, users, fields

    def h_server_info(self, ctx: Ctx) -> tuple[int, Any]:
        j = self.jira
        numbers = [int(x) for x in re.findall(r"\d+", j.version or "")[:3]]
        body = {
            "baseUrl": ctx.base,
            "version": j.version,
            "versionNumbers": numbers,
            "deploymentType": "Cloud" if j.cloud else "Server",
            "buildNumber": 100290 if j.cloud else 9120015,
            "buildDate": "2026-10-20T00:00:00.000+0000",
            "serverTime": jira_time(self.clock()),
            "scmInfo": "5f2b8fd0c1a9e2b6d3f4a5b6c7d8e9f0a1b2c3d4",
            "serverTitle": j.server_title,
            "defaultLocale": {"locale": "en_US"},
        }
        if j.cloud:
            body["displayUrl"] = ctx.base
        return 200, body

    def _me(self, ctx: Ctx) -> JiraUser:
        assert ctx.principal is not None and ctx.principal.user is not None
        return ctx.principal.user

    def h_myself(self, ctx: Ctx) -> tuple[int, Any]:
        me = self._me(ctx)
        body = self.user_json(ctx, me, viewer=me)
        assert body is not None
        body["groups"] = {"size": 1, "items": []}
        body["applicationRoles"] = {"size": 1, "items": []}
        return 200, body

    def h_get_user(self, ctx: Ctx) -> tuple[int, Any]:
        args = ctx.request.args
        ref = args.get("accountId") if self.jira.cloud else (args.get("username") or args.get("key"))
        if not ref:
            raise ApiError(400, "The query parameter 'accountId' is required." if self.jira.cloud
                           else "The username query parameter was not provided")
        user = next((u for u in self.jira.users if ref in ((u.account_id,) if self.jira.cloud else (u.name, u.key))), None)
        if user is None:
            raise ApiError(404, f"The user with {'account ID' if self.jira.cloud else 'username'} '{ref}' does not exist")
        return 200, self.user_json(ctx, user, viewer=self._me(ctx))

    def _page_args(self, ctx: Ctx, default: int = 50) -> tuple[int, int]:
        start = _int(ctx.request.args.get("startAt"), 0)
        size = _int(ctx.request.args.get("maxResults"), default)
        if start < 0 or size < 0:
            raise ApiError(400, "startAt and maxResults must not be negative.")
        return start, min(size, self.jira.page_limit)

    def _need_browse_users(self, ctx: Ctx) -> None:
        if not self._me(ctx).browse_users:
            raise ApiError(403, "You don't have the permission to browse users.")

    def h_users_search(self, ctx: Ctx) -> tuple[int, Any]:
        if not self.jira.cloud:
            raise NotFound()
        self._need_browse_users(ctx)
        start, size = self._page_args(ctx)
        me = self._me(ctx)
        return 200, [self.user_json(ctx, u, viewer=me) for u in self.jira.users[start:start + size]]

    def h_user_search(self, ctx: Ctx) -> tuple[int, Any]:
        self._need_browse_users(ctx)
        args = ctx.request.args
        start, size = self._page_args(ctx)
        me = self._me(ctx)
        if self.jira.cloud:
            query = (args.get("query") or "").strip().lower()
            if not query and not args.get("accountId"):
                raise ApiError(400, "The query parameter 'query' is required.")
            found = [u for u in self.jira.users
                     if (u.account_id == args.get("accountId"))
                     or (query and ((u.display_name or "").lower().startswith(query)
                                    or (u.email and u.email_visible and u.email.lower().startswith(query))))]
        else:
            query = (args.get("username") or "").strip().lower()
            if not query:
                raise ApiError(400, "The username query parameter was not provided")
            active = _bool(args.get("includeActive"), True)
            inactive = _bool(args.get("includeInactive"), False)
            found = [u for u in self.jira.users
                     if (query == "." or any((x or "").lower().startswith(query) for x in (u.name, u.email, u.display_name)))
                     and ((u.active and active) or (not u.active and inactive))]
        return 200, [self.user_json(ctx, u, viewer=me) for u in found[start:start + size]]

    def h_fields(self, ctx: Ctx) -> tuple[int, Any]:
        out = []
        for fid, (name, clauses, schema) in SYSTEM_FIELDS.items():
            entry: dict[str, Any] = {"id": fid, "key": fid, "name": name, "custom": False, "orderable": True,
                                     "navigable": True, "searchable": True, "clauseNames": list(clauses)}
            if schema == "array":
                entry["schema"] = {"type": "array", "items": "string", "system": fid}
            else:
                entry["schema"] = {"type": schema, "system": fid}
            out.append(entry)
        for spec in self.jira.fields:
            number = spec.id.split("_", 1)[1]
            schema_type, custom = _CUSTOM_SCHEMA[spec.type]
            schema: dict[str, Any] = {"type": schema_type, "custom": custom, "customId": int(number)}
            if schema_type == "array":
                schema["items"] = "option" if spec.type == "multi_option" else "string"
            out.append({"id": spec.id, "key": spec.id, "name": spec.name, "untranslatedName": spec.name, "custom": True,
                        "orderable": True, "navigable": True, "searchable": True,
                        "clauseNames": [f"cf[{number}]", spec.name], "schema": schema})
        return 200, out

    # ------------------------------------------------------------------------------------
    # Handlers: projects and issue types

    def _project(self, ref: str) -> ProjectSpec:
        p = self.jira.project(ref)
        if p is None:
            raise ApiError(404, f"No project could be found with key '{ref}'.")
        return p

    def h_projects(self, ctx: Ctx) -> tuple[int, Any]:
        return 200, [self._project_json(ctx, p) for p in self.jira.projects]

    def h_project(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        return 200, self._project_json(ctx, self._project(ref), full=True)

    def h_issue_types(self, ctx: Ctx) -> tuple[int, Any]:
        return 200, [self._issue_type_json(ctx, name) for name in self.jira.issue_type_ids]

    def h_issue_type(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        name = next((n for n, i in self.jira.issue_type_ids.items() if i == ref), None)
        if name is None:
            raise ApiError(404, f"The issue type with id '{ref}' does not exist")
        return 200, self._issue_type_json(ctx, name)

    def h_createmeta_issuetypes(self, ctx: Ctx, project: str) -> tuple[int, Any]:
        p = self._project(project)
        start, size = self._page_args(ctx)
        values = [self._issue_type_json(ctx, n) for n in p.issue_types]
        return 200, {"maxResults": size, "startAt": start, "total": len(values), "isLast": start + size >= len(values),
                     "values": values[start:start + size]}

    # ------------------------------------------------------------------------------------
    # Handlers: search

    def _search_args(self, ctx: Ctx) -> dict[str, Any]:
        """GET query parameters or the POST JSON body, normalised."""
        if ctx.request.method == "POST":
            body = _json_body(ctx)
            fields = body.get("fields")
            reconcile = body.get("reconcileIssues") or []
            return {"jql": body.get("jql") or "", "fields": fields if isinstance(fields, list) else None,
                    "startAt": body.get("startAt", 0), "maxResults": body.get("maxResults"),
                    "nextPageToken": body.get("nextPageToken"), "reconcileIssues": reconcile}
        args = ctx.request.args
        fields = [f for value in args.getlist("fields") for f in value.split(",") if f.strip()] or None
        reconcile = [r for value in args.getlist("reconcileIssues") for r in value.split(",") if r.strip()]
        return {"jql": args.get("jql") or "", "fields": fields, "startAt": args.get("startAt"),
                "maxResults": args.get("maxResults"), "nextPageToken": args.get("nextPageToken"),
                "reconcileIssues": reconcile}

    def _wanted_fields(self, requested: Optional[list[str]], default: Optional[list[str]]) -> Optional[set[str]]:
        names = [f.strip() for f in (requested if requested is not None else default or []) if str(f).strip()]
        if not names or any(n in ("*all", "*navigable") for n in names):
            return None
        excluded = {n[1:] for n in names if n.startswith("-")}
        kept = {n for n in names if not n.startswith("-")}
        if excluded and not kept:
            return set(SYSTEM_FIELDS) | {f.id for f in self.jira.fields} - excluded
        return kept - excluded

    def h_search(self, ctx: Ctx) -> tuple[int, Any]:
        if self.jira.cloud:
            raise ApiError(410, SEARCH_REMOVED)
        a = self._search_args(ctx)
        start = _int(a["startAt"], 0)
        size = min(_int(a["maxResults"], 50), self.jira.page_limit)
        found = self._run_jql(ctx, a["jql"], bounded=False)
        wanted = self._wanted_fields(a["fields"], ["*navigable"])
        return 200, {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(found),
                     "issues": [self.issue_json(ctx, i, wanted) for i in found[start:start + size]]}

    def h_search_jql(self, ctx: Ctx) -> tuple[int, Any]:
        if not self.jira.cloud:
            raise NotFound()
        a = self._search_args(ctx)
        size = min(_int(a["maxResults"], 50), self.jira.page_limit)
        reconcile = {str(r) for r in a["reconcileIssues"]}
        found = self._run_jql(ctx, a["jql"], bounded=True, reconcile=reconcile)
        start = 0
        if a["nextPageToken"]:
            start = _decode_page_token(str(a["nextPageToken"]), a["jql"])
        page = found[start:start + size]
        wanted = self._wanted_fields(a["fields"], ["id"])
        issues = [self.issue_json(ctx, i, wanted) if wanted != {"id"} else {"id": i.id} for i in page]
        body: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = _encode_page_token(start + size, a["jql"])
        return 200, body

    def _run_jql(self, ctx: Ctx, jql: str, *, bounded: bool, reconcile: Optional[set[str]] = None) -> list[IssueSpec]:
        try:
            where, order = parse_jql(jql)
            if bounded and where is None:
                raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
            evaluator = _Evaluator(self, ctx)
            if where is not None:
                evaluator.check(where)
            keys = [evaluator.sort_key(name) for name, _ in order]
            found = [i for i in self.jira.issues
                     if (i.hidden_searches <= 0 or i.id in (reconcile or set()))
                     and (where is None or evaluator.matches(where, i))]
        except JqlError as e:
            raise ApiError(400, str(e)) from None
        for issue in self.jira.issues:  # Cloud's index catches up one search at a time
            if issue.hidden_searches > 0:
                issue.hidden_searches -= 1
        if not order:
            return sorted(found, key=lambda i: (i.created, int(i.id)), reverse=True)
        for (name, descending), key in reversed(list(zip(order, keys))):
            present = [i for i in found if key(i) is not None]
            missing = [i for i in found if key(i) is None]
            found = sorted(present, key=key, reverse=descending) + missing  # empty values last, as Jira does
        return found

    # ------------------------------------------------------------------------------------
    # Handlers: issues

    def _issue(self, ref: str) -> IssueSpec:
        issue = self.jira.issue(ref)
        if issue is None:
            raise ApiError(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def h_issue(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        issue = self._issue(ref)
        if ctx.request.method == "PUT":
            self._update_issue(ctx, issue, _json_body(ctx))
            return 204, None
        requested = [f for value in ctx.request.args.getlist("fields") for f in value.split(",") if f.strip()] or None
        return 200, self.issue_json(ctx, issue, self._wanted_fields(requested, None))

    def h_create_issue(self, ctx: Ctx) -> tuple[int, Any]:
        body = _json_body(ctx)
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise ApiError(400, "Can not deserialize instance of fields out of the request body.")
        j = self.jira
        errors: dict[str, str] = {}
        project = None
        pref = fields.get("project")
        if isinstance(pref, dict):
            project = j.project(str(pref.get("key") or pref.get("id") or ""))
        elif isinstance(pref, (str, int)):
            project = j.project(str(pref))
        if project is None:
            errors["project"] = "valid project is required"
        issue_type = None
        tref = fields.get("issuetype")
        if isinstance(tref, dict):
            wanted = str(tref.get("name") or tref.get("id") or "")
            issue_type = next((n for n, i in j.issue_type_ids.items() if wanted in (n, i)), None)
        if project is not None and (issue_type is None or issue_type not in project.issue_types):
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        if errors:
            raise ApiError(400, errors=errors)
        assert project is not None and issue_type is not None
        now = self.clock()
        numbers = [i.number for i in j.issues if i.project_key == project.key]
        issue = IssueSpec(summary=str(summary).strip(), project=project.key, issue_type=issue_type)
        issue.key = f"{project.key}-{max(numbers, default=0) + 1}"
        issue.status = project.statuses[0]
        issue.reporter_user = self._me(ctx)
        issue.created = issue.updated = now
        issue.created_via_api = True
        rest = {k: v for k, v in fields.items() if k not in ("project", "issuetype", "summary", "reporter")}
        self._apply_fields(ctx, issue, rest, errors)
        self._apply_update(ctx, issue, body.get("update") or {}, errors)
        if errors:
            raise ApiError(400, errors=errors)
        issue.id = str(j.next_issue_id)
        j.next_issue_id += 1
        issue.hidden_searches = j.search_lag if j.cloud else 0
        j.issues.append(issue)
        return 201, {"id": issue.id, "key": issue.key, "self": f"{ctx.rest}/issue/{issue.id}"}

    def _update_issue(self, ctx: Ctx, issue: IssueSpec, body: dict[str, Any]) -> None:
        errors: dict[str, str] = {}
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise ApiError(400, "Can not deserialize the request body: fields and update must be objects.")
        if "summary" in fields:
            summary = fields.pop("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            else:
                issue.summary = summary
        for fixed in ("project", "issuetype", "status"):
            if fixed in fields:
                errors[fixed] = f"Field '{fixed}' cannot be set. It is not on the appropriate screen, or unknown."
        self._apply_fields(ctx, issue, {k: v for k, v in fields.items() if k not in ("project", "issuetype", "status")}, errors)
        self._apply_update(ctx, issue, update, errors)
        if errors:
            raise ApiError(400, errors=errors)
        issue.updated = self.clock()

    def _apply_fields(self, ctx: Ctx, issue: IssueSpec, fields: dict[str, Any], errors: dict[str, str]) -> None:
        for name, value in fields.items():
            if name == "description":
                text = self._rich_text(ctx, value, "description", errors)
                if "description" not in errors:
                    issue.description = text
            elif name == "labels":
                labels = self._labels(value, errors)
                if labels is not None:
                    issue.labels = labels
            elif name == "assignee":
                if value is None:
                    issue.assignee_user = None
                else:
                    user = self._user_from_json(value)
                    if user is None or not user.active:
                        errors["assignee"] = "Specified user does not exist or you do not have required permissions"
                    else:
                        issue.assignee_user = user
            elif name in ("priority", "environment", "duedate", "components"):
                continue  # accepted and ignored: the emulator models no priorities or components
            else:
                spec = next((f for f in self.jira.fields if f.id == name), None)
                if spec is None:
                    errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                    continue
                try:
                    issue.values[spec.id] = self._api_value(ctx, spec, value)
                except ValueError as e:
                    errors[name] = str(e)

    def _apply_update(self, ctx: Ctx, issue: IssueSpec, update: dict[str, Any], errors: dict[str, str]) -> None:
        if not isinstance(update, dict):
            errors["update"] = "update must be an object"
            return
        for name, operations in update.items():
            if not isinstance(operations, list):
                errors[name] = "Operations must be a list"
                continue
            for op in operations:
                if not isinstance(op, dict) or len(op) != 1:
                    errors[name] = "Each operation is an object with one verb: add, remove or set"
                    continue
                verb, value = next(iter(op.items()))
                if name == "labels":
                    if verb == "set":
                        labels = self._labels(value, errors)
                        if labels is not None:
                            issue.labels = labels
                    elif verb in ("add", "remove") and isinstance(value, str):
                        if verb == "add" and " " in value:
                            errors["labels"] = f"The label '{value}' contains spaces which is invalid."
                        elif verb == "add" and value not in issue.labels:
                            issue.labels.append(value)
                        elif verb == "remove" and value in issue.labels:
                            issue.labels.remove(value)
                    else:
                        errors["labels"] = f"Operation '{verb}' is not supported for labels with that value"
                elif name == "comment" and verb == "add" and isinstance(value, dict):
                    self._add_comment(ctx, issue, value.get("body"), errors)
                elif name == "summary" and verb == "set" and isinstance(value, str) and value.strip():
                    issue.summary = value
                else:
                    errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."

    def _labels(self, value: Any, errors: dict[str, str]) -> Optional[list[str]]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors["labels"] = "Labels must be a list of strings"
            return None
        for label in value:
            if not label or any(c.isspace() for c in label):
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
                return None
            if len(label) > 255:
                errors["labels"] = "The label must not exceed 255 characters."
                return None
        return list(dict.fromkeys(value))

    def _rich_text(self, ctx: Ctx, value: Any, name: str, errors: dict[str, str]) -> Optional[str]:
        """v2 takes plain text (wiki markup); v3 takes an Atlassian Document. Stored as text."""
        if value is None:
            return None
        if ctx.version == "3":
            if not _is_adf(value):
                errors[name] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                return None
            return _adf_text(value)
        if not isinstance(value, str):
            errors[name] = "Operation value must be a string"
            return None
        return value

    def _user_from_json(self, value: Any) -> Optional[JiraUser]:
        if not isinstance(value, dict):
            return None
        if self.jira.cloud:
            ref = value.get("accountId") or value.get("id")
            return next((u for u in self.jira.users if ref and u.account_id == ref), None)
        ref = value.get("name") or value.get("key")
        return next((u for u in self.jira.users if ref and ref in (u.name, u.key)), None)

    def _api_value(self, ctx: Ctx, spec: FieldSpec, value: Any) -> Any:
        """A custom field value as a client sends it, in the emulator's representation; ValueError says why not."""
        if value is None:
            return None
        t = spec.type
        if t == "string":
            if not isinstance(value, str):
                raise ValueError("Operation value must be a string")
            return value
        if t == "text":
            errors: dict[str, str] = {}
            text = self._rich_text(ctx, value, spec.id, errors)
            if errors:
                raise ValueError(errors[spec.id])
            return text
        if t == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError("Operation value must be a number")
            return value
        if t == "date":
            if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
                raise ValueError("Date value is invalid; expected the format yyyy-MM-dd")
            return value
        if t == "datetime":
            try:
                return datetime.fromisoformat(str(value)).astimezone(timezone.utc)
            except ValueError:
                raise ValueError("Datetime value is invalid; expected ISO 8601 (yyyy-MM-dd'T'HH:mm:ss.SSSZ)") from None
        if t == "user":
            user = self._user_from_json(value)
            if user is None:
                raise ValueError("Specified user does not exist or you do not have required permissions")
            return user
        if t == "option":
            text = value.get("value") if isinstance(value, dict) else value
            if not isinstance(text, str):
                raise ValueError("Option value must be given as {\"value\": ...}")
            return text
        items = value if isinstance(value, list) else None
        if items is None:
            raise ValueError("Operation value must be a list")
        out = [v.get("value") if isinstance(v, dict) else v for v in items]
        if not all(isinstance(v, str) for v in out):
            raise ValueError("Operation value must be a list of strings")
        return out

    def _add_comment(self, ctx: Ctx, issue: IssueSpec, body: Any, errors: dict[str, str]) -> Optional[CommentSpec]:
        text = self._rich_text(ctx, body, "comment", errors)
        if "comment" in errors:
            return None
        if not text or not text.strip():
            errors["comment"] = "Comment body can not be empty!"
            return None
        comment = CommentSpec(body=text)
        comment.author_user = self._me(ctx)
        comment.created = self.clock()
        comment.id = str(self.jira.next_comment_id)
        self.jira.next_comment_id += 1
        issue.comments.append(comment)
        issue.updated = comment.created
        return comment

    def h_comments(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        issue = self._issue(ref)
        if ctx.request.method == "POST":
            body = _json_body(ctx)
            errors: dict[str, str] = {}
            comment = self._add_comment(ctx, issue, body.get("body"), errors)
            if comment is None:
                raise ApiError(400, errors=errors)
            return 201, self._comment_json(ctx, issue, comment)
        start, size = self._page_args(ctx, default=5000)
        comments = [self._comment_json(ctx, issue, c) for c in issue.comments]
        return 200, {"startAt": start, "maxResults": size, "total": len(comments), "comments": comments[start:start + size]}

    def h_transitions(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        issue = self._issue(ref)
        project = self._project(issue.project_key)
        available = [t for t in project.transitions or [] if t.to != issue.status]
        if ctx.request.method == "GET":
            wanted = ctx.request.args.get("transitionId")
            rows = [{"id": t.id, "name": t.name, "to": self._status_json(ctx, project, t.to), "hasScreen": False,
                     "isGlobal": True, "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
                    for t in available if wanted is None or t.id == wanted]
            return 200, {"expand": "transitions", "transitions": rows}
        body = _json_body(ctx)
        target = body.get("transition")
        tid = str(target.get("id")) if isinstance(target, dict) and target.get("id") is not None else None
        transition = next((t for t in available if t.id == tid), None)
        if transition is None:
            raise ApiError(400, f"Transition id '{tid}' is not valid for this issue.")
        errors: dict[str, str] = {}
        fields = body.get("fields") or {}
        if isinstance(fields, dict):
            fields = {k: v for k, v in fields.items() if k != "resolution"}  # set by the workflow here
            self._apply_fields(ctx, issue, fields, errors)
        self._apply_update(ctx, issue, body.get("update") or {}, errors)
        if errors:
            raise ApiError(400, errors=errors)
        now = self.clock()
        issue.transitions_made.append(TransitionMade(name=transition.name, from_status=issue.status or "",
                                                     to_status=transition.to, at=now, by=self._me(ctx).display_name))
        issue.status = transition.to
        issue.resolution_date = now if transition.to in (project.done_statuses or []) else None
        issue.updated = now
        return 204, None

    def h_properties(self, ctx: Ctx, ref: str) -> tuple[int, Any]:
        issue = self._issue(ref)
        return 200, {"keys": [{"self": f"{ctx.rest}/issue/{issue.id}/properties/{quote(k)}", "key": k} for k in issue.properties]}

    def h_property(self, ctx: Ctx, ref: str, prop: str) -> tuple[int, Any]:
        issue = self._issue(ref)
        if ctx.request.method == "PUT":
            if len(prop) > 255:
                raise ApiError(400, "The property key can not be longer than 255 characters.")
            raw = ctx.request.get_data()
            if len(raw) > 32768:
                raise ApiError(400, "The property value can not be longer than 32768 bytes.")
            try:
                value = json.loads(raw or b"null")
            except ValueError:
                raise ApiError(400, "The property value must be a valid JSON.") from None
            status = 200 if prop in issue.properties else 201
            issue.properties[prop] = value
            return status, {}
        if prop not in issue.properties:
            raise ApiError(404, f"The property with key '{prop}' does not exist.")
        if ctx.request.method == "DELETE":
            del issue.properties[prop]
            return 204, None
        return 200, {"key": prop, "value": issue.properties[prop]}

    # ------------------------------------------------------------------------------------
    # Handlers: the organization admin API

    def _org(self, ctx: Ctx, org_id: str, scope: str) -> OrgSpec:
        org = self.jira.org
        if org is None or org.id != org_id:
            raise ApiError(404, "Organization not found")
        key = ctx.principal.admin_key if ctx.principal else None
        assert key is not None
        if key.scopes is not None and scope not in key.scopes:
            raise ApiError(403, f"The API key is missing the required scope: {scope}")
        return org

    def _cursor_page(self, ctx: Ctx, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        start = _decode_cursor(ctx.request.args.get("cursor"))
        size = self.jira.page_limit
        links: dict[str, Any] = {"self": ctx.request.url}
        if start + size < len(rows):
            links["next"] = _encode_cursor(start + size)
        if start > 0:
            links["prev"] = _encode_cursor(max(0, start - size))
        return rows[start:start + size], links

    def h_admin_orgs(self, ctx: Ctx) -> tuple[int, Any]:
        org = self.jira.org
        data = [self._org_json(ctx, org)] if org else []
        return 200, {"data": data, "links": {"self": ctx.request.url}}

    def h_admin_org(self, ctx: Ctx, org_id: str) -> tuple[int, Any]:
        return 200, {"data": self._org_json(ctx, self._org(ctx, org_id, "read:orgs:admin"))}

    def _org_json(self, ctx: Ctx, org: OrgSpec) -> dict[str, Any]:
        return {"id": org.id, "type": "orgs", "attributes": {"name": org.name},
                "relationships": {"users": {"links": {"related": f"{ctx.base}/admin/v1/orgs/{org.id}/users"}}},
                "links": {"self": f"{ctx.base}/admin/v1/orgs/{org.id}"}}

    def h_admin_users(self, ctx: Ctx, org_id: str) -> tuple[int, Any]:
        self._org(ctx, org_id, "read:accounts:admin")
        rows = []
        for u in self.jira.users:
            if not u.managed:
                continue
            rows.append({
                "account_id": u.account_id,
                "account_type": u.account_type,
                "account_status": "active" if u.active else "inactive",
                "name": u.display_name,
                "picture": f"{ctx.base}/secure/useravatar?avatarId=10122",
                "email": u.email,
                "access_billable": u.active,
                "last_active": admin_time(u.last_active),
                "product_access": [{"key": "jira-software", "name": "Jira", "url": ctx.base,
                                    "last_active": admin_time(u.last_active)}] if u.active else [],
                "links": {"self": f"{ctx.base}/users/{u.account_id}"},
            })
        page, links = self._cursor_page(ctx, rows)
        return 200, {"data": page, "links": links, "meta": {"total": len(rows)}}

    def _token_json(self, t: ApiToken, org: OrgSpec) -> dict[str, Any]:
        return {
            "id": t.id,
            "label": t.label,
            "status": t.status,
            "createdAt": admin_time(t.created_at),
            "expiresAt": admin_time(t.expires_at),
            "lastActiveAt": admin_time(t.last_active_at),
            "user": {"id": t.user.account_id, "orgId": org.id, "name": t.user.display_name, "email": t.user.email},
        }

    def h_admin_api_tokens(self, ctx: Ctx, org_id: str) -> tuple[int, Any]:
        org = self._org(ctx, org_id, "read:tokens:admin")
        q = (ctx.request.args.get("q") or "").lower()
        status = ctx.request.args.get("status")
        rows = [self._token_json(t, org) for t in self.jira.api_tokens
                if t.user.managed
                and (not q or q in t.label.lower() or q in (t.user.email or "").lower())
                and (not status or t.status == status.upper())]
        page, links = self._cursor_page(ctx, rows)
        return 200, {"data": page, "links": links}

    def h_admin_service_accounts(self, ctx: Ctx, org_id: str) -> tuple[int, Any]:
        org = self._org(ctx, org_id, "read:service-accounts:admin")
        rows = [{
            "atlassianId": s.account_id,
            "id": s.id,
            "email": s.email,
            "displayName": s.display_name,
            "picture": f"{ctx.base}/secure/useravatar?avatarId=10600",
            "container": org.id,
            "updatedAt": int(s.updated_at.timestamp() * 1000) if s.updated_at else None,
            "status": s.status,
            "createdById": s.creator.account_id if s.creator else None,
            "description": s.description,
        } for s in org.service_accounts]
        page, links = self._cursor_page(ctx, rows)
        return 200, {"links": {k: v for k, v in links.items() if k != "self"}, "items": page, "total": len(rows)}

    def h_admin_user_api_tokens(self, ctx: Ctx, account_id: str) -> tuple[int, Any]:
        org = self.jira.org
        key = ctx.principal.admin_key if ctx.principal else None
        if org is None or key is None:
            raise ApiError(404, "Not Found")
        if key.scopes is not None and "read:tokens:admin" not in key.scopes:
            raise ApiError(403, "The API key is missing the required scope: read:tokens:admin")
        user = next((u for u in self.jira.users if u.account_id == account_id), None)
        if user is None:
            raise ApiError(404, f"Account {account_id} not found")
        if not user.managed:
            raise ApiError(403, "You can only manage the API tokens of managed accounts")
        return 200, [{"id": t.id, "label": t.label, "createdAt": admin_time(t.created_at),
                      "lastAccess": admin_time(t.last_active_at), "expiry": admin_time(t.expires_at)}
                     for t in self.jira.api_tokens if t.user is user]


_ADMIN_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR"}
_ADMIN_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


# --------------------------------------------------------------------------------------------
# JQL evaluation


class _Evaluator:
    """Evaluates a parsed JQL tree against issues, with Jira's field semantics (a subset)."""

    def __init__(self, emulator: JiraEmulator, ctx: Ctx):
        self.em = emulator
        self.j = emulator.jira
        self.ctx = ctx
        self.now = emulator.clock()

    # -- field resolution

    def field(self, name: str) -> tuple[str, str]:
        """(kind, id) of a JQL field name; JqlError when Jira would not know it."""
        low = name.lower()
        aliases = {"type": "issuetype", "issuekey": "key", "createddate": "created", "updateddate": "updated",
                   "resolved": "resolutiondate", "statuscategory": "statuscategory"}
        low = aliases.get(low, low)
        system = {"project": "choice", "issuetype": "choice", "status": "choice", "statuscategory": "choice",
                  "resolution": "choice", "priority": "choice", "labels": "list", "summary": "text", "description": "text",
                  "comment": "text", "text": "text", "key": "key", "id": "key", "assignee": "user", "reporter": "user",
                  "creator": "user", "created": "date", "updated": "date", "resolutiondate": "date"}
        if low in system:
            return system[low], low
        m = re.match(r"^cf\[(\d+)\]$", low)
        spec = None
        if m:
            spec = next((f for f in self.j.fields if f.id == f"customfield_{m.group(1)}"), None)
        else:
            spec = next((f for f in self.j.fields if f.name.lower() == low), None)
        if spec is None:
            raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
        kind = {"string": "text", "text": "text", "number": "number", "date": "date", "datetime": "date", "user": "user",
                "option": "choice", "multi_option": "list", "labels": "list"}[spec.type]
        return kind, spec.id

    def values(self, fid: str, issue: IssueSpec) -> Any:
        """The issue's value(s) for a field, in a comparable form."""
        p = self.j.project(issue.project_key)
        assert p is not None
        if fid == "project":
            return {p.key.lower(), p.name.lower() if p.name else "", str(p.id)}
        if fid == "issuetype":
            return {issue.issue_type.lower(), self.j.issue_type_ids[issue.issue_type]}
        if fid == "status":
            return {(issue.status or "").lower(), self.j.status_ids.get(issue.status or "", "")}
        if fid == "statuscategory":
            cat = self.em._status_json(self.ctx, p, issue.status or p.statuses[0])["statusCategory"]
            return {cat["key"], cat["name"].lower(), str(cat["id"])}
        if fid == "resolution":
            return {"done", "10000"} if issue.status in (p.done_statuses or []) else set()
        if fid == "priority":
            return {"medium", "3"}
        if fid == "labels":
            return list(issue.labels)
        if fid == "summary":
            return issue.summary
        if fid == "description":
            return issue.description
        if fid == "comment":
            return "\n".join(c.body for c in issue.comments) or None
        if fid == "text":
            return "\n".join([issue.summary, issue.description or ""] + [c.body for c in issue.comments])
        if fid in ("key", "id"):
            return issue
        if fid in ("assignee", "reporter", "creator"):
            return issue.assignee_user if fid == "assignee" else issue.reporter_user
        if fid == "created":
            return issue.created
        if fid == "updated":
            return issue.updated
        if fid == "resolutiondate":
            return issue.resolution_date if issue.status in (p.done_statuses or []) else None
        spec = next(f for f in self.j.fields if f.id == fid)
        value = issue.values.get(fid)
        if value is None:
            return None
        if spec.type == "date":
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        if spec.type == "option":
            return {value.lower()}
        return value

    # -- validation (Jira refuses unknown projects, issue types and statuses up front)

    def check(self, node: tuple) -> None:
        if node[0] in ("and", "or"):
            self.check(node[1])
            self.check(node[2])
            return
        if node[0] == "not":
            self.check(node[1])
            return
        _, name, op, value = node
        kind, fid = self.field(name)
        allowed = {"choice": {"=", "!=", "in", "not in", "is", "is not"},
                   "list": {"=", "!=", "in", "not in", "is", "is not"},
                   "text": {"~", "!~", "is", "is not"},
                   "key": {"=", "!=", "in", "not in", ">", ">=", "<", "<="},
                   "user": {"=", "!=", "in", "not in", "is", "is not"},
                   "date": {"=", "!=", ">", ">=", "<", "<=", "is", "is not", "in", "not in"},
                   "number": {"=", "!=", ">", ">=", "<", "<=", "is", "is not", "in", "not in"}}[kind]
        if op not in allowed:
            raise JqlError(f"The operator '{op.upper() if op[0].isalpha() else op}' is not supported by the '{name}' field.")
        literals = value[1] if value[0] == "list" else [value]
        for lit in literals:
            if lit[0] == "func":
                fits = {"currentuser": kind == "user", "now": kind == "date", "startofday": kind == "date",
                        "endofday": kind == "date"}
                if lit[1] not in fits:
                    raise JqlError(f"Unable to find JQL function '{lit[1]}()'.")
                if not fits[lit[1]]:
                    raise JqlError(f"The function '{lit[1]}' is not supported by the '{name}' field.")
                continue
            if lit[0] != "lit":
                continue
            text = lit[1]
            if fid == "project" and self.j.project(text) is None and not any((p.name or "").lower() == text.lower() for p in self.j.projects):
                raise JqlError(f"The value '{text}' does not exist for the field 'project'.")
            if fid == "issuetype" and not any(text.lower() in (n.lower(), i) for n, i in self.j.issue_type_ids.items()):
                raise JqlError(f"The value '{text}' does not exist for the field 'issuetype'.")
            if fid == "status" and not any(text.lower() in (n.lower(), i) for n, i in self.j.status_ids.items()):
                raise JqlError(f"The value '{text}' does not exist for the field 'status'.")
            if kind == "date":
                self.date(text, name)

    # -- matching

    def matches(self, node: tuple, issue: IssueSpec) -> bool:
        tag = node[0]
        if tag == "and":
            return self.matches(node[1], issue) and self.matches(node[2], issue)
        if tag == "or":
            return self.matches(node[1], issue) or self.matches(node[2], issue)
        if tag == "not":
            return not self.matches(node[1], issue)
        _, name, op, value = node
        kind, fid = self.field(name)
        actual = self.values(fid, issue)
        if op in ("is", "is not"):
            empty = actual is None or actual == set() or actual == [] or actual == ""
            return empty if op == "is" else not empty
        literals = value[1] if value[0] == "list" else [value]
        hits = [self.compare(kind, fid, name, "=" if op in ("in", "not in") else op, actual, lit) for lit in literals]
        if op == "in":
            return any(hits)
        if op == "not in":
            return actual not in (None, set(), []) and not any(hits)
        return hits[0]

    def compare(self, kind: str, fid: str, name: str, op: str, actual: Any, lit: tuple) -> bool:
        if lit[0] == "empty":
            empty = actual is None or actual == set() or actual == []
            return empty if op == "=" else not empty
        if kind == "user":
            if actual is None:
                return False
            if lit[0] == "func" and lit[1] == "currentuser":
                same = self.ctx.principal is not None and actual is self.ctx.principal.user
            else:
                text = lit[1].lower()
                same = text in {x.lower() for x in (actual.account_id, actual.email, actual.name, actual.key, actual.display_name) if x}
            return same if op == "=" else not same
        if lit[0] == "func":
            if lit[1] in ("now", "startofday", "endofday"):
                base = self.now
                if lit[1] == "startofday":
                    base = base.replace(hour=0, minute=0, second=0, microsecond=0)
                elif lit[1] == "endofday":
                    base = base.replace(hour=23, minute=59, second=59, microsecond=0)
                return self.order(op, actual, base)
            raise JqlError(f"Unable to find JQL function '{lit[1]}()'.")
        text = lit[1]
        if kind == "choice":
            hit = actual is not None and text.lower() in actual
            return hit if op == "=" else (actual not in (None, set()) and not hit)
        if kind == "list":
            hit = actual is not None and text.lower() in {v.lower() for v in actual}
            return hit if op == "=" else (bool(actual) and not hit)
        if kind == "text":
            needle = text.strip("*").lower()
            hit = actual is not None and needle in str(actual).lower()
            return hit if op == "~" else (actual is not None and not hit)
        if kind == "key":
            m = _ISSUE_KEY.match(text.upper())
            if op in ("=", "!="):
                hit = text.upper() == (actual.key or "").upper() or text == actual.id
                return hit if op == "=" else not hit
            if not m or m.group(1) != actual.project_key:
                return False
            return self.order(op, actual.number, int(m.group(2)))
        if kind == "date":
            return self.order(op, actual, self.date(text, name))
        if kind == "number":
            try:
                return self.order(op, actual, float(text))
            except ValueError:
                raise JqlError(f"The value '{text}' is not a valid number for the field '{name}'.") from None
        return False  # pragma: no cover

    @staticmethod
    def order(op: str, actual: Any, expected: Any) -> bool:
        if actual is None:
            return False
        return {"=": actual == expected, "!=": actual != expected, ">": actual > expected, ">=": actual >= expected,
                "<": actual < expected, "<=": actual <= expected}[op]

    def date(self, text: str, name: str) -> datetime:
        m = _JQL_PERIOD.match(text.strip())
        if m:
            sign, amount, unit = m.groups()
            delta = timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[unit]: int(amount)})
            return self.now - delta if sign == "-" else self.now + delta
        for fmt in _JQL_DATE_FORMATS:
            try:
                return datetime.strptime(text.strip(), fmt).replace(tzinfo=timezone.utc)
            except ValueError:
                continue
        raise JqlError(f"Date value '{text}' for field '{name}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                       f"'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")

    def sort_key(self, name: str) -> Callable[[IssueSpec], Any]:
        kind, fid = self.field(name)
        if kind == "key":
            return lambda i: (i.project_key, i.number)
        if fid == "project":
            return lambda i: i.project_key
        if fid == "issuetype":
            return lambda i: i.issue_type.lower()
        if fid == "status":
            return lambda i: (i.status or "").lower()
        if kind == "user":
            return lambda i: (self.values(fid, i).display_name.lower() if self.values(fid, i) else None)
        if kind in ("list", "choice"):
            return lambda i: ",".join(sorted(self.values(fid, i) or [])) or None
        if kind == "text":
            return lambda i: (str(self.values(fid, i)).lower() if self.values(fid, i) is not None else None)
        return lambda i: self.values(fid, i)


# --------------------------------------------------------------------------------------------
# Small helpers


def build(estate: Estate, *, reload: Callable[[], Estate], **options: Any) -> JiraEmulator:
    """The sandbox's entry point (``sandbox.server``): one emulator for the estate's ``jira:`` section."""
    return JiraEmulator(estate, reload=reload)


def _json_body(ctx: Ctx) -> dict[str, Any]:
    raw = ctx.request.get_data()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Unexpected character in the request body: it is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Can not deserialize the request body: expected a JSON object.")
    return body


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"'{value}' is not a valid number.") from None


def _bool(value: Optional[str], default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() == "true"


def _encode_page_token(offset: int, jql: str) -> str:
    raw = json.dumps({"o": offset, "q": hashlib.sha256(jql.encode()).hexdigest()[:12]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str, jql: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] != hashlib.sha256(jql.encode()).hexdigest()[:12]:
            raise ValueError("token for another query")
        return int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "The provided next page token is invalid or expired.") from None


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: Optional[str]) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("offset:"):
            raise ValueError
        return max(0, int(text[len("offset:"):]))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor") from None
