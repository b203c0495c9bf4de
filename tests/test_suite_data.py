"""Checks of the built-in suite data as shipped in the package (headwidget/data/suites/).

Format checks run on every record; where an answer can be computed from its question (letters,
years, arithmetic, facts stated in the context, orderings, sentence parts) it is recomputed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from headwidget.tasks.suites import _SUITES, load_suite

MIN_EXAMPLES = {"cognitive": 60, "operations": 40}


def records(suite: str) -> list[dict]:
    path = resources.files("headwidget") / "data" / "suites" / f"{suite}.jsonl"
    text = path.read_bytes().decode("utf-8")  # strict: the files must be valid UTF-8
    return [json.loads(line) for line in text.splitlines()]


def by_task(suite: str) -> dict[str, list[tuple[str, str, str]]]:
    spec = _SUITES[suite]
    grouped: dict[str, list[tuple[str, str, str]]] = {}
    for row in records(suite):
        grouped.setdefault(row["task"], []).append(
            (row[spec.source_key], row[spec.target_key], row["distractor"])
        )
    return grouped


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+(?:['-]\w+)*", text))


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_records_are_well_formed(suite):
    spec = _SUITES[suite]
    keys = {"task", spec.source_key, spec.target_key, "distractor"}
    for number, row in enumerate(records(suite), start=1):
        assert set(row) == keys, f"{suite}.jsonl line {number}: keys {sorted(row)}"
        for key in keys:
            value = row[key]
            assert isinstance(value, str) and value, f"line {number}: empty {key}"
            assert value == value.strip(), f"line {number}: {key} has outer whitespace"
        assert row["distractor"] != row[spec.target_key], f"line {number}"
        assert "\n" not in row[spec.source_key] + row[spec.target_key]


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_every_task_has_a_category_and_enough_distinct_examples(suite):
    spec = _SUITES[suite]
    grouped = by_task(suite)
    assert list(grouped) == [task.name for task in spec.tasks]  # file order = suite order
    for task in spec.tasks:
        assert task.category, task.name
        items = grouped[task.name]
        assert len(items) >= MIN_EXAMPLES[suite], f"{task.name}: {len(items)} examples"
        pairs = Counter((source, target) for source, target, _ in items)
        assert max(pairs.values()) == 1, f"{task.name}: duplicate pairs"
        sources = Counter(source for source, _, _ in items)
        repeated = [source for source, n in sources.items() if n > 1]
        assert not repeated, f"{task.name}: sources given twice {repeated}"


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_answers_are_short(suite):
    for name, items in by_task(suite).items():
        for _, target, distractor in items:
            # A word or a number (a few multi-word proper nouns are not used).
            assert re.fullmatch(r"[\w'-]+", target), (name, target)
            assert re.fullmatch(r"[\w'-]+", distractor), (name, distractor)


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_loaded_counts_match_the_files(suite):
    grouped = by_task(suite)
    for task in load_suite(suite):
        assert len(task) == len(grouped[task.name])


# -- operations: answers recomputed ------------------------------------------------------------

OPS = by_task("operations")


def test_algorithmic_answers():
    for source, target, distractor in OPS["copying"]:
        assert target == source and source.isalpha() and source.islower()
        assert distractor != source
    for source, target, _ in OPS["name copying"]:
        assert target == source and source.isalpha() and source[0].isupper()
    for source, target, distractor in OPS["first letter"]:
        assert target == source[0] and distractor == source[-1]
    for source, target, distractor in OPS["last letter"]:
        assert target == source[-1] and distractor == source[0]
    for source, target, distractor in OPS["next year"]:
        assert re.fullmatch(r"\d{4}", source)
        assert int(target) == int(source) + 1 and distractor == source


def test_comparative_and_superlative_forms():
    irregular = {"good": ("better", "best"), "bad": ("worse", "worst")}
    comparatives = {source: target for source, target, _ in OPS["comparative"]}
    superlatives = {source: target for source, target, _ in OPS["superlative"]}
    assert comparatives.keys() == superlatives.keys()
    for adjective, comparative in comparatives.items():
        superlative = superlatives[adjective]
        if adjective in irregular:
            assert (comparative, superlative) == irregular[adjective]
            continue
        assert comparative.endswith("er") and superlative.endswith("est"), adjective
        assert comparative[:-2] == superlative[:-3], adjective  # same stem
        stem = comparative[:-2]
        # big -> bigg, happy -> happi, nice -> nic: the stem is the adjective with at most a
        # doubled final consonant, y -> i, or a dropped final e.
        assert stem in (adjective, adjective + adjective[-1], adjective[:-1] + "i", adjective[:-1])
    # The distractor of each is the other form.
    for source, _, distractor in OPS["comparative"]:
        assert distractor == superlatives[source]
    for source, _, distractor in OPS["superlative"]:
        assert distractor == comparatives[source]


def test_linguistic_answers_differ_from_the_word_and_pronouns_are_pronouns():
    for task in ("antonym", "synonym", "past tense", "comparative", "superlative"):
        for source, target, _ in OPS[task]:
            assert target != source, (task, source)
    for source, target, distractor in OPS["pronoun"]:
        assert target in {"he", "she", "it", "they"} and distractor in {"he", "she", "it", "they"}
        # Plural entities: "X and Y", or a plural noun (these all end in -s, or are irregular).
        last = source.split()[-1]
        plural = " and " in source or (last.endswith("s") and last != "princess")
        plural = plural or last in {"children", "people"}
        assert (target == "they") == plural, source
    regular = [(s, t) for s, t, _ in OPS["past tense"] if t.endswith("ed")]
    for verb, past in regular:
        assert past in (verb + "ed", verb + "d", verb + verb[-1] + "ed", verb[:-1] + "ied")


def test_knowledge_answers_are_not_the_source_and_capitalised():
    for task in ("country → capital", "country → language", "product → company"):
        for source, target, distractor in OPS[task]:
            assert target != source and target[0].isupper() and distractor[0].isupper()
    capitals = [target for _, target, _ in OPS["country → capital"]]
    assert len(set(capitals)) == len(capitals)
    # Spot checks of well-known facts and of left-out ambiguous cases.
    capital = {source: target for source, target, _ in OPS["country → capital"]}
    assert capital["Australia"] == "Canberra" and capital["Canada"] == "Ottawa"
    assert capital["Turkey"] == "Ankara" and capital["Nigeria"] == "Abuja"
    for ambiguous in ("Bolivia", "South Africa", "Netherlands", "Israel", "Switzerland"):
        assert ambiguous not in capital
    language = {source: target for source, target, _ in OPS["country → language"]}
    assert language["Brazil"] == "Portuguese" and language["Austria"] == "German"
    for multilingual in ("Switzerland", "Belgium", "Canada", "India", "Finland", "Cyprus"):
        assert multilingual not in language


def test_translations():
    english = [{s for s, _, _ in OPS[f"English → {lang}"]} for lang in ("French", "Spanish")]
    assert english[0] & english[1]
    french = {s: t for s, t, _ in OPS["English → French"]}
    spanish = {s: t for s, t, _ in OPS["English → Spanish"]}
    german = {s: t for s, t, _ in OPS["English → German"]}
    for table in (french, spanish, german):
        # Cognates spelled like the English word would only test copying.
        assert all(target.lower() != source for source, target in table.items())
    assert (french["dog"], spanish["dog"], german["dog"]) == ("chien", "perro", "Hund")
    # German nouns are capitalised; the colours and numbers here are not nouns.
    lowercase = {"red", "blue", "green", "black", "white", "yes"}
    numbers = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
    for source, target in german.items():
        if source in lowercase | numbers:
            assert target.islower(), source
        else:
            assert target[0].isupper(), source
    # The distractor is the same word in another of the languages.
    for source, _, distractor in OPS["English → Spanish"]:
        # (French words spelled like the English one, e.g. "six", are not in the French task.)
        assert distractor == french.get(source, source)


def test_occupation_homophone_and_compound_answers():
    workplaces = {target for _, target, _ in OPS["occupation → workplace"]}
    for source, target, distractor in OPS["occupation → workplace"]:
        assert source.islower() and target.islower() and target != source
        assert distractor in workplaces and distractor != target  # another occupation's place
    for source, target, distractor in OPS["homophone"]:
        assert source.isalpha() and target.isalpha() and target != source
        assert distractor == source  # the wrong answer is the word itself (copying)
    homophone = {source: target for source, target, _ in OPS["homophone"]}
    assert homophone["flower"] == "flour" and homophone["night"] == "knight"
    assert homophone.keys().isdisjoint(homophone.values())  # each pair given one way only
    for source, target, distractor in OPS["compound"]:
        # One closed compound that starts with the word; the distractor shares its second part
        # but starts with another word (foot -> football, not basketball).
        second = target[len(source) :]
        assert target.startswith(source) and second.isalpha() and len(second) >= 2, target
        assert distractor.endswith(second) and not distractor.startswith(source), target


# -- cognitive: answers recomputed where the question states enough ------------------------------

COG = by_task("cognitive")


def test_math_answers():
    for question, answer, distractor in COG["Math Calculation"]:
        match = re.fullmatch(r"What is (\d+) (plus|minus|times) (\d+)\?", question)
        assert match, question
        a, op, b = int(match[1]), match[2], int(match[3])
        value = {"plus": a + b, "minus": a - b, "times": a * b}[op]
        assert answer == str(value) and value >= 0 and distractor != answer


def test_retrieval_answers_are_stated_in_the_context():
    for question, answer, distractor in COG["Retrieval"]:
        *facts, asked = re.split(r"(?<=[.?]) ", question)
        assert asked.endswith("?") and len(facts) == 3
        people = [fact.split()[0].removesuffix("'s") for fact in facts]
        (person,) = [p for p in people if re.search(rf"\b{p}\b", asked)]
        fact = facts[people.index(person)]
        assert answer in words(fact), question
        assert any(distractor in words(other) for other in facts if other != fact)


def test_logical_reasoning_answers():
    for question, answer, distractor in COG["Logical Reasoning"]:
        assert {answer, distractor} <= words(question) | {"Yes", "No"}
        syllogism = re.match(r"(All|No) (\w+) are (\w+)\. ", question)
        if syllogism:
            assert answer == ("Yes" if syllogism[1] == "All" else "No"), question
            continue
        facts = re.findall(r"(\w+) is (\w+er) than (\w+)\.", question)
        assert facts, question
        taller = {a: b for a, _, b in facts}  # a is more <comparative> than b
        top = (set(taller) - set(taller.values())).pop()
        order = [top]
        while order[-1] in taller:
            order.append(taller[order[-1]])
        pair = re.search(r"Is (\w+) \w+er than (\w+)\?$", question)
        if pair:
            first, second = pair[1], pair[2]
            expected = "Yes" if order.index(first) < order.index(second) else "No"
        elif re.search(r"the (tallest|oldest|fastest|heaviest|richest|strongest)\?$", question):
            expected = order[0]
        else:
            assert re.search(
                r"the (shortest|youngest|slowest|lightest|poorest|weakest)\?$", question
            )
            expected = order[-1]
        assert answer == expected, question


def test_syntactic_answers():
    for question, answer, distractor in COG["Syntactic Understanding"]:
        assert distractor in words(question) and distractor != answer
        active = re.fullmatch(
            r"In the sentence 'The (\w+) (\w+) the (\w+)\.', what is the (\w+)\?", question
        )
        passive = re.fullmatch(
            r"In the sentence 'The (\w+) was (\w+) by the (\w+)\.', who or what (did|received) .*",
            question,
        )
        agreement = re.fullmatch(
            r"Fill in the blank with 'is' or 'are': The (\w+) ___ .*", question
        )
        if active:
            subject, verb, obj, part = active.groups()
            assert answer == {"subject": subject, "verb": verb, "object": obj}[part]
        elif passive:
            patient, _, agent, role = passive.groups()
            assert answer == (agent if role == "did" else patient)
        else:
            assert agreement, question
            plural = agreement[1].endswith("s") or agreement[1] in {
                "children",
                "mice",
                "men",
                "women",
            }
            assert answer == ("are" if plural else "is")


@pytest.mark.parametrize("task", ["Decision-making", "Semantic Understanding", "Inference"])
def test_choice_questions_offer_the_answer_and_the_distractor(task):
    for question, answer, distractor in COG[task]:
        assert answer in words(question) and distractor in words(question), question


def test_knowledge_recall_spot_checks():
    facts = {question: answer for question, answer, _ in COG["Knowledge Recall"]}
    assert facts["What is the chemical symbol for gold?"] == "Au"
    assert facts["In which year did World War II end?"] == "1945"
    assert facts["How many planets are in the solar system?"] == "8"
    assert all(question.endswith("?") for question in facts)
