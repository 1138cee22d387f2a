"""PTL014 dataparallel-over-ddp."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.rule import FixSafety, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

DATA_PARALLEL = {
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.data_parallel.DataParallel",
    "torch.nn.parallel.data_parallel",
}


class DataParallelOverDDP(Rule):
    """`nn.DataParallel` instead of `DistributedDataParallel`.

    ## What it does
    Flags calls of `torch.nn.DataParallel(...)` and the functional
    `torch.nn.parallel.data_parallel(...)` in files that train (they call `.backward()`).

    Not reported: files that also use DistributedDataParallel or a `*DDP*` helper (they
    offer DataParallel only as a single-process fallback), inference and evaluation scripts
    without `.backward()`, test files, and type checks such as `isinstance(m, nn.DataParallel)`.

    ## Why is this bad?
    DataParallel runs one Python thread per GPU in a single process: it copies the model to
    every GPU on every forward pass, scatters inputs and gathers outputs on the first GPU,
    and is limited by the GIL, so it is usually slower than DistributedDataParallel even on
    one machine and leaves the first GPU with more memory than the others. PyTorch
    recommends DistributedDataParallel for all multi-GPU training.

    ## Example
    ```python
    model = nn.DataParallel(model).cuda()
    for x, y in loader:
        loss = criterion(model(x.cuda()), y.cuda())
    ```

    ## Use instead
    One process per GPU, started with `torchrun --nproc_per_node=NUM_GPUS train.py`:
    ```python
    import os
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data.distributed import DistributedSampler

    dist.init_process_group("nccl")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    model = DDP(model.to(local_rank), device_ids=[local_rank])
    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=per_gpu_batch, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            loss = criterion(model(x.to(local_rank)), y.to(local_rank))
    dist.destroy_process_group()
    ```

    ## Fix safety
    There is no fix: moving to DDP changes how the program is launched, how data is split
    and how checkpoints and logs are written on each rank.

    ## References
    - [CUDA semantics: use DDP instead](https://pytorch.org/docs/stable/notes/cuda.html#cuda-nn-ddp-instead)
    - [torch.nn.DataParallel](https://pytorch.org/docs/stable/generated/torch.nn.DataParallel.html)
    - [Getting started with DDP](https://pytorch.org/tutorials/intermediate/ddp_tutorial.html)
    """

    code = "PTL014"
    name = "dataparallel-over-ddp"
    message = "`nn.DataParallel` is slower than `DistributedDataParallel`; use DDP with one process per GPU"
    fix_safety = FixSafety.NONE
    severity = "warning"
    triggers = ("DataParallel", "data_parallel")

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._silent: bool | None = None

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func)
        if qual not in DATA_PARALLEL or self._silent_file():
            return
        if qual.endswith("data_parallel"):
            self.report(node, self.message.replace("`nn.DataParallel`", "`data_parallel`"))
        else:
            self.report(node)

    def _silent_file(self) -> bool:
        """A test, a file that never trains (no `.backward()`), or one that also offers DDP."""
        if self._silent is None:
            name = self.ctx.path.replace("\\", "/").rsplit("/", 1)[-1]
            test = name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            tree = self.ctx.model.tree
            trains = bool(tree.method_calls("backward"))
            ddp = any("DDP" in word or word == "DistributedDataParallel" for word in tree.identifiers())
            self._silent = test or not trains or ddp
        return self._silent

