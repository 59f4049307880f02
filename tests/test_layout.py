"""The house rules the code is held to, checked on the code itself."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

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
    modules = (
        "gclvad.scoring.footage",
        "gclvad.scoring.scorer",
        "gclvad.live.watcher",
        "gclvad.scoring.frames",
        "gclvad.evaluation.metrics",
    )
    probe = f"import sys; import {', '.join(modules)}; print('gclvad.gcl.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- the floor plan

PACKAGE = REPO / "src" / "gclvad"
# Lowest first. A module imports only from its own room or from rooms of lower layers; the
# ground floor's modules import only each other (gclvad's own README, "Layout", draws this).
LAYERS = (
    ("errors", "atomic", "logs", "device", "weights", "cleaning"),
    ("decode",),
    ("features",),
    ("datasets",),
    ("gcl",),
    ("evaluation",),
    ("extract",),
    ("scoring",),
    ("live",),
    ("stages",),
    ("cli",),
)
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
# Inference loads a trained model, never the trainer (nanoGPT's sample.py imports model.py only).
INFERENCE_ROOMS = ("scoring", "live")
INFERENCE_MAY_USE = ("gclvad.gcl.store", "gclvad.gcl.models", "gclvad.gcl.config")
# Rooms whose jobs and commands start without the networks or the figures they may not
# need: only they may import a heavy module inside a function.
LAZY_ROOMS = ("stages", "cli")
HEAVY_LIBRARIES = ("torch", "matplotlib")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported name, line, inside a function) of every import statement of `path` that runs."""
    tree = ast.parse(path.read_text())
    inner = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in inner) for name in names]
    return found


def _own(name: str, modules: dict) -> str | None:
    """The gclvad module an imported name lies in (None for other packages)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _room(module: str) -> str:
    return module.split(".")[1]


def _heavy(modules: dict) -> set[str]:
    """The gclvad modules whose import loads torch or matplotlib (through top-level imports)."""
    top = {m: [(n, local) for n, _, local in _imports(p)] for m, p in modules.items()}
    heavy = {
        m for m, names in top.items() if any(n.split(".")[0] in HEAVY_LIBRARIES and not local for n, local in names)
    }
    while True:
        more = {
            m
            for m, names in top.items()
            if m not in heavy and any(not local and _own(n, modules) in heavy for n, local in names)
        }
        if not more:
            return heavy
        heavy |= more


def test_imports_follow_the_layers():
    modules = _modules()
    backwards = []
    for module, path in modules.items():
        if module == "gclvad":
            continue
        for name, line, _ in _imports(path):
            target = _own(name, modules)
            if target in (None, "gclvad", module) or _room(target) == _room(module):
                continue
            source_level, target_level = LAYER_OF[_room(module)], LAYER_OF[_room(target)]
            if target_level > source_level or (target_level == source_level and source_level > 0):
                backwards.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert backwards == [], "imports against the layer order:\n" + "\n".join(backwards)


def test_every_module_has_a_room_and_rooms_are_known():
    rooms = {_room(module) for module in _modules() if module != "gclvad"}
    assert rooms <= set(LAYER_OF), f"rooms without a layer: {sorted(rooms - set(LAYER_OF))}"
    flat = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert len(flat) <= 8, f"modules directly in src/gclvad: {flat}"


def test_inference_never_imports_the_trainer_side_of_gcl():
    modules = _modules()
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {target}"
        for module, path in modules.items()
        if module != "gclvad" and _room(module) in INFERENCE_ROOMS
        for name, line, _ in _imports(path)
        if (target := _own(name, modules)) and target.startswith("gclvad.gcl") and target not in INFERENCE_MAY_USE
    ]
    assert wrong == []


def test_function_local_imports_are_only_the_lazy_heavy_ones():
    modules = _modules()
    heavy = _heavy(modules)
    assert {"gclvad.gcl.train", "gclvad.evaluation.plots", "gclvad.extract.shards"} <= heavy
    assert not {"gclvad.stages.settings", "gclvad.gcl.config", "gclvad.decode.crops"} & heavy
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {target} inside a function"
        for module, path in modules.items()
        if module != "gclvad"
        for name, line, local in _imports(path)
        if local and (target := _own(name, modules)) and not (_room(module) in LAZY_ROOMS and target in heavy)
    ]
    assert wrong == []


def test_package_files_import_nothing():
    """The workflow's planning process imports single modules of several rooms: a package file
    that imported its modules would load torch there."""
    for path in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(path.read_text())
        statements = [node for node in tree.body if not isinstance(node, ast.Expr)]
        if path.parent == PACKAGE:
            assert [type(node) for node in statements] == [ast.Assign], path  # __version__ only
        else:
            assert statements == [], f"{path.relative_to(REPO)} holds code"
            assert ast.get_docstring(tree), f"{path.relative_to(REPO)} has no map of its modules"


def test_no_module_is_over_the_size_limit():
    long = {
        path.relative_to(REPO): n for path in PACKAGE.rglob("*.py") if (n := len(path.read_text().splitlines())) > 420
    }
    assert long == {}


def test_the_command_starts_without_torch():
    probe = "import sys; import gclvad.cli.main; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
