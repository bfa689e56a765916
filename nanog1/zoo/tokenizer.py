"""Text tokenisers for QuatrixLM: byte-level by default (no download), or a BPE trained locally.

Both round-trip any text, expose ``vocab_size``, and serialise to a plain dict (``to_spec``) that
the LM checkpoint stores beside the weights, so a saved model always carries its own tokeniser.
"""

from __future__ import annotations


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, lossless on any text; invalid byte runs decode as U+FFFD."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of ``text``."""
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        """Bytes back to text (ids outside 0..255 are an error)."""
        return bytes(ids).decode("utf-8", errors="replace")

    def to_spec(self) -> dict:
        """A checkpoint-safe description."""
        return {"kind": "byte"}


class BPETokenizer:
    """A byte-level BPE from the ``tokenizers`` library, trained on the local corpus (no download)."""

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size`` merges-plus-bytes from ``text`` (the 256 bytes are always kept)."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if vocab_size <= 256:
            raise ValueError(f"BPE vocab_size must exceed the 256 byte tokens, got {vocab_size}")
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        lines = text.splitlines(keepends=True)
        tok.train_from_iterator((lines[i:i + 1000] for i in range(0, len(lines), 1000)), trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return self._tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``."""
        return self._tok.decode(list(ids))

    def to_spec(self) -> dict:
        """The whole trained tokeniser as its JSON string (saved inside the model checkpoint)."""
        return {"kind": "bpe", "json": self._tok.to_str()}


Tokenizer = ByteTokenizer | BPETokenizer


def build_tokenizer(kind: str, text: str = "", vocab_size: int = 4096) -> Tokenizer:
    """'byte' (default) or 'bpe' trained on ``text`` with ``vocab_size`` entries."""
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size)
    raise ValueError(f"tokenizer must be 'byte' or 'bpe', got {kind!r}")


def tokenizer_from_spec(spec: dict) -> Tokenizer:
    """Rebuild the tokeniser a checkpoint stored with :meth:`to_spec`."""
    if spec.get("kind") == "byte":
        return ByteTokenizer()
    if spec.get("kind") == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(spec["json"]))
    raise ValueError(f"unknown tokenizer spec kind {spec.get('kind')!r}")
