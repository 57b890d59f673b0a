"""Jira / Atlassian collector: site users and app users, org API tokens and service accounts,
and (optionally) a contract register kept as Jira issues.

Cartography's split, as in the GitHub collector: ``get_*`` functions do the I/O with the real
``jira`` client (``JIRA`` and its ``ResilientSession``) and return the raw JSON Atlassian sent;
``transform_*`` functions are pure (raw dicts in, records out) and unit-tested on recorded-shape
payloads; :func:`collect` ties them together for one source and never raises for an API failure.

Inventories:

* ``{src}:{site}:users`` — the site's users (Cloud ``GET /rest/api/3/users/search``; Server
  ``user/search?username=.`` including inactive users). People with an email become
  ``Account(is_human=True)``; Cloud app users (``accountType=app``) become
  ``Account(account_type="app", is_human=False)``. ``{site}`` is the host of ``base_url``.
* ``{src}:org:api_tokens`` — every managed user's API token, from the Atlassian organization
  admin API (``/admin/api-access/v1/orgs/{orgId}/api-tokens``): ``Credential(credential_type=
  "api_token")`` owned by its user, with created, expiry and last-use times.
* ``{src}:org:service_accounts`` — the org's service accounts (``.../service-accounts``), owned by
  whoever created them.
* ``{src}:contracts`` — when ``contract_register`` is configured: the issues its JQL finds,
  mapped to ``Contract`` records by :func:`scanner.registers.contract_from_values` (the same
  validation as the file register); an issue that fails it is skipped with a warning naming the
  issue key and the Jira field.

Cloud or Server is the config's ``deployment``, or else ``serverInfo.deploymentType``. The two
org inventories need an organization admin API key (``org_admin_token_*``) and ``org_id``;
without them they are reported as gaps, never as empty. No API token, admin key or password is
logged, stored or put in a reason: reasons are built from the HTTP status and Atlassian's error
message only, never from ``str(JIRAError)`` (which carries the request headers).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import urllib.parse
from datetime import date, datetime, timezone
from typing import Any, Callable, Sequence

import requests
from jira import JIRA, JIRAError
from jira.resilientsession import ResilientSession

from scanner.collectors.common import (Batch, CollectorRun, MalformedItem, MalformedResponse, each, grant_key,
                                       label_by, opt_bool, opt_dict, opt_str, opt_time, req_str)
from scanner.config import Config, ConfigError, JiraContractRegister, JiraSource, read_secret
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
)
from scanner.registers import contract_from_values

log = logging.getLogger("nhiscan.collectors.jira")

#: Inventories, in the order they are read.
INVENTORIES: tuple[str, ...] = ("users", "contracts", "api_tokens", "service_accounts")
PAGE_SIZE = 100
MAX_PAGES = 10_000  # a listing that never ends is a broken server, not a big tenant

NEEDS_ORG_ADMIN_KEY = "needs an Atlassian organization admin API key (org_admin_token_env or org_admin_token_file) and org_id"
_NEEDS: dict[str, str] = {
    "users": "the 'Browse users and groups' global permission",
    "contracts": "'Browse projects' on the contract register's projects",
    "api_tokens": "an organization admin API key (a scoped key needs read:tokens:admin)",
    "service_accounts": "an organization admin API key (a scoped key needs read:service-accounts:admin)",
}
#: Register field -> the ``JiraContractRegister`` setting that names its Jira field.
REGISTER_FIELDS: dict[str, str] = {
    "counterparty": "counterparty_field",
    "end": "end_field",
    "sponsor": "sponsor_field",
    "start": "start_field",
    "kind": "kind_field",
    "status": "status_field",
    "match_domains": "match_domains_field",
    "match_names": "match_names_field",
}
#: What a contract issue must have: the issue key is the contract id; without an end date the
#: contract can never be found to have ended, which is the point of the register.
REGISTER_REQUIRED = ("id", "counterparty", "end")

_CLOUD_V3 = "{server}/rest/api/3/{path}"
_TOKEN_STATUSES: dict[str, Status] = {
    "allowed": Status.ACTIVE,
    "active": Status.ACTIVE,
    "blocked": Status.SUSPENDED,
    "suspended": Status.SUSPENDED,
    "revoked": Status.REVOKED,
    "deleted": Status.REVOKED,
    "expired": Status.EXPIRED,
}
_ACCOUNT_STATUSES: dict[str, Status] = {
    "active": Status.ACTIVE,
    "enabled": Status.ACTIVE,
    "inactive": Status.SUSPENDED,
    "disabled": Status.SUSPENDED,
    "suspended": Status.SUSPENDED,
    "deactivated": Status.SUSPENDED,
    "closed": Status.DELETED,
    "deleted": Status.DELETED,
}


# --- names and keys -------------------------------------------------------------------------


def site_of(base_url: str) -> str:
    """The site part of inventory names: the host of ``base_url`` (no port, which can change)."""
    return (urllib.parse.urlsplit(base_url).hostname or base_url).lower()


def users_inventory(src: str, site: str) -> str:
    return f"{src}:{site}:users"


def contracts_inventory(src: str) -> str:
    return f"{src}:contracts"


def org_inventory(src: str, short: str) -> str:
    return f"{src}:org:{short}"


def user_key(src: str, user_id: str) -> str:
    """Cloud: the accountId; Server: the user key."""
    return f"{src}:user:{user_id}"


def site_key(src: str, site: str) -> str:
    return f"{src}:site:{site}"


def api_token_key(src: str, token_id: str) -> str:
    return f"{src}:api_token:{token_id}"


def service_account_key(src: str, account_id: str) -> str:
    return f"{src}:service_account:{account_id}"


def contract_key(src: str, issue_key: str) -> str:
    return f"{src}:contract:{issue_key}"


# --- payload checking (shared readers in scanner.collectors.common) -----------------------------

# Each listing names its items in warnings by its own keys (accountId, name, label...).
_label_for = functools.partial(label_by, ints="quoted")


def _opt_time(item: dict[str, Any], key: str) -> datetime | None:
    """An ISO 8601 time (``...Z`` or Jira's ``...+0000``) or epoch milliseconds."""
    v = item.get(key)
    if isinstance(v, bool):
        raise MalformedItem(f"{key} is a boolean, not a time")
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v / 1000, tz=timezone.utc)
    return opt_time(item, key, expected="a time", noun="time", zulu=True)


