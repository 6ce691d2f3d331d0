"""Build the chapter as a d2lbook HTML page with one code tab per framework.

`make html` runs this in the docs environment (.venv/docs) from the repository root;
d2lbook 1.0.3 does the work, configured by config.ini. The steps:

stage  Copy the book's sources (index.md, the chapter, chapter_references/,
       references.bib, img/) into config.ini's source_dir, _build/src. The copy of the
       chapter differs from the source in three ways, all made here at build time:
       - its first cell, ``%load_ext d2lsupport.tab``, is left out. d2lbook splits the
         notebook by the ``%%tab`` lines itself and runs each tab's cells as plain code,
         so the magic is not needed; and d2lbook would give a cell without a ``%%tab``
         line to the first tab only, where it would show its banner as an output;
       - a note under the title says which training budget produced the outputs;
       - references to sections of the full book (AlexNet, ResNet, ...), which this
         one-chapter book does not contain, become links to those sections on d2l.ai.
       build-inputs.txt fingerprints what the outputs depend on besides the sources;
       d2lbook evaluates again when it changes (config.ini's `dependencies`).
eval   d2lbook's eval step once per tab, with the notebook kernel started from that
       framework's environment (.venv/<framework>/bin/python) and D2L_FRAMEWORK and
       D2L_SMALL_BUDGET set for it. With --executed DIR (`make test`), a tab is not
       run again: its cells get the outputs of DIR/cnn-design.<framework>.ipynb, the
       reader's notebook as nbval just ran it in the small budget (kept by
       tests/executed_notebook.py), matched cell by cell by their code. A kept
       notebook that failed, or ran other code than the chapter's, is not used: that
       tab is run as without the option. d2lbook starts the kernel named python3, so a
       kernel of that name is written for each framework and found via JUPYTER_PATH.
       Two of d2lbook's habits are adjusted for the run: it reserves a GPU for a
       notebook whose code says `num_gpus=1` and refuses to run it on a machine
       without one, and it stops a cell after 20 minutes (lifted with --full).
merge  d2lbook's merge of the evaluated tabs into one notebook, with two changes:
       - a cell that trained in the small budget (its output has the small-budget
         banner) shows instead its outputs from that framework's recorded run,
         results/cnn-design.<framework>.ipynb (made by `make run`), under a line
         naming the record, its commit and how many epochs it ran. Cells are
         matched by their code, so editing another cell keeps the recorded outputs,
         and editing a training cell shows the small budget again until `make run`
         records it anew. The page never trains in full unless --full is given;
       - a cell that every tab ran with the same source (the chapter's ``%%tab all``
         cells) and that printed the same text in every tab is shown once, outside
         the tabs, with the first tab's outputs; one whose text differs (the
         training cell, the source of each framework's blocks) stays in every tab.
html   d2lbook's rst and html steps. What the page would otherwise load from other
       sites ships with it, in _static: MathJax, from npm (installed by `make html` into
       the docs environment), so that math renders without a CDN, and the icon of the
       copy buttons on code blocks, which d2lbook's script fetches from GitHub.

Usage (from the repository root):
    python -m tools.book [--full | --executed DIR] [--envs-dir .venv] [step ...]
"""
import argparse
import collections
import configparser
import copy
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path
from unittest import mock

import nbformat

from d2lsupport.core import FRAMEWORKS, Budget  # framework-free, stdlib only
from d2lsupport.notebook import cell_tabs

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = 'chapter_cnn_design/cnn-design.md'
READER_NOTEBOOK = 'chapter_cnn_design/cnn-design.ipynb'
EXECUTED = 'cnn-design.{}.ipynb'   # a framework's notebook as nbval ran it, in --executed DIR
EXECUTED_META = 'cnn_design_nbval'  # written by tests/executed_notebook.py (META)
SOURCES = ['index.md', CHAPTER, 'chapter_references/references.md', 'references.bib']
SOURCE_DIRS = ['img']
STEPS = ['stage', 'eval', 'merge', 'html', 'editions']

