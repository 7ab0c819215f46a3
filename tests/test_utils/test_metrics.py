import json
from types import SimpleNamespace

import numpy as np
from mmengine.logging import MessageHub, MMLogger

from mmnas_tricks.utils import last_val_metrics, print_final_metrics


def _runner(tmp_path, name):
    hub = MessageHub.get_instance(name)
    return SimpleNamespace(
        message_hub=hub,
        logger=MMLogger.get_instance(name),
        work_dir=str(tmp_path))


def test_last_val_metrics_from_message_hub(tmp_path):
    runner = _runner(tmp_path, 'test_last_val_metrics')
    runner.message_hub.update_scalar('val/coco/bbox_mAP', 0.25)
    runner.message_hub.update_scalar('val/coco/bbox_mAP', 0.5)
    runner.message_hub.update_scalar('train/loss', 3.0)
    assert last_val_metrics(runner) == {'coco/bbox_mAP': 0.5}


def test_numpy_metrics_are_kept_and_timings_dropped(tmp_path, capsys):
    runner = _runner(tmp_path, 'test_print_final_metrics')
    out = print_final_metrics(
        runner,
        dict(
            mIoU=np.float32(71.5),
            aAcc=np.float64(90.0),
            time=0.3,
            data_time=0.1,
            per_class=[1, 2]),
        name='m.json')
    assert out == dict(mIoU=71.5, aAcc=90.0)
    assert 'final metrics: aAcc=90.0000, mIoU=71.5000' in capsys.readouterr(
    ).out
    assert json.loads((tmp_path / 'm.json').read_text()) == out


def test_no_metrics_is_said(tmp_path, capsys):
    runner = _runner(tmp_path, 'test_no_metrics')
    warned = []
    runner.logger.warning = warned.append
    assert print_final_metrics(runner, {}) == {}
    assert 'no metrics to report' in warned[0]
    assert not (tmp_path / 'final_metrics.json').exists()


def test_scalar_metrics_keep_numpy_scalars():
    from mmnas_tricks.utils import scalar_metrics
    got = scalar_metrics(
        dict(
            mIoU=np.float32(0.5),
            n=np.int64(3),
            x=1,
            ok=True,
            s='a',
            arr=np.zeros(3)))
    assert got == dict(mIoU=0.5, n=3.0, x=1.0)
    assert all(type(v) is float for v in got.values())
