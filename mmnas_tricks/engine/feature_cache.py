"""A bounded store of per-sample feature tensors: memory first (least
recently used out), then an optional disk spill whose entries are checked
before use."""
import hashlib
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch

Features = Tuple[torch.Tensor, ...]


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A hex digest (SHA-256) of the shapes, dtypes and bytes of
    ``tensors``. SHA-256 rather than BLAKE2: CPUs with SHA instructions
    hash it faster (docs/benchmarks.md), and a cache lookup pays it per
    sample."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f'{tuple(t.shape)}{t.dtype};'.encode())
        t = t.detach().reshape(-1).contiguous().cpu()
        if t.numel():
            h.update(t.view(torch.uint8).numpy())  # no copy of the bytes
    return h.hexdigest()


def _nbytes(features: Features) -> int:
    return sum(t.numel() * t.element_size() for t in features)


class FeatureCache:
    """Per-sample features under a memory budget, with an optional disk
    spill (docs/tricks.md, T4.2).

    Entries are tuples of tensors (one per output level) kept on the CPU.
    When the memory budget is exceeded the least recently used entries are
    evicted, to ``spill_dir`` if given (one file per entry, written to a
    temporary file and renamed, holding a digest of its tensors). A disk
    entry whose file cannot be read or whose digest does not match is
    deleted and reported as a miss: it is recomputed, never used.

    Args:
        budget_mb (float): Memory budget in MiB. Defaults to 1024.
        spill_dir (str, optional): Directory of the disk spill. Defaults to
            None (evicted entries are dropped).
    """

    def __init__(self,
                 budget_mb: float = 1024,
                 spill_dir: Optional[str] = None) -> None:
        if budget_mb < 0:
            raise ValueError(f'budget_mb={budget_mb} must be >= 0')
        self.budget = int(budget_mb * 2**20)
        self.spill_dir = spill_dir
        self._mem: 'OrderedDict[str, Features]' = OrderedDict()
        self.nbytes = 0
        self.stats: Dict[str, int] = dict(
            hits=0, disk_hits=0, misses=0, evicted=0, spilled=0, corrupt=0)

    def __len__(self) -> int:
        return len(self._mem)

    def clear(self, spill_dir: Optional[str] = None) -> None:
        """Drop every entry in memory; use ``spill_dir`` from now on (the
        old directory's files stay, but are never read again)."""
        self._mem.clear()
        self.nbytes = 0
        self.spill_dir = spill_dir

    # -- disk -------------------------------------------------------------
    def _path(self, key: str) -> str:
        return osp.join(self.spill_dir, key[:2], f'{key}.pt')

    def _spill(self, key: str, features: Features) -> None:
        path = self._path(key)
        if osp.exists(path):
            return
        os.makedirs(osp.dirname(path), exist_ok=True)
        payload = dict(
            key=key, features=list(features), digest=tensor_digest(*features))
        fd, tmp = tempfile.mkstemp(dir=osp.dirname(path), suffix='.tmp')
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
        self.stats['spilled'] += 1

    def _load(self, key: str) -> Optional[Features]:
        if self.spill_dir is None:
            return None
        path = self._path(key)
        if not osp.exists(path):
            return None
        try:
            payload = torch.load(path, map_location='cpu', weights_only=True)
            features = tuple(payload['features'])
            ok = payload['key'] == key and \
                payload['digest'] == tensor_digest(*features)
        except Exception:  # noqa: BLE001  (any damage: recompute)
            ok = False
        if not ok:
            self.stats['corrupt'] += 1
            os.remove(path)
            return None
        return features

    # -- memory -------------------------------------------------------------
    def get(self, key: str) -> Optional[Features]:
        """The entry of ``key`` or None (a miss)."""
        features = self._mem.get(key)
        if features is not None:
            self._mem.move_to_end(key)
            self.stats['hits'] += 1
            return features
        features = self._load(key)
        if features is not None:
            self.stats['disk_hits'] += 1
            self._put_memory(key, features)
            return features
        self.stats['misses'] += 1
        return None

    def put(self, key: str, features: Sequence[torch.Tensor]) -> None:
        features = tuple(t.detach().to('cpu', copy=True) for t in features)
        self._put_memory(key, features)

    def _put_memory(self, key: str, features: Features) -> None:
        if key in self._mem:
            return
        self._mem[key] = features
        self.nbytes += _nbytes(features)
        while self.nbytes > self.budget and self._mem:
            old_key, old = self._mem.popitem(last=False)
            self.nbytes -= _nbytes(old)
            self.stats['evicted'] += 1
            if self.spill_dir is not None:
                self._spill(old_key, old)
