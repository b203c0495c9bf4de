"""Train the demo model shipped in headwidget/data/demo_model (CPU, deterministic).

A 6-layer, 8-head Llama (grouped-query attention, hidden size 128) with a word-level tokenizer
over the built-in suites' vocabulary, trained on few-shot prompts of the "operations" and
"cognitive" suites. Each task's (source, target) pairs are split by a seeded shuffle: 80 % train,
20 % held out. Training sequences are 0-4 demonstrations plus a query, all drawn from the train
pairs, in the suites' own templates; the loss is on every target (demonstrations' and query's),
plus a quarter weight on the other tokens. Two additions teach copying as a skill rather than a
table: the copying tasks also copy other vocabulary words (never their held-out sources), and a
stream of runs of random vocabulary words said twice (any word, held-out sources included: a run
is not a copying pair) makes every word a prediction target somewhere. Held-out accuracy is
measured on prompts whose query is a held-out pair (demonstrations from the train pairs), after
reloading the saved float16 weights, i.e. on exactly what ships.

    python scripts/train_demo_model.py                # ~11 min on one CPU core
    python scripts/train_demo_model.py --steps 20 --out /tmp/demo   # a quick smoke run

Same seed, same thread count, same machine: the same weights, bit for bit (the report records
their SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from headwidget import Task, load_suite
from headwidget.demo import demo_model_config, word_level_tokenizer
from headwidget.suites import few_shot_task
from headwidget.validation import evaluate_tasks

SUITES = ("operations", "cognitive")
HELDOUT_FRACTION = 0.2
# Copying is a rule, not a fact: these tasks also train on copies of other vocabulary words.
COPY_TASKS = ("copying", "name copying")
# A third stream of batches, beside the suites: runs of random vocabulary words said twice.
# Every word is a prediction target there, so no word is one the model never outputs, and
# copying from context is learned as a skill (the copying tasks' held-out pairs test it).
REPEAT = "repeat"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "headwidget" / "data" / "demo_model"


@dataclass
class TaskData:
    suite: str
    name: str
    category: str | None
    template: str
    separator: str
    train: list[tuple[str, str, str | None]]
    heldout: list[tuple[str, str, str | None]]


def split_tasks(seed: int) -> list[TaskData]:
    """Every suite task with its (source, target, distractor) pairs split train / held out."""
    out = []
    for suite in SUITES:
        # n_shots=0: each example's prompt is the bare query and the answer " target"
        for task in load_suite(suite, n_shots=0):
            template = task.metadata["template"]
            query_part = template[: -len("{target}")].rstrip()
            prefix, suffix = query_part.split("{source}")
            pairs = [
                (
                    ex.prompt[len(prefix) : len(ex.prompt) - len(suffix)],
                    ex.answer.strip(),
                    ex.distractor.strip() if ex.distractor else None,
                )
                for ex in task.examples
            ]
            order = list(range(len(pairs)))
            random.Random(f"{seed}|{task.name}|split").shuffle(order)
            n_heldout = max(1, round(HELDOUT_FRACTION * len(pairs)))
            heldout_sources = {pairs[i][0] for i in order[:n_heldout]}
            out.append(
                TaskData(
                    suite,
                    task.name,
                    task.category,
                    template,
                    task.metadata["separator"],
                    [p for p in pairs if p[0] not in heldout_sources],
                    [p for p in pairs if p[0] in heldout_sources],
                )
            )
    return out


def heldout_tasks(data: list[TaskData], n_shots: int = 3, seed: int = 0) -> list[Task]:
    """Tasks whose queries are the held-out pairs, demonstrations drawn from the train pairs."""
    tasks = []
    for td in data:
        rng = random.Random(f"{seed}|{td.name}|heldout")
        examples = []
        for source, target, distractor in td.heldout:
            shots = rng.sample(td.train, n_shots)
            lines = [td.template.format(source=s, target=t) for s, t, _ in shots]
            query = td.template[: -len("{target}")]
            lines.append(query.rstrip().format(source=source))
            gap = query[len(query.rstrip()) :]
            examples.append(
                (td.separator.join(lines), gap + target, gap + distractor if distractor else None)
            )
        tasks.append(Task(td.name, examples, category=td.category))
    return tasks


def train_tasks(data: list[TaskData], n_shots: int = 3, seed: int = 0) -> list[Task]:
    """The train pairs as few-shot tasks (demonstrations also from the train pairs)."""
    return [
        few_shot_task(
            td.name,
            td.train,
            n_shots=n_shots,
            seed=seed,
            category=td.category,
            template=td.template,
            separator=td.separator,
        )
        for td in data
    ]


def copy_words(data: list[TaskData], tokenizer) -> list[str]:
    """Vocabulary words for extra copying pairs: every alphabetic word but the held-out sources
    of the copying tasks, so that their held-out accuracy measures a copy rule, not recall of
    the pair."""
    heldout = {source for td in data if td.name in COPY_TASKS for source, _, _ in td.heldout}
    return sorted(w for w in tokenizer.get_vocab() if w.isalpha() and w not in heldout)


class Sampler:
    """Random training sequences: token ids and a per-token loss weight."""

    def __init__(self, data: list[TaskData], tokenizer, seed: int) -> None:
        self.rng = random.Random(f"{seed}|sampler")
        self.tasks = []
        extra = copy_words(data, tokenizer)
        self.word_ids = sorted(i for w, i in tokenizer.get_vocab().items() if w.isalpha())
        for td in data:
            query = td.template[: -len("{target}")]
            lines = []
            pairs = td.train + [(w, w, None) for w in extra] if td.name in COPY_TASKS else td.train
            for source, target, _ in pairs:
                q = tokenizer(query.rstrip().format(source=source), add_special_tokens=False)
                a = tokenizer(query[len(query.rstrip()) :] + target, add_special_tokens=False)
                lines.append((q["input_ids"], a["input_ids"]))
            sep = tokenizer(td.separator, add_special_tokens=False)["input_ids"]
            self.tasks.append((td.suite, lines, sep))

    def repeat(self) -> tuple[list[int], list[float]]:
        """A run of random vocabulary words said twice; the loss is on the predictable part."""
        ids = self.rng.sample(self.word_ids, self.rng.randint(4, 10))
        return ids + ids, [0.0] * (len(ids) + 1) + [1.0] * (len(ids) - 1)

    def sequence(self, suite: str) -> tuple[list[int], list[float]]:
        if suite == REPEAT:
            return self.repeat()
        candidates = [t for t in self.tasks if t[0] == suite]
        _, lines, sep = self.rng.choice(candidates)
        n_shots = self.rng.choice((0, 1, 2, 3, 3, 4))
        ids: list[int] = []
        weights: list[float] = []
        for i, j in enumerate(self.rng.sample(range(len(lines)), min(n_shots + 1, len(lines)))):
            if i:
                ids += sep
                weights += [0.25] * len(sep)
            query, answer = lines[j]
            ids += query + answer
            weights += [0.25] * len(query) + [1.0] * len(answer)
        return ids, weights

    def batch(self, suite: str, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seqs = [self.sequence(suite) for _ in range(size)]
        length = max(len(ids) for ids, _ in seqs)
        input_ids = torch.zeros(size, length, dtype=torch.long)
        mask = torch.zeros(size, length, dtype=torch.long)
        weights = torch.zeros(size, length)
        for b, (ids, w) in enumerate(seqs):
            input_ids[b, : len(ids)] = torch.tensor(ids)
            mask[b, : len(ids)] = 1
            weights[b, : len(w)] = torch.tensor(w)
        return input_ids, mask, weights


def train_model(
    data: list[TaskData], tokenizer, *, steps: int, seed: int = 0, lr: float = 3e-3, log=print
):
    """A freshly initialised demo-sized Llama trained for ``steps`` steps (deterministic).

    Returns ``(model, final_loss)``; the model is float32, in eval mode.
    """
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(demo_model_config(tokenizer))
    sampler = Sampler(data, tokenizer, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    # operations batches are short sequences, cognitive ones long: similar tokens per batch
    batch_sizes = {"operations": 64, "cognitive": 16, REPEAT: 64}
    suite_rng = random.Random(f"{seed}|suites")
    streams = (*SUITES, REPEAT)
    # batches per stream in proportion to its tasks; the repeats count as four tasks
    n_tasks = {**{s: sum(td.suite == s for td in data) for s in SUITES}, REPEAT: 4}
    started = time.perf_counter()
    model.train()
    running = 0.0
    for step in range(steps):
        suite = suite_rng.choices(streams, weights=[n_tasks[s] for s in streams])[0]
        input_ids, mask, weights = sampler.batch(suite, batch_sizes[suite])
        logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            input_ids[:, 1:].reshape(-1),
            reduction="none",
        )
        w = weights[:, 1:].reshape(-1)
        loss = (losses * w).sum() / w.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step else value
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step:5d}  loss {running:.3f}  {time.perf_counter() - started:6.0f} s")
    model.eval()
    return model, running


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    data = split_tasks(args.seed)
    tokenizer = word_level_tokenizer(load_suite("operations") + load_suite("cognitive"))
    started = time.perf_counter()
    model, final_loss = train_model(
        data,
        tokenizer,
        steps=args.steps,
        seed=args.seed,
        lr=args.lr,
        log=lambda line: print(line, flush=True),
    )
    seconds = time.perf_counter() - started
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters, vocabulary {len(tokenizer)}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers 5 writes its own class name ("TokenizersBackend"), which 4.x cannot load;
    # PreTrainedTokenizerFast loads under both.
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    report_accuracy(args, data, out, n_params, seconds, final_loss)


def report_accuracy(
    args: argparse.Namespace,
    data: list[TaskData],
    out: Path,
    n_params: int,
    seconds: float,
    final_loss: float,
) -> None:
    """Reload what was saved, measure train / held-out accuracy, write training_report.json."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).to(torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    heldout = evaluate_tasks(model, tokenizer, heldout_tasks(data, seed=args.seed))
    trained = evaluate_tasks(model, tokenizer, train_tasks(data, seed=args.seed))
    suite = {name: evaluate_tasks(model, tokenizer, load_suite(name)) for name in SUITES}
    weights = (out / "model.safetensors").read_bytes()
    report = {
        "script": "scripts/train_demo_model.py",
        "seed": args.seed,
        "steps": args.steps,
        "threads": args.threads,
        "learning_rate": args.lr,
        "train_seconds": round(seconds, 1),
        "final_loss": round(final_loss, 4),
        "parameters": n_params,
        "heldout_fraction": HELDOUT_FRACTION,
        "metric": "accuracy: every answer token is the argmax (3 demonstrations + query)",
        "tasks": {
            td.name: {
                "suite": td.suite,
                "category": td.category,
                "train_pairs": len(td.train),
                "heldout_pairs": len(td.heldout),
                "train_accuracy": round(trained[td.name], 4),
                "heldout_accuracy": round(heldout[td.name], 4),
                "suite_accuracy": round(suite[td.suite][td.name], 4),
                "heldout_sources": [source for source, _, _ in td.heldout],
            }
            for td in data
        },
        "model_sha256": hashlib.sha256(weights).hexdigest(),
        "versions": {"torch": torch.__version__, "transformers": _transformers_version()},
    }
    (out / "training_report.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(markdown_table(report))
    print(f"trained in {seconds:.0f} s; weights sha256 {report['model_sha256'][:16]}…")


def markdown_table(report: dict) -> str:
    """The README's per-task accuracy table."""
    lines = [
        "| Suite | Task | Category | Train acc. | Held-out acc. (pairs) |",
        "|---|---|---|---:|---:|",
    ]
    for name, row in report["tasks"].items():
        lines.append(
            f"| {row['suite']} | {name} | {row['category']} | {row['train_accuracy']:.2f}"
            f" | {row['heldout_accuracy']:.2f} ({row['heldout_pairs']}) |"
        )
    return "\n".join(lines)


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=2200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
