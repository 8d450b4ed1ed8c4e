"""Self-contained HTML report (thumbnails inlined as data URIs, no external assets)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2

from recgen._io import atomic_write_bytes

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1400px}
 h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
 table.metrics{border-collapse:collapse;margin:.5rem 0 1.5rem} table.metrics td,table.metrics th{border:1px solid #ddd;padding:.3rem .7rem;text-align:right}
 table.metrics th:first-child,table.metrics td:first-child{text-align:left}
 .user{border-top:2px solid #eee;padding-top:1rem;margin-top:1rem}
 .row{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start}
 .card{width:150px;font-size:.75rem;background:#fafafa;border:1px solid #e5e5e5;border-radius:6px;padding:.35rem}
 .card img{width:100%;height:120px;object-fit:contain;background:#fff;border-radius:4px}
 .card .t{font-weight:600;margin:.2rem 0;line-height:1.2em;max-height:2.4em;overflow:hidden}
 .feat{color:#555;font-variant-numeric:tabular-nums} .hit{outline:3px solid #2a9d4b}
 .noimg{height:120px;display:flex;align-items:center;justify-content:center;color:#aaa;background:#fff}
 .label{font-size:.8rem;color:#666;margin:.4rem 0 .2rem} .note{color:#666;font-size:.85rem}
 .card img.pv{height:72px;width:72px;image-rendering:pixelated} .blurb{font-style:italic;color:#333;margin:.2rem 0}
 .card{width:170px}
 .sheet figure{margin:0;width:180px;font-size:.8rem} .sheet img{width:160px;height:160px;border:1px solid #ddd;border-radius:4px}
 .sheet .blurb{max-width:760px}
</style></head><body>
<h1>{{ title }}</h1><p class="sub">{{ subtitle }}</p>
{% for section in tables %}
<h2>{{ section.title }}</h2>{% if section.note %}<p class="note">{{ section.note }}</p>{% endif %}
<table class="metrics"><tr>{% for c in section.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in section.rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
{% for p in plots %}<div style="display:inline-block;margin:0 1rem 1rem 0;vertical-align:top"><h3>{{ p.title }}</h3>{{ p.svg }}</div>{% endfor %}
{% if sheets %}<h2>Generated previews: what each user sees</h2>
<p class="note">For a recommended item: its real photo, the neutral preview (any user), this user's preview and the
preview for the user whose taste is least like theirs. The product's own pixels are kept; the backdrop takes the
user's favourite colour, from their history, and a card in a corner the product leaves free shows an item from that
history. Below each, the two users' blurbs.</p>
{% for s in sheets %}<div class="sheet"><h3>{{ s.title }} <span class="note">({{ s.item_id }}) for {{ s.user_id }} vs {{ s.other }}</span></h3>
<div class="row">{% for label, src, cap in s.cells %}<figure><img src="{{ src }}" alt="{{ label }}"><figcaption>{{ label }}{% if cap %}<br><span class="note">{{ cap }}</span>{% endif %}</figcaption></figure>{% endfor %}</div>
{% for u, b in s.blurbs %}<p class="blurb"><b>{{ u }}:</b> {{ b }}</p>{% endfor %}</div>{% endfor %}{% endif %}
{% if text_only %}<h2>Items without a photo: generated from their text</h2>
<p class="note">These items' photos were hidden from the generators. Each preview is generated from the item's text
(an exemplar retrieved by shape and pattern, recoloured to the colour the text names and refined by the cGAN editor) and is marked "generated"; the real photo is
shown only here, for comparison.</p>
<div class="row">{% for t in text_only %}<div class="card"><div class="t" title="{{ t.title }}">{{ t.title }}</div>
<div class="label">real photo (hidden)</div><img src="{{ t.real }}" alt="real photo of {{ t.title }}">
<div class="label">generated (neutral)</div><img src="{{ t.neutral }}" alt="generated preview of {{ t.title }}">
{% if t.user_id %}<div class="label">generated for {{ t.user_id }}</div><img src="{{ t.personal }}" alt="generated preview for {{ t.user_id }}">{% endif %}
</div>{% endfor %}</div>{% endif %}
{% if users %}<h2>Users</h2><p class="note">{{ users_note }}</p>{% endif %}
{% for u in users %}
<div class="user"><h3>{{ u.user_id }}</h3>{% if u.note %}<p class="note">{{ u.note }}</p>{% endif %}
<div class="label">History</div><div class="row">{% for c in u.history %}{{ card(c) }}{% endfor %}</div>
<div class="label">Recommended</div><div class="row">{% for c in u.recs %}{{ card(c) }}{% endfor %}</div></div>
{% endfor %}
</body></html>
"""

