"""The built HTML pages (English and Bahasa Indonesia) in a real browser: tabs,
outputs, images, math, citations and the links between the two languages.

`make test-html` runs this in the docs environment after `make html`: Debian's headless
chromium, driven by Selenium through Debian's chromium-driver, opens the page from a
local server on 127.0.0.1, clicks each framework's tab and checks that its code and
outputs show, that every image loads and that MathJax typesets the math. Screenshots
go to _build/screenshots/. Elsewhere (the framework environments of `make test`, which
have no Selenium, or before `make html`) the module is skipped; under `make test-html`
(CNN_DESIGN_HTML_TEST=1) a missing piece is an error instead.
"""
import functools
import http.server
import json
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from d2lsupport.core import FRAMEWORKS, MODULES

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / '_build' / 'html'
PAGE = 'chapter_cnn_design/cnn-design.html'
REFERENCES = 'chapter_references/references.html'
# per language: the folder of its site, its title, the first words of its budget note
# and of the small budget's note, and the name of its link to the other language
EDITIONS = {
    'en': ('', 'Designing Convolution Network Architectures', 'Outputs on this page',
           'small training budget', 'Bahasa Indonesia'),
    'id': ('id/', 'Merancang Arsitektur Jaringan Konvolusi', 'Keluaran di halaman ini',
           'anggaran pelatihan kecil', 'English'),
}
CHAPTER_MD = ROOT / 'chapter_cnn_design' / 'cnn-design.md'
SCREENSHOTS = ROOT / '_build' / 'screenshots'
TABS = list(FRAMEWORKS)
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('CHROMEDRIVER', '/usr/bin/chromedriver')
CODE = 'div.highlight-python pre'               # a code cell
OUTPUT = 'pre.output, div.output pre'           # a text output (plain or highlighted)
REQUIRED = os.environ.get('CNN_DESIGN_HTML_TEST') == '1'
WAIT = 30  # seconds, for anything the browser does


def unavailable(reason):
    if REQUIRED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    unavailable('Selenium is not installed here (the docs environment has it: make test-html)')
if not (HTML / PAGE).exists():
    unavailable(f'no built page {HTML / PAGE}: run `make html`')
for program in (CHROMIUM, CHROMEDRIVER):
    if not shutil.which(program):
        unavailable(f'{program} is missing: apt-get install chromium chromium-driver')


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def base_url():
    """The built site, served from 127.0.0.1 on a free port."""
    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    os.environ.setdefault('SE_OFFLINE', 'true')   # Selenium never downloads anything
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--no-first-run', '--disable-background-networking', '--disable-component-update',
                '--disable-sync', '--disable-quic', '--window-size=1280,1500',
                f'--user-data-dir={tmp_path_factory.mktemp("chromium")}',
                # the page is tested offline: other hosts (analytics, web fonts) fail at once
                '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope='module', params=list(EDITIONS))
def page(request, browser, base_url):
    browser.language = request.param
    browser.get(base_url + EDITIONS[request.param][0] + PAGE)
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script('return document.readyState') == 'complete')
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def tab_groups(driver):
    return driver.find_elements(By.CSS_SELECTOR, 'div.mdl-tabs')


def click_tab(driver, name):
    """Click `name` in the first tab bar and wait until every group shows that tab."""
    link = next(a for a in driver.find_elements(By.CSS_SELECTOR, 'a.mdl-tabs__tab')
                if a.get_attribute('textContent').strip() == name)
    js(driver, 'arguments[0].scrollIntoView({block: "center"});', link)
    link.click()

    def switched(d):
        for group in tab_groups(d):
            shown = [p for p in group.find_elements(By.CSS_SELECTOR, 'div.mdl-tabs__panel')
                     if p.is_displayed()]
            if len(shown) != 1 or not shown[0].get_attribute('id').startswith(name + '-'):
                return False
        return True
    WebDriverWait(driver, WAIT).until(switched, f'the {name} tab did not show in every group')


def shown_panels(driver):
    return [p for p in driver.find_elements(By.CSS_SELECTOR, 'div.mdl-tabs__panel')
            if p.is_displayed()]


def budget_note(driver):
    notes = [p.text for p in driver.find_elements(By.CSS_SELECTOR, 'p')
             if p.text.startswith(EDITIONS[driver.language][2])]
    assert len(notes) == 1, 'the note saying which training budget produced the outputs'
    return notes[0]


