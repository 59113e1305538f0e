"""Diffusion training and sampling: a tiny DDPM that learns, the samplers, training that can
be killed and resumed to the same weights, and the test-subject refusal.

Every network here is tiny (8x8 or 16x16 images, 8 or 16 base channels).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusion_helpers import (  # noqa: F401  (single_thread is an autouse fixture)
    TINY8,
    TINY16,
    images_in_range,
    single_thread,
    structured_images,
    tiny_unet,
)
from torch import nn

from glioma.data.dataset import Dataset
from glioma.data.splits import ddpm_subjects, refuse_test_subjects
from glioma.diffusion.augment import Augmentation
from glioma.diffusion.checkpoint import load_checkpoint, save_checkpoint
from glioma.diffusion.pyfunc import LoadedDDPM, sampling_state
from glioma.diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings, batch_index, steps_for_epochs
from glioma.errors import DataError

# --- 5. a tiny DDPM learns ---------------------------------------------------------------------


def test_tiny_ddpm_overfits_structured_images():
    images = structured_images(16)
    settings = TrainSettings(
        train_steps=720, eval_every=12, batch_size=4, lr=2e-3, ema_decay=0.9, seed=0,
        augment=Augmentation(prob=0.0),
    )  # fmt: skip
    trainer = DDPMTrainer(TINY16, NoiseSchedule(100), settings)
    trainer.fit(images.repeat(3, 1, 1, 1), images)
    losses = [m["train_huber"] for m in trainer.history]
    assert len(losses) == 60 and all(math.isfinite(v) for v in losses)
    assert [m["step"] for m in trainer.history] == list(range(12, 721, 12))
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert first > 3 * last, (first, last)
    assert trainer.best_state is not None and 12 <= trainer.best_step <= 720
    assert trainer.history[-1]["best_val_loss"] == trainer.best_val


# --- 6. samplers -------------------------------------------------------------------------------


def test_ddim_timesteps():
    steps = ddim_timesteps(1000, 50)
    assert len(steps) == 50 and len(set(steps)) == 50
    assert steps[0] == 999 and steps[-1] == 0
    assert all(a > b for a, b in zip(steps, steps[1:]))
    assert ddim_timesteps(20, 20) == list(range(19, -1, -1))
    assert ddim_timesteps(20, 2) == [19, 0]
    assert ddim_timesteps(20, 1) == [19]  # one step starts from pure noise, not from t = 0
    for bad in (0, 21):
        with pytest.raises(ValueError):
            ddim_timesteps(20, bad)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ddim_deterministic_per_seed():
    model, s = tiny_unet().eval(), NoiseSchedule(100)
    shape = (3, 4, 8, 8)
    a = ddim_sample(model, s, shape, steps=10, eta=0.0, generator=seeded(1))
    b = ddim_sample(model, s, shape, steps=10, eta=0.0, generator=seeded(1))
    c = ddim_sample(model, s, shape, steps=10, eta=0.0, generator=seeded(2))
    assert a.shape == shape and torch.isfinite(a).all()
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    calls = []
    ddim_sample(model, s, shape, steps=10, generator=seeded(1), progress=calls.append)
    assert calls == [1] * 10


def test_ddpm_sample_respects_seed():
    model, s = tiny_unet().eval(), NoiseSchedule(20, beta_start=1e-3, beta_end=0.2)
    shape = (2, 4, 8, 8)
    calls = []
    a = ddpm_sample(model, s, shape, generator=seeded(3), progress=calls.append)
    b = ddpm_sample(model, s, shape, generator=seeded(3))
    c = ddpm_sample(model, s, shape, generator=seeded(4))
    assert a.shape == shape and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert calls == [1] * 20


def test_ddim_with_all_steps_and_eta_one_is_ddpm():
    """With tau = every step and eta = 1, DDIM's update is the DDPM posterior with the same
    noise draws in the same order: the two samplers must agree for the same seed."""
    model, s = tiny_unet().eval(), NoiseSchedule(30, beta_start=1e-3, beta_end=0.3)
    shape = (2, 4, 8, 8)
    ddpm = ddpm_sample(model, s, shape, generator=seeded(5))
    ddim = ddim_sample(model, s, shape, steps=30, eta=1.0, generator=seeded(5))
    assert torch.allclose(ddpm, ddim, atol=1e-4)


class GaussianOracle(nn.Module):
    """The exact noise predictor E[eps | x_t] for data x_0 ~ N(m, sd^2), pixelwise."""

    def __init__(self, schedule: NoiseSchedule, m: float, sd: float):
        super().__init__()
        self.schedule, self.m, self.sd = schedule, m, sd

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.schedule.gather(self.schedule.alphas_cumprod, t, x)
        return (1 - abar).sqrt() * (x - abar.sqrt() * self.m) / (abar * self.sd**2 + 1 - abar)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim200"])
def test_samplers_recover_gaussian_data_with_exact_model(sampler):
    """Given the exact noise predictor, both samplers reproduce the data distribution."""
    s, m, sd, n = NoiseSchedule(1000), 0.2, 0.2, 8000
    oracle = GaussianOracle(s, m, sd)
    if sampler == "ddpm":
        x = ddpm_sample(oracle, s, (n, 1, 1, 1), generator=seeded(0))
    else:
        x = ddim_sample(oracle, s, (n, 1, 1, 1), steps=200, eta=0.0, generator=seeded(0))
    assert float(x.mean()) == pytest.approx(m, abs=5 * sd / math.sqrt(n))
    assert float(x.std()) == pytest.approx(sd, rel=0.06)


def test_single_step_ddim_predicts_the_mean_from_pure_noise():
    """One DDIM step is x0_hat(x_{T-1}) = E[x_0 | x_{T-1}], close to the data mean m."""
    s, m, sd = NoiseSchedule(1000), 0.2, 0.2
    x = ddim_sample(GaussianOracle(s, m, sd), s, (500, 1, 1, 1), steps=1, generator=seeded(0))
    assert torch.allclose(x, torch.full_like(x, m), atol=0.01)


def test_loaded_ddpm_round_trip_and_seeded_sampling(tmp_path):
    model, s = tiny_unet(seed=8), NoiseSchedule(40)
    path = tmp_path / "best.pt"
    save_checkpoint(path, sampling_state(model.state_dict(), TINY8, s))
    ddpm = LoadedDDPM.from_checkpoint(path)
    assert ddpm.config == TINY8 and ddpm.schedule.num_steps == 40
    assert not ddpm.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(ddpm.model.state_dict()[key], value)
    a = ddpm.sample(3, seed=11, steps=5)
    b = ddpm.sample(3, seed=11, steps=5)
    c = ddpm.sample(3, seed=12, steps=5)
    assert a.shape == (3, 4, 8, 8) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert np.abs(a).max() <= 1
    old = sampling_state(model.state_dict(), TINY8, s)  # written before schedules were options
    old |= {"num_steps": 40, "beta_start": 1e-4, "beta_end": 0.02}
    del old["schedule"]
    save_checkpoint(tmp_path / "old.pt", old)
    legacy = LoadedDDPM.from_checkpoint(tmp_path / "old.pt")
    assert legacy.schedule.config == s.config and legacy.schedule.prediction == "eps"
    assert np.array_equal(legacy.sample(3, seed=11, steps=5), a)
    d = ddpm.sample(3, seed=11, sampler="ddpm", batch_size=2)
    e = ddpm.sample(3, seed=11, sampler="ddpm", batch_size=2)
    assert d.shape == (3, 4, 8, 8) and np.array_equal(d, e)
    assert ddpm.sample(0).shape == (0, 4, 8, 8)


# --- 7. kill and resume ------------------------------------------------------------------------


def resume_data():
    return images_in_range(6, 8, seed=9), images_in_range(2, 8, seed=10)


def resume_trainer(validations: int, **augment) -> DDPMTrainer:
    """``validations`` x 2 optimiser steps (a validation every 2) over 6 images of batch 4: the
    passes and the validations do not line up, as in real runs."""
    settings = TrainSettings(
        train_steps=2 * validations, eval_every=2, batch_size=4, lr=1e-3, ema_decay=0.9, seed=3,
        augment=Augmentation(**augment) if augment else Augmentation(prob=0.0),
    )  # fmt: skip
    return DDPMTrainer(TINY8, NoiseSchedule(50), settings)


def assert_same_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("augment", [{}, {"prob": 0.7}], ids=["plain", "augmented"])
def test_killed_and_resumed_training_matches_uninterrupted(tmp_path, augment):
    train, val = resume_data()
    whole = resume_trainer(4, **augment)
    whole.fit(train, val, checkpoint=tmp_path / "a" / "last.pt")

    last = tmp_path / "b" / "last.pt"
    first = resume_trainer(2, **augment)
    first.fit(train, val, checkpoint=last)
    assert load_checkpoint(last)["step"] == 4
    # a kill during a later write leaves its temporary file beside the checkpoint
    (last.parent / ".last.pt.crashed.tmp").write_bytes(b"half a checkpoint")
    resumed = resume_trainer(4, **augment)
    assert resumed.resume_from(last)
    assert resumed.step == 4 and len(resumed.history) == 2
    resumed.fit(train, val, checkpoint=last)

    assert resumed.step == whole.step == 8
    assert_same_states(resumed.model.state_dict(), whole.model.state_dict())
    assert_same_states(resumed.ema.state_dict(), whole.ema.state_dict())
    assert_same_states(resumed.best_state, whole.best_state)
    assert resumed.best_step == whole.best_step and resumed.best_val == whole.best_val
    assert resumed.history == whole.history
    on_disk = load_checkpoint(last)
    assert on_disk["step"] == 8
    assert_same_states(on_disk["model"], whole.model.state_dict())


def test_ema_off_samples_with_the_raw_weights():
    train, val = resume_data()
    settings = TrainSettings(
        train_steps=2, batch_size=4, lr=1e-3, ema_decay=0.0, seed=3, augment=Augmentation(prob=0.0)
    )
    trainer = DDPMTrainer(TINY8, NoiseSchedule(50), settings)
    trainer.fit(train, val)
    assert trainer.sampling_model is trainer.model
    assert_same_states(trainer.ema.module.state_dict(), trainer.model.state_dict())
    assert_same_states(trainer.best_state, trainer.model.state_dict())


def test_resume_from_missing_checkpoint_starts_fresh(tmp_path):
    trainer = resume_trainer(1)
    assert trainer.resume_from(tmp_path / "nothing" / "last.pt") is False
    assert trainer.step == 0


def test_crash_during_checkpoint_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:20])  # half-written
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_damaged_checkpoint_is_a_one_line_data_error(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(path, resume_trainer(1).state_dict())
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "foreign": b"not a checkpoint\n"}[
            damage
        ]
    )
    with pytest.raises(DataError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    with pytest.raises(DataError):
        resume_trainer(1).resume_from(path)


def test_missing_checkpoint_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "gone.pt")


# --- 8. test subjects never reach a DDPM -------------------------------------------------------


def fake_dataset() -> Dataset:
    ids = [f"L{i}" for i in range(6)] + [f"H{i}" for i in range(6)]
    grades = ["LGG"] * 6 + ["HGG"] * 6
    subjects = pd.DataFrame({"subject_id": ids, "grade": grades})
    images = np.zeros((len(ids), 4, 8, 8), np.float32)
    return Dataset(images, subjects, {"data_hash": "fake"})


SPLITS = {"test": ["L1", "H0", "H4"], "folds": [["L0", "H1"], ["L2", "H2"]]}


def split_subjects(dataset, splits, **kwargs):
    subjects = dataset.subjects
    return ddpm_subjects(list(subjects["subject_id"]), list(subjects["grade"]), splits, **kwargs)


def test_refuse_test_subjects_names_the_leak():
    with pytest.raises(DataError, match="t1"):
        refuse_test_subjects(["a", "t1"], {"test": ["t1"], "folds": [["a"]]})
    with pytest.raises(DataError, match="t1, t2"):
        refuse_test_subjects(["t2", "a", "t1"], {"test": ["t1", "t2"], "folds": []})
    refuse_test_subjects(["a", "b"], {"test": ["t1"], "folds": [["a", "b"]]})


@pytest.mark.parametrize("grade", ["LGG", "HGG"])
def test_split_subjects_excludes_test_and_other_grade(grade):
    dataset = fake_dataset()
    train, val = split_subjects(dataset, SPLITS, grade=grade, val_fraction=0.25, seed=0)
    chosen = set(train) | set(val)
    assert not chosen & set(SPLITS["test"])
    assert all(s.startswith(grade[0]) for s in chosen)
    expected = {s for s in dataset.subjects["subject_id"] if s[0] == grade[0]} - set(SPLITS["test"])
    assert chosen == expected and not set(train) & set(val)
    assert len(val) == max(1, round(0.25 * len(expected)))
    assert split_subjects(dataset, SPLITS, grade=grade, val_fraction=0.25, seed=0) == (train, val)
    splits_by_seed = {
        tuple(split_subjects(dataset, SPLITS, grade=grade, val_fraction=0.25, seed=k)[1])
        for k in range(8)
    }
    assert len(splits_by_seed) > 1  # the seed decides the validation subjects


def test_split_subjects_needs_two_non_test_subjects():
    dataset = fake_dataset()
    splits = {"test": [f"L{i}" for i in range(5)], "folds": []}
    with pytest.raises(DataError, match="LGG"):
        split_subjects(dataset, splits, grade="LGG", val_fraction=0.25, seed=0)


def test_checkpoint_interval_saves_the_last_step_and_only_what_is_due(tmp_path, monkeypatch):
    import glioma.diffusion.training as training

    saved_steps: list[int] = []
    monkeypatch.setattr(
        training, "save_checkpoint", lambda path, state: saved_steps.append(state["step"])
    )
    train, val = resume_data()
    resume_trainer(3).fit(train, val, checkpoint=tmp_path / "last.pt", checkpoint_every_s=3600)
    assert saved_steps == [6], "a long interval still writes the final step, and only it"
    saved_steps.clear()
    resume_trainer(3).fit(train, val, checkpoint=tmp_path / "last.pt", checkpoint_every_s=0)
    assert saved_steps == [2, 4, 6]


def test_every_image_is_seen_once_per_pass_whatever_the_step_count():
    seen = torch.cat([batch_index(step, 6, batch_size=4, seed=0) for step in range(4)])  # 4 + 2
    assert sorted(seen[:6].tolist()) == sorted(seen[6:].tolist()) == list(range(6))
    assert seen[:6].tolist() != seen[6:].tolist(), "each pass has its own seeded order"
    assert steps_for_epochs(3, 6, 4) == 6 and steps_for_epochs(1, 8, 4) == 2
