"""The whole NAS job in one command: supernet training -> search (with the
best subnet exported) -> retraining of the found architecture -> the
baseline of the same budget -> a table comparing the two.

A pipeline config is a supernet config (it trains the supernet as it is)
with a ``nas`` dict:

    nas = dict(
        search=dict(type='mmnas_tricks.EvolutionSearchLoop', ...),  # train_cfg
        retrain=dict(train_dataloader=..., train_cfg=...),  # exported config
        baseline='../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
        score_key='coco/bbox_mAP')

Each stage runs ``tools/train.py`` (``tools/dist_train.sh`` with ``--gpus``,
``tools/slurm_train.sh`` with ``--slurm PARTITION``)
in its own folder of the work dir, from a stage config written to
``<work_dir>/configs/``, so any stage can also be run alone. A finished stage
is skipped and an interrupted one resumed (``--resume``) when the command is
run again. Results: ``<work_dir>/results.{md,csv,json,png}``.

Example:
    python tools/nas.py \
        configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py
    python tools/nas.py CONFIG --stages supernet search   # only these
"""
import argparse
import csv
import io
import json
import os
import os.path as osp
import subprocess
import sys
import time

STAGES = ('supernet', 'search', 'retrain', 'baseline', 'report')
#: the stages that use a stage's product (rerun when it is rerun)
DEPENDENTS = dict(supernet=('search', 'retrain'), search=('retrain', ))
HERE = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='pipeline config (with a nas dict)')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument(
        '--stages',
        nargs='+',
        choices=STAGES,
        default=list(STAGES),
        help='stages to run, in pipeline order (default: all)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of every stage (default: 0)')
    parser.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='processes per stage; > 1 runs tools/dist_train.sh (PyTorch '
        'DDP through mmengine)')
    parser.add_argument(
        '--slurm',
        metavar='PARTITION',
        default=None,
        help='run each stage on a Slurm partition through '
        'tools/slurm_train.sh with --gpus processes (GPUS_PER_NODE, '
        'CPUS_PER_TASK, SRUN_ARGS as there)')
    parser.add_argument(
        '--fresh',
        action='store_true',
        help='rerun the selected stages even when they finished')
    return parser.parse_args(argv)


# -- configs -----------------------------------------------------------------
def _load(path):
    from mmnas_tricks.utils import load_config
    return load_config(path)


def stage_configs(cfg, config_path: str) -> dict:
    from mmnas_tricks.engine.pipeline import stage_configs as stages
    return stages(cfg, config_path)