_CARD = """<div class="card{% if c.hit %} hit{% endif %}">{% if c.img %}<img src="{{ c.img }}" alt="{{ c.title }}">{% else %}<div class="noimg">no image</div>{% endif %}
<div class="t" title="{{ c.title }}">{{ c.title }}</div>{% if c.preview %}<div class="label">generated preview</div><img class="pv" src="{{ c.preview }}" alt="preview">{% endif %}{% if c.blurb %}<div class="blurb">{{ c.blurb }}</div>{% endif %}<div class="feat">{{ c.item_id }}{% for k, v in c.features %}<br>{{ k }}: {{ v }}{% endfor %}</div></div>"""


def thumbnail_data_uri(path: Any, size: int = 160) -> str | None:
    """A small JPEG of the image at ``path`` as a data URI, or None if it cannot be read."""
    from recgen.encoders.image import load_image

    if not isinstance(path, (str, Path)) or not str(path):
        return None
    try:
        img = load_image(path)
    except ValueError:
        return None
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


_USERS_NOTE = ("History: the user's most recent items (newest first). Recommendations: recgen's top items by "
               "content similarity (seen items excluded), with the per-modality similarity features recgen adds "
               "for rankers. A green frame marks an item the user really interacted with later (held out).")


def write_report(path: str | Path, *, title: str, subtitle: str, tables: Sequence[Mapping[str, Any]],
                 users: Sequence[Mapping[str, Any]], plots: Sequence[Mapping[str, str]] | None = None,
                 users_note: str = _USERS_NOTE, sheets: Sequence[Mapping[str, Any]] = (),
                 text_only: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Render the report and write it atomically.

    Parameters
    ----------
    tables : sequence of {"title", "columns", "rows", "note"?}
    users : sequence of {"user_id", "note"?, "history": [card], "recs": [card]};
        a card is {"item_id", "title", "img" (data URI or None), "features": [(name, value)], "hit"?}
    sheets : sequence of {"user_id", "other", "item_id", "title", "cells": [(label, data URI, caption)],
        "blurbs": [(user, text)]}
        Contact sheets of generated previews (real photo, neutral, this user, a contrasting user).
    text_only : sequence of {"item_id", "title", "real", "neutral", "personal", "user_id"}
        Previews generated without the item's photo, beside the hidden photo.
    """
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    card_t = env.from_string(_CARD)
    env.globals["card"] = lambda c: jinja2.utils.markupsafe.Markup(card_t.render(c={
        "hit": False, "features": [], "preview": None, "blurb": None, **c}))
    page = env.from_string(_TEMPLATE).render(
        title=title, subtitle=subtitle,
        plots=[{"title": p["title"], "svg": jinja2.utils.markupsafe.Markup(p["svg"])} for p in (plots or [])],
        tables=[{"note": "", **t} for t in tables],
        users=[{"note": "", **u} for u in users], users_note=users_note, sheets=list(sheets),
        text_only=list(text_only),
    )
    path = Path(path)
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


def array_data_uri(img) -> str:
    """A uint8 (H, W, 3) array as a PNG data URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def line_plot_svg(series: Mapping[str, Sequence[float]], *, width: int = 420, height: int = 220,
                  xlabel: str = "epoch") -> str:
    """A small inline SVG line chart (one line per series, each scaled to its own range, legend).

    A series with one value (one epoch) is drawn as a dot: skipping it left an empty frame.
    """
    pad = 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" style="background:#fff;border:1px solid #ddd">']
    for k, (name, ys) in enumerate(series.items()):
        ys = [float(y) for y in ys if y == y]
        if not ys:
            continue
        lo, hi = min(ys), max(ys)
        span = (hi - lo) or 1.0
        xy = [(pad + (i / (len(ys) - 1) if len(ys) > 1 else 0.5) * (width - 2 * pad),
               height - pad - (y - lo) / span * (height - 2 * pad)) for i, y in enumerate(ys)]
        col = _COLOURS[k % len(_COLOURS)]
        if len(xy) == 1:
            parts.append(f'<circle cx="{xy[0][0]:.1f}" cy="{xy[0][1]:.1f}" r="3" fill="{col}"/>')
        else:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{pad + 4}" y="{14 + 13 * k}" font-size="11" fill="{col}">{html.escape(name)} '
                     f'({ys[0]:.3g} -> {ys[-1]:.3g})</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 8}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text></svg>')
    return "".join(parts)


