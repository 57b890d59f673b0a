"""Parity: the engine finds exactly what ``detect-secrets scan --all-files`` finds.

The corpus is built here from real files (a slice of the installed packages'
sources) plus planted secrets of every format, in every file type that takes
its own path through detect-secrets (raw lines, YAML and INI transformers, the
eager INI pass, filename filters, allowlist pragmas, non-ASCII text, CRLF).
The stock CLI runs with its default plugins and filters; ``--no-verify`` only
turns off calls to vendors' APIs (a third party, unreachable here, and when
unreachable the result is the same set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from detectors.secrets import EXTRA_PLUGINS_PATH, SecretScanner, iter_files, scan_text
from detectors.secrets.corpus import build_corpus

CORPUS_BYTES = 2_000_000


def cli_findings(cwd, *args: str) -> set[tuple[str, int, str, str]]:
    out = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify", *args],
        capture_output=True, text=True, check=True, cwd=cwd,
    )
    results = json.loads(out.stdout)["results"]
    return {
        (filename, item["line_number"], item["type"], item["hashed_secret"])
        for filename, items in results.items()
        for item in items
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return build_corpus(str(root), CORPUS_BYTES)


@pytest.fixture(scope="module")
def engine_hits(corpus):
    cwd = os.getcwd()
    os.chdir(corpus.root)
    try:
        with SecretScanner(workers=2, extra_plugins=False) as scanner:
            return scanner.scan_files(sorted(iter_files(".")))
    finally:
        os.chdir(cwd)


def test_corpus_is_real_and_planted(corpus):
    real = [f for f in corpus.files if f.startswith("real/")]
    assert len(real) > 100 and corpus.bytes > CORPUS_BYTES
    assert len({f.split(os.sep)[1] for f in real}) > 20  # many packages, not one


def test_engine_equals_detect_secrets_cli(corpus, engine_hits):
    expected = cli_findings(corpus.root, ".")
    got = {hit.key for hit in engine_hits}
    assert got == expected, {"only detect-secrets": sorted(expected - got)[:10], "only engine": sorted(got - expected)[:10]}

    # The comparison means something: every built-in format is in the set,
    # both from planted files and from the real ones.
    types = {key[2] for key in expected}
    for secret_type in (
        "AWS Access Key", "Azure Storage Account access key", "Artifactory Credentials", "Basic Auth Credentials",
        "Cloudant Credentials", "Discord Bot Token", "GitHub Token", "GitLab Token", "Base64 High Entropy String",
        "Hex High Entropy String", "IBM Cloud IAM Key", "IBM COS HMAC Credentials", "JSON Web Token",
        "Secret Keyword", "Mailchimp Access Key", "NPM tokens", "OpenAI Token", "Private Key", "PyPI Token",
        "SendGrid API Key", "Slack Token", "SoftLayer Credentials", "Square OAuth Secret", "Stripe Access Key",
        "Telegram Bot Token", "Twilio API Key",
    ):  # (not "Public IP": detect-secrets' is_not_alphanumeric_string filter drops every bare IPv4)
        assert secret_type in types, secret_type
    # Secrets planted amid real files are found there (one real file in twenty holds one).
    assert sum(key[0].startswith("real/") for key in expected) >= len([f for f in corpus.files if f.startswith("real/")]) // 40
    files = {key[0] for key in expected}
    # each detect-secrets path was taken: YAML and INI transformers, eager INI on .txt/.md, non-ASCII
    for planted in ("config.yaml", "app.ini", "deploy.env.txt", "notes.md", "unicode_ſecrets.py", "crlf.py"):
        assert os.path.join("planted", planted) in files, planted
    # ... and its filters: lock files, swagger, binary extensions are skipped
    for skipped in ("package-lock.json", "swagger.yaml", "logo.png"):
        assert os.path.join("planted", skipped) not in files


def test_extra_plugins_equal_the_cli_loading_the_same_file(corpus):
    planted = os.path.join(corpus.root, "planted")
    expected = cli_findings(planted, "-p", EXTRA_PLUGINS_PATH, ".")
    cwd = os.getcwd()
    os.chdir(planted)
    try:
        with SecretScanner(workers=0) as scanner:
            got = {hit.key for hit in scanner.scan_files(sorted(iter_files(".")))}
    finally:
        os.chdir(cwd)
    assert got == expected
    ours = {key[2] for key in got}
    for secret_type in (
        "GitHub Fine-Grained Token", "Slack App-Level Token", "Slack Configuration Token", "Okta API Token",
        "Atlassian API Token", "Entra Client Secret", "Google Service Account Key", "GitLab Token (extended)",
    ):
        assert secret_type in ours, secret_type


def test_text_scan_equals_file_scan(corpus, engine_hits):
    """Blobs and tickets are scanned from memory: the same text gives the same hits as the file."""
    planted = [f for f in corpus.files if f.startswith("planted/")]
    by_file = {}
    for hit in engine_hits:
        by_file.setdefault(hit.filename, set()).add(hit.key)
    for relative in planted:
        with open(os.path.join(corpus.root, relative), "rb") as handle:
            text = handle.read().decode("utf-8")
        got = {hit.key for hit in scan_text(text, relative, extra_plugins=False)}
        assert got == by_file.get(relative, set()), relative


def test_pool_and_in_process_agree(corpus, engine_hits):
    cwd = os.getcwd()
    os.chdir(corpus.root)
    try:
        files = sorted(f for f in iter_files(".") if f.startswith("planted"))
        with SecretScanner(workers=0, extra_plugins=False) as scanner:
            here = {hit.key for hit in scanner.scan_files(files)}
    finally:
        os.chdir(cwd)
    assert here == {hit.key for hit in engine_hits if hit.filename.startswith("planted")}
    assert here  # planted files do hold secrets


def test_texts_batch_keeps_order(corpus):
    items = [("a.py", 'password = "Tr0ub4dorXyz12"\n'), ("b.txt", "nothing here\n"), ("c.py", 'x = "' + "ab" * 3 + '"\n')]
    with SecretScanner(workers=2, batch_bytes=1) as scanner:
        results = scanner.scan_texts(items * 3)
    assert [len(r) for r in results] == [1, 0, 0] * 3
    assert results[0][0].filename == "a.py" and results[0][0].type == "Secret Keyword"
