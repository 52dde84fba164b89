"""Forms of the session admin. Targets are choices from the flow map (a free slug field when
the project has none); the service validates them again when it writes."""

from __future__ import annotations

from typing import Any

from django import forms

from ..flows import FlowMap

METHODS = [
    ("update_session_to", "update_session_to: move only (the state's action does not run)"),
    ("step_to", "step_to: move and run the state's action"),
]


def target_field(flow_map: FlowMap | None, **kwargs: Any) -> forms.Field:
    if flow_map is None:
        return forms.CharField(max_length=200, help_text="A slug, flow->state.", **kwargs)
    choices = [
        (flow, [(f"{flow}->{state}", f"{flow}->{state}") for state in flow_map.states(flow)])
        for flow in flow_map.flows()
    ]
    return forms.ChoiceField(choices=choices, **kwargs)


class TargetForm(forms.Form):
    """A form whose ``target`` field offers the flow map's slugs (labelled ``target_label``)."""

    target_label = "Target"
    target = forms.Field()

    def __init__(self, *args: Any, flow_map: FlowMap | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"] = target_field(flow_map, label=self.target_label)


class MoveForm(TargetForm):
    """Move one user (the detail page), if still at ``version``."""

    target_label = "Move to"
    method = forms.ChoiceField(choices=METHODS, initial="update_session_to")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class BackToForm(TargetForm):
    """Set one user's back-to session, if still at ``version``."""

    target_label = "Back-to session"
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class MoveStateForm(TargetForm):
    """Move everyone at a state (the bulk action)."""

    target_label = "Move them to"
    run_action = forms.BooleanField(
        required=False,
        label="Run the target state's action for each user (step_to)",
        help_text="Leave unticked to move them only (update_session_to), as after a rename.",
    )
