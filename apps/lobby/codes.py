"""Join codes: six characters a person can read aloud and type without confusion.

The alphabet leaves out the characters people mix up on a screen or a phone keyboard:
0 and O, 1, I and L. That leaves 31 characters, so 31**6 (about 887 million) codes: picked
at random, two live lobbies almost never draw the same one, and the JoinCode object
(joincode.py) makes sure they never *hold* the same one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6
#: What people type between groups of characters ("ABC-DEF", "abc def"); ignored.
_SEPARATORS = str.maketrans("", "", " -_.")


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """A random code (``choice`` picks one character; tests pass a seeded one)."""
    return "".join(choice(ALPHABET) for _ in range(LENGTH))


def normalize(text: object) -> str | None:
    """The code ``text`` spells (case and separators ignored), or None if it spells none."""
    if not isinstance(text, str) or len(text) > 4 * LENGTH:
        return None
    code = text.translate(_SEPARATORS).upper()
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code
