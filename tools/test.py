"""Test (evaluate) a checkpoint with a config, mmdet 3.3's argument surface.

Example:
    python tools/test.py \
        configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py \
        work_dirs/fcos_r18w16_fpn_gn-head_12e_digits/epoch_12.pth
"""
import argparse

from mmengine.evaluator import DumpResults

from mmnas_tricks.utils import (add_common_args, build_runner, check_file,
                                explain_unsafe_checkpoint, finish_common_args,
                                finish_launcher, load_config,
                                print_final_metrics, set_work_dir,
                                setup_launcher)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model with mmnas_tricks')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    add_common_args(parser)
    args = parser.parse_args(argv)
    finish_common_args(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    check_file(args.checkpoint, 'checkpoint')
    cfg = load_config(args.config, args.cfg_options)
    setup_launcher(cfg, args.launcher)
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False

    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(
                f'--out {args.out!r}: the output file must be a pkl file')
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    with explain_unsafe_checkpoint():
        metrics = runner.test()
    print_final_metrics(runner, metrics, name='test_metrics.json')
    finish_launcher()


if __name__ == '__main__':
    main()
