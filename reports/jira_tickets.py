"""Jira remediation tickets: one per finding (or per subject), followed until the finding is fixed.

Planning is pure: the sweep's changes become outbox rows (open / resolve) keyed by
the sweep, so the same finding state is queued once. Delivery uses the real
``jira`` client and is idempotent on its own: before creating, it looks in the
local ticket map, then searches by the ``nhi-...`` label — and when a previous
attempt was interrupted (Cloud search is eventually consistent), it keeps
searching for a while before it creates.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from typing import Any

from reports.escaping import escape_jira as esc
from reports.slack_alerts import at_least
from scanner.config import Config, JiraTicketsConfig, read_secret
from scanner.store import ACCEPTED, ALERTING, NEW, OPEN, REGRESSED, REOPENED, RESOLVED, UNREFRESHED, OutboxRow, Store, crash_point

log = logging.getLogger("nhiscan.jira")

STILL_OPEN = (NEW, OPEN, REGRESSED, REOPENED, UNREFRESHED, ACCEPTED)


def label_for(f: dict[str, Any], per: str) -> str:
    if per == "subject":
        return "nhi-s-" + hashlib.sha256(f["subject"]["key"].encode()).hexdigest()[:20]
    return f"nhi-{f['fingerprint']}"


def description(findings: list[dict[str, Any]]) -> str:
    """The ticket body in Jira wiki markup; every tenant-controlled string escaped."""
    parts = []
    for f in findings:
        subj = f["subject"]
        lines = [
            f"*{esc(f['title'])}* ({f['severity']}, {f['owasp']}, {f['nist']})",
            f"Subject: {esc(subj['type'])} {esc(subj['name'])} in {esc(subj['source'])} ({{{{{esc(subj['key'])}}}}})",
            f"Why: {esc(f['why'])}",
        ]
        for o in f.get("owners", []):
            lines.append(f"Owner ({esc(o['role'])}): {esc(o['email'] or o['account'] or '?')}, {esc(o['status'])}; "
                         f"evidence: {esc(' -> '.join(o['evidence']))}")
        for s in f.get("sponsors", []):
            lines.append(f"Sponsor: {esc(s['email'] or 'none')} ({esc(s['status'])}) for contract {esc(s['contract'])}")
        for e in f.get("evidence", []):
            lines.append(f"Evidence: {esc(e)}")
        if f.get("reach"):
            lines.append("Can reach: " + ", ".join(esc(r["name"]) for r in f["reach"][:10]))
        lines.append(f"What to do: {esc(f['remediation'])}")
        lines.append(f"Fingerprint: {f['fingerprint']}")
        parts.append("\n".join(lines))
    return "\n----\n".join(parts) + "\n\n_Filed by nhiscan; it comments and closes this ticket when the finding is resolved._"


def plan(findings: list[dict[str, Any]], sweep_id: int, cfg: JiraTicketsConfig) -> list[OutboxRow]:
    """Open (or reopen) tickets for alerting findings; resolve tickets whose findings are all gone."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        by_label[label_for(f, cfg.per)].append(f)
    rows = []
    for label, group in sorted(by_label.items()):
        alerting = [f for f in group if f["change"] in ALERTING and at_least(f["severity"], cfg.min_severity)]
        if alerting:
            regressed = any(f["change"] in (REGRESSED, REOPENED) for f in alerting)
            worst = min(alerting, key=lambda f: ("critical", "high", "medium", "low", "info").index(f["severity"]))
            summary = f"[nhiscan] {worst['title']}: {worst['subject']['name']}"[:250]
            rows.append(OutboxRow(
                dedupe_key=f"jira:open:{sweep_id}:{label}", channel="jira", kind="open", target=label, created_sweep=sweep_id,
                payload={"summary": _plain(summary), "description": description(alerting), "regressed": regressed,
                         "owner_emails": [o["email"] for f in alerting for o in f.get("owners", []) if o.get("email") and o.get("known")],
                         "fingerprints": [f["fingerprint"] for f in alerting]},
            ))
        elif any(f["change"] == RESOLVED for f in group) and not any(f["change"] in STILL_OPEN for f in group):
            done = [f for f in group if f["change"] == RESOLVED]
            rows.append(OutboxRow(
                dedupe_key=f"jira:resolve:{sweep_id}:{label}", channel="jira", kind="resolve", target=label, created_sweep=sweep_id,
                payload={"comment": "nhiscan no longer sees this in sweep "
                         f"{sweep_id}: " + "; ".join(f"{esc(f['title'])} ({f['fingerprint']})" for f in done)
                         + ". Every inventory it depends on was read successfully.",
                         "fingerprints": [f["fingerprint"] for f in done]},
            ))
    return rows


def _plain(text: str) -> str:
    # A summary is a single plain line; Jira does not render markup there, but strip newlines.
    return " ".join(text.split())


# --- delivery ----------------------------------------------------------------------------


def client_for(config: Config, cfg: JiraTicketsConfig):
    from jira import JIRA

    token = read_secret(config, env=cfg.token_env, file=cfg.token_file, what="notify.jira")
    return JIRA(server=cfg.base_url, basic_auth=(cfg.user, token), max_retries=cfg.max_retries, timeout=cfg.timeout)


