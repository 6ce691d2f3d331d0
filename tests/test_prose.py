"""Every number in the chapter's prose and the README's results has a source and
agrees with it (d2lsupport.prose, claims in chapter_cnn_design/numbers.py)."""
from d2lsupport import prose
from d2lsupport.prose import Claim


def test_every_number_in_the_prose_is_tied_to_its_source_and_agrees():
    problems = prose.check()
    assert not problems, '\n'.join(problems)


def problems_of(text, claims, readme=False):
    return [p for c in claims for p in prose.check_claim(c)] + \
        prose.check_document('doc.md', text, claims, readme)


def test_a_number_without_a_claim_is_reported():
    text = 'The network has 1,234 parameters and trains in 5 minutes.\n'
    problems = problems_of(text, [Claim('1,234 parameters', 'a count', value=lambda: '1,234')])
    assert len(problems) == 1 and "'5' has no source" in problems[0]


def test_a_claim_whose_numbers_differ_fails_with_rounding_and_signs():
    text = 'error fell by $-0.74$ and accuracy rose to 0.91.\n'
    right = [Claim('error fell by $-0.74$', 'corr', value=lambda: f'{-0.7351:.2f}'),
             Claim('accuracy rose to 0.91', 'acc', value=lambda: f'{0.9062:.2f}')]
    assert problems_of(text, right) == []
    wrong = [Claim('error fell by $-0.74$', 'corr', value=lambda: f'{0.7351:.2f}'),
             Claim('accuracy rose to 0.91', 'acc', value=lambda: f'{0.9062:.3f}')]
    problems = problems_of(text, wrong)
    assert len(problems) == 2
    assert "states ['-0.74'], but corr gives ['0.74']" in problems[0]
    assert "states ['0.91'], but acc gives ['0.906']" in problems[1]


def test_rounding_and_words_are_checked():
    text = 'about 11% more, and almost all of them.\n'
    assert problems_of(text, [Claim('about 11% more', 'ratio', value=lambda: f'{11.2:.0f}'),
                              Claim('almost all of them', 'share', holds=lambda: 0.95 > 0.9)]) == []
    wrong = problems_of(text, [Claim('about 11% more', 'ratio', value=lambda: f'{12.6:.0f}'),
                               Claim('almost all of them', 'share', holds=lambda: 0.83 > 0.9)])
    assert len(wrong) == 2
    assert "states ['11'], but ratio gives ['13']" in wrong[0]
    assert 'does not hold according to share' in wrong[1]


def test_a_claim_no_longer_in_the_prose_is_reported():
    problems = problems_of('Nothing here.\n', [Claim('32 layers', 'definition: names')])
    assert problems and 'is not in the prose' in problems[0]


def test_only_the_paper_and_definitions_may_go_unchecked():
    assert prose.check_claim(Claim('500 networks', 'paper, Sec. 3')) == []
    assert prose.check_claim(Claim('500 networks', 'somewhere'))


def test_code_names_subscripts_and_list_markers_are_not_numbers():
    text = ('1. RegNetX32 of 400MF uses `lr=0.05` and $c_0$, $d_{i+1}$ :cite:`He.2016`.\n'
            '```{.python .input}\nprint(42)\n```\n![x](../img/fig2.svg)\n')
    assert prose.numbers(prose.visible(text)) == []


def test_the_readme_is_checked_between_its_markers_only():
    text = (f'Trains in 53 minutes.\n{prose.README_START}\nAccuracy 0.906.\n'
            f'{prose.README_END}\nLater: 7 minutes.\n')
    problems = problems_of(text, [], readme=True)
    assert len(problems) == 1 and "'0.906' has no source" in problems[0]


def test_a_broken_source_is_reported_not_raised():
    problems = prose.check_claim(Claim('3 runs', 'a record', value=lambda: 1 / 0))
    assert problems and 'ZeroDivisionError' in problems[0]


def test_words_are_counted_outside_code_labels_and_link_targets():
    doc = ('# A title\n:label:`sec_x`\n\nSome prose with $x_1$ math :cite:`a.b`.\n\n'
           '```{.python .input}\nprint("not counted")\n```\n\n'
           '![A caption here](../img/some-long-path.svg)\n:label:`fig_x`\n')
    # A title / Some prose with $x_1$ math :cite:`a.b`. / ![A caption here]
    assert prose.word_count(doc) == 3 + 6 + 3


def test_a_chapter_longer_than_the_limit_is_reported(tmp_path):
    chapter = tmp_path / 'c.md'
    chapter.write_text('word ' * (prose.MAX_WORDS + 1))
    readme = tmp_path / 'README.md'
    readme.write_text('')
    problems = prose.check([], chapter, readme)
    assert problems == [f'c.md: {prose.MAX_WORDS + 1:,} words of prose, more than '
                        f'{prose.MAX_WORDS:,}; cut what does not teach design spaces']
    chapter.write_text('word ' * prose.MAX_WORDS)
    assert prose.check([], chapter, readme) == []
