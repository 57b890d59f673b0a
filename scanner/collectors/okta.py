"""Okta collector: people, OAuth service apps, their secrets, keys, scopes and admin roles, API tokens.

Cartography's split: ``get_*`` functions do the I/O (``requests`` against the management API)
and return the JSON Okta sent; ``transform_*`` functions are pure (dicts in, records out) and
are unit-tested on recorded-shape payloads; :func:`collect` ties them together for one source.

Why plain ``requests``: Okta's Python SDK is asyncio/aiohttp-only and insists on an https org
URL; the management API is a small, stable REST surface (SSWS header, ``Link`` cursor paging),
so a ``requests.Session`` with urllib3's ``Retry`` is the simplest robust client. Okta answers
a spent rate-limit bucket with 429 and ``X-Rate-Limit-Reset`` (epoch seconds) rather than
``Retry-After``; :class:`RateLimitRetry` honours either.

Okta is also a *people* source: every user becomes a human ``Account`` and a ``Person``
(``{src}:person:{email}``, departed when DEPROVISIONED or SUSPENDED), so people can be merged
by email across HR, Okta and Entra.

Inventories (``{src}:org:<name>``): ``users``, ``apps``, ``client_secrets`` (client secrets and
JWKS keys of service apps), ``app_grants`` (Okta API scopes granted to apps), ``app_roles``
(admin roles assigned to apps) and ``api_tokens`` (SSWS tokens, with their creator's admin
roles, since a token acts with them). A failed inventory is a gap with its reason, never an
empty list; a malformed item is logged and skipped. No token or secret value is kept:
client secrets are listed by Okta masked, and nhiscan drops even the mask and the hash.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import urllib.parse
from datetime import timedelta
from typing import Any, Callable, Iterable, Sequence

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scanner.collectors.common import (Batch, CollectorRun, MalformedItem, MalformedResponse, each, grant_key,
                                       label_by, opt_dict, opt_str, opt_time, req_str)
from scanner.config import Config, ConfigError, OktaSource, read_secret
from scanner.records import (
    Account,
    CollectResult,
    Credential,
    Grant,
    Ownership,
    Person,
    Privilege,
    Record,
    Resource,
    Status,
)

log = logging.getLogger("nhiscan.collectors.okta")

INVENTORIES: tuple[str, ...] = ("users", "apps", "client_secrets", "app_grants", "app_roles", "api_tokens")
_APP_DETAILS = ("client_secrets", "app_grants", "app_roles")

_NEEDS: dict[str, str] = {
    "users": "an admin role that may read users (API token of a read-only admin or above; OAuth scope okta.users.read)",
    "apps": "an admin role that may read apps (OAuth scope okta.apps.read)",
    "client_secrets": "an admin role that may read app credentials (OAuth scope okta.apps.read)",
    "app_grants": "an admin role that may read app grants (OAuth scope okta.appGrants.read)",
    "app_roles": "an admin role that may read role assignments (OAuth scope okta.roles.read)",
    "api_tokens": "an admin role that may read API tokens and role assignments (OAuth scopes okta.apiTokens.read, okta.roles.read)",
}

# Okta user statuses in which the person can no longer sign in: for people, they have left.
DEPARTED_STATUSES = frozenset({"DEPROVISIONED", "SUSPENDED"})
ADMIN_ROLES = frozenset({"SUPER_ADMIN", "ORG_ADMIN"})
READ_ROLES = frozenset({"READ_ONLY_ADMIN", "REPORT_ADMIN"})
_OKTA_MANAGE = re.compile(r"^okta\.[A-Za-z]+\.manage$")
MAX_RATE_LIMIT_WAIT = 120.0


# --- keys ---------------------------------------------------------------------------------


def inventory_name(src: str, short: str) -> str:
    return f"{src}:org:{short}"


def org_key(src: str, host: str) -> str:
    return f"{src}:org:{host}"


def user_key(src: str, user_id: str) -> str:
    return f"{src}:user:{user_id}"


def app_key(src: str, app_id: str) -> str:
    return f"{src}:app:{app_id}"


def person_key(src: str, email: str) -> str:
    return f"{src}:person:{email.lower()}"


# --- payload checking (shared readers in scanner.collectors.common) -----------------------

# An item in a warning is named by its id, label or name (Okta's ids are strings).
_label = label_by("id", "label", "name", ints="skip")
_each = functools.partial(each, label=_label)
_opt_time = functools.partial(opt_time, expected="a string")


class OktaApiError(Exception):
    """A non-2xx answer. Holds Okta's ``errorCode`` and ``errorSummary``, never the request."""

    def __init__(self, status: int, code: str | None = None, summary: str | None = None):
        super().__init__(f"HTTP {status}" + (f" {code}" if code else ""))
        self.status, self.code, self.summary = status, code, summary


