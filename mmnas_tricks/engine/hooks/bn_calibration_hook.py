"""BN calibration before every validation / test of a fixed subnet."""
from typing import Optional

from mmengine.hooks import Hook

from mmnas_tricks.registry import HOOKS
from ..bn_calibration import calibrate_bn
from .utils import unwrap_model


@HOOKS.register_module()
class BNCalibrationHook(Hook):
    """Recompute the BatchNorm statistics of the model's current subnet on
    training batches before every validation (and test) epoch (docs/tricks.md,
    T3.2; SPOS, Guo et al., ECCV 2020; DetNAS): a subnet validated with
    supernet weights would otherwise use statistics averaged over other
    subnets. See :func:`mmnas_tricks.engine.calibrate_bn` (cumulative
    average, BNs of a frozen backbone untouched, averaged over ranks). The
    number of batches used is logged as ``val/bn_calib_batches``.

    Args:
        num_batches (int): Training batches to forward. Defaults to 50.
        dataloader (dict, optional): A dataloader config to calibrate on
            instead of ``train_dataloader`` (never the validation split).
            Defaults to None.

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.BNCalibrationHook',
        ...                      num_batches=20)]
    """

    priority = 'LOW'  # after the hooks that set the validated subnet

    def __init__(self,
                 num_batches: int = 50,
                 dataloader: Optional[dict] = None) -> None:
        if num_batches < 1:
            raise ValueError(f'num_batches={num_batches} must be >= 1')
        self.num_batches = int(num_batches)
        self.dataloader_cfg = dataloader
        self._loader = None
        self._training = False

    def before_train(self, runner) -> None:
        self._training = True  # validations use the training loop's data

    def after_train(self, runner) -> None:
        self._training = False

    def _batches(self, runner):
        from mmengine.runner import Runner
        if self._loader is not None:
            return self._loader
        cfg = self.dataloader_cfg
        if cfg is None:
            if self._training:
                return runner.train_dataloader
            cfg = runner.cfg.get('train_dataloader')
            if cfg is None:
                raise ValueError('BNCalibrationHook needs train_dataloader '
                                 'in the config, or its own dataloader')
        self._loader = Runner.build_dataloader(cfg, seed=runner.seed)
        return self._loader

    def _calibrate(self, runner) -> None:
        used = calibrate_bn(
            unwrap_model(runner), self._batches(runner), self.num_batches)
        runner.message_hub.update_scalar('val/bn_calib_batches', used)

    def before_val_epoch(self, runner) -> None:
        self._calibrate(runner)

    def before_test_epoch(self, runner) -> None:
        self._calibrate(runner)
