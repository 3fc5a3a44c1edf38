"""`ilab model chat`: interactive terminal chat, or one answer with -qq."""

from __future__ import annotations

import click


@click.command(short_help="Chat with a model in the terminal (or -qq for one answer).")
@click.argument("question", nargs=-1)
@click.option("-m", "--model", "--model-path", "model", default=None,
              help="Model name or path loaded in-process (default: config chat.model); with --endpoint-url, "
                   "the model name to request (default: the first one the endpoint serves).")
@click.option("--endpoint-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key", envvar="LABRADOR_API_KEY", default=None, help="API key for --endpoint-url.")
@click.option("-qq", "--quick-question", "quick", default=None, metavar="QUESTION",
              help="Print one answer to QUESTION on stdout and exit.")
@click.option("-c", "--context", default=None,
              help="System prompt: 'default', 'none', a file path or the text itself (default: config chat.context).")
@click.option("-g", "--greedy", is_flag=True, default=None, help="Greedy decoding (temperature 0).")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature (default 0.7).")
@click.option("--max-tokens", type=click.IntRange(1), default=None,
              help="Longest answer in tokens (default: config chat.max_tokens, else 512).")
@click.option("--seed", type=int, default=None, help="Sampling seed.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for an in-process model.")
def chat(question: tuple[str, ...], model: str | None, endpoint_url: str | None, api_key: str | None,
         quick: str | None, context: str | None, greedy: bool | None, temperature: float | None,
         max_tokens: int | None, seed: int | None, threads: int | None) -> None:
    """Chat with a model in the terminal (streamed markdown; /h lists the slash commands).

    A QUESTION given as arguments is asked first; with -qq the answer is printed plain and the command exits.
    """
    from pathlib import Path

    from labrador.chat import ChatSession, ask_once, connect, system_prompt
    from labrador.config import load_config
    from labrador.llm.base import SamplingParams

    cfg = load_config().chat
    greedy = cfg.greedy if greedy is None else greedy
    params = SamplingParams(temperature=0.0 if greedy else (0.7 if temperature is None else temperature),
                            top_p=1.0 if greedy else 0.95, max_tokens=max_tokens or cfg.max_tokens or 512,
                            seed=seed)
    system = system_prompt(context if context is not None else cfg.context)
    client, streamer, name = connect(model or (None if endpoint_url else cfg.model), endpoint_url, api_key,
                                     n_threads=threads)
    try:
        session = ChatSession(name, system, Path(cfg.logs_dir).expanduser())
        if quick is not None:
            answer = ask_once(client, quick, system, params)
            session.add("user", quick)
            session.add("assistant", answer)
            click.echo(answer)
            return
        from rich.console import Console

        from labrador.chat.terminal import ChatLoop

        loop = ChatLoop(streamer, session, params, Console(highlight=False))
        where = endpoint_url or "in-process"
        if question:
            loop.answer(" ".join(question))
        loop.run(f"Chatting with {name} ({where}). Type /h for help, /q to quit.")
    finally:
        client.close()
