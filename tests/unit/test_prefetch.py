from __future__ import annotations

import threading
import time

import pytest

from indexer.prefetch import prefetch


def test_items_arrive_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def numbers():  # type: ignore[no-untyped-def]
        for i in range(1000):
            producers.add(threading.current_thread().name)
            yield i

    assert list(prefetch(numbers(), depth=8)) == list(range(1000))
    assert producers == {"indexer-reader"}


def test_a_producer_error_reaches_the_consumer() -> None:
    def failing():  # type: ignore[no-untyped-def]
        yield 1
        raise OSError("disk gone")

    iterator = prefetch(failing())
    assert next(iterator) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(iterator)


def test_stopping_early_stops_the_producer() -> None:
    produced = []

    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    iterator = prefetch(endless(), depth=4)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    iterator.close()
    count = len(produced)
    time.sleep(0.2)  # a producer still running would keep appending
    assert count < 20 and len(produced) == count
