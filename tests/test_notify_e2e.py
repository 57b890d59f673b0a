"""Alerts and tickets end to end: the demo estate swept several times with changes between sweeps,
delivered by the real slack_sdk and jira clients to the sandbox's Slack and Jira; and real
`nhiscan` processes killed at the dangerous moments, then run again.

What must hold: the right people hear about what changed, once; tickets open, comment and close
as findings do; a failing source resolves nothing; a crash never repeats or loses a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from sandbox import Sandbox, generate_app_key_pair
from scanner.config import load_config
from scanner.demo import DEMO_APP_ID, bundled_estate, prepare
from scanner.store import Store
from scanner.sweep import run_sweep

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
# Secret values planted in the demo estate (variables, git history, a ticket comment): found as
# exposures, they must never reach a Slack message or a Jira ticket.
PLANTED = ["AKIAQ3EGDEMOPLANTED7X", "demoPlantedValue", "glpat-DEMOplantedValue", "ghp_DemoLeakedLegacyDeployToken", "demoPastedInTicket"]

# The installed console script, as users run it (``python -m`` would put the working
# directory, which holds a reports/ folder, first on sys.path).
NHISCAN = str(Path(sys.executable).with_name("nhiscan"))


@pytest.fixture(scope="module")
def keys():
    return generate_app_key_pair()


@pytest.fixture
def env(tmp_path, keys):
    private, public = keys
    data = yaml.safe_load(bundled_estate().read_text())
    with Sandbox(data, now=NOW, app_keys={DEMO_APP_ID: public.decode()}) as sb:
        slack = sb.estate.vendors["slack"]
        bot = next(t.token for t in slack.tokens if t.type == "bot")
        (tmp_path / "slack-notify-token.txt").write_text(bot)
        jira_user = next(t.owner for t in sb.estate.vendors["jira"].api_tokens if t.token)
        extra = f"""
[notify.slack]
base_url = "{sb.url('slack')}"
token_file = "slack-notify-token.txt"
fallback_channel = "#nhi-triage"
security_channel = "#security-alerts"
min_severity = "high"
max_retries = 3

[notify.jira]
base_url = "{sb.url('jira')}"
user = "{jira_user}"
token_file = "jira-token.txt"
project = "SEC"
done_transition = "Done"
reopen_transition = "To Do"
min_severity = "critical"
search_wait_seconds = 3
"""
        config_path = prepare(sb, tmp_path, private, extra=extra)
        yield sb, config_path


def slack_messages(sb):
    """(where, text) for every message: a DM's recipient email, or the channel name."""
    emu = sb.apps["slack"]
    st = emu.state
    names = {c.id: "#" + c.name for c in st.channels}
    out = []
    for m in emu.messages:
        if m["recipient"]:
            out.append((st.user_by_id(m["recipient"]).email, m["text"]))
        else:
            out.append((names.get(m["channel"], m["channel"]), m["text"]))
    return out


def tickets(sb):
    return {i.key: i for i in sb.apps["jira"].issues if i.project_key == "SEC" and "nhiscan" in i.labels}


def critical_alerting(outcome):
    return {f["fingerprint"] for f in outcome.findings if f["severity"] == "critical" and f["change"] in ("new", "regressed", "reopened")}


def sweep(config_path):
    return run_sweep(load_config(config_path), now=NOW)


