"""Framework-free helpers shared by the four framework modules."""
import contextlib
import importlib
import inspect
import os
import platform
import secrets
import subprocess
from pathlib import Path

# The frameworks: name -> the name of its d2lsupport module (also its import name).
MODULES = {'mxnet': 'mxnet', 'pytorch': 'torch', 'tensorflow': 'tensorflow', 'jax': 'jax'}
FRAMEWORKS = tuple(MODULES)

# The public names every framework module offers, with the same meaning in all four
# (`LAYOUT`, `try_layer` and `weights` are there for the tests and tools), and each
# module's documented extras; tests/test_frameworks.py checks that every module
# exports exactly these.
CHAPTER_CLASSES = ('ResNeXtBlock', 'AnyNet', 'RegNetX32', 'RegNetY32')
PUBLIC_NAMES = ('add_to_class', 'HyperParameters', 'ProgressBoard', 'DataModule', 'Module',
                'Classifier', 'FashionMNIST', 'Trainer', 'Recipe', 'SqueezeExcitation',
                'resnext_arguments', *CHAPTER_CLASSES, 'anynet', 'param_count', 'cpu', 'gpu',
                'num_gpus', 'try_gpu', 'LAYOUT', 'try_layer', 'weights')
# the extras: PyTorch's initializer of the book's tab, and the layers that compute a
# piece of the chapter's block in a faster form on a CPU
EXTRAS = {'pytorch': ('init_cnn',), 'tensorflow': ('FusedBatchNorm', 'SplitGroupConv2D'),
          'jax': ('Conv1x1', 'GroupedConv3x3')}


def public_names(framework):
    """The `__all__` of `framework`'s module: the shared names and its extras."""
    return [*PUBLIC_NAMES, *EXTRAS.get(framework, ())]


def chapter_access(module_name):
    """(`__getattr__`, `anynet`) for the framework module `module_name` (such as
    'd2lsupport.torch'). The module `__getattr__` finds the chapter's classes in the
    module generated from the chapter's #@save cells ('d2lsupport.chapter.torch');
    the import waits for the first use, since the generated module imports the
    framework module, whose building blocks the chapter's cells use."""
    generated = module_name.replace('d2lsupport.', 'd2lsupport.chapter.', 1)

    def __getattr__(name):
        if name in CHAPTER_CLASSES:
            return getattr(importlib.import_module(generated), name)
        raise AttributeError(f'module {module_name!r} has no attribute {name!r}')

    def anynet(config, lr=0.1):
        """The chapter's `AnyNet` for a `d2lsupport.design.AnyNetConfig`."""
        from .design import anynet_arguments
        return __getattr__('AnyNet')(**anynet_arguments(config), lr=lr)
    return __getattr__, anynet


def framework_module(framework):
    """The d2lsupport module of `framework`, e.g. 'pytorch' -> d2lsupport.torch."""
    if framework not in MODULES:
        raise ValueError(f'unknown framework {framework!r}; choose one of {", ".join(FRAMEWORKS)}')
    return importlib.import_module(f'd2lsupport.{MODULES[framework]}')


def image_shape(layout, batch, size, channels=1):
    """The shape of a batch of square images in a framework's `LAYOUT`."""
    if layout not in ('NCHW', 'NHWC'):
        raise ValueError(f'layout must be NCHW or NHWC, got {layout!r}')
    return (batch, channels, size, size) if layout == 'NCHW' else (batch, size, size, channels)


# Read by the frameworks when they load: OpenMP (PyTorch, MXNet), TensorFlow's
# thread pools, and XLA's flags (JAX).
THREAD_ENV = ('OMP_NUM_THREADS', 'TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS')
XLA_ONE_THREAD = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'


def limit_threads(threads):
    """Ask every framework to use `threads` threads for its operators; call it in
    a fresh process before the framework loads (the study's workers do).

    XLA on a CPU can be held to one thread but has no setting for a number
    between one and all cores, so JAX uses all cores when `threads` > 1.
    """
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    if threads == 1 and XLA_ONE_THREAD not in os.environ.get('XLA_FLAGS', ''):
        os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()


def add_to_class(Class):
    """Register the decorated function as a method of `Class`."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
        return obj
    return wrapper


class HyperParameters:
    """Mixin that stores the caller's ``__init__`` arguments as attributes."""

    def save_hyperparameters(self, ignore=()):
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in set(ignore) | {'self'}
                        and not k.startswith('_') and k != '__class__'}
        for k, v in self.hparams.items():
            setattr(self, k, v)


@contextlib.contextmanager
def atomic_file(path, mode='xb'):
    """Yield a new file beside `path`, opened with `mode`, that replaces `path`
    once written and forced to disk: a crash leaves the old file or the new
    one, never a part of it."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{secrets.token_hex(4)}.part')
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def in_notebook():
    """True when running inside a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == 'ZMQInteractiveShell'


