"""A stateful, wire-compatible emulator of the Slack Web API (the methods nhiscan calls).

Every method is ``POST /api/<method>`` (``GET`` with query parameters works too, as on Slack),
with a form-encoded or JSON body and the token in ``Authorization: Bearer``, so the real
``slack_sdk.WebClient(base_url=sandbox.url("slack"))`` talks to it unmodified. What it models:

* **The envelope.** ``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}`` with HTTP 200,
  as Slack answers: ``not_authed``, ``invalid_auth``, ``token_revoked``, ``not_allowed_token_type``
  and ``missing_scope`` with ``needed``/``provided``, exactly as Slack sends them.
* **Token types.** Bot (``xoxb-``), user (``xoxp-``) and an Enterprise Grid org-admin user token
  (``xoxp-``, ``type: org_admin``), which alone may call ``admin.*``. Scopes are enforced per method.
* **Cursor pagination** (``limit``, ``cursor``, ``response_metadata.next_cursor``) and the older
  ``page``/``count`` paging of ``team.integrationLogs``. ``max_page_size`` makes pages shorter
  than asked for, which Slack also does.
* **Tiered rate limits.** A per-token, per-method sliding window of one minute at Slack's tier
  (``chat.postMessage``: per channel); over it, HTTP 429 ``{"ok": false, "error": "ratelimited"}``
  with ``Retry-After``. Faults chosen by the token add 429s, 500s, truncated JSON and slow answers.
* **Alerts.** ``conversations.open``, ``conversations.list`` and ``chat.postMessage``; every posted
  message is kept in :attr:`SlackEmulator.messages` for the tests of the notification code.

Shapes follow the pinned Slack description (``shared/specs/slack-web.swagger2.json``), checked
per method by ``tests/test_slack.py``. The estate section is documented in ``sandbox/README.md``.

This module deliberately does not use ``from __future__ import annotations``: the estate model is
built by ``sandbox.estate``'s annotation-driven loader, which needs evaluated annotations.
"""

import base64
import binascii
import copy
import difflib
import fnmatch
import hashlib
import json
import logging
import math
import re
import secrets as _secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Literal, Optional

from werkzeug.wrappers import Request, Response

from .emulator import Emulator, half, json_response, log_time, token_suffix
from .estate import Estate, Timestamp, _build, _Ctx, _join

log = logging.getLogger("sandbox.slack")

URL_SUFFIX = "/api/"
API_PREFIX = "/api/"
JSON_TYPE = "application/json; charset=utf-8"

__all__ = ["SlackEmulator", "SlackEstate", "parse_estate", "build", "URL_SUFFIX"]


# --------------------------------------------------------------------------------------------
# The estate model (``slack:`` section). Field order = documentation order.

FaultKind = Literal["rate_limited", "server_error", "malformed_json", "timeout"]
TokenType = Literal["bot", "user", "org_admin"]
ChangeType = Literal["added", "removed", "enabled", "disabled", "expanded", "updated"]

# Slack's OAuth scopes (bot and user), for catching typos in estates.
KNOWN_SCOPES = frozenset(
    """admin admin.analytics:read admin.app_activities:read admin.apps:read admin.apps:write
    admin.barriers:read admin.barriers:write admin.conversations:read admin.conversations:write
    admin.invites:read admin.invites:write admin.roles:read admin.roles:write admin.teams:read
    admin.teams:write admin.usergroups:read admin.usergroups:write admin.users:read admin.users:write
    admin.workflows:read admin.workflows:write auditlogs:read app_mentions:read bookmarks:read
    bookmarks:write bot calls:read calls:write canvases:read canvases:write channels:history
    channels:join channels:manage channels:read channels:write channels:write.invites
    channels:write.topic chat:write chat:write.customize chat:write.public chat:write:bot
    chat:write:user client commands conversations.connect:manage conversations.connect:read
    conversations.connect:write dnd:read dnd:write emoji:read files:read files:write
    files:write:user groups:history groups:read groups:write groups:write.invites groups:write.topic
    identify identity.avatar identity.basic identity.email identity.team im:history im:read im:write
    im:write.topic incoming-webhook links.embed:write links:read links:write lists:read lists:write
    metadata.message:read mpim:history mpim:read mpim:write mpim:write.topic pins:read pins:write
    reactions:read reactions:write reminders:read reminders:write remote_files:read
    remote_files:share remote_files:write search:read search:read.files search:read.public
    search:read.users stars:read stars:write team.billing:read team.preferences:read team:read
    tokens.basic triggers:read triggers:write usergroups:read usergroups:write users.profile:read
    users.profile:write users:read users:read.email users:write workflow.steps:execute""".split()
)

# Scopes Slack flags ``is_sensitive`` in the app approval lists (the estate can override per app).
_SENSITIVE = re.compile(
    r"^(admin([.:].*)?|client|bot|(channels|groups|im|mpim):history|files:read|files:write(:user)?|"
    r"(users|users\.profile|channels|groups):write.*|chat:write\.customize|users:read\.email|search:read.*)$"
)

_ID_PATTERNS = {
    "team": re.compile(r"^T[A-Z0-9]{8,}$"),
    "enterprise": re.compile(r"^E[A-Z0-9]{8,}$"),
    "user": re.compile(r"^[UW][A-Z0-9]{8,}$"),
    "bot": re.compile(r"^B[A-Z0-9]{8,}$"),
    "app": re.compile(r"^A[A-Z0-9]{1,}$"),
    "channel": re.compile(r"^[CG][A-Z0-9]{8,}$"),
}


@dataclass
class SlackFault:
    """One injected failure for requests made with one token."""

    fault: FaultKind
    method: str = "*"
    times: Optional[int] = None
    after: int = 0
    retry_after: int = 1
    seconds: float = 5.0


@dataclass
class SlackToken:
    token: str
    type: TokenType
    user: str
    scopes: list[str] = field(default_factory=list)
    faults: list[SlackFault] = field(default_factory=list)
    revoked: bool = False


@dataclass
class SlackTeam:
    name: str = "Acme"
    domain: str = "acme"
    id: Optional[str] = None
    email_domain: str = ""
    enterprise_id: Optional[str] = None
    enterprise_name: Optional[str] = None
    created: Optional[Timestamp] = None


@dataclass
class SlackApp:
    name: str
    id: Optional[str] = None
    description: str = ""
    is_internal: bool = True
    directory_approved: bool = False
    approval: Literal["approved", "restricted", "none"] = "approved"
    scopes: list[str] = field(default_factory=list)
    user_scopes: list[str] = field(default_factory=list)
    sensitive_scopes: Optional[list[str]] = None
    date_updated: Optional[Timestamp] = None
    resolved_by: Optional[str] = None


