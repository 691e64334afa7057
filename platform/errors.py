"""The one error type the platform layer raises: an OS refusal put into a sentence for the user."""

from __future__ import annotations

from sstpvpn.client.core.types import Failure, FailureKind, Layer


class PlatformError(Exception):
    """An operating-system step failed. `sentence` says what happened and what to do."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def to_failure(self) -> Failure:
        """The same error in the shape the session reports to the user."""
        return Failure(where=Layer.NETWORK, reason=self.sentence, kind=FailureKind.OTHER)
