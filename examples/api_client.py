"""An example bot driving its users' sessions over the HTTP API: plain Python, stdlib only.

    python examples/api_client.py http://127.0.0.1:8000/api/ <token> [user_id]

It plays one whole conversation of the demo's "hello" flow: greet, ask the name (with a
back-to session to return to), detour to an order flow, step back, schedule a follow-up and
cancel it, then reset. Writes send ``If-Match`` (the ETag read before) and an
``Idempotency-Key``, as a webhook handler that may be retried should.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import quote


class APIError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('detail')}")
        self.status = status
        self.code = body.get("code")


class SessionsClient:
    """A minimal client of stealth_sessions.api."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, dict(resp.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raise APIError(exc.code, json.loads(exc.read() or b"{}")) from None

    def session_path(self, user_id: str, action: str = "") -> str:
        return f"sessions/{quote(user_id, safe='')}/" + (f"{action}/" if action else "")

    def get(self, user_id: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.session_path(user_id))[2]
        except APIError as exc:
            if exc.code == "no_session":
                return None
            raise

    def post(
        self, user_id: str, action: str, body: dict[str, Any], version: int | None = None
    ) -> Any:
        """A write that is safe to retry: one Idempotency-Key per logical step."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        path = self.session_path(user_id, action)
        try:
            return self.request("POST", path, body, headers)[2]
        except (TimeoutError, urllib.error.URLError):
            return self.request("POST", path, body, headers)[2]  # same key: no double step

    def step_to(self, user_id: str, version: int | None = None, **target: str) -> dict[str, Any]:
        return self.post(user_id, "step_to", target, version)


def converse(client: SessionsClient, user_id: str) -> list[str]:
    """One whole conversation; returns the slugs the user went through."""
    seen: list[str] = []
    flows = {f["name"]: f for f in client.request("GET", "flows/")[2]["flows"]}
    assert "hello" in flows, "this example expects the demo's 'hello' flow"

    session = client.get(user_id) or client.step_to(user_id, version=0, flow="hello")
    seen.append(session["slug"])
    session = client.post(user_id, "back_to", {"slug": "hello->ask_name"}, session["version"])
    session = client.step_to(user_id, session["version"], state="ask_name")
    seen.append(session["slug"])
    try:  # someone else's stale write: the API refuses it
        client.step_to(user_id, session["version"] - 1, state="get_name")
    except APIError as exc:
        assert exc.status == 412, exc
    detour = next(name for name in flows if name != "hello")
    session = client.step_to(user_id, session["version"], flow=detour)
    seen.append(session["slug"])
    session = client.post(user_id, "step_back", {}, session["version"])
    seen.append(session["slug"])
    session = client.step_to(user_id, session["version"], state="get_name")
    seen.append(session["slug"])
    follow_up = client.post(user_id, "step_to_in", {"flow": detour, "delay": "PT1H"})
    # The bot's own actions may have scheduled steps too (the demo nudges users at ask_name).
    pending = client.request("GET", client.session_path(user_id, "scheduled"))[2]
    assert follow_up["step"]["id"] in [step["id"] for step in pending]
    client.request("DELETE", client.session_path(user_id, "scheduled"))
    client.request(
        "DELETE", client.session_path(user_id), headers={"If-Match": f'"{session["version"]}"'}
    )
    assert client.get(user_id) is None
    return seen


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit(__doc__)
    client = SessionsClient(argv[1], argv[2])
    for slug in converse(
        client, argv[3] if len(argv) > 3 else "+33 6 12 34 56 78".replace(" ", "")
    ):
        print(slug)


if __name__ == "__main__":
    main(sys.argv)
