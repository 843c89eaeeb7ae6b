"""The Celery application: Redis as broker, configuration from Django settings (CELERY_*)."""
import logging
import os

from celery import Celery
from celery.worker.consumer import Consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")

logger = logging.getLogger(__name__)


class BrokerOutageTolerantConsumer(Consumer):
    """Celery's consumer, except that losing Redis while holding messages does not kill the worker.

    With the Redis transport, a worker that holds unacknowledged messages (delayed refresh tasks
    waiting for their countdown, prefetched tasks) crashes when Redis goes away: on the
    connection error Celery first collects the connection (which detaches its transport) and
    then closes it, and closing the channel tries to restore the unacknowledged messages through
    the detached transport (AttributeError: 'NoneType' object has no attribute 'hostname', an
    error Celery does not expect, so the worker stops). Redis is down at that moment anyway, so
    nothing could be restored; the messages are lost or come back from Redis' own unacked index,
    and refreshes a worker lost are re-sent by recommendations.tasks.resend_lost_refreshes.
    Here that one failure is logged and the consumer goes on to reconnect as it does for every
    other broker outage.
    """

    def on_connection_error_after_connected(self, exc):
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            logger.warning("Broker connection lost while holding messages (%s): reconnecting.", error)


app = Celery("movierec")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
