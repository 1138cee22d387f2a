"""A light import-alias resolver: maps local names to the dotted names they import."""

from __future__ import annotations

import libcst as cst


def dotted_name(node: cst.BaseExpression | cst.CSTNode) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def _module_name(node: cst.BaseExpression | None) -> str:
    return dotted_name(node) or "" if node is not None else ""


class ImportMap:
    """Local name -> fully qualified dotted name, filled from import statements."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        # local name -> (import statement, alias) of the binding that `aliases` keeps
        self.origins: dict[str, tuple[cst.Import | cst.ImportFrom, cst.ImportAlias]] = {}

    def snapshot(self) -> ImportMap:
        """A copy that later imports do not change."""
        copy = ImportMap()
        copy.aliases = dict(self.aliases)
        copy.origins = dict(self.origins)
        return copy

    def _bind(self, local: str, full: str, node: cst.Import | cst.ImportFrom, alias: cst.ImportAlias) -> None:
        # A name bound twice (try/except imports, version branches) keeps its first binding in
        # source order, so resolution never depends on set or hash order.
        if local not in self.aliases:
            self.aliases[local] = full
            self.origins[local] = (node, alias)

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = _module_name(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._bind(alias.asname.name.value, full, node, alias)
                else:
                    top = full.split(".")[0]
                    self._bind(top, top, node, alias)
            return
        if node.relative or isinstance(node.names, cst.ImportStar):
            return
        base = _module_name(node.module)
        for alias in node.names:
            name = _module_name(alias.name)
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self._bind(local, f"{base}.{name}" if base else name, node, alias)

    def resolve(self, node: cst.CSTNode) -> str | None:
        """The qualified name of a Name/Attribute chain whose head is an imported name."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        full = self.aliases.get(head)
        if full is None:
            return None
        return f"{full}.{rest}" if rest else full

    def local_names_for(self, qualified: str) -> list[str]:
        """Local spellings that resolve to `qualified` (or a prefix of it)."""
        out = []
        for local, full in self.aliases.items():
            if qualified == full:
                out.append(local)
            elif qualified.startswith(full + "."):
                out.append(local + qualified[len(full):])
        return out

    def imports_torch(self) -> bool:
        return any(full == "torch" or full.startswith("torch.") for full in self.aliases.values())