class RegisterFieldError(Exception):
    """A ``contract_register`` setting names no Jira field (or an ambiguous one)."""


# --- transforms (pure) ------------------------------------------------------------------------------


def _site_records(src: str, site: str, base_url: str | None) -> Resource:
    return Resource(key=site_key(src, site), source=src, inventory=users_inventory(src, site), name=site,
                    url=base_url, resource_type="jira_site")


def _site_grant(src: str, site: str, acc: Account) -> Grant:
    skey = site_key(src, site)
    return Grant(key=grant_key(src, acc.key, skey), source=src, inventory=acc.inventory, name=f"{acc.name} on {site}",
                 subject_key=acc.key, resource_key=skey, privilege=Privilege.READ, scopes=("site:user",))


def transform_cloud_users(src: str, site: str, items: Sequence[Any], *, base_url: str | None = None) -> Batch:
    """Jira Cloud users (``users/search``) -> Accounts, and a READ grant to the site for each active one.

    ``accountType``: ``atlassian`` is a person (``is_human`` when the API shows an email or not:
    Atlassian accounts are people), ``app`` an app or bot user, ``customer`` a Service Management
    portal customer (a person without product access).
    """
    inv = users_inventory(src, site)
    batch = Batch(records=[_site_records(src, site, base_url)])

    def one(item: dict[str, Any]) -> list[Record]:
        account_id = req_str(item, "accountId")
        kind = (opt_str(item, "accountType") or "atlassian").lower()
        display = opt_str(item, "displayName") or account_id
        active = opt_bool(item, "active", True)
        email = opt_str(item, "emailAddress")
        machine = kind == "app"
        acc = Account(
            key=user_key(src, account_id),
            source=src,
            inventory=inv,
            name=display,
            url=opt_str(item, "self"),
            account_type="app" if machine else "user",
            is_human=not machine,
            login=None,
            # An app user's email (…@connect.atlassian.com) names no owner; keep it out of identity.
            email=None if machine else (email.lower() if email else None),
            status=Status.ACTIVE if active else Status.SUSPENDED,
            role="customer" if kind == "customer" else ("app" if machine else "user"),
            privilege=Privilege.READ,
            attributes={"account_id": account_id, "account_type": kind, "app_email": email if machine else None},
        )
        return [acc, _site_grant(src, site, acc)] if active else [acc]

    each(batch, items, "user", one, _label_for("accountId", "displayName"))
    return batch


