"""Explaining one grouping result: which features the codes gave, which rule matched, and why not others.

`explain_episode` is built only from the reference grouper's own functions (`derive_features`,
`first_failed_condition`, `group_episode`), so an explanation can never disagree with the
specification; the property tests check that it also agrees with the compiled `Grouper`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from attrs import frozen

from nordgroup.codes import clean_written_code, split_written_diagnosis
from nordgroup.engine.reference import (
    ComplicationCheck,
    Episode,
    Features,
    diagnosis_properties,
    first_failed_condition,
    group_episode,
)
from nordgroup.tables.model import DrgTables, ReturnCodeMeaning, Rule

__all__ = ["Explanation", "FeatureSource", "RuleCheck", "episode_from_row", "explain_episode"]

_PRINCIPAL_COLUMNS = ("icd", "mdc", "dgcat", "pdgprop")


@frozen
class FeatureSource:
    """One derived feature value (`dgprop 15X23`, `or 1`, `procpr 99V21`, `cc 1`) and its codes."""

    kind: str
    value: str
    codes: tuple[str, ...]


@frozen
class RuleCheck:
    """A rule above the matching one, and the first of its columns that did not hold."""

    position: int
    rule_id: str
    drg: str
    rtc: str
    failed_column: str
    required: str  # what the failed column asked for

    def __str__(self) -> str:
        return f"{self.rule_id:<12} -> {self.drg:<5} rtc {self.rtc}: {self.failed_column} {self.required} failed"


@frozen
class Explanation:
    """Everything that decided one episode's DRG, readable (`str`) and JSON-able (`to_dict`)."""

    episode: Episode
    drg: str | None
    rtc: str
    rtc_meaning: ReturnCodeMeaning  # says whether the release's rtc table or nordgroup's default gives it
    rule_id: str | None
    rule_position: int | None
    rule_conditions: Mapping[str, str]
    drg_mdc: str | None
    drg_name: str
    weight: float | None
    principal: str | None  # the principal diagnosis as written (pair as `dagger†asterisk*`)
    principal_known: bool
    principal_mdc: str
    dgcat: str
    pdgprop: tuple[str, ...]
    features: tuple[FeatureSource, ...]  # DGPROP/SDGPRO, OR, PROCPR and CC values with their codes
    cc_level: int
    cc_sources: tuple[str, ...]  # the secondary diagnoses or procedures that gave the CC level
    complications: tuple[ComplicationCheck, ...]
    rules_above: tuple[RuleCheck, ...]  # same-MDC, pre-MDC and validation rules that did not hold
    unknown_codes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with plain lists and strings, for other tools."""
        return {
            "episode": {
                "diagnoses": [list(pair) for pair in self.episode.diagnoses],
                "procedures": list(self.episode.procedures),
                "sex": self.episode.sex,
                "age_days": self.episode.age_days,
                "duration_days": self.episode.duration_days,
                "discharge": self.episode.discharge,
            },
            "drg": self.drg,
            "rtc": self.rtc,
            "rtc_meaning": self.rtc_meaning.text,
            "rtc_meaning_source": self.rtc_meaning.source,
            "rule": self.rule_id,
            "rule_position": self.rule_position,
            "rule_conditions": dict(self.rule_conditions),
            "drg_mdc": self.drg_mdc,
            "drg_name": self.drg_name,
            "weight": self.weight,
            "principal": self.principal,
            "principal_known": self.principal_known,
            "principal_mdc": self.principal_mdc,
            "dgcat": self.dgcat,
            "pdgprop": list(self.pdgprop),
            "features": [{"kind": f.kind, "value": f.value, "codes": list(f.codes)} for f in self.features],
            "cc_level": self.cc_level,
            "cc_sources": list(self.cc_sources),
            "complications": [
                {"diagnosis": _label(c.diagnosis), "category": c.category, "level": c.level, "reason": c.reason}
                for c in self.complications
            ],
            "rules_above": [
                {
                    "position": c.position,
                    "rule": c.rule_id,
                    "drg": c.drg,
                    "rtc": c.rtc,
                    "failed_column": c.failed_column,
                    "required": c.required,
                }
                for c in self.rules_above
            ],
            "unknown_codes": list(self.unknown_codes),
        }

    def __str__(self) -> str:
        lines = []
        weight = f", weight {self.weight:g}" if self.weight is not None else ""
        name = f" {self.drg_name}" if self.drg_name else ""
        if self.drg is None:
            lines.append(f"No rule matched: ungroupable (rtc {self.rtc}: {self.rtc_meaning})")
        else:
            lines.append(
                f"DRG {self.drg}{name} (MDC {self.drg_mdc or '?'}{weight}), rtc {self.rtc}: {self.rtc_meaning}"
            )
        if self.rule_id is not None:
            columns = "  ".join(f"{k}={v}" for k, v in self.rule_conditions.items())
            lines.append(f"  rule {self.rule_id} (position {self.rule_position}): {columns}")
        lines.append("Principal diagnosis")
        if self.principal is None:
            lines.append("  none")
        else:
            known = "" if self.principal_known else "  (not in the tables)"
            pdgprop = ", ".join(self.pdgprop) or "-"
            lines.append(
                f"  {self.principal}: MDC {self.principal_mdc or '-'}, DGCAT {self.dgcat or '-'}, "
                f"PDGPROP {pdgprop}{known}"
            )
        for heading, kind in (("DGPROP/SDGPRO", "dgprop"), ("OR", "or"), ("PROCPR", "procpr")):
            found = [f for f in self.features if f.kind == kind]
            lines.append(f"{heading}" + ("" if found else ": none"))
            lines.extend(f"  {f.value:<8} from {', '.join(f.codes)}" for f in found)
        source = f" from {', '.join(self.cc_sources)}" if self.cc_sources else ""
        lines.append(f"CC level {self.cc_level}{source}")
        for check in self.complications:
            lines.append(f"  {_label(check.diagnosis):<14} {check.category}: {check.reason} (level {check.level})")
        if self.rules_above:
            lines.append("Rules above that a person would ask about (same MDC, pre-MDC, validation)")
            lines.extend(f"  {line}" for line in _runs_by_drg(self.rules_above))
        if self.unknown_codes:
            lines.append(f"Not in the tables: {', '.join(self.unknown_codes)}")
        return "\n".join(lines)


def _runs_by_drg(checks: tuple[RuleCheck, ...]) -> list[str]:
    """One line per run of consecutive rules leading to the same DRG: runs of 40 are common."""
    runs: list[list[RuleCheck]] = []
    for check in checks:
        if runs and runs[-1][-1].drg == check.drg and runs[-1][-1].rtc == check.rtc:
            runs[-1].append(check)
        else:
            runs.append([check])
    lines = []
    for run in runs:
        if len(run) == 1:
            lines.append(str(run[0]))
            continue
        failures = Counter(f"{c.failed_column} {c.required}" for c in run)
        why = ", ".join(f"{text} x{n}" if n > 1 else text for text, n in failures.items())
        ids = f"{run[0].rule_id}..{run[-1].rule_id} ({len(run)} rules)"
        lines.append(f"{ids} -> {run[0].drg} rtc {run[0].rtc}: failed {why}")
    return lines


def episode_from_row(row: Mapping[str, Any]) -> Episode:
    """A canonical episode row (dict of the `nordgroup.episodes` columns) as the reference reads it.

    The cleaning is the one the compiled grouper applies, so both see the same codes.
    """
    written = [split_written_diagnosis(text or "")[:2] for text in row.get("diagnoses") or []]
    procedures = (clean_written_code(text or "").cleaned for text in row.get("procedures") or [])
    discharge = row.get("discharge")
    if isinstance(discharge, str):
        discharge = discharge.strip().upper() or None
        discharge = "N" if discharge == "H" else discharge
    return Episode(
        diagnoses=tuple(written),
        procedures=tuple(code for code in procedures if code),
        sex=row.get("sex"),
        age_days=row.get("age_days"),
        duration_days=row.get("duration_days"),
        discharge=discharge,
    )


def explain_episode(
    tables: DrgTables,
    episode: Episode | Mapping[str, Any] | pa.Table,
    *,
    weights: Mapping[str, float] | None = None,
) -> Explanation:
    """Explain how `tables` group one episode: a reference `Episode`, a canonical row dict, or a
    one-row canonical Arrow table (from `nordgroup.episodes`)."""
    episode = _as_episode(episode)
    result = group_episode(tables, episode)
    features = result.features
    rule = result.rule
    principal = episode.diagnoses[0] if features.has_principal else None
    drg_info = tables.drgs.get(result.drg) if result.drg is not None else None
    return Explanation(
        episode=episode,
        drg=result.drg,
        rtc=result.rtc,
        rtc_meaning=tables.return_code_meaning(result.rtc),
        rule_id=rule.id if rule else None,
        rule_position=rule.position if rule else None,
        rule_conditions=rule.conditions() if rule else {},
        drg_mdc=drg_info.mdc if drg_info else None,
        drg_name=drg_info.name if drg_info else "",
        weight=weights.get(result.drg) if weights is not None and result.drg is not None else None,
        principal=_label(principal) if principal else None,
        principal_known=features.principal_known,
        principal_mdc=features.mdc,
        dgcat=features.dgcat,
        pdgprop=tuple(sorted(features.pdgprop)),
        features=_feature_sources(features),
        cc_level=features.cc_level,
        cc_sources=_cc_sources(features),
        complications=features.complications,
        rules_above=_rules_above(tables, rule, features, episode, drg_info.mdc if drg_info else None),
        unknown_codes=_unknown_codes(tables, episode),
    )


def _as_episode(episode: Episode | Mapping[str, Any] | pa.Table) -> Episode:
    if isinstance(episode, Episode):
        return episode
    if isinstance(episode, pa.Table | pa.RecordBatch):
        if episode.num_rows != 1:
            raise ValueError(f"explain one episode at a time: the table has {episode.num_rows} rows")
        return episode_from_row(episode.to_pylist()[0])
    return episode_from_row(episode)


def _feature_sources(features: Features) -> tuple[FeatureSource, ...]:
    order = {"dgprop": 0, "or": 1, "procpr": 2, "cc": 3}
    found = []
    for key, codes in features.sources.items():
        kind, value = key.split(" ", 1)
        found.append(FeatureSource(kind, value, tuple(dict.fromkeys(codes))))
    return tuple(sorted(found, key=lambda f: (order.get(f.kind, 9), f.value)))


def _cc_sources(features: Features) -> tuple[str, ...]:
    """The codes whose own level equals the episode's CC level: those that produced it."""
    if features.cc_level == 0:
        return ()
    diagnoses = [_label(c.diagnosis) for c in features.complications if c.level == features.cc_level]
    procedures = [code for level in range(features.cc_level, 3) for code in features.sources.get(f"cc {level}", ())]
    return tuple(dict.fromkeys(diagnoses + procedures))


