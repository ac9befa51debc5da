"""Map a function over items in forked processes that share one large object without pickling it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
_SHARED: list[Any] = []  # set before the pool forks: each worker reads it from its copy of this process's memory


def _call(task: tuple[Callable[[Any, Any], Any], Any]) -> Any:
    function, item = task
    return function(_SHARED[0], item)


def map_forked(
    function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], workers: int
) -> list[Result]:
    """[function(shared, item) for item in items], in order, in up to `workers` forked processes (in this one when
    there is one worker or one item). `function` must be a module-level function (it is pickled by name)."""
    count = max(1, min(workers, len(items)))
    if count == 1:
        return [function(shared, item) for item in items]
    _SHARED[:] = [shared]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            return list(pool.map(_call, [(function, item) for item in items]))
    finally:
        _SHARED.clear()
