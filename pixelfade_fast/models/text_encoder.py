"""A word-level tokenizer and a small transformer text encoder for SynthPed's captions.

No library tokenizer: SynthPed's captions come from a closed vocabulary of about a hundred words
(``data.captions.caption_vocabulary``), which a word list covers exactly, and pretrained tokenizers cannot be
downloaded here. The vocabulary is saved with the model.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..data.captions import tokenize_words

PAD, UNK = "<pad>", "<unk>"


class WordTokenizer:
    """Words (lower case, letters only) to ids: 0 is padding, 1 an unknown word, 2.. the vocabulary."""

    def __init__(self, vocabulary: Sequence[str], max_length: int = 48):
        words = list(vocabulary)
        if len(set(words)) != len(words) or PAD in words or UNK in words:
            raise ValueError("vocabulary must list distinct words, without <pad> and <unk>")
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        self.words = [PAD, UNK, *words]
        self.ids = {word: i for i, word in enumerate(self.words)}
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """The ids of a text's words, the first max_length of them (never empty: "" is one unknown word)."""
        ids = [self.ids.get(word, 1) for word in tokenize_words(text)][: self.max_length]
        return ids or [1]

    def decode(self, ids: Sequence[int]) -> str:
        """The words of ids, space-separated, padding left out."""
        return " ".join(self.words[int(i)] for i in ids if int(i) != 0)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids [N, L] of texts, padded with 0 to the longest (L <= max_length)."""
        encoded = [self.encode(text) for text in texts]
        tokens = torch.zeros(len(encoded), max(len(ids) for ids in encoded), dtype=torch.long)
        for row, ids in enumerate(encoded):
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens


class TextEncoder(nn.Module):
    """Token ids [B, L] -> [B, out_dim]: word + position embeddings, a small transformer, mean over the words."""

    def __init__(self, vocab_size: int, max_length: int = 48, width: int = 128, layers: int = 2, heads: int = 4,
                 out_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.zeros(max_length, width))
        nn.init.normal_(self.position_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.projection = nn.Linear(width, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        words = tokens != 0
        x = self.token_embedding(tokens) + self.position_embedding[: tokens.shape[1]]
        x = self.norm(self.transformer(x, src_key_padding_mask=~words))
        pooled = (x * words[..., None]).sum(1) / words.sum(1, keepdim=True).clamp_min(1)
        return self.projection(pooled)
