"""Test helpers that are not tests: the fake translator, real OBS/PulseAudio/Chromium harnesses, shared fakes."""
