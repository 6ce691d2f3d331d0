"""Run a framework's notebook under nbval as a reader outside this repository would.

``python -m tools.outside --framework F --wheel W --notebook NB --executed OUT --dir DIR
--data DATA``, run with the framework's environment (`make test` does, as nbval-F):

1. makes a new environment in DIR whose own site-packages gets the wheel W (so
   `d2lsupport` comes from the installed copy, with the records it ships), and checks
   that W's extra F resolves, without an index, against the framework's packages;
   those are borrowed from the running environment through a .pth line instead of
   being installed again (minutes per framework);
2. copies NB (the framework's notebook with its recorded outputs, without the install
   cell, which the reader runs instead) into DIR and runs nbval there in the small
   training budget, with nothing of the checkout on the path: pytest reads DIR's own
   configuration, the kernel starts in DIR, the data come from DATA;
3. before that, fails unless that environment's python, started in DIR with the
   kernel's variables, imports `d2lsupport` from DIR and finds there the records the
   notebook reads (the studies and the recorded runs).

The notebook as nbval ran it is written to OUT (tests/executed_notebook.py), for the
page.
"""
import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / 'tests' / 'executed_notebook.py'
PURELIB = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
# run by the new environment's python in DIR: d2lsupport comes from its own
# site-packages, and the records the notebook reads are inside it
WHERE = '''
import sys, d2lsupport
from d2lsupport import records
where = d2lsupport.__file__
print("d2lsupport", d2lsupport.__version__, "imported from", where)
if not where.startswith(sys.prefix):
    sys.exit("error: d2lsupport is not imported from the installed copy")
shipped = [records.STUDY_FILE, records.STUDY_COST_FILE, records.STUDY_LONG_FILE,
           *(f"{records.RESULTS_DIR}/regnetx32.{fw}.json" for fw in records.FRAMEWORKS)]
missing = [path for path in shipped if not (path.startswith(sys.prefix) and open(path).read())]
if missing:
    sys.exit(f"error: the package lacks the records {missing}")
'''



def run(*command, **kwargs):
    subprocess.run([str(c) for c in command], check=True, **kwargs)


def make_environment(folder, wheel, framework):
    """A new environment in `folder` with `wheel` installed; returns its python."""
    shutil.rmtree(folder, ignore_errors=True)
    run(sys.executable, '-m', 'venv', '--without-pip', folder)
    python = folder / 'bin' / 'python'
    own = subprocess.run([python, '-c', PURELIB], check=True, capture_output=True,
                         text=True).stdout.strip()
    Path(own, 'framework-environment.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    pip = [sys.executable, '-m', 'pip', '--python', python, 'install', '-q',
           '--disable-pip-version-check', '--no-index']
    # the checkout's own (editable) d2lsupport is visible through the .pth line: replace
    # it in this environment, then resolve the extra against what is there
    run(*pip, '--no-deps', '--force-reinstall', wheel)
    run(*pip, f'{Path(wheel).resolve()}[{framework}]')
    return python


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--framework', required=True)
    parser.add_argument('--wheel', required=True, type=Path)
    parser.add_argument('--notebook', required=True, type=Path)
    parser.add_argument('--executed', required=True, type=Path)
    parser.add_argument('--dir', required=True, type=Path)
    parser.add_argument('--data', required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.wheel.exists():
        raise SystemExit(f'error: no wheel {args.wheel}; run `make dist`')
    folder = args.dir.resolve()
    python = make_environment(folder, args.wheel, args.framework)
    shutil.copy(args.notebook, folder / 'cnn-design.ipynb')
    shutil.copy(PLUGIN, folder)
    (folder / 'pytest.ini').write_text('[pytest]\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(D2L_SMALL_BUDGET='1', D2L_DATA_DIR=str(args.data.resolve()))
    run(python, '-c', WHERE, cwd=folder, env=env)   # as the kernel will start, below
    result = subprocess.run(
        [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-c', 'pytest.ini',
         '-p', 'executed_notebook', '--nbval-lax', '--nbval-current-env', 'cnn-design.ipynb',
         '--executed-notebook', str(args.executed.resolve())], cwd=folder, env=env)
    return result.returncode


if __name__ == '__main__':
    sys.exit(main())
