"""The ``headwidget`` command: score, merge and show head importance without Jupyter.

``headwidget roles`` scores every head for attention roles (:func:`headwidget.detect_heads`);
``headwidget paths`` traces the direct paths between each task's top heads
(:func:`headwidget.trace_paths`);
``headwidget score`` runs a sweep (:func:`headwidget.sweep.run_sweep`) in one process, under
torchrun, or as one shard of a SLURM array; ``headwidget merge`` joins shard files
(:func:`headwidget.sweep.merge_parts`); ``headwidget show`` prints the top heads and writes the
standalone page or a static figure. Exit codes: 0 done, 1 failed (the message says why), 2 bad
usage. Progress goes to stderr; stdout carries only what ``show`` prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .common import UsageError
from .parser import build_parser
from .paths import merge_shards, run_paths
from .roles import run_roles
from .score import score
from .show import show

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    handler = {"score": score, "merge": merge_shards, "show": show, "roles": run_roles,
               "paths": run_paths}[args.command]  # fmt: skip
    try:
        output = getattr(args, "output", None)
        if output is not None and not output.lower().endswith(".npz"):
            raise UsageError(f"-o {output!r}: the output is a HeadScores file, name it *.npz")
        return handler(args)
    except UsageError as err:
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
