"""Config loading: defaults, file, environment overrides, and one-line errors."""

import pytest

from assistant.config import Config, ConfigError, load

from .procs import REPO


def test_defaults_without_a_file(tmp_path):
    cfg = load(None, {})
    assert isinstance(cfg, Config) and cfg.bus.transport == "ipc"


def test_example_config_is_valid_and_equals_the_defaults():
    assert load(REPO / "examples" / "assistant.toml", {}) == Config()


def test_file_and_environment_overrides(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[voice]\nlang = 'cs'\n[bus]\nhwm = 10\n")
    cfg = load(path, {"ASSISTANT_BUS__HWM": "20", "ASSISTANT_VOICE__ENGINES": '["espeak-ng"]', "ASSISTANT_BUS__TRANSPORT": "tcp"})
    assert (cfg.voice.lang, cfg.bus.hwm, cfg.voice.engines, cfg.bus.transport) == ("cs", 20, ("espeak-ng",), "tcp")


def test_assistant_config_variable_names_the_file(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text("[brain]\nname = 'Bob'\n")
    assert load(None, {"ASSISTANT_CONFIG": str(path)}).brain.name == "Bob"


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("[voice]\nlangg = 'x'\n", {}, "voice.langg: unknown key"),
        ("[nosection]\n", {}, "nosection: unknown key"),
        ("[renderer]\nfps = 'fast'\n", {}, "renderer.fps: Expected `float`, got `str`"),
        ("", {"ASSISTANT_RENDERER__WIDTH": "wide"}, "ASSISTANT_RENDERER__WIDTH"),
        ("", {"ASSISTANT_NOPE__X": "1"}, "nope: unknown key"),
        ("[bus]\ntransport = 'udp'\n", {}, "bus.transport"),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path, text, env, expected):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path, env)
    message = str(err.value)
    assert expected in message and "\n" not in message
