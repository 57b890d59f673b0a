"""AWS IAM emulator: moto's server, seeded from the estate's ``aws:`` section through boto3.

AWS has no public API description to build an emulator from; moto implements the botocore
models, so boto3's own parsing is the contract (DESIGN.md "Testing"). This module wraps moto's
server WSGI app (the ``DomainDispatcherApplication`` that ``ThreadedMotoServer`` serves) in a thin
WSGI layer of our own that adds what moto lacks and nhiscan's tests need:

* **Seeding through the API.** ``sandbox/server.py`` calls :meth:`AwsEmulator.on_started` once the
  server listens; the emulator then resets moto (``POST /moto-api/reset``) and creates the
  estate's policies, groups, users, access keys, roles and instance profiles with boto3 against
  its own URL. A key marked ``used`` makes one real signed call, so ``GetAccessKeyLastUsed`` and
  the credential report show it; a role marked ``used`` is assumed and used once, so
  ``GetRole`` reports ``RoleLastUsed``. moto generates access key ids and secrets itself:
  :meth:`AwsEmulator.access_key` hands them to tests and the demo.
* **IAM auth enforcement** (``enforce_auth: true``): after seeding, moto checks every request's
  SigV4 signature and the caller's IAM policies (``POST /moto-api/reset-auth 0``), so a
  restricted user gets a real ``AccessDenied``.
* **Pagination** that moto leaves out: ``ListUsers``, ``ListAccessKeys``, ``ListUserPolicies``,
  ``ListGroupsForUser``, ``ListGroupPolicies``, ``ListRolePolicies`` and
  ``ListInstanceProfilesForRole`` return every item in moto; here they honour ``MaxItems`` and
  ``Marker`` and answer ``IsTruncated``/``Marker`` as IAM does. (moto pages ``ListRoles`` and the
  ``ListAttached*Policies`` calls itself.)
* **Fault injection** chosen by the access key used, as the GitHub emulator does by token:
  IAM's ``Throttling`` error, a ``ServiceFailure`` 500, or a policy document cut in half.
* **A request log and control plane** (``/_emu/requests``, ``/_emu/reset``) like the other vendors.

moto's gaps, on purpose not papered over: it cannot backdate anything (every ``CreateDate``,
``LastUsedDate`` and credential-report time is the real wall-clock time of seeding), and it never
records console sign-ins (``password_last_used`` stays ``no_information``). Tests that need "a key
unused for 400 days" move the sweep's injected ``now`` forward instead.

moto keeps its state per process, so only one sandbox with an ``aws`` section may run in a
process at a time; a second one is refused with a clear error.

This module imports moto and boto3 lazily: a sandbox without an ``aws`` section never loads them.
"""

import base64
import binascii
import fnmatch
import io
import json
import logging
import secrets
import threading
import traceback
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Optional

from .emulator import Emulator, log_time, status_line, token_suffix
from .estate import Estate, _build

log = logging.getLogger("sandbox.aws")

URL_SUFFIX = ""
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account, and the one its "testing" keys land in
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"

FaultKind = Literal["throttling", "server_error", "malformed_policy"]


# --------------------------------------------------------------------------------------------
# The estate section. No ``from __future__ import annotations`` in this module: the estate
# loader's builder reads these annotations as live objects (see ``sandbox.estate._build``).


@dataclass
class AwsFault:
    """One injected failure for requests signed with one access key."""

    action: str  # fnmatch pattern on the API action, e.g. "ListRoles", "Get*Policy"
    fault: FaultKind
    times: Optional[int] = None
    after: int = 0


@dataclass
class AwsAccessKey:
    status: Literal["Active", "Inactive"] = "Active"
    used: bool = False
    faults: list[AwsFault] = field(default_factory=list)


@dataclass
class AwsUser:
    name: str
    path: str = "/"
    tags: dict[str, str] = field(default_factory=dict)
    console_password: bool = False
    mfa: bool = False
    groups: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    inline_policies: dict[str, Any] = field(default_factory=dict)
    access_keys: list[AwsAccessKey] = field(default_factory=list)


@dataclass
class AwsGroup:
    name: str
    path: str = "/"
    policies: list[str] = field(default_factory=list)
    inline_policies: dict[str, Any] = field(default_factory=dict)


