"""Delegation for a facade: a class attribute that is the same-named attribute of a part."""

from __future__ import annotations


class Part:
    """``name = Part("a.b")`` on a class makes ``obj.name`` be ``obj.a.b.name`` (a method,
    a property or a value), so a front door can hand work to its parts without a
    wrapper per method."""

    def __init__(self, part: str):
        self.part = part.split(".")

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, lib, owner=None):
        if lib is None:
            return self
        target = lib
        for attr in self.part:
            target = getattr(target, attr)
        return getattr(target, self.name)
