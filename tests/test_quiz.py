"""The lessons' "check yourself" quizzes."""

from __future__ import annotations

import pytest

from wslab import quiz


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

    def test_answers_must_be_a_dict(self) -> None:
        with pytest.raises(TypeError, match="answers must be a dict"):
            quiz.check(["GET"], self.KEY)  # type: ignore[arg-type]
