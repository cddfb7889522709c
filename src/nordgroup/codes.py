"""How a written code is read: the one definition of the blanks, dots and marks a code may carry.

Pure text, no Arrow, so that the table loaders and the interactive table questions need nothing
heavier. The episode readers, the encoder, the explorer, the auditor and the simulator all clean
codes here; `NOISE_PATTERN` is the same rule as a regular expression for Arrow's string kernels.
"""

from __future__ import annotations

import re

from attrs import frozen

__all__ = [
    "NOISE_PATTERN",
    "ROLES",
    "CodeCleaning",
    "canonical_code",
    "clean_written_code",
    "drg_key",
    "split_written_diagnosis",
]

#: The roles a code plays in an episode.
ROLES = ("principal", "secondary", "procedure")
#: What two writings of one code may differ by: blanks, dots and the asterisk/dagger marks.
NOISE_PATTERN = r"[\s.*†+!]"
_NOISE = re.compile(NOISE_PATTERN)


def canonical_code(text: str) -> str:
    """`i21.0 ` → `I210`: no blanks, dots or asterisk/dagger marks, upper case."""
    return _NOISE.sub("", text).upper()


def drg_key(text: str) -> str:
    """A DRG code as it is compared everywhere (grouper output, weight lists, reported DRGs):
    upper case, no blanks, no leading zeros, so `014B`, ` 14b` and `14B` are one DRG ("" stays "")."""
    code = re.sub(r"\s+", "", text).upper()
    return code.lstrip("0") or ("0" if code else "")


@frozen
class CodeCleaning:
    """What cleaning one written code did, for the per-batch report."""

    cleaned: str
    changed: bool


def clean_written_code(text: str) -> CodeCleaning:
    """The canonical code, and whether the writing differed from it."""
    cleaned = canonical_code(text)
    return CodeCleaning(cleaned, cleaned != text)


def split_written_diagnosis(text: str) -> tuple[str, str, bool]:
    """One written diagnosis as (dagger or single code, asterisk code or "", changed).

    Marks decide the roles when present (`G63.2*E11.4†` is the pair E114/G632); without marks a
    pair is read dagger first, as the Norwegian episode strings write it.
    """
    parts = [part for part in re.split(r"\s+|(?<=[*†])", text.strip()) if part]
    if len(parts) <= 1:
        cleaned = clean_written_code(text)
        return cleaned.cleaned, "", cleaned.changed
    first, second = parts[0], parts[1]
    if first.endswith("*") or second.endswith("†"):
        first, second = second, first
    dagger, asterisk = canonical_code(first), canonical_code(second)
    changed = f"{dagger} {asterisk}" != text or len(parts) > 2
    return dagger, asterisk, changed
