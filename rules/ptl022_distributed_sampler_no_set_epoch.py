"""PTL022 distributed-sampler-no-set-epoch."""

from __future__ import annotations

import libcst as cst

from ptlint.facts.imports import dotted_name
from ptlint.facts.loops import shallow_nodes
from ptlint.rule import Edit, Fix, FixSafety, InsertBefore, Replace, Rule

SAMPLERS = {"torch.utils.data.DistributedSampler", "torch.utils.data.distributed.DistributedSampler"}
LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
WRAPPERS = {"enumerate", "tqdm", "iter", "tqdm.tqdm"}
# Frameworks whose loops call `set_epoch` themselves.
FRAMEWORKS = ("accelerate", "lightning", "pytorch_lightning", "transformers", "ignite", "composer")


class DistributedSamplerNoSetEpoch(Rule):
    """A DistributedSampler that never gets `set_epoch()`.

    ## What it does
    Flags an epoch loop that iterates a DataLoader whose `sampler=` is a shuffling
    `DistributedSampler`, when nothing in the epoch loop (or a local helper it calls) calls
    `set_epoch`. The loader may be iterated directly in an inner loop or by a local helper that
    receives it.

    It stays silent for `shuffle=False`, for a sampler built anew inside the epoch loop, and in
    files that use Accelerate, Lightning, HF Transformers, Ignite or Composer, which call
    `set_epoch` in their own loops.

    ## Why is this bad?
    `DistributedSampler` seeds its shuffle with `seed + epoch`. Without `set_epoch(epoch)` the
    epoch stays 0, so every epoch sees the data in exactly the same order on every rank: the
    shuffle happens once, and training loses the randomness it was configured for.

    ## Example
    ```python
    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    for epoch in range(epochs):
        for x, y in loader:
            train_step(x, y)
    ```

    ## Use instead
    ```python
    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            train_step(x, y)
    ```

    ## Fix safety
    Safe: `set_epoch(<epoch>)` becomes the first statement of the epoch loop (a loop variable
    named `_` is renamed `epoch`), which is what the sampler's documentation asks for. Loops
    whose variable is not a plain name get no fix.

    ## References
    - [torch.utils.data.distributed.DistributedSampler](https://pytorch.org/docs/stable/data.html#torch.utils.data.distributed.DistributedSampler)
    """

    code = "PTL022"
    name = "distributed-sampler-no-set-epoch"
    message = "DistributedSampler without `set_epoch()`: every epoch uses the same order"
    fix_safety = FixSafety.SAFE
    severity = "error"
    triggers = ("DistributedSampler",)
    contract = "E2"

    def visit_For(self, node: cst.For) -> None:
        if any(f in self.ctx.imports.aliases.values() or any(v.startswith(f + ".") for v in self.ctx.imports.aliases.values())
               for f in FRAMEWORKS):
            return
        if self._sets_epoch(node):
            return
        for loader in self._loaders_iterated(node):
            sampler = self._distributed_sampler(loader, node)
            if sampler is None:
                continue
            self.report(node, fix=self._fix(node, sampler, loader))
            return

    def _sets_epoch(self, loop: cst.For) -> bool:
        """`set_epoch` in the loop, or in a local helper that the loop calls."""
        tree, program = self.ctx.model.tree, self.ctx.model.program
        uses = [n for n in tree.names("set_epoch") if isinstance(a := tree.parent(n), cst.Attribute) and a.attr is n]
        if any(tree.contains(loop.body, n) for n in uses):
            return True
        called = {n.func.value for n in tree.below(loop.body, cst.Call) if isinstance(n.func, cst.Name)}  # type: ignore[attr-defined]
        helpers = [f for f in map(program.function, called) if f is not None]
        return any(tree.contains(f, n) for f in helpers for n in uses)

    def _loaders_iterated(self, loop: cst.For) -> list[cst.Name]:
        """Names iterated by inner loops, or passed to a local helper that loops."""
        found: list[cst.Name] = []
        for n in shallow_nodes(loop.body):
            if isinstance(n, cst.For):
                it = n.iter
                while isinstance(it, cst.Call) and dotted_name(it.func) in WRAPPERS and it.args:
                    it = it.args[0].value
                if isinstance(it, cst.Name):
                    found.append(it)
            elif isinstance(n, cst.Call) and isinstance(n.func, cst.Name):
                func = self.ctx.model.program.function(n.func.value)
                if func is not None and self.ctx.model.tree.below(func.body, cst.For, scopes=False):
                    found.extend(a.value for a in n.args if isinstance(a.value, cst.Name))
        return found

    def _distributed_sampler(self, loader: cst.Name, loop: cst.For) -> cst.BaseExpression | None:
        """The sampler expression (a name, or `<loader>.sampler`) when `loader` uses a shuffling DistributedSampler."""
        value = self.ctx.model.value(loader)
        if not isinstance(value, cst.Call) or self.ctx.qualname(value.func) not in LOADERS:
            return None
        sampler = next((a.value for a in value.args if a.keyword is not None and a.keyword.value == "sampler"), None)
        if sampler is None:
            return None
        made = sampler if isinstance(sampler, cst.Call) else self.ctx.model.value(sampler) if isinstance(sampler, cst.Name) else None
        if not isinstance(made, cst.Call) or self.ctx.qualname(made.func) not in SAMPLERS:
            return None
        shuffle = next((a.value for a in made.args if a.keyword is not None and a.keyword.value == "shuffle"), None)
        if shuffle is not None and not (isinstance(shuffle, cst.Name) and shuffle.value == "True"):
            return None
        if self.ctx.model.tree.contains(loop, made):
            return None  # rebuilt every epoch
        if isinstance(sampler, cst.Name):
            return sampler
        return cst.Attribute(value=cst.Name(loader.value), attr=cst.Name("sampler"))

    def _fix(self, loop: cst.For, sampler: cst.BaseExpression, loader: cst.Name) -> Fix | None:
        target = loop.target
        if not isinstance(target, cst.Name) or not isinstance(loop.body, cst.IndentedBlock):
            return None
        edits: list[Edit] = []
        epoch = target.value
        if epoch == "_":
            epoch = "epoch"
            if self.ctx.scope_facts().bindings_of(epoch) or any(self.ctx.model.tree.contains(loop, n) for n in self.ctx.model.tree.names(epoch)):
                return None
            edits.append(Replace(target, cst.Name(epoch)))
        receiver = cst.Module([]).code_for_node(sampler)
        call = cst.parse_statement(f"{receiver}.set_epoch({epoch})")
        edits.append(InsertBefore(loop.body.body[0], (call,)))
        return Fix("Call `set_epoch` at the start of each epoch", FixSafety.SAFE, tuple(edits))
