"""The chapter's translations: made from the English source, code byte for byte, numbers
tied to their English twins (d2lsupport.translation)."""
import pytest

from d2lsupport import notebook, translation
from d2lsupport.translation import TranslationError, paragraph_hash

ENGLISH = '''# A Title
:label:`sec_x`

The network has 179,290 parameters and an error of 0.904 (see :numref:`fig_x`).

```{.python .input .check-output}
%%tab all
print(1.5)
```

![Errors of $n$ networks.](../img/x.svg)
:label:`fig_x`

The shift is $-0.50$ points :cite:`a.b`.
'''

INDONESIAN = {
    '# A Title\n:label:`sec_x`': '# Sebuah Judul\n:label:`sec_x`',
    'The network has 179,290 parameters and an error of 0.904 (see :numref:`fig_x`).':
        'Jaringan itu memiliki 179.290 parameter dan galat 0,904 (lihat :numref:`fig_x`).',
    '![Errors of $n$ networks.](../img/x.svg)\n:label:`fig_x`':
        '![Galat $n$ jaringan.](../img/x.svg)\n:label:`fig_x`',
    'The shift is $-0.50$ points :cite:`a.b`.': 'Pergeserannya $-0{,}50$ poin :cite:`a.b`.',
}
GLOSSARY = ('| English | Bahasa Indonesia | note |\n| --- | --- | --- |\n| network | jaringan | |\n'
            '| error | galat | not in "trial and error" |\n')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A chapter, its translation file and glossary in tmp_path."""
    chapter = tmp_path / 'cnn-design.md'
    chapter.write_text(ENGLISH)
    folder = tmp_path / 'translations'
    folder.mkdir()
    (folder / 'id-glossary.md').write_text(GLOSSARY)
    monkeypatch.setattr(translation, 'CHAPTER', chapter)
    monkeypatch.setattr(translation, 'FOLDER', folder)
    monkeypatch.setattr(translation, 'ROOT', tmp_path)
    write_entries(INDONESIAN)
    return chapter


def write_entries(texts):
    translation.translation_file('id').write_text(''.join(
        f'<!-- en:{paragraph_hash(en)} -->\n{tr}\n\n' for en, tr in texts.items()))


def test_the_chapter_is_split_into_pieces_that_give_it_back():
    text = translation.CHAPTER.read_text()
    pieces = translation.pieces(text)
    assert ''.join(p.text for p in pieces) == text
    assert all(p.text.startswith('```') for p in pieces if p.kind == 'code')
    assert not any('\n\n' in p.text for p in pieces if p.kind == 'paragraph')


def test_a_paragraph_is_known_by_its_words_not_its_line_breaks():
    assert paragraph_hash('one two\nthree') == paragraph_hash('one  two three ')
    assert paragraph_hash('one two three') != paragraph_hash('one two four')


def test_the_translation_keeps_the_code_and_replaces_each_paragraph(project):
    assert translation.problems('id', project) == [
        'cnn-design.id.md is out of date: run `make translation`']
    assert translation.build('id') == []
    translated = translation.translated_chapter('id').read_text()
    code = [c for c in notebook.parse_markdown(translated) if c[0] == 'code']
    assert code == [c for c in notebook.parse_markdown(ENGLISH) if c[0] == 'code']
    assert '```{.python .input .check-output}\n%%tab all\nprint(1.5)\n```' in translated
    assert 'Jaringan itu memiliki 179.290 parameter' in translated
    assert 'The network' not in translated
    assert translation.problems('id', project) == []
    assert translation.build('id', check=True) == []


def test_a_changed_english_paragraph_is_listed_with_its_new_hash(project):
    changed = ENGLISH.replace('The shift is', 'The median shift is')
    project.write_text(changed)
    new = paragraph_hash('The median shift is $-0.50$ points :cite:`a.b`.')
    old = paragraph_hash('The shift is $-0.50$ points :cite:`a.b`.')
    report = translation.status('id')
    assert report.startswith('3 of 4 English paragraphs translated')
    assert f'as <!-- en:{new} -->:\nThe median shift is' in report
    assert report.rstrip().endswith(old)          # its entry is stale
    problems = translation.problems('id', project)
    assert any(f'no entry for the English paragraph {new}' in p for p in problems)
    assert any(f'the entry {old} matches no English paragraph' in p for p in problems)
    with pytest.raises(TranslationError, match='1 paragraph'):
        translation.translate(changed, translation.read_entries(
            translation.translation_file('id')))


@pytest.mark.parametrize('wrong, message', [
    ('Jaringan itu memiliki 179.290 parameter dan galat 0,905 (lihat :numref:`fig_x`).',
     "states ['0,905', '179.290'], its English paragraph ['0,904', '179.290']"),
    ('Jaringan itu memiliki 179,290 parameter dan galat 0,904 (lihat :numref:`fig_x`).',
     'states'),                                               # English thousands separator
    ('Jaringan itu memiliki 179.290 parameter, 3 tahap dan galat 0,904 (lihat :numref:`fig_x`).',
     'states'),                                               # a number without a twin
    ('Jaringan itu memiliki 179.290 parameter dan galat 0,904.',
     'changes labels, references, citations or images'),
    ('Model itu memiliki 179.290 parameter dan galat 0,904 (lihat :numref:`fig_x`).',
     'does not use the glossary\'s "jaringan" for "network"'),
])
def test_numbers_references_and_terms_must_match_their_english_twin(project, wrong, message):
    write_entries({**INDONESIAN, 'The network has 179,290 parameters and an error of 0.904 '
                   '(see :numref:`fig_x`).': wrong})
    translation.build('id')
    problems = translation.problems('id', project)
    assert len(problems) == 1 and message in problems[0]


def test_a_glossary_note_exempts_a_phrase(project):
    assert translation.glossary('id') == [('network', 'jaringan', []),
                                          ('error', 'galat', ['trial and error'])]
    english = ENGLISH.replace('The shift is', 'By trial and error, the shift is')
    project.write_text(english)
    entries = {en: tr for en, tr in INDONESIAN.items() if not en.startswith('The shift')}
    write_entries({**entries, 'By trial and error, the shift is $-0.50$ points :cite:`a.b`.':
                   'Dengan coba-coba, pergeserannya $-0{,}50$ poin :cite:`a.b`.'})
    translation.build('id')
    assert translation.problems('id', project) == []


def test_an_entry_is_one_paragraph(project):
    translation.translation_file('id').write_text('<!-- en:0123456789ab -->\nsatu\n\ndua\n')
    with pytest.raises(TranslationError, match='one entry is one paragraph'):
        translation.read_entries(translation.translation_file('id'))


def test_numbers_are_written_the_indonesian_way():
    assert translation.localized('179,290', 'id') == '179.290'
    assert translation.localized('-0.50', 'id') == '-0,50'
    assert translation.stated_numbers('galat 0,904, lalu 10.000 citra dan $-0{,}50$.', 'id') == \
        ['0,904', '10.000', '-0,50']


@pytest.mark.skipif(not translation.translation_file('id').exists(),
                    reason='no Indonesian translation yet')
def test_the_indonesian_edition_is_complete_and_current():
    assert translation.problems('id') == []
    chapter, translated = (notebook.parse_markdown(path.read_text()) for path in
                           (translation.CHAPTER, translation.translated_chapter('id')))
    assert [c for c in translated if c[0] == 'code'] == [c for c in chapter if c[0] == 'code']
    ipynb = translation.translated_chapter('id').with_suffix('.ipynb')
    assert ipynb.read_text() == notebook.render(translation.translated_chapter('id')), \
        f'{ipynb.name} is out of date: run `make translation`'
