"""GitLab collector: users and bots, every kind of token, deploy keys, CI/CD variables, runners.

Cartography's split, as in the GitHub collector: ``get_*``/``listing`` do the I/O with
python-gitlab and return the raw JSON GitLab sent; ``transform_*`` are pure (raw dicts in,
records out) and unit-tested on recorded-shape payloads; :func:`collect` ties them together.

Inventories (``InventoryStatus.inventory`` and every record's ``inventory``):

* ``{src}:instance:<inv>`` — the instance-wide listings only an administrator may read (``users``,
  ``personal_access_tokens``, ``impersonation_tokens``, ``service_accounts``, ``deploy_tokens``,
  ``deploy_keys``, ``variables``, ``runners``), plus ``groups`` (the top-level groups in scope).
* ``{src}:{group}:<inv>`` — ``groups`` (its subgroups), ``projects``, ``access_tokens``,
  ``service_accounts`` (top-level groups), ``deploy_tokens``, ``variables``, ``runners``.
* ``{src}:{group/project}:<inv>`` — ``access_tokens``, ``deploy_tokens``, ``deploy_keys``,
  ``variables``, ``runners``.

A listing that cannot be read is a gap with the reason and the access it needs — never an empty
listing (DESIGN.md invariant 2). With ``instance_admin = false``, or a token whose user is not an
administrator, the admin listings are gaps *without being called*: GitLab answers a non-admin's
``GET /personal_access_tokens`` with only their own tokens, which would look like a complete
inventory. CI/CD variable values are kept only as a keyed hash (invariant 1).

Retries: python-gitlab waits out 429s honouring ``Retry-After`` (``obey_rate_limit``, on by
default) and, with ``retry_transient_errors=True``, retries 5xx and timeouts; both are bounded by
the source's ``max_retries``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import urllib.parse
from typing import Any, Callable, Iterable, Mapping, Sequence

import gitlab
import requests
from gitlab.exceptions import GitlabAuthenticationError, GitlabError, GitlabParsingError

from detectors.secrets.exposures import exposures_in_variable
from scanner.collectors.common import (AUTHORITY_LISTED, AUTHORITY_SPECIFIC, Batch, CollectorRun, MalformedItem,
                                       MalformedResponse, each, grant_key, label_by, opt_bool, opt_dict, opt_list,
                                       opt_str, opt_time, req_int, req_str, str_list)
from scanner.config import Config, ConfigError, GitLabSource, read_secret
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
    keyed_hash,
)

log = logging.getLogger("nhiscan.collectors.gitlab")

#: Instance-wide listings only an administrator may read, in the order they are read.
ADMIN_INVENTORIES: tuple[str, ...] = (
    "service_accounts",
    "users",
    "personal_access_tokens",
    "impersonation_tokens",
    "deploy_tokens",
    "deploy_keys",
    "variables",
    "runners",
)
#: Per-group listings (``groups`` = its subgroups; ``service_accounts`` only on top-level groups).
GROUP_INVENTORIES: tuple[str, ...] = ("groups", "projects", "access_tokens", "service_accounts", "deploy_tokens", "variables", "runners")
#: Per-project listings.
PROJECT_INVENTORIES: tuple[str, ...] = ("access_tokens", "deploy_tokens", "deploy_keys", "variables", "runners")
INVENTORY_NAMES: frozenset[str] = frozenset(ADMIN_INVENTORIES) | frozenset(GROUP_INVENTORIES) | frozenset(PROJECT_INVENTORIES)

NEEDS_ADMIN = "needs an instance administrator token"
_GROUP_SCOPED = frozenset(GROUP_INVENTORIES) - {"groups", "projects"}

ACCESS_LEVEL_NAMES: dict[int, str] = {
    5: "minimal_access", 10: "guest", 15: "planner", 20: "reporter", 30: "developer", 40: "maintainer", 50: "owner",
}
# Token scopes, by what they let the holder do.
_ADMIN_SCOPES = frozenset({"sudo", "admin_mode"})
_FULL_SCOPES = frozenset({"api"})
_WRITE_SCOPES = frozenset({
    "write_repository", "write_registry", "write_package_registry", "write_virtual_registry",
    "create_runner", "manage_runner", "k8s_proxy", "write_observability",
})
_BOT_USERNAME = re.compile(r"^(project|group)_\d+_bot(_[0-9a-f]+)?$")


# --- keys ------------------------------------------------------------------------------------


def inventory_name(src: str, scope: str, short: str) -> str:
    """``{src}:instance:<short>``, ``{src}:{group}:<short>`` or ``{src}:{group/project}:<short>``."""
    return f"{src}:{scope}:{short}"


def instance_key(src: str, host: str) -> str:
    return f"{src}:instance:{host}"


def group_key(src: str, full_path: str) -> str:
    return f"{src}:group:{full_path}"


def project_key(src: str, path: str) -> str:
    return f"{src}:project:{path}"


def user_key(src: str, user_id: int) -> str:
    """Users are keyed by their numeric id: tokens name their holder by ``user_id`` only."""
    return f"{src}:user:{user_id}"


def token_key(src: str, token_id: int) -> str:
    """Personal, impersonation, project, group and service-account tokens share one id space."""
    return f"{src}:access_token:{token_id}"


def host_of(base_url: str) -> str:
    return urllib.parse.urlsplit(base_url).netloc or base_url


# --- payload checking (shared readers in scanner.collectors.common) -------------------------

# An item in a warning is named by its id (shown bare), username, key, name, title or path;
# never by a variable's value.
_label = label_by("id", "username", "key", "name", "title", "full_path", ints="plain", empty=True)
_each = functools.partial(each, label=_label)


# --- privilege normalisation -------------------------------------------------------------------


def access_level_privilege(level: int) -> Privilege:
    """GitLab role -> privilege: Guest/Planner/Reporter READ, Developer WRITE, Maintainer ADMIN, Owner OWNER."""
    if level >= 50:
        return Privilege.OWNER
    if level >= 40:
        return Privilege.ADMIN
    if level >= 30:
        return Privilege.WRITE
    return Privilege.READ


def scope_ceiling(scopes: Iterable[str]) -> Privilege:
    """The most a token's scopes let it do, whatever its holder's role: ``api`` (and ``sudo``,
    ``admin_mode``) is everything the holder can do (OWNER as a ceiling), ``write_*``,
    ``create_runner``, ``k8s_proxy`` ... are WRITE, the ``read_*`` scopes READ."""
    s = {x.strip().lower() for x in scopes}
    if s & (_ADMIN_SCOPES | _FULL_SCOPES):
        return Privilege.OWNER
    if s & _WRITE_SCOPES or any(x.startswith("write_") for x in s):
        return Privilege.WRITE
    return Privilege.READ


def personal_token_privilege(scopes: Iterable[str], *, holder_is_admin: bool = False) -> Privilege:
    """A personal (or impersonation, or service-account) token: its scopes, read against its holder.

    ``sudo`` and ``admin_mode`` are ADMIN (they exist for administrators). ``api`` is ADMIN when
    the holder is an instance administrator and WRITE otherwise (the holder's own group roles are
    not known here); write scopes are WRITE; read scopes READ.
    """
    s = {x.strip().lower() for x in scopes}
    if s & _ADMIN_SCOPES:
        return Privilege.ADMIN
    if s & _FULL_SCOPES:
        return Privilege.ADMIN if holder_is_admin else Privilege.WRITE
    return min(scope_ceiling(s), Privilege.WRITE)


def resource_token_privilege(access_level: int, scopes: Iterable[str]) -> Privilege:
    """A project or group access token: its bot's role, capped by the token's scopes.

    Maintainer + ``api`` is ADMIN; Maintainer + ``read_repository`` only READ; Developer + ``api`` WRITE.
    """
    return min(access_level_privilege(access_level), scope_ceiling(scopes))


def deploy_token_privilege(scopes: Iterable[str]) -> Privilege:
    return Privilege.WRITE if any(s.startswith("write_") for s in scopes) else Privilege.READ


def _token_status(item: dict[str, Any]) -> Status:
    if opt_bool(item, "revoked", False):
        return Status.REVOKED
    if opt_bool(item, "active", True) is False:
        return Status.EXPIRED
    return Status.ACTIVE


def _bot_kind(username: str | None) -> str | None:
    m = _BOT_USERNAME.match(username or "")
    return f"{m.group(1)}_bot" if m else None


def _owner_email(email: str | None) -> str | None:
    """A non-human account's email names a mailbox someone reads, unless GitLab generated it."""
    if not email or "noreply" in email.lower():
        return None
    return email


