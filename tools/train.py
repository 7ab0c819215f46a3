"""Train a detector, segmentor or supernet from a config.

The argument surface is mmdet 3.3's ``tools/train.py``; detection (mmdet) and
segmentation (mmseg) configs are served alike (their ``default_scope`` picks
the registries).

Example:
    python tools/train.py \
        configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py
    python tools/train.py CONFIG --resume            # latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/epoch_3.pth
    python tools/train.py CONFIG --test   # then score the test split
"""
import argparse

from mmnas_tricks.engine.hooks.random_state_hook import add_random_state_hook
from mmnas_tricks.utils import (add_common_args, build_runner, check_file,
                                explain_unsafe_checkpoint, finish_common_args,
                                finish_launcher, load_config,
                                print_final_metrics, set_work_dir,
                                setup_launcher)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (mmdet or '
                                     'mmseg config) with mmnas_tricks')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR (the config needs auto_scale_lr)'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--test',
        action='store_true',
        help='after training, score the final weights on the config\'s '
        'test_dataloader / test_evaluator (the digits configs\' test split, '
        'for reports only) and write test_metrics.json beside '
        'final_metrics.json')
    add_common_args(parser)
    args = parser.parse_args(argv)
    finish_common_args(args)
    return args


def build_cfg(args):
    cfg = load_config(args.config, args.cfg_options)
    setup_launcher(cfg, args.launcher)

    set_work_dir(cfg, args.config, args.work_dir)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in your config.')
        else:
            if optim_wrapper != 'OptimWrapper':
                raise ValueError(
                    f'--amp needs optim_wrapper.type OptimWrapper or '
                    f'AmpOptimWrapper, got {optim_wrapper!r}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if ('auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr
                and 'base_batch_size' in cfg.auto_scale_lr):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_file(args.resume, '--resume checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    # random states in the checkpoints: a resumed training ends with the
    # weights of an uninterrupted one (RandomStateHook)
    add_random_state_hook(runner, cfg)
    with explain_unsafe_checkpoint():
        runner.train()
    print_final_metrics(runner)
    if args.test:
        # the final weights, as trained (not the best validation's)
        print_final_metrics(runner, runner.test(), name='test_metrics.json')
    finish_launcher()


if __name__ == '__main__':
    main()
