"""config: profiles in bulkpatch.toml, their precedence, and one clear line for a bad file."""

from __future__ import annotations

import pytest

from bulkpatch.errors import InputError
from bulkpatch.network.auth import Credentials
from bulkpatch.settings import load_profile

GOOD = """
[profiles.default]
target = "https://api.partnercenter.microsoft.com"
rate = 400
limit_scope = "customer"

[profiles.night]
auth = "client_secret"
tenant_id = "t-1"
client_id = "c-1"
secret_env = "NIGHT_SECRET"
concurrency = 4
application = "Contoso month end"
"""


def write(folder, text):
    (folder / "bulkpatch.toml").write_text(text)
    return folder / "bulkpatch.toml"


def test_flag_beats_environment_beats_profile_beats_default(tmp_path, monkeypatch):
    write(tmp_path, GOOD)
    for name in ("BULKPATCH_RATE", "BULKPATCH_PROFILE", "BULKPATCH_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    profile = load_profile(None, tmp_path)
    assert profile.name == "default"
    assert profile.get("rate") == 400 and profile.get("concurrency") == 8
    monkeypatch.setenv("BULKPATCH_RATE", "300")
    assert profile.get("rate") == 300.0
    assert profile.get("rate", 200.0) == 200.0
    night = load_profile("night", tmp_path)
    assert night.get("application") == "Contoso month end"
    assert Credentials.of(night).secret_env == "NIGHT_SECRET"
    monkeypatch.setenv("BULKPATCH_PROFILE", "night")
    assert load_profile(None, tmp_path).name == "night"


def test_the_user_config_folder_is_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "config" / "bulkpatch").mkdir(parents=True)
    write(tmp_path / "config" / "bulkpatch", GOOD)
    (tmp_path / "work").mkdir()
    assert load_profile("night", tmp_path / "work").source.parent.name == "bulkpatch"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "[profiles.default\nrate = 1\n",
            "is not valid TOML (Expected ']' at the end of a "
            "table declaration (at line 1, column 18))",
        ),
        ("[profiles.default]\nrate = 10\nspeed = 5\n", "line 3: unknown key 'speed'"),
        (
            '[profiles.default]\nclient_secret = "abc"\n',
            "line 2: 'client_secret' would put a secret in the file",
        ),
        ('[profiles.default]\nconcurrency = "many"\n', "line 2: concurrency must be a number"),
        (
            '[profiles.default]\nlimit_scope = "tenant"\n',
            "line 2: limit_scope must be one of partner, customer",
        ),
        ("rate = 10\n", "line 1: unknown key 'rate'; settings go under [profiles.NAME]"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_line_and_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        load_profile(None, tmp_path)
    assert str(path) in str(error.value) and words in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unknown_profile_lists_the_known_ones(tmp_path, cli):
    write(tmp_path, GOOD)
    with pytest.raises(InputError, match="has no profile 'day'; its profiles are default, night"):
        load_profile("day", tmp_path)
    result = cli("apply", "x.csv", "--profile", "day")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("its profiles are default, night.")
