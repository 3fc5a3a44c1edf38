"""One failing fixture per lint rule, with the exact message a contributor sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.errors import TaxonomyError
from labrador.taxonomy import lint_file, read_leaf
from labrador.taxonomy.yamlrules import estimate_tokens

FIXTURES = Path(__file__).parent / "fixtures" / "taxonomy"
KNOWLEDGE = (FIXTURES / "knowledge_v3.yaml").read_text()
FREEFORM = (FIXTURES / "freeform_v3.yaml").read_text()
GROUNDED = (FIXTURES / "grounded_v3.yaml").read_text()
K_PATH = "knowledge/space/moon/qna.yaml"
F_PATH = "compositional_skills/writing/haiku/qna.yaml"
G_PATH = "compositional_skills/grounded/reading/people/qna.yaml"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    taxonomy = tmp_path / "taxonomy"
    taxonomy.mkdir()
    monkeypatch.chdir(taxonomy)  # messages then show paths relative to the taxonomy
    return taxonomy


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def lint(root: Path, rel: str, content: str | bytes, rules: Path | None = None) -> list[str]:
    return [str(issue) for issue in lint_file(write(root, rel, content), root, rules)]


@pytest.mark.parametrize(("rel", "text"), [(K_PATH, KNOWLEDGE), (F_PATH, FREEFORM), (G_PATH, GROUNDED)])
def test_valid_files_have_no_issues(root: Path, rel: str, text: str) -> None:
    assert lint(root, rel, text) == []


def test_file_name_must_be_qna_yaml(root: Path) -> None:
    assert lint(root, "knowledge/space/moon/qna.yml", KNOWLEDGE) == [
        "ERROR: knowledge/space/moon/qna.yml:1:1 The file is named 'qna.yml', but taxonomy files must be named "
        "exactly 'qna.yaml' (lower case, .yaml); rename it."]


def test_file_outside_the_three_trees(root: Path) -> None:
    assert lint(root, "skills/writing/haiku/qna.yaml", FREEFORM) == [
        "ERROR: skills/writing/haiku/qna.yaml:1:1 The file is not under knowledge/, compositional_skills/, "
        "foundational_skills/ of the taxonomy; move its folder under the one that fits (knowledge for facts from "
        "documents, compositional_skills for skills)."]


def test_file_directly_in_a_tree(root: Path) -> None:
    assert lint(root, "compositional_skills/qna.yaml", FREEFORM) == [
        "ERROR: compositional_skills/qna.yaml:1:1 qna.yaml must sit in its own folder below compositional_skills/ "
        "(for example compositional_skills/<topic>/qna.yaml), not directly in compositional_skills/; create a "
        "folder and move it there."]


def test_file_must_be_in_a_leaf_folder(root: Path) -> None:
    write(root, "compositional_skills/writing/haiku/short/qna.yaml", FREEFORM)
    assert lint(root, F_PATH, FREEFORM) == [
        f"ERROR: {F_PATH}:1:1 This folder is not a leaf: another taxonomy file (short/qna.yaml) lies below it. "
        "Each qna.yaml must be in a folder with no further qna.yaml below it; move one of them."]


def test_file_outside_the_taxonomy_root(root: Path) -> None:
    outside = write(root.parent, "elsewhere/knowledge/a/qna.yaml", KNOWLEDGE)
    issues = [str(i) for i in lint_file(outside, root)]
    assert issues == [f"ERROR: {outside}:1:1 This file is not inside the taxonomy folder {root}; move it there, "
                      "or point --taxonomy-path at the taxonomy that holds it."]


def test_knowledge_file_in_skills_tree(root: Path) -> None:
    assert lint(root, F_PATH, KNOWLEDGE) == [
        f"ERROR: {F_PATH}:1:1 This file is under compositional_skills/, so it must follow the skill format "
        "(task_description, and seed examples with question and answer), but it looks like a knowledge file: it "
        "has 'document' and 'document_outline' and seed examples with 'questions_and_answers'. Move its folder "
        "under knowledge/, or rewrite it as a skill."]


def test_skill_file_in_knowledge_tree(root: Path) -> None:
    assert lint(root, K_PATH, FREEFORM) == [
        f"ERROR: {K_PATH}:1:1 This file is under knowledge/, so it must follow the knowledge format (domain, "
        "document, document_outline, and seed examples with context and questions_and_answers), but it looks like "
        "a skill: it has 'task_description' and seed examples with 'question' and no 'document'. Move its folder "
        "under compositional_skills/, or rewrite it as knowledge."]


def test_yaml_syntax_error_has_position(root: Path) -> None:
    text = FREEFORM.replace("  - question: Write a haiku about snow.", "  - question: [Write a haiku about snow.")
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:8:11 The file is not valid YAML: did not find expected ',' or ']' (while parsing a flow "
        "sequence that starts on line 7). Check the indentation, colons and quotes on this line and the one before it."]


def test_duplicate_key(root: Path) -> None:
    text = FREEFORM.replace("created_by: bob\n", "created_by: bob\ncreated_by: eve\n")
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:3:1 [.created_by] The key 'created_by' appears twice in the same block (first on line "
        "2); YAML keeps only one of them, so remove or rename the other."]


def test_trailing_spaces_tabs_and_final_newline(root: Path) -> None:
    text = FREEFORM.replace("created_by: bob", "created_by: bob  ").replace(
        "task_description: Write", "task_description:\tWrite").rstrip("\n")
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:2:16 Line ends with spaces; delete the spaces after the last character.",
        f"ERROR: {F_PATH}:3:18 Line contains a tab character; YAML needs spaces, so replace the tab with spaces.",
        f"ERROR: {F_PATH}:14:83 The file does not end with a line break; add an empty line at the end."]


def test_long_line_is_a_warning_but_one_long_word_is_not(root: Path) -> None:
    long_answer = " ".join(["word"] * 30)
    text = FREEFORM.replace("answer: Soft rain", f"answer: {long_answer} Soft rain").replace(
        "created_by: bob", "created_by: " + "b" * 130)
    assert lint(root, F_PATH, text) == [
        f"WARN: {F_PATH}:6:121 Line is 236 characters long (the limit is 120); break it, for example with a '|' "
        "block for long text."]


def test_too_many_blank_lines_warning(root: Path) -> None:
    text = FREEFORM.replace("seed_examples:\n", "\n\n\nseed_examples:\n")
    assert lint(root, F_PATH, text) == [
        f"WARN: {F_PATH}:6:1 More than 2 blank lines in a row; delete the extra ones."]


def test_yaml_rules_file_overrides_defaults(root: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  trailing-spaces: disable\n  line-length: {max: 60, level: error}\n")
    text = FREEFORM.replace("created_by: bob", "created_by: bob  ")
    long_lines = [(n, len(line)) for n, line in enumerate(text.splitlines(), 1) if len(line) > 60]
    assert len(long_lines) == 5
    assert lint(root, F_PATH, text, rules) == [
        f"ERROR: {F_PATH}:{n}:61 Line is {length} characters long (the limit is 60); break it, for example with a "
        "'|' block for long text." for n, length in long_lines]


def test_yaml_rules_file_with_unknown_rule_is_refused(root: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  no-such-rule: disable\n")
    with pytest.raises(TaxonomyError) as err:
        lint(root, F_PATH, FREEFORM, rules)
    assert str(err.value) == (f"{rules}: unknown lint rule 'no-such-rule'; known rules: line-length, "
                              "trailing-spaces, tabs, new-line-at-end-of-file, empty-lines, seed-tokens.")
    rules.write_text("rules:\n  line-length: {max: 10, allow-non-breakable-words: true}\n")
    with pytest.raises(TaxonomyError) as err:
        lint(root, F_PATH, FREEFORM, rules.with_name("missing.yaml"))
    assert "the lint rules file cannot be read" in str(err.value)


def test_yamllint_config_written_for_instructlab_is_accepted(root: Path, tmp_path: Path) -> None:
    rules = tmp_path / "yamllint.yaml"
    rules.write_text("extends: relaxed\nrules:\n  line-length: {max: 10, allow-non-breakable-words: true}\n"
                     "  indentation: {spaces: 2}\n  truthy: disable\n")
    lines = FREEFORM.splitlines()
    assert lint(root, F_PATH, FREEFORM, rules) == [
        f"WARN: {F_PATH}:{n}:11 Line is {len(lines[n - 1])} characters long (the limit is 10); break it, for "
        "example with a '|' block for long text." for n in (3, *range(5, 15))]  # 2 and 4 are one word


def test_seed_example_too_long_for_teacher_prompt(root: Path, tmp_path: Path) -> None:
    context = " ".join(["Ada met Grace at the station."] * 160)  # + question/answer: 969 words -> 1292 tokens
    text = GROUNDED.replace("context: Ada met Grace at the station.", f"context: {context}")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  line-length: disable\n")
    assert lint(root, G_PATH, text, rules) == [
        f"ERROR: {G_PATH}:5:5 [.seed_examples[0]] Seed example 1 is about 1292 tokens long (context + question + "
        "answer), over the limit of 1000, so it may not fit in the teacher model's prompt; shorten the context or "
        "the answer."]
    rules.write_text("rules:\n  line-length: disable\n  seed-tokens: {max: 2000}\n")
    assert lint(root, G_PATH, text, rules) == []


def test_knowledge_token_limit_counts_each_question(root: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  seed-tokens: {max: 20, level: warning}\n")
    issues = lint(root, K_PATH, KNOWLEDGE, rules)
    assert issues[0] == (f"WARN: {K_PATH}:8:9 [.seed_examples[0].questions_and_answers[0]] Seed example 1, "
                         "question 1, is about 28 tokens long (context + question + answer), over the limit of 20, "
                         "so it may not fit in the teacher model's prompt; shorten the context or the answer.")


def test_token_estimate_is_documented_approximation() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 4  # words * 4/3 rounded up beats 13 chars / 4
    assert estimate_tokens("x" * 40) == 10  # one long "word": characters / 4


def test_empty_and_whitespace_strings(root: Path) -> None:
    text = FREEFORM.replace("created_by: bob", 'created_by: "   "').replace(
        "answer: Soft rain on the roof, a quiet drum for the night, the garden drinks deep.", 'answer: ""')
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:2:13 [.created_by] 'created_by' is empty or only spaces; write the text or remove the "
        "entry.",
        f"ERROR: {F_PATH}:6:13 [.seed_examples[0].answer] 'answer' is empty or only spaces; write the text or "
        "remove the entry."]


def test_question_repeated_across_seed_examples_of_a_skill_is_a_warning(root: Path) -> None:
    text = FREEFORM.replace("Write a haiku about snow.", "write a haiku  about RAIN.")
    assert lint(root, F_PATH, text) == [
        f"WARN: {F_PATH}:7:15 [.seed_examples[1].question] This question repeats the question of seed example 1; "
        "it is allowed, but the teacher model sees the same example twice, so consider rewording it."]
    assert read_leaf(root / F_PATH, root).kind == "freeform_skill"


def test_duplicate_question_within_one_seed_example_is_an_error(root: Path) -> None:
    text = KNOWLEDGE.replace("question: Is the Moon a natural satellite?", "question: What is the Moon?")
    assert lint(root, K_PATH, text) == [
        f"ERROR: {K_PATH}:12:19 [.seed_examples[0].questions_and_answers[2].question] This question repeats the "
        "question of seed example 1, question 1; the questions of one seed example must be different, so reword "
        "it or remove it."]


def test_question_repeated_across_seed_examples_with_the_same_context_is_a_warning(root: Path) -> None:
    """The shape of InstructLab's own valid fixture: two seed examples share a context and a question."""
    text = KNOWLEDGE.replace("The Moon orbits the Earth once every 27.3 days.",
                             "The Moon is the only natural satellite of the Earth.").replace(
        "How long does one orbit of the Moon take?", "what is the  moon?")
    assert lint(root, K_PATH, text) == [
        f"WARN: {K_PATH}:16:19 [.seed_examples[1].questions_and_answers[0].question] This question repeats the "
        "question of seed example 1, question 1 for the same context; it is allowed, but the teacher model sees "
        "the same example twice, so consider rewording it."]
    assert read_leaf(root / K_PATH, root).kind == "knowledge"


