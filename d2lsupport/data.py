"""Fashion-MNIST: fetch, verify, read, resize and batch it, without a framework.

The four files of the official release are kept in a data folder (see
`data_dir`) and checked against their published MD5 sums. A missing file is
downloaded from the official site, or from a mirror: a local folder or a URL
given by ``--mirror`` or the environment variable ``FASHION_MNIST_MIRROR``.

Run ``python -m d2lsupport.data`` to fetch and verify the files ahead of time.
"""
import contextlib
import gzip
import hashlib
import http.client
import os
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from tqdm import tqdm

from . import checks, cli
from .core import HyperParameters, atomic_file, checkout_root

FILES = {
    'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
    'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
    't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
    't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
}
OFFICIAL_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
NUM_TRAIN, NUM_VAL = 60_000, 10_000   # images in the training and test files
TEXT_LABELS = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
               'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
DATA_ENV = 'D2L_DATA_DIR'
MIRROR_ENV = 'FASHION_MNIST_MIRROR'
MIRROR_HINT = (f'set {MIRROR_ENV} (or pass --mirror) to a folder holding the four '
               'Fashion-MNIST files')

_VERIFIED = set()   # (path, size, mtime) of files whose MD5 matched
_RESIZED = {}       # (data dir, train, size) -> (images, labels)


class DataError(RuntimeError):
    """A problem with the data files that the user can fix."""


def data_dir(root=None):
    """The folder holding the four files: `root`, $D2L_DATA_DIR, else data/ of the
    repository when running from it, or the user's cache folder for an installed
    package."""
    return Path(root or os.environ.get(DATA_ENV) or default_data_dir()).expanduser()


def default_data_dir():
    repo = checkout_root()
    if repo:
        return repo / 'data' / 'fashion-mnist'
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache) / 'd2lsupport' / 'fashion-mnist'



def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path):
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _source_url(name, mirror):
    """Where to fetch `name` from; a mirror folder must already hold it."""
    if not mirror:
        return OFFICIAL_URL + name
    if mirror.startswith(('http://', 'https://')):
        return mirror.rstrip('/') + '/' + name
    if mirror.startswith('file://'):
        folder = Path(urllib.request.url2pathname(urlparse(mirror).path))
    elif '://' in mirror:
        raise DataError(f'mirror {mirror} is neither a folder nor an http(s):// or file:// '
                        f'URL; {MIRROR_HINT}')
    else:
        folder = Path(mirror).expanduser()
    if not folder.is_dir():
        problem = 'is not a folder' if folder.exists() else 'does not exist'
        raise DataError(f'mirror folder {folder} {problem}; {MIRROR_HINT}')
    if not (folder / name).is_file():
        raise DataError(f'mirror folder {folder} has no {name}; copy the four '
                        'Fashion-MNIST files there or point the mirror elsewhere')
    return (folder / name).resolve().as_uri()


def _reason(error):
    """The underlying cause of a failed request, e.g. 'Connection refused'."""
    if isinstance(error, urllib.error.URLError) and not isinstance(
            error, urllib.error.HTTPError):
        return error.reason
    return error


def _fetch(name, root, mirror):
    """Download `name` into `root`, checking its MD5 before it is moved in place."""
    url = _source_url(name, mirror)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with atomic_file(root / name) as f, \
                urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, desc=name, unit='B', unit_scale=True,
                      unit_divisor=1024, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b''):
                    f.write(block)
                    digest.update(block)
                    bar.update(len(block))
            if digest.hexdigest() != FILES[name]:
                raise DataError(
                    f'checksum mismatch for {name} fetched from {url}: expected MD5 '
                    f'{FILES[name]}, got {digest.hexdigest()}; nothing was saved, '
                    'replace the source copy or use another mirror')
    except (OSError, http.client.HTTPException) as e:
        reason = ' '.join(str(_reason(e)).split()) or type(e).__name__
        hint = (f'check that the mirror {mirror} is reachable and holds the file'
                if mirror else MIRROR_HINT)
        raise DataError(f'download of {name} from {url} failed ({reason}); '
                        f'{hint}') from None
    _VERIFIED.add(_stamp(root / name))


