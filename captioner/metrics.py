"""Every Prometheus metric the daemon exports, bounded labels for what the outside sends, the trace file."""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .tallies import Latency, Level, Tally

# Service error codes (normalised: lower case, letters and digits) that get their own metric series; any other code
# a server sends is counted as "other", so a server cannot grow /metrics without bound (translator-protocol §7).
KNOWN_ERROR_CODES = frozenset(
    {
        "invalidapikey",
        "accessdenied",
        "arrearage",
        "modelnotfound",
        "insufficientquota",
        "throttlingratequota",
        "throttlingallocationquota",
        "invalidparameter",
        "invalidvalue",
        "invalidjson",
        "invalidrequesterror",
        "responseidletimeout",
        "transcriptionfailed",
        "commonerror",
        "internalerror",
        "serviceunavailable",
    }
)


def error_code_label(code: str) -> str:
    """The `code` label for a service error: a known code, "unknown" when there is none, else "other"."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    if not normal:
        return "unknown"
    return normal if normal in KNOWN_ERROR_CODES else "other"


TRACE_ENV = "CAPTIONER_TRACE"


def _trace_writer(path: str | None) -> Callable[[str, float], None] | None:
    """`CAPTIONER_TRACE=<path>`: append each latency sample as "name seconds" (benchmarks/ needs exact p99)."""
    if not path:
        return None
    out = open(path, "a", buffering=1 << 16, encoding="utf-8")  # noqa: SIM115 - open for the process's life
    atexit.register(out.close)  # flushed at exit; buffered meanwhile, so a sample costs one string write

    def write(name: str, seconds: float) -> None:
        out.write(f"{name} {seconds:.6f}\n")

    return write


CAPTURE_TO_WIRE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 3)
FINAL_TO_SCREEN_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5)


class Metrics:
    """Every metric the daemon exports; one registry per daemon so tests can run several."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # Raw samples for the histograms below that benchmarks read; None (one `is None` test) unless asked for.
        self.trace = _trace_writer(os.environ.get(TRACE_ENV))
        # Series counted for every chunk or translator event, and those /status reads, are Tallies, Latencies and
        # Levels (tallies.py: plain numbers, exported when /metrics is read); the rest prometheus_client's own.
        self.audio_chunks = Tally("captioner_audio_chunks", "16 kHz chunks produced by capture", [], r)
        self.audio_dropped = Counter(
            "captioner_audio_dropped_blocks", "Captured blocks dropped because the queue was full", registry=r
        )
        self.audio_errors = Counter("captioner_audio_device_errors", "Audio device failures", registry=r)
        self.audio_sent_seconds = Tally(
            "captioner_audio_sent_seconds", "Audio seconds sent to the translator", ["input", "target"], r
        )
        self.audio_skipped_chunks = Counter(
            "captioner_audio_skipped_chunks",
            "Chunks not sent because the session was not ready (never replayed late)",
            ["input", "target"],
            registry=r,
        )
        self.capture_to_wire_seconds = Latency(
            "captioner_capture_to_wire_seconds",
            "From an audio block's capture to its bytes being sent to the translator",
            ["input", "target"],
            CAPTURE_TO_WIRE_BUCKETS,
            r,
        )
        self.translator_connects = Counter(
            "captioner_translator_connects", "Connection attempts by result", ["input", "target", "result"], registry=r
        )
        self.translator_events = Tally("captioner_translator_events", "Server events received", ["input", "target"], r)
        self.translator_bad_events = Counter(
            "captioner_translator_bad_events",
            "Server frames survived but not understood, by reason",
            ["input", "target", "reason"],
            registry=r,
        )
        self.translator_errors = Counter(
            "captioner_translator_errors",
            "`error` events from the service, by code (known codes; the rest as other)",
            ["input", "target", "code"],
            registry=r,
        )
        self.translator_rotations = Counter(
            "captioner_translator_rotations",
            "Sessions replaced: age/context (planned) or watchdog (hung)",
            ["input", "target", "reason"],
            registry=r,
        )
        self.usage_tokens = Counter(
            "captioner_usage_tokens", "Tokens reported by the service", ["input", "target", "direction"], registry=r
        )
        self.captions_final = Counter("captioner_captions_final", "Final captions produced", ["language"], registry=r)
        self.captions_partial = Tally("captioner_captions_partial", "Partial caption updates received", ["language"], r)
        self.obs_writes = Counter("captioner_obs_writes", "OBS text writes by result", ["result"], registry=r)
        self.obs_write_seconds = Histogram(
            "captioner_obs_write_seconds",
            "Time for OBS to confirm a text change",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )
        self.stream_captions = Counter(
            "captioner_stream_captions",
            "CEA-608 stream caption pages: sent, not_live (OBS not streaming), skipped (burst), dropped (OBS away)",
            ["result"],
            registry=r,
        )
        self.final_to_screen_seconds = Latency(
            "captioner_final_to_screen_seconds",
            "From the translator's final-text frame arriving to OBS confirming the text change",
            [],
            FINAL_TO_SCREEN_BUCKETS,
            r,
        )
        self.billed_tokens = Counter(
            "captioner_billed_tokens",
            "Tokens the service reported, by billing kind (audio_in, text_in, image_in, text_out, audio_out)",
            ["input", "target", "kind"],
            registry=r,
        )
        self.cost_estimated = Counter(
            "captioner_cost_estimated",
            "Estimated cost from the billed tokens and cost.prices, in cost.currency",
            ["input", "target"],
            registry=r,
        )
        self.budget_spent = Gauge(
            "captioner_budget_spent", "Estimated spend in the current budget period", ["period"], registry=r
        )
        self.budget_paused = Gauge(
            "captioner_budget_paused", "1 while a reached budget holds the audio (0 otherwise)", registry=r
        )
        self.link_state = Gauge("captioner_link_up", "1 when the link is connected", ["link"], registry=r)
        self.transcript_errors = Counter(
            "captioner_transcript_write_errors", "Captions that could not be written to transcript files", registry=r
        )
        self.http_refused = Counter(
            "captioner_http_refused",
            "HTTP connections or requests turned away: host (Host not allowed), max_connections (the oldest idle one "
            "closed for a new one, or the new one when all were busy), timeout (no whole request in time), "
            "max_event_streams",
            ["reason"],
            registry=r,
        )
        self.http_accept_errors = Counter(
            "captioner_http_accept_errors",
            "Failed accept() on the HTTP port (e.g. out of file descriptors)",
            registry=r,
        )
        self.uptime = Gauge("captioner_uptime_seconds", "Seconds since start", registry=r)
        self.audio_level = Level("captioner_audio_level", "RMS level of the last chunk, 0..1", r)
        # The gate's effect on the bill: captured vs captioner_audio_sent_seconds (what the service bills).
        self.audio_captured_seconds = Tally(
            "captioner_audio_captured_seconds", "Audio seconds captured (sent or not)", [], r
        )
        # The physical limit of the bill: captured audio that the gate heard as speech.
        self.audio_speech_seconds = Tally(
            "captioner_audio_speech_seconds", "Captured audio seconds the gate heard as speech", [], r
        )
        # Client turns (gate.turns): sentences each session committed, cleared (no speech in them), or had nothing
        # of to commit (it joined after the sentence's audio, e.g. reconnecting).
        self.translator_turns = Tally(
            "captioner_translator_turns", "Sentence ends sent by the client, by kind", ["input", "target", "kind"], r
        )
        self.audio_gate_transitions = Counter(
            "captioner_audio_gate_transitions",
            "Audio gate state changes, by the state entered: open, closed, held",
            ["to"],
            registry=r,
        )
        self.audio_held_seconds = Tally(
            "captioner_audio_held_seconds",
            "Captured audio seconds not sent because something held the audio, by reason",
            ["reason"],
            r,
        )
        # Visual context (vision.py): OBS screenshots sent to the translator.
        self.vision_images = Counter(
            "captioner_vision_images_sent", "JPEG screenshots sent to the translator", ["input", "target"], registry=r
        )
        self.vision_image_bytes = Counter(
            "captioner_vision_image_bytes",
            "Bytes of JPEG screenshots sent (before base64)",
            ["input", "target"],
            registry=r,
        )
        self.vision_skipped = Counter(
            "captioner_vision_skipped",
            "Screenshot chances not taken, by reason: no_speech, not_connected, no_audio_yet, rate, unchanged, "
            "too_big, obs_error",
            ["reason"],
            registry=r,
        )
        self.vision_screenshot_seconds = Histogram(
            "captioner_vision_screenshot_seconds",
            "Time for OBS to answer GetSourceScreenshot, by image format (bmp thumbnail, jpg picture)",
            ["format"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 3),
            registry=r,
        )
        # Translated voice playback (voice.py), per played language.
        self.voice_played_seconds = Counter(
            "captioner_voice_played_seconds", "Seconds of translated voice played", ["language"], registry=r
        )
        self.voice_utterances = Counter(
            "captioner_voice_utterances",
            "Translated voice utterances by result: played, dropped (playback fell behind by more than max_buffer_s)",
            ["language", "result"],
            registry=r,
        )
        self.voice_buffer_seconds = Gauge(
            "captioner_voice_buffer_seconds", "Translated voice waiting to be played", ["language"], registry=r
        )
        self.voice_underruns = Counter(
            "captioner_voice_underruns",
            "Voice playback ran dry: mid-utterance (the service was behind) or device (PortAudio underflow)",
            ["language", "kind"],
            registry=r,
        )
        self.voice_device_errors = Counter(
            "captioner_voice_device_errors", "Voice output device failures", ["language"], registry=r
        )
        # Outputs that POST finals to a URL (outputs/posting.py: YouTube captions, webhooks), by output name.
        self.post_posted = Counter(
            "captioner_post_posted_captions", "Finals the endpoint took (answered 2xx)", ["output"], registry=r
        )
        self.post_retries = Counter(
            "captioner_post_retries", "POSTs sent again, unchanged and with the same seq", ["output"], registry=r
        )
        self.post_failed = Counter(
            "captioner_post_failed_requests",
            "POSTs that failed: an error, a time-out or a non-2xx answer",
            ["output"],
            registry=r,
        )
        self.post_skipped = Counter(
            "captioner_post_skipped_captions",
            "Finals given up on, by reason: too_old (max_age_s passed), queue_full, stopped (unsent at stop)",
            ["output", "reason"],
            registry=r,
        )
        self.post_last_status = Gauge(
            "captioner_post_last_status",
            "HTTP status of the last answer (0 = none: an error or time-out)",
            ["output"],
            registry=r,
        )
        self.youtube_clock_skew = Gauge(
            "captioner_youtube_clock_skew_seconds",
            "YouTube's clock minus this computer's, from the time in its last answer",
            ["output"],
            registry=r,
        )
