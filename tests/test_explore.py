"""`drgs_for_code` is exact (witnesses reach every DRG, proofs hold); code_info, drg_contents and diff_tables."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nordgroup.engine.reference import Episode, diagnosis_properties, group_episode, recode_sex
from nordgroup.episodes.layouts import episodes_from_records
from nordgroup.explore import _search
from nordgroup.explore.conditions import Unreachable, code_satisfies
from nordgroup.explore.contents import drg_contents
from nordgroup.explore.diff import diff_tables
from nordgroup.explore.properties import code_info
from nordgroup.explore.reachability import drgs_for_code
from tests.conftest import DEMO_TABLES

YEAR = 2017
# codes chosen to cover a principal with many DRGs, a CC-giving secondary and an OR=2 procedure
CASES = [
    ("I210", "principal"),
    ("J189", "principal"),
    ("E119", "secondary"),
    ("I210", "secondary"),
    ("FNG02", "procedure"),
    ("A302", "principal"),  # a dagger code of listed pairs (A302+M0130 groups to DRG 244)
]


@pytest.fixture(scope="module")
def tables_2017(nor_tables):
    return nor_tables(YEAR)


def _record(episode) -> dict:
    return {
        "episode_id": "1",
        "diagnoses": [f"{d} {a}".strip() for d, a in episode.diagnoses],
        "procedures": list(episode.procedures),
        "sex": episode.sex,
        "age_days": episode.age_days,
        "duration_days": episode.duration_days,
        "discharge": episode.discharge,
    }


@pytest.mark.parametrize(("code", "role"), CASES)
def test_examples_reach_every_drg(tables_2017, nor_grouper, code, role):
    answer = drgs_for_code(tables_2017, code, role)
    assert answer.drgs
    drgs = list(answer.drgs)
    records = [_record(answer.examples[d]) for d in drgs]
    result = nor_grouper(YEAR).group(episodes_from_records(records)).column("drg").to_pylist()
    assert result == drgs
    for drg in drgs:
        rule = next(r for r in tables_2017.rules if r.id == answer.rules[drg])
        assert code_satisfies(rule, answer.examples[drg], code, role, tables_2017)


@pytest.mark.parametrize(("code", "role"), CASES)
def test_no_drg_outside_the_answer(tables_2017, code, role):
    answer = drgs_for_code(tables_2017, code, role)
    allowed = set(answer.drgs)
    diagnoses = sorted(c for c, dagger in tables_2017.diagnoses if not dagger)
    procedures = sorted(tables_2017.procedures)
    # companions of the code in listed pairs, and any other code: a principal written as a pair
    # with either, the code as either half, is still the code as principal
    listed = sorted({c for key in tables_2017.diagnoses if key[1] and code in key for c in key if c != code})
    companions = st.sampled_from(listed) | st.sampled_from(diagnoses) if listed else st.sampled_from(diagnoses)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        principal=st.sampled_from(diagnoses),
        secondaries=st.lists(st.sampled_from(diagnoses), max_size=4),
        others=st.lists(st.sampled_from(procedures), max_size=3),
        where=st.integers(0, 4),
        companion=companions,
        half=st.sampled_from(["alone", "dagger", "asterisk"]),
        sex=st.sampled_from([1, 2, None]),
        age=st.one_of(st.integers(0, 40_000), st.sampled_from([0, 7, 28, 29, 365, 6574, 45654, 45655])),
        duration=st.integers(0, 30),
        discharge=st.sampled_from(["E", "N", "R", None]),
    )
    def check(principal, secondaries, others, where, companion, half, sex, age, duration, discharge):
        dx = [(principal, "")] + [(c, "") for c in secondaries]
        px = list(others)
        if role == "principal":
            dx[0] = {"alone": (code, ""), "dagger": (code, companion), "asterisk": (companion, code)}[half]
        elif role == "secondary":
            dx.insert(1 + where % len(dx), (code, ""))
        else:
            px.insert(where % (len(px) + 1), code)
        episode = Episode(tuple(dx), tuple(px), sex, age, duration, discharge)
        result = group_episode(tables_2017, episode)
        if result.rule is not None and code_satisfies(result.rule, episode, code, role, tables_2017):
            assert result.drg in allowed, (episode, result.rule)

    check()


# codes whose answers had many unconfirmed rules before the search became a decision procedure
DECIDED = [
    ("I210", "principal"),
    ("S7200", "principal"),
    ("Z380", "principal"),
    ("J189", "principal"),
    ("E119", "secondary"),
    ("I210", "secondary"),
    ("JAH00", "procedure"),
    ("FNG02", "procedure"),
]


@pytest.fixture(scope="module")
def answers(tables_2017):
    return {(code, role): drgs_for_code(tables_2017, code, role) for code, role in DECIDED}


def _involves(tables, rule, code: str, role: str) -> bool:
    """Whether the code could meet one of the rule's conditions in its role (code_satisfies, from the tables)."""
    if role == "principal":
        return True
    if role == "secondary":
        props = tables.diagnoses[(code, "")]
        needed = int(rule.compl) if rule.compl else 3
        return bool(set(rule.dgprop) & (props.dgprop | props.sdgprop)) or any(
            (2 if category[2] == "G" else 1) >= needed for category in props.compl
        )
    props = tables.procedures[code]
    return (
        (rule.or_proc == "S" and 1 in props.or_values)
        or (rule.or_proc == "P" and bool(props.or_values & {1, 2}))
        or rule.procpro in props.procpr
        or rule.secpro in props.procpr
        or (rule.secpro == "+" and 1 in props.or_values)
        or bool(set(rule.dgprop) & props.dgprop)
    )


