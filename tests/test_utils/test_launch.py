import os.path as osp

import pytest
import torch.distributed as dist
from mmengine.config import Config

from mmnas_tricks.utils import load_config, setup_launcher


def test_bad_launcher():
    with pytest.raises(ValueError, match=r"'torchrun' is not one of \['none'"):
        setup_launcher(Config(dict()), 'torchrun')


def test_none_launcher_changes_nothing_else():
    cfg = Config(dict(a=1))
    setup_launcher(cfg, 'none')
    assert cfg.launcher == 'none' and 'model_wrapper_cfg' not in cfg


def test_pytorch_launcher_on_cpu_in_a_fresh_interpreter():
    # nothing imported mmengine.model yet: its wrappers must still resolve
    import subprocess
    import sys
    code = ('import os\n'
            'os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", '
            'MASTER_ADDR="127.0.0.1", MASTER_PORT="29534")\n'
            'from mmengine.config import Config\n'
            'from mmnas_tricks.utils import setup_launcher\n'
            'cfg = Config(dict())\n'
            'setup_launcher(cfg, "pytorch")\n'
            'print(cfg.model_wrapper_cfg["device_ids"])\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'None'


def test_pytorch_launcher_on_cpu(monkeypatch):
    for k, v in dict(
            RANK='0',
            WORLD_SIZE='1',
            LOCAL_RANK='0',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT='29533').items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(find_unused_parameters=True))
    try:
        setup_launcher(cfg, 'pytorch')
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=True,
            device_ids=None)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_missing_config_suggests_close_ones():
    with pytest.raises(FileNotFoundError, match='did you mean'):
        load_config('configs/baselines/fcos_r18w16_fpn_gn-head_12e_digit.py')


def test_build_model_leaves_the_config_as_it_was():
    """mmdet's detectors write their train_cfg / test_cfg into the head's
    config they are given: build_model builds from a copy, so a config's
    fingerprint (and its dumped text) is the same before and after."""
    from mmnas_tricks.engine.rank import config_fingerprint
    from mmnas_tricks.testing import config_dir
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(
        osp.join(config_dir(), 'baselines',
                 'fcos_r18w16_fpn_gn-head_12e_digits.py'))
    before = (config_fingerprint(cfg), cfg.pretty_text)
    assert 'test_cfg' not in cfg.model.bbox_head
    build_model(cfg)
    assert 'test_cfg' not in cfg.model.bbox_head
    assert (config_fingerprint(cfg), cfg.pretty_text) == before
