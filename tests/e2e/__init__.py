"""End-to-end tests: real OBS, PulseAudio, Chromium and audio; marked e2e, they fail (never skip) without them."""
