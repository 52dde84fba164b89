"""The flow map the tests run against."""

from stealth_sessions.flows import FlowMap, State

flow_map = FlowMap()
flow_map.flow(
    "hello",
    [
        "say_hello",
        State("ask_name", fails_to="say_hello"),
        State("old_name", redirects_to="goodbye->say_bye"),
        "get_name",
    ],
)
flow_map.flow("goodbye", ["say_bye", State("renamed", redirects_to="old_bye"), "old_bye"])
flow_map.flow("follow_up", ["nudge", "wait"])
