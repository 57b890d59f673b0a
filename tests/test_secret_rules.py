"""The leaked-secret rules on hand-built records: secret-exposed (linked to the inventory) and secret-reused."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from detectors.rules import evaluate, fingerprint
from graph.build import build_graph
from detectors.secrets.exposures import aws_key_identity, exposures_in_variable, identities_of
from scanner.records import Credential, Exposure, Status, keyed_hash, redacted_preview

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
KEY = b"installation-key-0123456789abcdef"
AWS_ID = "AKIA" + "Q" * 8 + "7" * 8
GH = "gh" + "p_" + "a1B2c3D4" * 4 + "zZ9y"


def exposure(value: str, secret_type: str, location: str, **kw) -> Exposure:
    repo, rest = location.split("@", 1)
    return Exposure(
        key=f"git:exposure:{location}", source="git", inventory=f"git:{repo}:history", name=f"{secret_type} in {repo}",
        secret_type=secret_type, secret_hmac=keyed_hash(KEY, value), preview=redacted_preview(value), location=location,
        identities=tuple(identities_of(secret_type, value, KEY)), **kw,
    )


def access_key(status=Status.ACTIVE) -> Credential:
    return Credential(key=f"aws:access_key:{AWS_ID}", source="aws", inventory="aws:123:access_keys", name=AWS_ID,
                      credential_type="access_key", status=status, created_at=NOW - timedelta(days=10),
                      expires_at=None, attributes={"access_key_id": AWS_ID})


def by_rule(findings, rule_id):
    return [f for f in findings if f["rule_id"] == rule_id]


def test_leak_of_an_active_inventory_credential_is_one_critical_finding():
    leaks = [exposure(AWS_ID, "AWS Access Key", "acme/api@" + "a" * 40 + ":app/settings.py:3"),
             exposure(AWS_ID, "AWS Access Key", "acme/web@" + "b" * 40 + ":deploy.py:9")]
    findings = evaluate(build_graph([access_key(), *leaks]), NOW)
    (f,) = by_rule(findings, "secret-exposed")
    assert f["severity"] == "critical"
    assert f["subject"]["key"] == f"aws:access_key:{AWS_ID}"
    assert f["owasp"] == "NHI2"
    assert "is active and is also exposed in acme/api@" in f["why"] and "acme/web@" in f["why"]
    assert any("the AWS access key id" in e for e in f["evidence"])
    # A git inventory failing later keeps the finding open: its inventories include the exposures'.
    assert {"git:acme/api:history", "git:acme/web:history", "aws:123:access_keys"} <= set(f["inventories"])
    assert f["fingerprint"] == fingerprint("secret-exposed", f"aws:access_key:{AWS_ID}")


def test_leak_of_a_revoked_credential_ranks_low():
    leak = exposure(AWS_ID, "AWS Access Key", "acme/api@" + "a" * 40 + ":app/settings.py:3")
    (f,) = by_rule(evaluate(build_graph([access_key(Status.REVOKED), leak]), NOW), "secret-exposed")
    assert f["severity"] == "low" and "is revoked" in f["why"]


def test_github_token_linked_by_its_last_eight_characters():
    cred = Credential(key="github:credential_authorization:acme/42", source="github", inventory="github:acme:credential_authorizations",
                      name="ci token", credential_type="classic_pat", attributes={"last_eight_hmac": keyed_hash(KEY, GH[-8:])})
    leak = exposure(GH, "GitHub Token", "acme/api@" + "c" * 40 + ":.env:1")
    (f,) = by_rule(evaluate(build_graph([cred, leak]), NOW), "secret-exposed")
    assert f["severity"] == "critical" and f["subject"]["key"] == cred.key
    assert any("last eight characters" in e for e in f["evidence"])


def test_unlinked_leaks_are_one_finding_per_place_generic_ones_lower():
    specific = exposure(GH, "GitHub Token", "acme/api@" + "c" * 40 + ":.env:1")
    generic = exposure("hunter2hunter2", "Secret Keyword", "acme/api@" + "c" * 40 + ":app.py:4")
    findings = by_rule(evaluate(build_graph([specific, generic]), NOW), "secret-exposed")
    severities = {f["subject"]["key"]: f["severity"] for f in findings}
    assert severities == {specific.key: "high", generic.key: "medium"}
    for f in findings:
        assert GH not in repr(f) and "hunter2hunter2" not in repr(f)
        assert GH[:4] in f["why"] or "hunt" in f["why"]  # the four-character preview only


def test_the_same_value_in_several_places_is_one_reuse_finding():
    value = "s3cr3t-" + "x" * 20
    a = exposure(value, "Secret Keyword", "acme/api@" + "a" * 40 + ":config.py:1")
    a_later = exposure(value, "Secret Keyword", "acme/api@" + "d" * 40 + ":config.py:2")  # same file, later commit
    b = exposure(value, "Secret Keyword", "acme/web@" + "b" * 40 + ":settings.py:7")
    # The value also sits in a plain Actions variable: the engine finds it there (a real scan).
    in_variable = exposures_in_variable(src="github", inventory="github:acme/web:actions_variables", scope="acme/web",
                                        kind="actions_variable", name="DB_PASSWORD", value=value, hmac_key=KEY)
    assert [e.secret_hmac for e in in_variable] == [keyed_hash(KEY, value)]

    (f,) = by_rule(evaluate(build_graph([a, a_later, b, *in_variable]), NOW), "secret-reused")
    assert f["owasp"] == "NHI9" and f["severity"] == "high"
    assert "in 3 places" in f["why"]  # two repositories' files and one variable; one file's history counts once
    assert f["fingerprint"] == fingerprint("secret-reused", f"secret:{keyed_hash(KEY, value)[:32]}")

    # One place only (the same file across commits): no reuse.
    assert by_rule(evaluate(build_graph([a, a_later]), NOW), "secret-reused") == []


def test_plain_values_shared_by_variables_are_not_reuse():
    region = [Credential(key=f"github:actions_variable:acme/{r}/REGION", source="github", inventory=f"github:acme/{r}:actions_variables",
                         name="REGION", credential_type="actions_variable", value_hmac=keyed_hash(KEY, "eu-west-1"))
              for r in ("api", "web")]
    assert by_rule(evaluate(build_graph(region), NOW), "secret-reused") == []
    assert exposures_in_variable(src="github", inventory="i", scope="acme/api", kind="actions_variable", name="REGION",
                                 value="eu-west-1", hmac_key=KEY) == []


def test_variable_exposures_respect_gitlab_flags():
    token = "gl" + "pat-" + "Ab3dEf6hIj9kLm2nOp5q"
    kwargs = dict(src="gitlab", inventory="gitlab:grp:ci_variables", scope="grp", kind="ci_variable", name="DEPLOY", value=token,
                  hmac_key=KEY)
    assert exposures_in_variable(**kwargs, masked=True, protected=True) == []
    (unprotected,) = [e for e in exposures_in_variable(**kwargs, masked=True, protected=False) if e.secret_type == "GitLab Token"]
    assert "unprotected" in unprotected.name and unprotected.location == "gitlab:grp:ci_variable:DEPLOY"
    assert token not in repr(unprotected) and unprotected.preview == "glpa****"


def test_variable_values_do_not_link_as_credentials():
    """A plain variable holding the value is a place the value is (reuse), not the credential itself."""
    value = "s3cr3t-" + "y" * 20
    leak = exposure(value, "Secret Keyword", "acme/api@" + "a" * 40 + ":config.py:1")
    variable = Credential(key="gitlab:ci_variable:grp/DB", source="gitlab", inventory="gitlab:grp:ci_variables", name="DB",
                          credential_type="ci_variable", value_hmac=keyed_hash(KEY, value))
    (f,) = by_rule(evaluate(build_graph([leak, variable]), NOW), "secret-exposed")
    assert f["subject"]["key"] == leak.key


def test_aws_identity_is_a_hash_never_the_id():
    assert aws_key_identity(AWS_ID) == "aws_access_key_id_sha256:" + hashlib.sha256(AWS_ID.encode()).hexdigest()
    assert AWS_ID not in aws_key_identity(AWS_ID)


def test_gitlab_variables_holding_credentials_are_exposures_unless_masked_and_protected():
    from scanner.collectors import gitlab as glc

    token = "gl" + "pat-" + "Zy3dEf6hIj9kLm2nOp5q"
    items = [{"key": "SAFE", "value": token, "masked": True, "protected": True, "environment_scope": "*"},
             {"key": "LEAKY", "value": token, "masked": True, "protected": False, "environment_scope": "production"},
             {"key": "REGION", "value": "eu-west-1", "masked": False, "protected": False}]
    batch = glc.transform_variables("gitlab", items, inventory="gitlab:grp/app:variables", hmac_key=KEY, level="project",
                                    where="grp/app", resource_key=None)
    exposed = [r for r in batch.records if isinstance(r, Exposure)]
    assert {e.location for e in exposed} == {"gitlab:grp/app:ci_variable:LEAKY@production"}
    assert all(e.inventory == "gitlab:grp/app:variables" and token not in repr(e) for e in exposed)
