"""The example API client drives a whole conversation against a live server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "api_client.py"


def load_example():
    spec = importlib.util.spec_from_file_location("api_client", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.django_db(transaction=True)
def test_example_bot_client_plays_a_conversation(live_server, service):
    user = User.objects.create_user("example-bot")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="stealth_sessions")
    )
    token = Token.objects.create(user=user).key
    bot = load_example()
    client = bot.SessionsClient(live_server.url + "/api/", token)
    slugs = bot.converse(client, "+33612345678@whatsapp")
    assert slugs == [
        "hello->say_hello",
        "hello->ask_name",
        "goodbye->say_bye",
        "hello->ask_name",
        "hello->get_name",
    ]
    assert service.get("+33612345678@whatsapp") is None


@pytest.mark.django_db(transaction=True)
def test_example_bot_client_reports_errors_with_their_code(live_server):
    bot = load_example()
    client = bot.SessionsClient(live_server.url + "/api/", "not-a-token")
    with pytest.raises(bot.APIError) as info:
        client.get("u1")
    assert info.value.status == 401 and info.value.code == "authentication_failed"