# Sections of the full book that the chapter refers to: label -> (title, page on d2l.ai).
D2L_SITE = 'https://d2l.ai/'
D2L_SECTIONS = {
    'sec_alexnet': ('AlexNet', 'chapter_convolutional-modern/alexnet.html'),
    'sec_vgg': ('VGG', 'chapter_convolutional-modern/vgg.html'),
    'sec_nin': ('NiN', 'chapter_convolutional-modern/nin.html'),
    'sec_googlenet': ('GoogLeNet', 'chapter_convolutional-modern/googlenet.html'),
    'sec_resnet': ('ResNet', 'chapter_convolutional-modern/resnet.html'),
    'subsec_resnext': ('ResNeXt', 'chapter_convolutional-modern/resnet.html#resnext'),
    'sec_why-conv': ('From Fully Connected Layers to Convolutions',
                     'chapter_convolutional-neural-networks/why-conv.html'),
    'sec_vision-transformer': ('Transformers for Vision',
                               'chapter_attention-mechanisms-and-transformers/vision-transformer.html'),
}

LOAD_EXT_CELL = re.compile(r'^```\{\.python \.input[^}]*\}\n%load_ext d2lsupport\.tab\n```\n+',
                           re.MULTILINE)
NUMREF = re.compile(r':numref:`([^`]+)`')
LABEL = re.compile(r':label:`([^`]+)`')
NOTE_MARK = 'Outputs on this page'
RUN_NOTEBOOK = 'results/cnn-design.{}.ipynb'   # a framework's recorded run (make run)
RUN_RECORD = 'results/regnetx32.{}.json'
NOTEBOOKS = 'notebooks'   # one per framework and language (tools/notebooks.py)
RECORDED_MARK = 'Recorded run:'

log = logging.getLogger('book')


def read_config():
    """The [build] settings of config.ini that this script needs."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'config.ini', encoding='utf-8')
    build = parser['build']
    tabs = [t.strip() for t in build['tabs'].split(',')]
    if tuple(tabs) != FRAMEWORKS:
        raise SystemExit(f'config.ini: tabs are {tabs}, expected {list(FRAMEWORKS)}')
    return {'src': ROOT / build['source_dir'], 'out': ROOT / build['output_dir'], 'tabs': tabs,
            'dependencies': build['dependencies'].strip()}


# ----------------------------------------------------------------- stage

# The other language editions of the page (d2lsupport.translation makes their chapters):
# code -> (name of the language, the page's title, the note's first words). Each page
# links the others under its title; English lives at the root, the others in <code>/.
EDITIONS = {'en': ('English', 'cnn-design: From AnyNet to RegNet', NOTE_MARK),
            'id': ('Bahasa Indonesia', 'cnn-design: dari AnyNet ke RegNet', 'Keluaran di halaman ini')}


def budget_note(full, language='en'):
    """The paragraph that tells which training budget produced the page's outputs."""
    if language == 'id':
        return budget_note_id(full)
    if full:
        return (f'*{NOTE_MARK}* come from the full training budget (`make html FULL=1`): '
                'every tab trained for as many epochs as its code asks for. Each tab ran in '
                "its own framework's environment.")
    s = Budget.SMALL
    return (f'*{NOTE_MARK}* come from running each tab in its own framework\'s environment '
            f'with the small training budget of `make html` (`{Budget.ENV}=1`: at most '
            f'{s["max_epochs"]} epochs of {s["train_batches"]} training and {s["val_batches"]} '
            'validation batches), except the cells that train: they show the outputs of '
            "that framework's recorded run of the chapter (`make run`), under a line that "
            'names the record. `make html FULL=1` trains every tab in full instead.')


def budget_note_id(full):
    """`budget_note` in Indonesian."""
    mark = EDITIONS['id'][2]
    if full:
        return (f'*{mark}* berasal dari anggaran pelatihan penuh (`make html FULL=1`): setiap '
                'tab dilatih selama jumlah epoch yang diminta kodenya, di lingkungan '
                '*framework*-nya sendiri.')
    s = Budget.SMALL
    return (f'*{mark}* berasal dari menjalankan setiap tab di lingkungan *framework*-nya '
            f'sendiri dengan anggaran pelatihan kecil dari `make html` (`{Budget.ENV}=1`: '
            f'paling banyak {s["max_epochs"]} epoch berisi {s["train_batches"]} batch '
            f'pelatihan dan {s["val_batches"]} batch validasi), kecuali sel yang melatih: '
            'sel itu menampilkan keluaran dari pelatihan terekam *framework* tersebut '
            '(`make run`), di bawah baris yang menyebut rekamannya. Teks keluaran kode tetap '
            'berbahasa Inggris.')


