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
</style></head><body>
<h1>{{ title }}</h1><p class="sub">{{ subtitle }}</p>
{% for section in tables %}
<h2>{{ section.title }}</h2>{% if section.note %}<p class="note">{{ section.note }}</p>{% endif %}
<table class="metrics"><tr>{% for c in section.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in section.rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
<h2>Users</h2><p class="note">History: the user's most recent items (newest first). Recommendations: recgen's
top items by content similarity (seen items excluded), with the per-modality similarity features
recgen adds for rankers. A green frame marks an item the user really interacted with later (held out).</p>
{% for u in users %}
<div class="user"><h3>{{ u.user_id }}</h3>{% if u.note %}<p class="note">{{ u.note }}</p>{% endif %}
<div class="label">History</div><div class="row">{% for c in u.history %}{{ card(c) }}{% endfor %}</div>
<div class="label">Recommended</div><div class="row">{% for c in u.recs %}{{ card(c) }}{% endfor %}</div></div>
{% endfor %}
</body></html>
"""

_CARD = """<div class="card{% if c.hit %} hit{% endif %}">{% if c.img %}<img src="{{ c.img }}" alt="{{ c.title }}">{% else %}<div class="noimg">no image</div>{% endif %}
<div class="t" title="{{ c.title }}">{{ c.title }}</div><div class="feat">{{ c.item_id }}{% for k, v in c.features %}<br>{{ k }}: {{ v }}{% endfor %}</div></div>"""


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


def write_report(path: str | Path, *, title: str, subtitle: str, tables: Sequence[Mapping[str, Any]],
                 users: Sequence[Mapping[str, Any]]) -> Path:
    """Render the report and write it atomically.

    Parameters
    ----------
    tables : sequence of {"title", "columns", "rows", "note"?}
    users : sequence of {"user_id", "note"?, "history": [card], "recs": [card]};
        a card is {"item_id", "title", "img" (data URI or None), "features": [(name, value)], "hit"?}
    """
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    card_t = env.from_string(_CARD)
    env.globals["card"] = lambda c: jinja2.utils.markupsafe.Markup(card_t.render(c={
        "hit": False, "features": [], **c}))
    page = env.from_string(_TEMPLATE).render(
        title=title, subtitle=subtitle,
        tables=[{"note": "", **t} for t in tables],
        users=[{"note": "", **u} for u in users],
    )
    path = Path(path)
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


def escape(text: str) -> str:
    return html.escape(text)
