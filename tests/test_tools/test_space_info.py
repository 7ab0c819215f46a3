"""tools/analysis/space_info.py: sizes, resources and --write-subnet."""
import importlib.util
import json
import os.path as osp

import pytest

from mmnas_tricks.structures import read_subnet_file

ASPP = 'configs/supernets/fpn_r18w16_aspp-search_12e_digits-seg.py'


def _tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'space_info', osp.join(repo_root, 'tools', 'analysis',
                               'space_info.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_json_and_subnet_file(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    out_json, out_subnet = tmp_path / 's.json', tmp_path / 'min.yaml'
    summary = tool.main([
        osp.join(repo_root, ASPP), '--json',
        str(out_json), '--write-subnet', 'min',
        str(out_subnet)
    ])
    assert summary['num_mutables'] == 3 and summary['space_size'] == 125
    assert summary['parts'] == {
        'decode_head': dict(mutables=3, space_size=125)
    }
    assert summary['first_subnet']['flops'] > 0
    assert json.loads(out_json.read_text())['space_size'] == 125
    subnet, meta = read_subnet_file(str(out_subnet))
    assert set(subnet) == {f'decode_head.aspp_modules.{i}' for i in (1, 2, 3)}
    assert meta['source'] == 'space_info min'
    assert 'space size: 1.25e+02' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='WHICH must be one of'):
        tool.main([
            osp.join(repo_root, ASPP), '--write-subnet', 'best',
            str(tmp_path / 'x.yaml')
        ])


def test_input_size_follows_the_one_rule_and_is_printed(
        repo_root, tmp_path, capsys):
    """A config whose name does not say 'digits' was counted at a guessed
    800 x 1333; now its test pipeline's resize is the size, printed and
    written beside the figures, each subnet at the size it chose."""
    tool = _tool(repo_root)
    space = osp.join(repo_root, 'configs', 'supernets',
                     'fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py')
    config = tmp_path / 'my_space.py'
    config.write_text(f'_base_ = [{space!r}]\n')
    summary = tool.main([str(config)])
    assert summary['input_size'] == [128, 128]
    assert 'Resize scale (128, 128)' in summary['input_source']
    assert summary['first_subnet']['input_size'] == [128, 128]
    assert summary['min_subnet']['input_size'] == [96, 96]
    assert summary['max_subnet']['input_size'] == [192, 192]
    out = capsys.readouterr().out
    assert 'input size 128x128 (test_dataloader' in out
    assert 'min subnet at 96x96:' in out
    explicit = tool.main([str(config), '--shape', '256', '256'])
    assert explicit['input_size'] == [256, 256]
    assert explicit['input_source'] == 'given explicitly'
