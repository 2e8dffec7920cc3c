"""What changed in a simulator's memory since it was last kept, so a keeper writes only that.

A simulator's memory (`Platform.MEMORY`) is mostly dicts that grow with every invoice (documents,
records, confirmed invoices...). Writing all of it after every call costs time in proportion to
everything ever certified; a `Journal` hands over, after each call, only the entries that may have
changed, already encoded (`simkit.snapshot.encode`).

How a change is noticed, without the simulators declaring anything: each dict of the memory is
swapped for a `TrackedDict`, which notes every key that is set, deleted, or whose value is handed
out (`d[k]`, `d.get(k)`, `setdefault`, `pop`, iteration over `values()` / `items()`), because a
value handed out may be changed in place afterwards (`taxpayer.stickers -= 1`). A handed-out value
that was not changed is simply written again: conservative, never wrong. Membership tests and
`len()` note nothing. An attribute that is not a dict (a counter, a list, bytes) is encoded after
each call and handed over when its encoding differs from the last one; an attribute the platform
replaces with a new object is handed over whole.

The rule for a simulator's code, the one thing this relies on: change a remembered value only
after reaching it through its dict (any of the accesses above), never through a reference kept
from an earlier call. `tests/simkit/test_journal.py` replays each simulator's flows and checks that
what a keeper rebuilt from the changes equals a full snapshot after every call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fiscalgate.simkit.snapshot import FORMAT, encode

# The key of a part kept whole (not a dict of entries) in `Changes.parts` and by keepers that
# store one row per entry.
WHOLE = ""
# The WHOLE row of a part kept entry by entry: an empty dict, which its entry rows fill (so a dict
# emptied by the platform is restored empty, not with the value it was built with).
EMPTY_DICT: dict[str, Any] = {"$map": []}


class TrackedDict(dict):  # type: ignore[type-arg]
    """A dict that remembers which keys may have changed since `take()`."""

    __slots__ = ("touched",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.touched: set[Any] = set()

    def take(self) -> set[Any]:
        touched, self.touched = self.touched, set()
        return touched

    def __setitem__(self, key: Any, value: Any) -> None:
        self.touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.touched.add(key)
        super().__delitem__(key)

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.touched.add(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if super().__contains__(key):
            self.touched.add(key)
            return super().__getitem__(key)
        return default

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return super().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        if super().__contains__(key):
            self.touched.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self.touched.add(key)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[misc]
        self.update(other)
        return self

    def clear(self) -> None:
        self.touched.update(super().keys())
        super().clear()

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for key, value in super().items():
            self.touched.add(key)
            yield value

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        for key, value in super().items():
            self.touched.add(key)
            yield key, value


def entry_key(key: Any) -> str:
    """A dict key as the text a keeper stores (the JSON of its encoding): never `WHOLE`."""
    return json.dumps(encode(key), ensure_ascii=False, separators=(",", ":"))


@dataclass
class Changes:
    """What to write after one call.

    `parts`: attributes to replace whole; for a dict, `{WHOLE: EMPTY_DICT, entry_key: encoded
    value...}` of all its entries, otherwise `{WHOLE: encoded value}`. `entries`: `{(attribute,
    entry_key): encoded value or None (deleted)}` for the dicts kept entry by entry.
    """

    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.parts or self.entries)


class Journal:
    """Follows the named attributes of `platform` (its MEMORY) and hands over their changes."""

    def __init__(self, platform: Any, names: Iterable[str]) -> None:
        self.platform = platform
        self.names = tuple(names)
        self._tracked: dict[str, TrackedDict] = {}
        self._last: dict[str, Any] = {}  # the last encoding handed over of each non-dict part

    def settle(self) -> None:
        """The memory as it is now is what the keeper holds (just loaded from it): follow it from
        here, handing nothing over for it."""
        for name in self.names:
            value = getattr(self.platform, name)
            if isinstance(value, dict):
                self._track(name, value).take()
            else:
                self._last[name] = encode(value)

    def forget(self) -> None:
        """The last changes handed over were not kept: the next `take` hands over everything."""
        self._tracked.clear()
        self._last.clear()

    def take(self) -> Changes:
        """The changes since the last `take` (or `settle`); everything the first time."""
        changes = Changes()
        for name in self.names:
            value = getattr(self.platform, name)
            tracked = self._tracked.get(name)
            if tracked is not None and value is tracked:
                for key in tracked.take():
                    if dict.__contains__(tracked, key):
                        changes.entries[(name, entry_key(key))] = encode(dict.__getitem__(tracked, key))
                    else:
                        changes.entries[(name, entry_key(key))] = None
            elif isinstance(value, dict):  # new, or replaced by the platform: whole
                tracked = self._track(name, value)
                tracked.take()
                entries = {entry_key(k): encode(v) for k, v in dict.items(tracked)}
                changes.parts[name] = {WHOLE: EMPTY_DICT, **entries}
            else:
                encoded = encode(value)
                if name not in self._last or self._last[name] != encoded:
                    changes.parts[name] = {WHOLE: encoded}
                    self._last[name] = encoded
        return changes

    def _track(self, name: str, value: dict[Any, Any]) -> TrackedDict:
        tracked = value if isinstance(value, TrackedDict) else TrackedDict(value)
        setattr(self.platform, name, tracked)
        self._tracked[name] = tracked
        return tracked


def assemble(rows: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """A `simkit.snapshot` (what `import_state` reads) from stored (attribute, entry key, encoded
    value) rows, in their order: a part stored whole is its value; a dict is its entries."""
    whole: dict[str, Any] = {}
    pairs: dict[str, list[list[Any]]] = {}
    for name, key, value in rows:
        if key == WHOLE:
            whole[name] = value
        else:
            pairs.setdefault(name, []).append([json.loads(key), value])
    state: dict[str, Any] = dict(whole)
    state.update({name: {"$map": entries} for name, entries in pairs.items()})
    return {"format": FORMAT, "state": state}
