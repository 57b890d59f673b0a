"""AWS IAM collector: users, their access keys and policies, roles and who may assume them.

Cartography's split, as in the GitHub collector: ``get_*`` functions do the I/O with boto3 and
return what IAM sent; ``transform_*`` functions are pure (AWS's documented response shapes in,
records out) and are unit-tested on recorded-shape payloads; :func:`collect` ties them together.

The ``get_*`` functions assemble, per user and per role, the shape AWS documents for
``GetAccountAuthorizationDetails`` (``UserDetailList``/``RoleDetailList``/``GroupDetailList``)
from the per-inventory list calls, so that each inventory needs only its own permissions
(``iam:ListRoles`` for roles, ...) and a missing one is reported as exactly that gap.

Inventories, per account: ``{src}:{account}:credential_report``, ``:users``, ``:access_keys``,
``:roles``. One that cannot be read is a gap with the reason (``access denied (AccessDenied):
needs iam:ListRoles``), never an empty listing; the others are still read. A malformed policy
document is logged, added to the warnings and left out; the rest of the principal is kept.

Judgement lives in the rules, which use the sweep's injected ``now``; nothing here compares a
date with the wall clock. No secret access key is logged, stored or put in an error text: the
collector holds the configured one in memory only, to sign requests, and IAM never returns one
on the calls made here. Access key *ids* are identifiers, not secrets: they are kept (in the
record key and ``attributes``) so that a leaked key id can be tied to its inventory record.

Privilege is an upper bound read from the policies' actions (resources and conditions are not
evaluated): ``*`` or any IAM write (``iam:*``, ``iam:PassRole``, ...) is ADMIN, since it can grant
anything; any other write is WRITE; only read verbs (``Get``, ``List``, ``Describe``, ...) is READ.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import io
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from scanner.collectors.common import (Batch, CollectorRun, MalformedItem, MalformedResponse, each, grant_key,
                                       label_by, opt_list, opt_str, opt_time, req_str)
from scanner.config import AwsSource, Config, ConfigError, read_secret
from scanner.records import (
    Account,
    CollectResult,
    Credential,
    Grant,
    Ownership,
    Privilege,
    Record,
    Resource,
    Status,
    utc,
)

log = logging.getLogger("nhiscan.collectors.aws")

#: Inventories, in the order they are read (the credential report enriches users and keys).
INVENTORIES: tuple[str, ...] = ("credential_report", "users", "access_keys", "roles")

SECURITY_AUDIT_HINT = "the AWS managed policy SecurityAudit grants every call nhiscan makes"
_NEEDS: dict[str, str] = {
    "credential_report": "iam:GenerateCredentialReport and iam:GetCredentialReport",
    "users": "iam:ListUsers, iam:GetUser, iam:ListAttachedUserPolicies, iam:ListUserPolicies, iam:GetUserPolicy, "
             "iam:ListGroupsForUser, iam:ListAttachedGroupPolicies, iam:ListGroupPolicies, iam:GetGroupPolicy, "
             "iam:GetPolicy, iam:GetPolicyVersion",
    "access_keys": "iam:ListUsers, iam:ListAccessKeys, iam:GetAccessKeyLastUsed",
    "roles": "iam:ListRoles, iam:GetRole, iam:ListAttachedRolePolicies, iam:ListRolePolicies, iam:GetRolePolicy, "
             "iam:ListInstanceProfilesForRole, iam:GetPolicy, iam:GetPolicyVersion",
}

# AWS managed policies whose meaning is fixed: no need to read (or trust a copy of) the document.
KNOWN_MANAGED_POLICIES: dict[str, Privilege] = {
    "AdministratorAccess": Privilege.ADMIN,
    "IAMFullAccess": Privilege.ADMIN,
    "PowerUserAccess": Privilege.WRITE,
    "ReadOnlyAccess": Privilege.READ,
    "ViewOnlyAccess": Privilege.READ,
    "SecurityAudit": Privilege.READ,
    "IAMReadOnlyAccess": Privilege.READ,
}
# Action verbs that only read. Anything else (including a wildcard verb) may write.
_READ_VERBS: tuple[str, ...] = (
    "get", "list", "describe", "view", "read", "search", "lookup", "batchget", "batchdescribe",
    "query", "scan", "select", "head", "check", "validate", "estimate", "simulate",
)
# Actions whose verb looks like a write but which only produce a report about the account.
_READ_ONLY_ACTIONS = frozenset({
    "iam:generatecredentialreport", "iam:generateservicelastaccesseddetails",
    "iam:generateorganizationsaccessreport", "sts:getcalleridentity",
})
# IAM has no "service account" type: these tags, or these names, or no console password say so.
_TYPE_TAGS = ("account_type", "type")
_MACHINE_TAG_VALUES = frozenset({"service", "service_account", "service-account", "machine", "bot", "automation", "nhi"})
_HUMAN_TAG_VALUES = frozenset({"human", "person", "user", "employee"})
MACHINE_NAME_PATTERNS: tuple[str, ...] = ("svc-*", "svc_*", "*-svc", "*-bot", "bot-*", "*-service")
_OWNER_TAGS = ("owner", "email")
_REPORT_EMPTY = frozenset({"", "N/A", "not_supported", "no_information"})
_ROOT_ROW = "<root_account>"


# --- keys ---------------------------------------------------------------------------------------


def inventory_name(src: str, account: str, short: str) -> str:
    return f"{src}:{account}:{short}"


def account_key(src: str, account: str) -> str:
    """The AWS account itself, as a resource."""
    return f"{src}:account:{account}"


def user_key(src: str, name: str) -> str:
    return f"{src}:user:{name}"


def role_key(src: str, name: str) -> str:
    return f"{src}:role:{name}"


def access_key_key(src: str, access_key_id: str) -> str:
    return f"{src}:access_key:{access_key_id}"


def external_account_key(src: str, account_id: str) -> str:
    return f"{src}:external_account:{account_id}"


# --- payload checking (shared readers in scanner.collectors.common) -------------------------------

# boto3 hands Python objects, not JSON: a non-object item is "a list", not "a JSON list", and
# times come as datetimes (recorded payloads and the credential report give ISO 8601 text).
_each = functools.partial(each, json_items=False)
_label_for = functools.partial(label_by, ints="skip", empty=True)
_opt_time = functools.partial(opt_time, expected="a timestamp", zulu=True, native=True)


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    """IAM's ``[{"Key": k, "Value": v}]`` tags as a dict (entries of another shape are ignored)."""
    return {t["Key"]: t["Value"] for t in opt_list(item, "Tags")
            if isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str)}


