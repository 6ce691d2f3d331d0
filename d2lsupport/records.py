"""The records under results/ (in an installed package, the copy it ships as
d2lsupport/results): where they live, how they are written and read,
and the table of the chapter's training runs.

Every record is strict JSON (RFC 8259), which has no NaN or infinity: a
non-finite number, such as the loss of a run that diverged, is written as
the string "NaN", "Infinity" or "-Infinity" (`strict_json`), and `number`
reads such a value back as a float. Whole files are replaced atomically
(`write_json_atomic`); JSON Lines files grow by whole lines forced to disk
(`append_json_line`), so a crash leaves at most an incomplete last line,
which readers ignore (`read_json_lines`) and writers cut off
(`drop_incomplete_line`).
"""
import importlib.resources
import json
import math
import os
from pathlib import Path

import numpy as np

from .core import FRAMEWORKS, atomic_file, checkout_root


def results_dir():
    """results/ of the repository when running from it (where `make run` and `make
    study` write); else the records shipped inside the package."""
    root = checkout_root()
    return str(root / 'results' if root else importlib.resources.files(__package__) / 'results')


RESULTS_DIR = results_dir()
# The design-space studies shipped with the chapter: the first one, over whole
# spaces; the one at equal cost; and its first networks retrained with a four
# times longer budget.
STUDY_FILE = os.path.join(RESULTS_DIR, 'study.jsonl')
STUDY_COST_FILE = os.path.join(RESULTS_DIR, 'study-cost.jsonl')
STUDY_LONG_FILE = os.path.join(RESULTS_DIR, 'study-long.jsonl')
NON_FINITE = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}


class RecordError(RuntimeError):
    """A records file that cannot be read; the message says which and what to do."""


def strict_json(obj):
    """`obj` with every non-finite float replaced by its name ("NaN",
    "Infinity", "-Infinity") and numpy scalars and arrays made Python ones."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return 'NaN' if math.isnan(obj) else ('Infinity' if obj > 0 else '-Infinity')
    if isinstance(obj, dict):
        return {key: strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(value) for value in obj]
    return obj


def dumps(obj, **kwargs):
    """`obj` as strict JSON text (see `strict_json`)."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def number(value):
    """A number of a record as a float: the names of non-finite numbers and
    None (what older records hold for a non-finite loss) count as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return NON_FINITE.get(value, math.nan)
    return float(value)


def write_json_atomic(path, obj, indent=1):
    """Replace the file `path` by `obj` as strict JSON, all at once: a crash
    leaves the old file or the new one, never a part of it."""
    text = dumps(obj, indent=indent) + '\n'
    with atomic_file(path, 'x') as f:
        f.write(text)


def append_json_line(path, obj):
    """Append `obj` as one line of strict JSON and force it to disk before returning."""
    line = memoryview((dumps(obj) + '\n').encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while line:
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_bytes(path):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RecordError(f'cannot read {path} ({e.strerror}); choose a readable '
                          'records file') from None


def read_json_lines(path):
    """The records of a JSON Lines file ([] if there is none); an incomplete
    last line (no newline yet) is not a record."""
    data = _read_bytes(path)
    if data is None:
        return []
    records = []
    for line_number, line in enumerate(data[:data.rfind(b'\n') + 1].splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            raise RecordError(f'{path}, line {line_number}: not a JSON record; delete '
                              'that line, or choose another file') from None
    return records


def drop_incomplete_line(path):
    """Cut an incomplete last line, left by a crash while writing, off the file."""
    try:
        with open(path, 'r+b') as f:
            data = f.read()
            if data and not data.endswith(b'\n'):
                f.truncate(data.rfind(b'\n') + 1)
                os.fsync(f.fileno())
    except FileNotFoundError:
        pass


def read_json(path):
    """The record in the JSON file `path`, or None if there is no such file."""
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise RecordError(f'{path} is not a JSON record; delete it and record '
                          'the run again') from None


# ------------------------------------------------------- the training runs

def last_epochs_val_acc(record, n=4):
    """(lowest, highest) validation accuracy over the last `n` epochs of a record:
    how much the final accuracy moves from epoch to epoch."""
    accs = [number(h['val_acc']) for h in record['history'][-n:]]
    return min(accs), max(accs)


def run_row(record):
    """One line of `show_results` for a training record."""
    done = f'{record["epochs_done"]}/{record["epochs_planned"]}'
    low, high = last_epochs_val_acc(record)
    spread = f'{low:.3f}-{high:.3f}' if len(record['history']) >= 4 else 'n/a'
    peak = f'{record["peak_rss_mb"]:.0f}' if record.get('peak_rss_mb') else 'n/a'
    note = '' if record['complete'] else '  (incomplete run)'
    return (f'{record["framework"]:<11}{done:>7}{number(record["train_loss"]):>11.3f}'
            f'{number(record["val_acc"]):>8.3f}{spread:>15}'
            f'{record["wall_time_s"] / 60:>8.1f}{record["examples_per_sec"]:>11.0f}'
            f'{peak:>9}  {record.get("precision", "float32")}{note}')


def show_results(model='RegNetX32', folder=RESULTS_DIR):
    """Print the recorded runs of `model`, one line per framework: final training
    loss and validation accuracy, the range of validation accuracy over the last
    four epochs, wall time, examples/s, peak resident memory and the precision it
    computed in (float32 for records older than the setting). A record that
    cannot be read gets a line that says so instead."""
    rows, lines = [], []
    for fw in FRAMEWORKS:
        path = os.path.join(folder, f'{model.lower()}.{fw}.json')
        try:
            record = read_json(path)
            if record is not None:
                lines.append(run_row(record))
                rows.append(record)
        except (RecordError, KeyError, TypeError, ValueError) as e:
            reason = e if isinstance(e, RecordError) else f'{path} is not a training record'
            lines.append(f'{fw:<11}{reason}; `make run FRAMEWORK={fw}` records it again')
    if not lines:
        print(f'no recorded runs of {model} in {folder}; `make run` records one')
        return
    print(f'{"framework":<11}{"epochs":>7}{"train loss":>11}{"val acc":>8}'
          f'{"last 4 epochs":>15}{"minutes":>8}{"examples/s":>11}{"peak MiB":>9}  precision')
    print('\n'.join(lines))
    machines = sorted({f'{r["machine"].get("cores")} cores, {r["machine"].get("cpu")}'
                       for r in rows if isinstance(r.get('machine'), dict)})
    if machines:
        print('machine: ' + '; '.join(machines))