def test_instructlab_valid_knowledge_fixture_is_valid_here(tmp_path: Path) -> None:
    """InstructLab's schema test data, when a copy lies under ../shared/reference (it is never copied here)."""
    found = sorted((SHARED / "reference").glob("**/knowledge_valid/qna.yaml")) if SHARED.is_dir() else []
    if not found:
        pytest.skip("no copy of InstructLab's knowledge_valid fixture under ../shared/reference")
    path = tmp_path / "knowledge" / "knowledge_valid" / "qna.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(found[0].read_bytes())
    assert [i for i in lint_file(path, tmp_path) if i.severity == "error"] == []


def test_same_question_with_other_context_is_fine_in_grounded_skill(root: Path) -> None:
    assert "Who is mentioned in the passage?" in GROUNDED  # used for several contexts in the fixture
    assert lint(root, G_PATH, GROUNDED) == []


def test_missing_and_unknown_keys(root: Path) -> None:
    text = KNOWLEDGE.replace("domain: Astronomy\n", "").replace("created_by: alice", "created_by: alice\nauthor: x")
    assert lint(root, K_PATH, text) == [
        f"ERROR: {K_PATH}:1:1 [.] 'domain' is missing in the top of the file. Add 'domain: <the subject, as short "
        "as a book chapter title, e.g. Astronomy>'.",
        f"ERROR: {K_PATH}:3:1 [.author] 'author' is not a known key here; remove it or fix its spelling (allowed "
        "keys: created_by, document, document_outline, domain, seed_examples, version)."]


