"""Replays a recorded request load through Curator (online mode) against an OpenAI-compatible server.

Run by `codeclm bench --peers` (bench/peers.ts) inside a venv holding the pinned
bespokelabs-curator. Input: a JSONL file, one chat-completions request body per line, exactly as
codeclm's saturation run sent them (model, messages, max_tokens, temperature, response_format).
Each body goes out as one Curator row: the messages are the row's prompt and every other field rides
in the row's `generation_params`, which Curator copies into the request body, so the server sees
the same bodies in the same order. Curator's own rate limiter holds `--rpm` requests per minute.

Prints one JSON line on stdout at the end: {"rows": N, "responses": M, "seconds": S}.
"""

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", required=True, help="JSONL of request bodies")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:1234/v1")
    parser.add_argument("--rpm", type=int, required=True)
    parser.add_argument("--tpm", type=int, required=True)
    args = parser.parse_args()

    # No downloads at run time: tiktoken's cl100k_base (which Curator loads for token estimates)
    # comes from the copy litellm ships, a dependency of Curator.
    import importlib.util

    litellm = importlib.util.find_spec("litellm")
    if litellm and litellm.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
        os.environ["TIKTOKEN_CACHE_DIR"] = os.path.join(
            list(litellm.submodule_search_locations)[0], "litellm_core_utils", "tokenizers"
        )
    # Imported after the environment is set (telemetry off, cache dir, local cost map: bench/peers.ts).
    from bespokelabs import curator

    rows = []
    with open(args.requests, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            body = json.loads(line)
            messages = body.pop("messages")
            # Curator sets model from the LLM; the row's generation_params overwrite it per request.
            rows.append({"messages": json.dumps(messages), "generation_params": json.dumps(body)})
    if not rows:
        print("curator_driver: no requests in " + args.requests, file=sys.stderr)
        return 2

    class Replay(curator.LLM):
        def prompt(self, row):
            return json.loads(row["messages"])

        def parse(self, row, response):
            return {"chars": len(response) if isinstance(response, str) else 0}

    first_model = json.loads(rows[0]["generation_params"]).get("model", "sim")
    llm = Replay(
        model_name=first_model,
        backend="openai",
        backend_params={
            "base_url": args.base_url,
            "api_key": os.environ.get("OPENAI_API_KEY", "not-set"),
            "max_requests_per_minute": args.rpm,
            "max_tokens_per_minute": args.tpm,
            "require_all_responses": False,
        },
    )
    started = time.time()
    result = llm(rows)
    seconds = time.time() - started
    try:
        responses = len(result)
    except TypeError:
        responses = len(result.dataset)
    print(json.dumps({"rows": len(rows), "responses": responses, "seconds": round(seconds, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
