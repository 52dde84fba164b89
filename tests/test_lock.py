"""Per-user locks: owner token, auto-release after timeout (Stealth's lock_autorelease)."""

import threading
import time

import pytest

from stealth_sessions.exceptions import SessionLocked


def test_lock_is_held_inside_the_block_only(service):
    assert not service.is_locked("u")
    with service.lock("u"):
        assert service.is_locked("u")
        assert not service.is_locked("v")
    assert not service.is_locked("u")


def test_a_second_holder_waits_up_to_blocking_timeout_then_raises(service):
    with service.lock("u"):
        start = time.monotonic()
        with pytest.raises(SessionLocked), service.lock("u", blocking_timeout=0.3):
            pass
        assert 0.15 < time.monotonic() - start < 2


def test_a_waiter_gets_the_lock_when_it_is_released(service):
    order = []
    held = threading.Event()

    def holder():
        with service.lock("u"):
            held.set()
            time.sleep(0.2)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with service.lock("u", blocking_timeout=5):
        order.append("waiter in")
    thread.join()
    assert order == ["holder done", "waiter in"]


def test_the_lock_auto_releases_after_its_timeout(service):
    with pytest.raises(SessionLocked, match="expired"), service.lock("u", timeout=0.2):
        time.sleep(0.3)
        assert not service.is_locked("u")
        with service.lock("u", blocking_timeout=0):  # another worker may take it
            pass


def test_a_late_release_does_not_free_the_next_owners_lock(service):
    second = service.lock("u", timeout=5, blocking_timeout=0)
    with pytest.raises(SessionLocked), service.lock("u", timeout=0.2):
        time.sleep(0.3)
        second.__enter__()
    assert service.is_locked("u")
    second.__exit__(None, None, None)
    assert not service.is_locked("u")