def language_links(language):
    """The paragraph under the title that links this page's other editions."""
    depth = '../' if language == 'en' else '../../'
    links = []
    for code, (name, _, _) in EDITIONS.items():
        if code != language:
            folder = '' if code == 'en' else f'{code}/'
            links.append(f'[{name}]({depth}{folder}{CHAPTER.replace(".md", ".html")})')
    label = 'Baca dalam' if language == 'id' else 'Read in'
    return f'*{label}:* ' + ', '.join(links)


def add_note(text, note):
    """Insert `note` as a paragraph after the title (and its :label: line)."""
    lines = text.split('\n')
    for i, line in enumerate(lines):
        if line.startswith('# '):
            at = i + 2 if i + 1 < len(lines) and lines[i + 1].startswith(':label:') else i + 1
            return '\n'.join(lines[:at] + ['', note] + lines[at:])
    raise ValueError('the chapter has no title line')


def link_book_sections(text, local_labels):
    """Replace references to sections not in this book by links to d2l.ai."""
    def replace(match):
        label = match.group(1)
        if label in local_labels:
            return match.group(0)
        if label not in D2L_SECTIONS:
            log.warning('unresolved reference :numref:`%s` (neither in this book nor in '
                        'D2L_SECTIONS of tools/book.py)', label)
            return match.group(0)
        title, page = D2L_SECTIONS[label]
        return f'[d2l.ai: {title}]({D2L_SITE}{page})'
    return NUMREF.sub(replace, text)


def framework_titles(makefile=ROOT / 'Makefile'):
    """{framework: title} from the Makefile's FRAMEWORK_TITLES, the one list of titles."""
    line = next(line for line in makefile.read_text().splitlines()
                if line.startswith('FRAMEWORK_TITLES'))
    return dict(pair.split(':') for pair in line.split(':=', 1)[1].split())


def notebook_links(language):
    """One tab per framework, linking that framework's notebook (notebooks/, copied
    beside the page by the html step)."""
    suffix = '' if language == 'en' else f'.{language}'
    blocks, titles = [], framework_titles()
    for framework in read_config()['tabs']:   # the page's tab order
        title = titles[framework]
        href = f'../{NOTEBOOKS}/{framework}/cnn-design{suffix}.ipynb'
        if language == 'id':
            text = (f'[Unduh notebook {title} bab ini]({href}): satu berkas untuk Jupyter '
                    'di luar repositori ini, dengan sel yang memasang pustakanya.')
        else:
            text = (f'[Download the {title} notebook of this chapter]({href}): one file for a '
                    'Jupyter outside this repository, with a cell that installs the library.')
        blocks.append(f':begin_tab:`{framework}`\n\n{text}\n\n:end_tab:')
    return '\n\n'.join(blocks)


def stage_chapter(text, full, local_labels, language='en'):
    text, dropped = LOAD_EXT_CELL.subn('', text, count=1)
    if not dropped:
        log.warning('the chapter has no `%%load_ext d2lsupport.tab` cell to leave out')
    text = add_note(text, notebook_links(language))   # below the two notes
    text = add_note(text, budget_note(full, language))
    text = add_note(text, language_links(language))   # above the note
    return link_book_sections(text, local_labels)


def write_if_changed(path, data):
    """Write bytes to path unless it already holds them (keeps d2lbook's mtimes useful)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def build_inputs(full, root=ROOT, executed=None):
    """What the evaluated outputs depend on, besides the staged sources: the
    library (with the modules generated from the chapter), this script, the records, the
    environments' lock files, the training budget and the executed notebooks that
    stand in for running the tabs (`executed`, a folder)."""
    files = sorted([*root.glob('d2lsupport/**/*.py'), *root.glob('results/*.json*'),
                    *root.glob('requirements/*.txt'), root / 'pyproject.toml',
                    root / 'tools' / 'book.py'])
    if executed is not None:
        files += sorted(Path(executed).glob(EXECUTED.format('*')))
    lines = [f'training budget: {"full" if full else "small"}']
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        name = path.relative_to(root) if path.is_relative_to(root) else path
        lines.append(f'{digest}  {name}')
    return '\n'.join(lines) + '\n'


def local_labels():
    """The labels that the book's own sources define (references to others link out)."""
    return {label for name in SOURCES if name.endswith('.md')
            for label in LABEL.findall((ROOT / name).read_text())}


