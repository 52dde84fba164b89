"""The demo bot's flow map."""

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