@pytest.mark.parametrize(("code", "role"), DECIDED)
def test_every_rule_is_decided(tables_2017, answers, code, role):
    answer = answers[code, role]
    by_id = {rule.id: rule for rule in tables_2017.rules}
    assert answer.unconfirmed == ()
    assert set(answer.rules.values()) == set(answer.witnesses)
    assert not set(answer.witnesses) & set(answer.unreachable)
    for rule_id, episode in answer.witnesses.items():
        result = group_episode(tables_2017, episode)
        assert result.rule is by_id[rule_id], (rule_id, episode)
        assert code_satisfies(result.rule, episode, code, role, tables_2017)
    for rule in tables_2017.rules:
        involved = _involves(tables_2017, rule, code, role)
        decided = rule.id in answer.witnesses or rule.id in answer.unreachable
        # a rule after its DRG's witnessed rule cannot change the answer and is not searched
        after_reached = rule.drg in answer.rules and by_id[answer.rules[rule.drg]].position < rule.position
        assert decided == (involved and not after_reached), rule.id
    assert set(answer.drgs) == {by_id[rule_id].drg for rule_id in answer.witnesses}


@pytest.mark.parametrize(("code", "role"), [("I210", "principal"), ("E119", "secondary"), ("JAH00", "procedure")])
def test_built_witnesses_change_only_the_speed(tables_2017, monkeypatch, code, role):
    """Most witnesses are built from the rule's columns without a search; the solver alone decides
    every rule the same way (the same rules reached, the same rules unreachable)."""
    built = []
    guess = _search._Search._guess
    monkeypatch.setattr(_search._Search, "_guess", lambda *args: built.append(guess(*args)) or built[-1])
    answer = drgs_for_code(tables_2017, code, role)
    found = [episode for episode in built if episode is not None]
    assert len(answer.witnesses) > len(found) > len(answer.witnesses) / 2
    monkeypatch.setattr(_search._Search, "_guess", lambda *args: None)
    searched = drgs_for_code(tables_2017, code, role)
    assert searched.drgs == answer.drgs
    assert searched.witnesses.keys() == answer.witnesses.keys()
    assert searched.unreachable.keys() == answer.unreachable.keys()
    assert searched.unconfirmed == ()


