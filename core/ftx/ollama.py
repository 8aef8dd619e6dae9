"""An Ollama ``Modelfile`` for an exported GGUF: ``FROM``, the end-of-turn stop token, the
system prompt when there is one, and a ``TEMPLATE`` for the ChatML and Llama 3 families
(elsewhere none: Ollama then uses the chat template inside the GGUF). Pure text; imports
nothing heavy."""

from __future__ import annotations

CHATML_TEMPLATE = """\
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

LLAMA3_TEMPLATE = """\
{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""


def template_family(chat_template: str | None) -> str | None:
    """``chatml``, ``llama3`` or None, from a Jinja chat template's markers."""
    if not chat_template:
        return None
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    return None


def modelfile(
    gguf_name: str, chat_template: str | None, stop: str | None, system: str | None = None
) -> str:
    """The Modelfile text for ``./gguf_name``."""
    lines = [f"FROM ./{gguf_name}", ""]
    family = template_family(chat_template)
    if family is not None:
        body = CHATML_TEMPLATE if family == "chatml" else LLAMA3_TEMPLATE
        lines += [f'TEMPLATE """{body}"""', ""]
    if system:
        lines += [f'SYSTEM """{system}"""', ""]
    if stop:
        lines.append(f'PARAMETER stop "{stop}"')
    return "\n".join(lines).rstrip() + "\n"