@dataclass
class SlackBot:
    name: str
    app: str
    id: Optional[str] = None
    user_id: Optional[str] = None
    real_name: Optional[str] = None
    deleted: bool = False
    updated: Optional[Timestamp] = None
    app_ref: Optional[SlackApp] = field(default=None, init=False, repr=False)


@dataclass
class SlackUser:
    """A human member of the workspace. Bot users are made from ``bots`` entries."""

    name: str
    id: Optional[str] = None
    real_name: Optional[str] = None
    display_name: str = ""
    email: Optional[str] = None
    title: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    guest: Literal["none", "multi_channel", "single_channel"] = "none"
    is_app_user: bool = False
    deleted: bool = False
    has_2fa: bool = False
    tz: str = "Europe/London"
    updated: Optional[Timestamp] = None
    override: dict[str, Any] = field(default_factory=dict)
    # Filled in at load time for the bot users made from ``bots``.
    is_bot: bool = field(default=False, init=False)
    bot: Optional[SlackBot] = field(default=None, init=False, repr=False)


@dataclass
class SlackLogEntry:
    app: str
    user: str
    change_type: ChangeType
    date: Timestamp
    scopes: Optional[list[str]] = None
    channel: Optional[str] = None


@dataclass
class SlackChannel:
    name: str
    id: Optional[str] = None
    private: bool = False
    archived: bool = False
    general: bool = False
    created: Optional[Timestamp] = None
    creator: Optional[str] = None
    members: list[str] = field(default_factory=list)
    topic: str = ""
    purpose: str = ""


@dataclass
class SlackRateLimits:
    """Requests per minute per token and method; ``null`` switches a tier off."""

    tier1: Optional[int] = 1
    tier2: Optional[int] = 20
    tier3: Optional[int] = 50
    tier4: Optional[int] = 100
    special: Optional[int] = 100
    posting: Optional[int] = 60


@dataclass
class Conversation:
    """A DM or group DM opened through ``conversations.open`` (runtime state, not in estates)."""

    id: str
    members: tuple[str, ...]  # user ids
    created: int


@dataclass
class SlackEstate:
    team: SlackTeam = field(default_factory=SlackTeam)
    rate_limits: SlackRateLimits = field(default_factory=SlackRateLimits)
    max_page_size: Optional[int] = None
    tokens: list[SlackToken] = field(default_factory=list)
    users: list[SlackUser] = field(default_factory=list)
    apps: list[SlackApp] = field(default_factory=list)
    bots: list[SlackBot] = field(default_factory=list)
    integration_logs: list[SlackLogEntry] = field(default_factory=list)
    channels: list[SlackChannel] = field(default_factory=list)
    # Runtime state.
    conversations: dict[str, Conversation] = field(default_factory=dict, init=False)
    messages: list[dict[str, Any]] = field(default_factory=list, init=False)
    bot_users: list[SlackUser] = field(default_factory=list, init=False)  # one per ``bots`` entry

    # -- lookups -------------------------------------------------------------------------

    def members(self) -> list[SlackUser]:
        """Humans, then bot users, in estate order (Slackbot is added by the emulator)."""
        return list(self.users) + list(self.bot_users)

    def user_by_id(self, uid: str) -> Optional[SlackUser]:
        return next((u for u in self.members() if u.id == uid), None)

    def user_by_name(self, name: str) -> Optional[SlackUser]:
        return next((u for u in self.members() if u.name == name), None)

    def token(self, value: str) -> Optional[SlackToken]:
        return next((t for t in self.tokens if t.token == value), None)

    def app(self, ref: str) -> Optional[SlackApp]:
        return next((a for a in self.apps if a.id == ref or a.name == ref), None)

    def bot(self, bot_id: str) -> Optional[SlackBot]:
        return next((b for b in self.bots if b.id == bot_id), None)

    def channel(self, ref: str) -> Optional[SlackChannel]:
        ref = ref.lstrip("#")
        return next((c for c in self.channels if c.id == ref or c.name == ref), None)


# --------------------------------------------------------------------------------------------
# Loading


def _derived_id(prefix: str, *parts: Any, taken: set[str], length: int = 10) -> str:
    """A stable Slack-style id (``U`` + 10 of ``[A-Z0-9]``) from where the object lives."""
    seed = "/".join(str(p).lower() for p in parts)
    digest = base64.b32encode(hashlib.sha1(seed.encode()).digest()).decode().replace("=", "")
    candidate = prefix + digest[:length]
    n = 0
    while candidate in taken:
        n += 1
        candidate = prefix + digest[: length - 2] + f"{n:02d}"
    taken.add(candidate)
    return candidate


def _check_id(kind: str, value: str, path: str, ctx: _Ctx) -> None:
    if not _ID_PATTERNS[kind].match(value):
        raise ctx.error(path, f"not a Slack {kind} id: {value!r} (expected {_ID_PATTERNS[kind].pattern})")


