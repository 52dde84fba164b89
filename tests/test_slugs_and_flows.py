import pytest

from stealth_sessions.exceptions import InvalidSlug, InvalidStateTransition
from stealth_sessions.flows import FlowMap, State
from stealth_sessions.slugs import parse, slugify


def test_slugify_and_parse_round_trip():
    assert slugify("hello", "say_hola") == "hello->say_hola"
    assert parse("hello->say_hola") == ("hello", "say_hola")


@pytest.mark.parametrize(
    "slug", ["hello", "hello->", "->x", "a->b->c", "", "1a->b", "a->b c", "a-> b", "é->x", None, 3]
)
def test_parse_rejects_malformed_slugs(slug):
    with pytest.raises(InvalidSlug) as info:
        parse(slug)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("flow,state", [("", "x"), ("a b", "x"), ("x", "->"), ("x", None)])
def test_slugify_rejects_non_identifiers(flow, state):
    with pytest.raises(InvalidSlug):
        slugify(flow, state)


@pytest.fixture
def fm():
    fm = FlowMap()
    fm.flow(
        "hello",
        [
            "say_hello",
            State("ask_name", fails_to="say_hello", prompt="Your name?"),
            State("old_name", redirects_to="goodbye->say_bye"),
            "get_name",
        ],
    )
    fm.flow("goodbye", ["say_bye"])
    return fm


def test_flow_map_declares_ordered_states(fm):
    assert fm.flows() == ["hello", "goodbye"]
    assert fm.states("hello") == ["say_hello", "ask_name", "old_name", "get_name"]
    assert fm.initial_state("hello") == "say_hello"


def test_state_references_become_full_slugs_and_options_are_kept(fm):
    ask = fm.state("hello", "ask_name")
    assert ask.fails_to == "hello->say_hello"
    assert ask.redirects_to is None
    assert ask.opts == {"prompt": "Your name?"}
    assert fm.state("hello", "old_name").redirects_to == "goodbye->say_bye"


def test_validate_names_the_declared_states(fm):
    fm.validate("hello", "ask_name")
    with pytest.raises(InvalidStateTransition, match="Unknown state 'ask' for flow 'hello'; "):
        fm.validate("hello", "ask")
    with pytest.raises(InvalidStateTransition, match="Unknown flow 'nope'; declared: hello, good"):
        fm.validate("nope", "x")


def test_offset_moves_along_the_flow_clamped_at_both_ends(fm):
    assert fm.offset("hello->say_hello", 1) == "hello->ask_name"
    assert fm.offset("hello->ask_name", -1) == "hello->say_hello"
    assert fm.offset("hello->ask_name", 10) == "hello->get_name"
    assert fm.offset("hello->ask_name", -10) == "hello->say_hello"
    assert fm.offset("hello->ask_name", 0) == "hello->ask_name"


def test_resolve_follows_redirect_chains(fm):
    fm.flow("a", [State("one", redirects_to="two"), State("two", redirects_to="hello->old_name")])
    assert fm.resolve("a->one") == "goodbye->say_bye"
    assert fm.resolve("hello->say_hello") == "hello->say_hello"


def test_a_redirect_loop_is_rejected_when_declared(fm):
    with pytest.raises(InvalidStateTransition, match="Redirect loop"):
        fm.flow("loop", [State("a", redirects_to="b"), State("b", redirects_to="loop->a")])
    assert "loop" not in fm.flows()


def test_references_to_undeclared_states_are_reported(fm):
    fm.flow("x", [State("a", fails_to="nowhere->b")])
    assert fm.problems() == ["x->a fails_to 'nowhere->b', which is not declared"]


@pytest.mark.parametrize(
    "declare",
    [
        lambda fm: fm.flow("bad name", ["a"]),
        lambda fm: fm.flow("f", ["bad name"]),
        lambda fm: fm.flow("f", []),
        lambda fm: fm.flow("f", "a"),
        lambda fm: fm.flow("f", ["a", "a"]),
        lambda fm: fm.flow("hello", ["a"]),
        lambda fm: fm.flow("f", [State("a", fails_to="x->y->z")]),
    ],
)
def test_malformed_declarations_are_rejected(fm, declare):
    with pytest.raises(ValueError):
        declare(fm)
