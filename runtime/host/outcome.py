"""How an event went, and whether a failed one may have had an effect.

"Not run" (errors.py) is said only when nothing the runtime carries out for the event can
have lasted: its writes are in batches that surely were not stored (never sent, refused
whole by the lease check, or after an earlier failed batch: commits.may_be_stored), the
socket messages it sent waited for such a batch, it called no other object and started no
background work. Everything else "may have run".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from ..storage.state import ObjectState

T = TypeVar("T")


@dataclass(slots=True)
class Outcome(Generic[T]):
    """How an event went: its result or error, and what it may have left behind."""

    result: T | None
    error: BaseException | None
    state: ObjectState | None
    seq: int
    #: The first batch the event's writes joined, and the batch its socket messages waited
    #: for (0: none); ``touched``: an effect no failed commit can undo (it called another
    #: object, started background work, or its messages went out at once).
    wrote: int = 0
    sent: int = 0
    touched: bool = False

    def may_have_run(self) -> bool:
        """Whether the failed event may have had an effect (errors.py: "not run" or not)."""
        if self.touched:
            return True
        commits = None if self.state is None else self.state.commits
        return commits is not None and any(
            seq and commits.may_be_stored(seq) for seq in (self.wrote, self.sent)
        )
