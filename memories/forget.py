"""Everything besides memories and links that holds a user's data: how to delete it and how to export it.

Each forgetter deletes one kind of record of a user (an Owner: a user id in a space) and returns how many it
deleted; forget_user() runs them
all in its transaction. Each exporter returns one kind of record of a user as JSON-ready dicts; the export
endpoint puts them beside the memories. Later features that store user data register both.
"""

from collections.abc import Callable

from memories.owners import Owner

FORGETTERS: dict[str, Callable[[Owner], int]] = {}
EXPORTERS: dict[str, Callable[[Owner], list[dict]]] = {}


def register_forgetter(name: str, forgetter: Callable[[Owner], int]) -> None:
    FORGETTERS[name] = forgetter


def register_exporter(name: str, exporter: Callable[[Owner], list[dict]]) -> None:
    EXPORTERS[name] = exporter
