"""Microsoft Entra ID collector: app registrations, service principals, their credentials,
application permissions and sign-in activity, and the tenant's people.

Cartography's split: ``get_*`` functions do the I/O (a client-credentials token, then Microsoft
Graph) and return the JSON Graph sent; ``transform_*`` functions are pure and unit-tested on
recorded-shape payloads; :func:`collect` ties them together for one tenant.

Why plain ``requests``: MSAL refuses any authority that is not https (so it cannot talk to a
loopback emulator) and ``msgraph-sdk`` brings kiota and azure-identity for five GET listings,
one of them beta-only. The client-credentials grant is one form POST; Graph paging is
``@odata.nextLink``; a ``requests.Session`` with urllib3's ``Retry`` honouring ``Retry-After``
is the simplest robust client.

One application identity is one ``Account`` keyed by its ``appId`` (``{src}:app:{appId}``):

* an app registered in this tenant comes from ``applications`` (owners, secrets and
  certificates there), with its service principal's state, permissions and sign-in folded in;
* a service principal with no registration here (a third-party multi-tenant app, a managed
  identity) comes from ``service_principals``; ``third_party`` is true when its
  ``appOwnerOrganizationId`` is another tenant. Microsoft's own first-party principals are
  platform plumbing, not NHIs of this tenant, and are skipped.

Records built from several listings name the others in ``attributes["derived_from"]`` so their
findings are not resolved when those listings fail. Application permissions (app role
assignments) become Grants to the tenant. Sign-in activity needs Entra ID P1/P2 and
``AuditLog.Read.All``: without them that inventory is a gap and credentials keep
``usage_tracked=False``. No secret value is read (Graph never returns one) and the three-char
``hint`` Graph shows of a secret is dropped.
"""

from __future__ import annotations

import functools
import logging
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

import requests

from scanner.collectors.common import (Batch, CollectorRun, MalformedItem, MalformedResponse, each, label_by,
                                       opt_dict, opt_str, opt_time, req_str)
from scanner.collectors.okta import retrying_session
from scanner.config import Config, ConfigError, EntraSource, read_secret
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

log = logging.getLogger("nhiscan.collectors.entra")

INVENTORIES: tuple[str, ...] = ("applications", "service_principals", "app_role_assignments", "sign_in_activity", "users")
SIGN_IN_NEEDS_LICENSE = "needs Entra ID P1/P2 and AuditLog.Read.All"
# Tenants that publish Microsoft's first-party apps (Microsoft Graph, Office 365 ...).
MICROSOFT_TENANTS = frozenset({"f8cdef31-a31e-4b4a-93e4-5f571e91255a", "72f988bf-86f1-41af-91ab-2d7cd011db47"})

_NEEDS: dict[str, str] = {
    "applications": "the Application.Read.All application permission",
    "service_principals": "the Application.Read.All application permission",
    "app_role_assignments": "the Application.Read.All application permission",
    "sign_in_activity": SIGN_IN_NEEDS_LICENSE,
    "users": "the User.Read.All application permission",
}
_APP_SELECT = "id,appId,displayName,createdDateTime,signInAudience,passwordCredentials,keyCredentials"
_SP_SELECT = ("id,appId,displayName,servicePrincipalType,accountEnabled,appOwnerOrganizationId,appRoles,"
              "passwordCredentials,keyCredentials,tags")
_OWNER_SELECT = "id,displayName,userPrincipalName,mail,appId"
_USER_SELECT = "id,displayName,mail,userPrincipalName,accountEnabled,createdDateTime"


# --- payload checking (shared readers in scanner.collectors.common) -----------------------

# An item in a warning is named by its id (or a label or name); Graph's ids are strings.
_label = label_by("id", "label", "name", ints="skip")
_each = functools.partial(each, label=_label)
_opt_time = functools.partial(opt_time, expected="a string")


# --- keys ---------------------------------------------------------------------------------