@dataclass
class AwsPolicy:
    """A customer managed policy."""

    name: str
    document: Any
    path: str = "/"
    description: Optional[str] = None


@dataclass
class AwsTrust:
    """Who may assume a role; turned into an ``sts:AssumeRole`` trust policy."""

    accounts: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    external_id: Optional[str] = None


@dataclass
class AwsRole:
    name: str
    path: str = "/"
    description: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    trust: Optional[AwsTrust] = None
    trust_policy: Any = None
    policies: list[str] = field(default_factory=list)
    inline_policies: dict[str, Any] = field(default_factory=dict)
    instance_profile: Optional[str] = None
    max_session_duration: int = 3600
    used: bool = False


@dataclass
class AwsEstate:
    account_id: str = DEFAULT_ACCOUNT_ID
    enforce_auth: bool = False
    policies: list[AwsPolicy] = field(default_factory=list)
    groups: list[AwsGroup] = field(default_factory=list)
    users: list[AwsUser] = field(default_factory=list)
    roles: list[AwsRole] = field(default_factory=list)

    def user(self, name: str) -> AwsUser:
        for u in self.users:
            if u.name == name:
                return u
        raise KeyError(name)


def parse_estate(raw: Any, ctx: Any, path: str) -> AwsEstate:
    """Validate the ``aws:`` section; errors name the YAML path (``aws.users[2].groups[0]``)."""
    state: AwsEstate = _build(AwsEstate, raw, path, ctx)
    if not (state.account_id.isdigit() and len(state.account_id) == 12):
        raise ctx.error(f"{path}.account_id", f"expected 12 digits, got {state.account_id!r}")
    for kind in ("policies", "groups", "users", "roles"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(state, kind)):
            if not item.name:
                raise ctx.error(f"{path}.{kind}[{i}].name", "must not be empty")
            if item.name in seen:
                raise ctx.error(f"{path}.{kind}[{i}].name", f"duplicate name {item.name!r}")
            seen.add(item.name)
    customer = {p.name for p in state.policies}
    groups = {g.name for g in state.groups}
    for i, p in enumerate(state.policies):
        _check_document(p.document, f"{path}.policies[{i}].document", ctx)
    for kind, items in (("groups", state.groups), ("users", state.users), ("roles", state.roles)):
        for i, item in enumerate(items):
            where = f"{path}.{kind}[{i}]"
            for j, ref in enumerate(item.policies):
                _check_policy_ref(ref, customer, f"{where}.policies[{j}]", ctx)
            for name, doc in item.inline_policies.items():
                _check_document(doc, f"{where}.inline_policies.{name}", ctx)
    for i, u in enumerate(state.users):
        for j, g in enumerate(u.groups):
            if g not in groups:
                raise ctx.error(f"{path}.users[{i}].groups[{j}]", f"no group {g!r} in aws.groups")
        if len(u.access_keys) > 2:
            raise ctx.error(f"{path}.users[{i}].access_keys", "IAM allows at most 2 access keys per user")
        for j, k in enumerate(u.access_keys):
            for n, f in enumerate(k.faults):
                if not f.action:
                    raise ctx.error(f"{path}.users[{i}].access_keys[{j}].faults[{n}].action", "must not be empty")
    for i, r in enumerate(state.roles):
        where = f"{path}.roles[{i}]"
        if (r.trust is None) == (r.trust_policy is None):
            raise ctx.error(where, "needs exactly one of trust or trust_policy")
        if r.trust is not None:
            if not (r.trust.accounts or r.trust.services):
                raise ctx.error(f"{where}.trust", "names no account and no service")
            for j, acct in enumerate(r.trust.accounts):
                if not (acct.isdigit() and len(acct) == 12):
                    raise ctx.error(f"{where}.trust.accounts[{j}]", f"expected a 12-digit account id, got {acct!r}")
        else:
            _check_document(r.trust_policy, f"{where}.trust_policy", ctx)
        if not 3600 <= r.max_session_duration <= 43200:
            raise ctx.error(f"{where}.max_session_duration", "expected 3600..43200 seconds")
    return state


def _check_document(doc: Any, where: str, ctx: Any) -> None:
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            raise ctx.error(where, "not valid JSON") from None
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise ctx.error(where, "expected a policy document (a mapping with Version and Statement)")