def _tag(tags: dict[str, str], *names: str) -> str | None:
    folded = {k.lower(): v for k, v in tags.items()}
    for n in names:
        if folded.get(n):
            return folded[n]
    return None


def _looks_like_email(value: str | None) -> bool:
    return bool(value) and "@" in value and " " not in value and not value.startswith("@")  # type: ignore[operator]


# --- policies -> privilege ----------------------------------------------------------------------


def policy_document(raw: Any) -> dict[str, Any]:
    """A policy document as a dict. boto3 decodes IAM's URL-encoded JSON itself; when it could not
    (a malformed document) it leaves the text, which is tried once more here."""
    doc = raw
    if isinstance(doc, str):
        try:
            doc = json.loads(urllib.parse.unquote(doc))
        except ValueError:
            raise MalformedItem("policy document is not valid JSON") from None
    if not isinstance(doc, dict):
        raise MalformedItem("policy document is not a JSON object")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise MalformedItem("policy document has no list of Statement objects")
    return {**doc, "Statement": statements}


def _patterns(stmt: dict[str, Any], key: str) -> list[str]:
    v = stmt.get(key)
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(a, str) for a in v):
        return v
    raise MalformedItem(f"statement {key} is neither a string nor a list of strings")


def action_privilege(pattern: str) -> Privilege:
    """One ``Action`` entry (``s3:Get*``, ``iam:*``, ``*``) -> the most it can allow."""
    p = pattern.strip().lower()
    if p in ("*", "*:*"):
        return Privilege.ADMIN
    service, sep, verb = p.partition(":")
    if not sep or not service or not verb:
        raise MalformedItem("statement Action entry is not service:action")
    if p in _READ_ONLY_ACTIONS or verb.startswith(_READ_VERBS):
        return Privilege.READ
    if fnmatch.fnmatchcase("iam", service):
        return Privilege.ADMIN  # an IAM write can grant itself anything
    return Privilege.WRITE


def statement_privilege(stmt: dict[str, Any]) -> Privilege:
    if stmt.get("Effect") != "Allow":
        if stmt.get("Effect") == "Deny":
            return Privilege.NONE  # denies only narrow; the upper bound ignores them
        raise MalformedItem("statement Effect is neither Allow nor Deny")
    actions, not_actions = _patterns(stmt, "Action"), _patterns(stmt, "NotAction")
    if not actions and not not_actions:
        raise MalformedItem("statement has neither Action nor NotAction")
    level = max((action_privilege(a) for a in actions), default=Privilege.NONE)
    if not_actions:
        # "Allow everything except ...": admin unless IAM writes are among the exceptions
        # (PowerUserAccess is "everything except iam:*, organizations:*, account:*").
        excludes_iam = any(fnmatch.fnmatchcase("iam:putuserpolicy", a.lower()) for a in not_actions)
        level = max(level, Privilege.WRITE if excludes_iam else Privilege.ADMIN)
    return level


def document_privilege(raw: Any) -> Privilege:
    """The most a policy document allows (raises :class:`MalformedItem` on a malformed one)."""
    doc = policy_document(raw)
    return max((statement_privilege(s) for s in doc["Statement"]), default=Privilege.NONE)


@dataclass(frozen=True)
class Standing:
    """What a principal's policies add up to: the level, the policy names, what was unreadable."""

    privilege: Privilege
    policies: tuple[str, ...]
    unreadable: tuple[str, ...] = ()


def _managed_privilege(policy: dict[str, Any], documents: dict[str, Any]) -> Privilege:
    name, arn = req_str(policy, "PolicyName"), req_str(policy, "PolicyArn")
    if arn.split(":")[4:5] == ["aws"] and name in KNOWN_MANAGED_POLICIES:
        return KNOWN_MANAGED_POLICIES[name]
    if arn not in documents:
        raise MalformedItem("policy document was not read")
    return document_privilege(documents[arn])


