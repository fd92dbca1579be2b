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


def wait_until(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("depth", [1, 4])
def test_reads_at_most_depth_ahead_and_stopping_early_stops_the_producer(depth: int) -> None:
    """The producer runs ahead of the consumer, but no further than ``depth`` queued items
    (plus the one it holds while it waits for room); closing the iterator ends its thread."""
    produced: list[int] = []
    producer: list[threading.Thread] = []

    def endless():  # type: ignore[no-untyped-def]
        producer.append(threading.current_thread())
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    iterator = prefetch(endless(), depth=depth)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    # Read-ahead fills the queue while the consumer does nothing: 3 taken + depth queued + 1 held.
    ahead = 3 + depth + 1
    wait_until(lambda: len(produced) >= ahead)
    time.sleep(0.3)  # several of the producer's 0.1 s retries: an unbounded one would go on
    assert len(produced) == ahead, (len(produced), ahead)
    # Taking one more makes room for exactly one more, in order.
    assert next(iterator) == 3
    wait_until(lambda: len(produced) >= ahead + 1)
    time.sleep(0.3)
    assert len(produced) == ahead + 1

    [thread] = producer
    assert thread.is_alive()  # blocked on the full queue, not finished
    iterator.close()  # type: ignore[attr-defined]  # a generator, typed as an Iterator
    assert not thread.is_alive()  # close() stopped and joined it
    assert len(produced) == ahead + 1  # and it took nothing more from the source
