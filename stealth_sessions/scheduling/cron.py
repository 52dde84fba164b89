"""An RQ cron configuration running the sweep (of scheduled steps and of interrupted bulk
jobs) and the purge of expired users every minute::

    manage.py rqcron stealth_sessions.scheduling.cron

One such process per deployment is enough; more are harmless (sweeps claim steps atomically,
and a bulk job handed over twice runs once).
"""

from rq import cron

from ..conf import conf
from .jobs import purge, sweep

cron.register(sweep, queue_name=conf.SCHEDULER_QUEUE, interval=60)
cron.register(purge, queue_name=conf.SCHEDULER_QUEUE, interval=60)