def principal_standing(attached: Sequence[Any], inline: Sequence[Any], documents: dict[str, Any],
                       groups: Sequence[tuple[str, dict[str, Any]]] = ()) -> Standing:
    """Privilege and policy names from managed, inline and group policies.

    ``attached``: ``[{"PolicyName", "PolicyArn"}]``; ``inline``: ``[{"PolicyName", "PolicyDocument"}]``;
    ``documents``: managed policy ARN -> default version document; ``groups``: (name, GroupDetail).
    A policy that cannot be read is named in ``unreadable`` and left out of the level.
    """
    level, names, bad = Privilege.NONE, [], []

    def add(label: str, compute: Callable[[], Privilege]) -> None:
        nonlocal level
        try:
            level = max(level, compute())
            names.append(label)
        except MalformedItem as err:
            bad.append(f"{label}: {err}")

    def managed(prefix: str, items: Sequence[Any]) -> None:
        for p in items:
            label = prefix + (p.get("PolicyName") if isinstance(p, dict) and isinstance(p.get("PolicyName"), str) else "?")
            add(label, lambda p=p: _managed_privilege(p, documents) if isinstance(p, dict) else _bad("not an object"))

    def inline_(prefix: str, items: Sequence[Any]) -> None:
        for p in items:
            label = prefix + "inline:" + (p.get("PolicyName") if isinstance(p, dict) and isinstance(p.get("PolicyName"), str) else "?")
            add(label, lambda p=p: document_privilege(p.get("PolicyDocument")) if isinstance(p, dict) else _bad("not an object"))

    managed("", attached)
    inline_("", inline)
    for gname, detail in groups:
        managed(f"group:{gname}:", opt_list(detail, "AttachedManagedPolicies"))
        inline_(f"group:{gname}:", opt_list(detail, "GroupPolicyList"))
    return Standing(level, tuple(names), tuple(bad))


def _bad(why: str) -> Privilege:
    raise MalformedItem(why)


# --- the credential report ------------------------------------------------------------------------


_REPORT_COLUMNS = ("user", "arn", "password_enabled", "mfa_active")


