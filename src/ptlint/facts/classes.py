"""Class facts: which in-file classes are nn.Module or LightningModule subclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.facts.walk import iter_class_defs, iter_nodes

MODULE_BASES = {
    "torch.nn.Module",
    "torch.nn.modules.module.Module",
    "torch.nn.Sequential",
    "torch.nn.ModuleList",
    "torch.nn.ModuleDict",
}
LIGHTNING_BASES = {
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "lightning.pytorch.core.LightningModule",
    "lightning_fabric.LightningModule",
}
# Layers whose behaviour depends on train/eval mode.
MODE_LAYER_WORDS = ("Dropout", "BatchNorm", "InstanceNorm", "SyncBatchNorm", "AlphaDropout", "RReLU", "Transformer")
# Layers with dropout only when given one: `dropout=`, or the sixth positional argument of an RNN.
OPTIONAL_DROPOUT = ("RNN", "LSTM", "GRU", "MultiheadAttention")


@dataclass
class ClassInfo:
    name: str
    node: cst.ClassDef
    bases: list[str]
    is_module: bool = False
    is_lightning: bool = False
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)
    imports: ImportMap | None = field(default=None, repr=False, compare=False)
    _mode_dependent: bool | None = field(default=None, repr=False, compare=False)

    @property
    def mode_dependent(self) -> bool:
        """Whether the class body mentions a mode-dependent layer, or something unknown (computed once, when asked)."""
        if self._mode_dependent is None:
            self._mode_dependent = self.imports is None or _mentions_mode_layers(self.node, self.imports)
        return self._mode_dependent


def collect_classes(module: cst.Module, imports: ImportMap) -> dict[str, ClassInfo]:
    """All classes of the file by name, with module-ness resolved through in-file bases."""
    infos: dict[str, ClassInfo] = {}
    imports_now = imports.snapshot()  # `mode_dependent` is computed later, with the imports known now
    for node in iter_class_defs(module):
        bases = []
        for arg in node.bases:
            if arg.keyword is None:
                bases.append(imports.resolve(arg.value) or dotted_name(arg.value) or "")
        info = ClassInfo(node.name.value, node, bases)
        for stmt in node.body.body:
            if isinstance(stmt, cst.FunctionDef):
                info.methods[stmt.name.value] = stmt
        info.imports = imports_now
        infos.setdefault(node.name.value, info)
    changed = True
    for info in infos.values():
        info.is_lightning = any(b in LIGHTNING_BASES or b.endswith("LightningModule") for b in info.bases)
        info.is_module = info.is_lightning or any(b in MODULE_BASES for b in info.bases)
    while changed:
        changed = False
        for info in infos.values():
            for b in info.bases:
                parent = infos.get(b)
                if parent is None or parent is info:
                    continue
                if parent.is_module and not info.is_module:
                    info.is_module = changed = True
                if parent.is_lightning and not info.is_lightning:
                    info.is_lightning = changed = True
    return infos


def _mentions_mode_layers(node: cst.ClassDef, imports: ImportMap) -> bool:
    """False only when the class is a plain nn.Module subclass built from known mode-free layers."""
    for b in node.bases:
        name = imports.resolve(b.value) or dotted_name(b.value) or ""
        if name not in MODULE_BASES:
            return True
    for sub in iter_nodes(node, enter_scopes=True):
        if isinstance(sub, cst.Call):
            q = imports.resolve(sub.func) or ""
            name = dotted_name(sub.func) or ""
            if any(w in q or w in name for w in MODE_LAYER_WORDS) or mode_layer(name, sub):
                return True
            if not q and name[:1].isupper():
                # An unknown class may hide dropout or normalization.
                return True
            if q.startswith(("torchvision", "timm", "transformers")):
                return True
        elif isinstance(sub, cst.Name) and sub.value in ("dropout", "training", "train"):
            return True
    return False


def mode_layer(name: str, call: cst.Call) -> bool:
    """Whether the layer `name` that `call` builds behaves differently in training mode."""
    if any(w in name for w in MODE_LAYER_WORDS):
        return True
    if not any(w in name for w in OPTIONAL_DROPOUT):
        return False
    positional = [a for a in call.args if a.keyword is None]
    return len(positional) >= 6 or any(a.keyword is not None and a.keyword.value == "dropout" for a in call.args)
