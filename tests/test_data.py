"""Tests of d2lsupport.data: fetching, verifying, reading, resizing, batching.

No test touches the network: files come from a local mirror folder (or the
URL in $FASHION_MNIST_MIRROR) and failed downloads use a closed local port.
"""
import gzip
import hashlib
import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from d2lsupport import data
from d2lsupport.data import DataError

REPO = Path(data.__file__).resolve().parents[1]
MIRROR = (os.environ.get(data.MIRROR_ENV)
          or str(REPO.parent / 'shared' / 'data' / 'fashion-mnist'))
MIRROR_DIR = Path(MIRROR) if Path(MIRROR).is_dir() else None
needs_mirror = pytest.mark.skipif(
    not os.environ.get(data.MIRROR_ENV) and MIRROR_DIR is None,
    reason=f'no Fashion-MNIST mirror; set {data.MIRROR_ENV}')
needs_mirror_dir = pytest.mark.skipif(
    MIRROR_DIR is None, reason=f'{data.MIRROR_ENV} is not a local folder')


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens, so requests fail at once."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/'


def linked_mirror(folder, corrupt=None):
    """A mirror folder linking to the real files, with `corrupt` altered."""
    folder.mkdir()
    for name in data.FILES:
        if name == corrupt:
            raw = bytearray((MIRROR_DIR / name).read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            (folder / name).write_bytes(bytes(raw))
        else:
            (folder / name).symlink_to(MIRROR_DIR / name)
    return folder


def write_gz(path, raw):
    with gzip.open(path, 'wb') as f:
        f.write(raw)
    return path


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([sys.executable, '-m', 'd2lsupport.data', *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
def isolated_caches(monkeypatch):
    """Each test starts with empty in-process caches and no mirror or data dir set."""
    monkeypatch.setattr(data, '_VERIFIED', set())
    monkeypatch.setattr(data, '_RESIZED', {})
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.delenv(data.DATA_ENV, raising=False)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """A data folder filled once from the mirror, shared by the tests below."""
    if not os.environ.get(data.MIRROR_ENV) and MIRROR_DIR is None:
        pytest.skip(f'no Fashion-MNIST mirror; set {data.MIRROR_ENV}')
    return data.ensure_files(tmp_path_factory.mktemp('fashion-mnist'), MIRROR)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_mirror():
    """Serve the mirror folder on 127.0.0.1; yield its base URL."""
    handler = partial(QuietHandler, directory=str(MIRROR_DIR))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


def test_data_dir_precedence(tmp_path, monkeypatch):
    assert data.data_dir() == REPO / 'data' / 'fashion-mnist'
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / 'env'))
    assert data.data_dir() == tmp_path / 'env'
    assert data.data_dir(tmp_path / 'arg') == tmp_path / 'arg'


def test_an_installed_package_keeps_the_data_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, 'checkout_root', lambda: None)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert data.data_dir() == tmp_path / 'd2lsupport' / 'fashion-mnist'


@needs_mirror
def test_fetch_from_mirror_and_verify_once(tmp_path, monkeypatch):
    root = data.ensure_files(tmp_path, MIRROR)
    assert root == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(data.FILES)
    for name, expected in data.FILES.items():
        assert md5(tmp_path / name) == expected
    monkeypatch.setattr(data, '_md5', lambda path: pytest.fail('verified twice'))
    data.ensure_files(tmp_path)


@needs_mirror
def test_known_facts(root):
    images, labels = data.load_split(True, root)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert labels[0] == 9 and data.TEXT_LABELS[labels[0]] == 'ankle boot'
    assert (np.bincount(labels, minlength=10) == 6000).all()
    counts = np.bincount(images.ravel(), minlength=256)
    values = np.arange(256) / 255
    mean = counts @ values / counts.sum()
    std = np.sqrt(counts @ (values - mean) ** 2 / counts.sum())
    assert mean == pytest.approx(0.2860405969887955, abs=1e-6)
    assert std == pytest.approx(0.3530242445149226, abs=1e-6)
    images, labels = data.load_split(False, root)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert (np.bincount(labels, minlength=10) == 1000).all()


