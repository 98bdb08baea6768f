"""Whose memories: a user id within a memory space.

Every function of the engine that reads or writes one user's memories takes an `Owner`, never a bare user id:
the same user id in two spaces is two people, and a bare string cannot say which. Building one validates it, so
the engine never sees an empty or oversized id.
"""

from dataclasses import dataclass

DEFAULT_SPACE_ID = 1
MAX_USER_ID_CHARS = 128


class OwnerError(ValueError):
    """Not a usable user id (empty, not text, too long) or space."""


@dataclass(frozen=True, slots=True)
class Owner:
    space_id: int
    user_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.space_id, int) or isinstance(self.space_id, bool) or self.space_id < 1:
            raise OwnerError("space must be a memory space's id")
        if not isinstance(self.user_id, str) or not self.user_id.strip():
            raise OwnerError("user_id must be a non-empty string")
        if len(self.user_id) > MAX_USER_ID_CHARS or "\x00" in self.user_id:
            raise OwnerError(f"user_id must be at most {MAX_USER_ID_CHARS} characters of text")

    def __str__(self) -> str:
        return self.user_id if self.space_id == DEFAULT_SPACE_ID else f"{self.user_id} (space {self.space_id})"

    @property
    def key(self) -> str:
        """A stable text naming this owner (locks, index names, caches): never a bare user id."""
        return f"{self.space_id}:{self.user_id}"


def default_owner(user_id: str) -> Owner:
    """`user_id` in the default space (tests, and the operator commands' default)."""
    return Owner(DEFAULT_SPACE_ID, user_id)