def stage(cfg, full, executed=None):
    src = cfg['src']
    wanted = {}
    for name in SOURCES:
        wanted[name] = (ROOT / name).read_bytes()
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob('*')):
            if path.is_file():
                wanted[str(path.relative_to(ROOT))] = path.read_bytes()
    wanted[CHAPTER] = stage_chapter(wanted[CHAPTER].decode(), full, local_labels()).encode()
    wanted[cfg['dependencies']] = build_inputs(full, executed=executed).encode()
    changed = [name for name, data in wanted.items() if write_if_changed(src / name, data)]
    for path in sorted(src.rglob('*'), reverse=True):   # files no longer in the sources
        rel = str(path.relative_to(src))
        if path.is_file() and rel not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    log.info('staged %d files in %s (%d changed)', len(wanted), src.relative_to(ROOT), len(changed))


# ----------------------------------------------------------------- eval

def write_kernel(folder, framework, envs_dir, full):
    """A kernel named python3 that runs `framework`'s environment; returns its JUPYTER_PATH."""
    python = Path(os.path.abspath(envs_dir)) / framework / 'bin' / 'python'  # no resolve(): keep the venv
    if not python.exists():
        raise SystemExit(f'{python} is missing: run `make setup` first')
    spec = {'argv': [str(python), '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
            'display_name': f'cnn-design ({framework}) for d2lbook', 'language': 'python',
            'env': {'D2L_FRAMEWORK': framework, Budget.ENV: '0' if full else '1'}}
    path = folder / framework / 'kernels' / 'python3' / 'kernel.json'
    write_if_changed(path, (json.dumps(spec, indent=1) + '\n').encode())
    return str(folder / framework)


def executed_outputs(path, framework, root=ROOT):
    """The outputs of the code cells in the notebook nbval kept at `path` (that
    framework's notebook, notebooks/<framework>), in order, keyed by each cell's code
    as d2lbook formats it; None, with the reason logged, when there is none, it
    failed, or it ran other code than `framework`'s tab of the reader's notebook holds
    now."""
    from d2lbook.library import format_code
    if not path.exists():
        log.warning('%s: no executed notebook %s; running the tab', framework, path)
        return None
    nb = nbformat.read(path, as_version=4)
    reader = nbformat.read(root / READER_NOTEBOOK, as_version=4)
    cells = _code_cells(nb)
    kept = nb.metadata.get(EXECUTED_META, {})
    if not kept.get('passed') or kept.get('cells_run') != len(cells):
        log.warning('%s: %s did not pass under nbval; running the tab', framework, path)
        return None
    tab = [_code(c) for c in _code_cells(reader, framework) if not _loads_tabs(c)]
    if [c.source.strip() for c in cells] != tab:
        log.warning('%s: %s ran other code than the %s tab of %s; running the tab',
                    framework, path, framework, READER_NOTEBOOK)
        return None
    outputs = collections.defaultdict(collections.deque)
    for cell in cells:
        outputs[format_code(cell.source.strip())].append(coalesce_streams(cell.outputs))
    return outputs


def coalesce_streams(outputs):
    """Adjacent stream outputs of one stream joined into one, as Jupyter shows them (a
    kernel may send one print in two messages: the cell then printed the same text)."""
    joined = []
    for out in outputs:
        if (joined and out.get('output_type') == 'stream' == joined[-1].get('output_type')
                and out.get('name') == joined[-1].get('name')):
            joined[-1] = copy.deepcopy(joined[-1])
            joined[-1]['text'] = joined[-1]['text'] + out['text']
        else:
            joined.append(out)
    return joined


def _loads_tabs(cell):
    return cell.source.startswith('%load_ext d2lsupport.tab')


def fill_outputs(nb, timeout, outputs):
    """Stands in for d2lbook's executor (notedown.run, same arguments): gives each
    code cell of a tab notebook the outputs of the same cell in `outputs`
    (executed_outputs), taking cells with equal code in order."""
    for cell in nb.cells:
        if cell.cell_type == 'code':
            runs = outputs.get(cell.source)
            if not runs:
                raise RuntimeError(f'the executed notebook has no run of the cell '
                                   f'{cell.source[:60]!r}')
            cell.outputs = copy.deepcopy(runs.popleft())


def evaluate(cfg, full, envs_dir, executed=None):
    import notedown
    from d2lbook import build, resource
    from d2lbook.config import Config
    # d2lbook reserves a GPU for a notebook whose code says `num_gpus=1` and refuses to
    # run it on a machine without one; our Trainer trains on the CPU then, so ask for
    # no more GPUs than there are
    gpus = len(resource.get_available_gpus())
    wanted_gpus = resource.get_notebook_gpus
    build.resource.get_notebook_gpus = lambda nb, most: min(wanted_gpus(nb, most), gpus)
    if full:
        # d2lbook stops a cell after 20 minutes; a full training run of one tab takes longer
        build._process_and_eval_notebook = functools.partial(build._process_and_eval_notebook,
                                                             timeout=None)
    saved = {k: os.environ.get(k) for k in ('JUPYTER_PATH', 'D2L_FRAMEWORK', Budget.ENV)}
    try:
        for framework in cfg['tabs']:
            os.environ['JUPYTER_PATH'] = write_kernel(cfg['out'] / 'kernels', framework,
                                                      envs_dir, full)
            os.environ['D2L_FRAMEWORK'] = framework
            os.environ[Budget.ENV] = '0' if full else '1'
            outputs = executed and executed_outputs(Path(executed) / EXECUTED.format(framework),
                                                    framework)
            if outputs:
                log.info('the %s tab: outputs from %s', framework, executed)
                run = functools.partial(fill_outputs, outputs=outputs)
            else:
                log.info('evaluating the %s tab in %s/%s', framework, envs_dir, framework)
                run = notedown.run
            with mock.patch.object(notedown, 'run', run):
                build.Builder(Config(tab=framework)).eval()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ----------------------------------------------------------------- merge

def show_shared_cells_once(nb, tabs):
    """Keep one copy of each code cell that every tab ran with the same source and
    that printed the same text.

    d2lbook's merge keeps such a cell once per tab when it has outputs; marking the
    single copy with all tabs makes d2lbook's tab layout show it outside the tabs.
    A shared cell whose printed text differs between tabs (the training cell, which
    shows each framework's recorded run) stays in the tabs, one copy per framework.
    """
    cells, i = [], 0
    while i < len(nb.cells):
        pos = nb.cells[i].metadata.get('origin_pos')
        j = i + 1
        while j < len(nb.cells) and pos is not None and nb.cells[j].metadata.get('origin_pos') == pos:
            j += 1
        group = nb.cells[i:j]
        cell_tabs = [t for c in group for t in c.metadata.get('tab', [])]
        if (len(group) > 1 and all(c.cell_type == 'code' for c in group)
                and len({c.source for c in group}) == 1 and sorted(cell_tabs) == sorted(tabs)
                and len({_shown(c) for c in group}) == 1):
            shared = copy.deepcopy(group[0])
            shared.metadata['tab'] = list(tabs)
            cells.append(shared)
        else:
            cells.extend(group)
        i = j
    nb.cells = cells
    return nb


def _shown(cell):
    """The text a code cell printed or returned, as one comparable string. Images
    are left out: the environments' matplotlib versions write different PNG bytes
    for the same plot."""
    return json.dumps([out.get('text') or out.get('data', {}).get('text/plain')
                       for out in cell.get('outputs', [])])


def _code(cell):
    """A code cell's source without its %%tab line (d2lbook's tab notebooks drop it)."""
    first, _, rest = cell.source.partition('\n')
    return (rest if first.startswith('%%tab') else cell.source).strip()


def _code_cells(nb, framework=None):
    """The code cells of a reader's notebook; with `framework`, those its tab runs
    (its own and the `%%tab all` cells)."""
    return [c for c in nb.cells if c.cell_type == 'code' and
            (framework is None or {'all', framework} & set(cell_tabs(c.source)))]


def _trained_in_small_budget(cell):
    banner = Budget().banner()
    return cell.cell_type == 'code' and any(
        banner in out.get('text', '') for out in cell.get('outputs', []))


def recorded_run(framework, root=ROOT):
    """(line naming the record, {cell code: outputs}) of `framework`'s recorded run,
    or None when there is none."""
    path = root / RUN_NOTEBOOK.format(framework)
    if not path.exists():
        return None
    nb = nbformat.read(path, as_version=4)
    # cells of the other tabs ran nothing in this framework's run, and may share the code
    outputs = {_code(c): c.outputs for c in _code_cells(nb, framework)}
    record_path = root / RUN_RECORD.format(framework)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    sha, plus, dirty = (record.get('commit') or 'unknown').partition('+')
    commit = sha[:12] + plus + dirty
    done = f'{record.get("epochs_done", "?")} of {record.get("epochs_planned", "?")} epochs'
    state = 'complete' if record.get('complete') else 'incomplete'
    line = (f'{RECORDED_MARK} {path.relative_to(root)} ({state}, {done}; commit {commit}, '
            f'{record.get("date", "date unknown")}; every epoch in '
            f'{record_path.relative_to(root)})\n')
    return line, outputs


# an absolute path to a file in the repository, as a record made on some machine prints it
MACHINE_PATH = re.compile(r'(?<![\w.])/(?:[\w.+-]+/)+?((?:results|data|_build)/[\w./+-]+)')


def without_machine_paths(output):
    """A copy of a recorded output whose text names repository files by their path in
    the repository, not where they lay on the machine that made the record."""
    output = copy.deepcopy(output)
    if 'text' in output:
        output['text'] = MACHINE_PATH.sub(r'\1', output['text'])
    return output


NO_RECORD = ('(This cell trains networks; its output is shown from a full run of the '
             'chapter, and none is recorded for this version of the cell yet.)\n')


def show_recorded_runs(nb, framework, root=ROOT):
    """Give each cell of `nb` that trained in the small budget the outputs of the
    same cell in `framework`'s recorded run, or, where that run has no such cell,
    the line NO_RECORD instead of its small-budget output; returns how many cells
    got recorded outputs."""
    run = recorded_run(framework, root)
    replaced = 0
    for cell in nb.cells:
        if not _trained_in_small_budget(cell):
            continue
        if run is None or _code(cell) not in run[1]:
            # a small budget's output would mislead a reader: show none, and say why
            log.warning('%s: no recorded run of the cell %r; the page shows no output for it '
                        '(`make run FRAMEWORK=%s` records one)', framework,
                        _code(cell)[:50], framework)
            cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text=NO_RECORD)]
            continue
        note = nbformat.v4.new_output('stream', name='stdout', text=run[0])
        cell.outputs = [note] + [without_machine_paths(o) for o in run[1][_code(cell)]]
        replaced += 1
    return replaced


