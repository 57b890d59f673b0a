"""Config validation: every error names the key, the value and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.config import ConfigError, load_config, parse_config, read_secret

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_example_config_is_valid():
    config = load_config(ROOT / "config.toml")
    (gh,) = config.sources.github
    assert gh.orgs == ["acme"] and gh.token_env == "GITHUB_TOKEN"
    assert config.rules["dormant"]["days"] == 90
    # Relative paths resolve against the config file's folder, not the working directory.
    assert config.store_url == f"sqlite:///{ROOT / 'nhiscan.db'}"


def _error(data) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, origin="c.toml")
    return str(exc.value)


def test_unknown_key_is_named_with_the_likely_intended_one():
    msg = _error({"sources": {"github": [{"orgs": ["a"], "token_evn": "X", "token_env": "T"}]}})
    assert "sources.github[0].token_evn: unknown key; did you mean 'token_env'?" in msg
    assert "(allowed: name, base_url, token_env, token_file," in msg
    assert "stor: unknown key; did you mean 'store'?" in _error({"stor": {}})


def test_wrong_type_names_key_and_value():
    msg = _error({"sources": {"github": [{"orgs": ["a"], "token_env": "T", "per_page": 500}]}})
    assert "sources.github[0].per_page" in msg and "500" in msg and "less than or equal to 100" in msg


def test_source_without_credentials_is_rejected():
    msg = _error({"sources": {"github": [{"orgs": ["a"]}]}})
    assert "sources.github[0]" in msg and "needs credentials" in msg


def test_duplicate_source_names_are_rejected():
    src = {"orgs": ["a"], "token_env": "T"}
    assert "repeated: github" in _error({"sources": {"github": [src, src]}})


def test_rule_thresholds_are_checked_against_the_rules():
    assert "rules.dormant.days: expected int, got 'ninety'" in _error({"rules": {"dormant": {"days": "ninety"}}})


def test_bad_toml_names_the_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[store\nurl=1")
    with pytest.raises(ConfigError, match=r"c\.toml: not valid TOML"):
        load_config(p)


def test_read_secret_from_env_and_file(tmp_path, monkeypatch):
    config = parse_config({}, base_dir=tmp_path)
    monkeypatch.setenv("NHI_T", " tok \n")
    assert read_secret(config, env="NHI_T", file=None, what="x") == "tok"
    (tmp_path / "t.txt").write_text("filetok\n")
    monkeypatch.delenv("NHI_T")
    assert read_secret(config, env="NHI_T", file="t.txt", what="x") == "filetok"
    with pytest.raises(ConfigError, match="environment variable NHI_MISSING is not set"):
        read_secret(config, env="NHI_MISSING", file=None, what="x")


def test_every_commented_example_in_config_toml_is_valid_too():
    """The commented tables document every source and option: switched on, they must validate."""
    import re
    import tomllib

    text = (ROOT / "config.toml").read_text()
    lines = []
    for line in text.splitlines():
        m = re.match(r"# ((\[.*\])|([a-z_]+ = .*))$", line)
        lines.append(m.group(1) if m else line)
    config = parse_config(tomllib.loads("\n".join(lines)), base_dir=ROOT)
    assert {kind for kind, _ in config.sources.all()} >= {"github", "gitlab", "slack", "jira", "okta", "entra", "aws"}
    assert config.notify.slack and config.notify.jira and config.acceptances
