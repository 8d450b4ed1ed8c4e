"""PETER-style neural blurb generator (Li, Zhang & Chen, ACL 2021), trained from scratch.

A small transformer whose first two positions are the user and the item, given here as
projections of their vectors in the shared space (so unseen items and users still have
an input), followed by the text. The two prefix positions see each other; text positions
see the prefix and the earlier text (the PETER mask). Trained with next-word cross-entropy
on the catalog's reviews; decoding is greedy or seeded sampling.

Unlike :class:`~recgen.generators.grounded.GroundedBlurbGenerator` it can write words the
item's data does not contain: its faithfulness is measured, not guaranteed.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from recgen._io import atomic_path, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, ModelFitError, NotFittedError
from recgen.generators.base import BlurbOutput

log = logging.getLogger(__name__)

_KIND = "peter-blurbs"
_TOK = re.compile(r"[a-z0-9']+|[.,!?;:]")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
_SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def tokenize(text: str) -> list[str]:
    """Lowercased words and punctuation."""
    return _TOK.findall(str(text).lower())


def detokenize(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?;:])", r"\1", text)
    return text[:1].upper() + text[1:]


@dataclass
class PeterConfig:
    """Settings of :class:`PeterBlurbGenerator` (small by default: it trains on 2 CPU cores)."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    max_len: int = 32
    vocab_size: int = 5000
    min_freq: int = 2
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    dropout: float = 0.1
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        for name in ("d_model", "n_heads", "n_layers", "max_len", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.vocab_size < 10:
            raise ValueError(f"vocab_size must be >= 10; got {self.vocab_size}")


def _net(cfg: PeterConfig, vocab: int, user_dim: int, item_dim: int):
    import torch
    import torch.nn as nn

    class Peter(nn.Module):
        def __init__(self):
            super().__init__()
            self.user = nn.Linear(user_dim, cfg.d_model)
            self.item = nn.Linear(item_dim, cfg.d_model)
            self.tok = nn.Embedding(vocab, cfg.d_model, padding_idx=PAD)
            self.pos = nn.Embedding(cfg.max_len + 3, cfg.d_model)
            layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                               batch_first=True, norm_first=True)
            self.body = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(cfg.d_model)
            self.out = nn.Linear(cfg.d_model, vocab)

        def forward(self, u, i, tokens):
            # tokens: (b, t) starting with <bos>; returns logits (b, t, vocab) for the next word
            b, t = tokens.shape
            x = torch.cat([self.user(u)[:, None], self.item(i)[:, None], self.tok(tokens)], 1)
            x = x + self.pos(torch.arange(t + 2, device=x.device))[None]
            n = t + 2
            mask = torch.ones((n, n), dtype=torch.bool, device=x.device).triu(1)  # True = may not attend
            mask[:2, :2] = False  # user and item see each other (PETER mask)
            h = self.body(x, mask=mask, src_key_padding_mask=torch.cat(
                [torch.zeros((b, 2), dtype=torch.bool, device=x.device), tokens == PAD], 1))
            return self.out(self.norm(h[:, 2:]))

    return Peter()