def recorded_summary(framework):
    """The final line that `framework`'s recorded run printed, from its record."""
    r = json.loads((ROOT / 'results' / f'regnetx32.{framework}.json').read_text())
    return (f'train loss {r["train_loss"]:.3f}, val loss {r["val_loss"]:.3f}, '
            f'val acc {r["val_acc"]:.3f}; {r["epochs_done"]} epochs in {r["wall_time_s"]:.1f} s')


def test_the_page_says_which_budget_produced_its_outputs(page):
    assert EDITIONS[page.language][1] in page.title
    note = budget_note(page)
    assert EDITIONS[page.language][3] in note or 'full' in note or 'penuh' in note


def test_each_language_links_the_other(page, base_url):
    own = EDITIONS[page.language]
    other = next(e for code, e in EDITIONS.items() if code != page.language)
    link = next(a for a in page.find_elements(By.CSS_SELECTOR, 'a') if a.text.strip() == own[4])
    assert js(page, 'return arguments[0].getBoundingClientRect().top', link) < 1000, \
        'the link to the other language is near the top of the page'
    assert link.get_attribute('href') == base_url + other[0] + PAGE
    page.get(link.get_attribute('href'))
    WebDriverWait(page, WAIT).until(lambda d: other[1] in d.title)
    page.back()
    WebDriverWait(page, WAIT).until(lambda d: own[1] in d.title)


def test_every_code_group_has_the_four_tabs(page):
    groups = tab_groups(page)
    assert len(groups) >= 6
    for group in groups:
        names = [a.get_attribute('textContent').strip()
                 for a in group.find_elements(By.CSS_SELECTOR, 'a.mdl-tabs__tab')]
        assert names == TABS


@pytest.mark.parametrize('name', TABS)
def test_each_tab_shows_its_code_and_outputs(page, name):
    click_tab(page, name)
    panels = [p for p in shown_panels(page) if not notebook_links(p)]
    assert panels and all(p.get_attribute('id').startswith(name + '-') for p in panels)
    for panel in panels:   # every shown panel has code (but the one linking the notebook)
        code = panel.find_elements(By.CSS_SELECTOR, CODE)
        assert code and code[0].text.strip(), f'no code in panel {panel.get_attribute("id")}'
    outputs = '\n'.join(o.text for p in panels
                        for o in p.find_elements(By.CSS_SELECTOR, OUTPUT))
    assert 'total parameters: 179,290' in outputs          # RegNetX32().layer_summary(...)
    # the chapter's own block, not library internals
    codes = '\n'.join(c.text for p in panels for c in p.find_elements(By.CSS_SELECTOR, CODE))
    assert 'class ResNeXtBlock' in codes and 'inspect.getsource' not in codes
    assert re.search(r'train loss \d+\.\d+, val loss \d+\.\d+, val acc', outputs)  # trainer.fit
    training = next(p for p in panels if 'trainer.fit(model, data)' in p.text)
    if EDITIONS[page.language][3] in budget_note(page):
        # the training cell shows this framework's recorded run, not the small budget
        assert 'SMALL-BUDGET MODE' not in training.text
        assert f'Recorded run: results/cnn-design.{name}.ipynb' in training.text
        assert recorded_summary(name) in training.text
        assert not re.search(r'/(?:work|home|root|tmp)/', training.text), 'a machine path'
    else:
        assert 'SMALL-BUDGET MODE' not in outputs
    plots = [img for p in panels for img in p.find_elements(By.TAG_NAME, 'img')
             if img.is_displayed()]
    assert plots, f'no training plot in the {name} tab'
    assert all(js(page, 'return arguments[0].naturalWidth', img) > 0 for img in plots)
    js(page, 'arguments[0].closest(".mdl-tabs").scrollIntoView({block: "start"});', training)
    prefix = '' if page.language == 'en' else f'{page.language}-'
    page.save_screenshot(str(SCREENSHOTS / f'{prefix}tab-{name}.png'))


def notebook_links(element):
    return [a for a in element.find_elements(By.TAG_NAME, 'a')
            if (a.get_attribute('href') or '').endswith('.ipynb')]


@pytest.mark.parametrize('name', TABS)
def test_each_tab_links_its_own_notebook(page, name):
    click_tab(page, name)
    links = [a for p in shown_panels(page) for a in notebook_links(p)]
    assert len(links) == 1, 'one notebook link in the shown tab'
    suffix = '' if page.language == 'en' else f'.{page.language}'
    href = links[0].get_attribute('href')
    assert href.endswith(f'/notebooks/{name}/cnn-design{suffix}.ipynb')
    with urllib.request.urlopen(href) as response:   # the link, followed
        nb = json.loads(response.read())
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
    module = MODULES[name]   # the d2lsupport module of the framework
    assert f'[{name}]"' in code[0]                                  # installs its extra
    assert any(f'from d2lsupport import {module} as d2l' in c for c in code)
    others = [MODULES[fw] for fw in TABS if fw != name]
    assert not any(f'from d2lsupport import {m} as d2l' in c for c in code for m in others)


