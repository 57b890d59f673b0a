"""A stateful, wire-compatible emulator of the GitHub REST API (the parts nhiscan reads).

It is a plain WSGI app built on werkzeug's routing. It serves the API both under the GitHub
Enterprise Server prefix ``/api/v3`` (so PyGithub's ``base_url`` works unchanged) and at the root
(github.com style). Every URL it returns, including ``Link`` pagination headers, is built from the
request's own ``Host`` so PyGithub's same-host check passes.

What it models, and why:

* **Auth like GitHub.** Classic PATs from the estate (scopes echoed in ``X-OAuth-Scopes`` and
  enforced), GitHub App JWTs (RS256, verified with the app's public key) exchanged for
  installation tokens (``ghs_...``) that carry the app's permissions and only see their own
  org. Unknown tokens get 401 ``Bad credentials``. Endpoints the scanner cares about answer
  missing rights the way GitHub does (403, 404 or 422, see ``sandbox/README.md``), because
  "a failed source is not an empty source" can only be tested against an API that fails.
* **Pagination** with ``per_page`` (default 30, clamped to 100), ``page`` and ``Link`` headers.
* **Rate-limit and cache headers** (``X-RateLimit-*``, ``ETag``; ``If-None-Match`` gives 304).
* **Fault injection** per token: secondary rate limits, 429s, 500s, slow responses, truncated
  JSON, shaped so PyGithub's ``GithubRetry`` reacts as it would against GitHub.
* **A control plane** under ``/_emu/`` (request log, reset) for tests.

The estate graph (``sandbox.estate.GitHubEstate``) is read on every request, so a test can mutate
``emulator.state`` and the next call sees it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as _secrets
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .emulator import (
    Emulator,
    half,
    json_response,
    link_header,
    numbered_page,
    page_url,
    request_entry,
    request_fault,
    route_map,
)
from .estate import (
    App,
    Estate,
    Fault,
    GitHubEstate,
    Hook,
    Installation,
    Org,
    Repo,
    Runner,
    format_time,
    parse_time,
)

API_PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"
API_VERSION = "2022-11-28"
JSON_TYPE = "application/json; charset=utf-8"

# Classic scopes imply narrower ones, as on GitHub.
_SCOPE_IMPLIES = {
    "repo": {"public_repo", "repo:status", "repo_deployment", "repo:invite", "security_events"},
    "admin:org": {"write:org", "read:org", "manage_runners:org"},
    "write:org": {"read:org"},
    "admin:repo_hook": {"write:repo_hook", "read:repo_hook"},
    "write:repo_hook": {"read:repo_hook"},
    "admin:public_key": {"write:public_key", "read:public_key"},
    "write:public_key": {"read:public_key"},
    "user": {"read:user", "user:email", "user:follow"},
    "admin:gpg_key": {"write:gpg_key", "read:gpg_key"},
    "write:gpg_key": {"read:gpg_key"},
    "write:packages": {"read:packages"},
    "write:discussion": {"read:discussion"},
    "project": {"read:project"},
    "admin:enterprise": {"manage_runners:enterprise", "manage_billing:enterprise", "read:enterprise"},
    "audit_log": {"read:audit_log"},
}
READ_ORG = ("read:org", "write:org", "admin:org")
_LEVELS = {"read": 1, "write": 2, "admin": 3}
_REPO_LEVELS = {"pull": 1, "triage": 2, "push": 3, "maintain": 4, "admin": 5}
_ROLE_NAMES = {"pull": "read", "triage": "triage", "push": "write", "maintain": "maintain", "admin": "admin"}
_BASE_PERMISSION = {"read": "pull", "write": "push", "admin": "admin", "none": None}

SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
INSTALLATION_TOKEN_TTL = timedelta(hours=1)


def _expand_scopes(scopes: list[str]) -> frozenset[str]:
    out: set[str] = set()
    todo = list(scopes)
    while todo:
        s = todo.pop()
        if s not in out:
            out.add(s)
            todo.extend(_SCOPE_IMPLIES.get(s, ()))
    return frozenset(out)


def _node_id(kind: str, ident: int) -> str:
    """GitHub's legacy global node id: base64 of '<len(kind):02>:<kind><id>'."""
    return base64.b64encode(f"{len(kind):02d}:{kind}{ident}".encode()).decode()


