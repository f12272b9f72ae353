"""The lessons' "check yourself" quizzes."""

from __future__ import annotations

import pytest

from wslab import quiz
from wslab.lessons import COURSE


class TestQuiz:
    """Answers are checked against hashes, forgiving case and spaces."""

    KEY = quiz.key(q1="GET", q2=101, q3="binaryType")

    def test_key_does_not_contain_the_answers(self) -> None:
        assert "GET" not in str(self.KEY) and "101" not in str(self.KEY)

    def test_unanswered(self) -> None:
        result = quiz.check({"q1": None, "q2": None, "q3": None}, self.KEY)
        assert result.right == 0
        assert str(result).splitlines() == [
            "q1: not answered yet",
            "q2: not answered yet",
            "q3: not answered yet",
            "0 of 3 right",
        ]

    def test_right_wrong_and_forgiving(self) -> None:
        result = quiz.check({"q1": " get ", "q2": "101", "q3": "bufferType"}, self.KEY)
        assert (result.right, result.total) == (2, 3)
        assert "q3: not quite" in str(result)

    def test_unknown_question_is_named(self) -> None:
        assert "no such question: q9" in str(quiz.check({"q9": 1}, self.KEY))

    def test_questions_named_by_number_are_named_not_a_typeerror(self) -> None:
        result = quiz.check({1: "GET", 2: 101}, self.KEY)  # type: ignore[dict-item]
        assert "no such question: 1, 2; the questions are q1, q2, q3" in str(result)
        assert result.right == 0

    def test_answers_must_be_a_dict(self) -> None:
        with pytest.raises(TypeError, match="answers must be a dict"):
            quiz.check(["GET"], self.KEY)  # type: ignore[arg-type]


class TestEquivalentAnswers:
    """Spellings of the same answer are the same answer (issue 11)."""

    @pytest.mark.parametrize(
        ("one", "other"),
        [
            ("SHA-1", "sha1"),
            ("0xA", "10"),
            ("0xA", 10),
            ("long-polling", "long polling"),
            ("Long_Polling", "longpolling"),
            (True, "yes"),
            ("03 e9", "03e9"),
            ("'lab'", "lab"),
        ],
    )
    def test_same(self, one: object, other: object) -> None:
        assert quiz.normal(one) == quiz.normal(other)

    def test_different(self) -> None:
        assert quiz.normal("sha256") != quiz.normal("sha1")
        assert quiz.normal("0x81") != quiz.normal("0x82")

    @pytest.mark.parametrize(
        ("lesson", "name", "answer"),
        [
            ("02", "q2", "SHA-1"),
            ("03", "q3", "0xA"),
            ("08", "q3", "long-polling"),
            ("10", "q1", "HTTP/1.1"),
            ("11", "q2", "non strict"),
        ],
    )
    def test_the_lessons_accept_them(self, lesson: str, name: str, answer: str) -> None:
        assert f"{name}: right" in str(quiz.check({name: answer}, lesson))


class TestWhyWrong:
    """A wrong answer gets an explanation per question, not a generic line."""

    def test_usual_mistake_gets_its_own_explanation(self) -> None:
        result = str(quiz.check({"q1": "open"}, "05"))
        assert "q1: not quite ('open'): the WebSocket API has no open() method" in result

    def test_other_wrong_answer_gets_the_hint(self) -> None:
        result = str(quiz.check({"q3": 7}, "04"))
        assert "q3: not quite (7): no close frame at all" in result
        assert "1006" not in result  # the hint does not give the answer away

    def test_every_lesson_has_its_key_here(self) -> None:
        """One place for the keys of all twelve lessons, nothing to import first."""
        assert list(quiz.LESSONS) == [number for number, _, _, _ in COURSE]

    def test_every_lesson_key_has_hints(self) -> None:
        for lesson, questions in quiz.LESSONS.items():
            for name, question in questions.items():
                assert question.answers and question.hint, (lesson, name)

    def test_old_keys_still_work(self) -> None:
        assert quiz.check({"q1": "0x82"}, {"q1": "09a53c5eff84"}).right == 1

    def test_unknown_lesson(self) -> None:
        with pytest.raises(KeyError, match="no quiz for lesson '99'"):
            quiz.check({}, "99")