def test_too_few_seed_examples_and_questions(root: Path) -> None:
    cut = KNOWLEDGE.index("  - context: The Moon is about")
    text = KNOWLEDGE[:cut] + KNOWLEDGE[KNOWLEDGE.index("document:"):]
    text = text.replace("      - question: Is the Moon a natural satellite?\n        answer: Yes.\n", "")
    assert lint(root, K_PATH, text) == [
        f"ERROR: {K_PATH}:6:3 [.seed_examples] 'seed_examples' has 2 items but needs at least 5; add 3 more.",
        f"ERROR: {K_PATH}:8:7 [.seed_examples[0].questions_and_answers] 'questions_and_answers' has 2 items but "
        "needs at least 3; add 1 more."]


def test_wrong_type_and_exact_copy(root: Path) -> None:
    text = FREEFORM.replace("created_by: bob", "created_by: 42").replace(
        "Write a haiku about snow.\n    answer: White flakes drift and fall, the loud city holds its breath, all "
        "the roads go still.", "Write a haiku about rain.\n    answer: Soft rain on the roof, a quiet drum for "
        "the night, the garden drinks deep.")
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:2:13 [.created_by] 'created_by' must be text, but it is a number (42). Put the value in "
        "quotes, e.g. \"42\".",
        f"ERROR: {F_PATH}:7:5 [.seed_examples[1]] Seed example 2 is an exact copy of seed example 1; change it or "
        "remove it."]