# --- transforms (pure) ---------------------------------------------------------------------------


def transform_groups(src: str, items: Sequence[Any], *, inventory: str, instance: str | None = None,
                     host: str | None = None) -> Batch:
    """Groups -> Resources (``{src}:group:{full_path}``), each under its parent or the instance.

    ``instance`` (with ``host``) also emits the instance itself, the parent of top-level groups.
    """
    batch = Batch()
    if instance is not None:
        batch.records.append(Resource(key=instance, source=src, inventory=inventory, name=f"GitLab {host or ''}".strip(),
                                      resource_type="instance"))
    top_parent = instance

    def one(item: dict[str, Any]) -> list[Record]:
        full_path = req_str(item, "full_path")
        req_int(item, "id")
        parent = group_key(src, full_path.rsplit("/", 1)[0]) if "/" in full_path else top_parent
        return [Resource(key=group_key(src, full_path), source=src, inventory=inventory, name=full_path,
                         url=opt_str(item, "web_url"), resource_type="group", parent_key=parent,
                         visibility=opt_str(item, "visibility"))]

    _each(batch, items, "group", one)
    return batch


def transform_projects(src: str, items: Sequence[Any], *, inventory: str) -> Batch:
    """Projects -> Resources (``{src}:project:{path_with_namespace}``) under their namespace group."""
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        path = req_str(item, "path_with_namespace")
        req_int(item, "id")
        namespace = opt_dict(item, "namespace")
        ns_path = opt_str(namespace, "full_path") or path.rsplit("/", 1)[0]
        ns_kind = opt_str(namespace, "kind") or "group"
        return [Resource(key=project_key(src, path), source=src, inventory=inventory, name=path,
                         url=opt_str(item, "web_url"), resource_type="project",
                         parent_key=group_key(src, ns_path) if ns_kind == "group" else None,
                         visibility=opt_str(item, "visibility"))]

    _each(batch, items, "project", one)
    return batch


