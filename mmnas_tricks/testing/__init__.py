from .configs import (config_dir, installed_config, installed_config_path,
                      list_configs, shrink_digits_cfg, tiny_supernet_cfg)
from .kill import KillAt, Killed
from .models import (demo_det_batch, demo_seg_batch, trained_looking,
                     unchosen_gradients)
from .predictions import (DIGITS_PREDICTIONS, as_data_samples,
                          load_digits_predictions)

__all__ = [
    'config_dir', 'installed_config', 'installed_config_path', 'list_configs',
    'shrink_digits_cfg', 'tiny_supernet_cfg', 'demo_det_batch',
    'demo_seg_batch', 'unchosen_gradients', 'trained_looking', 'KillAt',
    'Killed', 'DIGITS_PREDICTIONS', 'as_data_samples',
    'load_digits_predictions'
]
