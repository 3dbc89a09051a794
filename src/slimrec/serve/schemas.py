"""Request and response models of the recommendation API, with their bounds.

Every limit is declared here, so it shows in the OpenAPI schema and a request outside it
is refused with a 422 naming the field (never a 500): history length, each item
reference's length, ``k``, search text. Item references are dense ids (integers) or
strings (an original id or a title, resolved against the catalog).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_HISTORY = 200
MAX_K = 100
MAX_TEXT = 300

# strict: JSON true/false or 1.0 is not an item id or a count (lax mode reads true as 1).
ItemRef = (
    Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
    | Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
)


class RecommendRequest(BaseModel):
    """A known user (``user``) or a history of items (``history``), and how many to return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"history": [1, "sku42", "Toy Story (1995)"], "k": 10}, {"user": "196"}],
            # Exactly one of the two, said in the schema too (clients and schemathesis see it).
            "oneOf": [
                {"required": ["user"], "properties": {"user": {"type": "string"}}},
                {"required": ["history"], "properties": {"history": {"type": "array"}}},
            ],
        },
    )

    user: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)] | None = Field(
        None, description="Original id of a known user (their history and rationale)."
    )
    history: list[ItemRef] | None = Field(
        None,
        min_length=1,
        max_length=MAX_HISTORY,
        description="Items in order, oldest first: dense ids, original ids or exact titles.",
    )
    k: int = Field(10, strict=True, ge=1, le=MAX_K, description="How many items to return.")

    @model_validator(mode="after")
    def _one_of(self) -> RecommendRequest:
        if (self.user is None) == (self.history is None):
            raise ValueError("give exactly one of `user` or `history`")
        return self


class ItemOut(BaseModel):
    id: int = Field(description="Dense item id (what the model uses).")
    raw_id: str = Field(description="The item's id in the source data.")
    title: str = Field(description="Title from the catalog (untrusted text).")


class ScoredItem(ItemOut):
    rank: int = Field(description="1 = best.")
    score: float = Field(description="The model's score (higher is better).")


class SuggestionOut(BaseModel):
    text: str = Field(description="One suggestion of step 3, as written (untrusted text).")
    item: ItemOut | None = Field(
        description="The catalog item it names (exact title, else a close one), or null."
    )


class RationaleOut(BaseModel):
    steps: list[str] = Field(
        description="Step 1 preferences, step 2 categories, step 3 items ('' if not found)."
    )
    text: str = Field(description="The whole rationale as written.")
    source: str = Field(
        description="run:student / run:teacher (read from the run) or student (generated now)."
    )
    parsed: bool = Field(description="Whether all three steps were found.")
    suggestions: list[SuggestionOut] = Field(
        default_factory=list, description="Step 3's suggestions, grounded in the catalog."
    )


class RecommendResponse(BaseModel):
    user: str | None = Field(None, description="The known user, if one was asked for.")
    history: list[ItemOut] = Field(description="The history the model read, resolved.")
    items: list[ScoredItem] = Field(description="Recommendations, best first.")
    rationale: RationaleOut | None = Field(
        None, description="Why: the rationale (none when the run has no student)."
    )
    model: dict[str, str | int | None] = Field(description="Which trained model answered.")


class ItemsResponse(BaseModel):
    items: list[ItemOut]


class UserOut(BaseModel):
    id: str = Field(description="Original user id.")
    history_length: int


class UsersResponse(BaseModel):
    users: list[UserOut]


class HealthResponse(BaseModel):
    status: str
    model: dict[str, str | int | None]
    items: int
    users: int
    student: bool = Field(description="Whether new histories get a generated rationale.")
    pending_generations: int


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, in one line.")


class FieldError(BaseModel):
    field: str = Field(description="Where: e.g. body.history.3 or query.k.")
    message: str


class ValidationErrorResponse(ErrorResponse):
    errors: list[FieldError] = Field(description="Every problem found.")


# Pydantic's error types that only say "this branch of a union has another type".
_TYPE_MISMATCH = {"int_type", "int_parsing", "string_type", "int_from_float", "model_type"}


def field_errors(errors: list[dict]) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors as ``[{"field", "message"}]``, one per field, readable.

    A value checked against a union (an item reference: integer id or string) fails once
    per branch, under locations like ``body.history.0.constrained-int``; the branch tags
    are dropped and the branch that speaks to the value's own type is kept (a too-long
    string is "at most 300 characters", not "not a valid integer").
    """
    grouped: dict[str, list[dict]] = {}
    for e in errors:
        loc = [p for p in e.get("loc", ()) if not (isinstance(p, str) and "-" in p)]
        grouped.setdefault(".".join(str(p) for p in loc) or "request", []).append(e)
    out = []
    for field, group in grouped.items():
        useful = [e for e in group if e.get("type") not in _TYPE_MISMATCH] or group
        if len(group) > 1 and useful is group:
            message = "must be an item id (integer >= 1) or an original id or title (string)"
        else:
            message = str(useful[0].get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out or [{"field": "request", "message": "invalid request"}]