def test_shared_cells_show_once_outside_the_tabs(page):
    code = page.find_elements(By.CSS_SELECTOR, CODE)
    for call, cells in (('design.regnet_widths(', 2), ('design.plot_width_rule(', 1),
                        ("show_results('RegNetX32')", 1)):
        blocks = [c for c in code if call in c.get_attribute('textContent')]
        assert len(blocks) == cells, call
        assert not js(page, 'return arguments[0].closest(".mdl-tabs") !== null', blocks[0]), call
    shared_outputs = [o.get_attribute('textContent') for o in page.find_elements(By.CSS_SELECTOR, OUTPUT)
                      if not js(page, 'return arguments[0].closest(".mdl-tabs") !== null', o)]
    assert any("'depths'" in text for text in shared_outputs)      # design.regnet_widths(...)
    assert any('no recorded runs' in text or ('framework' in text and 'val acc' in text)
               for text in shared_outputs)                          # show_results(...)


def test_every_image_loads(page, base_url):
    images = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.images).map(img => img.decode().then(
            () => [img.src, img.naturalWidth], () => [img.src, 0]))).then(done);
    """)
    assert images
    broken = [src for src, width in images if not width]
    assert not broken, f'images that did not load: {broken}'
    assert all(src.startswith(base_url) for src, _ in images)
    names = [src.rsplit('/', 1)[-1] for src, _ in images]
    assert any(n.startswith('anynet') and n.endswith('.svg') for n in names)
    assert any(n.startswith('edf-study') and n.endswith('.svg') for n in names)
    # the study's EDFs once, as the committed figures (no cell redraws them)
    studies = [n for n in names if n.startswith('edf-study') and n.endswith('.svg')]
    assert len(studies) == 2 and any(n.startswith('edf-study-cost') for n in studies)
    # the width rule once; then one training plot per tab
    assert sum(n.endswith('.png') for n in names) >= 1 + len(TABS)


def test_math_renders(page):
    WebDriverWait(page, WAIT).until(lambda d: js(
        d, 'return !!(window.MathJax && MathJax.startup && MathJax.startup.promise)'),
        'MathJax did not load')
    state = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        MathJax.startup.promise.then(() => done('ok'), e => done('failed: ' + e));
    """)
    assert state == 'ok'
    maths = page.find_elements(By.CSS_SELECTOR, 'span.math, div.math')
    assert len(maths) > 20
    untypeset = [m.get_attribute('textContent')[:40] for m in maths
                 if not m.find_elements(By.TAG_NAME, 'mjx-container')]
    assert not untypeset, f'math left as TeX: {untypeset[:5]}'
    assert not page.find_elements(By.TAG_NAME, 'mjx-merror'), 'TeX errors in the math'
    src = js(page, 'return Array.from(document.scripts).map(s => s.src)'
                   '.find(s => s.includes("tex-mml-chtml")) || ""')
    assert '/_static/mathjax/' in src, 'MathJax is served with the page'
    js(page, 'document.querySelector(".page-content").scrollIntoView();'
             'document.querySelector("main").scrollTop = 0;')
    prefix = '' if page.language == 'en' else f'{page.language}-'
    page.save_screenshot(str(SCREENSHOTS / f'{prefix}page-top.png'))


def test_references_resolve(page, base_url):
    text = page.find_element(By.TAG_NAME, 'body').get_attribute('textContent')
    for role in (':cite:', ':citet:', ':numref:', ':label:'):
        assert role not in text
    unresolved = js(page, 'return Array.from(document.querySelectorAll(".xref"))'
                          '.filter(e => !e.closest("a")).map(e => e.textContent)')
    assert not unresolved, f'unresolved references: {unresolved}'
    cited = set()
    for keys in re.findall(r':cite[tp]?:`([^`]+)`', CHAPTER_MD.read_text()):
        cited.update(k.strip() for k in keys.split(','))
    links = js(page, 'return Array.from(document.querySelectorAll("a"))'
                     '.map(a => a.getAttribute("href") || "")'
                     '.filter(h => h.includes("references.html#"))')
    assert len(links) >= len(cited)
    page.get(base_url + EDITIONS[page.language][0] + REFERENCES)
    entries = page.find_elements(By.CSS_SELECTOR, 'dl.citation > dt, div.citation')
    assert len(entries) == len(cited)
    page.back()
