"""Run settings: variant names with overrides, the workflow's presets, per-stage settings."""

import dataclasses

import pytest
import yaml

from gclvad.gcl.config import BadConfigError, GCLConfig, get_preset
from gclvad.runs import FROM_PRETRAIN_D, LOOP_ONLY, parse_variant, run_config, stage_settings
from workflow import REPO


def test_variant_overrides_are_parsed_with_their_types():
    assert parse_variant("GCL_PT") == ("GCL_PT", {})
    assert parse_variant("GCL_WS~supervision=33") == ("GCL_WS", {"supervision_fraction": 0.33})
    name, overrides = parse_variant("GCL_PT~nl_target=gaussian~gaussian_sigma=6~epochs=4~pretrain_d=false")
    assert name == "GCL_PT"
    assert overrides == {"nl_target": "gaussian", "gaussian_sigma": 6.0, "epochs": 4, "pretrain_d": False}


@pytest.mark.parametrize("bad", ["GCL_PT~epochs", "GCL_PT~no_such_setting=1"])
def test_bad_variant_overrides_are_named(bad):
    with pytest.raises(BadConfigError, match="GCL_PT"):
        parse_variant(bad)


def test_run_config_layers_preset_cleaning_and_variant():
    cleaning = {"threshold": 0.5, "mode": "absolute", "normalize": "none"}
    config = run_config({"base": "small", "epochs": 7}, "AE_TD~lr=0.01", cleaning, device="cpu")
    assert config.method == "autoencoder" and config.pretrain_data == "td"
    assert config.epochs == 7 and config.lr == 0.01
    assert config.td_threshold == 0.5 and config.td_normalize == "none"
    assert config.max_batch_fraction == get_preset("small").max_batch_fraction
    percentile = run_config({}, "GCL_PT", {"threshold": 80, "mode": "percentile"})
    assert percentile.td_mode == "percentile" and percentile.td_percentile == 80.0
    assert percentile.td_threshold == GCLConfig().td_threshold  # the paper's value, unused here


def test_each_stage_sees_only_what_it_depends_on():
    config = run_config({"base": "small"}, "GCL_PT")
    g, d, loop = (stage_settings(config, 4, stage) for stage in ("pretrain_g", "pretrain_d", "loop"))
    assert set(loop) - set(d) == LOOP_ONLY
    assert set(d) - set(g) == FROM_PRETRAIN_D
    assert "device" not in loop and loop["seed"] == 4
    # the autoencoder's only stage runs in pretrain_g and trains for `epochs`
    autoencoder = stage_settings(run_config({}, "AE_AllData"), 0, "pretrain_g")
    assert "epochs" in autoencoder


def test_stage_settings_rebuild_a_valid_config():
    # a stage's job builds its GCLConfig from its settings alone, defaults filling the rest
    from gclvad.gcl.config import from_dict

    for variant in ("AE_AllData", "GCL_B", "GCL_PT", "GCL_WS~supervision=50"):
        for stage in ("pretrain_g", "pretrain_d", "loop"):
            values = stage_settings(run_config({"base": "small"}, variant), 0, stage)
            values.pop("seed")
            from_dict(values)


def test_workflow_schema_knows_every_training_setting():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    preset = schema["properties"]["training"]["properties"]["presets"]["additionalProperties"]
    fields = {f.name for f in dataclasses.fields(GCLConfig)}
    # device comes from the top-level `device`, td_* from `cleaning`
    expected = fields - {"device", "td_normalize", "td_mode", "td_threshold", "td_percentile"}
    assert set(preset["properties"]) - {"base"} == expected
