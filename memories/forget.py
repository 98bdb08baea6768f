"""Everything besides memories and links that holds a user's text, and how to delete it.

Each entry deletes one kind of record of a user and returns how many it deleted; forget_user() runs them
all in its transaction. Later features that store user text register here.
"""

from collections.abc import Callable

FORGETTERS: dict[str, Callable[[str], int]] = {}


def register_forgetter(name: str, forgetter: Callable[[str], int]) -> None:
    FORGETTERS[name] = forgetter
