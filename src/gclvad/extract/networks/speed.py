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

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gclvad.errors import GclvadError

log = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

PRECISIONS = ("fp32", "bf16")
BF16_MODES = ("cast", "autocast")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise GclvadError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
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