def inventory_name(src: str, tenant: str, short: str) -> str:
    return f"{src}:{tenant}:{short}"


def tenant_key(src: str, tenant: str) -> str:
    return f"{src}:tenant:{tenant}"


def app_key(src: str, app_id: str) -> str:
    return f"{src}:app:{app_id}"


def user_key(src: str, user_id: str) -> str:
    return f"{src}:user:{user_id}"


def person_key(src: str, email: str) -> str:
    return f"{src}:person:{email.lower()}"


# --- privilege ------------------------------------------------------------------------------


def permission_privilege(value: str) -> Privilege:
    """A Microsoft Graph application permission -> privilege.

    Tenant-wide write (``*.ReadWrite.All``), anything on the directory itself (``Directory.*``),
    role management and the permission to grant permissions are ADMIN; narrower write
    (``*.ReadWrite*``) is WRITE; the rest READ.
    """
    if (value.endswith(".ReadWrite.All") or value.startswith(("Directory.", "RoleManagement."))
            or value == "AppRoleAssignment.ReadWrite.All"):
        return Privilege.ADMIN
    if ".ReadWrite" in value:
        return Privilege.WRITE
    return Privilege.READ


# --- transforms (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    """One application permission an app holds, resolved to its value where the resource says."""

    assignment_id: str
    principal: str
    resource: str
    value: str
    privilege: Privilege
    created_at: datetime | None


def sign_in_by_app(items: Sequence[Any]) -> dict[str, datetime]:
    """``servicePrincipalSignInActivities`` -> appId -> last sign-in (of any kind)."""
    out: dict[str, datetime] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("appId"), str):
            continue
        try:
            last = _opt_time(opt_dict(item, "lastSignInActivity"), "lastSignInDateTime")
        except MalformedItem:
            continue
        if last is not None:
            out[item["appId"]] = last
    return out


def _role_values(sps: Sequence[Any]) -> dict[tuple[str, str], str]:
    """(resource SP id, app role id) -> permission value, from the principals' ``appRoles``."""
    out: dict[tuple[str, str], str] = {}
    for sp in sps:
        if not isinstance(sp, dict) or not isinstance(sp.get("id"), str):
            continue
        for role in sp.get("appRoles") or []:
            if isinstance(role, dict) and isinstance(role.get("id"), str) and isinstance(role.get("value"), str):
                out[(sp["id"], role["id"])] = role["value"]
    return out


def resolve_permissions(assignments: dict[str, Sequence[Any]], sps: Sequence[Any]) -> dict[str, list[Permission]]:
    """Assignments per principal id -> the permissions each app (by appId) holds."""
    values = _role_values(sps)
    app_of = {sp["id"]: sp["appId"] for sp in sps if isinstance(sp, dict) and isinstance(sp.get("id"), str)
              and isinstance(sp.get("appId"), str)}
    out: dict[str, list[Permission]] = {}
    for principal_id, items in assignments.items():
        app_id = app_of.get(principal_id)
        if app_id is None:
            continue
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            role_id, resource_id = item.get("appRoleId"), item.get("resourceId")
            resource = item.get("resourceDisplayName") if isinstance(item.get("resourceDisplayName"), str) else str(resource_id)
            value = values.get((str(resource_id), str(role_id)), str(role_id))
            try:
                created = _opt_time(item, "createdDateTime")
            except MalformedItem:
                created = None
            principal = item.get("principalDisplayName") if isinstance(item.get("principalDisplayName"), str) else app_id
            out.setdefault(app_id, []).append(Permission(item["id"], principal, resource, value, permission_privilege(value), created))
    return out


