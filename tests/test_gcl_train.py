"""GCL training on synthetic planted-structure features: detection quality, reproducibility,
checkpoint resume, size-aware schedule, model files, config handling."""

import dataclasses
import io
import logging
import math
import re
import sys

import numpy as np
import pytest
from synthetic import make_train_test

from gclvad.cleaning import CleaningConfig
from gclvad.errors import GclvadError
from gclvad.evaluation.metrics import frame_auc
from gclvad.gcl.checkpoint import StaleCheckpointError
from gclvad.gcl.config import STAGE_SECTIONS, BadConfigError, GCLConfig, Stage, from_dict, get_preset
from gclvad.gcl.data import BadTrainingDataError, TrainingData, stage_batch_size
from gclvad.gcl.store import ModelsFileError, load_models, save_models, score
from gclvad.gcl.train import NonFiniteLossError, train
from gclvad.gcl.variants import get_variant
from gclvad.scoring.frames import segment_to_frame_scores
from gclvad.stages.settings import RunSettings, stage_config, stage_params

# On a shared 2-core machine two intra-op threads fight other processes; one is faster.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(dataset, labels=True):
    return TrainingData(dataset.features, dataset.video, dataset.position, dataset.video_label if labels else None)


def _test_auc(models, test, key):
    per_video = test.video_segment_scores(score(models, test.features)[key])
    frames = {v: segment_to_frame_scores(s, test.frames[v], test.segment_length) for v, s in per_video.items()}
    return frame_auc(frames, test.frame_truths())


@pytest.fixture(scope="module")
def tiny():
    train_set, test_set = make_train_test(train_videos=8, test_videos=4, segments=(12, 18), seed=7)
    return train_set, test_set


def _tiny_config(name="GCL_PT", **changes):
    values = {
        "loop.epochs": 2,
        "pretrain_g.epochs": 2,
        "pretrain_d.epochs": 1,
        "min_steps_per_stage": 0,
        "max_batch_fraction": 0.25,
    }
    return get_variant(name, preset="small", **{**values, **changes})


def _without_seconds(log):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in log]


def test_gcl_pt_finds_planted_anomalies_that_an_autoencoder_on_all_data_misses():
    train_set, test_set = make_train_test(seed=0)
    data = _data(train_set, labels=False)
    gcl = train(get_variant("GCL_PT", preset="small"), data, seed=0)
    autoencoder = train(get_variant("AE_AllData", preset="small"), data, seed=0)
    gcl_auc = _test_auc(gcl.models, test_set, "d")
    ae_auc = _test_auc(autoencoder.models, test_set, "g")
    # Seeds 0-2 gave GCL_PT 1.00 vs AE_AllData 0.22/0.19/0.31: the single recurring anomaly
    # type is learnt by an autoencoder that sees it, while TD cleaning hides it from G.
    assert gcl_auc > 0.9
    assert gcl_auc > ae_auc + 0.3
    # the small preset's schedule was stretched to its minimum number of steps and recorded
    assert gcl.steps["pretrain_g"] >= 150 and gcl.steps["gcl_loop"] >= 150
    assert sum(row["steps"] for row in gcl.log if row["stage"] == "gcl_loop") == gcl.steps["gcl_loop"]
    assert 0.8 < gcl.cleaning["kept_fraction"] < 0.95


