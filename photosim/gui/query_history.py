"""What the similar panel is showing, and the way back (browse by similarity)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Query:
    """A library photo, or images from outside (file paths or encoded bytes) never added;
    ``copies``: not its similar photos but its verified copies (what it is a copy of)."""

    photo: object | None = None               # PhotoInfo
    images: list = field(default_factory=list)  # str paths or bytes
    label: str = ""
    copies: bool = False

    @property
    def is_photo(self) -> bool:
        return self.photo is not None

    def title(self) -> str:
        if self.photo is not None:
            return self.photo.name
        return self.label or (f"{len(self.images)} dropped images" if len(self.images) > 1 else "Dropped image")


class QueryHistory:
    def __init__(self, limit: int = 100):
        self._stack: list[Query] = []
        self._limit = limit

    @property
    def current(self) -> Query | None:
        return self._stack[-1] if self._stack else None

    def push(self, q: Query) -> None:
        cur = self.current
        if cur is not None and cur.is_photo and q.is_photo and cur.photo.id == q.photo.id and cur.copies == q.copies:
            return
        self._stack.append(q)
        del self._stack[:-self._limit]

    def can_go_back(self) -> bool:
        return len(self._stack) > 1

    def back(self) -> Query | None:
        if self.can_go_back():
            self._stack.pop()
        return self.current

    def clear(self) -> None:
        self._stack.clear()

    def __len__(self) -> int:
        return len(self._stack)
