"""The demo bot's actions. Re-engagement: a user left at ``hello->ask_name`` is nudged
(``follow_up->nudge``) after DEMO_NUDGE_AFTER seconds, unless they answered meanwhile.

The step runs in the RQ worker: ``python manage.py rqworker default --with-scheduler``.
"""

from django.conf import settings

from stealth_sessions.signals import on_enter


@on_enter("hello->ask_name")
def schedule_nudge(user_id: str, **kwargs: object) -> None:
    from stealth_sessions.service import get_session_service

    get_session_service().step_to_in(
        user_id,
        getattr(settings, "DEMO_NUDGE_AFTER", 24 * 3600),
        slug="follow_up->nudge",
        if_unchanged=True,  # dropped if the user answered (moved on) before it is due
    )