def transform_server_users(src: str, site: str, items: Sequence[Any], *, base_url: str | None = None) -> Batch:
    """Jira Server/Data Center users (``user/search``) -> Accounts (Server has no app accounts)."""
    inv = users_inventory(src, site)
    batch = Batch(records=[_site_records(src, site, base_url)])

    def one(item: dict[str, Any]) -> list[Record]:
        name = req_str(item, "name")
        ukey = opt_str(item, "key") or name
        email = opt_str(item, "emailAddress")
        active = opt_bool(item, "active", True)
        acc = Account(
            key=user_key(src, ukey),
            source=src,
            inventory=inv,
            name=opt_str(item, "displayName") or name,
            url=opt_str(item, "self"),
            account_type="user",
            is_human=True,
            login=name,
            email=email.lower() if email else None,
            status=Status.ACTIVE if active else Status.SUSPENDED,
            role="user",
            privilege=Privilege.READ,
            attributes={"user_key": ukey},
        )
        return [acc, _site_grant(src, site, acc)] if active else [acc]

    each(batch, items, "user", one, _label_for("name", "key"))
    return batch


def transform_api_tokens(src: str, items: Sequence[Any]) -> Batch:
    """Org admin API tokens -> ``Credential(credential_type="api_token")`` owned by their user.

    A user API token acts with all of its user's permissions, so it authenticates as that user
    (``account_key``) and is rated WRITE: it can do whatever the person can.
    """
    inv = org_inventory(src, "api_tokens")
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        token_id = req_str(item, "id")
        user = opt_dict(item, "user")
        account_id = opt_str(user, "id")
        email = opt_str(user, "email")
        if account_id is None and email is None:
            raise MalformedItem("missing user.id and user.email")
        raw_status = opt_str(item, "status")
        status = _TOKEN_STATUSES.get((raw_status or "allowed").lower(), Status.ACTIVE)
        owner_ref = email.lower() if email else user_key(src, account_id or "")
        evidence = "API token user.email (Atlassian admin API)" if email else "API token user.id (Atlassian admin API)"
        return [Credential(
            key=api_token_key(src, token_id),
            source=src,
            inventory=inv,
            name=opt_str(item, "label") or token_id,
            credential_type="api_token",
            account_key=user_key(src, account_id) if account_id else None,
            created_at=_opt_time(item, "createdAt"),
            last_used_at=_opt_time(item, "lastActiveAt"),
            expires_at=_opt_time(item, "expiresAt"),
            privilege=Privilege.WRITE,
            status=status,
            created_by=owner_ref,
            owners=(Ownership(ref=owner_ref, evidence=evidence, confidence=1.0, role="owner"),),
            attributes={"status": raw_status, "user_name": opt_str(user, "name"), "account_id": account_id},
        )]

    each(batch, items, "API token", one, _label_for("id", "label"))
    return batch


def transform_service_accounts(src: str, items: Sequence[Any]) -> Batch:
    """Org service accounts -> ``Account(account_type="service_account")`` owned by their creator."""
    inv = org_inventory(src, "service_accounts")
    batch = Batch()

    def one(item: dict[str, Any]) -> list[Record]:
        sa_id = req_str(item, "id")
        account_id = opt_str(item, "atlassianId") or sa_id
        creator = opt_str(item, "createdById")
        raw_status = opt_str(item, "status")
        owners = ()
        if creator:
            owners = (Ownership(ref=user_key(src, creator), evidence="service account createdById (Atlassian admin API)",
                                confidence=0.8, role="creator"),)
        return [Account(
            key=service_account_key(src, account_id),
            source=src,
            inventory=inv,
            name=opt_str(item, "displayName") or account_id,
            account_type="service_account",
            is_human=False,
            login=opt_str(item, "email"),
            status=_ACCOUNT_STATUSES.get((raw_status or "active").lower(), Status.ACTIVE),
            created_at=None,
            privilege=Privilege.READ,
            owners=owners,
            attributes={"id": sa_id, "account_id": account_id, "status": raw_status,
                        "updated_at": (t.isoformat() if (t := _opt_time(item, "updatedAt")) else None),
                        "description": opt_str(item, "description")},
        )]

    each(batch, items, "service account", one, _label_for("id", "displayName"))
    return batch


