"""Forms of the session admin. Targets are choices from the flow map (a free slug field when
the project has none); the service validates them again when it writes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ..flows import FlowMap

METHODS = [
    ("update_session_to", _("update_session_to: move only (the state's action does not run)")),
    ("step_to", _("step_to: move and run the state's action")),
]


def target_choices(flow_map: FlowMap) -> list[tuple[str, list[tuple[str, str]]]]:
    """The flow map's slugs by flow; a redirecting state says where a move to it lands."""
    choices = []
    for flow in flow_map.flows():
        options = []
        for name in flow_map.states(flow):
            slug, redirects_to = f"{flow}->{name}", flow_map.state(flow, name).redirects_to
            label = (
                _("%(slug)s (redirects to %(target)s)") % {"slug": slug, "target": redirects_to}
                if redirects_to
                else slug
            )
            options.append((slug, label))
        choices.append((flow, options))
    return choices


def target_field(flow_map: FlowMap | None, blank: bool = False, **kwargs: Any) -> forms.Field:
    if flow_map is None:
        return forms.CharField(max_length=200, help_text=_("A slug, flow->state."), **kwargs)
    choices: list[Any] = target_choices(flow_map)
    if blank:
        choices.insert(0, ("", "---------"))
    return forms.ChoiceField(choices=choices, **kwargs)


class TargetForm(forms.Form):
    """A form whose ``target`` field offers the flow map's slugs (labelled ``target_label``)."""

    target_label = _("Target")
    target = forms.Field()
    blank_target = False  # a "---------" choice first, selected when there is no initial value

    def __init__(self, *args: Any, flow_map: FlowMap | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"] = target_field(
            flow_map, blank=self.blank_target, label=self.target_label
        )


class MoveForm(TargetForm):
    """Move one user (the detail page), if still at ``version``."""

    target_label = _("Move to")
    method = forms.ChoiceField(label=_("Method"), choices=METHODS, initial="update_session_to")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class BackToForm(TargetForm):
    """Set one user's back-to session, if still at ``version``."""

    target_label = _("Back-to session")
    blank_target = True  # none set: nothing preselected
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class MoveStateForm(TargetForm):
    """Move everyone at a state (the bulk action)."""

    target_label = _("Move them to")
    run_action = forms.BooleanField(
        required=False,
        label=_("Run the target state's action for each user (step_to)"),
        help_text=_("Leave unticked to move them only (update_session_to), as after a rename."),
    )
