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
