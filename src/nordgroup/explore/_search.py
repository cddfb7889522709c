"""The reachability search: one code in one role, rule by rule in first-match order, with witnesses
and proofs.

One class over 500 lines, kept whole: its steps share the solver, the formula and the code's place,
and read best in the order they run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from pysat.solvers import Solver

from nordgroup.engine.reference import (
    Episode,
    derive_features,
    diagnosis_properties,
    first_failed_condition,
)
from nordgroup.explore._formula import (
    _COMPANION,
    _FIRST,
    _FIRST_PAIR,
    _FIRST_PROCEDURE,
    _HEAD,
    _LATER,
    _LATER_PROCEDURE,
    _PAIR_HEAD,
    _SECOND_HALF,
    TRUE,
    Token,
    _Cnf,
    _space,
)
from nordgroup.explore._shared import _ADULT_AGE_DAYS, _SEXES, _code_text, _principal_columns_hold
from nordgroup.explore.conditions import (
    Unreachable,
    _first_match,
    _nearest,
    _positive_tokens,
    _with_codes,
    _written_key,
    code_satisfies,
)
from nordgroup.tables.model import (
    NO_DAGGER,
    DiagnosisKey,
    DrgTables,
    Rule,
)

if TYPE_CHECKING:
    pass


# Gluecard 3: Glucose with native at-most-one constraints (no helper variables for "one principal
# diagnosis"), assumption cores, propagation and settable phases. Measured against MiniCard and
# Gluecard 4 on the 2017 tables: the fastest of the three (JAH00 as procedure 1.6 s, 2.3 s, 2.0 s).
_SOLVER = "gluecard3"


class _Search:
    """One question: the code placed in its role, then every rule decided in first-match order."""

    def __init__(self, tables: DrgTables, written: tuple[str, str], role: str) -> None:
        self.tables, self.written, self.role = tables, written, role
        self.text = _code_text(written)
        self.space = _space(tables)
        self.cnf = _Cnf(self.space.top)
        self.first = self.later = -TRUE  # the code stands first / later among diagnoses or procedures
        self.placed = self._place()

    def _parts(self) -> tuple[DiagnosisKey, DiagnosisKey | None]:
        """The written diagnosis as the model sees it: one key (a code or listed pair), or two codes."""
        dagger, asterisk = self.written
        if not asterisk:
            return (dagger, NO_DAGGER), None
        if (asterisk, dagger) in self.tables.diagnoses:
            return (asterisk, dagger), None
        known = [(code, NO_DAGGER) for code in (asterisk, dagger) if (code, NO_DAGGER) in self.tables.diagnoses]
        return known[0], (known[1] if len(known) > 1 else None)

    def _place(self) -> bool:
        """Clauses putting the code in its role; False when the code is unknown, so no rule involves it."""
        space, clauses, written = self.space, self.cnf.clauses, self.written
        if self.role == "principal":
            if written[1]:  # a written pair: exactly that pair
                if diagnosis_properties(self.tables, written) is None:
                    clauses.append([space.no_principal])  # an unknown principal diagnosis counts as none
                    return True
                head, companion = self._parts()
                clauses.append([space.heads[head]])
                clauses.append([space.companions[companion[0]]] if companion else [-space.any_companion])
                return True
            # A single code may also be written as either half of a pair with any other code: as the
            # asterisk (its own MDC, the other code a companion), as the dagger (the other code's MDC,
            # itself a companion), or in a listed pair of its own. Alone is the first with no companion.
            code = written[0]
            options = [space.heads[key] for key in self._listed_pairs()]
            if (code, NO_DAGGER) in self.tables.diagnoses:
                options += [space.heads[(code, NO_DAGGER)], space.companions[code]]
            else:
                options.append(space.no_principal)  # alone, an unknown principal diagnosis counts as none
            clauses.append([self.cnf.either(options)])
            return True
        if self.role == "secondary" and diagnosis_properties(self.tables, written) is None:
            return False
        if self.role == "procedure" and written[0] not in self.tables.procedures:
            return False
        self.first, self.later = self.cnf.new(), self.cnf.new()
        clauses.append([self.first, self.later])
        if self.role == "secondary":
            head, companion = self._parts()
            clauses.append([-self.first, space.firsts[head]])
            clauses.append([-self.first, space.second_halves[companion[0]] if companion else -space.any_second_half])
            clauses.append([-self.later, space.any_first])  # a later diagnosis needs a first one
            for key in (head, companion) if companion else (head,):
                clauses.extend([-self.later, var] for var in space.laters[key])
        else:
            clauses.append([-self.first, space.first_procedures[written[0]]])
            clauses.append([-self.later, space.any_first_procedure])
            clauses.extend([-self.later, var] for var in space.later_procedures[written[0]])
        return True

    def _listed_pairs(self) -> list[DiagnosisKey]:
        """The listed pairs (asterisk, dagger) the single written code is either half of."""
        code = self.written[0]
        return [key for key in self.space.heads if key[1] and code in key]

    def _satisfied(self, rule: Rule) -> int:
        """A literal for "the code itself meets one of the rule's conditions" (code_satisfies)."""
        if self.role == "principal":
            return TRUE
        if self.role == "procedure":
            procedure = self.tables.procedures[self.written[0]]
            probe = Episode(diagnoses=(("", ""),), procedures=(self.written[0],))
            if code_satisfies(rule, probe, self.text, self.role, self.tables):
                return TRUE
            return self.later if rule.secpro == "+" and 1 in procedure.or_values else -TRUE
        props = diagnosis_properties(self.tables, self.written)
        assert props is not None  # an unknown code is not placed (_place), so no rule is asked
        if any(value in props.dgprop for value in rule.dgprop):
            return TRUE
        options = [self.first] if any(value in props.sdgprop for value in rule.dgprop) else []
        if rule.compl:
            needed = int(rule.compl)
            for category in sorted(props.compl):
                if (2 if category[2:3] == "G" else 1) >= needed:
                    options.append(self.space.category_counts[category])
        return self._define(self.cnf.either(options))

    def _define(self, literal: int) -> int:
        """Hand the clauses defining new variables to the solver."""
        for clause in self.cnf.clauses:
            self.solver.add_clause(clause)
        self.cnf.clauses.clear()
        return literal

    def run(self, every_rule: bool) -> tuple[dict[str, Episode], dict[str, Unreachable], list[str]]:
        witnesses: dict[str, Episode] = {}
        unreachable: dict[str, Unreachable] = {}
        unconfirmed: list[str] = []
        if not self.placed:
            return witnesses, unreachable, unconfirmed
        space = self.space
        # Each earlier rule's failure is a clause behind a guard literal: a search assumes every
        # guard, so a refutation's core names the earlier rules it needs. (A second solver holding
        # the failures for good cost its set-up and was no faster.)
        self.solver = Solver(name=_SOLVER, bootstrap_with=space.clauses())
        for literals in space.at_most_ones:
            self.solver.add_atmost(literals, 1)
        # what placing the code alone decides (a principal's MDC, ...): refuted without a search;
        # asked before the placement joins the formula, as propagation reports only what follows
        # from assumptions
        units = [clause[0] for clause in self.cnf.clauses if len(clause) == 1]
        settled = {TRUE, *units, *self.solver.propagate(assumptions=units)[1]}
        self._define(TRUE)
        reached: set[str] = set()
        guards: list[tuple[int, Rule]] = []
        guard_literals: list[int] = []
        try:
            for rule, conditions in zip(self.tables.rules, space.conditions, strict=True):
                satisfied = self._satisfied(rule)
                broken = next((label for label, lit in conditions if -lit in settled), None)
                if satisfied == -TRUE or (rule.drg in reached and not every_rule):
                    pass  # not the code's rule, or its DRG is already reached: cannot change the answer
                elif broken is not None:
                    reason = f"{broken}: never with {self.text} as {self.role}"
                    unreachable[rule.id] = Unreachable(rule.id, reason, conditions=(broken,))
                elif (guessed := self._guess(rule, satisfied)) is not None:
                    witnesses[rule.id] = guessed
                    reached.add(rule.drg)
                else:
                    needed = [lit for _, lit in conditions if lit != TRUE] + ([satisfied] if satisfied != TRUE else [])
                    # small witnesses: the solver tries "no code of this class" first. Glucose's
                    # phase saving overwrites these after its first backtrack, so they are restated
                    # for every search: models then hold 3 codes instead of 25-55, and are quicker
                    # to turn into witnesses (I210 secondary 0.55 -> 0.45 s)
                    self.solver.set_phases(space.phases)
                    if self.solver.solve(assumptions=needed + guard_literals):
                        episode = self._witness(self.solver.get_model(), rule)
                        if episode is None:
                            unconfirmed.append(rule.id)
                        else:
                            witnesses[rule.id] = episode
                            reached.add(rule.drg)
                    else:
                        core = set(self.solver.get_core() or ())
                        proof = self._prove(rule, conditions, satisfied, guards, core)
                        if proof is None:
                            unconfirmed.append(rule.id)
                        else:
                            unreachable[rule.id] = proof
                if -TRUE in [lit for _, lit in conditions]:
                    continue  # a condition nothing meets: the rule never matches, nothing to exclude
                fails = [-lit for _, lit in conditions if lit != TRUE]
                guard = self.cnf.new()
                self._define(guard)
                self.solver.add_clause([-guard, *fails])
                guards.append((guard, rule))
                guard_literals.append(guard)
        finally:
            self.solver.delete()
        return witnesses, unreachable, unconfirmed

    # ---- refutations

    def _prove(
        self,
        rule: Rule,
        conditions: tuple[tuple[str, int], ...],
        satisfied: int,
        guards: list[tuple[int, Rule]],
        core: set[int],
    ) -> Unreachable | None:
        """Why the search (whose core is `core`) found no episode: the rule's own conditions, or
        the earlier rules it needs. None when the solver contradicts itself: a bug, reported as
        unconfirmed."""
        named = [(label, lit) for label, lit in conditions if lit != TRUE]
        if satisfied != TRUE:
            named.append((f"{self.text} meeting one of them", satisfied))
        own = [lit for _, lit in named]
        used: list[int] = []
        if self.solver.propagate(assumptions=own)[0]:  # the own conditions alone do not clash
            used = [guard for guard, _ in guards if guard in core]
        if not used:
            if self.solver.solve(assumptions=own):
                return None
            clashing = self._minimal([], self._core(own))
            labels = tuple(label for label, lit in named if lit in clashing)
            shown = ", ".join(label for label in labels if not label.startswith(self.text)) or "its conditions"
            return Unreachable(rule.id, f"{shown}: never with {self.text} as {self.role}", conditions=labels)
        # one earlier rule whose conditions the rule's own imply is found by propagation alone
        single = next((g for g in reversed(used) if not self.solver.propagate(assumptions=[*own, g])[0]), None)
        needed = set([single] if single else self._minimal(own, used))
        shadowing = [earlier for guard, earlier in guards if guard in needed]
        names = ", ".join(f"{r.id} (DRG {r.drg})" for r in shadowing)
        reason = f"shadowed by rule {names}" if len(shadowing) == 1 else f"shadowed by rules {names} together"
        return Unreachable(rule.id, reason, shadowed_by=tuple(r.id for r in shadowing))

    def _core(self, among: list[int]) -> list[int]:
        core = set(self.solver.get_core() or ())
        return [lit for lit in among if lit in core]

    def _minimal(self, fixed: list[int], candidates: list[int]) -> list[int]:
        """Drop literals from an unsatisfiable set of assumptions while it stays unsatisfiable."""
        needed = list(candidates)
        for lit in list(candidates):
            if len(needed) > 1 and lit in needed:
                trial = [other for other in needed if other != lit]
                if not self.solver.solve(assumptions=fixed + trial):
                    needed = [other for other in trial if other in set(self.solver.get_core() or trial)]
        return needed

    # ---- witnesses

    def _guess(self, rule: Rule, satisfied: int) -> Episode | None:
        """A witness built straight from the rule's columns, without a search; None when it fails.

        A usual stay (see `_build_space`) with the age, duration, sex and discharge the rule asks
        for, a principal diagnosis of its MDC with the fewest properties and the code in its role;
        then each condition still failing is met by adding the code with the fewest properties that
        meets it. Only the reference grouper's verdict counts, so a guess is never wrong, at worst
        missing: then the solver decides. On the 2017 tables 91-99 % of the reachable rules are
        witnessed so, at about an eighth of a search's cost (JAH00 as procedure 1.3 -> 0.35 s).
        """
        space, role = self.space, self.role
        age = _nearest(space.ages, _ADULT_AGE_DAYS, within=rule.agelim)
        duration = _nearest(space.durations, 3, within=rule.dur)
        sex = {"M": 1, "F": 2, "-": None}.get(rule.sex, 1)
        principal_items: list[int] = []
        if role == "principal":
            principal = self.written
            props = diagnosis_properties(self.tables, principal)
            if props is not None:
                head, companion = self._parts()
                principal_items = [space.heads[head]] + ([space.companions[companion[0]]] if companion else [])
            if not principal[1] and props is not None and not _principal_columns_hold(rule, props, sex):
                # the code as dagger of a head code meeting the rule's principal columns
                found = self._principal(rule, sex)
                if found is None:
                    return None
                var, sex = found
                if space.items[var][0] != _HEAD:
                    return None
                other = next(
                    (h for h, _ in space.items[var][1] if (h, principal[0]) not in self.tables.diagnoses), None
                )
                if other is None:
                    return None
                principal, principal_items = (principal[0], other), [var, space.companions[principal[0]]]
        elif rule.icd == "-":
            principal = ("", "")
        else:
            found = self._principal(rule, sex)
            if found is None:
                return None
            var, sex = found
            principal, principal_items = _written_key(space.items[var][1][0]), [var]
        excluded = {token[1] for var in principal_items for token in space.items[var][2] if token[0] == "excluded"}
        diagnoses, procedures = [principal], []
        if role == "secondary":
            diagnoses.append(self.written)
        elif role == "procedure":
            if satisfied == self.later:  # only as a later procedure (`secpro +`): some other first
                if (_FIRST_PROCEDURE, None) not in space.providers:
                    return None
                procedures.append(self._code(_FIRST_PROCEDURE, None))
            procedures.append(self.written[0])
        episode = Episode(
            diagnoses=tuple(diagnoses),
            procedures=tuple(procedures),
            sex=sex,
            age_days=age,
            duration_days=duration,
            discharge=rule.disch or "N",
        )
        # each round meets one more of the rule's conditions, or moves the episode out of an
        # earlier rule that takes it; or gives up
        earlier: list[Rule] = []
        for _ in range(len(rule.conditions()) + 4):
            features = derive_features(self.tables, episode)
            failed = first_failed_condition(rule, features, episode)
            if failed is not None:
                added = self._meeting(rule, failed, episode, excluded)
                if added is None:
                    return None
                episode = _with_codes(episode, [(*added, frozenset())])
                continue
            match = _first_match(self.tables, features, episode, rule.position)
            if match is rule:
                return episode if code_satisfies(rule, episode, self.text, role, self.tables) else None
            if match is None:
                return None
            earlier.append(match)
            moved = self._outside(earlier, rule, episode)
            if moved is None:
                return None
            episode = moved
        return None

    def _outside(self, earlier: list[Rule], rule: Rule, episode: Episode) -> Episode | None:
        """The episode with an age, duration or discharge that the last earlier rule to take it
        excludes, as do the limits of those it was moved out of before, and that the rule admits
        (the newborn rules take every usual adult stay of MDC 15 first): the value nearest the
        usual one, else unknown, which no limit admits; None when there is none."""
        space, last = self.space, earlier[-1]
        for limit, values, usual in (("agelim", space.ages, _ADULT_AGE_DAYS), ("dur", space.durations, 3)):
            if getattr(last, limit) is not None:
                theirs = [getattr(other, limit) for other in earlier if getattr(other, limit) is not None]
                nearest = _nearest(values, usual, within=getattr(rule, limit), outside=theirs)
                if nearest is not None or getattr(rule, limit) is None:
                    if limit == "agelim":
                        return attrs.evolve(episode, age_days=nearest)
                    return attrs.evolve(episode, duration_days=nearest)
        if last.disch and not rule.disch:
            return attrs.evolve(episode, discharge={"E": "N", "N": "E", "R": "N"}[last.disch])
        return None

    def _principal(self, rule: Rule, sex: int | None) -> tuple[int, int | None] | None:
        """The principal-diagnosis item with the fewest properties meeting the rule's principal
        columns (the sex included: MDC 98 codes become 12 or 13 with it), and that sex."""
        mdcs = [rule.mdc, "98" + rule.mdc[2:]] if rule.mdc[:2] in ("12", "13") else [rule.mdc]
        sexes = [sex] if rule.sex else _SEXES
        for mdc in mdcs:
            for var in self.space.principals_by_mdc.get(mdc, ()):
                props = diagnosis_properties(self.tables, _written_key(self.space.items[var][1][0]))
                for held in sexes:
                    if _principal_columns_hold(rule, props, held):
                        return var, held
        return None

    def _meeting(self, rule: Rule, failed: str, episode: Episode, excluded: set[str]) -> tuple[str, Any] | None:
        """A code meeting the rule's failed positive condition once added: ("diagnoses", written)
        or ("procedures", code); None for a condition no added code can make hold."""
        wanted: list[Token]
        if failed == "compl":
            wanted = [
                ("category", category)
                for category in self.space.category_counts
                if category[2:3] != "I"
                and category not in excluded
                and (2 if category[2:3] == "G" else 1) >= int(rule.compl)
            ]
        elif failed == "or_proc" and rule.or_proc in ("S", "P"):
            wanted = [("or", 1)]
        elif failed == "procpro":
            wanted = [("procpr", rule.procpro)]
        elif failed == "secpro" and rule.secpro == "+" and episode.procedures:
            wanted = [("secondary_or1",)]
        elif failed == "secpro" and rule.secpro[0] not in "+-":
            wanted = [("procedure_procpr", rule.secpro)]
        elif failed.startswith("dgprop") and not (value := rule.dgprop[int(failed[6:]) - 1]).startswith("-"):
            wanted = [("dgprop", value)]
        else:
            return None
        diagnosis_place = _FIRST if len(episode.diagnoses) == 1 else _LATER
        procedure_place = _FIRST_PROCEDURE if not episode.procedures else _LATER_PROCEDURE
        for token in wanted:
            places = [("diagnoses", diagnosis_place), ("procedures", procedure_place)]
            for kind, place in places[::-1] if token[0] in ("procpr", "or") else places:
                if (place, token) in self.space.providers:
                    return kind, self._code(place, token)
        return None

    def _code(self, place: int, token: Token | None) -> Any:
        """The code, as written in an episode, of the item with the fewest properties giving `token` in `place`."""
        member = self.space.items[self.space.providers[place, token]][1][0]
        return _written_key(member) if place in (_FIRST, _LATER) else member

    def _witness(self, model: list[int], rule: Rule) -> Episode | None:
        """The model as a concrete episode with few codes, checked with the reference grouper.

        The model's later codes are optional: start from those that give the rule's own positive
        conditions, and add one only when an earlier rule takes the episode and that code makes it
        fail (every feature grows with codes, so one code always can). When that does not settle it,
        take every code of the model and drop what the reference grouper does not need.
        """
        skeleton, optional = self._episode(model)
        wanted = set(_positive_tokens(rule))
        kept = []
        for item in optional:
            if item[2] & wanted or (rule.compl and any(t[0] in ("category", "procedure_cc") for t in item[2])):
                kept.append(item)
                wanted -= item[2]
        for _ in range(len(optional) + 1):
            episode = _with_codes(skeleton, kept)
            features = derive_features(self.tables, episode)
            match = _first_match(self.tables, features, episode, rule.position)
            if match is rule and code_satisfies(rule, episode, self.text, self.role, self.tables):
                return episode
            if match is None or match is rule:
                break
            extra = next(
                (item for item in optional if item not in kept and self._fails(match, skeleton, [*kept, item])), None
            )
            if extra is None:
                break
            kept.append(extra)
        episode = _with_codes(skeleton, optional)
        if not self._groups_on(episode, rule):
            return None
        for item in optional:
            shorter = _with_codes(skeleton, [other for other in optional if other is not item])
            if self._groups_on(shorter, rule):
                optional = [other for other in optional if other is not item]
                episode = shorter
        return episode

    def _fails(self, rule: Rule, skeleton: Episode, codes: list) -> bool:
        episode = _with_codes(skeleton, codes)
        return first_failed_condition(rule, derive_features(self.tables, episode), episode) is not None

    def _groups_on(self, episode: Episode, rule: Rule) -> bool:
        features = derive_features(self.tables, episode)
        return _first_match(self.tables, features, episode, rule.position) is rule and code_satisfies(
            rule, episode, self.text, self.role, self.tables
        )

    def _written_principal(self, placed: Mapping[int, list[tuple[Any, ...]]]) -> tuple[str, str]:
        """The principal as the model places the code: alone, in a listed pair or with a companion."""
        code, diagnoses = self.written[0], self.tables.diagnoses
        if self.written[1] or not (placed[_PAIR_HEAD] or placed[_COMPANION]):
            return self.written
        if placed[_PAIR_HEAD]:
            return _written_key(next(key for key in placed[_PAIR_HEAD][0] if code in key))
        heads, companions = placed[_HEAD][0], placed[_COMPANION][0]
        if (code, NO_DAGGER) in heads:  # the code as asterisk, a companion as dagger
            other = next((c for c in companions if (code, c) not in diagnoses), companions[0])
            return other, code
        other = next((h for h, _ in heads if (h, code) not in diagnoses), heads[0][0])
        return code, other  # the code as dagger, a head code as asterisk

    def _episode(self, model: list[int]) -> tuple[Episode, list[tuple[str, Any, frozenset[Token]]]]:
        """The model's codes: an episode of those in fixed places, and the later ones, each optional."""
        space, diagnoses, role = self.space, self.tables.diagnoses, self.role
        # a model lists every variable as +var or -var, in order
        chosen = list(filter((0).__lt__, model[space.item_vars.start - 1 : space.item_vars.stop - 1]))
        placed: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for var in chosen:
            placed[space.items[var][0]].append(space.items[var][1])

        def holds(var: int) -> bool:
            return var == TRUE or (var > 0 and model[var - 1] > 0)

        def pair(heads: tuple[DiagnosisKey, ...], others: list[tuple[Any, ...]]) -> tuple[str, str]:
            """A code written with a second one (dagger first), avoiding listed pairs' own properties."""
            if not others:
                return heads[0][0], ""
            found = next(((o, h[0]) for h in heads for o in others[0] if (h[0], o) not in diagnoses), None)
            return found or (others[0][0], heads[0][0])

        if role == "principal":
            principal = self._written_principal(placed)
        elif holds(space.no_principal):
            principal = ("", "")
        elif placed[_PAIR_HEAD]:
            principal = _written_key(placed[_PAIR_HEAD][0][0])
        else:
            principal = pair(placed[_HEAD][0], placed[_COMPANION])
        dx = [principal]
        if role == "secondary" and holds(self.first):
            dx.append(self.written)
        elif placed[_FIRST_PAIR]:
            dx.append(_written_key(placed[_FIRST_PAIR][0][0]))
        elif placed[_FIRST]:
            dx.append(pair(placed[_FIRST][0], placed[_SECOND_HALF]))
        px = []
        if role == "procedure" and holds(self.first):
            px.append(self.written[0])
        elif placed[_FIRST_PROCEDURE]:
            px.append(placed[_FIRST_PROCEDURE][0][0])
        own: set[int] = set()
        if role == "secondary" and holds(self.later):
            own = set(space.laters[self._parts()[0]])
        elif role == "procedure" and holds(self.later):
            own = set(space.later_procedures[self.written[0]])
        # The model's later codes add up to a set of contributions; a few of them add up to the same
        # set, so give the same features: keep only those.
        later = [var for var in chosen if space.items[var][0] in (_LATER, _LATER_PROCEDURE) and var not in own]
        optional_vars = set(later)
        covered = frozenset().union(*(space.items[var][2] for var in chosen if var not in optional_vars))
        wanted = frozenset().union(*(space.items[var][2] for var in later)) - covered
        optional = []
        for var in sorted(later, key=lambda var: -len(space.items[var][2] & wanted)):
            place, members, tokens = space.items[var]
            if not tokens & wanted:
                continue
            wanted -= tokens
            if place == _LATER:
                optional.append(("diagnoses", _written_key(members[0]), tokens))
            else:
                optional.append(("procedures", members[0], tokens))
        if role == "secondary" and holds(self.later):
            dx.append(self.written)
        if role == "procedure" and holds(self.later):
            px.append(self.written[0])
        skeleton = Episode(
            diagnoses=tuple(dx),
            procedures=tuple(px),
            sex=next(sex for var, sex in space.sexes if holds(var)),
            age_days=next(age for var, age in space.ages if holds(var)),
            duration_days=next(days for var, days in space.durations if holds(var)),
            discharge=next(value for var, value in space.discharges if holds(var)),
        )
        return skeleton, optional
