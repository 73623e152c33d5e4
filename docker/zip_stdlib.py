"""Move the pure-Python standard library into python311.zip (run by the image build, as root,
with python -B: bytecode this script's own imports wrote would keep their packages on disk).

CPython puts <prefix>/lib/python311.zip first on sys.path (for the venv's interpreter too), so
the modules import from the archive unchanged; deflated, the sources take about a quarter of
their size on disk. The standard-library files the server imports at start (listed, one path
relative to the standard library a line, in the file named by the argument; written by
docker/startup_imports.py) also get their bytecode inside, as unchecked hash-based .pyc beside
the source, so start-up compiles nothing and tracebacks still show source lines.

What stays on disk:
 - os.py, the landmark by which the interpreter finds its prefix;
 - extension modules (lib-dynload), site-/dist-packages and symlinks (Debian's sitecustomize);
 - every package holding anything besides .py files (e.g. venv's scripts), whole, since its code
   may read those files next to __file__.
"""

import os
import pathlib
import py_compile
import shutil
import sys
import sysconfig
import tempfile
import zipfile

stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
archive = stdlib.parent / f"python{sys.version_info.major}{sys.version_info.minor}.zip"
if str(archive) not in sys.path:
    sys.exit(f"{archive} is not on sys.path")
startup = set(pathlib.Path(sys.argv[1]).read_text().split())
KEEP_DIRS = {"lib-dynload", "site-packages", "dist-packages"}


def only_python(directory: pathlib.Path) -> bool:
    """Whether the package holds nothing but regular .py files (in any subpackage)."""
    for path in directory.rglob("*"):
        if path.is_symlink() or (path.is_file() and path.suffix != ".py"):
            return False
    return True


moved: list[pathlib.Path] = []
for entry in sorted(stdlib.iterdir()):
    if entry.is_symlink() or entry.name in KEEP_DIRS:
        continue
    if entry.is_file() and entry.suffix == ".py" and entry.name != "os.py":
        moved.append(entry)
    elif entry.is_dir() and only_python(entry):
        moved.extend(sorted(entry.rglob("*.py")))
# Imported at start but staying on disk (os.py; a package with data files): compiled in place.
for name in sorted(startup - {str(path.relative_to(stdlib)) for path in moved}):
    if (stdlib / name).is_file():
        py_compile.compile(str(stdlib / name), doraise=True)

with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(archive, "x", zipfile.ZIP_DEFLATED) as zf:
    pyc = os.path.join(tmp, "module.pyc")
    for path in moved:
        name = str(path.relative_to(stdlib))
        zf.write(path, name)
        if name in startup:
            py_compile.compile(
                str(path),
                cfile=pyc,
                dfile=str(archive / name),
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            zf.write(pyc, name[: -len(".py")] + ".pyc")
for path in moved:
    path.unlink()
for entry in stdlib.iterdir():
    if entry.is_dir() and not entry.is_symlink() and not any(p.is_file() for p in entry.rglob("*")):
        shutil.rmtree(entry)
print(f"{archive}: {len(moved)} modules, {len(startup)} compiled, {archive.stat().st_size / 1e6:.1f} MB")
