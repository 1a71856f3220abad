"""Every ``bench/*.py`` runs in its ``--smoke`` mode: the same code paths on tiny inputs, in seconds.

A bench nobody runs breaks silently (``bench/renderer.py`` once crashed for weeks); the full benches
stay out of the test suite (minutes each), their smoke runs do not. Each bench found by the glob is
run as its own process with ``--smoke``; it must exit 0 and end its stdout with one JSON object that
holds the bench's keys (``KEYS`` below). A bench that cannot run here (no Chromium, no
``../shared/data``, no dovecot) prints ``{"skipped": reason}`` and the test skips with that reason.

The smoke runs start when the first of these tests needs a result, in two lanes: the ones that
start the whole kiosk (``KIOSKS``) one after another, the others three at a time beside them. Most
of a smoke run waits on real processes (a broker, a service starting, audio played in real time),
so running them side by side keeps the suite's added time low; two whole kiosks at once on two
cores would only slow each other past their deadlines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.stem for p in (REPO / "bench").glob("*.py") if not p.name.startswith("_"))
KIOSKS = ("e2e", "soak", "web")  # each starts every service: one at a time
PARALLEL = 3  # the other benches at once, beside the kiosk lane
LONG = ("hearing", "voice", "renderer")  # started first: they play audio in real time
TIMEOUT_S = 480  # a hung bench, not a slow one: the avatar's smoke build takes ~2 min alone, 5+ beside other jobs

# The keys each bench's JSON must hold (its headline figures). A new bench is run all the same;
# until it is listed here its JSON only has to be a non-empty object.
KEYS: dict[str, set[str]] = {
    "avatar": {"recordings", "heldout_lipsync_corr_min", "sharpness_ratio_min", "composited_fps_2cores_min",
               "build_minutes_max", "flicker_temporal_below_pix2pix"},
    "brain": {"embed_ms_p50", "kb_lookup_ms_p50", "service_ready_ms", "transcript_to_say_ms_rule_p50",
              "transcript_to_say_ms_knowledge_p50", "turns"},
    "bus": {"small_msgs_per_s", "small_p99_ms", "pcm_100k_msgs_per_s", "pcm_100k_p99_ms", "lost"},
    "camera": {"fps_640x480_one_core", "ae_converge_frames_p95", "backlit_detect_rate_face_ae",
               "backlit_detect_rate_global_ae", "recog_accuracy_face_ae", "recog_accuracy_global_ae"},
    "e2e": {"speech_end_to_first_sound_ms_p50", "speech_end_to_first_sound_ms_p95", "first_sound_to_first_mouth_ms_p95",
            "turns", "floors_met"},
    "email": {"idle_to_event_ms_p50", "idle_to_event_ms_p90", "msgs_per_s", "lost", "duplicates"},
    "hearing": {"wer_librivox", "wer_real", "wer_kiosk_noisy", "wer_kiosk_noisy_espeak", "wer_real_noisy",
                "final_after_speech_end_ms_p50",
                "final_after_speech_end_ms_p95", "midpause_cutoff_rate", "midpause_cutoff_rate_heldout",
                "complete_turn_fast_rate_heldout", "midpause_cutoff_rate_dev", "complete_turn_fast_rate_real",
                "midpause_cutoff_rate_real", "midpause_utterances_real",
                "natural_pauses", "natural_midsentence_cut_rate", "natural_sentence_end_fast_rate",
                "false_transcripts_on_noise",
                "barge_in_ms_p50", "floors_met"},
    "lipsync": {"heldout_mouth_corr", "energy_baseline_corr", "viseme_baseline_corr", "realtime_factor_cpu1",
                "real_cv_mouth_corr"},
    "neural_renderer": {"mouth_fps_256", "composite_fps_1080p", "cpu_mouth_fps_128"},
    "piper_lips": {"lstm_on_piper_r", "viseme_on_piper_r", "closer_to_real_lips", "clips"},
    "speaker": {"active_speaker_accuracy", "switch_latency_ms_p50", "switch_latency_ms_p95", "false_switches_per_min",
                "cpu_ms_per_frame"},
    "renderer": {"fps_720p", "fps_1080p", "av_offset_ms_p95", "dropped_frames_pct", "first_frame_ms",
                 "lip_closure_gap_iod_p95", "commanded_vs_drawn_corr"},
    "renderer_live": {"av_offset_ms_p95", "dropped_frames_pct", "first_frame_ms"},
    "renderer_sheet": {"contact_sheet", "bytes"},
    "soak": {"rss_growth_pct", "fd_growth", "restarts", "lost_messages", "turns"},
    "voice": {"first_sound_ms_p50", "cached_first_sound_ms_p50", "play_at_error_ms_p95", "stop_ms_p95",
              "failover_ms_p50", "piper_first_sound_ms_p50", "piper_rtf", "piper_intelligibility_wer"},
    "web": {"mic_to_transcript_ms_p50", "page_av_offset_ms_p95", "fps_at_page", "viewers"},
}


def _run(name: str) -> tuple[subprocess.CompletedProcess | None, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), "--smoke"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0
    return done, time.monotonic() - t0


@pytest.fixture(scope="module")
def smoke_runs(request):
    """The selected benches' smoke runs, started at once in their two lanes."""
    wanted = dict.fromkeys(item.callspec.params["name"] for item in request.session.items
                           if item.module is request.module and hasattr(item, "callspec"))
    kiosks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-smoke-kiosk")
    others = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="bench-smoke")
    runs: dict[str, Future] = {name: (kiosks if name in KIOSKS else others).submit(_run, name)
                               for name in sorted(wanted, key=lambda n: n not in LONG)}
    yield runs
    for pool in (kiosks, others):
        pool.shutdown(wait=True, cancel_futures=True)


def test_the_keys_name_existing_benches():
    assert BENCHES, "no bench/*.py found"
    assert set(KEYS) <= set(BENCHES), f"KEYS names benches that are gone: {sorted(set(KEYS) - set(BENCHES))}"


@pytest.mark.timeout(3 * TIMEOUT_S)  # the wait includes the runs queued before this one in its lane
@pytest.mark.parametrize("name", BENCHES)
def test_bench_smoke(name, smoke_runs):
    done, seconds = smoke_runs[name].result()
    assert done is not None, f"bench/{name}.py --smoke ran longer than {TIMEOUT_S} s"
    tail = done.stderr[-3000:]
    assert done.returncode == 0, f"bench/{name}.py --smoke exited {done.returncode} after {seconds:.0f} s:\n{tail}"
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    assert lines, f"bench/{name}.py --smoke printed nothing on stdout:\n{tail}"
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"bench/{name}.py --smoke: the last stdout line is not JSON: {lines[-1][:300]!r}\n{tail}")
    assert isinstance(result, dict) and result, f"bench/{name}.py --smoke: the last line is not a JSON object: {lines[-1][:300]!r}"
    if "skipped" in result:
        pytest.skip(f"bench/{name}.py: {result['skipped']}")
    assert "error" not in result, f"bench/{name}.py --smoke: {result['error']}\n{tail}"
    missing = KEYS.get(name, set()) - set(result)
    assert not missing, f"bench/{name}.py --smoke: keys missing from its JSON: {sorted(missing)}"