def jira_field_value(value: Any) -> Any:
    """A Jira field value as the register expects it: text, a list of texts, or None.

    Option fields give ``value``, user pickers ``emailAddress`` (None when the user hides it),
    statuses ``name``, rich text (an Atlassian Document) its text.
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [v for v in (jira_field_value(x) for x in value) if v is not None]
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return _adf_text(value)
        for k in ("emailAddress", "value", "name"):
            if isinstance(value.get(k), str):
                return value[k]
        if "accountId" in value:
            return None  # a user who hides their email: no sponsor we can resolve
    return value  # an unknown shape: the register's validation names its type


def _adf_text(doc: Any) -> str:
    if isinstance(doc, dict):
        if doc.get("type") == "text":
            return str(doc.get("text", ""))
        return ("\n" if doc.get("type") == "doc" else "").join(_adf_text(c) for c in doc.get("content") or [])
    return ""


def resolve_register_fields(register: JiraContractRegister, fields: Sequence[Any]) -> dict[str, tuple[str, str]]:
    """Register field -> (Jira field id, the name the config used), from ``GET /field``.

    A setting may give a field id (``customfield_10050``), a field name (``Contract end``) or a
    JQL clause name (``cf[10050]``). Raises RegisterFieldError naming the setting when a name
    matches no field or several.
    """
    known = [f for f in fields if isinstance(f, dict) and isinstance(f.get("id"), str)]
    out: dict[str, tuple[str, str]] = {}
    for reg_key, setting in REGISTER_FIELDS.items():
        wanted = getattr(register, setting)
        if not wanted:
            continue
        low = wanted.strip().lower()
        matches = [f for f in known if f["id"].lower() == low]
        if not matches:
            matches = [f for f in known if isinstance(f.get("name"), str) and f["name"].strip().lower() == low]
        if not matches:
            matches = [f for f in known if any(isinstance(c, str) and c.lower() == low for c in f.get("clauseNames") or [])]
        if len(matches) > 1:
            ids = ", ".join(sorted(f["id"] for f in matches))
            raise RegisterFieldError(f"contract_register.{setting}: {wanted!r} names several Jira fields ({ids}); give the field id")
        if not matches:
            custom = sorted(f["name"] for f in known if f.get("custom") and isinstance(f.get("name"), str))[:12]
            hint = f"; custom fields visible to this account: {', '.join(custom)}" if custom else ""
            raise RegisterFieldError(f"contract_register.{setting}: no Jira field is named {wanted!r} (or has that id){hint}")
        out[reg_key] = (matches[0]["id"], wanted)
    return out


def transform_contract_issues(src: str, issues: Sequence[Any], fields: dict[str, tuple[str, str]], *, today: date,
                              browse_url: str | None = None) -> Batch:
    """Contract issues -> ``Contract`` records, validated exactly as the file register's rows are.

    ``fields`` is :func:`resolve_register_fields`'s answer. The issue key is the contract id; the
    record key is ``{src}:contract:{issue key}``. An issue that fails validation (no end date, a
    sponsor that is not an email, ...) is skipped with a warning naming the issue and the field.
    Without a status field a contract's status is ``active``: its end date alone says whether it
    ended, and the rules compare it with the sweep's clock.
    """
    inv = contracts_inventory(src)
    batch = Batch()
    names = {reg_key: name for reg_key, (_fid, name) in fields.items()}
    names["id"] = "issue key"
    for index, item in enumerate(issues):
        if not isinstance(item, dict):
            batch.skipped.append(f"issue #{index}: is a JSON {type(item).__name__}, not an object")
            continue
        key = item.get("key")
        if not isinstance(key, str) or not key:
            batch.skipped.append(f"issue #{index}: missing key")
            continue
        raw_fields = item.get("fields")
        if not isinstance(raw_fields, dict):
            batch.skipped.append(f"issue {key[:40]}: fields is a {type(raw_fields).__name__}, not an object")
            continue
        values: dict[str, Any] = {"id": key}
        for reg_key, (fid, _name) in fields.items():
            values[reg_key] = jira_field_value(raw_fields.get(fid))
        warnings: list[str] = []
        contract = contract_from_values(values, where=f"{src} {key}", today=today, warnings=warnings, label="field",
                                        names=names, required=REGISTER_REQUIRED, source=src, inventory=inv)
        for w in warnings:
            (batch.notes if contract is not None else batch.skipped).append(w.replace(": row skipped: ", ": issue skipped: "))
        if contract is not None:
            url = f"{browse_url.rstrip('/')}/browse/{urllib.parse.quote(key)}" if browse_url else None
            changes: dict[str, Any] = {"url": url}
            if "status" not in fields:
                # No status field: the end date alone says whether it ended, judged by the rules
                # against the sweep's clock rather than this collector's.
                changes["status"] = "active"
            batch.records.append(dataclasses.replace(contract, **changes))
    return batch


# --- clients ------------------------------------------------------------------------------------


def connect(source: JiraSource, token: str) -> JIRA:
    """A ``jira`` client; its constructor reads ``serverInfo`` (and fails there on bad credentials)."""
    kwargs: dict[str, Any] = {
        "server": source.base_url.rstrip("/"),
        "options": {"check_update": False, "headers": {"User-Agent": "nhiscan"}},
        "get_server_info": True,
        "max_retries": source.max_retries,
        "timeout": source.timeout,
    }
    if source.user:
        kwargs["basic_auth"] = (source.user, token)
    else:
        kwargs["token_auth"] = token  # a Data Center personal access token (Bearer)
    client = JIRA(**kwargs)
    if source.deployment != "auto":  # the config knows better than serverInfo (e.g. behind a proxy)
        client.deploymentType = "Cloud" if source.deployment == "cloud" else "Server"
    return client


def is_cloud(client: JIRA) -> bool:
    return client.deploymentType == "Cloud"


def admin_session(source: JiraSource, key: str) -> ResilientSession:
    """The ``jira`` client's retrying session (429 and 503 honour ``Retry-After``), with the org API key."""
    session = ResilientSession(timeout=source.timeout, max_retries=source.max_retries)
    session.headers.update({"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": "nhiscan"})
    return session