@needs_mirror_dir
def test_corrupt_mirror_copy_is_rejected(tmp_path):
    name = 'train-labels-idx1-ubyte.gz'
    mirror = linked_mirror(tmp_path / 'mirror', corrupt=name)
    root = tmp_path / 'root'
    with pytest.raises(DataError) as info:
        data.ensure_files(root, mirror)
    message = str(info.value)
    assert name in message and data.FILES[name] in message
    assert md5(mirror / name) in message and '\n' not in message
    assert not (root / name).exists()
    assert sorted(p.name for p in root.iterdir()) == ['train-images-idx3-ubyte.gz']


def test_present_file_with_wrong_checksum(tmp_path):
    name = 'train-images-idx3-ubyte.gz'   # the first file checked
    (tmp_path / name).write_bytes(b'not the real file')
    with pytest.raises(DataError, match='delete it') as info:
        data.ensure_files(tmp_path, tmp_path / 'unused')
    message = str(info.value)
    assert name in message and data.FILES[name] in message
    assert hashlib.md5(b'not the real file').hexdigest() in message


def test_read_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_gz(tmp_path / 'a.gz', b'\0\0\x08\x03' + struct.pack('>3i', 2, 3, 4)
                    + array.tobytes())
    np.testing.assert_array_equal(data.read_idx(path), array)


@pytest.mark.parametrize('raw, match', [
    (b'\0\0\x08\x01' + struct.pack('>i', 10) + bytes(9), 'truncated or not an IDX'),
    (b'\0\0\x08\x01' + struct.pack('>i', 10) + bytes(11), 'truncated or not an IDX'),
    (b'\0\0\x08\x03' + struct.pack('>i', 10), 'truncated or not an IDX'),
    (b'\0\0\x0d\x01' + struct.pack('>i', 2) + bytes(8), 'bad magic'),
    (b'PK\x03\x04 a zip archive', 'bad magic'),
])
def test_read_idx_rejects_bad_content(tmp_path, raw, match):
    path = write_gz(tmp_path / 'bad.gz', raw)
    with pytest.raises(DataError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_bad_gzip(tmp_path):
    plain = tmp_path / 'plain.gz'
    plain.write_bytes(b'\0\0\x08\x01' + struct.pack('>i', 1) + b'x')
    with pytest.raises(DataError, match='not a gzip file'):
        data.read_idx(plain)
    whole = gzip.compress(bytes(range(256)) * 100)
    cut = tmp_path / 'cut.gz'
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError, match='truncated or not an IDX file'):
        data.read_idx(cut)


def test_no_network_and_no_mirror(tmp_path, monkeypatch):
    monkeypatch.setattr(data, 'OFFICIAL_URL', closed_port_url())
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        data.ensure_files(tmp_path)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert 'failed' in message and data.MIRROR_ENV in message and '--mirror' in message
    assert '\n' not in message
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, closed_port_url())
    with pytest.raises(DataError, match='train-images-idx3-ubyte.gz.*failed'):
        data.ensure_files(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_mirror_folder_missing_a_file(tmp_path):
    (tmp_path / 'mirror').mkdir()
    with pytest.raises(DataError, match='has no train-images-idx3-ubyte.gz'):
        data.ensure_files(tmp_path / 'root', tmp_path / 'mirror')
    with pytest.raises(DataError, match='does not exist'):
        data.ensure_files(tmp_path / 'root', tmp_path / 'nowhere')


@needs_mirror_dir
def test_url_mirrors(tmp_path, http_mirror):
    data.ensure_files(tmp_path / 'http', http_mirror)
    data.ensure_files(tmp_path / 'file', MIRROR_DIR.as_uri())
    for name, expected in data.FILES.items():
        assert md5(tmp_path / 'http' / name) == md5(tmp_path / 'file' / name) == expected


@needs_mirror_dir
def test_url_mirror_without_the_file(tmp_path, http_mirror):
    with pytest.raises(DataError, match='train-images-idx3-ubyte.gz.*404'):
        data.ensure_files(tmp_path, http_mirror + 'missing/')


@needs_mirror
def test_cli_success(tmp_path):
    result = run_cli('--root', str(tmp_path), '--mirror', MIRROR)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith('ok') for line in lines[:4])
    result = run_cli('--root', str(tmp_path))
    assert result.returncode == 0 and result.stdout.splitlines()[:4] == lines[:4]


