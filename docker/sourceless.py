"""Ship the third-party modules the server imports at start as bytecode only (image build).

Run in the venv stage after docker/startup_imports.py has compiled exactly those modules into
__pycache__: each such module's .pyc replaces its .py in place (a sourceless module, which
CPython imports as it would the source), so the image does not carry both. The cost: tracebacks
through these libraries show no source lines. xnornet's own packages (engine, service, training,
xnornet) keep their sources and lose their bytecode here: the runtime stage compiles them. Modules
not imported at start keep only their source and are compiled in memory if ever imported.
"""

import pathlib
import sys
import sysconfig

site = pathlib.Path(sysconfig.get_paths()["purelib"])
OWN = {"engine", "service", "training", "xnornet"}
tag = sys.implementation.cache_tag
count = 0
for cached in sorted(site.rglob(f"__pycache__/*.{tag}.pyc")):
    if cached.relative_to(site).parts[0] in OWN:
        cached.unlink()
        continue
    source = cached.parent.parent / (cached.name[: -len(f".{tag}.pyc")] + ".py")
    if not source.is_file():
        continue
    cached.rename(source.with_suffix(".pyc"))
    source.unlink()
    count += 1
for cache in sorted(site.rglob("__pycache__"), reverse=True):
    if not any(cache.iterdir()):
        cache.rmdir()
print(f"{site}: {count} modules now bytecode only")
