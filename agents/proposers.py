"""The four agents: plain functions from a read-only ticket context to proposals.

An agent never writes a ticket. It returns a :class:`Proposal` with a raw confidence in
0..1; the autonomy controller calibrates it and decides whether it is applied or goes to a
person. A proposal nothing could make (no trained model, a text unlike anything seen)
comes out with confidence 0 and ``out_of_scope`` set: a person decides, never a guess.

Where the confidence of a label comes from, per provider:

- local model: the margin between the classifier's two best labels, 0 out of scope
  (agents.ml explains both);
- Claude: never a number the model typed. With a trained local model, the local model's
  probability for Claude's label (0 when it is not among the local model's top three);
  without one, the share of ``CSAI_LLM_SAMPLES`` independent samples that agree;
- rules (priority, strategy, escalation): how clearly the evidence falls into one bucket,
  shrunk by the confidence of the upstream decisions it rests on.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings

from agents import guardrails, llm
from agents.context import TicketContext
from agents.loaded import LoadedModel, active_model, knowledge_search
from agents.models import (
    NO_ESCALATION,
    AgentName,
    DecisionType,
    EscalationPath,
    KnowledgeArticle,
    Provider,
    Strategy,
    escalation_value,
)
from agents.tools import priority_score
from tickets.models import Category, Priority

logger = logging.getLogger(__name__)


# A knowledge-base article this similar answers the question by itself.
ARTICLE_RESOLVES = 0.35
# A template this similar fits the request; one written for the ticket's category gets a head start.
TEMPLATE_FITS = 0.2
CATEGORY_TEMPLATE_BONUS = 0.15
# Fewer words than this, and nothing to look up (no order, account, error code): ask.
TOO_LITTLE_TO_GO_ON = 12
REPLY_MAX_CHARS = 2000


@dataclass(frozen=True)
class Proposal:
    agent: str
    decision_type: str
    value: dict
    label: str
    confidence: float
    reasoning: str
    evidence: dict = field(default_factory=dict)
    provider: str = Provider.RULES
    model_version_id: int | None = None
    model_name: str = ""
    prompt_version: str = ""
    out_of_scope: bool = False
    guardrail_violations: tuple[dict, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


# --- classifier --------------------------------------------------------------------------


def _local_label(decision_type: str, ctx: TicketContext, model: LoadedModel) -> Proposal:
    prediction = model.classifier.predict(ctx.text)
    out_of_scope = prediction.out_of_scope
    alternatives = ", ".join(f"{label} {p:.2f}" for label, p in prediction.top[1:])
    reasoning = (
        f"Local model {model.name}: {prediction.label} with probability {prediction.probability:.2f}"
        f" (next: {alternatives or 'none'}); resemblance to its training data {prediction.scope:.2f}."
    )
    if out_of_scope:
        reasoning += " The text is unlike what the model learned from: a person should decide."
    return Proposal(
        agent=AgentName.CLASSIFIER,
        decision_type=decision_type,
        value={decision_type: prediction.label},
        label=prediction.label,
        confidence=prediction.confidence,
        reasoning=reasoning,
        evidence={"top": [list(pair) for pair in prediction.top], "scope": prediction.scope},
        provider=Provider.LOCAL,
        model_version_id=model.id,
        model_name=model.name,
        out_of_scope=out_of_scope,
    )


def _llm_label(
    decision_type: str, ctx: TicketContext, allowed: list[str], local: Proposal | None
) -> Proposal:
    """Claude's label; its confidence from the local model or from agreeing samples."""
    schema = {
        "type": "object",
        "properties": {
            decision_type: {"type": "string", "enum": allowed},
            "reasoning": {"type": "string", "maxLength": 600},
        },
        "required": [decision_type, "reasoning"],
        "additionalProperties": False,
    }
    instructions = (
        f"Choose the ticket's {decision_type} from the allowed values and explain briefly why, "
        "citing the ticket's own words."
    )
    samples = 1 if local is not None else max(1, settings.CSAI_LLM_SAMPLES)
    results = [
        llm.structured_call(
            task=f"classify-{decision_type}",
            instructions=instructions,
            schema=schema,
            ticket=ctx.llm_text(),
            context={"customer_tier": ctx.customer.tier, "entities": ctx.entities},
        )
        for _ in range(samples)
    ]
    votes = Counter(result.output[decision_type] for result in results)
    label, agreeing = votes.most_common(1)[0]
    if local is not None:
        confidence = dict(local.evidence["top"]).get(label, 0.0) * local.evidence["scope"]
        method = f"local model's probability for {label}"
    else:
        confidence = agreeing / samples
        method = f"{agreeing} of {samples} samples agree"
    first = next(r for r in results if r.output[decision_type] == label)
    return Proposal(
        agent=AgentName.CLASSIFIER,
        decision_type=decision_type,
        value={decision_type: label},
        label=label,
        confidence=0.0 if local is not None and local.out_of_scope else confidence,
        reasoning=f"Claude: {first.output['reasoning']} (confidence: {method}).",
        evidence={"votes": dict(votes), **({"local_top": local.evidence["top"]} if local else {})},
        provider=Provider.ANTHROPIC,
        model_version_id=local.model_version_id if local else None,
        model_name=first.model,
        prompt_version=first.prompt_version,
        out_of_scope=local.out_of_scope if local else False,
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cost_usd=sum((r.cost_usd for r in results), Decimal(0)),
    )