def test_three_sweeps_with_changes_alert_the_right_people_once(env):
    sb, config_path = env
    workdir = config_path.parent

    # --- sweep 1: everything is new --------------------------------------------------------
    first = sweep(config_path)
    msgs = slack_messages(sb)
    where = Counter(w for w, _ in msgs)
    assert all(n == 1 for n in where.values()), f"someone got two messages in one sweep: {where}"
    assert where["#security-alerts"] == 1
    # Departed people are never the recipient; their managers and sponsors are.
    assert not {"eve@acme.example", "grace@acme.example", "dave@acme.example"} & set(where)
    bob = next(t for w, t in msgs if w == "bob@acme.example")
    assert "globex-ci" in bob and "you sponsor contract C-100" in bob          # Globex's sponsor
    assert "eve@acme.example" in bob and "has left and you were their manager" in bob  # eve reported to bob
    summary = next(t for w, t in msgs if w == "#security-alerts")
    assert "open findings:" in summary
    read, total = (int(x) for x in summary.split("Coverage: ")[1].split(" inventories")[0].split(" of "))
    assert read == total == len(first.coverage)
    # One ticket per critical finding, each labelled with its fingerprint.
    created = tickets(sb)
    labels = Counter(label for i in created.values() for label in i.labels if label.startswith("nhi-"))
    assert set(labels) == {f"nhi-{fp}" for fp in critical_alerting(first)} and all(n == 1 for n in labels.values())
    assert all(i.status == "To Do" for i in created.values())

    # --- sweep 2: nothing changed: only the channel summary ----------------------------------
    sweep(config_path)
    assert len(slack_messages(sb)) == len(msgs) + 1
    assert slack_messages(sb)[-1][0] == "#security-alerts"
    assert tickets(sb).keys() == created.keys()
    assert not any(i.comments for i in tickets(sb).values())

    # --- changes: a key removed, a contract ended, an owner departed, a source failing ---------
    with sb.github.mutate() as gh:
        gh.remove_deploy_key("acme", "api", "globex-deploy")
    contracts = (workdir / "contracts.toml").read_text()
    stark = contracts.index('id = "C-500"')
    end_at = contracts.index("end = ", stark)
    line_end = contracts.index("\n", end_at)
    (workdir / "contracts.toml").write_text(contracts[:end_at] + "end = 2026-10-30\nstatus = \"ended\"" + contracts[line_end:])
    people = (workdir / "people.csv").read_text().replace("heidi@acme.example,Heidi Kim,active,", "heidi@acme.example,Heidi Kim,departed,2026-10-15")
    (workdir / "people.csv").write_text(people)
    (workdir / "slack-token.txt").write_text("xoxb-revoked-token")  # the Slack *source* fails; alerts use their own token
    before = len(slack_messages(sb))
    third = sweep(config_path)
    new_msgs = slack_messages(sb)[before:]
    by = {w: t for w, t in new_msgs}
    assert Counter(w for w, _ in new_msgs).most_common(1)[0][1] == 1
    # The ended contract: its sponsor alice hears about Stark's live access.
    assert "stark" in by["alice@acme.example"].lower() and "you sponsor contract C-500" in by["alice@acme.example"]
    # heidi left: what she owned goes to her manager bob.
    assert "heidi@acme.example" in by["bob@acme.example"] and "has left and you were their manager" in by["bob@acme.example"]
    # The channel summary names the source that was not read.
    assert "not read" in by["#security-alerts"] and "slack" in by["#security-alerts"]
    # The removed key's ticket is commented and closed; nothing from the failing source is resolved.
    changes = {f["fingerprint"]: f for f in third.findings}
    resolved = {fp for fp, f in changes.items() if f["change"] == "resolved"}
    assert resolved and all(changes[fp]["subject"]["name"] == "globex-deploy" for fp in resolved)
    assert not any(f["change"] == "resolved" and f["subject"]["source"] == "slack" for f in third.findings)
    now_tickets = tickets(sb)
    closed = [i for i in now_tickets.values() if i.status == "Done"]
    assert {label for i in closed for label in i.labels if label.startswith("nhi-")} == {f"nhi-{fp}" for fp in resolved if changes[fp]["severity"] == "critical"}
    assert all(i.comments and "no longer sees this" in i.comments[-1].body for i in closed)
    new_tickets = now_tickets.keys() - created.keys()
    assert {label for k in new_tickets for label in now_tickets[k].labels if label.startswith("nhi-")} == {f"nhi-{fp}" for fp in critical_alerting(third)}
    assert any("stark" in now_tickets[k].summary.lower() for k in new_tickets)

    # Leaks were found and alerted, but no message or ticket carries a secret value.
    assert any(f["rule_id"] == "secret-exposed" for f in first.findings)
    outputs = [t for _, t in slack_messages(sb)] + [i.summary + (i.description or "") + "".join(c.body for c in i.comments)
                                                  for i in tickets(sb).values()]
    for value in PLANTED:
        assert not any(value in text for text in outputs), f"{value[:8]}... reached Slack or Jira"

    # --- sweep 4: the same state again: nothing twice ----------------------------------------
    count, keys_before = len(slack_messages(sb)), set(now_tickets)
    comments_before = sum(len(i.comments) for i in now_tickets.values())
    sweep(config_path)
    assert len(slack_messages(sb)) == count + 1  # the summary
    assert set(tickets(sb)) == keys_before
    assert sum(len(i.comments) for i in tickets(sb).values()) == comments_before


def _nhiscan(config_path: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("NHISCAN_CRASH_AT", None)
    if crash_at:
        env["NHISCAN_CRASH_AT"] = crash_at
    return subprocess.run([NHISCAN, *args, "-c", str(config_path)], cwd=config_path.parent,
                          capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.parametrize("crash_at", ["slack-after-post", "jira-after-create", "sweep-before-commit", "sweep-before-delivery"])
def test_a_crash_at_a_dangerous_moment_neither_repeats_nor_loses(env, crash_at):
    sb, config_path = env
    crashed = _nhiscan(config_path, "scan", "--now", NOW.isoformat(), crash_at=crash_at)
    assert crashed.returncode == 86, crashed.stdout + crashed.stderr
    # Run again as an operator would: the next scan (which delivers what is pending).
    again = _nhiscan(config_path, "scan", "--now", NOW.isoformat())
    assert again.returncode == 0, again.stdout + again.stderr
    msgs = slack_messages(sb)
    dms = Counter(w for w, _ in msgs if not w.startswith("#"))
    assert dms and all(n == 1 for n in dms.values()), f"a DM was repeated or lost: {dms}"
    labels = Counter(label for i in tickets(sb).values() for label in i.labels if label.startswith("nhi-"))
    assert labels and all(n == 1 for n in labels.values()), f"a ticket was duplicated: {labels}"
    store = Store(load_config(config_path).store_url)
    assert not store.outbox(), "something is still pending after the second run"
    # Exactly the critical findings got tickets: nothing lost either.
    crit = {r.fingerprint for r in store.findings() if r.severity == "critical"}
    assert set(labels) == {f"nhi-{fp}" for fp in crit}
