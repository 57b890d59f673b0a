"""Remediation tickets through the real jira client against the sandbox's Jira, Server/DC and Cloud.

Planning is unit-tested elsewhere; here the outbox rows a sweep would write are delivered, and
the ticket lifecycle is checked in the emulator: create once, stay quiet while open, comment and
close on resolution, reopen (or open a linked ticket) on regression — and after an interrupted
create, Cloud's lagging search is waited out instead of filing a duplicate.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reports import jira_tickets
from sandbox import Sandbox
from scanner.config import parse_config
from scanner.store import OutboxRow, Store, TicketRow
from sqlmodel import select

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
TOKEN = "jira-ticket-test-token-0001"


def estate(deployment: str, search_lag: int = 0) -> dict:
    user = {"email": "secops@acme.example", "name": "secops"} if deployment == "server" else {"email": "secops@acme.example"}
    owner = {"email": "alice@acme.example", "name": "alice"} if deployment == "server" else {"email": "alice@acme.example"}
    return {"jira": {
        "deployment": deployment, "search_lag": search_lag,
        "users": [user, owner],
        "api_tokens": [{"owner": "secops@acme.example", "label": "nhiscan", "token": TOKEN}],
        "projects": [{"key": "SEC", "issue_types": ["Task"], "statuses": ["To Do", "In Progress", "Done"]}],
    }}


def finding(fp: str, change: str = "new", severity: str = "critical") -> dict:
    return {
        "fingerprint": fp, "rule_id": "contract-ended", "title": "Contract ended, access still active", "severity": severity,
        "owasp": "NHI1", "nist": "PR.AA-05", "why": "Contract C-100 with Globex ended.", "evidence": ["name matches globex-*"],
        "subject": {"key": f"github:deploy_key:acme/api/{fp}", "name": f"globex-{fp} {{code}}*x*", "type": "deploy_key", "source": "github"},
        "owners": [{"email": "alice@acme.example", "known": True, "status": "active", "role": "creator", "account": None,
                    "evidence": ["deploy key added_by (GitHub API): alice"]}],
        "sponsors": [], "reach": [{"name": "acme/api"}], "remediation": "Remove the key.", "change": change,
    }


@pytest.fixture(params=["server", "cloud"])
def desk(request, tmp_path):
    flavour = request.param
    with Sandbox(estate(flavour, search_lag=3 if flavour == "cloud" else 0), now=NOW) as sb:
        (tmp_path / "token").write_text(TOKEN)
        user = "secops" if flavour == "server" else "secops@acme.example"
        config = parse_config({"store": {"url": f"sqlite:///{tmp_path}/s.db"}, "notify": {"jira": {
            "base_url": sb.url("jira"), "user": user, "token_file": "token", "project": "SEC", "min_severity": "high",
            "reopen_transition": "To Do", "search_wait_seconds": 5}}}, base_dir=tmp_path)
        yield sb.apps["jira"], config, Store(config.store_url)


def queue(store: Store, config, sweep_id: int, findings: list[dict]) -> None:
    rows = jira_tickets.plan(findings, sweep_id, config.notify.jira)
    snap = store.build_snapshot([])
    sid = store.begin_sweep(NOW)
    store.commit_sweep(sid, snap, [], {}, rows)


def ours(emu):
    return [i for i in emu.issues if "nhiscan" in i.labels]


def test_ticket_lifecycle(desk):
    emu, config, store = desk
    queue(store, config, 1, [finding("aaa"), finding("bbb")])
    assert jira_tickets.deliver(config, store) == {"created": 2}
    issues = {next(l for l in i.labels if l.startswith("nhi-")): i for i in ours(emu)}
    assert set(issues) == {"nhi-aaa", "nhi-bbb"}
    a = issues["nhi-aaa"]
    assert a.status == "To Do" and "{code}" not in a.description and "\\{code\\}" in a.description
    assert a.assignee_user is not None and a.assignee_user.email == "alice@acme.example"
    # Delivering again (nothing pending) and a still-open finding change nothing.
    assert jira_tickets.deliver(config, store) == {}
    queue(store, config, 2, [finding("aaa", change="open"), finding("bbb", change="open")])
    assert len(ours(emu)) == 2 and not a.comments

    # Resolved: a comment, then the done transition.
    queue(store, config, 3, [finding("aaa", change="resolved"), finding("bbb", change="open")])
    assert jira_tickets.deliver(config, store) == {"resolved": 1}
    assert emu.issue(a.key).status == "Done" and "no longer sees this" in emu.issue(a.key).comments[-1].body
    # Regressed: the same ticket is reopened, with the evidence again.
    queue(store, config, 4, [finding("aaa", change="regressed"), finding("bbb", change="open")])
    assert jira_tickets.deliver(config, store) == {"reopened": 1}
    assert emu.issue(a.key).status == "To Do" and len(ours(emu)) == 2


def test_regression_opens_a_linked_ticket_when_reopening_is_off(desk):
    emu, config, store = desk
    config = config.model_copy(update={"notify": config.notify.model_copy(update={
        "jira": config.notify.jira.model_copy(update={"reopen_transition": None})})})
    queue(store, config, 1, [finding("ccc")])
    jira_tickets.deliver(config, store)
    queue(store, config, 2, [finding("ccc", change="resolved")])
    jira_tickets.deliver(config, store)
    queue(store, config, 3, [finding("ccc", change="regressed")])
    assert jira_tickets.deliver(config, store) == {"created": 1}
    old, new = sorted(ours(emu), key=lambda i: i.number)
    assert old.status == "Done" and new.status == "To Do"
    assert store.ticket("nhi-ccc").issue_key == new.key


def test_interrupted_create_is_found_not_duplicated(desk):
    """The crash window: the issue exists in Jira, the outbox says 'sending', the local map is empty."""
    emu, config, store = desk
    queue(store, config, 1, [finding("ddd")])
    jira_tickets.deliver(config, store)
    (issue,) = ours(emu)
    # Recreate the state a crash between "created" and "recorded" leaves behind.
    with store.session() as s:
        s.delete(s.get(TicketRow, "nhi-ddd"))
        row = s.exec(select(OutboxRow)).one()
        row.state = "sending"
        s.add(row)
        s.commit()
    if emu.state.search_lag:
        with emu.mutate():
            emu.issue(issue.key).hidden_searches = emu.state.search_lag  # just created, as far as search knows
    assert jira_tickets.deliver(config, store) == {"already open": 1}
    assert len(ours(emu)) == 1
    assert store.ticket("nhi-ddd").issue_key == issue.key