def transform_users(src: str, items: Sequence[Any], *, inventory: str, service_account_ids: Iterable[int] = ()) -> Batch:
    """``GET /users`` as an administrator -> Accounts: humans with their email; bots (project and
    group access token bots) ``account_type="bot"``; service accounts ``"service_account"``.

    A bot's or service account's ``created_by`` is its creator: an ownership claim.
    """
    batch = Batch()
    sa_ids = set(service_account_ids)

    def one(item: dict[str, Any]) -> list[Record]:
        uid = req_int(item, "id")
        username = req_str(item, "username")
        bot = opt_bool(item, "bot", False)
        is_admin = opt_bool(item, "is_admin", False)
        state = opt_str(item, "state") or "active"
        if not bot:
            account_type = "user"
        elif uid in sa_ids or username.startswith("service_account"):
            account_type = "service_account"
        else:
            account_type = "bot"
        creator = opt_dict(item, "created_by")
        owners: tuple[Ownership, ...] = ()
        if bot and creator:
            owners = (Ownership(ref=user_key(src, req_int(creator, "id")), evidence="user created_by (GitLab API)",
                                confidence=0.8, role="creator"),)
        last_active = opt_time(item, "last_activity_on") or opt_time(item, "current_sign_in_at") or opt_time(item, "last_sign_in_at")
        email = opt_str(item, "email")
        return [Account(
            key=user_key(src, uid), source=src, inventory=inventory, name=opt_str(item, "name") or username,
            url=opt_str(item, "web_url"), account_type=account_type, is_human=not bot, login=username,
            email=email if not bot else _owner_email(email),
            status=Status.ACTIVE if state == "active" else Status.SUSPENDED,
            created_at=opt_time(item, "created_at"), last_active_at=last_active,
            role="admin" if is_admin else ("external" if opt_bool(item, "external", False) else "user"),
            privilege=Privilege.ADMIN if is_admin else Privilege.READ,
            mfa_enabled=opt_bool(item, "two_factor_enabled"),
            owners=owners,
            attributes={"id": uid, "username": username, "state": state, "is_admin": is_admin,
                        "bot_kind": _bot_kind(username) if bot else None,
                        "external": opt_bool(item, "external"), "created_by": opt_str(creator, "username") if creator else None},
        )]

    _each(batch, items, "user", one)
    return batch


def transform_service_accounts(src: str, items: Sequence[Any], *, inventory: str, group: str | None = None) -> Batch:
    """``GET /service_accounts`` (instance) or ``GET /groups/:id/service_accounts`` -> Accounts."""
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        uid = req_int(item, "id")
        username = req_str(item, "username")
        return [Account(
            key=user_key(src, uid), source=src, inventory=inventory, name=opt_str(item, "name") or username,
            account_type="service_account", is_human=False, login=username, email=_owner_email(opt_str(item, "email")),
            privilege=Privilege.READ, attributes={"id": uid, "username": username, "group": group},
        )]

    _each(batch, items, "service account", one)
    return batch


def transform_access_tokens(src: str, items: Sequence[Any], *, inventory: str, users: Mapping[int, Any] | None = None,
                            kind: str = "personal") -> Batch:
    """Personal (``GET /personal_access_tokens``), impersonation or service-account tokens -> Credentials.

    ``users`` (``id -> GET /users item``) tells who holds each token: an administrator's ``api``
    token is ADMIN, a blocked holder's token cannot authenticate (SUSPENDED), a bot's token is
    attributed through its bot, not as a person's.
    """
    users = users or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        tid = req_int(item, "id")
        uid = req_int(item, "user_id")
        scopes = tuple(str_list(item, "scopes"))
        holder = users.get(uid) if isinstance(users.get(uid), dict) else None
        holder_bot = bool(holder and holder.get("bot") is True)
        username = holder.get("username") if holder and isinstance(holder.get("username"), str) else None
        status = _token_status(item)
        if status == Status.ACTIVE and holder and holder.get("state") not in (None, "active"):
            status = Status.SUSPENDED  # GitLab refuses tokens of blocked or deactivated users
        token_kind = kind
        if kind == "personal" and holder_bot:
            token_kind = _bot_kind(username) or "service_account"
        ukey = user_key(src, uid)
        owners: tuple[Ownership, ...] = ()
        if kind != "impersonation" and not holder_bot:
            owners = (Ownership(ref=ukey, evidence=f"{kind.replace('_', ' ')} token user_id (GitLab API)", confidence=1.0, role="owner"),)
        name = opt_str(item, "name") or f"token {tid}"
        return [Credential(
            key=token_key(src, tid), source=src, inventory=inventory, name=name,
            credential_type="access_token", account_key=ukey,
            created_at=opt_time(item, "created_at"), last_used_at=opt_time(item, "last_used_at"),
            expires_at=opt_time(item, "expires_at"), scopes=scopes,
            privilege=personal_token_privilege(scopes, holder_is_admin=bool(holder and holder.get("is_admin") is True)),
            status=status, owners=owners,
            attributes={"token_id": tid, "token_kind": token_kind, "user_id": uid, "username": username,
                        "impersonation": kind == "impersonation", "description": opt_str(item, "description")},
        )]

    _each(batch, items, f"{kind.replace('_', ' ')} token", one)
    return batch


def transform_resource_access_tokens(src: str, items: Sequence[Any], *, inventory: str, resource_type: str,
                                     resource_path: str) -> Batch:
    """Project or group access tokens -> Credential + Grant to the resource, and the token's bot user
    (a weak stand-in Account, replaced by the fuller one from ``GET /users`` when that was read)."""
    rkey = group_key(src, resource_path) if resource_type == "group" else project_key(src, resource_path)
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        tid = req_int(item, "id")
        uid = req_int(item, "user_id")
        level = req_int(item, "access_level")
        scopes = tuple(str_list(item, "scopes"))
        role = ACCESS_LEVEL_NAMES.get(level, str(level))
        name = opt_str(item, "name") or f"{resource_type} access token {tid}"
        status = _token_status(item)
        level_priv = resource_token_privilege(level, scopes)
        tkey, ukey = token_key(src, tid), user_key(src, uid)
        created, last_used = opt_time(item, "created_at"), opt_time(item, "last_used_at")
        cred = Credential(
            key=tkey, source=src, inventory=inventory, name=name, credential_type="access_token", account_key=ukey,
            created_at=created, last_used_at=last_used, expires_at=opt_time(item, "expires_at"),
            scopes=scopes, privilege=level_priv, status=status,
            attributes={"token_id": tid, "token_kind": f"{resource_type}_access_token", "user_id": uid,
                        "access_level": level, "role": role, "resource": resource_path,
                        "description": opt_str(item, "description")},
        )
        bot = Account(
            key=ukey, source=src, inventory=inventory, name=name, account_type="bot", is_human=False,
            status=Status.ACTIVE if status == Status.ACTIVE else Status.SUSPENDED,
            created_at=created, last_active_at=last_used, role=role, privilege=Privilege.READ,
            attributes={"id": uid, "bot_kind": f"{resource_type}_bot", "resource": resource_path,
                        "from": f"{resource_type} access token listing"},
        )
        batch.weak.add(ukey)
        return [
            cred,
            Grant(key=grant_key(src, tkey, rkey), source=src, inventory=inventory, name=f"{name} on {resource_path} ({role})",
                  subject_key=tkey, resource_key=rkey, privilege=level_priv, scopes=scopes),
            bot,
            Grant(key=grant_key(src, ukey, rkey), source=src, inventory=inventory, name=f"bot {name} in {resource_path} ({role})",
                  subject_key=ukey, resource_key=rkey, privilege=access_level_privilege(level), scopes=(f"role:{role}",)),
        ]

    _each(batch, items, f"{resource_type} access token", one)
    return batch


