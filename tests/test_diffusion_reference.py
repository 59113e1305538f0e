"""The schedules and parameterisations against their papers and against diffusers' schedulers.

diffusers (a dev dependency, never imported by the suite's code) is the reference
implementation: its ``DDPMScheduler``/``DDIMScheduler`` tables, ``add_noise``, ``get_velocity``
and whole sampling loops must give our numbers to float32 rounding. Chen's sigmoid schedule is
not in diffusers; it is checked against its closed form. An exact denoiser of Gaussian data,
given in each parameterisation, must make both samplers reproduce the data under every
schedule.
"""

from __future__ import annotations

import math

import diffusers  # the dev extra: the reference implementation
import pytest
import torch
from diffusion_helpers import single_thread, tiny_unet  # noqa: F401  (autouse fixture)
from torch import nn

from glioma.diffusion.losses import DenoiseTerm, denoise_weights, diffusion_loss
from glioma.diffusion.samplers import ddim_sample, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.settings import ScheduleConfig
from glioma.errors import ConfigError

PREDICTION_TYPES = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}
BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def reference(cls, schedule: NoiseSchedule, **extra):
    """diffusers' scheduler ``cls`` configured as ``schedule``."""
    config = schedule.config
    return cls(
        num_train_timesteps=config.num_steps,
        beta_schedule=BETA_SCHEDULES[config.schedule],
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        rescale_betas_zero_snr=config.zero_terminal_snr,
        prediction_type=PREDICTION_TYPES[config.prediction],
        clip_sample=True,
        **extra,
    )


@pytest.mark.parametrize("zero_snr", [False, True])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_tables_match_diffusers(kind, zero_snr):
    ours = NoiseSchedule(1000, schedule=kind, zero_terminal_snr=zero_snr, prediction="v")
    theirs = reference(diffusers.DDPMScheduler, ours)
    assert torch.allclose(ours.alphas_cumprod.float(), theirs.alphas_cumprod, rtol=1e-5, atol=1e-7)
    # diffusers rescales in float32: its smallest betas carry ~2e-8 of rounding, ours float64
    assert torch.allclose(ours.betas.float(), theirs.betas, rtol=1e-5, atol=1e-6)
    if zero_snr:
        assert float(ours.alphas_cumprod[-1]) == 0.0 and float(ours.snr(torch.tensor([999]))) == 0
    else:
        assert 0 < float(ours.alphas_cumprod[-1]) < 1e-3