_WINDOW = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def token_window(text: str | None) -> timedelta | None:
    """Okta's ``tokenWindow`` (ISO 8601 days/hours/minutes, e.g. ``P30D``); None when not one."""
    m = _WINDOW.match(text or "")
    if not m or not any(m.groups()):
        return None
    d, h, mi = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi)


# --- privilege ------------------------------------------------------------------------------


def scope_privilege(scope: str) -> Privilege:
    """An Okta API scope -> privilege: ``okta.<thing>.manage`` administers that part of the org
    (ADMIN), other ``manage`` scopes (self-service, narrower objects) are WRITE, the rest READ."""
    if _OKTA_MANAGE.match(scope):
        return Privilege.ADMIN
    if "manage" in scope.split("."):
        return Privilege.WRITE
    return Privilege.READ


def role_privilege(role_type: str) -> Privilege:
    """An admin role -> privilege: super/org admin ADMIN, read-only/report admin READ, the others
    (app, user, help-desk admin ...) manage part of the org: WRITE."""
    if role_type in ADMIN_ROLES:
        return Privilege.ADMIN
    if role_type in READ_ROLES:
        return Privilege.READ
    return Privilege.WRITE


def _max_privilege(levels: Iterable[Privilege]) -> Privilege:
    return max(levels, default=Privilege.READ)


def is_service_app(item: dict[str, Any]) -> bool:
    """An OAuth 2.0 service app (machine-to-machine, client credentials): the NHIs among Okta apps."""
    settings = item.get("settings") if isinstance(item.get("settings"), dict) else {}
    oauth = settings.get("oauthClient") if isinstance(settings.get("oauthClient"), dict) else {}
    return item.get("signOnMode") == "OPENID_CONNECT" and oauth.get("application_type") == "service"


# --- transforms (pure) ----------------------------------------------------------------------


def transform_users(src: str, items: Sequence[Any]) -> Batch:
    """Users -> a human Account each, plus a Person per email (Okta is a people source).

    A person is ``departed`` when their user is DEPROVISIONED or SUSPENDED; their manager's email
    comes from ``profile.managerId`` when that user is in the same listing.
    """
    inv = inventory_name(src, "users")
    emails: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("profile"), dict):
            email = item["profile"].get("email")
            if isinstance(email, str) and "@" in email:
                emails[item["id"]] = email.lower()
    batch = Batch()
    seen_people: set[str] = set()

    def one(item: dict[str, Any]) -> list[Record]:
        uid = req_str(item, "id")
        status = req_str(item, "status")
        profile = opt_dict(item, "profile")
        if not profile:
            raise MalformedItem("missing profile")
        email = req_str(profile, "email").lower()
        if "@" not in email:
            raise MalformedItem("profile.email is not an email address")
        login = opt_str(profile, "login") or email
        display = " ".join(p for p in (opt_str(profile, "firstName"), opt_str(profile, "lastName")) if p) or login
        manager_id = opt_str(profile, "managerId")
        departed = status in DEPARTED_STATUSES
        changed = _opt_time(item, "statusChanged")
        account = Account(
            key=user_key(src, uid), source=src, inventory=inv, name=display, account_type="user", is_human=True,
            login=login, email=email, status=Status.SUSPENDED if departed else Status.ACTIVE,
            created_at=_opt_time(item, "created"), last_active_at=_opt_time(item, "lastLogin"),
            attributes={"id": uid, "okta_status": status, "status_changed": changed.isoformat() if changed else None,
                        "manager_id": manager_id},
        )
        out: list[Record] = [account]
        if email not in seen_people:
            seen_people.add(email)
            out.append(Person(
                key=person_key(src, email), source=src, inventory=inv, name=display, email=email,
                status="departed" if departed else "active",
                end_date=changed.date() if departed and changed else None,
                manager_email=emails.get(manager_id) if manager_id else None,
            ))
        return out

    _each(batch, items, "user", one)
    return batch


