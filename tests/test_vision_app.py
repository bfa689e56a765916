"""The dashboard's Models page with real text and vision checkpoints, through Streamlit's AppTest."""

from __future__ import annotations

import torch
from app_fixtures import models_page

from nanog1.dashboard.config import ENV_TEXT_CKPT, ENV_VISION_CKPT
from nanog1.zoo.text import QuatrixLM, TextConfig
from nanog1.zoo.text import save_checkpoint as save_text
from nanog1.zoo.tokenizer import ByteTokenizer
from nanog1.zoo.vision import VisionConfig, VisionEncoder
from nanog1.zoo.vision import save_checkpoint as save_vision


def test_models_page_generates_text_and_shows_a_routing_map(tmp_path, monkeypatch):
    torch.manual_seed(0)
    lm = QuatrixLM(TextConfig(vocab_size=256, hidden_size=16, layers=1, rank=4, heads=2, max_len=64))
    save_text(tmp_path / "lm.pt", lm, ByteTokenizer(), {"val_loss": 2.0, "unigram_loss": 3.0})
    vision = VisionEncoder(VisionConfig(hidden_size=16, layers=2, rank=4, heads=2))
    save_vision(tmp_path / "vision.pt", vision, {"test_accuracy": 0.9})
    at = models_page(monkeypatch, {ENV_TEXT_CKPT: ("QuatrixLM", tmp_path / "lm.pt"),
                                   ENV_VISION_CKPT: ("VisionEncoder", tmp_path / "vision.pt")})
    assert any(m.value.startswith("**Prediction:**") for m in at.markdown)
    assert len(at.get("image")) == 2  # the digit and the routing-map figure
    at.number_input[0].set_value(12)
    at.slider[0].set_value(0.0)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    generated = at.code[0].value
    assert generated.startswith("The ")
    expected = lm.eval().generate(torch.tensor([list(b"The ")]), 12, temperature=0)
    assert generated == bytes(expected[0].tolist()).decode("utf-8", errors="replace")