def bar_plot_svg(values: Mapping[str, float], *, width: int = 420, bar_height: int = 22, vmax: float | None = None) -> str:
    """A small inline SVG horizontal bar chart."""
    vmax = vmax or max([abs(v) for v in values.values()] + [1e-9])
    height = bar_height * len(values) + 10
    label_w = 170
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" style="background:#fff;border:1px solid #ddd">']
    for k, (name, v) in enumerate(values.items()):
        y = 5 + k * bar_height
        w = max(0.0, v) / vmax * (width - label_w - 50)
        parts.append(f'<text x="4" y="{y + 15}" font-size="11">{html.escape(name)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 8}" fill="{_COLOURS[k % len(_COLOURS)]}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="11">{v:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_plot_svg(values: Mapping[str, tuple[float, float, float]], *, width: int = 520, row_height: int = 22,
                      title: str = "") -> str:
    """Inline SVG of point estimates with interval whiskers: ``{name: (value, low, high)}``."""
    label_w, pad = 220, 12
    finite = [x for v in values.values() for x in v if x == x]
    lo_all, hi_all = (min(finite + [0.0]), max(finite + [1e-9])) if finite else (0.0, 1.0)
    span = (hi_all - lo_all) or 1.0
    plot_w = width - label_w - 2 * pad - 50
    x = lambda v: label_w + pad + (v - lo_all) / span * plot_w  # noqa: E731
    height = row_height * len(values) + 28
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="background:#fff;border:1px solid #ddd">']
    if lo_all < 0 < hi_all:
        parts.append(f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999" stroke-dasharray="3,3"/>')
    for k, (name, (v, lo, hi)) in enumerate(values.items()):
        y = 14 + k * row_height
        col = _COLOURS[k % len(_COLOURS)]
        parts.append(f'<text x="4" y="{y + 4}" font-size="11">{html.escape(name)}</text>'
                     f'<line x1="{x(lo):.1f}" y1="{y}" x2="{x(hi):.1f}" y2="{y}" stroke="{col}" stroke-width="2"/>'
                     f'<circle cx="{x(v):.1f}" cy="{y}" r="4" fill="{col}"/>'
                     f'<text x="{x(hi) + 6:.1f}" y="{y + 4}" font-size="10">{v:.3f}</text>')
    parts.append(f'<text x="{label_w + pad}" y="{height - 6}" font-size="10">{lo_all:.3f}</text>'
                 f'<text x="{label_w + pad + plot_w:.0f}" y="{height - 6}" font-size="10" text-anchor="end">{hi_all:.3f}</text>'
                 f'<text x="{width / 2:.0f}" y="{height - 6}" font-size="10" text-anchor="middle">{html.escape(title)}</text></svg>')
    return "".join(parts)
