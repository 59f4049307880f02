"""The paper's variants (Table 1, Table 2, §4.2) as named overrides of a preset's `GCLConfig`.

Name         What it trains (paper)                                       Reads labels
AE_AllData   autoencoder on all training segments, scored by G's error     no
AE_OCC       autoencoder on the normal training videos only                yes (one-class)
AE_TD        autoencoder on the temporal-difference cleaned segments       no
GCL_wo_NL    GCL_B without negative learning                               no
GCL_B        GCL with no pre-training (the baseline)                       no
GCL_PT       GCL with G pre-trained on TD-cleaned data, then D pre-trained no
GCL_OCC      GCL with G pre-trained on the normal videos                   yes (one-class)
GCL_WS       GCL_PT + video labels for `supervision_fraction` of videos    yes (weak)
GCL_soft     GCL_PT with D trained on G's normalised errors (soft labels)  no
GCL_Gself    GCL_PT with G trained on its own pseudo-labels                no

Decisions where the paper is not explicit:
* GCL_wo_NL: Table 2 marks it as having neither negative learning nor pre-training, and
  compares it with GCL_B ("using negative learning enhances ... GCL_B over the counterpart
  training without negative learning GCL_w/oNL"). §3.2.5 defines "No Negative Learning" as
  training G only on the rows D labels normal. So GCL_wo_NL = GCL_B with nl_target "none".
* GCL_WS: pre-trained like GCL_PT (TD cleaning, no labels in pre-training); the revealed
  fraction defaults to 100 % (Table 1) and is the config field supervision_fraction.
  Labelled-normal videos' rows are forced to label 0 for both networks; labelled-anomalous
  videos keep their pseudo-labels (a video label says nothing about which segments).
* GCL_soft, GCL_Gself: ablations of the full unsupervised system, so pre-trained like
  GCL_PT. In GCL_Gself D is still trained on G's labels and still scores (paper §3.4);
  only G's negative-learning labels come from G itself.
* AE_* variants train G only (no D), in their one stage `autoencoder`, on the rows and for the
  epochs of the `pretrain_g` section (the paper's AE_TD is G's pre-training on its own), and
  score with G's error.
"""

from __future__ import annotations

from typing import Any

from gclvad.gcl.config import PRESETS, BadConfigError, GCLConfig, from_dict, merged

_AUTOENCODER = {"method": "autoencoder", "scoring": {"model": "g"}}
_GCL_PT = {"method": "gcl", "pretrain_g": {"data": "td"}}

VARIANTS: dict[str, dict[str, Any]] = {
    "AE_AllData": merged(_AUTOENCODER, {"pretrain_g": {"data": "all"}}),
    "AE_OCC": merged(_AUTOENCODER, {"pretrain_g": {"data": "normal"}}),
    "AE_TD": merged(_AUTOENCODER, {"pretrain_g": {"data": "td"}}),
    "GCL_wo_NL": {"method": "gcl", "pretrain_g": {"data": "none"}, "loop": {"nl_target": "none"}},
    "GCL_B": {"method": "gcl", "pretrain_g": {"data": "none"}},
    "GCL_PT": _GCL_PT,
    "GCL_OCC": {"method": "gcl", "pretrain_g": {"data": "normal"}},
    "GCL_WS": merged(_GCL_PT, {"supervision": {"fraction": 1.0}}),
    "GCL_soft": merged(_GCL_PT, {"d_step": {"d_targets": "soft"}}),
    "GCL_Gself": merged(_GCL_PT, {"loop": {"g_label_source": "g"}}),
}

# Variants allowed to read TrainingData.video_label; every other one must never touch it.
LABEL_READING_VARIANTS = ("AE_OCC", "GCL_OCC", "GCL_WS")


def variant_names() -> list[str]:
    return list(VARIANTS)


def get_variant(name: str, preset: str = "paper", **overrides: Any) -> GCLConfig:
    """The config of variant `name` on top of package preset `preset` ("paper" or "small"),
    then `overrides` (settings named as GCLConfig.replace takes them)."""
    if name not in VARIANTS:
        raise BadConfigError(f"GCL variant: unknown variant {name!r}; variants are {', '.join(VARIANTS)}")
    if preset not in PRESETS:
        raise BadConfigError(f"GCL variant: unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
    training = {key: value for key, value in VARIANTS[name].items() if key != "cleaning"}
    return from_dict(merged(PRESETS[preset], training)).replace(**overrides)


def variant_cleaning(name: str) -> dict[str, Any]:
    """The TD cleaning settings variant `name` sets itself (none of the paper's do)."""
    return dict(VARIANTS[name].get("cleaning", {}))
