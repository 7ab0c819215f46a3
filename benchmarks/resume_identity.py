"""Is a supernet training killed mid-epoch and resumed bit-identical to an
uninterrupted one? The tiny digits fpn-elastic / gn-head-elastic supernet,
seed 0: A trains 3 epochs; B is killed in epoch 2 and resumed from
epoch_1.pth; the largest absolute weight difference of A and B. Variants
(joined by '+'): droppath (DropPathHook), sandwich (sandwich rule +
in-place distillation), flip (RandomFlip in the train pipeline), rng
(RandomStateHook); ':1' runs one persistent dataloader worker.

    python benchmarks/resume_identity.py plain:0 droppath:0 sandwich:0 \
        droppath+rng:0 droppath+rng:1 flip:0 flip+rng:0 flip+rng:1

writes benchmarks/results/resume_identity.json (docs/search_and_training.md,
"Resuming a training")."""
import json
import os.path as osp
import shutil
import sys

import torch
from mmengine.runner import Runner

from mmnas_tricks.datasets import DigitsSpec, build_digits
from mmnas_tricks.testing import KillAt, Killed, config_dir, tiny_supernet_cfg

TINY = dict(num_train=48, num_val=16, seed=3)
root = 'work_dirs/resume_identity/digits'
ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


def cfg_for(work, name, variant, workers):
    cfg = tiny_supernet_cfg(ELASTIC, root, TINY, work, name, 3)
    cfg.randomness = dict(seed=0)
    if 'droppath' in variant:
        cfg.custom_hooks.append(
            dict(type='mmnas_tricks.DropPathHook', p_max=0.2))
    if variant == 'sandwich':
        cfg.custom_hooks = [
            dict(
                type='mmnas_tricks.SampleSubnetHook',
                seed=0,
                strategy='sandwich'),
            dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0)
        ]
    if 'rng' in variant:
        cfg.custom_hooks.append(dict(type='mmnas_tricks.RandomStateHook'))
    if 'flip' in variant:
        p = cfg.train_dataloader.dataset.pipeline
        p.insert(len(p) - 1, dict(type='RandomFlip', prob=0.5))
    if workers:
        cfg.train_dataloader.num_workers = 1
        cfg.train_dataloader.persistent_workers = True
    cfg.train_cfg.val_interval = 1
    return cfg


def run(variant, workers):
    base = f'work_dirs/resume_identity/{variant}_{workers}'
    shutil.rmtree(base, ignore_errors=True)
    a = Runner.from_cfg(
        cfg_for(base + '/a', f'{variant}{workers}a', variant, workers))
    a.train()
    per_epoch = a.iter // 3
    b = Runner.from_cfg(
        cfg_for(base + '/b', f'{variant}{workers}b', variant, workers))
    b.register_hook(KillAt(per_epoch + per_epoch // 2))
    try:
        b.train()
    except Killed:
        pass
    cfg = cfg_for(base + '/b', f'{variant}{workers}c', variant, workers)
    cfg.resume = True
    cfg.load_from = base + '/b/epoch_1.pth'
    c = Runner.from_cfg(cfg)
    c.train()
    sa, sc = a.model.state_dict(), c.model.state_dict()
    diff = max((sa[k].float() - sc[k].float()).abs().max().item() for k in sa)
    same = all(torch.equal(sa[k], sc[k]) for k in sa)
    return dict(
        variant=variant,
        workers=workers,
        iters=a.iter,
        identical=same,
        max_abs_diff=diff)


if __name__ == '__main__':
    from mmnas_tricks.utils import dump_json_atomic
    if not osp.isdir(root):
        build_digits(root, DigitsSpec(**TINY), progress=False)
    out = [run(v, int(w)) for v, w in (a.split(':') for a in sys.argv[1:])]
    dump_json_atomic(
        dict(
            command='python benchmarks/resume_identity.py ' +
            ' '.join(sys.argv[1:]),
            rows=out), 'benchmarks/results/resume_identity.json')
    print('RESULT', json.dumps(out))
