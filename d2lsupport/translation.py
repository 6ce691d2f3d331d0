"""The chapter in another language, made from the English source and a file of translated
paragraphs, so that the code exists once and the translation cannot drift from it.

    python -m d2lsupport.translation status [LANG]   # which English paragraphs need work
    python -m d2lsupport.translation build [LANG]    # write cnn-design.<LANG>.md
    python -m d2lsupport.translation build --check   # fail if it is out of date

The English chapter is split into *blocks*: the code cells, kept as they are, and the
paragraphs between them (prose separated by blank lines: a paragraph, a list, a
heading with its label, a figure with its caption, a displayed equation). Each
paragraph is known by a hash of its words. The translation file,
``chapter_cnn_design/translations/<LANG>.md``, holds one entry per English paragraph::

    <!-- en:0123456789ab -->
    The translated paragraph.

and the chapter in that language is the English chapter with every paragraph replaced
by the entry of its hash: code cells, their order and their tags are the English ones
byte for byte. When an English paragraph changes, its hash changes and its entry goes
stale: `status` lists the English paragraphs without an entry (with their new hash)
and the entries that no English paragraph has any more, so a translator updates
exactly what changed and then writes the new hash into the entry.

`problems` checks what can be checked without reading the language: every paragraph
has an entry; an entry keeps its paragraph's labels, references, citations and
images; it states the same numbers as its English paragraph, in the language's number
format (for Indonesian 0,904 and 179.290), so each number keeps the source its English
twin has in `chapter_cnn_design/numbers.py`; and it uses the glossary's term wherever
its English paragraph uses the English one.
"""
import argparse
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import prose

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / 'chapter_cnn_design' / 'cnn-design.md'
FOLDER = ROOT / 'chapter_cnn_design' / 'translations'
LANGUAGES = {'id': 'Bahasa Indonesia'}

CODE_CELL = prose.CODE_CELL
BLANK_LINES = re.compile(r'\n[ \t]*\n\s*')
ENTRY = re.compile(r'^<!-- en:([0-9a-f]{12}) -->[ \t]*$', re.MULTILINE)
KEPT = re.compile(r':(?:label|numref|eqref|cite|citet|citep):`[^`]*`|\]\([^)\s]*\)')
GLOSSARY_ROW = re.compile(r'^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|([^|\n]*)\|?', re.MULTILINE)
NOT_IN = re.compile(r'not in "([^"]+)"')


class TranslationError(ValueError):
    pass


def paragraph_hash(text):
    """The hash that names an English paragraph: its words, whatever the line breaks."""
    return hashlib.sha256(' '.join(text.split()).encode()).hexdigest()[:12]


@dataclass
class Piece:
    """A piece of the English chapter: a code cell, a paragraph, or the blank space
    between them (kept as it is)."""
    kind: str      # 'code', 'paragraph' or 'space'
    text: str


def pieces(text):
    """The English chapter as pieces, in order; joined they give the text back."""
    found, pos = [], 0
    for cell in CODE_CELL.finditer(text):
        found += prose_pieces(text[pos:cell.start()])
        found.append(Piece('code', cell.group(0)))
        pos = cell.end()
    return found + prose_pieces(text[pos:])


def prose_pieces(text):
    found, pos = [], 0
    for gap in BLANK_LINES.finditer(text):
        found += _paragraph_or_space(text[pos:gap.start()]) + [Piece('space', gap.group(0))]
        pos = gap.end()
    return found + _paragraph_or_space(text[pos:])


def _paragraph_or_space(chunk):
    if not chunk:
        return []
    lead = chunk[:len(chunk) - len(chunk.lstrip())]
    body = chunk.strip()
    trail = chunk[len(lead) + len(body):]
    return ([Piece('space', lead)] if lead else []) + \
        ([Piece('paragraph', body)] if body else []) + ([Piece('space', trail)] if trail else [])


def paragraphs(text):
    """{hash: paragraph} of the English chapter, in order."""
    return {paragraph_hash(p.text): p.text for p in pieces(text) if p.kind == 'paragraph'}


def translation_file(language):
    return FOLDER / f'{language}.md'


def read_entries(path):
    """{hash: translated paragraph} of a translation file."""
    text = Path(path).read_text()
    markers = list(ENTRY.finditer(text))
    if text[:markers[0].start() if markers else len(text)].strip():
        raise TranslationError(f'{path}: text before the first <!-- en:... --> marker')
    entries = {}
    for marker, following in zip(markers, markers[1:] + [None]):
        body = text[marker.end():following.start() if following else len(text)].strip()
        if marker.group(1) in entries:
            raise TranslationError(f'{path}: two entries for paragraph {marker.group(1)}')
        if BLANK_LINES.search(body):
            raise TranslationError(f'{path}: the entry {marker.group(1)} has a blank line; '
                                   'one entry is one paragraph')
        entries[marker.group(1)] = body
    return entries


def translate(text, entries):
    """The chapter `text` with each paragraph replaced by its entry."""
    out, missing = [], []
    for piece in pieces(text):
        if piece.kind != 'paragraph':
            out.append(piece.text)
        elif paragraph_hash(piece.text) in entries:
            out.append(entries[paragraph_hash(piece.text)])
        else:
            missing.append(paragraph_hash(piece.text))
    if missing:
        raise TranslationError(f'{len(missing)} paragraph(s) have no translation (first: '
                               f'{missing[0]}); run `python -m d2lsupport.translation status`')
    return ''.join(out)


