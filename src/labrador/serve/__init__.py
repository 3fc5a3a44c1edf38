"""`ilab model serve`: an OpenAI-compatible HTTP server (llama.cpp, transformers, or vLLM handed the port),
and background servers (`labrador.serve.background.ensure_server` / `stop_server`). See docs/serve_chat.md."""
