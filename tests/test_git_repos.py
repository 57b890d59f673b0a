"""The git source: real git over HTTP against the sandbox's git http-backend, incremental by blob id.

Nothing of ours is mocked: the sandbox builds real repositories from the
estate, ``git`` clones and fetches them over HTTP with the source's token, and
the secret engine scans the blobs. Incrementality is checked on what git was
asked to read (the ledger's counts) and on the HTTP requests the host served.
"""

from __future__ import annotations

import os
import random
import string

import pytest

from detectors.secrets.exposures import aws_key_identity
from sandbox import Sandbox
from scanner.collectors import git_repos
from scanner.collectors.git_repos import BlobLedger, parse_raw_log, scan_repository, transform_exposures
from scanner.config import parse_config
from scanner.records import Exposure, keyed_hash

KEY = b"k" * 32
RNG = random.Random(99)
AWS_ID = "AK" + "IA" + "".join(RNG.choice(string.ascii_uppercase + string.digits) for _ in range(16))
GH_TOKEN = "gh" + "p_" + "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(36))
PASSWORD = "Zq8" + "".join(RNG.choice(string.ascii_letters) for _ in range(12))
READER = "sandbox-git-reader-" + "x" * 12


def estate() -> dict:
    return {
        "now": "2026-11-01T00:00:00Z",
        "git": {
            "tokens": [{"token": READER, "repos": ["acme/*"]}, {"token": "sandbox-git-other", "repos": ["other/*"]}],
            "repos": [
                {
                    "path": "acme/api",
                    "commits": [
                        {"message": "initial", "date": "-300d", "author": "Alice <alice@acme.example>",
                         "files": {"README.md": "# api\n", "app/settings.py": f'AWS_KEY = "{AWS_ID}"\nDEBUG = True\n'}},
                        {"message": "move the key to the environment", "date": "-200d",
                         "files": {"app/settings.py": "import os\nAWS_KEY = os.environ['AWS_KEY']\n"}},
                        {"message": "ci", "date": "-100d", "branch": "ci",
                         "files": {"deploy/ci.yaml": f"env:\n  GITHUB_TOKEN: {GH_TOKEN}\n"}},
                    ],
                },
                {
                    "path": "acme/web",
                    "commits": [{"message": "config", "date": "-50d",
                                 "files": {"config.py": f'password = "{PASSWORD}"\n', "copy_of_api_settings.py":
                                           f'AWS_KEY = "{AWS_ID}"\nDEBUG = True\n'}}],
                },
            ],
        },
    }


def make_config(tmp_path, base_url: str, repos: list[str], *, history: bool = True, token_env: str | None = "GIT_TOKEN"):
    source = {"name": "git", "base_url": base_url, "repos": repos, "history": history, "workers": 0,
              "state_dir": str(tmp_path / "state")}
    if token_env:
        source["token_env"] = token_env
    return parse_config({"sources": {"git_repos": [source]}}, origin="test", base_dir=tmp_path)


@pytest.fixture()
def sandbox():
    with Sandbox(estate()) as sb:
        yield sb


def collect(config):
    return git_repos.collect(config.sources.git_repos[0], config, hmac_key=KEY)