class PeterBlurbGenerator:
    """Neural, conditional blurb generator (registry name ``"peter"``)."""

    def __init__(self, config: PeterConfig | None = None) -> None:
        self.config = config or PeterConfig()
        self.vocab: list[str] | None = None
        self.history: dict[str, list[float]] = {"loss": []}
        self._net = None

    @property
    def device(self) -> str:
        from recgen.encoders.base import pick_device

        return pick_device(self.config.device)

    def _encode(self, text: str) -> list[int]:
        ids = [self._index.get(w, UNK) for w in tokenize(text)][: self.config.max_len]
        return [BOS] + ids + [EOS]

    def fit(self, texts: Sequence[str], user_vectors: np.ndarray, item_vectors: np.ndarray, *,
            progress: bool = False) -> "PeterBlurbGenerator":
        """Train on texts (e.g. reviews) with the reviewer's and the item's vectors.

        Raises
        ------
        ModelFitError
            The loss became NaN or inf.
        """
        import torch
        import torch.nn.functional as F

        texts = [str(t) for t in texts]
        u = np.asarray(user_vectors, dtype=np.float32)
        it = np.asarray(item_vectors, dtype=np.float32)
        if u.ndim != 2 or it.ndim != 2 or not (len(u) == len(it) == len(texts)):
            raise ValueError(f"texts ({len(texts)}), user_vectors {u.shape} and item_vectors {it.shape} must be paired 2-D rows")
        if not texts:
            raise ValueError("texts is empty: nothing to train on")
        if not (np.isfinite(u).all() and np.isfinite(it).all()):
            raise ValueError("user_vectors / item_vectors contain NaN or inf")
        c = self.config
        counts = Counter(w for t in texts for w in tokenize(t))
        words = [w for w, n in counts.most_common(c.vocab_size - len(_SPECIALS)) if n >= c.min_freq]
        self.vocab = _SPECIALS + words
        self._index = {w: k for k, w in enumerate(self.vocab)}
        self.user_dim, self.item_dim = u.shape[1], it.shape[1]
        torch.manual_seed(c.seed)
        self._net = _net(c, len(self.vocab), self.user_dim, self.item_dim).to(self.device)
        opt = torch.optim.AdamW(self._net.parameters(), lr=c.lr)
        seqs = [self._encode(t) for t in texts]
        width = max(len(s) for s in seqs)
        tok = np.full((len(seqs), width), PAD, dtype=np.int64)
        for k, s in enumerate(seqs):
            tok[k, : len(s)] = s
        tok_t, u_t, i_t = torch.from_numpy(tok), torch.from_numpy(u), torch.from_numpy(it)
        g = torch.Generator().manual_seed(c.seed)
        self.history = {"loss": []}
        epochs = range(c.epochs)
        if progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="peter", unit="epoch")
        dev = self.device
        for epoch in epochs:
            self._net.train()
            perm = torch.randperm(len(seqs), generator=g)
            total, steps = 0.0, 0
            for s in range(0, len(perm), c.batch_size):
                idx = perm[s:s + c.batch_size]
                batch = tok_t[idx]
                L = int((batch != PAD).sum(1).max())
                batch = batch[:, :L].to(dev)
                logits = self._net(u_t[idx].to(dev), i_t[idx].to(dev), batch[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), ignore_index=PAD)
                if not torch.isfinite(loss):
                    raise ModelFitError(f"peter loss became {loss.item()} at epoch {epoch}; lower lr (now {c.lr})")
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
                total += loss.item()
                steps += 1
            self.history["loss"].append(total / max(steps, 1))
        self._net.eval()
        return self

    def _check(self) -> None:
        if self._net is None:
            raise NotFittedError("PeterBlurbGenerator is not fitted: call fit() or load() first")

    def generate(self, item_vectors: np.ndarray, user_vectors: np.ndarray, *, seed: int = 0,
                 max_len: int | None = None, temperature: float = 0.0) -> list[str]:
        """Decode one text per row: greedy when ``temperature == 0``, else seeded sampling."""
        import torch

        self._check()
        it = np.asarray(item_vectors, dtype=np.float32)
        u = np.asarray(user_vectors, dtype=np.float32)
        if it.shape != (len(it), self.item_dim) or u.shape != (len(it), self.user_dim):
            raise ValueError(f"item_vectors {it.shape} / user_vectors {u.shape} must be ({len(it)}, {self.item_dim}) "
                             f"/ ({len(it)}, {self.user_dim})")
        steps = min(max_len or self.config.max_len, self.config.max_len) + 1
        g = torch.Generator().manual_seed(int(seed))
        dev = self.device
        out: list[str] = []
        with torch.no_grad():
            for s in range(0, len(it), 256):
                ui, ii = torch.from_numpy(u[s:s + 256]).to(dev), torch.from_numpy(it[s:s + 256]).to(dev)
                seq = torch.full((len(ui), 1), BOS, dtype=torch.long, device=dev)
                done = torch.zeros(len(ui), dtype=torch.bool, device=dev)
                for _ in range(steps):
                    logits = self._net(ui, ii, seq)[:, -1]
                    logits[:, [PAD, BOS, UNK]] = float("-inf")
                    if temperature > 0:
                        probs = torch.softmax(logits / temperature, -1).cpu()
                        nxt = torch.multinomial(probs, 1, generator=g).to(dev)[:, 0]
                    else:
                        nxt = logits.argmax(-1)
                    nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
                    seq = torch.cat([seq, nxt[:, None]], 1)
                    done |= nxt == EOS
                    if bool(done.all()):
                        break
                for row in seq[:, 1:].tolist():
                    words = []
                    for t in row:
                        if t in (EOS, PAD):
                            break
                        words.append(self.vocab[t])
                    out.append(detokenize(words))
        return out

    def generate_blurbs(self, item_ids: Sequence[str], item_vectors: np.ndarray, user_vectors: np.ndarray, *,
                        seed: int = 0) -> BlurbOutput:
        """:meth:`generate` wrapped as a :class:`BlurbOutput` (no provenance: the text is generated)."""
        texts = self.generate(item_vectors, user_vectors, seed=seed)
        return BlurbOutput(texts=texts, sources=[[] for _ in texts], item_ids=[str(i) for i in item_ids])

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        self._check()
        state = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        config = {"peter": asdict(self.config), "vocab": self.vocab, "user_dim": self.user_dim,
                  "item_dim": self.item_dim, "history": self.history}

        def write(tmp: Path) -> None:
            with atomic_path(tmp / "weights.safetensors") as p:
                save_file(state, str(p))
            write_manifest(tmp, kind=_KIND, files=["weights.safetensors"], config=config)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path) -> "PeterBlurbGenerator":
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg = read_manifest(directory, kind=_KIND)["config"]
        try:
            gen = cls(PeterConfig(**cfg["peter"]))
            gen.vocab = list(cfg["vocab"])
            gen._index = {w: k for k, w in enumerate(gen.vocab)}
            gen.user_dim, gen.item_dim = int(cfg["user_dim"]), int(cfg["item_dim"])
            gen.history = cfg.get("history", {"loss": []})
            gen._net = _net(gen.config, len(gen.vocab), gen.user_dim, gen.item_dim).to(gen.device)
            gen._net.load_state_dict(load_file(str(directory / "weights.safetensors")))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{directory}: PETER weights do not match its manifest: {exc}") from exc
        gen._net.eval()
        return gen
