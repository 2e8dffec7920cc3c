"""A simulator's memory as plain JSON, so it can outlive the process (the gateway's database for
`mock`, a file for `fiscalgate simulate --state FILE`).

The encoding is tagged JSON: dataclasses, exact fractions, decimals, datetimes, durations, bytes,
tuples and dicts whose keys are not strings each get a one-key object (`{"$fraction": "1/3"}`).
Decoding builds dataclasses only from the names a simulator lists (never an arbitrary class), so
a snapshot read from a database or a file cannot run code.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

FORMAT = 1  # bumped when the encoding changes incompatibly


class SnapshotError(ValueError):
    """A snapshot this code cannot read (another format, or a class it does not allow)."""


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Fraction):
        return {"$fraction": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$timedelta": value.total_seconds()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        # dict.items: a journal's TrackedDict (simkit.journal) must not take a snapshot for a change.
        items = dict.items(value) if isinstance(value, dict) else value.items()
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in items}
        return {"$map": [[encode(k), encode(v)] for k, v in items]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$class": type(value).__name__, "fields": fields}
    raise SnapshotError(f"cannot snapshot a {type(value).__name__}")


def decode(value: Any, classes: Mapping[str, type]) -> Any:
    if isinstance(value, list):
        return [decode(v, classes) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$fraction":
            return Fraction(inner)
        if tag == "$decimal":
            return Decimal(inner)
        if tag == "$datetime":
            return datetime.fromisoformat(inner)
        if tag == "$timedelta":
            return timedelta(seconds=inner)
        if tag == "$bytes":
            return base64.b64decode(inner)
        if tag == "$tuple":
            return tuple(decode(v, classes) for v in inner)
        if tag == "$map":
            return {_hashable(decode(k, classes)): decode(v, classes) for k, v in inner}
    if set(value) == {"$class", "fields"}:
        cls = classes.get(value["$class"])
        if cls is None:
            raise SnapshotError(f"a snapshot may not build a {value['$class']!r}")
        data = {k: decode(v, classes) for k, v in value["fields"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in data.items() if k in init})
        for k, v in data.items():
            if k not in init:
                setattr(obj, k, v)
        return obj
    return {k: decode(v, classes) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def capture(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    """The named attributes of `obj` (a simulator's platform), encoded."""
    return {"format": FORMAT, "state": {name: encode(getattr(obj, name)) for name in names}}


def restore(obj: Any, snapshot: Mapping[str, Any], names: Iterable[str], classes: Iterable[type]) -> None:
    """Put the named attributes of a `capture` back on `obj`; attributes the snapshot lacks (added
    in a later version) keep the value `obj` was built with."""
    if snapshot.get("format") != FORMAT:
        raise SnapshotError(f"snapshot format {snapshot.get('format')!r}, this version reads {FORMAT}")
    allowed = {cls.__name__: cls for cls in classes}
    state = snapshot.get("state") or {}
    for name in names:
        if name in state:
            setattr(obj, name, decode(state[name], allowed))


def write_file(path: Path, snapshot: Mapping[str, Any]) -> None:
    """Replace `path` atomically: a crash mid-write leaves the previous snapshot whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(snapshot, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)


def read_file(path: Path) -> dict[str, Any] | None:
    """The snapshot stored in `path`, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError(f"{path} is not a simulator snapshot ({exc})") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"{path} is not a simulator snapshot")
    return data
