"""The house rules the code is held to, checked on the code itself."""

from __future__ import annotations

import re
import subprocess
import sys

from workflow import REPO


def test_every_rule_records_a_benchmark():
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in re.finditer(r"^(?:rule|checkpoint) (\w+):", text, re.M)]
        ends = [start for start, _ in starts[1:]] + [len(text)] if starts else []
        for (start, name), end in zip(starts, ends, strict=True):
            blocks[name] = text[start:end]
    assert len(blocks) > 15
    missing = sorted(name for name, block in blocks.items() if "\n    benchmark:" not in block)
    assert missing == [], f"rules without a benchmark: {missing}"


def test_scoring_and_watching_never_load_the_trainer():
    modules = ("gclvad.scoring", "gclvad.scorer", "gclvad.watch", "gclvad.frame_scores", "gclvad.evaluate")
    probe = f"import sys; import {', '.join(modules)}; print('gclvad.gcl.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
