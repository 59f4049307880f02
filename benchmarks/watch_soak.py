"""Live watching for days, not minutes: a soak of `gclvad watch` with several cameras, stream
drops and a sink outage; its memory over time, every segment and every event accounted for.

What it sets up, all on 127.0.0.1:
  * a small trained run (autoencoder) of the tests' tiny extractor (tests/watch_support.py: a
    seeded random 3-D convolution, 16-d features), so that the CPU keeps up with several 25 fps
    cameras: the point is memory, accounting and delivery over time, not the network's speed;
  * N cameras: each a sender process (this script's --send mode, as tests/stream_sender.py but
    looping for ever with continuous timestamps) playing its own MPEG-TS video in real time to a
    UDP port; the video loops every `loop` seconds and has a flat magenta picture planted every
    `plant` seconds (an event each time); the sender keeps the count of frames it sent in a file;
  * a webhook receiver process (--receive mode) that appends the Idempotency-Key of every POST it
    accepts to a file;
  * the watch: a process (--watch-child mode) doing what `gclvad watch RUN udp://... --webhook URL`
    does (the same watch(), sinks and SIGTERM handling), with the tiny extractor.

Meanwhile, on a schedule printed at the start: every few minutes one camera's sender is killed
(SIGKILL) for 20-40 s and started again (a stream drop: the watcher reconnects); once or twice
the webhook receiver is killed for about 2 minutes and started again (a sink outage: the outbox
fills, then empties). The watch process's RSS (and the outbox's size) is sampled every
`--sample-s` seconds into rss.csv. At the end the senders are stopped, then the watch (SIGTERM:
a clean stop), then the receiver, and it checks and prints: per camera frames sent and decoded,
segments formed = scored + dropped + unscored at stop, reconnections against the drops caused;
events in events.jsonl against the ids the webhook received (each at least once; duplicates
counted and listed), the outbox empty; RSS after the warm-up, its maximum, at the end, and its
slope (least squares, MiB per hour). Exit status 0 when every check holds, 1 otherwise; the
figures also go to WORK/soak-<time>/result.json.

Usage: .venv/bin/python benchmarks/watch_soak.py [--minutes 30] [--cameras 3] [--work DIR]
Quick (about 1.5 minutes, one drop and one outage scaled down): --minutes 1 --cameras 2.
Every process it starts is stopped by its pid at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()
TESTS = HERE.parents[1] / "tests"
SEGMENT = 16
MIB = 2**20


# ---------------------------------------------------------------- the camera: a looping sender (light imports)


def send_forever(source: Path, url: str, count_file: Path) -> None:
    """Send `source` (MPEG-TS) to `url` in real time, looping with continuous timestamps, until
    SIGTERM; the number of frames sent so far is kept in `count_file` (rewritten in place after
    every frame, so that it holds even after a SIGKILL)."""
    import av  # only PyAV: the sender starts at once

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    handle = os.open(count_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sent = 0
    try:
        with av.open(str(source)) as reader:
            video = reader.streams.video[0]
            # the packets' bytes and times (a muxed packet is consumed: each send makes new ones)
            packets = [
                (bytes(packet), packet.pts, packet.dts, packet.is_keyframe)
                for packet in reader.demux(video)
                if packet.dts is not None
            ]
            with av.open(url, "w", format="mpegts") as writer:
                out = writer.add_stream_from_template(video)
                time_base = video.time_base
                rate = video.average_rate or video.guessed_rate
                step = round(1 / (float(rate) * float(time_base)))  # one frame in the stream's time base
                first = min(dts for _, _, dts, _ in packets)
                length = max(dts for _, _, dts, _ in packets) - first + step  # one loop of the video
                started, loop = time.monotonic(), 0
                while not stopping:
                    for data, pts, dts, keyframe in packets:
                        if stopping:
                            break
                        offset = loop * length - first
                        delay = started + float((dts + offset) * time_base) - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        packet = av.Packet(data)
                        packet.pts, packet.dts = pts + offset, dts + offset
                        packet.time_base, packet.is_keyframe, packet.stream = time_base, keyframe, out
                        writer.mux(packet)
                        sent += 1
                        os.pwrite(handle, f"{sent:>12d}\n".encode(), 0)
                    loop += 1
    finally:
        os.pwrite(handle, f"{sent:>12d}\n".encode(), 0)
        os.close(handle)


# ---------------------------------------------------------------- the webhook receiver (light imports)


def receive(port: int, log: Path) -> None:
    """Accept POSTs on 127.0.0.1:port, appending each one's Idempotency-Key (and when) to `log`
    before answering 204."""
    import http.server

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            line = json.dumps({"key": self.headers["Idempotency-Key"], "at": time.time()})
            with open(log, "a") as out:
                out.write(line + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    def interrupt(*_):
        raise KeyboardInterrupt

    server = http.server.HTTPServer(("127.0.0.1", port), Hook)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ---------------------------------------------------------------- the watch (the child process)


def watch_child(config_path: Path) -> int:
    """What `gclvad watch RUN udp://... --webhook URL` does, with the tests' tiny extractor."""
    import contextlib
    import logging
    import threading
    import warnings

    import torch

    sys.path.insert(0, str(TESTS))
    from watch_support import tiny_extractor

    from gclvad.cli.watch import exit_status, stop_on_signals
    from gclvad.extract.networks.base import RandomWeightsWarning
    from gclvad.live.cameras import Camera
    from gclvad.live.listeners import Listeners
    from gclvad.live.sinks import build_sinks
    from gclvad.live.source import SourceSettings
    from gclvad.live.watcher import WatchSettings, watch

    warnings.simplefilter("ignore", RandomWeightsWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    config = json.loads(config_path.read_text())
    out = Path(config["out"])
    source = SourceSettings(read_timeout_s=2.0, open_timeout_s=5.0, max_backoff_s=2.0)
    settings = WatchSettings(threshold=config["threshold"], hold_s=2.0, source=source)
    cameras = [Camera(name, f"udp://127.0.0.1:{port}") for name, port in config["cameras"].items()]
    stop = threading.Event()
    listeners = Listeners(build_sinks([("webhook", config["webhook"], {"timeout_s": 2.0})], out))
    with contextlib.closing(listeners), stop_on_signals(stop):
        summary = watch(
            config["run"], cameras, out, settings, extractor=tiny_extractor(), stop=stop, listeners=listeners
        )
    return exit_status(summary)


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What happens when (seconds since the senders started)."""

    seconds: float
    loop_s: float  # a camera's video loops after this long
    plant_every_s: float  # a planted picture (an event) this often
    plant_frames: int
    drops: list[tuple[float, float, int]]  # (at, for, camera index): a sender killed, then restarted
    outages: list[tuple[float, float]]  # (at, for): the webhook receiver killed, then restarted
    warmup_s: float  # RSS "at the start" is the first sample after this
    sample_s: float


def make_plan(minutes: float, cameras: int, seed: int = 0) -> Plan:
    """Long runs: a drop every 5 minutes (20-40 s, cameras in turn), two 2-minute outages (at a
    third and two thirds); short ones (under 10 minutes) the same scaled down: one drop, one outage."""
    import numpy as np

    seconds = minutes * 60
    rng = np.random.default_rng(seed)
    if seconds >= 600:
        times = np.arange(150.0, seconds - 60, 300.0)
        drops = [(float(at), float(rng.uniform(20, 40)), k % cameras) for k, at in enumerate(times)]
        outages = [(round(seconds / 3), 120.0), (round(2 * seconds / 3), 120.0)]
        return Plan(seconds, 60.0, 30.0, 32, drops, outages, warmup_s=120.0, sample_s=10.0)
    drops = [(0.2 * seconds, max(5.0, 0.15 * seconds), 0)]
    outages = [(0.45 * seconds, max(10.0, 0.25 * seconds))]
    return Plan(seconds, 20.0, 10.0, 32, drops, outages, warmup_s=0.15 * seconds, sample_s=2.0)


# ---------------------------------------------------------------- the run and the videos


def textured(count: int, size: tuple[int, int], seed: int, planted: set[int]):
    sys.path.insert(0, str(TESTS))
    import numpy as np
    from watch_support import textured_frames

    magenta = np.array((255, 0, 255), np.uint8)
    for index, frame in enumerate(textured_frames(count, size, seed=seed)):
        yield np.broadcast_to(magenta, frame.shape).copy() if index in planted else frame


def trained_run(work: Path, size: tuple[int, int]) -> tuple[Path, float]:
    """The tiny autoencoder run (reused from WORK/run when there) and an alert threshold half way
    (in log) between its training scores' maximum and the planted picture's score."""
    import numpy as np

    sys.path.insert(0, str(TESTS))
    from watch_support import tiny_extractor, train_run, write_ts

    from gclvad.extract.one_video import compute_features
    from gclvad.gcl.store import load_models, read_models_metadata, score

    extractor = tiny_extractor()
    base = work / "run"
    run = base / "results" / "demo" / extractor.name / "AE_AllData" / "seed0"
    if not (run / "models.pt").exists():
        videos = {
            f"train{i}": (write_ts(base / f"train{i}.ts", textured(64, size, i, set())), "train") for i in range(3)
        }
        videos["test0"] = (write_ts(base / "test0.ts", textured(64, size, 9, set())), "test")
        run = train_run(base, extractor, videos, variant="AE_AllData")
    planted = write_ts(base / "planted.ts", textured(SEGMENT, size, 0, set(range(SEGMENT))))
    features = compute_features(extractor, planted, SEGMENT, 1)[0].astype(np.float16).astype(np.float32)
    planted_score = float(score(load_models(run / "models.pt"), features)["score"][0])
    highest = read_models_metadata(run / "models.pt")["training_score_quantiles"]["max"]
    if not planted_score > highest:
        raise RuntimeError(f"the planted picture scores {planted_score:.4g}, not above training's {highest:.4g}")
    threshold = float(np.sqrt(highest * planted_score))
    print(
        f"run {run}: training scores up to {highest:.4g}, planted picture {planted_score:.4g}; "
        f"threshold {threshold:.4g}"
    )
    return run, threshold


def camera_video(work: Path, k: int, plan: Plan, fps: int, size: tuple[int, int]) -> tuple[Path, list[int]]:
    """Camera k's looping video (reused when there) and the first frames of its plants (each
    camera's shifted, so that events do not all come at once)."""
    sys.path.insert(0, str(TESTS))
    from watch_support import write_ts

    frames = int(plan.loop_s * fps)
    every = int(plan.plant_every_s * fps)
    shift = (every // 2 + k * every // (2 * 3) + 7 * k) % every
    plants = list(range(shift, frames - plan.plant_frames, every))
    planted = {f for start in plants for f in range(start, start + plan.plant_frames)}
    name = f"camera{k}_{size[1]}x{size[0]}_{fps}fps_{frames}f_{'-'.join(map(str, plants))}.ts"
    path = work / "videos" / name
    if not path.exists():
        write_ts(
            path.with_suffix(".partial.ts"), textured(frames, size, 20 + k, planted), fps=fps, gop=fps, codec="mpeg4"
        )
        path.with_suffix(".partial.ts").rename(path)
    return path, plants


# ---------------------------------------------------------------- the processes it starts


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def udp_listening(port: int) -> bool:
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        path = Path(table)
        if path.exists() and any(line.split()[1].endswith(wanted) for line in path.read_text().splitlines()[1:]):
            return True
    return False


def tcp_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition, timeout_s: float, what: str, step_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s:g} s")
        time.sleep(step_s)


def stop_process(process: subprocess.Popen | None, timeout_s: float = 10.0, kill: bool = False) -> None:
    """Stop one process we started, by its pid: SIGTERM (or SIGKILL), then SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Camera:
    """One camera: its video, its UDP port and its sender processes (one per connection)."""

    def __init__(self, name: str, video: Path, plants: list[int], port: int, folder: Path):
        self.name, self.video, self.plants, self.port, self.folder = name, video, plants, port, folder
        self.process: subprocess.Popen | None = None
        self.counts: list[Path] = []
        self.drops = 0

    def start(self) -> None:
        # only once the watcher listens again: a sender started before would talk to no one
        wait_for(lambda: udp_listening(self.port), 120, f"{self.name}: watcher listening on UDP {self.port}", 0.05)
        count = self.folder / f"{self.name}_sent_{len(self.counts)}.txt"
        self.counts.append(count)
        url = f"udp://127.0.0.1:{self.port}?pkt_size=1316"
        self.process = subprocess.Popen([sys.executable, str(HERE), "--send", str(self.video), url, str(count)])

    def drop(self) -> None:
        stop_process(self.process, kill=True)
        self.drops += 1

    def sent(self) -> int:
        return sum(int(path.read_text().strip() or 0) for path in self.counts if path.exists())


class Receiver:
    def __init__(self, port: int, log: Path):
        self.port, self.log, self.process, self.outages = port, log, None, 0

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(HERE), "--receive", str(self.port), str(self.log)])
        wait_for(lambda: tcp_open(self.port), 30, "webhook receiver listening")

    def kill(self) -> None:
        stop_process(self.process, kill=True)
        self.outages += 1

    def keys(self) -> list[str]:
        return [json.loads(line)["key"] for line in self.log.read_text().splitlines()] if self.log.exists() else []


def rss_mib(pid: int) -> float:
    """A process's resident set (psutil if there, else /proc/PID/status VmRSS)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / MIB
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS in /proc/{pid}/status") from None


def outbox_size(out: Path) -> int:
    return sum(1 for _ in (out / "outbox").glob("*/" + "[0-9]" * 12 + ".json"))


# ---------------------------------------------------------------- the soak


def soak(args) -> int:
    import numpy as np

    sys.path.insert(0, str(HERE.parent))
    from machine import describe

    print(describe())
    print(f"benchmark process {os.getpid()}; python {sys.version.split()[0]}")
    plan = make_plan(args.minutes, args.cameras, args.seed)
    size = (args.height, args.width)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    folder = work / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir()
    out = folder / "watch"
    print(
        "network: tiny3d (tests/watch_support.py tiny_extractor: a seeded random Conv3d 3->16, stride 2, "
        "global pooling; 16-d features of 32x32 crops), run AE_AllData, torch threads 1 in the watch process"
    )
    run, threshold = trained_run(work, size)
    cameras = []
    for k in range(args.cameras):
        video, plants = camera_video(work, k, plan, args.fps, size)
        cameras.append(Camera(f"cam{k + 1}", video, plants, free_port(socket.SOCK_DGRAM), folder))
    receiver = Receiver(free_port(socket.SOCK_STREAM), folder / "received.jsonl")
    print(
        f"{args.cameras} cameras, {size[1]}x{size[0]} mpeg4 at {args.fps} fps over UDP on 127.0.0.1, each a "
        f"{plan.loop_s:g} s loop with a {plan.plant_frames}-frame planted picture every {plan.plant_every_s:g} s; "
        f"{args.minutes:g} minutes"
    )
    print(
        "stream drops (at s, for s, camera): " + ", ".join(f"({a:.0f}, {d:.0f}, cam{c + 1})" for a, d, c in plan.drops)
    )
    print("webhook outages (at s, for s): " + ", ".join(f"({a:.0f}, {d:.0f})" for a, d in plan.outages))
    config = folder / "watch.json"
    config.write_text(
        json.dumps(
            {
                "run": str(run),
                "out": str(out),
                "threshold": threshold,
                "webhook": f"http://127.0.0.1:{receiver.port}/hook",
                "cameras": {camera.name: camera.port for camera in cameras},
            }
        )
    )
    log_path = folder / "watch.log"
    watcher: subprocess.Popen | None = None
    samples: list[tuple[float, float, int, int]] = []  # (s since the start, RSS MiB, outbox records, receiver up)
    outbox_peak = 0
    try:
        receiver.start()
        with open(log_path, "w") as log_file:
            watcher = subprocess.Popen(
                [sys.executable, str(HERE), "--watch-child", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
        print(f"watch process {watcher.pid}, log {log_path}")
        for camera in cameras:
            camera.start()
        started = time.monotonic()
        events = sorted(
            [(at, "drop", k) for at, _, k in plan.drops]
            + [(at + d, "restart", k) for at, d, k in plan.drops]
            + [(at, "outage", -1) for at, _ in plan.outages]
            + [(at + d, "back", -1) for at, d in plan.outages]
        )
        next_sample = 0.0
        while (now := time.monotonic() - started) < plan.seconds:
            if watcher.poll() is not None:
                raise RuntimeError(f"the watch process ended early (exit {watcher.returncode}); see {log_path}")
            while events and events[0][0] <= now:
                _, what, k = events.pop(0)
                if what == "drop":
                    cameras[k].drop()
                elif what == "restart":
                    cameras[k].start()
                elif what == "outage":
                    receiver.kill()
                else:
                    receiver.start()
                print(f"  {now:7.1f} s: {what} {cameras[k].name if k >= 0 else 'webhook receiver'}", flush=True)
            if now >= next_sample:
                pending = outbox_size(out)
                outbox_peak = max(outbox_peak, pending)
                up = int(receiver.process is not None and receiver.process.poll() is None)
                samples.append((round(now, 1), round(rss_mib(watcher.pid), 2), pending, up))
                next_sample += plan.sample_s
            time.sleep(min(0.5, plan.sample_s / 4))
        for _, what, k in events:  # a restart or a return scheduled after the end
            if what == "restart" and (cameras[k].process is None or cameras[k].process.poll() is not None):
                cameras[k].start()
            elif what == "back" and (receiver.process is None or receiver.process.poll() is not None):
                receiver.start()
        # The senders first, then (within the read timeout, so no stream counts as lost) the watch.
        for camera in cameras:
            stop_process(camera.process)
        time.sleep(0.5)
        watched_s = time.monotonic() - started
        samples.append((round(watched_s, 1), round(rss_mib(watcher.pid), 2), outbox_size(out), 1))
        watcher.send_signal(signal.SIGTERM)
        watch_exit = watcher.wait(timeout=120)
    finally:
        for camera in cameras:
            stop_process(camera.process, kill=True)
        stop_process(watcher, timeout_s=30)
        if receiver.process is not None:
            time.sleep(0.5)  # the sinks' last deliveries are done when the watch has exited
            stop_process(receiver.process)
    with open(folder / "rss.csv", "w") as csv:
        csv.write("seconds,rss_mib,outbox_records,receiver_up\n")
        csv.writelines(",".join(map(str, sample)) + "\n" for sample in samples)
    return report(args, plan, folder, out, cameras, receiver, samples, outbox_peak, watch_exit, watched_s, np)


def report(args, plan, folder, out, cameras, receiver, samples, outbox_peak, watch_exit, watched_s, np) -> int:
    from gclvad.live.outbox import record_id

    checks: list[tuple[str, bool]] = []
    summary = json.loads((out / "summary.json").read_text())
    print(f"\nwatched {watched_s / 60:.1f} minutes; the watch process exited {watch_exit}")
    checks.append(("the watch exited 0 after SIGTERM", watch_exit == 0))
    expected: list[str] = []
    rows = []
    for camera in cameras:
        s = summary["cameras"][camera.name]
        sent = camera.sent()
        tail = (
            s["frames"]
            - SEGMENT * s["segments"]
            - (s["dropped_frames"] - SEGMENT * s["dropped_segments"])
            - s["lost_frames"]
        )
        accounted = s["segments"] == s["scored_segments"] + s["dropped_segments"] + s["unscored_at_stop"]
        records = [json.loads(line) for line in (out / camera.name / "events.jsonl").read_text().splitlines()]
        expected += [record_id(camera.name, record) for record in records]
        opened = sum(record["state"] == "open" for record in records)
        closed = sum(record["state"] == "closed" for record in records)
        rows.append(
            {
                "camera": camera.name,
                "frames_sent": sent,
                "frames_decoded": s["frames"],
                "not_decoded": sent - s["frames"],
                "segments": s["segments"],
                "scored": s["scored_segments"],
                "dropped": s["dropped_segments"],
                "unscored_at_stop": s["unscored_at_stop"],
                "frames_lost_in_breaks": s["lost_frames"],
                "partial_at_stop": tail,
                "drops_caused": camera.drops,
                "reconnects": s["reconnects"],
                "events_opened": opened,
                "events_closed": closed,
                "stopped_by": s["stopped_by"],
            }
        )
        checks.append(
            (f"{camera.name}: frames sent, segments scored, events raised", min(sent, s["scored_segments"], opened) > 0)
        )
        checks.append((f"{camera.name}: segments = scored + dropped + unscored at stop", accounted))
        checks.append(
            (f"{camera.name}: frames decoded = 16 x segments + lost in breaks + partial (< 16)", 0 <= tail < SEGMENT)
        )
        checks.append((f"{camera.name}: no more frames decoded than sent", s["frames"] <= sent))
        checks.append((f"{camera.name}: reconnections >= drops caused", s["reconnects"] >= camera.drops))
        checks.append((f"{camera.name}: every opened event closed", opened == closed))
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))
    received = receiver.keys()
    counts: dict[str, int] = {}
    for key in received:
        counts[key] = counts.get(key, 0) + 1
    missing = [key for key in expected if key not in counts]
    duplicates = {key: n for key, n in counts.items() if n > 1}
    unexpected = [key for key in counts if key not in set(expected)]
    left = outbox_size(out)
    print(
        f"\nevents: {len(expected)} records in events.jsonl; the webhook received {len(received)} POSTs, "
        f"{len(counts)} distinct ids; missing {len(missing)}, duplicated {len(duplicates)}, unknown {len(unexpected)}; "
        f"{receiver.outages} receiver outages, outbox at most {outbox_peak} records, {left} left at the end"
    )
    for key in missing:
        print(f"  missing: {key}")
    for key, n in duplicates.items():
        print(f"  received {n} times: {key}")
    for key in unexpected:
        print(f"  not in events.jsonl: {key}")
    checks.append(("every event record delivered (at least once)", not missing))
    checks.append(("nothing delivered that is not in events.jsonl", not unexpected))
    checks.append(("the outbox is empty at the end", left == 0))
    checks.append(("the outbox filled during an outage", outbox_peak > 0 or not expected))

    times = np.array([sample[0] for sample in samples])
    rss = np.array([sample[1] for sample in samples])
    after = times >= plan.warmup_s
    start = float(rss[after][0]) if after.any() else float("nan")
    slope = float(np.polyfit(times[after] / 3600, rss[after], 1)[0]) if after.sum() >= 3 else float("nan")
    # A leak grows for ever; allocators and caches grow for a while and stop: the second half tells them apart.
    late = times >= times[-1] / 2
    late_slope = float(np.polyfit(times[late] / 3600, rss[late], 1)[0]) if late.sum() >= 3 else float("nan")
    late_growth = float(rss[late].max() - rss[late][0])
    figures = {
        "rss_first_mib": round(float(rss[0]), 1),
        "rss_start_mib": round(start, 1),
        "rss_max_mib": round(float(rss[after].max()), 1) if after.any() else None,
        "rss_end_mib": round(float(rss[-1]), 1),
        "rss_slope_mib_per_h": round(slope, 2),
        "rss_second_half_growth_mib": round(late_growth, 1),
        "rss_second_half_slope_mib_per_h": round(late_slope, 2),
        "samples": len(samples),
    }
    print(
        f"\nRSS of the watch process ({len(samples)} samples every {plan.sample_s:g} s, {folder / 'rss.csv'}): "
        f"{figures['rss_first_mib']} MiB at the first sample, {figures['rss_start_mib']} MiB after the "
        f"{plan.warmup_s:g} s warm-up, max {figures['rss_max_mib']} MiB, end {figures['rss_end_mib']} MiB; slope "
        f"{figures['rss_slope_mib_per_h']} MiB/hour (least squares after the warm-up); over the second half "
        f"(from {times[late][0]:.0f} s) it grew {figures['rss_second_half_growth_mib']} MiB, slope "
        f"{figures['rss_second_half_slope_mib_per_h']} MiB/hour"
    )
    bound = args.rss_growth_mib
    checks.append((f"RSS grew less than {bound:g} MiB after the warm-up", figures["rss_max_mib"] - start < bound))
    if plan.seconds >= 600:  # a short run's second half is still its warm-up
        checks.append((f"RSS grew less than {bound / 4:g} MiB over the second half", late_growth < bound / 4))
    print()
    for text, held in checks:
        print(f"  {'ok  ' if held else 'FAIL'} {text}")
    passed = all(held for _, held in checks)
    print("all checks hold" if passed else "SOME CHECKS FAILED")
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    result = {
        "cameras": rows,
        "records": len(expected),
        "received": len(received),
        "missing": missing,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "outbox_peak": outbox_peak,
        "outbox_left": left,
        **figures,
        "checks": {text: held for text, held in checks},
        "passed": passed,
    }
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    print(f"figures in {folder / 'result.json'}")
    return 0 if passed else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        send_forever(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--receive":
        receive(int(sys.argv[2]), Path(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--watch-child":
        return watch_child(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to watch (under 10: a scaled-down plan)")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0, help="of the drops' lengths")
    parser.add_argument(
        "--rss-growth-mib",
        type=float,
        default=64.0,
        help="the checks' bounds: RSS growth after the warm-up below this, over the second half below a quarter of it",
    )
    parser.add_argument("--work", type=Path, help="reuse the run and videos here (default: a temporary folder)")
    args = parser.parse_args()
    if args.cameras < 1 or args.minutes <= 0:
        parser.error("--cameras must be at least 1 and --minutes positive")
    if args.work is None:
        import tempfile

        with tempfile.TemporaryDirectory() as temporary:
            args.work = Path(temporary)
            return soak(args)
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