@pytest.mark.parametrize(("code", "role"), DECIDED)
def test_unreachable_proofs_hold(tables_2017, answers, code, role):
    """Each proof checked without the solver: columns against the code, shadowing rules by implication,
    and the proofs that need the tables' contents by a search for a counterexample."""
    answer = answers[code, role]
    by_id = {rule.id: rule for rule in tables_2017.rules}
    harder = []
    for proof in answer.unreachable.values():
        rule = by_id[proof.rule]
        assert proof.reason
        if proof.shadowed_by:
            shadows = [by_id[rule_id] for rule_id in proof.shadowed_by]
            assert all(shadow.position < rule.position for shadow in shadows), proof
            # one shadow implied by the rule and the code; else (a principal written as a pair, the
            # shadow's values carried by every code that gives the rule's) the tables' contents decide
            if len(shadows) == 1 and _implies(tables_2017, code, role, rule, shadows[0]):
                continue
        else:
            labels = {f"{column} {value}" for column, value in rule.conditions().items()}
            assert proof.conditions and all(c in labels or c.startswith(code) for c in proof.conditions), proof
            if role == "principal" and len(proof.conditions) == 1:
                label = proof.conditions[0]
                assert _principal_column_never_holds(tables_2017, code, rule, label) or _nothing_carries(
                    tables_2017, label
                ), proof
                continue
        harder.append(rule)
    for rule in harder:
        _no_counterexample(tables_2017, rule, code, role)


def test_proof_checks_can_fail(tables_2017, answers):
    """The independent checks reject wrong proofs: an extra condition, an unrelated rule, a column that holds."""
    import attrs

    answer = answers["I210", "principal"]
    proof = next(p for p in answer.unreachable.values() if len(p.shadowed_by) == 1)
    by_id = {rule.id: rule for rule in tables_2017.rules}
    rule, shadow = by_id[proof.rule], by_id[proof.shadowed_by[0]]
    assert _implies(tables_2017, "I210", "principal", rule, shadow)
    stricter = attrs.evolve(shadow, dgprop=(*shadow.dgprop, "99X99"), agelim=None)
    assert not _implies(tables_2017, "I210", "principal", rule, stricter)
    unrelated = next(r for r in tables_2017.rules if r.mdc == "01" and r.position < rule.position)
    assert not _implies(tables_2017, "I210", "principal", rule, unrelated)
    mdc05 = next(r for r in tables_2017.rules if r.mdc == "05")
    assert not _principal_column_never_holds(tables_2017, "I210", mdc05, "mdc 05")
    assert not _nothing_carries(tables_2017, "procpro 05S19")
    assert isinstance(proof, Unreachable)


_SEX_OF = {"M": (1,), "F": (2,), "-": (None,)}


@functools.cache
def _principals(tables, code: str) -> tuple:
    """The properties of every principal `code` can be: alone, either half of a pair with any known
    code (as `drgs_for_code` reads a single code), or in a listed pair of its own."""
    others = [c for c, dagger in tables.diagnoses if not dagger]
    written = {(code, ""), *((code, x) for x in others), *((x, code) for x in others)}
    written |= {(key[1], key[0]) for key in tables.diagnoses if key[1] and code in key}
    return tuple({diagnosis_properties(tables, w) for w in written})


_PRINCIPAL_COLUMNS = ("icd", "mdc", "dgcat", "pdgprop")


def _column_holds(props, sex, column: str, value: str) -> bool:
    if column == "icd":
        return (props is not None) == (value == "+")
    if props is None:
        return False
    if column in ("mdc", "dgcat"):
        return recode_sex(getattr(props, column), sex) == value
    return value in props.pdgprop