def _active(items: Sequence[Any] | None) -> list[dict[str, Any]]:
    return [i for i in items or () if isinstance(i, dict) and i.get("status", "ACTIVE") == "ACTIVE"]


def transform_apps(
    src: str,
    host: str,
    items: Sequence[Any],
    *,
    grants: dict[str, Sequence[Any]] | None = None,
    roles: dict[str, Sequence[Any]] | None = None,
) -> Batch:
    """OAuth service apps -> ``Account(account_type="app")``, and the org as a Resource.

    The app's privilege is the highest of its granted Okta API scopes and its admin roles
    (``grants``/``roles`` map an app id to those listings; None when they could not be read,
    and the record names those inventories in ``derived_from`` so its findings are not resolved
    on their absence). Okta records no app owner; whoever granted the app its scopes is the
    best evidence there is, kept as a creator claim. Other apps (SAML, web sign-in) are not NHIs.
    """
    inv = inventory_name(src, "apps")
    okey = org_key(src, host)
    batch = Batch(records=[Resource(key=okey, source=src, inventory=inv, name=host, resource_type="org")])

    def one(item: dict[str, Any]) -> list[Record]:
        aid = req_str(item, "id")
        if not is_service_app(item):
            return []
        label = opt_str(item, "label") or aid
        oauth = opt_dict(opt_dict(item, "credentials"), "oauthClient")
        settings = opt_dict(opt_dict(item, "settings"), "oauthClient")
        app_grants = _active((grants or {}).get(aid))
        app_roles = _active((roles or {}).get(oauth.get("client_id") or aid))
        scopes = sorted(g["scopeId"] for g in app_grants if isinstance(g.get("scopeId"), str))
        role_types = sorted(r["type"] for r in app_roles if isinstance(r.get("type"), str))
        level = _max_privilege([scope_privilege(s) for s in scopes] + [role_privilege(r) for r in role_types])
        creators = sorted({g["createdBy"]["id"] for g in app_grants
                           if isinstance(g.get("createdBy"), dict) and isinstance(g["createdBy"].get("id"), str)
                           and g["createdBy"].get("type", "User") == "User"})
        status = opt_str(item, "status") or "ACTIVE"
        return [Account(
            key=app_key(src, aid), source=src, inventory=inv, name=label, account_type="app", is_human=False,
            login=opt_str(oauth, "client_id"), status=Status.ACTIVE if status == "ACTIVE" else Status.SUSPENDED,
            created_at=_opt_time(item, "created"), privilege=level,
            owners=tuple(Ownership(ref=user_key(src, uid), evidence="scope grant createdBy (Okta API)", confidence=0.6,
                                   role="creator") for uid in creators),
            attributes={
                "id": aid, "client_id": oauth.get("client_id"), "okta_status": status,
                "token_endpoint_auth_method": oauth.get("token_endpoint_auth_method"),
                "grant_types": settings.get("grant_types"), "scopes": scopes, "roles": role_types,
                "privilege_complete": grants is not None and roles is not None,
                "derived_from": [inventory_name(src, "app_grants"), inventory_name(src, "app_roles")],
            },
        )]

    _each(batch, items, "app", one)
    return batch


