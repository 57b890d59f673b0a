"""A stateful, wire-compatible emulator of the Okta management API (the parts nhiscan reads).

It serves ``/api/v1`` and ``/oauth2/v1`` on its own port (``URL_SUFFIX = ""``: the org URL is
the server root, as ``https://acme.okta.com`` is). What it models, and why:

* **SSWS auth.** ``Authorization: SSWS <api token>``; the token acts as the user who created
  it, with that user's admin roles (Okta's rule). Unknown tokens get 401 ``E0000011``; a token
  whose user holds no role that may read the org gets 403 ``E0000006``.
* **Cursor pagination** with ``limit`` and ``after`` and ``Link: <...>; rel="next"`` headers,
  one ``Link`` header per relation as Okta sends them, built from the request's own host.
* **Rate limits** per token and endpoint, per minute: ``X-Rate-Limit-Limit``, ``-Remaining``
  and ``-Reset`` (epoch seconds) on every response, and 429 ``E0000047`` when a bucket is spent.
  Okta sends no ``Retry-After``: clients wait until ``X-Rate-Limit-Reset``.
* **Okta error bodies**: ``errorCode``, ``errorSummary``, ``errorLink``, ``errorId``, ``errorCauses``.
* **Fault injection** per API token (429, 500, 403, slow responses, truncated JSON), chosen by
  the token a client uses, so one estate can serve a healthy and a failing scanner.
* **Never a secret on the wire**: client secrets are listed with ``secret_hash`` and a masked
  ``client_secret`` (``***`` and the last four characters), as Okta lists them.

The estate section is ``okta:`` (see ``sandbox/README.md``). This module deliberately has no
``from __future__ import annotations``: the estate loader resolves the dataclass annotations
below as real objects.
"""

import base64
import hashlib
import json
import re
import secrets as _secrets
import string
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal, Optional
from urllib.parse import urlencode

from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .emulator import Emulator, RequestFault, half, link, request_entry, request_fault, route_map
from .estate import Estate, Timestamp, _build

URL_SUFFIX = ""

UserStatus = Literal["STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT", "SUSPENDED", "DEPROVISIONED"]
RoleType = Literal[
    "SUPER_ADMIN", "ORG_ADMIN", "APP_ADMIN", "USER_ADMIN", "HELP_DESK_ADMIN", "READ_ONLY_ADMIN", "MOBILE_ADMIN",
    "API_ACCESS_MANAGEMENT_ADMIN", "REPORT_ADMIN", "GROUP_MEMBERSHIP_ADMIN", "ACCESS_CERTIFICATIONS_ADMIN",
    "ACCESS_REQUESTS_ADMIN",
]
OktaFaultKind = Literal["rate_limit", "server_error", "forbidden", "timeout", "malformed_json"]

ROLE_LABELS = {
    "SUPER_ADMIN": "Super Administrator",
    "ORG_ADMIN": "Organizational Administrator",
    "APP_ADMIN": "Application Administrator",
    "USER_ADMIN": "Group Administrator",
    "HELP_DESK_ADMIN": "Help Desk Administrator",
    "READ_ONLY_ADMIN": "Read Only Administrator",
    "MOBILE_ADMIN": "Mobile Administrator",
    "API_ACCESS_MANAGEMENT_ADMIN": "API Access Management Administrator",
    "REPORT_ADMIN": "Report Administrator",
    "GROUP_MEMBERSHIP_ADMIN": "Group Membership Administrator",
    "ACCESS_CERTIFICATIONS_ADMIN": "Access Certifications Administrator",
    "ACCESS_REQUESTS_ADMIN": "Access Requests Administrator",
}
# Roles whose holders (and so their API tokens) may read every listing the emulator serves.
READER_ROLES = frozenset({"SUPER_ADMIN", "ORG_ADMIN", "READ_ONLY_ADMIN"})


# --------------------------------------------------------------------------------------------
# Estate model


@dataclass
class OktaFault(RequestFault):
    """One injected failure for requests made with one API token."""

    fault: OktaFaultKind


