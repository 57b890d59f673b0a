"""Jira tickets as a source of leaked secrets: descriptions and comments, incrementally by updated time.

People paste credentials into tickets ("here is the staging token, can you check?").
Each sweep asks Jira, through the real ``jira`` client, for the issues updated
since the newest ``updated`` it read last time (less ``overlap_minutes``: JQL
dates have minute precision, Cloud's search is eventually consistent), scans
their description and comments with the secret engine, and replaces what it
remembered of each issue. An issue whose ``updated`` did not move is not scanned
again. Every sweep re-emits the findings of every issue it remembers, so a
finding resolves when the secret is edited out, not because no one touched the
ticket.

State (``state_dir/<source>/tickets.json``): the watermark and, per issue, its
``updated`` and findings as keyed hashes and previews; never a value. It is tied
to the HMAC key and the rules version like the git ledger.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from detectors.secrets.exposures import hit_entry, type_slug
from scanner.config import Config, ConfigError, JiraTicketsSource, read_secret
from scanner.records import CollectResult, Exposure, InventoryStatus

log = logging.getLogger("nhiscan.collectors.jira_tickets")

STATE_VERSION = 1
FIELDS = ("summary", "description", "comment", "updated")


# --- pure: Jira JSON -> texts ---------------------------------------------------------------


def adf_text(node: Any) -> str:
    """Plain text of an Atlassian Document Format node (Cloud v3 bodies); strings pass through."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "".join(adf_text(n) for n in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    inner = adf_text(node.get("content", []))
    if kind in ("paragraph", "heading", "codeBlock", "listItem", "blockquote", "tableRow", "rule", "panel"):
        return inner + "\n"
    return inner


def parse_jira_time(value: Any) -> datetime | None:
    """Jira's ``2026-11-01T12:00:00.000+0000`` (or ISO 8601 with a colon) as aware UTC."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def issue_texts(issue: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of an issue's description and each comment; ``where`` is stable across edits."""
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    out = []
    description = adf_text(fields.get("description")).strip("\n")
    if description:
        out.append(("description", description))
    comments = fields.get("comment", {}).get("comments", []) if isinstance(fields.get("comment"), dict) else []
    for comment in comments if isinstance(comments, list) else []:
        if isinstance(comment, dict) and comment.get("id") is not None:
            body = adf_text(comment.get("body")).strip("\n")
            if body:
                out.append((f"comment-{comment['id']}", body))
    return out


def transform_exposures(src: str, inventory: str, issues: dict[str, dict[str, Any]]) -> list[Exposure]:
    """Remembered findings -> ``Exposure`` records, one per (issue, place, type, value)."""
    records = []
    for issue_key in sorted(issues):
        for where, secret_type, line, secret_hmac, preview, identities, *checked in issues[issue_key].get("hits", ()):
            live, verified_by = (checked + [None, None])[:2]
            records.append(
                Exposure(
                    key=f"{src}:exposure:{issue_key}/{where}:{type_slug(secret_type)}:{secret_hmac[:12]}",
                    source=src,
                    inventory=inventory,
                    name=f"{secret_type} in {issue_key} {where}",
                    secret_type=secret_type,
                    secret_hmac=secret_hmac,
                    preview=preview,
                    location=f"{src}:{issue_key}:{where}:{line}",
                    identities=tuple(identities),
                    live=live,
                    verified_by=verified_by,
                )
            )
    return records


# --- state ----------------------------------------------------------------------------------


@dataclass
class TicketState:
    key_id: str = ""
    rules: str = ""
    watermark: str | None = None  # the newest ``updated`` read, ISO 8601 UTC
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {"updated", "hits"}
    path: str | None = None

    @classmethod
    def load(cls, path: str, *, hmac_key: bytes, rules: str) -> "TicketState":
        key_id = hashlib.sha256(b"nhiscan-tickets" + hmac_key).hexdigest()[:16]
        fresh = cls(key_id=key_id, rules=rules, path=path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return fresh
        except (OSError, ValueError) as err:
            log.warning("ticket state %s unreadable (%s): reading every issue again", path, type(err).__name__)
            return fresh
        if data.get("version") != STATE_VERSION or data.get("key_id") != key_id or data.get("rules") != rules:
            return fresh
        return cls(key_id=key_id, rules=rules, watermark=data.get("watermark"), issues=data.get("issues", {}), path=path)

    def save(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".tickets-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": STATE_VERSION, "key_id": self.key_id, "rules": self.rules,
                       "watermark": self.watermark, "issues": self.issues}, handle, separators=(",", ":"))
        os.replace(tmp, self.path)


def search_jql(base: str, watermark: str | None, overlap_minutes: int) -> str:
    """The incremental query: issues updated since the watermark (less the overlap), oldest first."""
    clauses = [f"({base})"] if base.strip() else []
    if watermark:
        since = datetime.fromisoformat(watermark) - timedelta(minutes=overlap_minutes)
        clauses.append(f'updated >= "{since.astimezone(timezone.utc):%Y/%m/%d %H:%M}"')
    elif not clauses:
        clauses.append('updated >= "1970/01/01 00:00"')  # Cloud refuses an unbounded query
    return " AND ".join(clauses) + " ORDER BY updated ASC"