def _owner_claims(src: str, owners: Sequence[Any], what: str) -> list[Ownership]:
    claims = []
    for o in owners:
        if not isinstance(o, dict):
            continue
        email = o.get("mail") or o.get("userPrincipalName")
        if o.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user" and isinstance(email, str) and "@" in email:
            claims.append(Ownership(ref=email.lower(), evidence=f"{what} owner (Entra API)", confidence=0.9, role="owner"))
        elif isinstance(o.get("appId"), str):
            claims.append(Ownership(ref=app_key(src, o["appId"]), evidence=f"{what} owner (Entra API)", confidence=0.8, role="owner"))
    return claims


def _credentials(
    src: str, inv: str, app_id: str, app_name: str, item: dict[str, Any], *, prefix: str,
    last_sign_in: datetime | None, usage_tracked: bool, derived_from: list[str],
) -> list[Record]:
    """``passwordCredentials`` and ``keyCredentials`` of an application or a service principal."""
    out: list[Record] = []
    for kind, field_name in (("client_secret", "passwordCredentials"), ("certificate", "keyCredentials")):
        entries = item.get(field_name) or []
        if not isinstance(entries, list):
            raise MalformedItem(f"{field_name} is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise MalformedItem(f"{field_name} holds a non-object")
            key_id = req_str(entry, "keyId")
            label = opt_str(entry, "displayName") or key_id[:8]
            attributes: dict[str, Any] = {"key_id": key_id, "display_name": opt_str(entry, "displayName"), "app_id": app_id,
                                          "last_used_source": "service principal sign-in (any of its credentials)",
                                          "derived_from": derived_from}
            if kind == "certificate":
                attributes.update({"type": opt_str(entry, "type"), "usage": opt_str(entry, "usage"),
                                   "thumbprint": opt_str(entry, "customKeyIdentifier")})
            out.append(Credential(
                key=f"{src}:{kind}:{prefix}{app_id}/{key_id}", source=src, inventory=inv,
                name=f"{app_name} {'client secret' if kind == 'client_secret' else 'certificate'} {label}",
                credential_type=kind, account_key=app_key(src, app_id),
                created_at=_opt_time(entry, "startDateTime"), expires_at=_opt_time(entry, "endDateTime"),
                last_used_at=last_sign_in if usage_tracked else None, usage_tracked=usage_tracked,
                privilege=Privilege.NONE, attributes=attributes,
            ))
    return out


def _app_privilege(perms: Sequence[Permission]) -> Privilege:
    return max((p.privilege for p in perms), default=Privilege.READ)


def transform_applications(
    src: str,
    tenant: str,
    items: Sequence[Any],
    *,
    owners: dict[str, Sequence[Any]],
    service_principals: Sequence[Any] | None = None,
    permissions: dict[str, Sequence[Permission]] | None = None,
    sign_ins: dict[str, datetime] | None = None,
) -> Batch:
    """App registrations -> one ``Account(account_type="app")`` each, plus their secrets and certificates.

    ``owners`` maps an application object id to its owners. The app's service principal (by
    ``appId`` in ``service_principals``) gives its enabled state and owners; ``permissions``
    its privilege; ``sign_ins`` its last activity. Each is None when its listing failed.
    """
    inv = inventory_name(src, tenant, "applications")
    depends = [inventory_name(src, tenant, s) for s in ("service_principals", "app_role_assignments", "sign_in_activity")]
    sp_of = {sp["appId"]: sp for sp in service_principals or () if isinstance(sp, dict) and isinstance(sp.get("appId"), str)}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        object_id = req_str(item, "id")
        app_id = req_str(item, "appId")
        name = opt_str(item, "displayName") or app_id
        sp = sp_of.get(app_id) or {}
        perms = list((permissions or {}).get(app_id, ()))
        last = (sign_ins or {}).get(app_id)
        enabled = sp.get("accountEnabled") is not False
        claims = _owner_claims(src, owners.get(object_id, ()), "application")
        claims += [c for c in _owner_claims(src, owners.get(f"sp:{sp.get('id')}", ()), "service principal") if c not in claims]
        account = Account(
            key=app_key(src, app_id), source=src, inventory=inv, name=name, url=None, account_type="app", is_human=False,
            login=app_id, status=Status.ACTIVE if enabled else Status.SUSPENDED, created_at=_opt_time(item, "createdDateTime"),
            last_active_at=last, privilege=_app_privilege(perms), third_party=False, owners=tuple(claims),
            attributes={
                "object_id": object_id, "app_id": app_id, "sign_in_audience": opt_str(item, "signInAudience"),
                "service_principal_id": sp.get("id"), "account_enabled": sp.get("accountEnabled"),
                "permissions": sorted(f"{p.resource}:{p.value}" for p in perms),
                "privilege_complete": permissions is not None, "derived_from": depends,
            },
        )
        creds = _credentials(src, inv, app_id, name, item, prefix="", last_sign_in=last, usage_tracked=sign_ins is not None,
                             derived_from=[inventory_name(src, tenant, "sign_in_activity")])
        return [account, *creds]

    _each(batch, items, "application", one)
    return batch


def transform_service_principals(
    src: str,
    tenant: str,
    items: Sequence[Any],
    *,
    owners: dict[str, Sequence[Any]],
    permissions: dict[str, Sequence[Permission]] | None = None,
    sign_ins: dict[str, datetime] | None = None,
) -> Batch:
    """Service principals with no registration in this tenant -> Accounts (third-party apps,
    managed identities), and every non-Microsoft principal's own secrets and certificates.

    Principals of apps registered here are represented by their application's Account; those
    Microsoft publishes are skipped.
    """
    inv = inventory_name(src, tenant, "service_principals")
    depends = [inventory_name(src, tenant, s) for s in ("app_role_assignments", "sign_in_activity")]
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        sp_id = req_str(item, "id")
        app_id = req_str(item, "appId")
        publisher = opt_str(item, "appOwnerOrganizationId")
        if publisher in MICROSOFT_TENANTS:
            return []
        name = opt_str(item, "displayName") or app_id
        last = (sign_ins or {}).get(app_id)
        out: list[Record] = []
        if publisher is None or publisher.lower() != tenant.lower():
            perms = list((permissions or {}).get(app_id, ()))
            sp_type = opt_str(item, "servicePrincipalType") or "Application"
            enabled = item.get("accountEnabled") is not False
            out.append(Account(
                key=app_key(src, app_id), source=src, inventory=inv, name=name, account_type="service_account"
                if sp_type == "ManagedIdentity" else "app", is_human=False, login=app_id,
                status=Status.ACTIVE if enabled else Status.SUSPENDED, last_active_at=last, privilege=_app_privilege(perms),
                third_party=publisher is not None, owners=tuple(_owner_claims(src, owners.get(sp_id, ()), "service principal")),
                attributes={
                    "service_principal_id": sp_id, "app_id": app_id, "service_principal_type": sp_type,
                    "app_owner_organization_id": publisher, "account_enabled": item.get("accountEnabled"),
                    "tags": item.get("tags") if isinstance(item.get("tags"), list) else [],
                    "permissions": sorted(f"{p.resource}:{p.value}" for p in perms),
                    "privilege_complete": permissions is not None, "derived_from": depends,
                },
            ))
        out += _credentials(src, inv, app_id, name, item, prefix=f"sp/{sp_id}/", last_sign_in=last,
                            usage_tracked=sign_ins is not None, derived_from=[inventory_name(src, tenant, "sign_in_activity")])
        return out

    _each(batch, items, "service principal", one)
    return batch


def transform_app_role_assignments(src: str, tenant: str, permissions: dict[str, Sequence[Permission]]) -> Batch:
    """Application permissions -> Grants app -> tenant (raw ``resource:value`` kept in scopes)."""
    inv = inventory_name(src, tenant, "app_role_assignments")
    tkey = tenant_key(src, tenant)
    batch = Batch(records=[Resource(key=tkey, source=src, inventory=inv, name=f"Entra tenant {tenant}", resource_type="tenant")])
    for app_id, perms in sorted(permissions.items()):
        for p in perms:
            batch.records.append(Grant(
                key=f"{src}:app_role_assignment:{p.assignment_id}", source=src, inventory=inv, name=f"{p.principal}: {p.resource} {p.value}",
                subject_key=app_key(src, app_id), resource_key=tkey, privilege=p.privilege, scopes=(f"{p.resource}:{p.value}",),
            ))
    return batch


def transform_users(src: str, tenant: str, items: Sequence[Any]) -> Batch:
    """Users -> human Accounts and a Person per email (``departed`` when the account is disabled)."""
    inv = inventory_name(src, tenant, "users")
    batch = Batch()
    seen: set[str] = set()

    def one(item: dict[str, Any]) -> list[Record]:
        uid = req_str(item, "id")
        upn = req_str(item, "userPrincipalName")
        enabled = item.get("accountEnabled")
        if not isinstance(enabled, bool):
            raise MalformedItem("missing accountEnabled")
        mail = opt_str(item, "mail")
        email = (mail or (upn if "@" in upn and "#EXT#" not in upn else "")).lower() or None
        name = opt_str(item, "displayName") or upn
        activity = opt_dict(item, "signInActivity")
        out: list[Record] = [Account(
            key=user_key(src, uid), source=src, inventory=inv, name=name, account_type="user", is_human=True, login=upn,
            email=email, status=Status.ACTIVE if enabled else Status.SUSPENDED, created_at=_opt_time(item, "createdDateTime"),
            last_active_at=_opt_time(activity, "lastSignInDateTime") if activity else None,
            attributes={"id": uid, "account_enabled": enabled},
        )]
        if email and email not in seen:
            seen.add(email)
            out.append(Person(key=person_key(src, email), source=src, inventory=inv, name=name, email=email,
                              status="active" if enabled else "departed"))
        return out

    _each(batch, items, "user", one)
    return batch


# --- the client -------------------------------------------------------------------------------


class GraphApiError(Exception):
    """A non-2xx answer from Graph or the token endpoint: status and the error code, never the request."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None):
        super().__init__(f"HTTP {status}" + (f" {code}" if code else ""))
        self.status, self.code, self.message = status, code, message


def _bounded(text: Any, limit: int = 160) -> str | None:
    return " ".join(text.split())[:limit] if isinstance(text, str) and text.strip() else None


def get_token(source: EntraSource, secret: str) -> str:
    """Client-credentials grant at ``{login_url}/{tenant}/oauth2/v2.0/token`` for Graph's ``.default`` scope."""
    graph = urllib.parse.urlsplit(source.base_url)
    url = f"{source.login_url.rstrip('/')}/{urllib.parse.quote(source.tenant_id, safe='')}/oauth2/v2.0/token"
    session = retrying_session(source.max_retries, methods=("POST",))
    try:
        response = session.post(url, timeout=source.timeout, data={
            "client_id": source.client_id, "client_secret": secret, "grant_type": "client_credentials",
            "scope": f"{graph.scheme}://{graph.netloc}/.default",
        })
    finally:
        session.close()
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        body = body if isinstance(body, dict) else {}
        codes = body.get("error_codes") if isinstance(body.get("error_codes"), list) else []
        description = _bounded(body.get("error_description"))
        # The description's first sentence names the AADSTS error; the rest is trace noise.
        message = description.split(". ")[0] if description else (f"AADSTS{codes[0]}" if codes else None)
        raise GraphApiError(response.status_code, body.get("error") if isinstance(body.get("error"), str) else None, message)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedResponse("the token response has no access_token")
    return token


class GraphClient:
    """Paged GETs against Microsoft Graph with a bearer token."""

    def __init__(self, source: EntraSource, token: str):
        self.base = source.base_url.rstrip("/")
        self.beta = self.base.rsplit("/", 1)[0] + "/beta"
        self.timeout = source.timeout
        self.session = retrying_session(source.max_retries)
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._origin = urllib.parse.urlsplit(self.base)[:2]

    def close(self) -> None:
        self.session.close()

    def list(self, path: str, params: dict[str, Any] | None = None, *, beta: bool = False) -> list[Any]:
        """Every page of a collection, following ``@odata.nextLink`` (only within Graph's origin)."""
        url: str | None = (self.beta if beta else self.base) + path
        items: list[Any] = []
        while url:
            response = self.session.get(url, params=params, timeout=self.timeout)
            params = None
            try:
                body = response.json()
            except ValueError:
                if response.status_code >= 400:
                    raise GraphApiError(response.status_code) from None
                raise MalformedResponse("the body is not valid JSON") from None
            if response.status_code >= 400:
                error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
                raise GraphApiError(response.status_code, error.get("code") if isinstance(error.get("code"), str) else None,
                                    _bounded(error.get("message")))
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise MalformedResponse("the response is not an OData collection")
            items.extend(body["value"])
            url = body.get("@odata.nextLink") if isinstance(body.get("@odata.nextLink"), str) else None
            if url and urllib.parse.urlsplit(url)[:2] != self._origin:
                raise MalformedResponse("a next-page link points outside Microsoft Graph")
        return items


def _q(object_id: str) -> str:
    return urllib.parse.quote(object_id, safe="")


# --- I/O --------------------------------------------------------------------------------------


def get_sign_in_activity(graph: GraphClient) -> list[Any]:
    return graph.list("/reports/servicePrincipalSignInActivities", beta=True)


def get_applications(graph: GraphClient) -> tuple[list[Any], dict[str, list[Any]]]:
    """App registrations and the owners of each (by application object id)."""
    apps = graph.list("/applications", {"$select": _APP_SELECT, "$top": 999})
    owners = {a["id"]: graph.list(f"/applications/{_q(a['id'])}/owners", {"$select": _OWNER_SELECT})
              for a in apps if isinstance(a, dict) and isinstance(a.get("id"), str)}
    return apps, owners


def _ours(sp: Any) -> bool:
    return isinstance(sp, dict) and isinstance(sp.get("id"), str) and sp.get("appOwnerOrganizationId") not in MICROSOFT_TENANTS


def get_service_principals(graph: GraphClient) -> tuple[list[Any], dict[str, list[Any]]]:
    """Service principals and the owners of each non-Microsoft one (by principal object id)."""
    sps = graph.list("/servicePrincipals", {"$select": _SP_SELECT, "$top": 999})
    owners = {sp["id"]: graph.list(f"/servicePrincipals/{_q(sp['id'])}/owners", {"$select": _OWNER_SELECT})
              for sp in sps if _ours(sp)}
    return sps, owners


def get_app_role_assignments(graph: GraphClient, sps: Sequence[Any]) -> dict[str, list[Any]]:
    """Application permissions granted to each non-Microsoft service principal."""
    return {sp["id"]: graph.list(f"/servicePrincipals/{_q(sp['id'])}/appRoleAssignments") for sp in sps if _ours(sp)}


def get_users(graph: GraphClient, *, with_sign_in: bool) -> list[Any]:
    select = _USER_SELECT + (",signInActivity" if with_sign_in else "")
    return graph.list("/users", {"$select": select, "$top": 999})


# --- errors -> coverage reasons -----------------------------------------------------------------


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A reason a security team can act on, from the status and Graph's error code only."""
    if isinstance(err, GraphApiError):
        said = f" ({err.code}: {err.message})" if err.code and err.message else (f" ({err.code})" if err.code else "")
        if err.status == 401:
            return f"HTTP 401: credentials rejected (bad, expired or revoked client secret or token){said}"
        if err.status == 403:
            return f"HTTP 403: forbidden{said}; {need if need.startswith('needs') else 'needs ' + need}"
        if err.status == 404:
            return f"HTTP 404: not found{said}"
        if err.status == 429:
            return f"HTTP 429: throttled and not recovered within the retry budget{said}"
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
        return "could not connect to Microsoft Graph or the token endpoint (retries exhausted)"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, ConfigError):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


