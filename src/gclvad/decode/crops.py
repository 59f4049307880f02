"""Which crops of a segment a network sees: their names and count, without torch.

`gclvad.decode.preprocessing` cuts them; the workflow's planning process reads their count.
"""

from __future__ import annotations

# Which crops of a segment a network sees (gclvad.decode.preprocessing cuts them): the centre crop
# (the paper's, one clip), three crops along the long side (left, centre, right of a
# landscape frame, at the network's native size: the whole width at I3D's 224), or ten (the
# four corners and the centre, then the same flipped left-right: torchvision's TenCrop order,
# the RTFM features' layout, from a frame resized 8/7 larger so that the corners differ).
# Two modes look at the frame upscaled 2x (short side twice the network's size), so that a small
# object covers four times the pixels it does in the other modes (issue 18):
#   "tiles":  a grid of 2 x 3 native-size tiles (2 along the short side, 3 along the long one,
#             first and last at the edges, evenly spaced between: they cover frames up to 3:2
#             such as 4:3; wider frames leave gaps between them), each its own training track;
#   "motion": one native-size crop of the upscaled frame, placed where the segment's frames
#             change most (the centre when nothing moves): a tracker-free look at what moves.
CROP_NAMES = {
    "centre": ("centre",),
    "three": ("first", "centre", "last"),
    "ten": tuple(
        f"{flip}{corner}"
        for flip in ("", "flipped_")
        for corner in ("top_left", "top_right", "bottom_left", "bottom_right", "centre")
    ),
    "tiles": tuple(f"tile_{row}_{column}" for row in range(2) for column in range(3)),
    "motion": ("motion",),
}
UPSCALED_MODES = ("tiles", "motion")  # resized to twice the network's short side
CROP_MODES = tuple(CROP_NAMES)


def crop_count(mode: str) -> int:
    if mode not in CROP_NAMES:
        raise ValueError(f"crops must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    return len(CROP_NAMES[mode])