# --- I/O ------------------------------------------------------------------------------------------


def get_cloud_users(client: JIRA, page_size: int = PAGE_SIZE) -> list[Any]:
    """Every user of a Cloud site (``GET /rest/api/3/users/search``, paged by ``startAt`` until empty)."""
    return _paged_list(lambda start: client._get_json("users/search", params={"startAt": start, "maxResults": page_size},
                                                      base=_CLOUD_V3))


def get_server_users(client: JIRA, page_size: int = PAGE_SIZE) -> list[Any]:
    """Every user of a Server/DC site, active and inactive (``user/search?username=.``)."""
    return _paged_list(lambda start: client._get_json("user/search", params={
        "username": ".", "startAt": start, "maxResults": page_size, "includeActive": True, "includeInactive": True}))


def _paged_list(fetch: Callable[[int], Any]) -> list[Any]:
    """Page a bare-list endpoint by ``startAt`` until an empty page (servers may cap page sizes)."""
    out: list[Any] = []
    for _ in range(MAX_PAGES):
        page = fetch(len(out))
        if not isinstance(page, list):
            raise MalformedResponse("the user listing was not a JSON list")
        if not page:
            return out
        out.extend(page)
    raise MalformedResponse(f"the user listing did not end after {MAX_PAGES} pages")


def get_fields(client: JIRA) -> list[Any]:
    data = client.fields()
    if not isinstance(data, list):
        raise MalformedResponse("GET /field did not return a JSON list")
    return data


def get_register_issues(client: JIRA, jql: str, field_ids: Sequence[str], *, cloud: bool,
                        page_size: int = PAGE_SIZE) -> list[Any]:
    """The issues a JQL query finds, with only the register's fields.

    Cloud: ``/search/jql`` through ``enhanced_search_issues`` (``nextPageToken``); Server:
    ``/search`` through ``search_issues`` (``startAt``/``total``). Raw JSON, so one malformed
    issue can be skipped instead of failing the page.
    """
    out: list[Any] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        if cloud:
            page = client.enhanced_search_issues(jql, nextPageToken=token, maxResults=page_size,
                                                 fields=list(field_ids), json_result=True)
        else:
            page = client.search_issues(jql, startAt=len(out), maxResults=page_size, fields=list(field_ids),
                                        json_result=True)
        if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
            raise MalformedResponse("the search response has no 'issues' list")
        out.extend(page["issues"])
        if cloud:
            token = page.get("nextPageToken") if isinstance(page.get("nextPageToken"), str) else None
            if page.get("isLast") is True or not token:
                return out
        else:
            total = page.get("total")
            if not page["issues"] or (isinstance(total, int) and len(out) >= total):
                return out
    raise MalformedResponse(f"the search did not end after {MAX_PAGES} pages")