def _check_scopes(scopes: list[str], path: str, ctx: _Ctx) -> None:
    for i, s in enumerate(scopes):
        if s not in KNOWN_SCOPES:
            hint = difflib.get_close_matches(s, sorted(KNOWN_SCOPES), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ctx.error(f"{path}[{i}]", f"unknown Slack scope {s!r}{did}")


def _unique(items: list, attr: str, path: str, ctx: _Ctx) -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value is None:
            continue
        key = value.lower() if isinstance(value, str) else value
        if key in seen:
            raise ctx.error(f"{path}[{i}].{attr}", f"duplicate {attr} {value!r} (also at {path}[{seen[key]}])")
        seen[key] = i


def parse_estate(raw: Any, ctx: _Ctx, path: str = "slack") -> SlackEstate:
    """Build and validate the ``slack:`` section (raises ``EstateError`` naming the YAML path)."""
    state = _build(SlackEstate, raw if raw is not None else {}, path, ctx)
    _finalize(state, ctx, path)
    return state


def _finalize(st: SlackEstate, ctx: _Ctx, path: str) -> None:
    """Check references, fill in ids and defaults, and make a bot user for every bot."""
    now = ctx.now
    taken: set[str] = set()
    team = st.team
    if team.id is None:
        team.id = _derived_id("T", "team", team.domain, taken=taken)
    _check_id("team", team.id, _join(path, "team.id"), ctx)
    if team.enterprise_id is not None:
        _check_id("enterprise", team.enterprise_id, _join(path, "team.enterprise_id"), ctx)
        team.enterprise_name = team.enterprise_name or team.name
    if team.created is None:
        team.created = now
    if st.max_page_size is not None and st.max_page_size < 1:
        raise ctx.error(_join(path, "max_page_size"), "expected a positive integer or null")
    for name in ("tier1", "tier2", "tier3", "tier4", "special", "posting"):
        v = getattr(st.rate_limits, name)
        if v is not None and v < 1:
            raise ctx.error(_join(path, f"rate_limits.{name}"), "expected a positive integer or null (no limit)")

    _unique(st.users, "name", _join(path, "users"), ctx)
    _unique(st.users, "email", _join(path, "users"), ctx)
    for i, u in enumerate(st.users):
        p = _join(path, f"users[{i}]")
        if u.id is None:
            u.id = _derived_id("U", "user", u.name, taken=taken)
        else:
            _check_id("user", u.id, _join(p, "id"), ctx)
            taken.add(u.id)
        u.real_name = u.real_name if u.real_name is not None else u.name
        u.updated = u.updated or now

    _unique(st.apps, "name", _join(path, "apps"), ctx)
    for i, a in enumerate(st.apps):
        p = _join(path, f"apps[{i}]")
        if a.id is None:
            a.id = _derived_id("A", "app", a.name, taken=taken)
        else:
            _check_id("app", a.id, _join(p, "id"), ctx)
            taken.add(a.id)
        _check_scopes(a.scopes, _join(p, "scopes"), ctx)
        _check_scopes(a.user_scopes, _join(p, "user_scopes"), ctx)
        if a.sensitive_scopes is not None:
            _check_scopes(a.sensitive_scopes, _join(p, "sensitive_scopes"), ctx)
        a.date_updated = a.date_updated or now
    _unique(st.apps, "id", _join(path, "apps"), ctx)

    human_names = {u.name.lower() for u in st.users}
    _unique(st.bots, "name", _join(path, "bots"), ctx)
    bot_users: list[SlackUser] = []
    for i, b in enumerate(st.bots):
        p = _join(path, f"bots[{i}]")
        if b.name.lower() in human_names:
            raise ctx.error(_join(p, "name"), f"{b.name!r} is already a user name (bot users share the namespace)")
        app = st.app(b.app)
        if app is None:
            raise ctx.error(_join(p, "app"), f"no app {b.app!r} in slack.apps")
        b.app_ref = app
        b.id = b.id or _derived_id("B", "bot", b.name, taken=taken)
        _check_id("bot", b.id, _join(p, "id"), ctx)
        b.user_id = b.user_id or _derived_id("U", "bot-user", b.name, taken=taken)
        _check_id("user", b.user_id, _join(p, "user_id"), ctx)
        b.updated = b.updated or now
        bu = SlackUser(name=b.name, id=b.user_id, real_name=b.real_name or app.name, deleted=b.deleted, updated=b.updated)
        bu.is_bot = True
        bu.bot = b
        bot_users.append(bu)
    st.bot_users = bot_users
    ids = [u.id for u in st.members()]
    dupes = sorted({x for x in ids if ids.count(x) > 1})
    if dupes:
        raise ctx.error(_join(path, "users"), f"duplicate user ids: {', '.join(dupes)}")

    _unique(st.tokens, "token", _join(path, "tokens"), ctx)
    for i, t in enumerate(st.tokens):
        p = _join(path, f"tokens[{i}]")
        want = "xoxb-" if t.type == "bot" else "xoxp-"
        if not t.token.startswith(want):
            raise ctx.error(_join(p, "token"), f"a {t.type} token starts with {want!r}")
        who = st.user_by_name(t.user)
        if who is None:
            raise ctx.error(_join(p, "user"), f"no user or bot named {t.user!r}")
        if t.type == "bot" and not who.is_bot:
            raise ctx.error(_join(p, "user"), f"a bot token must name a bot (slack.bots), and {t.user!r} is a person")
        if t.type != "bot" and who.is_bot:
            raise ctx.error(_join(p, "user"), f"a {t.type} token must name a person, and {t.user!r} is a bot")
        _check_scopes(t.scopes, _join(p, "scopes"), ctx)
        for fi, f in enumerate(t.faults):
            if f.times is not None and f.times < 0:
                raise ctx.error(_join(p, f"faults[{fi}].times"), "expected a non-negative integer")
            if f.retry_after < 0:
                raise ctx.error(_join(p, f"faults[{fi}].retry_after"), "expected a non-negative integer")

    for i, a in enumerate(st.apps):
        if a.resolved_by is not None and st.user_by_name(a.resolved_by) is None:
            raise ctx.error(_join(path, f"apps[{i}].resolved_by"), f"no user named {a.resolved_by!r}")

    for i, e in enumerate(st.integration_logs):
        p = _join(path, f"integration_logs[{i}]")
        if st.app(e.app) is None:
            raise ctx.error(_join(p, "app"), f"no app {e.app!r} in slack.apps")
        if st.user_by_name(e.user) is None:
            raise ctx.error(_join(p, "user"), f"no user named {e.user!r}")
        if e.scopes is not None:
            _check_scopes(e.scopes, _join(p, "scopes"), ctx)

    _unique(st.channels, "name", _join(path, "channels"), ctx)
    for i, c in enumerate(st.channels):
        p = _join(path, f"channels[{i}]")
        if c.id is None:
            c.id = _derived_id("G" if c.private else "C", "channel", c.name, taken=taken)
        else:
            _check_id("channel", c.id, _join(p, "id"), ctx)
            taken.add(c.id)
        c.created = c.created or now
        for mi, m in enumerate(c.members):
            if st.user_by_name(m) is None:
                raise ctx.error(_join(p, f"members[{mi}]"), f"no user or bot named {m!r}")
        if c.creator is not None and st.user_by_name(c.creator) is None:
            raise ctx.error(_join(p, "creator"), f"no user named {c.creator!r}")
    for i, e in enumerate(st.integration_logs):
        if e.channel is not None and st.channel(e.channel) is None:
            raise ctx.error(_join(path, f"integration_logs[{i}].channel"), f"no channel {e.channel!r} in slack.channels")


def empty_state(now: datetime) -> SlackEstate:
    """The state served when an estate has no ``slack:`` section: a team and nothing else."""
    return parse_estate({}, _Ctx(now=now, file=None), "slack")


# --------------------------------------------------------------------------------------------
# Methods: tier, accepted scopes, token types


@dataclass(frozen=True)
class Method:
    name: str
    tier: str  # tier1..tier4 | special | posting
    scopes: tuple[str, ...] = ()  # any one of them suffices; () = none needed (or checked by the handler)
    token_types: tuple[str, ...] = ("bot", "user", "org_admin")


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("auth.test", "special"),
        Method("users.list", "tier2", ("users:read",)),
        Method("users.info", "tier4", ("users:read",)),
        Method("users.lookupByEmail", "tier3", ("users:read.email",)),
        Method("bots.info", "tier3", ("users:read",)),
        Method("team.info", "tier3", ("team:read",)),
        Method("team.integrationLogs", "tier2", ("admin",), ("user", "org_admin")),
        Method("admin.apps.approved.list", "tier2", ("admin.apps:read",), ("user", "org_admin")),
        Method("admin.apps.restricted.list", "tier2", ("admin.apps:read",), ("user", "org_admin")),
        Method("conversations.open", "tier3"),
        Method("conversations.list", "tier2"),
        Method("chat.postMessage", "posting", ("chat:write", "chat:write:bot", "chat:write:user")),
        Method("conversations.history", "tier3"),
    )
}

