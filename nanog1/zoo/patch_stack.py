"""Settings the zoo's patch encoders share: a bidirectional core stack, and the heads on top of it.

Vision, audio and the world model's state encoder all run ``nanog1.core.Stack`` with causal=False
("qcompass" = QCompassBi) over patch tokens. Their configs inherit the width/depth/mixer fields and
:meth:`BiStackConfig.stack_config` from here and override only the defaults they tuned; the two
classifiers (vision, audio) also inherit the class-head and LM-projection fields of
:class:`PatchHeadsConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nanog1.core import StackConfig


@dataclass
class BiStackConfig:
    """Width, depth and mixer of a bidirectional stack (the defaults suit the small vision/audio models)."""

    hidden_size: int = 96
    layers: int = 3
    rank: int = 24
    heads: int = 4
    mixer: str = "qcompass"
    ffn_mult: int = 4
    dropout: float = 0.1

    def stack_config(self) -> StackConfig:
        """The bidirectional stack these settings describe."""
        return StackConfig(hidden_size=self.hidden_size, layers=self.layers, rank=self.rank, heads=self.heads,
                           mixer=self.mixer, causal=False, ffn_mult=self.ffn_mult, dropout=self.dropout)


@dataclass
class PatchHeadsConfig(BiStackConfig):
    """A stack plus its heads: ``num_classes`` = 0: no class head, ``lm_hidden`` = 0: no LM projection.

    ``merge`` concatenates that many consecutive patch tokens before the LM projection, so the LM
    prefix is ``merge``× shorter.
    """

    num_classes: int = 10
    lm_hidden: int = 0
    merge: int = 1

    def check_merge(self, tokens: int, what: str) -> None:
        """Raise ValueError unless ``merge`` is ≥ 1 and divides ``tokens`` (named ``what`` in the message)."""
        if self.merge < 1 or tokens % self.merge:
            raise ValueError(f"merge {self.merge} must be ≥ 1 and divide the {tokens} {what}")
