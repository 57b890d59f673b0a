"""Planning notifications (pure): who hears about what, why, and with tenant text made inert."""

from __future__ import annotations

from reports import jira_tickets, slack_alerts
from scanner.config import JiraTicketsConfig, SlackNotifyConfig

SLACK = SlackNotifyConfig(token_env="T", fallback_channel="#nhi-triage", security_channel="#sec", min_severity="medium")
JIRA = JiraTicketsConfig(base_url="http://j", user="u", token_env="T", project="SEC", min_severity="high")


def finding(fp="f1", change="new", severity="high", owners=(), sponsors=(), name="legacy-backup", subject="github:deploy_key:acme/api/1"):
    return {
        "fingerprint": fp, "rule_id": "dormant", "title": "Dormant NHI still valid", "severity": severity, "owasp": "NHI1", "nist": "PR.AA-05",
        "subject": {"key": subject, "name": name, "type": "deploy_key", "source": "github"},
        "why": "unused for 200 days", "evidence": ["last used: 2026-04-01"], "owners": list(owners), "sponsors": list(sponsors),
        "reach": [{"name": "acme/api"}], "reach_total": 1, "remediation": "Revoke it.", "change": change,
    }


def owner(email, status="active", known=True, manager=None, role="creator"):
    return {"email": email, "status": status, "known": known, "manager": manager, "role": role, "evidence": ["deploy key added_by (GitHub API): x"]}


def sponsor(email, status="active", known=True, manager=None, contract="C-1"):
    return {"email": email, "status": status, "known": known, "manager": manager, "contract": contract}


def test_route_prefers_current_owner_then_sponsor_then_manager_then_fallback():
    assert slack_alerts.route(finding(owners=[owner("alice@acme.example")]))[0] == "user:alice@acme.example"
    target, why = slack_alerts.route(finding(owners=[owner("eve@acme.example", status="departed", manager="bob@acme.example")],
                                             sponsors=[sponsor("carol@acme.example")]))
    assert target == "user:carol@acme.example" and "you sponsor contract C-1" in why
    target, why = slack_alerts.route(finding(owners=[owner("eve@acme.example", status="departed", manager="bob@acme.example")]))
    assert target == "user:bob@acme.example" and "eve@acme.example" in why and "has left" in why
    # An email no people source knows is not an accountable person.
    assert slack_alerts.route(finding(owners=[owner("dev@globex.example", known=False, status="unknown")]))[0] == "fallback"


def test_one_digest_per_recipient_only_for_alerting_changes_above_the_threshold():
    fs = [
        finding("a", owners=[owner("alice@acme.example")]),
        finding("b", change="regressed", owners=[owner("alice@acme.example")]),
        finding("c", change="open", owners=[owner("alice@acme.example")]),       # already told
        finding("d", change="accepted", owners=[owner("alice@acme.example")]),   # accepted: not alerted
        finding("e", severity="low", owners=[owner("alice@acme.example")]),      # below min_severity
        finding("f"),                                                             # nobody: fallback channel
    ]
    rows = slack_alerts.plan(fs, 7, {"open_by_severity": {"high": 3}, "changes": {"new": 3}, "coverage": {}}, SLACK)
    by_target = {r.target: r for r in rows}
    assert set(by_target) == {"user:alice@acme.example", "channel:#nhi-triage", "channel:#sec"}
    assert by_target["user:alice@acme.example"].payload["fingerprints"] == ["a", "b"]
    assert "(back again)" in by_target["user:alice@acme.example"].payload["text"]
    assert by_target["channel:#sec"].kind == "summary"
    # Keys are per sweep and target: re-planning the same sweep cannot queue a second message.
    assert {r.dedupe_key for r in rows} == {"slack:digest:7:user:alice@acme.example", "slack:digest:7:channel:#nhi-triage", "slack:summary:7"}


def test_tenant_text_cannot_ping_or_link_in_slack():
    hostile = "<!channel> <https://evil.example|click> & <@U123>"
    (row, _summary) = slack_alerts.plan([finding(name=hostile, owners=[owner("alice@acme.example")])], 1, {}, SLACK)
    text = row.payload["text"]
    assert "<!channel>" not in text and "<https://" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt;" in text


def test_jira_plan_opens_alerting_and_resolves_when_all_gone():
    rows = jira_tickets.plan([finding("a"), finding("b", change="open"), finding("c", change="resolved"),
                              finding("d", severity="medium")], 3, JIRA)
    assert [(r.kind, r.target) for r in rows] == [("open", "nhi-a"), ("resolve", "nhi-c")]
    assert rows[0].dedupe_key == "jira:open:3:nhi-a"


def test_jira_per_subject_waits_until_every_finding_of_the_subject_is_resolved():
    cfg = JIRA.model_copy(update={"per": "subject"})
    both = [finding("a", change="resolved"), finding("b", change="open")]
    assert jira_tickets.plan(both, 4, cfg) == []
    rows = jira_tickets.plan([finding("a", change="resolved"), finding("b", change="resolved")], 5, cfg)
    assert [r.kind for r in rows] == ["resolve"] and rows[0].target.startswith("nhi-s-")


def test_jira_description_escapes_markup():
    text = jira_tickets.description([finding(name="{code}x[link|http://evil]*b*")])
    assert "{code}" not in text and "[link|" not in text
    assert "\\{code\\}" in text
