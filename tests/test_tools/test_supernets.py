"""Each digits supernet config trains for an epoch through tools/train.py
with a subnet sampled per iteration; a subnet of one is exported with
tools/export_subnet.py, and the exported plain config trains and tests."""
import json
import os
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.utils import get_installed_path

from mmnas_tricks.structures import dump_subnet, read_subnet_file
from .test_train_test import _run, _tiny_config

SUPERNETS = [
    'configs/supernets/fcos_mbv2-search_fpn_gn-head_12e_digits.py',
    'configs/supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py',
    ('configs/supernets/'
     'retinanet_r18w16_fpn-search_gn-head-search_12e_digits.py'),
    'configs/supernets/fpn_r18w16_fpn-search_head-search_12e_digits-seg.py',
]
NASFCOS = ('configs/supernets/'
           'nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py')


def _launch(repo_root, port, *args):
    """``bash *args`` (a torchrun launcher script) on 2 CPU processes: the
    log; fails with its tail when the command fails."""
    env = dict(os.environ, PORT=str(port), OMP_NUM_THREADS='1')
    out = subprocess.run(['bash', *args],
                         cwd=repo_root,
                         env=env,
                         capture_output=True,
                         text=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return log


@pytest.mark.heavy
@pytest.mark.parametrize('config', SUPERNETS)
def test_supernet_trains_an_epoch(repo_root, tiny_digits, tmp_path, config,
                                  run_tool):
    # train.py's command line in-process (its end-to-end subprocess test:
    # test_train_test.py)
    name = osp.basename(config)[:-3] + '_supernet'
    path, work_dir = _tiny_config(repo_root, tiny_digits, tmp_path, config,
                                  name)
    log = run_tool('tools/train.py', path)
    assert 'SampleSubnetHook' in log
    assert 'final metrics:' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.heavy
def test_export_retrain_and_test(repo_root, tiny_digits, tmp_path, run_tool):
    # export_subnet.py and mmdet's own tools in subprocesses (the end-to-end
    # test of each command), our train.py / test.py and the second export
    # in-process
    path, work_dir = _tiny_config(repo_root, tiny_digits, tmp_path, NASFCOS,
                                  'nasfcos_supernet_export')
    run_tool('tools/train.py', path)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    # a random subnet of the trained supernet, as a search would write it
    import random

    from mmnas_tricks.models.mutables import sample_subnet
    from mmnas_tricks.utils import build_model, load_config
    model = build_model(load_config(path))
    subnet = sample_subnet(model, random.Random(5))
    subnet_file = str(tmp_path / 'found.yaml')
    dump_subnet(subnet, subnet_file, meta=dict(source='test'))
    out_dir = str(tmp_path / 'exported')
    log = _run(repo_root, 'tools/export_subnet.py', path, subnet_file,
               '--checkpoint', ckpt, '--out-dir', out_dir)
    assert 'max abs difference to the supernet' in log
    assert 'BN statistics recalibrated for the subnet on 6 training' in log
    # without recalibration the supernet's running statistics are exported
    log = run_tool('tools/export_subnet.py', path, subnet_file, '--checkpoint',
                   ckpt, '--out-dir', out_dir, '--name', 'raw',
                   '--calibrate-bn', '0')
    assert 'recalibrated' not in log
    raw = torch.load(osp.join(out_dir, 'raw.pth'))['state_dict']
    calibrated = torch.load(osp.join(out_dir, 'found.pth'))['state_dict']
    means = [k for k in raw if k.endswith('running_mean')]
    assert means and any(not torch.equal(raw[k], calibrated[k]) for k in means)
    cfg_path, static_ckpt = (osp.join(out_dir, 'found.py'),
                             osp.join(out_dir, 'found.pth'))
    state = torch.load(static_ckpt)  # weights_only by default
    assert not any('arch_alpha' in k or 'candidates' in k
                   for k in state['state_dict'])
    assert read_subnet_file(subnet_file)[0] == {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in state['meta']['subnet'].items()
    }
    text = open(cfg_path).read()
    assert 'SampleSubnetHook' not in text and 'fixed_subnet' in text
    # the exported plain config tests the exported checkpoint ...
    test_dir = str(tmp_path / 'test_exported')
    log = run_tool('tools/test.py', cfg_path, static_ckpt, '--work-dir',
                   test_dir)
    assert 'final metrics:' in log
    metrics = json.load(open(osp.join(test_dir, 'test_metrics.json')))
    assert 'coco/bbox_mAP' in metrics
    # ... and trains from scratch like any mmdet config
    log = run_tool('tools/train.py', cfg_path, '--work-dir',
                   str(tmp_path / 'retrain'))
    assert 'final metrics:' in log
    # mmdet's own, unmodified tools (from its wheel) run it too, given the
    # config's custom_imports line
    mmdet_tools = osp.join(get_installed_path('mmdet'), '.mim', 'tools')
    log = _run(repo_root, osp.join(mmdet_tools, 'test.py'), cfg_path,
               static_ckpt, '--work-dir', str(tmp_path / 'mmdet_test'))
    assert 'coco/bbox_mAP' in log
    _run(repo_root, osp.join(mmdet_tools, 'train.py'), cfg_path, '--work-dir',
         str(tmp_path / 'mmdet_train'))
    assert osp.isfile(osp.join(str(tmp_path / 'mmdet_train'), 'epoch_1.pth'))
    # and a model-zoo entry is written next to the exported files
    import yaml
    entry = yaml.safe_load(open(osp.join(out_dir,
                                         'found.metafile.yml')))['Models'][0]
    assert (entry['Config'], entry['Weights']) == ('found.py', 'found.pth')
    assert entry['Metadata']['FLOPs (G)'] > 0
    assert entry['Metadata']['Input size'] == '128x128'


@pytest.mark.heavy
def test_two_process_supernet_ranks_set_the_same_subnets(
        repo_root, tiny_digits, tmp_path):
    """tools/dist_train.sh and dist_test.sh: torchrun, 2 processes, gloo on
    CPU: every rank set the same subnet at every iteration
    (SampleSubnetHook's trace), DDP did not hang on the candidates not
    sampled, only rank 0 writes, and dist_test.sh evaluates on both ranks.
    The supernet is converted to GroupNorm (ConvertNormHook(to='GN'),
    docs/tricks.md, T3.5) and resumed under DDP. (The launcher checks were
    test_train_test.py's test_dist_train_two_processes_on_cpu on the plain
    FCOS, the GroupNorm ones a test of their own on the elastic FCOS
    supernet; merged here so that torchrun starts three times for them, not
    five.)"""
    from mmnas_tricks.utils import load_config
    config = ('configs/supernets/'
              'fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py')
    path, work_dir = _tiny_config(repo_root, tiny_digits, tmp_path, config,
                                  'detnas_dist')
    cfg = load_config(path)
    cfg.custom_hooks = [
        dict(type='mmnas_tricks.SampleSubnetHook', seed=5, trace=True),
        dict(type='mmnas_tricks.ConvertNormHook', to='GN', num_groups=8),
    ]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.dump(path)

    def launch(*args):
        return _launch(repo_root, 29533, *args)

    log = launch('tools/dist_train.sh', path, '2')
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    # only rank 0 writes the metrics file and prints them
    assert log.count('final metrics:') == 2  # logger line + print, rank 0
    assert osp.isfile(osp.join(work_dir, 'final_metrics.json'))
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    traces = []
    for rank in (0, 1):
        with open(osp.join(work_dir, 'subnet_trace',
                           f'rank{rank}.jsonl')) as f:
            traces.append([json.loads(line) for line in f if line.strip()])
    assert traces[0] == traces[1]
    assert [t['iter'] for t in traces[0]] == list(range(len(traces[0])))
    assert len(traces[0]) >= 3  # 48 images / (2 ranks x 8)
    assert len({t['subnet'] for t in traces[0]}) > 1

    # the GroupNorm supernet resumes under DDP and keeps training
    ckpt1 = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert not any('running_mean' in k for k in ckpt1['state_dict'])
    log = launch('tools/dist_train.sh', path, '2', '--resume', '--cfg-options',
                 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1' in log
    ckpt2 = torch.load(
        osp.join(work_dir, 'epoch_2.pth'),
        map_location='cpu',
        weights_only=False)
    assert ckpt2['meta']['iter'] == 2 * ckpt1['meta']['iter']
    changed = [
        k for k in ckpt1['state_dict'] if 'backbone' in k
        and not torch.equal(ckpt1['state_dict'][k], ckpt2['state_dict'][k])
    ]
    assert changed  # the GroupNorm backbone kept training

    # tools/dist_test.sh on the resumed checkpoint: both ranks evaluate, the
    # results are gathered, rank 0 writes the metrics
    launch('tools/dist_test.sh', path, osp.join(work_dir, 'epoch_2.pth'), '2',
           '--work-dir', str(tmp_path / 'dist_test'))
    with open(tmp_path / 'dist_test' / 'test_metrics.json') as f:
        assert 'coco/bbox_mAP' in json.load(f)