class ProgressBoard:
    """A live line plot of training curves, redrawn on request.

    In a notebook the figure is shown once and updated in place; elsewhere
    `show` does nothing and `save` writes the figure to a file.
    """

    def __init__(self, xlabel='epoch', ylim=(0, 1.5), figsize=(5, 3.2)):
        self.xlabel, self.ylim, self.figsize = xlabel, ylim, figsize
        self.lines, self.title, self._handle = {}, '', None

    def draw(self, x, y, label):
        """Add the point (x, y) to the curve called `label`."""
        xs, ys = self.lines.setdefault(label, ([], []))
        xs.append(x)
        ys.append(y)

    def figure(self):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=self.figsize)
        styles = ('-', '--', '-.', ':')
        for i, (label, (xs, ys)) in enumerate(self.lines.items()):
            ax.plot(xs, ys, styles[i % 4], label=label)
        ax.set_xlabel(self.xlabel)
        ax.set_ylim(*self.y_range())
        ax.grid(alpha=0.3)
        if self.lines:
            ax.legend(loc='upper right')
        ax.set_title(self.title, fontsize=9)
        fig.tight_layout()
        plt.close(fig)
        return fig

    def y_range(self):
        """`ylim`, widened where a curve leaves it, so that every point shows."""
        ys = [y for _, values in self.lines.values() for y in values]
        low, high = self.ylim
        if not ys:
            return low, high
        margin = 0.05 * (max(high, max(ys)) - min(low, min(ys)))
        return (low if min(ys) >= low else min(ys) - margin,
                high if max(ys) <= high else max(ys) + margin)

    def show(self):
        """Redraw the figure in the notebook output (no-op outside Jupyter)."""
        if not in_notebook():
            return
        from IPython import display
        fig = self.figure()
        if self._handle is None:
            self._handle = display.display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def save(self, path):
        self.figure().savefig(path)


class Budget:
    """How much of the requested training actually runs.

    The test harness (and `make html`, unless FULL=1) sets ``D2L_SMALL_BUDGET=1`` so
    that notebooks finish in seconds; readers never set it and get the full run.
    ``D2L_TIME_LIMIT`` (minutes) stops training after the first epoch that ends past
    the limit.
    """
    ENV = 'D2L_SMALL_BUDGET'
    TIME_ENV = 'D2L_TIME_LIMIT'
    SMALL = dict(max_epochs=2, train_batches=3, val_batches=2)

    def __init__(self, small=None, minutes=None):
        if small is None:
            small = os.environ.get(self.ENV, '') not in ('', '0')
        if minutes is None:
            minutes = float(os.environ.get(self.TIME_ENV) or 'inf')
        self.small, self.minutes = small, minutes

    def out_of_time(self, seconds):
        return seconds > 60 * self.minutes

    def epochs(self, max_epochs):
        return min(max_epochs, self.SMALL['max_epochs']) if self.small else max_epochs

    def batches(self, num_batches, train):
        if not self.small:
            return num_batches
        key = 'train_batches' if train else 'val_batches'
        return min(num_batches, self.SMALL[key])

    def banner(self):
        s = self.SMALL
        return (f'SMALL-BUDGET MODE ({self.ENV}=1, set by the tests and by make html): '
                f'at most {s["max_epochs"]} epochs of {s["train_batches"]} training '
                f'and {s["val_batches"]} validation batches. These numbers are '
                'not results; unset the variable for the full run.')


BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16')   # /proc/cpuinfo's names of the instructions


def cpu_bfloat16(cpuinfo='/proc/cpuinfo'):
    """The CPU's instruction set for bfloat16 arithmetic (AVX512_BF16 or AMX), as
    the kernel reports it, or None when it has none (or the file is missing)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return None
    return next((flag for flag in BFLOAT16_FLAGS if flag in flags), None)


def cpu_name():
    """The processor model, e.g. from /proc/cpuinfo."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores(sysfs='/sys/devices/system/cpu'):
    """Physical CPU cores this process may use, hyperthreads counted once
    (from Linux's `sysfs` topology where it exists, else every logical CPU counts)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') \
        else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = f'{sysfs}/cpu{cpu}/topology/'
        try:
            with open(topology + 'physical_package_id') as p, open(topology + 'core_id') as c:
                cores.add((p.read().strip(), c.read().strip()))
        except OSError:
            cores.add(cpu)
    return max(len(cores), 1)


def cpu_count():
    """Logical CPUs this process may use (its affinity mask where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


def checkout_root():
    """The root of the cnn-design repository this code runs from, or None when
    d2lsupport is an installed package (then what it ships is read through
    importlib.resources)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / 'chapter_cnn_design').is_dir() else None


def source_commit(repo=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    """The git commit of the code in `repo` ('<sha>+dirty' when the chapter or the
    library differ from it), or None outside a git checkout and for an installed
    package (whose folder may lie inside some other repository)."""
    if checkout_root() is None:
        return None

    def git(*args):
        return subprocess.run(['git', '-C', repo, *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
    try:
        sha = git('rev-parse', 'HEAD')
        changed = git('status', '--porcelain', '--', 'd2lsupport', 'chapter_cnn_design')
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ('+dirty' if changed else '')


def machine_info():
    """A short description of the machine that produced a result."""
    return {'cpu': cpu_name(), 'cores': os.cpu_count(),
            'python': platform.python_version(), 'system': platform.system()}


class DataModule(HyperParameters):
    """Base of data modules: subclasses implement `get_dataloader(train)`."""

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)


def layer_names(model, layers):
    """Names for the top-level layers of `model`: stem, stage 1, ..., head for a
    network of the chapter's template (its `arch` has one entry per stage
    between the stem and the head), else each layer's class name."""
    arch = getattr(model, 'arch', None)
    if arch is not None and len(layers) == len(arch) + 2:
        return ['stem', *(f'stage {i}' for i in range(1, len(arch) + 1)), 'head']
    return [type(layer).__name__ for layer in layers]


def print_layer_table(model, rows):
    """Print one line per (top-level layer of `model`, output shape, parameter
    count), the layer named by `layer_names`, and the total."""
    names = layer_names(model, [layer for layer, _, _ in rows])
    for name, (_, shape, count) in zip(names, rows):
        print(f'{name:<18} output shape: {str(tuple(shape)):<18} parameters: {count:>9,}')
    print(f'total parameters: {sum(count for _, _, count in rows):,}')
