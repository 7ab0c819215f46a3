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


def test_pytorch_launcher_on_cpu(monkeypatch):
    for k, v in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                     MASTER_ADDR='127.0.0.1', MASTER_PORT='29533').items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(find_unused_parameters=True))
    try:
        setup_launcher(cfg, 'pytorch')
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=True, device_ids=None)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_missing_config_suggests_close_ones():
    with pytest.raises(FileNotFoundError, match='did you mean'):
        load_config('configs/baselines/fcos_r18w16_fpn_gn-head_12e_digit.py')
