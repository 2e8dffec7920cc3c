"""simkit.journal: a simulator's memory handed over change by change, and what a keeper rebuilds
from the changes equals the memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fiscalgate.simkit import snapshot
from fiscalgate.simkit.journal import EMPTY_DICT, WHOLE, Changes, Journal, TrackedDict, assemble, entry_key


@dataclass
class Doc:
    number: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Platform:
    MEMORY = ("docs", "counters", "sequence", "log")
    docs: dict[str, Doc] = field(default_factory=dict)
    counters: dict[tuple[str, int], int] = field(default_factory=dict)
    sequence: int = 0
    log: list[str] = field(default_factory=list)

    def export_state(self) -> dict[str, Any]:
        return snapshot.capture(self, self.MEMORY)

    def import_state(self, data: dict[str, Any]) -> None:
        snapshot.restore(self, data, self.MEMORY, (Doc,))


class Keeper:
    """Applies changes to rows as the gateway's store does (one row per entry)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Any] = {}

    def apply(self, changes: Changes) -> int:
        for part, entries in changes.parts.items():
            for key in [k for k in self.rows if k[0] == part]:
                del self.rows[key]
            for key, value in entries.items():
                self.rows[(part, key)] = value
        for (part, key), value in changes.entries.items():
            if value is None:
                self.rows.pop((part, key), None)
            else:
                self.rows[(part, key)] = value
        return len(changes.entries) + sum(len(e) for e in changes.parts.values())

    def memory(self) -> dict[str, Any]:
        return assemble((p, k, v) for (p, k), v in self.rows.items())


def same(keeper: Keeper, platform: Platform) -> bool:
    rebuilt = Platform()
    rebuilt.import_state(keeper.memory())
    return rebuilt.export_state() == platform.export_state()


def test_the_first_take_hands_everything_then_only_what_changed() -> None:
    p = Platform()
    p.docs["a"] = Doc(1)
    journal, keeper = Journal(p, p.MEMORY), Keeper()
    first = journal.take()
    assert set(first.parts) == {"docs", "counters", "sequence", "log"}
    assert first.parts["docs"][WHOLE] == EMPTY_DICT
    keeper.apply(first)
    assert same(keeper, p)
    assert isinstance(p.docs, TrackedDict)  # followed from now on

    assert not journal.take()  # nothing happened: nothing to write

    for i in range(2, 50):
        p.docs[str(i)] = Doc(i)
        p.sequence += 1
        written = keeper.apply(journal.take())
        assert written == 2  # the new document and the counter, whatever the memory's size
        assert same(keeper, p)


def test_a_value_changed_in_place_after_being_handed_out_is_written() -> None:
    p = Platform(docs={"a": Doc(1), "b": Doc(2), "c": Doc(3)})
    journal, keeper = Journal(p, p.MEMORY), Keeper()
    keeper.apply(journal.take())

    p.docs["a"].tags.append("via []")
    changes = journal.take()
    assert set(changes.entries) == {("docs", entry_key("a"))}
    keeper.apply(changes)

    got = p.docs.get("b")
    assert got is not None
    got.number = 20
    keeper.apply(journal.take())

    for doc in p.docs.values():  # iteration hands every value out
        if doc.number == 3:
            doc.number = 30
    keeper.apply(journal.take())

    for _key, doc in p.docs.items():
        doc.tags.append("all")
    keeper.apply(journal.take())
    assert same(keeper, p)


def test_membership_and_len_write_nothing_and_deletions_are_written() -> None:
    p = Platform(docs={"a": Doc(1), "b": Doc(2)}, counters={("x", 1): 1})
    journal, keeper = Journal(p, p.MEMORY), Keeper()
    keeper.apply(journal.take())
    assert "a" in p.docs and len(p.docs) == 2 and p.docs.get("missing") is None
    assert not journal.take()

    del p.docs["a"]
    p.docs.pop("b")
    p.counters[("x", 1)] += 1
    p.counters.setdefault(("y", 2), 5)
    changes = journal.take()
    assert changes.entries[("docs", entry_key("a"))] is None
    keeper.apply(changes)
    assert same(keeper, p)
    assert keeper.memory()["state"]["docs"] == EMPTY_DICT  # emptied, not forgotten

    p.docs.update({"c": Doc(3)})
    p.docs |= {"d": Doc(4)}
    p.counters.clear()
    keeper.apply(journal.take())
    assert same(keeper, p)


def test_a_replaced_attribute_and_a_lost_write_are_handed_over_whole() -> None:
    p = Platform(docs={"a": Doc(1)})
    journal, keeper = Journal(p, p.MEMORY), Keeper()
    keeper.apply(journal.take())

    p.docs = {"z": Doc(26)}  # the platform rebinds the attribute
    changes = journal.take()
    assert "docs" in changes.parts and set(changes.parts["docs"]) == {WHOLE, entry_key("z")}
    keeper.apply(changes)
    assert same(keeper, p)

    p.log.append("lost")
    journal.take()  # handed over, but the keeper failed to write it
    journal.forget()
    p.docs["y"] = Doc(25)
    keeper.apply(journal.take())  # everything again: the keeper catches up
    assert same(keeper, p)


def test_settle_follows_a_memory_the_keeper_already_holds() -> None:
    p = Platform(docs={"a": Doc(1)}, sequence=4)
    journal, keeper = Journal(p, p.MEMORY), Keeper()
    keeper.apply(journal.take())

    restarted = Platform()
    restarted.import_state(keeper.memory())
    again = Journal(restarted, restarted.MEMORY)
    again.settle()
    assert not again.take()
    restarted.docs["b"] = Doc(2)
    assert keeper.apply(again.take()) == 1
    assert same(keeper, restarted)


def test_a_full_snapshot_of_a_followed_memory_marks_nothing() -> None:
    p = Platform(docs={"a": Doc(1)})
    journal = Journal(p, p.MEMORY)
    journal.take()
    p.export_state()  # `fiscalgate simulate --state FILE` still writes whole snapshots
    assert not journal.take()