def transform_client_credentials(src: str, app_id: str, label: str, secrets: Sequence[Any], keys: Sequence[Any]) -> Batch:
    """An app's client secrets and JWKS public keys -> Credentials that authenticate as the app.

    They carry no privilege of their own (``NONE``): they act as the app, which holds it. Okta
    reports no last use for them, and lists a secret only masked with a hash: both are dropped.
    A secret is never rotated in place (a new one is created), so ``rotated_at`` stays empty.
    """
    inv = inventory_name(src, "client_secrets")
    akey = app_key(src, app_id)
    batch = Batch()

    def secret(item: dict[str, Any]) -> list[Record]:
        sid = req_str(item, "id")
        status = opt_str(item, "status") or "ACTIVE"
        return [Credential(
            key=f"{src}:client_secret:{app_id}/{sid}", source=src, inventory=inv, name=f"{label} client secret {sid[-6:]}",
            credential_type="client_secret", account_key=akey, created_at=_opt_time(item, "created"),
            usage_tracked=False, privilege=Privilege.NONE,
            status=Status.ACTIVE if status == "ACTIVE" else Status.SUSPENDED,
            attributes={"id": sid, "app_id": app_id, "okta_status": status, "last_updated": item.get("lastUpdated")},
        )]

    def key(item: dict[str, Any]) -> list[Record]:
        kid = opt_str(item, "kid") or req_str(item, "id")
        status = opt_str(item, "status") or "ACTIVE"
        return [Credential(
            key=f"{src}:app_key:{app_id}/{kid}", source=src, inventory=inv, name=f"{label} JWKS key {kid[-8:]}",
            credential_type="app_key", account_key=akey, created_at=_opt_time(item, "created"),
            usage_tracked=False, privilege=Privilege.NONE,
            status=Status.ACTIVE if status == "ACTIVE" else Status.SUSPENDED,
            attributes={"id": item.get("id"), "kid": kid, "app_id": app_id, "kty": item.get("kty"),
                        "alg": item.get("alg"), "okta_status": status},
        )]

    _each(batch, secrets, f"client secret of app {app_id}", secret)
    _each(batch, keys, f"JWKS key of app {app_id}", key)
    return batch


def transform_app_grants(src: str, host: str, app_id: str, label: str, items: Sequence[Any]) -> Batch:
    """Okta API scopes granted to an app -> Grants app -> org, one per active scope."""
    inv = inventory_name(src, "app_grants")
    akey, okey = app_key(src, app_id), org_key(src, host)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        gid = req_str(item, "id")
        scope = req_str(item, "scopeId")
        if (opt_str(item, "status") or "ACTIVE") != "ACTIVE":
            return []
        return [Grant(key=grant_key(src, akey, f"{okey}/{gid}"), source=src, inventory=inv, name=f"{label}: {scope}",
                      subject_key=akey, resource_key=okey, privilege=scope_privilege(scope), scopes=(scope,))]

    _each(batch, items, f"scope grant of app {app_id}", one)
    return batch


def transform_app_roles(src: str, host: str, app_id: str, label: str, items: Sequence[Any]) -> Batch:
    """Admin roles assigned to an app's client -> Grants app -> org (``role:<TYPE>`` scopes)."""
    inv = inventory_name(src, "app_roles")
    akey, okey = app_key(src, app_id), org_key(src, host)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        rid = req_str(item, "id")
        rtype = req_str(item, "type")
        if (opt_str(item, "status") or "ACTIVE") != "ACTIVE":
            return []
        return [Grant(key=grant_key(src, akey, f"{okey}/role/{rid}"), source=src, inventory=inv, name=f"{label}: {rtype}",
                      subject_key=akey, resource_key=okey, privilege=role_privilege(rtype), scopes=(f"role:{rtype}",))]

    _each(batch, items, f"admin role of app {app_id}", one)
    return batch