def test_cli_errors(tmp_path):
    root, empty = tmp_path / 'root', tmp_path / 'empty'
    empty.mkdir()
    result = run_cli('--root', str(root), '--mirror', str(empty))
    assert result.returncode == 1 and result.stdout == ''
    assert result.stderr.count('\n') == 1 and result.stderr.startswith('error: ')
    assert 'train-images-idx3-ubyte.gz' in result.stderr
    (root / 'train-images-idx3-ubyte.gz').write_bytes(b'junk')
    result = run_cli('--root', str(root))
    assert result.returncode == 1
    assert result.stderr.startswith('error: ') and result.stderr.count('\n') == 1
    assert 'delete it' in result.stderr and 'Traceback' not in result.stderr


def test_resize_by_hand():
    image = np.array([[[0, 80], [160, 240]]], np.uint8)
    expected = [[0, 20, 60, 80],
                [40, 60, 100, 120],
                [120, 140, 180, 200],
                [160, 180, 220, 240]]
    np.testing.assert_array_equal(data.resize_images(image, (4, 4))[0], expected)
    # Three columns onto two: sources at x = 0.25 and 1.75.
    row = np.array([[[0, 100, 200]]], np.uint8)
    np.testing.assert_array_equal(data.resize_images(row, (1, 2)), [[[25, 175]]])


def test_resize_constant_and_identity():
    images = np.repeat(np.array([0, 7, 128, 255], np.uint8), 28 * 28).reshape(4, 28, 28)
    for size in [(96, 96), (13, 40), (28, 5)]:
        out = data.resize_images(images, size, chunk=3)
        assert out.shape == (4, *size) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, images[:, :1, :1] + np.zeros(size, np.uint8))
    assert data.resize_images(images, (28, 28)) is images