class ApiError(Exception):
    """Raised by handlers; becomes a GitHub-shaped JSON error response."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


@dataclass
class IssuedToken:
    """An installation access token handed out by ``POST /app/installations/{id}/access_tokens``."""

    token: str
    app_id: int
    installation_id: int
    org: str
    permissions: dict[str, str]
    repositories: list[str] | None  # None = every repository of the org
    expires_at: datetime


@dataclass
class Principal:
    kind: str  # "pat" | "installation" | "jwt"
    token: str
    login: str | None = None
    scopes: list[str] = field(default_factory=list)
    effective_scopes: frozenset[str] = frozenset()
    app: App | None = None
    installation: IssuedToken | None = None
    faults: list[Fault] = field(default_factory=list)
    rate_limit: int = 5000
    expires_at: datetime | None = None


@dataclass
class Result:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    request: Request
    principal: Principal | None
    base: str  # API base URL, e.g. http://127.0.0.1:5000/api/v3
    web: str  # web root, e.g. http://127.0.0.1:5000
    path: str  # API path without prefix or query, e.g. /orgs/acme/members
    accepted_scopes: tuple[str, ...] = ()
    accepted_permissions: str | None = None


class GitHubEmulator(Emulator[GitHubEstate]):
    """The GitHub WSGI app. ``state`` is the live estate graph; mutate it between calls."""

    vendor = "github"
    url_suffix = API_PREFIX
    control_content_type = JSON_TYPE
    control_head_is_get = True

    def __init__(
        self,
        estate: Estate,
        *,
        app_keys: dict[int | str, Any] | None = None,
        reload: Callable[[], Estate] | None = None,
    ):
        super().__init__(estate, reload=reload)
        self._app_keys: dict[str, Any] = {}
        for app_id, key in (app_keys or {}).items():
            self.register_app_key(app_id, key)
        self._issued: dict[str, IssuedToken] = {}
        self._rate: dict[str, list[int]] = {}  # key -> [window_reset_epoch, used]
        self.url_map = route_map(
            [
                Rule("/", endpoint="root"),
                Rule("/user", endpoint="get_authenticated_user"),
                Rule("/users/<username>", endpoint="get_user"),
                Rule("/user/memberships/orgs/<org>", endpoint="get_my_membership"),
                Rule("/orgs/<org>", endpoint="get_org"),
                Rule("/orgs/<org>/members", endpoint="list_members"),
                Rule("/orgs/<org>/members/<username>", endpoint="check_member"),
                Rule("/orgs/<org>/memberships/<username>", endpoint="get_membership"),
                Rule("/orgs/<org>/outside_collaborators", endpoint="list_outside_collaborators"),
                Rule("/orgs/<org>/repos", endpoint="list_org_repos"),
                Rule("/orgs/<org>/hooks", endpoint="list_org_hooks"),
                Rule("/orgs/<org>/hooks/<int:hook_id>", endpoint="get_org_hook"),
                Rule("/orgs/<org>/installations", endpoint="list_org_installations"),
                Rule("/orgs/<org>/installation", endpoint="get_org_installation"),
                Rule("/orgs/<org>/personal-access-tokens", endpoint="list_pat_grants"),
                Rule("/orgs/<org>/personal-access-tokens/<int:pat_id>/repositories", endpoint="list_pat_grant_repos"),
                Rule("/orgs/<org>/credential-authorizations", endpoint="list_credential_authorizations"),
                Rule("/orgs/<org>/actions/secrets", endpoint="list_org_secrets"),
                Rule("/orgs/<org>/actions/secrets/<name>/repositories", endpoint="list_org_secret_repos"),
                Rule("/orgs/<org>/actions/variables", endpoint="list_org_variables"),
                Rule("/orgs/<org>/actions/variables/<name>/repositories", endpoint="list_org_variable_repos"),
                Rule("/orgs/<org>/actions/runners", endpoint="list_org_runners"),
                Rule("/repos/<owner>/<repo>", endpoint="get_repo"),
                Rule("/repos/<owner>/<repo>/collaborators", endpoint="list_collaborators"),
                Rule("/repos/<owner>/<repo>/keys", endpoint="list_deploy_keys"),
                Rule("/repos/<owner>/<repo>/keys/<int:key_id>", endpoint="get_deploy_key"),
                Rule("/repos/<owner>/<repo>/hooks", endpoint="list_repo_hooks"),
                Rule("/repos/<owner>/<repo>/hooks/<int:hook_id>", endpoint="get_repo_hook"),
                Rule("/repos/<owner>/<repo>/actions/secrets", endpoint="list_repo_secrets"),
                Rule("/repos/<owner>/<repo>/actions/variables", endpoint="list_repo_variables"),
                Rule("/repos/<owner>/<repo>/actions/runners", endpoint="list_repo_runners"),
                Rule("/repos/<owner>/<repo>/environments", endpoint="list_environments"),
                Rule("/repos/<owner>/<repo>/environments/<env>", endpoint="get_environment"),
                Rule("/repos/<owner>/<repo>/environments/<env>/secrets", endpoint="list_env_secrets"),
                Rule("/repos/<owner>/<repo>/environments/<env>/variables", endpoint="list_env_variables"),
                Rule("/app", endpoint="get_app"),
                Rule("/app/installations", endpoint="list_app_installations"),
                Rule("/app/installations/<int:installation_id>", endpoint="get_app_installation"),
                Rule(
                    "/app/installations/<int:installation_id>/access_tokens",
                    endpoint="create_installation_token",
                    methods=["POST"],
                ),
                Rule("/installation/repositories", endpoint="list_installation_repos"),
                Rule("/rate_limit", endpoint="get_rate_limit"),
            ]
        )

    # ------------------------------------------------------------------------------------
    # Public Python API

    @property
    def state(self) -> GitHubEstate:
        """The live estate graph this emulator serves (a plain dataclass tree)."""
        return self.estate.github

    def set_estate(self, estate: Estate) -> None:
        """Swap in a freshly loaded estate (used by reset). Issued installation tokens survive."""
        with self._lock:
            super().set_estate(estate)
            self._rate.clear()

    def register_app_key(self, app_id: int | str, key: Any) -> None:
        """Register a GitHub App's key: public or private PEM (str/bytes) or a cryptography key."""
        self._app_keys[str(app_id)] = _public_key(key)

    def issue_installation_token(self, installation_id: int, permissions: dict[str, str] | None = None) -> str:
        """Mint an installation token directly (skipping the JWT dance), for tests that need one."""
        with self._lock:
            app, org = self._find_app_installation(installation_id)
            if app is None or org is None:
                raise KeyError(f"no app installation {installation_id}")
            return self._mint(app, installation_id, org, permissions or {}, None).token

    # ------------------------------------------------------------------------------------
    # Serving a call

    def _crash_response(self) -> Response:
        return _json_response({"message": "Emulator error", "documentation_url": DOCS}, 500)

    def _route_path(self, request: Request) -> str:
        """The API path without the Enterprise Server prefix ``/api/v3`` (both forms are served)."""
        return _split_prefix(request.path)[1]

    def _begin(self, request: Request, path: str) -> Ctx:
        web = request.host_url.rstrip("/")
        return Ctx(request=request, principal=None, base=web + _split_prefix(request.path)[0], web=web, path=path)

    def _serve(self, ctx: Ctx) -> tuple[Response, str | None]:
        request = ctx.request
        request_id = _request_id()
        try:
            ctx.principal = self._authenticate(request)
        except ApiError as e:
            return self._error_response(ctx, e, request_id), None
        principal = ctx.principal

        rate, exceeded = self._count_request(ctx, count=ctx.path != "/rate_limit")
        if principal is not None and exceeded:
            err = ApiError(
                403,
                f"API rate limit exceeded for user ID {self._rate_subject_id(principal)}.",
                documentation_url="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            return self._error_response(ctx, err, request_id, rate), None

        fault = self._pick_fault(ctx)
        if fault is not None and fault.fault != "timeout" and fault.fault != "malformed_json":
            return self._fault_response(ctx, fault, request_id, rate), fault.fault
        self._stall(fault)

        try:
            adapter = self.url_map.bind(ctx.request.host, url_scheme=ctx.request.scheme)
            endpoint, args = adapter.match(ctx.path, method=request.method)
            if principal is None and endpoint not in ("get_rate_limit", "root"):
                raise ApiError(401, "Requires authentication")
            handler = getattr(self, "h_" + endpoint)
            with self._lock:
                result = handler(ctx, **args)
        except (NotFound, MethodNotAllowed):
            if principal is None:
                err = ApiError(401, "Requires authentication")
            else:
                err = ApiError(404, "Not Found")
            return self._error_response(ctx, err, request_id, rate), None
        except ApiError as e:
            return self._error_response(ctx, e, request_id, rate), None

        if result.status == 204:
            return Response(b"", status=204, headers=self._common_headers(ctx, request_id, rate)), None
        body = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = self._common_headers(ctx, request_id, rate)
        headers.update(result.headers)
        etag = 'W/"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        headers["ETag"] = etag
        if fault is not None and fault.fault == "malformed_json":
            return Response(half(body), status=200, headers=headers, content_type=JSON_TYPE), "malformed_json"
        if result.status == 200 and request.method in ("GET", "HEAD") and _etag_matches(request.headers.get("If-None-Match"), etag):
            self._uncount(ctx)
            headers.update(self._count_request(ctx, count=False)[0])
            return Response(b"", status=304, headers=headers), None
        return Response(body, status=result.status, headers=headers, content_type=JSON_TYPE), None

    # ------------------------------------------------------------------------------------
    # Request log

    def _log_request(self, ctx: Ctx, status: int, fault: str | None, elapsed: float) -> None:
        p = ctx.principal
        credential = p.token if p else _raw_credential(ctx.request)
        entry = request_entry(ctx.request, ctx.path, credential, status, fault, auth=p.kind if p else None)
        self._record(entry, elapsed=elapsed)

    # ------------------------------------------------------------------------------------
    # Authentication

    def _authenticate(self, request: Request) -> Principal | None:
        credential = _raw_credential(request)
        if credential is None:
            return None
        state = self.state
        with self._lock:
            tok = state.token(credential)
            if tok is not None:
                if tok.expires_at is not None and tok.expires_at <= datetime.now(timezone.utc):
                    raise ApiError(401, "Bad credentials")
                return Principal(
                    kind="pat",
                    token=credential,
                    login=tok.login,
                    scopes=list(tok.scopes),
                    effective_scopes=_expand_scopes(tok.scopes),
                    faults=tok.faults,
                    rate_limit=5000,
                    expires_at=tok.expires_at,
                )
            issued = self._issued.get(credential)
            if issued is not None:
                if issued.expires_at <= datetime.now(timezone.utc):
                    raise ApiError(401, "Bad credentials")
                app = state.app(issued.app_id)
                if app is None or issued.installation_id not in app.installations.values():
                    raise ApiError(401, "Bad credentials")
                return Principal(
                    kind="installation",
                    token=credential,
                    app=app,
                    installation=issued,
                    faults=app.faults,
                    rate_limit=15000,
                )
        if credential.count(".") == 2 and credential.startswith("eyJ"):
            app = self._verify_jwt(credential)
            return Principal(kind="jwt", token=credential, app=app, faults=app.faults, rate_limit=5000)
        raise ApiError(401, "Bad credentials")

    def _verify_jwt(self, token: str) -> App:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        app = self.state.app(claims.get("iss", ""))
        if app is None:
            raise ApiError(401, "Integration not found")
        key = self._app_keys.get(str(app.id))
        if key is None and app.public_key:
            try:
                key = _public_key(app.public_key)
            except ValueError:
                key = None
        if key is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=60,
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            ) from None
        except jwt.ImmatureSignatureError:
            raise ApiError(
                401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
            ) from None
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        if int(claims["exp"]) - time.time() > 600 + 60:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        return app

    # ------------------------------------------------------------------------------------
    # Rate limiting, faults, headers

    def _rate_key(self, ctx: Ctx) -> str:
        p = ctx.principal
        if p is None:
            return "anon:" + (ctx.request.remote_addr or "?")
        if p.kind == "installation":
            return f"installation:{p.installation.installation_id}"  # type: ignore[union-attr]
        if p.kind == "jwt":
            return f"app:{p.app.id}"  # type: ignore[union-attr]
        return f"user:{(p.login or '').lower()}"

    def _rate_subject_id(self, p: Principal) -> int:
        if p.kind == "pat" and p.login:
            return self._user_id(p.login)
        return p.app.id if p.app else 0

    def _count_request(self, ctx: Ctx, *, count: bool) -> tuple[dict[str, str], bool]:
        """Count one request against the caller's hourly window; return headers and 'exhausted'."""
        p = ctx.principal
        limit = p.rate_limit if p else 60
        key = self._rate_key(ctx)
        now = int(time.time())
        with self._lock:
            window = self._rate.get(key)
            if window is None or window[0] <= now:
                window = self._rate[key] = [now + 3600, 0]
            exceeded = window[1] >= limit
            if count and not exceeded:
                window[1] += 1
            used = window[1]
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
            "X-RateLimit-Reset": str(window[0]),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        }
        return headers, count and exceeded

    def _uncount(self, ctx: Ctx) -> None:
        """A 304 to an authenticated request does not count against the primary limit."""
        if ctx.principal is None:
            return
        with self._lock:
            window = self._rate.get(self._rate_key(ctx))
            if window and window[1] > 0:
                window[1] -= 1

    def _pick_fault(self, ctx: Ctx) -> Fault | None:
        p = ctx.principal
        if p is None or not p.faults:
            return None
        identity = p.token if p.kind == "pat" else f"app:{p.app.id}"  # type: ignore[union-attr]
        return self._select_fault(identity, p.faults, request_fault(ctx.request.method, ctx.path))

    def _fault_response(self, ctx: Ctx, fault: Fault, request_id: str, rate: dict[str, str]) -> Response:
        headers = self._common_headers(ctx, request_id, rate)
        if fault.fault in ("rate_limit", "too_many_requests"):
            headers["Retry-After"] = str(fault.retry_after)
            body = {
                "message": SECONDARY_RATE_LIMIT_MESSAGE.format(request_id=request_id),
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }
            status = 403 if fault.fault == "rate_limit" else 429
        elif fault.fault == "primary_rate_limit":
            reset = int(time.time()) + fault.retry_after
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            subject = self._rate_subject_id(ctx.principal) if ctx.principal else 0
            body = {
                "message": f"API rate limit exceeded for user ID {subject}.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }
            status = 403
        else:  # server_error
            body = {"message": "Server Error"}
            status = 500
        return Response(json.dumps(body), status=status, headers=headers, content_type=JSON_TYPE)

    def _common_headers(self, ctx: Ctx, request_id: str, rate: dict[str, str]) -> dict[str, str]:
        headers = {
            "X-GitHub-Request-Id": request_id,
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": API_VERSION,
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            "Access-Control-Expose-Headers": "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
            "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, "
            "X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id",
        }
        headers.update(rate)
        p = ctx.principal
        if p is not None and p.kind == "pat":
            headers["X-OAuth-Scopes"] = ", ".join(p.scopes)
            headers["X-Accepted-OAuth-Scopes"] = ", ".join(ctx.accepted_scopes)
            if p.expires_at is not None:
                headers["GitHub-Authentication-Token-Expiration"] = p.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if p is not None and p.kind == "installation" and ctx.accepted_permissions:
            headers["X-Accepted-GitHub-Permissions"] = ctx.accepted_permissions
        return headers

    def _error_response(
        self, ctx: Ctx, err: ApiError, request_id: str, rate: dict[str, str] | None = None
    ) -> Response:
        body: dict[str, Any] = {"message": err.message, "documentation_url": err.extra.pop("documentation_url", DOCS)}
        body.update(err.extra)
        body["status"] = str(err.status)
        headers = self._common_headers(ctx, request_id, rate or {})
        headers.update(err.headers)
        if err.status == 401:
            headers.pop("X-OAuth-Scopes", None)
        return Response(
            json.dumps(body), status=err.status, headers=headers, content_type=JSON_TYPE
        )

    # ------------------------------------------------------------------------------------
    # Access checks shared by the handlers

    def _org(self, login: str) -> Org:
        org = self.state.org(login)
        if org is None:
            raise ApiError(404, "Not Found")
        return org

    def _need_token_principal(self, ctx: Ctx) -> Principal:
        p = ctx.principal
        assert p is not None
        if p.kind == "jwt":
            raise ApiError(
                403,
                "Resource not accessible by integration: authenticate as an installation (exchange the JWT at "
                "POST /app/installations/{installation_id}/access_tokens)",
            )
        return p

    def _org_role(self, p: Principal, org: Org) -> str | None:
        """'admin' (owner), 'member' or None for a classic token's user."""
        if p.kind != "pat" or p.login is None:
            return None
        member = org.member(p.login)
        return member.role if member else None

    def _has_scope(self, ctx: Ctx, *accepted: str) -> bool:
        ctx.accepted_scopes = tuple(accepted)
        p = ctx.principal
        return p is not None and any(s in p.effective_scopes for s in accepted)

    def _app_org_check(self, p: Principal, org: Org) -> None:
        """Installation tokens only see their own org."""
        if p.kind == "installation" and p.installation and p.installation.org.lower() != org.login.lower():
            raise ApiError(404, "Not Found")

    def _app_has(self, ctx: Ctx, *names: str, level: str = "read") -> bool:
        p = ctx.principal
        assert p is not None and p.installation is not None
        ctx.accepted_permissions = ", ".join(f"{n}={level}" for n in names)
        perms = p.installation.permissions
        return any(_LEVELS.get(perms.get(n, ""), 0) >= _LEVELS[level] for n in names)

    def _app_need(self, ctx: Ctx, *names: str, level: str = "read") -> None:
        if not self._app_has(ctx, *names, level=level):
            raise ApiError(403, "Resource not accessible by integration")

    def _repo_permission(self, p: Principal, org: Org, repo: Repo) -> str | None:
        """The caller's effective permission on a repo: pull < triage < push < maintain < admin."""
        if p.kind == "installation":
            inst = p.installation
            assert inst is not None
            if inst.org.lower() != org.login.lower():
                return None
            if inst.repositories is not None and repo.name.lower() not in {r.lower() for r in inst.repositories}:
                return None
            return "pull"  # apps act through their permissions, checked separately
        if p.kind != "pat" or p.login is None:
            return None
        candidates: list[str] = []
        member = org.member(p.login)
        if member is not None:
            if member.role == "admin":
                return "admin"
            base = _BASE_PERMISSION[org.default_repository_permission]
            if base:
                candidates.append(base)
        for login, perm in repo.collaborators.items():
            if login.lower() == p.login.lower():
                candidates.append(perm)
        outside = org.outside_collaborator(p.login)
        if outside is not None:
            for name, perm in outside.repos.items():
                if name.lower() == repo.name.lower():
                    candidates.append(perm)
        if not candidates:
            return None
        return max(candidates, key=lambda x: _REPO_LEVELS[x])

    def _visible_repo(self, ctx: Ctx, org: Org, repo: Repo) -> bool:
        p = ctx.principal
        assert p is not None
        if p.kind == "installation":
            return self._repo_permission(p, org, repo) is not None
        if not repo.private:
            return True
        return self._repo_permission(p, org, repo) is not None and "repo" in p.effective_scopes

    def _repo(self, ctx: Ctx, owner: str, name: str) -> tuple[Org, Repo]:
        self._need_token_principal(ctx)
        org = self.state.org(owner)
        repo = org.repo(name) if org else None
        if org is None or repo is None or not self._visible_repo(ctx, org, repo):
            raise ApiError(404, "Not Found")
        return org, repo

    def _repo_admin(self, ctx: Ctx, owner: str, name: str, *, scopes: tuple[str, ...], app_perm: tuple[str, ...],
                    denied: int = 404) -> tuple[Org, Repo]:
        """Repo endpoints reserved to repo admins (keys, hooks, secrets, runners)."""
        org, repo = self._repo(ctx, owner, name)
        p = ctx.principal
        assert p is not None
        if p.kind == "installation":
            self._app_need(ctx, *app_perm)
            return org, repo
        ok_scope = self._has_scope(ctx, *scopes)
        is_admin = self._repo_permission(p, org, repo) == "admin"
        if not (ok_scope and is_admin):
            if denied == 404:
                raise ApiError(404, "Not Found")
            raise ApiError(denied, "Must have admin rights to Repository.")
        return org, repo

    def _org_owner_only(self, ctx: Ctx, org_login: str, *, scopes: tuple[str, ...], app_perm: tuple[str, ...],
                        denied: int = 403, message: str = "You must be an organization owner to use this endpoint.") -> Org:
        p = self._need_token_principal(ctx)
        org = self._org(org_login)
        if p.kind == "installation":
            self._app_org_check(p, org)
            self._app_need(ctx, *app_perm)
            return org
        ok_scope = self._has_scope(ctx, *scopes)
        if self._org_role(p, org) != "admin" or not ok_scope:
            if denied == 404:
                raise ApiError(404, "Not Found")
            raise ApiError(denied, message)
        return org

    # ------------------------------------------------------------------------------------
    # Pagination

    def _page(self, ctx: Ctx, items: list, *, wrap: str | None = None, extra: dict | None = None) -> Result:
        args = ctx.request.args
        window = numbered_page(args, len(items), default_size=30)
        page, last = window.page, window.last
        # GitHub repeats ``per_page`` in its links only when the request gave one.
        sized = [("per_page", str(window.per_page))] if "per_page" in args else []

        def at(p: int) -> str:
            return page_url(ctx.base + ctx.path, args, *sized, ("page", str(p)))

        links = []
        if page > 1:
            links.append((at(window.prev), "prev"))
        if page < last:
            links += [(at(page + 1), "next"), (at(last), "last")]
        if page > 1:
            links.append((at(1), "first"))
        headers = {"Link": link_header(links)} if links else {}
        chunk = window.chunk(items)
        if wrap is None:
            return Result(chunk, headers=headers)
        body: dict[str, Any] = {"total_count": window.total, wrap: chunk}
        body.update(extra or {})
        return Result(body, headers=headers)

    # ------------------------------------------------------------------------------------
    # JSON builders (shapes follow the pinned OpenAPI description)

    def _person(self, login: str) -> Any | None:
        gh = self.state
        u = gh.user(login)
        if u is not None:
            return u
        for org in gh.orgs:
            m = org.member(login) or org.outside_collaborator(login)
            if m is not None:
                return m
        return None

    def _user_id(self, login: str) -> int:
        person = self._person(login)
        if person is not None and person.id is not None:
            return person.id
        return 100_000 + int(hashlib.sha256(login.lower().encode()).hexdigest()[:7], 16)

    def simple_user(self, ctx: Ctx, login: str) -> dict[str, Any]:
        person = self._person(login)
        uid = self._user_id(login)
        login = person.login if person is not None else login
        kind = getattr(person, "type", "User") if person is not None else "User"
        u = f"{ctx.base}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("Bot" if kind == "Bot" else "User", uid),
            "avatar_url": f"{ctx.web}/avatars/u/{uid}?v=4",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{ctx.web}/{login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": bool(getattr(person, "site_admin", False)),
        }

    def _org_as_user(self, ctx: Ctx, org: Org) -> dict[str, Any]:
        """An org in a simple-user slot (repo owner, installation account)."""
        u = f"{ctx.base}/users/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": _node_id("Organization", org.id or 0),
            "avatar_url": f"{ctx.web}/avatars/u/{org.id}?v=4",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{ctx.web}/{org.login}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": "Organization",
            "user_view_type": "public",
            "site_admin": False,
        }

    def full_user(self, ctx: Ctx, login: str, *, private: bool) -> dict[str, Any]:
        person = self._person(login)
        body = self.simple_user(ctx, login)
        body.update(
            {
                "name": getattr(person, "name", None),
                "company": None,
                "blog": "",
                "location": None,
                "email": getattr(person, "email", None),
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": 0,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": format_time(getattr(person, "created_at", None) or self.estate.now),
                "updated_at": format_time(getattr(person, "updated_at", None) or self.estate.now),
            }
        )
        if private:
            body.update(
                {
                    "user_view_type": "private",
                    "private_gists": 0,
                    "total_private_repos": 0,
                    "owned_private_repos": 0,
                    "disk_usage": 0,
                    "collaborators": 0,
                    "two_factor_authentication": bool(getattr(person, "two_factor", True)),
                }
            )
        return body

    def _org_simple(self, ctx: Ctx, org: Org) -> dict[str, Any]:
        o = f"{ctx.base}/orgs/{org.login}"
        return {
            "login": org.login,
            "id": org.id,
            "node_id": _node_id("Organization", org.id or 0),
            "url": o,
            "repos_url": f"{o}/repos",
            "events_url": f"{o}/events",
            "hooks_url": f"{o}/hooks",
            "issues_url": f"{o}/issues",
            "members_url": f"{o}/members{{/member}}",
            "public_members_url": f"{o}/public_members{{/member}}",
            "avatar_url": f"{ctx.web}/avatars/u/{org.id}?v=4",
            "description": org.description,
        }

    def _org_full(self, ctx: Ctx, org: Org, *, owner_view: bool) -> dict[str, Any]:
        body = self._org_simple(ctx, org)
        body.update(
            {
                "name": org.name,
                "is_verified": False,
                "has_organization_projects": True,
                "has_repository_projects": True,
                "public_repos": sum(1 for r in org.repos if not r.private),
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "html_url": f"{ctx.web}/{org.login}",
                "type": "Organization",
                "created_at": format_time(org.created_at),
                "updated_at": format_time(org.updated_at),
                "archived_at": None,
            }
        )
        if org.email:
            body["email"] = org.email
        if owner_view:
            private = sum(1 for r in org.repos if r.private)
            body.update(
                {
                    "total_private_repos": private,
                    "owned_private_repos": private,
                    "two_factor_requirement_enabled": org.two_factor_requirement_enabled,
                    "default_repository_permission": org.default_repository_permission,
                }
            )
        return body

    def _repo_urls(self, ctx: Ctx, full_name: str) -> dict[str, str]:
        r = f"{ctx.base}/repos/{full_name}"
        return {
            "url": r,
            "archive_url": r + "/{archive_format}{/ref}",
            "assignees_url": r + "/assignees{/user}",
            "blobs_url": r + "/git/blobs{/sha}",
            "branches_url": r + "/branches{/branch}",
            "collaborators_url": r + "/collaborators{/collaborator}",
            "comments_url": r + "/comments{/number}",
            "commits_url": r + "/commits{/sha}",
            "compare_url": r + "/compare/{base}...{head}",
            "contents_url": r + "/contents/{+path}",
            "contributors_url": r + "/contributors",
            "deployments_url": r + "/deployments",
            "downloads_url": r + "/downloads",
            "events_url": r + "/events",
            "forks_url": r + "/forks",
            "git_commits_url": r + "/git/commits{/sha}",
            "git_refs_url": r + "/git/refs{/sha}",
            "git_tags_url": r + "/git/tags{/sha}",
            "hooks_url": r + "/hooks",
            "issue_comment_url": r + "/issues/comments{/number}",
            "issue_events_url": r + "/issues/events{/number}",
            "issues_url": r + "/issues{/number}",
            "keys_url": r + "/keys{/key_id}",
            "labels_url": r + "/labels{/name}",
            "languages_url": r + "/languages",
            "merges_url": r + "/merges",
            "milestones_url": r + "/milestones{/number}",
            "notifications_url": r + "/notifications{?since,all,participating}",
            "pulls_url": r + "/pulls{/number}",
            "releases_url": r + "/releases{/id}",
            "stargazers_url": r + "/stargazers",
            "statuses_url": r + "/statuses/{sha}",
            "subscribers_url": r + "/subscribers",
            "subscription_url": r + "/subscription",
            "tags_url": r + "/tags",
            "teams_url": r + "/teams",
            "trees_url": r + "/git/trees{/sha}",
        }

    def _repo_json(self, ctx: Ctx, org: Org, repo: Repo, *, full: bool) -> dict[str, Any]:
        full_name = f"{org.login}/{repo.name}"
        host = ctx.request.host
        body: dict[str, Any] = {
            "id": repo.id,
            "node_id": _node_id("Repository", repo.id or 0),
            "name": repo.name,
            "full_name": full_name,
            "owner": self._org_as_user(ctx, org),
            "private": repo.private,
            "html_url": f"{ctx.web}/{full_name}",
            "description": repo.description,
            "fork": repo.fork,
        }
        body.update(self._repo_urls(ctx, full_name))
        body.update(
            {
                "git_url": f"git://{host}/{full_name}.git",
                "ssh_url": f"git@{ctx.request.host.split(':')[0]}:{full_name}.git",
                "clone_url": f"{ctx.web}/{full_name}.git",
                "svn_url": f"{ctx.web}/{full_name}",
                "mirror_url": None,
                "homepage": None,
                "language": None,
                "forks_count": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "size": 0,
                "default_branch": repo.default_branch,
                "open_issues_count": 0,
                "is_template": False,
                "topics": [],
                "has_issues": True,
                "has_projects": True,
                "has_wiki": True,
                "has_pages": False,
                "has_downloads": True,
                "has_discussions": False,
                "archived": repo.archived,
                "disabled": False,
                "visibility": "private" if repo.private else "public",
                "pushed_at": format_time(repo.pushed_at),
                "created_at": format_time(repo.created_at),
                "updated_at": format_time(repo.updated_at),
                "allow_forking": not repo.private,
                "web_commit_signoff_required": False,
                "license": None,
                "forks": 0,
                "open_issues": 0,
                "watchers": 0,
            }
        )
        p = ctx.principal
        if p is not None:
            perm = self._repo_permission(p, org, repo)
            if perm is None and not repo.private:
                perm = "pull"
            if perm is not None:
                body["permissions"] = _permission_flags(perm)
        if full:
            body.update({"network_count": 0, "subscribers_count": 0, "organization": self._org_as_user(ctx, org)})
        return body

    def _hook_json(self, ctx: Ctx, hook: Hook, *, org: Org, repo: Repo | None) -> dict[str, Any]:
        if repo is None:
            url = f"{ctx.base}/orgs/{org.login}/hooks/{hook.id}"
        else:
            url = f"{ctx.base}/repos/{org.login}/{repo.name}/hooks/{hook.id}"
        config: dict[str, Any] = {"url": hook.url, "content_type": hook.content_type, "insecure_ssl": hook.insecure_ssl}
        if hook.secret:
            config["secret"] = "********"
        body: dict[str, Any] = {
            "type": "Organization" if repo is None else "Repository",
            "id": hook.id,
            "name": hook.name,
            "active": hook.active,
            "events": list(hook.events),
            "config": config,
            "updated_at": format_time(hook.updated_at),
            "created_at": format_time(hook.created_at),
            "url": url,
            "ping_url": f"{url}/pings",
            "deliveries_url": f"{url}/deliveries",
        }
        if repo is not None:
            body["test_url"] = f"{url}/test"
            body["last_response"] = {"code": None, "status": "unused", "message": None}
        return body

    def _installation_json(self, ctx: Ctx, org: Org, inst: Installation) -> dict[str, Any]:
        return {
            "id": inst.id,
            "account": self._org_as_user(ctx, org),
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{ctx.base}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{ctx.base}/installation/repositories",
            "html_url": f"{ctx.web}/organizations/{org.login}/settings/installations/{inst.id}",
            "app_id": inst.app_id,
            "app_slug": inst.app_slug,
            "client_id": inst.client_id,
            "target_id": org.id,
            "target_type": "Organization",
            "permissions": dict(inst.permissions),
            "events": list(inst.events),
            "created_at": format_time(inst.created_at),
            "updated_at": format_time(inst.updated_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": self.simple_user(ctx, inst.suspended_by) if inst.suspended_by else None,
            "suspended_at": format_time(inst.suspended_at),
        }

    def _app_installation(self, app: App, org: Org) -> Installation:
        """Our own estate apps, as they appear in the org's installation list."""
        return Installation(
            id=app.installations[next(k for k in app.installations if k.lower() == org.login.lower())],
            app_id=app.id,
            app_slug=app.slug,
            client_id=app.client_id,
            permissions=dict(app.permissions),
            events=list(app.events),
            repository_selection="all",
            created_at=app.created_at,
            updated_at=app.updated_at or app.created_at,
        )

    def _org_installations(self, org: Org) -> list[Installation]:
        items = list(org.installations)
        seen = {i.id for i in items}
        for app in self.state.apps:
            if any(k.lower() == org.login.lower() for k in app.installations):
                inst = self._app_installation(app, org)
                if inst.id not in seen:
                    items.append(inst)
        return items

    def _find_app_installation(self, installation_id: int) -> tuple[App | None, Org | None]:
        for app in self.state.apps:
            for org_login, inst_id in app.installations.items():
                if inst_id == installation_id:
                    return app, self.state.org(org_login)
        return None, None

    def _mint(self, app: App, installation_id: int, org: Org, permissions: dict[str, str],
              repositories: list[str] | None) -> IssuedToken:
        token = "ghs_" + _secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
        issued = IssuedToken(
            token=token,
            app_id=app.id,
            installation_id=installation_id,
            org=org.login,
            permissions=permissions or dict(app.permissions),
            repositories=repositories,
            expires_at=(datetime.now(timezone.utc) + INSTALLATION_TOKEN_TTL).replace(microsecond=0),
        )
        self._issued[token] = issued
        return issued

    def _integration_json(self, ctx: Ctx, app: App) -> dict[str, Any]:
        owner_org = self.state.org(app.owner or "")
        owner = self._org_as_user(ctx, owner_org) if owner_org else self.simple_user(ctx, app.owner or app.slug)
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": _node_id("Integration", app.id),
            "client_id": app.client_id,
            "owner": owner,
            "name": app.name,
            "description": app.description,
            "external_url": f"{ctx.web}/apps/{app.slug}",
            "html_url": f"{ctx.web}/apps/{app.slug}",
            "created_at": format_time(app.created_at),
            "updated_at": format_time(app.updated_at),
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "installations_count": len(app.installations),
        }

    # ------------------------------------------------------------------------------------
    # Handlers: users and orgs

    def h_root(self, ctx: Ctx) -> Result:
        b, w = ctx.base, ctx.web
        search = "{&page,per_page,sort,order}"
        return Result(
            {
                "current_user_url": f"{b}/user",
                "current_user_authorizations_html_url": f"{w}/settings/connections/applications{{/client_id}}",
                "authorizations_url": f"{b}/authorizations",
                "code_search_url": f"{b}/search/code?q={{query}}{search}",
                "commit_search_url": f"{b}/search/commits?q={{query}}{search}",
                "emails_url": f"{b}/user/emails",
                "emojis_url": f"{b}/emojis",
                "events_url": f"{b}/events",
                "feeds_url": f"{b}/feeds",
                "followers_url": f"{b}/user/followers",
                "following_url": f"{b}/user/following{{/target}}",
                "gists_url": f"{b}/gists{{/gist_id}}",
                "hub_url": f"{b}/hub",
                "issue_search_url": f"{b}/search/issues?q={{query}}{search}",
                "issues_url": f"{b}/issues",
                "keys_url": f"{b}/user/keys",
                "label_search_url": f"{b}/search/labels?q={{query}}&repository_id={{repository_id}}{{&page,per_page}}",
                "notifications_url": f"{b}/notifications",
                "organization_url": f"{b}/orgs/{{org}}",
                "organization_repositories_url": f"{b}/orgs/{{org}}/repos{{?type,page,per_page,sort}}",
                "organization_teams_url": f"{b}/orgs/{{org}}/teams",
                "public_gists_url": f"{b}/gists/public",
                "rate_limit_url": f"{b}/rate_limit",
                "repository_url": f"{b}/repos/{{owner}}/{{repo}}",
                "repository_search_url": f"{b}/search/repositories?q={{query}}{search}",
                "current_user_repositories_url": f"{b}/user/repos{{?type,page,per_page,sort}}",
                "starred_url": f"{b}/user/starred{{/owner}}{{/repo}}",
                "starred_gists_url": f"{b}/gists/starred",
                "topic_search_url": f"{b}/search/topics?q={{query}}{{&page,per_page}}",
                "user_url": f"{b}/users/{{user}}",
                "user_organizations_url": f"{b}/user/orgs",
                "user_repositories_url": f"{b}/users/{{user}}/repos{{?type,page,per_page,sort}}",
                "user_search_url": f"{b}/search/users?q={{query}}{search}",
            }
        )

    def h_get_authenticated_user(self, ctx: Ctx) -> Result:
        p = self._need_token_principal(ctx)
        if p.kind != "pat":
            raise ApiError(403, "Resource not accessible by integration")
        return Result(self.full_user(ctx, p.login or "", private=True))

    def h_get_user(self, ctx: Ctx, username: str) -> Result:
        self._need_token_principal(ctx)
        if self._person(username) is None:
            raise ApiError(404, "Not Found")
        return Result(self.full_user(ctx, username, private=False))

    def h_get_org(self, ctx: Ctx, org: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        owner_view = self._org_role(p, o) == "admin" and self._has_scope(ctx, *READ_ORG)
        return Result(self._org_full(ctx, o, owner_view=owner_view))

    def _sees_concealed_members(self, ctx: Ctx, p: Principal, org: Org) -> bool:
        if p.kind == "installation":
            self._app_org_check(p, org)
            return self._app_has(ctx, "members")
        return self._org_role(p, org) is not None and self._has_scope(ctx, *READ_ORG)

    def h_list_members(self, ctx: Ctx, org: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        args = ctx.request.args
        role = args.get("role", "all")
        flt = args.get("filter", "all")
        if role not in ("all", "admin", "member") or flt not in ("all", "2fa_disabled", "2fa_insecure"):
            raise ApiError(422, "Validation Failed", errors=[{"resource": "Search", "code": "invalid"}])
        concealed = self._sees_concealed_members(ctx, p, o)
        if flt != "all":
            owner_like = (p.kind == "installation" and concealed) or (
                p.kind == "pat" and self._org_role(p, o) == "admin" and concealed
            )
            if not owner_like:
                raise ApiError(
                    422,
                    "Only owners can use this filter.",
                    documentation_url="https://docs.github.com/rest/orgs/members#list-organization-members",
                )
        members = [m for m in o.members if concealed or m.public]
        if role != "all":
            members = [m for m in members if m.role == role]
        if flt == "2fa_disabled":
            members = [m for m in members if not m.two_factor]
        elif flt == "2fa_insecure":
            members = []  # the estate does not model insecure 2FA methods
        return self._page(ctx, [self.simple_user(ctx, m.login) for m in members])

    def h_check_member(self, ctx: Ctx, org: str, username: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        m = o.member(username)
        concealed = self._sees_concealed_members(ctx, p, o)
        if m is None or not (concealed or m.public):
            raise ApiError(404, "User does not exist or is not a member of the organization")
        return Result(None, status=204)

    def _membership_json(self, ctx: Ctx, org: Org, login: str) -> dict[str, Any]:
        m = org.member(login)
        assert m is not None
        return {
            "url": f"{ctx.base}/orgs/{org.login}/memberships/{m.login}",
            "state": "active",
            "role": m.role,
            "organization_url": f"{ctx.base}/orgs/{org.login}",
            "organization": self._org_simple(ctx, org),
            "user": self.simple_user(ctx, m.login),
        }

    def h_get_membership(self, ctx: Ctx, org: str, username: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        if p.kind == "installation":
            self._app_org_check(p, o)
            self._app_need(ctx, "members")
        else:
            if self._org_role(p, o) is None or not self._has_scope(ctx, *READ_ORG):
                raise ApiError(403, f"You must be a member of {o.login} to see membership information for {username}.")
        if o.member(username) is None:
            raise ApiError(404, "Not Found")
        return Result(self._membership_json(ctx, o, username))

    def h_get_my_membership(self, ctx: Ctx, org: str) -> Result:
        p = self._need_token_principal(ctx)
        if p.kind != "pat":
            raise ApiError(403, "Resource not accessible by integration")
        o = self._org(org)
        if not self._has_scope(ctx, *READ_ORG):
            raise ApiError(403, "Resource not accessible by personal access token")
        if o.member(p.login or "") is None:
            raise ApiError(404, "Not Found")
        return Result(self._membership_json(ctx, o, p.login or ""))

    def h_list_outside_collaborators(self, ctx: Ctx, org: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        if p.kind == "installation":
            self._app_org_check(p, o)
            self._app_need(ctx, "members")
        elif self._org_role(p, o) is None or not self._has_scope(ctx, *READ_ORG):
            raise ApiError(403, "You must be a member of the organization to list its outside collaborators.")
        flt = ctx.request.args.get("filter", "all")
        if flt not in ("all", "2fa_disabled", "2fa_insecure"):
            raise ApiError(422, "Validation Failed")
        people = list(o.outside_collaborators)
        if flt == "2fa_disabled":
            people = [c for c in people if not c.two_factor]
        elif flt == "2fa_insecure":
            people = []
        return self._page(ctx, [self.simple_user(ctx, c.login) for c in people])

    def h_list_org_repos(self, ctx: Ctx, org: str) -> Result:
        self._need_token_principal(ctx)
        o = self._org(org)
        kind = ctx.request.args.get("type", "all")
        if kind not in ("all", "public", "private", "forks", "sources", "member", "internal"):
            raise ApiError(422, "Validation Failed")
        repos = [r for r in o.repos if self._visible_repo(ctx, o, r)]
        if kind == "public":
            repos = [r for r in repos if not r.private]
        elif kind in ("private", "internal"):
            repos = [r for r in repos if r.private] if kind == "private" else []
        elif kind == "forks":
            repos = [r for r in repos if r.fork]
        elif kind == "sources":
            repos = [r for r in repos if not r.fork]
        return self._page(ctx, [self._repo_json(ctx, o, r, full=False) for r in repos])

    # ------------------------------------------------------------------------------------
    # Handlers: repositories

    def h_get_repo(self, ctx: Ctx, owner: str, repo: str) -> Result:
        o, r = self._repo(ctx, owner, repo)
        return Result(self._repo_json(ctx, o, r, full=True))

    def h_list_collaborators(self, ctx: Ctx, owner: str, repo: str) -> Result:
        o, r = self._repo(ctx, owner, repo)
        p = ctx.principal
        assert p is not None
        if p.kind == "pat":
            perm = self._repo_permission(p, o, r)
            ok = (
                self._has_scope(ctx, "repo")
                and "read:org" in p.effective_scopes
                and perm is not None
                and _REPO_LEVELS[perm] >= _REPO_LEVELS["push"]
            )
            ctx.accepted_scopes = ("read:org", "repo")
            if not ok:
                raise ApiError(403, "Must have push access to view repository collaborators.")
        affiliation = ctx.request.args.get("affiliation", "all")
        wanted = ctx.request.args.get("permission")
        if affiliation not in ("outside", "direct", "all") or (wanted and wanted not in _REPO_LEVELS):
            raise ApiError(422, "Validation Failed")
        perms: dict[str, str] = {}

        def grant(login: str, perm: str) -> None:
            key = login.lower()
            current = perms.get(key)
            if current is None or _REPO_LEVELS[perm] > _REPO_LEVELS[current.split("|")[1]]:
                perms[key] = f"{login}|{perm}"

        outside_logins = set()
        for c in o.outside_collaborators:
            for name, perm in c.repos.items():
                if name.lower() == r.name.lower():
                    outside_logins.add(c.login.lower())
                    if affiliation in ("outside", "direct", "all"):
                        grant(c.login, perm)
        for login, perm in r.collaborators.items():
            is_member = o.member(login) is not None
            if not is_member:
                outside_logins.add(login.lower())
            if affiliation == "outside" and is_member:
                continue
            grant(login, perm)
        if affiliation == "all":
            base = _BASE_PERMISSION[o.default_repository_permission]
            for m in o.members:
                if m.role == "admin":
                    grant(m.login, "admin")
                elif base:
                    grant(m.login, base)
        rows = []
        for value in perms.values():
            login, perm = value.split("|")
            if wanted and perm != wanted:
                continue
            body = self.simple_user(ctx, login)
            body["permissions"] = _permission_flags(perm)
            body["role_name"] = _ROLE_NAMES[perm]
            rows.append(body)
        return self._page(ctx, rows)

    def _key_json(self, ctx: Ctx, org: Org, repo: Repo, key: Any) -> dict[str, Any]:
        return {
            "id": key.id,
            "key": key.key,
            "url": f"{ctx.base}/repos/{org.login}/{repo.name}/keys/{key.id}",
            "title": key.title,
            "verified": key.verified,
            "created_at": format_time(key.created_at),
            "read_only": key.read_only,
            "added_by": key.added_by,
            "last_used": format_time(key.last_used),
            "enabled": key.enabled,
        }

    def h_list_deploy_keys(self, ctx: Ctx, owner: str, repo: str) -> Result:
        o, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("administration",))
        return self._page(ctx, [self._key_json(ctx, o, r, k) for k in r.deploy_keys])

    def h_get_deploy_key(self, ctx: Ctx, owner: str, repo: str, key_id: int) -> Result:
        o, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("administration",))
        key = next((k for k in r.deploy_keys if k.id == key_id), None)
        if key is None:
            raise ApiError(404, "Not Found")
        return Result(self._key_json(ctx, o, r, key))

    _REPO_HOOK_SCOPES = ("repo", "admin:repo_hook", "write:repo_hook", "read:repo_hook")

    def h_list_repo_hooks(self, ctx: Ctx, owner: str, repo: str) -> Result:
        o, r = self._repo_admin(ctx, owner, repo, scopes=self._REPO_HOOK_SCOPES, app_perm=("repository_hooks",))
        return self._page(ctx, [self._hook_json(ctx, h, org=o, repo=r) for h in r.hooks])

    def h_get_repo_hook(self, ctx: Ctx, owner: str, repo: str, hook_id: int) -> Result:
        o, r = self._repo_admin(ctx, owner, repo, scopes=self._REPO_HOOK_SCOPES, app_perm=("repository_hooks",))
        hook = next((h for h in r.hooks if h.id == hook_id), None)
        if hook is None:
            raise ApiError(404, "Not Found")
        return Result(self._hook_json(ctx, hook, org=o, repo=r))

    def h_list_repo_secrets(self, ctx: Ctx, owner: str, repo: str) -> Result:
        _, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("secrets",), denied=403)
        return self._page(ctx, [_secret_json(s) for s in r.secrets], wrap="secrets")

    def h_list_repo_variables(self, ctx: Ctx, owner: str, repo: str) -> Result:
        _, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("actions_variables",), denied=403)
        return self._page(ctx, [_variable_json(v) for v in r.variables], wrap="variables")

    def h_list_repo_runners(self, ctx: Ctx, owner: str, repo: str) -> Result:
        _, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("administration",), denied=403)
        return self._page(ctx, [_runner_json(x) for x in _runners_named(r.runners, ctx)], wrap="runners")

    def _environment_json(self, ctx: Ctx, org: Org, repo: Repo, env: Any) -> dict[str, Any]:
        return {
            "id": env.id,
            "node_id": _node_id("Environment", env.id or 0),
            "name": env.name,
            "url": f"{ctx.base}/repos/{org.login}/{repo.name}/environments/{env.name}",
            "html_url": f"{ctx.web}/{org.login}/{repo.name}/deployments/activity_log?environments_filter={env.name}",
            "created_at": format_time(env.created_at),
            "updated_at": format_time(env.updated_at),
            "protection_rules": [],
            "deployment_branch_policy": None,
        }

    def h_list_environments(self, ctx: Ctx, owner: str, repo: str) -> Result:
        o, r = self._repo(ctx, owner, repo)
        return self._page(ctx, [self._environment_json(ctx, o, r, e) for e in r.environments], wrap="environments")

    def h_get_environment(self, ctx: Ctx, owner: str, repo: str, env: str) -> Result:
        o, r = self._repo(ctx, owner, repo)
        e = r.environment(env)
        if e is None:
            raise ApiError(404, "Not Found")
        return Result(self._environment_json(ctx, o, r, e))

    def h_list_env_secrets(self, ctx: Ctx, owner: str, repo: str, env: str) -> Result:
        _, r = self._repo_admin(ctx, owner, repo, scopes=("repo",), app_perm=("secrets",), denied=403)
        e = r.environment(env)
        if e is None:
            raise ApiError(404, "Not Found")
        return self._page(ctx, [_secret_json(s) for s in e.secrets], wrap="secrets")

    def h_list_env_variables(self, ctx: Ctx, owner: str, repo: str, env: str) -> Result:
        _, r = self._repo_admin(
            ctx, owner, repo, scopes=("repo",), app_perm=("environments", "actions_variables"), denied=403
        )
        e = r.environment(env)
        if e is None:
            raise ApiError(404, "Not Found")
        return self._page(ctx, [_variable_json(v) for v in e.variables], wrap="variables")

    # ------------------------------------------------------------------------------------
    # Handlers: org-level NHI inventories

    def h_list_org_hooks(self, ctx: Ctx, org: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org_hook",), app_perm=("organization_hooks",), denied=404)
        return self._page(ctx, [self._hook_json(ctx, h, org=o, repo=None) for h in o.hooks])

    def h_get_org_hook(self, ctx: Ctx, org: str, hook_id: int) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org_hook",), app_perm=("organization_hooks",), denied=404)
        hook = next((h for h in o.hooks if h.id == hook_id), None)
        if hook is None:
            raise ApiError(404, "Not Found")
        return Result(self._hook_json(ctx, hook, org=o, repo=None))

    def h_list_org_installations(self, ctx: Ctx, org: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=READ_ORG, app_perm=("organization_administration",))
        items = [self._installation_json(ctx, o, i) for i in self._org_installations(o)]
        return self._page(ctx, items, wrap="installations")

    def h_list_pat_grants(self, ctx: Ctx, org: str) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        if p.kind == "pat":
            raise ApiError(403, "Resource not accessible by personal access token")
        self._app_org_check(p, o)
        self._app_need(ctx, "organization_personal_access_tokens")
        args = ctx.request.args
        grants = list(o.pat_grants)
        owners = {v.lower() for v in args.getlist("owner[]") + args.getlist("owner")}
        if owners:
            grants = [g for g in grants if g.owner.lower() in owners]
        token_ids = set(args.getlist("token_id[]") + args.getlist("token_id"))
        if token_ids:
            grants = [g for g in grants if str(g.token_id) in token_ids]
        if args.get("repository"):
            name = args["repository"].lower()
            grants = [g for g in grants if g.repository_selection == "all" or name in {r.lower() for r in g.repositories}]
        if args.get("permission"):
            wanted = args["permission"]
            grants = [g for g in grants if wanted in _pat_permission_tokens(g)]
        for arg, before in (("last_used_before", True), ("last_used_after", False)):
            if args.get(arg):
                try:
                    when = parse_time(args[arg], self.estate.now)
                except ValueError:
                    raise ApiError(422, "Validation Failed") from None
                grants = [
                    g
                    for g in grants
                    if g.token_last_used_at is not None
                    and ((g.token_last_used_at < when) if before else (g.token_last_used_at > when))
                ]
        if args.get("sort", "created_at") != "created_at" or args.get("direction", "desc") not in ("asc", "desc"):
            raise ApiError(422, "Validation Failed")
        grants.sort(key=lambda g: (g.access_granted_at, g.id), reverse=args.get("direction", "desc") == "desc")
        rows = [
            {
                "id": g.id,
                "owner": self.simple_user(ctx, g.owner),
                "repository_selection": g.repository_selection,
                "repositories_url": f"{ctx.base}/orgs/{o.login}/personal-access-tokens/{g.id}/repositories",
                "permissions": {
                    "organization": dict(g.permissions.organization),
                    "repository": dict(g.permissions.repository),
                    "other": dict(g.permissions.other),
                },
                "access_granted_at": format_time(g.access_granted_at),
                "token_id": g.token_id,
                "token_name": g.token_name,
                "token_expired": bool(g.token_expired),
                "token_expires_at": format_time(g.token_expires_at),
                "token_last_used_at": format_time(g.token_last_used_at),
            }
            for g in grants
        ]
        return self._page(ctx, rows)

    def h_list_pat_grant_repos(self, ctx: Ctx, org: str, pat_id: int) -> Result:
        p = self._need_token_principal(ctx)
        o = self._org(org)
        if p.kind == "pat":
            raise ApiError(403, "Resource not accessible by personal access token")
        self._app_org_check(p, o)
        self._app_need(ctx, "organization_personal_access_tokens")
        grant = next((g for g in o.pat_grants if g.id == pat_id), None)
        if grant is None:
            raise ApiError(404, "Not Found")
        if grant.repository_selection == "all":
            repos = list(o.repos)
        elif grant.repository_selection == "none":
            repos = []
        else:
            repos = [r for r in (o.repo(n) for n in grant.repositories) if r is not None]
        return self._page(ctx, [self._repo_json(ctx, o, r, full=False) for r in repos])

    def h_list_credential_authorizations(self, ctx: Ctx, org: str) -> Result:
        self._need_token_principal(ctx)
        o = self._org(org)
        if not o.saml:
            raise ApiError(404, "Not Found")
        self._org_owner_only(ctx, org, scopes=READ_ORG, app_perm=("organization_administration",))
        items = list(o.credential_authorizations)
        login = ctx.request.args.get("login")
        if login:
            items = [c for c in items if c.login.lower() == login.lower()]
        rows = []
        for c in items:
            row: dict[str, Any] = {
                "login": c.login,
                "credential_id": c.credential_id,
                "credential_type": c.credential_type,
                "scopes": list(c.scopes),
                "credential_authorized_at": format_time(c.credential_authorized_at),
                "credential_accessed_at": format_time(c.credential_accessed_at),
                "authorized_credential_id": c.authorized_credential_id,
                "authorized_credential_title": c.authorized_credential_title,
                "authorized_credential_note": c.authorized_credential_note,
                "authorized_credential_expires_at": format_time(c.authorized_credential_expires_at),
            }
            if c.token_last_eight is not None:
                row["token_last_eight"] = c.token_last_eight
            if c.fingerprint is not None:
                row["fingerprint"] = c.fingerprint
            rows.append(row)
        return self._page(ctx, rows)

    def h_list_org_secrets(self, ctx: Ctx, org: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org",), app_perm=("organization_secrets",))
        rows = []
        for s in o.secrets:
            row = _secret_json(s)
            row["visibility"] = s.visibility
            if s.visibility == "selected":
                row["selected_repositories_url"] = f"{ctx.base}/orgs/{o.login}/actions/secrets/{s.name}/repositories"
            rows.append(row)
        return self._page(ctx, rows, wrap="secrets")

    def h_list_org_secret_repos(self, ctx: Ctx, org: str, name: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org",), app_perm=("organization_secrets",))
        s = next((x for x in o.secrets if x.name == name), None)
        if s is None or s.visibility != "selected":
            raise ApiError(404, "Not Found")
        repos = [r for r in (o.repo(n) for n in s.selected_repositories) if r is not None]
        return self._page(ctx, [self._repo_json(ctx, o, r, full=False) for r in repos], wrap="repositories")

    _ORG_VARIABLE_PERMS = ("organization_actions_variables", "actions_variables")

    def h_list_org_variables(self, ctx: Ctx, org: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org",), app_perm=self._ORG_VARIABLE_PERMS)
        rows = []
        for v in o.variables:
            row = _variable_json(v)
            row["visibility"] = v.visibility
            if v.visibility == "selected":
                row["selected_repositories_url"] = f"{ctx.base}/orgs/{o.login}/actions/variables/{v.name}/repositories"
            rows.append(row)
        return self._page(ctx, rows, wrap="variables")

    def h_list_org_variable_repos(self, ctx: Ctx, org: str, name: str) -> Result:
        o = self._org_owner_only(ctx, org, scopes=("admin:org",), app_perm=self._ORG_VARIABLE_PERMS)
        v = next((x for x in o.variables if x.name == name), None)
        if v is None or v.visibility != "selected":
            raise ApiError(404, "Not Found")
        repos = [r for r in (o.repo(n) for n in v.selected_repositories) if r is not None]
        return self._page(ctx, [self._repo_json(ctx, o, r, full=False) for r in repos], wrap="repositories")

    def h_list_org_runners(self, ctx: Ctx, org: str) -> Result:
        o = self._org_owner_only(
            ctx, org, scopes=("admin:org", "manage_runners:org"), app_perm=("organization_self_hosted_runners",)
        )
        return self._page(ctx, [_runner_json(x) for x in _runners_named(o.runners, ctx)], wrap="runners")

    # ------------------------------------------------------------------------------------
    # Handlers: GitHub Apps

    def _need_jwt(self, ctx: Ctx) -> App:
        p = ctx.principal
        assert p is not None
        if p.kind != "jwt" or p.app is None:
            raise ApiError(
                401,
                "A JSON web token could not be decoded",
                documentation_url="https://docs.github.com/rest/apps/apps",
            )
        return p.app

    def h_get_app(self, ctx: Ctx) -> Result:
        app = self._need_jwt(ctx)
        return Result(self._integration_json(ctx, app))

    def h_list_app_installations(self, ctx: Ctx) -> Result:
        app = self._need_jwt(ctx)
        rows = []
        for org_login in app.installations:
            org = self.state.org(org_login)
            if org is not None:
                rows.append(self._installation_json(ctx, org, self._app_installation(app, org)))
        return self._page(ctx, rows)

    def h_get_app_installation(self, ctx: Ctx, installation_id: int) -> Result:
        app = self._need_jwt(ctx)
        for org_login, inst_id in app.installations.items():
            org = self.state.org(org_login)
            if inst_id == installation_id and org is not None:
                return Result(self._installation_json(ctx, org, self._app_installation(app, org)))
        raise ApiError(404, "Not Found")

    def h_get_org_installation(self, ctx: Ctx, org: str) -> Result:
        app = self._need_jwt(ctx)
        o = self._org(org)
        if not any(k.lower() == o.login.lower() for k in app.installations):
            raise ApiError(404, "Not Found")
        return Result(self._installation_json(ctx, o, self._app_installation(app, o)))

    def h_create_installation_token(self, ctx: Ctx, installation_id: int) -> Result:
        app = self._need_jwt(ctx)
        org_login = next((k for k, v in app.installations.items() if v == installation_id), None)
        org = self.state.org(org_login) if org_login else None
        if org is None:
            raise ApiError(404, "Not Found")
        payload: dict[str, Any] = {}
        if ctx.request.get_data():
            try:
                payload = json.loads(ctx.request.get_data(as_text=True))
            except ValueError:
                raise ApiError(400, "Problems parsing JSON") from None
            if not isinstance(payload, dict):
                raise ApiError(400, "Problems parsing JSON")
        requested = payload.get("permissions") or {}
        if not isinstance(requested, dict):
            raise ApiError(422, "Invalid request.\n\nFor 'properties/permissions', it is not an object.")
        for name, level in requested.items():
            granted = app.permissions.get(name)
            if granted is None or level not in _LEVELS or _LEVELS[level] > _LEVELS[granted]:
                raise ApiError(422, "The permissions requested are not granted to this installation.")
        repositories = payload.get("repositories")
        repo_ids = payload.get("repository_ids")
        selected: list[str] | None = None
        if repositories or repo_ids:
            selected = []
            for name in repositories or []:
                r = org.repo(str(name))
                if r is None:
                    raise ApiError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.")
                selected.append(r.name)
            for rid in repo_ids or []:
                r = next((x for x in org.repos if x.id == rid), None)
                if r is None:
                    raise ApiError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.")
                selected.append(r.name)
        issued = self._mint(app, installation_id, org, dict(requested), selected)
        body: dict[str, Any] = {
            "token": issued.token,
            "expires_at": format_time(issued.expires_at),
            "permissions": dict(issued.permissions),
            "repository_selection": "all" if selected is None else "selected",
        }
        if selected is not None:
            body["repositories"] = [
                self._repo_json(ctx, org, org.repo(n), full=False) for n in selected  # type: ignore[arg-type]
            ]
        return Result(body, status=201)

    def h_list_installation_repos(self, ctx: Ctx) -> Result:
        p = self._need_token_principal(ctx)
        if p.kind != "installation" or p.installation is None:
            raise ApiError(403, "You must authenticate with an installation access token in order to list repositories for an installation.")
        org = self._org(p.installation.org)
        repos = [r for r in org.repos if self._repo_permission(p, org, r) is not None]
        rows = [self._repo_json(ctx, org, r, full=False) for r in repos]
        selection = "all" if p.installation.repositories is None else "selected"
        return self._page(ctx, rows, wrap="repositories", extra={"repository_selection": selection})

    def h_get_rate_limit(self, ctx: Ctx) -> Result:
        core, _ = self._count_request(ctx, count=False)
        now = int(time.time())

        def bucket(limit: int, used: int, reset: int) -> dict[str, int]:
            return {"limit": limit, "used": used, "remaining": max(0, limit - used), "reset": reset}

        core_bucket = bucket(int(core["X-RateLimit-Limit"]), int(core["X-RateLimit-Used"]), int(core["X-RateLimit-Reset"]))
        resources = {
            "core": core_bucket,
            "search": bucket(30, 0, now + 60),
            "graphql": bucket(5000, 0, now + 3600),
            "integration_manifest": bucket(5000, 0, now + 3600),
            "code_search": bucket(10, 0, now + 60),
        }
        return Result({"resources": resources, "rate": core_bucket})


# ----------------------------------------------------------------------------------------
# Small helpers


def _json_response(body: Any, status: int) -> Response:
    return json_response(body, status, content_type=JSON_TYPE)


def _split_prefix(path: str) -> tuple[str, str]:
    """``/api/v3/orgs/acme`` -> (``/api/v3``, ``/orgs/acme``); a root path has no prefix."""
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return API_PREFIX, path[len(API_PREFIX) :] or "/"
    return "", path


def _raw_credential(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme in ("token", "bearer") and value:
        return value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return header
        return decoded.partition(":")[2] or decoded.partition(":")[0]
    return header  # garbage: will be rejected as bad credentials


def _request_id() -> str:
    raw = _secrets.token_hex(12).upper()
    return f"{raw[0:4]}:{raw[4:8]}:{raw[8:14]}:{raw[14:20]}:{raw[20:24]}"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    want = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == want:
            return True
    return False


def _permission_flags(perm: str) -> dict[str, bool]:
    level = _REPO_LEVELS[perm]
    return {name: level >= lv for name, lv in (("admin", 5), ("maintain", 4), ("push", 3), ("triage", 2), ("pull", 1))}


def _secret_json(s: Any) -> dict[str, Any]:
    return {"name": s.name, "created_at": format_time(s.created_at), "updated_at": format_time(s.updated_at)}


def _variable_json(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "value": v.value,
        "created_at": format_time(v.created_at),
        "updated_at": format_time(v.updated_at),
    }


def _runner_json(x: Runner) -> dict[str, Any]:
    read_only = {"self-hosted", x.os.lower(), "x64", "arm64", "arm"}
    return {
        "id": x.id,
        "runner_group_id": x.runner_group_id,
        "name": x.name,
        "os": x.os,
        "status": x.status,
        "busy": x.busy,
        "ephemeral": x.ephemeral,
        "labels": [
            {
                "id": (zlib.crc32(label.encode()) % 1000) + 1,
                "name": label,
                "type": "read-only" if label.lower() in read_only else "custom",
            }
            for label in (x.labels or [])
        ],
    }


def _runners_named(runners: list[Runner], ctx: Ctx) -> list[Runner]:
    name = ctx.request.args.get("name")
    return [x for x in runners if x.name == name] if name else list(runners)


def _pat_permission_tokens(g: Any) -> set[str]:
    out = set()
    for group in (g.permissions.organization, g.permissions.repository, g.permissions.other):
        for name, level in group.items():
            out.add(f"{name}_{level}")
    return out


def _public_key(key: Any) -> Any:
    """Accept a public/private PEM (str or bytes) or a cryptography key; return the public key."""
    if hasattr(key, "public_key") and not isinstance(key, (str, bytes)):
        return key.public_key()
    if hasattr(key, "verify"):
        return key
    data = key.encode() if isinstance(key, str) else key
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)
