"""The MI regulariser's forms (issue 17), min-SNR weighting, the lr schedule and copy distances.

Each form is checked against its formula, computed by hand from the same network output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusion_helpers import single_thread, tiny_unet  # noqa: F401  (autouse fixture)
from torch.nn import functional as F

from glioma.config import MainConfig, PrepareConfig, TrainDDPMConfig, build_config
from glioma.diffusion.losses import (
    LITERAL,
    DenoiseTerm,
    MITerm,
    diffusion_loss,
    nearest_other,
)
from glioma.diffusion.mi import normalised_mutual_information
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings, lr_factor
from glioma.diffusion.unet import UNetConfig
from glioma.errors import ConfigError
from glioma.pipeline.steps.train_ddpm import build_trainer
from glioma.pipeline.study import study_graph
from glioma.scoring.memorisation import copy_distances

T = 50


def batch(seed: int = 3, n: int = 6):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand((n, 4, 8, 8), generator=gen) * 2 - 1
    t = torch.tensor([1, 5, 12, 25, 38, 49][:n])
    noise = torch.randn(x0.shape, generator=gen)
    return x0, t, noise


def by_hand(model, schedule, x0, t, noise):
    x_t = schedule.q_sample(x0, t, noise)
    eps_hat = model(x_t, t)
    return eps_hat, schedule.predict_x0(x_t, t, eps_hat), schedule.snr(t).float()


def test_snr_is_abar_over_one_minus_abar():
    s = NoiseSchedule(1000)
    t = torch.tensor([0, 100, 500, 999])
    abar = s.alphas_cumprod[t]
    assert torch.allclose(s.snr(t), abar / (1 - abar))
    # the chain-rule factor 1/sqrt(SNR) of the issue: 0.34 at t = 100, 157 at t = 999
    assert float(1 / s.snr(t)[1].sqrt()) == pytest.approx(0.34, abs=0.01)
    assert float(1 / s.snr(t)[3].sqrt()) == pytest.approx(157, rel=0.01)


@pytest.mark.parametrize("weighting", ["none", "sqrt_snr", "min_snr"])
def test_mi_weighting_multiplies_each_sample_by_its_step_weight(weighting):
    # SNR from ~1000 down to ~0.01
    model, s = tiny_unet(), NoiseSchedule(T, beta_start=1e-3, beta_end=0.2)
    x0, t, noise = batch()
    mi = MITerm(weight=0.1, weighting=weighting, snr_gamma=2.0, scale="raw", target="self")
    terms = diffusion_loss(model, s, x0, t, noise, mi=mi)
    _, x0_hat, snr = by_hand(model, s, x0, t, noise)
    per_sample = normalised_mutual_information(x0_hat, x0)
    weights = {
        "none": torch.ones_like(snr),
        "sqrt_snr": torch.minimum(torch.ones_like(snr), snr.sqrt()),
        "min_snr": torch.minimum(snr, torch.full_like(snr, 2.0)) / 2.0,
    }[weighting]
    assert torch.allclose(terms.mi, (per_sample * weights).mean(), atol=1e-6)
    assert torch.allclose(terms.total, 0.9 * terms.huber + 0.1 * terms.mi)
    if weighting != "none":  # the high-noise samples count less than at full weight
        assert float(weights[-1]) < 0.5 and float(weights[0]) == pytest.approx(1.0)


def test_noise_window_keeps_t_min_to_t_max():
    model, s = tiny_unet(), NoiseSchedule(T)
    x0, t, noise = batch()
    terms = diffusion_loss(
        model, s, x0, t, noise, mi=MITerm(weight=0.1, **(LITERAL | {"t_min": 5}), t_max=25)
    )
    _, x0_hat, _ = by_hand(model, s, x0, t, noise)
    from glioma.diffusion.mi import mutual_information

    per_sample = mutual_information(x0_hat, x0)
    assert torch.allclose(terms.mi, per_sample[1:4].sum() / len(t), atol=1e-6)


def test_relative_scale_gives_the_term_the_huber_magnitude_with_its_own_gradient():
    x0, t, noise = batch()
    s = NoiseSchedule(T)
    relative = MITerm(weight=0.1, scale="relative", target="self")
    model = tiny_unet()
    terms = diffusion_loss(model, s, x0, t, noise, mi=relative)
    # value: 0.9 H + 0.1 H, whatever the term's units
    assert torch.allclose(terms.total, terms.huber, rtol=1e-5)
    terms.total.backward()
    scaled = torch.cat([p.grad.flatten() for p in model.parameters()])
    # gradient: 0.9 dH + 0.1 (H / M) dM, checked against the two gradients taken apart
    model = tiny_unet()
    raw = diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=0.1, scale="raw", target="self"))
    h_grad = torch.autograd.grad(raw.huber, list(model.parameters()), retain_graph=True)
    m_grad = torch.autograd.grad(raw.mi, list(model.parameters()))
    ratio = float(raw.huber.detach() / raw.mi.detach())
    expected = torch.cat([(0.9 * h + 0.1 * ratio * m).flatten() for h, m in zip(h_grad, m_grad)])
    assert torch.allclose(scaled, expected, rtol=1e-4, atol=1e-7)


def test_nearest_target_uses_the_most_correlated_other_image():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand((4, 4, 8, 8), generator=gen) * 2 - 1
    estimates = images[[2, 0, 1, 1]] + 0.01 * torch.randn(images.shape, generator=gen)
    # estimate 0 looks like image 2, 1 like 0, 2 like 1; estimate 3 is image 1 itself (its own
    # index is 3, so 1 is "other" for it)
    assert nearest_other(estimates, images).tolist() == [2, 0, 1, 1]
    # an estimate of its own image is never matched to itself
    assert (nearest_other(images, images) != torch.arange(4)).all()
    model, s = tiny_unet(), NoiseSchedule(T)
    x0, t, noise = batch()
    mi = MITerm(weight=0.1, scale="raw", target="nearest")
    terms = diffusion_loss(model, s, x0, t, noise, mi=mi)
    _, x0_hat, _ = by_hand(model, s, x0, t, noise)
    chosen = nearest_other(x0_hat, x0)
    assert (chosen != torch.arange(len(x0))).all()
    expected = normalised_mutual_information(x0_hat, x0[chosen]).mean()
    assert torch.allclose(terms.mi, expected, atol=1e-6)
    assert terms.mi.requires_grad


def test_min_snr_huber_weights_each_sample_by_min_snr_gamma_over_snr():
    model, s = tiny_unet(), NoiseSchedule(T)
    x0, t, noise = batch()
    terms = diffusion_loss(model, s, x0, t, noise, denoise=DenoiseTerm(weighting="min_snr"))
    eps_hat, _, snr = by_hand(model, s, x0, t, noise)
    per_sample = F.smooth_l1_loss(eps_hat, noise, reduction="none").flatten(1).mean(1)
    weights = torch.minimum(snr, torch.full_like(snr, 5.0)) / snr
    assert torch.allclose(terms.huber, (per_sample * weights).mean(), atol=1e-7)
    assert float(weights[0]) < 0.05 and float(weights[-1]) == pytest.approx(1.0)


def test_the_default_form_is_the_chosen_one_at_the_papers_weight_in_both_profiles():
    """The ddpm_mi setup's DDPMs: weight 0.1 and the chosen form (config and library agree);
    the literal form stays selectable."""
    for profile in ("quick", "paper"):
        graph = study_graph(build_config(MainConfig, {"profile": profile}))
        ddpms = [n.config for n in graph.nodes if n.step == "train_ddpm"]
        mi = [c for c in ddpms if c.variant == "mi"]
        assert mi and all(c.mi_weight == 0.1 for c in mi), profile
        assert all(c.mi_weight == 0.0 for c in ddpms if c.variant == "std")
        forms = {(c.mi_mode, c.mi_weighting, c.mi_scale, c.mi_target, c.mi_t_min) for c in mi}
        assert forms == {("nmi", "sqrt_snr", "relative", "nearest", 0)}, profile
        size = build_config(PrepareConfig, {"profile": profile}).patch_size
        for config in mi[:1]:  # one network per profile is enough to read the term
            term = build_trainer(config, size, 20).settings.mi
            assert (term.mode, term.weighting, term.scale, term.target) == (
                "nmi", "sqrt_snr", "relative", "nearest"
            ), profile  # fmt: skip
            assert term.t_min == 0 and term.t_max == 0
    assert MITerm(weight=0.1) == term
    literal = {f"mi_{k}": v for k, v in LITERAL.items()}
    config = build_config(TrainDDPMConfig, {"grade": "HGG", "mi_weight": 0.1, **literal})
    assert build_trainer(config, 32, 20).settings.mi == MITerm(weight=0.1, **LITERAL)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mi_weighting": "snr"}, "mi_weighting"),
        ({"mi_scale": "big"}, "mi_scale"),
        ({"mi_target": "all"}, "mi_target"),
        ({"mi_t_min": 500, "mi_t_max": 100}, "mi_t_max"),
        ({"mi_pair": "eps", "mi_target": "nearest"}, "mi_target"),
        ({"loss_weighting": "p2"}, "loss_weighting"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"mi_t_max": 1000}, "mi_t_max"),
    ],
)
def test_bad_forms_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        build_config(TrainDDPMConfig, {"grade": "HGG", **overrides})


def test_lr_factor_warms_up_then_follows_a_half_cosine():
    kw = {"total": 100, "warmup": 10}
    assert lr_factor(0, schedule="cosine", **kw) == pytest.approx(0.1)
    assert lr_factor(9, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(10, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(55, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(99, schedule="cosine", **kw) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 89 / 90))
    )
    assert lr_factor(50, schedule="constant", **kw) == 1.0
    assert lr_factor(0, total=100, warmup=0, schedule="constant") == 1.0


def test_trainer_sets_the_scheduled_learning_rate():
    config = UNetConfig(
        image_size=8, base_channels=8, channel_mults=(1,), num_res_blocks=1,
        attention_resolutions=(),
    )  # fmt: skip
    settings = TrainSettings(
        train_steps=4, batch_size=2, lr=1e-3, lr_schedule="cosine", lr_warmup_steps=2
    )
    trainer = DDPMTrainer(config, NoiseSchedule(T), settings)
    images = torch.rand((4, 4, 8, 8)) * 2 - 1
    seen = []
    for _ in range(4):
        trainer.train_step(images)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    expected = [1e-3 * lr_factor(i, total=4, warmup=2, schedule="cosine") for i in range(4)]
    assert seen == pytest.approx(expected)


def test_copy_distances_match_brute_force_and_flag_copies():
    rng = np.random.default_rng(0)
    training = rng.uniform(-1, 1, (7, 4, 6, 6)).astype(np.float32)
    copy = training[3] + 0.01 * rng.standard_normal((4, 6, 6)).astype(np.float32)
    between = 0.5 * (training[0] + training[1])  # equally far from two images: not a copy
    synthetic = np.stack([copy, between, rng.uniform(-1, 1, (4, 6, 6)).astype(np.float32)])
    result = copy_distances(synthetic, training, chunk=2)
    brute = np.sqrt(((synthetic[:, None] - training[None]) ** 2).sum(axis=(2, 3, 4)))
    ordered = np.sort(brute, axis=1)
    assert np.allclose(result.nearest, ordered[:, 0], rtol=1e-5)
    assert np.allclose(result.second, ordered[:, 1], rtol=1e-5)
    assert result.index.tolist()[0] == 3
    assert result.copies().tolist() == [True, False, False]
    assert result.fraction() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        copy_distances(synthetic, training[:1])
