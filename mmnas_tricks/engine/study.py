"""What the rank studies share (``tools/rank_correlation.py``,
``tools/proxy_rank.py``, ``tools/trick_ablation.py``): a state file that a
rerun resumes from, stand-alone trainings recorded the moment they finish
(and trained again only when their config changes), rank statistics, and
the result files (JSON, CSV, scatter PNG) written atomically."""
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from mmnas_tricks.utils import dump_csv_atomic, dump_json_atomic
from mmnas_tricks.utils.io import new_figure, save_png_atomic


class RankStudy:
    """A resumable study in ``work_dir``: its state is ``<name>.json``
    (``records``: subnet key -> record, plus whatever the tool keeps),
    loaded if a run was interrupted and saved after every result.

    Args:
        work_dir (str): The study's folder.
        name (str): The stem of its result files.
    """

    def __init__(self, work_dir: str, name: str) -> None:
        import json
        self.work_dir = work_dir
        self.name = name
        self.path = osp.join(work_dir, f'{name}.json')
        self.state = dict(records={})
        if osp.isfile(self.path):
            with open(self.path) as f:
                self.state = json.load(f)

    @property
    def records(self) -> Dict[str, dict]:
        """Subnet key -> record."""
        return self.state.setdefault('records', {})

    def save(self) -> None:
        """Write the state (atomically)."""
        dump_json_atomic(self.state, self.path)

    @staticmethod
    def trained(rec: dict, cfg: Config, field: str = 'standalone') -> bool:
        """Whether ``rec[field]`` was trained with ``cfg`` (its recorded
        fingerprint is ``cfg``'s)."""
        from .rank import config_fingerprint
        return field in rec and rec.get(f'{field}_recipe') == \
            config_fingerprint(cfg)

    def train(self,
              rec: dict,
              cfg: Config,
              score_key: str,
              folder: str,
              run_name: str,
              field: str = 'standalone',
              label: Optional[str] = None) -> float:
        """``rec[field]``: ``score_key`` after training ``cfg`` alone in
        ``<work_dir>/<folder>`` (resuming an interrupted training), with
        ``<field>_seconds`` and ``<field>_recipe`` (the config's
        :func:`~mmnas_tricks.engine.rank.config_fingerprint`). A record
        whose score was trained with the same config is kept; one trained
        with another config is trained again. The state is saved after the
        training. Progress is printed as ``<label> <score>`` (default label:
        ``<run_name> <field>``)."""
        from .rank import config_fingerprint, train_standalone
        label = label or f'{run_name} {field}'
        if self.trained(rec, cfg, field):
            print(f'{label} {rec[field]:.4f} (done)', flush=True)
            return rec[field]
        if field in rec:
            print(
                f'{label}: its config changed since it was trained (a '
                'changed recipe): training it again',
                flush=True)
        start = time.time()
        rec[field] = train_standalone(cfg, osp.join(self.work_dir, folder),
                                      run_name, score_key)
        rec[f'{field}_seconds'] = round(time.time() - start, 1)
        rec[f'{field}_recipe'] = config_fingerprint(cfg)
        rec.pop(f'{field}_from', None)
        self.save()
        print(f'{label} {rec[field]:.4f}', flush=True)
        return rec[field]

    @staticmethod
    def rank(rows: Sequence[dict],
             fields: Sequence[str],
             truth: str = 'standalone') -> Dict[str, dict]:
        """Rank consistency (:func:`~mmnas_tricks.utils.rank_consistency`:
        Kendall tau, Spearman rho, top-k overlap) of each of ``fields``
        with ``truth`` over ``rows``."""
        from mmnas_tricks.utils import rank_consistency
        target = [r[truth] for r in rows]
        return {
            f: rank_consistency([r[f] for r in rows], target)
            for f in fields
        }

    def write_table(self,
                    rows: Sequence[dict],
                    fields: Optional[Sequence[str]] = None,
                    suffix: str = '') -> str:
        """``<work_dir>/<name><suffix>.csv`` of ``rows`` (the columns
        ``fields``, default every key), and the state; returns the CSV's
        path."""
        self.save()
        return dump_csv_atomic(
            rows, osp.join(self.work_dir, f'{self.name}{suffix}.csv'), fields)

    def scatter(self,
                rows: Sequence[dict],
                x: str,
                y: str,
                xlabel: str,
                ylabel: str,
                title: str,
                suffix: str = '') -> str:
        """``<work_dir>/<name><suffix>.png``: ``rows[y]`` against
        ``rows[x]``, each point labelled with its ``index``; returns the
        path."""
        return scatter_png([r[x] for r in rows], [r[y] for r in rows],
                           [r['index'] for r in rows], xlabel, ylabel, title,
                           osp.join(self.work_dir, f'{self.name}{suffix}.png'))

    @staticmethod
    def summary(label: str, rank: dict) -> str:
        """One line: ``label`` and its rank statistics."""
        return (f'{label}, {rank["n"]} subnets: Kendall tau '
                f'{rank["kendall_tau"]:.3f}, Spearman rho '
                f'{rank["spearman_rho"]:.3f}, top-{rank["top_k"]} overlap '
                f'{rank["top_k_overlap"]:.2f}')


def scatter_png(xs: Sequence[float], ys: Sequence[float], labels: Sequence,
                xlabel: str, ylabel: str, title: str, path: str) -> str:
    """A labelled scatter plot, written atomically; returns ``path``."""
    fig, ax = new_figure((5, 4))
    ax.scatter(xs, ys)
    for x, y, label in zip(xs, ys, labels):
        ax.annotate(str(label), (x, y))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save_png_atomic(fig, path)


def rows_by_index(records: Dict[str, dict], keys: Sequence[str],
                  *needed: str) -> List[dict]:
    """The records of ``keys`` that have every field of ``needed``, in
    order of their ``index``."""
    rows = [records[k] for k in keys]
    return sorted((r for r in rows if all(f in r for f in needed)),
                  key=lambda r: r['index'])
