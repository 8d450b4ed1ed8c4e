"""PETER-style neural blurb generator (Li, Zhang & Chen, ACL 2021), trained from scratch.

A small transformer whose first two positions are the user and the item, given here as
linear projections of their vectors in the shared space (so unseen items and users still
have an input), followed by the text. The two prefix positions see each other; text
positions see the prefix and the earlier text (the PETER mask). Trained with next-word
cross-entropy on the catalog's reviews; decoding is greedy or seeded sampling.

Unlike :class:`~recgen.generators.grounded.GroundedBlurbGenerator` it can write words the
item's data does not contain: its faithfulness is measured, not guaranteed.

Two levels of API: the generator contract (:class:`~recgen.generators.base.BlurbGenerator`)
and the arrays underneath it (:meth:`PeterBlurbGenerator.fit_arrays`,
:meth:`PeterBlurbGenerator.generate_arrays`). The network is
:class:`recgen.generators.nets.peter.PeterTransformer`.

>>> gen = PeterBlurbGenerator(PeterConfig(epochs=10)).fit(GenerationContext(model, catalog))
>>> gen.generate(GenerationContext(model), ["SKU-0001"], [None]).texts        # greedy, neutral user
>>> gen = PeterBlurbGenerator(PeterConfig(epochs=10)).fit_arrays(review_texts, reviewer_vecs, item_vecs)
>>> gen.generate_arrays(item_vecs[:2], np.zeros((2, dim), np.float32))      # greedy, neutral users
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from recgen._io import load_torch_state, save_torch_state
from recgen.errors import ModelFitError, NotFittedError
from recgen.generators.base import BlurbOutput
from recgen.generators.context import GenerationContext, output_user_ids, paired
from recgen.generators.grounded import split_sentences
from recgen.modalities import FUSED

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


def _network(cfg: PeterConfig, vocab: int, user_dim: int, item_dim: int):
    from recgen.generators.nets.peter import PeterTransformer

    return PeterTransformer(vocab, user_dim, item_dim, d_model=cfg.d_model, n_heads=cfg.n_heads,
                            n_layers=cfg.n_layers, max_len=cfg.max_len, dropout=cfg.dropout, pad_id=PAD)


class PeterBlurbGenerator:
    """Neural, conditional blurb generator (registry name ``"peter"``).

    A :class:`~recgen.generators.base.BlurbGenerator`: trained on the catalog's reviews (each
    conditioned on its writer's taste, or the neutral user, and the item's fused vector),
    or on the item descriptions when there are no reviews; greedy decoding.

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

    kind = "blurb"

    def __init__(self, config: PeterConfig | None = None) -> None:
        self.config = replace(config) if config is not None else PeterConfig()
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

    # ------------------------------------------------------------ the contract
    def fit(self, context: GenerationContext, *, progress: bool = False) -> "PeterBlurbGenerator":
        """Train on the catalog's reviews (or, without reviews, the item descriptions).

        Each review's text is paired with its writer's taste vector (zeros for an anonymous
        or unknown writer) and the item's fused vector; reviews of items the model does not
        know are skipped. Trains with :meth:`fit_arrays`.

        Parameters
        ----------
        context : GenerationContext
            Needs ``catalog``.
        progress : bool

        Returns
        -------
        self
        """
        catalog = context.require_catalog("the PETER blurb generator")
        reviews = catalog.reviews
        if reviews is None or not len(reviews):
            texts = [str(d) for d in catalog.items["description"]]
            item_ids = catalog.items["item_id"].astype(str).tolist()
            users = [None] * len(texts)
        else:
            texts = reviews["text"].astype(str).tolist()
            item_ids = reviews["item_id"].astype(str).tolist()
            users = [u if isinstance(u, str) and u else None for u in reviews["user_id"]]
        rows = context.model.items.rows(item_ids)
        keep = rows >= 0
        return self.fit_arrays([t for t, k in zip(texts, keep) if k],
                               context.user_vectors([u for u, k in zip(users, keep) if k]),
                               context.item_vectors(rows[keep], FUSED), progress=progress)

    def generate(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> BlurbOutput:
        """One greedy blurb per (item, user) pair, conditioned on their vectors in ``context.model``.

        Parameters
        ----------
        context : GenerationContext
            The model the generator was trained with (the catalog is not needed).
        item_ids : sequence of str
        user_ids : sequence of str or None
            ``None`` or an unknown user: the neutral user.
        seed : int
            Unused by greedy decoding (same input, same blurb); kept for the contract.

        Returns
        -------
        BlurbOutput
            ``sources`` are empty lists: the text is generated, not extracted.

        Raises
        ------
        UnknownIdError
            An item is not in the model.
        """
        self._check()
        item_ids, user_ids = paired(item_ids, user_ids)
        rows = context.item_rows(item_ids)
        texts = self.generate_arrays(context.item_vectors(rows, FUSED), context.user_vectors(user_ids), seed=seed)
        return BlurbOutput(texts=texts, sources=[[] for _ in texts], item_ids=item_ids,
                           user_ids=output_user_ids(user_ids))

    # ------------------------------------------------------------- on arrays
    def fit_arrays(self, texts: Sequence[str], user_vectors: np.ndarray, item_vectors: np.ndarray, *,
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
        self._net = _network(c, len(self.vocab), self.user_dim, self.item_dim).to(dev)
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

    def generate_arrays(self, item_vectors: np.ndarray, user_vectors: np.ndarray, *, seed: int = 0,
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

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save to ``directory``: ``weights.safetensors`` (network ``net``) + manifest (config,
        vocabulary, history); atomic, with :func:`~recgen._io.save_torch_state`."""
        self._check()
        config = {"peter": asdict(self.config), "vocab": self.vocab, "user_dim": self.user_dim,
                  "item_dim": self.item_dim, "history": self.history}
        return save_torch_state(directory, kind=_KIND, modules={"net": self._net}, config=config)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "PeterBlurbGenerator":
        """Load a generator written by :meth:`save`.

        Parameters
        ----------
        directory : path
        verify : bool
            Check every file against the manifest's checksums.
        device : str, optional
            Overrides the saved ``config.device``.

        Raises
        ------
        ArtifactError
            Missing, corrupted or inconsistent directory.
        """
        made: list[PeterBlurbGenerator] = []

        def build(cfg: dict) -> dict:
            conf = PeterConfig(**cfg["peter"])
            if device is not None:
                conf.device = device
            gen = cls(conf)
            gen.vocab = [str(w) for w in cfg["vocab"]]
            gen._index = {w: k for k, w in enumerate(gen.vocab)}
            gen.user_dim, gen.item_dim = int(cfg["user_dim"]), int(cfg["item_dim"])
            gen.history = dict(cfg.get("history") or {"loss": [], "seconds": []})
            gen._net = _network(gen.config, len(gen.vocab), gen.user_dim, gen.item_dim)
            made.append(gen)
            return {"net": gen._net}

        load_torch_state(directory, kind=_KIND, modules=build, verify=verify)
        gen = made[-1]
        gen._net = gen._net.to(gen.device).eval()
        return gen