def _verify(path):
    """Check the MD5 of a present file, once per process."""
    if _stamp(path) in _VERIFIED:
        return
    actual = _md5(path)
    if actual != FILES[path.name]:
        raise DataError(f'{path} has MD5 {actual} but expected {FILES[path.name]}; '
                        'delete it and run again to fetch a fresh copy')
    _VERIFIED.add(_stamp(path))


def ensure_files(root=None, mirror=None):
    """Make sure the four files are in the data folder and verified; return it."""
    root = data_dir(root)
    mirror = str(mirror) if mirror else os.environ.get(MIRROR_ENV)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f'cannot create the data folder {root} ({e.strerror}); set '
                        f'{DATA_ENV} (or pass --root) to a writable folder') from None
    for name in FILES:
        if (root / name).exists():
            _verify(root / name)
        else:
            _fetch(name, root, mirror)
    return root


def read_idx(path):
    """The array stored in a gzip-compressed IDX file of unsigned bytes."""
    try:
        with gzip.open(path, 'rb') as f:
            raw = f.read()
    except gzip.BadGzipFile:
        raise DataError(f'not a gzip file: {path}') from None
    except (EOFError, zlib.error):
        raise DataError(f'truncated or not an IDX file: {path}') from None
    if len(raw) < 4 or raw[:3] != b'\x00\x00\x08':
        raise DataError(f'not an IDX file of unsigned bytes (bad magic number): {path}')
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DataError(f'truncated or not an IDX file: {path}')
    shape = struct.unpack(f'>{raw[3]}i', raw[4:header])
    if len(raw) - header != np.prod(shape, dtype=np.int64):
        raise DataError(f'truncated or not an IDX file: {path}')
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _split_files(train, root):
    root, prefix = ensure_files(root), 'train' if train else 't10k'
    return (root / f'{prefix}-images-idx3-ubyte.gz',
            root / f'{prefix}-labels-idx1-ubyte.gz')


def load_split(train, root=None):
    """Images (uint8, [N, 28, 28]) and labels (int64, [N]) of one split."""
    images, labels = _split_files(train, root)
    return read_idx(images), read_idx(labels).astype(np.int64)


