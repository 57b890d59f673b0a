"""Slack alerts: one digest per accountable person per sweep, one summary to the security channel.

Planning is pure: from the sweep's finding changes it decides who hears about
what and why, and renders the text (escaped for Slack mrkdwn). The result is a
list of outbox rows written in the sweep's own transaction. Delivery reads the
outbox, sends with the real slack_sdk client, and records what it did — and a
message interrupted mid-send is looked up by its metadata before it is resent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from detectors.rules import SEVERITIES
from reports.escaping import escape_slack as esc
from scanner.config import Config, SlackNotifyConfig, read_secret
from scanner.store import ALERTING, OutboxRow, Store, crash_point

log = logging.getLogger("nhiscan.slack")

METADATA_EVENT = "nhiscan_alert"
MAX_ITEMS_PER_DIGEST = 25


def at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) <= SEVERITIES.index(minimum)


def route(f: dict[str, Any]) -> tuple[str, str]:
    """Who must hear about a finding, and the sentence that tells them why it came to them.

    The owner if they are a current person; else the contract's sponsor; else the manager of
    the departed owner or sponsor; else nobody resolvable: the fallback channel.
    """
    owners = [o for o in f.get("owners", []) if o.get("email")]
    sponsors = [s for s in f.get("sponsors", []) if s.get("email")]
    for o in owners:
        if o.get("known") and o["status"] not in ("departed", "unknown"):
            return f"user:{o['email']}", f"you are its {o['role']} ({' → '.join(o['evidence'])})"
    for s in sponsors:
        if s.get("known") and s["status"] not in ("departed", "unknown", "missing"):
            return f"user:{s['email']}", f"you sponsor contract {s['contract']}, which covers it"
    for p in owners + sponsors:
        if p["status"] == "departed" and p.get("manager"):
            role = p.get("role") or f"contract {p.get('contract')} sponsor"
            return f"user:{p['manager']}", f"{p['email']} ({role}) has left and you were their manager"
    return "fallback", "no current owner, sponsor or manager could be resolved for it"


def _item_text(f: dict[str, Any], why_you: str) -> str:
    subj = f["subject"]
    tag = {"regressed": " (back again)", "reopened": " (risk acceptance expired)"}.get(f["change"], "")
    lines = [
        f"*[{f['severity'].upper()}] {esc(f['title'])}*{tag}: `{esc(subj['name'])}` ({esc(subj['type'])}, {esc(subj['source'])})",
        f"Why: {esc(f['why'])}",
        f"Why you: {esc(why_you)}",
    ]
    if f.get("evidence"):
        lines.append("Evidence: " + "; ".join(esc(e) for e in f["evidence"][:3]))
    if f.get("reach"):
        lines.append("Can reach: " + ", ".join(esc(r["name"]) for r in f["reach"][:5]) + (" …" if f.get("reach_total", 0) > 5 else ""))
    lines.append(f"Do: {esc(f['remediation'])}")
    lines.append(f"_{f['owasp']} · {f['nist']} · fingerprint {f['fingerprint']}_")
    return "\n".join(lines)


def plan(findings: list[dict[str, Any]], sweep_id: int, summary: dict[str, Any], cfg: SlackNotifyConfig) -> list[OutboxRow]:
    """Outbox rows for this sweep: digests per recipient and the channel summary."""
    digests: dict[str, list[str]] = defaultdict(list)
    fingerprints: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        if f["change"] not in ALERTING or not at_least(f["severity"], cfg.min_severity):
            continue
        target, why_you = route(f)
        if target == "fallback":
            target = f"channel:{cfg.fallback_channel}"
        digests[target].append(_item_text(f, why_you))
        fingerprints[target].append(f["fingerprint"])
    rows = []
    for target, items in sorted(digests.items()):
        shown = items[:MAX_ITEMS_PER_DIGEST]
        more = len(items) - len(shown)
        head = (f"*nhiscan* found {len(items)} non-human access path(s) that need your action (sweep {sweep_id}):"
                if target.startswith("user:") else
                f"*nhiscan*: {len(items)} finding(s) with no accountable person (sweep {sweep_id}):")
        text = "\n\n".join([head, *shown] + ([f"…and {more} more in the report."] if more else []))
        key = f"slack:digest:{sweep_id}:{target}"
        rows.append(OutboxRow(dedupe_key=key, channel="slack", kind="digest", target=target, created_sweep=sweep_id,
                              payload={"text": text, "fingerprints": fingerprints[target]}))
    if cfg.security_channel:
        rows.append(OutboxRow(dedupe_key=f"slack:summary:{sweep_id}", channel="slack", kind="summary",
                              target=f"channel:{cfg.security_channel}", created_sweep=sweep_id,
                              payload={"text": summary_text(summary, sweep_id)}))
    return rows


def summary_text(summary: dict[str, Any], sweep_id: int) -> str:
    sev = summary.get("open_by_severity", {})
    ch = summary.get("changes", {})
    cov = summary.get("coverage", {})
    counts = ", ".join(f"{sev[s]} {s}" for s in SEVERITIES if sev.get(s)) or "none"
    lines = [
        f"*nhiscan sweep {sweep_id}*: open findings: {counts}",
        f"New {ch.get('new', 0)} · regressed {ch.get('regressed', 0)} · reopened {ch.get('reopened', 0)} · "
        f"resolved {ch.get('resolved', 0)} · accepted {ch.get('accepted', 0)}",
        f"Coverage: {cov.get('read', 0)} of {cov.get('inventories', 0)} inventories read",
    ]
    for gap in cov.get("not_read", [])[:10]:
        lines.append(f"• not read: `{esc(gap['inventory'])}`: {esc(gap['reason'] or '')}")
    if len(cov.get("not_read", [])) > 10:
        lines.append(f"• …and {len(cov['not_read']) - 10} more (see the report)")
    return "\n".join(lines)


# --- delivery ------------------------------------------------------------------------------


def client_for(config: Config, cfg: SlackNotifyConfig):
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    token = read_secret(config, env=cfg.token_env, file=cfg.token_file, what="notify.slack")
    client = WebClient(token=token, base_url=cfg.base_url, timeout=cfg.timeout)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=cfg.max_retries))
    return client


def deliver(config: Config, store: Store, client=None) -> dict[str, int]:
    """Send every pending Slack outbox row; returns counts by outcome."""
    from slack_sdk.errors import SlackApiError

    cfg = config.notify.slack
    if cfg is None:
        return {}
    client = client or client_for(config, cfg)
    counts: dict[str, int] = defaultdict(int)
    for item in store.outbox(channel="slack"):
        try:
            channel, note = _resolve_channel(client, item.target, cfg)
            if item.state == "sending" and _already_posted(client, channel, item.dedupe_key):
                store.mark_outbox(item.id, "sent", ref="found-after-interruption")
                counts["already sent"] += 1
                continue
            store.mark_outbox(item.id, "sending")
            text = (note + "\n\n" + item.payload["text"]) if note else item.payload["text"]
            resp = client.chat_postMessage(
                channel=channel, text=text, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"dedupe_key": item.dedupe_key}},
            )
            crash_point("slack-after-post")
            store.mark_outbox(item.id, "sent", ref=resp.get("ts"))
            counts["sent"] += 1
        except SlackApiError as err:
            error = err.response.get("error") if err.response is not None else "unknown"
            log.warning("slack: could not deliver %s: %s", item.dedupe_key, error)
            store.mark_outbox(item.id, "pending", error=str(error))
            counts["failed"] += 1
    return dict(counts)


def _resolve_channel(client, target: str, cfg: SlackNotifyConfig) -> tuple[str, str]:
    """A channel id or name for a target; a person Slack does not know goes to the fallback channel."""
    from slack_sdk.errors import SlackApiError

    if target.startswith("channel:"):
        return target.removeprefix("channel:"), ""
    email = target.removeprefix("user:")
    try:
        user = client.users_lookupByEmail(email=email)["user"]
    except SlackApiError as err:
        if err.response is not None and err.response.get("error") == "users_not_found":
            return cfg.fallback_channel, f"_Sent here because no Slack user has the email {esc(email)}._"
        raise
    return client.conversations_open(users=user["id"])["channel"]["id"], ""


def _already_posted(client, channel: str, dedupe_key: str) -> bool:
    """Did an interrupted attempt get through? Look for our metadata in the channel's recent history."""
    resp = client.conversations_history(channel=channel, include_all_metadata=True, limit=100)
    for msg in resp.get("messages", []):
        meta = msg.get("metadata") or {}
        if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("dedupe_key") == dedupe_key:
            return True
    return False