def translated_chapter(language):
    return CHAPTER.with_name(f'{CHAPTER.stem}.{language}.md')


def glossary(language):
    """[(English term, term in `language`, English phrases where the term is not the
    term)] from translations/<LANG>-glossary.md, a markdown table whose columns are
    the two terms and a note; a note `not in "trial and error"` names such a phrase."""
    path = FOLDER / f'{language}-glossary.md'
    rows = GLOSSARY_ROW.findall(path.read_text()) if path.exists() else []
    return [(en, tr, NOT_IN.findall(note)) for en, tr, note in rows
            if not set(en) <= set('-: ') and en != 'English']


def localized(number, language):
    """An English-formatted number ('179,290', '-0.50') in `language`'s format."""
    if language == 'id':
        return number.translate(str.maketrans({',': '.', '.': ','}))
    raise TranslationError(f'no number format for language {language!r}')


ID_NUMBER = re.compile(r'(?<![\w,.])[+-]?\d+(?:\.\d{3})*(?:,\d+)?(?![\w])(?!,\d)')


def stated_numbers(text, language):
    """The numbers a translated paragraph states, as written."""
    plain = prose.without_names(prose.normalize(text))
    return [m.group(0) for m in ID_NUMBER.finditer(plain)]


def kept_parts(text):
    return Counter(KEPT.findall(prose.normalize(text)))


def term_used(term, text):
    return re.search(r'(?<!\w)' + re.escape(term.lower()), text.lower()) is not None


def problems(language='id', chapter=None):
    """What is wrong with the translation into `language` (see the module's docstring)."""
    chapter = chapter or CHAPTER
    path = translation_file(language)
    english = paragraphs(chapter.read_text())
    try:
        entries = read_entries(path)
    except (OSError, TranslationError) as error:
        return [str(error)]
    found = [f'{path.name}: no entry for the English paragraph {h} ({" ".join(p.split()[:8])} ...)'
             for h, p in english.items() if h not in entries]
    found += [f'{path.name}: the entry {h} matches no English paragraph (stale; see `status`)'
              for h in entries if h not in english]
    terms = glossary(language)
    for h, source in english.items():
        if h not in entries:
            continue
        target = entries[h]
        kept, written = kept_parts(source), kept_parts(target)
        if kept != written:
            lost, added = kept - written, written - kept
            found.append(f'{path.name}: entry {h} changes labels, references, citations or '
                         f'images: without {sorted(lost)}, with {sorted(added)}')
        want = Counter(localized(n, language) for n in prose.numbers(source))
        have = Counter(stated_numbers(target, language))
        if want != have:
            found.append(f'{path.name}: entry {h} states {sorted(have.elements())}, its English '
                         f'paragraph {sorted(want.elements())} (in {LANGUAGES[language]} format)')
        for en, tr, phrases in terms:
            plain = source
            for phrase in phrases:
                plain = re.sub(re.escape(phrase), ' ', plain, flags=re.IGNORECASE)
            if term_used(en, plain) and not term_used(tr, target):
                found.append(f'{path.name}: entry {h} does not use the glossary\'s "{tr}" for '
                             f'"{en}"')
    return found or out_of_date(language, translate(chapter.read_text(), entries))


def status(language='id', chapter=None):
    """Lines for a translator: the English paragraphs to translate (new or changed),
    with the hash their entry must carry, and the entries no longer used."""
    chapter = chapter or CHAPTER
    english = paragraphs(chapter.read_text())
    path = translation_file(language)
    entries = read_entries(path) if path.exists() else {}
    todo = [(h, p) for h, p in english.items() if h not in entries]
    stale = [h for h in entries if h not in english]
    lines = [f'{len(english) - len(todo)} of {len(english)} English paragraphs translated '
             f'into {LANGUAGES[language]} ({path.relative_to(ROOT)})']
    for h, p in todo:
        lines += [f'\nto translate, as <!-- en:{h} -->:', p]
    if stale:
        lines.append('\nentries whose English paragraph changed or went (update the text and '
                     'its hash, or delete them): ' + ', '.join(stale))
    return '\n'.join(lines)


def out_of_date(language, text):
    """[a problem] when the generated chapter in `language` is not `text`, else []."""
    target = translated_chapter(language)
    current = target.exists() and target.read_text() == text
    return [] if current else [f'{target.name} is out of date: run `make translation`']


def build(language='id', check=False):
    """Write (or with `check`, compare) the chapter in `language`; returns problems."""
    entries = read_entries(translation_file(language))
    text = translate(CHAPTER.read_text(), entries)
    if check:
        return out_of_date(language, text)
    translated_chapter(language).write_text(text)
    return []


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m d2lsupport.translation',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('status', 'build', 'check'))
    parser.add_argument('language', nargs='?', default='id', choices=sorted(LANGUAGES))
    parser.add_argument('--check', action='store_true', help='build: compare, do not write')
    args = parser.parse_args(argv)
    try:
        if args.command == 'status':
            print(status(args.language))
            return 0
        found = build(args.language, args.check) if args.command == 'build' \
            else problems(args.language)
    except (OSError, TranslationError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for line in found:
        print(line)
    if args.command == 'build' and not args.check:
        print(f'wrote {translated_chapter(args.language).relative_to(ROOT)}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
