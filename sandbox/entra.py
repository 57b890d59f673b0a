"""A stateful, wire-compatible emulator of Microsoft Entra ID: its token endpoint and Graph.

One port serves both halves (``URL_SUFFIX = ""``): the client-credentials token endpoint
``POST /{tenant}/oauth2/v2.0/token`` (what ``login.microsoftonline.com`` does; a source's
``login_url`` is the server root) and Microsoft Graph under ``/v1.0`` and ``/beta`` (a source's
``base_url`` is the root plus ``/v1.0``). What it models, and why:

* **Client credentials.** An application of the tenant whose ``password_credentials`` entry has a
  ``secret`` can get a token; the token carries the application permissions (app role
  assignments to Microsoft Graph) of the app's service principal. Graph answers
  ``403 Authorization_RequestDenied`` when a permission is missing, as it does.
* **OData paging**: ``$top`` (default 100, at most 999), ``@odata.nextLink`` with an opaque
  ``$skiptoken``, built from the request's own host; ``$select`` projects properties. Users
  without ``$select`` show Graph's default property set (no ``accountEnabled``).
* **Throttling and errors** like Graph's: 429 with ``Retry-After`` and Graph error bodies
  (``{"error": {"code", "message", "innerError"}}``); token errors as AADSTS bodies.
* **Licensing**: sign-in activity (``/beta/reports/servicePrincipalSignInActivities`` and
  ``users?$select=signInActivity``) needs ``AuditLog.Read.All`` and an Entra ID P1/P2 tenant;
  ``sign_in_activity_licensed: false`` answers 403 as an unlicensed tenant does.
* **Never a secret on the wire**: ``secretText`` is always null; ``hint`` is the first three
  characters of a secret, as Graph shows it.

The estate section is ``entra:`` (see ``sandbox/README.md``). No ``from __future__ import
annotations`` here: the estate loader resolves the dataclass annotations as real objects.
"""

import base64
import hashlib
import json
import secrets as _secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal, Optional
from urllib.parse import parse_qsl, urlencode

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .emulator import Emulator, RequestFault, half, request_entry, request_fault, route_map
from .estate import Estate, Timestamp, _build

URL_SUFFIX = ""

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # owner of Microsoft's first-party apps
# Microsoft Graph application permissions (app roles) the emulator knows: value -> app role id.
GRAPH_APP_ROLES: dict[str, str] = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "AppRoleAssignment.ReadWrite.All": "06b708a9-e830-4db3-a914-8e69da51d44f",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    "Files.ReadWrite.All": "75359482-378d-4052-8f01-80520e7db3cd",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "Mail.Read": "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "RoleManagement.ReadWrite.Directory": "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
    "Sites.Read.All": "332a536c-c7ef-4017-ab91-336970924f0d",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
}
APP_READERS = ("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
USER_READERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
AUDIT_READERS = ("AuditLog.Read.All",)
USER_DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                           "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
TOKEN_TTL = 3599

EntraFaultKind = Literal["too_many_requests", "server_error", "forbidden", "timeout", "malformed_json"]


# --------------------------------------------------------------------------------------------
# Estate model


@dataclass
class EntraFault(RequestFault):
    """One injected failure for Graph requests made with tokens issued to one application."""

    fault: EntraFaultKind


@dataclass
class EntraPassword:
    display_name: Optional[str] = None
    key_id: Optional[str] = None
    start: Optional[Timestamp] = None
    end: Optional[Timestamp] = None
    secret: Optional[str] = None  # the value: lets the app get tokens; only its 3-char hint is served


@dataclass
class EntraCertificate:
    display_name: Optional[str] = None
    key_id: Optional[str] = None
    start: Optional[Timestamp] = None
    end: Optional[Timestamp] = None
    type: Literal["AsymmetricX509Cert", "Symmetric"] = "AsymmetricX509Cert"
    usage: Literal["Verify", "Sign"] = "Verify"


@dataclass
class EntraAppPrincipal:
    """The service principal of an application registered in this tenant."""

    id: Optional[str] = None
    account_enabled: bool = True
    owners: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)  # Microsoft Graph app role values
    last_sign_in: Optional[Timestamp] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class EntraApplication:
    display_name: str
    id: Optional[str] = None
    app_id: Optional[str] = None
    created: Optional[Timestamp] = None
    sign_in_audience: Literal["AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"] = "AzureADMyOrg"
    owners: list[str] = field(default_factory=list)  # user principal names or mails
    password_credentials: list[EntraPassword] = field(default_factory=list)
    key_credentials: list[EntraCertificate] = field(default_factory=list)
    service_principal: Optional[EntraAppPrincipal] = field(default_factory=EntraAppPrincipal)
    faults: list[EntraFault] = field(default_factory=list)


