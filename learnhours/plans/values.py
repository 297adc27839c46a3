"""The values a plan file writes, each read and checked the one way: category codes (`[501,
337-345]` or `all`), hours, a figure by role (supervisors and the rest), conditions on a person
(`who`), registration lags per channel; the strict base every part of the schema is built on, and
the error a plan that cannot be used raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from learnhours.plans.conditions import Condition

REQUIREMENT_ALL = "all"


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file, line and field."""


Loc = tuple[int | str, ...]


def _located(message: str, *at: int | str) -> PydanticCustomError:
    """A model-level error that knows which of the model's fields it is about, so load_plan can
    point at that field's line rather than at the start of the model."""
    return PydanticCustomError("located", "{message}", {"message": message, "at": at})


def _code_list(value: object) -> object:
    """`[501, "337-345", 7]` -> sorted unique ints; `all` stays `all`."""
    if value == REQUIREMENT_ALL:
        return value
    if not isinstance(value, list):
        raise ValueError("應為類別代碼清單，如 [501, 337-345]，或 all")
    codes: set[int] = set()
    for item in value:
        text = str(item).strip()
        if "-" in text:
            low, _, high = text.partition("-")
            if not (low.strip().isdigit() and high.strip().isdigit()) or int(low) > int(high):
                raise ValueError(f"「{text}」不是代碼區間，應如 337-345")
            codes.update(range(int(low), int(high) + 1))
        elif text.isdigit():
            codes.add(int(text))
        else:
            raise ValueError(f"「{text}」不是類別代碼（應為數字）")
    return sorted(codes)


def _code_set(value: object) -> object:
    listed = _code_list(value)
    if listed == REQUIREMENT_ALL:
        raise ValueError("這裡應列出類別代碼，如 [540-546]，不能寫 all")
    return listed


def _condition(value: object) -> object:
    return value if isinstance(value, Condition) else Condition.parse(value)


def _conditions(value: object) -> object:
    """One condition or a list of them; all must hold."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


Codes = Annotated[list[int] | Literal["all"], BeforeValidator(_code_list)]
CodeSet = Annotated[list[int], BeforeValidator(_code_set)]
Hours = Annotated[Decimal, Field(ge=0)]
Who = Annotated[
    list[Annotated[Condition, BeforeValidator(_condition)]], BeforeValidator(_conditions)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class ByRole(_Strict):
    """A figure that differs for supervisors (主管 = Y) and everyone else."""

    supervisor: Hours
    other: Hours

    def of(self, supervisor: bool) -> Decimal:
        return self.supervisor if supervisor else self.other


def _by_role(value: object) -> object:
    if isinstance(value, (int, float, str, Decimal)):
        return {"supervisor": value, "other": value}
    return value


RoleHours = Annotated[ByRole, BeforeValidator(_by_role)]


Lag = int | dict[Literal["default", "portal", "elearning", "environment"], int]


def _lag(value: object) -> object:
    if isinstance(value, Mapping):
        bad = [v for v in value.values() if not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError("各管道的登錄工作天數應為 0 或正整數")
    elif isinstance(value, int) and value < 0:
        raise ValueError("登錄工作天數應為 0 或正整數")
    return value


LagDays = Annotated[Lag, BeforeValidator(_lag)]
