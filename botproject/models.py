"""The demo's outbox: the messages of each conversation, the bot's replies included. A real
bot would call its messaging platform's send API instead; the chat page (and
``examples/bot_client.py``) read the replies from here."""

from django.db import models


class Message(models.Model):
    user_id = models.CharField(max_length=256, db_index=True)
    from_bot = models.BooleanField()
    text = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{'bot' if self.from_bot else self.user_id}: {self.text}"
