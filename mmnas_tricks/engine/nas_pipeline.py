"""The whole NAS job (``tools/nas.py``): baseline -> supernet -> search ->
re-rank -> retrain / fine-tune -> report, each stage a ``tools/train.py``
run in its own folder, resumable stage by stage."""
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from mmnas_tricks.utils import load_config
from .pipeline import stage_configs

STAGES = ('baseline', 'supernet', 'search', 'rerank', 'retrain', 'finetune',
          'report')
#: the stages that use a stage's product (rerun when it is rerun); the
#: supernet uses the baseline's only when it inherits it
DEPENDENTS = dict(
    baseline=('supernet', 'search', 'rerank', 'retrain', 'finetune'),
    supernet=('search', 'rerank', 'retrain', 'finetune'),
    search=('rerank', 'retrain', 'finetune'),
    rerank=('retrain', 'finetune'))


class NASPipeline:
    """The stages of a pipeline config (:func:`stage_configs`), each run as
    its own ``tools/train.py`` process (``tools/dist_train.sh`` with
    ``gpus > 1``, ``tools/slurm_train.sh`` with ``slurm``) in its folder of
    ``work_dir``, skipped when finished, resumed when interrupted, and the
    report. ``tools/nas.py`` is its command line, where every argument is
    described.

    Args:
        config (str): The pipeline config.
        tools_dir (str): The folder of ``train.py``, ``dist_train.sh`` and
            ``slurm_train.sh``.
        work_dir (str, optional): Defaults to ``work_dirs/<config name>``.
        stages (Sequence[str]): The stages to run, of :data:`STAGES`.
            Defaults to all.
        seed (int): Every stage's seed. Defaults to 0.
        gpus (int): Processes per stage. Defaults to 1.
        slurm (str, optional): A Slurm partition. Defaults to None.
        fresh (bool): Rerun finished stages. Defaults to False.
        jobs (int): The independent runs of a stage (re-rank candidates,
            retrains, fine-tunes) run this many at once, each with
            ``cores // jobs`` torch threads. Defaults to 1.
    """

    def __init__(self,
                 config: str,
                 tools_dir: str,
                 work_dir: Optional[str] = None,
                 stages: Sequence[str] = STAGES,
                 seed: int = 0,
                 gpus: int = 1,
                 slurm: Optional[str] = None,
                 fresh: bool = False,
                 jobs: int = 1) -> None:
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ValueError(f'stages {unknown} are not among {list(STAGES)}')
        self.config_path = config
        self.tools_dir = tools_dir
        self.selected = tuple(stages)
        self.seed = seed
        self.gpus = gpus
        self.slurm = slurm
        self.fresh = fresh
        self.jobs = max(1, int(jobs))
        # the state is written by the runs of a stage side by side
        self._lock = threading.RLock()
        self.stages = stage_configs(load_config(config), config)
        self.work_dir = work_dir or osp.join(
            'work_dirs',
            osp.splitext(osp.basename(config))[0])
        self.state_path = osp.join(self.work_dir, 'nas_state.json')
        self.state = {}
        if osp.isfile(self.state_path):
            with open(self.state_path) as f:
                self.state = json.load(f)

    def dir(self, stage: str) -> str:
        return osp.join(self.work_dir, stage)

    def _save_state(self) -> None:
        from mmnas_tricks.utils import dump_json_atomic
        with self._lock:
            dump_json_atomic(self.state, self.state_path)

    def write_stage_configs(self) -> dict:
        from mmnas_tricks.utils import atomic_write_text
        paths = {}
        for name in ('supernet', 'search'):
            path = osp.join(self.work_dir, 'configs', f'{name}.py')
            atomic_write_text(path, self.stages[name].pretty_text)
            paths[name] = path
        paths['baseline'] = self.stages['baseline']
        for name, stage in self.found():
            paths[stage] = osp.join(self.dir('search'), 'search', f'{name}.py')
            paths[self.finetune_stage(stage)] = osp.join(
                self.work_dir, 'configs', f'{self.finetune_stage(stage)}.py')
        return paths

    @staticmethod
    def finetune_stage(retrain: str) -> str:
        return 'finetune' + retrain[len('retrain'):]

    def exported(self, stage: str) -> str:
        """The exported config a retrain or fine-tune stage trains."""
        retrain = 'retrain' + stage[len('finetune'):] \
            if stage.startswith('finetune') else stage
        name = {s: n for n, s in self.found()}[retrain]
        return osp.join(self.dir('search'), 'search', f'{name}.py')

    def write_finetune_config(self, exported: str, path: str) -> None:
        """The fine-tuning config of an exported subnet: its exported
        config with ``nas.finetune`` merged in, starting from the exported
        weights beside it."""
        from mmnas_tricks.utils import atomic_write_text
        cfg = load_config(exported)
        cfg.merge_from_dict(dict(self.stages['finetune']))
        cfg.load_from = osp.abspath(osp.splitext(exported)[0] + '.pth')
        atomic_write_text(path, cfg.pretty_text)

    def found(self) -> list:
        """(export name, retrain stage) of each architecture the search
        exports: ``best_subnet`` -> ``retrain``, ``best_subnet_0.5x`` ->
        ``retrain_0.5x``."""
        search = self.stages['search'].train_cfg
        out = []
        if search.get('export_best', True):
            out.append(('best_subnet', 'retrain'))
        for fraction in search.get('export_flops') or ():
            out.append(
                (f'best_subnet_{fraction:g}x', f'retrain_{fraction:g}x'))
        picks = self.rerank_picks()
        return [(picks.get(name, name), stage) for name, stage in out]

    # -- re-ranking -----------------------------------------------------------
    def rerank_candidates(self) -> list:
        """The search's ``rerank_candidates.json`` (none without
        ``nas.rerank`` or before the search)."""
        path = osp.join(self.dir('search'), 'search', 'rerank_candidates.json')
        if not self.stages['rerank'] or not osp.isfile(path):
            return []
        with open(path) as f:
            return json.load(f)['candidates']

    def rerank_scores(self) -> dict:
        """Fine-tuned held-out score by candidate name, of the finished
        re-rank runs."""
        key = self.stages['score_key']
        return {
            c['name']: float(self._metrics(f'rerank_{c["name"]}')[key])
            for c in self.rerank_candidates()
            if self.done(f'rerank_{c["name"]}')
        }

    def rerank_picks(self) -> dict:
        """Export name -> the candidate it retrains, once every candidate
        is fine-tuned (before that, or without ``nas.rerank``: none, each
        export retrains the search's pick)."""
        from mmnas_tricks.engine.rerank import choose
        candidates = self.rerank_candidates()
        scores = self.rerank_scores()
        if not candidates or len(scores) < len(candidates):
            return {}
        budgets = sorted({b for c in candidates for b in c['budgets']})
        return choose(candidates, scores, budgets)

    def write_rerank_config(self, name: str, path: str) -> None:
        """The config that fine-tunes candidate ``name`` from its exported
        supernet weights (``nas.rerank``'s epochs and lr) on the
        supernet's data, scored on the search's held-out split."""
        from mmnas_tricks.engine.pipeline import retrain_recipe, search_data
        from mmnas_tricks.engine.rank import finetune_estimate_config
        from mmnas_tricks.structures import read_subnet_file
        from mmnas_tricks.utils import atomic_write_text
        folder = osp.join(self.dir('search'), 'search')
        subnet, _ = read_subnet_file(osp.join(folder, f'{name}.yaml'))
        rerank = self.stages['rerank']
        cfg = load_config(self.config_path)
        lr = rerank['lr'] or float(cfg.optim_wrapper.optimizer.lr)
        ft = finetune_estimate_config(
            cfg,
            subnet,
            osp.abspath(osp.join(folder, f'{name}.pth')),
            rerank['epochs'],
            lr,
            self.seed,
            retrain=retrain_recipe(cfg),
            **search_data(cfg))
        atomic_write_text(path, ft.pretty_text)

    def write_rerank_choice(self) -> None:
        """``rerank/choice.json``: each candidate's two estimates and each
        export's pick, the search's and the re-ranked one."""
        from mmnas_tricks.utils import dump_json_atomic
        candidates = self.rerank_candidates()
        scores = self.rerank_scores()
        picks = self.rerank_picks()
        search_picks = {}
        for c in candidates:  # in the search's order: its best first
            for b in c['budgets']:
                search_picks.setdefault(b, c['name'])
        dump_json_atomic(
            dict(
                score_key=self.stages['score_key'],
                rerank=self.stages['rerank'],
                picks={
                    b: dict(
                        search=search_picks[b],
                        reranked=picks[b],
                        changed=picks[b] != search_picks[b])
                    for b in sorted(picks)
                },
                candidates=[
                    dict(
                        c,
                        supernet_score=c['score'],
                        finetuned_score=scores.get(c['name']))
                    for c in candidates
                ]), osp.join(self.dir('rerank'), 'choice.json'))

    def substages(self, stage: str) -> list:
        """The runs a stage of STAGES stands for (a retrain per found
        architecture)."""
        if stage == 'rerank':
            return [f'rerank_{c["name"]}' for c in self.rerank_candidates()]
        if stage == 'retrain':
            return [s for _, s in self.found()]
        if stage == 'finetune':
            if not self.stages['finetune']:
                return []
            return [self.finetune_stage(s) for _, s in self.found()]
        return [stage]

    def done(self, stage: str) -> bool:
        return bool(self.state.get(stage, {}).get('done')) and osp.exists(
            self.product(stage))

    def product(self, stage: str) -> str:
        if stage == 'search':  # written when the search ends
            return osp.join(self.dir('search'), 'search', 'candidates.json')
        return osp.join(self.dir(stage), 'final_metrics.json')

    @staticmethod
    def tested(stage: str) -> bool:
        """Whether a stage's final weights are scored on the test split
        (the trainings the report gives: the baseline, the retrains and
        fine-tunes; never what a decision is made on)."""
        return stage == 'baseline' or stage.startswith(('retrain', 'finetune'))

    def test_metrics(self, stage: str, config: str) -> dict:
        """The test-split metrics of a finished stage
        (``test_metrics.json``, written by ``tools/train.py --test``); a
        stage trained without them is scored now by ``tools/test.py`` on its
        last checkpoint."""
        path = osp.join(self.dir(stage), 'test_metrics.json')
        if not osp.isfile(path):
            cmd = [
                sys.executable,
                osp.join(self.tools_dir, 'test.py'), config,
                self.checkpoint(stage), '--work-dir',
                self.dir(stage)
            ]
            print(
                f'\n[nas] test split of {stage}: {" ".join(cmd)}', flush=True)
            subprocess.run(cmd, check=True)
        with open(path) as f:
            return json.load(f)

    def checkpoint(self, stage: str) -> str:
        """The latest checkpoint a stage wrote."""
        last = osp.join(self.dir(stage), 'last_checkpoint')
        if not osp.isfile(last):
            raise FileNotFoundError(
                f'no trained {stage}: {last} is missing; run the {stage} '
                'stage first')
        with open(last) as f:
            return f.read().strip()

    def run_train(self, stage: str, config: str, options: list) -> None:
        work_dir = self.dir(stage)
        resume = []
        if self.fresh:
            pass  # start over (the stage's old files are overwritten)
        elif stage == 'search':
            if osp.isfile(osp.join(work_dir, 'search', 'state.json')):
                resume = ['--resume']
        elif osp.isfile(osp.join(work_dir, 'last_checkpoint')):
            resume = ['--resume']
        options = [f'randomness.seed={self.seed}'] + options
        env = None
        if self.jobs > 1:  # side by side: the cores shared out
            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if self.slurm:
            cmd = [
                'bash',
                osp.join(self.tools_dir, 'slurm_train.sh'), self.slurm,
                f'nas_{stage}', config, work_dir
            ]
            env = dict(os.environ, GPUS=str(self.gpus))
        elif self.gpus > 1:
            cmd = [
                'bash',
                osp.join(self.tools_dir, 'dist_train.sh'), config,
                str(self.gpus), '--work-dir', work_dir
            ]
        else:
            cmd = [
                sys.executable,
                osp.join(self.tools_dir, 'train.py'), config, '--work-dir',
                work_dir
            ]
        # the trainings a report gives also score the test split
        test = ['--test'] if self.tested(stage) else []
        cmd += resume + test + ['--cfg-options'] + options
        print(f'\n[nas] stage {stage}: {" ".join(cmd)}', flush=True)
        start = time.time()
        try:
            subprocess.run(cmd, check=True, env=env)
        finally:
            with self._lock:
                entry = self.state.setdefault(stage, dict(seconds=0.0))
                entry['seconds'] = entry.get('seconds',
                                             0.0) + time.time() - start
                self._save_state()

    def run(self) -> None:
        for stage in STAGES:
            if stage not in self.selected:
                continue
            # the found architectures are known once the search (and the
            # re-ranking) ran
            paths = self.write_stage_configs()
            if stage == 'report':
                self.report(paths)
                continue
            if stage == 'rerank' and self.stages['rerank']:
                if not self.rerank_candidates():
                    raise FileNotFoundError(
                        f'{osp.join(self.dir("search"), "search")}/'
                        'rerank_candidates.json is missing: run the search '
                        'stage first')
                for sub in self.substages(stage):
                    paths[sub] = osp.join(self.work_dir, 'configs',
                                          f'{sub}.py')
            subs = self.substages(stage)
            if self.jobs > 1 and len(subs) > 1:
                from concurrent.futures import ThreadPoolExecutor
                with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                    # list(): the first failure is raised here
                    list(
                        pool.map(
                            lambda sub: self._run_stage(
                                stage, sub, paths[sub]), subs))
            else:
                for sub in subs:
                    self._run_stage(stage, sub, paths[sub])
            if stage == 'rerank' and self.stages['rerank']:
                self.write_rerank_choice()

    def _run_stage(self, stage: str, sub: str, config: str) -> None:
        if self.done(sub) and not self.fresh:
            print(
                f'[nas] stage {sub}: done, skipped ({self.product(sub)})',
                flush=True)
            return
        if self.fresh:
            self.state.pop(sub, None)
        options = []
        if stage == 'supernet' and self.stages['inherit'] == 'baseline':
            options = [f'load_from={self.checkpoint("baseline")}']
        elif stage == 'search':
            options = [
                'train_cfg.supernet_checkpoint='
                f'{self.checkpoint("supernet")}'
            ]
        elif stage in ('retrain', 'finetune'):
            exported = self.exported(sub)
            if not osp.isfile(exported):
                if self.done('search'):  # none within that FLOPs budget
                    print(
                        f'[nas] stage {sub}: the search exported no '
                        f'{exported} (no scored subnet within its FLOPs '
                        'budget), skipped',
                        flush=True)
                    return
                raise FileNotFoundError(
                    f'{exported} is missing: run the search stage first')
            if stage == 'finetune':
                self.write_finetune_config(exported, config)
        elif stage == 'rerank':
            self.write_rerank_config(sub[len('rerank_'):], config)
        self.run_train(sub, config, options)
        with self._lock:
            self.state[sub]['done'] = True
            later = DEPENDENTS.get(stage, ())
            if stage == 'baseline' and self.stages['inherit'] != 'baseline':
                later = ()
            for dependent in later:  # now out of date
                for name in self.substages(dependent):
                    self.state.get(name, {}).pop('done', None)
            self._save_state()

    # -- report ---------------------------------------------------------------
    def _metrics(self, stage: str) -> dict:
        path = self.product(stage)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} is missing: run the {stage} '
                                    'stage first')
        with open(path) as f:
            return json.load(f)

    def _resources(self, config: str) -> dict:
        """FLOPs, params and the measured latency (batch 1, this machine)
        of the model a config builds, at its input size. The latency is
        measured once per config text and kept in the state, so that the
        report of a rerun is the same."""
        import hashlib

        from mmnas_tricks.models.resources import config_resources
        with open(config, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        measured = self.state.setdefault('latency_ms', {})
        res = config_resources(
            load_config(config), latency=digest not in measured)
        if digest not in measured:
            measured[digest] = res['latency_ms']
            self._save_state()
        res['latency_ms'] = measured[digest]
        return res

    def report(self, paths: dict) -> list:
        from mmnas_tricks.models.resources import size_text
        from mmnas_tricks.structures import read_subnet_file
        from mmnas_tricks.utils import (atomic_write_text, dump_csv_atomic,
                                        dump_json_atomic)
        key = self.stages['score_key']
        seconds = {
            s: v.get('seconds', 0.0)
            for s, v in self.state.items() if 'seconds' in v
        }
        search_min = (seconds.get('supernet', 0.0) +
                      seconds.get('search', 0.0)) / 60
        models = [('baseline', 'baseline', None)] + [
            ('found' if stage == 'retrain' else
             f'found (<= {stage[len("retrain_"):]} FLOPs)', stage, name)
            for name, stage in self.found()
        ]
        reranked = self.rerank_scores() if self.stages['rerank'] else {}
        models += [(f'{model}, fine-tuned', self.finetune_stage(stage), name)
                   for model, stage, name in models[1:]
                   if self.stages['finetune']]
        rows, stages = [], {}
        for model, stage, name in models:
            if name is not None and not osp.isfile(self.exported(stage)):
                continue  # none within its FLOPs budget
            stages[model] = (name, stage)
            metrics = self._metrics(stage)
            test = self.test_metrics(stage, paths[stage])
            for split, values in (('', metrics), ('test ', test)):
                if key not in values:
                    raise KeyError(f'{key} is not among the {stage} {split}'
                                   f'metrics {sorted(values)}')
            # the architecture's figures: the exported config's
            res = self._resources(
                paths[stage] if name is None else self.exported(stage))
            estimate = None
            if name is not None:
                _, meta = read_subnet_file(
                    osp.join(self.dir('search'), 'search', f'{name}.yaml'))
                estimate = round(float(meta['score']), 4)
            rows.append(
                dict(
                    model=model,
                    trained='fine-tuned from the supernet'
                    if stage.startswith('finetune') else 'from scratch',
                    config=paths[stage],
                    score_key=key,
                    # val: the development split; test: the report's
                    score=round(float(metrics[key]), 4),
                    test_score=round(float(test[key]), 4),
                    gflops=round(res['flops'] / 1e9, 4),
                    params_m=round(res['params'] / 1e6, 4),
                    latency_ms=round(res['latency_ms'], 2),
                    input_size=size_text(res['input_size']),
                    input_source=res['input_source'],
                    train_min=round(seconds.get(stage, 0.0) / 60, 2),
                    search_min=round(search_min, 2) if name else 0.0,
                    supernet_score=estimate,
                    finetuned_estimate=None if name not in reranked else round(
                        reranked[name], 4)))
        base, found = rows[0], rows[1:]
        # found first (the table's subject), the baseline last
        rows = found + [base]
        # the fair comparison: retrained from scratch with the same recipe
        within = [
            r for r in found
            if r['gflops'] <= base['gflops'] and r['trained'] == 'from scratch'
        ]
        best = max(within, key=lambda r: r['test_score']) if within else None
        if best is None:
            verdict = 'no found architecture within the baseline\'s FLOPs'
        elif best['test_score'] > base['test_score']:
            verdict = f"{best['model']} beats the baseline at <= its FLOPs " \
                f"on the test split ({best['test_score']:.4f} > " \
                f"{base['test_score']:.4f})"
        else:
            verdict = f'found does NOT beat the baseline at <= its FLOPs ' \
                f"on the test split ({best['test_score']:.4f} <= " \
                f"{base['test_score']:.4f})"
        header = [
            'model', f'{key} (test)', f'{key} (val)', 'GFLOPs', 'params (M)',
            'latency (ms)', 'input', 'train (min)', 'search (min)',
            'supernet estimate'
        ] + (['fine-tuned estimate'] if reranked else [])
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]

        def fmt(value):
            return '' if value is None else f'{value:.4f}'

        for r in rows:
            cells = [
                r['model'], f"{r['test_score']:.4f}", f"{r['score']:.4f}",
                f"{r['gflops']:.4f}", f"{r['params_m']:.4f}", r['latency_ms'],
                r['input_size'], r['train_min'], r['search_min'],
                fmt(r['supernet_score'])
            ] + ([fmt(r['finetuned_estimate'])] if reranked else [])
            lines.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
        minutes = {s: round(v / 60, 2) for s, v in seconds.items()}
        total = sum(seconds.values()) / 60
        sources = sorted({r['input_source'] for r in rows})
        text = '\n'.join(lines) + '\n\nFLOPs, params and latency at each ' \
            "model's input size (from " + '; '.join(sources) + ')' + \
            f'\n\n{verdict}; whole pipeline ' \
            f'{total:.1f} min (seed {self.seed}; stages: ' + ', '.join(
                f'{s} {m} min' for s, m in minutes.items()) + ')\n'
        choice = None
        choice_path = osp.join(self.dir('rerank'), 'choice.json')
        if reranked and osp.isfile(choice_path):
            with open(choice_path) as f:
                choice = json.load(f)
            by_name = {c['name']: c for c in choice['candidates']}
            lines = []
            for export, pick in choice['picks'].items():
                a, b = by_name[pick['search']], by_name[pick['reranked']]
                lines.append(
                    f"- {export}: the search's pick {a['name']} (supernet "
                    f"{a['supernet_score']:.4f}, fine-tuned "
                    f"{a['finetuned_score']:.4f}) " +
                    (f"-> {b['name']} (supernet {b['supernet_score']:.4f}, "
                     f"fine-tuned {b['finetuned_score']:.4f})"
                     if pick['changed'] else 'kept'))
            text += f'\nre-ranked by a {choice["rerank"]["epochs"]}-epoch ' \
                f'fine-tune ({len(by_name)} candidates, rerank/' \
                'choice.json):\n' + '\n'.join(lines) + '\n'
        hand = self.hand_front(found)
        if hand is not None:
            text += '\n' + hand['text']
        print('\n' + text, flush=True)
        atomic_write_text(osp.join(self.work_dir, 'results.md'), text)
        dump_json_atomic(
            dict(
                rows=rows,
                verdict=verdict,
                stage_minutes=minutes,
                rerank=choice,
                hand_front=hand
                and {k: v
                     for k, v in hand.items() if k != 'text'}),
            osp.join(self.work_dir, 'results.json'))
        dump_csv_atomic(rows, osp.join(self.work_dir, 'results.csv'))
        self._plot(rows, key)
        for row in found:
            if row['trained'] == 'from scratch':
                self._zoo_entry(row, paths, *stages[row['model']])
        return rows

    def hand_front(self, found: list) -> Optional[dict]:
        """The recorded hand front (``nas.hand_front``) beside the found
        rows retrained from scratch: its points (test-split means over its
        seeds) and, for each found row, the best of them at no more FLOPs;
        as a Markdown section (``text``). None without ``nas.hand_front``."""
        from .hand_rules import compare_with_front, read_hand_front
        path = self.stages['hand_front']
        if path is None:
            return None
        hand = read_hand_front(path, load_config(self.stages['baseline']))
        scratch = [r for r in found if r['trained'] == 'from scratch']
        hand['comparison'] = compare_with_front(scratch, hand['front'])
        seeds = len(hand['seeds'] or [])
        lines = [
            f'the hand front ({path}: the baseline scaled by hand, '
            f'{seeds} seeds, test-split means; ' +
            ('trained with this baseline\'s recipe' if hand['same_recipe'] else
             'NOT this baseline\'s recipe: not comparable') + '):', '',
            '| hand rule | GFLOPs | test mean (range) |', '|---|---|---|'
        ]
        for p in hand['front']:
            lines.append(f"| {p['model']} | {p['gflops']:.4f} | "
                         f"{p['mean']:.4f} ({p['range'][0]:.4f}-"
                         f"{p['range'][1]:.4f}) |")
        lines += [
            '', '| found | GFLOPs | test (this seed) | best hand rule '
            'at <= its FLOPs | its mean | found - hand |',
            '|---|---|---|---|---|---|'
        ]
        for c in hand['comparison']:
            lines.append(
                f"| {c['model']} | {c['gflops']:.4f} | {c['score']:.4f} | "
                f"{c['hand'] or 'none'} | " +
                ('' if c['hand'] is None else
                 f"{c['hand_mean']:.4f} | {c['margin']:+.4f}") + ' |')
        hand['text'] = '\n'.join(lines) + '\n'
        return hand

    def _zoo_entry(self, found: dict, paths: dict, name: str,
                   stage: str) -> None:
        """``<work_dir>/model_zoo.yml`` (``model_zoo_<f>x.yml`` for the
        best subnet at a FLOPs fraction): the found architecture as a
        model-zoo entry (exported config, retrained checkpoint, retrained
        metrics, FLOPs, params, subnet file)."""
        from mmnas_tricks.engine.zoo import (dataset_name, task_name,
                                             write_zoo_entry)
        last = osp.join(self.dir(stage), 'last_checkpoint')
        if not osp.isfile(last):
            return
        with open(last) as f:
            weights = f.read().strip()
        metrics = {
            k: v
            for k, v in self._metrics(stage).items()
            if isinstance(v, (int, float))
        }
        cfg = load_config(paths[stage])
        suffix = stage[len('retrain'):]
        write_zoo_entry(
            osp.join(self.work_dir, f'model_zoo{suffix}.yml'),
            osp.splitext(osp.basename(self.config_path))[0] + '_found' +
            suffix,
            paths[stage],
            weights,
            osp.join(self.dir('search'), 'search', f'{name}.yaml'),
            int(found['gflops'] * 1e9),
            int(found['params_m'] * 1e6),
            metrics,
            input_size=(found['input_size'].split('x'), found['input_source']),
            dataset=dataset_name(cfg),
            task=task_name(cfg),
            notes=f'found by tools/nas.py {self.config_path} (seed '
            f'{self.seed}), retrained with the baseline recipe')

    def _plot(self, rows, key) -> None:
        from mmnas_tricks.utils.io import new_figure, save_png_atomic
        fig, ax = new_figure((5, 4))
        for r in rows:
            ax.scatter(
                r['gflops'],
                r['test_score'],
                s=60,
                marker='s' if r['model'] == 'baseline' else 'o',
                label=r['model'])
            ax.annotate(
                f"{r['test_score']:.3f}", (r['gflops'], r['test_score']),
                textcoords='offset points',
                xytext=(5, 5))
        ax.set_xlabel('GFLOPs (whole model)')
        ax.set_ylabel(f'{key}, test split')
        ax.legend()
        save_png_atomic(fig, osp.join(self.work_dir, 'results.png'))