def transform_api_tokens(src: str, host: str, items: Sequence[Any], creator_roles: dict[str, Sequence[Any]]) -> Batch:
    """SSWS API tokens -> Credential ``api_token`` owned by (and acting as) the user who created it.

    A token holds its creator's admin rights, so its privilege comes from ``creator_roles`` (user id
    -> role assignments). Okta extends ``expiresAt`` to last use + ``tokenWindow``, so the last use
    is ``expiresAt - tokenWindow``.
    """
    inv = inventory_name(src, "api_tokens")
    okey = org_key(src, host)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        tid = req_str(item, "id")
        user_id = req_str(item, "userId")
        ukey = user_key(src, user_id)
        expires = _opt_time(item, "expiresAt")
        window_text = opt_str(item, "tokenWindow")
        window = token_window(window_text)
        roles = sorted({r["type"] for r in _active(creator_roles.get(user_id)) if isinstance(r.get("type"), str)})
        level = _max_privilege(role_privilege(r) for r in roles) if roles else Privilege.READ
        network = opt_dict(item, "network")
        name = opt_str(item, "name") or f"API token {tid}"
        ckey = f"{src}:api_token:{tid}"
        cred = Credential(
            key=ckey, source=src, inventory=inv, name=name, credential_type="api_token", account_key=ukey,
            created_at=_opt_time(item, "created"), expires_at=expires,
            last_used_at=expires - window if expires and window else None, usage_tracked=bool(expires and window),
            scopes=tuple(f"role:{r}" for r in roles), privilege=level, created_by=ukey,
            owners=(Ownership(ref=ukey, evidence="API token userId (Okta API)", confidence=0.9, role="creator"),),
            attributes={"id": tid, "user_id": user_id, "client_name": item.get("clientName"), "token_window": window_text,
                        "network": network.get("connection"), "creator_roles": roles,
                        "last_used_inferred": "expiresAt - tokenWindow" if expires and window else None},
        )
        grant = Grant(key=grant_key(src, ckey, okey), source=src, inventory=inv, name=f"API token {name} on {host}",
                      subject_key=ckey, resource_key=okey, privilege=level, scopes=cred.scopes)
        return [cred, grant]

    _each(batch, items, "API token", one)
    return batch


# --- the client -------------------------------------------------------------------------------


class RateLimitRetry(Retry):
    """urllib3 ``Retry`` that also waits out Okta's ``X-Rate-Limit-Reset`` on a 429 with no ``Retry-After``."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        if after is not None:
            return after
        reset = response.headers.get("X-Rate-Limit-Reset")
        if response.status == 429 and reset:
            try:
                return min(max(float(reset) - time.time(), 0.0) + 0.25, MAX_RATE_LIMIT_WAIT)
            except ValueError:
                return None
        return None


def retrying_session(max_retries: int, *, methods: Iterable[str] = ("GET",)) -> requests.Session:
    """A session that retries 429 and 5xx, honouring ``Retry-After`` (and Okta's reset header)."""
    retry = RateLimitRetry(
        total=max_retries, connect=max_retries, read=max_retries, status=max_retries, backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset(methods),
        respect_retry_after_header=True, raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "nhiscan"})
    return session


