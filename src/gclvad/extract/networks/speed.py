"""Making an inference-only network faster without changing what it computes (beyond rounding).

Three steps, each optional and each measured by benchmarks/extract.py:
- folding every BatchNorm into the convolution before it (exact up to fp32 rounding), which
  removes a full pass over every activation tensor;
- channels_last_3d memory layout, which oneDNN (CPU) and cuDNN (GPU) convolve faster;
- bfloat16: either the whole (folded) network cast to bf16 ("cast", fastest for pure
  convolution networks on CPUs with AVX-512 bf16 and on GPUs) or torch.autocast ("autocast",
  which keeps normalisation and softmax in fp32, the safer choice for transformers).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gclvad.errors import GclvadError

log = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

PRECISIONS = ("fp32", "bf16")
# What a user may ask for: "auto" is resolved by `resolve_precision` before any network is built.
PRECISION_CHOICES = ("auto", *PRECISIONS)
BF16_MODES = ("cast", "autocast")
# CPU flags of native bf16 arithmetic (AVX-512 BF16 dot products, AMX tiles); without them
# oneDNN and ATen emulate bf16 through fp32 and are slower than plain fp32.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# ATen kernel levels that use those instructions (ATEN_CPU_CAPABILITY=avx2 forces emulation).
NATIVE_BF16_CAPABILITIES = ("AVX512", "AVX512_BF16", "AMX")
# Seconds of an I3D bf16 forward over seconds of the fp32 one on a CPU without native bf16
# (oneDNN and ATen then convert to fp32 and back around every operation), measured by
# `.venv/bin/python benchmarks/ceiling.py --sections avx2`: a subprocess with
# ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 on an AMD EPYC with avx512_bf16 (2 shared
# logical cores, load 5), torch 2.14.1, 2026-12-02; one 16x224x224 clip, best of 2: fp32 2.30 s,
# bf16 52.12 s (the same CPU's own AVX-512 BF16 kernels: fp32 1.81 s, bf16 1.46 s).
EMULATED_BF16_SLOWDOWN = 22.6


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise GclvadError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively and torch's kernels are allowed to use it."""
    has_flags = any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)
    return has_flags and torch.backends.cpu.get_cpu_capability() in NATIVE_BF16_CAPABILITIES


def has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" -> "bf16" where `device` computes bf16 natively, else "fp32"; "fp32" and "bf16"
    stay as asked, bf16 without native support with a warning of what it costs."""
    if precision not in PRECISION_CHOICES:
        raise GclvadError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISION_CHOICES)}")
    native = has_native_bf16(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        log.warning(
            "precision bf16 on %s, which has no native bf16 arithmetic: the network runs about %.0fx slower than "
            "in fp32 (I3D, measured with emulated AVX2); use precision auto or fp32",
            device,
            EMULATED_BF16_SLOWDOWN,
        )
    return precision


def fold_batchnorm(module: nn.Module, inplace: bool = False) -> nn.Module:
    """`module` (a copy unless `inplace`), eval mode, with each BatchNorm folded into the
    convolution feeding it. With `inplace` the returned graph module shares `module`'s layers.

    Works on the torch.fx graph, so a BN is folded only when it reads a convolution's output
    and nothing else reads that output. Unlike torch.fx.experimental.optimization.fuse, conv
    subclasses count (torchvision's video ResNets use Conv3DSimple / Conv3DNoTemporal).
    Networks that cannot be traced are returned unfolded, with a log line.
    """
    module = (module if inplace else copy.deepcopy(module)).eval()
    try:
        graph_module = fx.GraphModule(module, _ConvLeafTracer().trace(module))
    except Exception as error:  # fx raises several types for untraceable control flow
        log.info("BatchNorm folding skipped for %s: %s", type(module).__name__, error)
        return module
    modules = dict(graph_module.named_modules())
    for node in list(graph_module.graph.nodes):
        conv_node = _conv_feeding_batchnorm(node, modules)
        if conv_node is None:
            continue
        fused = fuse_conv_bn_eval(modules[conv_node.target], modules[node.target])
        parent, _, attribute = conv_node.target.rpartition(".")
        setattr(modules[parent] if parent else graph_module, attribute, fused)
        modules[conv_node.target] = fused
        node.replace_all_uses_with(conv_node)
        graph_module.graph.erase_node(node)
    graph_module.graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


class _ConvLeafTracer(fx.Tracer):
    """Keeps conv and BN subclasses defined outside torch.nn as single graph nodes."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, _CONVS + _BATCHNORMS) or super().is_leaf_module(module, qualified_name)


def _conv_feeding_batchnorm(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The conv node whose output only `node` reads, when `node` is a BatchNorm with stats."""
    if node.op != "call_module" or not isinstance(modules.get(node.target), _BATCHNORMS):
        return None
    if not modules[node.target].track_running_stats or len(node.args) != 1:
        return None
    source = node.args[0]
    if not isinstance(source, fx.Node) or source.op != "call_module":
        return None
    conv = modules.get(source.target)
    if not isinstance(conv, _CONVS) or len(source.users) != 1:
        return None
    if conv.out_channels != modules[node.target].num_features:
        return None
    return source


def forward_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Floating-point operations of one forward pass of `module` on `inputs`, as
    torch.utils.flop_counter counts them: 2 per multiply-add of convolutions and matrix
    products (where a network spends its time); biases, activations and pooling not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def count_batchnorms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def has_conv3d(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv3d) for m in module.modules())


def optimize_for_inference(
    module: nn.Module,
    device: torch.device,
    precision: str = "fp32",
    bf16_mode: str = "cast",
    fold: bool = True,
    channels_last: bool = True,
    inplace: bool = False,
) -> nn.Module:
    """`module` on `device` in eval mode, folded, laid out and cast as asked.

    Without `inplace` the caller's module is left as it was (folding, casting and re-layout
    would otherwise change it); with it, no second copy of the weights is ever held.
    """
    check_precision(precision)
    if bf16_mode not in BF16_MODES:
        raise GclvadError(f"unknown bf16 mode {bf16_mode!r}: expected one of {', '.join(BF16_MODES)}")
    if fold:
        module = fold_batchnorm(module, inplace=inplace)
    elif not inplace:
        module = copy.deepcopy(module)
    module = module.to(device)
    if channels_last and has_conv3d(module):
        module = module.to(memory_format=torch.channels_last_3d)
    if precision == "bf16" and bf16_mode == "cast":
        module = module.to(torch.bfloat16)
    return module.eval().requires_grad_(False)


def prepare_input(
    clips: torch.Tensor, device: torch.device, precision: str, bf16_mode: str, channels_last: bool
) -> torch.Tensor:
    """(B, 3, T, H, W) float32 clips -> the dtype, device and layout the prepared network takes."""
    clips = clips.to(device, non_blocking=True)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    if precision == "bf16" and bf16_mode == "cast":
        clips = clips.to(torch.bfloat16)
    return clips


def autocast_context(device: torch.device, precision: str, bf16_mode: str):
    """torch.autocast when bf16 is done by autocast, else a no-op context."""
    if precision == "bf16" and bf16_mode == "autocast":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
