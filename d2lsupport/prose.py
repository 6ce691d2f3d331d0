"""Tie every number in the chapter's prose, and in the README's results, to its source.

    python -m d2lsupport.prose      # list problems; exit 1 if there are any

It also counts the chapter's words (`word_count`): a section of the book is read in
one sitting, so the prose stays within MAX_WORDS.

The claims live in `chapter_cnn_design/numbers.py`: each one quotes a piece of the
prose exactly, names where its numbers come from, and recomputes them (or the
condition that a word like "about" or "most" states). The check fails when

* a number in the prose is covered by no claim (a number without a source),
* a claim's text no longer appears in the prose (the prose changed under it),
* a claim's recomputed numbers differ from the ones the prose states, with the
  same rounding, or its condition does not hold.

What counts as prose: the markdown outside code cells and inline code, without
citation keys, labels, cross-references and image paths; in the README only the
part between the markers `<!-- numbers checked -->` and `<!-- end numbers checked -->`.
A digit that is part of a name (RegNetX32, 400MF, B0) or a subscript ($c_0$) is
not a number.
"""
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]   # the repository
CHAPTER = ROOT / 'chapter_cnn_design' / 'cnn-design.md'
README = ROOT / 'README.md'
CLAIMS = ROOT / 'chapter_cnn_design' / 'numbers.py'
README_START, README_END = '<!-- numbers checked -->', '<!-- end numbers checked -->'
UNCHECKED_KINDS = ('paper', 'book', 'definition')   # sources with nothing to recompute
MAX_WORDS = 3500
LABEL_LINE = re.compile(r'^[ \t]*:label:`[^`]*`[ \t]*$', re.MULTILINE)

CODE_CELL = re.compile(r'^```.*?^```[ \t]*$', re.DOTALL | re.MULTILINE)
ROLES = re.compile(r':(?:cite|citet|citep|numref|label|eqref):`[^`]*`')
INLINE_CODE = re.compile(r'`[^`\n]*`')
LINK_TARGET = re.compile(r'\]\([^)\s]*\)')
COMMENT = re.compile(r'<!--.*?-->', re.DOTALL)
SUBSCRIPT = re.compile(r'_(?:\{[^}]*\}|\w)')
LIST_MARKER = re.compile(r'^[ \t]*\d+\.(?=[ \t])', re.MULTILINE)
NUMBER = re.compile(r'(?<![\w.])[+-]?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])(?!\.\d)')


@dataclass
class Claim:
    """A piece of prose (quoted exactly) with the numbers or words in it, and their source.

    `value` returns the numbers the text must state, formatted as in the text
    (a string or a list of strings, in the order they appear); `holds` returns
    whether a qualitative statement in it ("about", "most", "the best") is true.
    A claim whose source is the paper, the book or a definition in the chapter's
    own code may have neither: its source is named, there is nothing to recompute.
    """
    text: str
    source: str
    value: Optional[Callable] = None
    holds: Optional[Callable] = None
    doc: str = 'chapter'


def normalize(text):
    """Prose with LaTeX thousands separators and Unicode minus signs made plain."""
    return text.replace('{,}', ',').replace('\u2212', '-')


def blank(match):
    """The matched text replaced by spaces, keeping every other offset."""
    return re.sub(r'[^\n]', ' ', match.group(0))


def visible(doc_text, readme=False):
    """The document with what is not prose blanked out (code cells, comments and, in
    the README, everything outside the markers), keeping every offset."""
    text = normalize(doc_text)
    if readme:
        parts, keep, pos = [], False, 0
        for marker in re.finditer(re.escape(README_START) + '|' + re.escape(README_END), text):
            chunk = text[pos:marker.start()]
            parts.append(chunk if keep else re.sub(r'[^\n]', ' ', chunk))
            parts.append(' ' * len(marker.group(0)))
            keep, pos = marker.group(0) == README_START, marker.end()
        parts.append(re.sub(r'[^\n]', ' ', text[pos:]))
        text = ''.join(parts)
    for pattern in (CODE_CELL, COMMENT):
        text = pattern.sub(blank, text)
    return text


def word_count(doc_text):
    """The words of the prose: everything outside code cells, split on whitespace,
    after removing `:label:` lines and the targets of links (captions, math,
    citations and exercises count)."""
    text = CODE_CELL.sub('', doc_text)
    text = LABEL_LINE.sub('', text)
    text = LINK_TARGET.sub(']', text)
    return len(text.split())


