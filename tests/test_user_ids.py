"""Rule 9: user ids as platforms give them; anything else is a clear InvalidUserId."""

import pytest
from django.core.cache import caches

from stealth_sessions.exceptions import InvalidUserId

GOOD = [
    "1234567890123456",  # a Messenger PSID
    "+15551234567",
    "whatsapp:+447700900123",
    "user@example.com",
    "ünïcødé-用户-🤖",
    "*",
    "{",
    "}",
    "a}:previous",
    "[x]?",
    "%2F..%00",
    "x" * 256,
]
BAD = [
    "",
    " ",
    "a b",
    "tab\there",
    "new\nline",
    "nul\x00",
    "\x7f",
    "\x85",
    "\u2028",
    "x" * 257,
    "x" * 10_000,
    "\ud800",
    None,
    42,
    b"bytes",
]


@pytest.mark.parametrize("user_id", GOOD)
def test_platform_user_ids_work_and_stay_apart(service, user_id):
    service.step_to("a", slug="goodbye->say_bye")
    service.step_to(user_id, slug="hello->say_hello")
    service.step_to(user_id, slug="hello->ask_name")
    session = service.get(user_id)
    assert (session.user_id, session.slug, session.previous) == (
        user_id,
        "hello->ask_name",
        "hello->say_hello",
    )
    assert service.get("a").slug == "goodbye->say_bye"
    assert [s.user_id for s in service.list_sessions(user_id_prefix=user_id)[0]][:1] == [user_id]
    assert service.reset(user_id)
    assert service.get("a").previous is None


def test_glob_characters_do_not_leak_into_patterns(service):
    service.step_to("ab", slug="hello->say_hello")
    service.step_to("a*", slug="hello->say_hello")
    service.step_to("a?", slug="hello->say_hello")
    assert [s.user_id for s in service.list_sessions(user_id_prefix="a*")[0]] == ["a*"]
    assert service.reset("a*")
    assert service.get("ab") is not None and service.get("a?") is not None


@pytest.mark.parametrize("user_id", BAD, ids=repr)
def test_anything_else_raises_invalid_user_id_and_touches_nothing(service, redis_client, user_id):
    calls = [
        lambda: service.get(user_id),
        lambda: service.peek(user_id),
        lambda: service.step_to(user_id, slug="hello->say_hello"),
        lambda: service.update_session_to(user_id, slug="hello->say_hello"),
        lambda: service.reset(user_id),
        lambda: service.history(user_id),
        lambda: service.is_locked(user_id),
    ]
    for call in calls:
        with pytest.raises(InvalidUserId) as info:
            call()
        assert isinstance(info.value, ValueError)
    prefix = caches["default"].key_prefix
    assert list(redis_client.scan_iter(match=f"{prefix}:*")) == []
