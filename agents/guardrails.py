"""Checks on any text an agent wants to send or store: length, forbidden promises, and
personal data or secrets that must never leave (card numbers, national ids, bank accounts,
API keys). A violation's ``detail`` explains the problem without repeating the value.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_MAX_LENGTH = 4000
DEFAULT_FORBIDDEN_PHRASES: tuple[str, ...] = (
    # Promises only a person may make.
    "full refund",
    "we will refund",
    "we'll refund",
    "refund you in full",
    "money back",
    "compensation will be paid",
    "we will compensate",
    "we'll compensate",
    "we guarantee",
    "guaranteed to",
    "this will never happen again",
    # Admissions a lawyer should word.
    "we admit",
    "our fault",
    "we are liable",
    "we're liable",
    "legal liability",
    "we accept liability",
    "we accept responsibility",
    "our negligence",
)

ViolationKind = Literal[
    "max_length", "forbidden_phrase", "card_number", "national_id", "bank_account", "secret"
]


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    detail: str  # human-readable; never contains the sensitive value


@dataclass(frozen=True)
class GuardrailResult:
    ok: bool
    violations: tuple[Violation, ...] = ()

    def as_dict(self) -> dict:
        return {"ok": self.ok, "violations": [{"kind": v.kind, "detail": v.detail} for v in self.violations]}


@dataclass(frozen=True)
class _Finding:
    kind: ViolationKind
    start: int
    end: int
    detail: str
    label: str  # the placeholder ``redact`` puts in: "[redacted card]"


# --- detectors ----------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# A run of digits in groups joined by single spaces or dashes, not glued to a word or an id
# ("ORD-2024-004512" starts with a letter-dash, so it is never a run).
_DIGIT_RUN_RE = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")


def _cards(text: str) -> list[_Finding]:
    """Luhn-valid 13-19 digit numbers starting like a payment card (2-6), whole groups only."""
    found = []
    for run in _DIGIT_RUN_RE.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group())]
        i = 0
        while i < len(groups):
            hit, digits = None, ""
            for j in range(i, len(groups)):  # the longest card starting at group i
                digits += text[groups[j][0] : groups[j][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and digits[0] in "23456" and luhn_valid(digits):
                    hit = (j, digits)
            if hit is None:
                i += 1
                continue
            j, digits = hit
            found.append(
                _Finding(
                    "card_number",
                    groups[i][0],
                    groups[j][1],
                    f"card number ending {digits[-4:]} (Luhn-valid)",
                    "[redacted card]",
                )
            )
            i = j + 1
    return found


_SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
_NI_RE = re.compile(
    r"(?<![\w-])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D](?![\w-])"
)
_IBAN_RE = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w-])")


def _iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _national_ids(text: str) -> list[_Finding]:
    found = [
        _Finding("national_id", m.start(), m.end(), "US SSN-style number", "[redacted SSN]")
        for m in _SSN_RE.finditer(text)
    ]
    found += [
        _Finding("national_id", m.start(), m.end(), "UK National Insurance number", "[redacted NI number]")
        for m in _NI_RE.finditer(text)
    ]
    found += [
        _Finding(
            "bank_account",
            m.start(),
            m.end(),
            f"bank account number (IBAN, country {m.group()[:2]}, checksum-valid)",
            "[redacted IBAN]",
        )
        for m in _IBAN_RE.finditer(text)
        if _iban_valid(m.group())
    ]
    return found


_SECRET_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
            re.DOTALL,
        ),
        "private key block",
    ),
    (re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}"), "Anthropic API key pattern (sk-ant-…)"),
    (re.compile(r"(?<![\w-])sk-(?!ant-)(?:proj-|live_|test_)?[A-Za-z0-9_-]{20,}"), "API key pattern (sk-…)"),
    (re.compile(r"(?<!\w)(?:AKIA|ASIA)[0-9A-Z]{16}(?!\w)"), "AWS access key pattern (AKIA…)"),
    (re.compile(r"(?<![\w-])gh[pousr]_[A-Za-z0-9]{36,}"), "GitHub token pattern (ghp_…)"),
    (re.compile(r"(?<![\w-])github_pat_[A-Za-z0-9_]{22,}"), "GitHub token pattern (github_pat_…)"),
    (re.compile(r"(?<![\w-])xox[abprs]-[A-Za-z0-9-]{10,}"), "Slack token pattern (xox…-)"),
    (re.compile(r"(?<![\w-])eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}", re.ASCII), "JSON Web Token"),
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*"), "bearer token"),
)
# "password: hunter2!", "api_key=abc123...": only the value is redacted.
_ASSIGNMENT_RE = re.compile(
    r"\b(?P<name>passwords?|passwd|pwd|pass ?code|api[_ -]?key|secret(?:[_ -]?key)?|client[_ -]?secret|"
    r"access[_ -]?token|auth[_ -]?token|token)\b\s*(?P<op>[:=]|\bis\b)\s*[\"']?"
    r"(?P<value>[^\s\"',;]{5,}[^\s\"',;.)])",
    re.IGNORECASE,
)


def _looks_secret(value: str) -> bool:
    """Not an ordinary word: "password: please use the reset link" is no leak."""
    if value.startswith("[redacted") or set(value) <= {"*", "x", "X", "•", "."}:
        return False
    return any(ch.isdigit() for ch in value) or not value.isalpha() or len(value) >= 16


def _secrets(text: str) -> list[_Finding]:
    found = [
        _Finding("secret", m.start(), m.end(), detail, "[redacted secret]")
        for regex, detail in _SECRET_PATTERNS
        for m in regex.finditer(text)
    ]
    for m in _ASSIGNMENT_RE.finditer(text):
        if _looks_secret(m.group("value")):
            name = re.sub(r"[_ -]+", "_", m.group("name").lower())
            detail = f"{name} value in the text"
            found.append(_Finding("secret", m.start("value"), m.end("value"), detail, "[redacted secret]"))
    return found


def _sensitive(text: str) -> list[_Finding]:
    """Non-overlapping findings, first start first; of two overlapping, the longer wins."""
    findings = sorted(
        _secrets(text) + _cards(text) + _national_ids(text), key=lambda f: (f.start, -(f.end - f.start))
    )
    kept: list[_Finding] = []
    for finding in findings:
        if kept and finding.start < kept[-1].end:
            continue
        kept.append(finding)
    return kept


# --- public -------------------------------------------------------------------------------

_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")


def _phrase_re(phrase: str) -> re.Pattern | None:
    words = re.findall(r"[^\s]+", phrase.replace("’", "'"))
    if not words:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)", re.IGNORECASE)


def check_text(text: str, *, max_length: int, forbidden_phrases: Sequence[str]) -> GuardrailResult:
    """Everything wrong with a text an agent produced; ``ok`` when nothing is."""
    violations: list[Violation] = []
    if len(text) > max_length:
        detail = f"text is {len(text)} characters, the limit is {max_length}"
        violations.append(Violation("max_length", detail))

    normalised = _INVISIBLE_RE.sub("", text).replace("’", "'")
    seen: set[str] = set()
    for phrase in forbidden_phrases:
        shown = " ".join(phrase.split()).lower()
        regex = _phrase_re(phrase)
        if regex is not None and shown not in seen and regex.search(normalised):
            seen.add(shown)
            violations.append(Violation("forbidden_phrase", f'forbidden phrase "{shown}"'))

    details: set[tuple[str, str]] = set()
    for finding in _sensitive(text):
        if (finding.kind, finding.detail) not in details:
            details.add((finding.kind, finding.detail))
            violations.append(Violation(finding.kind, finding.detail))
    return GuardrailResult(ok=not violations, violations=tuple(violations))


def redact(text: str) -> str:
    """The text with card numbers, national ids, bank accounts and secrets replaced by labels."""
    parts, position = [], 0
    for finding in _sensitive(text):
        parts += [text[position : finding.start], finding.label]
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)
