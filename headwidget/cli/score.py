"""``headwidget score`` (a sweep: one process, torchrun ranks or a shard) and ``headwidget
merge`` (shard files into one)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import UsageError, log

__all__ = [
    "add_one_device_arguments",
    "load_model",
    "load_model_on_one_device",
    "load_task_specs",
    "merge",
    "score",
]


def load_task_specs(specs: Sequence[str], args: argparse.Namespace) -> list[Any]:
    """The tasks of ``--tasks`` (suites or files), as ``--max-examples``, ``--n-shots``,
    ``--seed`` and ``--only`` say."""
    from ..tasks import Task, available_suites, load_suite, load_tasks

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
            raise UsageError(
                f"--tasks {spec!r} is neither a suite ({', '.join(available_suites())}) nor an"
                " existing file"
            )
    if args.only:
        unknown = sorted(set(args.only) - {t.name for t in tasks})
        if unknown:
            names = [t.name for t in tasks]
            raise UsageError(f"--only {unknown}: no such task; the tasks are {names}")
        tasks = [t for t in tasks if t.name in set(args.only)]
    return tasks


def _default_device(ranks: Any, device: str | None) -> str:
    import torch

    from ..sweep.distributed import rank_device

    cuda = torch.cuda.is_available()
    chosen = rank_device(device, ranks, cuda)
    return chosen or ("cuda" if cuda else "cpu")


def load_model(args: argparse.Namespace, device: str | None) -> tuple[Any, Any, str]:
    import torch

    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    if args.model == "demo":
        from ..demo import load_demo_model

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


def add_one_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--dtype`` and ``-q`` of a command whose model sits on one device (no
    ``--device-map``): what :func:`load_model_on_one_device` reads."""
    add = parser.add_argument
    add("--device", metavar="D", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    add("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="float32",
        help="weights' dtype (default float32; auto: the checkpoint's)")  # fmt: skip
    add("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(device_map=None, offload_dir=None)


def load_model_on_one_device(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """:func:`load_model` for a command of :func:`add_one_device_arguments`: on ``--device``
    (default: cuda when available), saying so unless ``--quiet``."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not args.quiet:
        log(f"loading {args.model} ...")
    return load_model(args, device)


def _check_device(device: str) -> None:
    """``--device``: a device this machine has (before the model is loaded)."""
    import torch

    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(
            f"--device {device}: not a device; use cpu, cuda, cuda:1, mps ..."
        ) from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(
                f"--device {device}: this machine has no CUDA device; use --device cpu"
            )
        if chosen.index is not None and chosen.index >= count:
            raise UsageError(
                f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to"
                f" cuda:{count - 1}"
            )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: MPS is not available here; use --device cpu")


def score(args: argparse.Namespace) -> int:
    from ..sweep import run_sweep
    from ..sweep.distributed import ranks_from_env
    from ..sweep.driver import check_output
    from ..sweep.units import ShardCountError, parse_shard, shard_from_env

    ranks = ranks_from_env()
    if args.device_map and ranks.distributed:
        raise UsageError(
            "--device-map auto spreads one model over all of a node's GPUs: run one process"
            " per node (use --shard / a SLURM array across nodes), not torchrun"
        )
    if args.device_map and args.model == "demo":
        raise UsageError("--device-map is for hub or folder models; the demo model fits one device")
    if args.offload_dir and not args.device_map:
        raise UsageError("--offload-dir needs --device-map auto")
    try:
        shard = parse_shard(args.shard) if args.shard else shard_from_env()
    except ValueError as err:
        raise UsageError(str(err)) from None
    from ..methods.options import ScoringOptions

    try:
        options = ScoringOptions(
            method=args.method, ablation=args.ablation, metric=args.metric,
            batch_size=args.batch_size, keep_examples=args.examples, add_bos=args.add_bos,
            method_options=dict(args.option),
        )  # fmt: skip
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    layout_function = _layout_function(args.head_layout) if args.head_layout else None
    tasks = load_task_specs(args.tasks, args)
    check_output(args.output, shard)  # a folder, an unwritable place, a run already on it
    device = None if args.device_map else _default_device(ranks, args.device)
    if args.device is not None:
        _check_device(device or args.device)
    say = (lambda line: None) if args.quiet else log
    say(f"loading {args.model} ...")
    model, tokenizer, model_id = load_model(args, device)
    layout = None if layout_function is None else _call_layout(layout_function, model, args)
    try:
        run_sweep(
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
            log=say,
        )
    except ShardCountError as err:
        raise UsageError(str(err)) from None
    return 0


def _layout_function(spec: str) -> Any:
    """``--head-layout MODULE:NAME``: the function NAME of the importable MODULE."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise UsageError(f"--head-layout {spec!r}: write it as MODULE:NAME, e.g. my_layouts:mamba")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise UsageError(f"--head-layout {spec!r}: {type(err).__name__}: {err}") from None
    if not callable(found):
        raise UsageError(
            f"--head-layout {spec!r} is a {type(found).__name__}; it must name a function that"
            " takes the loaded model and returns a headwidget.HeadLayout"
        )
    return found


def _call_layout(function: Any, model: Any, args: argparse.Namespace) -> Any:
    from ..modeling.adapters import HeadLayout

    layout = function(model)
    if not isinstance(layout, HeadLayout):
        raise UsageError(
            f"--head-layout {args.head_layout!r} returned a {type(layout).__name__}, not a"
            " headwidget.HeadLayout"
        )
    return layout


def merge(args: argparse.Namespace) -> int:
    from ..sweep import merge_parts
    from ..sweep.driver import check_output

    check_output(args.output)
    scores = merge_parts(args.parts)
    path = scores.save(args.output)
    log(f"merged {len(args.parts)} parts into {path}")
    return 0
