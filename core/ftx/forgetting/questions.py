"""The retention question set shipped with ftx, and the answer checker.

``questions.jsonl`` (written by ``scripts/make_forgetting_data.py``, no benchmark text) holds a
few hundred short general questions — arithmetic, common facts, simple instructions, several
languages including Japanese — each with its accepted answers.

A reply is right (:func:`answer_matches`) when its first sentence, normalised (:func:`normalise`:
case, width, punctuation, a leading article), *starts with* an accepted answer, or when what
follows a copula in it ("is", "are", "=", "equals", ":", "est", "es", "ist", "è", "é", "は")
does — small chat models answer in a sentence that repeats the question, and "The capital of
Germany is Berlin.", "13 + 2 = 15", "東京です" and "日本の首都は東京です。" all answer it. The
answer must end there or at a word boundary ("120" is not "12"); only the first sentence counts
("The answer is 8. An insect has 6 legs" answers 8), and a leading list marker ("1. ") is
not an answer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUESTIONS_FILE = Path(__file__).resolve().parent / "questions.jsonl"
_ARTICLE = re.compile(r"^(?:the|a|an|le|la|les|el|los|las|der|die|das|il|lo|o) ")
_LIST_MARKER = re.compile(r"^(?:\d+[.)]|[-*•])\s+")
_SENTENCE_END = re.compile(r"\n|[.!?](?:\s|$)|[。！？]")
_COPULA = re.compile(r"(?:^| )(?:is|are|was|equals|est|es|ist|è|é) |=|:|は")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Question:
    """One retention question: ``question`` is the user turn, ``answers`` the accepted replies."""

    id: str
    kind: str
    lang: str
    question: str
    answers: tuple[str, ...]


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    """The shipped question set (or another file of the same shape), in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [
        Question(r["id"], r["kind"], r["lang"], r["question"], tuple(r["answers"])) for r in rows
    ]


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation and symbols turned into spaces, whitespace collapsed,
    one leading article dropped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZ" else c for c in text)
    text = " ".join(text.split())
    return _ARTICLE.sub("", text)


def answer_matches(reply: str, answers: tuple[str, ...] | list[str]) -> bool:
    """True when the reply's first sentence, or the text after a copula in it, starts with an
    accepted answer that ends there or at a word boundary (any character may follow an answer
    in a script written without spaces, as in "東京です")."""
    sentence = _SENTENCE_END.split(_LIST_MARKER.sub("", reply.strip()), maxsplit=1)[0]
    starts = [sentence] + [sentence[m.end() :] for m in _COPULA.finditer(sentence)]
    said = [normalise(text) for text in starts]
    return any(_starts_with(text, normalise(a)) for text in said for a in answers)


def _starts_with(said: str, want: str) -> bool:
    if not want or not said.startswith(want):
        return False
    rest = said[len(want) :]
    return not rest or rest[0] == " " or bool(_CJK.search(want[-1]))


def as_conversations(questions: list[Question]) -> list[Any]:
    """Each question as a one-turn conversation ending in an (empty) assistant turn to
    complete, as :func:`ftx.evaluate.generations` expects."""
    from ftx.data.conversation import Conversation

    return [
        Conversation(
            messages=[
                {"role": "user", "content": q.question},
                {"role": "assistant", "content": q.answers[0]},
            ],
            id=q.id,
            source=f"{QUESTIONS_FILE.name}:{q.id}",
        )
        for q in questions
    ]
