"""One notebook per framework, to read the chapter outside this repository.

``python -m tools.notebooks`` (`make notebooks`) writes
notebooks/<framework>/cnn-design.ipynb, and cnn-design.id.ipynb for the Indonesian
edition, from the chapter's notebooks: the framework's own code cells and the shared
ones, without their ``%%tab`` lines and without the tab extension; the markdown with
d2lbook's markup turned into plain Markdown (labels dropped, references to the book's
other sections linked to d2l.ai, the figures numbered, citations written out) and the
figures attached to their cells, so that the file alone is the whole chapter. A first
cell installs the library with the framework's extra (tagged ``install``, which the
recorded copy nbval runs leaves out, and ``nbval-skip`` for a reader's own nbval run:
the tests install the wheel themselves). ``--check`` fails when a
committed notebook differs from what would be written.
"""
import argparse
import base64
import re
import sys
import unicodedata
from pathlib import Path

import nbformat

import d2lsupport
from d2lsupport.library import write_or_check
from d2lsupport.notebook import TAB_LINE, cell_tabs
from tools.book import D2L_SECTIONS, D2L_SITE, NOTEBOOKS, NUMREF, framework_titles

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = {'en': 'chapter_cnn_design/cnn-design.ipynb',
            'id': 'chapter_cnn_design/cnn-design.id.ipynb'}
OUT = NOTEBOOKS + '/{framework}/cnn-design{suffix}.ipynb'
INSTALL_TAGS = ['install', 'nbval-skip']
WHEEL = f'd2lsupport-{d2lsupport.__version__}-py3-none-any.whl'

IMAGE = re.compile(r'!\[(.*?)\]\(\.\./img/([^)]+)\)\s*\n:label:`([^`]+)`', re.DOTALL)
LABEL_LINE = re.compile(r'^:(label|width):`[^`]*`\s*$\n?', re.MULTILINE)
CITE = re.compile(r':(citet?):`([^`]+)`')
BIB_ENTRY = re.compile(r'@\w+\{([^,]+),(.*?)\n\}', re.DOTALL)
BIB_FIELD = re.compile(r'(\w+)\s*=\s*\{(.*?)\},?\s*$', re.MULTILINE)

WORDS = {
    'en': {'figure': 'Figure', 'and': 'and'},
    'id': {'figure': 'Gambar', 'and': 'dan'},
}

# The install cell's extra options per framework: PyPI's torch is a CUDA build on Linux,
# the CPU build comes from PyTorch's own index.
INSTALL_OPTIONS = {'pytorch': ' --extra-index-url https://download.pytorch.org/whl/cpu'}
# What a GPU runtime needs instead of the install cell's CPU build.
GPU_PACKAGES = {
    'pytorch': 'run the install cell without its `--extra-index-url` (PyPI\'s torch 2.13.0 '
               'is a CUDA build)',
    'mxnet': 'on a machine of your own with Python 3.10 or 3.11 and CUDA 11.2, run '
             '`%pip uninstall -y mxnet` after the install cell, then '
             '`%pip install mxnet-cu112==1.9.1`',
    'tensorflow': 'run `%pip uninstall -y tensorflow-cpu` after the install cell, then '
                  '`%pip install "tensorflow[and-cuda]==2.21.0"`',
    'jax': 'run `%pip install "jax[cuda12]==0.10.2"` after the install cell (the extra for '
           'the runtime\'s CUDA version)',
}
GPU_PACKAGES_ID = {
    'pytorch': 'jalankan sel instalasi tanpa `--extra-index-url`-nya (torch 2.13.0 dari PyPI '
               'adalah *build* CUDA)',
    'mxnet': 'di mesin sendiri dengan Python 3.10 atau 3.11 dan CUDA 11.2, jalankan '
             '`%pip uninstall -y mxnet` setelah sel instalasi, lalu '
             '`%pip install mxnet-cu112==1.9.1`',
    'tensorflow': 'jalankan `%pip uninstall -y tensorflow-cpu` setelah sel instalasi, lalu '
                  '`%pip install "tensorflow[and-cuda]==2.21.0"`',
    'jax': 'jalankan `%pip install "jax[cuda12]==0.10.2"` setelah sel instalasi (*extra* '
           'untuk versi CUDA runtime tersebut)',
}
MXNET_LIMIT = {
    'en': ('**Where this notebook cannot run.** MXNet 1.9.1 needs numpy older than 1.24, '
           'which has no wheels for Python 3.12 or later, the default Python of hosted '
           'runtimes such as Google Colab at the time of writing; the install cell stops '
           'there with a line saying so. Run it on Python 3.10 or 3.11: a runtime that offers one, or the '
           'repository\'s own MXNet environment (`make setup`).'),
    'id': ('**Batasan.** MXNet 1.9.1 membutuhkan numpy yang lebih tua dari 1.24, yang tidak '
           'punya *wheel* untuk Python 3.12 atau lebih baru, yaitu Python bawaan runtime '
           'Jupyter daring seperti Google Colab saat tulisan ini dibuat; sel instalasi berhenti '
           'di sana dengan pesan yang menjelaskannya. Jalankan di Python 3.10 atau 3.11: runtime yang '
           'menyediakannya, atau lingkungan MXNet repositori ini (`make setup`).'),
}
CC_BY_SA = 'https://creativecommons.org/licenses/by-sa/4.0/'
LICENSE_LINE = {
    'en': (f'The chapter\'s text and figures are under [CC BY-SA 4.0]({CC_BY_SA}), its code '
           'under the MIT license (the files LICENSE-TEXT and LICENSE of the cnn-design '
           'repository).'),
    'id': (f'Teks dan gambar bab ini berlisensi [CC BY-SA 4.0]({CC_BY_SA}), kodenya berlisensi '
           'MIT (berkas LICENSE-TEXT dan LICENSE di repositori cnn-design).'),
}
REFERENCES_TITLE = {'en': '## References', 'id': '## Daftar Pustaka'}
INSTALL_COMMENT = {
    'en': '# d2lsupport with this framework (the paragraph above says where the wheel comes from)',
    'id': '# d2lsupport beserta framework ini (paragraf di atas menjelaskan asal wheel-nya)',
}
# MXNet's install cell first checks the Python version (see MXNET_LIMIT)
PYTHON_CHECK = {
    'mxnet': ('import sys\n'
              'if sys.version_info >= (3, 12):\n'
              '    raise SystemExit("MXNet 1.9.1 needs Python 3.11 or older (numpy < 1.24 '
              'has no wheels for newer ones)")\n'),
}


