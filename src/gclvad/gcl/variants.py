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
* AE_* variants train G only (no D) for `epochs` epochs and score with G's error.
"""

from __future__ import annotations

from typing import Any

from gclvad.gcl.config import BadConfigError, GCLConfig, PRESETS, from_dict

VARIANTS: dict[str, dict[str, Any]] = {
    "AE_AllData": {"method": "autoencoder", "pretrain_data": "all", "score_model": "g"},
    "AE_OCC": {"method": "autoencoder", "pretrain_data": "normal", "score_model": "g"},
    "AE_TD": {"method": "autoencoder", "pretrain_data": "td", "score_model": "g"},
    "GCL_wo_NL": {"method": "gcl", "pretrain_data": "none", "nl_target": "none"},
    "GCL_B": {"method": "gcl", "pretrain_data": "none"},
    "GCL_PT": {"method": "gcl", "pretrain_data": "td"},
    "GCL_OCC": {"method": "gcl", "pretrain_data": "normal"},
    "GCL_WS": {"method": "gcl", "pretrain_data": "td", "supervision_fraction": 1.0},
    "GCL_soft": {"method": "gcl", "pretrain_data": "td", "d_targets": "soft"},
    "GCL_Gself": {"method": "gcl", "pretrain_data": "td", "g_label_source": "g"},
}

# Variants allowed to read TrainingData.video_label; every other one must never touch it.
LABEL_READING_VARIANTS = ("AE_OCC", "GCL_OCC", "GCL_WS")


def variant_names() -> list[str]:
    return list(VARIANTS)


def get_variant(name: str, preset: str = "paper", **overrides: Any) -> GCLConfig:
    """The config of variant `name` on top of `preset` ("paper" or "small"), then `overrides`."""
    if name not in VARIANTS:
        raise BadConfigError(f"GCL variant: unknown variant {name!r}; variants are {', '.join(VARIANTS)}")
    if preset not in PRESETS:
        raise BadConfigError(f"GCL variant: unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
    return from_dict({**PRESETS[preset], **VARIANTS[name], **overrides})