def parse_credential_report(content: bytes | str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The CSV of ``GetCredentialReport`` -> {user name: parsed row}, plus skipped rows.

    Values AWS uses for "nothing" (``N/A``, ``not_supported``, ``no_information``) become None;
    ``true``/``false`` become booleans; dates become aware datetimes. The root account's row is
    left out (it is not an IAM user).
    """
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _REPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise MalformedResponse(f"credential report lacks the columns {', '.join(missing)}")
    rows: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for n, raw in enumerate(reader, start=2):
        name = (raw.get("user") or "").strip()
        if name == _ROOT_ROW:
            continue
        try:
            if not name:
                raise MalformedItem("missing user")
            rows[name] = {k: _report_value(k, v) for k, v in raw.items() if k is not None}
        except MalformedItem as err:
            skipped.append(f"credential report line {n}: {err}")
    return rows, skipped


def _report_value(column: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise MalformedItem(f"column {column} is missing")
    value = value.strip()
    if value in _REPORT_EMPTY:
        return None
    if value in ("true", "false"):
        return value == "true"
    if column.endswith(("_time", "_last_used", "_last_changed", "_next_rotation", "_last_rotated", "_last_used_date")):
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            raise MalformedItem(f"column {column} is not an ISO 8601 timestamp") from None
    return value


def _report_key_slot(row: dict[str, Any] | None, index: int) -> dict[str, Any]:
    """``access_key_{1,2}_*`` columns of one report row as a dict (``active``, ``last_rotated`` ...)."""
    if not row:
        return {}
    prefix = f"access_key_{index}_"
    return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}


# --- users ------------------------------------------------------------------------------------------


def classify_user(name: str, tags: dict[str, str], console_password: bool | None) -> tuple[bool, str]:
    """(is_human, why). A type tag wins; then a machine-like name; then "no console password"
    means a service account. With the password unknown, an email tag means a person."""
    declared = (_tag(tags, *_TYPE_TAGS) or "").strip().lower()
    if declared in _MACHINE_TAG_VALUES:
        return False, f"tag {declared}"
    if declared in _HUMAN_TAG_VALUES:
        return True, f"tag {declared}"
    if any(fnmatch.fnmatchcase(name.lower(), p) for p in MACHINE_NAME_PATTERNS):
        return False, "machine-like name"
    if console_password is False:
        return False, "no console password"
    if console_password is True:
        return True, "console password"
    if _looks_like_email(_tag(tags, "email")):
        return True, "email tag (console access unknown)"
    return False, "no evidence of a person (console access unknown)"


def transform_users(
    src: str,
    account: str,
    users: Sequence[Any],
    *,
    groups: dict[str, dict[str, Any]],
    documents: dict[str, Any],
    report: dict[str, dict[str, Any]] | None,
    console_access: dict[str, bool | None] | None = None,
) -> Batch:
    """``UserDetail`` items -> Account (+ Grant to the account at the policies' level).

    ``report`` (the parsed credential report) gives console password, MFA and last activity;
    without it ``console_access`` (from ``GetLoginProfile``) decides human or service account.
    """
    inv = inventory_name(src, account, "users")
    akey = account_key(src, account)
    batch = Batch(records=[_account_resource(src, account, inv)])

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "UserName")
        tags = tags_of(item)
        row = (report or {}).get(name)
        password = row.get("password_enabled") if row else (console_access or {}).get(name)
        is_human, why = classify_user(name, tags, password)
        member_of = [(g, groups[g]) for g in opt_list(item, "GroupList") if isinstance(g, str) and g in groups]
        standing = principal_standing(opt_list(item, "AttachedManagedPolicies"), opt_list(item, "UserPolicyList"), documents, member_of)
        for problem in standing.unreadable:
            batch.skipped.append(f"user {name!r} policy {problem}")
        owner = _tag(tags, *_OWNER_TAGS)
        email = _tag(tags, "email") or owner
        used = [t for t in (_opt_time(item, "PasswordLastUsed"), row and row.get("password_last_used"),
                            row and row.get("access_key_1_last_used_date"), row and row.get("access_key_2_last_used_date"))
                if isinstance(t, datetime)]
        ukey = user_key(src, name)
        acc = Account(
            key=ukey, source=src, inventory=inv, name=name, login=name,
            account_type="user" if is_human else "service_account",
            is_human=is_human,
            email=email.lower() if is_human and _looks_like_email(email) else None,
            created_at=_opt_time(item, "CreateDate"),
            last_active_at=max(used) if used else None,
            privilege=max(standing.privilege, Privilege.READ) if standing.policies else Privilege.NONE,
            mfa_enabled=row.get("mfa_active") if row else None,
            owners=() if is_human or not _looks_like_email(owner)
            else (Ownership(ref=owner.lower(), evidence="IAM user tag owner/email (AWS IAM API)", confidence=0.8),),  # type: ignore[union-attr]
            attributes={
                "user_name": name,
                "arn": opt_str(item, "Arn"),
                "user_id": opt_str(item, "UserId"),
                "path": opt_str(item, "Path"),
                "tags": tags,
                "classified_by": why,
                "console_password": password,
                "groups": [g for g, _ in member_of],
                "policies": list(standing.policies),
                "unreadable_policies": list(standing.unreadable),
            },
        )
        grant = Grant(key=grant_key(src, ukey, akey), source=src, inventory=inv, name=f"IAM user {name} in {account}",
                      subject_key=ukey, resource_key=akey, privilege=acc.privilege, scopes=standing.policies)
        return [acc, grant]

    _each(batch, users, "user", one, _label_for("UserName"))
    return batch


def _account_resource(src: str, account: str, inv: str) -> Resource:
    return Resource(key=account_key(src, account), source=src, inventory=inv, name=f"AWS account {account}",
                    resource_type="cloud_account")


# --- access keys ------------------------------------------------------------------------------------


def transform_access_keys(
    src: str,
    account: str,
    keys: Sequence[Any],
    *,
    report: dict[str, dict[str, Any]] | None,
    standing: dict[str, Standing],
) -> Batch:
    """``AccessKeyMetadata`` items (each with ``LastUsed``: ``AccessKeyLastUsed``) -> Credential.

    The key acts as its user, so it carries the user's privilege (``standing``, from the users
    inventory; READ with ``privilege_known: False`` when that was not read). The credential
    report adds ``rotated_at`` and, when ``GetAccessKeyLastUsed`` said nothing, the last use.
    """
    inv = inventory_name(src, account, "access_keys")
    batch = Batch()
    by_user: dict[str, list[dict[str, Any]]] = {}
    for k in keys:
        if isinstance(k, dict) and isinstance(k.get("UserName"), str):
            by_user.setdefault(k["UserName"], []).append(k)

    def one(item: dict[str, Any]) -> list[Record]:
        key_id = req_str(item, "AccessKeyId")
        user = req_str(item, "UserName")
        status = req_str(item, "Status")
        if status not in ("Active", "Inactive"):
            raise MalformedItem("Status is neither Active nor Inactive")
        created = _opt_time(item, "CreateDate")
        last = item.get("LastUsed") or {}
        if not isinstance(last, dict):
            raise MalformedItem("LastUsed is not an object")
        last_used = _opt_time(last, "LastUsedDate")
        slot = _report_slot(report, user, item, by_user.get(user, []))
        if last_used is None and isinstance(slot.get("last_used_date"), datetime):
            last_used = slot["last_used_date"]
        rotated = slot.get("last_rotated") if isinstance(slot.get("last_rotated"), datetime) else None
        known = standing.get(user)
        service = opt_str(last, "ServiceName")
        return [Credential(
            key=access_key_key(src, key_id), source=src, inventory=inv,
            name=f"{user} access key …{key_id[-4:]}",
            credential_type="access_key",
            account_key=user_key(src, user),
            created_at=created,
            last_used_at=last_used,
            expires_at=None,  # IAM access keys never expire
            rotated_at=rotated,
            scopes=known.policies if known else (),
            privilege=max(known.privilege, Privilege.READ) if known else Privilege.READ,
            status=Status.ACTIVE if status == "Active" else Status.SUSPENDED,
            attributes={
                "access_key_id": key_id,
                "user_name": user,
                "status": status,
                "last_used_service": None if service in (None, "N/A") else service,
                "last_used_region": None if opt_str(last, "Region") in (None, "N/A") else last.get("Region"),
                "privilege_known": known is not None,
            },
        )]

    _each(batch, keys, "access key", one, _label_for("AccessKeyId"))
    return batch


def _report_slot(report: dict[str, dict[str, Any]] | None, user: str, item: dict[str, Any],
                 user_keys: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's ``access_key_1``/``_2`` columns for this key: slot 1 is the older key. Used
    only when the slot's rotation date agrees with the key's creation (to the second)."""
    row = (report or {}).get(user)
    if not row:
        return {}
    ordered = sorted(user_keys, key=lambda k: str(k.get("CreateDate")))
    try:
        index = next(i for i, k in enumerate(ordered) if k is item) + 1
    except StopIteration:
        return {}
    slot = _report_key_slot(row, index)
    created, rotated = _opt_time(item, "CreateDate"), slot.get("last_rotated")
    if isinstance(rotated, datetime) and created is not None and abs((rotated - created).total_seconds()) >= 1:
        return {}
    return slot


# --- roles ---------------------------------------------------------------------------------------------


@dataclass
class Trust:
    """Who a role's trust policy lets assume it."""

    accounts: set[str] = field(default_factory=set)  # other AWS accounts ("*" = anyone)
    internal: set[str] = field(default_factory=set)  # principals of this very account
    services: set[str] = field(default_factory=set)
    federated: set[str] = field(default_factory=set)
    external_id: bool = False  # every external grant is guarded by sts:ExternalId
    unresolved: set[str] = field(default_factory=set)


def trust_of(raw: Any, own_account: str) -> Trust:
    """Parse an ``AssumeRolePolicyDocument`` (raises :class:`MalformedItem` when it is malformed)."""
    doc = policy_document(raw)
    trust = Trust()
    guarded: list[bool] = []
    for stmt in doc["Statement"]:
        if stmt.get("Effect") != "Allow":
            continue
        principal = stmt.get("Principal")
        if principal == "*":
            principal = {"AWS": "*"}
        if not isinstance(principal, dict):
            raise MalformedItem("trust statement Principal is not an object")
        for value in _principal_values(principal, "AWS"):
            acct = _account_of_principal(value)
            if acct is None:
                trust.unresolved.add(value)
            elif acct == own_account:
                trust.internal.add(value)
            else:
                trust.accounts.add(acct)
                condition = stmt.get("Condition")
                guarded.append(isinstance(condition, dict) and any(
                    isinstance(c, dict) and any(k.lower() == "sts:externalid" for k in c) for c in condition.values()))
        trust.services.update(_principal_values(principal, "Service"))
        trust.federated.update(_principal_values(principal, "Federated"))
    trust.external_id = bool(guarded) and all(guarded)
    return trust


def _principal_values(principal: dict[str, Any], kind: str) -> list[str]:
    v = principal.get(kind)
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise MalformedItem(f"trust Principal.{kind} is neither a string nor a list of strings")


def _account_of_principal(value: str) -> str | None:
    """``*``, a 12-digit account id, or the account in an ``arn:aws:iam::<id>:...`` ARN."""
    value = value.strip()
    if value == "*":
        return "*"
    if value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] in ("iam", "sts") and parts[4].isdigit() and len(parts[4]) == 12:
        return parts[4]
    return None  # e.g. a unique id (AIDA...) left when the principal was deleted