_CONVERSATION_TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}


class SlackError(Exception):
    """Raised by handlers; becomes ``{"ok": false, "error": code, ...}`` (HTTP 200 unless told)."""

    def __init__(self, code: str, *, status: int = 200, headers: Optional[dict[str, str]] = None, **extra: Any):
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = headers or {}
        self.extra = extra


@dataclass
class Call:
    """One API call being served."""

    request: Request
    method: str
    args: dict[str, Any]
    token: Optional[SlackToken] = None
    user: Optional[SlackUser] = None  # who the token acts as (a person or a bot user)
    accepted_scopes: tuple[str, ...] = ()
    error: Optional[str] = None  # the Slack error code answered, for the request log


# --------------------------------------------------------------------------------------------
# The WSGI app


class SlackEmulator(Emulator[SlackEstate]):
    """The Slack WSGI app. ``state`` is the live estate; ``messages`` what was posted."""

    vendor = "slack"
    url_suffix = URL_SUFFIX
    control_content_type = JSON_TYPE

    def __init__(self, estate: Estate, *, reload: Optional[Callable[[], Estate]] = None):
        super().__init__(estate, reload=reload)
        self._windows: dict[tuple[str, ...], deque] = {}
        self._ts_seq = 0
        #: Called as ``tap(method, status, body)`` for every JSON body sent (tests validate them).
        self.tap: Optional[Callable[[str, int, Any], None]] = None
        self._state = self._state_of(estate)

    @staticmethod
    def _state_of(estate: Estate) -> SlackEstate:
        state = estate.vendors.get("slack")
        return state if state is not None else empty_state(estate.now)

    # -- public Python API (the request log, reset and stop are ``Emulator``'s) ----------------

    @property
    def state(self) -> SlackEstate:
        """The live Slack estate this emulator serves; mutate it (under :meth:`mutate`) between calls."""
        return self._state

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message ``chat.postMessage`` accepted, oldest first: ``channel``, ``text``,
        ``blocks``, ``thread_ts``, ``ts``, ``user`` (the poster), ``recipient`` (the other
        member of a DM, else None), ``attachments``."""
        with self._lock:
            return copy.deepcopy(self._state.messages)

    def clear_messages(self) -> None:
        with self._lock:
            self._state.messages.clear()

    def set_estate(self, estate: Estate) -> None:
        """Swap in a freshly loaded estate: faults, rate windows, log, DMs and messages start afresh."""
        with self._lock:
            super().set_estate(estate)
            self._state = self._state_of(estate)
            self._windows.clear()

    # -- serving a call ----------------------------------------------------------------------

    def _crash_response(self) -> Response:
        return _json({"ok": False, "error": "fatal_error"}, 500)

    def _begin(self, request: Request, path: str) -> Call | Response:
        if not path.startswith(API_PREFIX) or len(path) <= len(API_PREFIX):
            return _json({"ok": False, "error": "unknown_method", "req_method": path.lstrip("/")}, 404)
        return Call(request=request, method=path[len(API_PREFIX):].strip("/"), args={})

    def _serve(self, call: Call) -> tuple[Response, Optional[str]]:
        """The response and the fault injected; the Slack error code sent goes to ``call.error``."""
        try:
            call.args = _parse_args(call.request)
            self._authenticate(call)
        except SlackError as e:
            return self._error(call, e), None
        spec = METHODS.get(call.method)
        if spec is None:
            call.error = "unknown_method"
            return self._send(call, {"ok": False, "error": "unknown_method", "req_method": call.method}, 200), None
        call.accepted_scopes = spec.scopes

        fault = self._pick_fault(call)
        if fault is not None and fault.fault == "rate_limited":
            err = SlackError("ratelimited", status=429, headers={"Retry-After": str(fault.retry_after)})
            return self._error(call, err), "rate_limited"
        if fault is not None and fault.fault == "server_error":
            return self._error(call, SlackError("fatal_error", status=500)), "server_error"
        self._stall(fault)

        try:
            with self._lock:
                self._check_token_type(call, spec)
                self._check_scopes(call, spec.scopes)
                self._count(call, spec)
                body = getattr(self, "m_" + call.method.replace(".", "_"))(call)
        except SlackError as e:
            return self._error(call, e), None
        if fault is not None and fault.fault == "malformed_json":
            raw = json.dumps({"ok": True, **body}).encode()
            return Response(half(raw), status=200, headers=self._headers(call), content_type=JSON_TYPE), "malformed_json"
        return self._send(call, {"ok": True, **body}, 200), None

    def _send(self, call: Call, body: dict[str, Any], status: int, headers: Optional[dict[str, str]] = None) -> Response:
        if self.tap is not None:
            self.tap(call.method, status, copy.deepcopy(body))
        out = self._headers(call)
        out.update(headers or {})
        return Response(json.dumps(body, ensure_ascii=False), status=status, headers=out, content_type=JSON_TYPE)

    def _error(self, call: Call, err: SlackError) -> Response:
        call.error = err.code
        return self._send(call, {"ok": False, "error": err.code, **err.extra}, err.status, err.headers)

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"X-Slack-Req-Id": _secrets.token_hex(16), "X-Slack-Backend": "r"}
        if call.token is not None:
            headers["X-OAuth-Scopes"] = ",".join(call.token.scopes)
            headers["X-Accepted-OAuth-Scopes"] = ",".join(call.accepted_scopes)
        return headers

    # -- control plane and request log ----------------------------------------------------------

    def _control_answer(self, method: str, path: str) -> tuple[int, Any]:
        """The shared control plane, plus ``GET``/``DELETE /_emu/messages`` (what was posted)."""
        if path == "/_emu/messages" and method == "GET":
            return 200, self.messages
        if path == "/_emu/messages" and method == "DELETE":
            self.clear_messages()
            return 204, None
        return super()._control_answer(method, path)

    def _reset_failed_body(self, err: Exception) -> Any:
        return {"ok": False, "error": f"reset failed: {err}"}

    def _control_not_found_body(self) -> Any:
        return {"ok": False, "error": "not found"}

    def _log_request(self, call: Call, status: int, fault: Optional[str], elapsed: float) -> None:
        raw = call.token.token if call.token else _raw_token(call.request, call.args)
        entry = {
            "time": log_time(),
            "http_method": call.request.method,
            "method": call.method,
            "token": token_suffix(raw),  # never more than the last 4 characters
            "token_type": call.token.type if call.token else None,
            "status": status,
            "error": call.error,
            "fault": fault,
        }
        self._append_log(entry)
        log.info("%s /api/%s -> %s %s%s (token …%s, %.0f ms)", entry["http_method"], call.method, status,
                 call.error or "ok", f" [fault {fault}]" if fault else "", entry["token"] or "none", elapsed * 1000)

    # -- auth, scopes, limits, faults -----------------------------------------------------

    def _authenticate(self, call: Call) -> None:
        raw = _raw_token(call.request, call.args)
        if not raw:
            raise SlackError("not_authed")
        with self._lock:
            tok = self._state.token(raw)
            if tok is None:
                raise SlackError("invalid_auth")
            if tok.revoked:
                raise SlackError("token_revoked")
            user = self._state.user_by_name(tok.user)
        if user is None or user.deleted:
            raise SlackError("account_inactive")
        call.token, call.user = tok, user

    def _check_token_type(self, call: Call, spec: Method) -> None:
        assert call.token is not None
        if call.token.type not in spec.token_types:
            raise SlackError("not_allowed_token_type")

    def _check_scopes(self, call: Call, accepted: tuple[str, ...]) -> None:
        assert call.token is not None
        if accepted and not set(accepted) & set(call.token.scopes):
            raise SlackError("missing_scope", needed=accepted[0], provided=",".join(call.token.scopes))

    def _limit(self, tier: str) -> Optional[int]:
        return getattr(self._state.rate_limits, tier)

    def _count(self, call: Call, spec: Method) -> None:
        """Slack's tiers: a sliding one-minute window per token and method (per channel for posting)."""
        limit = self._limit(spec.tier)
        if limit is None:
            return
        assert call.token is not None
        key: tuple[str, ...] = (call.token.token, spec.name)
        if spec.tier == "posting":
            key += (str(call.args.get("channel", "")),)
        now = time.monotonic()
        window = self._windows.setdefault(key, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(1, math.ceil(60.0 - (now - window[0])))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
        window.append(now)

    def _pick_fault(self, call: Call) -> Optional[SlackFault]:
        """Slack faults match the API method (``users.*``), not an HTTP path."""
        tok = call.token
        if tok is None:
            return None
        return self._select_fault(tok.token, tok.faults, lambda fault: fnmatch.fnmatchcase(call.method, fault.method))

    # -- JSON shapes ---------------------------------------------------------------------------

    def _user_json(self, call: Call, u: SlackUser) -> dict[str, Any]:
        st = self._state
        team_id = st.team.id
        assert team_id is not None
        avatar = hashlib.md5(u.name.encode()).hexdigest()[:12]
        show_email = call.token is not None and "users:read.email" in call.token.scopes
        profile: dict[str, Any] = {
            "title": u.title,
            "phone": "",
            "skype": "",
            "real_name": u.real_name or "",
            "real_name_normalized": u.real_name or "",
            "display_name": u.display_name,
            "display_name_normalized": u.display_name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": avatar,
            "first_name": (u.real_name or u.name).split(" ")[0],
            "last_name": " ".join((u.real_name or "").split(" ")[1:]),
            "image_24": f"https://avatars.slack-edge.com/{avatar}_24.png",
            "image_48": f"https://avatars.slack-edge.com/{avatar}_48.png",
            "image_72": f"https://avatars.slack-edge.com/{avatar}_72.png",
            "image_192": f"https://avatars.slack-edge.com/{avatar}_192.png",
            "image_512": f"https://avatars.slack-edge.com/{avatar}_512.png",
            "team": team_id,
        }
        if u.is_bot and u.bot is not None:
            profile.update({"bot_id": u.bot.id, "api_app_id": u.bot.app_ref.id if u.bot.app_ref else "",
                            "always_active": True})
        elif u.email and show_email:
            profile["email"] = u.email
        updated = int(u.updated.timestamp()) if u.updated else 0
        if u.deleted:
            # Slack trims deactivated accounts down to the essentials.
            body: dict[str, Any] = {"id": u.id, "team_id": team_id, "name": u.name, "deleted": True, "profile": profile,
                                    "is_bot": u.is_bot, "is_app_user": u.is_app_user, "updated": updated}
        else:
            tz, label, offset = _tz(u.tz)
            body = {
                "id": u.id,
                "team_id": team_id,
                "name": u.name,
                "deleted": False,
                "color": hashlib.md5(u.name.encode()).hexdigest()[:6],
                "real_name": u.real_name or "",
                "tz": tz,
                "tz_label": label,
                "tz_offset": offset,
                "profile": profile,
                "is_admin": u.is_admin or u.is_owner or u.is_primary_owner,
                "is_owner": u.is_owner or u.is_primary_owner,
                "is_primary_owner": u.is_primary_owner,
                "is_restricted": u.guest != "none",
                "is_ultra_restricted": u.guest == "single_channel",
                "is_bot": u.is_bot,
                "is_app_user": u.is_app_user,
                "updated": updated,
            }
            if not u.is_bot:
                body["has_2fa"] = u.has_2fa
        if call.args.get("include_locale") in (True, "true", "1", 1):
            body["locale"] = "en-US"
        body.update(copy.deepcopy(u.override))
        return body

    def _slackbot_json(self, call: Call) -> dict[str, Any]:
        team_id = self._state.team.id
        profile = {
            "title": "", "phone": "", "skype": "", "real_name": "Slackbot", "real_name_normalized": "Slackbot",
            "display_name": "Slackbot", "display_name_normalized": "Slackbot", "fields": None, "status_text": "",
            "status_emoji": "", "avatar_hash": "sv41d8cd98f0", "always_active": True, "first_name": "slackbot",
            "last_name": "", "team": team_id,
        }
        return {"id": "USLACKBOT", "team_id": team_id, "name": "slackbot", "deleted": False, "color": "757575",
                "real_name": "Slackbot", "tz": "America/Los_Angeles", "tz_label": "Pacific Standard Time",
                "tz_offset": -28800, "profile": profile, "is_admin": False, "is_owner": False,
                "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False, "is_bot": False,
                "is_app_user": False, "updated": 0}

    def _team_json(self) -> dict[str, Any]:
        t = self._state.team
        body: dict[str, Any] = {
            "id": t.id,
            "name": t.name,
            "domain": t.domain,
            "email_domain": t.email_domain,
            "icon": {"image_default": True, **{f"image_{n}": f"https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-{n}.png"
                                               for n in (34, 44, 68, 88, 102, 132, 230)}},
        }
        if t.enterprise_id:
            body["enterprise_id"] = t.enterprise_id
            body["enterprise_name"] = t.enterprise_name
        return body

    def _is_sensitive(self, app: SlackApp, scope: str) -> bool:
        if app.sensitive_scopes is not None:
            return scope in app.sensitive_scopes
        return bool(_SENSITIVE.match(scope))

    def _approval_json(self, app: SlackApp) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", app.name.lower()).strip("-")
        base = f"https://{self._state.team.domain}.enterprise.slack.com/apps/{app.id}-{slug}"
        scopes = [{"name": s, "description": f"{s} ({kind} token)", "is_sensitive": self._is_sensitive(app, s), "token_type": kind}
                  for kind, names in (("bot", app.scopes), ("user", app.user_scopes)) for s in names]
        body: dict[str, Any] = {
            "app": {
                "id": app.id,
                "name": app.name,
                "description": app.description,
                "help_url": "",
                "privacy_policy_url": "",
                "app_homepage_url": "",
                "app_directory_url": base,
                "is_app_directory_approved": app.directory_approved,
                "is_internal": app.is_internal,
                "additional_info": "",
                "icons": {f"image_{n}": f"https://a.slack-edge.com/app-icons/{app.id}_{n}.png" for n in (32, 36, 48, 64, 72, 96, 128, 192, 512)},
            },
            "scopes": scopes,
            "date_updated": int(app.date_updated.timestamp()) if app.date_updated else 0,
        }
        if app.resolved_by is not None:
            who = self._state.user_by_name(app.resolved_by)
            body["last_resolved_by"] = {"actor_id": who.id if who else "", "actor_type": "user"}
        return body

    def _channel_json(self, call: Call, c: SlackChannel) -> dict[str, Any]:
        st = self._state
        creator = st.user_by_name(c.creator) if c.creator else None
        members = [st.user_by_name(m) for m in c.members]
        created = int(c.created.timestamp()) if c.created else 0
        body = {
            "id": c.id,
            "name": c.name,
            "name_normalized": c.name,
            "created": created,
            "creator": creator.id if creator else "",
            "is_channel": not c.private,
            "is_group": c.private,
            "is_im": False,
            "is_mpim": False,
            "is_private": c.private,
            "is_archived": c.archived,
            "is_general": c.general,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "is_member": call.user is not None and call.user.name in c.members,
            "unlinked": 0,
            "parent_conversation": None,
            "shared_team_ids": [st.team.id],
            "pending_shared": [],
            "pending_connected_team_ids": [],
            "previous_names": [],
            "num_members": len([m for m in members if m is not None]),
            "topic": {"value": c.topic, "creator": creator.id if (creator and c.topic) else "", "last_set": created if c.topic else 0},
            "purpose": {"value": c.purpose, "creator": creator.id if (creator and c.purpose) else "", "last_set": created if c.purpose else 0},
        }
        return body

    def _im_json(self, call: Call, conv: Conversation) -> dict[str, Any]:
        me = call.user.id if call.user else None
        others = [m for m in conv.members if m != me]
        return {"id": conv.id, "created": conv.created, "is_im": True, "is_org_shared": False,
                "user": others[0] if others else (me or ""), "is_user_deleted": False, "priority": 0}

    # -- paging helpers ------------------------------------------------------------------------

    def _page_size(self, call: Call, default: int, maximum: int) -> int:
        limit = _int(call.args.get("limit"), default)
        if limit <= 0:
            limit = default
        limit = min(limit, maximum)
        if self._state.max_page_size is not None:
            limit = min(limit, self._state.max_page_size)
        return limit

    def _cursor_page(self, call: Call, items: list[tuple[str, Any]], kind: str, *, default: int, maximum: int) -> tuple[list[Any], str]:
        """A page of ``(id, item)`` pairs from ``cursor``; returns the items and the next cursor ("" at the end)."""
        start = 0
        cursor = call.args.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor), validate=True).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise SlackError("invalid_cursor") from None
            prefix, _, ident = decoded.partition(":")
            ids = [i for i, _ in items]
            if prefix != kind or ident not in ids:
                raise SlackError("invalid_cursor")
            start = ids.index(ident)
        size = self._page_size(call, default, maximum)
        page = items[start:start + size]
        nxt = ""
        if start + size < len(items):
            nxt = base64.b64encode(f"{kind}:{items[start + size][0]}".encode()).decode()
        return [item for _, item in page], nxt

    # -- methods ---------------------------------------------------------------------------------

    def m_auth_test(self, call: Call) -> dict[str, Any]:
        st, u = self._state, call.user
        assert u is not None and call.token is not None
        body: dict[str, Any] = {
            "url": f"https://{st.team.domain}.slack.com/",
            "team": st.team.name,
            "user": u.name,
            "team_id": st.team.id,
            "user_id": u.id,
            "is_enterprise_install": False,
        }
        if call.token.type == "bot" and u.bot is not None:
            body["bot_id"] = u.bot.id
        return body

    def m_users_list(self, call: Call) -> dict[str, Any]:
        members = [(u.id, self._user_json(call, u)) for u in self._state.members()]
        members.append(("USLACKBOT", self._slackbot_json(call)))
        page, nxt = self._cursor_page(call, members, "user", default=1000, maximum=1000)
        return {"members": page, "cache_ts": int(time.time()), "response_metadata": {"next_cursor": nxt}}

    def m_users_info(self, call: Call) -> dict[str, Any]:
        uid = str(call.args.get("user", ""))
        if uid == "USLACKBOT":
            return {"user": self._slackbot_json(call)}
        u = self._state.user_by_id(uid)
        if u is None:
            raise SlackError("user_not_found")
        return {"user": self._user_json(call, u)}

    def m_users_lookupByEmail(self, call: Call) -> dict[str, Any]:
        email = str(call.args.get("email", "")).strip().lower()
        u = next((x for x in self._state.users if x.email and x.email.lower() == email), None)
        if u is None or not email:
            raise SlackError("users_not_found")
        return {"user": self._user_json(call, u)}

    def m_bots_info(self, call: Call) -> dict[str, Any]:
        b = self._state.bot(str(call.args.get("bot", "")))
        if b is None:
            raise SlackError("bot_not_found")
        return {"bot": {
            "id": b.id,
            "deleted": b.deleted,
            "name": b.name,
            "updated": int(b.updated.timestamp()) if b.updated else 0,
            "app_id": b.app_ref.id if b.app_ref else "",
            "user_id": b.user_id,
            "icons": {f"image_{n}": f"https://a.slack-edge.com/bot-icons/{b.id}_{n}.png" for n in (36, 48, 72)},
        }}

    def m_team_info(self, call: Call) -> dict[str, Any]:
        wanted = call.args.get("team")
        if wanted and wanted != self._state.team.id:
            raise SlackError("team_not_found")
        return {"team": self._team_json()}

    def m_team_integrationLogs(self, call: Call) -> dict[str, Any]:
        st = self._state
        entries = sorted(st.integration_logs, key=lambda e: e.date, reverse=True)  # newest first, as Slack lists them
        app_filter = call.args.get("app_id")
        change_filter = call.args.get("change_type")
        user_filter = call.args.get("user")
        if call.args.get("service_id"):
            entries = []  # legacy services are not modelled
        logs = []
        for e in entries:
            app = st.app(e.app)
            who = st.user_by_name(e.user)
            assert app is not None and who is not None
            if app_filter and app.id != app_filter:
                continue
            if change_filter and e.change_type != change_filter:
                continue
            if user_filter and who.id != user_filter:
                continue
            scopes = e.scopes if e.scopes is not None else (app.scopes + app.user_scopes if e.change_type in ("added", "expanded") else [])
            item = {"app_id": app.id, "app_type": app.name, "user_id": who.id, "user_name": who.name,
                    "date": str(int(e.date.timestamp())), "change_type": e.change_type, "scope": ",".join(scopes)}
            if e.channel:
                ch = st.channel(e.channel)
                if ch is not None:
                    item["channel"] = ch.id
            logs.append(item)
        count = min(max(1, _int(call.args.get("count"), 100)), 1000, st.max_page_size or 1000)
        page = max(1, _int(call.args.get("page"), 1))
        pages = max(1, math.ceil(len(logs) / count))
        return {"logs": logs[(page - 1) * count: page * count],
                "paging": {"count": count, "total": len(logs), "page": page, "pages": pages}}

    def _admin_apps(self, call: Call, approval: str, key: str) -> dict[str, Any]:
        assert call.token is not None
        if call.token.type != "org_admin":
            raise SlackError("not_an_admin")
        if not self._state.team.enterprise_id:
            raise SlackError("not_an_enterprise")
        limit = call.args.get("limit")
        if limit is not None and not 1 <= _int(limit, 0) <= 1000:
            raise SlackError("invalid_arguments")  # "Must be between 1 - 1000 both inclusive"
        apps = [(a.id, self._approval_json(a)) for a in self._state.apps if a.approval == approval]
        page, nxt = self._cursor_page(call, apps, "app", default=100, maximum=1000)
        return {key: page, "response_metadata": {"next_cursor": nxt}}

    def m_admin_apps_approved_list(self, call: Call) -> dict[str, Any]:
        return self._admin_apps(call, "approved", "approved_apps")

    def m_admin_apps_restricted_list(self, call: Call) -> dict[str, Any]:
        return self._admin_apps(call, "restricted", "restricted_apps")

    def m_conversations_open(self, call: Call) -> dict[str, Any]:
        st, me = self._state, call.user
        assert me is not None
        channel = call.args.get("channel")
        return_im = call.args.get("return_im") in (True, "true", "1", 1)
        if channel and not call.args.get("users"):
            conv = st.conversations.get(str(channel))
            if conv is None or me.id not in conv.members:
                raise SlackError("channel_not_found")
            return {"channel": self._im_json(call, conv) if return_im else {"id": conv.id}, "no_op": True, "already_open": True}
        raw_users = call.args.get("users")
        ids = [x.strip() for x in (raw_users if isinstance(raw_users, list) else str(raw_users or "").split(",")) if x.strip()]
        if not ids:
            raise SlackError("users_list_not_supplied")
        if len(ids) > 8:
            raise SlackError("too_many_users")
        self._check_scopes(call, ("im:write",) if len(ids) == 1 else ("mpim:write",))
        for uid in ids:
            target = st.user_by_id(uid)
            if target is None:
                raise SlackError("user_not_found")
            if target.deleted:
                raise SlackError("user_disabled")
        members = tuple(sorted({me.id, *ids}))  # type: ignore[arg-type]
        prefix = "D" if len(ids) == 1 else "G"
        conv_id = prefix + base64.b32encode(hashlib.sha1("/".join(members).encode()).digest()).decode()[:10]
        existing = st.conversations.get(conv_id)
        if existing is None:
            st.conversations[conv_id] = Conversation(id=conv_id, members=members, created=int(time.time()))
        conv = st.conversations[conv_id]
        body: dict[str, Any] = {"channel": self._im_json(call, conv) if return_im and prefix == "D" else {"id": conv_id}}
        if existing is not None:
            body.update({"no_op": True, "already_open": True})
        return body

    def m_conversations_list(self, call: Call) -> dict[str, Any]:
        st, me = self._state, call.user
        assert me is not None
        types = [t.strip() for t in str(call.args.get("types") or "public_channel").split(",") if t.strip()]
        unknown = [t for t in types if t not in _CONVERSATION_TYPE_SCOPES]
        if unknown:
            raise SlackError("invalid_types")
        for t in types:
            self._check_scopes(call, (_CONVERSATION_TYPE_SCOPES[t],))
        exclude_archived = call.args.get("exclude_archived") in (True, "true", "1", 1)
        items: list[tuple[str, Any]] = []
        for c in st.channels:
            kind = "private_channel" if c.private else "public_channel"
            if kind not in types or (exclude_archived and c.archived):
                continue
            if c.private and me.name not in c.members:
                continue
            items.append((c.id, self._channel_json(call, c)))
        for conv in st.conversations.values():
            kind = "im" if conv.id.startswith("D") else "mpim"
            if kind in types and me.id in conv.members:
                items.append((conv.id, self._im_json(call, conv)))
        page, nxt = self._cursor_page(call, items, "team", default=100, maximum=1000)
        return {"channels": page, "response_metadata": {"next_cursor": nxt}}

    def m_chat_postMessage(self, call: Call) -> dict[str, Any]:
        st, me, tok = self._state, call.user, call.token
        assert me is not None and tok is not None
        target = str(call.args.get("channel") or "")
        if not target:
            raise SlackError("channel_not_found")
        text = call.args.get("text")
        text = "" if text is None else str(text)
        blocks = _blocks(call.args.get("blocks"))
        attachments = call.args.get("attachments")
        if isinstance(attachments, str):
            try:
                attachments = json.loads(attachments) if attachments else None
            except ValueError:
                raise SlackError("invalid_arguments") from None
        if attachments is not None and (not isinstance(attachments, list) or len(attachments) > 100):
            raise SlackError("too_many_attachments" if isinstance(attachments, list) else "invalid_arguments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if len(text) > 40000:
            raise SlackError("msg_too_long")
        channel_id, recipient = self._post_target(call, target)
        # Slack does not reject an unknown thread_ts; it is recorded as given.
        thread_ts = call.args.get("thread_ts")
        thread_ts = str(thread_ts) if thread_ts else None
        metadata = call.args.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata) if metadata else None
            except ValueError:
                raise SlackError("invalid_metadata_format") from None
        if metadata is not None and (not isinstance(metadata, dict) or not metadata.get("event_type")
                                     or not isinstance(metadata.get("event_payload", {}), dict)):
            raise SlackError("invalid_metadata_schema")
        ts = self._next_ts()
        st.messages.append({
            "channel": channel_id, "recipient": recipient, "text": text, "blocks": blocks, "attachments": attachments,
            "thread_ts": thread_ts, "ts": ts, "user": me.id, "token_type": tok.type, "metadata": metadata,
        })
        message: dict[str, Any] = {"type": "message", "text": text, "user": me.id, "ts": ts, "team": st.team.id}
        if me.is_bot and me.bot is not None:
            message["bot_id"] = me.bot.id
        if blocks:
            message["blocks"] = blocks
        if thread_ts and re.match(r"^\d{10}\.\d{6}$", thread_ts):
            message["thread_ts"] = thread_ts
        return {"channel": channel_id, "ts": ts, "message": message}

    def m_conversations_history(self, call: Call) -> dict[str, Any]:
        """Messages posted in a conversation, newest first; ``metadata`` only with include_all_metadata."""
        st, me = self._state, call.user
        assert me is not None
        channel = str(call.args.get("channel") or "")
        conv = st.conversations.get(channel)
        ch = None if conv is not None else st.channel(channel)
        if conv is None and ch is None:
            raise SlackError("channel_not_found")
        if conv is not None:
            if me.id not in conv.members:
                raise SlackError("channel_not_found")
            self._check_scopes(call, ("im:history",) if conv.id.startswith("D") else ("mpim:history",))
            channel_id = conv.id
        else:
            if ch.private and me.name not in ch.members:
                raise SlackError("channel_not_found")
            self._check_scopes(call, ("groups:history",) if ch.private else ("channels:history",))
            channel_id = ch.id
        with_meta = call.args.get("include_all_metadata") in (True, "true", "1", 1)
        items = []
        for m in reversed(st.messages):
            if m["channel"] != channel_id:
                continue
            msg: dict[str, Any] = {"type": "message", "user": m["user"], "text": m["text"], "ts": m["ts"]}
            if with_meta and m.get("metadata"):
                msg["metadata"] = m["metadata"]
            items.append((m["ts"], msg))
        page, nxt = self._cursor_page(call, items, "history", default=100, maximum=999)
        return {"messages": page, "has_more": bool(nxt), "response_metadata": {"next_cursor": nxt}}

    def _post_target(self, call: Call, target: str) -> tuple[str, Optional[str]]:
        """Resolve ``channel`` (an id, a ``#name`` or a user id) to a conversation the caller may post in."""
        st, me, tok = self._state, call.user, call.token
        assert me is not None and tok is not None
        if target.startswith(("U", "W")) and st.user_by_id(target) is not None:
            # Posting to a user id posts in the app's DM with that user.
            other = st.user_by_id(target)
            assert other is not None
            if other.deleted:
                raise SlackError("channel_not_found")
            members = tuple(sorted({me.id, other.id}))  # type: ignore[arg-type]
            conv_id = "D" + base64.b32encode(hashlib.sha1("/".join(members).encode()).digest()).decode()[:10]
            st.conversations.setdefault(conv_id, Conversation(id=conv_id, members=members, created=int(time.time())))
            return conv_id, other.id
        conv = st.conversations.get(target)
        if conv is not None:
            if me.id not in conv.members:
                raise SlackError("channel_not_found")
            others = [m for m in conv.members if m != me.id]
            return conv.id, (others[0] if conv.id.startswith("D") and others else None)
        ch = st.channel(target)
        if ch is None or (ch.private and me.name not in ch.members):
            raise SlackError("channel_not_found")
        if ch.archived:
            raise SlackError("is_archived")
        if me.name not in ch.members and "chat:write.public" not in tok.scopes:
            raise SlackError("not_in_channel")
        assert ch.id is not None
        return ch.id, None

    def _next_ts(self) -> str:
        self._ts_seq += 1
        return f"{int(time.time()):010d}.{self._ts_seq % 1_000_000:06d}"


