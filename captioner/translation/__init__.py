"""The Qwen livetranslate link: wire dialects and frames, event interpretation, sessions, reconnect policy."""
