"""Resuming a search that was killed with a batch in flight.

The runner saves a strategy's state after every tell, so a kill in the middle of a
batch leaves candidates that were asked but never told (``pending``). A strategy with
:class:`ReasksPending` asks exactly those again first after ``load_state_dict`` (and only
those, in their order), so the resumed search tells the same sequence as an
uninterrupted one instead of drawing new candidates from a state that has moved on.
"""

from __future__ import annotations

from typing import Any

from zoo.search.base import Strategy


class ReasksPending(Strategy):
    """Mixin for :class:`Strategy`: after a resume, re-asks the candidates that were in flight."""

    _reserve: list[Any]

    def ask(self, n: int = 1) -> list[Any]:
        reserve = getattr(self, "_reserve", [])
        if reserve:
            out, self._reserve = reserve[:n], reserve[n:]
            self.pending.extend(out)
            return out
        return super().ask(n)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["reserve"] = [g.to_json() for g in getattr(self, "_reserve", [])]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reserve = [self.space.genotype_from_json(g) for g in state.get("reserve", [])] + list(self.pending)
        self.pending = []