@dataclass
class OktaUser:
    login: str
    email: Optional[str] = None
    id: Optional[str] = None
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    status: UserStatus = "ACTIVE"
    created: Optional[Timestamp] = None
    status_changed: Optional[Timestamp] = None
    last_login: Optional[Timestamp] = None
    manager: Optional[str] = None  # login or email of another user -> profile.managerId
    roles: list[RoleType] = field(default_factory=list)


@dataclass
class OktaSecret:
    id: Optional[str] = None
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    created: Optional[Timestamp] = None
    last_updated: Optional[Timestamp] = None
    secret: Optional[str] = None  # the value: never served; only its hash and a masked tail are


@dataclass
class OktaJwk:
    kid: Optional[str] = None
    id: Optional[str] = None
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    created: Optional[Timestamp] = None
    last_updated: Optional[Timestamp] = None


@dataclass
class OktaGrant:
    scope: str
    id: Optional[str] = None
    status: Literal["ACTIVE", "REVOKED"] = "ACTIVE"
    created: Optional[Timestamp] = None
    created_by: Optional[str] = None  # login or email of the admin who granted it


@dataclass
class OktaRole:
    type: RoleType
    id: Optional[str] = None
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    created: Optional[Timestamp] = None


@dataclass
class OktaApp:
    label: str
    id: Optional[str] = None
    name: Optional[str] = None
    client_id: Optional[str] = None
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    sign_on_mode: Literal["OPENID_CONNECT", "SAML_2_0", "BOOKMARK", "AUTO_LOGIN", "BROWSER_PLUGIN"] = "OPENID_CONNECT"
    application_type: Literal["service", "web", "native", "browser"] = "service"
    grant_types: Optional[list[str]] = None
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"
    ] = "client_secret_basic"
    created: Optional[Timestamp] = None
    last_updated: Optional[Timestamp] = None
    secrets: list[OktaSecret] = field(default_factory=list)
    jwks: list[OktaJwk] = field(default_factory=list)
    grants: list[OktaGrant] = field(default_factory=list)
    roles: list[OktaRole] = field(default_factory=list)


@dataclass
class OktaApiToken:
    name: str
    user: str  # login or email of the creator
    token: Optional[str] = None  # the SSWS value; only tokens with one can call the emulator
    id: Optional[str] = None
    client_name: str = "Okta API"
    created: Optional[Timestamp] = None
    last_used: Optional[Timestamp] = None
    token_window: str = "P30D"
    network: Literal["ANYWHERE", "ZONE"] = "ANYWHERE"
    faults: list[OktaFault] = field(default_factory=list)


@dataclass
class OktaEstate:
    rate_limit: int = 600  # requests per minute, per token and endpoint
    max_limit: int = 200  # the largest page served (Okta's is 200); lower it to exercise paging
    users: list[OktaUser] = field(default_factory=list)
    apps: list[OktaApp] = field(default_factory=list)
    api_tokens: list[OktaApiToken] = field(default_factory=list)

    def user(self, ref: Optional[str]) -> Optional[OktaUser]:
        """A user by id, login or email (case-insensitive)."""
        if not ref:
            return None
        low = ref.lower()
        for u in self.users:
            if low in (str(u.id).lower(), u.login.lower(), (u.email or "").lower()):
                return u
        return None

    def app(self, app_id: str) -> Optional[OktaApp]:
        return next((a for a in self.apps if a.id == app_id), None)

    def app_by_client_id(self, client_id: str) -> Optional[OktaApp]:
        return next((a for a in self.apps if a.client_id == client_id), None)

    def token(self, value: str) -> Optional[OktaApiToken]:
        return next((t for t in self.api_tokens if t.token and _secrets.compare_digest(t.token, value)), None)


_BASE62 = string.digits + string.ascii_letters


def okta_id(prefix: str, *parts: Any) -> str:
    """An Okta-style 20-character id (``00u...``, ``0oa...``), derived from where the object lives."""
    digest = hashlib.sha256("/".join(str(p).lower() for p in (prefix, *parts)).encode()).digest()
    n = int.from_bytes(digest, "big")
    body = ""
    while len(body) < 20 - len(prefix):
        n, r = divmod(n, 62)
        body += _BASE62[r]
    return prefix + body


