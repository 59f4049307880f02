"""What the workflow must know of each feature extractor before any job runs, without torch.

The workflow's DAG process checks the config against this table (known extractor names,
segment lengths each network accepts) so that a wrong setting stops every target at once
instead of failing inside an extraction job; `gclvad.extract.one_video` checks the same at job
time. The networks themselves live in `gclvad.extract.networks.registry` (which imports torch);
tests/test_workflow_refusals.py runs each real network at these limits, so the table
cannot drift from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractorFacts:
    """min_frames: the shortest segment the network accepts (its temporal pooling must still
    cover a position). required_frames: the only length it accepts, if it takes just one."""

    min_frames: int = 1
    required_frames: int | None = None
    why: str = ""  # for messages


EXTRACTOR_FACTS: dict[str, ExtractorFacts] = {
    "resnext101": ExtractorFacts(),
    "i3d": ExtractorFacts(min_frames=9, why="Mixed_5c must still cover the 2x7x7 logits pool"),
    "r3d_18": ExtractorFacts(),
    "mc3_18": ExtractorFacts(),
    "r2plus1d_18": ExtractorFacts(),
    "s3d": ExtractorFacts(min_frames=13, why="its final 2x7x7 average pool needs two time steps"),
    "mvit_v2_s": ExtractorFacts(required_frames=16, why="its relative-position tables are sized for 16 frames"),
    "swin3d_t": ExtractorFacts(),
}
EXTRACTOR_NAMES: tuple[str, ...] = tuple(EXTRACTOR_FACTS)


def unknown_extractor_problem(name: str) -> str:
    """Why `name` is not an extractor ("" when it is one)."""
    if name in EXTRACTOR_FACTS:
        return ""
    return f"{name!r} is not a known extractor (known: {', '.join(EXTRACTOR_NAMES)})"


def segment_length_problem(name: str, segment_length: int) -> str:
    """Why extractor `name` cannot take segments of `segment_length` frames ("" when it can)."""
    facts = EXTRACTOR_FACTS.get(name)
    if facts is None:
        return unknown_extractor_problem(name)
    why = f" ({facts.why})" if facts.why else ""
    found = f"but segment_length is {segment_length}"
    if facts.required_frames is not None and segment_length != facts.required_frames:
        return f"extractor {name!r} only accepts {facts.required_frames}-frame segments{why}, {found}"
    if segment_length < facts.min_frames:
        return f"extractor {name!r} needs segments of at least {facts.min_frames} frames{why}, {found}"
    return ""
