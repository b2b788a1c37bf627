"""What counts as a reason given: the one rule for every door that asks a person why (a revoke, a forced step).
A reason must have a visible character: whitespace, zero-width and other format or control characters alone
(U+200B, U+2060, U+FEFF, a Hangul filler, a braille blank) say nothing in the audit trail."""

import unicodedata

# Letters and symbols that render as nothing, although Unicode does not call them spaces or format characters.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _visible(character: str) -> bool:
    if character in _BLANK_LOOKING:
        return False
    category = unicodedata.category(character)
    # C*: control, format (zero-width), private use, unassigned; Z*: separators; M*: a mark alone marks nothing
    return category[0] not in "CZM"


def reason_text(value) -> str:
    """`value` without the invisible characters around it, or "" when it has no visible character at all."""
    text = value if isinstance(value, str) else ""
    visible = [index for index, character in enumerate(text) if _visible(character)]
    if not visible:
        return ""
    end = visible[-1] + 1
    while end < len(text) and unicodedata.category(text[end])[0] == "M":  # accents on the last letter stay
        end += 1
    return text[visible[0] : end]
