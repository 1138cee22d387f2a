"""A deterministic synthetic corpus of PyTorch code for the throughput benchmarks.

The corpus looks like a research repository: model files (several `nn.Module` classes each), training
scripts (argument parsing, data loading, a train loop, an evaluation loop, checkpoints) and utilities
(metrics, logging, schedules). About one file in three carries an anti-pattern that ptlint's rules
report (missing `.eval()`, `.item()` before `.backward()`, graph-retaining accumulation, hard-coded
`.cuda()`, `torch.save(model)`, `empty_cache()` in a loop, deprecated `torch.cuda.amp`), the rest is clean.

    python benchmarks/corpus.py OUT_DIR --lines 50000 [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

LAYERS = [
    ("nn.Linear({a}, {b})", "linear"),
    ("nn.Conv2d({a}, {b}, kernel_size=3, padding=1)", "conv"),
    ("nn.BatchNorm2d({b})", "norm"),
    ("nn.LayerNorm({b})", "norm"),
    ("nn.Dropout(p=0.{d})", "drop"),
    ("nn.GELU()", "act"),
    ("nn.ReLU(inplace=True)", "act"),
]
WORDS = [
    "encoder", "decoder", "backbone", "head", "stem", "block", "stage", "mixer", "proj", "attn",
    "fusion", "neck", "adapter", "bottleneck", "residual", "patch", "token", "pool", "gate", "router",
]
NOUNS = ["Res", "Vit", "Conv", "Mlp", "Unet", "Swin", "Dense", "Mobile", "Efficient", "Pyramid", "Ghost", "Shuffle"]


@dataclass
class Corpus:
    """What `generate` wrote."""

    root: Path
    files: list[Path]
    lines: int


def _model_class(rng: random.Random, name: str) -> str:
    width = rng.choice([32, 64, 96, 128, 192, 256])
    depth = rng.randint(2, 5)
    parts = [rng.choice(WORDS) + f"_{i}" for i in range(depth)]
    init = []
    for part in parts:
        layer, _ = rng.choice(LAYERS)
        init.append(f"        self.{part} = {layer.format(a=width, b=width, d=rng.randint(1, 5))}")
    forward = [f"        x = self.{part}(x)" for part in parts]
    extra = ""
    if rng.random() < 0.5:
        extra = f'''
    def extra_repr(self) -> str:
        return f"width={width}, depth={depth}"

    @torch.no_grad()
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
'''
    return f'''

class {name}(nn.Module):
    """A {rng.choice(WORDS)} of {depth} layers of width {width}."""

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
{chr(10).join(init)}
        self.classifier = nn.Linear({width}, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
{chr(10).join(forward)}
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return self.classifier(x.mean(dim=-1) if x.ndim > 2 else x)
{extra}'''


def model_file(rng: random.Random, index: int) -> str:
    names = [f"{rng.choice(NOUNS)}{rng.choice(WORDS).title()}{index}_{i}" for i in range(rng.randint(2, 4))]
    body = "".join(_model_class(rng, n) for n in names)
    bug = ""
    if rng.random() < 0.2:
        bug = f'''

class Tracker{index}(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.last = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(x)
        self.last = out
        return out
'''
    registry = ", ".join(f'"{n.lower()}": {n}' for n in names)
    return f'''"""Model definitions, family {index}."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [{", ".join(repr(n) for n in names)}]
{body}{bug}

MODELS = {{{registry}}}


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a model of this family by name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {{name!r}}")
    model = MODELS[name](**kwargs)
    if pretrained:
        state = torch.load(f"weights/{{name}}.pth", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def param_groups(model: nn.Module, weight_decay: float = 0.05, skip: Optional[set] = None):
    skip = skip or set()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in skip:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {{"params": no_decay, "weight_decay": 0.0}},
        {{"params": decay, "weight_decay": weight_decay}},
    ]


def scaled_init(module: nn.Module, depth: int) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.data.mul_(1.0 / math.sqrt(2.0 * depth))
'''


def _train_loop(rng: random.Random, bugs: set[str]) -> str:
    to_device = "images, targets = images.cuda(), targets.cuda()" if "cuda" in bugs else (
        "images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)"
    )
    accumulate = "running += loss" if "accumulate" in bugs else "running += loss.item()"
    autocast = "torch.cuda.amp.autocast(enabled=use_amp)" if "amp" in bugs else (
        'torch.autocast(device_type=device.type, enabled=use_amp)'
    )
    backward = (
        "        loss_value = loss.item()\n        loss_value.backward()"
        if "item" in bugs
        else "        scaler.scale(loss).backward()"
    )
    cache = "        torch.cuda.empty_cache()\n" if "empty_cache" in bugs else ""
    return f'''

