"""Live watching (`gclvad watch`): a trained run on camera streams, alerts without labels.

    source       a live video source (FFmpeg), reconnected with back-off
    segments     the decoding thread: frames into segments as the run's extractor wants them
    threshold    the alert threshold: where it comes from
    alerts       causal smoothing, events with hysteresis
    calibration  `gclvad calibrate`: training-score quantiles for runs that did not record them
    clips        a ring buffer of recent frames and the writer of event clips
    events       events.jsonl and each event's plot and clip
    outputs      scores.csv, the status line, the summary
    listeners    what a watch tells sinks and the web page as it goes (the contract)
    outbox       a sink's on-disk outbox and delivery thread; the Sink base class
    mqtt         the MQTT sink: topics, payloads, Home Assistant discovery
    sinks        webhook and command sinks; --mqtt/--webhook/--on-event and a camera file's sinks:
    cameras      the watch's settings, its cameras, the camera file (--cameras)
    camera_watch one camera of a watch: its decoding, alerts, files, status
    web          the live page of `gclvad watch --http` (a listener) and its options
    web_server   the pages' aiohttp server: its own thread and loop, the token beyond loopback
    web_results  the page of finished results (`gclvad view`): scores, truth, transcoded videos
    watcher      the scoring loop: every camera's segments in shared batches, round-robin

This package file imports nothing.
"""
