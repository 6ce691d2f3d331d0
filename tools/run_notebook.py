"""Execute the chapter notebook for one framework and show its progress in the terminal.

    python -m tools.run_notebook SRC.ipynb DEST.ipynb [--framework pytorch]

`make run` uses this instead of `jupyter nbconvert --execute`, which prints
nothing for the hour a full training run takes. While the notebook executes,
the terminal shows which of the tab's cells runs (cells of the other tabs are
skipped by the tab magic and not counted), what each cell prints, and during
training the Trainer's progress bar and one line per epoch: the kernel gets
$D2L_PROGRESS, a file that the Trainer appends to and this script follows.
The executed notebook, with its outputs and plots, is written to DEST (also
when a cell fails, so that the error can be read there).

Ctrl-C (SIGINT) or SIGTERM stops the run within seconds: the kernel is
interrupted (and killed if it does not stop), the notebook is written as far
as it ran, and the Trainer's checkpoint of the finished epochs stays, so that
running the same command again resumes after the last of them.
"""
import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from d2lsupport.core import FRAMEWORKS
from d2lsupport.notebook import cell_tabs
from d2lsupport.trainer import PROGRESS_ENV


def tab_cells(nb, framework):
    """Indices of the code cells that run in `framework`'s tab."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == 'code'
            and ('all' in cell_tabs(cell.source) or framework in cell_tabs(cell.source))]


def first_line(source, width=70):
    lines = [line for line in source.splitlines() if not line.startswith('%%tab')]
    line = (lines or [''])[0]
    return line if len(line) <= width else line[:width - 3] + '...'


class EchoingClient(NotebookClient):
    """A notebook client that also writes each running cell's number and text
    output to the terminal."""

    def __init__(self, nb, framework, stopper, **kwargs):
        super().__init__(nb, **kwargs)
        self.numbers = {index: n for n, index in enumerate(tab_cells(nb, framework), 1)}
        self.stopper = stopper
        self.on_cell_execute = self.announce

    def announce(self, cell, cell_index):
        self.stopper.arm()
        if cell_index in self.numbers:
            print(f'[cell {self.numbers[cell_index]}/{len(self.numbers)}] '
                  f'{first_line(cell.source)}', flush=True)

    def output(self, outs, msg, display_id, cell_index):
        if msg['msg_type'] == 'stream':
            stream = sys.stderr if msg['content']['name'] == 'stderr' else sys.stdout
            stream.write(msg['content']['text'])
            stream.flush()
        return super().output(outs, msg, display_id, cell_index)


def follow(path, stop, out=sys.stderr, interval=0.5):
    """Copy what is appended to `path` to `out` until `stop` is set."""
    with open(path) as f:
        while True:
            text = f.read()
            if text:
                out.write(text)
                out.flush()
            elif stop.wait(interval):
                out.write(f.read())
                return


KILL_AFTER = 5   # seconds an interrupted kernel has to stop before it is killed


class Stopper:
    """Stops a run at SIGINT (Ctrl-C) or SIGTERM: interrupts the kernel's process
    group, and kills it when it has not stopped after KILL_AFTER seconds or at a
    second signal; `signal` names the first signal received, if any.

    nbclient handles both signals itself while it executes (it cleans up the
    client and waits on), so `arm` takes them over from inside its event loop."""

    def __init__(self, kernel):
        self.kernel, self.signal, self.timer = kernel, None, None

    def arm(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle, sig)

    def handle(self, sig):
        if self.signal is None:
            self.signal = sig.name
            self.send(signal.SIGINT)
            self.timer = asyncio.get_running_loop().call_later(KILL_AFTER, self.send,
                                                               signal.SIGKILL)
        else:
            self.send(signal.SIGKILL)

    def send(self, sig):
        """Send `sig` to the kernel and the processes it started (its own group)."""
        process = getattr(self.kernel.provisioner, 'process', None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(process.pid), sig)

    def cancel(self):
        if self.timer:
            self.timer.cancel()


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.run_notebook',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('source', type=Path, help='the notebook to execute')
    parser.add_argument('dest', type=Path, help='where to write the executed notebook')
    parser.add_argument('--framework', choices=FRAMEWORKS,
                        default=os.environ.get('D2L_FRAMEWORK', 'pytorch'))
    parser.add_argument('--kernel', default='python3',
                        help='Jupyter kernel name (default: this Python, python3)')
    args = parser.parse_args(argv)
    nb = nbformat.read(args.source, as_version=4)
    os.environ['D2L_FRAMEWORK'] = args.framework
    with tempfile.TemporaryDirectory() as tmp:
        progress = Path(tmp, 'progress.txt')
        progress.touch()
        os.environ[PROGRESS_ENV] = str(progress)
        stop = threading.Event()
        follower = threading.Thread(target=follow, args=(progress, stop), daemon=True)
        follower.start()
        # a local kernel over Unix sockets, not TCP (which warns about encryption)
        # asynchronous, so that the event loop runs (and hears signals) while a cell runs
        kernel = AsyncKernelManager(kernel_name=args.kernel, transport='ipc',
                                    ip=str(Path(tmp, 'kernel')))
        stopper = Stopper(kernel)
        client = EchoingClient(nb, args.framework, stopper, km=kernel, timeout=None,
                               kernel_name=args.kernel,
                               resources={'metadata': {'path': str(args.source.parent)}})
        try:
            client.execute()
        except (CellExecutionError, DeadKernelError) as error:
            if stopper.signal:
                print(f'stopped by {stopper.signal}; the notebook so far is in {args.dest}. '
                      'A training run keeps its finished epochs: run the same command again '
                      'to resume after the last of them.', file=sys.stderr)
                return 128 + signal.Signals[stopper.signal].value
            print(f'error: {getattr(error, "ename", type(error).__name__)}: '
                  f'{getattr(error, "evalue", error)}\n(the cell and its traceback are '
                  f'in {args.dest})', file=sys.stderr)
            return 1
        finally:
            stopper.cancel()
            if kernel.has_kernel:
                run_sync(kernel.shutdown_kernel)(now=True)
            stop.set()
            follower.join()
            args.dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.dest)
    print(f'executed notebook: {args.dest}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
