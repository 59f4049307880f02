"""Streaming decode of a video (file or frame folder) into frames and fixed-length segments.

A *source* is either a video file FFmpeg can read or a folder of still images, one per frame,
taken in natural name order (``2.jpg`` before ``10.jpg``). Both go through PyAV: each decoded
frame is converted to RGB and resized in FFmpeg's C code (swscale, bilinear with the
down-scaling filter widened like torchvision's ``antialias=True``) as soon as it is decoded,
so memory holds one segment of resized frames, never the whole video. A `Preprocessing`
with ``antialias=False`` (torchvision's video backbones) instead converts the frame to RGB
at its own size and resizes it as torchvision does (`Preprocessing.resize_frame`).

Frame counts are always counted by decoding; container headers lie. A file that breaks off
part-way (cut download, damaged tail) keeps the frames decoded before the damage and is
reported as ``truncated``; a source from which no frame can be decoded raises
`BadVideoError`. Damage is recognised by any of:

* FFmpeg failing to decode (an error from the demuxer or the decoder);
* a packet the demuxer flags corrupt (MPEG-TS continuity errors, PES length mismatches:
  data, maybe whole frames, lost), or frames the decoder flags corrupt (it concealed
  missing or broken data) at the very end, as for a last frame whose bytes were cut off;
* fewer frames than the container declares (.mp4, .avi: a frame count; .mkv/.webm: a
  duration);
* an MPEG-TS file that ends inside a transport packet (a cut download), or whose last
  frame's data decodes to no frame at all (cut on a packet boundary inside that frame).

Decoding stops at the first of these, even where the decoder could go on: after lost data,
frame numbers could no longer be trusted to match the annotations. A damaged frame in the
middle that the decoder concealed, followed by clean ones, keeps the frame count and is
kept. A container that declares no length (MPEG-TS, MPEG-PS) and is cut exactly between
two frames is a valid shorter file: nothing in it shows that it was cut.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from gclvad.decode.windows import check_frame_step, check_stride, too_short_problem, window_frames
from gclvad.errors import BadVideoError, GclvadError

if TYPE_CHECKING:  # only its methods are called here; importing it would load torch
    from gclvad.decode.preprocessing import Preprocessing

OK, TRUNCATED = "ok", "truncated"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# Files taken for videos when a folder is searched (UCF-Crime's root, folders to score).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".ts"})

# A container's declared length is an estimate (edit lists, rounding of durations); only a
# clear shortfall beyond this many frames (or this fraction) counts as a cut-off file.
_DECLARED_SLACK_FRAMES = 2
_DECLARED_SLACK_FRACTION = 0.02
# Damaged frames the decoder concealed are kept when clean frames follow, but not a longer run.
_CONCEALED_RUN_LIMIT = 25
# MPEG-TS packet sizes: plain, M2TS/Blu-ray (a 4-byte time stamp first), with Reed-Solomon bytes.
_TRANSPORT_PACKET_BYTES = (188, 192, 204)


@dataclass
class VideoInfo:
    """What decoding a whole source found.

    frames: frames that decode (counted, not read from the container).
    fps: frames per second from the container; 0.0 for a frame folder, which has none.
    width, height: size of the decoded frames (of the first one, if the size changes).
    status: "ok", or "truncated" when decoding broke off before the end the container
        declares; reason then says at which frame and why ("" when ok).
    """

    frames: int
    fps: float
    width: int
    height: int
    status: str = OK
    reason: str = ""


@dataclass
class Segment:
    """L frames as network input: consecutive ones, or every k-th with frame_step k.

    clip: torch float32 (3, L, crop_h, crop_w), `Preprocessing.normalize` of the resized frames.
    first_frame: 0-based index of the segment's first frame in the video.
    real_frames: how many of the L * k frames the segment spans the video has; the rest
        (only in the last segment) are the video's last taken frame repeated.
    """

    clip: Any  # torch.Tensor
    first_frame: int
    real_frames: int


def _natural_key(path: Path) -> list:
    # Frame files are often unpadded (1.jpg, 2.jpg, ..., 10.jpg): compare digit runs as numbers.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _image_files(folder: Path) -> list[Path]:
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise BadVideoError(
            folder,
            "is a frame folder without images (expected one file per frame with suffix "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}; found none)",
        )
    return sorted(images, key=_natural_key)


def _ffmpeg_problem(error: Exception) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    text = getattr(error, "strerror", None) or str(error)
    log = getattr(error, "log", None)
    if log and len(log) == 3 and log[2]:
        text = f"{text} ({log[2].strip()})"
    return text


class _Decoder:
    """Decoded `av.VideoFrame`s of one source, stopping cleanly at damage.

    After `frames()` is exhausted, `damage` says why decoding stopped early ("" when the
    source decoded to its end).
    """

    def __init__(self, source: Path):
        self.source = Path(source)
        self.damage = ""
        self.fps = 0.0
        self._declared_frames = 0  # 0: the container does not say
        self._declared_exact = False
        self._data_packets = 0  # demuxed packets that carried data, each one frame's
        if not self.source.exists():
            raise BadVideoError(self.source, "does not exist")
        if self.source.is_dir():
            self._images = _image_files(self.source)
            return
        self._images = None
        if self.source.stat().st_size == 0:
            raise BadVideoError(self.source, "is an empty file (0 bytes)")

    def frames(self) -> Iterator[av.VideoFrame]:
        if self._images is not None:
            yield from self._folder_frames()
        else:
            yield from self._file_frames()

    def _folder_frames(self) -> Iterator[av.VideoFrame]:
        for index, image in enumerate(self._images):
            try:
                with av.open(str(image)) as container:
                    frame = next(container.decode(video=0), None)
            except (av.FFmpegError, IndexError) as error:
                raise BadVideoError(
                    self.source,
                    f"image {image.name} (frame {index}) cannot be decoded: {_ffmpeg_problem(error)}",
                ) from error
            if frame is None:
                raise BadVideoError(self.source, f"image {image.name} (frame {index}) holds no picture")
            yield frame

    def _open(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.source))
        except av.FFmpegError as error:
            raise BadVideoError(
                self.source,
                f"is not a video FFmpeg can open: {_ffmpeg_problem(error)} "
                "(if it is a video, it is damaged; an .mp4 cut short loses its index)",
            ) from error
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            container.close()
            raise BadVideoError(self.source, f"has no video stream (streams found: {', '.join(kinds)})")
        return container

    def _file_frames(self) -> Iterator[av.VideoFrame]:
        container = self._open()
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: decoding is the bottleneck
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
            self._read_declared_length(container, stream)
            count = 0
            try:
                for frame in self._clean_frames(container, stream):
                    count += 1
                    yield frame
            except av.FFmpegError as error:
                self.damage = f"decoding stopped at frame {count}: {_ffmpeg_problem(error)}"
                return
            if self.damage:
                self.damage = f"decoding stopped at frame {count}: {self.damage}"
                return
            self._check_declared_length(count)
            self._check_transport_packets(container, count)
            self._check_packets_decoded(container, count)

    def _clean_frames(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decoded frames, up to where data was lost (then `damage` says why).

        A packet the demuxer flags corrupt lost data, so whole frames may be missing from there
        on: decoding stops before it (after flushing the decoder, so that the frames of the
        packets before it that the decoder still holds come out too). A frame the decoder flags
        corrupt had damaged data concealed: with clean frames after it the frame count, and so
        the timeline, is intact and it is kept; a run of them at the end (a frame cut off), or
        one longer than _CONCEALED_RUN_LIMIT, ends decoding before the run.
        """
        concealed: list[av.VideoFrame] = []
        for packet in container.demux(stream):
            lost = packet.is_corrupt
            self._data_packets += packet.size > 0
            for frame in stream.decode(None if lost else packet):
                if frame.is_corrupt:
                    concealed.append(frame)
                    if len(concealed) > _CONCEALED_RUN_LIMIT:
                        self.damage = (
                            f"the decoder found {len(concealed)} damaged frames in a row (data missing or broken)"
                        )
                        return
                    continue
                yield from concealed
                concealed = []
                yield frame
            if lost:
                self.damage = "the container marks a packet corrupt (damaged or missing data)"
                return
        if concealed:
            self.damage = "the decoder found the last frame damaged (data missing: file cut short?)"

    def _read_declared_length(self, container, stream) -> None:
        if stream.frames > 0:
            self._declared_frames, self._declared_exact = stream.frames, True
        elif container.duration and self.fps > 0:
            # Matroska/WebM store no frame count, only a duration (microseconds).
            self._declared_frames = round(container.duration / 1_000_000 * self.fps)

    def _check_transport_packets(self, container, count: int) -> None:
        """An MPEG-TS file is a whole number of fixed-size packets: a remainder means it was cut."""
        if container.format.name != "mpegts":
            return
        size = self.source.stat().st_size
        if all(size % packet for packet in _TRANSPORT_PACKET_BYTES):
            self.damage = (
                f"decoding stopped at frame {count}, and the file ends {size % 188} bytes into a "
                "188-byte MPEG-TS packet (file cut short)"
            )

    def _check_packets_decoded(self, container, count: int) -> None:
        """In MPEG-TS every video packet (PES) holds one frame, so a packet that decoded to no
        frame is a frame whose data was cut off: a file cut on a packet boundary just inside its
        last frame. (Only MPEG-TS: elsewhere packets may hold no shown frame, as VP8's alt-ref.)"""
        if self.damage or container.format.name != "mpegts" or self._data_packets <= count:
            return
        self.damage = (
            f"decoding stopped at frame {count}: the data of the last {self._data_packets - count} of the "
            f"file's {self._data_packets} frames decoded to no picture (file cut short inside a frame)"
        )

    def _check_declared_length(self, count: int) -> None:
        declared = self._declared_frames
        slack = max(_DECLARED_SLACK_FRAMES, round(declared * _DECLARED_SLACK_FRACTION))
        if declared and count < declared - slack:
            about = "" if self._declared_exact else "about "
            self.damage = (
                f"decoding stopped at frame {count}, but the container declares {about}{declared} "
                "frames (file cut short or damaged)"
            )