def test_same_seed_same_bits_on_cpu(tiny):
    train_set, test_set = tiny
    config = _tiny_config(nl_target="gaussian", dropout=0.1)  # exercises every RNG consumer
    first = train(config, _data(train_set), seed=3)
    second = train(config, _data(train_set), seed=3)
    other = train(config, _data(train_set), seed=4)
    scores = [score(r.models, test_set.features) for r in (first, second, other)]
    assert np.array_equal(scores[0]["d"], scores[1]["d"]) and np.array_equal(scores[0]["g"], scores[1]["g"])
    assert _without_seconds(first.log) == _without_seconds(second.log)
    assert not np.array_equal(scores[0]["d"], scores[2]["d"])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "stop_at, resumes_at",
    [(("pretrain_g", 1), ("pretrain_g", 2)), (("pretrain_d", 1), ("gcl_loop", 1)), (("gcl_loop", 1), ("gcl_loop", 2))],
)
def test_resume_after_interruption_is_bit_identical(tiny, tmp_path, stop_at, resumes_at):
    train_set, test_set = tiny
    config = _tiny_config(nl_target="random_normal", dropout=0.1)
    reference = train(config, _data(train_set), seed=11)

    def interrupt(stage, epoch, models):
        if (stage, epoch) == stop_at:
            raise Interrupt

    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Interrupt):
        train(config, _data(train_set), seed=11, checkpoint_path=checkpoint, on_epoch_end=interrupt)
    assert checkpoint.exists() and [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temporary left
    seen = []
    resumed = train(
        config, _data(train_set), seed=11, checkpoint_path=checkpoint, on_epoch_end=lambda s, e, m: seen.append((s, e))
    )
    assert seen[0] == resumes_at  # finished epochs are not repeated
    for key in ("d", "g"):
        assert np.array_equal(
            score(reference.models, test_set.features)[key], score(resumed.models, test_set.features)[key]
        )
    assert _without_seconds(reference.log) == _without_seconds(resumed.log)
    assert reference.steps == resumed.steps


def test_checkpoint_of_another_run_is_refused(tiny, tmp_path):
    train_set, _ = tiny
    config = _tiny_config(**{"loop.epochs": 1, "pretrain_g.epochs": 1})
    checkpoint = tmp_path / "run.ckpt"
    train(config, _data(train_set), seed=1, checkpoint_path=checkpoint)
    with pytest.raises(StaleCheckpointError, match="different seed"):
        train(config, _data(train_set), seed=2, checkpoint_path=checkpoint)
    with pytest.raises(StaleCheckpointError, match="different config"):
        train(config.replace(lr=1e-3), _data(train_set), seed=1, checkpoint_path=checkpoint)


def test_saved_models_rebuild_exactly(tiny, tmp_path):
    train_set, test_set = tiny
    result = train(_tiny_config(activation="gelu", g_hidden=(32, 16, 32), d_hidden=(16,)), _data(train_set), seed=0)
    save_models(tmp_path / "models.pt", result.models)
    loaded = load_models(tmp_path / "models.pt")
    assert loaded.config == result.config
    before, after = score(result.models, test_set.features), score(loaded, test_set.features)
    assert set(after) == {"g", "d", "score"} and np.array_equal(before["d"], after["d"])
    assert np.array_equal(after["score"], after["d"])
    with pytest.raises(GclvadError, match=r"features must be \(M, 64\)"):
        score(loaded, test_set.features[:, :10])
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelsFileError, match=r"junk.pt: cannot be read as a GCL models file .*it is damaged"):
        load_models(tmp_path / "junk.pt")


def test_bf16_and_d_labels_before_d_step_run(tiny):
    train_set, test_set = tiny
    result = train(_tiny_config(precision="bf16", d_labels_after_d_step=False), _data(train_set), seed=0)
    scores = score(result.models, test_set.features)
    assert np.isfinite(scores["d"]).all() and np.isfinite(scores["g"]).all()
    assert all(0.0 <= row.get("d_label_fraction", 0.0) <= 1.0 for row in result.log)