def test_document_needs_repo_and_commit_or_folder(root: Path) -> None:
    text = KNOWLEDGE.replace("  folder: docs\n", "  folder: docs\n  repo: https://example.com/r.git\n")
    assert lint(root, K_PATH, text) == [
        f"ERROR: {K_PATH}:47:3 [.document] 'document' needs either 'repo' and 'commit' (documents in a git "
        "repository) or 'folder' (documents in a folder of the taxonomy), but not both; fix the keys under "
        "'document'."]


def test_version_must_be_known_whole_number(root: Path) -> None:
    assert lint(root, F_PATH, FREEFORM.replace("version: 3", 'version: "3"')) == [
        f"ERROR: {F_PATH}:1:10 [.version] 'version' must be a whole number, 3 for new files, but it is text ('3'); "
        "write 'version: 3'."]
    assert lint(root, F_PATH, FREEFORM.replace("version: 3", "version: 4")) == [
        f"ERROR: {F_PATH}:1:10 [.version] Version 4 is not a taxonomy format labrador knows; use version 3, the "
        "current format."]


def test_every_violation_is_reported(root: Path) -> None:
    import re

    text = re.sub(r"question: Write a haiku about [\w ]+\.", 'question: ""', FREEFORM.replace("created_by: bob\n", ""))
    issues = lint(root, F_PATH, text.replace("version: 3", "version:\t3"))
    assert issues[:2] == [
        f"ERROR: {F_PATH}:1:1 [.] 'created_by' is missing in the top of the file. Add 'created_by: <your GitHub "
        "user name or your name>'.",
        f"ERROR: {F_PATH}:1:9 Line contains a tab character; YAML needs spaces, so replace the tab with spaces."]
    assert issues[2:] == [f"ERROR: {F_PATH}:{line}:15 [.seed_examples[{i}].question] 'question' is empty or only "
                          "spaces; write the text or remove the entry." for i, line in enumerate(range(4, 14, 2))]


