"""Which crops of a segment a network sees: their names and count, without torch.

`gclvad.decode.preprocessing` cuts them; the workflow's planning process reads their count.
"""

from __future__ import annotations

# Which crops of a segment a network sees (gclvad.decode.preprocessing cuts them): the centre crop
# (the paper's, one clip), three crops along the long side (left, centre, right of a
# landscape frame, at the network's native size: the whole width at I3D's 224), or ten (the
# four corners and the centre, then the same flipped left-right: torchvision's TenCrop order,
# the RTFM features' layout, from a frame resized 8/7 larger so that the corners differ).
CROP_NAMES = {
    "centre": ("centre",),
    "three": ("first", "centre", "last"),
    "ten": tuple(
        f"{flip}{corner}"
        for flip in ("", "flipped_")
        for corner in ("top_left", "top_right", "bottom_left", "bottom_right", "centre")
    ),
}
CROP_MODES = tuple(CROP_NAMES)


def crop_count(mode: str) -> int:
    if mode not in CROP_NAMES:
        raise ValueError(f"crops must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    return len(CROP_NAMES[mode])
