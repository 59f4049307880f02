"""The exceptions gclvad raises for problems a user can fix."""

from __future__ import annotations

from pathlib import Path


class GclvadError(Exception):
    """A problem with the user's input or configuration.

    The message says what was expected, what was found and, where it helps, what to do.
    Command-line entry points catch it and exit with status 2 instead of a traceback.
    """


class BadVideoError(GclvadError):
    """A video (file or frame folder) that cannot be decoded into segments."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BadDatasetError(GclvadError):
    """A manifest, split list or annotation file that does not hold what its format needs."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
