"""Chat with the demo bot from outside, as a messaging platform would: stdlib only.

    python examples/bot_client.py http://127.0.0.1:8000/ [user_id]

Each message goes to the bot's webhook (``POST webhook/``, JSON ``{"user_id", "text"}``); the
bot handles it before answering (202), so its replies are then in the outbox
(``GET outbox/?user_id=&after=``), with where the user now stands. It plays one whole
conversation: a greeting, the name, the branch to an order, a size, "back" to change it (a
``step_back``), a topping, a confirmation and goodbye, printing each exchange and a final line.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

CONVERSATION = ["hi", "Ada", "yes", "large", "back", "medium", "mushroom", "yes"]


class DemoBotClient:
    def __init__(self, base_url: str, user_id: str) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.user_id = user_id
        self.last_id = 0

    def _call(self, req: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("detail")
            raise SystemExit(f"{req.get_method()} {req.full_url}: {exc.code} {detail}") from None
        except urllib.error.URLError as exc:
            raise SystemExit(
                f"{req.full_url} does not answer ({exc.reason}): is the demo running?"
            ) from None

    def say(self, text: str) -> None:
        body = json.dumps({"user_id": self.user_id, "text": text}).encode()
        req = urllib.request.Request(
            self.base + "webhook/", data=body, headers={"Content-Type": "application/json"}
        )
        self._call(req)

    def replies(self) -> tuple[list[str], dict[str, Any] | None]:
        """The bot's messages since the last call, and the user's session now."""
        query = urlencode({"user_id": self.user_id, "after": self.last_id})
        data = self._call(urllib.request.Request(f"{self.base}outbox/?{query}"))
        if data["messages"]:
            self.last_id = data["messages"][-1]["id"]
        return [m["text"] for m in data["messages"] if m["from_bot"]], data["session"]


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    user_id = argv[2] if len(argv) > 2 else f"client-{int(time.time())}"
    client = DemoBotClient(argv[1], user_id)
    print(f"Chatting with the demo bot at {client.base} as {user_id}")
    client.replies()  # skip anything said before
    slugs = []
    session: dict[str, Any] | None = None
    for text in CONVERSATION:
        client.say(text)
        print(f"  > {text}")
        replies, session = client.replies()
        for reply in replies:
            print(f"  < {reply}")
        slug = session["slug"] if session else None
        slugs.append(slug)
        print(f"    [{slug}]")
    final = session["slug"] if session else None
    print(f"Done: {len(CONVERSATION)} messages, {len(set(slugs))} states visited, now at {final}")
    if final != "goodbye->say_bye":
        sys.exit(f"expected to end at goodbye->say_bye, not {final}")


if __name__ == "__main__":
    main(sys.argv)