def test_grounded_skill_needs_context(root: Path) -> None:
    text = GROUNDED.replace("  - context: Nobody came to the meeting.\n    question:", "  - question:")
    assert lint(root, G_PATH, text) == [
        f"ERROR: {G_PATH}:11:5 [.seed_examples[2]] Seed example 3 has no 'context'. This file is under "
        "compositional_skills/grounded/, where every seed example needs the text its answer is based on; add a "
        "'context', or move the folder out of grounded/."]


def test_skill_with_some_contexts_only(root: Path) -> None:
    text = GROUNDED.replace("  - context: Nobody came to the meeting.\n    question:", "  - question:")
    assert lint(root, F_PATH, text) == [
        f"ERROR: {F_PATH}:5:3 [.seed_examples] Only some seed examples (1, 2, 4, 5) have a 'context'. A skill is "
        "either grounded (every seed example has a context) or freeform (none has); add the missing contexts or "
        "remove these."]


def test_context_outside_grounded_tree_is_a_warning(root: Path) -> None:
    assert lint(root, F_PATH, GROUNDED) == [
        f"WARN: {F_PATH}:5:3 [.seed_examples] Every seed example has a 'context', so this skill is treated as a "
        "grounded skill, but its folder is not under compositional_skills/grounded/; move it there so the tree "
        "says what it is."]
    assert read_leaf(root / F_PATH, root).kind == "grounded_skill"


def test_not_utf8_empty_and_not_a_mapping(root: Path) -> None:
    assert lint(root, F_PATH, b"version: 3\ncreated_by: b\xffb\n") == [
        f"ERROR: {F_PATH}:2:14 The file is not UTF-8 text: the byte 0xFF at byte offset 24 (line 2, column 14) is "
        "not valid UTF-8; save the file with UTF-8 encoding."]
    assert lint(root, F_PATH, "") == [
        f"ERROR: {F_PATH}:1:1 The file is empty; write the taxonomy fields (version, created_by, seed_examples and "
        "the others) or delete the file."]
    assert lint(root, F_PATH, "- a\n- b\n") == [
        f"ERROR: {F_PATH}:1:1 The file must be a set of 'key: value' lines (version:, created_by:, seed_examples:, "
        "...), but it holds a list; rewrite it in that form."]