def get_admin_listing(session: ResilientSession, url: str, items_key: str) -> list[Any]:
    """Every item of a cursor-paged admin API listing (``links.next``: a cursor or a same-host URL)."""
    out: list[Any] = []
    host = urllib.parse.urlsplit(url).netloc
    next_url, params = url, None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        data = session.get(next_url, params=params).json()
        if not isinstance(data, dict) or not isinstance(data.get(items_key), list):
            raise MalformedResponse(f"the response has no '{items_key}' list")
        out.extend(data[items_key])
        links = data.get("links") if isinstance(data.get("links"), dict) else {}
        nxt = links.get("next")
        if not isinstance(nxt, str) or not nxt:
            return out
        if nxt in seen:
            raise MalformedResponse("the listing repeated a page cursor")
        seen.add(nxt)
        if nxt.startswith(("http://", "https://")):
            if urllib.parse.urlsplit(nxt).netloc != host:  # never send the admin key to another host
                raise MalformedResponse("the next-page link points outside the admin API")
            next_url, params = nxt, None
        else:
            next_url, params = url, {"cursor": nxt}
    raise MalformedResponse(f"the listing did not end after {MAX_PAGES} pages")


def get_api_tokens(session: ResilientSession, admin_base: str, org_id: str) -> list[Any]:
    url = f"{admin_base.rstrip('/')}/admin/api-access/v1/orgs/{urllib.parse.quote(org_id, safe='')}/api-tokens"
    return get_admin_listing(session, url, "data")


def get_service_accounts(session: ResilientSession, admin_base: str, org_id: str) -> list[Any]:
    url = f"{admin_base.rstrip('/')}/admin/api-access/v1/orgs/{urllib.parse.quote(org_id, safe='')}/service-accounts"
    return get_admin_listing(session, url, "items")


# --- errors -> coverage reasons ----------------------------------------------------------------


def _atlassian_message(err: JIRAError) -> str:
    text = err.text if isinstance(err.text, str) else ""
    text = " ".join(text.split())[:160]
    return f" ({text})" if text else ""


def describe_error(err: BaseException, need: str, timeout: float | None = None) -> str:
    """A human reason for a failed read: HTTP status, what went wrong, what access is needed.

    Built from the status and Atlassian's error message only — never from ``str(err)``, which
    for a ``JIRAError`` includes the request headers (the Authorization header).
    """
    if isinstance(err, JIRAError):
        status, msg = err.status_code, _atlassian_message(err)
        if status is None:
            return f"Jira client error{msg}"
        if status == 401:
            return f"HTTP 401: credentials rejected (wrong user, or an expired, revoked or blocked token){msg}"
        if status == 403:
            return f"HTTP 403: forbidden{msg}; needs {need}"
        if status == 404:
            return f"HTTP 404: not found{msg}; the endpoint is unavailable or hidden from this credential; needs {need}"
        if status == 410:
            return f"HTTP 410: endpoint removed{msg}"
        if status == 429:
            return f"HTTP 429: rate limited and not recovered within the retry budget{msg}"
        if status >= 500:
            return f"HTTP {status}: server error{msg}"
        return f"HTTP {status}{msg}"
    if isinstance(err, (json.JSONDecodeError, requests.exceptions.JSONDecodeError)):
        return "malformed response: the body is not valid JSON"
    if isinstance(err, requests.exceptions.Timeout) or (
        isinstance(err, requests.exceptions.ConnectionError) and "timed out" in str(err).lower()
    ):
        after = f" after {timeout:g}s" if timeout else ""
        return f"request timed out{after}"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "could not connect to the Atlassian API (retries exhausted)"
    if isinstance(err, MalformedResponse):
        return f"malformed response: {err}"
    if isinstance(err, (ConfigError, RegisterFieldError)):
        return str(err)
    if isinstance(err, ValueError) and "json" in type(err).__name__.lower():
        return "malformed response: the body is not valid JSON"
    return f"unexpected error: {type(err).__name__}"


# --- collect ------------------------------------------------------------------------------------