def merge(cfg):
    from d2lbook import notebook as nbtools
    tabs, out = cfg['tabs'], cfg['out']
    dirs = [out / 'eval'] + [out / f'eval_{tab}' for tab in tabs[1:]]
    merged_dir = out / 'eval_all'
    for first in sorted(dirs[0].rglob('*.ipynb')):
        rel = first.relative_to(dirs[0])
        nbs = []
        for tab, folder in zip(tabs, dirs):
            path = folder / rel
            if path.exists() and path.stat().st_size > 0:
                nbs.append(nbformat.read(path, as_version=4))
                if show_recorded_runs(nbs[-1], tab):
                    log.info('%s: training outputs from %s', tab, RUN_NOTEBOOK.format(tab))
        if not nbs:
            continue
        if len(nbs) > 1:
            nb = nbtools.merge_tab_notebooks(nbs)
            nb = show_shared_cells_once(nb, tabs)
            nb = nbtools.add_html_tab(nb, tabs)
        else:
            nb = nbs[0]
        target = merged_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        log.info('merged %d tabs into %s', len(nbs), target.relative_to(ROOT))


# ----------------------------------------------------------------- html

def mathjax_source(envs_dir):
    es5 = Path(envs_dir) / 'docs' / 'js' / 'node_modules' / 'mathjax' / 'es5'
    if not (es5 / 'tex-mml-chtml.js').exists():
        raise SystemExit(f'MathJax is missing in {es5}: run `make html`, which installs it')
    return es5