def _rules_above(
    tables: DrgTables, matched: Rule | None, features: Features, episode: Episode, drg_mdc: str | None
) -> tuple[RuleCheck, ...]:
    """The rules above the match a person would ask about, with the first column that failed.

    Those are the rules of the episode's MDC (the principal's or the DRG's), and the pre-MDC and
    validation rules whose principal-diagnosis columns held: hundreds of pre-MDC rules fail on
    their principal columns alone, and listing them would hide the few that nearly matched.
    """
    end = matched.position if matched else len(tables.rules)
    own_mdc = {mdc for mdc in (features.mdc, drg_mdc) if mdc}
    checks = []
    for rule in tables.rules[:end]:
        if rule.mdc and rule.mdc not in own_mdc and rule.rtc == "0":
            continue
        failed = first_failed_condition(rule, features, episode)
        if failed is None:
            raise AssertionError(f"rule {rule.id} above the first match holds: the reference grouper changed")
        if rule.mdc not in own_mdc and failed in _PRINCIPAL_COLUMNS:
            continue
        checks.append(RuleCheck(rule.position, rule.id, rule.drg, rule.rtc, failed, rule.conditions().get(failed, "")))
    return tuple(checks)


def _unknown_codes(tables: DrgTables, episode: Episode) -> tuple[str, ...]:
    unknown = [_label(d) for d in episode.diagnoses if any(d) and diagnosis_properties(tables, d) is None]
    unknown += [code for code in episode.procedures if code not in tables.procedures]
    return tuple(unknown)


def _label(written: tuple[str, str]) -> str:
    return f"{written[0]}†{written[1]}*" if written[1] else written[0]
