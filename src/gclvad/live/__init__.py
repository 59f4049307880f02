"""Live watching (`gclvad watch`): a trained run on camera streams, alerts without labels.

    source       a live video source (FFmpeg), reconnected with back-off
    segments     the decoding thread: frames into segments as the run's extractor wants them
    alerts       the alert threshold, causal smoothing, events with hysteresis
    calibration  training-score quantiles for runs that did not record them
    clips        a ring buffer of recent frames and the writer of event clips
    events       events.jsonl and each event's plot and clip
    outputs      scores.csv, the status line, the summary
    watcher      the scoring loop

This package file imports nothing.
"""
