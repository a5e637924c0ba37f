"""Where a height's time goes, as this validator sees it: four phases, measured at commit.

A height runs from the previous commit to this one. The driver marks, on a monotonic
clock, when this node had the round's proposal (its own built, or another's arrived),
when it cast its prevote (after validating the block), when it cast its precommit
(after seeing more than 2/3 of the prevotes) and when the height was decided (more
than 2/3 of the precommits). The phases between them:

* ``propose``: previous commit → proposal in hand (the proposer's wait for a fuller
  block and its build; for the others, that and the transfer);
* ``validate``: proposal in hand → own prevote (executing the block, unless it was
  executed ahead: node/speculation.py);
* ``prevotes``: own prevote → own precommit (the slowest of the quorum's validations);
* ``precommits``: own precommit → decided.

A proposer also reports, within ``propose``, ``wait`` (previous commit → its build
began: the wait for a fuller block, and the loop's other work) and ``build``. Only heights
decided in round 0 with every mark are measured: a later round's time is the timeouts'
(logged by node/round_watch.py). Exposed as ``cityledger_height_phase_seconds{phase}``
(docs/operations.md); ``bench run`` reports each phase's mean over its timed phase.

Clock-free (callers pass ``now``); bounded: the marks of one height.
"""

from __future__ import annotations

from itertools import pairwise

PHASES = ("propose", "wait", "build", "validate", "prevotes", "precommits")
_ORDER = ("proposal", "prevote", "precommit")  # the marks, in the order a height makes them


class HeightPhases:
    """The marks of the current height, turned into phase durations at its commit."""

    def __init__(self, started: float) -> None:
        self._height = 0
        self._started = started  # when the previous height was committed (or the node started)
        self._marks: dict[str, float] = {}
        self._build: tuple[float, float] | None = None  # (began, seconds) of our build

    def mark(self, height: int, what: str, now: float) -> None:
        """``what`` (one of ``proposal``, ``prevote``, ``precommit``) happened in round 0
        of ``height``; only the first of each counts."""
        if height != self._height:
            self._at(height)
        self._marks.setdefault(what, now)

    def built(self, height: int, began: float, seconds: float) -> None:
        """This node built the round-0 block of ``height``, beginning at ``began``."""
        if height != self._height:
            self._at(height)
        self._build = (began, seconds)

    def passed(self, height: int, now: float) -> None:
        """The node moved past ``height`` without deciding it itself (catch-up): not
        measured; the next height starts ``now``."""
        self._started = now
        self._at(height + 1)

    def committed(self, height: int, round_: int, now: float) -> dict[str, float] | None:
        """``height`` was decided in ``round_`` at ``now``: its phases in seconds (None when
        it was not decided in round 0 or a mark is missing); the next height starts now."""
        marks = self._marks if height == self._height else {}
        phases: dict[str, float] | None = None
        if round_ == 0 and all(m in marks for m in _ORDER):
            times = [self._started, *(marks[m] for m in _ORDER), now]
            if all(a <= b for a, b in pairwise(times)):
                phases = {
                    "propose": times[1] - times[0],
                    "validate": times[2] - times[1],
                    "prevotes": times[3] - times[2],
                    "precommits": times[4] - times[3],
                }
                if self._build is not None and self._build[0] >= self._started:
                    phases["wait"] = self._build[0] - self._started
                    phases["build"] = self._build[1]
        self.passed(height, now)
        return phases

    def _at(self, height: int) -> None:
        self._height = height
        self._marks.clear()
        self._build = None
