"""Send an MPEG-TS file to a UDP address in real time, as `ffmpeg -re -i FILE -c copy -f mpegts URL`
would: a camera for the live-scoring tests. It imports only PyAV so that it starts at once.

    python tests/stream_sender.py SOURCE URL [SPEED]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import av


def send(source: Path, url: str, speed: float = 1.0) -> None:
    """Send the packets of an MPEG-TS file to `url` (e.g. udp://127.0.0.1:5000) at `speed`
    times its frame rate, as `ffmpeg -re -i source -c copy -f mpegts url` does."""
    with av.open(str(source)) as reader, av.open(url, "w", format="mpegts") as writer:
        video = reader.streams.video[0]
        out = writer.add_stream_from_template(video)
        started, first = time.monotonic(), None
        for packet in reader.demux(video):
            if packet.dts is None:
                continue
            first = packet.dts if first is None else first
            due = started + float((packet.dts - first) * video.time_base) / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            packet.stream = out
            writer.mux(packet)


if __name__ == "__main__":
    send(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
