"""PETER-style neural blurb generator (Li, Zhang & Chen, ACL 2021), trained from scratch.

A small transformer whose first two positions are the user and the item, given here as
linear projections of their vectors in the shared space (so unseen items and users still
have an input), followed by the text. The two prefix positions see each other; text
positions see the prefix and the earlier text (the PETER mask). Trained with next-word
cross-entropy on the catalog's reviews; decoding is greedy or seeded sampling.

Unlike :class:`~recgen.generators.grounded.GroundedBlurbGenerator` it can write words the
item's data does not contain: its faithfulness is measured, not guaranteed.

>>> gen = PeterBlurbGenerator(PeterConfig(epochs=10)).fit(review_texts, reviewer_vecs, item_vecs)
>>> gen.generate(item_vecs[:2], np.zeros((2, dim), np.float32))      # greedy, neutral users
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from recgen._io import read_manifest, save_weights_directory
from recgen.errors import ArtifactError, ModelFitError, NotFittedError
from recgen.generators.base import BlurbOutput
from recgen.generators.grounded import split_sentences

log = logging.getLogger(__name__)

_KIND = "peter-blurbs"
_TOK = re.compile(r"[a-z0-9]+(?:['\u2019-][a-z0-9]+)*|[.,!?;:]")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with inner apostrophes / hyphens) and sentence punctuation."""
    return _TOK.findall(str(text).lower().replace("\u2019", "'"))


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens back into text: no space before punctuation, first letter capitalized."""
    text = re.sub(r" ([.,!?;:])", r"\1", " ".join(tokens))
    text = re.sub(r"\bi\b", "I", text)
    return text[:1].upper() + text[1:]


def target_tokens(text: str, max_len: int) -> tuple[list[str], bool]:
    """The training target of one review: its leading whole sentences, at most ``max_len`` tokens.

    Returns the tokens and whether they end where the text's sentences end (then the target
    gets ``<eos>``). A first sentence longer than ``max_len`` is cut and gets no ``<eos>``, so
    the model never learns to stop mid-sentence.
    """
    out: list[str] = []
    for sent in split_sentences(text):
        toks = tokenize(sent)
        if not toks:
            continue
        if len(out) + len(toks) > max_len:
            if out:
                return out, True
            return toks[:max_len], False
        out += toks
    return out, True


@dataclass
class PeterConfig:
    """Settings of :class:`PeterBlurbGenerator` (small by default: it trains on 2 CPU cores).

    Attributes
    ----------
    d_model, n_heads, n_layers : int
        Transformer width, heads (must divide ``d_model``) and depth.
    max_len : int
        Text tokens per target and per generated blurb (``<bos>``/``<eos>`` excluded).
    vocab_size, min_freq : int
        Largest vocabulary (specials included) and the least count of a kept word.
    epochs, batch_size : int
    lr, dropout : float
    seed : int
        Seeds initialization and batch order.
    device : str or None
        ``"cpu"``, ``"cuda"``; None picks CUDA when available.
    """

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
        for name in ("d_model", "n_heads", "n_layers", "max_len", "batch_size", "min_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0; got {self.epochs}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.vocab_size < len(SPECIALS) + 1:
            raise ValueError(f"vocab_size must be >= {len(SPECIALS) + 1}; got {self.vocab_size}")
        if not (self.lr > 0 and 0 <= self.dropout < 1):
            raise ValueError(f"lr must be > 0 and dropout in [0, 1); got lr={self.lr}, dropout={self.dropout}")


def _cutoffs(vocab: int) -> list[int]:
    """Adaptive-softmax cluster bounds for a frequency-sorted vocabulary; [] = plain softmax.

    The full softmax over a 5000-word vocabulary costs more than the whole transformer body
    at d_model=128; with Zipf-distributed words the head cluster (10% of the words) holds
    most tokens, so the adaptive one (Grave et al. 2017) trains about twice as fast.
    """
    if vocab < 1000:
        return []
    return [vocab // 10, (2 * vocab) // 5]


def _net(cfg: PeterConfig, vocab: int, user_dim: int, item_dim: int):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Peter(nn.Module):
        """[user, item, <bos>, w1, w2, ...] -> next-word distributions at every text position."""

        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Linear(user_dim, cfg.d_model)
            self.item = nn.Linear(item_dim, cfg.d_model)
            self.tok = nn.Embedding(vocab, cfg.d_model, padding_idx=PAD)
            self.pos = nn.Embedding(cfg.max_len + 4, cfg.d_model)
            layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                               batch_first=True, norm_first=True)
            self.body = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(cfg.d_model)
            cutoffs = _cutoffs(vocab)
            if cutoffs:
                self.out = nn.AdaptiveLogSoftmaxWithLoss(cfg.d_model, vocab, cutoffs, div_value=4.0)
            else:
                self.out = nn.Linear(cfg.d_model, vocab)
            n = cfg.max_len + 4
            mask = torch.ones((n, n), dtype=torch.bool).triu(1)  # True = may not attend
            mask[:2, :2] = False  # user and item see each other (the PETER mask)
            self.register_buffer("mask", mask, persistent=False)

        def hidden(self, u, i, tokens):
            # No key-padding mask is needed: <pad> only follows <eos>, and the causal mask
            # already hides later positions; outputs at <pad> positions are never used.
            n = tokens.shape[1] + 2
            x = torch.cat([self.user(u)[:, None], self.item(i)[:, None], self.tok(tokens)], 1)
            x = x + self.pos.weight[:n][None]
            return self.norm(self.body(x, mask=self.mask[:n, :n])[:, 2:])

        def loss(self, u, i, tokens):
            """Mean next-word cross-entropy over the non-pad targets of ``tokens`` (b, t)."""
            h = self.hidden(u, i, tokens[:, :-1])
            target = tokens[:, 1:]
            keep = target != PAD
            h, target = h[keep], target[keep]  # the softmax runs on real tokens only
            if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
                return self.out(h, target).loss, len(target)
            return F.cross_entropy(self.out(h), target), len(target)

        def next_log_probs(self, u, i, tokens):
            """Log-probabilities of the word after ``tokens`` (b, t): shape (b, vocab)."""
            h = self.hidden(u, i, tokens)[:, -1]
            if isinstance(self.out, nn.AdaptiveLogSoftmaxWithLoss):
                return self.out.log_prob(h)
            return torch.log_softmax(self.out(h).float(), -1)

    return Peter()


class PeterBlurbGenerator:
    """Neural, conditional blurb generator (registry name ``"peter"``).

    Parameters
    ----------
    config : PeterConfig, optional

    Attributes
    ----------
    vocab : list of str or None
        Index -> word, specials first (``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``).
    history : dict
        ``{"loss": [mean train loss per epoch], "seconds": [time per epoch]}``.
    user_dim, item_dim : int
        Dimensions of the conditioning vectors (set by :meth:`fit`).
    """

    def __init__(self, config: PeterConfig | None = None) -> None:
        self.config = config if config is not None else PeterConfig()
        self.vocab: list[str] | None = None
        self.history: dict[str, list[float]] = {"loss": [], "seconds": []}
        self._net = None

    @property
    def device(self) -> str:
        from recgen.encoders.base import pick_device

        return pick_device(self.config.device)

    # ---------------------------------------------------------------------- fit
    def _build_vocab(self, targets: list[list[str]]) -> None:
        c = self.config
        counts = Counter(w for t in targets for w in t)
        # ties broken alphabetically so the vocabulary does not depend on text order
        ranked = sorted((w for w, n in counts.items() if n >= c.min_freq), key=lambda w: (-counts[w], w))
        self.vocab = list(SPECIALS) + ranked[: c.vocab_size - len(SPECIALS)]
        self._index = {w: k for k, w in enumerate(self.vocab)}

    def fit(self, texts: Sequence[str], user_vectors: np.ndarray, item_vectors: np.ndarray, *,
            progress: bool = False) -> "PeterBlurbGenerator":
        """Train on texts (e.g. reviews) paired with the reviewer's and the item's vectors.

        Parameters
        ----------
        texts : sequence of str, length n
            Training texts; each one's target is its leading whole sentences, at most
            ``max_len`` tokens (see :func:`target_tokens`).
        user_vectors : ndarray of float, shape (n, user_dim)
            The writer's taste vector, zeros when unknown (the neutral user).
        item_vectors : ndarray of float, shape (n, item_dim)
            The reviewed item's vector.
        progress : bool
            Show a progress bar (tqdm) with the running loss.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Unpaired or non-2-D inputs, NaN/inf in the vectors, or no text with a word.
        ModelFitError
            The loss became NaN or inf.
        """
        import torch

        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        texts = [str(t) for t in texts]
        u = np.ascontiguousarray(user_vectors, dtype=np.float32)
        it = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if u.ndim != 2 or it.ndim != 2 or not (len(u) == len(it) == len(texts)):
            raise ValueError(f"texts ({len(texts)}), user_vectors {u.shape} and item_vectors {it.shape} "
                             "must be paired: one 2-D row of each per text")
        if not (np.isfinite(u).all() and np.isfinite(it).all()):
            raise ValueError("user_vectors / item_vectors contain NaN or inf")
        c = self.config
        targets, ended = zip(*(target_tokens(t, c.max_len) for t in texts)) if texts else ((), ())
        keep = np.array([len(t) > 0 for t in targets], dtype=bool)
        if not keep.any():
            raise ValueError(f"none of the {len(texts)} texts has a word to train on")
        self._build_vocab([t for t, k in zip(targets, keep) if k])
        tok = np.full((int(keep.sum()), c.max_len + 2), PAD, dtype=np.int64)
        for r, k in enumerate(np.flatnonzero(keep)):
            ids = [BOS] + [self._index.get(w, UNK) for w in targets[k]] + ([EOS] if ended[k] else [])
            tok[r, : len(ids)] = ids
        lengths = (tok != PAD).sum(1)
        u, it = u[keep], it[keep]
        self.user_dim, self.item_dim = u.shape[1], it.shape[1]

        torch.manual_seed(c.seed)
        dev = self.device
        self._net = _net(c, len(self.vocab), self.user_dim, self.item_dim).to(dev)
        opt = torch.optim.AdamW(self._net.parameters(), lr=c.lr)
        tok_t, u_t, i_t = torch.from_numpy(tok), torch.from_numpy(u), torch.from_numpy(it)
        g = torch.Generator().manual_seed(c.seed)
        self.history = {"loss": [], "seconds": []}
        n_batches = -(-len(tok) // c.batch_size)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=c.epochs * n_batches, desc="peter", unit="batch")
        try:
            for epoch in range(c.epochs):
                t0 = time.perf_counter()
                self._net.train()
                perm = torch.randperm(len(tok), generator=g).numpy()
                total, tokens_seen = 0.0, 0
                for s in range(0, len(perm), c.batch_size):
                    idx = torch.from_numpy(perm[s:s + c.batch_size])
                    width = int(lengths[perm[s:s + c.batch_size]].max())  # trim trailing padding
                    batch = tok_t[idx, :width].to(dev)
                    loss, n_tok = self._net.loss(u_t[idx].to(dev), i_t[idx].to(dev), batch)
                    if not torch.isfinite(loss):
                        raise ModelFitError(f"peter loss became {loss.item()} at epoch {epoch + 1}, batch "
                                            f"{s // c.batch_size + 1}; lower lr (now {c.lr}) or check the inputs")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                    opt.step()
                    total += loss.item() * n_tok
                    tokens_seen += n_tok
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
                self.history["loss"].append(total / max(tokens_seen, 1))
                self.history["seconds"].append(time.perf_counter() - t0)
                log.info("peter epoch %d/%d: loss %.4f (%.1fs)", epoch + 1, c.epochs, self.history["loss"][-1],
                         self.history["seconds"][-1])
        finally:
            if bar is not None:
                bar.close()
        self._net.eval()
        return self

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self._net is None:
            raise NotFittedError("PeterBlurbGenerator is not fitted: call fit() or load() first")

    def generate(self, item_vectors: np.ndarray, user_vectors: np.ndarray, *, seed: int = 0,
                 max_len: int | None = None, temperature: float = 0.0, batch_size: int = 256) -> list[str]:
        """Decode one text per (item, user) row.

        Parameters
        ----------
        item_vectors : ndarray of float, shape (n, item_dim)
        user_vectors : ndarray of float, shape (n, user_dim)
            Zeros = neutral user.
        seed : int
            Seeds the sampler (unused when greedy).
        max_len : int, optional
            Tokens to generate at most; capped at ``config.max_len``.
        temperature : float
            0 = greedy; > 0 samples from ``softmax(logits / temperature)`` with a
            ``torch.Generator`` seeded by ``seed``.
        batch_size : int
            Rows decoded together.

        Returns
        -------
        list of str, length n
        """
        import torch

        self._check()
        it = np.ascontiguousarray(item_vectors, dtype=np.float32)
        u = np.ascontiguousarray(user_vectors, dtype=np.float32)
        if it.ndim != 2 or u.ndim != 2 or it.shape != (len(it), self.item_dim) or u.shape != (len(it), self.user_dim):
            raise ValueError(f"item_vectors {it.shape} / user_vectors {u.shape} must have shapes "
                             f"(n, {self.item_dim}) / (n, {self.user_dim}) with the same n")
        if not (temperature >= 0):
            raise ValueError(f"temperature must be >= 0; got {temperature}")
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1; got {max_len}")
        steps = min(max_len or self.config.max_len, self.config.max_len)
        g = torch.Generator().manual_seed(int(seed))
        dev = self.device
        out: list[str] = []
        with torch.inference_mode():
            for s in range(0, len(it), batch_size):
                ui, ii = torch.from_numpy(u[s:s + batch_size]).to(dev), torch.from_numpy(it[s:s + batch_size]).to(dev)
                seq = torch.full((len(ui), 1), BOS, dtype=torch.long, device=dev)
                done = torch.zeros(len(ui), dtype=torch.bool, device=dev)
                for step in range(steps + 1):
                    logits = self._net.next_log_probs(ui, ii, seq)
                    banned = [PAD, BOS, UNK] + ([EOS] if step == 0 else [])  # no empty blurb
                    if step == steps:  # out of room: stop here
                        logits[:] = float("-inf")
                        logits[:, EOS] = 0.0
                    logits[:, banned] = float("-inf")
                    if temperature > 0 and step < steps:
                        probs = torch.softmax(logits / temperature, -1).cpu()
                        nxt = torch.multinomial(probs, 1, generator=g)[:, 0].to(dev)
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
                        seed: int = 0, user_ids: Sequence[str] | None = None, **kwargs) -> BlurbOutput:
        """:meth:`generate` wrapped as a :class:`BlurbOutput` (``sources`` empty: the text is generated).

        ``kwargs`` (``max_len``, ``temperature``) are passed on to :meth:`generate`.
        """
        item_ids = [str(i) for i in item_ids]
        if len(item_ids) != len(item_vectors):
            raise ValueError(f"item_ids has {len(item_ids)} entries; item_vectors has {len(item_vectors)} rows")
        texts = self.generate(item_vectors, user_vectors, seed=seed, **kwargs)
        return BlurbOutput(texts=texts, sources=[[] for _ in texts], item_ids=item_ids,
                           user_ids=[str(x) for x in user_ids] if user_ids is not None else [])

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save to ``directory``: ``weights.safetensors`` + manifest (config, vocabulary, history); atomic."""

        self._check()
        state = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        config = {"peter": asdict(self.config), "vocab": self.vocab, "user_dim": self.user_dim,
                  "item_dim": self.item_dim, "history": self.history}

        return save_weights_directory(directory, kind=_KIND, tensors=state, config=config)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = None) -> "PeterBlurbGenerator":
        """Load a generator written by :meth:`save` (onto ``device``, default: the saved config's).

        Raises
        ------
        ArtifactError
            Missing, corrupted or inconsistent directory.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg = read_manifest(directory, kind=_KIND)["config"]
        try:
            conf = PeterConfig(**cfg["peter"])
            if device is not None:
                conf.device = device
            gen = cls(conf)
            gen.vocab = [str(w) for w in cfg["vocab"]]
            gen._index = {w: k for k, w in enumerate(gen.vocab)}
            gen.user_dim, gen.item_dim = int(cfg["user_dim"]), int(cfg["item_dim"])
            gen.history = dict(cfg.get("history") or {"loss": [], "seconds": []})
            net = _net(gen.config, len(gen.vocab), gen.user_dim, gen.item_dim)
            net.load_state_dict(load_file(str(directory / "weights.safetensors")))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{directory}: PETER weights do not match its manifest: {exc}") from exc
        gen._net = net.to(gen.device).eval()
        return gen