def _with_llm(
    decision_type: str, ctx: TicketContext, allowed: list[str], local: Proposal | None
) -> Proposal | None:
    """Ask Claude when a key is set; on any failure keep the local answer, noting why."""
    if not llm.llm_enabled():
        return local
    try:
        return _llm_label(decision_type, ctx, allowed, local)
    except llm.LLMError as error:
        logger.warning("LLM failed, local fallback", extra={"kind": error.kind, "ticket_id": ctx.ticket_id})
        if local is None:
            return None
        note = f" Claude was unavailable ({error.kind}); the local model decided."
        return replace(
            local, reasoning=local.reasoning + note, evidence={**local.evidence, "llm_error": error.kind}
        )


def _nobody(decision_type: str, why: str) -> Proposal:
    return Proposal(
        agent=AgentName.CLASSIFIER,
        decision_type=decision_type,
        value={decision_type: None},
        label="",
        confidence=0.0,
        reasoning=why,
        provider=Provider.NONE,
        out_of_scope=True,
    )


# On a follow-up, the classifier proposes category and priority again only when its category
# model gives the latest message another category with at least this probability.
TOPIC_CHANGE_PROBABILITY = 0.5


def topic_changed(ctx: TicketContext) -> bool:
    """Whether a follow-up moved to another topic: the category model, reading only the
    latest message, gives most of its probability to a category other than the ticket's.
    (Its probability, not the decision's confidence: a short conversational message rarely
    resembles a whole training ticket, so the scope check would silence it.) The first
    message of a ticket is a topic of its own."""
    if not ctx.is_follow_up:
        return True
    model = active_model(DecisionType.CATEGORY)
    if model is None or not ctx.category:
        return False
    label, probability = model.classifier.predict(ctx.text).top[0]
    return label != ctx.category and probability >= TOPIC_CHANGE_PROBABILITY


def classify_category(ctx: TicketContext) -> Proposal:
    model = active_model(DecisionType.CATEGORY)
    local = _local_label(DecisionType.CATEGORY, ctx, model) if model else None
    allowed = model.classifier.labels if model else list(Category.values)
    proposal = _with_llm(DecisionType.CATEGORY, ctx, allowed, local)
    return proposal or _nobody(DecisionType.CATEGORY, "No category model is trained yet: a person decides.")


PRIORITY_ORDER = [Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL]


