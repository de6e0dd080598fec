"""Where captions go: one module per kind of output, each a CaptionSink that the router fans captions out to."""
