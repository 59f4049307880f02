"""Run settings: variant names with overrides, the workflow's presets, per-stage params."""

import dataclasses

import pytest
import yaml

from gclvad.cleaning import CleaningConfig
from gclvad.errors import GclvadError
from gclvad.gcl.config import SECTIONS, STAGE_SECTIONS, BadConfigError, GCLConfig, Stage, get_preset
from gclvad.scoring.postprocess import PostprocessConfig
from gclvad.stages.settings import (
    ENSEMBLE_PATTERN,
    Variant,
    ensemble_members,
    models_variant,
    parse_variant,
    run_settings,
    stage_config,
    stage_params,
    variant_pattern,
)
from workflow import REPO


def test_variant_overrides_are_parsed_with_their_types():
    assert parse_variant("GCL_PT") == Variant("GCL_PT", {}, {}, {}, 1)
    assert parse_variant("GCL_WS~supervision=33").gcl == {"supervision.fraction": 0.33}
    parsed = parse_variant(
        "GCL_PT~nl_target=gaussian~gaussian_sigma=6~loop.epochs=4~d_labels_after_d_step=false~cleaning.threshold=0.5"
        "~postprocess.smoothing_sigma=16~ensemble=5"
    )
    assert parsed.name == "GCL_PT"
    assert parsed.gcl == {
        "nl_target": "gaussian",
        "gaussian_sigma": 6.0,
        "loop.epochs": 4,
        "d_labels_after_d_step": False,
    }
    assert parsed.cleaning == {"threshold": 0.5} and parsed.postprocess == {"smoothing_sigma": 16.0}
    assert parsed.ensemble == 5


def test_ensembles_and_post_processing_reuse_what_is_trained():
    # post-processing changes nothing trained: the networks of the variant without it score
    assert models_variant("GCL_PT~postprocess.smoothing_sigma=16~nl_target=gaussian") == "GCL_PT~nl_target=gaussian"
    # an ensemble's members: the variant without ensemble and post-processing, seeds never shared
    assert ensemble_members("GCL_PT~ensemble=3~postprocess.crop_reduce=max", 1) == [("GCL_PT", s) for s in (3, 4, 5)]
    settings = run_settings({"base": "small", "postprocess": {"smoothing_sigma": 8}}, "GCL_PT~ensemble=3")
    assert settings.ensemble == 3 and settings.postprocess.smoothing_sigma == 8
    # neither is a setting training reads
    assert settings.to_dict() == run_settings({"base": "small"}, "GCL_PT").to_dict()
    for bad in ("GCL_PT~ensemble=1", "GCL_PT~ensemble=2.5"):
        with pytest.raises(BadConfigError, match="ensemble must be a whole number of seeds >= 2"):
            parse_variant(bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("GCL_PT~loop.epochs", "is not key=value"),
        ("GCL_PT~no_such_setting=1", "unknown setting 'no_such_setting'"),
        ("GCL_PT~epochs=3", "ambiguous; write one of pretrain_g.epochs, pretrain_d.epochs, loop.epochs"),
        ("GCL_PT~method=autoencoder", "method cannot be changed in a variant name"),
        ("GCL_PT~device=cuda", "device cannot be changed"),
        ("GCL_PT~loop.epochs=many", "loop.epochs|epochs must be a number"),
        ("GCL_PT~d_labels_after_d_step=maybe", "must be true or false"),
        ("GCL_PT~cleaning.strength=3", "unknown setting 'strength'"),
        ("GCL_X", "unknown variant 'GCL_X'"),
    ],
)
def test_bad_variant_overrides_are_named(bad, message):
    with pytest.raises(BadConfigError, match=message):
        parse_variant(bad)


@pytest.mark.parametrize(
    ("retired", "replacement"),
    [
        ("td_threshold=0.5", "cleaning.threshold"),
        ("td_mode=percentile", "cleaning.mode"),
        ("td_normalize=none", "cleaning.normalise"),
        ("td_percentile=80", "cleaning.threshold with cleaning.mode=percentile"),
        ("cleaning.normalize=none", "cleaning.normalise"),
    ],
)
def test_retired_settings_are_refused_naming_what_replaced_them(retired, replacement):
    key = retired.partition("=")[0]
    with pytest.raises(BadConfigError, match=rf"setting '{key}' is retired; write {replacement}$"):
        parse_variant(f"GCL_PT~{retired}")
    # the new names are accepted
    assert parse_variant("GCL_PT~cleaning.threshold=0.5~cleaning.normalise=none").cleaning == {
        "threshold": 0.5,
        "normalise": "none",
    }