@dataclass
class EntraServicePrincipal:
    """A service principal with no application in this tenant: a third-party app or a managed identity."""

    display_name: str
    id: Optional[str] = None
    app_id: Optional[str] = None
    app_owner_organization_id: Optional[str] = None
    service_principal_type: Literal["Application", "ManagedIdentity", "Legacy", "SocialIdp"] = "Application"
    account_enabled: bool = True
    owners: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    last_sign_in: Optional[Timestamp] = None
    tags: list[str] = field(default_factory=list)
    password_credentials: list[EntraPassword] = field(default_factory=list)
    key_credentials: list[EntraCertificate] = field(default_factory=list)


@dataclass
class EntraUser:
    user_principal_name: str
    mail: Optional[str] = None
    id: Optional[str] = None
    display_name: Optional[str] = None
    account_enabled: bool = True
    created: Optional[Timestamp] = None
    last_sign_in: Optional[Timestamp] = None


@dataclass
class EntraEstate:
    tenant_id: Optional[str] = None
    sign_in_activity_licensed: bool = True
    users: list[EntraUser] = field(default_factory=list)
    applications: list[EntraApplication] = field(default_factory=list)
    service_principals: list[EntraServicePrincipal] = field(default_factory=list)

    def user(self, ref: Optional[str]) -> Optional[EntraUser]:
        low = (ref or "").lower()
        return next((u for u in self.users if low and low in (u.id, u.user_principal_name.lower(), (u.mail or "").lower())), None)


