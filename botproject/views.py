"""The demo's chat: the page at ``/``, the webhook a messaging platform would call, and the
outbox the page (and ``examples/bot_client.py``) polls for replies."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.admin.utils import quote
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from stealth_sessions.exceptions import InvalidUserId, SessionLocked, SessionStoreUnavailable
from stealth_sessions.service import get_session_service
from stealth_sessions.users import validate_user_id

from .bot import handle_message
from .models import Message

MAX_TEXT = 1000


@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    return render(request, "chat.html", {"nudge_after": settings.DEMO_NUDGE_AFTER})


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


# A platform's webhook carries no CSRF token; a real one checks the platform's signature.
@csrf_exempt
@require_POST
async def webhook(request: HttpRequest) -> HttpResponse:
    """``POST {"user_id": ..., "text": ...}``: one incoming message (202; replies go to the
    outbox). 400 for a bad message, 409 while the user's previous message is handled.

    An async view on the async service (the bot's ``handle_message``), awaited on the event
    loop under ASGI. The demo's ``runserver`` is WSGI: there Django runs each call of the
    view on an event loop of its own, so the view closes that loop's Redis connections."""
    try:
        body = json.loads(request.body or b"{}")
        user_id = validate_user_id(body["user_id"])
        text = str(body["text"]).strip()
    except (ValueError, KeyError, TypeError, InvalidUserId):
        return _error(400, 'expected JSON {"user_id": "<id>", "text": "<message>"}')
    if not text or len(text) > MAX_TEXT:
        return _error(400, f"text must have 1 to {MAX_TEXT} characters")
    try:
        await handle_message(user_id, text)
    except SessionLocked:
        return _error(409, "the previous message of this user is still being handled")
    except SessionStoreUnavailable:
        return _error(503, "Redis is not answering")
    finally:
        if not isinstance(request, ASGIRequest):  # WSGI: this loop ends with the request
            await get_session_service().aclose()
    return JsonResponse({"received": True}, status=202)


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """``GET ?user_id=<id>&after=<message id>``: the conversation's messages after that one,
    and where the user stands (session, history, pending scheduled steps, admin link)."""
    try:
        user_id = validate_user_id(request.GET.get("user_id", ""))
        after = int(request.GET.get("after", "0"))
    except (ValueError, InvalidUserId):
        return _error(400, "expected ?user_id=<id>&after=<message id>")
    sessions = get_session_service()
    try:
        # peek, not get: watching a conversation must not slide its expiry
        session = sessions.peek(user_id)
        history = sessions.history(user_id, limit=20)
        steps = sessions.scheduled_steps(user_id)
    except SessionStoreUnavailable:
        return _error(503, "Redis is not answering")
    messages = Message.objects.filter(user_id=user_id, id__gt=after)[:200]
    return JsonResponse(
        {
            "messages": [
                {"id": m.id, "from_bot": m.from_bot, "text": m.text, "at": m.sent_at.isoformat()}
                for m in messages
            ],
            "session": None
            if session is None
            else {
                "slug": session.slug,
                "previous": session.previous,
                "back_to": session.back_to,
                "version": session.version,
            },
            "history": [
                {
                    "at": t.at.isoformat(),
                    "source": t.source,
                    "target": t.target,
                    "method": t.method,
                    "origin": t.origin,
                }
                for t in history
            ],  # fmt: skip
            "scheduled": [{"target": s.target, "due": s.due.isoformat()} for s in steps],
            "admin_url": request.build_absolute_uri(
                reverse("admin:stealth_sessions_session_change", args=[quote(user_id)])
            ),
        }
    )
