"""The one in-memory shape every data format is normalised to: a `Conversation`.

A conversation is a list of messages ``{"role": "system" | "user" | "assistant", "content": str}``
whose turn order makes sense for supervised fine-tuning (`turn_order_problem` states the rules),
or, for continued pre-training rows (format ``text``), a plain ``text`` with no messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftx.errors import BadInput

ROLES = ("system", "user", "assistant")


@dataclass(slots=True)
class Conversation:
    """One training example (slotted: a data set holds one per row, without a dict each).

    Attributes:
        messages: ``[{"role": ..., "content": ...}, ...]``; empty for a ``text`` row.
        id: the row's own id (``"id"`` key), as a string, or None.
        source: where the row came from, ``"<file name>:<line or row number>"``.
        text: the raw text of a ``text`` (continued pre-training) row, else None. All of it is
            trained on.
    """

    messages: list[dict]
    id: str | None = None
    source: str = ""
    text: str | None = None

    @property
    def is_text(self) -> bool:
        """True for a plain-text (continued pre-training) row."""
        return self.text is not None

    @property
    def assistant_turns(self) -> int:
        """How many assistant messages the conversation has."""
        return sum(1 for m in self.messages if m["role"] == "assistant")


def turn_order_problem(messages: list[dict]) -> str | None:
    """Return why `messages` cannot be trained on, or None when the order is fine.

    Rules: at least one message; a system message only as the first message; at least one user
    message before the first assistant message; never two assistant messages without a user
    message between them; the last message is an assistant message (the one the model learns to
    write). Consecutive user messages are allowed.
    """
    if not messages:
        return "the conversation has no messages"
    seen_user = False
    previous = None
    for number, message in enumerate(messages, start=1):
        role = message["role"]
        if role == "system" and number != 1:
            return f"message {number} is a system message; a system message may only come first"
        if role == "assistant":
            if not seen_user:
                return (
                    f"message {number} is an assistant message with no user message before it; "
                    "a conversation starts with a user message (after an optional system message)"
                )
            if previous == "assistant":
                return (
                    f"messages {number - 1} and {number} are both assistant messages; "
                    "a user message must come between two assistant messages"
                )
        if role == "user":
            seen_user = True
        previous = role
    if previous != "assistant":
        return (
            f"the conversation ends with a {previous} message; it must end with an assistant "
            "message (the answer the model learns)"
        )
    return None


def require_answers(convs: list[Conversation]) -> list[Conversation]:
    """Return ``convs`` unchanged, or raise `BadInput` naming the first row (``source``) with an
    assistant message that holds no text.

    Training data only: such a turn would train nothing but the end-of-turn token, as a
    preference pair's empty answer would (which its loader refuses too). Files for ``ftx
    generate`` may leave the answer to be generated empty, so the loaders do not call this.
    """
    for conv in convs:
        for number, message in enumerate(conv.messages, start=1):
            if message["role"] == "assistant" and not message["content"].strip():
                raise BadInput(
                    f"{conv.source}: message {number} is an empty assistant message; training on "
                    "it would teach only the end of the turn",
                    hint="write the answer the model should learn, or remove the row",
                )
    return convs
