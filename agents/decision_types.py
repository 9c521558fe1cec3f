"""The decision-type registry: everything the product knows about a kind of decision, in one entry.

A decision type says which agent proposes it, in which pipeline step and after which other
types (whose proposals it reads), whether a follow-up turn proposes it again, what a person
may answer for it (its labels: fixed, and those of the active model) and how such a label
becomes the decision's value. The autonomy
app registers how a value is applied to a ticket (``applier_register``). The pipeline, the
controller, the console and the reports all read this registry; none of them matches on a
decision type's name.

A new type is one ``register`` call (and one ``applier_register``); see
tests/agents/test_decision_types.py, which adds one in the test itself.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

from agents import proposers
from agents.context import TicketContext
from agents.loaded import active_model
from agents.models import (
    NO_ESCALATION,
    AgentName,
    DecisionType,
    EscalationPath,
    Strategy,
    escalation_value,
)
from agents.proposers import Proposal
from tickets.models import Category, Priority

if TYPE_CHECKING:
    from tickets.models import Ticket


class Step(StrEnum):
    """The pipeline's steps in order (settings.CSAI_PIPELINE_LAST_STEP names where runs end)."""

    CLASSIFY = "classify"
    SELECT = "select"
    ESCALATE = "escalate"
    UPDATE = "update"


class ReplyAnswer(StrEnum):
    """A person's answer to a drafted text: send the draft, send an edited text, send nothing."""

    SENT = "draft"
    EDITED = "edited"
    NOT_SENT = "not_sent"


Propose = Callable[[TicketContext, dict[str, Proposal]], Proposal]


class Applier(Protocol):
    """Carries a decision's value out on its locked ticket; ``actor`` is the person whose
    answer it is, None for the AI on its own."""

    def __call__(self, *, ticket: "Ticket", value: dict, actor) -> None: ...


def _label_value(name: str) -> Callable[[dict, str, "Ticket"], dict]:
    """The usual value of a labelled decision: the agent's value with the label in its key."""
    return lambda value, label, ticket: {**value, name: label}


@dataclass(frozen=True)
class DecisionKind:
    name: str
    agent: str  # AgentName
    step: Step
    propose: Propose
    # Decision types whose proposals ``propose`` reads: an earlier step's, or earlier in its own.
    after: tuple[str, ...] = ()
    # What a person may answer, besides the labels of the active model (if the type has one).
    fixed_labels: tuple[str, ...] = ()
    # How a person's label (for a drafted text: their text) becomes the decision's value:
    # (agent's value, label, ticket) -> value.
    value_for: Callable[[dict, str, "Ticket"], dict] | None = None
    # A drafted text: a person sends it, edits it or sends nothing (ReplyAnswer), and an
    # edited text passes the guardrails before it is applied.
    drafts_text: bool = False
    # Its applied decisions reach the customer with no person in between (from phase 3): how
    # satisfied customers are with what the AI resolved is one of its promotion criteria
    # (autonomy.selectors.policy_readiness) and the quality monitor watches it.
    answers_to_customers: bool = False
    # Whether a follow-up turn proposes it again (None: every turn); when not, the later
    # agents read its standing decision from an earlier turn.
    on_follow_up: Callable[[TicketContext], bool] | None = None

    def proposed_on(self, ctx: TicketContext) -> bool:
        return not ctx.is_follow_up or self.on_follow_up is None or self.on_follow_up(ctx)

    def labels(self) -> list[str]:
        """What a person may answer for this type."""
        if self.drafts_text:
            return [answer.value for answer in ReplyAnswer]
        labels = list(self.fixed_labels)
        model = active_model(self.name)
        if model is not None:
            labels += [label for label in model.classifier.labels if label not in labels]
        return labels

    def value_with(self, value: dict, label: str, ticket: "Ticket") -> dict:
        """The decision's value with a person's label in place of the agent's."""
        return (self.value_for or _label_value(self.name))(value, label, ticket)

    @property
    def display(self) -> str:
        return self.name.replace("_", " ").capitalize()


_KINDS: dict[str, DecisionKind] = {}
_APPLIERS: dict[str, Applier] = {}


