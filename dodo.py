"""This repository's own use of doit-ollama: copy this file into yours.

`doit build` builds every Modelfile under models/ and records it in lock/models.lock;
`doit list` shows the other commands.
"""

from doit_ollama.doit_tasks import *  # noqa: F403