class OktaClient:
    """GETs and paged listings against one org, authenticated with an SSWS API token."""

    def __init__(self, source: OktaSource, token: str):
        self.base = source.base_url.rstrip("/")
        self.timeout = source.timeout
        self.session = retrying_session(source.max_retries)
        self.session.headers["Authorization"] = f"SSWS {token}"
        self._origin = urllib.parse.urlsplit(self.base)[:2]

    def close(self) -> None:
        self.session.close()

    def _get(self, url: str, params: dict[str, Any] | None = None) -> requests.Response:
        response = self.session.get(url, params=params, timeout=self.timeout)
        if response.status_code >= 400:
            code = summary = None
            try:
                body = response.json()
                if isinstance(body, dict):
                    code, summary = body.get("errorCode"), body.get("errorSummary")
            except ValueError:
                pass
            raise OktaApiError(response.status_code, code if isinstance(code, str) else None,
                               summary if isinstance(summary, str) else None)
        return response

    def get(self, path: str) -> Any:
        return _json(self._get(self.base + path))

    def list(self, path: str, *, limit: int | None = 200) -> list[Any]:
        """Every page of a listing, following ``Link: rel="next"`` (only within the org's origin)."""
        items: list[Any] = []
        url: str | None = self.base + path
        params = {"limit": limit} if limit else None
        while url:
            response = self._get(url, params)
            page = _json(response)
            if not isinstance(page, list):
                raise MalformedResponse("the response was not a JSON list")
            items.extend(page)
            url = response.links.get("next", {}).get("url")
            params = None
            if url and urllib.parse.urlsplit(url)[:2] != self._origin:
                raise MalformedResponse("a next-page link points outside the org")
        return items


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise MalformedResponse("the body is not valid JSON") from None


# --- I/O --------------------------------------------------------------------------------------


def get_users(client: OktaClient) -> list[Any]:
    return client.list("/api/v1/users")


def get_apps(client: OktaClient) -> list[Any]:
    return client.list("/api/v1/apps")


def get_client_credentials(client: OktaClient, app_id: str) -> tuple[list[Any], list[Any]]:
    quoted = urllib.parse.quote(app_id, safe="")
    return (client.list(f"/api/v1/apps/{quoted}/credentials/secrets", limit=None),
            client.list(f"/api/v1/apps/{quoted}/credentials/jwks", limit=None))


def get_app_grants(client: OktaClient, app_id: str) -> list[Any]:
    return client.list(f"/api/v1/apps/{urllib.parse.quote(app_id, safe='')}/grants")


def get_app_roles(client: OktaClient, client_id: str) -> list[Any]:
    return client.list(f"/oauth2/v1/clients/{urllib.parse.quote(client_id, safe='')}/roles", limit=None)


def get_api_tokens(client: OktaClient) -> tuple[list[Any], dict[str, list[Any]]]:
    """API tokens, and the admin roles of each token's creator (a token acts with them)."""
    tokens = client.list("/api/v1/api-tokens")
    roles: dict[str, list[Any]] = {}
    for t in tokens:
        uid = t.get("userId") if isinstance(t, dict) else None
        if isinstance(uid, str) and uid and uid not in roles:
            roles[uid] = client.list(f"/api/v1/users/{urllib.parse.quote(uid, safe='')}/roles", limit=None)
    return tokens, roles


# --- errors -> coverage reasons -----------------------------------------------------------------


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A reason a security team can act on, built from the status and Okta's error code only."""
    if isinstance(err, OktaApiError):
        said = f" ({err.code}: {' '.join(err.summary.split())[:160]})" if err.code and err.summary else ""
        if err.status == 401:
            return f"HTTP 401: credentials rejected (bad, expired or revoked API token){said}"
        if err.status == 403:
            return f"HTTP 403: forbidden{said}; needs {need}"
        if err.status == 404:
            return f"HTTP 404: not found{said}; needs {need}"
        if err.status == 429:
            return f"HTTP 429: rate limited and not recovered within the retry budget{said}"
        if err.status >= 500:
            return f"HTTP {err.status}: server error, persisted after retries{said}"
        return f"HTTP {err.status}{said}"
    if isinstance(err, requests.exceptions.RetryError):
        return "errors persisted after all retries"
    if isinstance(err, requests.exceptions.Timeout) or (
        isinstance(err, requests.exceptions.ConnectionError) and "timed out" in str(err).lower()
    ):
        return f"request timed out{f' after {timeout:g}s' if timeout else ''} (retries exhausted)"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "could not connect to the Okta API (retries exhausted)"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, ConfigError):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