def register(kind: DecisionKind) -> DecisionKind:
    """Add a decision type; the types it reads must be registered before it, in its step or
    an earlier one."""
    steps = list(Step)
    for name in kind.after:
        earlier = _KINDS.get(name)
        if earlier is None or steps.index(earlier.step) > steps.index(kind.step):
            raise ImproperlyConfigured(f"{kind.name} reads {name}, which no earlier step proposes")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)
    _APPLIERS.pop(name, None)


def get(name: str) -> DecisionKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ImproperlyConfigured(f"no decision type {name!r} is registered") from None


def kinds() -> list[DecisionKind]:
    """Every registered type, in pipeline order."""
    steps = list(Step)
    return sorted(_KINDS.values(), key=lambda kind: steps.index(kind.step))


def names() -> list[str]:
    return [kind.name for kind in kinds()]


def position(name: str) -> int:
    """Where a type comes in pipeline order (unknown types last), to sort by."""
    order = names()
    return order.index(name) if name in order else len(order)


def choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.display) for kind in kinds()]


def of_step(step: Step) -> list[DecisionKind]:
    """The types a pipeline step proposes, each after those it reads."""
    return [kind for kind in _KINDS.values() if kind.step == step]


def applier_register(name: str, applier: Applier) -> None:
    """How a decision of type ``name`` is carried out on its ticket (the autonomy app's part)."""
    get(name)
    _APPLIERS[name] = applier


def applier(name: str) -> Applier:
    try:
        return _APPLIERS[name]
    except KeyError:
        raise ImproperlyConfigured(f"nothing applies {name!r} decisions: register an applier") from None


# --- the four agents' decision types ---------------------------------------------------------


def _escalation_value(value: dict, label: str, ticket: "Ticket") -> dict:
    # A person names the path; it goes to the path's first level, as urgent as the ticket.
    return escalation_value(path=label, level=0, urgency=ticket.priority)


register(
    DecisionKind(
        name=DecisionType.CATEGORY,
        agent=AgentName.CLASSIFIER,
        step=Step.CLASSIFY,
        propose=lambda ctx, earlier: proposers.classify_category(ctx),
        fixed_labels=tuple(Category.values),
        on_follow_up=proposers.topic_changed,
    )
)
register(
    DecisionKind(
        name=DecisionType.PRIORITY,
        agent=AgentName.CLASSIFIER,
        step=Step.CLASSIFY,
        propose=lambda ctx, earlier: proposers.classify_priority(ctx),
        fixed_labels=tuple(Priority.values),
        on_follow_up=proposers.topic_changed,
    )
)
register(
    DecisionKind(
        name=DecisionType.STRATEGY,
        agent=AgentName.SELECTOR,
        step=Step.SELECT,
        after=(DecisionType.CATEGORY, DecisionType.PRIORITY),
        propose=lambda ctx, earlier: proposers.select_strategy(
            ctx, category=earlier[DecisionType.CATEGORY], priority=earlier[DecisionType.PRIORITY]
        ),
        fixed_labels=tuple(Strategy.values),
    )
)
register(
    DecisionKind(
        name=DecisionType.ESCALATION,
        agent=AgentName.ESCALATION,
        step=Step.ESCALATE,
        after=(DecisionType.CATEGORY, DecisionType.PRIORITY, DecisionType.STRATEGY),
        propose=lambda ctx, earlier: proposers.decide_escalation(
            ctx,
            category=earlier[DecisionType.CATEGORY],
            priority=earlier[DecisionType.PRIORITY],
            strategy=earlier[DecisionType.STRATEGY],
        ),
        fixed_labels=(NO_ESCALATION, *EscalationPath.values),
        value_for=_escalation_value,
    )
)
register(
    DecisionKind(
        name=DecisionType.REPLY,
        agent=AgentName.UPDATES,
        step=Step.UPDATE,
        after=(DecisionType.CATEGORY, DecisionType.PRIORITY, DecisionType.STRATEGY, DecisionType.ESCALATION),
        propose=lambda ctx, earlier: proposers.draft_updates(
            ctx,
            category=earlier[DecisionType.CATEGORY],
            priority=earlier[DecisionType.PRIORITY],
            strategy=earlier[DecisionType.STRATEGY],
            escalation=earlier[DecisionType.ESCALATION],
        ),
        value_for=lambda value, text, ticket: {**value, "reply": text},
        drafts_text=True,
        answers_to_customers=True,
    )
)
