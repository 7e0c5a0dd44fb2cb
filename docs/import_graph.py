"""The core's import graph (every relative import, module level or not) and a check that it has no cycles.

    python docs/import_graph.py             module -> modules it imports
    python docs/import_graph.py --packages  sub-package -> sub-packages it imports
Exits 1 if there is a cycle.
"""

import ast
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
mods = {}
for p in (root / "core").rglob("*.py"):
    rel = p.relative_to(root).with_suffix("")
    name = ".".join(rel.parts)
    if name.endswith(".__init__"): name = name[: -len(".__init__")]
    mods[name] = p
edges = {m: set() for m in mods}
for m, p in mods.items():
    tree = ast.parse(p.read_text())
    pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                cand = target + "." + alias.name
                if cand in mods: edges[m].add(cand)
                elif target in mods: edges[m].add(target)
for m in edges: edges[m].discard(m)
# cycles
sys.setrecursionlimit(10000)
color, stack, cycles = {}, [], []
def dfs(u):
    color[u] = 1; stack.append(u)
    for v in sorted(edges[u]):
        if color.get(v) == 1: cycles.append(stack[stack.index(v):] + [v])
        elif not color.get(v): dfs(v)
    stack.pop(); color[u] = 2
for m in sorted(mods):
    if not color.get(m): dfs(m)
short = lambda s: s.replace("core.", "")
pk = lambda s: short(s).split(".")[0]
pe = {}
for u, vs in edges.items():
    for v in vs:
        if pk(u) != pk(v): pe.setdefault(pk(u), set()).add(pk(v))
pcolor, pstack = {}, []
def pdfs(u):
    pcolor[u] = 1; pstack.append(u)
    for v in sorted(pe.get(u, ())):
        if pcolor.get(v) == 1: cycles.append(pstack[pstack.index(v):] + [v])
        elif not pcolor.get(v): pdfs(v)
    pstack.pop(); pcolor[u] = 2
for u in sorted(pe):
    if not pcolor.get(u): pdfs(u)
if "--packages" in sys.argv:
    for u in sorted(pe): print(f"{u} -> {', '.join(sorted(pe[u]))}")
else:
    for u in sorted(edges):
        if edges[u]: print(f"{short(u)} -> {', '.join(short(v) for v in sorted(edges[u]))}")
print("cycles:", cycles or "none")
sys.exit(1 if cycles else 0)
