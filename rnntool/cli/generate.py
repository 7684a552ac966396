"""`rnntool generate`."""


import sys
from typing import Annotated, Optional

import typer

from rnntool.cli.app import app
from rnntool.cli.console import console
from rnntool.cli.options import (
    DeviceOpt,
    InferencePrecisionOpt,
    OnBadUtf8Opt,
    QuietOpt,
    RegistryOpt,
    TemperatureOpt,
    ThreadsOpt,
    TopKOpt,
    TopPOpt,
    set_threads,
    stdin_is_tty,
)


@app.command("generate")
def generate(
    model: Annotated[list[str], typer.Option(
        "-m", "--model", metavar="MODEL", show_default=False,
        help="Model: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory; give -m again for an ensemble "
             "(the mean of the models' next-token distributions; they must share their tokenizer).")],
    prompt: Annotated[
        Optional[str],
        typer.Option("--prompt", help="Text to continue. Without it: one prompt per stdin line; "
                     "unconditional when stdin is a terminal or empty.", show_default=False),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens to generate per output.")] = 100,
    num_samples: Annotated[int, typer.Option("-n", "--num-samples", min=1, help="Outputs per prompt.")] = 1,
    lines: Annotated[int, typer.Option(
        "--lines", min=0, metavar="N",
        help="Stream-mode models (lines joined by <eos>): go on across line ends until N lines, 0 = until "
             "--max-tokens; outputs of more than one line are followed by a blank line.")] = 1,
    temperature: TemperatureOpt = 1.0,
    top_k: TopKOpt = 0,
    top_p: TopPOpt = 1.0,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the likeliest token.")] = False,
    beam: Annotated[Optional[int], typer.Option(
        "--beam", "-b", min=1, metavar="K", show_default=False,
        help="Beam search with K hypotheses (1 = greedy) instead of sampling; -n N prints the N best.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for sampling: the same seed repeats exactly.",
                                                show_default=False)] = None,
    device: DeviceOpt = "auto",
    precision: InferencePrecisionOpt = "fp32",
    threads: ThreadsOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per output (JSON Lines) with "
                                           "token ids and log-probs.")] = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
    on_bad_utf8: OnBadUtf8Opt = "strict",
) -> None:
    """Generate text from a language model; one output per line, streamed as it is produced.

    Stops at <eos> or --max-tokens. Sampling by default (--temperature, --top-k, --top-p);
    --greedy or --beam K for the likeliest output.
    """
    import torch

    from rnntool.kinds.lm.model import open_ensemble
    from rnntool.kinds.lm.generate import GenerateSettings, Sample
    from rnntool.kinds.lm.generate import generate as generate_text
    from rnntool.layers.weights import model_device
    from rnntool.textio import read_lines

    console.quiet = quiet
    set_threads(threads)
    settings = GenerateSettings(max_tokens=max_tokens, num_samples=num_samples, greedy=greedy, beam=beam or 0,
                                lines=lines, temperature=temperature, top_k=top_k, top_p=top_p).validate()
    lm = open_ensemble(model, registry, device, precision)
    generator = torch.Generator(device=model_device(lm.model))
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    if prompt is not None:
        prompts = iter([prompt])
    elif stdin_is_tty():
        prompts = iter([""])
    else:
        prompts = read_lines("-", on_bad_utf8=on_bad_utf8, allow_empty=True)
    out = sys.stdout
    for text in _with_default(prompts):
        for event in generate_text(lm, text, settings, generator=generator):
            if isinstance(event, Sample):
                if json_out:
                    console.emit_json(event.to_dict())
                else:
                    console.emit("" if settings.lines == 1 else "\n")  # a blank line ends a multi-line output
            elif not json_out:
                out.write(event)
                out.flush()


def _with_default(prompts):
    """The prompts, or one empty (unconditional) prompt when there are none (empty stdin)."""
    empty = True
    for p in prompts:
        empty = False
        yield p
    if empty:
        yield ""
