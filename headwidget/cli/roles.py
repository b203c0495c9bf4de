"""``headwidget roles`` and ``headwidget show --roles``.

``headwidget roles MODEL -o roles.npz`` scores every head for each attention role with
:func:`headwidget.detect_heads` and saves the maps as a HeadScores file; ``headwidget show
scores.npz --roles roles.npz`` lists each task's top heads again with the roles they pass the
threshold for. Nothing here imports torch until a command runs.

>>> from headwidget.cli import main
>>> main(["roles", "demo", "-o", "roles.npz", "--roles", "induction"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .common import log
from .score import add_one_device_arguments, load_model_on_one_device

__all__ = [
    "ROLE_NAMES",
    "add_roles_command",
    "add_show_roles_arguments",
    "load_roles",
    "run_roles",
    "show_roles",
]

ROLE_NAMES = ("previous token", "induction", "duplicate token", "first token", "current token")
"""The built-in roles (``headwidget.methods.patterns.BUILTIN_ROLES``), without importing torch."""

_EXAMPLES = """\
examples:
  headwidget roles demo -o roles.npz
  headwidget roles ./my-model -o roles.npz --roles induction previous-token --n-sequences 32
  headwidget show roles.npz --top 5                       # each role's strongest heads
  headwidget show scores.npz --roles roles.npz            # each task's top heads, with roles
"""


def add_roles_command(
    commands: Any, positive: Callable[[str], int], wrap: Callable[[str], str]
) -> None:
    """Add ``roles`` to the command's subparsers (``positive``: the whole-number >= 1 type)."""
    names = [name.replace(" ", "-") for name in ROLE_NAMES]
    roles = commands.add_parser(
        "roles",
        help="score every head for attention roles (induction, previous token, ...)",
        description=wrap(
            "Score every attention head of MODEL for each role by its attention pattern on"
            " random token sequences (repeated ones for induction and duplicate token), as"
            " TransformerLens's head detector does, and save one map per role as HeadScores"
            " (.npz; units: attention share). See help(headwidget.detect_heads)."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = roles.add_argument
    add("model", metavar="MODEL", help="a Hugging Face hub id, a local model folder, or 'demo'")
    add("-o", "--output", required=True, metavar="OUT.npz", help="output file")
    add("--roles", nargs="+", choices=names, metavar="ROLE",
        help=f"roles to score (default all: {', '.join(names)})")  # fmt: skip
    add("--n-sequences", type=positive, default=8, metavar="N",
        help="random sequences of each kind (8)")  # fmt: skip
    add("--seq-len", type=positive, default=64, metavar="N",
        help="random tokens per sequence, after the BOS token (64)")  # fmt: skip
    add("--seed", type=int, default=0, metavar="N", help="seed of the sequences (0)")
    add("--batch-size", type=positive, metavar="N",
        help="sequences per forward pass (default: from free memory)")  # fmt: skip
    add("--exclude-bos", action="store_true", help="leave attention to the first token out")
    add("--exclude-current-token", action="store_true",
        help="leave attention of a position to itself out")  # fmt: skip
    add("--error-measure", choices=("mul", "abs"), default="mul",
        help="mul: the attention share on the pattern (default); abs: 1 - L1 distance")  # fmt: skip
    add("--rows", choices=("pattern", "all"), default="pattern",
        help="positions counted: where the pattern has a target (default), or all of them,"
        " as TransformerLens")  # fmt: skip
    add_one_device_arguments(roles)


def add_show_roles_arguments(show: argparse.ArgumentParser) -> None:
    """``show``'s ``--roles`` and ``--role-threshold``."""
    show.add_argument(
        "--roles",
        metavar="ROLES.npz",
        help="a 'headwidget roles' file of the same model: list each task's top heads again"
        " with their roles",
    )
    show.add_argument(
        "--role-threshold",
        type=float,
        metavar="X",
        help="a head has a role when its role score is at least X (default 0.4: 40%% of its"
        " attention on the role's pattern)",
    )


def run_roles(args: argparse.Namespace) -> int:
    """``headwidget roles``: load the model as ``score`` does, score every head, save."""
    from ..methods.roles import detect_heads

    model, tokenizer, model_id = load_model_on_one_device(args)
    roles = [name.replace("-", " ") for name in args.roles] if args.roles else None
    scores = detect_heads(
        model, tokenizer, roles, n_sequences=args.n_sequences, seq_len=args.seq_len,
        seed=args.seed, batch_size=args.batch_size, progress=not args.quiet,
        exclude_bos=args.exclude_bos, exclude_current_token=args.exclude_current_token,
        error_measure=args.error_measure, rows=args.rows,
    )  # fmt: skip
    if model_id != "demo":
        scores.meta["model"] = model_id
    path = scores.save(args.output)
    log(f"wrote {path}")
    return 0


def load_roles(scores: Any, args: argparse.Namespace) -> Any:
    """``show --roles``' file, checked against the scores' layers x heads."""
    from ..scores import HeadScores

    roles = HeadScores.load(args.roles)
    if roles.shape[1:] != scores.shape[1:]:
        raise ValueError(
            f"--roles {args.roles}: {roles.n_layers} layers x {roles.n_heads} heads, but the"
            f" scores have {scores.n_layers} x {scores.n_heads} (not the same model)"
        )
    return roles


def show_roles(scores: Any, args: argparse.Namespace, roles: Any) -> None:
    """``show --roles``: each task's ``--top`` heads with the roles they pass the threshold
    for and their role scores; ``-`` for none."""
    from ..methods.roles import ROLE_THRESHOLD, head_roles

    threshold = ROLE_THRESHOLD if args.role_threshold is None else args.role_threshold
    found = head_roles(roles, threshold)
    units = roles.meta.get("units", "role score")
    print(f"\nroles of the top heads ({args.roles}: {units} >= {threshold:g})")
    for name in scores.tasks:
        print(f"\n{name}")
        for rank, (layer, head, value) in enumerate(scores.top_heads(name, k=args.top), 1):
            named = [
                f"{role} {roles.values[roles.tasks.index(role), layer, head]:.2f}"
                for role in found.get((layer, head), [])
            ]
            print(f"  {rank:3d}. L{layer}H{head}  {value:+.5g}  {', '.join(named) or '-'}")
