"""The diffusion maths: schedule arithmetic, the forward process, the MI regulariser, the loss.

Every network here is tiny (8x8 or 16x16 images, 8 or 16 base channels).
"""

from __future__ import annotations

import math

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
from torch.nn import functional as F

from glioma.diffusion.losses import LITERAL, MITerm, diffusion_loss
from glioma.diffusion.mi import mutual_information, normalised_mutual_information
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.unet import Guided, UNet, UNetConfig
from glioma.errors import ConfigError

# --- 1. schedule -------------------------------------------------------------------------------


def test_schedule_values_match_hand_computation():
    s = NoiseSchedule(1000, beta_start=1e-4, beta_end=0.02)
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
    num_steps, beta_start, beta_end = args
    with pytest.raises(ConfigError, match="num_steps|beta_start"):
        NoiseSchedule(num_steps, beta_start=beta_start, beta_end=beta_end)


def test_posterior_matches_gaussian_product():
    """q(x_{t-1} | x_t, x_0) from the product of N(x_t; sqrt(a_t) x_{t-1}, b_t) and
    N(x_{t-1}; sqrt(abar_{t-1}) x_0, 1 - abar_{t-1}): precisions add, means are weighted."""
    s = NoiseSchedule(100, beta_start=1e-4, beta_end=0.05)
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
    terms = diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=0.0))
    expected = F.smooth_l1_loss(model(s.q_sample(x0, t, noise), t), noise)
    # The loss averages per sample, then over the batch: the same value as one global mean,
    # summed in another order (bitwise equality depends on the CPU's vector width).
    assert torch.allclose(terms.total, expected, rtol=1e-6, atol=0.0)
    assert torch.equal(terms.huber, terms.total)
    assert not terms.mi.requires_grad  # monitored only
    assert terms.total.requires_grad
    assert set(terms.detached()) == {"loss", "huber", "mi"}


def test_loss_with_mi_mixes_terms():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=0.1, **LITERAL))
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
        diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=weight, **LITERAL)).total.backward()
        by_weight[weight] = grads(model)
    assert not torch.allclose(by_weight[0.0], by_weight[0.5])
    # the MI term alone has a non-zero, finite gradient on the network's weights
    model = tiny_unet()
    diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=0.5, **LITERAL)).mi.backward()
    mi_grad = grads(model)
    assert torch.isfinite(mi_grad).all() and mi_grad.abs().sum() > 0


def test_loss_eps_pair_and_bad_pair():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(model, s, x0, t, noise, mi=MITerm(weight=0.1, pair="eps", **LITERAL))
    eps_hat = model(s.q_sample(x0, t, noise), t)
    assert torch.allclose(terms.mi, mutual_information(eps_hat, noise).mean())
    assert torch.allclose(terms.total, 0.9 * terms.huber + 0.1 * terms.mi)
    with pytest.raises(ConfigError, match="mi_pair"):
        MITerm(weight=0.1, pair="x_t")
    with pytest.raises(ConfigError, match="mi_mode"):
        MITerm(weight=0.1, mode="entropy")


def test_mi_t_min_gates_the_term_by_noise_level():
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, _, noise = loss_batch()
    t = torch.tensor([2, 10, 30, 45])
    x_t = s.q_sample(x0, t, noise)
    per_sample = mutual_information(s.predict_x0(x_t, t, model(x_t, t)), x0)
    gated = diffusion_loss(
        model, s, x0, t, noise, mi=MITerm(weight=0.1, **(LITERAL | {"t_min": 20}))
    )
    # the mean over the batch of 1[t >= t_min] * MI: the two low-noise samples count as 0
    assert torch.allclose(gated.mi, per_sample[2:].sum() / 4)
    assert torch.allclose(gated.total, 0.9 * gated.huber + 0.1 * gated.mi)
    none = diffusion_loss(
        model, s, x0, t, noise, mi=MITerm(weight=0.1, **(LITERAL | {"t_min": 49}))
    )
    assert float(none.mi.detach()) == 0.0 and torch.allclose(none.total, 0.9 * none.huber)


def test_normalised_mi_is_in_unit_range_and_stable_across_bin_counts():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand((3, 4, 16, 16), generator=gen) * 2 - 1
    b = torch.rand((3, 4, 16, 16), generator=gen) * 2 - 1
    for bins in (8, 16, 32):
        same, other = (
            normalised_mutual_information(a, a, bins),
            normalised_mutual_information(a, b, bins),
        )
        assert ((other >= 0) & (other < 0.05)).all() and ((same > 0.5) & (same <= 1)).all()
    # MI grows with the histogram (log K), NMI much less: mi_weight keeps its meaning
    mi_ratio = float(mutual_information(a, a, 32).mean() / mutual_information(a, a, 8).mean())
    nmi_ratio = float(
        normalised_mutual_information(a, a, 32).mean()
        / normalised_mutual_information(a, a, 8).mean()
    )
    assert mi_ratio > 2.0 and nmi_ratio < 1.5, (mi_ratio, nmi_ratio)  # measured 2.31, 1.37
    model, s = tiny_unet(), NoiseSchedule(50)
    x0, t, noise = loss_batch()
    terms = diffusion_loss(
        model, s, x0, t, noise, mi=MITerm(weight=0.1, **(LITERAL | {"mode": "nmi"}))
    )
    x_t = s.q_sample(x0, t, noise)
    expected = normalised_mutual_information(s.predict_x0(x_t, t, model(x_t, t)), x0).mean()
    assert torch.allclose(terms.mi, expected) and terms.mi.requires_grad


def test_classifier_free_guidance_mixes_conditional_and_unconditional():
    torch.manual_seed(0)
    model = UNet(UNetConfig(image_size=8, base_channels=8, channel_mults=(1,), num_classes=2,
                            attention_resolutions=()))  # fmt: skip
    with torch.no_grad():
        model.class_embed.weight.normal_()  # distinct classes from the start
        x, t = torch.randn(3, 4, 8, 8), torch.tensor([1, 5, 9])
        cond = model(x, t, torch.ones(3, dtype=torch.long))
        uncond = model(x, t)  # no label: the null class
        assert torch.allclose(uncond, model(x, t, torch.full((3,), 2)))
        assert not torch.allclose(cond, model(x, t, torch.zeros(3, dtype=torch.long)))
        assert torch.allclose(Guided(model, 1, 1.0)(x, t), cond, atol=1e-6)
        guided = Guided(model, 1, 3.0)(x, t)
        assert torch.allclose(guided, uncond + 3.0 * (cond - uncond), atol=1e-5)
