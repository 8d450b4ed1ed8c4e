"""Network of the PETER-style blurb generator (:mod:`recgen.generators.peter`).

:class:`PeterTransformer` reads ``[user, item, <bos>, w1, w2, ...]``: the first two positions
are linear projections of the user's and the item's vectors, the rest are word embeddings.
The two prefix positions see each other; text positions see the prefix and the earlier text
(the PETER mask, Li, Zhang & Chen, ACL 2021).

Attribute names are part of the saved format (they are the safetensors keys), and the order
in which the layers are created is part of the seeded initialization.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def adaptive_cutoffs(vocab: int) -> list[int]:
    """Adaptive-softmax cluster bounds for a frequency-sorted vocabulary; [] = plain softmax.

    The full softmax over a 5000-word vocabulary costs more than the whole transformer body
    at d_model=128; with Zipf-distributed words the head cluster (10% of the words) holds
    most tokens, so the adaptive one (Grave et al. 2017) trains about twice as fast.
    """
    if vocab < 1000:
        return []
    return [vocab // 10, (2 * vocab) // 5]


class PeterTransformer(nn.Module):
    """``[user, item, <bos>, w1, w2, ...]`` -> next-word distributions at every text position.

    Parameters
    ----------
    vocab : int
        Vocabulary size (frequency-sorted: an adaptive softmax is used from 1000 words).
    user_dim, item_dim : int
        Widths of the conditioning vectors.
    d_model, n_heads, n_layers : int
        Transformer width, heads and depth.
    max_len : int
        Text tokens per sequence, ``<bos>``/``<eos>`` excluded (positions: ``max_len + 4``).
    dropout : float
    pad_id : int
        The ``<pad>`` token: its embedding stays zero and it is never a target.

    Shapes: ``u (b, user_dim)``, ``i (b, item_dim)``, ``tokens (b, t)`` int64 with
    ``t <= max_len + 2``.
    """

    def __init__(self, vocab: int, user_dim: int, item_dim: int, *, d_model: int, n_heads: int, n_layers: int,
                 max_len: int, dropout: float, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.user = nn.Linear(user_dim, d_model)
        self.item = nn.Linear(item_dim, d_model)
        self.tok = nn.Embedding(vocab, d_model, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len + 4, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        cutoffs = adaptive_cutoffs(vocab)
        if cutoffs:
            self.out = nn.AdaptiveLogSoftmaxWithLoss(d_model, vocab, cutoffs, div_value=4.0)
        else:
            self.out = nn.Linear(d_model, vocab)
        n = max_len + 4
        mask = torch.ones((n, n), dtype=torch.bool).triu(1)  # True = may not attend
        mask[:2, :2] = False  # user and item see each other (the PETER mask)
        self.register_buffer("mask", mask, persistent=False)

    def hidden(self, u: torch.Tensor, i: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Final hidden states at the text positions, (b, t, d_model)."""
        # No key-padding mask is needed: <pad> only follows <eos>, and the causal mask
        # already hides later positions; outputs at <pad> positions are never used.
        n = tokens.shape[1] + 2
        x = torch.cat([self.user(u)[:, None], self.item(i)[:, None], self.tok(tokens)], 1)
        x = x + self.pos.weight[:n][None]
        return self.norm(self.body(x, mask=self.mask[:n, :n])[:, 2:])

    def loss(self, u: torch.Tensor, i: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean next-word cross-entropy over the non-pad targets of ``tokens`` (b, t), and their count."""
        h = self.hidden(u, i, tokens[:, :-1])
        target = tokens[:, 1:]
        keep = target != self.pad_id
        h, target = h[keep], target[keep]  # the softmax runs on real tokens only
        if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
            return self.out(h, target).loss, len(target)
        return F.cross_entropy(self.out(h), target), len(target)

    def next_log_probs(self, u: torch.Tensor, i: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the word after ``tokens`` (b, t): shape (b, vocab)."""
        h = self.hidden(u, i, tokens)[:, -1]
        if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
            return self.out.log_prob(h)
        return torch.log_softmax(self.out(h).float(), -1)