def transform_deploy_tokens(src: str, items: Sequence[Any], *, inventory: str, resource_key: str | None = None,
                            where: str | None = None) -> Batch:
    """Deploy tokens -> Credential (+ Grant where the listing says where it lives). GitLab does not
    report their last use, so ``usage_tracked=False``."""
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        did = req_int(item, "id")
        scopes = tuple(str_list(item, "scopes"))
        name = opt_str(item, "name") or f"deploy token {did}"
        level = deploy_token_privilege(scopes)
        status = Status.ACTIVE
        if opt_bool(item, "revoked", False):
            status = Status.REVOKED
        elif opt_bool(item, "expired", False):
            status = Status.EXPIRED
        ckey = f"{src}:deploy_token:{did}"
        records: list[Record] = [Credential(
            key=ckey, source=src, inventory=inventory, name=name, credential_type="deploy_token",
            expires_at=opt_time(item, "expires_at"), usage_tracked=False, scopes=scopes, privilege=level, status=status,
            attributes={"id": did, "username": opt_str(item, "username"), "where": where},
        )]
        if resource_key is not None:
            records.append(Grant(key=grant_key(src, ckey, resource_key), source=src, inventory=inventory,
                                 name=f"deploy token {name} on {where}", subject_key=ckey, resource_key=resource_key,
                                 privilege=level, scopes=scopes))
        return records

    _each(batch, items, "deploy token", one)
    return batch


def transform_deploy_keys(src: str, items: Sequence[Any], *, inventory: str, project: str | None = None,
                          creators: Mapping[str, Any] | None = None) -> Batch:
    """Deploy keys -> Credential + a Grant per project (``can_push`` -> WRITE).

    The instance listing (``project=None``) names the projects in ``projects_with_write_access`` and
    ``projects_with_readonly_access``; a project's listing has ``can_push``. ``creators`` maps a
    ``fingerprint_sha256`` to the user ``GET /keys?fingerprint=`` returned (administrators only).
    """
    creators = creators or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        kid = req_int(item, "id")
        title = opt_str(item, "title") or f"deploy key {kid}"
        fingerprint = opt_str(item, "fingerprint_sha256")
        placements: list[tuple[str, bool]] = []
        if project is not None:
            placements.append((project, bool(opt_bool(item, "can_push", False))))
        else:
            for key, push in (("projects_with_write_access", True), ("projects_with_readonly_access", False)):
                for p in opt_list(item, key):
                    if not isinstance(p, dict):
                        raise MalformedItem(f"{key} holds a non-object")
                    placements.append((req_str(p, "path_with_namespace"), push))
        level = Privilege.WRITE if any(push for _, push in placements) else Privilege.READ
        creator = creators.get(fingerprint) if fingerprint else None
        creator_key = user_key(src, creator["id"]) if isinstance(creator, dict) and isinstance(creator.get("id"), int) else None
        ckey = f"{src}:deploy_key:{kid}"
        records: list[Record] = [Credential(
            key=ckey, source=src, inventory=inventory, name=title, credential_type="deploy_key",
            created_at=opt_time(item, "created_at"), last_used_at=opt_time(item, "last_used_at"),
            expires_at=opt_time(item, "expires_at"), usage_tracked="last_used_at" in item,
            scopes=("read_write",) if level == Privilege.WRITE else ("read_only",), privilege=level,
            created_by=creator_key,
            owners=(Ownership(ref=creator_key, evidence="deploy key user by fingerprint (GitLab API)", confidence=0.9,
                              role="creator"),) if creator_key else (),
            attributes={"id": kid, "title": title, "fingerprint": fingerprint,
                        "projects": sorted(p for p, _ in placements)},
        )]
        for path, push in placements:
            rkey = project_key(src, path)
            records.append(Grant(key=grant_key(src, ckey, rkey), source=src, inventory=inventory,
                                 name=f"deploy key {title} on {path}", subject_key=ckey, resource_key=rkey,
                                 privilege=Privilege.WRITE if push else Privilege.READ,
                                 scopes=("can_push",) if push else ("read_only",)))
        return records

    _each(batch, items, "deploy key", one)
    return batch