def train_one_epoch(model, loader, criterion, optimizer, scaler, device, epoch, use_amp=True, log_every=50):
    model.train()
    running = 0.0
    meter = AverageMeter()
    for step, (images, targets) in enumerate(loader):
        {to_device}
        with {autocast}:
            output = model(images)
            loss = criterion(output, targets)
        optimizer.zero_grad(set_to_none=True)
{backward}
        scaler.step(optimizer)
        scaler.update()
        {accumulate}
        meter.update(loss.detach(), images.size(0))
{cache}        if step % log_every == 0:
            print(f"epoch {{epoch}} step {{step}}/{{len(loader)}} loss {{meter.avg:.4f}}")
    return running / max(1, len(loader))
'''


def _eval_loop(bugs: set[str]) -> str:
    mode = "" if "eval" in bugs else "    model.eval()\n"
    return f'''

def validate(model, loader, criterion, device):
{mode}    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            output = model(images)
            loss_sum += criterion(output, targets).item() * images.size(0)
            correct += (output.argmax(dim=1) == targets).sum().item()
            total += targets.numel()
    return {{"loss": loss_sum / max(1, total), "acc": correct / max(1, total)}}
'''


def train_file(rng: random.Random, index: int) -> str:
    bugs: set[str] = set()
    if rng.random() < 0.35:
        bugs.add(rng.choice(["cuda", "accumulate", "amp", "item", "empty_cache", "eval", "save"]))
    save = (
        'torch.save(model, out_dir / "last.pt")'
        if "save" in bugs
        else 'torch.save({"model": model.state_dict(), "epoch": epoch}, out_dir / "last.pt")'
    )
    lr = rng.choice(["1e-3", "3e-4", "0.1", "5e-4"])
    epochs = rng.choice([10, 30, 90, 300])
    return f'''"""Train a classifier, experiment {index}.

Usage: python train_{index}.py --data /data/imagenet --epochs {epochs}
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class AverageMeter:
    """Running average of a scalar."""

    def __init__(self) -> None:
        self.sum = 0.0
        self.count = 0

    def update(self, value, n: int = 1) -> None:
        self.sum += float(value) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / max(1, self.count)


class RandomImages(Dataset):
    def __init__(self, size: int, num_classes: int, seed: int = {index}) -> None:
        self.size = size
        self.num_classes = num_classes
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, idx: int):
        g = torch.Generator().manual_seed(self.seed + idx)
        return torch.randn(3, 32, 32, generator=g), int(torch.randint(self.num_classes, (1,), generator=g))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
{_train_loop(rng, bugs)}{_eval_loop(bugs)}

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="/data/imagenet")
    p.add_argument("--epochs", type=int, default={epochs})
    p.add_argument("--batch-size", type=int, default={rng.choice([64, 128, 256])})
    p.add_argument("--lr", type=float, default={lr})
    p.add_argument("--workers", type=int, default={rng.choice([2, 4, 8])})
    p.add_argument("--amp", action="store_true")
    p.add_argument("--out", default="runs/exp{index}")
    p.add_argument("--seed", type=int, default={rng.randint(0, 9999)})
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set = RandomImages(50000, 10)
    val_set = RandomImages(10000, 10, seed=1)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, num_workers=args.workers)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    scaler = torch.amp.GradScaler(enabled=args.amp)
    history = []
    best = 0.0
    for epoch in range(args.epochs):
        start = time.time()
        train_loss = train_one_epoch(model, train_loader, criterion, optimizer, scaler, device, epoch, args.amp)
        scheduler.step()
        metrics = validate(model, val_loader, criterion, device)
        metrics.update(epoch=epoch, train_loss=float(train_loss), seconds=time.time() - start)
        history.append(metrics)
        print(json.dumps(metrics))
        if metrics["acc"] > best:
            best = metrics["acc"]
            {save}
    with open(os.path.join(args.out, "history.json"), "w") as handle:
        json.dump(history, handle, indent=2)


if __name__ == "__main__":
    main()
'''


def util_file(rng: random.Random, index: int) -> str:
    warmup = rng.choice([5, 10, 20])
    return f'''"""Utilities: metrics, schedules and logging ({index})."""

from __future__ import annotations

import logging
import math
from collections import defaultdict, deque
from typing import Dict, Iterable, List

import torch

logger = logging.getLogger(__name__)


def accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1, 5)) -> List[torch.Tensor]:
    """Top-k accuracies in percent."""
    maxk = min(max(topk), output.size(1))
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.reshape(1, -1).expand_as(pred))
    return [correct[: min(k, maxk)].reshape(-1).float().sum(0) * 100.0 / target.size(0) for k in topk]


def cosine_lr(step: int, total: int, base: float, warmup: int = {warmup}, floor: float = 1e-6) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * progress))


class SmoothedValue:
    """Track a series of values and give smoothed values over a window."""

    def __init__(self, window_size: int = {rng.choice([20, 50, 100])}) -> None:
        self.deque: deque = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> None:
        self.deque.append(value)
        self.count += n
        self.total += value * n

    @property
    def median(self) -> float:
        return float(torch.tensor(list(self.deque)).median())

    @property
    def global_avg(self) -> float:
        return self.total / max(1, self.count)


class MetricLogger:
    def __init__(self, delimiter: str = "  ") -> None:
        self.meters: Dict[str, SmoothedValue] = defaultdict(SmoothedValue)
        self.delimiter = delimiter

    def update(self, **kwargs) -> None:
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            self.meters[k].update(float(v))

    def __str__(self) -> str:
        return self.delimiter.join(f"{{name}}: {{meter.median:.4f}}" for name, meter in self.meters.items())

    def log_every(self, iterable: Iterable, print_freq: int, header: str = ""):
        for i, obj in enumerate(iterable):
            yield obj
            if i % print_freq == 0:
                logger.info("%s [%d] %s", header, i, self)


def reduce_mean(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size <= 1:
        return tensor
    out = tensor.clone()
    torch.distributed.all_reduce(out)
    return out / world_size


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
'''


KINDS = [("models", model_file), ("train", train_file), ("utils", util_file)]


def generate(root: Path, lines: int, seed: int = 0) -> Corpus:
    """Write a corpus of at least `lines` lines under `root` (which is emptied of .py files first)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.rglob("*.py"):
        old.unlink()
    files: list[Path] = []
    total = 0
    index = 0
    while total < lines:
        folder, make = KINDS[index % len(KINDS)]
        text = make(rng, index)
        path = root / "proj" / folder / f"{folder}_{index:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(path)
        total += text.count("\n")
        index += 1
    return Corpus(root, files, total)