def exact_bilinear(images, size):
    """Bilinear resize computed pixel by pixel in float64, unrounded: each output
    pixel mixes its four nearest source pixels (half-pixel centres, clamped at
    the edges)."""
    def sources(n_in, n_out):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(src).astype(np.int64)
        return low, np.minimum(low + 1, n_in - 1), src - low
    y0, y1, fy = sources(images.shape[1], size[0])
    x0, x1, fx = sources(images.shape[2], size[1])
    fy, fx = fy[:, None], fx[None, :]
    pixels = images.astype(np.float64)
    top = pixels[:, y0][:, :, x0] * (1 - fx) + pixels[:, y0][:, :, x1] * fx
    bottom = pixels[:, y1][:, :, x0] * (1 - fx) + pixels[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_resize_rounds_the_exact_bilinear_values():
    # Random images use every grey level; 250 images in chunks of 100 leave a short
    # last chunk. Each output pixel is the exact value rounded to the nearest integer;
    # at a tie (x.5) float32 arithmetic may round either way.
    images = np.random.default_rng(0).integers(0, 256, (250, 28, 28), dtype=np.uint8)
    for size in [(96, 96), (20, 40), (13, 28)]:
        out = data.resize_images(images, size, chunk=100)
        assert out.shape == (250, *size) and out.dtype == np.uint8
        assert np.abs(out - exact_bilinear(images, size)).max() <= 0.5 + 1e-3, size


@needs_mirror
def test_disk_cache_is_reused(root, monkeypatch):
    images, labels = data.load_resized(False, (32, 32), root)
    assert images.shape == (10000, 32, 32) and images.dtype == np.uint8
    assert (root / 'cache' / 'test-32x32.npy').is_file()
    assert data.load_resized(False, [32, 32], root)[0] is images
    monkeypatch.setattr(data, '_RESIZED', {})
    monkeypatch.setattr(data, 'resize_images', lambda *args: pytest.fail('recomputed'))
    again, labels_again = data.load_resized(False, (32, 32), root)
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(labels_again, labels)


@needs_mirror
def test_fashion_mnist_batches(root):
    fm = data.FashionMNISTBase(batch_size=256, root=root, seed=1)
    assert fm.hparams == dict(batch_size=256, resize=(28, 28), root=root, seed=1,
                             num_train=None, num_val=None)
    assert fm.num_batches(True) == 235 and fm.num_batches(False) == 40
    X, y = next(fm.batches(True))
    assert X.shape == (256, 28, 28) and X.dtype == np.float32
    assert y.shape == (256,) and y.dtype == np.int64
    assert 0 <= X.min() and X.max() <= 1 and X.max() > 0.9
    *_, (X, y) = fm.batches(False)
    assert X.shape == (10000 - 39 * 256, 28, 28)
    assert fm.text_labels(y[:2]) == [data.TEXT_LABELS[y[0]], data.TEXT_LABELS[y[1]]]


@needs_mirror
def test_fashion_mnist_subset(root):
    fm = data.FashionMNISTBase(batch_size=100, root=root, num_train=1000, num_val=300)
    full = data.load_resized(True, (28, 28), root)
    assert fm.num_batches(True) == 10 and fm.num_batches(False) == 3
    np.testing.assert_array_equal(fm.train[0], full[0][:1000])
    np.testing.assert_array_equal(fm.train[1], full[1][:1000])
    assert sum(len(y) for _, y in fm.batches(False)) == 300


@needs_mirror
def test_shuffling_covers_every_example(root):
    fm = data.FashionMNISTBase(batch_size=1000, root=root)
    fm.train = fm.val = (np.zeros((2500, 2, 2), np.uint8), np.arange(2500))
    first, second = (np.concatenate([y for _, y in fm.batches(True)]) for _ in range(2))
    assert (np.sort(first) == np.arange(2500)).all()
    assert (np.sort(second) == np.arange(2500)).all()
    assert (first != second).any()
    assert (np.concatenate([y for _, y in fm.batches(False)]) == np.arange(2500)).all()
    same_seed = data.FashionMNISTBase(batch_size=1000, root=root)
    same_seed.train = fm.train
    np.testing.assert_array_equal(next(same_seed.batches(True))[1], first[:1000])


@pytest.mark.parametrize('kwargs, message', [
    (dict(batch_size=0), 'batch_size must be a positive integer, got 0'),
    (dict(batch_size='64'), "batch_size must be a positive integer, got '64'"),
    (dict(resize=(0, 28)), 'resize must be a positive integer, got 0'),
    (dict(resize=(96,)), r'resize must be a \(height, width\) pair'),
    (dict(num_train=0), 'num_train must be a positive integer, got 0'),
    (dict(num_train=60_001), 'num_train must be at most 60,000 .the training images.'),
    (dict(num_val=2.5), 'num_val must be a positive integer, got 2.5'),
    (dict(num_val=10_001), 'num_val must be at most 10,000 .the test images.'),
    (dict(seed=-1), 'seed must be an integer >= 0, got -1'),
    (dict(root=5), 'root must be a path .* or None, got 5')])
def test_bad_arguments_fail_before_any_file_is_read(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=f'^FashionMNIST: {message}'):
        data.FashionMNISTBase(**{'root': tmp_path / 'unused', **kwargs})
    assert not (tmp_path / 'unused').exists()


@pytest.mark.parametrize('args, code, message', [
    (['--root', '{tmp}/file'], 1, 'cannot create the data folder {tmp}/file (File exists); '
                                  'set D2L_DATA_DIR (or pass --root) to a writable folder'),
    (['--root', '{tmp}/root', '--mirror', '{tmp}/nowhere'], 1,
     'mirror folder {tmp}/nowhere does not exist; set FASHION_MNIST_MIRROR'),
    (['--root', '{tmp}/root', '--mirror', '{tmp}/file'], 1, 'mirror folder {tmp}/file is not a '
                                                              'folder'),
    (['--root', '{tmp}/root', '--mirror', 'ftp://host/'], 1, 'mirror ftp://host/ is neither a '
                                                            'folder nor an http(s)://'),
    (['--mirror'], 2, 'argument --mirror: expected one argument'),
    (['--roots', '{tmp}'], 2, 'unrecognized arguments: --roots')])
def test_cli_bad_arguments_are_one_line(tmp_path, capsys, args, code, message):
    (tmp_path / 'file').write_text('not a folder')
    try:
        found = data.main([a.format(tmp=tmp_path) for a in args])
    except SystemExit as exit:   # the parser's errors
        found = exit.code
    captured = capsys.readouterr()
    assert found == code and captured.out == '' and captured.err.count('\n') == 1
    assert message.format(tmp=tmp_path) in captured.err
