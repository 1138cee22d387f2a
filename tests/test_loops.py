"""The shared loop classifier and step-guard recognition."""

from __future__ import annotations

import textwrap
from typing import ClassVar

import libcst as cst
import pytest

from ptlint.api import lint_text
from ptlint.rule import Rule


class _LoopProbe(Rule):
    """Reports every loop with its kind, and every `probe()` call that sits under a step guard."""

    code: ClassVar[str] = "PTL999"
    name: ClassVar[str] = "loop-probe"
    message: ClassVar[str] = ""
    triggers: ClassVar[tuple[str, ...]] = ()

    def _loop(self, node: cst.For | cst.While) -> None:
        kind = self.ctx.loop_kind(node)
        names = sorted(k.name for k in type(kind) if k in kind and k.name != "NONE")
        self.report(node, "loop " + ",".join(names))

    visit_For = _loop
    visit_While = _loop

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "probe":
            self.report(node, f"guarded={self.ctx.in_step_guard()}")


def _kinds(source: str) -> list[str]:
    result = lint_text(textwrap.dedent(source), rules=[_LoopProbe])
    return [f"{f.start.line}: {f.message}" for f in result.findings]


def test_train_epoch_and_data_loops() -> None:
    assert _kinds(
        """
        loader = DataLoader(ds)
        for epoch in range(3):
            for x, y in loader:
                loss = crit(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
        """
    ) == ["3: loop EPOCH", "4: loop DATA,TRAIN"]


def test_helpers_are_followed_one_level() -> None:
    assert _kinds(
        """
        def train_step(batch):
            loss = model(batch).sum()
            loss.backward()
            opt.step()

        def train_one_epoch(model, train_loader):
            for batch in train_loader:
                train_step(batch)

        for epoch in range(10):
            train_one_epoch(model, train_loader)
        """
    ) == ["8: loop DATA,TRAIN", "11: loop EPOCH"]


def test_eval_loops() -> None:
    assert _kinds(
        """
        def validate(model, val_dl):
            model.eval()
            for x in val_dl:
                out = model(x)

        import torch

        def test(model, data):
            with torch.no_grad():
                for x in data:
                    model(x)

        def predict(model, data):
            model.eval()
            model.train()
            for x in data:
                model(x)
        """
    ) == ["4: loop DATA,EVAL", "11: loop EVAL", "17: loop "]


def test_amp_and_accelerate_training() -> None:
    assert _kinds(
        """
        for it, batch in enumerate(tqdm(train_loader)):
            scaler.scale(loss).backward()
            scaler.step(optimizer)
        while step < total:
            accelerator.backward(loss)
            opt_g.step()
        for x in items:
            lr_scheduler.step()
            loss.backward()
        """
    ) == ["2: loop DATA,TRAIN", "5: loop TRAIN", "8: loop "]


@pytest.mark.parametrize(
    "guard, guarded",
    [
        ("if step % 10 == 0:", True),
        ("if (i + 1) % args.log_interval == 0:", True),
        ("if not batch_idx % log_every:", True),
        ("if global_step % cfg.print_freq == 0 and rank == 0:", True),
        ("if loss > 3:", False),
        ("if x % 2 == 0:", False),
    ],
)
def test_step_guards(guard: str, guarded: bool) -> None:
    source = f"for step, x in enumerate(data):\n    {guard}\n        probe()\n    else:\n        probe()\n"
    result = lint_text(source, rules=[_LoopProbe])
    messages = [f.message for f in result.findings if f.message.startswith("guarded")]
    assert messages == [f"guarded={guarded}", "guarded=False"]
