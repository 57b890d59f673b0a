"""Slack collector: workspace members, bot users, apps, app approvals and the install history.

Cartography's split, as in the GitHub collector: ``get_*`` functions do the I/O with the real
``slack_sdk.WebClient`` and return the raw JSON Slack sent; ``transform_*`` functions are pure
(raw dicts in, records out) and unit-tested on recorded-shape payloads; :func:`collect` ties them
together for one source and never raises for an API failure.

Inventories (``{src}:{team_id}:<name>``):

* ``users`` — ``users.list``: the workspace (a Resource), people (``Account(is_human=True)`` with
  their email) and bot/app users (``Account(account_type="bot")``).
* ``bots`` — ``bots.info`` for every bot user: which app each bot belongs to. Apps known only
  through a bot are emitted here (``Account(account_type="app")``, key ``{src}:app:{app_id}``).
* ``approved_apps`` — ``admin.apps.approved.list`` and ``admin.apps.restricted.list``: apps with
  their scopes, privilege and whether they are third-party. Enterprise Grid org admins only.
* ``integration_logs`` — ``team.integrationLogs``: who installed or removed which app. The
  installer becomes the app's (and its bot user's) owner; an app whose last entry is a removal
  is DELETED. Apps known only from the log are emitted here.

An app is one record, built from every listing that names it, and filed under the first of
``approved_apps``, ``bots``, ``integration_logs`` that did; ``attributes["derived_from"]`` lists the
others, so a finding that rests on them stays open when they could not be read (DESIGN.md
invariant 2). An inventory that could not be read is a gap with the reason (a ``missing_scope``
names the scope); a malformed item is logged and skipped. No token is logged, stored or put in a
reason: Slack's error codes are kept, never the exception text.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import urllib.error
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler

from scanner.collectors.common import (Batch, CollectorRun, Fetched, MalformedItem, MalformedResponse, each_item,
                                       grant_key, label_by, opt_bool, opt_dict, opt_str, req_str)
from scanner.config import Config, ConfigError, SlackSource, read_secret
from scanner.records import (
    Account,
    CollectResult,
    Grant,
    Ownership,
    Privilege,
    Record,
    Resource,
    Status,
)

log = logging.getLogger("nhiscan.collectors.slack")

#: Inventories, in the order they are reported.
INVENTORIES: tuple[str, ...] = ("users", "bots", "approved_apps", "integration_logs")
PAGE_LIMIT = 200  # Slack recommends at most 200 per page on cursor-paginated methods
LOG_PAGE_COUNT = 100

APPROVED_APPS_NEED_ORG_ADMIN = "approved apps need an Enterprise Grid org admin user token (admin.apps:read)"
INSTALLER_EVIDENCE = "installed by (Slack integration log)"

_NEEDS: dict[str, str] = {
    "users": "a bot or user token with users:read (users:read.email to see emails)",
    "bots": "a bot or user token with users:read",
    "approved_apps": "an Enterprise Grid org admin's user token with admin.apps:read",
    "integration_logs": "a workspace admin's user token with the admin scope",
}
# Errors that mean "this credential may not call admin.apps.*".
_NOT_AN_ORG_ADMIN = frozenset({"not_allowed_token_type", "missing_scope", "not_an_admin", "not_an_enterprise",
                               "no_permission", "feature_not_enabled"})
_AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive"})

# Scopes Slack calls sensitive, plus those that read or change what people say and share.
_SENSITIVE_SCOPE = re.compile(
    r"^(admin([.:].*)?|client|(channels|groups|im|mpim):history|files:read|"
    r"(users|users\.profile|channels|groups|files):write.*|chat:write\.customize)$"
)
_WRITE_LEGACY = frozenset({"bot", "incoming-webhook"})


# --- keys ----------------------------------------------------------------------------------


def inventory_name(src: str, team: str, short: str) -> str:
    return f"{src}:{team}:{short}"


def workspace_key(src: str, team_id: str) -> str:
    return f"{src}:workspace:{team_id}"


def user_key(src: str, user_id: str) -> str:
    return f"{src}:user:{user_id}"


def app_key(src: str, app_id: str) -> str:
    return f"{src}:app:{app_id}"


# --- payload checking (shared readers in scanner.collectors.common) ----------------------

# An item in a warning is named by its id, name or app id (Slack's ids are strings).
_label = label_by("id", "name", "app_id", ints="skip")
_each = functools.partial(each_item, label=_label)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _opt_epoch(item: Mapping[str, Any], key: str) -> datetime | None:
    """Slack's epoch seconds (an int, or a string in integration logs) -> aware UTC."""
    v = item.get(key)
    if v is None or v == "" or v == 0:
        return None
    if isinstance(v, bool):
        raise MalformedItem(f"{key} is a boolean, not epoch seconds")
    try:
        return datetime.fromtimestamp(float(v), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedItem(f"{key} is not epoch seconds") from None


# --- privilege -------------------------------------------------------------------------------


def scopes_privilege(scopes: Iterable[str]) -> Privilege:
    """Slack OAuth scopes -> privilege: ``admin``/``admin.*`` (and legacy ``client``) ADMIN;
    any ``:write`` (and the legacy ``bot``, ``incoming-webhook``) WRITE; else READ."""
    names = {s.strip().lower() for s in scopes}
    if any(n == "admin" or n.startswith(("admin.", "admin:")) or n == "client" for n in names):
        return Privilege.ADMIN
    if any(":write" in n for n in names) or names & _WRITE_LEGACY:
        return Privilege.WRITE
    return Privilege.READ


def is_sensitive_scope(name: str) -> bool:
    """Admin scopes, writes to users/channels/files, ``chat:write.customize`` (posting as anyone),
    message history and file reads."""
    return bool(_SENSITIVE_SCOPE.match(name.strip().lower()))


_ROLE_PRIVILEGE = {"primary_owner": Privilege.OWNER, "owner": Privilege.OWNER, "admin": Privilege.ADMIN}


def member_role(item: Mapping[str, Any]) -> str:
    if item.get("is_primary_owner") is True:
        return "primary_owner"
    if item.get("is_owner") is True:
        return "owner"
    if item.get("is_admin") is True:
        return "admin"
    if item.get("is_ultra_restricted") is True:
        return "single_channel_guest"
    if item.get("is_restricted") is True:
        return "multi_channel_guest"
    return "member"


# --- transforms (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallHistory:
    """What ``team.integrationLogs`` says about one app: who installed it, and its last change."""

    app_id: str
    app_name: str | None
    installer_id: str | None
    installer_name: str | None
    installed_at: datetime | None
    last_change: str
    last_change_at: datetime | None
    scopes: tuple[str, ...] = ()  # as of the last install or expansion

    @property
    def status(self) -> Status:
        if self.last_change == "removed":
            return Status.DELETED
        if self.last_change == "disabled":
            return Status.SUSPENDED
        return Status.ACTIVE


def transform_integration_logs(logs: Sequence[Any]) -> tuple[dict[str, InstallHistory], list[str]]:
    """Install/remove history per app id. Entries of legacy services (no ``app_id``) are left out."""
    skipped: list[str] = []

    def one(item: dict[str, Any]) -> tuple[datetime | None, dict[str, Any]] | None:
        if not item.get("app_id") and item.get("service_id"):
            return None  # a legacy custom integration, not an app
        req_str(item, "app_id")
        req_str(item, "change_type")
        return _opt_epoch(item, "date"), item

    per_app: dict[str, list[tuple[datetime | None, int, dict[str, Any]]]] = {}
    for order, entry in enumerate(_each(skipped, logs, "integration log entry", one)):
        if entry is not None:
            when, item = entry
            # Slack lists newest first: within one second, a later position is an older entry.
            per_app.setdefault(item["app_id"], []).append((when, -order, item))

    out: dict[str, InstallHistory] = {}
    for aid, rows in per_app.items():
        rows.sort(key=lambda r: (r[0] or datetime.min.replace(tzinfo=timezone.utc), r[1]))
        installer: tuple[datetime | None, dict[str, Any]] | None = None
        scopes: tuple[str, ...] = ()
        for when, _o, item in rows:
            scope_text = item.get("scope") if isinstance(item.get("scope"), str) else ""
            if item["change_type"] == "added":
                installer = (when, item)
            if item["change_type"] in ("added", "expanded") and scope_text:
                scopes = tuple(s for s in scope_text.split(",") if s)
        last_when, _o, last = rows[-1]
        name = next((r[2]["app_type"] for r in reversed(rows) if isinstance(r[2].get("app_type"), str) and r[2]["app_type"]), None)
        out[aid] = InstallHistory(
            app_id=aid,
            app_name=name,
            installer_id=_text(installer[1].get("user_id")) if installer else None,
            installer_name=_text(installer[1].get("user_name")) if installer else None,
            installed_at=installer[0] if installer else None,
            last_change=last["change_type"],
            last_change_at=last_when,
            scopes=scopes,
        )
    return out, skipped


def _installer_claim(src: str, history: InstallHistory | None) -> tuple[Ownership, ...]:
    if history is None or not history.installer_id:
        return ()
    return (Ownership(ref=user_key(src, history.installer_id), evidence=INSTALLER_EVIDENCE, confidence=0.8, role="installer"),)


def transform_users(
    src: str,
    team_id: str,
    members: Sequence[Any],
    *,
    team_name: str | None = None,
    team_url: str | None = None,
    installs: Mapping[str, InstallHistory] | None = None,
) -> Batch:
    """``users.list`` members -> the workspace, people and bot users (each with a grant on the workspace).

    Bot users carry the ownership of their app's installer (from ``installs``, the integration
    log), because nobody else answers for them. Slackbot is Slack's own and is left out.
    """
    inv = inventory_name(src, team_id, "users")
    wkey = workspace_key(src, team_id)
    installs = installs or {}
    batch = Batch(records=[Resource(key=wkey, source=src, inventory=inv, name=team_name or team_id, url=team_url,
                                    resource_type="workspace")])

    def one(item: dict[str, Any]) -> list[Record]:
        uid = req_str(item, "id")
        name = req_str(item, "name")
        if uid == "USLACKBOT":
            return []
        profile = opt_dict(item, "profile")
        deleted = opt_bool(item, "deleted", False)
        machine = bool(opt_bool(item, "is_bot", False) or opt_bool(item, "is_app_user", False))
        display = opt_str(item, "real_name") or opt_str(profile, "real_name") or name
        key = user_key(src, uid)
        status = Status.DELETED if deleted else Status.ACTIVE
        if machine:
            app_id = opt_str(profile, "api_app_id")
            history = installs.get(app_id) if app_id else None
            acc = Account(
                key=key, source=src, inventory=inv, name=name, account_type="bot", is_human=False, login=name,
                status=status, privilege=Privilege.READ, owners=_installer_claim(src, history),
                attributes={"id": uid, "bot_id": opt_str(profile, "bot_id"), "app_id": app_id, "display_name": display,
                            "is_app_user": item.get("is_app_user") is True,
                            "derived_from": [inventory_name(src, team_id, "integration_logs")] if history else []},
            )
            grant_level, role = Privilege.READ, "bot"
        else:
            role = member_role(item)
            grant_level = _ROLE_PRIVILEGE.get(role, Privilege.READ)
            acc = Account(
                key=key, source=src, inventory=inv, name=display, account_type="user", is_human=True, login=name,
                email=opt_str(profile, "email"), status=status, role=role, privilege=grant_level,
                mfa_enabled=opt_bool(item, "has_2fa"), third_party=role.endswith("_guest"),
                attributes={"id": uid, "title": opt_str(profile, "title"), "tz": item.get("tz") if isinstance(item.get("tz"), str) else None},
            )
        grant = Grant(key=grant_key(src, key, wkey), source=src, inventory=inv, name=f"{name} in {team_name or team_id} ({role})",
                      subject_key=key, resource_key=wkey, privilege=grant_level, scopes=(f"workspace:{role}",))
        return [acc, grant]

    for recs in _each(batch.skipped, members, "member", one):
        batch.records.extend(recs)
    return batch


def transform_bots(bots: Sequence[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """``bots.info`` answers -> the well-formed ones (each with ``id`` and ``app_id``)."""
    skipped: list[str] = []

    def one(item: dict[str, Any]) -> dict[str, Any]:
        req_str(item, "id")
        req_str(item, "app_id")
        opt_bool(item, "deleted")
        return item

    return list(_each(skipped, bots, "bot", one)), skipped


def transform_app_approvals(approved: Sequence[Any], restricted: Sequence[Any] = ()) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``admin.apps.approved.list`` / ``.restricted.list`` items -> per app id: the app, its scopes, the decision."""
    skipped: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    for decision, items in (("restricted", restricted), ("approved", approved)):

        def one(item: dict[str, Any], decision: str = decision) -> tuple[str, dict[str, Any]]:
            app = opt_dict(item, "app")
            aid = req_str(app, "id")
            scopes = []
            raw_scopes = item.get("scopes") or []
            if not isinstance(raw_scopes, list):
                raise MalformedItem("scopes is not a list")
            for s in raw_scopes:
                if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                    raise MalformedItem("scopes hold an entry without a name")
                scopes.append({"name": s["name"], "token_type": s.get("token_type") if isinstance(s.get("token_type"), str) else None,
                               "is_sensitive": s.get("is_sensitive") is True})
            resolved = opt_dict(item, "last_resolved_by")
            return aid, {
                "decision": decision, "name": opt_str(app, "name"), "is_internal": opt_bool(app, "is_internal"),
                "directory_approved": opt_bool(app, "is_app_directory_approved"), "scopes": scopes,
                "url": opt_str(app, "app_directory_url"), "date_updated": _opt_epoch(item, "date_updated"),
                "resolved_by": opt_str(resolved, "actor_id"),
            }

        for aid, info in _each(skipped, items, f"{decision} app", one):
            out[aid] = info  # an app on both lists is approved (the later list wins)
    return out, skipped


def transform_apps(
    src: str,
    team_id: str,
    *,
    approvals: Mapping[str, dict[str, Any]] | None = None,
    bots: Sequence[dict[str, Any]] | None = None,
    installs: Mapping[str, InstallHistory] | None = None,
) -> dict[str, Batch]:
    """One ``Account(account_type="app")`` (+ a grant on the workspace) per app any listing names.

    ``None`` for a listing means it was not read. Each app is filed under the first of
    ``approved_apps``, ``bots``, ``integration_logs`` that names it; the others it draws on are in
    ``attributes["derived_from"]``. Returns a Batch per inventory short name.
    """
    approvals = approvals or {}
    bots = bots or []
    installs = installs or {}
    wkey = workspace_key(src, team_id)
    bots_by_app: dict[str, list[dict[str, Any]]] = {}
    for b in bots:
        bots_by_app.setdefault(b["app_id"], []).append(b)
    out: dict[str, Batch] = {short: Batch() for short in ("approved_apps", "bots", "integration_logs")}

    for aid in sorted({*approvals, *bots_by_app, *installs}):
        approval, app_bots, history = approvals.get(aid), bots_by_app.get(aid, []), installs.get(aid)
        named_by = [short for short, known in (("approved_apps", approval), ("bots", app_bots), ("integration_logs", history)) if known]
        home = named_by[0]
        inv = inventory_name(src, team_id, home)
        if approval and approval["scopes"]:
            scopes = tuple(s["name"] for s in approval["scopes"])
            sensitive = sorted({s["name"] for s in approval["scopes"] if s["is_sensitive"] or is_sensitive_scope(s["name"])})
        else:
            scopes = history.scopes if history else ()
            sensitive = sorted({s for s in scopes if is_sensitive_scope(s)})
        name = (approval or {}).get("name") or (app_bots[0].get("name") if app_bots else None) or (history.app_name if history else None) or aid
        if history is not None and history.status != Status.ACTIVE:
            status = history.status
        elif approval and approval["decision"] == "restricted":
            status = Status.SUSPENDED  # the org forbids it: it cannot be installed or used
        elif app_bots and all(b.get("deleted") is True for b in app_bots) and not approval:
            status = Status.DELETED
        else:
            status = Status.ACTIVE
        level = scopes_privilege(scopes)
        key = app_key(src, aid)
        is_internal = (approval or {}).get("is_internal")
        acc = Account(
            key=key, source=src, inventory=inv, name=name, url=(approval or {}).get("url"), account_type="app", is_human=False,
            login=aid, status=status, created_at=history.installed_at if history else None, privilege=level, scopes=scopes,
            third_party=is_internal is False, owners=_installer_claim(src, history),
            attributes={
                "app_id": aid,
                "approval": approval["decision"] if approval else None,
                "is_internal": is_internal,
                "is_app_directory_approved": (approval or {}).get("directory_approved"),
                "scope_token_types": {s["name"]: s["token_type"] for s in approval["scopes"]} if approval else {},
                "sensitive_scopes": sensitive,
                "bot_ids": sorted(b["id"] for b in app_bots),
                "bot_user_ids": sorted(b["user_id"] for b in app_bots if isinstance(b.get("user_id"), str)),
                "installed_by": history.installer_name if history else None,
                "last_change": history.last_change if history else None,
                "last_change_at": history.last_change_at.isoformat() if history and history.last_change_at else None,
                "approval_updated_at": approval["date_updated"].isoformat() if approval and approval["date_updated"] else None,
                "derived_from": [inventory_name(src, team_id, s) for s in named_by[1:]],
            },
        )
        grant = Grant(key=grant_key(src, key, wkey), source=src, inventory=inv, name=f"app {name} in {team_id}",
                      subject_key=key, resource_key=wkey, privilege=level, scopes=scopes)
        out[home].records.extend([acc, grant])
    return out


# --- clients ----------------------------------------------------------------------------------


def web_client(source: SlackSource, token: str) -> WebClient:
    """A ``WebClient`` that waits out 429s (``Retry-After``) up to ``max_retries`` times and retries a 5xx once."""
    client = WebClient(token=token, base_url=source.base_url, timeout=source.timeout, user_agent_prefix="nhiscan")
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=source.max_retries))
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=min(1, source.max_retries)))
    return client


# --- I/O (slack_sdk) ----------------------------------------------------------------------------


def _data(resp: Any) -> dict[str, Any]:
    data = getattr(resp, "data", None)
    if not isinstance(data, dict):
        raise MalformedResponse("the response was not a JSON object")
    return data


def _cursor_pages(call: Callable[..., Any], key: str, **kwargs: Any) -> list[Any]:
    """Every page of a cursor-paginated method (``limit``, ``response_metadata.next_cursor``)."""
    items: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        data = _data(call(cursor=cursor, limit=PAGE_LIMIT, **kwargs))
        page = data.get(key)
        if not isinstance(page, list):
            raise MalformedResponse(f"the response has no {key} list")
        items.extend(page)
        meta = data.get("response_metadata")
        cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
        if not cursor:
            return items
        if not isinstance(cursor, str) or cursor in seen:
            raise MalformedResponse("pagination returned a cursor it had already returned")
        seen.add(cursor)


def get_auth(client: WebClient) -> dict[str, Any]:
    """``auth.test``: who the token is (team, user, bot)."""
    data = _data(client.auth_test())
    if not isinstance(data.get("team_id"), str):
        raise MalformedResponse("auth.test returned no team_id")
    return data


def get_team(client: WebClient, team_id: str) -> dict[str, Any] | None:
    """``team.info`` (team:read); None when the token may not read it (the name is then auth.test's)."""
    try:
        team = _data(client.team_info(team=team_id)).get("team")
    except Exception as err:  # noqa: BLE001 - only the display name depends on it
        code = _error_code(err) if isinstance(err, SlackApiError) else type(err).__name__
        log.info("slack team.info not read (%s); using auth.test's team name", code)
        return None
    return team if isinstance(team, dict) else None


def get_users(client: WebClient, team_id: str | None) -> list[Any]:
    """``users.list``, every page. ``team_id`` is needed for org-level (Enterprise Grid) tokens."""
    kwargs = {"team_id": team_id} if team_id else {}
    return _cursor_pages(client.users_list, "members", **kwargs)


def get_bots(client: WebClient, bot_ids: Iterable[str]) -> tuple[list[Any], list[str]]:
    """``bots.info`` per bot id: the answers, and the ids Slack no longer knows (``bot_not_found``)."""
    found, gone = [], []
    for bot_id in bot_ids:
        try:
            bot = _data(client.bots_info(bot=bot_id)).get("bot")
        except SlackApiError as err:
            if _error_code(err) == "bot_not_found":
                gone.append(bot_id)
                continue
            raise
        found.append(bot)
    return found, gone


def get_app_approvals(client: WebClient, *, team_id: str, enterprise_id: str | None) -> tuple[list[Any], list[Any]]:
    """``admin.apps.approved.list`` and ``admin.apps.restricted.list`` (an org admin's user token)."""
    scope = {"enterprise_id": enterprise_id} if enterprise_id else {"team_id": team_id}
    approved = _cursor_pages(client.admin_apps_approved_list, "approved_apps", **scope)
    restricted = _cursor_pages(client.admin_apps_restricted_list, "restricted_apps", **scope)
    return approved, restricted


def get_integration_logs(client: WebClient, team_id: str) -> list[Any]:
    """``team.integrationLogs``, every page (``page``/``count`` paging, newest first)."""
    logs: list[Any] = []
    page = 1
    while True:
        data = _data(client.team_integrationLogs(count=LOG_PAGE_COUNT, page=page, team_id=team_id))
        items = data.get("logs")
        if not isinstance(items, list):
            raise MalformedResponse("the response has no logs list")
        logs.extend(items)
        paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
        pages = paging.get("pages")
        if not isinstance(pages, int) or isinstance(pages, bool) or page >= pages or not items or page >= 1000:
            return logs
        page += 1


# --- errors -> coverage reasons ------------------------------------------------------------------

_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_SCOPE_LIST = re.compile(r"^[a-z0-9_.:,\-]{1,400}$")


def _error_code(err: SlackApiError) -> str | None:
    """Slack's error code, if the body was Slack's JSON (slack_sdk puts other text in ``error``)."""
    resp = getattr(err, "response", None)
    try:
        code = resp.get("error") if resp is not None else None
    except Exception:  # noqa: BLE001 - a non-dict body
        return None
    return code if isinstance(code, str) and _CODE.match(code) else None


def _field(err: SlackApiError, key: str) -> str | None:
    try:
        value = err.response.get(key)
    except Exception:  # noqa: BLE001
        return None
    return value if isinstance(value, str) and _SCOPE_LIST.match(value) else None


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A reason a security team can act on: the HTTP status, Slack's error code, the access needed.

    Built from the status, the error code and the scope names only — never from ``str(err)``,
    which quotes the whole response.
    """
    if isinstance(err, SlackApiError):
        status = getattr(err.response, "status_code", None)
        code = _error_code(err)
        if status == 429:
            return "HTTP 429: rate limited (ratelimited) and not recovered within the retry budget"
        if code is None:
            if status == 200:
                return "malformed response: the body is not valid JSON"
            return f"HTTP {status}: unexpected response (not Slack's JSON)"
        if status is not None and status >= 500:
            return f"HTTP {status}: server error ({code})"
        if code in _AUTH_ERRORS:
            return f"credentials rejected ({code}): the token is wrong, revoked or its user deactivated"
        if code == "missing_scope":
            needed, provided = _field(err, "needed"), _field(err, "provided")
            lacks = f"the token lacks the {needed} scope" if needed else "the token lacks a scope"
            has = f" (it has: {provided})" if provided else ""
            return f"missing_scope: {lacks}{has}; needs {need}"
        if code == "not_allowed_token_type":
            return f"not_allowed_token_type: this kind of token may not call the method; needs {need}"
        return f"Slack error {code}; needs {need}"
    if isinstance(err, json.JSONDecodeError):
        return "malformed response: the body is not valid JSON"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, (TimeoutError, socket.timeout)) or (
        isinstance(err, urllib.error.URLError) and isinstance(err.reason, (TimeoutError, socket.timeout))
    ):
        after = f" after {timeout:g}s" if timeout else ""
        return f"request timed out{after}"
    if isinstance(err, (urllib.error.URLError, ConnectionError)):
        return "could not connect to the Slack API"
    if isinstance(err, ConfigError):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


def _explain_admin_refusal(err: BaseException) -> str | None:
    """``admin.apps.*`` refused because the token is not an org admin's: say what token it takes."""
    if not isinstance(err, SlackApiError) or getattr(err.response, "status_code", None) != 200:
        return None
    code = _error_code(err)
    if code not in _NOT_AN_ORG_ADMIN:
        return None
    needed = _field(err, "needed") if code == "missing_scope" else None
    return f"{APPROVED_APPS_NEED_ORG_ADMIN} (Slack error: {code}{f', needed {needed}' if needed else ''})"


# --- collect ------------------------------------------------------------------------------------------


def collect(
    source: SlackSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Read every configured inventory of one Slack source; never raises for an API failure.

    ``hmac_key`` is unused: Slack's API returns no secret values to hash. Every inventory
    appears in ``coverage``, read with its record count or a gap with the reason.
    """
    run = _Collector(source, progress)
    run.run(config)
    return run.result


class _Collector(CollectorRun):
    vendor = "slack"
    merge = "all"  # an app is built once from every listing that names it; nothing to merge

    def __init__(self, source: SlackSource, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: SlackSource = source
        self.wanted = self.requested(INVENTORIES)

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    def _fetch(self, what: str, need: str, fn: Callable[[], Any],
               explain: Callable[[BaseException], str | None] | None = None) -> Fetched[Any]:
        """One API call, its failure kept as a reason: each inventory is reported after all are fetched."""

        def explained(err: BaseException) -> str | None:
            log.debug("slack %s: %s failed (%s)", self.src, what, type(err).__name__)
            return explain(err) if explain else None

        return self.attempt(need, fn, explain=explained)

    # -- the run

    def run(self, config: Config) -> None:
        source = self.source
        team_guess = source.team_id or "*"
        try:
            main_token = read_secret(config, env=source.token_env, file=source.token_file, what=f"sources.slack[{source.name}]")
        except ConfigError as err:
            for short in self.wanted:
                self.gap(inventory_name(self.src, team_guess, short), f"credentials not available: {err}")
            return
        main = web_client(source, main_token)
        admin, admin_problem = main, None
        if source.admin_token_env or source.admin_token_file:
            try:
                admin = web_client(source, read_secret(config, env=source.admin_token_env, file=source.admin_token_file,
                                                       what=f"sources.slack[{source.name}] admin token"))
            except ConfigError as err:
                admin_problem = f"admin token not available: {err}"

        auth = self._fetch("auth.test", "a valid bot or user token", lambda: get_auth(main))
        if not auth.ok:
            for short in self.wanted:
                self.gap(inventory_name(self.src, team_guess, short), f"auth.test failed: {auth.error}")
            return
        team_id = source.team_id or auth.data["team_id"]
        team = get_team(main, team_id) or {}
        team_name = _text(team.get("name")) or _text(auth.data.get("team")) or team_id
        team_url = _text(auth.data.get("url"))
        self._collect_team(team_id, team_name, team_url, main, admin, admin_problem)

    def _collect_team(self, team_id: str, team_name: str, team_url: str | None, main: WebClient, admin: WebClient,
                      admin_problem: str | None) -> None:
        src, wanted = self.src, self.wanted
        inv = lambda short: inventory_name(src, team_id, short)  # noqa: E731

        # Fetch: each listing once, with the token that may read it.
        members = Fetched(error="not requested")
        if "users" in wanted or "bots" in wanted:
            members = self._fetch("users.list", _NEEDS["users"], lambda: get_users(main, self.source.team_id))
        logs = Fetched(error="not requested")
        if "integration_logs" in wanted:
            logs = Fetched(error=admin_problem) if admin_problem else \
                self._fetch("team.integrationLogs", _NEEDS["integration_logs"], lambda: get_integration_logs(admin, team_id))
        approvals = Fetched(error="not requested")
        if "approved_apps" in wanted:
            approvals = Fetched(error=admin_problem) if admin_problem else self._fetch(
                "admin.apps", _NEEDS["approved_apps"],
                lambda: get_app_approvals(admin, team_id=team_id, enterprise_id=self.source.enterprise_id),
                explain=_explain_admin_refusal)
        bots = Fetched(error="not requested")
        if "bots" in wanted:
            if members.ok:
                bot_ids = sorted({m["profile"]["bot_id"] for m in members.data if isinstance(m, dict)
                                  and isinstance(m.get("profile"), dict) and isinstance(m["profile"].get("bot_id"), str)})
                bots = self._fetch("bots.info", _NEEDS["bots"], lambda: get_bots(main, bot_ids))
            else:
                bots = Fetched(error=f"the member list could not be read, so no bot could be looked up ({members.error})")

        # Transform (pure), then report each inventory.
        installs: dict[str, InstallHistory] | None = None
        log_skipped: list[str] = []
        if logs.ok:
            installs, log_skipped = transform_integration_logs(logs.data)
        bot_items: list[dict[str, Any]] | None = None
        bot_skipped: list[str] = []
        if bots.ok:
            found, gone = bots.data
            bot_items, bot_skipped = transform_bots(found)
            for bot_id in gone:
                log.info("slack %s: bot %s is listed by a member but bots.info does not know it", inv("bots"), bot_id)
        approval_map: dict[str, dict[str, Any]] | None = None
        approval_skipped: list[str] = []
        if approvals.ok:
            approval_map, approval_skipped = transform_app_approvals(*approvals.data)
        apps = transform_apps(src, team_id, approvals=approval_map, bots=bot_items, installs=installs)

        for short in wanted:
            if short == "users":
                if members.ok:
                    batch = transform_users(src, team_id, members.data, team_name=team_name, team_url=team_url, installs=installs)
                    self.ok(inv(short), batch)
                else:
                    self.gap(inv(short), members.error or "not read")
            elif short == "bots":
                if bots.ok:
                    self.ok(inv(short), Batch(records=apps["bots"].records, skipped=bot_skipped))
                else:
                    self.gap(inv(short), bots.error or "not read")
            elif short == "approved_apps":
                if approvals.ok:
                    self.ok(inv(short), Batch(records=apps["approved_apps"].records, skipped=approval_skipped))
                else:
                    self.gap(inv(short), approvals.error or "not read")
            elif short == "integration_logs":
                if logs.ok:
                    self.ok(inv(short), Batch(records=apps["integration_logs"].records, skipped=log_skipped))
                else:
                    self.gap(inv(short), logs.error or "not read")