def _interpolation_matrix(n_in, n_out):
    """The (n_out, n_in) bilinear weights, with half-pixel centres."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    weights = np.zeros((n_out, n_in))
    np.add.at(weights, (np.arange(n_out), low), 1 - (src - low))
    np.add.at(weights, (np.arange(n_out), high), src - low)
    return weights.astype(np.float32)


def resize_images(images, size, chunk=1024):
    """Bilinearly resize uint8 images [N, h, w] to [N, *size].

    Sample points follow the half-pixel convention of PIL and torchvision
    when upscaling; shrinking does no antialiasing. Each chunk of images
    takes two large matrix products: along the height, then the width.
    """
    (n, h, w), (height, width) = images.shape, tuple(size)
    if (h, w) == (height, width):
        return images
    rows = _interpolation_matrix(h, height).T
    cols = _interpolation_matrix(w, width).T
    out = np.empty((n, height, width), np.uint8)
    for start in range(0, n, chunk):
        part = images[start:start + chunk].transpose(0, 2, 1)
        k = len(part)
        part = part.astype(np.float32, order='C')
        part = (part.reshape(k * w, h) @ rows).reshape(k, w, height)
        part = part.transpose(0, 2, 1).reshape(k * height, w) @ cols
        np.rint(part, out=part)
        np.clip(part, 0, 255, out=part)
        out[start:start + k] = part.reshape(k, height, width)
    return out


def _cached_resize(images_file, cache, shape):
    """Resized images from the disk cache, computing and saving them if needed."""
    with contextlib.suppress(OSError, ValueError, EOFError):
        images = np.load(cache, mmap_mode='c')
        if images.shape == shape and images.dtype == np.uint8:
            return images
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(cache) as f:
        np.save(f, resize_images(read_idx(images_file), shape[1:]))
    return np.load(cache, mmap_mode='c')


def load_resized(train, size, root=None):
    """One split resized to `size`, computed once and cached in memory and on disk.

    Returns images (uint8, [N, *size]) and labels (int64, [N]).
    """
    size, root = tuple(int(s) for s in size), data_dir(root)
    key = (str(root.resolve()), bool(train), size)
    if key not in _RESIZED:
        images_file, labels_file = _split_files(train, root)
        labels = read_idx(labels_file).astype(np.int64)
        if size == (28, 28):
            images = read_idx(images_file)
        else:
            name = f'{"train" if train else "test"}-{size[0]}x{size[1]}.npy'
            images = _cached_resize(images_file, root / 'cache' / name,
                                    (len(labels), *size))
        _RESIZED[key] = images, labels
    return _RESIZED[key]


def at_most(owner, name, value, maximum, split):
    """None, or a positive int no larger than the `maximum` images of a split."""
    value = checks.optional_positive_int(owner, name, value)
    if value is not None and value > maximum:
        raise ValueError(f'{owner}: {name} must be at most {maximum:,} (the {split} images), '
                         f'got {value!r}')
    return value


class FashionMNISTBase(HyperParameters):
    """Fashion-MNIST as numpy minibatches; framework modules turn them into tensors.

    `num_train` and `num_val` keep only the first images of each split (all
    by default), for quick experiments; `seed` (an int >= 0, or None for a
    fresh one) fixes the order of the training minibatches.
    """

    def __init__(self, batch_size=64, resize=(28, 28), root=None, seed=0,
                 num_train=None, num_val=None):
        batch_size = checks.positive_int('FashionMNIST', 'batch_size', batch_size)
        resize = checks.image_size('FashionMNIST', 'resize', resize)
        root = checks.optional_path('FashionMNIST', 'root', root)
        if seed is not None:
            seed = checks.positive_int('FashionMNIST', 'seed', seed, minimum=0)
        num_train = at_most('FashionMNIST', 'num_train', num_train, NUM_TRAIN, 'training')
        num_val = at_most('FashionMNIST', 'num_val', num_val, NUM_VAL, 'test')
        self.save_hyperparameters()
        self.train = tuple(a[:num_train] for a in load_resized(True, resize, root))
        self.val = tuple(a[:num_val] for a in load_resized(False, resize, root))
        self.rng = np.random.default_rng(seed)

    def num_batches(self, train):
        return -(-len(self._split(train)[1]) // self.batch_size)

    def _split(self, train):
        return self.train if train else self.val

    def batches(self, train):
        """Yield (X float32 [B, H, W] in [0, 1], y int64 [B]); training is shuffled."""
        images, labels = self._split(train)
        n = len(labels)
        order = self.rng.permutation(n) if train else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield images[idx].astype(np.float32) / 255, labels[idx]

    def text_labels(self, indices):
        return [TEXT_LABELS[int(i)] for i in indices]


def main(argv=None):
    parser = cli.Parser(
        prog='python -m d2lsupport.data',
        description='Fetch the four Fashion-MNIST files and verify their MD5 sums.')
    parser.add_argument('--root', help=f'data folder (default: ${DATA_ENV}, '
                        'else data/fashion-mnist in the repository)')
    parser.add_argument('--mirror', help=f'folder or URL holding the files (default: '
                        f'${MIRROR_ENV}, else {OFFICIAL_URL})')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = ensure_files(args.root, args.mirror)
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for name, md5 in FILES.items():
        print(f'ok  {md5}  {root / name}')
    print(f'all {len(FILES)} files verified in {time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