def _combinations(tables, code, rule) -> list:
    """(principal properties, sex) of each principal the code can be that meets the rule's principal columns."""
    wanted = [(c, v) for c, v in rule.conditions().items() if c in _PRINCIPAL_COLUMNS]
    return [
        (props, sex)
        for props in _principals(tables, code)
        for sex in _SEX_OF.get(rule.sex, (1, 2, None))
        if all(_column_holds(props, sex, c, v) for c, v in wanted)
    ]


def _principal_column_never_holds(tables, code, rule, label) -> bool:
    column, value = label.split(" ", 1)
    if column not in _PRINCIPAL_COLUMNS:
        return False
    sexes = _SEX_OF.get(rule.sex, (1, 2, None))
    return not any(_column_holds(props, sex, column, value) for props in _principals(tables, code) for sex in sexes)


def _nothing_carries(tables, label) -> bool:
    """A positive procpro/secpro/dgprop value no code of the tables has."""
    column, value = label.split(" ", 1)
    if (column not in ("procpro", "secpro") and not column.startswith("dgprop")) or value[0] in "+-":
        return False
    codes = [*tables.procedures.values(), *tables.diagnoses.values()]
    if column.startswith("dgprop"):
        return not any(value in props.dgprop or value in getattr(props, "sdgprop", ()) for props in codes)
    return not any(value in props.procpr for props in codes)


def _implies(tables, code, role, rule, shadow) -> bool:
    """Every episode holding `code` in `role` that meets `rule` meets each condition of `shadow`."""
    own = rule.conditions()
    if role == "procedure":
        props = tables.procedures[code]
        carried, procpr, or_values = props.dgprop, props.procpr, props.or_values
    else:
        props = diagnosis_properties(tables, (code, ""))
        carried, procpr, or_values = props.dgprop, frozenset(), frozenset()
        if role == "principal":  # what every principal the code can be, meeting the rule, carries
            combinations = _combinations(tables, code, rule)
            carrying = [p.dgprop for p, _ in combinations if p is not None]
            carried = frozenset.intersection(*carrying) if carrying else frozenset()
    for column, value in shadow.conditions().items():
        if own.get(column) == value:
            continue
        if column.startswith("dgprop"):
            ok = value in rule.dgprop or (not value.startswith("-") and value in carried)
        elif column in ("icd", "mdc", "dgcat", "pdgprop"):
            ok = role == "principal" and all(_column_holds(p, sex, column, value) for p, sex in combinations)
        elif column == "compl":
            ok = bool(rule.compl) and int(rule.compl) >= int(value)
        elif column == "or_proc":
            ok = {
                "S": rule.or_proc == "S" or 1 in or_values or _every_carrier(tables, rule, lambda p: 1 in p.or_values),
                "P": rule.or_proc in ("S", "P")
                or bool(or_values & {1, 2})
                or _every_carrier(tables, rule, lambda p: bool(p.or_values & {1, 2})),
                "N": rule.or_proc in ("N", "Z"),
                "Z": rule.or_proc == "Z",
            }[value]
        elif column in ("procpro", "secpro"):
            ok = value[0] not in "+-" and (
                value in procpr
                or (column == "procpro" and rule.secpro == value)
                or _every_carrier(tables, rule, lambda p, v=value: v in p.procpr)
            )
        elif column in ("agelim", "dur"):
            mine, theirs = getattr(rule, column), getattr(shadow, column)
            ok = mine is not None and mine.op == theirs.op
            ok = ok and (mine.days <= theirs.days if mine.op == "<" else mine.days >= theirs.days)
        elif column == "disch":
            ok = value == "N" and rule.disch == "R"
        else:
            ok = False
        if not ok:
            return False
    return True


def _every_carrier(tables, rule, check) -> bool:
    """The tables themselves make `check` hold: every procedure giving the rule's procpro/secpro passes it."""
    for value in (rule.procpro, rule.secpro):
        if value and value[0] not in "+-" and not any(value in props.procpr for props in tables.diagnoses.values()):
            carriers = [props for props in tables.procedures.values() if value in props.procpr]
            if carriers and all(check(props) for props in carriers):
                return True
    return False