def _no_frames(source: Path, decoder: _Decoder) -> BadVideoError:
    why = decoder.damage or "the video stream is empty"
    return BadVideoError(source, f"no frame could be decoded ({why})")


def probe_video(source: Path) -> VideoInfo:
    """Decode the whole source (no colour conversion) and describe what came out."""
    decoder = _Decoder(source)
    frames, width, height = 0, 0, 0
    for frame in decoder.frames():
        if frames == 0:
            width, height = frame.width, frame.height
        frames += 1
    if frames == 0:
        raise _no_frames(Path(source), decoder)
    status = TRUNCATED if decoder.damage else OK
    return VideoInfo(frames, decoder.fps, width, height, status, decoder.damage)


def iter_frames(source: Path, preprocessing: Preprocessing | None = None) -> Iterator[np.ndarray]:
    """uint8 RGB frames (H, W, 3) as numpy arrays, resized to `preprocessing.resized_shape` of the first frame.

    Any pixel format (grey, full-range yuvj, 10-bit, odd sizes) comes out as RGB; without a
    preprocessing the frames keep the first frame's size. A truncated source yields the
    frames before the damage, the same ones `probe_video` counts.
    """
    yield from sampled_frames(source, preprocessing, 1)


def sampled_frames(
    source: Path, preprocessing: Preprocessing | None = None, frame_step: int = 1
) -> Iterator[np.ndarray | None]:
    """Every frame of the source in order: frames 0, k, 2k, ... (k = frame_step) as `iter_frames`
    gives them, None for the others (decoded, since later frames depend on them, but never
    converted, which is where sampling saves decoding time)."""
    decoder = _Decoder(source)
    reformatter = VideoReformatter()  # keeps one swscale context for the whole video
    target = None
    for index, frame in enumerate(decoder.frames()):
        if index % frame_step:
            yield None
            continue
        if target is None:
            native = (frame.height, frame.width)
            target = preprocessing.resized_shape(*native) if preprocessing is not None else native
        yield rgb_frame(reformatter, frame, target, preprocessing)
    if target is None:
        raise _no_frames(Path(source), decoder)


