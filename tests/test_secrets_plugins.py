"""Our NHI plugins (detectors/secrets/plugins.py): true and false examples for each format.

Values are built from pieces at run time (seeded), so no credential-shaped
literal sits in this file. Each plugin is exercised directly (its
``analyze_line``, as detect-secrets calls it) and through ``scan_text`` (with
detect-secrets' filters), and the stock CLI loads the plugins file too.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys

import pytest

from detectors.secrets import EXTRA_PLUGINS_PATH, scan_text
from detectors.secrets import plugins as P
from detect_secrets.util.code_snippet import get_code_snippet

RNG = random.Random(20261124)


def chars(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def found(plugin_cls, line: str, context_lines: list[str] | None = None) -> set[str]:
    lines = context_lines or [line]
    index = lines.index(line) + 1
    secrets = plugin_cls().analyze_line(
        filename="x.py", line=line, line_number=index, context=get_code_snippet(lines, index)
    )
    return {s.secret_value for s in secrets}


GH_FINE = "github" + "_pat_" + chars(ALNUM, 22) + "_" + chars(ALNUM, 59)
SLACK_APP = "xa" + "pp-1-A" + chars(string.ascii_uppercase + string.digits, 10) + "-" + chars(string.digits, 13) + "-" + chars(HEX, 64)
SLACK_CONFIG = "xo" + "xe.xoxp-1-" + chars(ALNUM, 164)
SLACK_REFRESH = "xo" + "xe-1-" + chars(ALNUM, 146)
OKTA = "00" + chars(URLSAFE, 40)
ATLASSIAN = "ATATT3" + "xFfGF0" + chars(URLSAFE, 170) + "=" + chars("0123456789ABCDEF", 8)
ATLASSIAN_LEGACY = chars(ALNUM, 24)
ENTRA = chars(ALNUM, 3) + "8Q~" + chars(ALNUM + "_~.", 34)
GL_ROUTABLE = "gl" + "pat-" + chars(URLSAFE, 27) + ".01." + chars(string.ascii_lowercase + string.digits, 9)
GL_FFCT = "gl" + "ffct-" + chars(URLSAFE, 20)
PEM = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(chars(ALNUM + "+/", 64) for _ in range(6)) + "\\n-----END PRIVATE KEY-----\\n"

CASES = [
    # plugin, line that must report exactly `secret`, lines that must report nothing
    (
        P.GitHubFineGrainedTokenDetector,
        f'token = "{GH_FINE}"',
        GH_FINE,
        [f'token = "{GH_FINE[:-5]}"', f'token = "{GH_FINE}EXTRA"', 'doc = "tokens look like github_pat_..."'],
    ),
    (
        P.SlackAppTokenDetector,
        f"SLACK_APP_TOKEN={SLACK_APP}",
        SLACK_APP,
        ["SLACK_APP_TOKEN=xapp-1-", f"x = '{SLACK_APP.replace('xapp', 'xapq')}'"],
    ),
    (
        P.SlackConfigurationTokenDetector,
        f'config_token: "{SLACK_CONFIG}"',
        SLACK_CONFIG,
        [f'config_token: "{SLACK_CONFIG[:60]}"', "rotate xoxe tokens every 12 hours"],
    ),
    (
        P.SlackConfigurationTokenDetector,
        f"refresh={SLACK_REFRESH}",
        SLACK_REFRESH,
        [f"refresh={SLACK_REFRESH[:100]}"],
    ),
    (
        P.OktaApiTokenDetector,
        f'headers = {{"Authorization": "SSWS {OKTA}"}}',
        OKTA,
        [f'build_id = "{OKTA}"', 'headers = {"Authorization": "SSWS ${OKTA_TOKEN}"}'],
    ),
    (P.OktaApiTokenDetector, f"OKTA_API_TOKEN = '{OKTA}'", OKTA, [f"OKTA_API_TOKEN = '{OKTA[:30]}'"]),
    (
        P.AtlassianApiTokenDetector,
        f'JIRA_TOKEN="{ATLASSIAN}"',
        ATLASSIAN,
        [f'JIRA_TOKEN="{ATLASSIAN[:60]}"', 'note = "ATATT3 tokens replace passwords"'],
    ),
    (
        P.AtlassianApiTokenDetector,
        f'jira_api_token = "{ATLASSIAN_LEGACY}"',
        ATLASSIAN_LEGACY,
        [f'build_number = "{ATLASSIAN_LEGACY}"', f'jira_api_token = "{ATLASSIAN_LEGACY}XYZ"'],
    ),
    (
        P.EntraClientSecretDetector,
        f'AZURE_CLIENT_SECRET = "{ENTRA}"',
        ENTRA,
        ['AZURE_CLIENT_SECRET = "abc8Q~short"', f'x = "{ENTRA.replace("Q~", "Q-")}"'],
    ),
    (
        P.GitLabTokenExtendedDetector,
        f"GITLAB_TOKEN={GL_ROUTABLE}",
        GL_ROUTABLE,
        ["version = glpat-.01.abc", f"GITLAB_TOKEN={GL_ROUTABLE.split('.')[0]}"],
    ),
    (P.GitLabTokenExtendedDetector, f"UNLEASH_TOKEN='{GL_FFCT}'", GL_FFCT, ["UNLEASH_TOKEN='glffct-short'"]),
]


@pytest.mark.parametrize("plugin_cls,line,secret,negatives", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_plugin_reports_its_format_and_nothing_else(plugin_cls, line, secret, negatives):
    assert found(plugin_cls, line) == {secret}
    for negative in negatives:
        assert found(plugin_cls, negative) == set(), negative


def test_google_service_account_key_needs_a_service_account_file():
    key_file = json.dumps(
        {
            "type": "service_account",
            "project_id": "acme-prod",
            "private_key_id": chars(HEX, 40),
            "private_key": "@@",
            "client_email": "ci@acme-prod.iam.gserviceaccount.com",
        },
        indent=2,
    ).replace("@@", PEM)
    lines = key_file.splitlines()
    key_line = next(line for line in lines if '"private_key":' in line)
    assert found(P.GoogleServiceAccountKeyDetector, key_line, lines) == {PEM}

    # The same PEM in a JSON that is not a service account key: the plain
    # private-key plugin's business, not this one.
    other = [line.replace("service_account", "authorized_user").replace("gserviceaccount.com", "example.com") for line in lines]
    other_key_line = next(line for line in other if '"private_key":' in line)
    assert found(P.GoogleServiceAccountKeyDetector, other_key_line, other) == set()

    # A one-line key file carries its own marker.
    one_line = json.dumps({"type": "service_account", "private_key": "@@"}).replace("@@", PEM)
    assert found(P.GoogleServiceAccountKeyDetector, one_line) == {PEM}


def test_scan_text_types_and_filters():
    text = "\n".join(
        [
            f'GH = "{GH_FINE}"',
            f'OKTA = "SSWS {OKTA}"',
            f'ALLOWED = "{ENTRA}"  # pragma: allowlist secret',
            'TEMPLATE = "${SLACK_APP_TOKEN}"',
        ]
    )
    hits = scan_text(text, "settings.py")
    by_type = {hit.type: hit for hit in hits}
    assert by_type["GitHub Fine-Grained Token"].line_number == 1
    assert by_type["GitHub Fine-Grained Token"].secret == GH_FINE
    assert by_type["Okta API Token"].line_number == 2
    assert "Entra Client Secret" not in by_type  # the allowlist pragma is detect-secrets' filter
    # detect-secrets' own built-ins still run beside ours, and only ours are dropped when asked.
    assert not any(hit.type == "GitHub Fine-Grained Token" for hit in scan_text(text, "settings.py", extra_plugins=False))


def test_hit_repr_never_shows_the_secret():
    (hit,) = [h for h in scan_text(f'GH = "{GH_FINE}"', "a.py") if h.type == "GitHub Fine-Grained Token"]
    assert GH_FINE not in repr(hit)
    assert GH_FINE not in str(hit)


def test_stock_cli_loads_the_plugins_file(tmp_path):
    target = tmp_path / "leak.py"
    target.write_text(f'GH = "{GH_FINE}"\nSLACK = "{SLACK_APP}"\n')
    out = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--no-verify", "-p", EXTRA_PLUGINS_PATH, str(target)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    types = {item["type"] for items in json.loads(out.stdout)["results"].values() for item in items}
    assert {"GitHub Fine-Grained Token", "Slack App-Level Token"} <= types