def transform_roles(src: str, account: str, roles: Sequence[Any], *, documents: dict[str, Any]) -> Batch:
    """``RoleDetail`` items -> Account (service_account) + Grant to the account, and for every other
    AWS account its trust policy names: an ``app`` Account (third party) with a Grant to the role.

    That external account is what a contract covers (``match_names`` with the account id, or
    ``match_keys`` with ``{src}:external_account:<id>``), so ``contract-ended`` fires on it when the
    contract ends and the role still trusts it.
    """
    inv = inventory_name(src, account, "roles")
    akey = account_key(src, account)
    batch = Batch(records=[_account_resource(src, account, inv)])
    external: dict[str, dict[str, Any]] = {}  # account id -> {"privilege", "roles"}

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "RoleName")
        path = opt_str(item, "Path") or "/"
        try:
            trust = trust_of(item.get("AssumeRolePolicyDocument"), account)
        except MalformedItem as err:
            batch.skipped.append(f"role {name!r} trust policy: {err}")
            trust = None
        standing = principal_standing(opt_list(item, "AttachedManagedPolicies"), opt_list(item, "RolePolicyList"), documents)
        for problem in standing.unreadable:
            batch.skipped.append(f"role {name!r} policy {problem}")
        tags = tags_of(item)
        owner = _tag(tags, *_OWNER_TAGS)
        last = item.get("RoleLastUsed") or {}
        if not isinstance(last, dict):
            raise MalformedItem("RoleLastUsed is not an object")
        rkey = role_key(src, name)
        level = max(standing.privilege, Privilege.READ) if standing.policies else Privilege.NONE
        profiles = [p.get("InstanceProfileName") for p in opt_list(item, "InstanceProfileList") if isinstance(p, dict)]
        role = Account(
            key=rkey, source=src, inventory=inv, name=name,
            # Service-linked roles belong to AWS services and cannot be changed: inventoried, not judged.
            account_type="service_linked_role" if path.startswith("/aws-service-role/") else "service_account",
            is_human=False,
            created_at=_opt_time(item, "CreateDate"),
            last_active_at=_opt_time(last, "LastUsedDate"),
            privilege=level,
            owners=(Ownership(ref=owner.lower(), evidence="IAM role tag owner/email (AWS IAM API)", confidence=0.8),)
            if _looks_like_email(owner) else (),  # type: ignore[union-attr]
            attributes={
                "role_name": name,
                "arn": opt_str(item, "Arn"),
                "path": path,
                "description": opt_str(item, "Description"),
                "tags": tags,
                "policies": list(standing.policies),
                "unreadable_policies": list(standing.unreadable),
                "trusted_accounts": sorted(trust.accounts) if trust else None,
                "trusted_internal": sorted(trust.internal) if trust else None,
                "trusted_services": sorted(trust.services) if trust else None,
                "trusted_federated": sorted(trust.federated) if trust else None,
                "trusted_unresolved": sorted(trust.unresolved) if trust else None,
                "requires_external_id": trust.external_id if trust else None,
                "instance_profiles": [p for p in profiles if isinstance(p, str)],
                "max_session_duration": item.get("MaxSessionDuration"),
                "last_used_region": opt_str(last, "Region"),
            },
        )
        out: list[Record] = [role, Grant(key=grant_key(src, rkey, akey), source=src, inventory=inv,
                                         name=f"IAM role {name} in {account}", subject_key=rkey, resource_key=akey,
                                         privilege=level, scopes=standing.policies)]
        for acct in sorted(trust.accounts) if trust else ():
            ext = external.setdefault(acct, {"privilege": Privilege.NONE, "roles": [], "external_id": True})
            ext["privilege"] = max(ext["privilege"], level)
            ext["roles"].append(name)
            ext["external_id"] = ext["external_id"] and trust.external_id  # type: ignore[union-attr]
            ekey = external_account_key(src, acct)
            out.append(Grant(key=grant_key(src, ekey, rkey), source=src, inventory=inv,
                             name=f"{'any AWS account' if acct == '*' else 'AWS account ' + acct} can assume {name}",
                             subject_key=ekey, resource_key=rkey, privilege=level, scopes=("sts:AssumeRole",)))
        return out

    _each(batch, roles, "role", one, _label_for("RoleName"))
    for acct, ext in sorted(external.items()):
        batch.records.append(Account(
            key=external_account_key(src, acct), source=src, inventory=inv,
            name=acct if acct != "*" else "* (any AWS account)", login=acct,
            account_type="app", is_human=False, third_party=True,
            privilege=ext["privilege"],
            attributes={"account_id": acct, "can_assume": sorted(ext["roles"]), "external_id_required": ext["external_id"]},
        ))
    return batch


