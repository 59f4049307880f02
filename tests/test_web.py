"""The web pages of `gclvad watch --http` and `gclvad view`, in a real browser (Debian's chromium,
driven by selenium through the system chromedriver; .ci/install-browser.sh installs them).

Set GCLVAD_WEB_SCREENSHOTS=/some/folder to keep a screenshot of each page.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gclvad.errors import GclvadError
from gclvad.live.clips import ClipWriter, FrameRing
from gclvad.live.web import LivePage
from gclvad.live.web_results import find_collections
from gclvad.scoring.frames import write_scores
from gclvad.stages.preparation import index_dataset

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FPS = 25
_WAIT_S = 30.0  # the longest any page condition is waited for


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(argument)  # --no-sandbox: CI runs as root
    # The driver's path given: selenium never tries to download one.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, what: str, timeout_s: float = _WAIT_S):
    """Poll `condition` (bounded in time); its first truthy value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout_s} s for {what}")


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("GCLVAD_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def video_plays(driver, css: str) -> None:
    """The video element at `css` has decoded data and its time advances when played."""
    ready = "const v = document.querySelector(arguments[0]); return v ? v.readyState : -1;"
    wait_for(lambda: driver.execute_script(ready, css) >= 2, f"{css} to load (readyState >= 2)")
    driver.execute_script("const v = document.querySelector(arguments[0]); v.muted = true; v.play();", css)
    now = "return document.querySelector(arguments[0]).currentTime;"
    wait_for(lambda: driver.execute_script(now, css) > 0.2, f"{css} to play")
    error = driver.execute_script("const e = document.querySelector(arguments[0]).error; return e && e.code;", css)
    assert error is None


def textured(count: int, size=(96, 128), seed=0):
    rng = np.random.default_rng(seed)
    texture = rng.integers(40, 200, (size[0] * 2, size[1] * 2, 3), dtype=np.uint8)
    for i in range(count):
        yield np.ascontiguousarray(texture[(2 * i) % size[0] :][: size[0], (3 * i) % size[1] :][:, : size[1]])


# ---------------------------------------------------------------- the live page


def make_clip(path: Path, frames: int = 50) -> Path:
    """An event clip as the watch makes it: frames through a FrameRing into a ClipWriter."""
    import av

    ring = FrameRing(keep_s=60.0, max_bytes=1 << 28)
    for index, pixels in enumerate(textured(frames)):
        ring.append(index, index / FPS, av.VideoFrame.from_ndarray(pixels, format="rgb24"))
    writer = ClipWriter(path, 0.0, FPS)
    writer.until_s = (frames - 1) / FPS
    writer.pump(ring)
    return writer.finish()


def segment_row(segment: int, score: float, alert: int) -> dict:
    """A segment_scored row as the watcher passes it (16-frame segments at 25 fps)."""
    first = segment * 16
    return {
        "segment": segment, "first_frame": first, "last_frame": first + 15,
        "stream_start_s": first / FPS, "stream_end_s": (first + 16) / FPS, "unix_time": 1.8e9 + segment,
        "latency_s": 0.4, "score": score, "d": 1 - score, "g": score * 2, "alert": alert,
    }  # fmt: skip


def points_drawn(driver) -> int:
    return int(
        driver.execute_script(
            "const c = document.querySelector('canvas.live-curve'); return c ? Number(c.dataset.points) : 0;"
        )
    )


def test_live_page_draws_scores_as_they_come_lists_events_and_plays_their_clip(browser, tmp_path):
    clip = make_clip(tmp_path / "events" / "event_0001.mp4")
    page = LivePage("127.0.0.1", 0).start()
    try:
        info = {"run": "run", "source": "udp://@:5000", "threshold": {"value": 0.6, "origin": "test", "quantile": 0.99},
                "segment_length": 16, "fps": FPS, "out_dir": str(tmp_path)}  # fmt: skip
        page.camera_started("gate", info)
        browser.get(page.url)
        seen = []
        for segment in range(40):  # normal, then an alert from segment 20 to 27
            alert = 1 if 20 <= segment < 28 else 0
            if segment == 20:
                page.event("gate", {"event": 1, "state": "open", "threshold": 0.6, "start_s": 12.8, "peak_score": 0.9})
            page.segment_scored("gate", segment_row(segment, 0.9 if alert else 0.3, alert))
            counts = {"frames": 16 * (segment + 1), "segments": segment + 1, "dropped_segments": 1, "reconnects": 2}
            page.status("gate", {**counts, "fps_in": 25.0, "latency_s": 0.4, "alerting": bool(alert)})
            if segment in (5, 22, 39):
                seen.append(
                    wait_for(lambda n=segment + 1: points_drawn(browser) >= n and points_drawn(browser), "points")
                )
            if segment == 22:
                alert_text = browser.find_element("css selector", "section.camera p.alert").text
                assert "ALERT 1" in alert_text
        assert seen[0] < seen[1] < seen[2] == 40
        closed = {"event": 1, "state": "closed", "threshold": 0.6, "start_s": 12.8, "end_s": 17.92,
                  "peak_score": 0.9, "closed_by": "score below", "plot": "events/event_0001.png",
                  "clip": str(clip.relative_to(tmp_path))}  # fmt: skip
        page.event("gate", closed)
        wait_for(lambda: browser.find_elements("css selector", ".event[data-event='1'] video"), "the event's clip")
        status = browser.find_element("css selector", "section.camera p.status").text
        assert "in 25.0 fps" in status and "latency 0.40 s" in status and "reconnections 2" in status
        assert "dropped 1 segments" in status
        event_points = browser.execute_script("return document.querySelector('.event canvas').dataset.points")
        assert int(event_points) >= 8  # the alert's eight segments and some before it
        video_plays(browser, ".event[data-event='1'] video")
        screenshot(browser, "live")
    finally:
        page.close()
    with pytest.raises(urllib.error.URLError):  # stopped: nothing listens any more
        urllib.request.urlopen(page.url, timeout=2)


# ---------------------------------------------------------------- the results page


def finished_run(folder: Path) -> tuple[Path, dict]:
    """A workflow run folder with real functions: MPEG-4 Part 2 videos (what the demo writes),
    its dataset's index and annotations, and the run's scores.h5; returns (run, frames)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from watch_support import write_ts

    dataset = folder / "results" / "demo"
    videos = {"street": 75, "lobby": 48}
    rows = []
    for video, frames in videos.items():
        path = write_ts(dataset / "videos" / f"{video}.ts", textured(frames, seed=len(video)), fps=FPS, codec="mpeg4")
        rows.append((video, str(path), "test"))
    pd.DataFrame(rows, columns=["video", "path", "split"]).to_csv(dataset / "videos" / "videos.csv", index=False)
    pd.DataFrame([("street", 30, 50)], columns=["video", "start_frame", "end_frame"]).to_csv(
        dataset / "videos" / "annotations.csv", index=False
    )
    spec = {"format": "generic", "manifest": str(dataset / "videos" / "videos.csv")}
    spec["annotations"] = str(dataset / "videos" / "annotations.csv")
    index_dataset(spec=spec, segment_length=16, on_bad_video="stop", out_path=dataset / "segments.tsv")
    run = dataset / "tiny" / "GCL_B" / "seed0"
    run.mkdir(parents=True)
    scores = {v: {"score": np.linspace(0, 1, n), "score_raw": np.linspace(0, 1, n)} for v, n in videos.items()}
    write_scores(run / "scores.h5", scores)
    return run, videos


def test_view_lists_the_videos_plays_them_transcoded_under_their_scores_and_shades_truth(browser, tmp_path):
    run, frames = finished_run(tmp_path)
    command = [str(Path(sys.executable).with_name("gclvad")), "view", str(run), "--http", "127.0.0.1:0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        browser.get(url)
        buttons = wait_for(lambda: browser.find_elements("css selector", "#videos button"), "the video list")
        assert sorted(b.get_attribute("data-video") for b in buttons) == sorted(frames)
        browser.find_element("css selector", "#videos button[data-video='street']").click()
        curve = "return document.getElementById('curve').dataset"
        wait_for(lambda: browser.execute_script(curve).get("points") == str(frames["street"]), "the curve")
        assert browser.execute_script(curve)["spans"] == "1"  # frames 30-50 of the annotation
        video_plays(browser, "#video")
        cursor = float(browser.execute_script(curve)["cursor"])
        assert cursor > 0  # the cursor follows the video
        screenshot(browser, "view")
        assert list((run / "view-cache").glob("street-*.mp4"))  # transcoded once, kept
        browser.find_element("css selector", "#videos button[data-video='lobby']").click()
        wait_for(lambda: browser.execute_script(curve).get("points") == str(frames["lobby"]), "the second curve")
        assert browser.execute_script(curve)["spans"] == "0"  # unknown truth: nothing shaded
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0


def test_view_reads_a_score_folder(tmp_path):
    import h5py

    from gclvad.scoring.frames import write_scores_csv

    (tmp_path / "features").mkdir()
    write_scores_csv(tmp_path / "street.csv", {"score": np.arange(40) / 40.0, "d": np.zeros(40)}, fps=10.0)
    with h5py.File(tmp_path / "features" / "street.h5", "w") as file:
        file.attrs["source"] = "/videos/street.mp4"
    (collection,) = find_collections(tmp_path)
    video = collection.videos["street"]
    assert len(video.scores["score"]) == 40 and video.fps == 10.0 and video.source == Path("/videos/street.mp4")
    with pytest.raises(GclvadError, match="no scores found"):
        find_collections(tmp_path / "features")


# ---------------------------------------------------------------- the token


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_beyond_loopback_a_token_is_needed_and_checked_on_every_request():
    with pytest.raises(GclvadError, match="without a token"):
        LivePage("0.0.0.0", 0, token=None)
    page = LivePage("127.0.0.1", 0, token="s3cret").start()
    try:
        state = page.url + "api/state"
        assert get(page.url)[0] == 401
        assert get(state)[0] == 401
        assert get(state + "?token=wrong")[0] == 401
        status, headers = get(page.url + "?token=s3cret")
        assert status == 200 and "gclvad_token=s3cret" in headers["Set-Cookie"]
        assert get(state, {"Cookie": "gclvad_token=s3cret"})[0] == 200
        assert get(state, {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(page.url + "static/live.js")[0] == 401
    finally:
        page.close()