def transform_variables(src: str, items: Sequence[Any], *, inventory: str, hmac_key: bytes, level: str, where: str,
                        resource_key: str | None) -> Batch:
    """CI/CD variables (instance, group or project) -> Credential ``ci_variable``.

    The value is kept only as ``value_hmac`` (a keyed hash, to link it to a leak later); a hidden
    variable's value never leaves GitLab, so it has none.
    """
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        key = req_str(item, "key")
        scope = opt_str(item, "environment_scope") or "*"
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise MalformedItem(f"value is a {type(value).__name__}, not a string")
        ckey = f"{src}:ci_variable:{where}/{key}@{scope}"
        records: list[Record] = [Credential(
            key=ckey, source=src, inventory=inventory, name=key, credential_type="ci_variable",
            usage_tracked=False, privilege=Privilege.READ,
            value_hmac=keyed_hash(hmac_key, value) if value else None, preview=None,
            attributes={"level": level, "scope": where, "environment_scope": scope,
                        "variable_type": opt_str(item, "variable_type") or "env_var",
                        "masked": opt_bool(item, "masked", False), "protected": opt_bool(item, "protected", False),
                        "hidden": opt_bool(item, "hidden", False), "raw": opt_bool(item, "raw", False),
                        "value_length": len(value) if isinstance(value, str) else None},
        )]
        if resource_key is not None:
            records.append(Grant(key=grant_key(src, ckey, resource_key), source=src, inventory=inventory,
                                 name=f"{key} -> {where}", subject_key=ckey, resource_key=resource_key,
                                 privilege=Privilege.READ, scopes=(scope,)))
        # A credential in a variable that is unmasked or unprotected is exposed (hash and preview only).
        records += exposures_in_variable(src=src, inventory=inventory, scope=where, kind="ci_variable", name=f"{key}@{scope}",
                                         value=value, hmac_key=hmac_key, masked=opt_bool(item, "masked", False),
                                         protected=opt_bool(item, "protected", False))
        return records

    _each(batch, items, "CI/CD variable", one)
    return batch


def transform_runners(src: str, items: Sequence[Any], *, inventory: str, details: Mapping[int, Any] | None = None,
                      resource_key: str | None = None, instance: str | None = None) -> Batch:
    """Runners -> Account ``runner`` + Grants to where they run jobs.

    ``details`` (``GET /runners/:id``) adds ``contacted_at``, tags and, for the instance listing,
    the groups and projects a runner serves. Paused runners are SUSPENDED.
    """
    details = details or {}
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        rid = req_int(item, "id")
        detail = details.get(rid) if isinstance(details.get(rid), dict) else {}
        runner_type = opt_str(item, "runner_type")
        paused = opt_bool(item, "paused")
        if paused is None:
            paused = opt_bool(item, "active", True) is False
        name = opt_str(item, "description") or opt_str(item, "name") or f"runner {rid}"
        akey = f"{src}:runner:{rid}"
        targets: list[str] = []
        if resource_key is not None:
            targets.append(resource_key)
        elif runner_type == "instance_type" and instance is not None:
            targets.append(instance)
        for g in opt_list(detail, "groups"):
            if isinstance(g, dict) and isinstance(g.get("web_url"), str):
                targets.append(group_key(src, urllib.parse.urlsplit(g["web_url"]).path.split("/groups/", 1)[-1]))
        for p in opt_list(detail, "projects"):
            if isinstance(p, dict) and isinstance(p.get("path_with_namespace"), str):
                targets.append(project_key(src, p["path_with_namespace"]))
        records: list[Record] = [Account(
            key=akey, source=src, inventory=inventory, name=name, account_type="runner", is_human=False,
            login=opt_str(item, "name"), status=Status.SUSPENDED if paused else Status.ACTIVE,
            created_at=opt_time(item, "created_at"), last_active_at=opt_time(detail, "contacted_at"),
            privilege=Privilege.READ,
            attributes={"id": rid, "runner_type": runner_type, "status": opt_str(item, "status"),
                        "online": opt_bool(item, "online"), "paused": paused, "tag_list": str_list(detail, "tag_list"),
                        "access_level": opt_str(detail, "access_level"), "version": opt_str(detail, "version"),
                        "locked": opt_bool(detail, "locked"), "run_untagged": opt_bool(detail, "run_untagged")},
        )]
        for target in dict.fromkeys(targets):
            records.append(Grant(key=grant_key(src, akey, target), source=src, inventory=inventory,
                                 name=f"runner {name} -> {target.split(':', 2)[-1]}", subject_key=akey,
                                 resource_key=target, privilege=Privilege.READ, scopes=(runner_type or "runner",)))
        return records

    _each(batch, items, "runner", one)
    return batch


# --- I/O (python-gitlab) ---------------------------------------------------------------------------


def client(source: GitLabSource, config: Config) -> gitlab.Gitlab:
    """A python-gitlab client for the source (the token is read now and never logged).

    ``retry_transient_errors`` makes python-gitlab retry 5xx and timeouts; 429s are retried
    honouring ``Retry-After`` regardless (``obey_rate_limit``).
    """
    token = read_secret(config, env=source.token_env, file=source.token_file, what=f"sources.gitlab[{source.name}]")
    base = source.base_url.rstrip("/").removesuffix("/api/v4")  # python-gitlab appends /api/v4 itself
    return gitlab.Gitlab(url=base, private_token=token, timeout=source.timeout, per_page=source.per_page,
                         retry_transient_errors=True, keep_base_url=True, user_agent="nhiscan")


def listing(gl: gitlab.Gitlab, path: str, *, per_page: int, max_retries: int, **params: Any) -> list[Any]:
    """Every page of a GitLab list endpoint, as the raw JSON items (python-gitlab follows ``Link``)."""
    pages = gl.http_list(path, query_data={**params, "per_page": per_page}, iterator=True, max_retries=max_retries)
    items: list[Any] = []
    try:
        for item in pages:
            items.append(item)
    except (KeyError, TypeError) as err:
        # python-gitlab indexes the page body; a JSON object or null instead of a list lands here.
        raise MalformedResponse("the response was not a JSON list") from err
    if items and not any(isinstance(i, dict) for i in items):
        raise MalformedResponse("the response was not a JSON list of objects")
    return items


def get_json(gl: gitlab.Gitlab, path: str, *, max_retries: int, **params: Any) -> dict[str, Any]:
    data = gl.http_get(path, query_data=params or None, max_retries=max_retries)
    if not isinstance(data, dict):
        raise MalformedResponse("the response was not a JSON object")
    return data


def _enc(ident: int | str) -> str:
    return urllib.parse.quote(str(ident), safe="")


# --- errors -> coverage reasons ----------------------------------------------------------------------


