"""One memo idiom: derived data built once per tables object and dropped with it."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


def per_object(build: Callable[[Key], Value]) -> Callable[[Key], Value]:
    """`build(obj)` computed once per object (by identity) and forgotten when the object is."""
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @functools.wraps(build)
    def get(obj: Key) -> Value:
        found = cache.get(obj)
        if found is None:
            found = cache[obj] = build(obj)
        return found

    return get