def about_cell(framework, title, language):
    """The first markdown cell: what this notebook is and how to install what it needs."""
    if language == 'id':
        text = (f'**Versi {title} dari bab cnn-design.** Notebook ini hanya memuat sel '
                f'{title} bab tersebut; bab dengan keempat *framework*, halamannya, dan '
                'pustakanya ada di repositori cnn-design, tempat asal notebook ini. Jalankan '
                f'sel berikutnya sekali untuk memasang `d2lsupport` beserta {title} (*build* '
                'CPU). `d2lsupport` tidak ada di PyPI: klon repositori itu dan jalankan '
                '`make dist` di sana (perlu `make` dan Python 3.10 atau lebih baru dengan '
                f'`venv`; tidak memasang *framework* apa pun), lalu unggah `dist/{WHEEL}` ke '
                'direktori kerja runtime (di Colab: `/content`, lewat panel *Files*), atau '
                'pasang langsung dari klon repositori: '
                f'`%pip install "path/ke/cnn-design[{framework}]"`. **Di runtime GPU**: '
                f'{GPU_PACKAGES_ID[framework]}; sel pelatihan sudah memberikan `num_gpus=1`.')
    else:
        text = (f'**The {title} version of the cnn-design chapter.** This notebook holds the '
                f'chapter\'s {title} cells only; the chapter with all four frameworks, its page '
                'and its library live in the cnn-design repository, where this notebook comes '
                f'from. Run the next cell once to install `d2lsupport` with {title} (CPU '
                'builds). `d2lsupport` is not on PyPI: clone that repository and run `make '
                'dist` in it (this needs `make` and Python 3.10 or later with `venv`, and '
                f'installs no framework), then upload `dist/{WHEEL}` to the runtime\'s working '
                'directory (in Colab: `/content`, through the Files pane), or install straight '
                f'from the clone: `%pip install "path/to/cnn-design[{framework}]"`. **On a GPU '
                f'runtime**: {GPU_PACKAGES[framework]}; the training cell already passes '
                '`num_gpus=1`.')
    if framework == 'mxnet':
        text += '\n\n' + MXNET_LIMIT[language]
    return nbformat.v4.new_markdown_cell(text + '\n\n' + LICENSE_LINE[language])


def install_cell(framework, language):
    cell = nbformat.v4.new_code_cell(
        f'{INSTALL_COMMENT[language]}\n{PYTHON_CHECK.get(framework, "")}'
        f'%pip install -q "{WHEEL}[{framework}]"{INSTALL_OPTIONS.get(framework, "")}')
    cell.metadata['tags'] = list(INSTALL_TAGS)
    return cell


def read_bibliography(path=ROOT / 'references.bib'):
    """{key: (the authors' surnames, year, the reference as one line)}."""
    entries = {}
    for key, body in BIB_ENTRY.findall(path.read_text()):
        fields = {name: plain(value) for name, value in BIB_FIELD.findall(body)}
        authors = [a.strip() for a in fields['author'].split(' and ')]
        surnames = [a.split(',')[0].strip() for a in authors]
        venue = fields.get('booktitle') or fields.get('journal') or ''
        names = [' '.join(reversed(a.split(', ', 1))) for a in authors]   # First Last
        line = f'{", ".join(names)} ({fields["year"]}). *{fields["title"]}*. {venue}.'
        entries[key.strip()] = (surnames, fields['year'], line)
    return entries