_PLAIN_REASONS = {"forbidden", "not found", "unauthorized", "internal server error", "too many requests", "bad request"}


def _gitlab_message(err: GitlabError, status: int | None) -> str:
    msg = err.error_message
    if not isinstance(msg, str) or not msg.strip():
        return ""
    text = " ".join(msg.split())[:160]
    bare = text.removeprefix(f"{status} ").strip().lower() if status else text.lower()
    return "" if bare in _PLAIN_REASONS else f" ({text})"


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A human reason for a failed read: HTTP status, what went wrong, what access is needed.

    Built from the status and GitLab's short message only — never from ``str(err)``, which
    carries the response body.
    """
    if isinstance(err, GitlabAuthenticationError):
        return "HTTP 401: credentials rejected (bad, expired or revoked token)"
    if isinstance(err, GitlabParsingError):
        return "malformed response: the body is not valid JSON"
    if isinstance(err, GitlabError) and err.response_code is not None:
        status, msg = err.response_code, _gitlab_message(err, err.response_code)
        if status == 401:
            return f"HTTP 401: credentials rejected{msg}"
        if status == 403:
            return f"HTTP 403: forbidden{msg}; {need if need.startswith('needs') else 'needs ' + need}"
        if status == 404:
            return f"HTTP 404: not found{msg}; the endpoint is unavailable on this GitLab or hidden from this token; needs {need.removeprefix('needs ')}"
        if status == 429:
            return "HTTP 429: rate limited and not recovered within the retry budget"
        if status >= 500:
            return f"HTTP {status}: server error, still failing after retries{msg}"
        return f"HTTP {status}{msg}"
    if isinstance(err, requests.exceptions.Timeout) or (
        isinstance(err, requests.exceptions.ConnectionError) and "timed out" in str(err).lower()
    ):
        after = f" after {timeout:g}s" if timeout else ""
        return f"request timed out{after} (retries exhausted)"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "could not connect to the GitLab API (retries exhausted)"
    if isinstance(err, json.JSONDecodeError):
        return "malformed response: the body is not valid JSON"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, ConfigError):
        return str(err)
    return f"unexpected error: {type(err).__name__}"


def _group_need(short: str, path: str) -> str:
    return {
        "groups": f"membership of group {path}",
        "projects": f"membership of group {path}",
        "access_tokens": f"the Owner role in group {path} (or an instance administrator token)",
        "service_accounts": f"the Owner role in top-level group {path} (or an instance administrator token)",
        "deploy_tokens": f"the Maintainer role in group {path}",
        "variables": f"the Owner role in group {path}",
        "runners": f"the Maintainer role in group {path}",
    }[short]


def _project_need(path: str) -> str:
    return f"the Maintainer role in project {path}"


# --- collect -------------------------------------------------------------------------------------------


def collect(
    source: GitLabSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Read every configured inventory of one GitLab source; never raises for an API failure.

    ``progress(msg)`` is called as each inventory finishes. Each inventory appears in
    ``coverage`` — ok with its record count, or a gap with the reason.
    """
    run = _Collector(source, hmac_key, progress)
    run.run(config)
    return run.result