# The icon of the copy buttons that d2lbook's script adds to code blocks; d2lbook loads
# one from GitHub, this one ships with the page.
COPY_ICON = '''\
<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none"
     stroke="#444" stroke-width="2" stroke-linejoin="round">
  <rect x="8" y="8" width="12" height="13" rx="2"/>
  <path d="M16 8V5a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h2"/>
</svg>
'''
REMOTE_COPY_ICON = re.compile(r'https://[^"\']*/copy-button\.svg')


def serve_locally(static, envs_dir):
    """Ship what the page would load from other sites: MathJax and the copy icon."""
    es5 = mathjax_source(envs_dir)
    (static / 'mathjax').mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / 'tex-mml-chtml.js', static / 'mathjax')
    for folder in ('input', 'output', 'ui', 'a11y', 'sre', 'adaptors'):   # loaded on demand
        shutil.copytree(es5 / folder, static / 'mathjax' / folder, dirs_exist_ok=True)
    script = static / 'd2l.js'
    text, found = REMOTE_COPY_ICON.subn('${DOCUMENTATION_OPTIONS.URL_ROOT}_static/copy-button.svg',
                                        script.read_text())
    if not found:
        log.warning('d2l.js no longer loads its copy-button icon from another site; check it')
    script.write_text(text)
    (static / 'copy-button.svg').write_text(COPY_ICON)