def plain(bibtex):
    """BibTeX text without braces and with its accents written out ({\\'a} is á)."""
    accents = {"\\'": '\u0301', '\\`': '\u0300', '\\"': '\u0308', '\\~': '\u0303', '\\^': '\u0302'}
    for command, mark in accents.items():
        bibtex = re.sub('{' + re.escape(command) + r'(\w)}',
                        lambda m: unicodedata.normalize('NFC', m.group(1) + mark), bibtex)
    return bibtex.replace('{', '').replace('}', '').replace('\\&', '&')


def citation(keys, textual, bibliography, language):
    """`Author et al. (2020)` for :citet:, `(Author et al., 2020; ...)` for :cite:."""
    written = []
    for key in keys.split(','):
        surnames, year, _ = bibliography[key.strip()]
        who = (f'{surnames[0]} et al.' if len(surnames) > 2 else
               f' {WORDS[language]["and"]} '.join(surnames))
        written.append(f'{who} ({year})' if textual else f'{who}, {year}')
    return '; '.join(written) if textual else f'({"; ".join(written)})'


def convert_markdown(text, figures, bibliography, language):
    """d2lbook markdown as plain Markdown; `figures` maps figure labels to numbers
    and collects the attachments ({name: svg bytes})."""
    word = WORDS[language]['figure']

    def image(match):
        caption, name, label = match.groups()
        number = figures['numbers'][label]
        figures['attachments'][name] = (ROOT / 'img' / name).read_bytes()
        return f'![{word} {number}](attachment:{name})\n\n_{word} {number}: {caption}_'

    def reference(match):
        label = match.group(1)
        if label in figures['numbers']:
            return f'{word} {figures["numbers"][label]}'
        if label in D2L_SECTIONS:
            title, page = D2L_SECTIONS[label]
            return f'[d2l.ai: {title}]({D2L_SITE}{page})'
        raise ValueError(f'unresolved reference :numref:`{label}`')

    def cite(match):
        keys = [key.strip() for key in match.group(2).split(',')]
        figures['cited'] += [key for key in keys if key not in figures['cited']]
        return citation(match.group(2), match.group(1) == 'citet', bibliography, language)

    text = IMAGE.sub(image, text)
    text = NUMREF.sub(reference, text)
    text = CITE.sub(cite, text)
    return LABEL_LINE.sub('', text).strip()


def references_cell(keys, bibliography, language):
    """The works cited, in the order of their first citation."""
    lines = [f'* {bibliography[key][2]}' for key in keys]
    return nbformat.v4.new_markdown_cell('\n'.join([REFERENCES_TITLE[language], ''] + lines))


def framework_notebook(chapter, framework, title, language, bibliography):
    """The notebook of one framework from the chapter's notebook."""
    labels = [m.group(3) for cell in chapter.cells if cell.cell_type == 'markdown'
              for m in IMAGE.finditer(cell.source)]
    figures = {'numbers': {label: i + 1 for i, label in enumerate(labels)}, 'cited': []}
    nb = nbformat.v4.new_notebook()
    nb.cells = [about_cell(framework, title, language), install_cell(framework, language)]
    for cell in chapter.cells:
        if cell.cell_type == 'markdown':
            figures['attachments'] = {}
            new = nbformat.v4.new_markdown_cell(
                convert_markdown(cell.source, figures, bibliography, language))
            if figures['attachments']:
                new['attachments'] = {name: {'image/svg+xml': base64.b64encode(data).decode()}
                                      for name, data in figures['attachments'].items()}
        elif cell.source.startswith('%load_ext d2lsupport.tab'):
            continue
        elif {'all', framework} & set(cell_tabs(cell.source)):
            first, _, rest = cell.source.partition('\n')
            new = nbformat.v4.new_code_cell(rest if TAB_LINE.match(first) else cell.source)
        else:
            continue
        if cell.metadata.get('tags'):
            new.metadata['tags'] = list(cell.metadata['tags'])
        nb.cells.append(new)
    nb.cells.append(references_cell(figures['cited'], bibliography, language))
    for cell in nb.cells:
        cell.pop('id', None)
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                                 'language': 'python'}
    nb.metadata['language_info'] = {'name': 'python'}
    nb.nbformat_minor = 4
    return nb


def render_all(root=ROOT):
    """{path: notebook text} for every framework and edition."""
    bibliography = read_bibliography(root / 'references.bib')
    written = {}
    for language, source in EDITIONS.items():
        chapter = nbformat.read(root / source, as_version=4)
        for framework, title in framework_titles(root / 'Makefile').items():
            nb = framework_notebook(chapter, framework, title, language, bibliography)
            path = OUT.format(framework=framework, suffix='' if language == 'en' else f'.{language}')
            written[path] = nbformat.writes(nb) + '\n'
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='only check that the committed notebooks are current')
    args = parser.parse_args(argv)
    texts = {ROOT / path: text for path, text in render_all().items()}
    return write_or_check(texts, args.check, 'the chapter; run `make notebooks`')


if __name__ == '__main__':
    sys.exit(main())
