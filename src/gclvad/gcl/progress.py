"""Training progress: one log line per epoch of a stage (epoch k/N, the epoch's mean losses,
elapsed time and ETA) through logging (logger gclvad.gcl.progress), which workflow jobs write to
their log, and a tqdm bar per stage when stderr is a terminal. Nothing here touches a random
stream: training gives the same bits with or without it."""

from __future__ import annotations

import contextlib
import logging
import sys
import time

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gclvad.gcl.data import PlannedStage

log = logging.getLogger(__name__)


class StageProgress:
    """One log line per epoch of a stage (epoch k/N, losses, elapsed, ETA), and a tqdm bar
    when stderr is a terminal (a job log gets the lines alone: a bar there is noise)."""

    def __init__(self, stage: PlannedStage, epochs_done: int):
        self.stage = stage
        self.first_epoch = epochs_done  # a resumed stage starts past 0: the ETA counts this call's epochs
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=stage.epochs,
            initial=epochs_done,
            desc=str(stage.name),
            unit="epoch",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
            mininterval=0,  # an epoch is seconds or more: draw every one
        )
        self.context = contextlib.ExitStack()

    def __enter__(self) -> StageProgress:
        self.context.enter_context(self.bar)
        if not self.bar.disable:  # log records to stderr are then written above the bar, not through it
            self.context.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc_info) -> None:
        self.context.close()

    def epoch_done(self, epoch: int, totals: dict) -> None:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / (epoch - self.first_epoch) * (self.stage.epochs - epoch)
        losses = {key: value for key, value in totals.items() if key.startswith("loss")}
        shown = ", ".join(f"{key} {value:.5g}" for key, value in losses.items())
        log.info(
            "%s epoch %d/%d: %s (%d steps), elapsed %s, ETA %s",
            self.stage.name, epoch, self.stage.epochs, shown, self.stage.steps_per_epoch,
            _clock(elapsed), _clock(eta),
        )  # fmt: skip
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in losses.items()}, refresh=False)
        self.bar.update(1)


def _clock(seconds: float) -> str:
    """h:mm:ss, rounded to the second."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
