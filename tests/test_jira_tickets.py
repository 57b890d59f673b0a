"""Tickets as a source of leaks: the real ``jira`` client against the sandbox's Jira, incrementally by updated time."""

from __future__ import annotations

import random
import string

import pytest
from jira import JIRA

from sandbox import Sandbox
from scanner.collectors import jira_tickets
from scanner.collectors.jira_tickets import adf_text, issue_texts, parse_jira_time, search_jql
from scanner.config import parse_config
from scanner.records import Exposure, keyed_hash

KEY = b"t" * 32
RNG = random.Random(7)
AWS_ID = "AK" + "IA" + "".join(RNG.choice(string.ascii_uppercase + string.digits) for _ in range(16))
SLACK = "xo" + "xb-" + "".join(RNG.choice(string.digits) for _ in range(11)) + "-" + "".join(RNG.choice(string.digits) for _ in range(12)) \
    + "-" + "".join(RNG.choice(string.ascii_lowercase + string.digits) for _ in range(24))
TOKEN = "jira-scanner-token-0001"
USER = "secops@acme.example"


def estate(deployment: str) -> dict:
    people = [{"email": USER, "display_name": "Security Operations", "name": "secops"},
              {"email": "eve@acme.example", "display_name": "Eve", "name": "eve"}]
    return {
        "now": "2026-11-01T00:00:00Z",
        "jira": {
            "deployment": deployment,
            "users": people,
            "api_tokens": [{"owner": USER if deployment == "cloud" else "secops", "label": "scanner", "token": TOKEN}],
            "projects": [{"key": "OPS"}, {"key": "SEC"}],
            "issues": [
                {"key": "OPS-1", "summary": "staging is down", "created": "-20d", "updated": "-10d",
                 "description": f"Deploy fails. The key in use is {AWS_ID} (from the old vault).",
                 "comments": [{"body": f"try this one: {SLACK}", "author": "eve@acme.example" if deployment == "cloud" else "eve",
                               "created": "-10d"}]},
                {"key": "OPS-2", "summary": "nothing to see", "created": "-5d", "description": "Rotate logs weekly."},
                {"key": "SEC-1", "summary": "out of scope", "created": "-5d", "description": f"old key {AWS_ID}"},
            ],
        },
    }


def config(tmp_path, url: str, *, jql: str = "project = OPS", token_env: str = "JIRA_TOKEN"):
    source = {"name": "tickets", "base_url": url, "user": USER if "cloud" in str(tmp_path) else "secops",
              "token_env": token_env, "jql": jql, "workers": 0, "state_dir": str(tmp_path / "state"), "max_retries": 0}
    return parse_config({"sources": {"jira_tickets": [source]}}, origin="test", base_dir=tmp_path)


def collect(cfg, messages=None):
    return jira_tickets.collect(cfg.sources.jira_tickets[0], cfg, hmac_key=KEY,
                                progress=(messages.append if messages is not None else None))


@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_descriptions_and_comments_incrementally(tmp_path_factory, monkeypatch, deployment):
    tmp_path = tmp_path_factory.mktemp(deployment)
    monkeypatch.setenv("JIRA_TOKEN", TOKEN)
    with Sandbox(estate(deployment)) as sb:
        url = sb.url("jira")
        cfg = config(tmp_path, url)
        messages: list[str] = []
        first = collect(cfg, messages)
        assert [c.ok for c in first.coverage] == [True], first.coverage
        found = {(e.location.rsplit(":", 1)[0], e.secret_type): e for e in first.records if isinstance(e, Exposure)}
        aws = found[("tickets:OPS-1:description", "AWS Access Key")]
        assert aws.secret_hmac == keyed_hash(KEY, AWS_ID) and aws.preview == AWS_ID[:4] + "****"
        comment = next(e for (where, kind), e in found.items() if where.startswith("tickets:OPS-1:comment-") and kind == "Slack Token")
        assert comment.secret_hmac == keyed_hash(KEY, SLACK)
        assert not any("SEC-1" in e.location for e in found.values())  # the JQL limits the scope
        assert messages[-1].startswith("2 issues updated, 2 scanned")
        for record in first.records:
            assert AWS_ID[4:] not in repr(record.to_dict()) and SLACK not in repr(record.to_dict())

        # Nothing changed: the issues come back (the overlap window) but none is scanned again.
        messages.clear()
        second = collect(cfg, messages)
        assert "0 scanned" in messages[-1]
        assert {r.key for r in second.records} == {r.key for r in first.records}

        # A new comment on OPS-2 with a secret: only OPS-2 is scanned, and the leak appears.
        client = JIRA(server=url, basic_auth=(USER if deployment == "cloud" else "secops", TOKEN),
                      options={"check_update": False}, max_retries=0)
        client.add_comment("OPS-2", f'for the record: password = "Zq8{"k" * 12}"')
        messages.clear()
        third = collect(cfg, messages)
        assert "1 scanned" in messages[-1], messages
        assert any(e.location.startswith("tickets:OPS-2:comment-") for e in third.records if isinstance(e, Exposure))
        assert len(third.records) == len(first.records) + 1


def test_bad_token_is_a_gap(tmp_path, monkeypatch):
    monkeypatch.setenv("JIRA_TOKEN", "wrong-token")
    with Sandbox(estate("cloud")) as sb:
        result = collect(config(tmp_path / "cloud", sb.url("jira")))
    (gap,) = result.coverage
    assert not gap.ok and "401" in gap.reason and "wrong-token" not in gap.reason


def test_pure_parts():
    adf = {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"},
                                                                         {"type": "text", "text": "b"}]},
                                      {"type": "codeBlock", "content": [{"type": "text", "text": "c = 1"}]}]}
    assert adf_text(adf) == "a\nb\nc = 1\n" and adf_text("plain") == "plain" and adf_text(None) == ""
    assert parse_jira_time("2026-11-01T12:00:00.000+0100").isoformat() == "2026-11-01T11:00:00+00:00"
    assert parse_jira_time("not a time") is None
    issue = {"key": "X-1", "fields": {"description": "d", "comment": {"comments": [{"id": "7", "body": "c"}, {"body": "no id"}]}}}
    assert issue_texts(issue) == [("description", "d"), ("comment-7", "c")]
    assert search_jql("project = OPS", None, 10) == "(project = OPS) ORDER BY updated ASC"
    assert search_jql("", "2026-11-01T12:30:00+00:00", 10) == 'updated >= "2026/11/01 12:20" ORDER BY updated ASC'
    assert search_jql("", None, 10).startswith('updated >= "1970/01/01')