class _Collector(CollectorRun):
    vendor = "gitlab"
    # A record two listings emit: the more specific listing's copy wins (see AUTHORITY_* in
    # common), then the higher privilege; a weak stand-in never replaces a fuller record.
    merge = "privilege"

    def __init__(self, source: GitLabSource, hmac_key: bytes, progress: Callable[[str], None] | None) -> None:
        super().__init__(source, progress)
        self.source: GitLabSource = source
        self.hmac_key = hmac_key
        self.host = host_of(source.base_url)
        self.instance = instance_key(self.src, self.host)
        self.users: dict[int, dict[str, Any]] = {}  # id -> GET /users item, when read
        self.admin = False
        self._creators: dict[str, Any] = {}
        self._sa_ids: set[int] = set()
        self.wanted = set(self.requested(sorted(INVENTORY_NAMES)))

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    def _list(self, path: str, **params: Any) -> list[Any]:
        return listing(self.gl, path, per_page=self.source.per_page, max_retries=self.source.max_retries, **params)

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        return get_json(self.gl, path, max_retries=self.source.max_retries, **params)

    # -- the run

    def _gap_everything(self, reason: str) -> None:
        for short in ("groups", *ADMIN_INVENTORIES):
            if short == "groups" or short in self.wanted:
                self.gap(inventory_name(self.src, "instance", short), reason)
        scopes = self.source.groups or ["*"]
        for scope in scopes:
            self._gap_group_tree(scope, reason)

    def _gap_group_tree(self, scope: str, reason: str) -> None:
        for short in GROUP_INVENTORIES:
            if short in self.wanted or short in ("groups", "projects"):
                self.gap(inventory_name(self.src, scope, short), reason)
        for short in PROJECT_INVENTORIES:
            if short in self.wanted:
                self.gap(inventory_name(self.src, f"{scope}/*", short), reason)

    def run(self, config: Config) -> None:
        try:
            self.gl = client(self.source, config)
        except ConfigError as err:
            self._gap_everything(f"credentials not available: {err}")
            return
        try:
            try:
                me = self._get("/user")
            except Exception as err:  # noqa: BLE001
                self._gap_everything("could not authenticate: " + describe_error(err, "a valid token (read_api scope)", self.source.timeout))
                return
            self.admin = me.get("is_admin") is True
            username = str(me.get("username") or "?")[:80]
            if not self.source.instance_admin:
                why = f"instance-wide listing: {NEEDS_ADMIN} (instance_admin = false in the source config)"
            elif not self.admin:
                why = f"the token's user {username} is not an instance administrator; {NEEDS_ADMIN}"
            else:
                why = None
            for short in ADMIN_INVENTORIES:
                if short not in self.wanted:
                    continue
                if why is not None:
                    self.gap(inventory_name(self.src, "instance", short), why)
                else:
                    self._instance(short)
            self._groups()
        finally:
            try:
                self.gl.session.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # -- instance-wide (administrator) listings

    def _instance(self, short: str) -> None:
        src, inv = self.src, inventory_name(self.src, "instance", short)
        need = NEEDS_ADMIN
        if short == "service_accounts":
            def read_sas() -> Batch:
                items = self._list("/service_accounts")
                self._sa_ids = {i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)}
                return transform_service_accounts(src, items, inventory=inv)

            self.read(inv, need, read_sas)
        elif short == "users":
            def read_users() -> Batch:
                items = self._list("/users", exclude_internal="true", order_by="id", sort="asc")
                self.users = {i["id"]: i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)}
                return transform_users(src, items, inventory=inv, service_account_ids=self._sa_ids)

            if not self.read(inv, need, read_users, authority=AUTHORITY_SPECIFIC):
                self.users = {}
        elif short == "personal_access_tokens":
            self.read(inv, need, lambda: transform_access_tokens(src, self._list("/personal_access_tokens"),
                                                                 inventory=inv, users=self.users))
        elif short == "impersonation_tokens":
            if "users" not in self.wanted or not self.users:
                self.gap(inv, "the user list was not read, so no user's impersonation tokens could be listed; " + NEEDS_ADMIN)
                return

            def read_impersonation() -> Batch:
                batch = Batch()
                for uid in sorted(self.users):
                    batch.extend(transform_access_tokens(src, self._list(f"/users/{uid}/impersonation_tokens", state="all"),
                                                         inventory=inv, users=self.users, kind="impersonation"))
                return batch

            # The admin token list holds impersonation tokens too, unmarked; this listing says what they are.
            self.read(inv, need, read_impersonation, authority=AUTHORITY_SPECIFIC)
        elif short == "deploy_tokens":
            self.read(inv, need, lambda: transform_deploy_tokens(src, self._list("/deploy_tokens"), inventory=inv))
        elif short == "deploy_keys":
            def read_keys() -> Batch:
                items = self._list("/deploy_keys")
                return transform_deploy_keys(src, items, inventory=inv, creators=self._key_creators(items))

            self.read(inv, need, read_keys)
        elif short == "variables":
            self.read(inv, need, lambda: transform_variables(src, self._list("/admin/ci/variables"), inventory=inv,
                                                             hmac_key=self.hmac_key, level="instance", where="instance",
                                                             resource_key=self.instance))
        elif short == "runners":
            def read_runners() -> Batch:
                items = self._list("/runners/all")
                return transform_runners(src, items, inventory=inv, details=self._runner_details(items), instance=self.instance)

            self.read(inv, need, read_runners)

    def _key_creators(self, items: Sequence[Any]) -> dict[str, Any]:
        """Who added each deploy key (``GET /keys?fingerprint=``, administrators only); unknown stays unknown."""
        if not self.admin:
            return {}
        for item in items:
            fp = item.get("fingerprint_sha256") if isinstance(item, dict) else None
            if not isinstance(fp, str) or fp in self._creators:
                continue
            try:
                user = self._get("/keys", fingerprint=fp).get("user")
            except Exception as err:  # noqa: BLE001 - an owner we cannot resolve is just unknown
                log.info("gitlab %s: owner of deploy key %s not read (%s)", self.src, _label(item),
                         describe_error(err, NEEDS_ADMIN, self.source.timeout))
                user = None
            self._creators[fp] = user if isinstance(user, dict) else None
        return {k: v for k, v in self._creators.items() if v is not None}

    def _runner_details(self, items: Sequence[Any]) -> dict[int, Any]:
        """``GET /runners/:id`` for each runner: last contact and placement; a failure leaves them unknown."""
        out: dict[int, Any] = {}
        for item in items:
            rid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(rid, int) or isinstance(rid, bool):
                continue
            try:
                out[rid] = self._get(f"/runners/{rid}")
            except Exception as err:  # noqa: BLE001
                log.info("gitlab %s: details of runner %s not read (%s)", self.src, rid,
                         describe_error(err, "access to the runner", self.source.timeout))
        return out

    # -- groups and projects

    def _group_work_wanted(self) -> bool:
        return bool(self.wanted & (set(GROUP_INVENTORIES) | set(PROJECT_INVENTORIES)))

    def _groups(self) -> None:
        if not self._group_work_wanted():
            return
        src, inv = self.src, inventory_name(self.src, "instance", "groups")
        tops: list[dict[str, Any]] = []
        if self.source.groups:
            for path in self.source.groups:
                try:
                    tops.append(self._get(f"/groups/{_enc(path)}"))
                except Exception as err:  # noqa: BLE001
                    self._gap_group_tree(path, f"group {path} could not be read: "
                                         + describe_error(err, f"membership of group {path}", self.source.timeout))
            self.ok(inv, transform_groups(src, tops, inventory=inv, instance=self.instance, host=self.host))
        else:
            def read_tops() -> Batch:
                tops.extend(self._list("/groups", top_level_only="true"))
                return transform_groups(src, tops, inventory=inv, instance=self.instance, host=self.host)

            if not self.read(inv, "an authenticated user", read_tops):
                self._gap_group_tree("*", "the group list was not read, so no group could be listed")
                return
        trees = [t for t in tops if isinstance(t, dict) and isinstance(t.get("id"), int) and isinstance(t.get("full_path"), str)]
        paths = {t["full_path"].lower() for t in trees}
        for top in trees:
            # A configured subgroup of another configured group is read once, within its parent's tree.
            path = top["full_path"].lower()
            if not any(path.startswith(p + "/") for p in paths):
                self._group_tree(top)

    def _group_tree(self, top: dict[str, Any]) -> None:
        src, path, gid = self.src, top["full_path"], top["id"]
        groups: list[dict[str, Any]] = [top]
        projects: list[dict[str, Any]] = []
        inv = inventory_name(src, path, "groups")

        def read_subgroups() -> Batch:
            items = self._list(f"/groups/{gid}/descendant_groups")
            groups.extend(i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int) and isinstance(i.get("full_path"), str))
            return transform_groups(src, items, inventory=inv)

        subgroups_ok = self.read(inv, _group_need("groups", path), read_subgroups)
        inv_p = inventory_name(src, path, "projects")

        def read_projects() -> Batch:
            items = self._list(f"/groups/{gid}/projects", include_subgroups="true", with_shared="false")
            projects.extend(i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)
                            and isinstance(i.get("path_with_namespace"), str))
            return transform_projects(src, items, inventory=inv_p)

        projects_ok = self.read(inv_p, _group_need("projects", path), read_projects)
        if not subgroups_ok:
            for short in GROUP_INVENTORIES:
                if short in _GROUP_SCOPED and short in self.wanted:
                    self.gap(inventory_name(src, f"{path}/*", short), f"subgroups of {path} not read, so they could not be listed")
        if not projects_ok:
            for short in PROJECT_INVENTORIES:
                if short in self.wanted:
                    self.gap(inventory_name(src, f"{path}/*", short), f"projects of {path} not read, so none could be listed")
        if subgroups_ok and projects_ok and set(GROUP_INVENTORIES) | set(PROJECT_INVENTORIES) <= self.wanted:
            # Everything under the group was enumerated: an inventory under it not reported again is gone.
            self.result.complete_scopes.append(f"{src}:{path}/")
        for g in groups:
            self._group(g, top_level=g is top and "/" not in g["full_path"])
        for p in projects:
            self._project(p)

    def _group(self, g: dict[str, Any], *, top_level: bool) -> None:
        src, path, gid = self.src, g["full_path"], g["id"]
        rkey = group_key(src, path)
        inv = lambda short: inventory_name(src, path, short)  # noqa: E731
        readers: dict[str, tuple[Callable[[], Batch], int]] = {
            "access_tokens": (lambda: transform_resource_access_tokens(
                src, self._list(f"/groups/{gid}/access_tokens"), inventory=inv("access_tokens"),
                resource_type="group", resource_path=path), AUTHORITY_SPECIFIC),
            "deploy_tokens": (lambda: transform_deploy_tokens(
                src, self._list(f"/groups/{gid}/deploy_tokens"), inventory=inv("deploy_tokens"),
                resource_key=rkey, where=path), AUTHORITY_SPECIFIC),
            "variables": (lambda: transform_variables(
                src, self._list(f"/groups/{gid}/variables"), inventory=inv("variables"), hmac_key=self.hmac_key,
                level="group", where=path, resource_key=rkey), AUTHORITY_LISTED),
            "runners": (lambda: self._runners(f"/groups/{gid}/runners", "group_type", inv("runners"), rkey), AUTHORITY_LISTED),
        }
        if top_level:
            readers["service_accounts"] = (lambda: self._group_service_accounts(gid, path, inv("service_accounts")), AUTHORITY_LISTED)
        for short in GROUP_INVENTORIES:
            if short in readers and short in self.wanted:
                fn, authority = readers[short]
                self.read(inv(short), _group_need(short, path), fn, authority=authority)

    def _group_service_accounts(self, gid: int, path: str, inv: str) -> Batch:
        items = self._list(f"/groups/{gid}/service_accounts")
        batch = transform_service_accounts(self.src, items, inventory=inv, group=path)
        for item in items:
            uid = item.get("id") if isinstance(item, dict) else None
            if isinstance(uid, int) and not isinstance(uid, bool):
                tokens = self._list(f"/groups/{gid}/service_accounts/{uid}/personal_access_tokens")
                batch.extend(transform_access_tokens(self.src, tokens, inventory=inv, users=self.users, kind="service_account"))
        return batch

    def _runners(self, path: str, runner_type: str, inv: str, rkey: str) -> Batch:
        items = self._list(path, type=runner_type)
        return transform_runners(self.src, items, inventory=inv, details=self._runner_details(items), resource_key=rkey)

    def _project(self, p: dict[str, Any]) -> None:
        src, path, pid = self.src, p["path_with_namespace"], p["id"]
        rkey = project_key(src, path)
        inv = lambda short: inventory_name(src, path, short)  # noqa: E731

        def read_keys() -> Batch:
            items = self._list(f"/projects/{pid}/deploy_keys")
            return transform_deploy_keys(src, items, inventory=inv("deploy_keys"), project=path,
                                         creators=self._key_creators(items))

        readers: dict[str, tuple[Callable[[], Batch], int]] = {
            "access_tokens": (lambda: transform_resource_access_tokens(
                src, self._list(f"/projects/{pid}/access_tokens"), inventory=inv("access_tokens"),
                resource_type="project", resource_path=path), AUTHORITY_SPECIFIC),
            "deploy_tokens": (lambda: transform_deploy_tokens(
                src, self._list(f"/projects/{pid}/deploy_tokens"), inventory=inv("deploy_tokens"),
                resource_key=rkey, where=path), AUTHORITY_SPECIFIC),
            "deploy_keys": (read_keys, AUTHORITY_LISTED),
            "variables": (lambda: transform_variables(
                src, self._list(f"/projects/{pid}/variables"), inventory=inv("variables"), hmac_key=self.hmac_key,
                level="project", where=path, resource_key=rkey), AUTHORITY_LISTED),
            "runners": (lambda: self._runners(f"/projects/{pid}/runners", "project_type", inv("runners"), rkey), AUTHORITY_LISTED),
        }
        for short in PROJECT_INVENTORIES:
            if short in self.wanted:
                fn, authority = readers[short]
                self.read(inv(short), _project_need(path), fn, authority=authority)