def _no_counterexample(tables, rule, code, role, tries: int = 40) -> None:
    """A focused search: episodes holding the code and codes carrying the rule's wanted values."""
    import random

    generator = random.Random(rule.position)
    diagnoses = sorted(c for c, dagger in tables.diagnoses if not dagger)
    procedures = sorted(tables.procedures)
    wanted = [v for v in rule.dgprop if not v.startswith("-")]
    carrying_dx = [c for c in diagnoses if set(wanted) & (tables.diagnoses[(c, "")].dgprop)]
    values = {rule.procpro, rule.secpro, *wanted} - {"", "+", "-"}
    carrying_px = [
        c for c in procedures if values & (tables.procedures[c].procpr | tables.procedures[c].dgprop)
    ] or procedures
    for _ in range(tries):
        dx = [(generator.choice(diagnoses), ""), (generator.choice(carrying_dx or diagnoses), "")]
        px = [generator.choice(carrying_px) for _ in range(generator.randint(0, 3))]
        if role == "principal":  # alone, or either half of a pair
            other = generator.choice(diagnoses)
            dx[0] = generator.choice([(code, ""), (code, other), (other, code)])
        elif role == "secondary":
            dx.insert(generator.randint(1, len(dx)), (code, ""))
        else:
            px.insert(generator.randint(0, len(px)), code)
        age = rule.agelim.days + (-1 if rule.agelim.op == "<" else 1) if rule.agelim else 14600
        duration = rule.dur.days + (-1 if rule.dur.op == "<" else 1) if rule.dur else 3
        episode = Episode(tuple(dx), tuple(px), generator.choice([1, 2]), age, duration, rule.disch or "N")
        result = group_episode(tables, episode)
        assert result.rule is not rule or not code_satisfies(rule, episode, code, role, tables), episode


def test_code_info_names_every_property(tables_2017):
    info = code_info(tables_2017, "I21.0")
    assert ("diagnosis", "MDC", "05") in info.properties
    assert ("diagnosis", "COMPL", "05G01") in info.properties
    assert info.to_arrow().num_rows == len(info.properties)
    assert not code_info(tables_2017, "XXXX").known


def test_drg_contents(tables_2017):
    contents = drg_contents(tables_2017, "5O")
    assert [c.rule.id for c in contents.rules] == [r.id for r in tables_2017.rules if r.drg == "5O"]
    assert all(c.principals for c in contents.rules)
    assert "procpro 01S03" in contents.rules[0].procedures
    assert contents.to_arrow().num_rows > 0 and "DRG 5O" in str(contents)


def test_diff_tables(nor_tables):
    before, after = nor_tables(2016), nor_tables(YEAR)
    diff = diff_tables(before, after)
    kinds = {(kind, change) for kind, _, change, _, _ in diff.changes}
    assert ("rule", "added") in kinds or ("rule", "changed") in kinds
    assert diff.to_arrow().num_rows == len(diff.changes)
    assert diff_tables(after, after).changes == ()
    assert "->" in str(diff)


def test_explore_on_the_demo_tables():
    if not (DEMO_TABLES / "drg_logic.csv").exists():
        pytest.skip("demo tables not present")
    from nordgroup import Grouper, load_tables

    tables = load_tables(DEMO_TABLES)
    grouper = Grouper(tables, cache=False)
    code = next(c for c, dagger in tables.diagnoses if not dagger and tables.diagnoses[(c, dagger)].mdc)
    answer = drgs_for_code(tables, code)
    records = [_record(answer.examples[d]) for d in answer.drgs]
    assert grouper.group(episodes_from_records(records)).column("drg").to_pylist() == list(answer.drgs)
    assert code_info(tables, code).known
    assert drg_contents(tables, answer.drgs[0]).rules
