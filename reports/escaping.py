"""Escaping tenant text for the medium it lands in (DESIGN.md invariant 4).

Names, titles and descriptions come from tenants and are untrusted: a token
named ``<script>`` or ``*bold* | col`` must render as the literal text.
One function per medium, all here so a reviewer can audit them together.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Only what is special inside a line: emphasis, code, links/images, tables, strikethrough.
# Tenant text never starts a line in our reports, so block markers (#, -, 1.) are inert.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def strip_control(text: str) -> str:
    """Remove control characters and bidi overrides (terminal escapes, spoofed names)."""
    return _CONTROL.sub("", text)


def escape_markdown(value: object) -> str:
    """Literal text inside Markdown (tables included): no emphasis, links, HTML or column breaks."""
    text = strip_control(str(value)).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown_code(value: object) -> str:
    """Literal text inside a Markdown code span, where backslash escapes do not work."""
    text = strip_control(str(value)).replace("\r", " ").replace("\n", " ").replace("`", "'")
    return f"`{text}`"


def escape_terminal(value: object) -> str:
    """Literal text for rich output: no markup tags, no escape sequences."""
    from rich.markup import escape

    return escape(strip_control(str(value)))


def escape_slack(value: object) -> str:
    """Literal text in Slack mrkdwn: ``&``, ``<`` and ``>`` are the only control characters.

    With them escaped, tenant text can never form ``<!channel>``, ``<@U123>`` or ``<url|label>``.
    """
    return strip_control(str(value)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_JIRA_SPECIAL = re.compile(r"([\\{}\[\]*_+^~|!#\-?])")


def escape_jira(value: object) -> str:
    """Literal text in Jira wiki markup (Server/DC and the v2 API on Cloud)."""
    text = strip_control(str(value)).replace("\r", "")
    return _JIRA_SPECIAL.sub(r"\\\1", text)



_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_csv_cell(value: object) -> str:
    """Literal text in a spreadsheet cell: a leading ``=``, ``+``, ``-`` or ``@`` cannot start a formula.

    Such a cell gets a leading apostrophe (OWASP's advice for CSV injection);
    the csv module does the quoting of commas, quotes and newlines.
    """
    text = strip_control(str(value)) if value is not None else ""
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text
