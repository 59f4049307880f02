"""The watch listener contract: every listener hears every call; one that fails stops no other."""

import logging

from gclvad.live.listeners import Listeners, WatchListener


class Recorder(WatchListener):
    def __init__(self):
        self.calls = []

    def event(self, camera, record):
        self.calls.append((camera, record["event"], record["state"]))

    def close(self):
        self.calls.append("closed")


class Broken(WatchListener):
    def event(self, camera, record):
        raise ConnectionError("sink down")


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    first, last = Recorder(), Recorder()
    listeners = Listeners([first, Broken(), last])
    with caplog.at_level(logging.ERROR, logger="gclvad.live.listeners"):
        listeners.event("gate", {"event": 1, "state": "open"})
        listeners.event("gate", {"event": 1, "state": "closed"})
        listeners.segment_scored("gate", {"segment": 0})  # not overridden: ignored
        listeners.close()
    expected = [("gate", 1, "open"), ("gate", 1, "closed"), "closed"]
    assert first.calls == expected and last.calls == expected
    assert caplog.text.count("watch listener Broken failed in event") == 2