def _check_policy_ref(ref: str, customer: set[str], where: str, ctx: Any) -> None:
    if ref.startswith("arn:") or ref in customer:
        return
    if ref not in _aws_managed_names():
        raise ctx.error(where, f"{ref!r} is neither an aws.policies name nor an AWS managed policy (or give a full ARN)")


_MANAGED: dict[str, str] | None = None  # AWS managed policy name -> its path


def _aws_managed_names() -> dict[str, str]:
    """The AWS managed policies moto knows, name -> path (read once: a few tens of milliseconds)."""
    global _MANAGED
    if _MANAGED is None:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        _MANAGED = {name: p.get("Path", "/") for name, p in json.loads(aws_managed_policies_data).items()}
    return _MANAGED


def _managed_arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy{_aws_managed_names()[name]}{name}"


def build(estate: Estate, *, reload: Callable[[], Estate], **options: Any) -> "AwsEmulator":
    return AwsEmulator(estate, reload=reload)


# --------------------------------------------------------------------------------------------
# Wire format helpers (IAM speaks the AWS Query protocol: form-encoded POST, XML answers).

# Actions moto answers with every item at once: the pagination shim slices them.
_UNPAGINATED: dict[str, str] = {
    "ListUsers": "Users",
    "ListAccessKeys": "AccessKeyMetadata",
    "ListUserPolicies": "PolicyNames",
    "ListGroupsForUser": "Groups",
    "ListGroupPolicies": "PolicyNames",
    "ListRolePolicies": "PolicyNames",
    "ListInstanceProfilesForRole": "InstanceProfiles",
}
# Where a policy document travels in each response (for the malformed_policy fault).
_POLICY_FIELDS = {"GetUserPolicy": "PolicyDocument", "GetGroupPolicy": "PolicyDocument",
                  "GetRolePolicy": "PolicyDocument", "GetPolicyVersion": "Document"}


