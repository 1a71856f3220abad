"""One resolver for the runtime, state, cache and data folders (``assistant.paths``), and its users."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant import paths
from assistant.bus import runtime_dir
from assistant.config import BusSettings
from assistant.config.schema import BrainSettings
from services.brain.service import store_path
from services.email.store import default_path

VARS = ("RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY", "XDG_RUNTIME_DIR", "XDG_STATE_HOME",
        "XDG_CACHE_HOME", "XDG_DATA_HOME")


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_user_folders_follow_xdg_and_home(env, tmp_path):
    home = tmp_path / "home"
    assert paths.state_dir() == home / ".local" / "state" / "assistant"
    assert paths.cache_dir() == home / ".cache" / "assistant"
    assert paths.data_dir() == home / ".local" / "share" / "assistant"
    assert paths.runtime_dir() == Path(f"/tmp/assistant-{os.getuid()}")
    env.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    env.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    env.setenv("XDG_RUNTIME_DIR", str(tmp_path / "r"))
    assert paths.state_dir() == tmp_path / "s" / "assistant"
    assert paths.cache_dir() == tmp_path / "c" / "assistant"
    assert paths.data_dir() == tmp_path / "d" / "assistant"
    assert paths.runtime_dir() == tmp_path / "r" / "assistant"


def test_systemd_directories_win_and_the_first_of_a_list_is_used(env, tmp_path):
    env.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    env.setenv("XDG_RUNTIME_DIR", str(tmp_path / "r"))
    env.setenv("STATE_DIRECTORY", f"{tmp_path / 'unit-state'}:{tmp_path / 'other'}")
    env.setenv("CACHE_DIRECTORY", str(tmp_path / "unit-cache"))
    env.setenv("RUNTIME_DIRECTORY", str(tmp_path / "unit-run"))
    assert paths.state_dir() == tmp_path / "unit-state"
    assert paths.data_dir() == tmp_path / "unit-state"
    assert paths.cache_dir() == tmp_path / "unit-cache"
    assert paths.runtime_dir() == tmp_path / "unit-run"


def test_the_bus_brain_and_email_use_it_and_a_configured_path_wins(env, tmp_path):
    env.setenv("XDG_STATE_HOME", str(tmp_path / "s"))  # the email store used to ignore it
    env.setenv("XDG_RUNTIME_DIR", str(tmp_path / "r"))
    assert default_path("") == tmp_path / "s" / "assistant" / "email.sqlite"
    assert store_path(BrainSettings()) == tmp_path / "s" / "assistant" / "brain.sqlite"
    assert runtime_dir(BusSettings()) == tmp_path / "r" / "assistant"
    assert default_path(str(tmp_path / "mine.sqlite")) == tmp_path / "mine.sqlite"
    assert store_path(BrainSettings(store_path=str(tmp_path / "b.sqlite"))) == tmp_path / "b.sqlite"
    assert runtime_dir(BusSettings(runtime_dir=str(tmp_path / "x"))) == tmp_path / "x"


def test_voice_and_renderer_folders_come_from_here(env, tmp_path):
    from services.renderer.neural import SHIPPED_AVATARS, search_path

    home = tmp_path / "home"
    assert paths.voice_cache_dir() == home / ".cache" / "assistant" / "voice"
    assert paths.avatar_cache_dir() == home / ".cache" / "assistant" / "avatars"
    assert search_path() == [home / ".local" / "share" / "assistant" / "avatars", SHIPPED_AVATARS]
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    env.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    assert paths.voice_cache_dir() == tmp_path / "c" / "assistant" / "voice"
    assert paths.avatars_dir() == tmp_path / "d" / "assistant" / "avatars"
    # Under systemd each unit has its own CacheDirectory= (assistant/voice, assistant/renderer).
    env.setenv("CACHE_DIRECTORY", str(tmp_path / "unit-cache"))
    env.setenv("STATE_DIRECTORY", str(tmp_path / "unit-state"))
    assert paths.voice_cache_dir() == tmp_path / "unit-cache"
    assert paths.avatar_cache_dir() == tmp_path / "unit-cache" / "avatars"
    assert paths.avatars_dir() == tmp_path / "unit-state" / "avatars"
    assert paths.voice_cache_dir("~/v") == home / "v"
    assert paths.avatar_cache_dir(str(tmp_path / "x")) == tmp_path / "x"
    assert paths.avatars_dir(str(tmp_path / "y")) == tmp_path / "y"

def test_credentials_are_found_in_the_units_credentials_directory(env, tmp_path):
    """Mail passwords and the status page's token resolve the same way (``assistant.paths.credential_path``)."""
    from assistant.web import WebError, read_token
    from services.email.credentials import CredentialError, read_secret

    env.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert paths.credential_path("imap.pw") == Path("imap.pw")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap.pw").write_text("s3cret\n")
    (creds / "ops.token").write_text("tok\n")
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert paths.credential_path("imap.pw") == creds / "imap.pw"
    assert paths.credential_path("/abs/file") == Path("/abs/file")
    assert read_secret("imap.pw", "imap_password_file") == "s3cret"
    assert read_token("ops.token") == "tok"
    with pytest.raises(CredentialError):
        read_secret("missing.pw", "imap_password_file")
    with pytest.raises(WebError):
        read_token("missing.token")
