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


def _numeric_keys():
    """Every number in the configuration: (dotted key, int or float)."""
    import typing

    import msgspec

    from assistant.config import Config

    out = []

    def walk(cls, prefix):
        for f in msgspec.structs.fields(cls):
            t = f.type
            if isinstance(t, type) and issubclass(t, msgspec.Struct):
                walk(t, f"{prefix}{f.name}.")
                continue
            base = typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t
            if base in (int, float):
                out.append((prefix + f.name, base))
            elif typing.get_origin(base) is tuple and typing.get_args(base)[-1] is Ellipsis:
                item = typing.get_args(base)[0]
                item = typing.get_args(item)[0] if typing.get_origin(item) is typing.Annotated else item
                if item in (int, float):
                    out.append((prefix + f.name, tuple))
    walk(Config, "")
    return out


NUMERIC = _numeric_keys()


def test_the_sweep_sees_every_number():
    keys = dict(NUMERIC)
    assert len(keys) > 100 and keys["renderer.fps"] is float and keys["bus.hwm"] is int
    assert keys["supervisor.restart_backoff_s"] is tuple


@pytest.mark.parametrize("key, kind", NUMERIC, ids=[k for k, _ in NUMERIC])
def test_every_number_refuses_hostile_values_with_one_line_naming_it(key, kind):
    """NaN, infinities, negative and absurdly large values: each number has a range, and a value
    outside it stops start-up with one line naming the key (instead of a service misbehaving)."""
    env_name = "ASSISTANT_" + "__".join(key.split(".")).upper()
    if kind is tuple:
        hostile = ["[nan]", "[-1.0]", "[inf]", "[]"]
    elif kind is float:
        hostile = ["nan", "inf", "-inf", "-1e18", "1e18"]
    else:
        hostile = [str(-2**63), str(2**63 - 1)]
    for value in hostile:
        with pytest.raises(ConfigError) as err:
            load(None, {env_name: value})
        message = str(err.value)
        assert key in message and "\n" not in message, (value, message)


@pytest.mark.parametrize("env, expected", [
    ({"ASSISTANT_CAMERA__GAIN_MIN": "9.0"}, "gain_min 9.0 is above gain_max"),
    ({"ASSISTANT_CAMERA__ENGAGE_M": "2.0"}, "engage_m 2.0 must be below release_m"),
    ({"ASSISTANT_HEARING__MIC_RATE": "100"}, "mic_rate 100"),
    ({"ASSISTANT_HEARING__VAD_FRAME_MS": "25"}, "hearing.vad_frame_ms"),
    ({"ASSISTANT_SUPERVISOR__WATCHDOG_S": "1.5"}, "supervisor.watchdog_s 1.5 is under two heartbeats"),
    ({"ASSISTANT_BRAIN__ANSWER_GAP_MS": "1500"}, "brain.answer_gap_ms 1500 is longer than hearing.turn_continue_ms 1000"),
    ({"ASSISTANT_HEARING__TURN_CONTINUE_MS": "0"}, "brain.answer_gap_ms 600 is longer than hearing.turn_continue_ms 0"),
    ({"ASSISTANT_BRAIN__ANSWER_GAP_TENTATIVE_MS": "1200"}, "brain.answer_gap_tentative_ms 1200 is longer than hearing.turn_continue_ms 1000"),
    ({"ASSISTANT_RENDERER__WIDTH": "3840"}, "renderer.width"),
    ({"ASSISTANT_CAMERA__DEVICE": '"/dev/vid\\u0000eo0"'}, "camera.device: the value holds the control character"),
])
def test_values_that_do_not_fit_together_are_one_line(env, expected):
    with pytest.raises(ConfigError) as err:
        load(None, env)
    assert expected in str(err.value) and "\n" not in str(err.value) and next(iter(env)) in str(err.value)