def guid(*parts: Any) -> str:
    """A stable GUID derived from where an object lives in the estate."""
    digest = hashlib.sha256("/".join(str(p).lower() for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def parse_estate(raw: Any, ctx: Any, path: str) -> EntraEstate:
    """Validate the ``entra:`` section, fill in ids and times, resolve permissions and owners."""
    state: EntraEstate = _build(EntraEstate, raw, path, ctx)
    now = ctx.now
    state.tenant_id = state.tenant_id or guid("tenant", "sandbox")
    ids: dict[str, str] = {}

    def unique(value: str, where: str) -> None:
        if value.lower() in ids:
            raise ctx.error(where, f"duplicate {value!r} (also at {ids[value.lower()]})")
        ids[value.lower()] = where

    def check_refs(refs: list[str], where: str) -> None:
        for k, ref in enumerate(refs):
            if state.user(ref) is None:
                raise ctx.error(f"{where}[{k}]", f"no user {ref!r} in entra.users")

    def check_permissions(perms: list[str], where: str) -> None:
        for k, p in enumerate(perms):
            if p not in GRAPH_APP_ROLES:
                raise ctx.error(f"{where}[{k}]", f"unknown Microsoft Graph application permission {p!r} "
                                                 f"(known: {', '.join(sorted(GRAPH_APP_ROLES))})")

    def finish_credentials(owner: Any, where: str, created: datetime) -> None:
        for k, pw in enumerate(owner.password_credentials):
            pw.key_id = pw.key_id or guid("password", where, k)
            pw.start = pw.start or created
            pw.end = pw.end or pw.start + timedelta(days=730)
        for k, cert in enumerate(owner.key_credentials):
            cert.key_id = cert.key_id or guid("certificate", where, k)
            cert.start = cert.start or created
            cert.end = cert.end or cert.start + timedelta(days=365)

    for i, u in enumerate(state.users):
        u.id = u.id or guid("user", u.user_principal_name)
        u.mail = u.mail if u.mail is not None else u.user_principal_name
        u.display_name = u.display_name or u.user_principal_name.split("@")[0]
        u.created = u.created or now
        unique(u.user_principal_name, f"{path}.users[{i}].user_principal_name")
        unique(u.id, f"{path}.users[{i}].id")
    for i, a in enumerate(state.applications):
        where = f"{path}.applications[{i}]"
        a.id = a.id or guid("application", a.display_name)
        a.app_id = a.app_id or guid("appId", a.display_name)
        a.created = a.created or now
        unique(a.id, f"{where}.id")
        unique(a.app_id, f"{where}.app_id")
        check_refs(a.owners, f"{where}.owners")
        finish_credentials(a, where, a.created)
        if a.service_principal is not None:
            sp = a.service_principal
            sp.id = sp.id or guid("servicePrincipal", a.app_id)
            unique(sp.id, f"{where}.service_principal.id")
            check_refs(sp.owners, f"{where}.service_principal.owners")
            check_permissions(sp.permissions, f"{where}.service_principal.permissions")
        for k, f in enumerate(a.faults):
            if not f.path.startswith("/"):
                raise ctx.error(f"{where}.faults[{k}].path", f"expected a path starting with '/', got {f.path!r}")
            f.method = f.method.upper() if f.method else None
    for i, sp in enumerate(state.service_principals):
        where = f"{path}.service_principals[{i}]"
        sp.id = sp.id or guid("servicePrincipal", sp.display_name)
        sp.app_id = sp.app_id or guid("appId", sp.display_name)
        if sp.service_principal_type == "ManagedIdentity":
            sp.app_owner_organization_id = None
        elif not sp.app_owner_organization_id:
            raise ctx.error(f"{where}.app_owner_organization_id",
                            "required for an Application service principal without an application here (the publisher's tenant id)")
        unique(sp.id, f"{where}.id")
        unique(sp.app_id, f"{where}.app_id")
        check_refs(sp.owners, f"{where}.owners")
        check_permissions(sp.permissions, f"{where}.permissions")
        finish_credentials(sp, where, now)
    return state


def build(estate: Estate, *, reload: Callable[[], Estate] | None = None, **_options: Any) -> "EntraEmulator":
    return EntraEmulator(estate, reload=reload)


# --------------------------------------------------------------------------------------------
# A flat view of the tenant's service principals, as Graph lists them


@dataclass
class _Principal:
    id: str
    app_id: str
    display_name: str
    owner_org: Optional[str]
    sp_type: str
    account_enabled: bool
    owners: list[str]
    permissions: list[str]
    last_sign_in: Optional[datetime]
    tags: list[str]
    passwords: list[EntraPassword]
    certificates: list[EntraCertificate]
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    application: Optional[EntraApplication] = None


def _graph_principal(tenant: str) -> _Principal:
    roles = [{"allowedMemberTypes": ["Application"], "description": f"Allows the app to {v} without a signed-in user.",
              "displayName": v, "id": rid, "isEnabled": True, "origin": "Application", "value": v}
             for v, rid in sorted(GRAPH_APP_ROLES.items())]
    return _Principal(id=guid("servicePrincipal", "microsoft graph", tenant), app_id=GRAPH_APP_ID, display_name="Microsoft Graph",
                      owner_org=MICROSOFT_TENANT, sp_type="Application", account_enabled=True, owners=[], permissions=[],
                      last_sign_in=None, tags=[], passwords=[], certificates=[], app_roles=roles)


def principals(state: EntraEstate) -> list[_Principal]:
    out = [_graph_principal(state.tenant_id or "")]
    for a in state.applications:
        sp = a.service_principal
        if sp is None:
            continue
        out.append(_Principal(id=sp.id or "", app_id=a.app_id or "", display_name=a.display_name, owner_org=state.tenant_id,
                              sp_type="Application", account_enabled=sp.account_enabled, owners=sp.owners,
                              permissions=sp.permissions, last_sign_in=sp.last_sign_in, tags=sp.tags, passwords=[],
                              certificates=[], application=a))
    for s in state.service_principals:
        out.append(_Principal(id=s.id or "", app_id=s.app_id or "", display_name=s.display_name, owner_org=s.app_owner_organization_id,
                              sp_type=s.service_principal_type, account_enabled=s.account_enabled, owners=s.owners,
                              permissions=s.permissions, last_sign_in=s.last_sign_in, tags=s.tags,
                              passwords=s.password_credentials, certificates=s.key_credentials))
    return out


# --------------------------------------------------------------------------------------------
# The WSGI app


def fmt(value: Optional[datetime]) -> Optional[str]:
    """Graph's timestamp format: ISO 8601 UTC, ``2026-11-01T00:00:00Z``."""
    return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class TokenError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str):
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


@dataclass
class _Issued:
    app: EntraApplication
    roles: frozenset[str]
    expires: float


@dataclass
class _Call:
    request: Request
    root: str
    path: str
    issued: Optional[_Issued] = None
    token: Optional[str] = None


class EntraEmulator(Emulator[EntraEstate]):
    """The Entra WSGI app. ``state`` is the live ``EntraEstate``; mutate it between calls.

    A reset keeps the tokens already issued: they stay valid while their app exists.
    """

    vendor = "entra"
    url_suffix = URL_SUFFIX

    def __init__(self, estate: Estate, *, reload: Callable[[], Estate] | None = None):
        super().__init__(estate, reload=reload)
        self._issued: dict[str, _Issued] = {}
        self.url_map = route_map(
            [
                Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
                Rule("/v1.0/applications", endpoint="list_applications"),
                Rule("/v1.0/applications/<object_id>/owners", endpoint="list_application_owners"),
                Rule("/v1.0/servicePrincipals", endpoint="list_service_principals"),
                Rule("/v1.0/servicePrincipals/<object_id>/owners", endpoint="list_service_principal_owners"),
                Rule("/v1.0/servicePrincipals/<object_id>/appRoleAssignments", endpoint="list_app_role_assignments"),
                Rule("/v1.0/users", endpoint="list_users"),
                Rule("/beta/reports/servicePrincipalSignInActivities", endpoint="list_sign_in_activities"),
            ]
        )

    # -- public Python API (the rest is ``Emulator``'s) ---------------------------------------

    @property
    def state(self) -> EntraEstate:
        return self._section(lambda: EntraEstate(tenant_id=guid("tenant", "sandbox")))

    # -- serving a call -------------------------------------------------------------------------

    def _crash_response(self) -> Response:
        return self._graph_error(GraphError(500, "generalException", "Emulator error"))

    def _begin(self, request: Request, path: str) -> _Call:
        return _Call(request=request, root=request.host_url.rstrip("/"), path=path)

    def _serve(self, call: _Call) -> tuple[Response, Optional[str]]:
        try:
            endpoint, args = self.url_map.bind("entra").match(call.path, method=call.request.method)
        except (NotFound, MethodNotAllowed):
            endpoint, args = None, {}
        if endpoint == "token":
            try:
                return self._token(call, args["tenant"]), None
            except TokenError as err:
                return self._token_error(err), None
        try:
            self._authenticate(call)
        except GraphError as err:
            return self._graph_error(err), None
        fault = self._pick_fault(call)
        if fault is not None and fault.fault not in ("timeout", "malformed_json"):
            return self._fault_response(fault), fault.fault
        self._stall(fault)
        if endpoint is None:
            segment = call.path.rstrip("/").rsplit("/", 1)[-1]
            return self._graph_error(GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")), None
        try:
            with self._lock:
                body = getattr(self, "h_" + endpoint)(call, **args)
        except GraphError as err:
            return self._graph_error(err), None
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = self._headers()
        if fault is not None and fault.fault == "malformed_json":
            return Response(half(payload), 200, headers, content_type="application/json"), "malformed_json"
        return Response(payload, 200, headers, content_type="application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"), None

    # -- token endpoint -------------------------------------------------------------------------

    def _token(self, call: _Call, tenant: str) -> Response:
        form = call.request.form
        state = self.state
        if tenant.lower() != (state.tenant_id or "").lower():
            raise TokenError(400, "invalid_request", 90002, f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003, "AADSTS70003: The app requested an unsupported grant type.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise TokenError(400, "invalid_scope", 1002012, "AADSTS1002012: The provided value for scope is not valid. "
                                                            "Client credential flows must have a scope value with /.default suffixed.")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        with self._lock:
            app = next((a for a in state.applications if a.app_id == client_id), None)
            if app is None:
                raise TokenError(400, "unauthorized_client", 700016,
                                 f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory.")
            match = next((p for p in app.password_credentials if p.secret and secret and _secrets.compare_digest(p.secret, secret)), None)
            if match is None:
                raise TokenError(401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided. "
                                 "Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
            if match.end is not None and match.end <= self.estate.now:
                raise TokenError(401, "invalid_client", 7000222, "AADSTS7000222: The provided client secret keys are expired.")
            sp = app.service_principal
            if sp is None or not sp.account_enabled:
                raise TokenError(400, "unauthorized_client", 7000112, "AADSTS7000112: Application is disabled.")
            token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + _secrets.token_urlsafe(48)
            self._issued[token] = _Issued(app=app, roles=frozenset(sp.permissions), expires=time.time() + TOKEN_TTL)
        call.token = token
        body = {"token_type": "Bearer", "expires_in": TOKEN_TTL, "ext_expires_in": TOKEN_TTL, "access_token": token}
        return Response(json.dumps(body), 200, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
                        content_type="application/json; charset=utf-8")

    def _token_error(self, err: TokenError) -> Response:
        body = {"error": err.error, "error_description": err.description, "error_codes": [err.code],
                "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"), "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()), "error_uri": "https://login.microsoftonline.com/error?code=" + str(err.code)}
        return Response(json.dumps(body), err.status, content_type="application/json; charset=utf-8")

    # -- Graph auth, faults, errors ---------------------------------------------------------------

    def _authenticate(self, call: _Call) -> None:
        header = call.request.headers.get("Authorization", "")
        scheme, _, value = header.strip().partition(" ")
        if not header or scheme.lower() != "bearer" or not value.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            issued = self._issued.get(value.strip())
            alive = issued is not None and issued.expires > time.time() and issued.app in self.state.applications
        if not alive:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        call.issued, call.token = issued, value.strip()

    def _require(self, call: _Call, any_of: tuple[str, ...]) -> None:
        if call.issued is None or not call.issued.roles & set(any_of):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def _require_sign_in_activity(self, call: _Call) -> None:
        self._require(call, AUDIT_READERS)
        if not self.state.sign_in_activity_licensed:
            raise GraphError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                             "Neither tenant is B2C or tenant doesn't have premium license")

    def _pick_fault(self, call: _Call) -> Optional[EntraFault]:
        app = call.issued.app if call.issued else None
        if app is None:
            return None
        return self._select_fault(str(app.app_id), app.faults, request_fault(call.request.method, call.path))

    def _fault_response(self, fault: EntraFault) -> Response:
        if fault.fault == "too_many_requests":
            return self._graph_error(GraphError(429, "TooManyRequests", "Too many requests.", {"Retry-After": str(fault.retry_after)}))
        if fault.fault == "forbidden":
            return self._graph_error(GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."))
        return self._graph_error(GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable."))

    def _headers(self) -> dict[str, str]:
        return {"request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4()),
                "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"SANDBOX"}}'}

    def _graph_error(self, err: GraphError) -> Response:
        headers = {**self._headers(), **err.headers}
        body = {"error": {"code": err.code, "message": err.message,
                          "innerError": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                                         "request-id": headers["request-id"], "client-request-id": headers["client-request-id"]}}}
        return Response(json.dumps(body), err.status, headers, content_type="application/json")

    # -- request log ---------------------------------------------------------------------------

    def _log_request(self, call: _Call, status: int, fault: Optional[str], elapsed: float) -> None:
        # The token endpoint's body holds a client secret: the log keeps neither body nor query values.
        client_id = call.issued.app.app_id if call.issued else None
        self._record(request_entry(call.request, call.path, call.token, status, fault, client_id=client_id))

    # -- OData ------------------------------------------------------------------------------------

    def _collection(self, call: _Call, items: list[dict[str, Any]], entity: str, *,
                    default_select: Optional[tuple[str, ...]] = None) -> dict[str, Any]:
        """One page of a collection: ``$select`` projection, ``$top`` and a ``$skiptoken`` next link."""
        args = call.request.args
        select = [s.strip() for s in args.get("$select", "").split(",") if s.strip()]
        if select:
            keep = {"id", *select}
            items = [{k: v for k, v in item.items() if k in keep or k.startswith("@odata")} for item in items]
        elif default_select:
            items = [{k: v for k, v in item.items() if k in default_select or k.startswith("@odata")} for item in items]
        try:
            top = int(args.get("$top", 100))
        except ValueError:
            raise GraphError(400, "BadRequest", "Invalid value for '$top' query option.") from None
        top = min(max(top, 1), 999)
        offset = 0
        skip = args.get("$skiptoken")
        if skip:
            try:
                offset = int(base64.urlsafe_b64decode(skip.encode() + b"==").decode().removeprefix("offset:"))
            except ValueError:
                raise GraphError(400, "BadRequest", "Invalid $skiptoken.") from None
        page = items[offset:offset + top]
        body: dict[str, Any] = {"@odata.context": f"{call.root}/{call.path.split('/')[1]}/$metadata#{entity}", "value": page}
        if offset + top < len(items):
            params = [(k, v) for k, v in parse_qsl(call.request.query_string.decode(), keep_blank_values=True) if k != "$skiptoken"]
            token = base64.urlsafe_b64encode(f"offset:{offset + top}".encode()).decode().rstrip("=")
            body["@odata.nextLink"] = f"{call.root}{call.path}?{urlencode(params + [('$skiptoken', token)], safe='$,')}"
        return body

    # -- Graph handlers -----------------------------------------------------------------------------

    def _password_json(self, p: EntraPassword) -> dict[str, Any]:
        return {"customKeyIdentifier": None, "displayName": p.display_name, "endDateTime": fmt(p.end),
                "hint": p.secret[:3] if p.secret else None, "keyId": p.key_id, "secretText": None, "startDateTime": fmt(p.start)}

    def _certificate_json(self, c: EntraCertificate) -> dict[str, Any]:
        thumb = hashlib.sha1(str(c.key_id).encode()).hexdigest().upper()  # noqa: S324 - a fake thumbprint
        return {"customKeyIdentifier": thumb, "displayName": c.display_name, "endDateTime": fmt(c.end), "key": None,
                "keyId": c.key_id, "startDateTime": fmt(c.start), "type": c.type, "usage": c.usage}

    def _owner_json(self, ref: str) -> Optional[dict[str, Any]]:
        u = self.state.user(ref)
        if u is None:
            return None
        return {"@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.display_name,
                "userPrincipalName": u.user_principal_name, "mail": u.mail or None}

    def h_list_applications(self, call: _Call) -> dict[str, Any]:
        self._require(call, APP_READERS)
        items = []
        for a in self.state.applications:
            items.append({
                "id": a.id, "appId": a.app_id, "displayName": a.display_name, "createdDateTime": fmt(a.created),
                "signInAudience": a.sign_in_audience, "publisherDomain": "acme.example", "deletedDateTime": None,
                "passwordCredentials": [self._password_json(p) for p in a.password_credentials],
                "keyCredentials": [self._certificate_json(c) for c in a.key_credentials],
                "requiredResourceAccess": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": [
                    {"id": GRAPH_APP_ROLES[p], "type": "Role"} for p in (a.service_principal.permissions if a.service_principal else [])]}],
            })
        return self._collection(call, items, "applications")

    def h_list_application_owners(self, call: _Call, object_id: str) -> dict[str, Any]:
        self._require(call, APP_READERS)
        app = next((a for a in self.state.applications if a.id == object_id), None)
        if app is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.")
        return self._collection(call, [o for o in map(self._owner_json, app.owners) if o], "directoryObjects")

    def _principal(self, object_id: str) -> _Principal:
        p = next((p for p in principals(self.state) if p.id == object_id), None)
        if p is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.")
        return p

    def h_list_service_principals(self, call: _Call) -> dict[str, Any]:
        self._require(call, APP_READERS)
        items = [{
            "id": p.id, "appId": p.app_id, "displayName": p.display_name, "servicePrincipalType": p.sp_type,
            "accountEnabled": p.account_enabled, "appOwnerOrganizationId": p.owner_org, "deletedDateTime": None,
            "appRoles": p.app_roles, "tags": list(p.tags),
            "passwordCredentials": [self._password_json(x) for x in p.passwords],
            "keyCredentials": [self._certificate_json(x) for x in p.certificates],
        } for p in principals(self.state)]
        return self._collection(call, items, "servicePrincipals")

    def h_list_service_principal_owners(self, call: _Call, object_id: str) -> dict[str, Any]:
        self._require(call, APP_READERS)
        p = self._principal(object_id)
        return self._collection(call, [o for o in map(self._owner_json, p.owners) if o], "directoryObjects")

    def h_list_app_role_assignments(self, call: _Call, object_id: str) -> dict[str, Any]:
        self._require(call, APP_READERS)
        p = self._principal(object_id)
        graph = _graph_principal(self.state.tenant_id or "")
        created = p.application.created if p.application else self.estate.now
        items = [{
            "id": base64.urlsafe_b64encode(hashlib.sha256(f"{p.id}/{perm}".encode()).digest()[:24]).decode().rstrip("="),
            "deletedDateTime": None, "appRoleId": GRAPH_APP_ROLES[perm], "createdDateTime": fmt(created),
            "principalDisplayName": p.display_name, "principalId": p.id, "principalType": "ServicePrincipal",
            "resourceDisplayName": graph.display_name, "resourceId": graph.id,
        } for perm in p.permissions]
        return self._collection(call, items, f"servicePrincipals('{p.id}')/appRoleAssignments")

    def h_list_users(self, call: _Call) -> dict[str, Any]:
        self._require(call, USER_READERS)
        select = call.request.args.get("$select", "")
        if "signinactivity" in select.lower():
            self._require_sign_in_activity(call)
        items = []
        for u in self.state.users:
            items.append({
                "businessPhones": [], "displayName": u.display_name, "givenName": None, "jobTitle": None, "mail": u.mail or None,
                "mobilePhone": None, "officeLocation": None, "preferredLanguage": None, "surname": None,
                "userPrincipalName": u.user_principal_name, "id": u.id, "accountEnabled": u.account_enabled,
                "createdDateTime": fmt(u.created),
                "signInActivity": {"lastSignInDateTime": fmt(u.last_sign_in), "lastSignInRequestId": None,
                                   "lastNonInteractiveSignInDateTime": None, "lastNonInteractiveSignInRequestId": None,
                                   "lastSuccessfulSignInDateTime": fmt(u.last_sign_in), "lastSuccessfulSignInRequestId": None},
            })
        return self._collection(call, items, "users", default_select=USER_DEFAULT_PROPERTIES)

    def h_list_sign_in_activities(self, call: _Call) -> dict[str, Any]:
        self._require_sign_in_activity(call)
        items = []
        for p in principals(self.state):
            if p.last_sign_in is None:
                continue
            seen = {"lastSignInDateTime": fmt(p.last_sign_in), "lastSignInRequestId": str(uuid.uuid5(uuid.NAMESPACE_URL, p.id))}
            items.append({
                "id": base64.urlsafe_b64encode(p.app_id.encode()).decode().rstrip("="), "appId": p.app_id,
                "lastSignInActivity": seen, "applicationAuthenticationClientSignInActivity": seen,
                "applicationAuthenticationResourceSignInActivity": {"lastSignInDateTime": None, "lastSignInRequestId": None},
                "delegatedClientSignInActivity": {"lastSignInDateTime": None, "lastSignInRequestId": None},
                "delegatedResourceSignInActivity": {"lastSignInDateTime": None, "lastSignInRequestId": None},
            })
        return self._collection(call, items, "reports/servicePrincipalSignInActivities")
