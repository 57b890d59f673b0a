"""Opt-in liveness: a leaked token is tried against the configured source's own API, and nowhere else."""

from __future__ import annotations

import random
import string

from detectors.rules import evaluate
from detectors.secrets.liveness import check_live
from graph.build import build_graph
from sandbox import Sandbox
from scanner.collectors import git_repos
from scanner.config import parse_config
from scanner.records import Exposure

RNG = random.Random(5)
KEY = b"l" * 32


def token() -> str:
    return "gh" + "p_" + "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(36))


LIVE, DEAD = token(), token()
READER = "sandbox-git-reader-live"


def estate() -> dict:
    return {
        "now": "2026-11-01T00:00:00Z",
        "github": {"tokens": [{"token": LIVE, "login": "ci-bot"}]},
        "git": {
            "tokens": [{"token": READER}],
            "repos": [{"path": "acme/ops", "commits": [{"message": "oops", "files": {
                "deploy.sh": f"export GH_TOKEN={LIVE}\n", "old.sh": f"export GH_TOKEN={DEAD}\n"}}]}],
        },
    }


def config(tmp_path, sb, *, verify: bool, with_github: bool = True):
    sources = {"git_repos": [{"name": "git", "base_url": sb.root_url("git"), "repos": ["acme/ops"], "token_env": "GIT_TOKEN",
                              "workers": 0, "state_dir": str(tmp_path / "state"), "verify_live": verify}]}
    if with_github:
        sources["github"] = [{"name": "gh", "base_url": sb.github_url, "orgs": ["acme"], "token_env": "GITHUB_TOKEN"}]
    return parse_config({"sources": sources}, origin="test", base_dir=tmp_path)


def exposures_of(cfg):
    result = git_repos.collect(cfg.sources.git_repos[0], cfg, hmac_key=KEY)
    assert all(c.ok for c in result.coverage), result.coverage
    return {e.location.split(":")[2]: e for e in result.records if isinstance(e, Exposure) and e.secret_type == "GitHub Token"}


def test_live_and_dead_tokens_are_told_apart_by_the_configured_github(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TOKEN", READER)
    with Sandbox(estate()) as sb:
        found = exposures_of(config(tmp_path, sb, verify=True))
        assert (found["deploy.sh"].live, found["deploy.sh"].verified_by) == (True, "gh")
        assert (found["old.sh"].live, found["old.sh"].verified_by) == (False, "gh")
        calls = [e for e in sb.request_log if e["vendor"] == "github"]
        assert {e["path"] for e in calls} == {"/user"} and len(calls) == 2  # GET /user, once per leaked token
        findings = {f["subject"]["key"]: f for f in evaluate(build_graph(list(found.values())), sb.estate.now)
                    if f["rule_id"] == "secret-exposed"}
        assert findings[found["deploy.sh"].key]["severity"] == "critical"
        assert "accepted it" in findings[found["deploy.sh"].key]["why"]
        assert findings[found["old.sh"].key]["severity"] == "low"


def test_off_by_default_and_never_a_third_party(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TOKEN", READER)
    with Sandbox(estate()) as sb:
        found = exposures_of(config(tmp_path / "off", sb, verify=False))
        assert {e.live for e in found.values()} == {None}
        # Opted in, but no GitHub source configured: nothing to ask, so nothing is sent anywhere.
        found = exposures_of(config(tmp_path / "nogh", sb, verify=True, with_github=False))
        assert {e.live for e in found.values()} == {None}
        assert not [e for e in sb.request_log if e["vendor"] == "github"]


def test_check_live_ignores_formats_without_a_source_kind():
    assert check_live("AWS Access Key", "AKIA" + "A" * 16, None).live is None
    assert check_live("Secret Keyword", "hunter2", object()).live is None
