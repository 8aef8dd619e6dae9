"""``ftx chat``: a streaming multi-turn chat loop in the terminal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


def prompt_ids(messages: list[dict[str, str]], tokenizer: Any) -> list[int]:
    """Token ids for ``messages`` plus the assistant generation prompt, rendered exactly as
    training rendered them (the tokenizer's chat template, or ftx's fallback template)."""
    from ftx.data import Conversation, prompt_for_generation

    conv = Conversation(
        messages=[*messages, {"role": "assistant", "content": ""}], id=None, source="chat"
    )
    ids, _ = prompt_for_generation(conv, tokenizer)
    return ids


def stream_reply(
    loaded: Any, history: list[dict[str, str]], *, max_new_tokens: int
) -> Iterator[str]:
    """The model's reply to ``history`` (ending with a user turn), greedy, yielded in pieces as
    they are generated; stops at the end-of-turn token. An error in generation (which runs in
    a thread) ends the pieces and is raised here, in the caller's thread. ``ftx chat`` and
    ``ftx ui`` use it."""
    import torch
    from transformers import TextIteratorStreamer

    from ftx.inference import stop_token_ids

    model, tokenizer = loaded.model, loaded.tokenizer
    ids = torch.tensor([prompt_ids(history, tokenizer)], device=model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "streamer": streamer,
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "eos_token_id": stop_token_ids(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
    }
    failed: list[BaseException] = []

    def generate() -> None:
        try:
            model.generate(**kwargs)
        except BaseException as exc:  # raised again below, in the caller's thread
            failed.append(exc)
            streamer.end()  # else the caller waits for pieces that never come

    worker = threading.Thread(target=generate, daemon=True)
    worker.start()
    yield from streamer
    worker.join()
    if failed:
        raise failed[0]


def chat_loop(
    loaded: Any, *, system: str | None, max_new_tokens: int, read=input, write=print
) -> list[dict[str, str]]:
    """Read user turns until EOF or ``/exit``; stream each reply. ``/reset`` clears history.
    Returns the conversation (for tests)."""
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    write(f"chatting with {loaded.source} — /reset clears, /exit or Ctrl-D quits")
    while True:
        try:
            line = read("you> ")
        except EOFError:
            break
        if line.strip() == "/exit":
            break
        if line.strip() == "/reset":
            history = history[:1] if system else []
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        reply = ""
        write("bot> ", end="", flush=True)
        for piece in stream_reply(loaded, history, max_new_tokens=max_new_tokens):
            reply += piece
            write(piece, end="", flush=True)
        write("")
        history.append({"role": "assistant", "content": reply.strip()})
    return history