class TicketDesk:
    """The Jira side of delivery: find, create, comment, transition."""

    def __init__(self, jira, cfg: JiraTicketsConfig):
        self.jira, self.cfg = jira, cfg
        self.cloud = getattr(jira, "_is_cloud", False) or jira.server_info().get("deploymentType") == "Cloud"

    def search(self, label: str):
        jql = f'project = "{self.cfg.project}" AND labels = "{label}" ORDER BY created DESC'
        if self.cloud and hasattr(self.jira, "enhanced_search_issues"):
            found = self.jira.enhanced_search_issues(jql, maxResults=5)
        else:
            found = self.jira.search_issues(jql, maxResults=5)
        return list(found)[0] if found else None

    def find(self, store: Store, label: str, *, patient: bool):
        """The issue for a label: local map first, then search; patient after an interrupted create."""
        row = store.ticket(label)
        if row is not None:
            return self.jira.issue(row.issue_key)
        deadline = time.monotonic() + (self.cfg.search_wait_seconds if patient else 0)
        while True:
            issue = self.search(label)
            if issue is not None or time.monotonic() >= deadline:
                return issue
            time.sleep(0.5)

    def is_done(self, issue) -> bool:
        status = issue.fields.status
        category = getattr(getattr(status, "statusCategory", None), "key", None)
        return category == "done" or status.name.lower() in (self.cfg.done_transition.lower(), "done", "closed", "resolved")

    def transition(self, issue, name: str) -> bool:
        for t in self.jira.transitions(issue):
            if t["name"].lower() == name.lower() or t.get("to", {}).get("name", "").lower() == name.lower():
                self.jira.transition_issue(issue, t["id"])
                return True
        log.warning("jira: %s has no transition named %r", issue.key, name)
        return False

    def assignee(self, emails: list[str]) -> dict[str, str] | None:
        for email in emails:
            try:
                users = self.jira.search_users(query=email, maxResults=1) if self.cloud else self.jira.search_users(user=email, maxResults=1)
            except Exception as err:  # noqa: BLE001 - an assignee is a courtesy, not a requirement
                log.info("jira: could not look up %s: %s", email, type(err).__name__)
                continue
            if users:
                u = users[0]
                return {"accountId": u.accountId} if self.cloud else {"name": u.name}
        return None

    def create(self, label: str, payload: dict[str, Any], link_to=None):
        fields = {
            "project": {"key": self.cfg.project},
            "issuetype": {"name": self.cfg.issue_type},
            "summary": payload["summary"],
            "description": payload["description"],
            "labels": [label, "nhiscan"],
        }
        who = self.assignee(payload.get("owner_emails", []))
        if who:
            fields["assignee"] = who
        issue = self.jira.create_issue(fields=fields)
        if link_to is not None:
            try:
                self.jira.create_issue_link("Relates", issue.key, link_to.key)
            except Exception as err:  # noqa: BLE001 - a missing link type must not lose the ticket
                log.warning("jira: could not link %s to %s: %s", issue.key, link_to.key, type(err).__name__)
        return issue


def deliver(config: Config, store: Store, jira=None) -> dict[str, int]:
    """Carry out every pending Jira outbox row; returns counts by outcome."""
    from jira.exceptions import JIRAError

    cfg = config.notify.jira
    if cfg is None:
        return {}
    desk = TicketDesk(jira or client_for(config, cfg), cfg)
    counts: dict[str, int] = defaultdict(int)
    for item in store.outbox(channel="jira"):
        interrupted = item.state == "sending"
        store.mark_outbox(item.id, "sending")
        try:
            outcome, key = _carry_out(desk, store, item, patient=interrupted)
        except JIRAError as err:
            log.warning("jira: could not deliver %s: HTTP %s", item.dedupe_key, err.status_code)
            store.mark_outbox(item.id, "pending", error=f"HTTP {err.status_code}")
            counts["failed"] += 1
            continue
        store.mark_outbox(item.id, "sent", ref=key)
        counts[outcome] += 1
    return dict(counts)


def _carry_out(desk: TicketDesk, store: Store, item: OutboxRow, *, patient: bool) -> tuple[str, str | None]:
    label, payload = item.target, item.payload
    issue = desk.find(store, label, patient=patient)
    if item.kind == "resolve":
        if issue is None or desk.is_done(issue):
            return "nothing to resolve", issue.key if issue else None
        desk.jira.add_comment(issue, payload["comment"])
        desk.transition(issue, desk.cfg.done_transition)
        store.record_ticket(label, issue.key, "done")
        return "resolved", issue.key
    # kind == "open"
    if issue is not None and not desk.is_done(issue):
        if payload.get("regressed"):
            desk.jira.add_comment(issue, "nhiscan sees this again (regressed or risk acceptance expired).")
        store.record_ticket(label, issue.key, "open")
        return "already open", issue.key
    if issue is not None and desk.cfg.reopen_transition and desk.transition(issue, desk.cfg.reopen_transition):
        desk.jira.add_comment(issue, "Reopened by nhiscan: the finding is back.\n\n" + payload["description"])
        store.record_ticket(label, issue.key, "open")
        return "reopened", issue.key
    new = desk.create(label, payload, link_to=issue)
    crash_point("jira-after-create")
    store.record_ticket(label, new.key, "open")
    return "created", new.key
