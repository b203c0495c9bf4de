"""``headwidget paths`` and ``headwidget show --paths``.

``headwidget paths MODEL --tasks ... --scores OUT.npz --top 10 -o paths.npz`` traces the direct
paths among each task's top heads with :func:`headwidget.trace_paths` and saves the
:class:`~headwidget.HeadPaths`; ``--shard I/N`` traces share I of N of the tasks (in order;
a SLURM array: one share each) into ``paths.part-I-of-N.npz``, which ``headwidget merge``
joins.
``headwidget show OUT.npz --paths paths.npz`` prints each task's strongest edges. Nothing here
imports torch until a command runs.

>>> from headwidget.cli import main
>>> main(["paths", "demo", "--tasks", "operations", "--only", "next year", "--scores",
...       "ops.npz", "-o", "paths.npz"])                                   # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import UsageError, log, shown
from .score import add_one_device_arguments, load_model_on_one_device, load_task_specs, merge

__all__ = ["add_paths_command", "add_show_paths_arguments", "merge_shards", "run_paths",
           "show_paths"]  # fmt: skip

_EXAMPLES = """\
examples:
  headwidget score demo --tasks operations --max-examples 8 -o ops.npz
  headwidget paths demo --tasks operations --only "next year" --max-examples 8 \\
      --scores ops.npz --top 10 -o paths.npz
  headwidget paths demo --tasks operations --heads 16.0 18.6 17.3 -o paths.npz
  headwidget show ops.npz --paths paths.npz --edges 5
  # a SLURM array, one share of the tasks each, then merge:
  sbatch --array=0-3 --wrap "headwidget paths MODEL --tasks operations --scores s.npz -o p.npz"
  headwidget merge p.part-*-of-4.npz -o p.npz
