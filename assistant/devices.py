"""``assistant devices``: the cameras, microphones and speakers this machine has, each with the
config line that selects it (see docs/devices.md).

Cameras come from V4L2 (``/sys/class/video4linux``: capture nodes only, not a webcam's metadata
node); microphones and speakers from PortAudio (what the services open) and, when a PulseAudio
or PipeWire server runs, its sources and sinks (selected through PortAudio's ``pulse`` device and
``PULSE_SOURCE`` / ``PULSE_SINK``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Device:
    kind: str  # camera, microphone, speaker
    name: str
    detail: str
    config: str  # the line(s) that select it


def cameras(sysfs: Path = Path("/sys/class/video4linux"), dev: Path = Path("/dev")) -> list[Device]:
    """V4L2 capture devices. A webcam registers two nodes (video and metadata); only nodes with
    the capture capability (``index`` 0 of their device) are cameras."""
    found = []
    try:
        nodes = sorted(sysfs.iterdir(), key=lambda p: (len(p.name), p.name))
    except OSError:
        return []
    for node in nodes:
        if not node.name.startswith("video"):
            continue
        name = _read(node / "name") or node.name
        index = _read(node / "index")
        if index not in ("", "0"):
            continue  # the metadata node of the same webcam
        path = dev / node.name
        found.append(Device("camera", name, str(path), f'[camera] device = "{path}"'))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def portaudio() -> tuple[list[Device], str]:
    """Microphones and speakers as PortAudio sees them; the second value says why there are none."""
    try:
        import pyaudio
    except ImportError:
        return [], "pyaudio is not installed (pip install 'embodied-assistant[hearing]'; apt portaudio19-dev)"
    from hardware.portaudio_quiet import quiet

    quiet()
    pa = pyaudio.PyAudio()
    try:
        out = []
        for i in range(pa.get_device_count()):
            d = pa.get_device_info_by_index(i)
            api = pa.get_host_api_info_by_index(d["hostApi"])["name"]
            rate = int(d["defaultSampleRate"])
            name = d["name"]
            if d.get("maxInputChannels", 0) > 0:
                out.append(Device("microphone", name, f"PortAudio {i}, {api}, {d['maxInputChannels']} ch, {rate} Hz",
                                  f'[hearing] mic_device = "{name}"'))
            if d.get("maxOutputChannels", 0) > 0:
                out.append(Device("speaker", name, f"PortAudio {i}, {api}, {d['maxOutputChannels']} ch, {rate} Hz",
                                  f'[voice.speaker] kind = "pyaudio", device = "{name}"'))
        return out, ""
    finally:
        pa.terminate()


def pulse(env: dict[str, str] | None = None) -> list[Device]:
    """Sources and sinks of a running PulseAudio (or PipeWire's pulse server); [] when none runs."""
    if shutil.which("pactl") is None:
        return []
    out = []
    for kind, what, var, line in (("microphone", "sources", "PULSE_SOURCE", '[hearing] mic_device = "pulse"'),
                                  ("speaker", "sinks", "PULSE_SINK", '[voice.speaker] kind = "pyaudio", device = "pulse"')):
        try:
            res = subprocess.run(["pactl", "list", "short", what], capture_output=True, text=True, timeout=5, env=env)
        except (OSError, subprocess.TimeoutExpired):
            return []
        if res.returncode != 0:
            return []
        for row in res.stdout.splitlines():
            cols = row.split("\t")
            if len(cols) < 2 or (kind == "microphone" and cols[1].endswith(".monitor")):
                continue  # a sink's monitor is what the speaker plays, not a microphone
            detail = " ".join(cols[3:5]) if len(cols) > 4 else ""
            out.append(Device(kind, cols[1], f"PulseAudio {detail}".strip(), f"{line}  +  {var}={cols[1]} in the service's environment"))
    return out


def report() -> tuple[str, int]:
    """The listing as text, and how many real devices it found."""
    lines = []
    cams = cameras()
    audio, why = portaudio()
    pulse_devices = pulse()
    total = len(cams) + len(audio) + len(pulse_devices)
    sections = (("Cameras (V4L2)", cams, '[camera] device = "sim"   # the simulated camera (no webcam)',
                 "no V4L2 camera (plug in a USB webcam; `ls /dev/video*`)"),
                ("Microphones (PortAudio)", [d for d in audio if d.kind == "microphone"],
                 '[hearing] mic_device = "sim"   # simulated; "web": the kiosk page\'s microphone', why or "no capture device"),
                ("Speakers (PortAudio)", [d for d in audio if d.kind == "speaker"],
                 '[voice.speaker] kind = "wav"   # the simulated speaker (records to a WAV file)', why or "no playback device"),
                ("PulseAudio / PipeWire", pulse_devices, "", "no sound server running (or pactl missing)"))
    for title, devices, fallback, none in sections:
        lines.append(title)
        if not devices:
            lines.append(f"  {none}")
        for d in devices:
            lines.append(f"  {d.name}  ({d.detail})")
            lines.append(f"      {d.config}")
        if fallback:
            lines.append(f"  always: {fallback}")
        lines.append("")
    lines.append("Check each with the steps in docs/devices.md; `assistant status` shows camera/microphone/speaker as there or not.")
    return "\n".join(lines), total
