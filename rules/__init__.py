"""ptlint's rules: one module per rule, discovered by ptlint.registry."""
