"""The service's wire models (pydantic): request bodies and answers, as published in ``/openapi.json``.

Requests are strict (unknown fields are refused, ``true`` is not a number, ids are strings
or integers); limits come from :mod:`.settings`. Models without a docstring have none on
purpose: a pydantic docstring becomes the schema's ``description`` in the published API.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from recgen.modalities import VECTOR_MODALITIES

from .settings import MAX_CANDIDATES, MAX_ID_LENGTH, MAX_K, MAX_QUERY_LENGTH

__all__ = ["Candidate", "EnrichRequest", "EnrichResponse", "EnrichedRow", "Health", "Id", "Modality",
           "RankingResponse", "RecommendRequest", "ReloadResult", "ScoredItem", "SearchRequest"]

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]

# one member per vector modality of recgen.modalities, so a new modality needs no edit here
Modality = Enum("Modality", {m: m for m in VECTOR_MODALITIES}, type=str)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_bool(v: Any) -> Any:
    """``true`` is not a number: pydantic's lax mode would read it as 1."""
    if isinstance(v, bool):
        raise ValueError("must be an integer, not a boolean")
    return v


def _id_like(v: Any) -> Any:
    """Accept ints as ids ("42"), like the catalog does; reject bools and floats."""
    if isinstance(v, bool) or isinstance(v, float):
        raise ValueError("ids must be strings (or integers)")
    return str(v) if isinstance(v, int) else v


class Candidate(_Strict):
    """One (user, item) candidate."""

    user_id: Id
    item_id: Id

    @field_validator("user_id", "item_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return _id_like(v)


class EnrichRequest(_Strict):
    """Candidates to enrich and what to add."""

    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    features: bool = True
    blurbs: bool = False
    previews: bool = Field(False, description="Add preview URLs (GET them to generate the PNG).")


# One /enrich row: every field on every row, null where absent (unknown ids, features=false...).
class EnrichedRow(BaseModel):
    user_id: str
    item_id: str
    recgen_sim_fused: Optional[float] = None
    recgen_sim_text: Optional[float] = None
    recgen_sim_image: Optional[float] = None
    recgen_sim_review: Optional[float] = None
    recgen_known_user: Optional[bool] = None
    recgen_known_item: Optional[bool] = None
    recgen_blurb: Optional[str] = None
    recgen_preview: Optional[str] = None


# The /enrich answer; the route writes this JSON itself, column-wise (see routes._rows_json).
class EnrichResponse(BaseModel):
    rows: list[EnrichedRow]
    columns: list[str]


class RecommendRequest(_Strict):
    """A known user, or a history of item ids for a user unknown to the model."""

    user_id: Optional[Id] = None
    history: Optional[list[Id]] = Field(None, min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True

    @field_validator("user_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return _id_like(v)

    @field_validator("history", mode="before")
    @classmethod
    def _history(cls, v: Any) -> Any:
        return [_id_like(x) for x in v] if isinstance(v, list) else v

    _k = field_validator("k", mode="before")(_not_bool)


class ScoredItem(BaseModel):
    item_id: str
    score: float


# Answer of /recommend, /search and /items/{item_id}/similar: best first.
class RankingResponse(BaseModel):
    items: list[ScoredItem]


# The JSON form of /search (its multipart form is described in routes.SEARCH_BODY).
class SearchRequest(_Strict):
    query: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_LENGTH)]
    k: int = Field(10, ge=1, le=MAX_K)
    modality: Modality = Modality.fused

    _k = field_validator("k", mode="before")(_not_bool)


class Health(BaseModel):
    status: str
    items: int
    users: int
    previews: bool
    blurbs: bool
    version: str
    model_version: str = Field(description="Fingerprint of the served model (also in X-Recgen-Model-Version).")


class ReloadResult(BaseModel):
    """Outcome of ``POST /admin/reload``."""

    status: str = Field(description="'reloaded', or 'unchanged' when the saved directory is the one served.")
    model_version: str
    previous_version: str
    seconds: float
