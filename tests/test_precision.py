"""Precision by capability (`auto`), FLOP counting, and scoring in another precision than a run's.

Every network here is tiny: bf16 on a CPU without native bf16 (CI's AVX2 machines) is
emulated and slow, so these tests never run a real extractor in bf16.
"""

from __future__ import annotations

import copy
import logging

import h5py
import pytest
import torch
from torch import nn

from gclvad.decode.preprocessing import Preprocessing
from gclvad.errors import GclvadError
from gclvad.extract.networks import speed
from gclvad.extract.networks.base import TorchExtractor
from gclvad.extract.one_video import extraction_attrs
from gclvad.scoring import run as scoring_run
from gclvad.scoring.run import PRECISION_TOLERANCE, RunRecord, build_run_extractor, precision_difference
from gclvad.stages.data import record_precision_used

CPU = torch.device("cpu")
TINY = Preprocessing(size=8, crop=8)


class Pooled(nn.Module):
    """A Conv3d and a global average: features that bf16 moves by ~1e-3 relative."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(3, 4, kernel_size=3)

    def forward(self, clips):
        return self.conv(clips).mean(dim=(2, 3, 4))


class Cancelling(nn.Module):
    """(x + 256) - 256: exact in fp32, but bf16 keeps 8 bits, so at 256 it rounds x to even
    integers and the features change by about their own size."""

    def forward(self, clips):
        return ((clips + 256.0) - 256.0).mean(dim=(2, 3, 4))


def tiny_extractor(module: nn.Module, precision: str, dim: int) -> TorchExtractor:
    return TorchExtractor("tiny", module, dim, TINY, "random", CPU, precision=precision)


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16."""

    def pretend(native: bool) -> None:
        monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: native)

    return pretend


# ---------------------------------------------------------------- FLOPs


def test_forward_flops_counts_two_per_multiply_add():
    # Conv3d 3 -> 4, 3x3x3, on 4x5x5: output 4 x 2x3x3 = 72 values of 3*27 = 81 multiply-adds each
    conv = nn.Conv3d(3, 4, kernel_size=3)
    assert speed.forward_flops(conv, torch.zeros(1, 3, 4, 5, 5)) == 2 * 72 * 81
    # Linear 10 -> 5 on 2 rows: 2 * 5 outputs of 10 multiply-adds
    assert speed.forward_flops(nn.Linear(10, 5), torch.zeros(2, 10)) == 2 * 2 * 5 * 10


def test_clip_flops_runs_one_clip_at_the_native_crop():
    extractor = TorchExtractor("tiny", Pooled(), 4, Preprocessing(size=5, crop=5), "random", CPU)
    # one clip of 4 frames at 5x5: the conv above; the mean is not counted
    assert extractor.clip_flops(frames=4) == 2 * 72 * 81


# ---------------------------------------------------------------- auto


def test_cpu_flags_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert {"avx2", "avx512_bf16"} <= speed.cpu_flags(cpuinfo)
    assert speed.cpu_flags(tmp_path / "absent") == set()


def test_auto_is_bf16_only_where_native(native_bf16):
    native_bf16(True)
    assert speed.resolve_precision("auto", CPU) == "bf16"
    native_bf16(False)
    assert speed.resolve_precision("auto", CPU) == "fp32"
    assert speed.resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(GclvadError, match="unknown precision 'fp16': expected one of auto, fp32, bf16"):
        speed.resolve_precision("fp16", CPU)


def test_bf16_without_native_support_warns_with_the_measured_cost(native_bf16, caplog):
    native_bf16(False)
    with caplog.at_level(logging.WARNING, logger=speed.__name__):
        assert speed.resolve_precision("bf16", CPU) == "bf16"
    assert f"about {speed.EMULATED_BF16_SLOWDOWN:.0f}x slower than in fp32" in caplog.text
    native_bf16(True)
    caplog.clear()
    speed.resolve_precision("bf16", CPU)
    assert caplog.text == ""


@pytest.mark.parametrize("native, used", [(True, "bf16"), (False, "fp32")])
def test_extractors_and_their_files_record_the_precision_used(native_bf16, native, used):
    native_bf16(native)
    extractor = tiny_extractor(Pooled(), "auto", 4)
    assert extractor.precision == used
    assert extraction_attrs(extractor, 16, 16, 25.0, 0)["precision"] == used
    assert next(extractor.module.parameters()).dtype == (torch.bfloat16 if used == "bf16" else torch.float32)


def test_runs_record_the_precision_of_their_features(tmp_path):
    features = tmp_path / "features.h5"
    with h5py.File(features, "w") as out:
        out.attrs["precision"] = "bf16"
    stored = {"extractor": {"name": "i3d", "precision": "auto", "batch_size": 4}}
    record_precision_used(stored, features)
    assert stored["extractor"] == {"name": "i3d", "precision": "bf16", "batch_size": 4}


# ---------------------------------------------------------------- scoring in another precision


def run_record(tmp_path, precision: str) -> RunRecord:
    extractor = {"name": "tiny", "weights": "random", "precision": precision}
    return RunRecord(tmp_path / "models.pt", extractor, 16, "random", None)


@pytest.fixture
def tiny_registry(monkeypatch):
    """build_extractor of scoring.run returns tiny extractors of one module (copied per build)."""

    def install(module: nn.Module, dim: int) -> None:
        def build(name, weights, device, precision, crops):
            return tiny_extractor(copy.deepcopy(module), precision, dim)

        monkeypatch.setattr(scoring_run, "build_extractor", build)

    return install


def test_scoring_builds_the_runs_precision_by_default(tiny_registry, tmp_path):
    tiny_registry(Pooled(), 4)
    assert build_run_extractor(run_record(tmp_path, "bf16"), None, "cpu").precision == "bf16"
    assert build_run_extractor(run_record(tmp_path, "fp32"), None, "cpu").precision == "fp32"


def test_another_precision_within_the_tolerance_is_allowed(tiny_registry, tmp_path):
    tiny_registry(Pooled(), 4)
    extractor = build_run_extractor(run_record(tmp_path, "fp32"), None, "cpu", precision="bf16")
    assert extractor.precision == "bf16"
    difference = precision_difference(tiny_extractor(Pooled(), "fp32", 4), extractor)
    assert 0 < difference <= PRECISION_TOLERANCE  # really bf16, and close enough


def test_another_precision_beyond_the_tolerance_is_refused(tiny_registry, tmp_path):
    tiny_registry(Cancelling(), 3)
    with pytest.raises(GclvadError, match=r"in bf16 they differ by .* more than the .* allowed: score in fp32"):
        build_run_extractor(run_record(tmp_path, "fp32"), None, "cpu", precision="bf16")