def test_full_history_every_branch_and_the_exposure_records(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TOKEN", READER)
    config = make_config(tmp_path, sandbox.root_url("git"), ["acme/api", "acme/web"])
    result = collect(config)

    assert [c.ok for c in result.coverage] == [True, True], result.coverage
    exposures = [r for r in result.records if isinstance(r, Exposure)]
    by_type = {}
    for e in exposures:
        by_type.setdefault((e.location.split("@")[0].removeprefix("git:"), e.secret_type), []).append(e)
    # The AWS key was removed 200 days ago: history still has it, at the commit that added it.
    (aws,) = by_type[("acme/api", "AWS Access Key")]
    assert aws.location.endswith(":app/settings.py:1")
    assert aws.secret_hmac == keyed_hash(KEY, AWS_ID)
    assert aws.preview == AWS_ID[:4] + "****"
    assert aws_key_identity(AWS_ID) in aws.identities
    assert aws.inventory == "git:acme/api:history"
    # A token only on a side branch is found too, with its last eight characters hashed for linking.
    (gh,) = by_type[("acme/api", "GitHub Token")]
    assert gh.location.startswith("git:acme/api@") and gh.location.split(":")[2] == "deploy/ci.yaml"
    assert f"last_eight_hmac:{keyed_hash(KEY, GH_TOKEN[-8:])}" in gh.identities
    # The same blob in another repository is reported there too (read once: see the next test).
    assert ("acme/web", "AWS Access Key") in by_type
    assert ("acme/web", "Secret Keyword") in by_type
    # Never a value: not in any record, nor in the ledger on disk.
    for record in result.records:
        text = repr(record.to_dict())
        for value in (AWS_ID[4:], GH_TOKEN, PASSWORD):
            assert value not in text
    ledger_text = (tmp_path / "state" / "git" / "ledger.json").read_text()
    for value in (AWS_ID[4:], GH_TOKEN, PASSWORD, READER):
        assert value not in ledger_text
    # The mirror's config holds no credential either.
    mirror_config = (tmp_path / "state" / "git" / "mirrors" / "acme" / "api.git" / "config").read_text()
    assert READER not in mirror_config


def test_rescan_reads_nothing_and_a_new_commit_costs_its_new_blobs(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TOKEN", READER)
    config = make_config(tmp_path, sandbox.root_url("git"), ["acme/api", "acme/web"])
    first = collect(config)
    ledger = BlobLedger.load(str(tmp_path / "state" / "git" / "ledger.json"), hmac_key=KEY, rules=git_repos.rules_version())
    mirror = str(tmp_path / "state" / "git" / "mirrors" / "acme" / "api.git")

    # An unchanged repository: no blob is listed or read.
    again = scan_repository(mirror, ledger, name="acme/api", hmac_key=KEY, workers=0)
    assert (again.changed, again.blobs_new, again.blobs_scanned) == (False, 0, 0)
    second = collect(config)
    assert {r.key for r in second.records} == {r.key for r in first.records}

    # One new commit with one new file: exactly that blob is read.
    sandbox.apps["git"].commit("acme/api", {"notes.txt": "nothing secret here\n"}, "notes")
    git_repos.get_mirror(f"{sandbox.root_url('git')}/acme/api.git", mirror,
                         env=git_repos.git_env(READER, "x-access-token"), timeout=60)
    after = scan_repository(mirror, ledger, name="acme/api", hmac_key=KEY, workers=0)
    assert (after.changed, after.blobs_new, after.blobs_scanned) == (True, 1, 1)

    # A commit that brings back an old content (a revert) reads nothing: its blob is known.
    sandbox.apps["git"].commit("acme/api", {"app/settings.py": f'AWS_KEY = "{AWS_ID}"\nDEBUG = True\n'}, "revert")
    git_repos.get_mirror(f"{sandbox.root_url('git')}/acme/api.git", mirror,
                         env=git_repos.git_env(READER, "x-access-token"), timeout=60)
    reverted = scan_repository(mirror, ledger, name="acme/api", hmac_key=KEY, workers=0)
    assert (reverted.blobs_new, reverted.blobs_scanned) == (1, 0)


def test_default_branch_tip_only(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TOKEN", READER)
    result = collect(make_config(tmp_path, sandbox.root_url("git"), ["acme/api"], history=False))
    assert result.coverage[0].ok and result.coverage[0].inventory == "git:acme/api:head"
    # The key was removed from the tip, and the CI token lives on another branch: nothing at the tip.
    assert [r for r in result.records if isinstance(r, Exposure)] == []


@pytest.mark.parametrize(
    "token,repo,reason",
    [
        (None, "acme/api", "authentication failed"),
        ("not-a-token", "acme/api", "authentication failed"),
        ("sandbox-git-other", "acme/api", "repository not found"),
        (READER, "acme/missing", "repository not found"),
    ],
)
def test_failures_are_coverage_gaps_with_reasons(sandbox, tmp_path, monkeypatch, token, repo, reason):
    if token:
        monkeypatch.setenv("GIT_TOKEN", token)
    config = make_config(tmp_path, sandbox.root_url("git"), [repo, "acme/web"] if token == READER else [repo],
                         token_env="GIT_TOKEN" if token else None)
    result = collect(config)
    gap = result.coverage[0]
    assert not gap.ok and reason in gap.reason, gap.reason
    assert token is None or token not in gap.reason
    if token == READER:
        assert result.coverage[1].ok  # one missing repository does not stop the others


def test_missing_token_variable_is_a_gap(tmp_path, monkeypatch):
    monkeypatch.delenv("GIT_TOKEN", raising=False)
    result = collect(make_config(tmp_path, "http://127.0.0.1:9", ["acme/api"]))
    assert not result.coverage[0].ok and "GIT_TOKEN" in result.coverage[0].reason


def test_parse_raw_log_and_transform_are_pure():
    text = ("\x00c1\n\n:000000 100644 0000 b1 A\tsrc/a.py\n:000000 120000 0000 l1 A\tlink\n"
            "\x00c2\n\n:100644 100644 b1 b2 M\tsrc/a.py\n:100644 000000 b2 0000 D\tgone.py\n"
            ':000000 160000 0000 s1 A\tsub\n:000000 100644 0000 b3 A\t"odd\\tname.py"\n')
    assert list(parse_raw_log(text)) == [("b1", "c1", "src/a.py"), ("b2", "c2", "src/a.py"), ("b3", "c2", "odd\tname.py")]
    records = transform_exposures("git", "acme/api", "git:acme/api:history", {"b2": ["c2" * 20, "src/a.py"]},
                                  {"b2": [["Secret Keyword", 3, "h" * 64, "abcd****", []]]})
    (record,) = records
    assert record.location == f"git:acme/api@{'c2' * 20}:src/a.py:3" and record.key.startswith("git:exposure:acme/api:src/a.py@")
    assert record.inventory == "git:acme/api:history"


def test_push_is_refused(sandbox, tmp_path):
    import subprocess

    work = tmp_path / "w"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **git_repos.git_env(READER, "x-access-token")}
    url = f"{sandbox.root_url('git')}/acme/api.git"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, env=env)
    (work / "x.txt").write_text("x\n")
    subprocess.run(["git", "-C", str(work), "add", "x.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True, env=env)
    push = subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD"], env=env, capture_output=True, text=True)
    assert push.returncode != 0 and "403" in push.stderr


def test_locations_are_what_the_reports_parse():
    from reports.machine import parse_location

    (record,) = transform_exposures("git", "acme/api", "git:acme/api:history", {"b": ["ab" * 20, "config/app settings.py"]},
                                    {"b": [["GitHub Token", 7, "h" * 64, "ghp_****", []]]})
    where = parse_location(record.location)
    assert (where.source, where.repository, where.commit, where.path, where.line) == \
        ("git", "acme/api", "ab" * 20, "config/app settings.py", 7)
