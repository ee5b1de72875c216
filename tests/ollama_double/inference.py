"""Canned, deterministic answers for /api/generate and /api/chat.

The rule (also in docs/testing.md):

* A reply scripted with `controls.set_reply(model, text)` is returned verbatim.
* Otherwise the reply depends only on (model manifest digest, effective system prompt,
  conversation, seed). `reply_id` is the first 12 hex digits of the sha256 of those.
  - JSON mode, when the request has `format` ("json" or a schema) or the system prompt or a
    message contains the word "JSON": the reply is a compact JSON object
    `{"model": ..., "prompt": ..., "reply_id": ...}` (sorted keys).
  - Otherwise: `Test double reply <reply_id> from <model>: <prompt>`.
* `prompt` is the generate prompt, or the content of the last user message for chat.
  The seed is options.seed, else the model's `seed` parameter, else 0.
* Streaming splits the reply into word chunks (one NDJSON line each); `num_predict` (the
  request's options, else the model's parameter) caps the number of chunks, JSON replies
  included, as a real server cuts a JSON answer mid-object (done_reason "length"); counts
  and durations are derived from word counts, so everything except `created_at` repeats
  exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterator

from . import gojson
from .describe import ModelView

__all__ = ["CHAT_FIELDS", "GENERATE_FIELDS", "Reply", "make_reply"]

GENERATE_FIELDS = {
    "model": "string", "prompt": "string", "suffix": "string", "system": "string", "template": "string",
    "context": "ints", "stream": "bool", "raw": "bool", "format": "any", "keep_alive": "any",
    "images": "list", "options": "anymap", "think": "any",
}
CHAT_FIELDS = {
    "model": "string", "messages": "messages", "tools": "list", "stream": "bool", "format": "any",
    "keep_alive": "any", "options": "anymap", "think": "any",
}
_JSON_WORD = re.compile(r"\bjson\b", re.IGNORECASE)


class Reply:
    """A computed answer: its chunks and the final line's metrics."""

    def __init__(self, text: str, prompt_words: int, limit: int | None) -> None:
        chunks = re.findall(r"\S+\s*", text) or ([text] if text else [])
        self.done_reason = "stop"
        if limit is not None and 0 <= limit < len(chunks):
            chunks = chunks[:limit]
            self.done_reason = "length"
        self.chunks = chunks
        self.prompt_eval_count = max(1, prompt_words)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def metrics(self) -> dict[str, int]:
        eval_count = max(1, len(self.chunks))
        return {
            "total_duration": 1_000_000 * (1 + self.prompt_eval_count + eval_count),
            "load_duration": 1_000_000,
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_duration": 1_000_000 * self.prompt_eval_count,
            "eval_count": eval_count,
            "eval_duration": 1_000_000 * eval_count,
        }

    def lines(self) -> Iterator[str]:
        yield from self.chunks


def _option(name: str, options: dict[str, Any] | None, view: ModelView) -> int | None:
    """The request's option, else the model's parameter (as Ollama merges them)."""
    for source in (options if isinstance(options, dict) else {}, view.options):
        value = source.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def make_reply(view: ModelView, display: str, req: dict[str, Any], chat: bool, scripted: str | None) -> Reply:
    """The deterministic reply for a generate (chat=False) or chat request."""
    if chat:
        conversation = [(m.get("role", ""), m.get("content", "")) for m in view.messages]
        conversation += [(m["role"], m["content"]) for m in req["messages"] or []]
        systems = [content for role, content in conversation if role == "system"]
        system = "\n".join(systems) if systems else view.system
        users = [content for role, content in conversation if role == "user"]
        prompt = users[-1] if users else ""
    else:
        system = req["system"] or view.system
        prompt = req["prompt"] or ""
        conversation = [("user", prompt)]
    options = req["options"]
    limit = _option("num_predict", options, view)
    words = len((system + " " + " ".join(c for _, c in conversation)).split())
    if scripted is not None:
        return Reply(scripted, words, limit)
    seed = _option("seed", options, view) or 0
    key = json.dumps([view.manifest.digest, system, conversation, seed], sort_keys=True)
    reply_id = hashlib.sha256(key.encode()).hexdigest()[:12]
    fmt = req["format"]
    json_mode = fmt == "json" or isinstance(fmt, dict) or bool(_JSON_WORD.search(system))
    json_mode = json_mode or any(_JSON_WORD.search(content) for _, content in conversation)
    if json_mode:
        text = json.dumps({"model": display, "prompt": prompt, "reply_id": reply_id},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return Reply(text, words, limit)
    return Reply(f"Test double reply {reply_id} from {display}: {prompt}", words, limit)


def chunk_line(model: str, created: str, chunk: str, chat: bool) -> gojson.Struct:
    out = gojson.Struct(model=model, created_at=created)
    if chat:
        out["message"] = gojson.Struct(role="assistant", content=chunk)
    else:
        out["response"] = chunk
    out["done"] = False
    return out


def is_unload(keep_alive: Any) -> bool:
    """keep_alive of zero ("0", 0, "0s", "0m"...): an empty request then unloads the model."""
    if isinstance(keep_alive, (int, float)) and not isinstance(keep_alive, bool):
        return keep_alive == 0
    return isinstance(keep_alive, str) and re.fullmatch(r"0+(\.0*)?(ns|us|µs|ms|s|m|h)?", keep_alive.strip()) is not None


def final_line(model: str, created: str, reply: Reply | None, chat: bool, text: str = "",
               reason: str = "load") -> gojson.Struct:
    out = gojson.Struct(model=model, created_at=created)
    if chat:
        out["message"] = gojson.Struct(role="assistant", content=text)
    else:
        out["response"] = text
    out["done"] = True
    if reply is None:
        out["done_reason"] = reason
        return out
    out["done_reason"] = reply.done_reason
    if not chat:
        total = reply.prompt_eval_count + max(1, len(reply.chunks))
        out["context"] = list(range(1, min(total, 64) + 1))
    out.update(reply.metrics())
    return out