def html(cfg, envs_dir):
    from d2lbook import build
    from d2lbook.config import Config
    builder = build.Builder(Config(tab='all'))
    builder.rst()   # its merge finds the notebooks merged above up to date
    serve_locally(Path(builder.config.rst_dir) / '_static', envs_dir)
    builder.html()
    copy_notebooks(cfg['out'] / 'html')


def copy_notebooks(site):
    """The framework notebooks beside the page, where its tabs link them."""
    shutil.rmtree(site / NOTEBOOKS, ignore_errors=True)
    shutil.copytree(ROOT / NOTEBOOKS, site / NOTEBOOKS)


# ----------------------------------------------------------------- editions

REFERENCES_TITLE = {'id': '# Daftar Pustaka'}


def staged_pair(english, translated, language):
    """{an English paragraph of the staged page (its words): the same paragraph of the
    staged edition in `language`}; the two texts have the same paragraphs, in order."""
    from d2lsupport import translation
    pairs = [[p.text for p in translation.pieces(text) if p.kind == 'paragraph']
             for text in (english, translated)]
    if len(pairs[0]) != len(pairs[1]):
        raise SystemExit(f'the {language} edition has {len(pairs[1])} paragraphs, the English '
                         f'{len(pairs[0])}: run `make translation`')
    return {' '.join(en.split()): tr for en, tr in zip(*pairs)}


def translate_notebook(nb, mapping):
    """Replace each paragraph of `nb`'s markdown cells by its translation in `mapping`;
    returns the English paragraphs that had none (d2lbook's tab markup has none)."""
    from d2lsupport import translation
    missing = []
    for cell in nb.cells:
        if cell.cell_type != 'markdown':
            continue
        out = []
        for piece in translation.prose_pieces(cell.source):
            words = ' '.join(piece.text.split())
            if piece.kind == 'paragraph' and words in mapping:
                out.append(mapping[words])
            else:
                out.append(piece.text)
                if piece.kind == 'paragraph' and ' ' in words and '```' not in words \
                        and not words.startswith('<'):
                    missing.append(words[:60])
        cell.source = ''.join(out)
    return missing


def edition_config(language):
    """config.ini for the edition's own d2lbook project (one Sphinx project cannot hold
    every :label: twice), run from _build/<language>/."""
    text = (ROOT / 'config.ini').read_text()
    text = re.sub(r'(?m)^title = .*$', f'title = {EDITIONS[language][1]}', text)
    text = re.sub(r'(?m)^source_dir = .*$', 'source_dir = src', text)
    return re.sub(r'(?m)^output_dir = .*$', 'output_dir = _build', text)


