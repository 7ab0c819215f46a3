"""The skeleton the search loops and the perturbation selection share
(SupernetLoop): the state file a killed run resumes from (only with
--resume, only the same seed), the results folder, the rule's sign and the
progress the Runner reads."""
from types import SimpleNamespace

import pytest

from mmnas_tricks.engine.runner.perturbation_selection_loop import \
    PerturbationSelectionLoop
from mmnas_tricks.engine.runner.search_loop import SearchLoop
from mmnas_tricks.engine.runner.supernet_loop import SupernetLoop


class Rounds(SupernetLoop):
    OUT_FOLDER = 'rounds'
    planned_rounds = 5
    rounds_done = 2

    def run(self):
        pass


def _loop(cls, work_dir, resume, seed=0, rule='greater'):
    """A loop without its data (the state and progress need none)."""
    loop = cls.__new__(cls)
    loop._runner = SimpleNamespace(work_dir=str(work_dir), _resume=resume)
    loop.seed, loop.rule = seed, rule
    return loop


def test_state_is_read_back_only_when_resuming_with_the_same_seed(tmp_path):
    first = _loop(Rounds, tmp_path, resume=False, seed=3)
    assert first.out_dir == str(tmp_path / 'rounds')
    assert first.read_state() is None  # nothing saved yet
    first.save_state(dict(done=[1, 2]))
    assert first.read_state() is None  # not asked to resume
    again = _loop(Rounds, tmp_path, resume=True, seed=3)
    assert again.read_state() == dict(done=[1, 2], seed=3)
    other = _loop(Rounds, tmp_path, resume=True, seed=4)
    with pytest.raises(
            ValueError,
            match=r'rounds/state.json: the state of a Rounds with '
            r'seed 3, this one has seed 4'):
        other.read_state()


def test_sign_and_progress(tmp_path):
    loop = _loop(Rounds, tmp_path, resume=False)
    assert loop.sign == 1.0
    assert _loop(Rounds, tmp_path, False, rule='less').sign == -1.0
    assert (loop.max_epochs, loop.epoch, loop.max_iters, loop.iter) == \
        (5, 2, 5, 2)
    # both loops are built on it, each with its own results folder
    assert issubclass(SearchLoop, SupernetLoop)
    assert issubclass(PerturbationSelectionLoop, SupernetLoop)
    assert (SearchLoop.OUT_FOLDER,
            PerturbationSelectionLoop.OUT_FOLDER) == ('search',
                                                      'perturbation_selection')
