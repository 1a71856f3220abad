"""What a scene leaves behind: the transcript, the latency report, and the recording with both voices.

The renderer records the face with the assistant's voice; the visitor's voice never passes through
it (it goes into the microphone). ``mix_visitor`` adds the visitor's lines to the recording's
sound track at the times they were spoken, copying the video as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .visitor import RATE as VISITOR_RATE, Spoken
from .watch import KioskWatch, Line

log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def transcript(watch: KioskWatch, visitor: list[Spoken]) -> str:
    """Who said (and did) what when, from the start of the scene."""
    lines = list(watch.lines) + [Line(s.start_ns, "visitor", s.text) for s in visitor]
    lines.sort(key=lambda ln: ln.t_ns)
    out = [f"{'time':>7}  {'who':<9}  what", f"{'-' * 7}  {'-' * 9}  {'-' * 40}"]
    for ln in lines:
        note = f"   [{ln.note}]" if ln.note else ""
        out.append(f"{_clock(watch.rel(ln.t_ns)):>7}  {ln.who:<9}  {ln.text}{note}")
    return "\n".join(out) + "\n"


def latencies(watch: KioskWatch) -> list[dict[str, Any]]:
    """Per turn, in ms: end of speech -> transcript -> reply -> first sound; first sound -> first mouth frame."""
    rows = []
    for turn, t in watch.traces:
        def ms(a: int, b: int) -> float | None:
            return round((b - a) / 1e6, 1) if a and b else None

        rows.append({
            "turn": turn, "speech_end_to_transcript_ms": ms(t.speech_end_ns, t.transcript_ns),
            "speech_end_to_reply_ms": ms(t.speech_end_ns, t.reply_ns),
            "speech_end_to_first_sound_ms": ms(t.speech_end_ns, t.first_sound_ns),
            "first_sound_to_first_mouth_ms": ms(t.first_sound_ns, t.first_mouth_ns),
        })
    return rows


def latency_report(watch: KioskWatch) -> str:
    rows = latencies(watch)
    heard = {turn: m.text for turn, m in watch.transcripts}
    cols = ("speech_end_to_transcript_ms", "speech_end_to_reply_ms", "speech_end_to_first_sound_ms", "first_sound_to_first_mouth_ms")
    out = ["Per-turn latency (ms): end of speech -> transcript -> reply decided -> first sound; first sound -> first mouth frame", "",
           f"{'transcript':>10} {'reply':>7} {'sound':>7} {'mouth':>7}  turn"]
    for r in rows:
        vals = " ".join(f"{r[c]:>{10 if i == 0 else 7}.0f}" if r[c] is not None else f"{'-':>{10 if i == 0 else 7}}" for i, c in enumerate(cols))
        out.append(f"{vals}  {heard.get(str(r['turn']), r['turn'])!r}")
    sound = [r["speech_end_to_first_sound_ms"] for r in rows if r["speech_end_to_first_sound_ms"] is not None]
    mouth = [r["first_sound_to_first_mouth_ms"] for r in rows if r["first_sound_to_first_mouth_ms"] is not None]
    if sound:
        out += ["", f"end of speech -> first sound: p50 {np.percentile(sound, 50):.0f} ms, max {max(sound):.0f} ms over {len(sound)} turns"]
    if mouth:
        out.append(f"first sound -> first mouth frame: p50 {np.percentile(mouth, 50):.0f} ms, max {max(mouth):.0f} ms")
    if watch.renderer_stats:
        offs = [s.av_offset_ms_p95 for s in watch.renderer_stats if s.av_offset_ms_p95]
        if offs:
            out.append(f"renderer A/V offset p95 per second while speaking: median {np.median(offs):.1f} ms, worst {max(offs):.1f} ms")
    return "\n".join(out) + "\n"


def mix_visitor(path: Path, visitor: list[Spoken], t0_ns: int, gain: float = 0.7) -> bool:
    """Add the visitor's lines to the sound of the MP4 at ``path`` (its first frame shown at ``t0_ns``).

    The video packets are copied untouched; the audio is decoded, mixed and encoded again.
    Returns False (and leaves the file alone) when it has no audio track.
    """
    import av

    src = av.open(str(path))
    try:
        if not src.streams.audio or not src.streams.video:
            return False
        a_in = src.streams.audio[0]
        rate = a_in.rate
        chunks = [f.to_ndarray().astype(np.float32).mean(axis=0) for f in src.decode(a_in)]
        sound = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    finally:
        src.close()
    import soxr

    for s in visitor:
        x = soxr.resample(s.pcm.astype(np.float32) / 32768.0, VISITOR_RATE, rate) * gain
        at = int(round((s.start_ns - t0_ns) / 1e9 * rate))
        a, b = max(at, 0), min(at + len(x), len(sound))
        if b > a:
            sound[a:b] += x[a - at:b - at]
    tmp = path.with_name(path.stem + ".mixing" + path.suffix)
    src = av.open(str(path))
    dst = av.open(str(tmp), "w")
    try:
        v_in = src.streams.video[0]
        v_out = dst.add_stream_from_template(v_in)
        a_out = dst.add_stream("aac", rate=rate)
        a_out.layout = "mono"
        for packet in src.demux(v_in):
            if packet.dts is None:
                continue
            packet.stream = v_out
            dst.mux(packet)
        step = 1024 * 8
        for i in range(0, len(sound), step):
            frame = av.AudioFrame.from_ndarray(np.clip(sound[i:i + step], -1, 1)[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, i
            for packet in a_out.encode(frame):
                dst.mux(packet)
        for packet in a_out.encode(None):
            dst.mux(packet)
    finally:
        dst.close()
        src.close()
    tmp.replace(path)
    return True