def classify_priority(ctx: TicketContext) -> Proposal:
    """The weighted score decides; a trained priority model, when there is one, refines it.

    The score knows what a text model cannot (tier, VIP, live outages), so a model's lower
    priority never overrides an outage match. The confidence is the model's when both
    agree, shrunk when they disagree, and otherwise grows with the score's distance from
    the nearest cut-off.
    """
    customer = ctx.customer
    score = priority_score(
        text=ctx.text,
        tier=customer.tier,
        is_vip=customer.is_vip,
        has_entitlement=customer.has_support_entitlement,
        outage_matches=list(ctx.outages),  # OutageFacts have the title the reasons name
    )
    reasons = "; ".join(score.reasons) or "no urgency or impact signals"
    evidence = {
        "score": score.score,
        "reasons": list(score.reasons),
        "outages": [o.title for o in ctx.outages],
    }
    level = score.level
    confidence = min(0.9, 0.5 + score.margin / 4)
    provider, model_id, model_name = Provider.RULES, None, "priority-score"
    reasoning = f"Weighted score {score.score:.1f} → {score.level} ({reasons})."
    model = active_model(DecisionType.PRIORITY)
    if model is not None:
        prediction = model.classifier.predict(ctx.text)
        provider, model_id, model_name = Provider.LOCAL, model.id, model.name
        evidence["model"] = {"label": prediction.label, "confidence": prediction.confidence}
        if prediction.label in PRIORITY_ORDER and not (
            ctx.outages and _rank(prediction.label) < _rank(level)
        ):
            agree = prediction.label == level
            level = prediction.label
            confidence = prediction.confidence * (1.0 if agree else 0.7)
            reasoning += f" Local model {model.name}: {prediction.label} ({prediction.confidence:.2f})" + (
                ", agreeing." if agree else ", which wins over the score."
            )
    return Proposal(
        agent=AgentName.CLASSIFIER,
        decision_type=DecisionType.PRIORITY,
        value={"priority": level},
        label=level,
        confidence=round(confidence, 4),
        reasoning=reasoning,
        evidence=evidence,
        provider=provider,
        model_version_id=model_id,
        model_name=model_name,
    )


def _rank(priority: str) -> int:
    return PRIORITY_ORDER.index(priority)


# --- selector ----------------------------------------------------------------------------


def select_strategy(ctx: TicketContext, *, category: Proposal, priority: Proposal) -> Proposal:
    """How to answer: resolve with an article, use a template, escalate, or ask for more."""
    articles = knowledge_search(ctx.text, kind=KnowledgeArticle.Kind.ARTICLE)
    # A template written for the proposed category fits better than its wording alone says.
    templates = knowledge_search(
        ctx.text,
        kind=KnowledgeArticle.Kind.TEMPLATE,
        category=category.label,
        category_bonus=CATEGORY_TEMPLATE_BONUS,
    )
    best_article = articles[0] if articles else None
    best_template = templates[0] if templates else None
    has_refs = any(ctx.entities.get(kind) for kind in ("accounts", "orders", "invoices", "error_codes"))
    words = len(ctx.body.split())
    technical = category.label in (Category.TECHNICAL_ISSUE, Category.BUG_REPORT)

    if category.out_of_scope:
        strategy, strength, why = Strategy.ESCALATE_TO_HUMAN, 0.6, "the category is unclear"
    elif priority.label == Priority.CRITICAL or ctx.outages:
        strategy = Strategy.ESCALATE_TO_TECHNICAL if technical or ctx.outages else Strategy.ESCALATE_TO_HUMAN
        strength, why = 0.9, "critical priority or a live outage needs people now"
    elif technical and ctx.entities.get("error_codes") and priority.label == Priority.HIGH:
        strategy, strength, why = (
            Strategy.ESCALATE_TO_TECHNICAL,
            0.8,
            "a high-priority fault with error codes",
        )
    elif words < TOO_LITTLE_TO_GO_ON and not has_refs:
        strategy, strength, why = Strategy.REQUEST_MORE_INFO, 0.7, f"only {words} words and no reference"
    elif best_article and best_article[1] >= ARTICLE_RESOLVES:
        strategy = Strategy.AUTOMATED_RESOLUTION
        strength = min(0.95, 0.5 + best_article[1])
        why = f'article "{best_article[0].title}" answers it (similarity {best_article[1]:.2f})'
    elif best_template and best_template[1] >= TEMPLATE_FITS:
        strategy = Strategy.TEMPLATE_RESPONSE
        strength = min(0.9, 0.5 + best_template[1])
        why = f'template "{best_template[0].title}" fits (similarity {best_template[1]:.2f})'
    else:
        strategy, strength, why = Strategy.ESCALATE_TO_HUMAN, 0.55, "no article or template fits"

    kb_items = [item.id for item, _ in (articles[:1] + templates[:1])]
    upstream = min(category.confidence, priority.confidence) if not category.out_of_scope else 1.0
    return Proposal(
        agent=AgentName.SELECTOR,
        decision_type=DecisionType.STRATEGY,
        value={"strategy": strategy, "kb_items": kb_items},
        label=strategy,
        confidence=round(strength * (0.5 + 0.5 * upstream), 4),
        reasoning=f"{strategy}: {why} (category {category.label or 'unknown'}, priority {priority.label}).",
        evidence={
            "articles": [{"id": a.id, "title": a.title, "score": round(s, 3)} for a, s in articles],
            "templates": [{"id": t.id, "title": t.title, "score": round(s, 3)} for t, s in templates],
            "words": words,
        },
    )


