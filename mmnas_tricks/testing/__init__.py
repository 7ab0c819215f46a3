from .configs import (config_dir, installed_config, list_configs,
                      shrink_digits_cfg)

__all__ = [
    'config_dir', 'installed_config', 'list_configs', 'shrink_digits_cfg'
]