"""


def _head(text: str) -> tuple[int, int]:
    found = re.fullmatch(r"\s*(?:L(\d+)H(\d+)|(\d+)[.:](\d+))\s*", text, re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"expected LAYER.HEAD (16.0) or L16H0, got {text!r}")
    layer, head = (int(g) for g in found.groups() if g is not None)
    return layer, head


def add_paths_command(
    commands: Any, positive: Callable[[str], int], wrap: Callable[[str], str]
) -> None:
    """Add ``paths`` to the command's subparsers (``positive``: the whole-number >= 1 type)."""
    paths = commands.add_parser(
        "paths",
        help="trace the direct paths between each task's top heads",
        description=wrap(
            "For each task, the direct paths among its top heads (--scores and --top) or among"
            " --heads: every sender into every receiver of a later layer through its query, key"
            " or value, and every head into the logits, each the metric's mean drop when only"
            " that input reads the residual stream without the sender's output (exact path"
            " patching on the replay engine, or --method attribution: first order, --refine K"
            " edges exactly); saved as HeadPaths (.npz). See help(headwidget.trace_paths)."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = paths.add_argument
    add("model", metavar="MODEL", help="a Hugging Face hub id, a local model folder, or 'demo'")
    add("--tasks", nargs="+", required=True, metavar="SPEC",
        help="a suite name (operations, cognitive) or a JSONL/CSV task file")  # fmt: skip
    add("-o", "--output", required=True, metavar="PATHS.npz", help="output file")
    add("--scores", metavar="SCORES.npz", help="the HeadScores of this model the heads come from")
    add("--top", type=positive, default=10, metavar="K", help="each task's top K heads (10)")
    add("--heads", nargs="+", type=_head, metavar="L.H",
        help="these heads for every task instead of --scores (16.0 or L16H0)")  # fmt: skip
    add("--via", nargs="+", choices=("q", "k", "v", "logits"), default=["q", "k", "v", "logits"],
        help="the channels (all four)")  # fmt: skip
    add("--method", choices=("exact", "attribution"), default="exact",
        help="exact path patching (default) or first-order attribution")  # fmt: skip
    add("--refine", type=int, default=0, metavar="K",
        help="attribution: the K strongest estimates (and K/2 others) exactly")  # fmt: skip
    add(
        "--ablation", choices=("mean", "zero"), default="mean", help="what replaces a sender (mean)"
    )
    add("--metric", choices=("logprob", "prob", "accuracy", "logit_diff"), default="logprob",
        help="what the paths carry (logprob)")  # fmt: skip
    add("--max-examples", type=positive, metavar="N", help="examples per task")
    add("--only", nargs="+", metavar="NAME", help="keep only the tasks of these names")
    add("--n-shots", type=int, default=3, metavar="N", help="suites: shots (3)")
    add("--seed", type=int, default=0, metavar="N", help="suites: seed (0); refine's sample")
    add("--batch-size", type=positive, metavar="N", help="sequences per forward pass")
    add("--shard", metavar="I/N", help="trace share I (0-based) of N of the tasks, in order,"
        " into OUT.part-I-of-N.npz")  # fmt: skip
    add_one_device_arguments(paths)


def add_show_paths_arguments(show: argparse.ArgumentParser) -> None:
    """``show``'s ``--paths`` and ``--edges``."""
    show.add_argument("--paths", metavar="PATHS.npz",
                      help="a 'headwidget paths' file: each task's strongest edges")  # fmt: skip
    show.add_argument("--edges", type=int, default=10, metavar="K",
                      help="with --paths: edges per task (10)")  # fmt: skip


def _shard(args: argparse.Namespace, tasks: list[Any]) -> tuple[list[Any], str]:
    if not args.shard:
        return tasks, args.output
    from ..sweep.units import parse_shard

    try:
        index, count = parse_shard(args.shard)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if count > len(tasks):
        raise UsageError(f"--shard {args.shard}: only {len(tasks)} tasks to share")
    out = Path(args.output)
    share = tasks[index * len(tasks) // count : (index + 1) * len(tasks) // count]
    return share, str(out.with_name(f"{out.stem}.part-{index}-of-{count}.npz"))


def run_paths(args: argparse.Namespace) -> int:
    """``headwidget paths``: the tasks and heads checked, the model loaded as ``score`` loads
    it, the paths traced and saved."""
    from ..scores import HeadScores
    from ..scoring.paths import trace_paths

    if (args.scores is None) == (args.heads is None):
        raise UsageError("give --scores SCORES.npz (with --top K) or --heads L.H ..., not both")
    if args.refine and args.method != "attribution":
        raise UsageError("--refine is for --method attribution")
    tasks, output = _shard(args, load_task_specs(args.tasks, args))
    scores = HeadScores.load(args.scores) if args.scores else None
    if scores is not None:
        missing = [t.name for t in tasks if t.name not in scores.tasks]
        if missing:
            raise UsageError(f"--scores {args.scores} has no task {shown(missing[0])!s}")
    model, tokenizer, model_id = load_model_on_one_device(args)
    paths = trace_paths(
        model, tokenizer, tasks, heads=args.heads, top=args.top, scores=scores, via=args.via,
        ablation=args.ablation, metric=args.metric, method=args.method,
        batch_size=args.batch_size, progress=not args.quiet, refine=args.refine, seed=args.seed,
    )  # fmt: skip
    if model_id != "demo":
        paths.meta["model"] = model_id
    if args.shard:
        paths.meta["shard"] = [int(n) for n in args.shard.split("/")]
    log(f"wrote {paths.save(output)}")
    return 0


def merge_shards(args: argparse.Namespace) -> int:
    """``headwidget merge``: the shards of ``headwidget paths`` joined here, those of
    ``headwidget score`` by :func:`.score.merge`."""
    from ..scores import HeadPaths, PathsFileError
    from ..sweep.driver import check_output

    try:
        first = HeadPaths.load(args.parts[0])
    except (PathsFileError, FileNotFoundError):  # score parts (or none): merge says which
        return merge(args)
    check_output(args.output)
    parts = [first, *(HeadPaths.load(p) for p in args.parts[1:])]
    shards = [part.meta.get("shard") for part in parts]
    for name, shard in zip(args.parts, shards, strict=True):
        if not (isinstance(shard, list) and len(shard) == 2):
            raise ValueError(f"{name} is not a part file (no meta['shard']): only the files"
                             " 'headwidget paths --shard I/N' writes can be merged")  # fmt: skip
    count = shards[0][1]
    have = sorted(index for index, n in shards if n == count)
    if len(have) != len(shards) or have != sorted(set(have)):
        raise ValueError(f"the parts are not distinct shards of one {count}-way split: {shards}")
    missing = sorted(set(range(count)) - set(have))
    if missing:
        raise ValueError(f"shard {missing[0]} of {count} is missing")
    order = sorted(range(len(parts)), key=lambda i: shards[i][0])  # the tasks in their order
    merged = HeadPaths.merge([parts[i] for i in order])
    merged.meta.pop("shard", None)
    log(f"merged {len(args.parts)} parts into {merged.save(args.output)}")
    return 0


def show_paths(scores: Any, args: argparse.Namespace) -> Any:
    """``show --paths``: each task's ``--edges`` strongest edges (by size), with the standard
    error where per-example effects were kept; ``~`` marks a first-order estimate. Returns the
    HeadPaths (``--html`` / ``--png`` draw them)."""
    from ..scores import HeadPaths

    if args.edges < 0:
        raise UsageError(f"--edges must be >= 0, got {args.edges}")
    paths = HeadPaths.load(args.paths)
    if (paths.n_layers, paths.n_heads) != (scores.n_layers, scores.n_heads):
        raise ValueError(
            f"--paths {args.paths}: {paths.n_layers} layers x {paths.n_heads} heads, but the"
            f" scores have {scores.n_layers} x {scores.n_heads} (not the same model)"
        )
    meta = paths.meta
    metric, ablation = shown(meta.get("metric", "?")), shown(meta.get("ablation", "?"))
    print(f"\npaths ({shown(args.paths)}: {shown(paths.method)}, metric {metric},"
          f" ablation {ablation})")  # fmt: skip
    for name in paths.tasks:
        heads = " ".join(f"L{layer}H{head}" for layer, head in paths.heads[name])
        n = len(paths.task_rows(name))
        examples = paths.effects[name].shape[1] if name in paths.effects else "?"
        print(f"\n{shown(name)}  ({n} edges among {heads or 'no heads'}; {examples} examples)")
        for rank, edge in enumerate(paths.top_edges(name, args.edges), 1):
            mark = " " if edge.exact else "~"
            print(f"  {rank:3d}.{mark}{shown(edge)}")
        if name in meta.get("agreement", {}):
            record = meta["agreement"][name]
            print(f"  attribution vs exact on {record.get('exact_cells')} refined edges:"
                  f" Spearman {record.get('spearman', float('nan')):.2f}")  # fmt: skip
    return paths