# --- I/O: boto3 ---------------------------------------------------------------------------------------


def make_session(source: AwsSource, config: Config) -> Any:
    """A boto3 session: named credentials (env var or file) when configured, else the usual chain."""
    import boto3

    key_id = secret = None
    if source.access_key_id_env or source.access_key_id_file:
        key_id = read_secret(config, env=source.access_key_id_env, file=source.access_key_id_file,
                             what=f"sources.aws {source.name} access key id")
    if source.secret_access_key_env or source.secret_access_key_file:
        secret = read_secret(config, env=source.secret_access_key_env, file=source.secret_access_key_file,
                             what=f"sources.aws {source.name} secret access key")
    if (key_id is None) != (secret is None):
        raise ConfigError(f"sources.aws {source.name}: set both the access key id and the secret access key, or neither")
    return boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                 profile_name=source.profile if key_id is None else None, region_name=source.region)


def make_clients(session: Any, source: AwsSource) -> tuple[Any, Any]:
    """IAM and STS clients with adaptive retries, so ``Throttling`` is waited out and slowed for."""
    from botocore.config import Config as BotoConfig

    cfg = BotoConfig(
        # botocore counts max_attempts as retries after the first request, as max_retries does.
        retries={"mode": "adaptive", "max_attempts": source.max_retries},
        connect_timeout=source.timeout,
        read_timeout=source.timeout,
        user_agent_extra="nhiscan",
    )
    iam = session.client("iam", endpoint_url=source.base_url, config=cfg)
    sts = session.client("sts", endpoint_url=source.base_url, config=cfg)
    return iam, sts


def paginate(client: Any, operation: str, result_key: str, page_size: int, **params: Any) -> list[Any]:
    """Every item of a paged IAM listing (``Marker``/``IsTruncated``), ``page_size`` per call."""
    paginator = client.get_paginator(operation)
    out: list[Any] = []
    for page in paginator.paginate(**params, PaginationConfig={"PageSize": page_size}):
        out.extend(page.get(result_key) or [])
    return out


def get_account_id(sts: Any) -> str:
    return sts.get_caller_identity()["Account"]


