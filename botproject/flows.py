"""The demo bot's flow map: a greeting that asks the name, a branch to an order (with a way
back from the topping to the size) or to goodbye, and a re-engagement flow."""

from stealth_sessions.flows import FlowMap, State

flow_map = FlowMap()
flow_map.flow(
    "hello",
    [
        "say_hello",
        State("ask_name", fails_to="say_hello"),
        "get_name",
        State("say_hola", redirects_to="say_hello"),
    ],
)
flow_map.flow("order", ["ask_size", State("ask_topping", fails_to="ask_size"), "confirm"])
flow_map.flow("follow_up", ["nudge", "give_up"])
flow_map.flow("goodbye", ["say_bye"])

# The bot's @on_enter actions (a re-engagement step) register when the flow map is loaded,
# in the web process and in the RQ worker alike.
from . import bot  # noqa: E402, F401