def test_size_aware_batch_and_minimum_steps(tiny):
    train_set, _ = tiny
    assert stage_batch_size(GCLConfig(), 780_000) == 8192  # the paper preset is untouched
    small = get_preset("small")
    assert stage_batch_size(small, 100_000) == 8192
    assert stage_batch_size(small, 1000) == 125
    assert stage_batch_size(small, 100) == 32
    assert stage_batch_size(small, 20) == 20
    config = _tiny_config(min_steps_per_stage=30, **{"pretrain_d.epochs": 0})
    result = train(config, _data(train_set), seed=0)
    n_rows = len(train_set.features)
    steps_per_epoch = -(-n_rows // stage_batch_size(config, n_rows))
    assert result.steps["gcl_loop"] == steps_per_epoch * -(-30 // steps_per_epoch)
    assert "pretrain_d" not in result.steps
    assert [row["stage"] for row in result.log][-1] == "gcl_loop"


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(BadConfigError, match=r"unknown key.*learning_rate, nl"):
        from_dict({"learning_rate": 1, "nl": "ones"})
    with pytest.raises(BadConfigError, match=r"unknown key.*loop.nl"):
        from_dict({"loop": {"nl": "ones"}})
    with pytest.raises(BadConfigError, match=r"loop.nl_target must be one of"):
        from_dict({"loop": {"nl_target": "zeros"}})
    with pytest.raises(BadConfigError, match=r"optimiser.lr must be > 0"):
        GCLConfig().replace(lr=0)
    config = get_preset("small", g_hidden=[8, 4, 8])
    assert from_dict(config.to_dict()) == config and config.architecture.g_hidden == (8, 4, 8)
    paper = GCLConfig()
    assert paper.optimiser.lr == 2e-5 and paper.optimiser.momentum == 0.6 and paper.optimiser.batch_size == 8192
    assert paper.loop.epochs == 15 and paper.d_step.g_threshold_k == 1.0 and paper.loop.d_threshold_k == 0.1
    assert get_preset("paper") == paper
    assert {f.name for f in dataclasses.fields(GCLConfig)} == set(GCLConfig().to_dict())


def test_bad_training_arrays_are_named():
    features = np.zeros((5, 3), dtype=np.float32)
    with pytest.raises(BadTrainingDataError, match="video must be an integer array"):
        train(GCLConfig(), TrainingData(features, np.zeros(4, dtype=int), np.arange(5)), seed=0)
    with pytest.raises(BadTrainingDataError, match="non-empty"):
        train(GCLConfig(), TrainingData(np.zeros(5), np.zeros(5, dtype=int), np.arange(5)), seed=0)


# Every section away from its default, so that a stage reading a section it was not given
# (and so training with that section's default) changes the bits and fails the test below.
_EVERY_SECTION_CHANGED = {
    "architecture.activation": "leaky_relu",
    "dropout": 0.05,
    "momentum": 0.5,
    "min_batch": 16,
    "precision": "fp32",
    "pretrain_g.epochs": 3,
    "pretrain_d.epochs": 2,
    "g_threshold_k": 0.8,
    "loop.epochs": 2,
    "d_threshold_k": 0.3,
    "nl_target": "gaussian",
    "gaussian_sigma": 2.0,
    "chunk": 7,
}


@pytest.mark.parametrize("variant", ["GCL_PT", "GCL_B", "AE_TD", "GCL_WS~supervision=50"])
def test_stages_run_as_jobs_with_their_params_equal_one_call(tiny, tmp_path, variant):
    # The workflow runs each stage as a job that gets only the sections it reads
    # (gclvad.stages.settings.stage_params), handing the networks over in files; that must give the bits one
    # uninterrupted call with the whole config gives.
    train_set, test_set = tiny
    name, _, fraction = variant.partition("~supervision=")
    config = _tiny_config(name, **_EVERY_SECTION_CHANGED)
    if fraction:
        config = config.replace(fraction=int(fraction) / 100)
    whole = train(config, _data(train_set), seed=3)

    settings = RunSettings(gcl=config, cleaning=CleaningConfig())
    models = None
    for stage in config.stages:
        job_config, seed = stage_config(stage_params(settings, stage, 3), "cpu")
        result = train(job_config, _data(train_set), seed=seed, stages=[stage], initial=models)
        save_models(tmp_path / f"{stage}.pt", result.models, sections=STAGE_SECTIONS[stage])
        models = load_models(tmp_path / f"{stage}.pt")
    staged, expected = score(models, test_set.features), score(whole.models, test_set.features)
    assert set(staged) == set(expected)
    for key in expected:
        assert np.array_equal(staged[key], expected[key]), key


def test_a_non_finite_loss_stops_training_naming_stage_epoch_and_step(tiny):
    train_set, _ = tiny
    features = train_set.features.copy()
    features[3] = 3e38  # finite, but its squared error overflows
    data = TrainingData(features, train_set.video, train_set.position)
    with pytest.raises(
        NonFiniteLossError, match=r"training stage autoencoder, epoch 1, step \d+ of \d+: loss_g = (inf|nan)"
    ):
        train(_tiny_config("AE_AllData"), data, seed=0)


def test_precomputed_td_mask_is_what_pretraining_uses(tiny):
    train_set, _ = tiny
    config = _tiny_config("GCL_PT")
    keep_first_half = np.arange(len(train_set.features)) < len(train_set.features) // 2
    data = dataclasses.replace(_data(train_set), td_mask=keep_first_half, td_summary={"kept": 0.5})
    result = train(config, data, seed=0, stages=[Stage.PRETRAIN_G])
    assert result.log[0]["rows"] == keep_first_half.sum()
    assert result.cleaning == {"kept": 0.5}
    # without a mask, the given cleaning settings are used
    stricter = train(
        config,
        _data(train_set),
        seed=0,
        stages=["pretrain_g"],
        cleaning=CleaningConfig(threshold=30, mode="percentile"),
    )
    assert stricter.cleaning["percentile"] == 30 and stricter.log[0]["rows"] == stricter.cleaning["kept"]


# gclvad.gcl.progress: a line per epoch: "<stage> epoch k/N: loss_x v, ... (s steps), elapsed h:mm:ss, ETA h:mm:ss"
EPOCH_LINE = re.compile(r"(\w+) epoch (\d+)/(\d+): (.+) \((\d+) steps\), elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d")


def _epoch_lines(caplog) -> list[re.Match]:
    lines = [record.getMessage() for record in caplog.records if record.name == "gclvad.gcl.progress"]
    matches = [EPOCH_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    return matches


def test_every_epoch_logs_its_progress_and_losses_without_a_bar_off_a_terminal(tiny, caplog, capsys):
    train_set, _ = tiny
    with caplog.at_level(logging.INFO, logger="gclvad.gcl.progress"):
        result = train(_tiny_config(), _data(train_set), seed=0)
    lines = _epoch_lines(caplog)
    epochs_of = {row["stage"]: row["epoch"] for row in result.log}  # the last epoch of each stage
    assert epochs_of == {"pretrain_g": 2, "pretrain_d": 1, "gcl_loop": 2}
    assert len(lines) == len(result.log) == 5
    for line, row in zip(lines, result.log, strict=True):
        stage, epoch, total, losses, steps = line.groups()
        assert (stage, int(epoch), int(total), int(steps)) == (
            row["stage"], row["epoch"], epochs_of[row["stage"]], row["steps"],
        )  # fmt: skip
        shown = dict(part.split(" ") for part in losses.split(", "))
        assert set(shown) == {key for key in row if key.startswith("loss")}
        for key, value in shown.items():
            assert math.isfinite(float(value)) and float(value) == pytest.approx(row[key], rel=1e-4)
    assert set(shown) == {"loss_d", "loss_g"}  # the cooperative loop logs both networks' losses
    assert capsys.readouterr().err == ""  # no tqdm bar when stderr is not a terminal (a job log)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_per_stage_and_the_same_bits(tiny, monkeypatch):
    train_set, test_set = tiny
    config = _tiny_config()
    plain = train(config, _data(train_set), seed=5)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with_bar = train(config, _data(train_set), seed=5)
    drawn = terminal.getvalue()
    assert "pretrain_g" in drawn and "gcl_loop" in drawn and "2/2" in drawn
    assert np.array_equal(score(plain.models, test_set.features)["d"], score(with_bar.models, test_set.features)["d"])