def _error_xml(code: str, message: str, kind: str, request_id: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def _encode_marker(action: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{action}:{offset}".encode()).decode()


def _decode_marker(action: str, marker: str) -> int | None:
    try:
        kind, _, offset = base64.urlsafe_b64decode(marker.encode()).decode().partition(":")
        return int(offset) if kind == action and int(offset) >= 0 else None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _access_key_of(environ: dict[str, Any]) -> str | None:
    """The access key id in a SigV4 ``Authorization`` header (an identifier, not a secret)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    return auth.split(marker, 1)[1].split("/", 1)[0] or None


class _WithholdBodies(logging.Filter):
    """botocore's DEBUG lines carry request and response bodies: while seeding those hold the
    secret access keys moto generates, a login password and assumed-role credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith(("Response body", "Making request for", "Response headers")):
            record.msg = msg.split(":", 1)[0] + ": <withheld by the sandbox>"
            record.args = ()
        return True


def _guard_botocore_logs() -> None:
    for name in ("botocore.parsers", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithholdBodies) for f in logger.filters):
            logger.addFilter(_WithholdBodies())


# --------------------------------------------------------------------------------------------
# The emulator

_ACTIVE_LOCK = threading.Lock()
_ACTIVE: "AwsEmulator | None" = None  # the one emulator whose estate is in moto right now


class AwsEmulator(Emulator[Optional[AwsEstate]]):
    """The AWS WSGI app: moto behind a layer that seeds, pages, injects faults and logs."""

    vendor = "aws"
    credential_word = "key"
    url_suffix = URL_SUFFIX

    def __init__(self, estate: Estate, *, reload: Callable[[], Estate] | None = None):
        super().__init__(estate, reload=reload)
        self._moto: Any = None
        self.root_url: str | None = None
        self._keys: dict[tuple[str, int], tuple[str, str]] = {}  # (user, index) -> (id, secret)
        self._key_owner: dict[str, tuple[str, int]] = {}  # access key id -> (user, index)
        self._seed_lock = threading.Lock()
        self._seeded = False
        self._seeding = False  # faults are not injected into the seeding's own calls
        self._auth_enforced = False

    # -- public Python API ---------------------------------------------------------------

    @property
    def state(self) -> AwsEstate | None:
        """The estate's ``aws`` section (``None`` when the estate has none)."""
        return self.estate.vendors.get("aws")

    @property
    def account_id(self) -> str:
        return self.state.account_id if self.state else DEFAULT_ACCOUNT_ID

    def access_key(self, user: str, index: int = 0) -> tuple[str, str]:
        """``(AccessKeyId, SecretAccessKey)`` that moto generated for an estate user's key.

        Fake credentials for tests and the demo; the sandbox never logs the secret.
        """
        with self._lock:
            try:
                return self._keys[(user, index)]
            except KeyError:
                raise KeyError(f"no seeded access key #{index} for aws user {user!r}") from None

    @property
    def access_key_ids(self) -> dict[str, tuple[str, int]]:
        """Every seeded access key id -> (user, index)."""
        with self._lock:
            return dict(self._key_owner)

    def client(self, service: str = "iam", *, user: str | None = None, index: int = 0) -> Any:
        """A boto3 client for this emulator: as an estate user, or (default) as the seeding
        identity, which works only while ``enforce_auth`` is off."""
        import boto3

        if self.root_url is None:
            raise RuntimeError("the AWS emulator is not running")
        if user is None:
            key_id, secret = "AKIASANDBOXSEED00000", "sandbox-seed"
        else:
            key_id, secret = self.access_key(user, index)
        client = boto3.client(service, endpoint_url=self.root_url, region_name="us-east-1",
                              aws_access_key_id=key_id, aws_secret_access_key=secret)
        if user is None and self.account_id != DEFAULT_ACCOUNT_ID:
            def to_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = self.account_id

            client.meta.events.register("before-sign", to_account)
        return client

    def set_estate(self, estate: Estate) -> None:
        """Swap in a freshly loaded estate (used by reset) and seed moto again when running."""
        super().set_estate(estate)
        if self.root_url is not None:
            self._seed()
        self.clear_request_log()

    def on_started(self, root_url: str) -> None:
        """Called by the sandbox once the server listens: seed the estate through the API."""
        self.root_url = root_url
        self._seed()

    def stop(self) -> None:
        """Give moto back as found: auth enforcement off, this estate wiped."""
        global _ACTIVE
        with self._lock:
            if self._seeded:
                from moto import settings
                from moto.moto_api._internal.models import moto_api_backend

                settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
                with _managed_policies(False):
                    moto_api_backend.reset()
                self._seeded = self._auth_enforced = False
            self.root_url = None
        with _ACTIVE_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None

    # -- seeding ---------------------------------------------------------------------------

    def _post(self, path: str, data: bytes = b"") -> None:
        assert self.root_url is not None
        # moto reads the raw body (``request.data``), which a form content type would hide.
        req = urllib.request.Request(self.root_url + path, data=data, method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own loopback server
            resp.read()

    def _claim_moto(self) -> None:
        global _ACTIVE
        with _ACTIVE_LOCK:
            if _ACTIVE is not None and _ACTIVE is not self and _ACTIVE.root_url is not None:
                raise RuntimeError(
                    "another sandbox with an `aws` section is running in this process; moto keeps one "
                    "state per process, so stop that sandbox first"
                )
            _ACTIVE = self

    def _seed(self) -> None:
        # Seeding calls this very server, whose request threads take ``self._lock``: hold only
        # the seeding lock across HTTP calls, never ``self._lock``.
        with self._seed_lock:
            with self._lock:
                self._keys.clear()
                self._key_owner.clear()
                self._fault_hits.clear()
            if self.state is None:
                if self._seeded:  # the reloaded estate dropped its aws section
                    self._post("/moto-api/reset-auth", b"inf")
                    self._post("/moto-api/reset")
                    self._seeded = self._auth_enforced = False
                return
            self._claim_moto()
            _guard_botocore_logs()
            self._post("/moto-api/reset-auth", b"inf")
            self._auth_enforced = False
            with _managed_policies(False):  # moto re-creates its backends on reset: keep that cheap
                self._post("/moto-api/reset")
            _warm_iam({self.state.account_id, DEFAULT_ACCOUNT_ID})
            self._seeded = True
            self._seeding = True
            try:
                _Seeder(self, self.state).run()
            except Exception as err:
                raise RuntimeError(f"seeding the AWS estate failed: {type(err).__name__}: {_brief(err)}") from None
            finally:
                self._seeding = False
            if self.state.enforce_auth:
                self._post("/moto-api/reset-auth", b"0")
                self._auth_enforced = True
            self.clear_request_log()

    # -- WSGI --------------------------------------------------------------------------------

    def _moto_app(self) -> Any:
        if self._moto is None:
            _set_managed_policies(True)
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

            self._moto = DomainDispatcherApplication(create_backend_app)
        return self._moto

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        # moto's app is WSGI all the way down: this layer stays raw WSGI too (no werkzeug Request),
        # so the request body reaches moto untouched.
        try:
            status, headers, body, entry = self._handle(environ)
        except Exception:  # pragma: no cover - a bug in the emulator, surfaced loudly
            log.error("aws emulator crashed on %s\n%s", environ.get("PATH_INFO"), traceback.format_exc())
            status, headers, body, entry = "500 INTERNAL SERVER ERROR", [("Content-Type", "text/xml")], \
                _error_xml("ServiceFailure", "Emulator error", "Receiver", str(uuid.uuid4())), None
        if entry is not None:
            entry["status"] = int(status.split()[0])
            self._record(entry, what=entry["action"] or entry["path"], credential_field="key")
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    def _handle(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes, dict[str, Any] | None]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emu/"):
            return (*self._control(environ, path), None)
        params = self._params(environ)
        action = (params.get("Action") or [None])[0]
        key_id = _access_key_of(environ)
        entry = {
            "time": log_time(),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "action": action,
            "key": token_suffix(key_id),
            "status": None,
            "fault": None,
        }
        if path.startswith("/moto-api"):
            entry = None  # moto's own control plane: not a client request
        fault = self._pick_fault(key_id, action) if action else None
        request_id = str(uuid.uuid4())
        if fault is not None and fault.fault in ("throttling", "server_error"):
            assert entry is not None
            entry["fault"] = fault.fault
            if fault.fault == "throttling":
                body = _error_xml("Throttling", "Rate exceeded", "Sender", request_id)
                return "400 Bad Request", self._xml_headers(request_id), body, entry
            body = _error_xml("ServiceFailure", "The request processing has failed because of an unknown error, "
                              "exception or failure.", "Receiver", request_id)
            return "500 Internal Server Error", self._xml_headers(request_id), body, entry

        status, headers, body = self._call_moto(environ)
        if status.startswith("200") and action in _UNPAGINATED:
            paged = self._page(action, params, body)
            if isinstance(paged, tuple):
                return paged[0], self._xml_headers(request_id), paged[1], entry
            body = paged
        if status.startswith("200") and fault is not None and fault.fault == "malformed_policy" and action in _POLICY_FIELDS:
            body = _corrupt_policy(body, _POLICY_FIELDS[action])
            if entry is not None:
                entry["fault"] = fault.fault
        return status, headers, body, entry

    @staticmethod
    def _xml_headers(request_id: str) -> list[tuple[str, str]]:
        return [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]

    @staticmethod
    def _params(environ: dict) -> dict[str, list[str]]:
        """The Query-protocol parameters (form body and query string); the body is put back intact."""
        params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items():
                params.setdefault(k, []).extend(v)
        return params

    def _call_moto(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self._moto_app()(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], body

    def _page(self, action: str, params: dict[str, list[str]], body: bytes) -> bytes | tuple[str, bytes]:
        """Slice a full moto listing to ``MaxItems`` from ``Marker``, as IAM pages it."""
        marker = (params.get("Marker") or [None])[0]
        max_items_text = (params.get("MaxItems") or ["100"])[0]
        start = 0
        if marker:
            decoded = _decode_marker(action, marker)
            if decoded is None:
                return "400 Bad Request", _error_xml("ValidationError", "Invalid value for Marker", "Sender", str(uuid.uuid4()))
            start = decoded
        try:
            max_items = int(max_items_text)
            if not 1 <= max_items <= 1000:
                raise ValueError
        except ValueError:
            return "400 Bad Request", _error_xml(
                "ValidationError", "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: "
                "Member must have value between 1 and 1000", "Sender", str(uuid.uuid4()))
        root = ET.fromstring(body)
        ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
        q = (lambda name: f"{{{ns}}}{name}") if ns else (lambda name: name)
        result = root.find(q(f"{action}Result"))
        listing = result.find(q(_UNPAGINATED[action])) if result is not None else None
        if result is None or listing is None:
            return body
        members = list(listing)
        for m in members:
            listing.remove(m)
        for m in members[start:start + max_items]:
            listing.append(m)
        more = start + max_items < len(members)
        for name in ("IsTruncated", "Marker"):
            old = result.find(q(name))
            if old is not None:
                result.remove(old)
        truncated = ET.SubElement(result, q("IsTruncated"))
        truncated.text = "true" if more else "false"
        if more:
            ET.SubElement(result, q("Marker")).text = _encode_marker(action, start + max_items)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=ns or None)

    def _pick_fault(self, key_id: str | None, action: str) -> AwsFault | None:
        if key_id is None or self.state is None or self._seeding:
            return None
        with self._lock:
            owner = self._key_owner.get(key_id)
            if owner is None:
                return None
            user, index = owner
            try:
                key = self.state.user(user).access_keys[index]
            except (KeyError, IndexError):
                return None
            # IAM faults match the API action (``Get*Policy``), not an HTTP path.
            return self._select_fault(key_id, key.faults, lambda fault: fnmatch.fnmatchcase(action, fault.action))

    def _control(self, environ: dict, path: str) -> tuple[str, list[tuple[str, str]], bytes]:
        status, body = self._control_answer(environ.get("REQUEST_METHOD", ""), path)
        if body is None:
            return status_line(status), [], b""
        return status_line(status), [("Content-Type", "application/json")], json.dumps(body).encode()


def _set_managed_policies(on: bool) -> None:
    """Whether moto gives a new IAM backend AWS's managed policies (AdministratorAccess & co.),
    which attaching them needs. moto reads this when it creates a backend."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = on


@contextmanager
def _managed_policies(on: bool) -> Iterator[None]:
    _set_managed_policies(on)
    try:
        yield
    finally:
        _set_managed_policies(True)


def _warm_iam(account_ids: set[str]) -> None:
    """Create moto's IAM backends for these accounts now, AWS managed policies in the ``aws``
    partition only.

    moto keeps one IAM backend per partition (a dozen) and creates all of them on the first
    request, each parsing ~1,600 managed policies (~0.2 s apiece): most of a seed's time. Only
    the ``aws`` partition is ever used here, so the others are created without them.
    """
    try:
        from moto.iam.models import iam_backends
        from moto.utilities.utils import PARTITION_NAMES
    except ImportError:  # pragma: no cover - a moto layout we do not know: stay correct, just slower
        return
    for account_id in sorted(account_ids):
        iam_backends[account_id]["aws"]
        with _managed_policies(False):
            for partition in PARTITION_NAMES:
                iam_backends[account_id][partition]


def _corrupt_policy(body: bytes, field_name: str) -> bytes:
    root = ET.fromstring(body)
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    tag = f"{{{ns}}}{field_name}" if ns else field_name
    for el in root.iter(tag):
        text = el.text or ""
        el.text = text[: max(1, len(text) // 2)]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=ns or None)


def _brief(err: BaseException) -> str:
    """An error's first line, bounded; boto3's ClientError text names the code and AWS's message."""
    text = str(err).splitlines()[0] if str(err) else ""
    return text[:300]


class _Seeder:
    """Creates one estate in moto through boto3, as an administrator would."""

    def __init__(self, emulator: AwsEmulator, state: AwsEstate):
        self.emu = emulator
        self.state = state
        self.iam = emulator.client("iam")
        self.sts = emulator.client("sts")
        self.customer = {p.name: f"arn:aws:iam::{state.account_id}:policy{p.path}{p.name}" for p in state.policies}

    def policy_arn(self, ref: str) -> str:
        if ref.startswith("arn:"):
            return ref
        return self.customer.get(ref) or _managed_arn(ref)

    @staticmethod
    def document(doc: Any) -> str:
        return doc if isinstance(doc, str) else json.dumps(doc)

    @staticmethod
    def tags(tags: dict[str, str]) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def run(self) -> None:
        s = self.state
        for p in s.policies:
            kw = {"Description": p.description} if p.description else {}
            self.iam.create_policy(PolicyName=p.name, Path=p.path, PolicyDocument=self.document(p.document), **kw)
        for g in s.groups:
            self.iam.create_group(GroupName=g.name, Path=g.path)
            for ref in g.policies:
                self.iam.attach_group_policy(GroupName=g.name, PolicyArn=self.policy_arn(ref))
            for name, doc in g.inline_policies.items():
                self.iam.put_group_policy(GroupName=g.name, PolicyName=name, PolicyDocument=self.document(doc))
        for u in s.users:
            self.user(u)
        for r in s.roles:
            self.role(r)

    def user(self, u: AwsUser) -> None:
        iam = self.iam
        kw = {"Tags": self.tags(u.tags)} if u.tags else {}
        iam.create_user(UserName=u.name, Path=u.path, **kw)
        if u.console_password:
            # A throwaway password nobody learns: the estate only says the user can sign in.
            iam.create_login_profile(UserName=u.name, Password="Sb-" + secrets.token_urlsafe(24))
        if u.mfa:
            device = iam.create_virtual_mfa_device(VirtualMFADeviceName=u.name)["VirtualMFADevice"]
            iam.enable_mfa_device(UserName=u.name, SerialNumber=device["SerialNumber"],
                                  AuthenticationCode1="123456", AuthenticationCode2="654321")
        for g in u.groups:
            iam.add_user_to_group(GroupName=g, UserName=u.name)
        for ref in u.policies:
            iam.attach_user_policy(UserName=u.name, PolicyArn=self.policy_arn(ref))
        for name, doc in u.inline_policies.items():
            iam.put_user_policy(UserName=u.name, PolicyName=name, PolicyDocument=self.document(doc))
        for index, spec in enumerate(u.access_keys):
            created = iam.create_access_key(UserName=u.name)["AccessKey"]
            key_id, secret = created["AccessKeyId"], created["SecretAccessKey"]
            with self.emu._lock:
                self.emu._keys[(u.name, index)] = (key_id, secret)
                self.emu._key_owner[key_id] = (u.name, index)
            if spec.used:
                # One real signed call: moto then reports LastUsedDate/ServiceName for the key.
                self.emu.client("iam", user=u.name, index=index).get_user()
            if spec.status != "Active":
                iam.update_access_key(UserName=u.name, AccessKeyId=key_id, Status=spec.status)

    def role(self, r: AwsRole) -> None:
        iam = self.iam
        kw: dict[str, Any] = {"Tags": self.tags(r.tags)} if r.tags else {}
        if r.description:
            kw["Description"] = r.description
        created = iam.create_role(RoleName=r.name, Path=r.path, AssumeRolePolicyDocument=self.document(self.trust(r)),
                                  MaxSessionDuration=r.max_session_duration, **kw)["Role"]
        for ref in r.policies:
            iam.attach_role_policy(RoleName=r.name, PolicyArn=self.policy_arn(ref))
        for name, doc in r.inline_policies.items():
            iam.put_role_policy(RoleName=r.name, PolicyName=name, PolicyDocument=self.document(doc))
        if r.instance_profile:
            iam.create_instance_profile(InstanceProfileName=r.instance_profile)
            iam.add_role_to_instance_profile(InstanceProfileName=r.instance_profile, RoleName=r.name)
        if r.used:
            # Assume it and make one call with the session: moto then reports RoleLastUsed.
            creds = self.sts.assume_role(RoleArn=created["Arn"], RoleSessionName="sandbox-seed")["Credentials"]
            import boto3

            boto3.client("sts", endpoint_url=self.emu.root_url, region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"]).get_caller_identity()

    def trust(self, r: AwsRole) -> Any:
        if r.trust_policy is not None:
            return r.trust_policy
        assert r.trust is not None
        principal: dict[str, Any] = {}
        if r.trust.accounts:
            principal["AWS"] = [f"arn:aws:iam::{a}:root" for a in r.trust.accounts]
        if r.trust.services:
            principal["Service"] = list(r.trust.services)
        statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        if r.trust.external_id:
            statement["Condition"] = {"StringEquals": {"sts:ExternalId": r.trust.external_id}}
        return {"Version": "2012-10-17", "Statement": [statement]}