def test_run_settings_layer_preset_cleaning_and_variant():
    preset = {"base": "small", "loop": {"epochs": 7}, "cleaning": {"normalise": "none"}}
    settings = run_settings(preset, "AE_TD~lr=0.01", {"threshold": 0.5, "mode": "absolute"}, device="cpu")
    gcl = settings.gcl
    assert gcl.method == "autoencoder" and gcl.pretrain_g.data == "td" and gcl.stages == [Stage.AUTOENCODER]
    assert gcl.loop.epochs == 7 and gcl.optimiser.lr == 0.01
    assert gcl.optimiser.max_batch_fraction == get_preset("small").optimiser.max_batch_fraction
    # workflow `cleaning`, then the preset's, then the variant's overrides
    assert settings.cleaning == CleaningConfig(threshold=0.5, mode="absolute", normalise="none")
    overridden = run_settings(preset, "GCL_PT~cleaning.threshold=0.4", {"threshold": 0.5})
    assert overridden.cleaning.threshold == 0.4 and overridden.cleaning.name == "none-absolute-0.4"
    percentile = run_settings({}, "GCL_PT", {"threshold": 80, "mode": "percentile"})
    assert percentile.cleaning == CleaningConfig(threshold=80, mode="percentile")


def test_runs_without_cleaned_rows_have_no_cleaning_and_refuse_cleaning_overrides():
    for variant in ("GCL_B", "AE_AllData", "GCL_OCC"):
        assert run_settings({}, variant, {"threshold": 0.5}).cleaning is None
    with pytest.raises(BadConfigError, match="does not pre-train on temporal-difference cleaned rows"):
        run_settings({}, "GCL_B~cleaning.threshold=0.5")
    with pytest.raises(GclvadError, match=r"cleaning.threshold .* must be in \(0, 100\]"):
        run_settings({}, "GCL_PT", {"threshold": 120, "mode": "percentile"})


def test_each_stage_gets_exactly_the_sections_it_reads():
    settings = run_settings({"base": "small"}, "GCL_PT")
    for stage, sections in STAGE_SECTIONS.items():
        params = stage_params(settings, stage, 4)
        assert set(params) == {"method", "seed", *sections}
        assert params["seed"] == 4 and "device" not in params["execution"]
    # D's and the loop's params do not hold G's pre-training settings, nor the other way round
    assert "pretrain_g" not in stage_params(settings, Stage.GCL_LOOP, 0)
    assert "loop" not in stage_params(settings, Stage.PRETRAIN_G, 0)
    # score_chunk is read by the stages that score rows, not by G's pre-training
    assert "scoring" in stage_params(settings, Stage.PRETRAIN_D, 0)
    assert "scoring" not in stage_params(settings, Stage.PRETRAIN_G, 0)


def test_a_stage_rebuilds_its_config_from_its_params_alone():
    settings = run_settings({"base": "small", "loop": {"nl_target": "gaussian"}}, "GCL_WS~supervision=50")
    for stage in settings.gcl.stages:
        config, seed = stage_config(stage_params(settings, stage, 3), "cpu")
        assert seed == 3 and config.device == "cpu"
        for section in STAGE_SECTIONS[stage]:
            if section != "execution":
                assert getattr(config, section) == getattr(settings.gcl, section), (stage, section)
        for section in set(SECTIONS) - set(STAGE_SECTIONS[stage]):
            assert getattr(config, section) == getattr(GCLConfig(), section)  # unread: defaults


def test_the_stage_plan_follows_the_variant():
    assert run_settings({}, "GCL_PT").gcl.stages == [Stage.PRETRAIN_G, Stage.PRETRAIN_D, Stage.GCL_LOOP]
    assert run_settings({}, "GCL_B").gcl.stages == [Stage.GCL_LOOP]
    assert run_settings({}, "GCL_PT~pretrain_d.epochs=0").gcl.stages == [Stage.PRETRAIN_G, Stage.GCL_LOOP]
    assert run_settings({}, "AE_AllData").gcl.stages == [Stage.AUTOENCODER]