def rgb_frame(
    reformatter: VideoReformatter, frame: av.VideoFrame, target: tuple[int, int], preprocessing: Preprocessing | None
) -> np.ndarray:
    """One decoded frame as uint8 RGB (H, W, 3) of size `target`, resized the way `preprocessing`
    resizes (also what `gclvad watch` does to every frame of a stream)."""
    # Extractors trained on torchvision's transforms resize the RGB frame without antialiasing.
    plain_bilinear = preprocessing is not None and not preprocessing.antialias
    size = (frame.height, frame.width) if plain_bilinear else target
    rgb = reformatter.reformat(frame, width=size[1], height=size[0], format="rgb24", interpolation="BILINEAR")
    return preprocessing.resize_frame(rgb.to_ndarray(), target) if plain_bilinear else rgb.to_ndarray()


def iter_segments(
    source: Path, preprocessing: Preprocessing, segment_length: int = 16, stride: int | None = None, frame_step: int = 1
) -> Iterator[Segment]:
    """Segments of `segment_length` frames starting every `stride` frames (default
    segment_length: consecutive, non-overlapping, the paper's), covering every frame.

    With frame_step k, the segment's frames are every k-th frame of the video (frames 0, k,
    2k, ...): a segment spans segment_length * k frames, and `first_frame` and `real_frames`
    count frames of the video. The last segment reaching past the video's end is padded to a
    full segment by repeating the last frame it takes. A video too short for one segment
    raises BadVideoError. Memory holds one segment of frames.
    """
    if segment_length < 1:
        raise GclvadError(f"segment_length must be at least 1; got {segment_length}")
    stride, step = check_stride(segment_length, stride), check_frame_step(frame_step)
    span, every = window_frames(segment_length, stride, step)
    pending: deque[np.ndarray] = deque()  # sampled frames of the window starting at first_frame
    # Complete windows wait until the video shows whether their whole span exists (frame_step > 1).
    waiting: deque[Segment] = deque()
    first_frame = decoded = 0
    for frame in sampled_frames(source, preprocessing, step):
        decoded += 1
        if frame is not None:
            pending.append(frame)
        if len(pending) == segment_length:
            waiting.append(Segment(preprocessing.normalize(np.stack(pending)), first_frame, span))
            first_frame += every
            for _ in range(stride):
                pending.popleft()
        while waiting and decoded >= waiting[0].first_frame + span:
            yield waiting.popleft()
    if first_frame == 0:  # no window was completed
        raise BadVideoError(source, too_short_problem(decoded, segment_length, step))
    for segment in waiting:  # spans that reach past the last frame (frame_step > 1 only)
        segment.real_frames = min(span, decoded - segment.first_frame)
        yield segment
    covered = first_frame - every + span
    while covered < decoded:  # the tail: windows padded with the last frame
        real = len(pending)
        window = [*pending, *[pending[-1]] * (segment_length - real)]
        yield Segment(preprocessing.normalize(np.stack(window)), first_frame, min(span, decoded - first_frame))
        covered, first_frame = first_frame + span, first_frame + every
        for _ in range(min(stride, len(pending))):
            pending.popleft()