# --- collect ------------------------------------------------------------------------------------


def collect(
    source: OktaSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Read every configured inventory of one Okta org; never raises for an API failure."""
    run = _Collector(source, progress)
    run.run(config)
    return run.result


class _Collector(CollectorRun):
    vendor = "okta"
    tell_skipped = False

    def __init__(self, source: OktaSource, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: OktaSource = source
        self.host = urllib.parse.urlsplit(source.base_url).netloc or source.base_url
        self.wanted = self.requested(INVENTORIES)

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    def inventory_of(self, short: str) -> str:
        return inventory_name(self.src, short)

    def run(self, config: Config) -> None:
        try:
            token = read_secret(config, env=self.source.token_env, file=self.source.token_file,
                                what=f"sources.okta[{self.src}]")
        except ConfigError as err:
            for short in self.wanted:
                self.gap(short, f"credentials not available: {err}")
            return
        client = OktaClient(self.source, token)
        try:
            self._collect(client)
        finally:
            client.close()

    def _collect(self, client: OktaClient) -> None:
        src, host, wanted = self.src, self.host, self.wanted
        if "users" in wanted:
            users = self.fetch("users", _NEEDS["users"], lambda: get_users(client))
            if users is not None:
                self.ok("users", transform_users(src, users))

        need_apps = "apps" in wanted or any(s in wanted for s in _APP_DETAILS)
        apps = self.fetch("apps", _NEEDS["apps"], lambda: get_apps(client)) if need_apps else None
        if need_apps and apps is None:
            for short in _APP_DETAILS:
                if short in wanted:
                    self.gap(short, f"the app list was not read, so no app's details could be: {self.last_reason}")
        services = [(a["id"], a.get("label") or a["id"], _client_id(a)) for a in apps or []
                    if isinstance(a, dict) and isinstance(a.get("id"), str) and is_service_app(a)]

        grants: dict[str, list[Any]] | None = None
        roles: dict[str, list[Any]] | None = None
        if apps is not None and "app_grants" in wanted:
            grants = self.fetch("app_grants", _NEEDS["app_grants"], lambda: {aid: get_app_grants(client, aid) for aid, _, _ in services})
            if grants is not None:
                batch = Batch()
                for aid, label, _ in services:
                    batch.extend(transform_app_grants(src, host, aid, label, grants[aid]))
                self.ok("app_grants", batch)
        if apps is not None and "app_roles" in wanted:
            roles = self.fetch("app_roles", _NEEDS["app_roles"], lambda: {cid: get_app_roles(client, cid) for _, _, cid in services})
            if roles is not None:
                batch = Batch()
                for aid, label, cid in services:
                    batch.extend(transform_app_roles(src, host, aid, label, roles[cid]))
                self.ok("app_roles", batch)
        if apps is not None and "apps" in wanted:
            self.ok("apps", transform_apps(src, host, apps, grants=grants, roles=roles))
        if apps is not None and "client_secrets" in wanted:
            creds = self.fetch("client_secrets", _NEEDS["client_secrets"], lambda: {aid: get_client_credentials(client, aid) for aid, _, _ in services})
            if creds is not None:
                batch = Batch()
                for aid, label, _ in services:
                    batch.extend(transform_client_credentials(src, aid, label, *creds[aid]))
                self.ok("client_secrets", batch)

        if "api_tokens" in wanted:
            listing = self.fetch("api_tokens", _NEEDS["api_tokens"], lambda: get_api_tokens(client))
            if listing is not None:
                self.ok("api_tokens", transform_api_tokens(src, host, *listing))


def _client_id(app: dict[str, Any]) -> str:
    creds = app.get("credentials") if isinstance(app.get("credentials"), dict) else {}
    oauth = creds.get("oauthClient") if isinstance(creds.get("oauthClient"), dict) else {}
    cid = oauth.get("client_id")
    return cid if isinstance(cid, str) and cid else app["id"]