def get_credential_report(iam: Any, *, wait_seconds: float) -> bytes:
    """Ask IAM for a fresh-enough report and fetch it. IAM builds it asynchronously: poll
    ``GenerateCredentialReport`` until ``COMPLETE`` (or the report is served), at most ``wait_seconds``."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        state = iam.generate_credential_report().get("State")
        if state == "COMPLETE" or state in ("STARTED", "INPROGRESS"):
            try:
                return iam.get_credential_report()["Content"]
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                if code not in ("ReportInProgress", "ReportNotPresent", "ReportExpired"):
                    raise
        if time.monotonic() + delay > deadline:
            raise TimeoutError(f"the credential report was not ready within {wait_seconds:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 5)


def _not_found(err: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") == "NoSuchEntity"


def _inline(iam: Any, list_op: str, get_op: str, page_size: int, **who: str) -> list[dict[str, Any]]:
    names = paginate(iam, list_op, "PolicyNames", page_size, **who)
    return [{"PolicyName": n, "PolicyDocument": getattr(iam, get_op)(PolicyName=n, **who)["PolicyDocument"]} for n in names]


def get_policy_documents(iam: Any, attached: Iterable[dict[str, Any]], documents: dict[str, Any]) -> None:
    """Fill ``documents`` (ARN -> default version document) for managed policies not yet read.
    AWS managed policies whose meaning is fixed (:data:`KNOWN_MANAGED_POLICIES`) are not read."""
    for p in attached:
        arn, name = p.get("PolicyArn"), p.get("PolicyName")
        if not isinstance(arn, str) or arn in documents:
            continue
        if arn.split(":")[4:5] == ["aws"] and name in KNOWN_MANAGED_POLICIES:
            continue
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        documents[arn] = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def get_user_details(iam: Any, users: Sequence[dict[str, Any]], page_size: int, documents: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``UserDetail``-shaped dicts for the listed users, the ``GroupDetail`` of their groups, and
    (into ``documents``) the managed policies they use. A user deleted meanwhile is left out."""
    details: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for listed in users:
        name = listed.get("UserName") if isinstance(listed, dict) else None
        if not isinstance(name, str):
            details.append(listed)  # the transform reports it as malformed
            continue
        try:
            detail = dict(listed)
            detail.update(iam.get_user(UserName=name)["User"])  # ListUsers omits Tags
            detail["AttachedManagedPolicies"] = paginate(iam, "list_attached_user_policies", "AttachedPolicies", page_size, UserName=name)
            detail["UserPolicyList"] = _inline(iam, "list_user_policies", "get_user_policy", page_size, UserName=name)
            detail["GroupList"] = [g["GroupName"] for g in paginate(iam, "list_groups_for_user", "Groups", page_size, UserName=name)]
        except Exception as err:
            if _not_found(err):
                log.info("aws: user %s vanished while being read; left out", name)
                continue
            raise
        for g in detail["GroupList"]:
            if g not in groups:
                groups[g] = {
                    "GroupName": g,
                    "AttachedManagedPolicies": paginate(iam, "list_attached_group_policies", "AttachedPolicies", page_size, GroupName=g),
                    "GroupPolicyList": _inline(iam, "list_group_policies", "get_group_policy", page_size, GroupName=g),
                }
                get_policy_documents(iam, groups[g]["AttachedManagedPolicies"], documents)
        get_policy_documents(iam, detail["AttachedManagedPolicies"], documents)
        details.append(detail)
    return details, groups


def get_login_profiles(iam: Any, users: Sequence[dict[str, Any]]) -> dict[str, bool | None]:
    """Console access per user when the credential report is not available: a login profile
    means a console password; ``NoSuchEntity`` means none; any other error leaves it unknown."""
    out: dict[str, bool | None] = {}
    for u in users:
        name = u.get("UserName") if isinstance(u, dict) else None
        if not isinstance(name, str):
            continue
        try:
            iam.get_login_profile(UserName=name)
            out[name] = True
        except Exception as err:  # noqa: BLE001 - unknown is an answer too
            out[name] = False if _not_found(err) else None
    return out


def get_access_keys(iam: Any, users: Sequence[dict[str, Any]], page_size: int) -> list[dict[str, Any]]:
    """Every user's ``AccessKeyMetadata``, each with ``LastUsed`` from ``GetAccessKeyLastUsed``."""
    keys: list[dict[str, Any]] = []
    for u in users:
        name = u.get("UserName") if isinstance(u, dict) else None
        if not isinstance(name, str):
            continue
        try:
            listed = paginate(iam, "list_access_keys", "AccessKeyMetadata", page_size, UserName=name)
        except Exception as err:
            if _not_found(err):
                continue
            raise
        for k in listed:
            item = dict(k) if isinstance(k, dict) else k
            if isinstance(item, dict) and isinstance(item.get("AccessKeyId"), str):
                item["LastUsed"] = iam.get_access_key_last_used(AccessKeyId=item["AccessKeyId"]).get("AccessKeyLastUsed") or {}
            keys.append(item)
    return keys


def get_role_details(iam: Any, page_size: int, documents: dict[str, Any]) -> list[dict[str, Any]]:
    """``RoleDetail``-shaped dicts. ``ListRoles`` leaves out ``RoleLastUsed`` and tags: ``GetRole`` has them."""
    details: list[dict[str, Any]] = []
    for listed in paginate(iam, "list_roles", "Roles", page_size):
        name = listed.get("RoleName") if isinstance(listed, dict) else None
        if not isinstance(name, str):
            details.append(listed)
            continue
        try:
            detail = dict(listed)
            detail.update(iam.get_role(RoleName=name)["Role"])
            detail["AttachedManagedPolicies"] = paginate(iam, "list_attached_role_policies", "AttachedPolicies", page_size, RoleName=name)
            detail["RolePolicyList"] = _inline(iam, "list_role_policies", "get_role_policy", page_size, RoleName=name)
            detail["InstanceProfileList"] = paginate(iam, "list_instance_profiles_for_role", "InstanceProfiles", page_size, RoleName=name)
        except Exception as err:
            if _not_found(err):
                log.info("aws: role %s vanished while being read; left out", name)
                continue
            raise
        get_policy_documents(iam, detail["AttachedManagedPolicies"], documents)
        details.append(detail)
    return details


# --- errors -> coverage reasons ---------------------------------------------------------------------

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"})
_BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException",
                              "InvalidAccessKeyId", "AuthFailure"})
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})


