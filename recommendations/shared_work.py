"""A to-do list of chunks in Redis that several processes work through together.

One process (the owner) posts the chunks; it and any helpers (Celery tasks in other worker
processes, on this machine or others) claim them one at a time, and each records what it
finished. The owner then waits a while for chunks others claimed, and does itself any that
nobody finished (a helper killed mid-chunk), so the work completes as long as the owner lives.
Doing a chunk twice must be harmless (warming: the same lists written twice).
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

from recommendations import cache

TTL_SECONDS = 2 * 3600


class Board:
    """The Redis keys of one piece of shared work: to-do indices, the chunks, the results."""

    def __init__(self, name: str):
        self.name = name
        self._client = cache.redis_client()
        prefix = cache.cache.make_key(f"work:{name}")
        self.todo_key, self.chunks_key, self.done_key = f"{prefix}:todo", f"{prefix}:chunks", f"{prefix}:done"

    @classmethod
    def post(cls, kind: str, chunks: list) -> Board:
        """Post the chunks (JSON-serialisable) under a new board named after ``kind``."""
        board = cls(f"{kind}:{uuid.uuid4().hex[:12]}")
        pipe = board._client.pipeline(transaction=True)
        pipe.hset(board.chunks_key, mapping={str(i): json.dumps(chunk) for i, chunk in enumerate(chunks)})
        pipe.rpush(board.todo_key, *range(len(chunks)))
        for key in (board.todo_key, board.chunks_key, board.done_key):
            pipe.expire(key, TTL_SECONDS)
        pipe.execute()
        return board

    def claims(self) -> Iterator[tuple[int, object]]:
        """(index, chunk) of each chunk this process claims, until the to-do list is empty."""
        while (index := self._client.lpop(self.todo_key)) is not None:
            chunk = self._client.hget(self.chunks_key, index)
            if chunk is not None:
                yield int(index), json.loads(chunk)

    def finish(self, index: int, result: int) -> None:
        self._client.hset(self.done_key, str(index), result)

    def results(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self._client.hgetall(self.done_key).items()}

    def complete(self, do: Callable[[object], int], *, wait_seconds: float, poll: float = 0.2) -> int:
        """Owner's side, after its own claims: wait up to ``wait_seconds`` for the chunks others
        claimed, ``do`` any still unfinished here, delete the board; returns the sum of results."""
        total = int(self._client.hlen(self.chunks_key))
        deadline = time.monotonic() + wait_seconds
        while len(self.results()) < total and time.monotonic() < deadline:
            time.sleep(poll)
        done = self.results()
        for index in sorted(set(range(total)) - set(done)):
            chunk = self._client.hget(self.chunks_key, index)
            done[index] = do(json.loads(chunk))
        self._client.delete(self.todo_key, self.chunks_key, self.done_key)
        return sum(done.values())
