"""The diffusion model: schedule arithmetic, the MI regulariser, the loss, the samplers, a tiny
DDPM that learns, and training that can be killed and resumed to the same weights.

Every network here is tiny (8x8 or 16x16 images, 8 or 16 base channels) so the file runs in well
under a minute on a small CPU. Torch runs single-threaded in this file: on a busy two-core
machine its thread pool spins and small tensor ops become 20x slower.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from glioma.data.dataset import Dataset
from glioma.diffusion.checkpoint import load_checkpoint, save_checkpoint
from glioma.diffusion.losses import diffusion_loss
from glioma.diffusion.mi import mutual_information
from glioma.diffusion.pyfunc import LoadedDDPM, sampling_state
from glioma.diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings
from glioma.diffusion.unet import UNet, UNetConfig
from glioma.errors import DataError
from glioma.pipeline.train_ddpm_step import ddpm_subjects, refuse_test_subjects

TINY8 = UNetConfig(
    image_size=8,
    base_channels=8,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(4,),
)
TINY16 = UNetConfig(
    image_size=16,
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(8,),
)


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_unet(config: UNetConfig = TINY8, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(config)


def images_in_range(n: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, 4, size, size), generator=gen) * 2 - 1


def structured_images(size: int = 16) -> torch.Tensor:
    """Four smooth, distinct images in [-1, 1]: two blobs and two ramps, one per channel shift."""
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    blob = lambda cx, cy: torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.15) * 2 - 1  # noqa: E731
    bases = [blob(-0.4, -0.4), blob(0.4, 0.3), x.clone(), -y]
    out = []
    for base in bases:
        out.append(torch.stack([base, base.flip(0), base.flip(1), -base]))
    return torch.stack(out).clamp(-1, 1)


# --- 1. schedule -------------------------------------------------------------------------------


def test_schedule_values_match_hand_computation():
    s = NoiseSchedule(1000, 1e-4, 0.02)
    b0, b_last = 1e-4, 0.02
    b1 = 1e-4 + (0.02 - 1e-4) / 999
    assert s.betas.dtype == torch.float64 and s.betas.shape == (1000,)
    assert float(s.betas[0]) == pytest.approx(b0, rel=1e-12)
    assert float(s.betas[-1]) == pytest.approx(b_last, rel=1e-12)
    assert float(s.betas[1]) == pytest.approx(b1, rel=1e-12)
    steps = torch.diff(s.betas)
    assert torch.allclose(steps, torch.full_like(steps, (0.02 - 1e-4) / 999), rtol=1e-9)
    abar0, abar1 = 1 - b0, (1 - b0) * (1 - b1)
    assert float(s.alphas_cumprod[0]) == pytest.approx(abar0, rel=1e-14)
    assert float(s.alphas_cumprod[1]) == pytest.approx(abar1, rel=1e-14)
    assert float(s.alphas_cumprod_prev[0]) == 1.0
    assert float(s.alphas_cumprod_prev[1]) == pytest.approx(abar0, rel=1e-14)
    # the product of 1000 factors, by hand
    assert float(s.alphas_cumprod[-1]) == pytest.approx(
        math.prod(1 - float(b) for b in s.betas), rel=1e-10
    )
    assert float(s.posterior_variance[0]) == 0.0
    assert float(s.posterior_variance[1]) == pytest.approx(
        b1 * (1 - abar0) / (1 - abar1), rel=1e-12
    )
    assert torch.all(s.posterior_variance[1:] > 0)
    assert torch.all(s.posterior_variance[1:] < s.betas[1:])  # beta~_t < beta_t


@pytest.mark.parametrize(
    "args", [(1, 1e-4, 0.02), (10, 0.0, 0.02), (10, 0.02, 1e-4), (10, 1e-4, 1.0)]
)
def test_schedule_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        NoiseSchedule(*args)


def test_posterior_matches_gaussian_product():
    """q(x_{t-1} | x_t, x_0) from the product of N(x_t; sqrt(a_t) x_{t-1}, b_t) and
    N(x_{t-1}; sqrt(abar_{t-1}) x_0, 1 - abar_{t-1}): precisions add, means are weighted."""
    s = NoiseSchedule(100, 1e-4, 0.05)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn((6, 4, 5, 5), generator=gen, dtype=torch.float64)
    x_t = torch.randn((6, 4, 5, 5), generator=gen, dtype=torch.float64)
    t = torch.tensor([1, 2, 17, 50, 98, 99])
    beta = s.betas[t].view(-1, 1, 1, 1)
    alpha = 1 - beta
    abar_prev = s.alphas_cumprod[t - 1].view(-1, 1, 1, 1)
    precision = alpha / beta + 1 / (1 - abar_prev)
    mean = (alpha.sqrt() / beta * x_t + abar_prev.sqrt() / (1 - abar_prev) * x0) / precision
    assert torch.allclose(s.posterior_mean(x0, x_t, t), mean, rtol=1e-10, atol=1e-12)
    assert torch.allclose(s.posterior_variance[t], 1 / precision.flatten(), rtol=1e-10)
    # at t = 0 the posterior is a point mass on x_0
    zero = torch.zeros(6, dtype=torch.long)
    assert torch.allclose(s.posterior_mean(x0, x_t, zero), x0, rtol=1e-12, atol=1e-12)


def test_gather_shapes_and_casts():
    s = NoiseSchedule(50)
    like = torch.zeros((3, 4, 2, 2), dtype=torch.float32)
    picked = s.gather(s.betas, torch.tensor([0, 10, 49]), like)
    assert picked.shape == (3, 1, 1, 1) and picked.dtype == torch.float32
    assert torch.allclose(picked.flatten(), s.betas[[0, 10, 49]].float())


# --- 2. forward process ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 10, 250, 999])
def test_q_sample_moments(step):
    s = NoiseSchedule(1000)
    c, n = 0.7, 200
    x0 = torch.full((n, 1, 16, 16), c)
    gen = torch.Generator().manual_seed(step)
    noise = torch.randn(x0.shape, generator=gen)
    x_t = s.q_sample(x0, torch.full((n,), step), noise)
    abar = float(s.alphas_cumprod[step])
    count, sd = x_t.numel(), math.sqrt(1 - abar)
    assert float(x_t.mean()) == pytest.approx(math.sqrt(abar) * c, abs=5 * sd / math.sqrt(count))
    assert float(x_t.std()) == pytest.approx(sd, rel=5 / math.sqrt(2 * count))


def test_q_sample_mixes_steps_per_sample():
    s = NoiseSchedule(100)
    x0, noise = torch.ones((2, 4, 3, 3)), torch.zeros((2, 4, 3, 3))
    x_t = s.q_sample(x0, torch.tensor([0, 99]), noise)
    assert torch.allclose(x_t[0], torch.full_like(x_t[0], math.sqrt(float(s.alphas_cumprod[0]))))
    assert torch.allclose(x_t[1], torch.full_like(x_t[1], math.sqrt(float(s.alphas_cumprod[99]))))


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule(1000)
    gen = torch.Generator().manual_seed(2)
    t = torch.tensor([0, 1, 100, 500, 900, 999])
    x0 = torch.rand((6, 4, 8, 8), generator=gen, dtype=torch.float64) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    back = s.predict_x0(s.q_sample(x0, t, noise), t, noise)
    assert torch.allclose(back, x0, rtol=0, atol=1e-10)
    # float32 too, away from the last steps where sqrt(abar_t) ~ 0.006 amplifies rounding
    x32, n32, t32 = x0[:4].float(), noise[:4].float(), t[:4]
    back32 = s.predict_x0(s.q_sample(x32, t32, n32), t32, n32)
    assert torch.allclose(back32, x32, atol=1e-4)


# --- 3. mutual information ---------------------------------------------------------------------


def test_mi_near_zero_for_independent_images():
    a, b = images_in_range(2, 64, seed=0), images_in_range(2, 64, seed=1)
    mi = mutual_information(a, b)
    assert mi.shape == (2,)
    assert torch.all(mi >= -1e-6) and torch.all(mi < 0.05)


def test_mi_high_for_identical_images():
    a = images_in_range(2, 64)
    mi = mutual_information(a, a)
    assert torch.all(mi > 1.0)
    # identical images: MI equals the entropy of the soft marginal
    assert torch.all(mi <= math.log(16) + 1e-5)


def test_mi_decreases_as_noise_grows():
    a = images_in_range(1, 64)
    noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(3))
    values = [float(mutual_information(a, a + s * noise)) for s in (0, 0.05, 0.1, 0.2, 0.4, 0.8)]
    assert all(x > y for x, y in zip(values, values[1:])), values
    assert values[-1] < 0.5 * values[0]


def test_mi_symmetric_and_per_sample():
    a, b = images_in_range(3, 16, seed=4), images_in_range(3, 16, seed=5)
    b = 0.5 * a + 0.5 * b
    assert torch.allclose(mutual_information(a, b), mutual_information(b, a), atol=1e-6)
    # each sample on its own gives the same value as inside a batch
    single = torch.cat([mutual_information(a[i : i + 1], b[i : i + 1]) for i in range(3)])
    assert torch.allclose(single, mutual_information(a, b), atol=1e-6)


def test_mi_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal shapes"):
        mutual_information(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 7))


def test_mi_gradient_reaches_a_network():
    torch.manual_seed(6)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    x = images_in_range(2, 16, seed=6)
    mi = mutual_information(torch.tanh(conv(x)), x).mean()
    mi.backward()
    grad = conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


# --- 4. loss -----------------------------------------------------------------------------------


def loss_batch(seed: int = 7):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand((4, 4, 8, 8), generator=gen) * 2 - 1
    t = torch.randint(0, 50, (4,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    return x0, t, noise


def test_loss_without_mi_is_plain_huber():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(model, s, x0, t, noise, mi_weight=0.0)
    expected = F.smooth_l1_loss(model(s.q_sample(x0, t, noise), t), noise)
    assert torch.equal(terms.total, expected)
    assert torch.equal(terms.huber, expected)
    assert not terms.mi.requires_grad  # monitored only
    assert terms.total.requires_grad
    assert set(terms.detached()) == {"loss", "huber", "mi"}


def test_loss_with_mi_mixes_terms():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(model, s, x0, t, noise, mi_weight=0.1)
    assert terms.mi.requires_grad
    assert torch.allclose(terms.total, 0.9 * terms.huber + 0.1 * terms.mi)
    x_t = s.q_sample(x0, t, noise)
    x0_hat = s.predict_x0(x_t, t, model(x_t, t))
    assert torch.allclose(terms.mi, mutual_information(x0_hat, x0).mean())


def grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_mi_gradient_reaches_the_model():
    s = NoiseSchedule(50)
    x0, t, noise = loss_batch()
    by_weight = {}
    for weight in (0.0, 0.5):
        model = tiny_unet()
        diffusion_loss(model, s, x0, t, noise, mi_weight=weight).total.backward()
        by_weight[weight] = grads(model)
    assert not torch.allclose(by_weight[0.0], by_weight[0.5])
    # the MI term alone has a non-zero, finite gradient on the network's weights
    model = tiny_unet()
    diffusion_loss(model, s, x0, t, noise, mi_weight=0.5).mi.backward()
    mi_grad = grads(model)
    assert torch.isfinite(mi_grad).all() and mi_grad.abs().sum() > 0


def test_loss_eps_pair_and_bad_pair():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(model, s, x0, t, noise, mi_weight=0.1, mi_pair="eps")
    eps_hat = model(s.q_sample(x0, t, noise), t)
    assert torch.allclose(terms.mi, mutual_information(eps_hat, noise).mean())
    assert torch.allclose(terms.total, 0.9 * terms.huber + 0.1 * terms.mi)
    with pytest.raises(ValueError, match="mi_pair"):
        diffusion_loss(model, s, x0, t, noise, mi_weight=0.1, mi_pair="x_t")


# --- 5. a tiny DDPM learns ---------------------------------------------------------------------


def test_tiny_ddpm_overfits_structured_images():
    images = structured_images(16)
    settings = TrainSettings(epochs=60, batch_size=4, lr=2e-3, ema_decay=0.9, seed=0)
    trainer = DDPMTrainer(TINY16, NoiseSchedule(100), settings)
    trainer.fit(images.repeat(3, 1, 1, 1), images)
    losses = [m["train_huber"] for m in trainer.history]
    assert len(losses) == 60 and all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert first > 3 * last, (first, last)
    assert trainer.best_state is not None and 0 <= trainer.best_epoch < 60
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
    model, s = tiny_unet().eval(), NoiseSchedule(20, 1e-3, 0.2)
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
    model, s = tiny_unet().eval(), NoiseSchedule(30, 1e-3, 0.3)
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
    d = ddpm.sample(3, seed=11, sampler="ddpm", batch_size=2)
    e = ddpm.sample(3, seed=11, sampler="ddpm", batch_size=2)
    assert d.shape == (3, 4, 8, 8) and np.array_equal(d, e)
    assert ddpm.sample(0).shape == (0, 4, 8, 8)


# --- 7. kill and resume ------------------------------------------------------------------------


def resume_data():
    return images_in_range(6, 8, seed=9), images_in_range(2, 8, seed=10)


def resume_trainer(epochs: int) -> DDPMTrainer:
    settings = TrainSettings(epochs=epochs, batch_size=4, lr=1e-3, ema_decay=0.9, seed=3)
    return DDPMTrainer(TINY8, NoiseSchedule(50), settings)


def assert_same_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_killed_and_resumed_training_matches_uninterrupted(tmp_path):
    train, val = resume_data()
    whole = resume_trainer(4)
    whole.fit(train, val, tmp_path / "a" / "last.pt")

    last = tmp_path / "b" / "last.pt"
    first = resume_trainer(2)
    first.fit(train, val, last)
    assert load_checkpoint(last)["epoch"] == 2
    # a kill during a later write leaves its temporary file beside the checkpoint
    (last.parent / ".last.pt.crashed.tmp").write_bytes(b"half a checkpoint")
    resumed = resume_trainer(4)
    assert resumed.resume_from(last)
    assert resumed.epoch == 2 and len(resumed.history) == 2
    resumed.fit(train, val, last)

    assert resumed.epoch == whole.epoch == 4
    assert_same_states(resumed.model.state_dict(), whole.model.state_dict())
    assert_same_states(resumed.ema.state_dict(), whole.ema.state_dict())
    assert_same_states(resumed.best_state, whole.best_state)
    assert resumed.best_epoch == whole.best_epoch and resumed.best_val == whole.best_val
    assert resumed.history == whole.history
    on_disk = load_checkpoint(last)
    assert on_disk["epoch"] == 4
    assert_same_states(on_disk["model"], whole.model.state_dict())


def test_ema_off_samples_with_the_raw_weights():
    train, val = resume_data()
    settings = TrainSettings(epochs=1, batch_size=4, lr=1e-3, ema_decay=0.0, seed=3)
    trainer = DDPMTrainer(TINY8, NoiseSchedule(50), settings)
    trainer.fit(train, val)
    assert trainer.sampling_model is trainer.model
    assert_same_states(trainer.ema.module.state_dict(), trainer.model.state_dict())
    assert_same_states(trainer.best_state, trainer.model.state_dict())


def test_resume_from_missing_checkpoint_starts_fresh(tmp_path):
    trainer = resume_trainer(1)
    assert trainer.resume_from(tmp_path / "nothing" / "last.pt") is False
    assert trainer.epoch == 0


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


def test_refuse_test_subjects_names_the_leak():
    with pytest.raises(DataError, match="t1"):
        refuse_test_subjects(["a", "t1"], {"test": ["t1"], "folds": [["a"]]})
    with pytest.raises(DataError, match="t1, t2"):
        refuse_test_subjects(["t2", "a", "t1"], {"test": ["t1", "t2"], "folds": []})
    refuse_test_subjects(["a", "b"], {"test": ["t1"], "folds": [["a", "b"]]})


@pytest.mark.parametrize("grade", ["LGG", "HGG"])
def test_ddpm_subjects_excludes_test_and_other_grade(grade):
    dataset = fake_dataset()
    train, val = ddpm_subjects(dataset, SPLITS, grade, val_fraction=0.25, seed=0)
    chosen = set(train) | set(val)
    assert not chosen & set(SPLITS["test"])
    assert all(s.startswith(grade[0]) for s in chosen)
    expected = {s for s in dataset.subjects["subject_id"] if s[0] == grade[0]} - set(SPLITS["test"])
    assert chosen == expected and not set(train) & set(val)
    assert len(val) == max(1, round(0.25 * len(expected)))
    assert ddpm_subjects(dataset, SPLITS, grade, 0.25, seed=0) == (train, val)
    splits_by_seed = {
        tuple(ddpm_subjects(dataset, SPLITS, grade, 0.25, seed=k)[1]) for k in range(8)
    }
    assert len(splits_by_seed) > 1  # the seed decides the validation subjects


def test_ddpm_subjects_needs_two_non_test_subjects():
    dataset = fake_dataset()
    splits = {"test": [f"L{i}" for i in range(5)], "folds": []}
    with pytest.raises(DataError, match="LGG"):
        ddpm_subjects(dataset, splits, "LGG", 0.25, seed=0)
