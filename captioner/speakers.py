"""Who said what (pure): the model's speaker ids named in order of first appearance, and whether labels show yet."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from .config import SpeakersConfig
from .translation.interpreter import Caption

# Speaker ids remembered. Past this a new id stays unlabelled: no stream has that many voices, and a model that
# numbered every utterance anew must not grow the table (and the overlay's colours) without end.
MAX_SPEAKERS = 64


def speaker_name(index: int, names: Sequence[str]) -> str:
    """The name of the `index`-th speaker heard (0-based): the configured name, else "Speaker <index + 1>"."""
    return names[index] if index < len(names) else f"Speaker {index + 1}"


def label(template: str, name: str) -> str:
    """The prefix of a caption spoken by `name`: "" for an unknown speaker or when labels are off (template "")."""
    # The config allows only {name} (config.label_problem), so format() cannot reach anything else.
    return template.format(name=name) if template and name else ""


class SpeakerNames:
    """Sets each caption's `speaker` from its `speaker_id`, once, before the captions fan out to the outputs.

    The table is keyed by the raw id and shared by every session of the daemon (each target language, each
    reconnect and rotation): all sessions hear the same audio and the model numbers voices as it first hears
    them, so id "1" in the Japanese session and "1" in the English one are the same person, who then has one name
    (and one colour) in every output. A new session numbers from "1" again; keyed by the raw id, the first voice
    it hears keeps the first name instead of every reconnect counting new speakers. Names follow the order in which
    ids first appear, so `speakers.names[0]` is whoever spoke first.

    Labels show only once a second speaker was heard (or always, with `speakers.always`): a stream with one voice
    needs none. Until then `speaker` stays "" on every caption; afterwards every caption whose id is known is named.
    A caption whose `speaker` is already set (a named input) is left as it is.
    """

    def __init__(self, settings: Callable[[], SpeakersConfig]) -> None:
        # Read at every caption: a reload renames speakers and changes the label from the next caption on.
        self._settings = settings
        self._order: dict[str, int] = {}

    @property
    def heard(self) -> int:
        """Distinct speaker ids heard so far."""
        return len(self._order)

    def labelled(self) -> bool:
        """Whether captions carry their speaker's name now."""
        return self._settings().always or len(self._order) >= 2

    def name(self, caption: Caption) -> Caption:
        if caption.speaker or not caption.speaker_id:
            return caption
        index = self._order.get(caption.speaker_id)
        if index is None:
            if len(self._order) >= MAX_SPEAKERS:
                return caption
            index = self._order[caption.speaker_id] = len(self._order)
        if not self.labelled():
            return caption
        return dataclasses.replace(caption, speaker=speaker_name(index, self._settings().names))

    def number(self, name: str) -> int:
        """Which speaker `name` is, counting from 1 in the order heard (the overlay's colour); 0 if none of ours."""
        names = self._settings().names
        return next((i + 1 for i in self._order.values() if speaker_name(i, names) == name), 0)

    def prefix(self, name: str) -> str:
        """The label before a caption by `name` under the current config ("" when unknown or labels are off)."""
        return label(self._settings().label, name)