# --- escalation --------------------------------------------------------------------------


def decide_escalation(
    ctx: TicketContext, *, category: Proposal, priority: Proposal, strategy: Proposal
) -> Proposal:
    """Whether to escalate, along which path, how far up and how urgently."""
    critical = priority.label == Priority.CRITICAL
    escalate = strategy.label in (Strategy.ESCALATE_TO_HUMAN, Strategy.ESCALATE_TO_TECHNICAL) or critical
    escalate = escalate or (ctx.customer.is_vip and priority.label == Priority.HIGH)
    if not escalate:
        value = escalation_value(path=NO_ESCALATION, level=0, urgency=priority.label)
        reasoning = f"No escalation: strategy {strategy.label} and priority {priority.label}."
        label = NO_ESCALATION
    else:
        if strategy.label == Strategy.ESCALATE_TO_TECHNICAL or category.label in (
            Category.TECHNICAL_ISSUE,
            Category.BUG_REPORT,
        ):
            path = EscalationPath.TECHNICAL
        elif category.label == Category.BILLING_INQUIRY:
            path = EscalationPath.BILLING
        else:
            path = EscalationPath.URGENT
        level = 1 if critical or ctx.customer.is_vip else 0
        value = escalation_value(path=path, level=level, urgency=priority.label)
        reasons = [f"strategy {strategy.label}", f"priority {priority.label}"]
        if ctx.customer.is_vip:
            reasons.append("VIP customer")
        if ctx.outages:
            reasons.append("live outage: " + ", ".join(o.title for o in ctx.outages))
        reasoning = f"Escalate to the {path} path ({value['to']}): " + "; ".join(reasons) + "."
        label = path
    return Proposal(
        agent=AgentName.ESCALATION,
        decision_type=DecisionType.ESCALATION,
        value=value,
        label=label,
        confidence=round(min(strategy.confidence, priority.confidence) * (0.95 if escalate else 0.9), 4),
        reasoning=reasoning,
        evidence={"vip": ctx.customer.is_vip, "outages": [o.title for o in ctx.outages]},
    )


# --- updates -----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(customer_name|ticket_ref|references)\}")