@dataclass
class TicketScan:
    read: int = 0  # issues the search returned
    scanned: int = 0  # of those, scanned (their updated time moved)
    skipped: list[str] = field(default_factory=list)  # malformed issues


def scan_issues(state: TicketState, issues: Iterable[Any], *, hmac_key: bytes, scanner: Any,
                verify: Callable[[str, str], Any] | None = None) -> TicketScan:
    """Scan the issues whose ``updated`` moved; remember their findings (hashed) in ``state``."""
    result = TicketScan()
    batch: list[tuple[str, str, str]] = []  # (issue key, where, text)
    newest = state.watermark
    for issue in issues:
        result.read += 1
        if not isinstance(issue, dict) or not isinstance(issue.get("key"), str):
            result.skipped.append(repr(issue)[:60])
            continue
        fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
        updated = parse_jira_time(fields.get("updated"))
        if updated is None:
            result.skipped.append(issue["key"])
            continue
        stamp = updated.isoformat()
        newest = max(newest, stamp) if newest else stamp
        known = state.issues.get(issue["key"])
        if known and known.get("updated") == stamp:
            continue  # unchanged since it was scanned
        result.scanned += 1
        state.issues[issue["key"]] = {"updated": stamp, "hits": []}
        batch.extend((issue["key"], where, text) for where, text in issue_texts(issue))
    per_text = scanner.scan_texts([(f"{key}.{where}.txt", text) for key, where, text in batch])
    for (key, where, _text), hits in zip(batch, per_text):
        state.issues[key]["hits"].extend([where, *hit_entry(hit, hmac_key, verify)] for hit in hits)
    state.watermark = newest
    return result


# --- the collector --------------------------------------------------------------------------


def collect(source: JiraTicketsSource, config: Config, *, hmac_key: bytes,
            progress: Callable[[str], None] | None = None) -> CollectResult:
    """Read the issues updated since the last sweep and scan them; never raises for an API failure."""
    from detectors.secrets import SecretScanner
    from detectors.secrets.liveness import checker
    from scanner.collectors.git_repos import rules_version
    from scanner.collectors.jira import connect, get_register_issues, is_cloud

    src = source.name
    host = source.base_url.split("://", 1)[-1].split("/", 1)[0]
    inventory = f"{src}:{host}:tickets"
    result = CollectResult(source=src)
    state = TicketState.load(os.path.join(str(config.path(source.state_dir)), src, "tickets.json"),
                             hmac_key=hmac_key, rules=rules_version())
    try:
        token = read_secret(config, env=source.token_env, file=source.token_file, what=f"sources.jira_tickets[{src}] token")
        client = connect(source, token)  # type: ignore[arg-type] - the connection fields JiraSource has
        issues = get_register_issues(client, search_jql(source.jql, state.watermark, source.overlap_minutes),
                                     FIELDS, cloud=is_cloud(client))
    except ConfigError as err:
        result.coverage.append(InventoryStatus(source=src, inventory=inventory, ok=False, reason=str(err)))
        return result
    except Exception as err:  # noqa: BLE001 - any client or HTTP failure is a gap with its reason
        reason = _reason(err)
        log.warning("jira tickets %s not read: %s", src, reason)
        result.coverage.append(InventoryStatus(source=src, inventory=inventory, ok=False, reason=reason))
        return result
    with SecretScanner(workers=source.workers) as scanner:
        scan = scan_issues(state, issues, hmac_key=hmac_key, scanner=scanner, verify=checker(config, source.verify_live))
    for bad in scan.skipped:
        result.warnings.append(f"jira tickets {src}: malformed issue skipped: {bad}")
    records = transform_exposures(src, inventory, state.issues)
    result.records.extend(records)
    result.coverage.append(InventoryStatus(source=src, inventory=inventory, ok=True, count=len(records)))
    if progress:
        try:
            progress(f"{scan.read} issues updated, {scan.scanned} scanned, {len(records)} exposures")
        except Exception as err:  # noqa: BLE001 - a display problem must not stop the sweep
            log.debug("progress callback failed: %s", type(err).__name__)
    try:
        state.save()
    except OSError as err:
        result.warnings.append(f"jira tickets {src}: could not save state: {err.strerror}")
    return result


def _reason(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    text = getattr(err, "text", None) or type(err).__name__
    if status == 401:
        return "HTTP 401: authentication failed (user and API token)"
    if status == 403:
        return "HTTP 403: the account may not browse these projects"
    if status == 400:
        return f"HTTP 400: Jira refused the query: {str(text)[:200]}"
    if status:
        return f"HTTP {status}: {str(text)[:200]}"
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