def test_variant_patterns_send_each_variant_to_its_rules():
    import re

    autoencoder, gcl = variant_pattern("autoencoder"), variant_pattern("gcl")
    for name in ("AE_AllData", "AE_TD~pretrain_g.epochs=3"):
        assert re.fullmatch(autoencoder, name) and not re.fullmatch(gcl, name)
    for name in ("GCL_PT", "GCL_WS~supervision=33", "GCL_PT~cleaning.threshold=0.5"):
        assert re.fullmatch(gcl, name) and not re.fullmatch(autoencoder, name)
    # ensembles and post-processing are not trained by these rules
    for name in ("GCL_PT~ensemble=5", "GCL_PT~postprocess.smoothing_sigma=16"):
        assert not re.fullmatch(gcl, name)
    assert re.fullmatch(ENSEMBLE_PATTERN, "GCL_PT~nl_target=gaussian~ensemble=5")


def test_workflow_schema_knows_every_training_setting():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    preset = schema["$defs"]["preset"]["properties"]
    assert set(preset) == {"base", "cleaning", "postprocess", *SECTIONS}
    assert set(preset["postprocess"]["properties"]) == {f.name for f in dataclasses.fields(PostprocessConfig)}
    for name, section in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(section)} - {"device"}  # device: top-level `device`
        assert set(preset[name]["properties"]) == fields, name
    cleaning = {f.name for f in dataclasses.fields(CleaningConfig)}
    assert set(schema["$defs"]["cleaning"]["properties"]) == cleaning
    assert set(schema["properties"]["cleaning"]["properties"]) == cleaning


def test_the_workflow_reads_settings_without_loading_torch():
    # The DAG process imports what the rule files import; torch (~2 s, GBs of libraries) must
    # not be among it, so that building the DAG of a large dataset stays quick.
    import re
    import subprocess
    import sys

    modules = set()
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        modules |= set(re.findall(r"^from (gclvad[\w.]*) import", rules.read_text(), flags=re.M))
    assert "gclvad.stages.settings" in modules
    code = "import sys\n" + "".join(f"import {m}\n" for m in sorted(modules)) + "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_demo_runs_the_default_for_unlabelled_footage_and_the_paper_presets_stay_the_papers():
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo, presets = shipped["datasets"]["demo"], shipped["training"]["presets"]
    extractor = shipped["extractors"][demo["extractor"]]
    assert (extractor["network"], extractor["crops"], demo["crop_use"]) == ("i3d", "three", "each")
    settings = run_settings(presets[demo["training"]], demo["variant"], shipped["cleaning"])
    assert (settings.ensemble, settings.density) == (3, 1)
    assert settings.gcl == get_preset("small").replace(method="gcl", **{"pretrain_g.data": "td"})
    assert settings.postprocess == PostprocessConfig(smoothing_sigma=16.0, ensemble_normalise="z")
    assert settings.cleaning == CleaningConfig(threshold=90.0, mode="percentile", normalise="l2")
    # the same videos under the paper's protocol, beside it
    paper_demo = shipped["datasets"]["demo_paper"]
    assert paper_demo["generate"] == demo["generate"] and "variant" not in paper_demo and "crop_use" not in paper_demo
    assert (paper_demo["extractor"], paper_demo["training"], shipped["default_variant"]) == ("i3d", "small", "GCL_PT")
    assert shipped["extractors"]["i3d"].get("crops", "centre") == "centre"
    # and as a live camera on a small CPU would be set up: the default with the centre crop alone
    live = shipped["datasets"]["demo_live"]
    assert {**demo, "extractor": "i3d", "crop_use": "mean"} == live
    for name in ("paper", "small"):  # nothing beyond the paper: no smoothing, D_th 0.70
        paper = run_settings(presets[name], "GCL_PT", shipped["cleaning"])
        assert paper.postprocess == PostprocessConfig() and paper.postprocess.smoothing_sigma == 0
        assert paper.cleaning == CleaningConfig(threshold=0.70, mode="absolute") and paper.ensemble == 1