_WINDOW = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def parse_window(text: str) -> Optional[timedelta]:
    """An ISO 8601 duration of days, hours and minutes (``P30D``, ``PT12H``); None if not one."""
    m = _WINDOW.match(text or "")
    if not m or not any(m.groups()):
        return None
    d, h, mi = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi)


def parse_estate(raw: Any, ctx: Any, path: str) -> OktaEstate:
    """Validate the ``okta:`` section, fill in ids and times, check references."""
    state: OktaEstate = _build(OktaEstate, raw, path, ctx)
    now = ctx.now
    for key in ("rate_limit", "max_limit"):
        if getattr(state, key) < 1:
            raise ctx.error(f"{path}.{key}", "expected a positive integer")
    seen: dict[str, str] = {}

    def unique(value: str, where: str) -> None:
        if value.lower() in seen:
            raise ctx.error(where, f"duplicate {value!r} (also at {seen[value.lower()]})")
        seen[value.lower()] = where

    for i, u in enumerate(state.users):
        where = f"{path}.users[{i}]"
        u.email = u.email or u.login
        u.id = u.id or okta_id("00u", u.login)
        unique(u.login, f"{where}.login")
        unique(u.id, f"{where}.id")
        u.created = u.created or now
        u.status_changed = u.status_changed or u.created
    for i, u in enumerate(state.users):
        if u.manager and state.user(u.manager) is None:
            raise ctx.error(f"{path}.users[{i}].manager", f"no user {u.manager!r} in okta.users")
    for i, a in enumerate(state.apps):
        where = f"{path}.apps[{i}]"
        a.id = a.id or okta_id("0oa", a.label)
        unique(a.id, f"{where}.id")
        a.client_id = a.client_id or a.id
        a.name = a.name or ("oidc_client" if a.sign_on_mode == "OPENID_CONNECT" else a.label.lower().replace(" ", "_"))
        a.created = a.created or now
        a.last_updated = a.last_updated or a.created
        if a.grant_types is None:
            a.grant_types = ["client_credentials"] if a.application_type == "service" else ["authorization_code"]
        if a.sign_on_mode != "OPENID_CONNECT" and (a.secrets or a.jwks or a.grants or a.roles):
            raise ctx.error(where, "only OPENID_CONNECT apps have client credentials, scope grants and client roles")
        for j, s in enumerate(a.secrets):
            s.id = s.id or okta_id("ocs", a.id, j)
            s.created = s.created or a.created
            s.last_updated = s.last_updated or s.created
        for j, k in enumerate(a.jwks):
            k.id = k.id or okta_id("pks", a.id, j)
            k.kid = k.kid or k.id
            k.created = k.created or a.created
            k.last_updated = k.last_updated or k.created
        for j, g in enumerate(a.grants):
            if not g.scope.startswith("okta."):
                raise ctx.error(f"{where}.grants[{j}].scope", f"expected an Okta API scope such as okta.users.read, got {g.scope!r}")
            if g.created_by and state.user(g.created_by) is None:
                raise ctx.error(f"{where}.grants[{j}].created_by", f"no user {g.created_by!r} in okta.users")
            g.id = g.id or okta_id("oag", a.id, g.scope)
            g.created = g.created or a.created
        for j, r in enumerate(a.roles):
            r.id = r.id or okta_id("irb", a.id, r.type)
            r.created = r.created or a.created
    for i, t in enumerate(state.api_tokens):
        where = f"{path}.api_tokens[{i}]"
        if state.user(t.user) is None:
            raise ctx.error(f"{where}.user", f"no user {t.user!r} in okta.users")
        if parse_window(t.token_window) is None:
            raise ctx.error(f"{where}.token_window", f"expected an ISO 8601 duration such as P30D, got {t.token_window!r}")
        t.id = t.id or okta_id("00T", t.name, t.user)
        unique(t.id, f"{where}.id")
        if t.token:
            unique(t.token, f"{where}.token")
        t.created = t.created or now
        t.last_used = t.last_used or t.created
        for j, f in enumerate(t.faults):
            if not f.path.startswith("/"):
                raise ctx.error(f"{where}.faults[{j}].path", f"expected a path starting with '/', got {f.path!r}")
            f.method = f.method.upper() if f.method else None
    return state


