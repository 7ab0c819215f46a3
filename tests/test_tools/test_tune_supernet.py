"""tools/tune_supernet.py: a study end to end with each trial's training
and scoring replaced (those are tested where they live), writing its results
with the config's own recipe beside the best."""
import importlib.util
import json
import os.path as osp

from ..test_engine.test_tune import MAIN, fake_evaluate


def test_tool_writes_results_with_the_default_beside_the_best(
        tmp_path, monkeypatch, repo_root):
    """tools/tune_supernet.py end to end with the training and scoring of a
    trial replaced (those are tested where they live: supernet training,
    SupernetScorer)."""
    from mmnas_tricks.engine import tune
    spec = importlib.util.spec_from_file_location(
        'tune_supernet_tool', osp.join(repo_root, 'tools', 'tune_supernet.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    truth = tmp_path / 'rank_correlation.json'
    truth.write_text(
        json.dumps(
            dict(
                records={
                    f'k{i}': dict(
                        index=i,
                        subnet={'x': i},
                        flops_ratio=0.5 + 0.25 * i,
                        standalone=0.1 * i)
                    for i in range(4)
                })))
    seen = []

    def evaluate(config, recipe, truth, work, checkpoint, *args):
        seen.append((config, checkpoint, len(truth)))
        return fake_evaluate(recipe)

    monkeypatch.setattr(tune, 'evaluate_recipe', evaluate)
    work = tmp_path / 'tune'
    tool.main([
        MAIN, '--truth',
        str(truth), '--trials', '3', '--params', 'lr', 'epochs',
        '--baseline-checkpoint', 'base.pth', '--work-dir',
        str(work)
    ])
    assert seen[0] == (MAIN, 'base.pth', 4) and len(seen) == 3
    result = json.loads((work / 'tune.json').read_text())
    assert result['trials'] == 3
    assert result['default']['lr'] == 0.001
    assert result['default']['epochs'] == 6
    assert result['best']['value'] >= result['default']['value']
    assert (work / 'tune.png').stat().st_size > 0
    header = (work / 'trials.csv').read_text().splitlines()[0]
    assert header.split(',')[:4] == ['number', 'value', 'lr', 'epochs']
