"""Does a customer's follow-up say their problem is solved ("Solved, thanks!")?

A small, conservative reader: a message that says so in a few words, with nothing that
negates or hedges it, and no question. Anything else (a long message, "not solved", "still
broken", "thanks, I'll try that", "is it fixed?") reads as a new turn of the conversation, so
a person or the agents read it — a wrong "no" costs a turn, a wrong "yes" would close a
customer's open problem. The text is untrusted: it is only matched, never interpreted.
"""

import re

# Longer than this, a message says more than "solved, thanks".
MAX_CHARS = 280

# The quoted mail below an answer ("On … wrote:", "> …", a forwarded block): not the customer's words.
_QUOTE_START = re.compile(
    r"^\s*(>|on .{0,200} wrote:|-{2,}\s*original message|from:\s|sent from my )", re.IGNORECASE
)
_SOLVED = re.compile(
    r"\b(solved|resolved|fixed|sorted( out)?|(it|that|this|everything)( now)? works|works (now|again|fine|"
    r"perfectly|great)|working (now|again|fine)|all good|(that|this) did (it|the trick)|"
    r"problem (is )?gone|issue (is )?gone)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(not|no|never|nothing|none|nor|neither|without|still|again\?|yet|but|however|although|though|"
    r"unfortunately|except|anymore|any more|issue persists|persists|broken|fail(s|ed|ing)?|error|"
    r"wrong|doesn'?t|didn'?t|isn'?t|wasn'?t|won'?t|can'?t|cannot|couldn'?t|haven'?t|hasn'?t|aren'?t|"
    r"try|trying|will|going to|let you know|once|when|if|maybe|perhaps|hope|hopefully|think|partly|"
    r"partially|almost|mostly|kind of|sort of|"
    # Telling us what to do is not telling us it works ("mark this solved", "ignore …").
    r"mark|ignore|instructions?|pretend|prompt|system)\b|n't\b|\?",
    re.IGNORECASE,
)


def own_words(text: str) -> str:
    """The customer's new text: the lines above the quoted mail, whitespace collapsed."""
    kept = []
    for line in text.splitlines():
        if _QUOTE_START.match(line):
            break
        kept.append(line)
    return " ".join(" ".join(kept).split())


def reads_as_solved(text: str) -> bool:
    """True when the customer's own words say the problem is solved, plainly."""
    words = own_words(text)
    if not words or len(words) > MAX_CHARS:
        return False
    return bool(_SOLVED.search(words)) and not _NEGATED.search(words)