def test_yaml_features_taxonomy_files_do_not_allow(root: Path) -> None:
    assert lint(root, F_PATH, FREEFORM.replace("created_by: bob", "created_by: !secret bob")) == [
        f"ERROR: {F_PATH}:2:13 The value uses a YAML tag (!secret) that taxonomy files do not allow; remove the tag "
        "and write plain text."]
    assert lint(root, F_PATH, FREEFORM.replace("created_by: bob", "? [a, b]\n: bob\ncreated_by: bob")) == [
        f"ERROR: {F_PATH}:2:3 This key is not plain text (it is a list or a group of keys); write keys as single "
        "words such as 'question:'."]
    assert lint(root, F_PATH, FREEFORM + "---\nversion: 3\n") == [
        f"ERROR: {F_PATH}:15:1 The file holds a second YAML document (starting at this '---'); a taxonomy file is "
        "one document, so remove the '---' line and merge or delete what follows."]
    assert lint(root, F_PATH, FREEFORM.replace("created_by: bob", "created_by: b\x07ob")) == [
        f"ERROR: {F_PATH}:2:14 The file contains a character YAML does not allow (code U+0007); delete it or retype "
        "the text around it."]


def test_misspelled_key_and_old_knowledge_key_get_hints(root: Path) -> None:
    text = KNOWLEDGE.replace("        answer: One, the Moon.", "        anwser: One, the Moon.").replace(
        "domain: Astronomy", "domain: Astronomy\ntask_description: Moon facts")
    assert lint(root, K_PATH, text) == [
        f"ERROR: {K_PATH}:4:1 [.task_description] 'task_description' is not used by version 3 knowledge files; "
        "describe the documents in 'document_outline' instead and remove 'task_description'.",
        f"ERROR: {K_PATH}:11:9 [.seed_examples[0].questions_and_answers[1]] 'answer' is missing in "
        "question-and-answer 2 of 'questions_and_answers'. Add 'answer: <the answer>'.",
        f"ERROR: {K_PATH}:12:9 [.seed_examples[0].questions_and_answers[1].anwser] 'anwser' is not a known key "
        "here; did you mean 'answer'? Fix the spelling."]


_FIRST_SEED = "\n".join(KNOWLEDGE.split("\n")[5:13])
_SECOND_SEED = "  - context: The Moon orbits the Earth once every 27.3 days."


@pytest.mark.parametrize(("text", "expected"), [
    (KNOWLEDGE.replace(_SECOND_SEED, f"{_FIRST_SEED}\n{_SECOND_SEED}", 1),
     "ERROR: knowledge/space/moon/qna.yaml:14:5 [.seed_examples[1]] Seed example 2 is an exact copy of seed "
     "example 1; change it or remove it."),
    (KNOWLEDGE.replace("      - question: Is the Moon a natural satellite?\n        answer: Yes.",
                       "      - question: What is the Moon?\n        answer: The only natural satellite of the Earth."),
     "ERROR: knowledge/space/moon/qna.yaml:12:9 [.seed_examples[0].questions_and_answers[2]] Question-and-answer 3 "
     "is an exact copy of question-and-answer 1; change it or remove it."),
    (KNOWLEDGE.replace('  patterns:\n    - "*.md"', "  patterns: []"),
     "ERROR: knowledge/space/moon/qna.yaml:48:13 [.document.patterns] 'patterns' has 0 items but needs at least 1; "
     "add 1 more."),
    (KNOWLEDGE.replace('    - "*.md"', '    - "*.md"\n    - "*.md"'),
     "ERROR: knowledge/space/moon/qna.yaml:50:7 [.document.patterns[1]] Pattern 2 is an exact copy of pattern 1; "
     "change it or remove it."),
], ids=["duplicate-seed-example", "duplicate-qna-pair", "empty-patterns", "duplicate-pattern"])
def test_knowledge_uniqueness_and_pattern_rules(root: Path, text: str, expected: str) -> None:
    assert lint(root, K_PATH, text) == [expected]