def _fill(template: str, ctx: TicketContext) -> str:
    """Fill the known placeholders only; anything else in braces stays as written."""
    refs = [v for kind in ("orders", "accounts", "invoices") for v in ctx.entities.get(kind, [])]
    values = {
        "customer_name": ctx.customer.name.split()[0] if ctx.customer.name else "there",
        "ticket_ref": f"#{ctx.ticket_id}",
        "references": ", ".join(refs) or f"#{ctx.ticket_id}",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _local_reply(ctx: TicketContext, strategy: Proposal, escalation: Proposal) -> tuple[str, float, str]:
    """(reply, confidence, how it was made) from templates and articles."""
    name = ctx.customer.name.split()[0] if ctx.customer.name else "there"
    kb = {
        item["id"]: item
        for item in strategy.evidence.get("articles", []) + strategy.evidence.get("templates", [])
    }
    chosen = [kb[pk] for pk in strategy.value.get("kb_items", []) if pk in kb]
    template = next((t for t in strategy.evidence.get("templates", []) if t in chosen), None)
    article = next((a for a in strategy.evidence.get("articles", []) if a in chosen), None)
    if strategy.label == Strategy.TEMPLATE_RESPONSE and template:
        body = KnowledgeArticle.objects.filter(pk=template["id"]).values_list("body", flat=True).first()
        if body:
            return _fill(body, ctx), min(0.9, 0.5 + template["score"]), f'template "{template["title"]}"'
    if strategy.label == Strategy.AUTOMATED_RESOLUTION and article:
        reply = (
            f'Hi {name},\n\nThanks for getting in touch. Our help article "{article["title"]}" '
            f"covers exactly this. If it doesn't solve it, reply here and we'll take it from there."
            f"\n\nReference: #{ctx.ticket_id}"
        )
        return reply, min(0.9, 0.5 + article["score"]), f'article "{article["title"]}"'
    if strategy.label == Strategy.REQUEST_MORE_INFO:
        reply = (
            f"Hi {name},\n\nThanks for reaching out. So we can look into this, could you tell us what you "
            "were trying to do, what happened instead, and any error message, order or account number "
            f"involved?\n\nReference: #{ctx.ticket_id}"
        )
        return reply, 0.6, "request for more information"
    if escalation.value.get("escalate"):
        reply = (
            f"Hi {name},\n\nThanks for your message. We have passed it to our {escalation.value['path']} "
            f"team, who will follow up with you shortly.\n\nReference: #{ctx.ticket_id}"
        )
        return reply, 0.6, "escalation acknowledgement"
    reply = (
        f"Hi {name},\n\nThanks for your message; we're looking into it and will get back to you soon."
        f"\n\nReference: #{ctx.ticket_id}"
    )
    return reply, 0.4, "generic acknowledgement"


def _internal_note(ctx: TicketContext) -> str:
    """What a person should know before answering: facts found, never the agents' decisions
    (each decision shows on its own, and in phase 1 stays hidden until a person answered it)."""
    lines = []
    found = {kind: values for kind, values in ctx.entities.items() if values}
    if found:
        lines.append("Entities: " + "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in found.items()))
    if ctx.outages:
        lines.append("Matches live outage(s): " + ", ".join(o.title for o in ctx.outages))
    if ctx.recent_tickets:
        lines.append(f"Customer's recent tickets: {', '.join(f'#{t.id}' for t in ctx.recent_tickets)}")
    return "\n".join(lines)


def draft_updates(
    ctx: TicketContext, *, category: Proposal, priority: Proposal, strategy: Proposal, escalation: Proposal
) -> Proposal:
    """The customer reply draft and the internal note, both through the guardrails."""
    note = _internal_note(ctx)
    reply, confidence, made_from = _local_reply(ctx, strategy, escalation)
    provider, model_name, prompt_version = Provider.RULES, "templates", ""
    tokens, cost = (0, 0), Decimal(0)
    llm_error = None
    if llm.llm_enabled():
        try:
            result = llm.structured_call(
                task="draft-reply",
                instructions=(
                    f"Draft the reply to the customer for the response strategy {strategy.label}. Be brief, "
                    "warm and concrete; never promise refunds, compensation or outcomes; never admit fault."
                ),
                schema={
                    "type": "object",
                    "properties": {"reply": {"type": "string", "maxLength": REPLY_MAX_CHARS}},
                    "required": ["reply"],
                    "additionalProperties": False,
                },
                ticket=ctx.llm_text(),
                context={"customer_first_name": ctx.customer.name.split()[0] if ctx.customer.name else ""},
            )
            reply, made_from = result.output["reply"], "Claude"
            provider, model_name, prompt_version = Provider.ANTHROPIC, result.model, result.prompt_version
            tokens, cost = (result.input_tokens, result.output_tokens), result.cost_usd
        except llm.LLMError as error:
            llm_error = error.kind
    violations = []
    for part, text in (("reply", reply), ("internal_note", note)):
        checked = guardrails.check_text(
            text,
            max_length=settings.CSAI_GUARDRAIL_MAX_LENGTH,
            forbidden_phrases=settings.CSAI_GUARDRAIL_FORBIDDEN_PHRASES
            or guardrails.DEFAULT_FORBIDDEN_PHRASES,
        )
        violations += [{"part": part, **v} for v in checked.as_dict()["violations"]]
    blocked = bool(violations)
    reasoning = f"Reply drafted from {made_from}."
    if llm_error:
        reasoning += f" Claude was unavailable ({llm_error}); drafted locally."
    if blocked:
        reasoning += " Blocked by guardrails: " + "; ".join(f"{v['part']}: {v['detail']}" for v in violations)
    return Proposal(
        agent=AgentName.UPDATES,
        decision_type=DecisionType.REPLY,
        value={"reply": reply, "internal_note": note, "blocked": blocked},
        label="blocked" if blocked else "draft",
        confidence=0.0 if blocked else round(confidence * (0.5 + 0.5 * strategy.confidence), 4),
        reasoning=reasoning,
        evidence={"made_from": made_from, **({"llm_error": llm_error} if llm_error else {})},
        provider=provider,
        model_name=model_name,
        prompt_version=prompt_version,
        guardrail_violations=tuple(violations),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=cost,
    )
