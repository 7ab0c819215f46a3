"""The engine takes what it needs as arguments: no private runner
attribute is read where mmengine has a public path (the one without one,
``Runner._resume``, is read in one documented place), and no loop, hook or
scorer reads a pipeline's ``nas`` / ``retrain`` config keys."""
import os.path as osp
import re
from glob import glob

import mmnas_tricks

PACKAGE = osp.dirname(mmnas_tricks.__file__)


def _sources(*parts):
    return {
        osp.relpath(p, PACKAGE): open(p).read()
        for p in glob(osp.join(PACKAGE, *parts), recursive=True)
    }


def test_private_runner_attributes_are_read_in_one_place():
    private = re.compile(r'\brunner\._[a-z]\w*|getattr\(runner, \'_')
    found = {
        path: sorted(set(private.findall(text)))
        for path, text in _sources('**', '*.py').items()
        if private.search(text)
    }
    assert found == {'utils/launch.py': ["getattr(runner, '_"]}
    from mmnas_tricks.utils import resuming

    class Runner:
        _resume = True

    assert resuming(Runner()) and not resuming(object())


def test_loops_hooks_and_scorers_read_no_pipeline_keys():
    pipeline_key = re.compile(
        r"""cfg\.(nas|retrain)\b|cfg\.get\(['"](nas|retrain)['"]|"""
        r"""\[['"](nas|retrain)['"]\]""")
    sources = dict(
        _sources('engine', 'runner', '*.py'),
        **_sources('engine', 'hooks', '*.py'),
        **_sources('engine', 'scoring.py'), **_sources('engine', 'rank.py'))
    assert len(sources) > 20
    assert {p
            for p, text in sources.items()
            if pipeline_key.search(text)} == set()


def test_only_reports_score_the_test_split():
    """The test split is scored for reports only: the one call of a
    Runner's test loop is in tools/test.py and tools/train.py --test, and
    the only reader of their test_metrics.json in the package is the
    pipeline's report; no loop, hook, scorer or search reads it (the
    package touches test_dataloader only to resize its pipeline, count its
    input size or point it at a tiny build)."""
    tools = osp.join(osp.dirname(PACKAGE), 'tools')
    calls = re.compile(r'\.test\(\)')
    sources = _sources('**', '*.py')
    assert {p for p, t in sources.items() if calls.search(t)} == set()
    assert {
        osp.basename(p)
        for p in glob(osp.join(tools, '**', '*.py'), recursive=True)
        if calls.search(open(p).read())
    } == {'test.py', 'train.py'}
    readers = {p for p, t in sources.items() if 'test_metrics' in t}
    assert readers == {'engine/nas_pipeline.py'}
    text = sources['engine/nas_pipeline.py']
    # the report is its one reader
    assert text.count('self.test_metrics(') == 1
    assert text.index('self.test_metrics(') > text.index('def report(')