def single_file(lines: int = 500, seed: int = 0) -> str:
    """One file of exactly `lines` lines (at least about 150): a training script, then model classes."""
    rng = random.Random(seed)
    text = train_file(rng, 0).replace('\n\nif __name__ == "__main__":\n    main()\n', "\n")
    text = text.replace("from torch.utils.data import", "import torch.nn.functional as F\nfrom torch.utils.data import")
    index = 1
    while True:
        more = _model_class(rng, f"Net{index}")
        if (text + more).count("\n") > lines - 2:
            break
        text += more
        index += 1
    missing = lines - text.count("\n")
    if missing > 0:
        text += "\n" + "".join(f"STAGE_WIDTHS_{i} = ({i * 8}, {i * 16}, {i * 32})\n" for i in range(missing - 1))
    return text


def large_file(functions: int = 20_600) -> str:
    """One generated file of many small training functions (11 lines each; 20,600 make 227,000 lines).

    Each function has a loop, `.cuda()`, `+= loss` and `torch.save(model, ...)`: the cost per line of
    checking it must stay that of ordinary repositories, whatever the size of the file.
    """
    head = "import torch\nimport torch.nn as nn\n\n"
    body = [
        f"def train_{i}(model, loader, optimizer, criterion):\n"
        f"    model = model.cuda()\n"
        f"    total_{i} = 0\n"
        f"    for step, (x, y) in enumerate(loader):\n"
        f"        optimizer.zero_grad()\n"
        f"        loss = criterion(model(x.cuda()), y.cuda())\n"
        f"        loss.backward()\n"
        f"        optimizer.step()\n"
        f"        total_{i} += loss\n"
        f"    torch.save(model, 'model_{i}.pt')\n\n"
        for i in range(functions)
    ]
    return head + "".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large-file", type=int, metavar="FUNCTIONS", help="write one generated file of this many functions instead")
    args = parser.parse_args()
    if args.large_file:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        text = large_file(args.large_file)
        (out / "large.py").write_text(text)
        print(f"1 file, {text.count(chr(10))} lines, {len(text)} bytes under {out}")
        return
    corpus = generate(Path(args.out), args.lines, args.seed)
    print(f"{len(corpus.files)} files, {corpus.lines} lines under {corpus.root}")


if __name__ == "__main__":
    main()
