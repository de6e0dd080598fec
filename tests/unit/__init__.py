"""Unit tests: no real OBS, PulseAudio or Chromium (the fake translator and loopback sockets are fine)."""
