"""Journal steps as types: each change a configurator makes is a frozen dataclass holding what
is needed to undo it, and turns into JSON (and back) only at the journal file's edge.

The JSON shape is the one the first versions wrote, {"op": <name>, <field>: <value>, ...}, so a
journal left by an older sstp-vpn is still repaired after an upgrade. A step type names its "op"
in OP and its JSON keys are its field names; tuples are written as JSON arrays, and a field with
a default only when it differs from it (a record of an older version may lack it). Decoding is
lazy, one step at a time (journal_replay), so one damaged or unknown step is a sentence while
the others are still undone.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import Record


@dataclasses.dataclass(frozen=True)
class JournalStep:
    """Base of every step type; subclasses set OP and declare their fields."""

    OP: ClassVar[str] = ""


class StepCatalog:
    """The step types one configurator writes, by their "op"."""

    def __init__(self, *types: type[JournalStep]) -> None:
        self._types = {step_type.OP: step_type for step_type in types}
        assert len(self._types) == len(types) and "" not in self._types, "each step type needs its own OP"

    def to_json(self, step: JournalStep) -> Record:
        assert self._types.get(step.OP) is type(step), f"{type(step).__name__} is not in this catalog"
        record: Record = {"op": step.OP}
        for field in dataclasses.fields(step):
            value = getattr(step, field.name)
            if field.default is not dataclasses.MISSING and value == field.default:
                continue  # an optional field is written only when it says something
            record[field.name] = list(value) if isinstance(value, tuple) else value
        return record

    def from_json(self, record: Record) -> JournalStep:
        """The step `record` describes. An unknown op is a PlatformError; a missing field raises
        KeyError (journal_replay reports it as a damaged step)."""
        step_type = self._types.get(record.get("op"))  # type: ignore[arg-type]
        if step_type is None:
            raise PlatformError(
                _("The network undo journal has a step this version does not know ({step!r}); undo it by hand.").format(step=record.get("op"))
            )
        values = {}
        for field in dataclasses.fields(step_type):
            if field.name in record:
                value = record[field.name]
                values[field.name] = tuple(value) if isinstance(value, list) else value
            elif field.default is dataclasses.MISSING:
                raise KeyError(field.name)
        return step_type(**values)