def build_edition(cfg, language, full, envs_dir):
    """The page in `language`: its chapter staged as the English one is, and the English
    build's evaluated notebooks with their paragraphs translated (the code, and so the
    outputs, are the same: nothing runs again), then d2lbook's rst and html steps in
    _build/<language>/, whose html goes to _build/html/<language>/."""
    from d2lbook import build
    from d2lbook.config import Config
    from d2lsupport import translation
    stale = translation.build(language, check=True)
    if stale:
        raise SystemExit(stale[0])
    tree, out = cfg['out'] / language, cfg['out']
    english_src = cfg['src']
    english = (english_src / CHAPTER).read_text()   # as the stage step wrote it
    translated = stage_chapter(translation.translated_chapter(language).read_text(), full,
                               local_labels(), language)
    mapping = staged_pair(english, translated, language)
    index = translation.FOLDER / f'{language}-index.md'
    mapping.update(staged_pair((ROOT / 'index.md').read_text(), index.read_text(), language))
    write_if_changed(tree / 'config.ini', edition_config(language).encode())
    for name in (*SOURCES, *SOURCE_DIRS, cfg['dependencies']):
        source = english_src / name
        target = tree / 'src' / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            write_if_changed(target, source.read_bytes())
    write_if_changed(tree / 'src' / CHAPTER, translated.encode())
    write_if_changed(tree / 'src' / 'index.md', index.read_bytes())
    mapping['# References'] = REFERENCES_TITLE[language]
    builds = tree / '_build'
    shutil.rmtree(builds, ignore_errors=True)
    for folder in [out / 'eval'] + [out / f'eval_{tab}' for tab in cfg['tabs'][1:]]:
        shutil.copytree(folder, builds / folder.name)
        for path in (builds / folder.name).rglob('*.ipynb'):
            nb = nbformat.read(path, as_version=4)
            missing = translate_notebook(nb, mapping)
            if missing:
                log.warning('%s: %d paragraph(s) left in English, e.g. %r', path.name,
                            len(missing), missing[0])
            nbformat.write(nb, path)
    merge({**cfg, 'out': builds})
    here, envs_dir = os.getcwd(), os.path.abspath(envs_dir)   # before the chdir
    os.chdir(tree)
    try:
        builder = build.Builder(Config(tab='all'))
        builder.rst()
        serve_locally(Path(builder.config.rst_dir) / '_static', envs_dir)
        builder.html()
    finally:
        os.chdir(here)
    target = out / 'html' / language
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(builds / 'html', target)
    copy_notebooks(target)
    log.info('the %s edition: %s', EDITIONS[language][0],
             (target / CHAPTER.replace('.md', '.html')).relative_to(ROOT))


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.book', description=__doc__.split('\n')[0])
    parser.add_argument('steps', nargs='*', metavar='step',
                        help=f'steps to run, of {", ".join(STEPS)} (default: all)')
    parser.add_argument('--full', action='store_true',
                        help='train with the full budget (default: the small one)')
    parser.add_argument('--executed', metavar='DIR',
                        help='take each tab\'s outputs from DIR/cnn-design.<framework>.ipynb, '
                             'the notebook nbval ran (make test), instead of running the tab')
    parser.add_argument('--envs-dir', default=str(ROOT / '.venv'),
                        help='where the framework environments are (make: ENVS_DIR)')
    args = parser.parse_args(argv)
    unknown = set(args.steps) - set(STEPS)
    if unknown:
        parser.error(f'unknown step(s) {", ".join(sorted(unknown))}; choose from {", ".join(STEPS)}')
    if args.full and args.executed:
        parser.error('--full trains every tab in full; --executed takes outputs of the small '
                     'budget: give one of them')
    steps = args.steps or STEPS
    logging.basicConfig(format='[%(asctime)s] %(message)s', datefmt='%H:%M:%S',
                        level=logging.INFO)
    os.chdir(ROOT)   # d2lbook reads config.ini from the working directory
    # d2lbook runs sphinx-build from PATH: take this environment's
    os.environ['PATH'] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')
    cfg = read_config()
    start = time.perf_counter()
    for step in STEPS:
        if step not in steps:
            continue
        tik = time.perf_counter()
        if step == 'stage':
            stage(cfg, args.full, args.executed)
        elif step == 'eval':
            evaluate(cfg, args.full, args.envs_dir, args.executed)
        elif step == 'merge':
            merge(cfg)
        elif step == 'html':
            html(cfg, args.envs_dir)
        elif step == 'editions':
            for language in EDITIONS:
                if language != 'en':
                    build_edition(cfg, language, args.full, args.envs_dir)
        log.info('step %s took %.0f s', step, time.perf_counter() - tik)
    page = cfg['out'] / 'html' / Path(CHAPTER).with_suffix('.html')
    log.info('done in %.0f s (%s budget); the page: %s', time.perf_counter() - start,
             'full' if args.full else 'small', page.relative_to(ROOT))
    return 0


if __name__ == '__main__':
    sys.exit(main())