def collect(
    source: JiraSource,
    config: Config,
    *,
    hmac_key: bytes,
    progress: Callable[[str], None] | None = None,
    today: date | None = None,
) -> CollectResult:
    """Read every configured inventory of one Jira source; never raises for an API failure.

    ``progress(msg)`` is called as each inventory finishes. Each inventory appears in
    ``coverage`` — ok with its record count, or a gap with the reason. ``hmac_key`` is unused:
    Atlassian's APIs return no secret value to hash.
    """
    run = _Collector(source, config, progress, today or datetime.now(timezone.utc).date())
    run.run()
    return run.result


class _Collector(CollectorRun):
    vendor = "jira"
    merge = "all"

    def __init__(self, source: JiraSource, config: Config, progress: Callable[[str], None] | None, today: date) -> None:
        super().__init__(source, progress)
        self.source: JiraSource = source
        self.config = config
        self.site = site_of(source.base_url)
        self.today = today
        self.wanted = set(self.requested(INVENTORIES))

    def describe(self, err: BaseException, need: str) -> str:
        return describe_error(err, need, self.source.timeout)

    # -- the run

    def run(self) -> None:
        self._site()
        self._org()

    def _site_inventories(self) -> list[tuple[str, str]]:
        out = []
        if "users" in self.wanted:
            out.append(("users", users_inventory(self.src, self.site)))
        if "contracts" in self.wanted and self.source.contract_register is not None:
            out.append(("contracts", contracts_inventory(self.src)))
        return out

    def _site(self) -> None:
        inventories = self._site_inventories()
        if not inventories:
            return
        source = self.source
        try:
            token = read_secret(self.config, env=source.token_env, file=source.token_file, what=f"sources.jira[{self.src}]")
            client = connect(source, token)
        except Exception as err:  # noqa: BLE001
            reason = f"Jira site {self.site} could not be reached: " + describe_error(err, "a valid user and API token", source.timeout)
            for _short, inventory in inventories:
                self.gap(inventory, reason)
            return
        try:
            cloud = is_cloud(client)
            for short, inventory in inventories:
                if short == "users":
                    self.read(inventory, _NEEDS["users"], lambda: self._users(client, cloud))
                else:
                    self.read(inventory, _NEEDS["contracts"], lambda: self._contracts(client, cloud))
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def _users(self, client: JIRA, cloud: bool) -> Batch:
        base = self.source.base_url.rstrip("/")
        if cloud:
            return transform_cloud_users(self.src, self.site, get_cloud_users(client), base_url=base)
        return transform_server_users(self.src, self.site, get_server_users(client), base_url=base)

    def _contracts(self, client: JIRA, cloud: bool) -> Batch:
        register = self.source.contract_register
        assert register is not None
        fields = resolve_register_fields(register, get_fields(client))
        issues = get_register_issues(client, register.jql, sorted({fid for fid, _ in fields.values()}), cloud=cloud)
        return transform_contract_issues(self.src, issues, fields, today=self.today, browse_url=self.source.base_url)

    def _org(self) -> None:
        shorts = [s for s in ("api_tokens", "service_accounts") if s in self.wanted]
        if not shorts:
            return
        source = self.source
        has_key = bool(source.org_admin_token_env or source.org_admin_token_file)
        if not (has_key and source.org_id):
            missing = " and ".join(x for x, present in (("an org admin API key", has_key), ("org_id", bool(source.org_id))) if not present)
            reason = f"{NEEDS_ORG_ADMIN_KEY}; {missing} not configured"
            if source.deployment == "server":
                reason += " (Jira Data Center itself has no API that lists users' personal access tokens)"
            for short in shorts:
                self.gap(org_inventory(self.src, short), reason)
            return
        try:
            key = read_secret(self.config, env=source.org_admin_token_env, file=source.org_admin_token_file,
                              what=f"sources.jira[{self.src}] org admin key")
        except ConfigError as err:
            for short in shorts:
                self.gap(org_inventory(self.src, short), f"org admin API key not available: {err}")
            return
        session = admin_session(source, key)
        org_id = source.org_id
        assert org_id is not None
        readers: dict[str, Callable[[], Batch]] = {
            "api_tokens": lambda: transform_api_tokens(self.src, get_api_tokens(session, source.admin_base_url, org_id)),
            "service_accounts": lambda: transform_service_accounts(
                self.src, get_service_accounts(session, source.admin_base_url, org_id)),
        }
        try:
            for short in shorts:
                self.read(org_inventory(self.src, short), _NEEDS[short], readers[short])
        finally:
            session.close()
