"""NHI credential formats detect-secrets 1.5 does not know, as detect-secrets plugins.

Each class is a plain detect-secrets plugin (``RegexBasedDetector`` style), so
the stock CLI can load this file too::

    detect-secrets scan --all-files -p detectors/secrets/plugins.py .

and our engine loads it through the same custom-plugin mechanism (a ``path``
entry in detect-secrets' settings), so both run the same class objects.

Keep this file self-contained: detect-secrets imports it as a loose file
(``import_file_as_module``), and every class in it that subclasses
``BasePlugin`` becomes a plugin. Import only the base classes here.

``prefilter`` is our addition to the plugin contract: a compiled pattern that
every line the plugin can report on must contain. The engine searches it over
the whole file once and runs the plugin only on the lines it hits;
detect-secrets ignores the attribute.
"""

from __future__ import annotations

import re
from typing import Any, Set

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.plugins.base import RegexBasedDetector


class GitHubFineGrainedTokenDetector(RegexBasedDetector):
    """GitHub fine-grained personal access tokens (``github_pat_`` + 82 characters)."""

    secret_type = "GitHub Fine-Grained Token"
    prefilter = re.compile(r"github_pat_")
    denylist = [
        re.compile(r"(?<![A-Za-z0-9_])(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])"),
    ]


class SlackAppTokenDetector(RegexBasedDetector):
    """Slack app-level tokens (Socket Mode, ``connections:write``): ``xapp-1-A...-<digits>-<hex>``."""

    secret_type = "Slack App-Level Token"
    prefilter = re.compile(r"xapp-", re.IGNORECASE)
    denylist = [
        re.compile(r"(xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]{32,})(?![A-Za-z0-9])", re.IGNORECASE),
    ]


class SlackConfigurationTokenDetector(RegexBasedDetector):
    """Slack app configuration tokens (``xoxe.xoxp-1-...``) and their refresh tokens (``xoxe-1-...``).

    detect-secrets' Slack plugin sees only the ``xoxp-1-...`` tail of an access
    token (a different value, so a different hash) and misses refresh tokens.
    """

    secret_type = "Slack Configuration Token"
    prefilter = re.compile(r"xoxe", re.IGNORECASE)
    denylist = [
        re.compile(r"(xoxe\.xox[bp]-\d-[A-Za-z0-9]{163,166})(?![A-Za-z0-9])"),
        re.compile(r"(?<![.A-Za-z0-9])(xoxe-\d-[A-Za-z0-9]{146})(?![A-Za-z0-9])"),
    ]


class OktaApiTokenDetector(RegexBasedDetector):
    """Okta API tokens: 42 characters starting with ``00``, next to ``SSWS`` or an okta-named key.

    The format alone is too common to report, so the token must be the value
    of the ``SSWS`` authorization scheme or of a key whose name says okta.
    """

    secret_type = "Okta API Token"
    prefilter = re.compile(r"ssws|okta", re.IGNORECASE)
    denylist = [
        re.compile(r"SSWS\s+(00[A-Za-z0-9_-]{40})(?![A-Za-z0-9_-])"),
        re.compile(
            r"okta[\w.-]{0,30}?['\"\]]{0,2}\s*(?:=|:|=>|:=)\s*['\"]?(00[A-Za-z0-9_-]{40})(?![A-Za-z0-9_-])",
            re.IGNORECASE,
        ),
    ]


class AtlassianApiTokenDetector(RegexBasedDetector):
    """Atlassian (Jira, Confluence) API tokens: ``ATATT3`` tokens, and legacy 24-character ones by name."""

    secret_type = "Atlassian API Token"
    prefilter = re.compile(r"ATATT3|atlassian|jira|confluence", re.IGNORECASE)
    denylist = [
        re.compile(r"(?<![A-Za-z0-9_=-])(ATATT3[A-Za-z0-9_\-=]{150,250})(?![A-Za-z0-9_\-=])"),
        re.compile(
            r"(?:atlassian|jira|confluence)[\w.-]{0,20}?(?:token|api_?key|secret|password|pwd)['\"\]]{0,2}"
            r"\s*(?:=|:|=>|:=)\s*['\"]?([A-Za-z0-9]{24})(?![A-Za-z0-9])",
            re.IGNORECASE,
        ),
    ]


class EntraClientSecretDetector(RegexBasedDetector):
    """Microsoft Entra ID (Azure AD) application client secrets: ``xxx8Q~`` + 31-34 characters."""

    secret_type = "Entra Client Secret"
    prefilter = re.compile(r"\dQ~")
    denylist = [
        re.compile(
            r"(?:^|[\\'\"`\s>=:(,)])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:$|[\\'\"`\s<),])",
        ),
    ]


class GoogleServiceAccountKeyDetector(RegexBasedDetector):
    """The private key of a Google Cloud service account key file (JSON).

    The secret is the ``private_key`` string as it stands in the file (PEM with
    escaped newlines), so the same key file found twice hashes the same. It is
    reported only when the line or the lines around it show a service account
    key (``"type": "service_account"`` or a ``gserviceaccount.com`` address).
    """

    secret_type = "Google Service Account Key"
    prefilter = re.compile(r'"private_key"')
    denylist = [
        re.compile(
            r'"private_key"\s*:\s*"(-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{64,}'
            r'-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"',
        ),
    ]
    service_account_marker = re.compile(r'"type"\s*:\s*"service_account"|gserviceaccount\.com')

    def analyze_line(
        self,
        filename: str,
        line: str,
        line_number: int = 0,
        context: Any = None,
        **kwargs: Any,
    ) -> Set[PotentialSecret]:
        found = super().analyze_line(filename=filename, line=line, line_number=line_number, context=context, **kwargs)
        if not found:
            return found
        nearby = [line] + list(getattr(context, "lines", None) or [])
        if any(self.service_account_marker.search(text) for text in nearby):
            return found
        return set()


class GitLabTokenExtendedDetector(RegexBasedDetector):
    """GitLab tokens detect-secrets 1.5 misses or truncates.

    - Routable tokens (GitLab 17+: ``glpat-<payload>.<version>.<suffix>``): the
      stock plugin stops at the first dot and hashes a truncated value.
    - Feature-flag client tokens (``glffct-``) and workspace tokens (``glwt-``).
    """

    secret_type = "GitLab Token (extended)"
    prefilter = re.compile(r"gl(?:pat|dt|ft|soat|rt|rtr|cbt|imt|ptt|oas|agent|ffct|wt)-")
    denylist = [
        re.compile(
            r"(?<![A-Za-z0-9_-])(gl(?:pat|dt|ft|soat|rt|rtr|cbt|imt|ptt|oas|agent|wt)-[A-Za-z0-9_-]{20,300}"
            r"\.[0-9]{1,3}\.[A-Za-z0-9]{6,12})(?![A-Za-z0-9_.-])",
        ),
        re.compile(r"(?<![A-Za-z0-9_-])(gl(?:ffct|wt)-[A-Za-z0-9_-]{20,50})(?![A-Za-z0-9_.-])"),
    ]
