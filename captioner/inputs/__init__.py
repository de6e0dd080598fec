"""What comes in: capture backends, PCM conversion and levels, the speech gate, and the feed to the sessions."""
