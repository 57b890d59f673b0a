"""The normalised, vendor-neutral records every collector emits.

A record is a plain frozen dataclass. Its ``key`` is stable across sweeps
(``<source>:<kind>:<external id>``) so that the store can upsert it and the
diff can compare one sweep with the next. Its ``inventory`` names the listing
that produced it (``github:acme:deploy_keys``): when that listing fails, the
store keeps the record from the last good sweep instead of forgetting it
(DESIGN.md invariant 2).

Nothing here holds a secret value. Where a collector sees one (an Actions
variable, a CI variable), it keeps only a keyed hash and a redacted preview.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, ClassVar


class Privilege(enum.IntEnum):
    """Normalised privilege level; vendors' scopes and roles map onto it."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3
    OWNER = 4

    @classmethod
    def parse(cls, value: str | int | "Privilege") -> "Privilege":
        if isinstance(value, Privilege):
            return value
        if isinstance(value, int):
            return cls(value)
        return cls[value.upper()]


class Status(str, enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    DELETED = "deleted"


@dataclass(frozen=True, kw_only=True)
class Ownership:
    """A claim that ``ref`` owns the record, and why we believe it.

    ``ref`` is either a record key (``github:account:octocat``) or an email
    address; the graph resolves both to a Person where it can.
    """

    ref: str
    evidence: str  # e.g. "deploy key added_by (GitHub API)"
    confidence: float = 0.9
    role: str = "owner"  # owner | creator | installer | sponsor


@dataclass(frozen=True, kw_only=True)
class Record:
    kind: ClassVar[str] = "record"

    key: str
    source: str  # collector name, e.g. "github", "hr", "contracts"
    inventory: str  # the listing that produced it, e.g. "github:acme:deploy_keys"
    name: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["record_kind"] = self.kind
        return _jsonable(data)


@dataclass(frozen=True, kw_only=True)
class Resource(Record):
    """An org, repo, environment, project, workspace, channel or cloud account."""

    kind: ClassVar[str] = "resource"
    resource_type: str  # org | repo | environment | ...
    parent_key: str | None = None
    visibility: str | None = None


@dataclass(frozen=True, kw_only=True)
class Account(Record):
    """A principal inside one system: a human user, a bot, an app installation."""

    kind: ClassVar[str] = "account"
    account_type: str  # user | bot | app_installation | service_account
    is_human: bool
    login: str | None = None
    email: str | None = None
    status: Status = Status.ACTIVE
    created_at: datetime | None = None
    last_active_at: datetime | None = None
    role: str | None = None  # e.g. org "admin" / "member" / "outside_collaborator"
    privilege: Privilege = Privilege.READ
    scopes: tuple[str, ...] = ()  # raw OAuth scopes an app account holds (e.g. a Slack app's)
    mfa_enabled: bool | None = None  # None: the API did not tell us
    third_party: bool = False  # outside collaborator, app not owned by the org
    owners: tuple[Ownership, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Credential(Record):
    """Something that authenticates: a token, key, secret, certificate or webhook secret."""

    kind: ClassVar[str] = "credential"
    credential_type: str  # deploy_key | fine_grained_pat | classic_pat | ssh_key | actions_secret | ...
    account_key: str | None = None  # the account it authenticates as
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    rotated_at: datetime | None = None
    # True when the vendor does not report last use for this kind at all, so
    # "never used" cannot be told apart from "not tracked".
    usage_tracked: bool = True
    scopes: tuple[str, ...] = ()
    privilege: Privilege = Privilege.READ
    status: Status = Status.ACTIVE
    created_by: str | None = None  # a record key or email of the creator
    owners: tuple[Ownership, ...] = ()
    value_hmac: str | None = None  # keyed hash of a value the API returned; never the value
    preview: str | None = None  # at most the first four characters
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Grant(Record):
    """An edge: principal or credential -> resource, with a level."""

    kind: ClassVar[str] = "grant"
    subject_key: str
    resource_key: str
    privilege: Privilege
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Person(Record):
    """A human, resolved across systems by verified email or explicit mapping."""

    kind: ClassVar[str] = "person"
    email: str
    status: str = "active"  # active | departed | leave
    end_date: date | None = None
    manager_email: str | None = None
    worker_type: str | None = None  # employee | contractor | vendor ...
    # Set on the person the graph merges from several people sources (HR, Okta, Entra):
    # each source's own status, so a finding can show where they disagree.
    statuses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class MatchRules:
    """How a contract claims NHIs: by owner email domain, name pattern or explicit key."""

    email_domains: tuple[str, ...] = ()
    name_patterns: tuple[str, ...] = ()  # fnmatch patterns, case-insensitive
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Contract(Record):
    kind: ClassVar[str] = "contract"
    contract_id: str
    counterparty: str
    contract_type: str  # vendor | partner | contractor | customer | reseller | managed_service
    start: date | None
    end: date | None
    status: str  # active | ended | terminated
    sponsor_email: str | None
    last_attestation: date | None = None
    match: MatchRules = field(default_factory=MatchRules)


@dataclass(frozen=True, kw_only=True)
class Exposure(Record):
    """A secret seen where it should not be, held only as a keyed hash and a preview."""

    kind: ClassVar[str] = "exposure"
    secret_type: str
    secret_hmac: str
    preview: str
    location: str  # e.g. "github:acme/api@<sha>:config/settings.py:12"
    credential_key: str | None = None  # inventory credential it matches, when known
    # What identifies the secret without being it, to link it to an inventory credential:
    # "aws_access_key_id_sha256:<hash>", "last_eight_hmac:<keyed hash>".
    identities: tuple[str, ...] = ()
    # Opt-in liveness check against the configured source's own API: None when not checked.
    live: bool | None = None
    verified_by: str | None = None  # the source whose API answered


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls for cls in (Resource, Account, Credential, Grant, Person, Contract, Exposure)
}


@dataclass(frozen=True, kw_only=True)
class InventoryStatus:
    """Coverage: whether one listing was read, and if not, why."""

    source: str
    inventory: str
    ok: bool
    count: int = 0
    reason: str | None = None


@dataclass
class CollectResult:
    """What a collector hands the sweep: records plus the coverage of each inventory."""

    source: str
    records: list[Record] = field(default_factory=list)
    coverage: list[InventoryStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Inventory-name prefixes the collector enumerated completely this sweep (e.g.
    # "github:acme/" once the org's repo list was read). A previously seen
    # inventory under such a prefix that was not reported again (its repo was
    # deleted) is gone; any other unreported inventory is kept as not refreshed.
    complete_scopes: list[str] = field(default_factory=list)


# --- serialisation ------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, Privilege) else value.name.lower()
    return value


def record_from_dict(data: dict[str, Any]) -> Record:
    """Rebuild a record from :meth:`Record.to_dict` output (as stored)."""
    data = dict(data)
    cls = RECORD_TYPES[data.pop("record_kind")]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _revive(f.name, data[f.name])
    return cls(**kwargs)


_DATETIME_FIELDS = {"created_at", "last_active_at", "last_used_at", "expires_at", "rotated_at"}
_DATE_FIELDS = {"end_date", "start", "end", "last_attestation"}


def _revive(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    if name in _DATE_FIELDS:
        return date.fromisoformat(value)
    if name == "privilege":
        return Privilege.parse(value)
    if name == "status" and value in Status._value2member_map_:
        return Status(value)
    if name == "owners":
        return tuple(Ownership(**o) for o in value)
    if name == "match":
        return MatchRules(**{k: tuple(v) for k, v in value.items()})
    if name in ("scopes", "identities"):
        return tuple(value)
    return value


# --- secret handling ------------------------------------------------------------


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a secret value under the installation key, hex encoded."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def redacted_preview(value: str, keep: int = 4) -> str:
    """At most the first four characters, then a mask; short values show nothing."""
    keep = min(keep, 4)
    if len(value) <= keep * 2:
        return "****"
    return value[:keep] + "****"


def utc(dt: datetime | None) -> datetime | None:
    """Normalise a datetime to aware UTC (naive values are taken as UTC)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)