# --------------------------------------------------------------------------------------------
# Helpers


def _json(body: Any, status: int) -> Response:
    return json_response(body, status, content_type=JSON_TYPE)


def _parse_args(request: Request) -> dict[str, Any]:
    """Query string, then form body, then JSON body (Slack reads all three)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items()}
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(data, dict):
                raise SlackError("json_not_object")
            data.pop("token", None)  # Slack does not read a token from a JSON body
            args.update(data)
    else:
        args.update({k: v for k, v in request.form.items()})
    return args


def _raw_token(request: Request, args: dict[str, Any]) -> Optional[str]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = args.get("token")
    return str(token) if token else None


def _int(value: Any, default: int) -> int:
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _blocks(value: Any) -> Optional[list[dict[str, Any]]]:
    """Block Kit blocks from a JSON string (form body) or a list (JSON body).

    Not a JSON array: ``invalid_blocks_format``; an entry without a ``type`` or more than 50
    blocks: ``invalid_blocks`` (Slack checks each block's full Block Kit syntax; we check less)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if not isinstance(value, list):
        raise SlackError("invalid_blocks_format")
    if len(value) > 50 or not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in value):
        raise SlackError("invalid_blocks")
    return value or None


def _tz(name: str) -> tuple[str, str, int]:
    try:
        from zoneinfo import ZoneInfo

        now = datetime.now(ZoneInfo(name))
        offset = now.utcoffset()
        return name, now.tzname() or name, int(offset.total_seconds()) if offset else 0
    except Exception:  # noqa: BLE001 - an unknown zone is served as UTC
        return name, "Coordinated Universal Time", 0


def build(estate: Estate, *, reload: Callable[[], Estate], **_options: Any) -> SlackEmulator:
    """The sandbox's entry point (see ``sandbox.estate.VENDOR_SECTIONS``)."""
    return SlackEmulator(estate, reload=reload)