def test_sigmoid_schedule_is_chens_closed_form():
    """abar(u) = (sig(3) - sig(6u - 3)) / (sig(3) - sig(-3)): abar(1/2) = 1/2 by symmetry, and
    beta_t = 1 - abar(t+1/T) / abar(t/T), capped at 0.999 (the last one: abar(1) = 0)."""
    s = NoiseSchedule(1000, schedule="sigmoid")
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    abar = lambda u: (sig(3) - sig(6 * u - 3)) / (sig(3) - sig(-3))  # noqa: E731
    assert float(s.alphas_cumprod[499]) == pytest.approx(abar(0.5), rel=1e-9)
    assert abar(0.5) == pytest.approx(0.5, rel=1e-12)
    for t in (0, 1, 250, 900):
        assert float(s.betas[t]) == pytest.approx(1 - abar((t + 1) / 1000) / abar(t / 1000))
    assert float(s.betas[-1]) == pytest.approx(0.999)
    assert torch.all(torch.diff(s.alphas_cumprod) < 0)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_forward_process_and_targets_match_diffusers(prediction):
    ours = NoiseSchedule(1000, schedule="cosine", prediction=prediction)
    theirs = reference(diffusers.DDPMScheduler, ours)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand((5, 4, 6, 6), generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([0, 10, 500, 900, 999])
    x_t = ours.q_sample(x0, t, noise)
    assert torch.allclose(x_t, theirs.add_noise(x0, noise, t), atol=1e-5)
    expected = {"eps": noise, "x0": x0, "v": theirs.get_velocity(x0, noise, t)}[prediction]
    assert torch.allclose(ours.target(x0, t, noise), expected, atol=1e-5)
    # the target gives back x0 and eps (away from the cosine's last step, where abar ~ 1e-9)
    early = slice(0, 4)
    target = ours.target(x0, t, noise)[early]
    x0_hat = ours.predict_x0(x_t[early], t[early], target)
    assert torch.allclose(x0_hat, x0[early], atol=1e-3)
    assert torch.allclose(ours.predict_eps(x_t[early], t[early], x0_hat), noise[early], atol=2e-2)


@pytest.mark.parametrize(
    ("prediction", "kind", "zero_snr"),
    [("eps", "linear", False), ("v", "cosine", False), ("v", "linear", True), ("x0", "linear", 0)],
)
def test_samplers_match_diffusers_step_for_step(prediction, kind, zero_snr):
    """Whole sampling loops with the same network and the same noise draws: ancestral DDPM
    (``DDPMScheduler``, fixed small variance) and DDIM with every step, eta 0
    (``DDIMScheduler``, the clipped x0's eps, final alpha 1)."""
    T, shape = 40, (2, 4, 8, 8)
    ours = NoiseSchedule(
        T, schedule=kind, zero_terminal_snr=zero_snr, prediction=prediction, beta_end=0.2
    )
    model = tiny_unet(seed=3).eval()
    ddpm = reference(diffusers.DDPMScheduler, ours, variance_type="fixed_small")
    ddim = reference(
        diffusers.DDIMScheduler, ours, set_alpha_to_one=True, timestep_spacing="linspace"
    )
    for scheduler, sampler in ((ddpm, "ddpm"), (ddim, "ddim")):
        scheduler.set_timesteps(T)
        gen = torch.Generator().manual_seed(7)
        x = torch.randn(shape, generator=gen)
        with torch.no_grad():
            for step in scheduler.timesteps:
                t = torch.full((shape[0],), int(step), dtype=torch.long)
                extra = {"use_clipped_model_output": True} if sampler == "ddim" else {}
                x = scheduler.step(model(x, t), step, x, generator=gen, **extra).prev_sample
        gen = torch.Generator().manual_seed(7)
        if sampler == "ddpm":
            mine = ddpm_sample(model, ours, shape, generator=gen)
        else:
            mine = ddim_sample(model, ours, shape, steps=T, generator=gen)
        assert torch.allclose(mine, x.clamp(-1, 1), atol=2e-4), sampler


class GaussianDenoiser(nn.Module):
    """The exact denoiser for data x_0 ~ N(m, sd^2), pixelwise, in the schedule's
    parameterisation: E[x_0 | x_t] = m + sqrt(abar) sd^2 (x_t - sqrt(abar) m) / (abar sd^2 +
    1 - abar), and eps and v by the same linear maps as the targets."""

    def __init__(self, schedule: NoiseSchedule, m: float, sd: float):
        super().__init__()
        self.schedule, self.m, self.sd = schedule, m, sd

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.schedule.gather(self.schedule.alphas_cumprod, t, x)
        var = abar * self.sd**2 + 1 - abar
        x0 = self.m + abar.sqrt() * self.sd**2 * (x - abar.sqrt() * self.m) / var
        eps = (1 - abar).sqrt() * (x - abar.sqrt() * self.m) / var
        prediction = self.schedule.prediction
        if prediction == "x0":
            return x0
        if prediction == "v":
            return abar.sqrt() * eps - (1 - abar).sqrt() * x0
        return eps


@pytest.mark.parametrize(
    ("prediction", "kind", "zero_snr"),
    [("v", "linear", 0), ("v", "sigmoid", 1), ("x0", "cosine", 0), ("eps", "sigmoid", 0)],
)
def test_samplers_recover_gaussian_data_in_every_parameterisation(prediction, kind, zero_snr):
    s = NoiseSchedule(1000, schedule=kind, zero_terminal_snr=zero_snr, prediction=prediction)
    m, sd, n = 0.2, 0.2, 6000
    oracle = GaussianDenoiser(s, m, sd)
    for x in (
        ddim_sample(oracle, s, (n, 1, 1, 1), steps=200, generator=torch.Generator().manual_seed(0)),
        ddpm_sample(oracle, s, (n, 1, 1, 1), generator=torch.Generator().manual_seed(1)),
    ):
        assert float(x.mean()) == pytest.approx(m, abs=5 * sd / math.sqrt(n))
        assert float(x.std()) == pytest.approx(sd, rel=0.06)


def test_min_snr_weights_take_each_parameterisations_form():
    """Hang et al. (2023): the x0-loss weight min(SNR, gamma) in each parameterisation."""
    snr = torch.tensor([0.0, 0.5, 5.0, 100.0], dtype=torch.float64)
    term = DenoiseTerm(weighting="min_snr", snr_gamma=5.0)
    clipped = snr.clamp(max=5.0)
    assert torch.allclose(denoise_weights(term, snr, "v"), clipped / (snr + 1))
    assert torch.allclose(denoise_weights(term, snr, "x0"), clipped)
    assert torch.allclose(denoise_weights(term, snr[1:], "eps"), clipped[1:] / snr[1:])
    assert torch.equal(denoise_weights(DenoiseTerm(), snr, "v"), torch.ones_like(snr))


def test_the_loss_learns_the_parameterisations_target():
    """A network that outputs the exact target has zero denoising loss; the eps one does not
    when the schedule asks for v."""
    s = NoiseSchedule(100, prediction="v")
    x0 = torch.rand((3, 4, 8, 8)) * 2 - 1
    noise, t = torch.randn(x0.shape), torch.tensor([1, 50, 99])

    class Exact(nn.Module):
        def __init__(self, output: torch.Tensor):
            super().__init__()
            self.output = output

        def forward(self, x, t):
            return self.output

    assert float(diffusion_loss(Exact(s.target(x0, t, noise)), s, x0, t, noise).huber) == 0.0
    assert float(diffusion_loss(Exact(noise), s, x0, t, noise).huber) > 0.01


def test_zero_terminal_snr_refuses_eps_prediction():
    with pytest.raises(ConfigError, match="zero_terminal_snr: .* use prediction v or x0"):
        ScheduleConfig(zero_terminal_snr=True)
    with pytest.raises(ConfigError, match="schedule: expected one of"):
        NoiseSchedule(10, schedule="quadratic")
    with pytest.raises(ConfigError, match="prediction: expected one of"):
        NoiseSchedule(10, prediction="score")
