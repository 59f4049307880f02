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
    cameras      the watch's settings, its cameras, the camera file (--cameras)
    camera_watch one camera of a watch: its decoding, alerts, files, status
    watcher      the scoring loop: every camera's segments in shared batches, round-robin

This package file imports nothing.
"""