def describe_error(err: BaseException, *, service: str = "iam", attempts: int | None = None, timeout: float | None = None) -> str:
    """A reason a security team can act on: the AWS error code, what went wrong, what is needed.

    Built from the error code, the operation and AWS's message (which names the denied action),
    never from request details.
    """
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code") or "error")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = " ".join(str(error.get("Message") or "").split())[:200]
        op = f"{service}:{err.operation_name}"
        if code in _DENIED:
            return f"access denied ({code}): needs {op} ({SECURITY_AUDIT_HINT})"
        if code in _BAD_CREDENTIALS:
            return f"credentials rejected ({code}) on {op}: wrong, deleted or inactive access key"
        if code in _THROTTLED:
            tries = f" within {attempts} attempts" if attempts else ""
            return f"throttled ({code}) on {op} and not recovered{tries}"
        if isinstance(status, int) and status >= 500:
            return f"server error (HTTP {status}, {code}) on {op} after retries"
        return f"{code} on {op}" + (f": {message}" if message else "")
    if isinstance(err, (ReadTimeoutError, ConnectTimeoutError)):
        return "request timed out" + (f" after {timeout:g}s" if timeout else "") + " (retries exhausted)"
    if isinstance(err, EndpointConnectionError):
        return "could not connect to the AWS endpoint (retries exhausted)"
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found: set access_key_id_env/_file and secret_access_key_env/_file, a profile, or the usual AWS chain"
    if isinstance(err, ProfileNotFound):
        return "the configured AWS profile was not found"
    if isinstance(err, (ConfigError, MalformedResponse, TimeoutError)):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


class _WithholdBodies(logging.Filter):
    """botocore's DEBUG lines carry whole request and response bodies. IAM's answers to the calls
    made here hold no secret, but nothing is gained by logging tenant data wholesale."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith(("Response body", "Making request for", "Response headers")):
            record.msg = msg.split(":", 1)[0] + ": <withheld by nhiscan>"
            record.args = ()
        return True


def _guard_client_logs() -> None:
    for name in ("botocore.parsers", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if not any(type(f).__name__ == "_WithholdBodies" for f in logger.filters):
            logger.addFilter(_WithholdBodies())


# --- collect --------------------------------------------------------------------------------------------


def collect(source: AwsSource, config: Config, *, hmac_key: bytes, progress: Callable[[str], None] | None = None) -> CollectResult:
    """Read every configured inventory of one AWS account; never raises for an API failure.

    ``hmac_key`` is unused: IAM returns no secret value to hash. Each inventory appears in
    ``coverage``, ok with its record count or a gap with the reason.
    """
    _guard_client_logs()
    run = _Collector(source, progress)
    run.run(config)
    return run.result


class _Collector(CollectorRun):
    vendor = "aws"
    counted_noun = "rows"  # the credential report is counted in rows, not records

    def __init__(self, source: AwsSource, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: AwsSource = source
        self.wanted = self.requested(INVENTORIES)
        self.account = source.account_id or "*"
        self.report: dict[str, dict[str, Any]] | None = None
        self.users: list[dict[str, Any]] | None = None
        self.standing: dict[str, Standing] = {}
        self.documents: dict[str, Any] = {}

    def describe(self, err: BaseException, need: str) -> str:
        """``need`` is the AWS service the read called (``iam``, ``sts``)."""
        return describe_error(err, service=need, attempts=self.source.max_retries + 1, timeout=self.source.timeout)

    def inv(self, short: str) -> str:
        return inventory_name(self.src, self.account, short)

    inventory_of = inv

    # -- the run

    def run(self, config: Config) -> None:
        source = self.source
        try:
            session = make_session(source, config)
            iam, sts = make_clients(session, source)
        except Exception as err:  # noqa: BLE001 - ConfigError, a missing profile ...
            reason = f"credentials not available: {describe_error(err)}"
            for short in self.wanted:
                self.gap(short, reason)
            return
        if source.account_id is None:
            try:
                self.account = get_account_id(sts)
            except Exception as err:  # noqa: BLE001
                reason = "the account could not be identified (sts:GetCallerIdentity): " + describe_error(
                    err, service="sts", attempts=source.max_retries + 1, timeout=source.timeout)
                for short in self.wanted:
                    self.gap(short, reason)
                return
        page = source.page_size
        for short in self.wanted:
            if short == "credential_report":
                self.read(short, "iam", lambda: self._credential_report(iam))
            elif short == "users":
                self.read(short, "iam", lambda: self._users(iam, page))
            elif short == "access_keys":
                self.read(short, "iam", lambda: self._access_keys(iam, page))
            elif short == "roles":
                self.read(short, "iam", lambda: transform_roles(self.src, self.account, get_role_details(iam, page, self.documents),
                                                         documents=self.documents))

    def _credential_report(self, iam: Any) -> tuple[Batch, int]:
        rows, skipped = parse_credential_report(get_credential_report(iam, wait_seconds=max(self.source.timeout, 5)))
        self.report = rows
        return Batch(skipped=skipped), len(rows)

    def _list_users(self, iam: Any, page: int) -> list[dict[str, Any]]:
        if self.users is None:
            self.users = paginate(iam, "list_users", "Users", page)
        return self.users

    def _users(self, iam: Any, page: int) -> Batch:
        users = self._list_users(iam, page)
        details, groups = get_user_details(iam, users, page, self.documents)
        console = None
        if self.report is None:
            console = get_login_profiles(iam, users)
        batch = transform_users(self.src, self.account, details, groups=groups, documents=self.documents,
                                report=self.report, console_access=console)
        for rec in batch.records:
            if isinstance(rec, Account):
                self.standing[rec.name] = Standing(rec.privilege, tuple(rec.attributes["policies"]),
                                                   tuple(rec.attributes["unreadable_policies"]))
        return batch

    def _access_keys(self, iam: Any, page: int) -> Batch:
        users = self._list_users(iam, page)
        keys = get_access_keys(iam, users, page)
        return transform_access_keys(self.src, self.account, keys, report=self.report, standing=self.standing)