def build(estate: Estate, *, reload: Callable[[], Estate] | None = None, **_options: Any) -> "OktaEmulator":
    return OktaEmulator(estate, reload=reload)


# --------------------------------------------------------------------------------------------
# The WSGI app


def fmt(value: Optional[datetime]) -> Optional[str]:
    """Okta's timestamp format: UTC with milliseconds, ``2026-11-01T00:00:00.000Z``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class OktaError(Exception):
    """Raised by handlers; becomes an Okta-shaped error body."""

    def __init__(self, status: int, code: str, summary: str, headers: Optional[dict[str, str]] = None):
        super().__init__(summary)
        self.status, self.code, self.summary, self.headers = status, code, summary, headers or {}


@dataclass
class _Call:
    request: Request
    base: str  # org URL, e.g. http://127.0.0.1:5001
    path: str
    token: Optional[OktaApiToken] = None
    endpoint: Optional[str] = None


class OktaEmulator(Emulator[OktaEstate]):
    """The Okta WSGI app. ``state`` is the live ``OktaEstate``; mutate it between calls."""

    vendor = "okta"
    url_suffix = URL_SUFFIX

    def __init__(self, estate: Estate, *, reload: Callable[[], Estate] | None = None):
        super().__init__(estate, reload=reload)
        self._buckets: dict[tuple[str, str], list[int]] = {}  # (token id, endpoint) -> [reset epoch, used]
        self.url_map = route_map(
            [
                Rule("/api/v1/users", endpoint="list_users"),
                Rule("/api/v1/users/<user_id>", endpoint="get_user"),
                Rule("/api/v1/users/<user_id>/roles", endpoint="list_user_roles"),
                Rule("/api/v1/apps", endpoint="list_apps"),
                Rule("/api/v1/apps/<app_id>", endpoint="get_app"),
                Rule("/api/v1/apps/<app_id>/credentials/secrets", endpoint="list_client_secrets"),
                Rule("/api/v1/apps/<app_id>/credentials/jwks", endpoint="list_jwks"),
                Rule("/api/v1/apps/<app_id>/grants", endpoint="list_scope_grants"),
                Rule("/oauth2/v1/clients/<client_id>/roles", endpoint="list_client_roles"),
                Rule("/api/v1/api-tokens", endpoint="list_api_tokens"),
            ]
        )

    # -- public Python API (the rest is ``Emulator``'s) ---------------------------------------

    @property
    def state(self) -> OktaEstate:
        return self._section(OktaEstate)

    def set_estate(self, estate: Estate) -> None:
        with self._lock:
            super().set_estate(estate)
            self._buckets.clear()

    # -- serving a call -------------------------------------------------------------------------

    def _crash_response(self) -> Response:
        return self._error(OktaError(500, "E0000009", "Internal Server Error"))

    def _begin(self, request: Request, path: str) -> _Call:
        return _Call(request=request, base=request.host_url.rstrip("/"), path=path)

    def _serve(self, call: _Call) -> tuple[Response, Optional[str]]:
        try:
            endpoint, args = self.url_map.bind("okta").match(call.path, method=call.request.method)
        except (NotFound, MethodNotAllowed):
            endpoint, args = None, {}
        call.endpoint = endpoint or "unknown"
        try:
            call.token = self._authenticate(call.request)
        except OktaError as err:
            return self._error(err), None
        rate, exceeded = self._count(call)
        if exceeded:
            err = OktaError(429, "E0000047", "API call exceeded rate limit due to too many requests.")
            return self._error(err, rate), None
        fault = self._pick_fault(call)
        if fault is not None and fault.fault not in ("timeout", "malformed_json"):
            return self._fault_response(fault, rate), fault.fault
        self._stall(fault)
        if endpoint is None:
            return self._error(OktaError(404, "E0000007", f"Not found: Resource not found: {call.path} (Resource)"), rate), None
        try:
            self._authorize(call)
            with self._lock:
                body, links = getattr(self, "h_" + endpoint)(call, **args)
        except OktaError as err:
            return self._error(err, rate), None
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = Headers(self._headers(rate))
        for value in links:
            headers.add("Link", value)
        if fault is not None and fault.fault == "malformed_json":
            return Response(half(payload), 200, headers, content_type="application/json"), "malformed_json"
        return Response(payload, 200, headers, content_type="application/json"), None

    # -- auth, limits, faults -------------------------------------------------------------------

    def _authenticate(self, request: Request) -> OktaApiToken:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.strip().partition(" ")
        if not header or scheme != "SSWS" or not value.strip():
            raise OktaError(401, "E0000005", "Invalid session")
        with self._lock:
            token = self.state.token(value.strip())
            user = self.state.user(token.user) if token else None
        if token is None or user is None or user.status != "ACTIVE":
            # Okta deactivates the tokens of a deactivated user.
            raise OktaError(401, "E0000011", "Invalid token provided")
        return token

    def _authorize(self, call: _Call) -> None:
        user = self.state.user(call.token.user) if call.token else None
        if user is None or not READER_ROLES & set(user.roles):
            raise OktaError(403, "E0000006", "You do not have permission to perform the requested action")

    def _count(self, call: _Call) -> tuple[dict[str, str], bool]:
        limit = self.state.rate_limit
        key = (call.token.id if call.token else "-", call.endpoint or "unknown")
        now = int(time.time())
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket[0] <= now:
                bucket = self._buckets[key] = [now + 60, 0]
            bucket[1] += 1
            remaining = max(0, limit - bucket[1])
            rate = {"X-Rate-Limit-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining),
                    "X-Rate-Limit-Reset": str(bucket[0])}
            return rate, bucket[1] > limit

    def _pick_fault(self, call: _Call) -> Optional[OktaFault]:
        token = call.token
        if token is None:
            return None
        return self._select_fault(str(token.id), token.faults, request_fault(call.request.method, call.path))

    def _fault_response(self, fault: OktaFault, rate: dict[str, str]) -> Response:
        if fault.fault == "rate_limit":
            rate = {**rate, "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(time.time()) + fault.retry_after)}
            return self._error(OktaError(429, "E0000047", "API call exceeded rate limit due to too many requests."), rate)
        if fault.fault == "forbidden":
            return self._error(OktaError(403, "E0000006", "You do not have permission to perform the requested action"), rate)
        return self._error(OktaError(500, "E0000009", "Internal Server Error"), rate)

    def _headers(self, rate: Optional[dict[str, str]] = None) -> dict[str, str]:
        return {"X-Okta-Request-Id": _secrets.token_urlsafe(18), **(rate or {})}

    def _error(self, err: OktaError, rate: Optional[dict[str, str]] = None) -> Response:
        body = {"errorCode": err.code, "errorSummary": err.summary, "errorLink": err.code,
                "errorId": "oae" + _secrets.token_urlsafe(16)[:22], "errorCauses": []}
        headers = {**self._headers(rate), **err.headers}
        return Response(json.dumps(body), err.status, headers, content_type="application/json")

    # -- request log ---------------------------------------------------------------------------

    def _log_request(self, call: _Call, status: int, fault: Optional[str], elapsed: float) -> None:
        header = call.request.headers.get("Authorization", "")
        self._record(request_entry(call.request, call.path, header, status, fault))

    # -- pagination -------------------------------------------------------------------------------

    def _page(self, call: _Call, items: list[dict[str, Any]], default: int) -> tuple[list, list[str]]:
        """Okta cursor paging: ``after`` is the id of the last item of the previous page."""
        args = call.request.args
        maximum = self.state.max_limit
        try:
            limit = int(args.get("limit", default))
        except ValueError:
            raise OktaError(400, "E0000001", "Api validation failed: limit") from None
        limit = min(max(limit, 1), maximum)
        start = 0
        after = args.get("after")
        if after:
            ids = [i["id"] for i in items]
            start = ids.index(after) + 1 if after in ids else len(items)
        page = items[start:start + limit]
        url = call.base + call.path
        links = [link(f'{url}?{urlencode({"limit": limit})}', "self")]
        if start + limit < len(items) and page:
            links.append(link(f'{url}?{urlencode({"after": page[-1]["id"], "limit": limit})}', "next"))
        return page, links

    # -- handlers ---------------------------------------------------------------------------------

    def _user_json(self, call: _Call, u: OktaUser) -> dict[str, Any]:
        manager = self.state.user(u.manager)
        profile: dict[str, Any] = {
            "firstName": u.first_name, "lastName": u.last_name, "mobilePhone": None, "secondEmail": None,
            "login": u.login, "email": u.email,
        }
        if manager is not None:
            profile["managerId"] = manager.id
            profile["manager"] = " ".join(p for p in (manager.first_name, manager.last_name) if p) or manager.login
        return {
            "id": u.id, "status": u.status, "created": fmt(u.created),
            "activated": fmt(u.created) if u.status not in ("STAGED", "PROVISIONED") else None,
            "statusChanged": fmt(u.status_changed), "lastLogin": fmt(u.last_login), "lastUpdated": fmt(u.status_changed),
            "passwordChanged": fmt(u.created), "type": {"id": okta_id("oty", "default")}, "profile": profile,
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{call.base}/api/v1/users/{u.id}"}},
        }

    def h_list_users(self, call: _Call) -> tuple[Any, list[str]]:
        return self._page(call, [self._user_json(call, u) for u in self.state.users], default=200)

    def h_get_user(self, call: _Call, user_id: str) -> tuple[Any, list[str]]:
        u = self.state.user(user_id)
        if u is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        return self._user_json(call, u), []

    def _role_json(self, call: _Call, rid: str, rtype: str, status: str, created: datetime, assignment: str) -> dict[str, Any]:
        return {"id": rid, "label": ROLE_LABELS.get(rtype, rtype), "type": rtype, "status": status,
                "created": fmt(created), "lastUpdated": fmt(created), "assignmentType": assignment,
                "_links": {"assignee": {"href": call.base + call.path.rsplit("/roles", 1)[0]}}}

    def h_list_user_roles(self, call: _Call, user_id: str) -> tuple[Any, list[str]]:
        u = self.state.user(user_id)
        if u is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        return [self._role_json(call, okta_id("ra", u.id, r), r, "ACTIVE", u.created, "USER") for r in u.roles], []

    def _app_json(self, call: _Call, a: OktaApp) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": a.id, "name": a.name, "label": a.label, "status": a.status,
            "created": fmt(a.created), "lastUpdated": fmt(a.last_updated), "signOnMode": a.sign_on_mode,
            "accessibility": {"selfService": False, "errorRedirectUrl": None, "loginRedirectUrl": None},
            "visibility": {"autoSubmitToolbar": False, "hide": {"iOS": a.application_type == "service", "web": a.application_type == "service"}, "appLinks": {}},
            "features": [],
            "credentials": {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}, "signing": {}},
            "settings": {"app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"}}}},
            "_links": {"self": {"href": f"{call.base}/api/v1/apps/{a.id}"}},
        }
        if a.sign_on_mode == "OPENID_CONNECT":
            body["credentials"]["oauthClient"] = {"autoKeyRotation": True, "client_id": a.client_id,
                                                  "token_endpoint_auth_method": a.token_endpoint_auth_method, "pkce_required": False}
            body["settings"]["oauthClient"] = {
                "client_uri": None, "logo_uri": None, "redirect_uris": [], "post_logout_redirect_uris": [],
                "response_types": ["token"] if a.application_type == "service" else ["code"],
                "grant_types": list(a.grant_types or []), "application_type": a.application_type,
                "consent_method": "REQUIRED", "issuer_mode": "DYNAMIC",
            }
        return body

    def _app(self, app_id: str) -> OktaApp:
        a = self.state.app(app_id)
        if a is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {app_id} (AppInstance)")
        return a

    def h_list_apps(self, call: _Call) -> tuple[Any, list[str]]:
        return self._page(call, [self._app_json(call, a) for a in self.state.apps], default=20)

    def h_get_app(self, call: _Call, app_id: str) -> tuple[Any, list[str]]:
        return self._app_json(call, self._app(app_id)), []

    def h_list_client_secrets(self, call: _Call, app_id: str) -> tuple[Any, list[str]]:
        a = self._app(app_id)
        out = []
        for s in a.secrets:
            item: dict[str, Any] = {"id": s.id, "status": s.status, "created": fmt(s.created), "lastUpdated": fmt(s.last_updated)}
            if s.secret:
                # Okta lists a secret masked to its last four characters, with a hash of it.
                item["client_secret"] = "***" + s.secret[-4:]
                digest = hashlib.sha256(s.secret.encode()).digest()[:16]
                item["secret_hash"] = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                item["secret_hash"] = base64.urlsafe_b64encode(hashlib.sha256(str(s.id).encode()).digest()[:16]).decode().rstrip("=")
            item["_links"] = {"activate" if s.status == "INACTIVE" else "deactivate": {
                "href": f"{call.base}/api/v1/apps/{a.id}/credentials/secrets/{s.id}/lifecycle/"
                        + ("activate" if s.status == "INACTIVE" else "deactivate"), "hints": {"allow": ["POST"]}}}
            out.append(item)
        return out, []

    def h_list_jwks(self, call: _Call, app_id: str) -> tuple[Any, list[str]]:
        a = self._app(app_id)
        out = []
        for k in a.jwks:
            n = base64.urlsafe_b64encode(hashlib.sha512(str(k.kid).encode()).digest() * 4).decode().rstrip("=")
            out.append({"id": k.id, "kid": k.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "n": n,
                        "status": k.status, "created": fmt(k.created), "lastUpdated": fmt(k.last_updated),
                        "_links": {"self": {"href": f"{call.base}/api/v1/apps/{a.id}/credentials/jwks/{k.id}"}}})
        return out, []

    def h_list_scope_grants(self, call: _Call, app_id: str) -> tuple[Any, list[str]]:
        a = self._app(app_id)
        items = []
        for g in a.grants:
            creator = self.state.user(g.created_by)
            items.append({
                "id": g.id, "status": g.status, "created": fmt(g.created), "lastUpdated": fmt(g.created),
                "createdBy": {"id": creator.id, "type": "User"} if creator else None,
                "issuer": call.base, "clientId": a.client_id, "scopeId": g.scope, "source": "ADMIN",
                "_links": {"app": {"href": f"{call.base}/api/v1/apps/{a.id}"}, "self": {"href": f"{call.base}/api/v1/apps/{a.id}/grants/{g.id}"}},
            })
        return self._page(call, items, default=20)

    def h_list_client_roles(self, call: _Call, client_id: str) -> tuple[Any, list[str]]:
        a = self.state.app_by_client_id(client_id)
        if a is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {client_id} (Client)")
        return [self._role_json(call, r.id, r.type, r.status, r.created, "CLIENT") for r in a.roles], []

    def h_list_api_tokens(self, call: _Call) -> tuple[Any, list[str]]:
        items = []
        for t in self.state.api_tokens:
            user = self.state.user(t.user)
            window = parse_window(t.token_window) or timedelta(days=30)
            items.append({
                "id": t.id, "name": t.name, "userId": user.id if user else None, "clientName": t.client_name,
                "created": fmt(t.created), "lastUpdated": fmt(t.created), "expiresAt": fmt(t.last_used + window),
                "network": {"connection": t.network}, "tokenWindow": t.token_window,
                "_link": {"self": {"href": f"{call.base}/api/v1/api-tokens/{t.id}", "hints": {"allow": ["GET", "DELETE"]}},
                          "user": {"href": f"{call.base}/api/v1/users/{user.id if user else ''}"}},
            })
        return self._page(call, items, default=20)
