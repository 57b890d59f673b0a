"""Turning secret-engine hits into ``Exposure`` records, for every source that sees text.

A source (git history, CI variables, tickets) hands text to the engine and gets
hits holding the value in memory; this module keeps from each hit only what
may be stored (DESIGN.md invariant 1): the keyed hash, a four-character
preview, where it was, and *identities* that let the rules link the leak to an
inventory credential without the value:

- ``aws_access_key_id_sha256:<sha256 of the key id>``: the AWS inventory keeps
  access key ids (identifiers, not secrets) and the rule hashes them the same way;
- ``last_eight_hmac:<keyed hash>``: what GitHub's credential-authorizations API
  shows of a token, which the GitHub collector keeps only as that keyed hash.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from scanner.records import Exposure, keyed_hash, redacted_preview

AWS_KEY_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA")


def aws_key_identity(access_key_id: str) -> str:
    return "aws_access_key_id_sha256:" + hashlib.sha256(access_key_id.encode()).hexdigest()


def identities_of(secret_type: str, value: str, hmac_key: bytes) -> list[str]:
    """What ties a leaked value to an inventory credential without storing the value."""
    out = []
    if secret_type == "AWS Access Key" and value[:4] in AWS_KEY_PREFIXES and len(value) == 20:
        out.append(aws_key_identity(value))
    if secret_type in ("GitHub Token", "GitHub Fine-Grained Token") and len(value) >= 8:
        out.append(f"last_eight_hmac:{keyed_hash(hmac_key, value[-8:])}")
    return out


def hit_entry(hit: Any, hmac_key: bytes, verify: Callable[[str, str], Any] | None = None) -> list[Any]:
    """What a source remembers of a hit between sweeps (no value):
    ``[type, line, secret_hmac, preview, identities, live, verified_by]``."""
    live = verify(hit.type, hit.secret) if verify is not None else None
    return [hit.type, hit.line_number, keyed_hash(hmac_key, hit.secret), redacted_preview(hit.secret),
            identities_of(hit.type, hit.secret, hmac_key), getattr(live, "live", None), getattr(live, "source", None)]


def type_slug(secret_type: str) -> str:
    """'Base64 High Entropy String' -> 'base64-high-entropy-string': part of record keys."""
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def variable_text(name: str, value: str) -> str:
    """A variable as the engine should read it: ``NAME = "value"``, so keyword rules see the name."""
    if "\n" in value:
        return f"{name}:\n{value}"
    return f'{name} = "{value}"'


def exposures_in_variable(*, src: str, inventory: str, scope: str, kind: str, name: str, value: str | None,
                          hmac_key: bytes, masked: bool | None = None, protected: bool | None = None) -> list[Exposure]:
    """Credentials stored in a CI variable's value, as ``Exposure`` records.

    A GitHub Actions variable is plain text by design (masking is what secrets
    are for), so a credential in one is always exposed: to everyone who can read
    the repository's settings, and in every job log that prints it. A GitLab
    variable has flags: a credential in a variable that is both masked and
    protected is where it belongs; one that is unmasked or unprotected is exposed.
    """
    if not value or (masked and protected):
        return []
    from detectors.secrets import scan_text

    where = f"{src}:{scope}:{kind}:{name}"
    records = []
    for hit in scan_text(variable_text(name, value), f"{kind}.env"):
        secret_hmac = keyed_hash(hmac_key, hit.secret)
        line = "" if "\n" not in value else f":{hit.line_number - 1}"
        flags = [] if masked is None else [("masked" if masked else "unmasked"), ("protected" if protected else "unprotected")]
        records.append(
            Exposure(
                key=f"{src}:exposure:{scope}/{kind}/{name}{line}:{type_slug(hit.type)}:{secret_hmac[:12]}",
                source=src,
                inventory=inventory,
                name=f"{hit.type} in {kind} {name}" + (f" ({', '.join(flags)})" if flags else ""),
                secret_type=hit.type,
                secret_hmac=secret_hmac,
                preview=redacted_preview(hit.secret),
                location=where + line,
                identities=tuple(identities_of(hit.type, hit.secret, hmac_key)),
            )
        )
    return records