# --- collect ------------------------------------------------------------------------------------


def collect(
    source: EntraSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Read every configured inventory of one Entra tenant; never raises for an API failure."""
    run = _Collector(source, progress)
    run.run(config)
    return run.result


class _Collector(CollectorRun):
    vendor = "entra"
    count_noun = "read"
    tell_skipped = False

    def __init__(self, source: EntraSource, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: EntraSource = source
        self.tenant = source.tenant_id
        self.wanted = self.requested(INVENTORIES)

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    def inventory_of(self, short: str) -> str:
        return inventory_name(self.src, self.tenant, short)

    def run(self, config: Config) -> None:
        source = self.source
        try:
            secret = read_secret(config, env=source.client_secret_env, file=source.client_secret_file,
                                 what=f"sources.entra[{self.src}] client secret")
            token = get_token(source, secret)
        except Exception as err:  # noqa: BLE001 - without a token nothing can be read; say why for each
            reason = describe_error(err, "a valid client secret of the app registration", source.timeout)
            if not isinstance(err, ConfigError):
                reason = f"token request failed: {reason}"
            for short in self.wanted:
                self.gap(short, reason)
            return
        graph = GraphClient(source, token)
        try:
            self._collect(graph)
        finally:
            graph.close()

    def _collect(self, graph: GraphClient) -> None:
        src, tenant, wanted = self.src, self.tenant, self.wanted
        sign_ins: dict[str, datetime] | None = None
        if "sign_in_activity" in wanted:
            activity = self.fetch("sign_in_activity", _NEEDS["sign_in_activity"], lambda: get_sign_in_activity(graph))
            if activity is not None:
                sign_ins = sign_in_by_app(activity)
                self.ok("sign_in_activity", Batch(), count=len(activity))

        need_sps = any(s in wanted for s in ("applications", "service_principals", "app_role_assignments"))
        sp_listing = self.fetch("service_principals", _NEEDS["service_principals"], lambda: get_service_principals(graph)) if need_sps else None
        sps, sp_owners = sp_listing if sp_listing is not None else (None, {})

        permissions: dict[str, list[Permission]] | None = None
        if "app_role_assignments" in wanted:
            if sps is None:
                self.gap("app_role_assignments", "the service principal list was not read, so no assignment could be")
            else:
                assignments = self.fetch("app_role_assignments", _NEEDS["app_role_assignments"], lambda: get_app_role_assignments(graph, sps))
                if assignments is not None:
                    permissions = resolve_permissions(assignments, sps)
                    self.ok("app_role_assignments", transform_app_role_assignments(src, tenant, permissions))

        if "applications" in wanted:
            listing = self.fetch("applications", _NEEDS["applications"], lambda: get_applications(graph))
            if listing is not None:
                apps, owners = listing
                owners = {**owners, **{f"sp:{k}": v for k, v in sp_owners.items()}}
                self.ok("applications", transform_applications(src, tenant, apps, owners=owners, service_principals=sps,
                                                               permissions=permissions, sign_ins=sign_ins))
        if "service_principals" in wanted and sps is not None:
            self.ok("service_principals", transform_service_principals(src, tenant, sps, owners=sp_owners,
                                                                       permissions=permissions, sign_ins=sign_ins))

        if "users" in wanted:
            # Only ask for signInActivity where the tenant showed it may be read (P1/P2 + AuditLog.Read.All).
            users = self.fetch("users", _NEEDS["users"], lambda: get_users(graph, with_sign_in=sign_ins is not None))
            if users is not None:
                self.ok("users", transform_users(src, tenant, users))

