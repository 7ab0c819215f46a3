"""Patch MMRazor 1.0.0 and mmcls 1.0.0rc6, installed in the running
Python, so that they import under torch 2.x and mmcv 2.1 (idempotent; run
by install_mmrazor.sh). Each patch is a text substitution in the installed
file, marked by ``# mmnas_tricks patch``:

1. ``mmrazor/structures/quantization/backend_config/
   common_operator_config_utils.py`` imports ``reverse2``, ``reverse3`` and
   ``reverse_sequential_wrapper2`` from
   ``torch.ao.quantization.fuser_method_mappings``; torch 2.x removed them.
   The three small argument-reordering helpers are defined locally.
2. ``.../backend_config/mapping.py`` builds torch-AO backend configs at
   import time, which fails under torch 2.13; the module's own pre-1.13
   branch (every config ``None``) is taken. MMRazor's quantization does not
   work then; its NAS is unaffected.
3. ``mmcls/__init__.py`` caps mmcv below 2.1.0; the cap is raised to 2.2.0.
"""
import importlib.util
import os
import os.path as osp
import sys

MARK = '# mmnas_tricks patch'


def installed(module: str) -> str:
    spec = importlib.util.find_spec(module.split('.')[0])
    if spec is None:
        sys.exit(f'patch_mmrazor.py: {module} is not installed in '
                 f'{sys.executable}')
    return osp.join(osp.dirname(spec.origin), *module.split('.')[1:])


def patch(path: str, old: str, new: str) -> None:
    with open(path) as f:
        text = f.read()
    if MARK in text:
        print(f'[mmrazor] patched already: {path}')
        return
    if old not in text:
        sys.exit(f'patch_mmrazor.py: {path}: the expected text is not '
                 f'there ({old.splitlines()[0]!r}); another version?')
    with open(path + '.tmp', 'w') as f:
        f.write(text.replace(old, new, 1))
    os.replace(path + '.tmp', path)
    print(f'[mmrazor] patched: {path}')


BACKEND = 'mmrazor.structures.quantization.backend_config'
FUSERS = ('        fuse_conv_bn, fuse_conv_bn_relu, fuse_convtranspose_bn, '
          'fuse_linear_bn')
patch(
    installed(BACKEND + '.common_operator_config_utils') + '.py', FUSERS + ''',
        reverse2, reverse3, reverse_sequential_wrapper2)
''', FUSERS + f''')
    try:
        from torch.ao.quantization.fuser_method_mappings import (
            reverse2, reverse3, reverse_sequential_wrapper2)
    except ImportError:  {MARK}: removed in torch 2.x

        def reverse_sequential_wrapper2(sequential):

            def fuser_method(is_qat, x, y):
                return sequential(y, x)

            return fuser_method

        def reverse2(f):

            def reversed(is_qat, x, y):
                return f(is_qat, y, x)

            return reversed

        def reverse3(f):

            def reversed(is_qat, x, w):
                y, z = w
                return f(is_qat, z, y, x)

            return reversed
''')
patch(
    installed(BACKEND + '.mapping') + '.py',
    "if digit_version(torch.__version__) >= digit_version('1.13.0'):",
    f"if False:  {MARK}: torch 2.13's AO backend configs fail at import")
patch(
    installed('mmcls.__init__') + '.py', "mmcv_maximum_version = '2.1.0'",
    f"mmcv_maximum_version = '2.2.0'  {MARK}")