# -- stages -------------------------------------------------------------------
class Pipeline:

    def __init__(self, args):
        self.args = args
        self.config_path = args.config
        cfg = _load(args.config)
        self.stages = stage_configs(cfg, args.config)
        self.work_dir = args.work_dir or osp.join(
            'work_dirs',
            osp.splitext(osp.basename(args.config))[0])
        self.state_path = osp.join(self.work_dir, 'nas_state.json')
        self.state = {}
        if osp.isfile(self.state_path):
            with open(self.state_path) as f:
                self.state = json.load(f)

    def dir(self, stage: str) -> str:
        return osp.join(self.work_dir, stage)

    def _save_state(self) -> None:
        from mmnas_tricks.utils import dump_json_atomic
        dump_json_atomic(self.state, self.state_path)

    def write_stage_configs(self) -> dict:
        from mmnas_tricks.utils import atomic_write_text
        paths = {}
        for name in ('supernet', 'search'):
            path = osp.join(self.work_dir, 'configs', f'{name}.py')
            atomic_write_text(path, self.stages[name].pretty_text)
            paths[name] = path
        paths['baseline'] = self.stages['baseline']
        paths['retrain'] = osp.join(
            self.dir('search'), 'search', 'best_subnet.py')
        return paths

    def done(self, stage: str) -> bool:
        return bool(self.state.get(stage, {}).get('done')) and osp.exists(
            self.product(stage))

    def product(self, stage: str) -> str:
        if stage == 'search':
            return osp.join(self.dir('search'), 'search', 'best_subnet.pth')
        return osp.join(self.dir(stage), 'final_metrics.json')

    def supernet_checkpoint(self) -> str:
        last = osp.join(self.dir('supernet'), 'last_checkpoint')
        if not osp.isfile(last):
            raise FileNotFoundError(
                f'no trained supernet: {last} is missing; run the supernet '
                'stage first')
        with open(last) as f:
            return f.read().strip()

    def run_train(self, stage: str, config: str, options: list) -> None:
        work_dir = self.dir(stage)
        resume = []
        if self.args.fresh:
            pass  # start over (the stage's old files are overwritten)
        elif stage == 'search':
            if osp.isfile(osp.join(work_dir, 'search', 'state.json')):
                resume = ['--resume']
        elif osp.isfile(osp.join(work_dir, 'last_checkpoint')):
            resume = ['--resume']
        options = [f'randomness.seed={self.args.seed}'] + options
        env = None
        if self.args.slurm:
            cmd = [
                'bash',
                osp.join(HERE, 'slurm_train.sh'), self.args.slurm,
                f'nas_{stage}', config, work_dir
            ]
            env = dict(os.environ, GPUS=str(self.args.gpus))
        elif self.args.gpus > 1:
            cmd = [
                'bash',
                osp.join(HERE, 'dist_train.sh'), config,
                str(self.args.gpus), '--work-dir', work_dir
            ]
        else:
            cmd = [
                sys.executable,
                osp.join(HERE, 'train.py'), config, '--work-dir', work_dir
            ]
        cmd += resume + ['--cfg-options'] + options
        print(f'\n[nas] stage {stage}: {" ".join(cmd)}', flush=True)
        start = time.time()
        try:
            subprocess.run(cmd, check=True, env=env)
        finally:
            entry = self.state.setdefault(stage, dict(seconds=0.0))
            entry['seconds'] = entry.get('seconds', 0.0) + time.time() - start
            self._save_state()

    def run(self) -> None:
        paths = self.write_stage_configs()
        for stage in STAGES:
            if stage not in self.args.stages:
                continue
            if stage == 'report':
                self.report(paths)
                continue
            if self.done(stage) and not self.args.fresh:
                print(
                    f'[nas] stage {stage}: done, skipped '
                    f'({self.product(stage)})',
                    flush=True)
                continue
            if self.args.fresh:
                self.state.pop(stage, None)
            options = []
            config = paths[stage]
            if stage == 'search':
                options = [
                    f'train_cfg.supernet_checkpoint='
                    f'{self.supernet_checkpoint()}'
                ]
            elif stage == 'retrain' and not osp.isfile(config):
                raise FileNotFoundError(
                    f'{config} is missing: run the search stage first')
            self.run_train(stage, config, options)
            self.state[stage]['done'] = True
            for later in DEPENDENTS.get(stage, ()):  # now out of date
                self.state.get(later, {}).pop('done', None)
            self._save_state()

    # -- report ---------------------------------------------------------------
    def _metrics(self, stage: str) -> dict:
        path = self.product(stage)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} is missing: run the {stage} '
                                    'stage first')
        with open(path) as f:
            return json.load(f)

    @staticmethod
    def _resources(config: str) -> dict:
        from mmnas_tricks.models.resources import subnet_resources
        from mmnas_tricks.utils import build_model
        cfg = _load(config)
        size = cfg.model.get('data_preprocessor', {}).get('size') or (128, 128)
        return subnet_resources(build_model(cfg), input_shape=(3, *size))

    def report(self, paths: dict) -> list:
        from mmnas_tricks.structures import read_subnet_file
        from mmnas_tricks.utils import atomic_write_text, dump_json_atomic
        key = self.stages['score_key']
        minutes = {
            s: self.state.get(s, {}).get('seconds', 0.0) / 60
            for s in STAGES
        }
        _, meta = read_subnet_file(
            osp.join(self.dir('search'), 'search', 'best_subnet.yaml'))
        rows = []
        for name, stage, config in (('found', 'retrain', paths['retrain']),
                                    ('baseline', 'baseline',
                                     paths['baseline'])):
            metrics = self._metrics(stage)
            if key not in metrics:
                raise KeyError(f'{key} is not among the {stage} metrics '
                               f'{sorted(metrics)}')
            res = self._resources(config)
            rows.append(
                dict(
                    model=name,
                    config=config,
                    score_key=key,
                    score=round(float(metrics[key]), 4),
                    gflops=round(res['flops'] / 1e9, 4),
                    params_m=round(res['params'] / 1e6, 4),
                    train_min=round(minutes[stage], 2),
                    search_min=round(minutes['supernet'] + minutes['search'],
                                     2) if name == 'found' else 0.0,
                    supernet_score=round(float(meta['score']), 4)
                    if name == 'found' else None))
        found, base = rows
        verdict = ('found >= baseline at <= FLOPs'
                   if found['score'] >= base['score']
                   and found['gflops'] <= base['gflops'] else
                   'found does NOT match the baseline at <= FLOPs')
        header = [
            'model', key, 'GFLOPs', 'params (M)', 'train (min)',
            'search (min)', 'supernet estimate'
        ]
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        for r in rows:
            lines.append('| ' + ' | '.join(
                str(v) for v in (r['model'], f"{r['score']:.4f}",
                                 f"{r['gflops']:.4f}", f"{r['params_m']:.4f}",
                                 r['train_min'], r['search_min'],
                                 '' if r['supernet_score'] is None else
                                 f"{r['supernet_score']:.4f}")) + ' |')
        total = sum(minutes[s] for s in STAGES)
        text = '\n'.join(lines) + f'\n\n{verdict}; whole pipeline ' \
            f'{total:.1f} min (seed {self.args.seed})\n'
        print('\n' + text, flush=True)
        atomic_write_text(osp.join(self.work_dir, 'results.md'), text)
        dump_json_atomic(
            dict(rows=rows, verdict=verdict, stage_minutes=minutes),
            osp.join(self.work_dir, 'results.json'))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(
            osp.join(self.work_dir, 'results.csv'), buf.getvalue())
        self._plot(rows, key)
        self._zoo_entry(found, paths)
        return rows

    def _zoo_entry(self, found: dict, paths: dict) -> None:
        """``<work_dir>/model_zoo.yml``: the found architecture as a
        model-zoo entry (exported config, retrained checkpoint, retrained
        metrics, FLOPs, params, subnet file)."""
        from mmnas_tricks.engine.zoo import write_zoo_entry
        last = osp.join(self.dir('retrain'), 'last_checkpoint')
        if not osp.isfile(last):
            return
        with open(last) as f:
            weights = f.read().strip()
        metrics = {
            k: v
            for k, v in self._metrics('retrain').items()
            if isinstance(v, (int, float))
        }
        cfg = _load(paths['retrain'])
        write_zoo_entry(
            osp.join(self.work_dir, 'model_zoo.yml'),
            osp.splitext(osp.basename(self.config_path))[0] + '_found',
            paths['retrain'],
            weights,
            osp.join(self.dir('search'), 'search', 'best_subnet.yaml'),
            int(found['gflops'] * 1e9),
            int(found['params_m'] * 1e6),
            metrics,
            dataset=str(cfg.train_dataloader.dataset.get('type',
                                                         '')).split('.')[-1],
            task='Semantic Segmentation'
            if 'decode_head' in cfg.model else 'Object Detection',
            notes=f'found by tools/nas.py {self.config_path} (seed '
            f'{self.args.seed}), retrained with the baseline recipe')

    def _plot(self, rows, key) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        from mmnas_tricks.utils.io import atomic_write
        fig, ax = plt.subplots(figsize=(5, 4))
        for r, colour in zip(rows, ('tab:red', 'tab:blue')):
            ax.scatter(
                r['gflops'], r['score'], s=60, c=colour, label=r['model'])
            ax.annotate(
                f"{r['score']:.3f}", (r['gflops'], r['score']),
                textcoords='offset points',
                xytext=(5, 5))
        ax.set_xlabel('GFLOPs (whole model)')
        ax.set_ylabel(key)
        ax.legend()
        fig.tight_layout()
        atomic_write(
            osp.join(self.work_dir, 'results.png'),
            lambda f: fig.savefig(f, format='png', dpi=100))
        plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    Pipeline(args).run()


if __name__ == '__main__':
    main()
