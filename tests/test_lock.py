"""Per-user locks: owner token, auto-release after timeout (Stealth's lock_autorelease),
re-entrant for their owner."""

import threading
import time

import pytest

from stealth_sessions.exceptions import SessionLocked


def in_other_thread(func):
    """Run ``func`` in a new thread (another owner) and return what it returned or raised."""
    result = {}

    def run():
        try:
            result["value"] = func()
        except BaseException as exc:  # handed back to the test
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_lock_is_held_inside_the_block_only(service):
    assert not service.is_locked("u")
    with service.lock("u"):
        assert service.is_locked("u")
        assert not service.is_locked("v")
    assert not service.is_locked("u")


def test_a_second_owner_waits_up_to_blocking_timeout_then_raises(service):
    def second_owner():
        start = time.monotonic()
        with pytest.raises(SessionLocked), service.lock("u", blocking_timeout=0.3):
            pass
        return time.monotonic() - start

    with service.lock("u"):
        assert 0.15 < in_other_thread(second_owner) < 2


def test_the_lock_is_reentrant_for_its_owner(service):
    with service.lock("u"), service.lock("u", blocking_timeout=0):
        assert service.is_locked("u")
    assert not service.is_locked("u")


def test_a_nested_lock_does_not_release_its_owners_lock(service):
    with service.lock("u"):
        with service.lock("u"):
            pass
        assert service.is_locked("u")
        assert in_other_thread(lambda: service.current_lock("u").mine) is False


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
    def another_worker_takes_it():
        with service.lock("u", blocking_timeout=0):
            return True

    with pytest.raises(SessionLocked, match="expired"), service.lock("u", timeout=0.2):
        time.sleep(0.3)
        assert not service.is_locked("u")
        assert in_other_thread(another_worker_takes_it)


def test_a_late_release_does_not_free_the_next_owners_lock(service):
    taken, done = threading.Event(), threading.Event()

    def next_owner():
        with service.lock("u", timeout=5, blocking_timeout=2):
            taken.set()
            done.wait(5)

    thread = threading.Thread(target=next_owner)
    with pytest.raises(SessionLocked), service.lock("u", timeout=0.2):
        thread.start()
        time.sleep(0.3)
        assert taken.wait(5)
    assert service.is_locked("u")
    done.set()
    thread.join()
    assert not service.is_locked("u")


def test_current_lock_says_who_holds_it_since_when_until_when_and_where_the_user_was(service):
    from django.utils import timezone

    assert service.current_lock("u") is None
    service.step_to("u", slug="hello->ask_name")
    before = timezone.now()
    with service.lock("u", timeout=10):
        service.step_to("u", slug="hello->get_name")
        lock = service.current_lock("u")
        assert lock.slug == "hello->ask_name"  # where the user was when it was taken
        assert lock.mine and lock.user_id == "u"
        assert str(threading.current_thread().name) in lock.holder
        assert before - timezone.timedelta(seconds=1) <= lock.since <= timezone.now()
        assert 8 < (lock.until - lock.since).total_seconds() <= 11
        assert in_other_thread(lambda: service.current_lock("u").mine) is False
    assert service.current_lock("u") is None


def test_current_lock_of_a_user_without_a_session_has_no_slug(service):
    with service.lock("u"):
        assert service.current_lock("u").slug is None
