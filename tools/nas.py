"""The whole NAS job in one command: the baseline -> supernet training (from
the baseline's weights, when asked) -> search (the found subnets exported)
-> retraining of each found architecture (and, with ``nas.finetune``, its
fine-tuning from the supernet's weights) -> a table comparing them with the
baseline.

A pipeline config is a supernet config (it trains the supernet as it is)
with a ``nas`` dict:

    nas = dict(
        search=dict(type='mmnas_tricks.NSGA2SearchLoop', ...),  # train_cfg
        retrain=dict(train_dataloader=..., train_cfg=...),  # exported config
        baseline='../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
        inherit='baseline',  # optional: the supernet starts from it
        finetune=dict(train_cfg=..., param_scheduler=..., ...),  # optional
        score_key='coco/bbox_mAP')

The found architectures are the search's exports: ``best_subnet`` (with
``export_best``, retrained in ``retrain/``) and, for each fraction ``f`` of
its ``export_flops``, ``best_subnet_<f>x`` (the best subnet of at most
``f`` x the baseline's FLOPs, retrained in ``retrain_<f>x/``). With
``nas.finetune`` each is also fine-tuned (``finetune/``, ``finetune_<f>x/``):
its exported config with ``nas.finetune`` merged in, starting from the
exported weights (the supernet's, BN calibrated), as Once-for-All deploys
a subnet; the table shows both. With ``nas.rerank`` (``topk``, ``group_by``,
``epochs``, ``lr``: :mod:`mmnas_tricks.engine.rerank`) the search also
exports, for each of those budgets, its best ``topk`` subnets (of each value
of the mutable ``group_by``) as ``candidate<i>``; the ``rerank`` stage
fine-tunes each ``epochs`` from its supernet weights on the supernet's data
and scores it on the search's held-out split (``rerank_candidate<i>/``), and
each budget retrains the best fine-tuned candidate within it instead of the
search's pick (``rerank/choice.json``; the table shows both estimates).

Each stage runs ``tools/train.py`` (``tools/dist_train.sh`` with ``--gpus``,
``tools/slurm_train.sh`` with ``--slurm PARTITION``)
in its own folder of the work dir, from a stage config written to
``<work_dir>/configs/``, so any stage can also be run alone. A finished stage
is skipped and an interrupted one resumed (``--resume``) when the command is
run again. Results: ``<work_dir>/results.{md,csv,json,png}``.

Example:
    python tools/nas.py \
        configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py
    python tools/nas.py CONFIG --stages supernet search   # only these
"""
import argparse
import os
import os.path as osp

from mmnas_tricks.engine.nas_pipeline import STAGES, NASPipeline

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
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='the independent runs of a stage (the re-rank candidates, the '
        'retrains, the fine-tunes) run this many at once, each with cores / '
        'jobs torch threads (on 2 CPU cores 2 jobs of 1 thread train 1.5x '
        'as many iterations a second as one of 2; default 1)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs {args.jobs}: need >= 1')
    if args.jobs > 1 and (args.gpus > 1 or args.slurm):
        parser.error('--jobs runs stages side by side on this machine: not '
                     'with --gpus > 1 or --slurm')
    return args


def build_pipeline(args) -> NASPipeline:
    """The pipeline the command line asks for."""
    return NASPipeline(
        args.config,
        HERE,
        work_dir=args.work_dir,
        stages=args.stages,
        seed=args.seed,
        gpus=args.gpus,
        slurm=args.slurm,
        fresh=args.fresh,
        jobs=args.jobs)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    build_pipeline(args).run()


if __name__ == '__main__':
    main()