def without_names(text):
    """`text` with the places where digits are not numbers blanked out: citation keys,
    labels, cross-references, inline code, link targets, subscripts, list markers."""
    for pattern in (ROLES, INLINE_CODE, LINK_TARGET, SUBSCRIPT, LIST_MARKER):
        text = pattern.sub(blank, text)
    return text


def numbers(text):
    """The numbers stated in a piece of prose, as written."""
    return [m.group(0) for m in NUMBER.finditer(without_names(normalize(text)))]


def load_claims(path=CLAIMS):
    spec = importlib.util.spec_from_file_location('chapter_numbers', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CLAIMS


def line_of(text, offset):
    return text.count('\n', 0, offset) + 1


def check_claim(claim):
    """Problems with one claim's own numbers (not with where it appears)."""
    if claim.value is None and claim.holds is None:
        if not claim.source.startswith(UNCHECKED_KINDS):
            return [f'{claim.text!r}: nothing recomputes it, and its source '
                    f'{claim.source!r} is not the paper, the book or a definition']
        return []
    problems = []
    try:
        if claim.value is not None:
            expected = claim.value()
            expected = [expected] if isinstance(expected, str) else list(expected)
            stated = numbers(claim.text)
            if stated != expected:
                problems.append(f'{claim.text!r} states {stated}, but {claim.source} '
                                f'gives {expected}')
        if claim.holds is not None and not claim.holds():
            problems.append(f'{claim.text!r} does not hold according to {claim.source}')
    except Exception as error:   # a broken source is a problem to report, not a crash
        problems.append(f'{claim.text!r}: computing it from {claim.source} failed: '
                        f'{type(error).__name__}: {error}')
    return problems


def check_document(name, raw, claims, readme=False):
    """Problems of one document: stale claims and numbers that no claim covers."""
    text = visible(raw, readme)
    covered, problems = [False] * len(text), []
    for claim in claims:
        # line breaks and runs of spaces in the quote match any whitespace
        quoted = r'\s+'.join(re.escape(word) for word in normalize(claim.text).split())
        spans = [m.span() for m in re.finditer(quoted, text)]
        if not spans:
            problems.append(f'{name}: the claim {claim.text!r} is not in the prose '
                            '(reworded? update chapter_cnn_design/numbers.py)')
        for start, end in spans:
            covered[start:end] = [True] * (end - start)
    plain = without_names(text)
    for m in NUMBER.finditer(plain):
        if not all(covered[m.start():m.end()]):
            context = ' '.join(plain[max(0, m.start() - 40):m.end() + 40].split())
            problems.append(f'{name}:{line_of(text, m.start())}: {m.group(0)!r} has no '
                            f'source: ...{context}...')
    return problems


def check(claims=None, chapter=CHAPTER, readme=README):
    """All problems with the numbers of the chapter and the README's results, and
    a chapter longer than MAX_WORDS."""
    claims = load_claims() if claims is None else claims
    problems = [p for claim in claims for p in check_claim(claim)]
    words = word_count(chapter.read_text())
    if words > MAX_WORDS:
        problems.append(f'{chapter.name}: {words:,} words of prose, more than {MAX_WORDS:,}; '
                        'cut what does not teach design spaces')
    for name, path, is_readme in (('chapter', chapter, False), ('README', readme, True)):
        mine = [c for c in claims if c.doc == name]
        problems += check_document(path.name, path.read_text(), mine, is_readme)
    return problems


def check_translations(chapter=None):
    """The translations' problems: each states its English paragraphs' numbers, in its
    own format, so each number keeps its English twin's source (d2lsupport.translation)."""
    from . import translation
    return [p for language in translation.LANGUAGES
            if translation.translation_file(language).exists()
            for p in translation.problems(language, chapter)]


def main():
    problems = check() + check_translations()
    for problem in problems:
        print(problem)
    print(f'{CHAPTER.name}: {word_count(CHAPTER.read_text()):,} words of prose '
          f'(at most {MAX_WORDS:,})')
    print(f'{len(problems)} problem(s) with the prose' if problems
          else 'every number in the prose is tied to its source and agrees with it')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
