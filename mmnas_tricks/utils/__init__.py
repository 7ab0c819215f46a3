from .checkpoint import (UnsafeCheckpointError, checkpoint_safe_globals,
                         explain_unsafe_checkpoint,
                         register_checkpoint_safe_globals)
from .io import (atomic_write, atomic_write_text, check_file, dump_csv_atomic,
                 dump_json_atomic)
from .launch import (LAUNCHERS, add_common_args, build_model, build_runner,
                     finish_common_args, finish_launcher, load_config,
                     resuming, set_work_dir, setup_launcher)
from .metrics import (last_val_metrics, print_final_metrics, rank_consistency,
                      scalar_metrics)

__all__ = [
    'UnsafeCheckpointError', 'checkpoint_safe_globals',
    'explain_unsafe_checkpoint', 'register_checkpoint_safe_globals',
    'atomic_write', 'atomic_write_text', 'check_file', 'dump_csv_atomic',
    'dump_json_atomic', 'LAUNCHERS', 'load_config', 'setup_launcher',
    'add_common_args', 'build_model', 'build_runner', 'finish_common_args',
    'finish_launcher', 'resuming', 'set_work_dir', 'last_val_metrics',
    'print_final_metrics', 'rank_consistency', 'scalar_metrics'
]
