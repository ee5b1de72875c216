"""`make demo`: this repository's models built against the Ollama test double, no Ollama needed.

The double pretends the registry has qwen2.5:0.5b (a tiny generated GGUF stands in for the
real weights), so the digests printed here are the double's, not a real server's, and the
answers the smoke tests check are scripted (the double runs no model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gguf_maker import make_gguf  # noqa: E402
from tests.ollama_double import OllamaDouble, publish_model  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="doit-ollama-demo-") as tmp:
        work = Path(tmp)
        publish_model(work / "registry", "qwen2.5:0.5b", make_gguf(work / "base.gguf", 1))
        repo = work / "repo"
        shutil.copytree(ROOT / "models", repo / "models")
        shutil.copy(ROOT / "dodo.py", repo / "dodo.py")
        with OllamaDouble(work / "server", registry_dir=work / "registry") as double:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
            env["OLLAMA_HOST"] = double.host
            double.controls.set_reply(
                "my-bot:v1.1",
                '{"answer": "I do not know; please ask the support team.", "confidence": 0.3, '
                '"sources": []}')
            steps = (["build"], ["build"], ["verify"], ["status"], ["lint"], ["test"],
                     ["promote", "my-bot:prod", "my-bot:v1.1"], ["verify"], ["graph"])
            for args in steps:
                print(f"\n$ doit {' '.join(args)}", flush=True)
                code = subprocess.run([sys.executable, "-m", "doit", *args], cwd=repo, env=env,
                                      check=False).returncode
                if code != 0:
                    print(f"(exit code {code})")
                    return code
            print("\n$ cat lock/models.lock")
            print((repo / "lock" / "models.lock").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
