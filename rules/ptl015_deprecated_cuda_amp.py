"""PTL015 deprecated-cuda-amp."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst

from ptlint.facts.guards import compat_guard, is_version_test
from ptlint.facts.imports import ImportMap, dotted_name
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, RawFinding, Replace, Rule

if TYPE_CHECKING:
    from ptlint.context import Context

# Deprecated qualified name -> (name in torch.amp, device type).
OLD: dict[str, tuple[str, str]] = {}
for _device in ("cuda", "cpu"):
    OLD[f"torch.{_device}.amp.autocast"] = ("autocast", _device)
    OLD[f"torch.{_device}.amp.autocast_mode.autocast"] = ("autocast", _device)
    OLD[f"torch.{_device}.amp.GradScaler"] = ("GradScaler", _device)
    OLD[f"torch.{_device}.amp.grad_scaler.GradScaler"] = ("GradScaler", _device)
OLD["torch.cuda.amp.custom_fwd"] = ("custom_fwd", "cuda")
OLD["torch.cuda.amp.custom_bwd"] = ("custom_bwd", "cuda")
# The last parts of the deprecated names: a cheap test before resolving a name.
OLD_LAST = frozenset(q.rsplit(".", 1)[-1] for q in OLD)
# Deprecated modules that an import may bind: `from torch.cuda import amp`.
OLD_MODULES = {"torch.cuda.amp": "cuda", "torch.cpu.amp": "cpu"}
# The torch version that first has the replacement.
NEEDS = {"autocast": (1, 10), "GradScaler": (2, 3), "custom_fwd": (2, 4), "custom_bwd": (2, 4)}
# Positional parameters of the deprecated autocast classes, which torch.amp.autocast orders differently.
AUTOCAST_PARAMS = ("enabled", "dtype", "cache_enabled")


@dataclass
class _Group:
    """An import of deprecated names and every use of the names it binds."""

    stmt: cst.Import | cst.ImportFrom
    line: cst.CSTNode | None
    locals: dict[str, str] = field(default_factory=dict)  # local name -> qualified name it binds
    uses: list[tuple[cst.CSTNode, cst.CSTNode | None, str, str]] = field(default_factory=list)
    blocked: str = ""


class DeprecatedCudaAmp(Rule):
    """Deprecated `torch.cuda.amp` / `torch.cpu.amp` APIs.

    ## What it does
    Flags the device-specific automatic mixed precision APIs that torch 2.4 deprecated:
    `torch.cuda.amp.autocast`, `torch.cuda.amp.GradScaler`, `torch.cuda.amp.custom_fwd`,
    `torch.cuda.amp.custom_bwd`, `torch.cpu.amp.autocast` and `torch.cpu.amp.GradScaler`, as calls,
    decorators and imports (`from torch.cuda.amp import autocast`, `from torch.cuda import amp`).

    Code in compatibility branches (`try`/`except ImportError`, `if torch.__version__ ...`,
    `hasattr` probes) is left alone: it exists to support old torch versions.

    ## Why is this bad?
    Each call emits a `FutureWarning` ("`torch.cuda.amp.autocast(args...)` is deprecated. Please use
    `torch.amp.autocast('cuda', args...)` instead.") and the aliases will be removed. The
    device-generic `torch.amp` API takes the device type as an argument.

    ## Example
    ```python
    scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
    with torch.cuda.amp.autocast(dtype=torch.bfloat16):
        loss = model(x)

    @torch.cuda.amp.custom_fwd(cast_inputs=torch.float32)
    def forward(ctx, x): ...
    ```

    ## Use instead
    ```python
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    with torch.amp.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x)

    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x): ...
    ```

    ## Fix safety
    Safe. `GradScaler` gets the device as its first argument; `autocast` gets it too, and its
    positional arguments become keywords because `torch.amp.autocast` orders them differently;
    `custom_fwd`/`custom_bwd` get `device_type=`. A from-import (`from torch.cuda.amp import autocast`,
    `from torch.cuda import amp`) is rewritten to `torch.amp` together with all its uses in one fix;
    when a use is not a call or decorator (the name is passed around as a value), or lies in
    compatibility code, that fix is withheld. The fix is also withheld when the targeted torch
    version lacks the replacement (`torch.amp.GradScaler` needs 2.3, `torch.amp.custom_fwd` 2.4),
    from `target-torch-version` or the project's torch pin.

    ## References
    - [Automatic mixed precision](https://pytorch.org/docs/stable/amp.html)
    - [torch.amp.GradScaler](https://pytorch.org/docs/stable/amp.html#gradient-scaling)
    """

    code = "PTL015"
    name = "deprecated-cuda-amp"
    message = "Deprecated device-specific AMP API; use `torch.amp` with a device type"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ("amp",)
    contract = "E3"

    def __init__(self, ctx: Context, options: dict[str, Any] | None = None) -> None:
        super().__init__(ctx, options)
        self._groups: dict[int, _Group] | None = None
        self._reported: set[int] = set()
        self._names: list[cst.Name] = []  # loaded names that a deprecated import may bind, in walk order

    # --- visitors ---

    def visit_Call(self, node: cst.Call) -> None:
        self._site(node.func, node)

    def visit_Decorator(self, node: cst.Decorator) -> None:
        if not isinstance(node.decorator, cst.Call):
            self._site(node.decorator, None)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value in OLD_LAST:  # else it cannot resolve to a name in OLD
            self._value_reference(node)

    def visit_Name(self, node: cst.Name) -> None:
        full = self.ctx.imports.aliases.get(node.value)
        if full in OLD:  # what `qualname` gives for a Name
            self._value_reference(node)
        anywhere = self.ctx.model.names.all_imports.aliases.get(node.value)
        if any(f in OLD or f in OLD_MODULES for f in (full, anywhere)):  # a deprecated import may bind it
            parent = self.ctx.parent()
            skip = (
                (isinstance(parent, cst.Attribute) and parent.attr is node)
                or (isinstance(parent, cst.Arg) and parent.keyword is node)
                or (isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Param)) and parent.name is node)
                or any(isinstance(n, (cst.Import, cst.ImportFrom)) for n in self.ctx.stack)
            )
            if not skip:
                self._names.append(node)

    def leave_Module(self, node: cst.Module) -> None:
        groups = self._all_groups()
        if groups:
            self._collect_uses(groups)
        for group in groups.values():
            self._report_group(group)

    # --- sites ---

    def _site(self, func: cst.BaseExpression, call: cst.Call | None) -> None:
        """A deprecated API called (`call`) or used as a bare decorator (`call` is None)."""
        if not self._may_be_old(func):
            return
        qual = self.ctx.qualname(func)
        if qual not in OLD or id(func) in self._reported:
            return
        self._reported.add(id(func))
        head = (dotted_name(func) or "").split(".")[0]
        if self._group_of(head) is not None or self._compat(func):
            return  # reported with its import, or compatibility code
        name, device = OLD[qual]
        fix, why = None, self._too_old(name)
        if not why:
            torch, extra = self._torch_prefix(func)
            new = _rewrite(call, func, _amp_attr(torch, name), name, device)
            if new is not None:
                old: cst.CSTNode = call if call is not None else func
                fix = Fix(f"Use `torch.amp.{name}`", FixSafety.SAFE, (Replace(old, new), *extra))
            else:
                why = "fix withheld: the arguments cannot be mapped automatically"
        self.report(func, self._message(qual, name, device, why), fix)

    def _value_reference(self, node: cst.Attribute | cst.Name) -> None:
        """`torch.cuda.amp.autocast` passed around as a value (not called): reported without a fix."""
        if id(node) in self._reported or not isinstance(node, (cst.Attribute, cst.Name)):
            return
        parent = self.ctx.parent()
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return
        if isinstance(parent, cst.Call) and parent.func is node:
            return
        if isinstance(parent, cst.Decorator) and parent.decorator is node:
            return
        qual = self.ctx.qualname(node)
        if qual not in OLD or _passive(self.ctx.stack):
            return
        head = (dotted_name(node) or "").split(".")[0]
        if self._group_of(head) is not None or self._compat(node):
            return
        self._reported.add(id(node))
        name, device = OLD[qual]
        self.report(node, self._message(qual, name, device, "no automatic fix for a value"))

    def _may_be_old(self, expr: cst.CSTNode) -> bool:
        """False when `expr` surely does not resolve to a name in OLD (cheaper than `qualname`)."""
        kind = type(expr)
        if kind is cst.Attribute:
            return expr.attr.value in OLD_LAST  # type: ignore[attr-defined]
        if kind is cst.Name:
            return self.ctx.imports.aliases.get(expr.value) in OLD  # type: ignore[attr-defined]
        return False

    def _torch_prefix(self, func: cst.BaseExpression) -> tuple[cst.BaseExpression, tuple[Edit, ...]]:
        """How to spell the torch module: the head of `torch.cuda.amp.x`, an import of torch, or a new one."""
        node = func
        while isinstance(node, cst.Attribute):
            node = node.value
            if self.ctx.qualname(node) == "torch":
                return node, ()
        local = next((k for k, v in self.ctx.imports.aliases.items() if v == "torch"), None)
        if local is not None:
            return cst.Name(local), ()
        return cst.Name("torch"), add_import(self.ctx, "import torch")

    def _too_old(self, name: str) -> str:
        version, source = self.ctx.target_torch()
        need = NEEDS[name]
        if version >= need:
            return ""
        return (
            f"fix withheld: torch.amp.{name} needs torch {need[0]}.{need[1]}, "
            f"{source} is {version[0]}.{version[1]}"
        )

    def _message(self, qual: str, name: str, device: str, why: str) -> str:
        text = f"`{qual}` is deprecated; use `torch.amp.{name}` with device type \"{device}\""
        return f"{text} ({why})" if why else text

    @staticmethod
    def _withheld(why: str) -> str:
        return why if not why or why.startswith("fix withheld") else f"fix withheld: {why}"

    # --- imports and their uses ---

    def _group_of(self, local: str) -> _Group | None:
        origin = self.ctx.imports.origins.get(local)
        if origin is None:
            return None
        return self._all_groups().get(id(origin[0]))

    def _all_groups(self) -> dict[int, _Group]:
        if self._groups is None:
            self._groups = self._collect_groups()
        return self._groups

    def _collect_groups(self) -> dict[int, _Group]:
        """Imports of deprecated AMP names that bind a name the file keeps (first binding wins)."""
        groups: dict[int, _Group] = {}
        for stmt in {id(stmt): stmt for stmt, _ in self.ctx.imports.origins.values()}.values():
            bound = _bound(stmt).aliases
            ours = {local: full for local, full in bound.items() if full in OLD or full in OLD_MODULES}
            if not ours or any(self.ctx.imports.origins[local][0] is not stmt for local in ours):
                continue  # nothing deprecated, or another binding of a name wins
            group = _Group(stmt, self.ctx.model.tree.parent(stmt), ours)
            if self._compat(stmt):
                group.blocked = "compat"
            elif isinstance(stmt, cst.ImportFrom) and len(ours) != len(bound):
                group.blocked = "the import also binds names that `torch.amp` does not have"
            groups[id(stmt)] = group
        return groups

    def _collect_uses(self, groups: dict[int, _Group]) -> None:
        """Every loaded name that a group binds (by its spelling, wherever it is read)."""
        by_local = {local: g for g in groups.values() for local in g.locals}
        parent_of = self.ctx.model.tree.parent
        for node in self._names:
            group = by_local.get(node.value)
            if group is None or group.blocked == "compat":
                continue
            full = group.locals[node.value]
            parent = parent_of(node)
            site: cst.CSTNode = node
            if full in OLD_MODULES:
                if not (isinstance(parent, cst.Attribute) and parent.value is node):
                    group.uses.append((node, None, "", ""))
                    continue
                full = f"{full}.{parent.attr.value}"
                site, parent = parent, parent_of(parent)
            call = parent if isinstance(parent, cst.Call) and parent.func is site else None
            decorated = isinstance(parent, cst.Decorator) and parent.decorator is site
            if full not in OLD or (call is None and not decorated):
                group.uses.append((site, None, "", ""))
                continue
            if self._compat(site):
                group.blocked = "a use lies in compatibility code"
            group.uses.append((site, call, *OLD[full]))

    def _report_group(self, group: _Group) -> None:
        if group.blocked == "compat":
            return
        why = group.blocked
        unresolved = [site for site, _, name, _ in group.uses if not name]
        if unresolved and not why:
            why = f"`{dotted_name(unresolved[0]) or 'the name'}` is also used as a value"
        names = {name for _, _, name, _ in group.uses if name}
        names |= {OLD[full][0] for full in group.locals.values() if full in OLD}
        if not why:
            why = next((w for w in (self._too_old(n) for n in sorted(names)) if w), "")
        fix = None if why else self._group_fix(group)
        if fix is None and not why:
            why = "the arguments of a call cannot be mapped automatically"
        why = self._withheld(why)
        suffix = f" ({why})" if why else ""
        origins = _bound(group.stmt).origins
        for local, full in group.locals.items():
            alias = origins[local][1]
            label = f"`{full}`" if full in OLD else f"module `{full}`"
            text = f"Import of deprecated {label}; import from `torch.amp` and pass the device type{suffix}"
            self.reports.append(RawFinding(self, alias, text, fix, group.line))
        for site, call, name, device in group.uses:
            if not name:
                continue
            qual = f"{'torch.' + device}.amp.{name}"
            stmt = self.ctx.model.tree.statement(site)
            self.reports.append(RawFinding(self, site, self._message(qual, name, device, why), fix, stmt))

    def _group_fix(self, group: _Group) -> Fix | None:
        edits: list[Edit] = [Replace(group.stmt, _new_import(group.stmt, group.locals))]
        for site, call, name, device in group.uses:
            new = _rewrite(call, site, site, name, device)
            if new is None:
                return None
            edits.append(Replace(call if call is not None else site, new))
        return Fix("Import the AMP APIs from `torch.amp`", FixSafety.SAFE, tuple(edits))

    def _compat(self, node: cst.CSTNode) -> bool:
        """Compatibility code: a guarded branch, or code after `if <version test>: return ...` in a block."""
        model = self.ctx.model
        if compat_guard(model.tree.path(node)) is not None:
            return True
        guards = model.flow.early_exits(node, terminal_calls=False)
        return any(isinstance(g, cst.If) and is_version_test(g.test) for g in guards)


# --- rewriting ---


def _amp_attr(torch: cst.BaseExpression, name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Attribute(value=torch, attr=cst.Name("amp")), attr=cst.Name(name))


def _string(device: str) -> cst.SimpleString:
    return cst.SimpleString(f'"{device}"')


def _rewrite(
    call: cst.Call | None, old_func: cst.BaseExpression, func: cst.BaseExpression, name: str, device: str
) -> cst.CSTNode | None:
    """The replacement of `call` (or of a bare decorator `old_func` when `call` is None), or None."""
    if call is None:
        if name not in ("custom_fwd", "custom_bwd"):
            return None
        return cst.Call(func=func, args=[_keyword("device_type", _string(device), last=True)])
    args = list(call.args)
    if any(a.star == "*" for a in args):
        return None
    if name == "GradScaler":
        if any(a.keyword is not None and a.keyword.value == "device" for a in args):
            return None
        new_args = [_first(_string(device), call), *args]
    elif name == "autocast":
        positional = [a for a in args if a.keyword is None and not a.star]
        if len(positional) > len(AUTOCAST_PARAMS):
            return None
        if any(a.keyword is not None and a.keyword.value == "device_type" for a in args):
            return None
        converted = [
            a.with_changes(keyword=cst.Name(AUTOCAST_PARAMS[i]), equal=_equal())
            for i, a in enumerate(positional)
        ]
        rest = args[len(positional):]
        new_args = [_first(_string(device), call), *converted, *rest]
    else:
        if any(a.keyword is not None and a.keyword.value == "device_type" for a in args):
            return None
        split = next((i for i, a in enumerate(args) if a.keyword is not None or a.star), len(args))
        more = split < len(args)
        kw = _keyword("device_type", _string(device), last=not more)
        if split > 0 and args[split - 1].comma == cst.MaybeSentinel.DEFAULT:
            args[split - 1] = args[split - 1].with_changes(comma=_comma())
        new_args = [*args[:split], kw, *args[split:]]
    return call.with_changes(func=func, args=new_args)


def _comma() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _equal() -> cst.AssignEqual:
    return cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def _first(value: cst.BaseExpression, call: cst.Call) -> cst.Arg:
    """A new first argument; on its own line when the call puts its arguments on separate lines."""
    if not call.args:
        return cst.Arg(value=value)
    space = call.whitespace_before_args
    if isinstance(space, cst.ParenthesizedWhitespace):
        return cst.Arg(value=value, comma=cst.Comma(whitespace_after=space))
    return cst.Arg(value=value, comma=_comma())


def _keyword(name: str, value: cst.BaseExpression, last: bool) -> cst.Arg:
    return cst.Arg(
        value=value, keyword=cst.Name(name), equal=_equal(), comma=cst.MaybeSentinel.DEFAULT if last else _comma()
    )


def _new_import(stmt: cst.Import | cst.ImportFrom, ours: dict[str, str]) -> cst.CSTNode:
    """The import with each deprecated module path replaced by `torch.amp`."""
    amp = cst.Attribute(value=cst.Name("torch"), attr=cst.Name("amp"))
    if isinstance(stmt, cst.ImportFrom):
        module = dotted_name(stmt.module) if stmt.module is not None else ""
        if module in ("torch.cuda", "torch.cpu"):
            return stmt.with_changes(module=cst.Name("torch"))
        names = []
        for alias in stmt.names:  # type: ignore[union-attr]
            full = f"{module}.{dotted_name(alias.name)}"
            names.append(alias.with_changes(name=cst.Name(OLD[full][0])) if full in OLD else alias)
        return stmt.with_changes(module=amp, names=names)
    new_names = []
    for alias in stmt.names:
        full = dotted_name(alias.name) or ""
        if alias.asname is not None and full in OLD_MODULES:
            alias = alias.with_changes(name=amp)
        new_names.append(alias)
    return stmt.with_changes(names=new_names)


# --- tree helpers ---


def _passive(stack: list[cst.CSTNode]) -> bool:
    """Inside an annotation, an import, or an `isinstance`/`issubclass` test."""
    for node, child in zip(stack, stack[1:]):
        if isinstance(node, (cst.Annotation, cst.Import, cst.ImportFrom)):
            return True
        if isinstance(node, cst.Call) and isinstance(child, cst.Arg) and isinstance(node.func, cst.Name):
            if node.func.value in ("isinstance", "issubclass", "type"):
                return True
    return False


def _bound(stmt: cst.Import | cst.ImportFrom) -> ImportMap:
    """The names that one import statement binds."""
    bound = ImportMap()
    bound.add(stmt)
    return bound
